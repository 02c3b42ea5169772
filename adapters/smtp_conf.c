/*
 * smtp_conf.c - the SMTP adapter's [smtp] section and TLS context.
 *
 * Every key is checked at init with a FILE:LINE message (adapter rule 1):
 * the host, the addresses (From, envelope sender, Reply-To), the
 * timeouts and pool sizes, and the TLS rules: STARTTLS defaults to
 * required except on loopback, AUTH to a remote host needs it, and
 * ca_file needs TLS at all. The one SSL_CTX the adapter gives every
 * session is capped at TLS 1.2 (TLS 1.3 session tickets stall libESMTP).
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "compat.h"
#include "config_section.h"
#include "smtp-internal.h"
#include "workq.h"
#include "xmalloc.h"

static const char *const smtp_keys[] = {"host", "port", "starttls", "verify",
    "ca_file", "user", "password", "envelope_from", "from", "reply_to", "helo",
    "connect_timeout", "command_timeout", "data_timeout", "session_timeout",
    "workers", "session_max_messages", NULL};

static bool
smtp_host_is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost.localdomain") == 0;
}

/* The addr-spec of "Name <addr>" or "addr" into buf; -1 if none. */
static int
smtp_addr_spec(const char *value, char *buf, size_t len)
{
	const char *lt = strrchr(value, '<'), *gt, *p;

	if (lt != NULL) {
		if ((gt = strchr(lt, '>')) == NULL)
			return -1;
		snprintf(buf, len, "%.*s", (int)(gt - lt - 1), lt + 1);
	} else {
		while (isspace((unsigned char)*value))
			value++;
		snprintf(buf, len, "%s", value);
		while (*buf != '\0' &&
		    isspace((unsigned char)buf[strlen(buf) - 1]))
			buf[strlen(buf) - 1] = '\0';
	}
	if ((p = strchr(buf, '@')) == NULL || p == buf || p[1] == '\0' ||
	    strpbrk(buf, " \t\r\n<>") != NULL)
		return -1;
	return 0;
}

/* A key of [smtp] as read: its name and its value. */
struct smtp_conf_key {
	const char *key;
	const char *value;
};

/* The address in k->value into buf; FILE:LINE errors naming k->key. */
static int
smtp_conf_addr(const struct config_section *sec, const struct smtp_conf_key *k,
    char *buf, size_t len, char *err, size_t errlen)
{
	if (smtp_addr_spec(k->value, buf, len) == 0)
		return 0;
	snprintf(err, errlen,
	    "%s:%d: %s must hold an address (Name <user@domain> or "
	    "user@domain)",
	    sec->file, config_section_line(sec, k->key), k->key);
	return -1;
}

