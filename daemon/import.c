/*
 * import.c - streamed CSV imports of members (import.h, outreachd(8)).
 *
 * Protocol. The daemon reads a request body whole (bounded by [http]
 * max_body), so a large file travels as a session of pieces:
 *
 *   POST   /api/v1/imports            {"list", "source", "region"?} -> 201
 *   POST   /api/v1/imports/{id}/data  text/csv, the next piece, cut at
 *          any byte; ?offset=N (bytes sent before it) guards against a
 *          piece sent twice or lost -> 200 progress
 *   POST   /api/v1/imports/{id}/finish -> 200 the final report
 *   GET    /api/v1/imports[/{id}]     progress, or the report
 *   DELETE /api/v1/imports/{id}       abort (rows already written stay)
 *   POST   /api/v1/imports?list=L&source=S[&region=R] with a text/csv
 *          body: the whole import in one request (a small file).
 *
 * A piece is parsed by the incremental reader (csv.h); each complete row
 * is mapped, validated, checked against the rows seen before it in the
 * file and handed to store_import_row(). All the rows of a piece join the
 * store's group transaction, and the reply waits for its commit, so what a
 * reply counts is on disk; a crash loses only unacknowledged pieces, and
 * rerunning the import is idempotent (members already as the file says
 * are "unchanged", no consent event is written twice).
 *
 * Header: names are matched trimmed and case-insensitively, with spaces
 * and dashes as underscores: phone (mobile, cell, phone_number, ...),
 * email (e_mail, email_address), first_name (firstname, first,
 * given_name), last_name (lastname, last, surname, family_name), zip
 * (zipcode, zip_code, postal_code, postcode), tags (tag; a cell holds
 * several, split on ';', '|' or ','). Any other named column becomes a
 * custom field (attributes, key = the header as written, trimmed); a
 * column without a name is ignored. A header without a phone or an email
 * column, or naming one field twice, fails the import.
 *
 * Rows: cells are trimmed; empty cells set nothing (an import never
 * clears a field); a row of empty cells is skipped as blank. The phone is
 * normalized to E.164 (the import's region, else [sms] default_region),
 * the email checked and lower-cased. A row needs one of them valid: one
 * bad and the other good imports the row by the good one and reports a
 * warning (an organizer would rather keep the supporter reachable and fix
 * the typo by re-importing); neither valid rejects the row. A row whose
 * phone or email already appeared earlier in the file is a duplicate (the
 * first occurrence wins), reported with both line numbers. Conflicts
 * (phone of one member, email of another) write nothing. Opted-out
 * members get their fields updated but are never resubscribed.
 *
 * A piece holds a few thousand rows at most ([http] max_body, the CLI
 * sends 256 KiB), which bounds the time one loop turn spends here.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "api.h"
#include "config.h"
#include "csv.h"
#include "email_addr.h"
#include "http.h"
#include "import-internal.h"
#include "import.h"
#include "log.h"
#include "message.h"
#include "phone.h"
#include "store.h"
#include "store_members.h"
#include "xmalloc.h"

#define IMP_EMAIL_MAX EMAIL_ADDR_MAX
#define IMP_ECHO_MAX  40 /* characters of a bad value quoted back */

const char *const imp_col_names[] = {
    "ignored",
    "phone",
    "email",
    "first_name",
    "last_name",
    "zip",
    "tags",
    "custom",
};

/* Header aliases (after lower-casing, spaces and dashes to '_'). */
static const struct {
	const char *alias;
	enum imp_col col;
} imp_aliases[] = {
    {"phone", IMP_COL_PHONE},
    {"mobile", IMP_COL_PHONE},
    {"cell", IMP_COL_PHONE},
    {"phone_number", IMP_COL_PHONE},
    {"mobile_number", IMP_COL_PHONE},
    {"mobile_phone", IMP_COL_PHONE},
    {"cell_phone", IMP_COL_PHONE},
    {"cell_number", IMP_COL_PHONE},
    {"telephone", IMP_COL_PHONE},
    {"email", IMP_COL_EMAIL},
    {"e_mail", IMP_COL_EMAIL},
    {"email_address", IMP_COL_EMAIL},
    {"e_mail_address", IMP_COL_EMAIL},
    {"first_name", IMP_COL_FIRST},
    {"firstname", IMP_COL_FIRST},
    {"first", IMP_COL_FIRST},
    {"given_name", IMP_COL_FIRST},
    {"last_name", IMP_COL_LAST},
    {"lastname", IMP_COL_LAST},
    {"last", IMP_COL_LAST},
    {"surname", IMP_COL_LAST},
    {"family_name", IMP_COL_LAST},
    {"zip", IMP_COL_ZIP},
    {"zipcode", IMP_COL_ZIP},
    {"zip_code", IMP_COL_ZIP},
    {"postal_code", IMP_COL_ZIP},
    {"postcode", IMP_COL_ZIP},
    {"tags", IMP_COL_TAGS},
    {"tag", IMP_COL_TAGS},
};

const char *const imp_state_names[] = {
    "open",
    "finished",
    "failed",
    "aborted",
};

