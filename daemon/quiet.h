/*
 * quiet.h - quiet hours: the time zones a member may be in, and the next
 * moment an alert may reach them inside the local sending window
 * ([alerts] quiet_start / quiet_end, 08:00-20:00 by default).
 *
 * Contract:
 *  - Zones are IANA names. quiet_zone_valid() is what the API and the
 *    configuration accept: a zone of the system's tz database that ICU
 *    knows too (ICU does the arithmetic, with its own copy of the rules).
 *  - quiet_zones_for() picks the zones in a fixed order: the member's
 *    time_zone; the zones of the number (the area from libphonenumber's
 *    geocoder through the table of phone_zone.h, else every zone of the
 *    number's country); the list's time_zone; the configured default.
 *    The first that gives anything wins, and all its zones count: a
 *    message goes out only when it is inside the window in every one.
 *  - quiet_next_allowed() is minute-accurate, follows DST transitions
 *    and looks at most QUIET_HORIZON_MS ahead. It never answers with a
 *    time outside the window; with no common window it answers
 *    QUIET_NO_WINDOW, and the caller holds the message (never sends it,
 *    never drops it) and reports it.
 *  - Windows never cross midnight and last at least an hour
 *    (quiet_window_check()), so "inside" is start <= local time < end.
 *  - Pure computation: no I/O after the first use of a zone, no logs, no
 *    SQL. Not thread-safe: the loop thread only (ICU calendars are cached
 *    per zone name in a small LRU, see quiet_shutdown()).
 */
#ifndef OD_QUIET_H
#define OD_QUIET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sending window: minutes after local midnight, start < end. */
struct quiet_window {
	unsigned start_min; /* 480 = 08:00 */
	unsigned end_min;   /* 1200 = 20:00, exclusive */
};

#define QUIET_DEFAULT_START (8 * 60)
#define QUIET_DEFAULT_END   (20 * 60)
/* Shortest window accepted: an hour, so DST shifts cannot empty it. */
#define QUIET_WINDOW_MIN (60)
/* How far quiet_next_allowed() looks ahead: two days. */
#define QUIET_HORIZON_MS (48LL * 3600 * 1000)
/* quiet_next_allowed(): no instant within the horizon is safe. */
#define QUIET_NO_WINDOW (-1LL)

/* Zones of one answer; the countries with the most (Russia, Canada)
 * have 11 and 10 different rule sets. */
#define QUIET_ZONES_MAX 16
/* "America/Argentina/ComodRivadavia" is the longest tz name (32). */
#define QUIET_ZONE_NAME_MAX 48

/* Where the zones came from, in the order they are tried. */
enum quiet_source {
	QUIET_SRC_MEMBER,	  /* the member's time_zone field */
	QUIET_SRC_NUMBER_AREA,	  /* geocoder area of the number, table */
	QUIET_SRC_NUMBER_COUNTRY, /* every zone of the number's country */
	QUIET_SRC_LIST,		  /* the list's time_zone */
	QUIET_SRC_DEFAULT,	  /* [alerts] time_zone */
};

struct quiet_zones {
	enum quiet_source source;
	char region[3]; /* number's country ("US"), "" if none */
	char area[64];	/* geocoder's text ("Florida"), "" if none */
	size_t n;	/* 1..QUIET_ZONES_MAX */
	char names[QUIET_ZONES_MAX][QUIET_ZONE_NAME_MAX];
	char note[160]; /* a skipped source and why ("" if none), for a
			 * warning: "member time_zone 'X' is not a known
			 * zone" */
};

/*
 * True when 'iana' names a zone of the system's tz database (a TZif file
 * under /usr/share/zoneinfo, relative, no "..", not posixrules/localtime
 * or the posix/ and right/ copies) that ICU knows as well. False for NULL,
 * "" and anything else.
 */
bool quiet_zone_valid(const char *iana);

/* What may tell a member's zones, in the order quiet_zones_for() tries
 * them; any may be NULL or "". */
struct quiet_hints {
	const char *member_tz;	/* the member's time_zone */
	const char *e164;	/* the member's number as stored (E.164) */
	const char *list_tz;	/* the list's time_zone */
	const char *default_tz; /* [alerts] time_zone */
};

/*
 * Fills *out with the zones of a member, trying h->member_tz, h->e164,
 * h->list_tz, h->default_tz in that order. An invalid member_tz or list_tz
 * is skipped with a note. now_ms is the instant planned from: zones of a
 * country whose rules agree for the year after it are listed once. Returns
 * 0, or -1 when nothing gives a zone (no valid default) with the reason in
 * err.
 */
int quiet_zones_for(const struct quiet_hints *h, int64_t now_ms,
    struct quiet_zones *out, char *err, size_t errlen);

/*
 * The earliest instant >= now_ms (ms since the epoch) that is inside w in
 * every zone of z: now_ms itself when it already is, else the first
 * local start of the window from which all zones are inside. Returns
 * QUIET_NO_WINDOW when there is none within QUIET_HORIZON_MS (zones too
 * far apart for the window) or a zone cannot be opened.
 */
int64_t quiet_next_allowed(const struct quiet_zones *z,
    const struct quiet_window *w, int64_t now_ms);

/*
 * Parses "HH:MM" (00:00 to 24:00; "8:00" too) into minutes after
 * midnight. Returns 0, or -1 with the reason in err.
 */
int quiet_time_parse(const char *text, unsigned *min, char *err, size_t errlen);

/*
 * Checks w: start before end (no window across midnight) and at least
 * QUIET_WINDOW_MIN long. Returns 0, or -1 with the reason in err.
 */
int quiet_window_check(const struct quiet_window *w, char *err, size_t errlen);

/* "member", "number-area", "number-country", "list", "default". */
const char *quiet_source_to_text(enum quiet_source src);

/*
 * Writes "America/New_York,America/Chicago" into buf (truncated with
 * "..." if needed) for logs and previews; returns buf.
 */
const char *quiet_zones_to_text(const struct quiet_zones *z, char *buf,
    size_t len);

/* The version of ICU's time zone rules ("2022e"), for a startup log. */
const char *quiet_tzdata_version(void);

/*
 * True when ICU's rules are older than the system's tz database (its
 * tzdata.zi "# version 2025b" line), with a sentence for a startup
 * warning in buf: zones whose rules changed in between (Mexico dropped
 * DST in 2022) may be an hour off. False when they match or either
 * version is unknown.
 */
bool quiet_tzdata_stale(char *buf, size_t len);

/* Closes the cached calendars; the cache refills on next use. */
void quiet_shutdown(void);

#endif
