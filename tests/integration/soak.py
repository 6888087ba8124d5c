"""soak.py -- the kill soak of issue 14, shared by bench/soak.py (200
kills and more, figures for docs/reliability.md) and test_soak.py (10
kills, in CI).

A real Cyrus master replicates rolling (sync_client -R) through syncrelay
into two real replicas.  Each round the master takes a mixed workload --
deliveries (every seventh a message of over 1 MB), flag changes,
expunges, folders created and renamed -- and syncrelay is SIGKILLed at a
random moment of it, then started again.  Every tenth round a replica's
sync_server processes and the master's rolling sync_client are killed
too.  At the end both replicas must show exactly what the master shows
(every mailbox, message, flag and annotation), no mailbox may hold a
message twice, a direct sync_client from the master must find nothing
to send, and `syncrelay-journal verify` must call the journal clean.
"""
import os
import random
import signal
import subprocess
import time

import cyrus
from harness import BUILDDIR, check, eq
from relaytest import (CyrusPath, identical, populate,
                       sync_user, wait_caught_up)

USERS = ("alice", "bob")


def _kill_sync_servers(inst):
    """SIGKILL the sync_server processes of a Cyrus instance (its master
    process starts new ones for the next connections)."""
    n = 0
    for pid in inst.pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read()
        except OSError:
            continue
        if b"sync_server" in argv:
            try:
                os.kill(pid, signal.SIGKILL)
                n += 1
            except ProcessLookupError:
                pass
    return n


def _step(master, rnd, i):
    """One piece of the workload; returns the bytes delivered."""
    user = USERS[i % 2]
    what = rnd.randrange(6)
    if what <= 2:
        size = 1_100_000 + rnd.randrange(50_000) if i % 7 == 0 else \
            1500 + rnd.randrange(20_000)
        master.deliver(user, cyrus.make_message(10_000 + i, size))
        return size
    m = master.imap(user)
    try:
        if what == 3:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "1:*", "+FLAGS",
                                 r"($Soak%d)" % (i % 5)))
        elif what == 4:
            m.select("INBOX")
            typ, data = m.uid("SEARCH", "ALL")
            uids = data[0].split() if typ == "OK" and data[0] else []
            if len(uids) > 4:
                cyrus.imap_ok(*m.uid("STORE", uids[rnd.randrange(
                    len(uids))], "+FLAGS", r"(\Deleted)"))
                cyrus.imap_ok(*m.expunge())
        else:
            a, b = "Soak-%d" % i, "Soak-%d-r" % i
            typ, _ = m.create(a)
            if typ == "OK":
                cyrus.imap_ok(*m.rename(a, b))
    finally:
        m.logout()
    return 0


def run_soak(rounds, seed=1, prefix="syncrelay-soak-", say=print):
    """Runs the soak; returns its figures as a dict."""
    rnd = random.Random(seed)
    path = CyrusPath(prefix, nreplicas=2, users=USERS)
    try:
        relay, master = path.relay, path.master
        for u in USERS:
            populate(master, u, 6, big=set())
            sync_user(master, u)
        master.start_rolling()
        t0 = time.time()
        kills = server_kills = client_kills = delivered = steps = 0
        for r in range(rounds):
            n = 2 + rnd.randrange(4)
            kill_at = rnd.randrange(n)
            for i in range(n):
                delivered += _step(master, rnd, steps)
                steps += 1
                if i == kill_at:
                    time.sleep(rnd.random() * 0.5)
                    relay.proc.kill()
                    relay.proc.wait()
                    kills += 1
                    relay.start()
            if r % 10 == 9:
                server_kills += _kill_sync_servers(
                    path.replicas[rnd.randrange(2)])
                # The rolling client may have given up on the killed
                # relay already: start it again so there is one to kill.
                if master.rolling is None or master.rolling.poll() is not None:
                    master.rolling = None
                    master.start_rolling()
                    time.sleep(rnd.random() * 0.5)
                master.rolling.kill()
                master.rolling.wait()
                client_kills += 1
            # A rolling client that gave up on a dead relay starts again.
            if master.rolling is None or master.rolling.poll() is not None:
                master.rolling = None
                master.start_rolling()
        workload = time.time() - t0
        # Let the rolling client drain its log, then a full sync of each
        # user: what the master holds, the relay must hold.
        master.stop_rolling()
        for u in USERS:
            sync_user(master, u)
        wait_caught_up(relay, timeout=300)
        for inst in path.replicas:
            identical(master, inst, USERS)
        jdir = os.path.join(relay.dir, "data", "s1", "journal")
        v = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"),
                            "verify", jdir], capture_output=True, text=True,
                           timeout=300)
        eq(v.returncode, 0)
        check("OK" in v.stdout, v.stdout + v.stderr)
        st = relay.status()["stores"][0]
        figures = {
            "rounds": rounds, "relay_kills": kills,
            "sync_server_kills": server_kills,
            "sync_client_kills": client_kills, "workload_steps": steps,
            "bytes_delivered": delivered, "workload_seconds": workload,
            "journal_records": st["head_lsn"],
            "journal_bytes": st["journal_bytes"],
            "verify": v.stdout.strip().splitlines()[-1],
        }
        say("# soak: %r" % figures)
        return figures
    finally:
        path.stop()
