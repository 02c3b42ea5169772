/*
 * inbound.h - what a received text means (doc/compliance.md): opt-out and
 * opt-in words, HELP, list keywords with their welcome, double opt-in and
 * follow-up questions, and otherwise a conversation message.
 *
 * Contract:
 *  - inbound_route() runs right after the webhook stored the message, in
 *    the same group transaction: the opt-out a STOP records is durable
 *    exactly when the provider's webhook is answered, and from that
 *    commit on no SMS leaves for that number (dispatch checks at send
 *    time).
 *  - Auto-replies are queued at MSG_PRIO_REPLY through the sender the
 *    message came in on, and kick the dispatcher.
 *  - Loop thread only. Errors: 0 / -1 with text in err (a store failure:
 *    the webhook answers 503 and the provider retries).
 */
#ifndef OD_INBOUND_H
#define OD_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "message.h"
#include "queue_pg.h"

struct dispatch;
struct store;
struct inbound;
struct queue_webhook;

struct events;

/* Longest word inbound_classify() hands back (a keyword candidate). */
#define INBOUND_WORD_MAX 32

struct inbound_deps {
	struct store *st;
	struct dispatch *dispatch;
	const struct config *cfg;
	struct events *events; /* conversation messages; may be NULL */
};

/*
 * Creates the router and makes the config's [list NAME] sections the
 * stored lists (store_list_sync()). NULL with the reason in err.
 */
struct inbound *inbound_new(const struct inbound_deps *deps, char *err,
    size_t errlen);
void inbound_free(struct inbound *ib);

/* A stored text to route, and where to say what was done with it. */
struct inbound_msg {
	int64_t msg_id; /* as queue_inbound_store() stored it */
	const struct queue_webhook *wh;
	const struct in_msg *m;
	char *note; /* out: "member=N action=A ..." for the caller's log line */
	size_t notelen;
};

/*
 * Routes in->msg_id, which came in through [sender wh->sender] at
 * wh->now; what was done goes to in->note (key=value fields), which the
 * caller logs with the message (one line per text). 0 / -1.
 */
int inbound_route(struct inbound *ib, const struct inbound_msg *in, char *err,
    size_t errlen);

/*
 * The PostgreSQL store routes in the text's own insert statement
 * (queue_inbound_durable()): inbound_plan() decides what inbound_route()
 * would do without reading the store: the compliance words (STOP and its
 * synonyms, START, UNSTOP, HELP) with the reply's text; YES, a keyword
 * and any other text with the replies the store may choose from (start,
 * already, confirm, welcome), the store deciding by the member's state.
 * The lists are the database's (made by the config of any node or the
 * lists API on any node), so a YES or a word that may be a keyword then
 * needs inbound_plan_lists(), which reads the lists it needs (every
 * list's welcome; the list with that keyword) when the text arrives and
 * completes the plan. Follow-up questions: the store reads the
 * member's pending question and the list the text may join before the
 * text's statement, and route.prepare adds the questions to ask and the
 * parsed answer. inbound_plan_note() then
 * writes the log note from the answer. Free with inbound_plan_clear().
 */
struct inbound_plan {
	struct queue_in_route route;	 /* for queue_inbound_durable() */
	struct queue_new reply;		 /* route.reply points here */
	char *body;			 /* the reply's text, owned */
	char phone[MSG_ADDR_MAX];	 /* the sender's E.164 */
	int kind;			 /* enum inbound_kind (below) */
	char word[INBOUND_WORD_MAX + 1]; /* the keyword */
	struct queue_in_reply *replies;	 /* route.replies, owned */
	size_t nreplies;
	/* follow-up questions (the store's read of the member's pending
	 * question, before the text's statement: route.prepare) */
	const struct config *cfg;
	char ask_join[72];   /* the list a keyword or YES joins */
	char ask_list[72];   /* the pending question's list */
	char ask_field[16];  /* its field */
	char ask_value[320]; /* the answer parsed for it */
	json_t *lists; /* the stored lists read; the route's names point in */
};
void inbound_plan(struct inbound *ib, const struct queue_webhook *wh,
    const struct in_msg *m, struct inbound_plan *p);
