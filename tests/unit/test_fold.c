/*
 * test_fold.c -- the shadow as the fold of the journal.
 *
 * 1. The recorded sessions of a real master are fed, in order, through
 *    what ingest does (validate against the shadow, journal, apply),
 *    starting from an empty store, and every APPLY's result is compared
 *    with what the real 3.6.1 replica answered in the recording.
 * 2. More commands exercise every APPLY kind.
 * 3. A fresh shadow rebuilt from the journal alone (design.md invariant
 *    2), in one go or in several steps, holds exactly the same rows as
 *    the live one: same answers to every GET.
 */
#include "autoconf.h"

#include <dirent.h>

#include <sqlite3.h>

#include "lib/buf.h"
#include "protocol/csync.h"
#include "storage/apply.h"
#include "storage/fold.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

struct store {
	struct journal *j;
	struct shadow *s;
	struct journal_body *body;
	struct apply_ctx ctx;
	int acks;
	uint64_t lsn;
	int err;
};

static struct store st;
static char *dir;
static char jdir[4096], live[4096];

static void
done(void *arg, uint64_t lsn, int err)
{
	st.acks++;
	st.lsn = lsn;
	st.err = err;
}

static void
wait_one(void)
{
	int want = st.acks + 1;

	while (st.acks < want) {
		journal_collect(st.j);
		if (st.acks < want)
			usleep(100);
	}
}

static int
s_begin(void *arg, const char *part, const char *guid, uint64_t size)
{
	st.body = journal_body_begin(st.j, guid, size);
	return 0;
}

static int
s_data(void *arg, const void *p, size_t n)
{
	journal_body_write(st.body, p, n);
	return 0;
}

static int
s_end(void *arg)
{
	struct shadow_body b;

	journal_body_end(st.body, done, NULL);
	st.body = NULL;
	wait_one();
	if (st.err)
		return -1;
	/* The body is durable: index it, as ingest does. */
	memset(&b, 0, sizeof(b));
	b.lsn = st.lsn;
	shadow_begin(st.s);
	{
		struct journal_reader *r = journal_reader_new(jdir, NULL,
		    st.lsn, st.lsn, NULL, 0);
		struct journal_record rec;

		if (journal_reader_next(r, &rec, NULL) == 1) {
			journal_guid_hex(rec.guid, b.guid);
			b.size = rec.raw_len;
		}
		journal_reader_free(&r);
	}
	shadow_body_put(st.s, &b);
	shadow_commit(st.s, st.lsn);
	return 0;
}

/*
 * What ingest does with one APPLY: check and change the shadow; journal
 * it if anything changed, and commit once it is durable.  Returns the
 * final reply line.
 */
static const char *
ingest_apply(const struct dlist *e)
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct apply_outcome out;
	struct buf text = BUF_INIT;

	if (strcmp(e->key, "CAPABILITIES") == 0) {
		st.ctx.sieve_mailbox = true;
		return "OK success";
	}
	if (!apply_changes_state(e->key))
		return "OK success";
	shadow_begin(st.s);
	apply_command(st.s, e, &st.ctx, &out);
	if (!out.changed) {
		shadow_rollback(st.s);
		return result_line(out.code);
	}
	csync_print_command(&text, "APPLY", e, &pr);
	text.len -= 2;
	journal_append(st.j, JOURNAL_COMMAND, text.s, text.len, done, NULL);
	wait_one();
	buf_free(&text);
	if (st.err) {
		shadow_rollback(st.s);
		return "NO journal failed";
	}
	shadow_commit(st.s, st.lsn);
	return result_line(out.code);
}

