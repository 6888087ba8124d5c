#!/usr/bin/env python3
"""bench_restart_check.py -- what the check after a relay restart costs:
every replica the relay opens at start is compared with the shadow
(GET USER per user, GET MAILBOXES per 64 shared mailboxes) before wait
calls it caught up.

A Cyrus 3.6.1 master replicates USERS users of MESSAGES/USERS messages
each (~2-8 KB) into syncrelay, which replays to replica r1.  Then the
relay is stopped and started again, nothing changed anywhere, and this
prints how long syncrelayctl wait s1 takes to exit 0 after the start
(the check included; the relay's log says when it started and ended),
and the relay's CPU time meanwhile.  Run from a build directory:
    python3 ../bench/bench_restart_check.py [MESSAGES USERS]   (2000 400)
"""
import datetime
import os
import re
import sys
import time

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))
sys.path.insert(0, os.path.join(SRCDIR, "bench"))

from bench_seed import cpu_of, fill  # noqa: E402
from relaytest import CyrusPath, wait_caught_up  # noqa: E402


def main():
    nmsg, nusers = (int(a) for a in (sys.argv[1:3] or (2000, 400)))
    users = ["u%d" % i for i in range(nusers)]
    path = CyrusPath("bench-restart-", users=users, master=False)
    try:
        relay = path.relay
        master = path.start_master()
        fill(master, users, nmsg)
        wait_caught_up(relay, timeout=600)

        relay.stop()
        mark = len(relay.logtext())
        t0 = time.time()
        relay.start()
        while "event=opened" not in relay.logtext()[mark:]:
            time.sleep(0.05)
        r = relay.ctl("wait", "s1", "--timeout", "1800", timeout=1900)
        assert r.returncode == 0, r.stdout + r.stderr
        t_wait = time.time() - t0
        cpu = cpu_of([relay.proc.pid])
        text = relay.logtext()[mark:]
        assert "event=check_done result=ok" in text, text[-3000:]
        m = re.search(r"event=audit mailboxes=(\d+)", text)
        print("relay start to wait exit 0: %7.2f s (relay CPU %.2f s since "
              "its start; %s mailboxes compared)" %
              (t_wait, cpu, m.group(1) if m else "?"))
        # The check itself, from the log's own times.
        when = {}
        for ev in ("check_start", "check_done"):
            m = re.search(r"^(\S+)Z .*event=%s" % ev, text, re.M)
            when[ev] = datetime.datetime.fromisoformat(m.group(1))
        print("the check (check_start to check_done): %.2f s" % (
            when["check_done"] - when["check_start"]).total_seconds())
        return 0
    finally:
        path.stop()


if __name__ == "__main__":
    sys.exit(main())
