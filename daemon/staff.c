/*
 * staff.c - who may use the API (staff.h): bearer tokens and web
 * sessions, login by password or token, logout, /me, CSRF, the login
 * rate limits and the audit hook. The staff, tokens and audit routes are
 * in staff_api.c.
 *
 * A request is authorized by one indexed read: the SHA-256 of its token
 * or session cookie joined with the staff row (disabled members match
 * nothing). A bearer token's answer is kept in memory (by its SHA-256,
 * never the token) until a staff or token row changes, which
 * store_staff_generation() tells: a revoked token, a disabled member or
 * a new role is seen by the very next request (a change made outside
 * the daemon, within STAFF_TOKEN_KEEP_MS). A session's last use is
 * written at most once per STAFF_TOUCH_MS (or a quarter of the idle
 * timeout if shorter), so reading pages does not write on every request.
 *
 * On PostgreSQL a token missing from the cache is read outside the
 * group (store_token_auth_async()): the request waits, its handler
 * returns at once, and once the answer is in the handler runs again
 * (http_rerun()) with the request already authorized (req->auth set),
 * so the loop never waits. A session cookie is checked the same way,
 * its answer kept as long (STAFF_TOKEN_KEEP_MS; this node's own writes
 * of staff or session rows empty the cache at once: staff_cache_drop()),
 * so a logout or a disable on another node ends it here within that
 * bound. A login reads the email's row the same way, hashes on the
 * worker as on SQLite, and writes the session for an enabled member
 * only, answered after the commit (queue/store_staff_pg.h).
 *
 * Login by password: the account and the client address are checked
 * against the limiters first (429 with Retry-After while locked out);
 * then Argon2id runs on the worker thread. An unknown email, a disabled
 * member or one without a password costs one hash as well and gets the
 * same 401, so neither the answer nor its time tells which emails exist.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "api.h"
#include "auth.h"
#include "compat.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "message.h"
#include "staff-internal.h"
#include "staff.h"
#include "store.h"
#include "store_logins_pg.h"
#include "store_staff.h"
#include "store_staff_pg.h"
#include "workq.h"
#include "xmalloc.h"

#define STAFF_COOKIE	    "od_session"
#define STAFF_TOUCH_MS	    60000
#define STAFF_ACCOUNT_FAILS 5  /* failures before an account is locked */
#define STAFF_PEER_FAILS    20 /* ... before an address is */
#define STAFF_LOCK_MS	    30000
#define STAFF_LOCK_MAX_MS   (15 * 60000)
#define STAFF_FORGET_MS	    (15 * 60000)
#define STAFF_KEY_MAX	    340
/* password hashes waiting for the worker (~0.1 s each) */
#define STAFF_HASH_QUEUE_MAX 32

static void staff_login(struct http_req *, void *);
static void staff_logout(struct http_req *, void *);
static void staff_me(struct http_req *, void *);
static void staff_on_reply(void *, const struct http_req *, int);

/* A request waiting for its token's read (PostgreSQL). */
struct staff_wait {
	LIST_ENTRY(staff_wait) entry;
	struct staff *s; /* NULL once staff_free() ran */
	struct http_req *req;
	char hash[AUTH_HEX_LEN];
	uint64_t gen; /* staff_generation() when it was sent */
	int64_t sent_at;
	void *job; /* a login's read: its staff_hash_job or staff_login_tok */
};

/*
 * A login's read sent (PostgreSQL): w waits in s->waits, so that one
 * answered after staff_free() answers 503 instead of using s.
 */
static struct staff_wait *
staff_wait_login(struct staff *s, struct http_req *req, void *job)
{
	struct staff_wait *w = xcalloc(1, sizeof(*w));

	w->s = s;
	w->req = req;
	w->job = job;
	LIST_INSERT_HEAD(&s->waits, w, entry);
	return w;
}

/* The read of w answered: its job, or NULL (503 answered: shutting down). */
static void *
staff_wait_done(struct staff_wait *w)
{
	void *job = w->job;

	if (w->s != NULL)
		LIST_REMOVE(w, entry);
	else
		http_reply_error(w->req, 503, "unavailable", "shutting down");
	if (w->s == NULL)
		job = NULL;
	free(w);
	return job;
}

struct staff *
staff_new(const struct staff_deps *deps, char *err, size_t errlen)
{
	struct staff *s = xcalloc(1, sizeof(*s));
	const struct config *cfg = deps->cfg;
	char hash[AUTH_HEX_LEN];
	int rc;

	s->deps = *deps;
	s->idle_ms = cfg->session_idle_ms;
	s->lifetime_ms = cfg->session_lifetime_ms;
	s->secure = cfg->public_url != NULL &&
	    strncasecmp(cfg->public_url, "https://", 8) == 0;
	s->by_account =
	    auth_limiter_new(&(struct auth_limit_conf){STAFF_ACCOUNT_FAILS,
		STAFF_LOCK_MS, STAFF_LOCK_MAX_MS, STAFF_FORGET_MS});
	s->by_peer =
	    auth_limiter_new(&(struct auth_limit_conf){STAFF_PEER_FAILS,
		STAFF_LOCK_MS, STAFF_LOCK_MAX_MS, STAFF_FORGET_MS});
	if ((s->wq = workq_new(deps->base, 1, err, errlen)) == NULL) {
		staff_free(s);
		return NULL;
	}
	LIST_INIT(&s->waits);
	auth_sha256_hex(deps->token, hash);
	if ((rc = store_staff_boot(deps->st, hash, msg_now_ms(), err,
		 errlen)) == -1) {
		staff_free(s);
		return NULL;
	}
	if (rc == STAFF_BOOT_CREATED)
		log_info("staff_created id=1 name=Administrator role=admin "
			 "reason=\"first start: the daemon's API token is "
			 "its token\"");
	else if (rc == STAFF_BOOT_ROTATED)
		log_info("api_token_updated reason=\"the daemon's API token "
			 "changed; the old one no longer works\"");
	else if (rc == STAFF_BOOT_ATTACHED)
		log_info("api_token_attached reason=\"the daemon's API token "
			 "is now a token of the first enabled admin\"");
	else if (rc == STAFF_BOOT_REVOKED)
		log_warnx("api_token_revoked reason=\"the daemon's API token "
			  "was revoked through the API; set a new one to use "
			  "it again\"");
	http_route(deps->srv, HTTP_POST, "/api/v1/login", staff_login, s);
	http_route(deps->srv, HTTP_POST, "/api/v1/logout", staff_logout, s);
	http_route(deps->srv, HTTP_GET, "/api/v1/me", staff_me, s);
	staff_api_routes(s);
	http_set_reply_hook(deps->srv, staff_on_reply, s);
	return s;
}