/* A reply waiting for the commit of its piece. */
struct imp_pending {
	struct imp_session *s;
	struct http_req *req;
	int code;  /* status on success */
	bool full; /* reply the report with its issues */
};

static void imp_post(struct http_req *, void *);
static void imp_list(struct http_req *, void *);
static void imp_get(struct http_req *, void *);
static void imp_data(struct http_req *, void *);
static void imp_finish(struct http_req *, void *);

void
imp_routes(struct imports *im, struct http_server *srv,
    const struct imp_handlers *h)
{
	http_route(srv, HTTP_POST, "/api/v1/imports", h->post, im);
	http_route(srv, HTTP_GET, "/api/v1/imports", h->list, im);
	http_route(srv, HTTP_GET | HTTP_DELETE, "/api/v1/imports/{id}", h->get,
	    im);
	http_route(srv, HTTP_POST, "/api/v1/imports/{id}/data", h->data, im);
	http_route(srv, HTTP_POST, "/api/v1/imports/{id}/finish", h->finish,
	    im);
}

struct imports *
imports_new(struct http_server *srv, const struct imports_deps *deps)
{
	struct imports *im = xcalloc(1, sizeof(*im));

	im->deps = *deps;
	if (store_backend(deps->st) == STORE_POSTGRESQL)
		imports_pg_routes(im, srv);
	else
		imp_routes(im, srv,
		    &(struct imp_handlers){.post = imp_post,
			.list = imp_list,
			.get = imp_get,
			.data = imp_data,
			.finish = imp_finish});
	return im;
}

/* ---- The set of keys seen in the file ---------------------------------- */

static uint32_t
imp_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct imp_slot *
imp_set_slot(struct imp_set *set, const char *key, uint32_t h)
{
	size_t i = h & (set->cap - 1);

	while (set->slots[i].line != 0 &&
	    (set->slots[i].hash != h ||
		strcmp(set->arena + set->slots[i].off, key) != 0))
		i = (i + 1) & (set->cap - 1);
	return &set->slots[i];
}

/* The line where 'key' first appeared, or 0. */
static unsigned long
imp_set_get(struct imp_set *set, const char *key)
{
	if (set->cap == 0)
		return 0;
	return imp_set_slot(set, key, imp_hash(key))->line;
}

static void
imp_set_grow(struct imp_set *set)
{
	struct imp_slot *old = set->slots, *sl;
	size_t oldcap = set->cap, i;

	set->cap = oldcap == 0 ? 1024 : oldcap * 2;
	set->slots = xcalloc(set->cap, sizeof(*set->slots));
	for (i = 0; i < oldcap; i++) {
		if (old[i].line == 0)
			continue;
		sl = imp_set_slot(set, set->arena + old[i].off, old[i].hash);
		*sl = old[i];
	}
	free(old);
}

/* Remembers 'key' at 'line' unless it is known. */
static void
imp_set_put(struct imp_set *set, const char *key, unsigned long line)
{
	size_t len = strlen(key) + 1;
	struct imp_slot *sl;
	uint32_t h = imp_hash(key);

	if ((set->n + 1) * 2 > set->cap)
		imp_set_grow(set);
	sl = imp_set_slot(set, key, h);
	if (sl->line != 0)
		return;
	while (set->alen + len > set->acap) {
		set->acap = set->acap == 0 ? 65536 : set->acap * 2;
		set->arena = xreallocarray(set->arena, set->acap, 1);
	}
	memcpy(set->arena + set->alen, key, len);
	sl->hash = h;
	sl->line = line;
	sl->off = set->alen;
	set->alen += len;
	set->n++;
}

static void
imp_set_free(struct imp_set *set)
{
	free(set->slots);
	free(set->arena);
	memset(set, 0, sizeof(*set));
}

static int64_t
imp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Sessions ------------------------------------------------------------ */

void
imp_session_free(struct imp_session *s)
{
	size_t i;

	csv_free(s->csv);
	for (i = 0; i < s->ncols; i++)
		free(s->names[i]);
	free(s->names);
	free(s->cols);
	json_decref(s->columns);
	json_decref(s->issues);
	imp_set_free(&s->seen);
	free(s->error);
	free(s->list);
	free(s->source);
	free(s);
}

void
imports_free(struct imports *im)
{
	struct imp_session *s, *next;

	if (im == NULL)
		return;
	for (s = im->sessions; s != NULL; s = next) {
		next = s->next;
		imp_session_free(s);
	}
	if (!imports_pg_free(im))
		free(im);
}

/* Forgets sessions idle for IMPORT_IDLE_MS (none waits for a commit). */
static void
imp_expire(struct imports *im, int64_t now)
{
	struct imp_session **pp = &im->sessions, *s;

	while ((s = *pp) != NULL) {
		if (s->busy || now - s->used_at < IMPORT_IDLE_MS) {
			pp = &s->next;
			continue;
		}
		if (s->state == IMP_OPEN)
			log_info("import_expired id=%s rows=%lld", s->id,
			    (long long)s->n.rows);
		*pp = s->next;
		imp_session_free(s);
	}
}

