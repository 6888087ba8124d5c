/*
 * test_journal_file.c -- journal_append_file(): a command record whose
 * text comes partly from a file, streamed by the writer header last.
 *
 * The record must read back byte for byte through the ordinary reader,
 * take its LSN in order among ordinary records, survive a reopen; a
 * file shorter than announced must fail only that record and leave no
 * trace of it; a disk that fills in the middle of the record must make
 * the journal refuse (sticky) and recover to the records before it.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "storage/fault.h"
#include "storage/segment.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

/* A file of n bytes of record-like text, incompressible enough to take
 * many writes; returns its fd (unlinked) and the bytes in *text. */
static int
make_file(const char *dir, size_t n, struct buf *text)
{
	char path[4096];
	uint64_t x = 7;
	int fd;

	buf_reset(text);
	while (text->len < n) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		buf_printf(text, "%%(UID %llu GUID %016llx%016llx) ",
		    (unsigned long long)(text->len + 1),
		    (unsigned long long)x, (unsigned long long)(x >> 7));
	}
	text->len = n;
	snprintf(path, sizeof(path), "%s/spill", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		unlink(path);
		if (write(fd, text->s, n) != (ssize_t)n) {
			close(fd);
			fd = -1;
		}
	}
	return fd;
}

/* The raw text of every record from LSN 1, joined by "\n", and the
 * count (-1 on a read error). */
static long
read_texts(const char *dir, struct buf *all)
{
	char err[256];
	struct journal_reader *r = journal_reader_new(dir, NULL, 1, 0, err,
	    sizeof(err));
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	long n = 0;
	int e;

	buf_reset(all);
	if (r == NULL)
		return -1;
	while ((e = journal_reader_next(r, &rec, &raw)) == 1) {
		if (rec.lsn != (uint64_t)n + 1)
			n = -1000;
		buf_append(all, raw.s, raw.len);
		buf_putc(all, '\n');
		n++;
	}
	if (e < 0)
		n = -1;
	buf_free(&raw);
	journal_reader_free(&r);
	return n;
}

static void
round_trip_among_records(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct buf text = BUF_INIT, head = BUF_INIT, tail = BUF_INIT;
	struct buf want = BUF_INIT, got = BUF_INIT;
	struct acks a = { 0 };
	int fd = make_file(dir, 3u << 20, &text);

	test_assert(j != NULL && fd >= 0);
	if (j == NULL || fd < 0)
		return;
	buf_puts(&head, "APPLY MAILBOX %(UNIQUEID u1 RECORD (");
	buf_puts(&tail, ") SYNC_CRC 1)");
	journal_append(j, JOURNAL_COMMAND, "APPLY X %(A 1)", 14, ack_cb, &a);
	journal_append_file(j, JOURNAL_COMMAND, &head, fd, text.len, &tail,
	    ack_cb, &a);
	close(fd);	/* the journal has its own */
	journal_append(j, JOURNAL_COMMAND, "APPLY X %(A 2)", 14, ack_cb, &a);
	test_assert_int(wait_acks(j, &a, 3), 0);
	test_assert_int(a.err[0], 0);
	test_assert_int(a.err[1], 0);
	test_assert_int(a.err[2], 0);
	test_assert_int(a.lsn[1], 2);
	test_assert_int(a.lsn[2], 3);
	journal_close(&j);
	buf_puts(&want, "APPLY X %(A 1)\n");
	buf_append(&want, head.s, head.len);
	buf_append(&want, text.s, text.len);
	buf_append(&want, tail.s, tail.len);
	buf_puts(&want, "\nAPPLY X %(A 2)\n");
	test_assert_int(read_texts(dir, &got), 3);
	test_assert(got.len == want.len &&
	    memcmp(got.s, want.s, want.len) == 0);
	/* reopened: recovery keeps all three */
	j = open_j(dir, NULL);
	test_assert(j != NULL);
	test_assert_int(journal_durable_lsn(j), 3);
	journal_close(&j);
	buf_free(&text);
	buf_free(&head);
	buf_free(&tail);
	buf_free(&want);
	buf_free(&got);
	rm_rf(dir);
	free(dir);
}

static void
short_file_fails_only_its_record(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	struct buf text = BUF_INIT, head = BUF_INIT, got = BUF_INIT;
	struct acks a = { 0 };
	int fd = make_file(dir, 200000, &text);

	test_assert(j != NULL && fd >= 0);
	if (j == NULL || fd < 0)
		return;
	buf_puts(&head, "APPLY MAILBOX %(RECORD (");
	journal_append(j, JOURNAL_COMMAND, "APPLY X %(A 1)", 14, ack_cb, &a);
	journal_append_file(j, JOURNAL_COMMAND, &head, fd, text.len + 10,
	    &head, ack_cb, &a);
	journal_append(j, JOURNAL_COMMAND, "APPLY X %(A 2)", 14, ack_cb, &a);
	close(fd);
	test_assert_int(wait_acks(j, &a, 3), 0);
	test_assert_int(a.err[0], 0);
	test_assert_int(a.err[1], -EIO);
	test_assert_int(a.err[2], 0);
	test_assert_int(a.lsn[2], 2);	/* no LSN was used by the failure */
	test_assert_int(journal_error(j), 0);
	journal_close(&j);
	test_assert_int(read_texts(dir, &got), 2);
	buf_putc(&got, '\0');
	test_assert_str(got.s, "APPLY X %(A 1)\nAPPLY X %(A 2)\n");
	buf_free(&text);
	buf_free(&head);
	buf_free(&got);
	rm_rf(dir);
	free(dir);
}

static void
full_disk_mid_record(void)
{
	char *dir = make_tmpdir();
	struct fault f;
	struct journal_opts o = { .fops = &f.ops };
	struct journal *j;
	struct buf text = BUF_INIT, head = BUF_INIT, got = BUF_INIT;
	struct acks a = { 0 };
	char err[256];
	int fd;

	/* Write 1 is the segment header, 2 a record, 3.. the file record. */
	fault_init(&f, FAULT_PWRITE, 5, ENOSPC);
	f.sticky = 1;
	j = open_j(dir, &o);
	fd = make_file(dir, 2u << 20, &text);
	test_assert(j != NULL && fd >= 0);
	if (j == NULL || fd < 0)
		return;
	buf_puts(&head, "APPLY MAILBOX %(RECORD (");
	journal_append(j, JOURNAL_COMMAND, "APPLY X %(A 1)", 14, ack_cb, &a);
	test_assert_int(wait_acks(j, &a, 1), 0);
	journal_append_file(j, JOURNAL_COMMAND, &head, fd, text.len, &head,
	    ack_cb, &a);
	test_assert_int(wait_acks(j, &a, 2), 0);
	test_assert_int(a.err[1], -ENOSPC);
	test_assert_int(journal_error(j), -ENOSPC);
	test_assert_int(journal_durable_lsn(j), 1);
	f.op = FAULT_NONE;
	test_assert_int(journal_recover(j, err, sizeof(err)), 0);
	journal_append_file(j, JOURNAL_COMMAND, &head, fd, text.len, &head,
	    ack_cb, &a);
	test_assert_int(wait_acks(j, &a, 3), 0);
	test_assert_int(a.err[2], 0);
	test_assert_int(a.lsn[2], 2);
	close(fd);
	journal_close(&j);
	test_assert_int(read_texts(dir, &got), 2);
	test_assert_int(got.len, 15 + head.len * 2 + text.len + 1);
	buf_free(&text);
	buf_free(&head);
	buf_free(&got);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(round_trip_among_records), T(short_file_fails_only_its_record),
    T(full_disk_mid_record))
