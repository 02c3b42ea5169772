/*
 * ctl_http.c - outreachctl's transport: libcurl set up once per run, the
 * API token lookup, one blocking request per call, and the reports of
 * replies that are not a success.
 *
 * Requests go only to the daemon's own URL: redirects are not followed and
 * only http and https are allowed, so the token cannot travel elsewhere.
 * The token is sent only for paths under /api/ (GET /healthz needs none),
 * is wiped from memory at the end of the run, and is never printed: a 401
 * names where the token came from instead.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "compat.h"
#include "ctl.h"
#include "xmalloc.h"

#define CTL_CONNECT_TIMEOUT_S 5L	  /* local daemon: 5 s is plenty */
#define CTL_REQUEST_TIMEOUT_S 30L	  /* replies wait for one commit */
#define CTL_REPLY_MAX	      (16u << 20) /* no sane API reply is bigger */
#define CTL_FILE_MAX	      (64u << 20) /* far above the daemon's max_body */

static char *ctl_token_line(char *);
static int ctl_token_load(struct ctl *);
static int ctl_curl_ready(struct ctl *);
static size_t ctl_http_write_cb(char *, size_t, size_t, void *);
static struct curl_slist *ctl_http_headers(const struct ctl *, const char *,
    bool);
static void ctl_http_setopts(CURL *, const char *, struct curl_slist *, long,
    struct ctl_reply *, char *);
static int ctl_http_result(const struct ctl *, CURLcode, const char *,
    const char *, struct ctl_reply *);
static int ctl_unauthorized(const struct ctl *);

/*
 * Reads all of 'path' ("-" = stdin) into a new NUL-terminated buffer
 * (*out, caller frees) of *len bytes, at most CTL_FILE_MAX. 'what' names
 * the option in errors. Returns CTL_EX_OK, or CTL_EX_USAGE after printing
 * why.
 */
int
ctl_read_file(const char *what, const char *path, char **out, size_t *len)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	size_t cap = 4096, n = 0, got;
	char *buf;

	if (fp == NULL) {
		fprintf(stderr, "outreachctl: %s %s: %s\n", what, path,
		    strerror(errno));
		return CTL_EX_USAGE;
	}
	buf = xmalloc(cap);
	while ((got = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
		n += got;
		if (n > CTL_FILE_MAX)
			break;
		if (n + 1 == cap) {
			buf = xreallocarray(buf, 2, cap);
			cap *= 2;
		}
	}
	if (ferror(fp) || n > CTL_FILE_MAX) {
		fprintf(stderr, "outreachctl: %s %s: %s\n", what, path,
		    ferror(fp) ? strerror(errno) : "file too large");
		if (fp != stdin)
			fclose(fp);
		free(buf);
		return CTL_EX_USAGE;
	}
	if (fp != stdin)
		fclose(fp);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return CTL_EX_OK;
}

/*
 * Finds the API token, first of: -t/--token, --token-file FILE,
 * $OUTREACHD_TOKEN, the user's own file (its token, else the file its
 * token_file names), the daemon's config file ([http] api_token, else the
 * file [http] api_token_file names when readable, see ctl_conf.c), and
 * ./var/api.token when readable. Remembers where it came from for the
 * 401 hint. A token file holds the token on its first line. Returns
 * CTL_EX_OK (also when there is no token at all) or CTL_EX_USAGE.
 */
/*
 * The token in a token file's text 'buf' (its first line, blanks around
 * it removed), new; 'buf' is wiped and freed.
 */
