/*
 * saslcli.h -- client-side authentication through Cyrus SASL, as a relay
 * logging in to a replica's sync_server.
 *
 * Like sync_client, it lets the library pick the best mechanism among
 * those the server offers that it can do with the configured name and
 * password (an optional mechanism list narrows the choice); no security
 * layer is negotiated.  Exchanges are in base64, as on the wire.
 */
#ifndef SR_SASLCLI_H
#define SR_SASLCLI_H

#include <stdbool.h>

#include "lib/buf.h"
#include "protocol/saslsrv.h"

struct saslcli;

/* Initialises the client side of the library once per process. */
int saslcli_init(char *err, size_t err_len);
/*
 * Prepares an exchange with server host ("replica.example.com"; the
 * realm defaults to it), as authname with password; realm may be NULL
 * or "".  local and remote are "ip;port".  NULL with err set.
 */
struct saslcli *saslcli_new(const char *host, const char *authname,
    const char *password, const char *realm, const char *local,
    const char *remote, char *err, size_t err_len);
void saslcli_free(struct saslcli **cp);
/*
 * Starts with the server's mechanism list ("PLAIN LOGIN ...").  On
 * success *mech is the chosen mechanism and initial holds the base64
 * initial response ("=" for an empty one) or is empty if there is none.
 * Returns SASLSRV_CONTINUE or SASLSRV_OK (the exchange may complete),
 * or SASLSRV_FAIL with *why.
 */
enum saslsrv_status saslcli_start(struct saslcli *c, const char *mechs,
    const char **mech, struct buf *initial, const char **why);
/* Answers a base64 challenge (after "+ ") with a base64 response. */
enum saslsrv_status saslcli_step(struct saslcli *c, const char *challenge,
    struct buf *response, const char **why);

#endif
