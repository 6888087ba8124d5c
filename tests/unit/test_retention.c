/*
 * test_retention.c -- which segments go, and what the size cap does.
 */
#include "autoconf.h"

#include <time.h>

#include "storage/retention.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

struct fixture {
	char *dir;
	char jdir[4096];
	struct journal *j;
	struct shadow *s;
	struct cursor *c[2];
	struct retention_replica rep[2];
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* 100 records in segments of a few records each; cursors at c1, c2. */
static void
fixture_open(struct fixture *f, uint64_t c1, uint64_t c2)
{
	struct journal_opts o = { .segment_bytes = 600 };
	struct acks a = { 0 };
	struct buf b = BUF_INIT;
	char err[512], path[4096];
	int i;

	memset(f, 0, sizeof(*f));
	f->dir = make_tmpdir();
	snprintf(f->jdir, sizeof(f->jdir), "%s/journal", f->dir);
	if (journal_open(f->jdir, &o, &f->j, err, sizeof(err)) < 0)
		abort();
	for (i = 1; i <= 100; i++) {
		make_payload(&b, (uint64_t)i);
		journal_append(f->j, JOURNAL_COMMAND, b.s, b.len, ack_cb, &a);
	}
	wait_acks(f->j, &a, 100);
	buf_free(&b);
	snprintf(path, sizeof(path), "%s/shadow.db", f->dir);
	if (shadow_open(path, &f->s, err, sizeof(err)) < 0)
		abort();
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/r%d.cursor", f->dir, i + 1);
		if (cursor_open(path, NULL, &f->c[i], err, sizeof(err)) < 0)
			abort();
		cursor_store(f->c[i], i == 0 ? c1 : c2);
		f->rep[i].name = i == 0 ? "r1" : "r2";
		f->rep[i].cursor = f->c[i];
	}
}

static void
fixture_close(struct fixture *f)
{
	cursor_close(&f->c[0]);
	cursor_close(&f->c[1]);
	shadow_close(&f->s);
	journal_close(&f->j);
	rm_rf(f->dir);
	free(f->dir);
}

/* The lowest LSN still readable. */
static uint64_t
first_readable(const char *dir)
{
	char err[256];
	struct journal_reader *r = journal_reader_new(dir, NULL, 1, 0, err,
	    sizeof(err));
	struct journal_record rec;
	uint64_t first = 0;

	if (journal_reader_next(r, &rec, NULL) == 1)
		first = rec.lsn;
	journal_reader_free(&r);
	return first;
}

static void
drops_what_every_cursor_passed(void)
{
	struct fixture f;
	struct retention_policy p = { 0, 0, 0, RETENTION_REFUSE, false };
	struct retention_result res;
	struct journal_segment *segs;
	size_t n;

	fixture_open(&f, 30, 60);
	journal_segments(f.j, &segs, &n);
	test_assert(n > 10);
	free(segs);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(res.segments_dropped > 0);
	test_assert(res.keep_from > 1 && res.keep_from <= 31);
	test_assert(res.bytes_after < res.bytes_before);
	test_assert(!res.refuse_writes);
	/* Everything the slowest replica still needs is there. */
	test_assert(first_readable(f.jdir) == res.keep_from);
	test_assert(first_readable(f.jdir) <= 31);
	/* Once both replicas have everything, all but the newest go. */
	cursor_store(f.c[0], 100);
	cursor_store(f.c[1], 100);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	journal_segments(f.j, &segs, &n);
	test_assert_int(n, 1);
	free(segs);
	fixture_close(&f);
}

static void
min_age_and_min_bytes_keep_segments(void)
{
	struct fixture f;
	struct retention_policy p = { 3600, 0, 0, RETENTION_REFUSE, false };
	struct retention_result res;

	fixture_open(&f, 100, 100);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.segments_dropped, 0);	/* all too young */
	p.min_age_s = 0;
	p.min_bytes = res.bytes_before;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.segments_dropped, 0);	/* all needed for size */
	p.min_bytes = res.bytes_before / 2;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(res.segments_dropped > 0);
	test_assert(res.bytes_after >= p.min_bytes);
	fixture_close(&f);
}

static void
needed_bodies_pin_their_segments(void)
{
	struct fixture f;
	struct retention_policy p = { 0, 0, 0, RETENTION_REFUSE, false };
	struct retention_result res;
	struct shadow_body b = { "", 5, 100, 0 };

	fixture_open(&f, 60, 60);
	/* Pretend LSN 5 is a body that the command at LSN 80 needs. */
	memset(b.guid, 'a', 40);
	shadow_begin(f.s);
	shadow_body_put(f.s, &b);
	shadow_body_need(f.s, b.guid);
	shadow_commit(f.s, 80);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(first_readable(f.jdir) <= 5);
	/* Once the replicas have LSN 80, the pin is gone. */
	cursor_store(f.c[0], 80);
	cursor_store(f.c[1], 80);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(first_readable(f.jdir) > 5);
	{
		struct shadow_body got;

		/* Its index entry went with its segment. */
		test_assert_int(shadow_body_get(f.s, b.guid, &got), -ENOENT);
	}
	fixture_close(&f);
}

