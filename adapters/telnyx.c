/* telnyx.c - placeholder: the telnyx adapter is being written (issue 3). */
#include "autoconf.h"

#include <stdio.h>

#include "adapter.h"

static int
telnyx_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	(void)ad;
	(void)sec;
	snprintf(err, errlen, "provider 'telnyx' is not available in this build");
	return -1;
}

const struct adapter_ops telnyx_ops = {
	.name = "telnyx",
	.channel = CHANNEL_SMS,
	.init = telnyx_init,
};
