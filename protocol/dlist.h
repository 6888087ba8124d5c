/*
 * dlist.h -- the dlist tree: values exchanged by csync GET/APPLY commands.
 *
 * A node has an optional key (set for kvlist children and for the top
 * entry of a command, e.g. "MAILBOX" in "APPLY MAILBOX %(...)") and a
 * value of one type.  On input every scalar arrives as an untyped string
 * (DL_ATOM, or DL_FLAG when it starts with a backslash) and is converted
 * on demand by dlist_num() and friends; the other scalar types exist so
 * that our own output is printed exactly as Cyrus prints it.
 *
 * Ownership: a node owns its key, its bytes and its children.  Children
 * are a singly linked list in wire order.
 */
#ifndef SR_DLIST_H
#define SR_DLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dlist_type {
	DL_NIL,		/* NIL: an absent string */
	DL_ATOM,	/* a string (may hold NUL when it came as a literal) */
	DL_FLAG,	/* \Seen and friends, printed raw */
	DL_NUM,		/* unsigned decimal */
	DL_HEX,		/* 16 lowercase hex digits */
	DL_GUID,	/* 40 lowercase hex digits, held in s */
	DL_FILE,	/* %{partition guid size} + body */
	DL_LIST,	/* ( value ... ), children without keys */
	DL_KVLIST,	/* %( key value ... ) */
};

struct dlist {
	char *key;		/* NULL when the node has none */
	enum dlist_type type;
	char *s;		/* ATOM/FLAG/GUID bytes; FILE partition */
	size_t len;		/* length of s */
	uint64_t num;		/* NUM/HEX value; FILE size */
	char *guid;		/* FILE: 40 lowercase hex + NUL; else NULL
				 * (not inline: 41 bytes on every node made a
				 * big APPLY MAILBOX's tree half as big again) */
	struct dlist *head;	/* LIST/KVLIST children */
	struct dlist *tail;
	size_t nchildren;
	struct dlist *next;	/* next sibling */
};

/* Returns a new empty kvlist / list with the given key (may be NULL). */
struct dlist *dlist_new_kvlist(const char *key);
struct dlist *dlist_new_list(const char *key);
/* Returns a new scalar node (not attached). */
struct dlist *dlist_new_atom(const char *key, const char *s, size_t len);
/* Frees *dlp and its subtree; NULL-safe; sets *dlp to NULL. */
void dlist_free(struct dlist **dlp);

/* Appends child to the list or kvlist parent; parent takes ownership. */
void dlist_append(struct dlist *parent, struct dlist *child);
/* Takes the first child out of list and returns it (NULL if none). */
struct dlist *dlist_pop_first(struct dlist *list);
/*
 * Adders: create a child of parent (key may be NULL inside a list) and
 * return it.  Strings are copied.
 */
struct dlist *dlist_add_atom(struct dlist *parent, const char *key,
    const char *s);
struct dlist *dlist_add_atom_n(struct dlist *parent, const char *key,
    const char *s, size_t len);
struct dlist *dlist_add_nil(struct dlist *parent, const char *key);
struct dlist *dlist_add_flag(struct dlist *parent, const char *key,
    const char *flag);
struct dlist *dlist_add_num(struct dlist *parent, const char *key,
    uint64_t v);
struct dlist *dlist_add_hex(struct dlist *parent, const char *key,
    uint64_t v);
/* guid: 40 hex digits (either case); stored lowercase. */
struct dlist *dlist_add_guid(struct dlist *parent, const char *key,
    const char *guid);
struct dlist *dlist_add_file(struct dlist *parent, const char *key,
    const char *partition, const char *guid, uint64_t size);
struct dlist *dlist_add_list(struct dlist *parent, const char *key);
struct dlist *dlist_add_kvlist(struct dlist *parent, const char *key);

/* Removes (and frees) every child of kv whose key is key. */
void dlist_remove(struct dlist *kv, const char *key);
/* Returns the first child of kv whose key is exactly key, or NULL. */
const struct dlist *dlist_get(const struct dlist *kv, const char *key);
/* The same, for a kv the caller may change: the child is writable. */
struct dlist *dlist_get_mut(struct dlist *kv, const char *key);

/*
 * Value readers.  Each returns 0 on success, -ENOENT when the node is
 * NULL, -EINVAL when the value has the wrong shape.
 */
/* A number: NUM/HEX nodes, or an atom made only of decimal digits. */
int dlist_num(const struct dlist *dl, uint64_t *out);
/* A string (ATOM/FLAG/GUID/NUM rendered); NIL gives *s = NULL. */
int dlist_str(const struct dlist *dl, const char **s, size_t *len);
/* A 40-hex GUID (atom or GUID node), copied lowercase into out[41]. */
int dlist_guid(const struct dlist *dl, char out[41]);
/* Shorthands: look up key in kv, then read it as above. */
int dlist_get_num(const struct dlist *kv, const char *key, uint64_t *out);
int dlist_get_str(const struct dlist *kv, const char *key, const char **s);

/* Returns true for LIST and KVLIST nodes. */
bool dlist_is_container(const struct dlist *dl);
/* Returns a short name for a type, for logs and errors. */
const char *dlist_type_name(enum dlist_type type);
/* Returns true if a and b are equal in key, type and value, recursively. */
bool dlist_equal(const struct dlist *a, const struct dlist *b);

#endif
