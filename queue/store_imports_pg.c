/*
 * store_imports_pg.c - CSV imports on PostgreSQL (store_imports_pg.h):
 * the imports' rows read by any node, and each piece's rows written with
 * the import's new state in one transaction of its own.
 *
 * DESIGN
 *
 * An import is a row of 'imports' (queue/schema/pg/013_imports.sql), not
 * a session in one node's memory, so that any node takes its next piece:
 * daemon/import_pg.c reads the row, restores the CSV reader from it,
 * parses the piece with import.c's code and hands the rows here. A piece
 * is then one transaction on the node's bulk connection (store_pg_bulk(),
 * store-internal.h), answered after its COMMIT:
 *
 *   BEGIN;
 *   SELECT pg_advisory_xact_lock(1868, 7);        -- members' writers
 *   UPDATE imports SET claim = $token || '/' || txid_current()
 *     WHERE id = $1 AND bytes = <read> AND state = 'open';   -- the claim
 *   <one statement per row>                       -- guarded by the claim
 *   INSERT INTO import_issues <the rejected rows> -- guarded by the claim
 *   UPDATE imports SET <counts summed from import_lines> ...;   -- guarded
 *   UPDATE imports SET <the new state: bytes, reader, ...> ...; -- guarded
 *   COMMIT;
 *
 * (A create's claim is the INSERT of the import's row with no byte read
 * yet; its state comes with the last statement too.)
 *
 * - Why a transaction of its own. A 256 KiB piece is about 4,000 rows,
 *   some 2.5 s of statements; inside the node's group every later write
 *   of the node (API enqueues, webhooks' answers, everything answered
 *   after a group's COMMIT) waited behind it. On the bulk connection the
 *   groups go on meanwhile. The connection is the store's, opened on the
 *   first piece (a node that never imports never opens it), not the
 *   alerts' fan-out connection (store_alerts_pg.c), which belongs to the
 *   alerts engine (daemon/alerts_pg.c, not the store) and whose batches
 *   would then wait behind a piece and a piece behind them. Pieces of one
 *   node take turns on it (they are one client's, sent one after the
 *   other); an abort runs there alone, so it waits for a piece in flight
 *   without holding up a group. store_close() waits for what is in
 *   flight on it, as for a group.
 * - The claim is the row lock of that UPDATE, held to the COMMIT: two
 *   nodes given the same piece take turns, and the second one's UPDATE,
 *   re-read after the first committed, matches no row (bytes moved on).
 *   Each later statement writes only if the import's 'claim' is this
 *   piece's token with the id of this transaction (SIP_XID), which only
 *   this transaction can have set: a piece that lost writes nothing, and
 *   its reply says so. A node killed mid-piece loses its transaction and
 *   the lock with it; the piece sent again (to any node, ?offset= the
 *   committed bytes) finds the committed state. Bytes, reader state and
 *   rows commit together: each row is applied once.
 * - Why the transaction's id in the guard, and the state last. The
 *   driver sends what a lost connection had queued and not sent on the
 *   next connection, outside the lost transaction (pg.h), each statement
 *   then committing alone (the fan-out's DESIGN says the same). A claim
 *   that ran alone sets a claim no later statement matches (each alone
 *   has an id of its own), and moves nothing: the bytes and reader state
 *   move only in the last statement, guarded like the rows. So a piece
 *   applies whole or not at all; the most that can commit alone is the
 *   claim (harmless: the next piece claims over it) or a create's row
 *   with no byte read (an open import that idles out like any other).
 * - The members' advisory lock (1868, 7) is still taken, first, as for
 *   the members API's writes (store_members_pg.c). A row reads who has
 *   its phone and email, then writes; so do the API's create and update,
 *   in a group, trusting that lock: without it, the API's write could
 *   meet a member the piece inserted or renumbered and not committed yet
 *   and raise a unique violation, failing the whole group (every write of
 *   that node's turn), where it answers 409 now. The lock keeps the piece
 *   and those writes apart; a piece only waits for it (never fails), and
 *   a group that wants it waits for at most one piece. Statements of the
 *   group that do not take it (ON CONFLICT writes by texts and links) do
 *   not wait for it, only for a row the piece holds.
 * - A row is store_import_row() in one statement: the duplicate check
 *   against the keys of the file's earlier rows ('import_keys', with the
 *   line that had each first), the member found by phone, then email (a
 *   phone and an email of two members is a conflict), inserted or
 *   updated with store_members_pg's column rules (store_members_pg-
 *   internal.h: fields merged, tags added, nothing cleared), subscribed
 *   on each channel it has unless opted out or left (then 'opted_out'),
 *   with the consent events of what changed. Statements of one transaction
 *   see the earlier ones' writes, so the file's rows apply in order.
 * - The row statement (about 6 KB) is prepared once per connection
 *   (PG_PREPARE, pg.h): planned on every run it cost more than it took to
 *   run (test_import_100k: 196 s against 62 s). Its lookups are by key,
 *   so its generic plan is as good as a custom one.
 * - What a row did goes to 'import_lines' (its outcome), its problems to
 *   'import_issues'; the piece's last statement sums the lines after the
 *   import's 'counted' line into its counts. A piece whose problems came
 *   after the first IMPORT_ISSUES_MAX keeps their count, not their rows.
 * - An INSERT that meets a member or subscription written by another
 *   node's text or link meanwhile does nothing (ON CONFLICT): the row is
 *   a conflict, never an error. A statement that fails all the same
 *   rolls the piece back alone (answered 503, sent again by the client).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store-internal.h"
#include "store_imports_pg.h"
#include "xmalloc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>

#include "pg.h"
#include "pg_row.h"
#include "store_members_pg-internal.h"

#define SIP_ISSUES_KEEP 1000 /* problem rows kept (import.h's max) */

