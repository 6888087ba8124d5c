/*
 * shadow.c -- the shadow database (SQLite, WAL).
 *
 * Schema (version 1):
 *
 *   meta(key PRIMARY KEY, value)         'version', 'lsn'
 *   mailbox(uniqueid PK, name UNIQUE, owner, mbtype, sync_crc,
 *           sync_crc_annot, last_uid, highestmodseq, recentuid,
 *           recenttime, last_appenddate, pop3_last_login, pop3_show_after,
 *           xconvmodseq, raclmodseq, uidvalidity, partition, acl, options,
 *           quotaroot, createdmodseq, foldermodseq)
 *   record(uniqueid, uid, modseq, last_updated, internaldate, size, guid,
 *          flags, expunged, annotations, crc_basic, crc_annot,
 *          PK(uniqueid, uid))                 index on guid
 *   mbannot(uniqueid, entry, userid, modseq, value, PK(uniqueid, entry,
 *           userid))
 *   seen(userid, uniqueid, lastread, lastuid, lastchange, seenuids, PK)
 *   sub(userid, mboxname, PK)
 *   sieve(userid, filename, last_update, guid, active, content, PK)
 *   quota(root PK, fields)
 *   gone(name PK)      names a mailbox left (deleted, renamed away): a
 *                      replica keeps a tombstone there, so UNMAILBOX of
 *                      them is OK and of a name never used is not
 *   uflag(uniqueid, slot, name, PK(uniqueid, slot))  a mailbox's user
 *                      flags in the order and spelling it first saw them
 *                      (a replica's flag slots)
 * gone and uflag are read and written in shadow_names.c.
 *   body(guid PK, lsn, size, needed_lsn) index on lsn
 *
 * mailbox.owner is the user owning the name (mboxname.c), indexed for
 * GET USER.  A mailbox's sync_crc / sync_crc_annot are the XOR of its
 * live records' crc_basic / crc_annot (and 12345678 for the latter), kept
 * in step by shadow_record_put() inside the same transaction.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/strset.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_parse.h"
#include "protocol/synccrc.h"
#include "storage/mboxname.h"
#include "storage/shadow.h"
#include "storage/shadow_int.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS mailbox ("
    " uniqueid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner TEXT,"
    " mbtype TEXT, sync_crc INTEGER NOT NULL DEFAULT 0,"
    " sync_crc_annot INTEGER NOT NULL DEFAULT 12345678,"
    " last_uid INTEGER, highestmodseq INTEGER, recentuid INTEGER,"
    " recenttime INTEGER, last_appenddate INTEGER, pop3_last_login INTEGER,"
    " pop3_show_after INTEGER, xconvmodseq INTEGER, raclmodseq INTEGER,"
    " uidvalidity INTEGER, partition TEXT, acl TEXT, options TEXT,"
    " quotaroot TEXT, createdmodseq INTEGER, foldermodseq INTEGER);"
    "CREATE INDEX IF NOT EXISTS mailbox_owner ON mailbox(owner, name);"
    "CREATE TABLE IF NOT EXISTS record ("
    " uniqueid TEXT NOT NULL, uid INTEGER NOT NULL, modseq INTEGER,"
    " last_updated INTEGER, internaldate INTEGER, size INTEGER, guid TEXT,"
    " flags TEXT, expunged INTEGER, annotations TEXT, crc_basic INTEGER,"
    " crc_annot INTEGER, PRIMARY KEY (uniqueid, uid)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS record_guid ON record(guid);"
    "CREATE TABLE IF NOT EXISTS mbannot ("
    " uniqueid TEXT NOT NULL, entry TEXT NOT NULL, userid TEXT NOT NULL,"
    " modseq INTEGER, value BLOB,"
    " PRIMARY KEY (uniqueid, entry, userid)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS seen ("
    " userid TEXT NOT NULL, uniqueid TEXT NOT NULL, lastread INTEGER,"
    " lastuid INTEGER, lastchange INTEGER, seenuids TEXT,"
    " PRIMARY KEY (userid, uniqueid)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS sub ("
    " userid TEXT NOT NULL, mboxname TEXT NOT NULL,"
    " PRIMARY KEY (userid, mboxname)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS sieve ("
    " userid TEXT NOT NULL, filename TEXT NOT NULL, last_update INTEGER,"
    " guid TEXT, active INTEGER, content BLOB,"
    " PRIMARY KEY (userid, filename)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS quota (root TEXT PRIMARY KEY, fields TEXT);"
    "CREATE TABLE IF NOT EXISTS gone (name TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS uflag (uniqueid TEXT NOT NULL,"
    " slot INTEGER NOT NULL, name TEXT NOT NULL,"
    " PRIMARY KEY (uniqueid, slot)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS body ("
    " guid TEXT PRIMARY KEY, lsn INTEGER, size INTEGER,"
    " needed_lsn INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS body_lsn ON body(lsn);"
    "INSERT OR IGNORE INTO meta VALUES ('version', 1);"
    "INSERT OR IGNORE INTO meta VALUES ('lsn', 0);";

/* ---- helpers ------------------------------------------------------------ */

