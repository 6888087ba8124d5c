/*
 * fuzz_session.c -- libFuzzer target: whole csync sessions from a master
 * (issue 14), against the relay's real ingest side and a real store.
 *
 * Each input is one master's byte stream.  The relay's own code serves
 * it: session_start() takes one end of a socketpair, the real event
 * loop runs the banner, SASL login (a sasldb made once with
 * saslpasswd2), GETs answered from the shadow and APPLYs checked,
 * journaled and applied, bodies streamed into the journal -- in a store
 * opened afresh for every input in a temporary directory (/dev/shm when
 * there is one), SQLite shadow and journal writer thread included (its
 * one replica is a closed port: the link only retries; seeding from a
 * replica is off).  The store's files are made once and copied for each
 * input: an empty store of a relay that ran before, which is cheaper
 * than creating the SQLite schema each time (half a run's time).  The
 * other end writes the input (whole, or in small pieces), reads every
 * reply, and closes its side once all is written; the run ends when the
 * relay has closed the connection and the store has closed.  Nothing may
 * crash, leak, read out of bounds, or hang (libFuzzer's -timeout).
 *
 * The first input byte is not sent: bit 0 puts a valid login (repl,
 * the password of the recorded traces) before the rest, so mutations
 * are spent on commands, not on base64; bit 1 writes the rest in pieces
 * of 1..16 bytes.  The seeds (tests/fuzz/corpus/session) are the
 * recorded sessions of tests/fixtures/traces.  Linked to replay_main.c,
 * "make check" replays them.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "lib/log.h"
#include "protocol/saslsrv.h"
#include "relay/config.h"
#include "relay/conn.h"
#include "relay/ingest/guard.h"
#include "relay/ingest/session.h"
#include "relay/store.h"
#include "storage/annotdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "\0repl\0replpw", as the recorded traces log in. */
#define LOGIN "AUTHENTICATE PLAIN AHJlcGwAcmVwbHB3\r\n"

static char dir[256], datadir[300];
static struct config *config;
static struct session_params params;
static struct ev_loop *loop;

/* The master's end of the socketpair. */
static struct {
	ev_io rd, wr;
	ev_timer hang;
	int fd;
	const uint8_t *in;
	size_t len, off;
	bool chunked;
	uint8_t piece;
	bool login;		/* the LOGIN prefix still to write */
	size_t login_off;
} peer;

static const char *
sasl_option(void *arg, const char *option)
{
	char name[128];

	(void)arg;
	snprintf(name, sizeof(name), "sasl_%s", option);
	return config_text_by_name(config, name);
}

static int
remove_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)type;
	(void)f;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf path, without a fork (the target's process is large). */
static void
remove_tree(const char *path)
{
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0 &&
	    errno != ENOENT) {
		perror(path);
		abort();
	}
}

static char template[320], copy_to[320];

/* nftw callback: copies one entry of template to the same place under
 * copy_to (directories made, files copied). */
static int
copy_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	char to[1024], buf[65536];
	ssize_t n;
	int in, out;

	(void)f;
	snprintf(to, sizeof(to), "%s%s", copy_to, path + strlen(template));
	if (type == FTW_D)
		return mkdir(to, sb->st_mode & 07777) < 0 && errno != EEXIST ?
		    -1 : 0;
	if (type != FTW_F)
		return -1;
	if ((in = open(path, O_RDONLY)) < 0)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC,
	    sb->st_mode & 07777)) < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	close(out);
	return n < 0 ? -1 : 0;
}

/* The store s1, empty, as its first opening made it. */
static void
store_from_template(void)
{
	snprintf(copy_to, sizeof(copy_to), "%s/s1", datadir);
	remove_tree(copy_to);
	if (nftw(template, copy_one, 16, FTW_PHYS) < 0) {
		perror(template);
		abort();
	}
}

static void
cleanup(void)
{
	remove_tree(dir);
}

