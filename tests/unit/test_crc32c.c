/*
 * test_crc32c.c -- CRC-32C against published check values, both paths.
 */
#include "autoconf.h"

#include "lib/crc32c.h"
#include "tests/unit/test.h"

static void
known_vectors(void)
{
	unsigned char zeros[32] = { 0 }, ones[32], inc[32];
	int i;

	for (i = 0; i < 32; i++) {
		ones[i] = 0xff;
		inc[i] = (unsigned char)i;
	}
	/* RFC 3720 appendix B.4 and the usual "123456789" check value. */
	test_assert(crc32c_update(0, "123456789", 9) == 0xE3069283u);
	test_assert(crc32c_update(0, zeros, 32) == 0x8A9136AAu);
	test_assert(crc32c_update(0, ones, 32) == 0x62A8AB43u);
	test_assert(crc32c_update(0, inc, 32) == 0x46DD794Eu);
	test_assert(crc32c_update(0, "", 0) == 0);
	test_assert(crc32c_update_portable(0, "123456789", 9) == 0xE3069283u);
	test_assert(crc32c_update_portable(0, inc, 32) == 0x46DD794Eu);
}

static void
pieces_and_paths_agree(void)
{
	unsigned char data[4099];
	size_t i, cut;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 131 + 7);
	for (cut = 0; cut < sizeof(data); cut += 97) {
		uint32_t whole = crc32c_update(0, data, sizeof(data));
		uint32_t split = crc32c_update(crc32c_update(0, data, cut),
		    data + cut, sizeof(data) - cut);

		test_assert(whole == split);
		test_assert(whole == crc32c_update_portable(0, data,
		    sizeof(data)));
		/* unaligned starts */
		test_assert(crc32c_update(0, data + (cut % 7), 100) ==
		    crc32c_update_portable(0, data + (cut % 7), 100));
	}
}

TEST_MAIN(T(known_vectors), T(pieces_and_paths_agree))
