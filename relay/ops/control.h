/*
 * control.h -- the control socket syncrelayctl talks to.
 *
 * A Unix stream socket.  A client sends one request line; the daemon
 * answers with lines of output and closes.  The last line is always
 * "exit=N", the status syncrelayctl exits with; output lines starting
 * with "!" are meant for stderr.  Requests:
 *
 *   status [STORE] [json]        stores, master sessions, replicas and lag
 *   pause STORE REPLICA          stop replaying to a replica (kept across
 *                                restarts); its cursor and backlog stay
 *   resume STORE REPLICA         replay again (also retries a failed link)
 *   wait STORE REPLICA|* SECONDS answer once the replica(s) reached the
 *                                head as of the request (exit=0), or the
 *                                lag left at the timeout (exit=1)
 *   reset STORE REPLICA LSN      set a replica's cursor (it was brought
 *                                up to LSN some other way, e.g. a full
 *                                sync_client run after a resync flag)
 *   retry STORE [REPLICA]        try every parked mailbox or record of
 *                                the replica(s) again now
 *   giveup STORE REPLICA NAME    stop trying a parked mailbox (or
 *                                record) NAME: it leaves the parked list,
 *                                with a log line; the replica keeps what
 *                                it has of it
 *   audit STORE REPLICA|* [user=USER] [repair] [json] [timeout=SECONDS]
 *                                compare the replica(s) with the shadow
 *                                (relay/ops/audit.h): exit=0 none
 *                                differ, 1 some do, 2 error or not all
 *                                audited; repair sends what differs
 *   seed STORE REPLICA [FROM]    fill the replica from the shadow (bodies
 *                                from the journal, else by GET FETCH from
 *                                replica FROM), then stream from the head
 *                                (link_seed())
 *   reload                       re-read the configuration (as SIGHUP)
 *
 * Whoever can connect can do all of this: the socket's mode and group
 * (control_socket_mode, control_socket_group) decide who can.
 */
#ifndef SR_CONTROL_H
#define SR_CONTROL_H

#include <stddef.h>

#include <ev.h>

struct control;

/*
 * Binds path (replacing a stale socket, refusing one a live daemon
 * answers on) with mode and group (NULL or "": unchanged).  reload is
 * called for the "reload" request.  Returns NULL with err set.
 */
struct control *control_new(struct ev_loop *loop, const char *path,
    const char *mode, const char *group, void (*reload)(void), char *err,
    size_t err_len);
/* Closes the socket and every client; removes the socket file. */
void control_free(struct control **cp);

#endif