static void
read_file(const char *path, struct buf *b)
{
	FILE *fp = fopen(path, "rb");
	char tmp[65536];
	size_t n;

	buf_reset(b);
	while (fp && (n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		buf_append(b, tmp, n);
	if (fp)
		fclose(fp);
}

/* The next final reply line in the recorded replica stream. */
static const char *
next_final(const struct buf *s2c, size_t *off, char *line, size_t len)
{
	while (*off < s2c->len) {
		const char *nl = memchr(s2c->s + *off, '\n', s2c->len - *off);
		size_t n = nl ? (size_t)(nl - (s2c->s + *off)) : s2c->len - *off;
		const char *l = s2c->s + *off;

		*off += n + 1;
		if (n && l[n - 1] == '\r')
			n--;
		if (n >= 2 && l[0] == '*' && l[1] == ' ')
			continue;
		snprintf(line, len, "%.*s", (int)n, l);
		return line;
	}
	return NULL;
}

static void
replay_trace(const char *name, int *compared)
{
	const char *src = getenv("SRCDIR") ? getenv("SRCDIR") : "..";
	struct dlist_file_sink sink = { s_begin, s_data, s_end, NULL };
	struct csync_reader *r = csync_reader_new(CSYNC_SERVER, NULL, &sink);
	struct buf c2s = BUF_INIT, s2c = BUF_INIT;
	char path[4096], want[1024];
	size_t off = 0, roff = 0, used;

	snprintf(path, sizeof(path), "%s/tests/fixtures/traces/%s/conn1.c2s",
	    src, name);
	read_file(path, &c2s);
	snprintf(path, sizeof(path), "%s/tests/fixtures/traces/%s/conn1.s2c",
	    src, name);
	read_file(path, &s2c);
	test_assert(c2s.len > 0 && s2c.len > 0);
	/* Skip the banner, up to and including its "* OK" line. */
	while (roff < s2c.len) {
		bool ok = strncmp(s2c.s + roff, "* OK", 4) == 0;
		const char *nl = memchr(s2c.s + roff, '\n', s2c.len - roff);

		roff = nl ? (size_t)(nl - s2c.s) + 1 : s2c.len;
		if (ok)
			break;
	}
	st.ctx.sieve_mailbox = false;
	while (off < c2s.len) {
		enum csync_status cs = csync_reader_feed(r, c2s.s + off,
		    c2s.len - off, &used);
		struct dlist *e;
		const char *got = NULL;

		off += used;
		if (cs == CSYNC_NEED_MORE)
			break;
		test_assert_int(cs, CSYNC_LINE);
		e = csync_reader_take_entry(r);
		if (e && strcmp(csync_reader_verb(r), "APPLY") == 0)
			got = ingest_apply(e);
		if (next_final(&s2c, &roff, want, sizeof(want)) == NULL) {
			dlist_free(&e);
			break;
		}
		if (got != NULL) {
			(*compared)++;
			if (strcmp(got, want) != 0) {
				fprintf(stderr, "%s: APPLY %s: we say \"%s\", "
				    "the replica said \"%s\"\n", name, e->key,
				    got, want);
				test_assert(0);
			}
		}
		dlist_free(&e);
	}
	csync_reader_free(&r);
	buf_free(&c2s);
	buf_free(&s2c);
}

static void
setup(void)
{
	char err[512];

	dir = make_tmpdir();
	snprintf(jdir, sizeof(jdir), "%s/journal", dir);
	snprintf(live, sizeof(live), "%s/live.db", dir);
	test_assert_int(journal_open(jdir, NULL, &st.j, err, sizeof(err)), 0);
	test_assert_int(shadow_open(live, &st.s, err, sizeof(err)), 0);
}

/* The recorded sessions replayed from an empty store, in order. */
static void
recorded_sessions_get_the_replicas_answers(void)
{
	static const char *const traces[] = { "a-oneshot-new-user",
		"a2-oneshot-new-user-nocompress", "b0-setup-folders",
		"b-rolling-stepwise" };
	int compared = 0;
	size_t i;

	for (i = 0; i < 4; i++)
		replay_trace(traces[i], &compared);
	printf("# %d APPLY replies compared with the real replica's\n",
	    compared);
	test_assert(compared >= 15);
}

static struct dlist *
parse_apply(const char *text)
{
	struct csync_reader *r = csync_reader_new(CSYNC_SERVER, NULL, NULL);
	struct buf b = BUF_INIT;
	struct dlist *e = NULL;
	size_t used;

	buf_puts(&b, text);
	buf_puts(&b, "\r\n");
	if (csync_reader_feed(r, b.s, b.len, &used) == CSYNC_LINE)
		e = csync_reader_take_entry(r);
	csync_reader_free(&r);
	buf_free(&b);
	return e;
}

#define MB(name, uid, extra) \
	"APPLY MAILBOX %(UNIQUEID " uid " MBOXNAME " name " LAST_UID 0 " \
	"HIGHESTMODSEQ 5 RECENTUID 0 RECENTTIME 0 LAST_APPENDDATE 0 " \
	"POP3_LAST_LOGIN 0 UIDVALIDITY 1000 PARTITION default ACL " \
	"\"zed\tlrswipkxtecdan\t\" OPTIONS P " extra "RECORD ())"

/* Every kind of APPLY, with the answers a 3.6 replica gives. */
static void
every_apply_kind(void)
{
	static const struct {
		const char *cmd;
		const char *want;
	} cmds[] = {
		{ MB("user.zed", "zz1", ""), "OK success" },
		{ MB("user.zed.Work", "zz2", "ANNOTATIONS (%(ENTRY /comment "
		    "USERID \"\" MODSEQ 5 VALUE note)) "), "OK success" },
		/* Before its parent: user.zed.p is made, the same way when
		 * the journal is folded. */
		{ MB("user.zed.p.q", "zzq", ""), "OK success" },
		/* User flags take the mailbox's slots as they come. */
		{ "APPLY MAILBOX %(UNIQUEID zzq MBOXNAME user.zed.p.q LAST_UID "
		    "1 HIGHESTMODSEQ 6 RECENTUID 0 RECENTTIME 0 LAST_APPENDDATE "
		    "0 POP3_LAST_LOGIN 0 UIDVALIDITY 1000 PARTITION default ACL "
		    "\"zed\tlrswipkxtecdan\t\" OPTIONS P RECORD (%(UID 1 MODSEQ "
		    "6 LAST_UPDATED 1 FLAGS (b A \\Expunged) INTERNALDATE 1 "
		    "SIZE 1 GUID 1111111111111111111111111111111111111111)))",
		    "OK success" },
		{ MB("user.zed.Moved", "zz1", ""),
		    "NO IMAP_MAILBOX_MOVED Mailbox exists with another name or "
		    "uniqueid" },
		{ MB("user.zed", "zz1", "SINCE_MODSEQ 4 "),
		    "NO IMAP_SYNC_CHANGED Changed since last sync" },
		/* An empty mailbox's SYNC_CRC is 0, a wildcard; its
		 * SYNC_CRC_ANNOT is 12345678, which 77 does not match. */
		{ MB("user.zed", "zz1", "SYNC_CRC 77 "), "OK success" },
		{ MB("user.zed", "zz1", "SYNC_CRC_ANNOT 77 "),
		    "NO IMAP_SYNC_CHECKSUM Checksum Failure" },
		{ "APPLY MAILBOX %(UNIQUEID zz9 MBOXNAME user.zed.x)",
		    "NO IMAP_PROTOCOL_BAD_PARAMETERS" },
		{ "APPLY MAILBOX (not a kvlist)",
		    "NO IMAP_PROTOCOL_BAD_PARAMETERS" },
		{ "APPLY MAILBOX %(UNIQUEID zzi MBOXNAME user.zed.a MBOXTYPE ei "
		    "HIGHESTMODSEQ 3 CREATEDMODSEQ 2 FOLDERMODSEQ 3)",
		    "OK success" },
		{ "APPLY SEEN %(USERID zed UNIQUEID zz1 LASTREAD 1 LASTUID 0 "
		    "LASTCHANGE 1 SEENUIDS \"\")", "OK success" },
		{ "APPLY SEEN %(USERID zed)", "NO IMAP_PROTOCOL_BAD_PARAMETERS" },
		{ "APPLY SUB %(USERID zed MBOXNAME user.zed.Work)", "OK success" },
		{ "APPLY SUB %(USERID zed MBOXNAME user.zed)", "OK success" },
		{ "APPLY UNSUB %(USERID zed MBOXNAME user.zed)", "OK success" },
		{ "APPLY QUOTA %(ROOT user.zed STORAGE 1000 MESSAGE 50 MODSEQ "
		    "3)", "OK success" },
		{ "APPLY UNQUOTA user.nobody", "OK success" },
		{ "APPLY ANNOTATION %(MBOXNAME user.zed ENTRY /comment USERID "
		    "\"\" VALUE hello)", "OK success" },
		{ "APPLY ANNOTATION %(MBOXNAME user.none ENTRY /comment USERID "
		    "\"\" VALUE x)", "NO IMAP_MAILBOX_NONEXISTENT No Such "
		    "Mailbox" },
		{ "APPLY UNANNOTATION %(MBOXNAME user.zed.Work ENTRY /comment "
		    "USERID \"\")", "OK success" },
		{ "APPLY SIEVE %(USERID zed FILENAME v.script LAST_UPDATE 9 "
		    "CONTENT {7+}\r\nkeep;\r\n)", "OK success" },
		{ "APPLY SIEVE %(USERID zed FILENAME notes.txt LAST_UPDATE 9 "
		    "CONTENT x)", "OK success" },
		{ "APPLY SIEVE %(USERID nobody FILENAME v.script LAST_UPDATE 9 "
		    "CONTENT x)", "NO Unknown error" },
		{ "APPLY ACTIVATE_SIEVE %(USERID zed FILENAME v.bc)",
		    "OK success" },
		{ "APPLY ACTIVATE_SIEVE %(USERID zed FILENAME v.script)",
		    "NO Unknown error" },
		{ "APPLY RENAME %(OLDMBOXNAME user.zed.Work NEWMBOXNAME "
		    "user.zed.Play PARTITION default UIDVALIDITY 1000)",
		    "OK success" },
		{ "APPLY RENAME %(OLDMBOXNAME user.zed.Gone NEWMBOXNAME "
		    "user.zed.X PARTITION default)",
		    "NO IMAP_MAILBOX_NONEXISTENT No Such Mailbox" },
		{ "APPLY RENAME %(OLDMBOXNAME user.zed NEWMBOXNAME user.other "
		    "PARTITION default)", "NO IMAP_MAILBOX_NOTSUPPORTED "
		    "Operation is not supported on mailbox" },
		{ "APPLY EXPUNGE %(MBOXNAME user.zed.Play UNIQUEID zz1 UID (1))",
		    "NO IMAP_MAILBOX_MOVED Mailbox exists with another name or "
		    "uniqueid" },
		{ "APPLY EXPUNGE %(MBOXNAME user.tracy UNIQUEID "
		    "elaej6o3mztrxe42eoq5tddq UID (1 99))", "NO Unknown error" },
		{ "APPLY UNMAILBOX user.zed.Play", "OK success" },
		{ "APPLY UNMAILBOX user.zed.Play", "OK success" },
		{ "APPLY FROB %(X 1)", "NO IMAP_PROTOCOL_ERROR Protocol error" },
		{ "APPLY UNACTIVATE_SIEVE %(USERID zed)", "OK success" },
		{ "APPLY UNSIEVE %(USERID zed FILENAME v.script)", "OK success" },
		{ MB("user.yan", "yy1", ""), "OK success" },
		{ "APPLY SUB %(USERID yan MBOXNAME user.yan)", "OK success" },
		{ "APPLY UNUSER yan", "OK success" },
	};
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct dlist *e = parse_apply(cmds[i].cmd);
		const char *got;

		test_assert(e != NULL);
		if (e == NULL)
			continue;
		got = ingest_apply(e);
		if (strcmp(got, cmds[i].want) != 0) {
			fprintf(stderr, "%s\n  got  %s\n  want %s\n",
			    cmds[i].cmd, got, cmds[i].want);
			test_assert(0);
		}
		dlist_free(&e);
	}
}

/* Every row of every table, in a fixed order, as text. */
static void
dump(const char *path, struct buf *out)
{
	static const char *const q[] = {
		"SELECT * FROM meta ORDER BY 1",
		"SELECT * FROM mailbox ORDER BY 1",
		"SELECT * FROM record ORDER BY 1, 2",
		"SELECT * FROM mbannot ORDER BY 1, 2, 3",
		"SELECT * FROM seen ORDER BY 1, 2",
		"SELECT * FROM sub ORDER BY 1, 2",
		"SELECT * FROM sieve ORDER BY 1, 2",
		"SELECT * FROM quota ORDER BY 1",
		"SELECT * FROM gone ORDER BY 1",
		"SELECT * FROM uflag ORDER BY 1, 2",
		"SELECT * FROM body ORDER BY 1",
	};
	sqlite3 *db;
	size_t i;

	buf_reset(out);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		abort();
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		sqlite3_stmt *stmt;

		buf_printf(out, "== %s\n", q[i]);
		sqlite3_prepare_v2(db, q[i], -1, &stmt, NULL);
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			int c;

			for (c = 0; c < sqlite3_column_count(stmt); c++) {
				const void *b = sqlite3_column_blob(stmt, c);

				buf_append(out, b ? b : "NULL", b ?
				    (size_t)sqlite3_column_bytes(stmt, c) : 4);
				buf_putc(out, '|');
			}
			buf_putc(out, '\n');
		}
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
}

