/*
 * outreachctl.c - the admin CLI for outreachd: main(), the global options,
 * the command table and the commands.
 *
 * outreachctl talks to a running daemon through its HTTP API only:
 * libcurl for HTTP, jansson for JSON, never the database file. Each
 * command is one ctl_cmd_* function found by name in ctl_cmds[];
 * a command parses its own options, makes its requests through ctl_http()
 * (ctl_http.c) and prints either a small table (ctl_table.c) or, with -j,
 * the daemon's JSON as is.
 *
 * Everything printed that came from the daemon goes through ctl_sanitize(),
 * so a message body cannot send escape sequences to the terminal. The API
 * token is only ever put in the Authorization header; it is never printed,
 * not even in error messages, which name where it came from instead.
 *
 * Exit status: 0 success; 1 the daemon refused (API error) or a waited-for
 * message did not end sent; 2 usage error; 3 the daemon could not be
 * reached.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "compat.h"
#include "ctl.h"
#include "xmalloc.h"

#define CTL_DEFAULT_URL	   "http://127.0.0.1:8080"
#define CTL_WAIT_DEFAULT_S 60L	  /* send --wait without SECONDS */
#define CTL_WAIT_MAX_S	   86400L /* a day; longer is a typo */
#define CTL_POLL_FIRST_MS  50L	  /* console sends settle in ~ms */
#define CTL_POLL_MAX_MS	   500L	  /* then back off to 2 polls/s */

struct ctl_send_opts {
	const char *to;
	const char *body;
	const char *body_file;
	const char *channel;
	const char *subject;
	const char *html_file;
	const char *sender;
	const char *from;
	const char *key;
	const char *not_before;
	const char *expires_at;
	long priority; /* -1 = not given */
	bool wait;
	long wait_s;
};

static const char *ctl_cmd_names(void);
static void ctl_cmd_usage(const struct ctl_cmd *, FILE *);
static int ctl_cmd_help(struct ctl *, int, char **);
static int ctl_cmd_message(struct ctl *, int, char **);
static int ctl_cmd_send(struct ctl *, int, char **);
static int ctl_cmd_status(struct ctl *, int, char **);
static int ctl_send_parse(struct ctl *, struct ctl_send_opts *, int, char **);
static int ctl_send_check(struct ctl_send_opts *);
static int ctl_send_json(const struct ctl_send_opts *, json_t **);
static int ctl_send_time(json_t *, const char *, const char *);
static int ctl_send_str(json_t *, const char *, const char *, size_t);
static int ctl_send_wait_arg(struct ctl_send_opts *, int, char **);
static int ctl_wait_outcome(const char *);
static void ctl_wait_print(json_int_t, const json_t *, int);
static int ctl_send_wait(struct ctl *, json_int_t, long);
static void ctl_sleep_ms(long);
static double ctl_now(void);
static int ctl_message_fetch(struct ctl *, json_int_t, struct ctl_reply *);
static char *ctl_error_text(const json_t *);
static void ctl_message_history(const json_t *);
static void ctl_message_print(const json_t *);
static void ctl_cols_add(const char **, size_t *, const char *);
static bool ctl_status_has_any(const json_t *, const char *);
static size_t ctl_status_cols(const json_t *, const char **);
static void ctl_status_queue(const json_t *);
static void ctl_status_senders(const json_t *);
static void ctl_status_print(const struct ctl *, const json_t *,
    const json_t *);
static void ctl_global_usage(FILE *);
static int ctl_global_opts(struct ctl *, int, char **);
static void ctl_url_set(struct ctl *, const char *);

static const char ctl_help_send[] =
    "Queue one outbound message (POST /api/v1/messages) and print\n"
    "\"queued message ID\". A repeated --idempotency-key does not queue a\n"
    "second message; it prints \"message ID already exists (same\n"
    "idempotency key)\" and exits 0.\n"
    "\n"
    "Options:\n"
    "  --to ADDR              recipient: an E.164 number (+15551230001) or\n"
    "                         an email address (required)\n"
    "  --body TEXT            message text\n"
    "  --body-file FILE|-     read the text from FILE, or stdin for '-';\n"
    "                         trailing newlines are removed\n"
    "                         (exactly one of --body and --body-file)\n"
    "  --channel sms|email    default: email if ADDR contains '@', else sms\n"
    "  --subject TEXT         subject (required for email)\n"
    "  --html-file FILE|-     HTML alternative part (email)\n"
    "  --sender NAME          SMS sender, a [sender NAME] section of the\n"
    "                         daemon's config (default: [sms] default_sender)\n"
    "  --from ADDR            from number or address (default: the sender's)\n"
    "  --priority N           0..10, higher first (daemon default 5)\n"
    "  --idempotency-key KEY  1..200 characters; retrying with the same KEY\n"
    "                         never queues a second message\n"
    "  --not-before TIME      do not send before TIME\n"
    "  --expires-at TIME      give up (status expired) after TIME\n"
    "  --wait [SECONDS]       poll the message until it is sent or final,\n"
    "                         at most SECONDS (default 60); exit 1 unless it\n"
    "                         ends sent or delivered\n"
    "  -j, --json             print the daemon's JSON reply (with --wait,\n"
    "                         then the message's final JSON, one per line)\n"
    "  -q, --quiet            print only the message id\n"
    "  -h, --help             show this help\n"
    "\n"
    "TIME is ISO-8601 UTC (2026-11-27T10:00:00Z), unix seconds (1795780800)\n"
    "or relative to now: +N with an optional unit s, m, h or d (+90s, +2h).\n"
    "\n"
    "Examples:\n"
    "  outreachctl send --to +15551230001 --body 'Meeting at 7pm' --wait\n"
    "  echo 'Hello' | outreachctl send --to a@example.org --subject Hi \\\n"
    "      --body-file -\n";

