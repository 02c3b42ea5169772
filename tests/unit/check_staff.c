/*
 * check_staff.c - unit tests of staff authentication: Argon2id password
 * hashes (daemon/auth.c), session ids and their CSRF tokens, the cookie
 * parser, the login limiter, and the stored side (queue/store_staff.c):
 * the daemon token's bootstrap, rotation and revocation, staff writes and
 * email conflicts, token and session checks (revoked, disabled, idle,
 * expired), the live-session list and owner lookup, and the audit
 * log's pages.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <sqlite3.h>

#include "auth.h"
#include "check_suites.h"
#include "check_util.h"
#include "store-internal.h"
#include "store_staff.h"

#define S_T0 INT64_C(1795749274123)

static char s_dir[64];
static struct store *s_st;
static char s_err[512];

static void
s_setup(void)
{
	char path[128];

	snprintf(s_dir, sizeof(s_dir), "/tmp/check_staff.XXXXXX");
	if (mkdtemp(s_dir) == NULL)
		ck_abort_msg("mkdtemp %s failed", s_dir);
	snprintf(path, sizeof(path), "%s/outreachd.db", s_dir);
	s_st = store_open(path, s_err, sizeof(s_err));
	ck_assert_msg(s_st != NULL, "store_open: %s", s_err);
}

static void
s_teardown(void)
{
	store_close(s_st);
	s_st = NULL;
	cku_rmtree(s_dir);
}

/* ---- auth.c ----------------------------------------------------------- */

START_TEST(test_password_hash_and_verify)
{
	char a[AUTH_HASH_MAX], b[AUTH_HASH_MAX], err[128];

	ck_assert_int_eq(auth_password_hash("hunter2 hunter2", a, sizeof(a),
			     err, sizeof(err)),
	    0);
	ck_assert_msg(strncmp(a, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0,
	    "%s", a);
	ck_assert_int_eq(auth_password_verify(a, "hunter2 hunter2"), 1);
	ck_assert_int_eq(auth_password_verify(a, "hunter2 hunter3"), 0);
	ck_assert_int_eq(auth_password_verify(a, ""), 0);
	/* a fresh salt each time */
	ck_assert_int_eq(auth_password_hash("hunter2 hunter2", b, sizeof(b),
			     err, sizeof(err)),
	    0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(auth_password_verify(b, "hunter2 hunter2"), 1);
	/* not an Argon2id hash: never a match */
	ck_assert_int_eq(auth_password_verify("", "x"), -1);
	ck_assert_int_eq(auth_password_verify("plain", "plain"), -1);
	ck_assert_int_eq(auth_password_verify("$argon2i$v=19$m=8,t=1,p=1$"
					      "c2FsdHNhbHQ$aGFzaA",
			     "x"),
	    -1);
	/* too small a buffer fails cleanly */
	ck_assert_int_eq(auth_password_hash("x", a, 20, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_secrets_and_csrf)
{
	char a[AUTH_HEX_LEN], b[AUTH_HEX_LEN], h[AUTH_HEX_LEN],
	    c1[AUTH_HEX_LEN], c2[AUTH_HEX_LEN];

	ck_assert_int_eq(auth_random_hex(a), 0);
	ck_assert_int_eq(auth_random_hex(b), 0);
	ck_assert_uint_eq(strlen(a), 64);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
	ck_assert_str_ne(a, b);
	auth_sha256_hex("abc", h);
	ck_assert_str_eq(h,
	    "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	/* the CSRF token: fixed per session, not its hash, not another's */
	auth_csrf(a, c1);
	auth_csrf(a, c2);
	ck_assert_str_eq(c1, c2);
	auth_sha256_hex(a, h);
	ck_assert_str_ne(c1, h);
	auth_csrf(b, c2);
	ck_assert_str_ne(c1, c2);
	ck_assert(auth_equal(c1, c1));
	ck_assert(!auth_equal(c1, c2));
	ck_assert(!auth_equal("abc", "abcd"));
	ck_assert(auth_equal("", ""));
}
END_TEST

START_TEST(test_cookie)
{
	char v[AUTH_HEX_LEN];

	ck_assert(auth_cookie("od_session=abc123", "od_session", v, sizeof(v)));
	ck_assert_str_eq(v, "abc123");
	ck_assert(auth_cookie("theme=dark; od_session=f00d; lang=en",
	    "od_session", v, sizeof(v)));
	ck_assert_str_eq(v, "f00d");
	ck_assert(!auth_cookie("xod_session=abc", "od_session", v, sizeof(v)));
	ck_assert(!auth_cookie("od_sessionx=abc", "od_session", v, sizeof(v)));
	ck_assert(!auth_cookie("od_session=", "od_session", v, sizeof(v)));
	ck_assert(!auth_cookie("od_session=a\"b", "od_session", v, sizeof(v)));
	ck_assert(!auth_cookie("", "od_session", v, sizeof(v)));
	ck_assert(!auth_cookie("od_session=abcdef", "od_session", v, 4));
}
END_TEST

START_TEST(test_limiter)
{
	struct auth_limiter *l =
	    auth_limiter_new(&(struct auth_limit_conf){.threshold = 3,
		.lock_ms = 1000,
		.max_ms = 5000,
		.forget_ms = 60000});
	int64_t t = S_T0;

	ck_assert_int_eq(auth_limiter_wait(l, "a", t), 0);
	auth_limiter_fail(l, "a", t);
	auth_limiter_fail(l, "a", t);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t), 0);
	auth_limiter_fail(l, "a", t);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t), 1000);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 400), 600);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 1000), 0);
	ck_assert_int_eq(auth_limiter_wait(l, "b", t), 0);
	/* each further failure doubles the lockout, up to max_ms */
	auth_limiter_fail(l, "a", t + 1000);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 1000), 2000);
	auth_limiter_fail(l, "a", t + 1000);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 1000), 4000);
	auth_limiter_fail(l, "a", t + 1000);
	auth_limiter_fail(l, "a", t + 1000);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 1000), 5000);
	/* a success starts over */
	auth_limiter_clear(l, "a");
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 1000), 0);
	/* old failures are forgotten */
	auth_limiter_fail(l, "c", t);
	auth_limiter_fail(l, "c", t);
	auth_limiter_fail(l, "c", t);
	ck_assert_int_gt(auth_limiter_wait(l, "c", t), 0);
	ck_assert_int_eq(auth_limiter_wait(l, "c", t + 70000), 0);
	auth_limiter_fail(l, "c", t + 70000);
	ck_assert_int_eq(auth_limiter_wait(l, "c", t + 70000), 0);
	auth_limiter_free(l);
}
END_TEST

