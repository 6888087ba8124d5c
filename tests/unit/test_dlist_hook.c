/*
 * test_dlist_hook.c -- the dlist parser's record hook.
 *
 * The hook takes the elements of an entry's RECORD list out of the tree
 * one by one as they complete; the ingest of a huge APPLY MAILBOX and
 * the replay of its journal record rely on that to stay in bounded
 * memory.  Every case is fed whole, byte by byte, and in two pieces split
 * at every byte boundary: the elements handed over, their order, the tree
 * left behind, the offset of the list's "(" and any error must be the
 * same every way, and must match what the parser gives without the hook.
 */
#include "autoconf.h"

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "protocol/dlist.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "tests/unit/test.h"

/* What one parse saw. */
struct seen {
	struct buf records;	/* each element printed, then "|" */
	size_t nrecords;
	long refuse_at;		/* refuse this index (-1: never) */
	enum dlist_parse_status status;
	enum dlist_parse_error err;
	size_t used;
	char *tree;		/* the entry printed, or NULL */
	int64_t offset;
	size_t count;
};

static int
on_record(void *arg, struct dlist *elem, size_t index)
{
	struct seen *s = arg;
	struct dlist_printer pr = { DLIST_PRINT_SERVER, NULL, NULL };
	int refuse = s->refuse_at >= 0 && (size_t)s->refuse_at == index;

	test_assert_int(index, s->nrecords);
	test_assert(elem != NULL && elem->key == NULL);
	dlist_print_value(elem, &s->records, &pr);
	buf_putc(&s->records, '|');
	s->nrecords++;
	dlist_free(&elem);	/* ours, refused or not */
	return refuse ? -1 : 0;
}

static char *
print_tree(const struct dlist *dl)
{
	struct dlist_printer pr = { DLIST_PRINT_SERVER, NULL, NULL };
	struct buf b = BUF_INIT;

	if (dlist_print_entry(dl, &b, &pr) < 0) {
		buf_free(&b);
		return xstrdup("(unprintable)");
	}
	return buf_release(&b);
}

static void
seen_free(struct seen *s)
{
	buf_free(&s->records);
	free(s->tree);
	memset(s, 0, sizeof(*s));
}

/*
 * Parses in[0..n) with the hook on (or off), in pieces: first the bytes
 * before `split` (0: whole), then the rest, or one byte at a time when
 * bytewise.  Stops at the first DONE or ERROR.
 */
static void
parse(const struct dlist_limits *lim, bool hook, const char *in, size_t n,
    size_t split, bool bytewise, long refuse_at, struct seen *s)
{
	struct dlist_record_hook h = { "RECORD", on_record, s };
	struct dlist_parser *p = dlist_parser_new(lim, NULL);
	size_t off = 0;

	memset(s, 0, sizeof(*s));
	s->refuse_at = refuse_at;
	if (hook)
		dlist_parser_set_record_hook(p, &h);
	s->status = DLIST_NEED_MORE;
	while (off < n && s->status == DLIST_NEED_MORE) {
		size_t chunk = n - off, used;

		if (bytewise)
			chunk = 1;
		else if (split > off)
			chunk = split - off;
		s->status = dlist_parser_feed(p, in + off, chunk, &used);
		off += used;
		if (s->status == DLIST_NEED_MORE && used != chunk) {
			s->status = DLIST_ERROR;	/* must consume all */
			break;
		}
	}
	s->used = off;
	s->err = dlist_parser_error(p);
	s->offset = dlist_parser_record_offset(p);
	s->count = dlist_parser_record_count(p);
	if (s->status == DLIST_DONE) {
		struct dlist *dl = dlist_parser_take(p);

		s->tree = print_tree(dl);
		dlist_free(&dl);
	}
	dlist_parser_free(&p);
}

