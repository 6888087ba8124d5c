/*
 * test_annotdef.c -- which annotations the relay lets a master write: a
 * replica's built-in entries, and those of a Cyrus annotation_definitions
 * file (annotdef_load), by scope, shared or private, and type.
 */
#include "autoconf.h"

#include <stdio.h>
#include <unistd.h>

#include "storage/annotdef.h"
#include "tests/unit/journal_util.h"
#include "tests/unit/test.h"

static char *dir;
static char path[4096];

static bool
ok(bool server, const char *entry, const char *userid, const char *value)
{
	const char *canon;

	return annotdef_writable(server, entry, userid, value,
	    value ? strlen(value) : 0, &canon);
}

static void
write_file(const char *text)
{
	FILE *fp;

	if (*path == '\0')
		snprintf(path, sizeof(path), "%s/annotations.conf", dir);
	fp = fopen(path, "w");

	test_assert(fp != NULL);
	fputs(text, fp);
	fclose(fp);
}

static void
setup(void)
{
	dir = make_tmpdir();
}

static void
built_in_entries(void)
{
	const char *canon = NULL;

	test_assert(ok(false, "/comment", "", "hello"));
	test_assert(ok(false, "/checkperiod", "bob", "30"));
	test_assert(!ok(false, "/checkperiod", "bob", "soon"));
	test_assert(!ok(false, "/specialuse", "", "\\Sent"));	/* private */
	test_assert(!ok(false, "/vendor/acme/color", "", "red"));
	test_assert(annotdef_writable(false, "/check", "", "TRUE", 4, &canon));
	test_assert_str(canon, "true");
}

static void
definitions_file_adds_entries(void)
{
	char err[300];

	write_file("# site annotations\n"
	    "/vendor/acme/color, mailbox, string, backend, value.shared value.priv, a\n"
	    "\n"
	    "/vendor/acme/level,mailbox,int,backend,value.shared,a\n"
	    "/vendor/acme/motd2,server,string,backend,value,a\n"
	    "/vendor/acme/perms,message,string,backend,value.priv,a\n");
	test_assert_int(annotdef_load(path, err, sizeof(err)), 0);
	test_assert(ok(false, "/vendor/acme/color", "", "red"));
	test_assert(ok(false, "/vendor/acme/color", "bob", "blue"));
	test_assert(ok(false, "/vendor/acme/level", "", "-3"));
	test_assert(!ok(false, "/vendor/acme/level", "", "three"));
	test_assert(!ok(false, "/vendor/acme/level", "bob", "3"));
	test_assert(ok(true, "/vendor/acme/motd2", "", "hi"));
	test_assert(!ok(false, "/vendor/acme/motd2", "", "hi"));
	test_assert(!ok(false, "/vendor/acme/perms", "", "x"));	/* message */
	test_assert(ok(false, "/comment", "", "built-ins stay"));
	/* A bad file keeps what was read before, and says where. */
	write_file("/vendor/acme/x,mailbox,float,backend,value,a\n");
	test_assert_int(annotdef_load(path, err, sizeof(err)), -1);
	test_assert(strstr(err, ":1:") != NULL);
	test_assert(ok(false, "/vendor/acme/color", "", "red"));
	/* None: the built-ins only. */
	test_assert_int(annotdef_load("", err, sizeof(err)), 0);
	test_assert(!ok(false, "/vendor/acme/color", "", "red"));
	unlink(path);
	test_assert_int(annotdef_load(path, err, sizeof(err)), -1);
}

static void
teardown(void)
{
	rm_rf(dir);
	free(dir);
}

TEST_MAIN(T(setup), T(built_in_entries), T(definitions_file_adds_entries),
    T(teardown))
