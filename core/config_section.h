/*
 * config_section.h - one section of the INI configuration as written, and
 * the typed getters that read its keys.
 *
 * The daemon's loader (daemon/config.c) keeps sections whose keys belong
 * to someone else ([sender NAME], [email], [smtp]) raw; whoever owns them
 * (an adapter's init()) validates them here, with the same value parsers
 * the loader uses (config_value.c), so a bad value reads the same wherever
 * it is. This header is in core/ so that adapters need nothing of the
 * daemon to read their own keys.
 *
 * Errors are "FILE:LINE: what is wrong" in the caller's buffer; nothing
 * here logs.
 */
#ifndef OD_CONFIG_SECTION_H
#define OD_CONFIG_SECTION_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_EX_CONFIG 78 /* sysexits.h EX_CONFIG */
/*
 * The file in var_dir that holds the daemon's URL ("http://ADDR:PORT/")
 * while it listens; outreachctl reads it (cli/ctl_conf.c).
 */
#define CONFIG_URL_FILE "outreachd.url"

struct config_kv {
	char *key;
	char *value; /* after ${ENV} expansion */
	int line;
};

struct config_section {
	const char *file; /* borrowed from struct config */
	char *name;	  /* as written: "sender twilio1" */
	char *type;	  /* first word: "sender" */
	char *label;	  /* second word: "twilio1"; NULL if none */
	int line;	  /* line of the [header] */
	struct config_kv *kv;
	size_t nkv;
};

/* The raw value of 'key' in sec, or NULL if absent. */
const char *config_section_get(const struct config_section *sec,
    const char *key);
/* The line of 'key' in sec, or the section's header line if absent. */
int config_section_line(const struct config_section *sec, const char *key);
/*
 * Fails with "FILE:LINE: unknown key 'k' in [name]" unless every key of
 * sec is in the NULL-terminated 'allowed' list.
 */
int config_section_check_keys(const struct config_section *sec,
    const char *const *allowed, char *err, size_t errlen);
/* The bounds a number must be within, both included (milliseconds for a
 * duration). */
struct config_range {
	unsigned min;
	unsigned max;
};
/*
 * Typed getters: leave *out = def when the key is absent; fail with
 * "FILE:LINE: ..." when the value does not parse or is out of range
 * (outside *r). Booleans accept yes/no, true/false, on/off, 1/0. Durations
 * accept a number with an optional unit ms, s, m, h (default unit:
 * seconds), and give milliseconds.
 */
int config_section_str(const struct config_section *sec, const char *key,
    bool required, const char **out, char *err, size_t errlen);
int config_section_uint(const struct config_section *sec, const char *key,
    const struct config_range *r, unsigned *out, char *err, size_t errlen);
int config_section_bool(const struct config_section *sec, const char *key,
    bool *out, char *err, size_t errlen);
int config_section_duration_ms(const struct config_section *sec,
    const char *key, const struct config_range *r, unsigned *out, char *err,
    size_t errlen);

#endif
