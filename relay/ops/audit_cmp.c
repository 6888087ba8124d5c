/*
 * audit_cmp.c -- a replica's answers compared with the shadow, for an
 * audit (audit.c asks, this compares; see audit_int.h).
 *
 * A mailbox is found on the replica by UNIQUEID (a name taken by
 * another UNIQUEID, a copy deleted there as DELETED.*, another name
 * are each said so); its summary is compared (UIDVALIDITY, LAST_UID,
 * HIGHESTMODSEQ, SYNC_CRC, SYNC_CRC_ANNOT), and where it differs its
 * records (audit_rec.c: a GET FULLMAILBOX answer merged with the shadow
 * as it arrives).
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "protocol/dlist.h"
#include "protocol/dlist_print.h"
#include "relay/getcmd.h"
#include "relay/ops/audit_int.h"
#include "storage/shadow.h"

#define MAX_NOTES 6		/* record differences spelled out */

void
audit_diff_note(struct diff *d, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (d->what.len)
		buf_puts(&d->what, "; ");
	buf_puts(&d->what, tmp);
}

struct diff *
audit_diff_add(struct run *r, enum diff_kind kind, const char *name,
    const char *uniqueid, const char *user)
{
	struct diff *d;

	r->d = xreallocarray(r->d, r->nd + 1, sizeof(*r->d));
	d = &r->d[r->nd++];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->name = xstrdup(name ? name : "");
	d->uniqueid = xstrdup(uniqueid ? uniqueid : "");
	d->user = xstrdup(user ? user : "");
	return d;
}

static bool
is_deleted_name(const char *name)
{
	const char *bang = strchr(name, '!');

	return strncmp(bang ? bang + 1 : name, "DELETED.", 8) == 0;
}

/* The replica's MAILBOX entry with key = v, or NULL. */
static const struct dlist *
replica_mailbox(const struct dlist *list, const char *key, const char *v)
{
	const struct dlist *e;
	const char *x;

	for (e = list ? list->head : NULL; e; e = e->next)
		if (strcmp(e->key ? e->key : "", "MAILBOX") == 0 &&
		    dlist_get_str(e, key, &x) == 0 && x && strcmp(x, v) == 0)
			return e;
	return NULL;
}

/* ---- phase 1: summaries ------------------------------------------------ */

struct mb_cmp {
	struct run *r;
	const struct shadow_mailbox *mb;
	const char *user;
	struct diff *d;		/* created at the first difference */
};

static void
cmp_num(struct mb_cmp *c, const struct dlist *rmb, const char *key,
    const char *label, uint64_t want, bool hex)
{
	uint64_t got = 0;

	if (dlist_get_num(rmb, key, &got) == 0 && got == want)
		return;
	if (c->d == NULL)
		c->d = audit_diff_add(c->r, DK_DIFFERS, c->mb->name,
		    c->mb->uniqueid, c->user);
	if (hex)
		audit_diff_note(c->d, "%s %08llx on the replica, %08llx in the "
		    "shadow", label, (unsigned long long)got,
		    (unsigned long long)want);
	else
		audit_diff_note(c->d, "%s %llu on the replica, %llu in the "
		    "shadow", label, (unsigned long long)got,
		    (unsigned long long)want);
	c->d->records = true;
}

static int
nobody_one(void *arg, const struct shadow_record *m)
{
	struct shadow_body b;
	void **p = arg;

	if (!m->expunged && shadow_body_get(p[0], m->guid, &b) < 0)
		(*(unsigned *)p[1])++;
	return 0;
}

/* How many live messages of the mailbox have no body in the journal. */
static unsigned
count_nobody(struct shadow *sh, const char *uniqueid)
{
	unsigned n = 0;
	void *p[2] = { sh, &n };

	shadow_record_each(sh, uniqueid, 1, nobody_one, p);
	return n;
}

