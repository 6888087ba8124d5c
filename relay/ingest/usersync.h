/*
 * usersync.h -- following a master session's user-level syncs, to know
 * when the shadow holds the master's complete list for a user (design
 * invariant 9; storage/shadow.h, shadow_user_set_complete()).
 */
#ifndef SR_USERSYNC_H
#define SR_USERSYNC_H

#include <stdbool.h>
#include <stdint.h>

struct dlist;
struct store;

/* One session's user-level sync in progress. */
struct usersync {
	char *user;		/* GET USER was asked for it, or NULL */
	bool refused;		/* a NO or BAD went back since */
	uint64_t others;	/* order_changes_by_others() at its start */
};

/*
 * Follows the command verb/entry of session member of st, before it
 * runs: a GET USER starts a sync; the next command that is not part of
 * it (another GET but FULLMAILBOX or a repeated GET USER of the same
 * user, RESTART, EXIT) ends it.  A sync that ended without a NO or BAD,
 * and while no other session of the store changed anything, sent the
 * master's whole list for that user: the shadow's list is complete.
 */
void usersync_follow(struct usersync *u, struct store *st, const void *member,
    const char *verb, const struct dlist *entry);
/* Frees what u holds. */
void usersync_free(struct usersync *u);

#endif
