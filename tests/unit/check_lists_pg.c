/*
 * check_lists_pg.c - the lists API's store operations on PostgreSQL
 * (queue/store_lists_pg.c), against a throwaway cluster
 * (check_pgcluster.h), through two PostgreSQL stores opened as the
 * daemon opens them (store_open_config()), two "nodes" on one loop:
 *
 *  - two nodes creating lists with one keyword in the same turn (two
 *    group transactions racing): both answer ok, one list, the other told
 *    whose the keyword is; the same for one name; without the advisory
 *    lock the second group would fail on the unique keyword or name;
 *  - a list read by id and by name, with its keywords and counts, on the
 *    other node; an update moving its keywords; a config list refused;
 *  - a subscribe making the member, one consent event; again: already;
 *    the listing; an unsubscribe, again: nothing left;
 *  - the lists a received text's route reads: the keyword's list, every
 *    list for a YES; none once the list is deleted (refused while it has
 *    members, unless forced);
 *  - a delete racing a subscribe on the other node whose group is held
 *    open: the delete waits for the list's row, then counts the new
 *    member and is refused (without the row lock it deleted the list
 *    with the member it did not count).
 *
 * States only, no timing assertions. Skipped, with the reason printed,
 * when PostgreSQL's server binaries are missing; without libpq the suite
 * holds one test that says so.
 */
#include "autoconf.h"

#include <stdio.h>

#include <check.h>

#include "check_suites.h"

#ifndef HAVE_LIBPQ

#include "check_pgcluster.h"

Suite *
lists_pg_suite(void)
{
	return ckpg_not_built_suite("lists_pg");
}

#else /* HAVE_LIBPQ */

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "check_pgcluster.h"
#include "message.h"
#include "pg.h"
#include "store-internal.h"
#include "store.h"
#include "store_lists_pg.h"

static char pg_url[512]; /* "" = no cluster: the tests skip */
static struct event_base *t_base;
static struct pg *t_pg; /* the test database's connection, for checks */
static char t_url[600]; /* the test database */

static void
cluster_start(void)
{
	ckpg_start("check_lists_pg", pg_url, sizeof(pg_url));
}

static void
cluster_stop(void)
{
	ckpg_stop("check_lists_pg", pg_url);
}

static const char *
t_sql(const char *sql)
{
	return ckpg_sql(t_base, t_pg, sql, NULL);
}

/* Two nodes on a fresh database. */
static void
t_open(struct store *st[2])
{
	static const char *const node[2] = {"a", "b"};
	struct store_config cfg;
	struct pg *pg;
	char *url = t_url, err[512];
	int i;

	t_base = event_base_new();
	pg = ckpg_connect(t_base, pg_url);
	ckpg_sql(t_base, pg, "DROP DATABASE IF EXISTS lists_pg", NULL);
	ckpg_sql(t_base, pg, "CREATE DATABASE lists_pg", NULL);
	pg_free(pg);
	ckpg_db_url(pg_url, "lists_pg", url, sizeof(t_url));
	for (i = 0; i < 2; i++) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.backend = STORE_POSTGRESQL;
		cfg.url = url;
		cfg.node = node[i];
		cfg.base = t_base;
		cfg.connect_timeout_ms = 30000;
		st[i] = store_open_config(&cfg, err, sizeof(err));
		ck_assert_msg(st[i] != NULL, "store_open_config: %s", err);
		store_attach(st[i], t_base, 0);
	}
	t_pg = ckpg_connect(t_base, url);
}

static void
t_close(struct store *st[2])
{
	store_close(st[0]);
	store_close(st[1]);
	pg_free(t_pg);
	t_pg = NULL;
	event_base_free(t_base);
}

/* A write's answer, kept. */
struct t_done {
	bool done;
	struct list_done d;
	char error[512];
};

