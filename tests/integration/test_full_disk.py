#!/usr/bin/env python3
"""test_full_disk.py -- the relay's datadir on a small file system (a
tmpfs of a few MiB) that fills up, with real Debian Cyrus at both ends:
the master is refused with a clear NO while free space is below the
floor, status and metrics say so, and the store recovers by itself once
its replica caught up and retention freed the journal (under pressure it
drops what every replica has at once, ignoring retention_min_age, and
rolls the newest segment); a SIGKILL while the disk is full loses
nothing acknowledged; two stores on the same disk are refused and
recover together.
"""
import base64
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import BUILDDIR, check, eq, run, sasl_relay, test
from relaytest import (CyrusPath, converge, direct_applies, stop_paths,
                       sync_user, wait_caught_up)

USERS = ("alice",)
FS_MB = 16
# The floor: 3 MiB; retention would keep young segments for an hour
# but for the pressure; a short interval, as the issue asks.
CONF = ("journal_segment_bytes: 1M\n"
        "retention_interval: 2s\n"
        "retention_min_age: 1h\n"
        "disk_free_min_percent: 0\n"
        "disk_free_min_bytes: ")
MSG_BYTES = 400_000


def message(i, size=MSG_BYTES, to="alice@example.org"):
    """A message of random base64 (compresses to ~3/4: fills a disk)."""
    rnd = random.Random(i)
    raw = rnd.randbytes(size * 3 // 4)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    hdr = ("From: bob@example.org\r\nTo: %s\r\nSubject: blob %d\r\n"
           "Message-ID: <blob-%d@example.org>\r\n"
           "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
           "Content-Type: application/octet-stream\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" % (to, i, i))
    return hdr.encode() + b64


def mount_small(path, mb=FS_MB):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % mb,
                    "tmpfs", path], check=True)


def umount(path):
    subprocess.run(["umount", "-l", path], check=False,
                   capture_output=True)


def start(nstores=1, floor="3M"):
    """Replicas, a relay whose datadir is a FS_MB tmpfs, and masters:
    store sN (identity replN) replays to replica N."""
    path = CyrusPath("syncrelay-disk-", nreplicas=nstores, relay=False,
                     master=False)
    users = {"repl%s" % ("" if i == 0 else i + 1): cyrus.REPL_PASSWORD
             for i in range(nstores)}
    conf = ("replica_authname: repl\nreplica_password: %s\n"
            % cyrus.REPL_PASSWORD)
    for i, ident in enumerate(users):
        conf += ("store.s%d.identity: %s\nstore.s%d.replica.r1: "
                 "127.0.0.1:%d\n" % (i + 1, ident, i + 1,
                                     path.replicas[i].sync_port))
    relay = sasl_relay(users, conf + CONF + floor + "\n", start=False)
    path.data = os.path.join(relay.dir, "data")
    mount_small(path.data)
    relay.start()
    path.relay = relay
    masters = [path.start_master()]
    for i in range(1, nstores):
        m = cyrus.CyrusInstance(path.root, "master%d" % (i + 1),
                                syslog=path.log,
                                extra=cyrus.replication_conf(
                                    relay.port, authname="repl%d" % (i + 1)))
        m.start()
        path.replicas.append(m)   # stopped with the rest
        masters.append(m)
    for m in masters:
        m.create_user("alice")
        sync_user(m)
    for i in range(nstores):
        wait_caught_up(relay, store="s%d" % (i + 1))
    return path, relay, masters


def stop(path):
    data = getattr(path, "data", None)
    try:
        path.stop()
    finally:
        if data:
            umount(data)


def store(relay, name="s1"):
    return [s for s in relay.status()["stores"] if s["name"] == name][0]


def until(cond, what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError("never: " + what)


def fill(relay, master, base, name="s1", per_round=10, rounds=8,
         size=MSG_BYTES):
    """With the store's replica paused, delivers rounds of messages and
    syncs each until the relay refuses the master for want of disk;
    returns how many messages were delivered."""
    eq(relay.ctl("pause", name, "r1").returncode, 0)
    n = 0
    for _ in range(rounds):
        for i in range(per_round):
            master.deliver("alice", message(base + n, size))
            n += 1
        rc, out = sync_user(master, ok=False)
        if rc != 0:
            return n
    raise AssertionError("the disk never filled: %s" % store(relay, name))


def metric(relay, name, store="s1"):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                  % relay.metrics_port, timeout=10).read()
    m = re.search(r'^%s\{store="%s"\} (\S+)$' % (name, store),
                  text.decode(), re.M)
    return float(m.group(1)) if m else None


def verify(relay, name="s1"):
    r = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"),
                        "verify", os.path.join(relay.dir, "data", name,
                                               "journal")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, r.stdout + r.stderr)
    check(r.stdout.rstrip().endswith("OK"), r.stdout)


