/*
 * link_conn.c -- a link's connection to its replica: connecting (and
 * trying again with the backoff), TLS, reading the banner and its
 * capabilities, logging in with Cyrus SASL, COMPRESS DEFLATE and
 * SIEVE-MAILBOX.  Once logged in it hands over to the replay
 * (link_replay_next()).  Every reply is read here and handed to the
 * continuation in l->on_reply, with the untagged lines that came first.
 *
 * TLS (replica_tls): "starttls" reads the banner, sends STARTTLS if it
 * is offered (the link fails if not: no silent clear text), handshakes,
 * and reads the banner again, which a Cyrus sync_server sends anew under
 * TLS; "implicit" handshakes before the banner.  The replica's
 * certificate must verify against replica_tls_ca_file (or the system's
 * CAs) and name the configured host.  A failed handshake is a connection
 * error: logged as event=tls_failed and retried with the backoff.
 */
#include "autoconf.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "protocol/csync.h"
#include "protocol/result.h"
#include "protocol/saslcli.h"
#include "protocol/tlsctx.h"
#include "relay/conn.h"
#include "relay/replay/link_big.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"

/*
 * Connection attempts in progress, all links together.  A relay of
 * 5,000 stores x 2 replicas that starts while every replica is down
 * would otherwise hold 10,000 connecting sockets at once (each link's
 * first attempt happens as its store opens, before the loop runs) and
 * run out of descriptors; past MAX_CONNECTING a link waits a moment,
 * without counting it as a failure.
 */
#define MAX_CONNECTING 64
static unsigned connecting;

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void connect_failed(struct link *l, const char *err);
static void start_login(struct link *l);
static void replica_died(struct link *l, const char *said);
static void start_starttls(struct link *l);
static void after_login(struct link *l);

void
link_reset_session(struct link *l)
{
	l->fetch_sink_fd = -1;
	if (l->stream_fd >= 0) {
		close(l->stream_fd);
		l->stream_fd = -1;
	}
	if (l->query_cb != NULL) {
		link_query_cb cb = l->query_cb;

		l->query_cb = NULL;
		cb(l->query_arg, "NO", "the connection to the replica was "
		    "lost", NULL);
	}
	csync_reader_free(&l->reader);
	saslcli_free(&l->sasl);
	dlist_free(&l->untagged);
	dlist_free(&l->cmd);
	link_whole_end(l);
	dlist_free(&l->pending);
	l->pending_seed = false;
	link_big_free(&l->big);
	link_big_free(&l->pending_big);
	link_forget_bodies(l);
	dlist_free(&l->missing);
	journal_body_stream_free(&l->bs);
	journal_reader_free(&l->jr);	/* restart from acked + 1 */
	buf_reset(&l->mechs);
	l->on_reply = NULL;
	l->repairing = l->caught_up = l->user_repaired = false;
	dlist_free(&l->repair_ops);
	dlist_free(&l->repair_queue);
	l->tls_up = l->tls_starting = false;
	l->replica_died = l->retrying = false;
	l->staged = 0;
	l->rq_head = l->rq_len = 0;	/* the reader starts again */
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	link_connect(w->data);
}

/*
 * The connection was lost while a journaled command was on its way (not
 * by our doing, and without a word from the replica): a replica that
 * dies on a command before it can say so (its "* Fatal error" unread
 * behind megabytes of bodies) would otherwise get it again after every
 * login.  The same command lost LOST_MAX times in a row is parked, as
 * a refusal would be; a retry will tell whether the replica takes it.
 */
static void
lost_mid_command(struct link *l, const char *reason)
{
	char why[400];

	if (l->cmd == NULL || l->closing_on_purpose || l->paused ||
	    l->replica_died || (l->state != LINK_CATCHING_UP &&
	    l->state != LINK_STREAMING && l->state != LINK_REPAIRING))
		return;
	if (l->lost_lsn == l->lsn && l->lost_count > 0) {
		l->lost_count++;
	} else {
		l->lost_lsn = l->lsn;
		l->lost_count = 1;
	}
	if (l->lost_count < LOST_MAX)
		return;
	snprintf(why, sizeof(why), "the connection was lost %u times in a "
	    "row while this was being sent (last: %s)", l->lost_count,
	    reason);
	l->lost_count = 0;
	link_replay_refused(l, why);
}

