#!/usr/bin/env python3
"""bench_ingest.py -- one-shot sync_client -u into syncrelay versus into a
real Cyrus replica sync_server, same machine, same run, alternating.

Workloads: a user with 2,000 messages of ~4 KB, and one with 200 of
~200 KB.  Targets, each started fresh before every run:

  relay            syncrelay (does not offer COMPRESS by default)
  cyrus            a real Debian 3.6.1 sync_server; it offers COMPRESS
                   DEFLATE, which sync_client then always uses
  cyrus-nocompress the same sync_server behind a small proxy that drops
                   "* COMPRESS DEFLATE" from its banner (the proxy's own
                   copying is included in its time)

Prints the median of RUNS (default 3) wall-clock times of sync_client per
target and workload, and the ratios relay/cyrus and relay/cyrus-nocompress.

Run from a build directory:  python3 ../bench/bench_ingest.py [RUNS]
(BUILDDIR and SRCDIR default to the current directory and its parent.)
"""
import asyncio
import os
import shutil
import statistics
import sys
import threading
import time

SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
os.environ.setdefault("SRCDIR", SRCDIR)
os.environ.setdefault("BUILDDIR", os.path.abspath("."))
sys.path.insert(0, os.path.join(SRCDIR, "tests/integration"))

import cyrus  # noqa: E402
from harness import authed_client, free_port  # noqa: E402
from relaytest import CyrusPath  # noqa: E402


class StripCompressProxy:
    """TCP proxy to a sync_server that hides COMPRESS from its banner."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(
            self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()

    async def _pipe(self, reader, writer, strip):
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                if strip:
                    data = data.replace(b"* COMPRESS DEFLATE\r\n", b"")
                    if b"* OK" in data:
                        strip = False
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client(self, creader, cwriter):
        sreader, swriter = await asyncio.open_connection("127.0.0.1",
                                                         self.target)
        await asyncio.gather(self._pipe(creader, swriter, False),
                             self._pipe(sreader, cwriter, True))

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def fresh_relay(path, old):
    """A new relay of path's, old (if any) stopped and removed."""
    if old is not None:
        old.stop()
        shutil.rmtree(old.dir, ignore_errors=True)
    # Its replica's address is never answered: ingest alone.
    return path.start_relay([("r1", 1)])


def unuser(replica, users):
    """Forget the users on the replica (APPLY UNUSER), for a fresh run."""
    c = authed_client(replica.sync_port, "repl", cyrus.REPL_PASSWORD)
    for u in users:
        r = c.cmd("APPLY UNUSER %s\r\n" % u)
        if not r.startswith("OK"):
            raise RuntimeError("UNUSER %s: %s" % (u, r))
    c.cmd("EXIT\r\n")


def timed_sync(master, port, user):
    master.settings["sync_port"] = str(port)
    master.write_conf()
    t0 = time.time()
    rc, out, err = master.sync_client(["-u", user], timeout=600)
    took = time.time() - t0
    if rc != 0:
        raise RuntimeError("sync_client -u %s to %d: rc=%r %s" %
                           (user, port, rc, err[-500:]))
    return took


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    # The master replicates nowhere until timed_sync points it somewhere.
    path = CyrusPath("bench-ingest-", users=(), relay=False, master=False)
    relay = proxy = None
    try:
        replica = path.replica
        proxy = StripCompressProxy(replica.sync_port)
        master = path.start_master(cyrus.replication_conf(1))
        work = {"small": ("usmall", 2000, 4096),
                "large": ("ularge", 200, 200 * 1024)}
        t0 = time.time()
        for name, (user, n, size) in work.items():
            master.create_user(user)
            for i in range(n):
                master.deliver(user, cyrus.make_message(i, size))
        print("# delivered the workloads in %.1f s" % (time.time() - t0))
        times = {}
        for r in range(runs):
            for target in ("relay", "cyrus", "cyrus-nocompress"):
                if target == "relay":
                    relay = fresh_relay(path, relay)
                    port = relay.port
                else:
                    unuser(replica, [u for u, _, _ in work.values()])
                    port = (replica.sync_port if target == "cyrus" else
                            proxy.port)
                for name, (user, n, size) in work.items():
                    t = timed_sync(master, port, user)
                    times.setdefault((target, name), []).append(t)
                    print("run %d %-16s %-5s %.3f s" % (r + 1, target, name,
                                                        t), flush=True)
        print()
        for name, (user, n, size) in work.items():
            med = {t: statistics.median(times[(t, name)])
                   for t in ("relay", "cyrus", "cyrus-nocompress")}
            print("%s (%d x %d KB): median relay %.3f s, cyrus %.3f s, "
                  "cyrus-nocompress %.3f s; relay/cyrus %.2f, "
                  "relay/cyrus-nocompress %.2f" %
                  (name, n, size // 1024, med["relay"], med["cyrus"],
                   med["cyrus-nocompress"], med["relay"] / med["cyrus"],
                   med["relay"] / med["cyrus-nocompress"]))
    finally:
        if proxy:
            proxy.stop()
        path.stop()


if __name__ == "__main__":
    main()
