/*
 * session.c -- csync server session: banner, authentication, commands.
 *
 * Input flows conn -> csync_reader -> one command at a time -> a reply.
 * While a command waits for the journal (an APPLY that changed the
 * shadow, or the bodies of an APPLY MESSAGE), the session stops reading
 * and offers the rest of its input again once the reply is out, so
 * commands never overlap.  A store may have several sessions; their
 * GETs and APPLYs take turns through order.c (a session waits, not
 * reading, while another's change is on its way to the journal).
 * Message bodies stream from the parser into the journal as they
 * arrive; when the journal falls behind, reading pauses until it
 * drains (backpressure).
 *
 * Completions can outlive the connection: a session whose connection
 * is gone stays allocated until its last journal completion has run,
 * and a completion for a gone session still commits or rolls back the
 * shadow (the journal is the truth), it just has nobody to answer.
 *
 * Before login, lines are read as Cyrus reads them then (no literals)
 * and guard.c caps, times and slows the session (failed logins).
 *
 * For the store's statistics (stats.h) the session counts records as
 * they become durable, the NO/BAD replies it sends by error name, and
 * notes when the master last sent a command.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "protocol/result.h"
#include "protocol/saslsrv.h"
#include "relay/conn.h"
#include "relay/ingest/bigbox.h"
#include "relay/getcmd.h"
#include "relay/getcmd_full.h"
#include "relay/getpump.h"
#include "relay/ingest/reserve.h"
#include "relay/ingest/guard.h"
#include "relay/diskguard.h"
#include "relay/ingest/order.h"
#include "relay/ingest/session.h"
#include "relay/ingest/stall.h"
#include "relay/ingest/usersync.h"
#include "relay/ops/stats.h"
#include "relay/ingest/seed.h"
#include "relay/store.h"
#include "storage/apply.h"
#include "storage/posidx.h"

#define JOURNAL_HIGH ((uint64_t)32 << 20)
#define JOURNAL_LOW ((uint64_t)8 << 20)

struct session {
	struct conn *conn;
	const struct session_params *params;
	struct csync_reader *reader;
	struct buf reply;
	struct saslsrv *sasl;
	bool sasl_used;			/* an exchange was started on it */
	char *sasl_local, *sasl_remote;
	bool sasl_stepping;		/* waiting for a response line */
	char *user;
	struct store *store;		/* set once authenticated */
	struct apply_ctx ctx;
	struct guard_conn *ge;		/* until authenticated */
	bool sieve_mailbox;
	bool busy;			/* a command waits for the journal */
	bool throttled;			/* reading paused for the journal */
	bool compressing;		/* COMPRESS DEFLATE is active */
	bool tls;			/* STARTTLS done */
	bool switched;			/* the transport just changed */
	bool gone;			/* the connection is closed */
	bool exited;			/* EXIT was answered */
	bool in_command;		/* a command is begun, not whole */
	struct stall stall;		/* ... and the master fell silent */
	int pending;			/* journal operations in flight */
	struct getpump *pump;		/* GET FETCH or FULLMAILBOX being sent */
	struct posidx *posidx;		/* where GET FETCH's bodies are */
	/* APPLY MESSAGE in progress */
	struct journal_body *body;
	char body_guid[41];
	uint64_t body_size;
	int bodies_pending;
	int bodies_failed;
	int body_error;			/* the first failure's errno */
	bool discarding;		/* this body is not kept (journal full) */
	bool refused_full;		/* a body was refused: journal full */
	bool message_done;		/* its line has been read */
	unsigned long commands;
	struct usersync usync;		/* a user-level sync in progress */
	struct dlist *seed_get;		/* a GET waiting for relay/ingest/seed.c */
	struct dlist *queued;		/* a GET or APPLY waiting its turn */
	struct bigbox big;		/* a huge APPLY MAILBOX's records */
	char queued_verb[8];
};

static void session_maybe_free(struct session *s);
static void new_sasl(struct session *s);
static bool session_quiet(const struct session *s);

/* Counts a NO or BAD reply against the store (stats.h). */
static void
count_error(struct session *s, const char *word, const char *text)
{
	if (s->store != NULL && stats_count_reply(s->store->errors,
	    &s->store->nerrors, word, text))
		s->usync.refused = true;
}

/* The same for a result code's reply line (result_line()). */
static void
count_result(struct session *s, enum result_code code)
{
	const char *line = result_line(code), *sp;
	char word[8];

	if (code == RESULT_OK || (sp = strchr(line, ' ')) == NULL)
		return;
	snprintf(word, sizeof(word), "%.*s", (int)(sp - line), line);
	count_error(s, word, sp + 1);
}

static void
send_line(struct session *s, const char *word, const char *text)
{
	if (s->gone)
		return;
	count_error(s, word, text);
	buf_reset(&s->reply);
	csync_print_final(&s->reply, word, text);
	conn_write(s->conn, s->reply.s, s->reply.len);
}