void
staff_free(struct staff *s)
{
	struct staff_wait *w;
	char err[256];

	if (s == NULL)
		return;
	/* token reads still in flight answer 503 without s */
	while ((w = LIST_FIRST(&s->waits)) != NULL) {
		LIST_REMOVE(w, entry);
		w->s = NULL;
	}
	/* A check that finished during shutdown answers after a commit:
	 * run that now, while the HTTP server still lives. */
	workq_free(s->wq);
	if (store_flush(s->deps.st, err, sizeof(err)) == -1)
		log_warnx("staff_flush_failed error=\"%s\"", err);
	http_set_reply_hook(s->deps.srv, NULL, NULL);
	auth_limiter_free(s->by_account);
	auth_limiter_free(s->by_peer);
	free(s);
}

int
staff_role_of(const char *role)
{
	if (strcmp(role, "admin") == 0)
		return HTTP_ROLE_ADMIN;
	if (strcmp(role, "organizer") == 0)
		return HTTP_ROLE_ORGANIZER;
	return HTTP_ROLE_NONE;
}

void
staff_store_error(struct http_req *req, const char *what, const char *err)
{
	log_warnx("staff_store_failed what=%s error=\"%s\"", what, err);
	http_reply_error(req, 503, "unavailable", "store: %s", err);
}

/* ---- authorization ------------------------------------------------ */

/* The session cookie's value into sid: true if the request has one. */
static bool
staff_session_cookie(const struct http_req *req, char sid[AUTH_HEX_LEN])
{
	const char *h = http_header(req, "Cookie");

	return h != NULL && auth_cookie(h, STAFF_COOKIE, sid, AUTH_HEX_LEN);
}

static void
staff_fill(struct http_req *req, const struct staff_auth *a,
    enum http_auth_via via)
{
	req->auth.staff_id = a->staff_id;
	req->auth.role = staff_role_of(a->role);
	req->auth.via = via;
	req->auth.session_id = a->session_id;
}

static bool
staff_unauthorized(struct http_req *req, const char *why)
{
	http_add_header(req, "WWW-Authenticate", "Bearer realm=\"outreachd\"");
	http_reply_error(req, 401, "unauthorized", "%s", why);
	return false;
}

/* The value of hex digit c (lower case, as auth_sha256_hex() writes). */
static unsigned
staff_hex(char c)
{
	return c >= 'a' ? (unsigned)(c - 'a' + 10) : (unsigned)(c - '0');
}

/*
 * Changes with every write of a staff, token or session row this process
 * made: the store's count (SQLite), and staff_cache_drop()'s (PostgreSQL).
 */
static uint64_t
staff_generation(const struct staff *s)
{
	return store_staff_generation() + s->dropped;
}

void
staff_cache_drop(struct staff *s)
{
	s->dropped++;
}

/* The cache slot of 'hash', emptied first if a staff row changed. */
static struct staff_token_seen *
staff_slot(struct staff *s, const char *hash, bool session)
{
	uint64_t gen = staff_generation(s);
	unsigned i;

	if (gen != s->tokens_gen) {
		memset(s->tokens, 0, sizeof(s->tokens));
		memset(s->sessions, 0, sizeof(s->sessions));
		s->tokens_gen = gen;
	}
	/* the first byte of a SHA-256: evenly spread */
	i = (staff_hex(hash[0]) << 4 | staff_hex(hash[1])) % STAFF_TOKEN_SLOTS;
	return session ? &s->sessions[i] : &s->tokens[i];
}

static struct staff_token_seen *
staff_token_slot(struct staff *s, const char *hash)
{
	return staff_slot(s, hash, false);
}

/* Keeps answer a of a token's (or a session's) read made at 'now'. */
static void
staff_keep(struct staff *s, const char *hash, const struct staff_auth *a,
    int64_t now, bool session)
{
	struct staff_token_seen *t = staff_slot(s, hash, session);

	strlcpy(t->hash, hash, sizeof(t->hash));
	t->seen_at = now;
	t->staff_id = a->staff_id;
	strlcpy(t->role, a->role, sizeof(t->role));
	t->session_id = a->session_id;
	t->last_seen_at = a->last_seen_at;
}

static void
staff_token_keep(struct staff *s, const char *hash, const struct staff_auth *a,
    int64_t now)
{
	staff_keep(s, hash, a, now, false);
}

/* The token's read answered: authorize and run the handler again. */
static void
staff_token_answer(void *arg, int rc, const struct staff_auth *a,
    const char *error)
{
	struct staff_wait *w = arg;
	struct http_req *req = w->req;

	if (w->s != NULL) {
		LIST_REMOVE(w, entry);
		if (rc == 1 && w->gen == staff_generation(w->s))
			staff_token_keep(w->s, w->hash, a, w->sent_at);
	}
	if (w->s == NULL)
		http_reply_error(req, 503, "unavailable", "shutting down");
	else if (rc == -1)
		staff_store_error(req, "token", error);
	else if (rc == 0)
		(void)staff_unauthorized(req, "invalid API token");
	else {
		staff_fill(req, a, HTTP_AUTH_TOKEN);
		http_rerun(req);
	}
	free(w);
}

/*
 * The member holding the token whose SHA-256 is 'hash': 1 / 0 / -1 as
 * store_token_auth(), whose answers are kept while no staff or token row
 * changed (see the top of the file), and STAFF_TOKEN_KEEP_MS at most, for
 * a change made outside the daemon (an sqlite3 shell, another node).
 * Unknown tokens are not kept. 2: the read was sent (PostgreSQL) and
 * staff_token_answer() takes the request over.
 */
static int
staff_token_auth(struct staff *s, struct http_req *req, const char *hash,
    struct staff_auth *a, char *err, size_t errlen)
{
	struct staff_token_seen *t = staff_token_slot(s, hash);
	int64_t now = msg_now_ms();
	struct staff_wait *w;
	int rc;

