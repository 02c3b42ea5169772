/*
 * check_config.c - unit tests of config.c: values landing in struct
 * config, defaults, path resolution, ${ENV}, one test per kind of error
 * (each asserting the exact "FILE:LINE: message"), the warning about
 * readable secrets, and the config_section_*() getters adapters use.
 *
 * Fixture files live in tests/fixtures/config/; tests that need a file
 * mode, a working directory or a generated line write into a fresh
 * temporary directory instead.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "config.h"
#include "log.h"

#define CONFIG_TEST_FIXTURES  OD_SRCDIR "/tests/fixtures/config"
#define CONFIG_TEST_MAX_FILES 8

/* What the warn callback saw. */
struct config_test_warn {
	int calls;
	char text[1024];
};

static char config_test_dir[64]; /* "/tmp/od-check-config-XXXXXX" */
static char config_test_files[CONFIG_TEST_MAX_FILES][PATH_MAX];
static int config_test_nfiles;

static void config_test_setup(void);
static void config_test_teardown(void);
static const char *config_test_write(const char *name, const char *text,
    mode_t mode);
static const char *config_test_fixture(const char *name);
static void config_test_warn_cb(void *arg, const char *text);
static void config_test_expect_error(const char *path, int line,
    const char *msg);
static void config_test_expect_text_error(const char *text, int line,
    const char *msg);
static void config_test_line(char *buf, size_t size, size_t n, const char *eol);

static void
config_test_setup(void)
{
	strcpy(config_test_dir, "/tmp/od-check-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(config_test_dir));
	config_test_nfiles = 0;
}

static void
config_test_teardown(void)
{
	int i;

	for (i = 0; i < config_test_nfiles; i++)
		unlink(config_test_files[i]);
	rmdir(config_test_dir);
}

/* Writes text to NAME in the test directory with 'mode'; returns the path. */
static const char *
config_test_write(const char *name, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "%s/%s", config_test_dir, name);
	for (i = 0; i < config_test_nfiles; i++)
		if (strcmp(config_test_files[i], path) == 0)
			break;
	if (i == config_test_nfiles) {
		ck_assert_int_lt(config_test_nfiles, CONFIG_TEST_MAX_FILES);
		strcpy(config_test_files[config_test_nfiles++], path);
	}
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(config_test_files[i], mode), 0);
	return config_test_files[i];
}

static const char *
config_test_fixture(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", CONFIG_TEST_FIXTURES, name);
	return path;
}

static void
config_test_warn_cb(void *arg, const char *text)
{
	struct config_test_warn *w = arg;

	w->calls++;
	snprintf(w->text, sizeof(w->text), "%s", text);
}

/* Loading 'path' fails with exactly "path:line: msg". */
static void
config_test_expect_error(const char *path, int line, const char *msg)
{
	char err[512], want[1024];
	struct config *cfg;

	err[0] = '\0';
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", path, msg);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, want);
}

static void
config_test_expect_text_error(const char *text, int line, const char *msg)
{
	config_test_expect_error(config_test_write("t.conf", text, 0600), line,
	    msg);
}

START_TEST(test_config_full_file)
{
	const struct config_sender *s;
	struct config *cfg;
	char err[512] = "";

	ck_assert_int_eq(setenv("OD_TEST_TOKEN", "tok-from-env-0123", 1), 0);
	cfg = config_load(config_test_fixture("full.conf"), NULL, NULL, err,
	    sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->file, config_test_fixture("full.conf"));
	ck_assert_str_eq(cfg->var_dir, "/srv/outreachd");
	ck_assert_str_eq(cfg->log_target, "/var/log/outreachd/outreachd.log");
	ck_assert_int_eq(cfg->log_level, LOG_LVL_DEBUG);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 30000);
	ck_assert_str_eq(cfg->listen_addr, "::1");
	ck_assert_uint_eq(cfg->listen_port, 9090);
	ck_assert_uint_eq(cfg->max_body, 512 * 1024);
	ck_assert_str_eq(cfg->api_token, "tok-from-env-0123");
	ck_assert_str_eq(cfg->api_token_file, "/etc/outreachd/api.token");
	ck_assert_str_eq(cfg->public_url, "https://outreach.example.org/");
	ck_assert_str_eq(cfg->db_path, "/srv/db/outreach.db");
	ck_assert_uint_eq(cfg->commit_delay_ms, 5);
	ck_assert_uint_eq(cfg->batch, 100);
	ck_assert_uint_eq(cfg->max_in_flight, 64);
	ck_assert_uint_eq(cfg->lease_ms, 120000);
	ck_assert_uint_eq(cfg->tick_ms, 50);
	ck_assert_uint_eq(cfg->retry_base_ms, 2000);
	ck_assert_uint_eq(cfg->retry_max_ms, 7200000);
	ck_assert_uint_eq(cfg->validity_s, 43200);
	ck_assert_str_eq(cfg->default_sender, "bulk");
	ck_assert_str_eq(cfg->email_adapter, "smtp");
	ck_assert_ptr_nonnull(cfg->email_section);
	ck_assert_str_eq(cfg->email_section->name, "email");
	ck_assert_str_eq(config_section_get(cfg->email_section, "from"),
	    "Outreach Team <outreach@example.org>");
	ck_assert_uint_eq(cfg->nsections, 9);
	ck_assert_ptr_nonnull(cfg->smtp_section);

	ck_assert_uint_eq(cfg->nsenders, 2);
	s = &cfg->senders[0];
	ck_assert_str_eq(s->name, "console");
	ck_assert_str_eq(s->provider, "console");
	ck_assert_str_eq(s->from, "+15550100000");
	ck_assert_double_eq(s->rate, 2.5);
	ck_assert_uint_eq(s->burst, 3); /* ceil(2.5) */
	ck_assert_str_eq(s->section->name, "sender console");
	ck_assert_str_eq(s->section->type, "sender");
	ck_assert_str_eq(s->section->label, "console");
	ck_assert_int_eq(s->section->line, 32);
	ck_assert_str_eq(config_section_get(s->section, "delay"), "250ms");
	s = config_sender_lookup(cfg, "bulk");
	ck_assert_ptr_eq(s, &cfg->senders[1]);
	ck_assert_str_eq(s->from, "+15550100001");
	ck_assert_double_eq(s->rate, 10);
	ck_assert_uint_eq(s->burst, 20);
	ck_assert_ptr_null(config_sender_lookup(cfg, "nope"));
	config_free(cfg);
	unsetenv("OD_TEST_TOKEN");
}
END_TEST

