/*
 * link_repair.c -- repairing a replica that refuses a mailbox, the way
 * sync_client does, within what the master proves (design.md invariant
 * 9).
 *
 * A mailbox refused as CHANGED or CHECKSUM is sent whole from the
 * shadow.  One missing or moved on the replica leads to a comparison of
 * the user's folders (GET USER on the replica against the shadow, by
 * UNIQUEID).  The replica loses a folder, or has one renamed, only where
 * the shadow holds the master's complete list for that user (a
 * user-level sync in the master's current session: see
 * shadow_user_is_complete()); otherwise only the folder the master's
 * record names is touched and every other difference is logged
 * (event=repair_left) and shown in status.  What only the master could
 * fix (records newer or extra on the replica) is looked into with GET
 * FULLMAILBOX and stops the link with the reason and the remedy; the
 * answer's records are compared as they are read (the reader's record
 * hook), so a mailbox of any size is looked into in bounded memory.
 *
 * The replay reaches this file only through link_repair_ops; it calls
 * the replay to send mailboxes and to go on.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/dlist_parse.h"
#include "protocol/result.h"
#include "relay/getcmd_full.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"
#include "storage/mboxname.h"
#include "storage/shadow.h"

struct user_scan {
	struct link *l;
	const struct dlist *rmbs;	/* the replica's MAILBOX entries */
	const char *target;		/* the uniqueid being repaired */
	bool complete;			/* the shadow has the master's list */
	const char *occupied;		/* target's name held by another */
};

static void diagnose(struct link *l, const char *why);
static void repair_parked(struct link *l);
static void next_repair_step(struct link *l);
static void repair_user(struct link *l, const char *why);

/*
 * A full APPLY MAILBOX of the shadow's state of uniqueid, or NULL: its
 * fields now, its records read a page at a time when it is sent
 * (link_whole.c), all from the shadow as committed then.
 */
static struct dlist *
shadow_full_mailbox(struct link *l, const char *uniqueid)
{
	struct shadow_mailbox mb;
	struct dlist *full;

	if (uniqueid == NULL ||
	    shadow_mailbox_by_uniqueid(l->st->shadow, uniqueid, &mb) < 0)
		return NULL;
	full = getcmd_full_header(l->st->shadow, &mb);
	shadow_mailbox_free(&mb);
	return full;
}

/*
 * Repairs the current command's mailbox from the shadow's state: a full
 * APPLY MAILBOX (bodies staged as usual).  A second refusal is looked
 * into (GET FULLMAILBOX) and stops the link with the reason.
 */
static void
repair_mailbox(struct link *l, const char *why)
{
	const char *uniqueid = NULL, *name = NULL;
	struct dlist *full;

	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (l->repairing) {
		diagnose(l, why);
		return;
	}
	log_warnx("store=%s replica=%s event=repair mailbox=%s lsn=%llu "
	    "reason=\"%s\"", l->st->name, l->rc.name, name ? name : "?",
	    (unsigned long long)l->lsn, why);
	link_note_error(l, "repair", "repaired %s: %s", name ? name : "?", why);
	snprintf(l->repair_why, sizeof(l->repair_why), "%s", why);
	l->repair_upto = shadow_lsn(l->st->shadow);
	full = shadow_full_mailbox(l, uniqueid);
	if (full == NULL) {
		/* Gone from the shadow: later records take it from here. */
		link_advance(l);
		return;
	}
	dlist_free(&l->cmd);		/* name and uniqueid pointed here */
	l->cmd = full;
	l->repairing = true;
	link_set_state(l, LINK_REPAIRING);
	link_ask_mailbox_state(l);
}

/*
 * A record of the replica's GET FULLMAILBOX answer, handed over as it
 * is read (the reader's record hook): compared with the shadow's record
 * of its UID, and the first that only the master could fix is kept in
 * l->diag_reason.  Nothing else is kept: an answer of any size is read
 * in bounded memory.
 */
