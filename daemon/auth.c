/*
 * auth.c - password hashes, random secrets, CSRF tokens, the session
 * cookie and the login limiter (auth.h).
 */
#include "autoconf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "compat.h"
#include "log.h"
#include "xmalloc.h"

#define AUTH_SALT_BYTES	 16
#define AUTH_HASH_BYTES	 32
#define AUTH_KEY_MAX	 340 /* "email:" and an address */
#define AUTH_CSRF_PREFIX "outreachd-csrf:"

struct auth_slot {
	char key[AUTH_KEY_MAX];
	unsigned failures;
	int64_t last_fail;
	bool used;
};

struct auth_limiter {
	struct auth_limit_conf conf;
	struct auth_slot slots[AUTH_LIMIT_SLOTS];
};

int
auth_password_hash(const char *pw, char *out, size_t outlen, char *err,
    size_t errlen)
{
	unsigned char salt[AUTH_SALT_BYTES];
	int rc;

	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		snprintf(err, errlen, "no randomness for a salt");
		return -1;
	}
	rc = argon2id_hash_encoded(AUTH_ARGON2_T, AUTH_ARGON2_M, AUTH_ARGON2_P,
	    pw, strlen(pw), salt, sizeof(salt), AUTH_HASH_BYTES, out, outlen);
	if (rc != ARGON2_OK) {
		snprintf(err, errlen, "argon2id: %s", argon2_error_message(rc));
		return -1;
	}
	return 0;
}

int
auth_password_verify(const char *encoded, const char *pw)
{
	int rc;

	if (strncmp(encoded, "$argon2id$", 10) != 0)
		return -1;
	rc = argon2id_verify(encoded, pw, strlen(pw));
	if (rc == ARGON2_OK)
		return 1;
	return rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
}

/* 'len' bytes as lowercase hex into out (2 * len + 1 bytes). */
static void
auth_hex(const unsigned char *b, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
auth_random_hex(char out[AUTH_HEX_LEN])
{
	unsigned char raw[AUTH_SECRET_BYTES];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	auth_hex(raw, sizeof(raw), out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
static EVP_MD *auth_sha256_fetched; /* process lifetime */

static void
auth_sha256_fetch(void)
{
	auth_sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}
#endif

/*
 * SHA-256 for EVP. OpenSSL 3 looks EVP_sha256() up in its provider
 * tables again on every digest init, which costs about as much as the
 * hash of a token itself (one per API request): fetched once instead.
 */
static const EVP_MD *
auth_sha256_md(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, auth_sha256_fetch);
	if (auth_sha256_fetched != NULL)
		return auth_sha256_fetched;
#endif
	return EVP_sha256();
}

/* SHA-256 over the concatenation of a and b, as hex. */
static void
auth_sha256_two(const char *a, const char *b, char out[AUTH_HEX_LEN])
{
	unsigned char md[32];
	unsigned int len = sizeof(md);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL ||
	    EVP_DigestInit_ex(ctx, auth_sha256_md(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, strlen(a)) != 1 ||
	    EVP_DigestUpdate(ctx, b, strlen(b)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &len) != 1)
		fatalx("auth_sha256: EVP digest failed");
	EVP_MD_CTX_free(ctx);
	auth_hex(md, sizeof(md), out);
}

void
auth_sha256_hex(const char *s, char out[AUTH_HEX_LEN])
{
	auth_sha256_two("", s, out);
}

void
auth_csrf(const char *sid, char out[AUTH_HEX_LEN])
{
	auth_sha256_two(AUTH_CSRF_PREFIX, sid, out);
}

bool
auth_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

bool
auth_cookie(const char *header, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), vlen;
	const char *p = header, *v;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			v = p + nlen + 1;
			vlen = strcspn(v, "; ");
			if (vlen == 0 || vlen >= outlen)
				return false;
			for (size_t i = 0; i < vlen; i++)
				if (!isalnum((unsigned char)v[i]) &&
				    v[i] != '_' && v[i] != '-')
					return false;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

struct auth_limiter *
auth_limiter_new(const struct auth_limit_conf *c)
{
	struct auth_limiter *l = xcalloc(1, sizeof(*l));

	l->conf = *c;
	return l;
}

void
auth_limiter_free(struct auth_limiter *l)
{
	free(l);
}

/* The slot of 'key', or NULL; forgets its failures when they are old. */
static struct auth_slot *
auth_slot_find(struct auth_limiter *l, const char *key, int64_t now)
{
	struct auth_slot *s;
	size_t i;

	for (i = 0; i < AUTH_LIMIT_SLOTS; i++) {
		s = &l->slots[i];
		if (!s->used || strcmp(s->key, key) != 0)
			continue;
		if (now - s->last_fail > auth_limiter_memory(l)) {
			s->used = false;
			return NULL;
		}
		return s;
	}
	return NULL;
}

int64_t
auth_limiter_wait(struct auth_limiter *l, const char *key, int64_t now)
{
	struct auth_slot *s = auth_slot_find(l, key, now);
	int64_t lock = l->conf.lock_ms, until;
	unsigned i;

	if (s == NULL || s->failures < l->conf.threshold)
		return 0;
	for (i = l->conf.threshold; i < s->failures && lock < l->conf.max_ms;
	     i++)
		lock *= 2;
	if (lock > l->conf.max_ms)
		lock = l->conf.max_ms;
	until = s->last_fail + lock;
	return until > now ? until - now : 0;
}

/* The slot of 'key', taken (the oldest one reused) when it has none. */
static struct auth_slot *
auth_slot_take(struct auth_limiter *l, const char *key, int64_t now)
{
	struct auth_slot *s = auth_slot_find(l, key, now), *oldest = NULL;
	size_t i;

	for (i = 0; s == NULL && i < AUTH_LIMIT_SLOTS; i++) {
		if (!l->slots[i].used) {
			s = &l->slots[i];
			break;
		}
		if (oldest == NULL || l->slots[i].last_fail < oldest->last_fail)
			oldest = &l->slots[i];
	}
	if (s == NULL) {
		s = oldest;
		s->used = false;
	}
	if (!s->used) {
		memset(s, 0, sizeof(*s));
		s->used = true;
		strlcpy(s->key, key, sizeof(s->key));
	}
	return s;
}

void
auth_limiter_fail(struct auth_limiter *l, const char *key, int64_t now)
{
	struct auth_slot *s = auth_slot_take(l, key, now);

	s->failures++;
	s->last_fail = now;
}

void
auth_limiter_set(struct auth_limiter *l, const char *key, unsigned failures,
    int64_t last_fail, int64_t now)
{
	struct auth_slot *s;

	if (failures == 0 || now - last_fail > auth_limiter_memory(l)) {
		auth_limiter_clear(l, key);
		return;
	}
	s = auth_slot_take(l, key, now);
	s->failures = failures;
	s->last_fail = last_fail;
}

int64_t
auth_limiter_memory(const struct auth_limiter *l)
{
	return l->conf.forget_ms + l->conf.max_ms;
}

void
auth_limiter_clear(struct auth_limiter *l, const char *key)
{
	size_t i;

	for (i = 0; i < AUTH_LIMIT_SLOTS; i++)
		if (l->slots[i].used && strcmp(l->slots[i].key, key) == 0)
			l->slots[i].used = false;
}
