/*
 * fold.c -- replaying journal records into the shadow.
 *
 * Records are applied in LSN order, a few hundred per SQLite
 * transaction, each transaction ending with shadow_commit(last LSN), so
 * an interrupted fold simply resumes.  Commands are replayed with the
 * replay context: they were accepted when journaled, so only the
 * changes are redone (force mode and SIEVE-MAILBOX cannot turn a
 * journaled command into a refusal).  A seed record (SEED MAILBOX ...,
 * state taken from a replica for what the master never sent) folds
 * like the APPLY it stands for, but makes no parents (the replica
 * reported those it has).
 *
 * A command whose text is too big to hold (a one-shot sync of a
 * mailbox of 100,000 messages: 20 MB of text, 170 MB as a tree) is read
 * in pieces (jtext.c), its RECORD elements spilled to a file as they
 * are parsed (spill.c) and applied from there one at a time, as the
 * master's session applied them (apply_command_spilled()): a fold after
 * a crash takes no more memory than the session that journaled it.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "protocol/csync.h"
#include "storage/apply.h"
#include "storage/fold.h"
#include "storage/journal.h"
#include "storage/jtext.h"
#include "storage/spill.h"

#define FOLD_BATCH 256

struct dlist *
fold_parse_record(const char *text, size_t len, bool *seed)
{
	struct csync_reader *r = csync_reader_new(CSYNC_SERVER, NULL, NULL);
	struct buf line = BUF_INIT;
	struct dlist *e = NULL;
	size_t used;

	*seed = len > 5 && memcmp(text, "SEED ", 5) == 0;
	if (*seed) {
		/* Read as the APPLY it stands for (the csync reader takes a
		 * dlist only after the verbs a master sends). */
		buf_puts(&line, "APPLY");
		buf_append(&line, text + 4, len - 4);
	} else {
		buf_append(&line, text, len);
	}
	buf_puts(&line, "\r\n");
	if (csync_reader_feed(r, line.s, line.len, &used) == CSYNC_LINE &&
	    strcmp(csync_reader_verb(r), "APPLY") == 0)
		e = csync_reader_take_entry(r);
	csync_reader_free(&r);
	buf_free(&line);
	return e;
}

struct dlist *
fold_parse_command(const char *text, size_t len)
{
	bool seed;

	return fold_parse_record(text, len, &seed);
}

static const struct apply_ctx replay = { true, true, true, false };
static const struct apply_ctx seeded = { true, true, true, true };

int
fold_command_text(struct shadow *s, const char *text, size_t len,
    struct apply_outcome *out)
{
	bool seed;
	struct dlist *e = fold_parse_record(text, len, &seed);

	if (e == NULL)
		return -EINVAL;
	apply_command(s, e, seed ? &seeded : &replay, out);
	dlist_free(&e);
	return 0;
}

static int
spill_record(void *arg, struct dlist *elem, size_t index)
{
	int r = spill_add(arg, elem);

	(void)index;
	dlist_free(&elem);
	return r < 0 ? -1 : 0;
}

/*
 * Applies the big command record rec of the journal in dir, read in
 * pieces, its RECORD elements spilled to a file in dir's sibling tmp/
 * (where the sessions spill theirs).  0, or a negative errno with err
 * set: the record cannot be read or parsed (-EBADMSG), or no spill file
 * can be made.
 */
static int
fold_big(struct shadow *s, const char *dir, const struct journal_record *rec,
    struct apply_outcome *out, char *err, size_t err_len)
{
	struct dlist_record_hook hook = { "RECORD", spill_record, NULL };
	struct journal_record r2;
	struct journal_body_stream *ts;
	struct dlist_parser *p = NULL;
	struct dlist *e = NULL;
	struct spill *sp = NULL;
	struct buf head = BUF_INIT;
	char tmp[4096];
	uint64_t pos = 0;
	size_t verb = 0;
	const char *slash;
	int r;

