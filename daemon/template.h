/*
 * template.h - message templates with member fields, such as
 * "Hi {{first_name|friend}}!".
 *
 * Contract:
 *  - A template is compiled once (template_compile) into literal text and
 *    placeholders, then rendered for each member (template_render). Every
 *    problem an author can fix is found at compile time, with its byte
 *    offset, line and column: unclosed "{{", stray "}}", nested
 *    placeholders, empty or unknown field names, bad fallbacks, invalid
 *    UTF-8, NUL bytes, and texts over TEMPLATE_MAX_BYTES.
 *  - Syntax: {{name}} or {{name|fallback}}, spaces and tabs allowed around
 *    the name and the fallback, on one line. Names are the built-in fields
 *    (first_name, last_name, email, phone, zip) or a custom field written
 *    attr.NAME, NAME being the member attribute's key as stored (exact
 *    bytes, case and inner spaces included). "\{{" and "\}}" are a literal
 *    "{{" and "}}"; any other backslash is literal.
 *  - A field is missing when the member has no value, or only spaces,
 *    tabs, CRs and LFs (SQL: trim(x, ' ' || char(9, 13, 10)) = '' or x IS
 *    NULL). A missing field renders its fallback; a missing field without
 *    one fails template_render(): a message never goes out with a blank.
 *    template_fields_needed() lists those fields, so a caller can count the
 *    audience members who lack them before sending.
 *  - TEMPLATE_HTML escapes member data (& < > " ') and copies the
 *    template's own text, fallbacks included, as written: the author writes
 *    HTML. Member data is safe in element text and quoted attribute
 *    values, not inside <script>, <style> or as a whole URL.
 *    TEMPLATE_TEXT never escapes.
 *  - Pure: no I/O, no globals, no logging (running out of memory is
 *    fatal, as everywhere). A compiled template is read-only, so threads
 *    may render it at once.
 */
#ifndef OD_TEMPLATE_H
#define OD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

#define TEMPLATE_MAX_BYTES    65536   /* a template's source, 64 KiB */
#define TEMPLATE_MAX_FALLBACK 256     /* bytes of one fallback, trimmed */
#define TEMPLATE_MAX_ATTR     128     /* bytes of a custom field's name */
#define TEMPLATE_ATTR_PREFIX  "attr." /* custom fields: {{attr.NAME}} */

enum template_mode {
	TEMPLATE_TEXT = 0, /* SMS bodies, plain-text email: no escaping */
	TEMPLATE_HTML,	   /* HTML email: member data is escaped */
};

enum template_field {
	TEMPLATE_F_FIRST_NAME = 0,
	TEMPLATE_F_LAST_NAME,
	TEMPLATE_F_EMAIL,
	TEMPLATE_F_PHONE,
	TEMPLATE_F_ZIP,
	TEMPLATE_F_ATTR, /* a custom field (member attribute) */
};

/* The custom fields a template may name, besides the built-in ones. */
struct template_fields {
	const char *const *attrs; /* attribute keys, exact bytes */
	size_t nattrs;
	bool attrs_any; /* accept any attr.NAME (attrs is then unused) */
};

/* Where and what: a compile error, or a render error's placeholder. */
struct template_error {
	size_t offset;	 /* bytes from the start of the source */
	unsigned line;	 /* 1-based */
	unsigned column; /* 1-based, in characters (UTF-8 code points) */
	char message[256];
};

/* A field a template uses without a fallback. */
struct template_need {
	enum template_field field;
	const char *attr; /* TEMPLATE_F_ATTR: the key; else NULL */
};

/*
 * Returns the value of custom field 'name' for the member being rendered,
 * or NULL if the member has none. The string is borrowed until the next
 * call or the end of template_render().
 */
typedef const char *template_attr_fn(void *arg, const char *name);

/* One member's values; NULL (or blank, see above) means missing. */
struct template_member_view {
	const char *first_name;
	const char *last_name;
	const char *email;
	const char *phone; /* E.164 */
	const char *zip;
	template_attr_fn *attr; /* NULL: the member has no custom fields */
	void *arg;		/* passed to attr */
};

struct template_compiled;

/*
 * Compiles 'len' bytes of 'src' (no NUL needed) in 'mode'. 'known' names
 * the custom fields allowed; NULL allows none. On 0, *out is a new
 * template the caller frees with template_free(). On -1, *out is NULL and
 * err says what is wrong and where.
 */
int template_compile(const char *src, size_t len, enum template_mode mode,
    const struct template_fields *known, struct template_compiled **out,
    struct template_error *err);
/*
 * Appends the template rendered for member 'm' to 'out'. Returns 0, or -1
 * when a field without a fallback is missing: err then names the field and
 * its placeholder's position, and nothing was added to 'out'.
 */
int template_render(const struct template_compiled *t,
    const struct template_member_view *m, struct evbuffer *out,
    struct template_error *err);
/*
 * Sets *needs to the fields the template uses at least once without a
 * fallback, each once, in order of first use; returns how many. The array
 * is borrowed from t (valid until template_free).
 */
size_t template_fields_needed(const struct template_compiled *t,
    const struct template_need **needs);
/* The template's mode, as compiled. */
enum template_mode template_mode_of(const struct template_compiled *t);
/* "first_name", ..., "zip"; "attr" for TEMPLATE_F_ATTR. */
const char *template_field_to_text(enum template_field f);
/* Frees t; NULL does nothing. */
void template_free(struct template_compiled *t);

#endif