/* Reads [smtp] into c; FILE:LINE errors (rule 1). */
int
smtp_conf_load(struct smtp_conf *c, const struct config_section *sec, char *err,
    size_t errlen)
{
	const char *host = NULL, *tls = NULL, *ca = NULL, *user = NULL,
		   *pass = NULL, *env = NULL, *from = NULL, *reply = NULL,
		   *helo = NULL;
	char addr[MSG_ADDR_MAX];
	unsigned port = 0;

	if (config_section_check_keys(sec, smtp_keys, err, errlen) == -1 ||
	    config_section_str(sec, "host", true, &host, err, errlen) == -1 ||
	    config_section_uint(sec, "port",
		&(struct config_range){.min = 1, .max = 65535}, &port, err,
		errlen) == -1 ||
	    config_section_str(sec, "starttls", false, &tls, err, errlen) ==
		-1 ||
	    config_section_str(sec, "ca_file", false, &ca, err, errlen) == -1 ||
	    config_section_str(sec, "user", false, &user, err, errlen) == -1 ||
	    config_section_str(sec, "password", false, &pass, err, errlen) ==
		-1 ||
	    config_section_str(sec, "envelope_from", false, &env, err,
		errlen) == -1 ||
	    config_section_str(sec, "from", true, &from, err, errlen) == -1 ||
	    config_section_str(sec, "reply_to", false, &reply, err, errlen) ==
		-1 ||
	    config_section_str(sec, "helo", false, &helo, err, errlen) == -1)
		return -1;
	c->verify = true;
	c->connect_ms = 10000;
	c->command_ms = 60000;
	c->data_ms = 120000;
	c->session_ms = 600000;
	c->workers = 8; /* bench/smtp, bench/README.md */
	c->session_max = 100;
	if (config_section_bool(sec, "verify", &c->verify, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "connect_timeout",
		&(struct config_range){.min = 100, .max = 600000},
		&c->connect_ms, err, errlen) == -1 ||
	    /* libESMTP's floor is 1000 ms, override or not */
	    config_section_duration_ms(sec, "command_timeout",
		&(struct config_range){.min = 1000, .max = 600000},
		&c->command_ms, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "data_timeout",
		&(struct config_range){.min = 1000, .max = 3600000},
		&c->data_ms, err, errlen) == -1 ||
	    config_section_duration_ms(sec, "session_timeout",
		&(struct config_range){.min = 1000, .max = 86400000},
		&c->session_ms, err, errlen) == -1 ||
	    config_section_uint(sec, "workers",
		&(struct config_range){.min = 1, .max = WORKQ_MAX_THREADS},
		&c->workers, err, errlen) == -1 ||
	    config_section_uint(sec, "session_max_messages",
		&(struct config_range){.min = 1, .max = 1000}, &c->session_max,
		err, errlen) == -1)
		return -1;
	if (host[0] == '\0' || strpbrk(host, " \t:/[]") != NULL) {
		snprintf(err, errlen,
		    "%s:%d: host must be a host name or an IPv4 address "
		    "(put the port in 'port')",
		    sec->file, config_section_line(sec, "host"));
		return -1;
	}
	if (tls == NULL)
		c->tls = smtp_host_is_loopback(host) ? SMTP_TLS_OFF
						     : SMTP_TLS_REQUIRED;
	else if (strcmp(tls, "required") == 0)
		c->tls = SMTP_TLS_REQUIRED;
	else if (strcmp(tls, "opportunistic") == 0)
		c->tls = SMTP_TLS_OPPORTUNISTIC;
	else if (strcmp(tls, "off") == 0)
		c->tls = SMTP_TLS_OFF;
	else {
		snprintf(err, errlen,
		    "%s:%d: starttls must be required, opportunistic or off, "
		    "not '%s'",
		    sec->file, config_section_line(sec, "starttls"), tls);
		return -1;
	}
	if ((user == NULL) != (pass == NULL)) {
		snprintf(err, errlen, "%s:%d: user and password go together",
		    sec->file,
		    config_section_line(sec,
			user == NULL ? "password" : "user"));
		return -1;
	}
	if (user != NULL && c->tls != SMTP_TLS_REQUIRED &&
	    !smtp_host_is_loopback(host)) {
		snprintf(err, errlen,
		    "%s:%d: AUTH to a remote host needs starttls = required "
		    "(the password would cross the network in clear text)",
		    sec->file, config_section_line(sec, "starttls"));
		return -1;
	}
	if (ca != NULL && c->tls == SMTP_TLS_OFF) {
		snprintf(err, errlen,
		    "%s:%d: ca_file is set but starttls = off", sec->file,
		    config_section_line(sec, "ca_file"));
		return -1;
	}
	if (smtp_conf_addr(sec,
		&(struct smtp_conf_key){.key = "from", .value = from}, addr,
		sizeof(addr), err, errlen) == -1)
		return -1;
	c->domain = xstrdup(strrchr(addr, '@') + 1);
	if (env == NULL)
		env = addr;
	else if (smtp_conf_addr(sec,
		     &(struct smtp_conf_key){.key = "envelope_from",
			 .value = env},
		     addr, sizeof(addr), err, errlen) == -1)
		return -1;
	else
		env = addr;
	if (reply != NULL) {
		char tmp[MSG_ADDR_MAX];

		if (smtp_conf_addr(sec,
			&(struct smtp_conf_key){.key = "reply_to",
			    .value = reply},
			tmp, sizeof(tmp), err, errlen) == -1)
			return -1;
	}
	if (helo != NULL &&
	    (helo[0] == '\0' || strpbrk(helo, " \t\r\n<>@") != NULL)) {
		snprintf(err, errlen, "%s:%d: helo must be a host name",
		    sec->file, config_section_line(sec, "helo"));
		return -1;
	}
	c->port = port != 0 ? port : user != NULL ? 587 : 25;
	c->host = xstrdup(host);
	snprintf(c->server, sizeof(c->server), "%s:%u", host, c->port);
	c->ca_file = ca != NULL ? xstrdup(ca) : NULL;
	c->user = user != NULL ? xstrdup(user) : NULL;
	c->password = pass != NULL ? xstrdup(pass) : NULL;
	c->envelope_from = xstrdup(env);
	c->from = xstrdup(from);
	c->reply_to = reply != NULL ? xstrdup(reply) : NULL;
	c->helo = helo != NULL ? xstrdup(helo) : NULL;
	return 0;
}

void
smtp_conf_clear(struct smtp_conf *c)
{
	free(c->host);
	free(c->ca_file);
	free(c->user);
	if (c->password != NULL)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c->envelope_from);
	free(c->from);
	free(c->reply_to);
	free(c->helo);
	free(c->domain);
	dkim_signer_free(c->dkim);
	memset(c, 0, sizeof(*c));
}

/* The adapter's SSL_CTX: TLS 1.2 only (§12.4 bug 2), system + ca_file. */
SSL_CTX *
smtp_tls_ctx(const struct smtp_conf *c, const struct config_section *sec,
    char *err, size_t errlen)
{
	SSL_CTX *ctx;
	unsigned long e;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "smtp: SSL_CTX_new failed");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "smtp: cannot set up the TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->ca_file != NULL &&
	    SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen, "%s:%d: cannot load ca_file %s: %s",
		    sec->file, config_section_line(sec, "ca_file"), c->ca_file,
		    e != 0 ? ERR_reason_error_string(e) : "unknown error");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* libESMTP checks the verify result and the name itself and asks
	 * the event callback (smtp_on_event); the handshake completes. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}
