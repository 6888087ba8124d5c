/*
 * audit.c -- a replica compared with the shadow, and what differs sent
 * again from the shadow (see audit.h).
 *
 * Per replica, in three phases on a timer: (1) GET USER for each user
 * the shadow knows: each shadow mailbox is looked up on the replica by
 * UNIQUEID and its summary compared (name, UIDVALIDITY, LAST_UID,
 * HIGHESTMODSEQ, SYNC_CRC, SYNC_CRC_ANNOT); the user's folders the
 * shadow does not know are noted too (DELETED.* ones aside); (2) GET
 * FULLMAILBOX for each mailbox whose summary differs, to say which
 * records differ (count, UIDs, flags, modseqs, GUIDs); (3) with repair,
 * each differing mailbox is parked for the link with the reason and
 * retried at once, so the link sends it whole from the shadow (bodies
 * from the journal) through its usual repair.  Where the replica
 * changed records itself (an expunge, flags: a higher modseq there), a
 * whole APPLY MAILBOX would be refused, so the mailbox is removed on the
 * replica first (APPLY UNMAILBOX) -- only when the replica holds
 * nothing the master lacks and every body can be had: from the journal,
 * or, for those retention dropped, from another replica of the store
 * (--from, else one caught up), asked first with GET FULLMAILBOX
 * whether it holds each of them (same UID and GUID); the link then
 * fetches them from it (GET FETCH, link_fetch_from()).  Where none has
 * them, the report says that only the master can resend them.  Bodies a
 * mailbox sent whole lacks otherwise are fetched the same way by the
 * link itself.  A folder only on the
 * replica is removed only where the shadow holds the master's complete
 * list for the user (design invariant 9).
 *
 * Mailboxes no user owns (shared ones, which GET USER does not cover)
 * are asked for by name, up to SHARED_BATCH a question (GET MAILBOXES:
 * a sync_server leaves out of its answer a name it does not hold), and
 * compared and repaired as users' mailboxes are.  A shared mailbox whose
 * name the replica gives to another UNIQUEID is left alone: only the
 * master's own command removes a mailbox (invariant 9).
 *
 * Every question goes through the link (link_command(), by ask()), only
 * while it is caught up and idle, one at a time: replay goes first.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/dlist.h"
#include "protocol/dlist_parse.h"
#include "relay/ops/audit.h"
#include "relay/ops/audit_int.h"
#include "relay/replay/link.h"
#include "relay/store.h"
#include "storage/shadow.h"

#define TICK 0.02		/* seconds between looks for a quiet moment */
#define SOURCE_WAIT 5.0		/* for another replica to be caught up */
#define SHARED_BATCH 64		/* shared mailbox names a GET MAILBOXES */

static const char *const kind_names[] = { "differs", "missing",
	"only_on_replica", "not_audited", "user" };

struct audit;
struct run;
/* An answer to the audit's question in flight (untagged: its entries). */
typedef void answer_fn(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged);

struct audit {
	struct ev_loop *loop;
	char *store, *user, *from;
	bool repair, json;
	struct run *runs;
	size_t nruns, cur;
	ev_timer tick;
	ev_timer done_t;	/* calls done from a stack of its own */
	double deadline;
	bool in_flight, abandoned, finished;
	uint64_t asked_lsn;
	size_t asked;		/* the diff a FULLMAILBOX or UNMAILBOX is for,
				 * or the first shared name a MAILBOXES */
	size_t nasked;		/* shared names in that MAILBOXES */
	char op_key[32];	/* the user-state APPLY in flight */
	answer_fn *on_answer;	/* what the answer in flight is for */
	struct audit_rec *rec;	/* a FULLMAILBOX answer's records, merged
				 * with the shadow as they come */
	audit_done_fn done;
	void *arg;
};

/* ---- asking ------------------------------------------------------------ */

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void
done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct audit *a = w->data;

	(void)loop;
	(void)revents;
	if (a->done)
		a->done(a->arg, a);	/* which may free a */
}

/* Over: done is called next, from the loop (it may free the audit). */
static void
finish(struct audit *a)
{
	ev_timer_stop(a->loop, &a->tick);
	a->finished = true;
	ev_timer_start(a->loop, &a->done_t);
}

static struct link *
run_link(struct audit *a, struct run *r)
{
	struct store *st = store_by_name(a->store);
	size_t i;

	for (i = 0; st && i < st->nlinks; i++)
		if (strcmp(link_name(st->links[i]), r->replica) == 0)
			return st->links[i];
	return NULL;
}