static int
sqerr(struct shadow *s)
{
	int c = sqlite3_errcode(s->db);

	if (c == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (c == SQLITE_FULL)
		return -ENOSPC;
	if (c == SQLITE_NOMEM)
		return -ENOMEM;
	return -EIO;
}

static sqlite3_stmt *
prep(struct shadow *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	/* SQLite keeps recently prepared statements warm in its cache. */
	if (shadow_conn(s) == NULL)
		return NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK)
		return NULL;
	return st;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? xstrdup((const char *)t) : NULL;
}

static uint64_t
col_u64(sqlite3_stmt *st, int i)
{
	return (uint64_t)sqlite3_column_int64(st, i);
}

/*
 * Steps a statement expected to return at most one row: 1 with the row
 * ready to read, -ENOENT without one, or another negative errno.  The
 * caller reads the row and finalizes.
 */
static int
step_row(struct shadow *s, sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	if (r == SQLITE_ROW)
		return 1;
	return r == SQLITE_DONE ? -ENOENT : sqerr(s);
}

/* Runs a statement that returns no rows; 0 or a negative errno. */
static int
step_done(struct shadow *s, sqlite3_stmt *st)
{
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : sqerr(s);

	sqlite3_finalize(st);
	return r;
}

/* The helpers above, for the other parts of the shadow (shadow_int.h). */
int
shadow_sqerr(struct shadow *s)
{
	return sqerr(s);
}

sqlite3_stmt *
shadow_prep(struct shadow *s, const char *sql)
{
	return prep(s, sql);
}

int
shadow_step_done(struct shadow *s, sqlite3_stmt *st)
{
	return step_done(s, st);
}

/* ---- open, close, transactions ---------------------------------------- */

int
shadow_open(const char *path, struct shadow **out, char *err, size_t err_len)
{
	struct shadow *s = xcalloc(1, sizeof(*s));
	sqlite3_stmt *st;
	char *msg = NULL;

	s->path = xstrdup(path);
	if (shadow_conn_open(s, err, err_len) < 0) {
		shadow_close(&s);
		return -EIO;
	}
	if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, err_len, "%s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		shadow_close(&s);
		return -EIO;
	}
	st = prep(s, "SELECT value FROM meta WHERE key = 'lsn'");
	if (st && sqlite3_step(st) == SQLITE_ROW)
		s->lsn = col_u64(st, 0);
	sqlite3_finalize(st);
	*out = s;
	return 0;
}

void
shadow_release_memory(struct shadow *s)
{
	if (s->db != NULL)
		(void)sqlite3_db_release_memory(s->db);
}

void
shadow_close(struct shadow **sp)
{
	struct shadow *s = *sp;

	if (s == NULL)
		return;
	if (s->in_tx)
		shadow_rollback(s);
	if (shadow_conn_close(s) < 0)
		log_warnx("event=shadow_close_busy path=%s", s->path);
	free(s->path);
	free(s->needed);
	strset_clear(&s->complete);
	free(s);
	*sp = NULL;
}

uint64_t
shadow_lsn(struct shadow *s)
{
	return s->lsn;
}

const char *
shadow_errmsg(struct shadow *s)
{
	return sqlite3_errmsg(s->db);
}

bool
shadow_in_transaction(const struct shadow *s)
{
	return s->in_tx;
}

int
shadow_begin(struct shadow *s)
{
	if (s->in_tx)
		return -EINVAL;
	if (shadow_conn(s) == NULL)
		return -EIO;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return sqerr(s);
	s->in_tx = true;
	return 0;
}