START_TEST(test_config_defaults)
{
	struct config *cfg;
	char err[512] = "", cwd[PATH_MAX], want[PATH_MAX + 32];

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	cfg = config_load(config_test_fixture("empty.conf"), NULL, NULL, err,
	    sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	snprintf(want, sizeof(want), "%s/var", cwd);
	ck_assert_str_eq(cfg->var_dir, want);
	ck_assert_str_eq(cfg->log_target, "stderr");
	ck_assert_int_eq(cfg->log_level, LOG_LVL_INFO);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 10000);
	ck_assert_str_eq(cfg->listen_addr, "127.0.0.1");
	ck_assert_uint_eq(cfg->listen_port, 8080);
	ck_assert_uint_eq(cfg->max_body, 1024 * 1024);
	ck_assert_ptr_null(cfg->api_token);
	snprintf(want, sizeof(want), "%s/var/api.token", cwd);
	ck_assert_str_eq(cfg->api_token_file, want);
	ck_assert_ptr_null(cfg->public_url);
	snprintf(want, sizeof(want), "%s/var/outreachd.db", cwd);
	ck_assert_str_eq(cfg->db_path, want);
	ck_assert_uint_eq(cfg->commit_delay_ms, 0);
	ck_assert_uint_eq(cfg->batch, 256);
	ck_assert_uint_eq(cfg->max_in_flight, 512);
	ck_assert_uint_eq(cfg->lease_ms, 60000);
	ck_assert_uint_eq(cfg->tick_ms, 200);
	ck_assert_uint_eq(cfg->retry_base_ms, 1000);
	ck_assert_uint_eq(cfg->retry_max_ms, 3600000);
	ck_assert_uint_eq(cfg->validity_s, 86400);
	ck_assert_str_eq(cfg->email_adapter, "file");
	ck_assert_ptr_null(cfg->email_section);
	ck_assert_uint_eq(cfg->nsenders, 0);
	ck_assert_ptr_null(cfg->default_sender);
	ck_assert_uint_eq(cfg->nsections, 0);
	config_free(cfg);
}
END_TEST

