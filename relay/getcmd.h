/*
 * getcmd.h -- answering a master's GET commands from the shadow.
 *
 * The replies are what a 3.6 sync_server in the shadow's state would
 * send (sync-protocol.md section 5): the same lines, fields, order and
 * printing, so the master's "unchanged" tests pass when nothing changed.
 */
#ifndef SR_GETCMD_H
#define SR_GETCMD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "protocol/result.h"
#include "storage/shadow.h"

struct getcmd_ctx {
	bool sieve_mailbox;	/* SIEVE-MAILBOX enabled on the connection */
};

/*
 * Appends the untagged replies to GET <entry> to out and returns the
 * final result; why explains a refusal for the log.  Not FULLMAILBOX:
 * getcmd_full_answer() (getcmd_full.h).
 */
enum result_code getcmd_answer(struct shadow *s, const struct dlist *entry,
    const struct getcmd_ctx *ctx, struct buf *out, char *why,
    size_t why_len);

/*
 * The MAILBOX kvlist a replica in the shadow's state would print for mb,
 * with its records if records is true (as GET FULLMAILBOX).  The links
 * repair a replica's mailbox by sending it as an APPLY MAILBOX.
 */
struct dlist *getcmd_mailbox_dlist(struct shadow *s,
    const struct shadow_mailbox *mb, bool records);

/*
 * A mailbox's user flag slots, for printing its records a page at a
 * time (getcmd_full.c): getcmd_canon_records() gives a list of RECORD
 * kvlists (shadow_record_dlist()) a replica's flag spelling and order
 * and annotation order.  Pages canonicalized in UID order with the same
 * flags print as the whole list would.
 */
struct getcmd_flags;
struct getcmd_flags *getcmd_flags_new(struct shadow *s, const char *uniqueid);
void getcmd_canon_records(struct getcmd_flags *fl, struct dlist *records);
void getcmd_flags_free(struct getcmd_flags **fl);

/*
 * The quota root covering mailbox name as a replica would report it
 * (the longest stored root that is name or a parent), held in tmp, or
 * NULL if none.
 */
const char *getcmd_quotaroot(struct shadow *s, const char *name,
    struct buf *tmp);
/* The stored quota root's QUOTA entry, as GET QUOTA answers it (the
 * caller frees it), or NULL if none is stored. */
struct dlist *getcmd_quota(struct shadow *s, const char *root);

/*
 * GET FETCH: finds the message entry e names (UNIQUEID or MBOXNAME, UID,
 * GUID; PARTITION) in the shadow and opens its body in the journal under
 * journal_dir.  Returns RESULT_OK with *bs open, *raw_len its size, *part
 * (pointing into e) and guid set; else the result to answer, with why
 * saying what failed for the log.  pi (or NULL) finds the body's place
 * without reading its segment from the start: a session answering many
 * GET FETCH passes the same one.
 */
struct journal_body_stream;
struct posidx;
enum result_code getcmd_fetch_open(struct shadow *s, const char *journal_dir,
    struct posidx *pi, const struct dlist *e, struct journal_body_stream **bs,
    uint32_t *raw_len, const char **part, char guid[41], char *why,
    size_t why_len);

#endif
