/*
 * store.c -- opening stores and routing their journal completions.
 *
 * A store that cannot be opened (a journal damaged in the middle, a
 * shadow SQLite refuses) is set aside, not fatal: it is kept in a list of
 * failures with the reason, its master is refused at login, status and
 * the metrics show it, and every other store serves.  A reload tries to
 * open it again (after the operator set its directory aside).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/ingest/order.h"
#include "relay/diskguard.h"
#include "relay/replay/cursorq.h"
#include "relay/replay/link.h"
#include "relay/store.h"
#include "storage/fold.h"
#include "storage/retention.h"
#include "storage/workpool.h"

static struct store **stores;
static size_t nstores;
static struct ev_loop *stores_loop;
static struct store_failure *failed;	/* stores that could not open */
static size_t nfailed;

/* The failure of the store called name, or NULL. */
static struct store_failure *
failure_of(const char *name)
{
	size_t i;

	for (i = 0; i < nfailed; i++)
		if (strcmp(failed[i].name, name) == 0)
			return &failed[i];
	return NULL;
}

static void
failure_drop(const char *name)
{
	struct store_failure *f = failure_of(name);

	if (f == NULL)
		return;
	free(f->name);
	free(f->identity);
	free(f->error);
	*f = failed[--nfailed];
}

/* sc could not be opened: it is set aside, the others serve. */
static void
failure_note(const struct store_conf *sc, const char *err)
{
	struct store_failure *f;

	log_error("store=%s event=store_open_failed error=\"%s\" note=\"this "
	    "store is set aside: its master is refused; the other stores "
	    "serve\"", sc->name, err);
	failure_drop(sc->name);
	failed = xreallocarray(failed, nfailed + 1, sizeof(*failed));
	f = &failed[nfailed++];
	f->name = xstrdup(sc->name);
	f->identity = xstrdup(sc->identity);
	f->error = xstrdup(err);
}

static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct store *st = w->data;

	size_t i;

	journal_collect(st->journal);
	for (i = 0; i < st->nlinks; i++)
		link_wake(st->links[i]);
	if (st->on_progress)
		st->on_progress(st, st->on_progress_arg);
}

/* Runs on the journal's writer thread: only a thread-safe poke. */
static void
journal_wakeup(void *arg)
{
	struct store *st = arg;

	ev_async_send(st->loop, &st->wake);
}

static int add_replica(struct store *st, const struct replica_conf *rc,
    char *err, size_t err_len);

/* A rolled segment can go at once: run retention again now. */
static void
roll_done(void *arg, uint64_t lsn, int err)
{
	struct store *st = arg;

	if (err != 0 || st->closing)
		return;
	log_info("store=%s event=segment_rolled lsn=%llu note=\"disk below "
	    "its free-space floor: the segment every replica has can go\"",
	    st->name, (unsigned long long)lsn);
	ev_timer_stop(st->loop, &st->retention);
	ev_timer_set(&st->retention, 0.01,
	    (double)config_num(st->config, OPT_retention_interval));
	ev_timer_start(st->loop, &st->retention);
}

/* True when nothing of the master's is on its way into the store. */
static bool
store_quiet(struct store *st)
{
	return !(st->master_quiet && !st->master_quiet(st)) &&
	    journal_pending_bytes(st->journal) == 0 &&
	    !shadow_in_transaction(st->shadow);
}

/*
 * An idle store gives back what it holds open (issue 17: a thousand
 * stores, most of them idle): once nothing new reached its journal for
 * store_idle_close seconds and its master is quiet, the journal writer
 * closes the segment and frees its buffers (once per quiet period), and
 * the shadow's connection is closed (again each second if something
 * opened it meanwhile).
 */
static void
store_idle_check(struct store *st, double now)
{
	uint64_t lsn = journal_durable_lsn(st->journal);

	if (lsn != st->idle_lsn || st->master_last_command > st->idle_since) {
		st->idle_lsn = lsn;
		st->idle_since = st->master_last_command > now ?
		    st->master_last_command : now;
		st->idled = false;
		return;
	}
	if (now - st->idle_since <
	    (double)config_num(st->config, OPT_store_idle_close) ||
	    !store_quiet(st) || journal_error(st->journal) != 0)
		return;
	/* Retention, status or a link's GET may open the shadow again
	 * while the store stays idle: close it again (a no-op if closed). */
	shadow_idle(st->shadow);
	if (!st->idled)
		journal_idle(st->journal);
	st->idled = true;
}