static const char ctl_help_status[] =
    "Show the daemon's health (GET /healthz), version and uptime, the\n"
    "number of messages per channel and status, and the configured senders\n"
    "(GET /api/v1/status). Status columns other than queued, sending, sent\n"
    "and failed are shown only when some count is not zero.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print {\"health\": <healthz reply>, \"status\": <status\n"
    "               reply>}\n"
    "  -q, --quiet  print nothing; the exit status says whether the daemon\n"
    "               is healthy (0) or not (1)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exits 1 when /healthz does not answer 200 (for example when the store\n"
    "fails).\n";

static const char ctl_help_message[] =
    "Show one message (GET /api/v1/messages/ID): its fields, its body and\n"
    "its status history.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print the daemon's JSON reply\n"
    "  -q, --quiet  print only the status (queued, sending, sent, ...)\n"
    "  -h, --help   show this help\n";

static const char ctl_help_help[] =
    "Show the global help, or COMMAND's help (the same as\n"
    "'outreachctl COMMAND --help').\n";

static const struct ctl_cmd ctl_cmds[] = {
    {"status", ctl_cmd_status, "", "status",
	"show health, uptime, queue counts and senders", ctl_help_status},
    {"send", ctl_cmd_send, "--to ADDR ...",
	"send --to ADDR (--body TEXT | --body-file FILE|-) [options]",
	"queue one SMS or email message", ctl_help_send},
    {"message", ctl_cmd_message, "ID", "message ID",
	"show one message and its status history", ctl_help_message},
    {"members", ctl_cmd_members, "SUBCOMMAND ...",
	"members (find|show|add|update|optout|optin|consent) ...",
	"find, show, add or change members; consent logs", ctl_help_members},
    {"lists", ctl_cmd_lists, "[SUBCOMMAND]",
	"lists [show NAME|subscribe|unsubscribe ...]",
	"show lists and change who is on them", ctl_help_lists},
    {"import", ctl_cmd_import, "FILE.csv ...",
	"import FILE.csv --list NAME --source TEXT [options]",
	"import members from a CSV file", ctl_help_import},
    {"export", ctl_cmd_export, "list|consent ...",
	"export (list NAME | consent [PHONE|EMAIL]) [-o FILE]",
	"a list's members or the consent log as CSV", ctl_help_export},
    {"alert", ctl_cmd_alert, "SUBCOMMAND ...",
	"alert (create|preview|schedule|send|pause|resume|cancel|show|list|"
	"watch) ...",
	"make, preview, send and watch action alerts", ctl_help_alert},
    {"inbox", ctl_cmd_inbox, "[options]",
	"inbox [--status S] [--unread] [--assigned me|none|ID] [--stale] "
	"[--list ID] [--alert ID] [--search TEXT] [--limit N]",
	"list conversations with members (the staff inbox)", ctl_help_inbox},
    {"thread", ctl_cmd_conv, "ID", "thread ID",
	"show a conversation: messages both ways and notes", ctl_help_thread},
    {"reply", ctl_cmd_conv_write, "ID TEXT", "reply ID (TEXT | --saved ID)",
	"text a member in a conversation", ctl_help_reply},
    {"assign", ctl_cmd_conv_write, "ID STAFF", "assign ID (STAFF|me|none)",
	"assign a conversation, or release it", ctl_help_assign},
    {"close", ctl_cmd_conv, "ID", "close ID", "close a conversation",
	ctl_help_close},
    {"reopen", ctl_cmd_conv, "ID", "reopen ID", "reopen a conversation",
	ctl_help_reopen},
    {"note", ctl_cmd_conv_write, "ID TEXT", "note ID TEXT",
	"add an internal note to a conversation", ctl_help_note},
    {"staff", ctl_cmd_staff, "SUBCOMMAND ...",
	"staff (add|list|disable|passwd) ...", "manage staff accounts (admins)",
	ctl_help_staff},
    {"token", ctl_cmd_token, "SUBCOMMAND ...", "token (create|list|revoke) ...",
	"make, list and revoke API tokens", ctl_help_token},
    {"session", ctl_cmd_session, "SUBCOMMAND ...", "session (list|revoke) ...",
	"list and end staff web sessions", ctl_help_session},
    {"help", ctl_cmd_help, "[COMMAND]", "help [COMMAND]",
	"show this help, or a command's", ctl_help_help},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

/*
 * Prints "outreachctl: [CMD: ]MESSAGE" and a hint to stderr, and returns
 * CTL_EX_USAGE. 'cmd' may be NULL for global errors.
 */
int
ctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "outreachctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'outreachctl %s%s--help'.\n", cmd ? cmd : "",
	    cmd ? " " : "");
	return CTL_EX_USAGE;
}

/*
 * Handles the options every command takes (-j, -q, -h) and getopt's
 * errors, for option character 'ch'. Returns CTL_CONTINUE, or the exit
 * status (0 after --help).
 */
int
ctl_common_opt(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv, int ch)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";

	switch (ch) {
	case 'j':
		ctl->json = true;
		return CTL_CONTINUE;
	case 'q':
		ctl->quiet = true;
		return CTL_CONTINUE;
	case 'h':
		ctl_cmd_usage(cmd, stdout);
		printf("\n%s", cmd->help);
		return CTL_EX_OK;
	case ':':
		return ctl_usage_error(cmd->name, "option '%s' needs a value",
		    arg);
	default:
		return ctl_usage_error(cmd->name, "unknown option '%s'", arg);
	}
}

/*
 * Option parsing for commands that take only the common options. Leaves
 * optind at the first operand. Returns CTL_CONTINUE or an exit status.
 */
