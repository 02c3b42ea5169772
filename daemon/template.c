/*
 * template.c - message templates with member fields (see template.h).
 *
 * template_compile() makes one pass over the source with an index, never
 * recursing, and never reads past 'len': the source needs no NUL and may
 * hold any bytes (invalid UTF-8 and NULs are reported, not read past).
 * First the whole text is checked as strict UTF-8 without NULs, so the
 * rest may treat it as text and error messages that quote it stay valid
 * UTF-8 (they end up in JSON). Then the text is cut into parts: literal
 * runs, unescaped into one owned buffer, and placeholders, each with its
 * field, fallback and position.
 *
 * A placeholder ends at the first "}}" on its line. Anything that would
 * make the reader guess is an error instead: "{{" inside a placeholder
 * (nesting, or a forgotten "}}"), a line end before "}}", a second '|'.
 * Ending placeholders at the line end keeps a forgotten "}}" from
 * swallowing the rest of the template and puts the error where the
 * author's mistake is.
 *
 * Positions: the offset is in bytes; lines end at LF, CRLF or a lone CR;
 * columns count code points, which is what an editor shows for most
 * text. Placeholder positions are kept for render errors; they come from
 * a cursor that only moves forward, so compiling stays linear. An error
 * position is worked out from the start, once.
 *
 * Custom fields are written attr.NAME rather than by their bare key: a
 * member attribute may be named "email" or "First Name" (the CSV import
 * keeps headers as written), and the prefix keeps such keys from being
 * confused with the built-in fields, and a misspelt built-in from being
 * taken for a custom field.
 *
 * Rendering builds the text in a scratch evbuffer and moves it to the
 * caller's only on success, so a missing field never leaves half a
 * message behind, and each member value is asked for once.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "log.h"
#include "template.h"
#include "xmalloc.h"

/* Bytes of a name or fallback quoted in an error message. */
#define TEMPLATE_QUOTE_MAX 40
#define TEMPLATE_NO_BAR	   SIZE_MAX /* no '|' in the placeholder */

/* A literal run or a placeholder. */
struct template_part {
	bool is_field;
	size_t lit_off; /* literal: its bytes in t->text */
	size_t lit_len;
	enum template_field field; /* placeholder: */
	char *attr;		   /* TEMPLATE_F_ATTR: the key, owned */
	char *fallback;		   /* owned; NULL = none */
	size_t offset;		   /* where its "{{" is */
	unsigned line;
	unsigned column;
};

/*
 * Not "struct template": that is a C++ keyword, which a C++ file including
 * this header, clang-format and cppcheck would all trip over.
 */
struct template_compiled {
	enum template_mode mode;
	char *text; /* literal text, unescaped */
	size_t text_len;
	struct template_part *parts;
	size_t nparts;
	size_t partsalloc;
	struct template_need *needs;
	size_t nneeds;
};

/* A position in the source, moved forward by template_pos_advance(). */
struct template_pos {
	size_t offset;
	unsigned line;
	unsigned column;
};

/* The compiler's state. */
struct template_parse {
	const unsigned char *src;
	size_t len;
	const struct template_fields *known;
	struct template_compiled *t;
	size_t lit_start; /* where the open literal run began in t->text */
	struct template_pos cur;
	struct template_error *err;
};

/* A placeholder's pieces, as offsets into the source. */
struct template_slot {
	size_t start; /* the "{{" */
	size_t end;   /* the "}}" */
	size_t bar;   /* the '|', or TEMPLATE_NO_BAR */
};

static const struct {
	const char *name;
	enum template_field field;
} template_builtins[] = {
    {"first_name", TEMPLATE_F_FIRST_NAME},
    {"last_name", TEMPLATE_F_LAST_NAME},
    {"email", TEMPLATE_F_EMAIL},
    {"phone", TEMPLATE_F_PHONE},
    {"zip", TEMPLATE_F_ZIP},
};
#define TEMPLATE_NBUILTINS \
	(sizeof(template_builtins) / sizeof(template_builtins[0]))

static size_t template_utf8_len(const unsigned char *s, size_t n);
static void template_pos_advance(struct template_pos *pos,
    const unsigned char *src, size_t len, size_t to);
