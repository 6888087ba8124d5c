/*
 * link_int.h -- what the parts of a link share (not for use outside
 * relay/replay/).
 *
 * A link (link.h) is cut in parts, each a file, called in one direction
 * only:
 *
 *   link.c          life cycle and the public API (link.h)
 *     -> link_conn.c     connecting, TLS, SASL, banner and capabilities
 *     -> link_replay.c   reading the journal, staging bodies, the cursor
 *     -> link_repair.c   repair, reached from the replay only through
 *                        l->repair (struct link_repair_ops)
 *     -> link_park.c     what the replica refused, parked; retries
 *     -> link_fold.c     folding consecutive updates of one mailbox
 *     -> link_lag.c      records read and not acknowledged; bodies passed
 *     -> link_policy.c   the retry backoff and the rate limits
 *     -> link_core.c     state, errors and sending, used by all
 *
 * link_conn.c calls the replay (once logged in), link_repair.c calls the
 * replay (to send a mailbox whole, then to go on); the replay reports a
 * refusal upward through l->repair, so no two parts call each other.
 */
#ifndef SR_LINK_INT_H
#define SR_LINK_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "relay/config.h"
#include "relay/ops/stats.h"
#include "relay/replay/cursorq.h"
#include "relay/replay/link.h"
#include "storage/journal.h"
#include "storage/parked.h"

struct link;
struct getcmd_full;

/*
 * What the replay asks of repair when a replica refuses a mailbox.  Set
 * by link_new() to link_repair_ops (link_repair.c).
 */
struct link_repair_ops {
	/* CHANGED or CHECKSUM: send the mailbox whole from the shadow. */
	void (*mailbox)(struct link *l, const char *why);
	/* MOVED, or missing on the replica: compare the user's folders. */
	void (*user)(struct link *l, const char *why);
	/* A mailbox sent by a repair was accepted: true if the repair has
	 * more to send (it goes on), false if the replay goes on. */
	bool (*accepted)(struct link *l);
	/* Something was parked (link_park.c): go on with the rest of the
	 * repair under way, if any, else with the replay. */
	void (*parked)(struct link *l);
};

/* A parked entry, with when to try it again. */
struct link_parked {
	struct parked p;
	double due;		/* ev_now() of the next try */
	double backoff;		/* seconds, doubling */
};

extern const struct link_repair_ops link_repair_ops;

#define BACKOFF_MIN 1.0
#define BACKOFF_MAX 60.0
#define LOST_MAX 5		/* losses in a row that park a command */
#define CONNECT_RETRY_MIN 0.1	/* connection refused: try again soon */
#define CONNECT_RETRY_MAX 0.5
#define FILES_PER_MESSAGE 256

/* Where a body record is, so that sending it needs no segment scan. */
struct seen_body {
	char guid[41];
	uint64_t lsn, segment, offset;
};

#ifndef MAX_SEEN		/* -DMAX_SEEN=n to test the fallback */
#define MAX_SEEN 65536
#endif
#define IDLE_TRIM 2.0		/* seconds caught up before trimming */
#define MAX_REPAIRED 64

/* A mailbox sent whole: records of it up to upto are moot. */
struct link_repaired {
	char uniqueid[64];
	uint64_t upto;		/* the shadow's LSN then */
};

/* A record read from the journal and not yet acknowledged. */
struct rpos {
	uint64_t lsn, time_us, segment, offset;
};

/* A token bucket: at most rate per second, bursts of one second. */
struct bucket {
	double rate;		/* 0: no limit */
	double tokens;
	double last;		/* ev_now() of the last refill */
};

struct link {
	const struct link_repair_ops *repair;
	struct ev_loop *loop;
	struct store *st;
	struct replica_conf rc;
	char *password;
	struct cursor *cursor;
	enum link_state state;
	/*
	 * Texts most links never hold, on the heap at their size (NULL:
	 * none; read them through LINK_TEXT()): as 1 KB arrays they were
	 * most of an idle link's 7.9 KB (issue 17).  At most the bytes of
	 * the LINK_*_MAX below, the former arrays' sizes, are kept.
	 */
	char *why;			/* LINK_WHY_MAX */