/* May the replica be asked now, its answer comparable with the shadow? */
static bool
quiet(struct store *st, struct link *l)
{
	return link_caught_up(l) && !shadow_in_transaction(st->shadow);
}

/* Did the shadow stay as it was when the question went out? */
static bool
shadow_still(struct audit *a)
{
	struct store *st = store_by_name(a->store);

	return st && !shadow_in_transaction(st->shadow) &&
	    shadow_lsn(st->shadow) == a->asked_lsn;
}

/* Did the link lose its connection before the answer? */
static bool
lost(const char *verb, const struct dlist *untagged, const char *text)
{
	return strcmp(verb, "NO") == 0 && untagged == NULL &&
	    strncmp(text, "the connection to the replica was lost", 38) == 0;
}

/* Frees an answer; true if the audit was abandoned meanwhile (freed). */
static bool
answered(struct audit *a, struct dlist *untagged)
{
	struct audit *self = a;

	dlist_free(&untagged);
	audit_rec_free(&a->rec);
	a->in_flight = false;
	if (a->abandoned) {
		a->abandoned = false;
		audit_free(&self);
		return true;
	}
	/* The next question at once (from the loop, not this callback),
	 * not a tick later: the replica's answers and the rate limits pace
	 * the audit (a user a tick made an empty replica's refill wait
	 * TICK per user). */
	if (!a->finished) {
		ev_timer_stop(a->loop, &a->tick);
		ev_timer_set(&a->tick, 0, TICK);
		ev_timer_start(a->loop, &a->tick);
	}
	return false;
}

/* Every answer: to its handler, unless the audit was abandoned. */
static void
reply_cb(void *arg, const char *verb, const char *text,
    struct dlist *untagged)
{
	struct audit *a = arg;

	if (!a->abandoned)
		a->on_answer(a, &a->runs[a->cur], verb, text, untagged);
	answered(a, untagged);
}

/* Sends verb entry through l, its answer to fn: 0, or -EBUSY. */
static int
ask(struct audit *a, struct link *l, const char *verb,
    const struct dlist *entry, answer_fn *fn)
{
	int rc = link_command(l, verb, entry, reply_cb, a);

	if (rc == 0) {
		a->on_answer = fn;
		a->in_flight = true;
	}
	return rc;
}

/*
 * Sends GET FULLMAILBOX for d's mailbox through l, its records compared
 * with the shadow as they arrive (lacking: see audit_rec_new()), its
 * answer to fn: 0, or -EBUSY.
 */
static int
ask_full(struct audit *a, struct link *l, const struct diff *d,
    bool lacking, answer_fn *fn)
{
	struct store *st = store_by_name(a->store);
	struct dlist_record_hook hook = { "RECORD", audit_rec_record, NULL };
	struct dlist *get;
	int rc;

	if (st == NULL)
		return -ENOENT;
	a->rec = audit_rec_new(st->shadow, d->uniqueid, lacking);
	hook.arg = a->rec;
	get = dlist_new_atom("FULLMAILBOX", d->name, strlen(d->name));
	rc = link_command_records(l, "GET", get, &hook, reply_cb, a);
	dlist_free(&get);
	if (rc == 0) {
		a->on_answer = fn;
		a->in_flight = true;
	} else {
		audit_rec_free(&a->rec);
	}
	return rc;
}

static void
user_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	if (lost(verb, untagged, text)) {
		/* Asked again once the link is back (or the deadline). */
	} else if (strcmp(verb, "OK") != 0) {
		free(r->error);
		r->error = xasprintf("GET USER %s: %s %s",
		    r->users[r->next_user], verb, text);
		r->phase = 3;
	} else if (shadow_still(a)) {
		audit_compare_user(store_by_name(a->store)->shadow, r,
		    r->users[r->next_user], untagged);
		r->lsn = a->asked_lsn;
		r->next_user++;
	}
	/* Else the shadow moved: the same question at the next quiet. */
}

static void
shared_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	struct shadow *sh;
	size_t i;

	if (lost(verb, untagged, text)) {
		/* Asked again once the link is back (or the deadline). */
	} else if (strcmp(verb, "OK") != 0) {
		free(r->error);
		r->error = xasprintf("GET MAILBOXES (%s ...): %s %s",
		    r->shared_names[a->asked], verb, text);
		r->phase = 3;
	} else if (shadow_still(a)) {
		sh = store_by_name(a->store)->shadow;
		for (i = a->asked; i < a->asked + a->nasked; i++) {
			struct shadow_mailbox mb;
			struct diff *d;

			/* Gone since the audit started: nothing to compare. */
			if (shadow_mailbox_by_name(sh, r->shared_names[i],
			    &mb) < 0)
				continue;
			d = audit_compare_mailbox(sh, r, &mb, "", untagged);
			if (d)
				d->shared = true;
			r->shared++;
			shadow_mailbox_free(&mb);
		}
		r->lsn = a->asked_lsn;
		r->next_shared = a->asked + a->nasked;
	}
}

