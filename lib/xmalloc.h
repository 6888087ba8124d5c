/*
 * xmalloc.h -- allocation that never returns NULL.
 *
 * Out of memory is not a condition syncrelay tries to survive: every
 * allocation here either succeeds or the process exits through fatalx().
 */
#ifndef SR_XMALLOC_H
#define SR_XMALLOC_H

#include <stddef.h>

/* Returns n bytes of uninitialised memory; caller frees. */
void *xmalloc(size_t n);
/* Returns nmemb*size zeroed bytes (overflow-checked); caller frees. */
void *xcalloc(size_t nmemb, size_t size);
/* Resizes p to nmemb*size bytes (overflow-checked). */
void *xreallocarray(void *p, size_t nmemb, size_t size);
/* Returns a NUL-terminated copy of s; caller frees. */
char *xstrdup(const char *s);
/* Returns a NUL-terminated copy of the n bytes at s; caller frees. */
char *xmemdup0(const void *s, size_t n);
/* Returns a newly allocated formatted string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Gives freed heap back to the system where the allocator can (glibc's
 * malloc_trim); nothing under AddressSanitizer, whose allocator is not
 * glibc's (malloc_trim there reads arenas never set up, and crashes).
 */
void xmalloc_trim(void);

#endif
