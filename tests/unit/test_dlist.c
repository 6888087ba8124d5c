/*
 * test_dlist.c -- the dlist parser and printer.
 *
 * Every case is parsed three ways -- whole, byte by byte, and split at
 * seeded random points -- and all three must give the same tree and the
 * same file-sink calls.  Round trips print what was parsed and parse it
 * again.  Limits and malformed input must fail with the precise error
 * and leave the stream in step for the next entry.
 */
#include "autoconf.h"

#include <errno.h>

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "tests/unit/test.h"

/* ---- a file sink that records what it is told ---------------------- */

#define MAX_BODIES 16

struct capture {
	struct buf log;			/* "begin(...)" "data" "end" trace */
	struct buf bodies[MAX_BODIES];
	int nbodies;
	int next_print;			/* for print_body() */
	int refuse_begin;		/* make begin() fail */
};

static int
cap_begin(void *arg, const char *part, const char *guid, uint64_t size)
{
	struct capture *c = arg;

	buf_printf(&c->log, "begin(%s %s %llu)", part, guid,
	    (unsigned long long)size);
	if (c->refuse_begin)
		return -1;
	if (c->nbodies < MAX_BODIES)
		buf_init(&c->bodies[c->nbodies++], 0);
	return 0;
}

static int
cap_data(void *arg, const void *p, size_t n)
{
	struct capture *c = arg;

	buf_append(&c->bodies[c->nbodies - 1], p, n);
	return 0;
}

static int
cap_end(void *arg)
{
	struct capture *c = arg;

	buf_printf(&c->log, "end(%zu)", c->bodies[c->nbodies - 1].len);
	return 0;
}

static void
cap_free(struct capture *c)
{
	int i;

	buf_free(&c->log);
	for (i = 0; i < c->nbodies; i++)
		buf_free(&c->bodies[i]);
	memset(c, 0, sizeof(*c));
}

static int
print_body(void *arg, const struct dlist *file, struct buf *out)
{
	struct capture *c = arg;
	struct buf *b;

	if (c->next_print >= c->nbodies)
		return -EINVAL;
	b = &c->bodies[c->next_print++];
	if (b->len != file->num)
		return -EINVAL;
	return buf_append(out, b->s, b->len);
}

/* ---- parsing helpers ------------------------------------------------ */

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

static unsigned rng_state;

static unsigned
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 16) & 0x7fff;
}

struct result {
	enum dlist_parse_status status;
	enum dlist_parse_error err;
	struct dlist *dl;
	size_t used;		/* bytes consumed in total */
	struct capture cap;
};

/*
 * Parses in[0..n) split as asked, stopping at the first DONE or ERROR.
 */
static void
parse_one(const struct dlist_limits *lim, const char *in, size_t n,
    enum split split, unsigned seed, struct result *res)
{
	struct dlist_file_sink sink = { cap_begin, cap_data, cap_end,
		&res->cap };
	struct dlist_parser *p;
	size_t off = 0;

	memset(res, 0, sizeof(*res));
	sink.arg = &res->cap;
	p = dlist_parser_new(lim, &sink);
	rng_state = seed;
	res->status = DLIST_NEED_MORE;
	while (off < n && res->status == DLIST_NEED_MORE) {
		size_t chunk = n - off, used;

		if (split == SPLIT_BYTES)
			chunk = 1;
		else if (split == SPLIT_RANDOM)
			chunk = 1 + rng() % (chunk < 40 ? chunk : 40);
		res->status = dlist_parser_feed(p, in + off, chunk, &used);
		off += used;
		if (res->status == DLIST_NEED_MORE && used != chunk) {
			res->status = DLIST_ERROR;	/* must consume all */
			break;
		}
	}
	res->used = off;
	res->err = dlist_parser_error(p);
	if (res->status == DLIST_DONE)
		res->dl = dlist_parser_take(p);
	dlist_parser_free(&p);
}

static void
result_free(struct result *r)
{
	dlist_free(&r->dl);
	cap_free(&r->cap);
}

/* Parses every way; checks all agree; returns the whole-input result. */
static void
parse_all_ways(const struct dlist_limits *lim, const char *in, size_t n,
    struct result *out)
{
	unsigned seed;
	struct result other;

