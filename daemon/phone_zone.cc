/*
 * phone_zone.cc - the time zones of a phone number: the C++ shim behind
 * phone_zone.h.
 *
 * libphonenumber's PhoneNumberUtil gives the region of a number ("US",
 * "CA", "JM": every +1 country has its own), and its offline geocoder
 * (libgeocoding, tables compiled in) describes the area in English: a
 * state or province ("Florida", "Ontario"), a city with the state's postal
 * abbreviation ("New York, NY", "Toronto, ON"), a combined area
 * ("Nova Scotia/Prince Edward Island"), or only the country ("United
 * States" for toll-free and non-geographic area codes). Enumerating every
 * valid NPA-NXX of +1 with libphonenumber 8.12 (Debian 12) gives exactly
 * those shapes; the table below covers every state, DC and province name
 * and abbreviation that enumeration produced.
 *
 * Table: the zones a state or province spans, by the US standard time
 * zone boundaries (49 CFR part 71) and the Canadian provinces' time acts,
 * as the tz database's zone.tab describes them. Each zone is a tz name
 * whose current rules stand for that part of the area (America/Boise for
 * Mountain time with DST in Idaho and Oregon, America/Dawson_Creek for
 * British Columbia's all-year Mountain time). Territories of the US
 * (Puerto Rico, Guam, ...) are regions of their own with one zone each and
 * need no entry. Where a place keeps an unofficial time (Phenix City, AL
 * on Eastern time) the official one is listed.
 */
#include "autoconf.h"

#include <cstdio>
#include <cstring>
#include <list>
#include <string>

#include <phonenumbers/geocoding/phonenumber_offline_geocoder.h>
#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/locid.h>

#include "phone_zone.h"

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberOfflineGeocoder;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

/* The zones of the table, named once. */
const char ET[] = "America/New_York";
const char CT[] = "America/Chicago";
const char MT[] = "America/Denver";
const char MT_ID[] = "America/Boise"; /* Mountain, DST (ID, OR) */
const char AZ[] = "America/Phoenix";  /* Mountain, no DST */
const char PT[] = "America/Los_Angeles";
const char AKT[] = "America/Anchorage";
const char HAT[] = "America/Adak"; /* Aleutians west of 169.5 W */
const char HST[] = "Pacific/Honolulu";
const char ET_IN[] = "America/Indiana/Indianapolis";
const char ET_MI[] = "America/Detroit";
const char CT_MI[] = "America/Menominee"; /* four Upper Peninsula counties */
const char ET_CA[] = "America/Toronto";
const char EST_CA[] = "America/Atikokan"; /* Eastern, no DST */
const char CT_CA[] = "America/Winnipeg";
const char CST_CA[] = "America/Regina"; /* Central, no DST */
const char MT_CA[] = "America/Edmonton";
const char MST_CA[] = "America/Dawson_Creek"; /* Mountain, no DST (BC) */
const char YT_CA[] = "America/Whitehorse";    /* Yukon: -7, no DST */
const char PT_CA[] = "America/Vancouver";
const char AT_CA[] = "America/Halifax";
const char AT_NB[] = "America/Moncton";
const char AST_CA[] = "America/Blanc-Sablon"; /* Atlantic, no DST */
const char NT_CA[] = "America/St_Johns";
const char AT_NL[] = "America/Goose_Bay"; /* Labrador */
const char ET_NU[] = "America/Iqaluit";
const char CT_NU[] = "America/Rankin_Inlet";
const char MT_NU[] = "America/Cambridge_Bay";

struct zone_entry {
	const char *region; /* "US", "CA" */
	const char *area;   /* geocoder text or postal abbreviation */
	const char *zones[PHONE_ZONE_MAX];
};

/*
 * One line per area: full name (as the geocoder writes it) and the postal
 * abbreviation it uses after a city. A NULL ends each zone list early.
 */
