/*
 * compat.h - declarations of the BSD string functions Debian 12's glibc
 * lacks. The definitions in compat/ are built only when configure finds
 * the function missing (AC_REPLACE_FUNCS).
 */
#ifndef OD_COMPAT_H
#define OD_COMPAT_H

#include <stddef.h>

#if !HAVE_DECL_STRLCPY
/* Copies src into dst of size dsize, always NUL-terminating when dsize > 0.
 * Returns strlen(src); a result >= dsize means truncation. */
size_t strlcpy(char *dst, const char *src, size_t dsize);
#endif
#if !HAVE_DECL_STRLCAT
/* Appends src to dst of size dsize; returns the length it tried to make. */
size_t strlcat(char *dst, const char *src, size_t dsize);
#endif
#if !HAVE_DECL_REALLOCARRAY
/* realloc(ptr, nmemb * size) that fails with ENOMEM on overflow. */
void *reallocarray(void *ptr, size_t nmemb, size_t size);
#endif

#endif
