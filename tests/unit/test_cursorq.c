/*
 * test_cursorq.c -- the cursor writer thread: what is posted gets
 * written, a newer post replaces an older one, a cancelled post is not
 * written, and cursorq_lock() keeps writes out while it is held.
 */
#include "autoconf.h"

#include <unistd.h>

#include "relay/replay/cursorq.h"
#include "storage/cursor.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

static char *dir;

static struct cursor *
open_c(const char *name)
{
	struct cursor *c = NULL;
	char path[4096], err[256];

	snprintf(path, sizeof(path), "%s/%s.cursor", dir, name);
	if (cursor_open(path, NULL, &c, err, sizeof(err)) < 0)
		fprintf(stderr, "cursor_open: %s\n", err);
	return c;
}

static void
setup(void)
{
	dir = make_tmpdir();
}

static void
posts_are_written_and_the_newest_wins(void)
{
	struct cursor *a = open_c("a"), *b = open_c("b");
	struct cursorq_req ra = { a, "s", "a", 0, false, false, NULL };
	struct cursorq_req rb = { b, "s", "b", 0, false, false, NULL };
	uint64_t i;

	test_assert_int(cursorq_start(), 0);
	for (i = 1; i <= 2000; i++) {
		cursorq_post(&ra, i);
		cursorq_post(&rb, i * 2);
	}
	cursorq_stop();		/* writes what is queued first */
	cursor_close(&a);
	cursor_close(&b);
	a = open_c("a");
	b = open_c("b");
	test_assert_int(cursor_lsn(a), 2000);
	test_assert_int(cursor_lsn(b), 4000);
	cursor_close(&a);
	cursor_close(&b);
}

static void
lock_excludes_writes_and_cancel_drops_a_post(void)
{
	struct cursor *c = open_c("c"), *d = open_c("d");
	struct cursorq_req rc = { c, "s", "c", 0, false, false, NULL };
	struct cursorq_req rd = { d, "s", "d", 0, false, false, NULL };

	test_assert_int(cursorq_start(), 0);
	cursorq_lock();
	cursorq_post(&rc, 7);
	cursorq_post(&rd, 9);
	usleep(100 * 1000);
	/* The thread waits for the lock: nothing is written yet. */
	test_assert_int(cursor_lsn(c), 0);
	test_assert_int(cursor_lsn(d), 0);
	cursorq_unlock();
	cursorq_cancel(&rd);	/* gone from the queue, or written already */
	cursorq_cancel(&rc);
	test_assert(!rc.queued && !rc.busy && !rd.queued && !rd.busy);
	cursorq_post(&rd, 11);
	cursorq_cancel(&rd);
	cursorq_stop();
	test_assert(cursor_lsn(c) == 0 || cursor_lsn(c) == 7);
	test_assert(cursor_lsn(d) == 0 || cursor_lsn(d) == 9 ||
	    cursor_lsn(d) == 11);
	/* Without the thread, a post is written at once. */
	cursorq_post(&rc, 20);
	test_assert_int(cursor_lsn(c), 20);
	cursor_close(&c);
	cursor_close(&d);
}

static void
teardown(void)
{
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(setup), T(posts_are_written_and_the_newest_wins),
    T(lock_excludes_writes_and_cancel_drops_a_post), T(teardown))
