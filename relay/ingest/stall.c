/*
 * stall.c -- closes a master's connection that fell silent in the
 * middle of a command (see stall.h for why this lives apart from the
 * idle timeout).
 *
 * It lives apart from session.c, which is at its size limit.  The watch
 * measures silence, as Cyrus's own sync_server does with sync_timeout,
 * not the time the whole command takes: a slow master that keeps sending
 * is never cut off, while one that stops is cut after master_timeout
 * whatever the size of what it was sending.  While the session itself
 * does not read (a command waits for the journal, or the journal is
 * behind), the session disarms it: that silence is the relay's.
 */
#include "autoconf.h"

#include "lib/log.h"
#include "relay/conn.h"
#include "relay/ingest/stall.h"

static void
stall_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct stall *w = t->data;

	(void)revents;
	(void)loop;
	log_warnx("conn=%lu peer=%s store=%s event=master_timeout "
	    "waited=%.0f reason=\"the master went silent in the middle of a "
	    "command; nothing of it was acknowledged\"", conn_id(w->conn),
	    conn_peer(w->conn), w->store, t->repeat);
	conn_close(w->conn, "master_timeout: silent in the middle of a "
	    "command", true);
}

void
stall_init(struct stall *w, struct ev_loop *loop, struct conn *c)
{
	ev_init(&w->timer, stall_cb);
	w->timer.data = w;
	w->loop = loop;
	w->conn = c;
	w->store = "-";
}

void
stall_update(struct stall *w, bool in_command, double timeout,
    const char *store)
{
	if (!in_command || timeout <= 0) {
		ev_timer_stop(w->loop, &w->timer);
		return;
	}
	w->store = store;
	w->timer.repeat = timeout;
	ev_timer_again(w->loop, &w->timer);
}

void
stall_stop(struct stall *w)
{
	ev_timer_stop(w->loop, &w->timer);
}
