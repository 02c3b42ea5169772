/*
 * quiet.c - quiet hours: a member's candidate time zones and the next
 * instant inside the local sending window in all of them.
 *
 * Time arithmetic goes through ICU's calendar C API (ucal_*): a
 * UCalendar per zone gives the local wall time of an instant and the
 * instant of a local wall time, with DST transitions handled by ICU (a
 * window start in a skipped hour maps to the transition, one in a
 * repeated hour to its first occurrence). Not TZ= and tzset(): those are
 * process-global and reload files; not our own tzfile parser either.
 * Opened calendars are kept in a small LRU by zone name, since each alert
 * plans thousands of members in a handful of zones.
 *
 * quiet_next_allowed() jumps instead of stepping minute by minute: at an
 * instant t, every zone that is outside the window names the first
 * instant after t at which it is inside (its next local window start).
 * The latest of those is a lower bound of the answer, since every zone
 * must be inside then; moving t there and asking again converges on the
 * earliest instant all zones agree on, after at most a few steps per zone
 * and day. Zones that can never agree (12 hours apart with a 12-hour
 * window) run past the 48-hour horizon, which is the QUIET_NO_WINDOW
 * answer.
 *
 * Zone validity (quiet_zone_valid) asks two sources: the system's tz
 * database, because an operator reads zone names there and the API should
 * refuse what the system does not have; and ICU, which would otherwise
 * silently treat an unknown name as GMT.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/uenum.h>
#include <unicode/ustring.h>

#include "phone_zone.h"
#include "quiet.h"

/* Where glibc reads zones from; TZDIR overrides it, as for glibc. */
#define QUIET_TZDIR "/usr/share/zoneinfo"
/* Calendars kept open: the zones of a few alerts' members. */
#define QUIET_CACHE_MAX 32
/* Bound of the search loop: each step jumps to a window start, and 16
 * zones over two days have fewer than 16 * 3 of them. */
#define QUIET_STEPS_MAX 1024
#define QUIET_MS_MIN	(60 * 1000LL)
#define QUIET_MS_DAY	(24 * 3600 * 1000LL)
/* Countries whose zone groups are remembered (quiet_country_zones). */
#define QUIET_MEMO_MAX 8
/* Zones ICU lists for one country, at most (US and Canada: 29). */
#define QUIET_COUNTRY_MAX 64
/* Zones of a country are the same when their offsets agree over a year. */
#define QUIET_SAME_SPAN_MS (366 * QUIET_MS_DAY)
/* Offset changes a zone makes in that year, at most (2 a year is usual). */
#define QUIET_SIG_MAX 8

struct quiet_cal {
	char name[QUIET_ZONE_NAME_MAX];
	UCalendar *cal;
	uint64_t used; /* LRU stamp */
};

/* The offsets a zone has over a span: for telling equal zones apart. */
struct quiet_sig {
	int32_t off0; /* total offset at the start, ms */
	size_t n;
	UDate at[QUIET_SIG_MAX];
	int32_t off[QUIET_SIG_MAX];
};

/* The zone groups of a country, as of one UTC day. */
struct quiet_country_memo {
	char region[3];
	int64_t day; /* now_ms / QUIET_MS_DAY */
	size_t n;    /* 0: unused */
	char names[QUIET_ZONES_MAX][QUIET_ZONE_NAME_MAX];
};

static struct quiet_cal quiet_cache[QUIET_CACHE_MAX];
static uint64_t quiet_clock;

static UCalendar *quiet_cal_open(const char *name);
static UCalendar *quiet_cal_lookup(const char *name);
static bool quiet_icu_knows(const char *name);
static bool quiet_name_ok(const char *name);
static bool quiet_tzfile_ok(const char *name);
static int32_t quiet_offset(UCalendar *cal, UDate t);
static void quiet_sig_get(UCalendar *cal, int64_t now_ms,
    struct quiet_sig *sig);
static bool quiet_sig_same(const struct quiet_sig *a,
    const struct quiet_sig *b);
