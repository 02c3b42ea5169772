/*
 * ui.c - serves the staff web page under /ui/ (ui.h, doc/web.md).
 *
 * The page is static: HTML, CSS and plain JavaScript modules that talk to
 * /api/v1 with the staff member's session. What this file adds is the
 * serving discipline a page holding members' data needs: a type for each
 * file from a fixed table (never sniffed), a Content-Security-Policy that
 * allows only this origin's own scripts, styles and API (no inline code,
 * no frames, no foreign forms), validators so a reload costs a 304, and,
 * when [http] ui_dir serves files from disk, names that cannot leave the
 * directory: plain names only (the router has already split the path on
 * '/', after decoding, so an encoded slash makes another segment and no
 * route matches), and the file's real path, symlinks resolved, must lie
 * inside the directory's.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "compat.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "simulator.h"
#include "ui.h"
#include "xmalloc.h"

#define UI_NAME_MAX 128
#define UI_FILE_MAX (8 * 1024 * 1024) /* a file of ui_dir, at most */
#define UI_ETAG_LEN 35		      /* '"' + 32 hex digits + '"' + NUL */

static const char ui_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'";

/* Types by extension; a file with none of these is not served. */
static const struct {
	const char *ext;
	const char *type;
} ui_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
};

/* An embedded file with its validator, computed once. */
struct ui_entry {
	const struct ui_file *file;
	char etag[UI_ETAG_LEN];
};

struct ui {
	const struct config *cfg;
	bool simulator;		/* a console sender exists */
	char *dir;		/* real path of [http] ui_dir, or NULL */
	struct ui_entry *embed; /* ui_files[] with their ETags */
	size_t nembed;
};

/* A file about to be sent: borrowed (embedded) or owned (from disk). */
struct ui_body {
	const unsigned char *data;
	size_t len;
	unsigned char *owned;
	char etag[UI_ETAG_LEN];
};

static void ui_on_bare(struct http_req *, void *);
static void ui_on_index(struct http_req *, void *);
static void ui_on_file(struct http_req *, void *);
static void ui_serve(struct ui *, struct http_req *, const char *);
static void ui_headers(struct http_req *);
static const char *ui_type(const char *);
static bool ui_name_ok(const char *);
static void ui_etag(const unsigned char *, size_t, char *);
static int ui_read_disk(const struct ui *, const char *, struct ui_body *);
static bool ui_etag_matches(const char *, const char *);
static void ui_not_found(struct http_req *, const char *);

struct ui *
ui_new(struct http_server *srv, const struct ui_deps *deps, char *err,
    size_t errlen)
{
	struct ui *ui;
	char real[PATH_MAX];
	struct stat sb;
	size_t i, n;

	if (deps->cfg->ui_dir != NULL) {
		if (realpath(deps->cfg->ui_dir, real) == NULL ||
		    stat(real, &sb) == -1) {
			snprintf(err, errlen, "[http] ui_dir %s: %s",
			    deps->cfg->ui_dir, strerror(errno));
			return NULL;
		}
		if (!S_ISDIR(sb.st_mode)) {
			snprintf(err, errlen,
			    "[http] ui_dir %s: not a directory",
			    deps->cfg->ui_dir);
			return NULL;
		}
	}
	ui = xcalloc(1, sizeof(*ui));
	ui->cfg = deps->cfg;
	ui->simulator = simulator_sender(deps->cfg) != NULL;
	if (deps->cfg->ui_dir != NULL)
		ui->dir = xstrdup(real);
	for (n = 0; ui_files[n].name != NULL; n++)
		;
	ui->embed = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*ui->embed));
	for (i = 0; i < n; i++) {
		ui->embed[i].file = &ui_files[i];
		ui_etag(ui_files[i].data, ui_files[i].len, ui->embed[i].etag);
	}
	ui->nembed = n;
	http_route(srv, HTTP_GET | HTTP_HEAD, "/ui", ui_on_bare, ui);
	http_route(srv, HTTP_GET | HTTP_HEAD, "/ui/", ui_on_index, ui);
	http_route(srv, HTTP_GET | HTTP_HEAD, "/ui/{file}", ui_on_file, ui);
	return ui;
}

void
ui_free(struct ui *ui)
{
	if (ui == NULL)
		return;
	free(ui->embed);
	free(ui->dir);
	free(ui);
}

/* The headers every answer under /ui carries. */
static void
ui_headers(struct http_req *req)
{
	http_add_header(req, "Cache-Control", "no-cache");
	http_add_header(req, "Content-Security-Policy", ui_csp);
	http_add_header(req, "X-Content-Type-Options", "nosniff");
	http_add_header(req, "Referrer-Policy", "no-referrer");
	http_add_header(req, "X-Frame-Options", "DENY");
}

