/*
 * getcmd.c -- GET USER, MAILBOXES, UNIQUEIDS, META, QUOTA, ANNOTATION
 * and FETCH_SIEVE, answered from the shadow (FULLMAILBOX, printed a page
 * at a time: getcmd_full.c, from what this file gives).
 *
 * Mailboxes are printed in Cyrus's field order; intermediates in their
 * short form; OPTIONS as a replica reports them (P, which a replica's
 * mailbox always has, then S D A).  Records as a replica prints them:
 * user flags in the order and spelling of the mailbox's flag slots
 * (storage/shadow_names.c), annotations sorted by (entry, userid) with
 * the per-message values after them.
 * A mailbox's quota root, and the QUOTA lines of GET USER, follow the
 * stored quota roots: a mailbox belongs to the longest root that is its
 * name or a parent of it.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/dlist_parse.h"
#include "relay/getcmd.h"
#include "storage/annotdef.h"
#include "storage/journal.h"
#include "storage/mboxname.h"
#include "storage/posidx.h"

/* Parses stored dlist text (a printed value) back into a node. */
static struct dlist *
parse_value(const char *key, const char *text)
{
	struct dlist_parser *p = dlist_parser_new(NULL, NULL);
	struct buf b = BUF_INIT;
	struct dlist *dl = NULL;
	size_t used;

	buf_printf(&b, "%s %s\r\n", key, text);
	if (dlist_parser_feed(p, b.s, b.len, &used) == DLIST_DONE)
		dl = dlist_parser_take(p);
	dlist_parser_free(&p);
	buf_free(&b);
	return dl;
}

static void
add_options(struct dlist *kv, const char *opts)
{
	static const char order[] = "PSDA";
	char out[8];
	size_t i, n = 0;

	/* A replica's mailbox keeps P from its creation, whatever the
	 * master sends. */
	out[n++] = 'P';
	for (i = 1; i < 4; i++)
		if (opts && strchr(opts, order[i]))
			out[n++] = order[i];
	out[n] = '\0';
	dlist_add_atom(kv, "OPTIONS", out);
}

/* The longest stored quota root covering name, or NULL. */
static const char *
quotaroot_of(struct shadow *s, const char *name, struct buf *tmp)
{
	char *fields = NULL;
	size_t n = strlen(name);

	buf_reset(tmp);
	buf_append(tmp, name, n);
	for (;;) {
		char *dot;

		if (shadow_quota_get(s, tmp->s, &fields) == 0) {
			free(fields);
			return tmp->s;
		}
		dot = strrchr(tmp->s, '.');
		if (dot == NULL)
			return NULL;
		*dot = '\0';
		tmp->len = (size_t)(dot - tmp->s);
	}
}

const char *
getcmd_quotaroot(struct shadow *s, const char *name, struct buf *tmp)
{
	return quotaroot_of(s, name, tmp);
}

struct dlist *
getcmd_quota(struct shadow *s, const char *root)
{
	char *fields = NULL;
	struct dlist *q = NULL;

	if (shadow_quota_get(s, root, &fields) == 0)
		q = parse_value("QUOTA", fields);
	free(fields);
	return q;
}

static int
add_record_cb(void *arg, const struct shadow_record *rec)
{
	struct dlist *kv = shadow_record_dlist(rec);

	if (kv != NULL)
		dlist_append(arg, kv);
	return 0;
}

static int
add_annot_cb(void *arg, const struct shadow_annot *a)
{
	struct dlist *kv = dlist_add_kvlist(arg, NULL);

	dlist_add_atom(kv, "ENTRY", a->entry);
	dlist_add_atom(kv, "USERID", a->userid);
	dlist_add_num(kv, "MODSEQ", a->modseq);
	dlist_add_atom_n(kv, "VALUE", a->value, a->value_len);
	return 0;
}

