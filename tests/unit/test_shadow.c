/*
 * test_shadow.c -- the shadow database: mailboxes, records with their
 * CRCs maintained incrementally, annotations, per-user state, the body
 * index, transactions and the LSN it reflects.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include "storage/mboxname.h"
#include "storage/shadow.h"
#include "storage/shadow_int.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

static char *dir;
static char path[4096];

static struct shadow *
open_s(void)
{
	struct shadow *s = NULL;
	char err[512];

	if (shadow_open(path, &s, err, sizeof(err)) < 0)
		fprintf(stderr, "shadow_open: %s\n", err);
	return s;
}

static void
setup(void)
{
	dir = make_tmpdir();
	snprintf(path, sizeof(path), "%s/shadow.db", dir);
}

static void
owners(void)
{
	char u[128];

	test_assert_int(mboxname_userid("user.alice", u, sizeof(u)), 0);
	test_assert_str(u, "alice");
	test_assert_int(mboxname_userid("user.alice.Sent.2024", u, sizeof(u)), 0);
	test_assert_str(u, "alice");
	test_assert_int(mboxname_userid("DELETED.user.alice.Old.5F3A", u,
	    sizeof(u)), 0);
	test_assert_str(u, "alice");
	test_assert_int(mboxname_userid("example.com!user.bob.Trash", u,
	    sizeof(u)), 0);
	test_assert_str(u, "bob@example.com");
	test_assert_int(mboxname_userid("example.com!DELETED.user.bob.x", u,
	    sizeof(u)), 0);
	test_assert_str(u, "bob@example.com");
	test_assert_int(mboxname_userid("user.alice.#sieve", u, sizeof(u)), 0);
	test_assert_str(u, "alice");
	test_assert_int(mboxname_userid("shared.folder", u, sizeof(u)), -1);
	test_assert_int(mboxname_userid("user.", u, sizeof(u)), -1);
	test_assert_int(mboxname_inbox("bob@example.com", u, sizeof(u)), 0);
	test_assert_str(u, "example.com!user.bob");
}

static struct shadow_mailbox
mk_mailbox(const char *uniqueid, const char *name)
{
	struct shadow_mailbox mb;

	memset(&mb, 0, sizeof(mb));
	mb.uniqueid = (char *)(uintptr_t)uniqueid;
	mb.name = (char *)(uintptr_t)name;
	mb.last_uid = 3;
	mb.highestmodseq = 7;
	mb.uidvalidity = 1700000000;
	mb.partition = (char *)(uintptr_t)"default";
	mb.acl = (char *)(uintptr_t)"bob\tlrswipkxtecdan\t";
	mb.options = (char *)(uintptr_t)"P";
	mb.createdmodseq = 1;
	mb.foldermodseq = 1;
	return mb;
}

static int
collect_names(void *arg, const struct shadow_mailbox *mb)
{
	struct buf *b = arg;

	buf_printf(b, "%s;", mb->name);
	return 0;
}

static void
mailboxes_and_transactions(void)
{
	struct shadow *s = open_s();
	struct shadow_mailbox mb = mk_mailbox("u1", "user.bob"), got;
	struct buf names = BUF_INIT;

	test_assert(s != NULL);
	test_assert_int(shadow_lsn(s), 0);
	test_assert_int(shadow_begin(s), 0);
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	mb = mk_mailbox("u2", "user.bob.Sent");
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	mb = mk_mailbox("u3", "DELETED.user.bob.Old.5F3A0B1C");
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	mb = mk_mailbox("u4", "user.bobby");
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	mb = mk_mailbox("u9", "user.bob");		/* name taken */
	test_assert_int(shadow_mailbox_put(s, &mb), -EEXIST);
	test_assert_int(shadow_commit(s, 41), 0);
	test_assert_int(shadow_lsn(s), 41);

	test_assert_int(shadow_mailbox_each_user(s, "bob", collect_names,
	    &names), 0);
	test_assert_str(buf_cstring(&names), "DELETED.user.bob.Old.5F3A0B1C;"
	    "user.bob;user.bob.Sent;");
	test_assert_int(shadow_mailbox_by_name(s, "user.bob", &got), 0);
	test_assert_str(got.uniqueid, "u1");
	test_assert_str(got.acl, "bob\tlrswipkxtecdan\t");
	test_assert_int(got.sync_crc, 0);
	test_assert_int(got.sync_crc_annot, 12345678);
	test_assert(got.mbtype == NULL && got.quotaroot == NULL);
	shadow_mailbox_free(&got);

	/* A rolled-back rename leaves nothing behind. */
	test_assert_int(shadow_begin(s), 0);
	mb = mk_mailbox("u2", "user.bob.Archive");
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	shadow_rollback(s);
	test_assert_int(shadow_mailbox_by_name(s, "user.bob.Archive", &got),
	    -ENOENT);
	test_assert_int(shadow_lsn(s), 41);
	/* A committed one moves it. */
	test_assert_int(shadow_begin(s), 0);
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	test_assert_int(shadow_mailbox_delete(s, "u4"), 0);
	test_assert_int(shadow_commit(s, 42), 0);
	shadow_close(&s);

	s = open_s();
	test_assert_int(shadow_lsn(s), 42);
	test_assert_int(shadow_mailbox_by_uniqueid(s, "u2", &got), 0);
	test_assert_str(got.name, "user.bob.Archive");
	shadow_mailbox_free(&got);
	test_assert_int(shadow_mailbox_by_name(s, "user.bobby", &got), -ENOENT);
	shadow_close(&s);
	buf_free(&names);
}

