/*
 * link.c -- a link's life cycle and what the rest of the relay may ask
 * of it (link.h): making and freeing it, a reload's new settings, a
 * cursor reset, pause and resume, its figures for status and metrics,
 * and GETs asked on the store's behalf (seeding).  The work is done by
 * the parts named in link_int.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/dlist_parse.h"
#include "protocol/tlsctx.h"
#include "relay/conn.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"
#include "storage/cursor.h"

static char *
read_password(const struct replica_conf *rc)
{
	FILE *fp;
	char line[1024];

	if (rc->password && *rc->password)
		return xstrdup(rc->password);
	if (rc->password_file == NULL || *rc->password_file == '\0')
		return xstrdup("");
	if ((fp = fopen(rc->password_file, "r")) == NULL ||
	    fgets(line, sizeof(line), fp) == NULL) {
		if (fp)
			fclose(fp);
		return NULL;
	}
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	return xstrdup(line);
}

static int fetch_from_other(struct link *l, const struct dlist *get);
static void fetch_reply(void *arg, const char *verb, const char *text,
    struct dlist *untagged);

struct link *
link_new(struct ev_loop *loop, struct store *st, const struct replica_conf *rc,
    struct cursor *cursor)
{
	struct link *l = xcalloc(1, sizeof(*l));

	l->loop = loop;
	l->repair = &link_repair_ops;
	l->fetch = fetch_from_other;
	l->fetched_fd = l->stream_fd = l->fetch_sink_fd = -1;
	l->st = st;
	l->rc = *rc;
	l->rc.name = xstrdup(rc->name);
	l->rc.host = xstrdup(rc->host);
	l->rc.authname = xstrdup(rc->authname);
	l->rc.realm = xstrdup(rc->realm ? rc->realm : "");
	l->rc.tls_ca_file = xstrdup(rc->tls_ca_file ? rc->tls_ca_file : "");
	l->rc.password = l->rc.password_file = NULL;
	l->cursor = cursor;
	l->acked = l->posted = cursor_lsn(cursor);
	l->needs_resync = (cursor_flags(cursor) & CURSOR_NEEDS_RESYNC) != 0;
	l->cq.c = cursor;
	l->cq.store = st->name;
	l->cq.replica = l->rc.name;
	l->audit_due_from = ev_now(loop);
	l->fd = -1;
	l->backoff = BACKOFF_MIN;
	buf_init(&l->mechs, 0);
	link_conn_init(l);
	link_replay_init(l);
	l->bytes_bucket = (struct bucket){ (double)rc->max_bytes_per_second,
		(double)rc->max_bytes_per_second, ev_now(loop) };
	l->records_bucket = (struct bucket){
		(double)rc->max_records_per_second,
		(double)rc->max_records_per_second, ev_now(loop) };
	l->paused_path = xasprintf("%s/cursors/%s.paused", st->dir, rc->name);
	if (access(l->paused_path, F_OK) == 0) {
		l->paused = true;
		log_info("store=%s replica=%s event=link_paused acked=%llu "
		    "note=\"paused before the restart; syncrelayctl resume "
		    "to go on\"", st->name, rc->name,
		    (unsigned long long)l->acked);
		link_set_state(l, LINK_PAUSED);
	}
	l->password = read_password(rc);
	if (l->password == NULL) {
		l->password = xstrdup("");
		link_fail(l, "cannot read the password file %s", rc->password_file);
		return l;
	}
	if (link_park_load(l) < 0)
		return l;
	link_connect(l);
	return l;
}

void
link_free(struct link **lp)
{
	struct link *l = *lp;

	if (l == NULL)
		return;
	l->state = LINK_FAILED;		/* no retry from on_close */
	/* A body another link fetches for this one: nobody to give it. */
	{
		size_t i;

		for (i = 0; i < l->st->nlinks; i++)
			if (l->st->links[i] && l->st->links[i] != l &&
			    l->st->links[i]->query_cb == fetch_reply &&
			    l->st->links[i]->query_arg == l)
				l->st->links[i]->query_arg = NULL;
	}
	if (l->conn) {
		/* Between commands, say goodbye as sync_client does. */
		if (l->on_reply == NULL && l->bs == NULL && !l->in_banner)
			conn_write(l->conn, "EXIT\r\n", 6);
		conn_close(l->conn, "shutting down", true);
	}
	link_connect_abort(l);
	ev_timer_stop(l->loop, &l->retry);
	ev_timer_stop(l->loop, &l->deadline_t);
	ev_timer_stop(l->loop, &l->cursor_timer);
	ev_timer_stop(l->loop, &l->throttle);
	ev_timer_stop(l->loop, &l->idle_t);
	cursorq_cancel(&l->cq);
	cursorq_lock();
	if (l->acked > cursor_lsn(l->cursor))
		cursor_store(l->cursor, l->acked);
	cursorq_unlock();
	link_reset_session(l);
	if (l->fetched_fd >= 0)
		close(l->fetched_fd);
	link_park_free(l);
	free(l->parked_path);
	free(l->paused_path);
	free(l->why);
	free(l->last_error);
	free(l->left_alone);
	free(l->check_why);
	free(l->banner);
	free(l->needs_seed);
	tlsctx_free(&l->tls_ctx);
	buf_free(&l->mechs);
	link_forget_bodies(l);
	free(l->repaired);
	free(l->rq);
	free(l->rc.name);
	free(l->rc.host);
	free(l->rc.authname);
	free(l->rc.realm);
	free(l->rc.tls_ca_file);
	if (l->password) {
		memset(l->password, 0, strlen(l->password));
		free(l->password);
	}
	free(l);
	*lp = NULL;
}