/*
 * A GET FETCH's body (asked through link_command() for another link's
 * seed --from): written to the file that link gave (fetch_sink_fd).  Any
 * other file literal is refused, which fails the reply.
 */
static int
fetch_begin(void *arg, const char *partition, const char *guid,
    uint64_t size)
{
	struct link *l = arg;

	(void)partition;
	(void)guid;
	if (l->fetch_sink_fd < 0)
		return -1;	/* a file nobody asked for */
	l->fetch_sink_size = size;
	return 0;
}

static int
fetch_data(void *arg, const void *p, size_t n)
{
	struct link *l = arg;
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(l->fetch_sink_fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
fetch_end(void *arg)
{
	(void)arg;
	return 0;
}

static void
on_close(struct conn *c, void *arg, const char *reason)
{
	struct link *l = arg;
	bool dropped = l->dropped;

	l->dropped = false;
	l->conn = NULL;
	lost_mid_command(l, reason);
	link_reset_session(l);
	if (l->state == LINK_FAILED)
		return;
	if (l->paused) {
		l->closing_on_purpose = false;
		link_set_state(l, LINK_PAUSED);
		return;
	}
	/* Closed before the login was through: not back yet (e.g. a proxy
	 * in front of a replica that is down).  Try again soon. */
	if (l->state == LINK_LOGIN && !l->closing_on_purpose &&
	    !l->heard && !l->tls_failed) {
		connect_failed(l, reason);
		return;
	}
	if (!l->closing_on_purpose) {
		link_note_error(l, "connection_lost", "connection lost: %s", reason);
		if (!dropped)
			link_check_needed(l, "the connection was lost (%s)",
			    reason);
	}
	l->closing_on_purpose = false;
	log_warnx("store=%s replica=%s event=link_down reason=\"%s\" "
	    "retry_in=%.0fs", l->st->name, l->rc.name, reason, l->backoff);
	link_set_state(l, LINK_DOWN);
	link_schedule_retry(l);
}

static void
on_free(void *arg)
{
}

static void
on_drain(struct conn *c, void *arg)
{
	link_pump_files(arg);
}

static size_t
on_input(struct conn *c, void *arg, const char *data, size_t n)
{
	struct link *l = arg;
	size_t off = 0, used;

	l->last_activity = ev_now(l->loop);	/* a sign of life */
	l->heard = true;
	while (off < n && l->conn != NULL) {
		enum csync_status st = csync_reader_feed(l->reader, data + off,
		    n - off, &used);
		const char *verb, *text;

		off += used;
		if (st == CSYNC_NEED_MORE)
			break;
		if (st == CSYNC_BAD_LINE) {
			char shown[81];
			size_t i, k = 0;

			/* Show the start of what came, printable. */
			for (i = off - used; i < n && k < sizeof(shown) - 1 &&
			    data[i] != '\r' && data[i] != '\n'; i++)
				shown[k++] = data[i] >= 0x20 && data[i] < 0x7f ?
				    data[i] : '?';
			shown[k] = '\0';
			if (strncmp(shown, "* Fatal error:", 14) == 0) {
				replica_died(l, shown + 2);
				break;
			}
			link_fail(l, "unreadable reply from the replica: %s (\"%s\")",
			    csync_reader_errstr(l->reader), shown);
			break;
		}
		verb = csync_reader_verb(l->reader);
		text = csync_reader_text(l->reader);
		if (l->in_banner) {
			if (text && strncmp(text, "SASL ", 5) == 0)
				buf_puts(&l->mechs, text + 5);
			else if (text && strcmp(text, "COMPRESS DEFLATE") == 0)
				l->offers_compress = true;
			else if (text && strcmp(text, "SIEVE-MAILBOX") == 0)
				l->offers_sieve = true;
			else if (text && strcmp(text, "STARTTLS") == 0)
				l->offers_starttls = true;
			else if (text && strncmp(text, "OK", 2) == 0) {
				if (l->banner && strcmp(l->banner, text) != 0)
					link_check_needed(l, "the replica's "
					    "banner changed (\"%s\", was "
					    "\"%s\")", text, l->banner);
				link_text_set(&l->banner, LINK_LINE_MAX, "%s",
				    text);
				l->in_banner = false;
				csync_reader_set_banner(l->reader, false);
				if (l->rc.tls == REPLICA_TLS_STARTTLS &&
				    !l->tls_up)
					start_starttls(l);
				else
					start_login(l);
			}
			continue;
		}
		if (strcmp(verb, "*") == 0) {
			struct dlist *e = csync_reader_take_entry(l->reader);

			if (e) {
				if (l->untagged == NULL)
					l->untagged = dlist_new_list(NULL);
				dlist_append(l->untagged, e);
			}
			continue;
		}
		if (l->on_reply) {
			void (*k)(struct link *, const char *, const char *) =
			    l->on_reply;

			l->on_reply = NULL;
			l->wait_bytes = 0;	/* answered */
			if (strcmp(verb, "OK") != 0 && strcmp(verb, "+") != 0)
				stats_count_code(l->errors, &l->nerrors,
				    strcmp(verb, "NO") == 0 ? result_name(
				    result_from_no_text(text ? text : "")) :
				    verb);
			k(l, verb, text ? text : "");
		}
		dlist_free(&l->untagged);
		if (l->tls_starting) {
			/* The conn dropped the rest: nothing may follow. */
			l->tls_starting = false;
			return n;
		}
	}
	return off;
}

static const struct conn_ops link_ops = { on_input, on_close, on_free,
	on_drain, true };

/*
 * The replica's sync_server said "* Fatal error: ..." and exits (it
 * does for some commands it cannot carry out, e.g. a message for a
 * partition it lacks).  The command in flight is answered NO with what
 * it said, so that the replay parks what it concerns, and the link
 * logs in again: the replay resumes from the cursor.
 */
static void
replica_died(struct link *l, const char *said)
{
	char why[300];

	snprintf(why, sizeof(why), "the replica's sync_server stopped: %s",
	    said);
	log_warnx("store=%s replica=%s event=replica_fatal lsn=%llu "
	    "said=\"%s\"", l->st->name, l->rc.name,
	    (unsigned long long)l->lsn, said);
	l->replica_died = true;
	l->on_reply = NULL;
	stats_count_code(l->errors, &l->nerrors, "replica_fatal");
	/* A journaled command (or a parked one's retry) in flight, its
	 * bodies perhaps half sent: what it concerns is parked.  Anything
	 * else (login, NOOP, RESTART) is retried with the backoff. */
	if (l->cmd != NULL && (l->state == LINK_CATCHING_UP ||
	    l->state == LINK_STREAMING || l->state == LINK_REPAIRING))
		link_replay_refused(l, why);
	if (l->conn)
		link_drop(l, "the replica's sync_server stopped");
}

/* The handshake is over: TLS is up (err NULL), or the conn is closing. */
static void
tls_done(struct conn *c, void *arg, const char *err)
{
	struct link *l = arg;

	if (err != NULL) {
		l->tls_failed = true;	/* retried with the backoff */
		link_text_set(&l->why, LINK_WHY_MAX, "%s", err);
		log_warnx("store=%s replica=%s event=tls_failed addr=%s:%u "
		    "error=\"%s\"", l->st->name, l->rc.name, l->rc.host,
		    l->rc.port, err);
		link_note_error(l, "tls_failed", "TLS with %s:%u: %s", l->rc.host,
		    l->rc.port, err);
		return;		/* on_close() schedules the retry */
	}
	l->tls_up = true;
	log_info("store=%s replica=%s event=tls_up mode=%s", l->st->name,
	    l->rc.name, l->rc.tls == REPLICA_TLS_IMPLICIT ? "implicit" :
	    "starttls");
}

/* (Re)starts the deadline timer to fire in secs. */
static void
arm(struct link *l, double secs)
{
	ev_timer_stop(l->loop, &l->deadline_t);
	ev_timer_set(&l->deadline_t, secs > 0.001 ? secs : 0.001, 0);
	ev_timer_start(l->loop, &l->deadline_t);
}

/*
 * A connection attempt failed (refused, unreachable, no answer within
 * replica_timeout): try again soon -- a replica back from maintenance is
 * replaying within a second -- and log the first failure, then a
 * summary about once a minute instead of a line per attempt.
 */
static void
connect_failed(struct link *l, const char *err)
{
	double now = ev_now(l->loop);

	link_connect_abort(l);
	ev_timer_stop(l->loop, &l->deadline_t);
	if (l->connect_failures++ == 0) {
		l->connect_fail_since = l->connect_fail_logged = now;
		log_warnx("store=%s replica=%s event=connect_failed addr=%s:%u "
		    "error=\"%s\" note=\"retrying every %.1fs or less; a "
		    "summary follows each minute\"", l->st->name, l->rc.name,
		    l->rc.host, l->rc.port, err, CONNECT_RETRY_MAX);
	} else if (now - l->connect_fail_logged >= 60) {
		l->connect_fail_logged = now;
		log_warnx("store=%s replica=%s event=connect_failing addr=%s:%u "
		    "attempts=%u for=%.0fs error=\"%s\"", l->st->name,
		    l->rc.name, l->rc.host, l->rc.port, l->connect_failures,
		    now - l->connect_fail_since, err);
	}
	link_note_error(l, "connect_failed", "connecting to %s:%u: %s",
	    l->rc.host, l->rc.port, err);
	link_set_state(l, LINK_DOWN);
	link_schedule_connect_retry(l);
}

/* Sends NOOP on an idle link: the replica must still answer. */
static void
noop_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		link_drop(l, "the replica did not take NOOP");
		return;
	}
	link_replay_next(l);	/* the journal may have grown meanwhile */
}