/* The shared store's count replaces the slot's (PostgreSQL, staff.c). */
START_TEST(test_limiter_set)
{
	struct auth_limiter *l =
	    auth_limiter_new(&(struct auth_limit_conf){.threshold = 3,
		.lock_ms = 1000,
		.max_ms = 5000,
		.forget_ms = 60000});
	int64_t t = S_T0;

	ck_assert_int_eq(auth_limiter_memory(l), 65000);
	/* failures made on other nodes lock a key this node never saw */
	auth_limiter_set(l, "a", 3, t, t + 100);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 100), 900);
	auth_limiter_set(l, "a", 4, t + 100, t + 100);
	ck_assert_int_eq(auth_limiter_wait(l, "a", t + 100), 2000);
	/* a lower count is taken too: a success elsewhere cleared it */
	auth_limiter_fail(l, "b", t);
	auth_limiter_fail(l, "b", t);
	auth_limiter_fail(l, "b", t);
	ck_assert_int_gt(auth_limiter_wait(l, "b", t), 0);
	auth_limiter_set(l, "b", 0, 0, t);
	ck_assert_int_eq(auth_limiter_wait(l, "b", t), 0);
	auth_limiter_fail(l, "b", t);
	auth_limiter_fail(l, "b", t);
	ck_assert_int_eq(auth_limiter_wait(l, "b", t), 0);
	/* a count past the memory is none */
	auth_limiter_set(l, "c", 9, t, t + 65001);
	ck_assert_int_eq(auth_limiter_wait(l, "c", t + 65001), 0);
	auth_limiter_free(l);
}
END_TEST

