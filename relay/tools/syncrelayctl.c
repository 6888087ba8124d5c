/*
 * syncrelayctl.c -- the operator's tool for a running syncrelay.
 *
 *   syncrelayctl [-C config] [-s socket] status [STORE] [--json]
 *   syncrelayctl ... pause STORE REPLICA
 *   syncrelayctl ... resume STORE REPLICA
 *   syncrelayctl ... wait STORE [--replica R] --timeout SECONDS
 *   syncrelayctl ... reset STORE REPLICA LSN
 *   syncrelayctl ... retry STORE [REPLICA]
 *   syncrelayctl ... giveup STORE REPLICA NAME
 *   syncrelayctl ... audit STORE [REPLICA] [--user U] [--repair] [--json]
 *                    [--from OTHER_REPLICA]
 *                          [--timeout SECONDS]
 *   syncrelayctl ... seed STORE REPLICA [--from OTHER_REPLICA]
 *   syncrelayctl ... reload
 *   syncrelayctl ... journal STORE [--all | --from LSN] [--limit N] [--follow]
 *   syncrelayctl ... journal STORE --lsn N --full
 *   syncrelayctl ... help [COMMAND]   (or COMMAND --help)
 *
 * Everything but "journal" is a request on the daemon's control socket
 * (control.h); "journal" reads the store's journal under datadir
 * directly, read-only, as syncrelay-journal does, and the replicas'
 * cursor files beside it (storage/cursor.h, cursor_peek()) to start at
 * the backlog and mark where each replica stands.  Exit status: 0 done,
 * 1 "wait" timed out or "audit" found differences, 2 usage, unknown
 * store or an audit that could not finish, 3 the daemon cannot be
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
#include "storage/cursor.h"
#include "storage/journal.h"

#define DEFAULT_CONFIG "/etc/syncrelay/syncrelay.conf"

/* One line of the summary and the help of each command. */
static const struct command {
	const char *name;
	const char *synopsis;
	const char *help;
} commands[] = {
	{ "status", "status [STORE] [--json]",
	  "Stores, their master session, head LSN and journal; per replica\n"
	  "the state, cursor, lag (records, bytes, seconds), rate, ETA and\n"
	  "last error.  --json: one JSON object, as the man page describes.\n" },
	{ "pause", "pause STORE REPLICA",
	  "Stops replaying to a replica (kept across restarts) until resume.\n" },
	{ "resume", "resume STORE REPLICA",
	  "Replays to a paused replica again; retries a failed link.\n" },
	{ "wait", "wait STORE [--replica R] --timeout SECONDS",
	  "Exits 0 once every replica (or R) has acknowledged the head as of\n"
	  "the call; 1 with the lag left when SECONDS pass first.\n" },
	{ "reset", "reset STORE REPLICA LSN",
	  "Sets a replica's cursor to LSN (after a full resync of it).\n" },
	{ "retry", "retry STORE [REPLICA]",
	  "Tries every mailbox or record parked for the replica (or every\n"
	  "replica of STORE) again now.  A replica that refuses a record,\n"
	  "where repair cannot help, holds back only what it concerns: that\n"
	  "mailbox is parked (see status) and the rest replicates.\n" },
	{ "giveup", "giveup STORE REPLICA NAME",
	  "Stops trying the parked mailbox (or record) NAME, the whole name\n"
	  "as status shows it; logged; the replica keeps what it has of it.\n" },
	{ "audit", "audit STORE [REPLICA] [--user USER] [--repair] [--json] "
	  "[--timeout SECONDS] [--from OTHER_REPLICA]",
	  "Compares each mailbox the shadow holds (what the master last said)\n"
	  "with what the replica (or every replica) answers: name, uniqueid,\n"
	  "uidvalidity, last uid, highestmodseq, sync CRC, annotation CRC,\n"
	  "and the records where those differ.  Prints each mailbox that\n"
	  "differs, with what differs.  Never talks to the master; asks the\n"
	  "replica through its link, one question at a time, only while the\n"
	  "link is caught up and idle (replay goes first).  Exit 0: nothing\n"
	  "differs; 1: something does; 2: error, or a replica never caught up\n"
	  "before SECONDS (default 300) passed (\"not audited\").\n"
	  "  --user USER  only USER's mailboxes\n"
	  "  --repair     send each differing mailbox whole from the shadow\n"
	  "               (bodies from the journal; those retention dropped\n"
	  "               from another replica of the store caught up, by\n"
	  "               GET FETCH through its link); a mailbox the replica\n"
	  "               changed itself is removed there first, only when\n"
	  "               the journal or that other replica (asked first)\n"
	  "               holds every body; a folder only on the replica is\n"
	  "               removed only where the relay holds the master's\n"
	  "               complete list for the user\n"
	  "  --from OTHER_REPLICA  take the dropped bodies from it\n"
	  "  --json       one JSON object\n" },
	{ "seed", "seed STORE REPLICA [--from OTHER_REPLICA]",
	  "Fills REPLICA (e.g. one just added to the configuration, then\n"
	  "reload) from the relay's shadow, never asking the master: its\n"
	  "cursor goes to the head, so the link streams the master's changes\n"
	  "from there on, and every mailbox the replica lacks is sent whole\n"
	  "from the shadow (bodies from the journal), with the user's\n"
	  "subscriptions, quota and seen state.  status shows \"seeding\"\n"
	  "with mailboxes and bytes done and an ETA; wait waits for it.\n"
	  "Bodies the journal no longer holds (retention) are taken from\n"
	  "OTHER_REPLICA (GET FETCH through its link) with --from; without\n"
	  "it from another replica of the store caught up at the time; where\n"
	  "none has it, such a mailbox stays parked (only the master can\n"
	  "resend it).\n"
	  "Running seed again starts over.\n" },
	{ "reload", "reload",
	  "Makes the daemon re-read its configuration (as SIGHUP does).\n" },
	{ "journal", "journal STORE [--all | --from LSN] [--limit N] [--follow]\n"
	  "  journal STORE --lsn N --full",
	  "The store's journal, read from datadir (no daemon needed), one\n"
	  "record a line in words: both names of a rename, a mailbox's\n"
	  "records added, changed and expunged, flags and annotations.\n"
	  "It starts after the lowest replica cursor (the backlog) and marks\n"
	  "each replica's cursor where it stands:\n"
	  "  ---- cursor r2 = 36 (paused)\n"
	  "records above the mark are on that replica, those below are not.\n"
	  "  --all        from the oldest record kept\n"
	  "  --from LSN   from LSN\n"
	  "  --limit N    at most N records\n"
	  "  --follow     keep showing records as they come (until ^C)\n"
	  "  --lsn N --full   record N whole, as the master sent it\n" },
	{ "help", "help [COMMAND]",
	  "Says what COMMAND does and takes (also: COMMAND --help).\n" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage_to(FILE *f)
{
	size_t i;

	fprintf(f, "usage: syncrelayctl [-C config] [-s socket] COMMAND "
	    "[ARGS]\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].synopsis);
	fprintf(f,
	    "  -C file    configuration (default " DEFAULT_CONFIG ")\n"
	    "  -s socket  control socket (default: control_socket in the "
	    "configuration)\n"
	    "syncrelayctl COMMAND --help says more about COMMAND; see "
	    "syncrelayctl(8).\n");
}

static void
usage(void)
{
	usage_to(stderr);
	exit(2);
}

/* Prints a command's help to stdout; returns 0, or 2 if unknown. */
static int
command_help(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0) {
			printf("usage: syncrelayctl [-C config] [-s socket] %s\n\n%s",
			    commands[i].synopsis, commands[i].help);
			return 0;
		}
	fprintf(stderr, "syncrelayctl: no command called %s\n", name);
	usage_to(stderr);
	return 2;
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

/* Where a replica stands, read from its cursor file. */
struct mark {
	const char *replica;
	uint64_t lsn;
	bool paused, resync, missing, shown;
};

/* Reads the cursors of the store's replicas; returns the lowest. */
static uint64_t
read_marks(const char *datadir, const struct store_conf *sc,
    struct mark *marks)
{
	char path[4096], err[512];
	uint64_t low = UINT64_MAX;
	size_t i;

	for (i = 0; i < sc->nreplicas; i++) {
		struct mark *m = &marks[i];
		uint32_t flags = 0;
		int r;

		memset(m, 0, sizeof(*m));
		m->replica = sc->replicas[i].name;
		snprintf(path, sizeof(path), "%s/%s/cursors/%s.cursor", datadir,
		    sc->name, m->replica);
		r = cursor_peek(path, &m->lsn, &flags, err, sizeof(err));
		if (r == -ENOENT)
			m->missing = true;
		else if (r < 0)
			fprintf(stderr, "syncrelayctl: %s\n", err);
		m->resync = (flags & CURSOR_NEEDS_RESYNC) != 0;
		snprintf(path, sizeof(path), "%s/%s/cursors/%s.paused", datadir,
		    sc->name, m->replica);
		m->paused = access(path, F_OK) == 0;
		if (m->lsn < low)
			low = m->lsn;
	}
	return low == UINT64_MAX ? 0 : low;
}

/* Prints the marks of the replicas whose cursor is below lsn. */
static void
print_marks(struct mark *marks, size_t n, uint64_t below)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct mark *m = &marks[i];

		if (m->shown || m->lsn >= below)
			continue;
		m->shown = true;
		printf("---- cursor %s = %llu%s%s%s\n", m->replica,
		    (unsigned long long)m->lsn,
		    m->missing ? " (never connected)" : "",
		    m->paused ? " (paused)" : "",
		    m->resync ? " (needs a full resync)" : "");
	}
}

struct listing {
	uint64_t from;		/* 0: after the lowest cursor */
	uint64_t limit;
	uint64_t lsn;		/* one record, or 0 */
	bool all, follow, full;
};

/* Lists (or prints whole) journal records of a store. */
static int
journal_cmd(const char *datadir, const struct store_conf *sc,
    const struct listing *o)
{
	char dir[4096], err[512], when[40];
	struct journal_record rec;
	struct buf raw = BUF_INIT, desc = BUF_INIT;
	struct mark *marks = calloc(sc->nreplicas + 1, sizeof(*marks));
	uint64_t shown = 0, next, last = 0, low;
	const char *store = sc->name;
	int e = 0;

	snprintf(dir, sizeof(dir), "%s/%s/journal", datadir, store);
	if (marks == NULL || access(dir, R_OK | X_OK) < 0) {
		fprintf(stderr, "syncrelayctl: store %s: %s: %s\n", store, dir,
		    strerror(errno));
		free(marks);
		return 2;
	}
	low = read_marks(datadir, sc, marks);
	if (o->lsn)
		next = o->lsn;
	else if (o->from)
		next = o->from;
	else if (o->all)
		next = 1;
	else
		next = low + 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!o->lsn)
		printf("%-10s %-24s %-8s %s\n", "LSN", "TIME (UTC)", "BYTES",
		    "WHAT");
	do {
		struct journal_reader *r = journal_reader_new(dir, NULL, next, 0,
		    err, sizeof(err));

		if (r == NULL) {
			fprintf(stderr, "syncrelayctl: %s\n", err);
			free(marks);
			return 2;
		}
		while (!stop && shown < o->limit &&
		    (e = journal_reader_next(r, &rec, &raw)) == 1) {
			if (rec.lsn > next && !o->lsn)
				fprintf(stderr, "syncrelayctl: records %llu..%llu "
				    "are no longer in the journal (retention)\n",
				    (unsigned long long)next,
				    (unsigned long long)rec.lsn - 1);
			next = rec.lsn + 1;
			if (o->lsn && rec.lsn != o->lsn)
				break;
			if (!o->lsn)
				print_marks(marks, sc->nreplicas, rec.lsn);
			last = rec.lsn;
			jfmt_time(rec.time_us, when, sizeof(when));
			if (rec.type == JOURNAL_BODY) {
				char hex[41];

				journal_guid_hex(rec.guid, hex);
				if (o->lsn && o->full) {
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
					printf("%-10llu %-24s %-8u BODY %s "
					    "(a message body)\n",
					    (unsigned long long)rec.lsn, when,
					    rec.raw_len, hex);
				}
			} else if (o->lsn && o->full) {
				printf("%llu %s\n%s\n",
				    (unsigned long long)rec.lsn, when,
				    buf_cstring(&raw));
			} else {
				jfmt_explain(&raw, &desc);
				printf("%-10llu %-24s %-8u %s\n",
				    (unsigned long long)rec.lsn, when,
				    rec.raw_len, buf_cstring(&desc));
			}
			shown++;
			if (o->lsn)
				break;
		}
		if (e < 0)
			fprintf(stderr, "syncrelayctl: %s: %s\n", dir,
			    journal_reader_errstr(r));
		journal_reader_free(&r);
		fflush(stdout);
		if (o->lsn && shown == 0) {
			fprintf(stderr, "syncrelayctl: store %s has no record "
			    "%llu (retired, or not written yet)\n", store,
			    (unsigned long long)o->lsn);
			buf_free(&raw);
			buf_free(&desc);
			free(marks);
			return 2;
		}
		if (o->follow && !stop && shown < o->limit)
			usleep(250000);
	} while (o->follow && !stop && shown < o->limit && e >= 0);
	/* The replicas at or past the last record shown stand below it. */
	if (!o->lsn && e >= 0)
		print_marks(marks, sc->nreplicas, last ? last + 1 : next);
	buf_free(&raw);
	buf_free(&desc);
	free(marks);
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

	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((ch = getopt_long(argc, argv, "+C:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			config_path = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'h':
			usage_to(stdout);
			return 0;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "help") == 0) {
		if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0))
			return command_help("help");
		if (argc == 1) {
			usage_to(stdout);
			return 0;
		}
		return command_help(argv[1]);
	}
	for (ch = 1; ch < argc; ch++)
		if (strcmp(argv[ch], "--help") == 0 ||
		    strcmp(argv[ch], "-h") == 0)
			return command_help(argv[0]);
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
	} else if (strcmp(cmd, "retry") == 0 && (argc == 2 || argc == 3)) {
		buf_printf(&req, "retry %s%s%s", argv[1], argc == 3 ? " " : "",
		    argc == 3 ? argv[2] : "");
		status = ask(socket_path, buf_cstring(&req), 30);
	} else if (strcmp(cmd, "giveup") == 0 && argc == 4) {
		buf_printf(&req, "giveup %s %s %s", argv[1], argv[2], argv[3]);
		status = ask(socket_path, buf_cstring(&req), 30);
	} else if (strcmp(cmd, "seed") == 0 && (argc == 3 || (argc == 5 &&
	    strcmp(argv[3], "--from") == 0))) {
		buf_printf(&req, "seed %s %s%s%s", argv[1], argv[2],
		    argc == 5 ? " " : "", argc == 5 ? argv[4] : "");
		status = ask(socket_path, buf_cstring(&req), 30);
	} else if (strcmp(cmd, "audit") == 0 && argc >= 2) {
		const char *replica = "*", *user = NULL, *timeout = "300";
		const char *from = NULL;
		bool repair = false, json = false;
		char *end;
		int i;

		for (i = 2; i < argc; i++)
			if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
				user = argv[++i];
			else if (strcmp(argv[i], "--timeout") == 0 &&
			    i + 1 < argc)
				timeout = argv[++i];
			else if (strcmp(argv[i], "--repair") == 0)
				repair = true;
			else if (strcmp(argv[i], "--from") == 0 &&
			    i + 1 < argc)
				from = argv[++i];
			else if (strcmp(argv[i], "--json") == 0)
				json = true;
			else if (argv[i][0] != '-' && i == 2)
				replica = argv[i];
			else
				usage();
		if (strtod(timeout, &end) < 0 || *end != '\0' || end == timeout
		    || strtod(timeout, NULL) > 1e7) {
			fprintf(stderr, "syncrelayctl: --timeout: not a number "
			    "of seconds (0 to 10000000): %s\n", timeout);
			return 2;
		}
		buf_printf(&req, "audit %s %s timeout=%s%s%s%s%s%s%s", argv[1],
		    replica, timeout, user ? " user=" : "", user ? user : "",
		    repair ? " repair" : "", json ? " json" : "",
		    from ? " from=" : "", from ? from : "");
		status = ask(socket_path, buf_cstring(&req),
		    strtod(timeout, NULL) + 60);
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
		struct listing o = { .limit = UINT64_MAX };
		const struct store_conf *sc;
		int i;

		for (i = 2; i < argc; i++)
			if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
				o.from = num_arg("--from", argv[++i]);
			else if (strcmp(argv[i], "--limit") == 0 &&
			    i + 1 < argc)
				o.limit = num_arg("--limit", argv[++i]);
			else if (strcmp(argv[i], "--lsn") == 0 && i + 1 < argc)
				o.lsn = num_arg("--lsn", argv[++i]);
			else if (strcmp(argv[i], "--all") == 0)
				o.all = true;
			else if (strcmp(argv[i], "--follow") == 0)
				o.follow = true;
			else if (strcmp(argv[i], "--full") == 0)
				o.full = true;
			else
				usage();
		if ((o.full && o.lsn == 0) || (o.lsn && o.follow) ||
		    (o.all && o.from))
			usage();
		if ((sc = config_store_by_name(c, argv[1])) == NULL) {
			fprintf(stderr, "syncrelayctl: %s declares no store "
			    "called %s\n", config_path, argv[1]);
			config_free(&c);
			return 2;
		}
		status = journal_cmd(config_str(c, OPT_datadir), sc, &o);
	} else {
		usage();
	}
	buf_free(&req);
	config_free(&c);
	return status;
}
