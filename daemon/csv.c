/*
 * csv.c - an incremental CSV reader (see csv.h for the contract).
 *
 * A byte-at-a-time state machine: the state, the partial record and the
 * line counter survive between csv_feed() calls, so the input can be cut
 * anywhere. The record's fields are kept NUL-separated in one buffer that
 * grows up to max_record; past that the record is only scanned (so that
 * its quotes still pair up) and delivered with an error. UTF-8 is checked
 * per field once the record is complete, which makes a multibyte sequence
 * cut between two pieces a non-event.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "xmalloc.h"

enum csv_state {
	CSV_REC_START = 0, /* between records (blank lines are skipped) */
	CSV_FIELD_START,   /* after a comma, or at a record's first byte */
	CSV_UNQUOTED,
	CSV_QUOTED,
	CSV_QUOTE_IN_QUOTED, /* a '"' inside quotes: "" or the close */
};

struct csv {
	size_t max_record;
	size_t max_fields;
	csv_record_fn *fn;
	void *arg;

	enum csv_state state;
	unsigned char bom[3]; /* the input's first bytes, until decided */
	size_t nbom;
	bool bom_done;
	bool had_bom;
	bool prev_cr; /* the last byte was CR: a LF now ends the same line */
	bool failed;
	unsigned long line;	  /* the line being read */
	unsigned long rec_line;	  /* where the record started */
	unsigned long quote_line; /* where the open quote started */
	size_t quoted_bytes;	  /* bytes inside the open quote */

	char *buf; /* the record: fields, each NUL-terminated */
	size_t len;
	size_t cap;
	size_t *starts; /* offset of each field in buf */
	size_t *lens;
	char **ptrs;
	size_t nfields;
	size_t fcap;
	const char *rec_error; /* NULL or points into errbuf */
	char errbuf[160];
};

static const unsigned char csv_bom[3] = {0xef, 0xbb, 0xbf};

static int csv_byte(struct csv *, unsigned char, char *, size_t);

struct csv *
csv_new(size_t max_record, size_t max_fields, csv_record_fn *fn, void *arg)
{
	struct csv *c = xcalloc(1, sizeof(*c));

	c->max_record = max_record != 0 ? max_record : CSV_MAX_RECORD;
	c->max_fields = max_fields != 0 ? max_fields : CSV_MAX_FIELDS;
	c->fn = fn;
	c->arg = arg;
	c->line = 1;
	c->cap = 1024;
	c->buf = xmalloc(c->cap);
	c->fcap = 16;
	c->starts = xreallocarray(NULL, c->fcap, sizeof(*c->starts));
	c->lens = xreallocarray(NULL, c->fcap, sizeof(*c->lens));
	c->ptrs = xreallocarray(NULL, c->fcap, sizeof(*c->ptrs));
	return c;
}

void
csv_free(struct csv *c)
{
	if (c == NULL)
		return;
	free(c->buf);
	free(c->starts);
	free(c->lens);
	free(c->ptrs);
	free(c);
}

unsigned long
csv_line(const struct csv *c)
{
	return c->line;
}

bool
csv_had_bom(const struct csv *c)
{
	return c->had_bom;
}

/* The record is unusable: keep scanning it, store nothing more. */
static void
csv_record_bad(struct csv *c, const char *what, size_t n)
{
	if (c->rec_error != NULL)
		return;
	snprintf(c->errbuf, sizeof(c->errbuf), "the record %s %zu %s", what, n,
	    strcmp(what, "has more than") == 0
		? "fields"
		: "bytes; is a line break missing?");
	c->rec_error = c->errbuf;
}

/* Appends one byte to the current field (or drops it: record too long). */
static void
csv_put(struct csv *c, unsigned char ch)
{
	if (c->rec_error != NULL)
		return;
	if (c->len + 1 >= c->max_record) {
		csv_record_bad(c, "is longer than", c->max_record);
		return;
	}
	if (c->len + 1 >= c->cap) {
		c->buf = xreallocarray(c->buf, 2, c->cap);
		c->cap *= 2;
	}
	c->buf[c->len++] = (char)ch;
}

