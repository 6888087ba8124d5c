/*
 * link_replay.c -- replaying the journal to the replica, record after
 * record from the cursor: reading (consecutive updates of one mailbox
 * folded into one while catching up), asking the replica for the
 * mailbox's state (GET MAILBOXES) to set the SINCE_* guards, staging
 * the bodies it lacks (APPLY RESERVE, then APPLY MESSAGE streamed from
 * the journal as the socket drains, never held whole; a body the journal
 * no longer holds is fetched from another replica of the store -- a
 * seed's or audit's --from, else one caught up -- through l->fetch into
 * a temporary file first), sending the
 * command, and moving the cursor only past what the replica answered OK.
 * The cursor goes to the cursor writer thread (cursorq.h) every 200 ms
 * when it moved, so a crash replays at most that much again.
 *
 * A mailbox the replica refuses is handed to repair through l->repair
 * (link_int.h); anything else the replica refuses stops the link.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/result.h"
#include "relay/conn.h"
#include "relay/getcmd_full.h"
#include "relay/replay/link_big.h"
#include "storage/jtext.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"
#include "storage/fold.h"
#include "storage/posidx.h"
#include "storage/shadow.h"

#define MAX_FOLD 4096
#define MAX_SKIP 1024

static void throttle_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void mailbox_state_reply(struct link *l, const char *verb,
    const char *text);
static void other_reply(struct link *l, const char *verb, const char *text);
static void skip_to(struct link *l, uint64_t lsn);
static void reserve_batch(struct link *l);

/* l->cmd is a big journal record's header, its text in l->big (a repair
 * or a retry sends what the shadow holds instead). */
static bool
big_active(const struct link *l)
{
	return l->big != NULL && !l->repairing;
}

/*
 * The replica refused l->cmd's mailbox and nothing here can fix it: park
 * it (link_park.c) and go on with the rest.  mid_command: part of a
 * command is on the wire (bodies), so the connection is dropped, and
 * the replay resumes after a login from the cursor, skipping the parked
 * mailbox's records.
 */
static void
park_mailbox(struct link *l, bool mid_command, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
park_mailbox(struct link *l, bool mid_command, const char *fmt, ...)
{
	const char *u = NULL, *name = NULL;
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	link_whole_end(l);
	dlist_get_str(l->cmd, "UNIQUEID", &u);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (!link_park_mailbox(l, u, name, "%s", why))
		return;
	if (mid_command)
		link_drop(l, "a parked mailbox's bodies were cut short");
	else
		l->repair->parked(l);
}

static void
restart_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		link_fail(l, "RESTART: %s %s", verb, text);
		return;
	}
	l->staged = 0;
	link_replay_next(l);
}

/* Goes on with whatever waits: sending bodies, or the next record. */
void
link_kick(struct link *l)
{
	if (l->conn == NULL)
		return;
	if (l->bs != NULL || l->stream_fd >= 0 || link_big_sending(l) ||
	    (l->missing != NULL &&
	    l->on_reply == NULL && l->next_file != NULL))
		link_pump_files(l);
	else
		link_replay_next(l);
}

static void
throttle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	link_kick(w->data);
}

void
link_advance(struct link *l)
{
	if (l->lsn > l->acked) {
		l->replayed_records += l->lsn - l->acked;
		if (l->records_bucket.rate > 0)
			l->records_bucket.tokens -= (double)(l->lsn - l->acked);
	}
	l->acked = l->lsn;
	link_rq_ack(l);
	l->repairing = l->user_repaired = l->retrying = false;
	dlist_free(&l->repair_ops);
	dlist_free(&l->repair_queue);
	dlist_free(&l->cmd);
	link_whole_end(l);
	link_big_free(&l->big);
	dlist_free(&l->missing);
	/*
	 * The replica keeps every body staged on this connection until
	 * RESTART or EXIT: in a long catch-up that would be the whole
	 * backlog on its disk.  Between commands, once enough has piled
	 * up, let it go (bodies are staged again per mailbox anyway).
	 */
	if (l->staged >= l->rc.restart_bytes) {
		log_info("store=%s replica=%s event=restart staged_bytes=%llu "
		    "acked=%llu", l->st->name, l->rc.name,
		    (unsigned long long)l->staged, (unsigned long long)l->acked);
		l->on_reply = restart_reply;
		link_send_text(l, "RESTART\r\n", 9);
		return;
	}
	link_replay_next(l);
}

