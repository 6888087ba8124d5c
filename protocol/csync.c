/*
 * csync.c -- csync line reader and reply/command writers.
 *
 * The reader is a small state machine in front of the dlist parser: it
 * reads the first word, then either hands the rest of the line to the
 * parser (dlist verbs) or captures it as text.  Text capture steps over
 * a trailing "{N}"/"{N+}" literal the way Cyrus skips unknown commands,
 * so a stray literal can never be taken for further commands.
 *
 * Before authentication the reader is in pre-auth mode: every line is a
 * word and plain text, read to its end and never past it, so a line
 * that announces a literal ("APPLY MESSAGE ({999999999999}") is answered
 * at once, as Cyrus answers it.  Cyrus then drops a refused line's
 * non-synchronizing literal ("{N+}" at the end of a line) with the rest
 * of the line after it; csync_reader_eat() does the same, within the
 * pre-auth line limit and never further.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"

enum rstate {
	R_VERB,		/* reading the first word */
	R_VERB_LF,	/* word ended at CR: expect LF */
	R_DLIST,	/* feeding the dlist parser */
	R_DLIST_SKIP,	/* parser is skipping a bad line */
	R_TEXT,		/* capturing text to end of line */
	R_TEXT_LIT,	/* dropping a literal inside text */
	R_SKIP,		/* dropping a bad line (word too long) */
	R_EAT_LIT,	/* pre-auth: dropping a refused line's literal */
	R_EAT_LINE,	/* pre-auth: dropping the rest of that line */
};

#define EAT_TAIL 32		/* bytes kept to spot "{N+}" at a line's end */

struct csync_reader {
	enum csync_role role;
	bool banner;
	struct dlist_limits lim;
	struct dlist_parser *parser;
	enum rstate state;
	bool line_done;		/* a line was returned; reset on next feed */
	bool raw_next;		/* the next line is text without a verb */
	bool preauth;		/* lines are words and text, no literals */
	uint64_t eat_left;	/* bytes csync_reader_eat() may still drop */
	char tail[EAT_TAIL];	/* the end of the line being dropped */
	size_t tail_len;
	struct buf verb;
	struct buf text;
	bool has_text;
	bool text_truncated;
	bool text_literal;
	uint64_t lit_left;
	struct dlist *entry;
	enum csync_bad bad;
	enum dlist_parse_error dlist_err;
	char errstr[300];
};

struct csync_reader *
csync_reader_new(enum csync_role role, const struct dlist_limits *limits,
    const struct dlist_file_sink *sink)
{
	struct csync_reader *r = xcalloc(1, sizeof(*r));

	r->role = role;
	r->lim = limits ? *limits : dlist_limits_default;
	r->parser = dlist_parser_new(&r->lim, sink);
	buf_init(&r->verb, r->lim.max_token);
	buf_init(&r->text, r->lim.max_token);
	r->state = R_VERB;
	return r;
}

void
csync_reader_free(struct csync_reader **rp)
{
	struct csync_reader *r = *rp;

	if (r == NULL)
		return;
	dlist_parser_free(&r->parser);
	buf_free(&r->verb);
	buf_free(&r->text);
	dlist_free(&r->entry);
	free(r);
	*rp = NULL;
}

void
csync_reader_set_limits(struct csync_reader *r,
    const struct dlist_limits *limits)
{
	r->lim = limits ? *limits : dlist_limits_default;
	dlist_parser_set_limits(r->parser, &r->lim);
	r->verb.max = r->lim.max_token;
	r->text.max = r->lim.max_token;
}

void
csync_reader_set_record_hook(struct csync_reader *r,
    const struct dlist_record_hook *hook)
{
	dlist_parser_set_record_hook(r->parser, hook);
}

void
csync_reader_raw_line(struct csync_reader *r)
{
	r->raw_next = true;
}

void
csync_reader_set_preauth(struct csync_reader *r, bool on)
{
	r->preauth = on;
}

