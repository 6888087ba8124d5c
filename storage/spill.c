/*
 * spill.c -- a huge APPLY MAILBOX's RECORD elements in an unlinked file.
 *
 * Writing: each element is printed into a 64 KB buffer that is written
 * out when full (the page cache takes it; nothing here is synced: the
 * file dies with the command, the journal is the durable copy).
 * Reading: the file, wrapped as "S %(RECORD (" ... "))", goes through
 * the ordinary dlist parser with a record hook, so each element comes
 * back parsed exactly as the master's line would have been, and only
 * one is held at a time.  The parser's limits were enforced when the
 * master's line was read; the wrapper's are lifted except depth.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "storage/spill.h"

#define SPILL_BUF (64u << 10)

struct spill {
	int fd;
	struct buf out;		/* printed, not yet written */
	uint64_t written;	/* bytes in the file */
	size_t count;
};

struct spill *
spill_new(const char *dir)
{
	struct spill *sp;
	char path[4096];
	int fd;

	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/spill.XXXXXX", dir) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if ((fd = mkstemp(path)) < 0)
		return NULL;
	unlink(path);
	sp = xcalloc(1, sizeof(*sp));
	sp->fd = fd;
	buf_init(&sp->out, 0);
	return sp;
}

void
spill_free(struct spill **sp)
{
	if (*sp == NULL)
		return;
	close((*sp)->fd);
	buf_free(&(*sp)->out);
	free(*sp);
	*sp = NULL;
}

static int
write_out(struct spill *sp)
{
	size_t off = 0;

	while (off < sp->out.len) {
		ssize_t n = pwrite(sp->fd, sp->out.s + off, sp->out.len - off,
		    (off_t)(sp->written + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	sp->written += off;
	buf_reset(&sp->out);
	return 0;
}

int
spill_add(struct spill *sp, const struct dlist *rec)
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	int r;

	if (sp->count > 0 && (r = buf_putc(&sp->out, ' ')) < 0)
		return r;
	if ((r = dlist_print_value(rec, &sp->out, &pr)) < 0)
		return r;
	sp->count++;
	return sp->out.len >= SPILL_BUF ? write_out(sp) : 0;
}

size_t
spill_count(const struct spill *sp)
{
	return sp->count;
}

int
spill_flush(struct spill *sp)
{
	return write_out(sp);
}

int
spill_fd(const struct spill *sp)
{
	return sp->fd;
}

uint64_t
spill_bytes(const struct spill *sp)
{
	return sp->written + sp->out.len;
}

struct each {
	int (*fn)(void *, const struct dlist *);
	void *arg;
	int rc;
};

static int
each_record(void *arg, struct dlist *elem, size_t index)
{
	struct each *e = arg;

	(void)index;
	e->rc = e->fn(e->arg, elem);
	dlist_free(&elem);
	return e->rc;
}

/* Feeds n bytes; 0 while the wrapper is unfinished, 1 at its end. */
static int
feed_all(struct dlist_parser *p, const char *s, size_t n)
{
	size_t used = 0, off = 0;
	enum dlist_parse_status st = DLIST_NEED_MORE;

	while (off < n) {
		st = dlist_parser_feed(p, s + off, n - off, &used);
		off += used;
		if (st != DLIST_NEED_MORE)
			break;
	}
	if (st == DLIST_ERROR)
		return -1;
	return st == DLIST_DONE ? (off == n ? 1 : -1) : 0;
}

int
spill_each(struct spill *sp, int (*fn)(void *arg, const struct dlist *rec),
    void *arg)
{
	static const char head[] = "S %(RECORD (", tail[] = "))\r\n";
	struct dlist_limits lim = dlist_limits_default;
	struct each e = { fn, arg, 0 };
	struct dlist_record_hook hook = { "RECORD", each_record, &e };
	struct dlist_parser *p;
	struct dlist *dl;
	char *chunk;
	uint64_t off = 0;
	int r;

	if ((r = spill_flush(sp)) < 0)
		return r;
	lim.max_line = SIZE_MAX;
	lim.max_items = SIZE_MAX;
	p = dlist_parser_new(&lim, NULL);
	dlist_parser_set_record_hook(p, &hook);
	chunk = xmalloc(SPILL_BUF);
	r = feed_all(p, head, sizeof(head) - 1);
	while (r == 0 && off < sp->written) {
		size_t k = sp->written - off < SPILL_BUF ?
		    (size_t)(sp->written - off) : SPILL_BUF;
		ssize_t n = pread(sp->fd, chunk, k, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += (uint64_t)n;
		r = feed_all(p, chunk, (size_t)n);
	}
	if (r == 0)
		r = feed_all(p, tail, sizeof(tail) - 1);
	free(chunk);
	dl = dlist_parser_take(p);
	dlist_free(&dl);
	dlist_parser_free(&p);
	if (e.rc != 0)
		return e.rc;
	return r == 1 ? 0 : r < 0 && r != -1 ? r : -EINVAL;
}

int
spill_print_around(const char *verb, const struct dlist *entry,
    struct buf *head, struct buf *tail)
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	const struct dlist *c, *list = NULL;
	struct buf *out = head;
	int r;

	if (entry->type != DL_KVLIST || entry->key == NULL)
		return -EINVAL;
	for (c = entry->head; c != NULL && list == NULL; c = c->next)
		if (c->type == DL_LIST && c->key != NULL &&
		    strcmp(c->key, "RECORD") == 0)
			list = c;
	if (list == NULL || list->head != NULL)
		return -EINVAL;
	if ((r = buf_printf(head, "%s ", verb)) < 0 ||
	    (r = dlist_print_astring(head, entry->key, strlen(entry->key),
	    pr.mode)) < 0 || (r = buf_puts(head, " %(")) < 0)
		return r;
	for (c = entry->head; c != NULL; c = c->next) {
		if (c != entry->head && (r = buf_putc(out, ' ')) < 0)
			return r;
		if (c == list) {
			if ((r = buf_puts(head, "RECORD (")) < 0 ||
			    (r = buf_putc(tail, ')')) < 0)
				return r;
			out = tail;
			continue;
		}
		if ((r = dlist_print_entry(c, out, &pr)) < 0)
			return r;
	}
	return buf_putc(tail, ')');
}