void
link_ask_mailbox_state(struct link *l)
{
	struct dlist *names = dlist_new_list("MAILBOXES");
	const char *name = NULL;

	link_whole_end(l);		/* what an earlier one left */
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	dlist_add_atom(names, NULL, name ? name : "");
	link_send_cmd(l, "GET", names, mailbox_state_reply);
	dlist_free(&names);
}

/* The replica got uniqueid whole, as the shadow was at l->repair_upto. */
void
link_remember_repaired(struct link *l, const char *uniqueid)
{
	size_t i = l->nrepaired % MAX_REPAIRED;

	if (l->repaired == NULL)
		l->repaired = xcalloc(MAX_REPAIRED, sizeof(*l->repaired));
	snprintf(l->repaired[i].uniqueid, sizeof(l->repaired[i].uniqueid),
	    "%s", uniqueid);
	l->repaired[i].upto = l->repair_upto;
	l->nrepaired++;
}

/* Was cmd's mailbox sent whole at or after lsn? */
static bool
repaired_since(const struct link *l, const struct dlist *cmd, uint64_t lsn)
{
	const char *u = NULL;
	size_t i, n = l->nrepaired < MAX_REPAIRED ? l->nrepaired :
	    MAX_REPAIRED;

	if (l->repaired == NULL ||
	    dlist_get_str(cmd, "UNIQUEID", &u) < 0 || u == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (l->repaired[i].upto >= lsn &&
		    strcmp(l->repaired[i].uniqueid, u) == 0)
			return true;
	return false;
}

static void
mailbox_reply(struct link *l, const char *verb, const char *text)
{
	enum result_code code;

	if (l->whole_sending) {
		link_fail(l, "the replica answered %s %s before the end of a "
		    "mailbox sent whole", verb, text);
		return;
	}
	link_whole_end(l);
	if (strcmp(verb, "OK") == 0) {
		link_park_settled(l);
		if (l->repairing && l->repair->accepted(l))
			return;
		if (l->state == LINK_REPAIRING)
			link_set_state(l, l->caught_up ? LINK_STREAMING :
			    LINK_CATCHING_UP);
		link_advance(l);
		return;
	}
	code = strcmp(verb, "NO") == 0 ? result_from_no_text(text) :
	    RESULT_PROTOCOL_ERROR;
	if (code == RESULT_MAILBOX_MOVED) {
		char why[300];

		snprintf(why, sizeof(why), "%s %s", verb, text);
		l->repair->user(l, why);
		return;
	}
	if (code == RESULT_SYNC_CHANGED || code == RESULT_SYNC_CHECKSUM) {
		char why[300];

		snprintf(why, sizeof(why), "%s %s", verb, text);
		l->repair->mailbox(l, why);
		return;
	}
	park_mailbox(l, false, "APPLY MAILBOX: %s %s", verb, text);
}


/* A mailbox sent whole: the next page to stage, else the text. */
static void
send_whole(struct link *l)
{
	char why[300];
	int r;

	if (l->stage_more) {
		if (link_whole_chunk(l, why, sizeof(why)) < 0) {
			link_fail(l, "sending a mailbox whole: %s", why);
			return;
		}
		reserve_batch(l);
		return;
	}
	l->on_reply = mailbox_reply;
	if ((r = link_whole_pump(l, why, sizeof(why))) < 0)
		link_fail(l, "sending a mailbox whole: %s", why);
}

static void
send_mailbox(struct link *l)
{
	if (l->whole != NULL)
		send_whole(l);
	else if (big_active(l))
		link_big_send(l, l->big, l->cmd, mailbox_reply);
	else
		link_send_cmd(l, "APPLY", l->cmd, mailbox_reply);
}

/* The bodies of a batch are staged: the next batch, or the command. */
static void
staged(struct link *l)
{
	if (big_active(l))
		reserve_batch(l);
	else
		send_mailbox(l);
}

static void
message_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		park_mailbox(l, false, "APPLY MESSAGE: %s %s", verb, text);
		return;
	}
	if (l->next_file != NULL) {
		link_pump_files(l);		/* the next batch */
		return;
	}
	staged(l);
}

/*
 * A body the journal no longer holds, from another replica (seed_from,
 * else any caught-up one; link.c's fetch_from_other picks): GET
 * FETCH of the record of l->cmd with that GUID, through l->fetch
 * (link.c).  0: asked; -EBUSY: that link is busy, asked again soon;
 * else it cannot be had there.
 */
