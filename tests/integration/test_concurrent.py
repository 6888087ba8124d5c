#!/usr/bin/env python3
"""test_concurrent.py -- several master sessions of one store at once
(issue 13, part 4), as a real sync_server serves them: an operator's
one-shot sync_client -u beside the rolling sync_client, both succeeding
and the replica converging; two sessions changing one user at once, the
journal and the shadow staying one (a shadow rebuilt from the journal
answers the same); status showing the sessions, and a warning when they
come from different hosts (two masters writing one store).
"""
import glob
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import (Client, authed_client, check, eq, plain, read_reply,
                     run, sasl_relay, test)
from relaytest import (CyrusPath, converge, direct_applies, imap_steps,
                       populate, stop_paths, wait_caught_up)

# Its replica never answers: ingest alone.
STORE = "store.s1.identity: repl\nstore.s1.replica.r1: 127.0.0.1:1\n"


# bob's INBOX, empty, as a 3.6 master sends it.
INBOX = ("APPLY MAILBOX %%(UNIQUEID bobbox1 MBOXNAME user.bob SYNC_CRC 0 "
         "LAST_UID 0 HIGHESTMODSEQ 1 RECENTUID 0 RECENTTIME 0 "
         "LAST_APPENDDATE 0 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 UIDVALIDITY "
         "1700000000 PARTITION default ACL %s OPTIONS P CREATEDMODSEQ 1 "
         "FOLDERMODSEQ 1 RECORD ())\r\n" % '"bob\tlrswipkxtecdan\t"')


def get(c, line):
    c.send(line + "\r\n")
    return read_reply(c)


def rebuilt(relay):
    """Stops relay, removes its shadow and starts it again: the shadow is
    then the fold of the journal alone."""
    relay.stop()
    for f in glob.glob(os.path.join(relay.dir, "data", "s1", "shadow.db*")):
        os.unlink(f)
    mark = len(relay.logtext())
    relay.start()
    # The listener is bound before the stores open: wait for the store.
    deadline = time.time() + 30
    while time.time() < deadline and "event=opened" not in \
            relay.logtext()[mark:]:
        time.sleep(0.1)
    check("event=shadow_caught_up" in relay.logtext()[mark:] or
          "event=opened" in relay.logtext()[mark:], relay.logtext()[mark:])


class FromHost(Client):
    """A Client whose connection comes from another loopback address."""

    def __init__(self, port, source, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""



def rolling_with_changes(master, relay, user):
    """The rolling sync_client logged in and staying connected, and a
    thread changing user's mail on the master meanwhile."""
    master.start_rolling()
    relay.wait_log("event=login user=repl store=s1", timeout=30)
    stop, errors = threading.Event(), []
    t = threading.Thread(target=changer, args=(master, user, stop, errors))
    t.start()
    return stop, errors, t

@test
def sessions_shown_and_other_hosts_warned():
    relay = sasl_relay({"repl": "replpw"}, STORE)
    try:
        a = authed_client(relay.port, "repl", "replpw")
        b = authed_client(relay.port, "repl", "replpw")
        m = relay.status("s1")["stores"][0]["master"]
        eq((m["connected"], m["sessions"], m["hosts"], len(m["peers"])),
           (True, 2, 1, 2))
        check(m["peer"] == m["peers"][0], m)
        check("masters_on_several_hosts" not in relay.logtext(),
              relay.logtext())
        r = relay.ctl("status", "s1")
        check("2 sessions from 127.0.0.1:" in r.stdout, r.stdout)
        check("WARNING" not in r.stdout, r.stdout)
        # A session of the same identity from another host: a second
        # master, maybe (split brain).  It is served, and shown.
        c = FromHost(relay.port, "127.0.0.2")
        c.banner()
        eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "replpw")),
           "OK Success (no protection)")
        relay.wait_log("event=masters_on_several_hosts hosts=2 sessions=3 "
                       "peer=127.0.0.2:")
        m = relay.status("s1")["stores"][0]["master"]
        eq((m["sessions"], m["hosts"]), (3, 2))
        check(any(p.startswith("127.0.0.2:") for p in m["peers"]), m)
        r = relay.ctl("status", "s1")
        check("WARNING  master sessions from 2 different hosts" in r.stdout,
              r.stdout)
        for x in (a, b, c):
            eq(x.cmd("EXIT\r\n"), "OK Finished")
            x.close()
        deadline = time.time() + 10
        while relay.status("s1")["stores"][0]["master"]["sessions"] and \
                time.time() < deadline:
            time.sleep(0.1)
        m = relay.status("s1")["stores"][0]["master"]
        eq((m["connected"], m["sessions"], m["peers"]), (False, 0, []))
    finally:
        relay.stop()


