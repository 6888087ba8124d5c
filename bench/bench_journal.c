/*
 * bench_journal.c -- journal append throughput, compression ratio on
 * realistic mail, and peak memory while storing one huge message.
 *
 *   bench_journal [DIR]      (DIR: where journals are made; default /tmp)
 *
 * 1. Throughput: 2,000 messages of ~4 KB and 200 of ~200 KB (mixed mail,
 *    see mailgen.h) appended as body records, with an APPLY MAILBOX
 *    command record per 64 messages, up to 64 MB in flight as a master's
 *    APPLY MESSAGE batches are; the clock runs from the first append to
 *    the last completion, every record made durable by fdatasync.
 *    Then 2,000 small commands one at a time (one in flight, as a master
 *    session sends them): records/s and append-to-durable latency.
 * 2. Compression: bytes stored per byte of mail, for text-only mail and
 *    for mixed mail with attachments.
 * 3. Memory: one 100 MB message streamed in 64 KB pieces (generated
 *    twice, once for its SHA-1 and once to store it), keeping at most
 *    8 MB queued; prints the process's peak RSS.
 * 4. Reading back (`bench_journal DIR read`): 5,000 messages of ~4 KB
 *    stored, then each opened as a body stream at its segment and
 *    offset, read whole (size and SHA-1 checked) and closed, one after
 *    the other, as a replica link sends MESSAGEs: bodies/s.  This is
 *    the cost per message of the replay's reading, without the network.
 *
 * Targets (issue 3): >= 100 MB/s of payload, <= 0.4 bytes stored per
 * byte of text mail, peak RSS <= 64 MiB.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bench/mailgen.h"
#include "lib/util.h"
#include "storage/journal.h"

static int completed, failed;

static void
done(void *arg, uint64_t lsn, int err)
{
	completed++;
	if (err)
		failed++;
}

static struct journal *
open_fresh(const char *base, const char *name)
{
	char dir[4096], cmd[4200], err[512];
	struct journal *j;

	snprintf(dir, sizeof(dir), "%s/bench-journal-%ld-%s", base,
	    (long)getpid(), name);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		exit(1);
	if (journal_open(dir, NULL, &j, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return j;
}

static void
remove_journal(struct journal *j)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", journal_dir(j));
	journal_close(&j);
	if (system(cmd) != 0)
		exit(1);
}

static void
sha1_hex(const void *p, size_t n, char out[41])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	uint8_t g[20];

	EVP_Digest(p, n, d, &dl, EVP_sha1(), NULL);
	memcpy(g, d, 20);
	journal_guid_hex(g, out);
}

static void
wait_for(struct journal *j, int target, uint64_t max_pending)
{
	while (completed < target || journal_pending_bytes(j) > max_pending) {
		if (journal_collect(j) == 0)
			usleep(200);
	}
}

/* Appends one body whole (in 64 KB pieces); returns its stored size. */
static void
append_body(struct journal *j, const struct buf *m)
{
	char guid[41];
	struct journal_body *b;
	size_t off;

	sha1_hex(m->s, m->len, guid);
	b = journal_body_begin(j, guid, m->len);
	for (off = 0; off < m->len; off += 65536)
		journal_body_write(b, m->s + off, m->len - off < 65536 ?
		    m->len - off : 65536);
	journal_body_end(b, done, NULL);
}

static void
throughput(const char *base)
{
	struct journal *j = open_fresh(base, "tput");
	struct mailgen g;
	struct buf m = BUF_INIT, cmd = BUF_INIT;
	struct journal_stats st;
	uint64_t payload = 0;
	int appended = 0, i;
	double t0, t;

	mailgen_init(&g, 1);
	completed = failed = 0;
	t0 = mono_seconds();
	for (i = 0; i < 2200; i++) {
		mailgen_message(&g, &m, (uint64_t)i, i < 2000 ? 4096 : 200000,
		    true);
		append_body(j, &m);
		payload += m.len;
		appended++;
		if (i % 64 == 63) {
			int k;

			buf_reset(&cmd);
			buf_printf(&cmd, "APPLY MAILBOX %%(UNIQUEID x MBOXNAME "
			    "user.bench LAST_UID %d RECORD (", i + 1);
			for (k = i - 63; k <= i; k++)
				buf_printf(&cmd, "%%(UID %d MODSEQ %d FLAGS () "
				    "INTERNALDATE 1795951094 SIZE 4096 GUID "
				    "%040x) ", k + 1, k + 2, k);
			buf_puts(&cmd, "))");
			journal_append(j, JOURNAL_COMMAND, cmd.s, cmd.len, done,
			    NULL);
			payload += cmd.len;
			appended++;
		}
		wait_for(j, 0, (uint64_t)64 << 20);
	}
	wait_for(j, appended, 0);
	t = mono_seconds() - t0;
	journal_get_stats(j, &st);
	printf("append: %d records (%d bodies of 4 KB and 200 KB, mixed mail), "
	    "%.1f MB payload in %.2f s: %.0f records/s, %.1f MB/s; "
	    "%llu group commits (fdatasync); %d failed\n", appended, 2200,
	    (double)payload / 1e6, t, appended / t, (double)payload / 1e6 / t,
	    (unsigned long long)st.fsyncs, failed);
	buf_free(&m);
	buf_free(&cmd);
	remove_journal(j);
}

