/*
 * json_fast.c - the fast JSON paths on jsmn's tokens (json_fast.h).
 *
 * jsmn (Debian's libjsmn-dev, strict mode, the one file that includes
 * it) splits a text into tokens in place. Even strict, it checks less
 * than JSON's grammar: it does not look at commas and colons (a missing,
 * doubled or trailing one passes), takes any run of printable ASCII that
 * starts with -, a digit, t, f or n as a primitive ("tru", "01", "1."),
 * lets control characters and invalid UTF-8 through in strings, stops at
 * a NUL byte and accepts text after the first value. The glue here
 * checks exactly that, as jansson's lexer reads it: jf_value() walks the
 * tokens in order and checks the bytes between them (whitespace: space,
 * tab, CR, LF; and the one punctuation the grammar wants there), each
 * primitive against the grammar (true, false, null,
 * -?(0|[1-9][0-9]*)(.[0-9]+)?), each string for control characters and
 * UTF-8 (no overlong forms, no surrogates), and jf_parse() that nothing
 * but whitespace follows. What jansson could still refuse or read
 * differently (\u escapes, exponents, numbers of more than 18
 * characters, deep nesting, more tokens than the array holds) is not
 * judged here: -1, and the caller asks jansson.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "json_fast.h"

#define JF_NUM_MAX 18 /* characters of a number: no overflow */

/* A text, tokenized and checked by jf_parse(). */
struct jf_doc {
	const char *buf;
	size_t len;
	jsmntok_t tok[JSON_FAST_TOKENS];
	int ntok;
	bool escapes;  /* some string holds an escape */
	bool nonascii; /* some string holds a byte past printable ASCII */
};

/* jf_parse()'s walk over the tokens. */
struct jf_walk {
	struct jf_doc *d;
	int next;   /* the next token */
	size_t pos; /* the next byte */
	int depth;
};

enum jf_prim { JF_BAD, JF_TRUE, JF_FALSE, JF_NULL, JF_INT, JF_REAL };

static int jf_value(struct jf_walk *);

static size_t
jf_digits(const char *s, size_t n, size_t i)
{
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* What a primitive token's s[0..n-1] is; JF_BAD when not sure. */
static enum jf_prim
jf_primitive(const char *s, size_t n)
{
	bool real = false;
	size_t i = 0;

	if (n == 4 && memcmp(s, "true", 4) == 0)
		return JF_TRUE;
	if (n == 5 && memcmp(s, "false", 5) == 0)
		return JF_FALSE;
	if (n == 4 && memcmp(s, "null", 4) == 0)
		return JF_NULL;
	if (n > JF_NUM_MAX) /* jansson's: it may not fit */
		return JF_BAD;
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		i = jf_digits(s, n, i);
	else
		return JF_BAD;
	if (i < n && s[i] == '.') {
		if (++i >= n || s[i] < '0' || s[i] > '9')
			return JF_BAD;
		i = jf_digits(s, n, i);
		real = true;
	}
	/* an exponent is left to jansson too */
	return i != n ? JF_BAD : real ? JF_REAL : JF_INT;
}

/* A JF_INT primitive's value (at most 18 characters: no overflow). */
static long long
jf_int(const char *s, size_t n)
{
	long long v = 0;
	size_t i;

	for (i = s[0] == '-'; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return s[0] == '-' ? -v : v;
}

/*
 * The length of the well-formed UTF-8 character at s[0] (a byte past
 * ASCII) within n bytes, or 0 (Unicode's table 3-7).
 */
static size_t
jf_utf8(const unsigned char *s, size_t n)
{
	static const struct {
		unsigned char first_lo, first_hi, lo, hi;
		size_t len;
	} forms[] = {
	    {0xC2, 0xDF, 0x80, 0xBF, 2},
	    {0xE0, 0xE0, 0xA0, 0xBF, 3},
	    {0xE1, 0xEC, 0x80, 0xBF, 3},
	    {0xED, 0xED, 0x80, 0x9F, 3}, /* not the UTF-16 surrogates */
	    {0xEE, 0xEF, 0x80, 0xBF, 3},
	    {0xF0, 0xF0, 0x90, 0xBF, 4},
	    {0xF1, 0xF3, 0x80, 0xBF, 4},
	    {0xF4, 0xF4, 0x80, 0x8F, 4},
	};
	size_t f, k;

	for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		if (s[0] < forms[f].first_lo || s[0] > forms[f].first_hi)
			continue;
		if (n < forms[f].len || s[1] < forms[f].lo ||
		    s[1] > forms[f].hi)
			return 0;
		for (k = 2; k < forms[f].len; k++)
			if ((s[k] & 0xC0) != 0x80)
				return 0;
		return forms[f].len;
	}
	return 0;
}

/*
 * How many bytes from s on (at most n) need no look in jf_string(): a
 * run of printable ASCII but the backslash, taken eight at a time (the
 * "has a byte less than" and "has a zero byte" tricks of Bit Twiddling
 * Hacks on a 64-bit word). The answer may stop short of the run's end,
 * never past it.
 */
static size_t
jf_plain_run(const unsigned char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	uint64_t w, bs;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		bs = w ^ (ones * '\\');
		/* a byte < 0x20, >= 0x80, equal to '\\' or to 0x7f */
		if (((w - ones * 0x20) | w | ((bs - ones) & ~bs) |
			((w + ones) & highs & ~w)) &
		    highs)
			break;
	}
	return i;
}

