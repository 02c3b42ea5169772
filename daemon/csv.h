/*
 * csv.h - an incremental CSV reader: RFC 4180 plus what spreadsheets
 * write (a UTF-8 byte order mark, LF, CRLF or CR line ends).
 *
 * Contract:
 *  - The input arrives in pieces of any size through csv_feed(); a piece
 *    may end anywhere (mid-field, mid-quote, between CR and LF, inside a
 *    UTF-8 sequence or the byte order mark). Feeding a text whole or byte
 *    by byte gives the same records.
 *  - Each complete record is handed to the callback with its fields and
 *    the line number (1-based, counting LF, CRLF and CR) where it starts.
 *    Blank lines are skipped. Fields are NUL-terminated copies valid only
 *    during the callback.
 *  - Quoted fields may hold commas, doubled quotes ("") and line breaks.
 *    Lenient where spreadsheets are: a quote inside an unquoted field is
 *    kept, text after a closing quote is appended.
 *  - Memory is bounded: a record longer than 'max_record' bytes or with
 *    more than 'max_fields' fields is a problem of that record only
 *    (rec->error says which; the reader skips to its end), except inside
 *    a quoted field, where a runaway quote would swallow the rest of the
 *    file: that is fatal ("line N: unterminated quoted field ...").
 *  - A field that is not valid UTF-8 or holds a NUL byte is a problem of
 *    its record (rec->error), not of the stream.
 *  - Errors: csv_feed()/csv_finish() return 0, or -1 with text in err
 *    (a fatal syntax error, or a callback that returned -1, whose err is
 *    passed through). After -1 the reader accepts nothing more.
 */
#ifndef OD_CSV_H
#define OD_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define CSV_MAX_RECORD 65536 /* default bytes per record */
#define CSV_MAX_FIELDS 256   /* default fields per record */

struct csv;

struct csv_record {
	unsigned long line; /* where the record starts, 1-based */
	size_t nfields;
	char *const *fields; /* NUL-terminated */
	const size_t *lens;  /* bytes of each field */
	const char *error;   /* NULL, or why the record is unusable */
};

/* Returns 0 to go on, or -1 with text in err to stop the reader. */
typedef int csv_record_fn(void *arg, const struct csv_record *rec, char *err,
    size_t errlen);

/* A reader; 0 for max_record or max_fields takes the defaults above. */
struct csv *csv_new(size_t max_record, size_t max_fields, csv_record_fn *fn,
    void *arg);
/* Parses 'len' more bytes, calling fn for each record they complete. */
int csv_feed(struct csv *c, const char *buf, size_t len, char *err,
    size_t errlen);
/*
 * The input ended: delivers a last record without a line end, and fails
 * on an unterminated quoted field.
 */
int csv_finish(struct csv *c, char *err, size_t errlen);
/* The line number the reader is at (1-based), for messages. */
unsigned long csv_line(const struct csv *c);
/* True when a UTF-8 byte order mark started the input. */
bool csv_had_bom(const struct csv *c);
/* Frees c; NULL is a no-op. */
void csv_free(struct csv *c);

/*
 * The reader's whole state (the partial record, the line counter, the
 * byte order mark's progress) as one line of text, a new string: handed
 * to csv_restore(), possibly in another process of the same version,
 * the reader goes on as if it had never stopped (the PostgreSQL imports
 * keep it in the database between pieces, daemon/import_pg.c).
 */
char *csv_save(const struct csv *c);
/*
 * A reader from csv_save()'s text with the callback fn(arg) (and the
 * default limits); NULL when the text is not such a state.
 */
struct csv *csv_restore(const char *saved, csv_record_fn *fn, void *arg);

/*
 * 0 if s[0..len) is valid UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF); else -1 and *bad is the offset of the first bad byte.
 */
int csv_utf8_check(const char *s, size_t len, size_t *bad);

#endif
