/*
 * file.c - the local email adapter: each outbound email is written as a
 * complete RFC 5322 message, VAR/mail/<id>.eml, instead of going to an
 * SMTP relay. It is the email default of a fresh install, so a new user
 * can read exactly what would have been sent.
 *
 * Keys of [email] with adapter = file:
 *   dir       where .eml files go (default VAR/mail)
 *   from      From header (default "outreachd <outreachd@localhost>")
 *   reply_to  Reply-To header (default none)
 * With [email] dkim_domain, dkim_selector and dkim_key_file, each message
 * is DKIM-signed (dkim.h), as the SMTP adapter does.
 * A file is written to a temporary name, fsynced, renamed and its
 * directory fsynced (fileutil_publish), so a reader never sees half a
 * message and a message reported sent is on disk, also after a power
 * loss. Files are 0600 and the directory 0700: they hold addresses and
 * bodies. That write and the fsyncs run on the loop thread:
 * fine for a local stand-in, which is all this adapter is; real mail goes
 * through the SMTP adapter, on worker threads (issue 5).
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/rand.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "dkim.h"
#include "fileutil.h"
#include "log.h"
#include "mime.h"
#include "xmalloc.h"

#define FILE_DEFAULT_FROM "outreachd <outreachd@localhost>"

struct file_email {
	char *dir;
	char *from;
	char *reply_to;		  /* NULL = none */
	char *domain;		  /* for Message-IDs, from the From address */
	struct dkim_signer *dkim; /* NULL = no signing */
};

static int file_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int file_send(struct adapter *, const struct out_msg *,
    adapter_done_fn *, void *);
static void file_free(struct adapter *);
static int file_write(struct file_email *, const struct out_msg *,
    struct send_result *);

const struct adapter_ops file_ops = {
    .name = "file",
    .channel = CHANNEL_EMAIL,
    .init = file_init,
    .send = file_send,
    .free = file_free,
};

/* All but the last three are the core's [email] keys (config.c). */
static const char *const file_keys[] = {"adapter", "bounce_limit",
    "unsubscribe_mailto", "secret_file", "dkim_domain", "dkim_selector",
    "dkim_key_file", "dir", "from", "reply_to", NULL};

static int
file_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	struct file_email *f;
	const char *dir = NULL, *from = NULL, *reply_to = NULL, *at, *end;

	if (sec != NULL &&
	    (config_section_check_keys(sec, file_keys, err, errlen) == -1 ||
		config_section_str(sec, "dir", false, &dir, err, errlen) ==
		    -1 ||
		config_section_str(sec, "from", false, &from, err, errlen) ==
		    -1 ||
		config_section_str(sec, "reply_to", false, &reply_to, err,
		    errlen) == -1))
		return -1;
	if (from == NULL)
		from = FILE_DEFAULT_FROM;
	if ((at = strrchr(from, '@')) == NULL) {
		snprintf(err, errlen,
		    "%s:%d: from must hold an address "
		    "(Name <user@domain>)",
		    sec->file, config_section_line(sec, "from"));
		return -1;
	}
	f = xcalloc(1, sizeof(*f));
	if (dir == NULL)
		f->dir = xasprintf("%s/mail", ad->env.var_dir);
	else if (dir[0] != '/')
		f->dir = xasprintf("%s/%s", ad->env.var_dir, dir);
	else
		f->dir = xstrdup(dir);
	f->from = xstrdup(from);
	f->reply_to = reply_to != NULL ? xstrdup(reply_to) : NULL;
	end = strchr(at, '>');
	f->domain = xstrndup(at + 1,
	    end != NULL ? (size_t)(end - at - 1) : strlen(at + 1));
	ad->priv = f;
	if (dkim_signer_from_env(&ad->env, &f->dkim, err, errlen) == -1) {
		file_free(ad); /* adapter_new() frees only the instance */
		ad->priv = NULL;
		return -1;
	}
	return 0;
}

/* Writes msg to DIR/<id>.eml; fills res with the outcome. */
static int
file_write(struct file_email *f, const struct out_msg *msg,
    struct send_result *res)
{
	struct mime_msg m = {0};
	struct evbuffer *buf = evbuffer_new();
	unsigned char rnd[8];
	char msgid[120], path[4096], err[512];
	int rc = -1;

	if (buf == NULL)
		fatalx("file_write: evbuffer_new failed");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(msgid, sizeof(msgid),
	    "%lld.%02x%02x%02x%02x%02x%02x%02x%02x"
	    "@%.64s",
	    (long long)msg->id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
	    rnd[6], rnd[7], f->domain);
	m.from = msg->from[0] != '\0' ? msg->from : f->from;
	m.to = msg->to;
	m.reply_to = f->reply_to;
	m.subject = msg->subject != NULL ? msg->subject : "";
	m.text = msg->body;
	m.html = msg->html;
	m.message_id = msgid;
	m.date = (int64_t)time(NULL);
	m.unsubscribe_url = msg->unsubscribe_url;
	m.unsubscribe_mailto = msg->unsubscribe_mailto;
	if (mime_build(&m, buf, err, sizeof(err)) == -1) {
		send_result_set(res, SEND_PERMANENT, 0, "%s", err);
		goto done;
	}
	if (f->dkim != NULL) {
		char *sig = dkim_signer_sign(f->dkim,
		    (const char *)evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf), err, sizeof(err));

		if (sig == NULL) {
			send_result_set(res, SEND_TRANSIENT, 0, "%s", err);
			goto done;
		}
		evbuffer_prepend(buf, sig, strlen(sig));
		free(sig);
	}
	snprintf(path, sizeof(path), "%s/%lld.eml", f->dir, (long long)msg->id);
	if (mkdir(f->dir, 0700) == 0) {
		/* a new directory's own entry is synced in its parent */
		if (fileutil_sync_dir(f->dir, err, sizeof(err)) == -1) {
			send_result_set(res, SEND_TRANSIENT, 0, "%s", err);
			goto done;
		}
	} else if (errno != EEXIST) {
		send_result_set(res, SEND_TRANSIENT, 0, "cannot create %s: %s",
		    f->dir, strerror(errno));
		goto done;
	}
	if (fileutil_publish(path, evbuffer_pullup(buf, -1),
		evbuffer_get_length(buf), 0600, false, err,
		sizeof(err)) == -1) {
		send_result_set(res, SEND_TRANSIENT, 0, "%s", err);
		goto done;
	}
	send_result_set(res, SEND_ACCEPTED, 0, NULL);
	snprintf(res->provider_id, sizeof(res->provider_id), "<%.120s>", msgid);
	rc = 0;
done:
	evbuffer_free(buf);
	return rc;
}

static int
file_send(struct adapter *ad, const struct out_msg *msg, adapter_done_fn *done,
    void *arg)
{
	struct send_result res;
	char masked[MSG_ADDR_MAX];

	if (file_write(ad->priv, msg, &res) == 0)
		log_info("file_email msg=%lld to=%s", (long long)msg->id,
		    log_mask_email(msg->to, masked, sizeof(masked)));
	adapter_complete_later(ad, done, arg, &res);
	return 0;
}

static void
file_free(struct adapter *ad)
{
	struct file_email *f = ad->priv;

	if (f == NULL)
		return;
	free(f->dir);
	free(f->from);
	free(f->reply_to);
	free(f->domain);
	dkim_signer_free(f->dkim);
	free(f);
}
