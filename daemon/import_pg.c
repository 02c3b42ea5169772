/*
 * import_pg.c - /api/v1/imports on a PostgreSQL store (import.h), served
 * by every node with SQLite's answers (import.c's protocol, checks, texts
 * and report).
 *
 * DESIGN
 *
 * Where the file lives. On SQLite an import is a session in the daemon's
 * memory: each piece is parsed as it arrives, its rows written in the
 * piece's group and the reply sent after the COMMIT; no byte of the file
 * is kept, only the parser's state between pieces (a partial record, the
 * line counter), the header's mapping, the phones and emails already seen
 * and the report. On PostgreSQL that state is the database's, not a
 * node's, so that a load balancer may send each piece to any node and a
 * node may die between two pieces: the import is a row of 'imports' (the
 * report's figures, the mapping as JSON, the reader's state as text,
 * csv_save()), the keys seen are rows of 'import_keys', what each row did
 * rows of 'import_lines' and the problem rows of 'import_issues'
 * (queue/schema/pg/013_imports.sql). Pinning an import to the node that
 * started it was the other choice; it would turn every node's death into
 * a rerun and needs the balancer to know about imports.
 *
 * A piece (POST .../data, .../finish, or the one-shot POST), on any node:
 *  1. the import's row is read (outside the group): 404, 409 and the
 *     offset check answer from it as import.c does from its session;
 *  2. a session is rebuilt from the row (csv_restore(), the mapping, the
 *     counts) and the piece fed to it with import.c's own code
 *     (imp_on_record()): the header, the cells, the phone and email
 *     checks; a rejected row is counted and reported here, a valid one
 *     handed to the store (s->pg_row) with its warning;
 *  3. the rows and the import's new state go out in one transaction of
 *     their own, not in the node's group (store_import_piece_pg(); the
 *     statements, and why, are queue/store_imports_pg.c's DESIGN): a
 *     claim on the import's row guarded by the bytes read in 1, the rows
 *     (duplicates, the member, its subscriptions, consent events), the
 *     counts. A piece another node wrote first (the row moved on) writes
 *     nothing and is answered 409 busy, as SQLite answers a piece sent
 *     while the previous one is in flight;
 *  4. after the COMMIT the row is read again and its report is the reply.
 *
 * A node killed while it writes a piece loses that piece's transaction:
 * the client, which got no answer, sends the piece again to another node
 * with ?offset= (the bytes GET reports), and each row lands once. What a
 * reply counts is committed, as on SQLite.
 *
 * The node keeps in memory only which imports have a piece of its own in
 * flight (409 busy at once, as SQLite). Idle imports expire as on SQLite
 * (IMPORT_IDLE_MS since the last piece): reads skip them and a new import
 * deletes them. IMPORT_MAX_OPEN counts the open imports of all nodes.
 * Unlike SQLite, an open import survives a restart of its node.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "csv.h"
#include "http.h"
#include "import-internal.h"
#include "import.h"
#include "log.h"
#include "message.h"
#include "store.h"
#include "store_imports_pg.h"
#include "xmalloc.h"

/* The imports with a piece of this node in flight. */
struct ipg_busy {
	char id[2 * IMP_ID_BYTES + 1];
	struct ipg_busy *next;
};

struct imports_pg {
	struct ipg_busy *busy;
	size_t ops;   /* requests in flight */
	bool closing; /* imports_free() ran: the last op frees */
};

enum ipg_kind {
	IPG_CREATE = 0, /* POST JSON: open an import */
	IPG_ONESHOT,	/* POST text/csv: the whole file */
	IPG_DATA,
	IPG_FINISH,
	IPG_GET,
	IPG_DELETE,
	IPG_LIST,
};

/* One request in flight. */
struct ipg_op {
	struct imports *im;
	struct http_req *req;
	enum ipg_kind kind;
	char id[2 * IMP_ID_BYTES + 1];
	struct imp_session *s; /* a create's, for its reply */
	char *list;
	char *source;
	char region[3];
	/* a piece's rows, collected by ipg_row() */
	struct imp_pg_line *lines;
	size_t nlines;
	size_t cap;
	unsigned long last_line; /* of the piece's records */
	bool busy;		 /* in im->pg->busy */
	bool last;		 /* the piece ends the file */
	char *fail;		 /* the 422 invalid_csv to answer */
};

