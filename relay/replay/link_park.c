/*
 * link_park.c -- what a replica refused and repair could not fix,
 * parked so that the rest of the store goes on (design.md invariant 8).
 *
 * A refused mailbox is parked by its UNIQUEID: later updates of it are
 * not sent (the replay skips them), and a retry sends it whole from the
 * shadow, which covers every update skipped meanwhile.  Another refused
 * record (a sieve script, a quota root, an annotation...) is parked by
 * what it changes; a retry sends that record again, and a later record
 * for the same thing that the replica accepts settles it.  Retries come
 * with a backoff from PARK_RETRY_MIN to PARK_RETRY_MAX seconds, or at
 * once on "syncrelayctl retry"; "syncrelayctl giveup" drops an entry,
 * loudly.  Nothing parked is ever dropped silently: an entry goes when
 * the replica accepts it, when the master deletes the mailbox, or on
 * the operator's word.
 *
 * The list is written (storage/parked.h) before the cursor passes the
 * refused record, so a restart keeps it.  It is written on the event
 * loop: a small file, written only when something is parked or settled.
 * Two changes only mark it dirty, for link_park_flush() (at the end of
 * an audit's tick, and every second): mailboxes an audit parks to have
 * them sent whole (park_defer; an empty replica's refill parks every
 * mailbox of the store, and rewriting the whole list each time made that
 * quadratic), and a mailbox the replica took whole (a crash before the
 * flush only sends it whole once more).
 *
 * This file calls only link_core.c; the replay and repair call it.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/getcmd_full.h"
#include "relay/replay/link_int.h"
#include "relay/store.h"
#include "storage/fold.h"
#include "storage/journal.h"
#include "storage/mboxname.h"
#include "storage/shadow.h"

#define PARK_RETRY_MIN 10.0
#define PARK_RETRY_MAX 600.0

/* Makes the parked list on disk what l holds; 0 or a negative errno. */
static int
save(struct link *l)
{
	struct parked *v = xreallocarray(NULL, l->nparked + 1, sizeof(*v));
	size_t i;
	int r;

	for (i = 0; i < l->nparked; i++)
		v[i] = l->parked[i].p;
	r = parked_save(l->parked_path, NULL, v, l->nparked);
	free(v);
	if (r == 0)
		l->parked_dirty = false;
	if (r < 0)
		log_error("store=%s replica=%s event=parked_not_kept path=%s "
		    "error=\"%s\"", l->st->name, l->rc.name, l->parked_path,
		    strerror(-r));
	return r;
}

static void
drop_entry(struct link *l, size_t i)
{
	memmove(&l->parked[i], &l->parked[i + 1],
	    (l->nparked - i - 1) * sizeof(*l->parked));
	l->nparked--;
}

/* The index of the entry of this kind and key, or -1. */
static long
find(const struct link *l, char kind, const char *key)
{
	size_t i;

	for (i = 0; i < l->nparked; i++)
		if (l->parked[i].p.kind == kind &&
		    strcmp(l->parked[i].p.key, key) == 0)
			return (long)i;
	return -1;
}

int
link_park_load(struct link *l)
{
	struct parked *v = NULL;
	size_t n = 0, i;
	char err[600];
	int r;

	free(l->parked_path);
	l->parked_path = xasprintf("%s/cursors/%s.parked", l->st->dir,
	    l->rc.name);
	r = parked_load(l->parked_path, NULL, &v, &n, err, sizeof(err));
	l->park_unread = r < 0;
	if (r < 0) {
		link_fail(l, "cannot read the list of parked mailboxes (%s): "
		    "mend or remove it, then syncrelayctl resume %s %s", err,
		    l->st->name, l->rc.name);
		return r;
	}
	free(l->parked);
	l->parked = xreallocarray(NULL, n + 1, sizeof(*l->parked));
	for (i = 0; i < n; i++)
		l->parked[i] = (struct link_parked){ v[i], 0, PARK_RETRY_MIN };
	l->nparked = n;
	free(v);
	if (n > 0)
		log_warnx("store=%s replica=%s event=parked_loaded count=%zu "
		    "note=\"retried as the link goes\"", l->st->name,
		    l->rc.name, n);
	return 0;
}

