/*
 * test_cursor.c -- replica cursors: forward only, durable, and never
 * lost to a torn write or a crash.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "storage/cursor.h"
#include "storage/fault.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

static char *dir;
static char path[4096];

static struct cursor *
open_c(const struct fileops *fo)
{
	struct cursor *c = NULL;
	char err[256];

	if (cursor_open(path, fo, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "cursor_open: %s\n", err);
	return c;
}

static void
setup(void)
{
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/r1.cursor", dir);
}

static void
forward_only_and_durable(void)
{
	struct cursor *c = open_c(NULL);

	test_assert(c != NULL);
	test_assert_int(cursor_lsn(c), 0);
	test_assert_int(cursor_store(c, 5), 0);
	test_assert_int(cursor_store(c, 10), 0);
	test_assert_int(cursor_store(c, 9), -EINVAL);
	test_assert_int(cursor_lsn(c), 10);
	cursor_close(&c);
	c = open_c(NULL);
	test_assert_int(cursor_lsn(c), 10);
	test_assert_int(cursor_flags(c), 0);
	test_assert_int(cursor_reset(c, 3, CURSOR_NEEDS_RESYNC), 0);
	cursor_close(&c);
	c = open_c(NULL);
	test_assert_int(cursor_lsn(c), 3);
	test_assert_int(cursor_flags(c), CURSOR_NEEDS_RESYNC);
	test_assert_int(cursor_reset(c, 12, 0), 0);
	cursor_close(&c);
}

static void
overwrite(off_t off, const char *junk, size_t n)
{
	int fd = open(path, O_RDWR);

	if (pwrite(fd, junk, n, off) != (ssize_t)n)
		abort();
	close(fd);
}

static void
torn_writes_keep_a_value(void)
{
	struct cursor *c = open_c(NULL);
	char err[256];

	/* After reset(12): stores 20 then 30 land in alternate slots. */
	test_assert_int(cursor_store(c, 20), 0);
	test_assert_int(cursor_store(c, 30), 0);
	cursor_close(&c);
	/* Find which slot holds 30 by damaging each in turn. */
	overwrite(0, "XXXXXXXX", 8);
	c = open_c(NULL);
	test_assert(c != NULL);
	test_assert(cursor_lsn(c) == 30 || cursor_lsn(c) == 20);
	cursor_close(&c);
	overwrite(32, "XXXXXXXX", 8);
	test_assert_int(cursor_open(path, NULL, &c, err, sizeof(err)),
	    -EBADMSG);
	test_assert(strstr(err, "no valid cursor") != NULL);
	unlink(path);
}

static void
disk_errors_keep_the_old_value(void)
{
	struct fault f;
	struct cursor *c;

	fault_init(&f, FAULT_FDATASYNC, 2, EIO);
	c = open_c(&f.ops);		/* creation syncs once */
	test_assert(c != NULL);
	test_assert_int(cursor_store(c, 7), -EIO);
	test_assert_int(cursor_lsn(c), 0);
	test_assert_int(cursor_store(c, 8), 0);
	test_assert_int(cursor_lsn(c), 8);
	cursor_close(&c);
	fault_init(&f, FAULT_PWRITE, 1, 0);	/* a short write is retried */
	c = open_c(&f.ops);
	test_assert_int(cursor_store(c, 9), 0);
	cursor_close(&c);
	c = open_c(NULL);
	test_assert_int(cursor_lsn(c), 9);
	cursor_close(&c);
	unlink(path);
}

/* Kill a process storing ever larger values; the file must hold the
 * last value reported stored, or the one being stored. */
static void
sigkill_while_storing(void)
{
	int round;
	unsigned long long final = 0;

	for (round = 0; round < 60; round++) {
		int fds[2];
		pid_t pid;
		char buf[4096];
		ssize_t n;
		size_t have = 0;
		unsigned long long last = final, v;
		struct cursor *c;
		char *p;

		if (pipe(fds) < 0)
			abort();
		pid = fork();
		if (pid == 0) {
			struct cursor *cc = open_c(NULL);
			uint64_t x = cursor_lsn(cc);

			close(fds[0]);
			for (;;) {
				char line[32];
				int len;

				if (cursor_store(cc, ++x) != 0)
					_exit(2);
				len = snprintf(line, sizeof(line), "%llu\n",
				    (unsigned long long)x);
				if (write(fds[1], line, (size_t)len) != len)
					_exit(3);
			}
		}
		close(fds[1]);
		/* Once it has stored one (a loaded machine may not run it at
		 * all for a while), a moment more, then the kill. */
		while (memchr(buf, '\n', have) == NULL && (n = read(fds[0],
		    buf + have, sizeof(buf) - have - 1)) > 0)
			have += (size_t)n;
		buf[have] = '\0';
		usleep(500 + (unsigned)(round * 97) % 5000);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		for (;;) {
			for (p = buf; strchr(p, '\n'); p = strchr(p, '\n') + 1)
				if (sscanf(p, "%llu", &v) == 1)
					last = v;
			have = strlen(p);
			memmove(buf, p, have);
			buf[have] = '\0';
			if ((n = read(fds[0], buf + have, sizeof(buf) - have -
			    1)) <= 0)
				break;
			have += (size_t)n;
			buf[have] = '\0';
		}
		close(fds[0]);
		c = open_c(NULL);
		test_assert(c != NULL);
		if (c == NULL)
			break;
		if (cursor_lsn(c) < last || cursor_lsn(c) > last + 1) {
			fprintf(stderr, "round %d: cursor %llu, last stored "
			    "%llu\n", round, (unsigned long long)cursor_lsn(c),
			    last);
			test_assert(0);
		}
		/* The next child starts from what the file holds. */
		final = cursor_lsn(c);
		cursor_close(&c);
	}
	/* The children did store values (the cursor carried on): each
	 * stored at least one before its kill. */
	printf("# 60 kills, cursor reached %llu\n", final);
	test_assert(final >= 60);
}

static void
teardown(void)
{
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(setup), T(forward_only_and_durable), T(torn_writes_keep_a_value),
    T(disk_errors_keep_the_old_value), T(sigkill_while_storing),
    T(teardown))
