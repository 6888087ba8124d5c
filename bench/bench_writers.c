/*
 * bench_writers.c -- does one store's commit wait behind other stores'
 * batches now that the journal writers are a shared pool (issue 17)?
 *
 *   bench_writers [DIR [NBUSY [SECONDS]]]   (/tmp, 8, 10)
 *
 * Store A appends a small record (300 bytes, a master's APPLY MAILBOX)
 * every 20 ms, one at a time, and times each from journal_append() to
 * its completion (durable: fdatasync done).  NBUSY other stores write
 * as fast as they can: 64 KB records, up to 4 MB in flight each.  Three
 * runs, in this order (the pool can grow, not shrink):
 *   alone   A only, pool of 2 threads
 *   pool    A with the NBUSY busy stores, pool of 2 threads
 *   wide    the same with NBUSY + 1 threads: a thread per journal, as
 *           before the pool
 * and for each: A's p50/p99/max commit latency and the busy stores'
 * MB/s.  Then what reopening an idle store costs: 200 shadows, each
 * closed by shadow_idle(), timed on their first query (reopen + query)
 * against a second one (warm); and 200 journals, each closed by
 * journal_idle(), timed on their first append (reopen the segment,
 * write, fdatasync) against a second one.  Every record is really fdatasync'ed in DIR: the figures are the
 * disk's as much as the relay's; run it where the datadir would be.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "storage/journal.h"
#include "storage/shadow.h"
#include "storage/workpool.h"
#include "tests/unit/journal_util.h"

#define BUSY_REC (64 * 1024)
#define BUSY_INFLIGHT (4 * 1024 * 1024)
#define A_EVERY 0.020
#define MAXLAT 100000

struct busy {
	struct journal *j;
	size_t inflight;
	uint64_t done_bytes;
};

static double a_t0, lat[MAXLAT];
static size_t nlat;
static int a_waiting, failed;

static void
a_done(void *arg, uint64_t lsn, int err)
{
	(void)arg;
	(void)lsn;
	if (err)
		failed++;
	if (nlat < MAXLAT)
		lat[nlat++] = mono_seconds() - a_t0;
	a_waiting = 0;
}

static void
busy_done(void *arg, uint64_t lsn, int err)
{
	struct busy *b = arg;

	(void)lsn;
	if (err)
		failed++;
	b->inflight -= BUSY_REC;
	b->done_bytes += BUSY_REC;
}

static int
cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double
pct(double p)
{
	size_t i;

	if (nlat == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)nlat);
	return lat[i >= nlat ? nlat - 1 : i];
}

/* The journal base/name, opened (open_j() says why if not: exit). */
static struct journal *
open_named(const char *base, const char *name)
{
	char dir[4096];
	struct journal *j;

	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if ((j = open_j(dir, NULL)) == NULL)
		exit(1);
	return j;
}

static void
run(const char *label, const char *base, int nbusy, double secs,
    const char *arec, const char *brec)
{
	struct busy *b = calloc((size_t)(nbusy ? nbusy : 1), sizeof(*b));
	struct journal *a;
	char name[64];
	double t0, next, end;
	uint64_t bytes = 0;
	int i;

	snprintf(name, sizeof(name), "%s-a", label);
	a = open_named(base, name);
	for (i = 0; i < nbusy; i++) {
		snprintf(name, sizeof(name), "%s-b%d", label, i);
		b[i].j = open_named(base, name);
	}
	nlat = 0;
	t0 = mono_seconds();
	next = t0;
	end = t0 + secs;
	while (mono_seconds() < end || a_waiting) {
		journal_collect(a);
		for (i = 0; i < nbusy; i++)
			journal_collect(b[i].j);
		if (!a_waiting && mono_seconds() >= next && mono_seconds() < end) {
			a_waiting = 1;
			a_t0 = mono_seconds();
			journal_append(a, JOURNAL_COMMAND, arec, 300, a_done,
			    NULL);
			next += A_EVERY;
		}
		for (i = 0; i < nbusy && mono_seconds() < end; i++)
			while (b[i].inflight + BUSY_REC <= BUSY_INFLIGHT) {
				b[i].inflight += BUSY_REC;
				journal_append(b[i].j, JOURNAL_COMMAND, brec,
				    BUSY_REC, busy_done, &b[i]);
			}
		usleep(200);
	}
	for (i = 0; i < nbusy; i++) {
		journal_close(&b[i].j);
		bytes += b[i].done_bytes;
	}
	journal_close(&a);
	qsort(lat, nlat, sizeof(lat[0]), cmp);
	printf("  %-6s %2u threads, %2d busy stores: A commit p50 %6.2f ms "
	    "p99 %7.2f ms max %7.2f ms (%zu commits); busy %6.1f MB/s\n",
	    label, workpool_threads(), nbusy, pct(50) * 1e3, pct(99) * 1e3,
	    nlat ? lat[nlat - 1] * 1e3 : 0.0, nlat,
	    (double)bytes / secs / 1e6);
	fflush(stdout);
	free(b);
}

