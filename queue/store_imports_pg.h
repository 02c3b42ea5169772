/*
 * store_imports_pg.h - CSV imports of members on the PostgreSQL store
 * (issue 13, doc/postgresql.md): an import's row (its report, the header's
 * mapping, the CSV reader's saved state) read by any node, and a piece's
 * rows written with the import's new state in a transaction of their own
 * (the node's bulk connection, not its group), for daemon/import_pg.c.
 * SQLite keeps an import in memory (daemon/import.c) and writes its rows
 * with store_import_row().
 *
 * Contract:
 *  - PostgreSQL only: on a SQLite store (or a build without libpq) each
 *    call returns -1 with err and calls nothing.
 *  - Reads go outside the group. A piece is one transaction on the
 *    store's bulk connection, an abort one statement there; each is
 *    answered after its COMMIT (ok) or failure (!ok: nothing of it is
 *    stored), and neither waits in nor holds up the node's groups. No
 *    expected case fails it: a piece whose import moved on meanwhile
 *    (another node wrote a piece, the import was aborted) writes nothing
 *    and answers claimed = false.
 *  - Every callback runs exactly once, from the loop; strings and JSON it
 *    is given are valid during the call only. -1 with err when nothing
 *    was sent (then no callback runs). Loop thread only; what is given is
 *    copied or used before the call returns.
 */
#ifndef OD_STORE_IMPORTS_PG_H
#define OD_STORE_IMPORTS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;

/* The counters of an import's report, in the imports table's order. */
enum imp_pg_count {
	IMP_PG_ROWS = 0,
	IMP_PG_BLANK,
	IMP_PG_REJECTED,
	IMP_PG_DUPLICATES,
	IMP_PG_WARNINGS,
	IMP_PG_CREATED,
	IMP_PG_UPDATED,
	IMP_PG_UNCHANGED,
	IMP_PG_OPTED_OUT,
	IMP_PG_CONFLICTS,
	IMP_PG_ISSUES_TOTAL,
	IMP_PG_NCOUNTS,
};

/* One import as stored; NULL texts are SQL NULLs. */
struct imp_pg_row {
	const char *id;
	const char *state; /* open, finished, failed, aborted */
	const char *error;
	int64_t list_id;
	const char *list;
	const char *source;
	const char *region;
	int64_t bytes;
	int64_t line;
	bool bom;
	const char *header;  /* JSON [[field, name], ...]; NULL: not read yet */
	const char *columns; /* JSON, the report's */
	const char *reader;  /* csv_save() */
	int64_t n[IMP_PG_NCOUNTS];
	int64_t counted; /* the last line counted */
	int64_t work_us;
	int64_t created_at;
	int64_t used_at;
};

/*
 * A read: the import 'id' (NULL: all of them, newest first) used at or
 * after 'since'; with 'issues', its first 'issues_max' problem rows too
 * (an array of {line, kind, reason[, first_line]} in file order).
 */
struct imp_pg_read {
	const char *id;
	int64_t since;
	bool issues;
	unsigned issues_max;
};
/* rows[0..n) (n 0: none), issues (borrowed) or NULL; or error. */
typedef void store_imp_read_fn(void *arg, const struct imp_pg_row *rows,
    size_t n, json_t *issues, const char *error);
int store_import_read_pg(struct store *st, const struct imp_pg_read *q,
    store_imp_read_fn *fn, void *arg, char *err, size_t errlen);

/*
 * Before a new import: the list named 'list' (found, its id) and how many
 * imports are open and used at or after 'since'.
 */
typedef void store_imp_open_fn(void *arg, bool found, int64_t list_id,
    int64_t nopen, const char *error);
int store_import_can_open_pg(struct store *st, const char *list, int64_t since,
    store_imp_open_fn *fn, void *arg, char *err, size_t errlen);

/* A validated row of a piece, to be written (store_import_row()'s). */
struct imp_pg_line {
	int64_t line;
	const char *phone; /* E.164, or NULL */
	const char *email; /* lower-cased, or NULL */
	const char *first_name;
	const char *last_name;
	const char *zip;
	const char *attrs;   /* JSON object text to merge, or NULL */
	const char *tags;    /* JSON array text to add, or NULL */
	const char *warning; /* the row's warning, or NULL */
};

/* A rejected row of a piece. */
struct imp_pg_issue {
	int64_t line;
	const char *reason;
};

/*
 * A piece: the import's new state 'to' (to->n: rows, blank and rejected
 * as they stand after the piece; the other counts are summed by the
 * store from what the rows did), written if the import still stands at
 * 'from_bytes' and open (create: inserted, and the imports idle since
 * before 'expire_before' deleted), and the rows of lines[0..nlines) and
 * the rejected rows of rejected[0..nrejected), for the list to->list_id,
 * at 'now'. 'claim' is a token unique to this piece.
 */
struct imp_pg_piece {
	const struct imp_pg_row *to;
	bool create;
	int64_t from_bytes;
	int64_t expire_before;
	const char *claim;
	int64_t now;
	int64_t work_us; /* added to the import's */
	int64_t counted; /* the last line of the piece's rows */
	const struct imp_pg_line *lines;
	size_t nlines;
	const struct imp_pg_issue *rejected;
	size_t nrejected;
};
/* ok: committed; claimed: the piece was the import's next (and written). */
typedef void store_imp_done_fn(void *arg, bool ok, bool claimed,
    const char *error);
int store_import_piece_pg(struct store *st, const struct imp_pg_piece *p,
    store_imp_done_fn *fn, void *arg, char *err, size_t errlen);

/* Aborts import 'id' if open ('claimed': it was), used_at = now. */
int store_import_abort_pg(struct store *st, const char *id, int64_t now,
    store_imp_done_fn *fn, void *arg, char *err, size_t errlen);

#endif
