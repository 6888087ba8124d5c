#!/usr/bin/env python3
"""test_seed.py -- syncrelayctl seed with real Debian Cyrus: a replica
added to a store's configuration (then reload) is filled from the
relay's shadow, bodies from the journal, without a word to the master,
while the master goes on delivering under rolling replication; nothing
the master changes meanwhile is lost.  And what happens when retention
already dropped the early journal: today's refusal, and what a seed
does then.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from audittest import SMALL, link, past_retention, until
from harness import check, eq, run, test
from relaytest import (CyrusPath, identical, populate, stop_paths,
                       sync_user, wait_caught_up)

USERS = ("alice", "bob")


def add_replica(path, name="r2"):
    """A second, empty replica Cyrus, added to the relay's store s1 by
    configuration and reload."""
    inst = path.add_replica(cyrus.CyrusInstance(
        path.root, "replica2", syslog=path.log, users=USERS))
    with open(path.relay.conf, "a") as f:
        f.write("store.s1.replica.%s: 127.0.0.1:%d\n" % (name,
                                                         inst.sync_port))
    eq(path.relay.ctl("reload").returncode, 0)
    path.relay.wait_log("replica=%s event=link_state" % name, timeout=20)
    return inst


def folder_bodies(inst, user, folder):
    """{uid: (flags, sha1 of the body)} of one folder, over IMAP."""
    import hashlib
    m = inst.imap(user)
    try:
        cyrus.imap_ok(*m.select(folder, readonly=True))
        typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        cyrus.imap_ok(typ, data)
        out = {}
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
                out[uid] = (flags, hashlib.sha1(item[1]).hexdigest())
        check(out, "no messages in %s" % folder)
        return out
    finally:
        m.logout()


def logins(relay):
    return relay.logtext().count("event=login user=")


@test
def a_seed_while_the_master_keeps_delivering_loses_nothing():
    path = CyrusPath("syncrelay-seed-", users=USERS)
    try:
        relay, master = path.relay, path.master
        for u in USERS:
            populate(master, u, 15, big={3})
            sync_user(master, u)
        wait_caught_up(relay)
        master.start_rolling()
        stop = threading.Event()
        sent = []

        def deliver():
            i = 0
            while not stop.is_set():
                u = USERS[i % 2]
                master.deliver(u, cyrus.make_message(2000 + i, 3000))
                sent.append(u)
                i += 1
                time.sleep(0.05)

        t = threading.Thread(target=deliver)
        t.start()
        try:
            time.sleep(1.0)
            r2 = add_replica(path)
            before = logins(relay)
            r = relay.ctl("seed", "s1", "r2")
            eq((r.returncode, r.stderr), (0, ""))
            check("seeding from the shadow" in r.stdout, r.stdout)
            st = link(relay, "r2")
            check(st["seeding"] is not None, st)
            seen = until(lambda: [s for s in [link(relay, "r2")]
                                  if s["state"] == "seeding" and
                                  s["seeding"]["mailboxes_total"] > 0],
                         "status shows the seed with its progress")
            check(seen[0]["seeding"]["mailboxes_done"] <=
                  seen[0]["seeding"]["mailboxes_total"], seen)
            text = relay.ctl("status").stdout
            check(re.search(r"seeding from the shadow: \d+ of \d+ mailboxes "
                            r"taken, .* sent, for .*, eta ", text), text)
            # wait includes the new replica: not caught up mid-seed.
            time.sleep(2.0)
        finally:
            stop.set()
            t.join()
        check(len(sent) > 20, sent)
        # The rolling client sends the rest; then everything is there.
        wait_caught_up(relay, timeout=240)
        eq(link(relay, "r2")["seeding"], None)
        # The master saw nothing of the seed: no new session.
        eq(logins(relay), before)
        master.stop_rolling()
        sync_user(master, "alice")
        sync_user(master, "bob")
        wait_caught_up(relay, timeout=120)
        identical(master, r2, USERS)
        identical(master, path.replicas[0], USERS)
        text = relay.logtext()
        check("replica=r2 event=seed_start" in text and
              "replica=r2 event=seed_done" in text, text[-3000:])
        check("event=link_failed" not in text, text[-3000:])
    finally:
        stop_paths()



@test
def a_replica_added_after_retention_is_seeded_from_another_replica():
    """Issue 19, test 3.  Today a replica added after retention dropped
    the journal's start cannot replay (its link fails, saying so).  A
    seed while no other replica is caught up (r1 paused) parks what
    retention dropped, saying that only the master can resend it; seeded
    --from the other replica
    (GET FETCH through its link), with the master's sync_client stopped
    throughout, the new replica ends identical to the master."""
    path = CyrusPath("syncrelay-seedret-", users=USERS, extra=SMALL)
    try:
        relay, master = path.relay, path.master
        past_retention(path, USERS)
        r2 = add_replica(path)
        st = until(lambda: [s for s in [link(relay, "r2")]
                            if s["state"] == "failed"],
                   "the new replica's link fails")[0]
        check(re.search(r"the journal starts at LSN \d+ but the replica has "
                        r"only 0: resync it from the master", st["reason"]),
              st)
        before = logins(relay)
        # From the journal alone (r1 paused: no other replica caught up
        # to take the dropped bodies from): parked, saying why.
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        eq(relay.ctl("seed", "s1", "r2").returncode, 0)
        until(lambda: link(relay, "r2")["parked"] > 0, "something parked")
        st = until(lambda: [s for s in [link(relay, "r2")] if
                            "only the master can send it again (no other "
                            "replica of the store was caught up to give it)"
                            in
                            " ".join(p["reply"] for p in s["parked_list"])],
                   "the parked reason says only the master can resend")
        check(relay.ctl("wait", "s1", "--replica", "r2", "--timeout",
                        "2").returncode == 1, st)
        eq(relay.ctl("seed", "s1", "r2", "--from", "r9").returncode, 2)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        # From r1: every body the journal lacks comes from there.
        r = relay.ctl("seed", "s1", "r2", "--from", "r1")
        eq((r.returncode, r.stderr), (0, ""))
        wait_caught_up(relay, "--replica", "r2", timeout=180)
        eq(logins(relay), before)
        for u in USERS:
            eq(r2.state(u), master.state(u))
        identical(master, r2, USERS)
        text = relay.logtext()
        check("replica=r2 event=seed_done" in text, text[-3000:])
        check("event=fetch_failed" not in text, text[-3000:])
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_seed", stop_paths)