static struct shadow_record
mk_record(uint32_t uid, uint64_t modseq, uint64_t lu, uint64_t idate,
    const char *flags, const char *guid, bool expunged, const char *annots)
{
	struct shadow_record r;

	memset(&r, 0, sizeof(r));
	r.uid = uid;
	r.modseq = modseq;
	r.last_updated = lu;
	r.internaldate = idate;
	r.size = 137;
	snprintf(r.guid, sizeof(r.guid), "%s", guid);
	r.flags = (char *)(uintptr_t)flags;
	r.expunged = expunged;
	r.annotations = (char *)(uintptr_t)annots;
	return r;
}

static void
crcs(struct shadow *s, const char *name, uint32_t *b, uint32_t *a)
{
	struct shadow_mailbox mb;

	if (shadow_mailbox_by_name(s, name, &mb) < 0)
		abort();
	*b = mb.sync_crc;
	*a = mb.sync_crc_annot;
	shadow_mailbox_free(&mb);
}

#define G1 "0b33e29ffdbb606ce7c8ca48e77286e0079fb426"
#define G2 "a803051393b82d4f43de365457c5f015305fcf01"

static int
count_records(void *arg, const struct shadow_record *rec)
{
	(*(int *)arg)++;
	return 0;
}

/* The worked example of sync-protocol.md 7.5, built record by record,
 * then changed the way the document describes. */
