/*
 * auth.h - the secrets of staff authentication, without I/O: Argon2id
 * password hashes, random tokens and session ids, their SHA-256, the
 * CSRF token of a session, the session cookie, and the in-memory limiter
 * of failed logins. daemon/staff.c puts them together.
 *
 * Contract:
 *  - Passwords are hashed with Argon2id (RFC 9106) at AUTH_ARGON2_T
 *    passes over AUTH_ARGON2_M KiB with AUTH_ARGON2_P lane (OWASP's
 *    minimum: t=2, m=19 MiB, p=1), a random 16-byte salt, into a PHC
 *    string ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"); verification
 *    reads the parameters from the string, so old hashes keep working
 *    when these change. A hash or verify costs tens of milliseconds:
 *    auth_password_hash() and auth_password_verify() may run on any
 *    thread (they touch nothing shared) and staff.c runs them on a
 *    worker (adapters/workq.h), never on the loop.
 *  - Tokens and session ids are AUTH_SECRET_BYTES random bytes as hex;
 *    only their SHA-256 (hex) is stored. A session's CSRF token is
 *    derived from its id (SHA-256 of a fixed prefix and the id), so it
 *    is never stored, and knowing it tells nothing about the id.
 *  - The limiter keeps at most AUTH_LIMIT_SLOTS keys (an account or a
 *    client address); when full, the entry with the oldest failure is
 *    forgotten. Loop thread only.
 */
#ifndef OD_AUTH_H
#define OD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_ARGON2_T	  2
#define AUTH_ARGON2_M	  19456 /* KiB = 19 MiB */
#define AUTH_ARGON2_P	  1
#define AUTH_SECRET_BYTES 32
#define AUTH_HEX_LEN	  65  /* 64 hex digits and a NUL */
#define AUTH_HASH_MAX	  256 /* a PHC string, with room */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
#define AUTH_LIMIT_SLOTS  1024

/*
 * Hashes password 'pw' into 'out' (a PHC string). 0, or -1 with the
 * reason in err (no randomness, argon2 failed).
 */
int auth_password_hash(const char *pw, char *out, size_t outlen, char *err,
    size_t errlen);
/*
 * Checks 'pw' against the PHC string 'encoded': 1 match, 0 mismatch, -1
 * when 'encoded' is not an Argon2id hash (then it never matches).
 */
int auth_password_verify(const char *encoded, const char *pw);
/* AUTH_SECRET_BYTES fresh random bytes as hex into out. 0 / -1. */
int auth_random_hex(char out[AUTH_HEX_LEN]);
/* The SHA-256 of s as hex. */
void auth_sha256_hex(const char *s, char out[AUTH_HEX_LEN]);
/* The CSRF token of session id 'sid' (hex). */
void auth_csrf(const char *sid, char out[AUTH_HEX_LEN]);
/* True when the two strings are equal; time depends on lengths only. */
bool auth_equal(const char *a, const char *b);
/*
 * The value of cookie 'name' in a Cookie request header into out: true
 * if present and it fits (and holds only [0-9a-zA-Z_-]).
 */
bool auth_cookie(const char *header, const char *name, char *out,
    size_t outlen);

/* When a key is locked out. */
struct auth_limit_conf {
	unsigned threshold; /* failures before the first lockout */
	int64_t lock_ms;    /* the first lockout; doubles with each failure */
	int64_t max_ms;	    /* the longest lockout */
	int64_t forget_ms;  /* failures older than this no longer count */
};
struct auth_limiter;

struct auth_limiter *auth_limiter_new(const struct auth_limit_conf *c);
/* 0 when 'key' may try now, else the ms it has to wait. */
int64_t auth_limiter_wait(struct auth_limiter *l, const char *key, int64_t now);
/* Counts a failure of 'key' at 'now'. */
void auth_limiter_fail(struct auth_limiter *l, const char *key, int64_t now);
/*
 * 'key' as the shared store counts it (every node's failures, on
 * PostgreSQL): its slot takes these, and is cleared when failures is 0
 * or the last one is older than auth_limiter_memory().
 */
void auth_limiter_set(struct auth_limiter *l, const char *key,
    unsigned failures, int64_t last_fail, int64_t now);
/* How long a key's failures count after its last one, ms. */
int64_t auth_limiter_memory(const struct auth_limiter *l);
/* A success: 'key' starts over. */
void auth_limiter_clear(struct auth_limiter *l, const char *key);
void auth_limiter_free(struct auth_limiter *l);

#endif