static struct imp_session *
imp_find(struct imports *im, const char *id)
{
	struct imp_session *s;

	for (s = im->sessions; s != NULL; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

/* The session named by the route, or NULL after answering 404. */
static struct imp_session *
imp_lookup(struct imports *im, struct http_req *req)
{
	struct imp_session *s;

	imp_expire(im, msg_now_ms());
	if ((s = imp_find(im, req->params[0])) == NULL)
		imp_reply_not_found(req, req->params[0]);
	return s;
}

void
imp_reply_not_found(struct http_req *req, const char *id)
{
	http_reply_error(req, 404, "not_found",
	    "no import '%.40s': it finished or was idle more than %d "
	    "minutes ago, or the daemon restarted; rerun the import "
	    "(rows already imported stay as they are)",
	    id, IMPORT_IDLE_MS / 60000);
}

void
imp_fail(struct imp_session *s, const char *why)
{
	s->state = IMP_FAILED;
	imp_set_free(&s->seen);
	free(s->error);
	s->error = xstrdup(why);
	log_info("import_failed id=%s rows=%lld error=\"%s\"", s->id,
	    (long long)s->n.rows, why);
}

/* Adds a problem row to the report (the first IMPORT_ISSUES_MAX). */
void
imp_issue(struct imp_session *s, unsigned long line, const char *kind,
    const char *reason, unsigned long first_line)
{
	json_t *o;

	/* on PostgreSQL the store keeps the first ones (store_imports_pg.c) */
	if (s->issues_total++ >= IMPORT_ISSUES_MAX && s->pg_row == NULL)
		return;
	o = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line, "kind", kind,
	    "reason", reason);
	if (o == NULL)
		fatalx("imp_issue: json_pack failed");
	if (first_line != 0)
		json_object_set_new(o, "first_line",
		    json_integer((json_int_t)first_line));
	json_array_append_new(s->issues, o);
}

static json_t *
imp_counts_json(const struct imp_counts *n)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "rows", n->rows, "created", n->created, "updated", n->updated,
	    "unchanged", n->unchanged, "opted_out", n->opted_out,
	    "duplicates_in_file", n->duplicates, "conflicts", n->conflicts,
	    "rejected", n->rejected, "warnings", n->warnings, "blank",
	    n->blank);
}

/* The session's state and counts; 'full' adds the problem rows. */
json_t *
imp_report(const struct imp_session *s, bool full)
{
	json_t *o;

	o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:b, s:o, "
		      "s:I, s:I}",
	    "id", s->id, "state", imp_state_names[s->state], "list", s->list,
	    "list_id", (json_int_t)s->list_id, "source", s->source, "region",
	    s->region, "bytes", s->bytes, "line",
	    (json_int_t)(s->csv != NULL ? csv_line(s->csv) : s->line), "bom",
	    s->csv != NULL ? csv_had_bom(s->csv) : s->bom, "counts",
	    imp_counts_json(&s->n), "issues_total", s->issues_total,
	    "elapsed_ms", (json_int_t)(s->used_at - s->created_at));
	if (o == NULL)
		fatalx("imp_report: json_pack failed");
	json_object_set_new(o, "work_ms", json_integer(s->work_us / 1000));
	json_object_set_new(o, "error",
	    s->error != NULL ? json_string(s->error) : json_null());
	json_object_set(o, "columns", s->columns);
	if (full) {
		json_object_set(o, "issues", s->issues);
		json_object_set_new(o, "issues_omitted",
		    json_integer(s->issues_total > IMPORT_ISSUES_MAX
			    ? s->issues_total - IMPORT_ISSUES_MAX
			    : 0));
	}
	return o;
}

/* ---- The header ------------------------------------------------------------
 */

/* Trims spaces and tabs in place; returns the new start. */
static char *
imp_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

static enum imp_col
imp_col_of(const char *name)
{
	char key[64];
	size_t i, n = strlen(name);

	if (n >= sizeof(key))
		return IMP_COL_CUSTOM;
	for (i = 0; i <= n; i++)
		key[i] = name[i] == ' ' || name[i] == '-'
		    ? '_'
		    : (char)tolower((unsigned char)name[i]);
	for (i = 0; i < sizeof(imp_aliases) / sizeof(imp_aliases[0]); i++)
		if (strcmp(key, imp_aliases[i].alias) == 0)
			return imp_aliases[i].col;
	return IMP_COL_CUSTOM;
}

