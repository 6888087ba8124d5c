/*
 * shadow_conn.c -- a shadow's SQLite connection, open only while the
 * store is in use.
 *
 * An open connection costs three descriptors (the database, its WAL and
 * the WAL index), a 32 KB mapping of the index and ~30 KB of SQLite's
 * heap; with a thousand stores that was most of an idle relay (issue 17,
 * docs/scale.md).  So the connection is opened on demand (shadow.c asks
 * for it before every statement and transaction), closed when the store
 * has been idle (shadow_idle()), and at most shadow_max_open connections
 * stay open at once: opening one more closes the least recently used
 * one that is not inside a transaction.  Closing never loses anything:
 * only a connection outside a transaction, with no statement running,
 * is closed, and what it committed is in the WAL or the database.
 *
 * The shadows of one process are used from one thread (the event loop),
 * like the connections themselves (SQLITE_OPEN_NOMUTEX); the list of
 * open ones needs no lock.  shadow.c calls this file, never the other
 * way round.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "lib/log.h"
#include "storage/shadow_int.h"

static struct shadow *lru_head, *lru_tail;	/* most recent first */
static size_t nopen, max_open = 256;

/*
 * By default every SQLite connection preallocates its first 20 page-cache
 * lines (~87 KB) in one block (SQLITE_DEFAULT_PCACHE_INITSZ), and lines
 * of that block go back to the block, never to malloc, so
 * shadow_release_memory() could not free them.  Without the block the
 * cache takes its lines one at a time.  This must happen before SQLite
 * initializes; if something initialized it already the call fails
 * (SQLITE_MISUSE) and the default stays, harmlessly.
 */
static void
sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

static void
lru_unlink(struct shadow *s)
{
	if (s->lru_prev)
		s->lru_prev->lru_next = s->lru_next;
	else if (lru_head == s)
		lru_head = s->lru_next;
	if (s->lru_next)
		s->lru_next->lru_prev = s->lru_prev;
	else if (lru_tail == s)
		lru_tail = s->lru_prev;
	s->lru_prev = s->lru_next = NULL;
}

static void
lru_front(struct shadow *s)
{
	if (lru_head == s)
		return;
	lru_unlink(s);
	s->lru_next = lru_head;
	if (lru_head)
		lru_head->lru_prev = s;
	lru_head = s;
	if (lru_tail == NULL)
		lru_tail = s;
}

int
shadow_conn_close(struct shadow *s)
{
	if (s->db == NULL)
		return 0;
	if (s->in_tx)
		return -EBUSY;
	/* SQLITE_BUSY: a statement is still running; keep it open. */
	if (sqlite3_close(s->db) != SQLITE_OK)
		return -EBUSY;
	s->db = NULL;
	lru_unlink(s);
	nopen--;
	s->reopens_pending = true;
	return 0;
}

/* Over the cap: close the least recently used ones that can be. */
static void
lru_trim(struct shadow *keep)
{
	struct shadow *v = lru_tail, *prev;

	while (nopen > max_open && v != NULL) {
		prev = v->lru_prev;
		if (v != keep)
			(void)shadow_conn_close(v);
		v = prev;
	}
}

int
shadow_conn_open(struct shadow *s, char *err, size_t err_len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char *msg = NULL;

	if (s->db != NULL) {
		lru_front(s);
		return 0;
	}
	pthread_once(&once, sqlite_setup);
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, err_len, "%s: %s", s->path,
		    s->db ? sqlite3_errmsg(s->db) : "cannot open");
		sqlite3_close(s->db);
		s->db = NULL;
		return -EIO;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* Closing must not checkpoint: that would fsync on the event loop
	 * each time a store goes idle.  The WAL stays and the next open
	 * reads it; checkpoints happen as before, while writing. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=OFF;", NULL, NULL,
	    &msg) != SQLITE_OK) {
		snprintf(err, err_len, "%s: %s", s->path, msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(s->db);
		s->db = NULL;
		return -EIO;
	}
	if (s->reopens_pending)
		s->reopens++;
	s->reopens_pending = false;
	nopen++;
	lru_front(s);
	lru_trim(s);
	return 0;
}

sqlite3 *
shadow_conn(struct shadow *s)
{
	char err[512];

	if (s->snapshot)
		return s->db;	/* its own connection, never in the list */
	if (s->db == NULL && shadow_conn_open(s, err, sizeof(err)) < 0) {
		log_warnx("event=shadow_open_failed error=\"%s\"", err);
		return NULL;
	}
	if (lru_head != s)
		lru_front(s);
	return s->db;
}

void
shadow_idle(struct shadow *s)
{
	(void)shadow_conn_close(s);
}

void
shadow_set_max_open(size_t n)
{
	max_open = n ? n : 1;
	lru_trim(NULL);
}

size_t
shadow_open_count(void)
{
	return nopen;
}

uint64_t
shadow_reopens(const struct shadow *s)
{
	return s->reopens;
}
