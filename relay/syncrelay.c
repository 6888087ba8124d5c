/*
 * syncrelay.c -- the daemon: options, config, listener, signals.
 *
 *   syncrelay [-C file] [-f] [-p pidfile]   run (in the background unless -f)
 *   syncrelay [-C file] -n                  check the config file and exit
 *   syncrelay -D                            print every option's default
 *
 * SIGTERM/SIGINT stop gracefully (sessions get "BYE shutting down");
 * SIGHUP re-reads the config file: reloadable options take effect, a
 * broken file is logged and ignored, the running config stays.  The
 * csync listener and the metrics server (metrics_listen) are bound
 * before the daemon forks, so a port in use stops it at once.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <ev.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/config.h"
#include "storage/annotdef.h"
#include "relay/conn.h"
#include "relay/ops/audit.h"
#include "relay/ops/control.h"
#include "relay/replay/cursorq.h"
#include "relay/ingest/guard.h"
#include "relay/ingest/listener.h"
#include "relay/ops/htpasswd.h"
#include "relay/ops/metrics.h"
#include "relay/ingest/session.h"
#include "relay/store.h"
#include "protocol/saslcli.h"
#include "protocol/saslsrv.h"
#include "protocol/tlsctx.h"

#define DEFAULT_CONFIG "/etc/syncrelay/syncrelay.conf"

static struct {
	const char *config_path;
	struct config *config;
	struct session_params params;
	size_t max_connections;
	struct listener *listener;
	struct control *control;
	struct audit_sched *audits;	/* replica_audit_interval */
	struct metrics *metrics;	/* NULL: metrics_listen is empty */
	char *pidfile;
	char hostname[256];
} relay;

static void
usage(void)
{
	fprintf(stderr, "usage: syncrelay [-C config] [-f] [-p pidfile]\n"
	    "       syncrelay [-C config] -n\n"
	    "       syncrelay -D\n"
	    "  -C file   configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -f        stay in the foreground, log to stderr\n"
	    "  -p file   pid file (overrides the pidfile option)\n"
	    "  -n        check the configuration file and exit\n"
	    "  -D        print every option with its default and exit\n"
	    "  -V        print the version and exit\n");
	exit(2);
}

static enum log_level
level_from_config(const struct config *c)
{
	return (enum log_level)config_num(c, OPT_log_level);
}

static struct dlist_limits
limits_from_config(const struct config *c, bool preauth)
{
	struct dlist_limits l = dlist_limits_default;

	l.max_line = (size_t)config_num(c, preauth ? OPT_preauth_max_line_bytes :
	    OPT_max_line_bytes);
	l.max_literal = (size_t)config_num(c, OPT_max_literal_bytes);
	l.max_depth = (unsigned)config_num(c, OPT_max_nesting_depth);
	l.max_items = (size_t)config_num(c, OPT_max_items);
	if (preauth) {
		/* Before login nobody needs more than a short line. */
		if (l.max_literal > l.max_line)
			l.max_literal = l.max_line;
		l.max_token = l.max_line;
		l.max_items = 1024;
		l.max_file = 0;
	}
	return l;
}

/* Applies the options that may change while running. */
static void
apply_reloadable(const struct config *c)
{
	log_set_level(level_from_config(c));
	relay.params.idle_timeout = (double)config_num(c, OPT_sync_timeout);
	relay.params.master_timeout = (double)config_num(c, OPT_master_timeout);
	relay.params.allowplaintext = config_bool(c, OPT_allowplaintext);
	relay.params.compress = config_bool(c, OPT_compress);
	relay.params.tls_required = config_bool(c, OPT_tls_required);
	relay.params.preauth = limits_from_config(c, true);
	relay.params.limits = limits_from_config(c, false);
	relay.max_connections = (size_t)config_num(c, OPT_max_connections);
	relay.params.guard_limits.login_timeout =
	    (double)config_num(c, OPT_login_timeout);
	relay.params.guard_limits.max_preauth =
	    (size_t)config_num(c, OPT_max_preauth_connections);
	relay.params.guard_limits.max_preauth_per_address =
	    (size_t)config_num(c, OPT_max_preauth_per_address);
	relay.params.guard_limits.failed_login_pause =
	    (double)config_num(c, OPT_failedloginpause);
	relay.params.guard_limits.max_login_failures =
	    (unsigned)config_num(c, OPT_max_login_failures);
}

