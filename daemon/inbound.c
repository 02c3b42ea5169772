/*
 * inbound.c - keyword routing of received texts (doc/compliance.md).
 *
 * A stored inbound text is classified first (inbound_classify(), pure),
 * then acted on with the member's state, in this order:
 *   1. opt-out: the member's SMS channel is opted out (consent event, one
 *      confirmation, exempt from the send-time check so it reaches them);
 *      a STOP from someone already opted out gets no reply at all;
 *   2. opt-in: START, UNSTOP, and YES from an opted-out member: back in,
 *      the earlier subscriptions count again, one confirmation;
 *   3. HELP / INFO: the help text (exempt as well), nothing changes;
 *   4. a list keyword (one word): the member is created if new and
 *      subscribed (pending + "reply YES" on double opt-in lists, else
 *      active + the welcome), then the list's follow-up questions are
 *      asked one at a time; a keyword of a list the member is in gets the
 *      "already in" reply. A keyword is an explicit request for texts, so
 *      it also lifts an earlier opt-out (recorded as an opt-in event);
 *   5. YES with a pending subscription confirms it (welcome, questions);
 *   6. a reply while a follow-up question is pending (asked less than
 *      INBOUND_PROMPT_TTL ago) is its answer: parsed, stored on the
 *      member, next question; a bad answer is asked once more, a second
 *      bad answer drops the question;
 *   7. anything else is a conversation message (unread, for the inbox):
 *      it joins the member's conversation (reopened if closed), with the
 *      sender it came in on and the alert it answers, and is announced
 *      as "message" and "conversation" events (events.h), written in the
 *      same group.
 *
 * The classification rule. The text is split into words at white space,
 * ASCII punctuation other than '-' and '\'' (which are kept inside a
 * word, so "OPT-OUT" and "don't" are one word) and common Unicode
 * punctuation (¡ ¿ « » curly quotes, ellipsis, full-width ! ? ,); words
 * are upper-cased (ASCII) and empty ones dropped. Then:
 *   - one word: an opt-out word (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
 *     QUIT, REVOKE, OPTOUT, OPT-OUT and [sms] stop_words) is an opt-out;
 *     START/UNSTOP opt-in; YES; HELP/INFO; any other word is a keyword
 *     candidate. So "stop.", " Stop!", "STOP " and "¡STOP!" all opt out.
 *   - 2 to 4 words: an opt-out when the first word is an opt-out word
 *     ("stop please", "unsubscribe me", "cancel my texts", "end"), when
 *     any word is a strong one (STOP, STOPALL, UNSUBSCRIBE, REVOKE,
 *     OPTOUT, OPT-OUT: "please stop texting", "I said STOP"), or when it
 *     holds "OPT OUT", "REMOVE ME" or "TAKE ME OFF".
 *   - 5 to 8 words: an opt-out when it holds UNSUBSCRIBE, STOPALL,
 *     REVOKE, OPTOUT, OPT-OUT, "OPT OUT", "REMOVE ME", "TAKE ME OFF", or
 *     STOP followed by a word about the messages (ME, TEXTING, TEXTS,
 *     SENDING, MESSAGING, IT, THIS, ...): "please stop sending me these
 *     messages" opts out, "stop the war in Darfur now" does not.
 *   - anything longer is a conversation message; staff read those.
 * FCC 24-24 asks that revocation "by any reasonable means" be honoured
 * and a missed opt-out is far costlier than a false one (the member can
 * text START), so short texts lean towards opting out. Opt-in, YES and
 * HELP are single words only: they must be unambiguous.
 *
 * Replies go out at MSG_PRIO_REPLY through the sender the text came in on
 * (from its configured from number); only the opt-out confirmation and
 * the HELP answer are optout_exempt.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "dispatch.h"
#include "email_addr.h"
#include "events.h"
#include "inbound.h"
#include "log.h"
#include "phone.h"
#include "queue.h"
#include "smstext.h"
#include "store.h"
#include "store_lists_pg.h"
#include "store_members.h"
#include "xmalloc.h"

/* A follow-up answer later than this is a conversation message. */
#define INBOUND_PROMPT_TTL (24 * 3600 * 1000LL)
/* Words inbound_classify() looks at; longer texts are conversations. */
#define INBOUND_MAX_WORDS 8
#define INBOUND_NAME_MAX  50

struct inbound {
	struct inbound_deps deps;
};

/* One inbound text being routed. */
struct inbound_ctx {
	struct inbound *ib;
	int64_t msg_id;
	const char *sender;
	const char *from; /* the member's number, E.164 when it parses */
	int64_t member;
	int64_t now;
	int64_t conversation; /* inbound_link(): the conversation, 0 none */
	char *note;	      /* inbound_log() */
	size_t notelen;
	char *err;
	size_t errlen;
};

/* The words of a text, as inbound_classify() sees them. */
struct inbound_words {
	char w[INBOUND_MAX_WORDS + 1][INBOUND_WORD_MAX + 1];
	size_t n; /* words kept, at most INBOUND_MAX_WORDS + 1 */
};

static const char *const inbound_stop[] = {"STOP", "STOPALL", "UNSUBSCRIBE",
    "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT-OUT", NULL};
static const char *const inbound_strong[] = {"STOP", "STOPALL", "UNSUBSCRIBE",
    "REVOKE", "OPTOUT", "OPT-OUT", NULL};
static const char *const inbound_rare[] = {"STOPALL", "UNSUBSCRIBE", "REVOKE",
    "OPTOUT", "OPT-OUT", NULL};
static const char *const inbound_stop_objects[] = {"ME", "TEXTING", "TEXT",
    "TEXTS", "SENDING", "MESSAGING", "MESSAGE", "MESSAGES", "MSGS",
    "CONTACTING", "CALLING", "EMAILING", "IT", "THIS", "THESE", "THEM", "ALL",
    "NOW", "PLEASE", "PLS", NULL};
static const char *const inbound_start[] = {"START", "UNSTOP", NULL};
static const char *const inbound_help[] = {"HELP", "INFO", NULL};

static bool inbound_in(const char *w, const char *const *set);
static bool inbound_in_extra(const char *w, const char *const *extra, size_t n);
static void inbound_split(const char *body, struct inbound_words *ws);
static bool inbound_has_phrase(const struct inbound_words *ws, const char *a,
    const char *b, const char *c);
static bool inbound_short_optout(const struct inbound_words *ws,
    const char *const *extra, size_t nextra);
static bool inbound_long_optout(const struct inbound_words *ws);
static int inbound_parse_name(const char *in, char *out, size_t outlen);
static int inbound_parse_zip(const char *in, char *out, size_t outlen);
static int inbound_parse_email(const char *in, char *out, size_t outlen);
static int inbound_reply(struct inbound_ctx *c, const char *tmpl,
    const char *list, const char *question, bool exempt);
static int inbound_link(struct inbound_ctx *c, bool conversation);
static void inbound_log(struct inbound_ctx *c, const char *action,
    const char *extra);
static int inbound_optout(struct inbound_ctx *c);
static int inbound_optin(struct inbound_ctx *c);
static int inbound_keyword(struct inbound_ctx *c, int64_t list,
    const char *keyword);
static int inbound_welcome(struct inbound_ctx *c, const struct list_info *li);
static int inbound_ask(struct inbound_ctx *c, const struct list_info *li,
    unsigned index, unsigned attempts, bool again);
