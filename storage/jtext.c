/*
 * jtext.c -- a journaled command's text parsed in pieces.
 *
 * A one-shot sync of a mailbox with 100,000 messages is one APPLY
 * MAILBOX of 20 MB of text, 170 MB as a dlist tree.  Its record is read
 * from the journal 64 KB at a time (journal_text_stream_open_at())
 * through a dlist parser whose record hook takes each RECORD element as
 * it completes, so the tree never holds the list.  The replay of such a
 * command to a replica (relay/replay/link_big.c) and the shadow's fold
 * after a crash (fold.c) both read it so; this file is what they share.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "storage/jtext.h"

size_t
jtext_big(void)
{
	const char *v = getenv("SYNCRELAY_BIG_TEXT");
	unsigned long long n;
	char *end;

	if (v == NULL || *v == '\0')
		return JTEXT_BIG;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 64)
		return JTEXT_BIG;
	return (size_t)n;
}

struct dlist_parser *
jtext_parser(const struct dlist_record_hook *hook)
{
	struct dlist_limits lim = dlist_limits_default;
	struct dlist_parser *p;

	lim.max_line = SIZE_MAX;
	lim.max_items = SIZE_MAX;
	p = dlist_parser_new(&lim, NULL);
	dlist_parser_set_record_hook(p, hook);
	return p;
}

int
jtext_feed(struct journal_body_stream *ts, struct dlist_parser *p,
    uint64_t *pos, uint64_t raw_len, size_t verb_len, size_t chunk_max,
    bool (*stop)(void *), void *arg, char *err, size_t err_len)
{
	struct buf chunk = BUF_INIT;
	enum dlist_parse_status st = DLIST_NEED_MORE;
	int e = 0;

	while (st == DLIST_NEED_MORE) {
		const char *s;
		size_t n, used, skip = 0;
		ssize_t got;

		if (stop != NULL && stop(arg))
			break;
		buf_reset(&chunk);
		got = journal_body_stream_read(ts, &chunk, chunk_max);
		if (got < 0) {
			snprintf(err, err_len, "journal record damaged: %s",
			    strerror((int)-got));
			e = (int)got;
			break;
		}
		if (*pos < verb_len)
			skip = verb_len - (size_t)*pos;
		if (skip > chunk.len)
			skip = chunk.len;
		*pos += chunk.len;
		s = chunk.s + skip;
		n = chunk.len - skip;
		if (got == 0) {
			if (*pos != raw_len) {
				snprintf(err, err_len, "journal record cut");
				e = -EBADMSG;
				break;
			}
			s = "\r\n";
			n = 2;
		}
		st = dlist_parser_feed(p, s, n, &used);
		if (st == DLIST_ERROR || (st == DLIST_DONE && got != 0)) {
			snprintf(err, err_len, "a journal record does not "
			    "parse: %s", dlist_parser_errstr(p));
			e = -EBADMSG;
			break;
		}
		if (got == 0 && st != DLIST_DONE) {
			snprintf(err, err_len, "journal record ends early");
			e = -EBADMSG;
			break;
		}
	}
	buf_free(&chunk);
	if (e < 0)
		return e;
	return st == DLIST_DONE ? 1 : 0;
}
