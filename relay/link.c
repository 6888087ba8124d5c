/*
 * link.c -- replaying a store's journal to one replica (see link.h).
 *
 * One command is in flight at a time; each reply is handed to the
 * continuation in l->on_reply together with the untagged lines that came
 * before it.  Message bodies are sent from the journal piece by piece as
 * the socket drains, never held whole.
 *
 * TLS (replica_tls): "starttls" reads the banner, sends STARTTLS if it
 * is offered (the link fails if not: no silent clear text), handshakes,
 * and reads the banner again, which a Cyrus sync_server sends anew under
 * TLS; "implicit" handshakes before the banner.  The replica's
 * certificate must verify against replica_tls_ca_file (or the system's
 * CAs) and name the configured host.  A failed handshake is a connection
 * error: logged as event=tls_failed and retried with the backoff.
 *
 * The cursor is handed to the cursor writer thread (cursorq.h) every
 * 200 ms when it moved, so a crash replays at most that much again.
 *
 * Repair follows sync_client: a mailbox the replica refuses (CHANGED,
 * CHECKSUM) is sent whole from the shadow; one missing or moved there
 * leads to a comparison of the user's folders (GET USER) and renames
 * and deletes on the replica before the mailboxes are sent whole.  What
 * only the master could fix (records newer or extra on the replica) is
 * looked into with GET FULLMAILBOX and leaves the link failed with the
 * reason and the remedy, as design.md asks.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/saslcli.h"
#include "protocol/tlsctx.h"
#include "relay/conn.h"
#include "relay/cursorq.h"
#include "relay/getcmd.h"
#include "relay/link.h"
#include "relay/stats.h"
#include "relay/store.h"
#include "storage/cursor.h"
#include "storage/fold.h"
#include "storage/mboxname.h"

#define BACKOFF_MIN 1.0
#define BACKOFF_MAX 60.0
#define FILES_PER_MESSAGE 256

/* Where a body record is, so that sending it needs no segment scan. */
struct seen_body {
	char guid[41];
	uint64_t lsn, segment, offset;
};

#define MAX_SEEN 65536
#define IDLE_TRIM 2.0		/* seconds caught up before trimming */
#define MAX_REPAIRED 64

/* A record read from the journal and not yet acknowledged. */
struct rpos {
	uint64_t lsn, time_us, segment, offset;
};

/* A token bucket: at most rate per second, bursts of one second. */
struct bucket {
	double rate;		/* 0: no limit */
	double tokens;
	double last;		/* ev_now() of the last refill */
};

struct link {
	struct ev_loop *loop;
	struct store *st;
	struct replica_conf rc;
	char *password;
	struct cursor *cursor;
	enum link_state state;
	char why[1024];

	int fd;
	ev_io connect_w;
	ev_timer retry;
	double backoff;
	ev_timer cursor_timer;
	struct conn *conn;
	struct csync_reader *reader;
	bool in_banner;
	struct buf mechs;
	bool offers_compress, offers_sieve, deflating;
	bool offers_starttls;
	void *tls_ctx;			/* client SSL_CTX, or NULL: no TLS */
	bool tls_up;			/* TLS is on for this session */
	bool tls_starting;		/* STARTTLS accepted: input is stale */
	struct saslcli *sasl;
	void (*on_reply)(struct link *l, const char *verb, const char *text);
	struct dlist *untagged;

	struct journal_reader *jr;
	uint64_t acked;
	uint64_t posted;		/* last LSN handed to the cursor writer */
	struct cursorq_req cq;
	bool needs_resync;		/* retention dropped what it lacks */
	bool closing_on_purpose;	/* the close is ours: not an error */
	uint64_t lsn;			/* the record being replayed */
	struct dlist *cmd;		/* its APPLY entry */
	struct dlist *pending;		/* read ahead, not folded into cmd */
	bool pending_seed;		/* it is a seed record: not sent */
	struct seen_body *seen;		/* bodies replay passed, newest last */
	size_t nseen, seen_alloc;
	uint64_t pending_lsn;
	bool repairing;
	bool user_repaired;		/* this record had a user-level repair */
	struct dlist *repair_ops;	/* APPLY RENAME/UNMAILBOX to send */
	struct dlist *repair_queue;	/* full APPLY MAILBOX to send */
	char repair_why[300];
	/* Mailboxes sent whole from the shadow: older records are moot. */
	struct {
		char uniqueid[64];
		uint64_t upto;		/* the shadow's LSN then */
	} repaired[MAX_REPAIRED];
	size_t nrepaired;
	bool caught_up;		/* reached the journal's end this session */
	uint32_t r_last_uid;
	uint64_t r_highestmodseq;	/* from the last GET MAILBOXES */
	char r_partition[256];
	struct dlist *missing;		/* GUIDs the replica lacks */
	const struct dlist *next_file;
	size_t files_in_batch;
	struct journal_body_stream *bs;
	uint64_t staged;		/* body bytes sent since RESTART */

	/* Lag: where the oldest unacknowledged record is. */
	struct rpos *rq;		/* read, not acked, oldest first */
	size_t rq_head, rq_len, rq_alloc;
	struct rpos front;		/* record acked + 1 (lsn 0: unknown) */
	uint64_t front_missing;		/* that record could not be found */
	/* Counters and rates for status and metrics. */
	uint64_t replayed_records, replayed_bytes, connects;
	double rate;			/* records/s acknowledged, smoothed */
	double rate_t;			/* ev_now() of the last sample */
	uint64_t rate_acked;
	char last_error[1024];
	double last_error_time;
	struct stats_code_count errors[STATS_MAX_CODES];
	size_t nerrors;
	/* What the last user-level repair left alone: differences between
	 * the replica and a partial shadow, which prove nothing. */
	char left_alone[1024];
	unsigned nleft_alone;
	/* A GET asked on the store's behalf (link_query). */
	link_query_cb query_cb;
	void *query_arg;
	/* Pause and rate limits. */
	bool paused;
	char paused_path[4096];		/* exists while paused */
	struct bucket bytes_bucket, records_bucket;
	ev_timer throttle;
	ev_timer idle_t;		/* caught up a while: give memory back */
};

static const char *const state_names[LINK_STATE_COUNT] = { "down",
	"connecting", "login", "catching up", "streaming", "repairing",
	"failed", "paused" };

const char *
link_state_name(enum link_state st)
{
	return state_names[st];
}

static void replay_next(struct link *l);
static void link_connect(struct link *l);
static const struct seen_body *find_body(const struct link *l,
    const char *guid);

static void
note_error(struct link *l, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Remembers the last error for status, and counts it by code. */
static void
note_error(struct link *l, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
	va_end(ap);
	l->last_error_time = ev_now(l->loop);
	stats_count_code(l->errors, &l->nerrors, code);
}

static void
set_state(struct link *l, enum link_state st)
{
	if (l->state == st)
		return;
	log_info("store=%s replica=%s event=link_state from=\"%s\" to=\"%s\" "
	    "acked=%llu", l->st->name, l->rc.name, state_names[l->state],
	    state_names[st], (unsigned long long)l->acked);
	l->state = st;
}

static void
send_text(struct link *l, const char *text, size_t n)
{
	conn_write(l->conn, text, n);
	l->replayed_bytes += n;
	if (l->bytes_bucket.rate > 0)
		l->bytes_bucket.tokens -= (double)n;
}

static void
send_cmd(struct link *l, const char *verb, const struct dlist *entry,
    void (*k)(struct link *, const char *, const char *))
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct buf b = BUF_INIT;

	csync_print_command(&b, verb, entry, &pr);
	l->on_reply = k;
	send_text(l, b.s, b.len);
	buf_free(&b);
}

