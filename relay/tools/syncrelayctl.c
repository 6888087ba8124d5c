/*
 * syncrelayctl.c -- the operator's tool for a running syncrelay.
 *
 *   syncrelayctl [-C config] [-s socket] status [STORE] [--json]
 *   syncrelayctl ... pause STORE REPLICA
 *   syncrelayctl ... resume STORE REPLICA
 *   syncrelayctl ... wait STORE [--replica R] --timeout SECONDS
 *   syncrelayctl ... reset STORE REPLICA LSN
 *   syncrelayctl ... reload
 *   syncrelayctl ... journal STORE [--from LSN] [--limit N] [--follow]
 *   syncrelayctl ... journal STORE --lsn N --full
 *
 * Everything but "journal" is a request on the daemon's control socket
 * (control.h); "journal" reads the store's journal under datadir
 * directly, read-only, as syncrelay-journal does.  Exit status: 0 done,
 * 1 "wait" timed out, 2 usage or unknown store, 3 the daemon cannot be
 * reached or stopped.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "relay/config.h"
#include "relay/ops/jfmt.h"
#include "storage/journal.h"

#define DEFAULT_CONFIG "/etc/syncrelay/syncrelay.conf"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: syncrelayctl [-C config] [-s socket] COMMAND\n"
	    "  status [STORE] [--json]      stores, replicas, lag\n"
	    "  pause STORE REPLICA          stop replaying to a replica\n"
	    "  resume STORE REPLICA         replay again (retries a failed "
	    "link)\n"
	    "  wait STORE [--replica R] --timeout SECONDS\n"
	    "                               until the replicas reach today's "
	    "head\n"
	    "  reset STORE REPLICA LSN      set a replica's cursor (after a "
	    "full resync)\n"
	    "  reload                       re-read the configuration\n"
	    "  journal STORE [--from LSN] [--limit N] [--follow]\n"
	    "  journal STORE --lsn N --full what the backlog holds\n"
	    "  -C file    configuration (default " DEFAULT_CONFIG ")\n"
	    "  -s socket  control socket (default: control_socket in the "
	    "configuration)\n");
	exit(2);
}

/* Sends one request line and copies the answer out; returns exit=N. */
static int
ask(const char *path, const char *req, double timeout)
{
	struct sockaddr_un sun;
	struct timeval tv;
	struct buf in = BUF_INIT;
	char tmp[8192];
	ssize_t n;
	int fd, status = 3;
	size_t start = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "syncrelayctl: %s: path too long\n", path);
		return 3;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "syncrelayctl: cannot reach the daemon at %s: "
		    "%s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 3;
	}
	tv.tv_sec = (time_t)timeout;
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) ||
	    write(fd, "\n", 1) != 1) {
		fprintf(stderr, "syncrelayctl: %s: %s\n", path, strerror(errno));
		close(fd);
		return 3;
	}
	for (;;) {
		char *nl;

		n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "syncrelayctl: no answer from the daemon: "
			    "%s\n", strerror(errno));
			break;
		}
		if (n == 0) {
			fprintf(stderr, "syncrelayctl: the daemon closed the "
			    "connection without an answer\n");
			break;
		}
		buf_append(&in, tmp, (size_t)n);
		/* Print whole lines as they come; stop at "exit=N". */
		while ((nl = memchr(in.s + start, '\n', in.len - start))) {
			char *line = in.s + start;

			*nl = '\0';
			start = (size_t)(nl - in.s) + 1;
			if (strncmp(line, "exit=", 5) == 0) {
				status = atoi(line + 5);
				goto done;
			}
			if (line[0] == '!')
				fprintf(stderr, "%s\n", line + 1);
			else
				printf("%s\n", line);
		}
	}
