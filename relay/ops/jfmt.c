/*
 * jfmt.c -- journal records in words, for the tools (see jfmt.h).
 *
 * Two forms: jfmt_describe() is terse and stable (syncrelay-journal
 * dump, which scripts read); jfmt_explain() says what changed in an
 * operator's words (syncrelayctl journal).  APPLY MAILBOX tells added
 * from changed records without any state: Cyrus 3.6 sends SINCE_MODSEQ
 * (the modseq it believes the replica has) and each record's
 * createdmodseq annotation, so a record created after SINCE_MODSEQ is
 * new; without SINCE_MODSEQ (a mailbox sent whole) every record counts
 * as added.  A record flagged \Expunged counts as expunged.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "protocol/csync.h"
#include "relay/ops/jfmt.h"
#include "storage/fold.h"

void
jfmt_time(uint64_t us, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), len - strlen(out), ".%03uZ",
	    (unsigned)(us / 1000 % 1000));
}

/* "APPLY MAILBOX user.bob records=12" from a command's dlist text. */
void
jfmt_describe(const struct buf *raw, struct buf *out)
{
	bool seed;
	struct dlist *e = fold_parse_record(raw->s, raw->len, &seed);
	const char *s;

	buf_reset(out);
	if (e != NULL) {
		const struct dlist *rl = dlist_get(e, "RECORD");

		buf_printf(out, "%s %s", seed ? "SEED" : "APPLY", e->key);
		if (e->type == DL_ATOM)
			buf_printf(out, " %s", e->s);
		else if (dlist_get_str(e, "MBOXNAME", &s) == 0 && s)
			buf_printf(out, " %s", s);
		else if (dlist_get_str(e, "OLDMBOXNAME", &s) == 0 && s)
			buf_printf(out, " %s", s);
		else if (e->type == DL_LIST)
			buf_printf(out, " items=%zu", e->nchildren);
		if (rl)
			buf_printf(out, " records=%zu", rl->nchildren);
	} else {
		buf_printf(out, "(not a csync command: %.60s)", raw->s);
	}
	dlist_free(&e);
}

int
jfmt_count_sink(void *arg, const void *p, size_t n)
{
	(void)p;
	*(uint64_t *)arg += n;
	return 0;
}

/* ---- jfmt_explain ------------------------------------------------------ */

#define CREATEDMODSEQ "/vendor/cmu/cyrus-imapd/createdmodseq"
#define VENDOR_CYRUS "/vendor/cmu/cyrus-imapd/"

struct flag_count {
	char name[64];
	unsigned n;
};

static void
count_flag(struct flag_count *fc, size_t *nfc, size_t max, const char *f,
    size_t len)
{
	size_t i;

	if (len >= sizeof(fc->name))
		len = sizeof(fc->name) - 1;
	for (i = 0; i < *nfc; i++)
		if (strlen(fc[i].name) == len && memcmp(fc[i].name, f, len) == 0) {
			fc[i].n++;
			return;
		}
	if (*nfc == max)
		return;
	memcpy(fc[*nfc].name, f, len);
	fc[*nfc].name[len] = '\0';
	fc[(*nfc)++].n = 1;
}

/* Adds the entries of an ANNOTATIONS list, Cyrus's own ones aside. */
static void
list_annotations(const struct dlist *al, struct buf *names)
{
	const struct dlist *a;
	const char *entry;

	if (al == NULL)
		return;
	for (a = al->head; a; a = a->next) {
		if (dlist_get_str(a, "ENTRY", &entry) < 0 || entry == NULL ||
		    strncmp(entry, VENDOR_CYRUS, strlen(VENDOR_CYRUS)) == 0)
			continue;
		if (names->len && strstr(buf_cstring(names), entry))
			continue;
		buf_printf(names, "%s%s", names->len ? " " : "", entry);
	}
}

static bool
has_flag(const struct dlist *fl, const char *name)
{
	const struct dlist *f;

	for (f = fl ? fl->head : NULL; f; f = f->next)
		if (f->s && f->len == strlen(name) &&
		    strncasecmp(f->s, name, f->len) == 0)
			return true;
	return false;
}

