/*
 * dkim.c - DKIM signing with libopendkim (see dkim.h).
 *
 * The message is fed to libopendkim as it will be sent: each header field
 * with its folding (continuation lines kept, the final CRLF dropped, as
 * dkim_header() wants), then the body as is. The library computes the
 * relaxed canonical forms itself. The signature header it returns is
 * folded with bare LF; those become CRLF here.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <opendkim/dkim.h>

#include "adapter.h"
#include "dkim.h"
#include "log.h"
#include "xmalloc.h"

#define DKIM_KEY_MAX (64 * 1024) /* a PEM key is a few KB */
#define DKIM_HDR     "DKIM-Signature: "

struct dkim_signer {
	DKIM_LIB *lib;
	unsigned char *key; /* PEM, NUL-terminated */
	char *domain;
	char *selector;
};

static const char *dkim_sign_hdrs[] = {"from", "to", "cc", "subject", "date",
    "message-id", "reply-to", "mime-version", "content-type",
    "list-unsubscribe", "list-unsubscribe-post", NULL};
static const char *dkim_oversign_hdrs[] = {"from", "subject",
    "list-unsubscribe", "list-unsubscribe-post", NULL};

/* Reads the PEM key; refuses a file that group or others can read. */
static unsigned char *
dkim_read_key(const char *path, char *err, size_t errlen)
{
	unsigned char *key;
	struct stat sb;
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "dkim_key_file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0 ||
	    sb.st_size >= DKIM_KEY_MAX) {
		snprintf(err, errlen,
		    "dkim_key_file %s: must be a regular file under 64 KB "
		    "that only its owner can read (chmod 600 %s)",
		    path, path);
		close(fd);
		return NULL;
	}
	key = xmalloc((size_t)sb.st_size + 1);
	while (len < (size_t)sb.st_size &&
	    (n = read(fd, key + len, (size_t)sb.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	key[len] = '\0';
	if (strstr((char *)key, "PRIVATE KEY-----") == NULL) {
		snprintf(err, errlen,
		    "dkim_key_file %s: not a PEM private key (make one with "
		    "opendkim-genkey or openssl genrsa 2048)",
		    path);
		free(key);
		return NULL;
	}
	return key;
}

struct dkim_signer *
dkim_signer_new(const char *domain, const char *selector, const char *key_file,
    char *err, size_t errlen)
{
	struct dkim_signer *ds;
	unsigned char *key;

	if (domain == NULL || selector == NULL || key_file == NULL) {
		snprintf(err, errlen,
		    "DKIM needs dkim_domain, dkim_selector and dkim_key_file");
		return NULL;
	}
	if ((key = dkim_read_key(key_file, err, errlen)) == NULL)
		return NULL;
	ds = xcalloc(1, sizeof(*ds));
	ds->key = key;
	ds->domain = xstrdup(domain);
	ds->selector = xstrdup(selector);
	if ((ds->lib = dkim_init(NULL, NULL)) == NULL ||
	    dkim_options(ds->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
		dkim_sign_hdrs, sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(ds->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
		dkim_oversign_hdrs, sizeof(char **)) != DKIM_STAT_OK) {
		snprintf(err, errlen, "libopendkim: cannot initialise");
		dkim_signer_free(ds);
		return NULL;
	}
	return ds;
}

int
dkim_signer_from_env(const struct adapter_env *env, struct dkim_signer **out,
    char *err, size_t errlen)
{
	size_t n;

	*out = NULL;
	if (env->dkim_domain == NULL && env->dkim_selector == NULL &&
	    env->dkim_key_file == NULL)
		return 0;
	if ((*out = dkim_signer_new(env->dkim_domain, env->dkim_selector,
		 env->dkim_key_file, err, errlen)) != NULL)
		return 0;
	n = strlen(err);
	if (n < errlen)
		snprintf(err + n, errlen - n, " ([email] dkim_key_file)");
	return -1;
}

void
dkim_signer_free(struct dkim_signer *ds)
{
	if (ds == NULL)
		return;
	if (ds->lib != NULL)
		dkim_close(ds->lib);
	if (ds->key != NULL) {
		explicit_bzero(ds->key, strlen((char *)ds->key));
		free(ds->key);
	}
	free(ds->domain);
	free(ds->selector);
	free(ds);
}

/* Feeds each header field of head[0..len) (CRLF-separated) to d. */
static DKIM_STAT
dkim_feed_headers(DKIM *d, const char *head, size_t len)
{
	const char *p = head, *end = head + len, *e;
	DKIM_STAT st;

	while (p < end) {
		e = p;
		/* A field ends at a CRLF not followed by space or tab. */
		for (;;) {
			e = memmem(e, (size_t)(end - e), "\r\n", 2);
			if (e == NULL)
				e = end;
			if (e + 2 < end && (e[2] == ' ' || e[2] == '\t')) {
				e += 2;
				continue;
			}
			break;
		}
		if ((st = dkim_header(d, (u_char *)(uintptr_t)p,
			 (size_t)(e - p))) != DKIM_STAT_OK)
			return st;
		p = e + 2;
	}
	return DKIM_STAT_OK;
}

char *
dkim_signer_sign(struct dkim_signer *ds, const char *msg, size_t len, char *err,
    size_t errlen)
{
	const char *sep;
	struct evbuffer *b = NULL;
	u_char *sig = NULL;
	size_t siglen = 0, i, hlen;
	DKIM_STAT st = DKIM_STAT_OK;
	DKIM *d;
	char *out = NULL;

	if ((sep = memmem(msg, len, "\r\n\r\n", 4)) == NULL) {
		snprintf(err, errlen, "dkim: message has no header/body break");
		return NULL;
	}
	d = dkim_sign(ds->lib, (const u_char *)"outreachd", NULL, ds->key,
	    (const u_char *)ds->selector, (const u_char *)ds->domain,
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1,
	    &st);
	if (d == NULL) {
		snprintf(err, errlen, "dkim: cannot start signing: %s",
		    dkim_getresultstr(st));
		return NULL;
	}
	hlen = (size_t)(sep - msg);
	if ((st = dkim_feed_headers(d, msg, hlen)) != DKIM_STAT_OK ||
	    (st = dkim_eoh(d)) != DKIM_STAT_OK ||
	    (st = dkim_body(d, (u_char *)(uintptr_t)(sep + 4),
		 len - hlen - 4)) != DKIM_STAT_OK ||
	    (st = dkim_eom(d, NULL)) != DKIM_STAT_OK ||
	    (st = dkim_getsighdr_d(d, strlen(DKIM_HDR), &sig, &siglen)) !=
		DKIM_STAT_OK) {
		snprintf(err, errlen, "dkim: signing failed: %s%s%s",
		    dkim_getresultstr(st), dkim_geterror(d) != NULL ? ": " : "",
		    dkim_geterror(d) != NULL ? dkim_geterror(d) : "");
		goto done;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("dkim_signer_sign: evbuffer_new failed");
	evbuffer_add(b, DKIM_HDR, strlen(DKIM_HDR));
	for (i = 0; i < siglen; i++) {
		if (sig[i] == '\n' && (i == 0 || sig[i - 1] != '\r'))
			evbuffer_add(b, "\r", 1);
		evbuffer_add(b, &sig[i], 1);
	}
	evbuffer_add(b, "\r\n", 3); /* with the NUL */
	out = xmalloc(evbuffer_get_length(b));
	evbuffer_remove(b, out, evbuffer_get_length(b));
	evbuffer_free(b);
done:
	dkim_free(d); /* also frees sig */
	return out;
}
