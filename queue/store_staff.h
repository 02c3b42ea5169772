/*
 * store_staff.h - staff accounts, API tokens, web sessions and the audit
 * log as stored (schema 005_staff.sql). daemon/staff.c and
 * daemon/staff_api.c use these functions; none of them sees SQL.
 *
 * Contract:
 *  - Secrets are never stored: a token or a session id arrives here as
 *    the hex SHA-256 of its value, a password as its Argon2id PHC string
 *    (daemon/auth.c makes both).
 *  - A role is the text "admin" or "organizer"; an email is stored as the
 *    caller gives it (the caller lowercases it), unique.
 *  - Disabling a staff member revokes its sessions and tokens in the
 *    same operation; token and session checks also refuse a disabled
 *    member, so nothing it held works any more.
 *  - Loop thread only; writes join the store's group transaction, and an
 *    operation that fails after it changed rows rolls the group back.
 *  - Errors: -1 with text in err. Lookups answer 1 found / 0 none / -1.
 *    json_t results are new references (NULL with err empty = not found).
 */
#ifndef OD_STORE_STAFF_H
#define OD_STORE_STAFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;

#define STORE_STAFF_HASH_HEX 65 /* 64 hex digits of a SHA-256 and a NUL */

/* One staff member as the auth code needs it. */
struct staff_row {
	int64_t id;
	char name[201];
	char email[321];
	char role[16];		 /* "admin" / "organizer" */
	char password_hash[256]; /* PHC string; "" = none */
	bool disabled;
};

/* What POST /api/v1/staff writes. Strings are borrowed. */
struct staff_new {
	const char *name;
	const char *email; /* lowercased; NULL = none */
	const char *role;
	const char *password_hash; /* NULL = no password login */
	int64_t now;
};

/* What PATCH /api/v1/staff/{id} changes: only fields whose set_* is on. */
struct staff_patch {
	bool set_name, set_role, set_password, set_disabled;
	const char *name;
	const char *role;
	const char *password_hash; /* NULL clears it */
	bool disabled;
	int64_t now;
	/* A new password ends the member's sessions but this one (the
	 * member changing its own password keeps its session); 0 = all. */
	int64_t keep_session;
};

/* The staff member behind a valid token or session. */
struct staff_auth {
	int64_t staff_id;
	char role[16];
	int64_t session_id;   /* sessions: the row */
	int64_t last_seen_at; /* sessions: for the touch */
};

/* A new web session. */
struct session_new {
	int64_t staff_id;
	const char *id_hash;
	const char *via; /* "password" / "token" */
	const char *peer;
	int64_t now;
	int64_t expires_at;
};

/*
 * GET /api/v1/sessions: the live sessions (not revoked, not past
 * expires_at, used within idle_ms of now) of staff_id (0 = everyone's);
 * 'current' (a session id, 0 = none) is marked "current": true.
 */
struct session_query {
	int64_t staff_id;
	int64_t current;
	int64_t now;
	int64_t idle_ms;
};

/* One audit row. Strings are borrowed. */
struct audit_entry {
	int64_t staff_id;
	const char *action; /* "PATCH /api/v1/staff/{id}" */
	const char *target; /* "/api/v1/staff/3" */
	const char *detail; /* JSON text */
	int64_t now;
};

/* GET /api/v1/audit: newest first, ids below 'after' (0 = from the top). */
struct audit_query {
	int64_t after;
	int64_t staff_id; /* 0 = everyone */
	int limit;
};

/* What store_staff_bootstrap() did with the daemon's token. */
enum staff_boot {
	STAFF_BOOT_KEPT = 0, /* known already: nothing written */
	STAFF_BOOT_CREATED,  /* no staff: staff #1 made, holding it */
	STAFF_BOOT_ROTATED,  /* the token changed: the row follows it */
	STAFF_BOOT_ATTACHED, /* given to the first admin */
	STAFF_BOOT_REVOKED,  /* known and revoked: stays so */
};

/* ---- staff -------------------------------------------------------- */

/* Creates a member: its id, 0 when the email is taken, -1 on error. */
int64_t store_staff_create(struct store *st, const struct staff_new *n,
    char *err, size_t errlen);
/*
 * Changes member id: 1 done, 0 no such member, -1. Disabling revokes its
 * sessions and tokens (at p->now); a new or removed password revokes its
 * sessions but p->keep_session (its tokens stay: they are not derived
 * from the password).
 */
int store_staff_update(struct store *st, int64_t id,
    const struct staff_patch *p, char *err, size_t errlen);
