/*
 * hmac.c - HMAC under one key, on OpenSSL 3's EVP_MAC (hmac.h).
 *
 * The context is keyed once by hmac_new(); each hmac_sign()
 * re-initialises it with no key, which keeps the key it has (the
 * re-initialisation OpenSSL 3.0 defined in openssl/openssl#18100), so a
 * MAC costs the digest's work and no lookup. check_email_links'
 * test_hmac_matches_one_shot compares it with HMAC() over many calls on
 * one context.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "hmac.h"
#include "log.h"
#include "xmalloc.h"

struct hmac {
	EVP_MAC_CTX *ctx;
};

static EVP_MAC *hmac_alg; /* process lifetime */

static void
hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

struct hmac *
hmac_new(const char *digest, const void *key, size_t keylen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	OSSL_PARAM params[2];
	struct hmac *h;

	(void)pthread_once(&once, hmac_fetch);
	if (hmac_alg == NULL)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((h->ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL ||
	    EVP_MAC_init(h->ctx, key, keylen, params) != 1) {
		hmac_free(h);
		return NULL;
	}
	return h;
}

size_t
hmac_sign(struct hmac *h, const void *data, size_t len,
    unsigned char out[HMAC_OUT_MAX])
{
	size_t n = 0;

	if (EVP_MAC_init(h->ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(h->ctx, data, len) != 1 ||
	    EVP_MAC_final(h->ctx, out, &n, HMAC_OUT_MAX) != 1 || n == 0)
		fatalx("hmac_sign: OpenSSL failed");
	return n;
}

void
hmac_free(struct hmac *h)
{
	if (h == NULL)
		return;
	EVP_MAC_CTX_free(h->ctx); /* OpenSSL wipes its copy of the key */
	free(h);
}
