#!/usr/bin/env python3
"""bench_scale.py -- one syncrelay with many stores.

    python3 ../bench/bench_scale.py [--stores N] [--active K]
        [--replicas R] [--seconds S] [--rate RATE] [--conf LINE]...
    python3 ../bench/bench_scale.py --legacy [--seconds S] [--rate RATE]

Default (issue 17): N stores (1,000) x R replicas (2), every replica
down (each at its own loopback address where nothing listens: a
maintenance window of everything).  Once every store is open and 5 s
idle: VmRSS, VmHWM, threads and descriptors (counted by kind: segment,
shadow, cursor, socket...).  Then K stores (50) ingest at once, one
scripted master session each (the session shape below, RATE rounds/s),
with the same figures half way through; idle again 5 s and 15 s later
(store_idle_close is 10 s).  Then the same K sessions, same shape, go to
a real Cyrus 3.6.1 sync_server, and p50/p99 APPLY of both are printed.
Targets: idle VmRSS <= 64 MiB, VmHWM <= 128 MiB, <= 32 threads, <= 4
descriptors per idle store, p99 APPLY <= 1.5x the sync_server's.  About
a minute at 1,000 stores.  --conf adds a line to the relay's config.

--legacy: the earlier run, described here.  One syncrelay with 200
stores: idle memory, status, and 20 stores ingesting at once from 20
concurrent master sessions.

Setup: a config with 200 stores s001..s200, identities repl-s001..
repl-s200 (PLAIN, one sasldb of the relay's own).  Every store but s021
replicates to ONE real Cyrus 3.6.1 replica instance that has 199 extra
sync_server listeners, one per store (200 Cyrus instances on the 2-core
VM would measure Cyrus more than the relay), so all 199 links are logged
in and replay; s021's replica is a port where nothing listens (its link
stays down and retries).

Parts, all against the same daemon (an -O2 build; BUILDDIR):

  idle      started, 5 s idle: VmRSS / VmHWM from /proc/PID/status,
            target < 64 MiB; `syncrelayctl -C CONF status --json` must
            list all 200 stores
  disk      the disk alone, for scale: fdatasync latency of 1 and of 20
            files appended to at a store's pace (no relay involved)
  solo      s001, s010, s020 alone, one master session each, paced
  20        20 stores at once (s001..s020), same pace per session
  20, one   s002..s020 as before plus s021, whose replica is down, in
  down      place of s001: the 19 common stores' figures against "20"
            (solo, "20" and "one down" run in three rounds; per store the
            best p99 of the rounds is compared, every round is printed)
  lockstep  the same 20, but every session's rounds at the same instants
            (a burst of 20 requests at once, 8 times a second): informative
  flat out  20 sessions without pacing: the aggregate throughput
  idle      after every one of the 200 stores ingested one round: RSS
  again     again (what a store keeps once it has been used)

The master sessions are a scripted csync client (one process each):
AUTHENTICATE PLAIN, APPLY CAPABILITIES, then rounds shaped like the
recorded rolling session tests/fixtures/traces/b-rolling-batch: APPLY
RESERVE of the new GUIDs, APPLY MESSAGE with the bodies (literal file
parts, SHA-1 GUIDs), APPLY MAILBOX with SINCE_MODSEQ/SINCE_CRC and the
new records, SYNC_CRC computed as Cyrus does.  Every mailbox and user is
new per store and part (user.<store><part>), so nothing collides on the
shared replica.  Each APPLY is timed from the first byte sent to its OK
line.  Paced, session i of n starts round k at (k + i/n)/RATE s: 20
independent masters, not in lockstep (a late round starts at once; the
schedule does not drift).  The recorded traces hold a handful of
messages each, so the stream is synthesized in their format rather than
replayed byte for byte.

Run from a build directory (root: Cyrus instances are built as root).
"""
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import zlib

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
BUILDDIR = os.environ["BUILDDIR"]
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))

import cyrus  # noqa: E402
import relaytest  # noqa: E402
from harness import (Client, free_port, plain,  # noqa: E402
                     read_reply, relay_lsn, sasl_relay)

NSTORES = 200
NACTIVE = 20            # stores ingesting at once: s001..s020
DOWN = NACTIVE + 1      # s021: the one store whose replica is down
SOLO = (1, 10, 20)      # stores measured alone
MSGS_PER_ROUND = 3
MSG_SIZE = 4096
PASSWORD = "bench-secret"
MIB = 1024 * 1024


