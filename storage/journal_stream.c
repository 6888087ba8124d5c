/*
 * journal_stream.c -- records written a piece at a time, header last.
 *
 * A message body streams from the master's socket into the journal as
 * it arrives (journal_body_begin/write/end), and a huge command's text
 * streams from a file (journal_append_file(): a big APPLY MAILBOX whose
 * records were spilled, relay/ingest/bigbox.c).  Both are compressed as
 * one zstd frame in bounded pieces and written after an unwritten (zero)
 * header slot; the header goes in last, once the payload is whole and
 * its checksum known, so a crash or a failure mid-record leaves a torn
 * tail that recovery cuts (segment.c), never a record.  A failure of
 * the record itself (a bad body, a short file) cuts the segment back to
 * where the record began.  These run on the journal's writer (journal.c
 * calls them from process()), as do the writer's segment and zstd
 * context; journal_int.h has the state they share.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "lib/crc32c.h"
#include "lib/xmalloc.h"
#include "storage/journal.h"
#include "storage/journal_int.h"
#include "storage/segment.h"

/* Microseconds since the epoch, for a new segment's header. */
static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * The compression context and the output buffer, made on first use.  A
 * used zstd context keeps a workspace sized for the largest input it saw
 * (~150 KB after 4 KB messages, megabytes after large ones at level 3),
 * and the output buffer its largest size (256 KB once a body streamed
 * through it).  With 200 stores that was most of an idle daemon's memory
 * (bench/bench_scale.py), so the writer drops both when its owner says
 * the journal is idle (journal_idle()), closes the segment, and asks
 * glibc to hand the freed pages back (they sit in the writer threads'
 * malloc arenas, between other stores' allocations, where free() alone
 * does not trim).
 */
int
journal_writer_cctx(struct journal *j)
{
	if (j->cctx != NULL)
		return 0;
	if ((j->cctx = ZSTD_createCCtx()) == NULL)
		return -ENOMEM;
	ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_compressionLevel,
	    j->opts.zstd_level);
	ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_checksumFlag, 0);
	return 0;
}

