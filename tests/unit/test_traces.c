/*
 * test_traces.c -- every line of the recorded Cyrus sessions parses, and
 * reprints byte for byte.
 *
 * tests/fixtures/traces/<name>/conn1.c2s and .s2c are the inflated byte
 * streams of real sessions between Debian's 3.6.1 sync_client and
 * sync_server.  Client lines are reprinted in client mode, server lines
 * in server mode: Cyrus's printer rules must reproduce them exactly.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>

#include "lib/buf.h"
#include "protocol/csync.h"
#include "tests/unit/test.h"

#define MAX_BODIES 4096

struct bodies {
	struct buf b[MAX_BODIES];
	int n, next;
};

static int
b_begin(void *arg, const char *part, const char *guid, uint64_t size)
{
	struct bodies *bs = arg;

	if (bs->n == MAX_BODIES)
		return -1;
	buf_init(&bs->b[bs->n++], 0);
	return 0;
}

static int
b_data(void *arg, const void *p, size_t n)
{
	struct bodies *bs = arg;

	return buf_append(&bs->b[bs->n - 1], p, n);
}

static int
b_end(void *arg)
{
	return 0;
}

/* Prints the next captured body, in the order they were read. */
static int
b_print_next(void *arg, const struct dlist *file, struct buf *out)
{
	struct bodies *bs = arg;
	struct buf *b;

	if (bs->next >= bs->n)
		return -1;
	b = &bs->b[bs->next++];
	if (b->len != file->num)
		return -1;
	return buf_append(out, b->s, b->len);
}

static void
bodies_free(struct bodies *bs)
{
	int i;

	for (i = 0; i < bs->n; i++)
		buf_free(&bs->b[i]);
	bs->n = bs->next = 0;
}

static int
read_file(const char *path, struct buf *out)
{
	FILE *fp = fopen(path, "rb");
	char tmp[65536];
	size_t n;

	if (fp == NULL)
		return -errno;
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		buf_append(out, tmp, n);
	fclose(fp);
	return 0;
}

/*
 * Reads a whole stream; returns the number of lines, or -1 after
 * reporting the first line that failed to parse or to reprint.
 */
static int
check_stream(const char *path, enum csync_role role)
{
	struct bodies *bs = calloc(1, sizeof(*bs));
	struct dlist_file_sink sink = { b_begin, b_data, b_end, bs };
	struct dlist_printer pr = { role == CSYNC_SERVER ? DLIST_PRINT_CLIENT :
		DLIST_PRINT_SERVER, b_print_next, bs };
	struct csync_reader *r = csync_reader_new(role, NULL, &sink);
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t off = 0, start = 0, used;
	int lines = 0, bad = 0;
	bool banner = role == CSYNC_CLIENT;

	if (read_file(path, &in) < 0) {
		fprintf(stderr, "%s: cannot read\n", path);
		return -1;
	}
	csync_reader_set_banner(r, banner);
	while (off < in.len) {
		enum csync_status st = csync_reader_feed(r, in.s + off,
		    in.len - off, &used);
		const char *verb, *text;
		struct dlist *e;

		off += used;
		if (st == CSYNC_NEED_MORE)
			break;
		lines++;
		verb = csync_reader_verb(r);
		if (st == CSYNC_BAD_LINE) {
			fprintf(stderr, "%s: line %d does not parse: %s\n", path,
			    lines, csync_reader_errstr(r));
			bad++;
			break;
		}
		buf_reset(&out);
		e = csync_reader_take_entry(r);
		text = csync_reader_text(r);
		if (e != NULL) {
			csync_print_command(&out, verb, e, &pr);
		} else {
			buf_puts(&out, verb);
			if (text) {
				buf_putc(&out, ' ');
				buf_puts(&out, text);
			}
			buf_puts(&out, "\r\n");
		}
		if (out.len != off - start ||
		    memcmp(out.s, in.s + start, out.len) != 0) {
			fprintf(stderr, "%s: line %d reprints differently:\n"
			    "  got:  %.300s\n  want: %.300s\n", path, lines,
			    out.s, in.s + start);
			bad++;
		}
		if (banner && strcmp(verb, "*") == 0 && text &&
		    strncmp(text, "OK", 2) == 0) {
			banner = false;
			csync_reader_set_banner(r, false);
		}
		dlist_free(&e);
		start = off;
	}
	if (off != in.len) {
		fprintf(stderr, "%s: %zu bytes left unparsed\n", path,
		    in.len - off);
		bad++;
	}
	csync_reader_free(&r);
	buf_free(&in);
	buf_free(&out);
	bodies_free(bs);
	free(bs);
	return bad ? -1 : lines;
}

static void
every_trace_line(void)
{
	const char *srcdir = getenv("SRCDIR") ? getenv("SRCDIR") : "..";
	char dirpath[4096];
	DIR *d;
	struct dirent *de;
	int traces = 0, total = 0;

	snprintf(dirpath, sizeof(dirpath), "%s/tests/fixtures/traces", srcdir);
	d = opendir(dirpath);
	test_assert(d != NULL);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[8192];
		int n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/conn1.c2s", dirpath,
		    de->d_name);
		n = check_stream(path, CSYNC_SERVER);
		test_assert(n > 0);
		total += n;
		snprintf(path, sizeof(path), "%s/%s/conn1.s2c", dirpath,
		    de->d_name);
		n = check_stream(path, CSYNC_CLIENT);
		test_assert(n > 0);
		total += n;
		traces++;
	}
	closedir(d);
	printf("# %d traces, %d lines reprinted byte for byte\n", traces, total);
	test_assert(traces >= 5);
}

TEST_MAIN(T(every_trace_line))