/* Gives up on the connection; retries later unless the link failed. */
static void
drop(struct link *l, const char *why)
{
	if (l->conn)
		conn_close(l->conn, why, true);
}

static void
fail(struct link *l, const char *fmt, ...) __attribute__((format(printf, 2,
    3)));

static void
fail(struct link *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	/* A command cut short by retention fails for that reason. */
	if (l->needs_resync)
		snprintf(l->why, sizeof(l->why), "needs a full resync: the "
		    "journal's size cap (journal_max_bytes) dropped records it "
		    "never received; note the store's head LSN, run "
		    "sync_client -A from the master straight to the replica, "
		    "then syncrelayctl reset %s %s LSN", l->st->name,
		    l->rc.name);
	log_error("store=%s replica=%s event=link_failed lsn=%llu reason=\"%s\"",
	    l->st->name, l->rc.name, (unsigned long long)l->lsn, l->why);
	note_error(l, "link_failed", "%s", l->why);
	set_state(l, LINK_FAILED);
	drop(l, "link failed");
}

/* ---- the connection ------------------------------------------------------ */

static void
reset_session(struct link *l)
{
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
	dlist_free(&l->pending);
	l->pending_seed = false;
	l->nseen = 0;
	dlist_free(&l->missing);
	journal_body_stream_free(&l->bs);
	journal_reader_free(&l->jr);	/* restart from acked + 1 */
	buf_reset(&l->mechs);
	l->on_reply = NULL;
	l->repairing = l->caught_up = l->user_repaired = false;
	dlist_free(&l->repair_ops);
	dlist_free(&l->repair_queue);
	l->tls_up = l->tls_starting = false;
	l->staged = 0;
	l->rq_head = l->rq_len = 0;	/* the reader starts again */
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	link_connect(w->data);
}

static void
schedule_retry(struct link *l)
{
	ev_timer_stop(l->loop, &l->retry);
	ev_timer_set(&l->retry, l->backoff, 0);
	ev_timer_start(l->loop, &l->retry);
	l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
}

static void
on_close(struct conn *c, void *arg, const char *reason)
{
	struct link *l = arg;

	l->conn = NULL;
	reset_session(l);
	if (l->state == LINK_FAILED)
		return;
	if (l->paused) {
		l->closing_on_purpose = false;
		set_state(l, LINK_PAUSED);
		return;
	}
	if (!l->closing_on_purpose)
		note_error(l, "connection_lost", "connection lost: %s", reason);
	l->closing_on_purpose = false;
	log_warnx("store=%s replica=%s event=link_down reason=\"%s\" "
	    "retry_in=%.0fs", l->st->name, l->rc.name, reason, l->backoff);
	set_state(l, LINK_DOWN);
	schedule_retry(l);
}

static void
on_free(void *arg)
{
}

static void
pump_files(struct link *l);

static void
on_drain(struct conn *c, void *arg)
{
	pump_files(arg);
}

static void start_login(struct link *l);
static void start_starttls(struct link *l);

static size_t
on_input(struct conn *c, void *arg, const char *data, size_t n)
{
	struct link *l = arg;
	size_t off = 0, used;

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
			fail(l, "unreadable reply from the replica: %s (\"%s\")",
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

/* The handshake is over: TLS is up (err NULL), or the conn is closing. */
static void
tls_done(struct conn *c, void *arg, const char *err)
{
	struct link *l = arg;

	if (err != NULL) {
		snprintf(l->why, sizeof(l->why), "%s", err);
		log_warnx("store=%s replica=%s event=tls_failed addr=%s:%u "
		    "error=\"%s\"", l->st->name, l->rc.name, l->rc.host,
		    l->rc.port, err);
		note_error(l, "tls_failed", "TLS with %s:%u: %s", l->rc.host,
		    l->rc.port, err);
		return;		/* on_close() schedules the retry */
	}
	l->tls_up = true;
	log_info("store=%s replica=%s event=tls_up mode=%s", l->st->name,
	    l->rc.name, l->rc.tls == REPLICA_TLS_IMPLICIT ? "implicit" :
	    "starttls");
}

static void
connected_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct link *l = w->data;
	int err = 0;
	socklen_t len = sizeof(err);
	char peer[300];

	ev_io_stop(loop, w);
	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
	    err != 0) {
		log_warnx("store=%s replica=%s event=connect_failed addr=%s:%u "
		    "error=\"%s\" retry_in=%.0fs", l->st->name, l->rc.name,
		    l->rc.host, l->rc.port, strerror(err ? err : errno),
		    l->backoff);
		note_error(l, "connect_failed", "connecting to %s:%u: %s",
		    l->rc.host, l->rc.port, strerror(err ? err : errno));
		close(l->fd);
		l->fd = -1;
		set_state(l, LINK_DOWN);
		schedule_retry(l);
		return;
	}
	snprintf(peer, sizeof(peer), "%s:%u", l->rc.host, l->rc.port);
	l->reader = csync_reader_new(CSYNC_CLIENT, NULL, NULL);
	csync_reader_set_banner(l->reader, true);
	l->in_banner = true;
	l->offers_compress = l->offers_sieve = l->deflating = false;
	l->offers_starttls = false;
	l->conn = conn_new(loop, l->fd, peer, 0, &link_ops, l);
	l->fd = -1;
	set_state(l, LINK_LOGIN);
	if (l->rc.tls == REPLICA_TLS_IMPLICIT)
		conn_start_tls_client(l->conn, l->tls_ctx, l->rc.host,
		    tls_done);
}

static void
link_connect(struct link *l)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int r;

	if (l->state == LINK_FAILED || l->paused || l->conn != NULL ||
	    l->fd >= 0)
		return;
	if (l->rc.tls != REPLICA_TLS_NO && l->tls_ctx == NULL) {
		char err[300];

		l->tls_ctx = tlsctx_client_new(l->rc.tls_ca_file, err,
		    sizeof(err));
		if (l->tls_ctx == NULL) {
			fail(l, "%s", err);
			return;
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", l->rc.port);
	r = getaddrinfo(l->rc.host, port, &hints, &res);
	if (r != 0) {
		log_warnx("store=%s replica=%s event=connect_failed host=%s "
		    "error=\"%s\"", l->st->name, l->rc.name, l->rc.host,
		    gai_strerror(r));
		schedule_retry(l);
		return;
	}
	set_state(l, LINK_CONNECTING);
	l->fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (l->fd < 0 || (connect(l->fd, res->ai_addr, res->ai_addrlen) < 0 &&
	    errno != EINPROGRESS)) {
		log_warn("store=%s replica=%s event=connect_failed", l->st->name,
		    l->rc.name);
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		freeaddrinfo(res);
		set_state(l, LINK_DOWN);
		schedule_retry(l);
		return;
	}
	freeaddrinfo(res);
	ev_io_init(&l->connect_w, connected_cb, l->fd, EV_WRITE);
	l->connect_w.data = l;
	ev_io_start(l->loop, &l->connect_w);
}

/* ---- login ---------------------------------------------------------------- */

static void
after_login(struct link *l);

static void
caps_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		fail(l, "APPLY CAPABILITIES: %s %s", verb, text);
		return;
	}
	l->backoff = BACKOFF_MIN;
	l->connects++;
	log_info("store=%s replica=%s event=link_up acked=%llu", l->st->name,
	    l->rc.name, (unsigned long long)l->acked);
	set_state(l, LINK_CATCHING_UP);
	replay_next(l);
}