/* The shipped example is also the local default: it must load as is. */
START_TEST(test_config_example_file)
{
	struct config *cfg;
	char err[512] = "", cwd[PATH_MAX], want[PATH_MAX + 32];
	struct config_test_warn w = {0};

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	cfg = config_load(OD_SRCDIR "/etc/outreachd.conf", config_test_warn_cb,
	    &w, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(w.calls, 0);
	snprintf(want, sizeof(want), "%s/var", cwd);
	ck_assert_str_eq(cfg->var_dir, want);
	ck_assert_str_eq(cfg->log_target, "stderr");
	ck_assert_str_eq(cfg->listen_addr, "127.0.0.1");
	ck_assert_uint_eq(cfg->listen_port, 8080);
	ck_assert_ptr_null(cfg->api_token);
	ck_assert_uint_eq(cfg->nsenders, 1);
	ck_assert_str_eq(cfg->senders[0].name, "console");
	ck_assert_str_eq(cfg->senders[0].provider, "console");
	ck_assert_str_eq(cfg->senders[0].from, "+15550100000");
	ck_assert_double_eq(cfg->senders[0].rate, 10);
	ck_assert_uint_eq(cfg->senders[0].burst, 10);
	ck_assert_str_eq(cfg->default_sender, "console");
	ck_assert_str_eq(cfg->email_adapter, "file");
	ck_assert_str_eq(config_section_get(cfg->email_section, "from"),
	    "Outreach Team <outreach@example.org>");
	config_free(cfg);
}
END_TEST

START_TEST(test_config_relative_paths)
{
	const char *path;
	struct config *cfg;
	char err[512] = "", saved[PATH_MAX], here[PATH_MAX], want[2 * PATH_MAX];

	path = config_test_write("rel.conf",
	    "[daemon]\nvar_dir = ./state/\nlog = "
	    "logs/od.log\n[http]\napi_token_file = "
	    "secrets/token\n[store]\npath = db/od.db\n",
	    0600);
	ck_assert_ptr_nonnull(getcwd(saved, sizeof(saved)));
	ck_assert_int_eq(chdir(config_test_dir), 0);
	ck_assert_ptr_nonnull(getcwd(here, sizeof(here)));
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_int_eq(chdir(saved), 0);
	ck_assert_msg(cfg != NULL, "%s", err);
	snprintf(want, sizeof(want), "%s/state", here);
	ck_assert_str_eq(cfg->var_dir, want);
	snprintf(want, sizeof(want), "%s/logs/od.log", here);
	ck_assert_str_eq(cfg->log_target, want);
	snprintf(want, sizeof(want), "%s/secrets/token", here);
	ck_assert_str_eq(cfg->api_token_file, want);
	snprintf(want, sizeof(want), "%s/db/od.db", here);
	ck_assert_str_eq(cfg->db_path, want);
	config_free(cfg);

	/* Derived defaults follow var_dir, wherever it is in the file. */
	path = config_test_write("rel2.conf",
	    "[store]\ncommit_delay = 0\n[daemon]\nvar_dir = /srv/od\n", 0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->db_path, "/srv/od/outreachd.db");
	ck_assert_str_eq(cfg->api_token_file, "/srv/od/api.token");
	config_free(cfg);
}
END_TEST

/* [store]: the backend's keys, each refused with the other backend. */
START_TEST(test_config_store_backend)
{
	const char *path;
	struct config *cfg;
	char err[512] = "";
#ifdef HAVE_LIBPQ
	char host[256];
#endif

	path = config_test_write("store.conf", "[daemon]\n", 0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->store_backend, "sqlite");
	ck_assert_ptr_null(cfg->store_url);
	ck_assert_ptr_null(cfg->store_node);
	config_free(cfg);
	config_test_expect_text_error("[store]\nurl = postgresql:///od\n", 2,
	    "url is for backend = postgresql; this [store] is the SQLite "
	    "file (set backend = postgresql, or remove it)");
	config_test_expect_text_error("[store]\nbackend = sqlite\nnode = a\n",
	    3,
	    "node is for backend = postgresql; this [store] is the SQLite "
	    "file (set backend = postgresql, or remove it)");
	config_test_expect_text_error("[store]\nbackend = mysql\n", 2,
	    "backend = 'mysql' must be sqlite or postgresql");
#ifdef HAVE_LIBPQ
	config_test_expect_text_error("[store]\nbackend = postgresql\n", 2,
	    "backend = postgresql needs url = postgresql://... (the password "
	    "through ${ENV}, e.g. ${OUTREACHD_PG_PASSWORD})");
	config_test_expect_text_error("[store]\nbackend = postgresql\n"
				      "url = postgresql:///od\npath = x.db\n",
	    4,
	    "path is the SQLite file; with backend = postgresql the store "
	    "is url = postgresql://...");
	config_test_expect_text_error("[store]\nbackend = postgresql\n"
				      "url = postgresql:///od\nnode = a/b\n",
	    4,
	    "node name 'a/b' must be 1 to 63 letters, digits, '.', '_' or "
	    "'-' (set [store] node)");
	ck_assert_int_eq(setenv("OD_TEST_PGPASS", "pw", 1), 0);
	path = config_test_write("store.conf",
	    "[store]\nbackend = postgresql\nurl = "
	    "postgresql://od:${OD_TEST_PGPASS}@/od?host=/run/pg\n",
	    0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	unsetenv("OD_TEST_PGPASS");
	ck_assert_str_eq(cfg->store_backend, "postgresql");
	ck_assert_str_eq(cfg->store_url, "postgresql://od:pw@/od?host=/run/pg");
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	ck_assert_str_eq(cfg->store_node, host);
	config_free(cfg);
#else
	config_test_expect_text_error("[store]\nbackend = postgresql\n", 2,
	    "backend = postgresql: this outreachd was built without "
	    "PostgreSQL support (install libpq-dev and run configure again)");
#endif
}
END_TEST

START_TEST(test_config_env_expansion)
{
	const char *path;
	struct config *cfg;
	char err[512] = "";

	ck_assert_int_eq(setenv("OD_TEST_TOKEN", "s3cret-s3cret-s3cret", 1), 0);
	ck_assert_int_eq(setenv("OD_TEST_HOST", "sms.example.org", 1), 0);
	path = config_test_write("env.conf",
	    "[http]\napi_token = ${OD_TEST_TOKEN}\npublic_url = "
	    "https://${OD_TEST_HOST}/hooks/${OD_TEST_TOKEN}\n[sender "
	    "a]\nprovider = console\nfrom = $5 ${OD_TEST_HOST}\n",
	    0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->api_token, "s3cret-s3cret-s3cret");
	ck_assert_str_eq(cfg->public_url,
	    "https://sms.example.org/hooks/s3cret-s3cret-s3cret");
	ck_assert_str_eq(cfg->senders[0].from, "$5 sms.example.org");
	config_free(cfg);
	unsetenv("OD_TEST_TOKEN");
	unsetenv("OD_TEST_HOST");
}
END_TEST

START_TEST(test_config_env_unset)
{
	unsetenv("OD_TEST_UNSET");
	config_test_expect_text_error("[http]\nlisten = 127.0.0.1:1\n\n"
				      "api_token = ${OD_TEST_UNSET}\n",
	    4,
	    "environment variable OD_TEST_UNSET is not set (used by "
	    "'api_token')");
	config_test_expect_text_error("[http]\napi_token = ${OD TEST}\n", 2,
	    "bad ${NAME} reference in 'api_token' (NAME: letters, digits, "
	    "'_')");
	config_test_expect_text_error("[http]\napi_token = ${OD_TEST\n", 2,
	    "bad ${NAME} reference in 'api_token' (NAME: letters, digits, "
	    "'_')");
}
END_TEST

/*
 * The reader drops leading space: indented keys are keys, not
 * continuations of the previous value. A UTF-8 BOM and CRLF line ends
 * (files from Windows editors) are fine too.
 */
START_TEST(test_config_indented_keys)
{
	const char *path;
	struct config *cfg;
	char err[512] = "";

	path = config_test_write("indent.conf",
	    "\xEF\xBB\xBF  [http] ; the server\r\n\tlisten = 127.0.0.1:1234\r\n"
	    "    max_body = 2K\r\n",
	    0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->sections[0].name, "http");
	ck_assert_int_eq(config_section_line(&cfg->sections[0], "max_body"), 3);
	ck_assert_uint_eq(cfg->listen_port, 1234);
	ck_assert_uint_eq(cfg->max_body, 2048);
	config_free(cfg);
}
END_TEST

START_TEST(test_config_err_unknown_section)
{
	config_test_expect_error(
	    config_test_fixture("bad-unknown-section.conf"), 5,
	    "unknown section [htp]");
	config_test_expect_text_error("[daemon]\n[http api]\n", 2,
	    "[http] takes no name (found [http api])");
	config_test_expect_text_error("[daemon]\n\n[sender]\n", 3,
	    "[sender] needs a name: [sender NAME]");
	config_test_expect_text_error("[daemon] junk\n", 1,
	    "text after the section header");
	config_test_expect_text_error("; c\n[ ]\n", 2, "empty section name []");
}
END_TEST

START_TEST(test_config_err_unknown_key)
{
	config_test_expect_error(config_test_fixture("bad-unknown-key.conf"), 3,
	    "unknown key 'lisen' in [http]");
	config_test_expect_text_error("; no section yet\nbatch = 1\n", 2,
	    "key 'batch' is outside any [section]");
}
END_TEST

START_TEST(test_config_err_bad_number)
{
	config_test_expect_error(config_test_fixture("bad-number.conf"), 3,
	    "batch = '12x' is not a whole number");
	config_test_expect_text_error("[dispatch]\nbatch = -1\n", 2,
	    "batch = '-1' is not a whole number");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "rate = fast\n",
	    3, "rate = 'fast' is not a number");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "rate = inf\n",
	    3, "rate = 'inf' is not a number");
}
END_TEST

START_TEST(test_config_err_out_of_range)
{
	config_test_expect_error(config_test_fixture("bad-range.conf"), 4,
	    "batch must be between 1 and 10000");
	config_test_expect_text_error("[dispatch]\nbatch = 99999999999999999999"
				      "\n",
	    2, "batch must be between 1 and 10000");
	config_test_expect_text_error("[dispatch]\ntick = 5ms\n", 2,
	    "tick must be between 10ms and 1m");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "rate = -1\n",
	    3, "rate must be between 0 and 10000");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "burst = 0\n",
	    3, "burst must be between 1 and 100000");
	config_test_expect_text_error("[dispatch]\nretry_base = 2m\n"
				      "retry_max = 90s\n",
	    3, "retry_max (90s) must not be below retry_base (2m)");
	config_test_expect_text_error("[email]\nadapter = sendmail\n", 2,
	    "adapter = 'sendmail' must be file or smtp");
}
END_TEST

