/*
 * spill.h -- the RECORD list of a huge APPLY MAILBOX, kept in a file.
 *
 * A master's one-shot sync of a mailbox with 100,000 messages sends
 * them in one APPLY MAILBOX.  Held as a dlist tree that is hundreds of
 * megabytes; the session instead hands each RECORD element, as the
 * parser completes it (dlist_parser_set_record_hook()), to spill_add(),
 * which prints it to a file and lets it go.  apply.c then reads the
 * records back one at a time (spill_each()), and the journal copies the
 * file into the command's record in bounded pieces
 * (journal_append_file()).  The file holds the elements exactly as the
 * journal's text has them between "RECORD (" and ")": printed in client
 * mode ({N+} literals), separated by one space.
 */
#ifndef SR_SPILL_H
#define SR_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "protocol/dlist.h"

struct spill;

/*
 * Creates an empty spill file in dir (created if missing), unlinked at
 * once so that nothing outlives the process.  Returns NULL with errno
 * set on failure.
 */
struct spill *spill_new(const char *dir);
/* Closes and frees *sp; NULL-safe; sets *sp to NULL. */
void spill_free(struct spill **sp);
/* Appends one element (not taken).  0 or a negative errno. */
int spill_add(struct spill *sp, const struct dlist *rec);
/* Elements added so far. */
size_t spill_count(const struct spill *sp);
/* Writes what is buffered; then the file's fd and its length in bytes
 * are the whole list.  0 or a negative errno. */
int spill_flush(struct spill *sp);
int spill_fd(const struct spill *sp);
uint64_t spill_bytes(const struct spill *sp);
/*
 * Parses the elements back, in order, one at a time, and calls fn for
 * each (the element is freed after the call).  Stops at fn's first
 * non-zero return and returns it; a negative errno if the file cannot
 * be read or parsed.  Memory: one element and a 64 KB buffer.
 */
int spill_each(struct spill *sp, int (*fn)(void *arg,
    const struct dlist *rec), void *arg);

/*
 * The command's text around its spilled records: head gets "verb key
 * %(... RECORD (" and tail ") ...)", printed in client mode, so that
 * head + the spill file + tail is exactly what csync_print_command()
 * (less its CRLF) prints for the entry with its records in place.
 * entry's RECORD list (the first list under that key) must be empty.
 * Appends to head and tail; 0 or a negative errno (-EINVAL: no RECORD
 * list, or entry is not a kvlist).
 */
int spill_print_around(const char *verb, const struct dlist *entry,
    struct buf *head, struct buf *tail);

#endif