int
shadow_commit(struct shadow *s, uint64_t lsn)
{
	sqlite3_stmt *st;
	int r;

	if (!s->in_tx)
		return -EINVAL;
	if ((r = shadow_body_needed_by(s, lsn)) < 0) {
		shadow_rollback(s);
		return r;
	}
	st = prep(s, "UPDATE meta SET value = ?1 WHERE key = 'lsn'");
	bind_u64(st, 1, lsn);
	if ((r = step_done(s, st)) < 0 ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		r = r < 0 ? r : sqerr(s);
		shadow_rollback(s);
		return r;
	}
	s->in_tx = false;
	s->lsn = lsn;
	return 0;
}

void
shadow_rollback(struct shadow *s)
{
	/* After SQLITE_FULL or SQLITE_IOERR SQLite may have rolled back
	 * already: a second ROLLBACK would only fail. */
	if (s->in_tx && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_tx = false;
	s->nneeded = 0;
}

int
shadow_body_needed_by(struct shadow *s, uint64_t lsn)
{
	size_t i;
	int r;

	for (i = 0; i < s->nneeded; i++) {
		sqlite3_stmt *st = prep(s, "UPDATE body SET needed_lsn = ?2 "
		    "WHERE guid = ?1 AND needed_lsn < ?2");

		if (st == NULL)
			return sqerr(s);
		bind_text(st, 1, s->needed[i]);
		bind_u64(st, 2, lsn);
		if ((r = step_done(s, st)) < 0)
			return r;
	}
	s->nneeded = 0;
	return 0;
}

void
shadow_body_need(struct shadow *s, const char *guid)
{
	s->needed = xreallocarray(s->needed, s->nneeded + 1,
	    sizeof(*s->needed));
	snprintf(s->needed[s->nneeded++], 41, "%s", guid);
}

/* ---- mailboxes -------------------------------------------------------- */

#define MB_COLS "uniqueid, name, mbtype, sync_crc, sync_crc_annot, " \
	"last_uid, highestmodseq, recentuid, recenttime, last_appenddate, " \
	"pop3_last_login, pop3_show_after, xconvmodseq, raclmodseq, " \
	"uidvalidity, partition, acl, options, quotaroot, createdmodseq, " \
	"foldermodseq"

static void
mailbox_from_row(sqlite3_stmt *st, struct shadow_mailbox *mb)
{
	mb->uniqueid = col_text(st, 0);
	mb->name = col_text(st, 1);
	mb->mbtype = col_text(st, 2);
	mb->sync_crc = (uint32_t)col_u64(st, 3);
	mb->sync_crc_annot = (uint32_t)col_u64(st, 4);
	mb->last_uid = (uint32_t)col_u64(st, 5);
	mb->highestmodseq = col_u64(st, 6);
	mb->recentuid = (uint32_t)col_u64(st, 7);
	mb->recenttime = col_u64(st, 8);
	mb->last_appenddate = col_u64(st, 9);
	mb->pop3_last_login = col_u64(st, 10);
	mb->pop3_show_after = col_u64(st, 11);
	mb->xconvmodseq = col_u64(st, 12);
	mb->raclmodseq = col_u64(st, 13);
	mb->uidvalidity = (uint32_t)col_u64(st, 14);
	mb->partition = col_text(st, 15);
	mb->acl = col_text(st, 16);
	mb->options = col_text(st, 17);
	mb->quotaroot = col_text(st, 18);
	mb->createdmodseq = col_u64(st, 19);
	mb->foldermodseq = col_u64(st, 20);
}

static int
mailbox_by(struct shadow *s, const char *col, const char *key,
    struct shadow_mailbox *mb)
{
	char sql[512];
	sqlite3_stmt *st;
	int r;

	snprintf(sql, sizeof(sql), "SELECT " MB_COLS " FROM mailbox WHERE %s "
	    "= ?1", col);
	if ((st = prep(s, sql)) == NULL)
		return sqerr(s);
	bind_text(st, 1, key);
	if ((r = step_row(s, st)) == 1) {
		mailbox_from_row(st, mb);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int
shadow_mailbox_by_name(struct shadow *s, const char *name,
    struct shadow_mailbox *mb)
{
	return mailbox_by(s, "name", name, mb);
}

int
shadow_mailbox_by_uniqueid(struct shadow *s, const char *uniqueid,
    struct shadow_mailbox *mb)
{
	return mailbox_by(s, "uniqueid", uniqueid, mb);
}

int
shadow_mailbox_put(struct shadow *s, const struct shadow_mailbox *mb)
{
	sqlite3_stmt *st = prep(s, "INSERT INTO mailbox (uniqueid, name, owner, "
	    "mbtype, last_uid, highestmodseq, recentuid, recenttime, "
	    "last_appenddate, pop3_last_login, pop3_show_after, xconvmodseq, "
	    "raclmodseq, uidvalidity, partition, acl, options, quotaroot, "
	    "createdmodseq, foldermodseq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
	    "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
	    "ON CONFLICT(uniqueid) DO UPDATE SET name = ?2, owner = ?3, "
	    "mbtype = ?4, last_uid = ?5, highestmodseq = ?6, recentuid = ?7, "
	    "recenttime = ?8, last_appenddate = ?9, pop3_last_login = ?10, "
	    "pop3_show_after = ?11, xconvmodseq = ?12, raclmodseq = ?13, "
	    "uidvalidity = ?14, partition = ?15, acl = ?16, options = ?17, "
	    "quotaroot = ?18, createdmodseq = ?19, foldermodseq = ?20");
	char owner[512];
	int r;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, mb->uniqueid);
	bind_text(st, 2, mb->name);
	bind_text(st, 3, mboxname_userid(mb->name, owner, sizeof(owner)) == 0 ?
	    owner : NULL);
	bind_text(st, 4, mb->mbtype);
	bind_u64(st, 5, mb->last_uid);
	bind_u64(st, 6, mb->highestmodseq);
	bind_u64(st, 7, mb->recentuid);
	bind_u64(st, 8, mb->recenttime);
	bind_u64(st, 9, mb->last_appenddate);
	bind_u64(st, 10, mb->pop3_last_login);
	bind_u64(st, 11, mb->pop3_show_after);
	bind_u64(st, 12, mb->xconvmodseq);
	bind_u64(st, 13, mb->raclmodseq);
	bind_u64(st, 14, mb->uidvalidity);
	bind_text(st, 15, mb->partition);
	bind_text(st, 16, mb->acl);
	bind_text(st, 17, mb->options);
	bind_text(st, 18, mb->quotaroot);
	bind_u64(st, 19, mb->createdmodseq);
	bind_u64(st, 20, mb->foldermodseq);
	if ((r = step_done(s, st)) < 0)
		return r;
	if ((st = prep(s, "DELETE FROM gone WHERE name = ?1")) == NULL)
		return sqerr(s);
	bind_text(st, 1, mb->name);
	return step_done(s, st);
}

int
shadow_mailbox_delete(struct shadow *s, const char *uniqueid)
{
	static const char *const sql[] = {
		"INSERT OR IGNORE INTO gone SELECT name FROM mailbox WHERE "
		"uniqueid = ?1",
		"DELETE FROM record WHERE uniqueid = ?1",
		"DELETE FROM mbannot WHERE uniqueid = ?1",
		"DELETE FROM uflag WHERE uniqueid = ?1",
		"DELETE FROM mailbox WHERE uniqueid = ?1",
	};
	size_t i;
	int r;

	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st = prep(s, sql[i]);

		if (st == NULL)
			return sqerr(s);
		bind_text(st, 1, uniqueid);
		if ((r = step_done(s, st)) < 0)
			return r;
	}
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

int
shadow_mailbox_each_user(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const struct shadow_mailbox *mb), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT " MB_COLS " FROM mailbox WHERE "
	    "owner = ?1 ORDER BY name");
	int r = 0, rc;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct shadow_mailbox mb;

		mailbox_from_row(st, &mb);
		r = fn(arg, &mb);
		shadow_mailbox_free(&mb);
	}
	sqlite3_finalize(st);
	return r;
}