struct diff *
audit_compare_mailbox(struct shadow *sh, struct run *r,
    const struct shadow_mailbox *mb, const char *user,
    const struct dlist *rmbs)
{
	const struct dlist *rmb = replica_mailbox(rmbs, "UNIQUEID",
	    mb->uniqueid);
	const char *rname = NULL, *ouid = NULL;
	struct mb_cmp c = { r, mb, user, NULL };
	struct diff *d;

	r->mailboxes++;
	if (rmb == NULL) {
		const struct dlist *o = replica_mailbox(rmbs, "MBOXNAME",
		    mb->name);

		d = audit_diff_add(r, DK_MISSING, mb->name, mb->uniqueid, user);
		if (o && dlist_get_str(o, "UNIQUEID", &ouid) == 0 && ouid) {
			d->taken = true;
			audit_diff_note(d, "the replica holds another mailbox "
			    "under this name (UNIQUEID %s, the master's is %s)",
			    ouid, mb->uniqueid);
		} else {
			audit_diff_note(d, "missing on the replica");
		}
		return d;
	}
	dlist_get_str(rmb, "MBOXNAME", &rname);
	if (rname && is_deleted_name(rname)) {
		uint64_t r_hms = 0;

		d = audit_diff_add(r, DK_MISSING, mb->name, mb->uniqueid, user);
		audit_diff_note(d, "deleted on the replica (kept there as %s)",
		    rname);
		/* Deleting bumped its modseq there: renamed back, it would be
		 * refused as changed; it is replaced instead. */
		if (dlist_get_num(rmb, "HIGHESTMODSEQ", &r_hms) == 0 &&
		    r_hms > mb->highestmodseq) {
			d->replace = true;
			d->rname = xstrdup(rname);
			d->nobody = count_nobody(sh, mb->uniqueid);
		}
		return d;
	}
	if (rname == NULL || strcmp(rname, mb->name) != 0) {
		d = audit_diff_add(r, DK_DIFFERS, mb->name, mb->uniqueid, user);
		audit_diff_note(d, "named %s on the replica", rname ? rname :
		    "?");
		return d;
	}
	cmp_num(&c, rmb, "UIDVALIDITY", "uidvalidity", mb->uidvalidity, false);
	cmp_num(&c, rmb, "LAST_UID", "last uid", mb->last_uid, false);
	cmp_num(&c, rmb, "HIGHESTMODSEQ", "highestmodseq", mb->highestmodseq,
	    false);
	cmp_num(&c, rmb, "SYNC_CRC", "sync crc", mb->sync_crc, true);
	cmp_num(&c, rmb, "SYNC_CRC_ANNOT", "annotation crc",
	    mb->sync_crc_annot, true);
	return c.d;
}

struct user_cmp {
	struct shadow *sh;
	struct run *r;
	const struct dlist *rmbs;
	const char *user;
};

static int
user_cmp_mailbox(void *arg, const struct shadow_mailbox *mb)
{
	struct user_cmp *u = arg;

	audit_compare_mailbox(u->sh, u->r, mb, u->user, u->rmbs);
	return 0;
}

/* ---- the user's own state: subscriptions, quota, seen ------------------ */

struct user_state {
	struct shadow *sh;
	struct run *r;
	const char *user;
	const struct dlist *rmbs;
	struct diff *d;		/* created at the first difference */
	struct dlist *roots;	/* quota roots of the user's mailboxes */
};

static struct diff *
user_diff(struct user_state *us)
{
	if (us->d == NULL) {
		us->d = audit_diff_add(us->r, DK_USER, us->user, "", us->user);
		us->d->ops = dlist_new_list(NULL);
	}
	return us->d;
}

/* The replica's untagged entry key with field = v (or the first one if
 * field is NULL), or NULL. */
