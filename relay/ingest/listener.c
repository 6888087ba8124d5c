/*
 * listener.c -- accept loop for csync clients.
 *
 * Accepted sockets are non-blocking and close-on-exec.  When the number
 * of live connections reaches max_connections, new ones are closed at
 * once with a log line.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/conn.h"
#include "relay/ingest/listener.h"

struct listener {
	struct ev_loop *loop;
	int fd;
	ev_io watcher;
	const struct session_params *params;
	size_t *max_connections;
	char address[NI_MAXHOST + NI_MAXSERV + 4];
};

/*
 * Formats an address for logs ("ip:port", "[v6]:port") or, with sasl,
 * as SASL wants it ("ip;port").
 */
static void
format_addr(const struct sockaddr *sa, socklen_t len, char *out,
    size_t outlen, bool sasl)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "?");
		return;
	}
	if (sasl)
		snprintf(out, outlen, "%s;%s", host, serv);
	else if (sa->sa_family == AF_INET6)
		snprintf(out, outlen, "[%s]:%s", host, serv);
	else
		snprintf(out, outlen, "%s:%s", host, serv);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct sockaddr_storage ss, ls;
	socklen_t len = sizeof(ss), llen = sizeof(ls);
	char peer[NI_MAXHOST + NI_MAXSERV + 4];
	char slocal[NI_MAXHOST + NI_MAXSERV + 4];
	char sremote[NI_MAXHOST + NI_MAXSERV + 4];
	int fd, one = 1;

	fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("listen=%s event=accept_failed", l->address);
		return;
	}
	format_addr((struct sockaddr *)&ss, len, peer, sizeof(peer), false);
	format_addr((struct sockaddr *)&ss, len, sremote, sizeof(sremote),
	    true);
	if (getsockname(fd, (struct sockaddr *)&ls, &llen) == 0)
		format_addr((struct sockaddr *)&ls, llen, slocal,
		    sizeof(slocal), true);
	else
		snprintf(slocal, sizeof(slocal), "127.0.0.1;0");
	if (conn_count() >= *l->max_connections) {
		log_warnx("listen=%s peer=%s event=refused reason=\"too many "
		    "connections (max_connections=%zu)\"", l->address, peer,
		    *l->max_connections);
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	session_start(loop, fd, peer, slocal, sremote, l->params);
}

int
listener_socket(const char *host, unsigned port, char *address,
    size_t address_len, char *err, size_t err_len)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char portstr[16];
	int fd, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, err_len, "listen %s:%u: %s", host, port,
		    gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		snprintf(err, err_len, "listen %s:%u: %s", host, port,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	format_addr((struct sockaddr *)&ss, sslen, address, address_len, false);
	return fd;
}

struct listener *
listener_new(struct ev_loop *loop, const char *host, unsigned port,
    const struct session_params *params, size_t *max_connections, char *err,
    size_t err_len)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->fd = listener_socket(host, port, l->address, sizeof(l->address),
	    err, err_len);
	if (l->fd < 0) {
		free(l);
		return NULL;
	}
	l->loop = loop;
	l->params = params;
	l->max_connections = max_connections;
	ev_io_init(&l->watcher, accept_cb, l->fd, EV_READ);
	l->watcher.data = l;
	ev_io_start(loop, &l->watcher);
	return l;
}

void
listener_free(struct listener **lp)
{
	struct listener *l = *lp;

	if (l == NULL)
		return;
	ev_io_stop(l->loop, &l->watcher);
	close(l->fd);
	free(l);
	*lp = NULL;
}

const char *
listener_address(const struct listener *l)
{
	return l->address;
}
