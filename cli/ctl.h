/*
 * ctl.h - what the parts of outreachctl share: the run-wide state, the
 * HTTP transport (ctl_http.c) and the output helpers (ctl_table.c). The
 * commands, option parsing and main() are in outreachctl.c.
 *
 * Contract:
 *  - Functions that can fail return an exit status, CTL_EX_*, and have
 *    already printed why to stderr; callers pass the status on and print
 *    nothing more.
 *  - Everything printed that came from the daemon goes through
 *    ctl_sanitize() (the table and text helpers here do it), so a message
 *    body cannot send escape sequences to the terminal.
 *  - The API token is only ever put in the Authorization header. It is
 *    never printed, not even in errors, which name where it came from.
 *  - A returned char * is new and the caller frees it; json_t arguments are
 *    borrowed. Running out of memory is fatal (xmalloc.h).
 *  - Single-threaded: one struct ctl per run, owned by main().
 */
#ifndef OD_CTL_H
#define OD_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#define CTL_EX_OK	   0
#define CTL_EX_FAIL	   1	/* the daemon said no, or the message failed */
#define CTL_EX_USAGE	   2	/* bad command line, unreadable input file */
#define CTL_EX_UNREACHABLE 3	/* no HTTP answer at all */
#define CTL_CONTINUE	   (-1) /* option parsing: go on with the command */

#define CTL_DEFAULT_TOKEN_FILE "var/api.token" /* [http] api_token_file */

/* Run-wide state: options, the token (loaded on first API call), curl. */
struct ctl {
	char *url;		    /* base URL without a trailing '/' */
	const char *opt_token;	    /* -t, else $OUTREACHD_TOKEN */
	const char *opt_token_file; /* --token-file */
	const char *opt_config;	    /* -c: the daemon's config file */
	char *token;		    /* NULL until loaded or if none */
	char *token_source;	    /* where the token came from, for 401s */
	bool token_loaded;
	/* from the daemon's config file (ctl_conf_load()) */
	bool conf_loaded;
	char *conf_file;       /* the file read; NULL = none */
	char *conf_url;	       /* VAR/outreachd.url, else [http] listen */
	char *conf_token;      /* [http] api_token */
	char *conf_token_file; /* else [http] api_token_file */
	char *conf_unset_env;  /* a ${NAME} it uses that is not set */
	/* from the user's own file (ctl_userconf_load()), unless -c */
	char *user_file;       /* the file read; NULL = none */
	char *user_url;	       /* url */
	char *user_token;      /* token */
	char *user_token_file; /* token_file, as a path to open */
	bool token_user;       /* ctl->token came from the user's file */
	bool json;
	bool quiet;
	CURL *curl;
};

struct ctl_reply {
	long status; /* HTTP status */
	char *body;  /* NUL-terminated; NULL if empty */
	size_t len;
	bool too_big;
	json_t *json; /* parsed body, NULL if not JSON */
};

/* A text table: cells are sanitized copies, printed column-aligned. */
struct ctl_table {
	size_t ncols;
	size_t nrows;
	char **cells;	   /* nrows * ncols */
	const char *align; /* per column: 'l' or 'r' */
};

typedef int ctl_cmd_fn(struct ctl *ctl, int argc, char **argv);

/* One command of outreachctl, found by name in ctl_cmds[]. */
struct ctl_cmd {
	const char *name;
	ctl_cmd_fn *fn;
	const char *args;    /* short form for the command list */
	const char *usage;   /* synopsis after "outreachctl " */
	const char *summary; /* one line for the command list */
	const char *help;    /* the rest of "COMMAND --help" */
};

/* outreachctl.c */

/* The command called 'name', or NULL. */
const struct ctl_cmd *ctl_cmd_lookup(const char *name);
/*
 * Prints "outreachctl: [CMD: ]MESSAGE" and a hint to stderr, and returns
 * CTL_EX_USAGE. 'cmd' may be NULL for global errors.
 */
int ctl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Handles the options every command takes (-j, -q, -h) and getopt's
 * errors, for option character 'ch'. Returns CTL_CONTINUE, or the exit
 * status (0 after --help). Commands with options of their own call it
 * from their getopt_long() loop's default case.
 */
int ctl_common_opt(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv, int ch);
/*
 * Option parsing for commands that take only the common options. Leaves
 * optind at the first operand. Returns CTL_CONTINUE or an exit status.
 */
int ctl_cmd_opts(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv);

