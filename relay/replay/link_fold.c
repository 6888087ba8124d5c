/*
 * link_fold.c -- folding consecutive APPLY MAILBOX updates of one
 * mailbox into one command, as sync_client itself would send them after
 * a pause: the newer header and the union of the RECORD lists by UID.
 * Pure list work; it calls only link_core.c.
 */
#include "autoconf.h"

#include <string.h>

#include "protocol/dlist.h"
#include "relay/replay/link_int.h"

bool
link_is_mailbox_update(const struct dlist *cmd)
{
	return strcmp(cmd->key, "MAILBOX") == 0 && cmd->type == DL_KVLIST &&
	    dlist_get(cmd, "RECORD") != NULL;
}

bool
link_same_str(const struct dlist *a, const struct dlist *b, const char *key)
{
	const char *x = NULL, *y = NULL;

	dlist_get_str(a, key, &x);
	dlist_get_str(b, key, &y);
	return x != NULL && y != NULL && strcmp(x, y) == 0;
}

static uint64_t
record_uid(const struct dlist *r)
{
	uint64_t v = 0;

	dlist_get_num(r, "UID", &v);
	return v;
}

/*
 * Folds an older APPLY MAILBOX of the same mailbox into newer: newer's
 * header (it is the later state), and the union of both RECORD lists by
 * UID, newer winning -- what the master would have sent had it synced
 * once after both changes.  Both lists are in ascending UID order.
 */
void
link_fold_mailbox(struct dlist *newer, struct dlist *older)
{
	struct dlist *a = dlist_get_mut(older, "RECORD");
	struct dlist *b = dlist_get_mut(newer, "RECORD");
	struct dlist *out = dlist_new_list("RECORD");

	while (a->head != NULL || b->head != NULL) {
		if (b->head == NULL || (a->head != NULL &&
		    record_uid(a->head) < record_uid(b->head))) {
			dlist_append(out, dlist_pop_first(a));
			continue;
		}
		if (a->head != NULL &&
		    record_uid(a->head) == record_uid(b->head)) {
			struct dlist *old = dlist_pop_first(a);

			dlist_free(&old);
		}
		dlist_append(out, dlist_pop_first(b));
	}
	dlist_remove(newer, "RECORD");
	dlist_append(newer, out);
}