	parse_one(lim, in, n, SPLIT_WHOLE, 0, out);
	for (seed = 0; seed < 12; seed++) {
		parse_one(lim, in, n, seed == 0 ? SPLIT_BYTES : SPLIT_RANDOM,
		    seed, &other);
		test_assert_int(other.status, out->status);
		test_assert_int(other.err, out->err);
		test_assert_int(other.used, out->used);
		test_assert((other.dl == NULL) == (out->dl == NULL));
		if (other.dl && out->dl)
			test_assert(dlist_equal(other.dl, out->dl));
		test_assert_str(buf_cstring(&other.cap.log),
		    buf_cstring(&out->cap.log));
		result_free(&other);
	}
}

static char *
print_entry(const struct dlist *dl, enum dlist_print_mode mode,
    struct capture *cap)
{
	struct dlist_printer pr = { mode, print_body, cap };
	struct buf b = BUF_INIT;

	if (cap)
		cap->next_print = 0;
	if (dlist_print_entry(dl, &b, &pr) < 0) {
		buf_free(&b);
		return NULL;
	}
	buf_puts(&b, "\r\n");
	return buf_release(&b);
}

/* ---- tests ----------------------------------------------------------- */

static void
atoms_and_strings(void)
{
	static const char in[] = "KEY %(A abc B \"two words\" C \"esc\\\"aped"
	    "\\\\\" D NIL E \"NIL\" F \"\" G \\Seen H 12345 I {5}\r\nhello "
	    "J {3+}\r\na\0b K \"tab\there\")\r\n";
	struct result r;
	const struct dlist *d;
	const char *s;
	size_t len;
	uint64_t v;

	parse_all_ways(NULL, in, sizeof(in) - 1, &r);
	test_assert_int(r.status, DLIST_DONE);
	test_assert_int(r.used, sizeof(in) - 1);
	test_assert(r.dl != NULL);
	if (r.dl == NULL)
		return;
	test_assert_str(r.dl->key, "KEY");
	test_assert_int(r.dl->type, DL_KVLIST);
	test_assert_int(r.dl->nchildren, 11);
	test_assert_int(dlist_get_str(r.dl, "A", &s), 0);
	test_assert_str(s, "abc");
	test_assert_int(dlist_get_str(r.dl, "B", &s), 0);
	test_assert_str(s, "two words");
	test_assert_int(dlist_get_str(r.dl, "C", &s), 0);
	test_assert_str(s, "esc\"aped\\");
	d = dlist_get(r.dl, "D");
	test_assert(d && d->type == DL_NIL);
	test_assert_int(dlist_get_str(r.dl, "D", &s), 0);
	test_assert(s == NULL);
	d = dlist_get(r.dl, "E");
	test_assert(d && d->type == DL_ATOM && strcmp(d->s, "NIL") == 0);
	test_assert_int(dlist_get_str(r.dl, "F", &s), 0);
	test_assert_str(s, "");
	d = dlist_get(r.dl, "G");
	test_assert(d && d->type == DL_FLAG && strcmp(d->s, "\\Seen") == 0);
	test_assert_int(dlist_get_num(r.dl, "H", &v), 0);
	test_assert_int(v, 12345);
	test_assert_int(dlist_get_num(r.dl, "A", &v), -EINVAL);
	test_assert_int(dlist_get_num(r.dl, "missing", &v), -ENOENT);
	test_assert_int(dlist_get_str(r.dl, "I", &s), 0);
	test_assert_str(s, "hello");
	test_assert_int(dlist_str(dlist_get(r.dl, "J"), &s, &len), 0);
	test_assert_int(len, 3);
	test_assert(memcmp(s, "a\0b", 3) == 0);
	test_assert_int(dlist_get_str(r.dl, "K", &s), 0);
	test_assert_str(s, "tab\there");
	result_free(&r);
}

