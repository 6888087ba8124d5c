/*
 * test_csync.c -- csync line framing, reply writers and result codes.
 */
#include "autoconf.h"

#include "lib/buf.h"
#include "protocol/csync.h"
#include "tests/unit/test.h"

struct line {
	enum csync_status st;
	char verb[64];
	char text[256];
	bool has_text;
	bool had_literal;
	struct dlist *entry;
	enum csync_bad bad;
};

/* Reads every line of in, fed in chunks of at most chunk bytes. */
static int
read_lines(struct csync_reader *r, const char *in, size_t n, size_t chunk,
    struct line *out, int max)
{
	size_t off = 0, used;
	int count = 0;

	while (off < n && count < max) {
		size_t k = n - off < chunk ? n - off : chunk;
		enum csync_status st = csync_reader_feed(r, in + off, k, &used);

		off += used;
		if (st == CSYNC_NEED_MORE)
			continue;
		memset(&out[count], 0, sizeof(out[count]));
		out[count].st = st;
		snprintf(out[count].verb, sizeof(out[count].verb), "%s",
		    csync_reader_verb(r));
		if (csync_reader_text(r)) {
			out[count].has_text = true;
			snprintf(out[count].text, sizeof(out[count].text), "%s",
			    csync_reader_text(r));
		}
		out[count].had_literal = csync_reader_text_had_literal(r);
		out[count].bad = csync_reader_bad(r);
		if (st == CSYNC_LINE)
			out[count].entry = csync_reader_take_entry(r);
		count++;
	}
	return count;
}

static void
free_lines(struct line *l, int n)
{
	int i;

	for (i = 0; i < n; i++)
		dlist_free(&l[i].entry);
}

static void
server_reads_commands(void)
{
	static const char in[] =
	    "noop\r\n"
	    "AUTHENTICATE PLAIN AHJlcGwAcmVwbHB3\r\n"
	    "GET USER alice\r\n"
	    "apply RESERVE %(PARTITION default GUID (85ad4a82f0ac38cf6696948ca6d8"
	    "e98d10b5337e))\r\n"
	    "\r\n"
	    "FOO bar {5+}\r\nhello baz\r\n"
	    "GET MAILBOXES (a b))\r\n"
	    "GET\r\n"
	    "APPLY MESSAGE (%{default 85ad4a82f0ac38cf6696948ca6d8e98d10b5337e"
	    " 4}\r\nNOOP)\r\n"
	    "EXIT\r\n";
	size_t chunks[] = { 1, 3, 7, sizeof(in) };
	size_t c;

	for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct csync_reader *r = csync_reader_new(CSYNC_SERVER, NULL,
		    NULL);
		struct line l[16];
		int n = read_lines(r, in, sizeof(in) - 1, chunks[c], l, 16);

		test_assert_int(n, 10);
		if (n != 10)
			goto next;
		test_assert_str(l[0].verb, "NOOP");
		test_assert(!l[0].has_text && l[0].entry == NULL);
		test_assert_str(l[1].verb, "AUTHENTICATE");
		test_assert_str(l[1].text, "PLAIN AHJlcGwAcmVwbHB3");
		test_assert_str(l[2].verb, "GET");
		test_assert(l[2].entry && !strcmp(l[2].entry->key, "USER") &&
		    !strcmp(l[2].entry->s, "alice"));
		test_assert_str(l[3].verb, "APPLY");
		test_assert(l[3].entry && l[3].entry->type == DL_KVLIST);
		test_assert_str(l[4].verb, "");
		test_assert_int(l[4].st, CSYNC_LINE);
		/* Unknown verb: the literal is stepped over, not executed. */
		test_assert_str(l[5].verb, "FOO");
		test_assert(l[5].had_literal);
		test_assert_str(l[5].text, "bar  baz");
		test_assert_int(l[6].st, CSYNC_BAD_LINE);
		test_assert_int(l[6].bad, CSYNC_BAD_DLIST);
		test_assert_int(l[7].st, CSYNC_BAD_LINE);
		test_assert_int(l[7].bad, CSYNC_BAD_MISSING);
		/* The body "NOOP" is data, not a command. */
		test_assert_str(l[8].verb, "APPLY");
		test_assert_int(l[8].st, CSYNC_LINE);
		test_assert_str(l[9].verb, "EXIT");
	next:
		free_lines(l, n);
		csync_reader_free(&r);
	}
}

