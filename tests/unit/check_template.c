/*
 * check_template.c - unit tests of template.c: compile errors with their
 * offset, line and column (unclosed, stray, nested, empty and unknown
 * names, custom fields, fallbacks, UTF-8, NUL, the size cap); rendering
 * with and without fallbacks, escapes, HTML escaping of member data only,
 * UTF-8 passing through; render errors that leave the output untouched;
 * template_fields_needed(); and arbitrary bytes compiled from buffers of
 * their exact size, so that a read past 'len' shows under ASan.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include "check_suites.h"
#include "smstext.h"
#include "template.h"
#include "xmalloc.h"

/* The custom fields the tests' audience has. */
static const char *const tt_attrs[] = {"City", "Home Ward", "email"};
static const struct template_fields tt_known = {tt_attrs, 3, false};
static const struct template_fields tt_any = {NULL, 0, true};

/* A member's custom fields, for the view's attr callback. */
struct tt_member {
	const char *city;
	const char *ward;
};

/* A compile error case: where, and a piece of the message. */
struct tt_bad {
	const char *src;
	size_t len; /* 0: strlen(src) */
	const struct template_fields *known;
	size_t offset;
	unsigned line;
	unsigned column;
	const char *message;
};

/* A render case: source, mode, member (full or empty) and the result. */
struct tt_render {
	const char *src;
	enum template_mode mode;
	bool full;
	const char *want;
};

static const char *tt_attr_cb(void *arg, const char *name);
static void tt_view(struct template_member_view *v, struct tt_member *x,
    bool full);
static struct template_compiled *tt_compile(const char *src,
    enum template_mode mode, const struct template_fields *known);
static char *tt_render(const struct template_compiled *t,
    const struct template_member_view *v);
static uint32_t tt_rand(uint32_t *state);

static const char *
tt_attr_cb(void *arg, const char *name)
{
	const struct tt_member *x = arg;

	if (strcmp(name, "City") == 0)
		return x->city;
	if (strcmp(name, "Home Ward") == 0)
		return x->ward;
	return NULL;
}

/* A member with every field (full) or with none. */
static void
tt_view(struct template_member_view *v, struct tt_member *x, bool full)
{
	memset(v, 0, sizeof(*v));
	memset(x, 0, sizeof(*x));
	v->attr = tt_attr_cb;
	v->arg = x;
	if (!full)
		return;
	v->first_name = "Ana";
	v->last_name = "D\xc3\xad"
		       "az";
	v->email = "ana@example.org";
	v->phone = "+15105550123";
	v->zip = "94612";
	x->city = "Oakland";
	x->ward = "3";
}

/* Compiles src, which must succeed. */
static struct template_compiled *
tt_compile(const char *src, enum template_mode mode,
    const struct template_fields *known)
{
	struct template_error err;
	struct template_compiled *t;

	ck_assert_msg(
	    template_compile(src, strlen(src), mode, known, &t, &err) == 0,
	    "%s: %u:%u %s", src, err.line, err.column, err.message);
	ck_assert_ptr_nonnull(t);
	return t;
}

