/*
 * pg_row.h - reading libpq results and writing parameters, the few
 * conversions every PostgreSQL half of the store shares (the store's
 * _pg.c files, pg_queue.c, queue_pg.c): text parameters from integers,
 * integers, booleans and text from result columns, and columns as the API's
 * JSON values.
 *
 * Contract: a NULL column reads as 0, false, NULL or JSON null; a value
 * jansson refuses (text that is not UTF-8) is JSON null too. Strings
 * returned point into the result (valid while it is). Built only with
 * libpq.
 */
#ifndef OD_PG_ROW_H
#define OD_PG_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/* v as decimal text in buf, or NULL (SQL NULL) when v is 0 and
 * zero_is_null. */
const char *pgr_i64(char buf[24], int64_t v, bool zero_is_null);

int64_t pgr_get_i64(const PGresult *res, int row, int col);
bool pgr_get_bool(const PGresult *res, int row, int col);
const char *pgr_get_text(const PGresult *res, int row, int col);

json_t *pgr_json_text(const PGresult *res, int row, int col);
json_t *pgr_json_int(const PGresult *res, int row, int col);
/* A millisecond time column as the API's ISO text (msg_time_to_text()). */
json_t *pgr_json_time(const PGresult *res, int row, int col);

/*
 * A PostgreSQL array literal of texts[0..n) (each quoted, quotes and
 * backslashes escaped) or, with texts NULL, of the numbers ints[0..n);
 * a new string.
 */
char *pgr_array(const char *const *texts, const int64_t *ints, size_t n);

#endif
