/*
 * csync.h -- csync line framing: commands in, replies out (and back).
 *
 * A csync line is a word followed by arguments.  The reader splits the
 * byte stream into lines without ever blocking:
 *
 *  - a server reads commands: GET, APPLY and RESTORE carry one dlist
 *    entry ("GET USER alice"); every other verb carries plain text
 *    ("AUTHENTICATE PLAIN AHJl...").
 *  - a client reads replies: "* KEY value" carries a dlist entry (or, in
 *    banner mode, text); "OK", "NO", "BAD", "BYE" and "+" carry text.
 *
 * A line that breaks a rule is read to its end -- stepping over any
 * literal payload in it -- and then reported as CSYNC_BAD_LINE, so the
 * session can answer and stay in step.
 *
 * The writers produce the exact forms Cyrus uses: "* KEY value", final
 * "OK <text>" / "NO <CODE> <text>" / "BAD <text>", and commands.
 */
#ifndef SR_CSYNC_H
#define SR_CSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "protocol/dlist.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "protocol/result.h"

enum csync_role { CSYNC_SERVER, CSYNC_CLIENT };

enum csync_status {
	CSYNC_NEED_MORE = 0,	/* all bytes used, no line yet */
	CSYNC_LINE,		/* a line is ready */
	CSYNC_BAD_LINE,		/* a bad line was read and skipped */
};

enum csync_bad {
	CSYNC_BAD_NONE,
	CSYNC_BAD_WORD,		/* first word too long */
	CSYNC_BAD_TEXT,		/* text arguments too long */
	CSYNC_BAD_MISSING,	/* a dlist verb without its argument */
	CSYNC_BAD_DLIST,	/* the dlist argument broke a rule */
	CSYNC_BAD_LITERAL,	/* pre-auth: a literal over the line limit */
};

struct csync_reader;

/*
 * Returns a new reader.  limits bound dlist arguments (NULL: defaults;
 * max_token also bounds words and text); sink receives file-literal
 * bodies (may be NULL).  Both are copied.
 */
struct csync_reader *csync_reader_new(enum csync_role role,
    const struct dlist_limits *limits, const struct dlist_file_sink *sink);
void csync_reader_free(struct csync_reader **rp);
/* Replaces the limits (e.g. looser after authentication). */
void csync_reader_set_limits(struct csync_reader *r,
    const struct dlist_limits *limits);
/*
 * Server: read the next line whole as text, with no verb (the answer to
 * a SASL challenge, which is case-sensitive base64).  It comes back as a
 * CSYNC_LINE with verb "" and the line as text.
 */
void csync_reader_raw_line(struct csync_reader *r);
/*
 * Server, before authentication: every line is a word and text read to
 * its end, never a dlist, and a literal announced in it is not read.
 */
void csync_reader_set_preauth(struct csync_reader *r, bool on);
/*
 * Pre-auth, after a refused line that ended in "{n+}": drops the next n
 * bytes and the rest of the line they end, and so on while such lines
 * end in "{N+}" again, as Cyrus steps over a refused command.  Returns
 * 0, or -1 (nothing dropped) when n is over the line limit (max_line);
 * a later literal over what is left of it makes the next feed return
 * CSYNC_BAD_LINE with CSYNC_BAD_LITERAL.
 */
int csync_reader_eat(struct csync_reader *r, uint64_t n);
/* Does text (len bytes) end in a non-synchronizing literal "{N+}"? */
bool csync_literal_plus(const char *text, size_t len, uint64_t *n);
/* Client: read "* ..." lines as text (the banner) rather than dlists. */
void csync_reader_set_banner(struct csync_reader *r, bool on);

/* Sets (NULL: removes) the dlist parser's record hook (dlist_parse.h)
 * for the next dlist arguments. */
void csync_reader_set_record_hook(struct csync_reader *r,
    const struct dlist_record_hook *hook);

/* Feeds n bytes; *used gets the bytes consumed.  See csync_status. */
enum csync_status csync_reader_feed(struct csync_reader *r, const char *data,
    size_t n, size_t *used);

/* After LINE or BAD_LINE: the first word, upper-cased ("" if empty). */
const char *csync_reader_verb(const struct csync_reader *r);
/* After LINE: the dlist entry, if the line had one; caller owns it. */
struct dlist *csync_reader_take_entry(struct csync_reader *r);
/* After LINE: the text after the word and one SP (NULL if none). */
const char *csync_reader_text(const struct csync_reader *r);
/* After LINE: true if the text contained a literal (its bytes dropped). */
bool csync_reader_text_had_literal(const struct csync_reader *r);
/* After BAD_LINE: what was wrong, and a description. */
enum csync_bad csync_reader_bad(const struct csync_reader *r);
enum dlist_parse_error csync_reader_dlist_error(const struct csync_reader *r);
const char *csync_reader_errstr(const struct csync_reader *r);

/* Appends "* KEY value\r\n" (server literals). 0 or negative. */
int csync_print_untagged(struct buf *out, const struct dlist *entry);
/* Appends "<word> <text>\r\n", e.g. ("OK", "Noop completed"). */
int csync_print_final(struct buf *out, const char *word, const char *text);
/* Appends the final line for a result code (result_line() + CRLF). */
int csync_print_result(struct buf *out, enum result_code code);
/*
 * Appends a command: verb [SP entry] CRLF, printed with pr (client mode
 * for a relay talking to a replica).  entry may be NULL.
 */
int csync_print_command(struct buf *out, const char *verb,
    const struct dlist *entry, const struct dlist_printer *pr);

#endif
