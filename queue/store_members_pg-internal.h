/*
 * store_members_pg-internal.h - the SQL pieces of a member update on
 * PostgreSQL that the members API (store_members_pg.c) and the imports
 * (store_imports_pg.c) share: the members' advisory lock and each
 * column's new value under the MF_* 'set' bits.
 *
 * Contract: macros only, for statements whose parameters $3..$13 are
 * those below ($1 and $2 are the statement's own); used in an
 * "UPDATE members SET" whose row is the member's.
 */
#ifndef OD_STORE_MEMBERS_PG_INTERNAL_H
#define OD_STORE_MEMBERS_PG_INTERNAL_H

/*
 * The transaction-level lock of the writers that give members a phone
 * or an email after reading who has it (store_members_pg.c's design).
 */
#define SMP_LOCK "SELECT pg_advisory_xact_lock(1868, 7)"

/*
 * The new value of each column under the 'set' bits $3 (MF_*): $4 phone,
 * $5 email, $6 first, $7 last, $8 zip, $9 time zone, $10 attributes
 * (replace, or merge), $11 tags (replace).
 */
#define SMP_NEW(bit, p, col) \
	"CASE WHEN ($3::int & " bit ") <> 0 THEN " p " ELSE " col " END"
#define SMP_NEW_PHONE SMP_NEW("1", "$4::text", "phone")
#define SMP_NEW_EMAIL SMP_NEW("2", "$5::text", "email")
#define SMP_NEW_FIRST SMP_NEW("4", "$6::text", "first_name")
#define SMP_NEW_LAST  SMP_NEW("8", "$7::text", "last_name")
#define SMP_NEW_ZIP   SMP_NEW("16", "$8::text", "zip")
#define SMP_NEW_TZ    SMP_NEW("32", "$9::text", "time_zone")
#define SMP_MERGED                                                             \
	"(SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof("     \
	"e.value) = 'object' THEN jsonb_strip_nulls(e.value) ELSE e.value"     \
	" END), '{}'::jsonb) FROM jsonb_each(attributes::jsonb"                \
	" || $10::text::jsonb) e WHERE coalesce(jsonb_typeof($10::text::jsonb" \
	" -> e.key), '') <> 'null')::text"
#define SMP_NEW_ATTRS                                                       \
	"CASE WHEN ($3::int & 64) <> 0 THEN $10::text WHEN ($3::int & 256)" \
	" <> 0 THEN " SMP_MERGED " ELSE attributes END"
/*
 * Tags: replaced ($11), or the stored ones without those of $13, then
 * those of $12 not among them, each once, in order (mb_tags_apply()).
 */
#define SMP_KEPT                                                          \
	"(SELECT coalesce(jsonb_agg(t.v ORDER BY t.k), '[]'::jsonb) FROM" \
	" jsonb_array_elements(tags::jsonb) WITH ORDINALITY t(v, k)"      \
	" WHERE NOT coalesce($13::text::jsonb, '[]'::jsonb)"              \
	" @> jsonb_build_array(t.v))"
#define SMP_ADDED                                                             \
	"(SELECT coalesce(jsonb_agg(a.v ORDER BY a.k), '[]'::jsonb) FROM"     \
	" (SELECT v, min(k) AS k FROM jsonb_array_elements(coalesce("         \
	"$12::text::jsonb, '[]'::jsonb)) WITH ORDINALITY x(v, k) GROUP BY v)" \
	" a WHERE NOT " SMP_KEPT " @> jsonb_build_array(a.v))"
#define SMP_NEW_TAGS                                                          \
	"CASE WHEN ($3::int & 128) <> 0 THEN $11::text WHEN $12::text IS"     \
	" NOT NULL OR $13::text IS NOT NULL THEN (" SMP_KEPT " || " SMP_ADDED \
	")::text ELSE tags END"

/* Some column's new value differs from the stored one. */
#define SMP_DIFFERS                                                         \
	"(phone IS DISTINCT FROM " SMP_NEW_PHONE                            \
	" OR email IS DISTINCT FROM " SMP_NEW_EMAIL                         \
	" OR first_name IS DISTINCT FROM " SMP_NEW_FIRST                    \
	" OR last_name IS DISTINCT FROM " SMP_NEW_LAST                      \
	" OR zip IS DISTINCT FROM " SMP_NEW_ZIP                             \
	" OR time_zone IS DISTINCT FROM " SMP_NEW_TZ                        \
	" OR attributes::jsonb IS DISTINCT FROM (" SMP_NEW_ATTRS ")::jsonb" \
	" OR tags::jsonb IS DISTINCT FROM (" SMP_NEW_TAGS ")::jsonb)"
/* The columns an update sets (then ", updated_at = ..."). */
#define SMP_SET_COLS                                                     \
	"phone = " SMP_NEW_PHONE ", email = " SMP_NEW_EMAIL              \
	", first_name = " SMP_NEW_FIRST ", last_name = " SMP_NEW_LAST    \
	", zip = " SMP_NEW_ZIP ", time_zone = " SMP_NEW_TZ               \
	", attributes = " SMP_NEW_ATTRS ", tags = " SMP_NEW_TAGS         \
	", bouncing = CASE WHEN email IS DISTINCT FROM " SMP_NEW_EMAIL   \
	" THEN 0 ELSE bouncing END, email_failures = CASE WHEN email IS" \
	" DISTINCT FROM " SMP_NEW_EMAIL " THEN 0 ELSE email_failures END"

#endif
