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
 * UNUSER, holds a tombstone: OK), RENAME onto itself, annotations Cyrus
 * does not define or in the wrong type (storage/annotdef.c), QUOTA of
 * the root "", UNSIEVE of a script that is not there.  Where a replica
 * reads a wrong shape as empty (a UID that is not a list, an UNUSER of
 * a list) so does the relay.  A user's mailbox created before its
 * parents gets them, as on a replica (create_parents()); one deleted
 * under its children becomes an intermediate.  QUOTA is stored as a replica prints it
 * (LIMIT and STORAGE both the storage limit, then MODSEQ: the master's,
 * else the one stored before).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "protocol/synccrc.h"
#include "storage/annotdef.h"
#include "storage/apply.h"
#include "storage/mboxname.h"

static void
outcome(struct apply_outcome *out, enum result_code code, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
outcome(struct apply_outcome *out, enum result_code code, const char *fmt,
    ...)
{
	va_list ap;

	out->code = code;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
}

static void
storage_error(struct apply_outcome *out, struct shadow *s, int r)
{
	outcome(out, RESULT_UNKNOWN, "shadow: %s (%s)", strerror(-r),
	    shadow_errmsg(s));
}

/* Ends a handler whose one change returned r. */
static void
changed(struct apply_outcome *out, struct shadow *s, int r)
{
	if (r < 0) {
		storage_error(out, s, r);
		return;
	}
	out->changed = true;
	out->code = RESULT_OK;
}

bool
apply_changes_state(const char *sub)
{
	return strcmp(sub, "RESERVE") != 0 && strcmp(sub, "MESSAGE") != 0 &&
	    strcmp(sub, "CAPABILITIES") != 0 && strcmp(sub, "FORCE") != 0;
}

/* A required string field (NIL refused). */
static const char *
req_str(const struct dlist *kv, const char *key)
{
	const char *s;

	if (dlist_get_str(kv, key, &s) < 0)
		return NULL;
	return s;
}

static int
req_num(const struct dlist *kv, const char *key, uint64_t *v)
{
	return dlist_get_num(kv, key, v);
}

static uint64_t
opt_num(const struct dlist *kv, const char *key)
{
	uint64_t v = 0;

	return dlist_get_num(kv, key, &v) == 0 ? v : 0;
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

/* Reads a RECORD kvlist into rec (caller frees the strings). */
static int
record_from_dlist(const struct dlist *r, struct shadow_record *rec)
{
	uint64_t uid, size;
	const struct dlist *flags = dlist_get(r, "FLAGS");

	memset(rec, 0, sizeof(*rec));
	if (r->type != DL_KVLIST || req_num(r, "UID", &uid) < 0 ||
	    req_num(r, "MODSEQ", &rec->modseq) < 0 ||
	    req_num(r, "LAST_UPDATED", &rec->last_updated) < 0 ||
	    req_num(r, "INTERNALDATE", &rec->internaldate) < 0 ||
	    req_num(r, "SIZE", &size) < 0 ||
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
			    (a[n].entry = req_str(e, "ENTRY")) == NULL ||
			    (a[n].userid = req_str(e, "USERID")) == NULL ||
			    dlist_str(dlist_get(e, "VALUE"), &v, &vl) < 0)
				continue;
			a[n].modseq = opt_num(e, "MODSEQ");
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
	uint64_t hms = opt_num(e, "HIGHESTMODSEQ");
	uint64_t fms = opt_num(e, "FOLDERMODSEQ");

	mb->last_uid = (uint32_t)opt_num(e, "LAST_UID");
	mb->highestmodseq = hms;
	mb->recentuid = (uint32_t)opt_num(e, "RECENTUID");
	mb->recenttime = opt_num(e, "RECENTTIME");
	mb->last_appenddate = opt_num(e, "LAST_APPENDDATE");
	mb->pop3_last_login = opt_num(e, "POP3_LAST_LOGIN");
	mb->pop3_show_after = opt_num(e, "POP3_SHOW_AFTER");
	mb->xconvmodseq = opt_num(e, "XCONVMODSEQ");
	mb->raclmodseq = opt_num(e, "RACLMODSEQ");
	mb->uidvalidity = (uint32_t)opt_num(e, "UIDVALIDITY");
	mb->createdmodseq = opt_num(e, "CREATEDMODSEQ");
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

static void
apply_mailbox(struct shadow *s, const struct dlist *e,
    const struct apply_ctx *ctx, struct apply_outcome *out)
{
	const char *uniqueid = req_str(e, "UNIQUEID");
	const char *name = req_str(e, "MBOXNAME"), *mbtype = NULL;
	const char *partition, *acl, *options;
	const struct dlist *records, *rl;
	struct shadow_mailbox cur, byid, nmb;
	bool exists, created = false;
	uint64_t hms, v, since;
	uint32_t prev_uid = 0;
	int r;

	memset(&cur, 0, sizeof(cur));
	if (uniqueid == NULL || name == NULL ||
	    req_num(e, "HIGHESTMODSEQ", &hms) < 0) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS,
		    "MAILBOX needs UNIQUEID, MBOXNAME and HIGHESTMODSEQ");
		return;
	}
	if (dlist_get(e, "MBOXTYPE") != NULL &&
	    dlist_get_str(e, "MBOXTYPE", &mbtype) < 0) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "bad MBOXTYPE");
		return;
	}
	if (contains(mbtype, 'f') && !ctx->sieve_mailbox && !ctx->replay) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS,
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
		nmb.createdmodseq = opt_num(e, "CREATEDMODSEQ");
		nmb.foldermodseq = hms;
		if (shadow_mailbox_by_name(s, name, &cur) == 0) {
			if (strcmp(cur.uniqueid, uniqueid) != 0)
				shadow_mailbox_delete(s, cur.uniqueid);
			shadow_mailbox_free(&cur);
		}
		if ((r = shadow_mailbox_put(s, &nmb)) < 0)
			storage_error(out, s, r);
		else
			out->code = RESULT_OK;
		out->changed = r == 0;
		return;
	}
	partition = req_str(e, "PARTITION");
	acl = req_str(e, "ACL");
	options = req_str(e, "OPTIONS");
	records = dlist_get(e, "RECORD");
	if (partition == NULL || acl == NULL || options == NULL ||
	    records == NULL || records->type != DL_LIST ||
	    req_num(e, "LAST_UID", &v) < 0 || req_num(e, "RECENTUID", &v) < 0 ||
	    req_num(e, "RECENTTIME", &v) < 0 ||
	    req_num(e, "LAST_APPENDDATE", &v) < 0 ||
	    req_num(e, "POP3_LAST_LOGIN", &v) < 0 ||
	    req_num(e, "UIDVALIDITY", &v) < 0) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS,
		    "MAILBOX %s lacks a required field", name);
		return;
	}

	exists = shadow_mailbox_by_name(s, name, &cur) == 0;
	if (exists && strcmp(cur.uniqueid, uniqueid) != 0) {
		if (!ctx->force && !ctx->replay && cur.last_uid != 0) {
			outcome(out, RESULT_MAILBOX_MOVED, "%s exists with "
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
		for (rl = records->head; rl != NULL; rl = rl->next) {
			struct shadow_record rec;
			struct shadow_body body;
			bool missing;

			if (record_from_dlist(rl, &rec) < 0) {
				shadow_record_free(&rec);
				continue;	/* refused below, as Cyrus does */
			}
			missing = !rec.expunged &&
			    shadow_body_get(s, rec.guid, &body) != 0;
			if (missing)
				outcome(out, RESULT_PROTOCOL_ERROR, "%s: UID %u "
				    "needs message %s, which was never uploaded",
				    name, rec.uid, rec.guid);
			shadow_record_free(&rec);
			if (missing)
				return;
		}
	}
	if (!exists) {
		if (shadow_mailbox_by_uniqueid(s, uniqueid, &byid) == 0) {
			outcome(out, RESULT_MAILBOX_MOVED, "uniqueid %s is %s, "
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
		nmb.uidvalidity = (uint32_t)opt_num(e, "UIDVALIDITY");
		nmb.createdmodseq = opt_num(e, "CREATEDMODSEQ");
		nmb.foldermodseq = opt_num(e, "FOLDERMODSEQ");
		if ((r = shadow_mailbox_put(s, &nmb)) < 0 ||
		    (r = create_parents(s, &nmb)) < 0 ||
		    (r = shadow_mailbox_by_name(s, name, &cur)) < 0) {
			storage_error(out, s, r);
			return;
		}
		created = true;
		out->changed = true;
	}
	/* SINCE check: the master's idea of us must still hold. */
	since = opt_num(e, "SINCE_MODSEQ");
	if (since != 0 && (since != cur.highestmodseq ||
	    !synccrc_match((uint32_t)opt_num(e, "SINCE_CRC"),
	    (uint32_t)opt_num(e, "SINCE_CRC_ANNOT"), cur.sync_crc,
	    cur.sync_crc_annot))) {
		outcome(out, RESULT_SYNC_CHANGED, "%s: SINCE_MODSEQ %llu, have "
		    "%llu", name, (unsigned long long)since,
		    (unsigned long long)cur.highestmodseq);
		goto done;
	}
	if ((cur.mbtype == NULL) != (mbtype == NULL) ||
	    (mbtype && strcmp(cur.mbtype, mbtype) != 0)) {
		outcome(out, RESULT_UNKNOWN, "%s: type %s, not %s", name,
		    cur.mbtype ? cur.mbtype : "e", mbtype ? mbtype : "e");
		goto done;
	}
	if (!ctx->force && !ctx->replay && !created &&
	    (hms < cur.highestmodseq ||
	    opt_num(e, "UIDVALIDITY") < cur.uidvalidity ||
	    opt_num(e, "LAST_UID") < cur.last_uid)) {
		outcome(out, RESULT_SYNC_CHECKSUM, "%s: the master is behind "
		    "us (modseq %llu < %llu or uidvalidity or last_uid)", name,
		    (unsigned long long)hms,
		    (unsigned long long)cur.highestmodseq);
		goto done;
	}
	/* Dry run over the records. */
	for (rl = records->head; rl != NULL; rl = rl->next) {
		struct shadow_record rec, old;
		struct shadow_body body;
		enum result_code bad = RESULT_OK;

		if (record_from_dlist(rl, &rec) < 0 || rec.uid <= prev_uid) {
			shadow_record_free(&rec);
			outcome(out, RESULT_PROTOCOL_ERROR, "%s: bad or "
			    "unordered RECORD after UID %u", name, prev_uid);
			goto done;
		}
		prev_uid = rec.uid;
		if (shadow_record_get(s, cur.uniqueid, rec.uid, &old) == 0) {
			if (!(old.expunged && rec.expunged)) {
				if (strcmp(old.guid, rec.guid) != 0 ||
				    (old.modseq > rec.modseq && !ctx->force &&
				    !ctx->replay) ||
				    (old.expunged && !rec.expunged))
					bad = RESULT_SYNC_CHECKSUM;
			}
			shadow_record_free(&old);
		} else if (rec.uid <= cur.last_uid) {
			if (!rec.expunged)
				bad = RESULT_SYNC_CHECKSUM;
		} else if (rec.uid > opt_num(e, "LAST_UID")) {
			bad = RESULT_PROTOCOL_ERROR;
		} else if (!rec.expunged && !ctx->replay &&
		    shadow_body_get(s, rec.guid, &body) != 0) {
			outcome(out, RESULT_PROTOCOL_ERROR, "%s: UID %u needs "
			    "message %s, which was never uploaded", name,
			    rec.uid, rec.guid);
			shadow_record_free(&rec);
			goto done;
		}
		shadow_record_free(&rec);
		if (bad != RESULT_OK) {
			outcome(out, bad, "%s: record UID %u disagrees with "
			    "ours", name, prev_uid);
			goto done;
		}
	}
	/* From here on, changes stand even if the final check fails. */
	out->changed = true;
	nmb = cur;
	fill_header(&nmb, e);
	nmb.acl = (char *)(uintptr_t)acl;
	nmb.options = (char *)(uintptr_t)options;
	if ((r = shadow_mailbox_put(s, &nmb)) < 0 ||
	    (r = set_mailbox_annots(s, cur.uniqueid,
	    dlist_get(e, "ANNOTATIONS"))) < 0) {
		storage_error(out, s, r);
		goto done;
	}
	for (rl = records->head; rl != NULL; rl = rl->next) {
		struct shadow_record rec, old;
		struct shadow_body body;

		record_from_dlist(rl, &rec);
		if (shadow_record_get(s, cur.uniqueid, rec.uid, &old) == 0) {
			bool skip = old.expunged && rec.expunged;

			/* An update keeps our GUID and size. */
			rec.size = old.size;
			shadow_record_free(&old);
			if (skip) {
				shadow_record_free(&rec);
				continue;
			}
		} else if (rec.uid <= cur.last_uid) {
			shadow_record_free(&rec);	/* expunged: ignored */
			continue;
		} else {
			if (shadow_body_get(s, rec.guid, &body) == 0)
				rec.size = body.size;	/* the real size */
			/* Replaying this append will need the body. */
			shadow_body_need(s, rec.guid);
		}
		r = shadow_record_put(s, cur.uniqueid, &rec);
		shadow_record_free(&rec);
		if (r < 0) {
			outcome(out, r == -EINVAL ? RESULT_PROTOCOL_ERROR :
			    RESULT_UNKNOWN, "%s: cannot store a record: %s",
			    name, strerror(-r));
			goto done;
		}
	}
	/* The final CRC check, against what we now hold. */
	shadow_mailbox_free(&cur);
	if ((r = shadow_mailbox_by_name(s, name, &cur)) < 0) {
		storage_error(out, s, r);
		return;
	}
	if (!synccrc_match((uint32_t)opt_num(e, "SYNC_CRC"),
	    (uint32_t)opt_num(e, "SYNC_CRC_ANNOT"), cur.sync_crc,
	    cur.sync_crc_annot)) {
		outcome(out, RESULT_SYNC_CHECKSUM, "%s: CRCs %llu/%llu, ours "
		    "%u/%u", name, (unsigned long long)opt_num(e, "SYNC_CRC"),
		    (unsigned long long)opt_num(e, "SYNC_CRC_ANNOT"),
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
			outcome(out, RESULT_MAILBOX_NONEXISTENT, "no mailbox "
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
		storage_error(out, s, r);
	else
		out->code = RESULT_OK;
	shadow_mailbox_free(&mb);
}

static void
apply_rename(struct shadow *s, const struct dlist *e,
    struct apply_outcome *out)
{
	const char *old = req_str(e, "OLDMBOXNAME"), *new = req_str(e,
	    "NEWMBOXNAME"), *part = req_str(e, "PARTITION");
	struct shadow_mailbox mb, other;
	char ou[512], nu[512];
	uint64_t uv;
	int r;

	if (old == NULL || new == NULL || part == NULL) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "RENAME needs "
		    "OLDMBOXNAME, NEWMBOXNAME and PARTITION");
		return;
	}
	if (shadow_mailbox_by_name(s, old, &mb) < 0) {
		outcome(out, RESULT_MAILBOX_NONEXISTENT, "%s does not exist",
		    old);
		return;
	}
	if (strcmp(old, new) == 0 && mb.partition &&
	    strcmp(mb.partition, part) == 0) {
		shadow_mailbox_free(&mb);
		outcome(out, RESULT_UNKNOWN, "%s renamed onto itself", old);
		return;
	}
	if (strcmp(old, new) != 0 &&
	    shadow_mailbox_by_name(s, new, &other) == 0) {
		shadow_mailbox_free(&other);
		shadow_mailbox_free(&mb);
		outcome(out, RESULT_UNKNOWN, "%s already exists", new);
		return;
	}
	if (mboxname_userid(old, ou, sizeof(ou)) == 0 &&
	    mboxname_inbox(ou, nu, sizeof(nu)) == 0 && strcmp(nu, old) == 0 &&
	    (mboxname_userid(new, nu, sizeof(nu)) < 0 || strcmp(nu, ou) != 0)) {
		shadow_mailbox_free(&mb);
		outcome(out, RESULT_MAILBOX_NOTSUPPORTED, "cannot move the "
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
		storage_error(out, s, r);
	else
		out->code = RESULT_OK;
	out->changed = r == 0;
	shadow_mailbox_free(&mb);
}

static void
apply_expunge(struct shadow *s, const struct dlist *e,
    struct apply_outcome *out)
{
	const char *name = req_str(e, "MBOXNAME"), *uid = req_str(e,
	    "UNIQUEID");
	const struct dlist *uids = dlist_get(e, "UID"), *u;
	struct shadow_mailbox mb;
	bool last_missing = false;
	int r;

	if (name == NULL || uid == NULL || uids == NULL) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "EXPUNGE needs "
		    "MBOXNAME, UNIQUEID and UID");
		return;
	}
	if (shadow_mailbox_by_name(s, name, &mb) < 0) {
		outcome(out, RESULT_MAILBOX_NONEXISTENT, "%s does not exist",
		    name);
		return;
	}
	if (strcmp(mb.uniqueid, uid) != 0) {
		outcome(out, RESULT_MAILBOX_MOVED, "%s is %s, not %s", name,
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
				storage_error(out, s, r);
				goto done;
			}
		}
		shadow_record_free(&rec);
	}
	if (last_missing)
		outcome(out, RESULT_UNKNOWN, "%s: the last UID to expunge is "
		    "not there", name);
	else
		out->code = RESULT_OK;
done:
	shadow_mailbox_free(&mb);
}

/* A 32-bit number under key, as Cyrus's dlist_getnum32 reads it. */
static bool
num32(const struct dlist *kv, const char *key, uint64_t *v)
{
	return dlist_get_num(kv, key, v) == 0 && *v <= UINT32_MAX;
}

/* The MODSEQ stored with root before, or 0. */
static uint64_t
stored_quota_modseq(struct shadow *s, const char *root)
{
	struct dlist_parser *p;
	struct buf b = BUF_INIT;
	char *fields = NULL;
	uint64_t m = 0;
	size_t used;

	if (shadow_quota_get(s, root, &fields) < 0)
		return 0;
	p = dlist_parser_new(NULL, NULL);
	buf_printf(&b, "QUOTA %s\r\n", fields);
	if (dlist_parser_feed(p, b.s, b.len, &used) == DLIST_DONE) {
		struct dlist *q = dlist_parser_take(p);

		m = opt_num(q, "MODSEQ");
		dlist_free(&q);
	}
	dlist_parser_free(&p);
	buf_free(&b);
	free(fields);
	return m;
}

/* The quota as a replica decodes and prints it (sync-protocol.md 5.6). */
static void
quota_text(struct shadow *s, const struct dlist *e, const char *root,
    struct buf *out)
{
	static const char *const res[] = { "STORAGE", "MESSAGE",
	    "X-ANNOTATION-STORAGE", "X-NUM-FOLDERS" };
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct dlist *q = dlist_new_kvlist(NULL);
	int64_t lim[4] = { -1, -1, -1, -1 };
	uint64_t v;
	size_t i;

	if (num32(e, "LIMIT", &v) && v != UINT32_MAX)
		lim[0] = (int64_t)v;
	for (i = 0; i < 4; i++)
		if (num32(e, res[i], &v))
			lim[i] = (int64_t)v;
	dlist_add_atom(q, "ROOT", root);
	dlist_add_num(q, "LIMIT", lim[0] < 0 ? UINT32_MAX : (uint64_t)lim[0]);
	for (i = 0; i < 4; i++)
		if (lim[i] >= 0)
			dlist_add_num(q, res[i], (uint64_t)lim[i]);
	if (dlist_get_num(e, "MODSEQ", &v) < 0)
		v = stored_quota_modseq(s, root);
	dlist_add_num(q, "MODSEQ", v);
	dlist_print_value(q, out, &pr);
	dlist_free(&q);
}

static void
apply_quota(struct shadow *s, const struct dlist *e, bool set,
    struct apply_outcome *out)
{
	struct buf b = BUF_INIT;
	const char *root = set ? req_str(e, "ROOT") : (e->type == DL_ATOM ?
	    e->s : NULL);
	int r;

	if (root == NULL) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "QUOTA needs ROOT");
		return;
	}
	if (set && *root == '\0') {
		outcome(out, RESULT_UNKNOWN, "no quota root \"\"");
		return;
	}
	if (set) {
		quota_text(s, e, root, &b);
		r = shadow_quota_put(s, root, buf_cstring(&b));
	} else {
		r = shadow_quota_delete(s, root);
	}
	buf_free(&b);
	changed(out, s, r);
}

static void
apply_annotation(struct shadow *s, const struct dlist *e, bool set,
    struct apply_outcome *out)
{
	const char *name = req_str(e, "MBOXNAME"), *entry = req_str(e, "ENTRY");
	const char *userid = req_str(e, "USERID"), *value = NULL, *canon;
	struct shadow_mailbox mb;
	struct shadow_annot a;
	size_t vl = 0;
	int r;

	if (name == NULL || entry == NULL || userid == NULL ||
	    (set && dlist_str(dlist_get(e, "VALUE"), &value, &vl) < 0)) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "ANNOTATION needs "
		    "MBOXNAME, ENTRY, USERID%s", set ? " and VALUE" : "");
		return;
	}
	memset(&mb, 0, sizeof(mb));
	if (*name && shadow_mailbox_by_name(s, name, &mb) < 0) {
		outcome(out, RESULT_MAILBOX_NONEXISTENT, "%s does not exist",
		    name);
		return;
	}
	if (!annotdef_writable(*name == '\0', entry, userid, set ? value :
	    NULL, set ? vl : 0, &canon)) {
		shadow_mailbox_free(&mb);
		outcome(out, RESULT_UNKNOWN, "a replica does not write %s "
		    "(%s) %s", entry, *userid ? "private" : "shared",
		    set ? "with this value" : "");
		return;
	}
	a.entry = entry;
	a.userid = userid;
	a.modseq = 0;
	a.value = set && value && vl ? value : NULL;
	a.value_len = vl;
	if (a.value && canon) {
		a.value = canon;
		a.value_len = strlen(canon);
	}
	r = shadow_annot_put(s, *name ? mb.uniqueid : "", &a);
	shadow_mailbox_free(&mb);
	changed(out, s, r);
}