static void
full_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	if (lost(verb, untagged, text)) {
		/* Asked again once the link is back (or the deadline). */
	} else if (strcmp(verb, "OK") != 0) {
		audit_diff_note(&r->d[a->asked], "GET FULLMAILBOX: %s %s", verb, text);
		r->d[a->asked].records = false;
		r->next_full = a->asked + 1;
	} else if (shadow_still(a)) {
		audit_rec_finish(a->rec, &r->d[a->asked], untagged);
		r->next_full = a->asked + 1;
	}
}

static void
unmailbox_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	struct diff *d = &r->d[a->asked];
	struct link *l;

	free(d->repair);
	if (strcmp(verb, "OK") != 0) {
		d->repair = xasprintf("not repaired: APPLY UNMAILBOX: %s %s",
		    verb, text);
	} else if (d->kind == DK_ONLY_REPLICA) {
		d->repair = xasprintf("removed from the replica (the master's "
		    "complete list for %s lacks it)", d->user);
	} else {
		d->repair = d->src ? xasprintf("replaced: removed on the "
		    "replica, then sent whole from the shadow (bodies from the "
		    "journal and, where retention dropped them, from %s%s%s)",
		    d->src, d->src_why ? "; " : "", d->src_why ?
		    d->src_why : "") : xstrdup("replaced: removed on the "
		    "replica, then sent whole from the shadow (bodies from the "
		    "journal)");
	}
	/* The parked entry (made before the UNMAILBOX) is due now; after a
	 * refusal or a lost connection its own backoff brings it. */
	if (strcmp(verb, "OK") == 0 && (l = run_link(a, r)) != NULL)
		link_retry_parked(l);
}

static void
rename_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	struct diff *d = &r->d[a->asked];
	struct link *l;

	if (strcmp(verb, "OK") != 0) {
		d->repair = xasprintf("not repaired: APPLY RENAME %s back to "
		    "%s: %s %s (it stays parked: see status)", d->rname,
		    d->name, verb, text);
		if (!lost(verb, untagged, text) && (l = run_link(a, r)) != NULL)
			link_retry_parked(l);
		r->next_repair++;
	} else {
		d->stage = 1;	/* now removed under its own name */
	}
}

static void
userop_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	struct diff *d = &r->d[a->asked];

	if (strcmp(verb, "OK") != 0 && d->repair == NULL)
		d->repair = xasprintf("not repaired: APPLY %s: %s %s",
		    a->op_key, verb, text);
}

/* Sends the user's next APPLY (SUB, UNSUB, QUOTA, SEEN); true when none
 * is left (d->repair then says what was done). */
static bool
repair_user_state(struct audit *a, struct run *r, struct link *l, size_t i)
{
	struct diff *d = &r->d[i];
	struct dlist *op;

	if (d->ops && d->ops->head && d->repair == NULL) {
		if (!link_caught_up(l))
			return false;
		op = dlist_pop_first(d->ops);
		snprintf(a->op_key, sizeof(a->op_key), "%s", op->key ?
		    op->key : "?");
		a->asked = i;
		if (ask(a, l, "APPLY", op, userop_reply) < 0)
			d->repair = xstrdup("not repaired: the link was busy");
		dlist_free(&op);
		return false;
	}
	if (d->repair == NULL && d->left.len)
		d->repair = xasprintf("sent from the shadow; left alone (the "
		    "relay has no complete list from the master for %s): %s",
		    d->user, buf_cstring(&d->left));
	else if (d->repair == NULL)
		d->repair = xstrdup("sent from the shadow");
	return true;
}

