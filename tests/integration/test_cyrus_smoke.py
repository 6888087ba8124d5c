#!/usr/bin/env python3
"""test_cyrus_smoke.py -- the real-Cyrus helpers work: a master replicates
to a replica directly (no relay), one-shot and rolling, and the IMAP state
snapshots of both sides agree."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import check, eq, test
import cyrus
from relaytest import CyrusPath, stop_paths

env = {}


def setup():
    # No relay: the master replicates straight into the replica.
    path = CyrusPath("cyrus-smoke-", users=(), relay=False)
    env.update(syslog=path.log, master=path.master, replica=path.replica)
    return path.log, path.master, path.replica


@test
def test_one_shot_sync():
    log, master, replica = setup()
    check(log.lines(tag="master/"), "no Cyrus log lines (mode %s)" % log.mode)
    master.create_user("alice")
    for i in range(5):
        master.deliver("alice", cyrus.make_message(i, 1500 + 700 * i))
    m = master.imap("alice")
    try:
        m.select("INBOX")
        cyrus.imap_ok(*m.uid("STORE", "2", "+FLAGS", r"(\Flagged $Work)"))
    finally:
        m.logout()
    st = master.state("alice")
    eq(sorted(st["mailboxes"]["INBOX"]["messages"]), [1, 2, 3, 4, 5])
    eq(st["mailboxes"]["INBOX"]["messages"][2]["flags"],
       ["$Work", "\\Flagged"])
    mark = log.mark()
    rc, out, err = master.sync_client(["-u", "alice"], timeout=60)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    log.flush()
    errors = log.errors(mark) + log.severe(mark)
    check(not errors, "\n".join(errors))
    eq(replica.state("alice"), st)
    eq(master.state("alice"), st)  # reading changed nothing


@test
def test_rolling_sync():
    log, master, replica = env["syslog"], env["master"], env["replica"]
    mark = log.mark()
    master.start_rolling()
    master.deliver("alice", cyrus.make_message(100, 4000))
    want = master.state("alice")
    eq(len(want["mailboxes"]["INBOX"]["messages"]), 6)
    deadline = time.time() + 20
    while replica.state("alice") != want:
        check(master.rolling.poll() is None, "rolling sync_client exited")
        check(time.time() < deadline, "replica never caught up")
        time.sleep(0.2)
    eq(master.stop_rolling(), 0)
    log.flush()
    errors = log.errors(mark) + log.severe(mark)
    check(not errors, "\n".join(errors))


if __name__ == "__main__":
    harness.run("test_cyrus_smoke", stop_paths)
