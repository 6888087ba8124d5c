/*
 * metrics.c -- Prometheus metrics over HTTP (see metrics.h).
 *
 * libmicrohttpd runs in its external mode with epoll: it owns one epoll
 * descriptor (its listening socket and connections are in it), which an
 * ev_io watches; an ev_timer covers what MHD_get_timeout() asks for
 * (idle connections to close, work left from the last round).  Every
 * callback runs inside MHD_run(), on the loop, so a scrape reads the
 * stores directly through snapshot_store(), the one way the daemon's
 * statistics are read.
 *
 * Format: text exposition format 0.0.4.  All samples of a family come
 * together after its HELP and TYPE lines; label values are escaped
 * (backslash, double quote, newline).  Only GET and HEAD of /metrics are
 * served; a scrape's request body, if any, is ignored.
 *
 * With metrics_auth_file set, every request first needs HTTP basic
 * authentication by a user of that htpasswd file (htpasswd.c); without
 * it the answer is 401 with a WWW-Authenticate challenge, whatever the
 * URL.  The file is re-read on SIGHUP (metrics_set_auth()).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/config.h"
#include "relay/replay/link.h"
#include "relay/ingest/guard.h"
#include "relay/ingest/listener.h"
#include "relay/ops/htpasswd.h"
#include "relay/ops/metrics.h"
#include "relay/ops/snapshot.h"

#define METRICS_MAX_CONNECTIONS 16
#define METRICS_IDLE_TIMEOUT 10		/* seconds */
#define METRICS_MAX_BYTES ((size_t)256 << 20)
#define METRICS_REALM "syncrelay metrics"

struct metrics {
	struct ev_loop *loop;
	struct MHD_Daemon *mhd;
	ev_io io;			/* MHD's epoll descriptor */
	ev_timer timer;			/* MHD_get_timeout() */
	double start_time;
	struct htpasswd *auth;		/* NULL: no authentication asked */
	char address[320];
};

/* ---- the text format --------------------------------------------------- */

/* Appends s as a label value: \ " and newline escaped. */
static void
put_label_value(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_puts(out, "\\\\");
		else if (*s == '"')
			buf_puts(out, "\\\"");
		else if (*s == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *s);
	}
}

/* Appends a float the way the format spells it (NaN, +Inf, -Inf). */
static void
put_double(struct buf *out, double v)
{
	if (isnan(v))
		buf_puts(out, "NaN");
	else if (isinf(v))
		buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	else
		buf_printf(out, "%.15g", v);
}

static void
family(struct buf *out, const char *name, const char *type,
    const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/*
 * Starts a sample: name{store="..."[,replica="..."][,extra="..."].
 * The caller closes it with end_u64() or end_double().
 */
static void
begin(struct buf *out, const char *name, const struct stats_store *s,
    const struct stats_link *l, const char *extra, const char *extra_value)
{
	buf_printf(out, "%s{store=\"", name);
	put_label_value(out, s->name);
	if (l != NULL) {
		buf_puts(out, "\",replica=\"");
		put_label_value(out, l->name);
	}
	if (extra != NULL) {
		buf_printf(out, "\",%s=\"", extra);
		put_label_value(out, extra_value);
	}
	buf_puts(out, "\"} ");
}

static void
end_u64(struct buf *out, uint64_t v)
{
	buf_printf(out, "%" PRIu64 "\n", v);
}

static void
end_double(struct buf *out, double v)
{
	put_double(out, v);
	buf_putc(out, '\n');
}

/* A family with one unsigned value per store or per link. */
struct u64_metric {
	const char *name, *type, *help;
	size_t offset;			/* of the uint64_t in the struct */
};

#define U64_AT(p, off) (*(const uint64_t *)(const void *)((const char *)(p) + \
	(off)))