static char *
ctl_token_line(char *buf)
{
	size_t len;
	char *token;

	buf[strcspn(buf, "\r\n")] = '\0';
	for (len = strlen(buf);
	     len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t');)
		buf[--len] = '\0';
	token = xstrdup(buf + strspn(buf, " \t"));
	explicit_bzero(buf, strlen(buf));
	free(buf);
	return token;
}

static int
ctl_token_load(struct ctl *ctl)
{
	const char *file = ctl->opt_token_file,
		   *env = getenv("OUTREACHD_TOKEN");
	char *buf = NULL, *p;
	size_t len;
	int rc;

	ctl->token_loaded = true;
	if (ctl->opt_token == NULL && file == NULL &&
	    (env == NULL || *env == '\0') && ctl->user_token == NULL &&
	    ctl->user_token_file == NULL &&
	    (rc = ctl_conf_load(ctl)) != CTL_EX_OK)
		return rc;
	if (ctl->opt_token != NULL) {
		ctl->token = xstrdup(ctl->opt_token);
		ctl->token_source = xstrdup("the -t/--token option");
	} else if (file == NULL && env != NULL && *env != '\0') {
		ctl->token = xstrdup(env);
		ctl->token_source = xstrdup("$OUTREACHD_TOKEN");
	} else if (file == NULL && ctl->user_token != NULL) {
		ctl->token = xstrdup(ctl->user_token);
		ctl->token_source =
		    xasprintf("the token of %s", ctl->user_file);
		ctl->token_user = true;
	} else if (file == NULL && ctl->user_token_file != NULL) {
		if (ctl_read_file("token_file", ctl->user_token_file, &buf,
			&len) != CTL_EX_OK)
			return CTL_EX_USAGE;
		ctl->token = ctl_token_line(buf);
		ctl->token_source = xasprintf("the token file %s (token_file "
					      "of %s)",
		    ctl->user_token_file, ctl->user_file);
		ctl->token_user = true;
	} else if (file == NULL && ctl->conf_token != NULL) {
		ctl->token = xstrdup(ctl->conf_token);
		ctl->token_source =
		    xasprintf("[http] api_token of %s", ctl->conf_file);
	} else {
		if (file == NULL && ctl->conf_token_file != NULL &&
		    access(ctl->conf_token_file, R_OK) == 0)
			file = ctl->conf_token_file;
		if (file == NULL && access(CTL_DEFAULT_TOKEN_FILE, R_OK) != 0)
			return CTL_EX_OK; /* no token: the daemon says 401 */
		if (file == NULL)
			file = CTL_DEFAULT_TOKEN_FILE;
		if (ctl_read_file("token file", file, &buf, &len) != CTL_EX_OK)
			return CTL_EX_USAGE;
		ctl->token = ctl_token_line(buf);
		ctl->token_source = xasprintf("the token file %s", file);
	}
	for (p = ctl->token; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f) /* would break the header */
			break;
	if (*ctl->token == '\0' || *p != '\0') {
		fprintf(stderr, "outreachctl: the token from %s is %s\n",
		    ctl->token_source,
		    *ctl->token == '\0' ? "empty" : "not one printable word");
		return CTL_EX_USAGE;
	}
	return CTL_EX_OK;
}

static int
ctl_curl_ready(struct ctl *ctl)
{
	if (ctl->curl != NULL)
		return CTL_EX_OK;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (ctl->curl = curl_easy_init()) == NULL) {
		fprintf(stderr, "outreachctl: cannot initialise libcurl\n");
		return CTL_EX_FAIL;
	}
	return CTL_EX_OK;
}

/* Collects the reply body, refusing more than CTL_REPLY_MAX bytes. */
static size_t
ctl_http_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct ctl_reply *r = arg;
	size_t n = size * nmemb;

	if (r->len + n > CTL_REPLY_MAX) {
		r->too_big = true;
		return 0; /* curl aborts with CURLE_WRITE_ERROR */
	}
	r->body = xreallocarray(r->body, r->len + n + 1, 1);
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/*
 * Request headers: a Content-Type when there is a body ('ctype' not NULL),
 * the Authorization line only when 'auth' and a token.
 */
