/*
 * ctl_inbox.c - the staff inbox from the terminal, through
 * /api/v1/conversations: outreachctl inbox (the listing, with filters
 * and search), thread ID, reply ID TEXT, assign ID STAFF|me|none,
 * close ID, reopen ID and note ID TEXT.
 *
 * Every command takes -j (the daemon's JSON as sent) and -q (only ids).
 * Member text reaches the terminal only through ctl_sanitize().
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "ctl.h"
#include "xmalloc.h"

#define IB_SNIPPET 48 /* characters of the last message in the listing */

const char ctl_help_inbox[] =
    "Options:\n"
    "  --status open|closed|all  which conversations (default open)\n"
    "  --unread                  only those with unread messages\n"
    "  --assigned me|none|ID     assigned to you, to nobody, or to staff\n"
    "                            member ID\n"
    "  --stale                   only those waiting for a reply longer\n"
    "                            than [conversations] stale_after\n"
    "  --list ID, --alert ID     members on list ID; texts answering\n"
    "                            alert ID\n"
    "  --search TEXT             messages holding these words (each a\n"
    "                            prefix; \"quoted words\" a phrase)\n"
    "  --limit N                 at most N (default 50, at most 200)\n"
    "\n"
    "Newest activity first. '*' marks a stale conversation.\n";
const char ctl_help_thread[] =
    "A conversation's messages both ways, with their delivery states,\n"
    "and its internal notes, oldest first.\n";
const char ctl_help_reply[] =
    "Texts TEXT to the member, through the sender they last texted, at\n"
    "reply priority; or --saved ID, a saved reply rendered for the\n"
    "member. Refused when the member opted out of SMS.\n";
const char ctl_help_assign[] =
    "Assigns the conversation to staff member STAFF (an id), to 'me', or\n"
    "to 'none': back to the unassigned pool.\n";
const char ctl_help_close[] = "Closes a conversation; a new text from the\n"
			      "member reopens it.\n";
const char ctl_help_reopen[] = "Opens a closed conversation again.\n";
const char ctl_help_note[] = "Adds an internal note: staff see it in the\n"
			     "thread, the member never does.\n";

enum {
	IB_OPT_STATUS = 256,
	IB_OPT_UNREAD,
	IB_OPT_ASSIGNED,
	IB_OPT_STALE,
	IB_OPT_LIST,
	IB_OPT_ALERT,
	IB_OPT_SEARCH,
	IB_OPT_LIMIT,
	IB_OPT_SAVED,
};