START_TEST(test_config_err_bad_duration)
{
	config_test_expect_error(config_test_fixture("bad-duration.conf"), 4,
	    "lease = '5 minutes' is not a duration (a number with an optional "
	    "ms, s, m or h)");
	config_test_expect_text_error("[dispatch]\nvalidity = 1500ms\n", 2,
	    "validity must be whole seconds");
}
END_TEST

START_TEST(test_config_err_bad_size)
{
	config_test_expect_error(config_test_fixture("bad-size.conf"), 3,
	    "max_body = '1T' is not a size (a number with an optional K, M or "
	    "G)");
	config_test_expect_text_error("[http]\nmax_body = 2G\n", 2,
	    "max_body must be between 1K and 1G");
}
END_TEST

START_TEST(test_config_err_bad_listen)
{
	config_test_expect_error(config_test_fixture("bad-listen.conf"), 3,
	    "listen address 'localhost' is not a numeric IPv4 address");
	config_test_expect_text_error("[http]\nlisten = 127.0.0.1:65536\n", 2,
	    "listen port must be between 0 and 65535");
	config_test_expect_text_error("[http]\nlisten = 8080\n", 2,
	    "listen = '8080' is not ADDR:PORT (e.g. 127.0.0.1:8080 or "
	    "[::1]:8080)");
	config_test_expect_text_error("[http]\nlisten = [::1]\n", 2,
	    "listen = '[::1]' is not ADDR:PORT (e.g. 127.0.0.1:8080 or "
	    "[::1]:8080)");
	config_test_expect_text_error("[http]\nlisten = ::1:8080\n", 2,
	    "listen address '::1' is not a numeric IPv4 address (write IPv6 as "
	    "[ADDR]:PORT)");
	config_test_expect_text_error("[http]\nlisten = [::g]:80\n", 2,
	    "listen address '::g' is not a numeric IPv6 address");
}
END_TEST

START_TEST(test_config_listen_forms)
{
	const char *path;
	struct config *cfg;
	char err[512] = "";

	path =
	    config_test_write("l.conf", "[http]\nlisten = 0.0.0.0:0\n", 0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->listen_addr, "0.0.0.0");
	ck_assert_uint_eq(cfg->listen_port, 0);
	config_free(cfg);
	path =
	    config_test_write("l6.conf", "[http]\nlisten = [::]:65535\n", 0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->listen_addr, "::");
	ck_assert_uint_eq(cfg->listen_port, 65535);
	config_free(cfg);
}
END_TEST

START_TEST(test_config_err_bad_level)
{
	config_test_expect_error(config_test_fixture("bad-level.conf"), 3,
	    "log_level = 'verbose' is not a log level (error, warn, info or "
	    "debug)");
}
END_TEST

START_TEST(test_config_err_duplicate_key)
{
	config_test_expect_error(config_test_fixture("bad-duplicate-key.conf"),
	    4, "duplicate key 'batch' in [dispatch] (first at line 2)");
}
END_TEST

START_TEST(test_config_err_duplicate_section)
{
	config_test_expect_error(
	    config_test_fixture("bad-duplicate-section.conf"), 6,
	    "duplicate section [http] (first at line 1)");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "[sender  a]\n",
	    3, "duplicate section [sender  a] (first at line 1)");
}
END_TEST

START_TEST(test_config_err_sender_provider)
{
	config_test_expect_error(
	    config_test_fixture("bad-sender-provider.conf"), 4,
	    "[sender sms1] needs provider = ...");
}
END_TEST

START_TEST(test_config_err_sender_name)
{
	char name[80], text[256], msg[256];

	config_test_expect_error(config_test_fixture("bad-sender-name.conf"), 1,
	    "sender name 'my.sender' must be 1 to 63 letters, digits, '_' or "
	    "'-'");
	/* 63 characters are fine, 64 are not */
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text),
	    "[sender %.63s]\nprovider = console\n[sender %s]\nprovider = "
	    "console\n",
	    name, name);
	snprintf(msg, sizeof(msg),
	    "sender name '%s' must be 1 to 63 letters, digits, '_' or '-'",
	    name);
	config_test_expect_text_error(text, 3, msg);
}
END_TEST

START_TEST(test_config_err_default_sender)
{
	const char *path;
	struct config *cfg;
	char err[512] = "";

	config_test_expect_error(config_test_fixture("bad-default-sender.conf"),
	    3, "default_sender 'bulk' is not a [sender bulk] section");
	/* Without default_sender, the first sender in the file is it. */
	path = config_test_write("ds.conf",
	    "[sender b]\nprovider = console\n[sender a]\nprovider = x\n", 0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->default_sender, "b");
	config_free(cfg);
}
END_TEST

/* [sms] texts and [list NAME] sections. */
static const char config_test_lists_text[] =
    "[sender a]\n"						  /* 1 */
    "provider = console\n"					  /* 2 */
    "[sender b]\n"						  /* 3 */
    "provider = console\n"					  /* 4 */
    "[sms]\n"							  /* 5 */
    "default_region = GB\n"					  /* 6 */
    "program = Darfur Now\n"					  /* 7 */
    "contact = help@example.org\n"				  /* 8 */
    "stop_words = arret, Remove  td\n"				  /* 9 */
    "help_reply = {program}: {contact}. Reply STOP to opt out.\n" /* 10 */
    "[list DARFUR]\n"						  /* 11 */
    "keywords = darfur, Sudan\n"				  /* 12 */
    "sender = b\n"						  /* 13 */
    "double_optin = yes\n"					  /* 14 */
    "questions = first_name, ZIP\n"				  /* 15 */
    "ask_zip = Your ZIP?\n"					  /* 16 */
    "welcome_email_subject = Welcome\n"				  /* 17 */
    "welcome_email = Thanks for joining.\n"			  /* 18 */
    "[list vote]\n"						  /* 19 */
    "keywords = VOTE\n"						  /* 20 */
    "welcome = {program}: hi! Msg freq varies. Msg&data rates may apply. "
    "Reply HELP for help, STOP to opt out.\n" /* 21 */
    "time_zone = America/Chicago\n";	      /* 22 */