#define SIP_COLS                                                             \
	"id, state, error, list_id, list, source, region, bytes, line, bom," \
	" header, columns, reader, rows, blank, rejected, duplicates,"       \
	" warnings, created, updated, unchanged, opted_out, conflicts,"      \
	" issues_total, counted, work_us, created_at, used_at"

/* $1 id (NULL: all), $2 since. */
static const char sip_sql_read[] =
    "SELECT " SIP_COLS " FROM imports WHERE ($1::text IS NULL OR"
    " id = $1::text) AND used_at >= $2::bigint ORDER BY created_at DESC,"
    " id DESC";
/* $1 id, $2 limit. */
static const char sip_sql_issues[] =
    "SELECT line, kind, reason, first_line FROM import_issues"
    " WHERE import_id = $1::text ORDER BY line, ord LIMIT $2::bigint";
/* $1 list name, $2 since. */
static const char sip_sql_can_open[] =
    "SELECT (SELECT id FROM lists WHERE name = $1::text),"
    " (SELECT count(*) FROM imports WHERE state = 'open'"
    " AND used_at >= $2::bigint)";

/*
 * The piece's guard: the import's 'claim' is the piece's token with the
 * id of the transaction that took it, so it holds only inside that one
 * transaction (a statement run alone has an id of its own).
 */
#define SIP_XID "::text || '/' || txid_current()::text"

/* The claim: $1 id, $2 token, $3 the bytes read. */
static const char sip_sql_take[] =
    "UPDATE imports SET claim = $2" SIP_XID
    " WHERE id = $1::text AND bytes = $3::bigint AND state = 'open'"
    " RETURNING 1";
/* A create's claim: $1 id, $2 token, $3 now, $4 the idle imports' bound,
 * $5 list id, $6 list, $7 source, $8 region; the rest is defaults (no
 * byte read yet) until the piece's last statement. */
static const char sip_sql_create[] =
    "WITH gone AS (DELETE FROM imports WHERE used_at < $4::bigint)"
    " INSERT INTO imports (id, list_id, list, source, region, claim,"
    " created_at, used_at) VALUES ($1::text, $5::bigint, $6::text,"
    " $7::text, $8::text, $2" SIP_XID ","
    " $3::bigint, $3::bigint) ON CONFLICT DO NOTHING RETURNING 1";
/*
 * The state a piece leaves, its last statement: $1 id, $2 state,
 * $3 error, $4 bytes, $5 line, $6 bom, $7 header, $8 columns, $9 reader,
 * $10 rows, $11 blank, $12 rejected, $13 work_us (added), $14 now,
 * $15 token, $16 the bytes read.
 */
static const char sip_sql_state[] =
    "UPDATE imports SET state = $2::text, error = $3::text,"
    " bytes = $4::bigint, line = $5::bigint, bom = $6::bigint,"
    " header = $7::text, columns = $8::text, reader = $9::text,"
    " rows = $10::bigint, blank = $11::bigint, rejected = $12::bigint,"
    " work_us = work_us + $13::bigint, used_at = $14::bigint"
    " WHERE id = $1::text AND bytes = $16::bigint AND state = 'open'"
    " AND claim = $15" SIP_XID " RETURNING 1";

