/*
 * snapshot.h -- a store and its replicas as plain structs (stats.h).
 *
 * Read on the event loop: snapshot_store_count() and snapshot_store()
 * copy one store and its replicas into plain structs, so a caller can
 * format them without holding anything.
 */
#ifndef SR_SNAPSHOT_H
#define SR_SNAPSHOT_H

#include <stddef.h>

#include "relay/ops/stats.h"

/* Number of stores (those removed by a reload are not counted), those
 * that could not be opened included (last, with failed set). */
size_t snapshot_store_count(void);
/* Fills out with store i (0-based, of those counted); out->links is
 * malloc'ed: stats_store_release() frees it. */
void snapshot_store(size_t i, struct stats_store *out);

#endif
