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
 *   allow_remote_inbound  yes: the inbound webhook takes texts from any
 *          client address (default no: loopback only)
 *
 * Inbound (the phone simulator, doc/web.md): POST /webhooks/NAME/inbound
 * with a form or a JSON object holding From and Body (or from and body;
 * an optional Id / id de-duplicates a retry, else each request is a new
 * text) is a text from the number From to this sender's 'from'. There is
 * no provider and so no signature: verify() admits only loopback peers
 * (127.0.0.0/8, ::1, ::ffff:127.x) unless allow_remote_inbound = yes,
 * and refuses any request whose Origin header names another site, so a
 * web page elsewhere cannot make a browser post texts to a local daemon.
 * From must be E.164 (+ and 8 to 15 digits). Delivery reports do not
 * exist: the status webhook stays 404.
 *
 * A send is reported accepted only once its line is on disk: the lines
 * written in one loop turn share one fdatasync, and a new outbox file
 * also gets its directory synced. The file is created 0600.
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

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
	char *from;		   /* the sender's number, or NULL */
	bool allow_remote_inbound; /* inbound webhook from any address */
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
static int console_verify(struct adapter *, const struct webhook_req *, char *,
    size_t);
static int console_parse_inbound(struct adapter *, const struct webhook_req *,
    struct in_msg *, char *, size_t);
static const char *console_reply_body(struct adapter *, enum webhook_kind,
    const char **);

const struct adapter_ops console_ops = {
    .name = "console",
    .channel = CHANNEL_SMS,
    .init = console_init,
    .send = console_send,
    .free = console_free,
    .verify = console_verify,
    .parse_inbound = console_parse_inbound,
    .reply_body = console_reply_body,
};

static const char *const console_keys[] = {"provider", "from", "rate", "burst",
    "file", "delay", "allow_remote_inbound", NULL};

static int
console_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	struct console *c;
	const char *file = NULL, *from = NULL;
	unsigned delay_ms = 0;
	bool remote = false;
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
	    (config_section_str(sec, "from", false, &from, err, errlen) == -1 ||
		config_section_bool(sec, "allow_remote_inbound", &remote, err,
		    errlen) == -1))
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
	c->from = from != NULL ? xstrdup(from) : NULL;
	c->allow_remote_inbound = remote;
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
	free(c->from);
	free(c);
}

/* True for a loopback address as text: 127.0.0.0/8, ::1, ::ffff:127.x. */
static bool
console_peer_is_loopback(const char *peer)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff};
	static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 1};
	unsigned char a[16];

	if (inet_pton(AF_INET, peer, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, peer, a) != 1)
		return false;
	if (memcmp(a, one, sizeof(one)) == 0)
		return true;
	return memcmp(a, mapped, sizeof(mapped)) == 0 && a[12] == 127;
}

/*
 * True if 'origin' (an Origin header) is the site the request came to:
 * the scheme and authority of req->url, or http(s):// and the Host
 * header (a browser on the listen address while public_url names
 * another).
 */
static bool
console_origin_is_own(const struct webhook_req *req, const char *origin)
{
	const char *host = webhook_header(req, "Host");
	const char *u = req->url, *auth;
	size_t n;

	if ((auth = strstr(u, "://")) != NULL) {
		n = (size_t)(auth + 3 - u) + strcspn(auth + 3, "/?#");
		if (strlen(origin) == n && strncasecmp(origin, u, n) == 0)
			return true;
	}
	if (host == NULL || *host == '\0')
		return false;
	if (strncasecmp(origin, "http://", 7) == 0)
		return strcasecmp(origin + 7, host) == 0;
	if (strncasecmp(origin, "https://", 8) == 0)
		return strcasecmp(origin + 8, host) == 0;
	return false;
}

/*
 * No provider signs anything here: the peer must be loopback (unless
 * allow_remote_inbound), and a browser's Origin must be our own site.
 */
static int
console_verify(struct adapter *ad, const struct webhook_req *req, char *err,
    size_t errlen)
{
	const struct console *c = ad->priv;
	const char *origin = webhook_header(req, "Origin");

	if (!c->allow_remote_inbound &&
	    (req->peer == NULL || !console_peer_is_loopback(req->peer))) {
		snprintf(err, errlen,
		    "console: inbound only from loopback (set "
		    "allow_remote_inbound = yes to take others)");
		return -1;
	}
	if (origin != NULL && !console_origin_is_own(req, origin)) {
		snprintf(err, errlen,
		    "console: a page of another site (Origin "
		    "header) posted this");
		return -1;
	}
	return 0;
}

/* The first of 'a' and 'b' in the form fields or JSON object o. */
static const char *
console_field(const struct webhook_req *req, json_t *o, const char *a,
    const char *b)
{
	const char *v;

	if (o != NULL) {
		v = json_string_value(json_object_get(o, a));
		return v != NULL ? v : json_string_value(json_object_get(o, b));
	}
	v = webhook_param(req, a);
	return v != NULL ? v : webhook_param(req, b);
}

/* True if the request's body is JSON (by Content-Type). */
static bool
console_is_json(const struct webhook_req *req)
{
	const char *ct = webhook_header(req, "Content-Type");

	return ct != NULL && strncasecmp(ct, "application/json", 16) == 0;
}

/*
 * From, Body and the optional Id of a form or JSON body (see the top of
 * the file). Without an Id the text gets a random one: each request is a
 * new text.
 */
static int
console_parse_inbound(struct adapter *ad, const struct webhook_req *req,
    struct in_msg *out, char *err, size_t errlen)
{
	const struct console *c = ad->priv;
	const char *from, *body, *id;
	unsigned char raw[12];
	json_t *o = NULL;
	size_t i;
	int rc = -1;

	if (console_is_json(req) &&
	    ((o = json_loadb(req->body, req->body_len, 0, NULL)) == NULL ||
		!json_is_object(o))) {
		json_decref(o);
		snprintf(err, errlen, "console: the body is not a JSON object");
		return -1;
	}
	from = console_field(req, o, "From", "from");
	body = console_field(req, o, "Body", "body");
	id = console_field(req, o, "Id", "id");
	if (from == NULL || body == NULL)
		snprintf(err, errlen, "console: inbound needs From and Body");
	else if (!console_is_e164(from))
		snprintf(err, errlen,
		    "console: From must be an E.164 number (+ and 8 to 15 "
		    "digits)%s",
		    from[0] == ' ' ? "; in a form, '+' reads as a space: "
				     "send it as %2B (curl --data-urlencode)"
				   : "");
	else if (id != NULL && (*id == '\0' || strlen(id) > 64))
		snprintf(err, errlen, "console: Id must be 1 to 64 characters");
	else {
		if (id != NULL)
			snprintf(out->provider_id, sizeof(out->provider_id),
			    "console-in-%s", id);
		else {
			if (RAND_bytes(raw, sizeof(raw)) != 1)
				fatalx("console: no randomness");
			strlcpy(out->provider_id, "console-in-",
			    sizeof(out->provider_id));
			for (i = 0; i < sizeof(raw); i++)
				snprintf(out->provider_id + 11 + 2 * i, 3,
				    "%02x", raw[i]);
		}
		strlcpy(out->from, from, sizeof(out->from));
		strlcpy(out->to, c->from != NULL ? c->from : ad->name,
		    sizeof(out->to));
		out->body = xstrdup(body);
		rc = 0;
	}
	json_decref(o);
	return rc;
}

static const char *
console_reply_body(struct adapter *ad, enum webhook_kind kind,
    const char **ctype)
{
	(void)ad;
	(void)kind;
	*ctype = "application/json";
	return "{\"received\":true}";
}
