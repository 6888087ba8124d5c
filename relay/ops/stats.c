/*
 * stats.c -- the plain structs status and metrics are made of, and the
 * counting of result codes (see stats.h).  A leaf: it calls nothing of
 * the daemon's; relay/ops/snapshot.c fills the structs.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/ops/stats.h"
#include "storage/journal.h"

_Static_assert(STATS_FSYNC_BUCKETS == JOURNAL_FSYNC_BUCKETS,
    "the fsync histogram is the journal's");
const double *const stats_fsync_bounds = journal_fsync_bounds;

/*
 * The first STATS_MAX_CODES - 1 distinct codes get a slot each; the last
 * slot counts every later one as "other", so no count is ever lost.
 */
void
stats_count_code(struct stats_code_count *t, size_t *n, const char *code)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(t[i].code, code) == 0) {
			t[i].n++;
			return;
		}
	if (*n == STATS_MAX_CODES) {
		t[STATS_MAX_CODES - 1].n++;	/* "other" */
		return;
	}
	i = (*n)++;
	if (i == STATS_MAX_CODES - 1)
		code = "other";
	snprintf(t[i].code, sizeof(t[i].code), "%s", code);
	t[i].n = 1;
}

/*
 * A NO or BAD reply counts by the Cyrus error name it carries ("NO
 * IMAP_SYNC_CHECKSUM ...": IMAP_SYNC_CHECKSUM), or by the word itself
 * when it carries none ("NO Unknown error": NO).
 */
bool
stats_count_reply(struct stats_code_count *t, size_t *n, const char *word,
    const char *text)
{
	char code[sizeof(t->code)];
	size_t len;

	if (strcmp(word, "NO") != 0 && strcmp(word, "BAD") != 0)
		return false;
	if (text != NULL && strncmp(text, "IMAP_", 5) == 0) {
		len = strcspn(text, " ");
		if (len >= sizeof(code))
			len = sizeof(code) - 1;
		memcpy(code, text, len);
		code[len] = '\0';
	} else {
		snprintf(code, sizeof(code), "%s", word);
	}
	stats_count_code(t, n, code);
	return true;
}

void
stats_store_release(struct stats_store *s)
{
	free(s->links);
	s->links = NULL;
	s->nlinks = 0;
}
