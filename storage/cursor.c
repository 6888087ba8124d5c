/*
 * cursor.c -- a replica's position, stored in two alternating slots.
 *
 * File format: 64 bytes, two 32-byte slots, each little-endian:
 *
 *   0   4  magic "SRCU"
 *   4   4  flags (CURSOR_NEEDS_RESYNC, ...)
 *   8   8  sequence number of this write
 *  16   8  LSN
 *  24   4  reserved, zero
 *  28   4  CRC-32C of bytes 0..27
 *
 * An update writes the slot not holding the current value, with the
 * next sequence number, then fdatasyncs.  A write torn by a crash can
 * only damage that slot; on open the valid slot with the higher sequence
 * wins, so the cursor is always either the old or the new value.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/crc32c.h"
#include "lib/xmalloc.h"
#include "storage/cursor.h"
#include "storage/segment.h"

#define SLOT 32

struct cursor {
	const struct fileops *fo;
	int fd;
	uint64_t seq, lsn;
	uint32_t flags;
	int slot;		/* slot holding the current value */
};

static void
slot_encode(uint8_t out[SLOT], uint32_t flags, uint64_t seq, uint64_t lsn)
{
	memset(out, 0, SLOT);
	memcpy(out, "SRCU", 4);
	put_le32(out + 4, flags);
	put_le64(out + 8, seq);
	put_le64(out + 16, lsn);
	put_le32(out + 28, crc32c_update(0, out, 28));
}

static int
slot_decode(const uint8_t in[SLOT], uint32_t *flags, uint64_t *seq,
    uint64_t *lsn)
{
	if (memcmp(in, "SRCU", 4) != 0 ||
	    get_le32(in + 28) != crc32c_update(0, in, 28))
		return -1;
	*flags = get_le32(in + 4);
	*seq = get_le64(in + 8);
	*lsn = get_le64(in + 16);
	return 0;
}

/*
 * The newest valid slot of the two in buf: its value, sequence number
 * and index.  Returns how many slots were valid (0: none, nothing set).
 */
static int
pick_slot(const uint8_t buf[2 * SLOT], uint32_t *flags, uint64_t *seq,
    uint64_t *lsn, int *slot)
{
	int i, valid = 0;

	for (i = 0; i < 2; i++) {
		uint32_t f;
		uint64_t q, l;

		if (slot_decode(buf + i * SLOT, &f, &q, &l) < 0)
			continue;
		if (!valid || q > *seq) {
			*seq = q;
			*lsn = l;
			*flags = f;
			*slot = i;
		}
		valid++;
	}
	return valid;
}

static int
write_value(struct cursor *c, uint64_t lsn, uint32_t flags)
{
	uint8_t s[SLOT];
	int slot = c->slot ^ 1, r;

	slot_encode(s, flags, c->seq + 1, lsn);
	if ((r = fileops_pwrite_all(c->fo, c->fd, s, SLOT, slot * SLOT)) < 0)
		return r;
	if (c->fo->fdatasync(c->fo->ctx, c->fd) < 0)
		return -errno;
	c->seq++;
	c->lsn = lsn;
	c->flags = flags;
	c->slot = slot;
	return 0;
}

int
cursor_open(const char *path, const struct fileops *fops, struct cursor **out,
    char *err, size_t err_len)
{
	struct cursor *c = xcalloc(1, sizeof(*c));
	uint8_t buf[2 * SLOT];
	ssize_t n;
	int valid, r;

	c->fo = fops ? fops : &fileops_posix;
	c->fd = c->fo->open(c->fo->ctx, path, O_RDWR | O_CREAT, 0640);
	if (c->fd < 0) {
		r = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		free(c);
		return r;
	}
	n = fileops_pread_all(c->fo, c->fd, buf, sizeof(buf), 0);
	if (n < 0) {
		r = (int)n;
		snprintf(err, err_len, "%s: %s", path, strerror(-r));
		cursor_close(&c);
		return r;
	}
	memset(buf + n, 0, sizeof(buf) - (size_t)n);
	valid = pick_slot(buf, &c->flags, &c->seq, &c->lsn, &c->slot);
	if (!valid && n > 0) {
		snprintf(err, err_len, "%s: no valid cursor in the file", path);
		cursor_close(&c);
		return -EBADMSG;
	}
	if (!valid) {
		/* A new cursor: write slot 0 so the file is never empty. */
		c->slot = 1;
		c->seq = 0;
		if ((r = write_value(c, 0, 0)) < 0 ||
		    (r = fileops_sync_dir_of(c->fo, path)) < 0) {
			snprintf(err, err_len, "%s: %s", path, strerror(-r));
			cursor_close(&c);
			return r;
		}
	}
	*out = c;
	return 0;
}

void
cursor_close(struct cursor **cp)
{
	struct cursor *c = *cp;

	if (c == NULL)
		return;
	if (c->fd >= 0)
		c->fo->close(c->fo->ctx, c->fd);
	free(c);
	*cp = NULL;
}

uint64_t
cursor_lsn(const struct cursor *c)
{
	return c->lsn;
}

uint32_t
cursor_flags(const struct cursor *c)
{
	return c->flags;
}

int
cursor_store(struct cursor *c, uint64_t lsn)
{
	if (lsn < c->lsn)
		return -EINVAL;
	if (lsn == c->lsn)
		return 0;
	return write_value(c, lsn, c->flags);
}

int
cursor_reset(struct cursor *c, uint64_t lsn, uint32_t flags)
{
	return write_value(c, lsn, flags);
}

int
cursor_peek(const char *path, uint64_t *lsn, uint32_t *flags, char *err,
    size_t err_len)
{
	uint8_t buf[2 * SLOT];
	uint64_t seq = 0;
	ssize_t n;
	int fd, slot, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return r;
	}
	n = fileops_pread_all(&fileops_posix, fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror((int)-n));
		return (int)n;
	}
	memset(buf + n, 0, sizeof(buf) - (size_t)n);
	if (!pick_slot(buf, flags, &seq, lsn, &slot)) {
		snprintf(err, err_len, "%s: no valid cursor in the file", path);
		return -EBADMSG;
	}
	return 0;
}
