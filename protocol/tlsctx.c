/*
 * tlsctx.c -- building OpenSSL contexts: one for the csync listener
 * (STARTTLS offered to masters), one per replica link (the relay as a
 * TLS client that verifies the replica's certificate).
 */
#include "autoconf.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "protocol/tlsctx.h"

static void
ssl_error(char *err, size_t err_len, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();

	snprintf(err, err_len, "%s %s: %s", what, path ? path : "",
	    e ? ERR_reason_error_string(e) : "unknown error");
	ERR_clear_error();
}

/* A context for method: TLS 1.2 or later, writes that may be partial. */
static SSL_CTX *
new_ctx(const SSL_METHOD *method, char *err, size_t err_len)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		ssl_error(err, err_len, "cannot create a TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

void *
tlsctx_server_new(const char *cert, const char *key, const char *ca_file,
    char *err, size_t err_len)
{
	SSL_CTX *ctx = new_ctx(TLS_server_method(), err, err_len);

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_error(err, err_len, "tls_server_cert", cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, err_len, "tls_server_key", key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (ca_file && *ca_file &&
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		ssl_error(err, err_len, "tls_client_ca_file", ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void *
tlsctx_client_new(const char *ca_file, char *err, size_t err_len)
{
	SSL_CTX *ctx = new_ctx(TLS_client_method(), err, err_len);

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			ssl_error(err, err_len, "replica_tls_ca_file", ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_error(err, err_len, "the system's default CA paths", NULL);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
tlsctx_free(void **ctxp)
{
	if (*ctxp)
		SSL_CTX_free(*ctxp);
	*ctxp = NULL;
}