static void
send_result(struct session *s, enum result_code code)
{
	if (s->gone)
		return;
	count_result(s, code);
	buf_reset(&s->reply);
	csync_print_result(&s->reply, code);
	conn_write(s->conn, s->reply.s, s->reply.len);
}

static const char *
store_name(const struct session *s)
{
	return s->store ? s->store->name : "-";
}

/* Arms the mid-command deadline while the master owes the relay bytes. */
static void
watch_stall(struct session *s)
{
	if (!s->gone)
		stall_update(&s->stall, s->store != NULL && s->in_command &&
		    !s->busy && !s->throttled && !s->exited,
		    s->params->master_timeout, store_name(s));
}

/* A command finished: read on. */
static void
unbusy(struct session *s)
{
	s->busy = false;
	if (s->gone)
		return;
	conn_pause(s->conn, s->throttled);
	conn_kick(s->conn);
	watch_stall(s);
}

/* ---- journal completions ------------------------------------------------ */

struct body_op {
	struct session *s;
	struct store *st;
	char guid[41];
	uint64_t size;
};

/* A record of len payload bytes is durable in st's journal. */
static void
count_ingested(struct store *st, uint64_t len)
{
	st->ingested_records++;
	st->ingested_bytes += len;
}

static void
message_finished(struct session *s)
{
	char msg[200];

	if (s->refused_full) {
		send_line(s, "NO", "Unknown error (the relay's journal for this "
		    "store is full until its replicas catch up)");
	} else if (s->bodies_failed && s->body_error == -EBADMSG) {
		send_line(s, "NO", "IMAP_PROTOCOL_ERROR a message body did not "
		    "match its GUID");
	} else if (s->bodies_failed) {
		snprintf(msg, sizeof(msg), "Unknown error (the relay could not "
		    "store a message: %s)", strerror(-s->body_error));
		send_line(s, "NO", msg);
	} else {
		send_result(s, RESULT_OK);
	}
	s->bodies_failed = 0;
	s->body_error = 0;
	s->refused_full = false;
	s->message_done = false;
	unbusy(s);
}

static void
body_done(void *arg, uint64_t lsn, int err)
{
	struct body_op *op = arg;
	struct session *s = op->s;
	struct shadow_body b;
	bool own;

	if (err == 0) {
		count_ingested(op->st, op->size);
		snprintf(b.guid, sizeof(b.guid), "%s", op->guid);
		b.lsn = lsn;
		b.size = (uint32_t)op->size;
		b.needed_lsn = 0;
		/*
		 * Another session's change may hold the shadow's transaction
		 * open: its record comes after this body's (completions run
		 * in LSN order), so the body joins it and commits with it.
		 */
		own = !shadow_in_transaction(op->st->shadow);
		if ((own && shadow_begin(op->st->shadow) < 0) ||
		    shadow_body_put(op->st->shadow, &b) < 0 ||
		    (own && shadow_commit(op->st->shadow, lsn) < 0)) {
			shadow_rollback(op->st->shadow);
			op->st->shadow_stale = true;	/* never acknowledged */
			if (s->bodies_failed++ == 0)
				s->body_error = -EIO;
			log_error("store=%s event=shadow_failed lsn=%llu "
			    "error=\"%s\"", op->st->name,
			    (unsigned long long)lsn,
			    shadow_errmsg(op->st->shadow));
		}
	} else {
		log_warnx("store=%s event=body_refused guid=%s size=%llu "
		    "error=\"%s\"", op->st->name, op->guid,
		    (unsigned long long)op->size, err == -EBADMSG ?
		    "content does not match the GUID" : strerror(-err));
		if (s->bodies_failed++ == 0)
			s->body_error = err;
	}
	s->pending--;
	s->bodies_pending--;
	if (s->message_done && s->bodies_pending == 0)
		message_finished(s);
	free(op);
	session_maybe_free(s);
}

struct cmd_op {
	struct session *s;
	struct store *st;
	struct apply_outcome out;
	char sub[32];
	size_t len;			/* of the journaled command */
};

static void
cmd_done(void *arg, uint64_t lsn, int err)
{
	struct cmd_op *op = arg;
	struct session *s = op->s;

	if (err == 0)
		count_ingested(op->st, op->len);
	if (err == 0 && shadow_commit(op->st->shadow, lsn) == 0) {
		if (op->out.code != RESULT_OK)
			log_info("store=%s event=applied_with_error cmd=APPLY "
			    "sub=%s lsn=%llu code=%s reason=\"%s\"",
			    op->st->name, op->sub, (unsigned long long)lsn,
			    result_name(op->out.code), op->out.why);
		send_result(s, op->out.code);
	} else {
		shadow_rollback(op->st->shadow);
		op->st->shadow_stale = op->st->shadow_stale || err == 0;
		log_error("store=%s event=apply_not_durable sub=%s error=\"%s\"",
		    op->st->name, op->sub, err ? strerror(-err) :
		    shadow_errmsg(op->st->shadow));
		send_line(s, "NO", "Unknown error (the relay could not store "
		    "the change)");
	}
	s->pending--;
	order_release(op->st);	/* the next session's turn, then ours */
	unbusy(s);
	free(op);
	session_maybe_free(s);
}