static void
lists_and_nesting(void)
{
	static const char in[] = "MAILBOX %(UNIQUEID u1 EMPTY () EKV %() "
	    "RECORD (%(UID 1 FLAGS (\\Seen \\Flagged work) ANNOTATIONS "
	    "(%(ENTRY /x USERID \"\" VALUE 1))) %(UID 2 FLAGS ())) "
	    "NAMES (a \"b c\" NIL))\r\n";
	struct result r;
	const struct dlist *rec, *first, *flags;

	parse_all_ways(NULL, in, sizeof(in) - 1, &r);
	test_assert_int(r.status, DLIST_DONE);
	if (r.dl == NULL)
		return;
	test_assert_int(dlist_get(r.dl, "EMPTY")->type, DL_LIST);
	test_assert_int(dlist_get(r.dl, "EMPTY")->nchildren, 0);
	test_assert_int(dlist_get(r.dl, "EKV")->type, DL_KVLIST);
	rec = dlist_get(r.dl, "RECORD");
	test_assert(rec && rec->type == DL_LIST && rec->nchildren == 2);
	first = rec ? rec->head : NULL;
	test_assert(first && first->type == DL_KVLIST && first->key == NULL);
	flags = dlist_get(first, "FLAGS");
	test_assert(flags && flags->nchildren == 3);
	test_assert(flags && flags->head->type == DL_FLAG);
	test_assert(flags && flags->tail->type == DL_ATOM);
	test_assert_int(dlist_get(r.dl, "NAMES")->tail->type, DL_NIL);
	result_free(&r);
}

static void
file_literals_stream_to_sink(void)
{
	static const char in[] = "MESSAGE (%{default "
	    "85AD4A82F0AC38CF6696948CA6D8E98D10B5337E 11}\r\nhello\r\nworl "
	    "%{p2 0123456789abcdef0123456789abcdef01234567 0}\r\n "
	    "%{default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\nabc)\r\n";
	struct result r;
	const struct dlist *f;

	parse_all_ways(NULL, in, sizeof(in) - 1, &r);
	test_assert_int(r.status, DLIST_DONE);
	test_assert_str(buf_cstring(&r.cap.log),
	    "begin(default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 11)end(11)"
	    "begin(p2 0123456789abcdef0123456789abcdef01234567 0)end(0)"
	    "begin(default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3)end(3)");
	test_assert_int(r.cap.nbodies, 3);
	test_assert(r.cap.bodies[0].len == 11 &&
	    memcmp(r.cap.bodies[0].s, "hello\r\nworl", 11) == 0);
	if (r.dl == NULL)
		return;
	f = r.dl->head;
	test_assert(f && f->type == DL_FILE && f->num == 11);
	test_assert_str(f->s, "default");
	test_assert_str(f->guid, "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e");
	test_assert_int(r.dl->nchildren, 3);
	result_free(&r);
	/* A body larger than any buffer goes through in pieces. */
	{
		struct buf big = BUF_INIT;
		size_t body = 3u << 20;

		buf_printf(&big, "MESSAGE (%%{default %040d %zu}\r\n", 0, body);
		buf_reserve(&big, body + 8);
		memset(big.s + big.len, 'x', body);
		big.len += body;
		buf_puts(&big, ")\r\n");
		parse_one(NULL, big.s, big.len, SPLIT_RANDOM, 7, &r);
		test_assert_int(r.status, DLIST_DONE);
		test_assert_int(r.cap.bodies[0].len, body);
		result_free(&r);
		buf_free(&big);
	}
}

/*
 * Cyrus reads a file literal's partition as an astring and prints one
 * named NIL quoted (prot_printastring), so "%{"NIL" ...}" is what a
 * master with that partition sends: it parses, names the partition
 * NIL and prints back the same.  (Found by fuzz_dlist: the printer
 * quoted NIL, the parser refused the quotes.)
 */
static void
quoted_partition_as_cyrus_prints_it(void)
{
	static const char in[] = "MESSAGE (%{\"NIL\" "
	    "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\r\nabc "
	    "%{\"default\" 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 0}\r\n)"
	    "\r\n";
	struct result r;
	char *out;

	parse_all_ways(NULL, in, sizeof(in) - 1, &r);
	test_assert_int(r.status, DLIST_DONE);
	test_assert_str(buf_cstring(&r.cap.log),
	    "begin(NIL 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3)end(3)"
	    "begin(default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 0)end(0)");
	if (r.dl == NULL)
		return;
	test_assert_str(r.dl->head->s, "NIL");
	out = print_entry(r.dl, DLIST_PRINT_SERVER, &r.cap);
	test_assert(out != NULL && strstr(out, "(%{\"NIL\" 85ad") != NULL &&
	    strstr(out, " %{default 85ad") != NULL);
	free(out);
	result_free(&r);
}

