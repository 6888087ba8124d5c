/*
 * apply.h -- Cyrus's APPLY semantics, over the shadow.
 *
 * apply_command() checks one APPLY against the shadow with the rules and
 * result codes of a 3.6 sync_server (sync-protocol.md section 6) and, if
 * it is accepted, makes the changes, inside the caller's transaction.
 * The same function serves ingest (a master's command) and recovery (a
 * journal record folded into the shadow), so the shadow is always the
 * fold of the journal.
 *
 * Like Cyrus, some refusals come after changes were made (a final CRC
 * mismatch); the outcome says whether anything changed, which is what
 * decides whether the command is journaled.
 */
#ifndef SR_APPLY_H
#define SR_APPLY_H

#include <stdbool.h>

#include "protocol/dlist.h"
#include "protocol/result.h"
#include "storage/shadow.h"

struct spill;

struct apply_ctx {
	bool force;		/* APPLY FORCE was sent on the connection */
	bool sieve_mailbox;	/* SIEVE-MAILBOX is enabled */
	bool replay;		/* folding the journal: accepted before */
	bool seed;		/* state a replica reported (a seed record):
				 * the replica made the parents it has */
};

struct apply_outcome {
	enum result_code code;
	bool changed;		/* the shadow was changed */
	char why[256];		/* for the log when code != OK */
};

/* Does this APPLY subcommand change replicated state (be journaled)? */
bool apply_changes_state(const char *sub);
/*
 * Applies entry (its key is the subcommand, e.g. "MAILBOX") to s, which
 * must be in a transaction.  Fills *out.
 */
void apply_command(struct shadow *s, const struct dlist *entry,
    const struct apply_ctx *ctx, struct apply_outcome *out);
/*
 * The same for a big APPLY MAILBOX whose RECORD elements were taken out
 * of entry (its RECORD list is empty) into records (storage/spill.h):
 * they are read back one at a time, with the same checks in the same
 * order.  Any other entry is applied as by apply_command().
 */
void apply_command_spilled(struct shadow *s, const struct dlist *entry,
    struct spill *records, const struct apply_ctx *ctx,
    struct apply_outcome *out);

#endif
