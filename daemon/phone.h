/*
 * phone.h - phone numbers to E.164 through libphonenumber.
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
 *    Nothing half-parsed is ever returned. phone_normalize_as() relaxes
 *    "valid" to "possible" (unassigned ranges) or to "already E.164"
 *    (lookups of what was stored).
 *  - Extensions ("x123", "ext. 4", "#12") are refused: an SMS cannot
 *    reach one. Letters are refused, never mapped ("1-800-FLOWERS").
 *  - Valid means IsValidNumber() of libphonenumber's metadata (8.12 on
 *    Debian 12), not only a plausible length: +1 555 ... (NPA 555) and
 *    Ofcom's +44 7700 900xxx drama range fail; +1 <real area code>
 *    555-01xx passes. Tests wanting a fictional valid number use those.
 *  - Errors quote the input (printable ASCII, at most 40 characters):
 *    fine for an API reply, but mask before logging (log_mask_addr).
 *  - Thread-safe (libphonenumber's PhoneNumberUtil is); no I/O, no logs
 *    (the library's own logger is muted). Links with -lphonenumber and
 *    the C++ driver (libstdc++).
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

/* What phone_normalize_as() accepts besides a valid number. */
enum phone_accept {
	PHONE_VALID,	/* nothing more: assigned ranges only */
	PHONE_POSSIBLE, /* a possible number in an unassigned range */
	PHONE_STORED,	/* that, or an E.164 string as given */
};

/*
 * Normalizes 'input' to E.164 into out (outlen >= PHONE_E164_MAX), with
 * 'region' (ISO 3166-1 alpha-2, "US"; case-insensitive) for numbers
 * written without a country code; NULL or "" means none, so only "+..."
 * numbers pass, and an unknown region is an error. Returns 0, or -1 with
 * the reason in err and out set to "". Same as phone_normalize_as() with
 * PHONE_VALID.
 */
int phone_normalize(const char *input, const char *region, char *out,
    size_t outlen, char *err, size_t errlen);

/* How phone_normalize_as() reads a number. */
struct phone_rules {
	const char *region; /* as phone_normalize()'s */
	enum phone_accept accept;
};

/*
 * phone_normalize() with r->region, accepting more per r->accept.
 * PHONE_POSSIBLE also takes a number libphonenumber calls possible (its
 * length fits the country code) but not valid, such as +1 555 555 0123;
 * one written without its area code (possible only locally) is still
 * refused. PHONE_STORED also takes, as given, an input already in E.164
 * form ('+', a digit 1-9, at most 14 more digits), as a provider may
 * deliver a sender libphonenumber does not know: it is the key a stored
 * number is found by, and what a received text's sender is stored as.
 */
int phone_normalize_as(const char *input, const struct phone_rules *r,
    char *out, size_t outlen, char *err, size_t errlen);

/*
 * True if libphonenumber knows 'region' ("US", "GB", "jm"; two letters,
 * case-insensitive). False for NULL, "", "ZZ" and the non-geographic "001".
 */
bool phone_region_known(const char *region);

#ifdef __cplusplus
}
#endif

#endif