static void
compress_reply(struct link *l, const char *verb, const char *text)
{
	l->deflating = true;	/* asked once per session, either way */
	if (strcmp(verb, "OK") != 0) {
		log_warnx("store=%s replica=%s event=compress_refused "
		    "reply=\"%s %s\"", l->st->name, l->rc.name, verb, text);
	} else if (conn_start_deflate(l->conn) < 0) {
		drop(l, "zlib failed");
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
		send_text(l, "COMPRESS DEFLATE\r\n", 18);
		return;
	}
	if (!l->offers_sieve) {
		caps_reply(l, "OK", "");
		return;
	}
	caps = dlist_new_list("CAPABILITIES");
	dlist_add_atom(caps, NULL, "SIEVE-MAILBOX");
	send_cmd(l, "APPLY", caps, caps_reply);
	dlist_free(&caps);
}

static void
auth_reply(struct link *l, const char *verb, const char *text)
{
	struct buf resp = BUF_INIT;
	const char *why = "";

	if (strcmp(verb, "+") == 0) {
		if (saslcli_step(l->sasl, text, &resp, &why) == SASLSRV_FAIL) {
			send_text(l, "*\r\n", 3);
			l->on_reply = auth_reply;
			buf_free(&resp);
			return;
		}
		buf_puts(&resp, "\r\n");
		l->on_reply = auth_reply;
		send_text(l, resp.s, resp.len);
		buf_free(&resp);
		return;
	}
	if (strcmp(verb, "OK") != 0) {
		fail(l, "the replica refused the login as %s: %s %s",
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
		snprintf(l->why, sizeof(l->why), "STARTTLS: %s %s", verb, text);
		log_warnx("store=%s replica=%s event=tls_failed addr=%s:%u "
		    "error=\"%s\"", l->st->name, l->rc.name, l->rc.host,
		    l->rc.port, l->why);
		drop(l, "STARTTLS refused");
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
		fail(l, "replica %s (%s:%u) does not offer STARTTLS, and "
		    "replica_tls is starttls (is TLS set up on its "
		    "sync_server: tls_server_cert, tls_server_key?)",
		    l->rc.name, l->rc.host, l->rc.port);
		return;
	}
	l->on_reply = starttls_reply;
	send_text(l, "STARTTLS\r\n", 10);
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
		fail(l, "%s", err);
		return;
	}
	if (saslcli_start(l->sasl, buf_cstring(&l->mechs), &mech, &initial,
	    &why) == SASLSRV_FAIL) {
		fail(l, "no usable SASL mechanism among \"%s\": %s",
		    buf_cstring(&l->mechs), why);
		return;
	}
	buf_printf(&line, "AUTHENTICATE %s%s%s\r\n", mech, initial.len ? " " :
	    "", buf_cstring(&initial));
	l->on_reply = auth_reply;
	send_text(l, line.s, line.len);
	buf_free(&initial);
	buf_free(&line);
}

/* ---- replay ------------------------------------------------------------- */

static void
restart_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		fail(l, "RESTART: %s %s", verb, text);
		return;
	}
	l->staged = 0;
	replay_next(l);
}

/* ---- rate limits ------------------------------------------------------------ */

static void
refill(struct link *l, struct bucket *b)
{
	double now = ev_now(l->loop);

	if (b->rate <= 0)
		return;
	b->tokens += (now - b->last) * b->rate;
	if (b->tokens > b->rate)
		b->tokens = b->rate;	/* bursts of at most one second */
	b->last = now;
}

/*
 * Is the link over one of its rate limits?  Then it waits (a timer
 * resumes the work) until the buckets are back to zero.  Budgets may go
 * negative: a command or a chunk is never split for a limit.
 */
static bool
throttled(struct link *l)
{
	double wait = 0;

	refill(l, &l->bytes_bucket);
	refill(l, &l->records_bucket);
	if (l->bytes_bucket.rate > 0 && l->bytes_bucket.tokens < 0)
		wait = -l->bytes_bucket.tokens / l->bytes_bucket.rate;
	if (l->records_bucket.rate > 0 && l->records_bucket.tokens < 0 &&
	    -l->records_bucket.tokens / l->records_bucket.rate > wait)
		wait = -l->records_bucket.tokens / l->records_bucket.rate;
	if (wait <= 0)
		return false;
	if (!ev_is_active(&l->throttle)) {
		ev_timer_set(&l->throttle, wait, 0);
		ev_timer_start(l->loop, &l->throttle);
	}
	return true;
}

/* Goes on with whatever waits: sending bodies, or the next record. */
static void
kick(struct link *l)
{
	if (l->conn == NULL)
		return;
	if (l->bs != NULL || (l->missing != NULL && l->on_reply == NULL &&
	    l->next_file != NULL))
		pump_files(l);
	else
		replay_next(l);
}

static void
throttle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	kick(w->data);
}

/* ---- lag ------------------------------------------------------------------ */

/* Forgets the read records the replica has now acknowledged. */
static void
rq_ack(struct link *l)
{
	while (l->rq_len > 0 && l->rq[l->rq_head].lsn <= l->acked) {
		l->rq_head = (l->rq_head + 1) % l->rq_alloc;
		l->rq_len--;
	}
	l->front = l->rq_len > 0 && l->rq[l->rq_head].lsn == l->acked + 1 ?
	    l->rq[l->rq_head] : (struct rpos){ 0 };
}

static void
rq_push(struct link *l, const struct journal_record *rec)
{
	if (l->rq_len == l->rq_alloc) {
		size_t n = l->rq_alloc ? l->rq_alloc * 2 : 64, i;
		struct rpos *v = xreallocarray(NULL, n, sizeof(*v));

		for (i = 0; i < l->rq_len; i++)
			v[i] = l->rq[(l->rq_head + i) % l->rq_alloc];
		free(l->rq);
		l->rq = v;
		l->rq_head = 0;
		l->rq_alloc = n;
	}
	l->rq[(l->rq_head + l->rq_len) % l->rq_alloc] = (struct rpos){
		rec->lsn, rec->time_us, rec->segment, rec->offset };
	l->rq_len++;
	if (rec->lsn == l->acked + 1)
		l->front = l->rq[(l->rq_head + l->rq_len - 1) % l->rq_alloc];
}

static void
advance(struct link *l)
{
	if (l->lsn > l->acked) {
		l->replayed_records += l->lsn - l->acked;
		if (l->records_bucket.rate > 0)
			l->records_bucket.tokens -= (double)(l->lsn - l->acked);
	}
	l->acked = l->lsn;
	rq_ack(l);
	l->repairing = l->user_repaired = false;
	dlist_free(&l->repair_ops);
	dlist_free(&l->repair_queue);
	dlist_free(&l->cmd);
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
		send_text(l, "RESTART\r\n", 9);
		return;
	}
	replay_next(l);
}

static void mailbox_state_reply(struct link *l, const char *verb,
    const char *text);

