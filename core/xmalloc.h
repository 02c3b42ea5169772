/*
 * xmalloc.h - allocators that abort on out-of-memory.
 *
 * Contract:
 *  - Running out of memory is fatal in outreachd: these never
 *    return NULL, so no module carries out-of-memory paths.
 *  - Safe on any thread: they report through log.c, which writes each line
 *    with one write(2).
 */
#ifndef OD_XMALLOC_H
#define OD_XMALLOC_H

#include <stddef.h>

/* malloc(size); size 0 is allowed and returns a unique pointer. */
void *xmalloc(size_t size);
/* calloc(nmemb, size), checked for overflow. */
void *xcalloc(size_t nmemb, size_t size);
/* reallocarray(ptr, nmemb, size), checked for overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
/* strdup(s); s must not be NULL. */
char *xstrdup(const char *s);
/* strndup(s, n). */
char *xstrndup(const char *s, size_t n);
/* asprintf() that returns the new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
