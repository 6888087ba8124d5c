/*
 * test_synccrc.c -- SYNC_CRC and SYNC_CRC_ANNOT against the worked
 * example of sync-protocol.md section 7.5 and against the CRCs real
 * Cyrus masters sent in the recorded sessions.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>

#include "lib/buf.h"
#include "protocol/csync.h"
#include "protocol/synccrc.h"
#include "tests/unit/test.h"

static struct dlist *
parse_entry(const char *text)
{
	struct dlist_parser *p = dlist_parser_new(NULL, NULL);
	struct buf b = BUF_INIT;
	struct dlist *dl = NULL;
	size_t used;

	buf_puts(&b, text);
	buf_puts(&b, "\r\n");
	if (dlist_parser_feed(p, b.s, b.len, &used) == DLIST_DONE)
		dl = dlist_parser_take(p);
	dlist_parser_free(&p);
	buf_free(&b);
	return dl;
}

/* Both CRCs of a MAILBOX kvlist's RECORD list. */
static int
mailbox_crcs(const struct dlist *mb, uint32_t *basic, uint32_t *annot)
{
	const struct dlist *rl = dlist_get(mb, "RECORD"), *r;

	*basic = 0;
	*annot = SYNCCRC_ANNOT_INIT;
	if (rl == NULL)
		return -1;
	for (r = rl->head; r != NULL; r = r->next) {
		uint32_t b, a;

		if (synccrc_record(r, &b, &a) < 0)
			return -1;
		*basic ^= b;
		*annot ^= a;
	}
	return 0;
}

static void
worked_example(void)
{
	struct dlist *mb = parse_entry("MAILBOX %(MBOXNAME user.bob RECORD ("
	    "%(UID 1 MODSEQ 4 LAST_UPDATED 1700000100 FLAGS (\\Seen Work) "
	    "INTERNALDATE 1700000000 SIZE 137 GUID "
	    "0b33e29ffdbb606ce7c8ca48e77286e0079fb426 ANNOTATIONS ("
	    "%(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID \"\" MODSEQ 0 "
	    "VALUE 1700000000) %(ENTRY /vendor/cmu/cyrus-imapd/createdmodseq "
	    "USERID \"\" MODSEQ 0 VALUE 3))) "
	    "%(UID 2 MODSEQ 6 LAST_UPDATED 1700000200 FLAGS () INTERNALDATE "
	    "1700000150 SIZE 137 GUID a803051393b82d4f43de365457c5f015305fcf01 "
	    "ANNOTATIONS (%(ENTRY /comment USERID \"\" MODSEQ 6 VALUE hi) "
	    "%(ENTRY /vendor/cmu/cyrus-imapd/thrid USERID \"\" MODSEQ 0 VALUE "
	    "0a1b2c3d4e5f6071) %(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID "
	    "\"\" MODSEQ 0 VALUE 1700000150) %(ENTRY "
	    "/vendor/cmu/cyrus-imapd/createdmodseq USERID \"\" MODSEQ 0 VALUE "
	    "5))) "
	    "%(UID 3 MODSEQ 7 LAST_UPDATED 1700000300 FLAGS (\\Deleted "
	    "\\Expunged) INTERNALDATE 1700000250 SIZE 137 GUID "
	    "0b33e29ffdbb606ce7c8ca48e77286e0079fb426)))");
	uint32_t b, a;

	test_assert_int(synccrc_flag("\\Seen"), 3201761491u);
	test_assert_int(synccrc_flag("Work"), 1397647488u);
	test_assert_int(synccrc_basic(1, 4, 1700000100, 3986253907u,
	    1700000000, "0b33e29ffdbb606ce7c8ca48e77286e0079fb426"),
	    3531550643u);
	test_assert_int(synccrc_annot(2, "/comment", "", "hi", 2), 2882998293u);
	test_assert_int(synccrc_annot(2, "/vendor/cmu/cyrus-imapd/thrid", "",
	    "a1b2c3d4e5f6071", 15), 1679829341u);
	test_assert(mb != NULL);
	test_assert_int(mailbox_crcs(mb, &b, &a), 0);
	test_assert_int(b, 3627443907u);
	test_assert_int(a, 3808183431u);
	/* The expunged record contributes nothing. */
	test_assert_int(synccrc_record(dlist_get(mb, "RECORD")->tail, &b, &a),
	    1);
	test_assert(b == 0 && a == 0);
	dlist_free(&mb);
}

