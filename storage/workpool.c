/*
 * workpool.c -- the threads that write every store's journal.
 *
 * Each journal used to have a writer thread of its own: 1,000 stores
 * meant 1,000 threads, their stacks and their malloc arenas (issue 17).
 * A fixed pool (about one thread per core) does the same work: the disk
 * is shared anyway, and a journal's batch still ends in its own
 * fdatasync (group commit stays per journal).  The pool knows nothing of
 * journals: it runs struct workpool_task's, first come first served.
 *
 * The pool starts on the first submit and its threads live as long as
 * the process.  A child forked after that (the crash tests fork) has
 * none of them, and an empty queue: it starts its own on its first
 * submit.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "lib/log.h"
#include "storage/workpool.h"

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct workpool_task *q_head, *q_tail;	/* big batches */
static struct workpool_task *u_head, *u_tail;	/* urgent: small ones */
static unsigned urgent_run;	/* urgent tasks run in a row */
static unsigned want_threads, nthreads;
static bool atfork_set;

/* Urgent tasks run before big ones, at most this many in a row while a
 * big one waits. */
#define URGENT_IN_A_ROW 16

/* A fork keeps no thread of the pool, and the child must not write the
 * parent's journals: it starts with an empty pool of its own. */
static void
fork_prepare(void)
{
	pthread_mutex_lock(&pool_lock);
}

static void
fork_parent(void)
{
	pthread_mutex_unlock(&pool_lock);
}

static void
fork_child(void)
{
	q_head = q_tail = u_head = u_tail = NULL;
	nthreads = 0;
	pthread_cond_init(&pool_cond, NULL);
	pthread_mutex_unlock(&pool_lock);
}

unsigned
workpool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		n = 2;
	if (n > 16)
		n = 16;
	return (unsigned)n;
}

static void *
worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool_lock);
	for (;;) {
		struct workpool_task *t;

		while (q_head == NULL && u_head == NULL)
			pthread_cond_wait(&pool_cond, &pool_lock);
		/* Urgent first, but a big one gets its turn now and then. */
		if (u_head != NULL && (q_head == NULL ||
		    urgent_run < URGENT_IN_A_ROW)) {
			t = u_head;
			u_head = t->next;
			if (u_head == NULL)
				u_tail = NULL;
			urgent_run++;
		} else {
			t = q_head;
			q_head = t->next;
			if (q_head == NULL)
				q_tail = NULL;
			urgent_run = 0;
		}
		t->next = NULL;
		t->queued = false;
		pthread_mutex_unlock(&pool_lock);
		t->run(t);
		pthread_mutex_lock(&pool_lock);
	}
	return NULL;
}

/* Starts threads up to want_threads; under pool_lock. */
static void
grow(void)
{
	pthread_attr_t attr;

	if (!atfork_set) {
		pthread_atfork(fork_prepare, fork_parent, fork_child);
		atfork_set = true;
	}
	if (want_threads == 0)
		want_threads = workpool_default_threads();
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (nthreads < want_threads) {
		pthread_t th;
		int r = pthread_create(&th, &attr, worker_main, NULL);

		if (r != 0) {
			log_warnx("event=writer_thread_failed threads=%u "
			    "error=%d", nthreads, r);
			if (nthreads > 0)
				break;
			/* Without a thread nothing would ever be written. */
			fatalx("cannot start a journal writer thread");
		}
		nthreads++;
	}
	pthread_attr_destroy(&attr);
}

void
workpool_set_threads(unsigned n)
{
	pthread_mutex_lock(&pool_lock);
	want_threads = n ? n : workpool_default_threads();
	if (nthreads > 0)
		grow();
	pthread_mutex_unlock(&pool_lock);
}

void
workpool_submit(struct workpool_task *t, bool urgent)
{
	pthread_mutex_lock(&pool_lock);
	if (nthreads == 0)
		grow();
	if (!t->queued) {
		struct workpool_task **head = urgent ? &u_head : &q_head;
		struct workpool_task **tail = urgent ? &u_tail : &q_tail;

		t->queued = true;
		t->next = NULL;
		if (*tail)
			(*tail)->next = t;
		else
			*head = t;
		*tail = t;
		pthread_cond_signal(&pool_cond);
	}
	pthread_mutex_unlock(&pool_lock);
}

unsigned
workpool_threads(void)
{
	unsigned n;

	pthread_mutex_lock(&pool_lock);
	n = nthreads;
	pthread_mutex_unlock(&pool_lock);
	return n;
}