/* Makes sure a segment with room is open; rolls to a new one if full. */
int
journal_ensure_segment(struct journal *j)
{
	char path[4096];
	uint8_t hdr[SEG_HDR_SIZE];
	int fd, r;

	if (j->fd < 0 && j->idle_closed) {
		/* The newest segment, closed while idle: append to it again
		 * (retention never drops the newest). */
		pthread_mutex_lock(&j->lock);
		seg_path(path, sizeof(path), j->dir, j->segs[j->nsegs - 1]);
		pthread_mutex_unlock(&j->lock);
		if ((fd = j->fo->open(j->fo->ctx, path, O_RDWR, 0)) < 0)
			return -errno;
		j->fd = fd;
		j->idle_closed = false;
	}
	if (j->fd >= 0 && (j->seg_size < j->opts.segment_bytes ||
	    j->seg_size == SEG_HDR_SIZE))
		return 0;
	if (j->fd >= 0) {
		/* The full segment's last records must be durable too. */
		if (j->fo->fdatasync(j->fo->ctx, j->fd) < 0)
			return -errno;
		j->fo->close(j->fo->ctx, j->fd);
		j->fd = -1;
	}
	seg_path(path, sizeof(path), j->dir, j->next_lsn);
	fd = j->fo->open(j->fo->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -errno;
	seg_header_encode(hdr, j->next_lsn, now_us());
	if ((r = fileops_pwrite_all(j->fo, fd, hdr, sizeof(hdr), 0)) < 0) {
		j->fo->close(j->fo->ctx, fd);
		return r;
	}
	j->fd = fd;
	j->seg_size = SEG_HDR_SIZE;
	j->dir_dirty = true;
	pthread_mutex_lock(&j->lock);
	if (j->nsegs == 0 || j->segs[j->nsegs - 1] != j->next_lsn) {
		j->segs = xreallocarray(j->segs, j->nsegs + 1, sizeof(*j->segs));
		j->segs[j->nsegs++] = j->next_lsn;
	}
	pthread_mutex_unlock(&j->lock);
	return 0;
}

/* Compresses and writes body bytes (or, with end, the frame's end). */
static int
body_compress(struct journal *j, const void *p, size_t n, bool end)
{
	ZSTD_inBuffer in = { p, n, 0 };
	size_t cap = ZSTD_CStreamOutSize(), rem;
	int r;

	if (buf_reserve(&j->out, cap) < 0)
		return -ENOMEM;
	do {
		ZSTD_outBuffer o = { j->out.s, cap, 0 };

		rem = ZSTD_compressStream2(j->cctx, &o, &in,
		    end ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(rem))
			return -EIO;
		if (o.pos > 0) {
			r = fileops_pwrite_all(j->fo, j->fd, o.dst, o.pos,
			    (off_t)j->seg_size);
			if (r < 0)
				return r;
			j->body_crc = crc32c_update(j->body_crc, o.dst, o.pos);
			j->seg_size += o.pos;
			j->body_out += o.pos;
		}
	} while (in.pos < in.size || (end && rem != 0));
	return 0;
}

/*
 * A command record whose text is the op's head, its file, its tail:
 * streamed like a body (header last), the file read 64 KB at a time.
 * A short file cuts the record and fails only this op.
 */
int
journal_stream_file(struct journal *j, struct jop *op)
{
	struct journal_record rec;
	uint8_t hdr[REC_HDR_SIZE];
	uint64_t raw = op->data.len + op->size, off = 0;
	char *chunk;
	ssize_t n = 0;
	int r;

	if ((r = journal_ensure_segment(j)) < 0 || (r = journal_writer_cctx(j)) < 0)
		return r;
	j->in_body = true;
	j->body_start = j->seg_size;
	j->seg_size += REC_HDR_SIZE;
	j->body_out = 0;
	j->body_crc = 0;
	ZSTD_CCtx_reset(j->cctx, ZSTD_reset_session_only);
	ZSTD_CCtx_setPledgedSrcSize(j->cctx, raw);
	chunk = xmalloc(64 << 10);
	r = body_compress(j, op->data.s, op->head_len, false);
	while (r == 0 && off < op->size && (n = pread(op->fd, chunk,
	    op->size - off < (64 << 10) ? op->size - off : (64 << 10),
	    (off_t)off)) > 0) {
		off += (uint64_t)n;
		r = body_compress(j, chunk, (size_t)n, false);
	}
	free(chunk);
	if (r == 0 && off == op->size)
		r = body_compress(j, op->data.s + op->head_len,
		    op->data.len - op->head_len, true);
	if (r < 0)
		return r;
	if (off != op->size || raw > UINT32_MAX || j->body_out > UINT32_MAX) {
		op->err = off != op->size ? -EIO : -EFBIG;
		return journal_stream_cut(j);
	}
	memset(&rec, 0, sizeof(rec));
	rec.lsn = j->next_lsn;
	rec.time_us = op->time_us;
	rec.type = op->type;
	rec.payload_len = (uint32_t)j->body_out;
	rec.raw_len = (uint32_t)raw;
	rec_header_encode(hdr, &rec, j->body_crc);
	if ((r = fileops_pwrite_all(j->fo, j->fd, hdr, sizeof(hdr),
	    (off_t)j->body_start)) < 0)
		return r;
	j->in_body = false;
	op->lsn = j->next_lsn++;
	return 0;
}

/* Drops a body being written: cut the segment back to where it began. */
int
journal_stream_cut(struct journal *j)
{
	j->in_body = false;
	if (j->fd >= 0 && j->seg_size != j->body_start) {
		if (j->fo->ftruncate(j->fo->ctx, j->fd, (off_t)j->body_start) < 0)
			return -errno;
		j->seg_size = j->body_start;
	}
	return 0;
}

int
journal_stream_begin(struct journal *j, struct jop *op)
{
	int r;

	if (j->in_body && (r = journal_stream_cut(j)) < 0)
		return r;
	if (op->err) {
		/* A bad GUID: swallow the data, fail the end. */
		j->in_body = true;
		j->body_err = op->err;
		j->body_start = j->seg_size;
		return 0;
	}
	if ((r = journal_ensure_segment(j)) < 0 || (r = journal_writer_cctx(j)) < 0)
		return r;
	j->in_body = true;
	j->body_err = 0;
	j->body_start = j->seg_size;
	/* The header slot stays unwritten (zero) until the body is whole. */
	j->seg_size += REC_HDR_SIZE;
	j->body_in = j->body_out = 0;
	j->body_size = op->size;
	j->body_crc = 0;
	memcpy(j->body_guid, op->guid, 20);
	ZSTD_CCtx_reset(j->cctx, ZSTD_reset_session_only);
	ZSTD_CCtx_setPledgedSrcSize(j->cctx, op->size);
	if (EVP_DigestInit_ex(j->sha, EVP_sha1(), NULL) != 1)
		return -ENOMEM;
	return 0;
}

int
journal_stream_data(struct journal *j, struct jop *op)
{
	if (!j->in_body || j->body_err)
		return 0;
	if (op->err || j->body_in + op->data.len > j->body_size) {
		j->body_err = -EBADMSG;
		return 0;
	}
	EVP_DigestUpdate(j->sha, op->data.s, op->data.len);
	j->body_in += op->data.len;
	return body_compress(j, op->data.s, op->data.len, false);
}

/* Returns a write error (sticky), or sets op->err for a bad body. */
int
journal_stream_end(struct journal *j, struct jop *op)
{
	struct journal_record rec;
	uint8_t hdr[REC_HDR_SIZE], digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	int r;

	if (!j->in_body) {
		op->err = -EINVAL;
		return 0;
	}
	if (!j->body_err && j->body_in != j->body_size)
		j->body_err = -EBADMSG;
	if (!j->body_err) {
		EVP_DigestFinal_ex(j->sha, digest, &dlen);
		if (dlen != 20 || memcmp(digest, j->body_guid, 20) != 0)
			j->body_err = -EBADMSG;
	}
	if (!j->body_err && (r = body_compress(j, NULL, 0, true)) < 0)
		return r;
	if (!j->body_err && j->body_out > UINT32_MAX)
		j->body_err = -EFBIG;
	if (j->body_err) {
		op->err = j->body_err;
		return journal_stream_cut(j);
	}
	memset(&rec, 0, sizeof(rec));
	rec.lsn = j->next_lsn;
	rec.time_us = op->time_us;
	rec.type = JOURNAL_BODY;
	rec.payload_len = (uint32_t)j->body_out;
	rec.raw_len = (uint32_t)j->body_size;
	memcpy(rec.guid, j->body_guid, 20);
	rec_header_encode(hdr, &rec, j->body_crc);
	r = fileops_pwrite_all(j->fo, j->fd, hdr, sizeof(hdr),
	    (off_t)j->body_start);
	if (r < 0)
		return r;
	j->in_body = false;
	op->lsn = j->next_lsn++;
	return 0;
}

/*
 * A body that waited in a file while another streamed: begun, fed 64 KB
 * at a time and ended as if it had streamed, so it is checked (size,
 * SHA-1 against its GUID) the same way.
 */
int
journal_stream_body_file(struct journal *j, struct jop *op)
{
	struct jop piece;
	uint64_t off = 0;
	ssize_t n;
	int r;

	if ((r = journal_stream_begin(j, op)) < 0)
		return r;
	memset(&piece, 0, sizeof(piece));
	piece.fd = -1;
	buf_init(&piece.data, 0);
	while (off < op->size) {
		buf_reset(&piece.data);
		if (buf_reserve(&piece.data, 64 << 10) < 0) {
			buf_free(&piece.data);
			return -ENOMEM;
		}
		n = pread(op->fd, piece.data.s, op->size - off < (64 << 10) ?
		    (size_t)(op->size - off) : (64 << 10), (off_t)off);
		if (n <= 0) {
			buf_free(&piece.data);
			op->err = -EIO;
			return journal_stream_cut(j);
		}
		piece.data.len = (size_t)n;
		off += (uint64_t)n;
		if ((r = journal_stream_data(j, &piece)) < 0) {
			buf_free(&piece.data);
			return r;
		}
	}
	buf_free(&piece.data);
	return journal_stream_end(j, op);
}
