/*
 * store_imports.c - one CSV import row as stored: the member found by
 * phone or email (or created), updated with the row's fields, and
 * subscribed to the import's list unless the member opted out of the
 * channel or left the list. Each row is a few cached statements.
 */

#include "autoconf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "queue-internal.h"
#include "store-internal.h"
#include "store_members-internal.h"
#include "store_members.h"

/*
 * Imports: the member by phone or email with what the row needs to know
 * (its other address), and a channel's opt-out and subscription in one
 * step: ?1 member, ?2 list.
 */
static const char store_members_sql_imp_by_phone[] =
    "SELECT id, email, phone IS NOT NULL FROM members WHERE phone = ?1";
static const char store_members_sql_imp_by_email[] =
    "SELECT id, phone, email IS NOT NULL FROM members"
    " WHERE email = lower(?1)";
static const char store_members_sql_imp_sms[] =
    "SELECT EXISTS (SELECT 1 FROM sms_optout WHERE member_id = ?1),"
    " (SELECT status FROM subscriptions WHERE member_id = ?1"
    " AND list_id = ?2 AND channel = 'sms')";
static const char store_members_sql_imp_email[] =
    "SELECT EXISTS (SELECT 1 FROM email_optout WHERE member_id = ?1),"
    " (SELECT status FROM subscriptions WHERE member_id = ?1"
    " AND list_id = ?2 AND channel = 'email')";

/* ---- Import ------------------------------------------------------------ */

/* The member found for an import row, and its addresses. */
struct sm_found {
	int64_t id;
	bool found;
	bool has_phone;
	bool has_email;
};

/*
 * Looks the row up by phone, then email (skipping the second lookup when
 * the phone's member already has the row's email). On a phone and an email
 * of two different members, sets *conflict and err.
 */
static int
store_members_imp_find(struct store *st, const struct member_fields *f,
    struct sm_found *m, bool *conflict, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	const char *other;
	int64_t pid = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	if (f->phone != NULL) {
		stmt =
		    store_stmt(st, store_members_sql_imp_by_phone, err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_text(stmt, 1, f->phone, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			m->found = true;
			m->id = pid = sqlite3_column_int64(stmt, 0);
			other = (const char *)sqlite3_column_text(stmt, 1);
			m->has_email = other != NULL;
			m->has_phone = true;
			if (f->email != NULL && other != NULL &&
			    strcasecmp(other, f->email) == 0) {
				sqlite3_reset(stmt);
				return 0;
			}
		} else if (rc != SQLITE_DONE) {
			store_errmsg(st, "find member", err, errlen);
			sqlite3_reset(stmt);
			return -1;
		}
		sqlite3_reset(stmt);
	}
	if (f->email == NULL)
		return 0;
	stmt = store_stmt(st, store_members_sql_imp_by_email, err, errlen);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, f->email, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (m->found && sqlite3_column_int64(stmt, 0) != pid) {
			*conflict = true;
			snprintf(err, errlen,
			    "phone %s belongs to member %" PRId64
			    " and email %s to member %" PRId64,
			    f->phone, pid, f->email,
			    (int64_t)sqlite3_column_int64(stmt, 0));
		} else if (!m->found) {
			m->found = true;
			m->id = sqlite3_column_int64(stmt, 0);
			m->has_phone =
			    sqlite3_column_type(stmt, 1) != SQLITE_NULL;
			m->has_email = true;
		}
	} else if (rc != SQLITE_DONE) {
		store_errmsg(st, "find member", err, errlen);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 0;
}

/*
 * Subscribes imported member cc->member on cc->ch unless opted out or
 * left (which sets s->refused); s->wrote when it wrote. 'created' skips
 * the lookups (a new member has nothing).
 */
static int
store_members_imp_sub(struct store *st, const struct consent_change *cc,
    bool created, struct sm_sub *s, char *err, size_t errlen)
{
	sqlite3_stmt *stmt;
	int rc;

	s->cur = -1;
	s->status = SUB_ACTIVE;
	if (!created) {
		stmt = store_stmt(st,
		    cc->ch == CHANNEL_EMAIL ? store_members_sql_imp_email
					    : store_members_sql_imp_sms,
		    err, errlen);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, cc->member);
		sqlite3_bind_int64(stmt, 2, cc->list);
		if ((rc = sqlite3_step(stmt)) != SQLITE_ROW) {
			store_errmsg(st, "read subscription", err, errlen);
			sqlite3_reset(stmt);
			return -1;
		}
		if (sqlite3_column_int(stmt, 0) != 0)
			s->cur = SUB_LEFT; /* opted out: treated as left */
		else if (sqlite3_column_type(stmt, 1) != SQLITE_NULL)
			s->cur = store_members_sub_parse(
			    (const char *)sqlite3_column_text(stmt, 1));
		sqlite3_reset(stmt);
		if (s->cur == SUB_LEFT) {
			s->refused = true;
			return 0;
		}
	}
	return store_members_sub_apply(st, cc, s, err, errlen);
}