static void
log_store_changes(const struct config *old, const struct config *new)
{
	size_t i;

	for (i = 0; i < config_nstores(new); i++) {
		const struct store_conf *s = config_store(new, i);

		if (config_store_by_name(old, s->name) == NULL)
			log_info("store=%s event=store_added identity=%s "
			    "replicas=%zu", s->name, s->identity, s->nreplicas);
	}
	for (i = 0; i < config_nstores(old); i++) {
		const struct store_conf *s = config_store(old, i);

		if (config_store_by_name(new, s->name) == NULL)
			log_info("store=%s event=store_removed", s->name);
	}
}

static void
reload(void)
{
	char err[512];
	struct config *c = config_load(relay.config_path, err, sizeof(err));
	int i;

	if (c == NULL) {
		log_error("event=reload_failed error=\"%s\" (keeping the "
		    "running configuration)", err);
		return;
	}
	for (i = 0; i < OPT__COUNT; i++)
		if (!config_options[i].reloadable &&
		    strcmp(config_text(c, (enum config_opt)i),
		    config_text(relay.config, (enum config_opt)i)) != 0)
			log_warnx("event=reload option=%s note=\"changed; takes "
			    "effect after a restart\"", config_options[i].name);
	log_store_changes(relay.config, c);
	store_reload(c, config_str(relay.config, OPT_datadir));
	/* Non-reloadable strings stay pointed at the running config. */
	config_free(&relay.config);
	relay.config = c;
	relay.params.servername = *config_str(c, OPT_servername) ?
	    config_str(c, OPT_servername) : relay.hostname;
	apply_reloadable(c);
	if (annotdef_load(config_str(c, OPT_annotation_definitions), err,
	    sizeof(err)) < 0)
		log_error("event=reload_failed option=annotation_definitions "
		    "error=\"%s\" (keeping the entries read before)", err);
	if (relay.metrics != NULL &&
	    metrics_set_auth(relay.metrics, config_str(c, OPT_metrics_auth_file),
	    err, sizeof(err)) < 0)
		log_error("event=reload_failed option=metrics_auth_file "
		    "error=\"%s\" (keeping the users read before)", err);
	log_info("event=reloaded config=%s stores=%zu", relay.config_path,
	    config_nstores(c));
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (w->signum == SIGHUP) {
		reload();
		return;
	}
	log_info("event=stopping signal=%d connections=%zu", w->signum,
	    conn_count());
	listener_free(&relay.listener);
	control_free(&relay.control);
	audit_sched_free(&relay.audits);
	metrics_free(&relay.metrics);
	conn_close_all("BYE shutting down\r\n");
	ev_break(loop, EVBREAK_ALL);
}

/* Refuses to start over a live daemon; returns 0 or -1. */
static int
write_pidfile(const char *path)
{
	char buf[32];
	FILE *fp;
	long pid;

	if ((fp = fopen(path, "r")) != NULL) {
		if (fscanf(fp, "%ld", &pid) == 1 && pid > 0 &&
		    kill((pid_t)pid, 0) == 0 && pid != (long)getpid()) {
			fclose(fp);
			log_error("pidfile=%s event=already_running pid=%ld",
			    path, pid);
			return -1;
		}
		fclose(fp);
	}
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if ((fp = fopen(path, "w")) == NULL || fputs(buf, fp) == EOF ||
	    fclose(fp) == EOF) {
		log_warn("pidfile=%s event=pidfile_failed", path);
		return -1;
	}
	return 0;
}

/* SASL asks for "mech_list" etc.: our sasl_* options. */
static const char *
sasl_option(void *arg, const char *option)
{
	char name[128];

	snprintf(name, sizeof(name), "sasl_%s", option);
	return relay.config ? config_text_by_name(relay.config, name) : NULL;
}

/* The data directory must exist (it is created) and be writable. */
static void
check_datadir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		fatal("datadir=%s event=datadir_unusable", path);
	if (stat(path, &st) < 0)
		fatal("datadir=%s event=datadir_unusable", path);
	if (!S_ISDIR(st.st_mode))
		fatalx("datadir=%s event=datadir_unusable error=\"not a "
		    "directory\"", path);
	if (access(path, W_OK | X_OK) < 0)
		fatal("datadir=%s event=datadir_unusable", path);
}

/*
 * Forks into the background.  The parent waits until the child says it
 * is serving (ready_fd), so "syncrelay -C file" returns once the daemon
 * is up, or exits 1 if the child died starting.  Returns the write end
 * of that pipe in the child.
 */
