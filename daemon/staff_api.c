/*
 * staff_api.c - /api/v1/staff, /api/v1/tokens, /api/v1/sessions and
 * /api/v1/audit (staff.h, doc/staff.md).
 *
 * Staff management and the audit log are for admins; any staff member
 * may list staff (the assign menu: organizers see names and roles, not
 * emails) and manage its own tokens and web sessions (another member's
 * session is 404 to an organizer, so ids are not probed). A new password is
 * hashed on the worker before the row is written. Changes are answered after
 * their group commits. The last enabled admin can be neither disabled nor
 * demoted, so the API can always be administered.
 */
#include "autoconf.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "api.h"
#include "auth.h"
#include "compat.h"
#include "email_addr.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "staff-internal.h"
#include "store.h"
#include "store_staff.h"
#include "store_staff_pg.h"
#include "xmalloc.h"

#define STAFF_NAME_MAX	 200
#define STAFF_AUDIT_PAGE 50
#define STAFF_AUDIT_MAX	 500

/* A staff write waiting for its password hash. Strings are copies. */
struct staff_write {
	struct staff *s;
	struct http_req *req;
	int64_t id; /* 0 = create */
	char name[STAFF_NAME_MAX + 1];
	char email[321];
	char role[16];
	struct staff_patch patch;
	bool has_password;
};

static void st_list(struct http_req *, void *);
static void st_create(struct http_req *, void *);
static void st_one(struct http_req *, void *);
static void tok_list(struct http_req *, void *);
static void tok_create(struct http_req *, void *);
static void tok_delete(struct http_req *, void *);
static void sess_list(struct http_req *, void *);
static void sess_delete(struct http_req *, void *);
static void audit_list(struct http_req *, void *);

void
staff_api_routes(struct staff *s)
{
	struct http_server *srv = s->deps.srv;

	http_route(srv, HTTP_GET, "/api/v1/staff", st_list, s);
	http_route(srv, HTTP_POST, "/api/v1/staff", st_create, s);
	http_route(srv, HTTP_GET | HTTP_PATCH, "/api/v1/staff/{id}", st_one, s);
	http_route(srv, HTTP_GET, "/api/v1/tokens", tok_list, s);
	http_route(srv, HTTP_POST, "/api/v1/tokens", tok_create, s);
	http_route(srv, HTTP_DELETE, "/api/v1/tokens/{id}", tok_delete, s);
	http_route(srv, HTTP_GET, "/api/v1/sessions", sess_list, s);
	http_route(srv, HTTP_DELETE, "/api/v1/sessions/{id}", sess_delete, s);
	http_route(srv, HTTP_GET, "/api/v1/audit", audit_list, s);
}

/* Shutdown began: writes are answered 503 (true), as everywhere. */
static bool
st_stopping(struct staff *s, struct http_req *req)
{
	if (!api_is_stopping(s->deps.api))
		return false;
	http_reply_error(req, 503, "unavailable", "shutting down");
	return true;
}

/* A positive decimal id, or 0. */
static int64_t
st_parse_id(const char *t)
{
	char *end;
	long long v;

	if (t == NULL || *t < '1' || *t > '9')
		return 0;
	v = strtoll(t, &end, 10);
	return *end == '\0' && v > 0 ? (int64_t)v : 0;
}

/* A string field: absent (NULL, 0), a string (0), else -1 with err. */
static int
st_str(json_t *o, const char *key, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* A name: 1..STAFF_NAME_MAX bytes, no control characters. */
static int
st_check_name(const char *name, char *err, size_t errlen)
{
	const unsigned char *p;

	if (*name == '\0' || strlen(name) > STAFF_NAME_MAX) {
		snprintf(err, errlen, "name: 1 to %d characters",
		    STAFF_NAME_MAX);
		return -1;
	}
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen,
			    "name: must not hold control characters");
			return -1;
		}
	return 0;
}

static int
st_check_role(const char *role, char *err, size_t errlen)
{
	if (staff_role_of(role) == HTTP_ROLE_NONE) {
		snprintf(err, errlen,
		    "role: must be \"admin\" or \"organizer\"");
		return -1;
	}
	return 0;
}

