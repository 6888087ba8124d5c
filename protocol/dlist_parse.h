/*
 * dlist_parse.h -- resumable, non-recursive parser for one dlist entry.
 *
 * The parser reads "key SP value EOL" (the argument of GET/APPLY/RESTORE,
 * the body of an untagged "* KEY value" reply, or a journal record) from
 * bytes fed in arbitrary pieces; any split of the input gives the same
 * result.  It never performs I/O and never recurses: containers live on
 * an explicit stack bounded by max_depth.
 *
 * File literals (%{partition guid size}) are not buffered: the header is
 * handed to the sink's begin(), the bytes to data() as they arrive, and
 * end() follows; the tree gets a DL_FILE node carrying the header.
 *
 * After an error the caller may call dlist_parser_skip_line() and keep
 * feeding: the rest of the bad line is then discarded -- including the
 * payloads of literals and file literals in it -- and feed() returns
 * DLIST_DONE at its end, so the stream stays in step.
 *
 * A record hook (dlist_parser_set_record_hook) takes the elements of one
 * list out of the tree as they complete -- the RECORD list of an APPLY
 * MAILBOX, say -- so that a caller can handle a list of any length one
 * element at a time.  Limits are counted exactly as without the hook.
 */
#ifndef SR_DLIST_PARSE_H
#define SR_DLIST_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/dlist.h"

struct dlist_limits {
	size_t max_line;	/* bytes of one entry, file bodies excluded */
	size_t max_token;	/* atom or quoted string */
	size_t max_literal;	/* {N} / {N+} payload */
	uint64_t max_file;	/* %{...} payload */
	unsigned max_depth;	/* nesting of lists and kvlists */
	size_t max_items;	/* nodes in one entry */
};

/* The defaults a post-authentication session uses. */
extern const struct dlist_limits dlist_limits_default;

struct dlist_file_sink {
	/* A file literal starts; non-zero refuses it (DLIST_E_SINK). */
	int (*begin)(void *arg, const char *partition, const char *guid,
	    uint64_t size);
	/* The next n bytes of its body; non-zero aborts (DLIST_E_SINK). */
	int (*data)(void *arg, const void *p, size_t n);
	/* All size bytes have been passed; non-zero aborts (DLIST_E_SINK). */
	int (*end)(void *arg);
	void *arg;
};

enum dlist_parse_status {
	DLIST_ERROR = -1,
	DLIST_NEED_MORE = 0,
	DLIST_DONE = 1,
};

enum dlist_parse_error {
	DLIST_E_NONE = 0,
	DLIST_E_SYNTAX,		/* bytes that fit no rule */
	DLIST_E_LINE,		/* entry longer than max_line */
	DLIST_E_TOKEN,		/* atom/quoted longer than max_token */
	DLIST_E_LITERAL,	/* literal larger than max_literal */
	DLIST_E_FILE,		/* bad file literal header or size */
	DLIST_E_DEPTH,		/* nesting deeper than max_depth */
	DLIST_E_ITEMS,		/* more than max_items nodes */
	DLIST_E_SINK,		/* the file sink refused */
	DLIST_E_HOOK,		/* the record hook refused */
};

struct dlist_parser;

/*
 * Returns a new parser.  limits may be NULL (defaults); sink may be NULL
 * (file bodies are then discarded).  Both are copied.
 */
struct dlist_parser *dlist_parser_new(const struct dlist_limits *limits,
    const struct dlist_file_sink *sink);
/* Frees *pp (and any partial tree); NULL-safe; sets *pp to NULL. */
void dlist_parser_free(struct dlist_parser **pp);
/* Replaces the limits for the next entry (e.g. after authentication). */
void dlist_parser_set_limits(struct dlist_parser *p,
    const struct dlist_limits *limits);
/* Forgets any partial entry and prepares to read a new one. */
void dlist_parser_reset(struct dlist_parser *p);

/*
 * Feeds n bytes.  *used is set to how many were consumed.  Returns
 * DLIST_DONE when an entry (or a skipped line) ended, with *used counting
 * through its line feed; DLIST_NEED_MORE when all n bytes were consumed
 * without finishing; DLIST_ERROR when the input broke a rule, with *used
 * counting through the offending byte.  After DONE the parser is ready
 * for the next entry (take the result first).
 */
enum dlist_parse_status dlist_parser_feed(struct dlist_parser *p,
    const char *data, size_t n, size_t *used);
/* After DONE: returns the parsed entry (key set) and gives up ownership. */
struct dlist *dlist_parser_take(struct dlist_parser *p);
/* After ERROR: switch to discarding the rest of the line (see above). */
void dlist_parser_skip_line(struct dlist_parser *p);
/* The last error's code and a human-readable description. */
enum dlist_parse_error dlist_parser_error(const struct dlist_parser *p);
const char *dlist_parser_errstr(const struct dlist_parser *p);
/* Bytes of the current entry consumed so far (file bodies excluded). */
size_t dlist_parser_line_bytes(const struct dlist_parser *p);

/*
 * The record hook.  The hooked list is a list (not a kvlist) under key
 * `key` directly inside a top-level kvlist: RECORD in
 * "MAILBOX %(UNIQUEID x ... RECORD (%(UID 1 ...) %(UID 2 ...)))".
 * Each element of that list is passed to record() the moment its last
 * byte is read, in order (index counts from 0 within the entry), and is
 * not appended to the list: the entry handed out by take() holds the
 * list, empty.  record() always takes ownership of elem (free it with
 * dlist_free(), refusing or not).  Non-zero from record() refuses the
 * entry: feed() returns DLIST_ERROR with DLIST_E_HOOK, and
 * dlist_parser_skip_line() works as after any other error.  Elements
 * handed out still count towards max_items and max_line, so an entry is
 * refused at the same byte with or without the hook.
 */
struct dlist_record_hook {
	const char *key;	/* copied; e.g. "RECORD" */
	int (*record)(void *arg, struct dlist *elem, size_t index);
	void *arg;
};

/* Sets the hook for the next entries; NULL removes it. */
void dlist_parser_set_record_hook(struct dlist_parser *p,
    const struct dlist_record_hook *hook);
/*
 * In the current entry, or the one just DONE: the offset of the hooked
 * list's "(" counted in bytes fed since the entry's first byte (every
 * byte: literal and file-literal payloads included), or -1 if no hooked
 * list was opened.  With "APPLY " stripped by the caller as the csync
 * reader does, "MAILBOX %(A 1 RECORD (" gives 20: the entry's header
 * is the bytes before it.
 */
int64_t dlist_parser_record_offset(const struct dlist_parser *p);
/* Elements handed to the hook in the current (or just DONE) entry. */
size_t dlist_parser_record_count(const struct dlist_parser *p);

#endif
