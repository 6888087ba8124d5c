#!/usr/bin/env python3
"""test_scale.py -- what a store holds while idle (issue 17): with real
Debian Cyrus at both ends, a store whose master went quiet closes its
journal segment and its shadow database (no descriptor on either), and
the next change reopens them with nothing lost; a link whose replica is
down holds no socket between attempts; the journal writers are a small
pool, not a thread per store; and the start checks RLIMIT_NOFILE against
what the configuration needs, raising the soft limit when the hard one
allows.  The figures at 1,000 stores are bench/bench_scale.py's.
"""
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
import harness
from harness import Relay, check, eq, run, test
from relaytest import CyrusPath, identical, stop_paths, sync_user, \
    wait_caught_up


def fds(pid):
    """{target: count} of pid's descriptors."""
    out = {}
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        out[t] = out.get(t, 0) + 1
    return out


def store_files(pid, store_dir):
    """Descriptors on a store's segments and shadow database."""
    return sorted(t for t in fds(pid)
                  if t.startswith(store_dir) and
                  (t.endswith(".seg") or "/shadow.db" in t))


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def until(cond, what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("never: " + what)


@test
def an_idle_store_closes_its_files_and_reopens_them():
    # Retention runs every second and reads the shadow: the idle store
    # must close it again each time.
    path = CyrusPath("syncrelay-scale-", extra="store_idle_close: 1s\n"
                     "retention_interval: 1s\n")
    try:
        relay, master = path.relay, path.master
        pid = relay.proc.pid
        sdir = os.path.join(relay.dir, "data", "s1")
        master.create_user("alice")
        for i in range(5):
            master.deliver("alice", cyrus.make_message(i, 3000))
        sync_user(master)
        wait_caught_up(relay)
        until(lambda: store_files(pid, sdir) == [],
              "the idle store's segment and shadow closed (open: %s)"
              % store_files(pid, sdir))
        time.sleep(3)       # retention opened the shadow meanwhile
        until(lambda: store_files(pid, sdir) == [],
              "closed again after retention", timeout=5)
        # The next change reopens both and goes through whole.
        for i in range(5, 12):
            master.deliver("alice", cyrus.make_message(i, 3000))
        sync_user(master)
        wait_caught_up(relay)
        identical(master, path.replica, ["alice"])
        st = relay.status()["stores"][0]
        eq(st["name"], "s1")
        until(lambda: store_files(pid, sdir) == [],
              "closed again once idle")
        # Restarted, it reads what the closed files hold.
        check(relay.stop(30) == 0, "clean stop")
        relay.start()
        master.deliver("alice", cyrus.make_message(99, 2000))
        sync_user(master)
        wait_caught_up(relay)
        identical(master, path.replica, ["alice"])
    finally:
        path.stop()


def many_stores_conf(n, port):
    """n stores whose replica is down (nothing listens on port)."""
    out = ["replica_authname: repl", "replica_password: x"]
    for i in range(1, n + 1):
        out.append("store.t%d.identity: repl-t%d" % (i, i))
        out.append("store.t%d.replica.r1: 127.3.%d.%d:%d"
                   % (i, i // 250, i % 250 + 1, port))
    return "\n".join(out) + "\n"


def dead_port():
    import socket
    for p in range(29000, 32000):
        so = socket.socket()
        try:
            so.bind(("0.0.0.0", p))
            return p
        except OSError:
            continue
        finally:
            so.close()
    raise AssertionError("no free port")


@test
def down_replicas_hold_no_socket_and_writers_are_a_pool():
    relay = Relay(many_stores_conf(60, dead_port()) +
                  "journal_writer_threads: 3\n").start()
    try:
        pid = relay.proc.pid
        relay.wait_log("event=connect_failed", 10)
        time.sleep(3)       # several attempts per link
        socks = sum(c for t, c in fds(pid).items()
                    if t.startswith("socket:"))
        # csync, metrics and control listeners: no link's socket.
        check(socks <= 4, "%d sockets with 60 replicas down" % socks)
        shadows = sum(c for t, c in fds(pid).items() if "/shadow.db" in t)
        eq(shadows, 0)
        # Main, the cursor writer and the pool (3): not 60 writers.
        check(threads(pid) <= 5, "%d threads for 60 stores"
              % threads(pid))
    finally:
        relay.stop(30)


def limits(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return [int(x) for x in line.split()[3:5]]
    raise AssertionError("no limit")


class LimitedRelay(Relay):
    """A Relay started with RLIMIT_NOFILE (soft, hard)."""

    def __init__(self, conf, nofile):
        self.nofile = nofile
        Relay.__init__(self, conf)

    def start(self):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [harness.SYNCRELAY, "-C", self.conf, "-f"], stdout=self.log,
            stderr=self.log, preexec_fn=lambda: resource.setrlimit(
                resource.RLIMIT_NOFILE, self.nofile))
        harness.wait_port(self.port)
        return self


@test
def the_start_checks_the_descriptor_limit():
    port = dead_port()
    # 300 stores x 1 replica need 64 + 1024 + 300 * 4 + 3 * 256 = 3056.
    conf = many_stores_conf(300, port)
    relay = LimitedRelay(conf, (1024, 8192)).start()
    try:
        relay.wait_log("event=nofile_raised needed=3056 soft=8192 "
                       "was=1024", 10)
        relay.wait_log("event=nofile_ok needed=3056 limit=8192", 10)
        eq(limits(relay.proc.pid), [8192, 8192])
    finally:
        relay.stop(30)
    relay = LimitedRelay(conf, (1024, 2048)).start()
    try:
        relay.wait_log("event=nofile_too_low needed=3056 limit=2048 "
                       "hard=2048 stores=300", 10)
        eq(limits(relay.proc.pid), [2048, 2048])
    finally:
        relay.stop(30)


if __name__ == "__main__":
    run("test_scale", teardown=stop_paths)