void
shadow_mailbox_free(struct shadow_mailbox *mb)
{
	free(mb->uniqueid);
	free(mb->name);
	free(mb->mbtype);
	free(mb->partition);
	free(mb->acl);
	free(mb->options);
	free(mb->quotaroot);
	memset(mb, 0, sizeof(*mb));
}

/* ---- records ---------------------------------------------------------- */

#define REC_COLS "uid, modseq, last_updated, internaldate, size, guid, " \
	"flags, expunged, annotations, crc_basic, crc_annot"

static void
record_from_row(sqlite3_stmt *st, struct shadow_record *rec)
{
	const unsigned char *g;

	rec->uid = (uint32_t)col_u64(st, 0);
	rec->modseq = col_u64(st, 1);
	rec->last_updated = col_u64(st, 2);
	rec->internaldate = col_u64(st, 3);
	rec->size = (uint32_t)col_u64(st, 4);
	g = sqlite3_column_text(st, 5);
	snprintf(rec->guid, sizeof(rec->guid), "%s", g ? (const char *)g : "");
	rec->flags = col_text(st, 6);
	rec->expunged = sqlite3_column_int(st, 7) != 0;
	rec->annotations = col_text(st, 8);
	rec->crc_basic = (uint32_t)col_u64(st, 9);
	rec->crc_annot = (uint32_t)col_u64(st, 10);
}