static int
daemonize(void)
{
	int fds[2], fd;
	pid_t pid;
	char c;

	if (pipe(fds) < 0)
		fatal("pipe");
	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &c, 1) == 1)
			_exit(0);
		fprintf(stderr, "syncrelay: the daemon did not start; its "
		    "reason is in the syslog\n");
		_exit(1);
	}
	close(fds[0]);
	if (setsid() < 0)
		fatal("setsid");
	if (chdir("/") < 0)
		fatal("chdir /");
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return fds[1];
}

/*
 * What the banner offers a master, for -n.  The capabilities reach
 * past the relay (SIEVE-MAILBOX decides how the master sends sieve
 * scripts, and the link replays them so), so they must be what every
 * replica takes: SIEVE-MAILBOX, which Cyrus 3.6, 3.10 and 3.12 sync
 * servers all offer, and never REPLICATION-ARCHIVE (3.10 and later,
 * only with archive_enabled), which a replica without it could not
 * take.  COMPRESS and STARTTLS concern the master's hop alone.
 */
static void
print_offer(const struct config *c)
{
	printf("offers masters: SASL%s%s SIEVE-MAILBOX, what every "
	    "replica takes (Cyrus 3.6, 3.10, 3.12); not "
	    "REPLICATION-ARCHIVE\n",
	    *config_str(c, OPT_tls_server_cert) ? " STARTTLS" : "",
	    config_bool(c, OPT_compress) ? " COMPRESS DEFLATE" : "");
}

