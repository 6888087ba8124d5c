/*
 * mboxname.c -- mapping Cyrus internal mailbox names to their owners.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "storage/mboxname.h"

int
mboxname_userid(const char *name, char *out, size_t len)
{
	const char *bang = strchr(name, '!'), *p = bang ? bang + 1 : name;
	const char *end;
	size_t ulen;

	if (strncmp(p, "DELETED.", 8) == 0)
		p += 8;
	if (strncmp(p, "user.", 5) != 0)
		return -1;
	p += 5;
	end = strchr(p, '.');
	ulen = end ? (size_t)(end - p) : strlen(p);
	if (ulen == 0)
		return -1;
	if (bang)
		return snprintf(out, len, "%.*s@%.*s", (int)ulen, p,
		    (int)(bang - name), name) < (int)len ? 0 : -1;
	return snprintf(out, len, "%.*s", (int)ulen, p) < (int)len ? 0 : -1;
}

int
mboxname_inbox(const char *userid, char *out, size_t len)
{
	const char *at = strchr(userid, '@');
	int n;

	if (at)
		n = snprintf(out, len, "%s!user.%.*s", at + 1,
		    (int)(at - userid), userid);
	else
		n = snprintf(out, len, "user.%s", userid);
	return n > 0 && (size_t)n < len ? 0 : -1;
}