static void
csv_field_begin(struct csv *c)
{
	if (c->rec_error != NULL)
		return;
	if (c->nfields == c->max_fields) {
		csv_record_bad(c, "has more than", c->max_fields);
		return;
	}
	if (c->nfields == c->fcap) {
		c->fcap *= 2;
		c->starts =
		    xreallocarray(c->starts, c->fcap, sizeof(*c->starts));
		c->lens = xreallocarray(c->lens, c->fcap, sizeof(*c->lens));
		c->ptrs = xreallocarray(c->ptrs, c->fcap, sizeof(*c->ptrs));
	}
	c->starts[c->nfields++] = c->len;
}

static void
csv_field_end(struct csv *c)
{
	size_t i = c->nfields - 1;

	if (c->rec_error != NULL)
		return;
	c->lens[i] = c->len - c->starts[i];
	if (c->len + 1 >= c->cap) {
		c->buf = xreallocarray(c->buf, 2, c->cap);
		c->cap *= 2;
	}
	c->buf[c->len++] = '\0';
}

int
csv_utf8_check(const char *s, size_t len, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	unsigned long cp, min;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 1, cp = p[i] & 0x1f, min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 2, cp = p[i] & 0x0f, min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 3, cp = p[i] & 0x07, min = 0x10000;
		} else
			goto bad;
		if (len - i <= n)
			goto bad;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		i += n + 1;
	}
	return 0;
bad:
	*bad = i;
	return -1;
}

/* Checks the fields, hands the record over and starts the next one. */
static int
csv_record_end(struct csv *c, char *err, size_t errlen)
{
	struct csv_record rec;
	size_t i, bad;
	int rc;

	csv_field_end(c);
	for (i = 0; c->rec_error == NULL && i < c->nfields; i++) {
		c->ptrs[i] = c->buf + c->starts[i];
		if (memchr(c->ptrs[i], '\0', c->lens[i]) != NULL) {
			snprintf(c->errbuf, sizeof(c->errbuf),
			    "field %zu holds a NUL byte", i + 1);
			c->rec_error = c->errbuf;
		} else if (csv_utf8_check(c->ptrs[i], c->lens[i], &bad) == -1) {
			snprintf(c->errbuf, sizeof(c->errbuf),
			    "field %zu is not valid UTF-8 (byte 0x%02x at "
			    "offset %zu); save the file as UTF-8",
			    i + 1, (unsigned char)c->ptrs[i][bad], bad + 1);
			c->rec_error = c->errbuf;
		}
	}
	rec.line = c->rec_line;
	rec.error = c->rec_error;
	rec.nfields = c->rec_error != NULL ? 0 : c->nfields;
	rec.fields = c->ptrs;
	rec.lens = c->lens;
	c->state = CSV_REC_START;
	c->len = 0;
	c->nfields = 0;
	c->rec_error = NULL;
	if ((rc = c->fn(c->arg, &rec, err, errlen)) == -1)
		c->failed = true;
	return rc;
}

/* A line end outside quotes: counts the line and ends the record. */
static int
csv_line_end(struct csv *c, char *err, size_t errlen)
{
	c->line++;
	return csv_record_end(c, err, errlen);
}

static int
csv_quoted_byte(struct csv *c, unsigned char ch, bool was_cr, char *err,
    size_t errlen)
{
	if (ch == '"') {
		c->state = CSV_QUOTE_IN_QUOTED;
		return 0;
	}
	if (ch == '\r' || (ch == '\n' && !was_cr))
		c->line++;
	if (++c->quoted_bytes >= c->max_record) {
		snprintf(err, errlen,
		    "line %lu: unterminated quoted field: the quote opened "
		    "there runs past %zu bytes (a missing closing '\"'?)",
		    c->quote_line, c->max_record);
		c->failed = true;
		return -1;
	}
	csv_put(c, ch);
	return 0;
}

