/*
 * ui.h - the staff web page: the static files of web/ served under /ui/
 * (doc/web.md).
 *
 * Contract:
 *  - By default the files are the ones embedded into the binary at build
 *    time (web/embed.sh writes daemon/ui_files.c), so the daemon always
 *    serves the page it was built with. [http] ui_dir serves a directory
 *    instead (for work on the page): only plain names
 *    ([A-Za-z0-9_.-], not starting with '.') of regular files whose real
 *    path is inside the directory; anything else is 404.
 *  - GET and HEAD. /ui redirects to /ui/, /ui/ is index.html,
 *    /ui/simulator is simulator.html, and both simulator names are 404
 *    unless some [sender] uses the console adapter. A file whose
 *    extension has no known type is not served.
 *  - Every answer carries Cache-Control: no-cache, a strict
 *    Content-Security-Policy, X-Content-Type-Options: nosniff,
 *    Referrer-Policy: no-referrer and X-Frame-Options: DENY; files carry
 *    an ETag (from their SHA-256) and If-None-Match answers 304.
 *  - Loop thread only; the config is borrowed and must outlive the ui.
 */
#ifndef OD_UI_H
#define OD_UI_H

#include <stddef.h>

struct config;
struct http_server;

/* One embedded file; ui_files[] ends with a NULL name. */
struct ui_file {
	const char *name;
	const unsigned char *data;
	size_t len;
};
extern const struct ui_file ui_files[]; /* generated: daemon/ui_files.c */

struct ui_deps {
	const struct config *cfg;
};

struct ui;

/*
 * Registers the /ui routes on srv. NULL with the reason in err when
 * [http] ui_dir cannot be used (missing, not a directory).
 */
struct ui *ui_new(struct http_server *srv, const struct ui_deps *deps,
    char *err, size_t errlen);
/* Frees ui; NULL is a no-op. */
void ui_free(struct ui *ui);

#endif
