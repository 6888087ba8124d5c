/*
 * fuzz_journal.c -- libFuzzer target: a journal segment with any bytes
 * in it, damage in the middle as well as a torn tail (issue 14).
 *
 * The input is written as the one segment of a journal directory, then
 * read three ways, as the relay reads a journal it did not write
 * cleanly: the reader (every record, bodies streamed and checked), the
 * body stream of each body it found, and recovery (journal_open), first
 * refusing damage, then with repair, which cuts it.  None of it may
 * crash, hang, leak or read out of bounds.  The same target, linked to replay_main.c, replays
 * tests/fuzz/corpus/journal in "make check".
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "storage/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], seg[300];

static int
sink(void *arg, const void *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

/* Reads every record; returns how many read cleanly, -1 on damage. */
static long
read_all(void)
{
	char err[256];
	struct journal_reader *r = journal_reader_new(dir, NULL, 1, 0, err,
	    sizeof(err));
	struct journal_record rec;
	struct buf raw = BUF_INIT;
	long n = 0;
	int e;

	if (r == NULL)
		return -1;
	while ((e = journal_reader_next(r, &rec, &raw)) == 1) {
		if (rec.type == JOURNAL_BODY) {
			struct journal_record brec;
			struct journal_body_stream *bs;
			struct buf out = BUF_INIT;

			(void)journal_reader_body(r, &rec, sink, NULL);
			bs = journal_body_stream_open(dir, NULL, rec.lsn, &brec,
			    err, sizeof(err));
			while (bs && journal_body_stream_read(bs, &out,
			    65536) > 0)
				buf_reset(&out);
			journal_body_stream_free(&bs);
			buf_free(&out);
		}
		n++;
	}
	buf_free(&raw);
	journal_reader_free(&r);
	return e < 0 ? -1 : n;
}

/* Removes every file of dir (segments, temporary files). */
static void
empty_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[600];

	if (d == NULL)
		abort();
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void
cleanup(void)
{
	empty_dir();
	rmdir(dir);
}

static void
setup(void)
{
	if (*dir)
		return;
	/* Recovery logs what it cuts: expected here, every run. */
	log_set_level(LOG_LEVEL_ERR);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-journal-%d", (int)getpid());
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		abort();
	}
	snprintf(seg, sizeof(seg), "%s/0000000000000001.seg", dir);
	atexit(cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_opts jo = { 0 };
	struct journal *j = NULL;
	char err[512];
	FILE *fp;

	setup();
	if ((fp = fopen(seg, "wb")) == NULL)
		abort();
	if (size && fwrite(data, 1, size, fp) != size)
		abort();
	fclose(fp);
	(void)read_all();
	/* Recovery refusing damage changes nothing it refuses. */
	if (journal_open(dir, &jo, &j, err, sizeof(err)) == 0)
		journal_close(&j);
	/*
	 * With repair: what is kept is read again.  Recovery checks framing
	 * and checksums, not that each zstd frame decodes to its length, so
	 * a record with a valid checksum over a bad frame (the fuzzer forges
	 * one in minutes; a disk never does) is kept, and the reader must
	 * then report it as damage, cleanly (regress-crc-valid-bad-frame).
	 */
	jo.repair = true;
	if (journal_open(dir, &jo, &j, err, sizeof(err)) == 0) {
		journal_close(&j);
		(void)read_all();
	}
	empty_dir();	/* recovery may have made segments: start afresh */
	return 0;
}
