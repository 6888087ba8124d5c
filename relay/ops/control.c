/*
 * control.c -- the control socket (see control.h).
 *
 * Clients are few and short-lived: each one is a small state machine on
 * the event loop (read one line, answer, close), with a timer for
 * "wait".  Nothing here blocks the loop: output is written as the
 * socket accepts it.
 */
#include "autoconf.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/ops/audit.h"
#include "relay/ops/control.h"
#include "relay/replay/link.h"
#include "relay/ops/snapshot.h"
#include "relay/ops/stats.h"
#include "relay/store.h"

#define MAX_REQUEST 4096
#define WAIT_POLL 0.1
#define CLIENT_TIMEOUT 30.0	/* to send a request, or read an answer */
#define MAX_WAIT 1e7		/* seconds */

struct client;

struct control {
	struct ev_loop *loop;
	int fd;
	ev_io accept_w;
	char *path;
	void (*reload)(void);
	struct client *clients;
};

struct client {
	struct control *ctl;
	struct client *next;
	int fd;
	ev_io read_w, write_w;
	ev_timer idle_t;		/* gives up on a stuck client */
	struct buf in, out;
	size_t out_off;
	bool answered;
	/* wait */
	ev_timer wait_t;
	char *store, *replica;
	uint64_t target;
	double deadline;
	/* audit */
	struct audit *audit;
};

/* ---- formatting ---------------------------------------------------------- */

/* A JSON number; NaN and infinities are not JSON. */
static void
json_num(struct buf *b, double v)
{
	if (v != v || v > 1e300 || v < -1e300)
		buf_puts(b, "null");
	else
		buf_printf(b, "%.3f", v);
}

static void
json_codes(struct buf *b, const struct stats_code_count *t, size_t n)
{
	size_t i;

	buf_putc(b, '{');
	for (i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_put_json_str(b, t[i].code);
		buf_printf(b, ":%llu", (unsigned long long)t[i].n);
	}
	buf_putc(b, '}');
}

