/*
 * ctl_conf.c - what outreachctl takes from the daemon's config file when
 * the command line and the environment do not say: the daemon's URL and
 * its API token.
 *
 * The file is the one -c names, else the one outreachd itself uses by
 * default (etc/outreachd.conf when run from the source tree, else
 * SYSCONFDIR/outreachd.conf). Only four keys are read, with the same
 * INI library as the daemon and the same ${NAME} expansion: [daemon]
 * var_dir, [http] listen, api_token and api_token_file. The rest of the
 * file is not checked (outreachd --check-config does that), so a key
 * outreachctl does not need, or an environment variable only the daemon
 * has (an SMTP password), never stops it.
 *
 * The URL is the first line of VAR/outreachd.url, which the daemon writes
 * once it listens (so port 0 and a wildcard address give the real one),
 * else http://LISTEN. Relative paths are taken from the current directory,
 * as outreachd takes them from the one it starts in.
 *
 * It also reads the user's own file (ctl_userconf_load()), for a staff
 * member on a workstation with a token of their own: $OUTREACHCTL_CONFIG,
 * else $XDG_CONFIG_HOME/outreachctl/config (~/.config by default). Its
 * keys url, token and token_file come before any [section], with the same
 * ${NAME} expansion; everything else in it is an error at FILE:LINE, and a
 * token in a file that group or others can read is refused (as ssh does).
 * A relative token_file is taken from the file's own directory, and
 * "~/" from $HOME. A missing file is no error.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "compat.h"
#include "config_section.h"
#include "ctl.h"
#include "xmalloc.h"

#define CTL_CONF_DEFAULT_PORT "8080"
#define CTL_CONF_URL_MAX      2048

/* The keys read, as written (after ${NAME} expansion). */
struct ctl_conf_keys {
	char *var_dir;
	char *listen;
	char *token;
	char *token_file;
	char *unset_env; /* a ${NAME} that is not set, for the 401 hint */
};

/* The keys of the user's file, and why it was refused. */
struct ctl_user_keys {
	char *url;
	char *token;
	char *token_file;
	char err[256]; /* set by the handler when it stops the parse */
};

static const char *ctl_conf_default_file(void);
static int ctl_conf_handler(void *, const char *, const char *, const char *);
static char *ctl_conf_expand(const char *, char **);
static char *ctl_conf_listen_url(const char *);
static char *ctl_conf_url_file(const char *);
static char *ctl_user_path(void);
static int ctl_user_handler(void *, const char *, const char *, const char *);
static char *ctl_user_token_path(const char *, const char *);
static int ctl_user_check(const char *, const struct stat *,
    const struct ctl_user_keys *);
static void ctl_user_keys_free(struct ctl_user_keys *);
static void ctl_wipe_free(char *);

/* The file outreachd reads without -c (its main_default_config()). */
static const char *
ctl_conf_default_file(void)
{
	if (access("etc/outreachd.conf", R_OK) == 0 &&
	    access("daemon/main.c", R_OK) == 0)
		return "etc/outreachd.conf";
	return OD_SYSCONFDIR "/outreachd.conf";
}

/*
 * 'value' with each ${NAME} replaced by the environment variable NAME,
 * or NULL (and *unset the name, if not already set) when one is unset or
 * malformed.
 */
static char *
ctl_conf_expand(const char *value, char **unset)
{
	const char *s = value, *ref, *end, *env;
	char *out = xstrdup(""), *name, *next;

	while ((ref = strstr(s, "${")) != NULL) {
		if ((end = strchr(ref + 2, '}')) == NULL || end == ref + 2) {
			free(out);
			return NULL;
		}
		name = xstrndup(ref + 2, (size_t)(end - ref - 2));
		if ((env = getenv(name)) == NULL) {
			if (*unset == NULL)
				*unset = name;
			else
				free(name);
			free(out);
			return NULL;
		}
		free(name);
		next = xasprintf("%s%.*s%s", out, (int)(ref - s), s, env);
		free(out);
		out = next;
		s = end + 1;
	}
	next = xasprintf("%s%s", out, s);
	free(out);
	return next;
}

/* The ini_handler: keeps the four keys, ignores everything else. */
static int
ctl_conf_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct ctl_conf_keys *k = arg;
	char **slot = NULL;

	if (section == NULL || key == NULL || value == NULL)
		return 1;
	if (strcmp(section, "daemon") == 0 && strcmp(key, "var_dir") == 0)
		slot = &k->var_dir;
	else if (strcmp(section, "http") == 0 && strcmp(key, "listen") == 0)
		slot = &k->listen;
	else if (strcmp(section, "http") == 0 && strcmp(key, "api_token") == 0)
		slot = &k->token;
	else if (strcmp(section, "http") == 0 &&
	    strcmp(key, "api_token_file") == 0)
		slot = &k->token_file;
	if (slot == NULL)
		return 1;
	free(*slot);
	*slot = ctl_conf_expand(value, &k->unset_env);
	return 1;
}