/*
 * Every second: is the disk below its floor, and can a failed journal
 * or a stale shadow be recovered now (relay/diskguard.c)?
 */
static void
disk_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct store *st = w->data;
	bool was = st->disk_full;

	diskguard_check(st, ev_now(loop));
	if ((journal_error(st->journal) != 0 || st->shadow_stale) &&
	    store_quiet(st))
		diskguard_recover(st);
	store_idle_check(st, ev_now(loop));
	if (st->disk_full && !was) {
		/* Retention under pressure, now rather than at its time. */
		ev_timer_stop(loop, &st->retention);
		ev_timer_set(&st->retention, 0.01,
		    (double)config_num(st->config, OPT_retention_interval));
		ev_timer_start(loop, &st->retention);
	}
}

/*
 * Applies the retention policy: drops journal segments every replica
 * has, and acts on the size cap.  It waits for a moment when the master
 * session has nothing in flight (its shadow transaction must not mix
 * with retention's).
 */
static void
retention_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct store *st = w->data;
	const struct config *c = st->config;
	struct retention_policy p;
	struct retention_replica *reps;
	struct retention_result res;
	bool was = st->refuse_writes;
	size_t i;
	int r;

	/*
	 * A master that just went away may still have a change waiting
	 * for the journal, its shadow transaction open: wait for that too.
	 */
	if (st->removed)
		return;		/* no replicas to measure against: keep all */
	/* A stale shadow needs the journal after its LSN for its fold. */
	if (!store_quiet(st) || c == NULL || st->shadow_stale)
		return;
	p.pressure = st->disk_full;
	p.min_age_s = config_num(c, OPT_retention_min_age);
	p.min_bytes = config_num(c, OPT_retention_min_bytes);
	p.max_bytes = config_num(c, OPT_journal_max_bytes);
	p.cap = config_num(c, OPT_journal_full_policy) == 1 ?
	    RETENTION_RESYNC : RETENTION_REFUSE;
	reps = xcalloc(st->nlinks + 1, sizeof(*reps));
	for (i = 0; i < st->nlinks; i++) {
		reps[i].name = link_name(st->links[i]);
		reps[i].cursor = st->cursors[i];
		reps[i].hold = link_parked_from(st->links[i]);
	}
	/* The cursors as written (no write runs meanwhile). */
	cursorq_lock();
	r = retention_run(st->name, st->journal, st->shadow, reps, st->nlinks,
	    &p, (uint64_t)(ev_time() * 1e6), &res);
	for (i = 0; r == 0 && res.replicas_marked && i < st->nlinks; i++)
		link_check_resync(st->links[i]);
	cursorq_unlock();
	free(reps);
	if (st->idled)
		shadow_idle(st->shadow);	/* retention opened it */
	if (r < 0) {
		log_error("store=%s event=retention_failed error=\"%s\"",
		    st->name, strerror(-r));
		return;
	}
	if (res.roll && journal_error(st->journal) == 0)
		journal_roll(st->journal, roll_done, st);
	st->refuse_writes = res.refuse_writes;
	if (was && !st->refuse_writes)
		log_info("store=%s event=journal_accepting journal_bytes=%llu "
		    "note=\"under journal_max_bytes again\"", st->name,
		    (unsigned long long)res.bytes_after);
	if (res.replicas_marked)
		for (i = 0; i < st->nlinks; i++)
			link_wake(st->links[i]);
	ev_timer_set(w, (double)config_num(c, OPT_retention_interval),
	    (double)config_num(c, OPT_retention_interval));
	ev_timer_again(loop, w);
}

static void
store_free(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	st->closing = true;
	if (st->loop) {
		ev_timer_stop(st->loop, &st->retention);
		ev_timer_stop(st->loop, &st->disk_t);
	}
	for (i = 0; i < st->nlinks; i++)
		link_free(&st->links[i]);
	free(st->links);
	st->links = NULL;
	st->nlinks = 0;		/* a seed finishing in journal_close sees it */
	if (st->loop)
		ev_async_stop(st->loop, &st->wake);
	journal_close(&st->journal);
	order_free(st);		/* after the completions journal_close ran */
	shadow_close(&st->shadow);
	for (i = 0; i < st->ncursors; i++)
		cursor_close(&st->cursors[i]);
	free(st->cursors);
	strset_clear(&st->seed_asked);
	free(st->name);
	free(st->identity);
	free(st->dir);
	free(st);
}

