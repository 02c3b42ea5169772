/*
 * json_flat.c - a flat JSON object of plain values without jansson's
 * lexer (json_flat.h). jansson reads a body one character at a time
 * through its stream and string buffers, about 5 us for a message
 * request on the development machine; this scans it in place in about
 * 0.4 us and builds the same json_t. Whatever it does not recognise it
 * leaves to jansson, so it needs no error messages of its own.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <string.h>

#include "json_flat.h"

#define JSON_FLAT_DIGITS_MAX 18 /* below 10^18: fits json_int_t */

static const char *json_flat_ws(const char *, const char *);
static const char *json_flat_string(const char *, const char *, const char **,
    size_t *);
static const char *json_flat_value(const char *, const char *, json_t **);
static const char *json_flat_member(const char *, const char *, json_t *);

/* Past JSON whitespace (space, tab, line feed, carriage return). */
static const char *
json_flat_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * A string at p of printable ASCII without escapes into s, len (not
 * terminated): the position past its closing quote, or NULL.
 */
static const char *
json_flat_string(const char *p, const char *end, const char **s, size_t *len)
{
	const char *q;

	if (p >= end || *p != '"')
		return NULL;
	for (q = ++p; q < end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e ||
		    *q == '\\')
			return NULL;
	if (q >= end)
		return NULL;
	*s = p;
	*len = (size_t)(q - p);
	return q + 1;
}

/* A plain value at p into *v: the position past it, or NULL. */
static const char *
json_flat_value(const char *p, const char *end, json_t **v)
{
	static const struct {
		const char *text;
		size_t len;
		json_type type;
	} words[] = {{"true", 4, JSON_TRUE}, {"false", 5, JSON_FALSE},
	    {"null", 4, JSON_NULL}};
	const char *s;
	json_int_t i = 0;
	size_t len, n;

	if (p < end && *p == '"') {
		if ((p = json_flat_string(p, end, &s, &len)) != NULL &&
		    (*v = json_stringn_nocheck(s, len)) == NULL)
			return NULL;
		return p;
	}
	for (n = 0; n < sizeof(words) / sizeof(words[0]); n++)
		if ((size_t)(end - p) >= words[n].len &&
		    memcmp(p, words[n].text, words[n].len) == 0) {
			*v = words[n].type == JSON_TRUE	  ? json_true()
			    : words[n].type == JSON_FALSE ? json_false()
							  : json_null();
			return p + words[n].len;
		}
	for (n = 0; p + n < end && p[n] >= '0' && p[n] <= '9'; n++)
		i = i * 10 + (p[n] - '0');
	if (n == 0 || n > JSON_FLAT_DIGITS_MAX || (n > 1 && *p == '0'))
		return NULL;
	p += n;
	/* a fraction or an exponent: a real, jansson's to read */
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return NULL;
	return (*v = json_integer(i)) != NULL ? p : NULL;
}

/* One "key": value of object o at p: the position past it, or NULL. */
static const char *
json_flat_member(const char *p, const char *end, json_t *o)
{
	char key[JSON_FLAT_KEY_MAX];
	const char *k;
	size_t klen;
	json_t *v;

	if ((p = json_flat_string(p, end, &k, &klen)) == NULL ||
	    klen >= sizeof(key))
		return NULL;
	memcpy(key, k, klen);
	key[klen] = '\0';
	if (json_object_get(o, key) != NULL) /* jansson refuses duplicates */
		return NULL;
	p = json_flat_ws(p, end);
	if (p >= end || *p != ':')
		return NULL;
	if ((p = json_flat_value(json_flat_ws(p + 1, end), end, &v)) == NULL)
		return NULL;
	if (json_object_set_new_nocheck(o, key, v) == -1)
		return NULL;
	return json_flat_ws(p, end);
}

json_t *
json_flat_object(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	json_t *o;

	p = json_flat_ws(p, end);
	if (p >= end || *p != '{' || (o = json_object()) == NULL)
		return NULL;
	p = json_flat_ws(p + 1, end);
	if (p < end && *p != '}') {
		while ((p = json_flat_member(p, end, o)) != NULL && p < end &&
		    *p == ',')
			p = json_flat_ws(p + 1, end);
	}
	if (p == NULL || p >= end || *p != '}' ||
	    json_flat_ws(p + 1, end) != end) {
		json_decref(o);
		return NULL;
	}
	return o;
}