static int quiet_add(struct quiet_zones *out, const char *name, int64_t now_ms,
    struct quiet_sig *sigs);
static void quiet_set_one(struct quiet_zones *out, enum quiet_source src,
    const char *name);
static int quiet_from_number(const char *e164, int64_t now_ms,
    struct quiet_zones *out);
static size_t quiet_rank(const char *id);
static int quiet_country_scan(const char *region, int64_t now_ms,
    struct quiet_zones *out);
static int quiet_country_zones(const char *region, int64_t now_ms,
    struct quiet_zones *out);
static void quiet_sort(struct quiet_zones *out, int64_t now_ms);
static int64_t quiet_entry(UCalendar *cal, const struct quiet_window *w,
    int64_t t);

static UCalendar *
quiet_cal_open(const char *name)
{
	UChar id[QUIET_ZONE_NAME_MAX];
	UErrorCode st = U_ZERO_ERROR;
	UCalendar *cal;

	if (strlen(name) >= QUIET_ZONE_NAME_MAX)
		return NULL;
	u_uastrcpy(id, name);
	cal = ucal_open(id, -1, "en_US", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st)) {
		if (cal != NULL)
			ucal_close(cal);
		return NULL;
	}
	/* A window start in a skipped hour (02:30 on a spring-forward day)
	 * is the transition itself, not an hour after it. */
	ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME,
	    UCAL_WALLTIME_NEXT_VALID);
	ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
	return cal;
}

/*
 * The cached calendar of zone 'name', opening it (and evicting the least
 * recently used one) on a miss. NULL if ICU cannot open it. Borrowed:
 * valid until the next call.
 */
static UCalendar *
quiet_cal_lookup(const char *name)
{
	struct quiet_cal *c, *victim = &quiet_cache[0];
	size_t i;

	quiet_clock++;
	for (i = 0; i < QUIET_CACHE_MAX; i++) {
		c = &quiet_cache[i];
		if (c->cal != NULL && strcmp(c->name, name) == 0) {
			c->used = quiet_clock;
			return c->cal;
		}
		if (c->cal == NULL ||
		    (victim->cal != NULL && c->used < victim->used))
			victim = c;
	}
	if (strlen(name) >= sizeof(victim->name))
		return NULL;
	if (victim->cal != NULL)
		ucal_close(victim->cal);
	victim->cal = quiet_cal_open(name);
	if (victim->cal == NULL)
		return NULL;
	snprintf(victim->name, sizeof(victim->name), "%s", name);
	victim->used = quiet_clock;
	return victim->cal;
}

void
quiet_shutdown(void)
{
	size_t i;

	for (i = 0; i < QUIET_CACHE_MAX; i++) {
		if (quiet_cache[i].cal != NULL)
			ucal_close(quiet_cache[i].cal);
		memset(&quiet_cache[i], 0, sizeof(quiet_cache[i]));
	}
}

const char *
quiet_tzdata_version(void)
{
	UErrorCode st = U_ZERO_ERROR;
	const char *v = ucal_getTZDataVersion(&st);

	return U_FAILURE(st) || v == NULL ? "unknown" : v;
}

/*
 * ICU carries its own copy of the tz rules (2022e in Debian 12's ICU 72),
 * which the system's tzdata package overtakes; versions compare as text
 * ("2022e" < "2025b").
 */
bool
quiet_tzdata_stale(char *buf, size_t len)
{
	const char *dir = getenv("TZDIR"), *icu = quiet_tzdata_version();
	char path[512], line[64], sys[16];
	FILE *fp;
	bool got;

	if (dir == NULL || dir[0] == '\0')
		dir = QUIET_TZDIR;
	snprintf(path, sizeof(path), "%s/tzdata.zi", dir);
	if ((fp = fopen(path, "r")) == NULL)
		return false;
	got = fgets(line, sizeof(line), fp) != NULL &&
	    sscanf(line, "# version %15s", sys) == 1;
	fclose(fp);
	if (!got || strcmp(icu, "unknown") == 0 || strcmp(icu, sys) >= 0)
		return false;
	snprintf(buf, len,
	    "ICU's time zone rules (%s) are older than the system's tz "
	    "database (%s): quiet hours in zones whose rules changed since "
	    "may be an hour off; see doc/quiet-hours.md",
	    icu, sys);
	return true;
}

