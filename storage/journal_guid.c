/*
 * journal_guid.c -- a body record's GUID (SHA-1) as 40 hex digits, and
 * back.  Moved out of journal.c, which is near the project's line limit;
 * journal.h declares them.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "storage/journal.h"

void
journal_guid_hex(const uint8_t guid[20], char out[41])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 20; i++) {
		out[2 * i] = hex[guid[i] >> 4];
		out[2 * i + 1] = hex[guid[i] & 15];
	}
	out[40] = '\0';
}

int
journal_guid_parse(const char *s, uint8_t guid[20])
{
	int i;

	if (strlen(s) != 40 || !is_hex(s, 40))
		return -EINVAL;
	for (i = 0; i < 20; i++) {
		char b[3] = { s[2 * i], s[2 * i + 1], 0 };

		guid[i] = (uint8_t)strtoul(b, NULL, 16);
	}
	return 0;
}
