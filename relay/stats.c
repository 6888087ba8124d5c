/*
 * stats.c -- snapshots of stores and links (see stats.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "relay/link.h"
#include "relay/session.h"
#include "relay/stats.h"
#include "relay/store.h"
#include "storage/journal.h"

_Static_assert(STATS_FSYNC_BUCKETS == JOURNAL_FSYNC_BUCKETS,
    "the fsync histogram is the journal's");
const double *const stats_fsync_bounds = journal_fsync_bounds;

/*
 * The first STATS_MAX_CODES - 1 distinct codes get a slot each; the last
 * slot counts every later one as "other", so no count is ever lost.
 */
void
stats_count_code(struct stats_code_count *t, size_t *n, const char *code)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(t[i].code, code) == 0) {
			t[i].n++;
			return;
		}
	if (*n == STATS_MAX_CODES) {
		t[STATS_MAX_CODES - 1].n++;	/* "other" */
		return;
	}
	i = (*n)++;
	if (i == STATS_MAX_CODES - 1)
		code = "other";
	snprintf(t[i].code, sizeof(t[i].code), "%s", code);
	t[i].n = 1;
}

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
stats_store_count(void)
{
	size_t k, n = store_count(), active = 0;

	for (k = 0; k < n; k++)
		active += !store_at(k)->removed;
	return active;
}

void
stats_store(size_t i, struct stats_store *out)
{
	struct store *st = active_at(i);
	struct journal_stats js;
	size_t k;

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return;
	snprintf(out->name, sizeof(out->name), "%s", st->name);
	snprintf(out->identity, sizeof(out->identity), "%s", st->identity);
	if (st->master != NULL) {
		out->master_connected = true;
		snprintf(out->master_peer, sizeof(out->master_peer), "%s",
		    session_peer(st->master));
	}
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
	out->ingested_records = st->ingested_records;
	out->ingested_bytes = st->ingested_bytes;
	memcpy(out->errors, st->errors, sizeof(out->errors));
	out->nerrors = st->nerrors;
	out->links = xcalloc(st->nlinks + 1, sizeof(*out->links));
	for (k = 0; k < st->nlinks; k++)
		link_stats(st->links[k], &out->links[out->nlinks++]);
}

void
stats_store_release(struct stats_store *s)
{
	free(s->links);
	s->links = NULL;
	s->nlinks = 0;
}
