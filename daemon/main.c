/*
 * main.c - outreachd: arguments, configuration, start-up order, signals,
 * and graceful shutdown.
 *
 * Start-up: config (exit 78 on any error) -> detach unless -f -> log ->
 * state directory -> store (lock, migrate, recover messages a dead
 * process left in 'sending') -> API token -> adapters and dispatcher ->
 * HTTP -> loop. SIGTERM/SIGINT stop accepting, let in-flight sends finish
 * within [daemon] shutdown_timeout, return the rest to the queue, commit
 * and exit 0; a second signal shortens the wait to nothing. SIGHUP reopens
 * the log file.
 *
 * Files: the daemon runs with umask 077, so everything it creates (the
 * database and its -wal and -shm, the token, the outboxes) is 0600 and
 * its directories 0700; they hold members' numbers and addresses. A
 * state directory that others may enter, or a data file from an older
 * install that others may read, earns a warning at start.
 */
#include "autoconf.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <curl/curl.h>
#include <event2/thread.h>
#include <openssl/rand.h>

#include "alerts.h"
#include "api.h"
#include "compat.h"
#include "config.h"
#include "conversations.h"
#include "dispatch.h"
#include "email_links.h"
#include "events.h"
#include "fileutil.h"
#include "http.h"
#include "httpclient.h"
#include "import.h"
#include "inbound.h"
#include "log.h"
#include "members.h"
#include "metrics.h"
#include "notify.h"
#include "queue.h"
#include "simulator.h"
#include "staff.h"
#include "store.h"
#include "ui.h"
#include "webhooks.h"
#include "xmalloc.h"

#define MAIN_EX_USAGE 64 /* sysexits.h */
/*
 * glibc gives the top of the heap back to the kernel once 128 KiB are
 * free there, and serves allocations over 128 KiB with mmap. SQLite
 * allocates and frees page caches for every ephemeral table, so under
 * load both thresholds were crossed on nearly every transaction: brk and
 * munmap calls, page faults and TLB shootdowns took half the CPU (perf,
 * 64 API clients). Keeping freed memory in the process removes that.
 */
#define MAIN_TRIM_THRESHOLD (64 * 1024 * 1024)
#define MAIN_MMAP_THRESHOLD (32 * 1024 * 1024)
#define MAIN_TOKEN_BYTES    32
/*
 * Descriptors kept free of HTTP connections: the store (database, WAL,
 * shared memory, the syncer's WAL handle), the log, the listener, the
 * connections accepted in one go past the cap (the listen backlog,
 * 128), SMTP sessions and imports, with room to spare. The HTTP client's
 * connections come on top.
 */
#define MAIN_FD_RESERVE 256

struct daemon_state {
	struct config *cfg;
	struct event_base *base;
	struct store *st;
	struct metrics *metrics;
	struct dispatch *dispatch;
	struct http_server *http;
	struct httpc *httpc;
	struct api *api;
	struct webhooks *webhooks;
	struct inbound *inbound;
	struct members *members;
	struct imports *imports;
	struct email_links *links;
	struct alerts *alerts;
	struct conversations *conversations;
	struct staff *staff;
	struct ui *ui;
	struct simulator *sim;
	struct events *events;
	struct notify *notify;
	char *token;
	char *url;	/* http://ADDR:PORT of the listener, once bound */
	char *url_file; /* VAR/outreachd.url, once written */
	struct event *sig_term, *sig_int, *sig_hup;
	bool stopping;
};

static struct event_base *main_base_new(void);
static void main_usage(FILE *);
static const char *main_default_config(void);
static void main_on_config_warning(void *, const char *);
static char *main_load_token(const struct config *);
static char *main_new_token(const struct config *, bool);
static void main_check_modes(const struct config *);
static unsigned main_max_connections(const struct config *);
static void main_on_signal(evutil_socket_t, short, void *);
static void main_on_stopped(void *);
static int main_run(struct daemon_state *);
static int main_store_open(struct daemon_state *);
static const char *main_store_name(const struct config *);
static void main_alert_metrics(void *, struct evbuffer *);
static void main_on_listening(struct daemon_state *, unsigned);
static void main_announce(struct daemon_state *, unsigned);
static void main_announce_web(struct daemon_state *);