static void
top_level_shapes(void)
{
	struct result r;

	parse_all_ways(NULL, "USER alice\r\n", 12, &r);
	test_assert_int(r.status, DLIST_DONE);
	test_assert(r.dl && r.dl->type == DL_ATOM && !strcmp(r.dl->key, "USER"));
	result_free(&r);
	/* Bare LF ends a line too. */
	parse_all_ways(NULL, "USER alice\n", 11, &r);
	test_assert_int(r.status, DLIST_DONE);
	result_free(&r);
	/* Quoted and literal keys. */
	parse_all_ways(NULL, "\"MY KEY\" v\r\n", 12, &r);
	test_assert(r.dl && !strcmp(r.dl->key, "MY KEY"));
	result_free(&r);
	parse_all_ways(NULL, "X %({2+}\r\nk1 v)\r\n", 17, &r);
	test_assert(r.dl && r.dl->head && !strcmp(r.dl->head->key, "k1"));
	result_free(&r);
	/* As in Cyrus, an unfinished entry waits for more input. */
	parse_all_ways(NULL, "USER\r\n", 6, &r);
	test_assert_int(r.status, DLIST_NEED_MORE);
	result_free(&r);
	parse_all_ways(NULL, "MAILBOXES (a b\r\n", 16, &r);
	test_assert_int(r.status, DLIST_NEED_MORE);
	result_free(&r);
	/* Line breaks between items inside a list are whitespace. */
	parse_all_ways(NULL, "M (a\r\nb)\r\n", 10, &r);
	test_assert_int(r.status, DLIST_DONE);
	test_assert(r.dl && r.dl->nchildren == 2);
	result_free(&r);
}

static void
several_entries_in_one_stream(void)
{
	static const char in[] = "A 1\r\nB (x y)\r\nC %(k v)\r\n";
	struct dlist_parser *p = dlist_parser_new(NULL, NULL);
	const char *keys[] = { "A", "B", "C" };
	size_t off = 0, used;
	int i;

	for (i = 0; i < 3; i++) {
		struct dlist *dl;

		test_assert_int(dlist_parser_feed(p, in + off,
		    sizeof(in) - 1 - off, &used), DLIST_DONE);
		off += used;
		dl = dlist_parser_take(p);
		test_assert(dl && strcmp(dl->key, keys[i]) == 0);
		dlist_free(&dl);
	}
	test_assert_int(off, sizeof(in) - 1);
	dlist_parser_free(&p);
}

/* Printer rules of sync-protocol.md section 3.3. */
static void
printer_astring_rules(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *server, *client;
	} cases[] = {
		{ "abc", 3, "abc", NULL },
		{ "", 0, "\"\"", NULL },
		{ "NIL", 3, "\"NIL\"", NULL },
		{ "nil", 3, "nil", NULL },
		{ "two words", 9, "\"two words\"", NULL },
		{ "a\tb", 3, "\"a\tb\"", NULL },
		{ "\x1f", 1, "\x1f", NULL },
		{ "[]+!^&/.@$:", 11, "[]+!^&/.@$:", NULL },
		{ "a*b", 3, "\"a*b\"", NULL },
		{ "a{b", 3, "\"a{b\"", NULL },
		{ "a(b", 3, "\"a(b\"", NULL },
		{ "a%b", 3, "{3}\r\na%b", "{3+}\r\na%b" },
		{ "a\\b", 3, "{3}\r\na\\b", "{3+}\r\na\\b" },
		{ "a\"b", 3, "{3}\r\na\"b", "{3+}\r\na\"b" },
		{ "a\r\nb", 4, "{4}\r\na\r\nb", "{4+}\r\na\r\nb" },
		{ "caf\xc3\xa9", 5, "{5}\r\ncaf\xc3\xa9", "{5+}\r\ncaf\xc3\xa9" },
		{ "a\0b", 3, "{3}\r\na\0b", "{3+}\r\na\0b" },
		{ "\x7f", 1, "\"\x7f\"", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;
		const char *want;
		size_t wlen;

		dlist_print_astring(&b, cases[i].in, cases[i].len,
		    DLIST_PRINT_SERVER);
		want = cases[i].server;
		wlen = strlen(want) + (memchr(cases[i].in, '\0', cases[i].len)
		    ? 2 : 0);
		if (b.len != wlen || memcmp(b.s, want, wlen) != 0) {
			fprintf(stderr, "case %zu: server got [%s]\n", i, b.s);
			test_assert(0);
		}
		buf_reset(&b);
		dlist_print_astring(&b, cases[i].in, cases[i].len,
		    DLIST_PRINT_CLIENT);
		want = cases[i].client ? cases[i].client : cases[i].server;
		wlen = strlen(want) + (memchr(cases[i].in, '\0', cases[i].len)
		    ? 2 : 0);
		if (b.len != wlen || memcmp(b.s, want, wlen) != 0) {
			fprintf(stderr, "case %zu: client got [%s]\n", i, b.s);
			test_assert(0);
		}
		buf_free(&b);
	}
	/* 1023 bytes is still an atom; 1024 is a literal. */
	{
		char s[1024];
		struct buf b = BUF_INIT;

		memset(s, 'a', sizeof(s));
		dlist_print_astring(&b, s, 1023, DLIST_PRINT_SERVER);
		test_assert_int(b.len, 1023);
		buf_reset(&b);
		dlist_print_astring(&b, s, 1024, DLIST_PRINT_SERVER);
		test_assert(b.len == 1024 + 8 && memcmp(b.s, "{1024}\r\n", 8) == 0);
		buf_free(&b);
	}
}

