/*
 * journal.c -- opening, recovering and appending to a store's journal.
 *
 * The format is described in segment.c.  The writer owns the newest
 * segment: it takes every queued operation, compresses and writes each
 * one in order, then makes the whole batch durable with a single
 * fdatasync (group commit) and hands the finished operations back
 * through the done list.  The owner's thread only ever queues and
 * collects, so it never waits on the disk.  The writer is not a thread
 * of the journal's own: a batch is a task for the process's small pool
 * (workpool.c), queued when the first operation arrives, one batch per
 * turn so that a busy store does not hold a thread while others wait.
 * At most one batch of a journal runs at a time.
 *
 * Invariants: LSNs are assigned by the writer in file order, one per
 * record, without gaps; a completion with err == 0 is delivered only
 * after the fdatasync covering its record returned; after the first
 * failed write or sync every later operation fails (sticky error).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "lib/crc32c.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "storage/journal.h"
#include "storage/journal_int.h"
#include "storage/segment.h"
#include "storage/workpool.h"

const double journal_fsync_bounds[JOURNAL_FSYNC_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 1.0,
};

/* A turn writes at most about this much before its fdatasync. */
#define TURN_BYTES ((uint64_t)1 << 20)
/* A journal with no more than this queued is urgent in the pool. */
#define URGENT_BYTES ((uint64_t)64 << 10)

/* Counts one group commit's fdatasync that took secs; under j->lock. */
static void
fsync_observe(struct journal *j, double secs)
{
	size_t i;

	j->fsyncs++;
	j->fsync_seconds_sum += secs;
	for (i = 0; i < JOURNAL_FSYNC_BUCKETS; i++)
		if (secs <= journal_fsync_bounds[i])
			j->fsync_buckets[i]++;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}


/* Idle: give back the context and the buffer (never inside a body). */
static void
writer_release(struct journal *j)
{
	if (j->in_body)
		return;
	ZSTD_freeCCtx(j->cctx);
	j->cctx = NULL;
	buf_free(&j->out);
	buf_init(&j->out, 0);
	xmalloc_trim();
}

/* ---- queueing (owner thread) ----------------------------------------- */

static struct jop *
op_new(enum op_kind kind)
{
	struct jop *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->fd = -1;
	buf_init(&op->data, 0);
	return op;
}

static void
op_free(struct jop *op)
{
	buf_free(&op->data);
	if (op->fd >= 0)
		close(op->fd);
	free(op);
}

static void
enqueue(struct journal *j, struct jop *op)
{
	pthread_mutex_lock(&j->lock);
	j->pending_bytes += op->data.len;
	if (j->q_tail)
		j->q_tail->next = op;
	else
		j->q_head = op;
	j->q_tail = op;
	if (!j->busy) {
		j->busy = true;
		workpool_submit(&j->task, j->pending_bytes <= URGENT_BYTES);
	}
	pthread_mutex_unlock(&j->lock);
}

/*
 * Everything but the streaming body's own operations: queued, or kept
 * until that body ends (the writer must not put a record inside its
 * region).  Their order among themselves is kept.
 */
static void
submit(struct journal *j, struct jop *op)
{
	if (j->streaming == NULL) {
		enqueue(j, op);
		return;
	}
	if (j->defer_tail)
		j->defer_tail->next = op;
	else
		j->defer_head = op;
	j->defer_tail = op;
}

/* The streaming body ended (or was dropped): what waited goes on. */
static void
stream_over(struct journal *j)
{
	struct jop *op, *next;

	j->streaming = NULL;
	op = j->defer_head;
	j->defer_head = j->defer_tail = NULL;
	for (; op != NULL; op = next) {
		next = op->next;
		op->next = NULL;
		enqueue(j, op);
	}
}

void
journal_append(struct journal *j, enum journal_type type, const void *raw,
    size_t len, journal_done_fn *done, void *arg)
{
	struct jop *op = op_new(OP_RECORD);

	op->type = (uint8_t)type;
	if (buf_append(&op->data, raw, len) < 0)
		op->err = -EFBIG;
	op->time_us = now_us();
	op->done = done;
	op->arg = arg;
	submit(j, op);
}

