/*
 * fault.h -- a struct fileops that fails on purpose, for tests.
 *
 * A fault plan names one operation kind, which call of that kind fails
 * (1 = the first), and how: an errno, or a short write of half the
 * bytes.  Calls pass through to the real system calls otherwise.
 */
#ifndef SR_FAULT_H
#define SR_FAULT_H

#include "storage/fileops.h"

enum fault_op {
	FAULT_NONE, FAULT_OPEN, FAULT_PWRITE, FAULT_PREAD, FAULT_FDATASYNC,
	FAULT_FSYNC, FAULT_FTRUNCATE, FAULT_RENAME, FAULT_UNLINK,
};

struct fault {
	struct fileops ops;	/* pass &f->ops to storage */
	enum fault_op op;	/* which kind of call fails */
	unsigned nth;		/* the nth call of that kind fails */
	int err;		/* errno to fail with; 0 = short write */
	int sticky;		/* keep failing after the nth call */
	unsigned calls[FAULT_UNLINK + 1];
	unsigned fired;		/* how many calls were failed */
};

/* Sets f up to fail call nth of op with err (0: short write). */
void fault_init(struct fault *f, enum fault_op op, unsigned nth, int err);

#endif
