/*
 * workpool.h -- a small, process-wide pool of threads that run queued
 * tasks, so that a thousand journals need not keep a thousand threads.
 *
 * A task is a struct embedded in its owner (a journal); submitting one
 * that is already queued does nothing, so an owner can submit each time
 * it has new work and the task runs once for all of it.  Tasks run in
 * the order they were submitted (FIFO), one thread each; a task that
 * still has work when it returns submits itself again and goes to the
 * back of the queue, so one busy owner cannot starve the others.  A task
 * submitted as urgent (little work: a master waiting on one small
 * record) goes before the others, so it never waits behind a queue of
 * big batches, only behind the batches already running.
 */
#ifndef SR_WORKPOOL_H
#define SR_WORKPOOL_H

#include <stdbool.h>

struct workpool_task {
	void (*run)(struct workpool_task *t);	/* on a pool thread */
	struct workpool_task *next;		/* the pool's, under its lock */
	bool queued;				/* the pool's, under its lock */
};

/* Default number of threads: the online CPUs, at least 2, at most 16. */
unsigned workpool_default_threads(void);
/*
 * Sets the number of threads (0: the default).  Before the first task it
 * decides how many start; later it can only add threads.
 */
void workpool_set_threads(unsigned n);
/* Queues t unless it is queued already; starts the pool if needed. */
void workpool_submit(struct workpool_task *t, bool urgent);
/* Threads running now (for status and the benchmark). */
unsigned workpool_threads(void);

#endif
