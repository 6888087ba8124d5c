/*
 * guard.h -- what an unauthenticated client on the master-facing port
 * may take: a place among a capped number, a short time to log in, and
 * a few failed logins, each answered only after a pause.
 */
#ifndef SR_GUARD_H
#define SR_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct conn;
struct csync_reader;

/* The limits, from syncrelay.conf (reloadable: read when used). */
struct guard_params {
	double login_timeout;		/* seconds to authenticate */
	size_t max_preauth;		/* unauthenticated connections */
	size_t max_preauth_per_address;	/* the same from one address */
	double failed_login_pause;	/* seconds before a NO to a login */
	unsigned max_login_failures;	/* on one connection, then closed */
};

/* Totals since start, for /metrics. */
struct guard_counts {
	uint64_t preauth_open;		/* unauthenticated connections now */
	uint64_t evicted;		/* closed to make room (the caps) */
	uint64_t deadline;		/* closed: no login in time */
	uint64_t login_failures;	/* failed logins */
	uint64_t failures_closed;	/* closed: max_login_failures */
	uint64_t literal_closed;	/* closed: a pre-auth literal too big */
};

struct guard;
struct guard_conn;

/*
 * Called when a failed login's pause is over: reply is the NO text to
 * send; close says the connection had its last failure and must go.
 */
typedef void guard_pause_done(void *arg, const char *reply, bool close);

/* Returns a guard for one listener; *params is kept, not copied. */
struct guard *guard_new(struct ev_loop *loop,
    const struct guard_params *params);
/* NULL-safe; sets *gp NULL.  Connections still inside are forgotten. */
void guard_free(struct guard **gp);
/*
 * A connection from peer ("ip:port", "[v6]:port") is about to start:
 * closes the oldest unauthenticated connection from the same address,
 * then the oldest of all, while either cap would be passed.
 */
void guard_admit(struct guard *g, const char *peer);
/*
 * Counts c as unauthenticated and starts its login deadline.  done is
 * called after a failed login's pause.  The caller owns the result and
 * ends it with guard_login() or guard_leave().
 */
struct guard_conn *guard_enter(struct guard *g, struct conn *c,
    guard_pause_done *done, void *arg);
/* c has logged in: no deadline, no count any more.  NULL-safe. */
void guard_login(struct guard_conn **gcp);
/* c is closed.  NULL-safe; sets *gcp NULL. */
void guard_leave(struct guard_conn **gcp);
/*
 * A failed login with reply as its NO text: counts and logs it, and
 * calls done after failedloginpause.  The caller stops reading c
 * meanwhile.
 */
void guard_login_failed(struct guard_conn *gc, const char *reply);
/*
 * After a line answered before login (verb and text as read, text NULL
 * if none): if a real sync_server would step over a "{N+}" literal at
 * its end, has r drop it; if the literal is over the pre-auth line
 * limit, logs, counts and closes c once the reply is out.
 */
void guard_after_line(struct guard_conn *gc, struct csync_reader *r,
    const char *verb, const char *text);
/* A later literal of that line went over the limit: closes c. */
void guard_literal_refused(struct guard_conn *gc);
/*
 * May a line about an unauthenticated connection be logged now?  At
 * most a few per interval; the rest are counted into a summary line.
 */
bool guard_log_ok(struct guard *g);
/* The totals of every guard. */
void guard_counts(struct guard_counts *out);

#endif