static int
csv_byte(struct csv *c, unsigned char ch, char *err, size_t errlen)
{
	bool was_cr = c->prev_cr;

	c->prev_cr = ch == '\r';
	switch (c->state) {
	case CSV_REC_START:
		if (ch == '\r' || ch == '\n') {
			if (ch == '\r' || !was_cr)
				c->line++; /* a blank line */
			return 0;
		}
		c->rec_line = c->line;
		csv_field_begin(c);
		c->state = CSV_FIELD_START;
		/* FALLTHROUGH */
	case CSV_FIELD_START:
		if (ch == '"') {
			c->state = CSV_QUOTED;
			c->quote_line = c->line;
			c->quoted_bytes = 0;
			return 0;
		}
		/* FALLTHROUGH */
	case CSV_UNQUOTED:
		if (ch == ',') {
			csv_field_end(c);
			csv_field_begin(c);
			c->state = CSV_FIELD_START;
			return 0;
		}
		if (ch == '\r' || ch == '\n')
			return csv_line_end(c, err, errlen);
		c->state = CSV_UNQUOTED;
		csv_put(c, ch);
		return 0;
	case CSV_QUOTED:
		return csv_quoted_byte(c, ch, was_cr, err, errlen);
	case CSV_QUOTE_IN_QUOTED:
		if (ch == '"') {
			c->state = CSV_QUOTED;
			csv_put(c, ch);
			return 0;
		}
		c->state = CSV_UNQUOTED; /* the quote closed */
		if (ch == ',') {
			csv_field_end(c);
			csv_field_begin(c);
			c->state = CSV_FIELD_START;
			return 0;
		}
		if (ch == '\r' || ch == '\n')
			return csv_line_end(c, err, errlen);
		csv_put(c, ch); /* "abc"def: kept, as spreadsheets do */
		return 0;
	}
	return 0;
}

static int
csv_bytes(struct csv *c, const unsigned char *p, size_t len, char *err,
    size_t errlen)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (csv_byte(c, p[i], err, errlen) == -1)
			return -1;
	return 0;
}

int
csv_feed(struct csv *c, const char *buf, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)buf;

	if (c->failed) {
		snprintf(err, errlen, "the CSV reader stopped at an error");
		return -1;
	}
	while (!c->bom_done && len > 0) {
		c->bom[c->nbom++] = *p++;
		len--;
		if (memcmp(c->bom, csv_bom, c->nbom) != 0) {
			c->bom_done = true;
			if (csv_bytes(c, c->bom, c->nbom, err, errlen) == -1)
				return -1;
		} else if (c->nbom == sizeof(csv_bom)) {
			c->bom_done = true;
			c->had_bom = true;
		}
	}
	return csv_bytes(c, p, len, err, errlen);
}

int
csv_finish(struct csv *c, char *err, size_t errlen)
{
	if (c->failed) {
		snprintf(err, errlen, "the CSV reader stopped at an error");
		return -1;
	}
	if (!c->bom_done) {
		c->bom_done = true;
		if (csv_bytes(c, c->bom, c->nbom, err, errlen) == -1)
			return -1;
	}
	switch (c->state) {
	case CSV_REC_START:
		return 0;
	case CSV_QUOTED:
		snprintf(err, errlen,
		    "line %lu: unterminated quoted field: the file ends "
		    "inside the quote opened there (a missing closing '\"'?)",
		    c->quote_line);
		c->failed = true;
		return -1;
	default:
		return csv_record_end(c, err, errlen);
	}
}

/* ---- Saved state ------------------------------------------------------- */

/* Appends n bytes of p as hex (or "-" for none) and a space to out. */
static size_t
csv_hex(char *out, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	if (n == 0) {
		memcpy(out, "- ", 2);
		return 2;
	}
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[2 * n] = ' ';
	return 2 * n + 1;
}