/* Maps the header row; -1 with err when the import cannot go on. */
static int
imp_header(struct imp_session *s, const struct csv_record *rec, char *err,
    size_t errlen)
{
	size_t i, j;
	bool contact = false;
	char *name;

	if (rec->error != NULL) {
		snprintf(err, errlen, "line %lu: header: %s", rec->line,
		    rec->error);
		return -1;
	}
	s->ncols = rec->nfields;
	s->cols = xcalloc(s->ncols, sizeof(*s->cols));
	s->names = xcalloc(s->ncols, sizeof(*s->names));
	for (i = 0; i < s->ncols; i++) {
		name = imp_trim(rec->fields[i]);
		s->names[i] = xstrdup(name);
		s->cols[i] = *name == '\0' ? IMP_COL_IGNORE : imp_col_of(name);
		for (j = 0; j < i && s->cols[i] != IMP_COL_IGNORE; j++) {
			if (s->cols[j] == IMP_COL_IGNORE ||
			    (s->cols[i] == IMP_COL_CUSTOM
				    ? strcasecmp(s->names[i], s->names[j]) != 0
				    : s->cols[i] != s->cols[j]))
				continue;
			snprintf(err, errlen,
			    "line %lu: header: columns %zu ('%.40s') and %zu "
			    "('%.40s') both mean %s; rename or remove one",
			    rec->line, j + 1, s->names[j], i + 1, s->names[i],
			    s->cols[i] == IMP_COL_CUSTOM
				? "the same custom field"
				: imp_col_names[s->cols[i]]);
			return -1;
		}
		if (s->cols[i] == IMP_COL_PHONE || s->cols[i] == IMP_COL_EMAIL)
			contact = true;
		json_array_append_new(s->columns,
		    json_pack("{s:s, s:s}", "name", s->names[i], "field",
			imp_col_names[s->cols[i]]));
	}
	if (!contact) {
		snprintf(err, errlen,
		    "line %lu: header: no phone or email column (the first "
		    "line must name the columns, e.g. "
		    "phone,email,first_name,last_name,zip,tags)",
		    rec->line);
		return -1;
	}
	s->header_done = true;
	return 0;
}

/* ---- Rows ---------------------------------------------------------------- */

/* "'<value>'", cut at IMP_ECHO_MAX bytes (on a UTF-8 boundary). */
static void
imp_echo(const char *v, char *out, size_t outlen)
{
	size_t n = strlen(v);

	if (n > IMP_ECHO_MAX) {
		n = IMP_ECHO_MAX;
		while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
		snprintf(out, outlen, "'%.*s...'", (int)n, v);
	} else
		snprintf(out, outlen, "'%s'", v);
}

/* Checks and lower-cases an email address (email_addr.h, the rule the
 * API and SMS answers use too). 0, or -1 with why. */
static int
imp_email(const char *in, char *out, size_t outlen, char *why, size_t whylen)
{
	char echo[IMP_ECHO_MAX + 8], reason[160];

	if (email_addr_normalize(in, out, outlen, reason, sizeof(reason)) == 0)
		return 0;
	imp_echo(in, echo, sizeof(echo));
	snprintf(why, whylen, "email %s is not an address: %s", echo, reason);
	return -1;
}

/* A name, zip or tag: length and no control characters. */
static int
imp_check_text(const char *what, const char *v, size_t max, char *why,
    size_t whylen)
{
	const unsigned char *p;

	if (strlen(v) > max) {
		snprintf(why, whylen, "%s: longer than %zu bytes", what, max);
		return -1;
	}
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < ' ' || *p == 0x7f) {
			snprintf(why, whylen,
			    "%s: holds a line break or a control character",
			    what);
			return -1;
		}
	return 0;
}

/* Splits a tags cell on ';', '|' and ','; adds each new tag to 'tags'. */
static int
imp_tags(char *cell, json_t *tags, char *why, size_t whylen)
{
	char *tok, *t, *save = NULL;
	size_t i;

	for (tok = strtok_r(cell, ";|,", &save); tok != NULL;
	     tok = strtok_r(NULL, ";|,", &save)) {
		t = imp_trim(tok);
		if (*t == '\0')
			continue;
		if (imp_check_text("tags", t, IMPORT_VALUE_MAX, why, whylen) ==
		    -1)
			return -1;
		for (i = 0; i < json_array_size(tags); i++)
			if (strcmp(json_string_value(json_array_get(tags, i)),
				t) == 0)
				break;
		if (i == json_array_size(tags))
			json_array_append_new(tags, json_string(t));
	}
	return 0;
}

/*
 * Sorts the cells of rec into r. Returns 1 for a blank row, 0, or -1 with
 * why the row is rejected.
 */
static int
imp_row_cells(struct imp_session *s, const struct csv_record *rec,
    struct imp_row *r, char *why, size_t whylen)
{
	size_t i, nonempty = 0;
	char *v;
	int rc = 0;

	for (i = 0; i < rec->nfields; i++) {
		v = imp_trim(rec->fields[i]);
		if (*v == '\0')
			continue;
		nonempty++;
		if (i >= s->ncols) {
			snprintf(why, whylen,
			    "%zu fields but the header names %zu; is a comma "
			    "in a value not quoted?",
			    rec->nfields, s->ncols);
			return -1;
		}
		switch (s->cols[i]) {
		case IMP_COL_IGNORE:
			break;
		case IMP_COL_PHONE:
			r->phone = v;
			break;
		case IMP_COL_EMAIL:
			r->email = v;
			break;
		case IMP_COL_FIRST:
			r->f.first_name = v;
			rc = imp_check_text("first_name", v, IMPORT_VALUE_MAX,
			    why, whylen);
			break;
		case IMP_COL_LAST:
			r->f.last_name = v;
			rc = imp_check_text("last_name", v, IMPORT_VALUE_MAX,
			    why, whylen);
			break;
		case IMP_COL_ZIP:
			r->f.zip = v;
			rc = imp_check_text("zip", v, IMPORT_VALUE_MAX, why,
			    whylen);
			break;
		case IMP_COL_TAGS:
			rc = imp_tags(v, r->tags, why, whylen);
			break;
		case IMP_COL_CUSTOM:
			if (strlen(v) > IMPORT_CUSTOM_MAX) {
				snprintf(why, whylen,
				    "%.40s: longer than %d bytes", s->names[i],
				    IMPORT_CUSTOM_MAX);
				return -1;
			}
			json_object_set_new(r->attrs, s->names[i],
			    json_string(v));
			break;
		}
		if (rc == -1)
			return -1;
	}
	return nonempty == 0 ? 1 : 0;
}

