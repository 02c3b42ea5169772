/*
 * smstext.c - SMS body encoding, segment counting and smart replacement
 * (doc/providers.md, SMS text).
 *
 * Everything walks the UTF-8 text one code point at a time through one
 * strict decoder (smstext_decode), so the adapters' choice of encoding,
 * the stored segment count and the smart replacement agree on what a
 * character is, and on which texts are invalid.
 *
 * GSM 03.38: printable ASCII is all in the basic table except the
 * backtick, with ^ { } \ [ ~ ] | in the extension table (2 septets); of
 * the controls only LF and CR are basic and FF is an extension. The
 * other non-ASCII characters of both tables are in smstext_gsm_table.
 * The mapping follows 3GPP TS 23.038 as Unicode's GSM0338 table gives it
 * (0x09 is the capital Ç: the small ç is not GSM).
 *
 * Segments are counted as the message goes on the air: one pass packs
 * the characters greedily into parts for both encodings at once (the
 * text turns UCS-2 at its first non-GSM character, which may come last),
 * moving a character that does not fit whole into the next part, as
 * Twilio's segment calculator does. The single-part limit is checked on
 * the total at the end.
 *
 * Smart replacement follows Twilio's published Smart Encoding list
 * (twilio.com/docs/messaging/services/smart-encoding-char-list) in its
 * categories: quotes and apostrophes, dashes and hyphens, the ellipsis,
 * spaces, full-width and small forms, fractions. Where Twilio's own
 * calculator looks wrong we chose the plain reading: the single angle
 * quotes ‹ › become ' (as « » become "), spaces become one space (not
 * two), U+2028/U+2029 become a newline and a tab one space. Letters are
 * never folded (á stays á): that changes words, not typography.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "smstext.h"
#include "xmalloc.h"

#define SMSTEXT_CP_MAX 0x10ffff /* the last Unicode code point */
/* From U+FF01..U+FF5E (full-width forms) down to U+0021..U+007E. */
#define SMSTEXT_FULLWIDTH_SHIFT 0xfee0

/* A non-ASCII GSM character and its cost in septets. */
struct smstext_gsm {
	uint32_t cp;
	unsigned septets;
};

/*
 * A replacement: code points lo..hi become 'to'; to == NULL marks the
 * full-width forms, which shift down to ASCII.
 */
struct smstext_repl {
	uint32_t lo;
	uint32_t hi;
	const char *to;
};

/* Parts filled so far for one encoding (see smstext_pack_add). */
struct smstext_pack {
	unsigned total; /* units in the whole text */
	unsigned parts; /* parts of a concatenated message */
	unsigned used;	/* units in the last part */
};

static int smstext_decode(const unsigned char **pp, uint32_t *cp);
static int smstext_gsm_cmp(const void *key, const void *elem);
static unsigned smstext_gsm_septets(uint32_t cp);
static void smstext_pack_add(struct smstext_pack *pk, unsigned cost,
    unsigned part);
static unsigned smstext_pack_segments(const struct smstext_pack *pk,
    unsigned single);
static int smstext_repl_cmp(const void *key, const void *elem);
static const char *smstext_repl_lookup(uint32_t cp, char *buf);
static ssize_t smstext_smart_run(const char *utf8, char *out);

/* GSM 03.38 outside ASCII, sorted by code point for bsearch(). */
static const struct smstext_gsm smstext_gsm_table[] = {
    {0x00a1, 1}, /* ¡ */
    {0x00a3, 1}, /* £ */
    {0x00a4, 1}, /* ¤ */
    {0x00a5, 1}, /* ¥ */
    {0x00a7, 1}, /* § */
    {0x00bf, 1}, /* ¿ */
    {0x00c4, 1}, /* Ä */
    {0x00c5, 1}, /* Å */
    {0x00c6, 1}, /* Æ */
    {0x00c7, 1}, /* Ç */
    {0x00c9, 1}, /* É */
    {0x00d1, 1}, /* Ñ */
    {0x00d6, 1}, /* Ö */
    {0x00d8, 1}, /* Ø */
    {0x00dc, 1}, /* Ü */
    {0x00df, 1}, /* ß */
    {0x00e0, 1}, /* à */
    {0x00e4, 1}, /* ä */
    {0x00e5, 1}, /* å */
    {0x00e6, 1}, /* æ */
    {0x00e8, 1}, /* è */
    {0x00e9, 1}, /* é */
    {0x00ec, 1}, /* ì */
    {0x00f1, 1}, /* ñ */
    {0x00f2, 1}, /* ò */
    {0x00f6, 1}, /* ö */
    {0x00f8, 1}, /* ø */
    {0x00f9, 1}, /* ù */
    {0x00fc, 1}, /* ü */
    {0x0393, 1}, /* Γ */
    {0x0394, 1}, /* Δ */
    {0x0398, 1}, /* Θ */
    {0x039b, 1}, /* Λ */
    {0x039e, 1}, /* Ξ */
    {0x03a0, 1}, /* Π */
    {0x03a3, 1}, /* Σ */
    {0x03a6, 1}, /* Φ */
    {0x03a8, 1}, /* Ψ */
    {0x03a9, 1}, /* Ω */
    {0x20ac, 2}, /* € (extension table) */
};