/* ---- GET /api/v1/staff -------------------------------------------- */

static void
st_list(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	char err[256];
	json_t *a;

	if (!api_authorized(s->deps.api, req))
		return;
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		void *r;

		if (store_staff_list_json_pg(s->deps.st,
			req->auth.role == HTTP_ROLE_ADMIN, staff_read_answer,
			(r = staff_read_new(req, "staff list", "staff")), err,
			sizeof(err)) == -1)
			staff_read_answer(r, NULL, err);
		return;
	}
	if ((a = store_staff_list_json(s->deps.st,
		 req->auth.role == HTTP_ROLE_ADMIN, err, sizeof(err))) ==
	    NULL) {
		staff_store_error(req, "staff list", err);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "staff", a));
}

/* ---- writes: after the hash (if any), the row --------------------- */

/* A staff write on PostgreSQL waiting for its group. */
struct st_writing {
	struct staff *s;
	struct http_req *req;
	int64_t id; /* 0 = create */
};

static void
st_written(void *arg, const struct staff_done *d)
{
	struct st_writing *p = arg;
	struct http_req *req = p->req;
	char loc[64];
	int64_t id;

	staff_cache_drop(p->s);
	if (!d->ok)
		staff_store_error(req, "staff write",
		    d->error != NULL ? d->error : "the group failed");
	else if (p->id == 0 && !d->found)
		http_reply_error(req, 409, "conflict",
		    "email: a staff member has it already");
	else if (!d->found)
		http_reply_error(req, 404, "not_found", "no staff member %lld",
		    (long long)p->id);
	else if (d->last_admin)
		http_reply_error(req, 409, "conflict",
		    "staff %lld is the last enabled admin: make another admin "
		    "first",
		    (long long)p->id);
	else {
		id = json_integer_value(json_object_get(d->o, "id"));
		if (p->id == 0) {
			snprintf(loc, sizeof(loc), "/api/v1/staff/%lld",
			    (long long)id);
			http_add_header(req, "Location", loc);
		}
		log_info("staff_%s id=%lld by=%lld",
		    p->id == 0 ? "created" : "updated", (long long)id,
		    (long long)req->auth.staff_id);
		http_reply_json(req, p->id == 0 ? 201 : 200, json_incref(d->o));
	}
	free(p);
}

/* st_write_row() on PostgreSQL: one statement, answered after COMMIT. */
static void
st_write_row_pg(struct staff_write *w, const char *hash)
{
	struct st_writing *p = xcalloc(1, sizeof(*p));
	char err[256];
	int rc;

	p->s = w->s;
	p->req = w->req;
	p->id = w->id;
	if (w->id == 0)
		rc = store_staff_create_pg(w->s->deps.st,
		    &(struct staff_new){.name = w->name,
			.email = w->email,
			.role = w->role,
			.password_hash = hash,
			.now = msg_now_ms()},
		    st_written, p, err, sizeof(err));
	else {
		w->patch.now = msg_now_ms();
		if (w->has_password)
			w->patch.password_hash = hash;
		staff_cache_drop(w->s);
		rc = store_staff_update_pg(w->s->deps.st,
		    &(struct staff_update){.id = w->id, .patch = &w->patch},
		    st_written, p, err, sizeof(err));
	}
	if (rc == -1) {
		free(p);
		staff_store_error(w->req, "staff write", err);
	}
}

