/*
 * jsonpeek.h - a strict JSON scanner that builds nothing: it validates a
 * JSON text and reports a few members of its top-level object, for
 * provider answers read once per message (twilio.c reads Twilio's 201
 * with it: about 1 us, where jansson's json_loadb() builds the whole
 * answer as objects in about 10 us).
 *
 * Contract:
 *  - jpeek_object() returns 0 only for a text jansson's json_loadb(buf,
 *    len, 0, ...) accepts, and then reports exactly what jansson's
 *    json_object_get() would give for each field (the last member of a
 *    name wins, as in jansson). Whatever it is not sure of (\u escapes,
 *    numbers longer than 18 characters, nesting deeper than
 *    JPEEK_DEPTH_MAX, and every error) returns -1: the caller then parses
 *    with jansson, which decides. So the scanner may only ever make a
 *    caller faster, never change an answer.
 *  - Reported strings point into buf (not NUL-terminated, escapes other
 *    than \u left as they are: s_escaped tells).
 *  - No allocation, no global state; any thread.
 */
#ifndef OD_JSONPEEK_H
#define OD_JSONPEEK_H

#include <stdbool.h>
#include <stddef.h>

#define JPEEK_DEPTH_MAX 64

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
 * Scans buf[0..len-1]; fills f[0..nf-1] from the top-level object (an
 * array reports nothing). Returns 0, or -1 when not sure (see above).
 */
int jpeek_object(const char *buf, size_t len, struct jpeek_field *f, size_t nf);

#endif