/*
 * "http://ADDR:PORT" for an [http] listen value ("127.0.0.1:8080",
 * "[::1]:8080"), a wildcard address as the loopback one; NULL if the
 * value is not of that shape or its port is 0 (only the URL file knows).
 */
static char *
ctl_conf_listen_url(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	const char *port;
	char *addr, *url;

	if (colon == NULL || colon == listen)
		return NULL;
	port = colon + 1;
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    strtol(port, NULL, 10) == 0)
		return NULL;
	addr = xstrndup(listen, (size_t)(colon - listen));
	if (strcmp(addr, "0.0.0.0") == 0)
		url = xasprintf("http://127.0.0.1:%s", port);
	else if (strcmp(addr, "[::]") == 0)
		url = xasprintf("http://[::1]:%s", port);
	else
		url = xasprintf("http://%s:%s", addr, port);
	free(addr);
	return url;
}

/* The URL in 'path' (its first line, http or https), or NULL. */
static char *
ctl_conf_url_file(const char *path)
{
	char line[CTL_CONF_URL_MAX];
	FILE *fp;
	bool ok;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	ok = fgets(line, sizeof(line), fp) != NULL;
	fclose(fp);
	if (!ok)
		return NULL;
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "http://", 7) != 0 &&
	    strncmp(line, "https://", 8) != 0)
		return NULL;
	return xstrdup(line);
}

int
ctl_conf_load(struct ctl *ctl)
{
	struct ctl_conf_keys k;
	const char *file = ctl->opt_config;
	const char *var_dir;
	char *path;
	int rc;

	if (ctl->conf_loaded)
		return CTL_EX_OK;
	ctl->conf_loaded = true;
	if (file == NULL) {
		file = ctl_conf_default_file();
		if (access(file, R_OK) != 0)
			return CTL_EX_OK; /* nothing to read: the defaults */
	}
	memset(&k, 0, sizeof(k));
	if ((rc = ini_parse(file, ctl_conf_handler, &k)) != 0) {
		if (rc == -1)
			fprintf(stderr, "outreachctl: config %s: %s\n", file,
			    strerror(errno));
		else
			fprintf(stderr,
			    "outreachctl: config %s:%d: syntax error "
			    "(outreachd --check-config -c %s says more)\n",
			    file, rc, file);
		free(k.var_dir);
		free(k.listen);
		free(k.token);
		free(k.token_file);
		free(k.unset_env);
		return CTL_EX_USAGE;
	}
	ctl->conf_file = xstrdup(file);
	var_dir = k.var_dir != NULL && *k.var_dir != '\0' ? k.var_dir : "var";
	path = xasprintf("%s/%s", var_dir, CONFIG_URL_FILE);
	if ((ctl->conf_url = ctl_conf_url_file(path)) == NULL)
		ctl->conf_url = ctl_conf_listen_url(k.listen != NULL
			? k.listen
			: "127.0.0.1:" CTL_CONF_DEFAULT_PORT);
	free(path);
	if (k.token != NULL && *k.token != '\0') {
		ctl->conf_token = k.token;
		k.token = NULL;
	} else
		ctl->conf_token_file = k.token_file != NULL
		    ? xstrdup(k.token_file)
		    : xasprintf("%s/api.token", var_dir);
	ctl->conf_unset_env = k.unset_env;
	free(k.var_dir);
	free(k.listen);
	free(k.token);
	free(k.token_file);
	return CTL_EX_OK;
}

/*
 * The user's file: $OUTREACHCTL_CONFIG, else $XDG_CONFIG_HOME (an
 * absolute path, as the XDG spec says), else $HOME/.config, then
 * /outreachctl/config. NULL when none can be named.
 */
static char *
ctl_user_path(void)
{
	const char *p = getenv("OUTREACHCTL_CONFIG");

	if (p != NULL && *p != '\0')
		return xstrdup(p);
	if ((p = getenv("XDG_CONFIG_HOME")) != NULL && *p == '/')
		return xasprintf("%s/outreachctl/config", p);
	if ((p = getenv("HOME")) != NULL && *p != '\0')
		return xasprintf("%s/.config/outreachctl/config", p);
	return NULL;
}

