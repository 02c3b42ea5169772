/*
 * dkim.h - DKIM signatures (RFC 6376) of finished messages, for the email
 * adapters, with libopendkim.
 *
 * Contract:
 *  - A signer holds the private key (PEM, read once at start; a key file
 *    that group or others can read is refused), the d= domain and the s=
 *    selector. rsa-sha256, relaxed/relaxed canonicalization.
 *  - The signature covers, of the headers present: From, To, Cc, Subject,
 *    Date, Message-ID, Reply-To, MIME-Version, Content-Type,
 *    List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 section 4);
 *    From, Subject and both List-Unsubscribe headers are over-signed, so
 *    a copy added later breaks the signature.
 *  - Sign the message exactly as it will be transmitted, after every
 *    header is final: nothing may touch a signed header afterwards (mime.c
 *    output already has Date, From and Message-ID, so libESMTP adds none).
 *  - dkim_signer_sign() may run on worker threads (one DKIM handle per
 *    call; the library handle is shared, as libopendkim allows).
 */
#ifndef OD_DKIM_H
#define OD_DKIM_H

#include <stddef.h>

struct adapter_env;
struct dkim_signer;

/* Loads key_file and prepares signing as domain/selector. NULL + err. */
struct dkim_signer *dkim_signer_new(const char *domain, const char *selector,
    const char *key_file, char *err, size_t errlen);
/*
 * The signer an email adapter's environment asks for ([email] dkim_*,
 * adapter.h): *out is NULL when DKIM is not configured. 0, or -1 with
 * the reason in err (an unreadable or exposed key file).
 */
int dkim_signer_from_env(const struct adapter_env *env,
    struct dkim_signer **out, char *err, size_t errlen);
/* Frees the signer; NULL is a no-op. */
void dkim_signer_free(struct dkim_signer *ds);
/*
 * Signs the message msg[0..len) (headers, CRLF CRLF, body; CRLF line
 * ends) and returns the "DKIM-Signature: ..." header, folded, with CRLF
 * line ends and a final CRLF, as a new string to put before the message.
 * NULL with the reason in err.
 */
char *dkim_signer_sign(struct dkim_signer *ds, const char *msg, size_t len,
    char *err, size_t errlen);

#endif