/* ICU knows 'name' as a zone of its own data (not "Etc/Unknown"). */
static bool
quiet_icu_knows(const char *name)
{
	UChar id[QUIET_ZONE_NAME_MAX], canon[QUIET_ZONE_NAME_MAX * 2];
	UErrorCode st = U_ZERO_ERROR;
	UBool system = 0;

	u_uastrcpy(id, name);
	ucal_getCanonicalTimeZoneID(id, -1, canon,
	    (int32_t)(sizeof(canon) / sizeof(canon[0])), &system, &st);
	return U_SUCCESS(st) && system;
}

/*
 * The shape of a tz name: "Area/Location[/More]" or "UTC", letters,
 * digits, '_', '-', '+' and single '/' inside; no "..", no absolute path,
 * and none of the tz directory's files that are not zones of their own.
 */
static bool
quiet_name_ok(const char *name)
{
	static const char *const refused[] = {"posixrules", "localtime",
	    "Factory", NULL};
	static const char *const refused_dirs[] = {"posix/", "right/", NULL};
	const char *p;
	size_t i;

	if (name[0] == '\0' || name[0] == '/' ||
	    strlen(name) >= QUIET_ZONE_NAME_MAX || strstr(name, "..") != NULL ||
	    strstr(name, "//") != NULL || name[strlen(name) - 1] == '/')
		return false;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
			*p == '+' || *p == '/'))
			return false;
	for (i = 0; refused[i] != NULL; i++)
		if (strcmp(name, refused[i]) == 0)
			return false;
	for (i = 0; refused_dirs[i] != NULL; i++)
		if (strncmp(name, refused_dirs[i], strlen(refused_dirs[i])) ==
		    0)
			return false;
	return true;
}

/* The system's tz directory has 'name' as a TZif file. */
static bool
quiet_tzfile_ok(const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[512], magic[4];
	FILE *fp;
	bool ok;
	int n;

	if (dir == NULL || dir[0] == '\0')
		dir = QUIET_TZDIR;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	/* fopen() of a directory succeeds on Linux; fread() then fails. */
	if ((fp = fopen(path, "rb")) == NULL)
		return false;
	ok = fread(magic, 1, sizeof(magic), fp) == sizeof(magic) &&
	    memcmp(magic, "TZif", sizeof(magic)) == 0;
	fclose(fp);
	return ok;
}

bool
quiet_zone_valid(const char *iana)
{
	return iana != NULL && quiet_name_ok(iana) && quiet_tzfile_ok(iana) &&
	    quiet_icu_knows(iana);
}

/* The zone's total UTC offset at t, in ms (0 on an ICU error). */
static int32_t
quiet_offset(UCalendar *cal, UDate t)
{
	UErrorCode st = U_ZERO_ERROR;
	int32_t off;

	ucal_setMillis(cal, t, &st);
	off = ucal_get(cal, UCAL_ZONE_OFFSET, &st) +
	    ucal_get(cal, UCAL_DST_OFFSET, &st);
	return U_FAILURE(st) ? 0 : off;
}

/* The zone's offset at now_ms and its changes in the year after. */
static void
quiet_sig_get(UCalendar *cal, int64_t now_ms, struct quiet_sig *sig)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate t = (UDate)now_ms, end = (UDate)(now_ms + QUIET_SAME_SPAN_MS);
	int32_t prev, off;

	memset(sig, 0, sizeof(*sig));
	sig->off0 = prev = quiet_offset(cal, t);
	while (sig->n < QUIET_SIG_MAX) {
		ucal_setMillis(cal, t, &st);
		if (!ucal_getTimeZoneTransitionDate(cal,
			UCAL_TZ_TRANSITION_NEXT, &t, &st) ||
		    U_FAILURE(st) || t > end)
			break;
		/* Transitions that only rename keep the total offset. */
		if ((off = quiet_offset(cal, t)) == prev)
			continue;
		sig->at[sig->n] = t;
		sig->off[sig->n++] = prev = off;
	}
}