int
shadow_record_get(struct shadow *s, const char *uniqueid, uint32_t uid,
    struct shadow_record *rec)
{
	sqlite3_stmt *st = prep(s, "SELECT " REC_COLS " FROM record WHERE "
	    "uniqueid = ?1 AND uid = ?2");
	int r;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	bind_u64(st, 2, uid);
	if ((r = step_row(s, st)) == 1) {
		record_from_row(st, rec);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

/* Adds the n-byte flag at f to the FLAGS list. */
static void
add_flag_n(struct dlist *fl, const char *f, size_t n)
{
	char *flag = xmemdup0(f, n);

	dlist_add_flag(fl, NULL, flag);
	free(flag);
}

struct dlist *
shadow_record_dlist(const struct shadow_record *rec)
{
	struct dlist *kv = dlist_new_kvlist(NULL), *fl;
	const char *f;
	bool seen = false;

	dlist_add_num(kv, "UID", rec->uid);
	dlist_add_num(kv, "MODSEQ", rec->modseq);
	dlist_add_num(kv, "LAST_UPDATED", rec->last_updated);
	fl = dlist_add_list(kv, "FLAGS");
	/* \Deleted \Answered \Flagged \Draft \Expunged \Seen, then user
	 * flags: the stored string has the system flags in order. */
	for (f = rec->flags ? rec->flags : ""; *f;) {
		size_t n = strcspn(f, " ");

		if (n == 5 && strncmp(f, "\\Seen", 5) == 0)
			seen = true;
		else if (n && f[0] == '\\')
			add_flag_n(fl, f, n);
		f += n + (f[n] == ' ');
	}
	if (rec->expunged)
		dlist_add_flag(fl, NULL, "\\Expunged");
	if (seen)
		dlist_add_flag(fl, NULL, "\\Seen");
	for (f = rec->flags ? rec->flags : ""; *f;) {
		size_t n = strcspn(f, " ");

		if (n && f[0] != '\\')
			add_flag_n(fl, f, n);
		f += n + (f[n] == ' ');
	}
	dlist_add_num(kv, "INTERNALDATE", rec->internaldate);
	dlist_add_num(kv, "SIZE", rec->size);
	dlist_add_guid(kv, "GUID", rec->guid);
	if (rec->annotations != NULL) {
		struct dlist_parser *p = dlist_parser_new(NULL, NULL);
		struct buf b = BUF_INIT;
		size_t used;

		buf_printf(&b, "ANNOTATIONS %s\r\n", rec->annotations);
		if (dlist_parser_feed(p, b.s, b.len, &used) != DLIST_DONE) {
			dlist_free(&kv);	/* stored text that does not parse */
		} else {
			dlist_append(kv, dlist_parser_take(p));
		}
		buf_free(&b);
		dlist_parser_free(&p);
	}
	return kv;
}

/* The record's CRC contributions, from exactly what GETs print. */
static int
record_crcs(const struct shadow_record *rec, uint32_t *basic, uint32_t *annot)
{
	struct dlist *kv = shadow_record_dlist(rec);
	int r;

	if (kv == NULL)
		return -EINVAL;
	r = synccrc_record(kv, basic, annot);
	dlist_free(&kv);
	return r < 0 ? r : 0;
}

int
shadow_record_put(struct shadow *s, const char *uniqueid,
    const struct shadow_record *rec)
{
	struct shadow_record old;
	uint32_t basic, annot, dbasic, dannot;
	sqlite3_stmt *st;
	int r;

	if ((r = record_crcs(rec, &basic, &annot)) < 0)
		return r;
	dbasic = basic;
	dannot = annot;
	if (shadow_record_get(s, uniqueid, rec->uid, &old) == 0) {
		dbasic ^= old.crc_basic;
		dannot ^= old.crc_annot;
		shadow_record_free(&old);
	}
	/* SQLite has no XOR operator: a ^ b = (a | b) - (a & b). */
	st = prep(s, "UPDATE mailbox SET "
	    "sync_crc = (sync_crc | ?2) - (sync_crc & ?2), "
	    "sync_crc_annot = (sync_crc_annot | ?3) - (sync_crc_annot & ?3) "
	    "WHERE uniqueid = ?1");
	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	bind_u64(st, 2, dbasic);
	bind_u64(st, 3, dannot);
	if ((r = step_done(s, st)) < 0)
		return r;
	if (sqlite3_changes(s->db) == 0)
		return -ENOENT;
	st = prep(s, "INSERT OR REPLACE INTO record (uniqueid, " REC_COLS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	bind_u64(st, 2, rec->uid);
	bind_u64(st, 3, rec->modseq);
	bind_u64(st, 4, rec->last_updated);
	bind_u64(st, 5, rec->internaldate);
	bind_u64(st, 6, rec->size);
	bind_text(st, 7, rec->guid);
	bind_text(st, 8, rec->flags ? rec->flags : "");
	sqlite3_bind_int(st, 9, rec->expunged);
	bind_text(st, 10, rec->annotations);
	bind_u64(st, 11, basic);
	bind_u64(st, 12, annot);
	return step_done(s, st);
}

int
shadow_record_each(struct shadow *s, const char *uniqueid, uint32_t from,
    int (*fn)(void *arg, const struct shadow_record *rec), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT " REC_COLS " FROM record WHERE "
	    "uniqueid = ?1 AND uid >= ?2 ORDER BY uid");
	int r = 0;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	bind_u64(st, 2, from);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct shadow_record rec;

		record_from_row(st, &rec);
		r = fn(arg, &rec);
		shadow_record_free(&rec);
	}
	sqlite3_finalize(st);
	return r;
}

void
shadow_record_free(struct shadow_record *rec)
{
	free(rec->flags);
	free(rec->annotations);
	rec->flags = rec->annotations = NULL;
}

/* ---- mailbox annotations ---------------------------------------------- */

int
shadow_annot_put(struct shadow *s, const char *uniqueid,
    const struct shadow_annot *a)
{
	sqlite3_stmt *st;

	if (a->value == NULL) {
		st = prep(s, "DELETE FROM mbannot WHERE uniqueid = ?1 AND "
		    "entry = ?2 AND userid = ?3");
	} else {
		st = prep(s, "INSERT OR REPLACE INTO mbannot (uniqueid, entry, "
		    "userid, modseq, value) VALUES (?1, ?2, ?3, ?4, ?5)");
	}
	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	bind_text(st, 2, a->entry);
	bind_text(st, 3, a->userid);
	if (a->value != NULL) {
		bind_u64(st, 4, a->modseq);
		sqlite3_bind_blob(st, 5, a->value, (int)a->value_len,
		    SQLITE_TRANSIENT);
	}
	return step_done(s, st);
}

int
shadow_annots_set(struct shadow *s, const char *uniqueid,
    const struct shadow_annot *a, size_t n)
{
	sqlite3_stmt *st = prep(s, "DELETE FROM mbannot WHERE uniqueid = ?1");
	size_t i;
	int r;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	if ((r = step_done(s, st)) < 0)
		return r;
	for (i = 0; i < n; i++)
		if (a[i].value != NULL &&
		    (r = shadow_annot_put(s, uniqueid, &a[i])) < 0)
			return r;
	return 0;
}

int
shadow_annot_each(struct shadow *s, const char *uniqueid,
    int (*fn)(void *arg, const struct shadow_annot *a), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT entry, userid, modseq, value FROM "
	    "mbannot WHERE uniqueid = ?1 ORDER BY entry, userid");
	int r = 0;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, uniqueid);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct shadow_annot a;

		a.entry = (const char *)sqlite3_column_text(st, 0);
		a.userid = (const char *)sqlite3_column_text(st, 1);
		a.modseq = col_u64(st, 2);
		a.value = (const char *)sqlite3_column_blob(st, 3);
		a.value_len = (size_t)sqlite3_column_bytes(st, 3);
		if (a.value == NULL)
			a.value = "";
		r = fn(arg, &a);
	}
	sqlite3_finalize(st);
	return r;
}

