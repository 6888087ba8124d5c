/*
 * apply.c -- APPLY subcommands against the shadow (sync-protocol.md 6).
 *
 * Each handler first checks everything it can without changing anything,
 * returning Cyrus's result code for a refusal; then it changes the
 * shadow.  A replica-side effect that the master does not see (modseq
 * bumps on APPLY ANNOTATION, quota modseq increments) is not emulated:
 * the shadow echoes the master's values, as design.md 1 asks.
 *
 * What a 3.6.1 replica refuses, the relay refuses with the same code
 * (tests/integration/test_differential.py compares them): UNMAILBOX of
 * a name no mailbox ever had (a name one left, by UNMAILBOX, RENAME or
 * UNUSER, holds a tombstone: OK), RENAME onto itself, an unknown
 * sub-command whatever its argument.  Where a replica reads a wrong
 * shape as empty (a UID that is not a list, an UNUSER of a list) so does
 * the relay.  A user's mailbox created before its parents gets them, as
 * on a replica (create_parents()); one deleted under its children
 * becomes an intermediate.  A record's user flags take the mailbox's
 * flag slots as they come (add_uflags(), shadow_names.c).  Quota, annotation and sieve APPLYs are in
 * apply_meta.c, the helpers in apply_util.c (apply_int.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_print.h"
#include "protocol/synccrc.h"
#include "storage/apply_int.h"
#include "storage/mboxname.h"
#include "storage/spill.h"

bool
apply_changes_state(const char *sub)
{
	return strcmp(sub, "RESERVE") != 0 && strcmp(sub, "MESSAGE") != 0 &&
	    strcmp(sub, "CAPABILITIES") != 0 && strcmp(sub, "FORCE") != 0;
}


/* The ANNOTATIONS list printed back to dlist text, or NULL if absent. */
static char *
annots_text(const struct dlist *kv)
{
	const struct dlist *a = dlist_get(kv, "ANNOTATIONS");
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct buf b = BUF_INIT;

	if (a == NULL || a->type != DL_LIST)
		return NULL;
	if (dlist_print_value(a, &b, &pr) < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_release(&b);
}

/* Normalised flags: system flags in Cyrus's order, then user flags. */
static char *
flags_text(const struct dlist *flags, bool *expunged)
{
	static const char *const sys[] = { "\\Deleted", "\\Answered",
		"\\Flagged", "\\Draft", "\\Seen" };
	struct buf b = BUF_INIT;
	const struct dlist *f, *g;
	size_t i;

	*expunged = false;
	for (i = 0; i < 5; i++)
		for (f = flags->head; f != NULL; f = f->next)
			if (f->s && strcasecmp(f->s, sys[i]) == 0) {
				buf_printf(&b, "%s%s", b.len ? " " : "", sys[i]);
				break;
			}
	for (f = flags->head; f != NULL; f = f->next) {
		bool dup = false;

		if (f->s == NULL || f->len == 0)
			continue;
		if (f->s[0] == '\\') {
			if (strcasecmp(f->s, "\\Expunged") == 0)
				*expunged = true;
			continue;
		}
		for (g = flags->head; g != f; g = g->next)
			if (g->s && strcasecmp(g->s, f->s) == 0)
				dup = true;
		if (!dup)
			buf_printf(&b, "%s%s", b.len ? " " : "", f->s);
	}
	return buf_release(&b);
}

/* Gives the user flags of a record's flag text their mailbox slots. */
static int
add_uflags(struct shadow *s, const char *uniqueid, const char *flags)
{
	const char *f = flags ? flags : "";
	int r = 0;

	while (*f && r == 0) {
		size_t n = strcspn(f, " ");

		if (n && f[0] != '\\') {
			char *flag = xmemdup0(f, n);

			r = shadow_uflag_add(s, uniqueid, flag);
			free(flag);
		}
		f += n + (f[n] == ' ');
	}
	return r;
}

/* Reads a RECORD kvlist into rec (caller frees the strings). */
static int
record_from_dlist(const struct dlist *r, struct shadow_record *rec)
{
	uint64_t uid, size;
	const struct dlist *flags = dlist_get(r, "FLAGS");

	memset(rec, 0, sizeof(*rec));
	if (r->type != DL_KVLIST || apply_req_num(r, "UID", &uid) < 0 ||
	    apply_req_num(r, "MODSEQ", &rec->modseq) < 0 ||
	    apply_req_num(r, "LAST_UPDATED", &rec->last_updated) < 0 ||
	    apply_req_num(r, "INTERNALDATE", &rec->internaldate) < 0 ||
	    apply_req_num(r, "SIZE", &size) < 0 ||
	    dlist_guid(dlist_get(r, "GUID"), rec->guid) < 0 ||
	    flags == NULL || flags->type != DL_LIST)
		return -EINVAL;
	rec->uid = (uint32_t)uid;
	rec->size = (uint32_t)size;
	rec->flags = flags_text(flags, &rec->expunged);
	rec->annotations = annots_text(r);
	return 0;
}

/* Replaces the mailbox-level annotation set from an ANNOTATIONS list. */
static int
set_mailbox_annots(struct shadow *s, const char *uniqueid,
    const struct dlist *list)
{
	struct shadow_annot *a = NULL;
	const struct dlist *e;
	size_t n = 0;
	int r;

	if (list != NULL && list->type == DL_LIST) {
		a = xcalloc(list->nchildren + 1, sizeof(*a));
		for (e = list->head; e != NULL; e = e->next) {
			const char *v;
			size_t vl;

			if (e->type != DL_KVLIST ||
			    (a[n].entry = apply_req_str(e, "ENTRY")) == NULL ||
			    (a[n].userid = apply_req_str(e, "USERID")) == NULL ||
			    dlist_str(dlist_get(e, "VALUE"), &v, &vl) < 0)
				continue;
			a[n].modseq = apply_opt_num(e, "MODSEQ");
			a[n].value = v;
			a[n].value_len = vl;
			if (v != NULL && vl > 0)
				n++;
		}
	}
	r = shadow_annots_set(s, uniqueid, a, n);
	free(a);
	return r;
}

static bool
contains(const char *s, char c)
{
	return s != NULL && strchr(s, c) != NULL;
}

/* Cyrus creates a missing mailbox with the master's header fields. */
static void
fill_header(struct shadow_mailbox *mb, const struct dlist *e)
{
	uint64_t hms = apply_opt_num(e, "HIGHESTMODSEQ");
	uint64_t fms = apply_opt_num(e, "FOLDERMODSEQ");

	mb->last_uid = (uint32_t)apply_opt_num(e, "LAST_UID");
	mb->highestmodseq = hms;
	mb->recentuid = (uint32_t)apply_opt_num(e, "RECENTUID");
	mb->recenttime = apply_opt_num(e, "RECENTTIME");
	mb->last_appenddate = apply_opt_num(e, "LAST_APPENDDATE");
	mb->pop3_last_login = apply_opt_num(e, "POP3_LAST_LOGIN");
	mb->pop3_show_after = apply_opt_num(e, "POP3_SHOW_AFTER");
	mb->xconvmodseq = apply_opt_num(e, "XCONVMODSEQ");
	mb->raclmodseq = apply_opt_num(e, "RACLMODSEQ");
	mb->uidvalidity = (uint32_t)apply_opt_num(e, "UIDVALIDITY");
	mb->createdmodseq = apply_opt_num(e, "CREATEDMODSEQ");
	mb->foldermodseq = fms ? fms : hms;
}

/*
 * A replica creates the missing parents of a user's new mailbox, below
 * an INBOX it has, as real empty mailboxes: the INBOX's ACL, the child's
 * partition and FOLDERMODSEQ, modseqs of 1.  So does the shadow, so that
 * GET USER shows the master what a replica would (and the master deletes
 * them if it has none).  A replica picks their uniqueid and UIDVALIDITY;
 * the shadow derives them from the child's, so the fold of the journal
 * stays the same.  Returns 0 or a negative errno.
 */
static int
create_parents(struct shadow *s, const struct shadow_mailbox *child)
{
	struct shadow_mailbox in, p, nmb;
	char user[512], inbox[512], *parent;
	const char *dot;
	size_t n;
	int r = 0;

	if (mboxname_userid(child->name, user, sizeof(user)) < 0 ||
	    mboxname_inbox(user, inbox, sizeof(inbox)) < 0)
		return 0;
	n = strlen(inbox);
	if (strncmp(child->name, inbox, n) != 0 || child->name[n] != '.' ||
	    shadow_mailbox_by_name(s, inbox, &in) < 0)
		return 0;
	for (dot = strchr(child->name + n + 1, '.'); dot != NULL && r == 0;
	    dot = strchr(dot + 1, '.')) {
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		char id[25];
		struct buf seed = BUF_INIT;
		int i;

		parent = xmemdup0(child->name, (size_t)(dot - child->name));
		if (shadow_mailbox_by_name(s, parent, &p) == 0) {
			shadow_mailbox_free(&p);
			free(parent);
			continue;
		}
		buf_printf(&seed, "%s/%s", child->uniqueid, parent);
		EVP_Digest(seed.s, seed.len, d, &dl, EVP_sha1(), NULL);
		buf_free(&seed);
		for (i = 0; i < 12; i++)
			snprintf(id + 2 * i, 3, "%02x", d[i]);
		memset(&nmb, 0, sizeof(nmb));
		nmb.uniqueid = id;
		nmb.name = parent;
		nmb.partition = child->partition;
		nmb.acl = in.acl;
		nmb.options = (char *)(uintptr_t)"P";
		nmb.uidvalidity = child->uidvalidity;
		nmb.highestmodseq = 1;
		nmb.createdmodseq = 1;
		nmb.foldermodseq = child->foldermodseq;
		r = shadow_mailbox_put(s, &nmb);
		free(parent);
	}
	shadow_mailbox_free(&in);
	return r;
}

/* What the passes over an APPLY MAILBOX's records share. */
struct rec_pass {
	struct shadow *s;
	const struct apply_ctx *ctx;
	struct spill *spill;	/* the records, if not in the entry */
	struct apply_outcome *out;
	const char *name;
	struct shadow_mailbox *cur;
	uint64_t last_uid;	/* the command's LAST_UID */
	uint32_t prev_uid;
};

/*
 * Calls fn for each RECORD element in order: from the entry's list, or,
 * for a big command, read back from its spill file one at a time.
 * Returns fn's first non-zero return, or a negative errno (the spill
 * could not be read: refused as a storage failure).
 */
static int
each_record(const struct dlist *records, struct rec_pass *rp,
    int (*fn)(void *, const struct dlist *))
{
	const struct dlist *rl;
	int r;

	if (rp->spill != NULL) {
		r = spill_each(rp->spill, fn, rp);
		if (r < 0)
			apply_fail(rp->out, RESULT_UNKNOWN, "%s: cannot read "
			    "the spilled records: %s", rp->name, strerror(-r));
		return r;
	}
	for (rl = records->head; rl != NULL; rl = rl->next)
		if ((r = fn(rp, rl)) != 0)
			return r;
	return 0;
}

/* A new mailbox: refused if a live record's body never came (1). */
static int
pass_missing_body(void *arg, const struct dlist *rl)
{
	struct rec_pass *rp = arg;
	struct shadow_record rec;
	struct shadow_body body;
	bool missing;

	if (record_from_dlist(rl, &rec) < 0) {
		shadow_record_free(&rec);
		return 0;	/* refused below, as Cyrus does */
	}
	missing = !rec.expunged && shadow_body_get(rp->s, rec.guid, &body) != 0;
	if (missing)
		apply_fail(rp->out, RESULT_PROTOCOL_ERROR, "%s: UID %u "
		    "needs message %s, which was never uploaded", rp->name,
		    rec.uid, rec.guid);
	shadow_record_free(&rec);
	return missing;
}

/* The dry run: 1 (refused, out filled) or 0 for each record. */
static int
pass_check(void *arg, const struct dlist *rl)
{
	struct rec_pass *rp = arg;
	const struct apply_ctx *ctx = rp->ctx;
	struct shadow_record rec, old;
	struct shadow_body body;
	enum result_code bad = RESULT_OK;

	if (record_from_dlist(rl, &rec) < 0 || rec.uid <= rp->prev_uid) {
		shadow_record_free(&rec);
		apply_fail(rp->out, RESULT_PROTOCOL_ERROR, "%s: bad or "
		    "unordered RECORD after UID %u", rp->name, rp->prev_uid);
		return 1;
	}
	rp->prev_uid = rec.uid;
	if (shadow_record_get(rp->s, rp->cur->uniqueid, rec.uid, &old) == 0) {
		if (!(old.expunged && rec.expunged)) {
			if (strcmp(old.guid, rec.guid) != 0 ||
			    (old.modseq > rec.modseq && !ctx->force &&
			    !ctx->replay) ||
			    (old.expunged && !rec.expunged))
				bad = RESULT_SYNC_CHECKSUM;
		}
		shadow_record_free(&old);
	} else if (rec.uid <= rp->cur->last_uid) {
		if (!rec.expunged)
			bad = RESULT_SYNC_CHECKSUM;
	} else if (rec.uid > rp->last_uid) {
		bad = RESULT_PROTOCOL_ERROR;
	} else if (!rec.expunged && !ctx->replay &&
	    shadow_body_get(rp->s, rec.guid, &body) != 0) {
		apply_fail(rp->out, RESULT_PROTOCOL_ERROR, "%s: UID %u needs "
		    "message %s, which was never uploaded", rp->name,
		    rec.uid, rec.guid);
		shadow_record_free(&rec);
		return 1;
	}
	shadow_record_free(&rec);
	if (bad != RESULT_OK) {
		apply_fail(rp->out, bad, "%s: record UID %u disagrees with "
		    "ours", rp->name, rp->prev_uid);
		return 1;
	}
	return 0;
}

/* Stores one record (checked by pass_check); 1 on a storage failure. */
static int
pass_store(void *arg, const struct dlist *rl)
{
	struct rec_pass *rp = arg;
	struct shadow *s = rp->s;
	struct shadow_record rec, old;
	struct shadow_body body;
	int r;

	record_from_dlist(rl, &rec);
	if (shadow_record_get(s, rp->cur->uniqueid, rec.uid, &old) == 0) {
		bool skip = old.expunged && rec.expunged;

		/* An update keeps our GUID and size. */
		rec.size = old.size;
		shadow_record_free(&old);
		if (skip) {
			shadow_record_free(&rec);
			return 0;
		}
	} else if (rec.uid <= rp->cur->last_uid) {
		shadow_record_free(&rec);	/* expunged: ignored */
		return 0;
	} else {
		if (shadow_body_get(s, rec.guid, &body) == 0)
			rec.size = body.size;	/* the real size */
		/* Replaying this append will need the body. */
		shadow_body_need(s, rec.guid);
	}
	r = add_uflags(s, rp->cur->uniqueid, rec.flags);
	if (r == 0)
		r = shadow_record_put(s, rp->cur->uniqueid, &rec);
	shadow_record_free(&rec);
	if (r < 0) {
		apply_fail(rp->out, r == -EINVAL ? RESULT_PROTOCOL_ERROR :
		    RESULT_UNKNOWN, "%s: cannot store a record: %s",
		    rp->name, strerror(-r));
		return 1;
	}
	return 0;
}

static void
apply_mailbox(struct shadow *s, const struct dlist *e, struct spill *spill,
    const struct apply_ctx *ctx, struct apply_outcome *out)
{
	const char *uniqueid = apply_req_str(e, "UNIQUEID");
	const char *name = apply_req_str(e, "MBOXNAME"), *mbtype = NULL;
	const char *partition, *acl, *options;
	const struct dlist *records;
	struct shadow_mailbox cur, byid, nmb;
	struct rec_pass rp = { s, ctx, spill, out, name, &cur, 0, 0 };
	bool exists, created = false;
	uint64_t hms, v, since;
	int r;

	memset(&cur, 0, sizeof(cur));
	if (uniqueid == NULL || name == NULL ||
	    apply_req_num(e, "HIGHESTMODSEQ", &hms) < 0) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS,
		    "MAILBOX needs UNIQUEID, MBOXNAME and HIGHESTMODSEQ");
		return;
	}
	if (dlist_get(e, "MBOXTYPE") != NULL &&
	    dlist_get_str(e, "MBOXTYPE", &mbtype) < 0) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "bad MBOXTYPE");
		return;
	}
	if (contains(mbtype, 'f') && !ctx->sieve_mailbox && !ctx->replay) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS,
		    "sieve mailbox %s without SIEVE-MAILBOX", name);
		return;
	}
	if (contains(mbtype, 'i') || contains(mbtype, 'd')) {
		/* Intermediate or tombstone: just the entry. */
		memset(&nmb, 0, sizeof(nmb));
		nmb.uniqueid = (char *)(uintptr_t)uniqueid;
		nmb.name = (char *)(uintptr_t)name;
		nmb.mbtype = (char *)(uintptr_t)mbtype;
		nmb.acl = (char *)(uintptr_t)"";
		nmb.options = (char *)(uintptr_t)"";
		nmb.createdmodseq = apply_opt_num(e, "CREATEDMODSEQ");
		nmb.foldermodseq = hms;
		if (shadow_mailbox_by_name(s, name, &cur) == 0) {
			if (strcmp(cur.uniqueid, uniqueid) != 0)
				shadow_mailbox_delete(s, cur.uniqueid);
			shadow_mailbox_free(&cur);
		}
		if ((r = shadow_mailbox_put(s, &nmb)) < 0)
			apply_storage_error(out, s, r);
		else
			out->code = RESULT_OK;
		out->changed = r == 0;
		return;
	}
	partition = apply_req_str(e, "PARTITION");
	acl = apply_req_str(e, "ACL");
	options = apply_req_str(e, "OPTIONS");
	records = dlist_get(e, "RECORD");
	if (partition == NULL || acl == NULL || options == NULL ||
	    records == NULL || records->type != DL_LIST ||
	    apply_req_num(e, "LAST_UID", &v) < 0 || apply_req_num(e, "RECENTUID", &v) < 0 ||
	    apply_req_num(e, "RECENTTIME", &v) < 0 ||
	    apply_req_num(e, "LAST_APPENDDATE", &v) < 0 ||
	    apply_req_num(e, "POP3_LAST_LOGIN", &v) < 0 ||
	    apply_req_num(e, "UIDVALIDITY", &v) < 0) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS,
		    "MAILBOX %s lacks a required field", name);
		return;
	}

	exists = shadow_mailbox_by_name(s, name, &cur) == 0;
	if (exists && strcmp(cur.uniqueid, uniqueid) != 0) {
		if (!ctx->force && !ctx->replay && cur.last_uid != 0) {
			apply_fail(out, RESULT_MAILBOX_MOVED, "%s exists with "
			    "uniqueid %s, not %s", name, cur.uniqueid, uniqueid);
			shadow_mailbox_free(&cur);
			return;
		}
		shadow_mailbox_delete(s, cur.uniqueid);
		shadow_mailbox_free(&cur);
		exists = false;
		out->changed = true;
	}
	if (!exists && !ctx->replay) {
		/*
		 * A real replica would die on a live record whose message it
		 * never received; the relay refuses it, and before creating
		 * anything, so nothing of the refused command is kept.
		 */
		if (each_record(records, &rp, pass_missing_body) != 0)
			return;
	}
	if (!exists) {
		if (shadow_mailbox_by_uniqueid(s, uniqueid, &byid) == 0) {
			apply_fail(out, RESULT_MAILBOX_MOVED, "uniqueid %s is %s, "
			    "not %s", uniqueid, byid.name, name);
			shadow_mailbox_free(&byid);
			return;
		}
		memset(&nmb, 0, sizeof(nmb));
		nmb.uniqueid = (char *)(uintptr_t)uniqueid;
		nmb.name = (char *)(uintptr_t)name;
		nmb.mbtype = (char *)(uintptr_t)mbtype;
		nmb.partition = (char *)(uintptr_t)partition;
		nmb.acl = (char *)(uintptr_t)acl;
		nmb.options = (char *)(uintptr_t)options;
		nmb.uidvalidity = (uint32_t)apply_opt_num(e, "UIDVALIDITY");
		nmb.createdmodseq = apply_opt_num(e, "CREATEDMODSEQ");
		nmb.foldermodseq = apply_opt_num(e, "FOLDERMODSEQ");
		if ((r = shadow_mailbox_put(s, &nmb)) < 0 ||
		    (!ctx->seed && (r = create_parents(s, &nmb)) < 0) ||
		    (r = shadow_mailbox_by_name(s, name, &cur)) < 0) {
			apply_storage_error(out, s, r);
			return;
		}
		created = true;
		out->changed = true;
	}
	/* SINCE check: the master's idea of us must still hold. */
	since = apply_opt_num(e, "SINCE_MODSEQ");
	if (since != 0 && (since != cur.highestmodseq ||
	    !synccrc_match((uint32_t)apply_opt_num(e, "SINCE_CRC"),
	    (uint32_t)apply_opt_num(e, "SINCE_CRC_ANNOT"), cur.sync_crc,
	    cur.sync_crc_annot))) {
		apply_fail(out, RESULT_SYNC_CHANGED, "%s: SINCE_MODSEQ %llu, have "
		    "%llu", name, (unsigned long long)since,
		    (unsigned long long)cur.highestmodseq);
		goto done;
	}
	if ((cur.mbtype == NULL) != (mbtype == NULL) ||
	    (mbtype && strcmp(cur.mbtype, mbtype) != 0)) {
		apply_fail(out, RESULT_UNKNOWN, "%s: type %s, not %s", name,
		    cur.mbtype ? cur.mbtype : "e", mbtype ? mbtype : "e");
		goto done;
	}
	if (!ctx->force && !ctx->replay && !created &&
	    (hms < cur.highestmodseq ||
	    apply_opt_num(e, "UIDVALIDITY") < cur.uidvalidity ||
	    apply_opt_num(e, "LAST_UID") < cur.last_uid)) {
		apply_fail(out, RESULT_SYNC_CHECKSUM, "%s: the master is behind "
		    "us (modseq %llu < %llu or uidvalidity or last_uid)", name,
		    (unsigned long long)hms,
		    (unsigned long long)cur.highestmodseq);
		goto done;
	}
	/* Dry run over the records. */
	rp.last_uid = apply_opt_num(e, "LAST_UID");
	if (each_record(records, &rp, pass_check) != 0)
		goto done;
	/* From here on, changes stand even if the final check fails. */
	out->changed = true;
	nmb = cur;
	fill_header(&nmb, e);
	nmb.acl = (char *)(uintptr_t)acl;
	nmb.options = (char *)(uintptr_t)options;
	if ((r = shadow_mailbox_put(s, &nmb)) < 0 ||
	    (r = set_mailbox_annots(s, cur.uniqueid,
	    dlist_get(e, "ANNOTATIONS"))) < 0) {
		apply_storage_error(out, s, r);
		goto done;
	}
	if (each_record(records, &rp, pass_store) != 0)
		goto done;
	/* The final CRC check, against what we now hold. */
	shadow_mailbox_free(&cur);
	if ((r = shadow_mailbox_by_name(s, name, &cur)) < 0) {
		apply_storage_error(out, s, r);
		return;
	}
	if (!synccrc_match((uint32_t)apply_opt_num(e, "SYNC_CRC"),
	    (uint32_t)apply_opt_num(e, "SYNC_CRC_ANNOT"), cur.sync_crc,
	    cur.sync_crc_annot)) {
		apply_fail(out, RESULT_SYNC_CHECKSUM, "%s: CRCs %llu/%llu, ours "
		    "%u/%u", name, (unsigned long long)apply_opt_num(e, "SYNC_CRC"),
		    (unsigned long long)apply_opt_num(e, "SYNC_CRC_ANNOT"),
		    cur.sync_crc, cur.sync_crc_annot);
		goto done;
	}
	out->code = RESULT_OK;
