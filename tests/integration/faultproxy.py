"""faultproxy.py -- a TCP proxy on 127.0.0.1 that misbehaves on demand,
for the network faults a maintenance window brings (issue 14): put it
between master and relay, or between relay and replica, and switch its
mode while traffic flows.

Modes (proxy.mode = ...), for every connection, old and new:
  "pass"       forward as it comes
  "hang"       forward nothing, read nothing: the connections stay open
               and the senders' windows fill (a peer stuck on a lock);
               a new connection is accepted and never answered
               (half-open)
  "blackhole"  read everything, forward nothing: the senders believe
               their bytes arrived (a dropped route in mid-session)
  "slow"       forward in pieces of `chunk` bytes, `delay` seconds apart
               (added latency, a bandwidth cap, writes chopped small)
  "rst"        after `rst_after` more bytes towards the server, reset
               both sides (SO_LINGER 0: an RST, not a FIN), then go back
               to "pass"
  "rst-each"   every connection is reset after `rst_after` bytes of its
               own towards the server (a replica that dies on one
               command, again and again)

It counts bytes each way and the connections it saw, so a test can tell
that traffic really crossed it.
"""
import select
import socket
import struct
import threading
import time

from harness import TcpProxy


class FaultProxy(TcpProxy):
    def __init__(self, target_port, mode="pass"):
        self.mode = mode
        self.chunk, self.delay = 512, 0.01
        self.rst_after = 0
        self.up_bytes = self.down_bytes = self.connections = 0
        self.resets = 0
        self.socks = []
        TcpProxy.__init__(self, target_port, 64)

    def stop(self):
        self.stopping = True
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass

    def handle(self, c):
        with self.lock:
            self.connections += 1
            self.socks.append(c)
        # Half-open: accepted, never answered, while hanging.
        while self.mode in ("hang", "blackhole") and not self.stopping:
            if self.mode == "blackhole":
                r, _, _ = select.select([c], [], [], 0.2)
                if r and not c.recv(65536):
                    c.close()
                    return
            else:
                time.sleep(0.2)
        try:
            u = socket.create_connection(("127.0.0.1", self.target), 10)
        except OSError:
            c.close()
            return
        with self.lock:
            self.socks.append(u)
        try:
            self._pipe(c, u)
        except OSError:
            pass            # reset, or closed by stop()
        finally:
            for s in (c, u):
                try:
                    s.close()
                except OSError:
                    pass

    def _reset(self, *socks):
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass
        with self.lock:
            self.resets += 1
        self.mode = "pass"

    def _send(self, dst, data):
        if self.mode == "slow":
            for i in range(0, len(data), self.chunk):
                dst.sendall(data[i:i + self.chunk])
                time.sleep(self.delay)
        else:
            dst.sendall(data)

    def _pipe(self, c, u):
        left = self.rst_after       # for "rst-each": this connection's
        while not self.stopping:
            if self.mode == "hang":
                time.sleep(0.1)
                continue
            r, _, _ = select.select([c, u], [], [], 0.2)
            for sk in r:
                data = sk.recv(65536)
                if not data:
                    return
                if self.mode == "blackhole":
                    continue
                up = sk is c
                if up and self.mode == "rst-each":
                    if len(data) >= left:
                        u.sendall(data[:left])
                        with self.lock:
                            self.resets += 1
                        for s in (c, u):
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                            s.close()
                        return
                    left -= len(data)
                if up and self.mode == "rst":
                    if len(data) >= self.rst_after:
                        u.sendall(data[:self.rst_after])
                        self._reset(c, u)
                        return
                    self.rst_after -= len(data)
                with self.lock:
                    if up:
                        self.up_bytes += len(data)
                    else:
                        self.down_bytes += len(data)
                self._send(u if up else c, data)
