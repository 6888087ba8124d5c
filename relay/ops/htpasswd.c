/*
 * htpasswd.c -- checks a scraper's user and password against an
 * htpasswd file (see htpasswd.h).
 *
 * The file is read whole at load (start, SIGHUP) and never on a
 * request.  A password is checked by crypt_r(3) with the stored hash as
 * setting, the result compared in constant time.  bcrypt costs
 * milliseconds (htpasswd -B's cost 5) to a second (cost 16) of the event
 * loop, so a user whose password matched keeps a SHA-256 of a per-load
 * random key and that password: a Prometheus scraping every 15 s pays
 * bcrypt once per reload, not per scrape.  A failed attempt always pays
 * it; the metrics server's connection limit bounds how many wait.
 */
#include "autoconf.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "relay/ops/htpasswd.h"

#define HTPASSWD_MAX_BYTES (1u << 20)
#define HTPASSWD_MAX_LINE 4096

struct htpasswd_user {
	char *name;
	char *hash;
	bool remembered;
	unsigned char digest[32];	/* SHA-256(key, password) once matched */
};

struct htpasswd {
	struct htpasswd_user *users;
	size_t n;
	unsigned char key[32];
	struct crypt_data *cd;		/* crypt_r's scratch, 32 KB */
};

/* Compares two byte strings without an early exit. */
static bool
same_bytes(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static void
password_digest(const struct htpasswd *h, const char *password,
    unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 32;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, h->key, sizeof(h->key)) != 1 ||
	    EVP_DigestUpdate(ctx, password, strlen(password)) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx);
}

/* Parses one "user:hash" line into h; returns 0, or -1 with err set. */
static int
add_line(struct htpasswd *h, const char *path, unsigned lineno, char *line,
    char *err, size_t err_len)
{
	char *colon = strchr(line, ':');
	struct htpasswd_user *u;

	if (colon == NULL || colon == line || colon[1] == '\0') {
		snprintf(err, err_len, "%s:%u: not \"user:hash\"", path,
		    lineno);
		return -1;
	}
	*colon = '\0';
	if (colon[1] != '$' || crypt_checksalt(colon + 1) != CRYPT_SALT_OK) {
		snprintf(err, err_len, "%s:%u: user %s: a hash this system's "
		    "crypt(3) cannot check (make it with htpasswd -B, bcrypt)",
		    path, lineno, line);
		return -1;
	}
	h->users = xreallocarray(h->users, h->n + 1, sizeof(*h->users));
	u = &h->users[h->n++];
	memset(u, 0, sizeof(*u));
	u->name = xstrdup(line);
	u->hash = xstrdup(colon + 1);
	return 0;
}

struct htpasswd *
htpasswd_load(const char *path, char *err, size_t err_len)
{
	struct htpasswd *h;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	size_t total = 0;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		total += (size_t)n;
		if (total > HTPASSWD_MAX_BYTES || n > HTPASSWD_MAX_LINE) {
			snprintf(err, err_len, "%s:%u: file or line too long",
			    path, lineno);
			goto fail;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (add_line(h, path, lineno, line, err, err_len) < 0)
			goto fail;
	}
	if (ferror(f)) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (h->n == 0) {
		snprintf(err, err_len, "%s: no user in the file", path);
		goto fail;
	}
	if (RAND_bytes(h->key, sizeof(h->key)) != 1) {
		snprintf(err, err_len, "%s: no random key", path);
		goto fail;
	}
	h->cd = xcalloc(1, sizeof(*h->cd));
	free(line);
	fclose(f);
	return h;
fail:
	free(line);
	fclose(f);
	htpasswd_free(&h);
	return NULL;
}

void
htpasswd_free(struct htpasswd **hp)
{
	struct htpasswd *h = *hp;
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->n; i++) {
		free(h->users[i].name);
		free(h->users[i].hash);
	}
	free(h->users);
	free(h->cd);
	free(h);
	*hp = NULL;
}

size_t
htpasswd_count(const struct htpasswd *h)
{
	return h->n;
}

bool
htpasswd_check(struct htpasswd *h, const char *user, const char *password)
{
	struct htpasswd_user *u = NULL;
	unsigned char digest[32];
	const char *got;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (strcmp(h->users[i].name, user) == 0)
			u = &h->users[i];
	if (u == NULL)
		return false;
	password_digest(h, password, digest);
	if (u->remembered && same_bytes(u->digest, digest, sizeof(digest)))
		return true;
	got = crypt_r(password, u->hash, h->cd);
	if (got == NULL || got[0] == '*' || strlen(got) != strlen(u->hash) ||
	    !same_bytes(got, u->hash, strlen(got)))
		return false;
	memcpy(u->digest, digest, sizeof(digest));
	u->remembered = true;
	return true;
}
