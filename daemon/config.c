/*
 * config.c - loads the INI configuration in two passes.
 *
 * Pass one reads the file with inih through our own line reader
 * (config_reader), which counts lines, notices [section] headers and
 * overlong lines, and strips leading whitespace so that inih never treats an
 * indented "key = value" as the continuation of the previous value. Every
 * section is kept raw, as written, with its keys, their lines and their
 * values after ${ENV} expansion.
 *
 * Pass two validates the raw sections against tables: config_stypes[] lists
 * the known section types, each with a key table giving the key's value
 * type, where it lands (an offset into struct config or struct
 * config_sender) and its allowed range. Parsing a value is one setter per
 * value type (config_setters[], in config_value.c), shared with the
 * config_section_*() getters the adapters use, so a bad value reads the
 * same wherever it is.
 *
 * Errors are "FILE:LINE: what is wrong"; the first one wins.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "compat.h"
#include "config.h"
#include "config-internal.h"
#include "email_addr.h"
#include "inbound.h"
#include "log.h"
#include "phone.h"
#include "quiet.h"
#include "xmalloc.h"

#define CONFIG_S_LABEL                                                  \
	0x01u		   /* [type NAME]; keys land in a config_sender \
			    * ([sender]) or a config_list ([list]) */
#define CONFIG_S_RAW 0x02u /* other keys belong to an adapter */

struct config_stype {
	const char *name;
	const struct config_key *keys; /* ends with a NULL name */
	unsigned flags;
};

/* State of pass one, shared by the reader and the handler. */
struct config_parse {
	struct config *cfg;
	FILE *fp;
	int line;		    /* lines read so far */
	struct config_section *cur; /* NULL before the first header */
	bool stop;		    /* an error was recorded: read no further */
	int err_line;
	char *err;
	size_t errlen;
	const char *secret_key; /* first key holding a literal secret */
	int secret_line;
};

/* A growing string. */
struct config_buf {
	char *s;
	size_t len;
	size_t cap;
};

#define CONFIG_ALNUM \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define CONFIG_ENV_CHARS CONFIG_ALNUM "_"
/* sender names go into URLs (/webhooks/NAME/...) and log lines */
#define CONFIG_NAME_CHARS CONFIG_ALNUM "_-"
#define CONFIG_NAME_MAX	  63
/* An [http] api_token shorter than this is refused: it is all that guards
 * the API, and 16 characters is still far from guessable. */
#define CONFIG_TOKEN_MIN 16
#define CONFIG_PH_MAX	 32 /* the longest {placeholder} name looked at */

/* A text of the config and the {placeholders} inbound.c fills in it. */
struct config_text_rule {
	const char *key;
	size_t off;	   /* of its char * in struct config or config_list */
	const char *known; /* e.g. "{program} {contact}" */
};
/* [alerts] time_zone when unset: most US members of a program without
 * a zone of their own are in the Eastern zone; set it to yours. */
#define CONFIG_ALERTS_TIME_ZONE "America/New_York"

static void config_parse_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *config_reader(char *buf, int size, void *arg);
static bool config_line_is_whole(struct config_parse *p, const char *buf);
static int config_begin_section(struct config_parse *p, char *buf);
static int config_handler(void *arg, const char *section, const char *key,
    const char *value);
static void config_buf_add(struct config_buf *b, const char *s, size_t n);
static const char *config_env(struct config_parse *p, const char *key,
    const char *name, const char **after);
static char *config_expand(struct config_parse *p, const char *key,
    const char *value, bool *from_env);
static bool config_key_is_secret(const char *key);
static int config_read(struct config *cfg, struct config_parse *p,
    struct stat *st);
static int config_validate(struct config *cfg, const char *cwd, char *err,
    size_t errlen);
static int config_apply(struct config_val *v, const struct config_section *sec,
    const struct config_stype *st, void *base);
static int config_sender_finish(struct config_sender *snd,
    const struct config_section *sec, char *err, size_t errlen);
static int config_store_finish(struct config *, char *, size_t);
static int config_finish(struct config *cfg, const char *cwd, char *err,
    size_t errlen);
static const struct config_stype *config_stype_lookup(const char *name);
static const struct config_section *config_section_by_type(
    const struct config *cfg, const char *type);
static int config_sms_finish(struct config *cfg, char *err, size_t errlen);
static int config_alerts_finish(struct config *cfg, char *err, size_t errlen);
static int config_conv_finish(struct config *cfg, char *err, size_t errlen);
static char **config_split_words(const char *raw, size_t *n);
static int config_list_finish(struct config *cfg, struct config_list *l,
    char *err, size_t errlen);
static int config_list_keywords(struct config *cfg, struct config_list *l,
    char *err, size_t errlen);
static int config_list_questions(struct config_list *l, char *err,
    size_t errlen);
static void config_words_free(char **w, size_t n);
static bool config_words_has_empty(const char *raw);
static int config_texts_check(const struct config_text_rule *rules,
    const void *base, const struct config_section *sec, char *err,
    size_t errlen);

#define CONFIG_OFF(f) offsetof(struct config, f)
#define CONFIG_SND(f) offsetof(struct config_sender, f)
#define CONFIG_LST(f) offsetof(struct config_list, f)
/* An SMS text (a template): up to 10 segments of 160 GSM-7 characters. */
#define CONFIG_TEXT_MAX 1600
/* The common fields of a key table entry, inside its braces. */
#define CONFIG_KEY(n, t, o, lo, hi) \
	.name = (n), .type = (t), .off = (o), .min = (lo), .max = (hi)

static const struct config_key config_daemon_keys[] = {
    {CONFIG_KEY("var_dir", CONFIG_T_PATH, CONFIG_OFF(var_dir), 1, PATH_MAX)},
    {CONFIG_KEY("log", CONFIG_T_LOG, CONFIG_OFF(log_target), 1, PATH_MAX)},
    {CONFIG_KEY("log_level", CONFIG_T_LEVEL, CONFIG_OFF(log_level), 0, 0)},
    /* 0 = stop at once; 10 min is longer than any send should take */
    {CONFIG_KEY("shutdown_timeout", CONFIG_T_DURATION,
	CONFIG_OFF(shutdown_timeout_ms), 0, 10 * CONFIG_MS_M)},
    {.name = NULL},
};

static const struct config_key config_http_keys[] = {
    {CONFIG_KEY("listen", CONFIG_T_LISTEN, CONFIG_OFF(listen_addr), 0, 65535),
	.off2 = CONFIG_OFF(listen_port)},
    /* an API request or a webhook is far below 1K..1G */
    {CONFIG_KEY("max_body", CONFIG_T_SIZE, CONFIG_OFF(max_body), CONFIG_KIB,
	CONFIG_GIB)},
    {CONFIG_KEY("api_token", CONFIG_T_STRING, CONFIG_OFF(api_token), 1, 4096)},
    {CONFIG_KEY("api_token_file", CONFIG_T_PATH, CONFIG_OFF(api_token_file), 1,
	PATH_MAX)},
    {CONFIG_KEY("public_url", CONFIG_T_URL, CONFIG_OFF(public_url), 1, 2048)},
    {CONFIG_KEY("ui_dir", CONFIG_T_PATH, CONFIG_OFF(ui_dir), 1, PATH_MAX)},
    /* each connection holds a descriptor; a million is past any limit */
    {CONFIG_KEY("max_connections", CONFIG_T_UINT, CONFIG_OFF(max_connections),
	1, 1000000)},
    /* under 100 ms cuts off healthy clients; over 1 h is no deadline */
    {CONFIG_KEY("request_timeout", CONFIG_T_DURATION,
	CONFIG_OFF(request_timeout_ms), 100, CONFIG_MS_H)},
    /* web sessions: an idle one ends, and every one at its lifetime */
    {CONFIG_KEY("session_idle", CONFIG_T_DURATION, CONFIG_OFF(session_idle_ms),
	CONFIG_MS_S, 30 * CONFIG_MS_D)},
    {CONFIG_KEY("session_lifetime", CONFIG_T_DURATION,
	CONFIG_OFF(session_lifetime_ms), CONFIG_MS_S, 30 * CONFIG_MS_D)},
    {.name = NULL},
};