	if (strcmp(t->hash, hash) == 0 &&
	    now - t->seen_at < STAFF_TOKEN_KEEP_MS) {
		memset(a, 0, sizeof(*a));
		a->staff_id = t->staff_id;
		strlcpy(a->role, t->role, sizeof(a->role));
		return 1;
	}
	if (store_backend(s->deps.st) == STORE_SQLITE) {
		if ((rc = store_token_auth(s->deps.st, hash, a, err, errlen)) ==
		    1)
			staff_token_keep(s, hash, a, now);
		return rc;
	}
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->req = req;
	strlcpy(w->hash, hash, sizeof(w->hash));
	w->gen = staff_generation(s);
	w->sent_at = now;
	if (store_token_auth_async(s->deps.st, hash, staff_token_answer, w, err,
		errlen) == -1) {
		free(w);
		return -1;
	}
	LIST_INSERT_HEAD(&s->waits, w, entry);
	return 2;
}

static bool staff_session_ok(struct staff *, struct http_req *, const char *,
    const struct staff_auth *);

/*
 * A session's read answered (PostgreSQL): kept, then as on SQLite (the
 * CSRF token, the touch) and the handler runs again.
 */
static void
staff_session_answer(void *arg, int rc, const struct staff_auth *a,
    const char *error)
{
	struct staff_wait *w = arg;
	struct http_req *req = w->req;
	char sid[AUTH_HEX_LEN];

	if (w->s != NULL) {
		LIST_REMOVE(w, entry);
		if (rc == 1 && w->gen == staff_generation(w->s))
			staff_keep(w->s, w->hash, a, w->sent_at, true);
	}
	if (w->s == NULL)
		http_reply_error(req, 503, "unavailable", "shutting down");
	else if (rc == -1)
		staff_store_error(req, "session", error);
	else if (rc == 0 || !staff_session_cookie(req, sid))
		(void)staff_unauthorized(req,
		    "the session expired or was logged out: log in again");
	else if (staff_session_ok(w->s, req, sid, a))
		http_rerun(req);
	free(w);
}

/*
 * The session 'hash' on PostgreSQL: from the kept answers (1, a filled)
 * or read outside the group (2: staff_session_answer() takes the request
 * over); -1 with err.
 */
static int
staff_session_pg(struct staff *s, struct http_req *req, const char *hash,
    struct staff_auth *a, char *err, size_t errlen)
{
	struct staff_token_seen *t = staff_slot(s, hash, true);
	int64_t now = msg_now_ms();
	struct staff_wait *w;

	if (strcmp(t->hash, hash) == 0 &&
	    now - t->seen_at < STAFF_TOKEN_KEEP_MS) {
		memset(a, 0, sizeof(*a));
		a->staff_id = t->staff_id;
		strlcpy(a->role, t->role, sizeof(a->role));
		a->session_id = t->session_id;
		a->last_seen_at = t->last_seen_at;
		return 1;
	}
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->req = req;
	strlcpy(w->hash, hash, sizeof(w->hash));
	w->gen = staff_generation(s);
	w->sent_at = now;
	if (store_session_auth_pg(s->deps.st,
		&(struct session_check){.hash = hash,
		    .now = now,
		    .idle_ms = s->idle_ms},
		staff_session_answer, w, err, errlen) == -1) {
		free(w);
		return -1;
	}
	LIST_INSERT_HEAD(&s->waits, w, entry);
	return 2;
}

/* Records a use of session a (idle expiry), at most every so often. */
static void
staff_session_touch(struct staff *s, const struct staff_auth *a,
    const char *sid)
{
	char hash[AUTH_HEX_LEN], err[256];
	struct staff_token_seen *t;
	int64_t now = msg_now_ms(), every;
	int rc;

	every =
	    s->idle_ms / 4 < STAFF_TOUCH_MS ? s->idle_ms / 4 : STAFF_TOUCH_MS;
	if (now - a->last_seen_at < every)
		return;
	if (store_backend(s->deps.st) == STORE_SQLITE)
		rc = store_session_touch(s->deps.st, a->session_id, now, err,
		    sizeof(err));
	else {
		rc = store_session_touch_pg(s->deps.st, a->session_id, now, err,
		    sizeof(err));
		/* the kept answer touched: not again before 'every' */
		auth_sha256_hex(sid, hash);
		t = staff_slot(s, hash, true);
		if (strcmp(t->hash, hash) == 0)
			t->last_seen_at = now;
	}
	if (rc == -1)
		log_warnx("session_touch_failed error=\"%s\"", err);
}

/* Through the session cookie sid: its CSRF token on writes, the touch. */
static bool
staff_by_session(struct staff *s, struct http_req *req, const char *sid)
{
	char hash[AUTH_HEX_LEN], err[256];
	struct staff_auth a;
	int rc;

	auth_sha256_hex(sid, hash);
	if (store_backend(s->deps.st) == STORE_SQLITE)
		rc = store_session_auth(s->deps.st, hash, msg_now_ms(),
		    s->idle_ms, &a, err, sizeof(err));
	else
		rc = staff_session_pg(s, req, hash, &a, err, sizeof(err));
	if (rc == -1) {
		staff_store_error(req, "session", err);
		return false;
	}
	if (rc == 0)
		return staff_unauthorized(req,
		    "the session expired or was logged out: log in again");
	if (rc == 2)
		return false; /* the request waits for the read */
	return staff_session_ok(s, req, sid, &a);
}

/* Session a is live: its CSRF token on writes, the touch, req->auth. */
static bool
staff_session_ok(struct staff *s, struct http_req *req, const char *sid,
    const struct staff_auth *a)
{
	char csrf[AUTH_HEX_LEN];
	const char *given;

	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		auth_csrf(sid, csrf);
		given = http_header(req, "X-CSRF-Token");
		if (given == NULL || !auth_equal(given, csrf)) {
			log_info("csrf_refused staff=%lld method=%s path=%s",
			    (long long)a->staff_id,
			    http_method_to_text(req->method), req->path);
			http_reply_error(req, 403, "csrf",
			    given == NULL ? "missing X-CSRF-Token header"
					  : "wrong X-CSRF-Token");
			return false;
		}
	}
	staff_session_touch(s, a, sid);
	staff_fill(req, a, HTTP_AUTH_SESSION);
	return true;
}

