/*
 * email_addr.c - the recipient address check (the rule is in
 * email_addr.h).
 *
 * Written as a scan of the local part and one of the domain, each
 * failing with the first thing wrong, so that a user fixing a CSV file or
 * an API call learns what to change. The character classes are spelt out
 * rather than taken from <ctype.h>, whose answers depend on the locale.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "email_addr.h"

#define EMAIL_ATEXT   "!#$%&'*+-/=?^_`{|}~" /* RFC 5322 atext, not alnum */
#define EMAIL_TLD_MIN 2			    /* shortest TLD: ISO 3166 codes */

static int email_addr_fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool email_addr_is_alpha(char ch);
static bool email_addr_is_alnum(char ch);
static int email_addr_local(const char *s, size_t n, char *why, size_t whylen);
static int email_addr_label(const char *s, size_t n, bool last, char *why,
    size_t whylen);
static int email_addr_domain(const char *s, char *why, size_t whylen);

static int
email_addr_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool
email_addr_is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool
email_addr_is_alnum(char ch)
{
	return email_addr_is_alpha(ch) || (ch >= '0' && ch <= '9');
}

/* The n bytes of s before the '@': a dot-atom of 1-64 bytes. */
static int
email_addr_local(const char *s, size_t n, char *why, size_t whylen)
{
	size_t i;

	if (n == 0)
		return email_addr_fail(why, whylen, "nothing before the '@'");
	if (n > EMAIL_LOCAL_MAX)
		return email_addr_fail(why, whylen,
		    "the part before the '@' is longer than %d characters",
		    EMAIL_LOCAL_MAX);
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (i == 0 || i == n - 1 || s[i + 1] == '.')
				return email_addr_fail(why, whylen,
				    "a dot at the start or end of the part "
				    "before the '@', or two dots in a row");
		} else if (!email_addr_is_alnum(s[i]) &&
		    strchr(EMAIL_ATEXT, s[i]) == NULL)
			return email_addr_fail(why, whylen,
			    "a space or a character not allowed in an "
			    "address before the '@'");
	}
	return 0;
}

/*
 * One label of n bytes at s; 'last' for the top-level domain, which must
 * be letters only or an A-label ("xn--...", an IDN TLD such as .рф).
 */
static int
email_addr_label(const char *s, size_t n, bool last, char *why, size_t whylen)
{
	size_t i;

	if (n == 0)
		return email_addr_fail(why, whylen,
		    "the domain has an empty label (two dots in a row, or a "
		    "dot at its start or end)");
	if (n > EMAIL_LABEL_MAX)
		return email_addr_fail(why, whylen,
		    "a part of the domain is longer than %d characters",
		    EMAIL_LABEL_MAX);
	for (i = 0; i < n; i++)
		if (!email_addr_is_alnum(s[i]) && s[i] != '-')
			return email_addr_fail(why, whylen,
			    "a character not allowed in the domain (letters, "
			    "digits, '-' and '.' only)");
	if (s[0] == '-' || s[n - 1] == '-')
		return email_addr_fail(why, whylen,
		    "a part of the domain starts or ends with '-'");
	if (!last || (n > 4 && strncasecmp(s, "xn--", 4) == 0))
		return 0;
	for (i = 0; i < n; i++)
		if (!email_addr_is_alpha(s[i]))
			break;
	if (n < EMAIL_TLD_MIN || i < n)
		return email_addr_fail(why, whylen,
		    "the domain must end in a top-level domain of at least "
		    "%d letters (name@domain.example)",
		    EMAIL_TLD_MIN);
	return 0;
}

/* The domain after the '@': LDH labels, at least two. */
static int
email_addr_domain(const char *s, char *why, size_t whylen)
{
	const char *dot;
	size_t n;

	if (*s == '\0')
		return email_addr_fail(why, whylen, "nothing after the '@'");
	if (*s == '[')
		return email_addr_fail(why, whylen,
		    "an IP address instead of a domain after the '@'");
	if (strchr(s, '.') == NULL)
		return email_addr_fail(why, whylen,
		    "the domain has no dot (name@domain.example)");
	for (;;) {
		dot = strchr(s, '.');
		n = dot != NULL ? (size_t)(dot - s) : strlen(s);
		if (email_addr_label(s, n, dot == NULL, why, whylen) == -1)
			return -1;
		if (dot == NULL)
			return 0;
		s = dot + 1;
	}
}

int
email_addr_check(const char *s, char *why, size_t whylen)
{
	const char *at, *p;
	size_t n;

	if (s == NULL || *s == '\0')
		return email_addr_fail(why, whylen, "empty");
	n = strlen(s);
	if (n > EMAIL_ADDR_MAX)
		return email_addr_fail(why, whylen, "longer than %d characters",
		    EMAIL_ADDR_MAX);
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return email_addr_fail(why, whylen,
			    "a non-ASCII character (internationalized "
			    "addresses are not supported; write the domain "
			    "in its xn-- form)");
	if ((at = strchr(s, '@')) == NULL)
		return email_addr_fail(why, whylen,
		    "no '@' (name@domain.example)");
	if (strchr(at + 1, '@') != NULL)
		return email_addr_fail(why, whylen, "more than one '@'");
	if (email_addr_local(s, (size_t)(at - s), why, whylen) == -1)
		return -1;
	return email_addr_domain(at + 1, why, whylen);
}

int
email_addr_normalize(const char *s, char *out, size_t outlen, char *why,
    size_t whylen)
{
	size_t i;

	if (email_addr_check(s, why, whylen) == -1)
		return -1;
	if (outlen == 0 || strlen(s) >= outlen)
		return email_addr_fail(why, whylen,
		    "longer than %zu characters", outlen > 0 ? outlen - 1 : 0);
	for (i = 0; s[i] != '\0'; i++)
		out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a')
						    : s[i];
	out[i] = '\0';
	return 0;
}

bool
email_addr_is_valid(const char *s)
{
	return email_addr_check(s, NULL, 0) == 0;
}