/* ,"parked":N,"parked_list":[{...}] */
static void
json_parked(struct buf *b, const struct stats_link *l, double now)
{
	unsigned i;

	buf_printf(b, ",\"parked\":%llu,\"parked_list\":[",
	    (unsigned long long)l->parked);
	for (i = 0; i < l->parked && i < STATS_MAX_PARKED; i++) {
		const struct stats_parked *p = &l->parked_list[i];

		buf_printf(b, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "",
		    p->mailbox ? "mailbox" : "record");
		buf_put_json_str(b, p->name);
		buf_puts(b, ",\"reply\":");
		buf_put_json_str(b, p->reply);
		buf_printf(b, ",\"lsn\":%llu,\"tries\":%u,\"since_seconds\":",
		    (unsigned long long)p->lsn, p->tries);
		json_num(b, now - p->since);
		buf_puts(b, ",\"next_try_seconds\":");
		json_num(b, p->next_try);
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
}

/* The state status shows: "seeding" while a seed runs on a live link
 * (metrics keep the link's own state). */
static const char *
shown_state(const struct stats_link *l)
{
	if (l->seeding && (strcmp(l->state, "streaming") == 0 ||
	    strcmp(l->state, "catching up") == 0 ||
	    strcmp(l->state, "repairing") == 0))
		return "seeding";
	return l->state;
}

static void
json_store(struct buf *b, const struct stats_store *s, double now)
{
	size_t i;

	buf_puts(b, "{\"name\":");
	buf_put_json_str(b, s->name);
	buf_puts(b, ",\"identity\":");
	buf_put_json_str(b, s->identity);
	buf_printf(b, ",\"failed\":%s", s->failed ? "true" : "false");
	if (s->failed) {	/* nothing else is known of it */
		buf_puts(b, ",\"error\":");
		buf_put_json_str(b, s->failed_error);
		buf_puts(b, ",\"replicas\":[]}");
		return;
	}
	buf_printf(b, ",\"master\":{\"connected\":%s,\"peer\":",
	    s->master_connected ? "true" : "false");
	buf_put_json_str(b, s->master_peer);
	buf_printf(b, ",\"sessions\":%u,\"hosts\":%u,\"peers\":[",
	    s->master_sessions, s->master_hosts);
	for (i = 0; i < s->master_sessions && i < STATS_MAX_PEERS; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_put_json_str(b, s->master_peers[i]);
	}
	buf_puts(b, "],\"last_command_age_seconds\":");
	if (s->master_last_command > 0)
		json_num(b, now - s->master_last_command);
	else
		buf_puts(b, "null");
	buf_printf(b, "},\"head_lsn\":%llu,\"first_lsn\":%llu,"
	    "\"journal_bytes\":%llu,\"journal_segments\":%llu,"
	    "\"ingested_records\":%llu,\"ingested_bytes\":%llu,\"errors\":",
	    (unsigned long long)s->head_lsn, (unsigned long long)s->first_lsn,
	    (unsigned long long)s->journal_bytes,
	    (unsigned long long)s->journal_segments,
	    (unsigned long long)s->ingested_records,
	    (unsigned long long)s->ingested_bytes);
	json_codes(b, s->errors, s->nerrors);
	buf_printf(b, ",\"disk\":{\"refusing\":%s,\"full\":%s,\"since\":",
	    s->disk_full || s->storage_failed ? "true" : "false",
	    s->disk_full ? "true" : "false");
	if (s->disk_full)
		json_num(b, s->disk_full_since);
	else
		buf_puts(b, "null");
	buf_printf(b, ",\"free_bytes\":%llu,\"floor_bytes\":%llu,"
	    "\"storage_failed\":%s}", (unsigned long long)s->disk_free_bytes,
	    (unsigned long long)s->disk_floor_bytes,
	    s->storage_failed ? "true" : "false");
	buf_puts(b, ",\"replicas\":[");
	for (i = 0; i < s->nlinks; i++) {
		const struct stats_link *l = &s->links[i];

		if (i)
			buf_putc(b, ',');
		buf_puts(b, "{\"name\":");
		buf_put_json_str(b, l->name);
		buf_puts(b, ",\"address\":");
		buf_put_json_str(b, l->address);
		buf_puts(b, ",\"state\":");
		buf_put_json_str(b, shown_state(l));
		buf_printf(b, ",\"paused\":%s,\"reason\":",
		    l->paused ? "true" : "false");
		buf_put_json_str(b, l->reason);
		buf_printf(b, ",\"cursor_lsn\":%llu,\"lag_records\":%llu,"
		    "\"lag_bytes\":%llu,\"lag_seconds\":",
		    (unsigned long long)l->cursor_lsn,
		    (unsigned long long)l->lag_records,
		    (unsigned long long)l->lag_bytes);
		json_num(b, l->lag_seconds);
		buf_puts(b, ",\"replay_rate_records_per_second\":");
		json_num(b, l->replay_rate);
		buf_puts(b, ",\"eta_seconds\":");
		if (l->eta_seconds >= 0)
			json_num(b, l->eta_seconds);
		else
			buf_puts(b, "null");
		buf_printf(b, ",\"replayed_records\":%llu,\"replayed_bytes\":%llu,"
		    "\"connects\":%llu,\"last_error\":",
		    (unsigned long long)l->replayed_records,
		    (unsigned long long)l->replayed_bytes,
		    (unsigned long long)l->connects);
		buf_put_json_str(b, l->last_error);
		buf_puts(b, ",\"last_error_age_seconds\":");
		if (l->last_error_time > 0)
			json_num(b, now - l->last_error_time);
		else
			buf_puts(b, "null");
		buf_printf(b, ",\"left_alone\":%u,\"left_alone_names\":",
		    l->left_alone);
		buf_put_json_str(b, l->left_alone_names);
		buf_puts(b, ",\"waiting_seconds\":");
		json_num(b, l->waiting_seconds);
		buf_printf(b, ",\"checking\":%s,\"check_reason\":",
		    l->checking ? "true" : "false");
		buf_put_json_str(b, l->checking ? l->check_why : "");
		buf_puts(b, ",\"needs_seed\":");
		buf_put_json_str(b, l->needs_seed);
		buf_puts(b, ",\"seeding\":");
		if (l->seeding) {
			buf_printf(b, "{\"mailboxes_done\":%llu,"
			    "\"mailboxes_total\":%llu,\"bytes\":%llu,"
			    "\"seconds\":", (unsigned long long)l->seed_done,
			    (unsigned long long)l->seed_total,
			    (unsigned long long)l->seed_bytes);
			json_num(b, l->seed_seconds);
			buf_puts(b, ",\"eta_seconds\":");
			if (l->seed_eta >= 0)
				json_num(b, l->seed_eta);
			else
				buf_puts(b, "null");
			buf_putc(b, '}');
		} else {
			buf_puts(b, "null");
		}
		json_parked(b, l, now);
		buf_puts(b, ",\"errors\":");
		json_codes(b, l->errors, l->nerrors);
		buf_putc(b, '}');
	}
	buf_puts(b, "]}");
}

static void
human_bytes(char *out, size_t len, uint64_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%llu B", (unsigned long long)n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static void
human_secs(char *out, size_t len, double s)
{
	if (s < 0)
		snprintf(out, len, "-");
	else if (s < 120)
		snprintf(out, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(out, len, "%ldm%02lds", (long)(s / 60),
		    (long)s % 60);
	else
		snprintf(out, len, "%.1fh", s / 3600);
}

static void
text_store(struct buf *b, const struct stats_store *s, double now)
{
	char jb[32], lb[32], ls[32], eta[32], age[32];
	size_t i;
	unsigned j;

	if (s->failed) {
		buf_printf(b, "store %s  identity %s  FAILED: not opened, its "
		    "master is refused\n  error    %s\n", s->name, s->identity,
		    s->failed_error);
		return;
	}
	human_bytes(jb, sizeof(jb), s->journal_bytes);
	buf_printf(b, "store %s  identity %s  head %llu  journal %s in %llu "
	    "segment%s\n", s->name, s->identity,
	    (unsigned long long)s->head_lsn, jb,
	    (unsigned long long)s->journal_segments,
	    s->journal_segments == 1 ? "" : "s");
	if (s->disk_full || s->storage_failed) {
		char fb[32], fl[32], since[64];
		time_t t = (time_t)s->disk_full_since;
		struct tm tm;

		human_bytes(fb, sizeof(fb), s->disk_free_bytes);
		human_bytes(fl, sizeof(fl), s->disk_floor_bytes);
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC",
		    gmtime_r(&t, &tm));
		if (s->disk_full)
			buf_printf(b, "  refusing: disk full since %s, free %s "
			    "(floor %s)\n", since, fb, fl);
		else
			buf_printf(b, "  refusing: a journal or shadow write "
			    "failed; recovering (free %s)\n", fb);
	}
	if (s->master_connected) {
		human_secs(age, sizeof(age), s->master_last_command > 0 ?
		    now - s->master_last_command : -1);
		if (s->master_sessions > 1) {
			buf_printf(b, "  master   %u sessions from ",
			    s->master_sessions);
			for (j = 0; j < s->master_sessions &&
			    j < STATS_MAX_PEERS; j++)
				buf_printf(b, "%s%s", j ? ", " : "",
				    s->master_peers[j]);
			buf_printf(b, ", last command %s ago\n", age);
		} else {
			buf_printf(b, "  master   connected from %s, last "
			    "command %s ago\n", s->master_peer, age);
		}
		if (s->master_hosts > 1)
			buf_printf(b, "  WARNING  master sessions from %u "
			    "different hosts: two masters may be writing this "
			    "store\n", s->master_hosts);
	} else {
		buf_puts(b, "  master   not connected\n");
	}
	for (i = 0; i < s->nlinks; i++) {
		const struct stats_link *l = &s->links[i];

		human_bytes(lb, sizeof(lb), l->lag_bytes);
		human_secs(ls, sizeof(ls), l->lag_seconds);
		human_secs(eta, sizeof(eta), l->eta_seconds);
		buf_printf(b, "  replica  %s (%s)  %s", l->name, l->address,
		    shown_state(l));
		if (*l->reason)
			buf_printf(b, " (%s)", l->reason);
		buf_printf(b, "\n           cursor %llu  lag %llu records, %s, "
		    "%s  rate %.1f/s  eta %s\n",
		    (unsigned long long)l->cursor_lsn,
		    (unsigned long long)l->lag_records, lb, ls, l->replay_rate,
		    eta);
		if (l->waiting_seconds >= 1) {
			human_secs(age, sizeof(age), l->waiting_seconds);
			buf_printf(b, "           waiting %s for the replica's "
			    "reply\n", age);
		}
		if (*l->last_error && strcmp(l->last_error, l->reason) != 0) {
			human_secs(age, sizeof(age),
			    now - l->last_error_time);
			buf_printf(b, "           last error %s ago: %s\n", age,
			    l->last_error);
		}
		if (l->seeding) {
			human_bytes(lb, sizeof(lb), l->seed_bytes);
			human_secs(age, sizeof(age), l->seed_seconds);
			human_secs(eta, sizeof(eta), l->seed_eta);
			buf_printf(b, "           seeding from the shadow: %llu of "
			    "%llu mailboxes taken, %s sent, for %s, eta %s\n",
			    (unsigned long long)l->seed_done,
			    (unsigned long long)l->seed_total, lb, age, eta);
		} else if (l->checking) {
			buf_printf(b, "           checking against the shadow "
			    "after an outage: %s\n", l->check_why);
		}
		if (*l->needs_seed)
			buf_printf(b, "           needs a seed: %s\n",
			    l->needs_seed);
		if (l->left_alone)
			buf_printf(b, "           left alone by repair: %u "
			    "(%s%s)\n", l->left_alone, l->left_alone_names,
			    l->left_alone > 8 ? ", ..." : "");
		if (l->parked)
			buf_printf(b, "           parked: %llu (the replica "
			    "refused them; the rest goes on; syncrelayctl retry "
			    "or giveup)\n", (unsigned long long)l->parked);
		for (j = 0; j < l->parked && j < STATS_MAX_PARKED; j++) {
			const struct stats_parked *p = &l->parked_list[j];

			human_secs(age, sizeof(age), now - p->since);
			human_secs(eta, sizeof(eta), p->next_try);
			buf_printf(b, "             %s %s  LSN %llu  since %s  "
			    "tries %u  next try in %s: %s\n", p->mailbox ?
			    "mailbox" : "record", p->name,
			    (unsigned long long)p->lsn, age, p->tries, eta,
			    p->reply);
		}
		if (l->parked > STATS_MAX_PARKED)
			buf_printf(b, "             ... and %llu more (see the "
			    "log, event=parked)\n", (unsigned long long)(
			    l->parked - STATS_MAX_PARKED));
	}
}

/* ---- requests ---------------------------------------------------------- */

static void client_free(struct client *c);

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;

	while (c->out_off < c->out.len) {
		ssize_t n = write(c->fd, c->out.s + c->out_off,
		    c->out.len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev_io_start(loop, &c->write_w);
			return;
		}
		if (n <= 0)
			break;		/* the client went away */
		c->out_off += (size_t)n;
	}
	client_free(c);
}

/* Sends the output and the exit line, then closes. */
static void
answer(struct client *c, int status)
{
	buf_printf(&c->out, "exit=%d\n", status);
	c->answered = true;
	ev_io_stop(c->ctl->loop, &c->read_w);
	ev_timer_again(c->ctl->loop, &c->idle_t);	/* time to read it */
	write_cb(c->ctl->loop, &c->write_w, 0);
}

static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = w->data;

	log_warnx("control=%s event=control_client_timeout note=\"%s\"",
	    c->ctl->path, c->answered ? "it did not read its answer" :
	    "it sent no request");
	client_free(c);
}

