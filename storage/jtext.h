/*
 * jtext.h -- a journaled command's text parsed in pieces (jtext.c):
 * what the replay of a big APPLY MAILBOX (relay/replay/link_big.c) and
 * the shadow's fold (fold.c) share, so that neither holds a text of
 * 100,000 records whole.
 */
#ifndef SR_JTEXT_H
#define SR_JTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/dlist_parse.h"
#include "storage/journal.h"

/* Command texts over this many bytes are read in pieces. */
#define JTEXT_BIG ((size_t)1 << 20)

/*
 * The threshold in force: JTEXT_BIG, or SYNCRELAY_BIG_TEXT from the
 * environment (bytes, at least 64; undocumented: for the tests, so that
 * small mailboxes take the big path against a real replica).
 */
size_t jtext_big(void);

/* A parser for a trusted journal text (no line or item cap) whose hook,
 * if any, takes the hooked list's elements as they complete. */
struct dlist_parser *jtext_parser(const struct dlist_record_hook *hook);

/*
 * Feeds p the text read from ts after its first verb_len bytes (the
 * verb and its space), then the CRLF the journal leaves out; *pos
 * counts the bytes read so far (of raw_len), chunk_max at a time.
 * stop, if set, says when to pause after a chunk.  Returns 1 once the
 * entry is done, 0 when paused, or a negative errno with err set (a
 * damaged record, a text that does not parse or ends early).
 */
int jtext_feed(struct journal_body_stream *ts, struct dlist_parser *p,
    uint64_t *pos, uint64_t raw_len, size_t verb_len, size_t chunk_max,
    bool (*stop)(void *), void *arg, char *err, size_t err_len);

#endif
