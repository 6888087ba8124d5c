#!/usr/bin/env python3
"""bench_fanout.py -- catch-up of a replica's backlog through syncrelay
versus a direct rolling sync_client catching up the same backlog from its
sync_log; same master, same run.

One Cyrus 3.6.1 master logs to two channels: "relay" (rolling sync_client
into syncrelay, which replays to replica A) and "direct" (replica B, fed by
sync_client -R -n direct).  Both replicas first get the (empty) user, then
go down.  While they are down the master takes DELIVER_SMALL messages of
~4 KB, DELIVER_BIG of ~200 KB and FLAG_CHANGES flag changes; syncrelay
journals them (its rolling client runs), the direct channel's sync_log
holds them.  Then, one after the other:

  relay   start replica A; time from its link being up until replica A's
          INBOX shows what the master's does (STATUS MESSAGES UIDNEXT
          HIGHESTMODSEQ, polled every 0.1 s)
  direct  start replica B and sync_client -R -n direct; time from the
          client's start until replica B's INBOX matches the same way

Prints both times and the ratio relay/direct (target <= 1.0, ideally
<= 0.7).  Run from a build directory:
    python3 ../bench/bench_fanout.py [SMALL BIG FLAGS]   (2000 200 2000)
"""
import os
import sys
import time

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))

import cyrus  # noqa: E402
from relaytest import CyrusPath, relay_lsn  # noqa: E402

USER = "bench"


def channel(name, port):
    return {name + "_sync_host": "127.0.0.1",
            name + "_sync_port": str(port),
            name + "_sync_authname": "repl",
            name + "_sync_password": cyrus.REPL_PASSWORD,
            name + "_sync_try_imap": "0"}


def inbox_status(inst):
    m = inst.imap(USER)
    try:
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT HIGHESTMODSEQ)")
        return data[0] if typ == "OK" else None
    finally:
        m.logout()


def wait_match(master, replica, timeout=1800):
    want = inbox_status(master)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if inbox_status(replica) == want:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("replica never matched: %r" % want)


def main():
    small, big, flags = (int(a) for a in (sys.argv[1:4] or
                                          (2000, 200, 2000)))
    # Replica A behind the relay (as "a"), replica B fed by the master's
    # "direct" channel; the master logs to both channels.
    path = CyrusPath("bench-fanout-", nreplicas=2, users=[USER], relay=False,
                     master=False, names=("replica-a", "replica-b"))
    try:
        (ra, rb), log = path.replicas, path.log
        relay = path.start_relay([("a", ra.sync_port)])
        extra = {"sync_log_channels": "relay direct", "sync_try_imap": "0",
                 "sync_repeat_interval": "1s"}
        extra.update(channel("relay", relay.port))
        extra.update(channel("direct", rb.sync_port))
        master = path.start_master(extra)
        master.create_user(USER)
        for ch in ("relay", "direct"):
            rc, out, err = master.sync_client(["-n", ch, "-u", USER])
            assert rc == 0, (ch, out, err)
        wait_match(master, ra)
        wait_match(master, rb)
        ra.stop()
        rb.stop()
        master.start_rolling(["-n", "relay"])
        print("backlog: %d x 4 KB, %d x 200 KB, %d flag changes"
              % (small, big, flags), flush=True)
        t = time.time()
        for i in range(small):
            master.deliver(USER, cyrus.make_message(i, 4096))
        for i in range(big):
            master.deliver(USER, cyrus.make_message(100000 + i, 204800))
        m = master.imap(USER)
        try:
            m.select("INBOX")
            for lo in range(1, flags + 1, 100):
                hi = min(lo + 99, flags)
                typ, _ = m.uid("STORE", "%d:%d" % (lo, hi), "+FLAGS",
                               r"(\Seen)")
                assert typ == "OK"
        finally:
            m.logout()
        print("  made in %.1f s" % (time.time() - t), flush=True)
        # Let the relay take all of it, then stop its client.
        last, since = -1, time.time()
        while time.time() - since < 3:
            n = relay_lsn(relay)
            if n != last:
                last, since = n, time.time()
            time.sleep(0.5)
        master.stop_rolling()
        print("  syncrelay journaled %d records" % last, flush=True)

        mark = len(relay.logtext())
        ra.start()
        while "replica=a event=link_up" not in relay.logtext()[mark:]:
            time.sleep(0.02)
        t0 = time.time()
        wait_match(master, ra)
        t_relay = time.time() - t0

        rb.start()
        t0 = time.time()
        master.start_rolling(["-n", "direct"])
        wait_match(master, rb)
        t_direct = time.time() - t0
        master.stop_rolling()

        print("catch-up through syncrelay:      %7.2f s" % t_relay)
        print("catch-up by sync_client -R:      %7.2f s" % t_direct)
        print("ratio relay/direct:              %7.2f" % (t_relay / t_direct))
        errs = log.errors()
        if errs:
            print("Cyrus logged %d errors, e.g. %s" % (len(errs), errs[0]))
            return 1
        return 0
    finally:
        path.stop()


if __name__ == "__main__":
    sys.exit(main())