/*
 * A seed record (relay/ingest/seed.c): a replica's mailbox, records and all,
 * whose bodies the relay never had.  Applied as a replay, it changes
 * the shadow; journaled as "SEED MAILBOX", it reads back as a seed, and
 * the rebuilt shadow below holds it like the live one.
 */
static void
seed_records_fold(void)
{
	static const struct apply_ctx replay = { true, true, true, true };
	static const char *const seeds[] = {
		"SEED MAILBOX %(UNIQUEID sd1 MBOXNAME user.seedy LAST_UID 2 "
		"HIGHESTMODSEQ 7 RECENTUID 0 RECENTTIME 0 LAST_APPENDDATE 0 "
		"POP3_LAST_LOGIN 0 UIDVALIDITY 1001 PARTITION default ACL "
		"\"seedy\tlrswipkxtecdan\t\" OPTIONS P RECORD (%(UID 1 "
		"MODSEQ 6 LAST_UPDATED 1700000000 FLAGS (\\Seen) INTERNALDATE "
		"1700000000 SIZE 1234 GUID 1111111111111111111111111111111111111111"
		") %(UID 2 MODSEQ 7 LAST_UPDATED 1700000001 FLAGS () INTERNALDATE "
		"1700000001 SIZE 2345 GUID 2222222222222222222222222222222222222222"
		")))",
		"SEED SUB %(USERID seedy MBOXNAME user.seedy)",
	};
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct shadow_mailbox mb;
	struct apply_outcome out;
	struct buf text = BUF_INIT;
	size_t i;
	bool seed;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct dlist *e = fold_parse_record(seeds[i],
		    strlen(seeds[i]), &seed);

		test_assert(e != NULL && seed);
		if (e == NULL)
			continue;
		shadow_begin(st.s);
		apply_command(st.s, e, &replay, &out);
		test_assert(out.changed);
		buf_reset(&text);
		csync_print_command(&text, "SEED", e, &pr);
		text.len -= 2;
		journal_append(st.j, JOURNAL_COMMAND, text.s, text.len, done,
		    NULL);
		wait_one();
		test_assert_int(st.err, 0);
		shadow_commit(st.s, st.lsn);
		dlist_free(&e);
	}
	buf_free(&text);
	test_assert_int(shadow_mailbox_by_name(st.s, "user.seedy", &mb), 0);
	test_assert_int(mb.last_uid, 2);
	shadow_mailbox_free(&mb);
	/* An APPLY is no seed. */
	{
		struct dlist *e = fold_parse_record("APPLY UNUSER seedy", 18,
		    &seed);

		test_assert(e != NULL && !seed);
		dlist_free(&e);
	}
}

