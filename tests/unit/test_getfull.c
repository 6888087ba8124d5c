/*
 * test_getfull.c -- a whole mailbox printed a page of records at a time
 * (relay/getcmd_full.c) gives the same bytes as the tree printed whole,
 * for every page size; a change committed between two pages is not in
 * the reply; a change waiting in an open transaction is not either.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "protocol/csync.h"
#include "relay/getcmd.h"
#include "relay/getcmd_full.h"
#include "storage/shadow.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

#define NREC 23

static char *dir;
static char path[4096];
static struct shadow *s;

static void
put_record(uint32_t uid, uint64_t modseq, const char *flags, bool expunged)
{
	struct shadow_record r;

	memset(&r, 0, sizeof(r));
	r.uid = uid;
	r.modseq = modseq;
	r.last_updated = 1700000000 + uid;
	r.internaldate = 1690000000 + uid;
	r.size = 100 + uid;
	snprintf(r.guid, sizeof(r.guid), "%040x", uid * 7919u);
	r.flags = (char *)(uintptr_t)flags;
	r.expunged = expunged;
	if (uid % 5 == 0)
		r.annotations = (char *)(uintptr_t)"(%(ENTRY "
		    "/vendor/cmu/cyrus-imapd/thrid USERID \"\" MODSEQ 0 VALUE "
		    "0a1b2c3d4e5f6071) %(ENTRY /comment USERID \"\" MODSEQ 0 VALUE "
		    "hello))";
	test_assert_int(shadow_record_put(s, "u1", &r), 0);
}

static void
setup(void)
{
	struct shadow_mailbox mb;
	char err[512];
	uint32_t uid;

	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/shadow.db", dir);
	test_assert_int(shadow_open(path, &s, err, sizeof(err)), 0);
	memset(&mb, 0, sizeof(mb));
	mb.uniqueid = (char *)(uintptr_t)"u1";
	mb.name = (char *)(uintptr_t)"user.big";
	mb.last_uid = NREC;
	mb.highestmodseq = 100;
	mb.uidvalidity = 1700000000;
	mb.partition = (char *)(uintptr_t)"default";
	mb.acl = (char *)(uintptr_t)"big\tlrswipkxtecdan\t";
	mb.options = (char *)(uintptr_t)"P";
	mb.createdmodseq = 1;
	mb.foldermodseq = 1;
	test_assert_int(shadow_begin(s), 0);
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	/* One flag has a slot; the others come from records alone, in
	 * UID order, one of them spelt two ways. */
	test_assert_int(shadow_uflag_add(s, "u1", "Work"), 0);
	for (uid = 1; uid <= NREC; uid++)
		put_record(uid, 10 + uid, uid % 3 == 0 ? "\\Seen zeta Work" :
		    uid % 4 == 0 ? "\\Flagged ALPHA" : uid > 9 ? "alpha zeta" :
		    "", uid % 7 == 0);
	test_assert_int(shadow_commit(s, 5), 0);
}

/* The reply as GET FULLMAILBOX printed it whole. */
static void
whole(struct buf *out)
{
	struct shadow_mailbox mb;
	struct dlist *kv;

	test_assert_int(shadow_mailbox_by_uniqueid(s, "u1", &mb), 0);
	kv = getcmd_mailbox_dlist(s, &mb, true);
	csync_print_untagged(out, kv);
	dlist_free(&kv);
	shadow_mailbox_free(&mb);
}

/* Paged; calls between(i) after page i. */
static int
paged(struct buf *out, size_t page, void (*between)(int))
{
	struct getcmd_full *f = NULL;
	char why[256];
	int r, i = 0;

	getcmd_full_set_page(page);
	r = getcmd_full_start(s, "u1", "*", DLIST_PRINT_SERVER, out, &f, why,
	    sizeof(why));
	if (r < 0)
		return r;
	while ((r = getcmd_full_next(f, out, why, sizeof(why))) > 0)
		if (between)
			between(++i);
	getcmd_full_free(&f);
	getcmd_full_set_page(0);
	return r;
}

static void
same_bytes_at_every_page_size(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t page;

	whole(&a);
	test_assert(strstr(a.s, "RECORD (%(UID 1 ") != NULL);
	test_assert(strstr(a.s, "FLAGS (Work zeta ALPHA)") == NULL);
	for (page = 1; page <= NREC + 2; page++) {
		buf_reset(&b);
		test_assert_int(paged(&b, page, NULL), 0);
		test_assert_str(b.s, a.s);
	}
	buf_reset(&b);
	test_assert_int(paged(&b, 0, NULL), 0);	/* the default */
	test_assert_str(b.s, a.s);
	buf_free(&a);
	buf_free(&b);
}

static void
expunge_between(int i)
{
	if (i != 1)
		return;
	test_assert_int(shadow_begin(s), 0);
	put_record(20, 200, "\\Deleted", true);
	test_assert_int(shadow_commit(s, 6), 0);
}

static void
a_change_between_pages_is_not_in_the_reply(void)
{
	struct buf before = BUF_INIT, b = BUF_INIT, after = BUF_INIT;

	whole(&before);
	test_assert_int(paged(&b, 4, expunge_between), 0);
	test_assert_str(b.s, before.s);
	whole(&after);
	test_assert(strcmp(after.s, before.s) != 0);	/* it did change */
	buf_reset(&b);
	test_assert_int(paged(&b, 4, NULL), 0);
	test_assert_str(b.s, after.s);
	buf_free(&before);
	buf_free(&after);
	buf_free(&b);
}

static void
an_open_transaction_is_not_in_the_reply(void)
{
	struct buf before = BUF_INIT, b = BUF_INIT;

	whole(&before);
	test_assert_int(shadow_begin(s), 0);
	put_record(21, 300, "\\Answered", false);
	test_assert_int(paged(&b, 100, NULL), 0);	/* one page */
	test_assert_str(b.s, before.s);
	buf_reset(&b);
	test_assert_int(paged(&b, 3, NULL), 0);
	test_assert_str(b.s, before.s);
	shadow_rollback(s);
	buf_free(&before);
	buf_free(&b);
}

static void
no_such_mailbox(void)
{
	struct getcmd_full *f = NULL;
	struct buf b = BUF_INIT;
	char why[256];

	test_assert_int(getcmd_full_start(s, "nope", "*", DLIST_PRINT_SERVER,
	    &b, &f, why, sizeof(why)), -ENOENT);
	test_assert(f == NULL);
	test_assert_int(b.len, 0);
	buf_free(&b);
}

static void
teardown(void)
{
	shadow_close(&s);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(setup), T(same_bytes_at_every_page_size),
    T(a_change_between_pages_is_not_in_the_reply),
    T(an_open_transaction_is_not_in_the_reply), T(no_such_mailbox),
    T(teardown))