bool
staff_authorize(struct staff *s, struct http_req *req)
{
	const char *h = http_header(req, "Authorization");
	char hash[AUTH_HEX_LEN], sid[AUTH_HEX_LEN], err[256];
	struct staff_auth a;
	int rc;

	if (s == NULL) /* not set up (a harness without staff) */
		return staff_unauthorized(req, "no staff accounts");
	if (req->auth.staff_id != 0) /* a second pass: staff_token_answer() */
		return true;
	if (h != NULL) {
		if (strncasecmp(h, "Bearer ", 7) != 0)
			return staff_unauthorized(req,
			    "Authorization must be: Bearer <token>");
		auth_sha256_hex(h + 7, hash);
		rc = staff_token_auth(s, req, hash, &a, err, sizeof(err));
		if (rc == -1) {
			staff_store_error(req, "token", err);
			return false;
		}
		if (rc == 0)
			return staff_unauthorized(req, "invalid API token");
		if (rc == 2)
			return false; /* the request waits for the read */
		staff_fill(req, &a, HTTP_AUTH_TOKEN);
		return true;
	}
	if (staff_session_cookie(req, sid))
		return staff_by_session(s, req, sid);
	return staff_unauthorized(req,
	    "missing Authorization: Bearer <token> header");
}

/* ---- replies after commit ----------------------------------------- */

struct staff_pending {
	struct http_req *req;
	int code;
	json_t *obj;
};

static void
staff_on_commit(void *arg, bool ok)
{
	struct staff_pending *p = arg;

	if (!ok) {
		json_decref(p->obj);
		http_reply_error(p->req, 503, "unavailable",
		    "the store could not commit; nothing changed");
	} else if (p->obj != NULL)
		http_reply_json(p->req, p->code, p->obj);
	else
		http_reply(p->req, p->code, NULL, NULL, 0);
	free(p);
}

void
staff_reply_after_commit(struct staff *s, struct http_req *req, int code,
    json_t *obj)
{
	struct staff_pending *p = xcalloc(1, sizeof(*p));

	p->req = req;
	p->code = code;
	p->obj = obj;
	store_on_commit(s->deps.st, staff_on_commit, p);
}

/* ---- the worker: Argon2id off the loop ---------------------------- */

static void
staff_hash_run(void *arg)
{
	struct staff_hash_job *job = arg;
	char scratch[AUTH_HASH_MAX];

	if (job->verify && job->encoded[0] != '\0') {
		job->ok = true;
		job->match =
		    auth_password_verify(job->encoded, job->password) == 1;
	} else if (job->verify) {
		/* no account: the same work, never a match */
		job->ok = auth_password_hash(job->password, scratch,
			      sizeof(scratch), job->err, sizeof(job->err)) == 0;
		job->match = false;
	} else
		job->ok =
		    auth_password_hash(job->password, job->encoded,
			sizeof(job->encoded), job->err, sizeof(job->err)) == 0;
	OPENSSL_cleanse(job->password, sizeof(job->password));
}

static void
staff_hash_done(void *arg, bool cancelled)
{
	struct staff_hash_job *job = arg;

	job->done(job, cancelled);
}

void
staff_hash_submit(struct staff *s, struct staff_hash_job *job)
{
	/* a flood of logins waits in a bounded queue, then is refused */
	if (workq_pending(s->wq) >= STAFF_HASH_QUEUE_MAX) {
		log_warnx("login_busy pending=%u reason=\"password checks "
			  "queued; answering 503\"",
		    workq_pending(s->wq));
		snprintf(job->err, sizeof(job->err), "too many logins at once");
		job->done(job, true);
		return;
	}
	if (workq_submit(s->wq, staff_hash_run, staff_hash_done, job) == -1)
		job->done(job, true);
}

int
staff_password_check(const char *pw, char *err, size_t errlen)
{
	size_t n = strlen(pw);

	if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX) {
		snprintf(err, errlen, "password: %d to %d characters",
		    AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
		return -1;
	}
	return 0;
}

/* ---- login -------------------------------------------------------- */

/* The limiter keys of an attempt: the account (if any) and the peer. */
struct staff_keys {
	char account[STAFF_KEY_MAX];
	char peer[STAFF_KEY_MAX];
};

/* 429 with Retry-After if either key is locked out: true if answered. */
static bool
staff_locked(struct staff *s, struct http_req *req, const struct staff_keys *k)
{
	int64_t now = msg_now_ms(), w1 = 0, w2, w;
	char secs[24];

	if (k->account[0] != '\0')
		w1 = auth_limiter_wait(s->by_account, k->account, now);
	w2 = auth_limiter_wait(s->by_peer, k->peer, now);
	if ((w = w1 > w2 ? w1 : w2) == 0)
		return false;
	snprintf(secs, sizeof(secs), "%lld", (long long)((w + 999) / 1000));
	log_info("login_rate_limited %s peer=%s retry_after_s=%s",
	    w1 > 0 ? "by=account" : "by=address", k->peer + 5, secs);
	http_add_header(req, "Retry-After", secs);
	http_reply_error(req, 429, "rate_limited",
	    "too many failed logins: try again in %s seconds", secs);
	return true;
}

/*
 * The attempt's keys for the counts every node shares (PostgreSQL,
 * queue/store_logins_pg.c): the account's (if any) and the address's.
 */
static struct login_keys
staff_login_keys(const struct staff *s, const struct staff_keys *k, int64_t now)
{
	return (struct login_keys){
	    .key = {k->account[0] != '\0' ? k->account : NULL, k->peer},
	    .now = now,
	    .since = now - auth_limiter_memory(s->by_peer)};
}

/*
 * A failure added to the shared counts (old ones dropped once a minute):
 * 0 when it joined the group, -1 (logged) when it could not.
 */
static int
staff_login_failed_shared(struct staff *s, const struct staff_keys *k,
    int64_t now)
{
	struct login_keys lk = staff_login_keys(s, k, now);
	char err[256];

	if (store_login_failed_pg(s->deps.st, &lk, err, sizeof(err)) == -1) {
		log_warn("login_count_failed %s", err);
		return -1;
	}
	if (now - s->forgot_at >= 60000) {
		s->forgot_at = now;
		if (store_login_forget_pg(s->deps.st, &lk, err, sizeof(err)) ==
		    -1)
			log_warn("login_count_failed %s", err);
	}
	return 0;
}

