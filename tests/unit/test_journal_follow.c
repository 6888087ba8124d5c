/*
 * test_journal_follow.c -- a reader following a journal being written.
 *
 * A replica's link reads the journal while the writer appends to it.
 * At the end of the newest segment the reader may find a record still
 * being written (a body is written header last), or the end of the
 * file; then it lists the directory for a newer segment.  Between the
 * two the writer can finish that record, append more and roll to a new
 * segment.  The reader must then read the old segment's end again, not
 * take the unfinished record for damage (the link failed with "no record
 * header" in a CI run of test_full_disk) nor skip what was appended.
 *
 * The race is made certain, not timed: the reader's file operations run
 * the writer's steps right after the read that sees the unfinished
 * record, before the reader lists the directory.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "storage/fileops.h"
#include "storage/segment.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

/* What the reader's pread runs once, after reading at watch_off. */
struct follow {
	uint64_t watch_off;
	bool fired;
	void (*step)(struct follow *f);
	struct journal *j;
	struct journal_body *body;
	char *text;
	size_t size, sent;
	struct acks acks;
};

static struct follow follow;

static ssize_t
hook_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
	ssize_t got = pread(fd, p, n, off);

	(void)ctx;
	if (!follow.fired && (uint64_t)off == follow.watch_off &&
	    n == REC_HDR_SIZE) {
		follow.fired = true;
		follow.step(&follow);
	}
	return got;
}

static struct fileops hook_fops;

static void
hook_init(void)
{
	hook_fops = fileops_posix;
	hook_fops.pread = hook_pread;
}

/* Size of the newest segment file of dir (first LSN first). */
static uint64_t
seg_bytes(const char *dir, uint64_t first)
{
	char path[4096];
	struct stat sb;

	seg_path(path, sizeof(path), dir, first);
	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/*
 * The journal in dir opened afresh (follow.j) with one record (LSN 1),
 * then a body of 400,000 bytes begun and 300,000 of it written: past
 * zstd's 128 KB block, so part of it is on disk after its zero header
 * slot, whose offset is returned and watched (follow.watch_off).
 */
static uint64_t
half_a_body(const char *dir, const struct journal_opts *o, unsigned seed)
{
	static const char cmd[] = "APPLY RESERVE %(PARTITION default)";
	char guid[41];
	uint64_t slot;
	int i;

	hook_init();
	memset(&follow, 0, sizeof(follow));
	follow.j = open_j(dir, o);
	test_assert(follow.j != NULL);
	journal_append(follow.j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
	    &follow.acks);
	test_assert_int(wait_acks(follow.j, &follow.acks, 1), 0);
	slot = seg_bytes(dir, 1);
	follow.size = 400000;
	follow.text = seeded_body(follow.size, seed, NULL, guid);
	follow.body = journal_body_begin(follow.j, guid, follow.size);
	follow.sent = 300000;
	journal_body_write(follow.body, follow.text, follow.sent);
	for (i = 0; i < 5000 && seg_bytes(dir, 1) < slot + REC_HDR_SIZE +
	    1000; i++)
		usleep(1000);
	test_assert(seg_bytes(dir, 1) >= slot + REC_HDR_SIZE + 1000);
	follow.watch_off = slot;
	return slot;
}

/* What a test of the half-written body leaves: its reader, the
 * journal, the text and the directory. */
static void
follow_end(struct journal_reader **r, struct buf *raw, char *dir)
{
	journal_reader_free(r);
	journal_close(&follow.j);
	buf_free(raw);
	free(follow.text);
	rm_rf(dir);
	free(dir);
}

/* The writer's steps: the body's rest and end, then a record that rolls
 * to a new segment (the first is past segment_bytes); all durable. */
static void
finish_and_roll(struct follow *f)
{
	static const char cmd[] = "APPLY MAILBOX %(UNIQUEID u MBOXNAME n)";

	journal_body_write(f->body, f->text + f->sent, f->size - f->sent);
	journal_body_end(f->body, ack_cb, &f->acks);
	journal_append(f->j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
	    &f->acks);
	test_assert_int(wait_acks(f->j, &f->acks, 3), 0);
}

/*
 * The reader meets the zero header slot of a body being streamed; the
 * body ends and a new segment starts before the reader lists the
 * directory.  With upto at the durable LSN it saw (1) it must stop
 * cleanly, then read the body (2) and the record (3) once upto says so.
 */
static void
a_body_finished_while_the_reader_looked_is_read(void)
{
	char *dir = make_tmpdir();
	struct journal_opts o = { .segment_bytes = 4096 };
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256];
	int i;

	half_a_body(dir, &o, 7);
	follow.step = finish_and_roll;

	r = journal_reader_new(dir, &hook_fops, 1, 1, err, sizeof(err));
	test_assert(r != NULL);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(rec.lsn, 1);
	/* Here the writer finishes the body and rolls. */
	i = journal_reader_next(r, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "reader: %s\n", journal_reader_errstr(r));
	test_assert_int(i, 0);
	test_assert(follow.fired);
	test_assert_int(follow.acks.err[1], 0);
	test_assert_int(follow.acks.err[2], 0);
	test_assert_int(follow.acks.lsn[2], 3);
	test_assert(seg_bytes(dir, 3) > 0);	/* it did roll */
	journal_reader_set_upto(r, 3);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(rec.lsn, 2);
	test_assert_int(rec.type, JOURNAL_BODY);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(rec.lsn, 3);
	test_assert_int(journal_reader_next(r, &rec, &raw), 0);
	follow_end(&r, &raw, dir);
}