static void
debian_master_record(void)
{
	struct dlist *mb = parse_entry("MAILBOX %(RECORD (%(UID 1 MODSEQ 3 "
	    "LAST_UPDATED 1795949822 FLAGS () INTERNALDATE 1795949822 SIZE 414 "
	    "GUID 4fa815ce3d59990101cc4f23168fef8522f9559e ANNOTATIONS ("
	    "%(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID \"\" MODSEQ 0 "
	    "VALUE 1795949822) %(ENTRY /vendor/cmu/cyrus-imapd/createdmodseq "
	    "USERID \"\" MODSEQ 0 VALUE 3)))))");
	uint32_t b, a;

	test_assert_int(mailbox_crcs(mb, &b, &a), 0);
	test_assert_int(b, 3661654723u);
	test_assert_int(a, 4163304913u);
	dlist_free(&mb);
}

static void
flag_rules(void)
{
	struct dlist *x = parse_entry("R %(UID 9 MODSEQ 9 LAST_UPDATED 9 "
	    "FLAGS (\\Seen Work work \\Recent \\Bogus) INTERNALDATE 9 GUID "
	    "0b33e29ffdbb606ce7c8ca48e77286e0079fb426)");
	struct dlist *y = parse_entry("R %(UID 9 MODSEQ 9 LAST_UPDATED 9 "
	    "FLAGS (work \\SEEN) INTERNALDATE 9 GUID "
	    "0B33E29FFDBB606CE7C8CA48E77286E0079FB426)");
	struct dlist *bad = parse_entry("R %(UID 9 MODSEQ x LAST_UPDATED 9 "
	    "FLAGS () INTERNALDATE 9 GUID 0b33e29ffdbb606ce7c8ca48e77286e0079fb426)");
	uint32_t b1, a1, b2, a2;

	test_assert_int(synccrc_record(x, &b1, &a1), 0);
	test_assert_int(synccrc_record(y, &b2, &a2), 0);
	test_assert_int(b1, b2);	/* order, case, duplicates, unknowns */
	test_assert_int(synccrc_record(bad, &b1, &a1), -EINVAL);
	test_assert(synccrc_match(1, 2, 1, 2));
	test_assert(synccrc_match(0, 2, 5, 2));
	test_assert(synccrc_match(1, 0, 1, 7));
	test_assert(!synccrc_match(1, 2, 3, 2));
	test_assert(!synccrc_match(1, 2, 1, 3));
	dlist_free(&x);
	dlist_free(&y);
	dlist_free(&bad);
}

/* Every APPLY MAILBOX that carries the whole mailbox (no SINCE_MODSEQ)
 * in the recorded sessions: our CRCs equal what the master sent. */
static void
trace_crcs(void)
{
	const char *src = getenv("SRCDIR") ? getenv("SRCDIR") : "..";
	char path[4096];
	DIR *d;
	struct dirent *de;
	int checked = 0;

	snprintf(path, sizeof(path), "%s/tests/fixtures/traces", src);
	d = opendir(path);
	test_assert(d != NULL);
	while (d && (de = readdir(d)) != NULL) {
		char file[8192];
		struct buf in = BUF_INIT;
		FILE *fp;
		char tmp[65536];
		size_t n, off = 0, used;
		struct csync_reader *r;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s/conn1.c2s", path,
		    de->d_name);
		if ((fp = fopen(file, "rb")) == NULL)
			continue;
		while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
			buf_append(&in, tmp, n);
		fclose(fp);
		r = csync_reader_new(CSYNC_SERVER, NULL, NULL);
		while (off < in.len) {
			enum csync_status st = csync_reader_feed(r, in.s + off,
			    in.len - off, &used);
			struct dlist *e;
			uint64_t sb, sa;
			uint32_t b, a;

			off += used;
			if (st != CSYNC_LINE)
				continue;
			e = csync_reader_take_entry(r);
			if (e && !strcmp(e->key, "MAILBOX") &&
			    !dlist_get(e, "SINCE_MODSEQ") &&
			    dlist_get_num(e, "SYNC_CRC", &sb) == 0 && sb != 0 &&
			    dlist_get_num(e, "SYNC_CRC_ANNOT", &sa) == 0) {
				test_assert_int(mailbox_crcs(e, &b, &a), 0);
				test_assert_int(b, sb);
				test_assert_int(a, sa);
				checked++;
			}
			dlist_free(&e);
		}
		csync_reader_free(&r);
		buf_free(&in);
	}
	if (d)
		closedir(d);
	printf("# %d full APPLY MAILBOX CRCs from real masters reproduced\n",
	    checked);
	test_assert(checked >= 2);
}

TEST_MAIN(T(worked_example), T(debian_master_record), T(flag_rules),
    T(trace_crcs))