	int fd;
	ev_io connect_w;
	ev_timer retry;
	double backoff;
	/* Deadlines and keepalive (link_conn.c). */
	ev_timer deadline_t;
	double last_activity;		/* ev_now() of the last byte in/out */
	double wait_since;		/* the current command's first byte */
	uint64_t wait_bytes;		/* sent since the last reply */
	/* Connection attempts failing in a row, for the log. */
	double connect_backoff;		/* seconds (link_policy.c) */
	unsigned connect_failures;
	bool heard;			/* this connection brought a byte */
	bool tls_failed;		/* its TLS handshake failed */
	double connect_fail_since, connect_fail_logged;
	ev_timer cursor_timer;
	struct conn *conn;
	struct csync_reader *reader;
	bool in_banner;
	struct buf mechs;
	bool offers_compress, offers_sieve, deflating;
	bool offers_starttls;
	void *tls_ctx;			/* client SSL_CTX, or NULL: no TLS */
	bool tls_up;			/* TLS is on for this session */
	bool tls_starting;		/* STARTTLS accepted: input is stale */
	struct saslcli *sasl;
	void (*on_reply)(struct link *l, const char *verb, const char *text);
	struct dlist *untagged;

	struct journal_reader *jr;
	uint64_t acked;
	uint64_t posted;		/* last LSN handed to the cursor writer */
	struct cursorq_req cq;
	bool needs_resync;		/* retention dropped what it lacks */
	bool closing_on_purpose;	/* the close is ours: not an error */
	bool replica_died;		/* it said "* Fatal error": send nothing */
	uint64_t lost_lsn;		/* connections lost in a row mid-command */
	unsigned lost_count;		/* ... while sending the record at lsn */
	uint64_t lsn;			/* the record being replayed */
	struct dlist *cmd;		/* its APPLY entry */
	struct dlist *pending;		/* read ahead, not folded into cmd */
	bool pending_seed;		/* it is a seed record: not sent */
	/* cmd's (pending's) text when too big to hold: link_big.h */
	struct link_big *big, *pending_big;
	struct seen_body *seen;		/* bodies replay passed, newest last */
	size_t nseen, seen_alloc;
	uint32_t *seen_hash;		/* open addressing: index + 1 in seen */
	size_t seen_hcap;		/* slots, a power of 2, >= 2 x nseen */
	struct posidx *posidx;		/* older bodies' places, made on use */
	uint64_t pending_lsn;
	bool repairing;
	bool user_repaired;		/* this record had a user-level repair */
	struct dlist *repair_ops;	/* APPLY RENAME/UNMAILBOX to send */
	struct dlist *repair_queue;	/* full APPLY MAILBOX to send */
	char repair_why[300];
	char diag_reason[300];		/* a second refusal: the first record
					 * the replica changed (link_repair.c) */
	/* Mailboxes sent whole from the shadow: older records are moot.
	 * MAX_REPAIRED entries, allocated at the first (4.6 KB an idle
	 * link does not hold). */
	struct link_repaired *repaired;
	size_t nrepaired;
	bool caught_up;		/* reached the journal's end this session */
	uint32_t r_last_uid;
	uint64_t r_highestmodseq;	/* from the last GET MAILBOXES */
	char r_partition[256];
	/* l->cmd is a mailbox sent whole, its records read from the
	 * shadow a page at a time (link_whole.c). */
	struct getcmd_full *whole;
	uint32_t stage_uid;		/* the next record to stage */
	bool stage_more;		/* records from it on are not staged */
	bool whole_sending;		/* its APPLY is going out */
	struct dlist *missing;		/* GUIDs the replica lacks */
	const struct dlist *next_file;
	size_t files_in_batch;
	struct journal_body_stream *bs;
	uint64_t staged;		/* body bytes sent since RESTART */