/* ---- per-user state --------------------------------------------------- */

int
shadow_seen_put(struct shadow *s, const struct shadow_seen *v)
{
	sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO seen (userid, "
	    "uniqueid, lastread, lastuid, lastchange, seenuids) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6)");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, v->userid);
	bind_text(st, 2, v->uniqueid);
	bind_u64(st, 3, v->lastread);
	bind_u64(st, 4, v->lastuid);
	bind_u64(st, 5, v->lastchange);
	bind_text(st, 6, v->seenuids);
	return step_done(s, st);
}

int
shadow_seen_each(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const struct shadow_seen *seen), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT userid, uniqueid, lastread, "
	    "lastuid, lastchange, seenuids FROM seen WHERE userid = ?1 "
	    "ORDER BY uniqueid");
	int r = 0;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct shadow_seen v;

		v.userid = (const char *)sqlite3_column_text(st, 0);
		v.uniqueid = (const char *)sqlite3_column_text(st, 1);
		v.lastread = col_u64(st, 2);
		v.lastuid = (uint32_t)col_u64(st, 3);
		v.lastchange = col_u64(st, 4);
		v.seenuids = (const char *)sqlite3_column_text(st, 5);
		r = fn(arg, &v);
	}
	sqlite3_finalize(st);
	return r;
}

