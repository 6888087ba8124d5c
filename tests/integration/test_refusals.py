#!/usr/bin/env python3
"""test_refusals.py -- a replica's refusal never stalls a store (design.md
invariant 8), with real Cyrus 3.6.1 on both sides.

The master has a second partition that replica r1 lacks, and a mailbox
of alice's on it.  r1 refuses that one mailbox; the relay parks it (the
log, status and metrics say so, and `wait` does not call r1 caught up),
and every other mailbox of alice's and all of bob's keep replicating.
The parked mailbox survives a restart of the relay.  Once the operator
gives r1 the partition, `syncrelayctl retry` brings the mailbox over
whole, and a direct sync_client then finds nothing to send.  A second
parked mailbox is given up by the operator, loudly.
"""
import os
import re
import time
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, converge, direct_applies, populate,
                       stop_paths, sync_user, wait_caught_up)

USERS = ("alice", "bob")


def create_on(inst, user, folder, partition):
    """CREATE user's folder on a named partition (as admin)."""
    m = inst.imap()
    try:
        name = inst.mailbox_name(user, folder)
        typ, data = m._simple_command("CREATE", '"%s"' % name, partition)
        cyrus.imap_ok(typ, data)
    finally:
        m.logout()


def add_partition(inst, name):
    """Gives a Cyrus instance one more partition, and restarts it."""
    where = os.path.join(inst.dir, "spool-" + name)
    os.makedirs(where)
    cyrus._chown_tree(where)
    inst.settings["partition-" + name] = where
    inst.write_conf()
    inst.stop()
    inst.start()


def r1_status(relay):
    return relay.status()["stores"][0]["replicas"][0]


def metrics(relay):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                % relay.metrics_port, timeout=10) as r:
        return r.read().decode()


def without(state, folder):
    s = dict(state)
    s["mailboxes"] = {k: v for k, v in state["mailboxes"].items()
                      if k != folder}
    return s


@test
def a_mailbox_the_replica_refuses_is_parked_and_the_rest_replicates():
    path = CyrusPath("syncrelay-refuse-", users=USERS, master=False)
    relay, replica, log = path.relay, path.replica, path.log
    spool2 = os.path.join(path.root, "spool-p2")
    os.makedirs(spool2)
    extra = dict(cyrus.replication_conf(relay.port))
    extra["partition-p2"] = spool2
    master = path.start_master(extra)
    cyrus._chown_tree(spool2)
    for u in USERS:
        populate(master, u, 6, big=set())
        sync_user(master, u)
    wait_caught_up(relay)
    converge(master, replica, USERS)
    mark = len(relay.logtext())

    # A folder on p2, which r1 does not have.
    create_on(master, "alice", "Far", "p2")
    master.append("alice", "Far", cyrus.make_message(700, 1900))
    sync_user(master, "alice")
    relay.wait_log("replica=r1 event=parked mailbox=user.alice.Far",
                   timeout=60)
    text = relay.logtext()[mark:]
    check("event=link_failed" not in text, text)
    r1 = r1_status(relay)
    eq(r1["parked"], 1)
    p = r1["parked_list"][0]
    eq((p["kind"], p["name"]), ("mailbox", "user.alice.Far"))
    check(p["reply"].startswith("APPLY "), p)
    check(" NO " in p["reply"] or "BAD" in p["reply"], p)
    check(p["lsn"] > 0 and p["tries"] == 1, p)
    # Parked is not caught up.
    r = relay.ctl("wait", "s1", "--timeout", "1")
    eq(r.returncode, 1)
    check("1 parked, e.g. mailbox user.alice.Far" in r.stderr, r.stderr)
    m = metrics(relay)
    check(re.search(r'^syncrelay_replica_parked\{store="s1",replica="r1"\} '
                    r'1$', m, flags=re.M), m)
    check(re.search(r'^syncrelay_replica_parked_since_timestamp_seconds\{'
                    r'store="s1",replica="r1",mailbox="user.alice.Far",'
                    r'lsn="%d",reply="APPLY [^"]*"\} \d' % p["lsn"], m,
                    flags=re.M), m)
    text = relay.ctl("status").stdout
    check("parked: 1" in text and "mailbox user.alice.Far" in text, text)

    # The rest goes on: more mail for both users, and for the parked
    # folder too (its updates are held back, not sent).
    for i in range(3):
        master.deliver("bob", cyrus.make_message(800 + i, 2100))
        master.deliver("alice", cyrus.make_message(810 + i, 2200))
    master.append("alice", "Far", cyrus.make_message(820, 1700))
    master.append("alice", "Work", cyrus.make_message(821, 1600))
    for u in USERS:
        sync_user(master, u)
    converge(master, replica, ["bob"])
    want = master.state("alice")
    got = None
    for _ in range(120):
        got = replica.state("alice")
        if without(got, "Far") == without(want, "Far"):
            break
        time.sleep(0.5)
    eq(without(got, "Far"), without(want, "Far"))
    check(got["mailboxes"].get("Far") != want["mailboxes"]["Far"], got)
    r1 = r1_status(relay)
    eq((r1["state"], r1["lag_records"], r1["parked"]), ("streaming", 0, 1))

    # Kept across a restart of the relay.
    relay.stop()
    relay.start()
    relay.wait_log("replica=r1 event=parked_loaded count=1", timeout=30)
    eq(r1_status(relay)["parked"], 1)

    # The operator gives r1 the partition; a retry brings the mailbox.
    add_partition(replica, "p2")
    r = relay.ctl("retry", "s1", "r1")
    eq(r.returncode, 0)
    check("retrying 1 parked entry" in r.stdout, r.stdout)
    relay.wait_log("replica=r1 event=unparked mailbox=user.alice.Far",
                   timeout=90)
    wait_caught_up(relay)
    converge(master, replica, USERS)
    for u in USERS:
        eq(direct_applies(master, replica, u), [])
    eq(r1_status(relay)["parked"], 0)
    check("event=link_failed" not in relay.logtext(), relay.logtext())

    # Given up by the operator: a second mailbox on a partition r1 lacks.
    add_partition(master, "p3")
    create_on(master, "bob", "Cold Storage", "p3")
    master.append("bob", "Cold Storage", cyrus.make_message(900, 1500))
    sync_user(master, "bob")
    relay.wait_log('event=parked mailbox=user.bob.Cold Storage', timeout=60)
    r = relay.ctl("giveup", "s1", "r1", "user.bob.Nope")
    eq(r.returncode, 2)
    r = relay.ctl("giveup", "s1", "r1", "user.bob.Cold Storage")
    eq(r.returncode, 0)
    check("gave up 1 parked entry" in r.stdout, r.stdout)
    check("event=parked_given_up name=user.bob.Cold Storage"
          in relay.logtext(), relay.logtext())
    eq(r1_status(relay)["parked"], 0)
    wait_caught_up(relay)


if __name__ == "__main__":
    run("test_refusals", stop_paths)
