/*
 * phone.h - phone numbers to E.164 through libphonenumber (PROTOCOLS §8).
 * The implementation is a small C++ shim (phone.cc) over Google's
 * library; this header is plain C.
 *
 * Contract:
 *  - phone_normalize() accepts what people type: national ("(415)
 *    555-0100" with region "US"), international ("+44 20 7946 0958",
 *    "0044 ...", "011 44 ..." from the US), with spaces, dots, dashes and
 *    parentheses. It writes "+<digits>" only for a number libphonenumber
 *    calls valid; otherwise it fails with a reason a person can act on
 *    ("'12' is too short to be a phone number", "'+1 555 0100' is not a
 *    valid number in US", "letters are not allowed in a phone number").
 *    Nothing half-parsed is ever returned.
 *  - Extensions ("x123", "ext. 4") are refused: an SMS cannot reach one.
 *  - Thread-safe (libphonenumber's PhoneNumberUtil is); no I/O, no logs.
 */
#ifndef OD_PHONE_H
#define OD_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* '+', at most 15 digits (E.164), NUL. */
#define PHONE_E164_MAX 17

/*
 * Normalizes 'input' to E.164 into out (outlen >= PHONE_E164_MAX), with
 * 'region' (ISO 3166-1 alpha-2, "US") for numbers written without a
 * country code. Returns 0, or -1 with the reason in err.
 */
int phone_normalize(const char *input, const char *region, char *out,
    size_t outlen, char *err, size_t errlen);

/* True if libphonenumber knows 'region' ("US", "GB", ...). */
bool phone_region_known(const char *region);

#ifdef __cplusplus
}
#endif

#endif