static int
fetch_body(struct link *l, const char *guid)
{
	const struct dlist *recs = big_active(l) ? link_big_batch(l->big) :
	    dlist_get(l->cmd, "RECORD"), *e;
	const char *name = NULL, *uniqueid = NULL, *part = NULL;
	struct dlist *get;
	uint64_t uid = 0;
	char g[41];
	int r;

	for (e = recs ? recs->head : NULL; e; e = e->next)
		if (dlist_guid(dlist_get(e, "GUID"), g) == 0 &&
		    strcmp(g, guid) == 0 &&
		    dlist_get_num(e, "UID", &uid) == 0)
			break;
	if (e == NULL || dlist_get_str(l->cmd, "MBOXNAME", &name) < 0 ||
	    dlist_get_str(l->cmd, "UNIQUEID", &uniqueid) < 0 ||
	    dlist_get_str(l->cmd, "PARTITION", &part) < 0 || !name ||
	    !uniqueid || !part)
		return -ENOENT;
	get = dlist_new_kvlist("FETCH");
	dlist_add_atom(get, "MBOXNAME", name);
	dlist_add_atom(get, "PARTITION", part);
	dlist_add_atom(get, "UNIQUEID", uniqueid);
	dlist_add_atom(get, "GUID", guid);
	dlist_add_num(get, "UID", uid);
	r = l->fetch(l, get);
	dlist_free(&get);
	if (r == -EBUSY && !ev_is_active(&l->throttle)) {
		ev_timer_set(&l->throttle, 0.02, 0);
		ev_timer_start(l->loop, &l->throttle);
	}
	return r;
}

/* Sends the missing bodies as APPLY MESSAGE file literals. */
void
link_pump_files(struct link *l)
{
	struct buf chunk = BUF_INIT;

	if (l->whole_sending) {
		char why[300];

		if (link_whole_pump(l, why, sizeof(why)) < 0)
			link_fail(l, "sending a mailbox whole: %s", why);
		return;
	}
	if (link_big_sending(l)) {
		link_big_pump(l);
		return;
	}
	while (l->conn && l->on_reply == NULL &&
	    conn_out_pending(l->conn) < CONN_OUT_HIGH) {
		if (l->bytes_bucket.rate > 0 && link_throttled(l)) {
			buf_free(&chunk);
			return;
		}
		if (l->stream_fd >= 0 || l->bs != NULL) {
			ssize_t n;

			buf_reset(&chunk);
			if (l->stream_fd >= 0) {
				char tmp[65536];

				n = read(l->stream_fd, tmp, sizeof(tmp));
				if (n > 0) {
					link_send_text(l, tmp, (size_t)n);
					continue;
				}
				if (n < 0)
					n = -errno;
				close(l->stream_fd);
				l->stream_fd = -1;
			} else {
				n = journal_body_stream_read(l->bs, &chunk,
				    256 * 1024);
				if (n > 0) {
					link_send_text(l, chunk.s, chunk.len);
					continue;
				}
				journal_body_stream_free(&l->bs);
			}
			if (n < 0) {
				buf_free(&chunk);
				park_mailbox(l, true, "a stored message is "
				    "damaged: %s",
				    strerror((int)-n));
				return;
			}
			l->next_file = l->next_file->next;
			l->files_in_batch++;
			if (l->next_file == NULL ||
			    l->files_in_batch == FILES_PER_MESSAGE) {
				link_send_text(l, ")\r\n", 3);
				l->on_reply = message_reply;
				break;
			}
			link_send_text(l, " ", 1);
		}
		{
			const struct seen_body *sb;
			struct shadow_body b;
			struct journal_record rec;
			char path[4096], err[256];
			struct buf hdr = BUF_INIT;

			bool fetched;

			sb = link_find_body(l, l->next_file->s);
			fetched = l->fetched_fd >= 0 && !l->fetching &&
			    strcmp(l->fetched_guid, l->next_file->s) == 0;
			if (sb == NULL && !fetched && shadow_body_get(
			    l->st->shadow, l->next_file->s, &b) < 0) {
				int r;

				if (l->files_in_batch > 0 &&
				    l->files_in_batch < FILES_PER_MESSAGE) {
					/* Close the batch; fetch before the next. */
					link_send_text(l, ")\r\n", 3);
					l->files_in_batch = FILES_PER_MESSAGE;
					l->on_reply = message_reply;
					break;
				}
				if (l->fetching) {
					buf_free(&chunk);
					return;		/* kicked when it comes */
				}
				r = fetch_body(l, l->next_file->s);
				if (r == 0 || r == -EBUSY) {
					buf_free(&chunk);
					return;
				}
				buf_free(&chunk);
				park_mailbox(l, true, "message %s is not in the "
				    "relay's journal any more: only the master can "
				    "send it again%s%s%s", l->next_file->s,
				    strcmp(l->fetch_failed, l->next_file->s) ?
				    " (no other replica of the store was caught "
				    "up to give it)" : " (nor could replica ",
				    strcmp(l->fetch_failed, l->next_file->s) ? "" :
				    l->fetch_src,
				    strcmp(l->fetch_failed, l->next_file->s) ? "" :
				    " give it)");
				return;
			}
			if (l->files_in_batch == FILES_PER_MESSAGE ||
			    (l->next_file == l->missing->head &&
			    l->files_in_batch == 0)) {
				link_send_text(l, "APPLY MESSAGE (", 15);
				l->files_in_batch = 0;
			}
			if (fetched && sb == NULL) {
				l->stream_fd = l->fetched_fd;
				l->fetched_fd = -1;
				rec.raw_len = (uint32_t)l->fetched_size;
			} else {
				uint64_t seg = 0, off = 0;

				snprintf(path, sizeof(path), "%s/journal",
				    l->st->dir);
				if (sb != NULL) {
					seg = sb->segment;
					off = sb->offset;
				} else {
					/* Passed long ago: found by its LSN. */
					if (l->posidx == NULL)
						l->posidx = posidx_new(path,
						    NULL);
					if (posidx_find(l->posidx, b.lsn, &seg,
					    &off, err, sizeof(err)) < 0)
						seg = off = 0;
				}
				l->bs = journal_body_stream_open_at(path, NULL,
				    sb ? sb->lsn : b.lsn, seg, off, &rec, err,
				    sizeof(err));
				if (l->bs == NULL) {
					buf_free(&chunk);
					park_mailbox(l, true, "%s", err);
					return;
				}
			}
			buf_puts(&hdr, "%{");
			dlist_print_astring(&hdr, l->r_partition,
			    strlen(l->r_partition), DLIST_PRINT_CLIENT);
			buf_printf(&hdr, " %s %u}\r\n", l->next_file->s,
			    rec.raw_len);
			link_send_text(l, hdr.s, hdr.len);
			l->staged += rec.raw_len;
			buf_free(&hdr);
		}
	}
	if (l->conn && l->on_reply == NULL)
		conn_want_drain(l->conn);
	buf_free(&chunk);
}

