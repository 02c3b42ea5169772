/*
 * alerts-internal.h - what the two halves of the alerts module share:
 * alerts.c (the engine: scheduling, fan-out, guard rails) and
 * alerts_api.c (the /api/v1/alerts routes, validation and preview). Not
 * for other modules; they use alerts.h.
 */
#ifndef OD_ALERTS_INTERNAL_H
#define OD_ALERTS_INTERNAL_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "alerts.h"
#include "quiet.h"
#include "store_alerts.h"
#include "template.h"

/* The templates of an alert, compiled. Any may be NULL (channel off). */
struct alert_tpls {
	struct template_compiled *sms;
	struct template_compiled *subject;
	struct template_compiled *text;
	struct template_compiled *html;
};

/* A template problem an author can fix, for a 422. */
struct alert_problem {
	const char *field; /* "sms_body", "email_subject", ... */
	struct template_error err;
};

/* An alert the engine is running (scheduled, sending or paused). */
/* GET /api/v1/alerts's query, as alerts_page_parse() reads it. */
#define ALERTS_PAGE_MAX 200
struct alerts_page_q {
	const char *status; /* NULL = any */
	long long before;   /* 0 = from the newest */
	long long limit;
};
struct http_req;
/* Reads status, before and limit; false when it answered (400, 422). */
bool alerts_page_parse(struct http_req *req, struct alerts_page_q *pq);

/* At most one "alert" progress event a second per alert while it sends. */
#define ALERTS_ANNOUNCE_MS 1000

struct alert_run {
	TAILQ_ENTRY(alert_run) entry;
	struct alert_row row;
	struct alert_tpls tpls;
	int64_t next_guard_at;	/* ms: when to check the guard rails next */
	struct alert_guard win; /* the figures when the current window began */
	int64_t failed_renders; /* members skipped for a missing field */
	bool no_window_warned;	/* "no safe window" logged once */
	json_t *counts;	    /* store_alert_counts(), cached (alerts_counts) */
	int64_t counts_at;  /* when they were read; 0 = never */
	int64_t counts_ttl; /* how long they serve: grows with their cost */
	struct alert_guard last; /* the guard rails' last figures */
	bool have_last;
	int64_t last_at;  /* when 'last' was read */
	int64_t last_ttl; /* how long it serves the API: grows with its cost */
	int64_t count_after; /* the audience count's progress (alerts_count) */
	int64_t count_sms;
	int64_t count_email;
	double rate;	      /* messages out per second, recently */
	int64_t rate_at;      /* when rate_n was counted */
	int64_t rate_n;	      /* messages out (reached + failed) then */
	int64_t announced_at; /* the last "alert" event; 0 = none */
	bool seen;	      /* still live in the last refresh */
};
TAILQ_HEAD(alert_run_list, alert_run);

/* The zones of a North American area code (alerts_sms_not_before()). */
#define ALERTS_ZONE_SLOTS 512
struct alerts_zone_slot {
	bool used;
	char key[64]; /* "+1NPA|list time zone" */
	struct quiet_zones z;
};

struct alerts_pg;
struct alerts {
	struct alerts_deps deps;
	struct alerts_pg *pg; /* on PostgreSQL: its engine (alerts_pg.c) */
	struct alerts_zone_slot zones[ALERTS_ZONE_SLOTS];
	int64_t zones_day; /* the day (UTC) the cache was filled */
	struct event *timer;
	struct alert_run_list runs;
	bool started;
	bool stopped;
	bool hurry; /* a turn filled a chunk: the next comes at once */
};

/* The channels and templates of an alert (a row or a definition). */
struct alert_texts {
	bool sms;
	bool email;
	const char *sms_body;
	const char *email_subject;
	const char *email_text;
	const char *email_html;
};
#define ALERT_TEXTS_OF(x)                                       \
	((struct alert_texts){(x).sms, (x).email, (x).sms_body, \
	    (x).email_subject, (x).email_text, (x).email_html})
/*
 * Compiles the templates of the channels that are on. Returns 0, or -1
 * with the first problem in *p (tpls is then empty).
 */
