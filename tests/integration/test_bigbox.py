#!/usr/bin/env python3
"""test_bigbox.py -- a big APPLY MAILBOX ingested record by record.

A command with more than BIGBOX_RECORDS records (relay/ingest/bigbox.h)
is not held as a tree: its records are spilled to a file as they are
parsed, applied to the shadow from it one at a time and copied into the
journal in bounded pieces.  Here the threshold is lowered to 40 through
SYNCRELAY_BIGBOX_RECORDS (the relay inherits this process's environment),
so that real Cyrus with a few hundred messages takes the big path: a
one-shot sync_client -u, rolling changes of flags and expunges, replay to
a real replica, which must end up identical to the master, a journal that
verifies, and a big command refused mid-way (records out of UID order:
nothing applied, nothing journaled, the next command fine).  And a
relay that lost its disk seeding a mailbox of a few hundred messages
from the replica's GET FULLMAILBOX answer (relay/ingest/seed.c), its
records spilled the same way (event=big_seed).
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

os.environ["SYNCRELAY_BIGBOX_RECORDS"] = "40"

import cyrus  # noqa: E402
from harness import (BUILDDIR, authed_client, check, eq, read_reply,  # noqa
                     run, test)
from relaytest import (CyrusPath, identical, no_errors, relay_lsn,  # noqa
                       stop_paths,
                       sync_user, wait_caught_up)


def verify(relay):
    r = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"),
                        "verify", os.path.join(relay.dir, "data", "s1",
                                               "journal")],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, r.stdout + r.stderr)
    check(r.stdout.rstrip().endswith("OK"), r.stdout)


def big_applies(relay):
    """The big commands the relay journaled: [(records, bytes)]."""
    return [(int(a), int(b)) for a, b in re.findall(
        r"event=big_apply records=(\d+) bytes=(\d+)", relay.logtext())]


def deliver_many(master, user, n, first=0):
    for i in range(first, first + n):
        master.deliver(user, cyrus.make_message(i, 1200 + (i * 131) % 900))


@test
def one_shot_and_rolling_changes_take_the_big_path():
    path = CyrusPath("syncrelay-bigbox-", users=("alice",))
    try:
        log, relay, master, replica = (path.log, path.relay, path.master,
                                       path.replica)
        mark = log.mark()
        master.create_user("alice")
        deliver_many(master, "alice", 300)
        sync_user(master, "alice")
        big = big_applies(relay)
        check(big and max(r for r, _ in big) >= 300, big)
        wait_caught_up(relay)
        identical(master, replica, ["alice"])
        # Rolling: flags on most messages, an expunge, new mail.
        m = master.imap("alice")
        try:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "1:250", "+FLAGS",
                                 r"(\Seen $Label1)"))
            cyrus.imap_ok(*m.uid("STORE", "20:80", "+FLAGS",
                                 r"(\Deleted)"))
            cyrus.imap_ok(*m.expunge())
        finally:
            m.logout()
        deliver_many(master, "alice", 60, first=300)
        n = len(big)
        sync_user(master, "alice")
        big = big_applies(relay)
        check(len(big) > n, big)
        wait_caught_up(relay)
        state = identical(master, replica, ["alice"])
        eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]), 299)
        verify(relay)
        # A relay restarted without its shadow rebuilds it from the
        # journal, reading the big records in pieces (text over 4 KB),
        # their records spilled as the session spilled them.
        lsn = relay_lsn(relay)
        relay.stop()
        shadow = os.path.join(relay.dir, "data", "s1", "shadow.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(shadow + suffix):
                os.unlink(shadow + suffix)
        mark_fold = len(relay.logtext())
        os.environ["SYNCRELAY_BIG_TEXT"] = "4096"
        try:
            relay.start()
        finally:
            del os.environ["SYNCRELAY_BIG_TEXT"]
        folds = re.findall(r"event=fold_big records=(\d+)",
                           relay.logtext()[mark_fold:])
        check(folds and max(int(n) for n in folds) >= 300, folds)
        m = master.imap("alice")
        try:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "100:200", "-FLAGS", r"(\Seen)"))
        finally:
            m.logout()
        sync_user(master, "alice")
        check(relay_lsn(relay) > lsn, "nothing journaled after restart")
        wait_caught_up(relay)
        identical(master, replica, ["alice"])
        no_errors(log, mark, relay)
        check(not os.listdir(os.path.join(relay.dir, "data", "s1", "tmp")),
              "a spill file was left behind")
    finally:
        path.stop()


def mailbox_state(c, name):
    """GET MAILBOXES (name) from the relay: the answer's fields."""
    c.send("GET MAILBOXES (%s)\r\n" % name)
    reply = read_reply(c)
    check(reply[-1].startswith("OK"), reply)
    fields = dict(re.findall(r"([A-Z_]+) (\"[^\"]*\"|[^ ()]+)", reply[0]))
    return {k: v.strip('"') for k, v in fields.items()}