/* A string token's bytes: 0, or -1 (a control character, \u, bad UTF-8). */
static int
jf_string(struct jf_doc *d, const jsmntok_t *t)
{
	const unsigned char *s = (const unsigned char *)d->buf + t->start;
	size_t n = (size_t)(t->end - t->start), i, k;

	for (i = 0; i < n; i++) {
		i += jf_plain_run(s + i, n - i);
		if (i >= n)
			break;
		if (s[i] < 0x20)
			return -1;
		if (s[i] == '\\') {
			/* jsmn checked the letter; \u is jansson's (a lone
			 * surrogate, NUL) */
			if (i + 1 >= n || s[i + 1] == 'u')
				return -1;
			d->escapes = true;
			i++;
		} else if (s[i] >= 0x7f) {
			d->nonascii = true;
			if (s[i] == 0x7f)
				continue;
			if ((k = jf_utf8(s + i, n - i)) == 0)
				return -1;
			i += k - 1;
		}
	}
	return 0;
}

static size_t
jf_ws(const struct jf_doc *d, size_t p)
{
	while (p < d->len &&
	    (d->buf[p] == ' ' || d->buf[p] == '\t' || d->buf[p] == '\n' ||
		d->buf[p] == '\r'))
		p++;
	return p;
}

/* Past whitespace, the byte c. */
static int
jf_punct(struct jf_walk *w, char c)
{
	w->pos = jf_ws(w->d, w->pos);
	if (w->pos >= w->d->len || w->d->buf[w->pos] != c)
		return -1;
	w->pos++;
	return 0;
}

/* The next token, if it starts right after whitespace (a string: its
 * opening quote); NULL if not. */
static const jsmntok_t *
jf_token(struct jf_walk *w)
{
	const jsmntok_t *t;

	if (w->next >= w->d->ntok)
		return NULL;
	t = &w->d->tok[w->next++];
	w->pos = jf_ws(w->d, w->pos);
	if (w->pos != (size_t)t->start - (t->type == JSMN_STRING))
		return NULL;
	return t;
}

/* An object's or an array's members, and its closing bracket. */
static int
jf_container(struct jf_walk *w, const jsmntok_t *t)
{
	bool obj = t->type == JSMN_OBJECT;
	const jsmntok_t *key;
	int k;

	if (++w->depth > JPEEK_DEPTH_MAX)
		return -1;
	w->pos = (size_t)t->start + 1;
	for (k = 0; k < t->size; k++) {
		if (k > 0 && jf_punct(w, ',') == -1)
			return -1;
		if (obj) {
			if ((key = jf_token(w)) == NULL ||
			    key->type != JSMN_STRING || key->size != 1 ||
			    jf_string(w->d, key) == -1)
				return -1;
			w->pos = (size_t)key->end + 1;
			if (jf_punct(w, ':') == -1)
				return -1;
		}
		if (jf_value(w) == -1)
			return -1;
	}
	if (jf_punct(w, obj ? '}' : ']') == -1 || w->pos != (size_t)t->end)
		return -1;
	w->depth--;
	return 0;
}

/* The value at the next token, with everything in it. */
static int
jf_value(struct jf_walk *w)
{
	const jsmntok_t *t = jf_token(w);

	if (t == NULL)
		return -1;
	switch (t->type) {
	case JSMN_STRING:
		if (t->size != 0 || jf_string(w->d, t) == -1)
			return -1;
		w->pos = (size_t)t->end + 1;
		return 0;
	case JSMN_PRIMITIVE:
		if (jf_primitive(w->d->buf + t->start,
			(size_t)(t->end - t->start)) == JF_BAD)
			return -1;
		w->pos = (size_t)t->end;
		return 0;
	case JSMN_OBJECT:
	case JSMN_ARRAY:
		return jf_container(w, t);
	default:
		return -1;
	}
}

/*
 * Tokenizes buf into d and checks it: 0 for an object or an array that
 * jansson accepts and reads as the tokens say, -1 when not sure.
 */