int
ctl_cmd_opts(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, rc;

	optind = 0; /* glibc: start afresh on this argv */
	while ((ch = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1)
		if ((rc = ctl_common_opt(ctl, cmd, argc, argv, ch)) !=
		    CTL_CONTINUE)
			return rc;
	return CTL_CONTINUE;
}

const struct ctl_cmd *
ctl_cmd_lookup(const char *name)
{
	const struct ctl_cmd *cmd;

	for (cmd = ctl_cmds; cmd->name != NULL; cmd++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

/* "status, send, ..., help": every command of ctl_cmds[], in order. */
static const char *
ctl_cmd_names(void)
{
	static char names[256];
	const struct ctl_cmd *cmd;

	names[0] = '\0';
	for (cmd = ctl_cmds; cmd->name != NULL; cmd++) {
		if (cmd != ctl_cmds)
			strlcat(names, ", ", sizeof(names));
		strlcat(names, cmd->name, sizeof(names));
	}
	return names;
}

static void
ctl_cmd_usage(const struct ctl_cmd *cmd, FILE *fp)
{
	fprintf(fp, "usage: outreachctl [global options] %s\n", cmd->usage);
}

static int
ctl_cmd_help(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd;
	int rc;

	if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("help"), argc, argv)) !=
	    CTL_CONTINUE)
		return rc;
	if (optind == argc) {
		ctl_global_usage(stdout);
		return CTL_EX_OK;
	}
	if (optind + 1 < argc)
		return ctl_usage_error("help", "too many arguments");
	if ((cmd = ctl_cmd_lookup(argv[optind])) == NULL)
		return ctl_usage_error("help", "unknown command '%s'",
		    argv[optind]);
	ctl_cmd_usage(cmd, stdout);
	printf("\n%s", cmd->help);
	return CTL_EX_OK;
}

/* GET /api/v1/messages/ID into *r; CTL_EX_OK only for a 200 with JSON. */
static int
ctl_message_fetch(struct ctl *ctl, json_int_t id, struct ctl_reply *r)
{
	char path[64];
	int rc;

	snprintf(path, sizeof(path), "/api/v1/messages/%" JSON_INTEGER_FORMAT,
	    id);
	if ((rc = ctl_http(ctl, "GET", path, NULL, r)) != CTL_EX_OK)
		return rc;
	if (r->status != 200 || !json_is_object(r->json))
		return ctl_api_error(ctl, r);
	return CTL_EX_OK;
}

/* An "error" field: "code: text", or "-" for null. Caller frees. */
static char *
ctl_error_text(const json_t *err)
{
	char *code, *text, *s;

	if (!json_is_object(err))
		return ctl_json_text(err);
	code = ctl_json_text(json_object_get(err, "code"));
	text = ctl_json_text(json_object_get(err, "text"));
	s = xasprintf("%s: %s", code, text);
	free(code);
	free(text);
	return s;
}

/* The history table: one row per status change. */
static void
ctl_message_history(const json_t *history)
{
	static const char *const keys[] = {"at", "status", "code", "text"};
	struct ctl_table t;
	const json_t *h;
	char *cells[4];
	size_t i, j;

	ctl_table_init(&t, 4, "llrl");
	ctl_table_add(&t, keys);
	json_array_foreach((json_t *)history, i, h) {
		for (j = 0; j < 4; j++)
			cells[j] = ctl_json_text(json_object_get(h, keys[j]));
		ctl_table_add(&t, (const char *const *)cells);
		for (j = 0; j < 4; j++)
			free(cells[j]);
	}
	ctl_table_print(&t, "  ");
	ctl_table_free(&t);
}

/*
 * Prints a message reply: its fields in the API's order (with any a newer
 * daemon adds), then the body indented, then the history table.
 */
static void
ctl_message_print(const json_t *m)
{
	const json_t *v, *html = json_object_get(m, "html");
	struct ctl_table t;
	const char *key, *row[2];
	char *text;

	ctl_table_init(&t, 2, "ll");
	json_object_foreach((json_t *)m, key, v) {
		if (strcmp(key, "body") == 0 || strcmp(key, "html") == 0 ||
		    strcmp(key, "history") == 0)
			continue;
		text = strcmp(key, "error") == 0 ? ctl_error_text(v)
						 : ctl_json_text(v);
		row[0] = key;
		row[1] = text;
		ctl_table_add(&t, row);
		free(text);
	}
	ctl_table_print(&t, "");
	ctl_table_free(&t);
	if (json_is_string(html))
		printf("html: %zu bytes (see --json)\n",
		    strlen(json_string_value(html)));
	if (json_is_string(v = json_object_get(m, "body"))) {
		printf("body:\n");
		ctl_print_indented(json_string_value(v));
	}
	if (json_is_array(v = json_object_get(m, "history"))) {
		printf("history:\n");
		ctl_message_history(v);
	}
}

static int
ctl_cmd_message(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply r;
	const char *arg;
	char *end, *status;
	long long id;
	int rc;

	if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("message"), argc, argv)) !=
	    CTL_CONTINUE)
		return rc;
	if (optind + 1 != argc)
		return ctl_usage_error("message", "%s",
		    optind == argc ? "which message? give its ID"
				   : "too many arguments");
	arg = argv[optind];
	errno = 0;
	id = strtoll(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 || id <= 0)
		return ctl_usage_error("message",
		    "'%s' is not a message ID (a positive integer)", arg);
	if ((rc = ctl_message_fetch(ctl, (json_int_t)id, &r)) == CTL_EX_OK) {
		if (ctl->json)
			ctl_print_raw(&r);
		else if (ctl->quiet) {
			status =
			    ctl_safe_text(json_object_get(r.json, "status"));
			printf("%s\n", status);
			free(status);
		} else
			ctl_message_print(r.json);
	}
	ctl_reply_free(&r);
	return rc;
}

