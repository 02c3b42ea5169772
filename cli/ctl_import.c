/*
 * ctl_import.c - outreachctl import: streams a CSV file to the daemon's
 * import API in pieces (POST /api/v1/imports, then .../data per piece,
 * then .../finish), with a progress bar, and prints the report.
 *
 * The file is never read whole: one piece of CTL_IMPORT_PIECE bytes at a
 * time, each sent with ?offset= so a piece can never count twice. Pieces
 * are cut at any byte; the daemon's CSV reader joins them.
 *
 * The pieces are raw text/csv bodies, sent with ctl_http_raw().
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "compat.h"
#include "ctl.h"
#include "xmalloc.h"

#define CTL_IMPORT_PIECE     (256u * 1024) /* bytes per request */
#define CTL_IMPORT_TIMEOUT_S 120L	   /* one piece: parse + commit */
#define CTL_IMPORT_SHOWN     20		   /* problem rows printed */
#define CTL_IMPORT_BAR	     24		   /* progress bar cells */

enum {
	CTL_OPT_LIST = 256,
	CTL_OPT_SOURCE,
	CTL_OPT_REGION,
};

const char ctl_help_import[] =
    "Import members from a CSV file into a list, streaming the file to the\n"
    "daemon in pieces (POST /api/v1/imports). Every row is validated; the\n"
    "report counts what happened to each and lists the problem rows with\n"
    "their line numbers. Importing the same file again changes nothing.\n"
    "\n"
    "Options:\n"
    "  --list NAME      the list the members join (required)\n"
    "  --source TEXT    where their consent comes from, recorded in each\n"
    "                   member's consent log (required), e.g.\n"
    "                   --source '2024 rally sign-up sheets'\n"
    "  --region CC      country of numbers written without +country code\n"
    "                   (default: the daemon's [sms] default_region)\n"
    "  -j, --json       print the daemon's final report as JSON\n"
    "  -q, --quiet      no progress; print only the counts line\n"
    "  -h, --help       show this help\n"
    "\n"
    "FILE.csv ('-' for stdin) is UTF-8 (a byte order mark is fine), with\n"
    "LF or CRLF line ends and RFC 4180 quoting. Its first line names the\n"
    "columns, in any order and case: phone (or mobile, cell,\n"
    "phone_number), email (e-mail), first_name (first name, firstname),\n"
    "last_name (surname), zip (zipcode, postal_code), tags (several in one\n"
    "cell, separated by ';', '|' or ','). Any other column becomes a custom\n"
    "field named like its header. A phone or an email column is required.\n"
    "\n"
    "Each row needs a valid phone or email. A row with one valid and the\n"
    "other not is imported by the valid one, with a warning. A phone or\n"
    "email already seen earlier in the file makes the row a duplicate (the\n"
    "first one wins). A member who opted out is updated but never\n"
    "resubscribed: the opt-out wins and is counted as opted out.\n"
    "\n"
    "A progress bar (percent, rows/s, time left) is drawn on stderr when it\n"
    "is a terminal; otherwise a progress line is printed every 10%.\n"
    "\n"
    "Exit status: 0 when the import finished, even if some rows were\n"
    "rejected (the report says which); 1 when the daemon refused the import\n"
    "or stopped it (a bad header, an unterminated quote, the store); 2 for\n"
    "a bad command line or an unreadable file; 3 when the daemon cannot be\n"
    "reached. An import cut short can simply be run again.\n"
    "\n"
    "Example:\n"
    "  outreachctl import members.csv --list volunteers \\\n"
    "      --source '2024 rally sign-up sheets'\n";

struct ctl_import_opts {
	const char *file;
	const char *list;
	const char *source;
	const char *region;
};

struct ctl_import_progress {
	bool tty;
	bool quiet;
	double started;
	double last_draw;
	off_t total; /* 0: unknown (stdin, a pipe) */
	int last_decile;
};

