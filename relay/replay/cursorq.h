/*
 * cursorq.h -- writing replicas' cursors off the event loop.
 *
 * A cursor store ends in an fdatasync; with many links streaming, doing
 * that on the loop would stall every session.  One thread writes them:
 * a link posts the LSN its replica acknowledged (a newer post for the
 * same cursor replaces one not yet written), and the thread makes it
 * durable.  Whoever else touches a cursor from the loop (retention, a
 * reset, shutdown) holds cursorq_lock() meanwhile, so a write is never
 * in progress under it.  Without cursorq_start() posts are written at
 * once, on the caller's thread.
 */
#ifndef SR_CURSORQ_H
#define SR_CURSORQ_H

#include <stdbool.h>
#include <stdint.h>

struct cursor;

/* One per cursor, owned by its link; zero it, then set c and names. */
struct cursorq_req {
	struct cursor *c;
	const char *store, *replica;	/* for log lines */
	uint64_t lsn;			/* to write */
	bool queued, busy;
	struct cursorq_req *next;
};

/* Starts the writer thread (after any fork). 0 or -1 (errno). */
int cursorq_start(void);
/* Writes what is queued, then stops the thread. */
void cursorq_stop(void);
/* Asks for r->c to be stored at lsn. */
void cursorq_post(struct cursorq_req *r, uint64_t lsn);
/* Takes r out of the queue and waits until no write of it is running. */
void cursorq_cancel(struct cursorq_req *r);
/* Excludes cursor writes (for reading or resetting cursors on the loop). */
void cursorq_lock(void);
void cursorq_unlock(void);

#endif
