/*
 * saslcli.c -- the Cyrus SASL client glue.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "lib/xmalloc.h"
#include "protocol/saslcli.h"

struct saslcli {
	sasl_conn_t *conn;
	char *authname;
	char *realm;
	sasl_secret_t *secret;
	sasl_callback_t cbs[5];
};

static int
cb_simple(void *context, int id, const char **result, unsigned *len)
{
	struct saslcli *c = context;

	switch (id) {
	case SASL_CB_AUTHNAME:
		*result = c->authname;
		break;
	case SASL_CB_USER:
		*result = "";		/* no authorization id, as sync_client */
		break;
	default:
		return SASL_BADPARAM;
	}
	if (len)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

static int
cb_pass(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
	struct saslcli *c = context;

	if (id != SASL_CB_PASS)
		return SASL_BADPARAM;
	*psecret = c->secret;
	return SASL_OK;
}

static int
cb_realm(void *context, int id, const char **avail, const char **result)
{
	struct saslcli *c = context;

	*result = c->realm;
	return SASL_OK;
}

int
saslcli_init(char *err, size_t err_len)
{
	int r = sasl_client_init(NULL);

	if (r != SASL_OK) {
		snprintf(err, err_len, "SASL client initialisation failed: %s",
		    sasl_errstring(r, NULL, NULL));
		return -1;
	}
	return 0;
}

struct saslcli *
saslcli_new(const char *host, const char *authname, const char *password,
    const char *realm, const char *local, const char *remote, char *err,
    size_t err_len)
{
	struct saslcli *c = xcalloc(1, sizeof(*c));
	size_t plen = strlen(password);
	sasl_security_properties_t sec;
	int r;

	c->authname = xstrdup(authname);
	c->realm = realm && *realm ? xstrdup(realm) : NULL;
	c->secret = xcalloc(1, sizeof(*c->secret) + plen + 1);
	c->secret->len = plen;
	memcpy(c->secret->data, password, plen);
	c->cbs[0] = (sasl_callback_t){ SASL_CB_AUTHNAME,
		(int (*)(void))(void (*)(void))cb_simple, c };
	c->cbs[1] = (sasl_callback_t){ SASL_CB_USER,
		(int (*)(void))(void (*)(void))cb_simple, c };
	c->cbs[2] = (sasl_callback_t){ SASL_CB_PASS,
		(int (*)(void))(void (*)(void))cb_pass, c };
	c->cbs[3] = (sasl_callback_t){ c->realm ? SASL_CB_GETREALM :
		SASL_CB_LIST_END, (int (*)(void))(void (*)(void))cb_realm, c };
	c->cbs[4] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	r = sasl_client_new("csync", host, local, remote, c->cbs, 0, &c->conn);
	if (r != SASL_OK) {
		snprintf(err, err_len, "SASL: %s", sasl_errstring(r, NULL,
		    NULL));
		saslcli_free(&c);
		return NULL;
	}
	memset(&sec, 0, sizeof(sec));
	sec.max_ssf = 0;	/* no security layers */
	sasl_setprop(c->conn, SASL_SEC_PROPS, &sec);
	return c;
}

void
saslcli_free(struct saslcli **cp)
{
	struct saslcli *c = *cp;

	if (c == NULL)
		return;
	if (c->conn)
		sasl_dispose(&c->conn);
	if (c->secret) {
		memset(c->secret->data, 0, c->secret->len);
		free(c->secret);
	}
	free(c->authname);
	free(c->realm);
	free(c);
	*cp = NULL;
}

static int
encode(const char *out, unsigned outlen, struct buf *b64)
{
	unsigned cap = outlen * 4 / 3 + 8, got = 0;

	buf_reset(b64);
	if (buf_reserve(b64, cap) < 0 ||
	    sasl_encode64(out ? out : "", outlen, b64->s, cap, &got) != SASL_OK)
		return -1;
	b64->len = got;
	b64->s[got] = '\0';
	return 0;
}

enum saslsrv_status
saslcli_start(struct saslcli *c, const char *mechs, const char **mech,
    struct buf *initial, const char **why)
{
	const char *out = NULL;
	unsigned outlen = 0;
	int r;

	buf_reset(initial);
	r = sasl_client_start(c->conn, mechs, NULL, &out, &outlen, mech);
	if (r != SASL_OK && r != SASL_CONTINUE) {
		*why = sasl_errdetail(c->conn);
		return SASLSRV_FAIL;
	}
	if (out != NULL) {
		if (outlen == 0)
			buf_puts(initial, "=");
		else if (encode(out, outlen, initial) < 0) {
			*why = "initial response too large";
			return SASLSRV_FAIL;
		}
	}
	return r == SASL_OK ? SASLSRV_OK : SASLSRV_CONTINUE;
}

enum saslsrv_status
saslcli_step(struct saslcli *c, const char *challenge, struct buf *response,
    const char **why)
{
	struct buf in = BUF_INIT;
	const char *out = NULL;
	unsigned inlen = 0, outlen = 0;
	size_t n = strlen(challenge);
	int r;

	if (buf_reserve(&in, n + 1) < 0 ||
	    sasl_decode64(challenge, (unsigned)n, in.s, (unsigned)n + 1,
	    &inlen) != SASL_OK) {
		buf_free(&in);
		*why = "bad challenge from the server";
		return SASLSRV_FAIL;
	}
	r = sasl_client_step(c->conn, in.s, inlen, NULL, &out, &outlen);
	buf_free(&in);
	if (r != SASL_OK && r != SASL_CONTINUE) {
		*why = sasl_errdetail(c->conn);
		return SASLSRV_FAIL;
	}
	if (encode(out, outlen, response) < 0) {
		*why = "response too large";
		return SASLSRV_FAIL;
	}
	return r == SASL_OK ? SASLSRV_OK : SASLSRV_CONTINUE;
}