static bool
quiet_sig_same(const struct quiet_sig *a, const struct quiet_sig *b)
{
	size_t i;

	if (a->off0 != b->off0 || a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (a->at[i] != b->at[i] || a->off[i] != b->off[i])
			return false;
	return true;
}

/*
 * Appends zone 'name' to out unless a zone already there has the same
 * offsets for the year from now_ms (sigs holds theirs). Returns 0, or -1
 * when ICU cannot open it or out is full.
 */
static int
quiet_add(struct quiet_zones *out, const char *name, int64_t now_ms,
    struct quiet_sig *sigs)
{
	UCalendar *cal = quiet_cal_lookup(name);
	size_t i;

	if (cal == NULL)
		return -1;
	quiet_sig_get(cal, now_ms, &sigs[out->n]);
	for (i = 0; i < out->n; i++)
		if (quiet_sig_same(&sigs[i], &sigs[out->n]))
			return 0;
	if (out->n == QUIET_ZONES_MAX)
		return -1;
	snprintf(out->names[out->n++], QUIET_ZONE_NAME_MAX, "%s", name);
	return 0;
}

static void
quiet_set_one(struct quiet_zones *out, enum quiet_source src, const char *name)
{
	out->source = src;
	out->n = 1;
	snprintf(out->names[0], QUIET_ZONE_NAME_MAX, "%s", name);
}

/*
 * How well zone 'id' stands for its group in logs: 0 for the zones of
 * the US/Canada table (ranked by their order there), 1000 for a zone that
 * is the main zone of its Windows time zone (CLDR's choice of the best
 * known city: Australia/Sydney, Europe/Moscow), 2000 for the rest.
 */
static size_t
quiet_rank(const char *id)
{
	UChar uid[QUIET_ZONE_NAME_MAX], win[QUIET_ZONE_NAME_MAX * 2],
	    main_id[QUIET_ZONE_NAME_MAX * 2];
	UErrorCode st = U_ZERO_ERROR;
	const char *tz;
	int32_t n;
	size_t i;

	for (i = 0; (tz = phone_zone_table_zone(i)) != NULL; i++)
		if (strcmp(tz, id) == 0)
			return i;
	u_uastrcpy(uid, id);
	n = ucal_getWindowsTimeZoneID(uid, -1, win,
	    (int32_t)(sizeof(win) / sizeof(win[0])), &st);
	if (U_FAILURE(st) || n <= 0)
		return 2000;
	n = ucal_getTimeZoneIDForWindowsID(win, n, NULL, main_id,
	    (int32_t)(sizeof(main_id) / sizeof(main_id[0])), &st);
	return U_SUCCESS(st) && n > 0 && u_strcmp(uid, main_id) == 0 ? 1000
								     : 2000;
}

/*
 * Every zone of country 'region', one per set of equal rules, the best
 * known name of each group standing for it (quiet_rank). Returns 0, or
 * -1 when ICU lists none or there are more groups than QUIET_ZONES_MAX
 * (no subset would be safe).
 */
static int
quiet_country_scan(const char *region, int64_t now_ms, struct quiet_zones *out)
{
	char ids[QUIET_COUNTRY_MAX][QUIET_ZONE_NAME_MAX];
	struct quiet_sig sigs[QUIET_ZONES_MAX + 1];
	size_t rank[QUIET_COUNTRY_MAX], best, nids = 0, i, j;
	bool taken[QUIET_COUNTRY_MAX] = {false};
	UErrorCode st = U_ZERO_ERROR;
	UEnumeration *en;
	const char *id;
	int32_t len;

	en = ucal_openTimeZoneIDEnumeration(UCAL_ZONE_TYPE_CANONICAL_LOCATION,
	    region, NULL, &st);
	if (U_FAILURE(st))
		return -1;
	while (nids < QUIET_COUNTRY_MAX &&
	    (id = uenum_next(en, &len, &st)) != NULL && U_SUCCESS(st))
		if ((size_t)len < QUIET_ZONE_NAME_MAX) {
			snprintf(ids[nids], QUIET_ZONE_NAME_MAX, "%s", id);
			rank[nids] = quiet_rank(id);
			nids++;
		}
	uenum_close(en);

	/* Best ranked first (selection: a few dozen zones at most). */
	out->n = 0;
	for (i = 0; i < nids; i++) {
		best = nids;
		for (j = 0; j < nids; j++)
			if (!taken[j] && (best == nids || rank[j] < rank[best]))
				best = j;
		taken[best] = true;
		if (quiet_add(out, ids[best], now_ms, sigs) == -1)
			return -1;
	}
	return out->n > 0 ? 0 : -1;
}

/*
 * quiet_country_scan(), remembered per country and UTC day: the scan
 * asks ICU for every transition of every zone of the country (2 ms for
 * the 29 zones of the US), and an alert asks for the same few countries
 * again and again.
 */
static int
quiet_country_zones(const char *region, int64_t now_ms, struct quiet_zones *out)
{
	static struct quiet_country_memo memo[QUIET_MEMO_MAX];
	static size_t memo_next;
	int64_t day = now_ms / QUIET_MS_DAY;
	struct quiet_country_memo *m;
	size_t i;

	for (i = 0; i < QUIET_MEMO_MAX; i++) {
		m = &memo[i];
		if (m->n > 0 && m->day == day &&
		    strcmp(m->region, region) == 0) {
			out->n = m->n;
			memcpy(out->names, m->names, sizeof(out->names));
			return 0;
		}
	}
	if (quiet_country_scan(region, now_ms, out) == -1)
		return -1;
	quiet_sort(out, now_ms);
	m = &memo[memo_next];
	memo_next = (memo_next + 1) % QUIET_MEMO_MAX;
	snprintf(m->region, sizeof(m->region), "%s", region);
	m->day = day;
	m->n = out->n;
	memcpy(m->names, out->names, sizeof(m->names));
	return 0;
}

/*
 * The zones of number e164: the table's zones for its geocoder area, or
 * every zone of its country. Returns 0 with out filled, or -1 when the
 * number gives none (unparsable, non-geographic, unknown country).
 */
static int
quiet_from_number(const char *e164, int64_t now_ms, struct quiet_zones *out)
{
	struct quiet_sig sigs[QUIET_ZONES_MAX + 1];
	struct phone_zone pz;
	size_t i;

	if (e164 == NULL || e164[0] == '\0' || phone_zone_lookup(e164, &pz) ||
	    pz.region[0] == '\0')
		return -1;
	snprintf(out->region, sizeof(out->region), "%s", pz.region);
	snprintf(out->area, sizeof(out->area), "%s", pz.area);
	out->n = 0;
	if (pz.nzones > 0) {
		out->source = QUIET_SRC_NUMBER_AREA;
		for (i = 0; i < pz.nzones; i++)
			if (quiet_add(out, pz.zones[i], now_ms, sigs) == -1)
				break;
		if (i == pz.nzones)
			return 0;
	}
	out->source = QUIET_SRC_NUMBER_COUNTRY;
	return quiet_country_zones(pz.region, now_ms, out);
}

/* East to west by the offset at now_ms, then by name: stable logs. */
static void
quiet_sort(struct quiet_zones *out, int64_t now_ms)
{
	char tmp[QUIET_ZONE_NAME_MAX];
	int32_t off[QUIET_ZONES_MAX], o;
	size_t i, j;

	for (i = 0; i < out->n; i++) {
		UCalendar *cal = quiet_cal_lookup(out->names[i]);

		off[i] = cal != NULL ? quiet_offset(cal, (UDate)now_ms) : 0;
	}
	for (i = 1; i < out->n; i++)
		for (j = i; j > 0 &&
		     (off[j - 1] < off[j] ||
			 (off[j - 1] == off[j] &&
			     strcmp(out->names[j - 1], out->names[j]) > 0));
		     j--) {
			o = off[j];
			off[j] = off[j - 1];
			off[j - 1] = o;
			memcpy(tmp, out->names[j], sizeof(tmp));
			memcpy(out->names[j], out->names[j - 1], sizeof(tmp));
			memcpy(out->names[j - 1], tmp, sizeof(tmp));
		}
}

/*
 * The order of the sources is the rule (see quiet.h): the member's own
 * zone beats what the number suggests, which beats the list's and the
 * configured default. A member or list zone that is no longer valid
 * (tzdata dropped it) is skipped, with a note the caller can warn about.
 */
int
quiet_zones_for(const struct quiet_hints *h, int64_t now_ms,
    struct quiet_zones *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (h->member_tz != NULL && h->member_tz[0] != '\0') {
		if (quiet_zone_valid(h->member_tz)) {
			quiet_set_one(out, QUIET_SRC_MEMBER, h->member_tz);
			return 0;
		}
		snprintf(out->note, sizeof(out->note),
		    "member time_zone '%.*s' is not a known zone; ignored",
		    QUIET_ZONE_NAME_MAX, h->member_tz);
	}
	if (quiet_from_number(h->e164, now_ms, out) == 0) {
		quiet_sort(out, now_ms);
		return 0;
	}
	out->region[0] = out->area[0] = '\0';
	out->n = 0;
	if (h->list_tz != NULL && h->list_tz[0] != '\0') {
		if (quiet_zone_valid(h->list_tz)) {
			quiet_set_one(out, QUIET_SRC_LIST, h->list_tz);
			return 0;
		}
		if (out->note[0] == '\0')
			snprintf(out->note, sizeof(out->note),
			    "list time_zone '%.*s' is not a known zone; "
			    "ignored",
			    QUIET_ZONE_NAME_MAX, h->list_tz);
	}
	if (h->default_tz != NULL && quiet_zone_valid(h->default_tz)) {
		quiet_set_one(out, QUIET_SRC_DEFAULT, h->default_tz);
		return 0;
	}
	snprintf(err, errlen,
	    "no time zone for the member: the default time zone '%.*s' is "
	    "not a known zone",
	    QUIET_ZONE_NAME_MAX, h->default_tz != NULL ? h->default_tz : "");
	return -1;
}

/*
 * The first instant >= t at which zone cal is inside w: t itself when it
 * is, else the next local window start (today's if the local time is
 * before it, tomorrow's if after the end). -1 on an ICU error.
 */
static int64_t
quiet_entry(UCalendar *cal, const struct quiet_window *w, int64_t t)
{
	UErrorCode st = U_ZERO_ERROR;
	int32_t y, mon, d;
	unsigned m;
	UDate at;

	ucal_setMillis(cal, (UDate)t, &st);
	m = (unsigned)(ucal_get(cal, UCAL_HOUR_OF_DAY, &st) * 60 +
	    ucal_get(cal, UCAL_MINUTE, &st));
	y = ucal_get(cal, UCAL_YEAR, &st);
	mon = ucal_get(cal, UCAL_MONTH, &st);
	d = ucal_get(cal, UCAL_DATE, &st);
	if (U_FAILURE(st))
		return -1;
	if (m >= w->start_min && m < w->end_min)
		return t;
	/* Lenient calendar: day 32 is the 1st of the next month. */
	if (m >= w->end_min)
		d++;
	ucal_setDateTime(cal, y, mon, d, (int32_t)(w->start_min / 60),
	    (int32_t)(w->start_min % 60), 0, &st);
	ucal_set(cal, UCAL_MILLISECOND, 0);
	at = ucal_getMillis(cal, &st);
	if (U_FAILURE(st))
		return -1;
	/* A start in an hour that repeats, after its first occurrence. */
	if ((int64_t)at <= t) {
		ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME,
		    UCAL_WALLTIME_LAST);
		ucal_setDateTime(cal, y, mon, d, (int32_t)(w->start_min / 60),
		    (int32_t)(w->start_min % 60), 0, &st);
		ucal_set(cal, UCAL_MILLISECOND, 0);
		at = ucal_getMillis(cal, &st);
		ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME,
		    UCAL_WALLTIME_FIRST);
		if (U_FAILURE(st))
			return -1;
		/* Cannot happen with tz rules; still make progress. */
		if ((int64_t)at <= t)
			at = (UDate)(t + QUIET_MS_MIN);
	}
	return (int64_t)at;
}