done:
	shadow_mailbox_free(&cur);
}

/* Does any mailbox live below name ("name.")? */
static int
has_children_cb(void *arg, const struct shadow_mailbox *mb)
{
	const char *name = arg;
	size_t n = strlen(name);

	return strncmp(mb->name, name, n) == 0 && mb->name[n] == '.' ? 1 : 0;
}

static void
apply_unmailbox(struct shadow *s, const struct dlist *e,
    struct apply_outcome *out)
{
	struct shadow_mailbox mb;
	char user[512];
	int r;

	if (e->type != DL_ATOM || shadow_mailbox_by_name(s, e->s, &mb) < 0) {
		/* A tombstone is deleted again silently; no name at all is
		 * refused, as Cyrus does. */
		if (e->type == DL_ATOM && shadow_gone_has(s, e->s))
			out->code = RESULT_OK;
		else
			apply_fail(out, RESULT_MAILBOX_NONEXISTENT, "no mailbox "
			    "%s", e->type == DL_ATOM ? e->s : "(not a name)");
		return;
	}
	out->changed = true;
	if (mboxname_userid(e->s, user, sizeof(user)) == 0 &&
	    shadow_mailbox_each_user(s, user, has_children_cb,
	    (void *)(uintptr_t)e->s) == 1) {
		/* A user's mailbox with children becomes an intermediate. */
		struct shadow_mailbox im;

		memset(&im, 0, sizeof(im));
		im.uniqueid = mb.uniqueid;
		im.name = mb.name;
		im.mbtype = (char *)(uintptr_t)"ei";
		im.acl = (char *)(uintptr_t)"";
		im.options = (char *)(uintptr_t)"";
		im.createdmodseq = mb.createdmodseq;
		/* A replica keeps its UIDVALIDITY and stamps the change. */
		im.uidvalidity = mb.uidvalidity;
		im.foldermodseq = mb.highestmodseq;
		r = shadow_mailbox_delete(s, mb.uniqueid);
		if (r == 0)
			r = shadow_mailbox_put(s, &im);
	} else {
		r = shadow_mailbox_delete(s, mb.uniqueid);
	}
	if (r < 0)
		apply_storage_error(out, s, r);
	else
		out->code = RESULT_OK;
	shadow_mailbox_free(&mb);
}