static void
records_keep_the_crcs(void)
{
	struct shadow *s = open_s();
	struct shadow_mailbox mb = mk_mailbox("wb", "user.worked");
	struct shadow_record r1 = mk_record(1, 4, 1700000100, 1700000000,
	    "\\Seen Work", G1, false, "(%(ENTRY /vendor/cmu/cyrus-imapd/savedate "
	    "USERID \"\" MODSEQ 0 VALUE 1700000000) %(ENTRY "
	    "/vendor/cmu/cyrus-imapd/createdmodseq USERID \"\" MODSEQ 0 VALUE "
	    "3))");
	struct shadow_record r2 = mk_record(2, 6, 1700000200, 1700000150, "",
	    G2, false, "(%(ENTRY /comment USERID \"\" MODSEQ 6 VALUE hi) "
	    "%(ENTRY /vendor/cmu/cyrus-imapd/thrid USERID \"\" MODSEQ 0 VALUE "
	    "0a1b2c3d4e5f6071) %(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID "
	    "\"\" MODSEQ 0 VALUE 1700000150) %(ENTRY "
	    "/vendor/cmu/cyrus-imapd/createdmodseq USERID \"\" MODSEQ 0 VALUE "
	    "5))");
	struct shadow_record r3 = mk_record(3, 7, 1700000300, 1700000250,
	    "\\Deleted", G1, true, NULL);
	struct shadow_record got;
	uint32_t b, a;
	int n = 0;

	shadow_begin(s);
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	test_assert_int(shadow_record_put(s, "wb", &r1), 0);
	test_assert_int(shadow_record_put(s, "wb", &r2), 0);
	test_assert_int(shadow_record_put(s, "wb", &r3), 0);
	test_assert_int(shadow_record_put(s, "nosuch", &r3), -ENOENT);
	test_assert_int(shadow_commit(s, 50), 0);
	crcs(s, "user.worked", &b, &a);
	test_assert_int(b, 3627443907u);
	test_assert_int(a, 3808183431u);
	/* Record 2 rewritten without annotations, then expunged. */
	shadow_begin(s);
	r2.annotations = NULL;
	test_assert_int(shadow_record_put(s, "wb", &r2), 0);
	r2.expunged = true;
	r2.modseq = 8;
	test_assert_int(shadow_record_put(s, "wb", &r2), 0);
	test_assert_int(shadow_commit(s, 51), 0);
	crcs(s, "user.worked", &b, &a);
	test_assert_int(b, 3531550643u);
	test_assert_int(a, 3372032969u);
	/* Mailbox header updates do not touch the CRCs. */
	shadow_begin(s);
	mb.highestmodseq = 9;
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	shadow_commit(s, 52);
	crcs(s, "user.worked", &b, &a);
	test_assert_int(b, 3531550643u);
	test_assert_int(shadow_record_get(s, "wb", 2, &got), 0);
	test_assert(got.expunged && got.modseq == 8 && got.annotations == NULL);
	test_assert_str(got.guid, G2);
	shadow_record_free(&got);
	test_assert_int(shadow_record_each(s, "wb", 2, count_records, &n), 0);
	test_assert_int(n, 2);
	/* A record whose CRC cannot be computed is refused. */
	shadow_begin(s);
	r1.annotations = (char *)(uintptr_t)"(%(ENTRY";
	test_assert_int(shadow_record_put(s, "wb", &r1), -EINVAL);
	shadow_rollback(s);
	/* Deleting the mailbox takes its records along. */
	shadow_begin(s);
	test_assert_int(shadow_mailbox_delete(s, "wb"), 0);
	shadow_commit(s, 53);
	test_assert_int(shadow_record_get(s, "wb", 1, &got), -ENOENT);
	shadow_close(&s);
}

static int
collect_annot(void *arg, const struct shadow_annot *a)
{
	/* %s would stop at a NUL in the value: append its bytes. */
	buf_printf(arg, "%s|%s|%llu|", a->entry, a->userid,
	    (unsigned long long)a->modseq);
	buf_append(arg, a->value, a->value_len);
	buf_putc(arg, ';');
	return 0;
}

static int
collect_seen(void *arg, const struct shadow_seen *v)
{
	buf_printf(arg, "%s:%u:%s;", v->uniqueid, v->lastuid, v->seenuids);
	return 0;
}

static int
collect_sub(void *arg, const char *name)
{
	buf_printf(arg, "%s;", name);
	return 0;
}

static int
collect_sieve(void *arg, const struct shadow_sieve *sv)
{
	buf_printf(arg, "%s:%d:%.*s;", sv->filename, sv->active,
	    (int)sv->content_len, sv->content);
	return 0;
}

