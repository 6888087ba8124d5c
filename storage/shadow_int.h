/*
 * shadow_int.h -- what the parts of the shadow (shadow.c, shadow_names.c)
 * share: the struct and the SQLite helpers.  shadow.c owns the schema
 * and transactions; shadow_names.c calls it, never the other way.
 * shadow_conn.c opens and closes the connection, on demand;
 * shadow_snap.c makes read-only views of it.
 */
#ifndef SR_SHADOW_INT_H
#define SR_SHADOW_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "lib/strset.h"
#include "storage/shadow.h"

struct shadow {
	sqlite3 *db;		/* NULL while closed (shadow_conn.c) */
	char *path;
	struct shadow *lru_prev, *lru_next;	/* open ones (shadow_conn.c) */
	bool reopens_pending;	/* closed since it was last open */
	uint64_t reopens;	/* times it was opened again */
	uint64_t lsn;
	bool in_tx;
	char (*needed)[41];	/* bodies the open transaction needs */
	size_t nneeded;
	struct strset complete;	/* users with the master's whole list */
	bool snapshot;		/* a read-only view (shadow_snap.c) */
};

/* The connection, opened if it was closed (NULL if it cannot be). */
sqlite3 *shadow_conn(struct shadow *s);
/* Opens the connection (no-op when open); 0 or -EIO with err. */
int shadow_conn_open(struct shadow *s, char *err, size_t err_len);
/* Closes it unless a transaction or statement runs: 0 or -EBUSY. */
int shadow_conn_close(struct shadow *s);

/* The last SQLite error as a negative errno. */
int shadow_sqerr(struct shadow *s);
/* A prepared statement (the caller finalizes), or NULL. */
sqlite3_stmt *shadow_prep(struct shadow *s, const char *sql);
/* Runs a statement that returns no rows and finalizes it; 0 or a
 * negative errno. */
int shadow_step_done(struct shadow *s, sqlite3_stmt *st);

#endif