/* Look-alikes and their GSM-7 text, sorted and disjoint for bsearch(). */
static const struct smstext_repl smstext_repl_table[] = {
    {0x0009, 0x0009, " "},   /* tab */
    {0x0060, 0x0060, "'"},   /* grave accent (backtick) */
    {0x00a0, 0x00a0, " "},   /* no-break space */
    {0x00ab, 0x00ab, "\""},  /* « */
    {0x00ad, 0x00ad, ""},    /* soft hyphen (invisible) */
    {0x00b4, 0x00b4, "'"},   /* acute accent */
    {0x00bb, 0x00bb, "\""},  /* » */
    {0x00bc, 0x00bc, "1/4"}, /* ¼ */
    {0x00bd, 0x00bd, "1/2"}, /* ½ */
    {0x00be, 0x00be, "3/4"}, /* ¾ */
    {0x00f7, 0x00f7, "/"},   /* ÷ */
    {0x01c3, 0x01c3, "!"},   /* retroflex click */
    {0x02b9, 0x02b9, "'"},   /* modifier prime */
    {0x02ba, 0x02ba, "\""},  /* modifier double prime */
    {0x02bb, 0x02bd, "'"},   /* modifier turned comma, apostrophe */
    {0x02c6, 0x02c6, "^"},   /* modifier circumflex */
    {0x02c8, 0x02c8, "'"},   /* modifier vertical line */
    {0x02ca, 0x02cb, "'"},   /* modifier acute, grave */
    {0x02d0, 0x02d0, ":"},   /* modifier triangular colon */
    {0x02dc, 0x02dc, "~"},   /* small tilde */
    {0x02ee, 0x02ee, "\""},  /* modifier double apostrophe */
    {0x2000, 0x200a, " "},   /* en quad .. hair space */
    {0x200b, 0x200b, ""},    /* zero width space */
    {0x2010, 0x2015, "-"},   /* hyphen .. en/em dash, bar */
    {0x2018, 0x2019, "'"},   /* ‘ ’ */
    {0x201a, 0x201a, ","},   /* ‚ (Twilio: comma) */
    {0x201b, 0x201b, "'"},   /* ‛ */
    {0x201c, 0x201f, "\""},  /* “ ” „ ‟ */
    {0x2022, 0x2022, "-"},   /* bullet */
    {0x2024, 0x2024, "."},   /* one dot leader */
    {0x2026, 0x2026, "..."}, /* … */
    {0x2028, 0x2029, "\n"},  /* line, paragraph separator */
    {0x202f, 0x202f, " "},   /* narrow no-break space */
    {0x2032, 0x2032, "'"},   /* prime */
    {0x2033, 0x2033, "\""},  /* double prime */
    {0x2039, 0x203a, "'"},   /* ‹ › */
    {0x203c, 0x203c, "!!"},  /* ‼ */
    {0x2043, 0x2043, "-"},   /* hyphen bullet */
    {0x2044, 0x2044, "/"},   /* fraction slash */
    {0x204e, 0x204e, "*"},   /* low asterisk */
    {0x204f, 0x204f, ";"},   /* reversed semicolon */
    {0x205f, 0x205f, " "},   /* medium mathematical space */
    {0x2060, 0x2060, ""},    /* word joiner */
    {0x2212, 0x2212, "-"},   /* minus sign */
    {0x2215, 0x2215, "/"},   /* division slash */
    {0x2217, 0x2217, "*"},   /* asterisk operator */
    {0x2223, 0x2223, "|"},   /* divides */
    {0x223c, 0x223c, "~"},   /* tilde operator */
    {0x275b, 0x275c, "'"},   /* heavy single comma quotes */
    {0x275d, 0x275e, "\""},  /* heavy double comma quotes */
    {0x3000, 0x3000, " "},   /* ideographic space */
    {0x3001, 0x3001, ","},   /* ideographic comma */
    {0x3002, 0x3002, "."},   /* ideographic full stop */
    {0x301d, 0x301e, "\""},  /* double prime quotes */
    {0xfe50, 0xfe51, ","},   /* small commas */
    {0xfe52, 0xfe52, "."},   /* small full stop */
    {0xfe54, 0xfe54, ";"},   /* small semicolon */
    {0xfe55, 0xfe55, ":"},   /* small colon */
    {0xfe56, 0xfe56, "?"},   /* small question mark */
    {0xfe57, 0xfe57, "!"},   /* small exclamation mark */
    {0xfe59, 0xfe59, "("},   /* small parentheses */
    {0xfe5a, 0xfe5a, ")"}, {0xfe5b, 0xfe5b, "{"}, /* small curly brackets */
    {0xfe5c, 0xfe5c, "}"}, {0xfe5f, 0xfe5f, "#"}, /* small number sign */
    {0xfe60, 0xfe60, "&"},			  /* small ampersand */
    {0xfe61, 0xfe61, "*"},			  /* small asterisk */
    {0xfe62, 0xfe62, "+"},			  /* small plus */
    {0xfe63, 0xfe63, "-"},			  /* small hyphen-minus */
    {0xfe64, 0xfe64, "<"},			  /* small less-than */
    {0xfe65, 0xfe65, ">"},			  /* small greater-than */
    {0xfe66, 0xfe66, "="},			  /* small equals */
    {0xfe68, 0xfe68, "\\"},			  /* small reverse solidus */
    {0xfe69, 0xfe69, "$"},			  /* small dollar */
    {0xfe6a, 0xfe6a, "%"},			  /* small percent */
    {0xfe6b, 0xfe6b, "@"},			  /* small commercial at */
    {0xfeff, 0xfeff, ""},   /* zero width no-break space (BOM) */
    {0xff01, 0xff5e, NULL}, /* full-width ASCII: shifted down */
    {0xff61, 0xff61, "."},  /* halfwidth ideographic full stop */
    {0xff64, 0xff64, ","},  /* halfwidth ideographic comma */
};