static const struct dlist *
replica_entry(const struct dlist *list, const char *key, const char *field,
    const char *v)
{
	const struct dlist *e;
	const char *x;

	for (e = list ? list->head : NULL; e; e = e->next)
		if (strcmp(e->key ? e->key : "", key) == 0 && (field == NULL ||
		    (dlist_get_str(e, field, &x) == 0 && x && strcmp(x, v) == 0)))
			return e;
	return NULL;
}

static bool
in_list(const struct dlist *list, const char *v)
{
	const struct dlist *e;
	const char *s;
	size_t n;

	for (e = list ? list->head : NULL; e; e = e->next)
		if (dlist_str(e, &s, &n) == 0 && s && strlen(v) == n &&
		    memcmp(s, v, n) == 0)
			return true;
	return false;
}

static int
sub_cmp(void *arg, const char *name)
{
	struct user_state *us = arg;
	struct dlist *op;

	if (in_list(replica_entry(us->rmbs, "LSUB", NULL, NULL), name))
		return 0;
	audit_diff_note(user_diff(us), "subscription %s missing on the "
	    "replica", name);
	op = dlist_add_kvlist(us->d->ops, "SUB");
	dlist_add_atom(op, "USERID", us->user);
	dlist_add_atom(op, "MBOXNAME", name);
	return 0;
}

static int
sub_is(void *arg, const char *name)
{
	return strcmp(arg, name) == 0;
}

static void
subs_only_on_replica(struct user_state *us)
{
	const struct dlist *lsub = replica_entry(us->rmbs, "LSUB", NULL, NULL);
	const struct dlist *e;
	bool complete = shadow_user_is_complete(us->sh, us->user);

	for (e = lsub ? lsub->head : NULL; e; e = e->next) {
		const char *s = NULL;
		size_t n;
		char *name;
		struct dlist *op;

		if (dlist_str(e, &s, &n) < 0 || s == NULL)
			continue;
		name = xasprintf("%.*s", (int)n, s);
		if (shadow_sub_each(us->sh, us->user, sub_is, name) == 0) {
			audit_diff_note(user_diff(us), "subscription %s only on "
			    "the replica", name);
			if (complete) {
				op = dlist_add_kvlist(us->d->ops, "UNSUB");
				dlist_add_atom(op, "USERID", us->user);
				dlist_add_atom(op, "MBOXNAME", name);
			} else {
				buf_printf(&us->d->left, "%ssubscription %s",
				    us->d->left.len ? ", " : "", name);
			}
		}
		free(name);
	}
}

static int
seen_cmp(void *arg, const struct shadow_seen *v)
{
	struct user_state *us = arg;
	const struct dlist *e = replica_entry(us->rmbs, "SEEN", "UNIQUEID",
	    v->uniqueid);
	const char *uids = NULL;
	uint64_t lastuid = 0;
	struct dlist *op;

	if (e && dlist_get_str(e, "SEENUIDS", &uids) == 0 &&
	    strcmp(uids ? uids : "", v->seenuids ? v->seenuids : "") == 0 &&
	    dlist_get_num(e, "LASTUID", &lastuid) == 0 &&
	    lastuid == v->lastuid)
		return 0;
	audit_diff_note(user_diff(us), "seen state of mailbox %s %s on the "
	    "replica", v->uniqueid, e ? "differs" : "missing");
	op = dlist_add_kvlist(us->d->ops, "SEEN");
	dlist_add_atom(op, "USERID", us->user);
	dlist_add_atom(op, "UNIQUEID", v->uniqueid);
	dlist_add_num(op, "LASTREAD", v->lastread);
	dlist_add_num(op, "LASTUID", v->lastuid);
	dlist_add_num(op, "LASTCHANGE", v->lastchange);
	dlist_add_atom(op, "SEENUIDS", v->seenuids ? v->seenuids : "");
	return 0;
}

/*
 * The quota root's limits compared, as sync_client does (not MODSEQ: a
 * replica's moves with its usage).
 */