static const struct u64_metric store_u64[] = {
	{ "syncrelay_store_head_lsn", "gauge",
	  "Newest durable LSN of the store's journal",
	  offsetof(struct stats_store, head_lsn) },
	{ "syncrelay_store_first_lsn", "gauge",
	  "Oldest LSN the store's journal keeps (0: empty)",
	  offsetof(struct stats_store, first_lsn) },
	{ "syncrelay_store_journal_bytes", "gauge",
	  "Bytes on disk of the store's journal segments",
	  offsetof(struct stats_store, journal_bytes) },
	{ "syncrelay_store_journal_segments", "gauge",
	  "Number of segments of the store's journal",
	  offsetof(struct stats_store, journal_segments) },
	{ "syncrelay_store_refusing", "gauge",
	  "1 while the store refuses its master's writes for want of disk "
	  "(free space below the floor, or a failed write not yet recovered)",
	  offsetof(struct stats_store, refusing) },
	{ "syncrelay_store_failed", "gauge",
	  "1 when the store could not be opened (a damaged journal or shadow): "
	  "it is set aside and its master refused; the log says why",
	  offsetof(struct stats_store, failed) },
	{ "syncrelay_store_disk_full_since_seconds", "gauge",
	  "Epoch seconds since the free space is below the floor (0: it is not)",
	  offsetof(struct stats_store, disk_full_since_s) },
	{ "syncrelay_store_disk_free_bytes", "gauge",
	  "Free bytes of the file system holding the store, as last measured",
	  offsetof(struct stats_store, disk_free_bytes) },
	{ "syncrelay_store_disk_floor_bytes", "gauge",
	  "Free-space floor below which the store refuses its master's writes",
	  offsetof(struct stats_store, disk_floor_bytes) },
	{ "syncrelay_store_ingested_records_total", "counter",
	  "Records from the master made durable, bodies included",
	  offsetof(struct stats_store, ingested_records) },
	{ "syncrelay_store_ingested_bytes_total", "counter",
	  "Payload bytes of the records from the master made durable",
	  offsetof(struct stats_store, ingested_bytes) },
};

static const struct u64_metric link_u64[] = {
	{ "syncrelay_replica_cursor_lsn", "gauge",
	  "Last LSN the replica acknowledged",
	  offsetof(struct stats_link, cursor_lsn) },
	{ "syncrelay_replica_lag_records", "gauge",
	  "Records in the journal the replica has not acknowledged",
	  offsetof(struct stats_link, lag_records) },
	{ "syncrelay_replica_lag_bytes", "gauge",
	  "Journal bytes after the replica's cursor",
	  offsetof(struct stats_link, lag_bytes) },
	{ "syncrelay_replica_replayed_records_total", "counter",
	  "Records the replica acknowledged since the daemon started",
	  offsetof(struct stats_link, replayed_records) },
	{ "syncrelay_replica_replayed_bytes_total", "counter",
	  "Bytes sent to the replica since the daemon started",
	  offsetof(struct stats_link, replayed_bytes) },
	{ "syncrelay_replica_connects_total", "counter",
	  "Successful logins to the replica since the daemon started",
	  offsetof(struct stats_link, connects) },
	{ "syncrelay_audit_mismatched_mailboxes", "gauge",
	  "Mailboxes that differed between the replica and the shadow at the "
	  "last audit that compared them all (syncrelayctl audit, "
	  "replica_audit_interval)",
	  offsetof(struct stats_link, audit_mismatched) },
	{ "syncrelay_replica_parked", "gauge",
	  "Mailboxes and records the replica refused, parked while the rest "
	  "replicates (0: none)",
	  offsetof(struct stats_link, parked) },
};

/* A state name as a label value: spaces as underscores. */
static void
state_label(const char *name, char *out, size_t len)
{
	size_t i;

	snprintf(out, len, "%s", name);
	for (i = 0; out[i]; i++)
		if (out[i] == ' ')
			out[i] = '_';
}

