/*
 * phone_zone.h - where a phone number is, as time zones: libphonenumber's
 * region of the number and, for the countries our table knows (the United
 * States and Canada), the offline geocoder's area ("Florida", "New York,
 * NY", "Ontario") mapped to the zones that area spans. The implementation
 * is a C++ shim (phone_zone.cc) like phone.cc; this header is plain C.
 * quiet.c turns the answer into the zones of a member's quiet hours.
 *
 * Contract:
 *  - phone_zone_lookup() never guesses one zone for an area that spans
 *    several: Florida is America/New_York and America/Chicago, Texas is
 *    America/Chicago and America/Denver; the caller must respect all of
 *    them. The table and its sources are in doc/quiet-hours.md.
 *  - An area the table does not know ("United States" for a toll-free
 *    number, any area outside the US and Canada) gives no zones, only the
 *    region: the caller falls back to every zone of that country.
 *  - The zone names are string literals (static storage, never freed),
 *    each an IANA name ICU and the tz database know.
 *  - Thread-safe, no I/O after the first call (the geocoder's tables are
 *    compiled into libgeocoding), no logs; no exception crosses into C.
 *    Links with -lgeocoding -lphonenumber and ICU's common library.
 */
#ifndef OD_PHONE_ZONE_H
#define OD_PHONE_ZONE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most zones one table entry lists (British Columbia, Quebec: 3). */
#define PHONE_ZONE_MAX 4
/* The geocoder's area as kept for logs ("New York, NY"), NUL included. */
#define PHONE_ZONE_AREA_MAX 64

struct phone_zone {
	char region[3];			/* "US"; "" if the number has none */
	char area[PHONE_ZONE_AREA_MAX]; /* geocoder's English text; may be "" */
	const char *zones[PHONE_ZONE_MAX]; /* from the table, in its order */
	size_t nzones;			   /* 0: the table knows no area */
};

/*
 * Fills *out for 'e164' ("+13055550123"). Returns 0, or -1 when e164 is
 * not a number libphonenumber can parse (out is then all empty). A
 * number in no country (+800 freephone, +882 networks) returns 0 with
 * region "" and no zones; a valid number of a country the table does not
 * cover returns its region, the geocoder's area and no zones.
 */
int phone_zone_lookup(const char *e164, struct phone_zone *out);

/*
 * The zones the table gives for a geocoder area text ("Florida", "Miami,
 * FL"; the part after the last ", " is tried when the whole is not
 * known) in 'region' ("US" or "CA"). Returns how many were written to
 * zones (at most max), 0 when the area is not in the table.
 */
size_t phone_zone_for_area(const char *region, const char *area,
    const char **zones, size_t max);

/*
 * For tests and documentation: the i-th zone name the table uses
 * anywhere (repeats possible), or NULL past the end.
 */
const char *phone_zone_table_zone(size_t i);

#ifdef __cplusplus
}
#endif

#endif
