/*
 * segment.c -- the journal's on-disk format.
 *
 * A journal is a directory of segment files named by the LSN of their
 * first record, as 16 lowercase hex digits: 0000000000000001.seg, ...
 * Records never span segments; a segment holds records with consecutive
 * LSNs, and the next segment starts at the following LSN.
 *
 * Segment header (32 bytes, little-endian):
 *
 *   0   8  magic "SRJSEG" 0x00 0x01 (the last byte is the version)
 *   8   8  LSN of the first record
 *  16   8  creation time, microseconds since the epoch
 *  24   4  reserved, zero
 *  28   4  CRC-32C of bytes 0..27
 *
 * Record (56-byte header, then payload_len bytes of payload):
 *
 *   0   4  magic "SRJR"
 *   4   1  version, 1
 *   5   1  type (1 command, 2 body)
 *   6   2  flags, zero
 *   8   8  LSN
 *  16   8  time appended, microseconds since the epoch
 *  24   4  payload_len: bytes of payload following the header
 *  28   4  raw_len: bytes the payload decompresses to
 *  32  20  GUID: for bodies the SHA-1 of the raw bytes, else zero
 *  52   4  CRC-32C of the payload followed by header bytes 0..51
 *
 * The payload is one zstd frame that decodes on its own to raw_len
 * bytes: for a command, its canonical dlist text ("APPLY MAILBOX
 * %(...)"); for a body, the message exactly as uploaded.
 *
 * Crash rules: a record is durable once the fdatasync that followed its
 * write returned.  Recovery keeps every record whose checksum verifies
 * and whose LSN follows its predecessor's; the first record that does
 * not, in the newest segment, starts a torn tail that is cut.  Anything
 * else -- a bad record followed by a good one, a bad record in an older
 * segment, a gap in LSNs -- is corruption and stops recovery unless
 * repair is asked for.  A body is written header-last: its header slot
 * is zero until the body is complete, so a crash mid-body leaves a torn
 * tail, never a record.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/util.h"
#include "lib/xmalloc.h"
#include "storage/segment.h"

static const uint8_t seg_magic[8] = { 'S', 'R', 'J', 'S', 'E', 'G', 0, 1 };
static const uint8_t rec_magic[4] = { 'S', 'R', 'J', 'R' };

#define REC_VERSION 1
/* Nothing the relay writes is larger; a bigger length is damage. */
#define REC_MAX_LEN ((uint64_t)UINT32_MAX)

void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void
put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

uint64_t
get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
seg_list(const char *dir, uint64_t **firsts, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		uint64_t first;

		if (strlen(de->d_name) != 16 + strlen(SEG_SUFFIX) ||
		    strcmp(de->d_name + 16, SEG_SUFFIX) != 0 ||
		    !is_hex(de->d_name, 16))
			continue;
		first = strtoull(de->d_name, NULL, 16);
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[cnt++] = first;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*firsts = v;
	*n = cnt;
	return 0;
}

void
seg_path(char *out, size_t len, const char *dir, uint64_t first)
{
	snprintf(out, len, "%s/%016llx%s", dir, (unsigned long long)first,
	    SEG_SUFFIX);
}

void
seg_header_encode(uint8_t out[SEG_HDR_SIZE], uint64_t first, uint64_t time_us)
{
	memset(out, 0, SEG_HDR_SIZE);
	memcpy(out, seg_magic, 8);
	put_le64(out + 8, first);
	put_le64(out + 16, time_us);
	put_le32(out + 28, crc32c_update(0, out, 28));
}

int
seg_header_decode(const uint8_t in[SEG_HDR_SIZE], uint64_t *first)
{
	if (memcmp(in, seg_magic, 8) != 0 ||
	    get_le32(in + 28) != crc32c_update(0, in, 28))
		return -EBADMSG;
	*first = get_le64(in + 8);
	return 0;
}

