/*
 * annotdef.c -- which annotations a 3.6 replica lets a master write.
 *
 * A replica's APPLY ANNOTATION goes through Cyrus's annotation layer,
 * which only writes the entries it defines (annotate.c's built-in
 * tables, and those of the annotation_definitions file the relay is
 * given, the same file its masters and replicas read: annotdef_load()), each
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

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "storage/annotdef.h"

enum annot_type { T_STRING, T_UINT, T_BOOLEAN, T_SPECIALUSE, T_INT };

#define SHARED 1
#define PRIV 2
#define VND "/vendor/cmu/cyrus-imapd/"

struct annot_def {
	const char *entry;
	enum annot_type type;
	int values;		/* SHARED, PRIV */
};

/* From annotation_definitions: mailbox and server entries. */
struct extra_def {
	char *entry;
	enum annot_type type;
	int values;
	bool server;
};
static struct extra_def *extra;
static size_t nextra;

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
	case T_INT:
		return (*v == '-' && is_uint(v + 1, len - 1)) || is_uint(v, len);
	case T_STRING:
		break;
	}
	return true;
}

static const struct extra_def *
find_extra(bool server, const char *entry)
{
	size_t i;

	for (i = 0; i < nextra; i++)
		if (extra[i].server == server &&
		    strcmp(extra[i].entry, entry) == 0)
			return &extra[i];
	return NULL;
}

static void
free_extra(struct extra_def *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].entry);
	free(v);
}

/* Cuts the spaces around s (in place). */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* One line "name, scope, type, proxytype, attributes, acl". */
static int
parse_def(char *line, struct extra_def *d, bool *skip)
{
	static const char *const types[] = { "string", "uint", "boolean",
		"", "int" };
	char *f[6], *p = line, *a;
	size_t k = 0, i;

	*skip = false;
	line = trim(line);
	if (*line == '\0' || *line == '#') {
		*skip = true;
		return 0;
	}
	for (p = line; k < 6; k++) {
		f[k] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (k < 5)
		return -1;
	for (i = 0; i < 6; i++)
		f[i] = trim(f[i]);
	if (f[0][0] != '/')
		return -1;
	if (strcmp(f[1], "message") == 0) {
		*skip = true;		/* records carry their own */
		return 0;
	}
	if (strcmp(f[1], "server") != 0 && strcmp(f[1], "mailbox") != 0)
		return -1;
	d->server = strcmp(f[1], "server") == 0;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (*types[i] && strcmp(f[2], types[i]) == 0)
			break;
	if (strcmp(f[2], "content-type") == 0)
		i = T_STRING;	/* an old name for a string */
	if (i == sizeof(types) / sizeof(types[0]))
		return -1;
	d->type = (enum annot_type)i;
	d->values = 0;
	for (a = strtok(f[4], " \t"); a; a = strtok(NULL, " \t")) {
		if (strcmp(a, "value") == 0 || strcmp(a, "value.shared") == 0)
			d->values |= SHARED;
		if (strcmp(a, "value") == 0 || strcmp(a, "value.priv") == 0)
			d->values |= PRIV;
	}
	d->entry = xstrdup(f[0]);
	return 0;
}

int
annotdef_load(const char *path, char *err, size_t err_len)
{
	struct extra_def *v = NULL, d;
	size_t n = 0, lineno = 0;
	char line[1024];
	FILE *fp;
	bool skip;

	if (path == NULL || *path == '\0') {
		free_extra(extra, nextra);
		extra = NULL;
		nextra = 0;
		return 0;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (parse_def(line, &d, &skip) < 0) {
			snprintf(err, err_len, "%s:%zu: not \"name, scope "
			    "(server|mailbox|message), type (string|int|uint|"
			    "boolean), proxy type, attributes, acl\"", path,
			    lineno);
			fclose(fp);
			free_extra(v, n);
			return -1;
		}
		if (skip)
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = d;
	}
	fclose(fp);
	free_extra(extra, nextra);
	extra = v;
	nextra = n;
	return 0;
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
	{
		const struct extra_def *x = find_extra(server, entry);

		if (x != NULL)
			return (x->values & want) != 0 &&
			    value_fits(x->type, value, len);
	}
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
