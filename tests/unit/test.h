/*
 * test.h -- a tiny table-driven test runner for the unit tests.
 *
 * Each test is a function; test_assert() records a failure and carries
 * on.  test_run() runs a table of tests, prints "ok NAME" or "FAIL NAME"
 * per test, and a summary line "summary PROG passed=N failed=N" that
 * tests/run-tests.sh adds up.  The exit status is 1 if any test failed.
 */
#ifndef SR_TEST_H
#define SR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

static int test_case_failures;

#define test_assert(cond)                                                 \
	do {                                                              \
		if (!(cond)) {                                            \
			test_case_failures++;                             \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",  \
			    __FILE__, __LINE__, #cond);                   \
		}                                                         \
	} while (0)

#define test_assert_str(a, b)                                             \
	do {                                                              \
		const char *a_ = (a), *b_ = (b);                          \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {    \
			test_case_failures++;                             \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n",      \
			    __FILE__, __LINE__, a_ ? a_ : "(null)",       \
			    b_ ? b_ : "(null)");                          \
		}                                                         \
	} while (0)

#define test_assert_int(a, b)                                             \
	do {                                                              \
		long long a_ = (long long)(a), b_ = (long long)(b);       \
		if (a_ != b_) {                                           \
			test_case_failures++;                             \
			fprintf(stderr, "%s:%d: %s == %lld, expected "    \
			    "%lld\n", __FILE__, __LINE__, #a, a_, b_);    \
		}                                                         \
	} while (0)

static inline int
test_run(const char *prog, const struct test_case *cases, size_t n)
{
	size_t i, passed = 0, failed = 0;

	for (i = 0; i < n; i++) {
		test_case_failures = 0;
		cases[i].fn();
		if (test_case_failures == 0) {
			passed++;
			printf("ok %s\n", cases[i].name);
		} else {
			failed++;
			printf("FAIL %s (%d assertions)\n", cases[i].name,
			    test_case_failures);
		}
		fflush(stdout);
	}
	printf("summary %s passed=%zu failed=%zu\n", prog, passed, failed);
	return failed ? 1 : 0;
}

#define TEST_MAIN(...)                                                    \
	int main(void)                                                    \
	{                                                                 \
		static const struct test_case cases_[] = { __VA_ARGS__ }; \
		return test_run(__FILE__, cases_,                         \
		    sizeof(cases_) / sizeof(cases_[0]));                  \
	}

#define T(fn) { #fn, fn }

#endif
