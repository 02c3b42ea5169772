/* plivo.c - placeholder: the plivo adapter is being written (issue 3). */
#include "autoconf.h"

#include <stdio.h>

#include "adapter.h"

static int
plivo_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	(void)ad;
	(void)sec;
	snprintf(err, errlen, "provider 'plivo' is not available in this build");
	return -1;
}

const struct adapter_ops plivo_ops = {
	.name = "plivo",
	.channel = CHANNEL_SMS,
	.init = plivo_init,
};
