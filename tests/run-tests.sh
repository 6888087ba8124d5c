#!/bin/sh
# run-tests.sh -- run test programs and add up their results.
#
# Each argument is a test program (unit test binary or integration
# script).  A program reports "summary NAME passed=N failed=N"; a program
# that exits non-zero without a summary, or crashes, counts as one failed
# test.  The last line is "N passed, N failed" for everything that ran.
set -u
passed=0
failed=0
for t in "$@"; do
	name=$(basename "$t")
	if [ -f "$t" ] && [ ! -x "$t" ]; then
		echo "FAIL $name: not executable (chmod +x it)"
		failed=$((failed + 1))
		continue
	fi
	out=$(mktemp)
	if [ -x "$t" ]; then
		cmd="$t"
	else
		cmd="${BUILDDIR:-.}/$t"
	fi
	"$cmd" >"$out" 2>&1
	rc=$?
	cat "$out"
	line=$(grep '^summary ' "$out" | tail -n 1)
	rm -f "$out"
	if [ -n "$line" ]; then
		p=$(echo "$line" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
		f=$(echo "$line" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "FAIL $name: exit status $rc after a clean summary"
			failed=$((failed + 1))
		fi
	else
		echo "FAIL $name: no summary (exit status $rc)"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
