/* kannel.c - placeholder: the kannel adapter is being written (issue 3). */
#include "autoconf.h"

#include <stdio.h>

#include "adapter.h"

static int
kannel_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	(void)ad;
	(void)sec;
	snprintf(err, errlen, "provider 'kannel' is not available in this build");
	return -1;
}

const struct adapter_ops kannel_ops = {
	.name = "kannel",
	.channel = CHANNEL_SMS,
	.init = kannel_init,
};