static void
apply_seen(struct shadow *s, const struct dlist *e, struct apply_outcome *out)
{
	struct shadow_seen v;
	uint64_t lastuid;

	memset(&v, 0, sizeof(v));
	if ((v.userid = req_str(e, "USERID")) == NULL ||
	    (v.uniqueid = req_str(e, "UNIQUEID")) == NULL ||
	    req_num(e, "LASTREAD", &v.lastread) < 0 ||
	    req_num(e, "LASTUID", &lastuid) < 0 ||
	    req_num(e, "LASTCHANGE", &v.lastchange) < 0 ||
	    (v.seenuids = req_str(e, "SEENUIDS")) == NULL) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "SEEN needs USERID, "
		    "UNIQUEID, LASTREAD, LASTUID, LASTCHANGE, SEENUIDS");
		return;
	}
	v.lastuid = (uint32_t)lastuid;
	changed(out, s, shadow_seen_put(s, &v));
}

static void
apply_sub(struct shadow *s, const struct dlist *e, bool on,
    struct apply_outcome *out)
{
	const char *user = req_str(e, "USERID"), *name = req_str(e, "MBOXNAME");

	if (user == NULL || name == NULL) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "SUB needs USERID "
		    "and MBOXNAME");
		return;
	}
	changed(out, s, shadow_sub_set(s, user, name, on));
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