#define SMSTEXT_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Decodes the code point at *pp into *cp and advances *pp past it.
 * Strict UTF-8: a stray continuation byte, a sequence cut short (by the
 * NUL too), an overlong form, an encoded surrogate or a value past
 * U+10FFFF returns -1 and leaves *pp alone.
 */
static int
smstext_decode(const unsigned char **pp, uint32_t *cp)
{
	const unsigned char *p = *pp;
	uint32_t c, min;
	int i, more;

	if (p[0] < 0x80) {
		c = p[0];
		more = 0;
		min = 0;
	} else if ((p[0] & 0xe0) == 0xc0) {
		c = p[0] & 0x1f;
		more = 1;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		c = p[0] & 0x0f;
		more = 2;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		c = p[0] & 0x07;
		more = 3;
		min = 0x10000;
	} else
		return -1;
	/* A NUL fails the test too, so nothing is read past the string. */
	for (i = 1; i <= more; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > SMSTEXT_CP_MAX || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	*pp = p + more + 1;
	return 0;
}

static int
smstext_gsm_cmp(const void *key, const void *elem)
{
	uint32_t cp = *(const uint32_t *)key;
	const struct smstext_gsm *g = elem;

	return cp < g->cp ? -1 : cp > g->cp;
}

/* Septets the code point costs in GSM-7: 1, 2, or 0 if it is not GSM. */
static unsigned
smstext_gsm_septets(uint32_t cp)
{
	const struct smstext_gsm *g;

	if (cp == '\n' || cp == '\r')
		return 1;
	if (cp == '\f')
		return 2;
	if (cp < 0x80) {
		if (cp < 0x20 || cp == 0x7f || cp == '`')
			return 0;
		return strchr("^{}\\[~]|", (int)cp) != NULL ? 2 : 1;
	}
	g = bsearch(&cp, smstext_gsm_table, SMSTEXT_NELEM(smstext_gsm_table),
	    sizeof(smstext_gsm_table[0]), smstext_gsm_cmp);
	return g != NULL ? g->septets : 0;
}

/*
 * Adds a character of 'cost' units to the packing, parts holding 'part'
 * units: a character that does not fit in the last part starts the next
 * one whole (an escape or a surrogate pair is never split).
 */
static void
smstext_pack_add(struct smstext_pack *pk, unsigned cost, unsigned part)
{
	if (pk->used + cost > part) {
		pk->parts++;
		pk->used = 0;
	}
	pk->used += cost;
	pk->total += cost;
}

/* Parts on the air: one if the whole text fits a single part. */
static unsigned
smstext_pack_segments(const struct smstext_pack *pk, unsigned single)
{
	return pk->total <= single ? 1 : pk->parts;
}

/*
 * True when the whole UTF-8 text can go as GSM-7; false on any other
 * character or on invalid UTF-8. Stops at the first character that is
 * not GSM, so a long UCS-2 text costs little.
 */
bool
smstext_is_gsm7(const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	uint32_t cp;

	while (*p != '\0') {
		if (smstext_decode(&p, &cp) == -1 ||
		    smstext_gsm_septets(cp) == 0)
			return false;
	}
	return true;
}

/*
 * Computes encoding, units, segments and code points of 'utf8' into
 * *out in one pass (see the top of the file). The length check keeps
 * every count inside an unsigned: a byte never costs more than 2 units.
 * Returns 0, or -1 with *out untouched on invalid UTF-8.
 */
int
smstext_analyze(const char *utf8, struct smstext_info *out)
{
	const unsigned char *p = (const unsigned char *)utf8;
	struct smstext_pack gsm = {0, 1, 0};
	struct smstext_pack ucs = {0, 1, 0};
	bool is_gsm = true;
	unsigned chars = 0, septets;
	uint32_t cp;

	if (strlen(utf8) > UINT_MAX / 2)
		return -1;
	while (*p != '\0') {
		if (smstext_decode(&p, &cp) == -1)
			return -1;
		chars++;
		septets = is_gsm ? smstext_gsm_septets(cp) : 0;
		if (septets > 0)
			smstext_pack_add(&gsm, septets, SMSTEXT_GSM7_PART);
		else
			is_gsm = false;
		/* Past the BMP a character is a surrogate pair in UTF-16. */
		smstext_pack_add(&ucs, cp > 0xffff ? 2 : 1, SMSTEXT_UCS2_PART);
	}
	out->chars = chars;
	if (is_gsm) {
		out->encoding = SMSTEXT_GSM7;
		out->units = gsm.total;
		out->segments =
		    smstext_pack_segments(&gsm, SMSTEXT_GSM7_SINGLE);
	} else {
		out->encoding = SMSTEXT_UCS2;
		out->units = ucs.total;
		out->segments =
		    smstext_pack_segments(&ucs, SMSTEXT_UCS2_SINGLE);
	}
	return 0;
}

static int
smstext_repl_cmp(const void *key, const void *elem)
{
	uint32_t cp = *(const uint32_t *)key;
	const struct smstext_repl *r = elem;

	if (cp < r->lo)
		return -1;
	return cp > r->hi;
}

/*
 * The GSM-7 text that replaces cp, or NULL to keep it. A full-width form
 * is written into buf (2 bytes) as its ASCII twin, or ' for the backtick.
 */
static const char *
smstext_repl_lookup(uint32_t cp, char *buf)
{
	const struct smstext_repl *r;

	r = bsearch(&cp, smstext_repl_table, SMSTEXT_NELEM(smstext_repl_table),
	    sizeof(smstext_repl_table[0]), smstext_repl_cmp);
	if (r == NULL)
		return NULL;
	if (r->to != NULL)
		return r->to;
	buf[0] = (char)(cp - SMSTEXT_FULLWIDTH_SHIFT);
	if (buf[0] == '`')
		buf[0] = '\'';
	buf[1] = '\0';
	return buf;
}

/*
 * One pass of smstext_smart(): the length of the replaced text, written
 * to out (NUL-terminated) unless out is NULL; -1 on invalid UTF-8.
 */
static ssize_t
smstext_smart_run(const char *utf8, char *out)
{
	const unsigned char *p = (const unsigned char *)utf8;
	const unsigned char *start;
	const char *to;
	char buf[2];
	size_t len = 0, n;
	uint32_t cp;

	while (*p != '\0') {
		start = p;
		if (smstext_decode(&p, &cp) == -1)
			return -1;
		if ((to = smstext_repl_lookup(cp, buf)) == NULL) {
			to = (const char *)start;
			n = (size_t)(p - start);
		} else
			n = strlen(to);
		if (out != NULL)
			memcpy(out + len, to, n);
		len += n;
	}
	if (out != NULL)
		out[len] = '\0';
	return (ssize_t)len;
}

/*
 * Returns a new copy of 'utf8' with look-alikes replaced by GSM-7 text
 * (smstext_repl_table); the caller frees it. NULL if the text is not
 * valid UTF-8. Measures first, then writes, so the result is exact.
 */
char *
smstext_smart(const char *utf8)
{
	ssize_t len;
	char *out;

	if ((len = smstext_smart_run(utf8, NULL)) == -1)
		return NULL;
	out = xmalloc((size_t)len + 1);
	smstext_smart_run(utf8, out);
	return out;
}

/* The encoding's short name; a value outside the enum reads "?". */
const char *
smstext_encoding_to_text(enum smstext_encoding enc)
{
	switch (enc) {
	case SMSTEXT_GSM7:
		return "gsm7";
	case SMSTEXT_UCS2:
		return "ucs2";
	}
	return "?";
}
