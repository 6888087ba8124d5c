/*
 * saslsrv.h -- server-side authentication through Cyrus SASL.
 *
 * The same library and options Cyrus uses (sasl_pwcheck_method,
 * sasl_auxprop_plugin, sasl_sasldb_path, sasl_mech_list, ...), so an
 * operator's sasldb or saslauthd setup works unchanged.  Mechanisms with
 * a security layer are never negotiated (maximum SSF 0): after
 * authentication the stream stays as it is, or as TLS made it.
 * Challenges and responses are exchanged in base64, as on the wire.
 */
#ifndef SR_SASLSRV_H
#define SR_SASLSRV_H

#include <stdbool.h>

#include "lib/buf.h"

/* Where SASL's options come from: getopt("mech_list") etc., or NULL. */
struct saslsrv_options {
	const char *(*getopt)(void *arg, const char *option);
	void *arg;
};

enum saslsrv_status { SASLSRV_OK, SASLSRV_CONTINUE, SASLSRV_FAIL };

struct saslsrv;

/*
 * Initialises the library once per process (app name for the SASL
 * config file lookup).  opts is kept.  0 or -1 with err set.
 */
int saslsrv_init(const char *appname, const struct saslsrv_options *opts,
    char *err, size_t err_len);
/*
 * Starts one authentication exchange for a connection.  servername is
 * the realm for sasldb lookups (as Cyrus's servername); local and
 * remote are "ip;port".  plaintext: whether mechanisms that send the
 * password in clear may be offered (allowplaintext, or TLS is active).
 * Returns NULL with err set.
 */
struct saslsrv *saslsrv_new(const char *service, const char *servername,
    const char *local, const char *remote, bool plaintext, char *err,
    size_t err_len);
void saslsrv_free(struct saslsrv **sp);
/* The mechanisms on offer, space-separated ("" if none). */
const char *saslsrv_mechs(struct saslsrv *s);
/*
 * Starts with mech and an optional initial response (base64, "=" for
 * empty, NULL for none).  On CONTINUE, challenge holds the base64
 * challenge to send after "+ ".  On FAIL, *why is the SASL error text.
 */
enum saslsrv_status saslsrv_start(struct saslsrv *s, const char *mech,
    const char *initial, struct buf *challenge, const char **why);
/* The next step with a base64 response line. */
enum saslsrv_status saslsrv_step(struct saslsrv *s, const char *response,
    struct buf *challenge, const char **why);
/* After OK: the authenticated user name. */
const char *saslsrv_username(struct saslsrv *s);

#endif
