/*
 * reserve.h -- APPLY RESERVE answered from the store's bodies.
 */
#ifndef SR_RESERVE_H
#define SR_RESERVE_H

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "protocol/result.h"
#include "storage/shadow.h"

/*
 * Appends to out the untagged line of e's answer (a MISSING list, or
 * nothing) and returns the result code of the final line, which the
 * caller prints.
 */
enum result_code reserve_answer(struct shadow *s, const struct dlist *e,
    struct buf *out);

#endif
