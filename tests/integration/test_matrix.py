#!/usr/bin/env python3
"""test_matrix.py -- syncrelay between every Cyrus people run: a master
of one version (3.6.1, Debian 12's, on the host; 3.10.2, trixie's, or
3.12.4, sid's, each in a cached Debian root, see cyrusroots.py)
replicating through syncrelay into a replica of another.  Each pairing
runs the one-shot modes (-u, -m, -A, -s, then all of them again, which
must apply nothing), rolling replication of every kind of change (mail,
flags and user keywords, expunge, rename, delete, intermediate folders,
subscriptions, metadata, quota, sieve, a body over 1 MB), a replica outage and its
catch-up, a replica changed behind the relay's back and repaired, and a
SIGKILL of the relay in the middle of rolling replication.  A pairing
passes when IMAP shows the same on both sides (CyrusInstance.state()),
a direct sync_client from master to replica then applies nothing, and
no Cyrus of any version logged SYNCERROR, IOERROR or "bailing out".
Last, one store fed by a 3.12 master replays to two replicas of other
versions at once.

Which pairings run: SYNCRELAY_MATRIX=all runs the nine and the two-
replica store (scripts/test --matrix); unset, make check runs the
representative part: 3.6 -> 3.12, 3.12 -> 3.6 and 3.12 -> 3.12 (the 3.6
diagonal is what every other real-Cyrus test runs).  SYNCRELAY_MATRIX=
"3.10-3.12,3.6-3.6" picks pairs.  Each pairing prints its time.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
import cyrusroots
from harness import check, eq, run, test
from relaytest import (CyrusPath, direct_applies, identical, imap_steps,
                       populate, stop_paths, sync_user, wait_caught_up)

USERS = ("alice", "bob")
BAD = cyrus.ERROR_PATTERNS + ("bailing out",)
CI_PAIRS = (("3.6", "3.12"), ("3.12", "3.6"), ("3.12", "3.12"))
SIEVE = (b'require "fileinto";\r\n'
         b'if header :contains "subject" "x" { fileinto "Work"; }\r\n')


def selected():
    """([(master, replica) ...], whether the two-replica store runs)."""
    want = os.environ.get("SYNCRELAY_MATRIX", "")
    if want == "all":
        return ([(m, r) for m in cyrusroots.ALL for r in cyrusroots.ALL],
                True)
    if not want:
        return list(CI_PAIRS), False
    pairs = [tuple(p.split("-")) for p in want.split(",") if "-" in p]
    return pairs, "fanout" in want.split(",")


# What the master's own sync_client logs when the test SIGKILLs the relay
# under it: the connection's end, seen in the middle of a command.
KILL_SEEN = ("end of file reached", "Connection reset by peer",
             "Broken pipe", "bailing out! Bad protocol")


def no_cyrus_errors(log, mark, kills=()):
    """No SYNCERROR, IOERROR or "bailing out" since mark, but for the
    master's sync_client losing its connection in the windows kills
    [(from mark, to mark)] where the test killed the relay."""
    log.flush()
    bad = []
    pos = mark
    for line in log.text(mark).splitlines(True):
        at, pos = pos, pos + len(line.encode())
        if not any(p in line for p in BAD):
            continue
        if any(a <= at < b for a, b in kills) and \
                " master/sync_client[" in line and \
                any(k in line for k in KILL_SEEN):
            continue
        bad.append(line.rstrip("\n"))
    check(not bad, "Cyrus logged:\n" + "\n".join(bad))


def one_shot_applies(master, args):
    """sync_client -v -v ARGS into the relay; the APPLYs it sent."""
    rc, out, err = master.sync_client(["-v", "-v"] + list(args),
                                      timeout=180)
    check(rc == 0, "sync_client %s rc=%r\n%s%s" % (args, rc, out, err))
    return [line for line in (out + err).splitlines()
            if ">APPLY " in line]


def restart_rolling(master):
    """A rolling sync_client exits when its target goes away; cyrus.conf's
    DAEMON section would start it again."""
    if master.rolling is None or master.rolling.poll() is not None:
        master.stop_rolling()
        master.start_rolling()


def every_kind_of_change(master, n):
    """Mail, flags with user keywords, expunge, rename, delete, folders,
    subscriptions, metadata, quota, sieve and a body over 1 MB."""
    for i in range(6):
        master.deliver(("alice", "bob")[i % 2],
                       cyrus.make_message(n + i, 1800 + 300 * i))
    master.append("bob", "INBOX", cyrus.make_message(n + 10, 1_100_000))
    folder = "F%d" % n
    imap_steps(master, "alice",
               ("create", (folder,)),
               ("subscribe", (folder,)),
               ("_simple_command", ("SETMETADATA", folder,
                                    '(/private/comment "note %d")' % n)),
               ("select", ("INBOX",)),
               ("uid", ("STORE", "1:4", "+FLAGS",
                        r"(\Answered $Forwarded Project%d)" % n)),
               ("uid", ("STORE", "2", "-FLAGS", r"(\Seen)")),
               ("uid", ("STORE", "6", "+FLAGS", r"(\Deleted)")),
               ("expunge", ()))
    master.append("alice", folder, cyrus.make_message(n + 20, 2500),
                  flags=r"(\Flagged Keyword%d)" % n)
    imap_steps(master, "alice", ("rename", (folder, folder + "-r")),
               ("unsubscribe", ("Work",)), ("subscribe", ("Work",)))
    # Parents that exist only because a child does (intermediate
    # mailboxes, which 3.12 no longer lists in GET USER).
    imap_steps(master, "bob", ("create", ("Deep%d/x/y" % n,)))
    master.append("bob", "Deep%d/x/y" % n, cyrus.make_message(n + 30, 2000))
    imap_steps(master, "bob", ("create", ("Gone%d" % n,)))
    imap_steps(master, "bob", ("delete", ("Gone%d" % n,)))
    a = master.imap()
    try:
        cyrus.imap_ok(*a.setquota(master.mailbox_name("bob"),
                                  "(STORAGE %d MESSAGE %d)" % (300000 + n,
                                                               1000 + n)))
    finally:
        a.logout()
    master.put_sieve("bob", "s%d" % n, SIEVE)


def start(mv, rv, nreplicas=1, rvs=None):
    path = CyrusPath("syncrelay-matrix-", nreplicas=nreplicas, users=USERS,
                     versions=rvs or [rv], master_version=mv)
    # Each Cyrus is of the line asked for, not the host's.
    for inst, v in [(path.master, mv)] + list(zip(path.replicas,
                                                  rvs or [rv])):
        got = inst.server_version()
        check(got and got.startswith(v + "."), "%s runs Cyrus %s, not %s"
              % (inst.name, got, v))
        if got != cyrusroots.VERSIONS[v][1]:
            print("# %s runs Cyrus %s (docs/compatibility.md: %s)"
                  % (inst.name, got, cyrusroots.VERSIONS[v][1]))
    return path


def one_shot(path):
    """-u, -m, -A and -s into the relay, then the same again: nothing."""
    master = path.master
    populate(master, "alice", 16, big={3})
    master.put_sieve("alice", "vacation", SIEVE)
    master.create_user("bob")
    for i in range(3):
        master.deliver("bob", cyrus.make_message(500 + i, 2200))
    modes = (["-u", "alice"], ["-m", master.mailbox_name("bob")], ["-A"],
             ["-s", "bob"])
    for args in modes:
        rc, out, err = master.sync_client(args, timeout=180)
        check(rc == 0, "sync_client %s rc=%r\n%s%s" % (args, rc, out, err))
    wait_caught_up(path.relay)
    for r in path.replicas:
        identical(master, r, USERS)
    for args in modes:
        eq(one_shot_applies(master, args), [])


def rolling(path, n):
    master = path.master
    restart_rolling(master)
    every_kind_of_change(master, n)
    restart_rolling(master)
    for r in path.replicas:
        identical(master, r, USERS)
    wait_caught_up(path.relay)


def outage(path, n):
    """The replica down while the master changes everything; back, it
    catches up from its cursor."""
    master, relay, replica = path.master, path.relay, path.replica
    since = len(relay.logtext())
    replica.stop()
    every_kind_of_change(master, n)
    relay.wait_log("replica=r1 event=link_down", timeout=60)
    check("replica=r1 event=link_down" in relay.logtext()[since:],
          relay.logtext()[since:])
    replica.start()
    restart_rolling(master)
    wait_caught_up(relay, timeout=180)
    identical(master, replica, USERS)


def divergence(path, n):
    """Folders deleted, renamed and created on the replica behind the
    relay's back; the link repairs them to the master's."""
    master, relay, replica = path.master, path.relay, path.replica
    eq(relay.ctl("pause", "s1", "r1").returncode, 0)
    relay.wait_log('to="paused"')
    imap_steps(replica, "alice", ("delete", ("Work/2026",)),
               ("rename", ("Sent", "Sent-old")),
               ("create", ("Extra%d" % n,)))
    master.append("alice", "Work/2026", cyrus.make_message(n, 2500))
    master.append("alice", "Sent", cyrus.make_message(n + 1, 2600))
    restart_rolling(master)
    sync_user(master)
    eq(relay.ctl("resume", "s1", "r1").returncode, 0)
    wait_caught_up(relay, timeout=120)
    identical(master, replica, USERS)
    check("event=repair " in relay.logtext(), relay.logtext()[-3000:])


def killed(path, n):
    """SIGKILL the relay in the middle of rolling replication; returns the
    syslog window [(from, to)] in which the master's sync_client may log
    that it lost the relay."""
    master, relay = path.master, path.relay
    restart_rolling(master)
    window = None
    for i in range(30):
        master.deliver(("alice", "bob")[i % 2],
                       cyrus.make_message(n + i, 2000 + 50 * i))
        if i == 15:
            path.log.flush()
            window = path.log.mark()
            relay.signal(signal.SIGKILL)
            relay.proc.wait(10)
            relay.start()
            # The rolling sync_client lost its target: it exits, or
            # sits in its reconnect backoff for minutes; a supervisor
            # (cyrus.conf's DAEMON section, systemd) starts it anew.
            # What it had not done stays in sync/log for the new one.
            if master.rolling and master.rolling.poll() is None:
                master.rolling.kill()
                master.rolling.wait()
            path.log.flush()
            window = (window, path.log.mark())
        restart_rolling(master)
    imap_steps(master, "alice", ("select", ("INBOX",)),
               ("uid", ("STORE", "1:*", "+FLAGS", "(AfterKill)")))
    restart_rolling(master)
    try:
        for r in path.replicas:
            identical(master, r, USERS, timeout=180)
    except AssertionError:
        with open(master.rolling_log, errors="replace") as f:
            print("rolling sync_client:\n" + f.read()[-3000:])
        print("relay:\n" + relay.logtext()[-4000:])
        raise
    wait_caught_up(relay, timeout=120)
    return [window]


def pairing(mv, rv):
    started = time.time()
    path = start(mv, rv)
    try:
        mark = path.log.mark()
        one_shot(path)
        rolling(path, 20000)
        outage(path, 30000)
        divergence(path, 40000)
        kills = killed(path, 50000)
        eq(path.master.stop_rolling(), 0)
        for u in USERS:
            eq(direct_applies(path.master, path.replica, u), [])
        no_cyrus_errors(path.log, mark, kills)
    finally:
        stop_paths()
    print("pairing %s -> %s: %.0f s" % (mv, rv, time.time() - started),
          flush=True)


def register(mv, rv):
    def fn():
        pairing(mv, rv)
    fn.__name__ = "master_%s_to_replica_%s" % (mv.replace(".", "_"),
                                               rv.replace(".", "_"))
    test(fn)


def two_replicas_of_other_versions():
    """One store, a 3.12 master, replicas 3.6 and 3.10."""
    started = time.time()
    path = start("3.12", None, nreplicas=2, rvs=["3.6", "3.10"])
    try:
        mark = path.log.mark()
        one_shot(path)
        rolling(path, 20000)
        kills = killed(path, 50000)
        eq(path.master.stop_rolling(), 0)
        for r in path.replicas:
            for u in USERS:
                eq(direct_applies(path.master, r, u), [])
        no_cyrus_errors(path.log, mark, kills)
    finally:
        stop_paths()
    print("3.12 -> 3.6 + 3.10: %.0f s" % (time.time() - started),
          flush=True)


PAIRS, FANOUT = selected()
for _mv, _rv in PAIRS:
    register(_mv, _rv)
if FANOUT:
    test(two_replicas_of_other_versions)

if __name__ == "__main__":
    run("test_matrix", stop_paths)