struct sieve_find {
	const char *name;
	bool found;
};

static int
sieve_find_cb(void *arg, const struct shadow_sieve *sv)
{
	struct sieve_find *f = arg;

	if (strcmp(sv->filename, f->name) == 0)
		f->found = true;
	return 0;
}

static int
sieve_any_cb(void *arg, const struct shadow_sieve *sv)
{
	struct sieve_find *f = arg;

	(void)sv;
	f->found = true;
	return 0;
}

static void
apply_sieve(struct shadow *s, const char *sub, const struct dlist *e,
    struct apply_outcome *out)
{
	const char *user = req_str(e, "USERID"), *file = req_str(e, "FILENAME");
	struct shadow_mailbox inbox;
	char name[512];
	int r = 0;

	if (user == NULL || (file == NULL &&
	    strcmp(sub, "UNACTIVATE_SIEVE") != 0)) {
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "%s needs USERID "
		    "and FILENAME", sub);
		return;
	}
	if (strcmp(sub, "SIEVE") == 0) {
		struct shadow_sieve sv;
		const char *content;
		size_t len;
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		uint8_t g[20];

		if (req_num(e, "LAST_UPDATE", &sv.last_update) < 0 ||
		    dlist_str(dlist_get(e, "CONTENT"), &content, &len) < 0 ||
		    content == NULL) {
			outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "SIEVE "
			    "needs LAST_UPDATE and CONTENT");
			return;
		}
		if (!ends_with(file, ".script")) {
			out->code = RESULT_OK;	/* ignored, as Cyrus does */
			return;
		}
		if (mboxname_inbox(user, name, sizeof(name)) < 0 ||
		    shadow_mailbox_by_name(s, name, &inbox) < 0) {
			outcome(out, RESULT_UNKNOWN, "SIEVE for %s, who has no "
			    "INBOX", user);
			return;
		}
		shadow_mailbox_free(&inbox);
		sv.userid = user;
		sv.filename = file;
		sv.active = false;
		sv.content = content;
		sv.content_len = len;
		EVP_Digest(content, len, d, &dl, EVP_sha1(), NULL);
		memcpy(g, d, 20);
		for (int i = 0; i < 20; i++)
			snprintf(sv.guid + 2 * i, 3, "%02x", g[i]);
		r = shadow_sieve_put(s, &sv);
	} else if (strcmp(sub, "UNSIEVE") == 0) {
		struct sieve_find f = { file, false };

		if (!ends_with(file, ".script")) {
			out->code = RESULT_OK;
			return;
		}
		shadow_sieve_each(s, user, sieve_find_cb, &f);
		if (!f.found) {
			outcome(out, RESULT_UNKNOWN, "no sieve script %s",
			    file);
			return;
		}
		r = shadow_sieve_delete(s, user, file);
	} else if (strcmp(sub, "ACTIVATE_SIEVE") == 0) {
		struct buf script = BUF_INIT;
		bool found = false;

		/* The client names the bytecode: "x.bc" activates x.script. */
		if (ends_with(file, ".bc")) {
			buf_append(&script, file, strlen(file) - 3);
			buf_puts(&script, ".script");
		}
		if (script.len) {
			struct sieve_find f = { script.s, false };

			shadow_sieve_each(s, user, sieve_find_cb, &f);
			found = f.found;
		}
		if (!found) {
			buf_free(&script);
			outcome(out, RESULT_UNKNOWN, "no sieve script behind %s",
			    file);
			return;
		}
		r = shadow_sieve_activate(s, user, script.s);
		buf_free(&script);
	} else {
		struct sieve_find f = { "", false };

		/* Cyrus fails to open the sieve store of a user who never
		 * had a script; approximated by "has none". */
		shadow_sieve_each(s, user, sieve_any_cb, &f);
		if (!f.found) {
			outcome(out, RESULT_UNKNOWN, "%s has no sieve scripts",
			    user);
			return;
		}
		r = shadow_sieve_activate(s, user, NULL);
	}
	changed(out, s, r);
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
		storage_error(out, s, r);
	out->changed = true;
}

void
apply_command(struct shadow *s, const struct dlist *e,
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
		outcome(out, RESULT_PROTOCOL_ERROR, "unknown APPLY %s", sub);
	else if (strcmp(sub, "MAILBOX") == 0 && e->type == DL_KVLIST)
		apply_mailbox(s, e, ctx, out);
	else if (strcmp(sub, "MAILBOX") == 0)
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "MAILBOX needs a "
		    "kvlist");
	else if (strcmp(sub, "UNMAILBOX") == 0)
		apply_unmailbox(s, e, out);
	else if (e->type != DL_KVLIST && strcmp(sub, "UNQUOTA") != 0 &&
	    strcmp(sub, "UNUSER") != 0)
		outcome(out, RESULT_PROTOCOL_BAD_PARAMETERS, "%s needs a kvlist",
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
		apply_annotation(s, e, true, out);
	else if (strcmp(sub, "UNANNOTATION") == 0)
		apply_annotation(s, e, false, out);
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
		outcome(out, RESULT_PROTOCOL_ERROR, "unknown APPLY %s", sub);
}
