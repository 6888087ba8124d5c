/*
 * test_buf.c -- the binary-safe buffer and its hard limit.
 */
#include "autoconf.h"

#include <errno.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "tests/unit/test.h"

static void
append_and_nul(void)
{
	struct buf b = BUF_INIT;

	test_assert_int(buf_append(&b, "a\0b", 3), 0);
	test_assert_int(b.len, 3);
	test_assert(b.s[1] == '\0' && b.s[2] == 'b' && b.s[3] == '\0');
	test_assert_int(buf_printf(&b, "%d-%s", 42, "x"), 0);
	test_assert_int(b.len, 7);
	test_assert(memcmp(b.s, "a\0b42-x", 7) == 0);
	buf_consume(&b, 3);
	test_assert_str(buf_cstring(&b), "42-x");
	buf_reset(&b);
	test_assert_str(buf_cstring(&b), "");
	test_assert_int(buf_put_u64(&b, UINT64_MAX), 0);
	test_assert_str(buf_cstring(&b), "18446744073709551615");
	buf_free(&b);
	test_assert(b.s == NULL && b.len == 0);
}

static void
hard_limit(void)
{
	struct buf b;
	int i;

	buf_init(&b, 10);
	test_assert_int(buf_append(&b, "0123456789", 10), 0);
	test_assert_int(buf_putc(&b, 'x'), -E2BIG);
	test_assert_int(b.len, 10);
	test_assert(memcmp(b.s, "0123456789", 10) == 0);
	test_assert_int(buf_printf(&b, "%s", "y"), -E2BIG);
	test_assert_int(b.len, 10);
	buf_reset(&b);
	for (i = 0; i < 10; i++)
		test_assert_int(buf_putc(&b, 'z'), 0);
	test_assert_int(buf_putc(&b, 'z'), -E2BIG);
	test_assert_int(buf_reserve(&b, SIZE_MAX), -E2BIG);
	buf_free(&b);
}

/* A JSON string: quoted, " and \\ escaped, control bytes as \\u00XX. */
static void
json_string(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "\"\"" },
		{ "plain", "\"plain\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "tab\tnl\n\x01", "\"tab\\u0009nl\\u000a\\u0001\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
	};
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		test_assert_int(buf_put_json_str(&b, cases[i].in), 0);
		test_assert_str(buf_cstring(&b), cases[i].out);
	}
	buf_free(&b);
	/* Over the limit: -E2BIG, as every append. */
	buf_init(&b, 4);
	test_assert_int(buf_put_json_str(&b, "abcdef"), -E2BIG);
	buf_free(&b);
}

static void
numbers(void)
{
	uint64_t v;

	test_assert_int(parse_u64("0", 1, &v), 0);
	test_assert_int(v, 0);
	test_assert_int(parse_u64("18446744073709551615", 20, &v), 0);
	test_assert(v == UINT64_MAX);
	test_assert_int(parse_u64("18446744073709551616", 20, &v), -ERANGE);
	test_assert_int(parse_u64("", 0, &v), -EINVAL);
	test_assert_int(parse_u64("-1", 2, &v), -EINVAL);
	test_assert_int(parse_u64("1 ", 2, &v), -EINVAL);
	test_assert_int(parse_u64("+1", 2, &v), -EINVAL);
	test_assert(is_hex("09afAF", 6));
	test_assert(!is_hex("0g", 2));
}

TEST_MAIN(T(append_and_nul), T(hard_limit), T(json_string), T(numbers))