/* The store called name, or NULL after saying there is none. */
static struct store *
find_store(struct client *c, const char *name)
{
	struct store *st = store_by_name(name);

	if (st == NULL)
		buf_printf(&c->out, "!no store called %s\n", name);
	return st;
}

static int
do_status(struct client *c, const char *store, bool json)
{
	double now = ev_time();
	size_t i, n = snapshot_store_count(), shown = 0;

	if (store && store_failed_by_name(store) == NULL &&
	    find_store(c, store) == NULL)
		return 2;
	if (json)
		buf_printf(&c->out, "{\"pid\":%ld,\"time\":%.3f,\"stores\":[",
		    (long)getpid(), now);
	for (i = 0; i < n; i++) {
		struct stats_store s;

		snapshot_store(i, &s);
		if (store && strcmp(s.name, store) != 0) {
			stats_store_release(&s);
			continue;
		}
		if (json) {
			if (shown)
				buf_putc(&c->out, ',');
			json_store(&c->out, &s, now);
		} else {
			text_store(&c->out, &s, now);
		}
		shown++;
		stats_store_release(&s);
	}
	if (json)
		buf_puts(&c->out, "]}\n");
	else if (shown == 0)
		buf_puts(&c->out, "no stores configured\n");
	return 0;
}

/* The link of store to replica, or NULL after saying which is missing. */
static struct link *
find_link(struct client *c, const char *store, const char *replica)
{
	struct store *st = find_store(c, store);
	size_t i;

	if (st == NULL)
		return NULL;
	for (i = 0; i < st->nlinks; i++)
		if (strcmp(link_name(st->links[i]), replica) == 0)
			return st->links[i];
	buf_printf(&c->out, "!store %s has no replica called %s\n", store,
	    replica);
	return NULL;
}