static void
quota_cmp(struct user_state *us, const char *root)
{
	const struct dlist *e = replica_entry(us->rmbs, "QUOTA", "ROOT", root);
	const struct dlist *f;
	struct dlist *q = getcmd_quota(us->sh, root);
	bool same = e != NULL;

	if (q == NULL)
		return;
	for (f = q->head; f && same; f = f->next) {
		uint64_t a = 0, b = 0;

		if (f->key == NULL || strcmp(f->key, "ROOT") == 0 ||
		    strcmp(f->key, "MODSEQ") == 0)
			continue;
		if (dlist_num(f, &a) < 0 || dlist_get_num(e, f->key, &b) < 0 ||
		    a != b)
			same = false;
	}
	if (same) {
		dlist_free(&q);
		return;
	}
	if (e) {
		static const struct dlist_printer pr = { DLIST_PRINT_SERVER,
			NULL, NULL };
		struct buf a = BUF_INIT, b = BUF_INIT;

		dlist_print_value(e, &a, &pr);
		dlist_print_value(q, &b, &pr);
		audit_diff_note(user_diff(us), "quota %s on the replica, %s in "
		    "the shadow", buf_cstring(&a), buf_cstring(&b));
		buf_free(&a);
		buf_free(&b);
	} else {
		audit_diff_note(user_diff(us), "quota %s missing on the replica",
		    root);
	}
	dlist_append(us->d->ops, q);
}

static int
root_of(void *arg, const struct shadow_mailbox *mb)
{
	struct user_state *us = arg;
	struct buf tmp = BUF_INIT;
	const char *qr = getcmd_quotaroot(us->sh, mb->name, &tmp);

	if (qr && !in_list(us->roots, qr))
		dlist_add_atom(us->roots, NULL, qr);
	buf_free(&tmp);
	return 0;
}

/*
 * The user's subscriptions, quota roots and seen state compared: what
 * the replica lacks or holds otherwise becomes an APPLY to send; what
 * only the replica has is removed only with the master's complete list
 * for the user (design invariant 9).
 */
static void
compare_user_state(struct shadow *sh, struct run *r, const char *user,
    const struct dlist *rmbs)
{
	struct user_state us = { sh, r, user, rmbs, NULL, NULL };
	const struct dlist *e;

	shadow_sub_each(sh, user, sub_cmp, &us);
	subs_only_on_replica(&us);
	shadow_seen_each(sh, user, seen_cmp, &us);
	us.roots = dlist_new_list(NULL);
	shadow_mailbox_each_user(sh, user, root_of, &us);
	for (e = us.roots->head; e; e = e->next)
		quota_cmp(&us, e->s);
	dlist_free(&us.roots);
}

void
audit_compare_user(struct shadow *sh, struct run *r, const char *user,
    const struct dlist *rmbs)
{
	struct user_cmp u = { sh, r, rmbs, user };
	const struct dlist *e;

	shadow_mailbox_each_user(sh, user, user_cmp_mailbox, &u);
	for (e = rmbs ? rmbs->head : NULL; e; e = e->next) {
		const char *rname = NULL, *ruid = NULL;
		struct shadow_mailbox mb;
		struct diff *d;

		if (strcmp(e->key ? e->key : "", "MAILBOX") != 0 ||
		    dlist_get_str(e, "MBOXNAME", &rname) < 0 || !rname ||
		    dlist_get_str(e, "UNIQUEID", &ruid) < 0 || !ruid ||
		    is_deleted_name(rname))
			continue;
		if (shadow_mailbox_by_uniqueid(sh, ruid, &mb) == 0) {
			shadow_mailbox_free(&mb);
			continue;
		}
		d = audit_diff_add(r, DK_ONLY_REPLICA, rname, ruid, user);
		audit_diff_note(d, "only on the replica (the shadow has no mailbox "
		    "with UNIQUEID %s)", ruid);
	}
	compare_user_state(sh, r, user, rmbs);
}
