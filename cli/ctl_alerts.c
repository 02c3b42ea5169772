/*
 * ctl_alerts.c - outreachctl alert: create, preview, schedule, send,
 * pause, resume, cancel, show, list and watch action alerts through
 * /api/v1/alerts.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "ctl.h"
#include "xmalloc.h"

const char ctl_help_alert[] =
    "Subcommands:\n"
    "  create --name NAME --list LIST [--list LIST ...] [audience options]\n"
    "         [--sms TEXT | --sms-file FILE] [--subject TEXT\n"
    "         (--text TEXT | --text-file FILE) [--html-file FILE]]\n"
    "         [--sender NAME] [--urgent] [--validity SECONDS]\n"
    "         [--at TIME] [--key KEY]\n"
    "      Make a draft. Audience options narrow the lists' members:\n"
    "      --tag TAG (repeatable: every tag), --field NAME=VALUE\n"
    "      (repeatable), --zip PREFIX, --follow-up ALERT:missed (members\n"
    "      whose message of ALERT failed or expired) or ALERT:no_reply.\n"
    "      Templates take {{first_name}}, {{first_name|friend}} and\n"
    "      {{attr.NAME}}; a placeholder without a fallback that some\n"
    "      members lack is refused with how many lack it.\n"
    "  preview ID      the SMS as members will get it, its encoding and\n"
    "                  segments, who it reaches and who it leaves out,\n"
    "                  warnings, and how long it takes at the sender's rate\n"
    "  send ID [--key KEY]      start sending now\n"
    "  schedule ID --at TIME    send at TIME (ISO 8601, e.g.\n"
    "                           2026-12-08T15:00:00Z)\n"
    "  pause ID | resume ID | cancel ID\n"
    "  show ID         the alert and its counts per channel\n"
    "  list [--status STATUS]   the newest alerts\n"
    "  watch ID        a live progress bar until the alert ends\n"
    "\n"
    "SMS waits for each member's local sending window (08:00-20:00 by\n"
    "default) unless the alert is --urgent. --key makes a retry safe:\n"
    "the same key never makes a second alert or a second send.\n"
    "\n"
    "Exit status: 0 done; 1 the daemon refused (the reason is printed);\n"
    "2 usage; 3 the daemon is unreachable. watch exits 0 when the alert\n"
    "is done, 1 when it was cancelled.\n";

enum {
	AL_OPT_NAME = 256,
	AL_OPT_LIST,
	AL_OPT_TAG,
	AL_OPT_FIELD,
	AL_OPT_ZIP,
	AL_OPT_FOLLOW_UP,
	AL_OPT_SMS,
	AL_OPT_SMS_FILE,
	AL_OPT_SUBJECT,
	AL_OPT_TEXT,
	AL_OPT_TEXT_FILE,
	AL_OPT_HTML_FILE,
	AL_OPT_SENDER,
	AL_OPT_URGENT,
	AL_OPT_VALIDITY,
	AL_OPT_AT,
	AL_OPT_KEY,
	AL_OPT_STATUS,
};

static const struct option al_longopts[] = {
    {"name", required_argument, NULL, AL_OPT_NAME},
    {"list", required_argument, NULL, AL_OPT_LIST},
    {"tag", required_argument, NULL, AL_OPT_TAG},
    {"field", required_argument, NULL, AL_OPT_FIELD},
    {"zip", required_argument, NULL, AL_OPT_ZIP},
    {"follow-up", required_argument, NULL, AL_OPT_FOLLOW_UP},
    {"sms", required_argument, NULL, AL_OPT_SMS},
    {"sms-file", required_argument, NULL, AL_OPT_SMS_FILE},
    {"subject", required_argument, NULL, AL_OPT_SUBJECT},
    {"text", required_argument, NULL, AL_OPT_TEXT},
    {"text-file", required_argument, NULL, AL_OPT_TEXT_FILE},
    {"html-file", required_argument, NULL, AL_OPT_HTML_FILE},
    {"sender", required_argument, NULL, AL_OPT_SENDER},
    {"urgent", no_argument, NULL, AL_OPT_URGENT},
    {"validity", required_argument, NULL, AL_OPT_VALIDITY},
    {"at", required_argument, NULL, AL_OPT_AT},
    {"key", required_argument, NULL, AL_OPT_KEY},
    {"status", required_argument, NULL, AL_OPT_STATUS},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Reads a template file into body[key]; an exit status or CTL_CONTINUE. */