bool
link_waiting(const struct link *l)
{
	return l->conn != NULL && (l->in_banner || l->on_reply != NULL ||
	    conn_out_pending(l->conn) > 0);
}

/*
 * The deadline: while waiting for the replica, replica_timeout after the
 * last sign of life (a byte read or queued), plus 1/timeout_rate seconds
 * per byte sent since its last reply -- a big command takes a replica
 * longer to read and apply.  Past it the link reconnects and says why
 * (event=link_timeout).  Idle, it sends NOOP after replica_keepalive.
 */
static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct link *l = w->data;
	double now = ev_now(loop), limit;

	if (l->conn == NULL) {
		if (l->fd < 0)
			return;
		/* Still connecting. */
		if (now - l->last_activity >= l->rc.timeout) {
			connect_failed(l, "no answer within replica_timeout");
			return;
		}
		arm(l, l->last_activity + l->rc.timeout - now);
		return;
	}
	if (link_waiting(l)) {
		limit = l->last_activity + l->rc.timeout +
		    (double)l->wait_bytes / (double)l->rc.timeout_rate;
		if (now < limit) {
			arm(l, limit - now);
			return;
		}
		log_warnx("store=%s replica=%s event=link_timeout waited=%.0fs "
		    "sent_bytes=%llu lsn=%llu note=\"no sign of life from the "
		    "replica within replica_timeout (%.0fs + %.0fs for what was "
		    "sent): reconnecting\"", l->st->name, l->rc.name,
		    now - l->wait_since, (unsigned long long)l->wait_bytes,
		    (unsigned long long)l->lsn, l->rc.timeout,
		    (double)l->wait_bytes / (double)l->rc.timeout_rate);
		link_note_error(l, "link_timeout", "no reply from the replica "
		    "for %.0fs", now - l->last_activity);
		l->closing_on_purpose = true;	/* counted just above */
		link_drop(l, "no reply within replica_timeout");
		return;
	}
	/* Idle: look again within replica_timeout, for what comes next. */
	if (l->rc.keepalive <= 0 || l->cmd != NULL || l->bs != NULL ||
	    (l->state != LINK_STREAMING && l->state != LINK_CATCHING_UP)) {
		arm(l, l->rc.timeout);
		return;
	}
	if (now - l->last_activity < l->rc.keepalive) {
		limit = l->last_activity + l->rc.keepalive - now;
		arm(l, limit < l->rc.timeout ? limit : l->rc.timeout);
		return;
	}
	l->on_reply = noop_reply;
	link_send_text(l, "NOOP\r\n", 6);
	arm(l, l->rc.timeout);
}

