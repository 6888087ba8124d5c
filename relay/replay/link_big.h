/*
 * link_big.h -- a big journaled APPLY MAILBOX replayed in bounded
 * memory (link_big.c): its header parsed alone, its records read in
 * batches for staging, its text copied from the journal to the socket.
 */
#ifndef SR_LINK_BIG_H
#define SR_LINK_BIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "storage/journal.h"

struct link;
struct link_big;


/*
 * Reads command record rec (of the journal in storedir/journal) through
 * once, a record at a time.  An APPLY MAILBOX whose RECORD list is its
 * last item gives 1: *hdr is the entry with RECORD empty (what the
 * SINCE guards and folding look at; the caller owns it: never to be
 * sent as it is, only by link_big_send()) and *out the state
 * the other calls need.  A SEED (state taken from a replica, never
 * sent) gives 2 without being read: *hdr is an empty placeholder.  Any
 * other command gives 0 (the caller reads it whole, as a small one).  A damaged record gives a negative errno with
 * err set.
 */
int link_big_open(const char *storedir, const struct journal_record *rec,
    struct dlist **hdr, struct link_big **out, char *err, size_t err_len);
/* Reads record rec's whole text into raw (the small path's way). */
int link_big_read_whole(const char *storedir,
    const struct journal_record *rec, struct buf *raw, char *err,
    size_t err_len);
/* NULL-safe; sets *bp to NULL. */
void link_big_free(struct link_big **bp);

/*
 * Staging: the next batch of the command's records with a UID above
 * above_uid (a few thousand at most), as a list the state owns until the
 * next call.  Returns 1 with *batch set, 0 once every record was seen
 * (or a negative errno, err set).  The first call starts from the top.
 */
int link_big_next_batch(const char *storedir, struct link_big *b,
    uint32_t above_uid, const struct dlist **batch, char *err,
    size_t err_len);
/* The batch last returned (NULL: none). */
const struct dlist *link_big_batch(const struct link_big *b);

/*
 * Sends "APPLY " + cmd (the header, guards as they are now) + the RECORD
 * list copied from the journal, as the socket drains; once it is all on
 * its way, l->on_reply becomes k.  Call link_big_pump() when the socket
 * drains (link_pump_files does).
 */
void link_big_send(struct link *l, struct link_big *b, struct dlist *cmd,
    void (*k)(struct link *, const char *, const char *));
/* Is a big command's text on its way (l->big sending)? */
bool link_big_sending(const struct link *l);
/* Sends more of it; fails the link if the journal is damaged. */
void link_big_pump(struct link *l);

#endif
