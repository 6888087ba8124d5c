/*
 * stress_follow.c -- a reader following a journal while the writer
 * appends, rolls, idles, fails and recovers, and retention drops what
 * the reader has read: randomized, to find the races the deterministic
 * tests in tests/unit/test_journal_follow.c do not know of yet.
 *
 *   stress_follow [DIR [SECONDS [SEED]]]    (/tmp, 60, time)
 *
 * STRESS_NO_ENOSPC=1 in the environment leaves out the failed header
 * writes (and so the recoveries).
 *
 * The main thread drives the journal as a store's loop thread does:
 * command records (self-describing text, make_payload()), bodies
 * streamed in random pieces (some dropped, some with a wrong GUID),
 * rolls, idle closes, drops of the segments the follower has read
 * (journal_drop_before, as retention), and now and then a new segment's
 * header write failing with ENOSPC, after which it recovers the journal
 * (journal_recover, as the disk guard).  A second thread follows with a
 * journal_reader up to the durable LSN, reads every body through
 * journal_reader_body (its SHA-1 checked against its GUID), trims the
 * reader at random when it is at the end, and sleeps a little now and
 * then inside its reads (longer after reading a body's zero header
 * slot), as the writer does between creating a segment and writing its
 * header and the driver before dropping a body, to widen the windows.  It checks every LSN is
 * seen once, in order, with the right bytes; at the end every LSN the
 * writer acknowledged must have been read with what was written.
 * Not a test (not in CI): run it by hand; it prints what it did and
 * exits 1 on the first inconsistency.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "storage/fileops.h"
#include "storage/journal.h"
#include "storage/segment.h"
#include "storage/workpool.h"
#include "tests/unit/journal_util.h"

#define MAXLSN (4u << 20)

/* What each LSN holds: a command's k + 1, or a body's size + 1 negated. */
static int64_t written[MAXLSN], seen[MAXLSN];
static uint64_t seen_lsn;		/* last LSN the follower read */
static int done_writing, failed;
static struct journal *J;
static int fail_header;			/* the next segment header: ENOSPC */
static unsigned long long n_fail_header, n_trim, n_drop, n_dropped,
    n_roll, n_idle, n_recover, n_abort, n_badbody, n_bodies, n_cmds,
    n_kept_failed, n_reads_zero, n_slot_waits;

static ssize_t
w_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	(void)ctx;
	if (off == 0 && n == SEG_HDR_SIZE &&
	    __atomic_exchange_n(&fail_header, 0, __ATOMIC_SEQ_CST)) {
		__atomic_add_fetch(&n_fail_header, 1, __ATOMIC_RELAXED);
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, p, n, off);
}

/* A slow disk: a new segment's header comes a little after its file. */
static int
w_open(void *ctx, const char *path, int flags, mode_t mode)
{
	static __thread unsigned seed = 777;
	int fd = open(path, flags, mode);

	(void)ctx;
	if (fd >= 0 && (flags & O_CREAT) && rand_r(&seed) % 2 == 0)
		usleep((useconds_t)(rand_r(&seed) % 500));
	return fd;
}

static __thread unsigned rd_seed;

static ssize_t
r_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
	ssize_t got = pread(fd, p, n, off);

	(void)ctx;
	if (got == REC_HDR_SIZE && ((const uint8_t *)p)[0] == 0 &&
	    rand_r(&rd_seed) % 2 == 0) {
		n_slot_waits++;
		usleep((useconds_t)(rand_r(&rd_seed) % 2000));	/* a slot */
	}
	else if (rand_r(&rd_seed) % 16 == 0)
		usleep((useconds_t)(rand_r(&rd_seed) % 200));
	return got;
}

static struct fileops w_fops, r_fops;

/* A body of n bytes made from k (the same k, the same bytes). */
static char *
body_bytes(uint64_t k, size_t n)
{
	char *p = malloc(n ? n : 1);
	uint64_t x = k * 0x9E3779B97F4A7C15ULL + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (char)((i & 3) ? (x >> 33) & 0xff : 'a' + i % 26);
	}
	return p;
}

static int
count_sink(void *arg, const void *p, size_t n)
{
	(void)p;
	*(uint64_t *)arg += n;
	return 0;
}