static void
staff_login_refuse(struct http_req *req)
{
	http_reply_error(req, 401, "unauthorized",
	    "wrong email or password, or invalid token");
}

/*
 * The failure's count committed (or its group failed: the attempt is
 * still refused, its count is one lower): answered only now, so that the
 * client's next attempt, on any node, reads it.
 */
static void
staff_login_failed_committed(void *arg, bool ok)
{
	if (!ok)
		log_warn("login_count_failed the group did not commit");
	staff_login_refuse(arg);
}

/* A success: the account's count starts over, here and everywhere. */
static void
staff_login_cleared(struct staff *s, const struct staff_keys *k)
{
	char err[256];

	auth_limiter_clear(s->by_account, k->account);
	if (store_backend(s->deps.st) == STORE_SQLITE || k->account[0] == '\0')
		return;
	if (store_login_cleared_pg(s->deps.st, k->account, err, sizeof(err)) ==
	    -1)
		log_warn("login_count_failed %s", err);
}

static void
staff_login_failed(struct staff *s, struct http_req *req,
    const struct staff_keys *k)
{
	int64_t now = msg_now_ms();

	if (k->account[0] != '\0')
		auth_limiter_fail(s->by_account, k->account, now);
	auth_limiter_fail(s->by_peer, k->peer, now);
	log_info("login_failed peer=%s", k->peer + 5);
	if (store_backend(s->deps.st) != STORE_SQLITE &&
	    staff_login_failed_shared(s, k, now) == 0) {
		store_on_commit(s->deps.st, staff_login_failed_committed, req);
		return;
	}
	staff_login_refuse(req);
}

/* Starts a session of staff_id and answers it after commit. */
static void
staff_session_start(struct staff *s, struct http_req *req,
    const struct staff_auth *a, const char *via)
{
	char sid[AUTH_HEX_LEN], hash[AUTH_HEX_LEN], csrf[AUTH_HEX_LEN];
	char err[256], *cookie;
	int64_t now = msg_now_ms(), id;
	json_t *who;

	if (auth_random_hex(sid) == -1) {
		http_reply_error(req, 503, "unavailable", "no randomness");
		return;
	}
	auth_sha256_hex(sid, hash);
	auth_csrf(sid, csrf);
	if ((id = store_session_create(s->deps.st,
		 &(struct session_new){.staff_id = a->staff_id,
		     .id_hash = hash,
		     .via = via,
		     .peer = http_peer(req),
		     .now = now,
		     .expires_at = now + s->lifetime_ms},
		 err, sizeof(err))) == -1 ||
	    (who = store_staff_json(s->deps.st, a->staff_id, err,
		 sizeof(err))) == NULL) {
		staff_store_error(req, "login", err);
		return;
	}
	cookie = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict; "
			   "Max-Age=%lld%s",
	    STAFF_COOKIE, sid, (long long)(s->lifetime_ms / 1000),
	    s->secure ? "; Secure" : "");
	http_add_header(req, "Set-Cookie", cookie);
	http_add_header(req, "Cache-Control", "no-store");
	free(cookie);
	OPENSSL_cleanse(sid, sizeof(sid));
	staff_fill(req, a, HTTP_AUTH_SESSION);
	req->auth.session_id = id;
	log_info("login staff=%lld via=%s peer=%s", (long long)a->staff_id, via,
	    http_peer(req));
	staff_reply_after_commit(s, req, 200,
	    json_pack("{s:o, s:s}", "staff", who, "csrf", csrf));
}

/* A session being made on PostgreSQL: the cookie waits for the commit. */
struct staff_starting {
	struct staff *s;
	struct http_req *req;
	struct staff_keys *k; /* for a 401 */
	char sid[AUTH_HEX_LEN];
	char csrf[AUTH_HEX_LEN];
	char via[16];
};

static void staff_login_failed(struct staff *, struct http_req *,
    const struct staff_keys *);

/* The session's row committed (or not), with its member's. */
static void
staff_session_made(void *arg, const struct staff_done *d)
{
	struct staff_starting *p = arg;
	struct http_req *req = p->req;
	struct staff_auth a = {0};
	char *cookie;

	if (!d->ok)
		staff_store_error(req, "login",
		    d->error != NULL ? d->error : "the group failed");
	else if (!d->found) /* disabled while the hash ran */
		staff_login_failed(p->s, req, p->k);
	else {
		cookie = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict; "
				   "Max-Age=%lld%s",
		    STAFF_COOKIE, p->sid, (long long)(p->s->lifetime_ms / 1000),
		    p->s->secure ? "; Secure" : "");
		http_add_header(req, "Set-Cookie", cookie);
		http_add_header(req, "Cache-Control", "no-store");
		free(cookie);
		a.staff_id = json_integer_value(json_object_get(d->o, "id"));
		strlcpy(a.role, d->role, sizeof(a.role));
		a.session_id = d->id;
		staff_fill(req, &a, HTTP_AUTH_SESSION);
		log_info("login staff=%lld via=%s peer=%s",
		    (long long)a.staff_id, p->via, http_peer(req));
		http_reply_json(req, 200,
		    json_pack("{s:O, s:s}", "staff", d->o, "csrf", p->csrf));
	}
	OPENSSL_cleanse(p->sid, sizeof(p->sid));
	free(p->k);
	free(p);
}

/*
 * staff_session_start() on PostgreSQL: the session is written for an
 * enabled member only, in one statement; answered after the commit. k
 * is taken over.
 */
static void
staff_session_start_pg(struct staff *s, struct http_req *req,
    struct staff_keys *k, int64_t staff_id, const char *via)
{
	struct staff_starting *p = xcalloc(1, sizeof(*p));
	char hash[AUTH_HEX_LEN], err[256];
	int64_t now = msg_now_ms();

	p->s = s;
	p->req = req;
	p->k = k;
	strlcpy(p->via, via, sizeof(p->via));
	if (auth_random_hex(p->sid) == -1) {
		free(p->k);
		free(p);
		http_reply_error(req, 503, "unavailable", "no randomness");
		return;
	}
	auth_sha256_hex(p->sid, hash);
	auth_csrf(p->sid, p->csrf);
	if (store_session_create_pg(s->deps.st,
		&(struct session_new){.staff_id = staff_id,
		    .id_hash = hash,
		    .via = via,
		    .peer = http_peer(req),
		    .now = now,
		    .expires_at = now + s->lifetime_ms},
		staff_session_made, p, err, sizeof(err)) == -1) {
		OPENSSL_cleanse(p->sid, sizeof(p->sid));
		free(p->k);
		free(p);
		staff_store_error(req, "login", err);
	}
}

