/*
 * members_export.c - the CSV exports of a list and of the consent log
 * (RFC 4180).
 *
 * Exports are streamed: a page of rows is read from the store, turned
 * into CSV and sent as one chunk; the next page is read only once that
 * chunk left for the socket, on a later loop turn, so a big export holds
 * one page in memory and never starves other requests.
 */

#include "autoconf.h"

#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "api.h"
#include "compat.h"
#include "http.h"
#include "log.h"
#include "members-internal.h"
#include "members.h"
#include "store.h"
#include "store_members.h"
#include "store_lists_pg.h"
#include "store_members_pg.h"
#include "xmalloc.h"

#define MB_EXPORT_PAGE 500 /* rows per chunk of an export */

static void mb_export_next(struct http_req *, void *);

void
mb_export_free(struct mb_export *x)
{
	size_t i;

	if (!x->orphan)
		TAILQ_REMOVE(&x->m->exports, x, entry);
	for (i = 0; i < x->nheader; i++)
		free(x->header[i]);
	free(x->header);
	evbuffer_free(x->buf);
	free(x);
}

/* ---- CSV exports -------------------------------------------------- */

/* A plain number ("+14155550100", "-3.5") is not a formula. */
static bool
mb_csv_number(const char *s)
{
	bool dot = false;

	if (*s == '+' || *s == '-')
		s++;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.' && !dot)
			dot = true;
		else if (!isdigit((unsigned char)*s))
			return false;
	}
	return true;
}

/*
 * Appends one CSV field (RFC 4180): quoted when it holds a comma, a quote,
 * CR or LF (quotes doubled). A cell a spreadsheet would run as a formula
 * (starting with = + - @, a tab or CR, and not a plain number) gets a
 * leading ' so it stays text (OWASP CSV injection).
 */
