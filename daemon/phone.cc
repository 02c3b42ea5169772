/*
 * phone.cc - phone numbers to E.164 through libphonenumber:
 * the C++ shim behind phone.h.
 *
 * One pass per number: Parse() with the default region, then the checks
 * libphonenumber leaves to us (extensions, letters, IsValidNumber or, if
 * the caller accepts it, IsPossibleNumber), then Format(E164). Each failure
 * gets its own sentence; the input is echoed back shortened and with
 * non-printable bytes replaced, so an error text is safe to put in an API
 * reply.
 *
 * Letters: Parse() maps vanity numbers ("1-800-FLOWERS") to digits, which
 * would send an SMS to whoever has that number, so they are refused.
 * The raw input is checked for letters after the extension check only so
 * that "x123"/"ext. 4" get the more useful extension message.
 *
 * libphonenumber does not throw, but std::string can (bad_alloc): every
 * entry point catches everything, so no exception crosses into C.
 */
#include "autoconf.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include "phone.h"

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

/* libphonenumber refuses longer inputs as NOT_A_NUMBER; say why. */
#define PHONE_INPUT_MAX 250
/* Characters of the input echoed in an error. */
#define PHONE_ECHO_MAX 40
/* "US", "GB": ISO 3166-1 alpha-2. */
#define PHONE_REGION_LEN 2

