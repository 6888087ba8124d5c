/*
 * journal_reader.c -- reading a journal's records in LSN order.
 *
 * A reader works on the directory alone (it needs no open journal), so
 * the offline tool, recovery of the shadow and the replica links share
 * it.  It verifies every record's checksum before returning it, and
 * never returns a record past upto: a live reader passes the journal's
 * durable LSN, so a record still being written is never seen.  At the
 * end of the newest segment it looks for newer segments again, so a
 * reader can follow a growing journal.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pthread.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "lib/xmalloc.h"
#include "storage/journal.h"
#include "storage/segment.h"

struct journal_reader {
	char *dir;
	const struct fileops *fo;
	uint64_t *segs;
	size_t nsegs;
	size_t idx;		/* current segment */
	int fd;
	bool trimmed;		/* fd closed by trim: reopen at off */
	bool resumed;		/* went on past a segment dropped meanwhile */
	uint64_t off;		/* next record's offset */
	uint64_t from, upto;
	size_t max_text;	/* 0, or leave command texts over it unread */
	uint64_t last;		/* LSN of the last record seen */
	uint64_t torn_seg, torn_off, torn_bytes;	/* a torn tail seen */
	const char *torn_why;
	ZSTD_DCtx *dctx;
	struct buf payload;
	char errstr[512];
};

static int
rfail(struct journal_reader *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
rfail(struct journal_reader *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->errstr, sizeof(r->errstr), fmt, ap);
	va_end(ap);
	return err;
}

/*
 * Making a zstd decompression context costs more than decoding a small
 * message (a link opens a body stream, with its own reader, per message
 * it sends), so each thread keeps one spare: a reader freed or trimmed
 * leaves its context there and the next reader made on that thread
 * takes it.  The key's destructor frees it when the thread ends.
 */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void
spare_destroy(void *p)
{
	ZSTD_freeDCtx(p);
}

static void
spare_init(void)
{
	if (pthread_key_create(&spare_key, spare_destroy) != 0)
		abort();
}

static void
dctx_put(ZSTD_DCtx *d)
{
	if (d == NULL)
		return;
	pthread_once(&spare_once, spare_init);
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	if (pthread_getspecific(spare_key) == NULL &&
	    pthread_setspecific(spare_key, d) == 0)
		return;
	ZSTD_freeDCtx(d);
}

/* The decompression context, taken when first needed (or again after
 * journal_reader_trim()).  Callers reset it before each frame. */
static ZSTD_DCtx *
dctx(struct journal_reader *r)
{
	if (r->dctx != NULL)
		return r->dctx;
	pthread_once(&spare_once, spare_init);
	r->dctx = pthread_getspecific(spare_key);
	if (r->dctx != NULL)
		pthread_setspecific(spare_key, NULL);
	else
		r->dctx = ZSTD_createDCtx();
	return r->dctx;
}

static int
open_segment(struct journal_reader *r)
{
	char path[4096];
	uint8_t sh[SEG_HDR_SIZE];
	uint64_t first;
	ssize_t n;

	seg_path(path, sizeof(path), r->dir, r->segs[r->idx]);
	r->fd = r->fo->open(r->fo->ctx, path, O_RDONLY, 0);
	if (r->fd < 0)
		return rfail(r, -errno, "%s: %s", path, strerror(errno));
	n = fileops_pread_all(r->fo, r->fd, sh, sizeof(sh), 0);
	if (n != SEG_HDR_SIZE || seg_header_decode(sh, &first) < 0 ||
	    first != r->segs[r->idx]) {
		/* No descriptor is kept on a segment that cannot be read. */
		r->fo->close(r->fo->ctx, r->fd);
		r->fd = -1;
		if (n >= 0 && n < SEG_HDR_SIZE)
			return rfail(r, -EAGAIN, "%s: segment header "
			    "incomplete", path);
		return rfail(r, -EBADMSG, "%s: bad segment header", path);
	}
	if (!r->trimmed)
		r->off = SEG_HDR_SIZE;
	r->trimmed = false;
	return 0;
}

static void
close_segment(struct journal_reader *r)
{
	if (r->fd >= 0)
		r->fo->close(r->fo->ctx, r->fd);
	r->fd = -1;
	r->trimmed = false;
}