static void
mb_csv_field(struct evbuffer *b, const char *s)
{
	bool formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL &&
	    !mb_csv_number(s);
	const char *p;

	if (strpbrk(s, ",\"\r\n") == NULL) {
		if (formula)
			evbuffer_add(b, "'", 1);
		evbuffer_add(b, s, strlen(s));
		return;
	}
	evbuffer_add(b, "\"", 1);
	if (formula)
		evbuffer_add(b, "'", 1);
	for (p = s; *p != '\0'; p++) {
		if (*p == '"')
			evbuffer_add(b, "\"\"", 2);
		else
			evbuffer_add(b, p, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static bool
mb_export_is_header(const struct mb_export *x, const struct export_row *row)
{
	size_t i;

	if (x->header == NULL || row->ncols != x->nheader)
		return false;
	for (i = 0; i < row->ncols; i++)
		if (row->cols[i] == NULL || strcmp(row->cols[i], x->header[i]))
			return false;
	return true;
}

/* Store callback: one row into the page buffer (the header once). */
static int
mb_export_row(void *arg, const struct export_row *row)
{
	struct mb_export *x = arg;
	size_t i;

	if (!x->header_seen && mb_export_is_header(x, row)) {
		x->header_seen = true;
		return 0; /* the header again, on a later page */
	}
	if (x->header == NULL) {
		x->header = xcalloc(row->ncols, sizeof(char *));
		for (i = 0; i < row->ncols; i++)
			x->header[i] =
			    xstrdup(row->cols[i] != NULL ? row->cols[i] : "");
		x->nheader = row->ncols;
		x->header_seen = true;
	} else
		x->rows++;
	for (i = 0; i < row->ncols; i++) {
		if (i > 0)
			evbuffer_add(x->buf, ",", 1);
		if (row->cols[i] != NULL)
			mb_csv_field(x->buf, row->cols[i]);
	}
	evbuffer_add(x->buf, "\r\n", 2);
	return 0;
}

/* Reads the next page into x->buf; *more when rows remain. */
static int
mb_export_page(struct mb_export *x, bool *more, char *err, size_t errlen)
{
	struct store *st = x->m->deps.st;
	struct export_page pg = {.after = x->cursor, .limit = MB_EXPORT_PAGE};
	struct export_sink to = {.each = mb_export_row, .arg = x};
	int rc;

	x->header_seen = false;
	rc = x->kind == MB_EXPORT_LIST
	    ? store_export_list(st, x->id, &pg, &to, err, errlen)
	    : store_export_consent(st, x->id, &pg, &to, err, errlen);
	if (rc == -1)
		return -1;
	x->cursor = pg.next;
	*more = pg.next != 0;
	return 0;
}

/* A page read on PostgreSQL answered. */
static void
mb_export_answer(void *arg, int rc, const char *error)
{
	struct mb_export *x = arg;

	x->busy = false;
	if (x->orphan) {
		mb_export_free(x);
		return;
	}
	if (rc == 0)
		x->cursor = x->page.next;
	x->cont(x, rc, rc == 0 && x->page.next != 0, error);
}

/*
 * Reads the next page into x->buf, then cont(): at once on SQLite, once
 * the page's statement answered on PostgreSQL.
 */
static void
mb_export_fetch(struct mb_export *x, mb_export_cont_fn *cont)
{
	char err[512];
	bool more = false;
	int rc;

	if (store_backend(x->m->deps.st) == STORE_SQLITE) {
		rc = mb_export_page(x, &more, err, sizeof(err));
		cont(x, rc, more, err);
		return;
	}
	x->header_seen = false;
	x->page =
	    (struct export_page){.after = x->cursor, .limit = MB_EXPORT_PAGE};
	x->sink = (struct export_sink){.each = mb_export_row, .arg = x};
	x->cont = cont;
	if ((x->kind == MB_EXPORT_LIST ? store_export_list_pg
				       : store_export_consent_pg)(x->m->deps.st,
		&(struct export_req_pg){.member = x->id,
		    .pg = &x->page,
		    .to = &x->sink},
		mb_export_answer, x, err, sizeof(err)) == -1) {
		cont(x, -1, false, err);
		return;
	}
	x->busy = true;
}

/* Sends the page in x->buf, and continues once it left. */
static void
mb_export_send(struct mb_export *x, bool more)
{
	size_t len = evbuffer_get_length(x->buf);
	unsigned char *data = evbuffer_pullup(x->buf, (ev_ssize_t)len);

	if (more) {
		http_reply_chunk_then(x->req, data, len, mb_export_next, x);
		evbuffer_drain(x->buf, len);
		return;
	}
	http_reply_chunk(x->req, data, len);
	evbuffer_drain(x->buf, len);
	log_info("export_done kind=%s id=%lld rows=%llu",
	    x->kind == MB_EXPORT_LIST ? "list" : "consent", (long long)x->id,
	    (unsigned long long)x->rows);
	http_reply_end(x->req);
	mb_export_free(x);
}

/* The next page read (mb_export_next()): sent, or the body cut. */
static void
mb_export_next_read(struct mb_export *x, int rc, bool more, const char *err)
{
	if (rc == -1) {
		/* Headers are gone: cut the body short so the client sees
		 * an incomplete transfer, never a silently short file. */
		log_warnx("members_store_failed op=export error=\"%s\" "
			  "rows=%llu",
		    err, (unsigned long long)x->rows);
		http_reply_abort(x->req);
		mb_export_free(x);
		return;
	}
	mb_export_send(x, more);
}

/* The previous page left for the client (or the client left). */
static void
mb_export_next(struct http_req *req, void *arg)
{
	struct mb_export *x = arg;

	if (http_reply_gone(req)) {
		log_info("export_aborted kind=%s id=%lld rows=%llu "
			 "reason=\"client went away\"",
		    x->kind == MB_EXPORT_LIST ? "list" : "consent",
		    (long long)x->id, (unsigned long long)x->rows);
		http_reply_end(req);
		mb_export_free(x);
		return;
	}
	mb_export_fetch(x, mb_export_next_read);
}

/* The first page read (mb_export_start()): a 503, or the reply starts. */
static void
mb_export_first_read(struct mb_export *x, int rc, bool more, const char *err)
{
	char disp[128];

	if (rc == -1) {
		mb_store_error(x->req, "export", err);
		mb_export_free(x);
		return;
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"",
	    x->filename);
	http_add_header(x->req, "Content-Disposition", disp);
	http_add_header(x->req, "Cache-Control", "no-store");
	http_reply_start(x->req, 200, "text/csv; charset=utf-8");
	mb_export_send(x, more);
}

/*
 * Starts an export: the first page is read before the status is sent, so
 * a store error is still a 503.
 */
static void
mb_export_start(struct members *m, struct http_req *req,
    enum mb_export_kind kind, int64_t id, const char *filename)
{
	struct mb_export *x = xcalloc(1, sizeof(*x));

	x->m = m;
	x->req = req;
	x->kind = kind;
	x->id = id;
	snprintf(x->filename, sizeof(x->filename), "%s", filename);
	if ((x->buf = evbuffer_new()) == NULL)
		fatalx("mb_export_start: evbuffer_new failed");
	TAILQ_INSERT_TAIL(&m->exports, x, entry);
	mb_export_fetch(x, mb_export_first_read);
}

void
mb_list_export_start(struct members *m, struct http_req *req, int64_t id,
    const char *name)
{
	char fn[LIST_NAME_MAX + 16], *p;

	snprintf(fn, sizeof(fn), "%s.csv", name);
	for (p = fn; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_", *p))
			*p = '_';
	mb_export_start(m, req, MB_EXPORT_LIST, id, fn);
}

void
mb_list_export(struct http_req *req, void *arg)
{
	struct members *m = arg;
	struct list_info li;
	int64_t id;

	memset(&li, 0, sizeof(li));
	if (!api_authorized(m->deps.api, req) ||
	    !mb_list_param(m, req, req->params[0], &id, &li))
		return;
	mb_list_export_start(m, req, id, li.name);
	list_info_clear(&li);
}

/* PostgreSQL: the ?member= of a consent export read; the export starts. */
static void
mb_consent_member_read(void *arg, json_t *o, const char *error)
{
	struct mb_export *x = arg;

	if (o == NULL) {
		if (error != NULL)
			mb_store_error(x->req, "member_get", error);
		else
			http_reply_error(x->req, 404, "not_found",
			    "no member %lld", (long long)x->id);
		free(x);
		return;
	}
	json_decref(o);
	mb_export_start(x->m, x->req, MB_EXPORT_CONSENT, x->id, "consent.csv");
	free(x);
}

/* PostgreSQL: the consent export of member 'ref' once it is found. */
static void
mb_consent_export_pg(struct members *m, struct http_req *req, const char *ref)
{
	struct mb_export *x;
	char err[256];
	int64_t id;

	if (!mb_parse_id(ref, &id)) {
		http_reply_error(req, 404, "not_found",
		    "no member '%s' (members are addressed by id; find one "
		    "with GET /api/v1/members?phone=...)",
		    ref);
		return;
	}
	x = xcalloc(1, sizeof(*x)); /* only m, req and id: the read's */
	x->m = m;
	x->req = req;
	x->id = id;
	if (store_member_json_pg(m->deps.st, id, mb_consent_member_read, x, err,
		sizeof(err)) == -1) {
		free(x);
		mb_store_error(req, "member_get", err);
	}
}

void
mb_consent_export(struct http_req *req, void *arg)
{
	static const char *const known[] = {"member", NULL};
	struct members *m = arg;
	struct evkeyvalq q;
	const char *s;
	int64_t id = 0;

	if (!api_authorized(m->deps.api, req) ||
	    !api_read_query(req, &q, known))
		return;
	s = evhttp_find_header(&q, "member");
	if (s != NULL && store_backend(m->deps.st) == STORE_POSTGRESQL)
		mb_consent_export_pg(m, req, s);
	else if (s == NULL || mb_member_param(m, req, s, &id, NULL))
		mb_export_start(m, req, MB_EXPORT_CONSENT, id, "consent.csv");
	evhttp_clear_headers(&q);
}
