/*
 * annotdef.c -- which annotations a 3.6 replica lets a master write.
 *
 * A replica's APPLY ANNOTATION goes through Cyrus's annotation layer,
 * which only writes the entries it defines (annotate.c's built-in
 * tables; an operator's annotation_definitions are not known here), each
 * for shared or private values or both, and only in its type: a number
 * for the UINT entries, "true" or "false" for the BOOLEAN ones, a
 * special-use name for /specialuse.  Entries it computes (size,
 * uniqueid, ...) cannot be written.  Anything else gets "NO Unknown
 * error", so the relay refuses it too and never journals it: a replica
 * would refuse the record later.  Removing (an empty value) passes the
 * type check, not the entry check.  A boolean is stored in lower case;
 * /motd and .../shutdown go to files a replica's GET ANNOTATION does not
 * read.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/annotdef.h"

enum annot_type { T_STRING, T_UINT, T_BOOLEAN, T_SPECIALUSE };

#define SHARED 1
#define PRIV 2
#define VND "/vendor/cmu/cyrus-imapd/"

struct annot_def {
	const char *entry;
	enum annot_type type;
	int values;		/* SHARED, PRIV */
};

/* The writable entries of annotate.c's mailbox_builtin_entries. */
static const struct annot_def mailbox_defs[] = {
	{ "/check", T_BOOLEAN, SHARED | PRIV },
	{ "/checkperiod", T_UINT, SHARED | PRIV },
	{ "/comment", T_STRING, SHARED | PRIV },
	{ "/sort", T_STRING, SHARED | PRIV },
	{ "/specialuse", T_SPECIALUSE, PRIV },
	{ "/thread", T_STRING, SHARED | PRIV },
	{ VND "archive", T_UINT, SHARED },
	{ VND "delete", T_UINT, SHARED },
	{ VND "duplicatedeliver", T_BOOLEAN, SHARED },
	{ VND "expire", T_UINT, SHARED },
	{ VND "news2mail", T_STRING, SHARED },
	{ VND "pop3newuidl", T_BOOLEAN, SHARED },
	{ VND "pop3showafter", T_STRING, SHARED },
	{ VND "search-fuzzy-always", T_STRING, SHARED },
	{ VND "sharedseen", T_BOOLEAN, SHARED },
	{ VND "sieve", T_STRING, SHARED },
	{ VND "sortorder", T_UINT, PRIV },
	{ VND "squat", T_BOOLEAN, SHARED },
};

/* The writable entries of annotate.c's server_builtin_entries. */
static const struct annot_def server_defs[] = {
	{ "/admin", T_STRING, SHARED },
	{ "/comment", T_STRING, SHARED | PRIV },
	{ "/motd", T_STRING, SHARED },
	{ VND "expire", T_UINT, SHARED },
	{ VND "shutdown", T_STRING, SHARED },
	{ VND "squat", T_BOOLEAN, SHARED },
};

static bool
is_uint(const char *v, size_t len)
{
	size_t i;

	if (len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	/* 20 digits fit an unsigned long only up to 18446744073709551615. */
	return len < 20 || memcmp(v, "18446744073709551615", 20) <= 0;
}

/* One special-use name (with or without its backslash), as Cyrus 3.6
 * accepts them without specialuse_extra. */
static bool
is_specialuse_word(const char *w, size_t n)
{
	static const char *const names[] = { "Archive", "Drafts",
	    "Important", "Junk", "Sent", "Trash", "Snoozed" };
	size_t i;

	if (n && w[0] == '\\') {
		w++;
		n--;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncasecmp(names[i], w, n) == 0)
			return true;
	return false;
}

static bool
is_specialuse(const char *v, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = 0;

		while (i < len && v[i] == ' ')
			i++;
		while (i + n < len && v[i + n] != ' ')
			n++;
		if (n && !is_specialuse_word(v + i, n))
			return false;
		i += n;
	}
	return true;
}

static bool
value_fits(enum annot_type type, const char *v, size_t len)
{
	if (v == NULL || len == 0)
		return true;	/* removal */
	switch (type) {
	case T_UINT:
		return is_uint(v, len);
	case T_BOOLEAN:
		return (len == 4 && strncasecmp(v, "true", 4) == 0) ||
		    (len == 5 && strncasecmp(v, "false", 5) == 0);
	case T_SPECIALUSE:
		return is_specialuse(v, len);
	case T_STRING:
		break;
	}
	return true;
}

bool
annotdef_listed(bool server, const char *entry)
{
	return !server || (strcmp(entry, "/motd") != 0 &&
	    strcmp(entry, VND "shutdown") != 0);
}

bool
annotdef_writable(bool server, const char *entry, const char *userid,
    const char *value, size_t len, const char **canon)
{
	const struct annot_def *d = server ? server_defs : mailbox_defs;
	size_t i, n = server ? sizeof(server_defs) / sizeof(server_defs[0]) :
	    sizeof(mailbox_defs) / sizeof(mailbox_defs[0]);
	int want = userid && *userid ? PRIV : SHARED;

	*canon = NULL;
	for (i = 0; i < n; i++) {
		if (strcmp(d[i].entry, entry) != 0)
			continue;
		if ((d[i].values & want) == 0 ||
		    !value_fits(d[i].type, value, len))
			return false;
		if (d[i].type == T_BOOLEAN && value && len)
			*canon = len == 4 ? "true" : "false";
		return true;
	}
	return false;
}
