#!/bin/sh
# headers.sh -- every header compiles on its own (style.md: "Every header
# compiles on its own").  One test per header.
set -u
: "${SRCDIR:=..}" "${BUILDDIR:=.}" "${CC:=cc}"
passed=0
failed=0
tmp=$(mktemp -d)
for h in $(cd "$SRCDIR" && ls lib/*.h protocol/*.h storage/*.h relay/*.h relay/*/*.h 2>/dev/null); do
	printf '#include "autoconf.h"\n#include "%s"\n#include "%s"\n' "$h" "$h" \
	    > "$tmp/t.c"
	if $CC -fsyntax-only -Wall -Werror -I"$SRCDIR" -I"$BUILDDIR" \
	    "$tmp/t.c" 2>"$tmp/err"; then
		echo "ok $h"
		passed=$((passed + 1))
	else
		echo "FAIL $h"
		cat "$tmp/err"
		failed=$((failed + 1))
	fi
done
rm -rf "$tmp"
echo "summary headers passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