int
shadow_sub_set(struct shadow *s, const char *userid, const char *mboxname,
    bool on)
{
	sqlite3_stmt *st = prep(s, on ? "INSERT OR IGNORE INTO sub (userid, "
	    "mboxname) VALUES (?1, ?2)" : "DELETE FROM sub WHERE userid = ?1 "
	    "AND mboxname = ?2");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	bind_text(st, 2, mboxname);
	return step_done(s, st);
}

int
shadow_sub_each(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const char *mboxname), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT mboxname FROM sub WHERE userid = ?1 "
	    "ORDER BY mboxname");
	int r = 0;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW)
		r = fn(arg, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return r;
}

int
shadow_sieve_put(struct shadow *s, const struct shadow_sieve *sv)
{
	sqlite3_stmt *st = prep(s, "INSERT INTO sieve (userid, filename, "
	    "last_update, guid, active, content) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6) ON CONFLICT(userid, filename) DO UPDATE SET last_update = ?3, "
	    "guid = ?4, content = ?6");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, sv->userid);
	bind_text(st, 2, sv->filename);
	bind_u64(st, 3, sv->last_update);
	bind_text(st, 4, sv->guid);
	sqlite3_bind_int(st, 5, sv->active);
	sqlite3_bind_blob(st, 6, sv->content ? sv->content : "",
	    (int)sv->content_len, SQLITE_TRANSIENT);
	return step_done(s, st);
}

int
shadow_sieve_delete(struct shadow *s, const char *userid, const char *filename)
{
	sqlite3_stmt *st = prep(s, "DELETE FROM sieve WHERE userid = ?1 AND "
	    "filename = ?2");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	bind_text(st, 2, filename);
	return step_done(s, st);
}

int
shadow_sieve_activate(struct shadow *s, const char *userid,
    const char *filename)
{
	sqlite3_stmt *st = prep(s, "UPDATE sieve SET active = (filename IS ?2) "
	    "WHERE userid = ?1");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	bind_text(st, 2, filename);
	return step_done(s, st);
}

int
shadow_sieve_each(struct shadow *s, const char *userid,
    int (*fn)(void *arg, const struct shadow_sieve *sv), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT userid, filename, last_update, guid, "
	    "active, content FROM sieve WHERE userid = ?1 ORDER BY filename");
	int r = 0;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, userid);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct shadow_sieve sv;
		const unsigned char *g = sqlite3_column_text(st, 3);

		sv.userid = (const char *)sqlite3_column_text(st, 0);
		sv.filename = (const char *)sqlite3_column_text(st, 1);
		sv.last_update = col_u64(st, 2);
		snprintf(sv.guid, sizeof(sv.guid), "%s",
		    g ? (const char *)g : "");
		sv.active = sqlite3_column_int(st, 4) != 0;
		sv.content = (const char *)sqlite3_column_blob(st, 5);
		sv.content_len = (size_t)sqlite3_column_bytes(st, 5);
		r = fn(arg, &sv);
	}
	sqlite3_finalize(st);
	return r;
}

int
shadow_quota_put(struct shadow *s, const char *root, const char *fields)
{
	sqlite3_stmt *st = prep(s, "INSERT OR REPLACE INTO quota (root, fields) "
	    "VALUES (?1, ?2)");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, root);
	bind_text(st, 2, fields);
	return step_done(s, st);
}

