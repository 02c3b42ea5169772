/*
 * jsonpeek.c - a strict JSON scanner that builds nothing (jsonpeek.h).
 *
 * A recursive descent over RFC 8259's grammar, as jansson's lexer reads
 * it: whitespace is space, tab, CR and LF; strings are UTF-8 without
 * control characters, overlong forms or surrogates; numbers are
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; the top level is an
 * object or an array followed by nothing but whitespace. Where jansson
 * could still refuse a text this grammar accepts (an integer that does
 * not fit, a real that overflows, a \u escape that names a lone
 * surrogate or NUL, nesting past its limit) the scanner gives up (-1)
 * instead of guessing: \u escapes, exponents, numbers over 18 characters
 * and nesting past JPEEK_DEPTH_MAX are never judged here.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "jsonpeek.h"

struct jpeek {
	const unsigned char *p;
	const unsigned char *end;
	int depth;
};

/* A scanned value, when the caller wants it (a top-level member). */
struct jpeek_val {
	enum { JPV_OTHER, JPV_STRING, JPV_INT } kind;
	const char *s;
	size_t len;
	bool escaped;
	long long i;
};

static int jpeek_value(struct jpeek *, struct jpeek_val *);
static int jpeek_object_body(struct jpeek *, struct jpeek_field *, size_t);

static void
jpeek_ws(struct jpeek *j)
{
	while (j->p < j->end &&
	    (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Continuation bytes: n of them, the first within [lo, hi]. */
static int
jpeek_utf8_tail(struct jpeek *j, int n, unsigned char lo, unsigned char hi)
{
	int k;

	if (j->end - j->p < n || j->p[0] < lo || j->p[0] > hi)
		return -1;
	for (k = 1; k < n; k++)
		if ((j->p[k] & 0xC0) != 0x80)
			return -1;
	j->p += n;
	return 0;
}

/* One non-ASCII character starting at j->p[-1] (already consumed). */
static int
jpeek_utf8(struct jpeek *j, unsigned char c)
{
	if (c >= 0xC2 && c <= 0xDF)
		return jpeek_utf8_tail(j, 1, 0x80, 0xBF);
	if (c == 0xE0)
		return jpeek_utf8_tail(j, 2, 0xA0, 0xBF);
	if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
		return jpeek_utf8_tail(j, 2, 0x80, 0xBF);
	if (c == 0xED) /* not the UTF-16 surrogates */
		return jpeek_utf8_tail(j, 2, 0x80, 0x9F);
	if (c == 0xF0)
		return jpeek_utf8_tail(j, 3, 0x90, 0xBF);
	if (c >= 0xF1 && c <= 0xF3)
		return jpeek_utf8_tail(j, 3, 0x80, 0xBF);
	if (c == 0xF4)
		return jpeek_utf8_tail(j, 3, 0x80, 0x8F);
	return -1;
}

/* A string; j->p is at its opening quote. */
static int
jpeek_string(struct jpeek *j, struct jpeek_val *v)
{
	const unsigned char *start = ++j->p;
	bool escaped = false;
	unsigned char c;

	for (;;) {
		if (j->p >= j->end)
			return -1;
		c = *j->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			/* \u is left to jansson (lone surrogates, NUL) */
			if (j->p >= j->end ||
			    strchr("\"\\/bfnrt", *j->p) == NULL ||
			    *j->p == '\0')
				return -1;
			j->p++;
			escaped = true;
		} else if (c >= 0x80 && jpeek_utf8(j, c) == -1)
			return -1;
	}
	v->kind = JPV_STRING;
	v->s = (const char *)start;
	v->len = (size_t)(j->p - 1 - start);
	v->escaped = escaped;
	return 0;
}

static void
jpeek_digits(struct jpeek *j)
{
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
}

/* A number without exponent, at most 18 characters: no overflow. */
static int
jpeek_number(struct jpeek *j, struct jpeek_val *v)
{
	const unsigned char *start = j->p;
	bool real = false;
	char num[24];

	if (*j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
		jpeek_digits(j);
	else
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		jpeek_digits(j);
		real = true;
	}
	if ((j->p < j->end && (*j->p == 'e' || *j->p == 'E')) ||
	    j->p - start > 18)
		return -1;
	if (!real) {
		memcpy(num, start, (size_t)(j->p - start));
		num[j->p - start] = '\0';
		v->kind = JPV_INT;
		v->i = strtoll(num, NULL, 10);
	}
	return 0;
}

static int
jpeek_literal(struct jpeek *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

/* An array; j->p is at '['. */
static int
jpeek_array(struct jpeek *j)
{
	struct jpeek_val v;

	j->p++;
	jpeek_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (jpeek_value(j, &v) == -1)
			return -1;
		jpeek_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p++ == ']')
			return 0;
		if (j->p[-1] != ',')
			return -1;
	}
}

/* Any value, after optional whitespace; v->kind says what it was. */
static int
jpeek_value(struct jpeek *j, struct jpeek_val *v)
{
	int rc;

	v->kind = JPV_OTHER;
	jpeek_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
	case '[':
		if (++j->depth > JPEEK_DEPTH_MAX)
			return -1;
		rc = *j->p == '{' ? jpeek_object_body(j, NULL, 0)
				  : jpeek_array(j);
		j->depth--;
		return rc;
	case '"':
		return jpeek_string(j, v);
	case 't':
		return jpeek_literal(j, "true");
	case 'f':
		return jpeek_literal(j, "false");
	case 'n':
		return jpeek_literal(j, "null");
	default:
		return jpeek_number(j, v);
	}
}