static void
st_write_row(struct staff_write *w, const char *hash)
{
	struct staff *s = w->s;
	char err[256], loc[64];
	int64_t id = w->id, now = msg_now_ms();
	json_t *o;
	int rc;

	if (store_backend(s->deps.st) != STORE_SQLITE) {
		st_write_row_pg(w, hash);
		return;
	}
	if (id == 0) {
		id = store_staff_create(s->deps.st,
		    &(struct staff_new){.name = w->name,
			.email = w->email,
			.role = w->role,
			.password_hash = hash,
			.now = now},
		    err, sizeof(err));
		if (id == 0) {
			http_reply_error(w->req, 409, "conflict",
			    "email: a staff member has it already");
			return;
		}
		rc = id > 0 ? 1 : -1;
	} else {
		w->patch.now = now;
		if (w->has_password)
			w->patch.password_hash = hash;
		rc = store_staff_update(s->deps.st, id, &w->patch, err,
		    sizeof(err));
	}
	if (rc == 0) {
		http_reply_error(w->req, 404, "not_found",
		    "no staff member %lld", (long long)id);
		return;
	}
	if (rc == -1 ||
	    (o = store_staff_json(s->deps.st, id, err, sizeof(err))) == NULL) {
		staff_store_error(w->req, "staff write", err);
		return;
	}
	if (w->id == 0) {
		snprintf(loc, sizeof(loc), "/api/v1/staff/%lld", (long long)id);
		http_add_header(w->req, "Location", loc);
	}
	log_info("staff_%s id=%lld by=%lld", w->id == 0 ? "created" : "updated",
	    (long long)id, (long long)w->req->auth.staff_id);
	staff_reply_after_commit(s, w->req, w->id == 0 ? 201 : 200, o);
}

static void
st_hashed(struct staff_hash_job *job, bool cancelled)
{
	struct staff_write *w = job->arg;

	if (cancelled || !job->ok)
		http_reply_error(w->req, 503, "unavailable",
		    "cannot hash the password now%s%s",
		    job->err[0] != '\0' ? ": " : "", job->err);
	else
		st_write_row(w, job->encoded);
	OPENSSL_cleanse(job->encoded, sizeof(job->encoded));
	free(w);
	free(job);
}