static void ipg_post(struct http_req *, void *);
static void ipg_list(struct http_req *, void *);
static void ipg_get(struct http_req *, void *);
static void ipg_data(struct http_req *, void *);
static void ipg_finish(struct http_req *, void *);

void
imports_pg_routes(struct imports *im, struct http_server *srv)
{
	im->pg = xcalloc(1, sizeof(*im->pg));
	imp_routes(im, srv,
	    &(struct imp_handlers){.post = ipg_post,
		.list = ipg_list,
		.get = ipg_get,
		.data = ipg_data,
		.finish = ipg_finish});
}

bool
imports_pg_free(struct imports *im)
{
	struct ipg_busy *b, *next;

	if (im->pg == NULL)
		return false;
	if (im->pg->ops > 0) {
		/* a read's answer may come while the store closes */
		im->pg->closing = true;
		return true;
	}
	for (b = im->pg->busy; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(im->pg);
	im->pg = NULL;
	return false;
}

/* ---- Requests ------------------------------------------------------------ */

static bool
ipg_is_busy(struct imports *im, const char *id)
{
	struct ipg_busy *b;

	for (b = im->pg->busy; b != NULL; b = b->next)
		if (strcmp(b->id, id) == 0)
			return true;
	return false;
}

static void
ipg_set_busy(struct ipg_op *op, bool on)
{
	struct ipg_busy **pp, *b;

	if (on == op->busy)
		return;
	op->busy = on;
	if (on) {
		b = xcalloc(1, sizeof(*b));
		snprintf(b->id, sizeof(b->id), "%s", op->id);
		b->next = op->im->pg->busy;
		op->im->pg->busy = b;
		return;
	}
	for (pp = &op->im->pg->busy; (b = *pp) != NULL; pp = &b->next)
		if (strcmp(b->id, op->id) == 0) {
			*pp = b->next;
			free(b);
			return;
		}
}

static struct ipg_op *
ipg_op_new(struct imports *im, struct http_req *req, enum ipg_kind kind)
{
	struct ipg_op *op = xcalloc(1, sizeof(*op));

	op->im = im;
	op->req = req;
	op->kind = kind;
	im->pg->ops++;
	if (req->nparams > 0)
		snprintf(op->id, sizeof(op->id), "%s", req->params[0]);
	return op;
}

static void
ipg_lines_free(struct ipg_op *op)
{
	size_t i;

	for (i = 0; i < op->nlines; i++) {
		free((char *)op->lines[i].phone);
		free((char *)op->lines[i].email);
		free((char *)op->lines[i].first_name);
		free((char *)op->lines[i].last_name);
		free((char *)op->lines[i].zip);
		free((char *)op->lines[i].attrs);
		free((char *)op->lines[i].tags);
		free((char *)op->lines[i].warning);
	}
	free(op->lines);
	op->lines = NULL;
	op->nlines = op->cap = 0;
}

static void
ipg_op_free(struct ipg_op *op)
{
	struct imports *im = op->im;

	ipg_set_busy(op, false);
	ipg_lines_free(op);
	if (op->s != NULL)
		imp_session_free(op->s);
	free(op->list);
	free(op->source);
	free(op->fail);
	free(op);
	if (--im->pg->ops == 0 && im->pg->closing) {
		im->pg->closing = false;
		if (!imports_pg_free(im))
			free(im);
	}
}

static int64_t
ipg_since(void)
{
	return msg_now_ms() - IMPORT_IDLE_MS;
}

static void
ipg_unavailable(struct http_req *req, const char *why)
{
	http_reply_error(req, 503, "unavailable", "store: %s", why);
}

/* ---- Sessions from rows ---------------------------------------------- */

static enum imp_state
ipg_state(const char *name)
{
	int i;

	for (i = IMP_OPEN; i <= IMP_ABORTED; i++)
		if (name != NULL && strcmp(name, imp_state_names[i]) == 0)
			return (enum imp_state)i;
	return IMP_FAILED;
}

static json_t *
ipg_json(const char *text, bool array)
{
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

	if (v != NULL && (array ? json_is_array(v) : json_is_object(v)))
		return v;
	json_decref(v);
	return array ? json_array() : json_object();
}

/* A session with r's report (issues borrowed, may be NULL). */
static struct imp_session *
ipg_session(struct imports *im, const struct imp_pg_row *r, json_t *issues)
{
	struct imp_session *s = xcalloc(1, sizeof(*s));

	s->im = im;
	snprintf(s->id, sizeof(s->id), "%s", r->id);
	s->state = ipg_state(r->state);
	s->error = r->error != NULL ? xstrdup(r->error) : NULL;
	s->list_id = r->list_id;
	s->list = xstrdup(r->list != NULL ? r->list : "");
	s->source = xstrdup(r->source != NULL ? r->source : "");
	snprintf(s->region, sizeof(s->region), "%s",
	    r->region != NULL ? r->region : "");
	s->bytes = r->bytes;
	s->line = (unsigned long)r->line;
	s->bom = r->bom;
	s->columns = ipg_json(r->columns, true);
	s->issues = issues != NULL ? json_incref(issues) : json_array();
	s->issues_total = r->n[IMP_PG_ISSUES_TOTAL];
	s->n.rows = r->n[IMP_PG_ROWS];
	s->n.blank = r->n[IMP_PG_BLANK];
	s->n.rejected = r->n[IMP_PG_REJECTED];
	s->n.duplicates = r->n[IMP_PG_DUPLICATES];
	s->n.warnings = r->n[IMP_PG_WARNINGS];
	s->n.created = r->n[IMP_PG_CREATED];
	s->n.updated = r->n[IMP_PG_UPDATED];
	s->n.unchanged = r->n[IMP_PG_UNCHANGED];
	s->n.opted_out = r->n[IMP_PG_OPTED_OUT];
	s->n.conflicts = r->n[IMP_PG_CONFLICTS];
	s->created_at = r->created_at;
	s->used_at = r->used_at;
	s->work_us = r->work_us;
	return s;
}

/* The header's mapping from its JSON ([[field, name], ...]). 0 / -1. */
static int
ipg_header_load(struct imp_session *s, const char *text)
{
	json_t *a = ipg_json(text, true), *e;
	size_t i;
	json_int_t col;

	s->ncols = json_array_size(a);
	s->cols = xcalloc(s->ncols + 1, sizeof(*s->cols));
	s->names = xcalloc(s->ncols + 1, sizeof(*s->names));
	json_array_foreach(a, i, e) {
		col = json_integer_value(json_array_get(e, 0));
		if (col < IMP_COL_IGNORE || col > IMP_COL_CUSTOM ||
		    !json_is_string(json_array_get(e, 1))) {
			json_decref(a);
			return -1;
		}
		s->cols[i] = (enum imp_col)col;
		s->names[i] = xstrdup(json_string_value(json_array_get(e, 1)));
	}
	json_decref(a);
	s->header_done = true;
	return 0;
}

static char *
ipg_header_save(const struct imp_session *s)
{
	json_t *a = json_array();
	char *t;
	size_t i;

	for (i = 0; i < s->ncols; i++)
		json_array_append_new(a,
		    json_pack("[i, s]", (int)s->cols[i], s->names[i]));
	t = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return t;
}

/* ---- A piece ------------------------------------------------------------- */

static char *
ipg_dup(const char *v)
{
	return v != NULL ? xstrdup(v) : NULL;
}

/* s->pg_row: a valid row of the piece, for the store. */
static int
ipg_row(struct imp_session *s, const struct imp_row *r, unsigned long line,
    const char *warn)
{
	struct ipg_op *op = s->pg_arg;
	struct imp_pg_line *l;

	if (op->nlines == op->cap) {
		op->cap = op->cap == 0 ? 64 : op->cap * 2;
		op->lines =
		    xreallocarray(op->lines, op->cap, sizeof(*op->lines));
	}
	l = &op->lines[op->nlines++];
	memset(l, 0, sizeof(*l));
	l->line = (int64_t)line;
	l->phone = ipg_dup((r->f.set & MF_PHONE) ? r->f.phone : NULL);
	l->email = ipg_dup((r->f.set & MF_EMAIL) ? r->f.email : NULL);
	l->first_name = ipg_dup(r->f.first_name);
	l->last_name = ipg_dup(r->f.last_name);
	l->zip = ipg_dup(r->f.zip);
	if (json_object_size(r->attrs) > 0)
		l->attrs = json_dumps(r->attrs, JSON_COMPACT);
	if (json_array_size(r->tags) > 0)
		l->tags = json_dumps(r->tags, JSON_COMPACT);
	l->warning = warn[0] != '\0' ? xstrdup(warn) : NULL;
	return 0;
}

/* The piece's rejected rows (the session's issues) as the store takes. */
static struct imp_pg_issue *
ipg_rejected(const struct imp_session *s, unsigned long *last)
{
	struct imp_pg_issue *is;
	json_t *o;
	size_t i, n = json_array_size(s->issues);

	is = xcalloc(n + 1, sizeof(*is));
	json_array_foreach(s->issues, i, o) {
		is[i].line = json_integer_value(json_object_get(o, "line"));
		is[i].reason = json_string_value(json_object_get(o, "reason"));
		if ((unsigned long)is[i].line > *last)
			*last = (unsigned long)is[i].line;
	}
	return is;
}

static void ipg_piece_done(void *, bool, bool, const char *);

/*
 * Feeds the piece to s (rebuilt from the import's row, or new) and sends
 * its rows with the import's new state. Answers errors; frees s.
 */
static void
ipg_piece(struct ipg_op *op, struct imp_session *s, const char *buf, size_t len,
    const struct imp_pg_row *from)
{
	struct imp_pg_row to;
	struct imp_pg_issue *rej;
	char err[IMP_REASON_MAX + 64], serr[256], claim[2 * IMP_ID_BYTES + 1];
	char *header = NULL, *columns, *reader = NULL;
	struct timespec t0, t1;
	int64_t now = msg_now_ms(), work;
	bool own = op->s != s; /* a create answers from its session */
	int rc;

	s->pg_row = ipg_row;
	s->pg_arg = op;
	json_decref(s->issues);
	s->issues = json_array(); /* this piece's rejected rows */
	err[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = csv_feed(s->csv, buf, len, err, sizeof(err));
	s->bytes += (json_int_t)len;
	if (rc == 0 && op->last)
		rc = csv_finish(s->csv, err, sizeof(err));
	if (rc == 0 && op->last && !s->header_done) {
		snprintf(err, sizeof(err),
		    "the file is empty: the first line must name the columns");
		rc = -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	work = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (rc == -1) {
		imp_fail(s, err);
		op->fail = xstrdup(err);
	} else if (op->last)
		s->state = IMP_FINISHED;
	op->last_line = from != NULL ? (unsigned long)from->counted : 0;
	rej = ipg_rejected(s, &op->last_line);
	if (op->nlines > 0 &&
	    (unsigned long)op->lines[op->nlines - 1].line > op->last_line)
		op->last_line = (unsigned long)op->lines[op->nlines - 1].line;
	if (s->header_done)
		header = ipg_header_save(s);
	columns = json_dumps(s->columns, JSON_COMPACT);
	if (s->state == IMP_OPEN)
		reader = csv_save(s->csv);
	memset(&to, 0, sizeof(to));
	to.id = s->id;
	to.state = imp_state_names[s->state];
	to.error = s->error;
	to.list_id = s->list_id;
	to.list = s->list;
	to.source = s->source;
	to.region = s->region;
	to.bytes = s->bytes;
	to.line = (int64_t)csv_line(s->csv);
	to.bom = csv_had_bom(s->csv);
	to.header = header;
	to.columns = columns;
	to.reader = reader;
	to.n[IMP_PG_ROWS] = s->n.rows;
	to.n[IMP_PG_BLANK] = s->n.blank;
	to.n[IMP_PG_REJECTED] = s->n.rejected;
	imp_new_id(claim);
	ipg_set_busy(op, true);
	if (store_import_piece_pg(op->im->deps.st,
		&(struct imp_pg_piece){.to = &to,
		    .create = from == NULL,
		    .from_bytes = from != NULL ? from->bytes : 0,
		    .expire_before = ipg_since(),
		    .claim = claim,
		    .now = now,
		    .work_us = work,
		    .counted = (int64_t)op->last_line,
		    .lines = op->lines,
		    .nlines = op->nlines,
		    .rejected = rej,
		    .nrejected = json_array_size(s->issues)},
		ipg_piece_done, op, serr, sizeof(serr)) == -1) {
		ipg_unavailable(op->req, serr);
		ipg_op_free(op);
	} else
		ipg_lines_free(op);
	free(rej);
	free(header);
	free(columns);
	free(reader);
	if (own)
		imp_session_free(s);
}

static void ipg_reply_read(void *, const struct imp_pg_row *, size_t, json_t *,
    const char *);

/* Reads the import again and answers its report (code 200). */
static void
ipg_read_reply(struct ipg_op *op, bool full)
{
	char err[256];

	if (store_import_read_pg(op->im->deps.st,
		&(struct imp_pg_read){.id = op->id,
		    .since = ipg_since(),
		    .issues = full,
		    .issues_max = IMPORT_ISSUES_MAX},
		ipg_reply_read, op, err, sizeof(err)) == -1) {
		ipg_unavailable(op->req, err);
		ipg_op_free(op);
	}
}

static void
ipg_log_finished(const struct imp_session *s)
{
	log_info("import_finished id=%s rows=%lld created=%lld "
		 "updated=%lld unchanged=%lld opted_out=%lld "
		 "duplicates=%lld conflicts=%lld rejected=%lld",
	    s->id, (long long)s->n.rows, (long long)s->n.created,
	    (long long)s->n.updated, (long long)s->n.unchanged,
	    (long long)s->n.opted_out, (long long)s->n.duplicates,
	    (long long)s->n.conflicts, (long long)s->n.rejected);
}

static void
ipg_reply_read(void *arg, const struct imp_pg_row *rows, size_t n,
    json_t *issues, const char *error)
{
	struct ipg_op *op = arg;
	struct imp_session *s;
	bool full = op->kind != IPG_DATA;

	if (error != NULL)
		ipg_unavailable(op->req, error);
	else if (n == 0)
		imp_reply_not_found(op->req, op->id);
	else {
		s = ipg_session(op->im, &rows[0], issues);
		if (op->last && s->state == IMP_FINISHED)
			ipg_log_finished(s);
		http_reply_json(op->req, 200, imp_report(s, full));
		imp_session_free(s);
	}
	ipg_op_free(op);
}

/* The piece's transaction is settled. */
static void
ipg_piece_done(void *arg, bool ok, bool claimed, const char *error)
{
	struct ipg_op *op = arg;
	char loc[96];

	ipg_set_busy(op, false);
	if (!ok) {
		log_warnx("import_store_failed id=%s error=\"%s\"", op->id,
		    error != NULL ? error : "");
		http_reply_error(op->req, 503, "unavailable",
		    "the store could not commit a piece's rows; "
		    "nothing of that piece was kept; rerun the import "
		    "(it is idempotent)");
	} else if (!claimed)
		imp_reply_busy(op->req);
	else if (op->fail != NULL)
		http_reply_error(op->req, 422, "invalid_csv", "%s", op->fail);
	else if (op->kind == IPG_CREATE) {
		snprintf(loc, sizeof(loc), "/api/v1/imports/%s", op->s->id);
		http_add_header(op->req, "Location", loc);
		http_reply_json(op->req, 201, imp_report(op->s, false));
	} else {
		ipg_read_reply(op, op->last);
		return;
	}
	ipg_op_free(op);
}

/* ---- Handlers ------------------------------------------------------------ */

/* A new import's list is known and there is room: its first piece. */
static void
ipg_on_can_open(void *arg, bool found, int64_t list_id, int64_t nopen,
    const char *error)
{
	struct ipg_op *op = arg;
	struct imp_session *s;
	const struct http_req *req = op->req;

	if (error != NULL) {
		ipg_unavailable(op->req, error);
		ipg_op_free(op);
		return;
	}
	if (!found) {
		http_reply_error(op->req, 422, "invalid_request",
		    "list: no list named '%.64s' (outreachctl lists shows "
		    "them)",
		    op->list);
		ipg_op_free(op);
		return;
	}
	if (nopen >= IMPORT_MAX_OPEN) {
		imp_reply_too_many(op->req);
		ipg_op_free(op);
		return;
	}
	s = imp_session_alloc(op->im, list_id, op->list, op->source,
	    op->region);
	snprintf(op->id, sizeof(op->id), "%s", s->id);
	log_info("import_started id=%s list=\"%s\" list_id=%lld region=%s",
	    s->id, s->list, (long long)s->list_id, s->region);
	if (op->kind == IPG_CREATE) {
		op->s = s; /* answered from it */
		ipg_piece(op, s, NULL, 0, NULL);
	} else {
		op->last = true;
		ipg_piece(op, s, req->body, req->body_len, NULL);
	}
}

/* Checks a new import's arguments, then its list. */
static void
ipg_open(struct imports *im, struct http_req *req, enum ipg_kind kind,
    const char *const args[3])
{
	struct ipg_op *op;
	const char *region = args[2];
	char err[256];

	if (imp_check_new(im, req, args[0], args[1], &region) == -1)
		return;
	op = ipg_op_new(im, req, kind);
	op->list = xstrdup(args[0]);
	op->source = xstrdup(args[1]);
	snprintf(op->region, sizeof(op->region), "%s", region);
	if (store_import_can_open_pg(im->deps.st, op->list, ipg_since(),
		ipg_on_can_open, op, err, sizeof(err)) == -1) {
		ipg_unavailable(req, err);
		ipg_op_free(op);
	}
}

static void
ipg_post(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	const char *ctype = http_header(req, "Content-Type");
	struct evkeyvalq q;
	const char *args[3];
	json_t *o;

	if (!api_authorized(im->deps.api, req) || imp_stopping(im, req))
		return;
	if (ctype != NULL && imp_is_csv(ctype)) {
		TAILQ_INIT(&q);
		if (req->query == NULL ||
		    evhttp_parse_query_str(req->query, &q) != 0) {
			http_reply_error(req, 422, "invalid_request",
			    "a CSV body needs ?list=NAME&source=TEXT in the "
			    "URL (or POST JSON {\"list\", \"source\"} to open "
			    "an import)");
			return;
		}
		args[0] = evhttp_find_header(&q, "list");
		args[1] = evhttp_find_header(&q, "source");
		args[2] = evhttp_find_header(&q, "region");
		ipg_open(im, req, IPG_ONESHOT, args);
		evhttp_clear_headers(&q);
		return;
	}
	if ((o = api_read_object(req)) == NULL)
		return;
	args[0] = json_string_value(json_object_get(o, "list"));
	args[1] = json_string_value(json_object_get(o, "source"));
	args[2] = json_string_value(json_object_get(o, "region"));
	if (json_object_get(o, "region") != NULL && args[2] == NULL)
		http_reply_error(req, 422, "invalid_request",
		    "region: must be a string such as \"US\"");
	else
		ipg_open(im, req, IPG_CREATE, args);
	json_decref(o);
}

static void
ipg_on_list(void *arg, const struct imp_pg_row *rows, size_t n, json_t *issues,
    const char *error)
{
	struct ipg_op *op = arg;
	struct imp_session *s;
	json_t *a;
	size_t i;

	(void)issues;
	if (error != NULL) {
		ipg_unavailable(op->req, error);
	} else {
		a = json_array();
		for (i = 0; i < n; i++) {
			s = ipg_session(op->im, &rows[i], NULL);
			json_array_append_new(a, imp_report(s, false));
			imp_session_free(s);
		}
		http_reply_json(op->req, 200, json_pack("{s:o}", "imports", a));
	}
	ipg_op_free(op);
}

static void
ipg_list(struct http_req *req, void *arg)
{
	struct imports *im = arg;
	struct ipg_op *op;
	char err[256];

	if (!api_authorized(im->deps.api, req))
		return;
	op = ipg_op_new(im, req, IPG_LIST);
	if (store_import_read_pg(im->deps.st,
		&(struct imp_pg_read){.since = ipg_since()}, ipg_on_list, op,
		err, sizeof(err)) == -1) {
		ipg_unavailable(req, err);
		ipg_op_free(op);
	}
}

/* The abort is settled. */
static void
ipg_aborted(void *arg, bool ok, bool claimed, const char *error)
{
	struct ipg_op *op = arg;

	if (!ok) {
		ipg_unavailable(op->req,
		    error != NULL ? error : "the abort was not committed");
		ipg_op_free(op);
		return;
	}
	if (claimed)
		log_info("import_aborted id=%s", op->id);
	ipg_read_reply(op, true);
}

/* The import of a GET, DELETE, data or finish is read. */
static void
ipg_on_read(void *arg, const struct imp_pg_row *rows, size_t n, json_t *issues,
    const char *error)
{
	struct ipg_op *op = arg;
	struct http_req *req = op->req;
	struct imp_session *s;
	char err[256];

	if (error != NULL || n == 0) {
		if (error != NULL)
			ipg_unavailable(req, error);
		else
			imp_reply_not_found(req, op->id);
		ipg_op_free(op);
		return;
	}
	s = ipg_session(op->im, &rows[0], issues);
	if (op->kind == IPG_GET ||
	    (op->kind == IPG_DELETE && s->state != IMP_OPEN &&
		!ipg_is_busy(op->im, op->id))) {
		http_reply_json(req, 200, imp_report(s, true));
		goto out;
	}
	if (op->kind == IPG_DELETE) {
		if (ipg_is_busy(op->im, op->id))
			http_reply_error(req, 409, "busy",
			    "a piece of this import is being written; retry");
		else if (store_import_abort_pg(op->im->deps.st, op->id,
			     msg_now_ms(), ipg_aborted, op, err,
			     sizeof(err)) == -1)
			ipg_unavailable(req, err);
		else
			op = NULL;
		goto out;
	}
	if (ipg_is_busy(op->im, op->id)) {
		imp_reply_busy(req);
		goto out;
	}
	if (s->state != IMP_OPEN) {
		imp_reply_not_open(req, s);
		goto out;
	}
	if (op->kind == IPG_DATA &&
	    !imp_is_csv(http_header(req, "Content-Type"))) {
		http_reply_error(req, 415, "unsupported_media_type",
		    "Content-Type must be text/csv, not %.64s",
		    http_header(req, "Content-Type"));
		goto out;
	}
	if (op->kind == IPG_DATA && imp_reply_bad_offset(req, s->bytes))
		goto out;
	s->csv = csv_restore(rows[0].reader, imp_on_record, s);
	if (s->csv == NULL ||
	    (rows[0].header != NULL &&
		ipg_header_load(s, rows[0].header) == -1)) {
		ipg_unavailable(req, "the import's saved state is unreadable");
		goto out;
	}
	op->last = op->kind == IPG_FINISH;
	ipg_piece(op, s, op->last ? NULL : req->body,
	    op->last ? 0 : req->body_len, &rows[0]);
	return;
out:
	imp_session_free(s);
	if (op != NULL)
		ipg_op_free(op);
}

/* Reads the import of the route, then goes on in ipg_on_read(). */
static void
ipg_read(struct imports *im, struct http_req *req, enum ipg_kind kind)
{
	struct ipg_op *op = ipg_op_new(im, req, kind);
	char err[256];

	if (store_import_read_pg(im->deps.st,
		&(struct imp_pg_read){.id = op->id,
		    .since = ipg_since(),
		    .issues = kind == IPG_GET || kind == IPG_DELETE,
		    .issues_max = IMPORT_ISSUES_MAX},
		ipg_on_read, op, err, sizeof(err)) == -1) {
		ipg_unavailable(req, err);
		ipg_op_free(op);
	}
}

static void
ipg_get(struct http_req *req, void *arg)
{
	struct imports *im = arg;

	if (!api_authorized(im->deps.api, req))
		return;
	ipg_read(im, req, req->method == HTTP_DELETE ? IPG_DELETE : IPG_GET);
}

static void
ipg_data(struct http_req *req, void *arg)
{
	struct imports *im = arg;

	if (!api_authorized(im->deps.api, req) || imp_stopping(im, req))
		return;
	ipg_read(im, req, IPG_DATA);
}

static void
ipg_finish(struct http_req *req, void *arg)
{
	struct imports *im = arg;

	if (!api_authorized(im->deps.api, req) || imp_stopping(im, req))
		return;
	ipg_read(im, req, IPG_FINISH);
}
