/*
 * pg_row.c - libpq result and parameter conversions shared by the
 * PostgreSQL halves of the store (pg_row.h).
 */
#include "autoconf.h"

#ifdef HAVE_LIBPQ

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "pg_row.h"
#include "xmalloc.h"

const char *
pgr_i64(char buf[24], int64_t v, bool zero_is_null)
{
	if (v == 0 && zero_is_null)
		return NULL;
	snprintf(buf, 24, "%" PRId64, v);
	return buf;
}

int64_t
pgr_get_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool
pgr_get_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) &&
	    PQgetvalue(res, row, col)[0] == 't';
}

const char *
pgr_get_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

json_t *
pgr_json_text(const PGresult *res, int row, int col)
{
	json_t *v;

	if (PQgetisnull(res, row, col) ||
	    (v = json_string(PQgetvalue(res, row, col))) == NULL)
		return json_null();
	return v;
}

json_t *
pgr_json_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_integer(pgr_get_i64(res, row, col));
}

json_t *
pgr_json_time(const PGresult *res, int row, int col)
{
	char buf[40];

	if (PQgetisnull(res, row, col))
		return json_null();
	return json_string(
	    msg_time_to_text(pgr_get_i64(res, row, col), buf, sizeof(buf)));
}

/*
 * A PostgreSQL array literal of texts (each quoted, quotes and
 * backslashes escaped) or, with ints, of the decimal numbers; a new
 * string.
 */
char *
pgr_array(const char *const *texts, const int64_t *ints, size_t n)
{
	size_t i, len = 3, j = 0;
	const char *p;
	char *out;

	for (i = 0; i < n; i++)
		len += texts != NULL ? 2 * strlen(texts[i]) + 3 : 24;
	out = xmalloc(len);
	out[j++] = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			out[j++] = ',';
		if (ints != NULL) {
			j += (size_t)snprintf(out + j, len - j, "%" PRId64,
			    ints[i]);
			continue;
		}
		out[j++] = '"';
		for (p = texts[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				out[j++] = '\\';
			out[j++] = *p;
		}
		out[j++] = '"';
	}
	out[j++] = '}';
	out[j] = '\0';
	return out;
}

#endif /* HAVE_LIBPQ */