done:
	fflush(stdout);
	close(fd);
	buf_free(&in);
	return status;
}

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Lists (or prints whole) journal records of a store. */
static int
journal_cmd(const char *datadir, const char *store, uint64_t from,
    uint64_t limit, bool follow, uint64_t lsn, bool full)
{
	char dir[4096], err[512], when[40];
	struct journal_record rec;
	struct buf raw = BUF_INIT, desc = BUF_INIT;
	uint64_t shown = 0, next = lsn ? lsn : from;
	int e = 0;

	snprintf(dir, sizeof(dir), "%s/%s/journal", datadir, store);
	if (access(dir, R_OK | X_OK) < 0) {
		fprintf(stderr, "syncrelayctl: store %s: %s: %s\n", store, dir,
		    strerror(errno));
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!lsn)
		printf("%-10s %-24s %-8s %s\n", "LSN", "TIME (UTC)", "BYTES",
		    "WHAT");
	do {
		struct journal_reader *r = journal_reader_new(dir, NULL, next, 0,
		    err, sizeof(err));

		if (r == NULL) {
			fprintf(stderr, "syncrelayctl: %s\n", err);
			return 2;
		}
		while (!stop && shown < limit &&
		    (e = journal_reader_next(r, &rec, &raw)) == 1) {
			if (rec.lsn > next && !lsn)
				fprintf(stderr, "syncrelayctl: records %llu..%llu "
				    "are no longer in the journal (retention)\n",
				    (unsigned long long)next,
				    (unsigned long long)rec.lsn - 1);
			next = rec.lsn + 1;
			if (lsn && rec.lsn != lsn)
				break;
			jfmt_time(rec.time_us, when, sizeof(when));
			if (rec.type == JOURNAL_BODY) {
				char hex[41];

				journal_guid_hex(rec.guid, hex);
				if (lsn && full) {
					uint64_t got = 0;

					/* Bodies are not dlist: say what it is. */
					if (journal_reader_body(r, &rec,
					    jfmt_count_sink, &got) < 0)
						fprintf(stderr, "LSN %llu: %s\n",
						    (unsigned long long)rec.lsn,
						    journal_reader_errstr(r));
					printf("%llu %s BODY %s %u bytes "
					    "(%u stored), checked\n",
					    (unsigned long long)rec.lsn, when,
					    hex, rec.raw_len, rec.payload_len);
				} else {
					printf("%-10llu %-24s %-8u BODY %s\n",
					    (unsigned long long)rec.lsn, when,
					    rec.raw_len, hex);
				}
			} else if (lsn && full) {
				printf("%llu %s\n%s\n",
				    (unsigned long long)rec.lsn, when,
				    buf_cstring(&raw));
			} else {
				jfmt_describe(&raw, &desc);
				printf("%-10llu %-24s %-8u %s\n",
				    (unsigned long long)rec.lsn, when,
				    rec.raw_len, buf_cstring(&desc));
			}
			shown++;
			if (lsn)
				break;
		}
		if (e < 0)
			fprintf(stderr, "syncrelayctl: %s: %s\n", dir,
			    journal_reader_errstr(r));
		journal_reader_free(&r);
		fflush(stdout);
		if (lsn && shown == 0) {
			fprintf(stderr, "syncrelayctl: store %s has no record "
			    "%llu (retired, or not written yet)\n", store,
			    (unsigned long long)lsn);
			buf_free(&raw);
			buf_free(&desc);
			return 2;
		}
		if (follow && !stop && shown < limit)
			usleep(250000);
	} while (follow && !stop && shown < limit && e >= 0);
	buf_free(&raw);
	buf_free(&desc);
	return e < 0 ? 2 : 0;
}