static void
printer_types(void)
{
	struct dlist *kv = dlist_new_kvlist("MAILBOX");
	struct dlist *l;
	struct dlist_printer pr = { DLIST_PRINT_SERVER, NULL, NULL };
	struct buf b = BUF_INIT;

	dlist_add_atom(kv, "MBOXNAME", "user.alice");
	dlist_add_num(kv, "UID", 4294967295u);
	dlist_add_hex(kv, "THRID", 0xabc);
	dlist_add_guid(kv, "GUID", "85AD4A82F0AC38CF6696948CA6D8E98D10B5337E");
	dlist_add_atom(kv, "ACL", "bob\tlrs\t");
	dlist_add_nil(kv, "N");
	l = dlist_add_list(kv, "FLAGS");
	dlist_add_flag(l, NULL, "\\Seen");
	dlist_add_flag(l, NULL, "$Label1");
	dlist_add_list(kv, "EMPTY");
	dlist_add_kvlist(kv, "EKV");
	test_assert_int(dlist_print_entry(kv, &b, &pr), 0);
	test_assert_str(buf_cstring(&b), "MAILBOX %(MBOXNAME user.alice "
	    "UID 4294967295 THRID 0000000000000abc "
	    "GUID 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e "
	    "ACL \"bob\tlrs\t\" N NIL FLAGS (\\Seen $Label1) EMPTY () "
	    "EKV %())");
	/* A file node without a body source cannot be printed. */
	buf_reset(&b);
	dlist_add_file(kv, "F", "default",
	    "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e", 3);
	test_assert_int(dlist_print_entry(kv, &b, &pr), -EINVAL);
	buf_free(&b);
	dlist_free(&kv);
	test_assert(kv == NULL);
}

/* parse -> print -> parse gives the same tree, in both modes. */
static void
round_trips(void)
{
	static const char *const inputs[] = {
		"APPLYX %(A \"x y\" B {4+}\r\nab\r\n C (1 2 (3 %(D NIL))) "
		    "E \\Answered F \"\" G \"NIL\")\r\n",
		"MESSAGE (%{default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e "
		    "5}\r\nhello %{p 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e "
		    "0}\r\n)\r\n",
		"SIEVE %(FILENAME x.script CONTENT {12}\r\nkeep;\r\nstop;)\r\n",
		"K v\r\n",
	};
	size_t i;
	int m;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct result a, b;

		parse_one(NULL, inputs[i], strlen(inputs[i]), SPLIT_WHOLE, 0,
		    &a);
		test_assert_int(a.status, DLIST_DONE);
		if (a.dl == NULL)
			continue;
		for (m = 0; m < 2; m++) {
			char *out = print_entry(a.dl, (enum dlist_print_mode)m,
			    &a.cap);

			test_assert(out != NULL);
			if (out == NULL)
				continue;
			parse_all_ways(NULL, out, strlen(out), &b);
			test_assert_int(b.status, DLIST_DONE);
			test_assert(b.dl && dlist_equal(a.dl, b.dl));
			test_assert_str(buf_cstring(&b.cap.log),
			    buf_cstring(&a.cap.log));
			/* Printing is stable: a second round is identical. */
			{
				char *again = print_entry(b.dl,
				    (enum dlist_print_mode)m, &b.cap);

				test_assert_str(again, out);
				free(again);
			}
			result_free(&b);
			free(out);
		}
		result_free(&a);
	}
}