/* Writes w now, or after hashing pw (NULL = no new password). */
static void
st_write(struct staff_write *w, const char *pw)
{
	struct staff_hash_job *job;

	if (pw == NULL) {
		st_write_row(w, NULL);
		free(w);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->s = w->s;
	job->req = w->req;
	job->arg = w;
	job->done = st_hashed;
	strlcpy(job->password, pw, sizeof(job->password));
	staff_hash_submit(w->s, job);
}

/* ---- POST /api/v1/staff ------------------------------------------- */

static int
st_parse_new(json_t *o, struct staff_write *w, const char **pw, char *err,
    size_t errlen)
{
	static const char *const known[] = {"name", "email", "role", "password",
	    NULL};
	const char *name, *email, *role;
	char why[160];

	if (api_check_fields(o, known, err, errlen) == -1 ||
	    st_str(o, "name", &name, err, errlen) == -1 ||
	    st_str(o, "email", &email, err, errlen) == -1 ||
	    st_str(o, "role", &role, err, errlen) == -1 ||
	    st_str(o, "password", pw, err, errlen) == -1)
		return -1;
	if (name == NULL || email == NULL || role == NULL) {
		snprintf(err, errlen, "%s: required",
		    name == NULL	? "name"
			: email == NULL ? "email"
					: "role");
		return -1;
	}
	if (st_check_name(name, err, errlen) == -1 ||
	    st_check_role(role, err, errlen) == -1 ||
	    (*pw != NULL && staff_password_check(*pw, err, errlen) == -1))
		return -1;
	if (email_addr_normalize(email, w->email, sizeof(w->email), why,
		sizeof(why)) == -1) {
		snprintf(err, errlen, "email: %s", why);
		return -1;
	}
	strlcpy(w->name, name, sizeof(w->name));
	strlcpy(w->role, role, sizeof(w->role));
	return 0;
}

static void
st_create(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	struct staff_write *w;
	const char *pw = NULL;
	char err[512];
	json_t *o;

	if (!api_require_admin(s->deps.api, req) || st_stopping(s, req))
		return;
	if ((o = api_read_object(req)) == NULL)
		return;
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->req = req;
	if (st_parse_new(o, w, &pw, err, sizeof(err)) == -1) {
		json_decref(o);
		free(w);
		http_reply_error(req, 422, "invalid", "%s", err);
		return;
	}
	st_write(w, pw);
	json_decref(o);
}

/* ---- GET|PATCH /api/v1/staff/{id} --------------------------------- */

/* Reads the PATCH body into w->patch (strings copied into w). */
static int
st_parse_patch(json_t *o, struct staff_write *w, const char **pw, char *err,
    size_t errlen)
{
	static const char *const known[] = {"name", "role", "password",
	    "disabled", NULL};
	struct staff_patch *p = &w->patch;
	const char *name, *role;
	json_t *v;

	if (api_check_fields(o, known, err, errlen) == -1 ||
	    st_str(o, "name", &name, err, errlen) == -1 ||
	    st_str(o, "role", &role, err, errlen) == -1)
		return -1;
	if ((name != NULL && st_check_name(name, err, errlen) == -1) ||
	    (role != NULL && st_check_role(role, err, errlen) == -1))
		return -1;
	if (name != NULL) {
		p->set_name = true;
		strlcpy(w->name, name, sizeof(w->name));
		p->name = w->name;
	}
	if (role != NULL) {
		p->set_role = true;
		strlcpy(w->role, role, sizeof(w->role));
		p->role = w->role;
	}
	if ((v = json_object_get(o, "disabled")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(err, errlen,
			    "disabled: must be true or false");
			return -1;
		}
		p->set_disabled = true;
		p->disabled = json_is_true(v);
	}
	if ((v = json_object_get(o, "password")) != NULL) {
		if (!json_is_null(v) && !json_is_string(v)) {
			snprintf(err, errlen,
			    "password: a string, or null to remove it");
			return -1;
		}
		p->set_password = true;
		w->has_password = json_is_string(v);
		*pw = json_string_value(v);
		if (*pw != NULL && staff_password_check(*pw, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * The last enabled admin may not be disabled or demoted: true (after
 * answering 409 or 503) if the patch would do that to member 'row'.
 */
static bool
st_last_admin(struct staff *s, struct http_req *req,
    const struct staff_row *row, const struct staff_patch *p)
{
	char err[256];
	int64_t others;

	if (strcmp(row->role, "admin") != 0 || row->disabled)
		return false;
	if (!(p->set_disabled && p->disabled) &&
	    !(p->set_role && strcmp(p->role, "admin") != 0))
		return false;
	if ((others = store_staff_admins(s->deps.st, row->id, err,
		 sizeof(err))) == -1) {
		staff_store_error(req, "staff admins", err);
		return true;
	}
	if (others > 0)
		return false;
	http_reply_error(req, 409, "conflict",
	    "staff %lld is the last enabled admin: make another admin first",
	    (long long)row->id);
	return true;
}

static void
st_patch(struct staff *s, struct http_req *req, const struct staff_row *row)
{
	struct staff_write *w;
	const char *pw = NULL;
	char err[512];
	json_t *o;

	if ((o = api_read_object(req)) == NULL)
		return;
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->req = req;
	w->id = row->id;
	if (req->auth.staff_id == row->id)
		w->patch.keep_session = req->auth.session_id;
	if (st_parse_patch(o, w, &pw, err, sizeof(err)) == -1) {
		json_decref(o);
		free(w);
		http_reply_error(req, 422, "invalid", "%s", err);
		return;
	}
	if (store_backend(s->deps.st) == STORE_SQLITE &&
	    st_last_admin(s, req, row, &w->patch)) {
		json_decref(o);
		free(w);
		return;
	}
	st_write(w, pw);
	json_decref(o);
}

/*
 * GET or PATCH on PostgreSQL: no read first; the update's statement
 * answers 404 and the last-admin rule itself (st_written()).
 */
static void
st_one_pg(struct staff *s, struct http_req *req, int64_t id)
{
	struct staff_row row = {.id = id};
	char err[256];
	void *r;

	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no staff member '%s'",
		    req->params[0]);
		return;
	}
	if (req->method == HTTP_PATCH) {
		if (!st_stopping(s, req))
			st_patch(s, req, &row);
		return;
	}
	if (store_staff_json_pg(s->deps.st, id, staff_read_answer,
		(r = staff_read_new(req, "staff member", NULL)), err,
		sizeof(err)) == -1)
		staff_read_answer(r, NULL, err);
}

static void
st_one(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	struct staff_row row;
	int64_t id = st_parse_id(req->params[0]);
	char err[256];
	json_t *o;
	int rc;

	if (!api_authorized(s->deps.api, req))
		return;
	/* anyone may read themselves; the rest is for admins */
	if ((req->method != HTTP_GET || id != req->auth.staff_id) &&
	    req->auth.role != HTTP_ROLE_ADMIN) {
		http_reply_error(req, 403, "forbidden", "this needs an admin");
		return;
	}
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		st_one_pg(s, req, id);
		return;
	}
	if (id == 0 ||
	    (rc = store_staff_get(s->deps.st, id, &row, err, sizeof(err))) ==
		0) {
		http_reply_error(req, 404, "not_found", "no staff member '%s'",
		    req->params[0]);
		return;
	}
	if (rc == -1) {
		staff_store_error(req, "staff", err);
		return;
	}
	OPENSSL_cleanse(row.password_hash, sizeof(row.password_hash));
	if (req->method == HTTP_PATCH) {
		if (st_stopping(s, req))
			return;
		st_patch(s, req, &row);
		return;
	}
	if ((o = store_staff_json(s->deps.st, id, err, sizeof(err))) == NULL) {
		staff_store_error(req, "staff", err);
		return;
	}
	http_reply_json(req, 200, o);
}

/* ---- tokens ------------------------------------------------------- */

static void
tok_list(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	char err[256];
	json_t *a;

	if (!api_authorized(s->deps.api, req))
		return;
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		void *r;

		if (store_tokens_json_pg(s->deps.st,
			req->auth.role == HTTP_ROLE_ADMIN ? 0
							  : req->auth.staff_id,
			staff_read_answer,
			(r = staff_read_new(req, "token list", "tokens")), err,
			sizeof(err)) == -1)
			staff_read_answer(r, NULL, err);
		return;
	}
	if ((a = store_tokens_json(s->deps.st,
		 req->auth.role == HTTP_ROLE_ADMIN ? 0 : req->auth.staff_id,
		 err, sizeof(err))) == NULL) {
		staff_store_error(req, "token list", err);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "tokens", a));
}

