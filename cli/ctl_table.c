/*
 * ctl_table.c - outreachctl's output helpers: column-aligned tables,
 * escaping of the text the daemon sends before it reaches the terminal,
 * JSON values as table text, and uptimes.
 *
 * Nothing here talks to the daemon or decides an exit status; the commands
 * in outreachctl.c and the error reports in ctl_http.c print through these
 * functions. ctl_sanitize() is the one place that decides what a terminal
 * may see: control bytes are escaped, UTF-8 passes unchanged.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "xmalloc.h"

static size_t ctl_width(const char *);

/*
 * Returns a copy of 's' safe to print to a terminal: control bytes become
 * \n, \t, \r or \xHH escapes ('keep_nl' keeps newlines and tabs as they
 * are). Bytes >= 0x80 pass, so UTF-8 text prints unchanged. The caller
 * frees the result.
 */
char *
ctl_sanitize(const char *s, bool keep_nl)
{
	char *out = xmalloc(strlen(s) * 4 + 1), *p = out;
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c >= 0x20 && c != 0x7f)
			*p++ = (char)c;
		else if (keep_nl && (c == '\n' || c == '\t'))
			*p++ = (char)c;
		else if (c == '\n' || c == '\t' || c == '\r') {
			*p++ = '\\';
			*p++ = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
		} else
			p += sprintf(p, "\\x%02x", c);
	}
	*p = '\0';
	return out;
}

/* -j: the reply body exactly as the daemon sent it, newline-terminated. */
void
ctl_print_raw(const struct ctl_reply *r)
{
	if (r->body == NULL)
		return;
	fwrite(r->body, 1, r->len, stdout);
	if (r->len > 0 && r->body[r->len - 1] != '\n')
		putchar('\n');
}

/* Text for a JSON value in a table: "-" for null or absent. Caller frees. */
char *
ctl_json_text(const json_t *v)
{
	char *s;

	if (v == NULL || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	if (json_is_real(v))
		return xasprintf("%g", json_real_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "true" : "false");
	if ((s = json_dumps(v, JSON_COMPACT)) == NULL)
		return xstrdup("?");
	return s;
}

/* ctl_json_text(), made safe for a terminal by ctl_sanitize(). */
char *
ctl_safe_text(const json_t *v)
{
	char *raw = ctl_json_text(v), *safe = ctl_sanitize(raw, false);

	free(raw);
	return safe;
}

/* An empty table of 'ncols' columns; 'align' is borrowed for its life. */
void
ctl_table_init(struct ctl_table *t, size_t ncols, const char *align)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->align = align;
}

/* Appends a row of t->ncols cells (NULL cells print as "-"); copies them. */
void
ctl_table_add(struct ctl_table *t, const char *const *row)
{
	size_t i;

	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols,
	    sizeof(*t->cells));
	for (i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] =
		    ctl_sanitize(row[i] ? row[i] : "-", false);
	t->nrows++;
}

/* Display width of UTF-8 text: code points, not bytes. */
static size_t
ctl_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * Prints the table with two spaces between columns, each line prefixed by
 * 'indent'. The last column is never padded, so lines carry no trailing
 * blanks.
 */
void
ctl_table_print(const struct ctl_table *t, const char *indent)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));
	size_t r, c, cw;
	const char *cell;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((cw = ctl_width(t->cells[r * t->ncols + c])) > w[c])
				w[c] = cw;
	for (r = 0; r < t->nrows; r++) {
		fputs(indent, stdout);
		for (c = 0; c < t->ncols; c++) {
			cell = t->cells[r * t->ncols + c];
			cw = ctl_width(cell);
			if (t->align[c] == 'r')
				printf("%*s", (int)(w[c] - cw), "");
			fputs(cell, stdout);
			if (c + 1 == t->ncols)
				break;
			printf("%*s",
			    (int)(t->align[c] == 'r' ? 2 : w[c] - cw + 2), "");
		}
		putchar('\n');
	}
	free(w);
}

/* Frees the cells; ncols and align stay, so the table can be refilled. */
void
ctl_table_free(struct ctl_table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

/* Prints 'text' sanitized, each line prefixed by two spaces. */
void
ctl_print_indented(const char *text)
{
	char *safe = ctl_sanitize(text, true), *line, *next;

	for (line = safe; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		printf("  %s\n", line);
	}
	free(safe);
}

/* "3d 04h 05m", "2h 03m 04s", "45s". */
void
ctl_uptime_text(json_int_t s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%lldd %02lldh %02lldm",
		    (long long)s / 86400, (long long)s % 86400 / 3600,
		    (long long)s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh %02lldm %02llds", (long long)s / 3600,
		    (long long)s % 3600 / 60, (long long)s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm %02llds", (long long)s / 60,
		    (long long)s % 60);
	else
		snprintf(buf, len, "%llds", (long long)s);
}
