/*
 * config_value.c - one "key = value" into a typed field.
 *
 * The loader (config.c) hands each key it knows to the setter of the key's
 * value type, config_setters[]: strings, paths made absolute, URLs,
 * numbers, durations with units, sizes with K/M/G, log levels and
 * targets, listen addresses, booleans, doubles and choices. The
 * config_section_*() getters the adapters call for their own keys parse
 * with the very same functions, so a bad value reads the same wherever it
 * is. Nothing here reads files or knows what a section means; see
 * config-internal.h for what the two files share.
 *
 * Errors are "FILE:LINE: what is wrong", naming the key and, for ranges,
 * the bounds in the units the key is written in.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "config_section.h"
#include "config-internal.h"
#include "log.h"
#include "xmalloc.h"

static int config_val_fail(const struct config_val *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int config_parse_uint64(const char *s, size_t len, uint64_t *out);
static int config_val_uint(const struct config_val *v, uint64_t min,
    uint64_t max, uint64_t *out);
static int config_val_duration(const struct config_val *v, uint64_t min,
    uint64_t max, uint64_t *out);
static int config_val_bool(const struct config_val *v, bool *out);
static const char *config_size_to_text(uint64_t n, char *buf, size_t len);
static config_set_fn config_set_string;
static config_set_fn config_set_path;
static config_set_fn config_set_url;
static config_set_fn config_set_uint;
static config_set_fn config_set_duration;
static config_set_fn config_set_duration_s;
static config_set_fn config_set_size;
static config_set_fn config_set_level;
static config_set_fn config_set_log;
static config_set_fn config_set_listen;
static config_set_fn config_set_bool;
static config_set_fn config_set_double;
static config_set_fn config_set_choice;

config_set_fn *const config_setters[CONFIG_T_COUNT] = {
    [CONFIG_T_STRING] = config_set_string,
    [CONFIG_T_PATH] = config_set_path,
    [CONFIG_T_URL] = config_set_url,
    [CONFIG_T_UINT] = config_set_uint,
    [CONFIG_T_DURATION] = config_set_duration,
    [CONFIG_T_DURATION_S] = config_set_duration_s,
    [CONFIG_T_SIZE] = config_set_size,
    [CONFIG_T_LEVEL] = config_set_level,
    [CONFIG_T_LOG] = config_set_log,
    [CONFIG_T_LISTEN] = config_set_listen,
    [CONFIG_T_BOOL] = config_set_bool,
    [CONFIG_T_DOUBLE] = config_set_double,
    [CONFIG_T_CHOICE] = config_set_choice,
};

/* Writes "FILE:LINE: message" (or "FILE: message" for line 0) into err. */
int
config_fail(char *err, size_t errlen, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return -1;
	if (line > 0)
		n = snprintf(err, errlen, "%s:%d: ", file, line);
	else
		n = snprintf(err, errlen, "%s: ", file);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
config_val_fail(const struct config_val *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return config_fail(v->err, v->errlen, v->file, v->line, "%s", msg);
}

/* The entry of 'key' in sec (borrowed), or NULL if absent. */
const struct config_kv *
config_kv_lookup(const struct config_section *sec, const char *key)
{
	size_t i;

	for (i = 0; i < sec->nkv; i++)
		if (strcmp(sec->kv[i].key, key) == 0)
			return &sec->kv[i];
	return NULL;
}

/* Points v at kv of sec and at err; v->cwd is left alone. */
void
config_val_init(struct config_val *v, const struct config_section *sec,
    const struct config_kv *kv, char *err, size_t errlen)
{
	v->file = sec->file;
	v->key = kv->key;
	v->value = kv->value;
	v->line = kv->line;
	v->err = err;
	v->errlen = errlen;
}

/*
 * A new string (caller frees): path made absolute against cwd, without
 * "./" prefixes or trailing '/'.
 */
char *
config_abspath(const char *cwd, const char *path)
{
	char *abs;
	size_t n;

	if (path[0] == '/')
		abs = xstrdup(path);
	else {
		while (strncmp(path, "./", 2) == 0)
			path += 2 + strspn(path + 2, "/");
		if (*path == '\0' || strcmp(path, ".") == 0)
			abs = xstrdup(cwd);
		else
			abs = xasprintf("%s%s%s", cwd,
			    strcmp(cwd, "/") == 0 ? "" : "/", path);
	}
	n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = '\0';
	return abs;
}

/*
 * The first len characters of s, which must all be decimal digits (no
 * sign, no space). A number too large for 64 bits saturates to
 * UINT64_MAX, so it fails as out of range rather than as a bad number.
 */
static int
config_parse_uint64(const char *s, size_t len, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || strspn(s, "0123456789") < len)
		return -1;
	for (i = 0; i < len; i++) {
		if (n > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*out = n;
	return 0;
}

static int
config_val_uint(const struct config_val *v, uint64_t min, uint64_t max,
    uint64_t *out)
{
	if (config_parse_uint64(v->value, strlen(v->value), out) == -1)
		return config_val_fail(v, "%s = '%s' is not a whole number",
		    v->key, v->value);
	if (*out < min || *out > max)
		return config_val_fail(v, "%s must be between %llu and %llu",
		    v->key, (unsigned long long)min, (unsigned long long)max);
	return 0;
}

/*
 * A duration: digits plus an optional unit ms, s, m or h (default s),
 * into *out milliseconds, within [min, max] ms.
 */
static int
config_val_duration(const struct config_val *v, uint64_t min, uint64_t max,
    uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"", CONFIG_MS_S}, {"ms", 1}, {"s", CONFIG_MS_S},
	    {"m", CONFIG_MS_M}, {"h", CONFIG_MS_H}};
	char a[32], b[32];
	size_t n = strspn(v->value, "0123456789"), i;
	uint64_t val;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(v->value + n, units[i].unit) == 0)
			break;
	if (n == 0 || i == sizeof(units) / sizeof(units[0]))
		return config_val_fail(v,
		    "%s = '%s' is not a duration (a number with an optional "
		    "ms, s, m or h)",
		    v->key, v->value);
	if (config_parse_uint64(v->value, n, &val) == -1 ||
	    val > UINT64_MAX / units[i].ms)
		val = UINT64_MAX; /* surely out of range */
	else
		val *= units[i].ms;
	if (val < min || val > max)
		return config_val_fail(v, "%s must be between %s and %s",
		    v->key, config_duration_to_text(min, a, sizeof(a)),
		    config_duration_to_text(max, b, sizeof(b)));
	*out = val;
	return 0;
}

