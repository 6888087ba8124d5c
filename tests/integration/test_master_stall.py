#!/usr/bin/env python3
"""test_master_stall.py -- a master that goes silent in the middle of a
command (issue 14, docs/reliability.md), with real Cyrus 3.6.1.

A connection that stops half-way through a line, or half-way through an
APPLY MESSAGE body, is closed master_timeout after its last byte
(event=master_timeout); it got no reply and nothing of it reached the
journal.  Silence between commands is not cut short (sync_timeout
applies, as in Cyrus), and a slow master that keeps sending is not cut
off even when its command takes longer than master_timeout.  Afterwards
the store serves a real sync_client to a real replica as before.
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import authed_client, check, eq, relay_lsn, run, test
from relaytest import CyrusPath, identical, stop_paths, sync_user, \
    wait_caught_up

TIMEOUT = 2.0
_path = []


def path():
    if not _path:
        p = CyrusPath("syncrelay-stall-", extra="master_timeout: %ds\n"
                      % TIMEOUT)
        p.master.create_user("alice")
        p.master.deliver("alice", cyrus.make_message(1, 2000))
        sync_user(p.master, "alice")
        wait_caught_up(p.relay)
        _path.append(p)
    return _path[0]


def master():
    return authed_client(path().relay.port, "repl", cyrus.REPL_PASSWORD)


def body(n):
    text = ("From: a@example.com\r\nTo: b@example.com\r\nSubject: stall\r\n"
            "\r\n" + "x" * 70 + "\r\n") * (n // 128 + 1)
    return text[:n].encode()


def message_head(data):
    return ("APPLY MESSAGE (%%{default %s %d}\r\n"
            % (hashlib.sha1(data).hexdigest(), len(data))).encode()


def closed_after(c, limit):
    """Seconds until the relay closed c, which must have sent nothing."""
    t0 = time.time()
    check(c.closed(timeout=limit), "the connection is still open after "
          "%.0f s" % limit)
    took = time.time() - t0
    eq(c.buf, b"")
    c.close()
    return took


def journal_unchanged(before):
    eq(relay_lsn(path().relay), before)


@test
def silent_in_the_middle_of_a_body_is_dropped_unacknowledged():
    relay = path().relay
    lsn = relay_lsn(relay)
    data = body(200000)
    c = master()
    c.send(message_head(data) + data[:90000])
    took = closed_after(c, TIMEOUT + 8)
    check(TIMEOUT - 0.3 <= took <= TIMEOUT + 3, "closed after %.1f s" % took)
    relay.wait_log("event=master_timeout waited=2")
    journal_unchanged(lsn)


@test
def silent_in_the_middle_of_a_line_is_dropped_unacknowledged():
    relay = path().relay
    lsn = relay_lsn(relay)
    n = relay.logtext().count("event=master_timeout")
    c = master()
    c.send("APPLY MAILBOX %(UNIQUEID 0123456789abcdef MBOXNAME "
           "example.com!user.alice LAST_UID 99 ")
    took = closed_after(c, TIMEOUT + 8)
    check(TIMEOUT - 0.3 <= took <= TIMEOUT + 3, "closed after %.1f s" % took)
    eq(relay.logtext().count("event=master_timeout"), n + 1)
    journal_unchanged(lsn)


@test
def silence_between_commands_is_left_alone():
    c = master()
    eq(c.cmd("NOOP\r\n"), "OK Noop completed")
    time.sleep(TIMEOUT * 2.5)
    eq(c.cmd("NOOP\r\n"), "OK Noop completed")
    eq(c.cmd("EXIT\r\n"), "OK Finished")
    c.close()


@test
def a_slow_master_that_keeps_sending_is_not_cut_off():
    data = body(6000)
    c = master()
    c.send(message_head(data))
    t0 = time.time()
    for i in range(0, len(data), 1000):     # 6 s in all, 1 s gaps
        time.sleep(TIMEOUT / 2)
        c.send(data[i:i + 1000])
    c.send(")\r\n")
    eq(c.line(), "OK success")
    check(time.time() - t0 > TIMEOUT * 2, "the command was not slow")
    eq(c.cmd("EXIT\r\n"), "OK Finished")
    c.close()


@test
def the_store_serves_a_real_master_afterwards():
    p = path()
    p.master.deliver("alice", cyrus.make_message(2, 300000))
    sync_user(p.master, "alice")
    wait_caught_up(p.relay)
    identical(p.master, p.replica, ["alice"])
    check("event=master_timeout" in p.relay.logtext())


if __name__ == "__main__":
    run("test_master_stall", teardown=stop_paths)
