/*
 * mailgen.h -- a generator of realistic-looking mail for benchmarks.
 *
 * Messages are built from a fixed seed, so every run sees the same
 * corpus.  Each has the headers a delivered message carries (Return-
 * Path, a chain of Received lines, DKIM-Signature with a base64 blob,
 * Message-ID, Date, From/To/Cc with display names, Subject, MIME
 * headers), then a body of English-like prose: paragraphs of words
 * drawn with a skewed (Zipf-like) frequency from a 400-word vocabulary,
 * quoted earlier messages ("> " lines), signatures.  "Mixed" mail adds,
 * to some messages, an HTML alternative part and a base64 attachment of
 * random bytes (a stand-in for an already-compressed PDF or image).
 */
#ifndef SR_MAILGEN_H
#define SR_MAILGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"

struct mailgen {
	uint64_t state;
};

/* Seeds the generator. */
void mailgen_init(struct mailgen *g, uint64_t seed);
/*
 * Appends message number n of about target bytes to out (replacing its
 * contents).  With attachments, some messages carry HTML and base64.
 */
void mailgen_message(struct mailgen *g, struct buf *out, uint64_t n,
    size_t target, bool attachments);

#endif
