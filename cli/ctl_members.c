/*
 * ctl_members.c - outreachctl members, lists and export.
 *
 * Members are addressed by ID, phone or email on the command line: an
 * argument of digits only (at most 9) is a member ID, one with an '@' an
 * email, anything else a phone number in any form the daemon accepts
 * (it normalizes it with its [sms] default_region). Phones and emails are
 * looked up first with GET /api/v1/members?phone=|email=, then the
 * command uses the member's ID.
 *
 * Exports are streamed from the daemon to the file (or stdout) as they
 * arrive, never held in memory: FILE.tmp is written, flushed to disk and
 * renamed to FILE only once the whole body arrived, so FILE is never a
 * partial export.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "compat.h"
#include "ctl.h"
#include "xmalloc.h"

#define CTL_ID_MAX_DIGITS 9	    /* longer digit strings are phones */
#define CTL_PAGE	  "1000"    /* page size when walking everything */
#define CTL_ERR_MAX	  (1 << 16) /* an error body of an export */

/* A streamed download (export). */
struct ctl_dl {
	CURL *curl;
	FILE *out;
	bool to_file;
	bool progress;
	long status;	      /* known at the first byte */
	struct ctl_reply err; /* the body of a reply that is not 200 */
	uint64_t bytes, lines;
	bool write_failed;
	time_t last;
};

static int ctl_members_find(struct ctl *, int, char **);
static int ctl_members_show(struct ctl *, int, char **);
static int ctl_members_add(struct ctl *, int, char **);
static int ctl_members_update(struct ctl *, int, char **);
static int ctl_members_opt(struct ctl *, int, char **);
static int ctl_members_consent(struct ctl *, int, char **);

const char ctl_help_members[] =
    "Find, show, add and change members, opt them out or in, and print\n"
    "their consent log (/api/v1/members).\n"
    "\n"
    "Subcommands:\n"
    "  find [--phone P] [--email E] [--name N] [--tag T] [--list L] [--all]\n"
    "      members matching every criterion given (name: a part of the\n"
    "      first or last name, any case); the first 100 unless --all\n"
    "  show MEMBER\n"
    "      fields, opt-out state and list subscriptions\n"
    "  add (--phone P | --email E) [--first-name N] [--last-name N]\n"
    "      [--zip Z] [--time-zone TZ] [--tag T]... [--attr KEY=VALUE]...\n"
    "      [--list NAME --source TEXT [--channel sms|email]]\n"
    "      create a member, optionally subscribed to a list; --source says\n"
    "      how the member agreed (it goes into the consent log)\n"
    "  update MEMBER [--phone P] [--email E] [--first-name N]\n"
    "      [--last-name N] [--zip Z] [--time-zone TZ] [--add-tag T]...\n"
    "      [--remove-tag T]... [--attr KEY=VALUE]...\n"
    "      change the given fields (an empty value clears a name, zip or\n"
    "      time zone); --attr merges into the custom fields\n"
    "  optout MEMBER [--channel sms|email] [--detail TEXT]\n"
    "  optin MEMBER [--channel sms|email] [--detail TEXT]\n"
    "      opt the member out of (or back in to) a channel, default sms;\n"
    "      recorded in the consent log with source \"api\"\n"
    "  consent MEMBER\n"
    "      the consent log, oldest first: time, channel, action, source,\n"
    "      list, message, detail\n"
    "\n"
    "MEMBER is a member ID (digits only, at most 9), an email address, or a\n"
    "phone number in any form (+14155550100, \"(415) 555-0100\"); national\n"
    "numbers use the daemon's [sms] default_region.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print the daemon's JSON reply (find --all: one page per\n"
    "               line)\n"
    "  -q, --quiet  print only member IDs (find, add) or nothing\n"
    "  -h, --help   show this help\n"
    "\n"
    "Examples:\n"
    "  outreachctl members add --phone '(415) 555-0100' --first-name Ana \\\n"
    "      --list volunteers --source 'paper form, Nov 2 rally'\n"
    "  outreachctl members consent +14155550100\n"
    "  outreachctl members optout ana@example.org --channel email\n";

const char ctl_help_lists[] =
    "Show lists and change who is on them (/api/v1/lists).\n"
    "\n"
    "Subcommands:\n"
    "  (none)\n"
    "      every list: name, id, keywords, members by status, double\n"
    "      opt-in, and whether it comes from the config file\n"
    "  show LIST\n"
    "      one list's settings, welcome texts and questions\n"
    "  subscribe LIST MEMBER --source TEXT [--channel sms|email]\n"
    "      subscribe a member (created when MEMBER is a new phone or\n"
    "      email); the channel defaults to sms for a phone, email for an\n"
    "      email. An email subscription to a double opt-in list stays\n"
    "      pending until the member clicks the confirmation email. A\n"
    "      member who opted out of the channel stays opted out (use\n"
    "      'members optin').\n"
    "  unsubscribe LIST MEMBER [--channel sms|email]\n"
    "      take the member off the list (both channels unless --channel)\n"
    "\n"
    "LIST is a list name or ID; MEMBER as in 'outreachctl members --help'.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print the daemon's JSON reply\n"
    "  -q, --quiet  print only list names (lists) or nothing\n"
    "  -h, --help   show this help\n";

const char ctl_help_export[] =
    "Export as CSV (RFC 4180, UTF-8, CRLF line ends, a header row):\n"
    "\n"
    "  list LIST [-o FILE]\n"
    "      a list's members: id, phone, email, first_name, last_name, zip,\n"
    "      time_zone, tags, attributes, channel, status, source,\n"
    "      subscribed_at, sms_opted_out, email_opted_out\n"
    "      (GET /api/v1/lists/LIST/export.csv)\n"
    "  consent [MEMBER] [-o FILE]\n"
    "      the consent log of every member, or of one: id, member_id,\n"
    "      phone, email, channel, action, source, list, message_id,\n"
    "      detail, at (GET /api/v1/consent/export.csv[?member=ID])\n"
    "\n"
    "The export is streamed to FILE (or stdout) as the daemon sends it.\n"
    "With -o it is written to FILE.tmp and renamed to FILE only when\n"
    "complete; an interrupted export leaves no FILE and exits 1. When\n"
    "stderr is a terminal, -o shows the progress there.\n"
    "\n"
    "A cell that a spreadsheet would run as a formula (one starting with\n"
    "=, +, -, @, a tab or a carriage return, other than a plain number\n"
    "such as +14155550100) is written with a leading apostrophe (').\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE  write to FILE instead of stdout\n"
    "  -q, --quiet        no progress line\n"
    "  -h, --help         show this help\n";

