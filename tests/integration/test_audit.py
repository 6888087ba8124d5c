#!/usr/bin/env python3
"""test_audit.py -- syncrelayctl audit with real Debian Cyrus at both
ends: the relay compares a replica with its shadow (what the master last
said) without a word to the master.  A current replica audits clean; a
replica changed behind the relay's back (a message expunged and flags
changed over IMAP there, a folder deleted there) audits with exactly
those mailboxes named, and --repair brings it back to exactly the
master's state, as IMAP and a direct sync_client both show.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from audittest import (SMALL, audit, make_mailbox, make_shared,
                       past_retention, rc, recreate_empty, refilled,
                       shared_state, until)
from relaytest import (CyrusPath, identical, imap_steps, populate,
                       stop_paths, sync_user, wait_caught_up)

USERS = ("alice", "bob")


def setup(extra=""):
    path = CyrusPath("syncrelay-audit-", users=USERS, extra=extra)
    for u in USERS:
        populate(path.master, u, 12, big=set())
        sync_user(path.master, u)
    wait_caught_up(path.relay)
    identical(path.master, path.replica, USERS)
    return path


@test
def a_current_replica_audits_clean():
    path = setup()
    try:
        relay = path.relay
        r = audit(relay)
        rc(r, 0)
        check("store s1 replica r1:" in r.stdout and "none differ" in
              r.stdout, r.stdout)
        r = audit(relay, "r1", "--json")
        rc(r, 0)
        j = json.loads(r.stdout)
        a = j["audits"][0]
        eq((a["replica"], a["users"], a["differ"]), ("r1", 2, 0))
        # Every mailbox of both users was compared: 4 folders each.
        eq(a["mailboxes"], 8)
        r = audit(relay, "--user", "bob", "--json")
        rc(r, 0)
        eq(json.loads(r.stdout)["audits"][0]["mailboxes"], 4)
        r = audit(relay, "r9")
        rc(r, 2)
        # A replica behind (its link paused while the master goes on) is
        # not audited -- never reported as differing.
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        path.master.deliver("alice", cyrus.make_message(77, 2000))
        sync_user(path.master, "alice")
        r = audit(relay, "--timeout", "2", "--json")
        rc(r, 2)
        a = json.loads(r.stdout)["audits"][0]
        eq(sorted((d["kind"], d["user"]) for d in a["mailboxes_differing"]),
           [("not_audited", "alice"), ("not_audited", "bob")])
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        rc(audit(relay), 0)
        # The master never heard of it: no sync session after setup's.
        check("event=audit" in relay.logtext(), relay.logtext()[-2000:])
    finally:
        stop_paths()


@test
def a_replica_changed_behind_the_relays_back_is_named_then_repaired():
    path = setup()
    try:
        relay, master, replica = path.relay, path.master, path.replica
        sessions = relay.logtext().count("event=login user=")
        # Behind the relay's back, on the replica: one message expunged
        # in INBOX, flags changed in Work, Work/2026 deleted.
        imap_steps(replica, "alice",
                   ("select", ("INBOX",)),
                   ("uid", ("STORE", "4", "+FLAGS", r"(\Deleted)")),
                   ("expunge", ()),
                   ("select", ("Work",)),
                   ("uid", ("STORE", "2", "+FLAGS", r"(\Flagged)")),
                   ("close", ()),
                   ("delete", ("Work/2026",)))
        r = audit(relay, "r1", "--json")
        rc(r, 1)
        a = json.loads(r.stdout)["audits"][0]
        named = sorted(d["mailbox"] for d in a["mailboxes_differing"])
        eq(named, ["user.alice", "user.alice.Work", "user.alice.Work.2026"])
        kinds = {d["mailbox"]: (d["kind"], d["what"])
                 for d in a["mailboxes_differing"]}
        check("uid 4 expunged on the replica" in kinds["user.alice"][1],
              kinds)
        check("uid 2 flags" in kinds["user.alice.Work"][1], kinds)
        eq(kinds["user.alice.Work.2026"][0], "missing")
        check("deleted on the replica" in kinds["user.alice.Work.2026"][1],
              kinds)
        # The text form names them too, one line each.
        r = audit(relay)
        rc(r, 1)
        for name in named:
            check(" %s: " % name in r.stdout, r.stdout)
        # Repair, then the replica is the master's again.
        r = audit(relay, "r1", "--repair")
        rc(r, 1)
        eq(r.stdout.count("repair: replaced"), 3)
        wait_caught_up(relay)
        r = audit(relay, "r1")
        rc(r, 0, relay.logtext()[-4000:])
        identical(master, replica, USERS)
        st = relay.status()["stores"][0]["replicas"][0]
        eq((st["state"], st["parked"]), ("streaming", 0))
        # The master saw nothing of it: no new session into the relay.
        eq(relay.logtext().count("event=login user="), sessions)
        check("event=link_failed" not in relay.logtext(),
              relay.logtext()[-3000:])
    finally:
        stop_paths()


def audit_metrics(relay):
    """(mismatched mailboxes, last audit time) of s1/r1 from /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                relay.metrics_port, timeout=10) as r:
        text = r.read().decode()
    got = {}
    for name in ("syncrelay_audit_mismatched_mailboxes",
                 "syncrelay_audit_last_timestamp_seconds"):
        m = re.search(r'^%s\{store="s1",replica="r1"\} (\S+)$' % name, text,
                      re.M)
        check(m, text)
        got[name] = float(m.group(1))
    return (got["syncrelay_audit_mismatched_mailboxes"],
            got["syncrelay_audit_last_timestamp_seconds"])