static void
cap_refuse_keeps_everything(void)
{
	struct fixture f;
	struct retention_policy p = { 0, 0, 1000, RETENTION_REFUSE, false };
	struct retention_result res;

	fixture_open(&f, 0, 50);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(res.refuse_writes);
	test_assert_int(res.segments_dropped, 0);
	test_assert_int(first_readable(f.jdir), 1);
	test_assert_int(cursor_flags(f.c[0]), 0);
	fixture_close(&f);
}

static void
cap_resync_gives_up_the_slowest_replica(void)
{
	struct fixture f;
	struct retention_policy p = { 0, 0, 0, RETENTION_RESYNC, false };
	struct retention_result res;

	fixture_open(&f, 10, 90);
	/* A first pass without a cap measures the journal. */
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	p.max_bytes = res.bytes_after / 3;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.replicas_marked, 1);
	test_assert(cursor_flags(f.c[0]) & CURSOR_NEEDS_RESYNC);
	test_assert_int(cursor_flags(f.c[1]), 0);
	test_assert(first_readable(f.jdir) > 10);
	test_assert(first_readable(f.jdir) <= 91);	/* r2's data is kept */
	test_assert(!res.refuse_writes);
	fixture_close(&f);
}

/*
 * Over the cap with every replica caught up: min_age and min_bytes give
 * way, nobody is marked and nothing is refused -- even when the newest
 * segment alone is over the cap.
 */
static void
cap_with_replicas_caught_up_marks_and_refuses_nothing(void)
{
	struct fixture f;
	struct retention_policy p = { 3600, 0, 0, RETENTION_RESYNC, false };
	struct retention_result res;
	struct journal_segment *segs;
	size_t n;

	fixture_open(&f, 100, 100);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.segments_dropped, 0);	/* all too young */
	p.max_bytes = res.bytes_after / 3;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(res.segments_dropped > 0);
	test_assert_int(res.replicas_marked, 0);
	test_assert_int(cursor_flags(f.c[0]), 0);
	test_assert_int(cursor_flags(f.c[1]), 0);
	journal_segments(f.j, &segs, &n);
	test_assert_int(n, 1);
	free(segs);
	/* The newest segment alone is over a tiny cap: still nothing. */
	p.max_bytes = 1;
	p.cap = RETENTION_REFUSE;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(!res.refuse_writes);
	p.cap = RETENTION_RESYNC;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.replicas_marked, 0);
	test_assert_int(cursor_flags(f.c[0]), 0);
	fixture_close(&f);
}

/*
 * Under disk pressure what every replica has goes at once, however
 * young, and a newest segment every replica has is to be rolled; what
 * a replica lacks stays all the same.
 */
static void
pressure_drops_young_segments_and_rolls(void)
{
	struct fixture f;
	struct retention_policy p = { 3600, 1u << 30, 0, RETENTION_REFUSE, false };
	struct retention_result res;
	struct journal_segment *segs;
	struct acks a = { 0 };
	size_t n;

	fixture_open(&f, 50, 100);
	p.pressure = true;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(res.segments_dropped > 0);	/* young, but acknowledged */
	test_assert(first_readable(f.jdir) <= 51);	/* r1 lacks 51.. */
	test_assert(!res.roll);			/* r1 lacks the newest */
	cursor_store(f.c[0], 100);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert(res.roll);
	journal_segments(f.j, &segs, &n);
	test_assert_int(n, 1);			/* the newest stays ... */
	free(segs);
	journal_roll(f.j, ack_cb, &a);		/* ... until rolled */
	test_assert_int(wait_acks(f.j, &a, 1), 0);
	test_assert_int(a.err[0], 0);
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.segments_dropped, 1);
	test_assert(!res.roll);			/* empty: nothing to roll */
	journal_segments(f.j, &segs, &n);
	test_assert_int(n, 1);
	test_assert_int(segs[0].first, 101);
	test_assert_int(segs[0].last, 100);
	free(segs);
	/* Without pressure the same young segments stay. */
	fixture_close(&f);
	fixture_open(&f, 100, 100);
	p.pressure = false;
	test_assert_int(retention_run("s1", f.j, f.s, f.rep, 2, &p, now_us(),
	    &res), 0);
	test_assert_int(res.segments_dropped, 0);
	test_assert(!res.roll);
	fixture_close(&f);
}

TEST_MAIN(T(drops_what_every_cursor_passed),
    T(min_age_and_min_bytes_keep_segments),
    T(needed_bodies_pin_their_segments), T(cap_refuse_keeps_everything),
    T(cap_resync_gives_up_the_slowest_replica),
    T(cap_with_replicas_caught_up_marks_and_refuses_nothing),
    T(pressure_drops_young_segments_and_rolls))