/* ---- Shared helpers ----------------------------------------------------- */

static bool
ctl_is_id(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= CTL_ID_MAX_DIGITS && s[n] == '\0' && *s != '0';
}

/* GET/POST/... and a success status expected; else reports it. */
static int
ctl_call(struct ctl *ctl, const char *method, const char *path,
    const json_t *body, struct ctl_reply *r)
{
	int rc;

	if ((rc = ctl_http(ctl, method, path, body, r)) != CTL_EX_OK)
		return rc;
	if (r->status < 200 || r->status > 299 || r->json == NULL)
		return ctl_api_error(ctl, r);
	return CTL_EX_OK;
}

/*
 * Finds the member 'ref' names (ID, phone or email) and stores its ID
 * in *id. Returns an exit status, having printed why it failed.
 */
static int
ctl_member_resolve(struct ctl *ctl, const char *cmd, const char *ref,
    json_int_t *id)
{
	struct ctl_reply r;
	json_t *list;
	char *path, *e;
	bool email = strchr(ref, '@') != NULL;
	int rc;

	if (ctl_is_id(ref)) {
		*id = strtoll(ref, NULL, 10);
		return CTL_EX_OK;
	}
	if (*ref == '\0')
		return ctl_usage_error(cmd, "an empty member");
	e = ctl_esc(ref);
	path = xasprintf("/api/v1/members?%s=%s&limit=1",
	    email ? "email" : "phone", e);
	free(e);
	rc = ctl_call(ctl, "GET", path, NULL, &r);
	free(path);
	if (rc != CTL_EX_OK) {
		ctl_reply_free(&r);
		return rc;
	}
	list = json_object_get(r.json, "members");
	if (json_array_size(list) == 0) {
		e = ctl_sanitize(ref, false);
		fprintf(stderr, "outreachctl: no member with %s %s\n",
		    email ? "email" : "phone", e);
		free(e);
		ctl_reply_free(&r);
		return CTL_EX_FAIL;
	}
	*id =
	    json_integer_value(json_object_get(json_array_get(list, 0), "id"));
	ctl_reply_free(&r);
	return CTL_EX_OK;
}

/* Adds "key": "value" (a string) to o. */
static void
ctl_set_str(json_t *o, const char *key, const char *value)
{
	json_t *s = json_string(value);

	if (s == NULL) {
		fprintf(stderr, "outreachctl: %s: not valid UTF-8\n", key);
		exit(CTL_EX_USAGE);
	}
	json_object_set_new(o, key, s);
}

/* --attr KEY=VALUE into the attributes object. */
static int
ctl_attr(const char *cmd, json_t *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	json_t *attrs = json_object_get(o, "attributes"), *v;
	char *key;

	if (eq == NULL || eq == kv)
		return ctl_usage_error(cmd, "--attr needs KEY=VALUE, not '%s'",
		    kv);
	if (attrs == NULL) {
		attrs = json_object();
		json_object_set_new(o, "attributes", attrs);
	}
	key = xstrndup(kv, (size_t)(eq - kv));
	if ((v = json_string(eq + 1)) == NULL) {
		free(key);
		return ctl_usage_error(cmd, "--attr: not valid UTF-8");
	}
	json_object_set_new(attrs, key, v);
	free(key);
	return CTL_CONTINUE;
}

/* Appends s to the array o[key] (created if absent). */
static void
ctl_push(json_t *o, const char *key, const char *s)
{
	json_t *a = json_object_get(o, key);

	if (a == NULL) {
		a = json_array();
		json_object_set_new(o, key, a);
	}
	json_array_append_new(a, json_string(s));
}

/* "a, b, c" of a string array, or "-". */
static char *
ctl_join(const json_t *a)
{
	char *s = NULL, *t;
	json_t *v;
	size_t i;

	json_array_foreach(a, i, v) {
		t = ctl_json_text(v);
		if (s == NULL)
			s = t;
		else {
			char *u = xasprintf("%s, %s", s, t);
			free(s);
			free(t);
			s = u;
		}
	}
	return s != NULL ? s : xstrdup("-");
}

static void
ctl_field(const char *label, const json_t *v)
{
	char *t = ctl_safe_text(v);

	printf("%-14s %s\n", label, t);
	free(t);
}

/* ---- members ------------------------------------------------------------- */

static void
ctl_member_row(struct ctl_table *t, const json_t *m)
{
	char *c[6];
	const char *row[6];
	size_t i;
	json_t *fn = json_object_get(m, "first_name"),
	       *ln = json_object_get(m, "last_name"),
	       *chans = json_object_get(m, "channels");

	c[0] = ctl_json_text(json_object_get(m, "id"));
	c[1] = ctl_json_text(json_object_get(m, "phone"));
	c[2] = ctl_json_text(json_object_get(m, "email"));
	if (json_is_string(fn) || json_is_string(ln))
		c[3] = xasprintf("%s%s%s",
		    json_is_string(fn) ? json_string_value(fn) : "",
		    json_is_string(fn) && json_is_string(ln) ? " " : "",
		    json_is_string(ln) ? json_string_value(ln) : "");
	else
		c[3] = xstrdup("-");
	c[4] = ctl_join(json_object_get(m, "tags"));
	c[5] = xasprintf("%s%s",
	    json_is_true(
		json_object_get(json_object_get(chans, "sms"), "opted_out"))
		? "sms "
		: "",
	    json_is_true(
		json_object_get(json_object_get(chans, "email"), "opted_out"))
		? "email"
		: "");
	for (i = 0; i < 6; i++)
		row[i] = c[i][0] != '\0' ? c[i] : "-";
	ctl_table_add(t, row);
	for (i = 0; i < 6; i++)
		free(c[i]);
}