static void
reserve_reply(struct link *l, const char *verb, const char *text)
{
	const struct dlist *m;

	if (strcmp(verb, "OK") != 0) {
		park_mailbox(l, false, "APPLY RESERVE: %s %s", verb, text);
		return;
	}
	dlist_free(&l->missing);
	l->missing = dlist_new_list(NULL);
	for (m = l->untagged ? l->untagged->head : NULL; m; m = m->next)
		if (m->key && strcmp(m->key, "MISSING") == 0 &&
		    m->type == DL_LIST) {
			const struct dlist *g;

			for (g = m->head; g; g = g->next)
				if (g->type == DL_ATOM)
					dlist_add_atom(l->missing, NULL, g->s);
		}
	if (l->missing->nchildren == 0) {
		staged(l);
		return;
	}
	l->next_file = l->missing->head;
	l->files_in_batch = 0;
	link_pump_files(l);
}

static void
mailbox_state_reply(struct link *l, const char *verb, const char *text)
{
	const struct dlist *rmb = NULL;
	const char *part = NULL;
	uint64_t v;

	if (strcmp(verb, "OK") != 0) {
		link_fail(l, "GET MAILBOXES: %s %s", verb, text);
		return;
	}
	if (l->untagged && l->untagged->head &&
	    strcmp(l->untagged->head->key, "MAILBOX") == 0)
		rmb = l->untagged->head;
	l->r_last_uid = 0;
	l->r_highestmodseq = 0;
	dlist_get_str(l->cmd, "PARTITION", &part);
	if (rmb) {
		const char *rp = NULL;

		if (dlist_get_num(rmb, "LAST_UID", &v) == 0)
			l->r_last_uid = (uint32_t)v;
		if (dlist_get_num(rmb, "HIGHESTMODSEQ", &v) == 0)
			l->r_highestmodseq = v;
		if (dlist_get_str(rmb, "PARTITION", &rp) == 0 && rp)
			part = rp;
	}
	snprintf(l->r_partition, sizeof(l->r_partition), "%s",
	    part ? part : "default");
	/*
	 * An update (it has SINCE_* guards: the master knew the mailbox)
	 * for a mailbox the replica does not have: it was deleted or moved
	 * there.  Applied as it is, it would create a mailbox holding only
	 * the changed records.
	 */
	if (rmb == NULL && dlist_get(l->cmd, "SINCE_MODSEQ") != NULL &&
	    !l->user_repaired) {
		l->repair->user(l, "the mailbox is missing on the replica");
		return;
	}
	/* The guards must describe the replica as it really is. */
	if (dlist_get(l->cmd, "SINCE_MODSEQ") != NULL) {
		dlist_remove(l->cmd, "SINCE_MODSEQ");
		dlist_remove(l->cmd, "SINCE_CRC");
		dlist_remove(l->cmd, "SINCE_CRC_ANNOT");
		if (rmb) {
			uint64_t h = 0, c1 = 0, c2 = 0;

			dlist_get_num(rmb, "HIGHESTMODSEQ", &h);
			dlist_get_num(rmb, "SYNC_CRC", &c1);
			dlist_get_num(rmb, "SYNC_CRC_ANNOT", &c2);
			dlist_add_num(l->cmd, "SINCE_MODSEQ", h);
			dlist_add_num(l->cmd, "SINCE_CRC", c1);
			dlist_add_num(l->cmd, "SINCE_CRC_ANNOT", c2);
		}
	}
	if (getcmd_full_is_paged(l->cmd)) {
		char why[300];
		int r = link_whole_start(l, why, sizeof(why));

		if (r == -ENOENT) {
			/* Gone from the shadow since: nothing to send. */
			mailbox_reply(l, "OK", "");
			return;
		}
		if (r < 0) {
			link_fail(l, "sending a mailbox whole: %s", why);
			return;
		}
		send_whole(l);
		return;
	}
	reserve_batch(l);
}

