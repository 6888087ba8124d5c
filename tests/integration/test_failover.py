#!/usr/bin/env python3
"""test_failover.py -- the failover of docs/operations.md, section 4, done
for real: a Cyrus master replicates through the relay (store s1) into
replicas B and C; the master stops, `syncrelayctl wait --replica r1`
says B has everything, the relay's configuration gives the identity to a
new store s2 (master B, replica C) and is reloaded, B's sync_client sends
its state through the relay, and C ends up showing exactly what B shows,
with nothing for a direct sync_client to send and no Cyrus error.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, converge, direct_applies, populate,
                       sync_user, wait_caught_up)

env = {}
USERS = ("alice",)


@test
def failover_to_a_replica_through_the_relay():
    path = env["path"] = CyrusPath("syncrelay-fo-", nreplicas=2)
    log, relay, master = path.log, path.relay, path.master
    b, c = path.replicas
    mark = log.mark()
    populate(master, "alice", 15, big=set())
    sync_user(master)
    wait_caught_up(relay)
    for r in (b, c):
        converge(master, r, USERS)

    # 1-2. The master stops changing after its last changes are sent.
    for i in range(3):
        master.deliver("alice", cyrus.make_message(300 + i, 2200))
    sync_user(master)
    want = master.state("alice")
    master.stop()
    path.master = None

    # 3. Wait for the replica to be promoted.
    wait_caught_up(relay, "--replica", "r1", timeout=60)
    eq(b.state("alice"), want)

    # 4. Reconfigure: the identity the new master logs in with (B's
    # sync_authname, here the same "repl") goes to store s2, whose
    # replica is C; store s1 leaves the configuration.
    with open(relay.conf) as f:
        text = f.read()
    text = re.sub(r"^store\.s1\..*\n", "", text, flags=re.M)
    text += ("store.s2.identity: repl\n"
             "store.s2.replica.r2: 127.0.0.1:%d\n" % c.sync_port)
    with open(relay.conf, "w") as f:
        f.write(text)
    eq(relay.ctl("reload").returncode, 0)
    relay.wait_log("store=s1 event=removed_from_config")
    relay.wait_log("store=s2 replica=r2 event=link_up")
    eq([s["name"] for s in relay.status()["stores"]], ["s2"])
    check("replica=r1 event=replica_removed" in relay.logtext(),
          relay.logtext())

    # B is the master now, and replicates through the relay.
    b.settings.update(cyrus.replication_conf(relay.port))
    b.write_conf()
    sync_user(b)
    for i in range(4):
        b.deliver("alice", cyrus.make_message(400 + i, 2400))
    sync_user(b)
    wait_caught_up(relay, store="s2")
    state = converge(b, c, USERS)
    eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]),
       len(want["mailboxes"]["INBOX"]["messages"]) + 4)
    eq(direct_applies(b, c, "alice"), [])
    st = relay.status()["stores"][0]
    eq((st["name"], st["replicas"][0]["state"],
        st["replicas"][0]["lag_records"]), ("s2", "streaming", 0))
    text = relay.logtext()
    check("event=link_failed" not in text, text)
    log.flush()
    check(not log.errors(mark), log.errors(mark))


if __name__ == "__main__":
    try:
        run("test_failover")
    finally:
        if env.get("path"):
            env["path"].stop()