static struct store *
store_open(struct ev_loop *loop, const struct config *config,
    const struct store_conf *sc, const char *datadir, char *err,
    size_t err_len)
{
	struct store *st = xcalloc(1, sizeof(*st));
	struct journal_opts jo = { 0 };
	char path[4096], e[512];
	long n;
	int r;
	size_t i;

	st->name = xstrdup(sc->name);
	st->identity = xstrdup(sc->identity);
	st->dir = xasprintf("%s/%s", datadir, sc->name);
	st->loop = loop;
	ev_async_init(&st->wake, wake_cb);
	st->wake.data = st;
	ev_async_start(loop, &st->wake);
	if (mkdir(st->dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "store %s: %s: %s", sc->name, st->dir,
		    strerror(errno));
		goto fail;
	}
	st->config = config;
	ev_timer_init(&st->retention, retention_cb,
	    (double)config_num(config, OPT_retention_interval),
	    (double)config_num(config, OPT_retention_interval));
	st->retention.data = st;
	ev_timer_start(loop, &st->retention);
	diskguard_check(st, ev_now(loop));	/* refusing from the start */
	ev_timer_init(&st->disk_t, disk_cb, 1., 1.);
	st->disk_t.data = st;
	ev_timer_start(loop, &st->disk_t);
	jo.segment_bytes = config_num(config, OPT_journal_segment_bytes);
	jo.wakeup = journal_wakeup;
	jo.wakeup_arg = st;
	snprintf(path, sizeof(path), "%s/journal", st->dir);
	if ((r = journal_open(path, &jo, &st->journal, e, sizeof(e))) < 0) {
		/* What cannot be read must not be guessed at: the tested way
		 * back is the one for a lost disk (docs/reliability.md). */
		snprintf(err, err_len, "store %s: %s%s", sc->name, e,
		    r == -EBADMSG ? "; to recover, move the store's directory "
		    "aside, start syncrelay and have the master sync everything "
		    "again (sync_client -A): the replicas keep their mail and "
		    "the relay takes their state (docs/reliability.md)" : "");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/shadow.db", st->dir);
	if (shadow_open(path, &st->shadow, e, sizeof(e)) < 0) {
		snprintf(err, err_len, "store %s: %s", sc->name, e);
		goto fail;
	}
	/* Bring the shadow forward to what the journal holds. */
	snprintf(path, sizeof(path), "%s/journal", st->dir);
	n = fold_journal(st->shadow, path, journal_durable_lsn(st->journal), e,
	    sizeof(e));
	if (n < 0) {
		snprintf(err, err_len, "store %s: rebuilding the shadow: %s",
		    sc->name, e);
		goto fail;
	}
	if (n > 0)
		log_info("store=%s event=shadow_caught_up records=%ld lsn=%llu",
		    sc->name, n, (unsigned long long)shadow_lsn(st->shadow));
	/* Until a master or a link needs it, the store holds no connection
	 * to its shadow (3 descriptors, ~64 KB; reopened on first use). */
	shadow_idle(st->shadow);
	snprintf(path, sizeof(path), "%s/cursors", st->dir);
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "store %s: %s: %s", sc->name, path,
		    strerror(errno));
		goto fail;
	}
	for (i = 0; i < sc->nreplicas; i++) {
		if (add_replica(st, &sc->replicas[i], err, err_len) < 0)
			goto fail;
		/* Not for one a reload adds: it starts from its cursor. */
		link_check_after_start(st->links[st->nlinks - 1]);
	}
	log_info("store=%s event=opened identity=%s lsn=%llu replicas=%zu",
	    sc->name, sc->identity,
	    (unsigned long long)journal_durable_lsn(st->journal),
	    st->ncursors);
	return st;
fail:
	store_free(st);
	return NULL;
}