static void *
follower(void *arg)
{
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256];
	uint64_t last = 0;

	(void)arg;
	rd_seed = 12345;
	r = journal_reader_new(journal_dir(J), &r_fops, 1, 0, err,
	    sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "reader: %s\n", err);
		failed = 1;
		return NULL;
	}
	for (;;) {
		uint64_t upto = journal_durable_lsn(J), k, got = 0;
		int e, fin = __atomic_load_n(&done_writing, __ATOMIC_SEQ_CST);

		journal_reader_set_upto(r, upto);
		e = journal_reader_next(r, &rec, &raw);
		if (e < 0) {
			fprintf(stderr, "FAIL reader after LSN %llu: %s\n",
			    (unsigned long long)last,
			    journal_reader_errstr(r));
			failed = 1;
			break;
		}
		if (e == 0) {
			n_reads_zero++;
			if (fin && last >= journal_durable_lsn(J))
				break;
			if (rand_r(&rd_seed) % 4 == 0) {
				journal_reader_trim(r);
				n_trim++;
			}
			usleep((useconds_t)(rand_r(&rd_seed) % 300));
			continue;
		}
		if (rec.lsn != last + 1 || rec.lsn >= MAXLSN) {
			fprintf(stderr, "FAIL LSN %llu after %llu\n",
			    (unsigned long long)rec.lsn,
			    (unsigned long long)last);
			failed = 1;
			break;
		}
		if (rec.type == JOURNAL_BODY) {
			if ((e = journal_reader_body(r, &rec, count_sink,
			    &got)) < 0 || got != rec.raw_len) {
				fprintf(stderr, "FAIL body %llu: %s\n",
				    (unsigned long long)rec.lsn,
				    journal_reader_errstr(r));
				failed = 1;
				break;
			}
			seen[rec.lsn] = -(int64_t)rec.raw_len - 1;
		} else if (!payload_ok(&raw, &k)) {
			fprintf(stderr, "FAIL record %llu: wrong bytes\n",
			    (unsigned long long)rec.lsn);
			failed = 1;
			break;
		} else {
			seen[rec.lsn] = (int64_t)k + 1;
		}
		last = rec.lsn;
		__atomic_store_n(&seen_lsn, last, __ATOMIC_SEQ_CST);
	}
	journal_reader_free(&r);
	buf_free(&raw);
	return NULL;
}

/* Acks: the LSN each append got, and what it was. */
struct pend {
	int64_t what;
};

static void
on_done(void *arg, uint64_t lsn, int err)
{
	struct pend *p = arg;

	if (lsn != 0 && lsn < MAXLSN && p->what != 0) {
		if (err == 0)
			written[lsn] = p->what;
		else
			n_kept_failed++;	/* kept by recovery */
	}
	free(p);
}

static struct pend *
pend(int64_t what)
{
	struct pend *p = malloc(sizeof(*p));

	p->what = what;
	return p;
}

static void
drain(void)
{
	while (journal_pending_bytes(J) > 0) {
		journal_collect(J);
		usleep(200);
	}
	journal_flush(J, NULL, NULL);
	for (int i = 0; i < 50; i++) {
		journal_collect(J);
		usleep(100);
	}
}