/*
 * The operator acted (new settings, a reset, resume): a failed link is
 * down again, without its reason, so that it retries.
 */
static void
unfail(struct link *l)
{
	if (l->state != LINK_FAILED)
		return;
	l->state = LINK_DOWN;
	link_text_set(&l->why, LINK_WHY_MAX, "%s", "");
	/* A parked list that could not be read must be, before replay. */
	if (l->park_unread)
		link_park_load(l);
}

/* What a session depends on: a change means logging in again. */
static char *
session_key(const struct replica_conf *rc, const char *password)
{
	return xasprintf("%s|%u|%s|%s|%d|%s|%d|%s", rc->host, rc->port,
	    rc->authname, rc->realm ? rc->realm : "", (int)rc->tls,
	    rc->tls_ca_file ? rc->tls_ca_file : "", (int)rc->compress,
	    password);
}

void
link_reconfigure(struct link *l, const struct replica_conf *rc)
{
	char *password = read_password(rc);
	char *old, *new;
	bool relogin;

	if (password == NULL) {
		log_error("store=%s replica=%s event=reconfigure_failed "
		    "reason=\"cannot read the password file %s\" note=\"the "
		    "link keeps its settings\"", l->st->name, l->rc.name,
		    rc->password_file);
		return;
	}
	old = session_key(&l->rc, l->password);
	new = session_key(rc, password);
	relogin = strcmp(old, new) != 0;
	free(old);
	free(new);
	l->rc.restart_bytes = rc->restart_bytes;
	l->rc.max_bytes_per_second = rc->max_bytes_per_second;
	l->rc.max_records_per_second = rc->max_records_per_second;
	l->rc.seed = rc->seed;
	l->rc.timeout = rc->timeout;
	l->rc.timeout_rate = rc->timeout_rate;
	l->rc.keepalive = rc->keepalive;
	l->rc.audit_interval = rc->audit_interval;
	l->bytes_bucket.rate = (double)rc->max_bytes_per_second;
	l->records_bucket.rate = (double)rc->max_records_per_second;
	if (l->bytes_bucket.tokens > l->bytes_bucket.rate)
		l->bytes_bucket.tokens = l->bytes_bucket.rate;
	if (l->records_bucket.tokens > l->records_bucket.rate)
		l->records_bucket.tokens = l->records_bucket.rate;
	ev_timer_stop(l->loop, &l->throttle);
	log_info("store=%s replica=%s event=link_reconfigured relogin=%s "
	    "max_bytes_per_second=%llu max_records_per_second=%llu",
	    l->st->name, l->rc.name, relogin ? "yes" : "no",
	    (unsigned long long)rc->max_bytes_per_second,
	    (unsigned long long)rc->max_records_per_second);
	if (!relogin) {
		free(password);
		link_kick(l);	/* the timer that would have is stopped */
		return;
	}
	free(l->rc.host);
	free(l->rc.authname);
	free(l->rc.realm);
	free(l->rc.tls_ca_file);
	l->rc.host = xstrdup(rc->host);
	l->rc.port = rc->port;
	l->rc.authname = xstrdup(rc->authname);
	l->rc.realm = xstrdup(rc->realm ? rc->realm : "");
	l->rc.tls = rc->tls;
	l->rc.tls_ca_file = xstrdup(rc->tls_ca_file ? rc->tls_ca_file : "");
	l->rc.compress = rc->compress;
	memset(l->password, 0, strlen(l->password));
	free(l->password);
	l->password = password;
	l->backoff = BACKOFF_MIN;
	if (!l->paused)
		unfail(l);	/* new settings deserve a new try */
	tlsctx_free(&l->tls_ctx);	/* link_connect() makes it anew */
	link_connect_abort(l);
	if (l->conn != NULL) {
		bool idle = l->on_reply == NULL && l->bs == NULL &&
		    l->cmd == NULL && !l->in_banner;

		/* A command in flight is abandoned and replayed later. */
		if (idle)
			conn_write(l->conn, "EXIT\r\n", 6);
		l->closing_on_purpose = true;
		conn_close(l->conn, "reconfigured", !idle);
	} else if (!l->paused) {
		ev_timer_stop(l->loop, &l->retry);
		link_connect(l);
	}
}