def sname(i):
    return "s%03d" % i if i < 1000 else "s%d" % i


# ---------------------------------------------------------------------------
# the replica: one Cyrus with a sync_server listener per active store


def distinct_ports(n):
    """n free ports, all different (each held open until all are found,
    so the kernel cannot hand out one twice)."""
    socks = []
    try:
        for _ in range(n):
            so = socket.socket()
            so.bind(("127.0.0.1", 0))
            socks.append(so)
        return [so.getsockname()[1] for so in socks]
    finally:
        for so in socks:
            so.close()


class MultiSyncCyrus(cyrus.CyrusInstance):
    """A CyrusInstance with extra sync_server services, one per port in
    extra_sync_ports (cyrus.py has no hook for it; this only adds lines to
    the cyrus.conf it writes)."""

    def __init__(self, root, name, nextra, **kw):
        self.extra_sync_ports = distinct_ports(nextra)
        super().__init__(root, name, **kw)

    def write_conf(self):
        super().write_conf()
        with open(self.cyrus_conf) as f:
            text = f.read()
        lines = "".join(
            '  sync%d cmd="%s/sync_server -C %s" listen="127.0.0.1:%d" '
            'prefork=0\n' % (i, cyrus.CYRUS_BIN, self.imapd_conf, p)
            for i, p in enumerate(self.extra_sync_ports))
        text = text.replace("}\nDAEMON {\n", lines + "}\nDAEMON {\n", 1)
        with open(self.cyrus_conf, "w") as f:
            f.write(text)

    @property
    def ports(self):
        d = super().ports
        for i, p in enumerate(self.extra_sync_ports):
            d["sync%d" % i] = p
        return d


# ---------------------------------------------------------------------------
# the relay


def relay_conf(ports):
    """ports[i - 1]: the replica port of store i."""
    out = ["replica_authname: repl",
           "replica_password: %s" % cyrus.REPL_PASSWORD]
    for i in range(1, NSTORES + 1):
        port = ports[i - 1]
        out.append("store.%s.identity: repl-%s" % (sname(i), sname(i)))
        out.append("store.%s.replica.r1: 127.0.0.1:%d" % (sname(i), port))
    return "\n".join(out) + "\n"


def proc_status(pid):
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                d[k] = int(v.split()[0])
    return d            # kB, kB, count


class RssSampler(threading.Thread):
    """Largest VmRSS seen while running (0.1 s polls)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            except OSError:
                return
            self.stop.wait(0.1)


def cursor_lsn(relay, store):
    """The store's replica r1's cursor as written; 0 before it exists."""
    try:
        return relaytest.cursor_lsn(relay, "r1", store)
    except OSError:
        return 0


def wait_caught_up(relay, stores, timeout=90):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if all(cursor_lsn(relay, s) >= relay_lsn(relay, s)
               for s in stores):
            return time.time() - t0
        time.sleep(0.5)
    return None


# ---------------------------------------------------------------------------
# the scripted master


WORDS = ("sync sync juliet alpha uniform hotel seen zulu victor expunge kilo "
         "xray whiskey quebec november echo papa folder sierra message "
         "charlie delta cyrus india mike bravo yankee master foxtrot tango "
         "flag rename lima").split()


def make_body(rnd, pool, user, n, size):
    head = ("Return-Path: <mailgen@lab.invalid>\r\n"
            "From: Mail Generator <mailgen@lab.invalid>\r\n"
            "To: <%s@lab.invalid>\r\n"
            "Subject: scale message %d (%d bytes)\r\n"
            "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            "Message-ID: <scale.%s.%d@lab.invalid>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (user, n, size, user, n))
    lines, k, i = [head], len(head), 0
    while k < size:
        line = "%05d %s\r\n" % (i, rnd.choice(pool))
        lines.append(line)
        k += len(line)
        i += 1
    return "".join(lines).encode()


def record_crc(uid, modseq, lu, idate, guid):
    """Cyrus's per-record SYNC_CRC contribution, no flags (protocol/
    synccrc.c: "%u %llu %lld (%u) %lld %s")."""
    return zlib.crc32(("%d %d %d (0) %d %s" % (uid, modseq, lu, idate,
                                               guid)).encode())






def master_session(port, store, tag, rate, duration, go, q, rounds=0,
                   phase=0.0, login=None):
    """One master's session into store; puts a result dict on q.
    rate 0: as fast as the replies come (closed loop).  rounds > 0:
    exactly that many rounds, no time limit.  login: (user, password),
    by default the store's identity."""
    try:
        q.put(_master_session(port, store, tag, rate, duration, go, q,
                              rounds, phase, login))
    except Exception as e:
        q.put({"store": store, "error": "%s: %r" % (store, e)})