static void
t_on_done(void *arg, const struct list_done *d)
{
	struct t_done *t = arg;

	ck_assert(!t->done);
	t->done = true;
	t->d = *d;
	t->d.error = NULL;
	if (d->error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", d->error);
}

static struct list_done
t_wait(struct t_done *t, const char *what)
{
	ckpg_run_until(t_base, &t->done, what);
	ck_assert_msg(t->d.ok, "%s failed: %s", what, t->error);
	return t->d;
}

/* Sends a create (id 0) or an update of list 'name' with keywords. */
static struct t_done *
t_write(struct store *st, int64_t id, const char *name, const char *const *kw,
    struct t_done *t)
{
	struct list_def d = {.name = name, .keywords = kw};
	char err[256];

	while (kw != NULL && kw[d.nkeywords] != NULL)
		d.nkeywords++;
	memset(t, 0, sizeof(*t));
	ck_assert_msg(
	    store_list_write_pg(st,
		&(struct list_write_pg){.id = id, .d = &d, .now = 9000},
		t_on_done, t, err, sizeof(err)) == 0,
	    "list write: %s", err);
	return t;
}

/* A read's answer, kept. */
struct t_json {
	bool done;
	json_t *o;
	char error[256];
};

static void
t_on_json(void *arg, json_t *o, const char *error)
{
	struct t_json *t = arg;

	t->done = true;
	t->o = o;
	if (error != NULL)
		snprintf(t->error, sizeof(t->error), "%s", error);
}

static json_t *
t_read_wait(struct t_json *t, const char *what)
{
	ckpg_run_until(t_base, &t->done, what);
	ck_assert_msg(t->error[0] == '\0', "%s: %s", what, t->error);
	return t->o;
}

/* A list by reference as JSON (NULL: none). */
static json_t *
t_list(struct store *st, const char *ref)
{
	struct t_json t = {0};
	char err[256];

	ck_assert_msg(store_list_json_pg(st, &(struct list_read_pg){.ref = ref},
			  t_on_json, &t, err, sizeof(err)) == 0,
	    "list read: %s", err);
	return t_read_wait(&t, "list read");
}

/* The names a route reads for keyword (NULL: a YES), "a,b". */
static const char *
t_route(struct store *st, const char *keyword)
{
	static char out[128];
	struct t_json t = {0};
	char err[256];
	json_t *l;
	size_t i;
	int n = 0;

	ck_assert_msg(store_route_lists_pg(st, keyword, t_on_json, &t, err,
			  sizeof(err)) == 0,
	    "route read: %s", err);
	t_read_wait(&t, "route read");
	out[0] = '\0';
	json_array_foreach(t.o, i, l)
		n += snprintf(out + n, sizeof(out) - (size_t)n, "%s%s",
		    i > 0 ? "," : "",
		    json_string_value(json_object_get(l, "name")));
	json_decref(t.o);
	return out;
}

/* One list made on both nodes in one turn: the winner's answer. */
static struct list_done
t_race(struct store *st[2], const char *const names[2],
    const char *const *kw[2], const char *want)
{
	struct t_done t[2];
	int lost;

	t_write(st[0], 0, names[0], kw[0], &t[0]);
	t_write(st[1], 0, names[1], kw[1], &t[1]);
	t_wait(&t[0], "create on a");
	t_wait(&t[1], "create on b");
	ck_assert(t[0].d.conflict != t[1].d.conflict);
	lost = t[0].d.conflict ? 0 : 1;
	ck_assert_msg(strstr(t[lost].error, want) != NULL, "%s", t[lost].error);
	return t[1 - lost].d;
}

/* Backends of the test database waiting on a lock. */
static long long
t_waiting(void)
{
	return strtoll(t_sql("SELECT count(*) FROM pg_stat_activity WHERE"
			     " datname = current_database() AND"
			     " wait_event_type = 'Lock'"),
	    NULL, 10);
}

START_TEST(test_delete_waits_for_a_subscribe)
{
	static const char *const k_vote[] = {"VOTE", NULL};
	struct store *st[2];
	struct t_done sub, del;
	struct pg *hold;
	char err[256], text[128];
	int64_t list;

	if (pg_url[0] == '\0')
		return;
	t_open(st);
	hold = ckpg_connect(t_base, t_url);
	list = t_wait(t_write(st[0], 0, "vote", k_vote, &sub), "create").id;
	/* node a's subscribe, its group held open after its statement */
	ckpg_sql(t_base, hold, "SELECT pg_advisory_lock(4244)", NULL);
	memset(&sub, 0, sizeof(sub));
	ck_assert(store_list_subscribe_pg(st[0],
		      &(struct list_sub_pg){.phone = "+15550001002",
			  .list = list,
			  .ch = CHANNEL_SMS,
			  .status = SUB_ACTIVE,
			  .detail = "door",
			  .now = 9100},
		      t_on_done, &sub, err, sizeof(err)) == 0);
	ck_assert_msg(
	    store_pg_group_send(st[0],
		&(struct pg_query){.sql = "SELECT pg_advisory_xact_lock(4244)"},
		err, sizeof(err)) == 0,
	    "%s", err);
	while (t_waiting() < 1)
		;
	/* node b's delete waits for the list's row, then counts the member */
	memset(&del, 0, sizeof(del));
	ck_assert(store_list_delete_pg(st[1], list, false, t_on_done, &del, err,
		      sizeof(err)) == 0);
	while (t_waiting() < 2)
		;
	ckpg_sql(t_base, hold, "SELECT pg_advisory_unlock(4244)", NULL);
	ck_assert(t_wait(&sub, "subscribe").change == SUB_CHANGE_NEW);
	ck_assert(t_wait(&del, "delete").conflict);
	snprintf(text, sizeof(text), "list %lld has 1 members; use force",
	    (long long)list);
	ck_assert_str_eq(del.error, text);
	ck_assert_str_eq(t_sql("SELECT count(*) FROM subscriptions"), "1");
	pg_free(hold);
	t_close(st);
}
END_TEST

START_TEST(test_lists_two_nodes)
{
	static const char *const k_rally[] = {"RALLY", NULL};
	static const char *const k_march[] = {"MARCH", "RALLY", NULL};
	static const char *const k_walk[] = {"WALK", NULL};
	struct store *st[2];
	struct list_done d;
	struct t_done t;
	char ref[24], text[128];
	json_t *o;
	int64_t rally;

	if (pg_url[0] == '\0')
		return;
	t_open(st);
	/* one keyword, two lists, two nodes, one turn */
	d = t_race(st, (const char *const[]){"rally", "march"},
	    (const char *const *[]){k_rally, k_rally},
	    "keyword RALLY belongs to list");
	rally = d.id;
	ck_assert_str_eq(t_sql("SELECT count(*) FROM lists"), "1");
	/* one name, two nodes, one turn */
	t_race(st, (const char *const[]){"walk", "walk"},
	    (const char *const *[]){k_walk, k_walk}, "list name walk is taken");
	ck_assert_str_eq(t_sql("SELECT string_agg(keyword, ',' ORDER BY"
			       " keyword) FROM list_keywords"),
	    "RALLY,WALK");
	/* renamed, keywords moved; read on the other node by id and name */
	t_wait(t_write(st[1], rally, "rally", k_march, &t), "update");
	ck_assert_str_eq(t_route(st[0], "MARCH"), "rally");
	snprintf(ref, sizeof(ref), "%lld", (long long)rally);
	o = t_list(st[0], ref);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "name")),
	    "rally");
	ck_assert_str_eq(json_string_value(
			     json_array_get(json_object_get(o, "keywords"), 0)),
	    "MARCH");
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(o, "counts"), "active")),
	    0);
	json_decref(o);
	o = t_list(st[1], "rally");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), rally);
	json_decref(o);
	ck_assert_ptr_null(t_list(st[0], "nolist"));
	/* a config list is refused */
	t_sql("INSERT INTO lists (name, from_config, created_at, updated_at)"
	      " VALUES ('CFG', 1, 1, 1)");
	d = t_wait(t_write(st[0],
		       strtoll(t_sql("SELECT id FROM lists WHERE name = 'CFG'"),
			   NULL, 10),
		       "CFG", NULL, &t),
	    "config list");
	ck_assert(d.conflict);
	ck_assert_msg(strstr(t.error, "comes from the config file") != NULL,
	    "%s", t.error);
	ck_assert(
	    t_wait(t_write(st[0], 999, "x", NULL, &t), "gone").found == false);
	/* subscribe (a new member), again, the listing, unsubscribe */
	memset(&t, 0, sizeof(t));
	ck_assert(store_list_subscribe_pg(st[0],
		      &(struct list_sub_pg){.phone = "+15550001001",
			  .list = rally,
			  .ch = CHANNEL_SMS,
			  .status = SUB_ACTIVE,
			  .detail = "sheet",
			  .now = 9100},
		      t_on_done, &t, text, sizeof(text)) == 0);
	d = t_wait(&t, "subscribe");
	ck_assert(d.found && d.member_created && !d.conflict);
	ck_assert_int_eq(d.change, SUB_CHANGE_NEW);
	memset(&t, 0, sizeof(t));
	ck_assert(store_list_subscribe_pg(st[1],
		      &(struct list_sub_pg){.member = d.member,
			  .list = rally,
			  .ch = CHANNEL_SMS,
			  .status = SUB_ACTIVE,
			  .detail = "again",
			  .now = 9200},
		      t_on_done, &t, text, sizeof(text)) == 0);
	ck_assert_int_eq(t_wait(&t, "again").change, SUB_CHANGE_ALREADY);
	ck_assert_str_eq(t_sql("SELECT string_agg(action || ':' || detail, ','"
			       " ORDER BY id) FROM consent_events"),
	    "opt_in:sheet");
	/* deleted only by force while it has members */
	memset(&t, 0, sizeof(t));
	ck_assert(store_list_delete_pg(st[1], rally, false, t_on_done, &t, text,
		      sizeof(text)) == 0);
	ck_assert(t_wait(&t, "delete").conflict);
	snprintf(text, sizeof(text), "list %lld has 1 members; use force",
	    (long long)rally);
	ck_assert_str_eq(t.error, text);
	memset(&t, 0, sizeof(t));
	ck_assert(store_list_unsubscribe_pg(st[0],
		      &(struct list_unsub_pg){.member = d.member,
			  .list = rally,
			  .channels = 3,
			  .now = 9300},
		      t_on_done, &t, text, sizeof(text)) == 0);
	ck_assert_uint_eq(t_wait(&t, "unsubscribe").left, 1u << CHANNEL_SMS);
	memset(&t, 0, sizeof(t));
	ck_assert(store_list_unsubscribe_pg(st[1],
		      &(struct list_unsub_pg){.member = d.member,
			  .list = rally,
			  .channels = 3,
			  .now = 9400},
		      t_on_done, &t, text, sizeof(text)) == 0);
	ck_assert_uint_eq(t_wait(&t, "again").left, 0);
	/* the route's lists: by keyword, every one for a YES; deleted */
	ck_assert_str_eq(t_route(st[1], "RALLY"), "rally");
	ck_assert_str_eq(t_route(st[1], NULL), "rally,walk,CFG");
	memset(&t, 0, sizeof(t));
	ck_assert(store_list_delete_pg(st[0], rally, false, t_on_done, &t, text,
		      sizeof(text)) == 0);
	d = t_wait(&t, "delete");
	ck_assert(d.found && !d.conflict);
	ck_assert_str_eq(t_route(st[1], "RALLY"), "");
	ck_assert_str_eq(t_sql("SELECT count(*) FROM subscriptions"), "0");
	t_close(st);
}
END_TEST

Suite *
lists_pg_suite(void)
{
	Suite *s = suite_create("lists_pg");
	TCase *tc = tcase_create("pg");

	tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, test_lists_two_nodes);
	tcase_add_test(tc, test_delete_waits_for_a_subscribe);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

#endif /* HAVE_LIBPQ */