static void
apply_rename(struct shadow *s, const struct dlist *e,
    struct apply_outcome *out)
{
	const char *old = apply_req_str(e, "OLDMBOXNAME"), *new = apply_req_str(e,
	    "NEWMBOXNAME"), *part = apply_req_str(e, "PARTITION");
	struct shadow_mailbox mb, other;
	char ou[512], nu[512];
	uint64_t uv;
	int r;

	if (old == NULL || new == NULL || part == NULL) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "RENAME needs "
		    "OLDMBOXNAME, NEWMBOXNAME and PARTITION");
		return;
	}
	if (shadow_mailbox_by_name(s, old, &mb) < 0) {
		apply_fail(out, RESULT_MAILBOX_NONEXISTENT, "%s does not exist",
		    old);
		return;
	}
	if (strcmp(old, new) == 0 && mb.partition &&
	    strcmp(mb.partition, part) == 0) {
		shadow_mailbox_free(&mb);
		apply_fail(out, RESULT_UNKNOWN, "%s renamed onto itself", old);
		return;
	}
	if (strcmp(old, new) != 0 &&
	    shadow_mailbox_by_name(s, new, &other) == 0) {
		shadow_mailbox_free(&other);
		shadow_mailbox_free(&mb);
		apply_fail(out, RESULT_UNKNOWN, "%s already exists", new);
		return;
	}
	if (mboxname_userid(old, ou, sizeof(ou)) == 0 &&
	    mboxname_inbox(ou, nu, sizeof(nu)) == 0 && strcmp(nu, old) == 0 &&
	    (mboxname_userid(new, nu, sizeof(nu)) < 0 || strcmp(nu, ou) != 0)) {
		shadow_mailbox_free(&mb);
		apply_fail(out, RESULT_MAILBOX_NOTSUPPORTED, "cannot move the "
		    "INBOX %s into %s", old, new);
		return;
	}
	free(mb.name);
	mb.name = xstrdup(new);
	free(mb.partition);
	mb.partition = xstrdup(part);
	if (dlist_get_num(e, "UIDVALIDITY", &uv) == 0)
		mb.uidvalidity = (uint32_t)uv;
	mb.foldermodseq = mb.highestmodseq;
	r = shadow_mailbox_put(s, &mb);
	if (r == 0 && strcmp(old, new) != 0)
		r = shadow_gone_put(s, old);	/* a replica's tombstone */
	if (r < 0)
		apply_storage_error(out, s, r);
	else
		out->code = RESULT_OK;
	out->changed = r == 0;
	shadow_mailbox_free(&mb);
}

