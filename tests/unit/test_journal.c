/*
 * test_journal.c -- the journal: append, read back, bodies, segments,
 * recovery of torn tails, refusal of corruption, and fault injection
 * through the file-operations layer.
 */
#include "autoconf.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "lib/crc32c.h"
#include "storage/fault.h"
#include "storage/segment.h"
#include "storage/workpool.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

/* Reads every record; checks payloads; returns the count (-1 on error). */
static long
read_all(const char *dir, uint64_t from, uint64_t *first, uint64_t *last)
{
	char err[256];
	struct journal_reader *r = journal_reader_new(dir, NULL, from, 0, err,
	    sizeof(err));
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	long n = 0;
	uint64_t prev = 0, k;
	int e;

	if (r == NULL)
		return -1;
	while ((e = journal_reader_next(r, &rec, &raw)) == 1) {
		if (prev && rec.lsn != prev + 1) {
			fprintf(stderr, "LSN %llu after %llu\n",
			    (unsigned long long)rec.lsn,
			    (unsigned long long)prev);
			n = -1;
			break;
		}
		if (n == 0 && first)
			*first = rec.lsn;
		prev = rec.lsn;
		if (rec.type == JOURNAL_COMMAND && !payload_ok(&raw, &k)) {
			fprintf(stderr, "record %llu damaged\n",
			    (unsigned long long)rec.lsn);
			n = -1;
			break;
		}
		n++;
	}
	if (e < 0) {
		fprintf(stderr, "reader: %s\n", journal_reader_errstr(r));
		n = -1;
	}
	if (last)
		*last = prev;
	buf_free(&raw);
	journal_reader_free(&r);
	return n;
}

static void
append_n(struct journal *j, struct acks *a, uint64_t k0, int n)
{
	struct buf b = BUF_INIT;
	int i;

	for (i = 0; i < n; i++) {
		make_payload(&b, k0 + (uint64_t)i);
		journal_append(j, JOURNAL_COMMAND, b.s, b.len, ack_cb, a);
	}
	buf_free(&b);
}

static void
append_read_reopen(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct acks a = { 0 };
	uint64_t first = 0, last = 0;
	size_t i;

	test_assert(j != NULL);
	if (j == NULL)
		return;
	test_assert_int(journal_durable_lsn(j), 0);
	append_n(j, &a, 1, 100);
	test_assert_int(wait_acks(j, &a, 100), 0);
	for (i = 0; i < 100; i++) {
		test_assert_int(a.err[i], 0);
		test_assert_int(a.lsn[i], i + 1);	/* in order, no gaps */
	}
	test_assert_int(journal_durable_lsn(j), 100);
	test_assert_int(read_all(dir, 1, &first, &last), 100);
	test_assert_int(first, 1);
	test_assert_int(read_all(dir, 42, &first, &last), 59);
	test_assert_int(first, 42);
	journal_close(&j);
	test_assert(j == NULL);

	j = open_j(dir, NULL);
	test_assert(j != NULL);
	test_assert_int(journal_durable_lsn(j), 100);
	memset(&a, 0, sizeof(a));
	append_n(j, &a, 101, 5);
	test_assert_int(wait_acks(j, &a, 5), 0);
	test_assert_int(a.lsn[0], 101);
	journal_close(&j);
	test_assert_int(read_all(dir, 1, NULL, &last), 105);
	test_assert_int(last, 105);
	rm_rf(dir);
	free(dir);
}

struct sink_buf {
	struct buf b;
};

static int
sink_cb(void *arg, const void *p, size_t n)
{
	return buf_append(&((struct sink_buf *)arg)->b, p, n);
}

static void
write_body(struct journal *j, const char *guid, const char *p, size_t n,
    size_t chunk, size_t declared, struct acks *a)
{
	struct journal_body *b = journal_body_begin(j, guid, declared);
	size_t off;

	for (off = 0; off < n; off += chunk)
		journal_body_write(b, p + off, n - off < chunk ? n - off : chunk);
	journal_body_end(b, ack_cb, a);
}