struct journal_reader *
journal_reader_new(const char *dir, const struct fileops *fops, uint64_t from,
    uint64_t upto, char *err, size_t err_len)
{
	struct journal_reader *r = xcalloc(1, sizeof(*r));
	int e;

	r->dir = xstrdup(dir);
	r->fo = fops ? fops : &fileops_posix;
	r->from = from;
	r->upto = upto;
	r->fd = -1;
	buf_init(&r->payload, 0);
	if ((e = seg_list(dir, &r->segs, &r->nsegs)) < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(-e));
		journal_reader_free(&r);
		return NULL;
	}
	/* Start in the newest segment whose first LSN is <= from. */
	while (r->idx + 1 < r->nsegs && r->segs[r->idx + 1] <= from)
		r->idx++;
	return r;
}

void
journal_reader_free(struct journal_reader **rp)
{
	struct journal_reader *r = *rp;

	if (r == NULL)
		return;
	close_segment(r);
	dctx_put(r->dctx);
	buf_free(&r->payload);
	free(r->segs);
	free(r->dir);
	free(r);
	*rp = NULL;
}

void
journal_reader_set_upto(struct journal_reader *r, uint64_t upto)
{
	r->upto = upto;
}

void
journal_reader_set_max_text(struct journal_reader *r, size_t max)
{
	r->max_text = max;
}

const char *
journal_reader_errstr(const struct journal_reader *r)
{
	return r->errstr;
}

/* Past the newest known segment: are there newer ones now? */
static bool
more_segments(struct journal_reader *r)
{
	uint64_t *segs, cur = r->segs[r->idx];
	size_t n, i;

	if (seg_list(r->dir, &segs, &n) < 0)
		return false;
	for (i = 0; i < n && segs[i] <= cur; i++)
		;
	if (i == n) {
		free(segs);
		return false;
	}
	free(r->segs);
	r->segs = segs;
	r->nsegs = n;
	r->idx = i - 1;		/* the caller advances */
	return true;
}

/*
 * The writer starts a segment by creating its file, then writing its
 * header; if that write fails (a full disk), journal_recover() removes
 * the file and the writer creates it again, under the same name, on
 * its next append.  So the newest segment known may have no header yet,
 * or be gone for a while: it is not there yet (true), not damage.
 */
static bool
not_there_yet(const struct journal_reader *r, int e)
{
	return (e == -EAGAIN || e == -ENOENT) && r->idx + 1 == r->nsegs;
}

/*
 * Past the end of the current segment (final: a newer one exists), into
 * the next.  Returns 1, or 0 when the next is not there yet: then the
 * reader stays at this end, and one gone is forgotten (listed again
 * once it comes back).
 */
static int
next_segment(struct journal_reader *r)
{
	int fd = r->fd, e;
	uint64_t off = r->off;

	r->fd = -1;
	r->idx++;
	if ((e = open_segment(r)) == 0) {
		if (fd >= 0)
			r->fo->close(r->fo->ctx, fd);
		return 1;
	}
	if (!not_there_yet(r, e)) {
		if (fd >= 0)
			r->fo->close(r->fo->ctx, fd);
		return e;
	}
	close_segment(r);
	if (e == -ENOENT)
		r->nsegs--;
	r->idx--;
	r->fd = fd;
	r->off = off;
	return 0;
}

void
journal_reader_trim(struct journal_reader *r)
{
	dctx_put(r->dctx);
	r->dctx = NULL;
	buf_free(&r->payload);
	/* The segment too: an idle store holds no descriptor on it.  The
	 * next read opens it again and goes on from the same offset. */
	if (r->fd >= 0) {
		close_segment(r);
		r->trimmed = true;
	}
}

/*
 * The record's text.  The output grows as the frame yields it (from
 * 64 KB, doubling, up to raw_len): a damaged header that passed its
 * checksum (a forged one, as the fuzzer makes) cannot make the reader
 * allocate the 4 GB a raw_len can claim before a byte decodes.
 */
static int
decompress(struct journal_reader *r, const struct journal_record *rec,
    struct buf *raw)
{
	ZSTD_inBuffer in;
	size_t want, ret = 1;
	ssize_t n;