	/* Lag: where the oldest unacknowledged record is. */
	struct rpos *rq;		/* read, not acked, oldest first */
	size_t rq_head, rq_len, rq_alloc;
	struct rpos front;		/* record acked + 1 (lsn 0: unknown) */
	uint64_t front_missing;		/* that record could not be found */
	/* Counters and rates for status and metrics. */
	uint64_t replayed_records, replayed_bytes, connects;
	double rate;			/* records/s acknowledged, smoothed */
	double rate_t;			/* ev_now() of the last sample */
	uint64_t rate_acked;
	char *last_error;		/* LINK_WHY_MAX */
	double last_error_time;
	struct stats_code_count errors[STATS_MAX_CODES];
	size_t nerrors;
	/* What the last user-level repair left alone: differences between
	 * the replica and a partial shadow, which prove nothing. */
	char *left_alone;		/* LINK_WHY_MAX */
	unsigned nleft_alone;
	/* Parked: what the replica refused and repair could not fix. */
	struct link_parked *parked;
	size_t nparked;
	/* Parked or settled in memory, the file not yet rewritten: a whole
	 * mailbox an audit asks for (park_defer) or one the replica took
	 * whole; written by link_park_flush() (link_park.c). */
	bool parked_dirty, park_defer;
	char *parked_path;	/* (heap: 1,000s of idle links, issue 17) */
	bool retrying;			/* l->cmd retries a parked entry */
	bool park_unread;		/* the list could not be read */
	uint64_t retry_lsn;		/* that entry's first LSN */
	char repair_target[64];		/* UNIQUEID a user repair is for */
	uint64_t repair_upto;		/* the shadow's LSN when the mailboxes
					 * a repair sends were read from it */
	char repair_name[512];		/* ... and its name */
	/* A GET asked on the store's behalf (link_query). */
	link_query_cb query_cb;
	void *query_arg;
	/* Pause and rate limits. */
	bool paused;
	char *paused_path;		/* exists while paused */
	struct bucket bytes_bucket, records_bucket;
	ev_timer throttle;
	ev_timer idle_t;		/* caught up a while: give memory back */
	/* Audits (relay/ops/audit.c): the last finished one. */
	double audit_time;		/* epoch seconds (0: none yet) */
	double audit_due_from;		/* ev_now() the interval counts from */
	uint64_t audit_mismatched;	/* mailboxes that differed */
	/*
	 * After an outage (the connection lost by the replica's side, its
	 * banner changed) the replica is checked against the shadow (an
	 * audit with repair) before wait calls it caught up.
	 */
	bool check_pending, check_running;
	bool dropped;			/* the link itself closed (link_drop) */
	char *check_why;		/* LINK_LINE_MAX */
	char *banner;			/* the last session's, to compare */
	char *needs_seed;		/* what the check could not repair */
	/* syncrelayctl seed: the replica filled from the shadow (an audit
	 * with repair after the cursor went to the head). */
	bool seeding, seed_audited;
	unsigned seed_gen, check_gen;	/* a check counts for the seed it
					 * started after */
	double seed_start;		/* epoch seconds */
	uint64_t seed_total, seed_done;	/* mailboxes sent whole, taken */
	uint64_t seed_bytes0;		/* replayed_bytes at the start */
	/*
	 * Bodies the journal no longer holds, taken from another replica of
	 * the store (seed --from): GET FETCH through that replica's link
	 * into a temporary file, then sent from it.
	 */
	char seed_from[128];		/* the other replica, or "": any
					 * caught-up one (link_fetch_from) */
	int (*fetch)(struct link *l, const struct dlist *get);	/* link.c */
	bool fetching;			/* a GET FETCH for us is out */
	int fetched_fd;			/* the body fetched, or -1 */
	char fetched_guid[41];
	uint64_t fetched_size;
	char fetch_failed[41];		/* GUID the other replica lacked */
	char fetch_src[128];		/* the replica last asked for one */
	int stream_fd;			/* a fetched body being sent, or -1 */
	/* As the other replica's link: where a fetched body goes (-1). */
	int fetch_sink_fd;
	uint64_t fetch_sink_size;
};

/* The texts of struct link (NULL: ""), and their sizes. */
#define LINK_TEXT(s) ((s) != NULL ? (const char *)(s) : "")
#define LINK_WHY_MAX 1024
#define LINK_LINE_MAX 300	/* check_why, banner */
#define LINK_SEED_MAX 600	/* needs_seed */

/* link_core.c: state, errors and sending. */
/*
 * Sets *text to fmt's output cut to max - 1 bytes, allocated to its size
 * (an empty one frees it: NULL); fmt may read the old *text.
 */