static void
bodies(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct acks a = { 0 };
	size_t big = (size_t)3 << 20, i;
	char *body = malloc(big), guid[41], other[41];
	struct journal_reader *r;
	struct journal_record rec;
	struct sink_buf sb = { BUF_INIT };
	struct buf raw = BUF_INIT;
	char err[256];
	int e, nbodies = 0;

	for (i = 0; i < big; i++)
		body[i] = (char)("From: a\r\nbody text\r\n"[i % 20]);
	sha1_hex(body, big, guid);
	sha1_hex("other", 5, other);
	write_body(j, guid, body, big, 65536, big, &a);		/* good */
	write_body(j, other, body, big, 65536, big, &a);	/* bad GUID */
	write_body(j, guid, body, big - 1, 65536, big, &a);	/* short */
	write_body(j, guid, body, big, 65536, big - 1, &a);	/* long */
	{
		struct journal_body *b = journal_body_begin(j, guid, big);

		journal_body_write(b, body, 1000);
		journal_body_abort(b);
	}
	write_body(j, "nothex", body, 10, 10, 10, &a);		/* bad GUID text */
	append_n(j, &a, 7, 1);
	write_body(j, guid, body, big, 1 << 20, big, &a);	/* good again */
	test_assert_int(wait_acks(j, &a, 7), 0);
	test_assert_int(a.err[0], 0);
	test_assert_int(a.lsn[0], 1);
	test_assert_int(a.err[1], -EBADMSG);
	test_assert_int(a.err[2], -EBADMSG);
	test_assert_int(a.err[3], -EBADMSG);
	test_assert_int(a.err[4], -EINVAL);
	test_assert_int(a.err[5], 0);
	test_assert_int(a.lsn[5], 2);		/* refused bodies take no LSN */
	test_assert_int(a.err[6], 0);
	test_assert_int(a.lsn[6], 3);
	test_assert_int(journal_error(j), 0);
	journal_close(&j);

	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	buf_init(&sb.b, 0);
	/* Trimmed between records (as an idle link does), it reads on. */
	journal_reader_trim(r);
	while ((e = journal_reader_next(r, &rec, &raw)) == 1) {
		journal_reader_trim(r);
		if (rec.type != JOURNAL_BODY) {
			test_assert_int(raw.len, rec.raw_len);
			continue;
		}
		nbodies++;
		buf_reset(&sb.b);
		test_assert_int(journal_reader_body(r, &rec, sink_cb, &sb), 0);
		test_assert(sb.b.len == big && memcmp(sb.b.s, body, big) == 0);
		test_assert_int(rec.raw_len, big);
		test_assert(rec.payload_len < big / 10);	/* compressed */
		{
			char hex[41];

			journal_guid_hex(rec.guid, hex);
			test_assert_str(hex, guid);
		}
	}
	test_assert_int(e, 0);
	test_assert_int(nbodies, 2);
	test_assert_int(read_all(dir, 1, NULL, NULL), 3);
	journal_reader_free(&r);
	buf_free(&sb.b);
	buf_free(&raw);
	free(body);
	rm_rf(dir);
	free(dir);
}

/*
 * The writer frees its zstd context after 2 s without work, but never in
 * the middle of a body; after that it makes a new one.
 */