/*
 * One row: $1 import, $2 now, $3 the MF_* bits, $4 phone, $5 email,
 * $6 first, $7 last, $8 zip, $9 time zone (NULL), $10 attributes to
 * merge, $11 NULL, $12 tags to add, $13 NULL (the members' update
 * parameters), $14 list, $15 line, $16 the consent detail (the import's
 * source), $17 the row's warning, $18 the claim. Answers the outcome
 * (NULL: the piece lost its claim).
 */
#define SIP_PKEY "'p' || $4::text"
#define SIP_EKEY "'e' || $5::text"
#define SIP_OPTED                                                        \
	"(EXISTS (SELECT 1 FROM sms_optout o WHERE c.ch = 'sms'"         \
	" AND o.member_id = m.id) OR EXISTS (SELECT 1 FROM email_optout" \
	" o WHERE c.ch = 'email' AND o.member_id = m.id))"
static const char sip_sql_row[] =
    "WITH ok AS (SELECT 1 FROM imports WHERE id = $1::text"
    " AND claim = $18" SIP_XID "),"
    " dup AS (SELECT CASE WHEN k.key = " SIP_PKEY " THEN 'phone ' ||"
    " $4::text ELSE 'email ' || $5::text END || ' already on line ' ||"
    " k.line AS why, k.line FROM import_keys k, ok WHERE k.import_id ="
    " $1::text AND k.key IN (" SIP_PKEY ", " SIP_EKEY ") ORDER BY"
    " coalesce(k.key = " SIP_PKEY ", false) DESC LIMIT 1),"
    " keys AS (INSERT INTO import_keys (import_id, key, line)"
    " SELECT $1::text, v.k, $15::bigint FROM ok, (VALUES (" SIP_PKEY "),"
    " (" SIP_EKEY ")) v(k) WHERE v.k IS NOT NULL AND NOT EXISTS"
    " (SELECT 1 FROM dup) ON CONFLICT DO NOTHING),"
    " byp AS (SELECT id, email FROM members WHERE phone = $4::text),"
    " bye AS (SELECT id FROM members WHERE email = $5::text AND NOT EXISTS"
    " (SELECT 1 FROM byp WHERE lower(byp.email) = lower($5::text))),"
    " conf AS (SELECT 'phone ' || $4::text || ' belongs to member ' ||"
    " p.id || ' and email ' || $5::text || ' to member ' || e.id AS why"
    " FROM byp p, bye e WHERE p.id <> e.id),"
    " go AS (SELECT 1 FROM ok WHERE NOT EXISTS (SELECT 1 FROM dup)"
    " AND NOT EXISTS (SELECT 1 FROM conf)),"
    " mem AS (SELECT m.id, m.phone IS NOT NULL AS hp, m.email IS NOT NULL"
    " AS he FROM members m, go WHERE m.id = coalesce((SELECT id FROM byp),"
    " (SELECT id FROM bye))),"
    " ins AS (INSERT INTO members (phone, email, first_name, last_name, zip,"
    " time_zone, attributes, tags, created_at, updated_at) SELECT $4::text,"
    " $5::text, $6::text, $7::text, $8::text, $9::text,"
    " coalesce($10::text, '{}'), coalesce($12::text, '[]'), $2::bigint,"
    " $2::bigint FROM go WHERE NOT EXISTS (SELECT 1 FROM byp)"
    " AND NOT EXISTS (SELECT 1 FROM bye) ON CONFLICT DO NOTHING"
    " RETURNING id),"
    " nv AS (SELECT id, " SMP_NEW_PHONE " AS phone, " SMP_NEW_EMAIL
    " AS email, " SMP_NEW_FIRST " AS first_name, " SMP_NEW_LAST
    " AS last_name, " SMP_NEW_ZIP " AS zip, " SMP_NEW_ATTRS
    " AS attributes, " SMP_NEW_TAGS " AS tags FROM members"
    " WHERE id = (SELECT id FROM mem)),"
    " up AS (UPDATE members u SET phone = nv.phone, email = nv.email,"
    " first_name = nv.first_name, last_name = nv.last_name, zip = nv.zip,"
    " attributes = nv.attributes, tags = nv.tags, bouncing = CASE WHEN"
    " u.email IS DISTINCT FROM nv.email THEN 0 ELSE u.bouncing END,"
    " email_failures = CASE WHEN u.email IS DISTINCT FROM nv.email THEN 0"
    " ELSE u.email_failures END, updated_at = $2::bigint FROM nv"
    " WHERE u.id = nv.id AND (u.phone IS DISTINCT FROM nv.phone"
    " OR u.email IS DISTINCT FROM nv.email OR u.first_name IS DISTINCT"
    " FROM nv.first_name OR u.last_name IS DISTINCT FROM nv.last_name"
    " OR u.zip IS DISTINCT FROM nv.zip OR u.attributes::jsonb IS DISTINCT"
    " FROM nv.attributes::jsonb OR u.tags::jsonb IS DISTINCT FROM"
    " nv.tags::jsonb) RETURNING u.id),"
    " chans AS (SELECT i.id AS mid, c.ch, false AS oo, NULL::text AS cur"
    " FROM ins i, (VALUES ('sms', $4::text), ('email', $5::text)) c(ch, a)"
    " WHERE c.a IS NOT NULL UNION ALL SELECT m.id, c.ch, " SIP_OPTED ","
    " (SELECT s.status FROM subscriptions s WHERE s.member_id = m.id"
    " AND s.list_id = $14::bigint AND s.channel = c.ch) FROM mem m,"
    " (VALUES ('sms'), ('email')) c(ch) WHERE (c.ch = 'sms'"
    " AND ($4::text IS NOT NULL OR m.hp)) OR (c.ch = 'email'"
    " AND ($5::text IS NOT NULL OR m.he))),"
    " subw AS (INSERT INTO subscriptions (member_id, list_id, channel,"
    " status, source, created_at, updated_at) SELECT mid, $14::bigint, ch,"
    " 'active', 'import', $2::bigint, $2::bigint FROM chans WHERE NOT oo"
    " AND (cur IS NULL OR cur = 'pending') ON CONFLICT (member_id, list_id,"
    " channel) DO UPDATE SET status = 'active', source = 'import',"
    " updated_at = $2::bigint WHERE subscriptions.status = 'pending'"
    " RETURNING member_id, channel),"
    " ce AS (INSERT INTO consent_events (member_id, channel, action, source,"
    " list_id, message_id, detail, created_at) SELECT s.member_id,"
    " s.channel, CASE WHEN c.cur = 'pending' THEN 'confirm' ELSE 'opt_in'"
    " END, 'import', $14::bigint, NULL, $16::text, $2::bigint FROM subw s"
    " JOIN chans c ON c.ch = s.channel ORDER BY s.channel = 'email'),"
    " res AS (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM ok) THEN NULL"
    " WHEN EXISTS (SELECT 1 FROM dup) THEN 'duplicate'"
    " WHEN EXISTS (SELECT 1 FROM conf) THEN 'conflict'"
    " WHEN EXISTS (SELECT 1 FROM ins) THEN 'created'"
    " WHEN NOT EXISTS (SELECT 1 FROM mem) THEN 'conflict'"
    " WHEN EXISTS (SELECT 1 FROM chans WHERE oo OR cur = 'left')"
    " THEN 'opted_out' WHEN EXISTS (SELECT 1 FROM up)"
    " OR EXISTS (SELECT 1 FROM subw) THEN 'updated' ELSE 'unchanged' END"
    " AS o),"
    " ln AS (INSERT INTO import_lines (import_id, line, outcome, warned)"
    " SELECT $1::text, $15::bigint, o, CASE WHEN o <> 'duplicate'"
    " AND $17::text IS NOT NULL THEN 1 ELSE 0 END FROM res"
    " WHERE o IS NOT NULL ON CONFLICT DO NOTHING),"
    " iss AS (INSERT INTO import_issues (import_id, line, ord, kind, reason,"
    " first_line) SELECT $1::text, $15::bigint, 0, 'duplicate', why, line"
    " FROM dup UNION ALL SELECT $1::text, $15::bigint, 1, 'warning',"
    " $17::text, NULL FROM ok WHERE $17::text IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM dup) UNION ALL SELECT $1::text,"
    " $15::bigint, 2, 'conflict', coalesce((SELECT why FROM conf),"
    " 'the phone or email already belongs to another member'), NULL"
    " FROM res WHERE o = 'conflict' ON CONFLICT DO NOTHING)"
    " SELECT o FROM res";

