/*
 * audit_sched.c -- the audits the relay starts itself, every second:
 * the check after an outage (a link that lost its replica, whose
 * sync_server stopped or whose banner changed, and every link the
 * relay opened at its start: an audit with repair,
 * once the link is caught up again; until it is over, and while it left
 * something unrepaired, wait does not call the replica caught up), and
 * the periodic audits (replica_audit_interval, without repair).
 * audit.c does the work, paced by the link's idle moments and rate
 * limits.  The link keeps the result for status and /metrics; what
 * differs also goes to the log (event=audit_differs).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "relay/ops/audit.h"
#include "relay/replay/link.h"
#include "relay/store.h"

#define SCHED_TICK 1.0

struct audit_sched {
	struct ev_loop *loop;
	ev_timer tick;
	struct sched_run {
		char *store, *replica;
		struct audit *a;
		bool check;	/* after an outage, with repair */
	} *running;
	size_t nrunning;
};

static void
sched_done(void *arg, struct audit *a)
{
	struct audit_sched *s = arg;
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < s->nrunning; i++)
		if (s->running[i].a == a)
			break;
	if (i == s->nrunning)
		return;
	if (s->running[i].check) {
		struct store *st = store_by_name(s->running[i].store);
		struct link *l = NULL;
		char why[600];
		size_t j;

		for (j = 0; st && j < st->nlinks; j++)
			if (strcmp(link_name(st->links[j]),
			    s->running[i].replica) == 0)
				l = st->links[j];
		if (l != NULL)
			link_check_done(l, audit_unrepaired(a, why,
			    sizeof(why)));
	}
	if (audit_report(a, &out) != 0)
		log_warnx("store=%s replica=%s event=audit_differs "
		    "report=\"%.900s\"", s->running[i].store,
		    s->running[i].replica, buf_cstring(&out));
	buf_free(&out);
	/* Freed by sched_tick (finished), not inside its own call. */
}

static bool
sched_has(const struct audit_sched *s, const char *store, const char *rep)
{
	size_t i;

	for (i = 0; i < s->nrunning; i++)
		if (strcmp(s->running[i].store, store) == 0 &&
		    strcmp(s->running[i].replica, rep) == 0)
			return true;
	return false;
}

static void
sched_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct audit_sched *s = w->data;
	size_t i, j;

	(void)revents;
	for (i = 0; i < s->nrunning;) {
		struct sched_run *sr = &s->running[i];

		if (sr->a != NULL && !audit_finished(sr->a)) {
			i++;
			continue;
		}
		audit_free(&sr->a);
		free(sr->store);
		free(sr->replica);
		s->running[i] = s->running[--s->nrunning];
	}
	for (i = 0; i < store_count(); i++) {
		struct store *st = store_at(i);

		for (j = 0; st && j < st->nlinks; j++) {
			struct link *l = st->links[j];
			struct audit_opts o = { 0 };
			struct sched_run *sr;
			char err[300];
			const char *check;

			link_seed_poll(l);
			check = link_check_due(l);

			if ((check == NULL && !link_audit_due(l)) ||
			    sched_has(s, st->name, link_name(l)))
				continue;
			o.store = st->name;
			o.replica = link_name(l);
			o.timeout = 3600;
			o.repair = check != NULL;
			s->running = xreallocarray(s->running, s->nrunning + 1,
			    sizeof(*s->running));
			sr = &s->running[s->nrunning];
			sr->store = xstrdup(st->name);
			sr->replica = xstrdup(link_name(l));
			sr->check = check != NULL;
			sr->a = audit_start(loop, &o, sched_done, s, err,
			    sizeof(err));
			if (sr->a == NULL) {
				free(sr->store);
				free(sr->replica);
				continue;
			}
			s->nrunning++;
			/* Not again until this one is over and an interval
			 * more has passed. */
			link_note_audit_started(l);
			if (check)
				link_check_started(l);
			else
				log_info("store=%s replica=%s event=audit_start "
				    "why=periodic", st->name, link_name(l));
		}
	}
}

struct audit_sched *
audit_sched_new(struct ev_loop *loop)
{
	struct audit_sched *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	ev_timer_init(&s->tick, sched_tick, SCHED_TICK, SCHED_TICK);
	s->tick.data = s;
	ev_timer_start(loop, &s->tick);
	return s;
}

void
audit_sched_free(struct audit_sched **sp)
{
	struct audit_sched *s = *sp;
	size_t i;

	if (s == NULL)
		return;
	*sp = NULL;
	ev_timer_stop(s->loop, &s->tick);
	for (i = 0; i < s->nrunning; i++) {
		audit_free(&s->running[i].a);
		free(s->running[i].store);
		free(s->running[i].replica);
	}
	free(s->running);
	free(s);
}