/*
 * Normalizes the phone and the email. 0: at least one is good (a warning
 * in 'warn' when the other is bad), -1: the row is rejected (why).
 */
static int
imp_row_contact(struct imp_session *s, struct imp_row *r, char *why,
    size_t whylen, char *warn, size_t warnlen)
{
	const struct config *cfg = s->im->deps.cfg;
	char perr[256] = "", eerr[256] = "";
	bool pok = false, eok = false;

	if (r->phone != NULL) {
		if (phone_normalize_as(r->phone,
			&(struct phone_rules){.region = s->region,
			    .accept = cfg != NULL && cfg->accept_unassigned
				? PHONE_POSSIBLE
				: PHONE_VALID},
			r->e164, sizeof(r->e164), perr, sizeof(perr)) == 0)
			pok = true;
	}
	if (r->email != NULL &&
	    imp_email(r->email, r->email_lc, sizeof(r->email_lc), eerr,
		sizeof(eerr)) == 0)
		eok = true;
	if (r->phone == NULL && r->email == NULL) {
		snprintf(why, whylen, "no phone and no email");
		return -1;
	}
	if (!pok && !eok) {
		if (r->phone != NULL && r->email != NULL)
			snprintf(why, whylen, "phone %s; %s", perr, eerr);
		else if (r->phone != NULL)
			snprintf(why, whylen, "phone %s; no email", perr);
		else
			snprintf(why, whylen, "%s; no phone", eerr);
		return -1;
	}
	if (r->phone != NULL && !pok)
		snprintf(warn, warnlen, "phone %s; imported by email only",
		    perr);
	else if (r->email != NULL && !eok)
		snprintf(warn, warnlen, "%s; imported by phone only", eerr);
	r->f.set = MF_FIRST_NAME | MF_LAST_NAME | MF_ZIP;
	if (pok) {
		r->f.set |= MF_PHONE;
		r->f.phone = r->e164;
	}
	if (eok) {
		r->f.set |= MF_EMAIL;
		r->f.email = r->email_lc;
	}
	return 0;
}

/* A duplicate of an earlier row of the file? Records its keys if not. */
static bool
imp_row_duplicate(struct imp_session *s, const struct imp_row *r,
    unsigned long line, char *why, size_t whylen, unsigned long *first)
{
	char key[MSG_ADDR_MAX + 2];

	if (r->f.phone != NULL) {
		snprintf(key, sizeof(key), "p%s", r->f.phone);
		if ((*first = imp_set_get(&s->seen, key)) != 0) {
			snprintf(why, whylen, "phone %s already on line %lu",
			    r->f.phone, *first);
			return true;
		}
	}
	if (r->f.email != NULL) {
		snprintf(key, sizeof(key), "e%s", r->f.email);
		if ((*first = imp_set_get(&s->seen, key)) != 0) {
			snprintf(why, whylen, "email %s already on line %lu",
			    r->f.email, *first);
			return true;
		}
	}
	if (r->f.phone != NULL) {
		snprintf(key, sizeof(key), "p%s", r->f.phone);
		imp_set_put(&s->seen, key, line);
	}
	if (r->f.email != NULL) {
		snprintf(key, sizeof(key), "e%s", r->f.email);
		imp_set_put(&s->seen, key, line);
	}
	return false;
}

/* Writes one validated row. -1 only for a store failure. */
static int
imp_row_store(struct imp_session *s, struct imp_row *r, unsigned long line,
    char *err, size_t errlen)
{
	struct store *st = s->im->deps.st;
	struct import_into in = {.list = s->list_id,
	    .detail = s->source,
	    .now = msg_now_ms()};
	struct import_result res;
	char serr[IMP_REASON_MAX];

	if (json_object_size(r->attrs) > 0) {
		r->f.set |= MF_ATTRS_MERGE;
		r->f.attrs = r->attrs;
	}
	if (json_array_size(r->tags) > 0) {
		r->f.set |= MF_TAGS_ADD;
		r->f.tags = r->tags;
	}
	serr[0] = '\0';
	if (store_import_row(st, &r->f, &in, &res, serr, sizeof(serr)) == -1) {
		s->store_failed = true;
		snprintf(err, errlen, "line %lu: store: %s", line, serr);
		return -1;
	}
	switch (res.outcome) {
	case IMPORT_CREATED:
		s->n.created++;
		break;
	case IMPORT_UPDATED:
		s->n.updated++;
		break;
	case IMPORT_UNCHANGED:
		s->n.unchanged++;
		break;
	case IMPORT_OPTED_OUT:
		s->n.opted_out++;
		break;
	case IMPORT_CONFLICT:
		s->n.conflicts++;
		imp_issue(s, line, "conflict", serr, 0);
		break;
	}
	return 0;
}