static void
ask_mailbox_state(struct link *l)
{
	struct dlist *names = dlist_new_list("MAILBOXES");
	const char *name = NULL;

	dlist_get_str(l->cmd, "MBOXNAME", &name);
	dlist_add_atom(names, NULL, name ? name : "");
	send_cmd(l, "GET", names, mailbox_state_reply);
	dlist_free(&names);
}

/* ---- repair --------------------------------------------------------------- */

static void diagnose(struct link *l, const char *why);
static struct dlist *pop_child(struct dlist *list);
static void repair_user(struct link *l, const char *why);

/*
 * A full APPLY MAILBOX of the shadow's state of uniqueid, or NULL.  It
 * may include a master change not yet durable (its transaction is open
 * on the same connection); that change came from the master and becomes
 * durable next, or the master is told NO and sends it again.
 */
static struct dlist *
shadow_full_mailbox(struct link *l, const char *uniqueid)
{
	struct shadow_mailbox mb;
	struct dlist *full;

	if (uniqueid == NULL ||
	    shadow_mailbox_by_uniqueid(l->st->shadow, uniqueid, &mb) < 0)
		return NULL;
	full = getcmd_mailbox_dlist(l->st->shadow, &mb, true);
	shadow_mailbox_free(&mb);
	return full;
}

/* The replica got uniqueid whole, as of the shadow's LSN now. */
static void
remember_repaired(struct link *l, const char *uniqueid)
{
	size_t i = l->nrepaired % MAX_REPAIRED;

	snprintf(l->repaired[i].uniqueid, sizeof(l->repaired[i].uniqueid),
	    "%s", uniqueid);
	l->repaired[i].upto = shadow_lsn(l->st->shadow);
	l->nrepaired++;
}