const zone_entry zone_table[] = {
    {"US", "Alabama", {CT}},
    {"US", "AL", {CT}},
    {"US", "Alaska", {AKT, HAT}},
    {"US", "AK", {AKT, HAT}},
    /* The Navajo Nation observes DST (Mountain time); the rest not. */
    {"US", "Arizona", {AZ, MT}},
    {"US", "AZ", {AZ, MT}},
    {"US", "Arkansas", {CT}},
    {"US", "AR", {CT}},
    {"US", "California", {PT}},
    {"US", "CA", {PT}},
    {"US", "Colorado", {MT}},
    {"US", "CO", {MT}},
    {"US", "Connecticut", {ET}},
    {"US", "CT", {ET}},
    {"US", "Delaware", {ET}},
    {"US", "DE", {ET}},
    {"US", "Washington D.C.", {ET}},
    {"US", "DC", {ET}},
    /* The panhandle west of the Apalachicola River is Central. */
    {"US", "Florida", {ET, CT}},
    {"US", "FL", {ET, CT}},
    {"US", "Georgia", {ET}},
    {"US", "GA", {ET}},
    {"US", "Hawaii", {HST}},
    {"US", "HI", {HST}},
    /* North of the Salmon River is Pacific. */
    {"US", "Idaho", {MT_ID, PT}},
    {"US", "ID", {MT_ID, PT}},
    {"US", "Illinois", {CT}},
    {"US", "IL", {CT}},
    /* Northwest (Gary) and southwest (Evansville) corners are Central. */
    {"US", "Indiana", {ET_IN, CT}},
    {"US", "IN", {ET_IN, CT}},
    {"US", "Iowa", {CT}},
    {"US", "IA", {CT}},
    /* Four western counties are Mountain. */
    {"US", "Kansas", {CT, MT}},
    {"US", "KS", {CT, MT}},
    {"US", "Kentucky", {ET, CT}},
    {"US", "KY", {ET, CT}},
    {"US", "Louisiana", {CT}},
    {"US", "LA", {CT}},
    {"US", "Maine", {ET}},
    {"US", "ME", {ET}},
    {"US", "Maryland", {ET}},
    {"US", "MD", {ET}},
    {"US", "Massachusetts", {ET}},
    {"US", "MA", {ET}},
    {"US", "Michigan", {ET_MI, CT_MI}},
    {"US", "MI", {ET_MI, CT_MI}},
    {"US", "Minnesota", {CT}},
    {"US", "MN", {CT}},
    {"US", "Mississippi", {CT}},
    {"US", "MS", {CT}},
    {"US", "Missouri", {CT}},
    {"US", "MO", {CT}},
    {"US", "Montana", {MT}},
    {"US", "MT", {MT}},
    /* The Panhandle and the west are Mountain. */
    {"US", "Nebraska", {CT, MT}},
    {"US", "NE", {CT, MT}},
    /* West Wendover is Mountain. */
    {"US", "Nevada", {PT, MT}},
    {"US", "NV", {PT, MT}},
    {"US", "New Hampshire", {ET}},
    {"US", "NH", {ET}},
    {"US", "New Jersey", {ET}},
    {"US", "NJ", {ET}},
    {"US", "New Mexico", {MT}},
    {"US", "NM", {MT}},
    {"US", "New York", {ET}},
    {"US", "NY", {ET}},
    {"US", "North Carolina", {ET}},
    {"US", "NC", {ET}},
    /* The southwest is Mountain. */
    {"US", "North Dakota", {CT, MT}},
    {"US", "ND", {CT, MT}},
    {"US", "Ohio", {ET}},
    {"US", "OH", {ET}},
    {"US", "Oklahoma", {CT}},
    {"US", "OK", {CT}},
    /* Most of Malheur County is Mountain. */
    {"US", "Oregon", {PT, MT_ID}},
    {"US", "OR", {PT, MT_ID}},
    {"US", "Pennsylvania", {ET}},
    {"US", "PA", {ET}},
    {"US", "Philadelphia", {ET}}, /* NPA 445: no state given */
    {"US", "Rhode Island", {ET}},
    {"US", "RI", {ET}},
    {"US", "South Carolina", {ET}},
    {"US", "SC", {ET}},
    /* The western half is Mountain. */
    {"US", "South Dakota", {CT, MT}},
    {"US", "SD", {CT, MT}},
    /* East Tennessee is Eastern, the rest Central. */
    {"US", "Tennessee", {ET, CT}},
    {"US", "TN", {ET, CT}},
    /* El Paso and Hudspeth counties are Mountain. */
    {"US", "Texas", {CT, MT}},
    {"US", "TX", {CT, MT}},
    {"US", "Utah", {MT}},
    {"US", "UT", {MT}},
    {"US", "Vermont", {ET}},
    {"US", "VT", {ET}},
    {"US", "Virginia", {ET}},
    {"US", "VA", {ET}},
    {"US", "Washington State", {PT}},
    {"US", "WA", {PT}},
    {"US", "West Virginia", {ET}},
    {"US", "WV", {ET}},
    {"US", "Wisconsin", {CT}},
    {"US", "WI", {CT}},
    {"US", "Wyoming", {MT}},
    {"US", "WY", {MT}},

    /* Lloydminster's Saskatchewan side keeps Alberta's time. */
    {"CA", "Alberta", {MT_CA}},
    {"CA", "AB", {MT_CA}},
    /* Pacific; the northeast and Creston all-year Mountain; the
     * Kootenays east of Kootenay Lake Mountain with DST. */
    {"CA", "British Columbia", {PT_CA, MST_CA, MT_CA}},
    {"CA", "BC", {PT_CA, MST_CA, MT_CA}},
    {"CA", "Manitoba", {CT_CA}},
    {"CA", "MB", {CT_CA}},
    {"CA", "New Brunswick", {AT_NB}},
    {"CA", "NB", {AT_NB}},
    /* Labrador is mostly Atlantic. */
    {"CA", "Newfoundland and Labrador", {NT_CA, AT_NL}},
    {"CA", "NL", {NT_CA, AT_NL}},
    {"CA", "Nova Scotia/Prince Edward Island", {AT_CA}},
    {"CA", "Nova Scotia", {AT_CA}},
    {"CA", "Prince Edward Island", {AT_CA}},
    {"CA", "NS", {AT_CA}},
    {"CA", "PE", {AT_CA}},
    /* Northwest Ontario (Kenora) is Central; Atikokan keeps EST. */
    {"CA", "Ontario", {ET_CA, CT_CA, EST_CA}},
    {"CA", "ON", {ET_CA, CT_CA, EST_CA}},
    /* The Lower North Shore keeps AST; the Magdalen Islands Atlantic. */
    {"CA", "Quebec", {ET_CA, AST_CA, AT_CA}},
    {"CA", "QC", {ET_CA, AST_CA, AT_CA}},
    /* Lloydminster keeps Alberta's time. */
    {"CA", "Saskatchewan", {CST_CA, MT_CA}},
    {"CA", "SK", {CST_CA, MT_CA}},
    /* NPA 867 serves all three territories. */
    {"CA", "Northwest Territories/Nunavut/Yukon", {MT_CA, ET_NU, CT_NU, YT_CA}},
    {"CA", "Northwest Territories", {MT_CA}},
    {"CA", "NT", {MT_CA}},
    {"CA", "Nunavut", {ET_NU, CT_NU, MT_NU}},
    {"CA", "NU", {ET_NU, CT_NU, MT_NU}},
    {"CA", "Yukon", {YT_CA}},
    {"CA", "YT", {YT_CA}},
    {"CA", "Watson Lake", {YT_CA}},
};

