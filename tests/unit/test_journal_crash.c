/*
 * test_journal_crash.c -- SIGKILL a writer at random points, many times.
 *
 * Each round forks a child that appends commands and bodies to a
 * journal as fast as it can and reports every completion ("LSN K") on a
 * pipe the moment the journal says the record is durable.  The parent
 * kills the child with SIGKILL after a random delay, then opens the
 * journal (recovery) and checks that every reported record is there,
 * intact, under its LSN; that LSNs run without gaps; and that nothing
 * after a torn tail is returned (every record read verifies).  A
 * single pwrite is not interrupted by SIGKILL, so torn tails come from
 * the records written in several steps: bodies, written header-last.
 *
 * Every 10 rounds start over in a fresh directory, so each check reads
 * a journal of bounded size while still recovering it many times over.
 * ROUNDS (default 300) can be changed with SYNCRELAY_CRASH_ROUNDS.
 */
#include "autoconf.h"

#include <signal.h>
#include <sys/wait.h>

#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

static int report_fd;

struct child_ack {
	uint64_t k;		/* what was appended */
	int body;
};

static int child_acked;

static void
child_done(void *arg, uint64_t lsn, int err)
{
	struct child_ack *c = arg;
	char line[64];
	int n;

	child_acked++;
	if (err == 0) {
		n = snprintf(line, sizeof(line), "%llu %llu %d\n",
		    (unsigned long long)lsn, (unsigned long long)c->k, c->body);
		if (write(report_fd, line, (size_t)n) != n)
			_exit(3);
	}
	free(c);
}

/*
 * Body number k: a header, then pseudo-random (incompressible) bytes, up
 * to ~1 MB, so a body takes several writes and a kill often lands in the
 * middle of one.
 */
static void
make_body(struct buf *b, uint64_t k)
{
	size_t n = 1000 + (size_t)((k * 104729) % 1000000), i;
	uint64_t x = k * 0x9E3779B97F4A7C15ull + 1;

	buf_reset(b);
	buf_printf(b, "Subject: body %llu\r\n\r\n", (unsigned long long)k);
	buf_reserve(b, n);
	for (i = b->len; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b->s[i] = (char)x;
	}
	b->len = n;
	b->s[n] = '\0';
}

static void
child_main(const char *dir, uint64_t k0, unsigned seed)
{
	struct journal_opts o = { .segment_bytes = 4 << 20 };
	struct journal *j;
	struct buf b = BUF_INIT;
	char err[256];
	uint64_t k;

	if (journal_open(dir, &o, &j, err, sizeof(err)) < 0)
		_exit(2);
	/* Tell the parent that appending starts now. */
	if (write(report_fd, "R\n", 2) != 2)
		_exit(3);
	srand(seed);
	for (k = k0;; k++) {
		struct child_ack *c = calloc(1, sizeof(*c));

		c->k = k;
		if (rand() % 4 == 0) {
			char guid[41];
			struct journal_body *jb;
			size_t off;

			c->body = 1;
			make_body(&b, k);
			sha1_hex(b.s, b.len, guid);
			jb = journal_body_begin(j, guid, b.len);
			for (off = 0; off < b.len; off += 65536)
				journal_body_write(jb, b.s + off, b.len - off <
				    65536 ? b.len - off : 65536);
			journal_body_end(jb, child_done, c);
		} else {
			make_payload(&b, k);
			journal_append(j, JOURNAL_COMMAND, b.s, b.len,
			    child_done, c);
		}
		/* One command in flight, as a master session has: the
		 * completion is reported before the next append. */
		while (child_acked < (int)(k - k0 + 1)) {
			journal_collect(j);
			if (child_acked < (int)(k - k0 + 1))
				usleep(100);
		}
	}
}

struct expect {
	uint64_t lsn, k;
	int body;
};

static int
body_sink(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n);
}