static void
format_store_gauges(struct buf *out, const struct stats_store *st, size_t n)
{
	size_t i, k;

	family(out, "syncrelay_store_master_connected", "gauge",
	    "1 while a master session is logged in to the store");
	for (i = 0; i < n; i++) {
		begin(out, "syncrelay_store_master_connected", &st[i], NULL,
		    NULL, NULL);
		end_u64(out, st[i].master_connected);
	}
	family(out, "syncrelay_store_master_sessions", "gauge",
	    "Master sessions logged in to the store");
	for (i = 0; i < n; i++) {
		begin(out, "syncrelay_store_master_sessions", &st[i], NULL,
		    NULL, NULL);
		end_u64(out, st[i].master_sessions);
	}
	family(out, "syncrelay_store_master_hosts", "gauge",
	    "Different hosts among the store's master sessions (over 1: "
	    "two masters may be writing the store)");
	for (i = 0; i < n; i++) {
		begin(out, "syncrelay_store_master_hosts", &st[i], NULL,
		    NULL, NULL);
		end_u64(out, st[i].master_hosts);
	}
	family(out, "syncrelay_store_master_last_command_timestamp_seconds",
	    "gauge", "When the master last sent a command, epoch seconds "
	    "(0: never since start)");
	for (i = 0; i < n; i++) {
		begin(out, "syncrelay_store_master_last_command_timestamp_"
		    "seconds", &st[i], NULL, NULL, NULL);
		end_double(out, st[i].master_last_command);
	}
	for (k = 0; k < sizeof(store_u64) / sizeof(store_u64[0]); k++) {
		family(out, store_u64[k].name, store_u64[k].type,
		    store_u64[k].help);
		for (i = 0; i < n; i++) {
			begin(out, store_u64[k].name, &st[i], NULL, NULL,
			    NULL);
			end_u64(out, U64_AT(&st[i], store_u64[k].offset));
		}
	}
	family(out, "syncrelay_store_errors_total", "counter",
	    "NO and BAD replies to the master, by Cyrus error name");
	for (i = 0; i < n; i++)
		for (k = 0; k < st[i].nerrors; k++) {
			begin(out, "syncrelay_store_errors_total", &st[i],
			    NULL, "code", st[i].errors[k].code);
			end_u64(out, st[i].errors[k].n);
		}
}

static void
format_fsync_histogram(struct buf *out, const struct stats_store *st,
    size_t n)
{
	const char *name = "syncrelay_journal_fsync_duration_seconds";
	char le[32];
	size_t i, b;

	family(out, name, "histogram",
	    "Time one group commit's fdatasync of the journal took");
	for (i = 0; i < n; i++) {
		for (b = 0; b < STATS_FSYNC_BUCKETS; b++) {
			snprintf(le, sizeof(le), "%.15g",
			    stats_fsync_bounds[b]);
			begin(out, "syncrelay_journal_fsync_duration_seconds_"
			    "bucket", &st[i], NULL, "le", le);
			end_u64(out, st[i].fsync_buckets[b]);
		}
		begin(out, "syncrelay_journal_fsync_duration_seconds_bucket",
		    &st[i], NULL, "le", "+Inf");
		end_u64(out, st[i].fsyncs);
		begin(out, "syncrelay_journal_fsync_duration_seconds_sum",
		    &st[i], NULL, NULL, NULL);
		end_double(out, st[i].fsync_seconds_sum);
		begin(out, "syncrelay_journal_fsync_duration_seconds_count",
		    &st[i], NULL, NULL, NULL);
		end_u64(out, st[i].fsyncs);
	}
}

