/*
 * dlist.c -- construction, lookup and comparison of dlist trees.
 *
 * Trees are built by the parser (dlist_parse.c) or by code answering a
 * command, and printed by dlist_print.c.  Freeing is iterative so a deep
 * or long tree never exhausts the stack.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "lib/xmalloc.h"
#include "protocol/dlist.h"

static struct dlist *
dlist_node(const char *key, enum dlist_type type)
{
	struct dlist *dl = xcalloc(1, sizeof(*dl));

	dl->key = key ? xstrdup(key) : NULL;
	dl->type = type;
	return dl;
}

struct dlist *
dlist_new_kvlist(const char *key)
{
	return dlist_node(key, DL_KVLIST);
}

struct dlist *
dlist_new_list(const char *key)
{
	return dlist_node(key, DL_LIST);
}

struct dlist *
dlist_new_atom(const char *key, const char *s, size_t len)
{
	struct dlist *dl = dlist_node(key, DL_ATOM);

	dl->s = xmemdup0(s, len);
	dl->len = len;
	return dl;
}

void
dlist_free(struct dlist **dlp)
{
	struct dlist *todo = *dlp;

	/* Splice each node's children onto the work list: no recursion. */
	while (todo != NULL) {
		struct dlist *dl = todo;

		todo = dl->next;
		if (dl->head != NULL) {
			dl->tail->next = todo;
			todo = dl->head;
		}
		free(dl->key);
		free(dl->s);
		free(dl->guid);
		free(dl);
	}
	*dlp = NULL;
}

struct dlist *
dlist_pop_first(struct dlist *list)
{
	struct dlist *d = list->head;

	if (d == NULL)
		return NULL;
	list->head = d->next;
	if (list->head == NULL)
		list->tail = NULL;
	list->nchildren--;
	d->next = NULL;
	return d;
}

void
dlist_append(struct dlist *parent, struct dlist *child)
{
	child->next = NULL;
	if (parent->tail)
		parent->tail->next = child;
	else
		parent->head = child;
	parent->tail = child;
	parent->nchildren++;
}

static struct dlist *
dlist_add(struct dlist *parent, const char *key, enum dlist_type type)
{
	struct dlist *dl = dlist_node(key, type);

	dlist_append(parent, dl);
	return dl;
}

struct dlist *
dlist_add_atom_n(struct dlist *parent, const char *key, const char *s,
    size_t len)
{
	struct dlist *dl = dlist_new_atom(key, s, len);

	dlist_append(parent, dl);
	return dl;
}

struct dlist *
dlist_add_atom(struct dlist *parent, const char *key, const char *s)
{
	if (s == NULL)
		return dlist_add_nil(parent, key);
	return dlist_add_atom_n(parent, key, s, strlen(s));
}

struct dlist *
dlist_add_nil(struct dlist *parent, const char *key)
{
	return dlist_add(parent, key, DL_NIL);
}

struct dlist *
dlist_add_flag(struct dlist *parent, const char *key, const char *flag)
{
	struct dlist *dl = dlist_add(parent, key, DL_FLAG);

	dl->len = strlen(flag);
	dl->s = xmemdup0(flag, dl->len);
	return dl;
}

struct dlist *
dlist_add_num(struct dlist *parent, const char *key, uint64_t v)
{
	struct dlist *dl = dlist_add(parent, key, DL_NUM);

	dl->num = v;
	return dl;
}

struct dlist *
dlist_add_hex(struct dlist *parent, const char *key, uint64_t v)
{
	struct dlist *dl = dlist_add(parent, key, DL_HEX);

	dl->num = v;
	return dl;
}

static void
lower_copy(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
}

struct dlist *
dlist_add_guid(struct dlist *parent, const char *key, const char *guid)
{
	struct dlist *dl = dlist_add(parent, key, DL_GUID);

	dl->len = strlen(guid);
	dl->s = xmalloc(dl->len + 1);
	lower_copy(dl->s, guid, dl->len);
	return dl;
}

struct dlist *
dlist_add_file(struct dlist *parent, const char *key, const char *partition,
    const char *guid, uint64_t size)
{
	struct dlist *dl = dlist_add(parent, key, DL_FILE);
	size_t n = strlen(guid);

	dl->len = strlen(partition);
	dl->s = xmemdup0(partition, dl->len);
	dl->guid = xcalloc(1, 41);
	lower_copy(dl->guid, guid, n < 40 ? n : 40);
	dl->num = size;
	return dl;
}

struct dlist *
dlist_add_list(struct dlist *parent, const char *key)
{
	return dlist_add(parent, key, DL_LIST);
}