static int inbound_answer(struct inbound_ctx *c, const struct member_prompt *p,
    const char *body, bool *handled);
static const char *inbound_prompt_text(const struct config_list *l,
    const char *field);

/* ---- Classification ---------------------------------------------------- */

static bool
inbound_in(const char *w, const char *const *set)
{
	size_t i;

	for (i = 0; set[i] != NULL; i++)
		if (strcmp(w, set[i]) == 0)
			return true;
	return false;
}

static bool
inbound_in_extra(const char *w, const char *const *extra, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(w, extra[i]) == 0)
			return true;
	return false;
}

/* Unicode punctuation that also splits words (UTF-8). */
static const char *const inbound_upunct[] = {"\xc2\xa1", "\xc2\xbf", "\xc2\xab",
    "\xc2\xbb",					    /* ¡ ¿ « » */
    "\xe2\x80\x98", "\xe2\x80\x99", "\xe2\x80\x9c", /* ‘ ’ “ */
    "\xe2\x80\x9d", "\xe2\x80\xa6", "\xe3\x80\x82", /* ” … 。 */
    "\xef\xbc\x81", "\xef\xbc\x9f", "\xef\xbc\x8c", /* ！ ？ ， */
    "\xc2\xa0", NULL};				    /* nbsp */

/*
 * The length of the word separator at p, 0 if none: ASCII white space and
 * punctuation but '-' and '\'', and the Unicode punctuation above.
 */
static size_t
inbound_sep_len(const unsigned char *p)
{
	size_t i, n;

	if (*p == '-' || *p == '\'')
		return 0;
	if (*p < 0x80)
		return *p <= ' ' || *p == 0x7f ||
		    strchr("!\"#$%&()*+,./:;<=>?@[\\]^_`{|}~", *p) != NULL;
	for (i = 0; inbound_upunct[i] != NULL; i++) {
		n = strlen(inbound_upunct[i]);
		if (strncmp((const char *)p, inbound_upunct[i], n) == 0)
			return n;
	}
	return 0;
}

/*
 * Splits body into upper-cased words (see the top comment); '-' and '\''
 * at a word's ends are dropped. A word longer than INBOUND_WORD_MAX is
 * kept as "\x01" (it matches nothing). Stops counting past
 * INBOUND_MAX_WORDS.
 */
static void
inbound_split(const char *body, struct inbound_words *ws)
{
	const unsigned char *p = (const unsigned char *)body, *s, *e;
	size_t len, i, n;
	char *w;

	ws->n = 0;
	while (*p != '\0' && ws->n <= INBOUND_MAX_WORDS) {
		while (*p != '\0' && (n = inbound_sep_len(p)) > 0)
			p += n;
		for (s = p; *p != '\0' && inbound_sep_len(p) == 0; p++)
			;
		e = p;
		while (s < e && (*s == '-' || *s == '\''))
			s++;
		while (e > s && (e[-1] == '-' || e[-1] == '\''))
			e--;
		if ((len = (size_t)(e - s)) == 0)
			continue;
		w = ws->w[ws->n++];
		if (len > INBOUND_WORD_MAX) {
			strlcpy(w, "\x01", INBOUND_WORD_MAX + 1);
			continue;
		}
		for (i = 0; i < len; i++)
			w[i] =
			    (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A'
							      : s[i]);
		w[len] = '\0';
	}
}

/* True if the words a b (c; NULL = only two) appear in a row. */
static bool
inbound_has_phrase(const struct inbound_words *ws, const char *a, const char *b,
    const char *c)
{
	size_t i, need = c != NULL ? 3 : 2;

	for (i = 0; i + need <= ws->n; i++)
		if (strcmp(ws->w[i], a) == 0 && strcmp(ws->w[i + 1], b) == 0 &&
		    (c == NULL || strcmp(ws->w[i + 2], c) == 0))
			return true;
	return false;
}

static bool
inbound_phrase_optout(const struct inbound_words *ws)
{
	return inbound_has_phrase(ws, "OPT", "OUT", NULL) ||
	    inbound_has_phrase(ws, "REMOVE", "ME", NULL) ||
	    inbound_has_phrase(ws, "TAKE", "ME", "OFF");
}

/* 2 to 4 words. */
static bool
inbound_short_optout(const struct inbound_words *ws, const char *const *extra,
    size_t nextra)
{
	size_t i;

	if (inbound_in(ws->w[0], inbound_stop) ||
	    inbound_in_extra(ws->w[0], extra, nextra))
		return true;
	for (i = 0; i < ws->n; i++)
		if (inbound_in(ws->w[i], inbound_strong))
			return true;
	return inbound_phrase_optout(ws);
}

/* 5 to 8 words. */
static bool
inbound_long_optout(const struct inbound_words *ws)
{
	size_t i;

	for (i = 0; i < ws->n; i++) {
		if (inbound_in(ws->w[i], inbound_rare))
			return true;
		if (strcmp(ws->w[i], "STOP") == 0 && i + 1 < ws->n &&
		    inbound_in(ws->w[i + 1], inbound_stop_objects))
			return true;
	}
	return inbound_phrase_optout(ws);
}

enum inbound_kind
inbound_classify(const char *body, const char *const *extra, size_t nextra,
    char *word, size_t wordlen)
{
	struct inbound_words ws;
	const char *w;

	if (word != NULL && wordlen > 0)
		word[0] = '\0';
	inbound_split(body != NULL ? body : "", &ws);
	if (ws.n == 0 || ws.n > INBOUND_MAX_WORDS)
		return INBOUND_TEXT;
	if (ws.n > 1) {
		if (ws.n <= 4 ? inbound_short_optout(&ws, extra, nextra)
			      : inbound_long_optout(&ws))
			return INBOUND_OPTOUT;
		return INBOUND_TEXT;
	}
	w = ws.w[0];
	if (inbound_in(w, inbound_stop) || inbound_in_extra(w, extra, nextra))
		return INBOUND_OPTOUT;
	if (inbound_in(w, inbound_start))
		return INBOUND_OPTIN;
	if (strcmp(w, "YES") == 0)
		return INBOUND_YES;
	if (inbound_in(w, inbound_help))
		return INBOUND_HELP;
	if (w[0] == '\x01')
		return INBOUND_TEXT;
	if (word != NULL)
		strlcpy(word, w, wordlen);
	return INBOUND_WORD;
}