static int
diag_record(void *arg, struct dlist *r, size_t index)
{
	struct link *l = arg;
	struct shadow_record m;
	const char *uniqueid = NULL;
	uint64_t uid = 0, modseq = 0;
	char g[41];

	(void)index;
	if (l->diag_reason[0] == '\0' && l->cmd != NULL &&
	    dlist_get_str(l->cmd, "UNIQUEID", &uniqueid) == 0 && uniqueid &&
	    dlist_get_num(r, "UID", &uid) == 0 && uid <= UINT32_MAX &&
	    shadow_record_get(l->st->shadow, uniqueid, (uint32_t)uid,
	    &m) == 0) {
		if (dlist_guid(dlist_get(r, "GUID"), g) == 0 &&
		    strcmp(g, m.guid) != 0)
			snprintf(l->diag_reason, sizeof(l->diag_reason),
			    "UID %u holds another message on the replica "
			    "(GUID %s, the master's is %s), so mail was "
			    "delivered to the replica directly", m.uid, g,
			    m.guid);
		else if (dlist_get_num(r, "MODSEQ", &modseq) == 0 &&
		    modseq > m.modseq)
			snprintf(l->diag_reason, sizeof(l->diag_reason),
			    "UID %u was changed on the replica (MODSEQ %llu "
			    "there, %llu on the master)", m.uid,
			    (unsigned long long)modseq,
			    (unsigned long long)m.modseq);
		shadow_record_free(&m);
	}
	dlist_free(&r);
	return 0;
}

static void
diagnose_reply(struct link *l, const char *verb, const char *text)
{
	const struct dlist *rmb = NULL;
	struct shadow_mailbox mb;
	const char *name = NULL, *uniqueid = NULL;
	char user[256];
	char *reason = NULL;
	uint64_t r_last = 0, r_hms = 0;
	bool parked;

	if (l->reader)
		csync_reader_set_record_hook(l->reader, NULL);

	dlist_get_str(l->cmd, "MBOXNAME", &name);
	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	if (l->untagged && l->untagged->head &&
	    strcmp(l->untagged->head->key, "MAILBOX") == 0)
		rmb = l->untagged->head;
	if (strcmp(verb, "OK") != 0 || rmb == NULL || uniqueid == NULL ||
	    shadow_mailbox_by_uniqueid(l->st->shadow, uniqueid, &mb) < 0) {
		if (link_park_mailbox(l, uniqueid, name, "repairing %s "
		    "failed: %s", name ? name : "?", l->repair_why))
			repair_parked(l);
		return;
	}
	dlist_get_num(rmb, "LAST_UID", &r_last);
	dlist_get_num(rmb, "HIGHESTMODSEQ", &r_hms);
	if (r_last > mb.last_uid) {
		reason = xasprintf("the replica holds UIDs up to %llu, the "
		    "master only up to %u, so mail was delivered to the "
		    "replica directly", (unsigned long long)r_last,
		    mb.last_uid);
	} else {
		if (l->diag_reason[0] != '\0')
			reason = xstrdup(l->diag_reason);
		if (reason == NULL && r_hms > mb.highestmodseq)
			reason = xasprintf("the replica's HIGHESTMODSEQ %llu "
			    "is above the master's %llu, so it was changed "
			    "directly", (unsigned long long)r_hms,
			    (unsigned long long)mb.highestmodseq);
	}
	if (mboxname_userid(name ? name : "", user, sizeof(user)) < 0)
		snprintf(user, sizeof(user), "?");
	if (reason != NULL)
		parked = link_park_mailbox(l, uniqueid, name, "repairing %s "
		    "failed: %s; %s: resync it from the master (sync_client "
		    "-u %s straight to the replica, which copies what only the "
		    "replica has back to the master), then syncrelayctl retry "
		    "%s %s", name ? name : "?", l->repair_why, reason, user,
		    l->st->name, l->rc.name);
	else
		parked = link_park_mailbox(l, uniqueid, name, "repairing %s "
		    "failed: %s (the replica's copy differs from the master's "
		    "in a way the relay cannot tell)", name ? name : "?",
		    l->repair_why);
	free(reason);
	shadow_mailbox_free(&mb);
	if (parked)
		repair_parked(l);
}

