/*
 * tlsctx.h -- OpenSSL contexts for the relay's TLS.
 */
#ifndef SR_TLSCTX_H
#define SR_TLSCTX_H

#include <stddef.h>

/*
 * Returns a server SSL_CTX (as void *) using the PEM certificate chain
 * and key files, TLS 1.2 or later; ca_file (may be NULL or "") is the
 * CA bundle for client certificates, which are requested but not
 * required.  NULL with err set on failure.
 */
void *tlsctx_server_new(const char *cert, const char *key, const char *ca_file,
    char *err, size_t err_len);
/*
 * Returns a client SSL_CTX (as void *) for links to replicas: TLS 1.2 or
 * later, the peer's certificate required and verified against ca_file,
 * or the system's default CA paths when ca_file is NULL or "".  The name
 * checked in the certificate is set per connection (conn.c).  NULL with
 * err set on failure.
 */
void *tlsctx_client_new(const char *ca_file, char *err, size_t err_len);
/* Frees *ctxp (an SSL_CTX; SSLs made from it keep their reference). */
void tlsctx_free(void **ctxp);

#endif
