/*
 * conn.c -- buffered non-blocking sockets on libev.
 *
 * Reads go into a buffer that is offered to the owner until it consumes
 * nothing more; writes go out from a queue.  Closed conns sit on a
 * reaper list that an ev_idle watcher empties outside any callback of
 * theirs, so an owner may close its conn from inside on_input().
 *
 * TLS runs in either role over the same states: off, waiting for the
 * queued clear text to go out (the OK to STARTTLS, on the server side),
 * handshaking, on.  A client checks the server's certificate against the
 * name it connected to (a host name, or an IP address in the SAN).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <zlib.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/conn.h"

#define READ_CHUNK 65536

struct conn {
	struct ev_loop *loop;
	int fd;
	char *peer;
	unsigned long id;
	ev_io rio, wio;
	ev_timer idle;
	double timeout;
	struct buf in, out;
	size_t out_off;		/* bytes of out already sent */
	const struct conn_ops *ops;
	void *arg;
	bool closing;		/* close once out is empty */
	const char *close_reason;	/* static text for the log */
	bool dead;		/* on the reaper list */
	bool paused;		/* reading stopped for backpressure */
	bool owner_paused;	/* reading stopped by the owner */
	bool want_drain;	/* call on_drain once output runs low */
	bool offering;		/* inside offer_input() */
	enum { TLS_OFF, TLS_AFTER_FLUSH, TLS_HANDSHAKE, TLS_ON } tls;
	SSL *ssl;
	SSL_CTX *tls_ctx;
	int tls_want;		/* SSL_ERROR_WANT_READ/WRITE in handshake */
	bool tls_client;	/* we connect; we verify the peer */
	char *tls_servername;	/* the name or address to verify */
	void (*tls_done)(struct conn *c, void *arg, const char *err);
	bool deflating;		/* COMPRESS DEFLATE is on */
	bool inflate_leftover;	/* unconsumed input is compressed */
	z_stream zin, zout;
	struct conn *next, *prev;	/* all live conns */
	struct conn *next_dead;
};

static struct conn *conns;
static size_t nconns;
static struct conn *dead_conns;
static ev_idle reaper;
static unsigned long next_id = 1;

static void conn_kill(struct conn *c, const char *reason);

static void
reap_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	while (dead_conns != NULL) {
		struct conn *c = dead_conns;

		dead_conns = c->next_dead;
		if (c->ops->on_free)
			c->ops->on_free(c->arg);
		if (c->deflating) {
			inflateEnd(&c->zin);
			deflateEnd(&c->zout);
		}
		if (c->ssl)
			SSL_free(c->ssl);
		free(c->tls_servername);
		buf_free(&c->in);
		buf_free(&c->out);
		free(c->peer);
		free(c);
	}
	ev_idle_stop(loop, w);
}

static void
update_watchers(struct conn *c)
{
	size_t pending = c->out.len - c->out_off;

	if (c->dead)
		return;
	if (c->tls == TLS_HANDSHAKE) {
		/* The handshake says which way it waits. */
		if (c->tls_want == SSL_ERROR_WANT_WRITE) {
			ev_io_stop(c->loop, &c->rio);
			ev_io_start(c->loop, &c->wio);
		} else {
			ev_io_stop(c->loop, &c->wio);
			ev_io_start(c->loop, &c->rio);
		}
		return;
	}
	if (pending > 0)
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
	if (!c->paused && pending > CONN_OUT_HIGH)
		c->paused = true;
	else if (c->paused && pending < CONN_OUT_LOW)
		c->paused = false;
	if (c->paused || c->owner_paused || c->closing)
		ev_io_stop(c->loop, &c->rio);
	else
		ev_io_start(c->loop, &c->rio);
}

static void tls_handshake(struct conn *c);
static int tls_setup(struct conn *c);

/* Sends n bytes in the clear or through TLS: bytes sent, 0 if it would
 * block, -1 on failure (reason in *why). */
static ssize_t
raw_send(struct conn *c, const char *p, size_t n, const char **why)
{
	if (c->tls == TLS_ON) {
		int r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));

		if (r > 0)
			return r;
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
		case SSL_ERROR_WANT_READ:
			return 0;
		default:
			*why = "TLS write failed";
			return -1;
		}
	} else {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);

		if (r >= 0)
			return r;
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		*why = strerror(errno);
		return -1;
	}
}