static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: outreachd [-fv] [-c file] [-T subsystems] [--check-config]\n"
	    "\n"
	    "outreachd is an SMS and email outreach gateway: it keeps a durable\n"
	    "message queue in SQLite (or, for several nodes sharing it, in\n"
	    "PostgreSQL: [store] backend), sends through provider adapters at\n"
	    "each sender's pace, and serves a JSON API, the staff web page,\n"
	    "/healthz and /metrics.\n"
	    "\n"
	    "options:\n"
	    "  -c, --config FILE   configuration file (default: %s)\n"
	    "  -f, --foreground    do not detach; log to stderr unless the\n"
	    "                      config says otherwise\n"
	    "      --check-config  validate the configuration and every\n"
	    "                      adapter section, then exit (0 = valid,\n"
	    "                      78 = invalid, with FILE:LINE: reason)\n"
	    "  -T, --trace LIST    trace subsystems: store, dispatch, http,\n"
	    "                      smtp, adapter, or all (comma-separated)\n"
	    "  -v, --verbose       log at debug level\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "\n"
	    "signals: TERM/INT = graceful stop (in-flight sends finish or go\n"
	    "back to the queue within shutdown_timeout), HUP = reopen log file.\n"
	    "exit status: 0 ok, 1 runtime error, 64 usage, 78 configuration.\n"
	    "See outreachd(8) and the commented etc/outreachd.conf.\n",
	    main_default_config());
}

/*
 * etc/outreachd.conf of the source tree when run from it (the README's
 * quick start), else the installed one.
 */
static const char *
main_default_config(void)
{
	if (access("etc/outreachd.conf", R_OK) == 0 &&
	    access("daemon/main.c", R_OK) == 0)
		return "etc/outreachd.conf";
	return OD_SYSCONFDIR "/outreachd.conf";
}

static void
main_on_config_warning(void *arg, const char *text)
{
	(void)arg;
	log_warnx("config_warning %s", text);
}

/*
 * The API token: [http] api_token if set, else the token file; a missing
 * file is created with a fresh random token, readable by the owner only.
 * An empty file (an older version's write lost to a power failure) never
 * gave anyone a token, so it is replaced.
 */
