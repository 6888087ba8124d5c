/*
 * usersync.c -- when a master's user-level sync makes the shadow's list
 * of that user's folders the master's complete list.
 *
 * A rolling sync_client sends only what changed, so the shadow proves
 * nothing about what the master lacks (design invariant 9).  A
 * user-level sync (GET USER, then the APPLYs of every difference) does:
 * when it ends without a NO or BAD, the shadow holds the master's list
 * for that user, and a link may remove on a replica what is not in it
 * (relay/replay/link_repair.c).  With several sessions of one store
 * (relay/ingest/order.c), another session's change in the middle of a
 * sync may be one the syncing sync_client never saw: the list is then
 * not taken as complete.  When in doubt, completeness is forgotten
 * rather than assumed.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/dlist.h"
#include "relay/ingest/order.h"
#include "relay/ingest/usersync.h"
#include "relay/store.h"
#include "storage/shadow.h"

static void
sync_ended(struct usersync *u, struct store *st, const void *member)
{
	if (u->refused) {
		log_info("store=%s event=user_sync_incomplete user=%s "
		    "reason=\"a command of the sync was refused\"", st->name,
		    u->user);
	} else if (order_changes_by_others(st, member) != u->others) {
		log_info("store=%s event=user_sync_incomplete user=%s "
		    "reason=\"another master session changed the store "
		    "during the sync\"", st->name, u->user);
	} else {
		shadow_user_set_complete(st->shadow, u->user);
		log_debug("store=%s event=user_complete user=%s", st->name,
		    u->user);
	}
	free(u->user);
	u->user = NULL;
}

void
usersync_follow(struct usersync *u, struct store *st, const void *member,
    const char *verb, const struct dlist *entry)
{
	bool get = strcmp(verb, "GET") == 0 && entry != NULL;
	bool get_user = get && strcmp(entry->key, "USER") == 0 &&
	    entry->s != NULL;
	bool again = get_user && u->user && strcmp(entry->s, u->user) == 0;

	if (st == NULL)
		return;
	if (u->user && !again && (strcmp(verb, "EXIT") == 0 ||
	    strcmp(verb, "RESTART") == 0 ||
	    (get && strcmp(entry->key, "FULLMAILBOX") != 0)))
		sync_ended(u, st, member);
	if (get_user && !again) {
		free(u->user);
		u->user = xstrdup(entry->s);
		u->refused = false;
		u->others = order_changes_by_others(st, member);
	}
}

void
usersync_free(struct usersync *u)
{
	free(u->user);
	u->user = NULL;
}
