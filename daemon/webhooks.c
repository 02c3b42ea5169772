/* webhooks.c - placeholder: being written (issue 3). */
#include "autoconf.h"

#include <stdlib.h>

#include "webhooks.h"
#include "xmalloc.h"

struct webhooks {
	int unused;
};

struct webhooks *
webhooks_new(struct http_server *srv, const struct webhooks_deps *deps)
{
	(void)srv;
	(void)deps;
	return xcalloc(1, sizeof(struct webhooks));
}

void
webhooks_free(struct webhooks *w)
{
	free(w);
}