static int
imp_row(struct imp_session *s, const struct csv_record *rec, char *err,
    size_t errlen)
{
	struct imp_row r;
	char why[IMP_REASON_MAX], warn[IMP_REASON_MAX] = "";
	unsigned long first = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	r.attrs = json_object();
	r.tags = json_array();
	if (rec->error != NULL) {
		snprintf(why, sizeof(why), "%s", rec->error);
		rc = -1;
	} else if ((rc = imp_row_cells(s, rec, &r, why, sizeof(why))) == 1) {
		s->n.blank++;
		rc = 0;
		goto done;
	}
	s->n.rows++;
	if (rc == 0)
		rc = imp_row_contact(s, &r, why, sizeof(why), warn,
		    sizeof(warn));
	if (rc == -1) {
		s->n.rejected++;
		imp_issue(s, rec->line, "rejected", why, 0);
		rc = 0;
		goto done;
	}
	if (s->pg_row != NULL) {
		rc = s->pg_row(s, &r, rec->line, warn);
		goto done;
	}
	if (imp_row_duplicate(s, &r, rec->line, why, sizeof(why), &first)) {
		s->n.duplicates++;
		imp_issue(s, rec->line, "duplicate", why, first);
		goto done;
	}
	if (warn[0] != '\0') {
		s->n.warnings++;
		imp_issue(s, rec->line, "warning", warn, 0);
	}
	rc = imp_row_store(s, &r, rec->line, err, errlen);
done:
	json_decref(r.attrs);
	json_decref(r.tags);
	return rc;
}

int
imp_on_record(void *arg, const struct csv_record *rec, char *err, size_t errlen)
{
	struct imp_session *s = arg;

	if (!s->header_done)
		return imp_header(s, rec, err, errlen);
	return imp_row(s, rec, err, errlen);
}

/* ---- Handlers ------------------------------------------------------------ */

int
imp_check_new(struct imports *im, struct http_req *req, const char *list,
    const char *source, const char **region)
{
	const struct config *cfg = im->deps.cfg;
	char err[256];

	if (list == NULL || *list == '\0') {
		http_reply_error(req, 422, "invalid_request",
		    "list: required (the name of the list to import into)");
		return -1;
	}
	if (source == NULL || *source == '\0' ||
	    strlen(source) > IMPORT_SOURCE_MAX ||
	    imp_check_text("source", source, IMPORT_SOURCE_MAX, err,
		sizeof(err)) == -1) {
		http_reply_error(req, 422, "invalid_request",
		    "source: required, 1 to %d characters on one line: where "
		    "the consent of these members comes from (e.g. \"2024 "
		    "rally sign-up sheets\")",
		    IMPORT_SOURCE_MAX);
		return -1;
	}
	if (*region == NULL)
		*region = cfg != NULL && cfg->default_region != NULL
		    ? cfg->default_region
		    : "US";
	if (strlen(*region) != 2 || !phone_region_known(*region)) {
		http_reply_error(req, 422, "invalid_request",
		    "region: '%.16s' is not a country code libphonenumber "
		    "knows (ISO 3166-1, e.g. US, GB)",
		    *region);
		return -1;
	}
	return 0;
}

void
imp_reply_too_many(struct http_req *req)
{
	http_reply_error(req, 429, "too_many_imports",
	    "%d imports are open; finish or abort one (DELETE "
	    "/api/v1/imports/ID) or wait %d minutes for idle ones to "
	    "expire",
	    IMPORT_MAX_OPEN, IMPORT_IDLE_MS / 60000);
}

void
imp_new_id(char *id)
{
	unsigned char raw[IMP_ID_BYTES];
	size_t i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("imp_new_id: RAND_bytes failed");
	for (i = 0; i < sizeof(raw); i++)
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
}

struct imp_session *
imp_session_alloc(struct imports *im, int64_t list_id, const char *list,
    const char *source, const char *region)
{
	struct imp_session *s = xcalloc(1, sizeof(*s));
	size_t i;

	s->im = im;
	imp_new_id(s->id);
	s->list_id = list_id;
	s->list = xstrdup(list);
	s->source = xstrdup(source);
	for (i = 0; i < 2; i++)
		s->region[i] = (char)toupper((unsigned char)region[i]);
	s->csv = csv_new(0, 0, imp_on_record, s);
	s->columns = json_array();
	s->issues = json_array();
	s->created_at = s->used_at = msg_now_ms();
	return s;
}

