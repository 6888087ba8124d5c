/*
 * fold.h -- bring a shadow forward by replaying the journal into it.
 */
#ifndef SR_FOLD_H
#define SR_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/shadow.h"

/*
 * Applies every journal record in dir with LSN > shadow_lsn(s) and
 * <= upto (0: all) to s: bodies go to the body index, commands through
 * apply_command() as replays.  Returns the number of records applied, or
 * a negative errno with a reason in err.
 */
long fold_journal(struct shadow *s, const char *dir, uint64_t upto,
    char *err, size_t err_len);
struct dlist;
/*
 * The APPLY entry of a journaled command's text (as session.c writes it:
 * the command line without its CRLF), or NULL if it is not one.  The
 * caller frees it.
 */
struct dlist *fold_parse_command(const char *text, size_t len);
/*
 * The same for any record: also a seed record ("SEED MAILBOX %(...)",
 * "SEED SUB ...": state a link took from a replica, so that the shadow
 * answers for what the master never sent; links do not replay them),
 * read as the APPLY entry it stands for, with *seed set.
 */
struct dlist *fold_parse_record(const char *text, size_t len, bool *seed);
/*
 * Applies one journal record's payload (a command's text) to s inside
 * the caller's transaction; used by fold_journal() and by ingest.
 * Returns 0, or -EINVAL if the text is not an APPLY command.
 */
struct apply_outcome;
int fold_command_text(struct shadow *s, const char *text, size_t len,
    struct apply_outcome *out);

#endif
