/*
 * message.c - names of channels and message states, and out_msg_free().
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "message.h"

static const char *const msg_status_names[MSG_ST_COUNT] = {
    [MSG_ST_QUEUED] = "queued",
    [MSG_ST_SENDING] = "sending",
    [MSG_ST_SENT] = "sent",
    [MSG_ST_DELIVERED] = "delivered",
    [MSG_ST_UNDELIVERED] = "undelivered",
    [MSG_ST_FAILED] = "failed",
    [MSG_ST_EXPIRED] = "expired",
    [MSG_ST_CANCELLED] = "cancelled",
    [MSG_ST_SUPPRESSED] = "suppressed",
    [MSG_ST_RECEIVED] = "received",
};

void
out_msg_free(struct out_msg *msg)
{
	if (msg == NULL)
		return;
	free(msg->subject);
	free(msg->body);
	free(msg->html);
	free(msg->unsubscribe_url);
	free(msg->unsubscribe_mailto);
	free(msg);
}

void
in_msg_clear(struct in_msg *msg)
{
	free(msg->body);
	memset(msg, 0, sizeof(*msg));
}

const char *
channel_to_text(enum channel ch)
{
	return ch == CHANNEL_EMAIL ? "email" : "sms";
}

int
channel_parse(const char *text)
{
	if (strcmp(text, "sms") == 0)
		return CHANNEL_SMS;
	if (strcmp(text, "email") == 0)
		return CHANNEL_EMAIL;
	return -1;
}

const char *
msg_status_to_text(enum msg_status st)
{
	if ((unsigned)st >= MSG_ST_COUNT)
		return "unknown";
	return msg_status_names[st];
}

int
msg_status_parse(const char *text)
{
	int i;

	for (i = 0; i < MSG_ST_COUNT; i++)
		if (strcmp(text, msg_status_names[i]) == 0)
			return i;
	return -1;
}

bool
msg_status_is_final(enum msg_status st)
{
	switch (st) {
	case MSG_ST_DELIVERED:
	case MSG_ST_UNDELIVERED:
	case MSG_ST_FAILED:
	case MSG_ST_EXPIRED:
	case MSG_ST_CANCELLED:
	case MSG_ST_SUPPRESSED:
	case MSG_ST_RECEIVED:
		return true;
	default:
		return false;
	}
}

int64_t
msg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
msg_time_to_text(int64_t ms, char *buf, size_t len)
{
	/* floor division, so times before 1970 keep a positive fraction */
	int64_t sec = ms / 1000 - (ms % 1000 < 0);
	time_t t = (time_t)sec;
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ms - sec * 1000));
	return buf;
}
