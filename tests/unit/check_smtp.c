/*
 * check_smtp.c - unit tests of the SMTP adapter: [smtp] validation with
 * FILE:LINE errors (adapters/smtp.c init, no network I/O), the pure
 * status judge (smtp.h) as a table, reply masking, and the poll()
 * smtp_connect.c puts in front of libESMTP's sockets.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "adapter.h"
#include "check_suites.h"
#include "config.h"
#include "smtp-internal.h"
#include "smtp.h"

struct smtp_ctx {
	char dir[64];
	char path[PATH_MAX];
	char err[512];
	struct config *cfg;
	struct adapter *ad;
};

static struct smtp_ctx ctx;

static void
smtp_setup(void)
{
	memset(&ctx, 0, sizeof(ctx));
	snprintf(ctx.dir, sizeof(ctx.dir), "/tmp/check_smtp.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(ctx.dir));
	snprintf(ctx.path, sizeof(ctx.path), "%s/od.conf", ctx.dir);
}

static void
smtp_release(void)
{
	adapter_free(ctx.ad);
	config_free(ctx.cfg);
	ctx.ad = NULL;
	ctx.cfg = NULL;
}

static void
smtp_teardown(void)
{
	smtp_release();
	unlink(ctx.path);
	rmdir(ctx.dir);
}

/*
 * Writes "[email]\nadapter = smtp\n[smtp]\n" + body (so the [smtp] keys
 * start on line 4) and makes the adapter; NULL with ctx.err on failure.
 */