static int
al_file_field(json_t *body, const char *key, const char *path)
{
	char *data;
	size_t len;

	if (ctl_read_file(key, path, &data, &len) != 0)
		return CTL_EX_USAGE;
	json_object_set_new(body, key, json_stringn(data, len));
	free(data);
	return CTL_CONTINUE;
}

/* Appends to the array body[key], made on first use. */
static void
al_append(json_t *body, const char *key, json_t *v)
{
	json_t *a = json_object_get(body, key);

	if (a == NULL) {
		a = json_array();
		json_object_set_new(body, key, a);
	}
	json_array_append_new(a, v);
}

/* Parses the options of create (and of every subcommand) into body. */
static int
al_opts(struct ctl *ctl, int argc, char **argv, json_t *body, const char **key,
    const char **status)
{
	const struct ctl_cmd *cmd = ctl_cmd_lookup("alert");
	char *eq, *end;
	long v;
	int ch, rc;

	optind = 0;
	while (
	    (ch = getopt_long(argc, argv, ":jqh", al_longopts, NULL)) != -1) {
		switch (ch) {
		case AL_OPT_NAME:
			json_object_set_new(body, "name", json_string(optarg));
			break;
		case AL_OPT_LIST:
			al_append(body, "lists", json_string(optarg));
			break;
		case AL_OPT_TAG:
			al_append(body, "tags", json_string(optarg));
			break;
		case AL_OPT_FIELD:
			if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
				return ctl_usage_error("alert",
				    "--field takes NAME=VALUE, not '%s'",
				    optarg);
			*eq = '\0';
			if (json_object_get(body, "fields") == NULL)
				json_object_set_new(body, "fields",
				    json_object());
			json_object_set_new(json_object_get(body, "fields"),
			    optarg, json_string(eq + 1));
			break;
		case AL_OPT_ZIP:
			json_object_set_new(body, "zip_prefix",
			    json_string(optarg));
			break;
		case AL_OPT_FOLLOW_UP:
			v = strtol(optarg, &end, 10);
			if (v <= 0 || *end != ':' ||
			    (strcmp(end + 1, "missed") != 0 &&
				strcmp(end + 1, "no_reply") != 0))
				return ctl_usage_error("alert",
				    "--follow-up takes ALERT:missed or "
				    "ALERT:no_reply, not '%s'",
				    optarg);
			json_object_set_new(body, "follow_up",
			    json_pack("{s:I, s:s}", "alert", (json_int_t)v,
				"who", end + 1));
			break;
		case AL_OPT_SMS:
			json_object_set_new(body, "sms_body",
			    json_string(optarg));
			break;
		case AL_OPT_SMS_FILE:
			if ((rc = al_file_field(body, "sms_body", optarg)) !=
			    CTL_CONTINUE)
				return rc;
			break;
		case AL_OPT_SUBJECT:
			json_object_set_new(body, "email_subject",
			    json_string(optarg));
			break;
		case AL_OPT_TEXT:
			json_object_set_new(body, "email_text",
			    json_string(optarg));
			break;
		case AL_OPT_TEXT_FILE:
			if ((rc = al_file_field(body, "email_text", optarg)) !=
			    CTL_CONTINUE)
				return rc;
			break;
		case AL_OPT_HTML_FILE:
			if ((rc = al_file_field(body, "email_html", optarg)) !=
			    CTL_CONTINUE)
				return rc;
			break;
		case AL_OPT_SENDER:
			json_object_set_new(body, "sender",
			    json_string(optarg));
			break;
		case AL_OPT_URGENT:
			json_object_set_new(body, "urgent", json_true());
			break;
		case AL_OPT_VALIDITY:
			v = strtol(optarg, &end, 10);
			if (v <= 0 || *end != '\0')
				return ctl_usage_error("alert",
				    "--validity takes seconds, not '%s'",
				    optarg);
			json_object_set_new(body, "validity", json_integer(v));
			break;
		case AL_OPT_AT:
			json_object_set_new(body, "scheduled_at",
			    json_string(optarg));
			break;
		case AL_OPT_KEY:
			*key = optarg;
			break;
		case AL_OPT_STATUS:
			*status = optarg;
			break;
		default:
			if ((rc = ctl_common_opt(ctl, cmd, argc, argv, ch)) !=
			    CTL_CONTINUE)
				return rc;
		}
	}
	return CTL_CONTINUE;
}