static void
connected_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct link *l = w->data;
	int err = 0;
	socklen_t len = sizeof(err);
	char peer[300];

	ev_io_stop(loop, w);
	connecting--;
	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
	    err != 0) {
		if (err == 0)
			err = errno;
		close(l->fd);
		l->fd = -1;
		connect_failed(l, strerror(err));
		return;
	}
	snprintf(peer, sizeof(peer), "%s:%u", l->rc.host, l->rc.port);
	{
		/* File literals come only in answer to GET FETCH. */
		struct dlist_file_sink sink = { fetch_begin, fetch_data,
			fetch_end, l };

		l->reader = csync_reader_new(CSYNC_CLIENT, NULL, &sink);
	}
	csync_reader_set_banner(l->reader, true);
	l->in_banner = true;
	l->offers_compress = l->offers_sieve = l->deflating = false;
	l->offers_starttls = false;
	l->conn = conn_new(loop, l->fd, peer, 0, &link_ops, l);
	l->fd = -1;
	l->last_activity = l->wait_since = ev_now(loop);
	l->wait_bytes = 0;
	l->heard = l->tls_failed = false;
	arm(l, l->rc.timeout);
	link_set_state(l, LINK_LOGIN);
	if (l->rc.tls == REPLICA_TLS_IMPLICIT)
		conn_start_tls_client(l->conn, l->tls_ctx, l->rc.host,
		    tls_done);
}