struct bad_case {
	const char *in;
	size_t len;		/* 0: strlen */
	enum dlist_parse_error err;
	const char *msg;	/* substring of the error text */
};

/* Runs each bad input, then checks that skip_line() keeps the stream in
 * step: the following "NEXT ok" entry must parse. */
static void
run_bad_cases(const struct dlist_limits *lim, const struct bad_case *cases,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct buf in = BUF_INIT;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		unsigned seed;

		size_t err_off0 = 0;

		buf_append(&in, cases[i].in, len);
		buf_puts(&in, "NEXT ok\r\n");
		for (seed = 0; seed < 4; seed++) {
			struct dlist_parser *p = dlist_parser_new(lim, NULL);
			enum dlist_parse_status st = DLIST_NEED_MORE;
			size_t off = 0, used;
			int dones = 0;
			struct dlist *dl = NULL;

			rng_state = seed;
			while (off < in.len) {
				size_t chunk = seed == 0 ? in.len - off :
				    1 + rng() % 7;

				if (chunk > in.len - off)
					chunk = in.len - off;
				st = dlist_parser_feed(p, in.s + off, chunk,
				    &used);
				off += used;
				if (st == DLIST_ERROR) {
					/* The error is at the same byte
					 * however the input was split. */
					if (seed == 0)
						err_off0 = off;
					else if (off != err_off0) {
						fprintf(stderr, "bad case %zu "
						    "seed %u: error at byte "
						    "%zu, whole at %zu\n", i,
						    seed, off, err_off0);
						test_assert(0);
					}
					if (dlist_parser_error(p) !=
					    cases[i].err ||
					    !strstr(dlist_parser_errstr(p),
					    cases[i].msg)) {
						fprintf(stderr, "bad case %zu: "
						    "error %d \"%s\"\n", i,
						    dlist_parser_error(p),
						    dlist_parser_errstr(p));
						test_assert(0);
					}
					dlist_parser_skip_line(p);
				} else if (st == DLIST_DONE) {
					dones++;
					dl = dlist_parser_take(p);
					if (dl != NULL)
						break;
				}
			}
			/* The skipped line may end exactly where it failed. */
			if (dl == NULL && st != DLIST_DONE) {
				st = dlist_parser_feed(p, "", 0, &used);
				if (st == DLIST_DONE)
					dl = dlist_parser_take(p);
			}
			if (dl == NULL || strcmp(dl->key, "NEXT") != 0) {
				fprintf(stderr, "bad case %zu seed %u: stream "
				    "out of step (st=%d dones=%d off=%zu/%zu)\n",
				    i, seed, st, dones, off, in.len);
				test_assert(0);
			}
			test_assert(dones >= 1);
			dlist_free(&dl);
			dlist_parser_free(&p);
		}
		buf_free(&in);
	}
}

