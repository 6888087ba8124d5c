/*
 * test_jfmt.c -- journal records in an operator's words: both names of
 * a rename, a mailbox's records added, changed and expunged (told apart
 * by SINCE_MODSEQ and each record's createdmodseq), flags, annotations.
 */
#include "autoconf.h"

#include <string.h>

#include "lib/buf.h"
#include "relay/ops/jfmt.h"
#include "tests/unit/test.h"

#define CMS(n) "ANNOTATIONS (%(ENTRY /vendor/cmu/cyrus-imapd/createdmodseq " \
	"USERID \"\" MODSEQ 0 VALUE " #n "))"

static const struct {
	const char *text;
	const char *want;
} cases[] = {
	{ "APPLY RENAME %(OLDMBOXNAME user.jo.A NEWMBOXNAME user.jo.B "
	  "PARTITION default UIDVALIDITY 17)",
	  "APPLY RENAME user.jo.A -> user.jo.B" },
	{ "APPLY RENAME %(OLDMBOXNAME user.bob.Gone NEWMBOXNAME "
	  "DELETED.user.bob.Gone.6B0C09F7 PARTITION default UIDVALIDITY 1)",
	  "APPLY RENAME user.bob.Gone -> DELETED.user.bob.Gone.6B0C09F7 "
	  "(deleted, kept for delayed delete)" },
	{ "APPLY UNMAILBOX user.bob.Old",
	  "APPLY UNMAILBOX user.bob.Old (mailbox removed)" },
	{ "APPLY SUB %(USERID bob MBOXNAME user.bob.Work)",
	  "APPLY SUB bob user.bob.Work" },
	{ "APPLY ANNOTATION %(MBOXNAME user.bob.Work ENTRY /shared/comment "
	  "USERID \"\" MODSEQ 9 VALUE hello)",
	  "APPLY ANNOTATION user.bob.Work /shared/comment" },
	{ "APPLY QUOTA %(ROOT user.bob STORAGE 500000)",
	  "APPLY QUOTA user.bob storage 500000 KiB" },
	/* Two new, one flagged since SINCE_MODSEQ 4, one expunged. */
	{ "APPLY MAILBOX %(UNIQUEID u1 MBOXNAME user.bob LAST_UID 6 "
	  "HIGHESTMODSEQ 9 SINCE_MODSEQ 4 ANNOTATIONS (%(ENTRY /shared/comment "
	  "USERID \"\" MODSEQ 8 VALUE x)) RECORD ("
	  "%(UID 1 MODSEQ 5 FLAGS (\\Flagged) " CMS(2) ") "
	  "%(UID 2 MODSEQ 7 FLAGS (\\Deleted \\Expunged) " CMS(2) ") "
	  "%(UID 5 MODSEQ 8 FLAGS (\\Flagged \\Seen) " CMS(8) ") "
	  "%(UID 6 MODSEQ 9 FLAGS () " CMS(9) ")))",
	  "APPLY MAILBOX user.bob: 2 added, 1 changed, 1 expunged "
	  "(last UID 6); flags \\Flagged x2, \\Seen x1; annotations "
	  "/shared/comment" },
	/* Sent whole (no SINCE_MODSEQ): every record is added. */
	{ "APPLY MAILBOX %(UNIQUEID u2 MBOXNAME user.bob.Work LAST_UID 2 "
	  "RECORD (%(UID 1 MODSEQ 5 FLAGS ()) %(UID 2 MODSEQ 6 FLAGS ())))",
	  "APPLY MAILBOX user.bob.Work: 2 added (last UID 2)" },
	{ "APPLY MAILBOX %(UNIQUEID u3 MBOXNAME user.bob.Empty LAST_UID 0 "
	  "RECORD ())",
	  "APPLY MAILBOX user.bob.Empty: mailbox attributes only (last UID 0)" },
	{ "NOOP", "(not a csync command: NOOP)" },
};

static void
explains(void)
{
	struct buf raw = BUF_INIT, out = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&raw);
		buf_puts(&raw, cases[i].text);
		jfmt_explain(&raw, &out);
		test_assert_str(buf_cstring(&out), cases[i].want);
	}
	buf_free(&raw);
	buf_free(&out);
}

TEST_MAIN(T(explains))