def metrics_until(relay, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = audit_metrics(relay)
        if cond(got):
            return got
        time.sleep(0.3)
    raise AssertionError("metrics never matched: %r\n%s" % (
        audit_metrics(relay), relay.logtext()[-3000:]))


@test
def periodic_audits_report_to_metrics():
    path = setup("replica_audit_interval: 2s\n")
    try:
        relay, master, replica = path.relay, path.master, path.replica
        t0 = time.time()
        metrics_until(relay, lambda g: g[1] >= t0 and g[0] == 0)
        imap_steps(replica, "bob", ("select", ("Work",)),
                   ("uid", ("STORE", "3", "+FLAGS", r"(\Answered)")))
        t1 = time.time()
        metrics_until(relay, lambda g: g[1] >= t1 and g[0] == 1)
        check("event=audit_differs" in relay.logtext() and
              "user.bob.Work" in relay.logtext(), relay.logtext()[-3000:])
        rc(audit(relay, "r1", "--repair"), 1)
        wait_caught_up(relay)
        t2 = time.time()
        metrics_until(relay, lambda g: g[1] >= t2 and g[0] == 0)
        identical(master, replica, USERS)
    finally:
        stop_paths()


@test
def a_replica_back_empty_from_maintenance_is_refilled_before_wait():
    """Issue 19, test 5: the replica's disk was replaced (its Cyrus
    destroyed and re-created empty, same ports); the master then changes
    one folder of one user.  The link's check after the outage brings
    every user back, and wait does not say caught up before: the moment
    it does, IMAP shows the replica identical to the master."""
    path = setup()
    try:
        relay, master, old = path.relay, path.master, path.replica
        name = make_shared(master, relay)
        mark = len(relay.logtext())
        new = recreate_empty(path, USERS)
        master.deliver("alice", cyrus.make_message(500, 2500))
        sync_user(master, "alice")
        wait_caught_up(relay, timeout=240)
        refilled(relay, master, new, USERS, name, mark,
                 "event=check_needed")
    finally:
        stop_paths()


@test
def a_replica_emptied_while_the_relay_was_down_is_refilled_before_wait():
    """The relay cannot know what became of a replica while it was down
    itself: after a restart every link checks its replica before wait
    says caught up.  Here the replica came back empty while the relay
    was stopped, and nothing changed on the master since."""
    path = setup()
    try:
        relay, master = path.relay, path.master
        name = make_shared(master, relay)
        relay.stop()
        new = recreate_empty(path, USERS)
        mark = len(relay.logtext())
        relay.start()
        until(lambda: "event=opened" in relay.logtext()[mark:],
              "the store opened")
        wait_caught_up(relay, timeout=240)
        refilled(relay, master, new, USERS, name, mark,
                 "event=check_needed reason=\"the relay started")
    finally:
        stop_paths()


def purge(inst):
    """Removes the files of expunged messages on inst now (cyr_expire
    -X 0), as its nightly run would: then only another replica or the
    master still holds those bodies."""
    argv = inst._cmd([os.path.join(cyrus.CYRUS_BIN, "cyr_expire"), "-C",
                      inst.imapd_conf, "-X", "0", "-D", "0"])
    p = subprocess.run(argv, capture_output=True, env=inst._env(),
                       timeout=60)
    check(p.returncode == 0, p.stderr)



@test
def a_repair_takes_bodies_retention_dropped_from_another_replica():
    """Three replicas; retention dropped all but the newest journal
    segment, so the first messages' bodies are gone from the journal.
    A message expunged (and purged) on r2 and on r3 behind the relay's
    back: with r1 paused, --repair of r2 asks r3 (which lacks it too)
    and leaves it, saying only the master can resend; with r1 back,
    --repair --from r3 asks r3, then r1, which holds every dropped body,
    replaces the mailbox on r2 with the bodies from r1 (GET FETCH
    through its link), and r2 ends identical to the master; the next
    audit exits 0.  The master hears nothing."""
    path = CyrusPath("syncrelay-auditfrom-", nreplicas=3, users=USERS,
                     extra=SMALL + "log_level: debug\n")
    try:
        relay, master = path.relay, path.master
        r2, r3 = path.replicas[1], path.replicas[2]
        past_retention(path, USERS)
        sessions = relay.logtext().count("event=login user=")
        # r1 paused: no other replica caught up.  On r2, behind the
        # relay's back, a message expunged and its file purged; r2's
        # Cyrus restarted (its sync_server's staged bodies go too).
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        imap_steps(r3, "alice",
                   ("select", ("INBOX",)),
                   ("uid", ("STORE", "2", "+FLAGS", r"(\Deleted)")),
                   ("expunge", ()))
        purge(r3)
        imap_steps(r2, "alice",
                   ("select", ("INBOX",)),
                   ("uid", ("STORE", "2", "+FLAGS", r"(\Deleted)")),
                   ("expunge", ()))
        purge(r2)
        r2.stop()
        r2.start()
        # The check after the outage finds it and cannot repair it: r2
        # needs a seed, saying why; the explicit repair says so too.
        st = until(lambda: [s for s in [relay.status()["stores"][0][
            "replicas"][1]] if s["needs_seed"]], "r2 marked needs_seed")[0]
        check("only the master can resend them" in st["needs_seed"], st)
        # Asked in turn: --from (none such), r3 (lacks it), r1 (paused).
        r = audit(relay, "r2", "--repair", "--from", "r9", "--timeout",
                  "30")
        rc(r, 1)
        check(re.search(r"retention dropped \d+ of its bodies from the "
                        r"journal; no other replica has them all \(the "
                        r"store has no other replica called r9; r3 lacks 1 "
                        r"of them; no other replica of the store is caught "
                        r"up to give them\): only the master can resend "
                        r"them", r.stdout), r.stdout)
        # Until repaired, wait does not say r2 is caught up.
        eq(relay.ctl("wait", "s1", "--replica", "r2", "--timeout",
                     "2").returncode, 1)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay, "--replica", "r1")
        rc(audit(relay, "r2"), 1)
        # --from r3, which lacks a body: r1 is asked next, and holds
        # them all: r2 repaired with its bodies.
        r = audit(relay, "r2", "--repair", "--from", "r3")
        rc(r, 1)
        check(re.search(r"user\.alice: .*\n +repair: replaced: removed on "
                        r"the replica, then sent whole from the shadow "
                        r"\(bodies from the journal and, where retention "
                        r"dropped them, from r1; r3 lacks 1 of them\)",
                        r.stdout), r.stdout)
        until(lambda: relay.status()["stores"][0]["replicas"][1][
            "parked"] == 0, "r2's repair sent", 120)
        r = audit(relay, "r2")
        rc(r, 0, relay.logtext()[-4000:])
        wait_caught_up(relay)
        for u in USERS:
            eq(r2.state(u), master.state(u))
        identical(master, r2, USERS)
        identical(master, path.replicas[0], USERS)
        st = relay.status()["stores"][0]["replicas"][1]
        eq((st["name"], st["state"], st["parked"]), ("r2", "streaming", 0))
        eq(relay.logtext().count("event=login user="), sessions)
        text = relay.logtext()
        check(re.search(r"store=s1 replica=r2 event=fetched guid=\w+ "
                        r"bytes=\d+ from=r1", text), text[-3000:])
        check("event=fetch_failed" not in text, text[-3000:])
        check("event=link_failed" not in text, text[-3000:])
    finally:
        stop_paths()


