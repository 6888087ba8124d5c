#!/usr/bin/env python3
"""test_hostile.py -- hostile clients on the master-facing port (issue 16).

A flood of idle unauthenticated connections must not keep a real Cyrus
master out; wrong passwords are answered only after failedloginpause and
a connection gets max_login_failures of them; before login every command
gets the reply a real 3.6.1 sync_server gives, even one that announces a
huge literal, and no literal past preauth_max_line_bytes is read; an
unauthenticated connection is closed after login_timeout, while
sync_timeout applies only once logged in.
"""
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import cyrus
from harness import (Client, Relay, check, eq, plain, run, sasldb, test)
from relaytest import CyrusPath, converge, sync_user, wait_caught_up


def scrape(relay):
    url = "http://127.0.0.1:%d/metrics" % relay.metrics_port
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def auth_relay(extra=""):
    """A started relay with store s1 for identity repl (PLAIN)."""
    relay = Relay()
    db = os.path.join(relay.dir, "sasldb2")
    sasldb(db, "repl", cyrus.REPL_PASSWORD)
    relay.write_conf("allowplaintext: yes\nsasl_sasldb_path: %s\n"
                     "sasl_mech_list: PLAIN\nstore.s1.identity: repl\n"
                     "store.s1.replica.r1: 127.0.0.1:1\n" % db + extra)
    return relay.start()


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
                return
            except (ValueError, OSError):
                want = hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@test
