/*
 * link_core.c -- what every part of a link uses: its state and the
 * names of the states, the last error and the count of errors by code,
 * sending a command with the continuation that takes its reply, failing
 * the link with a reason, and noting that the replica must be checked
 * against the shadow after an outage.  It calls no other part.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "relay/conn.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"

static const char *const state_names[LINK_STATE_COUNT] = { "down",
	"connecting", "login", "catching up", "streaming", "repairing",
	"failed", "paused" };

const char *
link_state_name(enum link_state st)
{
	return state_names[st];
}

void
link_text_vset(char **text, size_t max, const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		n = 0;
	if ((size_t)n > max - 1)
		n = (int)(max - 1);
	s = NULL;
	if (n > 0) {
		s = xmalloc((size_t)n + 1);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	}
	free(*text);
	*text = s;
}

void
link_text_set(char **text, size_t max, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	link_text_vset(text, max, fmt, ap);
	va_end(ap);
}

/* Remembers the last error for status, and counts it by code. */
void
link_note_error(struct link *l, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	link_text_vset(&l->last_error, LINK_WHY_MAX, fmt, ap);
	va_end(ap);
	l->last_error_time = ev_now(l->loop);
	stats_count_code(l->errors, &l->nerrors, code);
}

void
link_check_needed(struct link *l, const char *fmt, ...)
{
	va_list ap;

	if (l->check_pending && !l->check_running)
		return;		/* the first reason stands */
	va_start(ap, fmt);
	link_text_vset(&l->check_why, LINK_LINE_MAX, fmt, ap);
	va_end(ap);
	/* One running now started before this outage: check again. */
	l->check_pending = true;
	log_info("store=%s replica=%s event=check_needed reason=\"%s\"",
	    l->st->name, l->rc.name, LINK_TEXT(l->check_why));
}

void
link_set_state(struct link *l, enum link_state st)
{
	bool attempt = (l->state == LINK_DOWN && st == LINK_CONNECTING) ||
	    (l->state == LINK_CONNECTING && st == LINK_DOWN);

	if (l->state == st)
		return;
	/* Attempts to connect to a replica that is down come twice a
	 * second: connect_failed and connect_failing say that much. */
	if (attempt)
		log_debug("store=%s replica=%s event=link_state from=\"%s\" "
		    "to=\"%s\"", l->st->name, l->rc.name,
		    link_state_name(l->state), link_state_name(st));
	else
		log_info("store=%s replica=%s event=link_state from=\"%s\" "
		    "to=\"%s\" acked=%llu", l->st->name, l->rc.name,
		    link_state_name(l->state), link_state_name(st),
		    (unsigned long long)l->acked);
	l->state = st;
}

void
link_send_text(struct link *l, const char *text, size_t n)
{
	conn_write(l->conn, text, n);
	if (l->wait_bytes == 0)
		l->wait_since = ev_now(l->loop);
	l->wait_bytes += n;
	l->last_activity = ev_now(l->loop);
	l->replayed_bytes += n;
	if (l->bytes_bucket.rate > 0)
		l->bytes_bucket.tokens -= (double)n;
}

void
link_send_cmd(struct link *l, const char *verb, const struct dlist *entry,
    void (*k)(struct link *, const char *, const char *))
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct buf b = BUF_INIT;

	csync_print_command(&b, verb, entry, &pr);
	l->on_reply = k;
	link_send_text(l, b.s, b.len);
	buf_free(&b);
}

void
link_drop(struct link *l, const char *why)
{
	if (l->conn) {
		l->dropped = true;	/* not an outage of the replica's */
		conn_close(l->conn, why, true);
	}
}

void
link_fail(struct link *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	link_text_vset(&l->why, LINK_WHY_MAX, fmt, ap);
	va_end(ap);
	/* A command cut short by retention fails for that reason. */
	if (l->needs_resync)
		link_text_set(&l->why, LINK_WHY_MAX, "needs a full resync: the "
		    "journal's size cap (journal_max_bytes) dropped records it "
		    "never received; note the store's head LSN, run "
		    "sync_client -A from the master straight to the replica, "
		    "then syncrelayctl reset %s %s LSN", l->st->name,
		    l->rc.name);
	log_error("store=%s replica=%s event=link_failed lsn=%llu reason=\"%s\"",
	    l->st->name, l->rc.name, (unsigned long long)l->lsn,
	    LINK_TEXT(l->why));
	link_note_error(l, "link_failed", "%s", LINK_TEXT(l->why));
	link_set_state(l, LINK_FAILED);
	link_drop(l, "link failed");
}