static int
config_val_bool(const struct config_val *v, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1", NULL};
	static const char *const no[] = {"no", "false", "off", "0", NULL};
	size_t i;

	for (i = 0; yes[i] != NULL; i++) {
		if (strcmp(v->value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(v->value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return config_val_fail(v,
	    "%s = '%s' is not a boolean (yes/no, true/false, on/off or 1/0)",
	    v->key, v->value);
}

/* 90000 -> "90s", 7200000 -> "2h": the largest unit that is exact. */
const char *
config_duration_to_text(uint64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % CONFIG_MS_H == 0)
		snprintf(buf, len, "%lluh",
		    (unsigned long long)(ms / CONFIG_MS_H));
	else if (ms != 0 && ms % CONFIG_MS_M == 0)
		snprintf(buf, len, "%llum",
		    (unsigned long long)(ms / CONFIG_MS_M));
	else if (ms % CONFIG_MS_S == 0)
		snprintf(buf, len, "%llus",
		    (unsigned long long)(ms / CONFIG_MS_S));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

static const char *
config_size_to_text(uint64_t n, char *buf, size_t len)
{
	if (n != 0 && n % CONFIG_GIB == 0)
		snprintf(buf, len, "%lluG",
		    (unsigned long long)(n / CONFIG_GIB));
	else if (n != 0 && n % CONFIG_MIB == 0)
		snprintf(buf, len, "%lluM",
		    (unsigned long long)(n / CONFIG_MIB));
	else if (n != 0 && n % CONFIG_KIB == 0)
		snprintf(buf, len, "%lluK",
		    (unsigned long long)(n / CONFIG_KIB));
	else
		snprintf(buf, len, "%llu", (unsigned long long)n);
	return buf;
}

/*
 * Setters, one per value type (config_setters[]): each parses v->value
 * as k describes, checks k's range, and stores the result at base +
 * k->off, freeing any string it replaces. They return 0, or -1 with
 * "FILE:LINE: ..." in v->err.
 */

static int
config_set_string(const struct config_val *v, const struct config_key *k,
    void *base)
{
	char **field = (char **)((char *)base + k->off);
	size_t n = strlen(v->value);

	if (n == 0)
		return config_val_fail(v, "%s must not be empty", v->key);
	if (n < k->min || n > k->max)
		return config_val_fail(v,
		    "%s must be %llu to %llu characters long", v->key,
		    (unsigned long long)k->min, (unsigned long long)k->max);
	free(*field);
	*field = xstrdup(v->value);
	return 0;
}

static int
config_set_path(const struct config_val *v, const struct config_key *k,
    void *base)
{
	char **field = (char **)((char *)base + k->off);

	if (config_set_string(v, k, base) == -1)
		return -1;
	free(*field);
	*field = config_abspath(v->cwd, v->value);
	return 0;
}

static int
config_set_url(const struct config_val *v, const struct config_key *k,
    void *base)
{
	const char *host;

	if (strncmp(v->value, "http://", 7) == 0)
		host = v->value + 7;
	else if (strncmp(v->value, "https://", 8) == 0)
		host = v->value + 8;
	else
		host = NULL;
	if (host == NULL || *host == '\0' || *host == '/' ||
	    strpbrk(v->value, " \t") != NULL)
		return config_val_fail(v,
		    "%s = '%s' is not an http:// or https:// URL", v->key,
		    v->value);
	return config_set_string(v, k, base);
}

static int
config_set_uint(const struct config_val *v, const struct config_key *k,
    void *base)
{
	uint64_t n;

	if (config_val_uint(v, k->min, k->max, &n) == -1)
		return -1;
	*(unsigned *)((char *)base + k->off) = (unsigned)n;
	return 0;
}

static int
config_set_duration(const struct config_val *v, const struct config_key *k,
    void *base)
{
	uint64_t ms;

	if (config_val_duration(v, k->min, k->max, &ms) == -1)
		return -1;
	*(unsigned *)((char *)base + k->off) = (unsigned)ms;
	return 0;
}

static int
config_set_duration_s(const struct config_val *v, const struct config_key *k,
    void *base)
{
	uint64_t ms;

	if (config_val_duration(v, k->min, k->max, &ms) == -1)
		return -1;
	if (ms % CONFIG_MS_S != 0)
		return config_val_fail(v, "%s must be whole seconds", v->key);
	*(unsigned *)((char *)base + k->off) = (unsigned)(ms / CONFIG_MS_S);
	return 0;
}

/* A size: digits plus an optional K, M or G (powers of 1024). */
static int
config_set_size(const struct config_val *v, const struct config_key *k,
    void *base)
{
	char a[32], b[32];
	size_t n = strspn(v->value, "0123456789");
	const char *unit = v->value + n;
	uint64_t val, mult;

	if (*unit == '\0')
		mult = 1;
	else if (strcmp(unit, "K") == 0 || strcmp(unit, "k") == 0)
		mult = CONFIG_KIB;
	else if (strcmp(unit, "M") == 0 || strcmp(unit, "m") == 0)
		mult = CONFIG_MIB;
	else if (strcmp(unit, "G") == 0 || strcmp(unit, "g") == 0)
		mult = CONFIG_GIB;
	else
		mult = 0;
	if (n == 0 || mult == 0)
		return config_val_fail(v,
		    "%s = '%s' is not a size (a number with an optional K, M "
		    "or G)",
		    v->key, v->value);
	if (config_parse_uint64(v->value, n, &val) == -1 ||
	    val > UINT64_MAX / mult)
		val = UINT64_MAX; /* surely out of range */
	else
		val *= mult;
	if (val < k->min || val > k->max || val > SIZE_MAX)
		return config_val_fail(v, "%s must be between %s and %s",
		    v->key, config_size_to_text(k->min, a, sizeof(a)),
		    config_size_to_text(k->max, b, sizeof(b)));
	*(size_t *)((char *)base + k->off) = (size_t)val;
	return 0;
}

static int
config_set_level(const struct config_val *v, const struct config_key *k,
    void *base)
{
	int level;

	if ((level = log_level_parse(v->value)) == -1)
		return config_val_fail(v,
		    "%s = '%s' is not a log level (error, warn, info or debug)",
		    v->key, v->value);
	*(enum log_level *)((char *)base + k->off) = (enum log_level)level;
	return 0;
}

static int
config_set_log(const struct config_val *v, const struct config_key *k,
    void *base)
{
	if (strcmp(v->value, "stderr") == 0 || strcmp(v->value, "syslog") == 0)
		return config_set_string(v, k, base);
	if (*v->value == '\0')
		return config_val_fail(v,
		    "%s must be stderr, syslog or a file path", v->key);
	return config_set_path(v, k, base);
}

/*
 * "ADDR:PORT" or "[V6ADDR]:PORT"; ADDR must be numeric (inet_pton), so
 * the listen address never depends on name resolution.
 */
static int
config_set_listen(const struct config_val *v, const struct config_key *k,
    void *base)
{
	char addr[64];
	unsigned char bin[16];
	const char *colon, *a = v->value;
	size_t alen;
	uint64_t port;
	int af = AF_INET;

	if (*a == '[') {
		colon = strchr(a, ']');
		if (colon != NULL && colon[1] != ':')
			colon = NULL;
		else if (colon != NULL)
			colon++;
		a++;
		af = AF_INET6;
	} else
		colon = strrchr(a, ':');
	alen = colon == NULL ? 0 : (size_t)(colon - a) - (af == AF_INET6);
	if (colon == NULL || alen == 0 || alen >= sizeof(addr))
		return config_val_fail(v,
		    "%s = '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080 or "
		    "[::1]:8080)",
		    v->key, v->value);
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	if (config_parse_uint64(colon + 1, strlen(colon + 1), &port) == -1 ||
	    port < k->min || port > k->max)
		return config_val_fail(v,
		    "%s port must be between %llu and %llu", v->key,
		    (unsigned long long)k->min, (unsigned long long)k->max);
	if (inet_pton(af, addr, bin) != 1)
		return config_val_fail(v,
		    "%s address '%s' is not a numeric %s address%s", v->key,
		    addr, af == AF_INET ? "IPv4" : "IPv6",
		    af == AF_INET && strchr(addr, ':') != NULL
			? " (write IPv6 as [ADDR]:PORT)"
			: "");
	free(*(char **)((char *)base + k->off));
	*(char **)((char *)base + k->off) = xstrdup(addr);
	*(unsigned *)((char *)base + k->off2) = (unsigned)port;
	return 0;
}

static int
config_set_bool(const struct config_val *v, const struct config_key *k,
    void *base)
{
	return config_val_bool(v, (bool *)((char *)base + k->off));
}

static int
config_set_double(const struct config_val *v, const struct config_key *k,
    void *base)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v->value, &end);
	/* digits only: no "inf", "nan" or hex floats */
	if (strspn(v->value, "0123456789.eE+-") != strlen(v->value) ||
	    end == v->value || *end != '\0' || errno != 0 || !isfinite(d))
		return config_val_fail(v, "%s = '%s' is not a number", v->key,
		    v->value);
	if (d < (double)k->min || d > (double)k->max)
		return config_val_fail(v, "%s must be between %llu and %llu",
		    v->key, (unsigned long long)k->min,
		    (unsigned long long)k->max);
	memcpy((char *)base + k->off, &d, sizeof(d));
	return 0;
}

static int
config_set_choice(const struct config_val *v, const struct config_key *k,
    void *base)
{
	char list[256] = "";
	size_t i;

	for (i = 0; k->choices[i] != NULL; i++) {
		if (strcmp(v->value, k->choices[i]) == 0) {
			free(*(char **)((char *)base + k->off));
			*(char **)((char *)base + k->off) = xstrdup(v->value);
			return 0;
		}
		if (i > 0)
			strlcat(list, k->choices[i + 1] == NULL ? " or " : ", ",
			    sizeof(list));
		strlcat(list, k->choices[i], sizeof(list));
	}
	return config_val_fail(v, "%s = '%s' must be %s", v->key, v->value,
	    list);
}

/*
 * The raw value of 'key' in sec after ${ENV} expansion (borrowed from
 * the config), or NULL if the key is absent or sec is NULL.
 */
const char *
config_section_get(const struct config_section *sec, const char *key)
{
	const struct config_kv *kv;

	if (sec == NULL || (kv = config_kv_lookup(sec, key)) == NULL)
		return NULL;
	return kv->value;
}

/*
 * The line of 'key' in sec, or of the section header when the key is
 * absent: the place to point at for a missing key. 0 if sec is NULL.
 */
int
config_section_line(const struct config_section *sec, const char *key)
{
	const struct config_kv *kv;

	if (sec == NULL)
		return 0;
	if ((kv = config_kv_lookup(sec, key)) == NULL)
		return sec->line;
	return kv->line;
}

/*
 * Adapters call this first in init(): fails with "FILE:LINE: unknown key
 * 'k' in [name]" on the first key of sec missing from 'allowed' (which
 * must list the generic keys too, such as provider and rate).
 */
int
config_section_check_keys(const struct config_section *sec,
    const char *const *allowed, char *err, size_t errlen)
{
	size_t i, j;

	for (i = 0; i < sec->nkv; i++) {
		for (j = 0; allowed[j] != NULL; j++)
			if (strcmp(allowed[j], sec->kv[i].key) == 0)
				break;
		if (allowed[j] == NULL)
			return config_fail(err, errlen, sec->file,
			    sec->kv[i].line, "unknown key '%s' in [%s]",
			    sec->kv[i].key, sec->name);
	}
	return 0;
}

/*
 * Sets *out to the value of 'key' (borrowed). Absent and not 'required':
 * *out is left alone and 0 is returned. 'required' also rejects an
 * empty value; the error for a missing key points at the header line.
 */
int
config_section_str(const struct config_section *sec, const char *key,
    bool required, const char **out, char *err, size_t errlen)
{
	const struct config_kv *kv = config_kv_lookup(sec, key);

	if (kv != NULL && (!required || *kv->value != '\0')) {
		*out = kv->value;
		return 0;
	}
	if (!required)
		return 0;
	if (kv != NULL)
		return config_fail(err, errlen, sec->file, kv->line,
		    "%s must not be empty", key);
	return config_fail(err, errlen, sec->file, sec->line,
	    "[%s] needs %s = ...", sec->name, key);
}

/*
 * The typed getters below share the parsers of the key tables, so an
 * adapter's key reads and fails exactly like a core key. Each leaves
 * *out untouched when the key is absent, and fails with "FILE:LINE:
 * ..." naming the key and, for ranges, the allowed bounds.
 */
int
config_section_uint(const struct config_section *sec, const char *key,
    const struct config_range *r, unsigned *out, char *err, size_t errlen)
{
	const struct config_kv *kv = config_kv_lookup(sec, key);
	struct config_val v;
	uint64_t n;

	if (kv == NULL)
		return 0;
	memset(&v, 0, sizeof(v));
	config_val_init(&v, sec, kv, err, errlen);
	if (config_val_uint(&v, r->min, r->max, &n) == -1)
		return -1;
	*out = (unsigned)n;
	return 0;
}

int
config_section_bool(const struct config_section *sec, const char *key,
    bool *out, char *err, size_t errlen)
{
	const struct config_kv *kv = config_kv_lookup(sec, key);
	struct config_val v;

	if (kv == NULL)
		return 0;
	memset(&v, 0, sizeof(v));
	config_val_init(&v, sec, kv, err, errlen);
	return config_val_bool(&v, out);
}

int
config_section_duration_ms(const struct config_section *sec, const char *key,
    const struct config_range *r, unsigned *out, char *err, size_t errlen)
{
	const struct config_kv *kv = config_kv_lookup(sec, key);
	struct config_val v;
	uint64_t ms;

	if (kv == NULL)
		return 0;
	memset(&v, 0, sizeof(v));
	config_val_init(&v, sec, kv, err, errlen);
	if (config_val_duration(&v, r->min, r->max, &ms) == -1)
		return -1;
	*out = (unsigned)ms;
	return 0;
}