@test
def pipelined_sessions_apply_whole_and_in_order():
    """Two sessions pipeline changes to one user at once: every one gets
    its OK (none fails to find the shadow free), both see the same
    result, and a shadow rebuilt from the journal gives the same GET."""
    relay = sasl_relay({"repl": "replpw"}, STORE)
    try:
        a = authed_client(relay.port, "repl", "replpw")
        b = authed_client(relay.port, "repl", "replpw")
        eq(a.cmd(INBOX), "OK success")
        n = 150
        cmds = {a: [], b: []}
        for i in range(n):
            cmds[a].append("APPLY SUB %%(USERID bob MBOXNAME user.bob.a%d)"
                           % i)
            cmds[b].append("APPLY SUB %%(USERID bob MBOXNAME user.bob.b%d)"
                           % i)
            # Both toggle the same subscription too.
            verb = "SUB" if i % 2 == 0 else "UNSUB"
            cmds[a].append("APPLY %s %%(USERID bob MBOXNAME user.bob.both)"
                           % verb)
            cmds[b].append("APPLY %s %%(USERID bob MBOXNAME user.bob.both)"
                           % verb)
        for c in (a, b):
            c.sock.settimeout(60)
        threads = [threading.Thread(target=lambda c=c: c.send(
            "".join(x + "\r\n" for x in cmds[c]))) for c in (a, b)]
        for t in threads:
            t.start()
        replies = {a: [], b: []}
        for c in (a, b):
            for _ in cmds[c]:
                replies[c].append(c.line())
        for t in threads:
            t.join()
        for c in (a, b):
            bad = [(x, r) for x, r in zip(cmds[c], replies[c])
                   if r != "OK success"]
            check(not bad, bad[:5])
        ua, ub = get(a, "GET USER bob"), get(b, "GET USER bob")
        eq(ua, ub)
        subs = sorted(re.findall(r"user\.bob\.\w+", " ".join(ua)))
        for i in range(n):
            check("user.bob.a%d" % i in subs and "user.bob.b%d" % i in subs,
                  subs)
        for c in (a, b):
            eq(c.cmd("EXIT\r\n"), "OK Finished")
            c.close()
        rebuilt(relay)
        c = authed_client(relay.port, "repl", "replpw")
        eq(get(c, "GET USER bob"), ua)
        c.close()
    finally:
        relay.stop()


def changer(master, user, stop, errors):
    """Changes user's mail on the master until stop is set."""
    i = 0
    try:
        while not stop.is_set():
            master.deliver(user, cyrus.make_message(5000 + i, 2000 + i))
            if i % 3 == 0:
                imap_steps(master, user, ("select", ("INBOX",)),
                           ("uid", ("STORE", "1:*", "+FLAGS",
                                    r"(\Seen)" if i % 2 else "($L%d)" % i)))
            if i % 5 == 0:
                imap_steps(master, user, ("create", ("Tmp%d" % i,)))
            if i % 5 == 2:
                imap_steps(master, user, ("delete", ("Tmp%d" % (i - 2),)))
            i += 1
            time.sleep(0.2)
    except Exception as e:
        errors.append(e)


@test
def one_shot_sync_beside_the_rolling_one():
    """sync_client -u while the rolling sync_client runs: both succeed
    (Cyrus alone: at once) and the replica ends up as the master."""
    path = CyrusPath("syncrelay-concurrent-", users=("alice", "bob"))
    try:
        master, relay = path.master, path.relay
        populate(master, "alice", 30, big=())
        master.create_user("bob")
        master.deliver("bob", cyrus.make_message(1, 3000))
        stop, errors, t = rolling_with_changes(master, relay, "bob")
        try:
            for user in ("alice", "bob"):
                started = time.time()
                rc, out, err = master.sync_client(["-u", user], timeout=90)
                check(rc == 0, "sync_client -u %s rc=%r after %.0f s\n%s%s"
                      % (user, rc, time.time() - started, out, err))
        finally:
            stop.set()
            t.join()
        check(not errors, errors)
        check("event=concurrent_session sessions=2" in relay.logtext(),
              relay.logtext()[-3000:])
        check(master.rolling.poll() is None, "the rolling sync_client quit")
        converge(master, path.replica, ["alice", "bob"], timeout=120)
        master.stop_rolling()
        wait_caught_up(relay)
        for user in ("alice", "bob"):
            eq(direct_applies(master, path.replica, user), [])
        check("event=apply_not_durable" not in relay.logtext() and
              "event=shadow_failed" not in relay.logtext(),
              relay.logtext()[-3000:])
    finally:
        path.stop()