static void
flush_out(struct conn *c)
{
	const char *why = NULL;

	if (c->tls == TLS_HANDSHAKE) {
		tls_handshake(c);
		return;
	}
	while (c->out_off < c->out.len) {
		ssize_t n = raw_send(c, c->out.s + c->out_off,
		    c->out.len - c->out_off, &why);

		if (n < 0) {
			conn_kill(c, why);
			return;
		}
		if (n == 0)
			break;
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out.len && c->tls == TLS_AFTER_FLUSH) {
		/* The clear-text OK is out: now the handshake. */
		buf_reset(&c->out);
		c->out_off = 0;
		c->tls = TLS_HANDSHAKE;
		if (tls_setup(c) < 0) {
			ERR_clear_error();
			c->tls_done(c, c->arg, "cannot set up TLS");
			conn_kill(c, "cannot set up TLS");
			return;
		}
		tls_handshake(c);
		return;
	}
	if (c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
		if (c->closing) {
			conn_kill(c, c->close_reason);
			return;
		}
	} else if (c->out_off > CONN_OUT_LOW) {
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	update_watchers(c);
	if (c->want_drain && !c->dead && c->ops->on_drain &&
	    c->out.len - c->out_off < CONN_OUT_LOW) {
		c->want_drain = false;
		c->ops->on_drain(c, c->arg);
	}
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	flush_out((struct conn *)w->data);
}

/* Adds bytes from the socket to the input, inflating if compressed. */
static int
deliver_input(struct conn *c, const char *p, size_t n)
{
	if (!c->deflating)
		return buf_append(&c->in, p, n) < 0 ? -1 : 0;
	c->zin.next_in = (Bytef *)(uintptr_t)p;
	c->zin.avail_in = (uInt)n;
	while (c->zin.avail_in > 0) {
		int r;

		if (buf_reserve(&c->in, READ_CHUNK) < 0)
			return -1;
		c->zin.next_out = (Bytef *)(c->in.s + c->in.len);
		c->zin.avail_out = READ_CHUNK;
		r = inflate(&c->zin, Z_SYNC_FLUSH);
		c->in.len += READ_CHUNK - c->zin.avail_out;
		c->in.s[c->in.len] = '\0';
		if (r != Z_OK && r != Z_BUF_ERROR)
			return -1;
		if (r == Z_BUF_ERROR && c->zin.avail_out != 0)
			break;
	}
	return 0;
}

static void
offer_input(struct conn *c)
{
	/*
	 * Never re-entered: an owner that finishes a command inside
	 * on_input() and kicks its conn would otherwise be offered the
	 * same, not yet consumed, bytes again.  The loop below goes on by
	 * itself once on_input() returns.
	 */
	if (c->offering)
		return;
	c->offering = true;
	while (!c->dead && !c->closing && c->in.len > 0) {
		size_t used = c->ops->on_input(c, c->arg, c->in.s, c->in.len);

		if (used > 0)
			buf_consume(&c->in, used);
		if (c->inflate_leftover) {
			/* What followed COMPRESS is compressed: inflate it. */
			struct buf raw = c->in;

			c->inflate_leftover = false;
			buf_init(&c->in, (size_t)64 << 20);
			if (raw.len && deliver_input(c, raw.s, raw.len) < 0) {
				buf_free(&raw);
				c->offering = false;
				conn_kill(c, "bad compressed data");
				return;
			}
			buf_free(&raw);
			continue;
		}
		if (used == 0)
			break;
	}
	c->offering = false;
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n;

	char raw[READ_CHUNK];

	if (c->tls == TLS_HANDSHAKE) {
		tls_handshake(c);
		return;
	}
	if (c->tls == TLS_AFTER_FLUSH) {
		/* Nothing is read between STARTTLS and the handshake. */
		ev_io_stop(loop, &c->rio);
		return;
	}
	do {
		if (c->tls == TLS_ON) {
			int r = SSL_read(c->ssl, raw, sizeof(raw));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_READ ||
				    e == SSL_ERROR_WANT_WRITE)
					break;
				conn_kill(c, e == SSL_ERROR_ZERO_RETURN ?
				    "peer closed the connection" :
				    "TLS read failed");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, raw, sizeof(raw), 0);
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					conn_kill(c, strerror(errno));
				return;
			}
			if (n == 0) {
				conn_kill(c, "peer closed the connection");
				return;
			}
		}
		if (deliver_input(c, raw, (size_t)n) < 0) {
			conn_kill(c, c->deflating ? "bad compressed data" :
			    "input buffer full");
			return;
		}
	} while (c->tls == TLS_ON && SSL_pending(c->ssl) > 0);
	ev_timer_again(loop, &c->idle);
	offer_input(c);
	if (!c->dead)
		flush_out(c);
}