/* The writer's steps: the body is dropped (the master went away), the
 * segment cut back to its zero slot, and two records written there. */
static void
abort_and_write_on(struct follow *f)
{
	static const char cmd[] = "APPLY MAILBOX %(UNIQUEID u MBOXNAME n)";

	journal_body_abort(f->body);
	journal_append(f->j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
	    &f->acks);
	journal_append(f->j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
	    &f->acks);
	test_assert_int(wait_acks(f->j, &f->acks, 3), 0);
}

/*
 * The reader meets the zero header slot of a body being streamed; the
 * body is dropped and two records are written over where it was before
 * the reader, still holding the file's old (larger) size, checks
 * whether a valid record follows the slot (which would make it damage).
 * It finds the new records there: it must read them, not call the
 * journal corrupt.
 */
static void
a_body_cut_while_the_reader_looked_is_not_damage(void)
{
	char *dir = make_tmpdir();
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256];
	uint64_t slot;
	int i;

	slot = half_a_body(dir, NULL, 11);
	follow.step = abort_and_write_on;

	r = journal_reader_new(dir, &hook_fops, 1, 1, err, sizeof(err));
	test_assert(r != NULL);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(rec.lsn, 1);
	/* Here the body is cut and records 2 and 3 written in its place. */
	i = journal_reader_next(r, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "reader: %s\n", journal_reader_errstr(r));
	test_assert_int(i, 0);
	test_assert(follow.fired);
	test_assert_int(follow.acks.lsn[1], 2);
	test_assert_int(follow.acks.lsn[2], 3);
	journal_reader_set_upto(r, 3);
	for (i = 2; i <= 3; i++) {
		test_assert_int(journal_reader_next(r, &rec, &raw), 1);
		test_assert_int(rec.lsn, i);
		test_assert_int(rec.offset, i == 2 ? slot : rec.offset);
	}
	test_assert_int(journal_reader_next(r, &rec, &raw), 0);
	follow_end(&r, &raw, dir);
}

/*
 * Were records ever skipped (a segment's end read too early, then the
 * next segment), the LSNs would jump: the reader says so instead of
 * going on.  Made here by cutting the first segment's last record.
 */
static void
a_gap_in_the_lsns_is_reported(void)
{
	char *dir = make_tmpdir();
	struct journal_opts o = { .segment_bytes = 4096 };
	struct journal *j;
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT, big = BUF_INIT;
	struct acks acks = { 0 };
	char err[256], path[4096], guid[41];
	uint64_t k, cut = 0;
	int i;

	big.s = seeded_body(2500, 9, NULL, guid);	/* incompressible */
	big.len = 2500;
	j = open_j(dir, &o);
	test_assert(j != NULL);
	/* Records 1 and 2 in the first segment (past its 4 KB), 3 rolls. */
	for (k = 0; k < 3; k++) {
		journal_append(j, JOURNAL_COMMAND, big.s, big.len,
		    ack_cb, &acks);
		test_assert_int(wait_acks(j, &acks, k + 1), 0);
		if (k == 0)
			cut = seg_bytes(dir, 1);
	}
	test_assert_int(acks.lsn[2], 3);
	test_assert(seg_bytes(dir, 3) > 0);
	journal_close(&j);
	seg_path(path, sizeof(path), dir, 1);
	test_assert_int(truncate(path, (off_t)cut), 0);
	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	test_assert(r != NULL);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(rec.lsn, 1);
	i = journal_reader_next(r, &rec, &raw);
	test_assert_int(i, -EBADMSG);
	test_assert(strstr(journal_reader_errstr(r), "LSN 3 after 1") !=
	    NULL);
	journal_reader_free(&r);
	buf_free(&raw);
	free(big.s);
	rm_rf(dir);
	free(dir);
}

