/*
 * fakeprov_util.c - fakeprov's helpers: times in the providers' formats,
 * JSON getters, base64 and hex, fresh ids, segment counts, name/value
 * lists (forms, queries, headers) and the JSON writer of the hot path.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "compat.h"
#include "xmalloc.h"
#include "fakeprov.h"

/* ---------------------------------------------------------------------
 * small helpers
 */

double
fp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Now + offset_s (UTC) in format f, into buf. */
const char *
fp_time_text(enum fp_tfmt f, long offset_s, char *buf, size_t len)
{
	time_t t = time(NULL) + offset_s;
	struct tm tm;
	size_t n = 0;

	gmtime_r(&t, &tm);
	switch (f) {
	case FP_T_RFC2822:
		n = strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
		break;
	case FP_T_ISO:
		n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000+00:00", &tm);
		break;
	case FP_T_SQL:
		n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
		break;
	case FP_T_PLIVO:
		n = strftime(buf, len, "%Y-%m-%d %H:%M:%S+00:00", &tm);
		break;
	case FP_T_SCTS:
		n = (size_t)snprintf(buf, len, "%02d%02d%02d%02d%02d",
		    tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min);
		break;
	}
	if (n == 0 || n >= len)
		buf[0] = '\0';
	return buf;
}

bool
fp_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* A JSON string of s: null for NULL, U+FFFD for invalid UTF-8. */
json_t *
fp_jstr(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) == NULL)
		j = json_string("\xef\xbf\xbd");
	return j;
}

/* Like fp_jstr for n bytes that may hold NULs or invalid UTF-8. */
json_t *
fp_jstrn(const char *s, size_t n)
{
	json_t *j;

	if (s == NULL || n == 0) /* evbuffer_pullup() of nothing is NULL */
		return json_string("");
	if ((j = json_stringn(s, n)) == NULL)
		j = json_string("\xef\xbf\xbd");
	return j;
}

const char *
fp_jget(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

long long
fp_jint(const json_t *obj, const char *key, long long def)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return def;
}

void
fp_b64(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	if (outlen < 4 * ((len + 2) / 3) + 1) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Decodes base64 'in' into out; returns the byte count or -1. */
int
fp_unb64(const char *in, unsigned char *out, size_t outlen)
{
	size_t len = strlen(in);
	int n;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > outlen)
		return -1;
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len)) < 0)
		return -1;
	if (in[len - 1] == '=')
		n--;
	if (in[len - 2] == '=')
		n--;
	return n;
}

void
fp_hex(const unsigned char *in, size_t len, bool upper, char *out)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/*
 * A fresh provider id: 'prefix' then 'hexlen' hex digits, the process's
 * random prefix followed by a counter (unique, and cheap per request).
 */
void
fp_new_id(struct fp *fp, const char *prefix, int hexlen, char *buf, size_t len)
{
	snprintf(buf, len, "%s%.*s%0*llx", prefix, hexlen - 16, fp->id_prefix,
	    16, (unsigned long long)++fp->ids);
}

/* A UUID-shaped fresh id (Plivo, Telnyx). */
void
fp_new_uuid(struct fp *fp, char *buf, size_t len)
{
	unsigned long long n = ++fp->ids;

	snprintf(buf, len, "%.8s-%.4s-4%.3s-8%.3s-%012llx", fp->id_prefix,
	    fp->id_prefix + 8, fp->id_prefix + 12, fp->id_prefix + 13,
	    n & 0xffffffffffffULL);
}

/* Number of code points in UTF-8 s. */
size_t
fp_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * Segments the way carriers count them, close enough for a fake: GSM-7
 * (160, or 153 per part) when every character is printable ASCII or a
 * line break, with the extension characters counting two; else UCS-2
 * (70, or 67 per part) in UTF-16 units.
 */
unsigned
fp_segments(const char *s, bool *ucs2)
{
	const unsigned char *p;
	size_t gsm = 0, units = 0;
	bool u = false;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p & 0xc0) == 0x80)
			continue;
		if (*p >= 0x80 || *p == '`' ||
		    (*p < 0x20 && *p != '\n' && *p != '\r'))
			u = true;
		gsm += strchr("^{}\\[]~|", *p) != NULL ? 2 : 1;
		units += *p >= 0xf0 ? 2 : 1; /* 4-byte UTF-8: a pair */
	}
	if (ucs2 != NULL)
		*ucs2 = u;
	if (u)
		return units <= 70 ? 1 : (unsigned)((units + 66) / 67);
	return gsm <= 160 ? 1 : (unsigned)((gsm + 152) / 153);
}

/* ---------------------------------------------------------------------
 * name/value lists
 */

