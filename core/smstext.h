/*
 * smstext.h - SMS body encoding, segment counting and smart replacement
 * (doc/providers.md, SMS text).
 *
 * Contract:
 *  - Input is a NUL-terminated UTF-8 string. Strict UTF-8: overlong forms,
 *    encoded surrogates, code points past U+10FFFF and truncated sequences
 *    are invalid; the predicates answer false on them, the others fail.
 *  - A text is GSM-7 when every character is in the GSM 03.38 basic table
 *    (1 septet) or its extension table (2 septets: ESC + code). Otherwise
 *    the whole text is UCS-2, counted in UTF-16 code units (an emoji
 *    outside the BMP counts 2).
 *  - Segments: one part holds 160 septets / 70 units; a longer text is
 *    split into parts of 153 septets / 67 units (the 6-octet UDH takes the
 *    rest), and a character is never split across parts: an escape pair
 *    or a surrogate pair that does not fit moves whole to the next part.
 *    The count is the true one, even past SMSTEXT_MAX_SEGMENTS: callers
 *    refuse such texts (the 1-octet part count cannot carry them).
 *  - Pure functions: no globals written, no logging, no allocation except
 *    smstext_smart(), whose result the caller frees. Safe on any thread.
 */
#ifndef OD_SMSTEXT_H
#define OD_SMSTEXT_H

#include <stdbool.h>

/* Part sizes (3GPP TS 23.040: 140 octets, less a 6-octet UDH). */
#define SMSTEXT_GSM7_SINGLE  160 /* septets in a single-part message */
#define SMSTEXT_GSM7_PART    153 /* septets per part of a long message */
#define SMSTEXT_UCS2_SINGLE  70	 /* UTF-16 units in a single part */
#define SMSTEXT_UCS2_PART    67	 /* UTF-16 units per part */
#define SMSTEXT_MAX_SEGMENTS 255 /* the UDH's part count is one octet */

enum smstext_encoding {
	SMSTEXT_GSM7 = 0, /* GSM 03.38 default alphabet, 7-bit */
	SMSTEXT_UCS2,	  /* UTF-16 (what providers call UCS-2/unicode) */
};

struct smstext_info {
	enum smstext_encoding encoding;
	unsigned units;	   /* septets (GSM-7) or UTF-16 code units (UCS-2) */
	unsigned segments; /* parts on the air; an empty text is 1 */
	unsigned chars;	   /* Unicode code points */
};

/*
 * True when the whole UTF-8 text can go as GSM-7 (basic or extension
 * table); false if any character cannot, or the UTF-8 is invalid. The
 * empty string is GSM-7.
 */
bool smstext_is_gsm7(const char *utf8);
/*
 * Fills *out with the encoding, length in units, segment count and code
 * point count of the UTF-8 text. Returns 0, or -1 (out untouched) when
 * the text is not valid UTF-8 or longer than UINT_MAX / 2 bytes.
 */
int smstext_analyze(const char *utf8, struct smstext_info *out);
/*
 * Returns a new string (the caller frees it) in which Unicode look-alikes
 * (curly quotes, dashes, ellipsis, odd spaces, full-width forms, ...) are
 * replaced by GSM-7 equivalents, as Twilio's Smart Encoding does; other
 * characters are copied unchanged, so the result may still be UCS-2.
 * Returns NULL if the text is not valid UTF-8. Typical use: send the
 * result when smstext_is_gsm7() holds for it, else the original text.
 */
char *smstext_smart(const char *utf8);
/* "gsm7" or "ucs2", for logs, the store and the API. */
const char *smstext_encoding_to_text(enum smstext_encoding enc);

#endif
