/*
 * dlist_parse.c -- byte-level state machine for one dlist entry.
 *
 * Grammar (sync-protocol.md section 3.2), as read here:
 *
 *   entry   = key 1*WS value [CR] LF
 *   value   = "(" [item *(1*WS item)] ")"            list
 *           / "%(" [key 1*WS value *(1*WS ...)] ")"  kvlist
 *           / "%{" part SP guid SP size "}" [CR] LF *OCTET   file
 *           / "{" number ["+"] "}" [CR] LF *OCTET            literal
 *           / DQUOTE *(char / "\" char) DQUOTE               quoted
 *           / atom       ; "NIL" is nil, "\..." is a flag
 *   key     = atom / quoted / literal
 *
 * WS inside containers and between the top key and its value includes CR
 * and LF, as in Cyrus's reader: an unfinished command waits for more
 * input rather than failing.  The top-level value must be followed
 * directly by the end of line.
 *
 * Invariants: a byte is consumed exactly once; containers are on an
 * explicit stack never deeper than max_depth; no token, literal or entry
 * grows past its limit; file-literal bytes only ever go to the sink.
 *
 * The record hook: every place a value ends calls value_done(), which,
 * when that value is an element of the hooked list, pops it off the list
 * (it is the list's only child: each earlier one was popped as it ended)
 * and hands it over.  items and line_bytes count it all the same.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_parse.h"

const struct dlist_limits dlist_limits_default = {
	.max_line = (size_t)256 << 20,
	.max_token = (size_t)128 << 10,
	.max_literal = (size_t)128 << 10,
	.max_file = UINT32_MAX,
	.max_depth = 16,
	.max_items = (size_t)8 << 20,
};

#define FILE_HDR_MAX 1024
#define SKIP_HDR_MAX 1024

enum state {
	ST_KEY_START,	/* first byte of the top-level key */
	ST_KEY_SEP,	/* whitespace between a key and its value */
	ST_VALUE_START,	/* first byte of a value (whitespace skipped) */
	ST_ITEM_START,	/* next item in a container, or ")" */
	ST_PCT,		/* after "%": "(" or "{" */
	ST_ATOM,
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_LIT_NUM,	/* after "{": digits */
	ST_LIT_CLOSE,	/* after "+": "}" */
	ST_LIT_CR,	/* after "}": CR or LF */
	ST_LIT_LF,
	ST_LIT_DATA,
	ST_FILE_HDR,	/* after "%{": up to "}" */
	ST_FILE_CR,
	ST_FILE_LF,
	ST_FILE_DATA,
	ST_AFTER_VALUE,
	ST_EOL_LF,	/* top level: after CR */
	ST_ERROR,
	/* discarding the rest of a bad line */
	ST_SKIP,
	ST_SKIP_LBRACE,	/* after "{": digits, "+", "}" */
	ST_SKIP_PCT,	/* after "%": maybe "{" */
	ST_SKIP_FHDR,	/* after "%{": up to "}" */
	ST_SKIP_NL,	/* after a literal header: CR? LF */
	ST_SKIP_NL_LF,
	ST_SKIP_BYTES,	/* payload to drop */
	ST_SKIP_ENDED,	/* the bad line already ended */
};

enum origin { ORIGIN_ATOM, ORIGIN_QUOTED, ORIGIN_LITERAL };

struct dlist_parser {
	struct dlist_limits lim;
	struct dlist_file_sink sink;
	bool have_sink;

	enum state state;
	bool want_key;		/* the token being read is a key */
	bool lit_sync;		/* literal had no "+" */
	struct buf tok;		/* the token being read */
	char *pending_key;	/* key read, value not yet */
	struct dlist *result;	/* the entry under construction */
	struct dlist **stack;	/* open containers */
	unsigned depth;
	size_t items;
	size_t line_bytes;
	uint64_t remaining;	/* literal/file/skip payload left */
	uint64_t skip_num;	/* size being read in skip mode */
	unsigned ndigits;	/* digits of a literal header */

	enum dlist_parse_error err;
	enum state err_resume;	/* where skip_line() starts */
	char errstr[256];

