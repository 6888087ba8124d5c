/*
 * apply_meta.c -- the APPLYs of a user's metadata outside mailboxes:
 * QUOTA/UNQUOTA, ANNOTATION/UNANNOTATION, and the legacy sieve APPLYs.
 *
 * As apply.c, each refuses what a 3.6.1 replica refuses, with its code:
 * QUOTA of the root "" (a quota is stored as a replica prints it: LIMIT
 * and STORAGE both the storage limit, then MODSEQ, the master's or the
 * one stored before); an annotation Cyrus does not define, or of the
 * wrong kind or type (storage/annotdef.c); SIEVE for a user without an
 * INBOX, UNSIEVE of a script that is not there, ACTIVATE_SIEVE of a
 * name that is not a script's bytecode, UNACTIVATE_SIEVE for a user
 * without scripts.  A script is not compiled (Cyrus's sieve library is
 * not linked): docs/ingest.md.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "storage/annotdef.h"
#include "storage/apply_int.h"
#include "storage/mboxname.h"

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

		m = apply_opt_num(q, "MODSEQ");
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

void
apply_quota(struct shadow *s, const struct dlist *e, bool set,
    struct apply_outcome *out)
{
	struct buf b = BUF_INIT;
	const char *root = set ? apply_req_str(e, "ROOT") : (e->type == DL_ATOM ?
	    e->s : NULL);
	int r;

	if (root == NULL) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "QUOTA needs ROOT");
		return;
	}
	if (set && *root == '\0') {
		apply_fail(out, RESULT_UNKNOWN, "no quota root \"\"");
		return;
	}
	if (set) {
		quota_text(s, e, root, &b);
		r = shadow_quota_put(s, root, buf_cstring(&b));
	} else {
		r = shadow_quota_delete(s, root);
	}
	buf_free(&b);
	apply_changed(out, s, r);
}

void
apply_annotation(struct shadow *s, const struct dlist *e, bool set,
    bool replay, struct apply_outcome *out)
{
	const char *name = apply_req_str(e, "MBOXNAME"), *entry = apply_req_str(e, "ENTRY");
	const char *userid = apply_req_str(e, "USERID"), *value = NULL, *canon;
	struct shadow_mailbox mb;
	struct shadow_annot a;
	size_t vl = 0;
	int r;

	if (name == NULL || entry == NULL || userid == NULL ||
	    (set && dlist_str(dlist_get(e, "VALUE"), &value, &vl) < 0)) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "ANNOTATION needs "
		    "MBOXNAME, ENTRY, USERID%s", set ? " and VALUE" : "");
		return;
	}
	memset(&mb, 0, sizeof(mb));
	if (*name && shadow_mailbox_by_name(s, name, &mb) < 0) {
		apply_fail(out, RESULT_MAILBOX_NONEXISTENT, "%s does not exist",
		    name);
		return;
	}
	/* Folding the journal: accepted once, whatever is defined now. */
	if (!annotdef_writable(*name == '\0', entry, userid, set ? value :
	    NULL, set ? vl : 0, &canon) && !replay) {
		shadow_mailbox_free(&mb);
		apply_fail(out, RESULT_UNKNOWN, "a replica does not write %s "
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
	apply_changed(out, s, r);
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

	if (f->name == NULL || strcmp(sv->filename, f->name) == 0)
		f->found = true;
	return 0;
}

/* Has user a sieve script named name (NULL: any script at all)? */
static bool
sieve_has(struct shadow *s, const char *user, const char *name)
{
	struct sieve_find f = { name, false };

	shadow_sieve_each(s, user, sieve_find_cb, &f);
	return f.found;
}

void
apply_sieve(struct shadow *s, const char *sub, const struct dlist *e,
    struct apply_outcome *out)
{
	const char *user = apply_req_str(e, "USERID"), *file = apply_req_str(e, "FILENAME");
	struct shadow_mailbox inbox;
	char name[512];
	int r = 0;

	if (user == NULL || (file == NULL &&
	    strcmp(sub, "UNACTIVATE_SIEVE") != 0)) {
		apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "%s needs USERID "
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

		if (apply_req_num(e, "LAST_UPDATE", &sv.last_update) < 0 ||
		    dlist_str(dlist_get(e, "CONTENT"), &content, &len) < 0 ||
		    content == NULL) {
			apply_fail(out, RESULT_PROTOCOL_BAD_PARAMETERS, "SIEVE "
			    "needs LAST_UPDATE and CONTENT");
			return;
		}
		if (!ends_with(file, ".script")) {
			out->code = RESULT_OK;	/* ignored, as Cyrus does */
			return;
		}
		if (mboxname_inbox(user, name, sizeof(name)) < 0 ||
		    shadow_mailbox_by_name(s, name, &inbox) < 0) {
			apply_fail(out, RESULT_UNKNOWN, "SIEVE for %s, who has no "
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
		if (!ends_with(file, ".script")) {
			out->code = RESULT_OK;
			return;
		}
		if (!sieve_has(s, user, file)) {
			apply_fail(out, RESULT_UNKNOWN, "no sieve script %s",
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
		if (script.len)
			found = sieve_has(s, user, script.s);
		if (!found) {
			buf_free(&script);
			apply_fail(out, RESULT_UNKNOWN, "no sieve script behind %s",
			    file);
			return;
		}
		r = shadow_sieve_activate(s, user, script.s);
		buf_free(&script);
	} else {
		/* Cyrus fails to open the sieve store of a user who never
		 * had a script; approximated by "has none". */
		if (!sieve_has(s, user, NULL)) {
			apply_fail(out, RESULT_UNKNOWN, "%s has no sieve scripts",
			    user);
			return;
		}
		r = shadow_sieve_activate(s, user, NULL);
	}
	apply_changed(out, s, r);
}