/* The store's journal made progress: lift backpressure if it drained. */
static void
store_progress(struct store *st, void *arg)
{
	struct session *s;
	size_t i;

	for (i = 0; i < order_sessions(st); i++) {
		s = order_session_at(st, i);
		if (!s->throttled ||
		    journal_pending_bytes(st->journal) > JOURNAL_LOW)
			continue;
		s->throttled = false;
		if (!s->busy && !s->gone) {
			conn_pause(s->conn, false);
			conn_kick(s->conn);
			watch_stall(s);
			i = (size_t)-1;	/* it may have left: from the start */
		}
	}
}

/* No session of st has anything on its way (retention waits). */
static bool
sessions_quiet(const struct store *st)
{
	size_t i;

	for (i = 0; i < order_sessions(st); i++)
		if (!session_quiet(order_session_at(st, i)))
			return false;
	return order_idle(st);
}

/* ---- file literals (message bodies) ------------------------------------- */

static int
file_begin(void *arg, const char *partition, const char *guid, uint64_t size)
{
	struct session *s = arg;

	if (s->store == NULL)
		return -1;	/* never before authentication */
	snprintf(s->body_guid, sizeof(s->body_guid), "%s", guid);
	s->body_size = size;
	if (!s->discarding && diskguard_refusal(s->store, "MESSAGE")) {
		if (s->bodies_failed++ == 0)	/* the NO says why */
			s->body_error = s->store->disk_full ? -ENOSPC : -EIO;
		s->discarding = true;
		return 0;
	}
	if (s->store->refuse_writes) {
		/* Read and dropped: the APPLY MESSAGE gets a NO. */
		if (!s->refused_full) {
			log_error("store=%s event=refused sub=MESSAGE reason="
			    "\"journal over journal_max_bytes; replicas must "
			    "catch up first\"", s->store->name);
			stats_count_code(s->store->errors, &s->store->nerrors,
			    "journal_full");
		}
		s->discarding = s->refused_full = true;
		return 0;
	}
	s->body = journal_body_begin(s->store->journal, guid, size);
	return 0;
}

static int
file_data(void *arg, const void *p, size_t n)
{
	struct session *s = arg;

	if (!s->discarding)
		journal_body_write(s->body, p, n);
	return 0;
}

static int
file_end(void *arg)
{
	struct session *s = arg;
	struct body_op *op;

	if (s->discarding) {
		s->discarding = false;
		return 0;
	}
	op = xcalloc(1, sizeof(*op));
	op->s = s;
	op->st = s->store;
	snprintf(op->guid, sizeof(op->guid), "%s", s->body_guid);
	op->size = s->body_size;
	s->pending++;
	s->bodies_pending++;
	journal_body_end(s->body, body_done, op);
	s->body = NULL;
	return 0;
}

static const struct dlist_file_sink file_sink_proto = { file_begin,
	file_data, file_end, NULL };

/* ---- authentication ----------------------------------------------------- */

static void
auth_finish(struct session *s)
{
	const char *user = saslsrv_username(s->sasl);
	struct store *st = user ? store_by_identity(user) : NULL;
	const struct store_failure *f = user && !st ?
	    store_failed_by_identity(user) : NULL;

	s->sasl_stepping = false;
	if (st == NULL) {	/* a store set aside at start says which */
		log_warnx("conn=%lu peer=%s event=auth_refused user=%s store=%s "
		    "reason=\"%s\"", conn_id(s->conn), conn_peer(s->conn),
		    user ? user : "?", f ? f->name : "-", f ? "the store could "
		    "not be opened (event=store_open_failed)" : "no store has "
		    "this identity");
		send_line(s, "NO", f ? "authentication failure (the relay "
		    "could not open this identity's store; see its log)" :
		    "authentication failure (no store is configured for this "
		    "identity)");
		return;
	}
	s->user = xstrdup(user);
	s->store = st;
	order_join(st, s, conn_peer(s->conn));
	/* A new master session: who knows what changed since the last. */
	shadow_forget_complete(st->shadow);
	st->on_progress = store_progress;
	st->master_quiet = sessions_quiet;
	bigbox_init(&s->big, s->reader, st->dir, st->name);
	csync_reader_set_limits(s->reader, &s->params->limits);
	csync_reader_set_preauth(s->reader, false);
	guard_login(&s->ge);
	conn_set_timeout(s->conn, s->params->idle_timeout);
	log_info("conn=%lu peer=%s event=login user=%s store=%s",
	    conn_id(s->conn), conn_peer(s->conn), user, st->name);
	send_line(s, "OK", "Success (no protection)");
}

/* Answered after failedloginpause; nothing is read meanwhile. */
static void
login_failed(struct session *s, const char *why)
{
	if (s->ge == NULL) {
		send_line(s, "NO", why);
		return;
	}
	s->busy = true;
	guard_login_failed(s->ge, why);
}