/* The rejected rows: $1 import, $2 claim, $3 lines, $4 reasons. */
static const char sip_sql_rejected[] =
    "INSERT INTO import_issues (import_id, line, ord, kind, reason)"
    " SELECT $1::text, r.line, 0, 'rejected', r.why FROM imports i,"
    " unnest($3::bigint[], $4::text[]) AS r(line, why)"
    " WHERE i.id = $1::text AND i.claim = $2" SIP_XID " ON CONFLICT DO NOTHING";

/*
 * The piece's counts: $1 import, $2 claim, $3 the piece's last line.
 * Lines after 'counted' are the piece's; their problem rows go once
 * SIP_ISSUES_KEEP were kept before them.
 */
#define SIP_N(o) "count(*) FILTER (WHERE outcome = '" o "')"
static const char sip_sql_count[] =
    "WITH i AS (SELECT counted, issues_total FROM imports"
    " WHERE id = $1::text AND claim = $2" SIP_XID "),"
    " l AS (SELECT " SIP_N(
	"duplicate") " AS dup, count(*) FILTER (WHERE"
		     " warned = 1) AS warn, " SIP_N("created") " AS cr, " SIP_N("updated") " AS up, " SIP_N("unchanged") " AS un, " SIP_N("opted_out") " AS oo, " SIP_N(
			 "conflict") " AS co FROM import_lines, i WHERE import_id ="
				     " $1::text AND line > i.counted AND line <= $3::bigint),"
				     " p AS (SELECT count(*) AS n FROM import_issues, i WHERE import_id ="
				     " $1::text AND line > i.counted AND line <= $3::bigint),"
				     " cut AS (DELETE FROM import_issues WHERE import_id = $1::text"
				     " AND line > (SELECT counted FROM i) AND line <= $3::bigint"
				     " AND (SELECT issues_total FROM i) >= 1000)" /* SIP_ISSUES_KEEP */
				     " UPDATE imports SET duplicates = duplicates + l.dup,"
				     " warnings = warnings + l.warn, created = created + l.cr,"
				     " updated = updated + l.up, unchanged = unchanged + l.un,"
				     " opted_out = opted_out + l.oo, conflicts = conflicts + l.co,"
				     " issues_total = issues_total + p.n, counted = $3::bigint"
				     " FROM l, p WHERE id = $1::text AND claim = $2" SIP_XID;