/* Member id into *out: 1 / 0 / -1. */
int store_staff_get(struct store *st, int64_t id, struct staff_row *out,
    char *err, size_t errlen);
/* The member with this (lowercased) email into *out: 1 / 0 / -1. */
int store_staff_by_email(struct store *st, const char *email,
    struct staff_row *out, char *err, size_t errlen);
/* Enabled admins other than 'except' (0 = none excepted); -1 on error. */
int64_t store_staff_admins(struct store *st, int64_t except, char *err,
    size_t errlen);
/*
 * The API object of member id: {"id", "name", "email", "role",
 * "disabled", "created_at", "has_password"}.
 */
json_t *store_staff_json(struct store *st, int64_t id, char *err,
    size_t errlen);
/* Every member as an array, by id; 'full' = false leaves out email. */
json_t *store_staff_list_json(struct store *st, bool full, char *err,
    size_t errlen);
/*
 * At start-up, makes the daemon's token (its hex SHA-256 'hash') a valid
 * admin token: with no staff, creates staff #1 "Administrator" (admin)
 * holding it; if the token changed, the daemon's row takes the new hash
 * (and is valid again); a revoked daemon token whose value did not
 * change stays revoked. Returns what it did, or -1.
 */
int store_staff_bootstrap(struct store *st, const char *hash, int64_t now,
    char *err, size_t errlen);

/* ---- API tokens --------------------------------------------------- */

/* Stores a token of staff_id under 'name': its id, or -1. */
int64_t store_token_create(struct store *st, int64_t staff_id, const char *name,
    const char *hash, int64_t now, char *err, size_t errlen);
/*
 * A number that changes before any staff or api_tokens row does (in this
 * process, whichever store): an answer of store_token_auth() holds as
 * long as it stays the same. A rolled-back change still counts.
 */
uint64_t store_staff_generation(void);
/*
 * The enabled member holding the valid token 'hash' into *out: 1 / 0 /
 * -1.
 */
int store_token_auth(struct store *st, const char *hash, struct staff_auth *out,
    char *err, size_t errlen);
/* Token id's owner into *staff_id: 1 / 0 (no such token) / -1. */
int store_token_owner(struct store *st, int64_t id, int64_t *staff_id,
    char *err, size_t errlen);
/* Revokes token id: 1 / 0 (none, or revoked already) / -1. */
int store_token_revoke(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen);
/*
 * Tokens as an array, newest first: of staff_id, or everyone's (0):
 * {"id", "name", "staff": {"id", "name"}, "daemon", "created_at",
 * "revoked_at"}. Never the hash.
 */
json_t *store_tokens_json(struct store *st, int64_t staff_id, char *err,
    size_t errlen);

/* ---- web sessions ------------------------------------------------- */

/* Stores a session: its id, or -1. */
int64_t store_session_create(struct store *st, const struct session_new *s,
    char *err, size_t errlen);
/*
 * The live session 'hash' (not revoked, not past expires_at, used within
 * idle_ms of now) of an enabled member into *out: 1 / 0 / -1.
 */
int store_session_auth(struct store *st, const char *hash, int64_t now,
    int64_t idle_ms, struct staff_auth *out, char *err, size_t errlen);
/* Records a use of session id at 'now' (idle expiry). 0 / -1. */
int store_session_touch(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen);
/* Revokes session id (logout). 0 / -1. */
int store_session_revoke(struct store *st, int64_t id, int64_t now, char *err,
    size_t errlen);
/*
 * The owner of session id into *staff_id if it is live by q's now and
 * idle_ms (q's staff_id and current are not used): 1 / 0 (no such live
 * session) / -1.
 */
int store_session_owner(struct store *st, int64_t id,
    const struct session_query *q, int64_t *staff_id, char *err, size_t errlen);
/*
 * The live sessions of q as an array, newest first: {"id", "staff":
 * {"id", "name"}, "via", "created_at", "last_seen_at", "expires_at",
 * "peer"|null, "current"}. Never the hash.
 */
json_t *store_sessions_json(struct store *st, const struct session_query *q,
    char *err, size_t errlen);

/* ---- audit -------------------------------------------------------- */

/* Appends one audit row. 0 / -1. */
int store_audit_add(struct store *st, const struct audit_entry *a, char *err,
    size_t errlen);
/*
 * {"audit": [{"id", "staff": {"id", "name"}|null, "action", "target",
 * "detail", "created_at"}], "next": id|null}, newest first.
 */
json_t *store_audit_json(struct store *st, const struct audit_query *q,
    char *err, size_t errlen);

#endif