void
link_check_resync(struct link *l)
{
	if (cursor_flags(l->cursor) & CURSOR_NEEDS_RESYNC)
		l->needs_resync = true;
}

int
link_reset(struct link *l, uint64_t lsn, char *err, size_t err_len)
{
	uint64_t head = journal_durable_lsn(l->st->journal);
	uint64_t first = journal_first_lsn(l->st->journal);

	if (lsn > head || (first > 0 && lsn + 1 < first)) {
		snprintf(err, err_len, "LSN %llu is outside the journal "
		    "(records %llu..%llu are kept)", (unsigned long long)lsn,
		    (unsigned long long)first, (unsigned long long)head);
		return -1;
	}
	cursorq_cancel(&l->cq);
	cursorq_lock();
	if (cursor_reset(l->cursor, lsn, 0) < 0) {
		cursorq_unlock();
		snprintf(err, err_len, "writing the cursor failed");
		return -1;
	}
	cursorq_unlock();
	l->needs_resync = false;
	log_warnx("store=%s replica=%s event=cursor_reset from=%llu to=%llu",
	    l->st->name, l->rc.name, (unsigned long long)l->acked,
	    (unsigned long long)lsn);
	l->acked = l->posted = l->lsn = lsn;
	l->rate_acked = lsn;
	l->front = (struct rpos){ 0 };
	link_forget_bodies(l);
	l->nrepaired = 0;
	link_park_clear(l, "the cursor was reset: the replica was brought up "
	    "to date some other way");
	if (l->conn != NULL) {
		l->closing_on_purpose = true;
		conn_close(l->conn, "cursor reset", true);
	} else if (!l->paused) {
		unfail(l);
		l->backoff = BACKOFF_MIN;
		ev_timer_stop(l->loop, &l->retry);
		link_connect(l);
	}
	return 0;
}

