#!/usr/bin/env python3
"""test_fanout.py -- the whole path with real Cyrus at both ends: a Debian
Cyrus master replicates into syncrelay, and syncrelay replays the store's
journal into a real Cyrus replica's sync_server.  The replica must end up
showing, over IMAP, exactly what the master shows (UIDs, flags, modseqs,
bodies, folders, subscriptions), with no error logged by either Cyrus;
a replica taken down for maintenance catches up when it returns, and a
relay restarted mid-way resumes from the cursor it stored.
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import Relay, check, eq, run, test
from relaytest import populate, relay_lsn, sasldb

env = {}
USERS = ("alice", "bob")


def setup():
    root = env["root"] = tempfile.mkdtemp(prefix="syncrelay-fanout-")
    log = env["syslog"] = cyrus.Syslog(os.path.join(root, "syslog")).start()
    replica = env["replica"] = cyrus.CyrusInstance(root, "replica",
                                                   syslog=log, users=USERS)
    replica.start()
    relay = env["relay"] = Relay()
    db = os.path.join(relay.dir, "sasldb2")
    sasldb(db, "repl", cyrus.REPL_PASSWORD, "relay-test")
    relay.write_conf("allowplaintext: yes\n"
                     "sasl_sasldb_path: %s\n"
                     "sasl_mech_list: PLAIN\n"
                     "replica_authname: repl\n"
                     "replica_password: %s\n"
                     "store.s1.identity: repl\n"
                     "store.s1.replica.r1: 127.0.0.1:%d\n"
                     % (db, cyrus.REPL_PASSWORD, replica.sync_port))
    relay.start()
    master = env["master"] = cyrus.CyrusInstance(
        root, "master", syslog=log, extra=cyrus.replication_conf(relay.port))
    master.start()
    return log, relay, master, replica


def teardown():
    for k in ("master", "replica"):
        if env.get(k):
            env[k].stop_rolling()
            env[k].stop()
    if env.get("relay"):
        env["relay"].stop()
    if env.get("syslog"):
        env["syslog"].stop()
    if env.get("root"):
        shutil.rmtree(env["root"], ignore_errors=True)


def converge(master, replica, users, timeout=90.0):
    """Waits until the replica shows what the master shows for users."""
    deadline = time.time() + timeout
    want = {u: master.state(u) for u in users}
    got = None
    while time.time() < deadline:
        got = {u: replica.state(u) for u in users}
        if got == want:
            return want
        time.sleep(0.5)
    for u in users:
        if got[u] != want[u]:
            raise AssertionError("replica never matched the master for %s:\n"
                                 "master:  %r\nreplica: %r"
                                 % (u, want[u], got[u]))
    return want


def no_errors(log, mark, relay):
    log.flush()
    check(not log.errors(mark), log.errors(mark))
    check("event=link_failed" not in relay.logtext(), relay.logtext())


@test
def test_one_shot_user_reaches_the_replica():
    log, relay, master, replica = setup()
    mark = log.mark()
    populate(master, "alice", 60, big={7})
    rc, out, err = master.sync_client(["-u", "alice"], timeout=180)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    relay.wait_log("event=link_up", timeout=30)
    st = converge(master, replica, ["alice"])["alice"]
    check(len(st["mailboxes"]) == 4, st["mailboxes"].keys())
    check(sum(len(b.get("messages", {})) for b in
              st["mailboxes"].values()) >= 60, "messages missing")
    no_errors(log, mark, relay)


@test
def test_rolling_replication_and_maintenance_catch_up():
    log, relay, master, replica = (env["syslog"], env["relay"],
                                   env["master"], env["replica"])
    mark = log.mark()
    master.create_user("bob")
    master.start_rolling()
    for i in range(5):
        master.deliver("bob", cyrus.make_message(2000 + i, 2500))
    converge(master, replica, ["alice", "bob"])
    # The replica goes down for maintenance; mail keeps arriving.
    replica.stop()
    lsn0 = relay_lsn(relay)
    for i in range(20):
        master.deliver("bob", cyrus.make_message(2100 + i, 4000 + i * 50))
        master.deliver("alice", cyrus.make_message(2200 + i, 3000))
    m = master.imap("alice")
    try:
        cyrus.imap_ok(*m.create("Archive"))
        m.select("INBOX")
        cyrus.imap_ok(*m.uid("STORE", "1:5", "+FLAGS", r"(\Answered)"))
        cyrus.imap_ok(*m.uid("STORE", "6", "+FLAGS", r"(\Deleted)"))
        cyrus.imap_ok(*m.expunge())
        cyrus.imap_ok(*m.rename("Sent", "Outbox"))
    finally:
        m.logout()
    deadline = time.time() + 60
    while relay_lsn(relay) < lsn0 + 20 and time.time() < deadline:
        time.sleep(0.5)
    check(relay_lsn(relay) >= lsn0 + 20, "the relay took no new records")
    relay.wait_log("event=link_down", timeout=30)
    # Back from maintenance: it catches up from its cursor.
    replica.start()
    converge(master, replica, ["alice", "bob"], timeout=120)
    eq(master.stop_rolling(), 0)
    no_errors(log, mark, relay)


@test
def test_relay_restart_resumes_from_the_cursor():
    log, relay, master, replica = (env["syslog"], env["relay"],
                                   env["master"], env["replica"])
    mark = log.mark()
    relay.stop()
    since = len(relay.logtext())
    relay.start()
    # The link resumes where the replica's cursor says, not from LSN 1.
    deadline = time.time() + 30
    while ("event=link_up" not in relay.logtext()[since:] and
           time.time() < deadline):
        time.sleep(0.1)
    text = relay.logtext()[since:]
    check("event=link_up" in text, text)
    last = text[text.find("event=link_up"):].split("\n")[0]
    check(" acked=0" not in last and "acked=" in last, last)
    for i in range(5):
        master.deliver("bob", cyrus.make_message(3000 + i, 2000))
    rc, out, err = master.sync_client(["-u", "bob"], timeout=120)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    converge(master, replica, ["alice", "bob"])
    no_errors(log, mark, relay)


if __name__ == "__main__":
    try:
        run("test_fanout")
    finally:
        teardown()