static void
rebuilt_shadow_equals_live(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct shadow *s;
	char path[4096], err[512];
	long n;

	shadow_close(&st.s);
	dump(live, &a);
	test_assert(strstr(a.s, "user.tracy") != NULL);
	test_assert(strstr(a.s, "user.zed") != NULL);
	test_assert(strstr(a.s, "|user.zed.p|") != NULL);	/* a parent */
	test_assert(strstr(a.s, "zzq|1|A|") != NULL);	/* a flag slot */
	test_assert(strstr(a.s, "user.seedy") != NULL);

	/* All at once. */
	snprintf(path, sizeof(path), "%s/rebuilt.db", dir);
	test_assert_int(shadow_open(path, &s, err, sizeof(err)), 0);
	n = fold_journal(s, jdir, 0, err, sizeof(err));
	test_assert(n > 20);
	test_assert_int(shadow_lsn(s), journal_durable_lsn(st.j));
	shadow_close(&s);
	dump(path, &b);
	if (a.len != b.len || memcmp(a.s, b.s, a.len) != 0) {
		fprintf(stderr, "live:\n%s\nrebuilt:\n%s\n", a.s, b.s);
		test_assert(0);
	}

	/* In steps, as after crashes at different points. */
	snprintf(path, sizeof(path), "%s/stepped.db", dir);
	test_assert_int(shadow_open(path, &s, err, sizeof(err)), 0);
	{
		uint64_t upto;

		for (upto = 3; upto < journal_durable_lsn(st.j); upto += 7)
			test_assert(fold_journal(s, jdir, upto, err,
			    sizeof(err)) >= 0);
		test_assert(fold_journal(s, jdir, 0, err, sizeof(err)) >= 0);
		/* Nothing left: a second fold applies nothing. */
		test_assert_int(fold_journal(s, jdir, 0, err, sizeof(err)), 0);
	}
	shadow_close(&s);
	dump(path, &b);
	test_assert(a.len == b.len && memcmp(a.s, b.s, a.len) == 0);
	buf_free(&a);
	buf_free(&b);
}