int64_t
quiet_next_allowed(const struct quiet_zones *z, const struct quiet_window *w,
    int64_t now_ms)
{
	int64_t t = now_ms, latest, e;
	UCalendar *cal;
	size_t i, step;

	if (z == NULL || z->n == 0 || w == NULL || w->start_min >= w->end_min ||
	    w->end_min > 24 * 60)
		return QUIET_NO_WINDOW;
	for (step = 0; step < QUIET_STEPS_MAX; step++) {
		if (t > now_ms + QUIET_HORIZON_MS)
			return QUIET_NO_WINDOW;
		latest = t;
		for (i = 0; i < z->n; i++) {
			if ((cal = quiet_cal_lookup(z->names[i])) == NULL ||
			    (e = quiet_entry(cal, w, t)) < 0)
				return QUIET_NO_WINDOW;
			if (e > latest)
				latest = e;
		}
		if (latest == t)
			return t;
		t = latest;
	}
	return QUIET_NO_WINDOW;
}

int
quiet_time_parse(const char *text, unsigned *min, char *err, size_t errlen)
{
	unsigned h = 0, m = 0;
	size_t i = 0, nh = 0;

	while (text[i] >= '0' && text[i] <= '9' && nh < 3) {
		h = h * 10 + (unsigned)(text[i++] - '0');
		nh++;
	}
	if (nh == 0 || nh > 2 || text[i++] != ':' || text[i] < '0' ||
	    text[i] > '9' || text[i + 1] < '0' || text[i + 1] > '9' ||
	    text[i + 2] != '\0') {
		snprintf(err, errlen, "'%.*s' is not a time of day (HH:MM)",
		    QUIET_ZONE_NAME_MAX, text);
		return -1;
	}
	m = (unsigned)(text[i] - '0') * 10 + (unsigned)(text[i + 1] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0)) {
		snprintf(err, errlen,
		    "'%s' is not a time of day (00:00 to 24:00)", text);
		return -1;
	}
	*min = h * 60 + m;
	return 0;
}