static double
ctl_import_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int
ctl_import_parse(struct ctl *ctl, struct ctl_import_opts *o, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"list", required_argument, NULL, CTL_OPT_LIST},
	    {"source", required_argument, NULL, CTL_OPT_SOURCE},
	    {"region", required_argument, NULL, CTL_OPT_REGION},
	    {"json", no_argument, NULL, 'j'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const struct ctl_cmd *cmd = ctl_cmd_lookup("import");
	int ch, rc;

	memset(o, 0, sizeof(*o));
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1) {
		if (ch == CTL_OPT_LIST)
			o->list = optarg;
		else if (ch == CTL_OPT_SOURCE)
			o->source = optarg;
		else if (ch == CTL_OPT_REGION)
			o->region = optarg;
		else if ((rc = ctl_common_opt(ctl, cmd, argc, argv, ch)) !=
		    CTL_CONTINUE)
			return rc;
	}
	if (optind >= argc)
		return ctl_usage_error("import", "FILE.csv is required");
	if (optind + 1 < argc)
		return ctl_usage_error("import", "unexpected argument '%s'",
		    argv[optind + 1]);
	o->file = argv[optind];
	if (o->list == NULL || *o->list == '\0')
		return ctl_usage_error("import", "--list NAME is required");
	if (o->source == NULL || *o->source == '\0')
		return ctl_usage_error("import",
		    "--source TEXT is required: where the members' consent "
		    "comes from, e.g. --source '2024 rally sign-up sheets'");
	return CTL_CONTINUE;
}

static json_int_t
ctl_import_count(const json_t *report, const char *name)
{
	return json_integer_value(
	    json_object_get(json_object_get(report, "counts"), name));
}

/* Redraws the bar (tty) or prints a line every 10% (not a tty). */
static void
ctl_import_progress(struct ctl_import_progress *p, off_t sent,
    const json_t *report, bool done)
{
	json_int_t rows = ctl_import_count(report, "rows");
	double now = ctl_import_now(), el = now - p->started, rate, pct;
	char bar[CTL_IMPORT_BAR + 1], eta[32] = "";
	int i, fill, decile;

	if (p->quiet)
		return;
	rate = el > 0 ? (double)rows / el : 0;
	pct = p->total > 0 ? 100.0 * (double)sent / (double)p->total : 0;
	if (p->tty) {
		if (!done && now - p->last_draw < 0.1)
			return;
		p->last_draw = now;
		fill = (int)(pct * CTL_IMPORT_BAR / 100);
		for (i = 0; i < CTL_IMPORT_BAR; i++)
			bar[i] = i < fill ? '#' : '-';
		bar[CTL_IMPORT_BAR] = '\0';
		if (p->total > 0 && sent > 0 && !done)
			snprintf(eta, sizeof(eta), "  ETA %.0fs",
			    el * (double)(p->total - sent) / (double)sent);
		if (p->total > 0)
			fprintf(stderr,
			    "\r[%s] %3.0f%%  %lld rows  %.0f rows/s%s"
			    "\033[K",
			    bar, pct, (long long)rows, rate, eta);
		else
			fprintf(stderr,
			    "\r%lld bytes  %lld rows  %.0f rows/s"
			    "\033[K",
			    (long long)sent, (long long)rows, rate);
		if (done)
			fputc('\n', stderr);
		return;
	}
	if (!done && p->total > 0 && sent >= p->total)
		return; /* the last line comes with the report */
	decile = p->total > 0 ? (int)(pct / 10) : (int)(el / 5);
	if (decile == p->last_decile && !done)
		return;
	p->last_decile = decile;
	if (p->total > 0)
		fprintf(stderr,
		    "outreachctl: import: %.0f%% (%lld of %lld bytes), %lld "
		    "rows, %.0f rows/s\n",
		    pct, (long long)sent, (long long)p->total, (long long)rows,
		    rate);
	else
		fprintf(stderr,
		    "outreachctl: import: %lld bytes, %lld rows, %.0f rows/s\n",
		    (long long)sent, (long long)rows, rate);
}