/* Long options of send; values >= 256 have no short form. */
enum {
	CTL_OPT_TO = 256,
	CTL_OPT_BODY,
	CTL_OPT_BODY_FILE,
	CTL_OPT_CHANNEL,
	CTL_OPT_SUBJECT,
	CTL_OPT_HTML_FILE,
	CTL_OPT_SENDER,
	CTL_OPT_FROM,
	CTL_OPT_KEY,
	CTL_OPT_NOT_BEFORE,
	CTL_OPT_EXPIRES_AT,
	CTL_OPT_PRIORITY,
	CTL_OPT_WAIT,
};

/*
 * Parses "--wait [SECONDS]": the value may be given as --wait=N or as the
 * next word when that is a number. Returns CTL_CONTINUE or CTL_EX_USAGE.
 */
static int
ctl_send_wait_arg(struct ctl_send_opts *o, int argc, char **argv)
{
	const char *arg = optarg;
	char *end;

	o->wait = true;
	o->wait_s = CTL_WAIT_DEFAULT_S;
	if (arg == NULL && optind < argc && argv[optind][0] >= '0' &&
	    argv[optind][0] <= '9')
		arg = argv[optind++];
	if (arg == NULL)
		return CTL_CONTINUE;
	errno = 0;
	o->wait_s = strtol(arg, &end, 10);
	if (*end != '\0' || errno != 0 || o->wait_s < 1 ||
	    o->wait_s > CTL_WAIT_MAX_S)
		return ctl_usage_error("send",
		    "--wait takes whole seconds from 1 to %ld, not '%s'",
		    CTL_WAIT_MAX_S, arg);
	return CTL_CONTINUE;
}

/* send's options; values >= 256 (the CTL_OPT_*) have no short form. */
static const struct option ctl_send_longopts[] = {
    {"to", required_argument, NULL, CTL_OPT_TO},
    {"body", required_argument, NULL, CTL_OPT_BODY},
    {"body-file", required_argument, NULL, CTL_OPT_BODY_FILE},
    {"channel", required_argument, NULL, CTL_OPT_CHANNEL},
    {"subject", required_argument, NULL, CTL_OPT_SUBJECT},
    {"html-file", required_argument, NULL, CTL_OPT_HTML_FILE},
    {"sender", required_argument, NULL, CTL_OPT_SENDER},
    {"from", required_argument, NULL, CTL_OPT_FROM},
    {"idempotency-key", required_argument, NULL, CTL_OPT_KEY},
    {"not-before", required_argument, NULL, CTL_OPT_NOT_BEFORE},
    {"expires-at", required_argument, NULL, CTL_OPT_EXPIRES_AT},
    {"priority", required_argument, NULL, CTL_OPT_PRIORITY},
    {"wait", optional_argument, NULL, CTL_OPT_WAIT},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/*
 * Parses send's options into *o and checks the ones the daemon cannot:
 * presence, exclusivity, number syntax. Field contents (E.164, subject
 * required for email, ...) are left to the daemon, which names the field.
 * Returns CTL_CONTINUE or an exit status.
 */
static int
ctl_send_parse(struct ctl *ctl, struct ctl_send_opts *o, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_lookup("send");
	const char **slot[] = {
	    [CTL_OPT_TO - CTL_OPT_TO] = &o->to,
	    [CTL_OPT_BODY - CTL_OPT_TO] = &o->body,
	    [CTL_OPT_BODY_FILE - CTL_OPT_TO] = &o->body_file,
	    [CTL_OPT_CHANNEL - CTL_OPT_TO] = &o->channel,
	    [CTL_OPT_SUBJECT - CTL_OPT_TO] = &o->subject,
	    [CTL_OPT_HTML_FILE - CTL_OPT_TO] = &o->html_file,
	    [CTL_OPT_SENDER - CTL_OPT_TO] = &o->sender,
	    [CTL_OPT_FROM - CTL_OPT_TO] = &o->from,
	    [CTL_OPT_KEY - CTL_OPT_TO] = &o->key,
	    [CTL_OPT_NOT_BEFORE - CTL_OPT_TO] = &o->not_before,
	    [CTL_OPT_EXPIRES_AT - CTL_OPT_TO] = &o->expires_at,
	};
	char *end;
	int ch, rc;

	memset(o, 0, sizeof(*o));
	o->priority = -1;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+:jqh", ctl_send_longopts,
		    NULL)) != -1) {
		rc = CTL_CONTINUE;
		if (ch >= CTL_OPT_TO && ch <= CTL_OPT_EXPIRES_AT)
			*slot[ch - CTL_OPT_TO] = optarg;
		else if (ch == CTL_OPT_WAIT)
			rc = ctl_send_wait_arg(o, argc, argv);
		else if (ch == CTL_OPT_PRIORITY) {
			errno = 0;
			o->priority = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    o->priority < 0 || o->priority > 10)
				rc = ctl_usage_error("send",
				    "--priority takes 0..10, not '%s'", optarg);
		} else
			rc = ctl_common_opt(ctl, cmd, argc, argv, ch);
		if (rc != CTL_CONTINUE)
			return rc;
	}
	if (optind < argc)
		return ctl_usage_error("send", "unexpected argument '%s'",
		    argv[optind]);
	return ctl_send_check(o);
}

/*
 * The checks of ctl_send_parse() across options: --to given, one body, at
 * most one stdin reader, a known channel (guessed from --to when not
 * given). Returns CTL_CONTINUE or CTL_EX_USAGE.
 */