void link_text_set(char **text, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void link_text_vset(char **text, size_t max, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void link_note_error(struct link *l, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void link_set_state(struct link *l, enum link_state st);
void link_send_text(struct link *l, const char *text, size_t n);
/* Sends verb entry; k gets the reply. */
void link_send_cmd(struct link *l, const char *verb, const struct dlist *entry,
    void (*k)(struct link *, const char *, const char *));
/* Gives up on the connection; retries later unless the link failed. */
void link_drop(struct link *l, const char *why);
/* Stops the link in the failed state with the reason (log, status). */
void link_fail(struct link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The replica must be checked against the shadow before wait calls it
 * caught up (an outage: relay/ops/audit_sched.c runs the check). */
void link_check_needed(struct link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* link_conn.c: the connection and the login. */
void link_connect(struct link *l);
/* Closes a connection attempt in progress, if any. */
void link_connect_abort(struct link *l);
void link_reset_session(struct link *l);
/* Sets up the retry and deadline timers of a new link. */
void link_conn_init(struct link *l);
/* Is the link waiting for its replica: a banner, a reply, or to read? */
bool link_waiting(const struct link *l);

/* link_policy.c: retry backoff and rate limits. */
bool link_throttled(struct link *l);
/* After a lost session: 1 s, doubling to 60 s. */
void link_schedule_retry(struct link *l);
/* After a failed connection attempt: 0.1 s, doubling to 0.5 s. */
void link_schedule_connect_retry(struct link *l);

/* link_park.c: what the replica refused, parked. */
/* Reads the parked list (a failure fails the link); 0 or -errno. */
int link_park_load(struct link *l);
void link_park_free(struct link *l);
/*
 * Parks a mailbox by UNIQUEID, or (link_park_record) l->cmd by what it
 * changes, with the reason; durable before it returns.  True if parked,
 * false if the link failed instead (it could not be kept).
 */
bool link_park_mailbox(struct link *l, const char *uniqueid,
    const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool link_park_record(struct link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The replica accepted l->cmd: drop or rename what it settles. */
void link_park_settled(struct link *l);
/* Writes the parked list if it changed unwritten (parked_dirty). */
void link_park_flush(struct link *l);
/* Is the mailbox with this UNIQUEID parked? */
bool link_park_has_mailbox(const struct link *l, const char *uniqueid);
/* Is cmd an update of a parked mailbox (so not to be sent)? */
bool link_park_skips(const struct link *l, const struct dlist *cmd);
/* Is an entry due for a retry at now? */
bool link_park_due(const struct link *l, double now);
/*
 * The command that retries a due entry (the mailbox whole from the
 * shadow, or the record again), with *mailbox saying which; NULL if
 * none can be tried now.  Sets l->retrying and l->retry_lsn.
 */
struct dlist *link_park_take_due(struct link *l, double now, bool *mailbox);
/* Every entry is due now (syncrelayctl retry). */
void link_park_retry_now(struct link *l);
/* Drops the entries named name (mailbox or key); how many. */
size_t link_park_give_up(struct link *l, const char *name);
/* Drops every entry, with the reason in the log (a cursor reset). */
void link_park_clear(struct link *l, const char *why);

/* link_lag.c: records read and not acknowledged; bodies passed. */
/* Forgets the read records the replica has now acknowledged. */
void link_rq_ack(struct link *l);
/* Notes a record read (for the lag: its position and time). */
void link_rq_push(struct link *l, const struct journal_record *rec);
/* Notes where a body record is, for sending it later. */
void link_remember_body(struct link *l, const struct journal_record *rec);
/* Where the body guid is, if the link passed it lately; else NULL. */
const struct seen_body *link_find_body(const struct link *l,
    const char *guid);
/* Forgets the bodies passed and frees their memory and the posidx. */
void link_forget_bodies(struct link *l);

/* link_fold.c: folding updates of one mailbox. */
bool link_is_mailbox_update(const struct dlist *cmd);
bool link_same_str(const struct dlist *a, const struct dlist *b,
    const char *key);
void link_fold_mailbox(struct dlist *newer, struct dlist *older);

/* link_replay.c: the replay loop. */
/* Sets up a new link's timers: the cursor's, the rate limits', idling. */
void link_replay_init(struct link *l);
/* Sends the next command from the journal, if the link is free to. */
void link_replay_next(struct link *l);
/* The replica got uniqueid whole (a repair): older records are moot. */
void link_remember_repaired(struct link *l, const char *uniqueid);
/* The replica accepted l->cmd: move the cursor past it and go on. */
void link_advance(struct link *l);
/* Goes on with whatever waits: sending bodies, or the next record. */
void link_kick(struct link *l);
/* Asks the replica about l->cmd's mailbox, then stages and sends it. */
void link_ask_mailbox_state(struct link *l);
/*
 * The replica refused l->cmd in a way that ends the connection (its
 * sync_server died): park what it concerns and move the cursor past
 * it, sending nothing (the caller drops the connection).
 */
void link_replay_refused(struct link *l, const char *why);
/* Sends the bodies the replica lacks, as the socket drains. */
void link_pump_files(struct link *l);

/*
 * link_whole.c: l->cmd a mailbox sent whole from the shadow
 * (getcmd_full_is_paged()).  start: after GET MAILBOXES, opens the
 * reader (0; -ENOENT: gone from the shadow; -EIO).  chunk: the next page
 * of records to stage into l->cmd's RECORD list (l->stage_more says if
 * more follow).  pump: writes the APPLY MAILBOX as the socket drains (1:
 * more to come, on_drain goes on; 0: all written; <0: cut short, why).
 * end: frees what a whole mailbox holds (NULL-safe).
 */
int link_whole_start(struct link *l, char *why, size_t why_len);
int link_whole_chunk(struct link *l, char *why, size_t why_len);
int link_whole_pump(struct link *l, char *why, size_t why_len);
void link_whole_end(struct link *l);

#endif