static void
ctl_import_print(const struct ctl *ctl, const json_t *rep)
{
	static const struct {
		const char *key, *label;
	} rows[] = {
	    {"rows", "rows"},
	    {"created", "created"},
	    {"updated", "updated"},
	    {"unchanged", "unchanged"},
	    {"opted_out", "opted out (not resubscribed)"},
	    {"duplicates_in_file", "duplicates in the file"},
	    {"conflicts", "conflicts"},
	    {"rejected", "rejected"},
	    {"warnings", "imported with a warning"},
	    {"blank", "blank lines skipped"},
	};
	const json_t *issues = json_object_get(rep, "issues"), *it;
	json_int_t total =
	    json_integer_value(json_object_get(rep, "issues_total"));
	json_int_t notin;
	char *list, *text;
	size_t i;

	notin = ctl_import_count(rep, "duplicates_in_file") +
	    ctl_import_count(rep, "conflicts") +
	    ctl_import_count(rep, "rejected");
	if (ctl->quiet) {
		printf("rows=%lld created=%lld updated=%lld unchanged=%lld "
		       "opted_out=%lld duplicates_in_file=%lld conflicts=%lld "
		       "rejected=%lld warnings=%lld\n",
		    (long long)ctl_import_count(rep, "rows"),
		    (long long)ctl_import_count(rep, "created"),
		    (long long)ctl_import_count(rep, "updated"),
		    (long long)ctl_import_count(rep, "unchanged"),
		    (long long)ctl_import_count(rep, "opted_out"),
		    (long long)ctl_import_count(rep, "duplicates_in_file"),
		    (long long)ctl_import_count(rep, "conflicts"),
		    (long long)ctl_import_count(rep, "rejected"),
		    (long long)ctl_import_count(rep, "warnings"));
		return;
	}
	list = ctl_safe_text(json_object_get(rep, "list"));
	printf("Import into list %s finished.\n", list);
	free(list);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf("  %-30s %10lld\n", rows[i].label,
		    (long long)ctl_import_count(rep, rows[i].key));
	if (total > 0) {
		printf("\nRows to look at (%lld", (long long)total);
		if ((size_t)total > json_array_size(issues) ||
		    total > CTL_IMPORT_SHOWN)
			printf("; the first %d shown, -j for up to %zu",
			    CTL_IMPORT_SHOWN, json_array_size(issues));
		printf("):\n");
	}
	json_array_foreach(issues, i, it) {
		if (i >= CTL_IMPORT_SHOWN)
			break;
		text = ctl_safe_text(json_object_get(it, "reason"));
		printf("  line %-8lld %-9s %s\n",
		    (long long)json_integer_value(json_object_get(it, "line")),
		    json_string_value(json_object_get(it, "kind")) != NULL
			? json_string_value(json_object_get(it, "kind"))
			: "-",
		    text);
		free(text);
	}
	if (notin > 0)
		printf(
		    "\n%lld rows were not imported (see above); fix them and "
		    "import the file again: rows already in are unchanged.\n",
		    (long long)notin);
}

/* Opens the import session; *id receives its id. */
static int
ctl_import_open(struct ctl *ctl, const struct ctl_import_opts *o, char **id)
{
	struct ctl_reply r;
	json_t *req;
	const char *s;
	int rc;

	req = json_pack("{s:s, s:s}", "list", o->list, "source", o->source);
	if (req == NULL) {
		fprintf(stderr,
		    "outreachctl: import: --list and --source "
		    "must be UTF-8 text\n");
		return CTL_EX_USAGE;
	}
	if (o->region != NULL)
		json_object_set_new(req, "region", json_string(o->region));
	rc = ctl_http(ctl, "POST", "/api/v1/imports", req, &r);
	json_decref(req);
	if (rc == CTL_EX_OK && r.status != 201)
		rc = ctl_api_error(ctl, &r);
	else if (rc == CTL_EX_OK &&
	    (s = json_string_value(json_object_get(r.json, "id"))) != NULL)
		*id = xstrdup(s);
	else if (rc == CTL_EX_OK) {
		fprintf(stderr,
		    "outreachctl: import: the daemon's reply has "
		    "no import id\n");
		rc = CTL_EX_FAIL;
	}
	ctl_reply_free(&r);
	return rc;
}

