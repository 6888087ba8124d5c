/*
 * bigbox.c -- a huge APPLY MAILBOX's records spilled to a file as they
 * are parsed (see bigbox.h for the flow).
 *
 * The parser's record hook runs inside csync_reader_feed(), on the
 * loop: held records are appended to a list; past the threshold they
 * and every later one are printed into the spill (buffered, 64 KB
 * writes to an unlinked file: page cache, no sync) and freed.  A spill
 * that cannot be written refuses the line (the hook's non-zero: the
 * master gets the BAD of a line that failed to parse, and nothing of it
 * was applied or journaled).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "protocol/dlist_print.h"
#include "relay/ingest/bigbox.h"
#include "storage/spill.h"

static size_t
threshold(void)
{
	static size_t t;
	const char *env;
	char *end;

	if (t == 0) {
		env = getenv("SYNCRELAY_BIGBOX_RECORDS");
		t = BIGBOX_RECORDS;
		if (env != NULL && *env != '\0') {
			unsigned long v = strtoul(env, &end, 10);

			if (*end == '\0' && v > 0)
				t = (size_t)v;
		}
	}
	return t;
}

static int
spill_one(void *arg, const struct dlist *rec)
{
	return spill_add(arg, rec);
}

/* The record hook: hold, or spill (moving the held ones first). */
static int
on_record(void *arg, struct dlist *elem, size_t index)
{
	struct bigbox *b = arg;
	struct dlist *h;
	int r;

	if (index == 0)
		bigbox_done(b);
	if (b->spill == NULL && index < b->threshold) {
		dlist_append(b->held, elem);
		return 0;
	}
	if (b->spill == NULL) {
		if ((b->spill = spill_new(b->tmpdir)) == NULL) {
			log_warn("event=spill_failed dir=%s", b->tmpdir);
			dlist_free(&elem);
			return -1;
		}
		b->spilled++;
		while ((h = dlist_pop_first(b->held)) != NULL) {
			r = spill_one(b->spill, h);
			dlist_free(&h);
			if (r < 0)
				break;
		}
	}
	r = b->held->head == NULL ? spill_add(b->spill, elem) : -EIO;
	dlist_free(&elem);
	if (r < 0) {
		log_warnx("event=spill_failed dir=%s error=\"%s\"", b->tmpdir,
		    strerror(-r));
		return -1;
	}
	return 0;
}

/*
 * Removes spill files a crash left behind: each is unlinked as soon as
 * it is made, on the loop thread, so any found here is an orphan.
 */
static void
clean_tmpdir(const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "spill.", 6) == 0 &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) < sizeof(path))
			unlink(path);
	closedir(d);
}

void
bigbox_setup(struct bigbox *b, const char *dir, const char *store,
    struct dlist_record_hook *hook)
{
	size_t n = strlen(dir) + sizeof("/tmp");

	memset(b, 0, sizeof(*b));
	b->tmpdir = xmalloc(n);
	b->store = xstrdup(store);
	snprintf(b->tmpdir, n, "%s/tmp", dir);
	b->threshold = threshold();
	b->held = dlist_new_list(NULL);
	hook->key = "RECORD";
	hook->record = on_record;
	hook->arg = b;
}

void
bigbox_init(struct bigbox *b, struct csync_reader *r, const char *dir,
    const char *store)
{
	struct dlist_record_hook hook;

	bigbox_setup(b, dir, store, &hook);
	clean_tmpdir(b->tmpdir);
	csync_reader_set_record_hook(r, &hook);
}

void
bigbox_free(struct bigbox *b)
{
	if (b->held == NULL)
		return;
	bigbox_done(b);
	dlist_free(&b->held);
	free(b->tmpdir);
	free(b->store);
	b->tmpdir = b->store = NULL;
}

void
bigbox_done(struct bigbox *b)
{
	struct dlist *h;

	while (b->held && (h = dlist_pop_first(b->held)) != NULL)
		dlist_free(&h);
	spill_free(&b->spill);
}

void
bigbox_line_end(struct bigbox *b, struct dlist *entry)
{
	struct dlist *c, *list = NULL, *h;

	if (b->held == NULL || b->held->head == NULL)
		return;
	/* The hooked list: the first list under RECORD, top level. */
	for (c = entry && entry->type == DL_KVLIST ? entry->head : NULL;
	    c != NULL && list == NULL; c = c->next)
		if (c->type == DL_LIST && c->key != NULL &&
		    strcmp(c->key, "RECORD") == 0)
			list = c;
	while ((h = dlist_pop_first(b->held)) != NULL) {
		if (list != NULL)
			dlist_append(list, h);
		else
			dlist_free(&h);
	}
}

uint64_t
bigbox_journal(struct bigbox *b, struct journal *j, const struct dlist *entry,
    journal_done_fn *done, void *arg)
{
	return bigbox_journal_as(b, "APPLY", j, entry, done, arg);
}

uint64_t
bigbox_journal_as(struct bigbox *b, const char *verb, struct journal *j,
    const struct dlist *entry, journal_done_fn *done, void *arg)
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct buf head = BUF_INIT, tail = BUF_INIT;
	uint64_t len;
	bool bad;

	if (b->spill == NULL) {
		csync_print_command(&head, verb, entry, &pr);
		head.len -= 2;
		len = head.len;
		journal_append(j, JOURNAL_COMMAND, head.s, head.len, done, arg);
		buf_free(&head);
		return len;
	}
	bad = spill_print_around(verb, entry, &head, &tail) < 0 ||
	    spill_flush(b->spill) < 0;
	len = head.len + spill_bytes(b->spill) + tail.len;
	log_info("store=%s event=big_%s records=%zu bytes=%llu", b->store,
	    strcmp(verb, "SEED") == 0 ? "seed" : "apply",
	    spill_count(b->spill), (unsigned long long)len);
	/* If it went wrong, announce one byte more than the file has: the
	 * journal fails the record (-EIO) and keeps nothing of it. */
	journal_append_file(j, JOURNAL_COMMAND, &head, spill_fd(b->spill),
	    spill_bytes(b->spill) + (bad ? 1 : 0), &tail, done, arg);
	buf_free(&head);
	buf_free(&tail);
	return len;
}