	buf_reset(&r->payload);
	if (buf_reserve(&r->payload, rec->payload_len) < 0)
		return rfail(r, -EFBIG, "record %llu too large",
		    (unsigned long long)rec->lsn);
	n = fileops_pread_all(r->fo, r->fd, r->payload.s, rec->payload_len,
	    (off_t)(rec->offset + REC_HDR_SIZE));
	if (n < 0)
		return rfail(r, (int)n, "read: %s", strerror((int)-n));
	if ((size_t)n != rec->payload_len)
		return rfail(r, -EBADMSG, "record %llu cut short",
		    (unsigned long long)rec->lsn);
	if (dctx(r) == NULL)
		return rfail(r, -ENOMEM, "no memory for zstd");
	ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
	in.src = r->payload.s;
	in.size = rec->payload_len;
	in.pos = 0;
	buf_reset(raw);
	want = rec->raw_len < (64 << 10) ? rec->raw_len : (64 << 10);
	for (;;) {
		ZSTD_outBuffer out;

		if (raw->len == want)	/* full: grow; past raw_len by one
					 * byte only, to see it overlong */
			want = want == rec->raw_len ? want + 1 :
			    want > rec->raw_len / 2 ? rec->raw_len : want * 2;
		if (buf_reserve(raw, want - raw->len) < 0)
			return rfail(r, -EFBIG, "record %llu too large",
			    (unsigned long long)rec->lsn);
		out.dst = raw->s;
		out.size = want;
		out.pos = raw->len;
		ret = ZSTD_decompressStream(r->dctx, &out, &in);
		raw->len = out.pos;
		if (ZSTD_isError(ret) || ret == 0 || raw->len > rec->raw_len ||
		    (raw->len < want && in.pos == in.size))
			break;		/* done, damaged, or cut short */
	}
	if (ZSTD_isError(ret) || ret != 0 || in.pos != in.size ||
	    raw->len != rec->raw_len)
		return rfail(r, -EBADMSG, "record %llu does not decompress to "
		    "its %u bytes", (unsigned long long)rec->lsn, rec->raw_len);
	raw->s[raw->len] = '\0';
	return 0;
}

int
journal_reader_next(struct journal_reader *r, struct journal_record *rec,
    struct buf *raw)
{
	uint64_t cur = 0;	/* the segment whose end was just relisted */
	bool recheck = false;	/* a torn record followed by a valid one */

