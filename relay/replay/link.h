/*
 * link.h -- one store's replay to one replica sync_server.
 *
 * A link is a csync client: it logs in to the replica (Cyrus SASL, with
 * DEFLATE if configured and offered), enables SIEVE-MAILBOX when the
 * replica offers it, and replays the store's journal from the replica's
 * cursor, in order.  Before each APPLY MAILBOX it asks the replica for
 * the mailbox's state (GET MAILBOXES), brings the SINCE_* guards to what
 * the replica really has, and stages the message bodies the replica
 * lacks (APPLY RESERVE, then APPLY MESSAGE from the relay's journal).
 * When the replica refuses a mailbox as changed, moved or with a
 * checksum mismatch, the link repairs that mailbox from the shadow (a
 * full APPLY MAILBOX of the shadow's state) and goes on.  The cursor
 * moves only past records the replica answered OK.  A lost connection
 * is retried with capped backoff; what cannot be repaired stops the link
 * in the failed state, with the reason, and touches nothing else.
 */
#ifndef SR_LINK_H
#define SR_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "relay/config.h"

struct cursor;
struct store;
struct link;

enum link_state {
	LINK_DOWN, LINK_CONNECTING, LINK_LOGIN, LINK_CATCHING_UP,
	LINK_STREAMING, LINK_REPAIRING, LINK_FAILED, LINK_PAUSED,
	LINK_STATE_COUNT
};

/* Returns a name for a state, for logs and status. */
const char *link_state_name(enum link_state st);
/* Creates and starts the link of store st to replica rc (copied). */
struct link *link_new(struct ev_loop *loop, struct store *st,
    const struct replica_conf *rc, struct cursor *cursor);
void link_free(struct link **lp);
/*
 * Takes new settings for the link (a reload).  Limits apply at once; a
 * change of address, credentials, TLS or compression logs in again
 * (between commands).
 */
void link_reconfigure(struct link *l, const struct replica_conf *rc);
/* Retention may have flagged the cursor for a resync: notice it. */
void link_check_resync(struct link *l);
/*
 * Sets the cursor to lsn and clears its resync flag: the operator
 * brought the replica up to lsn some other way.  Returns 0, or -1 with
 * err set (lsn outside the journal).
 */
int link_reset(struct link *l, uint64_t lsn, char *err, size_t err_len);
/* The store's journal grew: replay more if idle. */
void link_wake(struct link *l);
/* The last LSN the replica acknowledged. */
uint64_t link_acked(const struct link *l);
/* The replica's name in the config. */
const char *link_name(const struct link *l);
struct stats_link;
/* Fills out with the link's state, lag and counters. */
void link_stats(struct link *l, struct stats_link *out);
/* Pauses (true) or resumes a link; a paused link keeps its cursor. */
void link_set_paused(struct link *l, bool paused);
/*
 * What the replica refused and repair could not fix is parked (the rest
 * goes on; link_park.c): link_retry_parked() tries every parked entry
 * again now; link_give_up() drops the entries named name (a mailbox, or
 * what a record changes), loudly, and returns how many.
 */
void link_retry_parked(struct link *l);
/* The first LSN a parked entry needs kept in the journal (0: none). */
uint64_t link_parked_from(const struct link *l);
size_t link_give_up(struct link *l, const char *name);

/*
 * Questions for the replica on the store's behalf (relay/ingest/seed.c): one
 * GET between the link's own commands.  link_seedable(): the replica
 * may be asked (replica_seed), the link is logged in and idle, and it
 * holds the whole journal, so the replica's answer is the state the
 * journal left there.  link_query() sends GET entry when the link is
 * logged in and idle, and calls cb once with the final reply and the
 * untagged entries (a list the callee takes, or NULL), also when the
 * connection is lost first ("NO", reason).  Returns 0, or -EBUSY (no
 * call back).
 */
struct dlist;
typedef void (*link_query_cb)(void *arg, const char *verb, const char *text,
    struct dlist *untagged);
bool link_seedable(const struct link *l);
/* Could be asked once it has replayed the rest of the journal. */
bool link_may_seed(const struct link *l);
int link_query(struct link *l, const struct dlist *entry, link_query_cb cb,
    void *arg);