/* The password was checked on the worker. */
static void
staff_login_checked(struct staff_hash_job *job, bool cancelled)
{
	struct staff *s = job->s;
	struct staff_keys *k = job->arg;
	struct staff_auth a = {.staff_id = job->id};
	struct staff_row row;
	char err[256];
	int rc;

	if (cancelled || !job->ok) {
		http_reply_error(job->req, 503, "unavailable",
		    "cannot check the password now%s%s",
		    job->err[0] != '\0' ? ": " : "", job->err);
	} else if (!job->match || job->id == 0) {
		staff_login_failed(s, job->req, k);
	} else if (store_backend(s->deps.st) != STORE_SQLITE) {
		/* the session's insert checks the member is enabled */
		staff_login_cleared(s, k);
		staff_session_start_pg(s, job->req, k, job->id, "password");
		k = NULL;
	} else if ((rc = store_staff_get(s->deps.st, job->id, &row, err,
			sizeof(err))) != 1 ||
	    row.disabled) {
		/* disabled while the hash ran */
		if (rc == -1)
			staff_store_error(job->req, "login", err);
		else
			staff_login_failed(s, job->req, k);
	} else {
		staff_login_cleared(s, k);
		strlcpy(a.role, row.role, sizeof(a.role));
		staff_session_start(s, job->req, &a, "password");
	}
	free(k);
	free(job);
}

/* The email's row (PostgreSQL): the job goes to the worker. */
static void
staff_login_row(void *arg, int rc, const struct staff_row *row,
    const char *error)
{
	struct staff_wait *w = arg;
	struct staff_hash_job *job = w->job;

	if (staff_wait_done(w) == NULL) {
		OPENSSL_cleanse(job->password, sizeof(job->password));
		free(job->arg);
		free(job);
		return;
	}
	if (rc == -1) {
		staff_store_error(job->req, "login", error);
		OPENSSL_cleanse(job->password, sizeof(job->password));
		free(job->arg);
		free(job);
		return;
	}
	if (rc == 1 && !row->disabled && row->password_hash[0] != '\0') {
		job->id = row->id;
		strlcpy(job->encoded, row->password_hash, sizeof(job->encoded));
	}
	staff_hash_submit(job->s, job);
}

/* {"email", "password"} on PostgreSQL: the row is read, then as below. */
static void
staff_login_password_pg(struct staff *s, struct http_req *req,
    struct staff_keys *k, const char *email, const char *pw)
{
	struct staff_hash_job *job = xcalloc(1, sizeof(*job));
	struct staff_wait *w;
	char err[256];

	job->s = s;
	job->req = req;
	job->verify = true;
	job->arg = k;
	job->done = staff_login_checked;
	strlcpy(job->password, pw, sizeof(job->password));
	w = staff_wait_login(s, req, job);
	if (store_staff_by_email_pg(s->deps.st, email, staff_login_row, w, err,
		sizeof(err)) == -1) {
		LIST_REMOVE(w, entry);
		free(w);
		OPENSSL_cleanse(job->password, sizeof(job->password));
		free(job);
		free(k);
		staff_store_error(req, "login", err);
	}
}

/* {"email", "password"}: the hash check goes to the worker. */
static void
staff_login_password(struct staff *s, struct http_req *req,
    struct staff_keys *k, const char *email, const char *pw)
{
	struct staff_hash_job *job;
	struct staff_row row;
	char err[256];
	int rc;

	if (store_backend(s->deps.st) != STORE_SQLITE) {
		staff_login_password_pg(s, req, k, email, pw);
		return;
	}
	if ((rc = store_staff_by_email(s->deps.st, email, &row, err,
		 sizeof(err))) == -1) {
		staff_store_error(req, "login", err);
		free(k);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->req = req;
	job->verify = true;
	job->arg = k;
	job->done = staff_login_checked;
	strlcpy(job->password, pw, sizeof(job->password));
	if (rc == 1 && !row.disabled && row.password_hash[0] != '\0') {
		job->id = row.id;
		strlcpy(job->encoded, row.password_hash, sizeof(job->encoded));
	}
	OPENSSL_cleanse(row.password_hash, sizeof(row.password_hash));
	staff_hash_submit(s, job);
}

/* A token login's read (PostgreSQL). */
struct staff_login_tok {
	struct staff *s;
	struct http_req *req;
	struct staff_keys *k;
};

static void
staff_login_token_answer(void *arg, int rc, const struct staff_auth *a,
    const char *error)
{
	struct staff_wait *w = arg;
	struct staff_login_tok *t = w->job;

	if (staff_wait_done(w) == NULL) {
		free(t->k);
		free(t);
		return;
	}
	if (rc == -1)
		staff_store_error(t->req, "login", error);
	else if (rc == 0)
		staff_login_failed(t->s, t->req, t->k);
	else {
		staff_session_start_pg(t->s, t->req, t->k, a->staff_id,
		    "token");
		t->k = NULL;
	}
	free(t->k);
	free(t);
}

/* {"token"}: one read. */
static void
staff_login_token(struct staff *s, struct http_req *req, struct staff_keys *k,
    const char *token)
{
	char hash[AUTH_HEX_LEN], err[256];
	struct staff_login_tok *t;
	struct staff_wait *w;
	struct staff_auth a;
	int rc;

	auth_sha256_hex(token, hash);
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		t = xcalloc(1, sizeof(*t));
		t->s = s;
		t->req = req;
		t->k = k;
		w = staff_wait_login(s, req, t);
		if (store_token_auth_async(s->deps.st, hash,
			staff_login_token_answer, w, err, sizeof(err)) == -1) {
			LIST_REMOVE(w, entry);
			free(w);
			free(t);
			free(k);
			staff_store_error(req, "login", err);
		}
		return;
	}
	rc = store_token_auth(s->deps.st, hash, &a, err, sizeof(err));
	if (rc == -1)
		staff_store_error(req, "login", err);
	else if (rc == 0)
		staff_login_failed(s, req, k);
	else
		staff_session_start(s, req, &a, "token");
	free(k);
}

