/*
 * check_inbound.c - unit tests of inbound.c's pure parts: the
 * classification of a text (opt-out words and their variants, the
 * multi-word revocation rule, opt-in, YES, HELP, keyword candidates and
 * conversations), the parsing of follow-up answers (names, ZIP codes,
 * emails), reserved words and template expansion. The routing itself is
 * covered end to end by tests/integration/test_keywords.py.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "config.h"
#include "inbound.h"

struct classify_case {
	const char *body;
	enum inbound_kind kind;
	const char *word; /* for INBOUND_WORD */
};

static const char *const extra_words[] = {"ARRET", "REMOVE", "TD"};

static const struct classify_case classify_cases[] = {
    /* the opt-out words, alone, in any case, with punctuation */
    {"STOP", INBOUND_OPTOUT, NULL},
    {"stop", INBOUND_OPTOUT, NULL},
    {"stop.", INBOUND_OPTOUT, NULL},
    {" Stop!", INBOUND_OPTOUT, NULL},
    {"STOP ", INBOUND_OPTOUT, NULL},
    {"\tsToP!!!\r\n", INBOUND_OPTOUT, NULL},
    {"\"stop\"", INBOUND_OPTOUT, NULL},
    {"(STOP)", INBOUND_OPTOUT, NULL},
    {"\xc2\xa1STOP!", INBOUND_OPTOUT, NULL},		    /* ¡STOP! */
    {"\xe2\x80\x9cstop\xe2\x80\x9d", INBOUND_OPTOUT, NULL}, /* “stop” */
    {"StopAll", INBOUND_OPTOUT, NULL},
    {"unsubscribe", INBOUND_OPTOUT, NULL},
    {"Cancel", INBOUND_OPTOUT, NULL},
    {"end", INBOUND_OPTOUT, NULL},
    {"QUIT.", INBOUND_OPTOUT, NULL},
    {"revoke", INBOUND_OPTOUT, NULL},
    {"optout", INBOUND_OPTOUT, NULL},
    {"opt-out", INBOUND_OPTOUT, NULL},
    {"Opt out", INBOUND_OPTOUT, NULL},
    {"OPT OUT!", INBOUND_OPTOUT, NULL},
    /* the configured extra words */
    {"arret", INBOUND_OPTOUT, NULL},
    {"Remove", INBOUND_OPTOUT, NULL},
    {"td", INBOUND_OPTOUT, NULL},
    {"arret svp", INBOUND_OPTOUT, NULL},
    /* short revocations */
    {"stop please", INBOUND_OPTOUT, NULL},
    {"Stop texting me", INBOUND_OPTOUT, NULL},
    {"unsubscribe me", INBOUND_OPTOUT, NULL},
    {"please stop", INBOUND_OPTOUT, NULL},
    {"Please stop texting me", INBOUND_OPTOUT, NULL},
    {"I said STOP", INBOUND_OPTOUT, NULL},
    {"cancel my texts", INBOUND_OPTOUT, NULL},
    {"remove me", INBOUND_OPTOUT, NULL},
    {"take me off", INBOUND_OPTOUT, NULL},
    {"stop,please", INBOUND_OPTOUT, NULL},
    /* longer ones: only clear revocations */
    {"please stop sending me these messages", INBOUND_OPTOUT, NULL},
    {"I want to unsubscribe from this list", INBOUND_OPTOUT, NULL},
    {"could you take me off your list", INBOUND_OPTOUT, NULL},
    {"I would like to opt out now", INBOUND_OPTOUT, NULL},
    {"stop the war in Darfur", INBOUND_TEXT, NULL},
    {"we must stop the war in Darfur now", INBOUND_TEXT, NULL},
    {"please stop sending me these messages, I never signed up for them",
	INBOUND_TEXT, NULL},
    {"Is the rally still on? Where do we end up?", INBOUND_TEXT, NULL},
    /* opt-in, YES, HELP */
    {"START", INBOUND_OPTIN, NULL},
    {"start.", INBOUND_OPTIN, NULL},
    {"Unstop", INBOUND_OPTIN, NULL},
    {"yes", INBOUND_YES, NULL},
    {" YES! ", INBOUND_YES, NULL},
    {"Yes please", INBOUND_TEXT, NULL},
    {"help", INBOUND_HELP, NULL},
    {"HELP?", INBOUND_HELP, NULL},
    {"Info", INBOUND_HELP, NULL},
    {"help me", INBOUND_TEXT, NULL},
    {"start the rally", INBOUND_TEXT, NULL},
    /* keyword candidates */
    {"darfur", INBOUND_WORD, "DARFUR"},
    {" Darfur! ", INBOUND_WORD, "DARFUR"},
    {"vote2026", INBOUND_WORD, "VOTE2026"},
    {"Mary", INBOUND_WORD, "MARY"},
    {"94110", INBOUND_WORD, "94110"},
    {"stopped", INBOUND_WORD, "STOPPED"},
    {"\xf0\x9f\x91\x8d", INBOUND_WORD, "\xf0\x9f\x91\x8d"},
    {"abcdefghijklmnopqrstuvwxyzabcdefghij", INBOUND_TEXT, NULL},
    /* conversations */
    {"", INBOUND_TEXT, NULL},
    {"   ", INBOUND_TEXT, NULL},
    {"!!!", INBOUND_TEXT, NULL},
    {"Darfur rally", INBOUND_TEXT, NULL},
    {"When is the next meeting?", INBOUND_TEXT, NULL},
    {"what's the end time", INBOUND_TEXT, NULL},
};