void
link_connect_abort(struct link *l)
{
	if (l->fd < 0)
		return;
	ev_io_stop(l->loop, &l->connect_w);
	close(l->fd);
	l->fd = -1;
	connecting--;
}

void
link_connect(struct link *l)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int r;

	if (l->state == LINK_FAILED || l->paused || l->conn != NULL ||
	    l->fd >= 0)
		return;
	if (connecting >= MAX_CONNECTING) {
		/* 50 to 300 ms, spread so that they do not come back as one. */
		ev_timer_stop(l->loop, &l->retry);
		ev_timer_set(&l->retry, 0.05 + (double)(random() % 250) / 1000,
		    0);
		ev_timer_start(l->loop, &l->retry);
		return;
	}
	if (l->rc.tls != REPLICA_TLS_NO && l->tls_ctx == NULL) {
		char err[300];

		l->tls_ctx = tlsctx_client_new(l->rc.tls_ca_file, err,
		    sizeof(err));
		if (l->tls_ctx == NULL) {
			link_fail(l, "%s", err);
			return;
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", l->rc.port);
	r = getaddrinfo(l->rc.host, port, &hints, &res);
	if (r != 0) {
		/* The lookup blocks the loop: not again within a second. */
		connect_failed(l, gai_strerror(r));
		link_schedule_retry(l);
		return;
	}
	link_set_state(l, LINK_CONNECTING);
	l->fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (l->fd >= 0)
		connecting++;
	if (l->fd < 0 || (connect(l->fd, res->ai_addr, res->ai_addrlen) < 0 &&
	    errno != EINPROGRESS)) {
		freeaddrinfo(res);
		connect_failed(l, strerror(errno));
		return;
	}
	freeaddrinfo(res);
	ev_io_init(&l->connect_w, connected_cb, l->fd, EV_WRITE);
	l->connect_w.data = l;
	ev_io_start(l->loop, &l->connect_w);
	l->last_activity = ev_now(l->loop);
	arm(l, l->rc.timeout);
}

static void
caps_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		link_fail(l, "APPLY CAPABILITIES: %s %s", verb, text);
		return;
	}
	l->backoff = BACKOFF_MIN;
	l->connect_backoff = 0;
	if (l->connect_failures > 0)
		log_info("store=%s replica=%s event=connect_recovered "
		    "attempts=%u after=%.1fs", l->st->name, l->rc.name,
		    l->connect_failures, ev_now(l->loop) -
		    l->connect_fail_since);
	l->connect_failures = 0;
	l->connects++;
	log_info("store=%s replica=%s event=link_up acked=%llu", l->st->name,
	    l->rc.name, (unsigned long long)l->acked);
	link_set_state(l, LINK_CATCHING_UP);
	link_replay_next(l);
}

static void
compress_reply(struct link *l, const char *verb, const char *text)
{
	l->deflating = true;	/* asked once per session, either way */
	if (strcmp(verb, "OK") != 0) {
		log_warnx("store=%s replica=%s event=compress_refused "
		    "reply=\"%s %s\"", l->st->name, l->rc.name, verb, text);
	} else if (conn_start_deflate(l->conn) < 0) {
		link_drop(l, "zlib failed");
		return;
	} else {
		log_info("store=%s replica=%s event=compress_on", l->st->name,
		    l->rc.name);
	}
	after_login(l);
}