	for (;;) {
		struct stat sb;
		const char *why = NULL;
		int e;

		if (r->nsegs == 0) {
			/* An empty journal: wait for its first segment. */
			free(r->segs);
			if (seg_list(r->dir, &r->segs, &r->nsegs) < 0 ||
			    r->nsegs == 0)
				return 0;
			r->idx = 0;
		}
		if (r->fd < 0 && (e = open_segment(r)) < 0) {
			if (e == -ENOENT && r->trimmed) {
				/*
				 * Closed while idle and dropped meanwhile:
				 * retention drops only what every replica
				 * has, so this reader had read it to its end.
				 * Go on in the next segment; the LSN check
				 * below says if anything was missed.
				 */
				r->trimmed = false;
				r->resumed = true;
				if (!more_segments(r))
					return e;
				r->idx++;
				continue;
			}
			if (!not_there_yet(r, e))
				return e;
			/*
			 * A reader new at the newest segment, not there yet:
			 * what it wants may yet go into the one before, if
			 * this one is removed; read that one from its start.
			 */
			close_segment(r);
			if (r->idx == 0) {
				if (e == -ENOENT)
					r->nsegs = 0;	/* list again */
				return 0;
			}
			r->idx--;
			continue;
		}
		if (fstat(r->fd, &sb) < 0)
			return rfail(r, -errno, "stat: %s", strerror(errno));
		e = seg_check_record(r->fo, r->fd, r->off, (uint64_t)sb.st_size,
		    rec, &why);
		if (e == SEG_RECORD_OK) {
			if (r->upto && rec->lsn > r->upto)
				return 0;
			if ((r->last && rec->lsn != r->last + 1) ||
			    (!r->last && r->resumed && rec->lsn > r->from))
				return rfail(r, -EBADMSG, "segment %016llx "
				    "offset %llu: LSN %llu after %llu",
				    (unsigned long long)r->segs[r->idx],
				    (unsigned long long)r->off,
				    (unsigned long long)rec->lsn,
				    (unsigned long long)r->last);
			rec->segment = r->segs[r->idx];
			r->off += REC_HDR_SIZE + (uint64_t)rec->payload_len;
			r->last = rec->lsn;
			if (rec->lsn < r->from)
				continue;
			if (rec->type != JOURNAL_BODY && raw != NULL &&
			    r->max_text && rec->raw_len > r->max_text) {
				/* Too big to hold: the caller streams it. */
				buf_reset(raw);
				return 1;
			}
			if (rec->type != JOURNAL_BODY && raw != NULL &&
			    (e = decompress(r, rec, raw)) < 0)
				return e;
			return 1;
		}
		if (e != SEG_END && e != SEG_TORN)
			return rfail(r, e, "read: %s", strerror(-e));
		if (r->idx + 1 >= r->nsegs && (cur = r->segs[r->idx],
		    !more_segments(r))) {
			/*
			 * The end of the newest segment.  A torn record here
			 * may be one still being written -- unless a valid
			 * record follows it (corruption), or records up to
			 * upto were promised durable and this is one.  But
			 * the writer may have cut a body being written here
			 * and written records in its place since it was
			 * read: then one is found following.  Read there once
			 * more before calling it damage.
			 */
			if (e == SEG_TORN && !recheck &&
			    seg_valid_record_follows(r->fo, r->fd, r->off,
			    (uint64_t)sb.st_size)) {
				recheck = true;
				continue;
			}
			if (e == SEG_TORN && ((recheck &&
			    seg_valid_record_follows(r->fo, r->fd, r->off,
			    (uint64_t)sb.st_size)) || (r->upto &&
			    r->last < r->upto)))
				return rfail(r, -EBADMSG, "segment %016llx "
				    "offset %llu: %s",
				    (unsigned long long)r->segs[r->idx],
				    (unsigned long long)r->off, why);
			if (e == SEG_TORN) {
				r->torn_seg = r->segs[r->idx];
				r->torn_off = r->off;
				r->torn_bytes = (uint64_t)sb.st_size - r->off;
				r->torn_why = why;
			}
			return 0;
		}
		if (cur != 0 && r->idx < r->nsegs && r->segs[r->idx] == cur) {
			/*
			 * A newer segment appeared after this one's end was
			 * read: the writer may have finished the record seen
			 * unfinished, or appended more, before it rolled (it
			 * starts a segment only once the last is whole and
			 * durable).  Read this end again, now final: a torn
			 * record is damage, and nothing is skipped.
			 */
			cur = 0;
			continue;
		}
		if (e == SEG_TORN)
			return rfail(r, -EBADMSG, "segment %016llx offset %llu: "
			    "%s", (unsigned long long)r->segs[r->idx],
			    (unsigned long long)r->off, why);
		if ((e = next_segment(r)) <= 0)
			return e;
		cur = 0;
	}
}