static char *
main_load_token(const struct config *cfg)
{
	char hex[2 * MAIN_TOKEN_BYTES + 2];
	ssize_t n;
	int fd;

	if (cfg->api_token != NULL)
		return xstrdup(cfg->api_token);
	if ((fd = open(cfg->api_token_file, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, hex, sizeof(hex) - 1);
		close(fd);
		if (n < 0)
			fatal("api_token file=%s", cfg->api_token_file);
		hex[n] = '\0';
		hex[strcspn(hex, "\r\n")] = '\0';
		if (hex[0] != '\0')
			return xstrdup(hex);
		log_warnx("api_token_empty file=%s action=\"writing a new "
			  "token\"",
		    cfg->api_token_file);
		return main_new_token(cfg, false);
	}
	if (errno != ENOENT)
		fatal("api_token file=%s", cfg->api_token_file);
	return main_new_token(cfg, true);
}

/*
 * Writes a fresh random token to the token file, durably: it exists with
 * all its bytes or not at all, also after a power loss. 'excl': the file
 * must not exist yet (else it replaces an empty one).
 */
static char *
main_new_token(const struct config *cfg, bool excl)
{
	unsigned char raw[MAIN_TOKEN_BYTES];
	char hex[2 * MAIN_TOKEN_BYTES + 2], err[512];
	size_t i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		fatalx("api_token: no randomness");
	for (i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * MAIN_TOKEN_BYTES] = '\n';
	if (fileutil_publish(cfg->api_token_file, hex, sizeof(hex) - 1,
		&(struct fileutil_create){.mode = 0600, .excl = excl}, err,
		sizeof(err)) == -1)
		fatalx("api_token file=%s error=\"%s\"", cfg->api_token_file,
		    err);
	hex[2 * MAIN_TOKEN_BYTES] = '\0';
	log_info("api_token_created file=%s", cfg->api_token_file);
	return xstrdup(hex);
}

/*
 * Warns about a state directory that others may enter and about data
 * files that others may read: those hold every member's number and
 * address. Nothing is changed; the hint says what to run.
 */
static void
main_check_modes(const struct config *cfg)
{
	struct stat sb;
	char *path[4];
	size_t i;

	if (stat(cfg->var_dir, &sb) == 0 && (sb.st_mode & S_IRWXO) != 0)
		log_warnx("var_dir_open path=%s mode=%04o hint=\"chmod 700 "
			  "%s: it holds members' numbers and addresses\"",
		    cfg->var_dir, (unsigned)(sb.st_mode & 07777), cfg->var_dir);
	path[0] = xstrdup(cfg->db_path);
	path[1] = xasprintf("%s-wal", cfg->db_path);
	path[2] = xasprintf("%s-shm", cfg->db_path);
	path[3] = xstrdup(cfg->api_token_file);
	for (i = 0; i < sizeof(path) / sizeof(*path); i++) {
		if (stat(path[i], &sb) == 0 &&
		    (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0)
			log_warnx("data_file_readable path=%s mode=%04o "
				  "hint=\"chmod 600 %s\"",
			    path[i], (unsigned)(sb.st_mode & 07777), path[i]);
		free(path[i]);
	}
}

/*
 * [http] max_connections, fitted to the descriptor limit: the soft limit
 * is raised (up to the hard one) to hold the connections plus a reserve;
 * if it cannot be, fewer connections are allowed - with a warning when
 * the number was configured, quietly for the default.
 */
static unsigned
main_max_connections(const struct config *cfg)
{
	unsigned want = cfg->max_connections != 0
	    ? cfg->max_connections
	    : HTTP_DEFAULT_MAX_CONNECTIONS;
	rlim_t reserve = MAIN_FD_RESERVE + (rlim_t)cfg->client_max_total;
	rlim_t need = (rlim_t)want + reserve;
	struct rlimit rl;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= need)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need
		    ? need
		    : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need)
			return want;
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	fit = rl.rlim_cur > reserve + 1 ? (unsigned)(rl.rlim_cur - reserve) : 1;
	if (cfg->max_connections != 0)
		log_warnx("http_max_connections_lowered configured=%u used=%u "
			  "nofile=%llu hint=\"raise the descriptor limit "
			  "(LimitNOFILE=, ulimit -n)\"",
		    want, fit, (unsigned long long)rl.rlim_cur);
	else
		log_info("http_max_connections_lowered default=%u used=%u "
			 "nofile=%llu",
		    want, fit, (unsigned long long)rl.rlim_cur);
	return fit;
}

static void
main_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_state *ds = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_reopen();
		log_info("log_reopened");
		return;
	}
	if (ds->stopping) {
		log_info("shutdown_forced signal=%d", (int)sig);
		dispatch_shutdown(ds->dispatch, 0, main_on_stopped, ds);
		return;
	}
	ds->stopping = true;
	log_info("shutdown_begin signal=%d timeout_ms=%u", (int)sig,
	    ds->cfg->shutdown_timeout_ms);
	http_stop_listening(ds->http);
	api_set_stopping(ds->api);
	events_stop(ds->events);
	notify_stop(ds->notify);
	if (ds->alerts != NULL)
		alerts_stop(ds->alerts);
	dispatch_shutdown(ds->dispatch, ds->cfg->shutdown_timeout_ms,
	    main_on_stopped, ds);
}

/*
 * Nothing is in flight any more: commit and leave the loop. On
 * PostgreSQL the commit's answer needs the loop itself, so the last
 * groups are flushed once the loop is left (main_cleanup()); the grace
 * usually sees them answered already.
 */
