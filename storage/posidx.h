/*
 * posidx.h -- where a record is in the journal, found by its LSN without
 * reading its segment from the start each time.
 *
 * The replica links send bodies they passed long ago (a mailbox of
 * 100,000 messages refers to bodies far behind), and the shadow knows
 * only a body's LSN.  Reading a 64 MB segment from its start for every
 * such body made replay quadratic; this index reads each segment once
 * and keeps a sparse list of positions in it.
 */
#ifndef SR_POSIDX_H
#define SR_POSIDX_H

#include <stddef.h>
#include <stdint.h>

#include "storage/fileops.h"

/*
 * One checkpoint per POSIDX_STRIDE bytes of segment at most, for the
 * POSIDX_SEGS segments used last: its memory is at most POSIDX_SEGS x
 * (segment bytes / POSIDX_STRIDE + 1) x 16 bytes (64 KB for 64 MB
 * segments), and reading from a checkpoint to a record passes at most
 * POSIDX_STRIDE bytes of records before it.
 */
#define POSIDX_STRIDE ((uint64_t)64 * 1024)
#define POSIDX_SEGS 4

struct posidx;

struct posidx *posidx_new(const char *dir, const struct fileops *fops);
void posidx_free(struct posidx **pp);
/*
 * Where to start reading to reach the record at lsn: its segment and an
 * offset at or before it in that segment, at most POSIDX_STRIDE bytes of
 * other records before it.  The first query in a segment reads it up to
 * lsn (checking each record); later ones in it read nothing.  Returns 0,
 * or a negative errno (-ENOENT: no such record) with err set.
 * journal_body_stream_open_at() takes the answer as its hint.
 */
int posidx_find(struct posidx *p, uint64_t lsn, uint64_t *segment,
    uint64_t *offset, char *err, size_t err_len);
/* Records read so far to build the index (for tests and figures). */
uint64_t posidx_records_read(const struct posidx *p);
/* Bytes the index holds now. */
size_t posidx_bytes(const struct posidx *p);

#endif