/* Renders t for v, which must succeed; the caller frees the result. */
static char *
tt_render(const struct template_compiled *t,
    const struct template_member_view *v)
{
	struct evbuffer *b = evbuffer_new();
	struct template_error err;
	size_t len;
	char *s;

	ck_assert_ptr_nonnull(b);
	ck_assert_msg(template_render(t, v, b, &err) == 0, "%s", err.message);
	len = evbuffer_get_length(b);
	s = xmalloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/* xorshift32: the same "random" bytes on every run. */
static uint32_t
tt_rand(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

/* Each mistake, where it is reported, and what the message says. */
START_TEST(test_template_compile_errors)
{
	static const struct tt_bad bad[] = {
	    {"Hi {{first_name", 0, NULL, 3, 1, 4,
		"unclosed '{{': no '}}' before the end of the template"},
	    {"Hi {{first_name}", 0, NULL, 3, 1, 4, "unclosed '{{'"},
	    {"x\nHi {{first_name\nthere}}", 0, NULL, 5, 2, 4,
		"before the end of the line"},
	    {"a }} b", 0, NULL, 2, 1, 3, "stray '}}'"},
	    {"{{first_name}}}}", 0, NULL, 14, 1, 15, "stray '}}'"},
	    {"{{ }}", 0, NULL, 0, 1, 1, "placeholder without a field name"},
	    {"ok\n  {{|friend}}", 0, NULL, 5, 2, 3,
		"placeholder without a field name"},
	    {"{{first_name|{{last_name}}}}", 0, NULL, 13, 1, 14,
		"inside the placeholder opened at line 1, column 1: "
		"placeholders cannot nest"},
	    {"{{first_name {{last_name}}", 0, NULL, 13, 1, 14, "cannot nest"},
	    {"a\nb {{x}}", 0, NULL, 6, 2, 5, "unknown field \"x\" (fields: "},
	    {"\xc3\xa9 {{ nickname }}", 0, NULL, 6, 1, 6,
		"unknown field \"nickname\""},
	    {"{{First_Name}}", 0, NULL, 2, 1, 3,
		"field names are lower case (first_name)"},
	    {"{{City}}", 0, &tt_known, 2, 1, 3,
		"custom fields are written attr.City"},
	    {"{{city}}", 0, &tt_known, 2, 1, 3,
		"custom fields are written attr.City"},
	    {"{{attr.cty}}", 0, &tt_known, 2, 1, 3,
		"unknown custom field \"attr.cty\""},
	    {"{{attr.city|x}}", 0, &tt_known, 2, 1, 3,
		"unknown custom field \"attr.city\" (did you mean "
		"\"attr.City\"?)"},
	    {"{{attr.City}}", 0, NULL, 2, 1, 3,
		"no custom fields are available here"},
	    {"{{attr.}}", 0, &tt_any, 7, 1, 8,
		"custom field name missing after \"attr.\""},
	    {"{{attr.a\tb}}", 0, &tt_any, 8, 1, 9, "control character"},
	    {"{{first_name|a|b}}", 0, NULL, 14, 1, 15,
		"second '|' in a placeholder"},
	    {"{{first_name|a\x01"
	     "b}}",
		0, NULL, 14, 1, 15, "control character in a fallback"},
	    {"ab\xff", 0, NULL, 2, 1, 3, "invalid UTF-8 (byte 0xff)"},
	    {"\xc0\xaf", 0, NULL, 0, 1, 1, "invalid UTF-8"},
	    {"x\xed\xa0\x80", 0, NULL, 1, 1, 2, "invalid UTF-8"},
	    {"\xf4\x90\x80\x80", 0, NULL, 0, 1, 1, "invalid UTF-8"},
	    {"12\xe2\x82", 0, NULL, 2, 1, 3, "invalid UTF-8"},
	    {"a\0b", 3, NULL, 1, 1, 2, "NUL byte"},
	    {"a\r\nb\r\n}}", 0, NULL, 6, 3, 1, "stray"},
	    {"a\rb}}", 0, NULL, 3, 2, 2, "stray"},
	};
	struct template_error err;
	struct template_compiled *t;
	size_t i, len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].src);
		t = (struct template_compiled *)1;
		ck_assert_msg(template_compile(bad[i].src, len, TEMPLATE_TEXT,
				  bad[i].known, &t, &err) == -1,
		    "case %zu compiled", i);
		ck_assert_ptr_null(t);
		ck_assert_msg(err.offset == bad[i].offset &&
			err.line == bad[i].line && err.column == bad[i].column,
		    "case %zu: at %zu %u:%u, want %zu %u:%u (%s)", i,
		    err.offset, err.line, err.column, bad[i].offset,
		    bad[i].line, bad[i].column, err.message);
		ck_assert_msg(strstr(err.message, bad[i].message) != NULL,
		    "case %zu: \"%s\" lacks \"%s\"", i, err.message,
		    bad[i].message);
	}
}
END_TEST

/* What compiles: escapes, lone braces, spacing, a fallback at its cap. */
START_TEST(test_template_compile_ok)
{
	static const char *const ok[] = {"", "no fields at all",
	    "{ } { x } {x}", "a { {first_name} }", "\\{{ and \\}}", "x \\{",
	    "\\", "{{\tfirst_name\t|\tfriend\t}}", "{{zip|}}",
	    "{{first_name|Caf\xc3\xa9 {fr}iend}}", "{{ attr.Home Ward }}",
	    "{{attr.email}}", NULL};
	struct template_error err;
	struct template_compiled *t;
	char fb[TEMPLATE_MAX_FALLBACK + 32];
	size_t i;

	for (i = 0; ok[i] != NULL; i++)
		template_free(tt_compile(ok[i], TEMPLATE_TEXT, &tt_known));
	/* A fallback of exactly the cap, then one byte over it. */
	memcpy(fb, "{{zip|", 6);
	memset(fb + 6, 'z', TEMPLATE_MAX_FALLBACK);
	memcpy(fb + 6 + TEMPLATE_MAX_FALLBACK, "}}", 3);
	template_free(tt_compile(fb, TEMPLATE_TEXT, NULL));
	memcpy(fb + 6 + TEMPLATE_MAX_FALLBACK, "z}}", 4);
	ck_assert_int_eq(
	    template_compile(fb, strlen(fb), TEMPLATE_TEXT, NULL, &t, &err),
	    -1);
	ck_assert_uint_eq(err.offset, 6);
	ck_assert_str_eq(err.message,
	    "fallback is 257 bytes; the limit is 256");
	/* Any attr.NAME when the caller allows any. */
	template_free(
	    tt_compile("{{attr.whatever it is}}", TEMPLATE_TEXT, &tt_any));
}
END_TEST