/* Appends key=value to f as they are (owned by f unless borrowed). */
static void
fp_form_push(struct fp_form *f, char *key, char *value)
{
	if (f->n == f->cap) {
		f->cap = f->cap == 0 ? 16 : 2 * f->cap;
		f->kv = xreallocarray(f->kv, f->cap, sizeof(*f->kv));
	}
	f->kv[f->n].key = key;
	f->kv[f->n].value = value;
	f->n++;
}

void
fp_form_add(struct fp_form *f, const char *key, const char *value)
{
	fp_form_push(f, xstrdup(key), xstrdup(value));
}

/* Sets key to value (NULL removes it), replacing every earlier value. */
void
fp_form_set(struct fp_form *f, const char *key, const char *value)
{
	size_t i, j;

	for (i = j = 0; i < f->n; i++) {
		if (strcmp(f->kv[i].key, key) == 0) {
			free(f->kv[i].key);
			free(f->kv[i].value);
			continue;
		}
		f->kv[j++] = f->kv[i];
	}
	f->n = j;
	if (value != NULL)
		fp_form_add(f, key, value);
}

const char *
fp_form_get(const struct fp_form *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return f->kv[i].value;
	return NULL;
}

void
fp_form_clear(struct fp_form *f)
{
	size_t i;

	for (i = 0; i < f->n && !f->borrowed; i++) {
		free(f->kv[i].key);
		free(f->kv[i].value);
	}
	free(f->kv);
	memset(f, 0, sizeof(*f));
}

int
fp_kv_cmp(const void *a, const void *b)
{
	const struct fp_kv *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r != 0 ? r : strcmp(x->value, y->value);
}

/* A copy of f's pairs sorted bytewise by name, then value (borrowed). */
struct fp_kv *
fp_form_sorted(const struct fp_form *f)
{
	struct fp_kv *s = xreallocarray(NULL, f->n + 1, sizeof(*s));

	if (f->n > 0)
		memcpy(s, f->kv, f->n * sizeof(*s));
	qsort(s, f->n, sizeof(*s), fp_kv_cmp);
	return s;
}

/* application/x-www-form-urlencoded: k=v&k=v, spaces as '+'. */
char *
fp_form_encode(const struct fp_form *f, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	char *k, *v, *s;
	size_t i, n;

	for (i = 0; i < f->n; i++) {
		k = evhttp_uriencode(f->kv[i].key, -1, 1);
		v = evhttp_uriencode(f->kv[i].value, -1, 1);
		evbuffer_add_printf(b, "%s%s=%s", i > 0 ? "&" : "", k, v);
		free(k);
		free(v);
	}
	n = evbuffer_get_length(b);
	s = xmalloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	*len = n;
	return s;
}

static int
fp_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes s in place, '+' as a space (forms); returns s. */
static char *
fp_pct_decode(char *s)
{
	char *r, *w = s;
	int hi, lo;

	for (r = s; *r != '\0'; r++) {
		if (*r == '+')
			*w++ = ' ';
		else if (*r == '%' && (hi = fp_hexval(r[1])) >= 0 &&
		    (lo = fp_hexval(r[2])) >= 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else
			*w++ = *r;
	}
	*w = '\0';
	return s;
}

/*
 * Splits the urlencoded form or query s into f, decoding in place: f
 * borrows its strings from s. The per-request path, so no copies.
 */
void
fp_form_parse(struct fp_form *f, char *s)
{
	char *part, *eq;

	f->borrowed = true;
	while ((part = strsep(&s, "&")) != NULL) {
		if (*part == '\0')
			continue;
		if ((eq = strchr(part, '=')) != NULL)
			*eq++ = '\0';
		fp_form_push(f, fp_pct_decode(part),
		    eq != NULL ? fp_pct_decode(eq) : part + strlen(part));
	}
}

/*
 * Parses a urlencoded form or query string (n bytes of s) into a JSON
 * object: name -> value, or name -> [values] when a name repeats. Names
 * and values are percent-decoded and '+' is a space.
 */
json_t *
fp_form_json(const char *s, size_t n)
{
	json_t *obj = json_object(), *old, *val;
	const char *p = s, *end = s + n, *amp, *eq;
	char *part, *key, *value;
	size_t klen, vlen;

	while (p < end) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp > p) {
			part = xstrndup(p, (size_t)(amp - p));
			eq = strchr(part, '=');
			if (eq != NULL)
				part[eq - part] = '\0';
			key = evhttp_uridecode(part, 1, &klen);
			value = evhttp_uridecode(eq != NULL ? eq + 1 : "", 1,
			    &vlen);
			val = fp_jstrn(value, vlen);
			if ((old = json_object_get(obj, key)) == NULL)
				json_object_set_new(obj, key, val);
			else if (json_is_array(old))
				json_array_append_new(old, val);
			else
				json_object_set_new(obj, key,
				    json_pack("[Oo]", old, val));
			free(key);
			free(value);
			free(part);
		}
		p = amp + 1;
	}
	return obj;
}