static void
annotations_and_user_state(void)
{
	struct shadow *s = open_s();
	struct shadow_mailbox mb = mk_mailbox("ua", "user.carol");
	struct shadow_annot set[] = {
		{ "/comment", "", 5, "shared", 6 },
		{ "/comment", "carol", 6, "mine", 4 },
		{ "/a", "", 2, "x\0y", 3 },
	};
	struct shadow_annot del = { "/comment", "carol", 0, NULL, 0 };
	struct shadow_seen seen = { "carol", "ua", 1, 10, 2, "1:10" };
	struct shadow_sieve sv = { "carol", "vacation.script", 3, "", false,
		"keep;\r\n", 7 };
	struct buf b = BUF_INIT;
	char *fields = NULL;

	shadow_begin(s);
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	test_assert_int(shadow_annots_set(s, "ua", set, 3), 0);
	shadow_commit(s, 60);
	shadow_annot_each(s, "ua", collect_annot, &b);
	{
		static const char want[] = "/a||2|x\0y;/comment||5|shared;"
		    "/comment|carol|6|mine;";

		test_assert(b.len == sizeof(want) - 1 &&
		    memcmp(b.s, want, b.len) == 0);
	}
	shadow_begin(s);
	test_assert_int(shadow_annot_put(s, "ua", &del), 0);
	shadow_commit(s, 61);
	buf_reset(&b);
	shadow_annot_each(s, "ua", collect_annot, &b);
	test_assert(strstr(b.s + 10, "carol") == NULL);

	shadow_begin(s);
	test_assert_int(shadow_seen_put(s, &seen), 0);
	seen.lastuid = 11;
	seen.seenuids = "1:11";
	test_assert_int(shadow_seen_put(s, &seen), 0);	/* replaces */
	test_assert_int(shadow_sub_set(s, "carol", "user.carol.Lists", true), 0);
	test_assert_int(shadow_sub_set(s, "carol", "user.carol", true), 0);
	test_assert_int(shadow_sub_set(s, "carol", "user.carol", true), 0);
	test_assert_int(shadow_sub_set(s, "carol", "user.carol.Lists", false),
	    0);
	test_assert_int(shadow_sieve_put(s, &sv), 0);
	sv.filename = "other.script";
	test_assert_int(shadow_sieve_put(s, &sv), 0);
	test_assert_int(shadow_sieve_activate(s, "carol", "vacation.script"),
	    0);
	test_assert_int(shadow_quota_put(s, "user.carol", "%(STORAGE 100)"), 0);
	shadow_commit(s, 62);
	buf_reset(&b);
	shadow_seen_each(s, "carol", collect_seen, &b);
	test_assert_str(buf_cstring(&b), "ua:11:1:11;");
	buf_reset(&b);
	shadow_sub_each(s, "carol", collect_sub, &b);
	test_assert_str(buf_cstring(&b), "user.carol;");
	buf_reset(&b);
	shadow_sieve_each(s, "carol", collect_sieve, &b);
	test_assert_str(buf_cstring(&b), "other.script:0:keep;\r\n;"
	    "vacation.script:1:keep;\r\n;");
	test_assert_int(shadow_quota_get(s, "user.carol", &fields), 0);
	test_assert_str(fields, "%(STORAGE 100)");
	free(fields);
	shadow_begin(s);
	test_assert_int(shadow_sieve_activate(s, "carol", NULL), 0);
	test_assert_int(shadow_quota_delete(s, "user.carol"), 0);
	test_assert_int(shadow_user_forget(s, "carol"), 0);
	shadow_commit(s, 63);
	test_assert_int(shadow_quota_get(s, "user.carol", &fields), -ENOENT);
	buf_reset(&b);
	shadow_sub_each(s, "carol", collect_sub, &b);
	shadow_sieve_each(s, "carol", collect_sieve, &b);
	shadow_seen_each(s, "carol", collect_seen, &b);
	test_assert_int(b.len, 0);
	buf_free(&b);
	shadow_close(&s);
}