static const struct config_key config_client_keys[] = {
    /* a provider that takes a minute to connect is down */
    {CONFIG_KEY("connect_timeout", CONFIG_T_DURATION,
	CONFIG_OFF(client_connect_timeout_ms), 100, CONFIG_MS_M)},
    {CONFIG_KEY("timeout", CONFIG_T_DURATION, CONFIG_OFF(client_timeout_ms),
	100, 10 * CONFIG_MS_M)},
    {CONFIG_KEY("max_per_host", CONFIG_T_UINT, CONFIG_OFF(client_max_per_host),
	1, 10000)},
    {CONFIG_KEY("max_connections", CONFIG_T_UINT, CONFIG_OFF(client_max_total),
	1, 100000)},
    {CONFIG_KEY("ca_file", CONFIG_T_PATH, CONFIG_OFF(client_ca_file), 1,
	PATH_MAX)},
    {.name = NULL},
};

static const char *const config_store_backends[] = {"sqlite", "postgresql",
    NULL};

static const struct config_key config_store_keys[] = {
    {CONFIG_KEY("backend", CONFIG_T_CHOICE, CONFIG_OFF(store_backend), 0, 0),
	.choices = config_store_backends},
    {CONFIG_KEY("path", CONFIG_T_PATH, CONFIG_OFF(db_path), 1, PATH_MAX)},
    {CONFIG_KEY("url", CONFIG_T_STRING, CONFIG_OFF(store_url), 1, 4096)},
    {CONFIG_KEY("node", CONFIG_T_STRING, CONFIG_OFF(store_node), 1,
	CONFIG_NAME_MAX)},
    /* every reply waits for the commit: keep it under a second */
    {CONFIG_KEY("commit_delay", CONFIG_T_DURATION, CONFIG_OFF(commit_delay_ms),
	0, CONFIG_MS_S)},
    {.name = NULL},
};

static const struct config_key config_dispatch_keys[] = {
    {CONFIG_KEY("batch", CONFIG_T_UINT, CONFIG_OFF(batch), 1, 10000)},
    {CONFIG_KEY("max_in_flight", CONFIG_T_UINT, CONFIG_OFF(max_in_flight), 1,
	100000)},
    {CONFIG_KEY("lease", CONFIG_T_DURATION, CONFIG_OFF(lease_ms), CONFIG_MS_S,
	CONFIG_MS_H)},
    {CONFIG_KEY("tick", CONFIG_T_DURATION, CONFIG_OFF(tick_ms), 10,
	CONFIG_MS_M)},
    {CONFIG_KEY("retry_base", CONFIG_T_DURATION, CONFIG_OFF(retry_base_ms), 100,
	CONFIG_MS_H)},
    {CONFIG_KEY("retry_max", CONFIG_T_DURATION, CONFIG_OFF(retry_max_ms),
	CONFIG_MS_S, 7 * CONFIG_MS_D)},
    /* 30 days in ms still fits the unsigned the getter parses into */
    {CONFIG_KEY("validity", CONFIG_T_DURATION_S, CONFIG_OFF(validity_s),
	CONFIG_MS_S, 30 * CONFIG_MS_D)},
    {.name = NULL},
};

