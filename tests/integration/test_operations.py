#!/usr/bin/env python3
"""test_operations.py -- what an operator uses in a maintenance window:
syncrelayctl's status (text and JSON, checked field by field), lag
figures against a backlog whose size is known exactly, the journal
listing, pause and resume, wait, reload, and a catch-up rate limit.  The
replicas are real Debian Cyrus sync_servers fed by a real Cyrus master.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import (BUILDDIR, authed_client, check, eq, free_port, run,
                     sasl_relay, test)
from relaytest import (CyrusPath, converge, populate, stop_paths,
                       sync_user, wait_caught_up)


SEG_HEADER = 32
REC_HEADER = 56

LINK_STATES = {"down", "connecting", "login", "catching up", "streaming",
               "repairing", "failed", "paused"}


def check_types(obj, schema, where="status"):
    """obj must have exactly schema's keys, each of the given type (a type,
    a tuple of types, a nested dict schema, or [schema] for a list)."""
    check(isinstance(obj, dict), "%s: not an object: %r" % (where, obj))
    eq(sorted(obj), sorted(schema))
    for k, t in schema.items():
        v = obj[k]
        if isinstance(t, dict):
            check_types(v, t, where + "." + k)
        elif isinstance(t, list):
            check(isinstance(v, list), "%s.%s: not a list" % (where, k))
            for i, item in enumerate(v):
                if isinstance(t[0], dict):
                    check_types(item, t[0], "%s.%s[%d]" % (where, k, i))
                else:
                    check(isinstance(item, t[0]), "%s.%s[%d]: %r is not %s"
                          % (where, k, i, item, t[0]))
        else:
            check(isinstance(v, t) and not (t is int and isinstance(v, bool)),
                  "%s.%s: %r is not %s" % (where, k, v, t))


NUM = (int, float)
OPT_NUM = (int, float, type(None))
REPLICA_SCHEMA = {
    "name": str, "address": str, "state": str, "paused": bool,
    "reason": str, "cursor_lsn": int, "lag_records": int, "lag_bytes": int,
    "lag_seconds": NUM, "replay_rate_records_per_second": NUM,
    "eta_seconds": OPT_NUM, "replayed_records": int, "replayed_bytes": int,
    "connects": int, "last_error": str, "last_error_age_seconds": OPT_NUM,
    "left_alone": int, "left_alone_names": str,
    "waiting_seconds": NUM, "checking": bool, "check_reason": str,
    "needs_seed": str, "seeding": (dict, type(None)),
    "parked": int, "parked_list": [{
        "kind": str, "name": str, "reply": str, "lsn": int, "tries": int,
        "since_seconds": NUM, "next_try_seconds": NUM}],
    "errors": dict}
STATUS_SCHEMA = {
    "pid": int, "time": NUM,
    "stores": [{
        "name": str, "identity": str, "failed": bool,
        "master": {"connected": bool, "peer": str, "sessions": int,
                   "hosts": int, "peers": [str],
                   "last_command_age_seconds": OPT_NUM},
        "head_lsn": int, "first_lsn": int, "journal_bytes": int,
        "journal_segments": int, "ingested_records": int,
        "ingested_bytes": int, "errors": dict,
        "disk": {"refusing": bool, "full": bool, "since": OPT_NUM,
                 "free_bytes": int, "floor_bytes": int,
                 "storage_failed": bool},
        "replicas": [REPLICA_SCHEMA]}]}


def valid_status(relay, store=None):
    st = relay.status(store)
    check_types(st, STATUS_SCHEMA)
    for s in st["stores"]:
        for r in s["replicas"]:
            check(r["state"] in LINK_STATES, r)
            eq(r["lag_records"], max(0, s["head_lsn"] - r["cursor_lsn"]))
            check(r["lag_bytes"] >= 0 and r["lag_seconds"] >= 0, r)
            if r["lag_records"] == 0:
                eq((r["lag_bytes"], r["lag_seconds"]), (0, 0))
    return st


def replica_of(st, store, name):
    for s in st["stores"]:
        if s["name"] == store:
            for r in s["replicas"]:
                if r["name"] == name:
                    return s, r
    raise AssertionError("no %s/%s in %r" % (store, name, st))


def journal_bytes_after(relay, lsn, count):
    """What the records after lsn take in the journal (header and stored
    payload each), as the offline tool reports them; there must be count
    of them."""
    jdir = os.path.join(relay.dir, "data/s1/journal")
    dump = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"),
                           "dump", jdir, "-f", str(lsn + 1)],
                          capture_output=True, text=True, timeout=30).stdout
    stored = [int(x) for x in re.findall(r" stored=(\d+)$", dump, re.M)]
    eq(len(stored), count)
    return sum(stored) + REC_HEADER * count




@test
def status_and_lag_of_a_known_backlog():
    """Exactly 100 records journaled while the replica is unreachable: the
    lag is 100 records, exactly the bytes those records take in the
    segment, and at least as many seconds as the outage lasted."""
    relay = sasl_relay({"m1": "pw1", "m2": "pw2"},
                       "store.s1.identity: m1\n"
                       "store.s1.replica.r1: 127.0.0.1:%d\n"
                       "store.s2.identity: m2\n"
                       "store.s2.replica.r1: 127.0.0.1:%d\n"
                       % (free_port(), free_port()))
    try:
        c = authed_client(relay.port, "m1", "pw1")
        t0 = time.time()
        for i in range(100):
            eq(c.cmd("APPLY SUB %%(USERID u%d MBOXNAME user.u%d.f)\r\n"
                     % (i, i)), "OK success")
        time.sleep(2.0)
        st = valid_status(relay)
        eq([s["name"] for s in st["stores"]], ["s1", "s2"])
        s1, r1 = replica_of(st, "s1", "r1")
        eq(s1["head_lsn"], 100)
        check(s1["master"]["connected"], s1)
        check(s1["master"]["peer"].startswith("127.0.0.1:"), s1)
        eq((r1["cursor_lsn"], r1["lag_records"]), (0, 100))
        check(r1["state"] in ("down", "connecting"), r1)
        check("refused" in r1["last_error"], r1)
        # The bytes behind are the segment from record 1 to its end:
        # every record's header and stored payload, as the offline tool
        # reports them.
        eq(r1["lag_bytes"], journal_bytes_after(relay, 0, 100))
        jdir = os.path.join(relay.dir, "data/s1/journal")
        segs = [f for f in os.listdir(jdir) if f.endswith(".seg")]
        eq(len(segs), 1)
        eq(r1["lag_bytes"], os.path.getsize(os.path.join(jdir, segs[0]))
           - SEG_HEADER)
        check(2.0 <= r1["lag_seconds"] <= time.time() - t0 + 0.5, r1)
        eq(s1["journal_segments"], 1)
        # The other store is untouched.
        s2, r2 = replica_of(st, "s2", "r1")
        eq((s2["head_lsn"], r2["lag_records"], r2["lag_bytes"]), (0, 0, 0))
        check(not s2["master"]["connected"], s2)
        # The text form says the same for people.
        r = relay.ctl("status", "s1")
        eq(r.returncode, 0)
        check(re.search(r"store s1 +identity m1 +head 100", r.stdout),
              r.stdout)
        check(re.search(r"replica +r1 .*(down|connecting)", r.stdout),
              r.stdout)
        check("lag 100 records" in r.stdout, r.stdout)
        r = relay.ctl("status", "nosuch")
        eq(r.returncode, 2)
        check("no store called nosuch" in r.stderr, r.stderr)
        # The backlog, decoded.
        r = relay.ctl("journal", "s1", "--from", "95")
        eq(r.returncode, 0)
        lines = r.stdout.strip().splitlines()
        # The header, r1's cursor (records below it are its backlog),
        # records 95..100.
        eq(len(lines), 1 + 1 + 6)
        eq(lines[1], "---- cursor r1 = 0")
        lines.pop(1)
        check(re.match(r"95 +\d{4}-\d\d-\d\dT[\d:.]+Z +\d+ +APPLY SUB "
                       r"u94 user\.u94\.f$", lines[1]), lines[1])
        check(lines[-1].startswith("100 "), lines[-1])
        r = relay.ctl("journal", "s1", "--limit", "3")
        eq(r.stdout.strip().splitlines()[1:], ["---- cursor r1 = 0"] + [
            l for l in r.stdout.splitlines() if re.match(r"[123] ", l)])
        # By default the listing starts after the lowest cursor; --all
        # from the oldest record; --help is no store name.
        r = relay.ctl("journal", "s1", "--all", "--limit", "1")
        check(r.stdout.splitlines()[2].startswith("1 "), r.stdout)
        r = relay.ctl("journal", "--help")
        eq(r.returncode, 0)
        check(r.stdout.startswith("usage: syncrelayctl") and
              "--all" in r.stdout, r.stdout)
        for cmd in ("status", "pause", "resume", "wait", "reset", "reload",
                    "journal", "help"):
            r = relay.ctl(cmd, "--help")
            eq((r.returncode, r.stderr), (0, ""))
            check(r.stdout.startswith("usage: syncrelayctl [-C config] "
                                      "[-s socket] " + cmd), r.stdout)
        r = relay.ctl("--help")
        eq(r.returncode, 0)
        r = relay.ctl("journal", "s1", "--lsn", "42", "--full")
        eq(r.returncode, 0)
        check("APPLY SUB %(USERID u41 MBOXNAME user.u41.f)" in r.stdout,
              r.stdout)
        r = relay.ctl("journal", "s1", "--lsn", "101", "--full")
        eq(r.returncode, 2)
        check("no record 101" in r.stderr, r.stderr)
        # --follow shows records as they come, until interrupted.
        p = subprocess.Popen([os.path.join(BUILDDIR, "syncrelayctl"), "-C",
                              relay.conf, "journal", "s1", "--from", "100",
                              "--follow"], stdout=subprocess.PIPE, text=True)
        eq(c.cmd("APPLY SUB %(USERID late MBOXNAME user.late)\r\n"),
           "OK success")
        deadline = time.time() + 10
        out = ""
        while time.time() < deadline and "user.late" not in out:
            time.sleep(0.3)
            r = relay.ctl("journal", "s1", "--lsn", "101", "--full")
            out = r.stdout
        p.terminate()
        followed = p.communicate(timeout=10)[0]
        check(re.search(r"^101 .*APPLY SUB", followed, re.M), followed)
        # Requests the daemon does not know get a clear answer.
        r = relay.ctl("pause", "s1", "r9")
        eq(r.returncode, 2)
        check("store s1 has no replica called r9" in r.stderr, r.stderr)
        r = relay.ctl("wait", "s1", "--timeout", "1")
        eq(r.returncode, 1)
        check("records behind" in r.stderr and "timed out" in r.stderr,
              r.stderr)
        c.close()
    finally:
        relay.stop()


USERS = ("alice",)


def setup():
    path = CyrusPath("syncrelay-ops-")
    return path.log, path.relay, path.master, path.replica


@test
def pause_resume_wait_and_outage_with_real_cyrus():
    log, relay, master, replica = setup()
    try:
        mark = log.mark()
        populate(master, "alice", 20, big=set())
        sync_user(master)
        wait_caught_up(relay)
        converge(master, replica, USERS)
        st = valid_status(relay)
        s1, r1 = replica_of(st, "s1", "r1")
        eq((r1["state"], r1["lag_records"]), ("streaming", 0))
        check(r1["replayed_records"] > 0 and r1["connects"] == 1, r1)

        # Paused: the replica hears nothing, the backlog and cursor stay.
        r = relay.ctl("pause", "s1", "r1")
        eq(r.returncode, 0)
        relay.wait_log('to="paused"')
        before = replica.state("alice")
        for i in range(5):
            master.deliver("alice", cyrus.make_message(500 + i, 2000))
        sync_user(master)
        st = valid_status(relay)
        s1, r1 = replica_of(st, "s1", "r1")
        eq((r1["state"], r1["paused"]), ("paused", True))
        check(r1["lag_records"] >= 5, r1)
        t = time.time()
        r = relay.ctl("wait", "s1", "--timeout", "2")
        eq(r.returncode, 1)
        check(time.time() - t >= 1.9, "wait returned early")
        check(re.search(r"replica r1 \(paused\): \d+ records behind",
                        r.stderr), r.stderr)
        eq(replica.state("alice"), before)
        # A pause outlives a restart of the relay.
        relay.stop()
        relay.start()
        relay.wait_log("event=started", timeout=10)
        time.sleep(1.0)
        s1, r1b = replica_of(valid_status(relay), "s1", "r1")
        eq((r1b["state"], r1b["cursor_lsn"]), ("paused", r1["cursor_lsn"]))
        eq(replica.state("alice"), before)
        # Resumed: it catches up, and wait says so.
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay, "--replica", "r1")
        converge(master, replica, USERS)
        s1, r1 = replica_of(valid_status(relay), "s1", "r1")
        eq((r1["lag_records"], r1["lag_bytes"], r1["lag_seconds"]),
           (0, 0, 0))

        # The replica itself down for maintenance: lag grows with the
        # outage, wait times out; back up, it catches up.
        replica.stop()
        down_at = time.time()
        for i in range(10):
            master.deliver("alice", cyrus.make_message(600 + i, 3000))
        sync_user(master)
        time.sleep(1.0)
        s1, r1 = replica_of(valid_status(relay), "s1", "r1")
        check(r1["state"] in ("down", "connecting"), r1)
        check(r1["lag_records"] >= 10, r1)
        eq(r1["lag_bytes"], journal_bytes_after(relay, r1["cursor_lsn"],
                                                r1["lag_records"]))
        check(1.0 <= r1["lag_seconds"] <= time.time() - down_at + 0.5, r1)
        eq(relay.ctl("wait", "s1", "--timeout", "1").returncode, 1)
        replica.start()
        wait_caught_up(relay)
        converge(master, replica, USERS)
        s1, r1 = replica_of(valid_status(relay), "s1", "r1")
        eq((r1["state"], r1["lag_records"]), ("streaming", 0))

        # reload goes through the control socket too.
        r = relay.ctl("reload")
        eq(r.returncode, 0)
        relay.wait_log("event=reloaded")
        log.flush()
        check(not log.errors(mark), log.errors(mark))
        check("event=link_failed" not in relay.logtext(), relay.logtext())
    finally:
        stop_paths()


@test
def rate_limit_set_by_reload_slows_catch_up():
    """max_bytes_per_second set with a reload holds a catch-up of about
    3.6 MB to at least the time the limit allows; without a limit the
    same relay catches up as fast as it can."""
    log, relay, master, replica = setup()
    try:
        populate(master, "alice", 4, big=set())
        sync_user(master)
        wait_caught_up(relay)
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        for i in range(3):
            master.deliver("alice", cyrus.make_message(700 + i, 1_200_000))
        sync_user(master)
        with open(relay.conf, "a") as f:
            f.write("store.s1.replica.r1.max_bytes_per_second: 1M\n")
        eq(relay.ctl("reload").returncode, 0)
        relay.wait_log("event=link_reconfigured relogin=no "
                       "max_bytes_per_second=1048576")
        t = time.time()
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        # A reload in the middle of the throttled catch-up (nothing
        # changed) must not leave the body being sent stuck.
        time.sleep(1.0)
        eq(relay.ctl("reload").returncode, 0)
        wait_caught_up(relay, timeout=60)
        took = time.time() - t
        # 3.6 MB at 1 MiB/s with a one-second burst and one 256 KiB
        # chunk of overshoot cannot take less than about 2.3 s.
        check(took >= 2.3, "catch-up took %.2fs under a 1 MiB/s limit"
              % took)
        converge(master, replica, USERS)
        s1, r1 = replica_of(valid_status(relay), "s1", "r1")
        check(r1["replayed_bytes"] > 3_600_000, r1)
        # A pause in the middle of a throttled body: the command in
        # flight finishes, then the link pauses; resume goes on.
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        for i in range(3):
            master.deliver("alice", cyrus.make_message(750 + i, 1_200_000))
        sync_user(master)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        time.sleep(0.8)
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        deadline = time.time() + 20
        while time.time() < deadline and \
                replica_of(relay.status(), "s1", "r1")[1]["state"] != \
                "paused":
            time.sleep(0.2)
        eq(replica_of(relay.status(), "s1", "r1")[1]["state"], "paused")
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay, timeout=60)
        converge(master, replica, USERS)
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_operations", stop_paths)