static void
parked_series(struct buf *out, const struct stats_store *s,
    const struct stats_link *l, const struct stats_parked *p)
{
	char lsn[32];

	snprintf(lsn, sizeof(lsn), "%llu", (unsigned long long)p->lsn);
	buf_puts(out, "syncrelay_replica_parked_since_timestamp_seconds"
	    "{store=\"");
	put_label_value(out, s->name);
	buf_puts(out, "\",replica=\"");
	put_label_value(out, l->name);
	buf_printf(out, "\",%s=\"", p->mailbox ? "mailbox" : "record");
	put_label_value(out, p->name);
	buf_puts(out, "\",lsn=\"");
	put_label_value(out, lsn);
	buf_puts(out, "\",reply=\"");
	put_label_value(out, p->reply);
	buf_puts(out, "\"} ");
	end_double(out, p->since);
}

static void
format_links(struct buf *out, const struct stats_store *st, size_t n)
{
	char cur[sizeof(st->links->state)], label[sizeof(cur)];
	size_t i, j, k;

	family(out, "syncrelay_replica_state", "gauge",
	    "1 for the link's current state, 0 for the others");
	for (i = 0; i < n; i++)
		for (j = 0; j < st[i].nlinks; j++) {
			const struct stats_link *l = &st[i].links[j];

			state_label(l->paused ? "paused" : l->state, cur,
			    sizeof(cur));
			for (k = 0; k < LINK_STATE_COUNT; k++) {
				state_label(link_state_name(
				    (enum link_state)k), label, sizeof(label));
				begin(out, "syncrelay_replica_state", &st[i], l,
				    "state", label);
				end_u64(out, strcmp(cur, label) == 0);
			}
		}
	for (k = 0; k < sizeof(link_u64) / sizeof(link_u64[0]); k++) {
		family(out, link_u64[k].name, link_u64[k].type,
		    link_u64[k].help);
		for (i = 0; i < n; i++)
			for (j = 0; j < st[i].nlinks; j++) {
				begin(out, link_u64[k].name, &st[i],
				    &st[i].links[j], NULL, NULL);
				end_u64(out, U64_AT(&st[i].links[j],
				    link_u64[k].offset));
			}
	}
	family(out, "syncrelay_replica_lag_seconds", "gauge",
	    "Age of the oldest record the replica has not acknowledged "
	    "(0: caught up)");
	for (i = 0; i < n; i++)
		for (j = 0; j < st[i].nlinks; j++) {
			begin(out, "syncrelay_replica_lag_seconds", &st[i],
			    &st[i].links[j], NULL, NULL);
			end_double(out, st[i].links[j].lag_seconds);
		}
	family(out, "syncrelay_replica_parked_since_timestamp_seconds", "gauge",
	    "When a parked mailbox or record was parked, epoch seconds (the "
	    "first few per replica; labels: what, the first LSN refused, the "
	    "replica's reply)");
	for (i = 0; i < n; i++)
		for (j = 0; j < st[i].nlinks; j++)
			for (k = 0; k < st[i].links[j].parked &&
			    k < STATS_MAX_PARKED; k++)
				parked_series(out, &st[i], &st[i].links[j],
				    &st[i].links[j].parked_list[k]);
	family(out, "syncrelay_audit_last_timestamp_seconds", "gauge",
	    "When the last audit that compared every mailbox of the replica "
	    "with the shadow finished, epoch seconds (0: none since start)");
	for (i = 0; i < n; i++)
		for (j = 0; j < st[i].nlinks; j++) {
			begin(out, "syncrelay_audit_last_timestamp_seconds",
			    &st[i], &st[i].links[j], NULL, NULL);
			end_double(out, st[i].links[j].audit_time);
		}
	family(out, "syncrelay_replica_waiting_seconds", "gauge",
	    "How long the link has waited for the replica's current reply "
	    "(0: it waits for nothing; past replica_timeout it reconnects)");
	for (i = 0; i < n; i++)
		for (j = 0; j < st[i].nlinks; j++) {
			begin(out, "syncrelay_replica_waiting_seconds", &st[i],
			    &st[i].links[j], NULL, NULL);
			end_double(out, st[i].links[j].waiting_seconds);
		}
	family(out, "syncrelay_replica_errors_total", "counter",
	    "Errors on the link to the replica, by result code");
	for (i = 0; i < n; i++)
		for (j = 0; j < st[i].nlinks; j++)
			for (k = 0; k < st[i].links[j].nerrors; k++) {
				begin(out, "syncrelay_replica_errors_total",
				    &st[i], &st[i].links[j], "code",
				    st[i].links[j].errors[k].code);
				end_u64(out, st[i].links[j].errors[k].n);
			}
}

