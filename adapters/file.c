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
 *   workers   threads that write the files (default 2)
 * With [email] dkim_domain, dkim_selector and dkim_key_file, each message
 * is DKIM-signed (dkim.h), as the SMTP adapter does.
 *
 * Durability: a file is written to a temporary name, fsynced and renamed
 * (fileutil_publish_nodirsync), and the directory is fsynced after the
 * renames, so a reader never sees half a message and a message reported
 * sent is on disk with its name, also after a power loss. Files are 0600
 * and the directory 0700: they hold addresses and bodies.
 *
 * Threads and batches: those fsyncs take milliseconds each, and on the
 * loop thread they stopped the API while an alert's emails were written
 * (about 110 emails/s). So send() only copies the message into a pending
 * list (adapter.h rule 3). At the end of the loop turn, when a worker is
 * free, the pending messages are cut into batches, one per free worker
 * and at most FILE_BATCH_MAX each; a batch that fills up while every
 * worker is busy is queued at once. A worker (workq) builds each message
 * of its batch (mime_build() is pure; DKIM signing may run on any
 * thread), writes, fsyncs and renames each file, then fsyncs the
 * directory ONCE for the whole batch: one fsync covers every rename
 * before it. Only then do the results go back to the loop, where workq's
 * done callback calls each message's done exactly once: accepted for a
 * file whose bytes and name are on disk, transient for one that could not
 * be written (the others of its batch as they went), and transient for
 * every renamed one if the directory fsync failed (its retry replaces the
 * file, so nothing is written twice). A lone message leaves on the next
 * loop turn; under load, what arrives while the workers are busy becomes
 * the next batches.
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "adapter.h"
#include "compat.h"
#include "config_section.h"
#include "dkim.h"
#include "fileutil.h"
#include "log.h"
#include "mime.h"
#include "workq.h"
#include "xmalloc.h"

#define FILE_DEFAULT_FROM "outreachd <outreachd@localhost>"
/* Two workers keep two fsyncs in flight; more rarely helps one disk. */
#define FILE_DEFAULT_WORKERS 2
/* Files per directory fsync, at most: enough to make the fsync rare
 * (64 files of a few KB each), small enough that a batch's last message
 * does not wait long for its first. */
#define FILE_BATCH_MAX 64

/* One message, copied from its out_msg (adapter.h rule 3). */
struct file_item {
	TAILQ_ENTRY(file_item) entry;
	struct mime_copy msg; /* what to write */
	int64_t date;
	adapter_done_fn *done;
	void *arg;
	/* worker side, read by the loop once the batch is done */
	char msgid[160];
	bool renamed; /* its name is in the directory, not yet synced */
	struct send_result res;
};
TAILQ_HEAD(file_item_list, file_item);

struct file_email;

/* One workq job: files that share one directory fsync. */
struct file_batch {
	struct file_email *f;
	struct file_item_list items;
	unsigned nitems;
	/* worker side, read by the loop once the batch is done */
	unsigned accepted;
	unsigned transient; /* what the operator must look at: the disk */
	char err[256];	    /* the first transient failure, "" = none */
};

struct file_email {
	/* read-only once init returns: the workers read them */
	char *dir;
	char *from;
	char *reply_to;		  /* NULL = none */
	char *domain;		  /* for Message-IDs, from the From address */
	struct dkim_signer *dkim; /* NULL = no signing */
	unsigned workers;
	/* loop thread */
	struct adapter *ad;
	struct workq *wq; /* started by the first batch */
	struct file_item_list pending;
	unsigned npending;
	unsigned nrunning; /* batches submitted whose done has not run */
	struct event *kick_ev;
	bool kick_scheduled;
	bool freeing;
	/* shared with the workers, under mu */
	pthread_mutex_t mu;
	bool stopping; /* file_free() began: write no more files */
};

static int file_init(struct adapter *, const struct config_section *, char *,
    size_t);
static int file_send(struct adapter *, const struct out_msg *,
    adapter_done_fn *, void *);
static void file_drain(struct adapter *);
static void file_free(struct adapter *);
static void file_item_free(struct file_item *);
static void file_schedule(struct file_email *);
static void file_on_kick(evutil_socket_t, short, void *);
static void file_dispatch(struct file_email *, bool);
static void file_submit(struct file_email *, unsigned);
static void file_batch_run(void *);
static void file_batch_done(void *, bool);
static void file_batch_fail(struct file_batch *, struct file_item *,
    const char *);
static int file_make_dir(struct file_email *, char *, size_t);
static bool file_is_stopping(struct file_email *);
static void file_write(struct file_email *, struct file_item *);

