/*
 * fault.c -- fault-injecting file operations for tests.
 */
#include "autoconf.h"

#include <errno.h>
#include <string.h>

#include "storage/fault.h"

static int
fires(struct fault *f, enum fault_op op)
{
	unsigned n = ++f->calls[op];

	if (f->op != op)
		return 0;
	if (n == f->nth || (f->sticky && n > f->nth)) {
		f->fired++;
		return 1;
	}
	return 0;
}

static int
f_open(void *ctx, const char *path, int flags, mode_t mode)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_OPEN)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.open(NULL, path, flags, mode);
}

static int
f_close(void *ctx, int fd)
{
	return fileops_posix.close(NULL, fd);
}

static ssize_t
f_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_PWRITE)) {
		if (f->err == 0 && n > 1)
			return fileops_posix.pwrite(NULL, fd, p, n / 2, off);
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.pwrite(NULL, fd, p, n, off);
}

static ssize_t
f_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_PREAD)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.pread(NULL, fd, p, n, off);
}

static int
f_fdatasync(void *ctx, int fd)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_FDATASYNC)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.fdatasync(NULL, fd);
}

static int
f_fsync(void *ctx, int fd)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_FSYNC)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.fsync(NULL, fd);
}

static int
f_ftruncate(void *ctx, int fd, off_t len)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_FTRUNCATE)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.ftruncate(NULL, fd, len);
}

static int
f_rename(void *ctx, const char *a, const char *b)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_RENAME)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.rename(NULL, a, b);
}

static int
f_unlink(void *ctx, const char *path)
{
	struct fault *f = ctx;

	if (fires(f, FAULT_UNLINK)) {
		errno = f->err ? f->err : EIO;
		return -1;
	}
	return fileops_posix.unlink(NULL, path);
}

void
fault_init(struct fault *f, enum fault_op op, unsigned nth, int err)
{
	memset(f, 0, sizeof(*f));
	f->ops = (struct fileops){ f_open, f_close, f_pwrite, f_pread,
		f_fdatasync, f_fsync, f_ftruncate, f_rename, f_unlink, f };
	f->op = op;
	f->nth = nth;
	f->err = err;
}
