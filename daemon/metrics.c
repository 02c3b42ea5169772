/*
 * metrics.c - the daemon's counters and their Prometheus text rendering.
 *
 * Label sets are few (channels x providers x senders x outcomes, routes x
 * statuses), so each family is a small array searched linearly, with the
 * label set stored pre-rendered: a hot-path increment is a short loop of
 * strcmp, and rendering is a copy.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

struct metrics_series {
	char *labels; /* rendered: a="x",b="y" */
	uint64_t value;
};

struct metrics_family {
	const char *name;
	const char *help;
	struct metrics_series *series;
	size_t n;
};

enum {
	METRICS_MESSAGES,
	METRICS_HTTP,
	METRICS_EMAIL_LINKS,
	METRICS_NFAMILIES,
};

struct metrics {
	struct metrics_family fam[METRICS_NFAMILIES];
};

static void metrics_escape(struct evbuffer *, const char *);
static bool metrics_same(const char *, const char *const *);
static void metrics_add(struct metrics_family *, const char *const *);

struct metrics *
metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	m->fam[METRICS_MESSAGES].name = "outreachd_messages_total";
	m->fam[METRICS_MESSAGES].help =
	    "Send attempts by channel, provider, sender and outcome.";
	m->fam[METRICS_HTTP].name = "outreachd_http_requests_total";
	m->fam[METRICS_HTTP].help = "HTTP requests answered, by route and "
				    "status.";
	m->fam[METRICS_EMAIL_LINKS].name = "outreachd_email_link_actions_total";
	m->fam[METRICS_EMAIL_LINKS].help =
	    "Email link actions: one-click unsubscribes that opted an "
	    "address out, and confirmed subscriptions.";
	return m;
}

void
metrics_free(struct metrics *m)
{
	size_t f, i;

	if (m == NULL)
		return;
	for (f = 0; f < METRICS_NFAMILIES; f++) {
		for (i = 0; i < m->fam[f].n; i++)
			free(m->fam[f].series[i].labels);
		free(m->fam[f].series);
	}
	free(m);
}

/* Escapes a label value: backslash, double quote and newline. */
static void
metrics_escape(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

/* Renders a NULL-terminated name/value list as a="x",b="y". */
static char *
metrics_labels(const char *const *labels)
{
	struct evbuffer *b = evbuffer_new();
	size_t i, len;
	char *s;

	if (b == NULL)
		fatalx("metrics_labels: evbuffer_new failed");
	for (i = 0; labels != NULL && labels[i] != NULL; i += 2) {
		evbuffer_add_printf(b, "%s%s=\"", i > 0 ? "," : "", labels[i]);
		metrics_escape(b, labels[i + 1]);
		evbuffer_add(b, "\"", 1);
	}
	len = evbuffer_get_length(b);
	s = xmalloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/*
 * True if series 'labels' (rendered a="x",b="y") holds exactly the values
 * of the name/value list, compared in place: no allocation on the hot
 * path of a repeat increment.
 */
static bool
metrics_same(const char *rendered, const char *const *labels)
{
	const char *p = rendered;
	size_t i, n;

	for (i = 0; labels[i] != NULL; i += 2) {
		if (i > 0 && *p++ != ',')
			return false;
		n = strlen(labels[i]);
		if (strncmp(p, labels[i], n) != 0 || p[n] != '=' ||
		    p[n + 1] != '"')
			return false;
		p += n + 2;
		n = strlen(labels[i + 1]);
		/* values needing escapes never match in place; they are
		 * rare and then simply get their own series lookup below */
		if (strncmp(p, labels[i + 1], n) != 0 || p[n] != '"')
			return false;
		p += n + 1;
	}
	return *p == '\0';
}

static void
metrics_add(struct metrics_family *fam, const char *const *labels)
{
	char *key;
	size_t i;

	for (i = 0; i < fam->n; i++)
		if (metrics_same(fam->series[i].labels, labels)) {
			fam->series[i].value++;
			return;
		}
	key = metrics_labels(labels);
	for (i = 0; i < fam->n; i++)
		if (strcmp(fam->series[i].labels, key) == 0) {
			fam->series[i].value++;
			free(key);
			return;
		}
	fam->series =
	    xreallocarray(fam->series, fam->n + 1, sizeof(*fam->series));
	fam->series[fam->n].labels = key;
	fam->series[fam->n].value = 1;
	fam->n++;
}

void
metrics_count_message(struct metrics *m, enum channel ch, const char *provider,
    const char *sender, const char *outcome)
{
	const char *labels[] = {"channel", channel_to_text(ch), "provider",
	    provider, "sender", sender, "outcome", outcome, NULL};

	metrics_add(&m->fam[METRICS_MESSAGES], labels);
}

void
metrics_count_http(struct metrics *m, const char *route, int status)
{
	char code[16];
	const char *labels[] = {"route", route, "status", code, NULL};

	snprintf(code, sizeof(code), "%d", status);
	metrics_add(&m->fam[METRICS_HTTP], labels);
}

void
metrics_count_email_link(struct metrics *m, const char *action)
{
	const char *labels[] = {"action", action, NULL};

	if (m != NULL)
		metrics_add(&m->fam[METRICS_EMAIL_LINKS], labels);
}

void
metrics_render_family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

void
metrics_render_sample(struct evbuffer *out, const char *name,
    const char *const *labels, double value)
{
	char *l = labels != NULL ? metrics_labels(labels) : NULL;

	/* Whole numbers print exactly; fractions with 9 significant
	 * digits (microsecond timings need no more). */
	char num[64];

	if (value == (double)(int64_t)value)
		snprintf(num, sizeof(num), "%.0f", value);
	else
		snprintf(num, sizeof(num), "%.9g", value);
	if (l != NULL && l[0] != '\0')
		evbuffer_add_printf(out, "%s{%s} %s\n", name, l, num);
	else
		evbuffer_add_printf(out, "%s %s\n", name, num);
	free(l);
}

void
metrics_render_counters(const struct metrics *m, struct evbuffer *out)
{
	const struct metrics_family *fam;
	size_t f, i;

	for (f = 0; f < METRICS_NFAMILIES; f++) {
		fam = &m->fam[f];
		metrics_render_family(out, fam->name, "counter", fam->help);
		for (i = 0; i < fam->n; i++)
			evbuffer_add_printf(out, "%s{%s} %llu\n", fam->name,
			    fam->series[i].labels,
			    (unsigned long long)fam->series[i].value);
	}
}