/* Are the waited-for links at the target?  Writes the lag left if not. */
static bool
wait_done(struct client *c, struct buf *why)
{
	struct store *st = store_by_name(c->store);
	bool done = true, any = false;
	size_t i;

	if (st == NULL) {
		buf_printf(why, "!store %s is gone\n", c->store);
		return false;
	}
	for (i = 0; i < st->nlinks; i++) {
		struct stats_link sl;

		link_stats(st->links[i], &sl);
		if (strcmp(c->replica, "*") != 0 &&
		    strcmp(c->replica, sl.name) != 0)
			continue;
		any = true;
		if (sl.cursor_lsn >= c->target && sl.parked == 0 &&
		    !sl.checking && !*sl.needs_seed && !sl.seeding)
			continue;
		done = false;
		if (why && sl.seeding)
			buf_printf(why, "!store %s replica %s: seeding from the "
			    "shadow: %llu of %llu mailboxes taken\n", c->store,
			    sl.name, (unsigned long long)sl.seed_done,
			    (unsigned long long)sl.seed_total);
		if (why && sl.checking)
			buf_printf(why, "!store %s replica %s (%s): being checked "
			    "against the shadow after an outage (%s)\n",
			    c->store, sl.name, sl.state, sl.check_why);
		if (why && *sl.needs_seed)
			buf_printf(why, "!store %s replica %s (%s): needs a seed: "
			    "%s\n", c->store, sl.name, sl.state, sl.needs_seed);
		/* Parked is not caught up: the replica lacks those. */
		if (why && sl.parked)
			buf_printf(why, "!store %s replica %s (%s): %llu parked, "
			    "e.g. %s %s (%s): the replica refused them; "
			    "syncrelayctl retry or giveup\n", c->store, sl.name,
			    sl.state, (unsigned long long)sl.parked,
			    sl.parked_list[0].mailbox ?
			    "mailbox" : "record", sl.parked_list[0].name,
			    sl.parked_list[0].reply);
		if (why && sl.cursor_lsn < c->target)
			buf_printf(why, "!store %s replica %s (%s): %llu "
			    "records behind LSN %llu, %llu bytes, %.0f s\n",
			    c->store, sl.name, sl.state,
			    (unsigned long long)(c->target - sl.cursor_lsn),
			    (unsigned long long)c->target,
			    (unsigned long long)sl.lag_bytes, sl.lag_seconds);
	}
	return done && any;
}