	/* the record hook (see dlist_parse.h) */
	char *hook_key;		/* NULL: no hook */
	int (*hook_fn)(void *, struct dlist *, size_t);
	void *hook_arg;
	unsigned hook_depth;	/* the open hooked list is stack[this - 1] */
	int64_t hook_offset;	/* its "(" from the entry's start, or -1 */
	size_t hook_count;	/* elements handed over in this entry */
	uint64_t fed;		/* bytes consumed before this feed() call */
	uint64_t entry_start;	/* fed-stream position of the entry */
	size_t at;		/* index of the byte being read in feed() */
};

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

static bool
ends_atom(char c)
{
	return is_ws(c) || c == '(' || c == ')' || c == '"';
}

struct dlist_parser *
dlist_parser_new(const struct dlist_limits *limits,
    const struct dlist_file_sink *sink)
{
	struct dlist_parser *p = xcalloc(1, sizeof(*p));

	buf_init(&p->tok, 0);
	dlist_parser_set_limits(p, limits);
	if (sink != NULL) {
		p->sink = *sink;
		p->have_sink = true;
	}
	dlist_parser_reset(p);
	return p;
}

void
dlist_parser_set_limits(struct dlist_parser *p,
    const struct dlist_limits *limits)
{
	p->lim = limits ? *limits : dlist_limits_default;
	if (p->lim.max_depth == 0)
		p->lim.max_depth = 1;
	p->stack = xreallocarray(p->stack, p->lim.max_depth,
	    sizeof(*p->stack));
	if (p->depth > p->lim.max_depth)
		dlist_parser_reset(p);
}

void
dlist_parser_free(struct dlist_parser **pp)
{
	struct dlist_parser *p = *pp;

	if (p == NULL)
		return;
	dlist_parser_reset(p);
	buf_free(&p->tok);
	free(p->stack);
	free(p->hook_key);
	free(p);
	*pp = NULL;
}

void
dlist_parser_reset(struct dlist_parser *p)
{
	dlist_free(&p->result);
	free(p->pending_key);
	p->pending_key = NULL;
	buf_reset(&p->tok);
	p->state = ST_KEY_START;
	p->want_key = true;
	p->depth = 0;
	p->items = 0;
	p->line_bytes = 0;
	p->remaining = 0;
	p->err = DLIST_E_NONE;
	p->errstr[0] = '\0';
	p->hook_depth = 0;
	p->hook_offset = -1;
	p->hook_count = 0;
}

void
dlist_parser_set_record_hook(struct dlist_parser *p,
    const struct dlist_record_hook *hook)
{
	free(p->hook_key);
	p->hook_key = NULL;
	p->hook_fn = NULL;
	p->hook_arg = NULL;
	p->hook_depth = 0;
	if (hook == NULL || hook->key == NULL || hook->record == NULL)
		return;
	p->hook_key = xstrdup(hook->key);
	p->hook_fn = hook->record;
	p->hook_arg = hook->arg;
}

int64_t
dlist_parser_record_offset(const struct dlist_parser *p)
{
	return p->hook_offset;
}

size_t
dlist_parser_record_count(const struct dlist_parser *p)
{
	return p->hook_count;
}

struct dlist *
dlist_parser_take(struct dlist_parser *p)
{
	struct dlist *dl = p->result;

	p->result = NULL;
	return dl;
}

enum dlist_parse_error
dlist_parser_error(const struct dlist_parser *p)
{
	return p->err;
}

const char *
dlist_parser_errstr(const struct dlist_parser *p)
{
	return p->errstr;
}

size_t
dlist_parser_line_bytes(const struct dlist_parser *p)
{
	return p->line_bytes;
}

/* An entry ended: keep the result for take(), clear the counters. */
static enum dlist_parse_status
entry_done(struct dlist_parser *p)
{
	p->state = ST_KEY_START;
	p->want_key = true;
	p->depth = 0;
	p->items = 0;
	p->line_bytes = 0;
	return DLIST_DONE;
}