static void
malformed_input(void)
{
	static const struct bad_case cases[] = {
		{ "K (a))\r\n", 0, DLIST_E_SYNTAX, "junk after the value" },
		{ "K a b\r\n", 0, DLIST_E_SYNTAX, "junk after the value" },
		{ "K a\rX\r\n", 0, DLIST_E_SYNTAX, "CR not followed by LF" },
		{ "K \"abc\r\n", 0, DLIST_E_SYNTAX, "line break inside" },
		{ "K \"ab\\\n", 0, DLIST_E_SYNTAX, "line break inside" },
		{ "K {x}\r\n", 0, DLIST_E_SYNTAX, "bad literal header" },
		{ "K {}\r\n", 0, DLIST_E_SYNTAX, "bad literal header" },
		{ "K {3+x\r\n", 0, DLIST_E_SYNTAX, "bad literal header" },
		{ "K {3}x\r\n", 0, DLIST_E_SYNTAX, "not followed by CRLF" },
		{ "K {99999999999999999999}\r\n", 0, DLIST_E_SYNTAX,
		    "bad literal header" },
		{ "K %x\r\n", 0, DLIST_E_SYNTAX, "not followed by" },
		{ "K %(a)\r\n", 0, DLIST_E_SYNTAX, "expected a space after key" },
		{ "K %(a )\r\n", 0, DLIST_E_SYNTAX, "missing value" },
		{ "K %((a) b)\r\n", 0, DLIST_E_SYNTAX, "key must be a string" },
		{ "K (a)b\r\n", 0, DLIST_E_SYNTAX, "junk after" },
		{ "K (a b)(c)\r\n", 0, DLIST_E_SYNTAX, "junk after" },
		{ "(K) v\r\n", 0, DLIST_E_SYNTAX, "missing key" },
		{ " K v\r\n", 0, DLIST_E_SYNTAX, "missing key" },
		{ "\r\n", 0, DLIST_E_SYNTAX, "missing key" },
		{ "K(v)\r\n", 0, DLIST_E_SYNTAX, "expected a space after key" },
		{ "{3+}\r\na\0b v\r\n", 13, DLIST_E_SYNTAX, "NUL byte in a key" },
		{ "K %{default abc 3}\r\nxyz\r\n", 0, DLIST_E_FILE,
		    "GUID is not 40 hex" },
		{ "K %{def\xff" "ault 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\r\n"
		    "abc)\r\n", 0, DLIST_E_FILE, "bad partition name" },
		{ "K %{a\"b 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\r\n"
		    "abc)\r\n", 0, DLIST_E_FILE, "bad partition name" },
		{ "K %{\"\" 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\r\n"
		    "abc)\r\n", 0, DLIST_E_FILE, "bad partition name" },
		{ "K %{\"NIL 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\r\n"
		    "abc)\r\n", 0, DLIST_E_FILE, "bad partition name" },
		{ "K %{\"a\"b\" 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}\r\n"
		    "abc)\r\n", 0, DLIST_E_FILE, "bad partition name" },
		{ "K %{default 5}\r\n", 0, DLIST_E_FILE,
		    "not %{partition guid size}" },
		{ "K %{default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e x}\r\n",
		    0, DLIST_E_FILE, "size is not a number" },
		{ "K %{default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3\r\n",
		    0, DLIST_E_FILE, "bad file literal header" },
		{ "K %{default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 3}x"
		    "\r\n", 0, DLIST_E_SYNTAX, "not followed by CRLF" },
	};

	run_bad_cases(NULL, cases, sizeof(cases) / sizeof(cases[0]));
}

static void
limits(void)
{
	struct dlist_limits lim = dlist_limits_default;
	static const struct bad_case cases[] = {
		/* max_token 16 */
		{ "K aaaaaaaaaaaaaaaaa\r\n", 0, DLIST_E_TOKEN, "longer than 16" },
		{ "K \"aaaaaaaaaaaaaaaaa\"\r\n", 0, DLIST_E_TOKEN,
		    "longer than 16" },
		{ "K \"aaaaaaaaaaaaaaaa{3}\r\nxyz\r\n", 0, DLIST_E_TOKEN,
		    "longer than 16" },
		/* max_literal 8: the payload is stepped over, even if it
		 * looks like commands */
		{ "K {9+}\r\nX a\r\nY b\r\n", 0, DLIST_E_LITERAL,
		    "literal of 9 bytes" },
		{ "K (a {9}\r\nX a\r\nY b)\r\n", 0, DLIST_E_LITERAL,
		    "over the limit of 8" },
		/* max_file 32 */
		{ "K %{p 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 33}\r\n"
		    "X 123456789012345678901234567890\r\n", 0, DLIST_E_FILE,
		    "over the limit of 32" },
		/* max_depth 3 */
		{ "K ((((a))))\r\n", 0, DLIST_E_DEPTH, "deeper than 3" },
		{ "K %(a %(b %(c %(d e))))\r\n", 0, DLIST_E_DEPTH,
		    "deeper than 3" },
		/* max_items 10 */
		{ "K (1 2 3 4 5 6 7 8 9 10 11)\r\n", 0, DLIST_E_ITEMS,
		    "more than 10 items" },
		/* max_line 64 */
		{ "K (aaaaaaaaaaaaaa bbbbbbbbbbbbbbbb cccccccccccccccc "
		    "dddddddddddddddd)\r\n", 0, DLIST_E_LINE,
		    "longer than 64" },
		{ "K (aaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbb cccccccccccccccc {8+}\r\n"
		    "12345678)\r\n", 0, DLIST_E_LINE, "longer than 64" },
	};
	struct result r;

	lim.max_token = 16;
	lim.max_literal = 8;
	lim.max_file = 32;
	lim.max_depth = 3;
	lim.max_items = 10;
	lim.max_line = 64;
	run_bad_cases(&lim, cases, sizeof(cases) / sizeof(cases[0]));
	/* Exactly at each limit is fine. */
	lim.max_literal = 60;
	parse_all_ways(&lim, "K (((aaaaaaaaaaaaaaaa {8+}\r\n12345678)))\r\n",
	    41, &r);
	test_assert_int(r.status, DLIST_DONE);
	result_free(&r);
	parse_all_ways(&lim, "K (1 2 3 4 5 6 7 8 9)\r\n", 23, &r);
	test_assert_int(r.status, DLIST_DONE);	/* list + 9 = 10 items */
	result_free(&r);
	parse_all_ways(&lim, "K %{p 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e "
	    "32}\r\n12345678901234567890123456789012\r\n", 86, &r);
	test_assert_int(r.status, DLIST_DONE);
	result_free(&r);
}