static void
apply_expunge(struct shadow *s, const struct dlist *e,
    struct apply_outcome *out)
{
	const char *name = apply_req_str(e, "MBOXNAME"), *uid = apply_req_str(e,
	    "UNIQUEID");
	const struct dlist *uids = dlist_get(e, "UID"), *u;
	struct shadow_mailbox mb;
	bool last_missing = false;
	int r;

	if (name == NULL || uid == NULL || uids == NULL) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "EXPUNGE needs "
		    "MBOXNAME, UNIQUEID and UID");
		return;
	}
	if (shadow_mailbox_by_name(s, name, &mb) < 0) {
		apply_fail(out, RESULT_MAILBOX_NONEXISTENT, "%s does not exist",
		    name);
		return;
	}
	if (strcmp(mb.uniqueid, uid) != 0) {
		apply_fail(out, RESULT_MAILBOX_MOVED, "%s is %s, not %s", name,
		    mb.uniqueid, uid);
		shadow_mailbox_free(&mb);
		return;
	}
	/* A UID that is not a list is an empty list to a replica. */
	for (u = uids->type == DL_LIST ? uids->head : NULL; u != NULL;
	    u = u->next) {
		struct shadow_record rec;
		uint64_t n;

		last_missing = true;
		if (dlist_num(u, &n) < 0 ||
		    shadow_record_get(s, mb.uniqueid, (uint32_t)n, &rec) < 0)
			continue;
		last_missing = false;
		if (!rec.expunged) {
			rec.expunged = true;
			r = shadow_record_put(s, mb.uniqueid, &rec);
			out->changed = true;
			if (r < 0) {
				shadow_record_free(&rec);
				apply_storage_error(out, s, r);
				goto done;
			}
		}
		shadow_record_free(&rec);
	}
	if (last_missing)
		apply_fail(out, RESULT_UNKNOWN, "%s: the last UID to expunge is "
		    "not there", name);
	else
		out->code = RESULT_OK;
