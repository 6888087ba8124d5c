/*
 * htpasswd.h -- the users allowed to read /metrics (metrics_auth_file).
 *
 * The file is in htpasswd format ("user:hash" per line, as
 * "htpasswd -B" writes it); hashes are checked with the system's
 * crypt_r(3) (libxcrypt: bcrypt "$2y$", and the other crypt schemes it
 * knows).
 */
#ifndef SR_HTPASSWD_H
#define SR_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

struct htpasswd;

/*
 * Reads path.  Returns the users, or NULL with err set when the file
 * cannot be read, has no user, or holds a line crypt(3) cannot check
 * (e.g. htpasswd's default MD5 "$apr1$": use htpasswd -B).
 */
struct htpasswd *htpasswd_load(const char *path, char *err, size_t err_len);
/* NULL-safe; sets *hp NULL. */
void htpasswd_free(struct htpasswd **hp);
/* Number of users in the file. */
size_t htpasswd_count(const struct htpasswd *h);
/*
 * True when user is in the file and password matches its hash.  A pair
 * that matched once is remembered (as a keyed SHA-256), so a scraper's
 * every request does not pay the bcrypt cost again; a wrong password
 * always does.
 */
bool htpasswd_check(struct htpasswd *h, const char *user,
    const char *password);

#endif