/* Relinks the children of list in the order of the sorted array. */
static void
relink(struct dlist *list, struct dlist **v, size_t n)
{
	size_t i;

	list->head = n ? v[0] : NULL;
	list->tail = n ? v[n - 1] : NULL;
	for (i = 0; i < n; i++)
		v[i]->next = i + 1 < n ? v[i + 1] : NULL;
}

/* The position of a per-message annotation among the virtual ones
 * (thrid, savedate, createdmodseq), or 0 for a real annotation. */
static int
virtual_rank(const struct dlist *a)
{
	static const char *const v[] = { "thrid", "savedate",
	    "createdmodseq" };
	const struct dlist *e = dlist_get(a, "ENTRY");
	size_t i, n = strlen("/vendor/cmu/cyrus-imapd/");

	if (e == NULL || e->s == NULL ||
	    strncmp(e->s, "/vendor/cmu/cyrus-imapd/", n) != 0)
		return 0;
	for (i = 0; i < 3; i++)
		if (strcmp(e->s + n, v[i]) == 0)
			return (int)i + 1;
	return 0;
}

static const char *
str_of(const struct dlist *a, const char *key)
{
	const struct dlist *d = dlist_get(a, key);

	return d && d->s ? d->s : "";
}

static int
annot_cmp(const void *x, const void *y)
{
	const struct dlist *a = *(struct dlist *const *)x;
	const struct dlist *b = *(struct dlist *const *)y;
	int ra = virtual_rank(a), rb = virtual_rank(b), c;

	if (ra != rb)
		return ra - rb;
	if ((c = strcmp(str_of(a, "ENTRY"), str_of(b, "ENTRY"))) != 0)
		return c;
	return strcmp(str_of(a, "USERID"), str_of(b, "USERID"));
}

/* Sorts a record's ANNOTATIONS as a replica prints them. */
static void
sort_annots(struct dlist *rec)
{
	struct dlist *an = dlist_get_mut(rec, "ANNOTATIONS");
	struct dlist **v, *c;
	size_t n = 0;

	if (an == NULL || an->nchildren < 2)
		return;
	v = xreallocarray(NULL, an->nchildren, sizeof(*v));
	for (c = an->head; c != NULL && n < an->nchildren; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof(*v), annot_cmp);
	relink(an, v, n);
	free(v);
}

struct flag_slots {
	char **names;		/* the mailbox's flags, first spelling */
	size_t n;
};

static size_t
slot_of(struct flag_slots *fs, const char *flag, bool add)
{
	size_t i;

	for (i = 0; i < fs->n; i++)
		if (strcasecmp(fs->names[i], flag) == 0)
			return i;
	if (add) {
		fs->names = xreallocarray(fs->names, fs->n + 1,
		    sizeof(char *));
		fs->names[fs->n++] = xstrdup(flag);
	}
	return i;
}

static bool
is_user_flag(const struct dlist *f)
{
	return f->s != NULL && f->s[0] != '\\';
}

static int
slot_cb(void *arg, const char *flag)
{
	slot_of(arg, flag, true);
	return 0;
}

struct getcmd_flags {
	struct flag_slots fs;
};

struct getcmd_flags *
getcmd_flags_new(struct shadow *s, const char *uniqueid)
{
	struct getcmd_flags *fl = xcalloc(1, sizeof(*fl));

	shadow_uflag_each(s, uniqueid, slot_cb, &fl->fs);
	return fl;
}

void
getcmd_flags_free(struct getcmd_flags **flp)
{
	struct getcmd_flags *fl = *flp;
	size_t i;

	if (fl == NULL)
		return;
	for (i = 0; i < fl->fs.n; i++)
		free(fl->fs.names[i]);
	free(fl->fs.names);
	free(fl);
	*flp = NULL;
}

/*
 * Gives the records' user flags the mailbox's spelling and order (its
 * flag slots; a flag without one, from a shadow older than the slots,
 * after them in UID order), and their annotations a replica's order.
 * Slots are only ever added, in UID order of first use, so the records
 * of a mailbox canonicalized a page at a time with the same fl come out
 * as they would all at once.
 */
