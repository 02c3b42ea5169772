/* httpclient.c - placeholder: being written (issue 3). */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>

#include "httpclient.h"
#include "xmalloc.h"

struct httpc {
	int unused;
};

struct httpc *
httpc_new(struct event_base *base, const struct httpc_config *cfg, char *err,
    size_t errlen)
{
	(void)base;
	(void)cfg;
	(void)err;
	(void)errlen;
	return xcalloc(1, sizeof(struct httpc));
}

int
httpc_request(struct httpc *c, const struct httpc_request *req,
    httpc_done_fn *done, void *arg, char *err, size_t errlen)
{
	(void)c;
	(void)req;
	(void)done;
	(void)arg;
	snprintf(err, errlen, "httpc: not available in this build");
	return -1;
}

unsigned
httpc_in_flight(const struct httpc *c)
{
	(void)c;
	return 0;
}

void
httpc_free(struct httpc *c)
{
	free(c);
}