/* No entry but . and .. (or no directory at all). */
static bool
dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (d == NULL)
		return true;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

/*
 * The same rebuild with every command over 256 bytes too big to hold:
 * read in pieces, its RECORD elements spilled and applied one at a time
 * (as after a crash with a one-shot sync of a big mailbox in the
 * journal).  The shadow must come out the same.
 */
static void
rebuilt_in_pieces_equals_live(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct shadow *s;
	char path[4096], err[512];

	dump(live, &a);
	setenv("SYNCRELAY_BIG_TEXT", "256", 1);
	snprintf(path, sizeof(path), "%s/pieces.db", dir);
	test_assert_int(shadow_open(path, &s, err, sizeof(err)), 0);
	test_assert(fold_journal(s, jdir, 0, err, sizeof(err)) > 20);
	test_assert_int(shadow_lsn(s), journal_durable_lsn(st.j));
	shadow_close(&s);
	unsetenv("SYNCRELAY_BIG_TEXT");
	dump(path, &b);
	if (a.len != b.len || memcmp(a.s, b.s, a.len) != 0) {
		fprintf(stderr, "live:\n%s\nin pieces:\n%s\n", a.s, b.s);
		test_assert(0);
	}
	/* The spill files are gone with their fold. */
	snprintf(path, sizeof(path), "%s/tmp", dir);
	test_assert(dir_is_empty(path));
	buf_free(&a);
	buf_free(&b);
}

static void
teardown(void)
{
	journal_close(&st.j);
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(setup), T(recorded_sessions_get_the_replicas_answers),
    T(every_apply_kind), T(seed_records_fold), T(rebuilt_shadow_equals_live),
    T(rebuilt_in_pieces_equals_live), T(teardown))
