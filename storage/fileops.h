/*
 * fileops.h -- the file operations storage/ uses, behind a table.
 *
 * Every disk access in storage/ goes through a struct fileops, so tests
 * can inject failures (EIO, ENOSPC, short writes, fsync errors) at any
 * call -- see fault.h.  The functions follow the system calls' contract:
 * -1 with errno set on failure.
 */
#ifndef SR_FILEOPS_H
#define SR_FILEOPS_H

#include <stddef.h>
#include <sys/types.h>

struct fileops {
	int (*open)(void *ctx, const char *path, int flags, mode_t mode);
	int (*close)(void *ctx, int fd);
	ssize_t (*pwrite)(void *ctx, int fd, const void *p, size_t n,
	    off_t off);
	ssize_t (*pread)(void *ctx, int fd, void *p, size_t n, off_t off);
	int (*fdatasync)(void *ctx, int fd);
	int (*fsync)(void *ctx, int fd);
	int (*ftruncate)(void *ctx, int fd, off_t len);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	void *ctx;
};

/* The real system calls. */
extern const struct fileops fileops_posix;

/*
 * Writes all n bytes at off, retrying short writes and EINTR.  Returns 0
 * or a negative errno (a short write that makes no progress is -EIO).
 */
int fileops_pwrite_all(const struct fileops *fo, int fd, const void *p,
    size_t n, off_t off);
/*
 * Reads up to n bytes at off, retrying EINTR and short reads; returns
 * the bytes read (less than n only at end of file) or a negative errno.
 */
ssize_t fileops_pread_all(const struct fileops *fo, int fd, void *p,
    size_t n, off_t off);
/* fsyncs the directory dir (after create/rename/unlink in it). */
int fileops_sync_dir(const struct fileops *fo, const char *dir);
/* fsyncs the directory that holds path. */
int fileops_sync_dir_of(const struct fileops *fo, const char *path);

#endif
