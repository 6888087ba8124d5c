/*
 * fuzz_journal.c -- libFuzzer target: a journal segment with any bytes
 * in it, damage in the middle as well as a torn tail (issue 14).
 *
 * The input is written as the one segment of a journal directory, then
 * read three ways, as the relay reads a journal it did not write
 * cleanly: the reader (every record, bodies streamed and checked), the
 * body stream of each body it found, and recovery (journal_open), first
 * refusing damage, then with repair, which cuts it.  None of it may
 * crash, hang, leak or read out of bounds.  The same target, linked to
 * replay_main.c, replays tests/fuzz/corpus/journal in "make check".
 *
 * Past the checksums: a mutated record almost never has a right CRC-32C,
 * so the reader stops at its checksum and what lies behind it (the zstd
 * frames, the lengths, the body streams) goes unexplored.  Byte 24 of
 * the input, reserved (zero) in the segment header and not read by the
 * relay, picks what the target mends before writing the segment: bit 0,
 * the header's CRC and the CRC of every record whose header decodes, up
 * to the first that does not; bit 1, the LSNs: the segment's first made
 * 1, as its file name says, and the records' renumbered from it.  An input with the byte zero (all the seeds
 * of earlier rounds) is written as it is: damage in the middle and torn
 * tails stay covered.
 *
 * The directory is in /dev/shm when there is one: recovery fdatasyncs
 * what it repairs, and on a disk that made the target three times
 * slower.
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
#include "lib/crc32c.h"
#include "storage/journal.h"
#include "storage/segment.h"

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
	struct stat sb;

	if (*dir)
		return;
	/* Recovery logs what it cuts: expected here, every run. */
	log_set_level(LOG_LEVEL_ERR);
	snprintf(dir, sizeof(dir), "%s/fuzz-journal-%d",
	    stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		abort();
	}
	snprintf(seg, sizeof(seg), "%s/0000000000000001.seg", dir);
	atexit(cleanup);
}

/*
 * Mends a copy of the input as byte 24 asks (see the top): checksums
 * and LSNs made right, so the reader gets past them.
 */
static void
mend(uint8_t *seg_bytes, size_t size)
{
	uint8_t how;
	uint64_t lsn, off = SEG_HDR_SIZE;

	if (size < SEG_HDR_SIZE || (how = seg_bytes[24]) == 0)
		return;
	if (how & 2)	/* the segment's file is 0000000000000001.seg */
		put_le64(seg_bytes + 8, 1);
	if (how & 1)
		put_le32(seg_bytes + 28, crc32c_update(0, seg_bytes, 28));
	lsn = get_le64(seg_bytes + 8);
	while (size - off >= REC_HDR_SIZE) {
		uint8_t *h = seg_bytes + off;
		struct journal_record rec;
		uint32_t crc;

		if (rec_header_decode(h, &rec, &crc) < 0 ||
		    rec.payload_len > size - off - REC_HDR_SIZE)
			break;
		if (how & 2)
			put_le64(h + 8, lsn++);
		if (how & 1)
			put_le32(h + 52, rec_checksum(crc32c_update(0,
			    h + REC_HDR_SIZE, rec.payload_len), h));
		off += REC_HDR_SIZE + rec.payload_len;
	}
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
	if (size) {
		uint8_t *copy = malloc(size);

		if (copy == NULL)
			abort();
		memcpy(copy, data, size);
		mend(copy, size);
		if (fwrite(copy, 1, size, fp) != size)
			abort();
		free(copy);
	}
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