static void
body_index(void)
{
	struct shadow *s = open_s();
	struct shadow_body b1 = { G1, 10, 137, 0 }, b2 = { G2, 20, 138, 0 }, got;

	shadow_begin(s);
	test_assert_int(shadow_body_put(s, &b1), 0);
	test_assert_int(shadow_body_put(s, &b2), 0);
	shadow_commit(s, 70);
	test_assert_int(shadow_body_get(s, G2, &got), 0);
	test_assert(got.lsn == 20 && got.size == 138 && got.needed_lsn == 0);
	/* A command at LSN 80 appends G2: it is needed until 80. */
	shadow_begin(s);
	shadow_body_need(s, G2);
	shadow_commit(s, 80);
	test_assert_int(shadow_body_get(s, G2, &got), 0);
	test_assert_int(got.needed_lsn, 80);
	/* Moving the body (carried forward) keeps what needs it. */
	shadow_begin(s);
	b2.lsn = 90;
	shadow_body_put(s, &b2);
	shadow_commit(s, 90);
	test_assert_int(shadow_body_get(s, G2, &got), 0);
	test_assert(got.lsn == 90 && got.needed_lsn == 80);
	b2.lsn = 20;
	shadow_begin(s);
	shadow_body_put(s, &b2);
	shadow_commit(s, 91);
	shadow_begin(s);
	test_assert_int(shadow_body_drop_before(s, 15), 0);
	shadow_commit(s, 71);
	test_assert_int(shadow_body_get(s, G1, &got), -ENOENT);
	test_assert_int(shadow_body_get(s, G2, &got), 0);
	shadow_close(&s);
}

static void
teardown(void)
{
	rm_rf(dir);
	free(dir);
}

/*
 * SQLITE_FULL: a write fails, the transaction is rolled back whether or
 * not SQLite already did so itself, the reason stays the real one, and
 * the shadow takes writes again once there is room.
 */
static void
full_disk_rolls_back_cleanly(void)
{
	struct shadow *s = open_s();
	struct shadow_body b = { "", 0, 100, 0 };
	sqlite3_stmt *st;
	int64_t pages = 0;
	uint64_t lsn;
	int i, r = 0;
	char sql[128];

	test_assert(s != NULL);
	if (s == NULL)
		return;
	lsn = shadow_lsn(s);
	st = shadow_prep(s, "PRAGMA page_count");
	if (st && sqlite3_step(st) == SQLITE_ROW)
		pages = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
	    (long long)pages + 2);
	test_assert_int(sqlite3_exec(s->db, sql, NULL, NULL, NULL), SQLITE_OK);
	test_assert_int(shadow_begin(s), 0);
	for (i = 0; i < 100000 && r == 0; i++) {
		snprintf(b.guid, sizeof(b.guid), "%040d", i);
		b.lsn = (uint64_t)i + 1;
		r = shadow_body_put(s, &b);
	}
	if (r == 0)
		r = shadow_commit(s, lsn + 1);
	test_assert(r < 0);			/* SQLITE_FULL somewhere */
	shadow_rollback(s);
	test_assert(!shadow_in_transaction(s));
	test_assert(sqlite3_get_autocommit(s->db));
	test_assert(strstr(shadow_errmsg(s), "cannot rollback") == NULL);
	/* SQLite rolled back by itself (as it may after SQLITE_FULL or
	 * SQLITE_IOERR): shadow_rollback() must not try again. */
	test_assert_int(shadow_begin(s), 0);
	test_assert_int(sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	shadow_rollback(s);
	test_assert(strstr(shadow_errmsg(s), "cannot rollback") == NULL);
	test_assert_int(shadow_lsn(s), lsn);
	/* Room again. */
	test_assert_int(sqlite3_exec(s->db, "PRAGMA max_page_count = "
	    "1073741823", NULL, NULL, NULL), SQLITE_OK);
	test_assert_int(shadow_begin(s), 0);
	snprintf(b.guid, sizeof(b.guid), "%040d", 7);
	test_assert_int(shadow_body_put(s, &b), 0);
	test_assert_int(shadow_commit(s, lsn + 1), 0);
	test_assert_int(shadow_lsn(s), lsn + 1);
	shadow_close(&s);
}

