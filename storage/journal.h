/*
 * journal.h -- a store's append-only, crash-safe journal.
 *
 * Records are appended in order and numbered by LSN (1, 2, 3, ... with
 * no gaps).  Appends are queued to a writer (a task of the process's
 * pool of writer threads, storage/workpool.h) that compresses them
 * (zstd), writes them, and makes each batch durable with one fdatasync
 * (group commit).  A caller learns that its record is durable -- and
 * its LSN -- through a completion: the writer calls opts.wakeup() from
 * its thread, and the owner then calls journal_collect() on its own
 * thread, which runs the done callbacks in LSN order.
 *
 * Message bodies are records too (JOURNAL_BODY), streamed in pieces and
 * checked against their SHA-1 GUID as they are written; a body whose
 * bytes do not match is cut and reported with -EBADMSG.
 *
 * A failed write or fdatasync makes the journal refuse everything after
 * it (a sticky error, journal_error()); on the next open, recovery cuts
 * whatever was half-written.  The on-disk format is documented at the
 * top of journal.c and in docs/storage.md.
 */
#ifndef SR_JOURNAL_H
#define SR_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "storage/fileops.h"

enum journal_type {
	JOURNAL_COMMAND = 1,	/* an accepted csync command, dlist text */
	JOURNAL_BODY = 2,	/* a message body, keyed by its GUID */
};

struct journal_opts {
	const struct fileops *fops;	/* NULL: the real system calls */
	uint64_t segment_bytes;		/* roll to a new segment past this */
	int zstd_level;			/* 0: default (3) */
	bool repair;			/* cut corruption instead of failing */
	/* Called on the writer thread when completions are ready. */
	void (*wakeup)(void *arg);
	void *wakeup_arg;
};

#define JOURNAL_SEGMENT_BYTES_DEFAULT ((uint64_t)64 << 20)

/* Completion: err is 0 (durable, lsn set) or a negative errno. */
typedef void journal_done_fn(void *arg, uint64_t lsn, int err);

struct journal_record {
	uint64_t lsn;
	uint64_t time_us;	/* when the record was appended */
	uint8_t type;		/* enum journal_type */
	uint32_t raw_len;	/* bytes before compression */
	uint32_t payload_len;	/* bytes on disk after the header */
	uint8_t guid[20];	/* JOURNAL_BODY: SHA-1 of the raw bytes */
	uint64_t segment;	/* first LSN of the segment holding it */
	uint64_t offset;	/* of its header in that segment */
};

/* Upper bounds (seconds) of the group-commit fdatasync latency buckets. */
#define JOURNAL_FSYNC_BUCKETS 12
extern const double journal_fsync_bounds[JOURNAL_FSYNC_BUCKETS];

struct journal_stats {
	uint64_t first_lsn;	/* oldest record kept (0: none) */
	uint64_t durable_lsn;	/* newest durable record (0: none) */
	uint64_t segments;
	uint64_t bytes;		/* on disk, all segments */
	uint64_t fsyncs;	/* group commits so far */
	uint64_t records;	/* appended since open */
	/* Group commits whose fdatasync took at most journal_fsync_bounds[i]
	 * seconds (cumulative, like a Prometheus histogram; the total is
	 * fsyncs), and the seconds they took altogether. */
	uint64_t fsync_buckets[JOURNAL_FSYNC_BUCKETS];
	double fsync_seconds_sum;
};

struct journal;
struct journal_body;

/*
 * Opens (creating if needed) the journal in directory dir, recovers it
 * -- cutting a torn tail, refusing corruption elsewhere unless
 * opts->repair -- and starts its writer thread.  Returns 0, or a
 * negative errno with a reason in err.
 */
int journal_open(const char *dir, const struct journal_opts *opts,
    struct journal **out, char *err, size_t err_len);
/*
 * After the sticky error, once nothing is queued (the disk has room
 * again): recovers the journal as journal_open() would, cutting what
 * was half-written, and accepts appends again.  Returns 0 (also when
 * there was no error), or a negative errno with a reason in err (the
 * journal stays failed).
 */
int journal_recover(struct journal *j, char *err, size_t err_len);
/* Completes everything queued, stops the writer, frees; NULL-safe. */
void journal_close(struct journal **jp);

/* Queues a record of len raw bytes (copied). */
void journal_append(struct journal *j, enum journal_type type,
    const void *raw, size_t len, journal_done_fn *done, void *arg);
/*
 * Queues a command record whose raw text is head, then the first len
 * bytes of the file fd (dup'ed: the caller may close its own at once),
 * then tail: the writer reads the file in bounded pieces, so a command
 * of any size (a huge APPLY MAILBOX's records, relay/ingest/bigbox.c)
 * is journaled in bounded memory.  As journal_append(), but done gets
 * -EIO (and nothing is kept) if the file is shorter than len.
 */
void journal_append_file(struct journal *j, enum journal_type type,
    const struct buf *head, int fd, uint64_t len, const struct buf *tail,
    journal_done_fn *done, void *arg);
/* Starts a body record for guid (40 hex digits) of size bytes. */
struct journal_body *journal_body_begin(struct journal *j, const char *guid,
    uint64_t size);
/* Queues the next n bytes of the body (copied). */
void journal_body_write(struct journal_body *b, const void *p, size_t n);
/* Ends the body; done gets -EBADMSG if size or SHA-1 did not match. */
void journal_body_end(struct journal_body *b, journal_done_fn *done,
    void *arg);
/* Abandons the body: nothing of it is kept. */
void journal_body_abort(struct journal_body *b);
/* done runs once everything queued before it is durable. */
void journal_flush(struct journal *j, journal_done_fn *done, void *arg);

