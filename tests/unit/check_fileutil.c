/*
 * check_fileutil.c - unit tests of durable file publication
 * (core/fileutil.c): the bytes and the mode of the result, an exclusive
 * create that leaves an existing file alone, a replace, a group published
 * with one directory fsync, and no temporary file left behind on success
 * or failure. The order of the fsyncs is checked with strace by
 * tests/integration/test_files.py.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "check_util.h"
#include "fileutil.h"

static char fut_dir[64];
/* Created 0600: replacing an existing file, or exclusive. */
static const struct fileutil_create fut_replace = {.mode = 0600};
static const struct fileutil_create fut_excl = {.mode = 0600, .excl = true};

static void
fut_setup(void)
{
	strcpy(fut_dir, "/tmp/od-fileutil-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fut_dir));
}

static void
fut_teardown(void)
{
	cku_rmtree(fut_dir);
}

/* The content of fut_dir/name into buf (NUL-terminated); its length. */
static ssize_t
fut_read(const char *name, char *buf, size_t size)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fut_dir, name);
	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return n;
}

static bool
fut_exists(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", fut_dir, name);
	return access(path, F_OK) == 0;
}

START_TEST(test_fileutil_publish_creates)
{
	char path[128], buf[64], err[256];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/token", fut_dir);
	ck_assert_int_eq(
	    fileutil_publish(path, "abc\n", 4, &fut_excl, err, sizeof(err)), 0);
	ck_assert_int_eq(fut_read("token", buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "abc\n");
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	ck_assert(!fut_exists(".token.tmp"));
}
END_TEST

START_TEST(test_fileutil_publish_excl_keeps_existing)
{
	char path[128], buf[64], err[256];

	snprintf(path, sizeof(path), "%s/key", fut_dir);
	ck_assert_int_eq(
	    fileutil_publish(path, "first", 5, &fut_excl, err, sizeof(err)), 0);
	errno = 0;
	ck_assert_int_eq(
	    fileutil_publish(path, "second", 6, &fut_excl, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_ptr_nonnull(strstr(err, "cannot link"));
	ck_assert_int_eq(fut_read("key", buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "first");
	ck_assert(!fut_exists(".key.tmp"));
}
END_TEST

START_TEST(test_fileutil_publish_replaces)
{
	char path[128], stale[128], buf[64], err[256];
	int fd;

	snprintf(path, sizeof(path), "%s/1.eml", fut_dir);
	ck_assert_int_eq(fileutil_publish(path, "old message", 11, &fut_replace,
			     err, sizeof(err)),
	    0);
	/* a temporary file a crash left behind is truncated and reused */
	snprintf(stale, sizeof(stale), "%s/.1.eml.tmp", fut_dir);
	ck_assert_int_ne(fd = open(stale, O_WRONLY | O_CREAT, 0600), -1);
	ck_assert_int_eq(write(fd, "half a message", 14), 14);
	close(fd);
	ck_assert_int_eq(
	    fileutil_publish(path, "new", 3, &fut_replace, err, sizeof(err)),
	    0);
	ck_assert_int_eq(fut_read("1.eml", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "new");
	ck_assert(!fut_exists(".1.eml.tmp"));
}
END_TEST

START_TEST(test_fileutil_publish_empty_and_large)
{
	static char big[1 << 20];
	char path[128], err[256], buf[8];
	struct stat sb;

	memset(big, 'm', sizeof(big));
	snprintf(path, sizeof(path), "%s/big", fut_dir);
	ck_assert_int_eq(fileutil_publish(path, big, sizeof(big), &fut_replace,
			     err, sizeof(err)),
	    0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, (off_t)sizeof(big));
	snprintf(path, sizeof(path), "%s/empty", fut_dir);
	ck_assert_int_eq(
	    fileutil_publish(path, "", 0, &fut_replace, err, sizeof(err)), 0);
	ck_assert_int_eq(fut_read("empty", buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(test_fileutil_publish_missing_dir)
{
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/no/such/file", fut_dir);
	ck_assert_int_eq(
	    fileutil_publish(path, "x", 1, &fut_replace, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/no/such/.file.tmp"));
}
END_TEST

/* A group published without the directory fsync, then one fsync for all. */
START_TEST(test_fileutil_publish_nodirsync_group)
{
	char path[128], name[32], want[32], buf[64], err[256];
	struct stat sb;
	int i;

	for (i = 1; i <= 3; i++) {
		snprintf(path, sizeof(path), "%s/%d.eml", fut_dir, i);
		snprintf(want, sizeof(want), "message %d", i);
		ck_assert_int_eq(fileutil_publish_nodirsync(path, want,
				     strlen(want), &fut_replace, err,
				     sizeof(err)),
		    0);
	}
	ck_assert_int_eq(fileutil_sync_dir(path, err, sizeof(err)), 0);
	for (i = 1; i <= 3; i++) {
		snprintf(name, sizeof(name), "%d.eml", i);
		snprintf(want, sizeof(want), "message %d", i);
		ck_assert_int_eq(fut_read(name, buf, sizeof(buf)),
		    (ssize_t)strlen(want));
		ck_assert_str_eq(buf, want);
		snprintf(name, sizeof(name), ".%d.eml.tmp", i);
		ck_assert(!fut_exists(name));
	}
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	/* the same failures as fileutil_publish(), nothing left behind */
	snprintf(path, sizeof(path), "%s/no/such/file", fut_dir);
	ck_assert_int_eq(fileutil_publish_nodirsync(path, "x", 1, &fut_replace,
			     err, sizeof(err)),
	    -1);
	ck_assert_int_eq(errno, ENOENT);
	snprintf(path, sizeof(path), "%s/1.eml", fut_dir);
	errno = 0;
	ck_assert_int_eq(fileutil_publish_nodirsync(path, "y", 1, &fut_excl,
			     err, sizeof(err)),
	    -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert(!fut_exists(".1.eml.tmp"));
}
END_TEST

START_TEST(test_fileutil_sync_dir)
{
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/anything", fut_dir);
	ck_assert_int_eq(fileutil_sync_dir(path, err, sizeof(err)), 0);
	ck_assert_int_eq(fileutil_sync_dir("bare-name", err, sizeof(err)), 0);
	ck_assert_int_eq(fileutil_sync_dir("/etc", err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/gone/file", fut_dir);
	ck_assert_int_eq(fileutil_sync_dir(path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot sync directory"));
}
END_TEST

Suite *
fileutil_suite(void)
{
	Suite *s = suite_create("fileutil");
	TCase *tc = tcase_create("publish");

	tcase_add_checked_fixture(tc, fut_setup, fut_teardown);
	tcase_add_test(tc, test_fileutil_publish_creates);
	tcase_add_test(tc, test_fileutil_publish_excl_keeps_existing);
	tcase_add_test(tc, test_fileutil_publish_replaces);
	tcase_add_test(tc, test_fileutil_publish_empty_and_large);
	tcase_add_test(tc, test_fileutil_publish_missing_dir);
	tcase_add_test(tc, test_fileutil_publish_nodirsync_group);
	tcase_add_test(tc, test_fileutil_sync_dir);
	suite_add_tcase(s, tc);
	return s;
}