done:
	shadow_mailbox_free(&mb);
}


static void
apply_seen(struct shadow *s, const struct dlist *e, struct apply_outcome *out)
{
	struct shadow_seen v;
	uint64_t lastuid;

	memset(&v, 0, sizeof(v));
	if ((v.userid = apply_req_str(e, "USERID")) == NULL ||
	    (v.uniqueid = apply_req_str(e, "UNIQUEID")) == NULL ||
	    apply_req_num(e, "LASTREAD", &v.lastread) < 0 ||
	    apply_req_num(e, "LASTUID", &lastuid) < 0 ||
	    apply_req_num(e, "LASTCHANGE", &v.lastchange) < 0 ||
	    (v.seenuids = apply_req_str(e, "SEENUIDS")) == NULL) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "SEEN needs USERID, "
		    "UNIQUEID, LASTREAD, LASTUID, LASTCHANGE, SEENUIDS");
		return;
	}
	v.lastuid = (uint32_t)lastuid;
	apply_changed(out, s, shadow_seen_put(s, &v));
}

static void
apply_sub(struct shadow *s, const struct dlist *e, bool on,
    struct apply_outcome *out)
{
	const char *user = apply_req_str(e, "USERID"), *name = apply_req_str(e, "MBOXNAME");

	if (user == NULL || name == NULL) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "SUB needs USERID "
		    "and MBOXNAME");
		return;
	}
	apply_changed(out, s, shadow_sub_set(s, user, name, on));
}