bool
csync_literal_plus(const char *text, size_t len, uint64_t *n)
{
	size_t i;

	if (len < 4 || text[len - 1] != '}' || text[len - 2] != '+')
		return false;
	i = len - 2;
	while (i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9')
		i--;
	return i > 0 && text[i - 1] == '{' && i < len - 2 &&
	    parse_u64(text + i, len - 2 - i, n) == 0;
}

int
csync_reader_eat(struct csync_reader *r, uint64_t n)
{
	if (n > r->lim.max_line)
		return -1;
	r->eat_left = r->lim.max_line - n;
	r->lit_left = n;
	r->tail_len = 0;
	r->state = n > 0 ? R_EAT_LIT : R_EAT_LINE;
	r->line_done = false;
	return 0;
}

/* Keeps the last EAT_TAIL bytes of the line being dropped. */
static void
eat_tail(struct csync_reader *r, const char *p, size_t n)
{
	if (n >= EAT_TAIL) {
		memcpy(r->tail, p + n - EAT_TAIL, EAT_TAIL);
		r->tail_len = EAT_TAIL;
		return;
	}
	if (r->tail_len + n > EAT_TAIL) {
		size_t drop = r->tail_len + n - EAT_TAIL;

		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, p, n);
	r->tail_len += n;
}

void
csync_reader_set_banner(struct csync_reader *r, bool on)
{
	r->banner = on;
}

/* Does this verb take a dlist argument in this role? */
static bool
verb_takes_dlist(const struct csync_reader *r)
{
	const char *v = buf_cstring(&r->verb);

	if (r->preauth)
		return false;
	if (r->role == CSYNC_SERVER)
		return strcmp(v, "GET") == 0 || strcmp(v, "APPLY") == 0 ||
		    strcmp(v, "RESTORE") == 0;
	return strcmp(v, "*") == 0 && !r->banner;
}

static void
start_line(struct csync_reader *r)
{
	buf_reset(&r->verb);
	buf_reset(&r->text);
	dlist_free(&r->entry);
	r->has_text = false;
	r->text_truncated = false;
	r->text_literal = false;
	r->bad = CSYNC_BAD_NONE;
	r->dlist_err = DLIST_E_NONE;
	r->errstr[0] = '\0';
	r->state = R_VERB;
}

static void
upcase(struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		b->s[i] = (char)toupper((unsigned char)b->s[i]);
}

/*
 * At the end of a text line: if it ends in "{N}" or "{N+}", returns true
 * and sets *n, removing the header from the captured text.
 */
static bool
text_literal_header(struct buf *t, uint64_t *n)
{
	size_t end = t->len, i;

	if (end < 3 || t->s[end - 1] != '}')
		return false;
	i = end - 1;
	if (t->s[i - 1] == '+')
		i--;
	{
		size_t dend = i;

		while (i > 0 && t->s[i - 1] >= '0' && t->s[i - 1] <= '9')
			i--;
		if (i == 0 || t->s[i - 1] != '{' || i == dend ||
		    parse_u64(t->s + i, dend - i, n) < 0)
			return false;
	}
	t->len = i - 1;
	t->s[t->len] = '\0';
	return true;
}

static enum csync_status
finish_text(struct csync_reader *r)
{
	if (r->text_truncated) {
		r->bad = CSYNC_BAD_TEXT;
		snprintf(r->errstr, sizeof(r->errstr),
		    "arguments longer than %zu bytes", r->lim.max_token);
		r->state = R_VERB;
		return CSYNC_BAD_LINE;
	}
	r->state = R_VERB;
	return CSYNC_LINE;
}

static enum csync_status csync_feed_bytes(struct csync_reader *r,
    const char *data, size_t n, size_t *used);

enum csync_status
csync_reader_feed(struct csync_reader *r, const char *data, size_t n,
    size_t *used)
{
	enum csync_status st;

	if (r->line_done) {
		start_line(r);
		r->line_done = false;
	}
	if (r->raw_next && r->state == R_VERB && r->verb.len == 0 &&
	    !r->has_text) {
		r->raw_next = false;
		r->has_text = true;
		r->state = R_TEXT;
	}
	st = csync_feed_bytes(r, data, n, used);
	r->line_done = st != CSYNC_NEED_MORE;
	return st;
}

static enum csync_status
csync_feed_bytes(struct csync_reader *r, const char *data, size_t n,
    size_t *used)
{
	size_t i = 0, k;
	enum dlist_parse_status ds;

	while (i < n) {
		char c = data[i];

		switch (r->state) {
		case R_VERB:
			if (c == ' ' || c == '\r' || c == '\n' || c == '(' ||
			    c == ')' || c == '"') {
				upcase(&r->verb);
				if (c == '\r') {
					i++;
					r->state = R_VERB_LF;
					break;
				}
				if (c == '\n') {
					*used = i + 1;
					if (verb_takes_dlist(r))
						goto missing;
					r->state = R_VERB;
					return CSYNC_LINE;
				}
				if (c == ' ')
					i++;
				if (verb_takes_dlist(r) && c == ' ') {
					dlist_parser_reset(r->parser);
					r->state = R_DLIST;
				} else {
					r->has_text = true;
					r->state = R_TEXT;
				}
				break;
			}
			if (buf_putc(&r->verb, c) < 0) {
				r->bad = CSYNC_BAD_WORD;
				snprintf(r->errstr, sizeof(r->errstr),
				    "command word longer than %zu bytes",
				    r->lim.max_token);
				r->state = R_SKIP;
				break;
			}
			i++;
			break;
		case R_VERB_LF:
			if (c != '\n') {
				/* A lone CR: treat it as part of the text. */
				r->has_text = true;
				r->state = R_TEXT;
				break;
			}
			*used = i + 1;
			if (verb_takes_dlist(r))
				goto missing;
			r->state = R_VERB;
			return CSYNC_LINE;
		case R_DLIST:
		case R_DLIST_SKIP:
			ds = dlist_parser_feed(r->parser, data + i, n - i, &k);
			i += k;
			if (ds == DLIST_NEED_MORE)
				break;
			if (ds == DLIST_ERROR) {
				r->bad = CSYNC_BAD_DLIST;
				r->dlist_err = dlist_parser_error(r->parser);
				snprintf(r->errstr, sizeof(r->errstr), "%s",
				    dlist_parser_errstr(r->parser));
				dlist_parser_skip_line(r->parser);
				r->state = R_DLIST_SKIP;
				break;
			}
			*used = i;
			if (r->state == R_DLIST_SKIP) {
				r->state = R_VERB;
				return CSYNC_BAD_LINE;
			}
			r->entry = dlist_parser_take(r->parser);
			r->state = R_VERB;
			return CSYNC_LINE;
		case R_TEXT: {
			const char *nl = memchr(data + i, '\n', n - i);
			size_t end = nl ? (size_t)(nl - data) : n;

			if (!r->text_truncated &&
			    buf_append(&r->text, data + i, end - i) < 0)
				r->text_truncated = true;
			i = end;
			if (nl == NULL)
				break;
			i++;
			if (r->text.len && r->text.s[r->text.len - 1] == '\r')
				r->text.s[--r->text.len] = '\0';
			if (!r->text_truncated && !r->preauth &&
			    text_literal_header(&r->text, &r->lit_left)) {
				r->text_literal = true;
				r->state = R_TEXT_LIT;
				break;
			}
			*used = i;
			return finish_text(r);
		}
		case R_TEXT_LIT:
		case R_EAT_LIT:
			/* A literal in text, kept or dropped: then the line. */
			k = n - i;
			if (k > r->lit_left)
				k = (size_t)r->lit_left;
			i += k;
			r->lit_left -= k;
			if (r->lit_left == 0)
				r->state = r->state == R_TEXT_LIT ? R_TEXT :
				    R_EAT_LINE;
			break;
		case R_SKIP: {
			/* The word was too long; drop to end of line. */
			const char *nl = memchr(data + i, '\n', n - i);

			if (nl == NULL) {
				i = n;
				break;
			}
			*used = (size_t)(nl - data) + 1;
			upcase(&r->verb);
			r->state = R_VERB;
			return CSYNC_BAD_LINE;
		}
		case R_EAT_LINE: {
			const char *nl = memchr(data + i, '\n', n - i);
			size_t end = nl ? (size_t)(nl - data) : n;
			uint64_t lit;

			if (end - i > r->eat_left)
				goto too_much;
			r->eat_left -= end - i;
			eat_tail(r, data + i, end - i);
			i = end;
			if (nl == NULL)
				break;
			i++;
			if (r->tail_len && r->tail[r->tail_len - 1] == '\r')
				r->tail_len--;
			if (!csync_literal_plus(r->tail, r->tail_len, &lit)) {
				start_line(r);
				break;
			}
			if (lit > r->eat_left)
				goto too_much;
			r->eat_left -= lit;
			r->lit_left = lit;
			r->tail_len = 0;
			r->state = lit > 0 ? R_EAT_LIT : R_EAT_LINE;
			break;
		}
		}
	}
	*used = i;
	return CSYNC_NEED_MORE;

too_much:
	*used = i;
	r->bad = CSYNC_BAD_LITERAL;
	snprintf(r->errstr, sizeof(r->errstr), "a literal before "
	    "authentication beyond %zu bytes", r->lim.max_line);
	r->state = R_VERB;
	return CSYNC_BAD_LINE;

missing:
	r->bad = CSYNC_BAD_MISSING;
	snprintf(r->errstr, sizeof(r->errstr), "missing argument to %s",
	    buf_cstring(&r->verb));
	r->state = R_VERB;
	return CSYNC_BAD_LINE;
}

const char *
csync_reader_verb(const struct csync_reader *r)
{
	return buf_cstring(&r->verb);
}

struct dlist *
csync_reader_take_entry(struct csync_reader *r)
{
	struct dlist *e = r->entry;

	r->entry = NULL;
	return e;
}

const char *
csync_reader_text(const struct csync_reader *r)
{
	return r->has_text ? buf_cstring(&r->text) : NULL;
}

bool
csync_reader_text_had_literal(const struct csync_reader *r)
{
	return r->text_literal;
}

enum csync_bad
csync_reader_bad(const struct csync_reader *r)
{
	return r->bad;
}

enum dlist_parse_error
csync_reader_dlist_error(const struct csync_reader *r)
{
	return r->dlist_err;
}

const char *
csync_reader_errstr(const struct csync_reader *r)
{
	return r->errstr;
}

int
csync_print_untagged(struct buf *out, const struct dlist *entry)
{
	static const struct dlist_printer pr = { DLIST_PRINT_SERVER, NULL,
		NULL };
	int r;

	if ((r = buf_puts(out, "* ")) < 0 ||
	    (r = dlist_print_entry(entry, out, &pr)) < 0)
		return r;
	return buf_puts(out, "\r\n");
}

int
csync_print_final(struct buf *out, const char *word, const char *text)
{
	return buf_printf(out, "%s %s\r\n", word, text);
}

int
csync_print_result(struct buf *out, enum result_code code)
{
	return buf_printf(out, "%s\r\n", result_line(code));
}

int
csync_print_command(struct buf *out, const char *verb,
    const struct dlist *entry, const struct dlist_printer *pr)
{
	int r;

	if ((r = buf_puts(out, verb)) < 0)
		return r;
	if (entry != NULL &&
	    ((r = buf_putc(out, ' ')) < 0 ||
	    (r = dlist_print_entry(entry, out, pr)) < 0))
		return r;
	return buf_puts(out, "\r\n");
}
