/*
 * diskguard.h -- a store on a file system that fills up.
 *
 * A store refuses its master's writes while the file system under the
 * datadir is below its free-space floor (disk_free_min_bytes or
 * disk_free_min_percent, the larger), while its journal holds the
 * sticky error of a failed write, or while its shadow lags behind the
 * journal after a failed shadow update.  Once the master has nothing in
 * flight, the journal is recovered and the shadow brought forward; the
 * floor met again, writes are accepted, without a restart.  store.c runs the checks
 * from a timer; session.c asks before each write.
 */
#ifndef SR_DISKGUARD_H
#define SR_DISKGUARD_H

struct store;

/* Measures the free space of st's file system; logs a change of state. */
void diskguard_check(struct store *st, double now);
/*
 * NULL if st may take a write from its master now; else the text of the
 * NO to send (a real sync_server's "Unknown error" and why), after
 * logging the refusal of sub and counting it.
 */
const char *diskguard_refusal(struct store *st, const char *sub);
/*
 * With the master quiet: recovers a failed journal and brings a stale
 * shadow forward to the journal.  Returns 0 when the store is whole
 * again (or was), -1 if it must stay refusing (logged).
 */
int diskguard_recover(struct store *st);

#endif
