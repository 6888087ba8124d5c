/*
 * bench_dlist.c -- throughput of the csync reader / dlist parser and of
 * the printer on the two shapes that dominate replication traffic:
 *
 *  1. APPLY MAILBOX with many RECORD entries (a rolling batch: 8192
 *     records, as sync_batchsize sends them), parsed into a tree;
 *  2. APPLY MESSAGE with 1024 bodies of 4 KiB streamed to a sink.
 *
 * Prints MB/s of input and records/s.  Run: make bench/bench_dlist &&
 * ./bench/bench_dlist [iterations].  A benchmark, not a test: nothing
 * here fails on a slow machine.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "protocol/csync.h"

static void
make_mailbox(struct buf *b, int records)
{
	int i;

	buf_puts(b, "APPLY MAILBOX %(UNIQUEID qmsct67kh6tz28uepdtnj46r MBOXNAME "
	    "user.bob SYNC_CRC 843241581 SYNC_CRC_ANNOT 2021903187 LAST_UID 9000 "
	    "HIGHESTMODSEQ 9000 RECENTUID 3 RECENTTIME 1795951095 "
	    "LAST_APPENDDATE 1795951095 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 "
	    "UIDVALIDITY 1795951095 PARTITION default ACL \"bob\tlrswipkxtecdan"
	    "\t\" OPTIONS P CREATEDMODSEQ 1 FOLDERMODSEQ 1 RECORD (");
	for (i = 1; i <= records; i++)
		buf_printf(b, "%s%%(UID %d MODSEQ %d LAST_UPDATED 1795951095 "
		    "FLAGS (\\Seen $Label%d) INTERNALDATE 1795951094 SIZE 4096 "
		    "GUID %040x ANNOTATIONS (%%(ENTRY "
		    "/vendor/cmu/cyrus-imapd/savedate USERID \"\" MODSEQ 0 VALUE "
		    "1795951094)))", i > 1 ? " " : "", i, i + 4, i % 5, i);
	buf_puts(b, "))\r\n");
}

static void
make_messages(struct buf *b, int n, size_t size)
{
	int i;

	buf_puts(b, "APPLY MESSAGE (");
	for (i = 0; i < n; i++) {
		buf_printf(b, "%s%%{default %040x %zu}\r\n", i ? " " : "", i,
		    size);
		buf_reserve(b, size);
		memset(b->s + b->len, 'm', size);
		b->len += size;
	}
	buf_puts(b, ")\r\n");
}

static int
sink_begin(void *a, const char *p, const char *g, uint64_t n)
{
	return 0;
}

static int
sink_data(void *a, const void *p, size_t n)
{
	*(size_t *)a += n;
	return 0;
}

static int
sink_end(void *a)
{
	return 0;
}

static double
parse_rate(const struct buf *in, int iters, size_t chunk, size_t *nodes)
{
	size_t body = 0;
	struct dlist_file_sink sink = { sink_begin, sink_data, sink_end, &body };
	double t0 = mono_seconds();
	int it;

	for (it = 0; it < iters; it++) {
		struct csync_reader *r = csync_reader_new(CSYNC_SERVER, NULL,
		    &sink);
		size_t off = 0, used;

		while (off < in->len) {
			size_t k = in->len - off < chunk ? in->len - off : chunk;
			enum csync_status st = csync_reader_feed(r, in->s + off,
			    k, &used);

			off += used;
			if (st == CSYNC_LINE) {
				struct dlist *e = csync_reader_take_entry(r);

				*nodes = e ? dlist_get(e, "RECORD") ?
				    dlist_get(e, "RECORD")->nchildren :
				    e->nchildren : 0;
				dlist_free(&e);
			} else if (st == CSYNC_BAD_LINE) {
				fprintf(stderr, "parse error: %s\n",
				    csync_reader_errstr(r));
				exit(1);
			}
		}
		csync_reader_free(&r);
	}
	return (double)in->len * iters / (mono_seconds() - t0) / 1e6;
}

int
main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20;
	struct buf mbox = BUF_INIT, msgs = BUF_INIT, out = BUF_INIT;
	struct dlist_printer pr = { DLIST_PRINT_CLIENT, NULL, NULL };
	size_t n = 0;
	double rate, t0;
	int it;

	make_mailbox(&mbox, 8192);
	make_messages(&msgs, 1024, 4096);
	rate = parse_rate(&mbox, iters, 65536, &n);
	printf("APPLY MAILBOX, 8192 records (%.1f MB): parse %.0f MB/s, "
	    "%.0f records/s (64 KiB reads)\n", mbox.len / 1e6, rate,
	    rate * 1e6 / (double)mbox.len * 8192);
	rate = parse_rate(&msgs, iters, 65536, &n);
	printf("APPLY MESSAGE, 1024 x 4 KiB bodies (%.1f MB): parse %.0f MB/s "
	    "(64 KiB reads)\n", msgs.len / 1e6, rate);
	{
		struct csync_reader *r = csync_reader_new(CSYNC_SERVER, NULL,
		    NULL);
		size_t used;
		struct dlist *e;

		csync_reader_feed(r, mbox.s, mbox.len, &used);
		e = csync_reader_take_entry(r);
		t0 = mono_seconds();
		for (it = 0; it < iters; it++) {
			buf_reset(&out);
			csync_print_command(&out, "APPLY", e, &pr);
		}
		printf("APPLY MAILBOX, 8192 records: print %.0f MB/s\n",
		    (double)out.len * iters / (mono_seconds() - t0) / 1e6);
		dlist_free(&e);
		csync_reader_free(&r);
	}
	buf_free(&mbox);
	buf_free(&msgs);
	buf_free(&out);
	return 0;
}
