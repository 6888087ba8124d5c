/*
 * seed.c -- taking what a replica holds into a store's shadow, for the
 * GETs of a master the relay cannot answer from what it was sent (see
 * seed.h for why).
 *
 * One seed at a time per store (it holds the store's turn, order.c,
 * and the asking session waits for it): a
 * question to the replica through its link (link_query), then one
 * journaled seed record per mailbox, subscription or quota root taken,
 * each applied to the shadow like a replayed record and committed when
 * durable, then the next.  A replica that does not answer within
 * SEED_TIMEOUT ends the seed; the master then gets the shadow's answer
 * as it stands, which is always correct (it just makes the master send
 * more).
 *
 * A replica's answer to GET FULLMAILBOX is read as bigbox.c reads a
 * master's APPLY MAILBOX: its records come one by one through the link
 * reader's record hook (link_command_records()); a mailbox with more
 * than BIGBOX_RECORDS of them is spilled to a file, applied from it and
 * journaled from it, so a seed of any size takes bounded memory.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/strset.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/dlist_parse.h"
#include "relay/replay/link.h"
#include "relay/ingest/bigbox.h"
#include "relay/ingest/seed.h"
#include "relay/store.h"
#include "storage/apply.h"

#define SEED_TIMEOUT 60.0	/* seconds for one answer of the replica */
#define SEED_MAX_NAMES 1000	/* mailbox names asked in one GET */
#define SEED_WAIT 5.0		/* seconds for a link to catch up first */

struct seed {
	struct store *st;
	struct dlist *get;		/* the first question, until asked */
	double wait_until;		/* give up waiting for a link then */
	size_t li;			/* the link asked (index in st->links) */
	char user[256];			/* GET USER: whose subscriptions */
	struct dlist *todo;		/* mailbox names to fetch whole */
	struct dlist *extra;		/* SUB and QUOTA entries to take */
	unsigned mailboxes, others;	/* taken so far */
	struct bigbox big;		/* a FULLMAILBOX answer's records */
	struct dlist_record_hook hook;	/* big's, for the link's reader */
	ev_timer timer;
	bool waiting;			/* a question is out */
	bool abandoned;			/* timed out: the answer is moot */
	void (*done)(void *arg);
	void *arg;
};

static void next_step(struct seed *sd);

static void
seed_free(struct seed *sd)
{
	bigbox_free(&sd->big);
	free(sd);
}

static const char *
replica_name(const struct seed *sd)
{
	return sd->li < sd->st->nlinks && sd->st->links[sd->li] ?
	    link_name(sd->st->links[sd->li]) : "?";
}

static void
finish(struct seed *sd, const char *why)
{
	ev_timer_stop(sd->st->loop, &sd->timer);
	if (why != NULL)
		log_warnx("store=%s replica=%s event=seed_stopped mailboxes=%u "
		    "others=%u reason=\"%s\"", sd->st->name, replica_name(sd),
		    sd->mailboxes, sd->others, why);
	else if (sd->mailboxes || sd->others)
		log_info("store=%s replica=%s event=seeded mailboxes=%u "
		    "others=%u", sd->st->name, replica_name(sd),
		    sd->mailboxes, sd->others);
	dlist_free(&sd->todo);
	dlist_free(&sd->extra);
	sd->done(sd->arg);
	if (!sd->waiting)
		seed_free(sd);
	else
		sd->abandoned = true;	/* freed when the answer comes */
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct seed *sd = w->data;

	(void)loop;
	(void)revents;
	finish(sd, "the replica did not answer in time");
}

static void on_answer(void *arg, const char *verb, const char *text,
    struct dlist *untagged);

static void
ask(struct seed *sd, const struct dlist *get)
{
	struct store *st = sd->st;

	bigbox_done(&sd->big);
	if (sd->li >= st->nlinks || st->links[sd->li] == NULL ||
	    link_command_records(st->links[sd->li], "GET", get, &sd->hook,
	    on_answer, sd) < 0) {
		finish(sd, "the replica's link is busy or gone");
		return;
	}
	sd->waiting = true;
	ev_timer_set(&sd->timer, SEED_TIMEOUT, 0);
	ev_timer_start(st->loop, &sd->timer);
}

