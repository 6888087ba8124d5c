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
#include <string.h>

#include "lib/log.h"
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

/* Remembers the last error for status, and counts it by code. */
void
link_note_error(struct link *l, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
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
	vsnprintf(l->check_why, sizeof(l->check_why), fmt, ap);
	va_end(ap);
	/* One running now started before this outage: check again. */
	l->check_pending = true;
	log_info("store=%s replica=%s event=check_needed reason=\"%s\"",
	    l->st->name, l->rc.name, l->check_why);
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
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	/* A command cut short by retention fails for that reason. */
	if (l->needs_resync)
		snprintf(l->why, sizeof(l->why), "needs a full resync: the "
		    "journal's size cap (journal_max_bytes) dropped records it "
		    "never received; note the store's head LSN, run "
		    "sync_client -A from the master straight to the replica, "
		    "then syncrelayctl reset %s %s LSN", l->st->name,
		    l->rc.name);
	log_error("store=%s replica=%s event=link_failed lsn=%llu reason=\"%s\"",
	    l->st->name, l->rc.name, (unsigned long long)l->lsn, l->why);
	link_note_error(l, "link_failed", "%s", l->why);
	link_set_state(l, LINK_FAILED);
	link_drop(l, "link failed");
}