static void
wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *c = w->data;
	struct buf why = BUF_INIT;

	if (wait_done(c, NULL)) {
		ev_timer_stop(loop, w);
		if (strcmp(c->replica, "*") == 0)
			buf_printf(&c->out, "caught up: every replica of store "
			    "%s reached LSN %llu\n", c->store,
			    (unsigned long long)c->target);
		else
			buf_printf(&c->out, "caught up: store %s replica %s "
			    "reached LSN %llu\n", c->store, c->replica,
			    (unsigned long long)c->target);
		answer(c, 0);
		return;
	}
	if (ev_now(loop) < c->deadline)
		return;
	ev_timer_stop(loop, w);
	wait_done(c, &why);
	buf_append(&c->out, why.s, why.len);
	buf_printf(&c->out, "!timed out waiting for store %s\n", c->store);
	buf_free(&why);
	answer(c, 1);
}

/* retry STORE [REPLICA]: every parked entry of the link(s) now. */
static int
do_retry(struct client *c, const char *store, const char *replica)
{
	struct store *st;
	struct link *l;
	struct stats_link sl;
	unsigned long long n = 0;
	size_t i;

	if (replica != NULL) {
		if ((l = find_link(c, store, replica)) == NULL)
			return 2;
		link_stats(l, &sl);
		n = sl.parked;
		link_retry_parked(l);
	} else {
		if ((st = find_store(c, store)) == NULL)
			return 2;
		for (i = 0; i < st->nlinks; i++) {
			link_stats(st->links[i], &sl);
			n += sl.parked;
			link_retry_parked(st->links[i]);
		}
	}
	buf_printf(&c->out, "store %s: retrying %llu parked entr%s now (see "
	    "status)\n", store, n, n == 1 ? "y" : "ies");
	return 0;
}