static void
after_login(struct link *l)
{
	struct dlist *caps;

	if (l->rc.compress && l->offers_compress && l->on_reply == NULL &&
	    !l->deflating) {
		l->on_reply = compress_reply;
		link_send_text(l, "COMPRESS DEFLATE\r\n", 18);
		return;
	}
	if (!l->offers_sieve) {
		caps_reply(l, "OK", "");
		return;
	}
	caps = dlist_new_list("CAPABILITIES");
	dlist_add_atom(caps, NULL, "SIEVE-MAILBOX");
	link_send_cmd(l, "APPLY", caps, caps_reply);
	dlist_free(&caps);
}

static void
auth_reply(struct link *l, const char *verb, const char *text)
{
	struct buf resp = BUF_INIT;
	const char *why = "";

	if (strcmp(verb, "+") == 0) {
		if (saslcli_step(l->sasl, text, &resp, &why) == SASLSRV_FAIL) {
			link_send_text(l, "*\r\n", 3);
			l->on_reply = auth_reply;
			buf_free(&resp);
			return;
		}
		buf_puts(&resp, "\r\n");
		l->on_reply = auth_reply;
		link_send_text(l, resp.s, resp.len);
		buf_free(&resp);
		return;
	}
	if (strcmp(verb, "OK") != 0) {
		link_fail(l, "the replica refused the login as %s: %s %s",
		    l->rc.authname, verb, text);
		return;
	}
	after_login(l);
}

static void
starttls_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		/* The replica could not set up TLS: maybe later. */
		link_text_set(&l->why, LINK_WHY_MAX, "STARTTLS: %s %s", verb,
		    text);
		log_warnx("store=%s replica=%s event=tls_failed addr=%s:%u "
		    "error=\"%s\"", l->st->name, l->rc.name, l->rc.host,
		    l->rc.port, LINK_TEXT(l->why));
		link_drop(l, "STARTTLS refused");
		return;
	}
	/* Under TLS the replica sends its banner again, without STARTTLS. */
	l->tls_starting = true;
	l->in_banner = true;
	csync_reader_set_banner(l->reader, true);
	buf_reset(&l->mechs);
	l->offers_compress = l->offers_sieve = l->offers_starttls = false;
	conn_start_tls_client(l->conn, l->tls_ctx, l->rc.host, tls_done);
}

static void
start_starttls(struct link *l)
{
	if (!l->offers_starttls) {
		link_fail(l, "replica %s (%s:%u) does not offer STARTTLS, and "
		    "replica_tls is starttls (is TLS set up on its "
		    "sync_server: tls_server_cert, tls_server_key?)",
		    l->rc.name, l->rc.host, l->rc.port);
		return;
	}
	l->on_reply = starttls_reply;
	link_send_text(l, "STARTTLS\r\n", 10);
}

static void
start_login(struct link *l)
{
	struct buf initial = BUF_INIT, line = BUF_INIT;
	const char *mech = NULL, *why = "";
	char err[256];

	l->sasl = saslcli_new(l->rc.host, l->rc.authname, l->password,
	    l->rc.realm, "127.0.0.1;0", "127.0.0.1;0", err, sizeof(err));
	if (l->sasl == NULL) {
		link_fail(l, "%s", err);
		return;
	}
	if (saslcli_start(l->sasl, buf_cstring(&l->mechs), &mech, &initial,
	    &why) == SASLSRV_FAIL) {
		link_fail(l, "no usable SASL mechanism among \"%s\": %s",
		    buf_cstring(&l->mechs), why);
		return;
	}
	buf_printf(&line, "AUTHENTICATE %s%s%s\r\n", mech, initial.len ? " " :
	    "", buf_cstring(&initial));
	l->on_reply = auth_reply;
	link_send_text(l, line.s, line.len);
	buf_free(&initial);
	buf_free(&line);
}

/* Sets up the retry and deadline timers of a new link. */
void
link_conn_init(struct link *l)
{
	ev_init(&l->retry, retry_cb);
	l->retry.data = l;
	ev_init(&l->deadline_t, deadline_cb);
	l->deadline_t.data = l;
}