/* $1 id, $2 now. */
static const char sip_sql_abort[] =
    "UPDATE imports SET state = 'aborted', used_at = $2::bigint"
    " WHERE id = $1::text AND state = 'open' RETURNING 1";

/* ---- Reads ---------------------------------------------------------- */

/*
 * A read: the problem rows (when asked) are sent first, the imports'
 * rows last, so that the last answer hands both over while its result
 * is alive.
 */
struct sip_read {
	store_imp_read_fn *fn;
	void *arg;
	json_t *issues;
	bool lost;	 /* the rows' statement could not be sent */
	char error[256]; /* the issues' error */
};

static const char *
sip_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void
sip_row(const PGresult *res, int i, struct imp_pg_row *r)
{
	int k;

	r->id = sip_text(res, i, 0);
	r->state = sip_text(res, i, 1);
	r->error = sip_text(res, i, 2);
	r->list_id = pgr_get_i64(res, i, 3);
	r->list = sip_text(res, i, 4);
	r->source = sip_text(res, i, 5);
	r->region = sip_text(res, i, 6);
	r->bytes = pgr_get_i64(res, i, 7);
	r->line = pgr_get_i64(res, i, 8);
	r->bom = pgr_get_i64(res, i, 9) != 0;
	r->header = sip_text(res, i, 10);
	r->columns = sip_text(res, i, 11);
	r->reader = sip_text(res, i, 12);
	for (k = 0; k < IMP_PG_NCOUNTS; k++)
		r->n[k] = pgr_get_i64(res, i, 13 + k);
	r->counted = pgr_get_i64(res, i, 24);
	r->work_us = pgr_get_i64(res, i, 25);
	r->created_at = pgr_get_i64(res, i, 26);
	r->used_at = pgr_get_i64(res, i, 27);
}

static void
sip_issues_answer(void *arg, const struct pg_answer *a)
{
	struct sip_read *r = arg;
	json_t *o;
	int i;

	if (a->error != NULL) {
		snprintf(r->error, sizeof(r->error), "%s", a->error);
	} else {
		r->issues = json_array();
		for (i = 0; i < PQntuples(a->res); i++) {
			o = json_pack("{s:o, s:o, s:o}", "line",
			    pgr_json_int(a->res, i, 0), "kind",
			    pgr_json_text(a->res, i, 1), "reason",
			    pgr_json_text(a->res, i, 2));
			if (!PQgetisnull(a->res, i, 3))
				json_object_set_new(o, "first_line",
				    pgr_json_int(a->res, i, 3));
			json_array_append_new(r->issues, o);
		}
	}
	if (r->lost) {
		r->fn(r->arg, NULL, 0, NULL, "the read could not be sent");
		json_decref(r->issues);
		free(r);
	}
}

