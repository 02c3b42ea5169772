/*
 * check_file_email.c - unit tests of the file email adapter
 * (adapters/file.c) on a real event loop and its worker threads: every
 * send gets exactly one done, on the loop, after its file is in place;
 * a file that cannot be written fails alone (transient) and a message
 * mime_build() refuses fails alone (permanent); drain() writes what is
 * pending; free() with batches in flight calls no done at all (the core
 * gave them up, adapter.h rule 6) and leaves no temporary file.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "adapter.h"
#include "check_suites.h"
#include "check_util.h"
#include "message.h"

#define FE_MAX 400 /* message ids 1..FE_MAX */

static char fe_dir[64];
static struct event_base *fe_base;
static struct adapter *fe_ad;
static unsigned fe_ndone;
static unsigned fe_calls[FE_MAX + 1];
static struct send_result fe_res[FE_MAX + 1];

static void
fe_setup(void)
{
	strcpy(fe_dir, "/tmp/od-file-email-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fe_dir));
	ck_assert_ptr_nonnull(fe_base = event_base_new());
	fe_ndone = 0;
	memset(fe_calls, 0, sizeof(fe_calls));
	memset(fe_res, 0, sizeof(fe_res));
	fe_ad = NULL;
}

static void
fe_teardown(void)
{
	adapter_free(fe_ad);
	event_base_free(fe_base);
	cku_rmtree(fe_dir);
}

/* The adapter with its defaults: VAR/mail, 2 workers, no DKIM. */
static struct adapter *
fe_make(void)
{
	struct adapter_env env = {.base = fe_base, .var_dir = fe_dir};
	char err[256];

	fe_ad = adapter_new("file", "email", &env, NULL, err, sizeof(err));
	ck_assert_msg(fe_ad != NULL, "%s", err);
	return fe_ad;
}

static void
fe_on_done(void *arg, const struct send_result *res)
{
	intptr_t id = (intptr_t)arg;

	fe_calls[id]++;
	fe_res[id] = *res;
	fe_ndone++;
}

/* Sends message 'id' to m<id>@example.org with 'subject'. */
static void
fe_send(int64_t id, const char *subject)
{
	struct out_msg m = {0};

	m.id = id;
	m.channel = CHANNEL_EMAIL;
	snprintf(m.to, sizeof(m.to), "m%lld@example.org", (long long)id);
	m.subject = (char *)subject;
	m.body = (char *)"Hello,\nsee you there.\n";
	ck_assert_int_eq(
	    adapter_send(fe_ad, &m, fe_on_done, (void *)(intptr_t)id), 0);
}

/* Runs the loop until n done callbacks came (check's timeout bounds it). */
static void
fe_run_until(unsigned n)
{
	while (fe_ndone < n)
		ck_assert_int_ne(event_base_loop(fe_base, EVLOOP_ONCE), -1);
}

/* The .eml of 'id' as a string (caller frees), or NULL. */
static char *
fe_read(int64_t id)
{
	char path[PATH_MAX], *buf;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/mail/%lld.eml", fe_dir, (long long)id);
	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	buf = calloc(1, 65536);
	ck_assert_ptr_nonnull(buf);
	n = read(fd, buf, 65535);
	close(fd);
	ck_assert_int_gt(n, 0);
	return buf;
}

/* Files in VAR/mail whose name starts with '.' (temporary files). */
static unsigned
fe_count_tmp(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/mail", fe_dir);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* 150 messages (more than two full batches): each one done, accepted,
 * with its Message-ID, and its file whole on disk. */
START_TEST(test_file_email_every_send_done_once)
{
	char want[64], *data;
	int64_t id;

	fe_make();
	for (id = 1; id <= 150; id++)
		fe_send(id, "Tenant meeting");
	ck_assert_uint_eq(fe_ndone, 0); /* never from inside send() */
	fe_run_until(150);
	for (id = 1; id <= 150; id++) {
		ck_assert_uint_eq(fe_calls[id], 1);
		ck_assert_int_eq(fe_res[id].outcome, SEND_ACCEPTED);
		ck_assert_msg(fe_res[id].provider_id[0] == '<',
		    "provider_id '%s'", fe_res[id].provider_id);
		data = fe_read(id);
		ck_assert_ptr_nonnull(data);
		snprintf(want, sizeof(want), "To: m%lld@example.org\r\n",
		    (long long)id);
		ck_assert_ptr_nonnull(strstr(data, want));
		ck_assert_ptr_nonnull(strstr(data, "see you there."));
		ck_assert_ptr_nonnull(strstr(data,
		    fe_res[id].provider_id)); /* the Message-ID header */
		free(data);
	}
	ck_assert_uint_eq(fe_count_tmp(), 0);
}
END_TEST

/* One file cannot be renamed into place, one message cannot be built:
 * each fails alone, the rest of the batch is written. */
START_TEST(test_file_email_failure_is_per_message)
{
	char path[PATH_MAX];
	int64_t id;

	snprintf(path, sizeof(path), "%s/mail", fe_dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/mail/3.eml", fe_dir);
	ck_assert_int_eq(mkdir(path, 0700), 0); /* rename onto it: EISDIR */
	fe_make();
	for (id = 1; id <= 6; id++)
		fe_send(id, id == 5 ? "two\r\nlines" : "s");
	fe_run_until(6);
	for (id = 1; id <= 6; id++) {
		ck_assert_uint_eq(fe_calls[id], 1);
		if (id == 3) {
			ck_assert_int_eq(fe_res[id].outcome, SEND_TRANSIENT);
			ck_assert_ptr_nonnull(
			    strstr(fe_res[id].text, "Is a directory"));
		} else if (id == 5) {
			ck_assert_int_eq(fe_res[id].outcome, SEND_PERMANENT);
			ck_assert_ptr_nonnull(
			    strstr(fe_res[id].text, "line break"));
		} else
			ck_assert_int_eq(fe_res[id].outcome, SEND_ACCEPTED);
	}
	ck_assert_ptr_null(fe_read(5));
	ck_assert_uint_eq(fe_count_tmp(), 0);
}
END_TEST

/* drain(): what is pending is still written and reported. */
START_TEST(test_file_email_drain_writes_pending)
{
	int64_t id;

	fe_make();
	for (id = 1; id <= 100; id++)
		fe_send(id, "s");
	adapter_drain(fe_ad);
	fe_run_until(100);
	for (id = 1; id <= 100; id++) {
		ck_assert_uint_eq(fe_calls[id], 1);
		ck_assert_int_eq(fe_res[id].outcome, SEND_ACCEPTED);
	}
}
END_TEST

/* free() with batches queued and running: no done at all afterwards,
 * every file that exists is whole, no temporary file is left. */
START_TEST(test_file_email_free_in_flight)
{
	char *data;
	int64_t id;

	fe_make();
	for (id = 1; id <= FE_MAX; id++)
		fe_send(id, "s");
	/* one turn: the end-of-turn kick hands the rest to the workers */
	ck_assert_int_ne(
	    event_base_loop(fe_base, EVLOOP_ONCE | EVLOOP_NONBLOCK), -1);
	adapter_drain(fe_ad);
	adapter_free(fe_ad);
	fe_ad = NULL;
	ck_assert_uint_eq(fe_ndone, 0);
	ck_assert_int_ne(
	    event_base_loop(fe_base, EVLOOP_ONCE | EVLOOP_NONBLOCK), -1);
	ck_assert_uint_eq(fe_ndone, 0);
	for (id = 1; id <= FE_MAX; id++)
		if ((data = fe_read(id)) != NULL) {
			ck_assert_ptr_nonnull(strstr(data, "see you there."));
			free(data);
		}
	ck_assert_uint_eq(fe_count_tmp(), 0);
}
END_TEST

Suite *
file_email_suite(void)
{
	Suite *s = suite_create("file_email");
	TCase *tc = tcase_create("send");

	tcase_add_checked_fixture(tc, fe_setup, fe_teardown);
	tcase_set_timeout(tc, 30); /* fsyncs on a slow disk */
	tcase_add_test(tc, test_file_email_every_send_done_once);
	tcase_add_test(tc, test_file_email_failure_is_per_message);
	tcase_add_test(tc, test_file_email_drain_writes_pending);
	tcase_add_test(tc, test_file_email_free_in_flight);
	suite_add_tcase(s, tc);
	return s;
}