/* The GUIDs of records above the replica's LAST_UID, as a new list. */
static struct dlist *
guids_to_stage(struct link *l, const struct dlist *records)
{
	const struct dlist *r;
	struct dlist *guids = dlist_new_list("GUID");
	uint64_t v;

	for (r = records ? records->head : NULL; r; r = r->next) {
		const struct dlist *fl = dlist_get(r, "FLAGS"), *f;
		struct shadow_body b;
		bool expunged = false;
		char g[41];

		if (dlist_get_num(r, "UID", &v) < 0 || v <= l->r_last_uid ||
		    dlist_guid(dlist_get(r, "GUID"), g) < 0)
			continue;
		for (f = fl ? fl->head : NULL; f; f = f->next)
			if (f->s && strcasecmp(f->s, "\\Expunged") == 0)
				expunged = true;
		if (!expunged || shadow_body_get(l->st->shadow, g, &b) == 0)
			dlist_add_atom(guids, NULL, g);
	}
	return guids;
}

/*
 * Stage the body of every record above the replica's LAST_UID: the
 * replica parses new records' files even when they arrive already
 * expunged.  An expunged record whose body the master never sent (it
 * was unlinked there) goes without.  A big command's records come a
 * batch at a time (link_big.c), each batch staged before the next.
 */
static void
reserve_batch(struct link *l)
{
	const struct dlist *records;
	struct dlist *reserve, *guids;
	const char *name = NULL;
	char err[256];

	for (;;) {
		int e = 1;

		if (big_active(l))
			e = link_big_next_batch(l->st->dir, l->big,
			    l->r_last_uid, &records, err, sizeof(err));
		else
			records = dlist_get(l->cmd, "RECORD");
		if (e < 0) {
			link_fail(l, "reading the journal: %s", err);
			return;
		}
		if (e == 0) {
			send_mailbox(l);
			return;
		}
		guids = guids_to_stage(l, records);
		if (guids->nchildren > 0 || !big_active(l))
			break;
		dlist_free(&guids);
	}
	if (guids->nchildren == 0) {
		dlist_free(&guids);
		send_mailbox(l);
		return;
	}
	reserve = dlist_new_kvlist("RESERVE");
	dlist_add_atom(reserve, "PARTITION", l->r_partition);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	dlist_add_atom(dlist_add_list(reserve, "MBOXNAME"), NULL,
	    name ? name : "");
	dlist_append(reserve, guids);
	link_send_cmd(l, "APPLY", reserve, reserve_reply);
	dlist_free(&reserve);
}

