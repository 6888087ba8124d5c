/*
 * metrics.h -- Prometheus metrics over HTTP (GET /metrics).
 *
 * The HTTP server (libmicrohttpd) runs on the daemon's event loop, in
 * its external polling mode: no thread of its own, so every scrape
 * takes its stats snapshot (stats.h) on the loop, like everything else
 * that reads a store.
 */
#ifndef SR_METRICS_H
#define SR_METRICS_H

#include <stddef.h>

#include <ev.h>

#include "lib/buf.h"
#include "relay/ingest/guard.h"
#include "relay/ops/stats.h"

struct metrics;

/*
 * Binds address ("host:port", "[v6]:port") and serves /metrics on loop.
 * Returns NULL with err set when it cannot (a port in use, a bad
 * address).  start_time is the daemon's start, epoch seconds.
 */
struct metrics *metrics_new(struct ev_loop *loop, const char *address,
    double start_time, char *err, size_t err_len);
/* Stops serving, closes the socket; NULL-safe; sets *mp NULL. */
void metrics_free(struct metrics **mp);
/*
 * Asks every request for basic authentication by a user of the htpasswd
 * file at path (bcrypt, as htpasswd -B writes), or for none when path is
 * "".  Returns 0, or -1 with err set, keeping the users it had, when the
 * file cannot be used.
 */
int metrics_set_auth(struct metrics *m, const char *path, char *err,
    size_t err_len);
/* The bound address, "host:port" (the real port when 0 was asked). */
const char *metrics_address(const struct metrics *m);

/*
 * Appends the text exposition format (version 0.0.4) of n store
 * snapshots to out: HELP and TYPE for every family, then its samples.
 */
void metrics_format(struct buf *out, const struct stats_store *stores,
    size_t n, double start_time);

/* Appends the families of the unauthenticated side (guard.h). */
void metrics_format_guard(struct buf *out, const struct guard_counts *g);

#endif