const char *
inbound_kind_to_text(enum inbound_kind k)
{
	static const char *const names[] = {"optout", "optin", "yes", "help",
	    "word", "text"};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

bool
inbound_word_reserved(const char *word, const struct config *cfg)
{
	if (inbound_in(word, inbound_stop) || inbound_in(word, inbound_start) ||
	    inbound_in(word, inbound_help) || strcmp(word, "YES") == 0)
		return true;
	return cfg != NULL &&
	    inbound_in_extra(word, (const char *const *)cfg->stop_words,
		cfg->nstop_words);
}

/* ---- Answers to follow-up questions -------------------------------------- */

/* Copies in without surrounding white space and ".,!;" into out. */
static int
inbound_trim(const char *in, char *out, size_t outlen)
{
	const char *e;

	in += strspn(in, " \t\r\n");
	e = in + strlen(in);
	while (e > in && strchr(" \t\r\n.,!;", e[-1]) != NULL)
		e--;
	if ((size_t)(e - in) >= outlen || e == in)
		return -1;
	memcpy(out, in, (size_t)(e - in));
	out[e - in] = '\0';
	return 0;
}

static bool
inbound_is_lower(char ch)
{
	return ch >= 'a' && ch <= 'z';
}

static bool
inbound_is_upper(char ch)
{
	return ch >= 'A' && ch <= 'Z';
}

/* Drops "my name is ", "i'm ", ... from the front of a name answer. */
static const char *
inbound_name_prefix(const char *s)
{
	static const char *const pre[] = {"my name is ", "my name's ",
	    "name is ", "name's ", "i am ", "i'm ", "im ", "it's ", "its ",
	    "this is ", "call me ", NULL};
	size_t i, n;

	for (i = 0; pre[i] != NULL; i++) {
		n = strlen(pre[i]);
		if (strncasecmp(s, pre[i], n) == 0 && s[n] != '\0')
			return s + n;
	}
	return s;
}

static int
inbound_parse_name(const char *in, char *out, size_t outlen)
{
	char buf[256];
	const char *s;
	size_t i, o = 0, chars = 0, words = 1;
	bool lower = false, upper = false, letter = false;
	unsigned char ch;

	if (inbound_trim(in, buf, sizeof(buf)) == -1)
		return -1;
	s = inbound_name_prefix(buf);
	for (i = 0; s[i] != '\0'; i++) {
		ch = (unsigned char)s[i];
		if (ch == ' ' || ch == '\t') {
			if (o > 0 && out[o - 1] != ' ') {
				if (o + 1 >= outlen)
					return -1;
				out[o++] = ' ';
				chars++;
				words++;
			}
			continue;
		}
		if (!(inbound_is_lower((char)ch) ||
			inbound_is_upper((char)ch) || ch >= 0x80 ||
			ch == '\'' || ch == '-' || ch == '.'))
			return -1;
		letter |= inbound_is_lower((char)ch) ||
		    inbound_is_upper((char)ch) || ch >= 0xc0;
		lower |= inbound_is_lower((char)ch);
		upper |= inbound_is_upper((char)ch);
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)ch;
		if ((ch & 0xc0) != 0x80)
			chars++;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--, chars--;
	out[o] = '\0';
	if (!letter || chars == 0 || chars > INBOUND_NAME_MAX || words > 4)
		return -1;
	if (lower && upper)
		return 0; /* written with care: keep it */
	for (i = 0; i < o; i++) {
		bool start = i == 0 || out[i - 1] == ' ' || out[i - 1] == '-' ||
		    (out[i - 1] == '\'' && i >= 2 &&
			(i == 2 || out[i - 3] == ' ' || out[i - 3] == '-'));
		if (start && inbound_is_lower(out[i]))
			out[i] = (char)(out[i] - 'a' + 'A');
		else if (!start && inbound_is_upper(out[i]))
			out[i] = (char)(out[i] - 'A' + 'a');
	}
	return 0;
}

static int
inbound_parse_zip(const char *in, char *out, size_t outlen)
{
	char buf[64];
	size_t n;

	if (inbound_trim(in, buf, sizeof(buf)) == -1 || outlen < 11)
		return -1;
	n = strlen(buf);
	if (n == 5 && strspn(buf, "0123456789") == 5) {
		strlcpy(out, buf, outlen);
		return 0;
	}
	if (n == 9 && strspn(buf, "0123456789") == 9) {
		snprintf(out, outlen, "%.5s-%.4s", buf, buf + 5);
		return 0;
	}
	if (n == 10 && strspn(buf, "0123456789") == 5 &&
	    (buf[5] == '-' || buf[5] == ' ') &&
	    strspn(buf + 6, "0123456789") == 4) {
		snprintf(out, outlen, "%.5s-%.4s", buf, buf + 6);
		return 0;
	}
	return -1;
}

/* The answer trimmed, then checked and lower-cased by the rule of
 * email_addr.h (the members API and the import use it too). */
static int
inbound_parse_email(const char *in, char *out, size_t outlen)
{
	char buf[EMAIL_ADDR_MAX + 2];

	if (inbound_trim(in, buf, sizeof(buf)) == -1)
		return -1;
	return email_addr_normalize(buf, out, outlen, NULL, 0);
}

int
inbound_parse_answer(const char *field, const char *answer, char *out,
    size_t outlen)
{
	if (answer == NULL || outlen == 0)
		return -1;
	if (strcmp(field, "first_name") == 0 || strcmp(field, "last_name") == 0)
		return inbound_parse_name(answer, out, outlen);
	if (strcmp(field, "zip") == 0)
		return inbound_parse_zip(answer, out, outlen);
	if (strcmp(field, "email") == 0)
		return inbound_parse_email(answer, out, outlen);
	return -1;
}

/* ---- Templates --------------------------------------------------------- */

char *
inbound_expand(const char *tmpl, const struct config *cfg, const char *list,
    const char *question)
{
	static const struct {
		const char *name;
		size_t len;
	} keys[] = {{"{program}", 9}, {"{contact}", 9}, {"{list}", 6},
	    {"{question}", 10}};
	const char *vals[4], *p, *q;
	char *out;
	size_t cap, len = 0, i, n;

	vals[0] =
	    cfg != NULL && cfg->program != NULL ? cfg->program : "Text alerts";
	vals[1] = cfg != NULL && cfg->contact != NULL
	    ? cfg->contact
	    : "us by replying to this message";
	vals[2] = list != NULL ? list : "our list";
	vals[3] = question != NULL ? question : "";
	cap = strlen(tmpl) + 1;
	for (i = 0; i < 4; i++)
		cap += strlen(vals[i]) * 4;
	out = xmalloc(cap);
	for (p = tmpl; *p != '\0';) {
		for (i = 0; i < 4; i++)
			if (strncmp(p, keys[i].name, keys[i].len) == 0)
				break;
		if (i == 4) {
			out[len++] = *p++;
			continue;
		}
		q = vals[i];
		n = strlen(q);
		if (len + n + strlen(p) + 1 > cap) {
			cap = (len + n + strlen(p) + 1) * 2;
			out = xreallocarray(out, cap, 1);
		}
		memcpy(out + len, q, n);
		len += n;
		p += keys[i].len;
	}
	out[len] = '\0';
	return out;
}

/* ---- Router -------------------------------------------------------------- */

/* The prompt of 'field' for config list l (NULL = the defaults). */
static const char *
inbound_prompt_text(const struct config_list *l, const char *field)
{
	const char *s = NULL;

	if (strcmp(field, "first_name") == 0) {
		s = l != NULL ? l->ask_first_name : NULL;
		return s != NULL ? s : "What's your first name?";
	}
	if (strcmp(field, "last_name") == 0) {
		s = l != NULL ? l->ask_last_name : NULL;
		return s != NULL ? s : "What's your last name?";
	}
	if (strcmp(field, "zip") == 0) {
		s = l != NULL ? l->ask_zip : NULL;
		return s != NULL ? s : "What's your ZIP code?";
	}
	s = l != NULL ? l->ask_email : NULL;
	return s != NULL ? s : "What's your email address?";
}

struct inbound *
inbound_new(const struct inbound_deps *deps, char *err, size_t errlen)
{
	const struct config *cfg = deps->cfg;
	const struct config_list *l;
	struct list_def *defs;
	struct list_question *qs;
	struct inbound *ib;
	char **texts;
	size_t i, j, nq = 0, ntexts = 0;
	int rc;

	for (i = 0; i < cfg->nlists; i++)
		nq += cfg->lists[i].nquestions;
	defs = xcalloc(cfg->nlists + 1, sizeof(*defs));
	qs = xcalloc(nq + 1, sizeof(*qs));
	texts = xcalloc(cfg->nlists + 1, sizeof(*texts));
	nq = 0;
	for (i = 0; i < cfg->nlists; i++) {
		l = &cfg->lists[i];
		defs[i].name = l->name;
		defs[i].keywords = (const char *const *)l->keywords;
		defs[i].nkeywords = l->nkeywords;
		defs[i].sender = l->sender;
		texts[ntexts] = inbound_expand(
		    l->welcome != NULL ? l->welcome : cfg->welcome, cfg,
		    l->name, NULL);
		defs[i].welcome_sms = texts[ntexts++];
		defs[i].welcome_email_subject = l->welcome_email_subject;
		defs[i].welcome_email = l->welcome_email;
		defs[i].double_optin = l->double_optin;
		defs[i].time_zone = l->time_zone;
		defs[i].questions = qs + nq;
		defs[i].nquestions = l->nquestions;
		for (j = 0; j < l->nquestions; j++, nq++) {
			qs[nq].field = l->questions[j];
			qs[nq].prompt = inbound_prompt_text(l, l->questions[j]);
		}
	}
	rc = store_list_sync(deps->st, defs, cfg->nlists, msg_now_ms(), err,
	    errlen);
	for (i = 0; i < ntexts; i++)
		free(texts[i]);
	free(texts);
	free(qs);
	free(defs);
	if (rc == -1)
		return NULL;
	ib = xcalloc(1, sizeof(*ib));
	ib->deps = *deps;
	return ib;
}

void
inbound_free(struct inbound *ib)
{
	free(ib);
}

/*
 * What was done with the text, as key=value fields for the caller's log
 * line about it (webhooks.c: msg_received).
 */
static void
inbound_log(struct inbound_ctx *c, const char *action, const char *extra)
{
	snprintf(c->note, c->notelen, "member=%lld action=%s%s%s",
	    (long long)c->member, action, extra != NULL ? " " : "",
	    extra != NULL ? extra : "");
}

/*
 * Queues the reply 'tmpl' (expanded) to the member at conversation
 * priority through the sender the text came in on. exempt: a compliance
 * reply the send-time opt-out check lets through.
 */
/* A reply 'body' (owned by the caller) to 'to' through 'sender' in m. */
static void
inbound_reply_fill(struct inbound *ib, const char *sender, const char *to,
    char *body, bool exempt, struct queue_new *m)
{
	struct dispatch *d = ib->deps.dispatch;
	struct smstext_info info;

	memset(m, 0, sizeof(*m));
	m->channel = CHANNEL_SMS;
	m->to = to;
	m->sender = sender;
	m->from = d != NULL ? dispatch_sender_from(d, sender) : NULL;
	m->body = body;
	m->priority = MSG_PRIO_REPLY;
	m->optout_exempt = exempt;
	if (smstext_analyze(body, &info) == 0) {
		m->encoding = smstext_encoding_to_text(info.encoding);
		m->segments = info.segments;
	}
}

static int
inbound_reply(struct inbound_ctx *c, const char *tmpl, const char *list,
    const char *question, bool exempt)
{
	struct dispatch *d = c->ib->deps.dispatch;
	struct queue_new m;
	struct queue_stored qs;
	char *body;
	int rc;

	body = inbound_expand(tmpl, c->ib->deps.cfg, list, question);
	inbound_reply_fill(c->ib, c->sender, c->from, body, exempt, &m);
	m.member_id = c->member;
	rc = queue_enqueue(c->ib->deps.st, &m, c->now, &qs, c->err, c->errlen);
	free(body);
	if (rc == 0 && d != NULL)
		dispatch_kick(d);
	return rc;
}

static int
inbound_link(struct inbound_ctx *c, bool conversation)
{
	struct inbound_link_req req = {.msg = c->msg_id,
	    .member = c->member,
	    .conversation = conversation,
	    .now = c->now,
	    .sender = c->sender,
	    .window_ms = c->ib->deps.cfg->conv_attribution_window_ms};
	int64_t conv;

	if ((conv = store_inbound_link(c->ib->deps.st, &req, c->err,
		 c->errlen)) == -1)
		return -1;
	c->conversation = conv;
	return 0;
}

/*
 * Announces a conversation message to the staff page: the events are
 * written in the same group as the message, and streamed once it commits.
 */
static void
inbound_publish(struct inbound_ctx *c)
{
	struct events *ev = c->ib->deps.events;

	if (ev == NULL || c->conversation <= 0)
		return;
	events_publish(ev, "message",
	    json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)c->msg_id,
		"conversation_id", (json_int_t)c->conversation, "direction",
		"in", "status", "received"));
	events_publish(ev, "conversation",
	    json_pack("{s:I}", "id", (json_int_t)c->conversation));
}