/* Marks what was not asked before the deadline as not audited. */
static void
give_up_asking(struct audit *a, struct run *r, struct link *l)
{
	struct store *st = store_by_name(a->store);
	uint64_t head = st ? journal_durable_lsn(st->journal) : 0;
	size_t i;

	for (; r->next_user < r->nusers; r->next_user++) {
		struct diff *d = audit_diff_add(r, DK_NOT_AUDITED, "",
		    "", r->users[r->next_user]);

		audit_diff_note(d, "user %s not audited: the replica was not caught "
		    "up (acknowledged LSN %llu, head %llu) at any moment "
		    "before the deadline", r->users[r->next_user],
		    (unsigned long long)(l ? link_acked(l) : 0),
		    (unsigned long long)head);
	}
	for (; r->next_shared < r->nshared; r->next_shared++) {
		struct diff *d = audit_diff_add(r, DK_NOT_AUDITED,
		    r->shared_names[r->next_shared], "", "");

		d->shared = true;
		r->shared_not_audited++;
		audit_diff_note(d, "shared mailbox %s not audited: the replica "
		    "was not caught up at any moment before the deadline",
		    d->name);
	}
	for (i = r->next_full; i < r->nd; i++)
		if (r->d[i].records) {
			r->d[i].records = false;
			audit_diff_note(&r->d[i], "records not compared (the replica "
			    "was busy)");
		}
	r->next_full = r->nd;
}

/* Adds why another replica cannot give d's bodies ("; " between). */
static void
src_note(struct diff *d, const char *why)
{
	char *n = d->src_why ? xasprintf("%s; %s", d->src_why, why) :
	    xstrdup(why);

	free(d->src_why);
	d->src_why = n;
}

/* Was the replica name asked for d's bodies already? */
static bool
src_tried(const struct diff *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->ntried; i++)
		if (strcmp(d->tried[i], name) == 0)
			return true;
	return false;
}

static void
src_try(struct diff *d, const char *name)
{
	d->tried = xreallocarray(d->tried, d->ntried + 1, sizeof(*d->tried));
	d->tried[d->ntried++] = xstrdup(name);
}

/*
 * The next other replica to ask for d's bodies, each once: --from first,
 * then each other replica of the store caught up now (NULL: none left;
 * *waiting if one not caught up now may be later).
 */
static struct link *
source_link(struct audit *a, struct run *r, struct diff *d, bool *waiting)
{
	struct store *st = store_by_name(a->store);
	size_t i;

	*waiting = false;
	for (i = 0; a->from && st && i < st->nlinks; i++)
		if (st->links[i] && strcmp(link_name(st->links[i]),
		    r->replica) != 0 && strcmp(link_name(st->links[i]),
		    a->from) == 0 && !src_tried(d, a->from))
			return st->links[i];
	if (a->from && !src_tried(d, a->from)) {
		char *why = xasprintf("the store has no other replica called "
		    "%s", a->from);

		src_note(d, why);
		free(why);
		src_try(d, a->from);
	}
	for (i = 0; st && i < st->nlinks; i++) {
		struct link *o = st->links[i];

		if (o == NULL || strcmp(link_name(o), r->replica) == 0 ||
		    src_tried(d, link_name(o)))
			continue;
		if (link_caught_up(o))
			return o;
		*waiting = true;
	}
	return NULL;
}

static void
source_reply(struct audit *a, struct run *r, const char *verb,
    const char *text, const struct dlist *untagged)
{
	struct diff *d = &r->d[a->asked];
	char *why;
	unsigned n;

	if (lost(verb, untagged, text)) {
		/* Asked again. */
		free(d->tried[--d->ntried]);
		why = NULL;
	} else if (strcmp(verb, "OK") != 0) {
		why = xasprintf("%s answered GET FULLMAILBOX with %s %s",
		    d->src, verb, text);
	} else if ((n = audit_rec_lacking(a->rec, untagged)) != 0) {
		why = n == UINT32_MAX ? xasprintf("%s lacks the mailbox",
		    d->src) : xasprintf("%s lacks %u of them", d->src, n);
	} else {
		return;	/* d->src has them all */
	}
	if (why)
		src_note(d, why);
	free(why);
	/* The next replica, if any is left, is asked. */
	free(d->src);
	d->src = NULL;
	d->src_asked = false;
}

/*
 * For a replacement whose bodies retention dropped: asks the other
 * replicas in turn (--from first) whether one holds them all.  True
 * when that is known (d->src names it, d->src_why says why the others
 * do not), false while asking.
 */
static bool
check_source(struct audit *a, struct run *r, size_t i)
{
	struct diff *d = &r->d[i];
	struct link *o;
	bool waiting;

	if (d->src_asked)
		return !a->in_flight;
	if (a->in_flight)
		return false;
	if (d->src_since == 0)
		d->src_since = ev_now(a->loop);
	o = source_link(a, r, d, &waiting);
	/* Another replica busy this moment is waited for a little. */
	if (o == NULL && waiting &&
	    ev_now(a->loop) - d->src_since < SOURCE_WAIT &&
	    ev_now(a->loop) < a->deadline)
		return false;
	if (o == NULL) {
		if (waiting)
			src_note(d, "no other replica of the store is caught "
			    "up to give them");
		else if (d->src_why == NULL)
			src_note(d, "the store has no other replica");
		d->src_asked = true;
		return true;
	}
	if (!link_may_ask(o))
		return false;
	a->asked = i;
	if (ask_full(a, o, d, true, source_reply) == 0) {
		d->src_asked = true;
		free(d->src);
		d->src = xstrdup(link_name(o));
		src_try(d, d->src);
	}
	return false;
}

