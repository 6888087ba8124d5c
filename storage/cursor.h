/*
 * cursor.h -- a replica's crash-safe position in its store's journal.
 *
 * The cursor is the last LSN the replica acknowledged.  It only moves
 * forward, except through cursor_reset() (a full resync).  It carries
 * flags, e.g. that the replica needs a full resync because retention
 * dropped records it had not seen.  The format is described in
 * cursor.c.  cursor_store() makes the new value durable before it
 * returns, so it blocks on the disk: the relay calls it off its event
 * loop.
 */
#ifndef SR_CURSOR_H
#define SR_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "storage/fileops.h"

#define CURSOR_NEEDS_RESYNC 0x1u

struct cursor;

/*
 * Opens (creating at LSN 0 if absent) the cursor file at path.  Returns
 * 0, or a negative errno with a reason in err (-EBADMSG when neither
 * copy in the file is valid).
 */
int cursor_open(const char *path, const struct fileops *fops,
    struct cursor **out, char *err, size_t err_len);
void cursor_close(struct cursor **cp);
/*
 * Reads the cursor file at path without changing it (for the tools).
 * Returns 0 with *lsn and *flags set, -ENOENT when there is none, or
 * another negative errno (-EBADMSG: no valid slot) with err set.
 */
int cursor_peek(const char *path, uint64_t *lsn, uint32_t *flags, char *err,
    size_t err_len);
uint64_t cursor_lsn(const struct cursor *c);
uint32_t cursor_flags(const struct cursor *c);
/*
 * Records that the replica has everything up to lsn, durably.  Returns
 * 0, -EINVAL if lsn is below the current value, or a negative errno
 * from the disk (the cursor then keeps its old value).
 */
int cursor_store(struct cursor *c, uint64_t lsn);
/* Sets lsn and flags unconditionally (resync, or flag changes). */
int cursor_reset(struct cursor *c, uint64_t lsn, uint32_t flags);

#endif