static void
other_reply(struct link *l, const char *verb, const char *text)
{
	bool gone = strcmp(verb, "NO") == 0 &&
	    result_from_no_text(text) == RESULT_MAILBOX_NONEXISTENT;

	if (strcmp(verb, "OK") == 0 || (gone && l->cmd &&
	    strcmp(l->cmd->key, "UNMAILBOX") == 0)) {
		link_park_settled(l);
		link_advance(l);
		return;
	}
	/*
	 * A RENAME replayed twice (the cursor is stored every 200 ms, so a
	 * crash can repeat the last commands) finds its source gone.  What
	 * follows for the new name is checked by the replica as usual.
	 */
	if (gone && l->cmd && strcmp(l->cmd->key, "RENAME") == 0) {
		const char *from = NULL;

		dlist_get_str(l->cmd, "OLDMBOXNAME", &from);
		log_warnx("store=%s replica=%s event=rename_skipped lsn=%llu "
		    "mailbox=%s reason=\"not on the replica (renamed "
		    "already?)\"", l->st->name, l->rc.name,
		    (unsigned long long)l->lsn, from ? from : "?");
		link_advance(l);
		return;
	}
	if (link_park_record(l, "APPLY %s: %s %s", l->cmd ? l->cmd->key : "?",
	    verb, text))
		link_advance(l);
}

void
link_replay_refused(struct link *l, const char *why)
{
	const char *u = NULL, *name = NULL;
	bool parked;

	dlist_get_str(l->cmd, "UNIQUEID", &u);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (strcmp(l->cmd->key, "MAILBOX") == 0 && u != NULL)
		parked = link_park_mailbox(l, u, name, "APPLY MAILBOX: NO (%s)",
		    why);
	else if (l->repairing && *l->repair_target)
		parked = link_park_mailbox(l, l->repair_target,
		    l->repair_name, "APPLY %s: NO (%s)", l->cmd->key, why);
	else
		parked = link_park_record(l, "APPLY %s: NO (%s)", l->cmd->key,
		    why);
	/* Parked durably: the cursor may pass it (not for a retry, whose
	 * record the cursor passed long ago). */
	if (parked && !l->retrying)
		skip_to(l, l->lsn);
}

/* The records up to lsn need not be sent: count them as done. */
static void
skip_to(struct link *l, uint64_t lsn)
{
	l->lsn = lsn;
	if (lsn > l->acked)
		l->replayed_records += lsn - l->acked;
	l->acked = lsn;
	link_rq_ack(l);
}