/*
 * link_command(): as link_query(), with another verb (APPLY UNMAILBOX for
 * an audit's repair, relay/ops/audit.c).  link_caught_up(): the link is
 * idle and the replica acknowledged every durable record, so what it
 * answers now is the state the journal left there.
 */
int link_command(struct link *l, const char *verb, const struct dlist *entry,
    link_query_cb cb, void *arg);
/*
 * As link_command(), with hook set on the reply's reader until the reply
 * (protocol/dlist_parse.h): each RECORD of a GET FULLMAILBOX answer goes
 * to hook->record as it arrives, and the untagged MAILBOX entry handed
 * to cb holds the RECORD list empty -- an answer of any size read in
 * bounded memory.  hook->arg must live until cb is called.
 */
struct dlist_record_hook;
int link_command_records(struct link *l, const char *verb,
    const struct dlist *entry, const struct dlist_record_hook *hook,
    link_query_cb cb, void *arg);
bool link_caught_up(const struct link *l);
/*
 * May the audit ask the replica one question now, within the link's
 * rate limits?  A question counts as one record; false (the link waits
 * for its buckets) if over a limit.
 */
bool link_may_ask(struct link *l);
/* An audit of the replica finished, every mailbox compared: mismatched
 * of them differed (for status and /metrics). */
void link_note_audit(struct link *l, uint64_t mismatched);
/*
 * After an outage the replica is checked against the shadow before wait
 * calls it caught up.  link_check_due(): the reason, if a check is
 * wanted and may start now (the link is caught up), else NULL.
 * link_check_started(): one runs.  link_check_done(): it is over; why
 * is NULL if everything that differed was repaired (or parked, which
 * wait sees), else what was not, and the replica is then marked as
 * needing a seed with that reason until an audit finds nothing
 * differing.
 */
const char *link_check_due(const struct link *l);
/* The relay just started: it cannot know what became of the replica
 * while it was down (a disk replaced, a restore, a write there; the
 * banner says nothing of it), so the first time the link is caught up
 * it checks, as after an outage. */
void link_check_after_start(struct link *l);
void link_check_started(struct link *l);
void link_check_done(struct link *l, const char *why);
/*
 * syncrelayctl seed: fills the replica from the shadow.  The cursor goes
 * to the head (the link streams from there: the master's changes during
 * the seed are replayed as they come), and an audit with repair sends
 * every mailbox the replica lacks whole from the shadow, bodies from the
 * journal -- or, with from (another replica of the store, NULL: none),
 * where retention dropped them, from that replica by GET FETCH through
 * its link (at its idle moments), into a temporary file.  Until every mailbox sent was taken, status says "seeding"
 * with the progress and wait does not call the replica caught up.
 * Returns 0, or -1 with err set.
 */
int link_seed(struct link *l, const char *from, char *err, size_t err_len);
/* Once a second: a seed whose mailboxes were all taken is over. */
/* Also writes the parked list where it changed unwritten; every second. */
void link_seed_poll(struct link *l);
/* Writes the parked list now if mailboxes were parked for an audit (with
 * link_resend_mailbox(..., true)) or settled since it was last written. */
void link_flush_parked(struct link *l);
/* Bodies retention dropped are fetched from the replica from (another of
 * the store) while this link has parked mailboxes; without it, from any
 * other replica of the store caught up at the time.  A seed's own --from
 * wins. */
void link_fetch_from(struct link *l, const char *from);
/* Is a periodic audit due (replica_audit_interval)?  Started: the
 * interval counts again from now. */
bool link_audit_due(const struct link *l);
void link_note_audit_started(struct link *l);
/*
 * Parks the mailbox uniqueid (name) for the replica with why and, if
 * now, makes it due now (else after the first backoff): at its next
 * idle moment the link sends it whole from the shadow (bodies staged
 * from the journal), through the usual repair if the replica refuses
 * it; until then wait does not report the replica caught up.  False if
 * it could not be kept parked (the link failed).
 */
bool link_resend_mailbox(struct link *l, const char *uniqueid,
    const char *name, const char *why, bool now);
/* Is the mailbox with this UNIQUEID parked for the replica? */
bool link_is_parked(const struct link *l, const char *uniqueid);

#endif