void
getcmd_canon_records(struct getcmd_flags *fl, struct dlist *records)
{
	struct flag_slots *fsp = &fl->fs;
	struct dlist *r, *f, **v = NULL;
	size_t i, n, cap = 0;

	for (r = records->head; r != NULL; r = r->next) {
		struct dlist *fls = dlist_get_mut(r, "FLAGS");

		sort_annots(r);
		for (f = fls ? fls->head : NULL; f != NULL; f = f->next)
			if (is_user_flag(f))
				slot_of(fsp, f->s, true);
	}
	for (r = records->head; r != NULL; r = r->next) {
		struct dlist *fls = dlist_get_mut(r, "FLAGS");
		size_t nsys = 0;

		if (fls == NULL || fls->nchildren == 0)
			continue;
		if (fls->nchildren > cap) {
			cap = fls->nchildren;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		n = 0;
		for (f = fls->head; f != NULL && n < cap; f = f->next)
			v[n++] = f;
		/* System flags keep their order; user flags follow in
		 * slot order, spelled as the slot is. */
		for (i = 0; i < n; i++)
			if (!is_user_flag(v[i]))
				v[nsys++] = v[i];
		n = nsys;
		for (i = 0; i < fsp->n; i++)
			for (f = fls->head; f != NULL; f = f->next)
				if (is_user_flag(f) &&
				    strcasecmp(f->s, fsp->names[i]) == 0) {
					free(f->s);
					f->s = xstrdup(fsp->names[i]);
					f->len = strlen(f->s);
					v[n++] = f;
					break;
				}
		/* Duplicates of a slot are dropped. */
		for (f = fls->head; f != NULL;) {
			struct dlist *next = f->next;
			bool kept = false;

			for (i = 0; i < n && !kept; i++)
				kept = v[i] == f;
			if (!kept) {
				f->next = NULL;
				dlist_free(&f);
			}
			f = next;
		}
		relink(fls, v, n);
		fls->nchildren = n;
	}
	free(v);
}

/* The MAILBOX kvlist a replica would print for mb. */
struct dlist *
getcmd_mailbox_dlist(struct shadow *s, const struct shadow_mailbox *mb,
    bool records)
{
	struct dlist *kv = dlist_new_kvlist("MAILBOX");
	struct buf tmp = BUF_INIT;
	const char *qr;

	dlist_add_atom(kv, "UNIQUEID", mb->uniqueid);
	dlist_add_atom(kv, "MBOXNAME", mb->name);
	if (mb->mbtype && strchr(mb->mbtype, 'i')) {
		/* The short form of an intermediate (5.11). */
		dlist_add_atom(kv, "MBOXTYPE", mb->mbtype);
		dlist_add_num(kv, "SYNC_CRC", 0);
		dlist_add_num(kv, "LAST_UID", 0);
		dlist_add_num(kv, "HIGHESTMODSEQ", 0);
		dlist_add_num(kv, "RECENTUID", 0);
		dlist_add_num(kv, "RECENTTIME", 0);
		dlist_add_num(kv, "LAST_APPENDDATE", 0);
		dlist_add_num(kv, "POP3_LAST_LOGIN", 0);
		dlist_add_num(kv, "POP3_SHOW_AFTER", 0);
		dlist_add_num(kv, "UIDVALIDITY", mb->uidvalidity);
		dlist_add_nil(kv, "PARTITION");
		dlist_add_atom(kv, "ACL", "");
		dlist_add_atom(kv, "OPTIONS", "");
		dlist_add_num(kv, "CREATEDMODSEQ", mb->createdmodseq);
		dlist_add_num(kv, "FOLDERMODSEQ", mb->foldermodseq);
		return kv;
	}
	if (mb->mbtype && *mb->mbtype && strcmp(mb->mbtype, "e") != 0)
		dlist_add_atom(kv, "MBOXTYPE", mb->mbtype);
	dlist_add_num(kv, "SYNC_CRC", mb->sync_crc);
	dlist_add_num(kv, "SYNC_CRC_ANNOT", mb->sync_crc_annot);
	dlist_add_num(kv, "LAST_UID", mb->last_uid);
	dlist_add_num(kv, "HIGHESTMODSEQ", mb->highestmodseq);
	dlist_add_num(kv, "RECENTUID", mb->recentuid);
	dlist_add_num(kv, "RECENTTIME", mb->recenttime);
	dlist_add_num(kv, "LAST_APPENDDATE", mb->last_appenddate);
	dlist_add_num(kv, "POP3_LAST_LOGIN", mb->pop3_last_login);
	dlist_add_num(kv, "POP3_SHOW_AFTER", mb->pop3_show_after);
	if (mb->xconvmodseq)
		dlist_add_num(kv, "XCONVMODSEQ", mb->xconvmodseq);
	if (mb->raclmodseq)
		dlist_add_num(kv, "RACLMODSEQ", mb->raclmodseq);
	dlist_add_num(kv, "UIDVALIDITY", mb->uidvalidity);
	dlist_add_atom(kv, "PARTITION", mb->partition);
	dlist_add_atom(kv, "ACL", mb->acl ? mb->acl : "");
	add_options(kv, mb->options);
	if ((qr = quotaroot_of(s, mb->name, &tmp)) != NULL)
		dlist_add_atom(kv, "QUOTAROOT", qr);
	if (mb->createdmodseq)
		dlist_add_num(kv, "CREATEDMODSEQ", mb->createdmodseq);
	if (mb->foldermodseq)
		dlist_add_num(kv, "FOLDERMODSEQ", mb->foldermodseq);
	{
		struct dlist *an = dlist_new_list("ANNOTATIONS");

		shadow_annot_each(s, mb->uniqueid, add_annot_cb, an);
		if (an->nchildren)
			dlist_append(kv, an);
		else
			dlist_free(&an);
	}
	if (records) {
		struct dlist *rl = dlist_add_list(kv, "RECORD");

		struct getcmd_flags *fl = getcmd_flags_new(s, mb->uniqueid);

		shadow_record_each(s, mb->uniqueid, 0, add_record_cb, rl);
		getcmd_canon_records(fl, rl);
		getcmd_flags_free(&fl);
	}
	buf_free(&tmp);
	return kv;
}

static void
emit(struct buf *out, struct dlist **dl)
{
	csync_print_untagged(out, *dl);
	dlist_free(dl);
}

static bool
is_tombstone(const struct shadow_mailbox *mb)
{
	return mb->mbtype && strchr(mb->mbtype, 'd');
}

static bool
is_intermediate(const struct shadow_mailbox *mb)
{
	return mb->mbtype && strchr(mb->mbtype, 'i');
}

static bool
is_sieve(const struct shadow_mailbox *mb)
{
	return mb->mbtype && strchr(mb->mbtype, 'f');
}

/* ---- per-user lines ----------------------------------------------------- */

static int
seen_cb(void *arg, const struct shadow_seen *v)
{
	struct dlist *kv = dlist_new_kvlist("SEEN");

	dlist_add_atom(kv, "UNIQUEID", v->uniqueid);
	dlist_add_num(kv, "LASTREAD", v->lastread);
	dlist_add_num(kv, "LASTUID", v->lastuid);
	dlist_add_num(kv, "LASTCHANGE", v->lastchange);
	dlist_add_atom(kv, "SEENUIDS", v->seenuids ? v->seenuids : "");
	emit(arg, &kv);
	return 0;
}

static int
sub_cb(void *arg, const char *name)
{
	dlist_add_atom(arg, NULL, name);
	return 0;
}

static int
sieve_cb(void *arg, const struct shadow_sieve *sv)
{
	struct dlist *kv = dlist_new_kvlist("SIEVE");

	dlist_add_atom(kv, "FILENAME", sv->filename);
	dlist_add_num(kv, "LAST_UPDATE", sv->last_update);
	dlist_add_guid(kv, "GUID", sv->guid);
	dlist_add_num(kv, "ISACTIVE", 0);
	emit(arg, &kv);
	if (sv->active) {
		/* The active script is listed again under its bytecode. */
		struct buf bc = BUF_INIT;
		size_t n = strlen(sv->filename);

		if (n > 7 && strcmp(sv->filename + n - 7, ".script") == 0)
			n -= 7;
		buf_append(&bc, sv->filename, n);
		buf_puts(&bc, ".bc");
		kv = dlist_new_kvlist("SIEVE");
		dlist_add_atom(kv, "FILENAME", bc.s);
		dlist_add_num(kv, "LAST_UPDATE", 0);
		dlist_add_guid(kv, "GUID",
		    "0000000000000000000000000000000000000000");
		dlist_add_num(kv, "ISACTIVE", 1);
		emit(arg, &kv);
		buf_free(&bc);
	}
	return 0;
}

static void
user_meta(struct shadow *s, const char *userid, const struct getcmd_ctx *ctx,
    struct buf *out)
{
	struct dlist *lsub = dlist_new_list("LSUB");

	shadow_seen_each(s, userid, seen_cb, out);
	shadow_sub_each(s, userid, sub_cb, lsub);
	if (lsub->nchildren)
		emit(out, &lsub);
	dlist_free(&lsub);
	if (!ctx->sieve_mailbox)
		shadow_sieve_each(s, userid, sieve_cb, out);
}

/* ---- GET USER --------------------------------------------------------- */

struct user_walk {
	struct shadow *s;
	const struct getcmd_ctx *ctx;
	struct buf lines;	/* MAILBOX lines */
	struct buf deleted;	/* DELETED.* ones go last */
	struct dlist *roots;	/* distinct quota roots */
	int real;		/* non-intermediate mailboxes */
};

static int
user_mailbox_cb(void *arg, const struct shadow_mailbox *mb)
{
	struct user_walk *w = arg;
	const char *bang = strchr(mb->name, '!');
	struct dlist *kv;
	struct buf tmp = BUF_INIT;
	const char *qr;

	if (is_tombstone(mb) || (is_sieve(mb) && !w->ctx->sieve_mailbox))
		return 0;
	if (!is_intermediate(mb))
		w->real++;
	kv = getcmd_mailbox_dlist(w->s, mb, false);
	emit(strncmp(bang ? bang + 1 : mb->name, "DELETED.", 8) == 0 ?
	    &w->deleted : &w->lines, &kv);
	if ((qr = quotaroot_of(w->s, mb->name, &tmp)) != NULL) {
		const struct dlist *r;
		bool have = false;

		for (r = w->roots->head; r != NULL; r = r->next)
			have |= strcmp(r->s, qr) == 0;
		if (!have)
			dlist_add_atom(w->roots, NULL, qr);
	}
	buf_free(&tmp);
	return 0;
}

static enum result_code
get_user(struct shadow *s, const char *userid, const struct getcmd_ctx *ctx,
    struct buf *out)
{
	struct user_walk w = { s, ctx, BUF_INIT, BUF_INIT, NULL, 0 };
	const struct dlist *r;

	w.roots = dlist_new_list(NULL);
	shadow_mailbox_each_user(s, userid, user_mailbox_cb, &w);
	if (w.real > 0) {
		buf_append(out, w.lines.s, w.lines.len);
		buf_append(out, w.deleted.s, w.deleted.len);
		for (r = w.roots->head; r != NULL; r = r->next) {
			char *fields = NULL;
			struct dlist *q;

			if (shadow_quota_get(s, r->s, &fields) == 0 &&
			    (q = parse_value("QUOTA", fields)) != NULL)
				emit(out, &q);
			free(fields);
		}
		user_meta(s, userid, ctx, out);
	}
	buf_free(&w.lines);
	buf_free(&w.deleted);
	dlist_free(&w.roots);
	return RESULT_OK;
}

/* ---- GET FETCH_SIEVE ----------------------------------------------------- */

struct fetch_sieve {
	const char *user, *file;
	struct buf *out;
	bool found;
};

static int
fetch_sieve_cb(void *arg, const struct shadow_sieve *sv)
{
	struct fetch_sieve *f = arg;
	struct dlist *kv;

	if (strcmp(sv->filename, f->file) != 0)
		return 0;
	kv = dlist_new_kvlist("SIEVE");
	dlist_add_atom(kv, "USERID", f->user);
	dlist_add_atom(kv, "FILENAME", sv->filename);
	dlist_add_atom_n(kv, "CONTENT", sv->content, sv->content_len);
	emit(f->out, &kv);
	f->found = true;
	return 1;
}

static enum result_code
getcmd_fetch_sieve(struct shadow *s, const char *user, const char *file,
    struct buf *out, char *why, size_t why_len)
{
	struct fetch_sieve f = { user, file, out, false };

	shadow_sieve_each(s, user, fetch_sieve_cb, &f);
	if (!f.found) {
		snprintf(why, why_len, "no sieve script %s for %s", file, user);
		return RESULT_MAILBOX_NONEXISTENT;
	}
	return RESULT_OK;
}

/* ---- the dispatcher --------------------------------------------------- */

enum result_code
getcmd_answer(struct shadow *s, const struct dlist *e,
    const struct getcmd_ctx *ctx, struct buf *out, char *why, size_t why_len)
{
	const char *sub = e->key ? e->key : "";
	struct shadow_mailbox mb;
	const struct dlist *n;
	struct dlist *kv;

	why[0] = '\0';
	if (strcmp(sub, "USER") == 0 || strcmp(sub, "META") == 0) {
		/* A replica finds no user behind anything but a name. */
		if (e->type != DL_ATOM && strcmp(sub, "USER") == 0)
			return RESULT_OK;
		if (e->type != DL_ATOM)
			return RESULT_PROTOCOL_BAD_PARAMETERS;
		if (strcmp(sub, "USER") == 0)
			return get_user(s, e->s, ctx, out);
		user_meta(s, e->s, ctx, out);
		return RESULT_OK;
	}
	if (strcmp(sub, "MAILBOXES") == 0 || strcmp(sub, "UNIQUEIDS") == 0) {
		bool byname = sub[0] == 'M';

		/* Anything but a list is an empty list to a replica. */
		for (n = e->type == DL_LIST ? e->head : NULL; n != NULL;
		    n = n->next) {
			int r;

			if (n->type != DL_ATOM)
				continue;
			r = byname ? shadow_mailbox_by_name(s, n->s, &mb) :
			    shadow_mailbox_by_uniqueid(s, n->s, &mb);
			if (r < 0)
				continue;
			if (!is_tombstone(&mb)) {
				kv = getcmd_mailbox_dlist(s, &mb, false);
				emit(out, &kv);
			}
			shadow_mailbox_free(&mb);
		}
		return RESULT_OK;
	}
	if (strcmp(sub, "QUOTA") == 0) {
		char *fields = NULL;

		if (e->type != DL_ATOM)
			return RESULT_PROTOCOL_BAD_PARAMETERS;
		if (shadow_quota_get(s, e->s, &fields) == 0 &&
		    (kv = parse_value("QUOTA", fields)) != NULL)
			emit(out, &kv);
		free(fields);
		return RESULT_OK;
	}
	if (strcmp(sub, "ANNOTATION") == 0) {
		struct dlist *list;
		const struct dlist *a;

		if (e->type != DL_ATOM && e->type != DL_NIL)
			return RESULT_PROTOCOL_BAD_PARAMETERS;
		memset(&mb, 0, sizeof(mb));
		/* No such mailbox: nothing matches, as on a replica. */
		if (e->len && shadow_mailbox_by_name(s, e->s, &mb) < 0)
			return RESULT_OK;
		list = dlist_new_list(NULL);
		shadow_annot_each(s, e->len ? mb.uniqueid : "", add_annot_cb,
		    list);
		for (a = list->head; a != NULL; a = a->next) {
			if (!annotdef_listed(e->len == 0,
			    dlist_get(a, "ENTRY")->s))
				continue;
			kv = dlist_new_kvlist("ANNOTATION");
			dlist_add_atom(kv, "MBOXNAME", e->len ? e->s : "");
			dlist_add_atom(kv, "ENTRY", dlist_get(a, "ENTRY")->s);
			dlist_add_atom(kv, "USERID", dlist_get(a, "USERID")->s);
			dlist_add_atom_n(kv, "VALUE", dlist_get(a, "VALUE")->s,
			    dlist_get(a, "VALUE")->len);
			emit(out, &kv);
		}
		dlist_free(&list);
		shadow_mailbox_free(&mb);
		return RESULT_OK;
	}
	if (strcmp(sub, "FETCH_SIEVE") == 0) {
		const char *user, *file;

		if (e->type != DL_KVLIST ||
		    dlist_get_str(e, "USERID", &user) < 0 || user == NULL ||
		    dlist_get_str(e, "FILENAME", &file) < 0 || file == NULL)
			return RESULT_PROTOCOL_BAD_PARAMETERS;
		return getcmd_fetch_sieve(s, user, file, out, why, why_len);
	}
	snprintf(why, why_len, "unknown GET %s", sub);
	return RESULT_PROTOCOL_ERROR;
}

enum result_code
getcmd_fetch_open(struct shadow *s, const char *journal_dir,
    struct posidx *pi, const struct dlist *e, struct journal_body_stream **bs,
    uint32_t *raw_len, const char **part, char guid[41], char *why,
    size_t why_len)
{
	const char *name, *uniqueid;
	struct shadow_mailbox mb;
	struct shadow_record rec;
	struct shadow_body body;
	struct journal_record jr;
	uint64_t uid, seg = 0, off = 0;
	bool found;

	if (e->type != DL_KVLIST || dlist_get_str(e, "MBOXNAME", &name) < 0 ||
	    dlist_get_str(e, "PARTITION", part) < 0 || *part == NULL ||
	    dlist_get_str(e, "UNIQUEID", &uniqueid) < 0 || uniqueid == NULL ||
	    dlist_guid(dlist_get(e, "GUID"), guid) < 0 ||
	    dlist_get_num(e, "UID", &uid) < 0)
		return RESULT_PROTOCOL_BAD_PARAMETERS;
	if (shadow_mailbox_by_uniqueid(s, uniqueid, &mb) < 0 &&
	    (name == NULL || shadow_mailbox_by_name(s, name, &mb) < 0))
		return RESULT_MAILBOX_NONEXISTENT;
	memset(&rec, 0, sizeof(rec));
	found = shadow_record_get(s, mb.uniqueid, (uint32_t)uid, &rec) == 0 &&
	    strcmp(rec.guid, guid) == 0 && shadow_body_get(s, guid, &body) == 0;
	shadow_mailbox_free(&mb);
	shadow_record_free(&rec);
	if (!found) {
		snprintf(why, why_len, "no such message here");
		return RESULT_MAILBOX_NONEXISTENT;
	}
	if (pi == NULL || posidx_find(pi, body.lsn, &seg, &off, why,
	    why_len) < 0)
		seg = off = 0;		/* no hint: the segment is read */
	*bs = journal_body_stream_open_at(journal_dir, NULL, body.lsn, seg,
	    off, &jr, why, why_len);
	if (*bs == NULL)
		return RESULT_MAILBOX_NONEXISTENT;
	*raw_len = jr.raw_len;
	return RESULT_OK;
}