static int
ctl_members_find(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"phone", required_argument, NULL, 'P'},
	    {"email", required_argument, NULL, 'E'},
	    {"name", required_argument, NULL, 'N'},
	    {"tag", required_argument, NULL, 'T'},
	    {"list", required_argument, NULL, 'L'},
	    {"all", no_argument, NULL, 'A'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const keys[] = {"phone", "email", "name", "tag",
	    "list"};
	const char *vals[5] = {NULL};
	struct ctl_table t;
	struct ctl_reply r;
	char *path = NULL, *q = xstrdup(""), *e, *tmp, *cursor = NULL;
	bool all = false, more = true;
	json_t *v;
	size_t i, n = 0;
	int ch, rc = CTL_EX_OK;

	optind = 0;
	while ((ch = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'P':
		case 'E':
		case 'N':
		case 'T':
		case 'L':
			vals[strchr("PENTL", ch) - "PENTL"] = optarg;
			break;
		case 'A':
			all = true;
			break;
		default:
			if ((rc = ctl_common_opt(ctl, ctl_cmd_lookup("members"),
				 argc, argv, ch)) != CTL_CONTINUE) {
				free(q);
				return rc;
			}
		}
	}
	if (optind != argc) {
		free(q);
		return ctl_usage_error("members find", "unexpected '%s'",
		    argv[optind]);
	}
	for (i = 0; i < 5; i++)
		if (vals[i] != NULL) {
			e = ctl_esc(vals[i]);
			tmp = xasprintf("%s&%s=%s", q, keys[i], e);
			free(e);
			free(q);
			q = tmp;
		}
	ctl_table_init(&t, 6, "rllllll");
	ctl_table_add(&t,
	    (const char *[]){"ID", "PHONE", "EMAIL", "NAME", "TAGS",
		"OPTED OUT"});
	while (more) {
		path = xasprintf("/api/v1/members?limit=%s%s%s%s",
		    all ? CTL_PAGE : "100", q, cursor ? "&after=" : "",
		    cursor ? cursor : "");
		rc = ctl_call(ctl, "GET", path, NULL, &r);
		free(path);
		if (rc != CTL_EX_OK) {
			ctl_reply_free(&r);
			break;
		}
		if (ctl->json)
			ctl_print_raw(&r);
		json_array_foreach(json_object_get(r.json, "members"), i, v) {
			if (ctl->quiet && !ctl->json)
				printf("%lld\n",
				    (long long)json_integer_value(
					json_object_get(v, "id")));
			ctl_member_row(&t, v);
			n++;
		}
		v = json_object_get(r.json, "next_cursor");
		free(cursor);
		cursor =
		    json_is_string(v) ? ctl_esc(json_string_value(v)) : NULL;
		more = all && cursor != NULL;
		if (!all && cursor != NULL && !ctl->quiet && !ctl->json)
			fprintf(stderr,
			    "outreachctl: more members match; --all lists "
			    "them all\n");
		ctl_reply_free(&r);
	}
	if (rc == CTL_EX_OK && !ctl->json && !ctl->quiet) {
		if (n == 0)
			printf("no members match\n");
		else
			ctl_table_print(&t, "");
	}
	ctl_table_free(&t);
	free(cursor);
	free(q);
	return rc;
}

static void
ctl_member_print(const json_t *m)
{
	const json_t *subs = json_object_get(m, "subscriptions"), *s;
	const char *chans[] = {"sms", "email"};
	struct ctl_table t;
	char *c[5];
	size_t i, j;

	ctl_field("id", json_object_get(m, "id"));
	ctl_field("phone", json_object_get(m, "phone"));
	ctl_field("email", json_object_get(m, "email"));
	ctl_field("first name", json_object_get(m, "first_name"));
	ctl_field("last name", json_object_get(m, "last_name"));
	ctl_field("zip", json_object_get(m, "zip"));
	ctl_field("time zone", json_object_get(m, "time_zone"));
	c[0] = ctl_join(json_object_get(m, "tags"));
	c[1] = ctl_sanitize(c[0], false);
	printf("%-14s %s\n", "tags", c[1]);
	free(c[0]);
	free(c[1]);
	c[0] = json_dumps(json_object_get(m, "attributes"),
	    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	c[1] = ctl_sanitize(c[0] != NULL ? c[0] : "{}", false);
	printf("%-14s %s\n", "attributes", c[1]);
	free(c[0]);
	free(c[1]);
	for (i = 0; i < 2; i++) {
		s = json_object_get(json_object_get(m, "channels"), chans[i]);
		if (json_is_true(json_object_get(s, "opted_out"))) {
			c[0] =
			    ctl_safe_text(json_object_get(s, "opted_out_at"));
			c[1] = ctl_safe_text(json_object_get(s, "source"));
			printf("%-5s %-8s opted out at %s (source %s)\n",
			    chans[i], "state", c[0], c[1]);
			free(c[0]);
			free(c[1]);
		} else
			printf("%-5s %-8s %s\n", chans[i], "state",
			    json_is_true(json_object_get(s, "bouncing"))
				? "bouncing"
				: "ok");
	}
	ctl_field("created", json_object_get(m, "created_at"));
	ctl_field("updated", json_object_get(m, "updated_at"));
	if (json_array_size(subs) == 0) {
		printf("\nno list subscriptions\n");
		return;
	}
	printf("\nsubscriptions:\n");
	ctl_table_init(&t, 5, "lllll");
	ctl_table_add(&t,
	    (const char *[]){"LIST", "CHANNEL", "STATUS", "SOURCE", "SINCE"});
	json_array_foreach(subs, i, s) {
		c[0] = ctl_json_text(json_object_get(s, "list"));
		c[1] = ctl_json_text(json_object_get(s, "channel"));
		c[2] = ctl_json_text(json_object_get(s, "status"));
		c[3] = ctl_json_text(json_object_get(s, "source"));
		c[4] = ctl_json_text(json_object_get(s, "created_at"));
		ctl_table_add(&t, (const char *const *)c);
		for (j = 0; j < 5; j++)
			free(c[j]);
	}
	ctl_table_print(&t, "  ");
	ctl_table_free(&t);
}

/* Parses "SUB MEMBER" with common options only; resolves MEMBER. */
static int
ctl_member_arg(struct ctl *ctl, const char *cmd, int argc, char **argv,
    json_int_t *id)
{
	int rc;

	if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("members"), argc, argv)) !=
	    CTL_CONTINUE)
		return rc;
	if (optind + 1 != argc)
		return ctl_usage_error(cmd, "%s",
		    optind == argc ? "which member? give an ID, phone or email"
				   : "too many arguments");
	return ctl_member_resolve(ctl, cmd, argv[optind], id);
}