namespace {

/*
 * The library's singleton, muted once: its default logger writes parse
 * problems to stdout/stderr, and the header promises no logs. A function
 * local static is initialized exactly once even with several threads.
 */
const PhoneNumberUtil *
phone_util(void)
{
	static const PhoneNumberUtil *util = [] {
		PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
		u->SetLogger(new NullLogger()); /* takes ownership */
		return u;
	}();
	return util;
}

/*
 * Uppercases a two-letter region into buf (3 bytes). Returns false for
 * anything that is not two ASCII letters.
 */
bool
phone_region_copy(const char *region, char *buf)
{
	if (region == nullptr || std::strlen(region) != PHONE_REGION_LEN)
		return false;
	for (int i = 0; i < PHONE_REGION_LEN; i++) {
		char c = region[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return false;
		buf[i] = c;
	}
	buf[PHONE_REGION_LEN] = '\0';
	return true;
}

bool
phone_region_ok(const char *region)
{
	char buf[PHONE_REGION_LEN + 1];

	if (!phone_region_copy(region, buf))
		return false;
	/* 0 for unknown codes, "ZZ" and the non-geographic "001". */
	return phone_util()->GetCountryCodeForRegion(buf) != 0;
}

bool
phone_is_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

bool
phone_has_letters(const char *s)
{
	for (; *s != '\0'; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			return true;
	return false;
}

/*
 * The input as an error may quote it: printable ASCII only, at most
 * PHONE_ECHO_MAX characters, then "...".
 */
std::string
phone_echo(const char *input)
{
	std::string s;
	size_t i;

	for (i = 0; input[i] != '\0' && i < PHONE_ECHO_MAX; i++) {
		unsigned char c = (unsigned char)input[i];
		s += (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (input[i] != '\0')
		s += "...";
	return s;
}

/* Allocates nothing: the catch-all handler calls it too. */
void
phone_err(char *err, size_t errlen, const char *msg)
{
	if (err != nullptr && errlen > 0)
		std::snprintf(err, errlen, "%s", msg);
}

void
phone_err(char *err, size_t errlen, const std::string &msg)
{
	phone_err(err, errlen, msg.c_str());
}

/* "'<input>' <what>", the shape of most errors. */
void
phone_err_num(char *err, size_t errlen, const char *input, const char *what)
{
	phone_err(err, errlen, "'" + phone_echo(input) + "' " + what);
}

/* Parse() failed: why, in words. */
void
phone_parse_err(PhoneNumberUtil::ErrorType e, const char *input,
    const char *region, char *err, size_t errlen)
{
	switch (e) {
	case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
		if (region == nullptr)
			phone_err_num(err, errlen, input,
			    "has no country code and no default region "
			    "applies: write it as +<country code><number>");
		else
			phone_err_num(err, errlen, input,
			    "has an invalid country code");
		break;
	case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
	case PhoneNumberUtil::TOO_SHORT_NSN:
		phone_err_num(err, errlen, input,
		    "is too short to be a phone number");
		break;
	case PhoneNumberUtil::TOO_LONG_NSN:
		phone_err_num(err, errlen, input,
		    "is too long to be a phone number");
		break;
	default:
		phone_err_num(err, errlen, input, "is not a phone number");
		break;
	}
}

/* Parsed but not valid: too short, too long, or not a number there. */
void
phone_invalid_err(const PhoneNumber &n, const char *input, char *err,
    size_t errlen)
{
	const PhoneNumberUtil *u = phone_util();
	std::string where;

	switch (u->IsPossibleNumberWithReason(n)) {
	case PhoneNumberUtil::TOO_SHORT:
		phone_err_num(err, errlen, input,
		    "is too short to be a phone number");
		return;
	case PhoneNumberUtil::TOO_LONG:
		phone_err_num(err, errlen, input,
		    "is too long to be a phone number");
		return;
	case PhoneNumberUtil::INVALID_COUNTRY_CODE:
		phone_err_num(err, errlen, input,
		    "has an invalid country code");
		return;
	case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
		phone_err_num(err, errlen, input,
		    "lacks its area code: write the whole number");
		return;
	default:
		break;
	}
	/* The main region of the country code: "US" for every +1. */
	u->GetRegionCodeForCountryCode(n.country_code(), &where);
	if (where.size() != PHONE_REGION_LEN)
		where = "country code +" + std::to_string(n.country_code());
	phone_err_num(err, errlen, input,
	    ("is not a valid number in " + where).c_str());
}

/* '+', a digit 1-9, at most 14 more digits: E.164 as written. */
bool
phone_is_e164(const char *s)
{
	size_t n = 0;

	if (*s++ != '+' || *s < '1' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		n++;
	return *s == '\0' && n < PHONE_E164_MAX - 2;
}

/*
 * "+1", a digit 2-9, nine digits: a North American number in E.164, as
 * providers deliver senders. With PHONE_STORED, phone_normalize_cc()
 * cannot change it: country code 1, a national number of ten digits
 * (a possible length for +1) that does not start with the national
 * prefix 1, so nothing is stripped and Format(E164) writes it back as
 * it came; and were it refused, PHONE_STORED would take it as given.
 * phone_normalize_as() skips the parse for it (every received text
 * normalizes its sender: daemon/inbound.c).
 */
bool
phone_is_nanp_e164(const char *s)
{
	int i;

	if (s[0] != '+' || s[1] != '1' || s[2] < '2' || s[2] > '9')
		return false;
	for (i = 3; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return s[12] == '\0';
}

/*
 * PHONE_POSSIBLE: IS_POSSIBLE only. IS_POSSIBLE_LOCAL_ONLY (a US number
 * without its area code) would turn into a wrong E.164 number.
 */
bool
phone_accepted(const PhoneNumber &n, enum phone_accept accept)
{
	const PhoneNumberUtil *u = phone_util();

	if (u->IsValidNumber(n))
		return true;
	return accept != PHONE_VALID &&
	    u->IsPossibleNumberWithReason(n) == PhoneNumberUtil::IS_POSSIBLE;
}

int
phone_normalize_cc(const char *input, const struct phone_rules *r, char *out,
    size_t outlen, char *err, size_t errlen)
{
	const char *region = r->region;
	const enum phone_accept accept = r->accept;
	const PhoneNumberUtil *u = phone_util();
	char reg[PHONE_REGION_LEN + 1];
	const char *regp = nullptr;
	PhoneNumber n;
	PhoneNumberUtil::ErrorType e;
	std::string e164;

	if (out == nullptr || outlen < PHONE_E164_MAX) {
		phone_err(err, errlen, "phone number buffer too small");
		return -1;
	}
	if (input == nullptr || phone_is_blank(input)) {
		phone_err(err, errlen, "phone number is empty");
		return -1;
	}
	if (region != nullptr && region[0] != '\0') {
		if (!phone_region_ok(region)) {
			phone_err(err, errlen,
			    "unknown region '" + phone_echo(region) +
				"': expected an ISO 3166-1 code such as US or GB");
			return -1;
		}
		phone_region_copy(region, reg);
		regp = reg;
	}
	if (std::strlen(input) > PHONE_INPUT_MAX) {
		phone_err_num(err, errlen, input,
		    "is too long to be a phone number");
		return -1;
	}

	/* "ZZ": no default region, so only +/IDD numbers parse. */
	e = u->Parse(input, regp != nullptr ? regp : "ZZ", &n);
	if (e == PhoneNumberUtil::NO_PARSING_ERROR && n.has_extension()) {
		phone_err_num(err, errlen, input,
		    "has an extension, which an SMS cannot reach: "
		    "give the number without it");
		return -1;
	}
	if (phone_has_letters(input)) {
		phone_err_num(err, errlen, input,
		    "has letters, which are not allowed in a phone number: "
		    "write it with digits only");
		return -1;
	}
	if (e != PhoneNumberUtil::NO_PARSING_ERROR) {
		phone_parse_err(e, input, regp, err, errlen);
		return -1;
	}
	if (!phone_accepted(n, accept)) {
		phone_invalid_err(n, input, err, errlen);
		return -1;
	}
	u->Format(n, PhoneNumberUtil::E164, &e164);
	if (e164.size() < 2 || e164.size() >= PHONE_E164_MAX) {
		phone_err_num(err, errlen, input,
		    "is too long to be a phone number");
		return -1;
	}
	std::memcpy(out, e164.c_str(), e164.size() + 1);
	return 0;
}

} /* namespace */

extern "C" int
phone_normalize_as(const char *input, const struct phone_rules *r, char *out,
    size_t outlen, char *err, size_t errlen)
{
	if (out != nullptr && outlen > 0)
		out[0] = '\0';
	if (r->accept == PHONE_STORED && input != nullptr && out != nullptr &&
	    outlen >= PHONE_E164_MAX && phone_is_nanp_e164(input)) {
		std::memcpy(out, input, std::strlen(input) + 1);
		return 0;
	}
	try {
		if (phone_normalize_cc(input, r, out, outlen, err, errlen) == 0)
			return 0;
		/* What a provider delivered is found as it was stored. */
		if (r->accept == PHONE_STORED && input != nullptr &&
		    out != nullptr && outlen >= PHONE_E164_MAX &&
		    phone_is_e164(input)) {
			std::snprintf(out, outlen, "%s", input);
			return 0;
		}
	} catch (...) {
		phone_err(err, errlen,
		    "out of memory while checking a phone number");
	}
	if (out != nullptr && outlen > 0)
		out[0] = '\0';
	return -1;
}

extern "C" int
phone_normalize(const char *input, const char *region, char *out, size_t outlen,
    char *err, size_t errlen)
{
	const struct phone_rules r = {region, PHONE_VALID};

	return phone_normalize_as(input, &r, out, outlen, err, errlen);
}

extern "C" bool
phone_region_known(const char *region)
{
	try {
		return phone_region_ok(region);
	} catch (...) {
		return false;
	}
}