int
journal_reader_body(struct journal_reader *r, const struct journal_record *rec,
    int (*sink)(void *arg, const void *p, size_t n), void *arg)
{
	uint8_t in[65536], digest[EVP_MAX_MD_SIZE];
	size_t outcap = ZSTD_DStreamOutSize();
	char *out = xmalloc(outcap);
	uint64_t done = 0, total = 0;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	unsigned dlen = 0;
	size_t ret = 1;
	int e = 0;

	if (r->fd < 0 && r->trimmed && rec->segment == r->segs[r->idx] &&
	    (e = open_segment(r)) < 0)
		goto out;
	if (rec->type != JOURNAL_BODY || r->fd < 0 ||
	    rec->segment != r->segs[r->idx]) {
		e = rfail(r, -EINVAL, "not the current body record");
		goto out;
	}
	if (dctx(r) == NULL) {
		e = rfail(r, -ENOMEM, "no memory for zstd");
		goto out;
	}
	ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
	EVP_DigestInit_ex(sha, EVP_sha1(), NULL);
	while (done < rec->payload_len) {
		size_t k = sizeof(in);
		ssize_t n;
		ZSTD_inBuffer ib;

		if (k > rec->payload_len - done)
			k = (size_t)(rec->payload_len - done);
		n = fileops_pread_all(r->fo, r->fd, in, k,
		    (off_t)(rec->offset + REC_HDR_SIZE + done));
		if (n < 0 || (size_t)n != k) {
			e = rfail(r, n < 0 ? (int)n : -EBADMSG,
			    "body %llu: read failed",
			    (unsigned long long)rec->lsn);
			goto out;
		}
		done += k;
		ib = (ZSTD_inBuffer){ in, k, 0 };
		while (ib.pos < ib.size) {
			ZSTD_outBuffer ob = { out, outcap, 0 };

			ret = ZSTD_decompressStream(r->dctx, &ob, &ib);
			if (ZSTD_isError(ret)) {
				e = rfail(r, -EBADMSG, "body %llu: %s",
				    (unsigned long long)rec->lsn,
				    ZSTD_getErrorName(ret));
				goto out;
			}
			if (ob.pos) {
				total += ob.pos;
				EVP_DigestUpdate(sha, out, ob.pos);
				if ((e = sink(arg, out, ob.pos)) != 0)
					goto out;
			}
		}
	}
	EVP_DigestFinal_ex(sha, digest, &dlen);
	if (ret != 0 || total != rec->raw_len || dlen != 20 ||
	    memcmp(digest, rec->guid, 20) != 0)
		e = rfail(r, -EBADMSG, "body %llu does not match its GUID",
		    (unsigned long long)rec->lsn);
out:
	EVP_MD_CTX_free(sha);
	free(out);
	return e;
}

int
journal_reader_torn_tail(const struct journal_reader *r, uint64_t *segment,
    uint64_t *offset, uint64_t *bytes, const char **why)
{
	if (r->torn_why == NULL)
		return 0;
	*segment = r->torn_seg;
	*offset = r->torn_off;
	*bytes = r->torn_bytes;
	*why = r->torn_why;
	return 1;
}

/* ---- a body (or a command's text), piece by piece --------------------- */

struct journal_body_stream {
	struct journal_reader *r;
	struct journal_record rec;
	uint8_t type;		/* of the record streamed */
	uint64_t done_in;	/* payload bytes read */
	uint64_t total_out;	/* decompressed bytes produced */
	size_t in_len, in_pos;
	EVP_MD_CTX *sha;
	bool frame_done;	/* zstd said the frame is complete */
	bool finished;
	uint8_t in[65536];	/* last: not cleared when opened */
};

struct journal_body_stream *
journal_body_stream_open(const char *dir, const struct fileops *fops,
    uint64_t lsn, struct journal_record *rec, char *err, size_t err_len)
{
	return journal_body_stream_open_at(dir, fops, lsn, 0, 0, rec, err,
	    err_len);
}

/* Opens the record at lsn, of type type, for journal_body_stream_read(). */
static struct journal_body_stream *
stream_open(const char *dir, const struct fileops *fops, uint8_t type,
    uint64_t lsn, uint64_t segment, uint64_t offset,
    struct journal_record *rec, char *err, size_t err_len)
{
	struct journal_body_stream *bs = xmalloc(sizeof(*bs));
	int e;

	memset(bs, 0, offsetof(struct journal_body_stream, in));
	bs->type = type;
	bs->r = journal_reader_new(dir, fops, lsn, lsn, err, err_len);
	if (bs->r == NULL) {
		free(bs);
		return NULL;
	}
	/* Jump straight to the record when told where it is. */
	if (segment != 0 && offset != 0 && bs->r->idx < bs->r->nsegs &&
	    bs->r->segs[bs->r->idx] == segment) {
		if ((e = open_segment(bs->r)) < 0) {
			snprintf(err, err_len, "%s",
			    journal_reader_errstr(bs->r));
			journal_body_stream_free(&bs);
			return NULL;
		}
		bs->r->off = offset;
	}
	if (journal_reader_next(bs->r, &bs->rec, NULL) != 1 ||
	    bs->rec.lsn != lsn || bs->rec.type != type) {
		snprintf(err, err_len, "no %s record at LSN %llu",
		    type == JOURNAL_BODY ? "body" : "command",
		    (unsigned long long)lsn);
		journal_body_stream_free(&bs);
		return NULL;
	}
	if (dctx(bs->r) == NULL) {
		snprintf(err, err_len, "no memory for zstd");
		journal_body_stream_free(&bs);
		return NULL;
	}
	ZSTD_DCtx_reset(bs->r->dctx, ZSTD_reset_session_only);
	bs->sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(bs->sha, EVP_sha1(), NULL);
	*rec = bs->rec;
	return bs;
}