int
main(int argc, char **argv)
{
	struct ev_loop *loop;
	ev_signal sigterm, sigint, sighup;
	char err[512], *host = NULL;
	double start_time = ev_time();
	uint16_t port;
	bool check_only = false, foreground = false;
	int ch, facility, ready_fd = -1;

	relay.config_path = DEFAULT_CONFIG;
	while ((ch = getopt(argc, argv, "C:nDfp:Vh")) != -1) {
		switch (ch) {
		case 'C':
			relay.config_path = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'D':
			config_print_defaults(stdout);
			return 0;
		case 'f':
			foreground = true;
			break;
		case 'p':
			free(relay.pidfile);
			relay.pidfile = xstrdup(optarg);
			break;
		case 'V':
			printf("syncrelay %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	relay.config = config_load(relay.config_path, err, sizeof(err));
	if (relay.config == NULL) {
		fprintf(stderr, "syncrelay: %s\n", err);
		return 1;
	}
	/* Before any store is opened: its journal folds through them. */
	if (annotdef_load(config_str(relay.config, OPT_annotation_definitions),
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "syncrelay: %s: annotation_definitions: %s\n",
		    relay.config_path, err);
		config_free(&relay.config);
		return 1;
	}
	if (check_only) {
		const char *auth = config_str(relay.config,
		    OPT_metrics_auth_file);
		size_t i, nrep = 0;

		if (*auth) {
			struct htpasswd *h = htpasswd_load(auth, err,
			    sizeof(err));

			if (h == NULL) {
				fprintf(stderr, "syncrelay: %s: "
				    "metrics_auth_file: %s\n",
				    relay.config_path, err);
				config_free(&relay.config);
				return 1;
			}
			htpasswd_free(&h);
		}

		for (i = 0; i < config_nstores(relay.config); i++)
			nrep += config_store(relay.config, i)->nreplicas;
		printf("%s: OK, %zu stores, %zu replicas\n", relay.config_path,
		    config_nstores(relay.config), nrep);
		print_offer(relay.config);
		config_free(&relay.config);
		return 0;
	}

	facility = log_facility_from_name(config_str(relay.config,
	    OPT_syslog_facility));
	log_init("syncrelay", facility, foreground);
	if (gethostname(relay.hostname, sizeof(relay.hostname) - 1) < 0)
		snprintf(relay.hostname, sizeof(relay.hostname), "localhost");
	relay.params.servername = *config_str(relay.config, OPT_servername) ?
	    config_str(relay.config, OPT_servername) : relay.hostname;
	apply_reloadable(relay.config);
	if (relay.pidfile == NULL)
		relay.pidfile = xstrdup(config_str(relay.config, OPT_pidfile));

	check_datadir(config_str(relay.config, OPT_datadir));
	if (*config_str(relay.config, OPT_tls_server_cert) ||
	    *config_str(relay.config, OPT_tls_server_key)) {
		relay.params.tls_ctx = tlsctx_server_new(
		    config_str(relay.config, OPT_tls_server_cert),
		    config_str(relay.config, OPT_tls_server_key),
		    config_str(relay.config, OPT_tls_client_ca_file), err,
		    sizeof(err));
		if (relay.params.tls_ctx == NULL)
			fatalx("event=tls_failed error=\"%s\"", err);
	} else if (relay.params.tls_required) {
		fatalx("event=tls_failed error=\"tls_required needs "
		    "tls_server_cert and tls_server_key\"");
	}
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVFLAG_AUTO);

	if (config_split_address(config_str(relay.config, OPT_listen), 2005,
	    &host, &port, err, sizeof(err)) < 0)
		fatalx("listen: %s", err);
	relay.params.guard = guard_new(loop, &relay.params.guard_limits);
	relay.listener = listener_new(loop, host, port, &relay.params,
	    &relay.max_connections, err, sizeof(err));
	free(host);
	if (relay.listener == NULL)
		fatalx("event=listen_failed error=\"%s\"", err);
	if (*config_str(relay.config, OPT_metrics_listen)) {
		relay.metrics = metrics_new(loop, config_str(relay.config,
		    OPT_metrics_listen), start_time, err, sizeof(err));
		if (relay.metrics == NULL)
			fatalx("event=metrics_listen_failed error=\"%s\" "
			    "(set metrics_listen to a free address, or empty "
			    "to serve no metrics)", err);
		if (metrics_set_auth(relay.metrics, config_str(relay.config,
		    OPT_metrics_auth_file), err, sizeof(err)) < 0)
			fatalx("event=metrics_auth_failed error=\"%s\"", err);
	}
	if (!foreground) {
		ready_fd = daemonize();
		ev_loop_fork(loop);
	}
	if (write_pidfile(relay.pidfile) < 0)
		return 1;
	/* After daemonizing: the journals' writer threads must not fork. */
	{
		static const struct saslsrv_options so = { sasl_option, NULL };

		if (saslsrv_init("syncrelay", &so, err, sizeof(err)) < 0)
			fatalx("event=sasl_init_failed error=\"%s\"", err);
		if (saslcli_init(err, sizeof(err)) < 0)
			fatalx("event=sasl_init_failed error=\"%s\"", err);
	}
	if (cursorq_start() < 0)
		fatal("event=thread_failed what=cursor_writer");
	(void)store_check_nofile(relay.config);
	if (store_open_all(loop, relay.config, config_str(relay.config,
	    OPT_datadir), err, sizeof(err)) < 0)
		fatalx("event=store_open_failed error=\"%s\"", err);

	if (*config_str(relay.config, OPT_control_socket)) {
		relay.control = control_new(loop, config_str(relay.config,
		    OPT_control_socket), config_str(relay.config,
		    OPT_control_socket_mode), config_str(relay.config,
		    OPT_control_socket_group), reload, err, sizeof(err));
		if (relay.control == NULL)
			fatalx("event=control_failed error=\"%s\"", err);
	}

	relay.audits = audit_sched_new(loop);

	ev_signal_init(&sigterm, signal_cb, SIGTERM);
	ev_signal_init(&sigint, signal_cb, SIGINT);
	ev_signal_init(&sighup, signal_cb, SIGHUP);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sighup);
	if (ready_fd >= 0) {
		/* Tell the waiting parent that we are serving. */
		if (write(ready_fd, "1", 1) != 1)
			log_warn("event=ready_signal_failed");
		close(ready_fd);
	}
	log_info("event=started version=%s listen=%s config=%s stores=%zu "
	    "pid=%ld", PACKAGE_VERSION, listener_address(relay.listener),
	    relay.config_path, config_nstores(relay.config), (long)getpid());
	if (relay.metrics != NULL)
		log_info("event=metrics_listening address=%s",
		    metrics_address(relay.metrics));

	ev_run(loop, 0);

	audit_sched_free(&relay.audits);
	metrics_free(&relay.metrics);
	store_close_all();
	cursorq_stop();
	conn_reap(loop);
	guard_free(&relay.params.guard);
	tlsctx_free(&relay.params.tls_ctx);
	unlink(relay.pidfile);
	log_info("event=stopped");
	free(relay.pidfile);
	config_free(&relay.config);
	return 0;
}
