/* vonage.c - placeholder: the vonage adapter is being written (issue 3). */
#include "autoconf.h"

#include <stdio.h>

#include "adapter.h"

static int
vonage_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	(void)ad;
	(void)sec;
	snprintf(err, errlen, "provider 'vonage' is not available in this build");
	return -1;
}

const struct adapter_ops vonage_ops = {
	.name = "vonage",
	.channel = CHANNEL_SMS,
	.init = vonage_init,
};