@test
def a_shared_mailbox_changed_on_the_replica_is_named_then_repaired():
    # A mailbox no user owns is audited as users' mailboxes are: asked
    # for by name (GET MAILBOXES), named when it differs, replaced whole
    # from the shadow by --repair, counted in /metrics.
    path = setup("replica_audit_interval: 2s\n")
    try:
        relay, m, replica = path.relay, path.master, path.replica
        name = make_shared(m, relay)
        r = audit(relay, "--json")
        rc(r, 0)
        a = json.loads(r.stdout)["audits"][0]
        eq((a["differ"], a["shared"], a["shared_not_audited"],
            a["mailboxes"]), (0, 2, 0, 10))
        r = audit(relay)
        rc(r, 0)
        check("10 mailboxes of 2 users and 2 shared compared" in r.stdout,
              r.stdout)
        t0 = time.time()
        metrics_until(relay, lambda g: g[1] >= t0 and g[0] == 0)
        sessions = relay.logtext().count("event=login user=")
        # Behind the relay's back, as admin on the replica: one message
        # expunged, another flagged.
        c = replica.imap()
        try:
            cyrus.imap_ok(*c.select(name))
            cyrus.imap_ok(*c.uid("STORE", "2", "+FLAGS", r"(\Deleted)"))
            cyrus.imap_ok(*c.expunge())
            cyrus.imap_ok(*c.uid("STORE", "1", "+FLAGS", r"(\Flagged)"))
            cyrus.imap_ok(*c.close())
        finally:
            c.logout()
        check(shared_state(replica, name) != shared_state(m, name),
              "the replica's change did not show")
        r = audit(relay, "--json")
        rc(r, 1)
        a = json.loads(r.stdout)["audits"][0]
        eq([(d["kind"], d["mailbox"], d["user"])
            for d in a["mailboxes_differing"]],
           [("differs", "shared.x", "")])
        what = a["mailboxes_differing"][0]["what"]
        check("uid 2 expunged on the replica" in what and
              "uid 1 flags" in what, what)
        r = audit(relay)
        rc(r, 1)
        check("  differs shared.x: " in r.stdout, r.stdout)
        # Auditing one user leaves shared mailboxes out, as asked.
        rc(audit(relay, "--user", "bob"), 0)
        # The periodic audit counts it.
        t1 = time.time()
        metrics_until(relay, lambda g: g[1] >= t1 and g[0] == 1)
        r = audit(relay, "--repair")
        rc(r, 1)
        check(re.search(r"shared\.x: .*\n +repair: replaced: removed on "
                        r"the replica, then sent whole", r.stdout), r.stdout)
        until(lambda: relay.status()["stores"][0]["replicas"][0][
            "parked"] == 0, "the repair sent", 120)
        wait_caught_up(relay)
        rc(audit(relay), 0, relay.logtext()[-4000:])
        eq(shared_state(replica, name), shared_state(m, name))
        identical(m, replica, USERS)
        t2 = time.time()
        metrics_until(relay, lambda g: g[1] >= t2 and g[0] == 0)
        # The master saw nothing of it.
        eq(relay.logtext().count("event=login user="), sessions)
        # The check after the replica's Cyrus restarts finds it all
        # there: no seed needed.
        replica.stop()
        replica.start()
        m.deliver("alice", cyrus.make_message(501, 900))
        sync_user(m, "alice")
        wait_caught_up(relay, timeout=120)
        until(lambda: "event=check_done" in relay.logtext(),
              "the check after the restart")
        text = relay.logtext()
        check("event=check_done result=ok" in text and
              "needs_seed" not in text, text[-4000:])
    finally:
        stop_paths()


