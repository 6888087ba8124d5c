/*
 * guard.c -- keeps hostile clients on the master-facing port from
 * taking what a real master needs (issue 16).
 *
 * Anyone who can reach the port can open connections and never log in,
 * or try passwords.  Without a guard, 1,100 idle connections filled
 * max_connections for sync_timeout (30 minutes) and no master could
 * connect; wrong passwords were answered at once.  So:
 *
 *  - Unauthenticated connections are capped, in total and per source
 *    address, apart from max_connections.  At a cap the oldest
 *    unauthenticated connection (of that address, then of all) is closed
 *    to make room: a master that logs in promptly always gets in, as it
 *    leaves the guard the moment it is authenticated.
 *  - Each must log in within login_timeout, or it is closed.
 *  - A failed login is answered after failedloginpause, as Cyrus's
 *    sync_server does, on a timer (the loop never sleeps) while the
 *    session reads nothing from it; the max_login_failures-th closes it.
 *  - Before login, a refused line's "{N+}" literal is dropped only up to
 *    preauth_max_line_bytes (csync_reader_eat()); past that, closed.
 *
 * Lines about unauthenticated connections are rate-limited: a few per
 * LOG_WINDOW, the rest counted into one summary line.  Totals go to
 * /metrics through guard_counts().
 *
 * The guard only calls down (conn, csync): the session hands it a
 * callback for the end of a pause, and its conn to close.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "relay/conn.h"
#include "relay/ingest/guard.h"

#define LOG_WINDOW 10.0		/* seconds */
#define LOG_LINES 10		/* lines about unauthenticated ones each */
#define HOST_MAX 64

struct guard_conn {
	struct guard *g;
	struct conn *conn;
	char host[HOST_MAX];		/* the peer without its port */
	struct guard_conn *prev, *next;	/* oldest first */
	ev_timer deadline;		/* login_timeout */
	ev_timer pause;			/* failedloginpause */
	unsigned failures;
	char reply[160];		/* the NO sent after the pause */
	guard_pause_done *done;
	void *arg;
};

struct guard {
	struct ev_loop *loop;
	const struct guard_params *params;
	struct guard_conn *head, *tail;
	size_t count;
	/* rate-limited logging */
	double window_start;
	unsigned lines;
	uint64_t suppressed;
	struct guard_counts at_summary;	/* totals at the last summary */
	ev_timer summary;
};

static struct guard_counts totals;

/* "ip:port" / "[v6]:port" -> the address alone. */
static void
peer_host(const char *peer, char *out, size_t outlen)
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);

	snprintf(out, outlen, "%.*s", (int)n, peer);
}

static void
summary_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct guard *g = w->data;
	struct guard_counts *a = &g->at_summary;

	if (g->suppressed == 0)
		return;
	log_warnx("event=preauth_summary seconds=%.0f unlogged_lines=%llu "
	    "evicted=%llu deadline=%llu login_failures=%llu "
	    "failures_closed=%llu literal_closed=%llu preauth_open=%zu",
	    LOG_WINDOW, (unsigned long long)g->suppressed,
	    (unsigned long long)(totals.evicted - a->evicted),
	    (unsigned long long)(totals.deadline - a->deadline),
	    (unsigned long long)(totals.login_failures - a->login_failures),
	    (unsigned long long)(totals.failures_closed - a->failures_closed),
	    (unsigned long long)(totals.literal_closed - a->literal_closed),
	    g->count);
	g->suppressed = 0;
	*a = totals;
}

bool
guard_log_ok(struct guard *g)
{
	double now;

	if (g == NULL)
		return true;
	now = ev_now(g->loop);
	if (now - g->window_start >= LOG_WINDOW) {
		if (g->suppressed == 0)
			g->at_summary = totals;
		g->window_start = now;
		g->lines = 0;
	}
	if (g->lines < LOG_LINES) {
		g->lines++;
		return true;
	}
	if (g->suppressed++ == 0 && !ev_is_active(&g->summary)) {
		ev_timer_set(&g->summary, g->window_start + LOG_WINDOW - now,
		    0.);
		ev_timer_start(g->loop, &g->summary);
	}
	return false;
}

struct guard *
guard_new(struct ev_loop *loop, const struct guard_params *params)
{
	struct guard *g = xcalloc(1, sizeof(*g));

	g->loop = loop;
	g->params = params;
	g->window_start = -LOG_WINDOW;
	ev_init(&g->summary, summary_cb);
	g->summary.data = g;
	return g;
}

static void
unlink_conn(struct guard_conn *gc)
{
	struct guard *g = gc->g;

	ev_timer_stop(g->loop, &gc->deadline);
	ev_timer_stop(g->loop, &gc->pause);
	if (gc->prev)
		gc->prev->next = gc->next;
	else
		g->head = gc->next;
	if (gc->next)
		gc->next->prev = gc->prev;
	else
		g->tail = gc->prev;
	g->count--;
	totals.preauth_open--;
	gc->g = NULL;
}

void
guard_free(struct guard **gp)
{
	struct guard *g = *gp;

	if (g == NULL)
		return;
	while (g->head)
		unlink_conn(g->head);
	summary_cb(g->loop, &g->summary, 0);
	ev_timer_stop(g->loop, &g->summary);
	free(g);
	*gp = NULL;
}

/* Closes the oldest unauthenticated connection (from host, if not NULL). */
static bool
evict_oldest(struct guard *g, const char *host, const char *why)
{
	struct guard_conn *gc;

	for (gc = g->head; gc != NULL; gc = gc->next)
		if (host == NULL || strcmp(gc->host, host) == 0)
			break;
	if (gc == NULL)
		return false;
	totals.evicted++;
	/* Out first; the session's on_close logs it (rate-limited) and
	 * frees gc in guard_leave(). */
	unlink_conn(gc);
	conn_close(gc->conn, why, true);
	return true;
}

