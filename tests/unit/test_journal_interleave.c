/*
 * test_journal_interleave.c -- two master sessions of one store write
 * into its journal at once.
 *
 * A body is streamed into the journal while its literal arrives, over
 * many reads; another session of the same store may meanwhile stream a
 * body of its own, or have a command record journaled.  Each must end
 * as a whole, valid record of its own: the second body and the record
 * must not land inside the first body's region (which is written header
 * last), nor cut it short.  The writer thread takes the operations in
 * the order queued, so queuing them interleaved shows the problem
 * without any timing.
 */
#include "autoconf.h"

#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

/* The bodies' bytes: lines of text. */
#define LINES "abcdefgh\r\nijklmnop"

struct sink_buf {
	struct buf b;
};

static int
sink_cb(void *arg, const void *p, size_t n)
{
	return buf_append(&((struct sink_buf *)arg)->b, p, n);
}

/* Every record from LSN 1: the bodies must be the given ones (by GUID),
 * the commands the given text; returns the number read, -1 on damage. */
static int
check_all(const char *dir, char *const bodies[], const size_t sizes[],
    char guids[][41], size_t nbodies, const char *cmd, int *ncmds)
{
	char err[256], hex[41];
	struct journal_reader *r = journal_reader_new(dir, NULL, 1, 0, err,
	    sizeof(err));
	struct journal_record rec;
	struct sink_buf sb;
	struct buf raw = BUF_INIT;
	int e, n = 0;
	size_t i;

	if (r == NULL)
		return -1;
	buf_init(&sb.b, 0);
	*ncmds = 0;
	while ((e = journal_reader_next(r, &rec, &raw)) == 1) {
		n++;
		if (rec.type != JOURNAL_BODY) {
			test_assert_int(raw.len, strlen(cmd));
			test_assert(memcmp(raw.s, cmd, raw.len) == 0);
			(*ncmds)++;
			continue;
		}
		journal_guid_hex(rec.guid, hex);
		for (i = 0; i < nbodies; i++)
			if (strcmp(hex, guids[i]) == 0)
				break;
		test_assert(i < nbodies);
		if (i == nbodies)
			continue;
		buf_reset(&sb.b);
		test_assert_int(journal_reader_body(r, &rec, sink_cb, &sb), 0);
		test_assert(sb.b.len == sizes[i] &&
		    memcmp(sb.b.s, bodies[i], sizes[i]) == 0);
	}
	test_assert_int(e, 0);
	journal_reader_free(&r);
	buf_free(&raw);
	buf_free(&sb.b);
	return e == 0 ? n : -1;
}

static void
write_chunks(struct journal_body *b, const char *p, size_t from, size_t to)
{
	size_t off;

	for (off = from; off < to; off += 4096)
		journal_body_write(b, p + off, to - off < 4096 ? to - off :
		    4096);
}

/* Session A streams a body; B sends a whole body and a command in the
 * middle of it; then A's body ends. */
static void
body_and_record_inside_another_body(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	static const char cmd[] = "APPLY MAILBOX %(UNIQUEID x MBOXNAME y)";
	char guids[2][41];
	size_t sizes[2] = { 300000, 100000 };
	char *bodies[2];
	struct journal_body *a, *b;
	struct acks acks = { 0 };
	int ncmds = 0, i;

	bodies[0] = seeded_body(sizes[0], 1, LINES, guids[0]);
	bodies[1] = seeded_body(sizes[1], 2, LINES, guids[1]);
	a = journal_body_begin(j, guids[0], sizes[0]);
	write_chunks(a, bodies[0], 0, sizes[0] / 2);
	b = journal_body_begin(j, guids[1], sizes[1]);
	write_chunks(b, bodies[1], 0, sizes[1]);
	journal_body_end(b, ack_cb, &acks);			/* ack 0 */
	journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
	    &acks);						/* ack 1 */
	write_chunks(a, bodies[0], sizes[0] / 2, sizes[0]);
	journal_body_end(a, ack_cb, &acks);			/* ack 2 */
	test_assert_int(wait_acks(j, &acks, 3), 0);
	for (i = 0; i < 3; i++)
		test_assert_int(acks.err[i], 0);
	/* Every acknowledged record has an LSN of its own. */
	test_assert(acks.lsn[0] != acks.lsn[1] && acks.lsn[1] != acks.lsn[2] &&
	    acks.lsn[0] != acks.lsn[2]);
	test_assert_int(journal_error(j), 0);
	journal_close(&j);
	test_assert_int(check_all(dir, bodies, sizes, guids, 2, cmd, &ncmds),
	    3);
	test_assert_int(ncmds, 1);
	/* And again after a reopen (recovery must keep all three). */
	j = open_j(dir, NULL);
	test_assert(j != NULL);
	journal_close(&j);
	test_assert_int(check_all(dir, bodies, sizes, guids, 2, cmd, &ncmds),
	    3);
	free(bodies[0]);
	free(bodies[1]);
	rm_rf(dir);
	free(dir);
}

/* B's body starts inside A's and A's is aborted (its master went away);
 * B's and the command after it are kept, nothing of A's. */