/* The replica refused the shadow's own state: find out why, then stop. */
static void
diagnose(struct link *l, const char *why)
{
	struct dlist *get;
	const char *name = NULL;
	struct dlist_record_hook hook = { "RECORD", diag_record, NULL };

	snprintf(l->repair_why, sizeof(l->repair_why), "%s", why);
	l->diag_reason[0] = '\0';
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	get = dlist_new_atom("FULLMAILBOX", name ? name : "",
	    strlen(name ? name : ""));
	link_send_cmd(l, "GET", get, diagnose_reply);
	dlist_free(&get);
	/* Its records are compared as they come (diag_record()); a lost
	 * connection takes the hook with its reader. */
	hook.arg = l;
	if (l->reader)
		csync_reader_set_record_hook(l->reader, &hook);
}

static bool
is_deleted_name(const char *name)
{
	const char *bang = strchr(name, '!');

	return strncmp(bang ? bang + 1 : name, "DELETED.", 8) == 0;
}

static void
repair_op_reply(struct link *l, const char *verb, const char *text)
{
	bool gone = strcmp(verb, "NO") == 0 &&
	    result_from_no_text(text) == RESULT_MAILBOX_NONEXISTENT;

	if (strcmp(verb, "OK") != 0 && !(gone && l->cmd &&
	    strcmp(l->cmd->key, "UNMAILBOX") == 0)) {
		if (link_park_mailbox(l, l->repair_target, l->repair_name,
		    "repairing: APPLY %s: %s %s", l->cmd ? l->cmd->key : "?",
		    verb, text))
			next_repair_step(l);
		return;
	}
	next_repair_step(l);
}

/* Sends the next rename or delete, then the mailboxes, then goes on. */
static void
next_repair_step(struct link *l)
{
	struct dlist *op;

	dlist_free(&l->cmd);
	if (l->repair_ops && (op = dlist_pop_first(l->repair_ops)) != NULL) {
		const char *a = NULL, *b = NULL;

		if (!dlist_get_str(op, "OLDMBOXNAME", &a) &&
		    !dlist_get_str(op, "NEWMBOXNAME", &b))
			log_warnx("store=%s replica=%s event=repair_rename "
			    "from=%s to=%s", l->st->name, l->rc.name, a, b);
		else
			log_warnx("store=%s replica=%s event=repair_unmailbox "
			    "mailbox=%s note=\"not on the master\"",
			    l->st->name, l->rc.name, op->s ? op->s : "?");
		l->cmd = op;
		link_send_cmd(l, "APPLY", op, repair_op_reply);
		return;
	}
	if (l->repair_queue && (op = dlist_pop_first(l->repair_queue)) != NULL) {
		l->cmd = op;
		link_ask_mailbox_state(l);
		return;
	}
	link_set_state(l, l->caught_up ? LINK_STREAMING : LINK_CATCHING_UP);
	link_advance(l);
}

/* The replica's mailbox with this uniqueid (or name), or NULL. */
static const struct dlist *
replica_mailbox(const struct dlist *rmbs, const char *key, const char *v)
{
	const struct dlist *e;
	const char *x;

	for (e = rmbs ? rmbs->head : NULL; e; e = e->next)
		if (strcmp(e->key, "MAILBOX") == 0 &&
		    dlist_get_str(e, key, &x) == 0 && x && strcmp(x, v) == 0)
			return e;
	return NULL;
}

/*
 * A difference the repair may not act on: the shadow is partial (a
 * rolling master sends only what changed), so it proves nothing about
 * what the master holds.  Logged, and kept for status.
 */
static void
leave_alone(struct link *l, const char *name, const char *what)
{
	size_t n = strlen(LINK_TEXT(l->left_alone));

	log_warnx("store=%s replica=%s event=repair_left mailbox=%s "
	    "reason=\"%s; the relay has no complete list from the master "
	    "for this user\"", l->st->name, l->rc.name, name, what);
	if (l->nleft_alone++ < 8 && n + strlen(name) + 3 <
	    LINK_WHY_MAX)
		link_text_set(&l->left_alone, LINK_WHY_MAX, "%s%s%s",
		    LINK_TEXT(l->left_alone), n ? ", " : "", name);
}

