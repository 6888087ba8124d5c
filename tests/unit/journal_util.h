/*
 * journal_util.h -- helpers shared by the journal tests.
 */
#ifndef SR_JOURNAL_UTIL_H
#define SR_JOURNAL_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "storage/journal.h"

/* Opens the journal in dir (NULL, and the reason printed, on failure). */
static inline struct journal *
open_j(const char *dir, const struct journal_opts *o)
{
	struct journal *j = NULL;
	char err[512];

	if (journal_open(dir, o, &j, err, sizeof(err)) < 0) {
		fprintf(stderr, "journal_open: %s\n", err);
		return NULL;
	}
	return j;
}

/* Completion results, indexed by the order of appends. */
struct acks {
	size_t n;
	uint64_t lsn[4096];
	int err[4096];
};

static inline void
ack_cb(void *arg, uint64_t lsn, int err)
{
	struct acks *a = arg;

	if (a->n < 4096) {
		a->lsn[a->n] = lsn;
		a->err[a->n] = err;
	}
	a->n++;
}

/* Collects until a->n reaches want (or 10 s pass). */
static inline int
wait_acks(struct journal *j, struct acks *a, size_t want)
{
	int i;

	for (i = 0; i < 10000 && a->n < want; i++) {
		journal_collect(j);
		if (a->n < want)
			usleep(1000);
	}
	return a->n >= want ? 0 : -ETIMEDOUT;
}

/* Deterministic payload number k, of a length that varies with k. */
static inline void
make_payload(struct buf *b, uint64_t k)
{
	size_t len = 20 + (size_t)((k * 7919) % 3000), i;

	buf_reset(b);
	buf_printf(b, "APPLY TEST %%(K %llu) ", (unsigned long long)k);
	for (i = b->len; i < len; i++)
		buf_putc(b, (char)('a' + (k + i) % 26));
}

/* Checks a payload read back is make_payload(k) for its own k. */
static inline int
payload_ok(const struct buf *raw, uint64_t *k_out)
{
	unsigned long long k;
	struct buf want = BUF_INIT;
	int ok;

	if (sscanf(buf_cstring(raw), "APPLY TEST %%(K %llu)", &k) != 1)
		return 0;
	make_payload(&want, k);
	ok = want.len == raw->len && memcmp(want.s, raw->s, raw->len) == 0;
	buf_free(&want);
	*k_out = k;
	return ok;
}

static inline void
sha1_hex(const void *p, size_t n, char out[41])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;

	EVP_Digest(p, n, d, &dl, EVP_sha1(), NULL);
	journal_guid_hex(d, out);
}

/*
 * n bytes made from seed (malloc'd; the caller frees), drawn from
 * alphabet (a body of lines: some compression) or, NULL, from all 256
 * byte values (incompressible); their SHA-1 in hex, a body's GUID, in
 * guid.
 */
static inline char *
seeded_body(size_t n, unsigned seed, const char *alphabet, char guid[41])
{
	char *p = malloc(n);
	size_t i, na = alphabet ? strlen(alphabet) : 256;
	uint64_t x = seed;

	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = alphabet ? alphabet[(x >> 33) % na] :
		    (char)((x >> 33) & 0xff);
	}
	sha1_hex(p, n, guid);
	return p;
}

static inline char *
make_tmpdir(void)
{
	char *t = strdup("/tmp/syncrelay-test-journal-XXXXXX");

	if (mkdtemp(t) == NULL)
		abort();
	return t;
}

static inline void
rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
