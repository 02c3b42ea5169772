/*
 * fuzz_config.c - libFuzzer target: the configuration file, as
 * `outreachd --check-config` reads it: config_load() (inih, typed keys,
 * ${ENV} expansion, FILE:LINE errors), then every adapter's init() on its
 * section through dispatch_new() with no event base (no I/O), then the
 * compliance checks of the texts.
 *
 * A file that loads must check the same way twice (no hidden state), and
 * a refusal must read "FILE:LINE: ..." (or "FILE: ..." for the whole
 * file) naming the file it was given. Seeds: tests/fixtures/config/ and
 * etc/outreachd.conf.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"
#include "fuzz_util.h"
#include "inbound.h"

static void fzcf_warn(void *arg, const char *text);
static int fzcf_check(const char *path, char *err, size_t errlen);

/* Warnings are part of a valid load; count them so they are built. */
static void
fzcf_warn(void *arg, const char *text)
{
	unsigned *n = arg;

	if (text == NULL || *text == '\0')
		fuzz_fail("empty config warning");
	(*n)++;
}

/* What --check-config does: 0, or -1 with the reason in err. */
static int
fzcf_check(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	struct dispatch *d;
	unsigned warnings = 0;

	if ((cfg = config_load(path, fzcf_warn, &warnings, err, errlen)) ==
	    NULL)
		return -1;
	d = dispatch_new(&(struct dispatch_deps){.cfg = cfg}, err, errlen);
	if (d != NULL)
		inbound_check_config(cfg, fzcf_warn, &warnings);
	dispatch_free(d);
	config_free(cfg);
	return d != NULL ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path;
	char err1[1024], err2[1024];
	int rc1, rc2;
	size_t plen;

	/* Keep inputs small: a config is a few kilobytes. */
	if (size > 65536)
		return 0;
	path = fuzz_scratch_write(data, size);
	plen = strlen(path);
	err1[0] = err2[0] = '\0';
	rc1 = fzcf_check(path, err1, sizeof(err1));
	rc2 = fzcf_check(path, err2, sizeof(err2));
	if (rc1 != rc2 || strcmp(err1, err2) != 0)
		fuzz_fail("two checks of one file differ: %d '%s' / %d '%s'",
		    rc1, err1, rc2, err2);
	if (rc1 == -1 &&
	    (strncmp(err1, path, plen) != 0 || err1[plen] != ':' ||
		strlen(err1) < plen + 3))
		fuzz_fail("a refusal without FILE:LINE: '%s'", err1);
	return 0;
}
