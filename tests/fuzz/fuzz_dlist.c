/*
 * fuzz_dlist.c -- libFuzzer target for the csync reader and dlist parser.
 *
 * The input is read as a server would read a master's commands, with
 * small limits so every limit is reachable.  Properties checked:
 *  - feeding the input whole and in pieces of 1..17 bytes (the sizes
 *    taken from the input itself) gives the same sequence of lines,
 *    entries (equal trees) and file bodies;
 *  - every entry that parsed prints (client and server mode) to text
 *    that parses back to an equal tree.
 * A violated property aborts, which libFuzzer reports as a crash.
 *
 * Cost: the parser goes byte by byte, and under -fsanitize=fuzzer every
 * comparison it makes calls a hook (half the time, measured with perf),
 * so each pass over the input costs about the same.  The target makes
 * one whole pass (with the round trips) and one pass in pieces, and
 * compares the pieces' entries to the whole pass's with dlist_equal()
 * instead of printing both: every split point is still tried, over the
 * inputs, at about a third of the former cost (whole, then pieces of 1,
 * of 1..9 and of 1..17 bytes, each entry printed for the comparison).
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
	struct buf log;		/* everything but entries, in order */
	struct buf body;	/* the current file body */
	struct buf bodies;	/* all bodies, concatenated, for printing */
	size_t print_off;
	/* Whole pass: its entries, kept; pieces: how many compared. */
	struct dlist **entries;
	size_t n, cap;
	const struct trace *ref;	/* pieces: the whole pass */
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

/* For the report of a difference: file bodies left out. */
static int
t_print_none(void *arg, const struct dlist *file, struct buf *out)
{
	(void)arg;
	(void)file;
	(void)out;
	return 0;
}

static void
print_entry(const char *what, const struct dlist *e)
{
	struct dlist_printer pr = { DLIST_PRINT_SERVER, t_print_none, NULL };
	struct buf tmp = BUF_INIT;

	(void)dlist_print_entry(e, &tmp, &pr);
	fprintf(stderr, "%s: %.*s\n", what, (int)tmp.len, buf_cstring(&tmp));
	buf_free(&tmp);
}

/* Whole pass: checks and keeps e; pieces: compares it with the whole's. */
static void
entry_seen(struct dlist *e, struct trace *t, size_t line_bodies)
{
	const struct trace *ref = t->ref;

	buf_printf(&t->log, "D%zu", t->n);
	if (ref == NULL) {
		check_round_trip(e, t, line_bodies);
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 16;
			t->entries = realloc(t->entries, t->cap *
			    sizeof(*t->entries));
			if (t->entries == NULL)
				abort();
		}
		t->entries[t->n++] = e;
		return;
	}
	if (t->n >= ref->n || !dlist_equal(ref->entries[t->n], e)) {
		fprintf(stderr, "split into pieces, entry %zu reads "
		    "differently\n", t->n);
		if (t->n < ref->n)
			print_entry("whole ", ref->entries[t->n]);
		print_entry("pieces", e);
		abort();
	}
	t->n++;
	dlist_free(&e);
}

static void
trace_free(struct trace *t)
{
	size_t i;

	for (i = 0; i < t->n && t->ref == NULL; i++)
		dlist_free(&t->entries[i]);
	free(t->entries);
	buf_free(&t->log);
	buf_free(&t->body);
	buf_free(&t->bodies);
}

/* Reads all lines; step 0 feeds whole, else pieces of 1..step bytes. */
static void
run(const uint8_t *data, size_t size, unsigned step, struct trace *t)
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
			if (e != NULL)
				entry_seen(e, t, line_bodies);
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

	memset(&a, 0, sizeof(a));
	run(data, size, 0, &a);
	memset(&b, 0, sizeof(b));
	b.ref = &a;
	run(data, size, 17, &b);
	if (a.log.len != b.log.len ||
	    memcmp(buf_cstring(&a.log), buf_cstring(&b.log), a.log.len) != 0 ||
	    a.bodies.len != b.bodies.len ||
	    memcmp(buf_cstring(&a.bodies), buf_cstring(&b.bodies),
	    a.bodies.len) != 0) {
		fprintf(stderr, "split into pieces of 1..17 bytes, the input "
		    "reads differently:\nwhole:  %.*s\npieces: %.*s\n",
		    (int)a.log.len, buf_cstring(&a.log), (int)b.log.len,
		    buf_cstring(&b.log));
		abort();
	}
	trace_free(&b);
	trace_free(&a);
	return 0;
}