/* STOP: opted out at once; one confirmation, only on the change. */
static int
inbound_optout(struct inbound_ctx *c)
{
	bool changed = false;

	if (store_member_optout_id(c->ib->deps.st,
		&(struct consent_change){.member = c->member,
		    .ch = CHANNEL_SMS,
		    .source = CONSENT_KEYWORD,
		    .message_id = c->msg_id,
		    .now = c->now},
		&changed, c->err, c->errlen) == -1 ||
	    inbound_link(c, false) == -1)
		return -1;
	inbound_log(c, "optout", changed ? "changed=1" : "changed=0");
	if (!changed)
		return 0; /* one confirmation per opt-out (FCC 24-24) */
	return inbound_reply(c, c->ib->deps.cfg->stop_reply, NULL, NULL, true);
}

/* START, UNSTOP, YES when opted out: back in, one confirmation. */
static int
inbound_optin(struct inbound_ctx *c)
{
	bool changed = false;

	if (store_member_optin(c->ib->deps.st,
		&(struct consent_change){.member = c->member,
		    .ch = CHANNEL_SMS,
		    .source = CONSENT_KEYWORD,
		    .message_id = c->msg_id,
		    .now = c->now},
		&changed, c->err, c->errlen) == -1 ||
	    inbound_link(c, false) == -1)
		return -1;
	inbound_log(c, "optin", changed ? "changed=1" : "changed=0");
	return inbound_reply(c, c->ib->deps.cfg->start_reply, NULL, NULL,
	    false);
}

/* The welcome of list li, then its first question. */
static int
inbound_welcome(struct inbound_ctx *c, const struct list_info *li)
{
	const char *w = li->welcome_sms;

	if (w == NULL || *w == '\0')
		w = c->ib->deps.cfg->welcome;
	if (inbound_reply(c, w, li->name, NULL, false) == -1)
		return -1;
	if (li->nquestions == 0)
		return 0;
	return inbound_ask(c, li, 0, 0, false);
}