/* How to resync d's mailbox from the master, for the report. */
static void
resync_hint(const struct diff *d, char *out, size_t len)
{
	if (d->shared)
		snprintf(out, len, "sync_client -m %s", d->name);
	else
		snprintf(out, len, "sync_client -u %s", d->user);
}

/* The repair of diff d, or false if it needs the link idle (later). */
static bool
repair_one(struct audit *a, struct run *r, struct link *l, size_t i)
{
	struct store *st = store_by_name(a->store);
	struct diff *d = &r->d[i];
	struct dlist *op;
	char why[768], hint[320];

	if (d->kind == DK_NOT_AUDITED)
		return true;
	if (d->shared && d->taken) {
		d->repair = xstrdup("left alone: the replica holds another "
		    "mailbox under this name, and the relay never removes what "
		    "the master did not remove; remove it on the replica (or "
		    "rename it), then audit again");
		return true;
	}
	resync_hint(d, hint, sizeof(hint));
	if (d->kind == DK_USER)
		return repair_user_state(a, r, l, i);
	if (d->kind == DK_ONLY_REPLICA) {
		if (!shadow_user_is_complete(st->shadow, d->user)) {
			d->repair = xasprintf("left alone: the relay has no "
			    "complete list from the master for %s (a rolling "
			    "master sends only what changed), so nothing proves "
			    "the master lacks it; a sync_client -u %s through "
			    "the relay gives it one", d->user, d->user);
			return true;
		}
		op = dlist_new_atom("UNMAILBOX", d->name, strlen(d->name));
		a->asked = i;
		if (ask(a, l, "APPLY", op, unmailbox_reply) < 0) {
			dlist_free(&op);
			return false;
		}
		dlist_free(&op);
		return true;
	}
	if (link_is_parked(l, d->uniqueid) && !d->replace) {
		/* Refused before: its own retries go on (status). */
		d->repair = xstrdup("parked already for the replica: retried "
		    "with its backoff (see status)");
		return true;
	}
	if (d->more) {
		d->repair = xasprintf("not repaired: the replica holds mail the "
		    "master lacks; resync it from the master (%s straight to "
		    "the replica), then audit again", hint);
		return true;
	}
	if (d->replace && d->nobody && d->stage == 0) {
		if (!check_source(a, r, i))
			return false;
		if (d->src == NULL) {
			d->repair = xasprintf("not repaired: the replica "
			    "changed it itself, so it must be replaced whole, "
			    "and retention dropped %u of its bodies from the "
			    "journal; no other replica has them all (%s): only "
			    "the master can resend them (%s)",
			    d->nobody, d->src_why ? d->src_why : "?", hint);
			return true;
		}
		link_fetch_from(l, d->src);
	} else if (a->from) {
		link_fetch_from(l, a->from);
	}
	snprintf(why, sizeof(why), "audit: %s", buf_cstring(&d->what));
	if (!d->replace) {
		if (link_resend_mailbox(l, d->uniqueid, d->name, why, true))
			d->repair = xstrdup("sent whole from the shadow (bodies "
			    "from the journal; see status)");
		else
			d->repair = xstrdup("not repaired: it could not be "
			    "parked (see the log)");
		return true;
	}
	/*
	 * Parked first (durable), due later: a crash after the UNMAILBOX
	 * still sends it whole on restart.  A copy deleted on the replica
	 * is renamed back first: the replica remembers a removed
	 * mailbox's UNIQUEID under its last name, and takes it again only
	 * there.
	 */
	if (!link_caught_up(l))
		return false;
	if (d->rname && d->stage == 0) {
		struct shadow_mailbox mb;

		if (shadow_mailbox_by_uniqueid(st->shadow, d->uniqueid,
		    &mb) < 0) {
			d->repair = xstrdup("not repaired: gone from the shadow "
			    "meanwhile");
			return true;
		}
		if (!link_resend_mailbox(l, d->uniqueid, d->name, why,
		    false)) {
			d->repair = xstrdup("not repaired: it could not be "
			    "parked (see the log)");
			shadow_mailbox_free(&mb);
			return true;
		}
		op = dlist_new_kvlist("RENAME");
		dlist_add_atom(op, "OLDMBOXNAME", d->rname);
		dlist_add_atom(op, "NEWMBOXNAME", d->name);
		dlist_add_atom(op, "PARTITION", mb.partition ? mb.partition :
		    "default");
		dlist_add_num(op, "UIDVALIDITY", mb.uidvalidity);
		shadow_mailbox_free(&mb);
		a->asked = i;
		ask(a, l, "APPLY", op, rename_reply);
		dlist_free(&op);
		return false;	/* this diff again, once renamed */
	}
	op = dlist_new_atom("UNMAILBOX", d->name, strlen(d->name));
	if (d->stage == 0 &&
	    !link_resend_mailbox(l, d->uniqueid, d->name, why, false)) {
		d->repair = xstrdup("not repaired: it could not be parked "
		    "(see the log)");
		dlist_free(&op);
		return true;
	}
	a->asked = i;
	if (ask(a, l, "APPLY", op, unmailbox_reply) < 0)
		link_retry_parked(l);	/* resent as is; refusals park */
	dlist_free(&op);
	return true;
}