/* Opens replica i's cursor and starts its link; 0 or -1 with err. */
static int
add_replica(struct store *st, const struct replica_conf *rc, char *err,
    size_t err_len)
{
	char path[4096], e[512];
	struct cursor *c;

	snprintf(path, sizeof(path), "%s/cursors/%s.cursor", st->dir,
	    rc->name);
	if (cursor_open(path, NULL, &c, e, sizeof(e)) < 0) {
		snprintf(err, err_len, "store %s: %s", st->name, e);
		return -1;
	}
	st->cursors = xreallocarray(st->cursors, st->ncursors + 1,
	    sizeof(*st->cursors));
	st->links = xreallocarray(st->links, st->nlinks + 1,
	    sizeof(*st->links));
	st->cursors[st->ncursors++] = c;
	st->links[st->nlinks++] = link_new(st->loop, st, rc, c);
	return 0;
}

/*
 * A reload: replicas added get a link (from their cursor, which may be
 * left from an earlier life), replicas dropped are stopped (their cursor
 * file stays), the others take their new settings.
 */
static void
reload_replicas(struct store *st, const struct store_conf *sc)
{
	char err[512];
	size_t i, j;

	for (i = 0; i < st->nlinks;) {
		bool kept = false;

		for (j = 0; j < sc->nreplicas; j++)
			if (strcmp(sc->replicas[j].name,
			    link_name(st->links[i])) == 0)
				kept = true;
		if (kept) {
			i++;
			continue;
		}
		log_info("store=%s replica=%s event=replica_removed acked=%llu",
		    st->name, link_name(st->links[i]),
		    (unsigned long long)link_acked(st->links[i]));
		link_free(&st->links[i]);
		cursor_close(&st->cursors[i]);
		memmove(&st->links[i], &st->links[i + 1],
		    (st->nlinks - i - 1) * sizeof(*st->links));
		memmove(&st->cursors[i], &st->cursors[i + 1],
		    (st->ncursors - i - 1) * sizeof(*st->cursors));
		st->nlinks--;
		st->ncursors--;
	}
	for (j = 0; j < sc->nreplicas; j++) {
		const struct replica_conf *rc = &sc->replicas[j];
		struct link *l = NULL;

		for (i = 0; i < st->nlinks; i++)
			if (strcmp(link_name(st->links[i]), rc->name) == 0)
				l = st->links[i];
		if (l != NULL) {
			link_reconfigure(l, rc);
			continue;
		}
		if (add_replica(st, rc, err, sizeof(err)) < 0) {
			log_error("store=%s replica=%s event=replica_add_failed "
			    "error=\"%s\"", st->name, rc->name, err);
			continue;
		}
		log_info("store=%s replica=%s event=replica_added acked=%llu",
		    st->name, rc->name, (unsigned long long)link_acked(
		    st->links[st->nlinks - 1]));
	}
}

/*
 * The descriptors the configuration can need at once: the masters'
 * connections, each store's cursors (one per replica), the open journal
 * segment of each store being written, each link's socket and the
 * segment its reader holds, three per open shadow (database, WAL and
 * index, at most max_open_stores), and some for the listeners, the log
 * and the control and metrics sockets.
 */
static uint64_t
nofile_needed(const struct config *config)
{
	uint64_t need = 64 + (uint64_t)config_num(config, OPT_max_connections);
	uint64_t nst = config_nstores(config), shadows;
	size_t i;

	for (i = 0; i < nst; i++)
		need += 1 + 3 * (uint64_t)config_store(config, i)->nreplicas;
	shadows = (uint64_t)config_num(config, OPT_max_open_stores);
	need += 3 * (shadows < nst ? shadows : nst);
	return need;
}

int
store_check_nofile(const struct config *config)
{
	struct rlimit rl;
	uint64_t need = nofile_needed(config);

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need &&
	    rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("event=nofile_raised needed=%llu soft=%llu "
			    "was=%llu", (unsigned long long)need,
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)old);
		else
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		log_warnx("event=nofile_too_low needed=%llu limit=%llu "
		    "hard=%llu stores=%zu note=\"the configuration can need "
		    "more descriptors than the limit allows: raise it "
		    "(LimitNOFILE= in the systemd unit, ulimit -n), or lower "
		    "max_connections or max_open_stores; past the limit "
		    "connections and stores fail with 'Too many open "
		    "files'\"", (unsigned long long)need,
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max, config_nstores(config));
		return -1;
	}
	log_info("event=nofile_ok needed=%llu limit=%llu",
	    (unsigned long long)need, (unsigned long long)rl.rlim_cur);
	return 0;
}

