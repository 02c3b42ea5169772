/*
 * strlcat.c - BSD strlcat for libcs without it. Written for outreachd from
 * the OpenBSD manual's description of the function.
 */
#include "autoconf.h"

#include <string.h>

#include "compat.h"

size_t
strlcat(char *dst, const char *src, size_t dsize)
{
	size_t dlen = strnlen(dst, dsize);

	if (dlen == dsize)
		return dsize + strlen(src);
	return dlen + strlcpy(dst + dlen, src, dsize - dlen);
}
