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

int
fold_command_text(struct shadow *s, const char *text, size_t len,
    struct apply_outcome *out)
{
	static const struct apply_ctx replay = { true, true, true, false };
	static const struct apply_ctx seeded = { true, true, true, true };
	bool seed;
	struct dlist *e = fold_parse_record(text, len, &seed);

	if (e == NULL)
		return -EINVAL;
	apply_command(s, e, seed ? &seeded : &replay, out);
	dlist_free(&e);
	return 0;
}

long
fold_journal(struct shadow *s, const char *dir, uint64_t upto, char *err,
    size_t err_len)
{
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	uint64_t from = shadow_lsn(s) + 1, last = 0;
	long n = 0;
	int e, pending = 0;

	r = journal_reader_new(dir, NULL, from, upto, err, err_len);
	if (r == NULL)
		return -EIO;
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

			if (fold_command_text(s, raw.s, raw.len, &out) == 0 &&
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
		snprintf(err, err_len, "%s", e == -EBADMSG || e == -EIO ?
		    journal_reader_errstr(r) : shadow_errmsg(s));
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
