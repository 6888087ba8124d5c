/*
 * result.h -- csync result codes and their exact wire text.
 *
 * A server turns a result into the final line of a GET/APPLY reply; a
 * client turns the text after "NO " back into a result using the 3.6
 * sync_client's prefix rule (sync-protocol.md section 4).
 */
#ifndef SR_RESULT_H
#define SR_RESULT_H

enum result_code {
	RESULT_OK = 0,
	RESULT_INVALID_USER,
	RESULT_MAILBOX_NONEXISTENT,
	RESULT_MAILBOX_LOCKED,
	RESULT_MAILBOX_MOVED,
	RESULT_MAILBOX_NOTSUPPORTED,
	RESULT_SYNC_CHECKSUM,
	RESULT_SYNC_CHANGED,
	RESULT_SYNC_BADSIEVE,
	RESULT_PROTOCOL_ERROR,
	RESULT_PROTOCOL_BAD_PARAMETERS,
	RESULT_REMOTE_DENIED,	/* what a client makes of any other NO */
	RESULT_UNKNOWN,		/* server side: "NO Unknown error" */
	RESULT_NCODES
};

/* Returns the symbolic name ("IMAP_SYNC_CHECKSUM", "OK", ...). */
const char *result_name(enum result_code code);
/*
 * Returns the final line a 3.6 sync_server sends for code, without CRLF:
 * "OK success", "NO IMAP_SYNC_CHANGED Changed since last sync", ...
 */
const char *result_line(enum result_code code);
/*
 * Client side: maps the text after "NO " to a code (prefix "<CODE> "
 * for the ten known codes, else RESULT_REMOTE_DENIED).
 */
enum result_code result_from_no_text(const char *text);

#endif