struct journal_body_stream *
journal_body_stream_open_at(const char *dir, const struct fileops *fops,
    uint64_t lsn, uint64_t segment, uint64_t offset,
    struct journal_record *rec, char *err, size_t err_len)
{
	return stream_open(dir, fops, JOURNAL_BODY, lsn, segment, offset, rec,
	    err, err_len);
}

struct journal_body_stream *
journal_text_stream_open_at(const char *dir, const struct fileops *fops,
    uint64_t lsn, uint64_t segment, uint64_t offset,
    struct journal_record *rec, char *err, size_t err_len)
{
	return stream_open(dir, fops, JOURNAL_COMMAND, lsn, segment, offset,
	    rec, err, err_len);
}

ssize_t
journal_body_stream_read(struct journal_body_stream *bs, struct buf *out,
    size_t max)
{
	size_t produced = 0;

	while (produced < max && !bs->finished) {
		ZSTD_inBuffer ib;
		ZSTD_outBuffer ob;
		size_t room = max - produced, ret;

		if (bs->in_pos == bs->in_len &&
		    bs->done_in < bs->rec.payload_len) {
			size_t k = sizeof(bs->in);
			ssize_t n;

			if (k > bs->rec.payload_len - bs->done_in)
				k = (size_t)(bs->rec.payload_len - bs->done_in);
			n = fileops_pread_all(bs->r->fo, bs->r->fd, bs->in, k,
			    (off_t)(bs->rec.offset + REC_HDR_SIZE +
			    bs->done_in));
			if (n < 0)
				return n;
			if ((size_t)n != k)
				return -EBADMSG;
			bs->done_in += k;
			bs->in_len = k;
			bs->in_pos = 0;
		}
		if (buf_reserve(out, room) < 0)
			return -ENOMEM;
		ib = (ZSTD_inBuffer){ bs->in, bs->in_len, bs->in_pos };
		ob = (ZSTD_outBuffer){ out->s + out->len, room, 0 };
		ret = ZSTD_decompressStream(bs->r->dctx, &ob, &ib);
		if (ZSTD_isError(ret))
			return -EBADMSG;
		bs->in_pos = ib.pos;
		if (ret == 0)
			bs->frame_done = true;
		if (bs->type == JOURNAL_BODY)
			EVP_DigestUpdate(bs->sha, out->s + out->len, ob.pos);
		out->len += ob.pos;
		out->s[out->len] = '\0';
		produced += ob.pos;
		bs->total_out += ob.pos;
		if (ob.pos == 0 && bs->in_pos == bs->in_len &&
		    bs->done_in == bs->rec.payload_len) {
			/* All input used and nothing more comes out. */
			uint8_t d[EVP_MAX_MD_SIZE];
			unsigned dl = 0;

			EVP_DigestFinal_ex(bs->sha, d, &dl);
			bs->finished = true;
			if (!bs->frame_done || bs->total_out != bs->rec.raw_len)
				return -EBADMSG;
			/* A command has no GUID: its CRC was checked. */
			if (bs->type == JOURNAL_BODY && (dl != 20 ||
			    memcmp(d, bs->rec.guid, 20) != 0))
				return -EBADMSG;
		}
	}
	return (ssize_t)produced;
}

void
journal_body_stream_free(struct journal_body_stream **bsp)
{
	struct journal_body_stream *bs = *bsp;

	if (bs == NULL)
		return;
	journal_reader_free(&bs->r);
	EVP_MD_CTX_free(bs->sha);
	free(bs);
	*bsp = NULL;
}