static int template_errorf(struct template_parse *p, size_t offset,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int template_clip(const char *s, size_t n, size_t max);
static bool template_is_blank(unsigned char c);
static void template_trim(const unsigned char *src, size_t *from, size_t *to);
static int template_check_text(struct template_parse *p);
static void template_part_add(struct template_compiled *t,
    const struct template_part *part);
static void template_flush_literal(struct template_parse *p);
static int template_find_end(struct template_parse *p,
    struct template_slot *slot);
static int template_resolve_builtin(struct template_parse *p, size_t from,
    size_t to, struct template_part *part);
static int template_resolve_attr(struct template_parse *p, size_t from,
    size_t to, struct template_part *part);
static const char *template_attr_lookup(const struct template_fields *known,
    const char *name, size_t len, bool nocase);
static int template_parse_fallback(struct template_parse *p,
    const struct template_slot *slot, struct template_part *part);
static int template_parse_field(struct template_parse *p, size_t start,
    size_t *end);
static int template_parse_run(struct template_parse *p);
static void template_needs_build(struct template_compiled *t);
static const char *template_value(const struct template_member_view *m,
    const struct template_part *part);
static void template_add_escaped(struct evbuffer *b, const char *s);
static void template_render_missing(const struct template_part *part,
    struct template_error *err);

/*
 * Length of the strict UTF-8 sequence at s (n bytes left): 1-4, or 0 when
 * it is invalid (overlong, surrogate, past U+10FFFF, truncated) or a NUL.
 */
static size_t
template_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (s[0] == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (s[0] == 0xed)
			hi = 0x9f; /* U+D800..U+DFFF: surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else
		return 0;
	if (n <= need)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need + 1;
}

/* Moves pos forward to offset 'to' (<= len), counting lines and columns. */
static void
template_pos_advance(struct template_pos *pos, const unsigned char *src,
    size_t len, size_t to)
{
	size_t i;

	for (i = pos->offset; i < to; i++) {
		if (src[i] == '\n' ||
		    (src[i] == '\r' && (i + 1 >= len || src[i + 1] != '\n'))) {
			pos->line++;
			pos->column = 1;
		} else if (src[i] != '\r' && (src[i] & 0xc0) != 0x80)
			pos->column++;
	}
	pos->offset = to;
}

/*
 * Fills p->err with the position of 'offset' and the formatted message;
 * returns -1 so that callers can "return template_errorf(...)". A message
 * cut by the buffer's size is cut at a character boundary.
 */
static int
template_errorf(struct template_parse *p, size_t offset, const char *fmt, ...)
{
	struct template_pos pos = {0, 1, 1};
	va_list ap;
	int n;

	template_pos_advance(&pos, p->src, p->len, offset);
	p->err->offset = pos.offset;
	p->err->line = pos.line;
	p->err->column = pos.column;
	va_start(ap, fmt);
	n = vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(p->err->message))
		p->err->message[template_clip(p->err->message,
		    sizeof(p->err->message) - 1, sizeof(p->err->message) - 1)] =
		    '\0';
	return -1;
}

/*
 * How many of the n bytes of s to keep when at most 'max' fit: all of
 * them, or 'max' less the bytes of a UTF-8 sequence it would cut, so
 * that a quote in a message stays valid UTF-8.
 */
static int
template_clip(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

/* Spaces and tabs around names and fallbacks are not part of them. */
static bool
template_is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Narrows [*from, *to) of src past blanks at both ends. */
static void
template_trim(const unsigned char *src, size_t *from, size_t *to)
{
	while (*from < *to && template_is_blank(src[*from]))
		(*from)++;
	while (*to > *from && template_is_blank(src[*to - 1]))
		(*to)--;
}

/* The size cap, then strict UTF-8 without NULs, over the whole source. */
static int
template_check_text(struct template_parse *p)
{
	size_t i, n;

	if (p->len > TEMPLATE_MAX_BYTES)
		return template_errorf(p, TEMPLATE_MAX_BYTES,
		    "template is %zu bytes; the limit is %d (64 KiB)", p->len,
		    TEMPLATE_MAX_BYTES);
	for (i = 0; i < p->len; i += n) {
		if ((n = template_utf8_len(p->src + i, p->len - i)) != 0)
			continue;
		if (p->src[i] == 0)
			return template_errorf(p, i, "NUL byte in template");
		return template_errorf(p, i,
		    "invalid UTF-8 (byte 0x%02x); save the text as UTF-8",
		    p->src[i]);
	}
	return 0;
}

/* Appends a copy of *part (its strings change owner) to t's parts. */
static void
template_part_add(struct template_compiled *t, const struct template_part *part)
{
	if (t->nparts == t->partsalloc) {
		t->partsalloc = t->partsalloc == 0 ? 8 : t->partsalloc * 2;
		t->parts =
		    xreallocarray(t->parts, t->partsalloc, sizeof(*t->parts));
	}
	t->parts[t->nparts++] = *part;
}

/* Ends the open literal run, adding it as a part unless it is empty. */
static void
template_flush_literal(struct template_parse *p)
{
	struct template_part part;

	if (p->t->text_len == p->lit_start)
		return;
	memset(&part, 0, sizeof(part));
	part.lit_off = p->lit_start;
	part.lit_len = p->t->text_len - p->lit_start;
	template_part_add(p->t, &part);
	p->lit_start = p->t->text_len;
}

/*
 * Finds the "}}" closing the placeholder whose "{{" is at slot->start,
 * on the same line, and the first '|' before it. Nesting, a second '|',
 * a line end or the end of the text first are errors.
 */
static int
template_find_end(struct template_parse *p, struct template_slot *slot)
{
	const unsigned char *s = p->src;
	struct template_pos open = {0, 1, 1};
	size_t j;

	slot->bar = TEMPLATE_NO_BAR;
	slot->end = p->len;
	for (j = slot->start + 2; j < p->len; j++) {
		if (s[j] == '}' && j + 1 < p->len && s[j + 1] == '}') {
			slot->end = j;
			return 0;
		}
		if (s[j] == '{' && j + 1 < p->len && s[j + 1] == '{') {
			template_pos_advance(&open, s, p->len, slot->start);
			return template_errorf(p, j,
			    "'{{' inside the placeholder opened at line %u, "
			    "column %u: placeholders cannot nest (is a '}}' "
			    "missing?)",
			    open.line, open.column);
		}
		if (s[j] == '\n' || s[j] == '\r')
			return template_errorf(p, slot->start,
			    "unclosed '{{': no '}}' before the end of the line "
			    "(write \\{{ for a literal '{{')");
		if (s[j] == '|' && slot->bar != TEMPLATE_NO_BAR)
			return template_errorf(p, j,
			    "second '|' in a placeholder: a fallback cannot "
			    "contain '|'");
		if (s[j] == '|')
			slot->bar = j;
	}
	return template_errorf(p, slot->start,
	    "unclosed '{{': no '}}' before the end of the template (write "
	    "\\{{ for a literal '{{')");
}

/*
 * Resolves the name at [from, to), which is not attr.NAME: a built-in
 * field, or an error that says what was probably meant.
 */
static int
template_resolve_builtin(struct template_parse *p, size_t from, size_t to,
    struct template_part *part)
{
	const char *name = (const char *)p->src + from;
	size_t i, len = to - from;
	int q = template_clip(name, len, TEMPLATE_QUOTE_MAX);
	const char *attr;

	for (i = 0; i < TEMPLATE_NBUILTINS; i++)
		if (strlen(template_builtins[i].name) == len &&
		    memcmp(template_builtins[i].name, name, len) == 0) {
			part->field = template_builtins[i].field;
			return 0;
		}
	for (i = 0; i < TEMPLATE_NBUILTINS; i++)
		if (strlen(template_builtins[i].name) == len &&
		    strncasecmp(template_builtins[i].name, name, len) == 0)
			return template_errorf(p, from,
			    "unknown field \"%.*s\": field names are lower "
			    "case (%s)",
			    q, name, template_builtins[i].name);
	if ((attr = template_attr_lookup(p->known, name, len, false)) != NULL ||
	    (attr = template_attr_lookup(p->known, name, len, true)) != NULL)
		return template_errorf(p, from,
		    "unknown field \"%.*s\": custom fields are written "
		    "%s%.*s",
		    q, name, TEMPLATE_ATTR_PREFIX,
		    template_clip(attr, strlen(attr), TEMPLATE_QUOTE_MAX),
		    attr);
	return template_errorf(p, from,
	    "unknown field \"%.*s\" (fields: first_name, last_name, email, "
	    "phone, zip, %sNAME)",
	    q, name, TEMPLATE_ATTR_PREFIX);
}

/*
 * Returns the key in 'known' equal to the len bytes of name (ignoring
 * ASCII case when nocase), or NULL. Allowing any key does not count.
 */
static const char *
template_attr_lookup(const struct template_fields *known, const char *name,
    size_t len, bool nocase)
{
	size_t i;

	if (known == NULL || known->attrs == NULL)
		return NULL;
	for (i = 0; i < known->nattrs; i++) {
		if (known->attrs[i] == NULL || strlen(known->attrs[i]) != len)
			continue;
		if (nocase ? strncasecmp(known->attrs[i], name, len) == 0
			   : memcmp(known->attrs[i], name, len) == 0)
			return known->attrs[i];
	}
	return NULL;
}

/*
 * Resolves attr.NAME, [from, to) being NAME: its length, no control
 * characters, and a key the caller allows.
 */
static int
template_resolve_attr(struct template_parse *p, size_t from, size_t to,
    struct template_part *part)
{
	const char *name = (const char *)p->src + from;
	size_t i, len = to - from;
	int q = template_clip(name, len, TEMPLATE_QUOTE_MAX);
	const char *near;

	if (len == 0)
		return template_errorf(p, from,
		    "custom field name missing after \"%s\"",
		    TEMPLATE_ATTR_PREFIX);
	if (len > TEMPLATE_MAX_ATTR)
		return template_errorf(p, from,
		    "custom field name is %zu bytes; the limit is %d", len,
		    TEMPLATE_MAX_ATTR);
	for (i = 0; i < len; i++)
		if (p->src[from + i] < 0x20 || p->src[from + i] == 0x7f)
			return template_errorf(p, from + i,
			    "control character in a custom field name");
	if (p->known == NULL || (!p->known->attrs_any && p->known->nattrs == 0))
		return template_errorf(p, from - strlen(TEMPLATE_ATTR_PREFIX),
		    "unknown custom field \"%s%.*s\": no custom fields are "
		    "available here",
		    TEMPLATE_ATTR_PREFIX, q, name);
	if (!p->known->attrs_any &&
	    template_attr_lookup(p->known, name, len, false) == NULL) {
		near = template_attr_lookup(p->known, name, len, true);
		if (near != NULL)
			return template_errorf(p,
			    from - strlen(TEMPLATE_ATTR_PREFIX),
			    "unknown custom field \"%s%.*s\" (did you mean "
			    "\"%s%.*s\"?)",
			    TEMPLATE_ATTR_PREFIX, q, name, TEMPLATE_ATTR_PREFIX,
			    template_clip(near, strlen(near),
				TEMPLATE_QUOTE_MAX),
			    near);
		return template_errorf(p, from - strlen(TEMPLATE_ATTR_PREFIX),
		    "unknown custom field \"%s%.*s\"", TEMPLATE_ATTR_PREFIX, q,
		    name);
	}
	part->field = TEMPLATE_F_ATTR;
	part->attr = xstrndup(name, len);
	return 0;
}

/* The fallback after slot's '|', trimmed: its length cap, no controls. */
static int
template_parse_fallback(struct template_parse *p,
    const struct template_slot *slot, struct template_part *part)
{
	size_t from = slot->bar + 1, to = slot->end, i;

	template_trim(p->src, &from, &to);
	if (to - from > TEMPLATE_MAX_FALLBACK)
		return template_errorf(p, from,
		    "fallback is %zu bytes; the limit is %d", to - from,
		    TEMPLATE_MAX_FALLBACK);
	for (i = from; i < to; i++)
		if ((p->src[i] < 0x20 && p->src[i] != '\t') ||
		    p->src[i] == 0x7f)
			return template_errorf(p, i,
			    "control character in a fallback");
	part->fallback = xstrndup((const char *)p->src + from, to - from);
	return 0;
}

/*
 * Compiles the placeholder whose "{{" is at 'start' into a part; *end is
 * set to the offset of its "}}".
 */
static int
template_parse_field(struct template_parse *p, size_t start, size_t *end)
{
	static const size_t plen = sizeof(TEMPLATE_ATTR_PREFIX) - 1;
	struct template_slot slot;
	struct template_part part;
	size_t from, to;
	int rc;

	slot.start = start;
	if (template_find_end(p, &slot) == -1)
		return -1;
	from = start + 2;
	to = slot.bar != TEMPLATE_NO_BAR ? slot.bar : slot.end;
	template_trim(p->src, &from, &to);
	if (from == to)
		return template_errorf(p, start,
		    "placeholder without a field name");
	memset(&part, 0, sizeof(part));
	part.is_field = true;
	if (to - from >= plen &&
	    memcmp(p->src + from, TEMPLATE_ATTR_PREFIX, plen) == 0)
		rc = template_resolve_attr(p, from + plen, to, &part);
	else
		rc = template_resolve_builtin(p, from, to, &part);
	if (rc == 0 && slot.bar != TEMPLATE_NO_BAR)
		rc = template_parse_fallback(p, &slot, &part);
	if (rc == -1) {
		free(part.attr);
		return -1;
	}
	template_pos_advance(&p->cur, p->src, p->len, start);
	part.offset = p->cur.offset;
	part.line = p->cur.line;
	part.column = p->cur.column;
	template_flush_literal(p);
	template_part_add(p->t, &part);
	*end = slot.end;
	return 0;
}

/*
 * The main loop: copies literal text into t->text, unescaping "\{{" and
 * "\}}", and hands each "{{" to template_parse_field(). A "}}" outside a
 * placeholder is an error.
 */
static int
template_parse_run(struct template_parse *p)
{
	const unsigned char *s = p->src;
	struct template_compiled *t = p->t;
	size_t i = 0, end = 0;

	while (i < p->len) {
		if (s[i] == '\\' && i + 2 < p->len &&
		    ((s[i + 1] == '{' && s[i + 2] == '{') ||
			(s[i + 1] == '}' && s[i + 2] == '}'))) {
			t->text[t->text_len++] = (char)s[i + 1];
			t->text[t->text_len++] = (char)s[i + 2];
			i += 3;
		} else if (s[i] == '{' && i + 1 < p->len && s[i + 1] == '{') {
			if (template_parse_field(p, i, &end) == -1)
				return -1;
			i = end + 2;
		} else if (s[i] == '}' && i + 1 < p->len && s[i + 1] == '}')
			return template_errorf(p, i,
			    "stray '}}' with no '{{' before it (write \\}} for "
			    "a literal '}}')");
		else
			t->text[t->text_len++] = (char)s[i++];
	}
	template_flush_literal(p);
	return 0;
}

/* Lists the fields used without a fallback, each once (t->needs). */
static void
template_needs_build(struct template_compiled *t)
{
	const struct template_part *part;
	size_t i, j;

	t->needs = xcalloc(t->nparts, sizeof(*t->needs));
	for (i = 0; i < t->nparts; i++) {
		part = &t->parts[i];
		if (!part->is_field || part->fallback != NULL)
			continue;
		for (j = 0; j < t->nneeds; j++)
			if (t->needs[j].field == part->field &&
			    (part->field != TEMPLATE_F_ATTR ||
				strcmp(t->needs[j].attr, part->attr) == 0))
				break;
		if (j < t->nneeds)
			continue;
		t->needs[t->nneeds].field = part->field;
		t->needs[t->nneeds].attr = part->attr;
		t->nneeds++;
	}
}

/*
 * Compiles a template: checks the text as a whole (size, UTF-8, NULs),
 * then cuts it into literal and placeholder parts in one pass.
 *
 * 'src' is read for exactly 'len' bytes. 'known' is only read during the
 * call. On success *out owns everything it refers to.
 */
int
template_compile(const char *src, size_t len, enum template_mode mode,
    const struct template_fields *known, struct template_compiled **out,
    struct template_error *err)
{
	struct template_parse p;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	memset(&p, 0, sizeof(p));
	p.src = (const unsigned char *)src;
	p.len = len;
	p.known = known;
	p.cur.line = p.cur.column = 1;
	p.err = err;
	if (template_check_text(&p) == -1)
		return -1;
	p.t = xcalloc(1, sizeof(*p.t));
	p.t->mode = mode;
	/* Unescaping only shrinks the text: len bytes are enough. */
	p.t->text = xmalloc(len + 1);
	if (template_parse_run(&p) == -1) {
		template_free(p.t);
		return -1;
	}
	p.t->text[p.t->text_len] = '\0';
	template_needs_build(p.t);
	*out = p.t;
	return 0;
}

/* The member's value for part, or NULL when it is missing (or blank). */
static const char *
template_value(const struct template_member_view *m,
    const struct template_part *part)
{
	const char *v = NULL;
	size_t i;

	switch (part->field) {
	case TEMPLATE_F_FIRST_NAME:
		v = m->first_name;
		break;
	case TEMPLATE_F_LAST_NAME:
		v = m->last_name;
		break;
	case TEMPLATE_F_EMAIL:
		v = m->email;
		break;
	case TEMPLATE_F_PHONE:
		v = m->phone;
		break;
	case TEMPLATE_F_ZIP:
		v = m->zip;
		break;
	case TEMPLATE_F_ATTR:
		v = m->attr != NULL ? m->attr(m->arg, part->attr) : NULL;
		break;
	}
	if (v == NULL)
		return NULL;
	for (i = 0; v[i] != '\0'; i++)
		if (!template_is_blank((unsigned char)v[i]) && v[i] != '\r' &&
		    v[i] != '\n')
			return v;
	return NULL;
}

/* Appends s with & < > " ' as HTML character references. */
static void
template_add_escaped(struct evbuffer *b, const char *s)
{
	size_t run;
	const char *ref;

	for (;;) {
		run = strcspn(s, "&<>\"'");
		evbuffer_add(b, s, run);
		s += run;
		switch (*s) {
		case '&':
			ref = "&amp;";
			break;
		case '<':
			ref = "&lt;";
			break;
		case '>':
			ref = "&gt;";
			break;
		case '"':
			ref = "&quot;";
			break;
		case '\'':
			ref = "&#39;";
			break;
		default:
			return;
		}
		evbuffer_add(b, ref, strlen(ref));
		s++;
	}
}

/* Fills err for a missing value that part has no fallback for. */
static void
template_render_missing(const struct template_part *part,
    struct template_error *err)
{
	err->offset = part->offset;
	err->line = part->line;
	err->column = part->column;
	/* An attribute key is at most TEMPLATE_MAX_ATTR bytes: it fits. */
	snprintf(err->message, sizeof(err->message),
	    "no %s%s for this member, and the placeholder has no fallback",
	    part->field == TEMPLATE_F_ATTR ? TEMPLATE_ATTR_PREFIX : "",
	    part->field == TEMPLATE_F_ATTR
		? part->attr
		: template_field_to_text(part->field));
}

/*
 * Renders t for member m: literal text as compiled, each placeholder as
 * the member's value (HTML-escaped in TEMPLATE_HTML) or, when missing,
 * its fallback as written. A missing value without a fallback fails the
 * whole render: the text is built in a scratch buffer and reaches 'out'
 * only when complete.
 *
 * 'm' and the strings it gives are only read during the call.
 */
int
template_render(const struct template_compiled *t,
    const struct template_member_view *m, struct evbuffer *out,
    struct template_error *err)
{
	const struct template_part *part;
	struct evbuffer *b;
	const char *v;
	size_t i;

	memset(err, 0, sizeof(*err));
	if ((b = evbuffer_new()) == NULL)
		fatalx("template_render: evbuffer_new failed");
	for (i = 0; i < t->nparts; i++) {
		part = &t->parts[i];
		if (!part->is_field) {
			evbuffer_add(b, t->text + part->lit_off, part->lit_len);
			continue;
		}
		if ((v = template_value(m, part)) == NULL &&
		    part->fallback == NULL) {
			template_render_missing(part, err);
			evbuffer_free(b);
			return -1;
		}
		if (v == NULL)
			evbuffer_add(b, part->fallback, strlen(part->fallback));
		else if (t->mode == TEMPLATE_HTML)
			template_add_escaped(b, v);
		else
			evbuffer_add(b, v, strlen(v));
	}
	evbuffer_add_buffer(out, b);
	evbuffer_free(b);
	return 0;
}

size_t
template_fields_needed(const struct template_compiled *t,
    const struct template_need **needs)
{
	*needs = t->needs;
	return t->nneeds;
}

enum template_mode
template_mode_of(const struct template_compiled *t)
{
	return t->mode;
}

const char *
template_field_to_text(enum template_field f)
{
	size_t i;

	for (i = 0; i < TEMPLATE_NBUILTINS; i++)
		if (template_builtins[i].field == f)
			return template_builtins[i].name;
	return "attr";
}

void
template_free(struct template_compiled *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nparts; i++) {
		free(t->parts[i].attr);
		free(t->parts[i].fallback);
	}
	free(t->parts);
	free(t->needs);
	free(t->text);
	free(t);
}