/*
 * Completes p with the stored lists it needs: 1 when it needs none (done
 * is not called), 0 when they are being read (done(arg, NULL) runs once
 * p is complete, done(arg, error) when they could not be read), -1 with
 * err when the read could not be sent.
 */
typedef void inbound_plan_fn(void *arg, const char *error);
int inbound_plan_lists(struct inbound *ib, struct inbound_plan *p,
    inbound_plan_fn *done, void *arg, char *err, size_t errlen);
void inbound_plan_note(const struct inbound_plan *p, const struct queue_done *d,
    char *note, size_t notelen);
void inbound_plan_clear(struct inbound_plan *p);
/*
 * A text the store put in a conversation (d->conversation): the
 * "message" and "conversation" events inbound_route() writes on SQLite,
 * here in the next group (the conversation is known once the text's
 * statement answered, after its group's COMMIT went out).
 */
void inbound_plan_publish(struct inbound *ib, const struct queue_done *d);

/*
 * For --check-config: warns (one call of 'warn' each) about texts that
 * lack what carriers require: a welcome without the program name, a
 * frequency disclosure, "Msg&data rates may apply", HELP or STOP
 * instructions; a HELP reply without a contact.
 */
void inbound_check_config(const struct config *cfg, config_warn_fn *warn,
    void *arg);

/* ---- Pure helpers (exposed for the unit tests and config.c) ---------- */

/* What a text means before any member state is looked at. */
enum inbound_kind {
	INBOUND_OPTOUT = 0, /* STOP and friends, or a short revocation */
	INBOUND_OPTIN,	    /* START, UNSTOP */
	INBOUND_YES,	    /* YES: opt-in when opted out, else confirms */
	INBOUND_HELP,	    /* HELP, INFO */
	INBOUND_WORD,	    /* one other word: maybe a list keyword */
	INBOUND_TEXT,	    /* anything else */
};

/*
 * Classifies 'body' (UTF-8) by the rule at the top of inbound.c, with
 * the configured extra opt-out words 'extra' (upper-case; may be NULL
 * when nextra is 0). For INBOUND_WORD, word (>= INBOUND_WORD_MAX + 1
 * bytes) receives the word upper-cased, punctuation stripped; it is ""
 * otherwise. Pure.
 */
enum inbound_kind inbound_classify(const char *body, const char *const *extra,
    size_t nextra, char *word, size_t wordlen);
/* "optout", "optin", ... for logs. */
const char *inbound_kind_to_text(enum inbound_kind k);

/*
 * True if the upper-case 'word' is a compliance word no list keyword may
 * take: the opt-out, opt-in and help words, and cfg's extra stop words
 * (cfg may be NULL).
 */
bool inbound_word_reserved(const char *word, const struct config *cfg);

/*
 * Parses the answer to a follow-up question for member field 'field'
 * ("first_name", "last_name", "zip", "email") into out: names are 1-50
 * letters, spaces, apostrophes, hyphens and periods, trimmed, spaces
 * collapsed, capitalized when written all in one case ("mary ann" ->
 * "Mary Ann", "o'neil" -> "O'Neil"); a ZIP is 5 digits or ZIP+4 ("12345",
 * "12345-6789"; "123456789" becomes "12345-6789"); an email is
 * local@domain.tld, lower-cased. 0 when it parses, -1 otherwise. Pure.
 */
int inbound_parse_answer(const char *field, const char *answer, char *out,
    size_t outlen);

/*
 * Expands a reply template: {program}, {contact}, {list} and {question}
 * (NULL values give neutral fallbacks). Returns a new string.
 */
char *inbound_expand(const char *tmpl, const struct config *cfg,
    const char *list, const char *question);

#endif
