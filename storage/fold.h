/*
 * fold.h -- bring a shadow forward by replaying the journal into it.
 */
#ifndef SR_FOLD_H
#define SR_FOLD_H

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
 * Applies one journal record's payload (a command's text) to s inside
 * the caller's transaction; used by fold_journal() and by ingest.
 * Returns 0, or -EINVAL if the text is not an APPLY command.
 */
struct apply_outcome;
int fold_command_text(struct shadow *s, const char *text, size_t len,
    struct apply_outcome *out);

#endif
