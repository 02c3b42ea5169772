/*
 * ctl_staff.c - outreachctl staff (add, list, disable, passwd) and
 * outreachctl token (create, list, revoke) and outreachctl session (list,
 * revoke) through /api/v1/staff, /api/v1/tokens and /api/v1/sessions
 * (doc/staff.md).
 *
 * Passwords are read from standard input, never from the command line
 * (where ps and the shell history would show them). A new token is
 * printed once, alone on standard output, so that
 * TOKEN=$(outreachctl token create) works; what it is goes to stderr.
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

const char ctl_help_staff[] =
    "Subcommands:\n"
    "  add --name NAME --email EMAIL --role admin|organizer\n"
    "      [--password-stdin]\n"
    "      Make a staff member. With --password-stdin the first line of\n"
    "      standard input is its web login password (8 to 1024\n"
    "      characters); without, it logs in with a token only.\n"
    "  list            every staff member\n"
    "  disable ID      no more logins; its sessions and tokens are revoked\n"
    "  passwd ID       set the password from the first line of standard\n"
    "                  input\n"
    "\n"
    "Staff management needs an admin's token (the daemon's own token is\n"
    "staff #1's, an admin). The last enabled admin cannot be disabled.\n"
    "\n"
    "Exit status: 0 done; 1 the daemon refused (the reason is printed);\n"
    "2 usage; 3 the daemon is unreachable.\n";

const char ctl_help_token[] =
    "Subcommands:\n"
    "  create [--name NAME] [--staff ID]\n"
    "      Make an API token (for staff member ID; default: the caller)\n"
    "      and print it once, alone on standard output; it is never shown\n"
    "      again. Organizers make tokens for themselves only.\n"
    "  list            tokens (an organizer sees its own), never their\n"
    "                  values\n"
    "  revoke ID       the token stops working at once\n"
    "\n"
    "Exit status: 0 done; 1 the daemon refused (the reason is printed);\n"
    "2 usage; 3 the daemon is unreachable.\n";

const char ctl_help_session[] =
    "Subcommands:\n"
    "  list [--staff ID]\n"
    "      live web sessions (not logged out, revoked or expired): an\n"
    "      organizer sees its own, an admin everyone's (--staff: one\n"
    "      member's). CURRENT marks the session making the request.\n"
    "  revoke ID       end a session (a laptop left logged in): its next\n"
    "                  request is refused. Organizers end their own only.\n"
    "\n"
    "Exit status: 0 done; 1 the daemon refused (the reason is printed);\n"
    "2 usage; 3 the daemon is unreachable.\n";

enum {
	SF_OPT_NAME = 256,
	SF_OPT_EMAIL,
	SF_OPT_ROLE,
	SF_OPT_PASSWORD_STDIN,
	SF_OPT_STAFF,
};

static const struct option sf_longopts[] = {
    {"name", required_argument, NULL, SF_OPT_NAME},
    {"email", required_argument, NULL, SF_OPT_EMAIL},
    {"role", required_argument, NULL, SF_OPT_ROLE},
    {"password-stdin", no_argument, NULL, SF_OPT_PASSWORD_STDIN},
    {"staff", required_argument, NULL, SF_OPT_STAFF},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What the options said. */
struct sf_opts {
	const char *name, *email, *role, *staff;
	bool password_stdin;
};

/* Parses the options of every subcommand of 'cmd' into o. */
static int
sf_opts(struct ctl *ctl, const char *cmd, int argc, char **argv,
    struct sf_opts *o)
{
	int ch, rc;

	optind = 0;
	while (
	    (ch = getopt_long(argc, argv, ":jqh", sf_longopts, NULL)) != -1) {
		switch (ch) {
		case SF_OPT_NAME:
			o->name = optarg;
			break;
		case SF_OPT_EMAIL:
			o->email = optarg;
			break;
		case SF_OPT_ROLE:
			o->role = optarg;
			break;
		case SF_OPT_PASSWORD_STDIN:
			o->password_stdin = true;
			break;
		case SF_OPT_STAFF:
			o->staff = optarg;
			break;
		default:
			if ((rc = ctl_common_opt(ctl, ctl_cmd_lookup(cmd), argc,
				 argv, ch)) != CTL_CONTINUE)
				return rc;
		}
	}
	return CTL_CONTINUE;
}

/* The one ID operand of 'sub', or 0 after a usage error. */
static long long
sf_id_arg(const char *cmd, const char *sub, int argc, char **argv)
{
	char *end;
	long long id;

	if (optind + 1 != argc) {
		ctl_usage_error(cmd, "%s: %s", sub,
		    optind == argc ? "give an ID" : "too many arguments");
		return 0;
	}
	errno = 0;
	id = strtoll(argv[optind], &end, 10);
	if (*end != '\0' || errno != 0 || id <= 0) {
		ctl_usage_error(cmd, "'%s' is not an ID", argv[optind]);
		return 0;
	}
	return id;
}

