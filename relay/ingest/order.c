/*
 * order.c -- several master sessions of one store at once, their
 * commands one at a time.
 *
 * Why it exists: a real sync_server serves concurrent sessions (the
 * rolling sync_client beside an operator's one-shot "sync_client -u")
 * and locks per user and mailbox.  The relay has one journal and one
 * shadow per store, and an APPLY that changes the shadow leaves its
 * transaction open until its journal record is durable (invariant 1:
 * OK only once durable).  Another session's command in that window
 * would either fail to begin its own transaction, or read and journal
 * on top of a change that may still be rolled back.
 *
 * How: each command of a session that reads or changes the shadow
 * (GET, APPLY) first asks for the store's turn.  It runs at once when
 * no command is in flight and no session waits; otherwise its session
 * is queued (it stops reading; the loop goes on) and its command runs
 * when the turn comes, in arrival order.  A command whose work outlives
 * its call (an APPLY on its way to the journal, a seed asking a
 * replica) holds the turn until its completion releases it.  So the
 * commands of all sessions reach the journal whole and in the order
 * the relay took them, the shadow is changed in that same order
 * (invariant 2: shadow = fold(journal)), and a GET sees only what is
 * durable.  Message bodies stream into the journal beside this: they
 * touch only the body index (session.c, body_done).
 *
 * It also keeps the store's sessions and their addresses, for status,
 * backpressure and retention, and warns when they come from different
 * hosts: two masters authenticating as the one identity would both
 * write the store (docs/ingest.md, "Several sessions").
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/ingest/order.h"
#include "relay/store.h"

struct order_member {
	void *member;
	char *peer;
	uint64_t holds;			/* turns it held */
};

struct order_waiter {
	void *member;
	void (*run)(void *member);
};

struct order {
	struct order_member *members;
	size_t nmembers, amembers;
	struct order_waiter *queue;	/* FIFO: queue[head..nqueue) */
	size_t head, nqueue, aqueue;
	bool held;			/* a command keeps the turn */
	bool draining;			/* order_release() is running waiters */
	uint64_t holds;			/* turns held, all sessions */
	size_t hosts_warned;		/* hosts count last warned about */
};

static struct order *
get_order(struct store *st)
{
	if (st->order == NULL)
		st->order = xcalloc(1, sizeof(*st->order));
	return st->order;
}

/* Length of the host part of "ip:port" ("[v6]:port" too). */
static size_t
host_len(const char *peer)
{
	const char *colon = strrchr(peer, ':');

	return colon ? (size_t)(colon - peer) : strlen(peer);
}

static bool
same_host(const char *a, const char *b)
{
	size_t n = host_len(a);

	return n == host_len(b) && strncmp(a, b, n) == 0;
}

size_t
order_hosts(const struct store *st)
{
	const struct order *o = st->order;
	size_t i, j, n = 0;

	for (i = 0; o != NULL && i < o->nmembers; i++) {
		for (j = 0; j < i; j++)
			if (same_host(o->members[i].peer, o->members[j].peer))
				break;
		if (j == i)
			n++;
	}
	return n;
}

void
order_join(struct store *st, void *member, const char *peer)
{
	struct order *o = get_order(st);
	size_t hosts;

	if (o->nmembers == o->amembers) {
		o->amembers = o->amembers ? o->amembers * 2 : 2;
		o->members = xreallocarray(o->members, o->amembers,
		    sizeof(*o->members));
	}
	o->members[o->nmembers].member = member;
	o->members[o->nmembers].peer = xstrdup(peer);
	o->members[o->nmembers].holds = 0;
	o->nmembers++;
	hosts = order_hosts(st);
	if (hosts > 1 && hosts > o->hosts_warned) {
		log_warnx("store=%s event=masters_on_several_hosts hosts=%zu "
		    "sessions=%zu peer=%s other_peer=%s note=\"sessions of "
		    "this store come from different hosts: if both are "
		    "masters, both write the store (split brain); see "
		    "syncrelayctl status\"", st->name, hosts, o->nmembers,
		    peer, o->members[0].peer);
	}
	o->hosts_warned = hosts;
	if (o->nmembers > 1)
		log_info("store=%s event=concurrent_session sessions=%zu "
		    "peer=%s", st->name, o->nmembers, peer);
}

size_t
order_leave(struct store *st, void *member)
{
	struct order *o = st->order;
	size_t i, j;

	if (o == NULL)
		return 0;
	for (i = 0; i < o->nmembers; i++)
		if (o->members[i].member == member) {
			free(o->members[i].peer);
			memmove(&o->members[i], &o->members[i + 1],
			    (o->nmembers - i - 1) * sizeof(*o->members));
			o->nmembers--;
			break;
		}
	for (i = j = o->head; i < o->nqueue; i++)
		if (o->queue[i].member != member)
			o->queue[j++] = o->queue[i];
	o->nqueue = j;
	o->hosts_warned = order_hosts(st);
	return o->nmembers;
}

size_t
order_sessions(const struct store *st)
{
	return st->order ? st->order->nmembers : 0;
}

void *
order_session_at(const struct store *st, size_t i)
{
	return st->order->members[i].member;
}

const char *
order_peer_at(const struct store *st, size_t i)
{
	return st->order->members[i].peer;
}

bool
order_enter(struct store *st, void *member, void (*run)(void *member))
{
	struct order *o = get_order(st);

	if (!o->held && o->head == o->nqueue)
		return true;
	if (o->head > 0 && o->nqueue == o->aqueue) {
		memmove(o->queue, &o->queue[o->head],
		    (o->nqueue - o->head) * sizeof(*o->queue));
		o->nqueue -= o->head;
		o->head = 0;
	}
	if (o->nqueue == o->aqueue) {
		o->aqueue = o->aqueue ? o->aqueue * 2 : 4;
		o->queue = xreallocarray(o->queue, o->aqueue,
		    sizeof(*o->queue));
	}
	o->queue[o->nqueue].member = member;
	o->queue[o->nqueue].run = run;
	o->nqueue++;
	return false;
}

void
order_hold(struct store *st, void *member)
{
	struct order *o = get_order(st);
	size_t i;

	o->held = true;
	o->holds++;
	for (i = 0; i < o->nmembers; i++)
		if (o->members[i].member == member)
			o->members[i].holds++;
}

void
order_release(struct store *st)
{
	struct order *o = st->order;
	struct order_waiter w;

	if (o == NULL)
		return;
	o->held = false;
	if (o->draining)
		return;		/* the loop below goes on */
	o->draining = true;
	while (!o->held && o->head < o->nqueue) {
		w = o->queue[o->head++];
		if (o->head == o->nqueue)
			o->head = o->nqueue = 0;
		w.run(w.member);
	}
	o->draining = false;
}

bool
order_idle(const struct store *st)
{
	return st->order == NULL ||
	    (!st->order->held && st->order->head == st->order->nqueue);
}

uint64_t
order_changes_by_others(const struct store *st, const void *member)
{
	const struct order *o = st->order;
	uint64_t mine = 0;
	size_t i;

	if (o == NULL)
		return 0;
	for (i = 0; i < o->nmembers; i++)
		if (o->members[i].member == member)
			mine = o->members[i].holds;
	return o->holds - mine;
}

void
order_free(struct store *st)
{
	struct order *o = st->order;
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->nmembers; i++)
		free(o->members[i].peer);
	free(o->members);
	free(o->queue);
	free(o);
	st->order = NULL;
}
