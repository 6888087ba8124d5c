/*
 * order.h -- the master sessions of one store, and the order in which
 * their commands reach its shadow and journal.
 *
 * A store may have several master sessions at once (a rolling
 * sync_client and an operator's "sync_client -u"), as a real
 * sync_server does.  Their commands that read or change the shadow run
 * one at a time, in arrival order: see order.c for why and how.
 */
#ifndef SR_ORDER_H
#define SR_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct order;

/*
 * Adds a logged-in session (member: the caller's, opaque here) of st
 * whose address is peer ("ip:port"); creates st's order on first use.
 * Logs a warning when the store's sessions now come from more than one
 * host (two masters may be writing the store).
 */
void order_join(struct store *st, void *member, const char *peer);
/* Removes member from st's sessions and from its queue.  Returns the
 * number of sessions left. */
size_t order_leave(struct store *st, void *member);
/* The number of sessions of st, and session i (i < that number). */
size_t order_sessions(const struct store *st);
void *order_session_at(const struct store *st, size_t i);
/* The address of session i, and the number of different hosts among
 * the sessions. */
const char *order_peer_at(const struct store *st, size_t i);
size_t order_hosts(const struct store *st);

/*
 * Asks for st's turn for a command of member.  Returns true when it may
 * run now (nothing in flight, nobody waiting).  Otherwise member is
 * queued and run(member) is called once its turn comes (from a
 * completion, on the loop); the caller stops reading meanwhile.
 */
bool order_enter(struct store *st, void *member, void (*run)(void *member));
/*
 * The command of member running now keeps the turn until
 * order_release(): it left the shadow transaction open for its journal
 * record, or a seed runs for it.  Counts as a change by member.
 */
void order_hold(struct store *st, void *member);
/* The held turn ends: queued commands run, in arrival order, until one
 * holds the turn again. */
void order_release(struct store *st);
/* Nothing holds the turn and nobody waits. */
bool order_idle(const struct store *st);
/* Turns held (changes journaled) by other sessions than member, since
 * the store's first session: compared before and after a span of
 * member's commands, tells whether another session changed the store
 * meanwhile. */
uint64_t order_changes_by_others(const struct store *st,
    const void *member);
/* Frees st's order (at shutdown). */
void order_free(struct store *st);

#endif
