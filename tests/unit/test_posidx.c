/*
 * test_posidx.c -- the journal position index the replica links use to
 * find old bodies: every body of a journal of many segments is found
 * and read through it, in order and out of order, each segment is read
 * once when bodies are asked for in order (the quadratic replay of a
 * big mailbox read a segment from its start for every body), and its
 * memory stays within its bound.
 */
#include "autoconf.h"

#include "storage/posidx.h"
#include "storage/segment.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

#define NBODIES 3000
#define NCMDS 1000

static void
make_body(struct buf *b, size_t k)
{
	size_t len = 200 + (k * 7919) % 3000, i;
	uint32_t x = (uint32_t)k * 2654435761u + 1;

	buf_reset(b);
	buf_printf(b, "Subject: %zu\r\n\r\n", k);
	for (i = b->len; i < len; i++)
	{
		x = x * 1103515245u + 12345u;	/* little to compress */
		buf_putc(b, (char)('a' + (x >> 16) % 26));
	}
}

/* Reads the body at lsn through the index's hint; its length or -1. */
static long
read_via(struct posidx *p, const char *dir, uint64_t lsn, uint64_t *hint_gap)
{
	uint64_t seg = 0, off = 0;
	struct journal_body_stream *bs;
	struct journal_record rec;
	struct buf out = BUF_INIT;
	char err[256];
	ssize_t n;
	long len;

	if (posidx_find(p, lsn, &seg, &off, err, sizeof(err)) < 0) {
		fprintf(stderr, "posidx_find %llu: %s\n",
		    (unsigned long long)lsn, err);
		return -1;
	}
	bs = journal_body_stream_open_at(dir, NULL, lsn, seg, off, &rec, err,
	    sizeof(err));
	if (bs == NULL) {
		fprintf(stderr, "open_at %llu: %s\n", (unsigned long long)lsn,
		    err);
		return -1;
	}
	if (rec.lsn != lsn || rec.segment != seg || rec.offset < off) {
		journal_body_stream_free(&bs);
		return -1;
	}
	*hint_gap = rec.offset - off;
	while ((n = journal_body_stream_read(bs, &out, 65536)) > 0)
		;
	len = n < 0 ? -1 : (long)out.len;
	journal_body_stream_free(&bs);
	buf_free(&out);
	return len;
}

static void
finds_every_body_reading_each_segment_once(void)
{
	char *dir = make_tmpdir(), err[256], guid[41];
	struct journal_opts o = { .segment_bytes = 256 * 1024 };
	struct journal *j = NULL;
	static struct acks a;
	static uint64_t lsn[NBODIES];
	static long blen[NBODIES];
	struct journal_reader *r;
	struct journal_record rec;
	struct posidx *p;
	struct buf b = BUF_INIT;
	uint64_t *segs = NULL, gap, maxgap = 0, nrec = 0;
	size_t nsegs = 0, k, nb = 0, bad = 0;

	test_assert_int(journal_open(dir, &o, &j, err, sizeof(err)), 0);
	for (k = 0; k < NBODIES; k++) {
		struct journal_body *jb;

		if (k % 3 == 0) {
			make_payload(&b, k);
			journal_append(j, JOURNAL_COMMAND, b.s, b.len, ack_cb,
			    &a);
		}
		make_body(&b, k);
		sha1_hex(b.s, b.len, guid);
		jb = journal_body_begin(j, guid, b.len);
		journal_body_write(jb, b.s, b.len);
		journal_body_end(jb, ack_cb, &a);
		blen[k] = (long)b.len;
	}
	test_assert_int(wait_acks(j, &a, NBODIES + NCMDS), 0);
	journal_close(&j);
	test_assert_int(seg_list(dir, &segs, &nsegs), 0);
	test_assert(nsegs > 2 * POSIDX_SEGS);
	free(segs);

	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	test_assert(r != NULL);
	while (r != NULL && journal_reader_next(r, &rec, NULL) == 1) {
		nrec++;
		if (rec.type == JOURNAL_BODY && nb < NBODIES)
			lsn[nb++] = rec.lsn;
	}
	journal_reader_free(&r);
	test_assert_int(nb, NBODIES);

	/* In order, as replay goes: every segment read once in all. */
	p = posidx_new(dir, NULL);
	for (k = 0; k < nb; k++) {
		if (read_via(p, dir, lsn[k], &gap) != blen[k])
			bad++;
		if (gap > maxgap)
			maxgap = gap;
	}
	test_assert_int(bad, 0);
	test_assert(posidx_records_read(p) <= nrec);
	test_assert(maxgap < POSIDX_STRIDE + 4096);
	/* 256 KB segments: a few checkpoints each, 4 segments. */
	test_assert(posidx_bytes(p) <= 8192);
	/* Asked again: nothing more is read for the segments it holds. */
	{
		uint64_t before = posidx_records_read(p);

		for (k = nb - 50; k < nb; k++)
			read_via(p, dir, lsn[k], &gap);
		test_assert(posidx_records_read(p) == before);
	}
	/* Out of order (newest first, then strided): still right. */
	for (k = nb; k > 0; k--)
		if (read_via(p, dir, lsn[k - 1], &gap) != blen[k - 1])
			bad++;
	for (k = 0; k < nb; k++) {
		size_t i = (k * 1237) % nb;

		if (read_via(p, dir, lsn[i], &gap) != blen[i])
			bad++;
	}
	test_assert_int(bad, 0);
	/* A command's LSN is a record too; one past the end is not. */
	{
		uint64_t seg, off;

		test_assert_int(posidx_find(p, nrec + 1, &seg, &off, err,
		    sizeof(err)), -ENOENT);
	}
	posidx_free(&p);
	buf_free(&b);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(finds_every_body_reading_each_segment_once))