START_TEST(test_config_lists)
{
	const struct config_list *l;
	struct config *cfg;
	char err[512] = "";

	cfg = config_load(
	    config_test_write("l.conf", config_test_lists_text, 0600), NULL,
	    NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->default_region, "GB");
	ck_assert_str_eq(cfg->program, "Darfur Now");
	ck_assert_str_eq(cfg->contact, "help@example.org");
	ck_assert_uint_eq(cfg->nstop_words, 3);
	ck_assert_str_eq(cfg->stop_words[0], "ARRET");
	ck_assert_str_eq(cfg->stop_words[1], "REMOVE");
	ck_assert_str_eq(cfg->stop_words[2], "TD");
	ck_assert_str_eq(cfg->help_reply,
	    "{program}: {contact}. Reply STOP to opt out.");
	ck_assert_ptr_nonnull(strstr(cfg->stop_reply, "START"));
	ck_assert_ptr_nonnull(strstr(cfg->welcome, "Msg&data rates may apply"));
	ck_assert_uint_eq(cfg->nlists, 2);
	l = &cfg->lists[0];
	ck_assert_str_eq(l->name, "DARFUR");
	ck_assert_uint_eq(l->nkeywords, 2);
	ck_assert_str_eq(l->keywords[0], "DARFUR");
	ck_assert_str_eq(l->keywords[1], "SUDAN");
	ck_assert_str_eq(l->sender, "b");
	ck_assert(l->double_optin);
	ck_assert_uint_eq(l->nquestions, 2);
	ck_assert_str_eq(l->questions[0], "first_name");
	ck_assert_str_eq(l->questions[1], "zip");
	ck_assert_ptr_null(l->ask_first_name);
	ck_assert_str_eq(l->ask_zip, "Your ZIP?");
	ck_assert_ptr_null(l->welcome);
	ck_assert_str_eq(l->welcome_email_subject, "Welcome");
	ck_assert_str_eq(l->welcome_email, "Thanks for joining.");
	ck_assert_ptr_null(l->time_zone);
	ck_assert_int_eq(l->section->line, 11);
	l = config_list_lookup(cfg, "vote");
	ck_assert_ptr_eq(l, &cfg->lists[1]);
	ck_assert_ptr_null(l->sender);
	ck_assert(!l->double_optin);
	ck_assert_uint_eq(l->nquestions, 0);
	ck_assert_ptr_nonnull(strstr(l->welcome, "hi!"));
	ck_assert_str_eq(l->time_zone, "America/Chicago");
	ck_assert_ptr_eq(config_list_by_keyword(cfg, "SUDAN"), &cfg->lists[0]);
	ck_assert_ptr_eq(config_list_by_keyword(cfg, "VOTE"), &cfg->lists[1]);
	ck_assert_ptr_null(config_list_by_keyword(cfg, "vote"));
	ck_assert_ptr_null(config_list_lookup(cfg, "nope"));
	config_free(cfg);
}
END_TEST

START_TEST(test_config_sms_defaults)
{
	struct config *cfg;
	char err[512] = "";

	cfg = config_load(config_test_write("d.conf",
			      "[sender a]\nprovider = console\n", 0600),
	    NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->default_region, "US");
	ck_assert_ptr_null(cfg->program);
	ck_assert_ptr_null(cfg->contact);
	ck_assert_uint_eq(cfg->nstop_words, 0);
	ck_assert_uint_eq(cfg->nlists, 0);
	ck_assert_ptr_nonnull(strstr(cfg->help_reply, "{contact}"));
	ck_assert_ptr_nonnull(strstr(cfg->start_reply, "Msg freq"));
	ck_assert_ptr_nonnull(strstr(cfg->confirm_reply, "YES"));
	ck_assert_ptr_nonnull(strstr(cfg->already_reply, "{list}"));
	ck_assert_ptr_nonnull(strstr(cfg->reask_reply, "{question}"));
	config_free(cfg);
}
END_TEST

/* Two lists; 'second' is the keywords line of the second one (line 5). */
static void
config_test_list_error(const char *first, const char *second, int line,
    const char *msg)
{
	char text[1024];

	snprintf(text, sizeof(text),
	    "[sender a]\nprovider = console\n[list one]\n%s\n[list two]\n%s\n",
	    first, second);
	config_test_expect_text_error(text, line, msg);
}

START_TEST(test_config_err_lists)
{
	char want[PATH_MAX + 256];
	const char *path;

	/* a keyword two lists claim: both places named */
	path = config_test_write("t.conf",
	    "[list one]\nkeywords = darfur, sudan\n\n[list two]\n"
	    "keywords = vote, Sudan\n",
	    0600);
	snprintf(want, sizeof(want),
	    "keyword 'SUDAN' of [list two] is already a keyword of [list one] "
	    "at %s:2",
	    path);
	config_test_expect_error(path, 5, want);
	config_test_list_error("keywords = a", "keywords = stop", 6,
	    "keyword 'STOP' of [list two] is reserved (an opt-out, opt-in or "
	    "help word)");
	config_test_list_error("keywords = a", "keywords = yes", 6,
	    "keyword 'YES' of [list two] is reserved (an opt-out, opt-in or "
	    "help word)");
	config_test_list_error("keywords = Help", "keywords = b", 4,
	    "keyword 'HELP' of [list one] is reserved (an opt-out, opt-in or "
	    "help word)");
	config_test_list_error("keywords = a-b", "keywords = b", 4,
	    "keyword 'A-B' of [list one] must be 1 to 32 letters or digits");
	config_test_list_error("keywords = a, A", "keywords = b", 4,
	    "keyword 'A' appears twice in [list one]");
	config_test_list_error("keywords = ,", "keywords = b", 4,
	    "keywords of [list one] must name at least one keyword");
	config_test_list_error("sender = a", "keywords = b", 3,
	    "[list one] needs keywords = ... (the words members text to join)");
	config_test_list_error("keywords = a\nsender = nope", "keywords = b", 5,
	    "sender 'nope' of [list one] is not a [sender nope] section");
	config_test_list_error("keywords = a\nquestions = first_name, age",
	    "keywords = b", 5,
	    "question 'age' of [list one] must be first_name, last_name, zip "
	    "or email");
	config_test_list_error("keywords = a\nquestions = zip zip",
	    "keywords = b", 5, "question 'zip' appears twice in [list one]");
	config_test_list_error("keywords = a\ndouble_optin = maybe",
	    "keywords = b", 5,
	    "double_optin = 'maybe' is not a boolean (yes/no, true/false, "
	    "on/off or 1/0)");
	/* time_zone: a zone of the tz database, as [alerts] time_zone */
	config_test_list_error("keywords = a",
	    "keywords = b\ntime_zone = Europe/Atlantis", 7,
	    "time_zone 'Europe/Atlantis' of [list two] is not a zone of the "
	    "system's tz database (an IANA name such as America/Chicago; see "
	    "/usr/share/zoneinfo)");
	config_test_list_error("keywords = a\ntime_zone = America/Springfield",
	    "keywords = b", 5,
	    "time_zone 'America/Springfield' of [list one] is not a zone of the "
	    "system's tz database (an IANA name such as America/Chicago; see "
	    "/usr/share/zoneinfo)");
	config_test_list_error("keywords = a\ncolour = red", "keywords = b", 5,
	    "unknown key 'colour' in [list one]");
	config_test_expect_text_error("[list]\nkeywords = a\n", 1,
	    "[list] needs a name: [list NAME]");
	config_test_expect_text_error("[list a/b]\nkeywords = a\n", 1,
	    "list name 'a/b' must be 1 to 63 letters, digits, '_' or '-'");
	/* an extra stop word is reserved too */
	config_test_expect_text_error(
	    "[sms]\nstop_words = arret\n[list one]\nkeywords = Arret\n", 4,
	    "keyword 'ARRET' of [list one] is reserved (an opt-out, opt-in or "
	    "help word)");
	config_test_expect_text_error("[sms]\ndefault_region = XX\n", 2,
	    "default_region 'XX' is not a country code libphonenumber knows "
	    "(ISO 3166-1 alpha-2, e.g. US, GB)");
	config_test_expect_text_error("[sms]\nprogram =\n", 2,
	    "program must not be empty");
}
END_TEST