/*
 * A link idle at the end of a segment closes its descriptor (trim) and
 * keeps its place.  Meanwhile the segment is rolled and, every replica
 * having it, dropped by retention (what the disk guard does under
 * pressure).  The reader must go on in the next segment, not fail on
 * the missing file.
 */
static void
a_trimmed_reader_goes_on_after_its_segment_is_dropped(void)
{
	char *dir = make_tmpdir();
	struct journal *j;
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	struct acks acks = { 0 };
	static const char cmd[] = "APPLY RESERVE %(PARTITION default)";
	char err[256];
	int i;

	j = open_j(dir, NULL);
	test_assert(j != NULL);
	for (i = 0; i < 2; i++)
		journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
		    &acks);
	test_assert_int(wait_acks(j, &acks, 2), 0);
	r = journal_reader_new(dir, NULL, 1, 2, err, sizeof(err));
	test_assert(r != NULL);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(journal_reader_next(r, &rec, &raw), 1);
	test_assert_int(rec.lsn, 2);
	test_assert_int(journal_reader_next(r, &rec, &raw), 0);
	journal_reader_trim(r);
	journal_roll(j, ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 3), 0);
	test_assert_int(journal_drop_before(j, 3), 1);
	journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 4), 0);
	test_assert_int(acks.lsn[3], 3);
	journal_reader_set_upto(r, 3);
	i = journal_reader_next(r, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "reader: %s\n", journal_reader_errstr(r));
	test_assert_int(i, 1);
	test_assert_int(rec.lsn, 3);
	journal_reader_free(&r);
	journal_close(&j);
	buf_free(&raw);
	rm_rf(dir);
	free(dir);
}

/*
 * The writer starts a segment in two steps: it creates the file, then
 * writes its header.  A reader at the end of the newest segment that
 * lists the directory between the two finds a file with no header yet.
 * The writer's own file operations run the reader's steps right after
 * the create.  If the header write then fails (a full disk), the disk
 * guard's journal_recover() removes the headerless file and the writer
 * creates it again on its next append.  Through all of it the reader
 * must wait, not fail, and then read on without a gap.
 */
struct newseg {
	struct journal_reader *r;
	bool armed, fired, fail_header;
	int got;		/* what the reader's next returned there */
	char why[512];
};

static struct newseg newseg;

static int
ns_open(void *ctx, const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);

	(void)ctx;
	if (fd >= 0 && (flags & O_CREAT) && newseg.armed) {
		struct journal_record rec;
		struct buf raw = BUF_INIT;

		newseg.armed = false;
		newseg.fired = true;
		newseg.got = journal_reader_next(newseg.r, &rec, &raw);
		snprintf(newseg.why, sizeof(newseg.why), "%s",
		    journal_reader_errstr(newseg.r));
		buf_free(&raw);
	}
	return fd;
}

static ssize_t
ns_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	(void)ctx;
	if (newseg.fail_header && off == 0 && n == SEG_HDR_SIZE) {
		newseg.fail_header = false;
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, p, n, off);
}

static struct fileops ns_fops;

/* A journal whose segment 1 holds records 1 and 2, the reader past both. */
static struct journal *
ns_setup(const char *dir, struct acks *acks)
{
	static const char cmd[] = "APPLY RESERVE %(PARTITION default)";
	struct journal_opts o = { .fops = &ns_fops };
	struct journal *j;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256];
	int i;

	memset(&newseg, 0, sizeof(newseg));
	ns_fops = fileops_posix;
	ns_fops.open = ns_open;
	ns_fops.pwrite = ns_pwrite;
	j = open_j(dir, &o);
	test_assert(j != NULL);
	for (i = 0; i < 2; i++)
		journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
		    acks);
	test_assert_int(wait_acks(j, acks, 2), 0);
	newseg.r = journal_reader_new(dir, NULL, 1, 2, err, sizeof(err));
	test_assert(newseg.r != NULL);
	for (i = 1; i <= 2; i++) {
		test_assert_int(journal_reader_next(newseg.r, &rec, &raw), 1);
		test_assert_int(rec.lsn, i);
	}
	test_assert_int(journal_reader_next(newseg.r, &rec, &raw), 0);
	buf_free(&raw);
	return j;
}