static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_kill((struct conn *)w->data, "idle timeout");
}

/*
 * TCP keepalive on every connection, master's or replica's: a peer that
 * vanished without a word (power off, a dropped route) is noticed after
 * about two minutes of silence even when nothing is being sent.
 */
static void
set_keepalive(int fd)
{
	int on = 1, idle = 60, intvl = 10, cnt = 6;

	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
	    sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

struct conn *
conn_new(struct ev_loop *loop, int fd, const char *peer, double idle_timeout,
    const struct conn_ops *ops, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->fd = fd;
	set_keepalive(fd);
	c->peer = xstrdup(peer);
	c->id = next_id++;
	c->ops = ops;
	c->arg = arg;
	buf_init(&c->in, (size_t)64 << 20);
	buf_init(&c->out, 0);
	ev_io_init(&c->rio, read_cb, fd, EV_READ);
	ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_init(&c->idle, idle_cb);
	c->idle.data = c;
	conn_set_timeout(c, idle_timeout);
	ev_io_start(loop, &c->rio);
	if (!ev_is_active(&reaper))
		ev_idle_init(&reaper, reap_cb);
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	nconns++;
	return c;
}

size_t
conn_out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

void
conn_want_drain(struct conn *c)
{
	c->want_drain = true;
	update_watchers(c);
}

void
conn_pause(struct conn *c, bool paused)
{
	c->owner_paused = paused;
	update_watchers(c);
}

void
conn_kick(struct conn *c)
{
	if (c->dead)
		return;
	offer_input(c);
	if (!c->dead)
		flush_out(c);
}

void
conn_set_timeout(struct conn *c, double idle_timeout)
{
	c->timeout = idle_timeout;
	c->idle.repeat = idle_timeout;
	if (idle_timeout > 0)
		ev_timer_again(c->loop, &c->idle);
	else
		ev_timer_stop(c->loop, &c->idle);
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->dead)
		return;
	if (c->deflating) {
		/* Each write is flushed: a reply must not wait in zlib. */
		c->zout.next_in = (Bytef *)(uintptr_t)p;
		c->zout.avail_in = (uInt)n;
		do {
			size_t room = deflateBound(&c->zout, (uLong)n) + 64;

			if (buf_reserve(&c->out, room) < 0) {
				conn_kill(c, "output buffer full");
				return;
			}
			c->zout.next_out = (Bytef *)(c->out.s + c->out.len);
			c->zout.avail_out = (uInt)room;
			deflate(&c->zout, Z_SYNC_FLUSH);
			c->out.len += room - c->zout.avail_out;
		} while (c->zout.avail_out == 0 || c->zout.avail_in > 0);
		update_watchers(c);
		return;
	}
	if (buf_append(&c->out, p, n) < 0) {
		conn_kill(c, "output buffer full");
		return;
	}
	update_watchers(c);
}

/*
 * Makes the SSL for the handshake: the server side just accepts; the
 * client side sends the name (SNI, for a host name only) and checks the
 * certificate against it.  Returns 0 or -1.
 */
static int
tls_setup(struct conn *c)
{
	unsigned char addr[16];
	bool is_ip;

	c->ssl = SSL_new(c->tls_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (!c->tls_client) {
		SSL_set_accept_state(c->ssl);
		return 0;
	}
	SSL_set_connect_state(c->ssl);
	if (c->tls_servername == NULL)
		return 0;
	is_ip = inet_pton(AF_INET, c->tls_servername, addr) == 1 ||
	    inet_pton(AF_INET6, c->tls_servername, addr) == 1;
	if (is_ip) {
		X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);

		return X509_VERIFY_PARAM_set1_ip_asc(param,
		    c->tls_servername) == 1 ? 0 : -1;
	}
	if (SSL_set_tlsext_host_name(c->ssl, c->tls_servername) != 1 ||
	    SSL_set1_host(c->ssl, c->tls_servername) != 1)
		return -1;
	return 0;
}

