/*
 * journal_int.h -- what journal.c (queue, writer, recovery) and
 * journal_stream.c (records written piece by piece, header last) share:
 * the queued operation, the journal's state, and the writer's helpers.
 * Nothing else includes it.
 */
#ifndef SR_JOURNAL_INT_H
#define SR_JOURNAL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "lib/buf.h"
#include "storage/fileops.h"
#include "storage/journal.h"
#include "storage/workpool.h"

enum op_kind {
	OP_RECORD, OP_BODY_BEGIN, OP_BODY_DATA, OP_BODY_END, OP_BODY_ABORT,
	OP_FLUSH, OP_ROLL, OP_IDLE,
};

struct jop {
	enum op_kind kind;
	uint8_t type;
	struct buf data;
	uint8_t guid[20];
	uint64_t size;
	uint64_t time_us;
	journal_done_fn *done;
	void *arg;
	uint64_t lsn;
	int err;
	int fd;			/* OP_RECORD from a file, or -1 */
	size_t head_len;	/* ... data holds the text before it;
				 * OP_BODY_END with fd: the whole body */
	struct jop *next;
};

/*
 * A body being journaled as it arrives.  Only one at a time streams
 * straight to the writer (its region is written header last, so nothing
 * else may be written into the segment meanwhile); a body another
 * session begins while one streams is kept in an unlinked file until
 * its end, then queued whole (an OP_BODY_END with fd).  Records queued
 * while one streams wait in the journal's deferred list.
 */
struct journal_body {
	struct journal *j;
	bool direct;		/* its ops go to the writer as they come */
	int fd;			/* else its bytes so far (-1: none made) */
	int err;		/* the first error keeping it */
	uint8_t guid[20];
	uint64_t size, have;	/* declared, received */
};

struct journal {
	char *dir;
	struct journal_opts opts;
	const struct fileops *fo;

	/* Shared between the owner and the writer, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jop *q_head, *q_tail;
	struct jop *done_head, *done_tail;
	uint64_t pending_bytes;
	int error;
	uint64_t durable_lsn;
	uint64_t *segs;		/* first LSN of each segment, ascending */
	size_t nsegs;
	uint64_t fsyncs, records;
	uint64_t fsync_buckets[JOURNAL_FSYNC_BUCKETS];	/* cumulative */
	double fsync_seconds_sum;
	struct workpool_task task;	/* first: the pool hands it back */

	/* The owner's own: the body streaming, what waits for its end. */
	struct journal_body *streaming;
	struct jop *defer_head, *defer_tail;
	bool busy;		/* a batch is queued in the pool or runs */

	/* The writer's own state. */
	int fd;			/* newest segment, or -1 */
	bool idle_closed;	/* fd closed while idle: reopen to append */
	uint64_t seg_size;	/* its length = the next write offset */
	uint64_t next_lsn;
	bool dir_dirty;		/* a segment was created: fsync the dir */
	ZSTD_CCtx *cctx;
	struct buf out;
	bool in_body;
	int body_err;
	uint64_t body_start, body_in, body_out, body_size;
	uint32_t body_crc;
	uint8_t body_guid[20];
	EVP_MD_CTX *sha;
};

/* The writer's segment open for appending (0 or negative errno). */
int journal_ensure_segment(struct journal *j);
/* The writer's compression context, made on first use. */
int journal_writer_cctx(struct journal *j);

/*
 * journal_stream.c, on the writer.  Each returns a write error (which
 * becomes sticky) or 0; a failure of the record alone is put in op->err.
 */
/* A body record starts (OP_BODY_BEGIN); a body still open is cut. */
int journal_stream_begin(struct journal *j, struct jop *op);
/* The next bytes of the body (OP_BODY_DATA). */
int journal_stream_data(struct journal *j, struct jop *op);
/* The body ends: size and SHA-1 checked, the header written. */
int journal_stream_end(struct journal *j, struct jop *op);
/* The record being written is dropped: the segment cut back. */
int journal_stream_cut(struct journal *j);
/* A whole command record from op's head, file and tail (OP_RECORD with
 * op->fd >= 0), header last. */
int journal_stream_file(struct journal *j, struct jop *op);
int journal_stream_body_file(struct journal *j, struct jop *op);

#endif
