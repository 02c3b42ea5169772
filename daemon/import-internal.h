/*
 * import-internal.h - what import.c (SQLite, sessions in memory) and
 * import_pg.c (PostgreSQL, imports as rows) share: the session a piece is
 * parsed in, the header's mapping, the report, the input checks.
 *
 * Contract:
 *  - Loop thread only. A session parses with imp_on_record() (the csv.h
 *    callback); with s->pg_row set, a validated row that is not rejected
 *    goes to it (duplicates, the member write and the rest are the
 *    store's) instead of the in-memory duplicate check and
 *    store_import_row().
 *  - Answers and their texts are SQLite's: both modules reply through
 *    these functions.
 */
#ifndef OD_IMPORT_INTERNAL_H
#define OD_IMPORT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "csv.h"
#include "email_addr.h"
#include "import.h"
#include "phone.h"
#include "store_members.h"

struct http_req;
struct http_server;
struct imports_pg;

#define IMP_ID_BYTES   16 /* random bytes of a session id (hex) */
#define IMP_REASON_MAX 512

enum imp_col {
	IMP_COL_IGNORE = 0, /* no header name */
	IMP_COL_PHONE,
	IMP_COL_EMAIL,
	IMP_COL_FIRST,
	IMP_COL_LAST,
	IMP_COL_ZIP,
	IMP_COL_TAGS,
	IMP_COL_CUSTOM,
};

enum imp_state {
	IMP_OPEN = 0,
	IMP_FINISHED,
	IMP_FAILED,
	IMP_ABORTED,
};

struct imp_counts {
	json_int_t rows; /* data rows, blank lines excluded */
	json_int_t created;
	json_int_t updated;
	json_int_t unchanged;
	json_int_t opted_out;
	json_int_t duplicates;
	json_int_t conflicts;
	json_int_t rejected;
	json_int_t warnings; /* imported rows with a bad phone or email */
	json_int_t blank;
};

/* Phones and emails seen in this file: key -> first line. */
struct imp_slot {
	uint32_t hash;
	unsigned long line; /* 0: empty slot */
	size_t off;	    /* key in the arena */
};

struct imp_set {
	struct imp_slot *slots;
	size_t cap; /* power of two */
	size_t n;
	char *arena;
	size_t alen;
	size_t acap;
};

/* The cells of one row, trimmed, by meaning. */
struct imp_row {
	const char *phone;
	const char *email;
	struct member_fields f;
	json_t *attrs;
	json_t *tags;
	char e164[PHONE_E164_MAX];
	char email_lc[EMAIL_ADDR_MAX + 1];
};

struct imp_session {
	struct imports *im;
	struct imp_session *next;
	char id[2 * IMP_ID_BYTES + 1];
	enum imp_state state;
	char *error; /* why it failed */
	int64_t list_id;
	char *list;
	char *source;
	char region[8];
	struct csv *csv;
	bool header_done;
	enum imp_col *cols;
	char **names; /* header names as written, trimmed */
	size_t ncols;
	json_t *columns; /* the mapping, for the report */
	struct imp_set seen;
	struct imp_counts n;
	json_t *issues; /* [{line, kind, reason[, first_line]}] */
	json_int_t issues_total;
	json_int_t bytes;
	int64_t created_at;
	int64_t used_at;
	int64_t work_us;   /* time spent parsing and writing rows */
	bool busy;	   /* a piece waits for its commit */
	bool store_failed; /* the last feed stopped on a store error */
	/* PostgreSQL: the reader's line and BOM when csv is NULL */
	unsigned long line;
	bool bom;
	/* PostgreSQL: takes a validated row (warn: its warning or ""). */
	int (*pg_row)(struct imp_session *s, const struct imp_row *r,
	    unsigned long line, const char *warn);
	void *pg_arg;
};

struct imports {
	struct imports_deps deps;
	struct imp_session *sessions;
	struct imports_pg *pg; /* PostgreSQL: import_pg.c's state */
};

extern const char *const imp_col_names[];
extern const char *const imp_state_names[];

/* The csv.h callback of a session (arg: the session). */
int imp_on_record(void *arg, const struct csv_record *rec, char *err,
    size_t errlen);
/* The session's state and counts; 'full' adds the problem rows. */
json_t *imp_report(const struct imp_session *s, bool full);
/* Adds a problem row to the report (the first IMPORT_ISSUES_MAX). */
void imp_issue(struct imp_session *s, unsigned long line, const char *kind,
    const char *reason, unsigned long first_line);
/* Marks the session failed with why (logged). */
void imp_fail(struct imp_session *s, const char *why);
void imp_session_free(struct imp_session *s);
/* Only CSV (or unlabeled) bodies are pieces of a file. */
bool imp_is_csv(const char *ctype);
/* Refuses writes while the daemon stops. True after answering. */
bool imp_stopping(struct imports *im, struct http_req *req);
/*
 * A new import's list name, source and region checked as SQLite does
 * (*region: the one to use, upper-cased into region_out[3]); -1 after
 * answering 422.
 */
int imp_check_new(struct imports *im, struct http_req *req, const char *list,
    const char *source, const char **region);
/* A fresh session's id (random hex) into id[2 * IMP_ID_BYTES + 1]. */
void imp_new_id(char *id);
/* A session of im for list/source/region, open, not linked anywhere. */
struct imp_session *imp_session_alloc(struct imports *im, int64_t list_id,
    const char *list, const char *source, const char *region);
/* The 404 of an import that is not there. */
void imp_reply_not_found(struct http_req *req, const char *id);
/* The 429 when IMPORT_MAX_OPEN imports are open. */
void imp_reply_too_many(struct http_req *req);
/* The 409 of a piece while the previous one is being written. */
void imp_reply_busy(struct http_req *req);
/* The 409 of a piece for an import no longer open. */
void imp_reply_not_open(struct http_req *req, const struct imp_session *s);
/* The 409 of ?offset= other than 'bytes'; true after answering. */
bool imp_reply_bad_offset(struct http_req *req, int64_t bytes);

/* The handlers of the five routes (each takes the struct imports). */
struct imp_handlers {
	void (*post)(struct http_req *, void *);
	void (*list)(struct http_req *, void *);
	void (*get)(struct http_req *, void *); /* GET and DELETE */
	void (*data)(struct http_req *, void *);
	void (*finish)(struct http_req *, void *);
};
void imp_routes(struct imports *im, struct http_server *srv,
    const struct imp_handlers *h);

/* import_pg.c: the routes on a PostgreSQL store. */
void imports_pg_routes(struct imports *im, struct http_server *srv);
/*
 * Frees import_pg.c's state, or defers it and im itself to the end of
 * the last request in flight: true then (im must not be freed).
 */
bool imports_pg_free(struct imports *im);

#endif
