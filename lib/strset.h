/*
 * strset.h -- a set of strings in memory (an open-addressing hash table).
 *
 * Used where the daemon must remember many names and ask about one at a
 * time, e.g. the users whose complete mailbox list a master has sent in
 * its current session (the shadow's proof that a replica-only folder is
 * gone on the master).  Strings are copied in; the set frees them.
 */
#ifndef SR_STRSET_H
#define SR_STRSET_H

#include <stdbool.h>
#include <stddef.h>

struct strset {
	char **slots;		/* NULL: empty */
	size_t cap;		/* a power of two, or 0 */
	size_t n;
};

#define STRSET_INIT { NULL, 0, 0 }

/* Adds s (a copy); returns true if it was not there yet. */
bool strset_add(struct strset *set, const char *s);
bool strset_has(const struct strset *set, const char *s);
size_t strset_count(const struct strset *set);
/* Empties the set and gives its memory back. */
void strset_clear(struct strset *set);

#endif
