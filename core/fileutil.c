/*
 * fileutil.c - durable publication of small files (see fileutil.h).
 *
 * The order is what makes it durable: data, fsync of the file, the name
 * (rename, or link for an exclusive create), fsync of the directory. A
 * rename alone is atomic but not durable, and a directory entry may reach
 * the disk before the file's data does (ext4 delayed allocation, XFS), so
 * both fsyncs are needed. A writer of many files in one directory may
 * rename them all first and fsync the directory once
 * (fileutil_publish_nodirsync()): one directory fsync covers every
 * rename before it.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "fileutil.h"

int
fileutil_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fileutil_sync_dir(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, saved;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		strlcpy(dir, ".", sizeof(dir));
	else if (slash == dir)
		dir[1] = '\0'; /* "/name": the root */
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1) {
		saved = errno;
		snprintf(err, errlen, "cannot sync directory %s: %s", dir,
		    strerror(saved));
		if (fd != -1)
			close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	return 0;
}

int
fileutil_publish(const char *path, const void *data, size_t len,
    const struct fileutil_create *c, char *err, size_t errlen)
{
	if (fileutil_publish_nodirsync(path, data, len, c, err, errlen) == -1)
		return -1;
	return fileutil_sync_dir(path, err, errlen);
}

/*
 * The temporary name is fixed per target: a stale one left by a crash is
 * truncated and reused. Only one writer per target is expected (the
 * daemon holds the store lock while it runs, and the file email adapter
 * has each message in one batch at a time).
 */
int
fileutil_publish_nodirsync(const char *path, const void *data, size_t len,
    const struct fileutil_create *c, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	const char *base = strrchr(path, '/');
	int fd = -1, saved, n;

	if (base == NULL)
		n = snprintf(tmp, sizeof(tmp), ".%s.tmp", path);
	else
		n = snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp",
		    (int)(base - path), path, base + 1);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    c->mode);
	if (fd == -1 || fileutil_write_all(fd, data, len) == -1 ||
	    fsync(fd) == -1) {
		saved = errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(saved));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		saved = errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(saved));
		goto fail;
	}
	fd = -1;
	/* link() fails on an existing name: an exclusive create that
	 * still appears all at once. */
	if ((c->excl ? link(tmp, path) : rename(tmp, path)) == -1) {
		saved = errno;
		snprintf(err, errlen, "cannot %s %s to %s: %s",
		    c->excl ? "link" : "rename", tmp, path, strerror(saved));
		goto fail;
	}
	if (c->excl)
		(void)unlink(tmp);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	errno = saved;
	return -1;
}
