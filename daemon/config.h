/*
 * config.h - the INI configuration: parsed with inih, validated into typed
 * fields, with FILE:LINE errors.
 *
 * Contract:
 *  - config_load() reads the whole file; any unknown section or key, bad
 *    value or missing required key fails with "FILE:LINE: what is wrong" in
 *    err (the caller exits 78, EX_CONFIG).
 *  - Values may be written as ${ENV_VAR}; the variable must be set.
 *  - Sections whose keys belong to an adapter ([sender NAME], [email]) keep
 *    their raw keys; the adapter validates them in its init() through the
 *    config_section_*() getters of config_section.h.
 *  - The struct config owns every string and section it points to;
 *    config_free() releases all of it.
 */
#ifndef OD_CONFIG_H
#define OD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_section.h"
#include "log.h"

struct config_sender {
	char *name;	/* [sender NAME] */
	char *provider; /* adapter name: "console", "twilio", ... */
	char *from;	/* from number / sender id; may be NULL */
	double rate;	/* messages per second; 0 = unlimited */
	unsigned burst; /* token bucket depth; >= 1 */
	const struct config_section *section; /* raw keys for the adapter */
};

/* List keyword texts: upper-case letters and digits, this long at most. */
#define CONFIG_KEYWORD_MAX 32

/* [list NAME]: a list members join by texting one of its keywords. */
struct config_list {
	char *name;	 /* [list NAME] */
	char **keywords; /* upper-case, unique across lists */
	size_t nkeywords;
	char *sender;	   /* a [sender]; NULL = the default sender */
	char *welcome;	   /* SMS welcome template; NULL = [sms] welcome */
	bool double_optin; /* reply YES before the subscription is active */
	char **questions;  /* member fields: first_name, last_name, zip,
			    * email, in the order asked */
	size_t nquestions;
	char *ask_first_name; /* the prompts; NULL = the defaults */
	char *ask_last_name;
	char *ask_zip;
	char *ask_email;
	char *welcome_email_subject; /* for the email welcome; NULL = none */
	char *welcome_email;
	/* the quiet hours zone of members with none of their own or of
	 * their number (an IANA name); NULL = none */
	char *time_zone;
	char *keywords_raw;  /* as written (keywords = ...) */
	char *questions_raw; /* as written (questions = ...) */
	const struct config_section *section;
};

struct config {
	char *file; /* path as given */

	/* [daemon] */
	char *var_dir;		  /* default "var" */
	char *log_target;	  /* "stderr" (default), "syslog" or a path */
	enum log_level log_level; /* default info */
	unsigned shutdown_timeout_ms; /* default 10000 */

	/* [http] */
	char *listen_addr;    /* default "127.0.0.1" */
	unsigned listen_port; /* default 8080; 0 = any free port */
	size_t max_body;      /* bytes, default 1 MiB */
	char *api_token;      /* NULL = use api_token_file */
	char *api_token_file; /* default "<var_dir>/api.token" */
	char *public_url;     /* base URL providers see; NULL = none */
	char *ui_dir;	      /* serve /ui/ from here; NULL = embedded */
	/* 0 = the default, 4096; main.c fits it to RLIMIT_NOFILE */
	unsigned max_connections;
	/* for the head and body of one request; default 30000 */
	unsigned request_timeout_ms;
	/* web sessions (daemon/staff.c): idle end, default 12 h; absolute
	 * end, default 7 days */
	unsigned session_idle_ms;
	unsigned session_lifetime_ms;

	/* [http_client]: outbound HTTP to SMS providers */
	unsigned client_connect_timeout_ms; /* default 5000 */
	unsigned client_timeout_ms;	    /* whole request, default 15000 */
	unsigned client_max_per_host;	    /* connections, default 16 */
	unsigned client_max_total;	    /* connections, default 256 */
	char *client_ca_file;		    /* extra CA bundle; NULL = none */

	/* [store] */
	char *store_backend; /* "sqlite" (default) or "postgresql" */
	char *db_path;	     /* SQLite: default "<var_dir>/outreachd.db" */
	char *store_url;     /* PostgreSQL: a libpq URI or key=value text */
	char *store_node;    /* PostgreSQL: this node's name; default the
			      * host name */
	unsigned commit_delay_ms; /* 0 (default) = commit once per loop turn */

	/* [dispatch] */
	unsigned batch;		/* messages claimed at a time, default 256 */
	unsigned max_in_flight; /* per adapter, default 512 */
	unsigned lease_ms;	/* default 60000 */
	unsigned tick_ms;	/* idle poll interval, default 200 */
	unsigned retry_base_ms; /* first backoff, default 1000 */
	unsigned retry_max_ms;	/* backoff cap, default 3600000 */
	unsigned validity_s;	/* default expiry of a message, default 86400 */

