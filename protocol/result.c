/*
 * result.c -- the table of csync result codes.
 */
#include "autoconf.h"

#include <string.h>

#include "protocol/result.h"

static const struct {
	const char *name;
	const char *line;
	int client_matches;	/* the 3.6 client recognises "NAME " */
} result_table[RESULT_NCODES] = {
	[RESULT_OK] = { "OK", "OK success", 0 },
	[RESULT_INVALID_USER] = { "IMAP_INVALID_USER",
		"NO IMAP_INVALID_USER No Such User", 1 },
	[RESULT_MAILBOX_NONEXISTENT] = { "IMAP_MAILBOX_NONEXISTENT",
		"NO IMAP_MAILBOX_NONEXISTENT No Such Mailbox", 1 },
	[RESULT_MAILBOX_LOCKED] = { "IMAP_MAILBOX_LOCKED",
		"NO IMAP_MAILBOX_LOCKED Mailbox locked", 1 },
	[RESULT_MAILBOX_MOVED] = { "IMAP_MAILBOX_MOVED",
		"NO IMAP_MAILBOX_MOVED Mailbox exists with another name or "
		"uniqueid", 1 },
	[RESULT_MAILBOX_NOTSUPPORTED] = { "IMAP_MAILBOX_NOTSUPPORTED",
		"NO IMAP_MAILBOX_NOTSUPPORTED Operation is not supported on "
		"mailbox", 1 },
	[RESULT_SYNC_CHECKSUM] = { "IMAP_SYNC_CHECKSUM",
		"NO IMAP_SYNC_CHECKSUM Checksum Failure", 1 },
	[RESULT_SYNC_CHANGED] = { "IMAP_SYNC_CHANGED",
		"NO IMAP_SYNC_CHANGED Changed since last sync", 1 },
	[RESULT_SYNC_BADSIEVE] = { "IMAP_SYNC_BADSIEVE",
		"NO IMAP_SYNC_BADSIEVE Sieve script compilation failure", 1 },
	[RESULT_PROTOCOL_ERROR] = { "IMAP_PROTOCOL_ERROR",
		"NO IMAP_PROTOCOL_ERROR Protocol error", 1 },
	/* The server sends no text after this code, so the 3.6 client's
	 * "IMAP_PROTOCOL_BAD_PARAMETERS " prefix never matches. */
	[RESULT_PROTOCOL_BAD_PARAMETERS] = { "IMAP_PROTOCOL_BAD_PARAMETERS",
		"NO IMAP_PROTOCOL_BAD_PARAMETERS", 1 },
	[RESULT_REMOTE_DENIED] = { "IMAP_REMOTE_DENIED", "NO Unknown error",
		0 },
	[RESULT_UNKNOWN] = { "UNKNOWN", "NO Unknown error", 0 },
};

const char *
result_name(enum result_code code)
{
	if ((unsigned)code >= RESULT_NCODES)
		return "?";
	return result_table[code].name;
}

const char *
result_line(enum result_code code)
{
	if ((unsigned)code >= RESULT_NCODES)
		code = RESULT_UNKNOWN;
	return result_table[code].line;
}

enum result_code
result_from_no_text(const char *text)
{
	int i;

	for (i = 0; i < RESULT_NCODES; i++) {
		size_t n = strlen(result_table[i].name);

		if (result_table[i].client_matches &&
		    strncmp(text, result_table[i].name, n) == 0 &&
		    text[n] == ' ')
			return (enum result_code)i;
	}
	return RESULT_REMOTE_DENIED;
}
