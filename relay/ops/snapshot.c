/*
 * snapshot.c -- a store and its replicas as plain structs (stats.h), for
 * the control socket and the metrics: the one place that reads the
 * store, its links and its master sessions together, so that none of
 * them needs to know the others' reporting.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "relay/replay/link.h"
#include "relay/ingest/order.h"
#include "relay/ops/snapshot.h"
#include "relay/store.h"
#include "storage/journal.h"

/* The i-th store still in the configuration. */
static struct store *
active_at(size_t i)
{
	size_t k, n = store_count();

	for (k = 0; k < n; k++)
		if (!store_at(k)->removed && i-- == 0)
			return store_at(k);
	return NULL;
}

size_t
snapshot_store_count(void)
{
	size_t k, n = store_count(), active = 0;

	for (k = 0; k < n; k++)
		active += !store_at(k)->removed;
	return active + store_failed_count();
}

/* A store set aside at start (store.h): its name and why. */
static void
failed_store(size_t i, struct stats_store *out)
{
	const struct store_failure *f = store_failed_at(i);

	if (f == NULL)
		return;
	snprintf(out->name, sizeof(out->name), "%s", f->name);
	snprintf(out->identity, sizeof(out->identity), "%s", f->identity);
	snprintf(out->failed_error, sizeof(out->failed_error), "%s",
	    f->error);
	out->failed = 1;
	out->refusing = 1;
}

void
snapshot_store(size_t i, struct stats_store *out)
{
	struct store *st = active_at(i);
	struct journal_stats js;
	size_t k;

	memset(out, 0, sizeof(*out));
	if (st == NULL) {	/* the failures come after the stores */
		failed_store(i - (snapshot_store_count() -
		    store_failed_count()), out);
		return;
	}
	snprintf(out->name, sizeof(out->name), "%s", st->name);
	snprintf(out->identity, sizeof(out->identity), "%s", st->identity);
	out->master_sessions = (unsigned)order_sessions(st);
	out->master_hosts = (unsigned)order_hosts(st);
	out->master_connected = out->master_sessions > 0;
	for (k = 0; k < out->master_sessions && k < STATS_MAX_PEERS; k++)
		snprintf(out->master_peers[k], sizeof(out->master_peers[k]),
		    "%s", order_peer_at(st, k));
	if (out->master_connected)
		snprintf(out->master_peer, sizeof(out->master_peer), "%s",
		    out->master_peers[0]);
	out->master_last_command = st->master_last_command;
	journal_get_stats(st->journal, &js);
	out->head_lsn = js.durable_lsn;
	out->first_lsn = js.first_lsn;
	out->journal_bytes = js.bytes;
	out->journal_segments = js.segments;
	out->fsyncs = js.fsyncs;
	memcpy(out->fsync_buckets, js.fsync_buckets,
	    sizeof(out->fsync_buckets));
	out->fsync_seconds_sum = js.fsync_seconds_sum;
	out->disk_full = st->disk_full;
	/* ev_now() is epoch time with libev's default clock. */
	out->disk_full_since = st->disk_full ? st->disk_full_since : 0;
	out->disk_free_bytes = st->disk_free;
	out->disk_floor_bytes = st->disk_floor;
	out->storage_failed = journal_error(st->journal) != 0 ||
	    st->shadow_stale;
	out->refusing = out->disk_full || out->storage_failed;
	out->disk_full_since_s = (uint64_t)out->disk_full_since;
	out->ingested_records = st->ingested_records;
	out->ingested_bytes = st->ingested_bytes;
	memcpy(out->errors, st->errors, sizeof(out->errors));
	out->nerrors = st->nerrors;
	out->links = xcalloc(st->nlinks + 1, sizeof(*out->links));
	for (k = 0; k < st->nlinks; k++)
		link_stats(st->links[k], &out->links[out->nlinks++]);
}