static void
server_limits(void)
{
	struct dlist_limits lim = dlist_limits_default;
	struct csync_reader *r;
	struct buf in = BUF_INIT;
	struct line l[4];
	int n, i;

	lim.max_token = 32;
	lim.max_line = 64;
	r = csync_reader_new(CSYNC_SERVER, &lim, NULL);
	for (i = 0; i < 40; i++)
		buf_putc(&in, 'X');
	buf_puts(&in, " a\r\nNOOP x");
	for (i = 0; i < 40; i++)
		buf_putc(&in, 'y');
	buf_puts(&in, "\r\nGET USER ");
	for (i = 0; i < 70; i++)
		buf_putc(&in, 'z');
	buf_puts(&in, "\r\nNOOP\r\n");
	n = read_lines(r, in.s, in.len, 5, l, 4);
	test_assert_int(n, 4);
	test_assert_int(l[0].st, CSYNC_BAD_LINE);
	test_assert_int(l[0].bad, CSYNC_BAD_WORD);
	test_assert_int(l[1].st, CSYNC_BAD_LINE);
	test_assert_int(l[1].bad, CSYNC_BAD_TEXT);
	test_assert_int(l[2].st, CSYNC_BAD_LINE);
	test_assert_int(l[2].bad, CSYNC_BAD_DLIST);
	test_assert_str(l[3].verb, "NOOP");
	test_assert_int(l[3].st, CSYNC_LINE);
	free_lines(l, n);
	buf_free(&in);
	csync_reader_free(&r);
}

static void
client_reads_replies(void)
{
	static const char banner[] = "* SASL PLAIN LOGIN\r\n* COMPRESS "
	    "DEFLATE\r\n* OK host Cyrus sync server 3.6.1\r\n";
	static const char replies[] = "* MAILBOX %(UNIQUEID u MBOXNAME "
	    "user.bob SYNC_CRC 1 ACL \"bob\tlrs\t\" VALUE {3}\r\na\"b)\r\n"
	    "* MISSING (85ad4a82f0ac38cf6696948ca6d8e98d10b5337e)\r\n"
	    "OK success\r\nNO IMAP_SYNC_CHECKSUM Checksum Failure\r\n"
	    "+ \r\nBYE shutting down\r\n";
	struct csync_reader *r = csync_reader_new(CSYNC_CLIENT, NULL, NULL);
	struct line l[8];
	int n;

	csync_reader_set_banner(r, true);
	n = read_lines(r, banner, sizeof(banner) - 1, 4, l, 8);
	test_assert_int(n, 3);
	test_assert_str(l[0].verb, "*");
	test_assert_str(l[0].text, "SASL PLAIN LOGIN");
	test_assert_str(l[2].text, "OK host Cyrus sync server 3.6.1");
	free_lines(l, n);
	csync_reader_set_banner(r, false);
	n = read_lines(r, replies, sizeof(replies) - 1, 2, l, 8);
	test_assert_int(n, 6);
	test_assert(l[0].entry && !strcmp(l[0].entry->key, "MAILBOX"));
	test_assert_str(dlist_get(l[0].entry, "VALUE")->s, "a\"b");
	test_assert(l[1].entry && l[1].entry->type == DL_LIST);
	test_assert_str(l[2].verb, "OK");
	test_assert_str(l[2].text, "success");
	test_assert_str(l[3].verb, "NO");
	test_assert_int(result_from_no_text(l[3].text), RESULT_SYNC_CHECKSUM);
	test_assert_str(l[4].verb, "+");
	test_assert_str(l[4].text, "");
	test_assert_str(l[5].verb, "BYE");
	free_lines(l, n);
	csync_reader_free(&r);
}

