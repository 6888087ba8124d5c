#!/bin/sh
# structure.sh -- the tree keeps its shape (style.md, issue 12): layers
# lib <- protocol <- storage <- relay with no reference back up, no
# circle among files (read from the object files with nm), no source over
# 1,200 lines, each opening with why it exists.  The checker is first
# shown a made-up tree with a circle and an upward call, which it must
# refuse, so that this test can fail.
set -u
: "${SRCDIR:=..}" "${BUILDDIR:=.}" "${CC:=cc}"
passed=0
failed=0
tmp=$(mktemp -d)
mkdir -p "$tmp/src/lib" "$tmp/src/relay" "$tmp/build/lib" "$tmp/build/relay"
printf '/* a */\nint b(void);\nint a(void) { return b(); }\n' >"$tmp/src/relay/a.c"
printf '/* b */\nint a(void);\nint b(void) { return a(); }\n' >"$tmp/src/relay/b.c"
printf '/* u */\nint a(void);\nint u(void) { return a(); }\n' >"$tmp/src/lib/u.c"
for f in relay/a relay/b lib/u; do
	$CC -c -o "$tmp/build/$f.o" "$tmp/src/$f.c"
done
out=$(python3 "$SRCDIR/scripts/check-structure" "$tmp/src" "$tmp/build")
if [ $? -eq 1 ] && echo "$out" | grep -q "circle among files: relay/a <-> relay/b" &&
    echo "$out" | grep -q "layer: lib/u calls up into relay/a"; then
	echo "ok the checker refuses a made-up circle and an upward call"
	passed=$((passed + 1))
else
	echo "FAIL the checker missed a made-up circle or upward call: $out"
	failed=$((failed + 1))
fi
rm -rf "$tmp"
if python3 "$SRCDIR/scripts/check-structure" "$SRCDIR" "$BUILDDIR"; then
	echo "ok the tree keeps its layers, has no circle and no file too long"
	passed=$((passed + 1))
else
	echo "FAIL the tree's structure (above)"
	failed=$((failed + 1))
fi
echo "summary structure passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
