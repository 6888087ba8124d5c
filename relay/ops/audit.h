/*
 * audit.h -- compares a replica with the shadow (syncrelayctl audit),
 * and repairs from the shadow what differs (--repair).
 *
 * It never talks to the master.  It asks the replica through the
 * replica's own link, one GET at a time and only while the link is idle
 * and the replica has acknowledged every durable record
 * (link_caught_up()), so live replay always goes first and the audit
 * takes the link's quiet moments; an answer is compared only if the
 * shadow did not move while it was asked (else the question is asked
 * again at the next quiet moment).  What could not be asked before the
 * deadline is reported as not audited ("behind"), never as a mismatch.
 */
#ifndef SR_AUDIT_H
#define SR_AUDIT_H

#include <stdbool.h>

#include <ev.h>

#include "lib/buf.h"

struct audit;

struct audit_opts {
	const char *store;
	const char *replica;	/* NULL: every replica of the store */
	const char *user;	/* NULL: every user in the shadow */
	bool repair;		/* send what differs from the shadow */
	const char *from;	/* bodies retention dropped: from this
				 * replica (NULL: a caught-up other one) */
	bool json;
	double timeout;		/* seconds to find quiet moments */
};

/* Called once when the audit is over; audit_report() then says what. */
typedef void (*audit_done_fn)(void *arg, struct audit *a);

/*
 * Starts an audit; done is called from the loop later (never from
 * inside audit_start).  Returns NULL with a reason in err when the store
 * or replica does not exist.
 */
struct audit *audit_start(struct ev_loop *loop, const struct audit_opts *o,
    audit_done_fn done, void *arg, char *err, size_t err_len);
/*
 * Appends the report to out; returns the exit status: 0 nothing
 * differs, 1 something differs, 2 error or not everything audited.
 */
int audit_report(const struct audit *a, struct buf *out);
/*
 * After a repair: NULL if everything that differed was repaired (sent or
 * replaced; left alone where invariant 9 says so), else what was not,
 * in why (len bytes).
 */
const char *audit_unrepaired(const struct audit *a, char *why, size_t len);
/* Is it over (done called or about to be)? */
bool audit_finished(const struct audit *a);
/* Frees the audit now, or (a question in flight) once it is answered;
 * done is not called any more.  NULL-safe; sets *ap to NULL. */
void audit_free(struct audit **ap);

/*
 * The periodic audits: every second it starts an audit (no repair) of
 * each replica whose replica_audit_interval has passed since its last
 * one; the result goes to the link (status, /metrics) and, if anything
 * differs, to the log (event=audit_differs).
 */
struct audit_sched;
struct audit_sched *audit_sched_new(struct ev_loop *loop);
void audit_sched_free(struct audit_sched **sp);

#endif