static const struct config_key config_sms_keys[] = {
    {CONFIG_KEY("default_sender", CONFIG_T_STRING, CONFIG_OFF(default_sender),
	1, CONFIG_NAME_MAX)},
    {CONFIG_KEY("default_region", CONFIG_T_STRING, CONFIG_OFF(default_region),
	2, 3)},
    {CONFIG_KEY("accept_unassigned_numbers", CONFIG_T_BOOL,
	CONFIG_OFF(accept_unassigned), 0, 0)},
    {CONFIG_KEY("program", CONFIG_T_STRING, CONFIG_OFF(program), 1, 64)},
    {CONFIG_KEY("contact", CONFIG_T_STRING, CONFIG_OFF(contact), 1, 256)},
    {CONFIG_KEY("stop_words", CONFIG_T_STRING, CONFIG_OFF(stop_words_raw), 1,
	1024)},
    {CONFIG_KEY("stop_reply", CONFIG_T_STRING, CONFIG_OFF(stop_reply), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("start_reply", CONFIG_T_STRING, CONFIG_OFF(start_reply), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("help_reply", CONFIG_T_STRING, CONFIG_OFF(help_reply), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("already_reply", CONFIG_T_STRING, CONFIG_OFF(already_reply), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("confirm_reply", CONFIG_T_STRING, CONFIG_OFF(confirm_reply), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("welcome", CONFIG_T_STRING, CONFIG_OFF(welcome), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("reask_reply", CONFIG_T_STRING, CONFIG_OFF(reask_reply), 1,
	CONFIG_TEXT_MAX)},
    {.name = NULL},
};

/* The keys of [list NAME]. */
static const struct config_key config_list_keys[] = {
    {CONFIG_KEY("keywords", CONFIG_T_STRING, CONFIG_LST(keywords_raw), 1,
	1024)},
    {CONFIG_KEY("sender", CONFIG_T_STRING, CONFIG_LST(sender), 1,
	CONFIG_NAME_MAX)},
    {CONFIG_KEY("welcome", CONFIG_T_STRING, CONFIG_LST(welcome), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("double_optin", CONFIG_T_BOOL, CONFIG_LST(double_optin), 0, 0)},
    {CONFIG_KEY("questions", CONFIG_T_STRING, CONFIG_LST(questions_raw), 1,
	256)},
    {CONFIG_KEY("ask_first_name", CONFIG_T_STRING, CONFIG_LST(ask_first_name),
	1, CONFIG_TEXT_MAX)},
    {CONFIG_KEY("ask_last_name", CONFIG_T_STRING, CONFIG_LST(ask_last_name), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("ask_zip", CONFIG_T_STRING, CONFIG_LST(ask_zip), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("ask_email", CONFIG_T_STRING, CONFIG_LST(ask_email), 1,
	CONFIG_TEXT_MAX)},
    {CONFIG_KEY("welcome_email_subject", CONFIG_T_STRING,
	CONFIG_LST(welcome_email_subject), 1, 998)},
    {CONFIG_KEY("welcome_email", CONFIG_T_STRING, CONFIG_LST(welcome_email), 1,
	65536)},
    {CONFIG_KEY("time_zone", CONFIG_T_STRING, CONFIG_LST(time_zone), 1,
	QUIET_ZONE_NAME_MAX - 1)},
    {.name = NULL},
};

/*
 * The default compliance texts (doc/compliance.md): the opt-in ones carry the
 * program name, a frequency disclosure, "Msg&data rates may apply", HELP
 * and STOP; the opt-out confirmation promotes nothing.
 */
#define CONFIG_DISCLOSURE                                                  \
	"Msg freq varies. Msg&data rates may apply. Reply HELP for help, " \
	"STOP to opt out."
static const char config_def_stop[] =
    "{program}: You are unsubscribed and will get no more messages. "
    "Reply START to resubscribe.";
static const char config_def_start[] =
    "{program}: You are subscribed again. " CONFIG_DISCLOSURE;
static const char config_def_help[] =
    "{program}: For help, contact {contact}. Msg freq varies. Msg&data "
    "rates may apply. Reply STOP to opt out.";
static const char config_def_already[] =
    "{program}: You're already in {list}, thanks! Reply HELP for help, STOP "
    "to opt out.";
static const char config_def_confirm[] =
    "{program}: Reply YES to confirm you want texts from {list}. Msg freq "
    "varies. Msg&data rates may apply. Reply STOP to cancel.";
static const char config_def_welcome[] =
    "{program}: Welcome to {list}! " CONFIG_DISCLOSURE;
static const char config_def_reask[] =
    "Sorry, that doesn't look right. {question}";

/* Where inbound.c expands each text: without a list, {list} would read
 * "our list"; {question} is only the re-asked question. */
#define CONFIG_PH_SMS  "{program} {contact}"
#define CONFIG_PH_LIST CONFIG_PH_SMS " {list}"
static const struct config_text_rule config_sms_texts[] = {
    {"stop_reply", CONFIG_OFF(stop_reply), CONFIG_PH_SMS},
    {"start_reply", CONFIG_OFF(start_reply), CONFIG_PH_SMS},
    {"help_reply", CONFIG_OFF(help_reply), CONFIG_PH_SMS},
    {"already_reply", CONFIG_OFF(already_reply), CONFIG_PH_LIST},
    {"confirm_reply", CONFIG_OFF(confirm_reply), CONFIG_PH_LIST},
    {"welcome", CONFIG_OFF(welcome), CONFIG_PH_LIST},
    {"reask_reply", CONFIG_OFF(reask_reply), CONFIG_PH_LIST " {question}"},
    {NULL, 0, NULL},
};
static const struct config_text_rule config_list_texts[] = {
    {"welcome", CONFIG_LST(welcome), CONFIG_PH_LIST},
    {"ask_first_name", CONFIG_LST(ask_first_name), CONFIG_PH_LIST},
    {"ask_last_name", CONFIG_LST(ask_last_name), CONFIG_PH_LIST},
    {"ask_zip", CONFIG_LST(ask_zip), CONFIG_PH_LIST},
    {"ask_email", CONFIG_LST(ask_email), CONFIG_PH_LIST},
    {NULL, 0, NULL},
};

static const char *const config_email_adapters[] = {"file", "smtp", NULL};

static const struct config_key config_email_keys[] = {
    {CONFIG_KEY("adapter", CONFIG_T_CHOICE, CONFIG_OFF(email_adapter), 0, 0),
	.choices = config_email_adapters},
    /* permanent failures before an address counts as bouncing */
    {CONFIG_KEY("bounce_limit", CONFIG_T_UINT, CONFIG_OFF(email_bounce_limit),
	1, 100)},
    {CONFIG_KEY("unsubscribe_mailto", CONFIG_T_STRING,
	CONFIG_OFF(email_unsubscribe_mailto), 3, 254)},
    {CONFIG_KEY("secret_file", CONFIG_T_PATH, CONFIG_OFF(email_secret_file), 1,
	PATH_MAX)},
    /* DKIM signing (RFC 6376): all three, or none */
    {CONFIG_KEY("dkim_domain", CONFIG_T_STRING, CONFIG_OFF(dkim_domain), 1,
	253)},
    {CONFIG_KEY("dkim_selector", CONFIG_T_STRING, CONFIG_OFF(dkim_selector), 1,
	63)},
    {CONFIG_KEY("dkim_key_file", CONFIG_T_PATH, CONFIG_OFF(dkim_key_file), 1,
	PATH_MAX)},
    {.name = NULL},
};

/* [alerts]: the local sending window and the last-resort time zone;
 * config_alerts_finish() parses and checks them. */
static const struct config_key config_alerts_keys[] = {
    {CONFIG_KEY("quiet_start", CONFIG_T_STRING, CONFIG_OFF(quiet_start_raw), 1,
	8)},
    {CONFIG_KEY("quiet_end", CONFIG_T_STRING, CONFIG_OFF(quiet_end_raw), 1, 8)},
    {CONFIG_KEY("time_zone", CONFIG_T_STRING, CONFIG_OFF(alerts_time_zone), 1,
	QUIET_ZONE_NAME_MAX - 1)},
    {CONFIG_KEY("backlog", CONFIG_T_UINT, CONFIG_OFF(alerts_backlog), 10,
	1000000)},
    {CONFIG_KEY("validity", CONFIG_T_DURATION_S, CONFIG_OFF(alerts_validity_s),
	60 * CONFIG_MS_S, 30 * CONFIG_MS_D)},
    {CONFIG_KEY("max_optout_rate", CONFIG_T_DOUBLE,
	CONFIG_OFF(alerts_max_optout_pct), 0, 100)},
    {CONFIG_KEY("max_failure_rate", CONFIG_T_DOUBLE,
	CONFIG_OFF(alerts_max_failure_pct), 0, 100)},
    {CONFIG_KEY("guard_min", CONFIG_T_UINT, CONFIG_OFF(alerts_guard_min), 1,
	1000000)},
    {.name = NULL},
};

/* [conversations]: the staff inbox; notify_email is checked by
 * config_conv_finish(). 30 days in ms fits the unsigned fields. */
static const struct config_key config_conv_keys[] = {
    {CONFIG_KEY("attribution_window", CONFIG_T_DURATION,
	CONFIG_OFF(conv_attribution_window_ms), CONFIG_MS_S, 30 * CONFIG_MS_D)},
    {CONFIG_KEY("notify_email", CONFIG_T_STRING, CONFIG_OFF(conv_notify_email),
	3, EMAIL_ADDR_MAX)},
    {CONFIG_KEY("digest_interval", CONFIG_T_DURATION,
	CONFIG_OFF(conv_digest_interval_ms), CONFIG_MS_S, CONFIG_MS_D)},
    {CONFIG_KEY("stale_after", CONFIG_T_DURATION,
	CONFIG_OFF(conv_stale_after_ms), CONFIG_MS_S, 30 * CONFIG_MS_D)},
    {.name = NULL},
};

/* [smtp]: every key belongs to the smtp adapter (adapters/smtp.c). */
static const struct config_key config_smtp_keys[] = {
    {.name = NULL},
};

/* The generic keys of [sender NAME]; the adapter checks the rest. */
static const struct config_key config_sender_keys[] = {
    {CONFIG_KEY("provider", CONFIG_T_STRING, CONFIG_SND(provider), 1, 64)},
    {CONFIG_KEY("from", CONFIG_T_STRING, CONFIG_SND(from), 1, 256)},
    /* far above any provider's per-sender throughput */
    {CONFIG_KEY("rate", CONFIG_T_DOUBLE, CONFIG_SND(rate), 0, 10000)},
    {CONFIG_KEY("burst", CONFIG_T_UINT, CONFIG_SND(burst), 1, 100000)},
    {.name = NULL},
};

static const struct config_stype config_stypes[] = {
    {"daemon", config_daemon_keys, 0},
    {"http", config_http_keys, 0},
    {"http_client", config_client_keys, 0},
    {"store", config_store_keys, 0},
    {"dispatch", config_dispatch_keys, 0},
    {"sms", config_sms_keys, 0},
    {"alerts", config_alerts_keys, 0},
    {"conversations", config_conv_keys, 0},
    {"email", config_email_keys, CONFIG_S_RAW},
    {"smtp", config_smtp_keys, CONFIG_S_RAW},
    {"sender", config_sender_keys, CONFIG_S_LABEL | CONFIG_S_RAW},
    {"list", config_list_keys, CONFIG_S_LABEL},
    {NULL, NULL, 0},
};

/* Keys whose literal value is a secret (plus *_secret, *_token, ...). */
static const char *const config_secret_names[] = {"api_token", "auth_token",
    "password", "secret", NULL};
static const char *const config_secret_suffixes[] = {"_secret", "_token",
    "_password", NULL};

/* Records the first error of pass one, at the current line, and stops. */
static void
config_parse_fail(struct config_parse *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->stop)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	config_fail(p->err, p->errlen, p->cfg->file, p->line, "%s", msg);
	p->err_line = p->line;
	p->stop = true;
}

/*
 * The ini_reader: fgets() plus the line count, overlong-line detection,
 * a UTF-8 BOM and leading whitespace dropped, and [section] headers
 * recorded. inih calls the handler for a key right after this returns its
 * line, so p->line is the line of that key. Returning NULL ends the parse.
 */
static char *
config_reader(char *buf, int size, void *arg)
{
	struct config_parse *p = arg;
	size_t skip;

	if (p->stop || fgets(buf, size, p->fp) == NULL)
		return NULL;
	p->line++;
	if (!config_line_is_whole(p, buf)) {
		config_parse_fail(p, "line longer than %d characters",
		    size - 1);
		return NULL;
	}
	skip = 0;
	if (p->line == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0)
		skip = 3;
	skip += strspn(buf + skip, " \t\v\f");
	memmove(buf, buf + skip, strlen(buf + skip) + 1);
	if (buf[0] == '[' && config_begin_section(p, buf) == -1)
		return NULL;
	return buf;
}

/*
 * True if buf holds a whole line: it ends in a newline, or the file ends,
 * or only the line end (LF or CRLF) did not fit. Otherwise consumes the
 * rest of the overlong line.
 */
static bool
config_line_is_whole(struct config_parse *p, const char *buf)
{
	size_t len = strlen(buf);
	int c;

	if (len > 0 && buf[len - 1] == '\n')
		return true;
	if ((c = getc(p->fp)) == '\r')
		c = getc(p->fp);
	if (c == EOF || c == '\n')
		return true;
	while (c != EOF && c != '\n')
		c = getc(p->fp);
	return false;
}

/*
 * Starts the section whose "[header]" is buf (leading space already
 * dropped): name = text between the brackets, trimmed; type = its first
 * word; label = the rest, trimmed. A header inih will reject (no ']')
 * leaves no current section; inih then reports the syntax error.
 */
static int
config_begin_section(struct config_parse *p, char *buf)
{
	struct config *cfg = p->cfg;
	struct config_section *sec;
	char *end, *name, *rest;
	size_t i, n;

	p->cur = NULL;
	if ((end = strchr(buf, ']')) == NULL)
		return 0;
	rest = end + 1 + strspn(end + 1, " \t\r\n\v\f");
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		config_parse_fail(p, "text after the section header");
		return -1;
	}
	name = buf + 1 + strspn(buf + 1, " \t");
	while (end > name && strchr(" \t", end[-1]) != NULL)
		end--;
	if (end == name) {
		config_parse_fail(p, "empty section name []");
		return -1;
	}
	cfg->sections = xreallocarray(cfg->sections, cfg->nsections + 1,
	    sizeof(*cfg->sections));
	sec = &cfg->sections[cfg->nsections];
	memset(sec, 0, sizeof(*sec));
	sec->file = cfg->file;
	sec->line = p->line;
	sec->name = xstrndup(name, (size_t)(end - name));
	n = strcspn(sec->name, " \t");
	sec->type = xstrndup(sec->name, n);
	if (sec->name[n] != '\0')
		sec->label =
		    xstrdup(sec->name + n + strspn(sec->name + n, " \t"));
	cfg->nsections++;
	for (i = 0; i + 1 < cfg->nsections; i++) {
		if (strcmp(cfg->sections[i].type, sec->type) == 0 &&
		    (cfg->sections[i].label == NULL) == (sec->label == NULL) &&
		    (sec->label == NULL ||
			strcmp(cfg->sections[i].label, sec->label) == 0)) {
			config_parse_fail(p,
			    "duplicate section [%s] (first at line %d)",
			    sec->name, cfg->sections[i].line);
			return -1;
		}
	}
	p->cur = sec;
	return 0;
}

/*
 * The ini_handler: appends key = value to the current section after
 * ${ENV} expansion. The 'section' inih passes is ignored: inih truncates
 * long names, and the reader already knows the header. Returns 0 (an
 * error for inih) after recording the message.
 */
static int
config_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct config_parse *p = arg;
	struct config_section *sec = p->cur;
	const struct config_kv *dup;
	struct config_kv *kv;
	bool from_env;
	char *expanded;

	(void)section;
	if (p->stop)
		return 0;
	if (key == NULL || value == NULL)
		return 1; /* a build with INI_CALL_HANDLER_ON_NEW_SECTION */
	if (*key == '\0') {
		config_parse_fail(p,
		    "syntax error (expected [section] or key = value)");
		return 0;
	}
	if (sec == NULL) {
		config_parse_fail(p, "key '%s' is outside any [section]", key);
		return 0;
	}
	if ((dup = config_kv_lookup(sec, key)) != NULL) {
		config_parse_fail(p,
		    "duplicate key '%s' in [%s] (first at line %d)", key,
		    sec->name, dup->line);
		return 0;
	}
	if ((expanded = config_expand(p, key, value, &from_env)) == NULL)
		return 0;
	sec->kv = xreallocarray(sec->kv, sec->nkv + 1, sizeof(*sec->kv));
	kv = &sec->kv[sec->nkv++];
	kv->key = xstrdup(key);
	kv->value = expanded;
	kv->line = p->line;
	if (p->secret_key == NULL && !from_env && *value != '\0' &&
	    config_key_is_secret(key)) {
		p->secret_key = kv->key;
		p->secret_line = kv->line;
	}
	return 1;
}

/* Appends n bytes of s to b, keeping b->s NUL-terminated. */
static void
config_buf_add(struct config_buf *b, const char *s, size_t n)
{
	while (b->len + n + 1 > b->cap) {
		b->cap = b->cap == 0 ? 64 : b->cap * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/*
 * The value of the environment variable whose name starts at 'name' and
 * ends at the next '}' (*after is set past it), or NULL with the error
 * recorded if the name is malformed or the variable unset.
 */
static const char *
config_env(struct config_parse *p, const char *key, const char *name,
    const char **after)
{
	const char *end = strchr(name, '}'), *val;
	size_t n = end != NULL ? (size_t)(end - name) : 0;
	char *var;

	if (n == 0 || strspn(name, CONFIG_ENV_CHARS) != n) {
		config_parse_fail(p,
		    "bad ${NAME} reference in '%s' (NAME: letters, digits, "
		    "'_')",
		    key);
		return NULL;
	}
	var = xstrndup(name, n);
	if ((val = getenv(var)) == NULL)
		config_parse_fail(p,
		    "environment variable %s is not set (used by '%s')", var,
		    key);
	free(var);
	*after = end + 1;
	return val;
}

/*
 * Returns a new copy of value with each ${NAME} replaced by the
 * environment variable NAME, or NULL (error recorded) if one is unset or
 * malformed. *from_env tells whether any was used. Values of variables are
 * not expanded again.
 */
static char *
config_expand(struct config_parse *p, const char *key, const char *value,
    bool *from_env)
{
	struct config_buf b = {NULL, 0, 0};
	const char *s = value, *ref, *env;

	*from_env = false;
	config_buf_add(&b, "", 0);
	while ((ref = strstr(s, "${")) != NULL) {
		config_buf_add(&b, s, (size_t)(ref - s));
		if ((env = config_env(p, key, ref + 2, &s)) == NULL) {
			free(b.s);
			return NULL;
		}
		config_buf_add(&b, env, strlen(env));
		*from_env = true;
	}
	config_buf_add(&b, s, strlen(s));
	return b.s;
}

static bool
config_key_is_secret(const char *key)
{
	size_t i, klen = strlen(key), slen;

	for (i = 0; config_secret_names[i] != NULL; i++)
		if (strcmp(key, config_secret_names[i]) == 0)
			return true;
	for (i = 0; config_secret_suffixes[i] != NULL; i++) {
		slen = strlen(config_secret_suffixes[i]);
		if (klen > slen &&
		    strcmp(key + klen - slen, config_secret_suffixes[i]) == 0)
			return true;
	}
	return false;
}

/*
 * Pass one: opens cfg->file, runs inih over it and maps the outcome to one
 * "FILE:LINE:" message. The first error in the file wins, whether inih or
 * we found it. Fills *st (for the secrets check) from the open file.
 */
static int
config_read(struct config *cfg, struct config_parse *p, struct stat *st)
{
	int rc;

	if ((p->fp = fopen(cfg->file, "r")) == NULL)
		return config_fail(p->err, p->errlen, cfg->file, 0,
		    "cannot open: %s", strerror(errno));
	if (fstat(fileno(p->fp), st) == -1) {
		config_fail(p->err, p->errlen, cfg->file, 0, "cannot stat: %s",
		    strerror(errno));
		fclose(p->fp);
		return -1;
	}
	rc = ini_parse_stream(config_reader, p, config_handler, p);
	if (ferror(p->fp) && !p->stop)
		config_fail(p->err, p->errlen, cfg->file, 0, "read error: %s",
		    strerror(errno));
	else if (rc > 0 && (!p->stop || rc < p->err_line))
		config_fail(p->err, p->errlen, cfg->file, rc,
		    "syntax error (expected [section] or key = value)");
	else if (rc < 0 && !p->stop)
		config_fail(p->err, p->errlen, cfg->file, 0,
		    "cannot parse (inih error %d)", rc);
	else if (!p->stop) {
		fclose(p->fp);
		return 0;
	}
	fclose(p->fp);
	return -1;
}

/*
 * Loads and validates 'path' (see config.h). Pass one collects raw
 * sections, pass two fills the typed fields, and a file that holds a
 * literal secret while others can read it earns one warning.
 */
struct config *
config_load(const char *path, config_warn_fn *warn, void *arg, char *err,
    size_t errlen)
{
	struct config_parse p;
	struct config *cfg;
	struct stat st;
	char cwd[PATH_MAX], *text;

	cfg = xcalloc(1, sizeof(*cfg));
	cfg->file = xstrdup(path);
	cfg->log_level = LOG_LVL_INFO;
	cfg->shutdown_timeout_ms = 10 * CONFIG_MS_S;
	cfg->listen_port = 8080;
	cfg->max_body = CONFIG_MIB;
	cfg->request_timeout_ms = 30 * CONFIG_MS_S;
	cfg->session_idle_ms = 12 * CONFIG_MS_H;
	cfg->session_lifetime_ms = 7 * CONFIG_MS_D;
	cfg->batch = 256;
	cfg->max_in_flight = 512;
	cfg->lease_ms = 60 * CONFIG_MS_S;
	cfg->tick_ms = 200;
	cfg->retry_base_ms = CONFIG_MS_S;
	cfg->retry_max_ms = CONFIG_MS_H;
	cfg->validity_s = 24 * 3600;
	cfg->alerts_backlog = 2000;
	cfg->alerts_validity_s = 24 * 3600;
	cfg->alerts_max_optout_pct = 3;
	cfg->alerts_max_failure_pct = 10;
	cfg->alerts_guard_min = 200;
	cfg->conv_attribution_window_ms = 72 * CONFIG_MS_H;
	cfg->conv_digest_interval_ms = 5 * CONFIG_MS_M;
	cfg->conv_stale_after_ms = 24 * CONFIG_MS_H;
	cfg->client_connect_timeout_ms = 5 * CONFIG_MS_S;
	cfg->client_timeout_ms = 15 * CONFIG_MS_S;
	cfg->client_max_per_host = 16;
	cfg->client_max_total = 256;
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.err = err;
	p.errlen = errlen;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		config_fail(err, errlen, path, 0,
		    "cannot get the current directory: %s", strerror(errno));
		goto fail;
	}
	if (config_read(cfg, &p, &st) == -1 ||
	    config_validate(cfg, cwd, err, errlen) == -1)
		goto fail;
	if (warn != NULL && p.secret_key != NULL &&
	    (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
		text = xasprintf(
		    "%s: holds secrets (%s at line %d) but is readable by "
		    "others; chmod 600 %s or use ${ENV_VAR}",
		    cfg->file, p.secret_key, p.secret_line, cfg->file);
		warn(arg, text);
		free(text);
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

/*
 * Pass two: checks each raw section against config_stypes[] and fills
 * cfg; [sender NAME] sections become cfg->senders, in file order.
 */
static int
config_validate(struct config *cfg, const char *cwd, char *err, size_t errlen)
{
	const struct config_stype *st;
	struct config_section *sec;
	struct config_sender *snd;
	struct config_list *lst;
	struct config_val v;
	size_t i, n = 0, nl = 0;

	for (i = 0; i < cfg->nsections; i++) {
		if (strcmp(cfg->sections[i].type, "sender") == 0)
			n++;
		else if (strcmp(cfg->sections[i].type, "list") == 0)
			nl++;
	}
	cfg->senders = xcalloc(n, sizeof(*cfg->senders));
	cfg->lists = xcalloc(nl, sizeof(*cfg->lists));
	for (i = 0; i < cfg->nsections; i++) {
		sec = &cfg->sections[i];
		if ((st = config_stype_lookup(sec->type)) == NULL)
			return config_fail(err, errlen, cfg->file, sec->line,
			    "unknown section [%s]", sec->name);
		if (sec->label != NULL && !(st->flags & CONFIG_S_LABEL))
			return config_fail(err, errlen, cfg->file, sec->line,
			    "[%s] takes no name (found [%s])", sec->type,
			    sec->name);
		if (sec->label == NULL && (st->flags & CONFIG_S_LABEL))
			return config_fail(err, errlen, cfg->file, sec->line,
			    "[%s] needs a name: [%s NAME]", sec->type,
			    sec->type);
		memset(&v, 0, sizeof(v));
		v.err = err;
		v.errlen = errlen;
		v.cwd = cwd;
		if (!(st->flags & CONFIG_S_LABEL)) {
			if (config_apply(&v, sec, st, cfg) == -1)
				return -1;
			if (strcmp(sec->type, "email") == 0)
				cfg->email_section = sec;
			else if (strcmp(sec->type, "smtp") == 0)
				cfg->smtp_section = sec;
			continue;
		}
		if (strcmp(sec->type, "list") == 0) {
			lst = &cfg->lists[cfg->nlists++];
			lst->name = xstrdup(sec->label);
			lst->section = sec;
			if (config_apply(&v, sec, st, lst) == -1)
				return -1;
			continue;
		}
		snd = &cfg->senders[cfg->nsenders++];
		snd->name = xstrdup(sec->label);
		snd->section = sec;
		if (config_apply(&v, sec, st, snd) == -1 ||
		    config_sender_finish(snd, sec, err, errlen) == -1)
			return -1;
	}
	return config_finish(cfg, cwd, err, errlen);
}

/*
 * Sets every key of sec that st's table knows into base. A key it does
 * not know is an error, unless the section's other keys belong to an
 * adapter (CONFIG_S_RAW).
 */
static int
config_apply(struct config_val *v, const struct config_section *sec,
    const struct config_stype *st, void *base)
{
	const struct config_key *k;
	size_t i;

	for (i = 0; i < sec->nkv; i++) {
		for (k = st->keys; k->name != NULL; k++)
			if (strcmp(k->name, sec->kv[i].key) == 0)
				break;
		if (k->name == NULL) {
			if (st->flags & CONFIG_S_RAW)
				continue;
			return config_fail(v->err, v->errlen, sec->file,
			    sec->kv[i].line, "unknown key '%s' in [%s]",
			    sec->kv[i].key, sec->name);
		}
		config_val_init(v, sec, &sec->kv[i], v->err, v->errlen);
		if (config_setters[k->type](v, k, base) == -1)
			return -1;
	}
	return 0;
}

/* The checks of [sender NAME] beyond single keys, and burst's default. */
static int
config_sender_finish(struct config_sender *snd,
    const struct config_section *sec, char *err, size_t errlen)
{
	size_t n = strlen(snd->name);

	if (n > CONFIG_NAME_MAX || strspn(snd->name, CONFIG_NAME_CHARS) != n)
		return config_fail(err, errlen, sec->file, sec->line,
		    "sender name '%s' must be 1 to %d letters, digits, '_' or "
		    "'-'",
		    snd->name, CONFIG_NAME_MAX);
	if (snd->provider == NULL)
		return config_fail(err, errlen, sec->file, sec->line,
		    "[%s] needs provider = ...", sec->name);
	if (snd->burst == 0)
		snd->burst = snd->rate > 1 ? (unsigned)ceil(snd->rate) : 1;
	return 0;
}

/*
 * Fills the defaults that depend on other keys (paths under var_dir),
 * then checks what spans keys: retry_base <= retry_max, default_sender.
 */
static int
config_finish(struct config *cfg, const char *cwd, char *err, size_t errlen)
{
	const struct config_section *sec;
	char a[32], b[32];

	if (cfg->var_dir == NULL)
		cfg->var_dir = config_abspath(cwd, "var");
	if (cfg->log_target == NULL)
		cfg->log_target = xstrdup("stderr");
	if (cfg->listen_addr == NULL)
		cfg->listen_addr = xstrdup("127.0.0.1");
	if (cfg->api_token_file == NULL)
		cfg->api_token_file = xasprintf("%s/api.token", cfg->var_dir);
	if (cfg->db_path == NULL)
		cfg->db_path = xasprintf("%s/outreachd.db", cfg->var_dir);
	if (cfg->email_adapter == NULL)
		cfg->email_adapter = xstrdup("file");
	else if (strcmp(cfg->email_adapter, "smtp") == 0 &&
	    cfg->smtp_section == NULL)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(cfg->email_section, "adapter"),
		    "[email] adapter = smtp needs an [smtp] section (host, "
		    "from, ...)");
	if (cfg->email_bounce_limit == 0)
		cfg->email_bounce_limit = 3;
	if (cfg->email_secret_file == NULL)
		cfg->email_secret_file =
		    xasprintf("%s/email.key", cfg->var_dir);
	if (cfg->retry_base_ms > cfg->retry_max_ms) {
		sec = config_section_by_type(cfg, "dispatch");
		return config_fail(err, errlen, cfg->file,
		    config_section_get(sec, "retry_max") != NULL
			? config_section_line(sec, "retry_max")
			: config_section_line(sec, "retry_base"),
		    "retry_max (%s) must not be below retry_base (%s)",
		    config_duration_to_text(cfg->retry_max_ms, a, sizeof(a)),
		    config_duration_to_text(cfg->retry_base_ms, b, sizeof(b)));
	}
	if (cfg->api_token != NULL &&
	    strlen(cfg->api_token) < CONFIG_TOKEN_MIN) {
		sec = config_section_by_type(cfg, "http");
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "api_token"),
		    "api_token has %zu characters, fewer than %d: it is all "
		    "that guards the API (openssl rand -hex 32 makes a good "
		    "one)",
		    strlen(cfg->api_token), CONFIG_TOKEN_MIN);
	}
	if (cfg->default_sender == NULL) {
		if (cfg->nsenders > 0)
			cfg->default_sender = xstrdup(cfg->senders[0].name);
	} else if (config_sender_lookup(cfg, cfg->default_sender) == NULL) {
		sec = config_section_by_type(cfg, "sms");
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "default_sender"),
		    "default_sender '%s' is not a [sender %s] section",
		    cfg->default_sender, cfg->default_sender);
	}
	if (config_store_finish(cfg, err, errlen) == -1 ||
	    config_alerts_finish(cfg, err, errlen) == -1 ||
	    config_conv_finish(cfg, err, errlen) == -1)
		return -1;
	return config_sms_finish(cfg, err, errlen);
}

/*
 * [store]: backend sqlite (path) or postgresql (url, node). A key of the
 * other backend is refused rather than ignored: a node meant for the
 * shared database must not quietly run on a file of its own. The node
 * name defaults to the host name (one node per host); two nodes on one
 * host need a name each.
 */
static int
config_store_finish(struct config *cfg, char *err, size_t errlen)
{
	const struct config_section *sec = config_section_by_type(cfg, "store");
	char host[256];
	size_t n;

	if (cfg->store_backend == NULL)
		cfg->store_backend = xstrdup("sqlite");
	if (strcmp(cfg->store_backend, "sqlite") == 0) {
		if (cfg->store_url == NULL && cfg->store_node == NULL)
			return 0;
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec,
			cfg->store_url != NULL ? "url" : "node"),
		    "%s is for backend = postgresql; this [store] is the "
		    "SQLite file (set backend = postgresql, or remove it)",
		    cfg->store_url != NULL ? "url" : "node");
	}
#ifndef HAVE_LIBPQ
	return config_fail(err, errlen, cfg->file,
	    config_section_line(sec, "backend"),
	    "backend = postgresql: this outreachd was built without "
	    "PostgreSQL support (install libpq-dev and run configure again)");
#endif
	if (config_section_get(sec, "path") != NULL)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "path"),
		    "path is the SQLite file; with backend = postgresql the "
		    "store is url = postgresql://...");
	if (cfg->store_url == NULL)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "backend"),
		    "backend = postgresql needs url = postgresql://... (the "
		    "password through ${ENV}, e.g. ${OUTREACHD_PG_PASSWORD})");
	if (cfg->store_node == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			strlcpy(host, "outreachd", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0'; /* the short name */
		cfg->store_node = xstrdup(host);
	}
	n = strlen(cfg->store_node);
	if (n == 0 || n > CONFIG_NAME_MAX ||
	    strspn(cfg->store_node, CONFIG_NAME_CHARS ".") != n)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec,
			config_section_get(sec, "node") != NULL ? "node"
								: "backend"),
		    "node name '%s' must be 1 to %d letters, digits, '.', "
		    "'_' or '-' (set [store] node)",
		    cfg->store_node, CONFIG_NAME_MAX);
	return 0;
}

