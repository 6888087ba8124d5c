/*
 * shadow_snap.c -- a read-only view of a shadow fixed at one instant.
 *
 * A reply that goes out in pages (GET FULLMAILBOX, a mailbox a link
 * sends whole: relay/getcmd_full.c) reads the shadow across several
 * turns of the event loop, and the master's session may commit changes
 * to the same mailbox in between.  A reply that mixed two states would
 * carry a SYNC_CRC its records do not give.  So such a reply reads from
 * a snapshot: a second SQLite connection, read-only, holding one read
 * transaction from its first statement to its close.  In WAL mode a
 * reader neither blocks the writer nor sees what it commits later; the
 * WAL just cannot be reset past the reader's mark while it lives.
 *
 * The snapshot is a struct shadow of its own, so every read function
 * of shadow.h works on it unchanged.  It never joins the list of open
 * connections (shadow_conn.c): it is not closed for idling, and it is
 * not counted against max_open_stores (three descriptors while it
 * lives).  It sees what was committed: a transaction open on the
 * store's connection (a change waiting for the journal) is not in it,
 * so the view is the shadow at shadow_lsn().  Writing to it fails.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "lib/xmalloc.h"
#include "storage/shadow.h"
#include "storage/shadow_int.h"

int
shadow_snapshot_open(struct shadow *s, struct shadow **out, char *err,
    size_t err_len)
{
	struct shadow *v = xcalloc(1, sizeof(*v));
	sqlite3_stmt *st = NULL;
	int r;

	*out = NULL;
	v->path = xstrdup(s->path);
	v->snapshot = true;
	if (sqlite3_open_v2(v->path, &v->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(v->db, 5000);
	/* The read transaction starts with the first read, here. */
	if (sqlite3_exec(v->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(v->db, "SELECT value FROM meta WHERE key = "
	    "'lsn'", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	r = sqlite3_step(st);
	if (r != SQLITE_ROW)
		goto fail;
	v->lsn = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	v->in_tx = true;
	*out = v;
	return 0;
fail:
	snprintf(err, err_len, "%s: snapshot: %s", s->path,
	    v->db ? sqlite3_errmsg(v->db) : "cannot open");
	sqlite3_finalize(st);
	sqlite3_close(v->db);
	free(v->path);
	free(v);
	return -EIO;
}

void
shadow_snapshot_close(struct shadow **vp)
{
	struct shadow *v = *vp;

	if (v == NULL)
		return;
	if (v->db != NULL) {
		if (!sqlite3_get_autocommit(v->db))
			sqlite3_exec(v->db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(v->db);
	}
	free(v->path);
	free(v);
	*vp = NULL;
}
