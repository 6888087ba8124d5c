/*
 * retention.h -- deciding which journal segments a store can delete.
 *
 * A segment can go once every replica's cursor is past all its records,
 * no body in it is still needed by a command some replica has not yet
 * received, it is older than min_age and the journal keeps at least
 * min_bytes without it.  The newest segment always stays.
 *
 * Above max_bytes, min_age and min_bytes give way first.  If a replica
 * that lacks records still holds the journal over the cap, the policy
 * decides, loudly, never silently (a journal over the cap only because
 * of its newest segment, which every replica has, is only warned about):
 *   RETENTION_REFUSE  the store refuses new writes from its master (a
 *                     clear NO; the master keeps its own sync_log and
 *                     retries) until replicas catch up;
 *   RETENTION_RESYNC  the replica furthest behind is marked as needing a
 *                     full resync (its cursor no longer holds the journal
 *                     back), repeated until the journal fits.
 *
 * Under disk pressure (the file system is below its free-space floor)
 * min_age and min_bytes give way as over the cap, and a newest segment
 * that holds records every replica has is reported for rolling, so the
 * next run can drop it.  What some replica still needs stays: the cap's
 * policy alone decides about that.
 *
 * retention_run() changes the journal, the shadow's body index and
 * cursors, so it must not run while the store is being written.
 */
#ifndef SR_RETENTION_H
#define SR_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/cursor.h"
#include "storage/journal.h"
#include "storage/shadow.h"

enum retention_cap { RETENTION_REFUSE, RETENTION_RESYNC };

struct retention_policy {
	uint64_t min_age_s;	/* keep segments written more recently */
	uint64_t min_bytes;	/* keep at least this much journal */
	uint64_t max_bytes;	/* 0: no cap */
	enum retention_cap cap;
	/* The disk is short of space: min_age and min_bytes give way, and a
	 * newest segment every replica has is to be rolled so it can go. */
	bool pressure;
};

struct retention_replica {
	const char *name;
	struct cursor *cursor;
	uint64_t hold;		/* records from this LSN on stay (what the
				 * replica refused and its link parked, to
				 * be sent again); 0: none */
};

struct retention_result {
	size_t segments_dropped;
	uint64_t bytes_before, bytes_after;
	uint64_t keep_from;	/* first LSN kept */
	bool refuse_writes;	/* over the cap under RETENTION_REFUSE */
	size_t replicas_marked;	/* set to resync under RETENTION_RESYNC */
	bool roll;		/* under pressure: roll the newest segment
				   (journal_roll()), every replica has it */
};

/*
 * Applies the policy to store: store names the store in log lines.
 * Returns 0, or a negative errno (nothing half-done is left: a failed
 * deletion keeps the remaining segments).
 */
int retention_run(const char *store, struct journal *j, struct shadow *s,
    struct retention_replica *replicas, size_t nreplicas,
    const struct retention_policy *p, uint64_t now_us,
    struct retention_result *out);

#endif