void
journal_append_file(struct journal *j, enum journal_type type,
    const struct buf *head, int fd, uint64_t len, const struct buf *tail,
    journal_done_fn *done, void *arg)
{
	struct jop *op = op_new(OP_RECORD);

	op->type = (uint8_t)type;
	op->head_len = head->len;
	op->size = len;
	if (buf_append(&op->data, head->s, head->len) < 0 ||
	    buf_append(&op->data, tail->s, tail->len) < 0 ||
	    (op->fd = dup(fd)) < 0)
		op->err = -EFBIG;
	op->time_us = now_us();
	op->done = done;
	op->arg = arg;
	submit(j, op);
}

/* An unlinked file for a body that cannot stream yet (-1, errno). */
static int
body_file(const struct journal *j)
{
	char path[4096];
	int fd;

	fd = open(j->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
	    errno != EINVAL))
		return fd;
	snprintf(path, sizeof(path), "%s/body.XXXXXX", j->dir);
	if ((fd = mkstemp(path)) >= 0)
		unlink(path);
	return fd;
}

struct journal_body *
journal_body_begin(struct journal *j, const char *guid, uint64_t size)
{
	struct journal_body *b = xcalloc(1, sizeof(*b));
	struct jop *op;

	b->j = j;
	b->size = size;
	b->fd = -1;
	if (journal_guid_parse(guid, b->guid) < 0)
		b->err = -EINVAL;
	if (j->streaming == NULL) {
		/* Straight to the writer as it arrives. */
		b->direct = true;
		j->streaming = b;
		op = op_new(OP_BODY_BEGIN);
		op->err = b->err;
		memcpy(op->guid, b->guid, 20);
		op->size = size;
		enqueue(j, op);
		return b;
	}
	/* Another session's body streams: keep this one aside. */
	if (b->err == 0 && (b->fd = body_file(j)) < 0)
		b->err = -errno;
	return b;
}

void
journal_body_write(struct journal_body *b, const void *p, size_t n)
{
	struct jop *op;
	ssize_t w;

	if (b->direct) {
		op = op_new(OP_BODY_DATA);
		if (buf_append(&op->data, p, n) < 0)
			op->err = -EFBIG;
		enqueue(b->j, op);
		return;
	}
	if (b->err)
		return;
	if (b->have + n > b->size) {
		b->err = -EBADMSG;	/* longer than it said */
		return;
	}
	while (n > 0) {
		if ((w = write(b->fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			b->err = -errno;
			return;
		}
		p = (const char *)p + w;
		n -= (size_t)w;
		b->have += (uint64_t)w;
	}
}

void
journal_body_end(struct journal_body *b, journal_done_fn *done, void *arg)
{
	struct journal *j = b->j;
	struct jop *op = op_new(OP_BODY_END);

	op->time_us = now_us();
	op->done = done;
	op->arg = arg;
	if (b->direct) {
		enqueue(j, op);
		stream_over(j);
	} else {
		/* The whole body from its file, checked by the writer. */
		memcpy(op->guid, b->guid, 20);
		op->size = b->size;
		op->err = b->err;
		if (op->err == 0 && b->have != b->size)
			op->err = -EBADMSG;
		op->fd = b->fd;
		b->fd = -1;
		submit(j, op);
	}
	free(b);
}

void
journal_body_abort(struct journal_body *b)
{
	if (b->direct) {
		enqueue(b->j, op_new(OP_BODY_ABORT));
		stream_over(b->j);
	} else if (b->fd >= 0) {
		close(b->fd);
	}
	free(b);
}

/* Queues an operation whose only payload is its completion. */
static void
enqueue_done(struct journal *j, enum op_kind kind, journal_done_fn *done,
    void *arg)
{
	struct jop *op = op_new(kind);

	op->done = done;
	op->arg = arg;
	submit(j, op);
}

void
journal_roll(struct journal *j, journal_done_fn *done, void *arg)
{
	enqueue_done(j, OP_ROLL, done, arg);
}

void
journal_flush(struct journal *j, journal_done_fn *done, void *arg)
{
	enqueue_done(j, OP_FLUSH, done, arg);
}

size_t
journal_collect(struct journal *j)
{
	struct jop *list, *op;
	size_t n = 0;

	pthread_mutex_lock(&j->lock);
	list = j->done_head;
	j->done_head = j->done_tail = NULL;
	pthread_mutex_unlock(&j->lock);
	while ((op = list) != NULL) {
		list = op->next;
		if (op->done)
			op->done(op->arg, op->lsn, op->err);
		op_free(op);
		n++;
	}
	return n;
}

uint64_t
journal_pending_bytes(struct journal *j)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = j->pending_bytes;
	pthread_mutex_unlock(&j->lock);
	return v;
}

int
journal_error(struct journal *j)
{
	int v;

	pthread_mutex_lock(&j->lock);
	v = j->error;
	pthread_mutex_unlock(&j->lock);
	return v;
}

uint64_t
journal_durable_lsn(struct journal *j)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = j->durable_lsn;
	pthread_mutex_unlock(&j->lock);
	return v;
}