/* --staff ID into *sid (0 without it): CTL_CONTINUE or a usage error. */
static int
sf_staff_opt(const char *cmd, const struct sf_opts *o, long long *sid)
{
	char *end;

	*sid = 0;
	if (o->staff == NULL)
		return CTL_CONTINUE;
	errno = 0;
	*sid = strtoll(o->staff, &end, 10);
	if (*end != '\0' || errno != 0 || *sid <= 0)
		return ctl_usage_error(cmd,
		    "--staff takes a staff ID, not '%s'", o->staff);
	return CTL_CONTINUE;
}

/*
 * 'cmd SUB [options] [operands]': answers a missing subcommand (naming
 * 'subs'), parses the options into o, and shifts *argv to start at SUB.
 * CTL_CONTINUE, or the exit status.
 */
static int
sf_begin(struct ctl *ctl, const char *cmd, const char *subs, int *argc,
    char ***argv, struct sf_opts *o)
{
	int rc;

	if (*argc < 2 || (*argv)[1][0] == '-') {
		if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup(cmd), *argc,
			 *argv)) != CTL_CONTINUE)
			return rc;
		return ctl_usage_error(cmd, "which subcommand? %s", subs);
	}
	if ((rc = sf_opts(ctl, cmd, *argc - 1, *argv + 1, o)) != CTL_CONTINUE)
		return rc;
	(*argc)--;
	(*argv)++;
	return CTL_CONTINUE;
}

/* The first line of stdin as the password (new, caller frees). */
static int
sf_read_password(const char *cmd, char **out)
{
	size_t len;
	char *data;

	if (ctl_read_file("password", "-", &data, &len) != CTL_EX_OK)
		return CTL_EX_USAGE;
	data[strcspn(data, "\r\n")] = '\0';
	if (data[0] == '\0') {
		free(data);
		return ctl_usage_error(cmd,
		    "no password on standard input (one line)");
	}
	*out = data;
	return CTL_EX_OK;
}

/* One request; prints the reply with 'print' (or raw with -j). */
static int
sf_call(struct ctl *ctl, const char *method, const char *path,
    const json_t *body, void (*print)(const json_t *))
{
	struct ctl_reply r;
	int rc;

	if ((rc = ctl_http(ctl, method, path, body, &r)) != CTL_EX_OK)
		return rc;
	if (r.status >= 300)
		rc = ctl_api_error(ctl, &r);
	else if (ctl->json && r.body != NULL)
		ctl_print_raw(&r);
	else if (ctl->quiet && r.json != NULL)
		printf("%lld\n",
		    (long long)json_integer_value(
			json_object_get(r.json, "id")));
	else if (print != NULL && r.json != NULL)
		print(r.json);
	ctl_reply_free(&r);
	return rc;
}

/* 'cmd revoke ID': DELETE base/ID, then "cmd ID revoked". */
static int
sf_revoke(struct ctl *ctl, const char *cmd, int argc, char **argv,
    const char *base)
{
	char path[96];
	long long id;
	int rc;

	if ((id = sf_id_arg(cmd, argv[0], argc, argv)) == 0)
		return CTL_EX_USAGE;
	snprintf(path, sizeof(path), "%s/%lld", base, id);
	if ((rc = sf_call(ctl, "DELETE", path, NULL, NULL)) == CTL_EX_OK &&
	    !ctl->quiet && !ctl->json)
		printf("%s %lld revoked\n", cmd, id);
	return rc;
}

static void
sf_print_staff(const json_t *s)
{
	char *name = ctl_safe_text(json_object_get(s, "name"));
	char *email = ctl_safe_text(json_object_get(s, "email"));
	char *role = ctl_safe_text(json_object_get(s, "role"));

	printf("staff %lld: %s <%s> %s%s\n",
	    (long long)json_integer_value(json_object_get(s, "id")), name,
	    email, role,
	    json_is_true(json_object_get(s, "disabled")) ? " (disabled)" : "");
	free(name);
	free(email);
	free(role);
}

static void
sf_print_staff_list(const json_t *o)
{
	const json_t *a = json_object_get(o, "staff"), *s;
	struct ctl_table t;
	char id[24], *email, *name, *role;
	size_t i;

	ctl_table_init(&t, 5, "rllll");
	ctl_table_add(&t,
	    (const char *const[]){"ID", "NAME", "EMAIL", "ROLE", "STATUS"});
	json_array_foreach(a, i, s) {
		snprintf(id, sizeof(id), "%lld",
		    (long long)json_integer_value(json_object_get(s, "id")));
		name = ctl_json_text(json_object_get(s, "name"));
		email = ctl_json_text(json_object_get(s, "email"));
		role = ctl_json_text(json_object_get(s, "role"));
		ctl_table_add(&t,
		    (const char *const[]){id, name, email, role,
			json_is_true(json_object_get(s, "disabled"))
			    ? "disabled"
			    : "active"});
		free(name);
		free(email);
		free(role);
	}
	ctl_table_print(&t, "");
	ctl_table_free(&t);
}