static void
main_on_stopped(void *arg)
{
	struct daemon_state *ds = arg;
	struct timeval grace = {0, 200000}; /* lets replies drain */
	char err[256];

	if (store_backend(ds->st) == STORE_SQLITE &&
	    store_flush(ds->st, err, sizeof(err)) == -1)
		log_error("shutdown_commit_failed error=\"%s\"", err);
	event_base_loopexit(ds->base, &grace);
}

/* The shared client for HTTP SMS providers, from [http_client]. */
static struct httpc *
main_httpc_new(struct daemon_state *ds, char *err, size_t errlen)
{
	struct httpc_config hc = {
	    .connect_timeout_ms = ds->cfg->client_connect_timeout_ms,
	    .timeout_ms = ds->cfg->client_timeout_ms,
	    .max_per_host = ds->cfg->client_max_per_host,
	    .max_total = ds->cfg->client_max_total,
	    .ca_file = ds->cfg->client_ca_file,
	};

	return httpc_new(ds->base, &hc, err, errlen);
}

static struct webhooks *
main_webhooks_new(struct daemon_state *ds)
{
	struct webhooks_deps wd = {
	    .st = ds->st,
	    .dispatch = ds->dispatch,
	    .inbound = ds->inbound,
	    .metrics = ds->metrics,
	    .cfg = ds->cfg,
	};

	return webhooks_new(ds->http, &wd);
}

/*
 * The modules behind the API and the webhooks, after the API itself:
 * keyword routing (which stores the config's lists), email links, the
 * members API and imports (on PostgreSQL their _pg.c halves where they
 * have one). 0, or -1 with the reason in err.
 */
static int
main_modules_new(struct daemon_state *ds, char *err, size_t errlen)
{
	struct inbound_deps id = {.st = ds->st,
	    .dispatch = ds->dispatch,
	    .cfg = ds->cfg};
	struct email_links_deps ld = {.st = ds->st,
	    .dispatch = ds->dispatch,
	    .metrics = ds->metrics,
	    .cfg = ds->cfg,
	    .base_url = ds->cfg->public_url != NULL ? NULL : ds->url};
	struct members_deps md = {.st = ds->st,
	    .api = ds->api,
	    .dispatch = ds->dispatch,
	    .cfg = ds->cfg};
	struct imports_deps imd = {.st = ds->st,
	    .api = ds->api,
	    .cfg = ds->cfg};
	struct alerts_deps ad = {.base = ds->base,
	    .st = ds->st,
	    .dispatch = ds->dispatch,
	    .api = ds->api,
	    .cfg = ds->cfg};
	struct conversations_deps cd = {.st = ds->st,
	    .dispatch = ds->dispatch,
	    .api = ds->api,
	    .cfg = ds->cfg};

	bool pg = store_backend(ds->st) == STORE_POSTGRESQL;

	/* first: staff #1 holds the daemon's token before anything runs */
	if ((ds->staff = staff_new(&(struct staff_deps){.base = ds->base,
				       .srv = ds->http,
				       .api = ds->api,
				       .st = ds->st,
				       .cfg = ds->cfg,
				       .token = ds->token},
		 err, errlen)) == NULL)
		return -1;
	api_set_staff(ds->api, ds->staff);
	ds->events = events_new(&(struct events_deps){.base = ds->base,
	    .srv = ds->http,
	    .api = ds->api,
	    .st = ds->st});
	ad.events = ds->events;
	id.events = ds->events;
	cd.events = ds->events;
	if ((ds->inbound = inbound_new(&id, err, errlen)) == NULL ||
	    (ds->links = email_links_new(ds->http, &ld, err, errlen)) == NULL)
		return -1;
	dispatch_set_email_links(ds->dispatch, ds->links);
	/* on either store: on PostgreSQL its own engine and routes
	 * (alerts_pg.c) */
	ds->alerts = alerts_new(ds->http, &ad);
	md.links = ds->links;
	/* on either store: on PostgreSQL through members_pg.c, lists_pg.c */
	ds->members = members_new(ds->http, &md);
	ds->conversations = conversations_new(ds->http, &cd);
	/* the staff page: its API is served on either store */
	if ((ds->ui = ui_new(ds->http, &(struct ui_deps){.cfg = ds->cfg}, err,
		 errlen)) == NULL)
		return -1;
	/* the phone simulator's routes: on either store */
	ds->sim = simulator_new(ds->http,
	    &(struct simulator_deps){.st = ds->st,
		.api = ds->api,
		.cfg = ds->cfg});
	/* on either store: on PostgreSQL one node queues each digest */
	ds->notify = notify_new(&(struct notify_deps){.base = ds->base,
	    .st = ds->st,
	    .dispatch = ds->dispatch,
	    .cfg = ds->cfg,
	    .base_url =
		ds->cfg->public_url != NULL ? ds->cfg->public_url : ds->url});
	/* on either store: on PostgreSQL as rows (import_pg.c) */
	ds->imports = imports_new(ds->http, &imd);
	/* the live alerts' lines are read from SQLite as /metrics is
	 * written: a PostgreSQL node leaves them out (doc/postgresql.md) */
	if (pg)
		return 0;
	api_add_metrics(ds->api, main_alert_metrics, ds->alerts);
	return 0;
}