/* Best effort: tells the daemon to drop a session we give up on. */
static void
ctl_import_abort(struct ctl *ctl, const char *id)
{
	struct ctl_reply r;
	char *path = xasprintf("/api/v1/imports/%s", id);

	(void)ctl_http(ctl, "DELETE", path, NULL, &r);
	ctl_reply_free(&r);
	free(path);
}

/* Sends the file piece by piece, then finish; *rep gets the report. */
static int
ctl_import_stream(struct ctl *ctl, FILE *fp, const char *id,
    struct ctl_import_progress *p, json_t **rep)
{
	struct ctl_reply r;
	char *buf = xmalloc(CTL_IMPORT_PIECE), *path;
	off_t sent = 0;
	size_t n;
	int rc = CTL_EX_OK;

	for (;;) {
		n = fread(buf, 1, CTL_IMPORT_PIECE, fp);
		if (n == 0 && ferror(fp)) {
			fprintf(stderr, "outreachctl: import: read error: %s\n",
			    strerror(errno));
			rc = CTL_EX_USAGE;
			break;
		}
		path = n > 0 ? xasprintf("/api/v1/imports/%s/data?offset=%lld",
				   id, (long long)sent)
			     : xasprintf("/api/v1/imports/%s/finish", id);
		rc = ctl_http_raw(ctl, "POST", path,
		    &(struct ctl_body){.type = "text/csv; charset=utf-8",
			.data = buf,
			.len = n},
		    CTL_IMPORT_TIMEOUT_S, &r);
		free(path);
		if (rc == CTL_EX_OK && r.status != 200)
			rc = ctl_api_error(ctl, &r);
		if (rc != CTL_EX_OK) {
			ctl_reply_free(&r);
			break;
		}
		sent += (off_t)n;
		ctl_import_progress(p, sent, r.json, n == 0);
		if (n == 0) {
			if (ctl->json)
				ctl_print_raw(&r);
			*rep = json_incref(r.json);
			ctl_reply_free(&r);
			break;
		}
		ctl_reply_free(&r);
	}
	if (rc != CTL_EX_OK && p->tty && !p->quiet)
		fputc('\n', stderr);
	free(buf);
	return rc;
}

int
ctl_cmd_import(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_import_opts o;
	struct ctl_import_progress p;
	struct stat sb;
	json_t *rep = NULL;
	char *id = NULL;
	FILE *fp;
	int rc;

	if ((rc = ctl_import_parse(ctl, &o, argc, argv)) != CTL_CONTINUE)
		return rc;
	fp = strcmp(o.file, "-") == 0 ? stdin : fopen(o.file, "rb");
	if (fp == NULL) {
		fprintf(stderr, "outreachctl: import: %s: %s\n", o.file,
		    strerror(errno));
		return CTL_EX_USAGE;
	}
	memset(&p, 0, sizeof(p));
	p.tty = isatty(STDERR_FILENO);
	p.quiet = ctl->quiet || ctl->json;
	p.last_decile = -1;
	if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode))
		p.total = sb.st_size;
	if ((rc = ctl_import_open(ctl, &o, &id)) == CTL_EX_OK) {
		p.started = ctl_import_now();
		rc = ctl_import_stream(ctl, fp, id, &p, &rep);
		if (rc == CTL_EX_USAGE)
			ctl_import_abort(ctl, id);
	}
	if (fp != stdin)
		fclose(fp);
	if (rc == CTL_EX_OK && !ctl->json)
		ctl_import_print(ctl, rep);
	json_decref(rep);
	free(id);
	return rc;
}
