/*
 * listener.h -- a listening TCP socket that starts a session per client.
 */
#ifndef SR_LISTENER_H
#define SR_LISTENER_H

#include <stddef.h>

#include <ev.h>

#include "relay/ingest/session.h"

struct listener;

/*
 * Binds host:port and starts accepting on loop.  Each accepted client
 * gets session_start() with *params (the pointer is kept: the caller may
 * update the struct, e.g. on reload).  Returns NULL with err set.
 */
struct listener *listener_new(struct ev_loop *loop, const char *host,
    unsigned port, const struct session_params *params,
    size_t *max_connections, char *err, size_t err_len);
/*
 * Returns a non-blocking, close-on-exec TCP socket bound to host:port
 * (host "": every address) and listening, with the bound address
 * as "host:port" in address; or -1 with err set.  The caller owns it.
 */
int listener_socket(const char *host, unsigned port, char *address,
    size_t address_len, char *err, size_t err_len);
/* Stops accepting and closes the socket; NULL-safe; sets *lp NULL. */
void listener_free(struct listener **lp);
/* The bound address, "host:port" (the real port when 0 was asked). */
const char *listener_address(const struct listener *l);

#endif