/* Descriptors of this process open on a journal segment. */
static int
open_segments(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char p[300], t[4096];
	int n = 0;
	ssize_t k;

	while (d && (e = readdir(d)) != NULL) {
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		if ((k = readlink(p, t, sizeof(t) - 1)) > 4) {
			t[k] = '\0';
			n += strcmp(t + k - 4, ".seg") == 0;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* Threads of this process. */
static int
threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/*
 * journal_idle(): no-op inside a body; otherwise the segment is closed
 * and the next append reopens it and goes on in the same file.
 */
static void
idle_release(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct journal_stats st;
	struct acks a = { 0 };
	size_t n = 300000, i;
	char *body = malloc(n), guid[41];
	struct journal_body *b;

	for (i = 0; i < n; i++)
		body[i] = (char)("Subject: idle\r\nsome text\r\n"[i % 26]);
	sha1_hex(body, n, guid);
	b = journal_body_begin(j, guid, n);
	journal_body_write(b, body, n / 2);
	journal_idle(j);		/* idle, but inside a body */
	usleep(100000);
	test_assert_int(open_segments(), 1);
	journal_body_write(b, body + n / 2, n - n / 2);
	journal_body_end(b, ack_cb, &a);
	append_n(j, &a, 1, 1);
	test_assert_int(wait_acks(j, &a, 2), 0);
	journal_idle(j);		/* idle: the segment and context go */
	journal_flush(j, ack_cb, &a);
	test_assert_int(wait_acks(j, &a, 3), 0);
	test_assert_int(open_segments(), 0);
	write_body(j, guid, body, n, 65536, n, &a);
	append_n(j, &a, 2, 1);
	test_assert_int(wait_acks(j, &a, 5), 0);
	test_assert_int(open_segments(), 1);
	for (i = 0; i < 5; i++)
		test_assert_int(a.err[i], 0);
	test_assert_int(a.lsn[0], 1);
	test_assert_int(a.lsn[1], 2);
	test_assert_int(a.lsn[3], 3);
	test_assert_int(a.lsn[4], 4);
	/* Idle again, then a roll: the closed segment is left as it is. */
	journal_idle(j);
	journal_roll(j, ack_cb, &a);
	append_n(j, &a, 3, 1);
	test_assert_int(wait_acks(j, &a, 7), 0);
	test_assert_int(a.err[5], 0);
	test_assert_int(a.lsn[6], 5);
	journal_get_stats(j, &st);
	test_assert_int(st.segments, 2);
	journal_close(&j);
	test_assert_int(open_segments(), 0);
	test_assert_int(read_all(dir, 1, NULL, NULL), 5);
	free(body);
	rm_rf(dir);
	free(dir);
}

/*
 * Many journals share the writer pool: every one gets its records
 * durable, in order, while the process's threads stay at the pool's.
 */
#define NJ 48
static void
many_journals_share_the_pool(void)
{
	char *dirs[NJ];
	struct journal *js[NJ];
	static struct acks a[NJ];
	int base = threads(), k, round;
	size_t i;
	bool all;

	workpool_set_threads(2);
	for (k = 0; k < NJ; k++) {
		dirs[k] = make_tmpdir();
		js[k] = open_j(dirs[k], NULL);
		memset(&a[k], 0, sizeof(a[k]));
	}
	for (round = 0; round < 20; round++)
		for (k = 0; k < NJ; k++)
			append_n(js[k], &a[k], (uint64_t)round + 1, 1);
	for (round = 0, all = false; round < 10000 && !all; round++) {
		all = true;
		for (k = 0; k < NJ; k++) {
			journal_collect(js[k]);
			all = all && a[k].n >= 20;
		}
		if (!all)
			usleep(1000);
	}
	test_assert(all);
	test_assert(threads() <= base + 2);
	for (k = 0; k < NJ; k++) {
		for (i = 0; i < 20; i++) {
			test_assert_int(a[k].err[i], 0);
			test_assert_int(a[k].lsn[i], i + 1);
		}
		journal_close(&js[k]);
		test_assert_int(read_all(dirs[k], 1, NULL, NULL), 20);
		rm_rf(dirs[k]);
		free(dirs[k]);
	}
}

static void
segments_roll_and_drop(void)
{
	char *dir = make_tmpdir();
	struct journal_opts o = { .segment_bytes = 1024 };
	struct journal *j = open_j(dir, &o);
	struct journal_stats st;
	struct acks a = { 0 };
	uint64_t first = 0, last = 0;
	int dropped;

	append_n(j, &a, 1, 200);
	test_assert_int(wait_acks(j, &a, 200), 0);
	journal_get_stats(j, &st);
	test_assert(st.segments > 10);
	test_assert_int(st.durable_lsn, 200);
	test_assert_int(st.first_lsn, 1);
	test_assert(st.fsyncs >= 1 && st.fsyncs <= 200);
	test_assert_int(read_all(dir, 150, &first, &last), 51);
	test_assert_int(first, 150);
	dropped = journal_drop_before(j, 150);
	test_assert(dropped > 0);
	journal_get_stats(j, &st);
	test_assert(st.first_lsn > 1 && st.first_lsn <= 150);
	test_assert_int(read_all(dir, 1, &first, &last), 201 - (long)first);
	test_assert_int(last, 200);
	/* The newest segment is never dropped. */
	journal_drop_before(j, 1000);
	journal_get_stats(j, &st);
	test_assert_int(st.segments, 1);
	journal_close(&j);
	j = open_j(dir, &o);
	test_assert(j != NULL);
	memset(&a, 0, sizeof(a));
	append_n(j, &a, 201, 1);
	test_assert_int(wait_acks(j, &a, 1), 0);
	test_assert_int(a.lsn[0], 201);		/* numbering carries on */
	journal_close(&j);
	rm_rf(dir);
	free(dir);
}

/* Path of the newest segment of dir. */
static void
newest_segment(const char *dir, char *path, size_t len)
{
	uint64_t *firsts;
	size_t n;

	seg_list(dir, &firsts, &n);
	seg_path(path, len, dir, n ? firsts[n - 1] : 0);
	free(firsts);
}

static void
append_bytes(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	if (write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

static void
torn_tails_are_cut(void)
{
	static const struct {
		const char *what;
		size_t n;
	} tails[] = { { "half a header", 30 }, { "zeros", 4096 },
		{ "header and half a payload", 0 } };
	size_t t;

	for (t = 0; t < 3; t++) {
		char *dir = make_tmpdir(), path[4096];
		struct journal *j = open_j(dir, NULL);
		struct acks a = { 0 };
		struct stat before, after;
		char junk[4096];

		append_n(j, &a, 1, 10);
		wait_acks(j, &a, 10);
		journal_close(&j);
		newest_segment(dir, path, sizeof(path));
		stat(path, &before);
		if (tails[t].n == 0) {
			/* A real header whose payload never arrived. */
			char hdr[REC_HDR_SIZE];
			int fd = open(path, O_RDONLY);

			if (pread(fd, hdr, sizeof(hdr), SEG_HDR_SIZE) != REC_HDR_SIZE)
				abort();
			close(fd);
			append_bytes(path, hdr, sizeof(hdr));
			append_bytes(path, "xyz", 3);
		} else {
			memset(junk, t == 0 ? 'S' : 0, sizeof(junk));
			append_bytes(path, junk, tails[t].n);
		}
		j = open_j(dir, NULL);
		test_assert(j != NULL);
		if (j == NULL)
			continue;
		test_assert_int(journal_durable_lsn(j), 10);
		stat(path, &after);
		test_assert_int(after.st_size, before.st_size);	/* cut */
		memset(&a, 0, sizeof(a));
		append_n(j, &a, 11, 1);
		wait_acks(j, &a, 1);
		test_assert_int(a.lsn[0], 11);
		journal_close(&j);
		test_assert_int(read_all(dir, 1, NULL, NULL), 11);
		rm_rf(dir);
		free(dir);
	}
}

static void
flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	char c;

	if (pread(fd, &c, 1, off) != 1)
		abort();
	c ^= 0x40;
	if (pwrite(fd, &c, 1, off) != 1)
		abort();
	close(fd);
}

static void
corruption_is_refused_unless_repair(void)
{
	char *dir = make_tmpdir(), path[4096], err[512];
	struct journal_opts o = { .segment_bytes = 1 << 20 };
	struct journal *j = open_j(dir, &o);
	struct acks a = { 0 };
	uint64_t last = 0;
	int r;

	append_n(j, &a, 1, 20);
	wait_acks(j, &a, 20);
	journal_close(&j);
	newest_segment(dir, path, sizeof(path));
	/* Damage the third record's payload: good records follow it. */
	{
		char err2[256];
		struct journal_reader *rd = journal_reader_new(dir, NULL, 3, 0,
		    err2, sizeof(err2));
		struct journal_record rec;

		journal_reader_next(rd, &rec, NULL);
		flip_byte(path, (off_t)(rec.offset + REC_HDR_SIZE + 2));
		journal_reader_free(&rd);
	}
	r = journal_open(dir, &o, &j, err, sizeof(err));
	test_assert_int(r, -EBADMSG);
	test_assert(strstr(err, "is corrupt") && strstr(err, "checksum"));
	/* The reader refuses too. */
	test_assert_int(read_all(dir, 1, NULL, NULL), -1);
	o.repair = true;
	j = open_j(dir, &o);
	test_assert(j != NULL);
	test_assert_int(journal_durable_lsn(j), 2);
	memset(&a, 0, sizeof(a));
	append_n(j, &a, 3, 1);
	wait_acks(j, &a, 1);
	test_assert_int(a.lsn[0], 3);
	journal_close(&j);
	test_assert_int(read_all(dir, 1, NULL, &last), 3);
	rm_rf(dir);
	free(dir);

	/* Damage in an older segment is corruption even at its end. */
	dir = make_tmpdir();
	o.segment_bytes = 256;
	o.repair = false;
	j = open_j(dir, &o);
	memset(&a, 0, sizeof(a));
	append_n(j, &a, 1, 40);
	wait_acks(j, &a, 40);
	journal_close(&j);
	{
		uint64_t *firsts;
		size_t n;
		struct stat sb;

		seg_list(dir, &firsts, &n);
		test_assert(n > 2);
		seg_path(path, sizeof(path), dir, firsts[0]);
		stat(path, &sb);
		flip_byte(path, sb.st_size - 1);
		free(firsts);
	}
	test_assert_int(journal_open(dir, &o, &j, err, sizeof(err)), -EBADMSG);
	rm_rf(dir);
	free(dir);
}

/*
 * A failure at each kind of file operation: the append that hit it
 * fails, the journal refuses what follows (sticky), and a reopen finds
 * every acknowledged record intact and nothing corrupt.
 */
static void
fault_injection(void)
{
	static const struct {
		enum fault_op op;
		unsigned nth;
		int err;
		int sticky_expected;
	} plans[] = {
		{ FAULT_PWRITE, 5, EIO, 1 },
		{ FAULT_PWRITE, 5, ENOSPC, 1 },
		{ FAULT_PWRITE, 3, 0, 0 },		/* short write: retried */
		{ FAULT_FDATASYNC, 2, EIO, 1 },
		{ FAULT_FSYNC, 1, EIO, 1 },		/* dir sync after create */
		{ FAULT_OPEN, 1, EMFILE, 1 },		/* creating a segment */
	};
	size_t p;

	for (p = 0; p < sizeof(plans) / sizeof(plans[0]); p++) {
		char *dir = make_tmpdir();
		struct fault f;
		struct journal_opts o = { .fops = &f.ops };
		struct journal *j;
		struct acks a = { 0 };
		size_t i, acked = 0, failed = 0;
		long n;

		fault_init(&f, plans[p].op, plans[p].nth, plans[p].err);
		j = open_j(dir, &o);
		test_assert(j != NULL);
		if (j == NULL)
			continue;
		/* One at a time, so each append is its own batch. */
		for (i = 0; i < 10; i++) {
			append_n(j, &a, i + 1, 1);
			wait_acks(j, &a, i + 1);
		}
		for (i = 0; i < 10; i++) {
			if (a.err[i] == 0) {
				test_assert_int(a.lsn[i], acked + 1);
				test_assert(failed == 0 ||
				    !plans[p].sticky_expected);
				acked++;
			} else {
				failed++;
			}
		}
		test_assert(f.fired == 1);
		if (plans[p].sticky_expected) {
			test_assert(failed > 0);
			test_assert(journal_error(j) != 0);
			test_assert_int(a.err[9], journal_error(j));
		} else {
			test_assert_int(failed, 0);
			test_assert_int(journal_error(j), 0);
		}
		journal_close(&j);
		/* Reopen with the real operations: nothing acked is lost,
		 * nothing damaged is returned. */
		j = open_j(dir, NULL);
		test_assert(j != NULL);
		journal_close(&j);
		n = read_all(dir, 1, NULL, NULL);
		test_assert(n >= (long)acked);
		if (n < (long)acked)
			fprintf(stderr, "plan %zu: %ld records, %zu acked\n", p,
			    n, acked);
		rm_rf(dir);
		free(dir);
	}
}

/* Opening a body at a known position, and what a wrong position gives. */
static void
body_stream_at_position(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct acks a = { 0 };
	size_t len = 300000, i, k;
	char *body[2], guid[2][41], err[256];
	struct journal_record recs[2], rec;
	struct journal_reader *r;
	struct journal_body_stream *bs;
	struct buf out = BUF_INIT;
	int n = 0;

	for (k = 0; k < 2; k++) {
		body[k] = malloc(len);
		for (i = 0; i < len; i++)
			body[k][i] = (char)('a' + (i * (k + 3)) % 26);
		sha1_hex(body[k], len, guid[k]);
	}
	append_n(j, &a, 3, 1);
	write_body(j, guid[0], body[0], len, 65536, len, &a);
	append_n(j, &a, 3, 1);
	write_body(j, guid[1], body[1], len, 65536, len, &a);
	test_assert_int(wait_acks(j, &a, 4), 0);
	journal_close(&j);
	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	while (r != NULL && n < 2 && journal_reader_next(r, &rec, NULL) == 1)
		if (rec.type == JOURNAL_BODY)
			recs[n++] = rec;
	journal_reader_free(&r);
	test_assert_int(n, 2);
	for (k = 0; k < 2 && n == 2; k++) {
		bs = journal_body_stream_open_at(dir, NULL, recs[k].lsn,
		    recs[k].segment, recs[k].offset, &rec, err, sizeof(err));
		test_assert(bs != NULL);
		buf_reset(&out);
		while (bs != NULL &&
		    journal_body_stream_read(bs, &out, 65536) > 0)
			;
		test_assert(out.len == len && memcmp(out.s, body[k], len) == 0);
		journal_body_stream_free(&bs);
		/*
		 * A wrong position (another record's; inside one) never
		 * gives other bytes: refused, or this very body.
		 */
		for (i = 0; i < 2; i++) {
			uint64_t off = i == 0 ? recs[1 - k].offset :
			    recs[k].offset + 7;

			bs = journal_body_stream_open_at(dir, NULL,
			    recs[k].lsn, recs[k].segment, off, &rec, err,
			    sizeof(err));
			if (bs != NULL) {
				test_assert_int(rec.lsn, recs[k].lsn);
				buf_reset(&out);
				while (journal_body_stream_read(bs, &out,
				    65536) > 0)
					;
				test_assert(out.len == len &&
				    memcmp(out.s, body[k], len) == 0);
			}
			journal_body_stream_free(&bs);
		}
	}
	buf_free(&out);
	free(body[0]);
	free(body[1]);
	rm_rf(dir);
	free(dir);
}

/*
 * A command record over the reader's max_text comes back without its
 * text, which a text stream then yields in pieces, the same bytes; a
 * small one is read as always; a damaged one fails the stream.
 */
static void
text_stream_big_command(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct acks a = { 0 };
	size_t len = 700000, i;
	char *text = malloc(len), err[256];
	struct journal_record recs[3], rec;
	struct journal_reader *r;
	struct journal_body_stream *bs;
	struct buf raw = BUF_INIT, out = BUF_INIT;
	ssize_t got;
	int n = 0, pieces = 0;

	for (i = 0; i < len; i++)
		text[i] = (char)('A' + (i * 7 + i / 1000) % 26);
	append_n(j, &a, 5, 1);
	journal_append(j, JOURNAL_COMMAND, text, len, ack_cb, &a);
	append_n(j, &a, 6, 1);
	test_assert_int(wait_acks(j, &a, 3), 0);
	journal_close(&j);
	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	test_assert(r != NULL);
	journal_reader_set_max_text(r, 100000);
	while (r != NULL && n < 3 && journal_reader_next(r, &rec, &raw) == 1) {
		recs[n] = rec;
		/* Small ones keep their text; the big one comes empty. */
		test_assert_int(raw.len, n == 1 ? 0 : rec.raw_len);
		n++;
	}
	journal_reader_free(&r);
	test_assert_int(n, 3);
	test_assert_int(recs[1].raw_len, len);
	bs = journal_text_stream_open_at(dir, NULL, recs[1].lsn,
	    recs[1].segment, recs[1].offset, &rec, err, sizeof(err));
	test_assert(bs != NULL);
	while (bs != NULL && (got = journal_body_stream_read(bs, &out,
	    4096)) > 0) {
		test_assert(got <= 4096);
		pieces++;
	}
	test_assert(bs != NULL && got == 0);
	test_assert(out.len == len && memcmp(out.s, text, len) == 0);
	test_assert(pieces >= (int)(len / 4096));
	journal_body_stream_free(&bs);
	/* Not a command at that LSN: a body stream refuses it, and a text
	 * stream refuses a body (none here: LSN past the end). */
	test_assert(journal_body_stream_open_at(dir, NULL, recs[1].lsn, 0, 0,
	    &rec, err, sizeof(err)) == NULL);
	test_assert(journal_text_stream_open_at(dir, NULL, recs[2].lsn + 1,
	    0, 0, &rec, err, sizeof(err)) == NULL);
	buf_free(&raw);
	buf_free(&out);
	free(text);
	rm_rf(dir);
	free(dir);
}

/*
 * A full disk: ENOSPC in the middle of a body makes the journal refuse
 * (sticky); once there is room, journal_recover() cuts the half-written
 * body and appends go on from the next LSN, with nothing acknowledged
 * lost and no gap.
 */
static void
recovers_after_enospc(void)
{
	char *dir = make_tmpdir();
	struct fault f;
	struct journal_opts o = { .fops = &f.ops };
	struct journal *j;
	struct acks a = { 0 };
	size_t big = 300000, i;
	char *body = malloc(big), guid[41], err[256];
	uint64_t first = 0, last = 0, x = 42;

	for (i = 0; i < big; i++) {	/* incompressible: many writes */
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		body[i] = (char)(x >> 56);
	}
	sha1_hex(body, big, guid);
	/* Write 1 is the segment header, 2-4 three records, 5.. the body. */
	fault_init(&f, FAULT_PWRITE, 6, ENOSPC);
	f.sticky = 1;
	j = open_j(dir, &o);
	test_assert(j != NULL);
	if (j == NULL)
		return;
	for (i = 0; i < 3; i++) {
		append_n(j, &a, i + 1, 1);
		wait_acks(j, &a, i + 1);
	}
	write_body(j, guid, body, big, 65536, big, &a);
	append_n(j, &a, 4, 1);
	test_assert_int(wait_acks(j, &a, 5), 0);
	for (i = 0; i < 3; i++) {
		test_assert_int(a.err[i], 0);
		test_assert_int(a.lsn[i], i + 1);
	}
	test_assert_int(a.err[3], -ENOSPC);
	test_assert_int(a.err[4], -ENOSPC);
	test_assert_int(journal_error(j), -ENOSPC);
	test_assert_int(journal_durable_lsn(j), 3);
	/* Still full: recovery itself needs no write, the error stays
	 * only until it ran. */
	f.op = FAULT_NONE;		/* room again */
	test_assert_int(journal_recover(j, err, sizeof(err)), 0);
	test_assert_int(journal_error(j), 0);
	test_assert_int(journal_durable_lsn(j), 3);
	append_n(j, &a, 4, 2);
	write_body(j, guid, body, big, 65536, big, &a);
	test_assert_int(wait_acks(j, &a, 8), 0);
	test_assert_int(a.err[5], 0);
	test_assert_int(a.lsn[5], 4);
	test_assert_int(a.err[6], 0);
	test_assert_int(a.lsn[6], 5);
	test_assert_int(a.err[7], 0);
	test_assert_int(a.lsn[7], 6);
	journal_close(&j);
	j = open_j(dir, NULL);
	test_assert(j != NULL);
	test_assert_int(journal_durable_lsn(j), 6);
	journal_close(&j);
	test_assert_int(read_all(dir, 1, &first, &last), 6);
	test_assert_int(first, 1);
	test_assert_int(last, 6);
	free(body);
	rm_rf(dir);
	free(dir);
}

/* A roll closes a segment holding records and starts an empty one. */
static void
roll_starts_an_empty_segment(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct journal_segment *segs;
	struct acks a = { 0 };
	size_t n;

	test_assert(j != NULL);
	if (j == NULL)
		return;
	journal_roll(j, ack_cb, &a);		/* nothing yet: no roll */
	append_n(j, &a, 1, 3);
	journal_roll(j, ack_cb, &a);
	journal_roll(j, ack_cb, &a);		/* already empty: no roll */
	test_assert_int(wait_acks(j, &a, 6), 0);
	journal_segments(j, &segs, &n);
	test_assert_int(n, 2);
	if (n == 2) {
		test_assert_int(segs[1].first, 4);
		test_assert_int(segs[1].last, 3);
	}
	free(segs);
	test_assert_int(journal_drop_before(j, 4), 1);
	append_n(j, &a, 4, 1);
	test_assert_int(wait_acks(j, &a, 7), 0);
	test_assert_int(a.lsn[6], 4);
	journal_close(&j);
	j = open_j(dir, NULL);
	test_assert(j != NULL);
	test_assert_int(journal_durable_lsn(j), 4);
	test_assert_int(journal_first_lsn(j), 4);
	journal_close(&j);
	rm_rf(dir);
	free(dir);
}

/*
 * A record whose header claims a text of 900 MB, with a checksum that
 * matches (forged, as fuzz_journal makes them), over a frame of a few
 * bytes: the reader refuses it without allocating what it claims (the
 * text grows only as the frame yields it).
 */
static void
forged_length_allocates_nothing(void)
{
	char *dir = make_tmpdir(), path[4096], err[256];
	struct journal *j = open_j(dir, NULL);
	struct journal_reader *r;
	struct journal_record rec;
	struct acks acks = { 0 };
	struct buf raw = BUF_INIT, payload = BUF_INIT;
	uint8_t hdr[REC_HDR_SIZE];
	uint32_t stored;
	int fd;

	journal_append(j, JOURNAL_COMMAND, "APPLY RESERVE", 13, ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 1), 0);
	journal_close(&j);
	seg_path(path, sizeof(path), dir, 1);
	fd = open(path, O_RDWR);
	test_assert(fd >= 0);
	test_assert_int(pread(fd, hdr, sizeof(hdr), SEG_HDR_SIZE),
	    REC_HDR_SIZE);
	test_assert_int(rec_header_decode(hdr, &rec, &stored), 0);
	test_assert_int(buf_reserve(&payload, rec.payload_len), 0);
	test_assert_int(pread(fd, payload.s, rec.payload_len, SEG_HDR_SIZE +
	    REC_HDR_SIZE), (ssize_t)rec.payload_len);
	rec.raw_len = 900u << 20;
	rec_header_encode(hdr, &rec, crc32c_update(0, payload.s,
	    rec.payload_len));
	test_assert_int(pwrite(fd, hdr, sizeof(hdr), SEG_HDR_SIZE),
	    REC_HDR_SIZE);
	close(fd);
	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	test_assert(r != NULL);
	test_assert_int(journal_reader_next(r, &rec, &raw), -EBADMSG);
	test_assert(strstr(journal_reader_errstr(r), "does not decompress") !=
	    NULL);
	/* The text's buffer, still held, is small. */
	test_assert(raw.cap < (1u << 20));
	journal_reader_free(&r);
	buf_free(&raw);
	buf_free(&payload);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(append_read_reopen), T(bodies), T(body_stream_at_position),
    T(text_stream_big_command),
    T(idle_release), T(many_journals_share_the_pool),
    T(segments_roll_and_drop),
    T(torn_tails_are_cut), T(corruption_is_refused_unless_repair),
    T(fault_injection), T(recovers_after_enospc),
    T(roll_starts_an_empty_segment), T(forged_length_allocates_nothing))