static void
sip_rows_answer(void *arg, const struct pg_answer *a)
{
	struct sip_read *r = arg;
	struct imp_pg_row *rows = NULL;
	int i, n = 0;

	if (a->error != NULL)
		r->fn(r->arg, NULL, 0, NULL, a->error);
	else if (r->error[0] != '\0')
		r->fn(r->arg, NULL, 0, NULL, r->error);
	else {
		n = PQntuples(a->res);
		rows = xcalloc((size_t)n + 1, sizeof(*rows));
		for (i = 0; i < n; i++)
			sip_row(a->res, i, &rows[i]);
		r->fn(r->arg, rows, (size_t)n, r->issues, NULL);
	}
	free(rows);
	json_decref(r->issues);
	free(r);
}

static int
sip_read(struct store *st, const struct imp_pg_read *q, store_imp_read_fn *fn,
    void *arg, char *err, size_t errlen)
{
	struct sip_read *r = xcalloc(1, sizeof(*r));
	char since[24], max[24];
	const char *vi[2] = {q->id, pgr_i64(max, q->issues_max, false)};
	const char *vr[2] = {q->id, pgr_i64(since, q->since, false)};
	bool issues = q->issues && q->id != NULL;

	r->fn = fn;
	r->arg = arg;
	if (issues &&
	    pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = sip_sql_issues,
		    .nparams = 2,
		    .values = vi,
		    .flags = PG_IDEMPOTENT,
		    .done = sip_issues_answer,
		    .arg = r},
		err, errlen) == -1) {
		free(r);
		return -1;
	}
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = sip_sql_read,
		    .nparams = 2,
		    .values = vr,
		    .flags = PG_IDEMPOTENT,
		    .done = sip_rows_answer,
		    .arg = r},
		err, errlen) == -1) {
		if (!issues) {
			free(r);
			return -1;
		}
		r->lost = true; /* the issues' answer reports it */
	}
	return 0;
}

/* A list check before a create. */
struct sip_open {
	store_imp_open_fn *fn;
	void *arg;
};

static void
sip_open_answer(void *arg, const struct pg_answer *a)
{
	struct sip_open *o = arg;

	if (a->error != NULL || PQntuples(a->res) != 1)
		o->fn(o->arg, false, 0, 0,
		    a->error != NULL ? a->error : "no answer");
	else
		o->fn(o->arg, !PQgetisnull(a->res, 0, 0),
		    pgr_get_i64(a->res, 0, 0), pgr_get_i64(a->res, 0, 1), NULL);
	free(o);
}

/* ---- Writes --------------------------------------------------------- */

/* A piece (its transaction on the bulk connection) or an abort. */
struct sip_write {
	store_imp_done_fn *fn;
	void *arg;
	bool claimed;
	bool failed;
	char error[256];
};

/* Any statement of the write: its error is kept. */
static void
sip_answer(void *arg, const struct pg_answer *a)
{
	struct sip_write *w = arg;

	if (a->error != NULL && !w->failed) {
		w->failed = true;
		snprintf(w->error, sizeof(w->error), "%s", a->error);
	}
}

/* The claim's answer: a row when the piece is the import's next. */
static void
sip_claim_answer(void *arg, const struct pg_answer *a)
{
	struct sip_write *w = arg;

	sip_answer(arg, a);
	if (a->error == NULL)
		w->claimed = PQntuples(a->res) == 1;
}

/* The reply, once the write's last answer came. */
static void
sip_reply(struct sip_write *w)
{
	bool ok = !w->failed;

	w->fn(w->arg, ok, ok && w->claimed, ok ? NULL : w->error);
	free(w);
}

/* The COMMIT's answer (a COMMIT of a transaction a statement failed in
 * rolls back: that statement's error is the reply's). */
static void
sip_commit_answer(void *arg, const struct pg_answer *a)
{
	sip_answer(arg, a);
	sip_reply(arg);
}

/* An abort's one statement, run alone. */
static void
sip_abort_answer(void *arg, const struct pg_answer *a)
{
	sip_claim_answer(arg, a);
	sip_reply(arg);
}

