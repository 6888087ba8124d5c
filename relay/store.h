/*
 * store.h -- a store at run time: its journal, shadow and cursors.
 *
 * Every configured store is opened when the daemon starts: the journal
 * is recovered, the shadow is brought forward to the journal's end, and
 * each replica's cursor is read.  Journal completions reach the event
 * loop through an ev_async, and run there.  A store serves several
 * master sessions at once; relay/ingest/order.c keeps them and runs
 * their commands one at a time.
 */
#ifndef SR_STORE_H
#define SR_STORE_H

#include <stddef.h>

#include <ev.h>

#include "lib/strset.h"
#include "relay/config.h"
#include "relay/ops/stats.h"
#include "storage/cursor.h"
#include "storage/journal.h"
#include "storage/shadow.h"

struct link;
struct order;

struct store {
	char *name;
	char *identity;
	char *dir;
	struct journal *journal;
	struct shadow *shadow;
	struct cursor **cursors;
	size_t ncursors;
	struct link **links;		/* one per replica, like cursors */
	size_t nlinks;
	struct ev_loop *loop;
	ev_async wake;
	struct order *order;		/* its master sessions (order.c) */
	bool refuse_writes;		/* journal over its size cap */
	bool removed;			/* gone from the config: no links, no
					   logins; closed at the next start */
	ev_timer retention;		/* runs the retention policy */
	const struct config *config;	/* the running configuration */
	double master_last_command;	/* ev_now() of its last command */
	/* Ingest counters since start (filled by session.c). */
	uint64_t ingested_records, ingested_bytes;
	struct stats_code_count errors[STATS_MAX_CODES];
	size_t nerrors;
	/* Users ("U:name") and mailboxes ("M:name") a replica was asked
	 * about for the master (relay/ingest/seed.c), once each. */
	struct strset seed_asked;
	/* Called on the loop after journal completions ran. */
	void (*on_progress)(struct store *st, void *arg);
	void *on_progress_arg;
	/* Set by the master sessions: false while a change of one is on
	 * its way into the journal (retention waits). */
	bool (*master_quiet)(const struct store *st);
	/* The disk (relay/diskguard.c), as last measured. */
	bool disk_full;			/* free space below the floor */
	double disk_full_since;		/* ev_now() when it went below */
	uint64_t disk_free, disk_floor;	/* bytes */
	bool shadow_stale;		/* a shadow update failed: the shadow
					   lags behind the journal */
	ev_timer disk_t;		/* checks and recovers, every second */
	bool closing;			/* store_free() runs: no timers */
	/* Idle (store.c): the durable LSN last seen, since when, and
	 * whether the journal was told to give back what it holds. */
	uint64_t idle_lsn;
	double idle_since;
	bool idled;
};

/*
 * Checks RLIMIT_NOFILE against the descriptors config can need, raising
 * the soft limit up to the hard one if that is enough, and logs what it
 * found; -1 (logged as a warning) when the limit is still too low.
 */
int store_check_nofile(const struct config *config);
/*
 * Opens every store of config under datadir.  A store that cannot be
 * opened is logged (event=store_open_failed) and set aside as a failure
 * (below) while the others serve.  Returns 0 (-1 with err set is kept
 * for what would stop the daemon).
 */
int store_open_all(struct ev_loop *loop, const struct config *config,
    const char *datadir, char *err, size_t err_len);
/* Opens the stores a reloaded config adds; logs the ones it drops. */
void store_reload(const struct config *config, const char *datadir);
void store_close_all(void);
/* The store whose master logs in as identity, or NULL. */
struct store *store_by_identity(const char *identity);
size_t store_count(void);
/* Store i (0-based, i < store_count()). */
struct store *store_at(size_t i);
/* The store called name, or NULL. */
struct store *store_by_name(const char *name);

/* A configured store that could not be opened, and why. */
struct store_failure {
	char *name;
	char *identity;
	char *error;		/* the message, recovery included */
};

size_t store_failed_count(void);
/* Failure i (0-based, i < store_failed_count()), or NULL. */
const struct store_failure *store_failed_at(size_t i);
/* The failure of the store whose master logs in as identity, or NULL. */
const struct store_failure *store_failed_by_identity(const char *identity);
const struct store_failure *store_failed_by_name(const char *name);

#endif