/* Asks question 'index' of li (again: the re-ask after a bad answer). */
static int
inbound_ask(struct inbound_ctx *c, const struct list_info *li, unsigned index,
    unsigned attempts, bool again)
{
	struct member_prompt p = {.list_id = li->id,
	    .index = index,
	    .attempts = attempts,
	    .asked_at = c->now};
	const char *q = li->questions[index].prompt;

	if (q == NULL || *q == '\0')
		q = inbound_prompt_text(NULL, li->questions[index].field);
	if (store_prompt_set(c->ib->deps.st, c->member, &p, c->err,
		c->errlen) == -1)
		return -1;
	if (again)
		return inbound_reply(c, c->ib->deps.cfg->reask_reply, li->name,
		    q, false);
	return inbound_reply(c, q, li->name, NULL, false);
}

/* A list keyword. */
static int
inbound_keyword(struct inbound_ctx *c, int64_t list, const char *keyword)
{
	struct store *st = c->ib->deps.st;
	struct consent_change cc = {.member = c->member,
	    .list = list,
	    .ch = CHANNEL_SMS,
	    .source = CONSENT_KEYWORD,
	    .message_id = c->msg_id,
	    .detail = keyword,
	    .now = c->now};
	struct list_info li;
	enum sub_status status = SUB_LEFT;
	enum sub_change change;
	char extra[128];
	bool found = false, changed = false;
	int out, sub = 0, rc = -1;

	memset(&li, 0, sizeof(li));
	if (store_list_get(st, list, &li, &found, c->err, c->errlen) == -1)
		return -1;
	if (!found) {
		snprintf(c->err, c->errlen, "list %lld vanished",
		    (long long)list);
		goto done;
	}
	if ((out = store_member_is_opted_out(st, c->member, CHANNEL_SMS, c->err,
		 c->errlen)) == -1 ||
	    (sub = store_subscription_status(st,
		 &(struct sub_key){.member = c->member,
		     .list = list,
		     .ch = CHANNEL_SMS},
		 &status, c->err, c->errlen)) == -1 ||
	    inbound_link(c, false) == -1)
		goto done;
	snprintf(extra, sizeof(extra), "list=%s keyword=%s", li.name, keyword);
	if (sub == 1 && status == SUB_ACTIVE && out == 0) {
		inbound_log(c, "already", extra);
		rc = inbound_reply(c, c->ib->deps.cfg->already_reply, li.name,
		    NULL, false);
		goto done;
	}
	/* texting a keyword asks for texts: it lifts an earlier STOP */
	if (out == 1 &&
	    store_member_optin(st, &cc, &changed, c->err, c->errlen) == -1)
		goto done;
	if (li.double_optin && !(sub == 1 && status == SUB_ACTIVE)) {
		if (store_subscribe(st, &cc, SUB_PENDING, &change, c->err,
			c->errlen) == -1)
			goto done;
		inbound_log(c, "pending", extra);
		rc = inbound_reply(c, c->ib->deps.cfg->confirm_reply, li.name,
		    NULL, false);
		goto done;
	}
	if (store_subscribe(st, &cc, SUB_ACTIVE, &change, c->err, c->errlen) ==
	    -1)
		goto done;
	inbound_log(c, "join", extra);
	rc = inbound_welcome(c, &li);
done:
	list_info_clear(&li);
	return rc;
}

/* YES with a pending subscription: active, the welcome, the questions. */
static int
inbound_confirm(struct inbound_ctx *c, int64_t list)
{
	struct store *st = c->ib->deps.st;
	struct list_info li;
	enum sub_change change;
	char extra[128];
	bool found = false;
	int rc = -1;

	memset(&li, 0, sizeof(li));
	if (store_list_get(st, list, &li, &found, c->err, c->errlen) == -1)
		return -1;
	if (found &&
	    store_subscribe(st,
		&(struct consent_change){.member = c->member,
		    .list = list,
		    .ch = CHANNEL_SMS,
		    .source = CONSENT_KEYWORD,
		    .message_id = c->msg_id,
		    .detail = "YES",
		    .now = c->now},
		SUB_ACTIVE, &change, c->err, c->errlen) == 0 &&
	    inbound_link(c, false) == 0) {
		snprintf(extra, sizeof(extra), "list=%s", li.name);
		inbound_log(c, "confirm", extra);
		rc = inbound_welcome(c, &li);
	} else if (!found)
		snprintf(c->err, c->errlen, "list %lld vanished",
		    (long long)list);
	list_info_clear(&li);
	return rc;
}

/*
 * The answer to pending question p. *handled false: the prompt was stale
 * or its list is gone (cleared): the text is a conversation message.
 */
static int
inbound_answer(struct inbound_ctx *c, const struct member_prompt *p,
    const char *body, bool *handled)
{
	struct store *st = c->ib->deps.st;
	struct member_fields f;
	struct list_info li;
	char value[320], extra[160];
	const char *field;
	struct member_write mw = {.now = c->now};
	bool found = false;
	int rc = -1, ok;

	*handled = false;
	memset(&li, 0, sizeof(li));
	if (c->now - p->asked_at > INBOUND_PROMPT_TTL)
		return store_prompt_clear(st, c->member, c->err, c->errlen);
	if (store_list_get(st, p->list_id, &li, &found, c->err, c->errlen) ==
	    -1)
		return -1;
	if (!found || p->index >= li.nquestions) {
		rc = store_prompt_clear(st, c->member, c->err, c->errlen);
		goto done;
	}
	*handled = true;
	field = li.questions[p->index].field;
	ok = inbound_parse_answer(field, body, value, sizeof(value));
	if (ok == 0) {
		memset(&f, 0, sizeof(f));
		if (strcmp(field, "first_name") == 0)
			f.set = MF_FIRST_NAME, f.first_name = value;
		else if (strcmp(field, "last_name") == 0)
			f.set = MF_LAST_NAME, f.last_name = value;
		else if (strcmp(field, "zip") == 0)
			f.set = MF_ZIP, f.zip = value;
		else
			f.set = MF_EMAIL, f.email = value;
		if (store_member_update(st, c->member, &f, &mw, c->err,
			c->errlen) == -1) {
			if (!mw.conflict)
				goto done;
			ok = -1; /* another member's email: a bad answer */
			c->err[0] = '\0';
		}
	}
	snprintf(extra, sizeof(extra), "list=%s field=%s%s", li.name, field,
	    ok == 0 ? "" : (p->attempts == 0 ? " reask=1" : " dropped=1"));
	inbound_log(c, ok == 0 ? "answer" : "bad_answer", extra);
	/* a good answer is not for the inbox; a bad one may be a question */
	if (inbound_link(c, ok != 0) == -1)
		goto done;
	inbound_publish(c);
	if (ok != 0 && p->attempts == 0) {
		rc = inbound_ask(c, &li, p->index, 1, true);
		goto done;
	}
	if (p->index + 1 < li.nquestions)
		rc = inbound_ask(c, &li, p->index + 1, 0, false);
	else
		rc = store_prompt_clear(st, c->member, c->err, c->errlen);
done:
	list_info_clear(&li);
	return rc;
}

/*
 * What is left after the compliance words: YES, a keyword, an answer or a
 * conversation message.
 */
