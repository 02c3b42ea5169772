/*
 * hmac.h - HMAC under one key, kept ready for the MACs made per message
 * or per request: the email links' tokens (one per email sent), the
 * providers' webhook signatures (one per callback).
 *
 * OpenSSL 3's one-shot HMAC() looks the MAC and the digest up in its
 * provider tables and makes and frees a context on every call: about
 * 20,000 instructions for a 40-byte input, against about 6,000 for the
 * same MAC from a context keyed once and re-initialised (callgrind,
 * OpenSSL 3.0). A struct hmac is that context.
 *
 * Contract:
 *  - hmac_new() copies what it needs of the key (the caller may wipe
 *    its copy); NULL if OpenSSL refuses the digest or the key.
 *  - hmac_sign() gives the same bytes as HMAC() with the same digest and
 *    key. One struct hmac is used by one thread at a time (the loop's).
 *  - hmac_free() wipes the key schedule; NULL is a no-op.
 */
#ifndef OD_HMAC_H
#define OD_HMAC_H

#include <stddef.h>

#define HMAC_OUT_MAX 64 /* the longest MAC: SHA-512's */

struct hmac;

/* A context for digest ("SHA1", "SHA256", "SHA512", ...) under key. */
struct hmac *hmac_new(const char *digest, const void *key, size_t keylen);
/* The MAC of data into out; returns its length. Dies if OpenSSL fails. */
size_t hmac_sign(struct hmac *h, const void *data, size_t len,
    unsigned char out[HMAC_OUT_MAX]);
void hmac_free(struct hmac *h);

#endif