static int
sf_staff_add(struct ctl *ctl, const struct sf_opts *o, int argc)
{
	char *pw = NULL;
	json_t *body;
	int rc;

	if (optind != argc)
		return ctl_usage_error("staff", "add takes no operands");
	if (o->name == NULL || o->email == NULL || o->role == NULL)
		return ctl_usage_error("staff",
		    "add needs --name, --email and --role");
	if (o->password_stdin && (rc = sf_read_password("staff", &pw)) != 0)
		return rc;
	body = json_pack("{s:s, s:s, s:s}", "name", o->name, "email", o->email,
	    "role", o->role);
	if (pw != NULL)
		json_object_set_new(body, "password", json_string(pw));
	rc = sf_call(ctl, "POST", "/api/v1/staff", body, sf_print_staff);
	if (pw != NULL) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	json_decref(body);
	return rc;
}

static int
sf_staff_patch(struct ctl *ctl, long long id, bool passwd)
{
	char path[64], *pw = NULL;
	json_t *body;
	int rc;

	if (passwd && (rc = sf_read_password("staff", &pw)) != 0)
		return rc;
	snprintf(path, sizeof(path), "/api/v1/staff/%lld", id);
	body = passwd ? json_pack("{s:s}", "password", pw)
		      : json_pack("{s:b}", "disabled", 1);
	rc = sf_call(ctl, "PATCH", path, body, sf_print_staff);
	if (pw != NULL) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	json_decref(body);
	return rc;
}

int
ctl_cmd_staff(struct ctl *ctl, int argc, char **argv)
{
	struct sf_opts o = {0};
	const char *sub;
	long long id;
	int rc;

	if ((rc = sf_begin(ctl, "staff", "add, list, disable or passwd", &argc,
		 &argv, &o)) != CTL_CONTINUE)
		return rc;
	sub = argv[0];
	if (strcmp(sub, "add") == 0)
		return sf_staff_add(ctl, &o, argc);
	if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return ctl_usage_error("staff",
			    "list takes no operands");
		return sf_call(ctl, "GET", "/api/v1/staff", NULL,
		    sf_print_staff_list);
	}
	if (strcmp(sub, "disable") != 0 && strcmp(sub, "passwd") != 0)
		return ctl_usage_error("staff",
		    "unknown subcommand '%s' (add, list, disable, passwd)",
		    sub);
	if ((id = sf_id_arg("staff", sub, argc, argv)) == 0)
		return CTL_EX_USAGE;
	return sf_staff_patch(ctl, id, strcmp(sub, "passwd") == 0);
}

/* ---- token -------------------------------------------------------- */

static void
sf_print_tokens(const json_t *o)
{
	const json_t *a = json_object_get(o, "tokens"), *t, *st;
	struct ctl_table tab;
	char id[24], sid[24], *name, *sname, *created, *revoked;
	size_t i;

	ctl_table_init(&tab, 6, "rlrlll");
	ctl_table_add(&tab,
	    (const char *const[]){"ID", "NAME", "STAFF", "STAFF NAME",
		"CREATED", "REVOKED"});
	json_array_foreach(a, i, t) {
		st = json_object_get(t, "staff");
		snprintf(id, sizeof(id), "%lld",
		    (long long)json_integer_value(json_object_get(t, "id")));
		snprintf(sid, sizeof(sid), "%lld",
		    (long long)json_integer_value(json_object_get(st, "id")));
		name = ctl_json_text(json_object_get(t, "name"));
		sname = ctl_json_text(json_object_get(st, "name"));
		created = ctl_json_text(json_object_get(t, "created_at"));
		revoked = ctl_json_text(json_object_get(t, "revoked_at"));
		ctl_table_add(&tab,
		    (const char *const[]){id, name, sid, sname, created,
			revoked});
		free(name);
		free(sname);
		free(created);
		free(revoked);
	}
	ctl_table_print(&tab, "");
	ctl_table_free(&tab);
}

/* The new token alone on stdout; what it is on stderr. */
static void
sf_print_new_token(const json_t *t)
{
	char *tok = ctl_safe_text(json_object_get(t, "token"));
	char *name = ctl_safe_text(json_object_get(t, "name"));

	fprintf(stderr,
	    "token %lld (%s) of staff %lld; it is shown only now:\n",
	    (long long)json_integer_value(json_object_get(t, "id")), name,
	    (long long)json_integer_value(json_object_get(t, "staff_id")));
	printf("%s\n", tok);
	free(tok);
	free(name);
}

