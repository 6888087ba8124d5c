#!/usr/bin/env python3
"""test_retention.py -- the daemon's retention policy with real Debian
Cyrus at both ends: journal segments go once every replica has them and
never before; over journal_max_bytes the store either refuses its
master's writes (a clear NO; nothing is lost, the master sends them again
once replicas caught up) or marks the replica furthest behind as needing
a full resync, which an operator clears with syncrelayctl reset after
resyncing it from the master.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, converge, direct_applies, stop_paths,
                       sync_user, wait_caught_up)

USERS = ("alice",)
SMALL = ("journal_segment_bytes: 64K\n"
         "retention_interval: 1s\n"
         "retention_min_age: 0\n")


def setup(extra):
    path = CyrusPath("syncrelay-ret-", extra=extra)
    path.master.create_user("alice")
    sync_user(path.master)
    wait_caught_up(path.relay)
    return path.log, path.relay, path.master, path.replica


def store(relay):
    return relay.status()["stores"][0]


def deliver(master, n, base, size=30000):
    for i in range(n):
        master.deliver("alice", cyrus.make_message(base + i, size))


def until(cond, what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("never: " + what)


@test
def segments_go_once_every_replica_has_them_and_not_before():
    log, relay, master, replica = setup(SMALL)
    try:
        mark = log.mark()
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        deliver(master, 30, 0)
        sync_user(master)
        s = store(relay)
        check(s["journal_segments"] >= 3, s)
        head = s["head_lsn"]
        # Several retention rounds: the paused replica holds everything.
        time.sleep(3.0)
        s = store(relay)
        check(s["journal_segments"] >= 3 and s["first_lsn"] == 1, s)
        eq(relay.ctl("journal", "s1", "--lsn", "2", "--full").returncode, 0)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        converge(master, replica, USERS)
        # Now everything before the newest segment may go.
        until(lambda: store(relay)["journal_segments"] == 1,
              "the replayed segments were dropped")
        s = store(relay)
        check(s["first_lsn"] > 1 and s["head_lsn"] == head, s)
        r = relay.ctl("journal", "s1", "--lsn", "2", "--full")
        eq(r.returncode, 2)
        r = relay.ctl("journal", "s1", "--all", "--limit", "1")
        eq(r.returncode, 0)
        check(re.search(r"records 1\.\.%d are no longer in the journal"
                        % (s["first_lsn"] - 1), r.stderr), r.stderr)
        check("event=retention dropped_segments=" in relay.logtext(),
              relay.logtext())
        # Replication goes on as before after the drop.
        deliver(master, 3, 100, 2000)
        sync_user(master)
        wait_caught_up(relay)
        converge(master, replica, USERS)
        eq(direct_applies(master, replica, "alice"), [])
        log.flush()
        check(not log.errors(mark), log.errors(mark))
    finally:
        stop_paths()


@test
def over_the_cap_the_master_is_refused_and_nothing_is_lost():
    log, relay, master, replica = setup(
        SMALL + "journal_max_bytes: 200K\njournal_full_policy: refuse\n")
    try:
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        deliver(master, 40, 0)
        rc, out = sync_user(master, ok=False)
        # Retention sees the cap within a second and refuses more.
        until(lambda: "event=journal_full" in relay.logtext(),
              "the journal was declared full")
        before = store(relay)["journal_bytes"]
        deliver(master, 5, 200, 100_000)
        rc, out = sync_user(master, ok=False)
        check(rc != 0, "sync_client succeeded against a full journal")
        # Refused means not journaled: message bodies included.
        grew = store(relay)["journal_bytes"] - before
        check(grew < 20_000, "a full journal grew by %d bytes" % grew)
        text = relay.logtext()
        check(re.search(r"store=s1 event=refused sub=\w+ reason=\"journal "
                        r"over journal_max_bytes", text), text)
        s = store(relay)
        check(s["errors"].get("journal_full", 0) >= 1, s)
        # The replica catches up, retention frees the journal, and the
        # master's next sync delivers everything it was refused.
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        until(lambda: "event=journal_accepting" in relay.logtext(),
              "the journal accepted writes again", 60)
        sync_user(master)
        wait_caught_up(relay)
        state = converge(master, replica, USERS)
        eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]), 45)
        eq(direct_applies(master, replica, "alice"), [])
    finally:
        stop_paths()


@test
def over_the_cap_the_slowest_replica_is_marked_for_resync():
    log, relay, master, replica = setup(
        SMALL + "journal_max_bytes: 200K\njournal_full_policy: resync\n")
    try:
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        deliver(master, 40, 0)
        sync_user(master)
        until(lambda: "replica=r1 event=needs_full_resync" in
              relay.logtext(), "the replica was marked")
        until(lambda: store(relay)["journal_segments"] <= 4,
              "the journal shrank under the cap")
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        relay.wait_log("replica=r1 event=link_failed", timeout=30)
        s = store(relay)
        r1 = s["replicas"][0]
        eq(r1["state"], "failed")
        check("needs a full resync" in r1["reason"] and
              "syncrelayctl reset s1 r1 LSN" in r1["reason"], r1)
        # What the reason says: note the head, resync from the master,
        # reset the cursor there.
        head = s["head_lsn"]
        direct_applies(master, replica, "alice")
        r = relay.ctl("reset", "s1", "r1", str(s["first_lsn"] - 2))
        eq(r.returncode, 2)
        check("outside the journal" in r.stderr, r.stderr)
        r = relay.ctl("reset", "s1", "r1", str(head))
        eq(r.returncode, 0)
        deliver(master, 2, 300, 2000)
        sync_user(master)
        wait_caught_up(relay)
        converge(master, replica, USERS)
        eq(direct_applies(master, replica, "alice"), [])
        eq(store(relay)["replicas"][0]["state"], "streaming")
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_retention", stop_paths)