int alerts_compile(const struct alert_texts *x, struct alert_tpls *tpls,
    struct alert_problem *p);
void alerts_tpls_free(struct alert_tpls *tpls);

/*
 * A member's values for template_render(), from a walked member: custom
 * fields come from its attributes JSON, parsed once on first use and
 * kept in *ctx until alerts_view_done().
 */
struct alerts_view_ctx {
	const struct alert_member *m;
	json_t *attrs; /* parsed attributes, or NULL */
	char *value;   /* the last custom field returned */
};
void alerts_member_view(const struct alert_member *m,
    struct alerts_view_ctx *ctx, struct template_member_view *v);
void alerts_view_done(struct alerts_view_ctx *ctx);

/*
 * Renders t for the member of v into a new string, using buf as scratch;
 * NULL with err when a field without a fallback is missing. With 'sms',
 * a text that smart replacement (curly quotes, dashes, ...) makes GSM-7
 * comes back replaced, as it is sent; *raw (may be NULL) then receives
 * the text before replacement (a new string, NULL if none was made).
 */
char *alerts_render(struct evbuffer *buf, const struct template_compiled *t,
    const struct template_member_view *v, bool sms, char **raw,
    struct template_error *err);

/* The SMS sender of an alert (a new string): its own, else the first
 * list's, else the default; NULL if none of them is a configured sender. */
char *alerts_sender(struct alerts *a, const char *own, const char *audience);

/*
 * The earliest time an SMS to member m may leave (now when inside its
 * window, QUIET_NO_WINDOW when no window is safe); zones, if not NULL,
 * receives the member's zones.
 */
struct quiet_zones;
int64_t alerts_sms_not_before(struct alerts *a, const struct alert_member *m,
    int64_t now, struct quiet_zones *zones);

/* After the API changed alert 'id': reload it and run the timer soon. */
void alerts_changed(struct alerts *a, int64_t id);
/* The run of alert 'id', or NULL. */
struct alert_run *alerts_run_find(struct alerts *a, int64_t id);

/*
 * The per-channel counts of alert 'id' (a new reference), and in *g what
 * it caused. Reading them scans every message of the alert: for an alert
 * the engine runs whose counts took 10 ms or more to read, they serve
 * for 50 times that before they are read again, so watching a large
 * alert costs it at most 2%. NULL with err on failure.
 */
json_t *alerts_counts(struct alerts *a, int64_t id, struct alert_guard *g,
    char *err, size_t errlen);

/* The HTTP side (alerts_api.c). */
void alerts_api_routes(struct alerts *a, struct http_server *srv);

/* ---- Shared with the PostgreSQL engine and API (alerts_pg.c) ----------- */

/* A placeholder without fallback in one of an alert's templates. */
struct alerts_need {
	const char *template; /* "sms_body", "email_subject", ... */
	bool sms;	      /* the SMS template (else an email part) */
	struct alert_field f; /* borrowed from the compiled templates */
};
/* The needs of t's templates, in order (*out: free() it). */
size_t alerts_needs(const struct alert_tpls *t, struct alerts_need **out);
/*
 * counts[i]: the members reached (on needs[i]'s channel) who lack
 * needs[i]. Appends {template, field, members} for each one lacked to
 * 'report' (may be NULL); 0 when none is, else ALERTS_MISSING with the
 * 422's text for the first in err.
 */
#define ALERTS_MISSING (-1)
int alerts_missing_report(const struct alerts_need *needs, size_t n,
    const int64_t *counts, json_t *report, char *err, size_t errlen);
/* True, with the 422's text in err, when r reaches nobody on d's
 * channels. */
bool alerts_reaches_nobody(const struct alert_def *d,
    const struct alert_reach *r, char *err, size_t errlen);

/*
 * POST /api/v1/alerts/{id}/preview, on either store: the store hands the
 * first ALERTS_PREVIEW_WALK members reached, then for each of
 * alerts_preview_fields the ALERTS_PREVIEW_LONGEST members reached by
 * SMS with its longest values, to alerts_preview_member() (each counts
 * once); alerts_preview_json() makes the answer from them, the reach and
 * the missing fields' report.
 */