/* [alerts] quiet hours: the window, its limits, the default zone. */
START_TEST(test_config_alerts_quiet)
{
	char err[512];
	struct config *cfg;
	const char *path;

	path = config_test_write("t.conf", "[daemon]\n", 0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(cfg->quiet_start_min, 8 * 60);
	ck_assert_uint_eq(cfg->quiet_end_min, 20 * 60);
	ck_assert_str_eq(cfg->alerts_time_zone, "America/New_York");
	config_free(cfg);
	path = config_test_write("t.conf",
	    "[alerts]\nquiet_start = 9:30\nquiet_end = 21:00\n"
	    "time_zone = America/Chicago\n",
	    0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_uint_eq(cfg->quiet_start_min, 9 * 60 + 30);
	ck_assert_uint_eq(cfg->quiet_end_min, 21 * 60);
	ck_assert_str_eq(cfg->alerts_time_zone, "America/Chicago");
	config_free(cfg);

	config_test_expect_text_error("[alerts]\nquiet_start = 8am\n", 2,
	    "quiet_start: '8am' is not a time of day (HH:MM)");
	config_test_expect_text_error("[alerts]\nquiet_end = 25:00\n", 2,
	    "quiet_end: '25:00' is not a time of day (00:00 to 24:00)");
	config_test_expect_text_error(
	    "[alerts]\nquiet_start = 22:00\nquiet_end = 07:00\n", 3,
	    "quiet_start 22:00 is not before quiet_end 07:00: the sending "
	    "window may not cross midnight");
	config_test_expect_text_error("[alerts]\nquiet_start = 19:30\n", 2,
	    "the sending window 19:30-20:00 is shorter than an hour");
	config_test_expect_text_error("[alerts]\ntime_zone = Mars/Olympus\n", 2,
	    "time_zone 'Mars/Olympus' is not a zone of the system's tz "
	    "database (an IANA name such as America/Chicago; see "
	    "/usr/share/zoneinfo)");
	config_test_expect_text_error(
	    "[alerts]\ntime_zone = ../../etc/passwd\n", 2,
	    "time_zone '../../etc/passwd' is not a zone of the system's tz "
	    "database (an IANA name such as America/Chicago; see "
	    "/usr/share/zoneinfo)");
}
END_TEST

/* Appends a line of exactly n characters (plus 'eol') to buf. */
static void
config_test_line(char *buf, size_t size, size_t n, const char *eol)
{
	size_t len = strlen(buf);

	ck_assert_uint_lt(len + n + strlen(eol), size);
	memset(buf + len, 'x', n);
	memcpy(buf + len, "; ", 2);
	strcpy(buf + len + n, eol);
}

START_TEST(test_config_err_long_line)
{
	struct config *cfg;
	char text[1024] = "[http]\r\n", err[512] = "";

	config_test_expect_error(config_test_fixture("bad-long-line.conf"), 4,
	    "line longer than 199 characters");
	/* 199 characters are fine, with LF or CRLF, even on the last line */
	config_test_line(text, sizeof(text), 199, "\r\n");
	config_test_line(text, sizeof(text), 199, "\n");
	config_test_line(text, sizeof(text), 199, "");
	cfg = config_load(config_test_write("ok.conf", text, 0600), NULL, NULL,
	    err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	strcpy(text, "[http]\n");
	config_test_line(text, sizeof(text), 200, "\n");
	config_test_expect_text_error(text, 2,
	    "line longer than 199 characters");
	strcpy(text, "[http]\n");
	config_test_line(text, sizeof(text), 200, "");
	config_test_expect_text_error(text, 2,
	    "line longer than 199 characters");
}
END_TEST

START_TEST(test_config_err_syntax)
{
	config_test_expect_error(config_test_fixture("bad-syntax.conf"), 4,
	    "syntax error (expected [section] or key = value)");
	config_test_expect_text_error("[http]\n[store\npath = /x.db\n", 2,
	    "syntax error (expected [section] or key = value)");
	config_test_expect_text_error("[http]\n= 5\n", 2,
	    "syntax error (expected [section] or key = value)");
	/* the first error in the file wins */
	config_test_expect_text_error("[http]\nnope\nlisten = x\n", 2,
	    "syntax error (expected [section] or key = value)");
}
END_TEST

START_TEST(test_config_err_missing_file)
{
	char path[PATH_MAX + 16], msg[256];

	snprintf(path, sizeof(path), "%s/nope.conf", config_test_dir);
	snprintf(msg, sizeof(msg), "cannot open: %s", strerror(ENOENT));
	config_test_expect_error(path, 0, msg);
}
END_TEST

/* An api_token shorter than 16 characters is refused, saying why. */
START_TEST(test_config_err_short_token)
{
	config_test_expect_text_error(
	    "[http]\nlisten = 127.0.0.1:1\napi_token = abc123\n", 3,
	    "api_token has 6 characters, fewer than 16: it is all that "
	    "guards the API (openssl rand -hex 32 makes a good one)");
}
END_TEST

/*
 * [email] adapter = smtp without an [smtp] section is refused at the
 * adapter key's line (found by fuzz/fuzz_config: the SMTP adapter's own
 * refusal had no FILE:LINE).
 */
START_TEST(test_config_err_smtp_without_section)
{
	config_test_expect_text_error("[daemon]\n\n[email]\nadapter = smtp\n",
	    4,
	    "[email] adapter = smtp needs an [smtp] section (host, from, ...)");
}
END_TEST

/* An empty comma-separated entry is refused, not silently dropped. */
START_TEST(test_config_err_empty_words)
{
	config_test_expect_text_error("[sms]\nstop_words = STOP,,,,\n", 2,
	    "stop_words 'STOP,,,,' has an empty entry: separate words with "
	    "one comma, none at either end");
	config_test_expect_text_error("[sms]\nstop_words = , QUIT\n", 2,
	    "stop_words ', QUIT' has an empty entry: separate words with one "
	    "comma, none at either end");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "[list news]\nkeywords = NEWS,, JOIN\n",
	    4,
	    "keywords 'NEWS,, JOIN' of [list news] has an empty entry: "
	    "separate words with one comma, none at either end");
}
END_TEST

/*
 * A {placeholder} that is not filled in that text is refused at its
 * line, naming the ones that are.
 */
START_TEST(test_config_err_unknown_placeholder)
{
	config_test_expect_text_error(
	    "[sms]\nprogram = Acme\nhelp_reply = {program}: call {phone}\n", 3,
	    "help_reply: unknown placeholder {phone} (this text can hold "
	    "{program} {contact})");
	config_test_expect_text_error("[sms]\nstop_reply = Left {list}.\n", 2,
	    "stop_reply: unknown placeholder {list} (this text can hold "
	    "{program} {contact})");
	config_test_expect_text_error("[sender a]\nprovider = console\n"
				      "[list news]\nkeywords = NEWS\n"
				      "ask_zip = {programme}: ZIP?\n",
	    5,
	    "ask_zip: unknown placeholder {programme} (this text can hold "
	    "{program} {contact} {list})");
}
END_TEST

/* Known placeholders, and braces around no name, pass. */
START_TEST(test_config_placeholders_known)
{
	const char *path;
	struct config *cfg;
	char err[512] = "";

	path = config_test_write("ph.conf",
	    "[sms]\nprogram = Acme\nreask_reply = Sorry. {question}\n"
	    "welcome = {program}: {list}, {contact}. {} { x } {a-b}\n"
	    "[sender a]\nprovider = console\n[list news]\nkeywords = NEWS\n"
	    "ask_email = {program} {list}: email?\n",
	    0600);
	cfg = config_load(path, NULL, NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
}
END_TEST

START_TEST(test_config_secrets_readable)
{
	struct config_test_warn w = {0};
	const char *path;
	struct config *cfg;
	char err[512] = "", want[2048];

	path = config_test_write("s.conf",
	    "[http]\nlisten = 127.0.0.1:1\napi_token = abc123abc123abc123\n[sender "
	    "t]\nprovider = console\nauth_token = xyz\n",
	    0644);
	cfg = config_load(path, config_test_warn_cb, &w, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	ck_assert_int_eq(w.calls, 1);
	snprintf(want, sizeof(want),
	    "%s: holds secrets (api_token at line 3) but is readable by "
	    "others; chmod 600 %s or use ${ENV_VAR}",
	    path, path);
	ck_assert_str_eq(w.text, want);

	/* group-readable only is still readable by others */
	ck_assert_int_eq(chmod(path, 0640), 0);
	w.calls = 0;
	cfg = config_load(path, config_test_warn_cb, &w, err, sizeof(err));
	config_free(cfg);
	ck_assert_int_eq(w.calls, 1);

	/* a key named like a secret that is only a suffix match */
	path = config_test_write("s2.conf",
	    "[sender t]\nprovider = console\nwebhook_secret = xyz\n", 0604);
	w.calls = 0;
	cfg = config_load(path, config_test_warn_cb, &w, err, sizeof(err));
	config_free(cfg);
	ck_assert_int_eq(w.calls, 1);
	snprintf(want, sizeof(want),
	    "%s: holds secrets (webhook_secret at line 3) but is readable by "
	    "others; chmod 600 %s or use ${ENV_VAR}",
	    path, path);
	ck_assert_str_eq(w.text, want);
}
END_TEST

START_TEST(test_config_secrets_private)
{
	struct config_test_warn w = {0};
	const char *path;
	struct config *cfg;
	char err[512] = "";

	path = config_test_write("s.conf",
	    "[http]\napi_token = abc123abc123abc123\n", 0600);
	cfg = config_load(path, config_test_warn_cb, &w, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	ck_assert_int_eq(w.calls, 0);
}
END_TEST

START_TEST(test_config_secrets_from_env)
{
	struct config_test_warn w = {0};
	const char *path;
	struct config *cfg;
	char err[512] = "";

	ck_assert_int_eq(setenv("OD_TEST_TOKEN", "abc123abc123abc123", 1), 0);
	path = config_test_write("s.conf",
	    "[http]\napi_token = ${OD_TEST_TOKEN}\napi_token_file = "
	    "/x\n[sender t]\nprovider = console\npassword = ${OD_TEST_TOKEN}\n",
	    0644);
	cfg = config_load(path, config_test_warn_cb, &w, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	ck_assert_int_eq(w.calls, 0);
	unsetenv("OD_TEST_TOKEN");
}
END_TEST

/* A [sender] section with adapter keys, as an adapter's init() sees it. */
static const char config_test_adapter_text[] = "[sender x]\n"	      /* 1 */
					       "provider = console\n" /* 2 */
					       "file = out.jsonl\n"   /* 3 */
					       "delay = 250ms\n"      /* 4 */
					       "retries = 7\n"	      /* 5 */
					       "verbose = yes\n"      /* 6 */
					       "quiet = off\n"	      /* 7 */
					       "empty =\n"	      /* 8 */
					       "bad = maybe\n";	      /* 9 */

START_TEST(test_config_section_getters)
{
	const struct config_section *sec;
	const char *s = "untouched";
	struct config *cfg;
	char err[512] = "", want[PATH_MAX + 256];
	unsigned u = 42;
	bool b = false;

	cfg = config_load(
	    config_test_write("a.conf", config_test_adapter_text, 0600), NULL,
	    NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	sec = cfg->senders[0].section;

	ck_assert_str_eq(config_section_get(sec, "file"), "out.jsonl");
	ck_assert_ptr_null(config_section_get(sec, "nope"));
	ck_assert_int_eq(config_section_line(sec, "delay"), 4);
	ck_assert_int_eq(config_section_line(sec, "nope"), 1);

	ck_assert_int_eq(
	    config_section_str(sec, "nope", false, &s, err, sizeof(err)), 0);
	ck_assert_str_eq(s, "untouched");
	ck_assert_int_eq(
	    config_section_str(sec, "file", true, &s, err, sizeof(err)), 0);
	ck_assert_str_eq(s, "out.jsonl");
	ck_assert_int_eq(
	    config_section_str(sec, "token", true, &s, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: [sender x] needs token = ...",
	    sec->file);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(
	    config_section_str(sec, "empty", true, &s, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:8: empty must not be empty",
	    sec->file);
	ck_assert_str_eq(err, want);

	ck_assert_int_eq(config_section_uint(sec, "nope",
			     &(struct config_range){.min = 1, .max = 10}, &u,
			     err, sizeof(err)),
	    0);
	ck_assert_uint_eq(u, 42);
	ck_assert_int_eq(config_section_uint(sec, "retries",
			     &(struct config_range){.min = 1, .max = 10}, &u,
			     err, sizeof(err)),
	    0);
	ck_assert_uint_eq(u, 7);
	ck_assert_int_eq(config_section_uint(sec, "retries",
			     &(struct config_range){.min = 1, .max = 5}, &u,
			     err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "%s:5: retries must be between 1 and 5",
	    sec->file);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(config_section_uint(sec, "file",
			     &(struct config_range){.min = 1, .max = 5}, &u,
			     err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want),
	    "%s:3: file = 'out.jsonl' is not a whole number", sec->file);
	ck_assert_str_eq(err, want);

	ck_assert_int_eq(
	    config_section_bool(sec, "verbose", &b, err, sizeof(err)), 0);
	ck_assert(b);
	ck_assert_int_eq(
	    config_section_bool(sec, "quiet", &b, err, sizeof(err)), 0);
	ck_assert(!b);
	ck_assert_int_eq(config_section_bool(sec, "bad", &b, err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want),
	    "%s:9: bad = 'maybe' is not a boolean (yes/no, true/false, on/off "
	    "or 1/0)",
	    sec->file);
	ck_assert_str_eq(err, want);

	u = 42;
	ck_assert_int_eq(config_section_duration_ms(sec, "nope",
			     &(struct config_range){.min = 0, .max = 1000}, &u,
			     err, sizeof(err)),
	    0);
	ck_assert_uint_eq(u, 42);
	ck_assert_int_eq(config_section_duration_ms(sec, "delay",
			     &(struct config_range){.min = 0, .max = 1000}, &u,
			     err, sizeof(err)),
	    0);
	ck_assert_uint_eq(u, 250);
	ck_assert_int_eq(config_section_duration_ms(sec, "delay",
			     &(struct config_range){.min = 0, .max = 100}, &u,
			     err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want), "%s:4: delay must be between 0s and 100ms",
	    sec->file);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(config_section_duration_ms(sec, "retries",
			     &(struct config_range){.min = 0, .max = 60000}, &u,
			     err, sizeof(err)),
	    0);
	ck_assert_uint_eq(u, 7000); /* a plain number is seconds */
	config_free(cfg);
}
END_TEST

START_TEST(test_config_section_check_keys)
{
	static const char *const all[] = {"provider", "from", "rate", "burst",
	    "file", "delay", "retries", "verbose", "quiet", "empty", "bad",
	    NULL};
	static const char *const console[] = {"provider", "from", "rate",
	    "burst", "file", "delay", NULL};
	struct config *cfg;
	char err[512] = "", want[PATH_MAX + 256];

	cfg = config_load(
	    config_test_write("a.conf", config_test_adapter_text, 0600), NULL,
	    NULL, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(config_section_check_keys(cfg->senders[0].section, all,
			     err, sizeof(err)),
	    0);
	ck_assert_int_eq(config_section_check_keys(cfg->senders[0].section,
			     console, err, sizeof(err)),
	    -1);
	snprintf(want, sizeof(want),
	    "%s:5: unknown key 'retries' in [sender x]", cfg->file);
	ck_assert_str_eq(err, want);
	config_free(cfg);
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, config_test_setup, config_test_teardown);
	tcase_add_test(tc, test_config_full_file);
	tcase_add_test(tc, test_config_defaults);
	tcase_add_test(tc, test_config_example_file);
	tcase_add_test(tc, test_config_relative_paths);
	tcase_add_test(tc, test_config_env_expansion);
	tcase_add_test(tc, test_config_indented_keys);
	tcase_add_test(tc, test_config_listen_forms);
	tcase_add_test(tc, test_config_lists);
	tcase_add_test(tc, test_config_sms_defaults);
	tcase_add_test(tc, test_config_alerts_quiet);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, config_test_setup, config_test_teardown);
	tcase_add_test(tc, test_config_env_unset);
	tcase_add_test(tc, test_config_err_unknown_section);
	tcase_add_test(tc, test_config_err_unknown_key);
	tcase_add_test(tc, test_config_err_bad_number);
	tcase_add_test(tc, test_config_err_out_of_range);
	tcase_add_test(tc, test_config_err_bad_duration);
	tcase_add_test(tc, test_config_err_bad_size);
	tcase_add_test(tc, test_config_err_bad_listen);
	tcase_add_test(tc, test_config_err_bad_level);
	tcase_add_test(tc, test_config_err_duplicate_key);
	tcase_add_test(tc, test_config_err_duplicate_section);
	tcase_add_test(tc, test_config_err_sender_provider);
	tcase_add_test(tc, test_config_err_sender_name);
	tcase_add_test(tc, test_config_err_default_sender);
	tcase_add_test(tc, test_config_err_long_line);
	tcase_add_test(tc, test_config_err_syntax);
	tcase_add_test(tc, test_config_err_missing_file);
	tcase_add_test(tc, test_config_err_lists);
	tcase_add_test(tc, test_config_err_short_token);
	tcase_add_test(tc, test_config_err_empty_words);
	tcase_add_test(tc, test_config_err_smtp_without_section);
	tcase_add_test(tc, test_config_err_unknown_placeholder);
	tcase_add_test(tc, test_config_placeholders_known);
	suite_add_tcase(s, tc);

	tc = tcase_create("secrets");
	tcase_add_checked_fixture(tc, config_test_setup, config_test_teardown);
	tcase_add_test(tc, test_config_secrets_readable);
	tcase_add_test(tc, test_config_secrets_private);
	tcase_add_test(tc, test_config_secrets_from_env);
	suite_add_tcase(s, tc);

	tc = tcase_create("getters");
	tcase_add_checked_fixture(tc, config_test_setup, config_test_teardown);
	tcase_add_test(tc, test_config_section_getters);
	tcase_add_test(tc, test_config_section_check_keys);
	tcase_add_test(tc, test_config_store_backend);
	suite_add_tcase(s, tc);
	return s;
}
