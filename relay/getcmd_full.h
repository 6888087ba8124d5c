/*
 * getcmd_full.h -- a mailbox with all its records, printed a page of
 * records at a time: the reply to GET FULLMAILBOX, and the APPLY
 * MAILBOX a link sends to repair a replica.
 *
 * The text is byte for byte what printing getcmd_mailbox_dlist(...,
 * true) whole gives; only the memory differs: a page of records (at
 * most GETCMD_FULL_PAGE, or SYNCRELAY_FULL_PAGE from the environment,
 * read once, for tests) as a tree, never the whole mailbox.  A reply of
 * more than one page reads from a snapshot of the shadow (shadow.h), so
 * a change the master commits between two pages is not in it.
 */
#ifndef SR_GETCMD_FULL_H
#define SR_GETCMD_FULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "protocol/dlist_print.h"
#include "protocol/result.h"
#include "storage/shadow.h"

#define GETCMD_FULL_PAGE 2048

struct getcmd_full;

/*
 * Starts printing the mailbox with this uniqueid as "verb MAILBOX
 * %(...)": the fields before RECORD go into out now (out NULL: they
 * are held and come first from getcmd_full_next()).  verb is "*" for
 * an untagged reply (mode DLIST_PRINT_SERVER), "APPLY" for a command
 * (DLIST_PRINT_CLIENT).  Returns 0 and *fp, -ENOENT when the shadow has
 * no such mailbox, or -EIO (why says what failed).
 */
int getcmd_full_start(struct shadow *s, const char *uniqueid,
    const char *verb, enum dlist_print_mode mode, struct buf *out,
    struct getcmd_full **fp, char *why, size_t why_len);
/*
 * Appends the next page of records to out (the last one ends the
 * line).  Returns 1 while more is to come, 0 once the text is whole, or
 * -EIO (why): the text in out is then cut short and cannot be finished.
 */
int getcmd_full_next(struct getcmd_full *f, struct buf *out, char *why,
    size_t why_len);
/*
 * GET FULLMAILBOX <e>: RESULT_OK with *fp begun (its first text in
 * out), else the result to answer (why says why) and *fp NULL.
 */
enum result_code getcmd_full_answer(struct shadow *s, const struct dlist *e,
    struct buf *out, struct getcmd_full **fp, char *why, size_t why_len);
/*
 * For staging the bodies before the text is sent: appends to list the
 * RECORD kvlists of at most max records with UID >= *from, from the
 * state the text will be printed from (a snapshot is taken now, so
 * nothing the master commits later gets in), and moves *from past
 * them.  Returns 1 if records remain after them, 0 if not, or -EIO.
 */
int getcmd_full_stage(struct getcmd_full *f, uint32_t *from, size_t max,
    struct dlist *list, char *why, size_t why_len);
/*
 * A link's whole-mailbox command without its records: the MAILBOX
 * kvlist of getcmd_mailbox_dlist() with an empty RECORD list marked as
 * "from the shadow, a page at a time" (getcmd_full_is_paged()); an
 * intermediate's short form has no RECORD field and is not marked.
 * The link stages the records' bodies (getcmd_full_stage()) and prints
 * the records (getcmd_full_next()) from one snapshot.
 */
struct dlist *getcmd_full_header(struct shadow *s,
    const struct shadow_mailbox *mb);
bool getcmd_full_is_paged(const struct dlist *cmd);
void getcmd_full_free(struct getcmd_full **fp);
/* The page size in records in force (GETCMD_FULL_PAGE unless the
 * environment's SYNCRELAY_FULL_PAGE says otherwise). */
size_t getcmd_full_page(void);
/* Sets it (0: back to the default), for the unit tests. */
void getcmd_full_set_page(size_t n);

#endif
