#!/usr/bin/env python3
"""test_disk_loss.py -- the relay's own disk lost or damaged (issue 14,
docs/reliability.md), with real Cyrus 3.6.1.

- Lost: a new, empty relay starts where the old one was; the master
  syncs again (sync_client -A, then rolling).  The replicas already hold
  the mail: the relay takes their state (seeding) instead of the master
  resending it, and both end up identical to the master, nothing twice,
  a direct sync_client sending nothing.  The bodies sent again are
  counted against what a fresh replica would need.
- Damaged in the middle: that store is set aside, naming the segment
  and the offset and the way back (its master is refused at login,
  status and metrics show it) while a second store replicates a real
  master to a real replica; the written-down recovery (set the store's
  directory aside, reload, resync as above) works.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import BUILDDIR, SYNCRELAY, check, eq, run, sasldb, test
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
    for r in path.replicas[:2]:     # s1's (a third may serve store s2)
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


def second_store(path, relay):
    """Store s2 beside s1: identity repl2, the master's channel "two"
    (user carol only), a replica of its own."""
    other = path.add_replica(cyrus.CyrusInstance(
        path.root, "replica3", syslog=path.log, users=("carol",)))
    sasldb(relay.sasldb, "repl2", "pw2")
    with open(relay.conf, "a") as f:
        f.write("store.s2.identity: repl2\n"
                "store.s2.replica.r3: 127.0.0.1:%d\n" % other.sync_port)
    m = path.master
    m.settings.update({"two_sync_host": "127.0.0.1",
                       "two_sync_port": str(relay.port),
                       "two_sync_authname": "repl2",
                       "two_sync_password": "pw2",
                       "two_sync_try_imap": "0"})
    m.write_conf()
    m.create_user("carol")
    return other


def metric(relay, name, store):
    url = "http://127.0.0.1:%d/metrics" % relay.metrics_port
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r'^%s\{store="%s"\} (\d+)$' % (name, store), text, re.M)
    check(m, text)
    return int(m.group(1))


@test
def a_journal_damaged_in_the_middle_sets_its_store_aside():
    path, relay = setup()
    try:
        other = second_store(path, relay)
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
        # The configuration check reads the configuration, not the data.
        n = subprocess.run([SYNCRELAY, "-C", relay.conf, "-n"],
                           capture_output=True, text=True, timeout=60)
        eq((n.returncode,
            n.stdout.splitlines()[0].split(":", 1)[1].strip()),
           (0, "OK, 2 stores, 3 replicas"))
        mark = len(relay.logtext())
        relay.start()
        said = relay.logtext()[mark:]
        check(re.search(r"store=s1 event=store_open_failed error=\"store s1: "
                        r".*%s.*move the store's directory aside"
                        % re.escape(os.path.basename(seg)), said), said)
        st = {s["name"]: s for s in relay.status()["stores"]}
        eq((st["s1"]["failed"], st["s2"]["failed"]), (True, False))
        check(os.path.basename(seg) in st["s1"]["error"], st["s1"])
        text = relay.ctl("status", "s1").stdout
        check("FAILED" in text and "sync_client -A" in text, text)
        eq((metric(relay, "syncrelay_store_failed", "s1"),
            metric(relay, "syncrelay_store_failed", "s2")), (1, 0))
        # s1's master is refused at login, with a reason in the log ...
        rc, out = sync_user(path.master, "alice", ok=False)
        check(rc != 0, out)
        relay.wait_log("event=auth_refused user=repl store=s1 "
                       "reason=\"the store could not be opened")
        # ... while s2 replicates a real master to a real replica.
        for i in range(3):
            path.master.deliver("carol", cyrus.make_message(700 + i, 3000))
        rc, out, err = path.master.sync_client(["-n", "two", "-u", "carol"],
                                               timeout=180)
        check(rc == 0, "sync_client -n two rc=%r\n%s%s" % (rc, out, err))
        wait_caught_up(relay, store="s2")
        identical(path.master, other, ["carol"])
        # The recovery of docs/reliability.md, without a restart: the
        # store's directory set aside, a reload opens s1 afresh, and the
        # master syncs everything again.
        os.rename(os.path.join(relay.dir, "data", "s1"),
                  os.path.join(relay.dir, "s1.damaged"))
        eq(relay.ctl("reload").returncode, 0)
        relay.wait_log("store=s1 event=opened")
        eq([s["failed"] for s in relay.status()["stores"]], [False, False])
        resync(path, 2)
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_disk_loss", stop_paths)