void
metrics_format(struct buf *out, const struct stats_store *stores, size_t n,
    double start_time)
{
	family(out, "syncrelay_up", "gauge", "1 while the relay serves");
	buf_puts(out, "syncrelay_up 1\n");
	family(out, "syncrelay_start_time_seconds", "gauge",
	    "When the relay started, epoch seconds");
	buf_puts(out, "syncrelay_start_time_seconds ");
	end_double(out, start_time);
	format_store_gauges(out, stores, n);
	format_fsync_histogram(out, stores, n);
	format_links(out, stores, n);
}

void
metrics_format_guard(struct buf *out, const struct guard_counts *g)
{
	family(out, "syncrelay_preauth_connections", "gauge",
	    "Connections to the csync port not yet authenticated");
	buf_printf(out, "syncrelay_preauth_connections %" PRIu64 "\n",
	    g->preauth_open);
	family(out, "syncrelay_preauth_closed_total", "counter",
	    "Unauthenticated connections the relay closed, by reason");
	buf_printf(out, "syncrelay_preauth_closed_total{reason=\"evicted\"} "
	    "%" PRIu64 "\n", g->evicted);
	buf_printf(out, "syncrelay_preauth_closed_total{reason=\"login_timeout"
	    "\"} %" PRIu64 "\n", g->deadline);
	buf_printf(out, "syncrelay_preauth_closed_total{reason=\"login_"
	    "failures\"} %" PRIu64 "\n", g->failures_closed);
	buf_printf(out, "syncrelay_preauth_closed_total{reason=\"literal\"} "
	    "%" PRIu64 "\n", g->literal_closed);
	family(out, "syncrelay_login_failures_total", "counter",
	    "Failed logins on the csync port");
	buf_printf(out, "syncrelay_login_failures_total %" PRIu64 "\n",
	    g->login_failures);
}

/* ---- HTTP -------------------------------------------------------------- */

/* Takes every store's snapshot now and formats it. */
static char *
scrape(const struct metrics *m, size_t *len)
{
	struct buf out;
	struct stats_store *stores;
	struct guard_counts gc;
	size_t i, n = snapshot_store_count();

	stores = xcalloc(n + 1, sizeof(*stores));
	for (i = 0; i < n; i++)
		snapshot_store(i, &stores[i]);
	buf_init(&out, METRICS_MAX_BYTES);
	metrics_format(&out, stores, n, m->start_time);
	guard_counts(&gc);
	metrics_format_guard(&out, &gc);
	for (i = 0; i < n; i++)
		stats_store_release(&stores[i]);
	free(stores);
	*len = out.len;
	if (out.s == NULL)
		return xstrdup("");
	return buf_release(&out);
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned status, char *text, size_t len,
    const char *content_type, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* True when the request carries a user and password of the auth file. */
static bool
authorized(struct metrics *m, struct MHD_Connection *c)
{
	char *user, *password = NULL;
	bool ok;

	if (m->auth == NULL)
		return true;
	user = MHD_basic_auth_get_username_password(c, &password);
	ok = user != NULL && password != NULL &&
	    htpasswd_check(m->auth, user, password);
	if (!ok)
		log_debug("metrics=%s event=http_unauthorized user=%s",
		    m->address, user ? user : "(none)");
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		MHD_free(password);
	}
	if (user != NULL)
		MHD_free(user);
	return ok;
}

