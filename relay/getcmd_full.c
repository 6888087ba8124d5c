/*
 * getcmd_full.c -- a whole mailbox printed a page of records at a time
 * (docs/scale.md, "Big mailboxes", item 3).
 *
 * Printed whole, a mailbox of 100,000 records was a tree of ~2.6 KB a
 * record before it was text.  Here the fields before RECORD are printed
 * first (getcmd_mailbox_dlist() without records, RECORD being its last
 * field), then each call reads at most a page of records from the
 * shadow from the UID after the last one printed, gives them a
 * replica's flag and annotation order (getcmd_canon_records(), whose
 * flag slots persist from page to page), prints and frees them.  The
 * caller sends each page before asking for the next (back-pressure):
 * the text of a page, a page's tree and the flag slots are all that is
 * held.
 *
 * Consistency: the header's SYNC_CRC must be the XOR of the records
 * printed.  Everything printed in one turn of the event loop comes from
 * one state of the shadow.  The first page is read from the store's
 * connection when no transaction is open on it (then it holds exactly
 * what is committed); if it was not the last, a snapshot
 * (shadow_snapshot_open()) is taken in the same turn, before anything
 * can change, and the later pages come from it.  With a transaction
 * open (a master's change waiting for the journal: only a link can get
 * here then), everything comes from a snapshot, i.e. the shadow at
 * shadow_lsn(), without the change.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "relay/getcmd.h"
#include "relay/getcmd_full.h"

struct getcmd_full {
	struct shadow *s;		/* the store's shadow */
	struct shadow *snap;		/* once more than one turn is needed */
	char *uniqueid;
	struct getcmd_flags *flags;
	struct dlist_printer pr;
	uint32_t next_uid;		/* the next page starts here */
	uint64_t records;		/* printed so far */
	struct buf head;		/* the text before RECORD, if deferred */
	bool done;
};

/* A RECORD list to be filled from the shadow (getcmd_full_header()). */
#define PAGED_MARK 0x70616765	/* "page" in its num, unused by lists */

struct page {
	struct dlist *list;
	size_t n, max;
	uint32_t last_uid;
};

static size_t page_size;

size_t
getcmd_full_page(void)
{
	if (page_size == 0) {
		const char *e = getenv("SYNCRELAY_FULL_PAGE");
		unsigned long v = e ? strtoul(e, NULL, 10) : 0;

		page_size = v > 0 && v < 1000000 ? (size_t)v :
		    GETCMD_FULL_PAGE;
	}
	return page_size;
}

void
getcmd_full_set_page(size_t n)
{
	page_size = n;
}

static struct shadow *
source(const struct getcmd_full *f)
{
	return f->snap ? f->snap : f->s;
}

static int
take_snapshot(struct getcmd_full *f, char *why, size_t why_len)
{
	if (f->snap != NULL)
		return 0;
	return shadow_snapshot_open(f->s, &f->snap, why, why_len);
}

int
getcmd_full_start(struct shadow *s, const char *uniqueid, const char *verb,
    enum dlist_print_mode mode, struct buf *out, struct getcmd_full **fp,
    char *why, size_t why_len)
{
	struct getcmd_full *f = xcalloc(1, sizeof(*f));
	struct shadow_mailbox mb;
	struct dlist *kv;
	size_t start;
	bool inter;
	int r;

	if (out == NULL)
		out = &f->head;		/* printed by the first next() */
	start = out->len;

	*fp = NULL;
	f->s = s;
	f->uniqueid = xstrdup(uniqueid);
	f->pr.mode = mode;
	f->next_uid = 0;
	/* A change waiting for the journal is not printed (see above). */
	if (shadow_in_transaction(s) &&
	    (r = take_snapshot(f, why, why_len)) < 0) {
		getcmd_full_free(&f);
		return r;
	}
	if (shadow_mailbox_by_uniqueid(source(f), uniqueid, &mb) < 0) {
		snprintf(why, why_len, "no mailbox %s", uniqueid);
		getcmd_full_free(&f);
		return -ENOENT;
	}
	inter = mb.mbtype != NULL && strchr(mb.mbtype, 'i') != NULL;
	kv = getcmd_mailbox_dlist(source(f), &mb, false);
	shadow_mailbox_free(&mb);
	if (inter) {
		/* An intermediate's short form: no RECORD field at all. */
		csync_print_command(out, verb, kv, &f->pr);
		dlist_free(&kv);
		f->done = true;
		*fp = f;
		return 0;
	}
	dlist_add_list(kv, "RECORD");
	csync_print_command(out, verb, kv, &f->pr);
	dlist_free(&kv);
	/* The line ends "RECORD ())\r\n": keep it open after "RECORD (". */
	if (out->len < start + 5 || memcmp(out->s + out->len - 5, "())\r\n",
	    5) != 0) {
		snprintf(why, why_len, "mailbox %s: unexpected text", uniqueid);
		out->len = start;
		out->s[out->len] = '\0';
		getcmd_full_free(&f);
		return -EIO;
	}
	out->len -= 4;
	out->s[out->len] = '\0';
	f->flags = getcmd_flags_new(source(f), uniqueid);
	*fp = f;
	return 0;
}