static int
ctl_send_check(struct ctl_send_opts *o)
{
	if (o->to == NULL || *o->to == '\0')
		return ctl_usage_error("send", "--to ADDR is required");
	if ((o->body == NULL) == (o->body_file == NULL))
		return ctl_usage_error("send",
		    "give exactly one of --body TEXT and --body-file FILE");
	if (o->body_file && o->html_file && strcmp(o->body_file, "-") == 0 &&
	    strcmp(o->html_file, "-") == 0)
		return ctl_usage_error("send",
		    "--body-file and --html-file cannot both read stdin");
	if (o->channel == NULL)
		o->channel = strchr(o->to, '@') != NULL ? "email" : "sms";
	if (strcmp(o->channel, "sms") != 0 && strcmp(o->channel, "email") != 0)
		return ctl_usage_error("send",
		    "--channel is sms or email, not '%s'", o->channel);
	return CTL_CONTINUE;
}

/*
 * Sets obj[key] from a TIME option: unix seconds stay a number, "+N[smhd]"
 * becomes now + N as unix seconds, anything else is sent as a string for
 * the daemon to parse as ISO-8601. Returns CTL_CONTINUE or CTL_EX_USAGE.
 */
static int
ctl_send_time(json_t *obj, const char *key, const char *text)
{
	static const char units[] = "smhd";
	static const long long mult[] = {1, 60, 3600, 86400};
	const char *digits = text + (*text == '+'), *u = units;
	char *end;
	long long n;
	bool number;

	errno = 0;
	n = strtoll(digits, &end, 10);
	number = *digits >= '0' && *digits <= '9' && errno == 0 &&
	    n < 100LL * 365 * 86400; /* a century: "+N" cannot overflow */
	if (number && *text != '+' && *end == '\0') {
		json_object_set_new(obj, key, json_integer(n));
		return CTL_CONTINUE;
	}
	if (number && *text == '+' && *end != '\0')
		u = end[1] == '\0' ? strchr(units, *end) : NULL;
	if (number && *text == '+' && u != NULL) {
		n = (long long)time(NULL) + n * mult[u - units];
		json_object_set_new(obj, key, json_integer(n));
		return CTL_CONTINUE;
	}
	if (*text == '+')
		return ctl_usage_error("send",
		    "'%s' is not a relative time (+N, +Ns, +Nm, +Nh, +Nd)",
		    text);
	if (json_object_set_new(obj, key, json_string(text)) != 0)
		return ctl_usage_error("send", "%s is not valid UTF-8", key);
	return CTL_CONTINUE;
}

/* obj[key] = text; CTL_EX_USAGE when text is not valid UTF-8. */
static int
ctl_send_str(json_t *obj, const char *key, const char *text, size_t len)
{
	json_t *s = json_stringn(text, len);

	if (s == NULL)
		return ctl_usage_error("send", "the %s is not valid UTF-8",
		    key);
	if (memchr(text, '\0', len) != NULL) {
		json_decref(s);
		return ctl_usage_error("send", "the %s contains a NUL byte",
		    key);
	}
	json_object_set_new(obj, key, s);
	return CTL_CONTINUE;
}

/*
 * Builds the POST /api/v1/messages body from *o into *out (a new
 * reference), reading --body-file and --html-file. Returns CTL_CONTINUE or
 * an exit status (then *out is NULL).
 */
static int
ctl_send_json(const struct ctl_send_opts *o, json_t **out)
{
	const struct {
		const char *key;
		const char *value;
	} strs[] = {{"channel", o->channel}, {"to", o->to},
	    {"subject", o->subject}, {"sender", o->sender}, {"from", o->from},
	    {"idempotency_key", o->key}};
	json_t *req = json_object();
	char *text = NULL;
	size_t i, len;
	int rc = CTL_CONTINUE;

	for (i = 0; i < sizeof(strs) / sizeof(*strs) && rc == CTL_CONTINUE; i++)
		if (strs[i].value != NULL)
			rc = ctl_send_str(req, strs[i].key, strs[i].value,
			    strlen(strs[i].value));
	if (rc == CTL_CONTINUE && o->body != NULL)
		rc = ctl_send_str(req, "body", o->body, strlen(o->body));
	else if (rc == CTL_CONTINUE) {
		if ((rc = ctl_read_file("--body-file", o->body_file, &text,
			 &len)) == CTL_EX_OK) {
			while (len > 0 &&
			    (text[len - 1] == '\n' || text[len - 1] == '\r'))
				len--;
			rc = ctl_send_str(req, "body", text, len);
		}
		free(text);
		text = NULL;
	}
	if (rc == CTL_CONTINUE && o->html_file != NULL) {
		if ((rc = ctl_read_file("--html-file", o->html_file, &text,
			 &len)) == CTL_EX_OK)
			rc = ctl_send_str(req, "html", text, len);
		free(text);
	}
	if (rc == CTL_CONTINUE && o->not_before != NULL)
		rc = ctl_send_time(req, "not_before", o->not_before);
	if (rc == CTL_CONTINUE && o->expires_at != NULL)
		rc = ctl_send_time(req, "expires_at", o->expires_at);
	if (rc == CTL_CONTINUE && o->priority >= 0)
		json_object_set_new(req, "priority", json_integer(o->priority));
	if (rc != CTL_CONTINUE) {
		json_decref(req);
		req = NULL;
	}
	*out = req;
	return rc;
}

static void
ctl_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static double
ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Where a waited-for message stands: CTL_EX_OK once sent or delivered,
 * CTL_EX_FAIL in a final state it never leaves (failed, expired, ...),
 * CTL_CONTINUE while it is still on its way.
 */
static int
ctl_wait_outcome(const char *status)
{
	static const char *const bad[] = {"failed", "expired", "suppressed",
	    "cancelled", "undelivered", NULL};
	size_t i;

	if (strcmp(status, "sent") == 0 || strcmp(status, "delivered") == 0)
		return CTL_EX_OK;
	for (i = 0; bad[i] != NULL; i++)
		if (strcmp(bad[i], status) == 0)
			return CTL_EX_FAIL;
	return CTL_CONTINUE;
}

