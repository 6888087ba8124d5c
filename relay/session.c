/*
 * session.c -- csync server session: banner, command dispatch, replies.
 *
 * Input flows conn -> csync_reader -> one command at a time -> a reply
 * queued on the conn.  Commands are strictly one in flight, as in csync.
 * Every refusal is a protocol reply plus a log line with the session's
 * conn= and peer= fields.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/csync.h"
#include "relay/conn.h"
#include "relay/session.h"

struct session {
	struct conn *conn;
	struct csync_reader *reader;
	struct buf reply;
	unsigned long commands;
};

static void
reply(struct session *s, const char *word, const char *text)
{
	buf_reset(&s->reply);
	csync_print_final(&s->reply, word, text);
	conn_write(s->conn, s->reply.s, s->reply.len);
}

/* NOOP, RESTART and EXIT take no arguments. */
static bool
no_args(struct session *s, const char *text, const char *cmdname)
{
	char msg[64];

	if (text == NULL)
		return true;
	snprintf(msg, sizeof(msg), "Unexpected extra arguments to %s",
	    cmdname);
	reply(s, "BAD", msg);
	return false;
}

static void
handle_line(struct session *s)
{
	const char *verb = csync_reader_verb(s->reader);
	const char *text = csync_reader_text(s->reader);
	struct dlist *entry = csync_reader_take_entry(s->reader);

	s->commands++;
	log_debug("conn=%lu peer=%s cmd=%s", conn_id(s->conn),
	    conn_peer(s->conn), verb);
	if (*verb == '\0') {
		reply(s, "BAD", "Null command");
	} else if (strcmp(verb, "NOOP") == 0) {
		if (no_args(s, text, "Noop"))
			reply(s, "OK", "Noop completed");
	} else if (strcmp(verb, "RESTART") == 0) {
		if (no_args(s, text, "Restart"))
			reply(s, "OK", "Restarting");
	} else if (strcmp(verb, "EXIT") == 0) {
		if (no_args(s, text, "Exit")) {
			reply(s, "OK", "Finished");
			conn_close(s->conn, "client sent EXIT", false);
		}
	} else if (strcmp(verb, "AUTHENTICATE") == 0) {
		/* No mechanism is offered yet: refuse like sync_server. */
		log_warnx("conn=%lu peer=%s event=auth_refused reason=\"no SASL "
		    "mechanism is available\"", conn_id(s->conn),
		    conn_peer(s->conn));
		if (text == NULL)
			reply(s, "BAD", "Missing required argument to "
			    "Authenticate");
		else
			reply(s, "NO", "no mechanism available");
	} else if (strcmp(verb, "COMPRESS") == 0) {
		if (text == NULL)
			reply(s, "BAD", "Missing required argument to Compress");
		else
			reply(s, "NO", "Compression is not enabled");
	} else if (verb[0] == 'A' || verb[0] == 'G' || verb[0] == 'R') {
		log_info("conn=%lu peer=%s event=refused cmd=%s "
		    "reason=unauthenticated", conn_id(s->conn),
		    conn_peer(s->conn), verb);
		reply(s, "NO", "Please authenticate first");
	} else {
		log_info("conn=%lu peer=%s event=refused cmd=%.64s "
		    "reason=unknown_command", conn_id(s->conn),
		    conn_peer(s->conn), verb);
		reply(s, "BAD", "IMAP_PROTOCOL_ERROR Unrecognized command");
	}
	dlist_free(&entry);
}

static void
handle_bad_line(struct session *s)
{
	const char *verb = csync_reader_verb(s->reader);

	log_info("conn=%lu peer=%s event=bad_command cmd=%.64s error=\"%s\"",
	    conn_id(s->conn), conn_peer(s->conn), verb,
	    csync_reader_errstr(s->reader));
	if (csync_reader_bad(s->reader) == CSYNC_BAD_WORD)
		reply(s, "BAD", "IMAP_PROTOCOL_ERROR Command word too long");
	else if (verb[0] == 'A' || verb[0] == 'G' || verb[0] == 'R')
		reply(s, "NO", "Please authenticate first");
	else
		reply(s, "BAD", "IMAP_PROTOCOL_ERROR Unrecognized command");
}

static size_t
on_input(struct conn *c, void *arg, const char *data, size_t n)
{
	struct session *s = arg;
	size_t off = 0, used;

	while (off < n) {
		enum csync_status st = csync_reader_feed(s->reader, data + off,
		    n - off, &used);

		off += used;
		if (st == CSYNC_LINE)
			handle_line(s);
		else if (st == CSYNC_BAD_LINE)
			handle_bad_line(s);
		else
			break;
	}
	return off;
}

static void
on_close(struct conn *c, void *arg, const char *reason)
{
	struct session *s = arg;

	log_info("conn=%lu peer=%s event=disconnect commands=%lu reason=\"%s\"",
	    conn_id(c), conn_peer(c), s->commands, reason);
}

static void
on_free(void *arg)
{
	struct session *s = arg;

	csync_reader_free(&s->reader);
	buf_free(&s->reply);
	free(s);
}

static const struct conn_ops session_ops = { on_input, on_close, on_free };

void
session_start(struct ev_loop *loop, int fd, const char *peer,
    const struct session_params *params)
{
	struct session *s = xcalloc(1, sizeof(*s));
	struct buf banner = BUF_INIT;

	s->reader = csync_reader_new(CSYNC_SERVER, &params->preauth, NULL);
	buf_init(&s->reply, 0);
	s->conn = conn_new(loop, fd, peer, params->idle_timeout, &session_ops,
	    s);
	log_info("conn=%lu peer=%s event=connect", conn_id(s->conn), peer);
	buf_printf(&banner, "* OK %s syncrelay sync server %s\r\n",
	    params->servername, PACKAGE_VERSION);
	conn_write(s->conn, banner.s, banner.len);
	buf_free(&banner);
}