/*
 * For each of the user's mailboxes in the shadow: rename or recreate it
 * on the replica.  With a partial shadow only the mailbox the master's
 * record names (the target) is touched: its name and content are the
 * master's own word.
 */
static int
user_scan_mailbox(void *arg, const struct shadow_mailbox *mb)
{
	struct user_scan *u = arg;
	struct link *l = u->l;
	const struct dlist *r = replica_mailbox(u->rmbs, "UNIQUEID",
	    mb->uniqueid);
	const char *rname = NULL, *ouid = NULL;
	bool target = strcmp(mb->uniqueid, u->target) == 0;
	bool moved;
	struct dlist *full;

	/* Another parked mailbox waits for its own retry (its backoff). */
	if (!target && link_park_has_mailbox(l, mb->uniqueid))
		return 0;
	if (r)
		dlist_get_str(r, "MBOXNAME", &rname);
	moved = rname && strcmp(rname, mb->name) != 0;
	if (!u->complete && !target) {
		if (r == NULL)
			leave_alone(l, mb->name, "not on the replica, not "
			    "recreated");
		else if (moved && !is_deleted_name(rname))
			leave_alone(l, rname, "named differently in the "
			    "shadow, not renamed");
		return 0;
	}
	if (target && (r == NULL || moved)) {
		const struct dlist *o = replica_mailbox(u->rmbs, "MBOXNAME",
		    mb->name);

		if (o && dlist_get_str(o, "UNIQUEID", &ouid) == 0 && ouid &&
		    strcmp(ouid, mb->uniqueid) != 0 && !u->complete)
			u->occupied = mb->name;
	}
	if (moved) {
		struct dlist *op = dlist_new_kvlist("RENAME");

		dlist_add_atom(op, "OLDMBOXNAME", rname);
		dlist_add_atom(op, "NEWMBOXNAME", mb->name);
		dlist_add_atom(op, "PARTITION", mb->partition);
		dlist_add_num(op, "UIDVALIDITY", mb->uidvalidity);
		dlist_append(l->repair_ops, op);
	}
	if (r == NULL || target || moved) {
		full = getcmd_full_header(l->st->shadow, mb);
		if (full)
			dlist_append(l->repair_queue, full);
	}
	return 0;
}

static void
user_state_reply(struct link *l, const char *verb, const char *text)
{
	struct user_scan u = { l, l->untagged, "", false, NULL };
	const struct dlist *e;
	const char *uniqueid = NULL, *name = NULL;
	char user[256];

	if (strcmp(verb, "OK") != 0) {
		link_fail(l, "repairing: GET USER: %s %s", verb, text);
		return;
	}
	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (mboxname_userid(name ? name : "", user, sizeof(user)) < 0) {
		if (link_park_mailbox(l, uniqueid, name, "repairing: %s "
		    "belongs to no user", name ? name : "?"))
			repair_parked(l);
		return;
	}
	u.target = uniqueid ? uniqueid : "";
	u.complete = shadow_user_is_complete(l->st->shadow, user);
	l->repair_upto = shadow_lsn(l->st->shadow);
	l->repair_ops = dlist_new_list(NULL);
	l->repair_queue = dlist_new_list(NULL);
	link_text_set(&l->left_alone, LINK_WHY_MAX, "%s", "");
	l->nleft_alone = 0;
	/*
	 * What the replica has and the master has not goes, as sync_client
	 * does it -- but only where the shadow holds the master's complete
	 * list for the user (design invariant 9): folders created on the
	 * replica, or holding a name the master gave to another folder.  A
	 * deleted folder (DELETED.*) that the master still has comes back
	 * by rename; other deleted folders are left to the replica's expiry.
	 */
	for (e = l->untagged ? l->untagged->head : NULL; e; e = e->next) {
		const char *rname = NULL, *ruid = NULL;
		struct shadow_mailbox mb;

		if (strcmp(e->key, "MAILBOX") != 0 ||
		    dlist_get_str(e, "MBOXNAME", &rname) < 0 || !rname ||
		    dlist_get_str(e, "UNIQUEID", &ruid) < 0 || !ruid ||
		    is_deleted_name(rname))
			continue;
		if (shadow_mailbox_by_uniqueid(l->st->shadow, ruid, &mb) == 0) {
			shadow_mailbox_free(&mb);
			continue;
		}
		if (u.complete)
			dlist_append(l->repair_ops, dlist_new_atom("UNMAILBOX",
			    rname, strlen(rname)));
		else
			leave_alone(l, rname, "only on the replica, not "
			    "removed");
	}
	shadow_mailbox_each_user(l->st->shadow, user, user_scan_mailbox, &u);
	if (u.occupied) {
		dlist_free(&l->repair_ops);
		dlist_free(&l->repair_queue);
		if (link_park_mailbox(l, uniqueid, name, "repairing user %s: "
		    "the replica holds %s as another mailbox (another "
		    "UNIQUEID), and the relay has no complete list from the "
		    "master to prove that one gone: rename or remove it on the "
		    "replica, or run sync_client -u %s through the relay, then "
		    "syncrelayctl retry %s %s", user, u.occupied, user,
		    l->st->name, l->rc.name))
			repair_parked(l);
		return;
	}
	log_warnx("store=%s replica=%s event=repair_user user=%s complete=%s "
	    "renames_and_deletes=%zu mailboxes=%zu left_alone=%u",
	    l->st->name, l->rc.name, user, u.complete ? "yes" : "no",
	    l->repair_ops->nchildren, l->repair_queue->nchildren,
	    l->nleft_alone);
	if (l->nleft_alone)
		link_note_error(l, "repair_left", "repaired user %s: %s; left alone "
		    "(no complete list from the master): %s%s", user,
		    l->repair_why, LINK_TEXT(l->left_alone), l->nleft_alone > 8 ?
		    ", ..." : "");
	next_repair_step(l);
}

