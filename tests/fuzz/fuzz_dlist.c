/*
 * fuzz_dlist.c -- libFuzzer target for the csync reader and dlist parser.
 *
 * The input is read as a server would read a master's commands, with
 * small limits so every limit is reachable.  Properties checked:
 *  - feeding the input whole and in pieces (split points taken from the
 *    input itself) gives the same sequence of lines, entries and file
 *    bodies;
 *  - every entry that parsed prints (client and server mode) to text
 *    that parses back to an equal tree.
 * A violated property aborts, which libFuzzer reports as a crash.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "protocol/csync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
	struct buf log;		/* everything observed, in order */
	struct buf body;	/* the current file body */
	struct buf bodies;	/* all bodies, concatenated, for printing */
	size_t print_off;
};

static int
t_begin(void *arg, const char *part, const char *guid, uint64_t n)
{
	struct trace *t = arg;

	buf_printf(&t->log, "F(%s %s %llu)", part, guid, (unsigned long long)n);
	buf_reset(&t->body);
	return 0;
}

static int
t_data(void *arg, const void *p, size_t n)
{
	struct trace *t = arg;

	buf_append(&t->body, p, n);
	buf_append(&t->bodies, p, n);
	return 0;
}

static int
t_end(void *arg)
{
	struct trace *t = arg;

	buf_printf(&t->log, "E(%zu)", t->body.len);
	return 0;
}

static int
t_print(void *arg, const struct dlist *file, struct buf *out)
{
	struct trace *t = arg;

	if (t->print_off + file->num > t->bodies.len)
		abort();
	if (file->num == 0)
		return 0;
	buf_append(out, t->bodies.s + t->print_off, (size_t)file->num);
	t->print_off += (size_t)file->num;
	return 0;
}

static const struct dlist_limits fuzz_limits = {
	.max_line = 4096,
	.max_token = 512,
	.max_literal = 1024,
	.max_file = 65536,
	.max_depth = 8,
	.max_items = 512,
};

/* Reprints entry and parses it back; aborts unless equal. */
static void
check_round_trip(const struct dlist *entry, struct trace *t, size_t body_off)
{
	int mode;

	for (mode = 0; mode < 2; mode++) {
		struct dlist_printer pr = { (enum dlist_print_mode)mode, t_print,
			t };
		struct dlist_parser *p;
		struct buf out = BUF_INIT;
		struct dlist *back;
		size_t used;
		struct dlist_limits big = dlist_limits_default;

		t->print_off = body_off;
		if (dlist_print_entry(entry, &out, &pr) < 0)
			abort();
		buf_puts(&out, "\r\n");
		big.max_depth = fuzz_limits.max_depth;
		p = dlist_parser_new(&big, NULL);
		if (dlist_parser_feed(p, out.s, out.len, &used) != DLIST_DONE ||
		    used != out.len) {
			fprintf(stderr, "reprint does not parse (%s, %zu of "
			    "%zu bytes): %.*s\n", dlist_parser_errstr(p), used,
			    out.len, (int)out.len, out.s);
			abort();
		}
		back = dlist_parser_take(p);
		if (back == NULL || !dlist_equal(entry, back)) {
			fprintf(stderr, "reprint parses differently: %.*s\n",
			    (int)out.len, out.s);
			abort();
		}
		dlist_free(&back);
		dlist_parser_free(&p);
		buf_free(&out);
	}
}

/* Reads all lines; step 0 feeds whole, else pieces of varying size. */
static void
run(const uint8_t *data, size_t size, unsigned step, struct trace *t,
    int round_trip)
{
	struct dlist_file_sink sink = { t_begin, t_data, t_end, t };
	struct csync_reader *r = csync_reader_new(CSYNC_SERVER, &fuzz_limits,
	    &sink);
	size_t off = 0, used, line_bodies = 0;
	unsigned i = 0;

	while (off < size) {
		size_t n = size - off;
		enum csync_status st;

		if (step) {
			n = 1 + (data[(off + i++) % size] % step);
			if (n > size - off)
				n = size - off;
		}
		st = csync_reader_feed(r, (const char *)data + off, n, &used);
		if (used > n)
			abort();
		off += used;
		if (st == CSYNC_NEED_MORE) {
			if (used != n)
				abort();
			continue;
		}
		buf_printf(&t->log, "L%d[%s]", (int)st, csync_reader_verb(r));
		if (st == CSYNC_LINE) {
			struct dlist *e = csync_reader_take_entry(r);
			const char *text = csync_reader_text(r);

			if (text)
				buf_printf(&t->log, "T[%s]", text);
			if (e != NULL) {
				struct dlist_printer pr = { DLIST_PRINT_SERVER,
					t_print, t };
				struct buf tmp = BUF_INIT;

				/* Log a canonical print of the entry. */
				t->print_off = line_bodies;
				(void)dlist_print_entry(e, &tmp, &pr);
				buf_append(&t->log, tmp.s, tmp.len);
				buf_free(&tmp);
				if (round_trip)
					check_round_trip(e, t, line_bodies);
			}
			dlist_free(&e);
		} else {
			buf_printf(&t->log, "B%d", (int)csync_reader_bad(r));
		}
		line_bodies = t->bodies.len;
	}
	csync_reader_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace a, b;
	unsigned step;

	memset(&a, 0, sizeof(a));
	run(data, size, 0, &a, 1);
	for (step = 1; step <= 17; step += 8) {
		memset(&b, 0, sizeof(b));
		run(data, size, step, &b, 0);
		if (a.log.len != b.log.len ||
		    memcmp(buf_cstring(&a.log), buf_cstring(&b.log),
		    a.log.len) != 0 || a.bodies.len != b.bodies.len ||
		    memcmp(buf_cstring(&a.bodies), buf_cstring(&b.bodies),
		    a.bodies.len) != 0) {
			fprintf(stderr, "split into pieces of 1..%u bytes, the "
			    "input reads differently:\nwhole:  %.*s\npieces: "
			    "%.*s\n", step, (int)a.log.len, buf_cstring(&a.log),
			    (int)b.log.len, buf_cstring(&b.log));
			abort();
		}
		buf_free(&b.log);
		buf_free(&b.body);
		buf_free(&b.bodies);
	}
	buf_free(&a.log);
	buf_free(&a.body);
	buf_free(&a.bodies);
	return 0;
}