/* The owner of a new token: the caller, or (admins) staff_id. */
static int
tok_owner(struct staff *s, struct http_req *req, json_t *o, int64_t *owner)
{
	json_t *v = json_object_get(o, "staff_id");
	struct staff_row row;
	char err[256];
	int rc;

	*owner = req->auth.staff_id;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		http_reply_error(req, 422, "invalid",
		    "staff_id: a staff member's id");
		return -1;
	}
	*owner = json_integer_value(v);
	if (*owner != req->auth.staff_id && req->auth.role != HTTP_ROLE_ADMIN) {
		http_reply_error(req, 403, "forbidden",
		    "organizers make tokens for themselves only");
		return -1;
	}
	/* PostgreSQL: the token's insert checks the owner (tok_made()) */
	if (store_backend(s->deps.st) != STORE_SQLITE)
		return 0;
	if ((rc = store_staff_get(s->deps.st, *owner, &row, err,
		 sizeof(err))) == -1) {
		staff_store_error(req, "token owner", err);
		return -1;
	}
	if (rc == 0 || row.disabled) {
		http_reply_error(req, 422, "invalid",
		    "staff_id: no enabled staff member %lld",
		    (long long)*owner);
		return -1;
	}
	return 0;
}

/* A new token waiting for its row's commit. */
struct tok_pending {
	struct http_req *req;
	char tok[AUTH_HEX_LEN];
	char name[STAFF_NAME_MAX + 1];
	int64_t owner;
	int64_t now;
};