void
link_park_free(struct link *l)
{
	link_park_flush(l);
	free(l->parked);
	l->parked = NULL;
	l->nparked = 0;
}

/* Adds or renews an entry; false (and the link failed) if not kept. */
static bool
park(struct link *l, char kind, const char *key, const char *name,
    const char *why)
{
	long at = find(l, kind, key);
	struct link_parked *e = at < 0 ? NULL : &l->parked[at], saved;
	double now = ev_now(l->loop);
	bool added = e == NULL;

	if (e != NULL)
		saved = *e;
	if (e == NULL) {
		l->parked = xreallocarray(l->parked, l->nparked + 1,
		    sizeof(*l->parked));
		e = &l->parked[l->nparked++];
		memset(e, 0, sizeof(*e));
		e->p.kind = kind;
		snprintf(e->p.key, sizeof(e->p.key), "%s", key);
		e->p.lsn = l->retrying ? l->retry_lsn : l->lsn;
		e->p.since = (int64_t)ev_time();
		e->backoff = PARK_RETRY_MIN;
	} else {
		e->backoff = e->backoff * 2 > PARK_RETRY_MAX ? PARK_RETRY_MAX :
		    e->backoff * 2;
		/* A record refused again: the newest one is what a retry
		 * sends (an older version would undo the master's later
		 * change).  A mailbox is sent whole anyway. */
		if (kind == PARKED_RECORD && !l->retrying)
			e->p.lsn = l->lsn;
	}
	snprintf(e->p.name, sizeof(e->p.name), "%s", name);
	snprintf(e->p.reply, sizeof(e->p.reply), "%s", why);
	e->p.tries++;
	e->due = now + e->backoff;
	log_warnx("store=%s replica=%s event=parked %s=%s lsn=%llu tries=%u "
	    "retry_in=%.0fs reason=\"%s\"", l->st->name, l->rc.name,
	    kind == PARKED_MAILBOX ? "mailbox" : "record", name,
	    (unsigned long long)e->p.lsn, e->p.tries, e->backoff, why);
	link_note_error(l, "parked", "parked %s: %s", name, why);
	if (l->park_defer) {
		l->parked_dirty = true;
		return true;
	}
	if (save(l) < 0) {
		/* Not kept: not parked, in memory either (the cursor must not
		 * pass it on the strength of a list that is not on disk). */
		if (added)
			l->nparked--;
		else
			*e = saved;
		link_fail(l, "the replica refused %s (%s), and the relay could "
		    "not keep it parked (see the log): the link stops rather "
		    "than pass it", name, why);
		return false;
	}
	return true;
}

bool
link_park_mailbox(struct link *l, const char *uniqueid, const char *name,
    const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (uniqueid == NULL || *uniqueid == '\0') {
		link_fail(l, "%s", why);
		return false;
	}
	return park(l, PARKED_MAILBOX, uniqueid, name ? name : "?", why);
}

/* The families whose UN... form undoes the plain one. */
static const char *const families[] = { "SIEVE", "SUB", "QUOTA",
	"ANNOTATION", "ACTIVATE_SIEVE", NULL };

/*
 * What a record changes, as a key (two records with the same key change
 * the same thing, the later winning) and a name for people.
 */
static void
record_key(const struct dlist *cmd, char *key, size_t klen, char *name,
    size_t nlen)
{
	static const char *const fields[] = { "USERID", "MBOXNAME",
		"FILENAME", "ROOT", "ENTRY", "UNIQUEID", "OLDMBOXNAME", NULL };
	const char *family = cmd->key ? cmd->key : "?", *v;
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; families[i]; i++)
		if (strncmp(family, "UN", 2) == 0 &&
		    strcmp(family + 2, families[i]) == 0)
			family = families[i];
	buf_puts(&b, family);
	*name = '\0';
	if (cmd->type != DL_KVLIST && cmd->type != DL_LIST) {
		buf_printf(&b, " %s", cmd->s ? cmd->s : "");
		snprintf(name, nlen, "%s", cmd->s ? cmd->s : "?");
	}
	for (i = 0; cmd->type == DL_KVLIST && fields[i]; i++) {
		if (strcmp(family, "ACTIVATE_SIEVE") == 0 &&
		    strcmp(fields[i], "USERID") != 0)
			continue;
		if (dlist_get_str(cmd, fields[i], &v) < 0 || v == NULL)
			continue;
		buf_printf(&b, " %s", v);
		if (*name == '\0')
			snprintf(name, nlen, "%s %s", family, v);
	}
	if (*name == '\0')
		snprintf(name, nlen, "%s", family);
	snprintf(key, klen, "%s", buf_cstring(&b));
	buf_free(&b);
}