def messages(inst, name):
    c = inst.imap()
    try:
        typ, data = c.status(name, "(MESSAGES)")
        cyrus.imap_ok(typ, data)
        return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
    finally:
        c.logout()


@test
def a_shared_name_the_replica_gave_another_mailbox_is_left_alone():
    # The master's admin made "archive"; on the replica, behind the
    # relay's back, its admin removed it and made another "archive".
    # The audit names it, and --repair leaves the replica's alone: the
    # relay never removes what the master did not remove.
    path = setup()
    try:
        relay, m, replica = path.relay, path.master, path.replica
        make_mailbox(m, "archive", 2, 40, 600)
        rcode, out, err = m.sync_client(["-m", "archive"], timeout=120)
        check(rcode == 0, "sync_client -m archive: %r\n%s%s" % (
            rcode, out, err))
        wait_caught_up(relay)
        eq(messages(replica, "archive"), 2)
        c = replica.imap()
        try:
            eq(c.delete("archive")[0], "OK")
        finally:
            c.logout()
        make_mailbox(replica, "archive", 1, 40, 600)
        r = audit(relay, "--repair", "--json", "--timeout", "60")
        rc(r, 1)
        a = json.loads(r.stdout)["audits"][0]
        got = [d for d in a["mailboxes_differing"]
               if d["mailbox"] == "archive"]
        check(len(got) == 1, a)
        check(got[0]["kind"] == "missing" and "the replica holds another "
              "mailbox under this name" in got[0]["what"], got)
        check(got[0]["repair"].startswith("left alone: the replica holds "
                                          "another mailbox under this "
                                          "name"), got)
        eq(messages(replica, "archive"), 1)
        eq(messages(m, "archive"), 2)
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_audit", stop_paths)