static int
ctl_members_show(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply r;
	json_int_t id;
	char *path;
	int rc;

	if ((rc = ctl_member_arg(ctl, "members show", argc, argv, &id)) !=
	    CTL_EX_OK)
		return rc;
	path = xasprintf("/api/v1/members/%lld", (long long)id);
	rc = ctl_call(ctl, "GET", path, NULL, &r);
	free(path);
	if (rc == CTL_EX_OK) {
		if (ctl->json)
			ctl_print_raw(&r);
		else if (ctl->quiet)
			printf("%lld\n", (long long)id);
		else
			ctl_member_print(r.json);
	}
	ctl_reply_free(&r);
	return rc;
}

/* Options of add and update, into the request body o. */
static int
ctl_member_opts(struct ctl *ctl, const char *cmd, bool add, int argc,
    char **argv, json_t *o)
{
	static const struct option longopts[] = {
	    {"phone", required_argument, NULL, 'P'},
	    {"email", required_argument, NULL, 'E'},
	    {"first-name", required_argument, NULL, 'F'},
	    {"last-name", required_argument, NULL, 'L'},
	    {"zip", required_argument, NULL, 'Z'},
	    {"time-zone", required_argument, NULL, 'z'},
	    {"tag", required_argument, NULL, 'T'},
	    {"add-tag", required_argument, NULL, 'a'},
	    {"remove-tag", required_argument, NULL, 'r'},
	    {"attr", required_argument, NULL, 'A'},
	    {"list", required_argument, NULL, 'l'},
	    {"source", required_argument, NULL, 's'},
	    {"channel", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *list = NULL, *source = NULL, *channel = NULL;
	json_t *sub;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1) {
		if ((add && strchr("ar", ch) && ch != 0) ||
		    (!add && strchr("Tlsc", ch) && ch != 0))
			return ctl_usage_error(cmd, "option '%s' is not for %s",
			    argv[optind - 1], cmd);
		switch (ch) {
		case 'P':
			ctl_set_str(o, "phone", optarg);
			break;
		case 'E':
			ctl_set_str(o, "email", optarg);
			break;
		case 'F':
			ctl_set_str(o, "first_name", optarg);
			break;
		case 'L':
			ctl_set_str(o, "last_name", optarg);
			break;
		case 'Z':
			ctl_set_str(o, "zip", optarg);
			break;
		case 'z':
			ctl_set_str(o, "time_zone", optarg);
			break;
		case 'T':
			ctl_push(o, "tags", optarg);
			break;
		case 'a':
			ctl_push(o, "add_tags", optarg);
			break;
		case 'r':
			ctl_push(o, "remove_tags", optarg);
			break;
		case 'A':
			if ((rc = ctl_attr(cmd, o, optarg)) != CTL_CONTINUE)
				return rc;
			break;
		case 'l':
			list = optarg;
			break;
		case 's':
			source = optarg;
			break;
		case 'c':
			channel = optarg;
			break;
		default:
			if ((rc = ctl_common_opt(ctl, ctl_cmd_lookup("members"),
				 argc, argv, ch)) != CTL_CONTINUE)
				return rc;
		}
	}
	if ((source != NULL || channel != NULL) && list == NULL)
		return ctl_usage_error(cmd,
		    "--source and --channel go with "
		    "--list");
	if (list != NULL) {
		if (source == NULL)
			return ctl_usage_error(cmd,
			    "--list needs --source TEXT: how the member "
			    "agreed to join");
		sub = json_object();
		ctl_set_str(sub, "list", list);
		if (channel != NULL)
			ctl_set_str(sub, "channel", channel);
		json_object_set_new(o, "subscribe", json_pack("[o]", sub));
		ctl_set_str(o, "consent_source", source);
	}
	return CTL_CONTINUE;
}

static int
ctl_members_add(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply r;
	json_t *o = json_object();
	json_int_t id;
	int rc;

	if ((rc = ctl_member_opts(ctl, "members add", true, argc, argv, o)) !=
	    CTL_CONTINUE)
		goto out;
	if (optind != argc) {
		rc = ctl_usage_error("members add", "unexpected '%s'",
		    argv[optind]);
		goto out;
	}
	if (json_object_get(o, "phone") == NULL &&
	    json_object_get(o, "email") == NULL) {
		rc = ctl_usage_error("members add", "give --phone or --email");
		goto out;
	}
	if ((rc = ctl_call(ctl, "POST", "/api/v1/members", o, &r)) ==
	    CTL_EX_OK) {
		id = json_integer_value(json_object_get(r.json, "id"));
		if (ctl->json)
			ctl_print_raw(&r);
		else if (ctl->quiet)
			printf("%lld\n", (long long)id);
		else
			printf("added member %lld\n", (long long)id);
	}
	ctl_reply_free(&r);
out:
	json_decref(o);
	return rc == CTL_CONTINUE ? CTL_EX_OK : rc;
}

static int
ctl_members_update(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply r;
	json_t *o = json_object();
	json_int_t id;
	char *path;
	int rc;

	if ((rc = ctl_member_opts(ctl, "members update", false, argc, argv,
		 o)) != CTL_CONTINUE)
		goto out;
	if (optind + 1 != argc) {
		rc = ctl_usage_error("members update", "%s",
		    optind == argc ? "which member? give an ID, phone or email"
				   : "too many arguments");
		goto out;
	}
	if (json_object_size(o) == 0) {
		rc = ctl_usage_error("members update", "nothing to change");
		goto out;
	}
	if ((rc = ctl_member_resolve(ctl, "members update", argv[optind],
		 &id)) != CTL_EX_OK)
		goto out;
	path = xasprintf("/api/v1/members/%lld", (long long)id);
	if ((rc = ctl_call(ctl, "PATCH", path, o, &r)) == CTL_EX_OK) {
		if (ctl->json)
			ctl_print_raw(&r);
		else if (!ctl->quiet)
			printf("updated member %lld\n", (long long)id);
	}
	free(path);
	ctl_reply_free(&r);
out:
	json_decref(o);
	return rc == CTL_CONTINUE ? CTL_EX_OK : rc;
}

/* optout / optin: argv[0] says which. */
static int
ctl_members_opt(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"channel", required_argument, NULL, 'c'},
	    {"detail", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool out = strcmp(argv[0], "optout") == 0;
	const char *cmd = out ? "members optout" : "members optin";
	const char *channel = "sms", *detail = NULL;
	struct ctl_reply r;
	json_int_t id;
	json_t *o;
	char *path;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1) {
		if (ch == 'c')
			channel = optarg;
		else if (ch == 'd')
			detail = optarg;
		else if ((rc = ctl_common_opt(ctl, ctl_cmd_lookup("members"),
			      argc, argv, ch)) != CTL_CONTINUE)
			return rc;
	}
	if (strcmp(channel, "sms") != 0 && strcmp(channel, "email") != 0)
		return ctl_usage_error(cmd, "--channel is sms or email");
	if (optind + 1 != argc)
		return ctl_usage_error(cmd, "%s",
		    optind == argc ? "which member? give an ID, phone or email"
				   : "too many arguments");
	if ((rc = ctl_member_resolve(ctl, cmd, argv[optind], &id)) != CTL_EX_OK)
		return rc;
	o = json_pack("{s:s}", "channel", channel);
	if (detail != NULL)
		ctl_set_str(o, "detail", detail);
	path = xasprintf("/api/v1/members/%lld/%s", (long long)id,
	    out ? "optout" : "optin");
	if ((rc = ctl_call(ctl, "POST", path, o, &r)) == CTL_EX_OK) {
		if (ctl->json)
			ctl_print_raw(&r);
		else if (!ctl->quiet)
			printf("member %lld %s %s%s\n", (long long)id,
			    out ? "opted out of" : "opted in to", channel,
			    json_is_true(json_object_get(r.json, "changed"))
				? ""
				: " (already)");
	}
	free(path);
	json_decref(o);
	ctl_reply_free(&r);
	return rc;
}