const struct adapter_ops file_ops = {
    .name = "file",
    .channel = CHANNEL_EMAIL,
    .init = file_init,
    .send = file_send,
    .drain = file_drain,
    .free = file_free,
};

/* All but the last four are the core's [email] keys (config.c). */
static const char *const file_keys[] = {"adapter", "bounce_limit",
    "unsubscribe_mailto", "secret_file", "dkim_domain", "dkim_selector",
    "dkim_key_file", "dir", "from", "reply_to", "workers", NULL};

/* ---------------------------------------------------------------------
 * Init and the loop side
 */

static int
file_init(struct adapter *ad, const struct config_section *sec, char *err,
    size_t errlen)
{
	struct file_email *f;
	const char *dir = NULL, *from = NULL, *reply_to = NULL, *at, *end;
	unsigned workers = FILE_DEFAULT_WORKERS;

	if (sec != NULL &&
	    (config_section_check_keys(sec, file_keys, err, errlen) == -1 ||
		config_section_str(sec, "dir", false, &dir, err, errlen) ==
		    -1 ||
		config_section_str(sec, "from", false, &from, err, errlen) ==
		    -1 ||
		config_section_str(sec, "reply_to", false, &reply_to, err,
		    errlen) == -1 ||
		config_section_uint(sec, "workers",
		    &(struct config_range){.min = 1, .max = WORKQ_MAX_THREADS},
		    &workers, err, errlen) == -1))
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
	f->workers = workers;
	f->ad = ad;
	TAILQ_INIT(&f->pending);
	pthread_mutex_init(&f->mu, NULL);
	ad->priv = f;
	if (dkim_signer_from_env(&ad->env, &f->dkim, err, errlen) == -1) {
		file_free(ad); /* adapter_new() frees only the instance */
		return -1;
	}
	/* no loop under --check-config: nothing is sent there */
	if (ad->env.base != NULL &&
	    (f->kick_ev = event_new(ad->env.base, -1, 0, file_on_kick, f)) ==
		NULL)
		fatalx("file_init: event_new failed");
	return 0;
}

static int
file_send(struct adapter *ad, const struct out_msg *msg, adapter_done_fn *done,
    void *arg)
{
	struct file_email *f = ad->priv;
	struct file_item *it;

	if (f->kick_ev == NULL || f->freeing)
		return -1;
	it = xcalloc(1, sizeof(*it));
	mime_copy_init(&it->msg, msg);
	it->date = (int64_t)time(NULL);
	it->done = done;
	it->arg = arg;
	TAILQ_INSERT_TAIL(&f->pending, it, entry);
	f->npending++;
	/* a full batch goes now (to a queue, if no worker is free); the
	 * rest at the end of the loop turn */
	if (f->npending >= FILE_BATCH_MAX)
		file_dispatch(f, false);
	file_schedule(f);
	return 0;
}

/* Runs file_on_kick() at the end of this loop turn, once. */
static void
file_schedule(struct file_email *f)
{
	if (f->kick_scheduled || f->kick_ev == NULL || f->npending == 0)
		return;
	f->kick_scheduled = true;
	event_active(f->kick_ev, EV_TIMEOUT, 0);
}

static void
file_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct file_email *f = arg;

	(void)fd;
	(void)what;
	f->kick_scheduled = false;
	file_dispatch(f, true);
}

/*
 * Cuts pending messages into batches for the workers. With 'turn_end'
 * (the loop turn is over: nothing more arrives now), a backlog is spread
 * over the free workers, so a lone message leaves at once and several go
 * in parallel; while every worker is busy, only full batches are queued
 * and the rest waits for a worker to finish (file_batch_done() calls
 * back here), so that it joins a larger batch.
 */
static void
file_dispatch(struct file_email *f, bool turn_end)
{
	unsigned n, idle;

	while (f->npending > 0 && !f->freeing) {
		if (turn_end && f->nrunning < f->workers) {
			idle = f->workers - f->nrunning;
			n = (f->npending + idle - 1) / idle;
			if (n > FILE_BATCH_MAX)
				n = FILE_BATCH_MAX;
		} else if (f->npending >= FILE_BATCH_MAX)
			n = FILE_BATCH_MAX;
		else
			break;
		file_submit(f, n);
	}
}

