/*
 * seed.h -- answering a master for what the relay never heard of, from
 * a replica that holds it.
 *
 * A store's shadow holds what its master sent.  Over a replica that
 * already holds the data (every failover: the new master's replica is
 * the old master), a new store knows nothing, and a master told "no such
 * mailbox" sends it whole, bodies and all.  Before such a GET is
 * answered, the relay asks a replica whose link holds the whole journal
 * (so its state is the one the journal left there) about the users and
 * mailboxes the shadow does not know, and takes their state into the
 * shadow: GET USER or GET MAILBOXES on the replica, then GET FULLMAILBOX
 * for each mailbox found.  What it takes is journaled as seed records
 * ("SEED MAILBOX %(...)", "SEED SUB", "SEED QUOTA"), so the shadow stays
 * the fold of the journal; links never replay them.  The master then
 * gets the answers the replica itself would give, and sends only what
 * differs.
 *
 * Seeded state is the replica's, not the master's: it never makes a
 * user's list complete (shadow_user_set_complete), so no repair removes
 * anything on its account.  Each user and mailbox name is asked about
 * once per daemon run.
 */
#ifndef SR_SEED_H
#define SR_SEED_H

#include <stdbool.h>

struct dlist;
struct store;

/*
 * For the master's GET entry (USER, MAILBOXES or FULLMAILBOX): if the
 * shadow lacks something it asks about and a replica can be asked,
 * starts taking it and returns true; done(arg) is called once on the
 * loop when the shadow has what could be taken (or the replica failed
 * to answer), and the GET is then answered from the shadow.  Returns
 * false, calling nothing, when there is nothing to take.
 */
bool seed_start(struct store *st, const struct dlist *entry,
    void (*done)(void *arg), void *arg);

#endif