static const struct option ib_longopts[] = {
    {"status", required_argument, NULL, IB_OPT_STATUS},
    {"unread", no_argument, NULL, IB_OPT_UNREAD},
    {"assigned", required_argument, NULL, IB_OPT_ASSIGNED},
    {"stale", no_argument, NULL, IB_OPT_STALE},
    {"list", required_argument, NULL, IB_OPT_LIST},
    {"alert", required_argument, NULL, IB_OPT_ALERT},
    {"search", required_argument, NULL, IB_OPT_SEARCH},
    {"limit", required_argument, NULL, IB_OPT_LIMIT},
    {"saved", required_argument, NULL, IB_OPT_SAVED},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Appends "&key=value" (value percent-encoded) to the query q. */
static void
ib_query_add(char **q, const char *key, const char *value)
{
	char *e = ctl_esc(value), *out;

	out = xasprintf("%s%c%s=%s", *q, **q == '\0' ? '?' : '&', key, e);
	free(e);
	free(*q);
	*q = out;
}

/*
 * The options of every inbox command: the listing's query in *q, reply's
 * --saved in *saved.
 */
static int
ib_opts(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv,
    char **q, const char **saved)
{
	int ch, rc;

	optind = 0;
	while (
	    (ch = getopt_long(argc, argv, ":jqh", ib_longopts, NULL)) != -1) {
		switch (ch) {
		case IB_OPT_STATUS:
			ib_query_add(q, "status", optarg);
			break;
		case IB_OPT_UNREAD:
			ib_query_add(q, "unread", "1");
			break;
		case IB_OPT_ASSIGNED:
			ib_query_add(q, "assigned", optarg);
			break;
		case IB_OPT_STALE:
			ib_query_add(q, "stale", "1");
			break;
		case IB_OPT_LIST:
			ib_query_add(q, "list", optarg);
			break;
		case IB_OPT_ALERT:
			ib_query_add(q, "alert", optarg);
			break;
		case IB_OPT_SEARCH:
			ib_query_add(q, "q", optarg);
			break;
		case IB_OPT_LIMIT:
			ib_query_add(q, "limit", optarg);
			break;
		case IB_OPT_SAVED:
			*saved = optarg;
			break;
		default:
			if ((rc = ctl_common_opt(ctl, cmd, argc, argv, ch)) !=
			    CTL_CONTINUE)
				return rc;
		}
	}
	if ((strcmp(cmd->name, "inbox") != 0 && (*q)[0] != '\0') ||
	    (strcmp(cmd->name, "reply") != 0 && *saved != NULL))
		return ctl_usage_error(cmd->name,
		    "takes no such option (see outreachctl %s --help)",
		    cmd->name);
	return CTL_CONTINUE;
}

/* The conversation ID operand at optind; 0 after a usage error. */
static long long
ib_id(const struct ctl_cmd *cmd, int argc, char **argv)
{
	char *end;
	long long id;

	if (optind >= argc) {
		ctl_usage_error(cmd->name, "which conversation? give its ID");
		return 0;
	}
	errno = 0;
	id = strtoll(argv[optind], &end, 10);
	if (*end != '\0' || errno != 0 || id <= 0) {
		ctl_usage_error(cmd->name, "'%s' is not a conversation ID",
		    argv[optind]);
		return 0;
	}
	optind++;
	return id;
}

/* "Ann Lee +15551230001" (or only the number) of a member object. */
static char *
ib_member(const json_t *m)
{
	const char *first = json_string_value(json_object_get(m, "first_name"));
	const char *last = json_string_value(json_object_get(m, "last_name"));
	const char *phone = json_string_value(json_object_get(m, "phone"));

	return xasprintf("%s%s%s%s%s", first != NULL ? first : "",
	    first != NULL && last != NULL ? " " : "", last != NULL ? last : "",
	    first != NULL || last != NULL ? " " : "",
	    phone != NULL ? phone : "-");
}

/* "Name (#id)" of a staff object, "-" for null. */
static char *
ib_staff(const json_t *s)
{
	if (!json_is_object(s))
		return xstrdup("-");
	return xasprintf("%s (#%lld)",
	    json_string_value(json_object_get(s, "name")) != NULL
		? json_string_value(json_object_get(s, "name"))
		: "?",
	    (long long)json_integer_value(json_object_get(s, "id")));
}

/* The first IB_SNIPPET characters of s on one line, "..." if cut. */
static char *
ib_snippet(const char *s)
{
	size_t i, chars = 0, len = s != NULL ? strlen(s) : 0;
	char *out = xmalloc(len + 4);

	memcpy(out, s != NULL ? s : "", len + 1);
	for (i = 0; out[i] != '\0'; i++) {
		if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
			out[i] = ' ';
		if (((unsigned char)out[i] & 0xc0) != 0x80 &&
		    ++chars > IB_SNIPPET) {
			memcpy(out + i, "...", 4);
			break;
		}
	}
	return out;
}

static void
ib_print_list(const json_t *o)
{
	struct ctl_table t;
	const json_t *c;
	const char *row[7];
	char id[32], unread[24], *who, *staff, *at, *last;
	size_t i;

	ctl_table_init(&t, 7, "rlrllll");
	row[0] = "id";
	row[1] = "status";
	row[2] = "unread";
	row[3] = "member";
	row[4] = "assigned";
	row[5] = "last activity";
	row[6] = "last message";
	ctl_table_add(&t, row);
	json_array_foreach(json_object_get(o, "conversations"), i, c) {
		const json_t *lm = json_object_get(c, "last_message");

		snprintf(id, sizeof(id), "%s%lld",
		    json_is_true(json_object_get(c, "stale")) ? "*" : "",
		    (long long)json_integer_value(json_object_get(c, "id")));
		snprintf(unread, sizeof(unread), "%lld",
		    (long long)json_integer_value(
			json_object_get(c, "unread")));
		who = ib_member(json_object_get(c, "member"));
		staff = ib_staff(json_object_get(c, "assigned"));
		at = ctl_json_text(json_object_get(c, "last_message_at"));
		last =
		    ib_snippet(json_string_value(json_object_get(lm, "body")));
		row[0] = id;
		row[1] = json_string_value(json_object_get(c, "status"));
		row[2] = unread;
		row[3] = who;
		row[4] = staff;
		row[5] = at;
		row[6] = last;
		ctl_table_add(&t, row);
		free(who);
		free(staff);
		free(at);
		free(last);
	}
	ctl_table_print(&t, "");
	ctl_table_free(&t);
	if (json_is_string(json_object_get(o, "next")))
		printf("(more: --limit, or the API's after=%s)\n",
		    json_string_value(json_object_get(o, "next")));
}

/* The head of a thread or of a changed conversation. */
static void
ib_print_summary(const json_t *c)
{
	char *who = ib_member(json_object_get(c, "member"));
	char *staff = ib_staff(json_object_get(c, "assigned"));
	char *alert = ctl_json_text(json_object_get(c, "alert_id"));
	char *status = ctl_json_text(json_object_get(c, "status"));
	char *line = xasprintf("conversation %lld: %s\n  status: %s%s, "
			       "unread: %lld, assigned: %s, alert: %s\n",
	    (long long)json_integer_value(json_object_get(c, "id")), who,
	    status, json_is_true(json_object_get(c, "stale")) ? " (stale)" : "",
	    (long long)json_integer_value(json_object_get(c, "unread")), staff,
	    alert);
	char *safe = ctl_sanitize(line, true);

	fputs(safe, stdout);
	free(safe);
	free(line);
	free(status);
	free(alert);
	free(who);
	free(staff);
}

/* The value of string field key of o, "" when it has none. */
static const char *
ib_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* One item of a thread: its head line, then its text indented. */
static void
ib_print_item(const json_t *it)
{
	const json_t *staff = json_object_get(it, "staff");
	char *at = ctl_json_text(json_object_get(it, "created_at"));
	char *by = ib_staff(staff);
	char *head, *safe;

	if (strcmp(ib_str(it, "kind"), "note") == 0)
		head = xasprintf("%s  note by %s", at, by);
	else
		head = xasprintf("%s  %-3s #%lld [%s]%s%s", at,
		    ib_str(it, "direction"),
		    (long long)json_integer_value(json_object_get(it, "id")),
		    ib_str(it, "status"), json_is_object(staff) ? " by " : "",
		    json_is_object(staff) ? by : "");
	safe = ctl_sanitize(head, false);
	printf("\n%s\n", safe);
	ctl_print_indented(ib_str(it, "body"));
	free(safe);
	free(head);
	free(by);
	free(at);
}

static void
ib_print_thread(const json_t *c)
{
	const json_t *it;
	char *sender;
	size_t i;

	ib_print_summary(c);
	sender = ctl_safe_text(json_object_get(c, "sender"));
	printf("  sender: %s\n", sender);
	free(sender);
	json_array_foreach(json_object_get(c, "items"), i, it)
		ib_print_item(it);
}

/* One request and its answer: -j raw, -q the id, else print(). */
static int
ib_call(struct ctl *ctl, const char *method, const char *path,
    const json_t *body, void (*print)(const json_t *))
{
	struct ctl_reply r;
	const json_t *id, *c;
	size_t i;
	int rc;

	if ((rc = ctl_http(ctl, method, path, body, &r)) != CTL_EX_OK)
		return rc;
	if (r.status >= 300)
		rc = ctl_api_error(ctl, &r);
	else if (ctl->json)
		ctl_print_raw(&r);
	else if (ctl->quiet &&
	    json_is_array(json_object_get(r.json, "conversations"))) {
		json_array_foreach(json_object_get(r.json, "conversations"), i,
		    c)
			printf("%lld\n",
			    (long long)json_integer_value(
				json_object_get(c, "id")));
	} else if (ctl->quiet) {
		id = json_object_get(r.json, "message_id");
		if (id == NULL)
			id = json_object_get(r.json, "id");
		if (json_is_integer(id))
			printf("%lld\n", (long long)json_integer_value(id));
	} else if (print != NULL && r.json != NULL)
		print(r.json);
	ctl_reply_free(&r);
	return rc;
}

static void
ib_print_queued(const json_t *o)
{
	printf("queued message %lld\n",
	    (long long)json_integer_value(json_object_get(o, "message_id")));
}

static void
ib_print_note(const json_t *o)
{
	printf("note %lld added\n",
	    (long long)json_integer_value(json_object_get(o, "id")));
}

int
ctl_cmd_inbox(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_lookup("inbox");
	const char *saved = NULL;
	char *q = xstrdup(""), *path;
	int rc;

	if ((rc = ib_opts(ctl, cmd, argc, argv, &q, &saved)) == CTL_CONTINUE) {
		if (optind != argc)
			rc = ctl_usage_error("inbox", "unexpected '%s'",
			    argv[optind]);
		else {
			path = xasprintf("/api/v1/conversations%s", q);
			rc = ib_call(ctl, "GET", path, NULL, ib_print_list);
			free(path);
		}
	}
	free(q);
	return rc;
}

/* Commands on one conversation: thread, close, reopen. */
static int
ib_one(struct ctl *ctl, const char *name, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_lookup(name);
	const char *saved = NULL;
	char *q = xstrdup(""), *path;
	long long id;
	int rc;

	if ((rc = ib_opts(ctl, cmd, argc, argv, &q, &saved)) != CTL_CONTINUE)
		goto out;
	if ((id = ib_id(cmd, argc, argv)) == 0) {
		rc = CTL_EX_USAGE;
		goto out;
	}
	if (optind != argc) {
		rc = ctl_usage_error(name, "unexpected '%s'", argv[optind]);
		goto out;
	}
	if (strcmp(name, "thread") == 0) {
		path = xasprintf("/api/v1/conversations/%lld", id);
		rc = ib_call(ctl, "GET", path, NULL, ib_print_thread);
	} else {
		path = xasprintf("/api/v1/conversations/%lld/%s", id, name);
		rc = ib_call(ctl, "POST", path, NULL, ib_print_summary);
	}
	free(path);
out:
	free(q);
	return rc;
}

/* thread, close and reopen: argv[0] is which. */
int
ctl_cmd_conv(struct ctl *ctl, int argc, char **argv)
{
	return ib_one(ctl, argv[0], argc, argv);
}

/* Your own staff id (GET /api/v1/me): > 0, or an exit status negated. */
static long long
ib_me(struct ctl *ctl)
{
	struct ctl_reply r;
	long long id;
	int rc;

	if ((rc = ctl_http(ctl, "GET", "/api/v1/me", NULL, &r)) != CTL_EX_OK)
		return -rc;
	if (r.status != 200) {
		rc = ctl_api_error(ctl, &r);
		ctl_reply_free(&r);
		return -rc;
	}
	id = json_integer_value(
	    json_object_get(json_object_get(r.json, "staff"), "id"));
	ctl_reply_free(&r);
	if (id <= 0) {
		fprintf(stderr,
		    "outreachctl: assign: this token belongs to no staff "
		    "member; give a staff id\n");
		return -CTL_EX_FAIL;
	}
	return id;
}

/* The body of assign: {"staff_id": id | null}; NULL after an error. */
static json_t *
ib_assign_body(struct ctl *ctl, const char *v, int *rc)
{
	char *end;
	long long n;

	if (strcmp(v, "none") == 0)
		return json_pack("{s:n}", "staff_id");
	if (strcmp(v, "me") == 0) {
		if ((n = ib_me(ctl)) < 0) {
			*rc = (int)-n;
			return NULL;
		}
		return json_pack("{s:I}", "staff_id", (json_int_t)n);
	}
	errno = 0;
	n = strtoll(v, &end, 10);
	if (n > 0 && *end == '\0' && errno == 0)
		return json_pack("{s:I}", "staff_id", (json_int_t)n);
	*rc = ctl_usage_error("assign",
	    "'%s' is not a staff id, 'me' or 'none'", v);
	return NULL;
}

/* The body of reply and note: {"body"}, or reply's {"saved_reply"}. */
static json_t *
ib_text_body(const char *name, const char *v, const char *saved, int *rc)
{
	json_t *body;
	char *end;
	long long n;

	if (saved != NULL) {
		errno = 0;
		n = strtoll(saved, &end, 10);
		if (n <= 0 || *end != '\0' || errno != 0) {
			*rc = ctl_usage_error(name,
			    "--saved takes a saved reply's id, not '%s'",
			    saved);
			return NULL;
		}
		return json_pack("{s:I}", "saved_reply", (json_int_t)n);
	}
	if ((body = json_pack("{s:s}", "body", v)) == NULL)
		*rc = ctl_usage_error(name, "the text is not valid UTF-8");
	return body;
}

/*
 * Commands with an ID and a value: reply ID TEXT (or --saved N), assign
 * ID STAFF, note ID TEXT.
 */
static int
ib_two(struct ctl *ctl, const char *name, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_lookup(name);
	const char *saved = NULL;
	char *q = xstrdup(""), *path = NULL;
	json_t *body = NULL;
	long long id;
	int rc;

	if ((rc = ib_opts(ctl, cmd, argc, argv, &q, &saved)) != CTL_CONTINUE)
		goto out;
	if ((id = ib_id(cmd, argc, argv)) == 0) {
		rc = CTL_EX_USAGE;
		goto out;
	}
	if (optind + (saved != NULL ? 0 : 1) != argc) {
		rc = ctl_usage_error(name, "%s",
		    optind == argc ? "what? give the text (or staff) after "
				     "the ID"
				   : "too many arguments (quote the text)");
		goto out;
	}
	body = strcmp(name, "assign") == 0
	    ? ib_assign_body(ctl, argv[optind], &rc)
	    : ib_text_body(name, argv[optind], saved, &rc);
	if (body == NULL)
		goto out;
	path = xasprintf("/api/v1/conversations/%lld/%s", id,
	    strcmp(name, "note") == 0 ? "notes" : name);
	rc = ib_call(ctl, "POST", path, body,
	    strcmp(name, "reply") == 0	    ? ib_print_queued
		: strcmp(name, "note") == 0 ? ib_print_note
					    : ib_print_summary);
out:
	json_decref(body);
	free(path);
	free(q);
	return rc;
}

/* reply, assign and note: argv[0] is which. */
int
ctl_cmd_conv_write(struct ctl *ctl, int argc, char **argv)
{
	return ib_two(ctl, argv[0], argc, argv);
}