static void
audit_done(void *arg, struct audit *a)
{
	struct client *c = arg;
	int status = audit_report(a, &c->out);

	c->audit = NULL;
	audit_free(&a);
	answer(c, status);
}

/*
 * audit STORE REPLICA|* [user=USER] [repair] [json] [timeout=SECONDS]
 * [from=OTHER_REPLICA]:
 * answered once the audit is over (audit.h).
 */
static void
do_audit(struct client *c, int argc, char **argv)
{
	struct audit_opts o = { .store = argv[1], .timeout = 300 };
	char err[300];
	int i;

	if (strcmp(argv[2], "*") != 0)
		o.replica = argv[2];
	for (i = 3; i < argc; i++) {
		char *end;

		if (strncmp(argv[i], "user=", 5) == 0 && argv[i][5])
			o.user = argv[i] + 5;
		else if (strcmp(argv[i], "repair") == 0)
			o.repair = true;
		else if (strncmp(argv[i], "from=", 5) == 0 && argv[i][5])
			o.from = argv[i] + 5;
		else if (strcmp(argv[i], "json") == 0)
			o.json = true;
		else if (strncmp(argv[i], "timeout=", 8) == 0 &&
		    (o.timeout = strtod(argv[i] + 8, &end)) >= 0 &&
		    o.timeout <= MAX_WAIT && *end == '\0' && end != argv[i] + 8)
			continue;
		else {
			buf_printf(&c->out, "!bad audit argument %s\n", argv[i]);
			answer(c, 2);
			return;
		}
	}
	c->audit = audit_start(c->ctl->loop, &o, audit_done, c, err,
	    sizeof(err));
	if (c->audit == NULL) {
		buf_printf(&c->out, "!%s\n", err);
		answer(c, 2);
		return;
	}
	ev_timer_stop(c->ctl->loop, &c->idle_t);	/* the audit rules */
}

