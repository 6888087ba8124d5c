#!/usr/bin/env python3
"""test_bigreplay.py -- a big journaled APPLY MAILBOX replayed in bounded
memory (relay/replay/link_big.c), with real Debian Cyrus at both ends.

The relay runs with SYNCRELAY_BIG_TEXT lowered to a few KB, so that a
user with a few hundred messages takes the path a 100,000-message
mailbox takes: the command's header parsed alone, its records read a
batch at a time to stage the bodies (several batches), its text copied
from the journal to the replica's socket.  The replica's link is paused
while the master syncs, so everything comes from the journal; then
rolling changes, a big update (SINCE guards set from the replica), and a
big update of a folder removed on the replica behind the relay's back
(the repair sends it whole from the shadow).  Each time the replica must
end up identical to the master, and the big path must have been taken.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, identical, imap_steps, no_errors,
                       populate, stop_paths, sync_user, wait_caught_up)

USERS = ("alice",)
THRESHOLD = 4096


def big_commands(relay):
    return re.findall(r"event=big_command lsn=\d+ bytes=(\d+) "
                      r"batches=(\d+)", relay.logtext())


def paused_path():
    os.environ["SYNCRELAY_BIG_TEXT"] = str(THRESHOLD)
    try:
        path = CyrusPath("syncrelay-big-")
    finally:
        del os.environ["SYNCRELAY_BIG_TEXT"]
    relay = path.relay
    eq(relay.ctl("pause", "s1", "r1").returncode, 0)
    relay.wait_log('to="paused"')
    return path


@test
def big_mailbox_replayed_from_the_journal_then_rolling_changes():
    path = paused_path()
    log, relay, master, replica = path.log, path.relay, path.master, \
        path.replica
    try:
        mark = log.mark()
        populate(master, "alice", 300, big={7})
        sync_user(master)
        check(big_commands(relay) == [], "sent while paused")
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        state = identical(master, replica, USERS)
        eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]), 299)
        big = big_commands(relay)
        check(len(big) >= 1 and all(int(b) > THRESHOLD for b, _ in big),
              relay.logtext()[-3000:])
        # INBOX's 299 records were staged in batches of 64 or so.
        check(max(int(n) for _, n in big) >= 3, big)
        # Rolling: small changes (the small path), then a big update
        # while paused: new records above the replica's LAST_UID, flags
        # on old ones, SINCE guards taken from the replica.
        m = master.imap("alice")
        try:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "30:60", "+FLAGS", r"(\Seen)"))
        finally:
            m.logout()
        sync_user(master)
        wait_caught_up(relay)
        identical(master, replica, USERS)
        n = len(big_commands(relay))
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        relay.wait_log('to="paused"')
        for i in range(60):
            master.deliver("alice", cyrus.make_message(2000 + i, 1800))
        m = master.imap("alice")
        try:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "1:200", "+FLAGS",
                                 r"(\Answered)"))
            cyrus.imap_ok(*m.uid("STORE", "40:45", "+FLAGS", r"(\Deleted)"))
            cyrus.imap_ok(*m.expunge())
        finally:
            m.logout()
        sync_user(master)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        state = identical(master, replica, USERS)
        eq(len(state["alice"]["mailboxes"]["INBOX"]["messages"]),
           299 + 60 - 6)
        check(len(big_commands(relay)) > n, relay.logtext()[-3000:])
        no_errors(log, mark, relay)
    finally:
        stop_paths()


@test
def big_update_of_a_folder_removed_on_the_replica_is_repaired():
    path = paused_path()
    log, relay, master, replica = path.log, path.relay, path.master, \
        path.replica
    try:
        populate(master, "alice", 20, big=set())
        sync_user(master)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        identical(master, replica, USERS)
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        relay.wait_log('to="paused"')
        # A big update of Sent on the master; Sent removed on the replica.
        for i in range(80):
            master.append("alice", "Sent", cyrus.make_message(3000 + i,
                                                              1600))
        sync_user(master)
        imap_steps(replica, "alice", ("delete", ("Sent",)))
        n = len(big_commands(relay))
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        state = identical(master, replica, USERS)
        eq(len(state["alice"]["mailboxes"]["Sent"]["messages"]), 80)
        text = relay.logtext()
        check("event=repair scope=user user=alice" in text, text[-3000:])
        # The big record was read through the big path: its header was
        # what the repair looked at (it never reached the wire: the
        # repair sent Sent whole from the shadow instead).
        check(len(big_commands(relay)) == n, text[-3000:])
        check("event=link_failed" not in text, text[-3000:])
        r1 = relay.status()["stores"][0]["replicas"][0]
        eq((r1["state"], r1["parked"]), ("streaming", 0))
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_bigreplay", stop_paths)