#define ALERTS_SAMPLES	       3
#define ALERTS_PREVIEW_WALK    200
#define ALERTS_PREVIEW_LONGEST 3
#define ALERTS_PREVIEW_FIELDS  5
extern const struct alert_field alerts_preview_fields[ALERTS_PREVIEW_FIELDS];
struct evbuffer;
struct alerts_preview {
	struct alerts *a;
	const struct alert_row *row;
	const struct alert_tpls *t;
	struct evbuffer *buf;
	json_t *samples;
	json_t *email_samples;
	json_t *ucs2; /* {"’": "'" or null} */
	unsigned max_chars;
	unsigned max_segments;
	bool any_ucs2;
	int64_t now;
	int64_t outside; /* sampled members outside their window now */
	int64_t looked;
	int64_t seen[256]; /* members rendered already (each counts once) */
	size_t nseen;
};
void alerts_preview_init(struct alerts_preview *pv, struct alerts *a,
    const struct alert_row *row, const struct alert_tpls *t);
int alerts_preview_member(void *arg, const struct alert_member *m, char *err,
    size_t errlen);
/* The answer (missing is stolen). */
json_t *alerts_preview_json(struct alerts_preview *pv,
    const struct alert_reach *reach, json_t *missing);
void alerts_preview_free(struct alerts_preview *pv);

/* Timer period while any alert is live, members looked at per call, and
 * at most this many members' messages made per alert per turn. */
#define ALERTS_TICK_MS	 250
#define ALERTS_SCAN	 20000
#define ALERTS_CHUNK_MAX 1000
/* The guard rails are checked at most this often (ms) per alert. */
#define ALERTS_GUARD_EVERY 5000

/* One turn's fan-out of one alert (alerts_fan_member()'s argument). */
struct evbuffer;
struct sap_batch;
struct alerts_fan {
	struct alerts *a;
	struct alert_run *r;
	int64_t now;
	const char *sender;
	const char *from;
	int64_t expires_at;
	int64_t made;
	int64_t deferred;
	struct evbuffer *buf;
	/* PostgreSQL: the messages go to this batch (sap_batch_add()), not
	 * to queue_enqueue(); NULL on SQLite. */
	struct sap_batch *batch;
};
/* store_alert_member_fn: renders member m's messages and queues them. */
int alerts_fan_member(void *arg, const struct alert_member *m, char *err,
    size_t errlen);
/*
 * The guard rails on figures g of r's alert, read at 'now' in 'took' ms:
 * true with the reason in why when one trips. Keeps g as r's last
 * figures, moves its rate, window and next_guard_at on.
 */
bool alerts_guard_check(struct alerts *a, struct alert_run *r,
    const struct alert_guard *g, int64_t now, int64_t took, char *why,
    size_t whylen);
/* The due backlog alert r may hold. */
int64_t alerts_backlog_bound(struct alerts *a, const struct alert_run *r);
void alerts_run_free(struct alert_run *r);

/*
 * A create or update body checked into *in (strings borrowed from o);
 * -1 with "field: problem" for a 422. On PostgreSQL the lists are kept
 * as given (ids and names, resolved by the caller through the lists
 * table) and the SMS sender is not resolved (the first list's is not
 * known yet).
 */
struct al_input {
	struct alert_def def;
	json_t *audience; /* owned: {"lists": [ids], ...} */
	char *audience_text;
	char *sender; /* resolved, owned */
};
struct http_req;
int alerts_parse_input(struct alerts *a, struct http_req *req, json_t *o,
    struct al_input *in, char *err, size_t errlen);
void alerts_input_free(struct al_input *in);

/* PostgreSQL (alerts_pg.c): routes and engine in place of the SQLite
 * ones; start, stop and free follow alerts_start/stop/free. */
void alerts_pg_new(struct alerts *a, struct http_server *srv);
void alerts_pg_start(struct alerts *a);
void alerts_pg_stop(struct alerts *a);
void alerts_pg_free(struct alerts *a);

#endif
