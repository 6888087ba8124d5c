/*
 * session.h -- the master-facing csync server session.
 *
 * A session reads csync commands from one connection and answers them
 * with Cyrus's exact strings (sync-protocol.md section 2).  This build
 * answers the connection-level commands (NOOP, RESTART, EXIT) and refuses
 * everything that needs authentication, the way a sync_server with no
 * usable SASL mechanism does.
 */
#ifndef SR_SESSION_H
#define SR_SESSION_H

#include <ev.h>

#include "protocol/dlist_parse.h"

struct session_params {
	const char *servername;
	double idle_timeout;		/* seconds */
	struct dlist_limits preauth;	/* limits before authentication */
	struct dlist_limits limits;	/* limits after authentication */
};

/* Takes over an accepted fd: sends the banner and serves commands. */
void session_start(struct ev_loop *loop, int fd, const char *peer,
    const struct session_params *params);

#endif