static void
sink_refusal_keeps_stream_in_step(void)
{
	static const char in[] = "MESSAGE (%{p "
	    "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 12}\r\nX 1\r\nY 2\r\nZ"
	    ")\r\nNEXT ok\r\n";
	struct capture cap = { .refuse_begin = 1 };
	struct dlist_file_sink sink = { cap_begin, cap_data, cap_end, &cap };
	struct dlist_parser *p = dlist_parser_new(NULL, &sink);
	size_t off = 0, used;
	struct dlist *dl;

	test_assert_int(dlist_parser_feed(p, in, sizeof(in) - 1, &used),
	    DLIST_ERROR);
	test_assert_int(dlist_parser_error(p), DLIST_E_SINK);
	off += used;
	dlist_parser_skip_line(p);
	test_assert_int(dlist_parser_feed(p, in + off, sizeof(in) - 1 - off,
	    &used), DLIST_DONE);
	off += used;
	test_assert_int(dlist_parser_feed(p, in + off, sizeof(in) - 1 - off,
	    &used), DLIST_DONE);
	dl = dlist_parser_take(p);
	test_assert(dl && strcmp(dl->key, "NEXT") == 0);
	dlist_free(&dl);
	dlist_parser_free(&p);
	cap_free(&cap);
}

static void
accessors(void)
{
	struct dlist *kv = dlist_new_kvlist(NULL);
	char guid[41];
	uint64_t v;

	dlist_add_atom(kv, "G", "85AD4A82F0AC38CF6696948CA6D8E98D10B5337E");
	dlist_add_atom(kv, "SHORT", "85ad");
	dlist_add_atom(kv, "BIG", "18446744073709551616");
	dlist_add_atom(kv, "DUP", "first");
	dlist_add_atom(kv, "DUP", "second");
	dlist_add_atom(kv, "lower", "x");
	test_assert_int(dlist_guid(dlist_get(kv, "G"), guid), 0);
	test_assert_str(guid, "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e");
	test_assert_int(dlist_guid(dlist_get(kv, "SHORT"), guid), -EINVAL);
	test_assert_int(dlist_get_num(kv, "BIG", &v), -EINVAL);
	test_assert_str(dlist_get(kv, "DUP")->s, "first");
	test_assert(dlist_get(kv, "LOWER") == NULL);	/* case-sensitive */
	dlist_free(&kv);
}

TEST_MAIN(T(atoms_and_strings), T(lists_and_nesting),
    T(file_literals_stream_to_sink), T(quoted_partition_as_cyrus_prints_it),
    T(top_level_shapes),
    T(several_entries_in_one_stream), T(printer_astring_rules),
    T(printer_types), T(round_trips), T(malformed_input), T(limits),
    T(sink_refusal_keeps_stream_in_step), T(accessors))