/*
 * Answers a locked-out attempt 429, and one whose password is too long to
 * be anyone's 401: true if it answered.
 */
static bool
staff_login_refused(struct staff *s, struct http_req *req,
    const struct staff_keys *k, const char *pw)
{
	if (staff_locked(s, req, k))
		return true;
	if (pw != NULL && strlen(pw) > AUTH_PASSWORD_MAX) {
		staff_login_failed(s, req, k);
		return true;
	}
	return false;
}

/* Lowercases the email into k->account ("account:EMAIL"). */
static void
staff_account_key(struct staff_keys *k, const char *email)
{
	char *p;

	snprintf(k->account, sizeof(k->account), "account:%s", email);
	for (p = k->account; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* The attempt k of the login request's object o (read, not kept). */
static void
staff_login_try(struct staff *s, struct http_req *req, struct staff_keys *k,
    json_t *o)
{
	const char *pw = json_string_value(json_object_get(o, "password"));
	const char *token = json_string_value(json_object_get(o, "token"));

	if (staff_login_refused(s, req, k, pw)) {
		free(k);
		return;
	}
	if (token != NULL)
		staff_login_token(s, req, k, token);
	else
		staff_login_password(s, req, k, k->account + 8, pw);
}

/*
 * The attempt's keys as every node counted them: the database's rows are
 * the count (each failure here was written there before it was answered;
 * a success on another node deleted its account's row), so a key without
 * a row has none.
 */
static void
staff_login_counted(struct staff *s, const struct staff_keys *k,
    const struct login_count *c, size_t n)
{
	struct login_count none = {.failures = 0};
	const struct login_count *acc = &none, *peer = &none;
	int64_t now = msg_now_ms();
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(c[i].key, k->peer) == 0)
			peer = &c[i];
		else if (strcmp(c[i].key, k->account) == 0)
			acc = &c[i];
	}
	auth_limiter_set(s->by_peer, k->peer, peer->failures, peer->last_fail,
	    now);
	if (k->account[0] != '\0')
		auth_limiter_set(s->by_account, k->account, acc->failures,
		    acc->last_fail, now);
}

/* A login waiting for the counts every node shares (PostgreSQL). */
struct staff_login_pend {
	struct staff *s;
	struct staff_keys *k;
	json_t *o; /* the request's object */
};

static void
staff_login_counts(void *arg, const struct login_count *c, size_t n,
    const char *error)
{
	struct staff_wait *w = arg;
	struct http_req *req = w->req;
	struct staff_login_pend *p = w->job;

	if (staff_wait_done(w) == NULL)
		goto done; /* answered 503: shutting down */
	if (error != NULL) {
		staff_store_error(req, "login", error);
		goto done;
	}
	staff_login_counted(p->s, p->k, c, n);
	staff_login_try(p->s, req, p->k, p->o);
	p->k = NULL;
done:
	free(p->k);
	json_decref(p->o);
	free(p);
}

/*
 * On PostgreSQL the attempt's failures on every node are read first and
 * set in this node's limiter, which then decides as on SQLite.
 */
static void
staff_login_shared(struct staff *s, struct http_req *req, struct staff_keys *k,
    json_t *o)
{
	struct staff_login_pend *p = xcalloc(1, sizeof(*p));
	struct login_keys lk = staff_login_keys(s, k, msg_now_ms());
	struct staff_wait *w;
	char err[256];

	p->s = s;
	p->k = k;
	p->o = json_incref(o);
	w = staff_wait_login(s, req, p);
	if (store_login_counts_pg(s->deps.st, &lk, staff_login_counts, w, err,
		sizeof(err)) == -1) {
		LIST_REMOVE(w, entry);
		free(w);
		free(k);
		json_decref(o);
		free(p);
		staff_store_error(req, "login", err);
	}
}

static void
staff_login(struct http_req *req, void *arg)
{
	static const char *const known[] = {"email", "password", "token", NULL};
	struct staff *s = arg;
	struct staff_keys *k;
	const char *email, *pw, *token;
	char err[256];
	json_t *o;

	if (api_is_stopping(s->deps.api)) {
		http_reply_error(req, 503, "unavailable", "shutting down");
		return;
	}
	if ((o = api_read_object(req)) == NULL)
		return;
	email = json_string_value(json_object_get(o, "email"));
	pw = json_string_value(json_object_get(o, "password"));
	token = json_string_value(json_object_get(o, "token"));
	err[0] = '\0';
	if (api_check_fields(o, known, err, sizeof(err)) == -1 ||
	    ((token == NULL) == (email == NULL || pw == NULL)) ||
	    (token != NULL && (email != NULL || pw != NULL))) {
		json_decref(o);
		http_reply_error(req, 422, "invalid", "%s",
		    err[0] != '\0' ? err
				   : "give {\"email\", \"password\"} or "
				     "{\"token\"} (strings)");
		return;
	}
	k = xcalloc(1, sizeof(*k));
	snprintf(k->peer, sizeof(k->peer), "peer:%s", http_peer(req));
	if (email != NULL)
		staff_account_key(k, email);
	if (store_backend(s->deps.st) != STORE_SQLITE)
		staff_login_shared(s, req, k, o);
	else
		staff_login_try(s, req, k, o);
	json_decref(o);
}

/* ---- logout, me ------------------------------------------------------- */

/* The logout's revoke committed (PostgreSQL). */
static void
staff_logged_out(void *arg, const struct staff_done *d)
{
	struct staff_login_tok *t = arg;
	char *cookie;

	staff_cache_drop(t->s);
	if (!d->ok)
		staff_store_error(t->req, "logout",
		    d->error != NULL ? d->error : "the group failed");
	else {
		cookie = xasprintf("%s=; Path=/; HttpOnly; SameSite=Strict; "
				   "Max-Age=0%s",
		    STAFF_COOKIE, t->s->secure ? "; Secure" : "");
		http_add_header(t->req, "Set-Cookie", cookie);
		free(cookie);
		log_info("logout staff=%lld", (long long)t->req->auth.staff_id);
		http_reply(t->req, 204, NULL, NULL, 0);
	}
	free(t);
}

