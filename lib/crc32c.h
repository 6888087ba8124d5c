/*
 * crc32c.h -- CRC-32C (Castagnoli), as used by iSCSI, ext4 and LevelDB.
 *
 * crc32c_update(0, p, n) gives the standard CRC-32C of p; feeding the
 * data in pieces gives the same value: crc32c_update(crc32c_update(0,
 * a, na), b, nb) == crc32c_update(0, ab, na + nb).
 */
#ifndef SR_CRC32C_H
#define SR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Returns the CRC-32C of the bytes seen so far followed by p[0..n). */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t n);
/* The same, always by table (the tests compare both paths). */
uint32_t crc32c_update_portable(uint32_t crc, const void *p, size_t n);

#endif