/* "message 12 sent", or "message 12 failed: TEXT (CODE)". */
static void
ctl_wait_print(json_int_t id, const json_t *m, int rc)
{
	const json_t *err = json_object_get(m, "error");
	char *st = ctl_safe_text(json_object_get(m, "status")), *text, *code;

	printf("message %" JSON_INTEGER_FORMAT " %s", id, st);
	if (rc != CTL_EX_OK && json_is_object(err)) {
		text = ctl_safe_text(json_object_get(err, "text"));
		code = ctl_safe_text(json_object_get(err, "code"));
		printf(": %s (%s)", text, code);
		free(text);
		free(code);
	}
	putchar('\n');
	free(st);
}

/*
 * --wait: polls message 'id' until it is sent, delivered or in a final
 * state, for at most 'secs' seconds, backing off from 50 to 500 ms between
 * polls. Prints the outcome (the final JSON with -j). Returns CTL_EX_OK for
 * sent/delivered, CTL_EX_FAIL for any other end or a timeout, or the
 * transport's exit status.
 */
static int
ctl_send_wait(struct ctl *ctl, json_int_t id, long secs)
{
	double deadline = ctl_now() + (double)secs;
	long pause = CTL_POLL_FIRST_MS;
	struct ctl_reply r;
	const char *st;
	char *safe;
	int rc;

	for (;;) {
		if ((rc = ctl_message_fetch(ctl, id, &r)) != CTL_EX_OK)
			break;
		st = json_string_value(json_object_get(r.json, "status"));
		st = st != NULL ? st : "unknown";
		if ((rc = ctl_wait_outcome(st)) != CTL_CONTINUE) {
			if (ctl->json)
				ctl_print_raw(&r);
			else if (!ctl->quiet)
				ctl_wait_print(id, r.json, rc);
			break;
		}
		if (ctl_now() + (double)pause / 1000 > deadline) {
			safe = ctl_sanitize(st, false);
			fprintf(stderr,
			    "outreachctl: message %" JSON_INTEGER_FORMAT
			    " still %s after %ld s\n",
			    id, safe, secs);
			free(safe);
			rc = CTL_EX_FAIL;
			break;
		}
		ctl_reply_free(&r);
		ctl_sleep_ms(pause);
		pause =
		    pause * 2 > CTL_POLL_MAX_MS ? CTL_POLL_MAX_MS : pause * 2;
	}
	ctl_reply_free(&r);
	return rc;
}

static int
ctl_cmd_send(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_send_opts o;
	struct ctl_reply r;
	json_t *req = NULL;
	json_int_t id;
	bool dup;
	int rc;

	if ((rc = ctl_send_parse(ctl, &o, argc, argv)) != CTL_CONTINUE)
		return rc;
	if ((rc = ctl_send_json(&o, &req)) != CTL_CONTINUE)
		return rc;
	rc = ctl_http(ctl, "POST", "/api/v1/messages", req, &r);
	json_decref(req);
	if (rc != CTL_EX_OK)
		goto done;
	id = json_integer_value(json_object_get(r.json, "id"));
	if ((r.status != 202 && r.status != 200) || id <= 0) {
		rc = ctl_api_error(ctl, &r);
		goto done;
	}
	dup = json_is_true(json_object_get(r.json, "duplicate"));
	if (ctl->json)
		ctl_print_raw(&r);
	else if (ctl->quiet)
		printf("%" JSON_INTEGER_FORMAT "\n", id);
	else if (dup)
		printf("message %" JSON_INTEGER_FORMAT
		       " already exists (same idempotency key)\n",
		    id);
	else
		printf("queued message %" JSON_INTEGER_FORMAT "\n", id);
	if (o.wait) {
		fflush(stdout);
		rc = ctl_send_wait(ctl, id, o.wait_s);
	}
done:
	ctl_reply_free(&r);
	return rc;
}

#define CTL_STATUS_COLS_MAX 32 /* statuses shown; we know 10 today */

/* Appends 'name' to cols[] unless it is there already or cols[] is full. */
static void
ctl_cols_add(const char **cols, size_t *ncols, const char *name)
{
	size_t i;

	for (i = 0; i < *ncols; i++)
		if (strcmp(cols[i], name) == 0)
			return;
	if (*ncols < CTL_STATUS_COLS_MAX)
		cols[(*ncols)++] = name;
}

/* True when some channel of 'queue' counts any message in 'status'. */
static bool
ctl_status_has_any(const json_t *queue, const char *status)
{
	const json_t *counts;
	const char *ch;

	json_object_foreach((json_t *)queue, ch, counts)
		if (json_integer_value(json_object_get(counts, status)) != 0)
			return true;
	return false;
}

/*
 * Picks the queue table's status columns, in the order of message.h: the
 * core ones always, any other only when some channel counts it (statuses
 * this version does not know come last). Returns the number of columns.
 */
static size_t
ctl_status_cols(const json_t *queue, const char **cols)
{
	static const char *const known[] = {"queued", "sending", "sent",
	    "delivered", "undelivered", "failed", "expired", "cancelled",
	    "suppressed", "received", NULL};
	const char *ch, *st;
	const json_t *counts, *n;
	size_t ncols = 0, i;

	for (i = 0; known[i] != NULL; i++)
		if (i < 3 || strcmp(known[i], "failed") == 0 ||
		    ctl_status_has_any(queue, known[i]))
			ctl_cols_add(cols, &ncols, known[i]);
	json_object_foreach((json_t *)queue, ch, counts)
		json_object_foreach((json_t *)counts, st, n)
			if (json_integer_value(n) != 0)
				ctl_cols_add(cols, &ncols, st);
	return ncols;
}