static void
ctl_consent_rows(struct ctl_table *t, const json_t *events)
{
	static const char *const keys[] = {"at", "channel", "action", "source",
	    "list", "message_id", "detail"};
	const char *row[7];
	char *c[7];
	json_t *e;
	size_t i, j;

	json_array_foreach(events, i, e) {
		for (j = 0; j < 7; j++) {
			c[j] = ctl_json_text(json_object_get(e, keys[j]));
			row[j] = c[j];
		}
		ctl_table_add(t, row);
		for (j = 0; j < 7; j++)
			free(c[j]);
	}
}

static int
ctl_members_consent(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_table t;
	struct ctl_reply r;
	json_int_t id;
	json_t *v;
	char *path, *cursor = NULL;
	size_t n = 0;
	int rc;

	if ((rc = ctl_member_arg(ctl, "members consent", argc, argv, &id)) !=
	    CTL_EX_OK)
		return rc;
	ctl_table_init(&t, 7, "lllllrl");
	ctl_table_add(&t,
	    (const char *[]){"TIME", "CHANNEL", "ACTION", "SOURCE", "LIST",
		"MESSAGE", "DETAIL"});
	do {
		path = xasprintf("/api/v1/members/%lld/consent?limit=" CTL_PAGE
				 "%s%s",
		    (long long)id, cursor ? "&after=" : "",
		    cursor ? cursor : "");
		rc = ctl_call(ctl, "GET", path, NULL, &r);
		free(path);
		free(cursor);
		cursor = NULL;
		if (rc != CTL_EX_OK) {
			ctl_reply_free(&r);
			break;
		}
		if (ctl->json)
			ctl_print_raw(&r);
		n += json_array_size(json_object_get(r.json, "events"));
		ctl_consent_rows(&t, json_object_get(r.json, "events"));
		v = json_object_get(r.json, "next_cursor");
		if (json_is_string(v))
			cursor = ctl_esc(json_string_value(v));
		ctl_reply_free(&r);
	} while (cursor != NULL);
	if (rc == CTL_EX_OK && !ctl->json && !ctl->quiet) {
		printf("consent log of member %lld:\n", (long long)id);
		if (n == 0)
			printf("  no consent events\n");
		else
			ctl_table_print(&t, "  ");
	}
	ctl_table_free(&t);
	return rc;
}