static bool
known_mailbox(struct shadow *sh, const char *name, const char *uniqueid)
{
	struct shadow_mailbox mb;

	if (name && shadow_mailbox_by_name(sh, name, &mb) == 0) {
		shadow_mailbox_free(&mb);
		return true;
	}
	if (uniqueid && shadow_mailbox_by_uniqueid(sh, uniqueid, &mb) == 0) {
		shadow_mailbox_free(&mb);
		return true;
	}
	return false;
}

static int
sub_cb(void *arg, const char *name)
{
	strset_add(arg, name);
	return 0;
}

/*
 * What the replica listed (the answer to GET USER or MAILBOXES): the
 * mailboxes the shadow lacks go to todo, the subscriptions and quota
 * roots it lacks to extra (QUOTA entries are moved over: their fields
 * are an APPLY QUOTA's).
 */
static void
take_listing(struct seed *sd, struct dlist *untagged)
{
	struct shadow *sh = sd->st->shadow;
	struct dlist *e, *next, *n;
	struct strset subs = STRSET_INIT;
	const char *name, *uniqueid, *root;
	char key[300];

	if (untagged == NULL)
		return;
	if (*sd->user)
		shadow_sub_each(sh, sd->user, sub_cb, &subs);
	e = untagged->head;
	untagged->head = untagged->tail = NULL;
	untagged->nchildren = 0;
	for (; e; e = next) {
		next = e->next;
		e->next = NULL;
		name = uniqueid = root = NULL;
		if (e->key && strcmp(e->key, "MAILBOX") == 0 &&
		    dlist_get_str(e, "MBOXNAME", &name) == 0 && name &&
		    dlist_get_str(e, "UNIQUEID", &uniqueid) == 0 && uniqueid) {
			snprintf(key, sizeof(key), "M:%s", name);
			strset_add(&sd->st->seed_asked, key);
			if (!known_mailbox(sh, name, uniqueid))
				dlist_add_atom(sd->todo, NULL, name);
		} else if (e->key && strcmp(e->key, "LSUB") == 0 && *sd->user) {
			for (n = e->head; n; n = n->next) {
				struct dlist *sub;

				if (n->type != DL_ATOM || strset_has(&subs,
				    n->s))
					continue;
				sub = dlist_new_kvlist("SUB");
				dlist_add_atom(sub, "USERID", sd->user);
				dlist_add_atom(sub, "MBOXNAME", n->s);
				dlist_append(sd->extra, sub);
			}
		} else if (e->key && strcmp(e->key, "QUOTA") == 0 &&
		    dlist_get_str(e, "ROOT", &root) == 0 && root) {
			char *fields = NULL;

			if (shadow_quota_get(sh, root, &fields) != 0) {
				dlist_append(sd->extra, e);
				continue;
			}
			free(fields);
		}
		dlist_append(untagged, e);
	}
	strset_clear(&subs);
}

static void
written(void *arg, uint64_t lsn, int err)
{
	struct seed *sd = arg;
	struct shadow *sh = sd->st->shadow;

	if (err == 0 && shadow_commit(sh, lsn) == 0) {
		next_step(sd);
		return;
	}
	shadow_rollback(sh);
	log_error("store=%s event=seed_not_durable error=\"%s\"", sd->st->name,
	    err ? strerror(-err) : shadow_errmsg(sh));
	finish(sd, "the seed could not be stored");
}

/*
 * Takes one entry (MAILBOX, SUB or QUOTA) into the shadow and journals
 * it as a seed record.  Returns true when a write is on its way (next
 * step from its completion), false when the entry changed nothing.
 */
static bool
take(struct seed *sd, const struct dlist *e)
{
	static const struct apply_ctx replay = { true, true, true, true };
	struct store *st = sd->st;
	struct apply_outcome out;

	if (journal_error(st->journal) != 0 || st->refuse_writes ||
	    st->disk_full || shadow_begin(st->shadow) < 0)
		return false;
	/* sd->big.spill: the records of a big FULLMAILBOX answer's e. */
	apply_command_spilled(st->shadow, e, sd->big.spill, &replay, &out);
	if (!out.changed) {
		shadow_rollback(st->shadow);
		log_info("store=%s event=seed_skipped sub=%s code=%s "
		    "reason=\"%s\"", st->name, e->key, result_name(out.code),
		    out.why);
		return false;
	}
	if (strcmp(e->key, "MAILBOX") == 0)
		sd->mailboxes++;
	else
		sd->others++;
	/* The journal dups the spill's fd: on_answer drops the spill. */
	bigbox_journal_as(&sd->big, "SEED", st->journal, e, written, sd);
	return true;
}