/* Records an error; resume says where skip_line() picks up. */
static enum dlist_parse_status fail(struct dlist_parser *p,
    enum dlist_parse_error err, enum state resume, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum dlist_parse_status
fail(struct dlist_parser *p, enum dlist_parse_error err, enum state resume,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	p->err = err;
	p->err_resume = resume;
	p->state = ST_ERROR;
	n = snprintf(p->errstr, sizeof(p->errstr), "at byte %zu: ",
	    p->line_bytes);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(p->errstr))
		vsnprintf(p->errstr + n, sizeof(p->errstr) - (size_t)n, fmt,
		    ap);
	va_end(ap);
	return DLIST_ERROR;
}

void
dlist_parser_skip_line(struct dlist_parser *p)
{
	dlist_free(&p->result);
	free(p->pending_key);
	p->pending_key = NULL;
	p->depth = 0;
	p->hook_depth = 0;
	buf_reset(&p->tok);
	p->state = p->err_resume;
}

/* Adds a finished node to the open container, or makes it the entry. */
static int
attach(struct dlist_parser *p, struct dlist *dl)
{
	if (++p->items > p->lim.max_items) {
		dlist_free(&dl);
		return -1;
	}
	dl->key = p->pending_key;
	p->pending_key = NULL;
	if (p->depth == 0)
		p->result = dl;
	else
		dlist_append(p->stack[p->depth - 1], dl);
	return 0;
}

static enum dlist_parse_status
items_error(struct dlist_parser *p)
{
	return fail(p, DLIST_E_ITEMS, ST_SKIP, "more than %zu items",
	    p->lim.max_items);
}

/*
 * A value has just ended (the state moves past it): if it is an element
 * of the hooked list, hand it over.  Called with depth already lowered
 * when the value was a container.
 */
static enum dlist_parse_status
value_done(struct dlist_parser *p)
{
	struct dlist *elem;
	size_t index;

	if (p->hook_depth == 0)
		return DLIST_NEED_MORE;
	if (p->depth < p->hook_depth) {
		p->hook_depth = 0;	/* the hooked list itself ended */
		return DLIST_NEED_MORE;
	}
	if (p->depth != p->hook_depth)
		return DLIST_NEED_MORE;
	elem = dlist_pop_first(p->stack[p->depth - 1]);
	index = p->hook_count++;
	if (p->hook_fn(p->hook_arg, elem, index) != 0)
		return fail(p, DLIST_E_HOOK, ST_SKIP,
		    "record %zu refused", index);
	return DLIST_NEED_MORE;
}

/* A string token is complete: it becomes a key or a value node. */
static enum dlist_parse_status
finish_string(struct dlist_parser *p, enum origin origin)
{
	struct dlist *dl;

	if (p->want_key) {
		if (memchr(p->tok.s ? p->tok.s : "", '\0', p->tok.len) != NULL)
			return fail(p, DLIST_E_SYNTAX, ST_SKIP,
			    "NUL byte in a key");
		if (p->tok.len == 0 && origin == ORIGIN_ATOM)
			return fail(p, DLIST_E_SYNTAX, ST_SKIP, "missing key");
		p->pending_key = xmemdup0(buf_cstring(&p->tok), p->tok.len);
		p->want_key = false;
		p->state = ST_KEY_SEP;
		buf_reset(&p->tok);
		return DLIST_NEED_MORE;
	}
	if (origin == ORIGIN_ATOM && p->tok.len == 3 &&
	    memcmp(p->tok.s, "NIL", 3) == 0) {
		dl = xcalloc(1, sizeof(*dl));
		dl->type = DL_NIL;
	} else {
		dl = dlist_new_atom(NULL, buf_cstring(&p->tok), p->tok.len);
		if (origin == ORIGIN_ATOM && p->tok.s[0] == '\\')
			dl->type = DL_FLAG;
	}
	buf_reset(&p->tok);
	if (attach(p, dl) < 0)
		return items_error(p);
	p->state = ST_AFTER_VALUE;
	return value_done(p);
}