/*
 * The listener is bound to 'port': its URL, ds->url (a wildcard address
 * becomes the loopback one, which reaches it from this host). Without
 * [http] public_url, email links use it: they work on this host.
 */
static void
main_on_listening(struct daemon_state *ds, unsigned port)
{
	const char *addr = ds->cfg->listen_addr;
	bool v6 = strchr(addr, ':') != NULL;

	if (strcmp(addr, "0.0.0.0") == 0)
		addr = "127.0.0.1";
	else if (strcmp(addr, "::") == 0)
		addr = "::1";
	ds->url = xasprintf("http://%s%s%s:%u", v6 ? "[" : "", addr,
	    v6 ? "]" : "", port);
}

/*
 * Once everything is set up, the signal handlers too (scripts and tests
 * act on this line): the URL goes to the log and to VAR/outreachd.url,
 * where outreachctl finds it; a listener others reach without [http]
 * public_url earns a warning, since email links point at it.
 */
static void
main_announce(struct daemon_state *ds, unsigned port)
{
	const char *addr = ds->cfg->listen_addr;
	bool loopback =
	    strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
	char err[512], *text;

	log_info("http_listening addr=%s port=%u url=%s/", addr, port, ds->url);
	if (ds->cfg->public_url == NULL && !loopback)
		log_warnx("public_url_unset url=%s/ reason=\"links in emails "
			  "point at this address, which may not be the one "
			  "people reach: set [http] public_url\"",
		    ds->url);
	main_announce_web(ds);
	text = xasprintf("%s/\n", ds->url);
	ds->url_file = xasprintf("%s/%s", ds->cfg->var_dir, CONFIG_URL_FILE);
	if (fileutil_publish(ds->url_file, text, strlen(text),
		&(struct fileutil_create){.mode = 0644, .excl = false}, err,
		sizeof(err)) == -1) {
		/* outreachctl then needs -u: worth a warning, not a stop */
		log_warnx("url_file_failed path=%s error=\"%s\"", ds->url_file,
		    err);
		free(ds->url_file);
		ds->url_file = NULL;
	}
	free(text);
}

/*
 * The start-up banner's web lines: where the staff page and the phone
 * simulator are, and how to log in.
 */
