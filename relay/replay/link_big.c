/*
 * link_big.c -- a big journaled APPLY MAILBOX (100,000 records: 20 MB
 * of text, 170 MB as a tree) replayed without holding it whole.
 *
 * The record's text is read from the journal three times, each time in
 * pieces (journal_text_stream_open_at(), storage/jtext.c) through a
 * dlist parser whose record hook hands over one RECORD element at a
 * time:
 *   1. link_big_open(): the header (every item but RECORD) for the
 *      SINCE guards, folding and parking; where RECORD's "(" is.
 *   2. link_big_next_batch(): the records above the replica's LAST_UID,
 *      a batch at a time, whose bodies link_replay.c stages (RESERVE,
 *      MESSAGE) before asking for the next batch.
 *   3. link_big_send(): "APPLY " + the header as it is now (guards set
 *      from the replica) + " RECORD " + the text from that "(" on,
 *      copied to the socket as it drains (CONN_OUT_HIGH).
 * Memory is the parser's one element, a batch and a chunk: it does not
 * grow with the record count.  A big command is never folded with
 * others.  Only the shape Cyrus sends (RECORD the last item) is
 * streamed; anything else is read whole as before.  The reply is
 * handled by link_replay.c exactly as for a small command.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "relay/conn.h"
#include "relay/replay/link_big.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"
#include "storage/jtext.h"

#define CHUNK ((size_t)64 << 10)	/* bytes decompressed at a time */
#define BATCH 2048			/* records staged at a time, about */
#define VERB "APPLY "

struct link_big {
	struct journal_record rec;
	size_t chunk_max;		/* bytes read at a time */
	size_t batch_max;		/* records staged at a time, about */
	uint64_t list_off;		/* RECORD's "(" in the text */
	/* Staging: the scan through the records. */
	struct journal_body_stream *scan;
	struct dlist_parser *sp;
	struct dlist *batch;
	uint32_t above_uid;
	bool scan_done;
	unsigned batches;		/* staged so far */
	/* Sending. */
	struct journal_body_stream *ts;
	uint64_t pos;			/* text bytes read so far */
	void (*k)(struct link *, const char *, const char *);
	struct buf chunk;
};

static struct journal_body_stream *
open_text(const char *storedir, const struct journal_record *rec, char *err,
    size_t err_len)
{
	struct journal_record r2;
	char path[4096];

	snprintf(path, sizeof(path), "%s/journal", storedir);
	return journal_text_stream_open_at(path, NULL, rec->lsn, rec->segment,
	    rec->offset, &r2, err, err_len);
}

static int
drop_record(void *arg, struct dlist *elem, size_t index)
{
	dlist_free(&elem);
	return 0;
}

int
link_big_open(const char *storedir, const struct journal_record *rec,
    struct dlist **hdr, struct link_big **out, char *err, size_t err_len)
{
	struct dlist_record_hook hook = { "RECORD", drop_record, NULL };
	size_t big = jtext_big();
	struct journal_body_stream *ts;
	struct dlist_parser *p;
	struct dlist *e = NULL;
	struct buf head = BUF_INIT;
	uint64_t pos = 0;
	int64_t off;
	int r;

