#!/usr/bin/env python3
"""test_soak.py -- the kill soak (soak.py) in a short form for CI: ten
SIGKILLs of syncrelay at random moments under rolling replication to two
real replicas, the last round also killing a replica's sync_server and
the master's rolling sync_client.  Nothing acknowledged is lost, nothing
arrives twice, and the journal verifies clean.  bench/soak.py runs the
long form (200 kills and more) and prints its figures.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import check, run, test
from relaytest import stop_paths
from soak import run_soak


@test
def ten_kills_under_rolling_replication_lose_nothing():
    f = run_soak(10, seed=int(os.environ.get("SOAK_SEED", "14")))
    check(f["relay_kills"] == 10 and f["sync_client_kills"] >= 1, f)


if __name__ == "__main__":
    run("test_soak", stop_paths)