def flood_of_idle_connections_does_not_keep_the_master_out():
    """1,100 idle unauthenticated connections from eleven addresses (more
    than max_connections, 1024), held open while a real master does a
    one-shot sync through the relay, with the default configuration."""
    raise_nofile(4096)
    path = CyrusPath("syncrelay-hostile-")
    flood = []
    try:
        master, replica, relay = path.master, path.replica, path.relay
        master.create_user("alice")
        master.deliver("alice", cyrus.make_message(1, 3000))
        start = time.time()
        for i in range(1100):
            src = "127.0.0.%d" % (2 + i // 100)
            s = socket.create_connection(("127.0.0.1", relay.port), 10,
                                         source_address=(src, 0))
            flood.append(s)
        print("# 1,100 idle connections opened in %.1fs" %
              (time.time() - start))
        t = time.time()
        sync_user(master, "alice")
        print("# sync_client through the flood took %.1fs" %
              (time.time() - t))
        wait_caught_up(relay)
        converge(master, replica, ["alice"])
        m = scrape(relay)
        evicted = m['syncrelay_preauth_closed_total{reason="evicted"}']
        check(evicted >= 1100 - 128, "evicted %r" % evicted)
        check(m["syncrelay_preauth_connections"] <= 128, m)
        log = relay.logtext()
        check("event=login user=repl store=s1" in log, log[-2000:])
        # Summarised, not a line per connection.
        lines = len(re.findall(r"event=(connect|disconnect) ", log))
        check(lines < 200, "%d connect/disconnect lines" % lines)
        relay.wait_log("event=preauth_summary", timeout=15)
        print("# evicted %d; %d connect/disconnect lines logged" %
              (evicted, lines))
        for line in relay.logtext().splitlines():
            if "event=preauth_summary" in line:
                print("# " + line)
        for k, v in sorted(scrape(relay).items()):
            if "preauth" in k or "login_failures" in k:
                print("# %s %d" % (k, v))
    finally:
        for s in flood:
            s.close()
        path.stop()


@test
def wrong_passwords_are_slowed_and_limited():
    relay = auth_relay()
    try:
        c = Client(relay.port, timeout=30)
        c.banner()
        other = Client(relay.port, timeout=30)
        other.banner()
        start = time.time()
        replies = []
        for i in range(3):
            c.send("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "wrong%d" % i))
            if i == 0:
                # The pause is a timer: the loop serves others meanwhile.
                t = time.time()
                eq(other.cmd("NOOP\r\n"), "OK Noop completed")
                check(time.time() - t < 1.0, "NOOP waited for the pause")
            try:
                replies.append(c.line())
            except EOFError:
                break
        took = time.time() - start
        print("# three wrong passwords took %.1fs" % took)
        check(took >= 6.0, "three wrong logins took %.1fs" % took)
        eq(replies, ["NO authentication failure"] * 3)
        check(c.closed(5), "the third failure must close the connection")
        relay.wait_log("reason=\"too many failed logins")
        check(re.search(r"peer=127\.0\.0\.1:\d+ event=auth_failed "
                        r"reason=\"authentication failure\" failures=3",
                        relay.logtext()), relay.logtext())
        m = scrape(relay)
        eq(m["syncrelay_login_failures_total"], 3)
        eq(m['syncrelay_preauth_closed_total{reason="login_failures"}'], 1)
        # The right password is not slowed down.
        t = time.time()
        ok = Client(relay.port)
        ok.banner()
        eq(ok.cmd("AUTHENTICATE PLAIN %s\r\n" %
                  plain("repl", cyrus.REPL_PASSWORD)),
           "OK Success (no protection)")
        took = time.time() - t
        check(took < 2.0, "a right password took %.1fs" % took)
        ok.close()
        other.close()
    finally:
        relay.stop()


PREAUTH = [
    b"APPLY MESSAGE ({999999999999}\r\n",
    b"APPLY MESSAGE (%{default " + b"0" * 40 + b" 99999999999}\r\n",
    b"APPLY MESSAGE ({5}\r\nhello)\r\n",
    b"APPLY MESSAGE ({5+}\r\nhello)\r\n",
    b"APPLY MESSAGE ({5+}\r\nhe{3+}\r\nabc\r\n",
    b"GET USER {5+}\r\nalice\r\n",
    b"GET USER {5+}x\r\nalice\r\n",
    b"GET USER alice\r\n",
    b"RESTORE MAILBOX x\r\n",
    b"NOOP {5+}\r\nhello\r\n",
    b"NOOP {999999999}\r\n",
    b"EXIT {999999999}\r\n",
    b"FROB {999999999}\r\n",
    b" {5+}\r\nhello\r\n",
    b"\r\n",
    b"ap\r\n",
    b"LOGOUT\r\n",
    b"AUTHENTICATE {5+}\r\nhello\r\n",
    b"AUTHENTICATE PLAIN {5+}\r\nhello\r\n",
    b"AUTHENTICATE PLAIN {999999999}\r\n",
    b"AUTHENTICATE PLAIN " + b"x" * 70000 + b"\r\n",
    b"x" * 70000 + b"\r\n",
    b"STARTTLS {5}\r\n",
    b"COMPRESS DEFLATE {5+}\r\nhello\r\n",
]


def preauth_replies(port, cmd):
    """The replies to cmd, up to the OK of a NOOP sent after it."""
    c = Client(port, timeout=15)
    c.banner()
    c.send(cmd + b"NOOP\r\n")
    lines = []
    try:
        while True:
            line = c.line()
            lines.append(line)
            if line == "OK Noop completed":
                break
    except EOFError:
        lines.append("<closed>")
    except socket.timeout:
        lines.append("<no reply>")
    c.close()
    return lines


@test
def replies_before_login_are_a_real_sync_servers():
    root = tempfile.mkdtemp(prefix="syncrelay-hostile-")
    log = cyrus.Syslog(os.path.join(root, "syslog")).start()
    replica = relay = None
    try:
        replica = cyrus.CyrusInstance(root, "replica", syslog=log)
        replica.start()
        relay = auth_relay()
        differ = []
        for cmd in PREAUTH:
            want = preauth_replies(replica.sync_port, cmd)
            got = preauth_replies(relay.port, cmd)
            if want != got:
                differ.append("%r\n  sync_server: %r\n  relay:       %r" %
                              (cmd[:60], want, got))
        if differ:
            raise AssertionError("\n".join(differ))
        print("# %d commands before login, every reply the same" %
              len(PREAUTH))
        # A {N+} literal over preauth_max_line_bytes: answered, then
        # closed rather than read (a sync_server would read it all).
        c = Client(relay.port)
        c.banner()
        c.send(b"APPLY MESSAGE ({999999999+}\r\n")
        eq(c.line(), "NO Please authenticate first")
        check(c.closed(5), "the connection must be closed")
        eq(scrape(relay)['syncrelay_preauth_closed_total{reason="literal"}'],
           1)
    finally:
        if relay:
            relay.stop()
        if replica:
            replica.stop()
        log.stop()
        shutil.rmtree(root, ignore_errors=True)


@test
def login_deadline_then_sync_timeout():
    relay = auth_relay("login_timeout: 2s\nsync_timeout: 5s\n")
    try:
        idle = Client(relay.port)
        idle.banner()
        logged = Client(relay.port)
        logged.banner()
        eq(logged.cmd("AUTHENTICATE PLAIN %s\r\n" %
                      plain("repl", cyrus.REPL_PASSWORD)),
           "OK Success (no protection)")
        start = time.time()
        check(idle.closed(15), "an idle unauthenticated connection must go")
        took = time.time() - start
        print("# closed after %.1fs (login_timeout 2s)" % took)
        check(took < 4.5, "the login deadline took %.1fs" % took)
        relay.wait_log("reason=\"no login within login_timeout (2s)\"")
        # Logged in: login_timeout no longer applies, sync_timeout does.
        eq(logged.cmd("NOOP\r\n"), "OK Noop completed")
        check(logged.closed(15), "sync_timeout must close it")
        took = time.time() - start
        check(took >= 4.5, "sync_timeout came after %.1fs" % took)
        relay.wait_log("reason=\"idle timeout\"")
        eq(scrape(relay)[
            'syncrelay_preauth_closed_total{reason="login_timeout"}'], 1)
    finally:
        relay.stop()


if __name__ == "__main__":
    run("test_hostile")