static int
page_cb(void *arg, const struct shadow_record *rec)
{
	struct page *p = arg;
	struct dlist *kv;

	if (p->n == p->max)
		return 1;		/* one more than a page: not the last */
	/* A record whose annotations do not parse is left out, as the
	 * whole print leaves it out. */
	kv = shadow_record_dlist(rec);
	if (kv != NULL)
		dlist_append(p->list, kv);
	p->n++;
	p->last_uid = rec->uid;
	return 0;
}

int
getcmd_full_next(struct getcmd_full *f, struct buf *out, char *why,
    size_t why_len)
{
	struct page p = { NULL, 0, getcmd_full_page(), 0 };
	const struct dlist *r;
	int more, err;

	if (f->head.len > 0) {
		buf_append(out, f->head.s, f->head.len);
		buf_free(&f->head);
		if (f->done)
			return 0;	/* an intermediate, whole */
	}
	if (f->done)
		return 0;
	p.list = dlist_new_list(NULL);
	more = shadow_record_each(source(f), f->uniqueid, f->next_uid,
	    page_cb, &p);
	if (more < 0) {
		snprintf(why, why_len, "reading the records of %s: %s",
		    f->uniqueid, strerror(-more));
		dlist_free(&p.list);
		return -EIO;
	}
	getcmd_canon_records(f->flags, p.list);
	for (r = p.list->head; r != NULL; r = r->next) {
		if (f->records++ > 0)
			buf_putc(out, ' ');
		dlist_print_value(r, out, &f->pr);
	}
	dlist_free(&p.list);
	if (more == 0) {
		buf_puts(out, "))\r\n");
		f->done = true;
		shadow_snapshot_close(&f->snap);
		return 0;
	}
	f->next_uid = p.last_uid + 1;
	/* Later pages come in later turns: hold this state for them. */
	if ((err = take_snapshot(f, why, why_len)) < 0)
		return err;
	return 1;
}

int
getcmd_full_stage(struct getcmd_full *f, uint32_t *from, size_t max,
    struct dlist *list, char *why, size_t why_len)
{
	struct page p = { list, 0, max, 0 };
	int more, r;

	if (f->done && f->flags == NULL)
		return 0;		/* an intermediate: no records */
	/* The text printed later must hold what is staged now. */
	if ((r = take_snapshot(f, why, why_len)) < 0)
		return r;
	more = shadow_record_each(f->snap, f->uniqueid, *from, page_cb, &p);
	if (more < 0) {
		snprintf(why, why_len, "reading the records of %s: %s",
		    f->uniqueid, strerror(-more));
		return -EIO;
	}
	if (p.n > 0)
		*from = p.last_uid + 1;
	return more;
}

struct dlist *
getcmd_full_header(struct shadow *s, const struct shadow_mailbox *mb)
{
	struct dlist *kv = getcmd_mailbox_dlist(s, mb, false);

	if (mb->mbtype == NULL || strchr(mb->mbtype, 'i') == NULL)
		dlist_add_list(kv, "RECORD")->num = PAGED_MARK;
	return kv;
}

bool
getcmd_full_is_paged(const struct dlist *cmd)
{
	const struct dlist *rl = dlist_get(cmd, "RECORD");

	return rl != NULL && rl->type == DL_LIST && rl->num == PAGED_MARK;
}

enum result_code
getcmd_full_answer(struct shadow *s, const struct dlist *e, struct buf *out,
    struct getcmd_full **fp, char *why, size_t why_len)
{
	struct shadow_mailbox mb;
	int r;

	*fp = NULL;
	if (e->type != DL_ATOM)
		return RESULT_PROTOCOL_BAD_PARAMETERS;
	memset(&mb, 0, sizeof(mb));
	if (shadow_mailbox_by_name(s, e->s, &mb) < 0 ||
	    (mb.mbtype && strchr(mb.mbtype, 'd'))) {
		shadow_mailbox_free(&mb);
		snprintf(why, why_len, "no mailbox %s", e->s);
		return RESULT_MAILBOX_NONEXISTENT;
	}
	r = getcmd_full_start(s, mb.uniqueid, "*", DLIST_PRINT_SERVER, out, fp,
	    why, why_len);
	shadow_mailbox_free(&mb);
	if (r == -ENOENT)
		return RESULT_MAILBOX_NONEXISTENT;
	return r < 0 ? RESULT_UNKNOWN : RESULT_OK;
}

void
getcmd_full_free(struct getcmd_full **fp)
{
	struct getcmd_full *f = *fp;

	if (f == NULL)
		return;
	shadow_snapshot_close(&f->snap);
	getcmd_flags_free(&f->flags);
	buf_free(&f->head);
	free(f->uniqueid);
	free(f);
	*fp = NULL;
}