static void
request(struct client *c, char *line)
{
	char *argv[10], *save = NULL, *tok;
	int argc = 0, status = 0;
	struct store *st;
	struct link *l;

	for (tok = strtok_r(line, " \t", &save); tok && argc < 10;
	    tok = strtok_r(NULL, " \t", &save)) {
		argv[argc++] = tok;
		/* giveup's NAME is the rest of the line: names have spaces. */
		if (argc == 3 && strcmp(argv[0], "giveup") == 0 && save &&
		    *save) {
			argv[argc++] = save;
			break;
		}
	}
	if (argc == 0) {
		buf_puts(&c->out, "!empty request\n");
		answer(c, 2);
		return;
	}
	log_debug("event=control_request request=%s", argv[0]);
	if (strcmp(argv[0], "status") == 0 && argc <= 3) {
		const char *store = NULL;
		bool json = false;
		int i;

		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "json") == 0)
				json = true;
			else
				store = argv[i];
		status = do_status(c, store, json);
	} else if ((strcmp(argv[0], "pause") == 0 ||
	    strcmp(argv[0], "resume") == 0) && argc == 3) {
		bool pause = argv[0][0] == 'p';

		if ((l = find_link(c, argv[1], argv[2])) == NULL) {
			status = 2;
		} else {
			link_set_paused(l, pause);
			buf_printf(&c->out, "store %s replica %s %s\n", argv[1],
			    argv[2], pause ? "paused" : "resumed");
		}
	} else if (strcmp(argv[0], "wait") == 0 && argc == 4) {
		char *end;
		double secs = strtod(argv[3], &end);

		if (*end != '\0' || end == argv[3] || !(secs >= 0) ||
		    secs > MAX_WAIT) {
			buf_printf(&c->out, "!bad timeout %s\n", argv[3]);
			answer(c, 2);
			return;
		}
		if ((st = find_store(c, argv[1])) == NULL ||
		    (strcmp(argv[2], "*") != 0 &&
		    find_link(c, argv[1], argv[2]) == NULL)) {
			answer(c, 2);
			return;
		}
		c->store = xstrdup(argv[1]);
		c->replica = xstrdup(argv[2]);
		c->target = journal_durable_lsn(st->journal);
		c->deadline = ev_now(c->ctl->loop) + secs;
		ev_timer_stop(c->ctl->loop, &c->idle_t);	/* wait_t rules */
		ev_timer_init(&c->wait_t, wait_cb, 0, WAIT_POLL);
		c->wait_t.data = c;
		ev_timer_start(c->ctl->loop, &c->wait_t);
		return;
	} else if (strcmp(argv[0], "reset") == 0 && argc == 4) {
		char *end, err[300];
		unsigned long long lsn = strtoull(argv[3], &end, 10);

		if (*end != '\0' || *argv[3] == '\0' || *argv[3] == '-') {
			buf_printf(&c->out, "!bad LSN %s\n", argv[3]);
			status = 2;
		} else if ((l = find_link(c, argv[1], argv[2])) == NULL) {
			status = 2;
		} else if (link_reset(l, lsn, err, sizeof(err)) < 0) {
			buf_printf(&c->out, "!%s\n", err);
			status = 2;
		} else {
			buf_printf(&c->out, "store %s replica %s: cursor set to "
			    "LSN %llu\n", argv[1], argv[2], lsn);
		}
	} else if (strcmp(argv[0], "retry") == 0 && (argc == 2 || argc == 3)) {
		status = do_retry(c, argv[1], argc == 3 ? argv[2] : NULL);
	} else if (strcmp(argv[0], "giveup") == 0 && argc == 4) {
		size_t n;

		if ((l = find_link(c, argv[1], argv[2])) == NULL) {
			status = 2;
		} else if ((n = link_give_up(l, argv[3])) == 0) {
			buf_printf(&c->out, "!store %s replica %s has nothing "
			    "parked named %s\n", argv[1], argv[2], argv[3]);
			status = 2;
		} else {
			buf_printf(&c->out, "store %s replica %s: gave up %zu "
			    "parked entr%s named %s (the replica keeps what "
			    "it has of it)\n", argv[1], argv[2], n, n == 1 ?
			    "y" : "ies", argv[3]);
		}
	} else if (strcmp(argv[0], "seed") == 0 && (argc == 3 || argc == 4)) {
		char err[300];

		if ((l = find_link(c, argv[1], argv[2])) == NULL) {
			status = 2;
		} else if (link_seed(l, argc == 4 ? argv[3] : NULL, err,
		    sizeof(err)) < 0) {
			buf_printf(&c->out, "!%s\n", err);
			status = 2;
		} else {
			buf_printf(&c->out, "store %s replica %s: seeding from the "
			    "shadow; the link streams from LSN %llu (see status, "
			    "and wait)\n", argv[1], argv[2],
			    (unsigned long long)link_acked(l));
		}
	} else if (strcmp(argv[0], "audit") == 0 && argc >= 3) {
		do_audit(c, argc, argv);
		return;
	} else if (strcmp(argv[0], "reload") == 0 && argc == 1) {
		c->ctl->reload();
		buf_puts(&c->out, "reloaded (see the log for what changed)\n");
	} else {
		buf_printf(&c->out, "!unknown request \"%s\" (status [STORE] "
		    "[json], pause|resume STORE REPLICA, wait STORE REPLICA|* "
		    "SECONDS, reset STORE REPLICA LSN, retry STORE [REPLICA], "
		    "giveup STORE REPLICA NAME, seed STORE REPLICA [FROM], audit STORE "
		    "REPLICA|* [user=USER] "
		    "[repair] [json] [timeout=SECONDS], reload)\n", argv[0]);
		status = 2;
	}
	answer(c, status);
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;
	char tmp[1024], *nl;
	ssize_t n = read(c->fd, tmp, sizeof(tmp));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c);		/* gone before asking anything */
		return;
	}
	buf_append(&c->in, tmp, (size_t)n);
	if ((nl = memchr(c->in.s, '\n', c->in.len)) == NULL) {
		if (c->in.len > MAX_REQUEST) {
			buf_puts(&c->out, "!request too long\n");
			answer(c, 2);
		}
		return;
	}
	*nl = '\0';
	if (nl > c->in.s && nl[-1] == '\r')
		nl[-1] = '\0';
	ev_io_stop(loop, &c->read_w);	/* one request per connection */
	request(c, c->in.s);
}

