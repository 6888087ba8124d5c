/*
 * shadow_int.h -- what the parts of the shadow (shadow.c, shadow_names.c)
 * share: the struct and the SQLite helpers.  shadow.c owns the schema,
 * the connection and transactions; shadow_names.c calls it, never the
 * other way.
 */
#ifndef SR_SHADOW_INT_H
#define SR_SHADOW_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "lib/strset.h"
#include "storage/shadow.h"

struct shadow {
	sqlite3 *db;
	uint64_t lsn;
	bool in_tx;
	char (*needed)[41];	/* bodies the open transaction needs */
	size_t nneeded;
	struct strset complete;	/* users with the master's whole list */
};

/* The last SQLite error as a negative errno. */
int shadow_sqerr(struct shadow *s);
/* A prepared statement (the caller finalizes), or NULL. */
sqlite3_stmt *shadow_prep(struct shadow *s, const char *sql);
/* Runs a statement that returns no rows and finalizes it; 0 or a
 * negative errno. */
int shadow_step_done(struct shadow *s, sqlite3_stmt *st);

#endif