/* 64 KiB compiles; one byte more is refused, pointing at that byte. */
START_TEST(test_template_size_cap)
{
	struct template_error err;
	struct template_compiled *t;
	char *big = xmalloc(TEMPLATE_MAX_BYTES + 1);

	memset(big, 'a', TEMPLATE_MAX_BYTES + 1);
	memcpy(big, "{{zip}}\n", 8);
	ck_assert_int_eq(template_compile(big, TEMPLATE_MAX_BYTES,
			     TEMPLATE_TEXT, NULL, &t, &err),
	    0);
	template_free(t);
	ck_assert_int_eq(template_compile(big, TEMPLATE_MAX_BYTES + 1,
			     TEMPLATE_TEXT, NULL, &t, &err),
	    -1);
	ck_assert_ptr_null(t);
	ck_assert_uint_eq(err.offset, TEMPLATE_MAX_BYTES);
	ck_assert_uint_eq(err.line, 2);
	ck_assert_uint_eq(err.column, TEMPLATE_MAX_BYTES - 8 + 1);
	ck_assert_str_eq(err.message,
	    "template is 65537 bytes; the limit is 65536 (64 KiB)");
	free(big);
}
END_TEST

/* Values, fallbacks for missing and blank values, escapes, UTF-8. */
START_TEST(test_template_render_fields)
{
	static const struct tt_render cases[] = {
	    {"Hi {{first_name|friend}}!", TEMPLATE_TEXT, true, "Hi Ana!"},
	    {"Hi {{first_name|friend}}!", TEMPLATE_TEXT, false, "Hi friend!"},
	    {"{{ first_name | good friend }}", TEMPLATE_TEXT, false,
		"good friend"},
	    {"[{{zip|}}]", TEMPLATE_TEXT, false, "[]"},
	    {"{{first_name}} {{last_name}} {{email}} {{phone}} {{zip}}",
		TEMPLATE_TEXT, true,
		"Ana D\xc3\xad"
		"az ana@example.org +15105550123 94612"},
	    {"{{attr.City|your town}}, ward {{ attr.Home Ward |?}}",
		TEMPLATE_TEXT, true, "Oakland, ward 3"},
	    {"{{attr.City|your town}}, ward {{ attr.Home Ward |?}}",
		TEMPLATE_TEXT, false, "your town, ward ?"},
	    {"{{attr.email|none}}", TEMPLATE_TEXT, true, "none"},
	    {"\\{{first_name\\}} is {{first_name}}", TEMPLATE_TEXT, true,
		"{{first_name}} is Ana"},
	    {"a \\b {c} \\", TEMPLATE_TEXT, true, "a \\b {c} \\"},
	    {"\xc2\xa1Hola {{first_name|amig\xc3\xa9}}! \xf0\x9f\x91\x8b",
		TEMPLATE_TEXT, false,
		"\xc2\xa1Hola amig\xc3\xa9! \xf0\x9f\x91\x8b"},
	    {"line 1\r\n{{zip}}\n", TEMPLATE_TEXT, true, "line 1\r\n94612\n"},
	    {"", TEMPLATE_TEXT, true, ""},
	};
	struct template_member_view v;
	struct tt_member x;
	struct template_compiled *t;
	char *s;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tt_view(&v, &x, cases[i].full);
		t = tt_compile(cases[i].src, cases[i].mode, &tt_known);
		s = tt_render(t, &v);
		ck_assert_msg(strcmp(s, cases[i].want) == 0,
		    "case %zu: \"%s\", want \"%s\"", i, s, cases[i].want);
		free(s);
		template_free(t);
	}
	/* Blank values are missing: the fallback shows, never the blank. */
	tt_view(&v, &x, true);
	v.first_name = " \t\r\n";
	x.city = "";
	t = tt_compile("{{first_name|friend}} of {{attr.City|here}}",
	    TEMPLATE_TEXT, &tt_known);
	s = tt_render(t, &v);
	ck_assert_str_eq(s, "friend of here");
	free(s);
	template_free(t);
	/* A member value is copied as is, braces and all. */
	v.first_name = "{{zip}} \\{{";
	t = tt_compile("{{first_name}}", TEMPLATE_TEXT, NULL);
	s = tt_render(t, &v);
	ck_assert_str_eq(s, "{{zip}} \\{{");
	free(s);
	template_free(t);
}
END_TEST