static void
result_lines_are_exact(void)
{
	static const struct {
		enum result_code code;
		const char *line;
	} cases[] = {
		{ RESULT_OK, "OK success" },
		{ RESULT_INVALID_USER, "NO IMAP_INVALID_USER No Such User" },
		{ RESULT_MAILBOX_NONEXISTENT,
		    "NO IMAP_MAILBOX_NONEXISTENT No Such Mailbox" },
		{ RESULT_MAILBOX_LOCKED, "NO IMAP_MAILBOX_LOCKED Mailbox locked" },
		{ RESULT_MAILBOX_MOVED, "NO IMAP_MAILBOX_MOVED Mailbox exists "
		    "with another name or uniqueid" },
		{ RESULT_MAILBOX_NOTSUPPORTED, "NO IMAP_MAILBOX_NOTSUPPORTED "
		    "Operation is not supported on mailbox" },
		{ RESULT_SYNC_CHECKSUM, "NO IMAP_SYNC_CHECKSUM Checksum Failure" },
		{ RESULT_SYNC_CHANGED,
		    "NO IMAP_SYNC_CHANGED Changed since last sync" },
		{ RESULT_SYNC_BADSIEVE, "NO IMAP_SYNC_BADSIEVE Sieve script "
		    "compilation failure" },
		{ RESULT_PROTOCOL_ERROR, "NO IMAP_PROTOCOL_ERROR Protocol error" },
		{ RESULT_PROTOCOL_BAD_PARAMETERS,
		    "NO IMAP_PROTOCOL_BAD_PARAMETERS" },
		{ RESULT_UNKNOWN, "NO Unknown error" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT;
		char want[200];

		test_assert_str(result_line(cases[i].code), cases[i].line);
		csync_print_result(&b, cases[i].code);
		snprintf(want, sizeof(want), "%s\r\n", cases[i].line);
		test_assert_str(buf_cstring(&b), want);
		buf_free(&b);
		/* What the 3.6 client makes of it. */
		if (cases[i].code != RESULT_OK) {
			enum result_code back = result_from_no_text(
			    cases[i].line + 3);
			enum result_code want_code = cases[i].code;

			if (want_code == RESULT_PROTOCOL_BAD_PARAMETERS ||
			    want_code == RESULT_UNKNOWN)
				want_code = RESULT_REMOTE_DENIED;
			test_assert_int(back, want_code);
		}
	}
	test_assert_int(result_from_no_text("IMAP_SYNC_CHECKSUMX y"),
	    RESULT_REMOTE_DENIED);
	test_assert_int(result_from_no_text("IMAP_SYNC_CHANGED custom text"),
	    RESULT_SYNC_CHANGED);
}

static void
writers(void)
{
	struct buf b = BUF_INIT;
	struct dlist *e = dlist_new_kvlist("SIEVE");
	struct dlist *l = dlist_new_list("MISSING");
	struct dlist_printer client = { DLIST_PRINT_CLIENT, NULL, NULL };

	dlist_add_atom(e, "FILENAME", "a.script");
	dlist_add_atom(e, "CONTENT", "keep;\r\n");
	csync_print_untagged(&b, e);
	test_assert_str(buf_cstring(&b),
	    "* SIEVE %(FILENAME a.script CONTENT {7}\r\nkeep;\r\n)\r\n");
	buf_reset(&b);
	csync_print_command(&b, "APPLY", e, &client);
	test_assert_str(buf_cstring(&b),
	    "APPLY SIEVE %(FILENAME a.script CONTENT {7+}\r\nkeep;\r\n)\r\n");
	buf_reset(&b);
	dlist_add_guid(l, NULL, "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e");
	csync_print_untagged(&b, l);
	test_assert_str(buf_cstring(&b),
	    "* MISSING (85ad4a82f0ac38cf6696948ca6d8e98d10b5337e)\r\n");
	buf_reset(&b);
	csync_print_command(&b, "NOOP", NULL, &client);
	csync_print_final(&b, "OK", "Noop completed");
	test_assert_str(buf_cstring(&b), "NOOP\r\nOK Noop completed\r\n");
	buf_free(&b);
	dlist_free(&e);
	dlist_free(&l);
}

/*
 * Before authentication: literals are not read; a refused line's "{N+}"
 * literal is dropped on request with the rest of its line, within
 * max_line, whatever the chunking.
 */
static void
preauth_lines(void)
{
	static const char in[] =
	    "APPLY MESSAGE ({999999999999}\r\n"
	    "GET USER {5+}\r\nalice\r\n"
	    "APPLY X ({3+}\r\nabc {2+}\r\nxy)\r\n"
	    "NOOP\r\n"
	    "GET USER {5+}x\r\n"
	    "APPLY ({65+}\r\n";
	static const char *want[] = { "APPLY", "GET", "APPLY", "NOOP", "GET",
	    "APPLY" };
	struct dlist_limits lim = dlist_limits_default;
	size_t chunks[] = { 1, 3, 7, sizeof(in) };
	size_t c;

	lim.max_line = 64;
	lim.max_token = 64;
	for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct csync_reader *r = csync_reader_new(CSYNC_SERVER, &lim,
		    NULL);
		size_t off = 0, used, n = sizeof(in) - 1;
		int count = 0, refused = 0;

		csync_reader_set_preauth(r, true);
		while (off < n) {
			size_t k = n - off < chunks[c] ? n - off : chunks[c];
			enum csync_status st = csync_reader_feed(r, in + off, k,
			    &used);
			const char *t;
			uint64_t lit;

			off += used;
			if (st == CSYNC_NEED_MORE)
				continue;
			test_assert_int(st, CSYNC_LINE);
			test_assert(count < 6);
			test_assert_str(csync_reader_verb(r), want[count]);
			test_assert(csync_reader_take_entry(r) == NULL);
			t = csync_reader_text(r);
			if (count == 0)
				test_assert_str(t, "MESSAGE ({999999999999}");
			count++;
			if (t && csync_literal_plus(t, strlen(t), &lit) &&
			    csync_reader_eat(r, lit) < 0)
				refused++;
		}
		test_assert_int(count, 6);
		test_assert_int(refused, 1);
		csync_reader_free(&r);
	}
}