static void
main_announce_web(struct daemon_state *ds)
{
	const struct config_sender *sim = simulator_sender(ds->cfg);

	if (store_backend(ds->st) == STORE_POSTGRESQL)
		log_info(
		    "store_postgresql node=%s serves=\"messages, "
		    "delivery reports, inbound STOP/START/HELP, list "
		    "keywords and conversation messages, unsubscribe links, "
		    "API tokens, alerts, conversations, members, lists, "
		    "imports, exports, the staff page, the phone "
		    "simulator\"",
		    ds->cfg->store_node);
	if (ds->cfg->api_token != NULL)
		log_info("web_inbox url=%s/ui/ login=\"the token of [http] "
			 "api_token, or one from outreachctl token create\"",
		    ds->url);
	else
		log_info("web_inbox url=%s/ui/ login=\"the token in %s, or "
			 "one from outreachctl token create\"",
		    ds->url, ds->cfg->api_token_file);
	if (sim != NULL)
		log_info("web_simulator url=%s/ui/simulator sender=%s to=%s",
		    ds->url, sim->name, sim->from != NULL ? sim->from : "-");
}

/* The store, as log lines name it: the SQLite file or the node (a URL
 * may hold a password). */
static const char *
main_store_name(const struct config *cfg)
{
	static char name[128];

	if (strcmp(cfg->store_backend, "postgresql") != 0)
		return cfg->db_path;
	snprintf(name, sizeof(name), "postgresql:node=%s", cfg->store_node);
	return name;
}

/*
 * Opens the store of [store], recovers what a previous life left in
 * sending (SQLite here; on PostgreSQL the node's start does it, for this
 * node's own claims only) and attaches it to the loop. 0, or -1 logged.
 */
static int
main_store_open(struct daemon_state *ds)
{
	const struct config *cfg = ds->cfg;
	bool pg = strcmp(cfg->store_backend, "postgresql") == 0;
	struct store_stats ss;
	char err[1024];
	ssize_t n = 0;

	ds->st = store_open_config(&(struct store_config){.backend = pg
					   ? STORE_POSTGRESQL
					   : STORE_SQLITE,
				       .path = cfg->db_path,
				       .url = cfg->store_url,
				       .node = cfg->store_node,
				       .base = ds->base},
	    err, sizeof(err));
	if (ds->st == NULL) {
		log_error("store_open_failed error=\"%s\"", err);
		return -1;
	}
	if ((!pg &&
		(n = queue_recover(ds->st, msg_now_ms(), err, sizeof(err))) ==
		    -1) ||
	    store_flush(ds->st, err, sizeof(err)) == -1) {
		log_error("store_recover_failed error=\"%s\"", err);
		return -1;
	}
	log_debug("store_opened db=%s schema_version=%d", main_store_name(cfg),
	    store_schema_version(ds->st));
	if (n > 0)
		log_info(
		    "queue_recovered count=%zd reason=\"left in sending by "
		    "a previous process\"",
		    n);
	store_attach(ds->st, ds->base, cfg->commit_delay_ms);
	store_get_stats(ds->st, &ss);
	if (!pg && !ss.pipelined)
		log_warnx(
		    "store_sync_inline reason=\"cannot start the WAL "
		    "syncer; COMMIT fsyncs on the loop thread (slower)\"");
	return 0;
}

