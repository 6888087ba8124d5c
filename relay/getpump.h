/*
 * getpump.h -- a GET answer written to a connection in pieces, as the
 * socket drains: a GET FETCH body (from the journal) or a GET
 * FULLMAILBOX's records (a page at a time from the shadow).  The
 * session never holds more than a piece of either.
 */
#ifndef SR_GETPUMP_H
#define SR_GETPUMP_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct getcmd_full;
struct journal_body_stream;
struct getpump;

/* A body: "* MESSAGE %{part guid size}", its bytes, then the CRLF that
 * ends the line.  Takes *bs. */
struct getpump *getpump_body(struct journal_body_stream **bs,
    const char *part, const char *guid, uint32_t size);
/* The records of a mailbox begun by getcmd_full_start().  Takes *f. */
struct getpump *getpump_full(struct getcmd_full **f);
/*
 * Writes to c while less than 256 KB waits there.  Returns 1
 * when more is to come (conn_want_drain() was asked: go on from
 * on_drain), 0 once everything is written (the caller sends the
 * result), or a negative errno with why: the answer is cut short and
 * the connection must be closed.
 */
int getpump_run(struct getpump *p, struct conn *c, char *why, size_t why_len);
/* "fetch" or "fullmailbox", for logs. */
const char *getpump_what(const struct getpump *p);
void getpump_free(struct getpump **pp);

#endif