/* A second literal over what is left of max_line is refused. */
static void
preauth_literal_limit(void)
{
	static const char in[] = "GET ({40+}\r\n"
	    "0123456789012345678901234567890123456789 {40+}\r\n";
	struct dlist_limits lim = dlist_limits_default;
	struct csync_reader *r;
	size_t used, off;
	uint64_t lit;

	lim.max_line = 64;
	r = csync_reader_new(CSYNC_SERVER, &lim, NULL);
	csync_reader_set_preauth(r, true);
	test_assert_int(csync_reader_feed(r, in, sizeof(in) - 1, &used),
	    CSYNC_LINE);
	test_assert(csync_literal_plus(csync_reader_text(r),
	    strlen(csync_reader_text(r)), &lit));
	test_assert_int(lit, 40);
	test_assert_int(csync_reader_eat(r, lit), 0);
	off = used;
	test_assert_int(csync_reader_feed(r, in + off, sizeof(in) - 1 - off,
	    &used), CSYNC_BAD_LINE);
	test_assert_int(csync_reader_bad(r), CSYNC_BAD_LITERAL);
	test_assert(!csync_literal_plus("{5}", 3, &lit));
	test_assert(!csync_literal_plus("{+}", 3, &lit));
	csync_reader_free(&r);
}

TEST_MAIN(T(server_reads_commands), T(server_limits), T(preauth_lines),
    T(preauth_literal_limit),
    T(client_reads_replies), T(result_lines_are_exact), T(writers))