static void
setup(void)
{
	static const struct saslsrv_options so = { sasl_option, NULL };
	char path[600], cmd[900], err[512];
	struct stat sb;
	FILE *fp;

	if (loop != NULL)
		return;
	/* FUZZ_SESSION_LOG=1 shows the relay's log and replies. */
	log_init("fuzz_session", 0, true);
	log_set_level(getenv("FUZZ_SESSION_LOG") ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_ERR);
	snprintf(dir, sizeof(dir), "%s/fuzz-session-%d",
	    stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
	snprintf(datadir, sizeof(datadir), "%s/data", dir);
	if (mkdir(dir, 0700) < 0 || mkdir(datadir, 0700) < 0) {
		perror(dir);
		abort();
	}
	atexit(cleanup);
	snprintf(cmd, sizeof(cmd), "echo replpw | saslpasswd2 -p -c -f "
	    "'%s/sasldb2' -u relay-test repl", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "fuzz_session: saslpasswd2 failed (apt-get "
		    "install sasl2-bin)\n");
		abort();
	}
	snprintf(path, sizeof(path), "%s/syncrelay.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	fprintf(fp, "datadir: %s\nservername: relay-test\n"
	    "allowplaintext: yes\nsasl_sasldb_path: %s/sasldb2\n"
	    "sasl_mech_list: PLAIN\nfailedloginpause: 0\n"
	    "store.s1.identity: repl\nreplica_seed: no\n"
	    "store.s1.replica.r1: 127.0.0.1:1\n", datadir, dir);
	fclose(fp);
	if ((config = config_load(path, err, sizeof(err))) == NULL ||
	    annotdef_load(config_str(config, OPT_annotation_definitions), err,
	    sizeof(err)) < 0 || saslsrv_init("syncrelay", &so, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	/* As syncrelay.c sets them from this configuration. */
	params.servername = "relay-test";
	params.idle_timeout = (double)config_num(config, OPT_sync_timeout);
	params.master_timeout = (double)config_num(config, OPT_master_timeout);
	params.allowplaintext = true;
	params.compress = true;
	params.preauth = dlist_limits_default;
	params.preauth.max_line = (size_t)config_num(config,
	    OPT_preauth_max_line_bytes);
	params.preauth.max_literal = params.preauth.max_line;
	params.preauth.max_token = params.preauth.max_line;
	params.preauth.max_items = 1024;
	params.preauth.max_file = 0;
	params.limits = dlist_limits_default;
	params.limits.max_line = (size_t)config_num(config,
	    OPT_max_line_bytes);
	params.limits.max_literal = (size_t)config_num(config,
	    OPT_max_literal_bytes);
	params.limits.max_depth = (unsigned)config_num(config,
	    OPT_max_nesting_depth);
	params.limits.max_items = (size_t)config_num(config, OPT_max_items);
	params.guard_limits.login_timeout = 15;
	params.guard_limits.max_preauth = 128;
	params.guard_limits.max_preauth_per_address = 16;
	params.guard_limits.failed_login_pause = 0;
	params.guard_limits.max_login_failures = 3;
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVFLAG_AUTO);
	/* Open the store once, close it, keep its files as the template. */
	if (store_open_all(loop, config, datadir, err, sizeof(err)) < 0 ||
	    store_count() != 1) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	store_close_all();
	conn_reap(loop);
	snprintf(template, sizeof(template), "%s/template", dir);
	snprintf(path, sizeof(path), "%s/s1", datadir);
	if (rename(path, template) < 0) {
		perror(path);
		abort();
	}
}

/* Replies are read and dropped; EOF means the relay closed: done. */
static void
read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	char buf[65536];
	ssize_t n;

	(void)revents;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		if (getenv("FUZZ_SESSION_LOG"))
			fwrite(buf, 1, (size_t)n, stderr);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		ev_break(l, EVBREAK_ONE);
}

static void
write_cb(struct ev_loop *l, ev_io *w, int revents)
{
	const uint8_t *p;
	size_t want;
	ssize_t n;

	(void)revents;
	for (;;) {
		if (peer.login) {
			p = (const uint8_t *)LOGIN + peer.login_off;
			want = strlen(LOGIN) - peer.login_off;
		} else {
			p = peer.in + peer.off;
			want = peer.len - peer.off;
			if (peer.chunked && want > 0)
				want = want < (size_t)(peer.piece % 16 + 1) ?
				    want : (size_t)(peer.piece % 16 + 1);
		}
		if (want == 0) {
			/* All written: the master is done talking. */
			shutdown(w->fd, SHUT_WR);
			ev_io_stop(l, w);
			return;
		}
		n = write(w->fd, p, want);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				ev_io_stop(l, w);	/* it closed */
			return;
		}
		if (peer.login) {
			peer.login_off += (size_t)n;
			peer.login = peer.login_off < strlen(LOGIN);
		} else {
			peer.off += (size_t)n;
			peer.piece = (uint8_t)(peer.piece * 31 + 7);
			if (peer.chunked)
				return;	/* one piece per turn of the loop */
		}
	}
}

static void
hang_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	fprintf(stderr, "fuzz_session: the session did not end\n");
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guard *g;
	char err[1024];
	int sv[2];

	if (size < 1)
		return 0;
	setup();
	store_from_template();
	if (store_open_all(loop, config, datadir, err, sizeof(err)) < 0 ||
	    store_count() != 1) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	g = guard_new(loop, &params.guard_limits);
	params.guard = g;
	memset(&peer, 0, sizeof(peer));
	peer.fd = sv[1];
	peer.login = (data[0] & 1) != 0;
	peer.chunked = (data[0] & 2) != 0;
	peer.piece = data[0];
	peer.in = data + 1;
	peer.len = size - 1;
	session_start(loop, sv[0], "127.0.0.1:1", "127.0.0.1;2005",
	    "127.0.0.1;1", &params);
	ev_io_init(&peer.rd, read_cb, sv[1], EV_READ);
	ev_io_init(&peer.wr, write_cb, sv[1], EV_WRITE);
	ev_io_start(loop, &peer.rd);
	ev_io_start(loop, &peer.wr);
	/* Far below any timer of the session's (login_timeout: 15 s). */
	ev_timer_init(&peer.hang, hang_cb, 10., 0.);
	ev_timer_start(loop, &peer.hang);
	ev_run(loop, 0);
	ev_timer_stop(loop, &peer.hang);
	ev_io_stop(loop, &peer.rd);
	ev_io_stop(loop, &peer.wr);
	close(sv[1]);
	/* The journal's last completions run as the store closes. */
	store_close_all();
	conn_reap(loop);
	guard_free(&g);
	params.guard = NULL;
	return 0;
}