/*
 * Sends q on the bulk connection for w. Refused only while the store
 * closes: the first statement's refusal frees w (nothing went out), -1;
 * a later one cannot happen (the same connection took the first).
 */
static int
sip_send(struct pg *pg, struct sip_write *w, const struct pg_query *q,
    bool first, char *err, size_t errlen)
{
	struct pg_query s = *q;

	s.arg = w;
	if (s.done == NULL)
		s.done = sip_answer;
	if (pg != NULL && pg_send(pg, &s, err, errlen) == 0)
		return 0;
	if (pg == NULL)
		snprintf(err, errlen, "the store is closing");
	if (!first)
		abort(); /* refused only while closing: see above */
	free(w);
	return -1;
}

/* The MF_* bits of a row's fields (store_members.h). */
static const char *
sip_bits(char buf[24], const struct imp_pg_line *l)
{
	int64_t set = 0;

	set |= l->phone != NULL ? 0x001 : 0;
	set |= l->email != NULL ? 0x002 : 0;
	set |= l->first_name != NULL ? 0x004 : 0;
	set |= l->last_name != NULL ? 0x008 : 0;
	set |= l->zip != NULL ? 0x010 : 0;
	set |= l->attrs != NULL ? 0x100 : 0; /* merged */
	return pgr_i64(buf, set, false);
}

static int
sip_send_row(struct pg *pg, struct sip_write *w, const struct imp_pg_piece *p,
    const struct imp_pg_line *l, char *err, size_t errlen)
{
	char now[24], bits[24], list[24], line[24];
	const char *v[18] = {p->to->id, pgr_i64(now, p->now, false),
	    sip_bits(bits, l), l->phone, l->email, l->first_name, l->last_name,
	    l->zip, NULL, l->attrs, NULL, l->tags, NULL,
	    pgr_i64(list, p->to->list_id, false), pgr_i64(line, l->line, false),
	    p->to->source, l->warning, p->claim};

	/* prepared: planning it cost more than running it (pg.h) */
	return sip_send(pg, w,
	    &(struct pg_query){.sql = sip_sql_row,
		.nparams = 18,
		.values = v,
		.flags = PG_PREPARE},
	    false, err, errlen);
}

static int
sip_send_rejected(struct pg *pg, struct sip_write *w,
    const struct imp_pg_piece *p, char *err, size_t errlen)
{
	int64_t *ln = xcalloc(p->nrejected + 1, sizeof(*ln));
	const char **rs = xcalloc(p->nrejected + 1, sizeof(*rs));
	char *lines, *why;
	const char *v[4];
	size_t i;
	int rc;

	for (i = 0; i < p->nrejected; i++) {
		ln[i] = p->rejected[i].line;
		rs[i] = p->rejected[i].reason;
	}
	lines = pgr_array(NULL, ln, p->nrejected);
	why = pgr_array(rs, NULL, p->nrejected);
	v[0] = p->to->id;
	v[1] = p->claim;
	v[2] = lines;
	v[3] = why;

	rc = sip_send(pg, w,
	    &(struct pg_query){.sql = sip_sql_rejected,
		.nparams = 4,
		.values = v},
	    false, err, errlen);
	free(lines);
	free(why);
	free(ln);
	free(rs);
	return rc;
}

/*
 * A piece: one transaction on the bulk connection, answered after its
 * COMMIT. Every statement is guarded by the claim (SIP_XID), and the
 * import's new state is the last: statements a lost connection had
 * queued run alone on the next one and write nothing.
 */