def _master_session(port, store, tag, rate, duration, go, q, rounds, phase,
                    login):
    user = "%s%s" % (store, tag)
    mbox = "user.%s" % user
    rnd = random.Random(user)
    uniqueid = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                       for _ in range(24))
    uidvalidity = 1795950000 + rnd.randrange(100000)
    nrounds = rounds or int(duration * (rate or 60)) + 2
    # Everything sent is built before the clock starts.
    pool = [" ".join(rnd.choice(WORDS) for _ in range(12))
            for _ in range(300)]
    bodies = []
    for n in range(nrounds * MSGS_PER_ROUND):
        b = make_body(rnd, pool, user, n,
                      MSG_SIZE - 200 + rnd.randrange(400))
        bodies.append((hashlib.sha1(b).hexdigest(), b))
    c = Client(port, timeout=60)
    c.banner()
    who, secret = login or ("repl-" + store, PASSWORD)
    r = c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain(who, secret))
    if not r.startswith("OK"):
        raise RuntimeError("login: %s" % r)
    c.send("APPLY CAPABILITIES (SIEVE-MAILBOX)\r\n")
    read_reply(c)

    lat = {"RESERVE": [], "MESSAGE": [], "MAILBOX": []}
    sent_bytes = 0
    crc = 0
    hms = 1
    last_uid = 0
    now = 1795951100

    def timed(verb, data):
        nonlocal sent_bytes
        t = time.perf_counter()
        c.send(data)
        reply = read_reply(c)
        dt = time.perf_counter() - t
        if not reply[-1].startswith("OK"):
            raise RuntimeError("%s %s: %s" % (store, verb, reply[-1]))
        lat[verb].append(dt)
        sent_bytes += len(data)

    q.put({"ready": store})
    go.wait()
    t0 = time.perf_counter()
    k = 0
    while k < nrounds:
        if rounds == 0 and time.perf_counter() - t0 >= duration:
            break
        if rate:
            due = t0 + (k + phase) / rate
            d = due - time.perf_counter()
            if d > 0:
                time.sleep(d)
        batch = bodies[k * MSGS_PER_ROUND:(k + 1) * MSGS_PER_ROUND]
        timed("RESERVE", "APPLY RESERVE %%(PARTITION default MBOXNAME (%s) "
              "GUID (%s))\r\n" % (mbox, " ".join(g for g, _ in batch)))
        parts = [b"%{default " + g.encode() + b" %d}\r\n" % len(b) + b
                 for g, b in batch]
        timed("MESSAGE", b"APPLY MESSAGE (" + b" ".join(parts) + b")\r\n")
        since = ("" if last_uid == 0 else
                 "SINCE_MODSEQ %d SINCE_CRC %d SINCE_CRC_ANNOT 0 "
                 % (hms, crc))
        recs = []
        for g, b in batch:
            last_uid += 1
            hms += 1
            crc ^= record_crc(last_uid, hms, now, now, g)
            recs.append("%%(UID %d MODSEQ %d LAST_UPDATED %d FLAGS () "
                        "INTERNALDATE %d SIZE %d GUID %s)"
                        % (last_uid, hms, now, now, len(b), g))
        timed("MAILBOX",
              "APPLY MAILBOX %%(UNIQUEID %s MBOXNAME %s SYNC_CRC %d "
              "SYNC_CRC_ANNOT 0 LAST_UID %d HIGHESTMODSEQ %d RECENTUID 0 "
              "RECENTTIME 0 LAST_APPENDDATE %d POP3_LAST_LOGIN 0 "
              "POP3_SHOW_AFTER 0 UIDVALIDITY %d PARTITION default ACL "
              "\"%s\tlrswipkxtecdan\t\" OPTIONS P CREATEDMODSEQ 1 "
              "FOLDERMODSEQ 1 %sRECORD (%s))\r\n"
              % (uniqueid, mbox, crc, last_uid, hms, now, uidvalidity,
                 user, since, " ".join(recs)))
        k += 1
    elapsed = time.perf_counter() - t0
    c.cmd("EXIT\r\n")
    c.close()
    return {"store": store, "lat": lat, "bytes": sent_bytes,
            "rounds": k, "elapsed": elapsed, "ran_out": k == nrounds and
            rounds == 0}