/*
 * The replica's folders differ from the master's (one is missing, moved
 * or deleted there): compare the user's folders on the replica (GET
 * USER) with the shadow's, rename and delete on the replica to match,
 * and send the mailboxes concerned whole.  Mailboxes that belong to no
 * user get the mailbox-level repair.
 */
static void
repair_user(struct link *l, const char *why)
{
	const char *name = NULL, *uniqueid;
	char user[256];
	struct dlist *get;

	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (l->user_repaired || name == NULL ||
	    mboxname_userid(name, user, sizeof(user)) < 0 || *user == '\0') {
		repair_mailbox(l, why);
		return;
	}
	log_warnx("store=%s replica=%s event=repair scope=user user=%s "
	    "mailbox=%s lsn=%llu reason=\"%s\"", l->st->name, l->rc.name,
	    user, name, (unsigned long long)l->lsn, why);
	link_note_error(l, "repair", "repaired user %s: %s", user, why);
	snprintf(l->repair_why, sizeof(l->repair_why), "%s", why);
	uniqueid = NULL;
	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	snprintf(l->repair_target, sizeof(l->repair_target), "%s",
	    uniqueid ? uniqueid : "");
	snprintf(l->repair_name, sizeof(l->repair_name), "%s", name);
	l->repairing = l->user_repaired = true;
	link_set_state(l, LINK_REPAIRING);
	get = dlist_new_atom("USER", user, strlen(user));
	link_send_cmd(l, "GET", get, user_state_reply);
	dlist_free(&get);
}

/* A mailbox a repair sent was accepted: the rest of the repair, if any. */
static bool
repair_accepted(struct link *l)
{
	const char *u = NULL;

	if (dlist_get_str(l->cmd, "UNIQUEID", &u) == 0 && u)
		link_remember_repaired(l, u);
	if (l->repair_queue || l->repair_ops) {
		next_repair_step(l);
		return true;
	}
	return false;
}

/*
 * Something was parked: go on with the rest of the repair under way, if
 * any, else with the replay (the cursor passes the parked record).
 */
static void
repair_parked(struct link *l)
{
	if (l->repair_queue || l->repair_ops) {
		next_repair_step(l);
		return;
	}
	link_set_state(l, l->caught_up ? LINK_STREAMING : LINK_CATCHING_UP);
	link_advance(l);
}

const struct link_repair_ops link_repair_ops = { repair_mailbox,
	repair_user, repair_accepted, repair_parked };
