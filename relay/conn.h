/*
 * conn.h -- one buffered, non-blocking socket on the event loop.
 *
 * A conn owns its fd, its read/write watchers, an idle timer and its
 * input/output buffers.  Input is handed to the owner's on_input(), which
 * says how much it consumed; output is queued with conn_write() and sent
 * as the socket allows.  When more than CONN_OUT_HIGH bytes wait to be
 * sent, reading pauses until the queue drains below CONN_OUT_LOW
 * (backpressure).  A conn is never freed inside its own callback:
 * conn_close() only marks it, and the loop frees it afterwards.
 */
#ifndef SR_CONN_H
#define SR_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#define CONN_OUT_HIGH ((size_t)4 << 20)
#define CONN_OUT_LOW ((size_t)1 << 20)

struct conn;

struct conn_ops {
	/*
	 * n bytes of input are available; returns how many were consumed
	 * (the rest is offered again with more data appended).
	 */
	size_t (*on_input)(struct conn *c, void *arg, const char *data,
	    size_t n);
	/* The connection is going away (EOF, error, timeout or close). */
	void (*on_close)(struct conn *c, void *arg, const char *reason);
	/* Called once the conn is freed: the owner releases arg. */
	void (*on_free)(void *arg);
	/* Optional: output fell below CONN_OUT_LOW after conn_want_drain(). */
	void (*on_drain)(struct conn *c, void *arg);
	/* A connection we opened (to a replica): conn_close_all skips it. */
	bool outbound;
};

/*
 * Wraps an accepted, connected fd.  peer is a printable address used in
 * logs.  idle_timeout is in seconds (0: none).  Returns the new conn.
 */
struct conn *conn_new(struct ev_loop *loop, int fd, const char *peer,
    double idle_timeout, const struct conn_ops *ops, void *arg);
/* Queues n bytes for sending. */
void conn_write(struct conn *c, const void *p, size_t n);
/* Closes after the queued output is sent (or at once if now). */
void conn_close(struct conn *c, const char *reason, bool now);
/*
 * Stops (paused = true) or resumes reading from the socket.  Input
 * already read stays buffered; conn_kick() offers it again.
 */
void conn_pause(struct conn *c, bool paused);
/* Offers buffered input to the owner again (after it was busy). */
void conn_kick(struct conn *c);
/*
 * Switches the connection to RFC 4978 COMPRESS DEFLATE (raw deflate both
 * ways).  Output written before the call stays uncompressed (the "OK"
 * that announces it); input not yet consumed is taken as compressed.
 * Returns 0, or -1 if zlib could not be set up.
 */
int conn_start_deflate(struct conn *c);
/*
 * Starts a TLS server handshake (STARTTLS) once the queued output, the
 * "OK" that announces it, has been sent in the clear.  Input buffered
 * so far is dropped, as a client must not pipeline past STARTTLS.
 * done() is called with NULL when TLS is up, or with the reason it
 * failed (the conn is then closed).  ctx is an OpenSSL SSL_CTX.
 */
void conn_start_tls(struct conn *c, void *ctx,
    void (*done)(struct conn *c, void *arg, const char *err));
/*
 * Starts a TLS client handshake (toward a replica) once the queued
 * output has been sent: right after connecting for TLS from the first
 * byte, or after the server's OK to STARTTLS.  Input buffered so far is
 * dropped.  ctx is a client SSL_CTX that verifies the peer (tlsctx.h);
 * servername (copied; NULL: no name check) is the host name, sent as
 * SNI and matched in the certificate, or an IP address, matched in its
 * subjectAltName.  done() is called with NULL when TLS is up, or with
 * the reason it failed (the conn is then closed).
 */
void conn_start_tls_client(struct conn *c, void *ctx, const char *servername,
    void (*done)(struct conn *c, void *arg, const char *err));
/* Is TLS active on the connection? */
bool conn_tls_active(const struct conn *c);
/* Bytes queued and not yet sent. */
size_t conn_out_pending(const struct conn *c);
/* Asks for one on_drain() call once the output queue runs low. */
void conn_want_drain(struct conn *c);
/* Changes the idle timeout (seconds). */
void conn_set_timeout(struct conn *c, double idle_timeout);
/* The printable peer address. */
const char *conn_peer(const struct conn *c);
/* A small number naming this connection in logs. */
unsigned long conn_id(const struct conn *c);
/* Number of live conns. */
size_t conn_count(void);
/* Closes every conn now (shutdown), after queueing line to each. */
void conn_close_all(const char *line);
/* Frees the closed connections now (at exit, when the loop is gone). */
void conn_reap(struct ev_loop *loop);

#endif
