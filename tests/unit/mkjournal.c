/*
 * mkjournal.c -- test helper: journal a recorded master session.
 *
 *   mkjournal DIR TRACE.c2s...
 *
 * Reads masters' command streams as the relay does and appends to the
 * journal in DIR what the relay keeps of them: each message body of an
 * APPLY MESSAGE as a body record, every APPLY that changes state as a
 * command record in canonical form.  GETs, RESERVE, CAPABILITIES and
 * connection commands are not journaled.
 * Prints "records N bodies M" and exits 0 when all are durable.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "protocol/csync.h"
#include "storage/journal.h"

struct state {
	struct journal *j;
	struct journal_body *body;
	int pending, failed, records, bodies;
};

static void
done(void *arg, uint64_t lsn, int err)
{
	struct state *s = arg;

	s->pending--;
	if (err)
		s->failed++;
}

static int
s_begin(void *arg, const char *part, const char *guid, uint64_t size)
{
	struct state *s = arg;

	s->body = journal_body_begin(s->j, guid, size);
	return 0;
}

static int
s_data(void *arg, const void *p, size_t n)
{
	journal_body_write(((struct state *)arg)->body, p, n);
	return 0;
}

static int
s_end(void *arg)
{
	struct state *s = arg;

	s->pending++;
	s->bodies++;
	journal_body_end(s->body, done, s);
	s->body = NULL;
	return 0;
}

int
main(int argc, char **argv)
{
	struct state s = { 0 };
	struct dlist_file_sink sink = { s_begin, s_data, s_end, &s };
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct csync_reader *r = NULL;
	struct buf in = BUF_INIT, out = BUF_INIT;
	char err[512], tmp[65536];
	size_t off, used, n;
	FILE *fp;
	int t;

	if (argc < 3) {
		fprintf(stderr, "usage: mkjournal DIR TRACE...\n");
		return 2;
	}
	if (journal_open(argv[1], NULL, &s.j, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (t = 2; t < argc; t++) {
	if ((fp = fopen(argv[t], "rb")) == NULL) {
		perror(argv[t]);
		return 1;
	}
	buf_reset(&in);
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		buf_append(&in, tmp, n);
	fclose(fp);
	csync_reader_free(&r);
	r = csync_reader_new(CSYNC_SERVER, NULL, &sink);
	off = 0;
	while (off < in.len) {
		enum csync_status st = csync_reader_feed(r, in.s + off,
		    in.len - off, &used);
		struct dlist *e;

		off += used;
		if (st != CSYNC_LINE)
			continue;
		e = csync_reader_take_entry(r);
		if (e && strcmp(csync_reader_verb(r), "APPLY") == 0 &&
		    strcmp(e->key, "MESSAGE") != 0 &&
		    strcmp(e->key, "RESERVE") != 0 &&
		    strcmp(e->key, "CAPABILITIES") != 0) {
			buf_reset(&out);
			csync_print_command(&out, "APPLY", e, &pr);
			out.len -= 2;		/* no CRLF in a record */
			s.pending++;
			s.records++;
			journal_append(s.j, JOURNAL_COMMAND, out.s, out.len,
			    done, &s);
		}
		dlist_free(&e);
	}
	}
	while (s.pending > 0) {
		journal_collect(s.j);
		usleep(1000);
	}
	journal_close(&s.j);
	csync_reader_free(&r);
	buf_free(&in);
	buf_free(&out);
	printf("records %d bodies %d\n", s.records, s.bodies);
	return s.failed ? 1 : 0;
}