static enum dlist_parse_status
open_container(struct dlist_parser *p, enum dlist_type type)
{
	struct dlist *dl;
	bool hooked;

	if (p->depth >= p->lim.max_depth)
		return fail(p, DLIST_E_DEPTH, ST_SKIP,
		    "nesting deeper than %u", p->lim.max_depth);
	/* Only the first such list of an entry is hooked. */
	hooked = p->hook_key != NULL && type == DL_LIST && p->depth == 1 &&
	    p->stack[0]->type == DL_KVLIST && p->hook_offset < 0 &&
	    p->pending_key != NULL && strcmp(p->pending_key, p->hook_key) == 0;
	dl = type == DL_LIST ? dlist_new_list(NULL) : dlist_new_kvlist(NULL);
	if (attach(p, dl) < 0)
		return items_error(p);
	if (hooked) {
		p->hook_depth = p->depth + 1;
		p->hook_offset = (int64_t)(p->fed + p->at - p->entry_start);
	}
	p->stack[p->depth++] = dl;
	p->state = ST_ITEM_START;
	return DLIST_NEED_MORE;
}

/* Starts a value at byte c (not whitespace); returns status. */
static enum dlist_parse_status
start_value(struct dlist_parser *p, char c, bool *consumed)
{
	*consumed = true;
	switch (c) {
	case '(':
		return open_container(p, DL_LIST);
	case '%':
		p->state = ST_PCT;
		return DLIST_NEED_MORE;
	case '{':
		p->remaining = 0;
		p->ndigits = 0;
		p->lit_sync = true;
		p->state = ST_LIT_NUM;
		return DLIST_NEED_MORE;
	case '"':
		p->tok.max = p->lim.max_token;
		buf_reset(&p->tok);
		p->state = ST_QUOTED;
		return DLIST_NEED_MORE;
	case ')':
		return fail(p, DLIST_E_SYNTAX, ST_SKIP,
		    p->want_key ? "missing key" : "missing value");
	default:
		*consumed = false;
		p->tok.max = p->lim.max_token;
		buf_reset(&p->tok);
		p->state = ST_ATOM;
		return DLIST_NEED_MORE;
	}
}

/* Parses "part guid size" of a file literal header in p->tok. */
static enum dlist_parse_status
file_header(struct dlist_parser *p)
{
	char *hdr = p->tok.s, *sp1, *sp2;
	enum state resume = ST_SKIP;
	uint64_t size = 0;
	struct dlist *dl;

	sp1 = memchr(hdr, ' ', p->tok.len);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', p->tok.len - (size_t)(sp1 + 1 - hdr))
		  : NULL;
	/*
	 * Once the size is known the body can be stepped over whatever else
	 * is wrong, so every later error resumes after the body.
	 */
	if (sp2 != NULL && parse_u64(sp2 + 1,
	    p->tok.len - (size_t)(sp2 + 1 - hdr), &size) == 0) {
		p->skip_num = size;
		resume = ST_SKIP_NL;
	}
	if (sp1 == NULL || sp2 == NULL || sp1 == hdr ||
	    memchr(hdr, '\0', p->tok.len) != NULL)
		return fail(p, DLIST_E_FILE, resume,
		    "file literal header is not %%{partition guid size}");
	/*
	 * Cyrus reads the partition as an astring and prints it as one: an
	 * atom, or quoted where it is not one (a partition named NIL).  A
	 * partition is a configured name: printable, no specials, so that
	 * it always prints back the same way.
	 */
	if (hdr[0] == '"') {
		if (sp1 - hdr < 3 || sp1[-1] != '"')
			return fail(p, DLIST_E_FILE, resume,
			    "bad partition name in file literal");
		hdr++;
		sp1[-1] = '\0';
	}
	for (size_t i = 0; hdr + i < sp1 && hdr[i] != '\0'; i++) {
		unsigned char c = (unsigned char)hdr[i];

		if (c <= ' ' || c >= 0x7f || strchr("(){}\"%*\\", c) != NULL)
			return fail(p, DLIST_E_FILE, resume,
			    "bad partition name in file literal");
	}
	if (sp2 - sp1 - 1 != 40 || !is_hex(sp1 + 1, 40))
		return fail(p, DLIST_E_FILE, resume,
		    "file literal GUID is not 40 hex digits");
	if (resume != ST_SKIP_NL)
		return fail(p, DLIST_E_FILE, ST_SKIP,
		    "file literal size is not a number");
	*sp1 = '\0';
	sp1[41] = '\0';
	dl = xcalloc(1, sizeof(*dl));
	dl->type = DL_FILE;
	dl->len = strlen(hdr);
	dl->s = xmemdup0(hdr, dl->len);
	dl->guid = xcalloc(1, 41);
	for (size_t i = 0; i < 40; i++) {
		char c = sp1[1 + i];

		dl->guid[i] = (c >= 'A' && c <= 'F') ? (char)(c + 32) : c;
	}
	dl->num = size;
	buf_reset(&p->tok);
	if (attach(p, dl) < 0)
		return fail(p, DLIST_E_ITEMS, ST_SKIP_NL, "more than %zu items",
		    p->lim.max_items);
	if (size > p->lim.max_file) {
		return fail(p, DLIST_E_FILE, ST_SKIP_NL,
		    "file literal of %llu bytes is over the limit of %llu",
		    (unsigned long long)size,
		    (unsigned long long)p->lim.max_file);
	}
	p->remaining = size;
	p->state = ST_FILE_CR;
	return DLIST_NEED_MORE;
}

