/*
 * saslsrv.c -- the Cyrus SASL server glue.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "lib/xmalloc.h"
#include "protocol/saslsrv.h"

struct saslsrv {
	sasl_conn_t *conn;
	char *mechs;
};

static struct saslsrv_options options;

static int
cb_getopt(void *context, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	const char *v = options.getopt ? options.getopt(options.arg, option) :
	    NULL;

	if (v == NULL || *v == '\0')
		return SASL_FAIL;
	*result = v;
	if (len)
		*len = (unsigned)strlen(v);
	return SASL_OK;
}

static sasl_callback_t callbacks[] = {
	{ SASL_CB_GETOPT, (int (*)(void))(void (*)(void))cb_getopt, NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

int
saslsrv_init(const char *appname, const struct saslsrv_options *opts,
    char *err, size_t err_len)
{
	int r;

	options = *opts;
	r = sasl_server_init(callbacks, appname);
	if (r != SASL_OK) {
		snprintf(err, err_len, "SASL initialisation failed: %s",
		    sasl_errstring(r, NULL, NULL));
		return -1;
	}
	return 0;
}

struct saslsrv *
saslsrv_new(const char *service, const char *servername, const char *local,
    const char *remote, bool plaintext, char *err, size_t err_len)
{
	struct saslsrv *s = xcalloc(1, sizeof(*s));
	sasl_security_properties_t sec;
	const char *list = NULL;
	unsigned len = 0;
	int count = 0, r;

	r = sasl_server_new(service, servername, NULL, local, remote, NULL, 0,
	    &s->conn);
	if (r != SASL_OK) {
		snprintf(err, err_len, "SASL: %s", sasl_errstring(r, NULL,
		    NULL));
		free(s);
		return NULL;
	}
	memset(&sec, 0, sizeof(sec));
	sec.maxbufsize = 0;
	sec.min_ssf = 0;
	sec.max_ssf = 0;	/* no security layers */
	/* Never anonymous: the identity is what selects a store. */
	sec.security_flags = SASL_SEC_NOANONYMOUS |
	    (plaintext ? 0 : SASL_SEC_NOPLAINTEXT);
	sasl_setprop(s->conn, SASL_SEC_PROPS, &sec);
	if (sasl_listmech(s->conn, NULL, "", " ", "", &list, &len, &count) ==
	    SASL_OK && list != NULL)
		s->mechs = xstrdup(list);
	else
		s->mechs = xstrdup("");
	return s;
}

void
saslsrv_free(struct saslsrv **sp)
{
	struct saslsrv *s = *sp;

	if (s == NULL)
		return;
	sasl_dispose(&s->conn);
	free(s->mechs);
	free(s);
	*sp = NULL;
}

const char *
saslsrv_mechs(struct saslsrv *s)
{
	return s->mechs;
}

static enum saslsrv_status
outcome(struct saslsrv *s, int r, const char *out, unsigned outlen,
    struct buf *challenge, const char **why)
{
	if (r == SASL_OK)
		return SASLSRV_OK;
	if (r == SASL_CONTINUE) {
		unsigned cap = outlen * 4 / 3 + 8, got = 0;

		buf_reset(challenge);
		if (buf_reserve(challenge, cap) < 0 ||
		    sasl_encode64(out ? out : "", outlen, challenge->s, cap,
		    &got) != SASL_OK) {
			*why = "challenge too large";
			return SASLSRV_FAIL;
		}
		challenge->len = got;
		challenge->s[got] = '\0';
		return SASLSRV_CONTINUE;
	}
	*why = sasl_errstring(r, NULL, NULL);
	if (r == SASL_NOMECH || r == SASL_TOOWEAK)
		*why = "no mechanism available";
	else if (*why == NULL || **why == '\0')
		*why = "authentication failure";
	return SASLSRV_FAIL;
}

/* Decodes base64 text ("=" is empty) into out; -1 if malformed. */
static int
decode(const char *b64, struct buf *out, unsigned *len)
{
	size_t n = strlen(b64);

	buf_reset(out);
	if (strcmp(b64, "=") == 0) {
		*len = 0;
		buf_reserve(out, 1);
		return 0;
	}
	if (buf_reserve(out, n) < 0 ||
	    sasl_decode64(b64, (unsigned)n, out->s, (unsigned)n + 1, len) !=
	    SASL_OK)
		return -1;
	return 0;
}

enum saslsrv_status
saslsrv_start(struct saslsrv *s, const char *mech, const char *initial,
    struct buf *challenge, const char **why)
{
	struct buf in = BUF_INIT;
	const char *out = NULL;
	unsigned inlen = 0, outlen = 0;
	enum saslsrv_status st;
	int r;

	if (initial != NULL && decode(initial, &in, &inlen) < 0) {
		buf_free(&in);
		*why = "bad protocol / cancel";
		return SASLSRV_FAIL;
	}
	r = sasl_server_start(s->conn, mech, initial ? in.s : NULL, inlen,
	    &out, &outlen);
	st = outcome(s, r, out, outlen, challenge, why);
	buf_free(&in);
	return st;
}

enum saslsrv_status
saslsrv_step(struct saslsrv *s, const char *response, struct buf *challenge,
    const char **why)
{
	struct buf in = BUF_INIT;
	const char *out = NULL;
	unsigned inlen = 0, outlen = 0;
	enum saslsrv_status st;
	int r;

	if (decode(response, &in, &inlen) < 0) {
		buf_free(&in);
		*why = "bad protocol / cancel";
		return SASLSRV_FAIL;
	}
	r = sasl_server_step(s->conn, in.s, inlen, &out, &outlen);
	st = outcome(s, r, out, outlen, challenge, why);
	buf_free(&in);
	return st;
}

const char *
saslsrv_username(struct saslsrv *s)
{
	const void *u = NULL;

	if (sasl_getprop(s->conn, SASL_USERNAME, &u) != SASL_OK)
		return NULL;
	return u;
}