def run_sessions(port, stores, tag, rate, duration, rounds=0, lockstep=False,
                 login=None):
    """Sessions for stores at once, each in its own process."""
    ctx = multiprocessing.get_context("fork")
    q, go = ctx.Queue(), ctx.Event()
    # Masters are independent: session i of n starts its rounds i/n of a
    # period late, so they do not all arrive in the same instant.
    procs = [ctx.Process(target=master_session,
                         args=(port, s, tag, rate, duration, go, q, rounds,
                               0.0 if lockstep else i / len(stores), login))
             for i, s in enumerate(stores)]
    for p in procs:
        p.start()
    res, ready = [], 0
    while ready + len(res) < len(procs):
        r = q.get(timeout=300)
        if "ready" in r:
            ready += 1
        else:
            res.append(r)       # an error before the start
    go.set()
    while len(res) < len(procs):
        res.append(q.get(timeout=duration + 600))
    for p in procs:
        p.join()
    errs = [r["error"] for r in res if "error" in r]
    if errs:
        raise SystemExit("master session failed: %s" % errs[0])
    if any(r["ran_out"] for r in res):
        print("  (some session used up its prepared rounds before the "
              "time was up)")
    return {r["store"]: r for r in res}


def disk_baseline(where, nwriters, rate, seconds):
    """fdatasync latencies of nwriters threads, each appending 4 KB to its
    own file and syncing it rate times a second (a store's journal does
    about 2 per round) -- the disk alone, without the relay."""
    lats, lock = [], threading.Lock()

    def writer(i):
        path = os.path.join(where, "disk-baseline-%d" % i)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        mine = []
        t0 = time.perf_counter()
        try:
            for k in range(int(seconds * rate)):
                d = t0 + k / rate - time.perf_counter()
                if d > 0:
                    time.sleep(d)
                os.write(fd, b"x" * 4096)
                t = time.perf_counter()
                os.fdatasync(fd)
                mine.append(time.perf_counter() - t)
        finally:
            os.close(fd)
            os.unlink(path)
        with lock:
            lats.extend(mine)

    ths = [threading.Thread(target=writer, args=(i,))
           for i in range(nwriters)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return lats


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[i]


def all_lat(r):
    return r["lat"]["RESERVE"] + r["lat"]["MESSAGE"] + r["lat"]["MAILBOX"]


def summary(res, label, wall=None):
    napply = sum(len(all_lat(r)) for r in res.values())
    nbytes = sum(r["bytes"] for r in res.values())
    wall = wall or max(r["elapsed"] for r in res.values())
    lats = [x for r in res.values() for x in all_lat(r)]
    print("  %-22s %5d APPLY in %5.1f s: %6.0f APPLY/s %5.2f MB/s; "
          "p50 %5.1f ms p99 %6.1f ms max %6.1f ms"
          % (label, napply, wall, napply / wall, nbytes / wall / 1e6,
             pct(lats, 50) * 1e3, pct(lats, 99) * 1e3, max(lats) * 1e3),
          flush=True)
    return napply / wall, nbytes / wall


def per_store_p99(res):
    return {s: pct(all_lat(r), 99) for s, r in res.items()}


# ---------------------------------------------------------------------------


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_kinds(pid):
    """What pid's descriptors point at, counted by kind."""
    kinds = {}
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if t.startswith("socket:"):
            k = "socket"
        elif t.startswith("anon_inode:"):
            k = t[len("anon_inode:"):].strip("[]")
        elif t.endswith(".seg"):
            k = "segment"
        elif "/shadow.db" in t:
            k = "shadow" + t.split("/shadow.db", 1)[1]
        elif t.startswith("pipe:"):
            k = "pipe"
        else:
            k = os.path.basename(t)
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def figures(pid, label, nstores):
    """Prints and returns VmRSS, VmHWM (MiB), threads and fds of pid."""
    st = proc_status(pid)
    fds = proc_fds(pid)
    d = {"rss": st["VmRSS"] / 1024, "hwm": st["VmHWM"] / 1024,
         "threads": st["Threads"], "fds": fds}
    print("  %-28s VmRSS %6.1f MiB  VmHWM %6.1f MiB  %5d threads  "
          "%6d fds (%.2f per store)"
          % (label, d["rss"], d["hwm"], d["threads"], fds, fds / nstores),
          flush=True)
    print("    fds: %s" % ", ".join("%s %d" % kv for kv in sorted(
        fd_kinds(pid).items(), key=lambda kv: -kv[1])[:8]))
    return d


def dead_port():
    """A port below 32768 where nothing listens on any address."""
    rnd = random.Random()
    while True:
        p = rnd.randrange(20000, 32768)
        so = socket.socket()
        try:
            so.bind(("0.0.0.0", p))
            return p
        except OSError:
            continue
        finally:
            so.close()


def dead_addr(store, replica, port):
    """A distinct loopback address per store and replica (the relay wants
    every replica address once), all on port, where nothing listens."""
    return "127.%d.%d.%d:%d" % (1 + replica, store // 250, store % 250 + 1,
                                port)


def main_stores(nstores, nactive, duration, rate, nreplicas):
    """N stores x nreplicas replicas that are all down; nactive of them
    ingest at once; the same sessions against a real sync_server."""
    if os.geteuid() != 0:
        raise SystemExit("run as root (the Cyrus replica is built as root)")
    t_start = time.time()
    path = relaytest.CyrusPath("bench-stores-", nreplicas=1, relay=False,
                               master=False)
    relay = None
    ok = True
    try:
        cy = path.replica
        dead = dead_port()
        active = [sname(i) for i in range(1, nactive + 1)]
        # The sessions all come from 127.0.0.1 at once.
        conf = ["replica_authname: repl",
                "replica_password: %s" % cyrus.REPL_PASSWORD,
                "max_preauth_per_address: %d" % (nactive + 16),
                "max_preauth_connections: %d" % (nactive + 128)]
        for i in range(1, nstores + 1):
            conf.append("store.%s.identity: repl-%s" % (sname(i), sname(i)))
            for k in range(nreplicas):
                conf.append("store.%s.replica.r%d: %s"
                            % (sname(i), k + 1, dead_addr(i, k, dead)))
        conf.extend(EXTRA_CONF)
        # Only the active stores' masters log in: only they need a secret.
        relay = sasl_relay({"repl-" + s: PASSWORD for s in active},
                           "\n".join(conf) + "\n", start=False)
        t = time.time()
        try:
            relay.start()
        except AssertionError:
            print(relay.logtext()[-2000:])
            raise
        pid = relay.proc.pid
        listening = time.time() - t
        while relay.logtext().count("event=opened") < nstores:
            if relay.proc.poll() is not None:
                raise SystemExit("syncrelay exited while opening the "
                                 "stores:\n" + relay.logtext()[-1500:])
            time.sleep(0.2)
        print("syncrelay %s: %d stores x %d replicas (all down), %d active; "
              "listening after %.2f s, every store open after %.2f s"
              % (os.path.join(BUILDDIR, "syncrelay"), nstores, nreplicas,
                 nactive, listening, time.time() - t), flush=True)
        time.sleep(5)
        res = {}
        res["idle"] = figures(pid, "idle, 5 s after start:", nstores)
        sampler = RssSampler(pid)
        sampler.start()
        print("%d sessions at once: rounds of APPLY RESERVE + APPLY MESSAGE "
              "(%d x ~%d B) + APPLY MAILBOX, %g rounds/s each, %g s"
              % (nactive, MSGS_PER_ROUND, MSG_SIZE, rate, duration),
              flush=True)
        loadfig = {}

        def sample_load():
            time.sleep(duration / 2)
            loadfig.update(figures(pid, "under load (half way):", nstores))
        th = threading.Thread(target=sample_load, daemon=True)
        th.start()
        try:
            r_relay = run_sessions(relay.port, active, "r", rate, duration)
        except SystemExit:
            print("\n".join(l for l in relay.logtext().splitlines()
                            if "level=err" in l or "fail" in l
                            or "s005" in l)[-3000:])
            raise
        th.join()
        res["load"] = loadfig
        summary(r_relay, "syncrelay")
        sampler.stop.set()
        sampler.join()
        time.sleep(5)
        res["again"] = figures(pid, "idle again, 5 s later:", nstores)
        time.sleep(10)
        res["again15"] = figures(pid, "idle again, 15 s later:", nstores)
        # The same session shape into a real 3.6.1 sync_server.
        r_cy = run_sessions(cy.sync_port, active, "c", rate, duration,
                            login=("repl", cyrus.REPL_PASSWORD))
        summary(r_cy, "Cyrus 3.6.1 sync_server")
        lr = [x for r in r_relay.values() for x in all_lat(r)]
        lc = [x for r in r_cy.values() for x in all_lat(r)]
        p99r, p99c = pct(lr, 99), pct(lc, 99)
        idle = res["again15"]
        fds_store = idle["fds"] / nstores
        checks = [
            ("idle RSS <= 64 MiB", idle["rss"] <= 64),
            ("VmHWM <= 128 MiB", idle["hwm"] <= 128),
            ("threads <= 32", max(res["idle"]["threads"],
                                  res["load"].get("threads", 0),
                                  idle["threads"]) <= 32),
            ("<= 4 fds per idle store", fds_store <= 4),
            ("p99 APPLY <= 1.5x sync_server's (%.1f / %.1f ms)"
             % (p99r * 1e3, p99c * 1e3), p99r <= 1.5 * p99c),
        ]
        for name, good in checks:
            print("  %-52s %s" % (name, "met" if good else "NOT met"))
            ok &= good
        print("\ntargets %s; bench took %.0f s"
              % ("met" if ok else "NOT all met", time.time() - t_start))
        return 0 if ok else 1
    finally:
        if relay:
            relay.stop(60)
            shutil.rmtree(relay.dir, ignore_errors=True)
        path.stop()


EXTRA_CONF = []


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=1000)
    ap.add_argument("--active", type=int, default=50)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=8.0)
    ap.add_argument("--conf", action="append", default=[],
                    help="an extra config line for the relay")
    ap.add_argument("--legacy", action="store_true",
                    help="the 200-store run with 199 replicas up")
    a = ap.parse_args()
    if a.legacy:
        return main_legacy(a.seconds, a.rate)
    EXTRA_CONF.extend(a.conf)
    return main_stores(a.stores, a.active, a.seconds, a.rate, a.replicas)


