/*
 * test_strset.c -- the string set: membership through growth, copies
 * kept, clearing.
 */
#include "autoconf.h"

#include <stdio.h>

#include "lib/strset.h"
#include "tests/unit/test.h"

static void
add_and_has(void)
{
	struct strset set = STRSET_INIT;
	char name[32];
	int i;

	test_assert(!strset_has(&set, "alice"));
	test_assert(strset_add(&set, "alice"));
	test_assert(!strset_add(&set, "alice"));
	test_assert(strset_has(&set, "alice"));
	test_assert(!strset_has(&set, "alic"));
	test_assert(!strset_has(&set, ""));
	/* Far past the first table, so every grow is crossed. */
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		test_assert(strset_add(&set, name));
	}
	test_assert_int(strset_count(&set), 5001);
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		test_assert(strset_has(&set, name));
	}
	test_assert(!strset_has(&set, "user5000"));
	test_assert(strset_has(&set, "alice"));
	strset_clear(&set);
	test_assert_int(strset_count(&set), 0);
	test_assert(!strset_has(&set, "alice"));
	test_assert(strset_add(&set, "alice"));
	strset_clear(&set);
}

static void
copies(void)
{
	struct strset set = STRSET_INIT;
	char name[16] = "bob";

	strset_add(&set, name);
	name[0] = 'x';
	test_assert(strset_has(&set, "bob"));
	test_assert(!strset_has(&set, "xob"));
	strset_clear(&set);
}

TEST_MAIN(T(add_and_has), T(copies))