uint32_t
rec_checksum(uint32_t payload_crc, const uint8_t hdr[REC_HDR_SIZE])
{
	return crc32c_update(payload_crc, hdr, 52);
}

void
rec_header_encode(uint8_t out[REC_HDR_SIZE], const struct journal_record *rec,
    uint32_t payload_crc)
{
	memcpy(out, rec_magic, 4);
	out[4] = REC_VERSION;
	out[5] = rec->type;
	out[6] = out[7] = 0;
	put_le64(out + 8, rec->lsn);
	put_le64(out + 16, rec->time_us);
	put_le32(out + 24, rec->payload_len);
	put_le32(out + 28, rec->raw_len);
	memcpy(out + 32, rec->guid, 20);
	put_le32(out + 52, rec_checksum(payload_crc, out));
}

int
rec_header_decode(const uint8_t in[REC_HDR_SIZE], struct journal_record *rec,
    uint32_t *crc)
{
	if (memcmp(in, rec_magic, 4) != 0 || in[4] != REC_VERSION ||
	    (in[5] != JOURNAL_COMMAND && in[5] != JOURNAL_BODY))
		return -EBADMSG;
	rec->type = in[5];
	rec->lsn = get_le64(in + 8);
	rec->time_us = get_le64(in + 16);
	rec->payload_len = get_le32(in + 24);
	rec->raw_len = get_le32(in + 28);
	memcpy(rec->guid, in + 32, 20);
	*crc = get_le32(in + 52);
	return 0;
}

int
seg_check_record(const struct fileops *fo, int fd, uint64_t off,
    uint64_t file_size, struct journal_record *rec, const char **why)
{
	uint8_t hdr[REC_HDR_SIZE], chunk[65536];
	uint32_t want, crc = 0;
	uint64_t done = 0;
	ssize_t n;

	if (off == file_size)
		return SEG_END;
	if (file_size - off < REC_HDR_SIZE) {
		*why = "partial record header";
		return SEG_TORN;
	}
	n = fileops_pread_all(fo, fd, hdr, REC_HDR_SIZE, (off_t)off);
	if (n < 0)
		return (int)n;
	if (n < REC_HDR_SIZE) {
		*why = "partial record header";
		return SEG_TORN;
	}
	if (rec_header_decode(hdr, rec, &want) < 0) {
		*why = "no record header";
		return SEG_TORN;
	}
	if (rec->payload_len > file_size - off - REC_HDR_SIZE) {
		*why = "record payload runs past the end of the file";
		return SEG_TORN;
	}
	while (done < rec->payload_len) {
		size_t k = sizeof(chunk);

		if (k > rec->payload_len - done)
			k = (size_t)(rec->payload_len - done);
		n = fileops_pread_all(fo, fd, chunk, k,
		    (off_t)(off + REC_HDR_SIZE + done));
		if (n < 0)
			return (int)n;
		if ((size_t)n < k) {
			*why = "record payload cut short";
			return SEG_TORN;
		}
		crc = crc32c_update(crc, chunk, k);
		done += k;
	}
	if (rec_checksum(crc, hdr) != want) {
		*why = "record checksum mismatch";
		return SEG_TORN;
	}
	rec->offset = off;
	return SEG_RECORD_OK;
}

/* Is there a whole, valid record right after a damaged one at off? */
bool
seg_valid_record_follows(const struct fileops *fo, int fd, uint64_t off,
    uint64_t size)
{
	uint8_t hdr[REC_HDR_SIZE];
	struct journal_record rec;
	uint32_t crc;
	const char *why;

	if (fileops_pread_all(fo, fd, hdr, sizeof(hdr), (off_t)off) !=
	    REC_HDR_SIZE || rec_header_decode(hdr, &rec, &crc) < 0)
		return false;
	off += REC_HDR_SIZE + (uint64_t)rec.payload_len;
	return off < size &&
	    seg_check_record(fo, fd, off, size, &rec, &why) == SEG_RECORD_OK;
}
