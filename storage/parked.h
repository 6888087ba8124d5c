/*
 * parked.h -- what a replica refused that the relay parked, kept beside
 * the replica's cursor.
 *
 * When a replica refuses a record and repair cannot fix it, the link
 * parks what the record concerns (a mailbox, or another object such as
 * a sieve script or a quota root) and replays the rest of the journal.
 * The cursor then passes the refused record, so the parked list must be
 * durable first: it holds the obligation to bring that object to the
 * master's state on the replica.  parked_save() replaces the file
 * atomically (a temporary file, fsync, rename, fsync of the directory).
 *
 * File format, text, one entry a line after a header line:
 *
 *   syncrelay-parked 1
 *   KIND<TAB>KEY<TAB>LSN<TAB>SINCE<TAB>TRIES<TAB>NAME<TAB>REPLY
 *
 * KIND is M (a mailbox: KEY is its UNIQUEID; the replica is given the
 * whole mailbox from the shadow) or R (another record: KEY says what it
 * changes, e.g. "SIEVE alice vacation"; the record at LSN is sent
 * again).  LSN is the first record refused, SINCE the time it was
 * parked (seconds since the epoch), TRIES how often the replica refused
 * it, NAME the mailbox or object for people, REPLY the replica's reply
 * or the reason.  Tabs, CR and LF inside fields are written as spaces.
 */
#ifndef SR_PARKED_H
#define SR_PARKED_H

#include <stddef.h>
#include <stdint.h>

#include "storage/fileops.h"

#define PARKED_MAILBOX 'M'
#define PARKED_RECORD 'R'

struct parked {
	char kind;		/* PARKED_MAILBOX or PARKED_RECORD */
	char key[512];
	char name[512];
	uint64_t lsn;
	int64_t since;
	uint32_t tries;
	char reply[512];
};

/*
 * Reads the parked list at path into *out (n entries, caller frees);
 * a missing file is an empty list.  Returns 0, or a negative errno with
 * err set (unreadable or malformed: nothing is returned).
 */
int parked_load(const char *path, const struct fileops *fo,
    struct parked **out, size_t *n, char *err, size_t err_len);
/*
 * Makes the n entries of v the parked list at path, durably; n == 0
 * removes the file.  Returns 0 or a negative errno.
 */
int parked_save(const char *path, const struct fileops *fo,
    const struct parked *v, size_t n);

#endif