	*hdr = NULL;
	*out = NULL;
	if ((ts = open_text(storedir, rec, err, err_len)) == NULL)
		return -EBADMSG;
	/* A seed is never sent: known as one, it need not be read. */
	if (journal_body_stream_read(ts, &head, 16) >= 0 && head.len >= 5 &&
	    memcmp(head.s, "SEED ", 5) == 0) {
		journal_body_stream_free(&ts);
		buf_free(&head);
		*hdr = dlist_new_kvlist("SEED");
		return 2;
	}
	/* Only "APPLY MAILBOX": any other command goes whole. */
	if (head.len < 16 || memcmp(head.s, VERB "MAILBOX ", 14) != 0) {
		journal_body_stream_free(&ts);
		buf_free(&head);
		return 0;
	}
	journal_body_stream_free(&ts);
	buf_free(&head);
	if ((ts = open_text(storedir, rec, err, err_len)) == NULL)
		return -EBADMSG;
	p = jtext_parser(&hook);
	r = jtext_feed(ts, p, &pos, rec->raw_len, strlen(VERB), CHUNK, NULL,
	    NULL, err, err_len);
	off = dlist_parser_record_offset(p);
	if (r == 1)
		e = dlist_parser_take(p);
	dlist_parser_free(&p);
	journal_body_stream_free(&ts);
	if (r < 0)
		return r;
	/* Streamed only if RECORD is the last item, its list ending the
	 * text (as Cyrus sends it): the text from "(" on is then exactly
	 * "RECORD's value" + the closing ")". */
	if (e == NULL || e->type != DL_KVLIST || off < 0 || e->tail == NULL ||
	    e->tail->key == NULL || strcmp(e->tail->key, "RECORD") != 0 ||
	    e->tail->type != DL_LIST) {
		dlist_free(&e);
		return 0;
	}
	*hdr = e;
	*out = xcalloc(1, sizeof(**out));
	(*out)->rec = *rec;
	/* A threshold lowered for the tests scales these down too, so that
	 * a mailbox of a few hundred records sees several of each. */
	(*out)->chunk_max = big < CHUNK ? big : CHUNK;
	(*out)->batch_max = big / 512 < 64 ? 64 : big / 512 > BATCH ? BATCH :
	    big / 512;
	(*out)->list_off = strlen(VERB) + (uint64_t)off;
	return 1;
}

int
link_big_read_whole(const char *storedir, const struct journal_record *rec,
    struct buf *raw, char *err, size_t err_len)
{
	struct journal_body_stream *ts = open_text(storedir, rec, err, err_len);
	ssize_t got;

	if (ts == NULL)
		return -EBADMSG;
	buf_reset(raw);
	while ((got = journal_body_stream_read(ts, raw, CHUNK)) > 0)
		;
	journal_body_stream_free(&ts);
	if (got < 0 || raw->len != rec->raw_len) {
		snprintf(err, err_len, "journal record %llu damaged",
		    (unsigned long long)rec->lsn);
		return -EBADMSG;
	}
	return 0;
}

void
link_big_free(struct link_big **bp)
{
	struct link_big *b = *bp;

	if (b == NULL)
		return;
	journal_body_stream_free(&b->scan);
	dlist_parser_free(&b->sp);
	dlist_free(&b->batch);
	journal_body_stream_free(&b->ts);
	buf_free(&b->chunk);
	free(b);
	*bp = NULL;
}

/* The hook of the staging scan: keeps the records above above_uid. */
static int
keep_record(void *arg, struct dlist *elem, size_t index)
{
	struct link_big *b = arg;
	uint64_t uid = 0;

	if (dlist_get_num(elem, "UID", &uid) == 0 && uid > b->above_uid)
		dlist_append(b->batch, elem);
	else
		dlist_free(&elem);
	return 0;
}

static bool
batch_full(void *arg)
{
	struct link_big *b = arg;

	return b->batch->nchildren >= b->batch_max;
}

int
link_big_next_batch(const char *storedir, struct link_big *b,
    uint32_t above_uid, const struct dlist **batch, char *err,
    size_t err_len)
{
	int r;

	*batch = NULL;
	dlist_free(&b->batch);
	if (b->scan_done)
		return 0;
	if (b->scan == NULL) {
		struct dlist_record_hook hook = { "RECORD", keep_record, b };

		if ((b->scan = open_text(storedir, &b->rec, err,
		    err_len)) == NULL)
			return -EBADMSG;
		b->sp = jtext_parser(&hook);
		b->pos = 0;
	}
	b->above_uid = above_uid;
	b->batch = dlist_new_list("RECORD");
	r = jtext_feed(b->scan, b->sp, &b->pos, b->rec.raw_len, strlen(VERB),
	    b->chunk_max, batch_full, b, err, err_len);
	if (r < 0)
		return r;
	if (r == 1) {
		struct dlist *e = dlist_parser_take(b->sp);

		dlist_free(&e);
		journal_body_stream_free(&b->scan);
		dlist_parser_free(&b->sp);
		b->scan_done = true;
		b->pos = 0;
		if (b->batch->nchildren == 0)
			return 0;
	}
	*batch = b->batch;
	b->batches++;
	return 1;
}

