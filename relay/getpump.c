/*
 * getpump.c -- a GET answer written out in pieces with back-pressure.
 *
 * A master's or another relay's session answers GET FETCH with a body
 * of any size and GET FULLMAILBOX with a mailbox of any number of
 * records.  Neither is built whole: each turn writes pieces (256 KB of
 * a body, or a page of records: relay/getcmd_full.c) until the
 * connection's queue passes GETPUMP_HIGH, then waits for on_drain.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_print.h"
#include "relay/conn.h"
#include "relay/getcmd_full.h"
#include "relay/getpump.h"
#include "storage/journal.h"

#define BODY_PIECE (256 * 1024)
/* What waits in the connection's queue at most, plus a piece: the
 * socket's own buffers hold more, so a reader that reads is never kept
 * waiting, and one that does not costs the relay this much. */
#define GETPUMP_HIGH ((size_t)256 * 1024)

struct getpump {
	struct journal_body_stream *bs;
	struct getcmd_full *full;
	struct buf piece;
	struct buf head;	/* a body's "* MESSAGE" line, not yet sent */
};

struct getpump *
getpump_body(struct journal_body_stream **bs, const char *part,
    const char *guid, uint32_t size)
{
	struct getpump *p = xcalloc(1, sizeof(*p));

	p->bs = *bs;
	*bs = NULL;
	buf_puts(&p->head, "* MESSAGE %{");
	dlist_print_astring(&p->head, part, strlen(part), DLIST_PRINT_SERVER);
	buf_printf(&p->head, " %s %u}\r\n", guid, size);
	return p;
}

struct getpump *
getpump_full(struct getcmd_full **f)
{
	struct getpump *p = xcalloc(1, sizeof(*p));

	p->full = *f;
	*f = NULL;
	return p;
}

/* One piece into p->piece: 1 more to come, 0 the last, <0 failed. */
static int
next_piece(struct getpump *p, char *why, size_t why_len)
{
	ssize_t n;

	if (p->full != NULL)
		return getcmd_full_next(p->full, &p->piece, why, why_len);
	n = journal_body_stream_read(p->bs, &p->piece, BODY_PIECE);
	if (n > 0)
		return 1;
	journal_body_stream_free(&p->bs);
	if (n < 0) {
		snprintf(why, why_len, "stored message is damaged: %s",
		    strerror((int)-n));
		return (int)n;
	}
	return buf_puts(&p->piece, "\r\n") < 0 ? -ENOMEM : 0;
}

int
getpump_run(struct getpump *p, struct conn *c, char *why, size_t why_len)
{
	int r = 1;

	if (p->head.len > 0) {
		conn_write(c, p->head.s, p->head.len);
		buf_free(&p->head);
	}
	while (r > 0 && conn_out_pending(c) < GETPUMP_HIGH) {
		buf_reset(&p->piece);
		r = next_piece(p, why, why_len);
		if (r >= 0)
			conn_write(c, p->piece.s, p->piece.len);
	}
	buf_free(&p->piece);
	if (r > 0)
		conn_want_drain(c);
	return r;
}

const char *
getpump_what(const struct getpump *p)
{
	return p->full != NULL ? "fullmailbox" : "fetch";
}

void
getpump_free(struct getpump **pp)
{
	struct getpump *p = *pp;

	if (p == NULL)
		return;
	journal_body_stream_free(&p->bs);
	getcmd_full_free(&p->full);
	buf_free(&p->piece);
	buf_free(&p->head);
	free(p);
	*pp = NULL;
}