START_TEST(test_inbound_classify_table)
{
	const struct classify_case *c = &classify_cases[_i];
	char word[INBOUND_WORD_MAX + 1] = "junk";
	enum inbound_kind k;

	k = inbound_classify(c->body, extra_words, 3, word, sizeof(word));
	ck_assert_msg(k == c->kind, "'%s': %s, want %s", c->body,
	    inbound_kind_to_text(k), inbound_kind_to_text(c->kind));
	ck_assert_str_eq(word, c->word != NULL ? c->word : "");
}
END_TEST

START_TEST(test_inbound_classify_without_extra)
{
	char word[INBOUND_WORD_MAX + 1];

	ck_assert_int_eq(inbound_classify("ARRET", NULL, 0, word, sizeof(word)),
	    INBOUND_WORD);
	ck_assert_str_eq(word, "ARRET");
	ck_assert_int_eq(inbound_classify("stop", NULL, 0, NULL, 0),
	    INBOUND_OPTOUT);
	ck_assert_int_eq(inbound_classify(NULL, NULL, 0, word, sizeof(word)),
	    INBOUND_TEXT);
}
END_TEST

struct answer_case {
	const char *field;
	const char *in;
	const char *out; /* NULL: does not parse */
};

static const struct answer_case answer_cases[] = {
    {"first_name", "Mary", "Mary"},
    {"first_name", "  mary  ", "Mary"},
    {"first_name", "MARY ANN", "Mary Ann"},
    {"first_name", "mary   ann.", "Mary Ann"},
    {"first_name", "McDonald", "McDonald"},
    {"first_name", "jean-luc", "Jean-Luc"},
    {"last_name", "o'neil", "O'Neil"},
    {"last_name", "D'Angelo", "D'Angelo"},
    {"first_name", "Jos\xc3\xa9", "Jos\xc3\xa9"},
    {"first_name", "my name is mary", "Mary"},
    {"first_name", "I'm Sam", "Sam"},
    {"first_name", "", NULL},
    {"first_name", "   ", NULL},
    {"first_name", "12345", NULL},
    {"first_name", "R2D2", NULL},
    {"first_name", "mary@example.org", NULL},
    {"first_name", "why do you want to know that", NULL},
    {"first_name", "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
    {"first_name", "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    {"zip", "94110", "94110"},
    {"zip", " 02139 ", "02139"},
    {"zip", "94110-1234", "94110-1234"},
    {"zip", "94110 1234", "94110-1234"},
    {"zip", "941101234", "94110-1234"},
    {"zip", "9411", NULL},
    {"zip", "941100", NULL},
    {"zip", "ABCDE", NULL},
    {"zip", "94110-12", NULL},
    {"zip", "San Francisco", NULL},
    {"email", "Mary@Example.ORG", "mary@example.org"},
    {"email", " m.ann+news@mail.example.co.uk. ",
	"m.ann+news@mail.example.co.uk"},
    {"email", "mary", NULL},
    {"email", "mary@", NULL},
    {"email", "@example.org", NULL},
    {"email", "mary@example", NULL},
    {"email", "mary@@example.org", NULL},
    {"email", "ma ry@example.org", NULL},
    {"email", ".mary@example.org", NULL},
    {"email", "mary..ann@example.org", NULL},
    {"email", "mary@-example.org", NULL},
    {"email", "mary@example.c0m", NULL},
    {"phone", "+14155550100", NULL},
};

START_TEST(test_inbound_answer_table)
{
	const struct answer_case *c = &answer_cases[_i];
	char out[320] = "";
	int rc;

	rc = inbound_parse_answer(c->field, c->in, out, sizeof(out));
	if (c->out == NULL)
		ck_assert_msg(rc == -1, "%s '%s' parsed as '%s'", c->field,
		    c->in, out);
	else {
		ck_assert_msg(rc == 0, "%s '%s' did not parse", c->field,
		    c->in);
		ck_assert_str_eq(out, c->out);
	}
}
END_TEST

START_TEST(test_inbound_answer_small_buffer)
{
	char out[4];

	ck_assert_int_eq(
	    inbound_parse_answer("first_name", "Mary", out, sizeof(out)), -1);
	ck_assert_int_eq(inbound_parse_answer("zip", "94110", out, sizeof(out)),
	    -1);
}
END_TEST

START_TEST(test_inbound_reserved)
{
	struct config cfg;
	char arret[] = "ARRET", *words[] = {arret};

	memset(&cfg, 0, sizeof(cfg));
	cfg.stop_words = words;
	cfg.nstop_words = 1;
	ck_assert(inbound_word_reserved("STOP", NULL));
	ck_assert(inbound_word_reserved("OPTOUT", NULL));
	ck_assert(inbound_word_reserved("START", NULL));
	ck_assert(inbound_word_reserved("UNSTOP", NULL));
	ck_assert(inbound_word_reserved("YES", NULL));
	ck_assert(inbound_word_reserved("HELP", NULL));
	ck_assert(inbound_word_reserved("INFO", NULL));
	ck_assert(!inbound_word_reserved("ARRET", NULL));
	ck_assert(inbound_word_reserved("ARRET", &cfg));
	ck_assert(!inbound_word_reserved("DARFUR", &cfg));
}
END_TEST

START_TEST(test_inbound_expand)
{
	char program[] = "Darfur Now", contact[] = "help@example.org";
	struct config cfg;
	char *s;

	memset(&cfg, 0, sizeof(cfg));
	s = inbound_expand("{program}: {list} {question} {contact} {x}", &cfg,
	    NULL, NULL);
	ck_assert_str_eq(s,
	    "Text alerts: our list  us by replying to this message {x}");
	free(s);
	cfg.program = program;
	cfg.contact = contact;
	s = inbound_expand("{program}{program} in {list}: {question} "
			   "({contact})",
	    &cfg, "DARFUR", "What's your ZIP code?");
	ck_assert_str_eq(s,
	    "Darfur NowDarfur Now in DARFUR: What's your ZIP code? "
	    "(help@example.org)");
	free(s);
}
END_TEST

struct warn_log {
	int n;
	char text[8][512];
};

static void
warn_cb(void *arg, const char *text)
{
	struct warn_log *w = arg;

	if (w->n < 8)
		snprintf(w->text[w->n], sizeof(w->text[0]), "%s", text);
	w->n++;
}

/* Loads 'text' from a temporary file. */
static struct config *
load_text(const char *text, char *path, size_t pathlen)
{
	struct config *cfg;
	char err[512] = "";
	FILE *fp;
	int fd;

	snprintf(path, pathlen, "/tmp/od-check-inbound-XXXXXX");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	return cfg;
}

START_TEST(test_inbound_check_config)
{
	struct warn_log w = {0};
	struct config *cfg;
	char path[64], want[640];

	/* the defaults with program and contact set: nothing to say */
	cfg = load_text("[sms]\nprogram = Darfur Now\ncontact = 555-0100\n"
			"[list A]\nkeywords = a\n[list B]\nkeywords = b\n"
			"double_optin = yes\n",
	    path, sizeof(path));
	inbound_check_config(cfg, warn_cb, &w);
	ck_assert_int_eq(w.n, 0);
	config_free(cfg);
	unlink(path);

	cfg = load_text("[sms]\nhelp_reply = Call us.\n"
			"start_reply = {program}: back in. Msg & data rates "
			"may apply. Up to 4 msgs/mo. Reply HELP for help, "
			"STOP to end.\n"
			"[list A]\nkeywords = a\nwelcome = Hi there\n",
	    path, sizeof(path));
	inbound_check_config(cfg, warn_cb, &w);
	ck_assert_int_eq(w.n, 4);
	snprintf(want, sizeof(want),
	    "%s: [sms] program is not set: carriers require the program "
	    "name in welcomes and HELP answers",
	    path);
	ck_assert_str_eq(w.text[0], want);
	snprintf(want, sizeof(want),
	    "%s: [sms] contact is not set: carriers require a customer-care "
	    "contact in HELP answers",
	    path);
	ck_assert_str_eq(w.text[1], want);
	snprintf(want, sizeof(want),
	    "%s: [sms] help_reply lacks what carriers require: STOP "
	    "instructions",
	    path);
	ck_assert_str_eq(w.text[2], want);
	snprintf(want, sizeof(want),
	    "%s: the welcome of [list A] lacks what carriers require: a "
	    "frequency (\"Msg freq varies\"), \"Msg&data rates may apply\", "
	    "HELP instructions, STOP instructions",
	    path);
	ck_assert_str_eq(w.text[3], want);
	config_free(cfg);
	unlink(path);

	/* the program set but missing from a text */
	w.n = 0;
	cfg = load_text("[sms]\nprogram = Darfur Now\ncontact = 555-0100\n"
			"help_reply = Help: 555-0100. STOP to stop.\n",
	    path, sizeof(path));
	inbound_check_config(cfg, warn_cb, &w);
	ck_assert_int_eq(w.n, 1);
	snprintf(want, sizeof(want),
	    "%s: [sms] help_reply lacks what carriers require: the program "
	    "name",
	    path);
	ck_assert_str_eq(w.text[0], want);
	config_free(cfg);
	unlink(path);
}
END_TEST

Suite *
inbound_suite(void)
{
	Suite *s = suite_create("inbound");
	TCase *tc;

	tc = tcase_create("classify");
	tcase_add_loop_test(tc, test_inbound_classify_table, 0,
	    sizeof(classify_cases) / sizeof(classify_cases[0]));
	tcase_add_test(tc, test_inbound_classify_without_extra);
	tcase_add_test(tc, test_inbound_reserved);
	suite_add_tcase(s, tc);

	tc = tcase_create("answers");
	tcase_add_loop_test(tc, test_inbound_answer_table, 0,
	    sizeof(answer_cases) / sizeof(answer_cases[0]));
	tcase_add_test(tc, test_inbound_answer_small_buffer);
	tcase_add_test(tc, test_inbound_expand);
	suite_add_tcase(s, tc);

	tc = tcase_create("check_config");
	tcase_add_test(tc, test_inbound_check_config);
	suite_add_tcase(s, tc);
	return s;
}
