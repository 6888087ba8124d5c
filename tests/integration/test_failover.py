#!/usr/bin/env python3
"""test_failover.py -- the failover of docs/operations.md, section 4, done
for real: a Cyrus master replicates through the relay (store s1) into
replicas B and C; the master stops, `syncrelayctl wait --replica r1`
says B has everything, the relay's configuration gives the identity to a
new store s2 (master B, replica C) and is reloaded, B's sync_client sends
its state through the relay, and C ends up showing exactly what B shows,
with nothing for a direct sync_client to send and no Cyrus error.

Then the routine of a slot pair (docs/operations.md, section 4): two
stores, one per direction, rolling masters on both sides, failover and
failback with renames, deletes and expunges.  The store of the new
master knows only what that master sent since the switch while its
replica holds the whole user, and a tap in front of each replica checks
that no link removes or renames what the master did not (design
invariant 9).
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import BUILDDIR, check, eq, run, sasl_relay, test
from relaytest import (CyrusPath, WireTap, converge, direct_applies,
                       imap_steps, populate, stop_paths, sync_user,
                       wait_caught_up)

env = {}
USERS = ("alice",)


@test
def failover_to_a_replica_through_the_relay():
    path = CyrusPath("syncrelay-fo-", nreplicas=2)
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
    # s2 took what C holds for what B asked about (B's -u asked GET
    # USER alice), so B had nothing to send but its new messages.
    check("store=s2 replica=r2 event=seeded mailboxes=" in relay.logtext(),
          relay.logtext())
    st = relay.status()["stores"][0]
    eq((st["name"], st["replicas"][0]["state"],
        st["replicas"][0]["lag_records"]), ("s2", "streaming", 0))
    text = relay.logtext()
    check("event=link_failed" not in text, text)
    log.flush()
    check(not log.errors(mark), log.errors(mark))


class Pair(CyrusPath):
    """Two Cyrus slots, A and B, each able to be master or replica, and a
    relay with a store per direction as the failover routine of
    docs/operations.md sets it up: s17ab (identity repl-s17a: master A,
    replica B) and s17ba (identity repl-s17b: master B, replica A).  Each
    replica is reached through a WireTap, so every command a link sends
    is kept.  seed: whether the relay may take what a replica holds for
    what a master never sent it (replica_seed)."""

    def __init__(self, seed):
        self.tap_a = self.tap_b = None
        super().__init__("syncrelay-fofb-", nreplicas=2, users=USERS,
                         relay=False, master=False, names=("slota", "slotb"))
        try:
            self.a, self.b = self.replicas
            self.tap_a, self.tap_b = WireTap(self.a.sync_port), \
                WireTap(self.b.sync_port)
            self.relay = relay = sasl_relay(
                {who: cyrus.REPL_PASSWORD for who in ("repl-s17a",
                                                      "repl-s17b")},
                "replica_authname: repl\n"
                "replica_password: %s\n"
                "store.s17ab.identity: repl-s17a\n"
                "store.s17ab.replica.b: 127.0.0.1:%d\n"
                "store.s17ba.identity: repl-s17b\n"
                "store.s17ba.replica.a: 127.0.0.1:%d\n"
                "replica_seed: %s\n"
                % (cyrus.REPL_PASSWORD, self.tap_b.port, self.tap_a.port,
                   "yes" if seed else "no"))
            for inst, who in ((self.a, "repl-s17a"), (self.b, "repl-s17b")):
                inst.settings.update(cyrus.replication_conf(relay.port,
                                                            authname=who))
                inst.write_conf()
        except BaseException:
            self.stop()
            raise

    def journal(self, store):
        r = subprocess.run(
            [os.path.join(BUILDDIR, "syncrelay-journal"), "dump",
             os.path.join(self.relay.dir, "data", store, "journal"), "-F"],
            capture_output=True, text=True, timeout=60)
        eq(r.returncode, 0)
        return r.stdout

    def stop(self):
        super().stop()
        for tap in (self.tap_a, self.tap_b):
            if tap:
                tap.stop()
        self.a = self.b = self.tap_a = self.tap_b = None


def unproven(tap, journal):
    """The deletes and renames a link sent that the master never asked
    for: each must be the master's own command in the store's journal,
    or (a rename) bring a mailbox to the name the master's own record
    gives it."""
    bad = []
    for verb, arg in tap.destructive():
        words = arg.split()
        if verb == "RENAME":
            new = re.search(r'NEWMBOXNAME ("[^"]*"|\S+)', arg)
            if new and re.search(r"MAILBOX %\(UNIQUEID \S+ MBOXNAME "
                                 + re.escape(new.group(1)) + " ", journal):
                continue
        elif words and re.search(r"APPLY %s %s\b" % (verb, re.escape(
                words[0])), journal):
            continue
        bad.append((verb, arg))
    return bad


def on(inst, *steps):
    imap_steps(inst, "alice", *steps)


def failover_and_failback(seed):
    pair = Pair(seed)
    a, b, relay, log = pair.a, pair.b, pair.relay, pair.log
    mark = log.mark()
    # A is master: a user with folders, mail, a sieve script and
    # subscriptions, sent whole once (-u), then rolling.
    populate(a, "alice", 10, big=set())
    on(a, *[("create", ('"%s"' % f,)) for f in (
        "Work/Sub", "Archiv", "Archiv/Alt", "Projekte", "Tmp",
        "Reisen 2026")], ("subscribe", ("Archiv",)),
        ("subscribe", ('"Reisen 2026"',)))
    for i in range(2):
        a.append("alice", "Work/Sub", cyrus.make_message(50 + i, 1700))
    a.append("alice", "Reisen 2026", cyrus.make_message(60, 1800))
    a.put_sieve("alice", "vacation", b'require "fileinto";\r\n'
                b'if header :contains "subject" "x" { fileinto "Tmp"; }\r\n')
    sync_user(a)
    a.start_rolling()
    for i in range(3):
        a.deliver("alice", cyrus.make_message(100 + i, 2000))
    converge(a, b, USERS)
    wait_caught_up(relay, store="s17ab")

    # Failover: A stops, B becomes master through s17ba, whose shadow is
    # empty while A (its replica) holds the whole user.
    a.stop_rolling()
    wait_caught_up(relay, store="s17ab")
    eq(b.state("alice"), a.state("alice"))
    b.start_rolling()
    for i in range(40):
        b.deliver("alice", cyrus.make_message(200 + i, 1500 + 13 * i))
    on(b, ("select", ("INBOX",)),
       ("uid", ("STORE", "1:5", "+FLAGS", r"(\Flagged)")),
       ("uid", ("STORE", "6", "+FLAGS", r"(\Deleted)")), ("expunge", ()),
       ("rename", ('"Reisen 2026"', '"Reisen B"')),
       ("delete", ("Tmp",)), ("create", ("Neu",)))
    b.append("alice", "Neu", cyrus.make_message(300, 2100))
    want = converge(b, a, USERS)
    wait_caught_up(relay, store="s17ba")
    names = sorted(want["alice"]["mailboxes"])
    for f in ("Archiv", "Archiv/Alt", "Projekte", "Work/Sub", "Reisen B",
              "Neu"):
        check(f in names, names)
    check("Tmp" not in names and "Reisen 2026" not in names, names)
    eq(len(want["alice"]["mailboxes"]["Work/Sub"]["messages"]), 2)
    eq(direct_applies(b, a, "alice"), [])
    text = relay.logtext()
    journal = pair.journal("s17ba")
    check("event=repair_unmailbox" not in text, text)
    eq(unproven(pair.tap_a, journal), [])
    ra = relay.status("s17ba")["stores"][0]["replicas"][0]
    eq((ra["state"], ra["lag_records"]), ("streaming", 0))
    bodies = len(re.findall(r"^\d+ \S+ BODY ", journal, flags=re.M))
    if seed:
        # s17ba took what A holds: B was answered as A itself would
        # answer, sent its own rename and deletion, and the bodies of
        # the 41 new messages only -- none of the folders it already had.
        check("store=s17ba replica=a event=seeded" in text, text)
        check("store=s17ba replica=a event=repair" not in text, text)
        check(re.search(r"^\d+ \S+ APPLY RENAME %\(OLDMBOXNAME "
                        r'"user\.alice\.Reisen 2026" NEWMBOXNAME '
                        r'"user\.alice\.Reisen B"', journal, flags=re.M),
              journal)
        check(bodies <= 41, "%d bodies sent again" % bodies)
    else:
        # s17ba knows only what B sent since the switch while A holds
        # the whole user: the repairs leave A's other folders alone.
        check("store=s17ba replica=a event=repair_user user=alice "
              "complete=no" in text, text)
        check("store=s17ba replica=a event=repair_left mailbox=user.alice."
              "Work.Sub" in text, text)
        check(ra["left_alone"] >= 5 and "user.alice.Archiv" in
              ra["left_alone_names"], ra)
        check(bodies > 41, "%d bodies" % bodies)
    env["show"] = relay.ctl("status", "s17ba").stdout

    # Failback: B stops, A is master again through s17ab (its shadow is
    # from before the failover: stale).
    b.stop_rolling()
    wait_caught_up(relay, store="s17ba")
    eq(a.state("alice"), b.state("alice"))
    a.start_rolling()
    for i in range(5):
        a.deliver("alice", cyrus.make_message(400 + i, 2300))
    on(a, ("select", ("INBOX",)),
       ("uid", ("STORE", "7", "+FLAGS", r"(\Deleted)")), ("expunge", ()),
       ("rename", ('"Reisen B"', '"Reisen C"')),
       ("delete", ("Archiv/Alt",)))
    want = converge(a, b, USERS)
    wait_caught_up(relay, store="s17ab")
    names = sorted(want["alice"]["mailboxes"])
    for f in ("Archiv", "Projekte", "Work/Sub", "Reisen C", "Neu"):
        check(f in names, names)
    check("Archiv/Alt" not in names, names)
    eq(direct_applies(a, b, "alice"), [])
    eq(unproven(pair.tap_b, pair.journal("s17ab")), [])
    text = relay.logtext()
    check("event=link_failed" not in text, text)
    log.flush()
    check(not log.errors(mark), log.errors(mark))


@test
def failover_and_failback_lose_nothing_where_the_relay_knows_little():
    try:
        failover_and_failback(seed=False)
    finally:
        stop_paths()


@test
def failover_and_failback_seeded_from_the_replica_resend_nothing():
    try:
        failover_and_failback(seed=True)
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_failover", stop_paths)
