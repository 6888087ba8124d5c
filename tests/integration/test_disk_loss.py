#!/usr/bin/env python3
"""test_disk_loss.py -- the relay's own disk lost or damaged (issue 14,
docs/reliability.md), with real Cyrus 3.6.1.

- Lost: a new, empty relay starts where the old one was; the master
  syncs again (sync_client -A, then rolling).  The replicas already hold
  the mail: the relay takes their state (seeding) instead of the master
  resending it, and both end up identical to the master, nothing twice,
  a direct sync_client sending nothing.  The bodies sent again are
  counted against what a fresh replica would need.
- Damaged in the middle: syncrelay refuses to start, naming the store,
  the segment and the offset; the written-down recovery (set the store's
  directory aside, start, resync as above) works.
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import BUILDDIR, SYNCRELAY, check, eq, run, test
from relaytest import (CyrusPath, identical, populate, stop_paths,
                       sync_user, wait_caught_up)

USERS = ("alice", "bob")


def setup():
    """Two users replicated to two replicas; then the relay stops, its
    disk about to fail."""
    path = CyrusPath("syncrelay-disk-", nreplicas=2, users=USERS)
    for u in USERS:
        populate(path.master, u, 20, big={5})
        sync_user(path.master, u)
    wait_caught_up(path.relay)
    path.relay.stop()
    return path, path.relay


def bodies_journaled(relay):
    r = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"), "dump",
                        os.path.join(relay.dir, "data", "s1", "journal")],
                       capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0)
    return len(re.findall(r"^\d+ \S+ BODY ", r.stdout, flags=re.M))


def resync(path, new_messages):
    """The master syncs everything again (-A), then goes on rolling."""
    master, relay = path.master, path.relay
    for i in range(new_messages):
        master.deliver(USERS[i % 2], cyrus.make_message(900 + i, 2600))
    rc, out, err = master.sync_client(["-A"], timeout=300)
    check(rc == 0, "sync_client -A rc=%r\n%s%s" % (rc, out, err))
    master.start_rolling()
    master.deliver("alice", cyrus.make_message(990, 2400))
    time.sleep(2)
    master.stop_rolling()
    for u in USERS:         # whatever the rolling client left in its log
        sync_user(master, u)
    wait_caught_up(relay, timeout=120)
    for r in path.replicas:
        identical(master, r, USERS)


@test
def a_lost_relay_disk_costs_the_new_mail_only():
    path, relay = setup()
    try:
        shutil.rmtree(os.path.join(relay.dir, "data"))
        relay.start()
        resync(path, 4)
        bodies = bodies_journaled(relay)
        total = sum(len(st["mailboxes"][b].get("messages", {}))
                    for st in (path.master.state(u) for u in USERS)
                    for b in st["mailboxes"])
        print("# after the relay's disk was lost: %d bodies journaled and "
              "sent again; a fresh replica would need %d" % (bodies, total))
        check("event=seeded" in relay.logtext(), relay.logtext())
        check(bodies <= 5, "%d bodies sent again" % bodies)
    finally:
        stop_paths()


@test
def a_journal_damaged_in_the_middle_is_refused_and_recovered():
    path, relay = setup()
    try:
        jdir = os.path.join(relay.dir, "data", "s1", "journal")
        seg = os.path.join(jdir, sorted(os.listdir(jdir))[0])
        size = os.path.getsize(seg)
        with open(seg, "r+b") as f:         # a flipped byte mid-segment
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x55]))
        v = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"),
                            "verify", jdir], capture_output=True, text=True,
                           timeout=60)
        check(v.returncode != 0, v.stdout)
        mark = len(relay.logtext())
        r = subprocess.run([SYNCRELAY, "-C", relay.conf, "-f"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode != 0, r.stdout + r.stderr)
        said = r.stdout + r.stderr + relay.logtext()[mark:]
        check(re.search(r"store s1: .*%s" % re.escape(os.path.basename(seg)),
                        said), said)
        # The recovery of docs/reliability.md: the store's directory set
        # aside, the relay started, the master syncing everything again.
        os.rename(os.path.join(relay.dir, "data", "s1"),
                  os.path.join(relay.dir, "s1.damaged"))
        relay.start()
        resync(path, 2)
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_disk_loss", stop_paths)
