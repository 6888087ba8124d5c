/*
 * test_parked.c -- a replica's parked list: what is saved is read back
 * as it was, names with odd bytes included; a failed write keeps the
 * old list whole; a damaged file is refused, not half read.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <unistd.h>

#include "storage/fault.h"
#include "storage/parked.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

static char *dir;
static char path[4096];

static void
setup(void)
{
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/r1.parked", dir);
}

static struct parked
entry(char kind, const char *key, const char *name, uint64_t lsn)
{
	struct parked p;

	memset(&p, 0, sizeof(p));
	p.kind = kind;
	snprintf(p.key, sizeof(p.key), "%s", key);
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.reply, sizeof(p.reply), "APPLY MAILBOX: NO\tUnknown\r\n"
	    "error");
	p.lsn = lsn;
	p.since = 1764979200;
	p.tries = 3;
	return p;
}

static void
saved_lists_read_back(void)
{
	struct parked v[2], *got = NULL;
	size_t n = 99;
	char err[256];

	/* No file: an empty list. */
	test_assert_int(parked_load(path, NULL, &got, &n, err, sizeof(err)),
	    0);
	test_assert_int(n, 0);
	v[0] = entry(PARKED_MAILBOX, "0123456789abcdef", "user.alice.Reisen "
	    "2026", 46);
	v[1] = entry(PARKED_RECORD, "SIEVE alice vac\tation",
	    "SIEVE alice", 12345678901ULL);
	test_assert_int(parked_save(path, NULL, v, 2), 0);
	test_assert_int(parked_load(path, NULL, &got, &n, err, sizeof(err)),
	    0);
	test_assert_int(n, 2);
	test_assert(got[0].kind == PARKED_MAILBOX);
	test_assert_str(got[0].name, "user.alice.Reisen 2026");
	test_assert_int(got[0].lsn, 46);
	test_assert_int(got[0].tries, 3);
	test_assert_int(got[0].since, 1764979200);
	/* Tabs and line ends inside fields became spaces. */
	test_assert_str(got[0].reply, "APPLY MAILBOX: NO Unknown  error");
	test_assert(got[1].kind == PARKED_RECORD);
	test_assert_str(got[1].key, "SIEVE alice vac ation");
	test_assert_int(got[1].lsn, 12345678901ULL);
	free(got);
	/* An empty list removes the file. */
	test_assert_int(parked_save(path, NULL, v, 0), 0);
	test_assert(access(path, F_OK) < 0);
}

static void
failed_writes_keep_the_old_list(void)
{
	static const enum fault_op ops[] = { FAULT_OPEN, FAULT_PWRITE,
		FAULT_FSYNC, FAULT_RENAME };
	struct parked v[2], *got = NULL;
	struct fault f;
	size_t n, i;
	char err[256];

	v[0] = entry(PARKED_MAILBOX, "u1", "user.bob", 7);
	v[1] = entry(PARKED_MAILBOX, "u2", "user.bob.Sent", 8);
	test_assert_int(parked_save(path, NULL, v, 1), 0);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		fault_init(&f, ops[i], 1, ops[i] == FAULT_PWRITE ? ENOSPC :
		    EIO);
		test_assert(parked_save(path, &f.ops, v, 2) < 0);
		test_assert_int(parked_load(path, NULL, &got, &n, err,
		    sizeof(err)), 0);
		test_assert_int(n, 1);
		test_assert_str(got[0].key, "u1");
		free(got);
	}
	test_assert_int(parked_save(path, NULL, v, 0), 0);
}

static void
damaged_files_are_refused(void)
{
	static const char *const bad[] = {
		"not a parked list\n",
		"syncrelay-parked 1\nM\tkey\t12\t1\t1\tname\n",
		"syncrelay-parked 1\nX\tkey\t12\t1\t1\tname\treply\n",
		"syncrelay-parked 1\nM\tkey\t-1\t1\t1\tname\treply\n",
		"syncrelay-parked 1\nM\tkey\t12\t1\t1\tname\treply",
	};
	struct parked *got = (struct parked *)1;
	size_t i, n = 5;
	char err[256];
	int fd;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		test_assert(fd >= 0);
		test_assert_int(write(fd, bad[i], strlen(bad[i])),
		    (long)strlen(bad[i]));
		close(fd);
		err[0] = '\0';
		test_assert_int(parked_load(path, NULL, &got, &n, err,
		    sizeof(err)), -EBADMSG);
		test_assert(got == NULL && n == 0);
		test_assert(strstr(err, path) != NULL);
	}
	unlink(path);
}

static void
teardown(void)
{
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(setup), T(saved_lists_read_back),
    T(failed_writes_keep_the_old_list), T(damaged_files_are_refused),
    T(teardown))
