/*
 * reserve.c -- APPLY RESERVE: which of the master's bodies the relay
 * lacks.
 *
 * It lives apart from session.c, which is at its size limit, and needs
 * nothing of the session: the answer comes from the shadow's body index
 * (a body the relay holds serves every later APPLY MAILBOX, whatever the
 * partition or mailbox named).  The argument is read as a 3.6.1 replica
 * reads it: PARTITION, MBOXNAME and GUID must be there (else NO
 * IMAP_PROTOCOL_BAD_PARAMETERS), a GUID that is not a list is an empty
 * list, and an entry of it that is not a GUID refuses the command.
 * MISSING repeats duplicates, in request order, and is left out when
 * nothing is missing.
 */
#include "autoconf.h"

#include "relay/ingest/reserve.h"
#include "protocol/csync.h"

enum result_code
reserve_answer(struct shadow *s, const struct dlist *e, struct buf *out)
{
	const struct dlist *guids = dlist_get(e, "GUID"), *g;
	struct dlist *missing;
	const char *part;
	char hex[41];

	if (e->type != DL_KVLIST || dlist_get_str(e, "PARTITION", &part) < 0 ||
	    guids == NULL || dlist_get(e, "MBOXNAME") == NULL)
		return RESULT_PROTOCOL_BAD_PARAMETERS;
	if (guids->type != DL_LIST)
		guids = NULL;
	for (g = guids ? guids->head : NULL; g != NULL; g = g->next)
		if (dlist_guid(g, hex) < 0)
			return RESULT_PROTOCOL_BAD_PARAMETERS;
	missing = dlist_new_list("MISSING");
	for (g = guids ? guids->head : NULL; g != NULL; g = g->next) {
		struct shadow_body b;

		dlist_guid(g, hex);
		if (shadow_body_get(s, hex, &b) < 0)
			dlist_add_guid(missing, NULL, hex);
	}
	if (missing->nchildren)
		csync_print_untagged(out, missing);
	dlist_free(&missing);
	return RESULT_OK;
}
