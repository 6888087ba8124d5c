/*
 * link_lag.c -- what a link has read from the journal and not yet seen
 * acknowledged, for the lag figures (the oldest such record's position
 * and time), and where the bodies it passed are, so that sending one
 * needs no segment scan.  Plain bookkeeping; it calls no other part of
 * the link.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "relay/replay/link_int.h"
#include "storage/posidx.h"

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

static uint32_t
guid_hash(const char *guid)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < 40; i++)
		h = (h ^ (uint8_t)guid[i]) * 16777619u;
	return h;
}

/* The slot holding guid, or the empty slot where it would go. */
static size_t
seen_slot(const struct link *l, const char *guid)
{
	size_t mask = l->seen_hcap - 1, i = guid_hash(guid) & mask;

	while (l->seen_hash[i] != 0 &&
	    memcmp(l->seen[l->seen_hash[i] - 1].guid, guid, 40) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Puts seen[k] in the table; a body passed again replaces its entry. */
static void
seen_insert(struct link *l, size_t k)
{
	l->seen_hash[seen_slot(l, l->seen[k].guid)] = (uint32_t)(k + 1);
}

void
link_forget_bodies(struct link *l)
{
	free(l->seen);
	l->seen = NULL;
	l->nseen = l->seen_alloc = 0;
	free(l->seen_hash);
	l->seen_hash = NULL;
	l->seen_hcap = 0;
	posidx_free(&l->posidx);
}

/*
 * At most MAX_SEEN bodies are remembered (about 5 MB with the table);
 * past that the list starts over, and bodies no longer in it are found
 * through the shadow's LSN and the posidx, which costs one read of each
 * segment, not one per body.  Lookups are a hash probe either way.
 */
void
link_remember_body(struct link *l, const struct journal_record *rec)
{
	struct seen_body *b;
	size_t k;

	if (l->nseen == MAX_SEEN) {
		l->nseen = 0;
		memset(l->seen_hash, 0, l->seen_hcap * sizeof(*l->seen_hash));
	}
	if (l->nseen == l->seen_alloc) {
		l->seen_alloc = l->seen_alloc ? l->seen_alloc * 2 : 256;
		l->seen = xreallocarray(l->seen, l->seen_alloc,
		    sizeof(*l->seen));
	}
	if (2 * (l->nseen + 1) > l->seen_hcap) {
		l->seen_hcap = l->seen_hcap ? l->seen_hcap * 2 : 512;
		free(l->seen_hash);
		l->seen_hash = xcalloc(l->seen_hcap, sizeof(*l->seen_hash));
		for (k = 0; k < l->nseen; k++)
			seen_insert(l, k);
	}
	b = &l->seen[l->nseen++];
	journal_guid_hex(rec->guid, b->guid);
	b->lsn = rec->lsn;
	b->segment = rec->segment;
	b->offset = rec->offset;
	seen_insert(l, l->nseen - 1);
}

const struct seen_body *
link_find_body(const struct link *l, const char *guid)
{
	size_t i;

	if (l->nseen == 0 || strlen(guid) != 40)
		return NULL;
	i = seen_slot(l, guid);
	return l->seen_hash[i] != 0 ? &l->seen[l->seen_hash[i] - 1] : NULL;
}