/* ctl_members.c: members, lists, export. */
int ctl_cmd_members(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_lists(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_export(struct ctl *ctl, int argc, char **argv);
extern const char ctl_help_members[];
extern const char ctl_help_lists[];
extern const char ctl_help_export[];

/* ctl_alerts.c */
int ctl_cmd_alert(struct ctl *ctl, int argc, char **argv);
extern const char ctl_help_alert[];

/* ctl_staff.c: staff accounts, API tokens and web sessions */
int ctl_cmd_staff(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_token(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_session(struct ctl *ctl, int argc, char **argv);
extern const char ctl_help_staff[];
extern const char ctl_help_token[];
extern const char ctl_help_session[];

/* ctl_inbox.c: the staff inbox (conversations) */
int ctl_cmd_inbox(struct ctl *ctl, int argc, char **argv);
/* thread, close, reopen (argv[0] says which) */
int ctl_cmd_conv(struct ctl *ctl, int argc, char **argv);
/* reply, assign, note (argv[0] says which) */
int ctl_cmd_conv_write(struct ctl *ctl, int argc, char **argv);
extern const char ctl_help_inbox[];
extern const char ctl_help_thread[];
extern const char ctl_help_reply[];
extern const char ctl_help_assign[];
extern const char ctl_help_close[];
extern const char ctl_help_reopen[];
extern const char ctl_help_note[];

/* ctl_import.c */
int ctl_cmd_import(struct ctl *ctl, int argc, char **argv);
extern const char ctl_help_import[];

/* ctl_conf.c */

/*
 * Reads the daemon's config file once (-c, else the file outreachd uses
 * by default, if readable) into ctl->conf_*. Returns CTL_EX_OK, also
 * when there is no file, or CTL_EX_USAGE after saying why it cannot be
 * read.
 */
int ctl_conf_load(struct ctl *ctl);
/*
 * Reads the user's own file once into ctl->user_*: $OUTREACHCTL_CONFIG,
 * else $XDG_CONFIG_HOME/outreachctl/config, else
 * ~/.config/outreachctl/config. Keys url, token and token_file before
 * any section. Returns CTL_EX_OK, also when the file does not exist, or
 * CTL_EX_USAGE after saying why: unreadable, malformed or unknown key
 * (FILE:LINE), or a token in a file other users can read.
 */
int ctl_userconf_load(struct ctl *ctl);
/* Frees ctl->conf_* and ctl->user_*, wiping the tokens. */
void ctl_conf_free(struct ctl *ctl);

/* ctl_http.c */

/*
 * Makes one request: 'method' to ctl->url + 'path', 'body' as JSON if not
 * NULL, the token if under /api/. Fills *reply; free it with ctl_reply_free()
 * even on failure. Returns CTL_EX_OK once the daemon answered, any status.
 */
int ctl_http(struct ctl *ctl, const char *method, const char *path,
    const json_t *body, struct ctl_reply *reply);
/* A raw request body: 'len' bytes of 'data' of Content-Type 'type'. */
struct ctl_body {
	const char *type;
	const char *data;
	size_t len;
};
/*
 * ctl_http() with a raw body (none when body is NULL), and a whole-request
 * timeout of 'timeout_s' seconds (0 = the default 30 s). Same reply and
 * result.
 */
int ctl_http_raw(struct ctl *ctl, const char *method, const char *path,
    const struct ctl_body *body, long timeout_s, struct ctl_reply *reply);
/* Frees what *r holds and zeroes it; the struct itself is the caller's. */
void ctl_reply_free(struct ctl_reply *r);
/*
 * Reports a reply that is not a success on stderr (and its body on stdout
 * with -j), with a hint for 401. Returns CTL_EX_FAIL.
 */
int ctl_api_error(struct ctl *ctl, const struct ctl_reply *r);
/*
 * Reads all of 'path' ("-" = stdin) into a new NUL-terminated *out (caller
 * frees) of *len bytes. 'what' names the option in errors. Returns
 * CTL_EX_OK or CTL_EX_USAGE.
 */
int ctl_read_file(const char *what, const char *path, char **out, size_t *len);
/* Releases the curl handle and wipes and frees the token; ctl->url stays. */
void ctl_http_shutdown(struct ctl *ctl);

/* ctl_table.c */

/*
 * Returns a new copy of 's' safe for a terminal: control bytes become
 * escapes; with 'keep_nl', newlines and tabs stay as they are.
 */
char *ctl_sanitize(const char *s, bool keep_nl);
/* A URL-escaped copy of s (a path segment or query value); exits when
 * out of memory. */
char *ctl_esc(const char *s);
/* -j: prints the reply body exactly as the daemon sent it, plus a newline. */
void ctl_print_raw(const struct ctl_reply *r);
/* Returns new text for a JSON value in a table: "-" for null or absent. */
char *ctl_json_text(const json_t *v);
/* ctl_json_text(), sanitized for the terminal. */
char *ctl_safe_text(const json_t *v);
/* Prints 'text' sanitized (newlines kept), each line indented two spaces. */
void ctl_print_indented(const char *text);
/* Formats an uptime of 's' seconds into buf: "3d 04h 05m", "45s". */
void ctl_uptime_text(json_int_t s, char *buf, size_t len);
/* Starts an empty table of 'ncols' columns; 'align' is borrowed. */
void ctl_table_init(struct ctl_table *t, size_t ncols, const char *align);
/* Appends a row of t->ncols cells, copied and sanitized; NULL prints "-". */
void ctl_table_add(struct ctl_table *t, const char *const *row);
/* Prints the table to stdout, each line prefixed by 'indent'. */
void ctl_table_print(const struct ctl_table *t, const char *indent);
/* Frees the cells; the table can be filled again. */
void ctl_table_free(struct ctl_table *t);

#endif