static bool
same(const struct seen *a, const struct seen *b)
{
	return a->status == b->status && a->err == b->err &&
	    a->used == b->used && a->offset == b->offset &&
	    a->count == b->count && a->nrecords == b->nrecords &&
	    a->records.len == b->records.len &&
	    (a->records.len == 0 ||
	    memcmp(a->records.s, b->records.s, a->records.len) == 0) &&
	    ((a->tree == NULL && b->tree == NULL) ||
	    (a->tree && b->tree && strcmp(a->tree, b->tree) == 0));
}

/*
 * Parses every way with the hook and checks they agree; *out gets the
 * whole-input result.  Returns the number of disagreeing ways.
 */
static int
parse_every_way(const struct dlist_limits *lim, const char *in, size_t n,
    long refuse_at, struct seen *out)
{
	struct seen other;
	int bad = 0;

	parse(lim, true, in, n, 0, false, refuse_at, out);
	parse(lim, true, in, n, 0, true, refuse_at, &other);
	bad += !same(out, &other);
	seen_free(&other);
	for (size_t k = 1; k < n; k++) {
		parse(lim, true, in, n, k, false, refuse_at, &other);
		if (!same(out, &other)) {
			fprintf(stderr, "split at %zu differs\n", k);
			bad++;
		}
		seen_free(&other);
	}
	return bad;
}

/* The RECORD elements of a tree parsed without the hook, printed. */
static char *
records_without_hook(const char *in, size_t n)
{
	struct dlist_printer pr = { DLIST_PRINT_SERVER, NULL, NULL };
	struct dlist_parser *p = dlist_parser_new(NULL, NULL);
	struct buf b = BUF_INIT;
	struct dlist *dl;
	const struct dlist *list, *e;
	size_t used;

	if (dlist_parser_feed(p, in, n, &used) == DLIST_DONE) {
		dl = dlist_parser_take(p);
		list = dlist_get(dl, "RECORD");
		for (e = list ? list->head : NULL; e; e = e->next) {
			dlist_print_value(e, &b, &pr);
			buf_putc(&b, '|');
		}
		dlist_free(&dl);
	}
	dlist_parser_free(&p);
	buf_putc(&b, '\0');
	return buf_release(&b);
}

#define MBOX                                                              \
	"MAILBOX %(UNIQUEID 2c4c1ae0 MBOXNAME user.big LAST_UID 4 "       \
	"RECORD (%(UID 1 MODSEQ 5 FLAGS (\\Seen $Label) GUID "            \
	"85ad4a82f0ac38cf6696948ca6d8e98d10b5337e) "                      \
	"%(UID 2 FLAGS () ANNOTATIONS (%(ENTRY /comment USERID \"\" "     \
	"VALUE {5}\r\nab\r\nc))) "                                        \
	"%(UID 4 FLAGS (\\Deleted) NAME \"a b\") ) SYNC_CRC 77)\r\n"

/* ---- tests ----------------------------------------------------------- */

static void
records_handed_over_in_order(void)
{
	static const char in[] = MBOX;
	struct seen s;
	char *want = records_without_hook(in, sizeof(in) - 1);

	test_assert_int(parse_every_way(NULL, in, sizeof(in) - 1, -1, &s), 0);
	test_assert_int(s.status, DLIST_DONE);
	test_assert_int(s.used, sizeof(in) - 1);
	test_assert_int(s.nrecords, 3);
	test_assert_int(s.count, 3);
	test_assert(s.records.len > 0);
	buf_putc(&s.records, '\0');
	test_assert_str(s.records.s, want);
	/* literal inside a record, delivered intact */
	test_assert(strstr(s.records.s, "ab\r\nc") != NULL);
	/* the tree keeps the list, empty, and everything around it */
	test_assert_str(s.tree, "MAILBOX %(UNIQUEID 2c4c1ae0 MBOXNAME "
	    "user.big LAST_UID 4 RECORD () SYNC_CRC 77)");
	test_assert_int(s.offset, strstr(in, "RECORD (") - in + 7);
	test_assert_int(in[s.offset], '(');
	free(want);
	seen_free(&s);
}

