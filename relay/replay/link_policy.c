/*
 * link_policy.c -- when a link may send and when it tries again: the
 * token buckets of replica_max_bytes_per_second and
 * replica_max_records_per_second (bursts of one second), and when to
 * connect again: after a lost session 1 s, doubling to 60 s; after a
 * connection attempt that failed (refused, unreachable) 0.1 s, doubling
 * to 0.5 s, so that a replica back from maintenance is replaying within
 * a second -- an attempt costs a SYN.  It calls no other part.
 */
#include "autoconf.h"

#include "relay/replay/link_int.h"

static void
refill(struct link *l, struct bucket *b)
{
	double now = ev_now(l->loop);

	if (b->rate <= 0)
		return;
	b->tokens += (now - b->last) * b->rate;
	if (b->tokens > b->rate)
		b->tokens = b->rate;	/* bursts of at most one second */
	b->last = now;
}

/*
 * Is the link over one of its rate limits?  Then it waits (a timer
 * resumes the work) until the buckets are back to zero.  Budgets may go
 * negative: a command or a chunk is never split for a limit.
 */
bool
link_throttled(struct link *l)
{
	double wait = 0;

	refill(l, &l->bytes_bucket);
	refill(l, &l->records_bucket);
	if (l->bytes_bucket.rate > 0 && l->bytes_bucket.tokens < 0)
		wait = -l->bytes_bucket.tokens / l->bytes_bucket.rate;
	if (l->records_bucket.rate > 0 && l->records_bucket.tokens < 0 &&
	    -l->records_bucket.tokens / l->records_bucket.rate > wait)
		wait = -l->records_bucket.tokens / l->records_bucket.rate;
	if (wait <= 0)
		return false;
	if (!ev_is_active(&l->throttle)) {
		ev_timer_set(&l->throttle, wait, 0);
		ev_timer_start(l->loop, &l->throttle);
	}
	return true;
}

void
link_schedule_retry(struct link *l)
{
	ev_timer_stop(l->loop, &l->retry);
	ev_timer_set(&l->retry, l->backoff, 0);
	ev_timer_start(l->loop, &l->retry);
	l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
}

void
link_schedule_connect_retry(struct link *l)
{
	double wait = l->connect_backoff < CONNECT_RETRY_MIN ?
	    CONNECT_RETRY_MIN : l->connect_backoff;

	ev_timer_stop(l->loop, &l->retry);
	ev_timer_set(&l->retry, wait, 0);
	ev_timer_start(l->loop, &l->retry);
	l->connect_backoff = wait * 2 > CONNECT_RETRY_MAX ? CONNECT_RETRY_MAX :
	    wait * 2;
}
