#!/usr/bin/env python3
"""test_divergence.py -- a replica changed behind the relay's back, with
real Debian Cyrus at both ends.  While its link is paused, the replica's
own IMAP users delete, create and rename folders and receive mail there.
When the link resumes, it must either repair the replica to exactly the
master's state (folders renamed back, recreated, or removed, as Cyrus's
own sync_client would) or park the mailbox it cannot mend (the rest goes
on) with a reason precise enough to act on --
and acting on it must work.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, converge, direct_applies, imap_steps,
                       populate, stop_paths, sync_user, wait_caught_up)

USERS = ("alice",)


def setup():
    path = CyrusPath("syncrelay-div-")
    populate(path.master, "alice", 12, big=set())
    sync_user(path.master)
    wait_caught_up(path.relay)
    converge(path.master, path.replica, USERS)
    return path.log, path.relay, path.master, path.replica


@test
def folders_deleted_created_and_renamed_on_the_replica_are_repaired():
    log, relay, master, replica = setup()
    try:
        mark = log.mark()
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        relay.wait_log('to="paused"')
        # On the replica: a folder deleted (Cyrus keeps it as DELETED.*
        # with the same uniqueid), one renamed, one created with mail.
        imap_steps(replica, "alice", ("delete", ("Work/2026",)),
                   ("rename", ("Sent", "Sent-old")),
                   ("create", ("Extra",)))
        replica.append("alice", "Extra", cyrus.make_message(800, 1500))
        # On the master: mail into the first two, so the journal holds
        # updates for mailboxes the replica no longer has by that name.
        master.append("alice", "Work/2026", cyrus.make_message(801, 2500))
        master.append("alice", "Sent", cyrus.make_message(802, 2600))
        sync_user(master)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        converge(master, replica, USERS)
        eq(direct_applies(master, replica, "alice"), [])
        text = relay.logtext()
        check("event=repair scope=user user=alice" in text, text)
        check(re.search(r"event=repair_rename from=DELETED\.user\.alice\."
                        r"Work\.2026\.[0-9A-F]+ to=user\.alice\.Work\.2026",
                        text), text)
        check("event=repair_rename from=user.alice.Sent-old "
              "to=user.alice.Sent" in text, text)
        check("event=repair_unmailbox mailbox=user.alice.Extra" in text,
              text)
        check("event=link_failed" not in text, text)
        st = relay.status()
        r1 = st["stores"][0]["replicas"][0]
        eq((r1["state"], r1["lag_records"]), ("streaming", 0))
        check(r1["last_error"].startswith("repaired user alice"), r1)
        log.flush()
        check(not log.errors(mark), log.errors(mark))
    finally:
        stop_paths()


@test
def mail_delivered_to_the_replica_parks_the_mailbox_with_what_to_do():
    log, relay, master, replica = setup()
    try:
        eq(relay.ctl("pause", "s1", "r1").returncode, 0)
        relay.wait_log('to="paused"')
        replica.deliver("alice", cyrus.make_message(900, 1800))
        for i in range(3):
            master.deliver("alice", cyrus.make_message(901 + i, 1900))
        sync_user(master)
        eq(relay.ctl("resume", "s1", "r1").returncode, 0)
        relay.wait_log("replica=r1 event=parked mailbox=user.alice ",
                       timeout=60)
        text = relay.logtext()
        check("event=link_failed" not in text, text)
        m = re.search(r"replica=r1 event=parked mailbox=user\.alice .*"
                      r"reason=\"(.*)\"", text)
        check(m, text)
        why = m.group(1)
        check(re.search(r"repairing user\.alice failed: NO "
                        r"IMAP_SYNC_CHECKSUM .*(the replica holds UIDs up to "
                        r"\d+, the master only up to \d+|UID \d+ holds "
                        r"another message on the replica \(GUID [0-9a-f]{40}, "
                        r"the master's is [0-9a-f]{40}\)), so mail was "
                        r"delivered to the replica directly: resync it "
                        r"from the master \(sync_client -u alice straight "
                        r"to the replica", why), why)
        check("then syncrelayctl retry s1 r1" in why, why)
        st = relay.status()
        r1 = st["stores"][0]["replicas"][0]
        eq((r1["state"], r1["parked"]), ("streaming", 1))
        eq(r1["parked_list"][0]["reply"], why[:299])
        r = relay.ctl("wait", "s1", "--timeout", "1")
        eq(r.returncode, 1)
        check("1 parked, e.g. mailbox user.alice" in r.stderr, r.stderr)
        # Doing what it says: Cyrus copies the replica's message back to
        # the master, the master replicates that to the relay, and the
        # resumed link brings the replica to the master's state.
        direct_applies(master, replica, "alice")
        sync_user(master)
        eq(relay.ctl("retry", "s1", "r1").returncode, 0)
        wait_caught_up(relay)
        state = converge(master, replica, USERS)
        inbox = state["alice"]["mailboxes"]["INBOX"]["messages"]
        eq(len(inbox), 12 - 1 + 3 + 1)   # populate expunged one
        eq(direct_applies(master, replica, "alice"), [])
        r1 = relay.status()["stores"][0]["replicas"][0]
        eq((r1["state"], r1["parked"]), ("streaming", 0))
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_divergence", stop_paths)