/* Says why a handshake failed, the certificate check first. */
static void
tls_failure(struct conn *c, char *msg, size_t len)
{
	unsigned long e = ERR_get_error();
	long v = c->tls_client ? SSL_get_verify_result(c->ssl) : X509_V_OK;

	if (v != X509_V_OK)
		snprintf(msg, len, "TLS handshake failed: certificate "
		    "verification failed: %s", X509_verify_cert_error_string(v));
	else
		snprintf(msg, len, "TLS handshake failed: %s",
		    e ? ERR_reason_error_string(e) : "connection closed");
	ERR_clear_error();
}

static void
tls_handshake(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		c->tls = TLS_ON;
		update_watchers(c);
		c->tls_done(c, c->arg, NULL);
		if (!c->dead)
			flush_out(c);
		return;
	}
	c->tls_want = SSL_get_error(c->ssl, r);
	if (c->tls_want == SSL_ERROR_WANT_READ ||
	    c->tls_want == SSL_ERROR_WANT_WRITE) {
		update_watchers(c);
		return;
	}
	{
		char msg[256];

		tls_failure(c, msg, sizeof(msg));
		c->tls_done(c, c->arg, msg);
		conn_kill(c, "TLS handshake failed");
	}
}

void
conn_start_tls(struct conn *c, void *ctx,
    void (*done)(struct conn *c, void *arg, const char *err))
{
	c->tls_ctx = ctx;
	c->tls_done = done;
	c->tls = TLS_AFTER_FLUSH;
	buf_reset(&c->in);	/* pipelined input is discarded */
	ev_io_stop(c->loop, &c->rio);
	ev_io_start(c->loop, &c->wio);
}

void
conn_start_tls_client(struct conn *c, void *ctx, const char *servername,
    void (*done)(struct conn *c, void *arg, const char *err))
{
	c->tls_client = true;
	free(c->tls_servername);
	c->tls_servername = servername ? xstrdup(servername) : NULL;
	conn_start_tls(c, ctx, done);
}

bool
conn_tls_active(const struct conn *c)
{
	return c->tls == TLS_ON;
}

int
conn_start_deflate(struct conn *c)
{
	memset(&c->zin, 0, sizeof(c->zin));
	memset(&c->zout, 0, sizeof(c->zout));
	if (inflateInit2(&c->zin, -15) != Z_OK)
		return -1;
	if (deflateInit2(&c->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&c->zin);
		return -1;
	}
	c->deflating = true;
	c->inflate_leftover = true;
	return 0;
}

/* Stops everything, tells the owner, and queues the conn for freeing. */
static void
conn_kill(struct conn *c, const char *reason)
{
	if (c->dead)
		return;
	c->dead = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->idle);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nconns--;
	c->ops->on_close(c, c->arg, reason ? reason : "closed");
	c->next_dead = dead_conns;
	dead_conns = c;
	ev_idle_start(c->loop, &reaper);
}

void
conn_close(struct conn *c, const char *reason, bool now)
{
	if (c->dead)
		return;
	if (now || c->out.len == c->out_off) {
		/*
		 * Try once to send what is queued before closing, through
		 * TLS if it is on (then say close_notify too).
		 */
		if (c->tls == TLS_ON) {
			const char *why = NULL;

			if (c->out.len == c->out_off ||
			    raw_send(c, c->out.s + c->out_off,
			    c->out.len - c->out_off, &why) >= 0)
				(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
		} else if (c->tls == TLS_OFF && c->out.len > c->out_off)
			(void)send(c->fd, c->out.s + c->out_off,
			    c->out.len - c->out_off, MSG_NOSIGNAL |
			    MSG_DONTWAIT);
		conn_kill(c, reason);
		return;
	}
	c->closing = true;
	c->close_reason = reason;
	ev_io_stop(c->loop, &c->rio);
	update_watchers(c);
}

const char *
conn_peer(const struct conn *c)
{
	return c->peer;
}

unsigned long
conn_id(const struct conn *c)
{
	return c->id;
}

size_t
conn_count(void)
{
	return nconns;
}

void
conn_close_all(const char *line)
{
	struct conn *c = conns, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		if (c->ops->outbound)
			continue;
		if (line)
			conn_write(c, line, strlen(line));
		conn_close(c, "server shutting down", true);
	}
}

void
conn_reap(struct ev_loop *loop)
{
	reap_cb(loop, &reaper, 0);
}
