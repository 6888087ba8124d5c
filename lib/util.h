/*
 * util.h -- strict number parsing, small string helpers, the monotonic
 * clock in seconds.
 */
#ifndef SR_UTIL_H
#define SR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marks an intended fall-through between switch labels. */
#define FALLTHROUGH __attribute__((fallthrough))

/*
 * Parses exactly the n bytes at s as an unsigned decimal (no sign, no
 * spaces, at least one digit, no overflow past UINT64_MAX).  Returns 0 and
 * sets *out, or -EINVAL / -ERANGE.
 */
int parse_u64(const char *s, size_t n, uint64_t *out);
/* Returns true if the n bytes at s are all lower- or upper-case hex. */
bool is_hex(const char *s, size_t n);
/* Returns true if s (NUL-terminated) starts with prefix. */
bool str_has_prefix(const char *s, const char *prefix);
/* Returns s with leading and trailing ASCII whitespace removed, in place. */
char *str_trim(char *s);
/* Seconds on the monotonic clock (for timing; the origin means nothing). */
double mono_seconds(void);

#endif