/* Each body opened at its place, read whole and closed, as a link does. */
static void
read_back(const char *base)
{
	enum { N = 5000 };
	struct journal *j = open_fresh(base, "read");
	static struct journal_record recs[N];
	struct journal_record rec;
	struct journal_reader *r;
	struct mailgen g;
	struct buf m = BUF_INIT, out = BUF_INIT;
	char err[512];
	uint64_t bytes = 0;
	double t0, t;
	int i, n = 0, pass;

	mailgen_init(&g, 3);
	completed = failed = 0;
	for (i = 0; i < N; i++) {
		mailgen_message(&g, &m, (uint64_t)i, 4096, false);
		append_body(j, &m);
		wait_for(j, 0, (uint64_t)16 << 20);
	}
	wait_for(j, N, 0);
	r = journal_reader_new(journal_dir(j), NULL, 1, UINT64_MAX, err,
	    sizeof(err));
	while (r != NULL && n < N && journal_reader_next(r, &rec, &out) == 1)
		recs[n++] = rec;
	journal_reader_free(&r);
	if (n != N || failed) {
		fprintf(stderr, "read: %d of %d records stored\n", n, N);
		exit(1);
	}
	/* Twice: the first pass warms the page cache; the second is timed. */
	for (pass = 0; pass < 2; pass++) {
		bytes = 0;
		t0 = mono_seconds();
		for (i = 0; i < N; i++) {
			struct journal_body_stream *bs;
			ssize_t got;

			bs = journal_body_stream_open_at(journal_dir(j), NULL,
			    recs[i].lsn, recs[i].segment, recs[i].offset, &rec,
			    err, sizeof(err));
			if (bs == NULL) {
				fprintf(stderr, "read: %s\n", err);
				exit(1);
			}
			do {
				buf_reset(&out);
				got = journal_body_stream_read(bs, &out, 65536);
				bytes += got > 0 ? (uint64_t)got : 0;
			} while (got > 0);
			journal_body_stream_free(&bs);
			if (got < 0) {
				fprintf(stderr, "read: body %d failed\n", i);
				exit(1);
			}
		}
		t = mono_seconds() - t0;
	}
	printf("read back: %d bodies of ~4 KB (%.1f MB) opened at their "
	    "place, read and checked one by one in %.3f s: %.0f bodies/s, "
	    "%.1f us each\n", N, (double)bytes / 1e6, t, N / t, t / N * 1e6);
	buf_free(&m);
	buf_free(&out);
	remove_journal(j);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One command in flight, as a master sends them: latency to durable. */
static void
serial_latency(const char *base)
{
	struct journal *j = open_fresh(base, "serial");
	static double lat[2000];
	struct buf cmd = BUF_INIT;
	double t0, total;
	int i;

	completed = failed = 0;
	t0 = mono_seconds();
	for (i = 0; i < 2000; i++) {
		double t = mono_seconds();

		buf_reset(&cmd);
		buf_printf(&cmd, "APPLY MAILBOX %%(UNIQUEID x MBOXNAME user.b%d "
		    "LAST_UID 1 RECORD (%%(UID 1 MODSEQ %d FLAGS (\\Seen) "
		    "INTERNALDATE 1795951094 SIZE 4096 GUID %040x)))", i % 50,
		    i + 2, i);
		journal_append(j, JOURNAL_COMMAND, cmd.s, cmd.len, done, NULL);
		wait_for(j, i + 1, 0);
		lat[i] = mono_seconds() - t;
	}
	total = mono_seconds() - t0;
	qsort(lat, 2000, sizeof(lat[0]), cmp_double);
	printf("serial commands: 2000 appended one at a time in %.2f s: "
	    "%.0f records/s; append-to-durable latency p50 %.2f ms, p99 "
	    "%.2f ms\n", total, 2000 / total, lat[1000] * 1e3,
	    lat[1980] * 1e3);
	buf_free(&cmd);
	remove_journal(j);
}

static void
ratio(const char *base, bool attachments, const char *label)
{
	struct journal *j = open_fresh(base, "ratio");
	struct mailgen g;
	struct buf m = BUF_INIT;
	struct journal_stats st;
	uint64_t raw = 0;
	int i;

	mailgen_init(&g, 2);
	completed = failed = 0;
	for (i = 0; i < 1000; i++) {
		/* sizes from 2 KB to ~100 KB, most small */
		size_t target = 2000 + (size_t)(i * i % 97) * 1000;

		mailgen_message(&g, &m, (uint64_t)i, target, attachments);
		append_body(j, &m);
		raw += m.len;
		wait_for(j, 0, (uint64_t)32 << 20);
	}
	wait_for(j, 1000, 0);
	journal_get_stats(j, &st);
	printf("compression, %s: %.1f MB of mail stored in %.1f MB: %.3f "
	    "bytes on disk per byte (headers included)\n", label,
	    (double)raw / 1e6, (double)st.bytes / 1e6,
	    (double)st.bytes / (double)raw);
	buf_free(&m);
	remove_journal(j);
}

/* The i-th 1 MB piece of the huge message, the same every time. */
static void
huge_piece(struct buf *b, int i)
{
	struct mailgen g;

	mailgen_init(&g, 1000 + (uint64_t)i);
	mailgen_message(&g, b, (uint64_t)i, 1 << 20, false);
	b->len = 1 << 20 < b->len ? 1 << 20 : b->len;
}

static void
huge_message(const char *base)
{
	struct journal *j = open_fresh(base, "huge");
	struct buf piece = BUF_INIT;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	uint8_t g[20];
	char guid[41];
	uint64_t size = 0;
	struct journal_body *b;
	struct rusage ru;
	double t0;
	int i;

	EVP_DigestInit_ex(sha, EVP_sha1(), NULL);
	for (i = 0; i < 100; i++) {
		huge_piece(&piece, i);
		EVP_DigestUpdate(sha, piece.s, piece.len);
		size += piece.len;
	}
	EVP_DigestFinal_ex(sha, d, &dl);
	memcpy(g, d, 20);
	journal_guid_hex(g, guid);
	completed = failed = 0;
	t0 = mono_seconds();
	b = journal_body_begin(j, guid, size);
	for (i = 0; i < 100; i++) {
		size_t off;

		huge_piece(&piece, i);
		for (off = 0; off < piece.len; off += 65536) {
			journal_body_write(b, piece.s + off, piece.len - off <
			    65536 ? piece.len - off : 65536);
			wait_for(j, 0, (uint64_t)8 << 20);
		}
	}
	journal_body_end(b, done, NULL);
	wait_for(j, 1, 0);
	getrusage(RUSAGE_SELF, &ru);
	printf("huge message: %.1f MB stored in %.2f s (%s); peak RSS of the "
	    "whole process %.1f MiB\n", (double)size / 1e6, mono_seconds() - t0,
	    failed ? "FAILED" : "ok", (double)ru.ru_maxrss / 1024.0);
	EVP_MD_CTX_free(sha);
	buf_free(&piece);
	remove_journal(j);
}

int
main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : "/tmp";
	const char *what = argc > 2 ? argv[2] : "all";

	/* The memory figure first, before anything else has grown the heap. */
	if (!strcmp(what, "all") || !strcmp(what, "memory"))
		huge_message(base);
	if (!strcmp(what, "all") || !strcmp(what, "append"))
		throughput(base);
	if (!strcmp(what, "all") || !strcmp(what, "serial"))
		serial_latency(base);
	if (!strcmp(what, "all") || !strcmp(what, "read"))
		read_back(base);
	if (!strcmp(what, "all") || !strcmp(what, "ratio")) {
		ratio(base, false, "text mail");
		ratio(base, true, "mixed mail (a third with HTML + a base64 "
		    "attachment)");
	}
	return 0;
}
