#!/usr/bin/env python3
"""test_fullmailbox_paged.py -- a whole mailbox sent a page of records at
a time (relay/getcmd_full.c), against real Cyrus 3.6.

The relay runs with pages of 7 records (SYNCRELAY_FULL_PAGE, read at
start) so that a mailbox of several hundred messages takes many pages:

- GET FULLMAILBOX answered by the relay is, line for line, what the
  real replica's sync_server answers for the same mailbox;
- a GET FULLMAILBOX whose reader does not read (a small receive buffer,
  a reply of megabytes: the relay stops after a few pages) while the
  master expunges and flags messages of the later pages and syncs them
  through the relay: the reply, read afterwards, is the mailbox before
  the change, whole (its SYNC_CRC fits its records), not pages of two
  states;
- a repair that sends the mailbox whole (the user removed from the
  replica behind the relay's back) leaves the replica identical to the
  master.
"""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus  # noqa: E402
from harness import (Client, authed_client, check, eq, plain,  # noqa: E402
                     read_reply, run, test)
from relaytest import (CyrusPath, identical, stop_paths,  # noqa: E402
                       sync_user, wait_caught_up)

PAGE = 7
N = 900                 # messages of the INBOX
USER = "paula"
# 40 user flags of ~60 characters on every message: ~2.5 KB a record, a
# reply of over 2 MB, far more than the relay queues (256 KB) and the
# sockets hold for a reader that does not read.
FLAGS = ["$Label%02d_%s" % (i, "x" * 52) for i in range(40)]


def spool_dir(inst, user):
    """The master's directory of user's INBOX (3.6 keeps it by UUID)."""
    argv = inst._cmd([os.path.join(cyrus.CYRUS_BIN, "mbpath"), "-C",
                      inst.imapd_conf, inst.mailbox_name(user)])
    r = subprocess.run(argv, capture_output=True, text=True,
                       env=inst._env(), timeout=60)
    d = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    check(r.returncode == 0 and os.path.isdir(d), "mbpath: %r %s" %
          (r.stdout, r.stderr))
    return d


def fill(inst, user, n):
    """n small messages written into the spool and indexed (reconstruct):
    much faster than delivering them one by one."""
    d = spool_dir(inst, user)
    for i in range(1, n + 1):
        with open(os.path.join(d, "%d." % i), "wb") as f:
            f.write(cyrus.make_message(i, 400))
    subprocess.run(["chown", "-R", "cyrus:mail", d], check=False)
    argv = inst._cmd([os.path.join(cyrus.CYRUS_BIN, "reconstruct"), "-C",
                      inst.imapd_conf, "-r", inst.mailbox_name(user)])
    r = subprocess.run(argv, capture_output=True, text=True,
                       env=inst._env(), timeout=600)
    check(r.returncode == 0, "reconstruct: %s %s" % (r.stdout, r.stderr))


def imap(inst, *cmds):
    m = inst.imap(USER)
    try:
        cyrus.imap_ok(*m.select("INBOX"))
        for c in cmds:
            cyrus.imap_ok(*m.uid(*c))
        cyrus.imap_ok(*m.expunge())
    finally:
        m.logout()


def full(port, name):
    """GET FULLMAILBOX name as (lines), read at once."""
    c = authed_client(port, "repl", cyrus.REPL_PASSWORD)
    c.sock.settimeout(120)
    try:
        c.send("GET FULLMAILBOX %s\r\n" % name)
        return read_reply(c)
    finally:
        c.close()


_path = None


def setup():
    global _path
    os.environ["SYNCRELAY_FULL_PAGE"] = str(PAGE)
    try:
        _path = CyrusPath("syncrelay-fullpaged-", users=(USER,))
    finally:
        del os.environ["SYNCRELAY_FULL_PAGE"]
    master = _path.master
    master.create_user(USER)
    fill(master, USER, N)
    imap(master, ("STORE", "1:*", "+FLAGS", "(%s)" % " ".join(FLAGS)),
         ("STORE", "1:100", "+FLAGS", r"(\Seen)"),
         ("STORE", "5,17", "+FLAGS", r"(\Deleted)"))
    sync_user(master, USER)
    wait_caught_up(_path.relay)
    return _path


@test
def get_fullmailbox_in_pages_is_what_a_real_sync_server_says():
    path = _path or setup()
    name = "user." + USER
    got = full(path.relay.port, name)
    want = full(path.replica.sync_port, name)
    check(len(" ".join(got)) > 2 << 20, "a reply of %d bytes" %
          len(" ".join(got)))
    check(got[-1].startswith("OK"), got[-1])
    eq(got, want)
    eq(full(path.relay.port, name + ".none"),
       full(path.replica.sync_port, name + ".none"))


@test
def a_change_between_pages_is_not_in_the_reply():
    path = _path or setup()
    master, relay = path.master, path.relay
    name = "user." + USER
    before = full(relay.port, name)
    # A reader that does not read: the relay sends a few pages and
    # waits for the socket.
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(60)
    c.connect(("127.0.0.1", relay.port))
    slow = Client.__new__(Client)
    slow.sock, slow.buf = c, b""
    slow.banner()
    slow.send("AUTHENTICATE PLAIN %s\r\n" % plain("repl",
                                                   cyrus.REPL_PASSWORD))
    check(slow.line().startswith("OK"), "login")
    slow.send("GET FULLMAILBOX %s\r\n" % name)
    time.sleep(1.0)
    queued = len(c.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    # The master expunges and flags messages of the last pages and
    # syncs that through the relay meanwhile.
    imap(master, ("STORE", "%d:%d" % (N - 20, N), "+FLAGS", r"(\Deleted)"),
         ("STORE", "%d" % (N - 40), "+FLAGS", r"(\Flagged)"))
    sync_user(master, USER)
    after = full(relay.port, name)
    check(after != before, "the master's change reached the shadow")
    got = read_reply(slow)
    c.close()
    check(queued < len(" ".join(got)) // 4,
          "the reply was waiting on the socket (%d of %d bytes read)" %
          (queued, len(" ".join(got))))
    eq(got, before)
    wait_caught_up(relay)
    eq(full(relay.port, name), full(path.replica.sync_port, name))


@test
def a_repair_in_pages_leaves_the_replica_identical():
    path = _path or setup()
    master, relay, replica = path.master, path.relay, path.replica
    wait_caught_up(relay)
    c = authed_client(replica.sync_port, "repl", cyrus.REPL_PASSWORD)
    c.sock.settimeout(120)
    check(c.cmd("APPLY UNUSER %s\r\n" % USER).startswith("OK"), "UNUSER")
    c.close()
    master.deliver(USER, cyrus.make_message(N + 1, 400))
    sync_user(master, USER)
    wait_caught_up(relay)
    check("event=repair" in relay.logtext(), relay.logtext()[-3000:])
    identical(master, replica, [USER])
    name = "user." + USER
    eq(full(relay.port, name), full(replica.sync_port, name))


if __name__ == "__main__":
    run("test_fullmailbox_paged", teardown=stop_paths)
