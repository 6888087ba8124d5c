#!/usr/bin/env python3
"""test_fanout.py -- the whole path with real Cyrus at both ends: a Debian
Cyrus master replicates into syncrelay, and syncrelay replays the store's
journal into two real Cyrus replicas' sync_servers.  The replicas must end
up showing, over IMAP, exactly what the master shows (UIDs, flags,
modseqs, bodies, folders, subscriptions), and a direct sync_client from
the master must find nothing to send them, with no error logged by any
Cyrus.  A replica taken down for maintenance catches up when it returns
while the other stays current; a relay restarted resumes from the stored
cursors; killing the replica or the relay during catch-up loses and
duplicates nothing; a replica changed behind the relay's back stops its
link with a precise reason.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, converge, cursor_lsn, direct_applies,
                       no_errors, populate, relay_lsn, stop_paths,
                       sync_user)

env = {}
USERS = ("alice", "bob")


def setup():
    path = CyrusPath(
        "syncrelay-fanout-", nreplicas=2, users=USERS,
        extra="store.s1.replica.r1.restart_bytes: 1M\n"
              "store.s1.replica.r2.compress: yes\n")
    env["replica"], env["replica2"] = path.replicas
    env["syslog"], env["relay"], env["master"] = (path.log, path.relay,
                                                  path.master)
    return path.log, path.relay, path.master, path.replica


def replicas():
    return env["replica"], env["replica2"]


@test
def test_one_shot_user_reaches_the_replicas():
    log, relay, master, replica = setup()
    mark = log.mark()
    populate(master, "alice", 60, big={7})
    master.put_sieve("alice", "vacation", b'require "fileinto";\r\n'
                     b'if header :contains "subject" "x" '
                     b'{ fileinto "Work"; }\r\n')
    m = master.imap("alice")
    try:
        cyrus.imap_ok(*m._simple_command(
            "SETMETADATA", "INBOX", '(/private/comment "mine")'))
    finally:
        m.logout()
    rc, out, err = master.sync_client(["-u", "alice"], timeout=180)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    relay.wait_log("event=link_up", timeout=30)
    for r in replicas():
        st = converge(master, r, ["alice"])["alice"]
        check(len(st["mailboxes"]) == 4, st["mailboxes"].keys())
        # Sieve and metadata came through too (converge compared them).
        eq(list(st["sieve"]), ["vacation"])
        check(st["sieve"]["vacation"][0], st["sieve"])
        check(any("project files" in x for x in
                  st["mailboxes"]["Work"]["metadata"]), st["mailboxes"])
        check(any("mine" in x for x in
                  st["mailboxes"]["INBOX"]["metadata"]), st["mailboxes"])
        check(sum(len(b.get("messages", {})) for b in
                  st["mailboxes"].values()) >= 60, "messages missing")
    eq(cursor_lsn(relay, "r1"), relay_lsn(relay))
    # r2 replays under COMPRESS DEFLATE (replica_compress), r1 in clear.
    text = relay.logtext()
    check("replica=r2 event=compress_on" in text, text)
    check("replica=r1 event=compress_on" not in text, text)
    # The master itself finds nothing to send to either replica.
    for r in replicas():
        eq(direct_applies(master, r, "alice"), [])
    no_errors(log, mark, relay)


@test
def test_maintenance_catch_up_while_the_other_replica_stays_current():
    log, relay, master = env["syslog"], env["relay"], env["master"]
    r1, r2 = replicas()
    mark = log.mark()
    master.create_user("bob")
    master.start_rolling()
    for i in range(5):
        master.deliver("bob", cyrus.make_message(2000 + i, 2500))
    for r in (r1, r2):
        converge(master, r, ["alice", "bob"])
    # r1 goes down for maintenance; mail keeps arriving.
    r1.stop()
    relay.wait_log("replica=r1 event=link_down", timeout=30)
    at_stop = cursor_lsn(relay, "r1")
    for i in range(1000):
        user = ("alice", "bob")[i % 2]
        master.deliver(user, cyrus.make_message(10000 + i, 1500 + i % 3000))
    m = master.imap("alice")
    try:
        cyrus.imap_ok(*m.create("Archive"))
        cyrus.imap_ok(*m.subscribe("Archive"))
        m.select("INBOX")
        cyrus.imap_ok(*m.uid("STORE", "1:40", "+FLAGS", r"(\Answered)"))
        cyrus.imap_ok(*m.uid("STORE", "20:30", "-FLAGS", r"(\Seen)"))
        cyrus.imap_ok(*m.uid("STORE", "6", "+FLAGS", r"(\Deleted)"))
        cyrus.imap_ok(*m.expunge())
        cyrus.imap_ok(*m.rename("Sent", "Outbox"))
        cyrus.imap_ok(*m.delete("Work/2026"))
    finally:
        m.logout()
    # The other replica stays current the whole time.
    converge(master, r2, ["alice", "bob"], timeout=180)
    eq(cursor_lsn(relay, "r1"), at_stop)
    check(relay_lsn(relay) > at_stop + 1000, "the relay took too little")
    # Lag grows for r1 only: every record since it stopped, and at least
    # as many seconds as the outage has lasted.
    st = relay.status()["stores"][0]
    lag = {r["name"]: r for r in st["replicas"]}
    eq(lag["r1"]["lag_records"], st["head_lsn"] - at_stop)
    check(lag["r1"]["lag_bytes"] > 1000 * 1500 // 3, lag["r1"])
    check(lag["r1"]["lag_seconds"] > 1.0, lag["r1"])
    check(lag["r1"]["state"] in ("down", "connecting"), lag["r1"])
    eq(lag["r2"]["state"], "streaming")
    eq(relay.ctl("wait", "s1", "--replica", "r2", "--timeout",
                 "60").returncode, 0)
    # Back from maintenance: r1 catches up from its cursor.
    r1.start()
    converge(master, r1, ["alice", "bob"], timeout=180)
    deadline = time.time() + 30
    while cursor_lsn(relay, "r1") < relay_lsn(relay) and \
            time.time() < deadline:
        time.sleep(0.2)
    eq(cursor_lsn(relay, "r1"), relay_lsn(relay))
    # ... and returns to 0 once it is back.
    r = relay.ctl("wait", "s1", "--timeout", "60")
    eq(r.returncode, 0)
    for rep in relay.status()["stores"][0]["replicas"]:
        eq((rep["lag_records"], rep["lag_bytes"], rep["lag_seconds"]),
           (0, 0, 0))
    # r1 (restart_bytes 1M) let the replica free its staging on the way;
    # r2 (the default, 64M) never had that much to send at once.
    text = relay.logtext()
    check("replica=r1 event=restart" in text, text)
    check("replica=r2 event=restart" not in text, text)
    eq(master.stop_rolling(), 0)
    for r in (r1, r2):
        for u in ("alice", "bob"):
            eq(direct_applies(master, r, u), [])
    no_errors(log, mark, relay)


@test
def test_relay_restart_resumes_from_the_cursor():
    log, relay, master = env["syslog"], env["relay"], env["master"]
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
    for r in replicas():
        converge(master, r, ["alice", "bob"])
    no_errors(log, mark, relay)


def wait_link_up(relay, name, since, timeout=60.0):
    deadline = time.time() + timeout
    needle = "replica=%s event=link_up" % name
    while time.time() < deadline:
        if needle in relay.logtext()[since:]:
            return
        time.sleep(0.05)
    raise AssertionError("%s never came up:\n%s" % (name,
                                                      relay.logtext()[since:]))


@test
def test_killing_the_replica_and_the_relay_during_catch_up():
    log, relay, master = env["syslog"], env["relay"], env["master"]
    r1, r2 = replicas()
    since = len(relay.logtext())
    r1.stop()
    for i in range(200):
        master.deliver("alice", cyrus.make_message(20000 + i,
                                                   60000 + i * 500))
    rc, out, err = master.sync_client(["-u", "alice"], timeout=180)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    converge(master, r2, ["alice"])
    head = relay_lsn(relay)
    # Catch-up, interrupted: SIGKILL the replica a few times once its link
    # is up and replaying, then the relay itself.
    midway = []
    for n in range(3):
        mark = len(relay.logtext())
        r1.start()
        wait_link_up(relay, "r1", mark)
        time.sleep(0.02 + 0.05 * n)
        r1.kill()
        midway.append(cursor_lsn(relay, "r1") < head)
    mark = len(relay.logtext())
    r1.start()
    wait_link_up(relay, "r1", mark)
    time.sleep(0.05)
    relay.proc.kill()
    relay.proc.wait()
    midway.append(cursor_lsn(relay, "r1") < head)
    check(any(midway), "no kill landed during the catch-up: %r" % midway)
    relay.start()
    st = converge(master, r1, ["alice", "bob"], timeout=180)
    # No duplicates: each body appears once per mailbox, as on the master.
    for name, box in st["alice"]["mailboxes"].items():
        hashes = [m["sha1"] for m in box.get("messages", {}).values()]
        eq(len(hashes), len(set(hashes)))
    check("event=link_failed" not in relay.logtext()[since:],
          relay.logtext()[since:])


@test
def test_a_replica_changed_behind_the_relays_back_is_parked_precisely():
    """Flags changed on the replica itself push its modseqs above the
    master's; Cyrus cannot lower them again (APPLY FORCE asserts in 3.6),
    so that mailbox is parked for that replica with the reason, and the
    rest goes on: bob on r1, and everything on r2."""
    log, relay, master = env["syslog"], env["relay"], env["master"]
    r1, r2 = replicas()
    relay.stop()
    m = r1.imap("alice")
    try:
        m.select("INBOX")
        cyrus.imap_ok(*m.uid("STORE", "1:3", "+FLAGS",
                             r"(\Answered $OnReplica)"))
    finally:
        m.logout()
    m = master.imap("alice")
    try:
        m.select("INBOX")
        cyrus.imap_ok(*m.uid("STORE", "2", "+FLAGS", r"($OnMaster)"))
    finally:
        m.logout()
    since = len(relay.logtext())
    relay.start()
    mark = log.mark()
    rc, out, err = master.sync_client(["-u", "alice"], timeout=120)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    relay.wait_log("replica=r1 event=parked mailbox=user.alice ", timeout=60)
    text = relay.logtext()[since:]
    check("replica=r1 event=repair mailbox=user.alice" in text, text)
    check(re.search(r"replica=r1 event=parked mailbox=user\.alice .*"
                    r"repairing user\.alice failed: NO IMAP_SYNC_CHECKSUM.*"
                    r"UID [123] was changed on the replica \(MODSEQ \d+ "
                    r"there, \d+ on the master\): resync it from the "
                    r"master", text), text)
    check("event=link_failed" not in text, text)
    converge(master, r2, ["alice", "bob"])
    master.deliver("bob", cyrus.make_message(990, 1800))
    sync_user(master, "bob")
    converge(master, r1, ["bob"])
    # The failed replica was left as it was: nothing crashed there.
    log.flush()
    check(not log.errors(mark), log.errors(mark))


if __name__ == "__main__":
    run("test_fanout", stop_paths)