const struct dlist *
link_big_batch(const struct link_big *b)
{
	return b->batch;
}

void
link_big_send(struct link *l, struct link_big *b, struct dlist *cmd,
    void (*k)(struct link *, const char *, const char *))
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct buf text = BUF_INIT;
	char err[256];

	dlist_free(&b->batch);
	journal_body_stream_free(&b->ts);
	if ((b->ts = open_text(l->st->dir, &b->rec, err, sizeof(err))) ==
	    NULL) {
		link_fail(l, "%s", err);
		return;
	}
	b->pos = 0;
	b->k = k;
	/* The header as it is now, its RECORD and closing ")\r\n" left for
	 * the text. */
	dlist_remove(cmd, "RECORD");
	csync_print_command(&text, "APPLY", cmd, &pr);
	dlist_add_list(cmd, "RECORD");
	if (text.len < 3 || memcmp(text.s + text.len - 3, ")\r\n", 3) != 0) {
		buf_free(&text);
		journal_body_stream_free(&b->ts);
		link_fail(l, "APPLY MAILBOX header of record %llu: bad shape",
		    (unsigned long long)b->rec.lsn);
		return;
	}
	text.len -= 3;
	buf_puts(&text, " RECORD ");
	log_info("store=%s replica=%s event=big_command lsn=%llu bytes=%u "
	    "batches=%u note=\"streamed from the journal\"", l->st->name,
	    l->rc.name, (unsigned long long)b->rec.lsn, b->rec.raw_len,
	    b->batches);
	link_send_text(l, text.s, text.len);
	buf_free(&text);
	link_big_pump(l);
}

bool
link_big_sending(const struct link *l)
{
	return l->big != NULL && l->big->ts != NULL;
}

void
link_big_pump(struct link *l)
{
	struct link_big *b = l->big;

	while (l->conn && b != NULL && b->ts != NULL &&
	    conn_out_pending(l->conn) < CONN_OUT_HIGH) {
		size_t skip = 0;
		ssize_t got;

		if (l->bytes_bucket.rate > 0 && link_throttled(l))
			return;
		buf_reset(&b->chunk);
		got = journal_body_stream_read(b->ts, &b->chunk, b->chunk_max);
		if (got < 0 || (got == 0 && b->pos != b->rec.raw_len)) {
			journal_body_stream_free(&b->ts);
			link_fail(l, "reading the journal: record %llu damaged",
			    (unsigned long long)b->rec.lsn);
			return;
		}
		if (got == 0) {
			/* b goes with the connection if the write kills it. */
			void (*k)(struct link *, const char *, const char *) =
			    b->k;

			journal_body_stream_free(&b->ts);
			buf_free(&b->chunk);
			link_send_text(l, "\r\n", 2);
			if (l->conn != NULL)
				l->on_reply = k;
			return;
		}
		if (b->pos < b->list_off)
			skip = b->list_off - b->pos < b->chunk.len ?
			    (size_t)(b->list_off - b->pos) : b->chunk.len;
		b->pos += b->chunk.len;
		if (skip < b->chunk.len)
			link_send_text(l, b->chunk.s + skip,
			    b->chunk.len - skip);
	}
	if (l->conn && b != NULL && b->ts != NULL)
		conn_want_drain(l->conn);
}