/* The file literal's header line ended: tell the sink. */
static enum dlist_parse_status
file_begin(struct dlist_parser *p)
{
	struct dlist *dl = p->depth ? p->stack[p->depth - 1]->tail : p->result;

	if (p->have_sink && p->sink.begin &&
	    p->sink.begin(p->sink.arg, dl->s, dl->guid, dl->num) != 0) {
		p->skip_num = 0;
		p->remaining = dl->num;
		return fail(p, DLIST_E_SINK, ST_SKIP_BYTES,
		    "file literal %s refused", dl->guid);
	}
	if (dl->num == 0) {
		if (p->have_sink && p->sink.end && p->sink.end(p->sink.arg))
			return fail(p, DLIST_E_SINK, ST_SKIP,
			    "file literal %s refused", dl->guid);
		p->state = ST_AFTER_VALUE;
		return value_done(p);
	} else {
		p->state = ST_FILE_DATA;
	}
	return DLIST_NEED_MORE;
}

/* A literal's header line ended. */
static enum dlist_parse_status
literal_begin(struct dlist_parser *p)
{
	buf_reset(&p->tok);
	p->tok.max = p->lim.max_literal;
	if (p->remaining == 0)
		return finish_string(p, ORIGIN_LITERAL);
	p->state = ST_LIT_DATA;
	return DLIST_NEED_MORE;
}

static enum dlist_parse_status
literal_header_done(struct dlist_parser *p)
{
	if (p->remaining > p->lim.max_literal) {
		p->skip_num = p->remaining;
		return fail(p, DLIST_E_LITERAL, ST_SKIP_NL,
		    "literal of %llu bytes is over the limit of %zu",
		    (unsigned long long)p->remaining, p->lim.max_literal);
	}
	if (p->line_bytes + p->remaining > p->lim.max_line) {
		p->skip_num = p->remaining;
		return fail(p, DLIST_E_LINE, ST_SKIP_NL,
		    "entry longer than %zu bytes", p->lim.max_line);
	}
	p->state = ST_LIT_CR;
	return DLIST_NEED_MORE;
}

/*
 * Skip mode for one byte c: discards the rest of a bad line, stepping
 * over literal and file-literal payloads.  Returns true at end of line.
 */