static uint64_t
num_arg(const char *what, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || *s == '\0' || *s == '-') {
		fprintf(stderr, "syncrelayctl: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	const char *config_path = DEFAULT_CONFIG, *socket_path = NULL;
	struct config *c = NULL;
	struct buf req = BUF_INIT;
	char err[512];
	const char *cmd;
	int ch, status;

	while ((ch = getopt(argc, argv, "+C:s:h")) != -1) {
		switch (ch) {
		case 'C':
			config_path = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	if (socket_path == NULL || strcmp(cmd, "journal") == 0) {
		c = config_load(config_path, err, sizeof(err));
		if (c == NULL) {
			fprintf(stderr, "syncrelayctl: %s\n", err);
			return 2;
		}
		if (socket_path == NULL)
			socket_path = config_str(c, OPT_control_socket);
		if (*socket_path == '\0' && strcmp(cmd, "journal") != 0) {
			fprintf(stderr, "syncrelayctl: %s sets no "
			    "control_socket\n", config_path);
			return 2;
		}
	}
	if (strcmp(cmd, "status") == 0) {
		bool json = false;
		const char *store = NULL;
		int i;

		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "--json") == 0)
				json = true;
			else if (argv[i][0] == '-' || store)
				usage();
			else
				store = argv[i];
		buf_printf(&req, "status%s%s%s", store ? " " : "",
		    store ? store : "", json ? " json" : "");
		status = ask(socket_path, buf_cstring(&req), 30);
	} else if ((strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) &&
	    argc == 3) {
		buf_printf(&req, "%s %s %s", cmd, argv[1], argv[2]);
		status = ask(socket_path, buf_cstring(&req), 30);
	} else if (strcmp(cmd, "reset") == 0 && argc == 4) {
		buf_printf(&req, "reset %s %s %s", argv[1], argv[2], argv[3]);
		status = ask(socket_path, buf_cstring(&req), 30);
	} else if (strcmp(cmd, "reload") == 0 && argc == 1) {
		status = ask(socket_path, "reload", 30);
	} else if (strcmp(cmd, "wait") == 0 && argc >= 2) {
		const char *replica = "*", *timeout = NULL;
		int i;

		for (i = 2; i < argc; i++)
			if (strcmp(argv[i], "--replica") == 0 && i + 1 < argc)
				replica = argv[++i];
			else if (strcmp(argv[i], "--timeout") == 0 &&
			    i + 1 < argc)
				timeout = argv[++i];
			else
				usage();
		if (timeout == NULL)
			usage();
		{
			char *end;
			double t = strtod(timeout, &end);

			if (*end != '\0' || end == timeout || !(t >= 0) ||
			    t > 1e7) {
				fprintf(stderr, "syncrelayctl: --timeout: not a "
				    "number of seconds (0 to 10000000): %s\n",
				    timeout);
				return 2;
			}
		}
		buf_printf(&req, "wait %s %s %s", argv[1], replica, timeout);
		status = ask(socket_path, buf_cstring(&req),
		    strtod(timeout, NULL) + 30);
	} else if (strcmp(cmd, "journal") == 0 && argc >= 2) {
		uint64_t from = 1, limit = UINT64_MAX, lsn = 0;
		bool follow = false, full = false;
		int i;

		for (i = 2; i < argc; i++)
			if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
				from = num_arg("--from", argv[++i]);
			else if (strcmp(argv[i], "--limit") == 0 &&
			    i + 1 < argc)
				limit = num_arg("--limit", argv[++i]);
			else if (strcmp(argv[i], "--lsn") == 0 && i + 1 < argc)
				lsn = num_arg("--lsn", argv[++i]);
			else if (strcmp(argv[i], "--follow") == 0)
				follow = true;
			else if (strcmp(argv[i], "--full") == 0)
				full = true;
			else
				usage();
		if ((full && lsn == 0) || (lsn && follow))
			usage();
		if (config_store_by_name(c, argv[1]) == NULL) {
			fprintf(stderr, "syncrelayctl: %s declares no store "
			    "called %s\n", config_path, argv[1]);
			config_free(&c);
			return 2;
		}
		status = journal_cmd(config_str(c, OPT_datadir), argv[1], from,
		    limit, follow, lsn, full);
	} else {
		usage();
	}
	buf_free(&req);
	config_free(&c);
	return status;
}