struct dlist *
dlist_add_kvlist(struct dlist *parent, const char *key)
{
	return dlist_add(parent, key, DL_KVLIST);
}

void
dlist_remove(struct dlist *kv, const char *key)
{
	struct dlist **pp = &kv->head, *prev = NULL;

	while (*pp != NULL) {
		struct dlist *dl = *pp;

		if (dl->key != NULL && strcmp(dl->key, key) == 0) {
			*pp = dl->next;
			dl->next = NULL;
			dlist_free(&dl);
			kv->nchildren--;
			continue;
		}
		prev = dl;
		pp = &dl->next;
	}
	kv->tail = prev;
}

const struct dlist *
dlist_get(const struct dlist *kv, const char *key)
{
	const struct dlist *dl;

	if (kv == NULL || kv->type != DL_KVLIST)
		return NULL;
	for (dl = kv->head; dl != NULL; dl = dl->next)
		if (dl->key != NULL && strcmp(dl->key, key) == 0)
			return dl;
	return NULL;
}

struct dlist *
dlist_get_mut(struct dlist *kv, const char *key)
{
	/* kv is the caller's to change, and so are its children. */
	return (struct dlist *)(uintptr_t)dlist_get(kv, key);
}

int
dlist_num(const struct dlist *dl, uint64_t *out)
{
	if (dl == NULL)
		return -ENOENT;
	switch (dl->type) {
	case DL_NUM:
	case DL_HEX:
		*out = dl->num;
		return 0;
	case DL_ATOM:
		return parse_u64(dl->s, dl->len, out) == 0 ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

int
dlist_str(const struct dlist *dl, const char **s, size_t *len)
{
	if (dl == NULL)
		return -ENOENT;
	switch (dl->type) {
	case DL_NIL:
		*s = NULL;
		if (len)
			*len = 0;
		return 0;
	case DL_ATOM:
	case DL_FLAG:
	case DL_GUID:
		*s = dl->s;
		if (len)
			*len = dl->len;
		return 0;
	default:
		return -EINVAL;
	}
}

int
dlist_guid(const struct dlist *dl, char out[41])
{
	if (dl == NULL)
		return -ENOENT;
	if ((dl->type != DL_ATOM && dl->type != DL_GUID) || dl->len != 40 ||
	    !is_hex(dl->s, 40))
		return -EINVAL;
	lower_copy(out, dl->s, 40);
	return 0;
}

int
dlist_get_num(const struct dlist *kv, const char *key, uint64_t *out)
{
	return dlist_num(dlist_get(kv, key), out);
}

int
dlist_get_str(const struct dlist *kv, const char *key, const char **s)
{
	return dlist_str(dlist_get(kv, key), s, NULL);
}

bool
dlist_is_container(const struct dlist *dl)
{
	return dl->type == DL_LIST || dl->type == DL_KVLIST;
}

const char *
dlist_type_name(enum dlist_type type)
{
	static const char *const names[] = { "nil", "atom", "flag", "num",
		"hex", "guid", "file", "list", "kvlist" };

	if ((size_t)type >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[type];
}

static bool
dlist_equal_node(const struct dlist *a, const struct dlist *b)
{
	if ((a->key == NULL) != (b->key == NULL))
		return false;
	if (a->key && strcmp(a->key, b->key) != 0)
		return false;
	if (a->type != b->type || a->len != b->len || a->num != b->num ||
	    a->nchildren != b->nchildren)
		return false;
	if (a->len && memcmp(a->s, b->s, a->len) != 0)
		return false;
	return a->type != DL_FILE || strcmp(a->guid, b->guid) == 0;
}

bool
dlist_equal(const struct dlist *a, const struct dlist *b)
{
	/*
	 * Walk both trees in lockstep, keeping the ancestors on a stack.
	 * Equal child counts (checked per node) keep the walks in step.
	 * Trees deeper than the stack are reported unequal; the parser's
	 * depth limit is far below it.
	 */
	const struct dlist *sa[64], *sb[64];
	int depth = 0;

	if (!dlist_equal_node(a, b))
		return false;
	if (a->head == NULL)
		return true;
	sa[depth] = a;
	sb[depth] = b;
	depth++;
	a = a->head;
	b = b->head;
	for (;;) {
		if (!dlist_equal_node(a, b))
			return false;
		if (a->head != NULL) {
			if (depth == 64)
				return false;
			sa[depth] = a;
			sb[depth] = b;
			depth++;
			a = a->head;
			b = b->head;
			continue;
		}
		while (a->next == NULL) {
			depth--;
			if (depth == 0)
				return true;
			a = sa[depth];
			b = sb[depth];
		}
		a = a->next;
		b = b->next;
	}
}