@test
def two_sessions_change_one_user_and_the_shadow_stays_the_fold():
    """One-shot syncs of a user, one after another, while the rolling
    sync_client sends that same user's changes: the sessions interleave
    on one user; every sync succeeds, the replica converges, and a shadow
    rebuilt from the journal answers every GET as the live one did."""
    path = CyrusPath("syncrelay-concurrent2-", users=("carol",))
    try:
        master, relay = path.master, path.relay
        populate(master, "carol", 20, big=())
        stop, errors, t = rolling_with_changes(master, relay, "carol")
        try:
            for _ in range(4):
                rc, out, err = master.sync_client(["-u", "carol"],
                                                  timeout=90)
                check(rc == 0, "sync_client -u rc=%r\n%s%s" % (rc, out, err))
        finally:
            stop.set()
            t.join()
        check(not errors, errors)
        converge(master, path.replica, ["carol"], timeout=120)
        master.stop_rolling()
        wait_caught_up(relay)
        eq(direct_applies(master, path.replica, "carol"), [])
        log = relay.logtext()
        check("event=concurrent_session sessions=2" in log, log[-3000:])
        check("event=apply_not_durable" not in log and
              "event=shadow_failed" not in log, log[-3000:])
        # What the master would be told, live and rebuilt.
        c = authed_client(relay.port, "repl", cyrus.REPL_PASSWORD)
        user = get(c, "GET USER carol")
        names = re.findall(r"MBOXNAME (\S+)", " ".join(user))
        check(len(names) >= 4, user)
        full = [get(c, "GET FULLMAILBOX %s" % name) for name in names]
        c.close()
        rebuilt(relay)
        c = authed_client(relay.port, "repl", cyrus.REPL_PASSWORD)
        eq(get(c, "GET USER carol"), user)
        eq([get(c, "GET FULLMAILBOX %s" % name) for name in names], full)
        c.close()
    finally:
        path.stop()


def body(n, seed):
    """n bytes of message-like text and its GUID (SHA-1)."""
    import hashlib
    import random as rnd
    r = rnd.Random(seed)
    data = "".join(r.choice("abcdefgh ijklmnop\r\n") for _ in range(n))
    data = data.encode()
    return data, hashlib.sha1(data).hexdigest()


def message_line(guid, size):
    return ("APPLY MESSAGE (%%{default %s %d}\r\n" % (guid, size)).encode()


@test
def bodies_of_two_sessions_interleaved_are_both_kept():
    """One session's body arrives over several reads while another session
    of the store sends a whole body and a change: both bodies and the
    change are journaled whole (before, the second body's start cut the
    first, whose APPLY MESSAGE got a NO, and a record could be written
    inside a body still arriving), and the journal verifies."""
    relay = sasl_relay({"repl": "replpw"}, STORE)
    try:
        a = authed_client(relay.port, "repl", "replpw")
        b = authed_client(relay.port, "repl", "replpw")
        big, gbig = body(600000, 1)
        small, gsmall = body(50000, 2)
        a.send(message_line(gbig, len(big)) + big[:300000])
        time.sleep(0.5)        # the relay has begun journaling A's body
        b.send(message_line(gsmall, len(small)) + small + b")\r\n")
        b.send(INBOX.encode())
        time.sleep(0.5)
        a.send(big[300000:] + b")\r\n")
        for c in (a, b):
            c.sock.settimeout(30)
        eq(a.line(), "OK success")
        eq(b.line(), "OK success")
        eq(b.line(), "OK success")
        for c in (a, b):
            eq(c.cmd("EXIT\r\n"), "OK Finished")
            c.close()
        relay.stop()
        jdir = os.path.join(relay.dir, "data", "s1", "journal")
        v = run_tool("verify", jdir)
        eq(v.returncode, 0)
        dump = run_tool("dump", jdir).stdout
        for g, n in ((gbig, len(big)), (gsmall, len(small))):
            check(re.search(r"BODY.*%s" % g, dump, re.I), dump[:2000])
        check("user.bob" in dump, dump[:2000])
    finally:
        relay.stop()


def run_tool(*args):
    import subprocess
    from harness import BUILDDIR
    return subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal")] +
                          list(args), capture_output=True, text=True,
                          timeout=60)


if __name__ == "__main__":
    run("test_concurrent", teardown=stop_paths)