static void
stats(const char *what, double *v, size_t n)
{
	double sum = 0;
	size_t i;

	qsort(v, n, sizeof(*v), cmp);
	for (i = 0; i < n; i++)
		sum += v[i];
	printf("  %-34s mean %6.3f ms p50 %6.3f ms p99 %6.3f ms\n", what,
	    sum / (double)n * 1e3, v[n / 2] * 1e3, v[n * 99 / 100] * 1e3);
}

#define NREOPEN 200

static void
reopen(const char *base)
{
	static struct shadow *sh[NREOPEN];
	static struct journal *js[NREOPEN];
	static double cold[NREOPEN], warm[NREOPEN];
	struct shadow_mailbox mb;
	char path[4096], err[512], name[64];
	double t;
	int i;

	for (i = 0; i < NREOPEN; i++) {
		snprintf(path, sizeof(path), "%s/sh%d.db", base, i);
		if (shadow_open(path, &sh[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		memset(&mb, 0, sizeof(mb));
		mb.uniqueid = name;
		mb.name = (char *)(uintptr_t)"user.bench";
		mb.partition = (char *)(uintptr_t)"default";
		snprintf(name, sizeof(name), "u%d", i);
		shadow_begin(sh[i]);
		shadow_mailbox_put(sh[i], &mb);
		shadow_commit(sh[i], 1);
		shadow_idle(sh[i]);
	}
	for (i = 0; i < NREOPEN; i++) {
		t = mono_seconds();
		if (shadow_mailbox_by_name(sh[i], "user.bench", &mb) == 0)
			shadow_mailbox_free(&mb);
		cold[i] = mono_seconds() - t;
		t = mono_seconds();
		if (shadow_mailbox_by_name(sh[i], "user.bench", &mb) == 0)
			shadow_mailbox_free(&mb);
		warm[i] = mono_seconds() - t;
	}
	stats("shadow, first query after idle", cold, NREOPEN);
	stats("shadow, next query (open)", warm, NREOPEN);
	for (i = 0; i < NREOPEN; i++)
		shadow_close(&sh[i]);
	for (i = 0; i < NREOPEN; i++) {
		snprintf(name, sizeof(name), "rj%d", i);
		js[i] = open_named(base, name);
		a_waiting = 1;
		journal_append(js[i], JOURNAL_COMMAND, "x", 1, a_done, NULL);
		while (a_waiting)
			journal_collect(js[i]);
		journal_idle(js[i]);
	}
	usleep(200000);
	for (i = 0; i < NREOPEN; i++) {
		nlat = 0;
		a_waiting = 1;
		a_t0 = mono_seconds();
		journal_append(js[i], JOURNAL_COMMAND, "y", 1, a_done, NULL);
		while (a_waiting)
			journal_collect(js[i]);
		cold[i] = lat[0];
		nlat = 0;
		a_waiting = 1;
		a_t0 = mono_seconds();
		journal_append(js[i], JOURNAL_COMMAND, "z", 1, a_done, NULL);
		while (a_waiting)
			journal_collect(js[i]);
		warm[i] = lat[0];
		journal_close(&js[i]);
	}
	stats("journal, first append after idle", cold, NREOPEN);
	stats("journal, next append", warm, NREOPEN);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	int nbusy = argc > 2 ? atoi(argv[2]) : 8;
	double secs = argc > 3 ? atof(argv[3]) : 10;
	char *base, *arec = malloc(300), *brec = malloc(BUSY_REC);
	uint32_t x = 12345;
	size_t i;

	base = malloc(strlen(dir) + 32);
	sprintf(base, "%s/bench-writers-XXXXXX", dir);
	if (mkdtemp(base) == NULL) {
		perror(base);
		return 1;
	}
	/* Text-like bytes: compress about as mail does. */
	for (i = 0; i < BUSY_REC; i++) {
		x = x * 1103515245u + 12345u;
		brec[i] = (char)("etaoin shrdlu\r\n"[(x >> 16) % 15]);
	}
	memcpy(arec, brec, 300);
	printf("bench_writers: in %s, %d busy stores, %g s each run\n", base,
	    nbusy, secs);
	workpool_set_threads(2);
	run("alone", base, 0, secs, arec, brec);
	run("pool", base, nbusy, secs, arec, brec);
	workpool_set_threads((unsigned)nbusy + 1);
	run("wide", base, nbusy, secs, arec, brec);
	printf("reopening an idle store (%d each, durable appends):\n",
	    NREOPEN);
	reopen(base);
	rm_rf(base);
	free(base);
	free(arec);
	free(brec);
	return failed ? 1 : 0;
}