static int
sf_token_create(struct ctl *ctl, const struct sf_opts *o, int argc)
{
	json_t *body;
	long long sid;
	int rc;

	if (optind != argc)
		return ctl_usage_error("token", "create takes no operands");
	if ((rc = sf_staff_opt("token", o, &sid)) != CTL_CONTINUE)
		return rc;
	body = json_object();
	if (o->name != NULL)
		json_object_set_new(body, "name", json_string(o->name));
	if (sid != 0)
		json_object_set_new(body, "staff_id",
		    json_integer((json_int_t)sid));
	/* -q would print only the id: the token is the point */
	ctl->quiet = false;
	rc = sf_call(ctl, "POST", "/api/v1/tokens", body, sf_print_new_token);
	json_decref(body);
	return rc;
}

int
ctl_cmd_token(struct ctl *ctl, int argc, char **argv)
{
	struct sf_opts o = {0};
	const char *sub;
	int rc;

	if ((rc = sf_begin(ctl, "token", "create, list or revoke", &argc, &argv,
		 &o)) != CTL_CONTINUE)
		return rc;
	sub = argv[0];
	if (strcmp(sub, "create") == 0)
		return sf_token_create(ctl, &o, argc);
	if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return ctl_usage_error("token",
			    "list takes no operands");
		return sf_call(ctl, "GET", "/api/v1/tokens", NULL,
		    sf_print_tokens);
	}
	if (strcmp(sub, "revoke") != 0)
		return ctl_usage_error("token",
		    "unknown subcommand '%s' (create, list, revoke)", sub);
	return sf_revoke(ctl, "token", argc, argv, "/api/v1/tokens");
}

/* ---- session ------------------------------------------------------ */

static void
sf_print_sessions(const json_t *o)
{
	static const char *const keys[] = {"via", "peer", "created_at",
	    "last_seen_at", "expires_at"};
	const json_t *a = json_object_get(o, "sessions"), *x, *st;
	struct ctl_table tab;
	char id[24], sid[24], *txt[6];
	size_t i, k;

	ctl_table_init(&tab, 9, "rrlllllll");
	ctl_table_add(&tab,
	    (const char *const[]){"ID", "STAFF", "STAFF NAME", "VIA", "PEER",
		"CREATED", "LAST SEEN", "EXPIRES", "CURRENT"});
	json_array_foreach(a, i, x) {
		st = json_object_get(x, "staff");
		snprintf(id, sizeof(id), "%lld",
		    (long long)json_integer_value(json_object_get(x, "id")));
		snprintf(sid, sizeof(sid), "%lld",
		    (long long)json_integer_value(json_object_get(st, "id")));
		txt[0] = ctl_json_text(json_object_get(st, "name"));
		for (k = 0; k < 5; k++)
			txt[k + 1] = ctl_json_text(json_object_get(x, keys[k]));
		ctl_table_add(&tab,
		    (const char *const[]){id, sid, txt[0], txt[1], txt[2],
			txt[3], txt[4], txt[5],
			json_is_true(json_object_get(x, "current")) ? "*"
								    : ""});
		for (k = 0; k < 6; k++)
			free(txt[k]);
	}
	ctl_table_print(&tab, "");
	ctl_table_free(&tab);
}

/* session list [--staff ID] */
static int
sf_session_list(struct ctl *ctl, const struct sf_opts *o, int argc)
{
	char path[64];
	long long sid;
	int rc;

	if (optind != argc)
		return ctl_usage_error("session", "list takes no operands");
	if ((rc = sf_staff_opt("session", o, &sid)) != CTL_CONTINUE)
		return rc;
	if (sid != 0)
		snprintf(path, sizeof(path), "/api/v1/sessions?staff_id=%lld",
		    sid);
	else
		strlcpy(path, "/api/v1/sessions", sizeof(path));
	return sf_call(ctl, "GET", path, NULL, sf_print_sessions);
}

int
ctl_cmd_session(struct ctl *ctl, int argc, char **argv)
{
	struct sf_opts o = {0};
	const char *sub;
	int rc;

	if ((rc = sf_begin(ctl, "session", "list or revoke", &argc, &argv,
		 &o)) != CTL_CONTINUE)
		return rc;
	sub = argv[0];
	if (strcmp(sub, "list") == 0)
		return sf_session_list(ctl, &o, argc);
	if (strcmp(sub, "revoke") != 0)
		return ctl_usage_error("session",
		    "unknown subcommand '%s' (list, revoke)", sub);
	return sf_revoke(ctl, "session", argc, argv, "/api/v1/sessions");
}
