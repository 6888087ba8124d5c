/*
 * strset.c -- a set of strings: linear probing over a power-of-two table,
 * grown to keep it at most half full, so a lookup stays a probe or two.
 * There is no removal: the users of a set empty it whole.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strset.h"
#include "lib/xmalloc.h"

static uint64_t
hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t
find(char **slots, size_t cap, const char *s)
{
	size_t i = (size_t)hash(s) & (cap - 1);

	while (slots[i] != NULL && strcmp(slots[i], s) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

static void
grow(struct strset *set)
{
	size_t cap = set->cap ? set->cap * 2 : 16, i;
	char **slots = xcalloc(cap, sizeof(*slots));

	for (i = 0; i < set->cap; i++)
		if (set->slots[i] != NULL)
			slots[find(slots, cap, set->slots[i])] = set->slots[i];
	free(set->slots);
	set->slots = slots;
	set->cap = cap;
}

bool
strset_add(struct strset *set, const char *s)
{
	size_t i;

	if ((set->n + 1) * 2 > set->cap)
		grow(set);
	i = find(set->slots, set->cap, s);
	if (set->slots[i] != NULL)
		return false;
	set->slots[i] = xstrdup(s);
	set->n++;
	return true;
}

bool
strset_has(const struct strset *set, const char *s)
{
	return set->cap > 0 &&
	    set->slots[find(set->slots, set->cap, s)] != NULL;
}

size_t
strset_count(const struct strset *set)
{
	return set->n;
}

void
strset_clear(struct strset *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	set->slots = NULL;
	set->cap = set->n = 0;
}
