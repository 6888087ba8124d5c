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
void tlsctx_free(void **ctxp);

#endif