/* The queue table: one row per channel, one column per status. */
static void
ctl_status_queue(const json_t *queue)
{
	const char *cols[CTL_STATUS_COLS_MAX], *ch,
	    *row[CTL_STATUS_COLS_MAX + 1];
	char *cells[CTL_STATUS_COLS_MAX + 1], align[CTL_STATUS_COLS_MAX + 2];
	struct ctl_table t;
	const json_t *counts;
	size_t ncols, i;

	ncols = ctl_status_cols(queue, cols);
	memset(align, 'r', ncols + 1);
	align[0] = 'l';
	align[ncols + 1] = '\0';
	ctl_table_init(&t, ncols + 1, align);
	row[0] = "channel";
	memcpy(row + 1, cols, ncols * sizeof(*cols));
	ctl_table_add(&t, row);
	json_object_foreach((json_t *)queue, ch, counts) {
		cells[0] = xstrdup(ch);
		for (i = 0; i < ncols; i++)
			cells[i + 1] = xasprintf("%" JSON_INTEGER_FORMAT,
			    json_integer_value(
				json_object_get(counts, cols[i])));
		ctl_table_add(&t, (const char *const *)cells);
		for (i = 0; i <= ncols; i++)
			free(cells[i]);
	}
	ctl_table_print(&t, "");
	ctl_table_free(&t);
}

/* The senders table: name, provider, rate ("unlimited" for 0), in flight. */
static void
ctl_status_senders(const json_t *senders)
{
	struct ctl_table t;
	const json_t *s;
	char *cells[4];
	double rate;
	size_t i, j;

	if (json_array_size(senders) == 0) {
		printf("no senders configured\n");
		return;
	}
	ctl_table_init(&t, 4, "llrr");
	ctl_table_add(&t,
	    (const char *const[]){"sender", "provider", "rate", "in_flight"});
	json_array_foreach((json_t *)senders, i, s) {
		rate = json_number_value(json_object_get(s, "rate"));
		cells[0] = ctl_json_text(json_object_get(s, "name"));
		cells[1] = ctl_json_text(json_object_get(s, "provider"));
		cells[2] =
		    rate > 0 ? xasprintf("%g/s", rate) : xstrdup("unlimited");
		cells[3] = ctl_json_text(json_object_get(s, "in_flight"));
		ctl_table_add(&t, (const char *const *)cells);
		for (j = 0; j < 4; j++)
			free(cells[j]);
	}
	ctl_table_print(&t, "");
	ctl_table_free(&t);
}

/* The human form of "status": a header line, the queue and the senders. */
static void
ctl_status_print(const struct ctl *ctl, const json_t *health,
    const json_t *status)
{
	char uptime[64], *version, *hs, *store;

	version = ctl_safe_text(json_object_get(status, "version"));
	hs = ctl_safe_text(json_object_get(health, "status"));
	store = ctl_safe_text(json_object_get(health, "store"));
	ctl_uptime_text(json_integer_value(json_object_get(status, "uptime_s")),
	    uptime, sizeof(uptime));
	printf("outreachd %s at %s: %s (store %s), up %s\n\n", version,
	    ctl->url, hs, store, uptime);
	free(version);
	free(hs);
	free(store);
	ctl_status_queue(json_object_get(status, "queue"));
	putchar('\n');
	ctl_status_senders(json_object_get(status, "senders"));
}

static int
ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply h, s;
	json_t *both;
	bool healthy;
	int rc;

	if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("status"), argc, argv)) !=
	    CTL_CONTINUE)
		return rc;
	if (optind < argc)
		return ctl_usage_error("status", "unexpected argument '%s'",
		    argv[optind]);
	if ((rc = ctl_http(ctl, "GET", "/healthz", NULL, &h)) != CTL_EX_OK) {
		ctl_reply_free(&h);
		return rc;
	}
	healthy = h.status == 200;
	if ((rc = ctl_http(ctl, "GET", "/api/v1/status", NULL, &s)) ==
	    CTL_EX_OK) {
		if (s.status != 200 || !json_is_object(s.json))
			rc = ctl_api_error(ctl, &s);
		else if (ctl->json) {
			both = json_pack("{s:O?,s:O}", "health", h.json,
			    "status", s.json);
			json_dumpf(both, stdout, JSON_INDENT(2));
			putchar('\n');
			json_decref(both);
		} else if (!ctl->quiet)
			ctl_status_print(ctl, h.json, s.json);
	}
	if (rc == CTL_EX_OK && !healthy) {
		if (!ctl->quiet)
			fprintf(stderr,
			    "outreachctl: outreachd is not "
			    "healthy (GET /healthz: HTTP %ld)\n",
			    h.status);
		rc = CTL_EX_FAIL;
	}
	ctl_reply_free(&h);
	ctl_reply_free(&s);
	return rc;
}