int
quiet_window_check(const struct quiet_window *w, char *err, size_t errlen)
{
	if (w->start_min >= w->end_min) {
		snprintf(err, errlen,
		    "quiet_start %02u:%02u is not before quiet_end %02u:%02u: "
		    "the sending window may not cross midnight",
		    w->start_min / 60, w->start_min % 60, w->end_min / 60,
		    w->end_min % 60);
		return -1;
	}
	if (w->end_min - w->start_min < QUIET_WINDOW_MIN) {
		snprintf(err, errlen,
		    "the sending window %02u:%02u-%02u:%02u is shorter than "
		    "an hour",
		    w->start_min / 60, w->start_min % 60, w->end_min / 60,
		    w->end_min % 60);
		return -1;
	}
	return 0;
}

const char *
quiet_source_to_text(enum quiet_source src)
{
	switch (src) {
	case QUIET_SRC_MEMBER:
		return "member";
	case QUIET_SRC_NUMBER_AREA:
		return "number-area";
	case QUIET_SRC_NUMBER_COUNTRY:
		return "number-country";
	case QUIET_SRC_LIST:
		return "list";
	case QUIET_SRC_DEFAULT:
		return "default";
	}
	return "unknown";
}

const char *
quiet_zones_to_text(const struct quiet_zones *z, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < z->n; i++) {
		n = snprintf(buf + used, len - used, "%s%s", i > 0 ? "," : "",
		    z->names[i]);
		if (n < 0 || (size_t)n >= len - used) {
			/* Truncated: end with "..." where it fits. */
			if (len >= 4)
				memcpy(buf + len - 4, "...", 4);
			return buf;
		}
		used += (size_t)n;
	}
	return buf;
}