/* Hands the first n pending messages to a worker as one batch. */
static void
file_submit(struct file_email *f, unsigned n)
{
	struct file_batch *b;
	struct file_item *it;
	char err[256];

	if (f->wq == NULL &&
	    (f->wq = workq_new(f->ad->env.base, f->workers, err,
		 sizeof(err))) == NULL)
		fatalx("file_email: cannot start workers: %s", err);
	b = xcalloc(1, sizeof(*b));
	b->f = f;
	TAILQ_INIT(&b->items);
	while (b->nitems < n && (it = TAILQ_FIRST(&f->pending)) != NULL) {
		TAILQ_REMOVE(&f->pending, it, entry);
		TAILQ_INSERT_TAIL(&b->items, it, entry);
		b->nitems++;
		f->npending--;
	}
	f->nrunning++;
	if (workq_submit(f->wq, file_batch_run, file_batch_done, b) == -1)
		fatalx("file_email: workq_submit refused a batch");
}

/*
 * workq done, on the loop thread: each message's one done call, then the
 * next batches. After file_free() began (its workq_free() runs this),
 * the core has given those sends up (adapter.h rule 6): nothing is
 * called, the items are only freed.
 */
static void
file_batch_done(void *arg, bool cancelled)
{
	struct file_batch *b = arg;
	struct file_email *f = b->f;
	struct file_item *it;
	char masked[MSG_ADDR_MAX];

	f->nrunning--;
	/* a message mime_build() refused fails alone (msg_failed); a file
	 * that cannot be written is the disk's problem: say so once */
	if (!f->freeing && b->transient > 0)
		log_warnx("file_email_failed dir=%s messages=%u written=%u "
			  "transient=%u error=\"%s\"",
		    f->dir, b->nitems, b->accepted, b->transient, b->err);
	while ((it = TAILQ_FIRST(&b->items)) != NULL) {
		TAILQ_REMOVE(&b->items, it, entry);
		if (!f->freeing) {
			if (cancelled) /* not reached: only file_free cancels */
				send_result_set(&it->res, SEND_TRANSIENT, 0,
				    "not written: shutting down");
			if (it->res.outcome == SEND_ACCEPTED)
				log_info("file_email msg=%lld to=%s",
				    (long long)it->msg.id,
				    log_mask_email(it->msg.to, masked,
					sizeof(masked)));
			it->done(it->arg, &it->res);
		}
		file_item_free(it);
	}
	free(b);
	if (!f->freeing)
		file_schedule(f);
}

/*
 * Stops new work (adapter.c refuses sends from now on): what is pending
 * is handed to the workers at once instead of at the end of the turn, so
 * it is written and reported before the shutdown deadline.
 */
static void
file_drain(struct adapter *ad)
{
	struct file_email *f = ad->priv;

	while (f->npending > 0)
		file_submit(f,
		    f->npending < FILE_BATCH_MAX ? f->npending
						 : FILE_BATCH_MAX);
}

/*
 * Rule 6: the workers write no further file (a batch under way still
 * syncs the directory for those it renamed) and are joined; the done
 * callbacks of the batches then run without calling done, and pending
 * messages are dropped: the core gave them all up at its deadline.
 */
static void
file_free(struct adapter *ad)
{
	struct file_email *f = ad->priv;
	struct file_item *it;

	if (f == NULL)
		return;
	f->freeing = true;
	pthread_mutex_lock(&f->mu);
	f->stopping = true;
	pthread_mutex_unlock(&f->mu);
	workq_free(f->wq);
	while ((it = TAILQ_FIRST(&f->pending)) != NULL) {
		TAILQ_REMOVE(&f->pending, it, entry);
		file_item_free(it);
	}
	if (f->kick_ev != NULL)
		event_free(f->kick_ev);
	pthread_mutex_destroy(&f->mu);
	free(f->dir);
	free(f->from);
	free(f->reply_to);
	free(f->domain);
	dkim_signer_free(f->dkim);
	free(f);
	ad->priv = NULL;
}

static void
file_item_free(struct file_item *it)
{
	mime_copy_clear(&it->msg);
	free(it);
}

/* ---------------------------------------------------------------------
 * The worker side: only the batch, the read-only configuration and mu
 */

/*
 * workq run: writes and renames every file of the batch, then fsyncs the
 * directory once and only then counts the renamed ones accepted. Fills
 * each item's res.
 */