static void
auth_result(struct session *s, enum saslsrv_status st, struct buf *challenge,
    const char *why)
{
	if (st == SASLSRV_OK) {
		auth_finish(s);
	} else if (st == SASLSRV_CONTINUE) {
		s->sasl_stepping = true;
		csync_reader_raw_line(s->reader);
		send_line(s, "+", challenge->s);
	} else {
		s->sasl_stepping = false;
		login_failed(s, why);
	}
}

static void
login_pause_done(void *arg, const char *reply, bool close)
{
	struct session *s = arg;

	send_line(s, "NO", reply);
	if (close)
		conn_close(s->conn, "too many failed logins "
		    "(max_login_failures)", false);
	else
		unbusy(s);
}

static void
cmd_authenticate(struct session *s, const char *text)
{
	struct buf challenge = BUF_INIT;
	char mech[64], initial[8192], extra[8];
	const char *why = "";
	enum saslsrv_status st;
	int n;

	if (s->store != NULL) {
		send_line(s, "BAD", "Already authenticated");
		return;
	}
	if (s->params->tls_required && !s->tls) {
		log_info("conn=%lu peer=%s event=auth_refused reason=\"TLS is "
		    "required first\"", conn_id(s->conn), conn_peer(s->conn));
		send_line(s, "NO", "TLS is required before authentication "
		    "(use STARTTLS)");
		return;
	}
	if (s->sasl_used)
		new_sasl(s);	/* a SASL connection serves one exchange */
	if (s->sasl == NULL) {
		send_line(s, "NO", "no mechanism available");
		return;
	}
	if (text == NULL || *text == '\0') {
		send_line(s, "BAD", "Missing required argument to Authenticate");
		return;
	}
	n = sscanf(text, "%63s %8191s %7s", mech, initial, extra);
	if (n == 3) {
		send_line(s, "BAD", "Unexpected extra arguments to Authenticate");
		return;
	}
	for (const char *c = mech; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_') {
			send_line(s, "BAD", "Invalid mechanism");
			return;
		}
	s->sasl_used = true;
	st = saslsrv_start(s->sasl, mech, n == 2 ? initial : NULL, &challenge,
	    &why);
	auth_result(s, st, &challenge, why);
	buf_free(&challenge);
}

static void
auth_step(struct session *s, const char *text)
{
	struct buf challenge = BUF_INIT;
	const char *why = "";
	enum saslsrv_status st;

	if (text == NULL || strcmp(text, "*") == 0) {
		s->sasl_stepping = false;
		send_line(s, "BAD", "Client canceled authentication");
		return;
	}
	st = saslsrv_step(s->sasl, text, &challenge, &why);
	auth_result(s, st, &challenge, why);
	buf_free(&challenge);
}

/* ---- APPLY -------------------------------------------------------------- */

static void
apply_capabilities(struct session *s, const struct dlist *e)
{
	struct dlist *en = dlist_new_list("ENABLED");
	const struct dlist *c;

	if (e->type == DL_LIST)
		for (c = e->head; c != NULL; c = c->next)
			if (c->type == DL_ATOM &&
			    strcasecmp(c->s, "SIEVE-MAILBOX") == 0) {
				s->sieve_mailbox = true;
				s->ctx.sieve_mailbox = true;
				dlist_add_atom(en, NULL, c->s);
			}
	buf_reset(&s->reply);
	csync_print_untagged(&s->reply, en);
	csync_print_result(&s->reply, RESULT_OK);
	conn_write(s->conn, s->reply.s, s->reply.len);
	dlist_free(&en);
}

static void
apply_reserve(struct session *s, const struct dlist *e)
{
	enum result_code code;

	buf_reset(&s->reply);
	code = reserve_answer(s->store->shadow, e, &s->reply);
	count_result(s, code);
	csync_print_result(&s->reply, code);
	conn_write(s->conn, s->reply.s, s->reply.len);
}

