/*
 * parked.c -- reading and writing a replica's parked list (the format
 * is described in parked.h).  Small files, rarely written: the whole
 * list is rewritten each time.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "storage/parked.h"

#define HEADER "syncrelay-parked 1\n"
#define MAX_FILE (16 * 1024 * 1024)

/* Appends s with tabs and line ends made spaces. */
static void
put_field(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_putc(b, *s == '\t' || *s == '\r' || *s == '\n' ? ' ' : *s);
}

int
parked_save(const char *path, const struct fileops *fo,
    const struct parked *v, size_t n)
{
	struct buf b = BUF_INIT;
	char tmp[4200];
	size_t i;
	int fd, r = 0;

	fo = fo ? fo : &fileops_posix;
	if (n == 0) {
		if (fo->unlink(fo->ctx, path) < 0 && errno != ENOENT)
			return -errno;
		return fileops_sync_dir_of(fo, path);
	}
	buf_puts(&b, HEADER);
	for (i = 0; i < n; i++) {
		buf_printf(&b, "%c\t", v[i].kind);
		put_field(&b, v[i].key);
		buf_printf(&b, "\t%" PRIu64 "\t%" PRId64 "\t%" PRIu32 "\t",
		    v[i].lsn, v[i].since, v[i].tries);
		put_field(&b, v[i].name);
		buf_putc(&b, '\t');
		put_field(&b, v[i].reply);
		buf_putc(&b, '\n');
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = fo->open(fo->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = fileops_pwrite_all(fo, fd, b.s, b.len, 0)) == 0 &&
	    fo->fsync(fo->ctx, fd) < 0)
		r = -errno;
	if (fo->close(fo->ctx, fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && fo->rename(fo->ctx, tmp, path) < 0)
		r = -errno;
	if (r == 0)
		r = fileops_sync_dir_of(fo, path);
	if (r < 0)
		fo->unlink(fo->ctx, tmp);
out:
	buf_free(&b);
	return r;
}

/* Splits line at tabs into at most max fields; returns how many. */
static size_t
split(char *line, char **f, size_t max)
{
	size_t k = 0;

	f[k++] = line;
	for (; *line && k < max; line++)
		if (*line == '\t') {
			*line = '\0';
			f[k++] = line + 1;
		}
	return k;
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return *end || errno ? -1 : 0;
}

int
parked_load(const char *path, const struct fileops *fo,
    struct parked **out, size_t *n, char *err, size_t err_len)
{
	struct parked *v = NULL;
	size_t nv = 0, lineno = 1;
	char *text, *line, *next;
	ssize_t got;
	int fd;

	fo = fo ? fo : &fileops_posix;
	*out = NULL;
	*n = 0;
	fd = fo->open(fo->ctx, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	text = xmalloc(MAX_FILE + 1);
	got = fileops_pread_all(fo, fd, text, MAX_FILE + 1, 0);
	fo->close(fo->ctx, fd);
	if (got < 0 || got > MAX_FILE) {
		snprintf(err, err_len, "%s: %s", path, got < 0 ?
		    strerror((int)-got) : "too large");
		free(text);
		return got < 0 ? (int)got : -EFBIG;
	}
	text[got] = '\0';
	if (strncmp(text, HEADER, strlen(HEADER)) != 0) {
		snprintf(err, err_len, "%s: not a parked list", path);
		free(text);
		return -EBADMSG;
	}
	for (line = text + strlen(HEADER); *line; line = next) {
		char *f[7];
		struct parked p;
		uint64_t since, tries;

		lineno++;
		next = strchr(line, '\n');
		if (next == NULL) {
			snprintf(err, err_len, "%s:%zu: cut short", path,
			    lineno);
			goto bad;
		}
		*next++ = '\0';
		memset(&p, 0, sizeof(p));
		if (split(line, f, 7) != 7 || strlen(f[0]) != 1 ||
		    (f[0][0] != PARKED_MAILBOX && f[0][0] != PARKED_RECORD) ||
		    parse_u64(f[2], &p.lsn) < 0 || parse_u64(f[3], &since) < 0 ||
		    parse_u64(f[4], &tries) < 0 || tries > UINT32_MAX) {
			snprintf(err, err_len, "%s:%zu: malformed entry", path,
			    lineno);
			goto bad;
		}
		p.kind = f[0][0];
		snprintf(p.key, sizeof(p.key), "%s", f[1]);
		p.since = (int64_t)since;
		p.tries = (uint32_t)tries;
		snprintf(p.name, sizeof(p.name), "%s", f[5]);
		snprintf(p.reply, sizeof(p.reply), "%s", f[6]);
		v = xreallocarray(v, nv + 1, sizeof(*v));
		v[nv++] = p;
	}
	free(text);
	*out = v;
	*n = nv;
	return 0;
bad:
	free(text);
	free(v);
	return -EBADMSG;
}