const size_t zone_table_len = sizeof(zone_table) / sizeof(zone_table[0]);

/* The library's singleton, muted as in phone.cc. */
const PhoneNumberUtil *
zone_util(void)
{
	static const PhoneNumberUtil *util = [] {
		PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
		u->SetLogger(new NullLogger()); /* takes ownership */
		return u;
	}();
	return util;
}

/*
 * One geocoder for the process: its constructor indexes the compiled-in
 * tables, and GetDescriptionForNumber() locks internally, so sharing it
 * across threads is safe. Never freed (process lifetime, like the
 * PhoneNumberUtil singleton).
 */
const PhoneNumberOfflineGeocoder *
zone_geocoder(void)
{
	static const PhoneNumberOfflineGeocoder *g =
	    new PhoneNumberOfflineGeocoder();
	return g;
}

const zone_entry *
zone_find(const char *region, const std::string &area)
{
	for (size_t i = 0; i < zone_table_len; i++)
		if (std::strcmp(zone_table[i].region, region) == 0 &&
		    area == zone_table[i].area)
			return &zone_table[i];
	return nullptr;
}

size_t
zone_for_area(const char *region, const std::string &area, const char **zones,
    size_t max)
{
	const zone_entry *e = zone_find(region, area);
	size_t n = 0;
	size_t comma;

	/* "Miami, FL": the state after the last comma. */
	if (e == nullptr && (comma = area.rfind(", ")) != std::string::npos)
		e = zone_find(region, area.substr(comma + 2));
	if (e == nullptr)
		return 0;
	for (; n < PHONE_ZONE_MAX && n < max && e->zones[n] != nullptr; n++)
		zones[n] = e->zones[n];
	return n;
}

