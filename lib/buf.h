/*
 * buf.h -- the one binary-safe growable buffer.
 *
 * A buf has an explicit length, may hold NUL bytes, and has a hard maximum
 * size: appends that would pass it fail with -E2BIG and leave the buffer
 * unchanged, so a peer can never make one grow without bound.  The bytes
 * are always followed by a NUL (not counted in len) so a buf holding text
 * can be used as a C string.
 */
#ifndef SR_BUF_H
#define SR_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *s;	/* bytes, NUL-terminated when cap > 0 */
	size_t len;	/* bytes in use */
	size_t cap;	/* bytes allocated (excluding the terminator) */
	size_t max;	/* hard limit on len; 0 means BUF_DEFAULT_MAX */
};

#define BUF_DEFAULT_MAX ((size_t)1 << 30)
#define BUF_INIT { NULL, 0, 0, 0 }

/* Initialises b empty with hard limit max (0: BUF_DEFAULT_MAX). */
void buf_init(struct buf *b, size_t max);
/* Releases b's memory and leaves it empty (reusable). */
void buf_free(struct buf *b);
/* Sets len to 0, keeping the allocation. */
void buf_reset(struct buf *b);
/* Ensures room for n more bytes; 0 or -E2BIG when over the limit. */
int buf_reserve(struct buf *b, size_t n);
/* Appends n bytes; 0 or -E2BIG. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Appends a C string; 0 or -E2BIG. */
int buf_puts(struct buf *b, const char *s);
/* Appends one byte; 0 or -E2BIG. */
int buf_putc(struct buf *b, char c);
/* Appends formatted text; 0 or -E2BIG. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string: quoted, with " and \\ escaped and control
 * characters as \\u00XX (other bytes as they are); 0 or -E2BIG. */
int buf_put_json_str(struct buf *b, const char *s);
/* Appends the decimal form of v; 0 or -E2BIG. */
int buf_put_u64(struct buf *b, uint64_t v);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Returns the contents as a NUL-terminated string ("" when empty). */
const char *buf_cstring(const struct buf *b);
/* Detaches and returns the bytes (NUL-terminated); b becomes empty. */
char *buf_release(struct buf *b);

#endif