def main_legacy(duration, rate):
    if os.geteuid() != 0:
        raise SystemExit("run as root (the Cyrus replica is built as root)")
    t_start = time.time()
    path = relaytest.CyrusPath("bench-scale-", nreplicas=0, relay=False,
                               master=False)
    log, relay = path.log, None
    ok = True
    try:
        replica = path.add_replica(MultiSyncCyrus(path.root, "replica",
                                                  NSTORES - 1, syslog=log))
        dead = free_port()
        while dead in replica.ports.values():       # nothing listens there
            dead = free_port()
        ports = list(replica.extra_sync_ports)
        ports.insert(DOWN - 1, dead)
        relay = sasl_relay({"repl-" + sname(i): PASSWORD
                            for i in range(1, NSTORES + 1)},
                           relay_conf(ports), start=False)
        t = time.time()
        relay.start()
        pid = relay.proc.pid
        print("syncrelay %s, %d stores; all but %s replicate to one Cyrus "
              "3.6.1 replica with %d sync_server listeners, %s's replica "
              "is a port where nothing listens"
              % (os.path.join(BUILDDIR, "syncrelay"), NSTORES, sname(DOWN),
                 NSTORES - 1, sname(DOWN)))
        print("  listening after %.2f s" % (time.time() - t))
        deadline = time.time() + 60
        while (relay.logtext().count("event=link_up") < NSTORES - 1 and
               time.time() < deadline):
            time.sleep(0.2)
        print("  %d links up after %.1f s" % (
            relay.logtext().count("event=link_up"), time.time() - t))
        time.sleep(5)
        st = proc_status(pid)
        ok_idle = st["VmRSS"] < 64 * 1024
        ok &= ok_idle
        print("idle, 5 s later: VmRSS %.1f MiB, VmHWM %.1f MiB, "
              "%d threads: VmRSS %s 64 MiB"
              % (st["VmRSS"] / 1024, st["VmHWM"] / 1024, st["Threads"],
                 "under" if ok_idle else "NOT under"), flush=True)
        text = relay.logtext()
        print("  log: %d stores opened, %d links up (expected %d, %d)"
              % (text.count("event=opened"), text.count("event=link_up"),
                 NSTORES, NSTORES - 1))

        ctl = os.path.join(BUILDDIR, "syncrelayctl")
        t = time.time()
        r = subprocess.run([ctl, "-C", relay.conf, "status", "--json"],
                           capture_output=True, text=True, timeout=30)
        print("  syncrelayctl status --json: %d bytes in %.2f s"
              % (len(r.stdout), time.time() - t))
        try:
            names = {s["name"] for s in json.loads(r.stdout)["stores"]}
        except (ValueError, KeyError, TypeError) as e:
            names = set()
            print("status: unreadable output (%r): rc=%d %s %s"
                  % (e, r.returncode, r.stdout[:200], r.stderr[:200]))
        want = {sname(i) for i in range(1, NSTORES + 1)}
        miss = sorted(want - names)
        ok &= not miss
        print("status: %d of %d stores listed%s"
              % (len(want & names), NSTORES,
                 "" if not miss else "; missing %s" % miss[:10]))

        print("\ndisk alone (no relay): 4 KB append + fdatasync, %g/s per "
              "file, 5 s, in the relay's datadir" % (2 * rate))
        base = {}
        for n in (1, NACTIVE):
            lats = disk_baseline(relay.dir, n, 2 * rate, 5)
            base[n] = pct(lats, 99)
            print("  %2d file(s): fdatasync p50 %5.1f ms p99 %6.1f ms"
                  % (n, pct(lats, 50) * 1e3, base[n] * 1e3), flush=True)
        print("  p99 ratio %d files / 1 file: %.1f"
              % (NACTIVE, base[NACTIVE] / base[1]))

        sampler = RssSampler(pid)
        sampler.start()
        print("\nmaster sessions: rounds of APPLY RESERVE + APPLY MESSAGE "
              "(%d x ~%d B) + APPLY MAILBOX; %g rounds/s per session, %g s"
              % (MSGS_PER_ROUND, MSG_SIZE, rate, duration), flush=True)
        active = [sname(i) for i in range(1, NACTIVE + 1)]

        # Three rounds of: each solo store alone, 20 at once, 20 with one
        # replica down.  Per store, the best (lowest) p99 of the rounds is
        # compared, alone and at once alike: on this shared VM one noisy
        # 12 s window (another job's I/O) otherwise decides the result.
        # Every round's own figures are printed too.
        others = [sname(i) for i in range(2, NACTIVE + 1)]
        down = sname(DOWN)
        solo_r, c20_r, dn_r = [], [], []
        for rep in "abc":
            print("round %s:" % rep, flush=True)
            ps = {}
            for i in SOLO:
                st_ = sname(i)
                res = run_sessions(relay.port, [st_], "solo" + rep, rate,
                                   duration)
                summary(res, "%s alone" % st_)
                ps.update(per_store_p99(res))
                wait_caught_up(relay, [st_])
            solo_r.append(ps)
            r = run_sessions(relay.port, active, "c20" + rep, rate, duration)
            summary(r, "20 at once")
            c20_r.append(per_store_p99(r))
            lag = wait_caught_up(relay, active)
            print("    replica caught up %s after the sessions ended"
                  % ("%.1f s" % lag if lag is not None else "NOT (90 s)"))
            r = run_sessions(relay.port, others + [down], "dn" + rep, rate,
                             duration)
            summary(r, "20, %s's replica down" % down)
            dn_r.append(per_store_p99(r))
            wait_caught_up(relay, others)

        def best(rounds):
            return {k: min(r[k] for r in rounds) for k in rounds[0]}

        def ms(rounds, k):
            return "/".join("%.1f" % (r[k] * 1e3) for r in rounds)

        solo, p20, pd = best(solo_r), best(c20_r), best(dn_r)
        print("\nper-store p99 APPLY->OK, ms (rounds a/b/c; best is "
              "compared):")
        print("  store  alone           20 at once        ratio  "
              "%s down" % down)
        worst = 0.0
        for st_ in active:
            ratio = p20[st_] / solo[st_] if st_ in solo else None
            if ratio:
                worst = max(worst, ratio)
            print("  %s   %-15s %-17s %5s  %s"
                  % (st_, ms(solo_r, st_) if st_ in solo else "-",
                     ms(c20_r, st_), "%.2f" % ratio if ratio else "-",
                     ms(dn_r, st_) if st_ in pd else "-"))
        print("  %s   %-15s %-17s %5s  %s" % (down, "-", "-", "-",
                                               ms(dn_r, down)))
        med_solo = sorted(solo.values())[len(solo) // 2]
        worst_all = max(p20.values()) / med_solo
        ok2 = worst <= 2.0 and worst_all <= 2.0
        ok &= ok2
        print("  max ratio 20-at-once/alone (best p99s): %.2f over the "
              "stores measured alone; %.2f for any store against the "
              "median alone p99 (%.1f ms): %s (target <= 2)"
              % (worst, worst_all, med_solo * 1e3, "met" if ok2 else
                 "NOT met"))
        common_20 = sorted(p20[k] for k in others)
        common_d = sorted(pd[k] for k in others)
        med20, medd = common_20[len(others) // 2], common_d[len(others) // 2]
        print("  the 19 common stores (best p99s): median %.1f ms with all "
              "replicas up, %.1f ms with %s's replica down (ratio %.2f); "
              "worst %.1f ms vs %.1f ms"
              % (med20 * 1e3, medd * 1e3, down, medd / med20,
                 common_20[-1] * 1e3, common_d[-1] * 1e3))

        r = run_sessions(relay.port, active, "lock", rate, duration,
                         lockstep=True)
        print("\nthe same 20 in lockstep (every session's round k at k/RATE, "
              "all at once):")
        summary(r, "20 in lockstep")
        pl = per_store_p99(r)
        print("  p99 per store %.1f..%.1f ms; max ratio to alone %.2f"
              % (min(pl.values()) * 1e3, max(pl.values()) * 1e3,
                 max(pl[s] / solo[s] for s in solo)))
        wait_caught_up(relay, active)

        print("\nflat out (no pacing), 20 sessions:", flush=True)
        resf = run_sessions(relay.port, active, "max", 0, duration / 2)
        aps, bps = summary(resf, "20 at once, unpaced")
        lag = wait_caught_up(relay, active, timeout=120)
        print("    replica caught up %s after the sessions ended"
              % ("%.1f s" % lag if lag is not None else "NOT (120 s)"))
        sampler.stop.set()
        sampler.join()
        st = proc_status(pid)
        print("peak RSS under load: VmHWM %.1f MiB (largest VmRSS polled "
              "%.1f MiB)" % (st["VmHWM"] / 1024, sampler.peak / 1024))
        time.sleep(5)
        st = proc_status(pid)
        print("idle again, 5 s later: VmRSS %.1f MiB" % (st["VmRSS"] / 1024))

        # Every store once: what a used store keeps.
        rest = [sname(i) for i in range(1, NSTORES + 1)]
        for k in range(0, NSTORES, NACTIVE):
            run_sessions(relay.port, rest[k:k + NACTIVE], "once", 0, 0,
                         rounds=1)
        time.sleep(5)
        st = proc_status(pid)
        ok_used = st["VmRSS"] < 64 * 1024
        ok_hwm = st["VmHWM"] <= 128 * 1024
        print("idle after all %d stores ingested one round: VmRSS %.1f MiB "
              "(%s 64 MiB), VmHWM %.1f MiB (%s 128 MiB)"
              % (NSTORES, st["VmRSS"] / 1024,
                 "under" if ok_used else "NOT under", st["VmHWM"] / 1024,
                 "under" if ok_hwm else "NOT under"))
        ok &= ok_hwm
        ok &= ok_used

        errs = log.errors()
        if errs:
            print("Cyrus logged %d errors, e.g. %s" % (len(errs), errs[0]))
            ok = False
        fails = [l for l in relay.logtext().splitlines()
                 if "event=link_failed" in l or "event=repair" in l]
        if fails:
            print("relay: %d link failures/repairs, e.g. %s"
                  % (len(fails), fails[0]))
            ok = False
        print("\ntargets %s; bench took %.0f s"
              % ("met" if ok else "NOT all met", time.time() - t_start))
        return 0 if ok else 1
    finally:
        if relay:
            relay.stop(30)
            shutil.rmtree(relay.dir, ignore_errors=True)
        path.stop()


if __name__ == "__main__":
    sys.exit(main())
