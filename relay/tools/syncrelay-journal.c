/*
 * syncrelay-journal.c -- offline inspection of a store's journal.
 *
 *   syncrelay-journal verify DIR    check every record; exit 1 on damage
 *   syncrelay-journal summary DIR   what the journal holds
 *   syncrelay-journal dump DIR [-f LSN] [-n COUNT] [-F]
 *                                   records, decoded (-F: whole commands)
 *
 * DIR is a journal directory (<datadir>/<store>/journal).  The tool only
 * reads; a torn tail is reported, not cut (the daemon cuts it on open).
 */
#include "autoconf.h"

#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "relay/ops/jfmt.h"
#include "storage/journal.h"

static void
usage(void)
{
	fprintf(stderr, "usage: syncrelay-journal verify DIR\n"
	    "       syncrelay-journal summary DIR\n"
	    "       syncrelay-journal dump DIR [-f LSN] [-n COUNT] [-F]\n");
	exit(2);
}

/* The number of segment files (NNNN.seg) in dir; -1 if unreadable. */
static int
count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;	/* the reader says why */
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0)
			n++;
	}
	closedir(d);
	return n;
}

int
main(int argc, char **argv)
{
	const char *cmd, *dir;
	uint64_t from = 1, limit = UINT64_MAX, n = 0, first = 0, last = 0;
	uint64_t cmds = 0, bodies = 0, raw_bytes = 0, disk_bytes = 0;
	uint64_t body_raw = 0, first_time = 0, last_time = 0;
	struct journal_reader *r;
	struct journal_record rec;
	struct buf raw = BUF_INIT, desc = BUF_INIT;
	bool full = false;
	char err[512];
	int ch, e, bad = 0;

	if (argc < 3)
		usage();
	cmd = argv[1];
	dir = argv[2];
	optind = 3;
	while ((ch = getopt(argc, argv, "f:n:F")) != -1) {
		switch (ch) {
		case 'f':
			from = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			limit = strtoull(optarg, NULL, 10);
			break;
		case 'F':
			full = true;
			break;
		default:
			usage();
		}
	}
	if (strcmp(cmd, "verify") && strcmp(cmd, "summary") &&
	    strcmp(cmd, "dump"))
		usage();
	if (count_segments(dir) == 0) {
		/* An empty directory is no journal: never "OK, 0 bytes". */
		fprintf(stderr, "syncrelay-journal: %s holds no journal (no "
		    "segment files *.seg); give a store's journal directory, "
		    "DATADIR/STORE/journal\n", dir);
		return 1;
	}
	r = journal_reader_new(dir, NULL, from, 0, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "syncrelay-journal: %s\n", err);
		return 1;
	}
	while (n < limit && (e = journal_reader_next(r, &rec, &raw)) == 1) {
		char when[40];

		if (n == 0) {
			first = rec.lsn;
			first_time = rec.time_us;
		}
		last = rec.lsn;
		last_time = rec.time_us;
		n++;
		disk_bytes += rec.payload_len;
		raw_bytes += rec.raw_len;
		if (rec.type == JOURNAL_BODY) {
			uint64_t got = 0;

			bodies++;
			body_raw += rec.raw_len;
			/* verify reads bodies back whole, checking SHA-1. */
			if (strcmp(cmd, "summary") != 0 &&
			    journal_reader_body(r, &rec, jfmt_count_sink, &got) < 0) {
				fprintf(stderr, "LSN %llu: %s\n",
				    (unsigned long long)rec.lsn,
				    journal_reader_errstr(r));
				bad++;
			}
		} else {
			cmds++;
		}
		if (strcmp(cmd, "dump") != 0)
			continue;
		jfmt_time(rec.time_us, when, sizeof(when));
		if (rec.type == JOURNAL_BODY) {
			char hex[41];

			journal_guid_hex(rec.guid, hex);
			printf("%llu %s BODY %s size=%u stored=%u\n",
			    (unsigned long long)rec.lsn, when, hex, rec.raw_len,
			    rec.payload_len);
		} else if (full) {
			printf("%llu %s %s\n", (unsigned long long)rec.lsn,
			    when, raw.s);
		} else {
			jfmt_describe(&raw, &desc);
			printf("%llu %s %s bytes=%u stored=%u\n",
			    (unsigned long long)rec.lsn, when, desc.s,
			    rec.raw_len, rec.payload_len);
		}
	}
	if (n < limit && e < 0) {
		fprintf(stderr, "syncrelay-journal: %s: %s\n", dir,
		    journal_reader_errstr(r));
		bad++;
	}
	if (strcmp(cmd, "dump") != 0) {
		uint64_t seg, off, bytes;
		const char *why;
		char t1[40] = "-", t2[40] = "-";

		if (n) {
			jfmt_time(first_time, t1, sizeof(t1));
			jfmt_time(last_time, t2, sizeof(t2));
		}
		printf("journal %s\nrecords %llu (LSN %llu..%llu), %llu commands, "
		    "%llu bodies\nfrom %s to %s\nraw %llu bytes (bodies %llu), "
		    "stored %llu bytes, ratio %.3f\n", dir,
		    (unsigned long long)n, (unsigned long long)first,
		    (unsigned long long)last, (unsigned long long)cmds,
		    (unsigned long long)bodies, t1, t2,
		    (unsigned long long)raw_bytes, (unsigned long long)body_raw,
		    (unsigned long long)disk_bytes,
		    raw_bytes ? (double)disk_bytes / (double)raw_bytes : 0.0);
		if (journal_reader_torn_tail(r, &seg, &off, &bytes, &why))
			printf("torn tail: segment %016llx offset %llu, %llu "
			    "bytes (%s); the daemon cuts it on open\n",
			    (unsigned long long)seg, (unsigned long long)off,
			    (unsigned long long)bytes, why);
		printf("%s\n", bad ? "DAMAGED" : "OK");
	}
	journal_reader_free(&r);
	buf_free(&raw);
	buf_free(&desc);
	return bad ? 1 : 0;
}