/*
 * [alerts]: quiet_start and quiet_end as HH:MM, a window that does not
 * cross midnight and lasts an hour at least, and a time_zone of the
 * system's tz database.
 */
static int
config_alerts_finish(struct config *cfg, char *err, size_t errlen)
{
	const struct config_section *sec =
	    config_section_by_type(cfg, "alerts");
	struct quiet_window w = {QUIET_DEFAULT_START, QUIET_DEFAULT_END};
	char why[160];

	if (cfg->quiet_start_raw != NULL &&
	    quiet_time_parse(cfg->quiet_start_raw, &w.start_min, why,
		sizeof(why)) == -1)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "quiet_start"), "quiet_start: %s",
		    why);
	if (cfg->quiet_end_raw != NULL &&
	    quiet_time_parse(cfg->quiet_end_raw, &w.end_min, why,
		sizeof(why)) == -1)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "quiet_end"), "quiet_end: %s",
		    why);
	if (quiet_window_check(&w, why, sizeof(why)) == -1)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec,
			cfg->quiet_end_raw != NULL ? "quiet_end"
						   : "quiet_start"),
		    "%s", why);
	cfg->quiet_start_min = w.start_min;
	cfg->quiet_end_min = w.end_min;
	if (cfg->alerts_time_zone == NULL)
		cfg->alerts_time_zone = xstrdup(CONFIG_ALERTS_TIME_ZONE);
	else if (!quiet_zone_valid(cfg->alerts_time_zone))
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "time_zone"),
		    "time_zone '%s' is not a zone of the system's tz database "
		    "(an IANA name such as America/Chicago; see "
		    "/usr/share/zoneinfo)",
		    cfg->alerts_time_zone);
	return 0;
}

