/*
 * test_metrics.c -- counting result codes (stats_count_code) and the
 * text exposition of store snapshots (metrics_format), without sockets.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "relay/ops/metrics.h"
#include "relay/ops/stats.h"
#include "tests/unit/test.h"

static void
count_codes(void)
{
	static const struct {
		const char *code;
		size_t n_after;		/* table entries after counting it */
	} steps[] = {
		{ "IMAP_PROTOCOL_ERROR", 1 },
		{ "NO", 2 },
		{ "IMAP_PROTOCOL_ERROR", 2 },
		{ "BAD", 3 },
		{ "NO", 3 },
		{ "IMAP_PROTOCOL_ERROR", 3 },
	};
	struct stats_code_count t[STATS_MAX_CODES];
	size_t n = 0, i;

	memset(t, 0, sizeof(t));
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		stats_count_code(t, &n, steps[i].code);
		test_assert_int(n, steps[i].n_after);
	}
	test_assert_str(t[0].code, "IMAP_PROTOCOL_ERROR");
	test_assert_int(t[0].n, 3);
	test_assert_str(t[1].code, "NO");
	test_assert_int(t[1].n, 2);
	test_assert_str(t[2].code, "BAD");
	test_assert_int(t[2].n, 1);
}

/* Past STATS_MAX_CODES distinct codes, the last slot counts "other". */
static void
count_codes_overflow(void)
{
	struct stats_code_count t[STATS_MAX_CODES];
	char code[32];
	size_t n = 0, i;

	memset(t, 0, sizeof(t));
	for (i = 0; i < STATS_MAX_CODES + 5; i++) {
		snprintf(code, sizeof(code), "CODE_%zu", i);
		stats_count_code(t, &n, code);
	}
	test_assert_int(n, STATS_MAX_CODES);
	test_assert_str(t[STATS_MAX_CODES - 2].code, "CODE_14");
	test_assert_int(t[STATS_MAX_CODES - 2].n, 1);
	test_assert_str(t[STATS_MAX_CODES - 1].code, "other");
	test_assert_int(t[STATS_MAX_CODES - 1].n, 6);
	/* A code seen before still counts in its own slot. */
	stats_count_code(t, &n, "CODE_3");
	test_assert_int(t[3].n, 2);
	stats_count_code(t, &n, "CODE_99");
	test_assert_int(t[STATS_MAX_CODES - 1].n, 7);
}

static bool
has_line(const struct buf *b, const char *line)
{
	const char *p = buf_cstring(b);
	size_t n = strlen(line);

	for (; (p = strstr(p, line)) != NULL; p++)
		if ((p == buf_cstring(b) || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void
format_store(void)
{
	struct stats_link link;
	struct stats_store st;
	struct buf out = BUF_INIT;
	size_t i;

	memset(&st, 0, sizeof(st));
	memset(&link, 0, sizeof(link));
	snprintf(st.name, sizeof(st.name), "s\"1\\\n");
	st.head_lsn = 42;
	st.fsyncs = 5;
	for (i = 0; i < STATS_FSYNC_BUCKETS; i++)
		st.fsync_buckets[i] = i < 3 ? 2 : 4;
	st.fsync_seconds_sum = 0.25;
	snprintf(st.errors[0].code, sizeof(st.errors[0].code), "NO");
	st.errors[0].n = 3;
	st.nerrors = 1;
	snprintf(link.name, sizeof(link.name), "r1");
	snprintf(link.state, sizeof(link.state), "catching up");
	link.lag_records = 40;
	link.lag_seconds = 1.5;
	st.links = &link;
	st.nlinks = 1;

	metrics_format(&out, &st, 1, 1000.0);
	test_assert(has_line(&out, "syncrelay_up 1"));
	test_assert(has_line(&out, "# TYPE syncrelay_store_head_lsn gauge"));
	test_assert(has_line(&out,
	    "syncrelay_store_head_lsn{store=\"s\\\"1\\\\\\n\"} 42"));
	test_assert(has_line(&out, "syncrelay_store_errors_total{store=\"s\\"
	    "\"1\\\\\\n\",code=\"NO\"} 3"));
	test_assert(has_line(&out, "syncrelay_journal_fsync_duration_seconds_"
	    "bucket{store=\"s\\\"1\\\\\\n\",le=\"0.0001\"} 2"));
	test_assert(has_line(&out, "syncrelay_journal_fsync_duration_seconds_"
	    "bucket{store=\"s\\\"1\\\\\\n\",le=\"1\"} 4"));
	test_assert(has_line(&out, "syncrelay_journal_fsync_duration_seconds_"
	    "bucket{store=\"s\\\"1\\\\\\n\",le=\"+Inf\"} 5"));
	test_assert(has_line(&out, "syncrelay_journal_fsync_duration_seconds_"
	    "count{store=\"s\\\"1\\\\\\n\"} 5"));
	test_assert(has_line(&out, "syncrelay_journal_fsync_duration_seconds_"
	    "sum{store=\"s\\\"1\\\\\\n\"} 0.25"));
	test_assert(has_line(&out, "syncrelay_replica_state{store=\"s\\\"1"
	    "\\\\\\n\",replica=\"r1\",state=\"catching_up\"} 1"));
	test_assert(has_line(&out, "syncrelay_replica_state{store=\"s\\\"1"
	    "\\\\\\n\",replica=\"r1\",state=\"down\"} 0"));
	test_assert(has_line(&out, "syncrelay_replica_lag_records{store=\"s"
	    "\\\"1\\\\\\n\",replica=\"r1\"} 40"));
	test_assert(has_line(&out, "syncrelay_replica_lag_seconds{store=\"s"
	    "\\\"1\\\\\\n\",replica=\"r1\"} 1.5"));
	/* A paused link shows paused, whatever its connection does. */
	link.paused = true;
	buf_reset(&out);
	metrics_format(&out, &st, 1, 1000.0);
	test_assert(has_line(&out, "syncrelay_replica_state{store=\"s\\\"1"
	    "\\\\\\n\",replica=\"r1\",state=\"paused\"} 1"));
	test_assert(has_line(&out, "syncrelay_replica_state{store=\"s\\\"1"
	    "\\\\\\n\",replica=\"r1\",state=\"catching_up\"} 0"));
	buf_free(&out);
}

TEST_MAIN({ "count_codes", count_codes },
    { "count_codes_overflow", count_codes_overflow },
    { "format_store", format_store })