static struct curl_slist *
ctl_http_headers(const struct ctl *ctl, const char *ctype, bool auth)
{
	struct curl_slist *h = NULL;
	char *line;

	h = curl_slist_append(h, "Accept: application/json");
	if (ctype != NULL) {
		line = xasprintf("Content-Type: %s", ctype);
		h = curl_slist_append(h, line);
		free(line);
	}
	if (auth && ctl->token != NULL) {
		line = xasprintf("Authorization: Bearer %s", ctl->token);
		h = curl_slist_append(h, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	/* Expect: 100-continue would cost a round trip per POST. */
	h = curl_slist_append(h, "Expect:");
	if (h == NULL) {
		fprintf(stderr, "outreachctl: out of memory\n");
		exit(CTL_EX_FAIL);
	}
	return h;
}

/* Sets the options of one request: timeouts, no redirects, http(s) only. */
static void
ctl_http_setopts(CURL *c, const char *url, struct curl_slist *hdrs,
    long timeout_s, struct ctl_reply *reply, char *errbuf)
{
	curl_easy_reset(c); /* keeps the connection for --wait polls */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "outreachctl/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CTL_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ctl_http_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

/*
 * Turns curl's result into an exit status, printing why it is not
 * CTL_EX_OK, and parses the body of a complete reply.
 */
static int
ctl_http_result(const struct ctl *ctl, CURLcode cc, const char *url,
    const char *errbuf, struct ctl_reply *reply)
{
	const char *why = *errbuf != '\0' ? errbuf : curl_easy_strerror(cc);

	if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
		fprintf(stderr, "outreachctl: bad URL %s: %s\n", url, why);
		return CTL_EX_USAGE;
	}
	if (reply->too_big) {
		fprintf(stderr, "outreachctl: reply from %s is too large\n",
		    url);
		return CTL_EX_FAIL;
	}
	if (cc != CURLE_OK) {
		fprintf(stderr,
		    "outreachctl: cannot reach outreachd at %s: %s; is it "
		    "running?\n",
		    ctl->url, why);
		return CTL_EX_UNREACHABLE;
	}
	if (reply->body != NULL)
		reply->json = json_loadb(reply->body, reply->len, 0, NULL);
	return CTL_EX_OK;
}

/*
 * Makes one request: 'method' to base URL + 'path', with *body as the body
 * when body is not NULL (POST unless 'method' says otherwise), and the
 * token when 'path' is under /api/. See ctl_http() for *reply and the
 * result.
 */
int
ctl_http_raw(struct ctl *ctl, const char *method, const char *path,
    const struct ctl_body *body, long timeout_s, struct ctl_reply *reply)
{
	bool auth = strncmp(path, "/api/", 5) == 0;
	const char *ctype = body != NULL ? body->type : NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *url;
	struct curl_slist *hdrs;
	CURLcode cc;
	int rc;

	memset(reply, 0, sizeof(*reply));
	if ((rc = ctl_curl_ready(ctl)) != CTL_EX_OK)
		return rc;
	if (auth && !ctl->token_loaded &&
	    (rc = ctl_token_load(ctl)) != CTL_EX_OK)
		return rc;
	url = xasprintf("%s%s", ctl->url, path);
	hdrs = ctl_http_headers(ctl, ctype, auth);
	ctl_http_setopts(ctl->curl, url, hdrs,
	    timeout_s > 0 ? timeout_s : CTL_REQUEST_TIMEOUT_S, reply, errbuf);
	if (ctype != NULL) {
		curl_easy_setopt(ctl->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(ctl->curl, CURLOPT_POSTFIELDS,
		    body->len > 0 ? body->data : "");
		curl_easy_setopt(ctl->curl, CURLOPT_POSTFIELDSIZE,
		    (long)body->len);
	}
	if (strcmp(method, ctype != NULL ? "POST" : "GET") != 0)
		curl_easy_setopt(ctl->curl, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(ctl->curl);
	curl_easy_getinfo(ctl->curl, CURLINFO_RESPONSE_CODE, &reply->status);
	curl_easy_setopt(ctl->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(ctl->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	rc = ctl_http_result(ctl, cc, url, errbuf, reply);
	free(url);
	return rc;
}

/*
 * Makes one request: 'method' (GET or POST) to base URL + 'path', with
 * 'body' as JSON when not NULL, and the token when 'path' is under /api/.
 * Fills *reply (free it with ctl_reply_free(), also on failure) with the
 * status and the body, parsed into reply->json when it is JSON. Redirects
 * are not followed: the token must not travel elsewhere.
 * Returns CTL_EX_OK when the daemon answered, whatever the status;
 * otherwise prints why and returns CTL_EX_UNREACHABLE (or CTL_EX_USAGE for
 * a bad URL or token).
 */
int
ctl_http(struct ctl *ctl, const char *method, const char *path,
    const json_t *body, struct ctl_reply *reply)
{
	char *payload = NULL;
	int rc;

	if (body != NULL &&
	    (payload = json_dumps(body, JSON_COMPACT)) == NULL) {
		fprintf(stderr, "outreachctl: cannot encode JSON\n");
		exit(CTL_EX_FAIL);
	}
	rc = ctl_http_raw(ctl, method, path,
	    payload != NULL ? &(struct ctl_body){.type = "application/json",
				  .data = payload,
				  .len = strlen(payload)}
			    : NULL,
	    0, reply);
	free(payload);
	return rc;
}

/* Frees the body and the parsed JSON, and zeroes *r for reuse. */
void
ctl_reply_free(struct ctl_reply *r)
{
	json_decref(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/*
 * A 401: says which token was sent, or that none was, and how to fix it.
 * The token itself is never printed.
 */
static int
ctl_unauthorized(const struct ctl *ctl)
{
	if (ctl->token == NULL && ctl->conf_token_file != NULL)
		fprintf(stderr,
		    "outreachctl: unauthorized (HTTP 401): no API token was "
		    "given, and %s\n(the [http] api_token_file of %s) cannot "
		    "be read%s%s%s.\n"
		    "Run outreachctl as the daemon's user, or pass the token "
		    "with --token-file FILE,\n$OUTREACHD_TOKEN or -t TOKEN.\n",
		    ctl->conf_token_file, ctl->conf_file,
		    ctl->conf_unset_env != NULL ? "; its api_token uses $" : "",
		    ctl->conf_unset_env != NULL ? ctl->conf_unset_env : "",
		    ctl->conf_unset_env != NULL ? ", which is not set" : "");
	else if (ctl->token == NULL)
		fprintf(stderr,
		    "outreachctl: unauthorized (HTTP 401): no API token was "
		    "given.\n"
		    "Pass the daemon's token with --token-file FILE, "
		    "$OUTREACHD_TOKEN or -t TOKEN,\n"
		    "or its config file with -c FILE; the daemon writes the "
		    "token to VAR/api.token\n(./%s when run from its "
		    "directory). A staff member's own token goes in\n"
		    "~/.config/outreachctl/config (token = ..., mode 600).\n",
		    CTL_DEFAULT_TOKEN_FILE);
	else if (ctl->token_user)
		fprintf(stderr,
		    "outreachctl: unauthorized (HTTP 401): the daemon "
		    "rejected %s.\n"
		    "It may have been revoked or be for another daemon: ask "
		    "for a new one\n(outreachctl token create) and put it "
		    "there, or override it with\n"
		    "$OUTREACHD_TOKEN or -t TOKEN.\n",
		    ctl->token_source);
	else
		fprintf(stderr,
		    "outreachctl: unauthorized (HTTP 401): the daemon "
		    "rejected the token from %s.\n"
		    "Use the daemon's [http] api_token, or the file named by "
		    "[http] api_token_file\n"
		    "(default VAR/api.token): --token-file FILE, "
		    "$OUTREACHD_TOKEN or -t TOKEN.\n",
		    ctl->token_source);
	return CTL_EX_FAIL;
}

/*
 * Reports a reply that is not a success: "outreachctl: MESSAGE (HTTP
 * STATUS CODE)" from the daemon's {"error": {"code", "message"}}, or the
 * start of the body when it is not one. With -j the body is printed to
 * stdout as well. Returns CTL_EX_FAIL.
 */
int
ctl_api_error(struct ctl *ctl, const struct ctl_reply *r)
{
	const json_t *err = json_object_get(r->json, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	char *text, *fallback = NULL;

	if (ctl->json)
		ctl_print_raw(r);
	if (r->status == 401)
		return ctl_unauthorized(ctl);
	if (msg == NULL)
		msg = fallback = r->body == NULL
		    ? xstrdup("unexpected empty reply")
		    : xasprintf("unexpected reply: %.80s", r->body);
	text = ctl_sanitize(msg, false);
	fprintf(stderr, "outreachctl: %s (HTTP %ld", text, r->status);
	free(text);
	if (code != NULL) {
		text = ctl_sanitize(code, false);
		fprintf(stderr, " %s", text);
		free(text);
	}
	fputs(")\n", stderr);
	free(fallback);
	return CTL_EX_FAIL;
}

/*
 * Releases what the transport set up in 'ctl': libcurl and its handle, when
 * a request was made, and the token, wiped before it is freed. The caller
 * still owns ctl->url.
 */
void
ctl_http_shutdown(struct ctl *ctl)
{
	if (ctl->curl != NULL) {
		curl_easy_cleanup(ctl->curl);
		curl_global_cleanup();
	}
	if (ctl->token != NULL)
		explicit_bzero(ctl->token, strlen(ctl->token));
	free(ctl->token);
	free(ctl->token_source);
	ctl->curl = NULL;
	ctl->token = NULL;
	ctl->token_source = NULL;
}

/* A URL-escaped copy of s (a path segment or query value). */
char *
ctl_esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *out;

	if (e == NULL) {
		fprintf(stderr, "outreachctl: out of memory\n");
		exit(CTL_EX_FAIL);
	}
	out = xstrdup(e);
	curl_free(e);
	return out;
}