/* Was cmd's mailbox sent whole at or after lsn? */
static bool
repaired_since(const struct link *l, const struct dlist *cmd, uint64_t lsn)
{
	const char *u = NULL;
	size_t i, n = l->nrepaired < MAX_REPAIRED ? l->nrepaired :
	    MAX_REPAIRED;

	if (dlist_get_str(cmd, "UNIQUEID", &u) < 0 || u == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (l->repaired[i].upto >= lsn &&
		    strcmp(l->repaired[i].uniqueid, u) == 0)
			return true;
	return false;
}

/*
 * Repairs the current command's mailbox from the shadow's state: a full
 * APPLY MAILBOX (bodies staged as usual).  A second refusal is looked
 * into (GET FULLMAILBOX) and stops the link with the reason.
 */
static void
repair(struct link *l, const char *why)
{
	const char *uniqueid = NULL, *name = NULL;
	struct dlist *full;

	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (l->repairing) {
		diagnose(l, why);
		return;
	}
	log_warnx("store=%s replica=%s event=repair mailbox=%s lsn=%llu "
	    "reason=\"%s\"", l->st->name, l->rc.name, name ? name : "?",
	    (unsigned long long)l->lsn, why);
	note_error(l, "repair", "repaired %s: %s", name ? name : "?", why);
	snprintf(l->repair_why, sizeof(l->repair_why), "%s", why);
	full = shadow_full_mailbox(l, uniqueid);
	if (full == NULL) {
		/* Gone from the shadow: later records take it from here. */
		advance(l);
		return;
	}
	dlist_free(&l->cmd);		/* name and uniqueid pointed here */
	l->cmd = full;
	l->repairing = true;
	set_state(l, LINK_REPAIRING);
	ask_mailbox_state(l);
}

/* ---- repair: why the replica refuses ------------------------------------------ */

struct diag {
	struct link *l;
	const struct dlist *rrecords;	/* the replica's RECORD list */
	const struct dlist *r;		/* walks rrecords in UID order */
	char *reason;
};

static int
diag_record(void *arg, const struct shadow_record *m)
{
	struct diag *d = arg;
	uint64_t uid = 0, modseq = 0;
	char g[41];

	for (; d->r; d->r = d->r->next) {
		if (dlist_get_num(d->r, "UID", &uid) < 0 || uid >= m->uid)
			break;
	}
	if (d->r == NULL || uid != m->uid)
		return 0;
	if (dlist_guid(dlist_get(d->r, "GUID"), g) == 0 &&
	    strcmp(g, m->guid) != 0) {
		d->reason = xasprintf("UID %u holds another message on the "
		    "replica (GUID %s, the master's is %s), so mail was "
		    "delivered to the replica directly", m->uid, g, m->guid);
		return 1;
	}
	if (dlist_get_num(d->r, "MODSEQ", &modseq) == 0 &&
	    modseq > m->modseq) {
		d->reason = xasprintf("UID %u was changed on the replica "
		    "(MODSEQ %llu there, %llu on the master)", m->uid,
		    (unsigned long long)modseq, (unsigned long long)m->modseq);
		return 1;
	}
	return 0;
}

static void
diagnose_reply(struct link *l, const char *verb, const char *text)
{
	const struct dlist *rmb = NULL;
	struct shadow_mailbox mb;
	const char *name = NULL, *uniqueid = NULL;
	char user[256];
	struct diag d = { l, NULL, NULL, NULL };
	uint64_t r_last = 0, r_hms = 0;

	dlist_get_str(l->cmd, "MBOXNAME", &name);
	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	if (l->untagged && l->untagged->head &&
	    strcmp(l->untagged->head->key, "MAILBOX") == 0)
		rmb = l->untagged->head;
	if (strcmp(verb, "OK") != 0 || rmb == NULL || uniqueid == NULL ||
	    shadow_mailbox_by_uniqueid(l->st->shadow, uniqueid, &mb) < 0) {
		fail(l, "repairing %s failed: %s", name ? name : "?",
		    l->repair_why);
		return;
	}
	dlist_get_num(rmb, "LAST_UID", &r_last);
	dlist_get_num(rmb, "HIGHESTMODSEQ", &r_hms);
	if (r_last > mb.last_uid) {
		d.reason = xasprintf("the replica holds UIDs up to %llu, the "
		    "master only up to %u, so mail was delivered to the "
		    "replica directly", (unsigned long long)r_last,
		    mb.last_uid);
	} else {
		d.rrecords = dlist_get(rmb, "RECORD");
		d.r = d.rrecords ? d.rrecords->head : NULL;
		shadow_record_each(l->st->shadow, uniqueid, 1, diag_record, &d);
		if (d.reason == NULL && r_hms > mb.highestmodseq)
			d.reason = xasprintf("the replica's HIGHESTMODSEQ %llu "
			    "is above the master's %llu, so it was changed "
			    "directly", (unsigned long long)r_hms,
			    (unsigned long long)mb.highestmodseq);
	}
	if (mboxname_userid(name ? name : "", user, sizeof(user)) < 0)
		snprintf(user, sizeof(user), "?");
	if (d.reason != NULL)
		fail(l, "repairing %s failed: %s; %s: resync it from the "
		    "master (sync_client -u %s straight to the replica, which "
		    "copies what only the replica has back to the master), "
		    "then syncrelayctl resume %s %s", name ? name : "?",
		    l->repair_why, d.reason, user, l->st->name, l->rc.name);
	else
		fail(l, "repairing %s failed: %s (the replica's copy differs "
		    "from the master's in a way the relay cannot tell)",
		    name ? name : "?", l->repair_why);
	free(d.reason);
	shadow_mailbox_free(&mb);
}

/* The replica refused the shadow's own state: find out why, then stop. */
static void
diagnose(struct link *l, const char *why)
{
	struct dlist *get;
	const char *name = NULL;

	snprintf(l->repair_why, sizeof(l->repair_why), "%s", why);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	get = dlist_new_atom("FULLMAILBOX", name ? name : "",
	    strlen(name ? name : ""));
	send_cmd(l, "GET", get, diagnose_reply);
	dlist_free(&get);
}

/* ---- repair: a user's mailboxes --------------------------------------------- */

static bool
is_deleted_name(const char *name)
{
	const char *bang = strchr(name, '!');

	return strncmp(bang ? bang + 1 : name, "DELETED.", 8) == 0;
}

static void next_repair_step(struct link *l);

static void
repair_op_reply(struct link *l, const char *verb, const char *text)
{
	bool gone = strcmp(verb, "NO") == 0 &&
	    result_from_no_text(text) == RESULT_MAILBOX_NONEXISTENT;

	if (strcmp(verb, "OK") != 0 && !(gone && l->cmd &&
	    strcmp(l->cmd->key, "UNMAILBOX") == 0)) {
		fail(l, "repairing: APPLY %s: %s %s", l->cmd ? l->cmd->key :
		    "?", verb, text);
		return;
	}
	next_repair_step(l);
}

/* Sends the next rename or delete, then the mailboxes, then goes on. */
static void
next_repair_step(struct link *l)
{
	struct dlist *op;

	dlist_free(&l->cmd);
	if (l->repair_ops && (op = pop_child(l->repair_ops)) != NULL) {
		const char *a = NULL, *b = NULL;

		if (!dlist_get_str(op, "OLDMBOXNAME", &a) &&
		    !dlist_get_str(op, "NEWMBOXNAME", &b))
			log_warnx("store=%s replica=%s event=repair_rename "
			    "from=%s to=%s", l->st->name, l->rc.name, a, b);
		else
			log_warnx("store=%s replica=%s event=repair_unmailbox "
			    "mailbox=%s note=\"not on the master\"",
			    l->st->name, l->rc.name, op->s ? op->s : "?");
		l->cmd = op;
		send_cmd(l, "APPLY", op, repair_op_reply);
		return;
	}
	if (l->repair_queue && (op = pop_child(l->repair_queue)) != NULL) {
		l->cmd = op;
		ask_mailbox_state(l);
		return;
	}
	set_state(l, l->caught_up ? LINK_STREAMING : LINK_CATCHING_UP);
	advance(l);
}

struct user_scan {
	struct link *l;
	const struct dlist *rmbs;	/* the replica's MAILBOX entries */
	const char *target;		/* the uniqueid being repaired */
	bool complete;			/* the shadow has the master's list */
	const char *occupied;		/* target's name held by another */
};

/* The replica's mailbox with this uniqueid (or name), or NULL. */
static const struct dlist *
replica_mailbox(const struct dlist *rmbs, const char *key, const char *v)
{
	const struct dlist *e;
	const char *x;

	for (e = rmbs ? rmbs->head : NULL; e; e = e->next)
		if (strcmp(e->key, "MAILBOX") == 0 &&
		    dlist_get_str(e, key, &x) == 0 && x && strcmp(x, v) == 0)
			return e;
	return NULL;
}

/*
 * A difference the repair may not act on: the shadow is partial (a
 * rolling master sends only what changed), so it proves nothing about
 * what the master holds.  Logged, and kept for status.
 */
static void
leave_alone(struct link *l, const char *name, const char *what)
{
	size_t n = strlen(l->left_alone);

	log_warnx("store=%s replica=%s event=repair_left mailbox=%s "
	    "reason=\"%s; the relay has no complete list from the master "
	    "for this user\"", l->st->name, l->rc.name, name, what);
	if (l->nleft_alone++ < 8 && n + strlen(name) + 3 <
	    sizeof(l->left_alone))
		snprintf(l->left_alone + n, sizeof(l->left_alone) - n,
		    "%s%s", n ? ", " : "", name);
}

/*
 * For each of the user's mailboxes in the shadow: rename or recreate it
 * on the replica.  With a partial shadow only the mailbox the master's
 * record names (the target) is touched: its name and content are the
 * master's own word.
 */
static int
user_scan_mailbox(void *arg, const struct shadow_mailbox *mb)
{
	struct user_scan *u = arg;
	struct link *l = u->l;
	const struct dlist *r = replica_mailbox(u->rmbs, "UNIQUEID",
	    mb->uniqueid);
	const char *rname = NULL, *ouid = NULL;
	bool target = strcmp(mb->uniqueid, u->target) == 0;
	bool moved;
	struct dlist *full;

	if (r)
		dlist_get_str(r, "MBOXNAME", &rname);
	moved = rname && strcmp(rname, mb->name) != 0;
	if (!u->complete && !target) {
		if (r == NULL)
			leave_alone(l, mb->name, "not on the replica, not "
			    "recreated");
		else if (moved && !is_deleted_name(rname))
			leave_alone(l, rname, "named differently in the "
			    "shadow, not renamed");
		return 0;
	}
	if (target && (r == NULL || moved)) {
		const struct dlist *o = replica_mailbox(u->rmbs, "MBOXNAME",
		    mb->name);

		if (o && dlist_get_str(o, "UNIQUEID", &ouid) == 0 && ouid &&
		    strcmp(ouid, mb->uniqueid) != 0 && !u->complete)
			u->occupied = mb->name;
	}
	if (moved) {
		struct dlist *op = dlist_new_kvlist("RENAME");

		dlist_add_atom(op, "OLDMBOXNAME", rname);
		dlist_add_atom(op, "NEWMBOXNAME", mb->name);
		dlist_add_atom(op, "PARTITION", mb->partition);
		dlist_add_num(op, "UIDVALIDITY", mb->uidvalidity);
		dlist_append(l->repair_ops, op);
	}
	if (r == NULL || target || moved) {
		full = getcmd_mailbox_dlist(l->st->shadow, mb, true);
		if (full)
			dlist_append(l->repair_queue, full);
	}
	return 0;
}

static void
user_state_reply(struct link *l, const char *verb, const char *text)
{
	struct user_scan u = { l, l->untagged, "", false, NULL };
	const struct dlist *e;
	const char *uniqueid = NULL, *name = NULL;
	char user[256];

	if (strcmp(verb, "OK") != 0) {
		fail(l, "repairing: GET USER: %s %s", verb, text);
		return;
	}
	dlist_get_str(l->cmd, "UNIQUEID", &uniqueid);
	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (mboxname_userid(name ? name : "", user, sizeof(user)) < 0) {
		fail(l, "repairing: %s belongs to no user", name ? name : "?");
		return;
	}
	u.target = uniqueid ? uniqueid : "";
	u.complete = shadow_user_is_complete(l->st->shadow, user);
	l->repair_ops = dlist_new_list(NULL);
	l->repair_queue = dlist_new_list(NULL);
	l->left_alone[0] = '\0';
	l->nleft_alone = 0;
	/*
	 * What the replica has and the master has not goes, as sync_client
	 * does it -- but only where the shadow holds the master's complete
	 * list for the user (design invariant 9): folders created on the
	 * replica, or holding a name the master gave to another folder.  A
	 * deleted folder (DELETED.*) that the master still has comes back
	 * by rename; other deleted folders are left to the replica's expiry.
	 */
	for (e = l->untagged ? l->untagged->head : NULL; e; e = e->next) {
		const char *rname = NULL, *ruid = NULL;
		struct shadow_mailbox mb;

		if (strcmp(e->key, "MAILBOX") != 0 ||
		    dlist_get_str(e, "MBOXNAME", &rname) < 0 || !rname ||
		    dlist_get_str(e, "UNIQUEID", &ruid) < 0 || !ruid ||
		    is_deleted_name(rname))
			continue;
		if (shadow_mailbox_by_uniqueid(l->st->shadow, ruid, &mb) == 0) {
			shadow_mailbox_free(&mb);
			continue;
		}
		if (u.complete)
			dlist_append(l->repair_ops, dlist_new_atom("UNMAILBOX",
			    rname, strlen(rname)));
		else
			leave_alone(l, rname, "only on the replica, not "
			    "removed");
	}
	shadow_mailbox_each_user(l->st->shadow, user, user_scan_mailbox, &u);
	if (u.occupied) {
		fail(l, "repairing user %s: the replica holds %s as another "
		    "mailbox (another UNIQUEID), and the relay has no complete "
		    "list from the master to prove that one gone: rename or "
		    "remove it on the replica, or run sync_client -u %s "
		    "through the relay, then syncrelayctl resume %s %s", user,
		    u.occupied, user, l->st->name, l->rc.name);
		return;
	}
	log_warnx("store=%s replica=%s event=repair_user user=%s complete=%s "
	    "renames_and_deletes=%zu mailboxes=%zu left_alone=%u",
	    l->st->name, l->rc.name, user, u.complete ? "yes" : "no",
	    l->repair_ops->nchildren, l->repair_queue->nchildren,
	    l->nleft_alone);
	if (l->nleft_alone)
		note_error(l, "repair_left", "repaired user %s: %s; left alone "
		    "(no complete list from the master): %s%s", user,
		    l->repair_why, l->left_alone, l->nleft_alone > 8 ?
		    ", ..." : "");
	next_repair_step(l);
}

/*
 * The replica's folders differ from the master's (one is missing, moved
 * or deleted there): compare the user's folders on the replica (GET
 * USER) with the shadow's, rename and delete on the replica to match,
 * and send the mailboxes concerned whole.  Mailboxes that belong to no
 * user get the mailbox-level repair.
 */
static void
repair_user(struct link *l, const char *why)
{
	const char *name = NULL;
	char user[256];
	struct dlist *get;

	dlist_get_str(l->cmd, "MBOXNAME", &name);
	if (l->user_repaired || name == NULL ||
	    mboxname_userid(name, user, sizeof(user)) < 0 || *user == '\0') {
		repair(l, why);
		return;
	}
	log_warnx("store=%s replica=%s event=repair scope=user user=%s "
	    "mailbox=%s lsn=%llu reason=\"%s\"", l->st->name, l->rc.name,
	    user, name, (unsigned long long)l->lsn, why);
	note_error(l, "repair", "repaired user %s: %s", user, why);
	snprintf(l->repair_why, sizeof(l->repair_why), "%s", why);
	l->repairing = l->user_repaired = true;
	set_state(l, LINK_REPAIRING);
	get = dlist_new_atom("USER", user, strlen(user));
	send_cmd(l, "GET", get, user_state_reply);
	dlist_free(&get);
}

static void
mailbox_reply(struct link *l, const char *verb, const char *text)
{
	enum result_code code;

	if (strcmp(verb, "OK") == 0) {
		if (l->repairing) {
			const char *u = NULL;

			if (dlist_get_str(l->cmd, "UNIQUEID", &u) == 0 && u)
				remember_repaired(l, u);
			if (l->repair_queue || l->repair_ops) {
				next_repair_step(l);
				return;
			}
		}
		if (l->state == LINK_REPAIRING)
			set_state(l, l->caught_up ? LINK_STREAMING :
			    LINK_CATCHING_UP);
		advance(l);
		return;
	}
	code = strcmp(verb, "NO") == 0 ? result_from_no_text(text) :
	    RESULT_PROTOCOL_ERROR;
	if (code == RESULT_MAILBOX_MOVED) {
		char why[300];

		snprintf(why, sizeof(why), "%s %s", verb, text);
		repair_user(l, why);
		return;
	}
	if (code == RESULT_SYNC_CHANGED || code == RESULT_SYNC_CHECKSUM) {
		char why[300];

		snprintf(why, sizeof(why), "%s %s", verb, text);
		repair(l, why);
		return;
	}
	fail(l, "APPLY MAILBOX: %s %s", verb, text);
}

static void
send_mailbox(struct link *l)
{
	send_cmd(l, "APPLY", l->cmd, mailbox_reply);
}

static void
message_reply(struct link *l, const char *verb, const char *text)
{
	if (strcmp(verb, "OK") != 0) {
		fail(l, "APPLY MESSAGE: %s %s", verb, text);
		return;
	}
	if (l->next_file != NULL) {
		pump_files(l);		/* the next batch */
		return;
	}
	send_mailbox(l);
}

/* Sends the missing bodies as APPLY MESSAGE file literals. */
static void
pump_files(struct link *l)
{
	struct buf chunk = BUF_INIT;

	while (l->conn && l->on_reply == NULL &&
	    conn_out_pending(l->conn) < CONN_OUT_HIGH) {
		if (l->bytes_bucket.rate > 0 && throttled(l)) {
			buf_free(&chunk);
			return;
		}
		if (l->bs != NULL) {
			ssize_t n;

			buf_reset(&chunk);
			n = journal_body_stream_read(l->bs, &chunk, 256 * 1024);
			if (n > 0) {
				send_text(l, chunk.s, chunk.len);
				continue;
			}
			journal_body_stream_free(&l->bs);
			if (n < 0) {
				buf_free(&chunk);
				fail(l, "a stored message is damaged: %s",
				    strerror((int)-n));
				return;
			}
			l->next_file = l->next_file->next;
			l->files_in_batch++;
			if (l->next_file == NULL ||
			    l->files_in_batch == FILES_PER_MESSAGE) {
				send_text(l, ")\r\n", 3);
				l->on_reply = message_reply;
				break;
			}
			send_text(l, " ", 1);
		}
		{
			const struct seen_body *sb;
			struct shadow_body b;
			struct journal_record rec;
			char path[4096], err[256];
			struct buf hdr = BUF_INIT;

			if (l->files_in_batch == FILES_PER_MESSAGE ||
			    (l->next_file == l->missing->head &&
			    l->files_in_batch == 0)) {
				send_text(l, "APPLY MESSAGE (", 15);
				l->files_in_batch = 0;
			}
			sb = find_body(l, l->next_file->s);
			if (sb == NULL && shadow_body_get(l->st->shadow,
			    l->next_file->s, &b) < 0) {
				buf_free(&chunk);
				fail(l, "message %s is not in the relay's journal "
				    "any more", l->next_file->s);
				return;
			}
			snprintf(path, sizeof(path), "%s/journal", l->st->dir);
			l->bs = sb ? journal_body_stream_open_at(path, NULL,
			    sb->lsn, sb->segment, sb->offset, &rec, err,
			    sizeof(err)) : journal_body_stream_open(path, NULL,
			    b.lsn, &rec, err, sizeof(err));
			if (l->bs == NULL) {
				buf_free(&chunk);
				fail(l, "%s", err);
				return;
			}
			buf_puts(&hdr, "%{");
			dlist_print_astring(&hdr, l->r_partition,
			    strlen(l->r_partition), DLIST_PRINT_CLIENT);
			buf_printf(&hdr, " %s %u}\r\n", l->next_file->s,
			    rec.raw_len);
			send_text(l, hdr.s, hdr.len);
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
		fail(l, "APPLY RESERVE: %s %s", verb, text);
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
		send_mailbox(l);
		return;
	}
	l->next_file = l->missing->head;
	l->files_in_batch = 0;
	pump_files(l);
}

static void
mailbox_state_reply(struct link *l, const char *verb, const char *text)
{
	const struct dlist *rmb = NULL, *records, *r;
	struct dlist *reserve, *guids;
	const char *part = NULL, *name = NULL;
	uint64_t v;

	if (strcmp(verb, "OK") != 0) {
		fail(l, "GET MAILBOXES: %s %s", verb, text);
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
		repair_user(l, "the mailbox is missing on the replica");
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
	/*
	 * Stage the body of every record above the replica's LAST_UID: the
	 * replica parses new records' files even when they arrive already
	 * expunged.  An expunged record whose body the master never sent
	 * (it was unlinked there) goes without.
	 */
	guids = dlist_new_list("GUID");
	records = dlist_get(l->cmd, "RECORD");
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
	send_cmd(l, "APPLY", reserve, reserve_reply);
	dlist_free(&reserve);
}

static void
other_reply(struct link *l, const char *verb, const char *text)
{
	bool gone = strcmp(verb, "NO") == 0 &&
	    result_from_no_text(text) == RESULT_MAILBOX_NONEXISTENT;

	if (strcmp(verb, "OK") == 0 || (gone && l->cmd &&
	    strcmp(l->cmd->key, "UNMAILBOX") == 0)) {
		advance(l);
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
		advance(l);
		return;
	}
	fail(l, "APPLY %s: %s %s", l->cmd ? l->cmd->key : "?", verb, text);
}

static void
remember_body(struct link *l, const struct journal_record *rec)
{
	struct seen_body *b;

	if (l->nseen == MAX_SEEN)
		l->nseen = 0;		/* the fallback is only slower */
	if (l->nseen == l->seen_alloc) {
		l->seen_alloc = l->seen_alloc ? l->seen_alloc * 2 : 256;
		l->seen = xreallocarray(l->seen, l->seen_alloc,
		    sizeof(*l->seen));
	}
	b = &l->seen[l->nseen++];
	journal_guid_hex(rec->guid, b->guid);
	b->lsn = rec->lsn;
	b->segment = rec->segment;
	b->offset = rec->offset;
}

static const struct seen_body *
find_body(const struct link *l, const char *guid)
{
	size_t i;

	for (i = l->nseen; i > 0; i--)
		if (memcmp(l->seen[i - 1].guid, guid, 40) == 0)
			return &l->seen[i - 1];
	return NULL;
}

static bool
is_mailbox_update(const struct dlist *cmd)
{
	return strcmp(cmd->key, "MAILBOX") == 0 && cmd->type == DL_KVLIST &&
	    dlist_get(cmd, "RECORD") != NULL;
}

static bool
same_str(const struct dlist *a, const struct dlist *b, const char *key)
{
	const char *x = NULL, *y = NULL;

	dlist_get_str(a, key, &x);
	dlist_get_str(b, key, &y);
	return x != NULL && y != NULL && strcmp(x, y) == 0;
}

/* Moves the first child of list out of it. */
static struct dlist *
pop_child(struct dlist *list)
{
	struct dlist *d = list->head;

	if (d == NULL)
		return NULL;
	list->head = d->next;
	if (list->head == NULL)
		list->tail = NULL;
	list->nchildren--;
	d->next = NULL;
	return d;
}

static struct dlist *
child(struct dlist *kv, const char *key)
{
	struct dlist *d;

	for (d = kv->head; d != NULL; d = d->next)
		if (d->key && strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

static uint64_t
record_uid(const struct dlist *r)
{
	uint64_t v = 0;

	dlist_get_num(r, "UID", &v);
	return v;
}

/*
 * Folds an older APPLY MAILBOX of the same mailbox into newer: newer's
 * header (it is the later state), and the union of both RECORD lists by
 * UID, newer winning -- what the master would have sent had it synced
 * once after both changes.  Both lists are in ascending UID order.
 */
static void
fold_mailbox(struct dlist *newer, struct dlist *older)
{
	struct dlist *a = child(older, "RECORD"), *b = child(newer, "RECORD");
	struct dlist *out = dlist_new_list("RECORD");

	while (a->head != NULL || b->head != NULL) {
		if (b->head == NULL || (a->head != NULL &&
		    record_uid(a->head) < record_uid(b->head))) {
			dlist_append(out, pop_child(a));
			continue;
		}
		if (a->head != NULL &&
		    record_uid(a->head) == record_uid(b->head)) {
			struct dlist *old = pop_child(a);

			dlist_free(&old);
		}
		dlist_append(out, pop_child(b));
	}
	dlist_remove(newer, "RECORD");
	dlist_append(newer, out);
}

#define MAX_FOLD 4096
#define MAX_SKIP 1024

/* The records up to lsn need not be sent: count them as done. */
static void
skip_to(struct link *l, uint64_t lsn)
{
	l->lsn = lsn;
	if (lsn > l->acked)
		l->replayed_records += lsn - l->acked;
	l->acked = lsn;
	rq_ack(l);
}

static void
replay_next(struct link *l)
{
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	char err[256], path[4096];
	size_t folded = 0, skipped = 0;
	bool seed;
	int e = 0;

	if (l->conn == NULL || l->on_reply != NULL || l->cmd != NULL ||
	    l->state == LINK_FAILED || l->state == LINK_LOGIN)
		return;
	if (l->needs_resync) {
		fail(l, "needs a full resync");	/* fail() says the rest */
		return;
	}
	if (l->acked + 1 < journal_first_lsn(l->st->journal)) {
		fail(l, "the journal starts at LSN %llu but the replica has "
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
	if (throttled(l))
		return;
	if (l->jr == NULL) {
		snprintf(path, sizeof(path), "%s/journal", l->st->dir);
		l->jr = journal_reader_new(path, NULL, l->acked + 1,
		    journal_durable_lsn(l->st->journal), err, sizeof(err));
		if (l->jr == NULL) {
			fail(l, "%s", err);
			return;
		}
	}
	journal_reader_set_upto(l->jr, journal_durable_lsn(l->st->journal));
	if (l->pending != NULL) {
		l->cmd = l->pending;
		l->lsn = l->pending_lsn;
		l->pending = NULL;
		if (l->pending_seed || (is_mailbox_update(l->cmd) &&
		    repaired_since(l, l->cmd, l->lsn))) {
			l->pending_seed = false;
			dlist_free(&l->cmd);
			skip_to(l, l->lsn);
		}
	}
	/*
	 * Catching up, consecutive updates of one mailbox are sent as one
	 * (folded), as sync_client itself would after a pause: one round of
	 * GET/RESERVE/MESSAGE/MAILBOX instead of one per change.  The first
	 * command that does not fold waits in l->pending.
	 */
	while (l->cmd == NULL || (is_mailbox_update(l->cmd) &&
	    folded < MAX_FOLD && (l->records_bucket.rate <= 0 ||
	    (double)folded + 1 < l->records_bucket.tokens))) {
		struct dlist *next;

		e = journal_reader_next(l->jr, &rec, &raw);
		if (e <= 0)
			break;
		rq_push(l, &rec);
		/*
		 * Bodies go out with the APPLY MAILBOX that needs them (from
		 * the body index); the cursor passes them only when that
		 * command is acknowledged, so retention keeps them till then.
		 */
		if (rec.type == JOURNAL_BODY) {
			remember_body(l, &rec);
			continue;
		}
		next = fold_parse_record(raw.s, raw.len, &seed);
		if (next == NULL) {
			buf_free(&raw);
			dlist_free(&l->cmd);
			fail(l, "journal record %llu is not an APPLY command",
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
		if (l->cmd == NULL && is_mailbox_update(next) &&
		    repaired_since(l, next, rec.lsn)) {
			/* Already there: the repair sent a later state. */
			dlist_free(&next);
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
			continue;
		}
		if (is_mailbox_update(next) &&
		    same_str(next, l->cmd, "UNIQUEID") &&
		    same_str(next, l->cmd, "MBOXNAME")) {
			fold_mailbox(next, l->cmd);
			dlist_free(&l->cmd);
			l->cmd = next;
			l->lsn = rec.lsn;
			folded++;
			continue;
		}
		l->pending = next;
		l->pending_lsn = rec.lsn;
		break;
	}
	buf_free(&raw);
	if (e < 0) {
		dlist_free(&l->cmd);
		fail(l, "reading the journal: %s", journal_reader_errstr(l->jr));
		return;
	}
	if (l->cmd != NULL) {
		if (is_mailbox_update(l->cmd))
			ask_mailbox_state(l);
		else
			send_cmd(l, "APPLY", l->cmd, other_reply);
		return;
	}
	l->caught_up = true;
	set_state(l, LINK_STREAMING);
	ev_timer_again(l->loop, &l->idle_t);	/* (re)starts the countdown */
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
	free(l->seen);
	l->seen = NULL;
	l->nseen = l->seen_alloc = 0;
	if (l->rq_len == 0) {
		free(l->rq);
		l->rq = NULL;
		l->rq_head = l->rq_alloc = 0;
	}
}

/* ---- the cursor ------------------------------------------------------------- */

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
}

/* ---- life cycle ------------------------------------------------------------- */

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

struct link *
link_new(struct ev_loop *loop, struct store *st, const struct replica_conf *rc,
    struct cursor *cursor)
{
	struct link *l = xcalloc(1, sizeof(*l));

	l->loop = loop;
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
	l->fd = -1;
	l->backoff = BACKOFF_MIN;
	buf_init(&l->mechs, 0);
	ev_init(&l->retry, retry_cb);
	l->retry.data = l;
	ev_timer_init(&l->cursor_timer, cursor_cb, 0.2, 0.2);
	l->cursor_timer.data = l;
	ev_timer_start(loop, &l->cursor_timer);
	l->rate_t = ev_now(loop);
	l->rate_acked = l->acked;
	ev_init(&l->throttle, throttle_cb);
	l->throttle.data = l;
	ev_init(&l->idle_t, idle_cb);
	l->idle_t.repeat = IDLE_TRIM;
	l->idle_t.data = l;
	l->bytes_bucket = (struct bucket){ (double)rc->max_bytes_per_second,
		(double)rc->max_bytes_per_second, ev_now(loop) };
	l->records_bucket = (struct bucket){
		(double)rc->max_records_per_second,
		(double)rc->max_records_per_second, ev_now(loop) };
	snprintf(l->paused_path, sizeof(l->paused_path), "%s/cursors/%s.paused",
	    st->dir, rc->name);
	if (access(l->paused_path, F_OK) == 0) {
		l->paused = true;
		log_info("store=%s replica=%s event=link_paused acked=%llu "
		    "note=\"paused before the restart; syncrelayctl resume "
		    "to go on\"", st->name, rc->name,
		    (unsigned long long)l->acked);
		set_state(l, LINK_PAUSED);
	}
	l->password = read_password(rc);
	if (l->password == NULL) {
		l->password = xstrdup("");
		fail(l, "cannot read the password file %s", rc->password_file);
		return l;
	}
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
	if (l->conn) {
		/* Between commands, say goodbye as sync_client does. */
		if (l->on_reply == NULL && l->bs == NULL && !l->in_banner)
			conn_write(l->conn, "EXIT\r\n", 6);
		conn_close(l->conn, "shutting down", true);
	}
	if (l->fd >= 0) {
		ev_io_stop(l->loop, &l->connect_w);
		close(l->fd);
	}
	ev_timer_stop(l->loop, &l->retry);
	ev_timer_stop(l->loop, &l->cursor_timer);
	ev_timer_stop(l->loop, &l->throttle);
	ev_timer_stop(l->loop, &l->idle_t);
	cursorq_cancel(&l->cq);
	cursorq_lock();
	if (l->acked > cursor_lsn(l->cursor))
		cursor_store(l->cursor, l->acked);
	cursorq_unlock();
	reset_session(l);
	tlsctx_free(&l->tls_ctx);
	buf_free(&l->mechs);
	free(l->seen);
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
	l->why[0] = '\0';
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
		kick(l);	/* the timer that would have is stopped */
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
	if (l->fd >= 0) {
		ev_io_stop(l->loop, &l->connect_w);
		close(l->fd);
		l->fd = -1;
	}
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
	l->nseen = 0;
	l->nrepaired = 0;
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
		replay_next(l);
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
	snprintf(out->state, sizeof(out->state), "%s", state_names[l->state]);
	out->paused = l->paused;
	if (l->state == LINK_FAILED)
		snprintf(out->reason, sizeof(out->reason), "%s", l->why);
	else if (l->state == LINK_DOWN || l->state == LINK_CONNECTING)
		snprintf(out->reason, sizeof(out->reason), "%s",
		    l->last_error);
	snprintf(out->last_error, sizeof(out->last_error), "%s",
	    l->last_error);
	out->last_error_time = l->last_error_time;
	out->left_alone = l->nleft_alone;
	snprintf(out->left_alone_names, sizeof(out->left_alone_names), "%s",
	    l->left_alone);
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
		if (l->fd >= 0) {
			ev_io_stop(l->loop, &l->connect_w);
			close(l->fd);
			l->fd = -1;
		}
		if (l->conn == NULL) {
			if (l->state != LINK_FAILED)
				set_state(l, LINK_PAUSED);
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
	if (l->conn == NULL) {
		set_state(l, LINK_DOWN);
		l->backoff = BACKOFF_MIN;
		link_connect(l);
	}
}

/* ---- questions on the store's behalf -------------------------------------- */

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
	cb(l->query_arg, verb, text, untagged);
	if (l->conn != NULL && l->on_reply == NULL)
		replay_next(l);
}

int
link_query(struct link *l, const struct dlist *entry, link_query_cb cb,
    void *arg)
{
	if (!idle(l))
		return -EBUSY;
	l->query_cb = cb;
	l->query_arg = arg;
	send_cmd(l, "GET", entry, query_reply);
	return 0;
}