char *
csv_save(const struct csv *c)
{
	size_t cap = 256 + 2 * c->len + 48 * c->nfields + 2 * sizeof(c->errbuf);
	size_t n, i;
	char *out = xmalloc(cap);

	n = (size_t)snprintf(out, cap,
	    "csv1 %d %d %d %d %d %d %lu %lu %lu %zu %zu %zu ", (int)c->state,
	    (int)c->bom_done, (int)c->had_bom, (int)c->prev_cr, (int)c->failed,
	    c->rec_error != NULL, c->line, c->rec_line, c->quote_line,
	    c->quoted_bytes, c->nbom, c->nfields);
	n += csv_hex(out + n, c->bom, c->nbom);
	n += csv_hex(out + n, c->buf, c->len);
	n += csv_hex(out + n, c->errbuf,
	    c->rec_error != NULL ? strlen(c->errbuf) : 0);
	for (i = 0; i < c->nfields; i++)
		n += (size_t)snprintf(out + n, cap - n, "%zu %zu ",
		    c->starts[i], c->lens[i]);
	out[n > 0 ? n - 1 : 0] = '\0';
	return out;
}

/* Reads a csv_hex() word into out (at most max bytes): its length, or -1. */
static long
csv_unhex(const char **pp, unsigned char *out, size_t max)
{
	const char *p = *pp;
	size_t n = 0;
	unsigned v;

	while (*p == ' ')
		p++;
	if (*p == '-') {
		*pp = p + 1;
		return 0;
	}
	while (p[0] != '\0' && p[0] != ' ') {
		if (n >= max || sscanf(p, "%2x", &v) != 1 || p[1] == '\0')
			return -1;
		out[n++] = (unsigned char)v;
		p += 2;
	}
	*pp = p;
	return (long)n;
}

struct csv *
csv_restore(const char *saved, csv_record_fn *fn, void *arg)
{
	struct csv *c = csv_new(0, 0, fn, arg);
	int state, bom_done, had_bom, prev_cr, failed, rec_err, used;
	size_t nbom, nfields, i;
	const char *p;
	long n;

	if (saved == NULL ||
	    sscanf(saved, "csv1 %d %d %d %d %d %d %lu %lu %lu %zu %zu %zu %n",
		&state, &bom_done, &had_bom, &prev_cr, &failed, &rec_err,
		&c->line, &c->rec_line, &c->quote_line, &c->quoted_bytes, &nbom,
		&nfields, &used) != 12 ||
	    state < CSV_REC_START || state > CSV_QUOTE_IN_QUOTED ||
	    nbom > sizeof(c->bom) || nfields > c->max_fields)
		goto bad;
	c->state = (enum csv_state)state;
	c->bom_done = bom_done != 0;
	c->had_bom = had_bom != 0;
	c->prev_cr = prev_cr != 0;
	c->failed = failed != 0;
	p = saved + used;
	if ((n = csv_unhex(&p, c->bom, sizeof(c->bom))) != (long)nbom)
		goto bad;
	c->nbom = nbom;
	free(c->buf);
	c->cap = strlen(p) / 2 + 1024;
	c->buf = xmalloc(c->cap);
	if ((n = csv_unhex(&p, (unsigned char *)c->buf, c->cap)) < 0)
		goto bad;
	c->len = (size_t)n;
	if ((n = csv_unhex(&p, (unsigned char *)c->errbuf,
		 sizeof(c->errbuf) - 1)) < 0)
		goto bad;
	c->errbuf[n] = '\0';
	c->rec_error = rec_err ? c->errbuf : NULL;
	while (c->fcap < nfields + 1)
		c->fcap *= 2;
	c->starts = xreallocarray(c->starts, c->fcap, sizeof(*c->starts));
	c->lens = xreallocarray(c->lens, c->fcap, sizeof(*c->lens));
	c->ptrs = xreallocarray(c->ptrs, c->fcap, sizeof(*c->ptrs));
	for (i = 0; i < nfields; i++) {
		if (sscanf(p, " %zu %zu%n", &c->starts[i], &c->lens[i],
			&used) != 2 ||
		    c->starts[i] > c->len)
			goto bad;
		p += used;
	}
	c->nfields = nfields;
	return c;
bad:
	csv_free(c);
	return NULL;
}