/* Creates a session for 'list' (a name). NULL after answering. */
static struct imp_session *
imp_session_new(struct imports *im, struct http_req *req, const char *list,
    const char *source, const char *region)
{
	struct imp_session *s, *o;
	char err[256];
	int64_t list_id;
	size_t nopen = 0;
	bool found;

	if (imp_check_new(im, req, list, source, &region) == -1)
		return NULL;
	if (store_list_by_name(im->deps.st, list, &list_id, &found, err,
		sizeof(err)) == -1) {
		http_reply_error(req, 503, "unavailable", "store: %s", err);
		return NULL;
	}
	if (!found) {
		http_reply_error(req, 422, "invalid_request",
		    "list: no list named '%.64s' (outreachctl lists shows "
		    "them)",
		    list);
		return NULL;
	}
	for (o = im->sessions; o != NULL; o = o->next)
		nopen += o->state == IMP_OPEN;
	if (nopen >= IMPORT_MAX_OPEN) {
		imp_reply_too_many(req);
		return NULL;
	}
	s = imp_session_alloc(im, list_id, list, source, region);
	s->next = im->sessions;
	im->sessions = s;
	log_info("import_started id=%s list=\"%s\" list_id=%lld region=%s",
	    s->id, s->list, (long long)s->list_id, s->region);
	return s;
}

/* A piece's rows are durable (or not): answer. */
static void
imp_on_commit(void *arg, bool ok)
{
	struct imp_pending *p = arg;
	struct imp_session *s = p->s;

	s->busy = false;
	s->used_at = msg_now_ms();
	if (!ok) {
		imp_fail(s,
		    "the store could not commit a piece's rows; "
		    "nothing of that piece was kept; rerun the import "
		    "(it is idempotent)");
		http_reply_error(p->req, 503, "unavailable", "%s", s->error);
	} else {
		if (s->state == IMP_FINISHED)
			log_info("import_finished id=%s rows=%lld created=%lld "
				 "updated=%lld unchanged=%lld opted_out=%lld "
				 "duplicates=%lld conflicts=%lld "
				 "rejected=%lld",
			    s->id, (long long)s->n.rows,
			    (long long)s->n.created, (long long)s->n.updated,
			    (long long)s->n.unchanged,
			    (long long)s->n.opted_out,
			    (long long)s->n.duplicates,
			    (long long)s->n.conflicts,
			    (long long)s->n.rejected);
		http_reply_json(p->req, p->code, imp_report(s, p->full));
	}
	free(p);
}

/*
 * Feeds a piece (and the end of the file when 'last') and answers once
 * its rows are on disk: 'code' with the report. Errors are answered here.
 */
static void
imp_feed(struct imp_session *s, struct http_req *req, const char *buf,
    size_t len, bool last, int code)
{
	struct imp_pending *p;
	char err[IMP_REASON_MAX + 64];
	int64_t t0;
	int rc;

	err[0] = '\0';
	s->store_failed = false;
	t0 = imp_now_us();
	rc = csv_feed(s->csv, buf, len, err, sizeof(err));
	s->bytes += (json_int_t)len;
	if (rc == 0 && last)
		rc = csv_finish(s->csv, err, sizeof(err));
	if (rc == 0 && last && !s->header_done) {
		snprintf(err, sizeof(err),
		    "the file is empty: the first line must name the columns");
		rc = -1;
	}
	s->used_at = msg_now_ms();
	s->work_us += imp_now_us() - t0;
	if (rc == -1) {
		imp_fail(s, err);
		if (s->store_failed) {
			log_warnx("import_store_failed id=%s error=\"%s\"",
			    s->id, err);
			http_reply_error(req, 503, "unavailable",
			    "%s; rerun the import (it is idempotent)", err);
		} else
			http_reply_error(req, 422, "invalid_csv", "%s", err);
		return;
	}
	if (last) {
		s->state = IMP_FINISHED;
		imp_set_free(&s->seen); /* only the report stays */
	}
	p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->req = req;
	p->code = code;
	p->full = last;
	s->busy = true;
	store_on_commit(s->im->deps.st, imp_on_commit, p);
}

/* Only CSV (or unlabeled) bodies are pieces of a file. */
bool
imp_is_csv(const char *ctype)
{
	return ctype == NULL || strncasecmp(ctype, "text/csv", 8) == 0 ||
	    strncasecmp(ctype, "application/csv", 15) == 0 ||
	    strncasecmp(ctype, "text/plain", 10) == 0 ||
	    strncasecmp(ctype, "application/octet-stream", 24) == 0;
}

/* Refuses writes while the daemon stops. True after answering. */
bool
imp_stopping(struct imports *im, struct http_req *req)
{
	if (!api_is_stopping(im->deps.api))
		return false;
	http_reply_error(req, 503, "unavailable",
	    "shutting down; rerun the import once the daemon is back (it "
	    "is idempotent)");
	return true;
}

/* POST /api/v1/imports?list=&source=&region= with a CSV body. */
static void
imp_post_oneshot(struct imports *im, struct http_req *req)
{
	struct evkeyvalq q;
	struct imp_session *s;

	TAILQ_INIT(&q);
	if (req->query == NULL || evhttp_parse_query_str(req->query, &q) != 0) {
		http_reply_error(req, 422, "invalid_request",
		    "a CSV body needs ?list=NAME&source=TEXT in the URL (or "
		    "POST JSON {\"list\", \"source\"} to open an import)");
		return;
	}
	s = imp_session_new(im, req, evhttp_find_header(&q, "list"),
	    evhttp_find_header(&q, "source"), evhttp_find_header(&q, "region"));
	evhttp_clear_headers(&q);
	if (s != NULL)
		imp_feed(s, req, req->body, req->body_len, true, 200);
}

