/*
 * smtp.c - email over SMTP with libESMTP on worker threads.
 * (Placeholder until issue 5's adapter lands.)
 */
#include "autoconf.h"

#include <stdio.h>

#include "adapter.h"

static int
smtp_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	(void)ad;
	(void)sec;
	snprintf(err, errlen, "[email] adapter = smtp is not implemented yet");
	return -1;
}

static int
smtp_send(struct adapter *ad, const struct out_msg *msg, adapter_done_fn *done,
    void *arg)
{
	(void)ad;
	(void)msg;
	(void)done;
	(void)arg;
	return -1;
}

static void
smtp_free(struct adapter *ad)
{
	(void)ad;
}

const struct adapter_ops smtp_ops = {
    .name = "smtp",
    .channel = CHANNEL_EMAIL,
    .init = smtp_init,
    .send = smtp_send,
    .free = smtp_free,
};
