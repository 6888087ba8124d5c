/*
 * bigbox.h -- a master's huge APPLY MAILBOX, ingested in bounded memory.
 *
 * The session's csync reader hands every RECORD element of an APPLY
 * MAILBOX to the session's bigbox as soon as it is parsed.  The first
 * BIGBOX_RECORDS are held and put back into the entry when the line
 * ends, so a command of ordinary size goes the usual way with the same
 * tree.  Past that many, the command is big: the held records and each
 * later one go to a spill file (storage/spill.h) in
 * <store dir>/tmp/ and are freed, the entry keeps its header only, the
 * shadow reads the records back one at a time
 * (apply_command_spilled()), and the journal copies header, file and
 * tail into the command's record in bounded pieces
 * (journal_append_file()).  Memory: the header, one record, buffers.
 *
 * The threshold can be lowered for tests with the environment variable
 * SYNCRELAY_BIGBOX_RECORDS, read once (undocumented for operators).
 */
#ifndef SR_BIGBOX_H
#define SR_BIGBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/csync.h"
#include "protocol/dlist.h"
#include "storage/journal.h"

/* Records held in the tree before a command counts as big. */
#define BIGBOX_RECORDS 2000

struct spill;
struct dlist_record_hook;

struct bigbox {
	char *tmpdir;		/* <store dir>/tmp */
	char *store;		/* its name, for the log */
	size_t threshold;
	struct dlist *held;	/* the first records of the line */
	struct spill *spill;	/* set while the command is big */
	uint64_t spilled;	/* commands that went the big way */
};

/* Starts taking the RECORD elements r reads, for the store (name) in
 * dir; logs store=NAME event=big_apply for each big command journaled. */
void bigbox_init(struct bigbox *b, struct csync_reader *r, const char *dir,
    const char *store);
/*
 * As bigbox_init() for a reader set up elsewhere (a link's reply to a
 * seed's GET FULLMAILBOX, seed.c): fills *hook, to be set on that
 * reader, and leaves <dir>/tmp alone.
 */
void bigbox_setup(struct bigbox *b, const char *dir, const char *store,
    struct dlist_record_hook *hook);
/* Frees what b holds (not b); NULL-safe fields. */
void bigbox_free(struct bigbox *b);
/*
 * The line ended with entry (may be NULL): an ordinary command gets its
 * held records back in its RECORD list; a big one keeps the spill
 * (b->spill) until bigbox_done().
 */
void bigbox_line_end(struct bigbox *b, struct dlist *entry);
/* The command is over (or the line was bad): drop held records and the
 * spill. */
void bigbox_done(struct bigbox *b);
/*
 * Journals the APPLY command entry as one record: printed whole, or,
 * when b->spill is set, as head + spill + tail.  done(arg, lsn, err)
 * as journal_append().  Returns the record's text length.
 */
uint64_t bigbox_journal(struct bigbox *b, struct journal *j,
    const struct dlist *entry, journal_done_fn *done, void *arg);
/* As bigbox_journal() for a command of another verb ("SEED": logged as
 * event=big_seed). */
uint64_t bigbox_journal_as(struct bigbox *b, const char *verb,
    struct journal *j, const struct dlist *entry, journal_done_fn *done,
    void *arg);

#endif