/*
 * See the header. Fields with a NULL value are not in the row (an import
 * never clears); tags are added and attributes merged. A member who left
 * the list on a channel (unsubscribed) is not rejoined either: like an
 * opt-out, that counts as IMPORT_OPTED_OUT.
 */
int
store_import_row(struct store *st, const struct member_fields *f,
    const struct import_into *in, struct import_result *res, char *err,
    size_t errlen)
{
	int64_t list = in->list;
	const char *detail = in->detail;
	int64_t now = in->now;
	int64_t id;
	struct member_fields g = *f;
	struct consent_change cc = {.list = list,
	    .source = CONSENT_IMPORT,
	    .detail = detail,
	    .now = now};
	struct sm_found m;
	struct sm_bind b;
	struct sm_sub sub = {.cur = -1};
	bool conflict = false;
	bool changed = false;
	bool wrote = false;
	int rc;

	res->outcome = IMPORT_UNCHANGED;
	res->member = 0;
	/* Only the fields the row carries. */
	g.set = 0;
	if ((f->set & MF_PHONE) && f->phone != NULL)
		g.set |= MF_PHONE;
	if ((f->set & MF_EMAIL) && f->email != NULL)
		g.set |= MF_EMAIL;
	if ((f->set & MF_FIRST_NAME) && f->first_name != NULL)
		g.set |= MF_FIRST_NAME;
	if ((f->set & MF_LAST_NAME) && f->last_name != NULL)
		g.set |= MF_LAST_NAME;
	if ((f->set & MF_ZIP) && f->zip != NULL)
		g.set |= MF_ZIP;
	if ((f->set & MF_TIME_ZONE) && f->time_zone != NULL)
		g.set |= MF_TIME_ZONE;
	if ((f->set & (MF_ATTRS | MF_ATTRS_MERGE)) && f->attrs != NULL &&
	    json_object_size(f->attrs) > 0)
		g.set |= MF_ATTRS_MERGE;
	if ((f->set & (MF_TAGS | MF_TAGS_ADD)) && f->tags != NULL &&
	    json_array_size(f->tags) > 0)
		g.set |= MF_TAGS_ADD;
	if (!(g.set & MF_PHONE))
		g.phone = NULL;
	if (!(g.set & MF_EMAIL))
		g.email = NULL;
	if (store_members_check_fields(&g, err, errlen) == -1)
		return -1;
	if (g.phone == NULL && g.email == NULL) {
		snprintf(err, errlen,
		    "import: a phone or an email is required");
		return -1;
	}
	if (store_members_imp_find(st, &g, &m, &conflict, err, errlen) == -1)
		return -1;
	if (conflict) {
		res->outcome = IMPORT_CONFLICT;
		return 0;
	}
	if (store_members_prepare(&g, g.set, &b, err, errlen) == -1)
		return -1;
	b.now = now;
	if ((rc = store_write_begin(st, err, errlen)) == -1)
		goto done;
	if (!m.found) {
		b.set = (b.set & ~(MF_ATTRS_MERGE | MF_TAGS_ADD)) |
		    ((b.set & MF_ATTRS_MERGE) ? MF_ATTRS : 0) |
		    ((b.set & MF_TAGS_ADD) ? MF_TAGS : 0);
		if ((id = store_members_insert(st, &g, &b, err, errlen)) == -1)
			rc = -1;
		else
			m.id = id;
		wrote = changed = rc == 0;
	} else if (g.set != 0 &&
	    (rc = store_members_update_row(st, m.id, &g, &b, err, errlen)) ==
		1) {
		changed = true;
		rc = 0;
	}
	wrote = wrote || changed;
	cc.member = m.id;
	cc.ch = CHANNEL_SMS;
	if (rc == 0 && list > 0 && (g.phone != NULL || m.has_phone))
		rc =
		    store_members_imp_sub(st, &cc, !m.found, &sub, err, errlen);
	cc.ch = CHANNEL_EMAIL;
	if (rc == 0 && list > 0 && (g.email != NULL || m.has_email))
		rc =
		    store_members_imp_sub(st, &cc, !m.found, &sub, err, errlen);
	wrote = wrote || sub.wrote;
	if (rc == 0) {
		res->member = m.id;
		if (!m.found)
			res->outcome = IMPORT_CREATED;
		else if (sub.refused)
			res->outcome = IMPORT_OPTED_OUT;
		else if (changed || sub.wrote)
			res->outcome = IMPORT_UPDATED;
	}
done:
	store_members_bind_clear(&b);
	return queue_op_end(st, rc, wrote);
}