def big_mailbox(st, last_uid, uids):
    recs = " ".join(
        "%%(UID %d MODSEQ 1 LAST_UPDATED 1 FLAGS (\\Expunged) "
        "INTERNALDATE 1 SIZE 10 GUID %040x)" % (u, u) for u in uids)
    return ("APPLY MAILBOX %%(UNIQUEID %s MBOXNAME %s SYNC_CRC 0 "
            "SYNC_CRC_ANNOT 0 LAST_UID %s HIGHESTMODSEQ %s RECENTUID 0 "
            "RECENTTIME 0 LAST_APPENDDATE 0 POP3_LAST_LOGIN 0 "
            "UIDVALIDITY %s PARTITION default ACL \"\" OPTIONS P "
            "%sRECORD (%s))\r\n" % (
                st["UNIQUEID"], st["MBOXNAME"], last_uid,
                st["HIGHESTMODSEQ"], st["UIDVALIDITY"],
                "MBOXTYPE %s " % st["MBOXTYPE"] if "MBOXTYPE" in st else "",
                recs))


@test
def refused_big_command_leaves_nothing():
    path = CyrusPath("syncrelay-bigbox-refused-", users=("alice",))
    try:
        log, relay, master, replica = (path.log, path.relay, path.master,
                                       path.replica)
        master.create_user("alice")
        deliver_many(master, "alice", 60)
        sync_user(master, "alice")
        wait_caught_up(relay)
        name = "user.alice"  # the internal name, as on the wire
        lsn = relay_lsn(relay)
        c = authed_client(relay.port, "repl", cyrus.REPL_PASSWORD)
        try:
            before = mailbox_state(c, name)
            n = len(big_applies(relay))
            # 100 expunged records past the mailbox's last UID, the last
            # 40 going back: refused in the dry run, after the records
            # were spilled.
            last = int(before["LAST_UID"])
            uids = list(range(last + 1, last + 61))
            uids += list(range(last + 30, last + 70))
            c.send(big_mailbox(before, last + 200, uids))
            reply = read_reply(c)
            check(reply[-1].startswith("NO IMAP_PROTOCOL_ERROR"), reply)
            eq(len(big_applies(relay)), n)
            eq(relay_lsn(relay), lsn)
            check("unordered RECORD" in relay.logtext(), "no refusal logged")
            # The shadow was rolled back: the same state, and the session
            # goes on.
            eq(mailbox_state(c, name), before)
            eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        finally:
            c.close()
        check(not os.listdir(os.path.join(relay.dir, "data", "s1", "tmp")),
              "a spill file was left behind")
        m = master.imap("alice")
        try:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "1:60", "+FLAGS", r"(\Flagged)"))
        finally:
            m.logout()
        sync_user(master, "alice")
        check(len(big_applies(relay)) > n, big_applies(relay))
        wait_caught_up(relay)
        identical(master, replica, ["alice"])
        verify(relay)
    finally:
        path.stop()


@test
def a_big_mailbox_seeded_from_the_replica_is_spilled():
    """A relay that lost its disk meets a pair whose replica holds the
    mailbox: the master's rolling change asks about it, the relay seeds
    it from the replica's GET FULLMAILBOX answer, records spilled past
    the threshold (event=big_seed), and the replica ends identical."""
    path = CyrusPath("syncrelay-bigbox-seed-", users=("alice",))
    try:
        log, relay, master, replica = (path.log, path.relay, path.master,
                                       path.replica)
        master.create_user("alice")
        deliver_many(master, "alice", 300)
        sync_user(master, "alice")
        wait_caught_up(relay)
        relay.stop()
        shutil.rmtree(os.path.join(relay.dir, "data"))
        # The link meets the big SEED record as a big one too: known as
        # a seed from its first bytes, skipped without being read.
        os.environ["SYNCRELAY_BIG_TEXT"] = "4096"
        try:
            relay.start()
        finally:
            del os.environ["SYNCRELAY_BIG_TEXT"]
        mark = log.mark()
        master.start_rolling()
        try:
            m = master.imap("alice")
            try:
                m.select("INBOX")
                cyrus.imap_ok(*m.uid("STORE", "1:200", "+FLAGS",
                                     r"(\Seen)"))
            finally:
                m.logout()
            deliver_many(master, "alice", 5, first=300)
            relay.wait_log("event=seeded", timeout=60)
            time.sleep(2)
        finally:
            master.stop_rolling()
        sync_user(master, "alice")      # what the rolling client left
        seeds = [int(n) for n in re.findall(
            r"event=big_seed records=(\d+) bytes=\d+", relay.logtext())]
        check(seeds and max(seeds) >= 300, relay.logtext())
        wait_caught_up(relay)
        state = identical(master, replica, ["alice"])
        eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]), 305)
        # The shadow holds every record the replica sent.
        c = authed_client(relay.port, "repl", cyrus.REPL_PASSWORD)
        try:
            c.send("GET FULLMAILBOX user.alice\r\n")
            reply = read_reply(c)
            check(reply[-1].startswith("OK"), reply[-1])
            eq(len(re.findall(r"%\(UID \d+ ", reply[0])), 305)
        finally:
            c.close()
        verify(relay)
        no_errors(log, mark, relay)
        check(not os.listdir(os.path.join(relay.dir, "data", "s1", "tmp")),
              "a spill file was left behind")
    finally:
        path.stop()


if __name__ == "__main__":
    run("test_bigbox", stop_paths)
