/*
 * email_addr.h - the one check of a recipient's email address, used by
 * the members API, the CSV import, SMS answers to an "email" question and
 * the messages API, so that all four accept exactly the same addresses.
 *
 * The rule (an address we can hand to an SMTP relay as it is):
 *  - at most 254 bytes in all (RFC 5321's 256-octet path less "<>");
 *  - exactly one '@';
 *  - local part: 1-64 bytes, an RFC 5322 dot-atom in ASCII: letters,
 *    digits and ! # $ % & ' * + - / = ? ^ _ ` { | } ~, with dots only
 *    between them (no leading, trailing or doubled dot). Quoted local
 *    parts ("john doe"@example.org) are refused;
 *  - domain: two or more labels separated by dots; each label 1-63
 *    letters, digits or '-', not starting or ending with '-'; no domain
 *    literals ([192.0.2.1]), no trailing dot;
 *  - top-level domain: two or more letters, or an IDNA A-label ("xn--"
 *    then letters, digits or '-'), so "user@example.c" and numeric
 *    endings ("a@1.2.3.4") are refused;
 *  - ASCII only: any byte of 0x80 or above is refused. The SMTP adapter
 *    does not speak SMTPUTF8 (RFC 6531), so an address such as
 *    ü@example.org would be stored but relays would refuse or mangle
 *    it; an internationalized domain is accepted in its xn-- form.
 *
 * Contract:
 *  - Pure: no globals, no logging, no allocation; safe on any thread.
 *  - 'why' gets a short English reason without the address (callers echo
 *    the value themselves if they want), e.g. "the domain has an empty
 *    label (two dots in a row, or a dot at its start or end)".
 */
#ifndef OD_EMAIL_ADDR_H
#define OD_EMAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define EMAIL_ADDR_MAX	254 /* bytes: RFC 5321 path (256) less "<>" */
#define EMAIL_LOCAL_MAX 64  /* bytes: RFC 5321 local-part limit */
#define EMAIL_LABEL_MAX 63  /* bytes: RFC 1035 label limit */

/*
 * Checks s against the rule above. Returns 0, or -1 with the reason in
 * why (whylen may be 0 when the caller does not want it).
 */
int email_addr_check(const char *s, char *why, size_t whylen);

/*
 * email_addr_check(), then s lower-cased into out (outlen bytes; an
 * address that does not fit fails with a reason). The domain is
 * case-insensitive by definition; the local part is lower-cased too, as
 * mail systems treat it, so one person has one member record.
 */
int email_addr_normalize(const char *s, char *out, size_t outlen, char *why,
    size_t whylen);

/* True if s passes email_addr_check(). */
bool email_addr_is_valid(const char *s);

#endif