/* /ui: the page's relative links need the trailing slash. */
static void
ui_on_bare(struct http_req *req, void *arg)
{
	static const char body[] = "see /ui/\n";

	(void)arg;
	ui_headers(req);
	http_add_header(req, "Location", "/ui/");
	http_reply(req, 301, "text/plain; charset=utf-8", body,
	    sizeof(body) - 1);
}

static void
ui_on_index(struct http_req *req, void *arg)
{
	ui_serve(arg, req, "index.html");
}

static void
ui_on_file(struct http_req *req, void *arg)
{
	struct ui *ui = arg;
	const char *name = req->params[0];

	if (strcmp(name, "simulator") == 0)
		name = "simulator.html";
	if (strcmp(name, "simulator.html") == 0 && !ui->simulator) {
		ui_not_found(req,
		    "the phone simulator needs a [sender] with provider = "
		    "console");
		return;
	}
	ui_serve(ui, req, name);
}

static void
ui_not_found(struct http_req *req, const char *why)
{
	ui_headers(req);
	http_reply_error(req, 404, "not_found", "%s", why);
}

/* Answers 'name' (from ui_dir or the embedded files), 304 or 404. */
static void
ui_serve(struct ui *ui, struct http_req *req, const char *name)
{
	struct ui_body b = {0};
	const char *type = ui_type(name);
	char len[32];
	size_t i;

	if (!ui_name_ok(name) || type == NULL) {
		ui_not_found(req, "no such file under /ui/");
		return;
	}
	if (ui->dir != NULL) {
		if (ui_read_disk(ui, name, &b) == -1) {
			ui_not_found(req, "no such file under /ui/");
			return;
		}
	} else {
		for (i = 0; i < ui->nembed; i++)
			if (strcmp(ui->embed[i].file->name, name) == 0)
				break;
		if (i == ui->nembed) {
			ui_not_found(req, "no such file under /ui/");
			return;
		}
		b.data = ui->embed[i].file->data;
		b.len = ui->embed[i].file->len;
		memcpy(b.etag, ui->embed[i].etag, sizeof(b.etag));
	}
	ui_headers(req);
	http_add_header(req, "ETag", b.etag);
	if (ui_etag_matches(http_header(req, "If-None-Match"), b.etag))
		http_reply(req, 304, NULL, NULL, 0);
	else {
		/* evhttp sends no length for HEAD: say what GET would send */
		if (req->method == HTTP_HEAD) {
			snprintf(len, sizeof(len), "%zu", b.len);
			http_add_header(req, "Content-Length", len);
		}
		http_reply(req, 200, type, (const char *)b.data, b.len);
	}
	free(b.owned);
}

static const char *
ui_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot == NULL)
		return NULL;
	for (i = 0; i < sizeof(ui_types) / sizeof(ui_types[0]); i++)
		if (strcmp(dot, ui_types[i].ext) == 0)
			return ui_types[i].type;
	return NULL;
}

/*
 * A plain file name: letters, digits, '_', '.', '-', not starting with
 * '.' (no "..", no hidden files), not too long.
 */
static bool
ui_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < UI_NAME_MAX && name[0] != '.' &&
	    strspn(name,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789_.-") == n;
}

/* '"' + the first 16 bytes of the SHA-256 in hex + '"'. */
static void
ui_etag(const unsigned char *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t i;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		fatalx("ui_etag: EVP_Digest failed");
	out[0] = '"';
	for (i = 0; i < 16; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
	out[33] = '"';
	out[34] = '\0';
}

/*
 * True if an If-None-Match value names etag (a list, weak or not) or is
 * "*".
 */
static bool
ui_etag_matches(const char *inm, const char *etag)
{
	if (inm == NULL)
		return false;
	while (*inm == ' ' || *inm == '\t')
		inm++;
	return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

/*
 * Reads ui_dir/name into b: the real path (symlinks resolved) must be a
 * regular file inside ui_dir. 0, or -1 (answered 404; a refusal that
 * looks like an attempt to leave the directory is logged).
 */
static int
ui_read_disk(const struct ui *ui, const char *name, struct ui_body *b)
{
	char path[PATH_MAX], real[PATH_MAX];
	size_t dlen = strlen(ui->dir);
	struct stat sb;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", ui->dir, name) >=
		sizeof(path) ||
	    realpath(path, real) == NULL)
		return -1;
	if (strncmp(real, ui->dir, dlen) != 0 || real[dlen] != '/') {
		log_info("ui_file_refused name=%s reason=\"its real path is "
			 "outside ui_dir\"",
		    name);
		return -1;
	}
	if ((fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > UI_FILE_MAX) {
		close(fd);
		return -1;
	}
	b->owned = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size &&
	    (n = read(fd, b->owned + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	b->data = b->owned;
	b->len = got;
	ui_etag(b->data, b->len, b->etag);
	return 0;
}