struct user_boxes {
	char **uniqueids;
	size_t n;
};

static int
collect_user_boxes(void *arg, const struct shadow_mailbox *mb)
{
	struct user_boxes *u = arg;
	const char *bang = strchr(mb->name, '!');

	/* A user's delayed-delete mailboxes stay, as on a replica. */
	if (strncmp(bang ? bang + 1 : mb->name, "DELETED.", 8) == 0)
		return 0;
	u->uniqueids = xreallocarray(u->uniqueids, u->n + 1, sizeof(char *));
	u->uniqueids[u->n++] = xstrdup(mb->uniqueid);
	return 0;
}

static void
apply_unuser(struct shadow *s, const struct dlist *e, struct apply_outcome *out)
{
	struct user_boxes u = { NULL, 0 };
	char inbox[512];
	size_t i;
	int r = 0;

	/* No userid (not a name, or "") is nothing to do, as on a
	 * replica. */
	out->code = RESULT_OK;
	if (e->type != DL_ATOM || *e->s == '\0')
		return;
	shadow_mailbox_each_user(s, e->s, collect_user_boxes, &u);
	for (i = 0; i < u.n; i++) {
		if (r == 0)
			r = shadow_mailbox_delete(s, u.uniqueids[i]);
		free(u.uniqueids[i]);
	}
	free(u.uniqueids);
	if (r == 0)
		r = shadow_user_forget(s, e->s);
	if (r == 0 && mboxname_inbox(e->s, inbox, sizeof(inbox)) == 0)
		r = shadow_quota_delete(s, inbox);
	if (r < 0)
		apply_storage_error(out, s, r);
	out->changed = true;
}