void
guard_admit(struct guard *g, const char *peer)
{
	char host[HOST_MAX];
	struct guard_conn *gc;
	size_t same;

	if (g == NULL)
		return;
	peer_host(peer, host, sizeof(host));
	for (;;) {
		same = 0;
		for (gc = g->head; gc != NULL; gc = gc->next)
			if (strcmp(gc->host, host) == 0)
				same++;
		if (same < g->params->max_preauth_per_address)
			break;
		if (!evict_oldest(g, host, "evicted: too many unauthenticated "
		    "connections from this address "
		    "(max_preauth_per_address)"))
			break;
	}
	while (g->count >= g->params->max_preauth)
		if (!evict_oldest(g, NULL, "evicted: too many unauthenticated "
		    "connections (max_preauth_connections)"))
			break;
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct guard_conn *gc = w->data;
	char why[96];

	totals.deadline++;
	snprintf(why, sizeof(why), "no login within login_timeout (%.0fs)",
	    w->repeat > 0 ? w->repeat : gc->g->params->login_timeout);
	/* Synchronous (now): why need not outlive the call. */
	conn_close(gc->conn, why, true);
}

static void
pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct guard_conn *gc = w->data;
	bool close = gc->failures >= gc->g->params->max_login_failures;

	if (close)
		totals.failures_closed++;
	/* done() may close the conn, and the session leave: gc goes. */
	gc->done(gc->arg, gc->reply, close);
}

struct guard_conn *
guard_enter(struct guard *g, struct conn *c, guard_pause_done *done,
    void *arg)
{
	struct guard_conn *gc;

	if (g == NULL)
		return NULL;
	gc = xcalloc(1, sizeof(*gc));
	gc->g = g;
	gc->conn = c;
	gc->done = done;
	gc->arg = arg;
	peer_host(conn_peer(c), gc->host, sizeof(gc->host));
	gc->prev = g->tail;
	if (g->tail)
		g->tail->next = gc;
	else
		g->head = gc;
	g->tail = gc;
	g->count++;
	totals.preauth_open++;
	ev_init(&gc->deadline, deadline_cb);
	gc->deadline.data = gc;
	ev_timer_set(&gc->deadline, g->params->login_timeout, 0.);
	ev_timer_start(g->loop, &gc->deadline);
	ev_init(&gc->pause, pause_cb);
	gc->pause.data = gc;
	return gc;
}

void
guard_leave(struct guard_conn **gcp)
{
	struct guard_conn *gc = *gcp;

	if (gc == NULL)
		return;
	if (gc->g != NULL)
		unlink_conn(gc);
	free(gc);
	*gcp = NULL;
}

void
guard_login(struct guard_conn **gcp)
{
	guard_leave(gcp);
}

void
guard_login_failed(struct guard_conn *gc, const char *reply)
{
	struct guard *g;

	if (gc == NULL)
		return;
	g = gc->g;
	gc->failures++;
	totals.login_failures++;
	snprintf(gc->reply, sizeof(gc->reply), "%s", reply);
	if (g == NULL) {
		gc->done(gc->arg, gc->reply, true);
		return;
	}
	if (guard_log_ok(g))
		log_warnx("conn=%lu peer=%s event=auth_failed reason=\"%s\" "
		    "failures=%u max_login_failures=%u", conn_id(gc->conn),
		    conn_peer(gc->conn), reply, gc->failures,
		    g->params->max_login_failures);
	ev_timer_set(&gc->pause, g->params->failed_login_pause, 0.);
	ev_timer_start(g->loop, &gc->pause);
}

/*
 * Would a 3.6 sync_server, refusing this line before login, step over a
 * literal at its end?  It does after a refused or unknown command and
 * after extra arguments, which it reads to the end of the line; not
 * after a word it read itself as an argument (AUTHENTICATE's mechanism
 * and initial response, COMPRESS's algorithm).
 */
static bool
cyrus_eats_line(const char *verb, const char *text)
{
	size_t words = 1;
	const char *p;

	for (p = text; *p; p++)
		if (*p == ' ')
			words++;
	if (strcmp(verb, "AUTHENTICATE") == 0) {
		for (p = text; *p && *p != ' '; p++)
			if (!(*p >= 'a' && *p <= 'z') &&
			    !(*p >= 'A' && *p <= 'Z') &&
			    !(*p >= '0' && *p <= '9') && *p != '-' &&
			    *p != '_')
				return words >= 2;	/* bad mechanism */
		return words >= 3;
	}
	if (strcmp(verb, "COMPRESS") == 0)
		return words >= 2;
	return true;
}

void
guard_literal_refused(struct guard_conn *gc)
{
	if (gc == NULL || gc->g == NULL)
		return;
	totals.literal_closed++;
	conn_close(gc->conn, "a literal before login over "
	    "preauth_max_line_bytes", true);
}

void
guard_after_line(struct guard_conn *gc, struct csync_reader *r,
    const char *verb, const char *text)
{
	uint64_t n;

	if (gc == NULL || text == NULL ||
	    !csync_literal_plus(text, strlen(text), &n) ||
	    !cyrus_eats_line(verb, text))
		return;
	if (csync_reader_eat(r, n) < 0)
		guard_literal_refused(gc);
}

void
guard_counts(struct guard_counts *out)
{
	*out = totals;
}