/*
 * Closes the newest segment if it holds records and starts the next one
 * (empty), so that retention can drop the old one once every replica
 * has it; done runs once that is durable (err: the write error).
 */
void journal_roll(struct journal *j, journal_done_fn *done, void *arg);

/*
 * The owner saw the journal idle: the writer gives back its compression
 * context and buffer and closes the segment (reopened by the next
 * append).  Nothing is lost or delayed by it; a no-op inside a body.
 */
void journal_idle(struct journal *j);

/* Runs the callbacks of finished appends; returns how many. */
size_t journal_collect(struct journal *j);
/* Bytes queued but not yet written (for backpressure). */
uint64_t journal_pending_bytes(struct journal *j);
/* The sticky error (0 while healthy). */
int journal_error(struct journal *j);
/* The newest durable LSN (0: none yet). */
uint64_t journal_durable_lsn(struct journal *j);
/* The oldest LSN kept (0: none; retention moves it forward). */
uint64_t journal_first_lsn(struct journal *j);
void journal_get_stats(struct journal *j, struct journal_stats *st);
/* The journal's directory. */
const char *journal_dir(const struct journal *j);

struct journal_segment {
	uint64_t first;		/* first LSN */
	uint64_t last;		/* last LSN (first - 1 when empty) */
	uint64_t bytes;
	uint64_t mtime_us;	/* last written */
};

/* Lists the segments, oldest first, into a new array (caller frees). */
int journal_segments(struct journal *j, struct journal_segment **out,
    size_t *n);

/*
 * Deletes whole segments all of whose records are below lsn (never the
 * newest segment).  Returns the number deleted or a negative errno.
 */
int journal_drop_before(struct journal *j, uint64_t lsn);

/* ---- reading ---------------------------------------------------------- */

struct journal_reader;

/*
 * Returns a reader of the journal in dir positioned at the first record
 * with LSN >= from; it returns records up to upto (0: all valid ones).
 * Returns NULL with err set if dir cannot be read.
 */
struct journal_reader *journal_reader_new(const char *dir,
    const struct fileops *fops, uint64_t from, uint64_t upto, char *err,
    size_t err_len);
void journal_reader_free(struct journal_reader **rp);
/* Moves the reader's upper bound (a live reader follows the durable LSN). */
void journal_reader_set_upto(struct journal_reader *r, uint64_t upto);
/*
 * From now on next() leaves the text of a command record over max bytes
 * (rec->raw_len) unread: raw comes back empty, and the caller reads the
 * text in pieces with journal_text_stream_open_at().  0: no limit.
 */
void journal_reader_set_max_text(struct journal_reader *r, size_t max);
/*
 * Reads the next record into rec.  For records other than bodies the
 * decompressed bytes replace raw's contents.  Returns 1, 0 at the end,
 * or a negative errno (-EBADMSG: a record failed its checksum), with a
 * description from journal_reader_errstr().
 */
int journal_reader_next(struct journal_reader *r, struct journal_record *rec,
    struct buf *raw);
/*
 * Streams the decompressed bytes of body record rec (as returned by the
 * last journal_reader_next()) to sink, checking size and SHA-1.
 * Returns 0 or a negative errno (-EBADMSG on a mismatch, or what the
 * sink returned).
 */
int journal_reader_body(struct journal_reader *r,
    const struct journal_record *rec,
    int (*sink)(void *arg, const void *p, size_t n), void *arg);
const char *journal_reader_errstr(const struct journal_reader *r);
/*
 * Frees the reader's decompression context and buffers and closes its
 * segment (an idle reader keeps its place but not its memory nor a
 * descriptor); they are made and opened again when needed.
 */
void journal_reader_trim(struct journal_reader *r);

/*
 * A body record read in pieces, for sending it without holding it whole.
 * open() finds the body record at lsn in the journal in dir; read()
 * appends up to max decompressed bytes to out and returns how many (0
 * at the end, after checking size and SHA-1), or a negative errno
 * (-EBADMSG on damage or a mismatch).
 */
struct journal_body_stream;
struct journal_body_stream *journal_body_stream_open(const char *dir,
    const struct fileops *fops, uint64_t lsn, struct journal_record *rec,
    char *err, size_t err_len);
/*
 * The same, told the record's segment and offset (from a journal_record
 * seen earlier) so that it need not scan the segment (0, 0: no hint).  A
 * wrong hint never yields another record's bytes: the record read must
 * pass its checks and be the body at lsn, or the open fails.
 */
struct journal_body_stream *journal_body_stream_open_at(const char *dir,
    const struct fileops *fops, uint64_t lsn, uint64_t segment,
    uint64_t offset, struct journal_record *rec, char *err, size_t err_len);
/*
 * The same for the command record at lsn: read() yields its text (what
 * next() would have put in raw) in pieces, and fails with -EBADMSG if it
 * does not come to rec->raw_len bytes.
 */
struct journal_body_stream *journal_text_stream_open_at(const char *dir,
    const struct fileops *fops, uint64_t lsn, uint64_t segment,
    uint64_t offset, struct journal_record *rec, char *err, size_t err_len);
ssize_t journal_body_stream_read(struct journal_body_stream *bs,
    struct buf *out, size_t max);
void journal_body_stream_free(struct journal_body_stream **bsp);
/*
 * After next() returned 0: returns 1 if the newest segment ends in a
 * torn tail (bytes that recovery would cut), with where and why.
 */
int journal_reader_torn_tail(const struct journal_reader *r,
    uint64_t *segment, uint64_t *offset, uint64_t *bytes, const char **why);

/* Hex form of a record's GUID into out[41]. */
void journal_guid_hex(const uint8_t guid[20], char out[41]);
/* Parses 40 hex digits into guid[20]; 0 or -EINVAL. */
int journal_guid_parse(const char *hex, uint8_t guid[20]);

#endif