/* Records member (key, v) in the fields it names (the last one wins). */
static void
jpeek_member(struct jpeek_field *f, size_t nf, const struct jpeek_val *key,
    const struct jpeek_val *v)
{
	size_t k;

	for (k = 0; k < nf; k++) {
		if (key->escaped || strlen(f[k].name) != key->len ||
		    memcmp(f[k].name, key->s, key->len) != 0)
			continue;
		f[k].found =
		    (f[k].type == JPEEK_STRING && v->kind == JPV_STRING) ||
		    (f[k].type == JPEEK_INT && v->kind == JPV_INT);
		f[k].s = v->s;
		f[k].len = v->len;
		f[k].s_escaped = v->escaped;
		f[k].i = v->i;
	}
}

/* An object; j->p is at '{'. Its members fill f (NULL below the top). */
static int
jpeek_object_body(struct jpeek *j, struct jpeek_field *f, size_t nf)
{
	struct jpeek_val key, v;

	j->p++;
	jpeek_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		jpeek_ws(j);
		if (j->p >= j->end || *j->p != '"' ||
		    jpeek_string(j, &key) == -1)
			return -1;
		jpeek_ws(j);
		if (j->p >= j->end || *j->p++ != ':')
			return -1;
		if (jpeek_value(j, &v) == -1)
			return -1;
		if (f != NULL)
			jpeek_member(f, nf, &key, &v);
		jpeek_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p++ == '}')
			return 0;
		if (j->p[-1] != ',')
			return -1;
	}
}

int
jpeek_object(const char *buf, size_t len, struct jpeek_field *f, size_t nf)
{
	struct jpeek j = {(const unsigned char *)buf,
	    (const unsigned char *)buf + len, 1};
	size_t k;
	int rc;

	for (k = 0; k < nf; k++) {
		f[k].found = false;
		f[k].s = NULL;
		f[k].len = 0;
		f[k].s_escaped = false;
		f[k].i = 0;
	}
	jpeek_ws(&j);
	if (j.p >= j.end)
		return -1;
	if (*j.p == '{')
		rc = jpeek_object_body(&j, f, nf);
	else if (*j.p == '[')
		rc = jpeek_array(&j);
	else
		return -1; /* jansson wants an object or an array */
	jpeek_ws(&j);
	if (rc == -1 || j.p != j.end) {
		for (k = 0; k < nf; k++)
			f[k].found = false;
		return -1;
	}
	return 0;
}