/* The row is durable (or not): the token is shown once, now. */
static void
tok_made(void *arg, bool ok, int64_t id, const char *error)
{
	struct tok_pending *p = arg;
	struct http_req *req = p->req;
	char loc[64];
	json_t *r;

	if (!ok && error != NULL)
		staff_store_error(req, "token create", error);
	else if (!ok)
		http_reply_error(req, 503, "unavailable",
		    "the store could not commit; nothing changed");
	else if (id == 0)
		http_reply_error(req, 422, "invalid",
		    "staff_id: no enabled staff member %lld",
		    (long long)p->owner);
	else {
		r = json_pack("{s:I, s:s, s:s, s:I, s:o}", "id", (json_int_t)id,
		    "name", p->name, "token", p->tok, "staff_id",
		    (json_int_t)p->owner, "created_at",
		    json_string(msg_time_to_text(p->now, loc, sizeof(loc))));
		snprintf(loc, sizeof(loc), "/api/v1/tokens/%lld",
		    (long long)id);
		http_add_header(req, "Location", loc);
		http_add_header(req, "Cache-Control", "no-store");
		log_info("token_created id=%lld staff=%lld by=%lld",
		    (long long)id, (long long)p->owner,
		    (long long)req->auth.staff_id);
		http_reply_json(req, 201, r);
	}
	OPENSSL_cleanse(p->tok, sizeof(p->tok));
	free(p);
}

static void
tok_create(struct http_req *req, void *arg)
{
	static const char *const known[] = {"name", "staff_id", NULL};
	struct staff *s = arg;
	char err[256], hash[AUTH_HEX_LEN];
	const char *name = NULL;
	struct tok_pending *p;
	int64_t owner;
	json_t *o;

	if (!api_authorized(s->deps.api, req) || st_stopping(s, req) ||
	    (o = api_read_object(req)) == NULL)
		return;
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    st_str(o, "name", &name, err, sizeof(err)) == -1 ||
	    (name != NULL && st_check_name(name, err, sizeof(err)) == -1)) {
		json_decref(o);
		http_reply_error(req, 422, "invalid", "%s", err);
		return;
	}
	if (tok_owner(s, req, o, &owner) == -1) {
		json_decref(o);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	if (auth_random_hex(p->tok) == -1) {
		free(p);
		json_decref(o);
		http_reply_error(req, 503, "unavailable", "no randomness");
		return;
	}
	auth_sha256_hex(p->tok, hash);
	strlcpy(p->name, name != NULL ? name : "API token", sizeof(p->name));
	json_decref(o);
	p->req = req;
	p->owner = owner;
	p->now = msg_now_ms();
	/* the reply (201, the token shown once) waits for the commit */
	if (store_token_create_durable(s->deps.st,
		&(struct token_new){.staff_id = owner,
		    .name = p->name,
		    .hash = hash,
		    .now = p->now},
		tok_made, p, err, sizeof(err)) == -1) {
		OPENSSL_cleanse(p->tok, sizeof(p->tok));
		free(p);
		staff_store_error(req, "token create", err);
	}
}

/* A revoke waiting for its group: who asked. */
struct tok_revoking {
	struct staff *s;
	struct http_req *req;
	int64_t id;
};

static void
tok_revoked(void *arg, bool ok, int64_t owner, const char *error)
{
	struct tok_revoking *p = arg;
	struct http_req *req = p->req;

	/* PostgreSQL: this node's kept answers go (a read answered
	 * meanwhile may have kept the token); SQLite: the store's
	 * generation did it */
	staff_cache_drop(p->s);
	if (!ok && error != NULL)
		staff_store_error(req, "token revoke", error);
	else if (!ok)
		http_reply_error(req, 503, "unavailable",
		    "the store could not commit; nothing changed");
	else if (owner == 0)
		http_reply_error(req, 404, "not_found", "no token '%s'",
		    req->params[0]);
	else if (owner != req->auth.staff_id &&
	    req->auth.role != HTTP_ROLE_ADMIN)
		http_reply_error(req, 403, "forbidden",
		    "organizers revoke their own tokens only");
	else {
		log_info("token_revoked id=%lld by=%lld", (long long)p->id,
		    (long long)req->auth.staff_id);
		http_reply(req, 204, NULL, NULL, 0);
	}
	free(p);
}

