/*
 * test_spill.c -- a big APPLY MAILBOX's records in a spill file.
 *
 * What the journal gets for a spilled command (spill_print_around()'s
 * head, the file, its tail) must be byte for byte what it gets for the
 * same command held whole (csync_print_command()), literals included;
 * spill_each() must give back every record in order, parsed as the
 * master sent it, and stop where its callback says.
 */
#include "autoconf.h"

#include <errno.h>
#include <unistd.h>

#include "lib/buf.h"
#include "protocol/csync.h"
#include "protocol/dlist_parse.h"
#include "protocol/dlist_print.h"
#include "storage/spill.h"
#include "tests/unit/test.h"

#define ENTRY                                                             \
	"MAILBOX %%(UNIQUEID u1 MBOXNAME user.big LAST_UID 900 "          \
	"ANNOTATIONS (%%(ENTRY /comment USERID \"\" VALUE {4}\r\nab\r\n)) " \
	"RECORD (%s) SYNC_CRC 77 X \"a b\")\r\n"

static int
to_spill(void *arg, struct dlist *elem, size_t index)
{
	(void)index;
	test_assert_int(spill_add(arg, elem), 0);
	dlist_free(&elem);
	return 0;
}

static struct dlist *
parse(const char *text, struct spill *sp)
{
	struct dlist_record_hook hook = { "RECORD", to_spill, sp };
	struct dlist_parser *p = dlist_parser_new(NULL, NULL);
	struct dlist *dl = NULL;
	size_t used;

	if (sp != NULL)
		dlist_parser_set_record_hook(p, &hook);
	if (dlist_parser_feed(p, text, strlen(text), &used) == DLIST_DONE)
		dl = dlist_parser_take(p);
	dlist_parser_free(&p);
	return dl;
}

/* n records, some with a literal, as the master's text. */
static void
records(struct buf *b, int n)
{
	for (int i = 1; i <= n; i++)
		buf_printf(b, "%s%%(UID %d MODSEQ %d FLAGS (\\Seen%s) GUID "
		    "%040x%s)", i > 1 ? " " : "", i, i * 3,
		    i % 7 ? "" : " $X", i, i % 11 ? "" :
		    " ANNOTATIONS (%(ENTRY /e USERID u VALUE {3}\r\nx\ny))");
}

struct collect {
	struct buf out;
	int n, stop_at;
};

static int
collect(void *arg, const struct dlist *rec)
{
	struct collect *c = arg;
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };

	if (c->n > 0)
		buf_putc(&c->out, ' ');
	dlist_print_value(rec, &c->out, &pr);
	return ++c->n == c->stop_at ? 42 : 0;
}

static void
journal_text_is_the_same(void)
{
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	struct buf text = BUF_INIT, recs = BUF_INIT, whole = BUF_INIT;
	struct buf head = BUF_INIT, tail = BUF_INIT, file = BUF_INIT;
	struct spill *sp = spill_new("/tmp/syncrelay-test-spill");
	struct dlist *tree, *hdr;
	struct collect c = { BUF_INIT, 0, 0 };
	ssize_t n;

	test_assert(sp != NULL);
	if (sp == NULL)
		return;
	records(&recs, 5000);
	buf_printf(&text, ENTRY, buf_cstring(&recs));
	tree = parse(text.s, NULL);
	hdr = parse(text.s, sp);
	test_assert(tree != NULL && hdr != NULL);
	test_assert_int(spill_count(sp), 5000);
	csync_print_command(&whole, "APPLY", tree, &pr);
	whole.len -= 2;
	test_assert_int(spill_print_around("APPLY", hdr, &head, &tail), 0);
	test_assert_int(spill_flush(sp), 0);
	buf_append(&file, head.s, head.len);
	buf_reserve(&file, spill_bytes(sp));
	n = pread(spill_fd(sp), file.s + file.len, spill_bytes(sp), 0);
	test_assert_int(n, spill_bytes(sp));
	file.len += (size_t)n;
	buf_append(&file, tail.s, tail.len);
	test_assert_int(file.len, whole.len);
	test_assert(memcmp(file.s, whole.s, whole.len) == 0);
	/* every record back, in order, as printed whole */
	test_assert_int(spill_each(sp, collect, &c), 0);
	test_assert_int(c.n, 5000);
	test_assert_int(c.out.len, spill_bytes(sp));
	test_assert(memcmp(c.out.s, file.s + head.len, c.out.len) == 0);
	/* stopped by the callback */
	buf_reset(&c.out);
	c.n = 0;
	c.stop_at = 17;
	test_assert_int(spill_each(sp, collect, &c), 42);
	test_assert_int(c.n, 17);
	/* not a kvlist with a RECORD list */
	buf_reset(&head);
	test_assert_int(spill_print_around("APPLY", tree, &head, &tail),
	    -EINVAL);
	dlist_free(&tree);
	dlist_free(&hdr);
	spill_free(&sp);
	test_assert(sp == NULL);
	spill_free(&sp);
	buf_free(&text);
	buf_free(&recs);
	buf_free(&whole);
	buf_free(&head);
	buf_free(&tail);
	buf_free(&file);
	buf_free(&c.out);
	rmdir("/tmp/syncrelay-test-spill");
}

TEST_MAIN(T(journal_text_is_the_same))
