/*
 * posidx.c -- a sparse index of record positions in the journal's
 * segments, built by reading each segment once (see posidx.h for why).
 *
 * A segment's records are in LSN order and the segment's name is its
 * first LSN, so the segment of an LSN is the last one whose first LSN
 * is not above it, and within a segment a binary search over the
 * checkpoints gives the last one at or before it.  Each segment's entry
 * remembers how far it has been read, so a growing segment is read on
 * from there rather than again.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/xmalloc.h"
#include "storage/posidx.h"
#include "storage/segment.h"

struct ck {
	uint64_t lsn, off;
};

struct segidx {
	uint64_t seg;		/* first LSN; 0: slot unused */
	uint64_t end_lsn;	/* last record read */
	uint64_t end_off;	/* where the next record starts */
	struct ck *v;
	size_t n, alloc;
	uint64_t used;		/* clock of the last use */
};

struct posidx {
	char *dir;
	const struct fileops *fo;
	struct segidx s[POSIDX_SEGS];
	uint64_t clock;
	uint64_t records_read;
};

struct posidx *
posidx_new(const char *dir, const struct fileops *fops)
{
	struct posidx *p = xcalloc(1, sizeof(*p));

	p->dir = xstrdup(dir);
	p->fo = fops ? fops : &fileops_posix;
	return p;
}

void
posidx_free(struct posidx **pp)
{
	struct posidx *p = *pp;
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < POSIDX_SEGS; i++)
		free(p->s[i].v);
	free(p->dir);
	free(p);
	*pp = NULL;
}

uint64_t
posidx_records_read(const struct posidx *p)
{
	return p->records_read;
}

size_t
posidx_bytes(const struct posidx *p)
{
	size_t i, n = sizeof(*p);

	for (i = 0; i < POSIDX_SEGS; i++)
		n += p->s[i].alloc * sizeof(struct ck);
	return n;
}

static void
note(struct segidx *s, uint64_t lsn, uint64_t off)
{
	if (s->n > 0 && off - s->v[s->n - 1].off < POSIDX_STRIDE)
		return;
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? s->alloc * 2 : 16;
		s->v = xreallocarray(s->v, s->alloc, sizeof(*s->v));
	}
	s->v[s->n++] = (struct ck){ lsn, off };
}

/* Reads segment s on from where it stopped, until lsn or its end. */
static int
extend(struct posidx *p, struct segidx *s, uint64_t lsn, char *err,
    size_t err_len)
{
	char path[4096];
	struct stat sb;
	int fd, e = 0;

	seg_path(path, sizeof(path), p->dir, s->seg);
	fd = p->fo->open(p->fo->ctx, path, O_RDONLY, 0);
	if (fd < 0) {
		e = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return e;
	}
	if (fstat(fd, &sb) < 0) {
		e = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	while (s->end_lsn < lsn) {
		struct journal_record rec;
		const char *why = NULL;

		e = seg_check_record(p->fo, fd, s->end_off,
		    (uint64_t)sb.st_size, &rec, &why);
		if (e != SEG_RECORD_OK) {
			if (e < 0 && e != SEG_TORN) {
				snprintf(err, err_len, "%s: %s", path,
				    strerror(-e));
				goto out;
			}
			break;		/* its end (or a tail being written) */
		}
		p->records_read++;
		note(s, rec.lsn, s->end_off);
		s->end_lsn = rec.lsn;
		s->end_off += REC_HDR_SIZE + (uint64_t)rec.payload_len;
	}
	e = 0;
out:
	p->fo->close(p->fo->ctx, fd);
	return e;
}

/* The entry of the segment holding lsn, made (or read on) as needed. */
static struct segidx *
segment_of(struct posidx *p, uint64_t lsn, char *err, size_t err_len,
    int *ep)
{
	struct segidx *s = NULL, *lru = &p->s[0];
	uint64_t *segs = NULL, seg = 0;
	size_t n = 0, i;
	int e;

	for (i = 0; i < POSIDX_SEGS; i++)
		if (p->s[i].seg != 0 && p->s[i].seg <= lsn &&
		    lsn <= p->s[i].end_lsn)
			return &p->s[i];
	if ((e = seg_list(p->dir, &segs, &n)) < 0) {
		snprintf(err, err_len, "%s: %s", p->dir, strerror(-e));
		*ep = e;
		return NULL;
	}
	for (i = 0; i < n && segs[i] <= lsn; i++)
		seg = segs[i];
	free(segs);
	if (seg == 0) {
		snprintf(err, err_len, "no record at LSN %llu in the journal",
		    (unsigned long long)lsn);
		*ep = -ENOENT;
		return NULL;
	}
	for (i = 0; i < POSIDX_SEGS; i++) {
		if (p->s[i].seg == seg) {
			s = &p->s[i];
			break;
		}
		if (p->s[i].used < lru->used)
			lru = &p->s[i];
	}
	if (s == NULL) {
		s = lru;
		free(s->v);
		*s = (struct segidx){ .seg = seg, .end_lsn = seg - 1,
		    .end_off = SEG_HDR_SIZE };
	}
	if ((e = extend(p, s, lsn, err, err_len)) < 0) {
		*ep = e;
		return NULL;
	}
	if (lsn > s->end_lsn || s->n == 0) {
		snprintf(err, err_len, "no record at LSN %llu in the journal",
		    (unsigned long long)lsn);
		*ep = -ENOENT;
		return NULL;
	}
	return s;
}

int
posidx_find(struct posidx *p, uint64_t lsn, uint64_t *segment,
    uint64_t *offset, char *err, size_t err_len)
{
	struct segidx *s;
	size_t lo, hi;
	int e = 0;

	if ((s = segment_of(p, lsn, err, err_len, &e)) == NULL)
		return e;
	s->used = ++p->clock;
	/* The last checkpoint whose LSN is not above lsn. */
	lo = 0;
	hi = s->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].lsn <= lsn)
			lo = mid;
		else
			hi = mid;
	}
	*segment = s->seg;
	*offset = s->v[lo].off;
	return 0;
}