static void
scalar_and_empty_elements(void)
{
	static const char in[] =
	    "MAILBOX %(RECORD (a \"b c\" {2+}\r\nxy NIL () %()) X 1)\r\n";
	static const char empty[] = "MAILBOX %(A 1 RECORD () B 2)\r\n";
	struct seen s;

	test_assert_int(parse_every_way(NULL, in, sizeof(in) - 1, -1, &s), 0);
	test_assert_int(s.status, DLIST_DONE);
	buf_putc(&s.records, '\0');
	test_assert_str(s.records.s, "a|\"b c\"|xy|NIL|()|%()|");
	test_assert_str(s.tree, "MAILBOX %(RECORD () X 1)");
	test_assert_int(s.offset, 17);
	seen_free(&s);

	test_assert_int(parse_every_way(NULL, empty, sizeof(empty) - 1, -1,
	    &s), 0);
	test_assert_int(s.status, DLIST_DONE);
	test_assert_int(s.nrecords, 0);
	test_assert_int(s.offset, strstr(empty, "RECORD (") - empty + 7);
	test_assert_str(s.tree, "MAILBOX %(A 1 RECORD () B 2)");
	seen_free(&s);
}

/* Lists that look like RECORD but are not the hooked one stay put. */
static void
only_the_first_depth1_list(void)
{
	static const struct {
		const char *in, *tree;
		int64_t offset;
	} cases[] = {
		/* deeper */
		{ "MAILBOX %(X %(RECORD (a b)))\r\n",
		    "MAILBOX %(X %(RECORD (a b)))", -1 },
		/* a kvlist, not a list */
		{ "MAILBOX %(RECORD %(A b))\r\n",
		    "MAILBOX %(RECORD %(A b))", -1 },
		/* the top-level value is a list */
		{ "MAILBOX (RECORD (a b))\r\n",
		    "MAILBOX (RECORD (a b))", -1 },
		/* key differs in case */
		{ "MAILBOX %(record (a b))\r\n",
		    "MAILBOX %(record (a b))", -1 },
		/* a second RECORD list is left in the tree */
		{ "MAILBOX %(RECORD (a) RECORD (b))\r\n",
		    "MAILBOX %(RECORD () RECORD (b))", 17 },
		/* the hooked list's own nested lists stay in the element */
		{ "M %(RECORD ((a (b)) c))\r\n", "M %(RECORD ())", 11 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen s;
		size_t n = strlen(cases[i].in);

		test_assert_int(parse_every_way(NULL, cases[i].in, n, -1, &s),
		    0);
		test_assert_int(s.status, DLIST_DONE);
		if (i == 5) {
			buf_putc(&s.records, '\0');
			test_assert_str(s.records.s, "(a (b))|c|");
		}
		test_assert_str(s.tree, cases[i].tree);
		test_assert_int(s.offset, cases[i].offset);
		seen_free(&s);
	}
}

/*
 * max_items, max_line and max_depth fail at the same byte with the same
 * error with the hook as without, for every limit up to the entry's need.
 */
static void
limits_still_enforced(void)
{
	static const char in[] = MBOX;
	size_t n = sizeof(in) - 1;

	for (size_t lim_v = 1; lim_v <= 40; lim_v++) {
		for (int which = 0; which < 3; which++) {
			struct dlist_limits lim = dlist_limits_default;
			struct seen with, without;

			if (which == 0)
				lim.max_items = lim_v;
			else if (which == 1)
				lim.max_line = lim_v * 8;
			else if (lim_v <= 6)
				lim.max_depth = (unsigned)lim_v;
			else
				continue;
			test_assert_int(parse_every_way(&lim, in, n, -1,
			    &with), 0);
			parse(&lim, false, in, n, 0, false, -1, &without);
			test_assert_int(with.status, without.status);
			test_assert_int(with.err, without.err);
			test_assert_int(with.used, without.used);
			seen_free(&with);
			seen_free(&without);
		}
	}
	/*
	 * Handed-over records still count: one item short of what the
	 * whole entry needs is refused at its last item, after the records.
	 */
	{
		struct dlist_limits lim = dlist_limits_default;
		struct seen s;
		size_t need = 1;

		for (;; need++) {
			lim.max_items = need;
			parse(&lim, false, in, n, 0, false, -1, &s);
			if (s.status == DLIST_DONE || need > 1000)
				break;
			seen_free(&s);
		}
		seen_free(&s);
		test_assert(need > 20 && need < 1000);
		lim.max_items = need - 1;
		parse(&lim, true, in, n, 0, false, -1, &s);
		test_assert_int(s.status, DLIST_ERROR);
		test_assert_int(s.err, DLIST_E_ITEMS);
		test_assert_int(s.nrecords, 3);
		seen_free(&s);
		lim.max_items = need;
		parse(&lim, true, in, n, 0, false, -1, &s);
		test_assert_int(s.status, DLIST_DONE);
		seen_free(&s);
	}
}

/* A refusal stops the entry; skip_line() keeps the stream in step. */
static void
refusal_keeps_stream_in_step(void)
{
	static const char in[] = MBOX "NEXT %(RECORD (z))\r\n";
	struct dlist_record_hook h = { "RECORD", on_record, NULL };
	struct seen s;
	struct dlist_parser *p;
	struct dlist *dl;
	size_t off, used;

	test_assert_int(parse_every_way(NULL, in, sizeof(MBOX) - 1, 1, &s),
	    0);
	test_assert_int(s.status, DLIST_ERROR);
	test_assert_int(s.err, DLIST_E_HOOK);
	test_assert_int(s.nrecords, 2);
	seen_free(&s);

	memset(&s, 0, sizeof(s));
	s.refuse_at = 0;
	h.arg = &s;
	p = dlist_parser_new(NULL, NULL);
	dlist_parser_set_record_hook(p, &h);
	test_assert_int(dlist_parser_feed(p, in, sizeof(in) - 1, &used),
	    DLIST_ERROR);
	test_assert_int(dlist_parser_error(p), DLIST_E_HOOK);
	dlist_parser_skip_line(p);
	off = used;
	test_assert_int(dlist_parser_feed(p, in + off, sizeof(in) - 1 - off,
	    &used), DLIST_DONE);
	off += used;
	test_assert_int(off, sizeof(MBOX) - 1);
	/* the next entry: hooked afresh, its offset from its own start */
	s.refuse_at = -1;
	s.nrecords = 0;
	test_assert_int(dlist_parser_feed(p, in + off, sizeof(in) - 1 - off,
	    &used), DLIST_DONE);
	test_assert_int(dlist_parser_record_offset(p), 14);
	test_assert_int(dlist_parser_record_count(p), 1);
	dl = dlist_parser_take(p);
	test_assert(dl && strcmp(dl->key, "NEXT") == 0);
	dlist_free(&dl);
	/* the hook removed: elements stay in the tree */
	dlist_parser_set_record_hook(p, NULL);
	test_assert_int(dlist_parser_feed(p, in + off, sizeof(in) - 1 - off,
	    &used), DLIST_DONE);
	test_assert_int(dlist_parser_record_offset(p), -1);
	dl = dlist_parser_take(p);
	test_assert(dl && dlist_get(dl, "RECORD")->head != NULL);
	dlist_free(&dl);
	dlist_parser_free(&p);
	seen_free(&s);
}

/* The offset counts every byte fed, file-literal payloads included. */
static void
offset_counts_file_bodies(void)
{
	static const char in[] = "A %(F %{default "
	    "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 4}\r\nwxyz "
	    "RECORD (%(UID 1)))\r\n";
	struct seen s;

	test_assert_int(parse_every_way(NULL, in, sizeof(in) - 1, -1, &s), 0);
	test_assert_int(s.status, DLIST_DONE);
	test_assert_int(s.offset, strstr(in, "RECORD (") - in + 7);
	test_assert_int(s.nrecords, 1);
	seen_free(&s);
}

TEST_MAIN(T(records_handed_over_in_order), T(scalar_and_empty_elements),
    T(only_the_first_depth1_list), T(limits_still_enforced),
    T(refusal_keeps_stream_in_step), T(offset_counts_file_bodies))