/* Appends one record and expects the reader to return it as lsn. */
static void
ns_append_and_read(struct journal *j, struct acks *acks, uint64_t lsn)
{
	static const char cmd[] = "APPLY RESERVE %(PARTITION other)";
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	int i;

	journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb, acks);
	test_assert_int(wait_acks(j, acks, acks->n + 1), 0);
	test_assert_int(acks->err[acks->n - 1], 0);
	test_assert_int(acks->lsn[acks->n - 1], lsn);
	journal_reader_set_upto(newseg.r, lsn);
	i = journal_reader_next(newseg.r, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "reader: %s\n",
		    journal_reader_errstr(newseg.r));
	test_assert_int(i, 1);
	test_assert_int(rec.lsn, lsn);
	test_assert_str(raw.s, cmd);
	test_assert_int(journal_reader_next(newseg.r, &rec, &raw), 0);
	buf_free(&raw);
}

static void
a_segment_without_its_header_yet_is_waited_for(void)
{
	char *dir = make_tmpdir();
	struct acks acks = { 0 };
	struct journal *j = ns_setup(dir, &acks);

	newseg.armed = true;
	journal_roll(j, ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 3), 0);
	test_assert(newseg.fired);
	if (newseg.got < 0)
		fprintf(stderr, "reader: %s\n", newseg.why);
	test_assert_int(newseg.got, 0);
	test_assert_int(acks.err[2], 0);
	test_assert(seg_bytes(dir, 3) == SEG_HDR_SIZE);	/* it did roll */
	ns_append_and_read(j, &acks, 3);
	ns_append_and_read(j, &acks, 4);
	journal_reader_free(&newseg.r);
	journal_close(&j);
	rm_rf(dir);
	free(dir);
}

static void
a_segment_whose_header_failed_is_waited_for(void)
{
	char *dir = make_tmpdir();
	struct acks acks = { 0 };
	struct journal *j = ns_setup(dir, &acks);
	struct journal_reader *fresh;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256], path[4096];
	struct stat sb;
	int i;

	newseg.fail_header = true;
	journal_roll(j, ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 3), 0);
	test_assert_int(acks.err[2], -ENOSPC);
	seg_path(path, sizeof(path), dir, 3);
	test_assert_int(stat(path, &sb), 0);
	test_assert_int(sb.st_size, 0);		/* created, no header */
	/* A follower at segment 1's end, and one starting at LSN 3. */
	i = journal_reader_next(newseg.r, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "reader: %s\n",
		    journal_reader_errstr(newseg.r));
	test_assert_int(i, 0);
	fresh = journal_reader_new(dir, NULL, 3, 2, err, sizeof(err));
	test_assert(fresh != NULL);
	i = journal_reader_next(fresh, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "fresh reader: %s\n",
		    journal_reader_errstr(fresh));
	test_assert_int(i, 0);
	/* The disk guard recovers: the headerless segment goes. */
	test_assert_int(journal_recover(j, err, sizeof(err)), 0);
	test_assert(stat(path, &sb) < 0);
	i = journal_reader_next(newseg.r, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "reader: %s\n",
		    journal_reader_errstr(newseg.r));
	test_assert_int(i, 0);
	test_assert_int(journal_reader_next(fresh, &rec, &raw), 0);
	/* The writer goes on; both readers read on, nothing missed. */
	ns_append_and_read(j, &acks, 3);
	journal_reader_set_upto(fresh, 3);
	i = journal_reader_next(fresh, &rec, &raw);
	if (i < 0)
		fprintf(stderr, "fresh reader: %s\n",
		    journal_reader_errstr(fresh));
	test_assert_int(i, 1);
	test_assert_int(rec.lsn, 3);
	journal_roll(j, ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, acks.n + 1), 0);
	ns_append_and_read(j, &acks, 4);
	journal_reader_free(&fresh);
	journal_reader_free(&newseg.r);
	journal_close(&j);
	buf_free(&raw);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(a_body_finished_while_the_reader_looked_is_read),
    T(a_body_cut_while_the_reader_looked_is_not_damage),
    T(a_gap_in_the_lsns_is_reported),
    T(a_trimmed_reader_goes_on_after_its_segment_is_dropped),
    T(a_segment_without_its_header_yet_is_waited_for),
    T(a_segment_whose_header_failed_is_waited_for))
