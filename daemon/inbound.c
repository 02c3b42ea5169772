/*
 * inbound.c - keyword routing of received texts (DESIGN §7).
 * (Placeholder until issue 4's routing lands: every text is only stored.)
 */
#include "autoconf.h"

#include <stdlib.h>

#include "inbound.h"
#include "xmalloc.h"

struct inbound {
	struct inbound_deps deps;
};

struct inbound *
inbound_new(const struct inbound_deps *deps, char *err, size_t errlen)
{
	struct inbound *ib = xcalloc(1, sizeof(*ib));

	(void)err;
	(void)errlen;
	ib->deps = *deps;
	return ib;
}

void
inbound_free(struct inbound *ib)
{
	free(ib);
}

int
inbound_route(struct inbound *ib, int64_t msg_id, const char *sender,
    const struct in_msg *m, int64_t now, char *err, size_t errlen)
{
	(void)ib;
	(void)msg_id;
	(void)sender;
	(void)m;
	(void)now;
	(void)err;
	(void)errlen;
	return 0;
}

void
inbound_check_config(const struct config *cfg, config_warn_fn *warn,
    void *arg)
{
	(void)cfg;
	(void)warn;
	(void)arg;
}