/* Everything after the configuration: returns the exit status. */
static int
main_run(struct daemon_state *ds)
{
	struct api_deps deps = {0};
	char err[1024];
	unsigned port;

	if (mkdir(ds->cfg->var_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("var_dir path=%s", ds->cfg->var_dir);
		return 1;
	}
	main_check_modes(ds->cfg);
	if (main_store_open(ds) == -1)
		return 1;
	ds->token = main_load_token(ds->cfg);
	ds->metrics = metrics_new();
	if ((ds->httpc = main_httpc_new(ds, err, sizeof(err))) == NULL) {
		log_error("http_client_failed error=\"%s\"", err);
		return 1;
	}
	if ((ds->dispatch =
		    dispatch_new(&(struct dispatch_deps){.base = ds->base,
				     .st = ds->st,
				     .cfg = ds->cfg,
				     .metrics = ds->metrics,
				     .httpc = ds->httpc},
			err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return CONFIG_EX_CONFIG;
	}
	ds->http = http_new(ds->base, ds->cfg->max_body, ds->metrics);
	http_set_limits(ds->http, main_max_connections(ds->cfg),
	    ds->cfg->request_timeout_ms);
	deps.st = ds->st;
	deps.dispatch = ds->dispatch;
	deps.metrics = ds->metrics;
	deps.cfg = ds->cfg;
	deps.token = ds->token;
	deps.started_at = msg_now_ms();
	ds->api = api_new(ds->http, &deps);
	/* bound before the modules, which need the real port (email links);
	 * nothing is served before the loop runs */
	if (http_listen(ds->http, ds->cfg->listen_addr, ds->cfg->listen_port,
		&port, err, sizeof(err)) == -1) {
		log_error("http_listen_failed error=\"%s\"", err);
		return 1;
	}
	main_on_listening(ds, port);
	if (main_modules_new(ds, err, sizeof(err)) == -1) {
		log_error("start_failed error=\"%s\"", err);
		return 1;
	}
	ds->webhooks = main_webhooks_new(ds);
	ds->sig_term = evsignal_new(ds->base, SIGTERM, main_on_signal, ds);
	ds->sig_int = evsignal_new(ds->base, SIGINT, main_on_signal, ds);
	ds->sig_hup = evsignal_new(ds->base, SIGHUP, main_on_signal, ds);
	if (ds->sig_term == NULL || ds->sig_int == NULL ||
	    ds->sig_hup == NULL || evsignal_add(ds->sig_term, NULL) == -1 ||
	    evsignal_add(ds->sig_int, NULL) == -1 ||
	    evsignal_add(ds->sig_hup, NULL) == -1)
		fatalx("cannot install signal handlers");
	main_announce(ds, port);
	dispatch_start(ds->dispatch);
	if (ds->alerts != NULL)
		alerts_start(ds->alerts);
	log_info("outreachd_ready version=%s pid=%ld db=%s", PACKAGE_VERSION,
	    (long)getpid(), main_store_name(ds->cfg));
	if (event_base_dispatch(ds->base) == -1) {
		log_error("event_loop_failed");
		return 1;
	}
	log_info("shutdown_complete");
	return 0;
}

/* /metrics: the live alerts' lines (api_add_metrics()). */
static void
main_alert_metrics(void *arg, struct evbuffer *out)
{
	alerts_metrics(arg, out);
}

/*
 * Frees everything. Pending commit callbacks (a webhook or API reply, a
 * claim) run first, while every module they touch is still alive; only
 * then go the HTTP server, the adapters and the store.
 */
static void
main_cleanup(struct daemon_state *ds)
{
	char err[256];

	if (ds->st != NULL && store_flush(ds->st, err, sizeof(err)) == -1)
		log_error("shutdown_commit_failed error=\"%s\"", err);
	if (ds->sig_term != NULL)
		event_free(ds->sig_term);
	if (ds->sig_int != NULL)
		event_free(ds->sig_int);
	if (ds->sig_hup != NULL)
		event_free(ds->sig_hup);
	conversations_free(ds->conversations);
	events_free(ds->events);
	notify_free(ds->notify);
	staff_free(ds->staff);
	http_free(ds->http);
	api_free(ds->api);
	alerts_free(ds->alerts);
	ui_free(ds->ui);
	simulator_free(ds->sim);
	webhooks_free(ds->webhooks);
	imports_free(ds->imports);
	members_free(ds->members);
	email_links_free(ds->links);
	inbound_free(ds->inbound);
	dispatch_free(ds->dispatch);
	httpc_free(ds->httpc);
	store_close(ds->st);
	metrics_free(ds->metrics);
	if (ds->base != NULL)
		event_base_free(ds->base);
	free(ds->token);
	/* a stale address would send outreachctl to whoever binds it next */
	if (ds->url_file != NULL && unlink(ds->url_file) == -1 &&
	    errno != ENOENT)
		log_warn("url_file_unlink path=%s", ds->url_file);
	free(ds->url_file);
	free(ds->url);
	config_free(ds->cfg);
}

/* What the command line asked for. */
struct main_opts {
	const char *conf;
	bool foreground;
	bool check;
	bool verbose;
	unsigned trace;
};

/*
 * Parses the command line into o. Returns -1 to go on, or the exit status
 * when the run ends here (--help, --version, a usage error).
 */
static int
main_parse_args(int argc, char *argv[], struct main_opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"check-config", no_argument, NULL, 'C'},
	    {"trace", required_argument, NULL, 'T'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char err[256];
	int ch;

	while (
	    (ch = getopt_long(argc, argv, "c:fT:vVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'C':
			o->check = true;
			break;
		case 'T':
			if (log_trace_parse(optarg, &o->trace, err,
				sizeof(err)) == -1) {
				fprintf(stderr, "outreachd: -T: %s\n", err);
				return MAIN_EX_USAGE;
			}
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
			printf("outreachd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return MAIN_EX_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "outreachd: unexpected argument '%s'\n",
		    argv[optind]);
		main_usage(stderr);
		return MAIN_EX_USAGE;
	}
	return -1;
}

/*
 * The event loop. With epoll, interest changes wait in libevent's change
 * list until the next epoll_wait() and cancel out there: evhttp turns
 * reading off and writing on for every reply, then the reverse, which
 * is four epoll_ctl(2) calls a request without the list and two with
 * it. The list is unsafe only for descriptors cloned with dup(2), which
 * nothing registered with the loop is.
 */
static struct event_base *
main_base_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (ec == NULL)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

int
main(int argc, char *argv[])
{
	struct main_opts o = {0};
	struct daemon_state ds = {0};
	const char *conf;
	char err[1024];
	int rc;

	if ((rc = main_parse_args(argc, argv, &o)) != -1)
		return rc;
	/* Data files 0600, directories 0700: they hold personal data. */
	umask(077);
	conf = o.conf;
	if (conf == NULL)
		conf = main_default_config();
	ds.cfg =
	    config_load(conf, main_on_config_warning, NULL, err, sizeof(err));
	if (ds.cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return CONFIG_EX_CONFIG;
	}
	if (o.check) {
		/* Adapters validate their own sections; no I/O happens. */
		ds.dispatch = dispatch_new(
		    &(struct dispatch_deps){.cfg = ds.cfg}, err, sizeof(err));
		rc = ds.dispatch != NULL ? 0 : CONFIG_EX_CONFIG;
		if (rc == 0)
			inbound_check_config(ds.cfg, main_on_config_warning,
			    NULL);
		if (rc == 0)
			printf("%s: configuration OK\n", conf);
		else
			fprintf(stderr, "%s\n", err);
		main_cleanup(&ds);
		return rc;
	}
	if (!o.foreground) {
		if (daemon(1, 0) == -1) {
			fprintf(stderr, "outreachd: daemon: %s\n",
			    strerror(errno));
			return 1;
		}
		if (strcmp(ds.cfg->log_target, "stderr") == 0) {
			free(ds.cfg->log_target);
			ds.cfg->log_target = xstrdup("syslog");
		}
	}
	if (log_open(ds.cfg->log_target,
		o.verbose ? LOG_LVL_DEBUG : ds.cfg->log_level,
		"outreachd") == -1) {
		fprintf(stderr, "outreachd: cannot open log %s: %s\n",
		    ds.cfg->log_target, strerror(errno));
		config_free(ds.cfg);
		return 1;
	}
	log_set_trace(o.trace);
	signal(SIGPIPE, SIG_IGN);
	mallopt(M_TRIM_THRESHOLD, MAIN_TRIM_THRESHOLD);
	mallopt(M_MMAP_THRESHOLD, MAIN_MMAP_THRESHOLD);
	/* Before any thread starts: curl's global state is not thread-safe
	 * to set up. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("cannot initialise libcurl");
	if (evthread_use_pthreads() == -1 ||
	    (ds.base = main_base_new()) == NULL)
		fatalx("cannot create the event loop");
	rc = main_run(&ds);
	main_cleanup(&ds);
	curl_global_cleanup();
	log_close();
	return rc;
}
