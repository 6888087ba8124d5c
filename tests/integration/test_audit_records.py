#!/usr/bin/env python3
"""test_audit_records.py -- an audit's record comparison, read as the
replica's GET FULLMAILBOX answer arrives (relay/ops/audit_rec.c), with
real Debian Cyrus at both ends.  A mailbox of a few hundred messages
changed on the replica behind the relay's back in several records
(flags changed, one message expunged over IMAP there) audits with
exactly those UIDs named, in UID order, the first six spelled out and
the others counted; a small mailbox's few differences are all named;
--repair then brings the replica back to the master's state.  Every
answer, whatever its size, goes through the same streamed merge.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import check, eq, run, test
from audittest import audit, rc
from relaytest import (CyrusPath, identical, imap_steps, populate,
                       stop_paths, sync_user, wait_caught_up)

N = 300                         # INBOX: UIDs 1..300, 3 expunged
FLAGGED = (30, 60, 90, 120, 150, 180, 210, 240)
EXPUNGED = 270


def uids_named(what):
    return [int(u) for u in re.findall(r"\buid (\d+)", what)]


@test
def records_changed_on_the_replica_are_named_exactly():
    path = CyrusPath("syncrelay-auditrec-", users=("alice",))
    try:
        relay, master, replica = path.relay, path.master, path.replica
        populate(master, "alice", N, big=set())
        sync_user(master, "alice")
        wait_caught_up(relay)
        identical(master, replica, ("alice",))
        rc(audit(relay, "r1"), 0)
        # Behind the relay's back, on the replica.
        imap_steps(replica, "alice",
                   ("select", ("INBOX",)),
                   ("uid", ("STORE", ",".join(map(str, FLAGGED)),
                            "+FLAGS", r"(\Answered)")),
                   ("uid", ("STORE", str(EXPUNGED), "+FLAGS",
                            r"(\Deleted)")),
                   ("expunge", ()),
                   ("select", ("Work",)),
                   ("uid", ("STORE", "2", "+FLAGS", r"(\Flagged)")),
                   ("uid", ("STORE", "5", "+FLAGS", r"(\Deleted)")),
                   ("expunge", ()))
        r = audit(relay, "r1", "--json")
        rc(r, 1)
        a = json.loads(r.stdout)["audits"][0]
        what = {d["mailbox"]: d["what"] for d in a["mailboxes_differing"]}
        eq(sorted(what), ["user.alice", "user.alice.Work"])
        inbox = what["user.alice"]
        # The first six differences in UID order, the other three counted.
        eq(uids_named(inbox), list(FLAGGED[:6]))
        for u in FLAGGED[:6]:
            check("uid %d flags (" % u in inbox and "\\Answered" in inbox,
                  inbox)
        check("and 3 more record differences" in inbox, inbox)
        check("%d messages on the replica, %d in the shadow" %
              (N - 2, N - 1) in inbox, inbox)
        work = what["user.alice.Work"]
        eq(uids_named(work), [2, 5])
        check("uid 2 flags (" in work and "uid 5 expunged on the replica"
              in work, work)
        check("9 messages on the replica, 10 in the shadow" in work, work)
        # Repaired, the replica is the master's again.
        rc(audit(relay, "r1", "--repair"), 1)
        wait_caught_up(relay)
        r = audit(relay, "r1")
        rc(r, 0, relay.logtext()[-4000:])
        identical(master, replica, ("alice",))
    finally:
        stop_paths()


if __name__ == "__main__":
    run("test_audit_records", stop_paths)
