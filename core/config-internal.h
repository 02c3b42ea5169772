/*
 * config-internal.h - what the two halves of the config module share:
 * config.c (reading the file, the key tables, the two passes) and
 * config_value.c (turning one "key = value" into a typed field, and the
 * config_section_*() getters adapters use). Not for other modules.
 *
 * Contract:
 *  - config_value.c knows nothing of files or of what a section means: it
 *    sees a struct config_val (the text and where it came from) and a
 *    struct config_key (value type, target offset, range), and it never
 *    calls into config.c. config.c reaches values only through
 *    config_setters[] and the helpers declared here.
 *  - Errors: 0 / -1 with "FILE:LINE: message" in the caller's err buffer;
 *    nothing here logs.
 *  - A setter that stores a string frees the one it replaces; the struct
 *    written to (struct config or struct config_sender) owns the new one.
 */
#ifndef OD_CONFIG_INTERNAL_H
#define OD_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_section.h"

/* Whole seconds, minutes, hours: the units durations are written in. */
#define CONFIG_MS_S 1000ull
#define CONFIG_MS_M (60 * CONFIG_MS_S)
#define CONFIG_MS_H (60 * CONFIG_MS_M)
#define CONFIG_MS_D (24 * CONFIG_MS_H)
#define CONFIG_KIB  1024ull
#define CONFIG_MIB  (1024 * CONFIG_KIB)
#define CONFIG_GIB  (1024 * CONFIG_MIB)

/* Value types of the key tables. */
enum config_vtype {
	CONFIG_T_STRING,     /* non-empty text; min/max bound its length */
	CONFIG_T_PATH,	     /* file or directory, stored absolute */
	CONFIG_T_URL,	     /* http:// or https:// URL */
	CONFIG_T_UINT,	     /* unsigned */
	CONFIG_T_DURATION,   /* unsigned milliseconds; min/max in ms */
	CONFIG_T_DURATION_S, /* unsigned seconds; min/max in ms */
	CONFIG_T_SIZE,	     /* size_t bytes */
	CONFIG_T_LEVEL,	     /* enum log_level */
	CONFIG_T_LOG,	     /* "stderr", "syslog" or a path */
	CONFIG_T_LISTEN, /* ADDR:PORT into char * at off, unsigned at off2 */
	CONFIG_T_BOOL,	 /* bool */
	CONFIG_T_DOUBLE, /* double */
	CONFIG_T_CHOICE, /* one of 'choices', as char * */
	CONFIG_T_COUNT
};

struct config_key {
	const char *name;
	enum config_vtype type;
	size_t off; /* field in the section's target struct */
	uint64_t min;
	uint64_t max;
	size_t off2;		    /* CONFIG_T_LISTEN: the port field */
	const char *const *choices; /* CONFIG_T_CHOICE: NULL-terminated */
};

/* One key = value being checked, and where to report what is wrong. */
struct config_val {
	const char *file;
	const char *key;
	const char *value;
	int line;
	char *err;
	size_t errlen;
	const char *cwd; /* for CONFIG_T_PATH and CONFIG_T_LOG */
};

/*
 * Parses v->value as k describes, checks k's range and stores the result
 * at base + k->off. Returns 0, or -1 with "FILE:LINE: ..." in v->err.
 */
typedef int config_set_fn(const struct config_val *v,
    const struct config_key *k, void *base);

/* The setter of each value type, indexed by enum config_vtype. */
extern config_set_fn *const config_setters[CONFIG_T_COUNT];

/*
 * Writes "FILE:LINE: message" (or "FILE: message" for line 0) into err
 * (which may be NULL); always returns -1, so callers can return it.
 */
int config_fail(char *err, size_t errlen, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The entry of 'key' in sec (borrowed), or NULL if absent. */
const struct config_kv *config_kv_lookup(const struct config_section *sec,
    const char *key);
/*
 * Points v at kv of sec and at the error buffer err; leaves v->cwd
 * alone. v borrows all of it.
 */
void config_val_init(struct config_val *v, const struct config_section *sec,
    const struct config_kv *kv, char *err, size_t errlen);
/*
 * A new string: path made absolute against cwd, without "./" prefixes or
 * a trailing '/'. The caller frees it.
 */
char *config_abspath(const char *cwd, const char *path);
/* ms as text in buf ("90s", "2h": the largest exact unit); returns buf. */
const char *config_duration_to_text(uint64_t ms, char *buf, size_t len);

#endif
