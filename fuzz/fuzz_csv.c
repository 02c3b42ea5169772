/*
 * fuzz_csv.c - libFuzzer target: the incremental CSV reader (daemon/csv.h)
 * must give the same records, line numbers, errors and verdict whether
 * the input arrives whole or cut into pieces at points the fuzzer picks.
 *
 * Input: byte 0 picks small limits (record bytes, fields) or the
 * defaults, bytes 1-4 pick up to four cut points (each a fraction of the
 * text), the rest is the CSV text. A third run feeds it byte by byte.
 * Records are rendered into one text per run ("L<line>[f|f]" or
 * "L<line>!error"), and the runs must match exactly; each field must also
 * be as long as its reported length, and valid UTF-8.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "csv.h"
#include "fuzz_util.h"

#define FZCSV_HEAD 5 /* bytes of the input that are not CSV text */
#define FZCSV_CUTS 4 /* cut points at most */

struct fzcsv_out {
	struct evbuffer *text;
};

static int fzcsv_cb(void *arg, const struct csv_record *rec, char *err,
    size_t errlen);
/* What fzcsv_run() feeds, and how. */
struct fzcsv_feed {
	const char *in;
	size_t len;
	const size_t *cuts; /* ascending cut points */
	size_t ncuts;	    /* SIZE_MAX: byte by byte */
	size_t max_record;  /* csv_new()'s limits */
	size_t max_fields;
};

static char *fzcsv_run(const struct fzcsv_feed *f, size_t *outlen);

static int
fzcsv_cb(void *arg, const struct csv_record *rec, char *err, size_t errlen)
{
	struct fzcsv_out *o = arg;
	size_t i;

	(void)err;
	(void)errlen;
	if (rec->line == 0)
		fuzz_fail("record at line 0");
	if (rec->error != NULL) {
		evbuffer_add_printf(o->text, "L%lu!%s\n", rec->line,
		    rec->error);
		return 0;
	}
	evbuffer_add_printf(o->text, "L%lu[", rec->line);
	for (i = 0; i < rec->nfields; i++) {
		if (strlen(rec->fields[i]) != rec->lens[i])
			fuzz_fail("field %zu: length %zu, reported %zu", i,
			    strlen(rec->fields[i]), rec->lens[i]);
		if (!fuzz_is_utf8(rec->fields[i], rec->lens[i]))
			fuzz_fail("field %zu is not UTF-8", i);
		if (i > 0)
			evbuffer_add(o->text, "|", 1);
		evbuffer_add(o->text, rec->fields[i], rec->lens[i]);
	}
	evbuffer_add(o->text, "]\n", 2);
	return 0;
}

/*
 * Feeds f->in[0..len) cut at f->cuts[] (ascending; ncuts == SIZE_MAX:
 * byte by byte) and returns the rendered records plus the verdict,
 * malloc'ed.
 */
static char *
fzcsv_run(const struct fzcsv_feed *f, size_t *outlen)
{
	const char *in = f->in;
	const size_t *cuts = f->cuts;
	size_t len = f->len, ncuts = f->ncuts, max_record = f->max_record,
	       max_fields = f->max_fields;
	struct fzcsv_out o;
	struct csv *c;
	char err[256];
	char *res;
	size_t off = 0, i, end;
	int rc = 0;

	if ((o.text = evbuffer_new()) == NULL)
		fuzz_fail("out of memory");
	c = csv_new(max_record, max_fields, fzcsv_cb, &o);
	for (i = 0; rc == 0 && off < len; i++) {
		if (ncuts == SIZE_MAX)
			end = off + 1;
		else
			end = i < ncuts ? cuts[i] : len;
		rc = csv_feed(c, in + off, end - off, err, sizeof(err));
		off = end;
	}
	if (rc == 0)
		rc = csv_finish(c, err, sizeof(err));
	evbuffer_add_printf(o.text, "=%d %s bom=%d\n", rc, rc == 0 ? "" : err,
	    (int)csv_had_bom(c));
	csv_free(c);
	*outlen = evbuffer_get_length(o.text);
	if ((res = malloc(*outlen + 1)) == NULL)
		fuzz_fail("out of memory");
	evbuffer_remove(o.text, res, *outlen);
	res[*outlen] = '\0';
	evbuffer_free(o.text);
	return res;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cuts[FZCSV_CUTS], ncuts = 0, len, i, j, t, max_rec, max_fld;
	size_t n1, n2, n3;
	const char *in;
	char *whole, *split, *bytes;

	if (size < FZCSV_HEAD)
		return 0;
	in = (const char *)data + FZCSV_HEAD;
	len = size - FZCSV_HEAD;
	/* Small limits reach the over-long record and field paths. */
	max_rec = data[0] & 1 ? 16 + (data[0] >> 1) : 0;
	max_fld = data[0] & 1 ? 1 + (data[0] >> 5) : 0;
	for (i = 0; i < FZCSV_CUTS; i++) {
		t = len * data[1 + i] / 256;
		if (t == 0)
			continue;
		for (j = ncuts; j > 0 && cuts[j - 1] > t; j--)
			cuts[j] = cuts[j - 1];
		cuts[j] = t;
		ncuts++;
	}
	whole = fzcsv_run(
	    &(struct fzcsv_feed){in, len, NULL, 0, max_rec, max_fld}, &n1);
	split = fzcsv_run(
	    &(struct fzcsv_feed){in, len, cuts, ncuts, max_rec, max_fld}, &n2);
	if (n1 != n2 || memcmp(whole, split, n1) != 0)
		fuzz_fail("whole and split differ:\n--- whole\n%s--- split\n%s",
		    whole, split);
	if (len <= 4096) {
		bytes = fzcsv_run(&(struct fzcsv_feed){in, len, NULL, SIZE_MAX,
				      max_rec, max_fld},
		    &n3);
		if (n1 != n3 || memcmp(whole, bytes, n1) != 0)
			fuzz_fail("whole and byte by byte differ:\n--- whole\n"
				  "%s--- bytes\n%s",
			    whole, bytes);
		free(bytes);
	}
	free(whole);
	free(split);
	return 0;
}
