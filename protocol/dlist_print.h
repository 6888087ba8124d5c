/*
 * dlist_print.h -- print dlist trees exactly as Cyrus prints them.
 *
 * Strings follow Cyrus's astring rules (sync-protocol.md section 3.3):
 * atom when safe, else a quoted string without escapes, else a literal.
 * Literals are "{N}" when speaking as a server (to a master's
 * sync_client) and "{N+}" as a client (to a replica's sync_server).
 */
#ifndef SR_DLIST_PRINT_H
#define SR_DLIST_PRINT_H

#include "lib/buf.h"
#include "protocol/dlist.h"

enum dlist_print_mode {
	DLIST_PRINT_SERVER,	/* literals as {N} */
	DLIST_PRINT_CLIENT,	/* literals as {N+} */
};

struct dlist_printer {
	enum dlist_print_mode mode;
	/*
	 * Called after a file literal's "%{part guid size}\r\n" header has
	 * been appended to out: must append (or send, flushing out first)
	 * exactly size bytes of the body.  Returns 0 or a negative error.
	 * When NULL, printing a DL_FILE node fails with -EINVAL.
	 */
	int (*file_body)(void *arg, const struct dlist *file, struct buf *out);
	void *arg;
};

/* Appends s (n bytes) as NIL/atom/quoted/literal. 0 or -E2BIG. */
int dlist_print_astring(struct buf *out, const char *s, size_t n,
    enum dlist_print_mode mode);
/* Appends the value of dl (its key is not printed). 0 or negative. */
int dlist_print_value(const struct dlist *dl, struct buf *out,
    const struct dlist_printer *pr);
/* Appends "key SP value" for an entry. 0 or negative. */
int dlist_print_entry(const struct dlist *dl, struct buf *out,
    const struct dlist_printer *pr);

#endif
