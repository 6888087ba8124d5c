/*
 * cursorq.c -- the cursor writer thread (see cursorq.h).
 *
 * Two locks: qlock guards the queue and each request's queued/busy
 * flags, and is only ever held briefly; iolock is held around each
 * cursor write, and by the loop when it works on cursors itself.  The
 * thread never holds both, so neither side can wait on the other in a
 * cycle.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "lib/log.h"
#include "relay/replay/cursorq.h"
#include "storage/cursor.h"

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t iolock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t donecond = PTHREAD_COND_INITIALIZER;
static struct cursorq_req *head, *tail;
static pthread_t thread;
static bool running, stopping;

static void
store(struct cursorq_req *r, uint64_t lsn)
{
	int e;

	if (lsn <= cursor_lsn(r->c))
		return;
	if ((e = cursor_store(r->c, lsn)) < 0)
		log_error("store=%s replica=%s event=cursor_store_failed "
		    "lsn=%llu error=\"%s\" note=\"retried with the next "
		    "acknowledgement\"", r->store, r->replica,
		    (unsigned long long)lsn, strerror(-e));
}

static void *
writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&qlock);
	for (;;) {
		struct cursorq_req *r;
		uint64_t lsn;

		while (head == NULL && !stopping)
			pthread_cond_wait(&qcond, &qlock);
		if (head == NULL)
			break;
		r = head;
		head = r->next;
		if (head == NULL)
			tail = NULL;
		r->next = NULL;
		r->queued = false;
		r->busy = true;
		lsn = r->lsn;
		pthread_mutex_unlock(&qlock);

		pthread_mutex_lock(&iolock);
		store(r, lsn);
		pthread_mutex_unlock(&iolock);

		pthread_mutex_lock(&qlock);
		r->busy = false;
		pthread_cond_broadcast(&donecond);
	}
	pthread_mutex_unlock(&qlock);
	return NULL;
}

int
cursorq_start(void)
{
	int e;

	stopping = false;
	if ((e = pthread_create(&thread, NULL, writer, NULL)) != 0) {
		errno = e;
		return -1;
	}
	running = true;
	return 0;
}

void
cursorq_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&qlock);
	stopping = true;
	pthread_cond_broadcast(&qcond);
	pthread_mutex_unlock(&qlock);
	pthread_join(thread, NULL);
	running = false;
}

void
cursorq_post(struct cursorq_req *r, uint64_t lsn)
{
	if (!running) {
		store(r, lsn);
		return;
	}
	pthread_mutex_lock(&qlock);
	r->lsn = lsn;
	if (!r->queued) {
		r->queued = true;
		if (tail)
			tail->next = r;
		else
			head = r;
		tail = r;
		pthread_cond_signal(&qcond);
	}
	pthread_mutex_unlock(&qlock);
}

void
cursorq_cancel(struct cursorq_req *r)
{
	struct cursorq_req **pp, *prev = NULL;

	pthread_mutex_lock(&qlock);
	if (r->queued) {
		for (pp = &head; *pp; prev = *pp, pp = &(*pp)->next)
			if (*pp == r) {
				*pp = r->next;
				if (tail == r)
					tail = prev;
				break;
			}
		r->queued = false;
		r->next = NULL;
	}
	while (r->busy)
		pthread_cond_wait(&donecond, &qlock);
	pthread_mutex_unlock(&qlock);
}

void
cursorq_lock(void)
{
	pthread_mutex_lock(&iolock);
}

void
cursorq_unlock(void)
{
	pthread_mutex_unlock(&iolock);
}
