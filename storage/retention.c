/*
 * retention.c -- dropping journal segments nobody needs any more.
 *
 * The boundary is the lowest of: the oldest cursor (of replicas that do
 * not need a full resync) plus one, and the oldest body still needed by
 * a command after that cursor.  Whole segments entirely below the
 * boundary, oldest first, are dropped while they are older than min_age
 * and min_bytes stays kept.  Every decision that costs a replica data is
 * logged at error level.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "storage/retention.h"

static uint64_t
journal_bytes(const struct journal_segment *v, size_t n)
{
	uint64_t b = 0;
	size_t i;

	for (i = 0; i < n; i++)
		b += v[i].bytes;
	return b;
}

/* The LSN below which segments may go, and the replica furthest back. */
static uint64_t
boundary(struct journal *j, struct shadow *s, struct retention_replica *r,
    size_t n, size_t *slowest)
{
	uint64_t min = journal_durable_lsn(j), pin;
	size_t i;

	*slowest = n;
	for (i = 0; i < n; i++) {
		if (cursor_flags(r[i].cursor) & CURSOR_NEEDS_RESYNC)
			continue;
		if (*slowest == n || cursor_lsn(r[i].cursor) < min) {
			min = cursor_lsn(r[i].cursor);
			*slowest = i;
		}
		if (r[i].hold != 0 && r[i].hold - 1 < min)
			min = r[i].hold - 1;
	}
	pin = shadow_body_min_needed(s, min);
	if (pin != 0 && pin < min + 1)
		return pin;
	return min + 1;
}

/*
 * How many leading segments may go: all of whose records are below
 * bound, older than min_age_s, leaving min_bytes; never the newest.
 * *bytes becomes what stays.
 */
static size_t
droppable(const struct journal_segment *segs, size_t nsegs, uint64_t bound,
    uint64_t min_age_s, uint64_t min_bytes, uint64_t now_us, uint64_t *bytes)
{
	size_t drop;

	for (drop = 0; drop + 1 < nsegs; drop++) {
		const struct journal_segment *g = &segs[drop];

		if (g->last >= bound || g->mtime_us + min_age_s * 1000000 >
		    now_us || *bytes - g->bytes < min_bytes)
			break;
		*bytes -= g->bytes;
	}
	return drop;
}

int
retention_run(const char *store, struct journal *j, struct shadow *s,
    struct retention_replica *replicas, size_t nreplicas,
    const struct retention_policy *p, uint64_t now_us,
    struct retention_result *out)
{
	struct journal_segment *segs = NULL;
	size_t nsegs, drop, slowest;
	uint64_t bytes, keep_from, bound;
	bool over, blocked;
	int r;

	memset(out, 0, sizeof(*out));
	for (;;) {
		free(segs);
		if ((r = journal_segments(j, &segs, &nsegs)) < 0)
			return r;
		bytes = journal_bytes(segs, nsegs);
		if (out->bytes_before == 0)
			out->bytes_before = bytes;
		bound = boundary(j, s, replicas, nreplicas, &slowest);
		/* The droppable prefix of whole segments. */
		drop = droppable(segs, nsegs, bound, p->pressure ? 0 :
		    p->min_age_s, p->pressure ? 0 : p->min_bytes, now_us,
		    &bytes);
		over = p->max_bytes != 0 && bytes > p->max_bytes;
		if (over) {
			/* Over the cap, min_age and min_bytes give way. */
			bytes = journal_bytes(segs, nsegs);
			drop = droppable(segs, nsegs, bound, 0, 0, now_us,
			    &bytes);
			over = bytes > p->max_bytes;
		}
		/*
		 * Only a replica that lacks records holds the journal over
		 * the cap; otherwise what stays is the newest segment, which
		 * no policy can shrink.
		 */
		blocked = over && drop + 1 < nsegs && segs[drop].last >= bound;
		if (!blocked || p->cap != RETENTION_RESYNC ||
		    slowest == nreplicas)
			break;
		/* Over the cap: the slowest replica gives way, loudly. */
		log_error("store=%s replica=%s event=needs_full_resync "
		    "cursor=%llu journal_bytes=%llu max_bytes=%llu "
		    "reason=\"journal over its size cap\"", store,
		    replicas[slowest].name,
		    (unsigned long long)cursor_lsn(replicas[slowest].cursor),
		    (unsigned long long)bytes,
		    (unsigned long long)p->max_bytes);
		r = cursor_reset(replicas[slowest].cursor,
		    cursor_lsn(replicas[slowest].cursor),
		    cursor_flags(replicas[slowest].cursor) |
		    CURSOR_NEEDS_RESYNC);
		if (r < 0) {
			free(segs);
			return r;
		}
		out->replicas_marked++;
	}
	keep_from = drop < nsegs ? segs[drop].first : 0;
	if (drop > 0) {
		if ((r = journal_drop_before(j, keep_from)) < 0) {
			free(segs);
			return r;
		}
		out->segments_dropped = (size_t)r;
		if ((r = shadow_begin(s)) == 0) {
			r = shadow_body_drop_before(s, keep_from);
			if (r == 0)
				r = shadow_commit(s, shadow_lsn(s));
			else
				shadow_rollback(s);
		}
		if (r < 0) {
			free(segs);
			return r;
		}
		log_info("store=%s event=retention dropped_segments=%zu "
		    "keep_from=%llu bytes=%llu", store, out->segments_dropped,
		    (unsigned long long)keep_from, (unsigned long long)bytes);
	}
	if (p->pressure) {
		if (drop > 0)
			log_warnx("store=%s event=retention_pressure "
			    "dropped_segments=%zu note=\"disk below its free-"
			    "space floor: dropped at once what every replica "
			    "has, ignoring retention_min_age\"", store, drop);
		/* The newest segment holds records and every replica has
		 * them: roll it, so that it is no longer the newest. */
		out->roll = nsegs > 0 && segs[nsegs - 1].last >=
		    segs[nsegs - 1].first && segs[nsegs - 1].last < bound;
	}
	out->keep_from = keep_from;
	out->bytes_after = bytes;
	if (over && !blocked)
		log_warnx("store=%s event=journal_over_cap journal_bytes=%llu "
		    "max_bytes=%llu note=\"every replica has it all; the "
		    "newest segment alone is over journal_max_bytes: raise it "
		    "above journal_segment_bytes\"", store,
		    (unsigned long long)bytes, (unsigned long long)p->max_bytes);
	if (blocked && p->cap == RETENTION_REFUSE) {
		out->refuse_writes = true;
		log_error("store=%s event=journal_full journal_bytes=%llu "
		    "max_bytes=%llu note=\"refusing the master's writes until "
		    "replicas catch up\"", store, (unsigned long long)bytes,
		    (unsigned long long)p->max_bytes);
	}
	free(segs);
	return 0;
}
