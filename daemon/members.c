/*
 * members.c - the members and lists API. (Placeholder until issue 4.)
 */
#include "autoconf.h"

#include <stdlib.h>

#include "members.h"
#include "xmalloc.h"

struct members {
	struct members_deps deps;
};

struct members *
members_new(struct http_server *srv, const struct members_deps *deps)
{
	struct members *m = xcalloc(1, sizeof(*m));

	(void)srv;
	m->deps = *deps;
	return m;
}

void
members_free(struct members *m)
{
	free(m);
}
