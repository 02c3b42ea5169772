/*
 * console.c - the local SMS adapter: instead of a provider, each outbound
 * SMS becomes a log line and one JSON line appended to a file (by default
 * VAR/sms-outbox.jsonl). It is the default sender of a fresh install, so a
 * new user sees messages flow without any provider account, and it is the
 * adapter the foundation tests drive.
 *
 * Keys of [sender NAME] with provider = console:
 *   file   the JSON-lines outbox (default VAR/sms-outbox.jsonl)
 *   delay  simulated provider latency before the message is accepted
 *          (default 0); lets tests and demos see messages in flight.
 * The generic 'from' must be an E.164 number, as a provider would want:
 * + and 8 to 15 digits (syntax only, so fictional +1555... numbers do).
 *
 * A send is reported accepted only once its line is on disk: the lines
 * written in one loop turn share one fdatasync, and a new outbox file
 * also gets its directory synced. The file is created 0600.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "fileutil.h"
#include "log.h"
#include "xmalloc.h"

/* One send waiting for its simulated latency to pass. */
struct console_pending {
	TAILQ_ENTRY(console_pending) entry;
	struct adapter *ad;
	struct event *ev;
	char *line; /* the JSON line to append, with '\n' */
	int64_t msg_id;
	char masked_to[MSG_ADDR_MAX];
	adapter_done_fn *done;
	void *arg;
};
TAILQ_HEAD(console_pending_list, console_pending);

struct console {
	char *path;
	int fd;
	struct timeval delay;
	struct console_pending_list pending; /* waiting for the delay */
	struct console_pending_list written; /* waiting for the fdatasync */
	struct event *sync_ev;		     /* runs console_on_sync */
};

static int console_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int console_send(struct adapter *, const struct out_msg *,
    adapter_done_fn *, void *);
static void console_free(struct adapter *);
static bool console_is_e164(const char *);
static char *console_line(const struct adapter *, const struct out_msg *);
static void console_finish(struct console_pending *);
static int console_append(struct console *, const struct console_pending *,
    struct send_result *);
static void console_report(struct console_pending *,
    const struct send_result *);
static void console_on_delay(evutil_socket_t, short, void *);
static void console_on_sync(evutil_socket_t, short, void *);

const struct adapter_ops console_ops = {
    .name = "console",
    .channel = CHANNEL_SMS,
    .init = console_init,
    .send = console_send,
    .free = console_free,
};

static const char *const console_keys[] = {"provider", "from", "rate", "burst",
    "file", "delay", NULL};

static int
console_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	struct console *c;
	const char *file = NULL, *from = NULL;
	unsigned delay_ms = 0;
	char *path;

	if (sec != NULL &&
	    (config_section_check_keys(sec, console_keys, err, errlen) == -1 ||
		config_section_str(sec, "file", false, &file, err, errlen) ==
		    -1 ||
		config_section_duration_ms(sec, "delay",
		    &(struct config_range){.min = 0, .max = 600000}, &delay_ms,
		    err, errlen) == -1))
		return -1;
	if (sec != NULL &&
	    config_section_str(sec, "from", false, &from, err, errlen) == -1)
		return -1;
	if (from != NULL && !console_is_e164(from)) {
		snprintf(err, errlen,
		    "%s:%d: from '%s' is not an E.164 number (+ and 8 to 15 "
		    "digits, e.g. +15550100000)",
		    sec->file, config_section_line(sec, "from"), from);
		return -1;
	}
	if (file == NULL)
		path = xasprintf("%s/sms-outbox.jsonl", ad->env.var_dir);
	else if (file[0] != '/')
		path = xasprintf("%s/%s", ad->env.var_dir, file);
	else
		path = xstrdup(file);
	c = xcalloc(1, sizeof(*c));
	c->path = path;
	c->fd = -1;
	c->delay.tv_sec = delay_ms / 1000;
	c->delay.tv_usec = (delay_ms % 1000) * 1000;
	TAILQ_INIT(&c->pending);
	TAILQ_INIT(&c->written);
	ad->priv = c;
	return 0;
}

/* + and a non-zero digit, then 7 to 14 more digits (E.164: 8 to 15). */
static bool
console_is_e164(const char *s)
{
	size_t n;

	if (s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	n = strlen(s + 1);
	return n >= 8 && n <= 15 && strspn(s + 1, "0123456789") == n;
}

/*
 * Builds the outbox line for msg. The file is a local stand-in for a
 * provider, so unlike the log it holds the full number and body.
 */
static char *
console_line(const struct adapter *ad, const struct out_msg *msg)
{
	const struct console *c = ad->priv;
	char at[32];
	struct timespec ts;
	struct tm tm;
	json_t *o;
	char *s, *line;

	(void)c;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(at + strlen(at), sizeof(at) - strlen(at), ".%03ldZ",
	    ts.tv_nsec / 1000000);
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id",
	    (json_int_t)msg->id, "sender", ad->name, "from", msg->from, "to",
	    msg->to, "body", msg->body, "at", at);
	if (o == NULL)
		fatalx("console_line: json_pack failed");
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		fatalx("console_line: json_dumps failed");
	line = xasprintf("%s\n", s);
	free(s);
	return line;
}