void
link_wake(struct link *l)
{
	if (l->state == LINK_STREAMING || l->state == LINK_CATCHING_UP)
		link_replay_next(l);
}

uint64_t
link_acked(const struct link *l)
{
	return l->acked;
}

const char *
link_name(const struct link *l)
{
	return l->rc.name;
}

/* Finds the record after the cursor when replay has not read it. */
static void
locate_front(struct link *l)
{
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char path[4096], err[256];

	snprintf(path, sizeof(path), "%s/journal", l->st->dir);
	r = journal_reader_new(path, NULL, l->acked + 1, 0, err, sizeof(err));
	if (r != NULL && journal_reader_next(r, &rec, &raw) == 1)
		l->front = (struct rpos){ rec.lsn, rec.time_us, rec.segment,
			rec.offset };
	buf_free(&raw);
	journal_reader_free(&r);
}

void
link_stats(struct link *l, struct stats_link *out)
{
	uint64_t head = journal_durable_lsn(l->st->journal);
	struct journal_segment *segs = NULL;
	size_t nsegs = 0, i;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", l->rc.name);
	snprintf(out->address, sizeof(out->address), "%s:%u", l->rc.host,
	    (unsigned)l->rc.port);
	snprintf(out->state, sizeof(out->state), "%s", link_state_name(l->state));
	out->paused = l->paused;
	if (l->state == LINK_FAILED)
		snprintf(out->reason, sizeof(out->reason), "%s",
		    LINK_TEXT(l->why));
	else if (l->state == LINK_DOWN || l->state == LINK_CONNECTING)
		snprintf(out->reason, sizeof(out->reason), "%s",
		    LINK_TEXT(l->last_error));
	snprintf(out->last_error, sizeof(out->last_error), "%s",
	    LINK_TEXT(l->last_error));
	out->last_error_time = l->last_error_time;
	out->left_alone = l->nleft_alone;
	out->audit_mismatched = l->audit_mismatched;
	out->audit_time = l->audit_time;
	out->checking = l->check_pending || l->check_running;
	snprintf(out->check_why, sizeof(out->check_why), "%s",
	    LINK_TEXT(l->check_why));
	snprintf(out->needs_seed, sizeof(out->needs_seed), "%s",
	    LINK_TEXT(l->needs_seed));
	out->seeding = l->seeding;
	if (l->seeding) {
		out->seed_total = l->seed_total;
		out->seed_done = l->seed_done;
		out->seed_bytes = l->replayed_bytes - l->seed_bytes0;
		out->seed_seconds = ev_time() - l->seed_start;
		out->seed_eta = l->seed_done > 0 && l->seed_audited ?
		    out->seed_seconds * (double)(l->seed_total - l->seed_done) /
		    (double)l->seed_done : -1;
	}
	out->parked = l->nparked;
	if (link_waiting(l))
		out->waiting_seconds = ev_now(l->loop) - l->wait_since;
	for (i = 0; i < l->nparked && i < STATS_MAX_PARKED; i++) {
		struct stats_parked *p = &out->parked_list[i];

		p->mailbox = l->parked[i].p.kind == PARKED_MAILBOX;
		snprintf(p->name, sizeof(p->name), "%.255s",
		    l->parked[i].p.name);
		snprintf(p->reply, sizeof(p->reply), "%.299s",
		    l->parked[i].p.reply);
		p->lsn = l->parked[i].p.lsn;
		p->since = (double)l->parked[i].p.since;
		p->tries = l->parked[i].p.tries;
		p->next_try = l->parked[i].due - ev_now(l->loop);
		if (p->next_try < 0)
			p->next_try = 0;
	}
	snprintf(out->left_alone_names, sizeof(out->left_alone_names), "%s",
	    LINK_TEXT(l->left_alone));
	out->cursor_lsn = l->acked;
	out->lag_records = head > l->acked ? head - l->acked : 0;
	out->replay_rate = l->rate;
	out->eta_seconds = out->lag_records == 0 ? 0 : l->rate > 0.01 ?
	    (double)out->lag_records / l->rate : -1;
	out->replayed_records = l->replayed_records;
	out->replayed_bytes = l->replayed_bytes;
	out->connects = l->connects;
	memcpy(out->errors, l->errors, sizeof(out->errors));
	out->nerrors = l->nerrors;
	if (out->lag_records == 0)
		return;
	if (l->front.lsn != l->acked + 1 && l->front_missing != l->acked + 1)
		locate_front(l);
	if (l->front.lsn != l->acked + 1) {
		l->front_missing = l->acked + 1;	/* don't look again */
		return;
	}
	out->lag_seconds = ev_time() - (double)l->front.time_us / 1e6;
	if (out->lag_seconds < 0)
		out->lag_seconds = 0;
	journal_segments(l->st->journal, &segs, &nsegs);
	for (i = 0; i < nsegs; i++) {
		if (segs[i].first == l->front.segment)
			out->lag_bytes += segs[i].bytes > l->front.offset ?
			    segs[i].bytes - l->front.offset : 0;
		else if (segs[i].first > l->front.segment)
			out->lag_bytes += segs[i].bytes;
	}
	free(segs);
}