void
link_replay_next(struct link *l)
{
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256], path[4096];
	size_t folded = 0, skipped = 0;
	bool seed;
	int e = 0;

	if (l->conn == NULL || l->on_reply != NULL || l->cmd != NULL ||
	    l->state == LINK_FAILED || l->state == LINK_LOGIN ||
	    l->replica_died)
		return;
	link_big_free(&l->big);		/* no command: none of its text */
	if (l->needs_resync) {
		link_fail(l, "needs a full resync");	/* link_fail() says the rest */
		return;
	}
	if (l->acked + 1 < journal_first_lsn(l->st->journal)) {
		link_fail(l, "the journal starts at LSN %llu but the replica has "
		    "only %llu: resync it from the master, then syncrelayctl "
		    "reset %s %s LSN", (unsigned long long)journal_first_lsn(
		    l->st->journal), (unsigned long long)l->acked, l->st->name,
		    l->rc.name);
		return;
	}
	if (l->paused) {
		/* Between commands: leave the replica alone until resumed. */
		conn_write(l->conn, "EXIT\r\n", 6);
		conn_close(l->conn, "paused", false);
		return;
	}
	if (link_throttled(l))
		return;
	if (l->jr == NULL) {
		snprintf(path, sizeof(path), "%s/journal", l->st->dir);
		l->jr = journal_reader_new(path, NULL, l->acked + 1,
		    journal_durable_lsn(l->st->journal), err, sizeof(err));
		if (l->jr == NULL) {
			link_fail(l, "%s", err);
			return;
		}
		journal_reader_set_max_text(l->jr, jtext_big());
	}
	journal_reader_set_upto(l->jr, journal_durable_lsn(l->st->journal));
	/* A parked entry due for a retry goes first (the cursor stays). */
	if (l->nparked > 0 && link_park_due(l, ev_now(l->loop))) {
		bool mailbox = false;
		struct dlist *retry = link_park_take_due(l, ev_now(l->loop),
		    &mailbox);

		if (retry != NULL) {
			l->cmd = retry;
			l->lsn = l->acked;
			if (mailbox) {
				l->repairing = true;
				link_set_state(l, LINK_REPAIRING);
				link_ask_mailbox_state(l);
			} else {
				link_send_cmd(l, "APPLY", l->cmd, other_reply);
			}
			return;
		}
	}
	if (l->pending != NULL) {
		l->cmd = l->pending;
		l->lsn = l->pending_lsn;
		l->pending = NULL;
		link_big_free(&l->big);
		l->big = l->pending_big;
		l->pending_big = NULL;
		if (l->pending_seed || (link_is_mailbox_update(l->cmd) &&
		    repaired_since(l, l->cmd, l->lsn)) ||
		    link_park_skips(l, l->cmd)) {
			l->pending_seed = false;
			dlist_free(&l->cmd);
			link_big_free(&l->big);
			skip_to(l, l->lsn);
		}
	}
	/*
	 * Catching up, consecutive updates of one mailbox are sent as one
	 * (folded), as sync_client itself would after a pause: one round of
	 * GET/RESERVE/MESSAGE/MAILBOX instead of one per change.  The first
	 * command that does not fold waits in l->pending.
	 */
	while (l->cmd == NULL || (link_is_mailbox_update(l->cmd) &&
	    l->big == NULL && folded < MAX_FOLD &&
	    (l->records_bucket.rate <= 0 ||
	    (double)folded + 1 < l->records_bucket.tokens))) {
		struct dlist *next = NULL;
		struct link_big *big = NULL;

		e = journal_reader_next(l->jr, &rec, &raw);
		if (e <= 0)
			break;
		link_rq_push(l, &rec);
		/*
		 * Bodies go out with the APPLY MAILBOX that needs them (from
		 * the body index); the cursor passes them only when that
		 * command is acknowledged, so retention keeps them till then.
		 */
		if (rec.type == JOURNAL_BODY) {
			link_remember_body(l, &rec);
			continue;
		}
		seed = false;
		if (raw.len != rec.raw_len) {
			/* Too big to hold whole: read in pieces (link_big.c),
			 * or whole if it is not an APPLY MAILBOX. */
			e = link_big_open(l->st->dir, &rec, &next, &big, err,
			    sizeof(err));
			seed = e == 2;	/* not read: a seed is never sent */
			if (e == 0)
				e = link_big_read_whole(l->st->dir, &rec, &raw,
				    err, sizeof(err));
			if (e < 0) {
				buf_free(&raw);
				dlist_free(&l->cmd);
				link_fail(l, "reading the journal: %s", err);
				return;
			}
			e = 1;
		}
		if (big == NULL && !seed)
			next = fold_parse_record(raw.s, raw.len, &seed);
		if (next == NULL) {
			buf_free(&raw);
			dlist_free(&l->cmd);
			link_fail(l, "journal record %llu is not an APPLY command",
			    (unsigned long long)rec.lsn);
			return;
		}
		/* State taken from a replica: the shadow's, not the
		 * master's; never sent. */
		if (seed && l->cmd == NULL) {
			dlist_free(&next);
			skip_to(l, rec.lsn);
			continue;
		}
		if (seed) {
			l->pending = next;
			l->pending_lsn = rec.lsn;
			l->pending_seed = true;
			break;
		}
		if (l->cmd == NULL && link_is_mailbox_update(next) &&
		    (repaired_since(l, next, rec.lsn) ||
		    link_park_skips(l, next))) {
			/* Already there (a repair sent a later state), or
			 * parked (a retry will send it whole). */
			dlist_free(&next);
			link_big_free(&big);
			skip_to(l, rec.lsn);
			if (++skipped < MAX_SKIP)
				continue;
			/* Let the loop breathe; go on from a timer. */
			buf_free(&raw);
			ev_timer_stop(l->loop, &l->throttle);
			ev_timer_set(&l->throttle, 0, 0);
			ev_timer_start(l->loop, &l->throttle);
			return;
		}
		if (l->cmd == NULL) {
			l->cmd = next;
			l->lsn = rec.lsn;
			l->big = big;		/* then nothing folds into it */
			continue;
		}
		if (big == NULL && link_is_mailbox_update(next) &&
		    link_same_str(next, l->cmd, "UNIQUEID") &&
		    link_same_str(next, l->cmd, "MBOXNAME")) {
			link_fold_mailbox(next, l->cmd);
			dlist_free(&l->cmd);
			l->cmd = next;
			l->lsn = rec.lsn;
			folded++;
			continue;
		}
		l->pending = next;
		l->pending_lsn = rec.lsn;
		l->pending_big = big;
		break;
	}
	buf_free(&raw);
	if (e < 0) {
		dlist_free(&l->cmd);
		link_fail(l, "reading the journal: %s", journal_reader_errstr(l->jr));
		return;
	}
	if (l->cmd != NULL) {
		if (link_is_mailbox_update(l->cmd))
			link_ask_mailbox_state(l);
		else
			link_send_cmd(l, "APPLY", l->cmd, other_reply);
		return;
	}
	/*
	 * Read but not acknowledged, with no command to send: only bodies
	 * follow the last command (any other record read became l->cmd or
	 * was skipped).  Their command never came
	 * (refused, say, on a full disk) or is still on its way.  Alone
	 * they are nothing a replica could hold, so the cursor passes
	 * them; a later command that needs one pins it through the body
	 * index (needed_lsn) and sends it from there.
	 */
	if (l->pending == NULL && l->rq_len > 0 && l->rq[(l->rq_head +
	    l->rq_len - 1) % l->rq_alloc].lsn > l->acked)
		skip_to(l, l->rq[(l->rq_head + l->rq_len - 1) %
		    l->rq_alloc].lsn);	/* every command read was sent */
	l->caught_up = true;
	link_set_state(l, LINK_STREAMING);
	ev_timer_again(l->loop, &l->idle_t);	/* (re)starts the countdown */
}

