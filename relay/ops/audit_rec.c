/*
 * audit_rec.c -- a replica's GET FULLMAILBOX answer compared with the
 * shadow's records as it arrives, in bounded memory (see audit_int.h).
 *
 * A replica's answer for a mailbox of 100,000 messages is tens of MB on
 * the wire and, parsed whole into a dlist, a quarter of a GB.  So the
 * link's reader hands each RECORD over the moment it is read (the dlist
 * parser's record hook, link_command_records()), and it is merged at
 * once with the shadow's records, both in UID order: the shadow's are
 * read a page (PAGE records) at a time from a snapshot taken when the
 * question went out, so the comparison sees the shadow as it was then
 * whatever the master commits meanwhile.  What is kept is one page of
 * shadow records, counters and the first MAX_NOTES differences spelled
 * out (a count of the others): the memory does not grow with the
 * mailbox.  The same merge answers the other question an audit asks a
 * replica (is it a source of the bodies retention dropped: does it hold
 * each, same UID and GUID).
 *
 * Differences, record by record: missing, expunged on one side only,
 * another GUID, a higher modseq or other flags on the replica.  It notes
 * what a repair needs to know: whether the replica holds mail the master
 * lacks (a UID above the master's, another GUID), whether it changed
 * records itself (a whole APPLY MAILBOX would be refused), and how many
 * live bodies the journal no longer holds.
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
#include "relay/ops/audit_int.h"
#include "storage/shadow.h"

#define MAX_NOTES 6		/* record differences spelled out */
#define PAGE 256		/* shadow records read at a time */

struct audit_rec {
	struct shadow *snap;	/* the shadow when the question went out */
	char *uniqueid;
	bool lacking;		/* counting bodies, not comparing */
	char err[256];		/* why the snapshot could not be had */
	/* The shadow's side: a page, and where the next one starts. */
	struct shadow_record page[PAGE];
	size_t npage, next;
	uint64_t from;		/* uid the next page starts at */
	bool s_end;		/* no more pages */
	uint32_t last_uid;	/* the shadow mailbox's */
	bool no_mailbox;	/* the shadow lacks it */
	/* What was found. */
	char *notes[MAX_NOTES];
	unsigned nnotes, more_notes;
	unsigned s_live, r_live, nobody, lack;
	bool more, replace;
	size_t received;	/* records the replica sent */
};

/* ---- the shadow's side, a page at a time -------------------------------- */

static int
page_one(void *arg, const struct shadow_record *m)
{
	struct audit_rec *ar = arg;
	struct shadow_record *c = &ar->page[ar->npage++];

	*c = *m;
	c->flags = m->flags ? xstrdup(m->flags) : NULL;
	c->annotations = m->annotations ? xstrdup(m->annotations) : NULL;
	ar->from = (uint64_t)m->uid + 1;
	return ar->npage == PAGE ? 1 : 0;
}

static void
page_clear(struct audit_rec *ar)
{
	size_t i;

	for (i = 0; i < ar->npage; i++)
		shadow_record_free(&ar->page[i]);
	ar->npage = ar->next = 0;
}

/* The shadow's next record (not taken), or NULL at its end. */
static const struct shadow_record *
shadow_peek(struct audit_rec *ar)
{
	if (ar->next < ar->npage)
		return &ar->page[ar->next];
	page_clear(ar);
	if (ar->s_end || ar->snap == NULL || ar->from > UINT32_MAX)
		return NULL;
	shadow_record_each(ar->snap, ar->uniqueid, (uint32_t)ar->from,
	    page_one, ar);
	if (ar->npage < PAGE)
		ar->s_end = true;
	return ar->npage ? &ar->page[0] : NULL;
}

/* ---- what differs -------------------------------------------------------- */