/* "user.bob: 2 added, 1 changed, 1 expunged (last UID 4); flags ..." */
static void
explain_mailbox(const struct dlist *e, struct buf *out)
{
	const struct dlist *rl = dlist_get(e, "RECORD"), *r, *f, *ann;
	struct flag_count fc[16];
	struct buf annots = BUF_INIT;
	uint64_t since = 0, last_uid = 0, created;
	bool have_since = dlist_get_num(e, "SINCE_MODSEQ", &since) == 0;
	unsigned added = 0, changed = 0, expunged = 0;
	size_t nfc = 0, i;
	const char *s;

	if (dlist_get_str(e, "MBOXNAME", &s) == 0 && s)
		buf_printf(out, " %s:", s);
	list_annotations(dlist_get(e, "ANNOTATIONS"), &annots);
	for (r = rl ? rl->head : NULL; r; r = r->next) {
		const struct dlist *fl = dlist_get(r, "FLAGS");

		if (has_flag(fl, "\\Expunged")) {
			expunged++;
			continue;
		}
		created = 0;
		ann = dlist_get(r, "ANNOTATIONS");
		for (f = ann ? ann->head : NULL; f; f = f->next) {
			const char *entry, *v;

			if (dlist_get_str(f, "ENTRY", &entry) == 0 && entry &&
			    strcmp(entry, CREATEDMODSEQ) == 0 &&
			    dlist_get_str(f, "VALUE", &v) == 0 && v)
				created = strtoull(v, NULL, 10);
		}
		list_annotations(ann, &annots);
		if (!have_since || created > since)
			added++;
		else
			changed++;
		for (f = fl ? fl->head : NULL; f; f = f->next)
			if (f->s)
				count_flag(fc, &nfc, 16, f->s, f->len);
	}
	if (rl == NULL || rl->nchildren == 0)
		buf_puts(out, " mailbox attributes only");
	else {
		const char *sep = "";

		if (added)
			buf_printf(out, " %u added", added), sep = ",";
		if (changed)
			buf_printf(out, "%s %u changed", sep, changed), sep = ",";
		if (expunged)
			buf_printf(out, "%s %u expunged", sep, expunged);
	}
	if (dlist_get_num(e, "LAST_UID", &last_uid) == 0)
		buf_printf(out, " (last UID %llu)", (unsigned long long)last_uid);
	for (i = 0; i < nfc; i++)
		buf_printf(out, "%s%s x%u", i ? ", " : "; flags ", fc[i].name,
		    fc[i].n);
	if (annots.len)
		buf_printf(out, "; annotations %s", buf_cstring(&annots));
	buf_free(&annots);
}

/* Appends " KEY value" for each of keys that e holds as a string. */
static void
put_fields(const struct dlist *e, const char *const *keys, struct buf *out)
{
	const char *s;

	for (; *keys; keys++)
		if (dlist_get_str(e, *keys, &s) == 0 && s && *s)
			buf_printf(out, " %s", s);
}

void
jfmt_explain(const struct buf *raw, struct buf *out)
{
	static const char *const mbox[] = { "MBOXNAME", NULL };
	static const char *const user_mbox[] = { "USERID", "MBOXNAME", NULL };
	static const char *const annot[] = { "MBOXNAME", "ENTRY", "USERID",
		NULL };
	static const char *const sieve[] = { "USERID", "FILENAME", NULL };
	static const char *const seen[] = { "USERID", "UNIQUEID", NULL };
	bool seed;
	struct dlist *e = fold_parse_record(raw->s, raw->len, &seed);
	const char *s, *to;
	uint64_t n;

	buf_reset(out);
	if (e == NULL) {
		buf_printf(out, "(not a csync command: %.60s)", raw->s);
		return;
	}
	buf_printf(out, "%s %s", seed ? "SEED" : "APPLY", e->key);
	if (e->type == DL_ATOM) {
		buf_printf(out, " %s", e->s);
		if (strcmp(e->key, "UNMAILBOX") == 0)
			buf_puts(out, " (mailbox removed)");
		else if (strcmp(e->key, "UNUSER") == 0)
			buf_puts(out, " (user removed)");
	} else if (strcmp(e->key, "MAILBOX") == 0) {
		explain_mailbox(e, out);
	} else if (strcmp(e->key, "RENAME") == 0 &&
	    dlist_get_str(e, "OLDMBOXNAME", &s) == 0 && s &&
	    dlist_get_str(e, "NEWMBOXNAME", &to) == 0 && to) {
		buf_printf(out, " %s -> %s", s, to);
		if (strncmp(to, "DELETED.", 8) == 0)
			buf_puts(out, " (deleted, kept for delayed delete)");
	} else if (strcmp(e->key, "SUB") == 0 ||
	    strcmp(e->key, "UNSUB") == 0) {
		put_fields(e, user_mbox, out);
	} else if (strcmp(e->key, "ANNOTATION") == 0 ||
	    strcmp(e->key, "UNANNOTATION") == 0) {
		put_fields(e, annot, out);
	} else if (strcmp(e->key, "SIEVE") == 0 ||
	    strcmp(e->key, "UNSIEVE") == 0 ||
	    strcmp(e->key, "ACTIVATE_SIEVE") == 0) {
		put_fields(e, sieve, out);
	} else if (strcmp(e->key, "SEEN") == 0) {
		put_fields(e, seen, out);
	} else if (strcmp(e->key, "QUOTA") == 0 &&
	    dlist_get_str(e, "ROOT", &s) == 0 && s) {
		buf_printf(out, " %s", s);
		if (dlist_get_num(e, "STORAGE", &n) == 0)
			buf_printf(out, " storage %llu KiB",
			    (unsigned long long)n);
	} else if (e->type == DL_KVLIST) {
		size_t before = out->len;

		put_fields(e, mbox, out);
		if (out->len == before)
			buf_printf(out, " items=%zu", e->nchildren);
	} else if (e->type == DL_LIST) {
		buf_printf(out, " items=%zu", e->nchildren);
	}
	dlist_free(&e);
}