static void
abort_of_the_outer_body_keeps_the_inner_one(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	static const char cmd[] = "APPLY MAILBOX %(UNIQUEID z MBOXNAME w)";
	char guids[2][41];
	size_t sizes[2] = { 200000, 50000 };
	char *bodies[2];
	struct journal_body *a, *b;
	struct acks acks = { 0 };
	int ncmds = 0;

	bodies[0] = seeded_body(sizes[0], 3, LINES, guids[0]);
	bodies[1] = seeded_body(sizes[1], 4, LINES, guids[1]);
	a = journal_body_begin(j, guids[0], sizes[0]);
	write_chunks(a, bodies[0], 0, 70000);
	b = journal_body_begin(j, guids[1], sizes[1]);
	write_chunks(b, bodies[1], 0, 30000);
	journal_body_abort(a);
	write_chunks(b, bodies[1], 30000, sizes[1]);
	journal_body_end(b, ack_cb, &acks);
	journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 2), 0);
	test_assert_int(acks.err[0], 0);
	test_assert_int(acks.err[1], 0);
	test_assert_int(journal_error(j), 0);
	journal_close(&j);
	/* Only B's body is known to check_all: A's must not be there. */
	test_assert_int(check_all(dir, &bodies[1], &sizes[1], &guids[1], 1,
	    cmd, &ncmds), 2);
	test_assert_int(ncmds, 1);
	free(bodies[0]);
	free(bodies[1]);
	rm_rf(dir);
	free(dir);
}

/* Bodies kept aside are checked as streamed ones are: a wrong GUID, a
 * short and a long body are refused (no LSN), a good one kept. */
static void
bodies_kept_aside_are_checked(void)
{
	char *dir = make_tmpdir();
	struct journal *j = open_j(dir, NULL);
	static const char cmd[] = "APPLY RESERVE %(PARTITION default)";
	char guids[2][41], wrong[41];
	size_t sizes[2] = { 150000, 40000 };
	char *bodies[2];
	struct journal_body *a, *b;
	struct acks acks = { 0 };
	int ncmds = 0;

	bodies[0] = seeded_body(sizes[0], 5, LINES, guids[0]);
	bodies[1] = seeded_body(sizes[1], 6, LINES, guids[1]);
	sha1_hex("something else", 14, wrong);
	a = journal_body_begin(j, guids[0], sizes[0]);
	write_chunks(a, bodies[0], 0, 1000);
	b = journal_body_begin(j, wrong, sizes[1]);		/* wrong GUID */
	write_chunks(b, bodies[1], 0, sizes[1]);
	journal_body_end(b, ack_cb, &acks);
	b = journal_body_begin(j, guids[1], sizes[1]);		/* short */
	write_chunks(b, bodies[1], 0, sizes[1] - 1);
	journal_body_end(b, ack_cb, &acks);
	b = journal_body_begin(j, guids[1], sizes[1] - 1);	/* long */
	write_chunks(b, bodies[1], 0, sizes[1]);
	journal_body_end(b, ack_cb, &acks);
	b = journal_body_begin(j, "not hex", 10);		/* bad GUID text */
	journal_body_write(b, "0123456789", 10);
	journal_body_end(b, ack_cb, &acks);
	b = journal_body_begin(j, guids[1], sizes[1]);		/* good */
	write_chunks(b, bodies[1], 0, sizes[1]);
	journal_body_end(b, ack_cb, &acks);
	journal_append(j, JOURNAL_COMMAND, cmd, strlen(cmd), ack_cb,
	    &acks);
	/* Nothing of it is written while A's body is open. */
	usleep(100000);
	journal_collect(j);
	test_assert_int(acks.n, 0);
	write_chunks(a, bodies[0], 1000, sizes[0]);
	journal_body_end(a, ack_cb, &acks);
	test_assert_int(wait_acks(j, &acks, 7), 0);
	/* Completions come in the order written: A's body first (the
	 * others waited for its end), then the rest as queued. */
	test_assert_int(acks.err[0], 0);
	test_assert_int(acks.lsn[0], 1);
	test_assert_int(acks.err[1], -EBADMSG);		/* wrong GUID */
	test_assert_int(acks.err[2], -EBADMSG);		/* short */
	test_assert_int(acks.err[3], -EBADMSG);		/* long */
	test_assert_int(acks.err[4], -EINVAL);		/* bad GUID text */
	test_assert_int(acks.err[5], 0);
	test_assert_int(acks.lsn[5], 2);	/* refused ones take no LSN */
	test_assert_int(acks.err[6], 0);
	test_assert_int(acks.lsn[6], 3);
	test_assert_int(journal_error(j), 0);
	journal_close(&j);
	test_assert_int(check_all(dir, bodies, sizes, guids, 2, cmd, &ncmds),
	    3);
	test_assert_int(ncmds, 1);
	free(bodies[0]);
	free(bodies[1]);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(body_and_record_inside_another_body),
    T(abort_of_the_outer_body_keeps_the_inner_one),
    T(bodies_kept_aside_are_checked))
