/*
 * link_whole.c -- a mailbox the link sends whole from the shadow (a
 * repair, a parked mailbox's retry, an audit's or seed's refill), a page
 * of records at a time (docs/scale.md, "Big mailboxes", item 3).
 *
 * Such a command comes as the mailbox's fields with a RECORD list marked
 * "from the shadow" (getcmd_full_header()).  Once the replica said what
 * it has (GET MAILBOXES), link_replay.c calls link_whole_start(): a
 * getcmd_full reader is opened and, from then on, a snapshot of the
 * shadow is read for both the staging and the text, so the APPLY
 * MAILBOX sent holds exactly the records whose bodies were staged.  The
 * records above the replica's LAST_UID are staged a page at a time: each
 * page is put in the marked RECORD list (link_whole_chunk()), and the
 * replay stages it as it stages any command (RESERVE, MESSAGE).  Then
 * the text goes out with back-pressure (link_whole_pump(), from the
 * link's on_drain), a page of records per piece.  Held at any time: a
 * page of records as a tree, the text of the pages not yet written to
 * the socket (at most 256 KB and a page), the flag slots.
 *
 * It calls the core (sending) and getcmd_full.c; the replay calls it,
 * never the other way round.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "relay/conn.h"
#include "relay/getcmd_full.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"

/* Text waiting in the connection's queue before the next page. */
#define WHOLE_HIGH ((size_t)256 * 1024)

int
link_whole_start(struct link *l, char *why, size_t why_len)
{
	const char *u = NULL;
	int r;

	link_whole_end(l);
	dlist_get_str(l->cmd, "UNIQUEID", &u);
	r = getcmd_full_start(l->st->shadow, u ? u : "", "APPLY",
	    DLIST_PRINT_CLIENT, NULL, &l->whole, why, why_len);
	if (r < 0)
		return r;
	/* The replica has the records up to its LAST_UID: none of their
	 * bodies is staged (as for any APPLY MAILBOX). */
	l->stage_uid = l->r_last_uid + 1;
	l->stage_more = true;
	return 0;
}

int
link_whole_chunk(struct link *l, char *why, size_t why_len)
{
	struct dlist *rl = dlist_get_mut(l->cmd, "RECORD"), *e;
	int r;

	if (rl == NULL || l->whole == NULL) {
		snprintf(why, why_len, "no whole mailbox under way");
		return -EINVAL;
	}
	while ((e = dlist_pop_first(rl)) != NULL)
		dlist_free(&e);
	r = getcmd_full_stage(l->whole, &l->stage_uid, getcmd_full_page(),
	    rl, why, why_len);
	if (r < 0)
		return r;
	l->stage_more = r > 0;
	return 0;
}

int
link_whole_pump(struct link *l, char *why, size_t why_len)
{
	struct buf page = BUF_INIT;
	int r = 1;

	if (!l->whole_sending) {
		struct dlist *rl = dlist_get_mut(l->cmd, "RECORD"), *e;

		/* The last page staged is not needed any more. */
		while (rl != NULL && (e = dlist_pop_first(rl)) != NULL)
			dlist_free(&e);
		l->whole_sending = true;
	}
	while (r > 0 && l->conn != NULL &&
	    conn_out_pending(l->conn) < WHOLE_HIGH) {
		buf_reset(&page);
		r = getcmd_full_next(l->whole, &page, why, why_len);
		if (r >= 0)
			link_send_text(l, page.s, page.len);
	}
	buf_free(&page);
	if (r > 0 && l->conn != NULL)
		conn_want_drain(l->conn);
	if (r == 0) {
		l->whole_sending = false;
		getcmd_full_free(&l->whole);
	}
	return r;
}

void
link_whole_end(struct link *l)
{
	getcmd_full_free(&l->whole);
	l->whole_sending = false;
	l->stage_more = false;
}
