/*
 * session.h -- the master-facing csync server session.
 *
 * A session speaks csync to one master connection with Cyrus's exact
 * strings (sync-protocol.md section 2): banner, SASL authentication
 * whose identity selects the store, then GETs answered from the store's
 * shadow and APPLYs checked against it, journaled and applied.  A reply
 * that reports a change is only sent once the change is durable.
 */
#ifndef SR_SESSION_H
#define SR_SESSION_H

#include <stdbool.h>

#include <ev.h>

#include "protocol/dlist_parse.h"
#include "relay/ingest/guard.h"

struct session_params {
	const char *servername;
	double idle_timeout;		/* seconds, once logged in */
	double master_timeout;		/* silence allowed mid-command */
	bool allowplaintext;		/* offer PLAIN/LOGIN without TLS */
	bool compress;			/* offer COMPRESS DEFLATE */
	void *tls_ctx;			/* SSL_CTX for STARTTLS, or NULL */
	bool tls_required;		/* no authentication before TLS */
	struct dlist_limits preauth;	/* limits before authentication */
	struct dlist_limits limits;	/* limits after authentication */
	struct guard_params guard_limits;	/* before authentication */
	struct guard *guard;		/* the listener's (guard.h) */
};

/*
 * Takes over an accepted fd: sends the banner and serves commands.
 * local and peer are "ip;port" strings for SASL and "ip:port" for logs.
 */
void session_start(struct ev_loop *loop, int fd, const char *peer,
    const char *sasl_local, const char *sasl_remote,
    const struct session_params *params);

#endif