static void
staff_logout(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	struct staff_login_tok *t;
	char err[256], *cookie;

	if (!api_authorized(s->deps.api, req))
		return;
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		t = xcalloc(1, sizeof(*t));
		t->s = s;
		t->req = req;
		/* a token's logout writes nothing: answered at once */
		if (req->auth.via != HTTP_AUTH_SESSION) {
			staff_logged_out(t, &(struct staff_done){.ok = true});
			return;
		}
		staff_cache_drop(s);
		if (store_session_revoke_pg(s->deps.st,
			&(struct session_revoke){.id = req->auth.session_id,
			    .now = msg_now_ms(),
			    .idle_ms = s->idle_ms},
			staff_logged_out, t, err, sizeof(err)) == -1) {
			free(t);
			staff_store_error(req, "logout", err);
		}
		return;
	}
	if (req->auth.via == HTTP_AUTH_SESSION &&
	    store_session_revoke(s->deps.st, req->auth.session_id, msg_now_ms(),
		err, sizeof(err)) == -1) {
		staff_store_error(req, "logout", err);
		return;
	}
	cookie = xasprintf("%s=; Path=/; HttpOnly; SameSite=Strict; "
			   "Max-Age=0%s",
	    STAFF_COOKIE, s->secure ? "; Secure" : "");
	http_add_header(req, "Set-Cookie", cookie);
	free(cookie);
	log_info("logout staff=%lld", (long long)req->auth.staff_id);
	staff_reply_after_commit(s, req, 204, NULL);
}

/* Answers /me with who (consumed). */
static void
staff_me_reply(struct http_req *req, json_t *who)
{
	char sid[AUTH_HEX_LEN], csrf[AUTH_HEX_LEN];

	if (req->auth.via == HTTP_AUTH_SESSION &&
	    staff_session_cookie(req, sid)) {
		auth_csrf(sid, csrf);
		http_reply_json(req, 200,
		    json_pack("{s:o, s:s}", "staff", who, "csrf", csrf));
	} else
		http_reply_json(req, 200,
		    json_pack("{s:o, s:n}", "staff", who, "csrf"));
}

/* The member's row read (PostgreSQL). */
static void
staff_me_answer(void *arg, json_t *o, const char *error)
{
	struct http_req *req = arg;

	if (o == NULL)
		staff_store_error(req, "me",
		    error != NULL ? error : "no such staff member");
	else
		staff_me_reply(req, o);
}

static void
staff_me(struct http_req *req, void *arg)
{
	struct staff *s = arg;
	char err[256];
	json_t *who;

	if (!api_authorized(s->deps.api, req))
		return;
	if (store_backend(s->deps.st) != STORE_SQLITE) {
		if (store_staff_json_pg(s->deps.st, req->auth.staff_id,
			staff_me_answer, req, err, sizeof(err)) == -1)
			staff_store_error(req, "me", err);
		return;
	}
	if ((who = store_staff_json(s->deps.st, req->auth.staff_id, err,
		 sizeof(err))) == NULL) {
		staff_store_error(req, "me", err);
		return;
	}
	staff_me_reply(req, who);
}

/* A read answered as JSON (PostgreSQL, staff-internal.h). */
struct staff_read {
	struct http_req *req;
	const char *what;
	const char *wrap;
};

void *
staff_read_new(struct http_req *req, const char *what, const char *wrap)
{
	struct staff_read *r = xcalloc(1, sizeof(*r));

	r->req = req;
	r->what = what;
	r->wrap = wrap;
	return r;
}

void
staff_read_answer(void *arg, json_t *o, const char *error)
{
	struct staff_read *r = arg;

	if (error != NULL)
		staff_store_error(r->req, r->what, error);
	else if (o == NULL)
		http_reply_error(r->req, 404, "not_found", "no %s '%s'",
		    r->what,
		    r->req->params[0] != NULL ? r->req->params[0] : "");
	else if (r->wrap != NULL)
		http_reply_json(r->req, 200, json_pack("{s:o}", r->wrap, o));
	else
		http_reply_json(r->req, 200, o);
	free(r);
}

/* ---- the audit log -------------------------------------------------- */

/*
 * The audit row's detail as JSON: {"status":N,"via":"token"[,"location":
 * "/api/v1/..."]}. Printed directly when the location needs no escape
 * (it is a path the handler built: every reply of a new message has
 * one), else through jansson. Free with free().
 */
static char *
staff_audit_detail(const struct http_req *req, int code)
{
	const char *via =
	    req->auth.via == HTTP_AUTH_SESSION ? "session" : "token";
	const char *loc = http_reply_header(req, "Location"), *p;
	char buf[256];
	json_t *d;
	char *detail;

	for (p = loc;
	     p != NULL && *p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\';
	     p++)
		;
	if (loc == NULL || (*p == '\0' && strlen(loc) < 128)) {
		if (loc == NULL)
			snprintf(buf, sizeof(buf),
			    "{\"status\":%d,\"via\":\"%s\"}", code, via);
		else
			snprintf(buf, sizeof(buf),
			    "{\"status\":%d,\"via\":\"%s\",\"location\":\"%s\"}",
			    code, via, loc);
		return xstrdup(buf);
	}
	d = json_pack("{s:i, s:s, s:s}", "status", code, "via", via, "location",
	    loc);
	detail = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return detail;
}

/*
 * Every successful change under /api/v1 by a staff member: one row. It
 * joins the next group (the change itself committed before its reply).
 */
static void
staff_on_reply(void *arg, const struct http_req *req, int code)
{
	struct staff *s = arg;
	char action[160], err[256];
	char *detail;

	if (req->auth.staff_id == 0 || code < 200 || code > 299 ||
	    req->method == HTTP_GET || req->method == HTTP_HEAD ||
	    req->path == NULL || strncmp(req->path, "/api/v1/", 8) != 0)
		return;
	snprintf(action, sizeof(action), "%s %s",
	    http_method_to_text(req->method), req->route);
	detail = staff_audit_detail(req, code);
	if (store_audit_append(s->deps.st,
		&(struct audit_entry){.staff_id = req->auth.staff_id,
		    .action = action,
		    .target = req->path,
		    .detail = detail,
		    .now = msg_now_ms()},
		err, sizeof(err)) == -1)
		log_warnx("audit_failed action=\"%s\" staff=%lld error=\"%s\"",
		    action, (long long)req->auth.staff_id, err);
	free(detail);
}
