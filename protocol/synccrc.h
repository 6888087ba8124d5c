/*
 * synccrc.h -- Cyrus's per-mailbox sync CRCs (sync-protocol.md section 7).
 *
 * SYNC_CRC is the XOR over live (not expunged) records of a CRC-32 of a
 * line describing the record; SYNC_CRC_ANNOT starts at 12345678 and
 * XORs in a CRC-32 per record annotation.  Both are maintained
 * incrementally: XOR a record's old contribution out and its new one in.
 */
#ifndef SR_SYNCCRC_H
#define SR_SYNCCRC_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/dlist.h"

#define SYNCCRC_ANNOT_INIT 12345678u

/* The zlib/IEEE CRC-32 of n bytes. */
uint32_t synccrc_crc32(const void *p, size_t n);
/* One flag's share of a record's flag CRC (its lower-cased name). */
uint32_t synccrc_flag(const char *flag);
/* A live record's contribution to SYNC_CRC. */
uint32_t synccrc_basic(uint32_t uid, uint64_t modseq, int64_t last_updated,
    uint32_t flagcrc, int64_t internaldate, const char *guid_hex);
/* One annotation's contribution to SYNC_CRC_ANNOT. */
uint32_t synccrc_annot(uint32_t uid, const char *entry, const char *userid,
    const void *value, size_t len);

/*
 * The contributions of one RECORD kvlist (as in APPLY MAILBOX or GET
 * FULLMAILBOX) to both CRCs.  Returns 0, 1 for an expunged record (both
 * contributions 0), or -EINVAL for a record missing a required field or
 * with a malformed one.
 */
int synccrc_record(const struct dlist *rec, uint32_t *basic, uint32_t *annot);

/* Cyrus's CRC-match: equal unless both halves are non-zero and differ. */
int synccrc_match(uint32_t a_basic, uint32_t a_annot, uint32_t b_basic,
    uint32_t b_annot);

#endif
