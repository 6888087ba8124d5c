/*
 * diskguard.c -- refusing cleanly on a full disk and recovering by
 * itself.
 *
 * Why a file of its own: a full disk touches the journal (sticky error),
 * the shadow (SQLITE_FULL) and the master's replies at once, and the
 * session and store files are already at their size limit.  The floor
 * keeps room for the shadow, the cursors and a segment roll: the master
 * is refused (a real sync_server's "NO Unknown error" for an I/O error,
 * with the reason) before a write can fail.  A write that fails anyway
 * leaves the journal failed; as soon as the master has nothing in flight
 * the journal is recovered like at start (its half-written tail cut;
 * that frees space, it needs none) and the shadow folded forward from
 * the journal, so that shadow = fold(journal) holds before the next
 * write is accepted, which waits for the floor to be met again.  While
 * the shadow lags, retention waits too: the fold needs those records.  Nothing is acknowledged that did
 * not become durable in both (invariant 1).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "lib/log.h"
#include "relay/diskguard.h"
#include "relay/store.h"
#include "storage/fold.h"

void
diskguard_check(struct store *st, double now)
{
	struct statvfs sv;
	uint64_t total, pct_floor;
	bool full;

	if (statvfs(st->dir, &sv) < 0)
		return;		/* keep the last figures */
	st->disk_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	st->disk_floor = config_num(st->config, OPT_disk_free_min_bytes);
	pct_floor = total / 100 * config_num(st->config,
	    OPT_disk_free_min_percent);
	if (pct_floor > st->disk_floor)
		st->disk_floor = pct_floor;
	full = st->disk_free < st->disk_floor;
	if (full && !st->disk_full) {
		st->disk_full_since = now;
		log_error("store=%s event=disk_full free=%llu floor=%llu "
		    "note=\"refusing the master's writes until there is room "
		    "again\"", st->name, (unsigned long long)st->disk_free,
		    (unsigned long long)st->disk_floor);
	} else if (!full && st->disk_full) {
		log_info("store=%s event=disk_room free=%llu floor=%llu "
		    "full_seconds=%.0f", st->name,
		    (unsigned long long)st->disk_free,
		    (unsigned long long)st->disk_floor,
		    now - st->disk_full_since);
	}
	st->disk_full = full;
}

const char *
diskguard_refusal(struct store *st, const char *sub)
{
	const char *why;
	int r;

	/* A statvfs before every write: a few microseconds, and a stale
	 * figure would let a burst of bodies run into ENOSPC. */
	diskguard_check(st, ev_now(st->loop));
	if (st->disk_full) {
		log_error("store=%s event=refused sub=%s reason=\"disk full: "
		    "%llu bytes free, floor %llu\"", st->name, sub,
		    (unsigned long long)st->disk_free,
		    (unsigned long long)st->disk_floor);
		why = "Unknown error (the relay's disk is full: no space "
		    "left for this store until space is freed)";
	} else if ((r = journal_error(st->journal)) != 0) {
		log_error("store=%s event=refused sub=%s reason=\"journal "
		    "failed: %s\"", st->name, sub, strerror(-r));
		why = "Unknown error (the relay's journal cannot be written)";
	} else if (st->shadow_stale) {
		log_error("store=%s event=refused sub=%s reason=\"shadow "
		    "behind the journal after a failed update\"", st->name,
		    sub);
		why = "Unknown error (the relay's shadow cannot be written)";
	} else {
		return NULL;
	}
	stats_count_code(st->errors, &st->nerrors, st->disk_full ?
	    "disk_full" : "storage_failed");
	return why;
}

int
diskguard_recover(struct store *st)
{
	char path[4096], e[512];
	uint64_t durable;
	long n;
	int r;

	if (journal_error(st->journal) == 0 && !st->shadow_stale)
		return 0;
	if ((r = journal_error(st->journal)) != 0) {
		if (journal_recover(st->journal, e, sizeof(e)) < 0) {
			log_error("store=%s event=journal_recover_failed "
			    "error=\"%s\"", st->name, e);
			return -1;
		}
		log_info("store=%s event=journal_recovered lsn=%llu "
		    "after=\"%s\"", st->name, (unsigned long long)
		    journal_durable_lsn(st->journal), strerror(-r));
		st->shadow_stale = true;	/* check it against the journal */
	}
	durable = journal_durable_lsn(st->journal);
	if (shadow_lsn(st->shadow) > durable) {
		/* Only a journal that lost durable records gets here. */
		log_error("store=%s event=shadow_ahead shadow_lsn=%llu "
		    "journal_lsn=%llu note=\"refusing writes: the shadow "
		    "holds records the journal lacks; restart with the "
		    "shadow removed to rebuild it\"", st->name,
		    (unsigned long long)shadow_lsn(st->shadow),
		    (unsigned long long)durable);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/journal", st->dir);
	n = fold_journal(st->shadow, path, durable, e, sizeof(e));
	if (n < 0) {
		log_error("store=%s event=shadow_refold_failed error=\"%s\"",
		    st->name, e);
		return -1;
	}
	st->shadow_stale = false;
	log_info("store=%s event=store_recovered records_folded=%ld lsn=%llu "
	    "note=\"accepting the master's writes again\"", st->name, n,
	    (unsigned long long)durable);
	return 0;
}
