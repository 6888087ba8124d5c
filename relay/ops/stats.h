/*
 * stats.h -- what the daemon knows about its stores and links, for the
 * control socket (syncrelayctl) and the Prometheus metrics, as plain
 * structs (filled by relay/ops/snapshot.c).  Counters are totals since the
 * daemon started; gauges are as of the snapshot.
 */
#ifndef SR_STATS_H
#define SR_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Upper bounds (seconds) of the fsync latency histogram's buckets: the
 * journal's (journal_fsync_bounds), which measures them.
 */
#define STATS_FSYNC_BUCKETS 12
extern const double *const stats_fsync_bounds;

/* Result codes counted per store and per link (errors by result code). */
#define STATS_MAX_CODES 16
#define STATS_MAX_PEERS 8	/* master sessions' addresses listed */
struct stats_code_count {
	char code[40];		/* e.g. "IMAP_SYNC_CHECKSUM", "NO" */
	uint64_t n;
};

/* A parked mailbox or record (relay/replay/link_park.c). */
#define STATS_MAX_PARKED 4
struct stats_parked {
	bool mailbox;		/* a mailbox (else another record) */
	char name[256];
	char reply[300];	/* the replica's reply, or the reason */
	uint64_t lsn;		/* the first record refused */
	double since;		/* epoch seconds */
	unsigned tries;
	double next_try;	/* seconds from now */
};

struct stats_link {
	char name[128];
	char address[300];	/* host:port */
	char state[24];		/* link_state_name(), or "paused" */
	bool paused;
	char reason[1024];	/* why failed / down (empty otherwise) */
	char last_error[1024];	/* the last error seen, even if recovered */
	double last_error_time;	/* epoch seconds (0: none) */
	/* Differences the last user-level repair left alone (the shadow
	 * was partial): how many, and the first few names. */
	unsigned left_alone;
	char left_alone_names[1024];
	/* How long the link has waited for the replica's reply (0: it
	 * waits for nothing). */
	double waiting_seconds;
	/* Parked: how many, and the first STATS_MAX_PARKED. */
	uint64_t parked;
	struct stats_parked parked_list[STATS_MAX_PARKED];
	uint64_t cursor_lsn;	/* last LSN the replica acknowledged */
	uint64_t lag_records;	/* head_lsn - cursor_lsn */
	uint64_t lag_bytes;	/* journal bytes after the cursor */
	double lag_seconds;	/* age of the oldest record not replayed */
	double replay_rate;	/* records/s acknowledged, recent average */
	double eta_seconds;	/* lag_records / replay_rate; -1: unknown */
	uint64_t replayed_records;	/* acknowledged since start */
	uint64_t replayed_bytes;	/* bytes sent to the replica */
	uint64_t connects;		/* successful logins since start */
	/* The last audit that compared every mailbox (relay/ops/audit.c). */
	uint64_t audit_mismatched;	/* mailboxes that differed */
	double audit_time;		/* epoch seconds; 0: none yet */
	/* After an outage: checked against the shadow before caught up. */
	bool checking;			/* a check is wanted or runs */
	char check_why[300];
	char needs_seed[600];		/* what it could not repair, or "" */
	/* syncrelayctl seed under way: mailboxes sent whole and taken. */
	bool seeding;
	uint64_t seed_total, seed_done, seed_bytes;
	double seed_seconds, seed_eta;	/* eta -1: unknown */
	struct stats_code_count errors[STATS_MAX_CODES];
	size_t nerrors;
};

struct stats_store {
	char name[128];
	char identity[256];
	bool master_connected;		/* at least one master session */
	char master_peer[300];		/* the oldest session's address */
	unsigned master_sessions;	/* master sessions logged in */
	unsigned master_hosts;		/* different hosts among them */
	char master_peers[STATS_MAX_PEERS][300];	/* the first ones */
	double master_last_command;	/* epoch seconds (0: never) */
	uint64_t head_lsn;		/* newest durable record */
	uint64_t first_lsn;		/* oldest record kept */
	uint64_t journal_bytes;
	uint64_t journal_segments;
	uint64_t ingested_records;	/* since start */
	uint64_t ingested_bytes;	/* payload bytes, since start */
	uint64_t fsyncs;
	uint64_t fsync_buckets[STATS_FSYNC_BUCKETS];	/* cumulative */
	double fsync_seconds_sum;
	struct stats_code_count errors[STATS_MAX_CODES];	/* replies */
	size_t nerrors;
	/* Refusing the master's writes for want of disk (diskguard.c). */
	bool disk_full;			/* free space below the floor */
	double disk_full_since;		/* epoch seconds */
	uint64_t disk_free_bytes, disk_floor_bytes;
	bool storage_failed;		/* journal or shadow write failed,
					   recovery pending */
	uint64_t refusing;		/* 1: disk full or storage failed */
	uint64_t disk_full_since_s;	/* epoch seconds, 0: not full */
	uint64_t failed;		/* 1: it could not be opened; set
					   aside, nothing else is filled */
	char failed_error[1024];	/* why, and the way back */
	struct stats_link *links;
	size_t nlinks;
};

/* Frees what snapshot_store() allocated in s. */
void stats_store_release(struct stats_store *s);
/* Adds one to the count of code in a table of at most STATS_MAX_CODES. */
void stats_count_code(struct stats_code_count *t, size_t *n,
    const char *code);
/* Counts a reply line's word and text if it is a NO or BAD (true). */
bool stats_count_reply(struct stats_code_count *t, size_t *n,
    const char *word, const char *text);

#endif