/* HTML escapes member data only; text mode never escapes. */
START_TEST(test_template_render_html)
{
	struct template_member_view v;
	struct tt_member x;
	struct template_compiled *t;
	char *s;

	tt_view(&v, &x, true);
	v.first_name = "<script>alert('x')</script>";
	v.last_name = "Smith & \"Sons\"";
	x.city = "Caf\xc3\xa9 <b>";
	t = tt_compile("<p class=\"x\">Hi {{first_name}} {{last_name}}, "
		       "{{attr.City}} &amp; you</p>",
	    TEMPLATE_HTML, &tt_known);
	ck_assert_int_eq(template_mode_of(t), TEMPLATE_HTML);
	s = tt_render(t, &v);
	ck_assert_str_eq(s,
	    "<p class=\"x\">Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
	    "Smith &amp; &quot;Sons&quot;, Caf\xc3\xa9 &lt;b&gt; &amp; you</p>");
	free(s);
	template_free(t);
	/* The fallback is the author's text: copied as written. */
	tt_view(&v, &x, false);
	t = tt_compile("{{first_name|<b>friend</b> &amp; co}}", TEMPLATE_HTML,
	    NULL);
	s = tt_render(t, &v);
	ck_assert_str_eq(s, "<b>friend</b> &amp; co");
	free(s);
	template_free(t);
	/* Text mode: the same data, untouched. */
	tt_view(&v, &x, true);
	v.first_name = "<script>alert('x')</script> & \"q\"";
	t = tt_compile("{{first_name}}", TEMPLATE_TEXT, NULL);
	ck_assert_int_eq(template_mode_of(t), TEMPLATE_TEXT);
	s = tt_render(t, &v);
	ck_assert_str_eq(s, "<script>alert('x')</script> & \"q\"");
	free(s);
	template_free(t);
}
END_TEST

/* A missing field without fallback: -1, where, which, nothing written. */
START_TEST(test_template_render_missing)
{
	struct template_member_view v;
	struct template_error err;
	struct tt_member x;
	struct template_compiled *t;
	struct evbuffer *b = evbuffer_new();

	ck_assert_ptr_nonnull(b);
	evbuffer_add(b, "kept", 4);
	tt_view(&v, &x, false);
	v.first_name = "Ana";
	t = tt_compile("Hi {{first_name}},\n\xc3\xa9t\xc3\xa9 in "
		       "{{ attr.City }} {{zip}}",
	    TEMPLATE_TEXT, &tt_known);
	ck_assert_int_eq(template_render(t, &v, b, &err), -1);
	ck_assert_uint_eq(err.offset, 28);
	ck_assert_uint_eq(err.line, 2);
	ck_assert_uint_eq(err.column, 8);
	ck_assert_str_eq(err.message,
	    "no attr.City for this member, and the placeholder has no "
	    "fallback");
	/* The first field rendered, but none of it reached the buffer. */
	ck_assert_uint_eq(evbuffer_get_length(b), 4);
	x.city = "Oakland";
	ck_assert_int_eq(template_render(t, &v, b, &err), -1);
	ck_assert_str_eq(err.message,
	    "no zip for this member, and the placeholder has no fallback");
	ck_assert_uint_eq(err.offset, 44);
	ck_assert_uint_eq(evbuffer_get_length(b), 4);
	v.zip = "94612";
	ck_assert_int_eq(template_render(t, &v, b, &err), 0);
	ck_assert_uint_eq(evbuffer_get_length(b),
	    strlen("keptHi Ana,\n\xc3\xa9t\xc3\xa9 in Oakland 94612"));
	template_free(t);
	/* No attr callback at all: custom fields are missing. */
	v.attr = NULL;
	t = tt_compile("{{attr.City}}", TEMPLATE_TEXT, &tt_known);
	ck_assert_int_eq(template_render(t, &v, b, &err), -1);
	template_free(t);
	evbuffer_free(b);
}
END_TEST