static int
inbound_rest(struct inbound_ctx *c, enum inbound_kind kind, const char *word,
    const char *body)
{
	struct store *st = c->ib->deps.st;
	struct member_prompt p;
	char extra[48];
	int64_t list;
	bool found = false, handled = false;
	int pending;

	if (kind == INBOUND_WORD) {
		if (store_list_by_keyword(st, word, &list, &found, c->err,
			c->errlen) == -1)
			return -1;
		if (found)
			return inbound_keyword(c, list, word);
	}
	if (kind == INBOUND_YES) {
		if ((pending = store_subscription_pending(st, c->member,
			 CHANNEL_SMS, &list, c->err, c->errlen)) == -1)
			return -1;
		if (pending == 1)
			return inbound_confirm(c, list);
	}
	if (store_prompt_get(st, c->member, &p, &found, c->err, c->errlen) ==
	    -1)
		return -1;
	if (found && inbound_answer(c, &p, body, &handled) == -1)
		return -1;
	if (handled)
		return 0;
	if (inbound_link(c, true) == -1)
		return -1;
	snprintf(extra, sizeof(extra), "conversation=%lld",
	    (long long)c->conversation);
	inbound_log(c, "conversation", extra);
	inbound_publish(c);
	return 0;
}

int
inbound_route(struct inbound *ib, const struct inbound_msg *in, char *err,
    size_t errlen)
{
	const struct config *cfg = ib->deps.cfg;
	const struct queue_webhook *wh = in->wh;
	const struct in_msg *m = in->m;
	struct inbound_ctx c;
	char word[INBOUND_WORD_MAX + 1], e164[PHONE_E164_MAX], perr[128];
	enum inbound_kind kind;
	struct member_write mw;
	int out;

	memset(&c, 0, sizeof(c));
	c.ib = ib;
	c.msg_id = in->msg_id;
	c.note = in->note;
	c.notelen = in->notelen;
	c.sender = wh->sender;
	c.now = wh->now;
	c.err = err;
	c.errlen = errlen;
	c.from = m->from;
	/* the key members are found by too (members.c), so both agree */
	if (phone_normalize_as(m->from,
		&(struct phone_rules){.region = cfg->default_region,
		    .accept = PHONE_STORED},
		e164, sizeof(e164), perr, sizeof(perr)) == 0)
		c.from = e164;
	if (c.from != e164) {
		/* a short code or a name: nobody to enrol or answer */
		inbound_log(&c, "unroutable", NULL);
		return 0;
	}
	mw = (struct member_write){.now = c.now};
	if (store_member_ensure(ib->deps.st, CHANNEL_SMS, c.from, &mw, err,
		errlen) == -1)
		return -1;
	c.member = mw.id;
	kind = inbound_classify(m->body != NULL ? m->body : "",
	    (const char *const *)cfg->stop_words, cfg->nstop_words, word,
	    sizeof(word));
	switch (kind) {
	case INBOUND_OPTOUT:
		return inbound_optout(&c);
	case INBOUND_OPTIN:
		return inbound_optin(&c);
	case INBOUND_YES:
		out = store_member_is_opted_out(ib->deps.st, c.member,
		    CHANNEL_SMS, err, errlen);
		if (out == -1)
			return -1;
		if (out == 1)
			return inbound_optin(&c);
		break;
	case INBOUND_HELP:
		if (inbound_link(&c, false) == -1)
			return -1;
		inbound_log(&c, "help", NULL);
		return inbound_reply(&c, cfg->help_reply, NULL, NULL, true);
	default:
		break;
	}
	return inbound_rest(&c, kind, word, m->body != NULL ? m->body : "");
}

/* ---- PostgreSQL: the routing done by the store ------------------------ */