/* The ID operand of a subcommand; 0 after printing a usage error. */
static long long
al_id_arg(const char *sub, int argc, char **argv)
{
	char *end;
	long long id;

	if (optind + 1 != argc) {
		ctl_usage_error("alert", "%s: %s", sub,
		    optind == argc ? "which alert? give its ID"
				   : "too many arguments");
		return 0;
	}
	errno = 0;
	id = strtoll(argv[optind], &end, 10);
	if (*end != '\0' || errno != 0 || id <= 0) {
		ctl_usage_error("alert", "'%s' is not an alert ID",
		    argv[optind]);
		return 0;
	}
	return id;
}

/* A count from counts[channel][state]. */
static json_int_t
al_count(const json_t *a, const char *ch, const char *state)
{
	return json_integer_value(json_object_get(
	    json_object_get(json_object_get(a, "counts"), ch), state));
}

static void
al_print_counts(const json_t *a)
{
	static const char *const states[] = {"pending", "deferred", "sent",
	    "delivered", "undelivered", "failed", "suppressed", "expired",
	    "cancelled"};
	const char *chans[] = {"sms", "email"};
	struct ctl_table t;
	const char *row[11];
	char cells[11][24];
	size_t c, i;

	ctl_table_init(&t, 11, "lrrrrrrrrrr");
	row[0] = "channel";
	row[1] = "audience";
	for (i = 0; i < 9; i++)
		row[i + 2] = states[i];
	ctl_table_add(&t, row);
	for (c = 0; c < 2; c++) {
		row[0] = chans[c];
		{
			char *aud = ctl_json_text(json_object_get(
			    json_object_get(a, "audience_size"), chans[c]));

			snprintf(cells[1], sizeof(cells[1]), "%s", aud);
			free(aud);
		}
		row[1] = cells[1];
		for (i = 0; i < 9; i++) {
			snprintf(cells[i + 2], sizeof(cells[i + 2]), "%lld",
			    (long long)al_count(a, chans[c], states[i]));
			row[i + 2] = cells[i + 2];
		}
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, "  ");
	ctl_table_free(&t);
}

static void
al_print(const json_t *a)
{
	char *name = ctl_safe_text(json_object_get(a, "name")),
	     *status = ctl_safe_text(json_object_get(a, "status")),
	     *reason = ctl_safe_text(json_object_get(a, "pause_reason")),
	     *at = ctl_safe_text(json_object_get(a, "scheduled_at"));

	printf("alert %lld: %s\n  status: %s%s%s\n  scheduled: %s\n",
	    (long long)json_integer_value(json_object_get(a, "id")), name,
	    status,
	    json_is_string(json_object_get(a, "pause_reason")) ? " - " : "",
	    json_is_string(json_object_get(a, "pause_reason")) ? reason : "",
	    at);
	printf("  caused: %lld opt-outs, %lld replies\n",
	    (long long)json_integer_value(
		json_object_get(json_object_get(a, "caused"), "optouts")),
	    (long long)json_integer_value(
		json_object_get(json_object_get(a, "caused"), "replies")));
	al_print_counts(a);
	free(name);
	free(status);
	free(reason);
	free(at);
}

