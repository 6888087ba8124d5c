/*
 * stall.h -- a master silent in the middle of a command.
 *
 * Between commands a master may stay quiet as long as sync_timeout
 * allows (a rolling sync_client with nothing to do).  Once it has begun
 * a command, silence means it is stuck or gone: the session arms this
 * watch, which closes the connection after master_timeout without a
 * byte, so the half-read command is dropped, never acknowledged.
 */
#ifndef SR_STALL_H
#define SR_STALL_H

#include <stdbool.h>

#include <ev.h>

struct conn;

struct stall {
	ev_timer timer;
	struct ev_loop *loop;
	struct conn *conn;
	const char *store;		/* its name, for the log line */
};

/* Ready to watch c (nothing armed). */
void stall_init(struct stall *w, struct ev_loop *loop, struct conn *c);

/*
 * Says where the session stands after it read input or resumed reading:
 * in_command is true while a command is begun and not whole, and the
 * session reads (it is not waiting on the journal).  The deadline runs
 * from now: timeout seconds (0: never).
 */
void stall_update(struct stall *w, bool in_command, double timeout,
    const char *store);

/* Disarms for good (the connection is going). */
void stall_stop(struct stall *w);

#endif