/* Recovers the journal and checks everything acknowledged is there. */
static int
verify(const char *dir, const struct expect *ex, size_t nex,
    uint64_t *last_lsn, uint64_t *max_k)
{
	struct journal *j;
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT, want = BUF_INIT;
	char err[512];
	uint64_t prev = 0, k;
	size_t e = 0;
	int st, bad = 0;

	if (journal_open(dir, NULL, &j, err, sizeof(err)) < 0) {
		fprintf(stderr, "recovery failed: %s\n", err);
		return -1;
	}
	journal_close(&j);
	r = journal_reader_new(dir, NULL, 1, 0, err, sizeof(err));
	while ((st = journal_reader_next(r, &rec, &raw)) == 1) {
		if (rec.lsn != prev + 1) {
			fprintf(stderr, "gap: %llu after %llu\n",
			    (unsigned long long)rec.lsn,
			    (unsigned long long)prev);
			bad++;
		}
		prev = rec.lsn;
		if (rec.type == JOURNAL_BODY) {
			unsigned long long bk;

			buf_reset(&raw);
			if (journal_reader_body(r, &rec, body_sink, &raw) != 0 ||
			    sscanf(buf_cstring(&raw), "Subject: body %llu",
			    &bk) != 1) {
				fprintf(stderr, "body %llu damaged\n",
				    (unsigned long long)rec.lsn);
				bad++;
				continue;
			}
			make_body(&want, bk);
			if (want.len != raw.len ||
			    memcmp(want.s, raw.s, raw.len) != 0)
				bad++;
			k = bk;
		} else if (!payload_ok(&raw, &k)) {
			fprintf(stderr, "record %llu damaged\n",
			    (unsigned long long)rec.lsn);
			bad++;
			continue;
		}
		if (k > *max_k)
			*max_k = k;
		while (e < nex && ex[e].lsn < rec.lsn)
			e++;
		if (e < nex && ex[e].lsn == rec.lsn &&
		    (ex[e].k != k || ex[e].body != (rec.type == JOURNAL_BODY))) {
			fprintf(stderr, "LSN %llu holds %llu, acked %llu\n",
			    (unsigned long long)rec.lsn, (unsigned long long)k,
			    (unsigned long long)ex[e].k);
			bad++;
		}
	}
	if (st < 0) {
		fprintf(stderr, "reader: %s\n", journal_reader_errstr(r));
		bad++;
	}
	if (nex > 0 && prev < ex[nex - 1].lsn) {
		fprintf(stderr, "acked LSN %llu lost (journal ends at %llu)\n",
		    (unsigned long long)ex[nex - 1].lsn,
		    (unsigned long long)prev);
		bad++;
	}
	*last_lsn = prev;
	journal_reader_free(&r);
	buf_free(&raw);
	buf_free(&want);
	return bad ? -1 : 0;
}

static void
sigkill_rounds(void)
{
	const char *env = getenv("SYNCRELAY_CRASH_ROUNDS");
	int rounds = env ? atoi(env) : 300, round;
	char *dir = make_tmpdir();
	struct expect *ex = NULL;
	size_t nex = 0, cap = 0;
	uint64_t next_k = 1, last_lsn = 0, max_k = 0, total_acked = 0;
	unsigned seed = 12345;

	for (round = 0; round < rounds; round++) {
		int fds[2];
		pid_t pid;
		char buf[65536], *line;
		size_t have = 0;
		ssize_t n;
		useconds_t delay;

		if (round > 0 && round % 10 == 0) {
			rm_rf(dir);
			free(dir);
			dir = make_tmpdir();
			nex = 0;
			next_k = 1;
			max_k = 0;
		}
		if (pipe(fds) < 0)
			abort();
		seed = seed * 1103515245u + 12345u;
		delay = 500 + (seed >> 8) % 20000;	/* 0.5..20.5 ms */
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			report_fd = fds[1];
			child_main(dir, next_k, seed);
			_exit(0);
		}
		close(fds[1]);
		/* Wait for the child to be appending, then kill it. */
		if (read(fds[0], buf, 2) != 2 || buf[0] != 'R')
			abort();
		usleep(delay);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		/* Everything the child reported before it died. */
		while ((n = read(fds[0], buf + have, sizeof(buf) - have - 1)) >
		    0) {
			have += (size_t)n;
			buf[have] = '\0';
			line = buf;
			for (;;) {
				char *nl = strchr(line, '\n');
				unsigned long long l, k;
				int body;

				if (nl == NULL)
					break;
				if (sscanf(line, "%llu %llu %d", &l, &k,
				    &body) == 3) {
					if (nex == cap) {
						cap = cap ? cap * 2 : 1024;
						ex = realloc(ex, cap *
						    sizeof(*ex));
					}
					ex[nex++] = (struct expect){ l, k, body };
					total_acked++;
				}
				line = nl + 1;
			}
			have -= (size_t)(line - buf);
			memmove(buf, line, have);
		}
		close(fds[0]);
		if (verify(dir, ex, nex, &last_lsn, &max_k) < 0) {
			fprintf(stderr, "round %d (delay %u us) failed\n", round,
			    (unsigned)delay);
			test_assert(0);
			break;
		}
		/* Later rounds only need to re-check the newest acks. */
		if (nex > 64) {
			memmove(ex, ex + nex - 64, 64 * sizeof(*ex));
			nex = 64;
		}
		next_k = max_k + 1;
	}
	printf("# %d rounds, %llu records acknowledged, journal ends at LSN "
	    "%llu\n", round, (unsigned long long)total_acked,
	    (unsigned long long)last_lsn);
	test_assert(total_acked > 0);
	free(ex);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(sigkill_rounds))
