/*
 * json_fast.h - the fast paths in front of jansson, on jsmn's tokens:
 * reading a few members of a provider's answer without building it
 * (jpeek_object(): twilio.c reads Twilio's 201 with it) and reading a
 * flat API request body into a json_t without jansson's lexer
 * (json_flat_object(): api.c). Both only ever skip work: whatever they
 * are not sure of they leave to jansson, which decides.
 *
 * Contract of jpeek_object():
 *  - returns 0 only for a text jansson's json_loadb(buf, len, 0, ...)
 *    accepts, and then reports exactly what jansson's json_object_get()
 *    would give for each field (the last member of a name wins, as in
 *    jansson). Whatever it is not sure of (\u escapes, exponents,
 *    numbers longer than 18 characters, nesting deeper than
 *    JPEEK_DEPTH_MAX, more than JSON_FAST_TOKENS tokens, and every
 *    error) returns -1: the caller then parses with jansson.
 *  - Reported strings point into buf (not NUL-terminated, escapes other
 *    than \u left as they are: s_escaped tells).
 *
 * Contract of json_flat_object():
 *  - returns exactly what json_loadb(buf, len, JSON_REJECT_DUPLICATES,
 *    ...) returns (a new reference to an object, keys in order) when buf
 *    holds one JSON object, with whitespace around its tokens, whose keys
 *    (under JSON_FLAT_KEY_MAX bytes) and string values are printable
 *    ASCII without escapes, and whose other values are non-negative
 *    integers of at most 18 digits without a leading zero, true, false
 *    or null. For anything else (another value, a duplicate key, an
 *    escape, a byte past ASCII, a syntax error) it returns NULL and the
 *    caller parses buf with jansson, which words any error.
 *
 * Both: no allocation beyond the json_t built, no global state, no
 * logging; any thread.
 */
#ifndef OD_JSON_FAST_H
#define OD_JSON_FAST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define JSON_FAST_TOKENS  128 /* jsmn tokens per text (on the stack) */
#define JPEEK_DEPTH_MAX	  64
#define JSON_FLAT_KEY_MAX 64 /* bytes of a key, with its NUL */

enum jpeek_type {
	JPEEK_STRING,
	JPEEK_INT,
};

/* One member of the top-level object to report. */
struct jpeek_field {
	const char *name; /* plain ASCII */
	enum jpeek_type type;
	/* out: found with this type (a member of another type: false) */
	bool found;
	const char *s; /* JPEEK_STRING: its raw bytes in buf */
	size_t len;
	bool s_escaped; /* the raw bytes hold escapes */
	long long i;	/* JPEEK_INT */
};

/*
 * Reads buf[0..len-1]; fills f[0..nf-1] from the top-level object (an
 * array reports nothing). Returns 0, or -1 when not sure (see above).
 */
int jpeek_object(const char *buf, size_t len, struct jpeek_field *f, size_t nf);

json_t *json_flat_object(const char *buf, size_t len);

#endif