void
link_set_paused(struct link *l, bool paused)
{
	int fd;

	if (paused == l->paused && (paused || l->state != LINK_FAILED))
		return;
	l->paused = paused;
	log_info("store=%s replica=%s event=%s acked=%llu", l->st->name,
	    l->rc.name, paused ? "link_paused" : "link_resumed",
	    (unsigned long long)l->acked);
	if (paused) {
		/* Kept across restarts, like the cursor. */
		fd = open(l->paused_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		if (fd >= 0)
			close(fd);
		else
			log_warn("store=%s replica=%s event=pause_not_kept "
			    "path=%s", l->st->name, l->rc.name,
			    l->paused_path);
		ev_timer_stop(l->loop, &l->retry);
		/* A throttled command in flight still needs its timer. */
		if (l->cmd == NULL && l->bs == NULL)
			ev_timer_stop(l->loop, &l->throttle);
		link_connect_abort(l);
		if (l->conn == NULL) {
			if (l->state != LINK_FAILED)
				link_set_state(l, LINK_PAUSED);
		} else if (l->on_reply == NULL && l->bs == NULL &&
		    l->cmd == NULL && !l->in_banner) {
			conn_write(l->conn, "EXIT\r\n", 6);
			conn_close(l->conn, "paused", false);
		} else if (l->in_banner || l->state == LINK_LOGIN) {
			conn_close(l->conn, "paused", true);
		}
		/* Otherwise the command in flight finishes first. */
		return;
	}
	if (unlink(l->paused_path) < 0 && errno != ENOENT)
		log_warn("store=%s replica=%s event=unpause_not_kept path=%s",
		    l->st->name, l->rc.name, l->paused_path);
	unfail(l);	/* resume retries a failed link: the operator fixed it */
	if (l->state == LINK_FAILED)
		return;		/* its parked list is still unreadable */
	if (l->conn == NULL) {
		link_set_state(l, LINK_DOWN);
		l->backoff = BACKOFF_MIN;
		link_connect(l);
	}
}

static bool
idle(const struct link *l)
{
	return l->conn != NULL && !l->paused && l->on_reply == NULL &&
	    l->cmd == NULL && l->bs == NULL && l->pending == NULL &&
	    l->query_cb == NULL && (l->state == LINK_STREAMING ||
	    l->state == LINK_CATCHING_UP);
}

bool
link_seedable(const struct link *l)
{
	return l->rc.seed && idle(l) &&
	    l->acked == journal_durable_lsn(l->st->journal);
}

bool
link_may_seed(const struct link *l)
{
	return l->rc.seed && l->conn != NULL && !l->paused &&
	    (l->state == LINK_STREAMING || l->state == LINK_CATCHING_UP ||
	    l->state == LINK_REPAIRING);
}

static void
query_reply(struct link *l, const char *verb, const char *text)
{
	link_query_cb cb = l->query_cb;
	struct dlist *untagged = l->untagged;

	l->untagged = NULL;
	l->query_cb = NULL;
	l->fetch_sink_fd = -1;
	if (l->reader)
		csync_reader_set_record_hook(l->reader, NULL);
	cb(l->query_arg, verb, text, untagged);
	if (l->conn != NULL && l->on_reply == NULL)
		link_replay_next(l);
}

int
link_query(struct link *l, const struct dlist *entry, link_query_cb cb,
    void *arg)
{
	return link_command(l, "GET", entry, cb, arg);
}

int
link_command(struct link *l, const char *verb, const struct dlist *entry,
    link_query_cb cb, void *arg)
{
	if (!idle(l))
		return -EBUSY;
	l->query_cb = cb;
	l->query_arg = arg;
	link_send_cmd(l, verb, entry, query_reply);
	return 0;
}

int
link_command_records(struct link *l, const char *verb,
    const struct dlist *entry, const struct dlist_record_hook *hook,
    link_query_cb cb, void *arg)
{
	int r = link_command(l, verb, entry, cb, arg);

	/* The reader is new with each connection: a lost one takes the
	 * hook with it (cb is then called with "NO"). */
	if (r == 0 && l->reader)
		csync_reader_set_record_hook(l->reader, hook);
	return r;
}

bool
link_caught_up(const struct link *l)
{
	return idle(l) && l->acked == journal_durable_lsn(l->st->journal);
}

bool
link_may_ask(struct link *l)
{
	if (link_throttled(l))
		return false;
	if (l->records_bucket.rate > 0)
		l->records_bucket.tokens -= 1;
	return true;
}

void
link_note_audit(struct link *l, uint64_t mismatched)
{
	l->audit_time = ev_time();
	l->audit_due_from = ev_now(l->loop);
	l->audit_mismatched = mismatched;
	if (mismatched == 0 && l->needs_seed != NULL) {
		log_info("store=%s replica=%s event=seed_not_needed "
		    "note=\"an audit found nothing differing\"", l->st->name,
		    l->rc.name);
		link_text_set(&l->needs_seed, LINK_SEED_MAX, "%s", "");
	}
}

int
link_seed(struct link *l, const char *from, char *err, size_t err_len)
{
	uint64_t head = journal_durable_lsn(l->st->journal);
	size_t i;
	bool found = from == NULL;

	for (i = 0; from && i < l->st->nlinks; i++)
		if (l->st->links[i] && l->st->links[i] != l &&
		    strcmp(l->st->links[i]->rc.name, from) == 0)
			found = true;
	if (!found) {
		snprintf(err, err_len, "store %s has no other replica called "
		    "%s", l->st->name, from);
		return -1;
	}
	/* A seed under way starts again (e.g. now with from). */
	if (link_reset(l, head, err, err_len) < 0)
		return -1;
	l->seeding = true;
	l->seed_audited = false;
	l->seed_gen++;
	snprintf(l->seed_from, sizeof(l->seed_from), "%s", from ? from : "");
	l->fetch_failed[0] = '\0';
	l->seed_start = ev_time();
	l->seed_total = l->seed_done = 0;
	l->seed_bytes0 = l->replayed_bytes;
	link_text_set(&l->needs_seed, LINK_SEED_MAX, "%s", "");
	link_text_set(&l->check_why, LINK_LINE_MAX, "seeding from the "
	    "shadow (syncrelayctl seed)");
	l->check_pending = true;
	log_warnx("store=%s replica=%s event=seed_start lsn=%llu from=%s",
	    l->st->name, l->rc.name, (unsigned long long)head,
	    from ? from : "-");
	return 0;
}

void
link_seed_poll(struct link *l)
{
	link_park_flush(l);
	if (!l->seeding && l->nparked == 0 && !l->fetching)
		l->seed_from[0] = '\0';	/* an audit's --from, done */
	if (!l->seeding || !l->seed_audited || l->nparked > 0)
		return;
	l->seeding = false;
	l->seed_from[0] = '\0';
	log_warnx("store=%s replica=%s event=seed_done mailboxes=%llu "
	    "bytes=%llu seconds=%.1f", l->st->name, l->rc.name,
	    (unsigned long long)l->seed_total,
	    (unsigned long long)(l->replayed_bytes - l->seed_bytes0),
	    ev_time() - l->seed_start);
}

const char *
link_check_due(const struct link *l)
{
	return l->check_pending && !l->check_running && link_caught_up(l) ?
	    LINK_TEXT(l->check_why) : NULL;
}

void
link_check_after_start(struct link *l)
{
	link_check_needed(l, "the relay started: the replica may have been "
	    "changed while it was down");
}

void
link_check_started(struct link *l)
{
	l->check_pending = false;
	l->check_running = true;
	l->check_gen = l->seed_gen;
	log_info("store=%s replica=%s event=check_start reason=\"%s\"",
	    l->st->name, l->rc.name, LINK_TEXT(l->check_why));
}

void
link_check_done(struct link *l, const char *why)
{
	l->check_running = false;
	if (l->seeding && l->check_gen == l->seed_gen)
		l->seed_audited = true;
	if (why == NULL) {
		log_info("store=%s replica=%s event=check_done result=ok",
		    l->st->name, l->rc.name);
		return;
	}
	link_text_set(&l->needs_seed, LINK_SEED_MAX, "%s", why);
	log_warnx("store=%s replica=%s event=needs_seed reason=\"%s\"",
	    l->st->name, l->rc.name, why);
	link_note_error(l, "needs_seed", "needs a seed: %s", why);
}

void
link_note_audit_started(struct link *l)
{
	l->audit_due_from = ev_now(l->loop);
}

bool
link_audit_due(const struct link *l)
{
	return l->rc.audit_interval > 0 &&
	    ev_now(l->loop) - l->audit_due_from >= l->rc.audit_interval;
}

bool
link_is_parked(const struct link *l, const char *uniqueid)
{
	return link_park_has_mailbox(l, uniqueid);
}

bool
link_resend_mailbox(struct link *l, const char *uniqueid, const char *name,
    const char *why, bool now)
{
	bool counted = link_park_has_mailbox(l, uniqueid), ok;

	/* To be sent now: written with the next flush (link_flush_parked(),
	 * the end of the audit's tick), not one rewrite per mailbox. */
	l->park_defer = now;
	ok = link_park_mailbox(l, uniqueid, name, "%s", why);
	l->park_defer = false;
	if (!ok)
		return false;
	if (l->seeding && !counted)
		l->seed_total++;
	if (!now)
		return true;
	link_park_retry_now(l);
	if (l->conn != NULL && l->cmd == NULL && l->on_reply == NULL)
		link_kick(l);
	return true;
}

void
link_flush_parked(struct link *l)
{
	link_park_flush(l);
}

void
link_retry_parked(struct link *l)
{
	if (l->nparked == 0)
		return;
	log_info("store=%s replica=%s event=parked_retry_now count=%zu",
	    l->st->name, l->rc.name, l->nparked);
	link_park_retry_now(l);
	if (l->cmd == NULL && l->on_reply == NULL)
		link_kick(l);
}

uint64_t
link_parked_from(const struct link *l)
{
	uint64_t from = 0;
	size_t i;

	for (i = 0; i < l->nparked; i++)
		if (from == 0 || l->parked[i].p.lsn < from)
			from = l->parked[i].p.lsn;
	return from;
}

size_t
link_give_up(struct link *l, const char *name)
{
	return link_park_give_up(l, name);
}

/* ---- bodies from another replica (seed/audit --from) ------------------- */

void
link_fetch_from(struct link *l, const char *from)
{
	if (l->seeding && *l->seed_from)
		return;
	if (strcmp(l->seed_from, from) != 0)
		l->fetch_failed[0] = '\0';
	snprintf(l->seed_from, sizeof(l->seed_from), "%s", from);
}

static void
fetch_reply(void *arg, const char *verb, const char *text,
    struct dlist *untagged)
{
	struct link *l = arg;	/* the link the body is for */
	const struct dlist *m = untagged ? untagged->head : NULL;
	struct stat sb;

	if (l == NULL) {		/* it went away meanwhile */
		dlist_free(&untagged);
		return;
	}
	l->fetching = false;
	if (strcmp(verb, "OK") != 0 || m == NULL || m->type != DL_FILE ||
	    strcmp(m->guid, l->fetched_guid) != 0 ||
	    fstat(l->fetched_fd, &sb) < 0 ||
	    (uint64_t)sb.st_size != m->num) {
		log_warnx("store=%s replica=%s event=fetch_failed guid=%s "
		    "from=%s reply=\"%s %s\"", l->st->name, l->rc.name,
		    l->fetched_guid, l->fetch_src, verb, text);
		snprintf(l->fetch_failed, sizeof(l->fetch_failed), "%s",
		    l->fetched_guid);
		close(l->fetched_fd);
		l->fetched_fd = -1;
	} else {
		l->fetched_size = m->num;
		lseek(l->fetched_fd, 0, SEEK_SET);
		log_debug("store=%s replica=%s event=fetched guid=%s bytes=%llu "
		    "from=%s", l->st->name, l->rc.name, l->fetched_guid,
		    (unsigned long long)l->fetched_size, l->fetch_src);
	}
	dlist_free(&untagged);
	link_kick(l);
}

/*
 * l->fetch: asks the replica seed_from for the body get names, into a
 * temporary file.  0: asked (l->fetching; link_kick() follows); -EBUSY:
 * that link is busy now, try again soon; other: cannot.
 */
/* Connected, not paused, every durable record acknowledged. */
static bool
up_to_head(const struct link *o)
{
	return o->conn != NULL && !o->paused && (o->state == LINK_STREAMING ||
	    o->state == LINK_CATCHING_UP) &&
	    o->acked == journal_durable_lsn(o->st->journal);
}

static int
fetch_from_other(struct link *l, const struct dlist *get)
{
	struct link *o = NULL;
	const char *guid = NULL;
	char dir[4096];
	size_t i;
	int fd, r;

	/* The replica named, else the first other one that has acknowledged
	 * the head (if busy this moment, asked again soon). */
	for (i = 0; i < l->st->nlinks && o == NULL; i++)
		if (l->st->links[i] && l->st->links[i] != l &&
		    (*l->seed_from ? strcmp(l->st->links[i]->rc.name,
		    l->seed_from) == 0 : up_to_head(l->st->links[i])))
			o = l->st->links[i];
	if (o == NULL ||
	    dlist_get_str(get, "GUID", &guid) < 0 || guid == NULL ||
	    strcmp(guid, l->fetch_failed) == 0)
		return -ENOENT;
	if (!idle(o))
		return -EBUSY;
	snprintf(dir, sizeof(dir), "%s", l->st->dir);
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0)
		return -errno;
	if (l->fetched_fd >= 0)
		close(l->fetched_fd);
	l->fetched_fd = fd;
	snprintf(l->fetched_guid, sizeof(l->fetched_guid), "%s", guid);
	snprintf(l->fetch_src, sizeof(l->fetch_src), "%s", o->rc.name);
	o->fetch_sink_fd = fd;
	r = link_command(o, "GET", get, fetch_reply, l);
	if (r < 0) {
		o->fetch_sink_fd = -1;
		close(fd);
		l->fetched_fd = -1;
		return r;
	}
	l->fetching = true;
	return 0;
}