const char *
journal_dir(const struct journal *j)
{
	return j->dir;
}

/* The oldest LSN kept, 0 when none is durable yet; under j->lock. */
static uint64_t
first_kept(const struct journal *j)
{
	return j->nsegs && j->durable_lsn >= j->segs[0] ? j->segs[0] : 0;
}

uint64_t
journal_first_lsn(struct journal *j)
{
	uint64_t first;

	pthread_mutex_lock(&j->lock);
	first = first_kept(j);
	pthread_mutex_unlock(&j->lock);
	return first;
}

void
journal_get_stats(struct journal *j, struct journal_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&j->lock);
	st->durable_lsn = j->durable_lsn;
	st->segments = j->nsegs;
	st->fsyncs = j->fsyncs;
	st->records = j->records;
	memcpy(st->fsync_buckets, j->fsync_buckets, sizeof(st->fsync_buckets));
	st->fsync_seconds_sum = j->fsync_seconds_sum;
	st->first_lsn = first_kept(j);
	for (i = 0; i < j->nsegs; i++) {
		char path[4096];
		struct stat sb;

		seg_path(path, sizeof(path), j->dir, j->segs[i]);
		if (stat(path, &sb) == 0)
			st->bytes += (uint64_t)sb.st_size;
	}
	pthread_mutex_unlock(&j->lock);
}

int
journal_segments(struct journal *j, struct journal_segment **out, size_t *n)
{
	struct journal_segment *v;
	size_t i;

	pthread_mutex_lock(&j->lock);
	v = xcalloc(j->nsegs + 1, sizeof(*v));
	for (i = 0; i < j->nsegs; i++) {
		char path[4096];
		struct stat sb;

		seg_path(path, sizeof(path), j->dir, j->segs[i]);
		v[i].first = j->segs[i];
		v[i].last = i + 1 < j->nsegs ? j->segs[i + 1] - 1 :
		    j->durable_lsn;
		if (stat(path, &sb) == 0) {
			v[i].bytes = (uint64_t)sb.st_size;
			v[i].mtime_us = (uint64_t)sb.st_mtim.tv_sec * 1000000 +
			    (uint64_t)sb.st_mtim.tv_nsec / 1000;
		}
	}
	*n = j->nsegs;
	pthread_mutex_unlock(&j->lock);
	*out = v;
	return 0;
}