static struct dlist *
pop(struct dlist *list)
{
	struct dlist *e = list ? list->head : NULL;

	if (e != NULL) {
		list->head = e->next;
		if (list->tail == e)
			list->tail = NULL;
		e->next = NULL;
		list->nchildren--;
	}
	return e;
}

static void
on_answer(void *arg, const char *verb, const char *text,
    struct dlist *untagged)
{
	struct seed *sd = arg;
	struct dlist *e, *last = NULL;
	bool wrote = false;

	sd->waiting = false;
	if (sd->abandoned) {
		dlist_free(&untagged);
		seed_free(sd);
		return;
	}
	ev_timer_stop(sd->st->loop, &sd->timer);
	if (strcmp(verb, "OK") != 0 && sd->todo != NULL &&
	    strcmp(verb, "NO") == 0 && sd->st->nlinks > 0) {
		/* One mailbox it would not show (an intermediate, say). */
		log_info("store=%s replica=%s event=seed_skipped sub=FULLMAILBOX "
		    "reason=\"%s %s\"", sd->st->name, replica_name(sd), verb,
		    text);
		dlist_free(&untagged);
		next_step(sd);
		return;
	}
	if (strcmp(verb, "OK") != 0) {
		char why[300];

		dlist_free(&untagged);
		snprintf(why, sizeof(why), "the replica answered %s %s", verb,
		    text);
		finish(sd, why);
		return;
	}
	if (sd->todo == NULL) {
		/* The answer to the listing (GET USER or MAILBOXES). */
		sd->todo = dlist_new_list(NULL);
		sd->extra = dlist_new_list(NULL);
		take_listing(sd, untagged);
	} else {
		/* A GET FULLMAILBOX: the mailbox with every record.  The
		 * records the hook took belong to the answer's MAILBOX
		 * (Cyrus sends one): back into it if few, else spilled. */
		for (e = untagged ? untagged->head : NULL; e; e = e->next)
			if (e->key && strcmp(e->key, "MAILBOX") == 0)
				last = e;
		bigbox_line_end(&sd->big, last);
		if (last == NULL)
			bigbox_done(&sd->big);
		for (e = untagged ? untagged->head : NULL; e && !wrote;
		    e = e->next)
			if (e->key && strcmp(e->key, "MAILBOX") == 0 &&
			    (sd->big.spill == NULL || e == last))
				wrote = take(sd, e);
	}
	bigbox_done(&sd->big);
	dlist_free(&untagged);
	if (!wrote)
		next_step(sd);
}

static void
next_step(struct seed *sd)
{
	struct dlist *e;

	if (sd->st->nlinks == 0) {
		finish(sd, "the store is closing");
		return;
	}
	if ((e = pop(sd->todo)) != NULL) {
		struct dlist *get = dlist_new_atom("FULLMAILBOX", e->s,
		    strlen(e->s));

		dlist_free(&e);
		ask(sd, get);
		dlist_free(&get);
		return;
	}
	while ((e = pop(sd->extra)) != NULL) {
		bool wrote = take(sd, e);

		dlist_free(&e);
		if (wrote)
			return;
	}
	finish(sd, NULL);
}

/*
 * The first link that may be asked now, or SIZE_MAX; *later: one that
 * may be asked once it has replayed the rest of the journal.
 */
static size_t
pick(const struct store *st, bool *later)
{
	size_t i;

	*later = false;
	for (i = 0; i < st->nlinks; i++) {
		if (st->links[i] == NULL)
			continue;
		if (link_seedable(st->links[i]))
			return i;
		*later |= link_may_seed(st->links[i]);
	}
	return (size_t)-1;
}