/* [conversations] notify_email: one address, by the rule of email_addr.h,
 * kept lower-cased. */
static int
config_conv_finish(struct config *cfg, char *err, size_t errlen)
{
	char why[160], addr[EMAIL_ADDR_MAX + 1];

	if (cfg->conv_notify_email == NULL)
		return 0;
	if (email_addr_normalize(cfg->conv_notify_email, addr, sizeof(addr),
		why, sizeof(why)) == -1)
		return config_fail(err, errlen, cfg->file,
		    config_section_line(
			config_section_by_type(cfg, "conversations"),
			"notify_email"),
		    "notify_email: not an email address: %s", why);
	free(cfg->conv_notify_email);
	cfg->conv_notify_email = xstrdup(addr);
	return 0;
}

/* A new copy of s, or of def when s is NULL. */
static char *
config_text_default(char *s, const char *def)
{
	return s != NULL ? s : xstrdup(def);
}

/*
 * [sms] beyond single keys: the region libphonenumber must know, the
 * extra opt-out words, the default texts; then every [list NAME].
 */
static int
config_sms_finish(struct config *cfg, char *err, size_t errlen)
{
	const struct config_section *sec = config_section_by_type(cfg, "sms");
	size_t i;
	int line;

	if (cfg->default_region == NULL)
		cfg->default_region = xstrdup("US");
	if (!phone_region_known(cfg->default_region))
		return config_fail(err, errlen, cfg->file,
		    config_section_line(sec, "default_region"),
		    "default_region '%s' is not a country code libphonenumber "
		    "knows (ISO 3166-1 alpha-2, e.g. US, GB)",
		    cfg->default_region);
	if (cfg->stop_words_raw != NULL) {
		line = config_section_line(sec, "stop_words");
		if (config_words_has_empty(cfg->stop_words_raw))
			return config_fail(err, errlen, cfg->file, line,
			    "stop_words '%s' has an empty entry: separate "
			    "words with one comma, none at either end",
			    cfg->stop_words_raw);
		cfg->stop_words =
		    config_split_words(cfg->stop_words_raw, &cfg->nstop_words);
		for (i = 0; i < cfg->nstop_words; i++)
			if (strlen(cfg->stop_words[i]) > CONFIG_KEYWORD_MAX)
				return config_fail(err, errlen, cfg->file, line,
				    "stop word '%s' is longer than %d "
				    "characters",
				    cfg->stop_words[i], CONFIG_KEYWORD_MAX);
	}
	if (config_texts_check(config_sms_texts, cfg, sec, err, errlen) == -1)
		return -1;
	cfg->stop_reply = config_text_default(cfg->stop_reply, config_def_stop);
	cfg->start_reply =
	    config_text_default(cfg->start_reply, config_def_start);
	cfg->help_reply = config_text_default(cfg->help_reply, config_def_help);
	cfg->already_reply =
	    config_text_default(cfg->already_reply, config_def_already);
	cfg->confirm_reply =
	    config_text_default(cfg->confirm_reply, config_def_confirm);
	cfg->welcome = config_text_default(cfg->welcome, config_def_welcome);
	cfg->reask_reply =
	    config_text_default(cfg->reask_reply, config_def_reask);
	for (i = 0; i < cfg->nlists; i++)
		if (config_list_finish(cfg, &cfg->lists[i], err, errlen) == -1)
			return -1;
	return 0;
}