int
journal_drop_before(struct journal *j, uint64_t lsn)
{
	size_t drop = 0, i;
	int r = 0;

	pthread_mutex_lock(&j->lock);
	/* Segment i holds LSNs segs[i] .. segs[i+1]-1. */
	while (drop + 1 < j->nsegs && j->segs[drop + 1] <= lsn)
		drop++;
	for (i = 0; i < drop; i++) {
		char path[4096];

		seg_path(path, sizeof(path), j->dir, j->segs[i]);
		if (j->fo->unlink(j->fo->ctx, path) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
	}
	memmove(j->segs, j->segs + i, (j->nsegs - i) * sizeof(*j->segs));
	j->nsegs -= i;
	pthread_mutex_unlock(&j->lock);
	if (i > 0)
		fileops_sync_dir(j->fo, j->dir);
	return r < 0 ? r : (int)i;
}

/* ---- the writer thread ------------------------------------------------ */


static int
write_record(struct journal *j, struct jop *op)
{
	struct journal_record rec;
	size_t bound, clen;
	int r;

	if (op->data.len > UINT32_MAX)
		return -EFBIG;
	if ((r = journal_ensure_segment(j)) < 0 || (r = journal_writer_cctx(j)) < 0)
		return r;
	bound = ZSTD_compressBound(op->data.len);
	buf_reset(&j->out);
	if (buf_reserve(&j->out, REC_HDR_SIZE + bound) < 0)
		return -EFBIG;
	clen = ZSTD_compress2(j->cctx, j->out.s + REC_HDR_SIZE, bound,
	    op->data.s ? op->data.s : "", op->data.len);
	if (ZSTD_isError(clen))
		return -EIO;
	memset(&rec, 0, sizeof(rec));
	rec.lsn = j->next_lsn;
	rec.time_us = op->time_us;
	rec.type = op->type;
	rec.payload_len = (uint32_t)clen;
	rec.raw_len = (uint32_t)op->data.len;
	rec_header_encode((uint8_t *)j->out.s, &rec,
	    crc32c_update(0, j->out.s + REC_HDR_SIZE, clen));
	r = fileops_pwrite_all(j->fo, j->fd, j->out.s, REC_HDR_SIZE + clen,
	    (off_t)j->seg_size);
	if (r < 0)
		return r;
	j->seg_size += REC_HDR_SIZE + clen;
	op->lsn = j->next_lsn++;
	return 0;
}

/* Runs one operation; returns a write error, which becomes sticky. */
static int
process(struct journal *j, struct jop *op, bool *wrote)
{
	int r = 0;

	switch (op->kind) {
	case OP_RECORD:
		if (op->err)
			return 0;
		r = op->fd >= 0 ? journal_stream_file(j, op) :
		    write_record(j, op);
		*wrote = *wrote || (r == 0 && op->err == 0);
		break;
	case OP_BODY_BEGIN:
		r = journal_stream_begin(j, op);
		break;
	case OP_BODY_DATA:
		r = journal_stream_data(j, op);
		break;
	case OP_BODY_END:
		if (op->err)
			break;	/* a body kept aside, refused before the
				 * writer saw it: its own error stands */
		r = op->fd >= 0 ? journal_stream_body_file(j, op) :
		    journal_stream_end(j, op);
		*wrote = *wrote || (r == 0 && op->err == 0);
		break;
	case OP_BODY_ABORT:
		if (j->in_body)
			r = journal_stream_cut(j);
		break;
	case OP_FLUSH:
		break;
	case OP_IDLE:
		/* Everything written is durable (each batch ended in a sync):
		 * the segment can be closed and reopened on the next append. */
		if (j->in_body || *wrote)
			break;		/* not idle after all */
		writer_release(j);
		if (j->fd >= 0) {
			j->fo->close(j->fo->ctx, j->fd);
			j->fd = -1;
			j->idle_closed = true;
		}
		break;
	case OP_ROLL:
		/* Close a segment holding records; start the next, empty. */
		if (j->in_body || j->seg_size <= SEG_HDR_SIZE ||
		    (j->fd < 0 && !j->idle_closed))
			break;
		if (j->fd < 0) {
			/* Closed while idle, and durable then: just go on. */
			j->idle_closed = false;
			r = journal_ensure_segment(j);
			*wrote = *wrote || r == 0;
			break;
		}
		if (j->fo->fdatasync(j->fo->ctx, j->fd) < 0)
			return -errno;
		j->fo->close(j->fo->ctx, j->fd);
		j->fd = -1;
		r = journal_ensure_segment(j);
		*wrote = *wrote || r == 0;
		break;
	}
	return r;
}

/*
 * One batch of a journal, on a pool thread: everything queued so far is
 * written (up to TURN_BYTES) and made durable with one fdatasync.  If
 * more is queued, the journal goes to the back of the pool's queue (its
 * urgent one when little is left).
 */
static void
writer_run(struct workpool_task *t)
{
	struct journal *j = (struct journal *)((char *)t -
	    offsetof(struct journal, task));
	struct jop *batch, *op, *next;
	uint64_t bytes = 0, last_lsn = 0;
	double sync_secs = 0;
	bool wrote = false;
	int err;

	pthread_mutex_lock(&j->lock);
	/* At most TURN_BYTES per turn (group commit of what fits): a busy
	 * store's batch does not keep a thread for long while others wait. */
	batch = j->q_head;
	if (batch == NULL) {		/* not expected: nothing to do */
		j->busy = false;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
		return;
	}
	for (op = batch; op->next != NULL && bytes + op->data.len <
	    TURN_BYTES; op = op->next)
		bytes += op->data.len;
	j->q_head = op->next;
	if (j->q_head == NULL)
		j->q_tail = NULL;
	op->next = NULL;
	bytes = 0;
	err = j->error;
	pthread_mutex_unlock(&j->lock);

	for (op = batch; op != NULL; op = op->next) {
		bytes += op->data.len;
		if (err) {
			if (op->kind == OP_RECORD || op->kind == OP_BODY_END ||
			    op->kind == OP_FLUSH || op->kind == OP_ROLL)
				op->err = err;
			continue;
		}
		err = process(j, op, &wrote);
		if (op->lsn)
			last_lsn = op->lsn;
		if (err)
			log_warnx("journal=%s event=write_failed error=\"%s\"",
			    j->dir, strerror(-err));
	}
	if (wrote && !err) {
		double t0 = mono_seconds();
		int sr = j->fo->fdatasync(j->fo->ctx, j->fd);
		int serr = errno;

		sync_secs = mono_seconds() - t0;
		if (sr < 0) {
			err = -serr;
			log_warnx("journal=%s event=fdatasync_failed "
			    "error=\"%s\"", j->dir, strerror(serr));
		} else if (j->dir_dirty) {
			err = fileops_sync_dir(j->fo, j->dir);
			j->dir_dirty = err != 0;
		}
	}

	pthread_mutex_lock(&j->lock);
	if (err) {
		/* Nothing of this batch is known durable. */
		j->error = err;
		for (op = batch; op != NULL; op = op->next)
			if (op->err == 0 && (op->kind == OP_RECORD ||
			    op->kind == OP_BODY_END ||
			    op->kind == OP_FLUSH || op->kind == OP_ROLL))
				op->err = err;
	} else if (last_lsn) {
		j->durable_lsn = last_lsn;
	}
	if (wrote && !err)
		fsync_observe(j, sync_secs);
	for (op = batch; op != NULL; op = next) {
		next = op->next;
		if (op->kind == OP_RECORD || op->kind == OP_BODY_END) {
			if (op->err == 0)
				j->records++;
		}
		if ((op->kind == OP_FLUSH || op->kind == OP_ROLL) &&
		    op->err == 0)
			op->lsn = j->durable_lsn;
		if (op->done == NULL) {
			op_free(op);
			continue;
		}
		op->next = NULL;
		if (j->done_tail)
			j->done_tail->next = op;
		else
			j->done_head = op;
		j->done_tail = op;
	}
	j->pending_bytes -= bytes;
	pthread_mutex_unlock(&j->lock);
	if (j->opts.wakeup)
		j->opts.wakeup(j->opts.wakeup_arg);
	pthread_mutex_lock(&j->lock);
	if (j->q_head != NULL) {
		workpool_submit(&j->task, j->pending_bytes <= URGENT_BYTES);
	} else {
		/* From here on the owner may close and free the journal. */
		j->busy = false;
		pthread_cond_broadcast(&j->cond);
	}
	pthread_mutex_unlock(&j->lock);
}

/* Waits until no batch of j is queued or running. */
static void
writer_drain(struct journal *j)
{
	pthread_mutex_lock(&j->lock);
	while (j->busy)
		pthread_cond_wait(&j->cond, &j->lock);
	pthread_mutex_unlock(&j->lock);
}

void
journal_idle(struct journal *j)
{
	submit(j, op_new(OP_IDLE));
}

/* ---- opening and recovery --------------------------------------------- */

static int
fail_open(char *err, size_t err_len, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail_open(char *err, size_t err_len, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Recovers the segments in j->dir: sets next_lsn and segs, leaves the
 * newest segment open in j->fd.  Returns 0 or a negative errno.
 */
static int
recover(struct journal *j, char *err, size_t err_len)
{
	uint64_t *firsts = NULL, expected = 0;
	size_t n = 0, n_all, i;
	int r, fd = -1;

	if ((r = seg_list(j->dir, &firsts, &n)) < 0)
		return fail_open(err, err_len, r, "%s: %s", j->dir,
		    strerror(-r));
	n_all = n;
	for (i = 0; i < n; i++) {
		char path[4096];
		uint8_t sh[SEG_HDR_SIZE];
		struct stat sb;
		uint64_t first, off = SEG_HDR_SIZE, last = 0;
		struct journal_record rec;
		const char *why = NULL;
		bool newest = i == n - 1;

		seg_path(path, sizeof(path), j->dir, firsts[i]);
		fd = j->fo->open(j->fo->ctx, path, O_RDWR, 0);
		if (fd < 0 || fstat(fd, &sb) < 0) {
			r = -errno;
			goto io_error;
		}
		if (sb.st_size < SEG_HDR_SIZE ||
		    fileops_pread_all(j->fo, fd, sh, sizeof(sh), 0) !=
		    SEG_HDR_SIZE || seg_header_decode(sh, &first) < 0 ||
		    first != firsts[i]) {
			if (newest && sb.st_size <= SEG_HDR_SIZE) {
				/* Created, but its header never made it. */
				log_warnx("journal=%s event=torn_tail "
				    "segment=%s cut=%lld reason=\"segment "
				    "header incomplete\"", j->dir, path,
				    (long long)sb.st_size);
				j->fo->close(j->fo->ctx, fd);
				fd = -1;
				j->fo->unlink(j->fo->ctx, path);
				n--;
				break;
			}
			why = "bad segment header";
			off = 0;
			goto corrupt;
		}
		if (expected && first != expected) {
			why = "LSN gap between segments";
			off = SEG_HDR_SIZE;
			goto corrupt;
		}
		last = first - 1;
		for (;;) {
			r = seg_check_record(j->fo, fd, off,
			    (uint64_t)sb.st_size, &rec, &why);
			if (r == SEG_RECORD_OK && rec.lsn != last + 1) {
				r = SEG_TORN;
				why = "record out of LSN sequence";
			}
			if (r == SEG_RECORD_OK) {
				last = rec.lsn;
				off += REC_HDR_SIZE + (uint64_t)rec.payload_len;
				continue;
			}
			if (r == SEG_END)
				break;
			if (r != SEG_TORN)
				goto io_error;
			if (!newest || seg_valid_record_follows(j->fo, fd, off,
			    (uint64_t)sb.st_size))
				goto corrupt;
			/* A torn tail: only never-acknowledged data. */
			log_warnx("journal=%s event=torn_tail segment=%s "
			    "offset=%llu cut=%llu reason=\"%s\"", j->dir, path,
			    (unsigned long long)off,
			    (unsigned long long)((uint64_t)sb.st_size - off),
			    why);
			if (j->fo->ftruncate(j->fo->ctx, fd, (off_t)off) < 0 ||
			    j->fo->fdatasync(j->fo->ctx, fd) < 0) {
				r = -errno;
				goto io_error;
			}
			break;
		}
		expected = last + 1;
		if (!newest) {
			j->fo->close(j->fo->ctx, fd);
			fd = -1;
		} else {
			j->seg_size = off;
		}
		continue;
corrupt:
		if (!j->opts.repair) {
			r = fail_open(err, err_len, -EBADMSG, "journal %s is "
			    "corrupt: segment %s offset %llu: %s", j->dir, path,
			    (unsigned long long)off, why);
			goto out;
		}
		log_error("journal=%s event=repair segment=%s offset=%llu "
		    "reason=\"%s\" note=\"cutting here; later segments are "
		    "removed\"", j->dir, path, (unsigned long long)off, why);
		if (off <= SEG_HDR_SIZE) {
			/* Nothing of this segment is kept. */
			j->fo->close(j->fo->ctx, fd);
			fd = -1;
			j->fo->unlink(j->fo->ctx, path);
			n = i;
			if (expected == 0)
				expected = firsts[i];	/* LSNs never go back */
		} else {
			if (j->fo->ftruncate(j->fo->ctx, fd, (off_t)off) < 0 ||
			    j->fo->fdatasync(j->fo->ctx, fd) < 0) {
				r = -errno;
				goto io_error;
			}
			expected = last + 1;
			j->seg_size = off;
			n = i + 1;
		}
		for (size_t k = i + 1; k < n_all; k++) {
			seg_path(path, sizeof(path), j->dir, firsts[k]);
			j->fo->unlink(j->fo->ctx, path);
		}
		break;
	}
	j->segs = firsts;
	j->nsegs = n;
	firsts = NULL;
	j->next_lsn = expected ? expected : 1;
	j->durable_lsn = j->next_lsn - 1;
	j->fd = fd;
	fd = -1;
	if (j->fd < 0)
		j->seg_size = 0;
	r = 0;
	goto out;
io_error:
	r = fail_open(err, err_len, r, "journal %s: %s", j->dir,
	    strerror(-r));
out:
	if (fd >= 0)
		j->fo->close(j->fo->ctx, fd);
	free(firsts);
	return r;
}

int
journal_open(const char *dir, const struct journal_opts *opts,
    struct journal **out, char *err, size_t err_len)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	int r;

	j->dir = xstrdup(dir);
	if (opts)
		j->opts = *opts;
	j->fo = j->opts.fops ? j->opts.fops : &fileops_posix;
	if (j->opts.segment_bytes == 0)
		j->opts.segment_bytes = JOURNAL_SEGMENT_BYTES_DEFAULT;
	if (j->opts.zstd_level == 0)
		j->opts.zstd_level = 3;
	j->fd = -1;
	j->task.run = writer_run;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	buf_init(&j->out, 0);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		r = fail_open(err, err_len, -errno, "%s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if ((r = recover(j, err, err_len)) < 0)
		goto fail;
	j->sha = EVP_MD_CTX_new();
	if (j->sha == NULL) {
		r = fail_open(err, err_len, -ENOMEM, "out of memory");
		goto fail;
	}
	*out = j;
	return 0;
fail:
	journal_close(&j);
	return r;
}

/*
 * After a failed write: stops the writer, recovers the directory as an
 * open would (cutting the half-written tail), makes what recovery kept
 * durable, and starts the writer again without the sticky error.  On
 * failure the journal keeps its segments and stays failed.
 */
int
journal_recover(struct journal *j, char *err, size_t err_len)
{
	uint64_t *old_segs = j->segs;
	size_t old_n = j->nsegs;
	int r;

	if (journal_error(j) == 0)
		return 0;
	writer_drain(j);
	journal_collect(j);
	if (j->in_body)
		journal_stream_cut(j);
	if (j->fd >= 0)
		j->fo->close(j->fo->ctx, j->fd);
	j->fd = -1;
	j->idle_closed = false;
	pthread_mutex_lock(&j->lock);
	j->segs = NULL;
	j->nsegs = 0;
	pthread_mutex_unlock(&j->lock);
	r = recover(j, err, err_len);
	if (r == 0 && j->fd >= 0 && j->fo->fdatasync(j->fo->ctx, j->fd) < 0)
		r = fail_open(err, err_len, -errno, "journal %s: %s", j->dir,
		    strerror(errno));
	pthread_mutex_lock(&j->lock);
	if (r < 0) {
		free(j->segs);
		j->segs = old_segs;
		j->nsegs = old_n;
	} else {
		free(old_segs);
		j->error = 0;
		j->dir_dirty = true;
	}
	pthread_mutex_unlock(&j->lock);
	return r;
}

void
journal_close(struct journal **jp)
{
	struct journal *j = *jp;

	if (j == NULL)
		return;
	if (j->streaming != NULL) {
		/* Closed in the middle of a body: drop it, write the rest. */
		j->streaming->direct = false;
		j->streaming->err = -ECANCELED;
		enqueue(j, op_new(OP_BODY_ABORT));
		stream_over(j);
	}
	writer_drain(j);
	journal_collect(j);
	if (j->in_body)
		journal_stream_cut(j);
	if (j->fd >= 0)
		j->fo->close(j->fo->ctx, j->fd);
	ZSTD_freeCCtx(j->cctx);
	EVP_MD_CTX_free(j->sha);
	buf_free(&j->out);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j->segs);
	free(j->dir);
	free(j);
	*jp = NULL;
}