static void
apply_any(struct shadow *s, const struct dlist *e, struct spill *spill,
    const struct apply_ctx *ctx, struct apply_outcome *out)
{
	const char *sub = e->key ? e->key : "";

	static const char *const known[] = { "MAILBOX", "UNMAILBOX", "RENAME",
	    "EXPUNGE", "QUOTA", "UNQUOTA", "ANNOTATION", "UNANNOTATION",
	    "SEEN", "SUB", "UNSUB", "SIEVE", "UNSIEVE", "ACTIVATE_SIEVE",
	    "UNACTIVATE_SIEVE", "UNUSER" };
	size_t i;

	memset(out, 0, sizeof(*out));
	out->code = RESULT_PROTOCOL_ERROR;
	if (!strncmp(sub, "LOCAL_", 6) && (!strcmp(sub + 6, "MAILBOX") ||
	    !strcmp(sub + 6, "UNMAILBOX") || !strcmp(sub + 6, "RENAME") ||
	    !strcmp(sub + 6, "UNUSER")))
		sub += 6;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(sub, known[i]) == 0)
			break;
	if (i == sizeof(known) / sizeof(known[0]))
		apply_fail(out, RESULT_PROTOCOL_ERROR, "unknown APPLY %s", sub);
	else if (strcmp(sub, "MAILBOX") == 0 && e->type == DL_KVLIST)
		apply_mailbox(s, e, spill, ctx, out);
	else if (strcmp(sub, "MAILBOX") == 0)
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "MAILBOX needs a "
		    "kvlist");
	else if (strcmp(sub, "UNMAILBOX") == 0)
		apply_unmailbox(s, e, out);
	else if (e->type != DL_KVLIST && strcmp(sub, "UNQUOTA") != 0 &&
	    strcmp(sub, "UNUSER") != 0)
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "%s needs a kvlist",
		    sub);
	else if (strcmp(sub, "RENAME") == 0)
		apply_rename(s, e, out);
	else if (strcmp(sub, "EXPUNGE") == 0)
		apply_expunge(s, e, out);
	else if (strcmp(sub, "QUOTA") == 0)
		apply_quota(s, e, true, out);
	else if (strcmp(sub, "UNQUOTA") == 0)
		apply_quota(s, e, false, out);
	else if (strcmp(sub, "ANNOTATION") == 0)
		apply_annotation(s, e, true, ctx->replay, out);
	else if (strcmp(sub, "UNANNOTATION") == 0)
		apply_annotation(s, e, false, ctx->replay, out);
	else if (strcmp(sub, "SEEN") == 0)
		apply_seen(s, e, out);
	else if (strcmp(sub, "SUB") == 0)
		apply_sub(s, e, true, out);
	else if (strcmp(sub, "UNSUB") == 0)
		apply_sub(s, e, false, out);
	else if (strcmp(sub, "SIEVE") == 0 || strcmp(sub, "UNSIEVE") == 0 ||
	    strcmp(sub, "ACTIVATE_SIEVE") == 0 ||
	    strcmp(sub, "UNACTIVATE_SIEVE") == 0)
		apply_sieve(s, sub, e, out);
	else if (strcmp(sub, "UNUSER") == 0)
		apply_unuser(s, e, out);
	else
		apply_fail(out, RESULT_PROTOCOL_ERROR, "unknown APPLY %s", sub);
}

void
apply_command(struct shadow *s, const struct dlist *e,
    const struct apply_ctx *ctx, struct apply_outcome *out)
{
	apply_any(s, e, NULL, ctx, out);
}

void
apply_command_spilled(struct shadow *s, const struct dlist *e,
    struct spill *records, const struct apply_ctx *ctx,
    struct apply_outcome *out)
{
	apply_any(s, e, records, ctx, out);
}
