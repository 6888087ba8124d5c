#!/usr/bin/env python3
"""soak.py -- the kill soak of issue 14 (tests/integration/soak.py): by
default 200 rounds, each SIGKILLing syncrelay at a random moment of a
mixed workload under rolling replication to two real Cyrus replicas,
every tenth also killing a replica's sync_server and the master's
sync_client; then both replicas must equal the master, with nothing
twice, a direct sync_client must send nothing, and the journal must
verify clean.  Run from a build directory:

    SRCDIR=.. BUILDDIR=$PWD python3 ../bench/soak.py [ROUNDS [SEED]]

It prints its figures (kills, time, bytes, records) for
docs/reliability.md; any loss raises an AssertionError.
"""
import os
import sys
import time

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))

from soak import run_soak  # noqa: E402


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    t0 = time.time()
    f = run_soak(rounds, seed=seed)
    print("soak: %d rounds, %d SIGKILLs of syncrelay, %d of sync_server, "
          "%d of sync_client; %d workload steps, %.1f MB delivered in "
          "%.0f s; journal %d records, %.1f MB; verify: %s; total %.0f s: "
          "both replicas identical, nothing twice, a direct sync_client "
          "sends nothing" % (
              f["rounds"], f["relay_kills"], f["sync_server_kills"],
              f["sync_client_kills"], f["workload_steps"],
              f["bytes_delivered"] / 1e6, f["workload_seconds"],
              f["journal_records"], f["journal_bytes"] / 1e6, f["verify"],
              time.time() - t0))


if __name__ == "__main__":
    main()
