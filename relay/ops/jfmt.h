/*
 * jfmt.h -- journal records in words (and checked), for
 * syncrelay-journal and syncrelayctl.
 */
#ifndef SR_JFMT_H
#define SR_JFMT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* A record time (microseconds since the epoch) as ISO 8601 UTC. */
void jfmt_time(uint64_t us, char *out, size_t len);
/*
 * One line for a command record's text: "APPLY MAILBOX user.bob
 * records=12" (verb, command, mailbox or atom, record count).
 */
void jfmt_describe(const struct buf *raw, struct buf *out);
/*
 * What a command record changed, in an operator's words: "APPLY MAILBOX
 * user.bob: 2 added, 1 changed, 1 expunged (last UID 14); flags \\Seen
 * x2; annotations /shared/comment", "APPLY RENAME user.jo.A ->
 * user.jo.B", "APPLY SUB bob user.bob.Work".
 */
void jfmt_explain(const struct buf *raw, struct buf *out);
/*
 * A journal_reader_body() sink that only adds the bytes to the uint64_t
 * at arg: reading a body whole checks its size and SHA-1.
 */
int jfmt_count_sink(void *arg, const void *p, size_t n);

#endif