static void
imp_post(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	struct imp_session *s;
	const char *ctype = http_header(req, "Content-Type");
	const char *list, *source, *region;
	char loc[96];
	json_t *o;

	if (!api_authorized(im->deps.api, req) || imp_stopping(im, req))
		return;
	imp_expire(im, msg_now_ms());
	if (ctype != NULL && imp_is_csv(ctype)) {
		imp_post_oneshot(im, req);
		return;
	}
	if ((o = api_read_object(req)) == NULL)
		return;
	list = json_string_value(json_object_get(o, "list"));
	source = json_string_value(json_object_get(o, "source"));
	region = json_string_value(json_object_get(o, "region"));
	if (json_object_get(o, "region") != NULL && region == NULL) {
		json_decref(o);
		http_reply_error(req, 422, "invalid_request",
		    "region: must be a string such as \"US\"");
		return;
	}
	s = imp_session_new(im, req, list, source, region);
	json_decref(o);
	if (s == NULL)
		return;
	snprintf(loc, sizeof(loc), "/api/v1/imports/%s", s->id);
	http_add_header(req, "Location", loc);
	http_reply_json(req, 201, imp_report(s, false));
}

static void
imp_list(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	struct imp_session *s;
	json_t *a;

	if (!api_authorized(im->deps.api, req))
		return;
	imp_expire(im, msg_now_ms());
	a = json_array();
	for (s = im->sessions; s != NULL; s = s->next)
		json_array_append_new(a, imp_report(s, false));
	http_reply_json(req, 200, json_pack("{s:o}", "imports", a));
}

/* GET: the report; DELETE: abort. */
static void
imp_get(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	struct imp_session *s;

	if (!api_authorized(im->deps.api, req) ||
	    (s = imp_lookup(im, req)) == NULL)
		return;
	if (req->method == HTTP_DELETE) {
		if (s->busy) {
			http_reply_error(req, 409, "busy",
			    "a piece of this import is being written; retry");
			return;
		}
		if (s->state == IMP_OPEN) {
			s->state = IMP_ABORTED;
			imp_set_free(&s->seen);
			s->used_at = msg_now_ms();
			log_info("import_aborted id=%s rows=%lld", s->id,
			    (long long)s->n.rows);
		}
	}
	http_reply_json(req, 200, imp_report(s, true));
}

/* A session that can take a piece, or NULL after answering. */
static struct imp_session *
imp_writable(struct imports *im, struct http_req *req)
{
	struct imp_session *s;

	if (!api_authorized(im->deps.api, req) || imp_stopping(im, req) ||
	    (s = imp_lookup(im, req)) == NULL)
		return NULL;
	if (s->busy) {
		imp_reply_busy(req);
		return NULL;
	}
	if (s->state != IMP_OPEN) {
		imp_reply_not_open(req, s);
		return NULL;
	}
	return s;
}

void
imp_reply_busy(struct http_req *req)
{
	http_reply_error(req, 409, "busy",
	    "the previous piece of this import is still being "
	    "written; send pieces one at a time");
}

void
imp_reply_not_open(struct http_req *req, const struct imp_session *s)
{
	http_reply_error(req, 409, "not_open", "import %s is %s%s%s", s->id,
	    imp_state_names[s->state], s->error != NULL ? ": " : "",
	    s->error != NULL ? s->error : "");
}

/* ?offset=N must be the bytes received so far. True after answering. */
bool
imp_reply_bad_offset(struct http_req *req, int64_t bytes)
{
	struct evkeyvalq q;
	const char *v;
	char *end;
	long long off;
	bool bad = false;

	TAILQ_INIT(&q);
	if (req->query == NULL || evhttp_parse_query_str(req->query, &q) != 0)
		return false;
	if ((v = evhttp_find_header(&q, "offset")) != NULL) {
		off = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || off != bytes) {
			bad = true;
			http_reply_error(req, 409, "bad_offset",
			    "offset: this import has received %lld bytes, "
			    "not %.24s; send the piece that starts at %lld",
			    (long long)bytes, v, (long long)bytes);
		}
	}
	evhttp_clear_headers(&q);
	return bad;
}

static void
imp_data(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	struct imp_session *s;
	const char *ctype = http_header(req, "Content-Type");

	if ((s = imp_writable(im, req)) == NULL)
		return;
	if (!imp_is_csv(ctype)) {
		http_reply_error(req, 415, "unsupported_media_type",
		    "Content-Type must be text/csv, not %.64s", ctype);
		return;
	}
	if (imp_reply_bad_offset(req, s->bytes))
		return;
	imp_feed(s, req, req->body, req->body_len, false, 200);
}

static void
imp_finish(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	struct imp_session *s;

	if ((s = imp_writable(im, req)) == NULL)
		return;
	imp_feed(s, req, NULL, 0, true, 200);
}