/* The ini_handler of the user's file: url, token, token_file, no section. */
static int
ctl_user_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct ctl_user_keys *k = arg;
	char **slot, *unset = NULL, *v;

	if (section != NULL && *section != '\0') {
		snprintf(k->err, sizeof(k->err),
		    "key '%s' in section [%s]: the keys url, token and "
		    "token_file go before any section",
		    key, section);
		return 0;
	}
	if (strcmp(key, "url") == 0)
		slot = &k->url;
	else if (strcmp(key, "token") == 0)
		slot = &k->token;
	else if (strcmp(key, "token_file") == 0)
		slot = &k->token_file;
	else {
		snprintf(k->err, sizeof(k->err),
		    "unknown key '%s' (the keys are url, token and token_file)",
		    key);
		return 0;
	}
	if (value == NULL || (v = ctl_conf_expand(value, &unset)) == NULL) {
		snprintf(k->err, sizeof(k->err), "%s: %s%s%s", key,
		    unset != NULL ? "$" : "malformed ${NAME}",
		    unset != NULL ? unset : "",
		    unset != NULL ? " is not set" : "");
		free(unset);
		return 0;
	}
	ctl_wipe_free(*slot);
	*slot = v;
	return 1;
}

/* token_file as a path to open: "~/" from $HOME, relative from 'file's dir. */
static char *
ctl_user_token_path(const char *file, const char *token_file)
{
	const char *home = getenv("HOME"), *slash = strrchr(file, '/');

	if (strncmp(token_file, "~/", 2) == 0 && home != NULL)
		return xasprintf("%s/%s", home, token_file + 2);
	if (*token_file == '/' || slash == NULL)
		return xstrdup(token_file);
	return xasprintf("%.*s/%s", (int)(slash - file), file, token_file);
}

/* Refuses, after saying why, what the parse allowed but is still wrong. */
static int
ctl_user_check(const char *file, const struct stat *st,
    const struct ctl_user_keys *k)
{
	if (k->token != NULL && (st->st_mode & (S_IRGRP | S_IROTH)) != 0) {
		fprintf(stderr,
		    "outreachctl: %s holds a token and other users can read "
		    "it (mode %03o); refusing to use it.\nRun: chmod 600 %s\n",
		    file, (unsigned)(st->st_mode & 0777), file);
		return CTL_EX_USAGE;
	}
	if (k->token != NULL && k->token_file != NULL) {
		fprintf(stderr,
		    "outreachctl: %s: set token or token_file, not both\n",
		    file);
		return CTL_EX_USAGE;
	}
	return CTL_EX_OK;
}

static void
ctl_user_keys_free(struct ctl_user_keys *k)
{
	free(k->url);
	ctl_wipe_free(k->token);
	free(k->token_file);
}

int
ctl_userconf_load(struct ctl *ctl)
{
	struct ctl_user_keys k;
	struct stat st;
	char *path;
	FILE *fp;
	int rc;

	if (ctl->user_file != NULL || (path = ctl_user_path()) == NULL)
		return CTL_EX_OK;
	if ((fp = fopen(path, "r")) == NULL) {
		rc = errno == ENOENT ? CTL_EX_OK : CTL_EX_USAGE;
		if (rc != CTL_EX_OK)
			fprintf(stderr, "outreachctl: %s: %s\n", path,
			    strerror(errno));
		free(path);
		return rc; /* no file: nothing to take from it */
	}
	memset(&k, 0, sizeof(k));
	if (fstat(fileno(fp), &st) != 0 || S_ISDIR(st.st_mode)) {
		fprintf(stderr, "outreachctl: %s: %s\n", path,
		    S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
		rc = -1;
	} else if ((rc = ini_parse_file(fp, ctl_user_handler, &k)) != 0)
		fprintf(stderr, "outreachctl: %s:%d: %s\n", path, rc,
		    k.err[0] != '\0' ? k.err
				     : "syntax error (lines are KEY = VALUE, "
				       "# starts a comment)");
	fclose(fp);
	if (rc != 0 || ctl_user_check(path, &st, &k) != CTL_EX_OK) {
		ctl_user_keys_free(&k);
		free(path);
		return CTL_EX_USAGE;
	}
	ctl->user_file = path;
	ctl->user_url = k.url;
	ctl->user_token = k.token;
	if (k.token_file != NULL)
		ctl->user_token_file = ctl_user_token_path(path, k.token_file);
	free(k.token_file);
	return CTL_EX_OK;
}

/* Wipes and frees a string that may hold a token; NULL is fine. */
static void
ctl_wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

void
ctl_conf_free(struct ctl *ctl)
{
	free(ctl->conf_file);
	free(ctl->conf_url);
	ctl_wipe_free(ctl->conf_token);
	free(ctl->conf_token_file);
	free(ctl->conf_unset_env);
	free(ctl->user_file);
	free(ctl->user_url);
	ctl_wipe_free(ctl->user_token);
	free(ctl->user_token_file);
}