static void
client_free(struct client *c)
{
	struct control *ctl = c->ctl;
	struct client **pp;

	for (pp = &ctl->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ev_io_stop(ctl->loop, &c->read_w);
	ev_io_stop(ctl->loop, &c->write_w);
	ev_timer_stop(ctl->loop, &c->idle_t);
	if (c->store)
		ev_timer_stop(ctl->loop, &c->wait_t);
	audit_free(&c->audit);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->store);
	free(c->replica);
	free(c);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = w->data;
	struct client *c;
	int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control=%s event=accept_failed", ctl->path);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	c->fd = fd;
	buf_init(&c->in, 0);
	buf_init(&c->out, 0);
	ev_io_init(&c->read_w, read_cb, fd, EV_READ);
	c->read_w.data = c;
	ev_io_init(&c->write_w, write_cb, fd, EV_WRITE);
	c->write_w.data = c;
	ev_io_start(loop, &c->read_w);
	ev_init(&c->idle_t, idle_cb);
	c->idle_t.repeat = CLIENT_TIMEOUT;
	c->idle_t.data = c;
	ev_timer_again(loop, &c->idle_t);
	c->next = ctl->clients;
	ctl->clients = c;
}

/* ---- setup ---------------------------------------------------------------- */

struct control *
control_new(struct ev_loop *loop, const char *path, const char *mode,
    const char *group, void (*reload)(void), char *err, size_t err_len)
{
	struct sockaddr_un sun;
	struct control *ctl;
	unsigned long m = 0660;
	char *end, *dir, *slash;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, err_len, "control_socket %s: path too long",
		    path);
		return NULL;
	}
	if (mode && *mode) {
		m = strtoul(mode, &end, 8);
		if (*end != '\0' || m > 0777) {
			snprintf(err, err_len, "control_socket_mode %s: not an "
			    "octal mode", mode);
			return NULL;
		}
	}
	/* The directory (e.g. /run/syncrelay) may not exist after boot. */
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, err_len, "control_socket %s: mkdir %s: %s",
			    path, dir, strerror(errno));
			free(dir);
			return NULL;
		}
	}
	free(dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "socket: %s", strerror(errno));
		return NULL;
	}
	/* A socket someone answers on belongs to a running daemon. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
	    errno == EAGAIN) {
		close(fd);
		snprintf(err, err_len, "control_socket %s is in use by "
		    "another running syncrelay", path);
		return NULL;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, (mode_t)m) < 0 || listen(fd, 64) < 0) {
		snprintf(err, err_len, "control_socket %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (group && *group) {
		struct group *gr = getgrnam(group);

		if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) < 0) {
			snprintf(err, err_len, "control_socket_group %s: %s",
			    group, gr == NULL ? "no such group" :
			    strerror(errno));
			close(fd);
			unlink(path);
			return NULL;
		}
	}
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->loop = loop;
	ctl->fd = fd;
	ctl->path = xstrdup(path);
	ctl->reload = reload;
	ev_io_init(&ctl->accept_w, accept_cb, fd, EV_READ);
	ctl->accept_w.data = ctl;
	ev_io_start(loop, &ctl->accept_w);
	log_info("event=control_listening path=%s mode=%03lo", path, m);
	return ctl;
}

void
control_free(struct control **cp)
{
	struct control *ctl = *cp;

	if (ctl == NULL)
		return;
	while (ctl->clients) {
		struct client *c = ctl->clients;

		if (!c->answered && c->store) {
			buf_puts(&c->out, "!the daemon is stopping\n");
			answer(c, 3);	/* frees c, or leaves it writing */
			if (ctl->clients == c)
				client_free(c);
		} else {
			client_free(c);
		}
	}
	ev_io_stop(ctl->loop, &ctl->accept_w);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
	*cp = NULL;
}
