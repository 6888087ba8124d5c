/*
 * synccrc.c -- Cyrus's SYNC_CRC and SYNC_CRC_ANNOT.
 *
 * The formats follow sync-protocol.md section 7 exactly; the unit test
 * checks them against the worked example there and against every full
 * APPLY MAILBOX in the recorded Cyrus sessions.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "protocol/synccrc.h"

#define ANNOT_PREFIX "/vendor/cmu/cyrus-imapd/"

uint32_t
synccrc_crc32(const void *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);

	while (n > 0) {
		uInt k = n > 0x40000000 ? 0x40000000 : (uInt)n;

		c = crc32(c, p, k);
		p = (const char *)p + k;
		n -= k;
	}
	return (uint32_t)c;
}

uint32_t
synccrc_flag(const char *flag)
{
	char low[256];
	size_t i, n = strlen(flag);

	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)flag[i]);
	return synccrc_crc32(low, n);
}

uint32_t
synccrc_basic(uint32_t uid, uint64_t modseq, int64_t last_updated,
    uint32_t flagcrc, int64_t internaldate, const char *guid_hex)
{
	char line[256];
	int n;

	n = snprintf(line, sizeof(line), "%" PRIu32 " %" PRIu64 " %" PRId64
	    " (%" PRIu32 ") %" PRId64 " %s", uid, modseq, last_updated, flagcrc,
	    internaldate, guid_hex);
	return synccrc_crc32(line, (size_t)n);
}

uint32_t
synccrc_annot(uint32_t uid, const char *entry, const char *userid,
    const void *value, size_t len)
{
	struct buf b = BUF_INIT;
	uint32_t c;

	buf_printf(&b, "%" PRIu32 " %s %s ", uid, entry, userid);
	buf_append(&b, value, len);
	c = synccrc_crc32(b.s, b.len);
	buf_free(&b);
	return c;
}

/* The system flags the server keeps; any other "\x" flag is dropped. */
static const char *const system_flags[] = { "\\deleted", "\\answered",
	"\\flagged", "\\draft", "\\seen" };

static int
record_flagcrc(const struct dlist *flags, uint32_t *crc, int *expunged)
{
	const struct dlist *f, *g;

	*crc = 0;
	*expunged = 0;
	if (flags == NULL || flags->type != DL_LIST)
		return -EINVAL;
	for (f = flags->head; f != NULL; f = f->next) {
		int dup = 0;
		size_t i;

		if ((f->type != DL_FLAG && f->type != DL_ATOM) || f->len == 0)
			return -EINVAL;
		if (f->s[0] == '\\') {
			if (strcasecmp(f->s, "\\expunged") == 0) {
				*expunged = 1;
				continue;
			}
			for (i = 0; i < 5; i++)
				if (strcasecmp(f->s, system_flags[i]) == 0)
					break;
			if (i == 5)
				continue;	/* \Recent and unknowns */
		}
		/* A flag given twice (in any case) is set once. */
		for (g = flags->head; g != f; g = g->next)
			if (strcasecmp(g->s, f->s) == 0)
				dup = 1;
		if (!dup)
			*crc ^= synccrc_flag(f->s);
	}
	return 0;
}

static int
annot_contribution(uint32_t uid, const struct dlist *a, uint32_t *out)
{
	const char *entry, *userid, *value;
	size_t vlen;
	uint64_t v;
	char tmp[32];

	*out = 0;
	if (dlist_get_str(a, "ENTRY", &entry) < 0 || entry == NULL ||
	    dlist_get_str(a, "USERID", &userid) < 0 || userid == NULL ||
	    dlist_str(dlist_get(a, "VALUE"), &value, &vlen) < 0)
		return -EINVAL;
	if (value == NULL || vlen == 0)
		return 0;		/* an empty value does not exist */
	if (strcmp(entry, ANNOT_PREFIX "thrid") == 0) {
		if (vlen > 16 || !is_hex(value, vlen))
			return -EINVAL;
		memcpy(tmp, value, vlen);
		tmp[vlen] = '\0';
		v = strtoull(tmp, NULL, 16);
		if (v == 0)
			return 0;
		snprintf(tmp, sizeof(tmp), "%" PRIx64, v);
	} else if (strcmp(entry, ANNOT_PREFIX "savedate") == 0 ||
	    strcmp(entry, ANNOT_PREFIX "createdmodseq") == 0) {
		if (parse_u64(value, vlen, &v) < 0)
			return -EINVAL;
		if (v == 0)
			return 0;
		snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
	} else {
		*out = synccrc_annot(uid, entry, userid, value, vlen);
		return 0;
	}
	*out = synccrc_annot(uid, entry, "", tmp, strlen(tmp));
	return 0;
}

int
synccrc_record(const struct dlist *rec, uint32_t *basic, uint32_t *annot)
{
	uint64_t uid, modseq, lu, idate;
	const struct dlist *annots, *a;
	uint32_t flagcrc;
	char guid[41];
	int expunged;

	*basic = *annot = 0;
	if (dlist_get_num(rec, "UID", &uid) < 0 ||
	    dlist_get_num(rec, "MODSEQ", &modseq) < 0 ||
	    dlist_get_num(rec, "LAST_UPDATED", &lu) < 0 ||
	    dlist_get_num(rec, "INTERNALDATE", &idate) < 0 ||
	    dlist_guid(dlist_get(rec, "GUID"), guid) < 0 ||
	    record_flagcrc(dlist_get(rec, "FLAGS"), &flagcrc, &expunged) < 0)
		return -EINVAL;
	if (expunged)
		return 1;
	*basic = synccrc_basic((uint32_t)uid, modseq, (int64_t)lu, flagcrc,
	    (int64_t)idate, guid);
	annots = dlist_get(rec, "ANNOTATIONS");
	if (annots == NULL)
		return 0;
	if (annots->type != DL_LIST)
		return -EINVAL;
	for (a = annots->head; a != NULL; a = a->next) {
		uint32_t c;

		if (a->type != DL_KVLIST || annot_contribution((uint32_t)uid, a,
		    &c) < 0)
			return -EINVAL;
		*annot ^= c;
	}
	return 0;
}

int
synccrc_match(uint32_t a_basic, uint32_t a_annot, uint32_t b_basic,
    uint32_t b_annot)
{
	if (a_basic && b_basic && a_basic != b_basic)
		return 0;
	if (a_annot && b_annot && a_annot != b_annot)
		return 0;
	return 1;
}