static enum MHD_Result
refuse_unauthorized(struct MHD_Connection *c)
{
	static char text[] = "Unauthorized: basic authentication "
	    "by a user of metrics_auth_file\n";
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	ret = MHD_queue_basic_auth_fail_response(c, METRICS_REALM, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	static int seen;
	struct metrics *m = cls;
	const char *plain = "text/plain; charset=utf-8";
	char *text;
	size_t len;

	if (*req_cls == NULL) {
		/* Headers only so far: answer once the request is whole. */
		*req_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!authorized(m, c))
		return refuse_unauthorized(c);
	if (strcmp(url, "/metrics") != 0) {
		text = xstrdup("Not found; metrics are at /metrics\n");
		return reply_text(c, MHD_HTTP_NOT_FOUND, text, strlen(text),
		    plain, NULL);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		text = xstrdup("Method not allowed\n");
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, text,
		    strlen(text), plain, "GET, HEAD");
	}
	text = scrape(m, &len);
	return reply_text(c, MHD_HTTP_OK, text, len,
	    "text/plain; version=0.0.4; charset=utf-8", NULL);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct metrics *m = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warnx("metrics=%s event=http_error error=\"%s\"", m->address, msg);
}

/* Runs MHD's pending work, then arms the timer for its next deadline. */
static void
run_mhd(struct metrics *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(m->mhd);
	ev_timer_stop(m->loop, &m->timer);
	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) {
		ev_timer_set(&m->timer, (double)ms / 1000.0, 0.0);
		ev_timer_start(m->loop, &m->timer);
	}
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	run_mhd(w->data);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	run_mhd(w->data);
}

struct metrics *
metrics_new(struct ev_loop *loop, const char *address, double start_time,
    char *err, size_t err_len)
{
	struct metrics *m;
	const union MHD_DaemonInfo *info;
	char *host = NULL;
	uint16_t port;
	int fd;

	if (config_split_address(address, 9464, &host, &port, err,
	    err_len) < 0)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	fd = listener_socket(host, port, m->address, sizeof(m->address), err,
	    err_len);
	free(host);
	if (fd < 0) {
		free(m);
		return NULL;
	}
	m->loop = loop;
	m->start_time = start_time;
	m->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL,
	    NULL, on_request, m,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m,	/* first, says MHD */
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_IDLE_TIMEOUT,
	    MHD_OPTION_END);
	if (m->mhd == NULL ||
	    (info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD)) ==
	    NULL) {
		snprintf(err, err_len, "metrics on %s: libmicrohttpd would not "
		    "start", m->address);
		/* Without a daemon the socket is left to the exit that
		 * follows: MHD may or may not have closed it already. */
		if (m->mhd != NULL)
			MHD_stop_daemon(m->mhd);
		free(m);
		return NULL;
	}
	ev_io_init(&m->io, io_cb, info->epoll_fd, EV_READ);
	m->io.data = m;
	ev_io_start(loop, &m->io);
	ev_init(&m->timer, timer_cb);
	m->timer.data = m;
	run_mhd(m);
	return m;
}

void
metrics_free(struct metrics **mp)
{
	struct metrics *m = *mp;

	if (m == NULL)
		return;
	ev_io_stop(m->loop, &m->io);
	ev_timer_stop(m->loop, &m->timer);
	MHD_stop_daemon(m->mhd);	/* closes the listening socket too */
	htpasswd_free(&m->auth);
	free(m);
	*mp = NULL;
}

const char *
metrics_address(const struct metrics *m)
{
	return m->address;
}

int
metrics_set_auth(struct metrics *m, const char *path, char *err,
    size_t err_len)
{
	struct htpasswd *h = NULL;

	if (*path != '\0' &&
	    (h = htpasswd_load(path, err, err_len)) == NULL)
		return -1;
	htpasswd_free(&m->auth);
	m->auth = h;
	return 0;
}