static void
step(struct audit *a)
{
	struct store *st = store_by_name(a->store);
	struct run *r;
	struct link *l;
	struct dlist *get = NULL;
	bool late = ev_now(a->loop) > a->deadline;

	if (a->cur >= a->nruns) {
		finish(a);
		return;
	}
	r = &a->runs[a->cur];
	if (st == NULL || (l = run_link(a, r)) == NULL) {
		r->error = st ? xasprintf("replica %s is gone", r->replica) :
		    xasprintf("store %s is gone", a->store);
		a->cur++;
		return;
	}
	if (r->phase == 0 && r->next_user >= r->nusers &&
	    r->next_shared >= r->nshared)
		r->phase = 1;
	if (r->phase == 1) {
		while (r->next_full < r->nd && !r->d[r->next_full].records)
			r->next_full++;
		if (r->next_full >= r->nd)
			r->phase = a->repair ? 2 : 3;
	}
	if (r->phase == 2 && r->next_repair >= r->nd)
		r->phase = 3;
	if (r->phase == 3) {
		size_t j, ndiff = 0;
		bool whole = r->error == NULL;

		for (j = 0; j < r->nd; j++)
			if (r->d[j].kind != DK_NOT_AUDITED)
				ndiff++;
			else
				whole = false;
		if (whole)
			link_note_audit(l, ndiff);
		log_info("store=%s replica=%s event=audit mailboxes=%zu "
		    "differ=%zu lsn=%llu", a->store, r->replica, r->mailboxes,
		    r->nd, (unsigned long long)r->lsn);
		a->cur++;
		return;
	}
	if (r->phase == 2) {
		if (repair_one(a, r, l, r->next_repair))
			r->next_repair++;
		else if (late && !a->in_flight) {
			r->d[r->next_repair].repair = xstrdup("not repaired: "
			    "the link was never idle before the deadline");
			r->next_repair++;
		}
		return;
	}
	if (!quiet(st, l)) {
		if (late)
			give_up_asking(a, r, l);
		return;
	}
	if (!link_may_ask(l))
		return;		/* over a rate limit: paced like replay */
	a->asked_lsn = shadow_lsn(st->shadow);
	if (r->phase == 0 && r->next_user < r->nusers) {
		const char *u = r->users[r->next_user];

		get = dlist_new_atom("USER", u, strlen(u));
		ask(a, l, "GET", get, user_reply);
	} else if (r->phase == 0) {
		size_t i;

		get = dlist_new_list("MAILBOXES");
		a->asked = r->next_shared;
		for (i = r->next_shared; i < r->nshared &&
		    i - r->next_shared < SHARED_BATCH; i++)
			dlist_add_atom(get, NULL, r->shared_names[i]);
		a->nasked = i - r->next_shared;
		ask(a, l, "GET", get, shared_reply);
	} else {
		a->asked = r->next_full;
		ask_full(a, l, &r->d[r->next_full], false, full_reply);
	}
	dlist_free(&get);
}

/* Writes what this tick parked (a refill parks many mailboxes a tick). */
static void
flush_parked(struct audit *a)
{
	struct store *st = store_by_name(a->store);
	size_t i;

	for (i = 0; st && i < st->nlinks; i++)
		if (st->links[i])
			link_flush_parked(st->links[i]);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct audit *a = w->data;
	size_t guard;

	(void)loop;
	(void)revents;
	/* Several steps a tick when nothing needs the replica. */
	for (guard = 0; guard < 64 && !a->in_flight && !a->finished; guard++) {
		size_t cur = a->cur;
		int phase = cur < a->nruns ? a->runs[cur].phase : -1;
		size_t nu = cur < a->nruns ? a->runs[cur].next_user : 0;
		size_t nr = cur < a->nruns ? a->runs[cur].next_repair : 0;

		step(a);
		if (a->finished || a->in_flight || (a->cur == cur &&
		    cur < a->nruns && a->runs[cur].phase == phase &&
		    a->runs[cur].next_user == nu &&
		    a->runs[cur].next_repair == nr))
			break;
	}
	flush_parked(a);
}

