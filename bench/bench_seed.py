#!/usr/bin/env python3
"""bench_seed.py -- filling a new, empty replica: syncrelayctl seed from
the relay's shadow and journal, against sync_client -A from the master;
same master, same store, same run.

A Cyrus 3.6.1 master replicates USERS users of MESSAGES/USERS messages
each (~2-8 KB) into syncrelay, which replays to replica r1; replica r2
is in the relay's configuration from the start but paused, so it holds
nothing.  Then, one after the other:

  relay   syncrelayctl seed s1 r2 and resume; time until syncrelayctl
          wait s1 --replica r2 exits 0 (every mailbox taken)
  master  sync_client -A from the master straight into a third empty
          replica r3; time until it exits

and for each the CPU time the master spent meanwhile: user+system time
of every process of the master's Cyrus instance (read from /proc before
and after) plus that of the sync_client it ran.  Prints both times, both
CPU times, and the ratios relay/master.  Run from a build directory:
    python3 ../bench/bench_seed.py [MESSAGES USERS]   (2000 4)
"""
import os
import resource
import subprocess
import sys
import time

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))

import cyrus  # noqa: E402
from relaytest import CyrusPath, sync_user, wait_caught_up  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids):
    """user+system seconds of the live processes pids (and their reaped
    children), from /proc/PID/stat."""
    total = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        # utime stime cutime cstime: fields 14..17 of stat (1-based),
        # 12..15 after the name.
        total += sum(int(x) for x in fields[11:15]) / TICK
    return total


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def fill(master, users, nmsg):
    """The users made on master, nmsg messages (~2-8 KB) delivered to
    them in turn, each user then replicated (sync_client -u)."""
    t = time.time()
    for u in users:
        master.create_user(u)
    for i in range(nmsg):
        master.deliver(users[i % len(users)],
                       cyrus.make_message(i, 2048 + (i * 397) % 6144))
    print("made %d messages for %d users in %.1f s" %
          (nmsg, len(users), time.time() - t), flush=True)
    for u in users:
        sync_user(master, u)


def main():
    nmsg, nusers = (int(a) for a in (sys.argv[1:3] or (2000, 4)))
    users = ["u%d" % i for i in range(nusers)]
    path = CyrusPath("bench-seed-", nreplicas=3, users=users, relay=False,
                     master=False)
    try:
        r1, r2, r3 = path.replicas
        relay = path.start_relay([("r1", r1.sync_port),
                                  ("r2", r2.sync_port)])
        path.relay = relay
        for _ in range(100):
            r = relay.ctl("pause", "s1", "r2")
            if r.returncode != 3:	# 3: the control socket is not up yet
                break
            time.sleep(0.1)
        assert r.returncode == 0, r.stdout + r.stderr
        master = path.start_master()
        fill(master, users, nmsg)
        wait_caught_up(relay, "--replica", "r1", timeout=600)

        # The relay seeds r2.
        mpids = master.pids()
        m0 = cpu_of(mpids)
        rpid = relay.proc.pid
        r0 = cpu_of([rpid])
        t0 = time.time()
        r = relay.ctl("seed", "s1", "r2")
        assert r.returncode == 0, r.stderr
        assert relay.ctl("resume", "s1", "r2").returncode == 0
        r = relay.ctl("wait", "s1", "--replica", "r2", "--timeout", "1800",
                      timeout=1900)
        assert r.returncode == 0, r.stdout + r.stderr
        t_relay = time.time() - t0
        # (Only syncrelayctl ran as our child meanwhile: not the master's.)
        cpu_master_relay = cpu_of(mpids) - m0
        cpu_relay = cpu_of([rpid]) - r0

        # The master seeds r3 with sync_client -A.
        ch = "seed3"
        master.settings.update({
            ch + "_sync_host": "127.0.0.1",
            ch + "_sync_port": str(r3.sync_port),
            ch + "_sync_authname": "repl",
            ch + "_sync_password": cyrus.REPL_PASSWORD,
            ch + "_sync_try_imap": "0"})
        master.write_conf()
        mpids = master.pids()
        m0, c0 = cpu_of(mpids), children_cpu()
        t0 = time.time()
        rc, out, err = master.sync_client(["-n", ch, "-A"], timeout=1800)
        assert rc == 0, out + err
        t_master = time.time() - t0
        cpu_master_direct = cpu_of(mpids) - m0 + (children_cpu() - c0)

        # Both hold what the master holds (spot check: message counts).
        for u in users:
            want = master.state(u)
            for inst in (r2, r3):
                got = inst.state(u)
                assert got == want, "%s differs for %s" % (inst.name, u)
        print("seed through syncrelay:     %7.2f s, master CPU %6.2f s "
              "(relay CPU %.2f s)" % (t_relay, cpu_master_relay, cpu_relay))
        print("sync_client -A (master):    %7.2f s, master CPU %6.2f s" %
              (t_master, cpu_master_direct))
        print("ratio time relay/master:    %7.2f" % (t_relay / t_master))
        print("ratio master CPU relay/-A:  %7.3f" %
              (cpu_master_relay / cpu_master_direct))
        return 0
    finally:
        path.stop()


if __name__ == "__main__":
    sys.exit(main())