bool
link_park_record(struct link *l, const char *fmt, ...)
{
	char why[512], key[512], name[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (l->cmd == NULL) {
		link_fail(l, "%s", why);
		return false;
	}
	record_key(l->cmd, key, sizeof(key), name, sizeof(name));
	return park(l, PARKED_RECORD, key, name, why);
}

static void
unpark(struct link *l, size_t i, const char *how)
{
	log_warnx("store=%s replica=%s event=unparked %s=%s lsn=%llu "
	    "tries=%u how=\"%s\"", l->st->name, l->rc.name,
	    l->parked[i].p.kind == PARKED_MAILBOX ? "mailbox" : "record",
	    l->parked[i].p.name, (unsigned long long)l->parked[i].p.lsn,
	    l->parked[i].p.tries, how);
	drop_entry(l, i);
}

void
link_park_settled(struct link *l)
{
	const struct dlist *cmd = l->cmd;
	const char *u = NULL, *from = NULL, *to = NULL;
	char key[512], name[512];
	bool changed = false;
	size_t i;
	long at;

	if (cmd == NULL || l->nparked == 0)
		return;
	if (strcmp(cmd->key, "MAILBOX") == 0 && cmd->type == DL_KVLIST) {
		if (dlist_get_str(cmd, "UNIQUEID", &u) == 0 && u &&
		    (at = find(l, PARKED_MAILBOX, u)) >= 0) {
			unpark(l, (size_t)at, "the replica took it whole");
			if (l->seeding)
				l->seed_done++;
			l->parked_dirty = true;
		}
	} else if (strcmp(cmd->key, "UNMAILBOX") == 0 && cmd->s) {
		for (i = 0; i < l->nparked; i++)
			if (l->parked[i].p.kind == PARKED_MAILBOX &&
			    strcmp(l->parked[i].p.name, cmd->s) == 0) {
				unpark(l, i, "the master deleted it");
				changed = true;
				break;
			}
	} else if (strcmp(cmd->key, "RENAME") == 0 &&
	    dlist_get_str(cmd, "OLDMBOXNAME", &from) == 0 && from &&
	    dlist_get_str(cmd, "NEWMBOXNAME", &to) == 0 && to) {
		for (i = 0; i < l->nparked; i++)
			if (l->parked[i].p.kind == PARKED_MAILBOX &&
			    strcmp(l->parked[i].p.name, from) == 0) {
				snprintf(l->parked[i].p.name,
				    sizeof(l->parked[i].p.name), "%s", to);
				changed = true;
			}
	}
	if (strcmp(cmd->key, "MAILBOX") != 0) {
		record_key(cmd, key, sizeof(key), name, sizeof(name));
		if ((at = find(l, PARKED_RECORD, key)) >= 0) {
			unpark(l, (size_t)at, "the replica took it");
			changed = true;
		}
	}
	if (changed)
		save(l);
}

void
link_park_flush(struct link *l)
{
	if (l->parked_dirty)
		save(l);
}

bool
link_park_has_mailbox(const struct link *l, const char *uniqueid)
{
	return find(l, PARKED_MAILBOX, uniqueid) >= 0;
}

bool
link_park_skips(const struct link *l, const struct dlist *cmd)
{
	const char *u = NULL;

	if (l->nparked == 0 || !link_is_mailbox_update(cmd) ||
	    dlist_get_str(cmd, "UNIQUEID", &u) < 0 || u == NULL)
		return false;
	return link_park_has_mailbox(l, u);
}

bool
link_park_due(const struct link *l, double now)
{
	size_t i;

	for (i = 0; i < l->nparked; i++)
		if (l->parked[i].due <= now)
			return true;
	return false;
}

/* The record at lsn, as a command, or NULL with why set. */
static struct dlist *
read_record(struct link *l, uint64_t lsn, char *why, size_t len)
{
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	struct dlist *cmd = NULL;
	char path[4096], err[256];
	bool seed;

	if (lsn < journal_first_lsn(l->st->journal)) {
		snprintf(why, len, "record %llu is no longer in the journal: "
		    "only the master can send it again",
		    (unsigned long long)lsn);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/journal", l->st->dir);
	r = journal_reader_new(path, NULL, lsn, lsn, err, sizeof(err));
	if (r == NULL) {
		snprintf(why, len, "reading record %llu: %s",
		    (unsigned long long)lsn, err);
		return NULL;
	}
	if (journal_reader_next(r, &rec, &raw) == 1 &&
	    rec.type != JOURNAL_BODY)
		cmd = fold_parse_record(raw.s, raw.len, &seed);
	if (cmd == NULL)
		snprintf(why, len, "record %llu could not be read again",
		    (unsigned long long)lsn);
	buf_free(&raw);
	journal_reader_free(&r);
	return cmd;
}

struct dlist *
link_park_take_due(struct link *l, double now, bool *mailbox)
{
	size_t i = 0;

	while (i < l->nparked) {
		struct link_parked *e = &l->parked[i];
		struct shadow_mailbox mb;
		struct dlist *cmd = NULL;
		char why[512];

		if (e->due > now) {
			i++;
			continue;
		}
		e->due = now + e->backoff;	/* not again while in flight */
		if (e->p.kind == PARKED_MAILBOX) {
			int r = shadow_mailbox_by_uniqueid(l->st->shadow,
			    e->p.key, &mb);

			if (r == -ENOENT) {
				unpark(l, i, "gone from the master");
				save(l);
				continue;
			}
			if (r < 0) {
				i++;	/* the shadow failed: later */
				continue;
			}
			cmd = getcmd_full_header(l->st->shadow, &mb);
			shadow_mailbox_free(&mb);
			snprintf(why, sizeof(why), "the shadow could not give "
			    "it whole");
		} else {
			cmd = read_record(l, e->p.lsn, why, sizeof(why));
		}
		if (cmd == NULL) {
			snprintf(e->p.reply, sizeof(e->p.reply), "%s", why);
			e->backoff = PARK_RETRY_MAX;
			e->due = now + e->backoff;
			log_warnx("store=%s replica=%s event=parked_retry_failed "
			    "name=%s reason=\"%s\"", l->st->name, l->rc.name,
			    e->p.name, why);
			i++;
			continue;
		}
		l->repair_upto = shadow_lsn(l->st->shadow);
		log_info("store=%s replica=%s event=parked_retry %s=%s "
		    "tries=%u", l->st->name, l->rc.name, e->p.kind ==
		    PARKED_MAILBOX ? "mailbox" : "record", e->p.name,
		    e->p.tries);
		*mailbox = e->p.kind == PARKED_MAILBOX;
		l->retrying = true;
		l->retry_lsn = e->p.lsn;
		return cmd;
	}
	return NULL;
}

void
link_park_retry_now(struct link *l)
{
	size_t i;

	for (i = 0; i < l->nparked; i++) {
		l->parked[i].due = 0;
		l->parked[i].backoff = PARK_RETRY_MIN;
	}
}

size_t
link_park_give_up(struct link *l, const char *name)
{
	size_t i = 0, n = 0;

	while (i < l->nparked) {
		if (strcmp(l->parked[i].p.name, name) != 0 &&
		    strcmp(l->parked[i].p.key, name) != 0) {
			i++;
			continue;
		}
		log_warnx("store=%s replica=%s event=parked_given_up name=%s "
		    "lsn=%llu reply=\"%s\" note=\"given up by the operator: "
		    "the replica keeps what it has of it\"", l->st->name,
		    l->rc.name, l->parked[i].p.name,
		    (unsigned long long)l->parked[i].p.lsn,
		    l->parked[i].p.reply);
		drop_entry(l, i);
		n++;
	}
	if (n > 0)
		save(l);
	return n;
}

void
link_park_clear(struct link *l, const char *why)
{
	if (l->nparked == 0 && !l->park_unread)
		return;
	log_warnx("store=%s replica=%s event=parked_cleared count=%zu "
	    "reason=\"%s\"", l->st->name, l->rc.name, l->nparked, why);
	l->nparked = 0;
	l->park_unread = false;
	save(l);
}