static struct adapter *
smtp_make(const char *body)
{
	struct adapter_env env = {.var_dir = ctx.dir};
	FILE *fp;

	smtp_release();
	fp = fopen(ctx.path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[email]\nadapter = smtp\n[smtp]\n%s", body);
	ck_assert_int_eq(fclose(fp), 0);
	chmod(ctx.path, 0600);
	ctx.cfg = config_load(ctx.path, NULL, NULL, ctx.err, sizeof(ctx.err));
	if (ctx.cfg == NULL)
		return NULL;
	ctx.ad = adapter_new("smtp", "email", &env, ctx.cfg->smtp_section,
	    ctx.err, sizeof(ctx.err));
	return ctx.ad;
}

/* Expects body to fail at line 'line' with 'what' in the message. */
static void
smtp_bad(const char *body, int line, const char *what)
{
	char want[PATH_MAX + 16];

	ck_assert_msg(smtp_make(body) == NULL, "accepted: %s", body);
	snprintf(want, sizeof(want), "%s:%d: ", ctx.path, line);
	ck_assert_msg(strncmp(ctx.err, want, strlen(want)) == 0,
	    "want '%s...', got '%s' for: %s", want, ctx.err, body);
	ck_assert_msg(strstr(ctx.err, what) != NULL,
	    "want '%s' in '%s' for: %s", what, ctx.err, body);
}

#define OK_BASE "host = 127.0.0.1\nfrom = Org <org@example.org>\n"

START_TEST(test_smtp_config_minimal_and_full)
{
	ck_assert_msg(smtp_make(OK_BASE) != NULL, "%s", ctx.err);
	ck_assert_str_eq(ctx.ad->ops->name, "smtp");
	ck_assert_msg(smtp_make("host = relay.example.org\n"
				"port = 2525\n"
				"starttls = opportunistic\n"
				"verify = yes\n"
				"user = u\n"
				"password = p\n"
				"envelope_from = bounces@example.org\n"
				"from = \"Org\" <org@example.org>\n"
				"reply_to = People <people@example.org>\n"
				"helo = gw.example.org\n"
				"connect_timeout = 3s\n"
				"command_timeout = 30s\n"
				"data_timeout = 2m\n"
				"session_timeout = 10m\n"
				"workers = 8\n"
				"session_max_messages = 200\n") == NULL,
	    "AUTH without required TLS to a remote host was accepted");
	ck_assert_msg(strstr(ctx.err, "starttls = required") != NULL, "%s",
	    ctx.err);
	ck_assert_msg(smtp_make("host = relay.example.org\n"
				"starttls = required\n"
				"user = u\n"
				"password = p\n"
				"from = org@example.org\n"
				"workers = 64\n"
				"session_max_messages = 1\n") != NULL,
	    "%s", ctx.err);
	/* AUTH over loopback without TLS is fine (a local relay) */
	ck_assert_msg(smtp_make(OK_BASE "user = u\npassword = p\n") != NULL,
	    "%s", ctx.err);
	/* no [smtp] section at all */
	{
		struct adapter_env env = {.var_dir = ctx.dir};

		ck_assert_ptr_null(adapter_new("smtp", "email", &env, NULL,
		    ctx.err, sizeof(ctx.err)));
		ck_assert_msg(strstr(ctx.err, "[smtp]") != NULL, "%s", ctx.err);
	}
}
END_TEST

START_TEST(test_smtp_config_errors)
{
	smtp_bad(OK_BASE "hots = x\n", 6, "unknown key 'hots'");
	smtp_bad("from = org@example.org\n", 3, "host");
	smtp_bad("host = 127.0.0.1\n", 3, "from");
	smtp_bad("host = 127.0.0.1:25\nfrom = org@example.org\n", 4,
	    "put the port in 'port'");
	smtp_bad(OK_BASE "port = 0\n", 6, "port");
	smtp_bad(OK_BASE "port = 70000\n", 6, "port");
	smtp_bad(OK_BASE "starttls = maybe\n", 6,
	    "starttls must be required, opportunistic or off");
	smtp_bad(OK_BASE "verify = perhaps\n", 6, "verify");
	smtp_bad(OK_BASE "starttls = off\nca_file = /etc/ssl/x.pem\n", 7,
	    "ca_file is set but starttls = off");
	smtp_bad(OK_BASE "starttls = required\nca_file = /nonexistent.pem\n", 7,
	    "cannot load ca_file");
	smtp_bad(OK_BASE "user = u\n", 6, "user and password go together");
	smtp_bad(OK_BASE "password = p\n", 6, "user and password go together");
	smtp_bad("host = 127.0.0.1\nfrom = Org <nobody>\n", 5,
	    "from must hold an address");
	smtp_bad(OK_BASE "envelope_from = not an address\n", 6,
	    "envelope_from must hold an address");
	smtp_bad(OK_BASE "reply_to = nope\n", 6,
	    "reply_to must hold an address");
	smtp_bad(OK_BASE "helo = bad name\n", 6, "helo must be a host name");
	smtp_bad(OK_BASE "connect_timeout = soon\n", 6, "connect_timeout");
	smtp_bad(OK_BASE "command_timeout = 500ms\n", 6, "command_timeout");
	smtp_bad(OK_BASE "data_timeout = 0\n", 6, "data_timeout");
	smtp_bad(OK_BASE "session_timeout = 2d\n", 6, "session_timeout");
	smtp_bad(OK_BASE "workers = 0\n", 6, "workers");
	smtp_bad(OK_BASE "workers = 65\n", 6, "workers");
	smtp_bad(OK_BASE "session_max_messages = 0\n", 6,
	    "session_max_messages");
	smtp_bad(OK_BASE "session_max_messages = 1001\n", 6,
	    "session_max_messages");
}
END_TEST

/* One row of the judge table. */
struct judge_row {
	int mail, rcpt, data;
	bool body_sent, auth_failed, tls_failed;
	enum send_outcome want;
	bool broken;
	bool uncertain;
	int want_code;
	const char *want_text; /* substring, or NULL */
};

static const struct judge_row judge_rows[] = {
    /* delivered */
    {250, 250, 250, true, false, false, SEND_ACCEPTED, false, false, 250, NULL},
    /* accepted wins even if a flag is set: the server took it */
    {250, 250, 250, true, true, false, SEND_ACCEPTED, false, false, 250, NULL},
    /* RCPT 5xx: bounce, whatever DATA said (libESMTP's 503 quirk) */
    {250, 550, 503, false, false, false, SEND_PERMANENT, false, false, 550,
	"RCPT TO 550"},
    /* RCPT 4xx with DATA 503 ("need RCPT"): still transient (§12.7) */
    {250, 450, 503, false, false, false, SEND_TRANSIENT, false, false, 450,
	"RCPT TO 450"},
    {250, 451, 0, false, false, false, SEND_TRANSIENT, false, false, 451,
	"RCPT TO 451"},
    /* RCPT 2xx, final 5xx: bounce */
    {250, 250, 554, true, false, false, SEND_PERMANENT, false, false, 554,
	"DATA 554"},
    /* RCPT 2xx, final 4xx: transient, no doubt */
    {250, 250, 452, true, false, false, SEND_TRANSIENT, false, false, 452,
	"DATA 452"},
    /* never tried at all (code 0 everywhere) */
    {0, 0, 0, false, false, false, SEND_TRANSIENT, false, false, 0, "not sent"},
    /* RCPT 2xx, body sent, no final reply: the duplicate window */
    {250, 250, 0, true, false, false, SEND_TRANSIENT, false, true, 0,
	"no reply after the message was sent"},
    /* RCPT 2xx, dropped before the body: not uncertain */
    {250, 250, 0, false, false, false, SEND_TRANSIENT, false, false, 0,
	"not sent"},
    /* MAIL 4xx */
    {421, 0, 0, false, false, false, SEND_TRANSIENT, false, false, 421,
	"MAIL FROM 421"},
    /* MAIL 5xx: our sender refused, pause the route */
    {530, 0, 0, false, false, false, SEND_TRANSIENT, true, false, 530,
	"MAIL FROM 530"},
    {553, 0, 0, false, false, false, SEND_TRANSIENT, true, false, 553,
	"MAIL FROM 553"},
    /* MAIL 552 (too big): this message only */
    {552, 0, 0, false, false, false, SEND_PERMANENT, false, false, 552, "552"},
    /* AUTH refused (libESMTP would go on unauthenticated) */
    {0, 0, 0, false, true, false, SEND_TRANSIENT, true, false, 0,
	"SMTP AUTH failed"},
    /* STARTTLS missing or certificate refused */
    {0, 0, 0, false, false, true, SEND_TRANSIENT, true, false, 0,
	"STARTTLS failed"},
};

START_TEST(test_smtp_judge_table)
{
	const struct judge_row *r = &judge_rows[_i];
	struct smtp_judge_in in = {0};
	struct send_result res;

	in.mail_code = r->mail;
	in.mail_text = r->mail != 0 ? "5.7.0 text for <x@example.org>" : NULL;
	in.rcpt_code = r->rcpt;
	in.rcpt_text = r->rcpt != 0 ? "text" : NULL;
	in.data_code = r->data;
	in.data_text = r->data != 0 ? "text" : NULL;
	in.body_sent = r->body_sent;
	in.auth_failed = r->auth_failed;
	in.tls_failed = r->tls_failed;
	in.session_err = "SMTP server dropped connection";
	memset(&res, 0xa5, sizeof(res));
	smtp_judge(&in, &res);
	ck_assert_msg(res.outcome == r->want, "row %d: outcome %d, want %d", _i,
	    res.outcome, r->want);
	ck_assert_msg(((res.flags & SEND_F_SENDER_BROKEN) != 0) == r->broken,
	    "row %d: flags %u", _i, res.flags);
	ck_assert_msg(res.uncertain == r->uncertain, "row %d: uncertain", _i);
	ck_assert_msg(res.code == r->want_code, "row %d: code %d, want %d", _i,
	    res.code, r->want_code);
	ck_assert_msg(r->want_text == NULL || strstr(res.text, r->want_text),
	    "row %d: text '%s', want '%s'", _i, res.text, r->want_text);
	ck_assert_msg(strstr(res.text, "x@example.org") == NULL,
	    "row %d: address not masked: %s", _i, res.text);
	ck_assert_uint_eq(res.retry_after, 0);
}
END_TEST

START_TEST(test_smtp_reply_clean)
{
	char out[64];

	smtp_reply_clean("550 5.1.1 <bob@example.org>: no such\r\n user", out,
	    sizeof(out));
	ck_assert_str_eq(out, "550 5.1.1 <b***@example.org>: no such user");
	smtp_reply_clean("rcpt=alice@ex.org,ok", out, sizeof(out));
	ck_assert_str_eq(out, "rcpt=a***@ex.org,ok");
	smtp_reply_clean(NULL, out, sizeof(out));
	ck_assert_str_eq(out, "");
	smtp_reply_clean("  lots   of\t\tspace  ", out, sizeof(out));
	ck_assert_str_eq(out, "lots of space");
	/* truncation keeps the NUL */
	smtp_reply_clean("0123456789012345678901234567890", out, 8);
	ck_assert_str_eq(out, "0123456");
}
END_TEST

/*
 * smtp_connect.c's poll(): on an SMTP worker during a session (a job in
 * smtp_cur_job) libESMTP's "readable or writable?" on its socket is
 * answered "writable" without the system call; a write that would block
 * still says EAGAIN, and every other poll (POLLOUT alone, POLLIN alone,
 * any thread without a job) is the kernel's. The socket here is full, so
 * the kernel would say "neither".
 */
START_TEST(test_smtp_poll_writable_shortcut)
{
	struct smtp_job job;
	struct pollfd two[2], one;
	int sv[2];
	char buf[4096];

	memset(&job, 0, sizeof(job));
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	while (write(sv[0], buf, sizeof(buf)) > 0)
		;
	ck_assert_int_eq(errno, EAGAIN);
	two[0] = (struct pollfd){.fd = sv[0], .events = POLLIN};
	two[1] = (struct pollfd){.fd = sv[0], .events = POLLOUT};
	/* no session on this thread: the kernel's answer */
	ck_assert_int_eq(poll(two, 2, 0), 0);
	smtp_cur_job = &job;
	ck_assert_int_eq(poll(two, 2, 0), 1);
	ck_assert_int_eq(two[0].revents, 0);
	ck_assert_int_eq(two[1].revents, POLLOUT);
	/* the write still tells the truth, and libESMTP's wait for room
	 * (POLLOUT alone) goes to the kernel */
	ck_assert_int_eq(write(sv[0], "x", 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	one = (struct pollfd){.fd = sv[0], .events = POLLOUT};
	ck_assert_int_eq(poll(&one, 1, 0), 0);
	/* waits for a reply are real: nothing yet, then the reply */
	one = (struct pollfd){.fd = sv[0], .events = POLLIN};
	ck_assert_int_eq(poll(&one, 1, 0), 0);
	ck_assert_int_eq(write(sv[1], "250 ok\r\n", 8), 8);
	ck_assert_int_eq(poll(&one, 1, 0), 1);
	ck_assert_int_eq(one.revents, POLLIN);
	smtp_cur_job = NULL;
	close(sv[0]);
	close(sv[1]);
}
END_TEST

Suite *
smtp_suite(void)
{
	Suite *s = suite_create("smtp");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, smtp_setup, smtp_teardown);
	tcase_add_test(tc, test_smtp_config_minimal_and_full);
	tcase_add_test(tc, test_smtp_config_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("judge");
	tcase_add_loop_test(tc, test_smtp_judge_table, 0,
	    (int)(sizeof(judge_rows) / sizeof(judge_rows[0])));
	tcase_add_test(tc, test_smtp_reply_clean);
	suite_add_tcase(s, tc);
	tc = tcase_create("connect");
	tcase_add_test(tc, test_smtp_poll_writable_shortcut);
	suite_add_tcase(s, tc);
	return s;
}
