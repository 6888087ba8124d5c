/*
 * store.c -- opening stores and routing their journal completions.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/link.h"
#include "relay/store.h"
#include "storage/fold.h"

static struct store **stores;
static size_t nstores;
static struct ev_loop *stores_loop;

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

static void
store_free(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < st->nlinks; i++)
		link_free(&st->links[i]);
	free(st->links);
	if (st->loop)
		ev_async_stop(st->loop, &st->wake);
	journal_close(&st->journal);
	shadow_close(&st->shadow);
	for (i = 0; i < st->ncursors; i++)
		cursor_close(&st->cursors[i]);
	free(st->cursors);
	free(st->name);
	free(st->identity);
	free(st->dir);
	free(st);
}

static struct store *
store_open(struct ev_loop *loop, const struct store_conf *sc,
    const char *datadir, char *err, size_t err_len)
{
	struct store *st = xcalloc(1, sizeof(*st));
	struct journal_opts jo = { 0 };
	char path[4096], e[512];
	long n;
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
	jo.wakeup = journal_wakeup;
	jo.wakeup_arg = st;
	snprintf(path, sizeof(path), "%s/journal", st->dir);
	if (journal_open(path, &jo, &st->journal, e, sizeof(e)) < 0) {
		snprintf(err, err_len, "store %s: %s", sc->name, e);
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
	/* Until a master or a link needs it, the store holds no cached pages
	 * (~70 KB of schema and root pages each, read again on first use). */
	shadow_release_memory(st->shadow);
	snprintf(path, sizeof(path), "%s/cursors", st->dir);
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "store %s: %s: %s", sc->name, path,
		    strerror(errno));
		goto fail;
	}
	st->cursors = xcalloc(sc->nreplicas + 1, sizeof(*st->cursors));
	for (i = 0; i < sc->nreplicas; i++) {
		snprintf(path, sizeof(path), "%s/cursors/%s.cursor", st->dir,
		    sc->replicas[i].name);
		if (cursor_open(path, NULL, &st->cursors[i], e, sizeof(e)) < 0) {
			snprintf(err, err_len, "store %s: %s", sc->name, e);
			goto fail;
		}
		st->ncursors++;
	}
	st->links = xcalloc(sc->nreplicas + 1, sizeof(*st->links));
	for (i = 0; i < sc->nreplicas; i++)
		st->links[st->nlinks++] = link_new(loop, st, &sc->replicas[i],
		    st->cursors[i]);
	log_info("store=%s event=opened identity=%s lsn=%llu replicas=%zu",
	    sc->name, sc->identity,
	    (unsigned long long)journal_durable_lsn(st->journal),
	    st->ncursors);
	return st;
fail:
	store_free(st);
	return NULL;
}

int
store_open_all(struct ev_loop *loop, const struct config *config,
    const char *datadir, char *err, size_t err_len)
{
	size_t i;

	stores_loop = loop;
	stores = xcalloc(config_nstores(config) + 1, sizeof(*stores));
	for (i = 0; i < config_nstores(config); i++) {
		struct store *st = store_open(loop, config_store(config, i),
		    datadir, err, err_len);

		if (st == NULL)
			return -1;
		stores[nstores++] = st;
	}
	return 0;
}

void
store_reload(const struct config *config, const char *datadir)
{
	size_t i, j;
	char err[512];

	for (i = 0; i < config_nstores(config); i++) {
		const struct store_conf *sc = config_store(config, i);
		struct store *st = NULL;

		for (j = 0; j < nstores; j++)
			if (strcmp(stores[j]->name, sc->name) == 0)
				st = stores[j];
		if (st != NULL) {
			/* A changed identity takes effect for new logins. */
			free(st->identity);
			st->identity = xstrdup(sc->identity);
			continue;
		}
		st = store_open(stores_loop, sc, datadir, err, sizeof(err));
		if (st == NULL) {
			log_error("store=%s event=open_failed error=\"%s\"",
			    sc->name, err);
			continue;
		}
		stores = xreallocarray(stores, nstores + 1, sizeof(*stores));
		stores[nstores++] = st;
	}
	for (j = 0; j < nstores; j++)
		if (config_store_by_name(config, stores[j]->name) == NULL)
			log_warnx("store=%s event=removed_from_config note=\"it "
			    "keeps running until the daemon restarts\"",
			    stores[j]->name);
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
}

struct store *
store_by_identity(const char *identity)
{
	size_t i;

	for (i = 0; i < nstores; i++)
		if (strcmp(stores[i]->identity, identity) == 0)
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
		if (strcmp(stores[i]->name, name) == 0)
			return stores[i];
	return NULL;
}