static void note(struct audit_rec *ar, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note(struct audit_rec *ar, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	if (ar->lacking)
		return;
	if (ar->nnotes >= MAX_NOTES) {
		ar->more_notes++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	ar->notes[ar->nnotes++] = xstrdup(tmp);
}

/* The record's flags as one string, \Expunged apart; true if expunged. */
static bool
flags_of(const struct dlist *rec, struct buf *out)
{
	const struct dlist *f, *fl = dlist_get(rec, "FLAGS");
	bool expunged = false;

	buf_reset(out);
	for (f = fl ? fl->head : NULL; f; f = f->next) {
		const char *s = NULL;
		size_t n = 0;

		if (dlist_str(f, &s, &n) < 0 || s == NULL)
			continue;
		if (strcasecmp(s, "\\Expunged") == 0) {
			expunged = true;
			continue;
		}
		if (out->len)
			buf_putc(out, ' ');
		buf_puts(out, s);
	}
	buf_cstring(out);
	return expunged;
}

/* Are the two space-separated flag lists the same set (no case)? */
static bool
same_flags(const char *a, const char *b)
{
	char *x = xstrdup(a), *save = NULL, *t;
	const char *p;
	size_t na = 0, nb = 0;
	bool same = true;

	for (t = strtok_r(x, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(t);

		p = b;
		na++;
		for (;;) {
			const char *q = strchr(p, ' ');
			size_t plen = q ? (size_t)(q - p) : strlen(p);

			if (plen == len && strncasecmp(p, t, len) == 0)
				break;
			if (q == NULL) {
				same = false;
				break;
			}
			p = q + 1;
		}
	}
	free(x);
	for (p = b; *p; p++)
		if (*p != ' ' && (p == b || p[-1] == ' '))
			nb++;
	return same && na == nb;
}

/* Counts a shadow record; true if it is live with no body in the journal
 * (retention dropped it). */
static bool
shadow_seen(struct audit_rec *ar, const struct shadow_record *m)
{
	struct shadow_body b;

	if (m->expunged)
		return false;
	ar->s_live++;
	if (shadow_body_get(ar->snap, m->guid, &b) < 0) {
		ar->nobody++;
		return true;
	}
	return false;
}

/* A shadow record the replica does not have. */
static void
shadow_only(struct audit_rec *ar, const struct shadow_record *m)
{
	if (shadow_seen(ar, m))
		ar->lack++;
	if (!m->expunged)
		note(ar, "uid %u missing on the replica", m->uid);
}

/* A replica record the shadow does not have. */
static void
replica_only(struct audit_rec *ar, const struct dlist *r, uint64_t uid)
{
	struct buf fl = BUF_INIT;

	if (!flags_of(r, &fl)) {
		ar->r_live++;
		if (uid > ar->last_uid) {
			if (!ar->lacking)
				ar->more = true;
			note(ar, "uid %llu only on the replica, above the "
			    "master's last uid %u (delivered there directly)",
			    (unsigned long long)uid, ar->last_uid);
		} else {
			note(ar, "uid %llu live on the replica, expunged "
			    "on the master", (unsigned long long)uid);
		}
	}
	buf_free(&fl);
}

/* The same UID on both sides. */
static void
pair(struct audit_rec *ar, const struct shadow_record *m,
    const struct dlist *r)
{
	struct buf rfl = BUF_INIT, sfl = BUF_INIT;
	struct dlist *srec;
	uint64_t modseq = 0;
	bool rexp, nobody = shadow_seen(ar, m), readable, other;
	char g[41];

	readable = dlist_guid(dlist_get(r, "GUID"), g) == 0;
	other = readable && strcmp(g, m->guid) != 0;
	if (ar->lacking) {
		/* The replica holds the body if it is the same message. */
		if (nobody && (!readable || other))
			ar->lack++;
		return;
	}
	rexp = flags_of(r, &rfl);
	if (!rexp)
		ar->r_live++;
	if (m->expunged && rexp)
		goto out;
	if (other) {
		ar->more = true;
		note(ar, "uid %u holds another message on the replica "
		    "(GUID %s, the master's is %s)", m->uid, g, m->guid);
		goto out;
	}
	if (rexp && !m->expunged) {
		ar->replace = true;
		note(ar, "uid %u expunged on the replica", m->uid);
		goto out;
	}
	if (!rexp && m->expunged) {
		note(ar, "uid %u expunged in the shadow, live on the "
		    "replica", m->uid);
		goto out;
	}
	dlist_get_num(r, "MODSEQ", &modseq);
	if (modseq > m->modseq)
		ar->replace = true;
	srec = shadow_record_dlist(m);
	if (srec)
		flags_of(srec, &sfl);
	dlist_free(&srec);
	if (!same_flags(buf_cstring(&rfl), buf_cstring(&sfl)))
		note(ar, "uid %u flags (%s) on the replica, (%s) in the "
		    "shadow", m->uid, buf_cstring(&rfl), buf_cstring(&sfl));
	else if (modseq != m->modseq)
		note(ar, "uid %u modseq %llu on the replica, %llu in the "
		    "shadow", m->uid, (unsigned long long)modseq,
		    (unsigned long long)m->modseq);
out:
	buf_free(&rfl);
	buf_free(&sfl);
}

/* ---- the merge ------------------------------------------------------------ */

struct audit_rec *
audit_rec_new(struct shadow *sh, const char *uniqueid, bool lacking)
{
	struct audit_rec *ar = xcalloc(1, sizeof(*ar));
	struct shadow_mailbox mb;

	ar->uniqueid = xstrdup(uniqueid);
	ar->lacking = lacking;
	ar->from = 1;
	if (shadow_snapshot_open(sh, &ar->snap, ar->err, sizeof(ar->err)) < 0)
		ar->snap = NULL;
	else if (shadow_mailbox_by_uniqueid(ar->snap, uniqueid, &mb) < 0)
		ar->no_mailbox = true;
	else {
		ar->last_uid = mb.last_uid;
		shadow_mailbox_free(&mb);
	}
	return ar;
}

void
audit_rec_free(struct audit_rec **arp)
{
	struct audit_rec *ar = *arp;
	unsigned i;

	if (ar == NULL)
		return;
	page_clear(ar);
	shadow_snapshot_close(&ar->snap);
	for (i = 0; i < ar->nnotes; i++)
		free(ar->notes[i]);
	free(ar->uniqueid);
	free(ar);
	*arp = NULL;
}

int
audit_rec_record(void *arg, struct dlist *elem, size_t index)
{
	struct audit_rec *ar = arg;
	const struct shadow_record *m;
	uint64_t uid = 0;

	(void)index;
	ar->received++;
	if (ar->snap == NULL || dlist_get_num(elem, "UID", &uid) < 0) {
		dlist_free(&elem);
		return 0;
	}
	while ((m = shadow_peek(ar)) != NULL && m->uid < uid) {
		shadow_only(ar, m);
		ar->next++;
	}
	if (m != NULL && m->uid == uid) {
		pair(ar, m, elem);
		ar->next++;
	} else {
		replica_only(ar, elem, uid);
	}
	dlist_free(&elem);
	return 0;
}

/* The replica's MAILBOX entry for the uniqueid in the answer, or NULL. */
static const struct dlist *
answer_mailbox(const struct dlist *list, const char *uniqueid)
{
	const struct dlist *e;
	const char *x;

	for (e = list ? list->head : NULL; e; e = e->next)
		if (strcmp(e->key ? e->key : "", "MAILBOX") == 0 &&
		    dlist_get_str(e, "UNIQUEID", &x) == 0 && x &&
		    strcmp(x, uniqueid) == 0)
			return e;
	return NULL;
}

/* After the last record: the shadow's records the replica lacks. */
static void
drain(struct audit_rec *ar)
{
	const struct shadow_record *m;

	while ((m = shadow_peek(ar)) != NULL) {
		shadow_only(ar, m);
		ar->next++;
	}
}

void
audit_rec_finish(struct audit_rec *ar, struct diff *d,
    const struct dlist *list)
{
	const struct dlist *rmb = answer_mailbox(list, d->uniqueid);
	struct shadow_mailbox mb;
	uint64_t r_hms = 0;
	unsigned i;

	/* Records of another mailbox (same name, another UNIQUEID) were
	 * merged for nothing: the answer does not hold this one. */
	if (rmb == NULL || ar->snap == NULL || ar->no_mailbox ||
	    shadow_mailbox_by_uniqueid(ar->snap, d->uniqueid, &mb) < 0) {
		audit_diff_note(d, "its records could not be compared");
		return;
	}
	drain(ar);
	d->nobody = ar->nobody;
	if (ar->more)
		d->more = true;
	if (ar->replace)
		d->replace = true;
	for (i = 0; i < ar->nnotes; i++)
		audit_diff_note(d, "%s", ar->notes[i]);
	if (dlist_get_num(rmb, "HIGHESTMODSEQ", &r_hms) == 0 &&
	    r_hms > mb.highestmodseq)
		d->replace = true;
	if (ar->more_notes)
		audit_diff_note(d, "and %u more record differences",
		    ar->more_notes);
	audit_diff_note(d, "%u messages on the replica, %u in the shadow",
	    ar->r_live, ar->s_live);
	shadow_mailbox_free(&mb);
}

unsigned
audit_rec_lacking(struct audit_rec *ar, const struct dlist *list)
{
	if (answer_mailbox(list, ar->uniqueid) == NULL || ar->snap == NULL)
		return UINT32_MAX;
	drain(ar);
	return ar->lack;
}