static void
tok_delete(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	int64_t id = st_parse_id(req->params[0]);
	struct tok_revoking *p;
	char err[256];

	if (!api_authorized(s->deps.api, req) || st_stopping(s, req))
		return;
	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no token '%s'",
		    req->params[0]);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->req = req;
	p->id = id;
	staff_cache_drop(s);
	/* the 204 waits for the commit */
	if (store_token_revoke_durable(s->deps.st,
		&(struct token_revoke){.id = id,
		    .by = req->auth.role == HTTP_ROLE_ADMIN
			? 0
			: req->auth.staff_id,
		    .now = msg_now_ms()},
		tok_revoked, p, err, sizeof(err)) == -1) {
		free(p);
		staff_store_error(req, "token", err);
	}
}

/* ---- web sessions ------------------------------------------------- */

/*
 * ?staff_id= into q->staff_id (admins: 0 = everyone; others: always
 * themselves). 1 go on, 0 answer an empty list (an organizer asked for
 * another member's), -1 after answering 422.
 */
static int
sess_query(struct http_req *req, struct session_query *q)
{
	static const char *const known[] = {"staff_id", NULL};
	struct evkeyvalq kv;
	const char *v;
	int64_t want = 0;
	bool bad = false;

	if (!api_read_query(req, &kv, known))
		return -1;
	if ((v = evhttp_find_header(&kv, "staff_id")) != NULL &&
	    (want = st_parse_id(v)) == 0)
		bad = true;
	evhttp_clear_headers(&kv);
	if (bad) {
		http_reply_error(req, 422, "invalid",
		    "staff_id: a staff member's id");
		return -1;
	}
	if (req->auth.role == HTTP_ROLE_ADMIN) {
		q->staff_id = want;
		return 1;
	}
	q->staff_id = req->auth.staff_id;
	return want == 0 || want == req->auth.staff_id;
}

static void
sess_list(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	struct session_query q = {0};
	char err[256];
	json_t *a;
	int rc;

	if (!api_authorized(s->deps.api, req) ||
	    (rc = sess_query(req, &q)) == -1)
		return;
	q.current =
	    req->auth.via == HTTP_AUTH_SESSION ? req->auth.session_id : 0;
	q.now = msg_now_ms();
	q.idle_ms = s->idle_ms;
	if (rc != 0 && store_backend(s->deps.st) != STORE_SQLITE) {
		void *r;

		if (store_sessions_json_pg(s->deps.st, &q, staff_read_answer,
			(r = staff_read_new(req, "session list", "sessions")),
			err, sizeof(err)) == -1)
			staff_read_answer(r, NULL, err);
		return;
	}
	if (rc == 0)
		a = json_array();
	else if ((a = store_sessions_json(s->deps.st, &q, err, sizeof(err))) ==
	    NULL) {
		staff_store_error(req, "session list", err);
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o}", "sessions", a));
}

/* A session's revoke waiting for its group (PostgreSQL). */
struct sess_revoking {
	struct staff *s;
	struct http_req *req;
	int64_t id;
};

static void
sess_revoked(void *arg, const struct staff_done *d)
{
	struct sess_revoking *p = arg;
	struct http_req *req = p->req;

	staff_cache_drop(p->s);
	if (!d->ok)
		staff_store_error(req, "session revoke",
		    d->error != NULL ? d->error : "the group failed");
	else if (!d->found)
		http_reply_error(req, 404, "not_found", "no live session '%s'",
		    req->params[0]);
	else {
		log_info("session_revoked id=%lld staff=%lld by=%lld",
		    (long long)p->id, (long long)d->id,
		    (long long)req->auth.staff_id);
		http_reply(req, 204, NULL, NULL, 0);
	}
	free(p);
}

/*
 * DELETE on PostgreSQL: the owner's check and the revoke in one
 * statement (another member's session is 404 to an organizer).
 */