/* One request; prints the reply (-j raw, -q id/status, else human). */
static int
al_call(struct ctl *ctl, const char *method, const char *path,
    const json_t *body, void (*print)(const json_t *))
{
	struct ctl_reply r;
	int rc;

	if ((rc = ctl_http(ctl, method, path, body, &r)) != CTL_EX_OK)
		return rc;
	if (r.status >= 300)
		rc = ctl_api_error(ctl, &r);
	else if (ctl->json)
		ctl_print_raw(&r);
	else if (ctl->quiet)
		printf("%lld\n",
		    (long long)json_integer_value(
			json_object_get(r.json, "id")));
	else if (print != NULL && r.json != NULL)
		print(r.json);
	ctl_reply_free(&r);
	return rc;
}

static void
al_print_preview(const json_t *p)
{
	const json_t *aud = json_object_get(p, "audience"),
		     *ex = json_object_get(aud, "excluded"),
		     *sms = json_object_get(p, "sms"), *v, *w;
	const char *k;
	char *s;
	size_t i;

	printf("audience: %lld by SMS, %lld by email (%lld both); left out: "
	       "%lld opted out of SMS, %lld of email, %lld bouncing, %lld "
	       "unconfirmed\n",
	    (long long)json_integer_value(json_object_get(aud, "sms")),
	    (long long)json_integer_value(json_object_get(aud, "email")),
	    (long long)json_integer_value(json_object_get(aud, "both")),
	    (long long)json_integer_value(json_object_get(ex, "sms_opted_out")),
	    (long long)json_integer_value(
		json_object_get(ex, "email_opted_out")),
	    (long long)json_integer_value(
		json_object_get(ex, "email_bouncing")),
	    (long long)json_integer_value(json_object_get(ex, "unconfirmed")));
	if (sms != NULL) {
		printf("sms: %s, %lld segment(s), %lld characters at most; "
		       "%lld segments in all, about %.0f s at the sender's "
		       "rate\n",
		    json_string_value(json_object_get(sms, "encoding")),
		    (long long)json_integer_value(
			json_object_get(sms, "segments")),
		    (long long)json_integer_value(
			json_object_get(sms, "chars")),
		    (long long)json_integer_value(
			json_object_get(sms, "total_segments")),
		    json_number_value(json_object_get(sms, "duration_s")));
		json_object_foreach(
		    (json_t *)json_object_get(sms, "ucs2_characters"), k, v) {
			s = ctl_sanitize(k, false);
			if (json_is_string(v))
				printf("  '%s' is not GSM-7; sent as '%s'\n", s,
				    json_string_value(v));
			else
				printf("  '%s' is not GSM-7: the SMS goes as "
				       "UCS-2\n",
				    s);
			free(s);
		}
		json_array_foreach(json_object_get(sms, "samples"), i, w) {
			s = ctl_safe_text(json_object_get(w, "text"));
			printf("  member %lld: %s\n",
			    (long long)json_integer_value(
				json_object_get(w, "member")),
			    s);
			free(s);
		}
	}
	json_array_foreach(json_object_get(p, "missing_fields"), i, w) {
		s = ctl_safe_text(json_object_get(w, "field"));
		printf("missing: %lld members have no %s\n",
		    (long long)json_integer_value(
			json_object_get(w, "members")),
		    s);
		free(s);
	}
	json_array_foreach(json_object_get(p, "warnings"), i, w) {
		s = ctl_safe_text(w);
		printf("warning: %s\n", s);
		free(s);
	}
}

