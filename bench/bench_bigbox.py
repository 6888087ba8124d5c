#!/usr/bin/env python3
"""bench_bigbox.py -- one user with a big INBOX through syncrelay: the
relay's memory for the one-shot ingest, for replaying it to a real
replica, and for a repair that sends the mailbox whole (issue 17).

    python3 ../bench/bench_bigbox.py [MESSAGES [SIZE]]   (20000, 1200)

Run as root from a build directory (BUILDDIR, SRCDIR as for the tests).
A real Cyrus 3.6.1 master gets user "big" with MESSAGES messages of
about SIZE bytes in its INBOX (written into the spool and indexed with
reconstruct, which is much faster than delivering them), and a real
3.6.1 replica.  Then:

  cyrus    sync_client -u big straight into the replica: the time
  ingest   a fresh relay (store s1, replica r1 paused): sync_client -u
           big into it; time, and the relay's VmRSS before and VmHWM
           after (the peak above idle is what the mailbox cost)
  replay   r1 resumed (the replica emptied with APPLY UNUSER first):
           until r1's cursor reaches the journal's end; VmHWM again
  fold     the relay restarted without its shadow (as after losing
           it): rebuilt from the journal at startup, first with the big
           record read whole (SYNCRELAY_BIG_TEXT above it: the former
           way), then in pieces (storage/fold.c); time, and VmHWM over
           ingest's idle
  audit    the relay restarted, idle; on the replica, behind the
           relay's back, flags changed on 5 messages and one expunged
           over IMAP; syncrelayctl audit s1 r1: the replica's GET
           FULLMAILBOX answer compared record by record as it arrives
           (relay/ops/audit_rec.c); time, what it named, and VmHWM
           over that idle
  get      the relay restarted (a fresh process: what ingest and
           replay left in its heap does not hide what comes next), idle
           again; GET FULLMAILBOX user.big asked of it and read: time,
           and VmHWM over that idle
  repair   the relay restarted again; the user removed from the
           replica behind the relay's back, one more message synced:
           the relay finds the mailbox missing and sends it whole from
           its shadow; VmHWM over the fresh process's idle VmRSS

BIGBOX_UNTIL=fold or audit (environment) stops after that step.

The ingest and replay VmHWM are the relay's peak since it started, so
each line says whether that step raised it.  BIGBOX_FRESH_REPLAY=1
(environment) restarts the relay between ingest and replay, so that the
replay's peak is measured apart from what ingest left.  The replay gives up after REPLAY_TIMEOUT
seconds (environment, 600): past 65,536 bodies it is quadratic (see
docs/scale.md).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))

import cyrus  # noqa: E402
from harness import authed_client  # noqa: E402
from relaytest import (CyrusPath, cursor_lsn, imap_steps,  # noqa: E402
                       relay_lsn, wait_caught_up)

REPLAY_TIMEOUT = int(os.environ.get("REPLAY_TIMEOUT", "600"))


def status(pid):
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                d[k] = int(v.split()[0]) / 1024.0
    return d


def spool_dir(inst, user):
    """The master's directory of user's INBOX (mbpath: 3.6 keeps new
    mailboxes by UUID)."""
    argv = inst._cmd([os.path.join(cyrus.CYRUS_BIN, "mbpath"), "-C",
                      inst.imapd_conf, inst.mailbox_name(user)])
    r = subprocess.run(argv, capture_output=True, text=True,
                       env=inst._env(), timeout=60)
    d = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not os.path.isdir(d):
        raise RuntimeError("mbpath: %r %s" % (r.stdout, r.stderr))
    return d


def fill(inst, user, n, size):
    d = spool_dir(inst, user)
    for i in range(1, n + 1):
        with open(os.path.join(d, "%d." % i), "wb") as f:
            f.write(cyrus.make_message(i, size))
    subprocess.run(["chown", "-R", "cyrus:mail", d], check=False)
    argv = inst._cmd([os.path.join(cyrus.CYRUS_BIN, "reconstruct"), "-C",
                      inst.imapd_conf, "-r", inst.mailbox_name(user)])
    r = subprocess.run(argv, capture_output=True, text=True,
                       env=inst._env(), timeout=3600)
    if r.returncode != 0:
        raise RuntimeError("reconstruct: %s %s" % (r.stdout[-500:],
                                                   r.stderr[-500:]))


def timed_sync(master, port, user):
    master.settings["sync_port"] = str(port)
    master.write_conf()
    t0 = time.time()
    rc, out, err = master.sync_client(["-u", user], timeout=3600)
    if rc != 0:
        raise RuntimeError("sync_client -u %s: rc=%r %s" % (user, rc,
                                                            err[-500:]))
    return time.time() - t0


def unuser(replica, user):
    c = authed_client(replica.sync_port, "repl", cyrus.REPL_PASSWORD)
    c.sock.settimeout(1800)     # 100,000 messages take a while
    r = c.cmd("APPLY UNUSER %s\r\n" % user)
    c.cmd("EXIT\r\n")
    if not r.startswith("OK"):
        raise RuntimeError("UNUSER: %s" % r)


class Peak(threading.Thread):
    """The largest VmRSS polled every 50 ms (VmHWM says the same, but
    this one also tells when)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, status(self.pid)["VmRSS"])
            except OSError:
                return
            self.stop.wait(0.05)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1200
    if os.geteuid() != 0:
        raise SystemExit("run as root (Cyrus instances are built as root)")
    path = CyrusPath("bench-bigbox-", users=(), relay=False, master=False)
    relay = None
    try:
        replica = path.replica
        master = path.start_master(cyrus.replication_conf(1))
        master.create_user("big")
        t0 = time.time()
        fill(master, "big", n, size)
        print("master: user big, %d messages of ~%d bytes in INBOX "
              "(written and reconstructed in %.1f s)"
              % (n, size, time.time() - t0), flush=True)
        tc = timed_sync(master, replica.sync_port, "big")
        print("  cyrus   sync_client -u big into a real sync_server: "
              "%.1f s" % tc, flush=True)
        unuser(replica, "big")

        relay = path.start_relay([("r1", replica.sync_port)])
        pid = relay.proc.pid
        relay.ctl("pause", "s1", "r1")
        time.sleep(2)
        idle = status(pid)["VmRSS"]
        print("  relay   idle: VmRSS %.1f MiB" % idle, flush=True)
        pk = Peak(pid)
        pk.start()
        t = timed_sync(master, relay.port, "big")
        st = status(pid)
        print("  ingest  sync_client -u big into syncrelay: %.1f s; "
              "VmHWM %.1f MiB (+%.1f over idle), VmRSS after %.1f MiB"
              % (t, st["VmHWM"], st["VmHWM"] - idle, st["VmRSS"]),
              flush=True)
        if os.environ.get("BIGBOX_FRESH_REPLAY"):
            # The replay's own peak, apart from what ingest left: a new
            # relay process on the same journal (r1's pause is kept).
            pk.stop.set()
            relay.stop(60)
            relay.start()
            pid = relay.proc.pid
            time.sleep(2)
            idle = status(pid)["VmRSS"]
            print("  relay   restarted, r1 still paused: idle VmRSS %.1f "
                  "MiB" % idle, flush=True)
            pk = Peak(pid)
            pk.start()
        t0 = time.time()
        relay.ctl("resume", "s1", "r1")
        try:
            wait_caught_up(relay, timeout=REPLAY_TIMEOUT)
        except AssertionError:
            st = status(pid)
            print("  replay  NOT caught up after %d s (r1's cursor at LSN "
                  "%d of %d); VmHWM %.1f MiB (+%.1f over idle)"
                  % (REPLAY_TIMEOUT, cursor_lsn(relay, "r1"),
                     relay_lsn(relay), st["VmHWM"], st["VmHWM"] - idle))
            return 1
        st = status(pid)
        print("  replay  to the real replica: %.1f s; VmHWM %.1f MiB "
              "(+%.1f over idle)" % (time.time() - t0, st["VmHWM"],
                                     st["VmHWM"] - idle), flush=True)
        pk.stop.set()
        print("  largest VmRSS polled: %.1f MiB" % pk.peak)
        # Twice: the big record read whole (as before fold.c read it in
        # pieces: a threshold no text reaches), then in pieces.
        shadow = os.path.join(relay.dir, "data", "s1", "shadow.db")
        for how, big in (("whole", "4000000000"), ("in pieces", None)):
            relay.stop(60)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(shadow + suffix):
                    os.unlink(shadow + suffix)
            mark = len(relay.logtext())
            if big:
                os.environ["SYNCRELAY_BIG_TEXT"] = big
            t0 = time.time()
            try:
                relay.start(timeout=3600)
            finally:
                os.environ.pop("SYNCRELAY_BIG_TEXT", None)
            st = status(relay.proc.pid)
            folds = re.findall(r"event=fold_big records=(\d+)",
                               relay.logtext()[mark:])
            print("  fold    relay restarted without its shadow, rebuilt "
                  "from the journal, the big record %s (%s logged): %.1f "
                  "s; VmHWM %.1f MiB (+%.1f over the first idle)"
                  % (how, "fold_big records=" + "/".join(folds) if folds
                     else "no fold_big", time.time() - t0, st["VmHWM"],
                     st["VmHWM"] - idle), flush=True)
        if os.environ.get("BIGBOX_UNTIL") == "fold":
            return 0
        relay.stop(60)
        relay.start()
        pid = relay.proc.pid
        wait_caught_up(relay, timeout=REPLAY_TIMEOUT)
        time.sleep(2)
        idle3 = status(pid)["VmRSS"]
        uids = [u for u in (10, n // 4, n // 2, 3 * n // 4, n - 5) if u > 0]
        imap_steps(replica, "big", ("select", ("INBOX",)),
                   ("uid", ("STORE", ",".join(map(str, uids)), "+FLAGS",
                            r"(\Answered)")),
                   ("uid", ("STORE", "77", "+FLAGS", r"(\Deleted)")),
                   ("expunge", ()))
        t0 = time.time()
        r = relay.ctl("audit", "s1", "r1", "--json", "--timeout", "1500",
                      timeout=1800)
        took = time.time() - t0
        st = status(pid)
        try:
            what = "; ".join(d["what"] for d in json.loads(
                r.stdout)["audits"][0]["mailboxes_differing"])
        except (ValueError, KeyError, IndexError):
            what = (r.stdout + r.stderr)[-300:]
        print("  audit   relay restarted, idle VmRSS %.1f MiB; syncrelayctl "
              "audit (exit %d): %.1f s; VmHWM %.1f MiB (+%.1f over idle)"
              "\n          named: %s" % (idle3, r.returncode, took,
                                        st["VmHWM"], st["VmHWM"] - idle3,
                                        what), flush=True)
        if os.environ.get("BIGBOX_UNTIL") == "audit":
            return 0
        relay.stop(60)
        relay.start()
        pid = relay.proc.pid
        time.sleep(2)
        idle2 = status(pid)["VmRSS"]
        t0 = time.time()
        c = authed_client(relay.port, "repl", cyrus.REPL_PASSWORD)
        c.sock.settimeout(600)
        c.send("GET FULLMAILBOX user.big\r\n")
        # Read raw: one line of 30 MB through Client.line() is
        # quadratic in the client.
        data, line = bytearray(c.buf), "?"
        while True:
            m = re.search(rb"\r\n((?:OK|NO|BAD)[^\r\n]*)\r\n$",
                          bytes(data[-300:]))
            if m:
                line = m.group(1).decode()
                break
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        nbytes = len(data)
        c.close()
        st = status(pid)
        print("  get     relay restarted, idle VmRSS %.1f MiB; GET "
              "FULLMAILBOX user.big (%s, %.1f MB): %.1f s; VmHWM %.1f MiB "
              "(+%.1f over idle)" % (idle2, line, nbytes / 1e6,
                                     time.time() - t0, st["VmHWM"],
                                     st["VmHWM"] - idle2), flush=True)
        relay.stop(60)
        relay.start()
        pid = relay.proc.pid
        time.sleep(2)
        base = status(pid)["VmRSS"]
        unuser(replica, "big")
        master.deliver("big", cyrus.make_message(n + 1, size))
        t0 = time.time()
        timed_sync(master, relay.port, "big")
        wait_caught_up(relay, timeout=3600)
        st = status(pid)
        repaired = relay.logtext().count("event=repair")
        print("  repair  mailbox missing on the replica, sent whole: "
              "%.1f s (%d repair log lines); VmHWM %.1f MiB (+%.1f over "
              "the restarted relay's idle VmRSS, %.1f MiB)"
              % (time.time() - t0, repaired, st["VmHWM"],
                 st["VmHWM"] - base, base), flush=True)
        return 0
    finally:
        if relay:
            relay.stop(60)
            shutil.rmtree(relay.dir, ignore_errors=True)
        path.stop()


if __name__ == "__main__":
    sys.exit(main())