/*
 * Splits raw at commas and white space into new upper-cased words (empty
 * ones dropped); *n receives their number. The caller frees them with
 * config_words_free().
 */
static char **
config_split_words(const char *raw, size_t *n)
{
	char **w = NULL;
	const char *p = raw;
	size_t len, j;

	*n = 0;
	for (;;) {
		p += strspn(p, ", \t");
		if ((len = strcspn(p, ", \t")) == 0)
			break;
		w = xreallocarray(w, *n + 1, sizeof(*w));
		w[*n] = xstrndup(p, len);
		for (j = 0; j < len; j++)
			if (w[*n][j] >= 'a' && w[*n][j] <= 'z')
				w[*n][j] = (char)(w[*n][j] - 'a' + 'A');
		(*n)++;
		p += len;
	}
	return w;
}

/* True if a comma-separated entry of raw is empty ("A,,B", "A,"). */
static bool
config_words_has_empty(const char *raw)
{
	size_t n;

	for (;;) {
		raw += strspn(raw, " \t");
		if ((n = strcspn(raw, ",")) == 0)
			return true;
		if (raw[n] == '\0')
			return false;
		raw += n + 1;
	}
}

/*
 * Refuses, at its line, a {placeholder} in a text of 'rules' (set in sec;
 * base is the struct holding them) that inbound.c does not fill in that
 * text. A brace not around a name is only text.
 */
