#!/usr/bin/env python3
"""test_journal_tool.py -- syncrelay-journal on journals made from the
recorded Cyrus sessions: verify, summary, dump, and damage detection.
"""
import glob
import os
import re
import subprocess
import tempfile

from harness import BUILDDIR, SRCDIR, check, eq, run, test

TOOL = os.path.join(BUILDDIR, "syncrelay-journal")
MKJOURNAL = os.path.join(BUILDDIR, "tests/unit/mkjournal")
TRACES = sorted(glob.glob(os.path.join(SRCDIR, "tests/fixtures/traces/*/"
                                       "conn1.c2s")))


def tool(*args):
    return subprocess.run([TOOL] + list(args), capture_output=True,
                          text=True, timeout=60)


def make_journal():
    d = tempfile.mkdtemp(prefix="syncrelay-jt-")
    jdir = os.path.join(d, "journal")
    r = subprocess.run([MKJOURNAL, jdir] + TRACES, capture_output=True,
                       text=True, timeout=60)
    eq(r.returncode, 0)
    m = re.match(r"records (\d+) bodies (\d+)", r.stdout)
    check(m, r.stdout)
    return jdir, int(m.group(1)), int(m.group(2))


@test
def verify_and_summary_count_what_was_written():
    jdir, records, bodies = make_journal()
    check(records >= 10 and bodies >= 5, (records, bodies))
    r = tool("verify", jdir)
    eq(r.returncode, 0)
    check(r.stdout.rstrip().endswith("OK"), r.stdout)
    check("records %d (LSN 1..%d), %d commands, %d bodies" %
          (records + bodies, records + bodies, records, bodies) in r.stdout,
          r.stdout)
    r = tool("summary", jdir)
    eq(r.returncode, 0)
    ratio = float(re.search(r"ratio ([0-9.]+)", r.stdout).group(1))
    check(0 < ratio < 1, r.stdout)


@test
def dump_decodes_commands():
    jdir, records, bodies = make_journal()
    r = tool("dump", jdir)
    eq(r.returncode, 0)
    lines = r.stdout.splitlines()
    eq(len(lines), records + bodies)
    check(any(re.search(r"^\d+ \S+Z APPLY MAILBOX user\.\S+ records=\d+ "
                        r"bytes=\d+ stored=\d+$", l) for l in lines), lines)
    check(any(re.search(r" BODY [0-9a-f]{40} size=\d+ stored=\d+$", l)
              for l in lines), lines)
    r = tool("dump", jdir, "-f", "3", "-n", "2", "-F")
    lines = r.stdout.splitlines()
    eq(len(lines), 2)
    check(lines[0].startswith("3 "), lines)


@test
def damage_is_reported():
    jdir, records, bodies = make_journal()
    seg = sorted(glob.glob(os.path.join(jdir, "*.seg")))[-1]
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:          # a byte in the middle
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x55]))
    r = tool("verify", jdir)
    eq(r.returncode, 1)
    check("DAMAGED" in r.stdout, r.stdout + r.stderr)


@test
def torn_tail_is_reported_not_cut():
    jdir, records, bodies = make_journal()
    seg = sorted(glob.glob(os.path.join(jdir, "*.seg")))[-1]
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(b"SRJR" + b"\0" * 20)
    r = tool("verify", jdir)
    eq(r.returncode, 0)
    check("torn tail: segment" in r.stdout and "24 bytes" in r.stdout,
          r.stdout)
    eq(os.path.getsize(seg), size + 24)   # the tool only reads


@test
def a_directory_without_a_journal_is_not_ok():
    d = tempfile.mkdtemp(prefix="syncrelay-jt-")
    for cmd in ("verify", "summary"):
        r = tool(cmd, d)
        eq(r.returncode, 1)
        check("holds no journal" in r.stderr, r.stderr)
        check("OK" not in r.stdout, r.stdout)
    # The store directory instead of its journal/ is the usual slip.
    jdir, _, _ = make_journal()
    r = tool("verify", os.path.dirname(jdir))
    eq(r.returncode, 1)
    check("DATADIR/STORE/journal" in r.stderr, r.stderr)
    eq(tool("verify", jdir).returncode, 0)


if __name__ == "__main__":
    run("test_journal_tool")