/* Fields without a fallback, each once, in order of first use. */
START_TEST(test_template_fields_needed)
{
	const struct template_need *n;
	struct template_compiled *t;

	t = tt_compile("{{first_name}} {{first_name|x}} {{attr.City}} "
		       "{{zip|0}} {{attr.City}} {{attr.Home Ward|w}} "
		       "{{email}} {{last_name|y}} {{first_name}}",
	    TEMPLATE_TEXT, &tt_known);
	ck_assert_uint_eq(template_fields_needed(t, &n), 3);
	ck_assert_int_eq(n[0].field, TEMPLATE_F_FIRST_NAME);
	ck_assert_ptr_null(n[0].attr);
	ck_assert_int_eq(n[1].field, TEMPLATE_F_ATTR);
	ck_assert_str_eq(n[1].attr, "City");
	ck_assert_int_eq(n[2].field, TEMPLATE_F_EMAIL);
	ck_assert_str_eq(template_field_to_text(n[2].field), "email");
	template_free(t);
	/* With a fallback once and without it later: still needed. */
	t = tt_compile("{{zip|x}} {{zip}} {{phone|p}}", TEMPLATE_TEXT, NULL);
	ck_assert_uint_eq(template_fields_needed(t, &n), 1);
	ck_assert_int_eq(n[0].field, TEMPLATE_F_ZIP);
	template_free(t);
	t = tt_compile("{{first_name|friend}}, no others", TEMPLATE_TEXT, NULL);
	ck_assert_uint_eq(template_fields_needed(t, &n), 0);
	template_free(t);
	ck_assert_str_eq(template_field_to_text(TEMPLATE_F_ATTR), "attr");
	template_free(NULL);
}
END_TEST

/*
 * Arbitrary bytes, mostly template syntax, from buffers of exactly their
 * length: each compiles or fails with a position inside the text and a
 * message that is valid UTF-8 (it goes into JSON), and what compiles
 * renders.
 */
START_TEST(test_template_arbitrary_bytes)
{
	static const char alphabet[] = "{}|\\ \ta.\n\r\xc3\xa9\xff\x01"
				       "first_name|attr.City";
	struct template_member_view v;
	struct template_error err;
	struct smstext_info info;
	struct tt_member x;
	struct template_compiled *t;
	struct evbuffer *b;
	uint32_t seed = 2463534242u;
	unsigned round;
	size_t len, i;
	char *src;
	unsigned compiled = 0;

	tt_view(&v, &x, true);
	for (round = 0; round < 20000; round++) {
		len = tt_rand(&seed) % 48;
		src = xmalloc(len);
		for (i = 0; i < len; i++)
			src[i] = (tt_rand(&seed) % 8 == 0)
			    ? (char)tt_rand(&seed)
			    : alphabet[tt_rand(&seed) % (sizeof(alphabet) - 1)];
		if (template_compile(src, len,
			round % 2 ? TEMPLATE_HTML : TEMPLATE_TEXT,
			round % 3 ? &tt_any : &tt_known, &t, &err) == 0) {
			compiled++;
			b = evbuffer_new();
			ck_assert_ptr_nonnull(b);
			if (template_render(t, &v, b, &err) == -1) {
				ck_assert_uint_eq(evbuffer_get_length(b), 0);
				ck_assert_uint_le(err.offset, len);
				ck_assert_int_eq(
				    smstext_analyze(err.message, &info), 0);
			}
			evbuffer_free(b);
			template_free(t);
		} else {
			ck_assert_ptr_null(t);
			ck_assert_uint_le(err.offset, len);
			ck_assert_uint_ge(err.line, 1);
			ck_assert_uint_ge(err.column, 1);
			ck_assert_uint_gt(strlen(err.message), 0);
			ck_assert_int_eq(smstext_analyze(err.message, &info),
			    0);
		}
		free(src);
	}
	/* Enough of them are templates to exercise rendering (2899). */
	ck_assert_uint_gt(compiled, 1000);
}
END_TEST

Suite *
template_suite(void)
{
	Suite *s = suite_create("template");
	TCase *tc;

	tc = tcase_create("compile");
	tcase_add_test(tc, test_template_compile_errors);
	tcase_add_test(tc, test_template_compile_ok);
	tcase_add_test(tc, test_template_size_cap);
	tcase_add_test(tc, test_template_arbitrary_bytes);
	suite_add_tcase(s, tc);
	tc = tcase_create("render");
	tcase_add_test(tc, test_template_render_fields);
	tcase_add_test(tc, test_template_render_html);
	tcase_add_test(tc, test_template_render_missing);
	tcase_add_test(tc, test_template_fields_needed);
	suite_add_tcase(s, tc);
	return s;
}