int
zone_lookup(const char *e164, struct phone_zone *out)
{
	const PhoneNumberUtil *u = zone_util();
	PhoneNumber n;
	std::string region, area;

	if (u->Parse(e164, "ZZ", &n) != PhoneNumberUtil::NO_PARSING_ERROR)
		return -1;
	u->GetRegionCodeForNumber(n, &region);
	/* Not valid (an unassigned range accepted as possible): its country
	 * code still names the country when only one country has it. */
	if (region == "ZZ") {
		std::list<std::string> regions;

		u->GetRegionCodesForCountryCallingCode(n.country_code(),
		    &regions);
		if (regions.size() == 1)
			region = regions.front();
	}
	/* "ZZ" unknown, "001" non-geographic: no country to go by. */
	if (region.size() != 2 || region == "ZZ")
		return 0;
	std::snprintf(out->region, sizeof(out->region), "%s", region.c_str());
	area = zone_geocoder()->GetDescriptionForNumber(n,
	    icu::Locale::getEnglish());
	std::snprintf(out->area, sizeof(out->area), "%s", area.c_str());
	out->nzones =
	    zone_for_area(out->region, area, out->zones, PHONE_ZONE_MAX);
	return 0;
}

void
zone_clear(struct phone_zone *out)
{
	std::memset(out, 0, sizeof(*out));
}

} /* namespace */

extern "C" int
phone_zone_lookup(const char *e164, struct phone_zone *out)
{
	zone_clear(out);
	if (e164 == nullptr || e164[0] == '\0')
		return -1;
	try {
		if (zone_lookup(e164, out) == 0)
			return 0;
	} catch (...) {
		/* std::string's bad_alloc: treat as unknown. */
	}
	zone_clear(out);
	return -1;
}

extern "C" size_t
phone_zone_for_area(const char *region, const char *area, const char **zones,
    size_t max)
{
	if (region == nullptr || area == nullptr)
		return 0;
	try {
		return zone_for_area(region, area, zones, max);
	} catch (...) {
		return 0;
	}
}

extern "C" const char *
phone_zone_table_zone(size_t i)
{
	for (size_t e = 0; e < zone_table_len; e++) {
		size_t n = 0;

		while (n < PHONE_ZONE_MAX && zone_table[e].zones[n] != nullptr)
			n++;
		if (i < n)
			return zone_table[e].zones[i];
		i -= n;
	}
	return nullptr;
}