static void
sess_delete_pg(struct staff *s, struct http_req *req, int64_t id)
{
	struct sess_revoking *p;
	char err[256];

	if (id == 0) {
		http_reply_error(req, 404, "not_found", "no live session '%s'",
		    req->params[0]);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->req = req;
	p->id = id;
	staff_cache_drop(s);
	if (store_session_revoke_pg(s->deps.st,
		&(struct session_revoke){.id = id,
		    .by = req->auth.role == HTTP_ROLE_ADMIN
			? 0
			: req->auth.staff_id,
		    .now = msg_now_ms(),
		    .idle_ms = s->idle_ms},
		sess_revoked, p, err, sizeof(err)) == -1) {
		free(p);
		staff_store_error(req, "session revoke", err);
	}
}

static void
sess_delete(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	struct session_query q = {.now = msg_now_ms(), .idle_ms = s->idle_ms};
	int64_t id = st_parse_id(req->params[0]), owner = 0;
	char err[256];
	int rc;

	if (!api_authorized(s->deps.api, req) || st_stopping(s, req))
		return;
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		sess_delete_pg(s, req, id);
		return;
	}
	rc = id == 0
	    ? 0
	    : store_session_owner(s->deps.st, id, &q, &owner, err, sizeof(err));
	if (rc == -1) {
		staff_store_error(req, "session", err);
		return;
	}
	/* another member's session is none of an organizer's business */
	if (rc == 0 ||
	    (owner != req->auth.staff_id &&
		req->auth.role != HTTP_ROLE_ADMIN)) {
		http_reply_error(req, 404, "not_found", "no live session '%s'",
		    req->params[0]);
		return;
	}
	if (store_session_revoke(s->deps.st, id, q.now, err, sizeof(err)) ==
	    -1) {
		staff_store_error(req, "session revoke", err);
		return;
	}
	log_info("session_revoked id=%lld staff=%lld by=%lld", (long long)id,
	    (long long)owner, (long long)req->auth.staff_id);
	staff_reply_after_commit(s, req, 204, NULL);
}

/* ---- GET /api/v1/audit -------------------------------------------- */

/* ?after=&limit=&staff_id= into q: 0, or -1 after answering 422. */
static int
audit_query(struct http_req *req, struct audit_query *q)
{
	static const char *const known[] = {"after", "limit", "staff_id", NULL};
	struct evkeyvalq kv;
	const char *v;
	int rc = 0;

	if (!api_read_query(req, &kv, known))
		return -1;
	q->limit = STAFF_AUDIT_PAGE;
	if ((v = evhttp_find_header(&kv, "after")) != NULL &&
	    (q->after = st_parse_id(v)) == 0)
		rc = -1;
	if ((v = evhttp_find_header(&kv, "staff_id")) != NULL &&
	    (q->staff_id = st_parse_id(v)) == 0)
		rc = -1;
	if ((v = evhttp_find_header(&kv, "limit")) != NULL) {
		int64_t l = st_parse_id(v);

		if (l == 0 || l > STAFF_AUDIT_MAX)
			rc = -1;
		q->limit = (int)l;
	}
	evhttp_clear_headers(&kv);
	if (rc == -1)
		http_reply_error(req, 422, "invalid",
		    "after and staff_id: positive ids; limit: 1 to %d",
		    STAFF_AUDIT_MAX);
	return rc;
}

static void
audit_list(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	struct audit_query q = {0};
	char err[256];
	json_t *o;

	if (!api_require_admin(s->deps.api, req) || audit_query(req, &q) == -1)
		return;
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		void *r;

		if (store_audit_json_pg(s->deps.st, &q, staff_read_answer,
			(r = staff_read_new(req, "audit", NULL)), err,
			sizeof(err)) == -1)
			staff_read_answer(r, NULL, err);
		return;
	}
	if ((o = store_audit_json(s->deps.st, &q, err, sizeof(err))) == NULL) {
		staff_store_error(req, "audit", err);
		return;
	}
	http_reply_json(req, 200, o);
}