static bool
skip_byte(struct dlist_parser *p, char c)
{
	switch (p->state) {
	case ST_SKIP:
		if (c == '\n')
			return true;
		if (c == '{') {
			p->skip_num = 0;
			buf_reset(&p->tok);
			p->state = ST_SKIP_LBRACE;
		} else if (c == '%') {
			p->state = ST_SKIP_PCT;
		}
		return false;
	case ST_SKIP_LBRACE: {
		/* "{" digits ["+"] "}" */
		bool plus = p->tok.len > 0 && p->tok.s[p->tok.len - 1] == '+';

		if (c >= '0' && c <= '9' && !plus && p->tok.len < 20) {
			buf_putc(&p->tok, c);
			return false;
		}
		if (c == '+' && p->tok.len > 0 && !plus) {
			buf_putc(&p->tok, c);
			return false;
		}
		if (c == '}' && p->tok.len > (plus ? 1u : 0u) &&
		    parse_u64(p->tok.s, p->tok.len - (plus ? 1 : 0),
		    &p->skip_num) == 0) {
			p->state = ST_SKIP_NL;
			return false;
		}
		p->state = ST_SKIP;
		return skip_byte(p, c);
	}
	case ST_SKIP_PCT:
		if (c == '{') {
			buf_reset(&p->tok);
			p->state = ST_SKIP_FHDR;
			return false;
		}
		p->state = ST_SKIP;
		return skip_byte(p, c);
	case ST_SKIP_FHDR:
		if (c == '}') {
			const char *sp = p->tok.len ?
			    memrchr(p->tok.s, ' ', p->tok.len) : NULL;

			if (sp != NULL &&
			    parse_u64(sp + 1, p->tok.len - (size_t)(sp + 1 -
			    p->tok.s), &p->skip_num) == 0) {
				p->state = ST_SKIP_NL;
				return false;
			}
			p->state = ST_SKIP;
			return false;
		}
		if (c == '\n' || p->tok.len >= SKIP_HDR_MAX) {
			p->state = ST_SKIP;
			return skip_byte(p, c);
		}
		buf_putc(&p->tok, c);
		return false;
	case ST_SKIP_NL:
		if (c == '\r') {
			p->state = ST_SKIP_NL_LF;
			return false;
		}
		FALLTHROUGH;
	case ST_SKIP_NL_LF:
		if (c == '\n') {
			p->remaining = p->skip_num;
			p->state = p->remaining ? ST_SKIP_BYTES : ST_SKIP;
			return false;
		}
		p->state = ST_SKIP;
		return skip_byte(p, c);
	default:
		return false;
	}
}

static enum dlist_parse_status feed(struct dlist_parser *p,
    const char *data, size_t n, size_t *used);

enum dlist_parse_status
dlist_parser_feed(struct dlist_parser *p, const char *data, size_t n,
    size_t *used)
{
	enum dlist_parse_status st = feed(p, data, n, used);

	p->fed += *used;
	return st;
}

