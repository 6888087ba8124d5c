/*
 * link_lag.c -- what a link has read from the journal and not yet seen
 * acknowledged, for the lag figures (the oldest such record's position
 * and time), and where the bodies it passed are, so that sending one
 * needs no segment scan.  Plain bookkeeping; it calls no other part.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "relay/replay/link_int.h"

/* Forgets the read records the replica has now acknowledged. */
void
link_rq_ack(struct link *l)
{
	while (l->rq_len > 0 && l->rq[l->rq_head].lsn <= l->acked) {
		l->rq_head = (l->rq_head + 1) % l->rq_alloc;
		l->rq_len--;
	}
	l->front = l->rq_len > 0 && l->rq[l->rq_head].lsn == l->acked + 1 ?
	    l->rq[l->rq_head] : (struct rpos){ 0 };
}

void
link_rq_push(struct link *l, const struct journal_record *rec)
{
	if (l->rq_len == l->rq_alloc) {
		size_t n = l->rq_alloc ? l->rq_alloc * 2 : 64, i;
		struct rpos *v = xreallocarray(NULL, n, sizeof(*v));

		for (i = 0; i < l->rq_len; i++)
			v[i] = l->rq[(l->rq_head + i) % l->rq_alloc];
		free(l->rq);
		l->rq = v;
		l->rq_head = 0;
		l->rq_alloc = n;
	}
	l->rq[(l->rq_head + l->rq_len) % l->rq_alloc] = (struct rpos){
		rec->lsn, rec->time_us, rec->segment, rec->offset };
	l->rq_len++;
	if (rec->lsn == l->acked + 1)
		l->front = l->rq[(l->rq_head + l->rq_len - 1) % l->rq_alloc];
}

void
link_remember_body(struct link *l, const struct journal_record *rec)
{
	struct seen_body *b;

	if (l->nseen == MAX_SEEN)
		l->nseen = 0;		/* the fallback is only slower */
	if (l->nseen == l->seen_alloc) {
		l->seen_alloc = l->seen_alloc ? l->seen_alloc * 2 : 256;
		l->seen = xreallocarray(l->seen, l->seen_alloc,
		    sizeof(*l->seen));
	}
	b = &l->seen[l->nseen++];
	journal_guid_hex(rec->guid, b->guid);
	b->lsn = rec->lsn;
	b->segment = rec->segment;
	b->offset = rec->offset;
}

const struct seen_body *
link_find_body(const struct link *l, const char *guid)
{
	size_t i;

	for (i = l->nseen; i > 0; i--)
		if (memcmp(l->seen[i - 1].guid, guid, 40) == 0)
			return &l->seen[i - 1];
	return NULL;
}
