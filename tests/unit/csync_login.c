/*
 * csync_login.c -- test helper: log in to a csync server as a client.
 *
 *   csync_login PORT USER PASSWORD [MECHANISMS]
 *
 * Connects to 127.0.0.1:PORT, reads the banner, authenticates with
 * saslcli (choosing among the offered mechanisms, optionally narrowed to
 * MECHANISMS), sends NOOP, and prints "OK <mechanism>" when the server
 * accepted both; exits 1 with the reason otherwise.  The relay's links
 * log in to replicas this way.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "protocol/csync.h"
#include "protocol/saslcli.h"

static int fd;
static struct csync_reader *reader;
static char inbuf[65536];
static size_t inlen, inoff;

/* Reads one reply line: verb into v, text into t. */
static int
read_line(char *v, size_t vlen, char *t, size_t tlen)
{
	for (;;) {
		size_t used;
		enum csync_status st;

		if (inoff == inlen) {
			ssize_t n = read(fd, inbuf, sizeof(inbuf));

			if (n <= 0)
				return -1;
			inlen = (size_t)n;
			inoff = 0;
		}
		st = csync_reader_feed(reader, inbuf + inoff, inlen - inoff,
		    &used);
		inoff += used;
		if (st == CSYNC_NEED_MORE)
			continue;
		snprintf(v, vlen, "%s", csync_reader_verb(reader));
		snprintf(t, tlen, "%s", csync_reader_text(reader) ?
		    csync_reader_text(reader) : "");
		return st == CSYNC_LINE ? 0 : -1;
	}
}

static void
send_text(const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		exit(1);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct buf mechs = BUF_INIT, out = BUF_INIT, line = BUF_INIT;
	struct saslcli *c;
	const char *mech = NULL, *why = "";
	char verb[64], text[8192], err[256];
	enum saslsrv_status st;

	if (argc < 4)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	reader = csync_reader_new(CSYNC_CLIENT, NULL, NULL);
	csync_reader_set_banner(reader, true);
	for (;;) {
		if (read_line(verb, sizeof(verb), text, sizeof(text)) < 0)
			return 1;
		if (strncmp(text, "SASL ", 5) == 0)
			buf_puts(&mechs, text + 5);
		if (strncmp(text, "OK", 2) == 0)
			break;
	}
	csync_reader_set_banner(reader, false);
	if (argc > 4) {
		buf_reset(&mechs);
		buf_puts(&mechs, argv[4]);
	}
	if (saslcli_init(err, sizeof(err)) < 0 ||
	    (c = saslcli_new("127.0.0.1", argv[2], argv[3], NULL,
	    "127.0.0.1;1", "127.0.0.1;2", err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	st = saslcli_start(c, buf_cstring(&mechs), &mech, &out, &why);
	if (st == SASLSRV_FAIL) {
		fprintf(stderr, "no usable mechanism: %s\n", why);
		return 1;
	}
	buf_printf(&line, "AUTHENTICATE %s%s%s\r\n", mech, out.len ? " " : "",
	    buf_cstring(&out));
	send_text(line.s);
	for (;;) {
		if (read_line(verb, sizeof(verb), text, sizeof(text)) < 0)
			return 1;
		if (strcmp(verb, "+") != 0)
			break;
		if (saslcli_step(c, text, &out, &why) == SASLSRV_FAIL) {
			fprintf(stderr, "step: %s\n", why);
			send_text("*\r\n");
			return 1;
		}
		buf_reset(&line);
		buf_printf(&line, "%s\r\n", buf_cstring(&out));
		send_text(line.s);
	}
	if (strcmp(verb, "OK") != 0) {
		fprintf(stderr, "%s %s\n", verb, text);
		return 1;
	}
	send_text("NOOP\r\n");
	if (read_line(verb, sizeof(verb), text, sizeof(text)) < 0 ||
	    strcmp(verb, "OK") != 0) {
		fprintf(stderr, "NOOP: %s %s\n", verb, text);
		return 1;
	}
	printf("OK %s\n", mech);
	saslcli_free(&c);
	csync_reader_free(&reader);
	buf_free(&mechs);
	buf_free(&out);
	buf_free(&line);
	close(fd);
	return 0;
}