static enum dlist_parse_status
feed(struct dlist_parser *p, const char *data, size_t n, size_t *used)
{
	enum dlist_parse_status st = DLIST_NEED_MORE;
	size_t i = 0;
	bool consumed;

	if (p->state == ST_ERROR) {
		*used = 0;
		return DLIST_ERROR;
	}
	if (p->state == ST_SKIP_ENDED) {
		*used = 0;
		p->state = ST_KEY_START;
		dlist_parser_reset(p);
		return DLIST_DONE;
	}
	while (i < n) {
		char c = data[i];

		/* Bulk states first: they consume many bytes at once. */
		if (p->state == ST_FILE_DATA || p->state == ST_SKIP_BYTES) {
			size_t k = n - i;

			if (k > p->remaining)
				k = (size_t)p->remaining;
			if (p->state == ST_FILE_DATA && p->have_sink &&
			    p->sink.data &&
			    p->sink.data(p->sink.arg, data + i, k) != 0) {
				p->remaining -= k;
				i += k;
				*used = i;
				return fail(p, DLIST_E_SINK, ST_SKIP_BYTES,
				    "file literal body refused");
			}
			i += k;
			p->remaining -= k;
			if (p->remaining > 0)
				break;
			if (p->state == ST_SKIP_BYTES) {
				p->state = ST_SKIP;
				continue;
			}
			if (p->have_sink && p->sink.end &&
			    p->sink.end(p->sink.arg) != 0) {
				*used = i;
				return fail(p, DLIST_E_SINK, ST_SKIP,
				    "file literal body refused");
			}
			p->state = ST_AFTER_VALUE;
			st = value_done(p);
			if (st == DLIST_ERROR)
				goto out;
			continue;
		}
		if (p->state == ST_LIT_DATA) {
			size_t k = n - i;

			if (k > p->remaining)
				k = (size_t)p->remaining;
			buf_append(&p->tok, data + i, k); /* bounded above */
			i += k;
			p->line_bytes += k;
			p->remaining -= k;
			if (p->remaining > 0)
				break;
			st = finish_string(p, ORIGIN_LITERAL);
			if (st == DLIST_ERROR)
				goto out;
			continue;
		}
		if (p->state == ST_ATOM || p->state == ST_QUOTED) {
			/* Scan a run of plain token bytes in one go. */
			size_t j = i;

			if (p->state == ST_ATOM)
				while (j < n && !ends_atom(data[j]))
					j++;
			else
				while (j < n && data[j] != '"' &&
				    data[j] != '\\' && data[j] != '\r' &&
				    data[j] != '\n')
					j++;
			if (j > i) {
				/*
				 * Fail at exactly the byte a byte-at-a-time
				 * feed would fail at, so that where the bad
				 * line is skipped from never depends on how
				 * the input was split.
				 */
				size_t run = j - i;
				size_t room_tok = p->tok.max - p->tok.len;
				size_t room_line = p->line_bytes >=
				    p->lim.max_line ? 0 : p->lim.max_line -
				    p->line_bytes;

				if (room_tok < run && room_tok <= room_line) {
					buf_append(&p->tok, data + i, room_tok);
					p->line_bytes += room_tok;
					*used = i + room_tok;
					return fail(p, DLIST_E_TOKEN, ST_SKIP,
					    "string longer than %zu bytes",
					    p->lim.max_token);
				}
				if (room_line < run) {
					buf_append(&p->tok, data + i,
					    room_line + 1);
					p->line_bytes += room_line + 1;
					i += room_line + 1;
					goto too_long;
				}
				buf_append(&p->tok, data + i, run);
				p->line_bytes += run;
				i = j;
				continue;
			}
		}
		if (p->state >= ST_SKIP) {
			i++;
			if (skip_byte(p, c)) {
				dlist_parser_reset(p);
				*used = i;
				return DLIST_DONE;
			}
			continue;
		}

		consumed = true;
		p->at = i;
		switch (p->state) {
		case ST_KEY_START:
			if (c == '\r' || c == '\n' || c == ' ' || c == '(' ||
			    c == ')' || c == '%') {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "missing key");
			}
			dlist_free(&p->result);	/* never taken */
			p->entry_start = p->fed + i;
			p->hook_depth = 0;
			p->hook_offset = -1;
			p->hook_count = 0;
			p->want_key = true;
			st = start_value(p, c, &consumed);
			break;
		case ST_KEY_SEP:
			if (!is_ws(c)) {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX, ST_SKIP,
				    "expected a space after key \"%s\"",
				    p->pending_key);
			}
			p->state = ST_VALUE_START;
			break;
		case ST_VALUE_START:
			if (is_ws(c))
				break;
			st = start_value(p, c, &consumed);
			break;
		case ST_ITEM_START:
			if (is_ws(c))
				break;
			if (c == ')') {
				p->depth--;
				p->state = ST_AFTER_VALUE;
				st = value_done(p);
				break;
			}
			p->want_key = p->stack[p->depth - 1]->type == DL_KVLIST;
			if (p->want_key && (c == '(' || c == '%')) {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX, ST_SKIP,
				    "a kvlist key must be a string");
			}
			st = start_value(p, c, &consumed);
			break;
		case ST_PCT:
			if (c == '(') {
				st = open_container(p, DL_KVLIST);
			} else if (c == '{') {
				buf_reset(&p->tok);
				p->tok.max = FILE_HDR_MAX;
				p->state = ST_FILE_HDR;
			} else {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "\"%%\" not followed by \"(\" or \"{\"");
			}
			break;
		case ST_ATOM:
			/* Only reached at a byte that ends the atom. */
			consumed = false;
			st = finish_string(p, ORIGIN_ATOM);
			break;
		case ST_QUOTED:
			if (c == '"') {
				st = finish_string(p, ORIGIN_QUOTED);
			} else if (c == '\\') {
				p->state = ST_QUOTED_ESC;
			} else {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "line break inside a quoted string");
			}
			break;
		case ST_QUOTED_ESC:
			if (c == '\r' || c == '\n') {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "line break inside a quoted string");
			}
			if (buf_putc(&p->tok, c) < 0) {
				*used = i;
				return fail(p, DLIST_E_TOKEN, ST_SKIP,
				    "string longer than %zu bytes",
				    p->lim.max_token);
			}
			p->state = ST_QUOTED;
			break;
		case ST_LIT_NUM:
			if (c >= '0' && c <= '9' && p->remaining <=
			    (UINT64_MAX - (uint64_t)(c - '0')) / 10) {
				p->remaining = p->remaining * 10 +
				    (uint64_t)(c - '0');
				p->ndigits++;
			} else if (c == '+' && p->ndigits > 0) {
				p->lit_sync = false;
				p->state = ST_LIT_CLOSE;
			} else if (c == '}' && p->ndigits > 0) {
				i++;
				p->line_bytes++;
				st = literal_header_done(p);
				if (st == DLIST_ERROR) {
					*used = i;
					return st;
				}
				continue;
			} else {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "bad literal header");
			}
			break;
		case ST_LIT_CLOSE:
			if (c != '}') {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "bad literal header");
			}
			i++;
			p->line_bytes++;
			st = literal_header_done(p);
			if (st == DLIST_ERROR) {
				*used = i;
				return st;
			}
			continue;
		case ST_LIT_CR:
		case ST_FILE_CR:
			if (c == '\r') {
				p->state = p->state == ST_LIT_CR ? ST_LIT_LF
								 : ST_FILE_LF;
				break;
			}
			FALLTHROUGH;
		case ST_LIT_LF:
		case ST_FILE_LF:
			if (c != '\n') {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX, ST_SKIP,
				    "literal header not followed by CRLF");
			}
			i++;
			p->line_bytes++;
			if (p->state == ST_LIT_CR || p->state == ST_LIT_LF)
				st = literal_begin(p);
			else
				st = file_begin(p);
			if (st == DLIST_ERROR) {
				*used = i;
				return st;
			}
			continue;
		case ST_FILE_HDR:
			if (c == '}') {
				i++;
				p->line_bytes++;
				st = file_header(p);
				if (st == DLIST_ERROR) {
					*used = i;
					return st;
				}
				continue;
			}
			if (c == '\n' || buf_putc(&p->tok, c) < 0) {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_FILE,
				    c == '\n' ? ST_SKIP_ENDED : ST_SKIP,
				    "bad file literal header");
			}
			break;
		case ST_AFTER_VALUE:
			if (p->depth > 0) {
				if (is_ws(c)) {
					p->state = ST_ITEM_START;
				} else if (c == ')') {
					p->depth--;
					st = value_done(p);
				} else {
					i++;
					p->line_bytes++;
					*used = i;
					return fail(p, DLIST_E_SYNTAX, ST_SKIP,
					    "expected space or \")\" after a "
					    "value");
				}
			} else if (c == '\r') {
				p->state = ST_EOL_LF;
			} else if (c == '\n') {
				*used = i + 1;
				return entry_done(p);
			} else {
				i++;
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX, ST_SKIP,
				    "junk after the value");
			}
			break;
		case ST_EOL_LF:
			i++;
			if (c != '\n') {
				p->line_bytes++;
				*used = i;
				return fail(p, DLIST_E_SYNTAX, ST_SKIP,
				    "CR not followed by LF");
			}
			*used = i;
			return entry_done(p);
		default:
			break;
		}
		if (st == DLIST_ERROR) {
			if (consumed)
				i++;
			goto out;
		}
		if (consumed) {
			i++;
			if (++p->line_bytes > p->lim.max_line)
				goto too_long;
		}
	}
	*used = i;
	return DLIST_NEED_MORE;

too_long:
	*used = i;
	return fail(p, DLIST_E_LINE, ST_SKIP, "entry longer than %zu bytes",
	    p->lim.max_line);
out:
	*used = i;
	return st;
}