static void
al_print_list(const json_t *o)
{
	struct ctl_table t;
	const json_t *a;
	const char *row[5];
	char id[24], *name, *status;
	size_t i;

	ctl_table_init(&t, 5, "rllll");
	row[0] = "id";
	row[1] = "status";
	row[2] = "name";
	row[3] = "channels";
	row[4] = "started";
	ctl_table_add(&t, row);
	json_array_foreach(json_object_get(o, "alerts"), i, a) {
		char chans[16] = "", *started;
		const json_t *c;
		size_t j;

		snprintf(id, sizeof(id), "%lld",
		    (long long)json_integer_value(json_object_get(a, "id")));
		json_array_foreach(json_object_get(a, "channels"), j, c)
			snprintf(chans + strlen(chans),
			    sizeof(chans) - strlen(chans), "%s%s", j ? "," : "",
			    json_string_value(c));
		name = ctl_json_text(json_object_get(a, "name"));
		status = ctl_json_text(json_object_get(a, "status"));
		started = ctl_json_text(json_object_get(a, "started_at"));
		row[0] = id;
		row[1] = status;
		row[2] = name;
		row[3] = chans;
		row[4] = started;
		ctl_table_add(&t, row);
		free(name);
		free(status);
		free(started);
	}
	ctl_table_print(&t, "");
	ctl_table_free(&t);
}

/* ---- watch ----------------------------------------------------------------
 */

static volatile sig_atomic_t al_interrupted;

static void
al_on_sigint(int sig)
{
	(void)sig;
	al_interrupted = 1;
}

/* "[#######.....]  54%" of done/total into buf. */
static void
al_bar(char *buf, size_t len, long long done, long long total)
{
	int width = 30, fill, pct;
	int i;
	size_t n = 0;

	pct = total > 0 ? (int)(done * 100 / total) : 0;
	if (pct > 100)
		pct = 100;
	fill = pct * width / 100;
	n += (size_t)snprintf(buf + n, len - n, "[");
	for (i = 0; i < width && n + 2 < len; i++)
		buf[n++] = i < fill ? '#' : '.';
	snprintf(buf + n, len - n, "] %3d%%", pct);
}

/* Messages of a channel that are finished (left or ended). */
static long long
al_finished(const json_t *a, const char *ch)
{
	static const char *const done[] = {"sent", "delivered", "undelivered",
	    "failed", "suppressed", "expired", "cancelled"};
	long long n = 0;
	size_t i;

	for (i = 0; i < sizeof(done) / sizeof(done[0]); i++)
		n += al_count(a, ch, done[i]);
	return n;
}

static int
al_watch(struct ctl *ctl, long long id)
{
	struct ctl_reply r;
	char path[64], bar[64];
	const char *status;
	bool tty = isatty(STDOUT_FILENO);
	int rc = CTL_EX_OK;

	snprintf(path, sizeof(path), "/api/v1/alerts/%lld", id);
	signal(SIGINT, al_on_sigint);
	while (!al_interrupted) {
		if ((rc = ctl_http(ctl, "GET", path, NULL, &r)) != CTL_EX_OK)
			return rc;
		if (r.status != 200) {
			rc = ctl_api_error(ctl, &r);
			ctl_reply_free(&r);
			return rc;
		}
		status = json_string_value(json_object_get(r.json, "status"));
		{
			const json_t *aud =
			    json_object_get(r.json, "audience_size");
			long long total =
			    json_integer_value(json_object_get(aud, "sms")) +
			    json_integer_value(json_object_get(aud, "email"));
			long long done = al_finished(r.json, "sms") +
			    al_finished(r.json, "email");

			al_bar(bar, sizeof(bar), done, total);
			printf("%s%s %s  sms %lld/%lld sent, %lld deferred, "
			       "%lld failed | email %lld/%lld sent, %lld "
			       "failed | %.1f msg/s%s",
			    tty ? "\r\033[K" : "", bar,
			    status != NULL ? status : "?",
			    (long long)(al_count(r.json, "sms", "sent") +
				al_count(r.json, "sms", "delivered")),
			    (long long)json_integer_value(
				json_object_get(aud, "sms")),
			    (long long)al_count(r.json, "sms", "deferred"),
			    (long long)al_count(r.json, "sms", "failed"),
			    (long long)(al_count(r.json, "email", "sent") +
				al_count(r.json, "email", "delivered")),
			    (long long)json_integer_value(
				json_object_get(aud, "email")),
			    (long long)al_count(r.json, "email", "failed"),
			    json_number_value(json_object_get(r.json, "rate")),
			    tty ? "" : "\n");
			fflush(stdout);
		}
		if (status != NULL &&
		    (strcmp(status, "done") == 0 ||
			strcmp(status, "cancelled") == 0)) {
			rc = strcmp(status, "done") == 0 ? CTL_EX_OK
							 : CTL_EX_FAIL;
			ctl_reply_free(&r);
			break;
		}
		if (status != NULL && strcmp(status, "paused") == 0 &&
		    json_is_string(json_object_get(r.json, "pause_reason")) &&
		    tty) {
			char *why = ctl_safe_text(
			    json_object_get(r.json, "pause_reason"));

			printf(" (paused: %s)", why);
			free(why);
		}
		ctl_reply_free(&r);
		sleep(1);
	}
	if (tty)
		printf("\n");
	return rc;
}