static void
ctl_global_usage(FILE *fp)
{
	const struct ctl_cmd *cmd;
	int wn = 0, wa = 0;

	for (cmd = ctl_cmds; cmd->name != NULL; cmd++) {
		if ((int)strlen(cmd->name) > wn)
			wn = (int)strlen(cmd->name);
		if ((int)strlen(cmd->args) > wa)
			wa = (int)strlen(cmd->args);
	}
	fprintf(fp,
	    "usage: outreachctl [-jqhV] [-c FILE] [-u URL] [-t TOKEN | "
	    "--token-file FILE]\n"
	    "                   COMMAND [ARGS]\n"
	    "\n"
	    "Administer a running outreachd through its HTTP API.\n"
	    "\n"
	    "Commands:\n");
	for (cmd = ctl_cmds; cmd->name != NULL; cmd++)
		fprintf(fp, "  %-*s %-*s  %s\n", wn, cmd->name, wa, cmd->args,
		    cmd->summary);
	fprintf(fp,
	    "\n"
	    "Global options:\n"
	    "  -u, --url URL          the daemon's base URL (default "
	    "$OUTREACHD_URL,\n"
	    "                         else your file's, else the daemon's "
	    "config file's,\n"
	    "                         else " CTL_DEFAULT_URL ")\n"
	    "  -c, --config FILE      the daemon's config file, for its URL "
	    "and token\n"
	    "                         (default: the one outreachd uses by "
	    "default); with -c\n"
	    "                         your own file is not read\n"
	    "  -t, --token TOKEN      API token (default $OUTREACHD_TOKEN); "
	    "other users\n"
	    "                         can see it in ps(1): prefer the "
	    "environment or a file\n"
	    "      --token-file FILE  read the token from the first line of "
	    "FILE\n"
	    "                         (default ./" CTL_DEFAULT_TOKEN_FILE
	    " if readable)\n"
	    "  -j, --json             print the daemon's JSON replies\n"
	    "  -q, --quiet            print only the essential (see each "
	    "command)\n"
	    "  -h, --help             show this help\n"
	    "  -V, --version          show the version\n"
	    "\n"
	    "Your own file, for a staff member's own token on a workstation, "
	    "is\n$OUTREACHCTL_CONFIG, else "
	    "$XDG_CONFIG_HOME/outreachctl/config (default\n"
	    "~/.config/outreachctl/config): lines url = URL, token = TOKEN "
	    "or\ntoken_file = FILE; with a token it must be mode 600.\n"
	    "\n"
	    "The URL is -u, $OUTREACHD_URL, your file's url, else the one the "
	    "daemon wrote\nto VAR/outreachd.url of its config file once "
	    "listening, else its [http] listen.\n"
	    "The token is the first found of -t, --token-file, "
	    "$OUTREACHD_TOKEN, your file's\n"
	    "token or token_file, the daemon's config file's [http] api_token "
	    "or the file\n"
	    "its [http] api_token_file names (default VAR/api.token, created "
	    "at first\n"
	    "start), and ./" CTL_DEFAULT_TOKEN_FILE ".\n"
	    "\n"
	    "Exit status: 0 success; 1 the daemon refused the request, or a "
	    "waited-for\n"
	    "message did not end sent; 2 usage error; 3 the daemon could not "
	    "be reached.\n"
	    "\n"
	    "Run 'outreachctl COMMAND --help' for a command's options; see "
	    "outreachctl(8).\n");
}

/*
 * Parses the options before the command, stopping at the first operand.
 * Fills ctl->url and the token options. Returns CTL_CONTINUE, or the exit
 * status after --help, --version or a usage error.
 */
static int
ctl_global_opts(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"config", required_argument, NULL, 'c'},
	    {"token", required_argument, NULL, 't'},
	    {"token-file", required_argument, NULL, 'F'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *url = getenv("OUTREACHD_URL");
	int ch, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:u:c:t:jqhV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'c':
			ctl->opt_config = optarg;
			break;
		case 't':
			ctl->opt_token = optarg;
			break;
		case 'F':
			ctl->opt_token_file = optarg;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'q':
			ctl->quiet = true;
			break;
		case 'h':
			ctl_global_usage(stdout);
			return CTL_EX_OK;
		case 'V':
			printf("outreachctl %s\n", PACKAGE_VERSION);
			return CTL_EX_OK;
		case ':':
			return ctl_usage_error(NULL,
			    "option '%s' needs a value", argv[optind - 1]);
		default:
			return ctl_usage_error(NULL, "unknown option '%s'",
			    argv[optind - 1]);
		}
	}
	/*
	 * -u, $OUTREACHD_URL, the user's file (not read with -c: the daemon
	 * asked for wins), the daemon's config, CTL_DEFAULT_URL
	 */
	if (ctl->opt_config == NULL &&
	    (rc = ctl_userconf_load(ctl)) != CTL_EX_OK)
		return rc;
	if (url == NULL || *url == '\0')
		url = ctl->user_url;
	if ((url == NULL || *url == '\0') &&
	    (rc = ctl_conf_load(ctl)) != CTL_EX_OK)
		return rc;
	ctl_url_set(ctl, url != NULL && *url != '\0' ? url : ctl->conf_url);
	return CTL_CONTINUE;
}

/* ctl->url = 'url' (CTL_DEFAULT_URL if NULL or empty) without trailing '/'. */
static void
ctl_url_set(struct ctl *ctl, const char *url)
{
	size_t n;

	if (url == NULL || *url == '\0')
		url = CTL_DEFAULT_URL;
	ctl->url = xstrdup(url);
	n = strlen(ctl->url);
	while (n > 0 && ctl->url[n - 1] == '/')
		ctl->url[--n] = '\0';
}

int
main(int argc, char **argv)
{
	const struct ctl_cmd *cmd;
	struct ctl ctl;
	int rc;

	memset(&ctl, 0, sizeof(ctl));
	if ((rc = ctl_global_opts(&ctl, argc, argv)) != CTL_CONTINUE)
		goto done;
	if (optind == argc) {
		rc = ctl_usage_error(NULL, "no command given");
		goto done;
	}
	if ((cmd = ctl_cmd_lookup(argv[optind])) == NULL) {
		rc =
		    ctl_usage_error(NULL, "unknown command '%s' (commands: %s)",
			argv[optind], ctl_cmd_names());
		goto done;
	}
	rc = cmd->fn(&ctl, argc - optind, argv + optind);
done:
	ctl_http_shutdown(&ctl);
	ctl_conf_free(&ctl);
	free(ctl.url);
	if (fflush(stdout) != 0 && rc == CTL_EX_OK)
		rc = CTL_EX_FAIL; /* e.g. stdout is a full disk */
	return rc;
}
