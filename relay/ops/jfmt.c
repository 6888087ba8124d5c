/*
 * jfmt.c -- journal records in words, for the tools (see jfmt.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "protocol/csync.h"
#include "relay/ops/jfmt.h"
#include "storage/fold.h"

void
jfmt_time(uint64_t us, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), len - strlen(out), ".%03uZ",
	    (unsigned)(us / 1000 % 1000));
}

/* "APPLY MAILBOX user.bob records=12" from a command's dlist text. */
void
jfmt_describe(const struct buf *raw, struct buf *out)
{
	bool seed;
	struct dlist *e = fold_parse_record(raw->s, raw->len, &seed);
	const char *s;

	buf_reset(out);
	if (e != NULL) {
		const struct dlist *rl = dlist_get(e, "RECORD");

		buf_printf(out, "%s %s", seed ? "SEED" : "APPLY", e->key);
		if (e->type == DL_ATOM)
			buf_printf(out, " %s", e->s);
		else if (dlist_get_str(e, "MBOXNAME", &s) == 0 && s)
			buf_printf(out, " %s", s);
		else if (dlist_get_str(e, "OLDMBOXNAME", &s) == 0 && s)
			buf_printf(out, " %s", s);
		else if (e->type == DL_LIST)
			buf_printf(out, " items=%zu", e->nchildren);
		if (rl)
			buf_printf(out, " records=%zu", rl->nchildren);
	} else {
		buf_printf(out, "(not a csync command: %.60s)", raw->s);
	}
	dlist_free(&e);
}

int
jfmt_count_sink(void *arg, const void *p, size_t n)
{
	(void)p;
	*(uint64_t *)arg += n;
	return 0;
}