/* Descriptors of this process open on a file whose name ends in sfx. */
static int
open_files(const char *sfx)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char p[300], t[4096];
	size_t n = strlen(sfx);
	ssize_t k;
	int c = 0;

	while (d && (e = readdir(d)) != NULL) {
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		if ((k = readlink(p, t, sizeof(t) - 1)) >= (ssize_t)n) {
			t[k] = '\0';
			c += strcmp(t + k - n, sfx) == 0;
		}
	}
	if (d)
		closedir(d);
	return c;
}

/*
 * An idle shadow holds no connection and no descriptor; the next call
 * opens it again with everything committed.  Not inside a transaction.
 * Past the cap the least recently used connection is closed.
 */
static void
idle_closes_and_reopens(void)
{
	struct shadow *s = open_s(), *t, *u;
	struct shadow_mailbox mb = mk_mailbox("i1", "user.idle"), got;
	char p2[4200], p3[4200], err[512];
	size_t base;

	test_assert(s != NULL);
	test_assert_int(shadow_begin(s), 0);
	test_assert_int(shadow_mailbox_put(s, &mb), 0);
	shadow_idle(s);			/* in a transaction: stays open */
	test_assert(open_files("/shadow.db") == 1);
	test_assert_int(shadow_commit(s, 77), 0);
	base = shadow_open_count();
	shadow_idle(s);
	test_assert_int(shadow_open_count(), base - 1);
	test_assert_int(open_files("/shadow.db"), 0);
	test_assert_int(open_files("/shadow.db-wal"), 0);
	test_assert_int(open_files("/shadow.db-shm"), 0);
	test_assert_int(shadow_lsn(s), 77);
	test_assert_int(shadow_mailbox_by_name(s, "user.idle", &got), 0);
	test_assert_str(got.uniqueid, "i1");
	shadow_mailbox_free(&got);
	test_assert_int(shadow_reopens(s), 1);
	test_assert_int(open_files("/shadow.db"), 1);
	test_assert_int(shadow_open_count(), base);

	/* A cap of 2: a third store's connection closes the oldest. */
	snprintf(p2, sizeof(p2), "%s/two.db", dir);
	snprintf(p3, sizeof(p3), "%s/three.db", dir);
	shadow_set_max_open(2);
	test_assert_int(shadow_open(p2, &t, err, sizeof(err)), 0);
	test_assert_int(shadow_open(p3, &u, err, sizeof(err)), 0);
	test_assert_int(shadow_open_count(), 2);
	test_assert_int(open_files("/shadow.db"), 0);	/* s, the oldest */
	test_assert_int(shadow_begin(u), 0);		/* u in a transaction */
	test_assert_int(shadow_mailbox_by_name(s, "user.idle", &got), 0);
	shadow_mailbox_free(&got);
	test_assert_int(shadow_reopens(s), 2);
	test_assert_int(open_files("/two.db"), 0);	/* t went, not u */
	test_assert_int(open_files("/three.db"), 1);
	test_assert_int(shadow_commit(u, 1), 0);
	shadow_set_max_open(256);
	shadow_close(&u);
	shadow_close(&t);
	shadow_close(&s);
	test_assert_int(shadow_open_count(), base - 1);
}

TEST_MAIN(T(setup), T(owners), T(mailboxes_and_transactions),
    T(records_keep_the_crcs), T(annotations_and_user_state), T(body_index),
    T(full_disk_rolls_back_cleanly), T(idle_closes_and_reopens),
    T(teardown))