/* Adds a reply candidate whose text is body (the plan owns it now). */
static void
inbound_plan_text(struct inbound_plan *p, const char *kind, const char *list,
    char *body)
{
	struct queue_in_reply *x;
	struct smstext_info info;

	p->replies =
	    xreallocarray(p->replies, p->nreplies + 1, sizeof(*p->replies));
	x = &p->replies[p->nreplies++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->list = list;
	x->body = body;
	if (smstext_analyze(body, &info) == 0) {
		x->encoding = smstext_encoding_to_text(info.encoding);
		x->segments = (int)info.segments;
	}
	p->route.replies = p->replies;
	p->route.nreplies = p->nreplies;
}

/* Adds a reply candidate: 'tmpl' expanded for list 'list' (owned). */
static void
inbound_plan_add(struct inbound_plan *p, const struct config *cfg,
    const char *kind, const char *list, const char *tmpl)
{
	inbound_plan_text(p, kind, list, inbound_expand(tmpl, cfg, list, NULL));
}

/*
 * The welcome of stored list l ({"name", "welcome_sms"}) as
 * inbound_welcome() sends it: its text, else the config's, expanded for
 * the list.
 */
static void
inbound_plan_welcome(struct inbound_plan *p, const struct config *cfg,
    const json_t *l)
{
	const char *name = json_string_value(json_object_get(l, "name"));
	const char *w = json_string_value(json_object_get(l, "welcome_sms"));

	if (name == NULL)
		return;
	inbound_plan_add(p, cfg, "welcome", name,
	    w != NULL && *w != '\0' ? w : cfg->welcome);
}

/*
 * YES, a keyword or any other text: the route, its replies added by
 * inbound_plan_lists() once the lists are read (see queue_in_route).
 */
static void
inbound_plan_route(struct inbound *ib, const struct queue_webhook *wh,
    struct inbound_plan *p)
{
	const struct config *cfg = ib->deps.cfg;
	struct dispatch *d = ib->deps.dispatch;

	p->route.action = p->kind == INBOUND_YES ? QUEUE_IN_YES : QUEUE_IN_TEXT;
	p->route.reply_from =
	    d != NULL ? dispatch_sender_from(d, wh->sender) : NULL;
	p->route.window_ms = cfg->conv_attribution_window_ms;
}

/* A read of inbound_plan_lists() in flight. */
struct inbound_lists_read {
	struct inbound *ib;
	struct inbound_plan *p;
	inbound_plan_fn *done;
	void *arg;
};

/* The stored lists are in: the candidates of a YES, or the keyword's. */
static void
inbound_plan_read(void *arg, json_t *o, const char *error)
{
	struct inbound_lists_read *rd = arg;
	struct inbound_plan *p = rd->p;
	const struct config *cfg = rd->ib->deps.cfg;
	const char *name;
	json_t *l;
	size_t i;

	if (o == NULL) {
		rd->done(rd->arg, error != NULL ? error : "lists: no answer");
		free(rd);
		return;
	}
	p->lists = o;
	p->replies = xcalloc(json_array_size(o) + 3, sizeof(*p->replies));
	if (p->route.action == QUEUE_IN_YES) {
		inbound_plan_add(p, cfg, "start", NULL, cfg->start_reply);
		json_array_foreach(o, i, l)
			inbound_plan_welcome(p, cfg, l);
	} else if ((l = json_array_get(o, 0)) != NULL &&
	    (name = json_string_value(json_object_get(l, "name"))) != NULL) {
		p->route.action = QUEUE_IN_KEYWORD;
		p->route.list = name;
		p->route.keyword = p->word;
		inbound_plan_add(p, cfg, "already", name, cfg->already_reply);
		p->replies[p->nreplies - 1].list = NULL;
		inbound_plan_add(p, cfg, "confirm", name, cfg->confirm_reply);
		p->replies[p->nreplies - 1].list = NULL;
		inbound_plan_welcome(p, cfg, l);
	}
	p->route.replies = p->replies;
	p->route.nreplies = p->nreplies;
	rd->done(rd->arg, NULL);
	free(rd);
}

int
inbound_plan_lists(struct inbound *ib, struct inbound_plan *p,
    inbound_plan_fn *done, void *arg, char *err, size_t errlen)
{
	struct inbound_lists_read *rd;

	if (p->route.phone == NULL ||
	    (p->kind != INBOUND_YES && p->kind != INBOUND_WORD))
		return 1;
	rd = xcalloc(1, sizeof(*rd));
	rd->ib = ib;
	rd->p = p;
	rd->done = done;
	rd->arg = arg;
	if (store_route_lists_pg(ib->deps.st,
		p->kind == INBOUND_WORD ? p->word : NULL, inbound_plan_read, rd,
		err, errlen) == -1) {
		free(rd);
		return -1;
	}
	return 0;
}

/* ---- PostgreSQL: follow-up questions ---------------------------------- */

#define INBOUND_QUESTIONS_MAX 64

/*
 * The questions stored as 'text' (JSON) as store_list_get() reads them
 * (entries without a field or a prompt skipped): their number, each
 * field and prompt borrowed from *a (decref'd by the caller).
 */
static size_t
inbound_questions(const char *text, json_t **a, const char **field,
    const char **prompt)
{
	json_t *q;
	size_t i, n = 0;

	*a = text != NULL ? json_loads(text, 0, NULL) : NULL;
	for (i = 0;
	     *a != NULL && i < json_array_size(*a) && n < INBOUND_QUESTIONS_MAX;
	     i++) {
		q = json_array_get(*a, i);
		field[n] = json_string_value(json_object_get(q, "field"));
		prompt[n] = json_string_value(json_object_get(q, "prompt"));
		if (field[n] != NULL && prompt[n] != NULL)
			n++;
	}
	return n;
}

/* What inbound_ask() asks for a question: its prompt, else the default. */
static const char *
inbound_question_text(const char *field, const char *prompt)
{
	return *prompt != '\0' ? prompt : inbound_prompt_text(NULL, field);
}

/*
 * The store read the member's pending question and the list the text
 * may join (queue_in_route.prepare): the candidates inbound_welcome()
 * and inbound_answer() would send (the joined list's first question, the
 * next question, the re-ask) and the answer parsed for the question's
 * field, decided as inbound_answer() decides (a stale question, or one
 * whose list is gone, is cleared and the text is a conversation
 * message). The store checks the email answer against other members.
 */
static void
inbound_plan_prepare(void *arg, const struct queue_in_prompt *pr)
{
	struct inbound_plan *p = arg;
	const struct config *cfg = p->cfg;
	struct queue_in_answer *an = &p->route.answer;
	const char *field[INBOUND_QUESTIONS_MAX],
	    *prompt[INBOUND_QUESTIONS_MAX];
	json_t *a;
	size_t n;
	unsigned i = pr->index;

	if (pr->join != NULL) {
		if (inbound_questions(pr->join_questions, &a, field, prompt) >
		    0) {
			snprintf(p->ask_join, sizeof(p->ask_join), "%s",
			    pr->join);
			inbound_plan_text(p, "first", p->ask_join,
			    inbound_expand(
				inbound_question_text(field[0], prompt[0]), cfg,
				pr->join, NULL));
		}
		json_decref(a);
	}
	memset(an, 0, sizeof(*an));
	if (pr->list_id <= 0)
		return;
	an->list_id = pr->list_id;
	an->index = i;
	an->attempts = pr->attempts;
	an->asked_at = pr->asked_at;
	n = inbound_questions(pr->questions, &a, field, prompt);
	if (pr->now - pr->asked_at > INBOUND_PROMPT_TTL || pr->list == NULL ||
	    i >= n) {
		an->clear = true;
		json_decref(a);
		return;
	}
	snprintf(p->ask_list, sizeof(p->ask_list), "%s", pr->list);
	snprintf(p->ask_field, sizeof(p->ask_field), "%s", field[i]);
	an->field = p->ask_field;
	if (inbound_parse_answer(field[i], pr->body, p->ask_value,
		sizeof(p->ask_value)) == 0)
		an->value = p->ask_value;
	an->good = i + 1 < n ? "next" : "clear";
	an->bad = pr->attempts == 0 ? "reask" : an->good;
	if (i + 1 < n)
		inbound_plan_text(p, "next", NULL,
		    inbound_expand(
			inbound_question_text(field[i + 1], prompt[i + 1]), cfg,
			pr->list, NULL));
	if (pr->attempts == 0)
		inbound_plan_text(p, "reask", NULL,
		    inbound_expand(cfg->reask_reply, cfg, pr->list,
			inbound_question_text(field[i], prompt[i])));
	json_decref(a);
}

void
inbound_plan(struct inbound *ib, const struct queue_webhook *wh,
    const struct in_msg *m, struct inbound_plan *p)
{
	const struct config *cfg = ib->deps.cfg;
	char perr[128];
	const char *tmpl = NULL;
	bool exempt = false;

	memset(p, 0, sizeof(*p));
	p->kind = inbound_classify(m->body != NULL ? m->body : "",
	    (const char *const *)cfg->stop_words, cfg->nstop_words, p->word,
	    sizeof(p->word));
	if (phone_normalize_as(m->from,
		&(struct phone_rules){.region = cfg->default_region,
		    .accept = PHONE_STORED},
		p->phone, sizeof(p->phone), perr, sizeof(perr)) != 0)
		return; /* a short code or a name: nobody to answer */
	p->route.phone = p->phone;
	switch (p->kind) {
	case INBOUND_OPTOUT:
		p->route.action = QUEUE_IN_OPTOUT;
		tmpl = cfg->stop_reply;
		exempt = true;
		break;
	case INBOUND_OPTIN:
		p->route.action = QUEUE_IN_OPTIN;
		tmpl = cfg->start_reply;
		break;
	case INBOUND_HELP:
		p->route.action = QUEUE_IN_HELP;
		tmpl = cfg->help_reply;
		exempt = true;
		break;
	default:
		inbound_plan_route(ib, wh, p);
		p->cfg = cfg;
		p->route.prepare = inbound_plan_prepare;
		p->route.prepare_arg = p;
		return;
	}
	p->body = inbound_expand(tmpl, cfg, NULL, NULL);
	inbound_reply_fill(ib, wh->sender, p->phone, p->body, exempt,
	    &p->reply);
	p->route.reply = &p->reply;
}

/* The note of a text routed by qpg_sql_route, as inbound_route logs. */
static void
inbound_plan_note_route(const struct inbound_plan *p,
    const struct queue_done *d, char *note, size_t notelen)
{
	const char *routed = d->routed != NULL ? d->routed : "none";
	const char *list = d->list != NULL ? d->list : "";
	long long member = (long long)d->member;

	if (strcmp(routed, "optin") == 0)
		snprintf(note, notelen, "member=%lld action=optin changed=1",
		    member);
	else if (strcmp(routed, "join") == 0 ||
	    strcmp(routed, "pending") == 0 || strcmp(routed, "already") == 0)
		snprintf(note, notelen,
		    "member=%lld action=%s list=%s keyword=%s", member, routed,
		    list, p->word);
	else if (strcmp(routed, "confirm") == 0)
		snprintf(note, notelen, "member=%lld action=confirm list=%s",
		    member, list);
	else if (strcmp(routed, "answer") == 0)
		snprintf(note, notelen,
		    "member=%lld action=answer list=%s field=%s", member,
		    p->ask_list, p->ask_field);
	else if (strcmp(routed, "reask") == 0 || strcmp(routed, "dropped") == 0)
		snprintf(note, notelen,
		    "member=%lld action=bad_answer list=%s field=%s %s=1",
		    member, p->ask_list, p->ask_field, routed);
	else if (strcmp(routed, "conversation") == 0)
		snprintf(note, notelen,
		    "member=%lld action=conversation conversation=%lld", member,
		    (long long)d->conversation);
	else
		snprintf(note, notelen, "member=%lld action=not_routed kind=%s",
		    member, inbound_kind_to_text((enum inbound_kind)p->kind));
}

void
inbound_plan_note(const struct inbound_plan *p, const struct queue_done *d,
    char *note, size_t notelen)
{
	static const char *const action[] = {[QUEUE_IN_NONE] = "not_routed",
	    [QUEUE_IN_OPTOUT] = "optout",
	    [QUEUE_IN_OPTIN] = "optin",
	    [QUEUE_IN_YES] = "optin",
	    [QUEUE_IN_HELP] = "help"};
	bool changes = p->route.action == QUEUE_IN_OPTOUT ||
	    p->route.action == QUEUE_IN_OPTIN;

	if (p->route.phone == NULL) {
		snprintf(note, notelen, "member=0 action=unroutable");
		return;
	}
	if (p->route.action == QUEUE_IN_YES ||
	    p->route.action == QUEUE_IN_KEYWORD ||
	    p->route.action == QUEUE_IN_TEXT) {
		inbound_plan_note_route(p, d, note, notelen);
		return;
	}
	snprintf(note, notelen, "member=%lld action=%s%s", (long long)d->member,
	    action[p->route.action],
	    changes ? (d->changed ? " changed=1" : " changed=0") : "");
}

void
inbound_plan_publish(struct inbound *ib, const struct queue_done *d)
{
	struct inbound_ctx c = {.ib = ib,
	    .msg_id = d->id,
	    .conversation = d->conversation};

	inbound_publish(&c);
}

void
inbound_plan_clear(struct inbound_plan *p)
{
	size_t i;

	for (i = 0; i < p->nreplies; i++)
		free((char *)p->replies[i].body);
	free(p->replies);
	free(p->body);
	json_decref(p->lists);
	memset(p, 0, sizeof(*p));
}

/* ---- --check-config ------------------------------------------------------ */

static bool
inbound_has(const char *text, const char *needle)
{
	return strcasestr(text, needle) != NULL;
}

/* A text --check-config checks, and what it must hold. */
struct inbound_text {
	const char *what; /* for the warning: "[sms] help_reply" */
	const char *tmpl;
	const char *list; /* the list it is expanded for; NULL if none */
	const char *need; /* letters: see inbound_check_text() */
};

/*
 * Warns about what t->tmpl (expanded for list t->list, NULL for none)
 * lacks of t->need: p program name, f frequency, r "Msg&data rates may
 * apply", h HELP, s STOP, c contact. t->what names the text.
 */
static void
inbound_check_text(const struct config *cfg, const struct inbound_text *t,
    config_warn_fn *warn, void *arg)
{
	char *text = inbound_expand(t->tmpl, cfg, t->list, NULL), *msg;
	char missing[256] = "";

	if (strchr(t->need, 'p') != NULL && cfg->program != NULL &&
	    !inbound_has(text, cfg->program))
		strlcat(missing, ", the program name", sizeof(missing));
	if (strchr(t->need, 'f') != NULL && !inbound_has(text, "msg freq") &&
	    !inbound_has(text, "frequency") && !inbound_has(text, "/mo") &&
	    !inbound_has(text, "per month"))
		strlcat(missing, ", a frequency (\"Msg freq varies\")",
		    sizeof(missing));
	if (strchr(t->need, 'r') != NULL &&
	    !inbound_has(text, "msg&data rates may apply") &&
	    !inbound_has(text, "msg & data rates may apply") &&
	    !inbound_has(text, "message and data rates may apply"))
		strlcat(missing, ", \"Msg&data rates may apply\"",
		    sizeof(missing));
	if (strchr(t->need, 'h') != NULL && strstr(text, "HELP") == NULL)
		strlcat(missing, ", HELP instructions", sizeof(missing));
	if (strchr(t->need, 's') != NULL && strstr(text, "STOP") == NULL)
		strlcat(missing, ", STOP instructions", sizeof(missing));
	if (strchr(t->need, 'c') != NULL && cfg->contact != NULL &&
	    !inbound_has(text, cfg->contact))
		strlcat(missing, ", the contact", sizeof(missing));
	if (missing[0] != '\0') {
		msg = xasprintf("%s: %s lacks what carriers require: %s",
		    cfg->file, t->what, missing + 2);
		warn(arg, msg);
		free(msg);
	}
	free(text);
}

static void
inbound_warn(const struct config *cfg, config_warn_fn *warn, void *arg,
    const char *text)
{
	char *msg = xasprintf("%s: %s", cfg->file, text);

	warn(arg, msg);
	free(msg);
}

void
inbound_check_config(const struct config *cfg, config_warn_fn *warn, void *arg)
{
	const struct config_list *l;
	char what[128];
	size_t i;

	if (warn == NULL)
		return;
	if (cfg->nlists > 0 && cfg->program == NULL)
		inbound_warn(cfg, warn, arg,
		    "[sms] program is not set: carriers require the program "
		    "name in welcomes and HELP answers");
	if (cfg->nlists > 0 && cfg->contact == NULL)
		inbound_warn(cfg, warn, arg,
		    "[sms] contact is not set: carriers require a "
		    "customer-care contact in HELP answers");
	inbound_check_text(cfg,
	    &(struct inbound_text){.what = "[sms] help_reply",
		.tmpl = cfg->help_reply,
		.need = "pcs"},
	    warn, arg);
	inbound_check_text(cfg,
	    &(struct inbound_text){.what = "[sms] start_reply",
		.tmpl = cfg->start_reply,
		.need = "pfrhs"},
	    warn, arg);
	inbound_check_text(cfg,
	    &(struct inbound_text){.what = "[sms] stop_reply",
		.tmpl = cfg->stop_reply,
		.need = "p"},
	    warn, arg);
	if (cfg->nlists > 0)
		inbound_check_text(cfg,
		    &(struct inbound_text){.what = "[sms] confirm_reply",
			.tmpl = cfg->confirm_reply,
			.need = "pfrs"},
		    warn, arg);
	for (i = 0; i < cfg->nlists; i++) {
		l = &cfg->lists[i];
		snprintf(what, sizeof(what), "the welcome of [list %s]%s",
		    l->name, l->welcome == NULL ? " ([sms] welcome)" : "");
		inbound_check_text(cfg,
		    &(struct inbound_text){.what = what,
			.tmpl = l->welcome != NULL ? l->welcome : cfg->welcome,
			.list = l->name,
			.need = "pfrhs"},
		    warn, arg);
	}
}