static void
file_batch_run(void *arg)
{
	struct file_batch *b = arg;
	struct file_email *f = b->f;
	struct file_item *it, *last = NULL;
	char path[PATH_MAX], err[256];

	if (file_make_dir(f, err, sizeof(err)) == -1) {
		TAILQ_FOREACH(it, &b->items, entry)
			file_batch_fail(b, it, err);
		return;
	}
	TAILQ_FOREACH(it, &b->items, entry) {
		if (file_is_stopping(f))
			send_result_set(&it->res, SEND_TRANSIENT, 0,
			    "not written: shutting down");
		else
			file_write(f, it);
		if (it->renamed)
			last = it;
		else if (it->res.outcome == SEND_TRANSIENT)
			file_batch_fail(b, it, it->res.text);
	}
	if (last == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%lld.eml", f->dir,
	    (long long)last->msg.id);
	if (fileutil_sync_dir(path, err, sizeof(err)) == -1) {
		/* their names may not survive a power loss: not sent */
		TAILQ_FOREACH(it, &b->items, entry)
			if (it->renamed)
				file_batch_fail(b, it, err);
		return;
	}
	TAILQ_FOREACH(it, &b->items, entry)
		if (it->renamed) {
			send_result_set(&it->res, SEND_ACCEPTED, 0, NULL);
			snprintf(it->res.provider_id,
			    sizeof(it->res.provider_id), "<%.120s>", it->msgid);
			b->accepted++;
		}
}

/* Reports it transient with 'why' and counts it for the batch's warning. */
static void
file_batch_fail(struct file_batch *b, struct file_item *it, const char *why)
{
	char text[sizeof(it->res.text)];

	strlcpy(text, why, sizeof(text)); /* why may be it->res.text */
	send_result_set(&it->res, SEND_TRANSIENT, 0, "%s", text);
	if (b->transient++ == 0)
		strlcpy(b->err, text, sizeof(b->err));
}

/*
 * Creates the directory if it is missing; a new directory's own entry is
 * synced in its parent before any file goes in. Under mu, so a worker
 * that finds the directory (EEXIST) cannot report files in it before the
 * worker that created it has synced that entry.
 */
static int
file_make_dir(struct file_email *f, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (mkdir(f->dir, 0700) == 0)
		rc = fileutil_sync_dir(f->dir, err, errlen);
	else if (errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", f->dir,
		    strerror(errno));
		rc = -1;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static bool
file_is_stopping(struct file_email *f)
{
	bool stopping;

	pthread_mutex_lock(&f->mu);
	stopping = f->stopping;
	pthread_mutex_unlock(&f->mu);
	return stopping;
}

/*
 * Builds (and signs) it and publishes DIR/<id>.eml without the directory
 * fsync: on success it->renamed is set and the caller syncs; on failure
 * it->res holds the final result.
 */
static void
file_write(struct file_email *f, struct file_item *it)
{
	struct mime_msg m = {0};
	struct evbuffer *buf = evbuffer_new();
	unsigned char rnd[8];
	char path[PATH_MAX], err[512];

	if (buf == NULL)
		fatalx("file_write: evbuffer_new failed");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(it->msgid, sizeof(it->msgid),
	    "%lld.%02x%02x%02x%02x%02x%02x%02x%02x"
	    "@%.64s",
	    (long long)it->msg.id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
	    rnd[5], rnd[6], rnd[7], f->domain);
	m.from = it->msg.from != NULL ? it->msg.from : f->from;
	m.to = it->msg.to;
	m.reply_to = f->reply_to;
	m.subject = it->msg.subject != NULL ? it->msg.subject : "";
	m.text = it->msg.body;
	m.html = it->msg.html;
	m.message_id = it->msgid;
	m.date = it->date;
	m.unsubscribe_url = it->msg.unsubscribe_url;
	m.unsubscribe_mailto = it->msg.unsubscribe_mailto;
	if (mime_build(&m, buf, err, sizeof(err)) == -1) {
		send_result_set(&it->res, SEND_PERMANENT, 0, "%s", err);
		goto done;
	}
	if (f->dkim != NULL) {
		char *sig = dkim_signer_sign(f->dkim,
		    (const char *)evbuffer_pullup(buf, -1),
		    evbuffer_get_length(buf), err, sizeof(err));

		if (sig == NULL) {
			send_result_set(&it->res, SEND_TRANSIENT, 0, "%s", err);
			goto done;
		}
		evbuffer_prepend(buf, sig, strlen(sig));
		free(sig);
	}
	snprintf(path, sizeof(path), "%s/%lld.eml", f->dir,
	    (long long)it->msg.id);
	if (fileutil_publish_nodirsync(path, evbuffer_pullup(buf, -1),
		evbuffer_get_length(buf),
		&(struct fileutil_create){.mode = 0600, .excl = false}, err,
		sizeof(err)) == -1) {
		send_result_set(&it->res, SEND_TRANSIENT, 0, "%s", err);
		goto done;
	}
	it->renamed = true;
done:
	evbuffer_free(buf);
}