static int
console_send(struct adapter *ad, const struct out_msg *msg,
    adapter_done_fn *done, void *arg)
{
	struct console *c = ad->priv;
	struct console_pending *p;

	p = xcalloc(1, sizeof(*p));
	p->ad = ad;
	p->line = console_line(ad, msg);
	p->msg_id = msg->id;
	log_mask_phone(msg->to, p->masked_to, sizeof(p->masked_to));
	p->done = done;
	p->arg = arg;
	p->ev = evtimer_new(ad->env.base, console_on_delay, p);
	if (p->ev == NULL)
		fatalx("console_send: evtimer_new failed");
	TAILQ_INSERT_TAIL(&c->pending, p, entry);
	/* Even with no delay the result arrives on a later turn (rule 2). */
	evtimer_add(p->ev, &c->delay);
	return 0;
}

static void
console_on_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	console_finish(arg);
}

/*
 * Appends the line. Once written, the send waits for the one fdatasync
 * of this loop turn (console_on_sync); a failure is reported at once.
 */
static void
console_finish(struct console_pending *p)
{
	struct adapter *ad = p->ad;
	struct console *c = ad->priv;
	struct send_result res;

	TAILQ_REMOVE(&c->pending, p, entry);
	if (console_append(c, p, &res) == -1) {
		console_report(p, &res);
		return;
	}
	if (c->sync_ev == NULL &&
	    (c->sync_ev = event_new(ad->env.base, -1, 0, console_on_sync,
		 ad)) == NULL)
		fatalx("console_finish: event_new failed");
	TAILQ_INSERT_TAIL(&c->written, p, entry);
	event_active(c->sync_ev, EV_TIMEOUT, 0);
}

/*
 * Writes p's line to the outbox, opening it first if needed; a file
 * created here has its directory entry synced too. 0, or -1 with a
 * transient result in res.
 */
static int
console_append(struct console *c, const struct console_pending *p,
    struct send_result *res)
{
	char err[512];

	if (c->fd == -1 &&
	    (c->fd = open(c->path, O_WRONLY | O_APPEND | O_CLOEXEC)) == -1 &&
	    errno == ENOENT) {
		c->fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0600);
		if (c->fd != -1 &&
		    fileutil_sync_dir(c->path, err, sizeof(err)) == -1) {
			send_result_set(res, SEND_TRANSIENT, 0, "outbox: %s",
			    err);
			close(c->fd);
			c->fd = -1;
			return -1;
		}
	}
	if (c->fd == -1) {
		send_result_set(res, SEND_TRANSIENT, 0,
		    "cannot open outbox %s: %s", c->path, strerror(errno));
		return -1;
	}
	if (fileutil_write_all(c->fd, p->line, strlen(p->line)) == -1) {
		send_result_set(res, SEND_TRANSIENT, 0,
		    "cannot write outbox %s: %s", c->path, strerror(errno));
		return -1;
	}
	return 0;
}

/* One fdatasync for every line written in this loop turn, then results. */
static void
console_on_sync(evutil_socket_t fd, short what, void *arg)
{
	struct adapter *ad = arg;
	struct console *c = ad->priv;
	struct console_pending *p;
	struct send_result res;
	int rc, saved;

	(void)fd;
	(void)what;
	rc = fdatasync(c->fd);
	saved = errno;
	while ((p = TAILQ_FIRST(&c->written)) != NULL) {
		TAILQ_REMOVE(&c->written, p, entry);
		if (rc == 0) {
			send_result_set(&res, SEND_ACCEPTED, 0, NULL);
			snprintf(res.provider_id, sizeof(res.provider_id),
			    "console-%lld", (long long)p->msg_id);
			log_info("console_sms msg=%lld sender=%s to=%s",
			    (long long)p->msg_id, ad->name, p->masked_to);
		} else
			send_result_set(&res, SEND_TRANSIENT, 0,
			    "cannot sync outbox %s: %s", c->path,
			    strerror(saved));
		console_report(p, &res);
	}
}

/* Reports res for p and frees p (already off every list). */
static void
console_report(struct console_pending *p, const struct send_result *res)
{
	event_free(p->ev);
	p->done(p->arg, res);
	free(p->line);
	free(p);
}

/*
 * Runs after drain; sends still pending here were given up by the core at
 * its shutdown deadline (and returned to the queue), so they are dropped
 * without a callback.
 */
static void
console_free(struct adapter *ad)
{
	struct console *c = ad->priv;
	struct console_pending *p;

	if (c == NULL)
		return;
	while ((p = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, p, entry);
		event_free(p->ev);
		free(p->line);
		free(p);
	}
	while ((p = TAILQ_FIRST(&c->written)) != NULL) {
		TAILQ_REMOVE(&c->written, p, entry);
		event_free(p->ev);
		free(p->line);
		free(p);
	}
	if (c->sync_ev != NULL)
		event_free(c->sync_ev);
	if (c->fd != -1)
		close(c->fd);
	free(c->path);
	free(c);
}