int
store_open_all(struct ev_loop *loop, const struct config *config,
    const char *datadir, char *err, size_t err_len)
{
	size_t i;

	stores_loop = loop;
	workpool_set_threads((unsigned)config_num(config,
	    OPT_journal_writer_threads));
	shadow_set_max_open((size_t)config_num(config, OPT_max_open_stores));
	stores = xcalloc(config_nstores(config) + 1, sizeof(*stores));
	for (i = 0; i < config_nstores(config); i++) {
		struct store *st = store_open(loop, config,
		    config_store(config, i), datadir, err, err_len);

		if (st == NULL)
			failure_note(config_store(config, i), err);
		else
			stores[nstores++] = st;
	}
	return 0;
}

void
store_reload(const struct config *config, const char *datadir)
{
	size_t i, j;
	char err[512];

	workpool_set_threads((unsigned)config_num(config,
	    OPT_journal_writer_threads));
	shadow_set_max_open((size_t)config_num(config, OPT_max_open_stores));
	for (i = 0; i < config_nstores(config); i++) {
		const struct store_conf *sc = config_store(config, i);
		struct store *st = NULL;

		for (j = 0; j < nstores; j++)
			if (strcmp(stores[j]->name, sc->name) == 0)
				st = stores[j];
		if (st != NULL) {
			if (st->removed)
				log_info("store=%s event=store_back note=\"in the "
				    "configuration again\"", st->name);
			st->removed = false;
			/* A changed identity takes effect for new logins. */
			free(st->identity);
			st->identity = xstrdup(sc->identity);
			reload_replicas(st, sc);
			continue;
		}
		st = store_open(stores_loop, config, sc, datadir, err,
		    sizeof(err));
		if (st == NULL) {
			failure_note(sc, err);
			continue;
		}
		failure_drop(sc->name);
		stores = xreallocarray(stores, nstores + 1, sizeof(*stores));
		stores[nstores++] = st;
	}
	for (j = 0; j < nfailed;)	/* gone from the configuration */
		if (config_store_by_name(config, failed[j].name) == NULL)
			failure_drop(failed[j].name);
		else
			j++;
	for (j = 0; j < nstores; j++)
		stores[j]->config = config;	/* the old one is freed next */
	for (j = 0; j < nstores; j++) {
		struct store *st = stores[j];
		struct store_conf none = { st->name, st->identity, NULL, 0, 0 };

		if (st->removed || config_store_by_name(config, st->name))
			continue;
		/*
		 * Its replicas stop and its master can no longer log in (a
		 * failover gives the identity to another store); its data
		 * stays in datadir.  A session still connected finishes.
		 */
		st->removed = true;
		reload_replicas(st, &none);
		log_warnx("store=%s event=removed_from_config master_connected=%s "
		    "note=\"its replicas stop and its master cannot log in; "
		    "its data stays in the datadir\"", st->name,
		    order_sessions(st) > 0 ? "yes" : "no");
	}
}

void
store_close_all(void)
{
	size_t i;

	for (i = 0; i < nstores; i++)
		store_free(stores[i]);
	free(stores);
	stores = NULL;
	nstores = 0;
	while (nfailed > 0)
		failure_drop(failed[0].name);
	free(failed);
	failed = NULL;
}

struct store *
store_by_identity(const char *identity)
{
	size_t i;

	for (i = 0; i < nstores; i++)
		if (!stores[i]->removed &&
		    strcmp(stores[i]->identity, identity) == 0)
			return stores[i];
	return NULL;
}

size_t
store_count(void)
{
	return nstores;
}

struct store *
store_at(size_t i)
{
	return i < nstores ? stores[i] : NULL;
}

struct store *
store_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < nstores; i++)
		if (!stores[i]->removed && strcmp(stores[i]->name, name) == 0)
			return stores[i];
	return NULL;
}

size_t
store_failed_count(void)
{
	return nfailed;
}

const struct store_failure *
store_failed_at(size_t i)
{
	return i < nfailed ? &failed[i] : NULL;
}

const struct store_failure *
store_failed_by_identity(const char *identity)
{
	size_t i;

	for (i = 0; i < nfailed; i++)
		if (strcmp(failed[i].identity, identity) == 0)
			return &failed[i];
	return NULL;
}

const struct store_failure *
store_failed_by_name(const char *name)
{
	return failure_of(name);
}
