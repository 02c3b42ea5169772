/*
 * fileutil.h - small files that survive a power loss.
 *
 * A file the daemon acknowledges something on (the API token, the email
 * link key, an .eml message) must hold all of its bytes once its name
 * exists, also after a crash or a power loss. A plain open + write leaves
 * a window where the name is on disk but the data is not: the file is
 * then empty or short after a reboot.
 *
 * Contract:
 *  - fileutil_publish() writes the whole file under a temporary name in
 *    the same directory, fsyncs it, gives it its final name and fsyncs the
 *    directory. After it returns 0, the name holds all the bytes; after a
 *    crash at any point, the name holds the old content (or nothing), never
 *    a part. The temporary name is "<dir>/.<name>.tmp".
 *  - fileutil_publish_nodirsync() is fileutil_publish() without the last
 *    step, for a writer of many files in one directory: it publishes a
 *    group of them, then calls fileutil_sync_dir() once. Each file's bytes
 *    are on disk when it returns, but its name is durable only once that
 *    directory fsync has returned 0: nothing may be acknowledged before.
 *  - fileutil_sync_dir() fsyncs the directory holding 'path', for callers
 *    that create or rename an entry themselves.
 *  - Errors: 0 / -1 with the reason in errbuf; errno is kept for the
 *    caller (EEXIST from an exclusive publish). No logging; any thread.
 */
#ifndef OD_FILEUTIL_H
#define OD_FILEUTIL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

/* How fileutil_publish() creates a file. */
struct fileutil_create {
	mode_t mode; /* less the umask */
	bool excl;   /* an existing file is kept (EEXIST), not replaced */
};

/*
 * Writes 'len' bytes of 'data' to 'path' durably (see above), created
 * with c->mode (less the umask). With c->excl, an existing 'path' is left
 * alone and the call fails with errno EEXIST; without, it is replaced.
 */
int fileutil_publish(const char *path, const void *data, size_t len,
    const struct fileutil_create *c, char *err, size_t errlen);
/*
 * fileutil_publish() but without the fsync of the directory: 'path'
 * holds all the bytes or does not exist, but may be lost in a power loss
 * until fileutil_sync_dir(path) returns 0. Same arguments and errors.
 */
int fileutil_publish_nodirsync(const char *path, const void *data, size_t len,
    const struct fileutil_create *c, char *err, size_t errlen);
/* fsyncs the directory that holds 'path' ("." for a bare name). */
int fileutil_sync_dir(const char *path, char *err, size_t errlen);
/* Writes all 'len' bytes to fd, retrying short writes and EINTR. */
int fileutil_write_all(int fd, const void *data, size_t len);

#endif
