/*
 * fileops.c -- the real file operations and the loops around them.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/fileops.h"

static int
posix_open(void *ctx, const char *path, int flags, mode_t mode)
{
	return open(path, flags | O_CLOEXEC, mode);
}

static int
posix_close(void *ctx, int fd)
{
	return close(fd);
}

static ssize_t
posix_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	return pwrite(fd, p, n, off);
}

static ssize_t
posix_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
	return pread(fd, p, n, off);
}

static int
posix_fdatasync(void *ctx, int fd)
{
	return fdatasync(fd);
}

static int
posix_fsync(void *ctx, int fd)
{
	return fsync(fd);
}

static int
posix_ftruncate(void *ctx, int fd, off_t len)
{
	return ftruncate(fd, len);
}

static int
posix_rename(void *ctx, const char *from, const char *to)
{
	return rename(from, to);
}

static int
posix_unlink(void *ctx, const char *path)
{
	return unlink(path);
}

const struct fileops fileops_posix = {
	posix_open, posix_close, posix_pwrite, posix_pread, posix_fdatasync,
	posix_fsync, posix_ftruncate, posix_rename, posix_unlink, NULL,
};

int
fileops_pwrite_all(const struct fileops *fo, int fd, const void *p,
    size_t n, off_t off)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = fo->pwrite(fo->ctx, fd, c, n, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

ssize_t
fileops_pread_all(const struct fileops *fo, int fd, void *p, size_t n,
    off_t off)
{
	char *c = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = fo->pread(fo->ctx, fd, c + got, n - got,
		    off + (off_t)got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
fileops_sync_dir(const struct fileops *fo, const char *dir)
{
	int fd = fo->open(fo->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fo->fsync(fo->ctx, fd) < 0)
		r = -errno;
	fo->close(fo->ctx, fd);
	return r;
}

int
fileops_sync_dir_of(const struct fileops *fo, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int r;

	if (slash == NULL)
		return fileops_sync_dir(fo, ".");
	dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return -ENOMEM;
	r = fileops_sync_dir(fo, *dir ? dir : "/");
	free(dir);
	return r;
}