int
shadow_quota_delete(struct shadow *s, const char *root)
{
	sqlite3_stmt *st = prep(s, "DELETE FROM quota WHERE root = ?1");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, root);
	return step_done(s, st);
}

int
shadow_quota_get(struct shadow *s, const char *root, char **fields)
{
	sqlite3_stmt *st = prep(s, "SELECT fields FROM quota WHERE root = ?1");
	int r;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, root);
	if ((r = step_row(s, st)) == 1) {
		*fields = col_text(st, 0);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int
shadow_user_forget(struct shadow *s, const char *userid)
{
	static const char *const sql[] = {
		"DELETE FROM seen WHERE userid = ?1",
		"DELETE FROM sub WHERE userid = ?1",
		"DELETE FROM sieve WHERE userid = ?1",
	};
	size_t i;
	int r;

	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st = prep(s, sql[i]);

		if (st == NULL)
			return sqerr(s);
		bind_text(st, 1, userid);
		if ((r = step_done(s, st)) < 0)
			return r;
	}
	return 0;
}

void
shadow_user_set_complete(struct shadow *s, const char *userid)
{
	strset_add(&s->complete, userid);
}

bool
shadow_user_is_complete(const struct shadow *s, const char *userid)
{
	return strset_has(&s->complete, userid);
}

size_t
shadow_complete_users(const struct shadow *s)
{
	return strset_count(&s->complete);
}

void
shadow_forget_complete(struct shadow *s)
{
	strset_clear(&s->complete);
}

/* ---- the body index --------------------------------------------------- */

int
shadow_body_put(struct shadow *s, const struct shadow_body *b)
{
	sqlite3_stmt *st = prep(s, "INSERT INTO body (guid, lsn, size) VALUES "
	    "(?1, ?2, ?3) ON CONFLICT(guid) DO UPDATE SET lsn = ?2, size = ?3");

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, b->guid);
	bind_u64(st, 2, b->lsn);
	bind_u64(st, 3, b->size);
	return step_done(s, st);
}

int
shadow_body_get(struct shadow *s, const char *guid, struct shadow_body *b)
{
	sqlite3_stmt *st = prep(s, "SELECT lsn, size, needed_lsn FROM body "
	    "WHERE guid = ?1");
	int r;

	if (st == NULL)
		return sqerr(s);
	bind_text(st, 1, guid);
	if ((r = step_row(s, st)) == 1) {
		snprintf(b->guid, sizeof(b->guid), "%s", guid);
		b->lsn = col_u64(st, 0);
		b->size = (uint32_t)col_u64(st, 1);
		b->needed_lsn = col_u64(st, 2);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int
shadow_body_drop_before(struct shadow *s, uint64_t lsn)
{
	sqlite3_stmt *st = prep(s, "DELETE FROM body WHERE lsn < ?1");

	if (st == NULL)
		return sqerr(s);
	bind_u64(st, 1, lsn);
	return step_done(s, st);
}

int
shadow_body_each_needed(struct shadow *s, uint64_t lsn, uint64_t min_needed,
    int (*fn)(void *arg, const struct shadow_body *b), void *arg)
{
	sqlite3_stmt *st = prep(s, "SELECT guid, lsn, size, needed_lsn FROM "
	    "body WHERE lsn < ?1 AND needed_lsn > ?2 ORDER BY lsn");
	int r = 0;

	if (st == NULL)
		return sqerr(s);
	bind_u64(st, 1, lsn);
	bind_u64(st, 2, min_needed);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct shadow_body b;
		const unsigned char *g = sqlite3_column_text(st, 0);

		snprintf(b.guid, sizeof(b.guid), "%s", g ? (const char *)g : "");
		b.lsn = col_u64(st, 1);
		b.size = (uint32_t)col_u64(st, 2);
		b.needed_lsn = col_u64(st, 3);
		r = fn(arg, &b);
	}
	sqlite3_finalize(st);
	return r;
}

uint64_t
shadow_body_min_needed(struct shadow *s, uint64_t min_needed)
{
	sqlite3_stmt *st = prep(s, "SELECT MIN(lsn) FROM body WHERE "
	    "needed_lsn > ?1");
	uint64_t v = 0;

	if (st == NULL)
		return 0;
	bind_u64(st, 1, min_needed);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = col_u64(st, 0);
	sqlite3_finalize(st);
	return v;
}