	/* [email] */
	char *email_adapter;		/* "file" (default) or "smtp" */
	unsigned email_bounce_limit;	/* default 3 */
	char *email_unsubscribe_mailto; /* List-Unsubscribe mailto; NULL */
	char *email_secret_file; /* HMAC key of unsubscribe and confirmation
				  * links; default "<var_dir>/email.key" */
	char *dkim_domain;	 /* DKIM d=; NULL = no signing */
	char *dkim_selector;	 /* DKIM s= */
	char *dkim_key_file;	 /* PEM private key */
	const struct config_section *email_section; /* NULL if absent */
	const struct config_section *smtp_section;  /* [smtp]; NULL if absent */

	/* [sender NAME] ..., in file order */
	struct config_sender *senders;
	size_t nsenders;
	char *default_sender; /* [sms] default_sender, else the first */

	/* [sms]: numbers, program identity and the compliance texts. The
	 * texts are templates: {program}, {contact}, {list} and {question}
	 * are filled in when they are sent (inbound.c). */
	char *default_region; /* ISO 3166 country of national numbers, "US" */
	char *program;	      /* program / brand name; NULL = none set */
	char *contact;	      /* customer care: phone, email or URL */
	char **stop_words;    /* extra opt-out words, upper-case */
	size_t nstop_words;
	char *stop_words_raw; /* as written */
	char *stop_reply;     /* opt-out confirmation */
	char *start_reply;    /* opt-in (START) confirmation */
	char *help_reply;     /* HELP / INFO answer */
	char *already_reply;  /* keyword of a list the member is in */
	char *confirm_reply;  /* double opt-in: "reply YES" */
	char *welcome;	      /* default welcome of a list */
	char *reask_reply;    /* a follow-up answer that did not parse */
	/* accept_unassigned_numbers: members' numbers may be possible only */
	bool accept_unassigned;

	/* [alerts]: quiet hours (quiet.h). Alerts go out only between
	 * quiet_start and quiet_end, local time of the member. */
	char *quiet_start_raw;	  /* as written; NULL = 08:00 */
	char *quiet_end_raw;	  /* as written; NULL = 20:00 */
	unsigned quiet_start_min; /* minutes after midnight, default 480 */
	unsigned quiet_end_min;	  /* default 1200; > quiet_start_min */
	char *alerts_time_zone;	  /* default "America/New_York" */
	/* [alerts]: fan-out and guard rails (alerts.c) */
	unsigned alerts_backlog;      /* due messages per alert, default 2000 */
	unsigned alerts_validity_s;   /* default 86400 */
	double alerts_max_optout_pct; /* pause above it, default 3 (%) */
	double alerts_max_failure_pct; /* pause above it, default 10 (%) */
	unsigned alerts_guard_min;     /* messages out before a rate counts,
					* default 200 */

	/* [conversations]: the staff inbox (doc/conversations.md) */
	unsigned conv_attribution_window_ms; /* a reply answers the last
					      * alert message this recent,
					      * default 72h */
	char *conv_notify_email;	     /* digests of unassigned
					      * conversations; NULL = none */
	unsigned conv_digest_interval_ms;    /* at most one digest per
					      * recipient per interval,
					      * default 5m */
	unsigned conv_stale_after_ms;	     /* unanswered this long: stale,
					      * default 24h */

	/* [list NAME] ..., in file order */
	struct config_list *lists;
	size_t nlists;

	/* every section as written, in file order */
	struct config_section *sections;
	size_t nsections;
};

/*
 * Loads and validates 'path'. Returns a new config (free with
 * config_free()), or NULL with "FILE:LINE: message" in err.
 * 'warn' (may be NULL) receives non-fatal findings, one call each, e.g. a
 * file holding literal secrets that others can read.
 */
typedef void config_warn_fn(void *arg, const char *text);
struct config *config_load(const char *path, config_warn_fn *warn, void *arg,
    char *err, size_t errlen);
/* Frees cfg; NULL is a no-op. */
void config_free(struct config *cfg);

/* The list called 'name', or NULL if none. */
const struct config_list *config_list_lookup(const struct config *cfg,
    const char *name);
/* The list whose keywords hold 'keyword' (upper-case), or NULL. */
const struct config_list *config_list_by_keyword(const struct config *cfg,
    const char *keyword);

/* The sender called 'name', or NULL if none. */
const struct config_sender *config_sender_lookup(const struct config *cfg,
    const char *name);

#endif