int
ctl_cmd_members(struct ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct ctl *, int, char **);
	} subs[] = {
	    {"find", ctl_members_find},
	    {"show", ctl_members_show},
	    {"add", ctl_members_add},
	    {"update", ctl_members_update},
	    {"optout", ctl_members_opt},
	    {"optin", ctl_members_opt},
	    {"consent", ctl_members_consent},
	};
	size_t i;
	int rc;

	if (argc < 2 || argv[1][0] == '-') {
		if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("members"), argc,
			 argv)) != CTL_CONTINUE)
			return rc;
		if (optind < argc)
			return ctl_usage_error("members",
			    "give the subcommand first: find, show, add, "
			    "update, optout, optin or consent");
		return ctl_usage_error("members",
		    "which subcommand? find, show, add, update, optout, "
		    "optin or consent");
	}
	for (i = 0; i < sizeof(subs) / sizeof(*subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(ctl, argc - 1, argv + 1);
	return ctl_usage_error("members", "unknown subcommand '%s'", argv[1]);
}

/* ---- lists --------------------------------------------------------------- */

static int
ctl_lists_table(struct ctl *ctl)
{
	struct ctl_table t;
	struct ctl_reply r;
	const json_t *l, *counts;
	char *c[9];
	size_t i, j;
	int rc;

	if ((rc = ctl_call(ctl, "GET", "/api/v1/lists", NULL, &r)) !=
	    CTL_EX_OK) {
		ctl_reply_free(&r);
		return rc;
	}
	if (ctl->json) {
		ctl_print_raw(&r);
		ctl_reply_free(&r);
		return CTL_EX_OK;
	}
	/* members, each counted once, by the best state on the list */
	ctl_table_init(&t, 9, "lrlrrrrll");
	ctl_table_add(&t,
	    (const char *[]){"NAME", "ID", "KEYWORDS", "ACTIVE", "PENDING",
		"OPTED OUT", "LEFT", "DOUBLE OPT-IN", "FROM"});
	json_array_foreach(json_object_get(r.json, "lists"), i, l) {
		if (ctl->quiet) {
			c[0] = ctl_safe_text(json_object_get(l, "name"));
			printf("%s\n", c[0]);
			free(c[0]);
			continue;
		}
		counts = json_object_get(l, "counts");
		c[0] = ctl_json_text(json_object_get(l, "name"));
		c[1] = ctl_json_text(json_object_get(l, "id"));
		c[2] = ctl_join(json_object_get(l, "keywords"));
		c[3] = ctl_json_text(json_object_get(counts, "active"));
		c[4] = ctl_json_text(json_object_get(counts, "pending"));
		c[5] = ctl_json_text(json_object_get(counts, "opted_out"));
		c[6] = ctl_json_text(json_object_get(counts, "left"));
		c[7] = xstrdup(json_is_true(json_object_get(l, "double_optin"))
			? "yes"
			: "no");
		c[8] = xstrdup(json_is_true(json_object_get(l, "from_config"))
			? "config"
			: "api");
		ctl_table_add(&t, (const char *const *)c);
		for (j = 0; j < 9; j++)
			free(c[j]);
	}
	if (!ctl->quiet) {
		if (t.nrows <= 1)
			printf("no lists\n");
		else
			ctl_table_print(&t, "");
	}
	ctl_table_free(&t);
	ctl_reply_free(&r);
	return CTL_EX_OK;
}

/* "by channel     sms 3 active, 1 opted out; email 2 active" */
static void
ctl_list_channel_counts(const json_t *cc)
{
	static const char *const states[] = {"active", "pending", "opted_out",
	    "left"};
	static const char *const chans[] = {"sms", "email"};
	const json_t *c;
	json_int_t n;
	const char *sep = "";
	size_t i, j;
	bool any;

	if (!json_is_object(cc))
		return;
	printf("%-14s ", "by channel");
	for (i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
		c = json_object_get(cc, chans[i]);
		any = false;
		for (j = 0; j < sizeof(states) / sizeof(states[0]); j++) {
			n = json_integer_value(json_object_get(c, states[j]));
			if (n == 0)
				continue;
			if (any)
				printf(", ");
			else
				printf("%s%s ", sep, chans[i]);
			printf("%lld %s", (long long)n,
			    strcmp(states[j], "opted_out") == 0 ? "opted out"
								: states[j]);
			any = true;
			sep = "; ";
		}
	}
	printf("%s\n", *sep == '\0' ? "none" : "");
}

static void
ctl_list_print(const json_t *l)
{
	const json_t *counts = json_object_get(l, "counts"), *q;
	char *s, *f;
	size_t i;

	ctl_field("name", json_object_get(l, "name"));
	ctl_field("id", json_object_get(l, "id"));
	s = ctl_join(json_object_get(l, "keywords"));
	f = ctl_sanitize(s, false);
	printf("%-14s %s\n", "keywords", f);
	free(s);
	free(f);
	ctl_field("sender", json_object_get(l, "sender"));
	printf("%-14s %s\n", "double opt-in",
	    json_is_true(json_object_get(l, "double_optin")) ? "yes" : "no");
	if (json_is_string(json_object_get(l, "time_zone")))
		ctl_field("time zone", json_object_get(l, "time_zone"));
	printf("%-14s %s\n", "defined in",
	    json_is_true(json_object_get(l, "from_config")) ? "the config file"
							    : "the API");
	ctl_field("active", json_object_get(counts, "active"));
	ctl_field("pending", json_object_get(counts, "pending"));
	ctl_field("opted out", json_object_get(counts, "opted_out"));
	ctl_field("left", json_object_get(counts, "left"));
	ctl_list_channel_counts(json_object_get(l, "channel_counts"));
	ctl_field("created", json_object_get(l, "created_at"));
	ctl_field("welcome email", json_object_get(l, "welcome_email_subject"));
	printf("welcome SMS:\n");
	s = ctl_json_text(json_object_get(l, "welcome_sms"));
	ctl_print_indented(s);
	free(s);
	json_array_foreach(json_object_get(l, "questions"), i, q) {
		if (i == 0)
			printf("questions:\n");
		s = ctl_safe_text(json_object_get(q, "field"));
		f = ctl_safe_text(json_object_get(q, "prompt"));
		printf("  %s: %s\n", s, f);
		free(s);
		free(f);
	}
}

static int
ctl_lists_show(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply r;
	char *path, *e;
	int rc;

	if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("lists"), argc, argv)) !=
	    CTL_CONTINUE)
		return rc;
	if (optind + 1 != argc)
		return ctl_usage_error("lists show", "%s",
		    optind == argc ? "which list? give its name or ID"
				   : "too many arguments");
	e = ctl_esc(argv[optind]);
	path = xasprintf("/api/v1/lists/%s", e);
	free(e);
	if ((rc = ctl_call(ctl, "GET", path, NULL, &r)) == CTL_EX_OK) {
		if (ctl->json)
			ctl_print_raw(&r);
		else if (!ctl->quiet)
			ctl_list_print(r.json);
	}
	free(path);
	ctl_reply_free(&r);
	return rc;
}