static int
jf_parse(struct jf_doc *d, const char *buf, size_t len)
{
	struct jf_walk w;
	jsmn_parser p;

	d->buf = buf;
	d->len = len;
	d->escapes = d->nonascii = false;
	if (len > INT_MAX) /* jsmn's positions are ints */
		return -1;
	jsmn_init(&p);
	d->ntok = jsmn_parse(&p, buf, len, d->tok, JSON_FAST_TOKENS);
	/* jansson wants an object or an array at the top */
	if (d->ntok < 1 ||
	    (d->tok[0].type != JSMN_OBJECT && d->tok[0].type != JSMN_ARRAY))
		return -1;
	w = (struct jf_walk){.d = d};
	if (jf_value(&w) == -1 || w.next != d->ntok || jf_ws(d, w.pos) != len)
		return -1;
	return 0;
}

/* The token past the value at token i and everything in it. */
static int
jf_skip(const struct jf_doc *d, int i)
{
	int end = d->tok[i].end;

	for (i++; i < d->ntok && d->tok[i].start < end; i++)
		;
	return i;
}

/* Records the top-level member at key token k in the fields it names
 * (the last one wins). */
static void
jpeek_member(const struct jf_doc *d, int k, struct jpeek_field *f, size_t nf)
{
	const jsmntok_t *key = &d->tok[k], *v = &d->tok[k + 1];
	const char *ks = d->buf + key->start, *vs = d->buf + v->start;
	size_t klen = (size_t)(key->end - key->start);
	size_t vlen = (size_t)(v->end - v->start);
	bool is_int;
	size_t i;

	if (memchr(ks, '\\', klen) != NULL) /* names are plain */
		return;
	is_int = v->type == JSMN_PRIMITIVE && jf_primitive(vs, vlen) == JF_INT;
	for (i = 0; i < nf; i++) {
		if (strlen(f[i].name) != klen || memcmp(f[i].name, ks, klen))
			continue;
		f[i].found =
		    (f[i].type == JPEEK_STRING && v->type == JSMN_STRING) ||
		    (f[i].type == JPEEK_INT && is_int);
		f[i].s = v->type == JSMN_STRING ? vs : NULL;
		f[i].len = v->type == JSMN_STRING ? vlen : 0;
		f[i].s_escaped =
		    v->type == JSMN_STRING && memchr(vs, '\\', vlen) != NULL;
		f[i].i = is_int ? jf_int(vs, vlen) : 0;
	}
}

int
jpeek_object(const char *buf, size_t len, struct jpeek_field *f, size_t nf)
{
	struct jf_doc d;
	size_t i;
	int k;

	for (i = 0; i < nf; i++) {
		f[i].found = false;
		f[i].s = NULL;
		f[i].len = 0;
		f[i].s_escaped = false;
		f[i].i = 0;
	}
	if (jf_parse(&d, buf, len) == -1)
		return -1;
	if (d.tok[0].type == JSMN_OBJECT)
		for (k = 1; k < d.ntok; k = jf_skip(&d, k + 1))
			jpeek_member(&d, k, f, nf);
	return 0;
}

/* A plain value of a flat object as jansson builds it, or NULL. */
static json_t *
json_flat_value(const struct jf_doc *d, const jsmntok_t *t)
{
	const char *s = d->buf + t->start;
	size_t n = (size_t)(t->end - t->start);

	if (t->type == JSMN_STRING)
		return json_stringn_nocheck(s, n);
	if (t->type != JSMN_PRIMITIVE)
		return NULL;
	switch (jf_primitive(s, n)) {
	case JF_TRUE:
		return json_true();
	case JF_FALSE:
		return json_false();
	case JF_NULL:
		return json_null();
	case JF_INT:
		return s[0] != '-' ? json_integer(jf_int(s, n)) : NULL;
	default:
		return NULL;
	}
}

/* The member at key token k into o: 0, or -1 (a duplicate, not plain). */
static int
json_flat_member(json_t *o, const struct jf_doc *d, int k)
{
	const jsmntok_t *key = &d->tok[k];
	size_t klen = (size_t)(key->end - key->start);
	char name[JSON_FLAT_KEY_MAX];
	json_t *v;

	if (klen >= sizeof(name))
		return -1;
	memcpy(name, d->buf + key->start, klen);
	name[klen] = '\0';
	if (json_object_get(o, name) != NULL) /* jansson refuses duplicates */
		return -1;
	if ((v = json_flat_value(d, &d->tok[k + 1])) == NULL)
		return -1;
	return json_object_set_new_nocheck(o, name, v);
}

json_t *
json_flat_object(const char *buf, size_t len)
{
	struct jf_doc d;
	json_t *o;
	int k;

	/* printable ASCII without escapes: the bytes are the value */
	if (jf_parse(&d, buf, len) == -1 || d.tok[0].type != JSMN_OBJECT ||
	    d.escapes || d.nonascii || (o = json_object()) == NULL)
		return NULL;
	for (k = 1; k < d.ntok; k += 2)
		if (json_flat_member(o, &d, k) == -1) {
			json_decref(o);
			return NULL;
		}
	return o;
}