@test
def full_disk_refuses_then_recovers_without_a_restart():
    path, relay, (master,) = start()
    try:
        t0 = time.time()
        n = fill(relay, master, 0)
        text = relay.logtext()
        check("store=s1 event=disk_full" in text, text[-3000:])
        check(re.search(r"store=s1 event=refused sub=\w+ reason=\"disk "
                        r"full", text), text[-3000:])
        s = store(relay)
        check(s["disk"]["refusing"] and s["disk"]["full"], s)
        check(s["disk"]["free_bytes"] < s["disk"]["floor_bytes"], s)
        check(s["errors"].get("disk_full", 0) >= 1, s)
        st = relay.ctl("status", "s1")
        check("refusing: disk full since" in st.stdout, st.stdout)
        eq(metric(relay, "syncrelay_store_refusing"), 1.0)
        check(metric(relay, "syncrelay_store_disk_full_since_seconds") > 0,
              "no since")
        head = s["head_lsn"]
        # The replica comes back: it gets everything durable, and the
        # lag counts only what it can hold.
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay, timeout=60)
        check(store(relay)["replicas"][0]["cursor_lsn"] >= head,
              store(relay))
        # Retention under pressure frees the journal (the segments are
        # younger than retention_min_age) and the store accepts again.
        accepting_again(relay)
        text = relay.logtext()
        check("event=retention_pressure" in text, text[-3000:])
        check("event=disk_room" in text, text[-3000:])
        eq(metric(relay, "syncrelay_store_refusing"), 0.0)
        # The master's next sync (its rolling sync_client would retry
        # by itself) delivers the rest.
        the_rest_arrives(path, relay, master, n)
        print("  recovered in %.1f s of test time" % (time.time() - t0))
        eq(relay.proc.poll(), None)
    finally:
        stop(path)


@test
def sigkill_on_a_full_disk_loses_nothing_acknowledged():
    path, relay, (master,) = start()
    try:
        n = fill(relay, master, 0)
        s = store(relay)
        check(s["disk"]["refusing"], s)
        head = s["head_lsn"]
        relay.signal(signal.SIGKILL)
        relay.proc.wait(10)
        try:
            relay.start()
        except AssertionError:
            print(relay.logtext()[-3000:])
            raise
        s = store(relay)
        check(s["head_lsn"] >= head, (head, s))
        verify(relay)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay, timeout=60)
        accepting_again(relay)
        the_rest_arrives(path, relay, master, n)
    finally:
        stop(path)


def accepting_again(relay):
    until(lambda: not store(relay)["disk"]["refusing"],
          "the store accepted again", 30)


def the_rest_arrives(path, relay, master, n):
    """The master's next sync (its rolling sync_client would retry by
    itself) delivers the rest: n messages in alice's INBOX on the
    replica, nothing for a direct sync_client, the journal clean."""
    sync_user(master)
    wait_caught_up(relay)
    state = converge(master, path.replicas[0], USERS)
    eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]), n)
    eq(direct_applies(master, path.replicas[0], "alice"), [])
    verify(relay)


@test
def a_write_that_hits_enospc_recovers_the_journal():
    """Bodies larger than the floor's margin: the check passes, the write
    runs out of space mid-body, the journal fails (sticky) and is
    recovered, its torn tail cut, once retention made room."""
    path, relay, (master,) = start(floor="1M")
    try:
        # About half the disk, then one message whose body, compressed,
        # is larger than all the free space left: the floor check lets
        # it start, the disk ends it (and it fits once the rest is gone).
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        for i in range(4):
            master.deliver("alice", message(i, 3_000_000))
        sync_user(master)
        free = store(relay)["disk"]["free_bytes"]
        master.deliver("alice", message(4, int(free / 0.7) + 300_000))
        rc, out = sync_user(master, ok=False)
        check(rc != 0, out)
        n = 5
        relay.wait_log("event=write_failed", timeout=10)
        s = store(relay)
        # The journal is failed until the disk guard recovers it (it
        # looks each second, and recovery needs no room): on a slow
        # machine that may already have happened by now.
        check(s["disk"]["refusing"] and (
            s["disk"]["storage_failed"] or
            "store=s1 event=journal_recovered" in relay.logtext()), s)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay, timeout=60)
        relay.wait_log("store=s1 event=journal_recovered", timeout=30)
        relay.wait_log("store=s1 event=store_recovered", timeout=30)
        accepting_again(relay)
        # Accepting again needs only the floor; the big body needs the
        # room retention makes once r1's cursor is durable past the old
        # segments.  A retry before that is refused again (rightly, and
        # said); the master retries, as its rolling sync_client would.
        deadline = time.time() + 60
        while True:
            rc, out = sync_user(master, ok=False)
            if rc == 0 or time.time() > deadline:
                break
            check("No space left" in relay.logtext(), relay.logtext())
            time.sleep(1)
        eq(rc, 0)
        the_rest_arrives(path, relay, master, n)
        check("cannot rollback" not in relay.logtext(), "rollback")
    finally:
        stop(path)


@test
def two_stores_on_one_full_disk_are_refused_and_both_recover():
    path, relay, (m1, m2) = start(2)
    try:
        n = fill(relay, m1, 0)
        # s2 never wrote much, but it shares the disk: refused too.
        m2.deliver("alice", message(500, 50_000))
        rc, out = sync_user(m2, ok=False)
        check(rc != 0, "s2 accepted on a full disk:\n" + out)
        check(store(relay, "s2")["disk"]["refusing"], store(relay, "s2"))
        check(store(relay, "s1")["disk"]["refusing"], store(relay, "s1"))
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        until(lambda: not store(relay, "s1")["disk"]["refusing"] and
              not store(relay, "s2")["disk"]["refusing"],
              "both stores accepted again", 60)
        for name, m, rep, want in (("s1", m1, path.replicas[0], n),
                                   ("s2", m2, path.replicas[1], 1)):
            sync_user(m)
            wait_caught_up(relay, store=name)
            state = converge(m, rep, USERS)
            eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]), want)
            verify(relay, name)
    finally:
        stop(path)


if __name__ == "__main__":
    run("test_full_disk", stop_paths)