/* Appends the JSON object's string members to f (arrays: each value). */
void
fp_form_merge_json(struct fp_form *f, const json_t *obj)
{
	const char *key;
	json_t *v, *e;
	char num[32];
	size_t i;

	json_object_foreach((json_t *)obj, key, v) {
		if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(v));
			fp_form_set(f, key, num);
		} else if (json_is_string(v))
			fp_form_set(f, key, json_string_value(v));
		else if (json_is_null(v) || json_is_array(v))
			fp_form_set(f, key, NULL);
		json_array_foreach(v, i, e)
			if (json_is_string(e))
				fp_form_add(f, key, json_string_value(e));
	}
}

/* ---------------------------------------------------------------------
 * writing JSON on the hot path
 *
 * One record line and one answer per request: building jansson objects
 * for them cost a quarter of the fake's time, so these write straight
 * into an evbuffer. Everything else uses jansson.
 */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
fp_utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

/* Appends the escape of byte ch ('"', '\\' or a control) to b. */
static void
fp_jw_escape(struct evbuffer *b, unsigned char ch)
{
	char esc[8];

	if (ch == '"' || ch == '\\')
		snprintf(esc, sizeof(esc), "\\%c", ch);
	else if (ch == '\n')
		strlcpy(esc, "\\n", sizeof(esc));
	else if (ch == '\r')
		strlcpy(esc, "\\r", sizeof(esc));
	else if (ch == '\t')
		strlcpy(esc, "\\t", sizeof(esc));
	else
		snprintf(esc, sizeof(esc), "\\u%04x", ch);
	evbuffer_add(b, esc, strlen(esc));
}

/* Appends n bytes of s as a JSON string; invalid UTF-8 bytes become
 * U+FFFD. */
void
fp_jw_str(struct evbuffer *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *run, *end = p + n;
	size_t len;

	evbuffer_add(b, "\"", 1);
	for (run = p; p < end;) {
		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
			p++;
			continue;
		}
		len = *p >= 0x80 ? fp_utf8_seq(p, (size_t)(end - p)) : 1;
		if (*p >= 0x80 && len > 0) {
			p += len;
			continue;
		}
		evbuffer_add(b, run, (size_t)(p - run));
		if (*p >= 0x80)
			evbuffer_add(b, "\xef\xbf\xbd", 3);
		else
			fp_jw_escape(b, *p);
		run = ++p;
	}
	evbuffer_add(b, run, (size_t)(p - run));
	evbuffer_add(b, "\"", 1);
}

/* s as a JSON string, or null. */
void
fp_jw_strz(struct evbuffer *b, const char *s)
{
	if (s == NULL)
		evbuffer_add(b, "null", 4);
	else
		fp_jw_str(b, s, strlen(s));
}

/* ,"key": then s as a JSON string or null. */
void
fp_jw_kv(struct evbuffer *b, const char *key, const char *s)
{
	evbuffer_add_printf(b, ",\"%s\":", key);
	fp_jw_strz(b, s);
}

/* A form as a JSON object; a repeated name becomes an array. */
void
fp_jw_form(struct evbuffer *b, const struct fp_form *f)
{
	size_t i, j, n, k = 0;

	evbuffer_add(b, "{", 1);
	for (i = 0; i < f->n; i++) {
		for (j = 0, n = 0; j < f->n; j++)
			if (strcmp(f->kv[j].key, f->kv[i].key) == 0) {
				if (j < i)
					break;
				n++;
			}
		if (j < f->n)
			continue; /* written with its first occurrence */
		evbuffer_add(b, ",", k++ > 0);
		fp_jw_strz(b, f->kv[i].key);
		evbuffer_add(b, n > 1 ? ":[" : ":", n > 1 ? 2 : 1);
		for (j = i, n = 0; j < f->n; j++)
			if (strcmp(f->kv[j].key, f->kv[i].key) == 0) {
				evbuffer_add(b, ",", n++ > 0);
				fp_jw_strz(b, f->kv[j].value);
			}
		evbuffer_add(b, "]", n > 1);
	}
	evbuffer_add(b, "}", 1);
}

/* ---------------------------------------------------------------------
 * small helpers
 */

const char *
fp_str(const json_t *spec, const char *key, const char *def)
{
	const char *v = fp_jget(spec, key);

	return v != NULL ? v : def;
}
