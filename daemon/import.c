/*
 * import.c - streamed CSV imports. (Placeholder until issue 4.)
 */
#include "autoconf.h"

#include <stdlib.h>

#include "import.h"
#include "xmalloc.h"

struct imports {
	struct imports_deps deps;
};

struct imports *
imports_new(struct http_server *srv, const struct imports_deps *deps)
{
	struct imports *im = xcalloc(1, sizeof(*im));

	(void)srv;
	im->deps = *deps;
	return im;
}

void
imports_free(struct imports *im)
{
	free(im);
}
