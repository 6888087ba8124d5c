/*
 * segment.h -- the journal's on-disk format: segment and record headers.
 *
 * Internal to storage/: journal.c writes and recovers segments,
 * journal_reader.c reads them.  The format is described at the top of
 * segment.c.
 */
#ifndef SR_SEGMENT_H
#define SR_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/fileops.h"
#include "storage/journal.h"

#define SEG_HDR_SIZE 32
#define REC_HDR_SIZE 56
#define SEG_SUFFIX ".seg"

/* Result of checking one record in place. */
enum seg_check {
	SEG_RECORD_OK = 1,	/* a whole record whose checksum verifies */
	SEG_END = 0,		/* clean end of the file */
	SEG_TORN = -4096,	/* a partial or damaged record (below any -errno) */
};

/*
 * Lists the segments in dir, sorted by first LSN, into a new array
 * *firsts (caller frees) of *n entries.  0 or a negative errno.
 */
int seg_list(const char *dir, uint64_t **firsts, size_t *n);
/* Writes "<dir>/<first as 16 hex digits>.seg" into out. */
void seg_path(char *out, size_t len, const char *dir, uint64_t first);

void seg_header_encode(uint8_t out[SEG_HDR_SIZE], uint64_t first,
    uint64_t time_us);
/* 0 and *first, or -EBADMSG if the header is not a valid one. */
int seg_header_decode(const uint8_t in[SEG_HDR_SIZE], uint64_t *first);

/*
 * Encodes rec's header; payload_crc is the CRC-32C of the payload bytes.
 * The stored checksum covers the payload and then the header's first 52
 * bytes.
 */
void rec_header_encode(uint8_t out[REC_HDR_SIZE],
    const struct journal_record *rec, uint32_t payload_crc);
/*
 * Decodes a header (without checking the payload); returns 0 and fills
 * rec and *crc, or -EBADMSG if magic, version or lengths are wrong.
 */
int rec_header_decode(const uint8_t in[REC_HDR_SIZE],
    struct journal_record *rec, uint32_t *crc);
/* The full-record checksum, from the payload CRC and the header. */
uint32_t rec_checksum(uint32_t payload_crc, const uint8_t hdr[REC_HDR_SIZE]);

/*
 * Checks the record at off in a segment of file_size bytes: reads the
 * header and the whole payload (in pieces) and verifies the checksum.
 * Returns SEG_RECORD_OK (rec filled), SEG_END at off == file_size,
 * SEG_TORN with *why set, or a read error as a negative errno.
 */
int seg_check_record(const struct fileops *fo, int fd, uint64_t off,
    uint64_t file_size, struct journal_record *rec, const char **why);

/*
 * After a damaged record at off: is a whole, valid record right behind
 * it?  Then the damage is not a torn tail but corruption.
 */
bool seg_valid_record_follows(const struct fileops *fo, int fd, uint64_t off,
    uint64_t size);

/* Little-endian helpers. */
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);
uint32_t get_le32(const uint8_t *p);
uint64_t get_le64(const uint8_t *p);

#endif