static int
config_texts_check(const struct config_text_rule *rules, const void *base,
    const struct config_section *sec, char *err, size_t errlen)
{
	const struct config_text_rule *r;
	const char *text, *p;
	char name[CONFIG_PH_MAX + 3];
	size_t n;

	for (r = rules; r->key != NULL; r++) {
		text =
		    *(char *const *)(const void *)((const char *)base + r->off);
		for (p = text; p != NULL && (p = strchr(p, '{')) != NULL; p++) {
			n = strspn(p + 1, CONFIG_ENV_CHARS);
			if (n == 0 || n > CONFIG_PH_MAX || p[n + 1] != '}')
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)n + 2, p);
			if (strstr(r->known, name) == NULL)
				return config_fail(err, errlen, sec->file,
				    config_section_line(sec, r->key),
				    "%s: unknown placeholder %s (this text can "
				    "hold %s)",
				    r->key, name, r->known);
		}
	}
	return 0;
}

static void
config_words_free(char **w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

/* The checks of [list NAME] beyond single keys. */
static int
config_list_finish(struct config *cfg, struct config_list *l, char *err,
    size_t errlen)
{
	const struct config_section *sec = l->section;
	size_t n = strlen(l->name);

	if (n > CONFIG_NAME_MAX || strspn(l->name, CONFIG_NAME_CHARS) != n)
		return config_fail(err, errlen, sec->file, sec->line,
		    "list name '%s' must be 1 to %d letters, digits, '_' or "
		    "'-'",
		    l->name, CONFIG_NAME_MAX);
	if (l->keywords_raw == NULL)
		return config_fail(err, errlen, sec->file, sec->line,
		    "[%s] needs keywords = ... (the words members text to "
		    "join)",
		    sec->name);
	if (l->sender != NULL && config_sender_lookup(cfg, l->sender) == NULL)
		return config_fail(err, errlen, sec->file,
		    config_section_line(sec, "sender"),
		    "sender '%s' of [%s] is not a [sender %s] section",
		    l->sender, sec->name, l->sender);
	if (l->time_zone != NULL && !quiet_zone_valid(l->time_zone))
		return config_fail(err, errlen, sec->file,
		    config_section_line(sec, "time_zone"),
		    "time_zone '%s' of [%s] is not a zone of the system's tz "
		    "database (an IANA name such as America/Chicago; see "
		    "/usr/share/zoneinfo)",
		    l->time_zone, sec->name);
	if (config_texts_check(config_list_texts, l, sec, err, errlen) == -1 ||
	    config_list_keywords(cfg, l, err, errlen) == -1)
		return -1;
	return config_list_questions(l, err, errlen);
}

/*
 * keywords = A, B: letters and digits, upper-cased, not a compliance word
 * (STOP, HELP, YES, ... or an extra stop word) and not another list's.
 */
static int
config_list_keywords(struct config *cfg, struct config_list *l, char *err,
    size_t errlen)
{
	const struct config_section *sec = l->section, *osec;
	const struct config_list *other;
	int line = config_section_line(sec, "keywords");
	size_t i, j, len;
	const char *k;

	l->keywords = config_split_words(l->keywords_raw, &l->nkeywords);
	if (l->nkeywords == 0)
		return config_fail(err, errlen, sec->file, line,
		    "keywords of [%s] must name at least one keyword",
		    sec->name);
	if (config_words_has_empty(l->keywords_raw))
		return config_fail(err, errlen, sec->file, line,
		    "keywords '%s' of [%s] has an empty entry: separate words "
		    "with one comma, none at either end",
		    l->keywords_raw, sec->name);
	for (i = 0; i < l->nkeywords; i++) {
		k = l->keywords[i];
		len = strlen(k);
		if (len > CONFIG_KEYWORD_MAX ||
		    strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != len)
			return config_fail(err, errlen, sec->file, line,
			    "keyword '%s' of [%s] must be 1 to %d letters or "
			    "digits",
			    k, sec->name, CONFIG_KEYWORD_MAX);
		if (inbound_word_reserved(k, cfg))
			return config_fail(err, errlen, sec->file, line,
			    "keyword '%s' of [%s] is reserved (an opt-out, "
			    "opt-in or help word)",
			    k, sec->name);
		for (j = 0; j < i; j++)
			if (strcmp(l->keywords[j], k) == 0)
				return config_fail(err, errlen, sec->file, line,
				    "keyword '%s' appears twice in [%s]", k,
				    sec->name);
		/* lists before this one are complete */
		for (other = cfg->lists; other < l; other++) {
			for (j = 0; j < other->nkeywords; j++)
				if (strcmp(other->keywords[j], k) == 0)
					break;
			if (j == other->nkeywords)
				continue;
			osec = other->section;
			return config_fail(err, errlen, sec->file, line,
			    "keyword '%s' of [%s] is already a keyword of "
			    "[%s] at %s:%d",
			    k, sec->name, osec->name, osec->file,
			    config_section_line(osec, "keywords"));
		}
	}
	return 0;
}

/* questions = first_name, zip: known member fields, each once. */
static int
config_list_questions(struct config_list *l, char *err, size_t errlen)
{
	static const char *const fields[] = {"first_name", "last_name", "zip",
	    "email", NULL};
	const struct config_section *sec = l->section;
	int line = config_section_line(sec, "questions");
	size_t i, j, k;
	char *q;

	if (l->questions_raw == NULL)
		return 0;
	l->questions = config_split_words(l->questions_raw, &l->nquestions);
	for (i = 0; i < l->nquestions; i++) {
		q = l->questions[i];
		for (k = 0; q[k] != '\0'; k++)
			if (q[k] >= 'A' && q[k] <= 'Z')
				q[k] = (char)(q[k] - 'A' + 'a');
		for (j = 0; fields[j] != NULL; j++)
			if (strcmp(fields[j], q) == 0)
				break;
		if (fields[j] == NULL)
			return config_fail(err, errlen, sec->file, line,
			    "question '%s' of [%s] must be first_name, "
			    "last_name, zip or email",
			    q, sec->name);
		for (j = 0; j < i; j++)
			if (strcmp(l->questions[j], q) == 0)
				return config_fail(err, errlen, sec->file, line,
				    "question '%s' appears twice in [%s]", q,
				    sec->name);
	}
	return 0;
}

static const struct config_stype *
config_stype_lookup(const char *name)
{
	const struct config_stype *st;

	for (st = config_stypes; st->name != NULL; st++)
		if (strcmp(st->name, name) == 0)
			return st;
	return NULL;
}

static const struct config_section *
config_section_by_type(const struct config *cfg, const char *type)
{
	size_t i;

	for (i = 0; i < cfg->nsections; i++)
		if (strcmp(cfg->sections[i].type, type) == 0)
			return &cfg->sections[i];
	return NULL;
}

/*
 * Frees cfg and everything it points to: sections, keys, senders and the
 * typed strings. Pointers handed out by the getters die with it.
 */
void
config_free(struct config *cfg)
{
	struct config_section *sec;
	struct config_list *l;
	size_t i, j;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nsections; i++) {
		sec = &cfg->sections[i];
		for (j = 0; j < sec->nkv; j++) {
			free(sec->kv[j].key);
			free(sec->kv[j].value);
		}
		free(sec->kv);
		free(sec->name);
		free(sec->type);
		free(sec->label);
	}
	free(cfg->sections);
	for (i = 0; i < cfg->nsenders; i++) {
		free(cfg->senders[i].name);
		free(cfg->senders[i].provider);
		free(cfg->senders[i].from);
	}
	free(cfg->senders);
	for (i = 0; i < cfg->nlists; i++) {
		l = &cfg->lists[i];
		free(l->name);
		config_words_free(l->keywords, l->nkeywords);
		config_words_free(l->questions, l->nquestions);
		free(l->sender);
		free(l->welcome);
		free(l->ask_first_name);
		free(l->ask_last_name);
		free(l->ask_zip);
		free(l->ask_email);
		free(l->welcome_email_subject);
		free(l->welcome_email);
		free(l->time_zone);
		free(l->keywords_raw);
		free(l->questions_raw);
	}
	free(cfg->lists);
	free(cfg->quiet_start_raw);
	free(cfg->quiet_end_raw);
	free(cfg->alerts_time_zone);
	free(cfg->conv_notify_email);
	free(cfg->default_region);
	free(cfg->program);
	free(cfg->contact);
	config_words_free(cfg->stop_words, cfg->nstop_words);
	free(cfg->stop_words_raw);
	free(cfg->stop_reply);
	free(cfg->start_reply);
	free(cfg->help_reply);
	free(cfg->already_reply);
	free(cfg->confirm_reply);
	free(cfg->welcome);
	free(cfg->reask_reply);
	free(cfg->var_dir);
	free(cfg->log_target);
	free(cfg->listen_addr);
	free(cfg->api_token);
	free(cfg->api_token_file);
	free(cfg->public_url);
	free(cfg->ui_dir);
	free(cfg->client_ca_file);
	free(cfg->db_path);
	free(cfg->store_backend);
	free(cfg->store_url);
	free(cfg->store_node);
	free(cfg->email_adapter);
	free(cfg->email_unsubscribe_mailto);
	free(cfg->email_secret_file);
	free(cfg->dkim_domain);
	free(cfg->dkim_selector);
	free(cfg->dkim_key_file);
	free(cfg->default_sender);
	free(cfg->file);
	free(cfg);
}

/* The [sender 'name'] of cfg (borrowed), or NULL if there is none. */
const struct config_sender *
config_sender_lookup(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nsenders; i++)
		if (strcmp(cfg->senders[i].name, name) == 0)
			return &cfg->senders[i];
	return NULL;
}

/* The [list 'name'] of cfg (borrowed), or NULL if there is none. */
const struct config_list *
config_list_lookup(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nlists; i++)
		if (strcmp(cfg->lists[i].name, name) == 0)
			return &cfg->lists[i];
	return NULL;
}

/* The list one of whose keywords is 'keyword' (upper-case), or NULL. */
const struct config_list *
config_list_by_keyword(const struct config *cfg, const char *keyword)
{
	size_t i, j;

	for (i = 0; i < cfg->nlists; i++)
		for (j = 0; j < cfg->lists[i].nkeywords; j++)
			if (strcmp(cfg->lists[i].keywords[j], keyword) == 0)
				return &cfg->lists[i];
	return NULL;
}