/* What a subscribe or unsubscribe did, in a sentence. */
static void
ctl_sub_print(const json_t *o, const char *list, bool sub)
{
	const char *chg = json_string_value(json_object_get(o, "change"));
	json_int_t mid = json_integer_value(json_object_get(o, "member_id"));
	char *l = ctl_sanitize(list, false), *c, *s;

	if (!sub) {
		printf("member %lld %s %s\n", (long long)mid,
		    json_is_true(json_object_get(o, "changed")) ? "left"
								: "was not on",
		    l);
		free(l);
		return;
	}
	c = ctl_safe_text(json_object_get(o, "channel"));
	s = ctl_safe_text(json_object_get(o, "status"));
	printf("member %lld %s %s on %s (%s)\n", (long long)mid,
	    chg != NULL && strcmp(chg, "already") == 0 ? "was already"
						       : "is now",
	    s, l, c);
	if (json_is_true(json_object_get(o, "opted_out")))
		printf("note: member %lld opted out of %s and gets nothing "
		       "on it until 'outreachctl members optin'\n",
		    (long long)mid, c);
	free(c);
	free(s);
	free(l);
}

/* subscribe / unsubscribe: argv[0] says which. */
static int
ctl_lists_sub(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"channel", required_argument, NULL, 'c'},
	    {"source", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool sub = strcmp(argv[0], "subscribe") == 0;
	const char *cmd = sub ? "lists subscribe" : "lists unsubscribe";
	const char *channel = NULL, *source = NULL, *ref;
	struct ctl_reply r = {0};
	json_int_t id;
	json_t *o = NULL;
	char *path, *e;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1) {
		if (ch == 'c')
			channel = optarg;
		else if (ch == 's' && sub)
			source = optarg;
		else if ((rc = ctl_common_opt(ctl, ctl_cmd_lookup("lists"),
			      argc, argv, ch)) != CTL_CONTINUE)
			return rc;
	}
	if (optind + 2 != argc)
		return ctl_usage_error(cmd, "give LIST and MEMBER");
	if (channel != NULL && strcmp(channel, "sms") != 0 &&
	    strcmp(channel, "email") != 0)
		return ctl_usage_error(cmd, "--channel is sms or email");
	if (sub && source == NULL)
		return ctl_usage_error(cmd,
		    "--source TEXT is required: how the member agreed to "
		    "join");
	ref = argv[optind + 1];
	e = ctl_esc(argv[optind]);
	if (sub) {
		o = json_object();
		if (ctl_is_id(ref))
			json_object_set_new(o, "member",
			    json_integer(strtoll(ref, NULL, 10)));
		else
			ctl_set_str(o, strchr(ref, '@') ? "email" : "phone",
			    ref);
		if (channel != NULL)
			ctl_set_str(o, "channel", channel);
		ctl_set_str(o, "consent_source", source);
		path = xasprintf("/api/v1/lists/%s/members", e);
		rc = ctl_call(ctl, "POST", path, o, &r);
	} else {
		if ((rc = ctl_member_resolve(ctl, cmd, ref, &id)) !=
		    CTL_EX_OK) {
			free(e);
			return rc;
		}
		path = xasprintf("/api/v1/lists/%s/members/%lld%s%s", e,
		    (long long)id, channel ? "?channel=" : "",
		    channel ? channel : "");
		rc = ctl_call(ctl, "DELETE", path, NULL, &r);
	}
	free(e);
	free(path);
	json_decref(o);
	if (rc == CTL_EX_OK && ctl->json)
		ctl_print_raw(&r);
	else if (rc == CTL_EX_OK && !ctl->quiet)
		ctl_sub_print(r.json, argv[optind], sub);
	ctl_reply_free(&r);
	return rc;
}

int
ctl_cmd_lists(struct ctl *ctl, int argc, char **argv)
{
	int rc;

	if (argc >= 2 && strcmp(argv[1], "show") == 0)
		return ctl_lists_show(ctl, argc - 1, argv + 1);
	if (argc >= 2 &&
	    (strcmp(argv[1], "subscribe") == 0 ||
		strcmp(argv[1], "unsubscribe") == 0))
		return ctl_lists_sub(ctl, argc - 1, argv + 1);
	if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("lists"), argc, argv)) !=
	    CTL_CONTINUE)
		return rc;
	if (optind < argc)
		return ctl_usage_error("lists",
		    "unknown subcommand '%s' (show, subscribe, unsubscribe)",
		    argv[optind]);
	return ctl_lists_table(ctl);
}

/* ---- export -------------------------------------------------------------- */

static void
ctl_dl_progress(struct ctl_dl *d, bool final)
{
	time_t now = time(NULL);

	if (!d->progress || (!final && now == d->last))
		return;
	d->last = now;
	fprintf(stderr, "\rexporting: %llu lines, %llu KiB%s",
	    (unsigned long long)d->lines, (unsigned long long)d->bytes / 1024,
	    final ? "\n" : "");
}

static size_t
ctl_dl_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct ctl_dl *d = arg;
	size_t n = size * nmemb, i;

	if (d->status == 0)
		curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &d->status);
	if (d->status != 200) {
		if (d->err.len + n > CTL_ERR_MAX)
			return 0;
		d->err.body = xreallocarray(d->err.body, d->err.len + n + 1, 1);
		memcpy(d->err.body + d->err.len, ptr, n);
		d->err.len += n;
		d->err.body[d->err.len] = '\0';
		return n;
	}
	if (fwrite(ptr, 1, n, d->out) != n) {
		d->write_failed = true;
		return 0;
	}
	for (i = 0; i < n; i++)
		if (ptr[i] == '\n')
			d->lines++;
	d->bytes += n;
	ctl_dl_progress(d, false);
	return n;
}