static int
sip_piece(struct pg *pg, const struct imp_pg_piece *p, struct sip_write *w,
    char *err, size_t errlen)
{
	const struct imp_pg_row *t = p->to;
	char b[24], ln[24], bom[24], n[3][24], wk[24], now[24], from[24],
	    exp[24], lid[24], cnt[24];
	const char *v[16] = {t->id, t->state, t->error,
	    pgr_i64(b, t->bytes, false), pgr_i64(ln, t->line, false),
	    pgr_i64(bom, t->bom, false), t->header, t->columns, t->reader,
	    pgr_i64(n[0], t->n[IMP_PG_ROWS], false),
	    pgr_i64(n[1], t->n[IMP_PG_BLANK], false),
	    pgr_i64(n[2], t->n[IMP_PG_REJECTED], false),
	    pgr_i64(wk, p->work_us, false), pgr_i64(now, p->now, false),
	    p->claim, pgr_i64(from, p->create ? 0 : p->from_bytes, false)};
	const char *vt[3] = {t->id, p->claim, from};
	const char *vn[8] = {t->id, p->claim, now,
	    pgr_i64(exp, p->expire_before, false),
	    pgr_i64(lid, t->list_id, false), t->list, t->source, t->region};
	const char *vc[3] = {t->id, p->claim, pgr_i64(cnt, p->counted, false)};
	size_t i;

	if (sip_send(pg, w, &(struct pg_query){.sql = "BEGIN"}, true, err,
		errlen) == -1)
		return -1;
	(void)sip_send(pg, w, &(struct pg_query){.sql = SMP_LOCK}, false, err,
	    errlen);
	(void)sip_send(pg, w,
	    &(struct pg_query){.sql = p->create ? sip_sql_create : sip_sql_take,
		.nparams = p->create ? 8 : 3,
		.values = p->create ? vn : vt,
		.done = sip_claim_answer},
	    false, err, errlen);
	for (i = 0; i < p->nlines; i++)
		(void)sip_send_row(pg, w, p, &p->lines[i], err, errlen);
	if (p->nrejected > 0)
		(void)sip_send_rejected(pg, w, p, err, errlen);
	(void)sip_send(pg, w,
	    &(struct pg_query){.sql = sip_sql_count,
		.nparams = 3,
		.values = vc},
	    false, err, errlen);
	(void)sip_send(pg, w,
	    &(struct pg_query){.sql = sip_sql_state,
		.nparams = 16,
		.values = v},
	    false, err, errlen);
	(void)sip_send(pg, w,
	    &(struct pg_query){.sql = "COMMIT", .done = sip_commit_answer},
	    false, err, errlen);
	return 0;
}

#endif /* HAVE_LIBPQ */

/* ---- The public operations ------------------------------------------- */

int
store_import_read_pg(struct store *st, const struct imp_pg_read *q,
    store_imp_read_fn *fn, void *arg, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_import_read_pg", err, errlen) ==
	    -1)
		return -1;
#ifdef HAVE_LIBPQ
	return sip_read(st, q, fn, arg, err, errlen);
#else
	(void)q, (void)fn, (void)arg;
	return store_no_libpq(err, errlen);
#endif
}

int
store_import_can_open_pg(struct store *st, const char *list, int64_t since,
    store_imp_open_fn *fn, void *arg, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_import_can_open_pg", err,
		errlen) == -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct sip_open *o = xcalloc(1, sizeof(*o));
	char s[24];
	const char *v[2] = {list, pgr_i64(s, since, false)};

	o->fn = fn;
	o->arg = arg;
	if (pg_send(store_pg_conn(st),
		&(struct pg_query){.sql = sip_sql_can_open,
		    .nparams = 2,
		    .values = v,
		    .flags = PG_IDEMPOTENT,
		    .done = sip_open_answer,
		    .arg = o},
		err, errlen) == -1) {
		free(o);
		return -1;
	}
	return 0;
#else
	(void)list, (void)since, (void)fn, (void)arg;
	return store_no_libpq(err, errlen);
#endif
}

int
store_import_piece_pg(struct store *st, const struct imp_pg_piece *p,
    store_imp_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_import_piece_pg", err, errlen) ==
	    -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct sip_write *w = xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	return sip_piece(store_pg_bulk(st), p, w, err, errlen);
#else
	(void)p, (void)fn, (void)arg;
	return store_no_libpq(err, errlen);
#endif
}

int
store_import_abort_pg(struct store *st, const char *id, int64_t now,
    store_imp_done_fn *fn, void *arg, char *err, size_t errlen)
{
	if (store_postgresql_only(st, "store_import_abort_pg", err, errlen) ==
	    -1)
		return -1;
#ifdef HAVE_LIBPQ
	struct sip_write *w = xcalloc(1, sizeof(*w));
	char t[24];
	const char *v[2] = {id, pgr_i64(t, now, false)};

	w->fn = fn;
	w->arg = arg;
	/* alone on the bulk connection: it waits for a piece in flight there,
	 * not inside a group */
	return sip_send(store_pg_bulk(st), w,
	    &(struct pg_query){.sql = sip_sql_abort,
		.nparams = 2,
		.values = v,
		.done = sip_abort_answer},
	    true, err, errlen);
#else
	(void)id, (void)now, (void)fn, (void)arg;
	return store_no_libpq(err, errlen);
#endif
}