int
main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : "/tmp";
	double secs = argc > 2 ? atof(argv[2]) : 60, t0;
	unsigned seed = argc > 3 ? (unsigned)atoi(argv[3]) :
	    (unsigned)time(NULL);
	struct journal_opts o = { .segment_bytes = 16384, .fops = &w_fops };
	char dir[400], err[512];
	struct buf cmd = BUF_INIT;
	pthread_t th;
	uint64_t k = 0, lsn, bad = 0, nread = 0;
	bool faults = getenv("STRESS_NO_ENOSPC") == NULL;

	snprintf(dir, sizeof(dir), "%s/stress-follow-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 2;
	}
	srand(seed);
	w_fops = fileops_posix;
	w_fops.pwrite = w_pwrite;
	w_fops.open = w_open;
	r_fops = fileops_posix;
	r_fops.pread = r_pread;
	if ((J = open_j(dir, &o)) == NULL)
		return 2;
	pthread_create(&th, NULL, follower, NULL);
	t0 = mono_seconds();
	while (mono_seconds() - t0 < secs && !failed && k + 64 < MAXLSN) {
		int dice = rand() % 100;

		journal_collect(J);
		if (journal_error(J) != 0) {
			drain();
			if (journal_recover(J, err, sizeof(err)) < 0) {
				fprintf(stderr, "FAIL recover: %s\n", err);
				failed = 1;
				break;
			}
			n_recover++;
		}
		if (journal_pending_bytes(J) > (4 << 20)) {
			usleep(500);
			continue;
		}
		if (dice < 55) {
			make_payload(&cmd, ++k);
			journal_append(J, JOURNAL_COMMAND, cmd.s, cmd.len,
			    on_done, pend((int64_t)k + 1));
			n_cmds++;
		} else if (dice < 75) {
			size_t n = (size_t)(rand() % 4 == 0 ? rand() % 300000 :
			    rand() % 5000), sent = 0;
			char *b = body_bytes(++k, n), guid[41];
			struct journal_body *jb;
			int how = rand() % 20;	/* 0 abort, 1 bad GUID */

			if (how == 0) {		/* big enough to be on disk */
				free(b);
				n = 150000 + (size_t)rand() % 250000;
				b = body_bytes(k, n);
			}
			sha1_hex(b, n, guid);
			if (how == 1)
				guid[0] = guid[0] == '0' ? '1' : '0';
			jb = journal_body_begin(J, guid, n);
			while (sent < n) {
				size_t piece = 1 + (size_t)rand() % 70000;

				if (piece > n - sent)
					piece = n - sent;
				journal_body_write(jb, b + sent, piece);
				sent += piece;
				if (how == 0 && sent > 140000 && rand() % 2)
					break;
			}
			if (how == 0) {
				/* Let the follower reach the slot first. */
				for (int w = 0; w < 100 && __atomic_load_n(
				    &seen_lsn, __ATOMIC_SEQ_CST) <
				    journal_durable_lsn(J); w++)
					usleep(200);
				usleep((useconds_t)(rand() % 2000));
				journal_body_abort(jb);
				n_abort++;
			} else {
				journal_body_end(jb, on_done, pend(how == 1 ?
				    0 : -(int64_t)n - 1));
				n_bodies++;
				n_badbody += how == 1;
			}
			free(b);
		} else if (dice < 82) {
			journal_roll(J, NULL, NULL);
			n_roll++;
		} else if (dice < 88) {
			journal_idle(J);
			n_idle++;
		} else if (dice < 95) {
			int d = journal_drop_before(J,
			    __atomic_load_n(&seen_lsn, __ATOMIC_SEQ_CST) + 1);

			n_drop++;
			if (d > 0)
				n_dropped += (unsigned)d;
		} else if (dice < 96 && faults) {
			__atomic_store_n(&fail_header, 1, __ATOMIC_SEQ_CST);
		} else {
			usleep((useconds_t)(rand() % 2000));
		}
	}
	drain();
	if (journal_error(J) != 0 && journal_recover(J, err, sizeof(err)) < 0)
		fprintf(stderr, "recover: %s\n", err);
	__atomic_store_n(&done_writing, 1, __ATOMIC_SEQ_CST);
	pthread_join(th, NULL);
	for (lsn = 1; lsn < MAXLSN && lsn <= journal_durable_lsn(J); lsn++) {
		nread += seen[lsn] != 0;
		if (written[lsn] != 0 && seen[lsn] != written[lsn]) {
			if (bad++ < 5)
				fprintf(stderr, "FAIL LSN %llu: wrote %lld, "
				    "read %lld\n", (unsigned long long)lsn,
				    (long long)written[lsn],
				    (long long)seen[lsn]);
			failed = 1;
		}
	}
	printf("seed=%u seconds=%.1f durable_lsn=%llu read=%llu commands=%llu "
	    "bodies=%llu bad_bodies=%llu aborted=%llu rolls=%llu idles=%llu "
	    "drops=%llu segments_dropped=%llu header_enospc=%llu "
	    "recoveries=%llu kept_despite_failed_ack=%llu trims=%llu "
	    "reads_at_end=%llu slot_waits=%llu result=%s\n", seed, mono_seconds() - t0,
	    (unsigned long long)journal_durable_lsn(J),
	    (unsigned long long)nread, n_cmds, n_bodies, n_badbody, n_abort,
	    n_roll, n_idle, n_drop, n_dropped, n_fail_header, n_recover,
	    n_kept_failed, n_trim, n_reads_zero, n_slot_waits,
	    failed ? "FAIL" : "ok");
	journal_close(&J);
	buf_free(&cmd);
	rm_rf(dir);
	return failed;
}