/* ---- life cycle ---------------------------------------------------------- */

/* A mailbox no user owns: asked for by name (GET USER does not cover it). */
static int
add_shared(void *arg, const char *name)
{
	struct run *r = arg;

	r->shared_names = xreallocarray(r->shared_names, r->nshared + 1,
	    sizeof(*r->shared_names));
	r->shared_names[r->nshared++] = xstrdup(name);
	return 0;
}

static int
add_user(void *arg, const char *userid)
{
	struct run *r = arg;

	r->users = xreallocarray(r->users, r->nusers + 1, sizeof(*r->users));
	r->users[r->nusers++] = xstrdup(userid);
	return 0;
}

struct audit *
audit_start(struct ev_loop *loop, const struct audit_opts *o,
    audit_done_fn done, void *arg, char *err, size_t err_len)
{
	struct store *st = store_by_name(o->store);
	struct audit *a;
	size_t i;

	if (st == NULL) {
		snprintf(err, err_len, "no store called %s", o->store);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->store = xstrdup(o->store);
	a->user = o->user ? xstrdup(o->user) : NULL;
	a->repair = o->repair;
	a->from = o->from ? xstrdup(o->from) : NULL;
	a->json = o->json;
	a->done = done;
	a->arg = arg;
	a->deadline = ev_now(loop) + o->timeout;
	for (i = 0; i < st->nlinks; i++) {
		struct run *r;

		if (o->replica && strcmp(o->replica, link_name(st->links[i])))
			continue;
		a->runs = xreallocarray(a->runs, a->nruns + 1,
		    sizeof(*a->runs));
		r = &a->runs[a->nruns++];
		memset(r, 0, sizeof(*r));
		r->replica = xstrdup(link_name(st->links[i]));
		if (o->user)
			add_user(r, o->user);
		else {
			shadow_owner_each(st->shadow, add_user, r);
			shadow_shared_each(st->shadow, add_shared, r);
		}
	}
	if (a->nruns == 0) {
		snprintf(err, err_len, "store %s has no replica called %s",
		    o->store, o->replica ? o->replica : "(none)");
		audit_free(&a);
		return NULL;
	}
	ev_timer_init(&a->tick, tick_cb, 0, TICK);
	a->tick.data = a;
	ev_timer_init(&a->done_t, done_cb, 0, 0);
	a->done_t.data = a;
	ev_timer_start(loop, &a->tick);
	return a;
}

int
audit_report(const struct audit *a, struct buf *out)
{
	int status = 0;
	size_t i, j;

	if (a->json)
		buf_puts(out, "{\"audits\":[");
	for (i = 0; i < a->nruns; i++) {
		const struct run *r = &a->runs[i];
		size_t ndiff = 0;

		for (j = 0; j < r->nd; j++) {
			if (r->d[j].kind == DK_NOT_AUDITED) {
				if (status == 0)
					status = 2;
			} else {
				ndiff++;
				status = 1;
			}
		}
		if (r->error && status != 1)
			status = 2;
		if (a->json) {
			buf_printf(out, "%s{\"store\":", i ? "," : "");
			buf_put_json_str(out, a->store);
			buf_puts(out, ",\"replica\":");
			buf_put_json_str(out, r->replica);
			buf_printf(out, ",\"lsn\":%llu,\"users\":%zu,"
			    "\"mailboxes\":%zu,\"shared\":%zu,"
			    "\"shared_not_audited\":%zu,"
			    "\"differ\":%zu,\"error\":",
			    (unsigned long long)r->lsn, r->nusers,
			    r->mailboxes, r->shared, r->shared_not_audited,
			    ndiff);
			if (r->error)
				buf_put_json_str(out, r->error);
			else
				buf_puts(out, "null");
			buf_puts(out, ",\"mailboxes_differing\":[");
			for (j = 0; j < r->nd; j++) {
				const struct diff *d = &r->d[j];

				buf_printf(out, "%s{\"kind\":\"%s\",\"mailbox\":",
				    j ? "," : "", kind_names[d->kind]);
				buf_put_json_str(out, d->name);
				buf_puts(out, ",\"uniqueid\":");
				buf_put_json_str(out, d->uniqueid);
				buf_puts(out, ",\"user\":");
				buf_put_json_str(out, d->user);
				buf_puts(out, ",\"what\":");
				buf_put_json_str(out, buf_cstring(&d->what));
				buf_puts(out, ",\"repair\":");
				if (d->repair)
					buf_put_json_str(out, d->repair);
				else
					buf_puts(out, "null");
				buf_putc(out, '}');
			}
			buf_puts(out, "]}");
			continue;
		}
		buf_printf(out, "store %s replica %s: %zu mailbox%s of %zu "
		    "user%s", a->store, r->replica, r->mailboxes,
		    r->mailboxes == 1 ? "" : "es", r->nusers,
		    r->nusers == 1 ? "" : "s");
		if (r->shared)
			buf_printf(out, " and %zu shared", r->shared);
		buf_printf(out, " compared at LSN %llu: %s\n",
		    (unsigned long long)r->lsn, ndiff ? "some differ" :
		    "none differ");
		if (r->error)
			buf_printf(out, "!store %s replica %s: %s\n", a->store,
			    r->replica, r->error);
		for (j = 0; j < r->nd; j++) {
			const struct diff *d = &r->d[j];

			if (d->kind == DK_NOT_AUDITED)
				buf_printf(out, "  not audited: %s\n",
				    buf_cstring(&d->what));
			else
				buf_printf(out, "  %s %s: %s\n",
				    kind_names[d->kind], d->name,
				    buf_cstring(&d->what));
			if (d->repair)
				buf_printf(out, "    repair: %s\n", d->repair);
		}
	}
	if (a->json)
		buf_puts(out, "]}\n");
	return status;
}

void
audit_free(struct audit **ap)
{
	struct audit *a = *ap;
	size_t i, j;

	if (a == NULL)
		return;
	*ap = NULL;
	ev_timer_stop(a->loop, &a->tick);
	ev_timer_stop(a->loop, &a->done_t);
	if (a->in_flight) {
		/* The link calls back once: free then (answered()). */
		a->abandoned = true;
		a->done = NULL;
		return;
	}
	for (i = 0; i < a->nruns; i++) {
		struct run *r = &a->runs[i];

		for (j = 0; j < r->nd; j++) {
			free(r->d[j].name);
			free(r->d[j].uniqueid);
			free(r->d[j].user);
			free(r->d[j].repair);
			free(r->d[j].rname);
			free(r->d[j].src);
			free(r->d[j].src_why);
			while (r->d[j].ntried > 0)
				free(r->d[j].tried[--r->d[j].ntried]);
			free(r->d[j].tried);
			dlist_free(&r->d[j].ops);
			buf_free(&r->d[j].left);
			buf_free(&r->d[j].what);
		}
		for (j = 0; j < r->nusers; j++)
			free(r->users[j]);
		free(r->users);
		for (j = 0; j < r->nshared; j++)
			free(r->shared_names[j]);
		free(r->shared_names);
		free(r->d);
		free(r->replica);
		free(r->error);
	}
	free(a->runs);
	free(a->store);
	free(a->user);
	free(a->from);
	free(a);
}

bool
audit_finished(const struct audit *a)
{
	return a->finished;
}

const char *
audit_unrepaired(const struct audit *a, char *why, size_t len)
{
	const struct diff *first = NULL;
	const char *what = NULL;
	size_t i, j, n = 0;

	for (i = 0; i < a->nruns; i++) {
		const struct run *r = &a->runs[i];

		if (r->error) {
			snprintf(why, len, "the check failed: %s", r->error);
			return why;
		}
		for (j = 0; j < r->nd; j++) {
			const struct diff *d = &r->d[j];

			if (d->kind == DK_NOT_AUDITED) {
				what = "not audited";
			} else if (d->repair == NULL ||
			    strncmp(d->repair, "not repaired", 12) == 0) {
				what = d->repair ? d->repair : "not repaired";
			} else {
				continue;
			}
			if (n++ == 0)
				first = d;
		}
	}
	if (n == 0)
		return NULL;
	if (first->kind == DK_NOT_AUDITED)
		snprintf(why, len, "%zu mailbox%s or user%s not repaired, e.g. "
		    "%s", n, n == 1 ? "" : "es", n == 1 ? "" : "s",
		    buf_cstring(&first->what));
	else
		snprintf(why, len, "%zu mailbox%s not repaired, e.g. %s: %s", n,
		    n == 1 ? "" : "es", first->name, first->repair ?
		    first->repair : what);
	return why;
}