/* Marks what sd->get asks about as asked, and asks it. */
static int
start_asking(struct seed *sd, size_t li)
{
	struct store *st = sd->st;
	const struct dlist *n;
	char key[300];

	if (link_query(st->links[li], sd->get, on_answer, sd) < 0)
		return -1;
	sd->li = li;
	if (strcmp(sd->get->key, "USER") == 0) {
		snprintf(key, sizeof(key), "U:%s", sd->get->s);
		strset_add(&st->seed_asked, key);
	}
	for (n = sd->get->type == DL_LIST ? sd->get->head : NULL; n;
	    n = n->next) {
		snprintf(key, sizeof(key), "M:%s", n->s);
		strset_add(&st->seed_asked, key);
	}
	log_debug("store=%s replica=%s event=seed_ask get=%s", st->name,
	    link_name(st->links[li]), sd->get->key);
	dlist_free(&sd->get);
	sd->waiting = true;
	ev_timer_stop(st->loop, &sd->timer);
	ev_set_cb(&sd->timer, timeout_cb);
	ev_timer_set(&sd->timer, SEED_TIMEOUT, 0);
	ev_timer_start(st->loop, &sd->timer);
	return 0;
}

/* Waiting for a link to replay the rest of the journal. */
static void
wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct seed *sd = w->data;
	bool later;
	size_t li = pick(sd->st, &later);

	(void)revents;
	if (li != (size_t)-1 && start_asking(sd, li) == 0)
		return;
	if (later && ev_now(loop) < sd->wait_until)
		return;		/* the timer repeats */
	dlist_free(&sd->get);
	finish(sd, later ? "no replica caught up in time to be asked" :
	    "no replica can be asked");
}

/* What entry asks about that the shadow lacks (a GET for the replica),
 * or NULL. */
static struct dlist *
what_to_ask(struct store *st, const struct dlist *entry)
{
	struct dlist *get;
	const struct dlist *n, *one;
	char key[300];

	if (strcmp(entry->key, "USER") == 0 && entry->type == DL_ATOM &&
	    entry->s && strlen(entry->s) < 250) {
		snprintf(key, sizeof(key), "U:%s", entry->s);
		if (strset_has(&st->seed_asked, key))
			return NULL;
		return dlist_new_atom("USER", entry->s, strlen(entry->s));
	}
	if (!(strcmp(entry->key, "MAILBOXES") == 0 && entry->type ==
	    DL_LIST) && !(strcmp(entry->key, "FULLMAILBOX") == 0 &&
	    entry->type == DL_ATOM && entry->s))
		return NULL;
	one = entry->type == DL_ATOM ? entry : NULL;
	get = dlist_new_list("MAILBOXES");
	for (n = one ? one : entry->head; n && get->nchildren <
	    SEED_MAX_NAMES; n = one ? NULL : n->next) {
		if (n->type != DL_ATOM || n->s == NULL || strlen(n->s) > 290)
			continue;
		snprintf(key, sizeof(key), "M:%s", n->s);
		if (strset_has(&st->seed_asked, key) ||
		    known_mailbox(st->shadow, n->s, NULL))
			continue;
		dlist_add_atom(get, NULL, n->s);
	}
	if (get->nchildren == 0)
		dlist_free(&get);
	return get;
}

bool
seed_start(struct store *st, const struct dlist *entry,
    void (*done)(void *arg), void *arg)
{
	struct seed *sd;
	struct dlist *get;
	bool later;
	size_t li;

	if (entry->key == NULL || journal_error(st->journal) != 0 ||
	    st->refuse_writes || st->disk_full)
		return false;
	li = pick(st, &later);
	if ((li == (size_t)-1 && !later) ||
	    (get = what_to_ask(st, entry)) == NULL)
		return false;
	sd = xcalloc(1, sizeof(*sd));
	sd->st = st;
	sd->get = get;
	sd->li = (size_t)-1;
	if (strcmp(get->key, "USER") == 0)
		snprintf(sd->user, sizeof(sd->user), "%s", get->s);
	sd->done = done;
	sd->arg = arg;
	bigbox_setup(&sd->big, st->dir, st->name, &sd->hook);
	ev_init(&sd->timer, timeout_cb);
	sd->timer.data = sd;
	if (li != (size_t)-1 && start_asking(sd, li) == 0)
		return true;
	if (!later) {
		dlist_free(&sd->get);
		seed_free(sd);
		return false;
	}
	/* A replica that can be asked is still replaying what the master
	 * sent before this GET: wait a little for it. */
	sd->wait_until = ev_now(st->loop) + SEED_WAIT;
	ev_set_cb(&sd->timer, wait_cb);
	ev_timer_set(&sd->timer, 0.02, 0.02);
	ev_timer_start(st->loop, &sd->timer);
	return true;
}