START_TEST(test_limiter_full)
{
	struct auth_limiter *l =
	    auth_limiter_new(&(struct auth_limit_conf){.threshold = 1,
		.lock_ms = 1000,
		.max_ms = 1000,
		.forget_ms = 60000});
	char key[32];
	int i;

	/* the oldest failure goes when every slot is taken */
	auth_limiter_fail(l, "first", S_T0);
	for (i = 0; i < AUTH_LIMIT_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		auth_limiter_fail(l, key, S_T0 + 1 + i);
	}
	ck_assert_int_eq(auth_limiter_wait(l, "first", S_T0 + 1), 0);
	ck_assert_int_gt(auth_limiter_wait(l, "k5", S_T0 + 10), 0);
	auth_limiter_free(l);
}
END_TEST

/* ---- store_staff.c ---------------------------------------------------- */

static int64_t
s_int(const char *sql)
{
	sqlite3_stmt *q;
	int64_t v = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(store_db(s_st), sql, -1, &q, NULL),
	    SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

START_TEST(test_bootstrap)
{
	char h1[AUTH_HEX_LEN], h2[AUTH_HEX_LEN];
	struct staff_auth a;
	struct staff_row r;

	auth_sha256_hex("first-token", h1);
	auth_sha256_hex("second-token", h2);
	ck_assert_int_eq(
	    store_staff_bootstrap(s_st, h1, S_T0, s_err, sizeof(s_err)),
	    STAFF_BOOT_CREATED);
	ck_assert_int_eq(store_staff_get(s_st, 1, &r, s_err, sizeof(s_err)), 1);
	ck_assert_str_eq(r.name, "Administrator");
	ck_assert_str_eq(r.role, "admin");
	ck_assert_str_eq(r.password_hash, "");
	ck_assert_int_eq(store_token_auth(s_st, h1, &a, s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(a.staff_id, 1);
	ck_assert_str_eq(a.role, "admin");
	/* again: nothing to do */
	ck_assert_int_eq(
	    store_staff_bootstrap(s_st, h1, S_T0, s_err, sizeof(s_err)),
	    STAFF_BOOT_KEPT);
	ck_assert_int_eq(s_int("SELECT count(*) FROM api_tokens"), 1);
	/* a new token value replaces the old */
	ck_assert_int_eq(
	    store_staff_bootstrap(s_st, h2, S_T0, s_err, sizeof(s_err)),
	    STAFF_BOOT_ROTATED);
	ck_assert_int_eq(store_token_auth(s_st, h1, &a, s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_token_auth(s_st, h2, &a, s_err, sizeof(s_err)),
	    1);
	/* revoked stays revoked while the value is the same */
	ck_assert_int_eq(
	    store_token_revoke(s_st, 1, S_T0, s_err, sizeof(s_err)), 1);
	ck_assert_int_eq(
	    store_token_revoke(s_st, 1, S_T0, s_err, sizeof(s_err)), 0);
	ck_assert_int_eq(
	    store_staff_bootstrap(s_st, h2, S_T0, s_err, sizeof(s_err)),
	    STAFF_BOOT_REVOKED);
	ck_assert_int_eq(store_token_auth(s_st, h2, &a, s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(s_int("SELECT count(*) FROM staff"), 1);
}
END_TEST

START_TEST(test_bootstrap_attaches_to_first_admin)
{
	char h[AUTH_HEX_LEN];
	struct staff_auth a;
	int64_t id;

	id = store_staff_create(s_st,
	    &(struct staff_new){.name = "Org",
		.email = "o@example.org",
		.role = "organizer",
		.now = S_T0},
	    s_err, sizeof(s_err));
	ck_assert_int_eq(id, 1);
	id = store_staff_create(s_st,
	    &(struct staff_new){.name = "Adm",
		.email = "a@example.org",
		.role = "admin",
		.now = S_T0},
	    s_err, sizeof(s_err));
	auth_sha256_hex("tok", h);
	ck_assert_int_eq(
	    store_staff_bootstrap(s_st, h, S_T0, s_err, sizeof(s_err)),
	    STAFF_BOOT_ATTACHED);
	ck_assert_int_eq(store_token_auth(s_st, h, &a, s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(a.staff_id, id);
}
END_TEST

START_TEST(test_staff_writes)
{
	struct staff_row r;
	char h[AUTH_HEX_LEN];
	struct staff_auth a;
	int64_t id, sid;
	json_t *o;

	id = store_staff_create(s_st,
	    &(struct staff_new){.name = "Ana",
		.email = "ana@example.org",
		.role = "organizer",
		.password_hash = "$argon2id$x",
		.now = S_T0},
	    s_err, sizeof(s_err));
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(store_staff_create(s_st,
			     &(struct staff_new){.name = "Other",
				 .email = "ana@example.org",
				 .role = "admin",
				 .now = S_T0},
			     s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_staff_by_email(s_st, "ana@example.org", &r,
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(r.id, id);
	ck_assert_str_eq(r.password_hash, "$argon2id$x");
	ck_assert_int_eq(store_staff_by_email(s_st, "bob@example.org", &r,
			     s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_staff_admins(s_st, 0, s_err, sizeof(s_err)), 0);
	/* a token and a session, then disabled: both stop */
	auth_sha256_hex("t", h);
	ck_assert_int_gt(
	    store_token_create(s_st, id, "t", h, S_T0, s_err, sizeof(s_err)),
	    0);
	sid = store_session_create(s_st,
	    &(struct session_new){.staff_id = id,
		.id_hash = "s1",
		.via = "password",
		.peer = "127.0.0.1",
		.now = S_T0,
		.expires_at = S_T0 + 100000},
	    s_err, sizeof(s_err));
	ck_assert_int_gt(sid, 0);
	ck_assert_int_eq(store_session_auth(s_st, "s1", S_T0 + 1, 1000, &a,
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(a.session_id, sid);
	ck_assert_int_eq(a.staff_id, id);
	ck_assert_int_eq(store_staff_update(s_st, id,
			     &(struct staff_patch){.set_disabled = true,
				 .disabled = true,
				 .set_name = true,
				 .name = "Ana B.",
				 .now = S_T0 + 2},
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(store_token_auth(s_st, h, &a, s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_session_auth(s_st, "s1", S_T0 + 3, 1000, &a,
			     s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(s_int("SELECT count(*) FROM api_tokens WHERE "
			       "revoked_at IS NULL"),
	    0);
	ck_assert_int_eq(s_int("SELECT count(*) FROM sessions WHERE "
			       "revoked_at IS NULL"),
	    0);
	o = store_staff_json(s_st, id, s_err, sizeof(s_err));
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "name")),
	    "Ana B.");
	ck_assert(json_is_true(json_object_get(o, "disabled")));
	ck_assert(json_is_true(json_object_get(o, "has_password")));
	json_decref(o);
	ck_assert_ptr_null(store_staff_json(s_st, 99, s_err, sizeof(s_err)));
	ck_assert_str_eq(s_err, "");
	ck_assert_int_eq(
	    store_staff_update(s_st, 99,
		&(struct staff_patch){.set_name = true, .name = "X"}, s_err,
		sizeof(s_err)),
	    0);
}
END_TEST

START_TEST(test_session_expiry)
{
	struct staff_auth a;
	int64_t sid;

	ck_assert_int_gt(store_staff_create(s_st,
			     &(struct staff_new){.name = "A",
				 .email = "a@example.org",
				 .role = "admin",
				 .now = S_T0},
			     s_err, sizeof(s_err)),
	    0);
	sid = store_session_create(s_st,
	    &(struct session_new){.staff_id = 1,
		.id_hash = "h",
		.via = "token",
		.now = S_T0,
		.expires_at = S_T0 + 10000},
	    s_err, sizeof(s_err));
	/* idle: 3 s since the last use */
	ck_assert_int_eq(store_session_auth(s_st, "h", S_T0 + 2999, 3000, &a,
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(store_session_auth(s_st, "h", S_T0 + 3000, 3000, &a,
			     s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(
	    store_session_touch(s_st, sid, S_T0 + 2000, s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_session_auth(s_st, "h", S_T0 + 4000, 3000, &a,
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(a.last_seen_at, S_T0 + 2000);
	/* absolute end, however recently used */
	ck_assert_int_eq(
	    store_session_touch(s_st, sid, S_T0 + 9999, s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_session_auth(s_st, "h", S_T0 + 10000, 3000, &a,
			     s_err, sizeof(s_err)),
	    0);
	/* revoked */
	ck_assert_int_eq(
	    store_session_revoke(s_st, sid, S_T0, s_err, sizeof(s_err)), 0);
	ck_assert_int_eq(store_session_auth(s_st, "h", S_T0 + 1, 3000, &a,
			     s_err, sizeof(s_err)),
	    0);
	ck_assert_int_eq(store_session_auth(s_st, "other", S_T0 + 1, 3000, &a,
			     s_err, sizeof(s_err)),
	    0);
}
END_TEST

/* Makes a session of staff_id; its id. */
static int64_t
s_session(int64_t staff_id, const char *hash, const char *peer)
{
	int64_t id = store_session_create(s_st,
	    &(struct session_new){.staff_id = staff_id,
		.id_hash = hash,
		.via = "password",
		.peer = peer,
		.now = S_T0,
		.expires_at = S_T0 + 10000},
	    s_err, sizeof(s_err));

	ck_assert_msg(id > 0, "session: %s", s_err);
	return id;
}

/* The ids of q's sessions as "3,2,1"; the current one starred. */
static void
s_sessions(const struct session_query *q, char *buf, size_t len)
{
	json_t *a = store_sessions_json(s_st, q, s_err, sizeof(s_err)), *x;
	size_t i, n = 0;

	ck_assert_msg(a != NULL, "sessions: %s", s_err);
	buf[0] = '\0';
	json_array_foreach(a, i, x) {
		ck_assert_ptr_null(json_object_get(x, "id_hash"));
		n += snprintf(buf + n, len - n, "%s%lld%s", i > 0 ? "," : "",
		    (long long)json_integer_value(json_object_get(x, "id")),
		    json_is_true(json_object_get(x, "current")) ? "*" : "");
	}
	json_decref(a);
}

START_TEST(test_session_list_and_owner)
{
	struct session_query q = {.now = S_T0 + 1, .idle_ms = 3000};
	int64_t a1, a2, b1, b2, owner = 0;
	json_t *arr, *x;
	char buf[128];

	ck_assert_int_eq(store_staff_create(s_st,
			     &(struct staff_new){.name = "A",
				 .email = "a@example.org",
				 .role = "admin",
				 .now = S_T0},
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(store_staff_create(s_st,
			     &(struct staff_new){.name = "B",
				 .email = "b@example.org",
				 .role = "organizer",
				 .now = S_T0},
			     s_err, sizeof(s_err)),
	    2);
	a1 = s_session(1, "a1", "192.0.2.1");
	b1 = s_session(2, "b1", NULL);
	a2 = s_session(1, "a2", "192.0.2.2");
	b2 = s_session(2, "b2", NULL);
	q.current = a1;
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "4,3,2,1*");
	q.staff_id = 1;
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "3,1*");
	/* the row as the API shows it */
	arr = store_sessions_json(s_st, &q, s_err, sizeof(s_err));
	x = json_array_get(arr, 0);
	ck_assert_str_eq(json_string_value(json_object_get(x, "peer")),
	    "192.0.2.2");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(x, "staff"), "name")),
	    "A");
	ck_assert_str_eq(json_string_value(json_object_get(x, "via")),
	    "password");
	ck_assert_str_eq(json_string_value(json_object_get(x, "expires_at")),
	    "2026-11-27T03:14:44.123Z");
	json_decref(arr);
	q.staff_id = 2;
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "4,2");
	ck_assert_int_eq(
	    store_session_owner(s_st, b2, &q, &owner, s_err, sizeof(s_err)), 1);
	ck_assert_int_eq(owner, 2);
	/* revoked, idle, expired: neither listed nor owned */
	ck_assert_int_eq(
	    store_session_revoke(s_st, b2, S_T0, s_err, sizeof(s_err)), 0);
	ck_assert_int_eq(
	    store_session_owner(s_st, b2, &q, &owner, s_err, sizeof(s_err)), 0);
	ck_assert_int_eq(
	    store_session_owner(s_st, 99, &q, &owner, s_err, sizeof(s_err)), 0);
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2");
	ck_assert_int_eq(
	    store_session_touch(s_st, a2, S_T0 + 2000, s_err, sizeof(s_err)),
	    0);
	q = (struct session_query){.now = S_T0 + 4000, .idle_ms = 3000};
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "3");
	ck_assert_int_eq(
	    store_session_owner(s_st, a1, &q, &owner, s_err, sizeof(s_err)), 0);
	q = (struct session_query){.now = S_T0 + 10000, .idle_ms = 60000};
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	/* a disabled member's sessions end with it */
	q.now = S_T0 + 1;
	ck_assert_int_eq(store_staff_update(s_st, 2,
			     &(struct staff_patch){.set_disabled = true,
				 .disabled = true,
				 .now = S_T0},
			     s_err, sizeof(s_err)),
	    1);
	ck_assert_int_eq(
	    store_session_owner(s_st, b1, &q, &owner, s_err, sizeof(s_err)), 0);
	s_sessions(&q, buf, sizeof(buf));
	ck_assert_str_eq(buf, "3,1");
}
END_TEST

START_TEST(test_audit_pages)
{
	json_t *o, *a;
	int i;

	ck_assert_int_gt(store_staff_create(s_st,
			     &(struct staff_new){.name = "A",
				 .email = "a@example.org",
				 .role = "admin",
				 .now = S_T0},
			     s_err, sizeof(s_err)),
	    0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(
		    store_audit_add(s_st,
			&(struct audit_entry){.staff_id = i % 2 == 0 ? 1 : 0,
			    .action = "POST /api/v1/x",
			    .target = "/api/v1/x",
			    .detail = "{\"status\":201}",
			    .now = S_T0 + i},
			s_err, sizeof(s_err)),
		    0);
	o = store_audit_json(s_st, &(struct audit_query){.limit = 2}, s_err,
	    sizeof(s_err));
	ck_assert_ptr_nonnull(o);
	a = json_object_get(o, "audit");
	ck_assert_uint_eq(json_array_size(a), 2);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_array_get(a, 0), "id")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "next")), 4);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
		json_object_get(json_array_get(a, 0), "detail"), "status")),
	    201);
	ck_assert(json_is_null(json_object_get(json_array_get(a, 1), "staff")));
	json_decref(o);
	o = store_audit_json(s_st,
	    &(struct audit_query){.limit = 10, .after = 4, .staff_id = 1},
	    s_err, sizeof(s_err));
	a = json_object_get(o, "audit");
	ck_assert_uint_eq(json_array_size(a), 2); /* 3 and 1 */
	ck_assert(json_is_null(json_object_get(o, "next")));
	ck_assert_str_eq(
	    json_string_value(json_object_get(
		json_object_get(json_array_get(a, 1), "staff"), "name")),
	    "A");
	json_decref(o);
	/* append-only */
	ck_assert_int_ne(
	    sqlite3_exec(store_db(s_st), "DELETE FROM audit", NULL, NULL, NULL),
	    SQLITE_OK);
}
END_TEST

Suite *
staff_suite(void)
{
	Suite *s = suite_create("staff");
	TCase *tc = tcase_create("auth");
	TCase *ts = tcase_create("store");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_password_hash_and_verify);
	tcase_add_test(tc, test_secrets_and_csrf);
	tcase_add_test(tc, test_cookie);
	tcase_add_test(tc, test_limiter);
	tcase_add_test(tc, test_limiter_set);
	tcase_add_test(tc, test_limiter_full);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ts, s_setup, s_teardown);
	tcase_add_test(ts, test_bootstrap);
	tcase_add_test(ts, test_bootstrap_attaches_to_first_admin);
	tcase_add_test(ts, test_staff_writes);
	tcase_add_test(ts, test_session_expiry);
	tcase_add_test(ts, test_session_list_and_owner);
	tcase_add_test(ts, test_audit_pages);
	suite_add_tcase(s, ts);
	return s;
}