	ts = journal_text_stream_open_at(dir, NULL, rec->lsn, rec->segment,
	    rec->offset, &r2, err, err_len);
	if (ts == NULL)
		return -EBADMSG;
	/* The verb's first 5 bytes; jtext_feed() skips the rest of it. */
	if (journal_body_stream_read(ts, &head, 5) >= 0 && head.len == 5)
		verb = memcmp(head.s, "APPLY", 5) == 0 ? 6 :
		    memcmp(head.s, "SEED ", 5) == 0 ? 5 : 0;
	pos = head.len;
	if (verb == 0) {
		journal_body_stream_free(&ts);
		buf_free(&head);
		out->code = RESULT_PROTOCOL_ERROR;
		snprintf(out->why, sizeof(out->why), "not an APPLY command");
		return 0;
	}
	slash = strrchr(dir, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/tmp", slash ? (int)(slash - dir) : 1,
	    slash ? dir : ".");
	if ((sp = spill_new(tmp)) == NULL) {
		r = -errno;
		snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	hook.arg = sp;
	p = jtext_parser(&hook);
	r = jtext_feed(ts, p, &pos, rec->raw_len, verb, 64 << 10, NULL, NULL,
	    err, err_len);
	if (r == 1 && (e = dlist_parser_take(p)) == NULL)
		r = 0;
	if (r == 0) {
		snprintf(err, err_len, "journal record %llu: no entry",
		    (unsigned long long)rec->lsn);
		r = -EBADMSG;
	} else if (r == 1) {
		if ((r = spill_flush(sp)) < 0)
			snprintf(err, err_len, "%s: %s", tmp, strerror(-r));
		else {
			log_info("shadow=fold lsn=%llu event=fold_big "
			    "records=%zu bytes=%u", (unsigned long long)
			    rec->lsn, spill_count(sp), rec->raw_len);
			apply_command_spilled(s, e, sp, verb == 5 ? &seeded :
			    &replay, out);
		}
	}
out:
	dlist_free(&e);
	dlist_parser_free(&p);
	journal_body_stream_free(&ts);
	spill_free(&sp);
	buf_free(&head);
	return r < 0 ? r : 0;
}

long
fold_journal(struct shadow *s, const char *dir, uint64_t upto, char *err,
    size_t err_len)
{
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	uint64_t from = shadow_lsn(s) + 1, last = 0;
	size_t big = jtext_big();
	bool err_set = false;
	long n = 0;
	int e, pending = 0;

	r = journal_reader_new(dir, NULL, from, upto, err, err_len);
	if (r == NULL)
		return -EIO;
	journal_reader_set_max_text(r, big);
	while ((e = journal_reader_next(r, &rec, &raw)) == 1) {
		if (pending == 0 && (e = shadow_begin(s)) < 0)
			break;
		if (rec.type == JOURNAL_BODY) {
			struct shadow_body b;

			journal_guid_hex(rec.guid, b.guid);
			b.lsn = rec.lsn;
			b.size = rec.raw_len;
			if ((e = shadow_body_put(s, &b)) < 0)
				break;
		} else {
			struct apply_outcome out = { RESULT_PROTOCOL_ERROR,
				false, "not an APPLY command" };

			if (rec.raw_len > big) {
				/* Left unread by the reader: too big to hold. */
				if ((e = fold_big(s, dir, &rec, &out, err,
				    err_len)) < 0) {
					err_set = true;
					break;
				}
				if ((e = shadow_body_needed_by(s, rec.lsn)) < 0)
					break;
			} else if (fold_command_text(s, raw.s, raw.len,
			    &out) == 0 &&
			    (e = shadow_body_needed_by(s, rec.lsn)) < 0)
				break;
			if (!out.changed && out.code != RESULT_OK)
				log_warnx("shadow=fold lsn=%llu event=replay_"
				    "refused code=%s reason=\"%s\"",
				    (unsigned long long)rec.lsn,
				    result_name(out.code), out.why);
		}
		last = rec.lsn;
		n++;
		if (++pending == FOLD_BATCH) {
			if ((e = shadow_commit(s, last)) < 0)
				break;
			pending = 0;
		}
	}
	if (e < 0) {
		if (!err_set)
			snprintf(err, err_len, "%s", e == -EBADMSG ||
			    e == -EIO ? journal_reader_errstr(r) :
			    shadow_errmsg(s));
		shadow_rollback(s);
		n = e;
	} else if (pending && (e = shadow_commit(s, last)) < 0) {
		snprintf(err, err_len, "%s", shadow_errmsg(s));
		n = e;
	}
	journal_reader_free(&r);
	buf_free(&raw);
	return n;
}
