/* twilio.c - placeholder: the twilio adapter is being written (issue 3). */
#include "autoconf.h"

#include <stdio.h>

#include "adapter.h"

static int
twilio_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	(void)ad;
	(void)sec;
	snprintf(err, errlen, "provider 'twilio' is not available in this build");
	return -1;
}

const struct adapter_ops twilio_ops = {
	.name = "twilio",
	.channel = CHANNEL_SMS,
	.init = twilio_init,
};