static void
apply_change(struct session *s, const struct dlist *e)
{
	struct store *st = s->store;
	struct cmd_op *op;
	const char *why;

	if ((why = diskguard_refusal(st, e->key)) != NULL) {
		send_line(s, "NO", why);	/* full disk, failed storage */
		return;
	}
	if (st->refuse_writes) {
		/* Over journal_max_bytes: the master keeps it and retries. */
		log_error("store=%s event=refused sub=%s reason=\"journal over "
		    "journal_max_bytes; replicas must catch up first\"",
		    st->name, e->key);
		stats_count_code(st->errors, &st->nerrors, "journal_full");
		send_line(s, "NO", "Unknown error (the relay's journal for "
		    "this store is full until its replicas catch up)");
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->s = s;
	op->st = st;
	snprintf(op->sub, sizeof(op->sub), "%s", e->key);
	if (shadow_begin(st->shadow) < 0) {
		log_error("store=%s event=shadow_failed error=\"%s\"", st->name,
		    shadow_errmsg(st->shadow));
		send_result(s, RESULT_UNKNOWN);
		free(op);
		return;
	}
	apply_command_spilled(st->shadow, e, s->big.spill, &s->ctx, &op->out);
	if (!op->out.changed) {
		shadow_rollback(st->shadow);
		if (op->out.code != RESULT_OK)
			log_info("store=%s event=refused cmd=APPLY sub=%s "
			    "code=%s reason=\"%s\"", st->name, e->key,
			    result_name(op->out.code), op->out.why);
		send_result(s, op->out.code);
		free(op);
		return;
	}
	/* Journal it; the reply waits until it is durable. */
	s->busy = true;
	s->pending++;
	order_hold(st, s);	/* until cmd_done: the transaction is open */
	op->len = (size_t)bigbox_journal(&s->big, st->journal, e, cmd_done, op);
}

static void
cmd_apply(struct session *s, const struct dlist *e)
{
	if (strcmp(e->key, "CAPABILITIES") == 0) {
		apply_capabilities(s, e);
	} else if (strcmp(e->key, "FORCE") == 0) {
		s->ctx.force = true;
		send_result(s, RESULT_OK);
	} else if (strcmp(e->key, "RESERVE") == 0) {
		apply_reserve(s, e);
	} else if (strcmp(e->key, "MESSAGE") == 0) {
		/* The bodies were journaled while the line was read. */
		if (s->bodies_pending == 0) {
			message_finished(s);
		} else {
			s->message_done = true;
			s->busy = true;
		}
	} else {
		apply_change(s, e);
	}
}

/* ---- banner and STARTTLS ------------------------------------------------- */

/* The capability lines and "* OK", as a 3.6 sync_server orders them. */
static void
send_banner(struct session *s)
{
	struct buf banner = BUF_INIT;

	if (s->sasl && *saslsrv_mechs(s->sasl) &&
	    (!s->params->tls_required || s->tls))
		buf_printf(&banner, "* SASL %s\r\n", saslsrv_mechs(s->sasl));
	if (s->params->tls_ctx && !s->tls)
		buf_puts(&banner, "* STARTTLS\r\n");
	if (s->params->compress && !s->tls)
		buf_puts(&banner, "* COMPRESS DEFLATE\r\n");
	buf_puts(&banner, "* SIEVE-MAILBOX\r\n");
	buf_printf(&banner, "* OK %s syncrelay sync server %s\r\n",
	    s->params->servername, PACKAGE_VERSION);
	conn_write(s->conn, banner.s, banner.len);
	buf_free(&banner);
}

static void
new_sasl(struct session *s)
{
	char err[256];

	saslsrv_free(&s->sasl);
	/* Under TLS, password mechanisms are fine whatever allowplaintext. */
	s->sasl = saslsrv_new("csync", s->params->servername, s->sasl_local,
	    s->sasl_remote, s->params->allowplaintext || s->tls, err,
	    sizeof(err));
	s->sasl_used = false;
	if (s->sasl == NULL)
		log_warnx("conn=%lu event=sasl_unavailable error=\"%s\"",
		    conn_id(s->conn), err);
}

static void
tls_done(struct conn *c, void *arg, const char *err)
{
	struct session *s = arg;

	if (err != NULL) {
		log_warnx("conn=%lu peer=%s event=starttls_failed reason=\"%s\"",
		    conn_id(c), conn_peer(c), err);
		return;
	}
	s->tls = true;
	log_info("conn=%lu peer=%s event=starttls", conn_id(c), conn_peer(c));
	new_sasl(s);
	send_banner(s);
}

static void
cmd_starttls(struct session *s, const char *text)
{
	if (text != NULL) {
		send_line(s, "BAD", "Unexpected extra arguments to Starttls");
		return;
	}
	if (s->store != NULL) {
		send_line(s, "BAD", "Can't Starttls after authentication");
		return;
	}
	if (s->tls) {
		send_line(s, "BAD", "Already did a successful Starttls");
		return;
	}
	send_line(s, "OK", "Begin TLS negotiation now");
	conn_start_tls(s->conn, s->params->tls_ctx, tls_done);
	s->switched = true;
}

/* ---- COMPRESS (RFC 4978) ------------------------------------------------- */

static void
cmd_compress(struct session *s, const char *text)
{
	char msg[160];

	if (text == NULL || *text == '\0') {
		send_line(s, "BAD", "Missing required argument to Compress");
		return;
	}
	if (strchr(text, ' ') != NULL) {
		send_line(s, "BAD", "Unexpected extra arguments to Compress");
		return;
	}
	if (s->compressing) {
		snprintf(msg, sizeof(msg), "Compression already active: %.64s",
		    text);
		send_line(s, "NO", msg);
		return;
	}
	if (strcasecmp(text, "DEFLATE") != 0) {
		snprintf(msg, sizeof(msg), "Unknown compression algorithm: "
		    "%.64s", text);
		send_line(s, "NO", msg);
		return;
	}
	if (!s->params->compress) {
		send_line(s, "NO", "Compression is not enabled");
		return;
	}
	snprintf(msg, sizeof(msg), "%.64s active", text);
	send_line(s, "OK", msg);
	if (conn_start_deflate(s->conn) < 0) {
		conn_close(s->conn, "zlib failed", true);
		return;
	}
	s->compressing = true;
	s->switched = true;
	log_info("conn=%lu store=%s event=compress_on", conn_id(s->conn),
	    store_name(s));
}

/* ---- GET FETCH and FULLMAILBOX: sent back piece by piece ------------------ */

static void
pump(struct session *s)
{
	char why[300];
	int r;

	if (s->pump == NULL || s->gone ||
	    (r = getpump_run(s->pump, s->conn, why, sizeof(why))) > 0)
		return;
	if (r < 0) {
		/* Half an answer is out: the stream cannot recover. */
		log_error("store=%s event=%s_failed error=\"%s\"",
		    store_name(s), getpump_what(s->pump), why);
		getpump_free(&s->pump);
		conn_close(s->conn, why, true);
		return;
	}
	getpump_free(&s->pump);
	send_result(s, RESULT_OK);
	unbusy(s);
}

static void
on_drain(struct conn *c, void *arg)
{
	pump(arg);
}

static void
cmd_get_fetch(struct session *s, const struct dlist *e)
{
	const char *part = NULL;
	char guid[41] = "", path[4096], why[300] = "";
	struct journal_body_stream *fetch = NULL;
	uint32_t size = 0;
	enum result_code r;

	snprintf(path, sizeof(path), "%s/journal", s->store->dir);
	if (s->posidx == NULL)
		s->posidx = posidx_new(path, NULL);
	r = getcmd_fetch_open(s->store->shadow, path, s->posidx, e, &fetch,
	    &size, &part, guid, why, sizeof(why));
	if (r != RESULT_OK) {
		if (*why)
			log_info("store=%s event=refused cmd=GET sub=FETCH "
			    "guid=%s reason=\"%s\"", store_name(s), guid, why);
		send_result(s, r);
		return;
	}
	s->busy = true;
	s->pump = getpump_body(&fetch, part, guid, size);
	pump(s);
}

/* ---- dispatch ----------------------------------------------------------- */

static bool
no_args(struct session *s, const char *text, const char *cmdname)
{
	char msg[64];

	if (text == NULL)
		return true;
	snprintf(msg, sizeof(msg), "Unexpected extra arguments to %s",
	    cmdname);
	send_line(s, "BAD", msg);
	return false;
}

/* Answers a GET (but FETCH) from the shadow. */
static void
answer_get(struct session *s, const struct dlist *entry)
{
	struct getcmd_ctx gc = { s->sieve_mailbox };
	bool refused = s->usync.refused;
	char why[256];
	enum result_code code;

	buf_reset(&s->reply);
	if (strcmp(entry->key, "FULLMAILBOX") == 0) {
		struct getcmd_full *f = NULL;

		code = getcmd_full_answer(s->store->shadow, entry, &s->reply,
		    &f, why, sizeof(why));
		if (f != NULL) {
			conn_write(s->conn, s->reply.s, s->reply.len);
			s->busy = true;
			s->pump = getpump_full(&f);
			pump(s);
			return;
		}
	} else
		code = getcmd_answer(s->store->shadow, entry, &gc, &s->reply,
		    why, sizeof(why));
	if (code != RESULT_OK)
		log_info("store=%s event=refused cmd=GET sub=%s code=%s "
		    "reason=\"%s\"", store_name(s), entry->key,
		    result_name(code), why);
	count_result(s, code);
	csync_print_result(&s->reply, code);
	conn_write(s->conn, s->reply.s, s->reply.len);
	/* GET USER may find no such user: the sync creates it. */
	if (strcmp(entry->key, "USER") == 0 &&
	    code == RESULT_MAILBOX_NONEXISTENT)
		s->usync.refused = refused;
}

/* The replica was asked (relay/ingest/seed.c): the GET can be answered now. */
static void
seed_done(void *arg)
{
	struct session *s = arg;

	s->pending--;
	if (!s->gone)
		answer_get(s, s->seed_get);
	order_release(s->store);
	if (!s->gone && s->pump == NULL)	/* else once it is sent */
		unbusy(s);
	dlist_free(&s->seed_get);
	session_maybe_free(s);
}

/* Runs a GET or APPLY in the store's turn; may take *entry. */
static void
run_command(struct session *s, const char *verb, struct dlist **entry)
{
	if (strcmp(verb, "APPLY") == 0) {
		cmd_apply(s, *entry);
	} else if (strcmp((*entry)->key, "FETCH") == 0) {
		cmd_get_fetch(s, *entry);
	} else {
		/* What the relay never heard of may be on a replica. */
		s->busy = true;
		s->pending++;
		if (seed_start(s->store, *entry, seed_done, s)) {
			order_hold(s->store, s);	/* until seed_done */
			s->seed_get = *entry;
			*entry = NULL;
		} else {
			s->busy = false;
			s->pending--;
			answer_get(s, *entry);
		}
	}
}

/* The turn of a command that waited (order.c). */
static void
run_queued(void *member)
{
	struct session *s = member;
	struct dlist *entry = s->queued;

	s->queued = NULL;
	s->busy = false;
	run_command(s, s->queued_verb, &entry);
	bigbox_done(&s->big);
	dlist_free(&entry);
	if (!s->busy)
		unbusy(s);
}

static void
handle_line(struct session *s)
{
	const char *verb = csync_reader_verb(s->reader);
	const char *text = csync_reader_text(s->reader);
	struct dlist *entry = csync_reader_take_entry(s->reader);
	char *k;
	bool preauth = s->store == NULL && !s->sasl_stepping;

	bigbox_line_end(&s->big, entry);	/* its records back, if few */
	/* Sub-command names are case-insensitive, as Cyrus's ucase(). */
	for (k = entry ? entry->key : NULL; k && *k; k++)
		*k = (char)toupper((unsigned char)*k);
	s->commands++;
	if (s->sasl_stepping) {
		auth_step(s, text);
		dlist_free(&entry);
		return;
	}
	log_debug("conn=%lu store=%s cmd=%s%s%s", conn_id(s->conn),
	    store_name(s), verb, entry ? " " : "", entry ? entry->key : "");
	usersync_follow(&s->usync, s->store, s, verb, entry);
	if (*verb == '\0') {
		send_line(s, "BAD", "Null command");
	} else if (strcmp(verb, "NOOP") == 0) {
		if (no_args(s, text, "Noop"))
			send_line(s, "OK", "Noop completed");
	} else if (strcmp(verb, "RESTART") == 0) {
		if (no_args(s, text, "Restart"))
			send_line(s, "OK", "Restarting");
	} else if (strcmp(verb, "EXIT") == 0) {
		if (no_args(s, text, "Exit")) {
			s->exited = true;	/* nothing after it is read */
			send_line(s, "OK", "Finished");
			conn_close(s->conn, "client sent EXIT", false);
		}
	} else if (strcmp(verb, "AUTHENTICATE") == 0) {
		cmd_authenticate(s, text);
	} else if (strcmp(verb, "COMPRESS") == 0) {
		cmd_compress(s, text);
	} else if (strcmp(verb, "STARTTLS") == 0 && s->params->tls_ctx) {
		cmd_starttls(s, text);
	} else if (s->store == NULL && (verb[0] == 'A' || verb[0] == 'G' ||
	    verb[0] == 'R')) {
		log_info("conn=%lu peer=%s event=refused cmd=%s "
		    "reason=unauthenticated", conn_id(s->conn),
		    conn_peer(s->conn), verb);
		send_line(s, "NO", "Please authenticate first");
	} else if (s->store != NULL && entry != NULL &&
	    (strcmp(verb, "GET") == 0 || strcmp(verb, "APPLY") == 0)) {
		if (order_enter(s->store, s, run_queued)) {
			run_command(s, verb, &entry);
		} else {
			/* Another session's command is in flight: wait. */
			snprintf(s->queued_verb, sizeof(s->queued_verb), "%s",
			    verb);
			s->queued = entry;
			entry = NULL;
			s->busy = true;
		}
	} else if (s->store != NULL && strcmp(verb, "RESTORE") == 0) {
		log_info("store=%s event=refused cmd=RESTORE reason=\"not "
		    "supported by the relay\"", store_name(s));
		send_result(s, RESULT_PROTOCOL_ERROR);
	} else {
		log_info("conn=%lu peer=%s event=refused cmd=%.64s "
		    "reason=unknown_command", conn_id(s->conn),
		    conn_peer(s->conn), verb);
		send_line(s, "BAD", "IMAP_PROTOCOL_ERROR Unrecognized command");
	}
	dlist_free(&entry);
	if (s->queued == NULL)
		bigbox_done(&s->big);
	if (preauth && !s->gone)
		guard_after_line(s->ge, s->reader, verb, text);
	if (s->store != NULL)
		s->store->master_last_command = ev_now(s->store->loop);
}

static void
handle_bad_line(struct session *s)
{
	const char *verb = csync_reader_verb(s->reader);
	char msg[128];

	if (csync_reader_bad(s->reader) == CSYNC_BAD_LITERAL) {
		guard_literal_refused(s->ge);
		return;
	}
	log_info("conn=%lu peer=%s store=%s event=bad_command cmd=%.64s "
	    "error=\"%s\"", conn_id(s->conn), conn_peer(s->conn), store_name(s),
	    verb, csync_reader_errstr(s->reader));
	if (s->sasl_stepping) {
		s->sasl_stepping = false;
		send_line(s, "NO", "Error reading client response: line too "
		    "long");
	} else if (csync_reader_bad(s->reader) == CSYNC_BAD_WORD &&
	    s->store != NULL) {
		send_line(s, "BAD", "IMAP_PROTOCOL_ERROR Command word too long");
	} else if (s->store == NULL && strcmp(verb, "AUTHENTICATE") == 0) {
		login_failed(s, "overflowed buffer");	/* as Cyrus */
	} else if (s->store == NULL && (verb[0] == 'A' || verb[0] == 'G' ||
	    verb[0] == 'R')) {
		send_line(s, "NO", "Please authenticate first");
	} else if (strcmp(verb, "GET") == 0 || strcmp(verb, "APPLY") == 0 ||
	    strcmp(verb, "RESTORE") == 0) {
		snprintf(msg, sizeof(msg), "IMAP_PROTOCOL_ERROR Failed to parse "
		    "%s line", verb);
		send_line(s, "BAD", msg);
	} else {
		send_line(s, "BAD", "IMAP_PROTOCOL_ERROR Unrecognized command");
	}
	/* Bodies that arrived whole before the line failed are stored
	 * (harmlessly: nothing refers to them); their replies are not. */
	s->message_done = false;
	bigbox_done(&s->big);
	if (s->store != NULL)
		s->store->master_last_command = ev_now(s->store->loop);
}

static size_t
on_input(struct conn *c, void *arg, const char *data, size_t n)
{
	struct session *s = arg;
	size_t off = 0, used;

	while (off < n && !s->busy && !s->throttled && !s->exited &&
	    !s->gone) {
		enum csync_status st = csync_reader_feed(s->reader, data + off,
		    n - off, &used);

		off += used;
		s->in_command = st == CSYNC_NEED_MORE && (used > 0 ||
		    s->in_command);
		if (st == CSYNC_LINE)
			handle_line(s);
		else if (st == CSYNC_BAD_LINE)
			handle_bad_line(s);
		if (s->switched) {
			/* What follows is in the new transport's framing. */
			s->switched = false;
			return off;
		}
		if (s->store && journal_pending_bytes(s->store->journal) >
		    JOURNAL_HIGH)
			s->throttled = true;
		if (st == CSYNC_NEED_MORE)
			break;
	}
	if (s->busy || s->throttled)
		conn_pause(c, true);
	watch_stall(s);
	return off;
}

static void
on_close(struct conn *c, void *arg, const char *reason)
{
	struct session *s = arg;

	if (s->store != NULL || guard_log_ok(s->params->guard))
		log_info("conn=%lu peer=%s event=disconnect store=%s "
		    "commands=%lu reason=\"%s\"", conn_id(c), conn_peer(c),
		    store_name(s), s->commands, reason);
	s->gone = true;
	stall_stop(&s->stall);
	guard_leave(&s->ge);
	posidx_free(&s->posidx);
	getpump_free(&s->pump);
	if (s->body) {
		journal_body_abort(s->body);
		s->body = NULL;
	}
	if (s->store && order_leave(s->store, s) == 0) {
		/* Its pages are cheap to read again; a used store must not
		 * keep up to SQLite's 2 MB cache while no master talks to it. */
		shadow_release_memory(s->store->shadow);
	}
}

static void
session_maybe_free(struct session *s)
{
	if (!s->gone || s->pending > 0 || s->conn != NULL)
		return;
	csync_reader_free(&s->reader);
	saslsrv_free(&s->sasl);
	buf_free(&s->reply);
	free(s->user);
	usersync_free(&s->usync);
	bigbox_free(&s->big);
	dlist_free(&s->queued);
	free(s->sasl_local);
	free(s->sasl_remote);
	free(s);
}

static void
on_free(void *arg)
{
	struct session *s = arg;

	s->conn = NULL;
	session_maybe_free(s);
}

static const struct conn_ops session_ops = { on_input, on_close, on_free,
	on_drain, false };

void
session_start(struct ev_loop *loop, int fd, const char *peer,
    const char *sasl_local, const char *sasl_remote,
    const struct session_params *params)
{
	struct session *s = xcalloc(1, sizeof(*s));
	struct dlist_file_sink sink = file_sink_proto;

	s->params = params;
	s->sasl_local = xstrdup(sasl_local);
	s->sasl_remote = xstrdup(sasl_remote);
	sink.arg = s;
	s->reader = csync_reader_new(CSYNC_SERVER, &params->preauth, &sink);
	csync_reader_set_preauth(s->reader, true);
	buf_init(&s->reply, 0);
	guard_admit(params->guard, peer);
	s->conn = conn_new(loop, fd, peer, 0, &session_ops, s); /* guarded */
	s->ge = guard_enter(params->guard, s->conn, login_pause_done, s);
	stall_init(&s->stall, loop, s->conn);
	new_sasl(s);
	if (guard_log_ok(params->guard))
		log_info("conn=%lu peer=%s event=connect", conn_id(s->conn),
		    peer);
	send_banner(s);
}

/* Nothing of the session waits on the journal or the shadow. */
static bool
session_quiet(const struct session *s)
{
	return !s->busy && s->pending == 0 && s->body == NULL &&
	    s->bodies_pending == 0;
}