/* Streams GET 'path' into d->out. Returns an exit status. */
static int
ctl_dl_run(struct ctl *ctl, const char *path, struct ctl_dl *d)
{
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *url, *line;
	CURLcode cc;

	d->curl = ctl->curl;
	url = xasprintf("%s%s", ctl->url, path);
	h = curl_slist_append(h, "Accept: text/csv");
	if (ctl->token != NULL) {
		line = xasprintf("Authorization: Bearer %s", ctl->token);
		h = curl_slist_append(h, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	curl_easy_reset(d->curl);
	curl_easy_setopt(d->curl, CURLOPT_URL, url);
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(d->curl, CURLOPT_USERAGENT,
	    "outreachctl/" PACKAGE_VERSION);
	curl_easy_setopt(d->curl, CURLOPT_CONNECTTIMEOUT, 5L);
	/* No total timeout: a big export takes what it takes; a stalled
	 * one (under 1 byte/s for 60 s) is given up. */
	curl_easy_setopt(d->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(d->curl, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(d->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(d->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, ctl_dl_write);
	curl_easy_setopt(d->curl, CURLOPT_WRITEDATA, d);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
	curl_easy_setopt(d->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(d->curl, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	cc = curl_easy_perform(d->curl);
	curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &d->status);
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(d->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(h);
	free(url);
	ctl_dl_progress(d, true);
	if (d->status != 200 && d->status != 0) {
		d->err.status = d->status;
		if (d->err.body != NULL)
			d->err.json =
			    json_loadb(d->err.body, d->err.len, 0, NULL);
		return ctl_api_error(ctl, &d->err);
	}
	if (d->write_failed) {
		fprintf(stderr, "outreachctl: export: cannot write: %s\n",
		    strerror(errno));
		return CTL_EX_FAIL;
	}
	if (cc != CURLE_OK) {
		fprintf(stderr,
		    "outreachctl: export interrupted after %llu lines: %s\n",
		    (unsigned long long)d->lines,
		    *errbuf ? errbuf : curl_easy_strerror(cc));
		return CTL_EX_FAIL;
	}
	return CTL_EX_OK;
}

/* Streams to 'file' (through file.tmp) or stdout. */
static int
ctl_export_to(struct ctl *ctl, const char *path, const char *file)
{
	struct ctl_dl d;
	char *tmp = NULL;
	int rc;

	memset(&d, 0, sizeof(d));
	d.out = stdout;
	if (file != NULL && strcmp(file, "-") != 0) {
		tmp = xasprintf("%s.tmp", file);
		if ((d.out = fopen(tmp, "w")) == NULL) {
			fprintf(stderr, "outreachctl: export: %s: %s\n", tmp,
			    strerror(errno));
			free(tmp);
			return CTL_EX_USAGE;
		}
		d.to_file = true;
		d.progress = !ctl->quiet && isatty(STDERR_FILENO);
	}
	rc = ctl_dl_run(ctl, path, &d);
	if (rc == CTL_EX_OK &&
	    (fflush(d.out) != 0 || (d.to_file && fsync(fileno(d.out)) != 0))) {
		fprintf(stderr, "outreachctl: export: cannot write %s: %s\n",
		    d.to_file ? tmp : "stdout", strerror(errno));
		rc = CTL_EX_FAIL;
	}
	if (d.to_file) {
		if (fclose(d.out) != 0 && rc == CTL_EX_OK) {
			fprintf(stderr, "outreachctl: export: %s: %s\n", tmp,
			    strerror(errno));
			rc = CTL_EX_FAIL;
		}
		if (rc == CTL_EX_OK && rename(tmp, file) != 0) {
			fprintf(stderr,
			    "outreachctl: export: rename to %s: "
			    "%s\n",
			    file, strerror(errno));
			rc = CTL_EX_FAIL;
		}
		if (rc != CTL_EX_OK)
			unlink(tmp);
		else if (!ctl->quiet)
			fprintf(stderr, "exported %llu lines to %s\n",
			    (unsigned long long)d.lines, file);
	}
	free(tmp);
	ctl_reply_free(&d.err);
	return rc;
}

int
ctl_cmd_export(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *file = NULL, *what, *arg;
	struct ctl_reply r;
	json_int_t id;
	char *path = NULL, *e;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, ":o:jqh", longopts, NULL)) != -1) {
		if (ch == 'o')
			file = optarg;
		else if ((rc = ctl_common_opt(ctl, ctl_cmd_lookup("export"),
			      argc, argv, ch)) != CTL_CONTINUE)
			return rc;
	}
	if (optind == argc)
		return ctl_usage_error("export",
		    "what? 'list NAME' or "
		    "'consent [MEMBER]'");
	what = argv[optind];
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (optind + 2 < argc)
		return ctl_usage_error("export", "too many arguments");
	if (strcmp(what, "list") == 0) {
		if (arg == NULL)
			return ctl_usage_error("export", "which list?");
		e = ctl_esc(arg);
		path = xasprintf("/api/v1/lists/%s", e);
		/* Check the list and the token before creating a file. */
		rc = ctl_call(ctl, "GET", path, NULL, &r);
		ctl_reply_free(&r);
		free(path);
		path = xasprintf("/api/v1/lists/%s/export.csv", e);
		free(e);
	} else if (strcmp(what, "consent") == 0) {
		if (arg != NULL) {
			rc = ctl_member_resolve(ctl, "export", arg, &id);
			path = xasprintf("/api/v1/consent/export.csv?member="
					 "%lld",
			    (long long)id);
		} else {
			rc = ctl_call(ctl, "GET", "/api/v1/status", NULL, &r);
			ctl_reply_free(&r);
			path = xstrdup("/api/v1/consent/export.csv");
		}
	} else
		return ctl_usage_error("export",
		    "unknown export '%s' (list or consent)", what);
	if (rc == CTL_EX_OK)
		rc = ctl_export_to(ctl, path, file);
	free(path);
	return rc;
}
