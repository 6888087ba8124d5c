/*
 * shadow_names.c -- names a mailbox keeps besides its own: the tombstones
 * of names mailboxes left, and a mailbox's user-flag slots; and the
 * users who own mailboxes (what an audit walks, relay/ops/audit.c).
 *
 * Both emulate what a 3.6 replica keeps where a master cannot see it.  A
 * tombstone (table gone) makes APPLY UNMAILBOX of a name a mailbox left
 * OK, where a name no mailbox ever had is refused.  A replica gives each
 * user flag a slot in its mailbox the first time the mailbox sees it, in
 * the order the records and their flags come, under the spelling first
 * seen, compared without case; it prints a record's user flags in slot
 * order and spelling and never frees a slot.  Table uflag keeps them.
 * Schema: the top of shadow.c.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>

#include "storage/shadow_int.h"

int
shadow_gone_put(struct shadow *s, const char *name)
{
	sqlite3_stmt *st = shadow_prep(s,
	    "INSERT OR IGNORE INTO gone VALUES (?1)");

	if (st == NULL)
		return shadow_sqerr(s);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	return shadow_step_done(s, st);
}

bool
shadow_gone_has(struct shadow *s, const char *name)
{
	sqlite3_stmt *st = shadow_prep(s,
	    "SELECT 1 FROM gone WHERE name = ?1");
	bool r;

	if (st == NULL)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return r;
}

int
shadow_uflag_add(struct shadow *s, const char *uniqueid, const char *flag)
{
	sqlite3_stmt *st = shadow_prep(s, "INSERT INTO uflag SELECT ?1, "
	    "(SELECT COALESCE(MAX(slot) + 1, 0) FROM uflag WHERE "
	    "uniqueid = ?1), ?2 WHERE NOT EXISTS (SELECT 1 FROM uflag WHERE "
	    "uniqueid = ?1 AND name = ?2 COLLATE NOCASE)");

	if (st == NULL)
		return shadow_sqerr(s);
	sqlite3_bind_text(st, 1, uniqueid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, flag, -1, SQLITE_TRANSIENT);
	return shadow_step_done(s, st);
}

int
shadow_uflag_each(struct shadow *s, const char *uniqueid,
    int (*cb)(void *arg, const char *flag), void *arg)
{
	sqlite3_stmt *st = shadow_prep(s, "SELECT name FROM uflag WHERE "
	    "uniqueid = ?1 ORDER BY slot");
	int r = 0, rc;

	if (st == NULL)
		return shadow_sqerr(s);
	sqlite3_bind_text(st, 1, uniqueid, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == 0)
		r = cb(arg, (const char *)sqlite3_column_text(st, 0));
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = shadow_sqerr(s);
	sqlite3_finalize(st);
	return r;
}

/* Calls fn with the one text column of each row of sql, until non-zero. */
static int
text_each(struct shadow *s, const char *sql,
    int (*fn)(void *arg, const char *text), void *arg)
{
	sqlite3_stmt *st = shadow_prep(s, sql);
	int r = 0, rc;

	if (st == NULL)
		return shadow_sqerr(s);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = fn(arg, (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return r;
}

int
shadow_owner_each(struct shadow *s, int (*fn)(void *arg, const char *userid),
    void *arg)
{
	return text_each(s, "SELECT DISTINCT owner FROM mailbox WHERE owner "
	    "IS NOT NULL ORDER BY owner", fn, arg);
}

int
shadow_shared_each(struct shadow *s, int (*fn)(void *arg, const char *name),
    void *arg)
{
	return text_each(s, "SELECT name FROM mailbox WHERE owner IS NULL "
	    "ORDER BY name", fn, arg);
}