int
ctl_cmd_alert(struct ctl *ctl, int argc, char **argv)
{
	const char *sub, *key = NULL, *status = NULL;
	json_t *body;
	char path[96];
	long long id = 0;
	int rc;

	if (argc < 2 || argv[1][0] == '-') {
		if ((rc = ctl_cmd_opts(ctl, ctl_cmd_lookup("alert"), argc,
			 argv)) != CTL_CONTINUE)
			return rc;
		return ctl_usage_error("alert",
		    "which subcommand? create, preview, schedule, send, pause, "
		    "resume, cancel, show, list or watch");
	}
	sub = argv[1];
	body = json_object();
	if ((rc = al_opts(ctl, argc - 1, argv + 1, body, &key, &status)) !=
	    CTL_CONTINUE)
		goto done;
	argc--;
	argv++;
	if (key != NULL)
		json_object_set_new(body, "idempotency_key", json_string(key));
	if (strcmp(sub, "create") == 0) {
		if (optind != argc) {
			rc = ctl_usage_error("alert", "create: unexpected '%s'",
			    argv[optind]);
			goto done;
		}
		if (json_object_get(body, "name") == NULL ||
		    json_object_get(body, "lists") == NULL) {
			rc = ctl_usage_error("alert",
			    "create needs --name and at least one --list");
			goto done;
		}
		rc = al_call(ctl, "POST", "/api/v1/alerts", body, al_print);
	} else if (strcmp(sub, "list") == 0) {
		snprintf(path, sizeof(path), "/api/v1/alerts%s%s",
		    status != NULL ? "?status=" : "",
		    status != NULL ? status : "");
		rc = al_call(ctl, "GET", path, NULL, al_print_list);
	} else {
		if ((id = al_id_arg(sub, argc, argv)) == 0) {
			rc = CTL_EX_USAGE;
			goto done;
		}
		if (strcmp(sub, "show") == 0) {
			snprintf(path, sizeof(path), "/api/v1/alerts/%lld", id);
			rc = al_call(ctl, "GET", path, NULL, al_print);
		} else if (strcmp(sub, "watch") == 0)
			rc = al_watch(ctl, id);
		else if (strcmp(sub, "preview") == 0 ||
		    strcmp(sub, "send") == 0 || strcmp(sub, "schedule") == 0 ||
		    strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 ||
		    strcmp(sub, "cancel") == 0) {
			if (strcmp(sub, "schedule") == 0) {
				json_t *at =
				    json_object_get(body, "scheduled_at");

				if (at == NULL) {
					rc = ctl_usage_error("alert",
					    "schedule needs --at TIME");
					goto done;
				}
				json_object_set(body, "at", at);
				json_object_del(body, "scheduled_at");
			}
			snprintf(path, sizeof(path), "/api/v1/alerts/%lld/%s",
			    id, sub);
			rc = al_call(ctl, "POST", path, body,
			    strcmp(sub, "preview") == 0 ? al_print_preview
							: al_print);
		} else
			rc = ctl_usage_error("alert",
			    "unknown subcommand '%s' (create, preview, "
			    "schedule, send, pause, resume, cancel, show, list, "
			    "watch)",
			    sub);
	}
done:
	json_decref(body);
	return rc;
}