/* Once every record of the repaired mailboxes is acknowledged, none of
 * them can be moot any more: the ring goes. */
static void
forget_repaired_if_moot(struct link *l)
{
	size_t i, n = l->nrepaired < MAX_REPAIRED ? l->nrepaired :
	    MAX_REPAIRED;

	if (l->repaired == NULL || l->repairing || l->repair_queue != NULL)
		return;
	for (i = 0; i < n; i++)
		if (l->repaired[i].upto > l->acked)
			return;
	free(l->repaired);
	l->repaired = NULL;
	l->nrepaired = 0;
}

/*
 * Caught up and idle for IDLE_TRIM seconds: an idle link keeps its place
 * in the journal but not the reader's decompression context, nor the
 * body positions it remembered (the shadow's body index finds those
 * bodies if they are ever needed again).  Most of 200 idle stores'
 * memory was there.
 */
static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct link *l = w->data;

	ev_timer_stop(loop, w);
	if (l->cmd != NULL || l->on_reply != NULL || l->bs != NULL ||
	    l->pending != NULL)
		return;
	if (l->jr)
		journal_reader_trim(l->jr);
	link_forget_bodies(l);
	forget_repaired_if_moot(l);
	if (l->rq_len == 0) {
		free(l->rq);
		l->rq = NULL;
		l->rq_head = l->rq_alloc = 0;
	}
}

static void
cursor_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct link *l = w->data;

	double now = ev_now(loop), dt = now - l->rate_t;

	if (l->acked > l->posted) {
		cursorq_post(&l->cq, l->acked);	/* written off the loop */
		l->posted = l->acked;
	}
	/* The replay rate, averaged over about ten seconds. */
	if (dt >= 1.0) {
		double inst = (double)(l->acked - l->rate_acked) / dt;
		double weight = dt / 10.0 > 1.0 ? 1.0 : dt / 10.0;

		l->rate += (inst - l->rate) * weight;
		l->rate_t = now;
		l->rate_acked = l->acked;
	}
	/* A parked entry's retry is due while the link has nothing to do. */
	if (l->nparked > 0 && l->cmd == NULL && l->on_reply == NULL &&
	    (l->state == LINK_STREAMING || l->state == LINK_CATCHING_UP) &&
	    link_park_due(l, now))
		link_kick(l);
}

/* Sets up a new link's timers: the cursor's, the rate limits', idling. */
void
link_replay_init(struct link *l)
{
	ev_timer_init(&l->cursor_timer, cursor_cb, 0.2, 0.2);
	l->cursor_timer.data = l;
	ev_timer_start(l->loop, &l->cursor_timer);
	l->rate_t = ev_now(l->loop);
	l->rate_acked = l->acked;
	ev_init(&l->throttle, throttle_cb);
	l->throttle.data = l;
	ev_init(&l->idle_t, idle_cb);
	l->idle_t.repeat = IDLE_TRIM;
	l->idle_t.data = l;
}
