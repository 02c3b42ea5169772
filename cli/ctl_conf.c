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
 */
#include "autoconf.h"

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

static const char *ctl_conf_default_file(void);
static int ctl_conf_handler(void *, const char *, const char *, const char *);
static char *ctl_conf_expand(const char *, char **);
static char *ctl_conf_listen_url(const char *);
static char *ctl_conf_url_file(const char *);

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

void
ctl_conf_free(struct ctl *ctl)
{
	free(ctl->conf_file);
	free(ctl->conf_url);
	if (ctl->conf_token != NULL) {
		explicit_bzero(ctl->conf_token, strlen(ctl->conf_token));
		free(ctl->conf_token);
	}
	free(ctl->conf_token_file);
	free(ctl->conf_unset_env);
}
