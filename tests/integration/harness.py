"""harness.py -- shared helpers for syncrelay's integration tests.

Tests are plain functions registered with @test; run() executes them in
order, prints "ok NAME" / "FAIL NAME" and the line
"summary PROG passed=N failed=N" that tests/run-tests.sh adds up.
Everything talks to real processes over real sockets on 127.0.0.1.
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BUILDDIR = os.environ.get("BUILDDIR", os.path.abspath("."))
SRCDIR = os.environ.get("SRCDIR", os.path.abspath(".."))
SYNCRELAY = os.path.join(BUILDDIR, "syncrelay")
SYNCRELAYCTL = os.path.join(BUILDDIR, "syncrelayctl")

_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def run(prog, teardown=None):
    """Runs the registered tests.  teardown, if given, runs at the end
    whatever happened, SIGTERM included (it becomes exit status 143)."""
    if teardown:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        passed = failed = 0
        for fn in _tests:
            try:
                fn()
                print("ok %s" % fn.__name__, flush=True)
                passed += 1
            except Exception:
                traceback.print_exc()
                print("FAIL %s" % fn.__name__, flush=True)
                failed += 1
        print("summary %s passed=%d failed=%d" % (prog, passed, failed))
        sys.exit(1 if failed else 0)
    finally:
        if teardown:
            teardown()


_GIVEN = set()


def free_port():
    """A port on 127.0.0.1 free now, below the ephemeral range (32768
    up): there an outgoing connection may take it before a server
    binds it (a Cyrus master once failed to bind a 47xxx port so)."""
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(10000, 32768)
        # Never the same port twice in one test program: a port handed
        # out may not be bound yet (a relay or Cyrus starting), so the
        # bind below would not see it taken.
        if port in _GIVEN:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            _GIVEN.add(port)
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in 10000-32767")


def listening_socket(backlog=16):
    """A TCP socket listening on 127.0.0.1, and its port."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    s.bind(("127.0.0.1", port))
    s.listen(backlog)
    return s, port


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of target_port: each accepted
    connection is handed to self.handle(sock) in a thread of its own."""

    def __init__(self, target_port, backlog=16):
        self.target = target_port
        self.lsock, self.port = listening_socket(backlog)
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,),
                             daemon=True).start()

    def handle(self, c):
        raise NotImplementedError


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on port %d" % port)


class Relay:
    """A syncrelay daemon in the foreground, logging to a file."""

    def __init__(self, extra_conf="", port=None):
        self.dir = tempfile.mkdtemp(prefix="syncrelay-it-")
        self.port = port or free_port()
        # Each relay serves its metrics on a port of its own (the default,
        # 9464, would be shared by relays running at once).
        self.metrics_port = free_port()
        self.conf = os.path.join(self.dir, "syncrelay.conf")
        self.pidfile = os.path.join(self.dir, "syncrelay.pid")
        self.logpath = os.path.join(self.dir, "syncrelay.log")
        self.control = os.path.join(self.dir, "control.sock")
        self.write_conf(extra_conf)
        self.proc = None

    def write_conf(self, extra_conf):
        with open(self.conf, "w") as f:
            f.write("listen: 127.0.0.1:%d\n" % self.port)
            f.write("datadir: %s/data\n" % self.dir)
            f.write("pidfile: %s\n" % self.pidfile)
            f.write("control_socket: %s\n" % self.control)
            f.write("servername: relay-test\n")
            f.write(extra_conf)
            # Last, so that extra_conf keeps its line numbers.
            if "metrics_listen:" not in extra_conf:
                if extra_conf and not extra_conf.endswith("\n"):
                    f.write("\n")
                f.write("metrics_listen: 127.0.0.1:%d\n" % self.metrics_port)

    def start(self, timeout=30.0):
        """Starts the daemon and returns once it serves: its port accepts
        and it has logged event=started (after every store is open and
        the control socket listens; the port alone is bound earlier)."""
        self.log = open(self.logpath, "ab")
        since = self.log.tell()
        self.proc = subprocess.Popen([SYNCRELAY, "-C", self.conf, "-f"],
                                     stdout=self.log, stderr=self.log)
        wait_port(self.port)
        deadline = time.time() + timeout
        while True:
            with open(self.logpath, "rb") as f:
                f.seek(since)
                if b"event=started" in f.read():
                    return self
            if self.proc.poll() is not None:
                raise AssertionError("syncrelay exited %s before it started:"
                                     "\n%s" % (self.proc.returncode,
                                                self.logtext()[-3000:]))
            if time.time() > deadline:
                raise AssertionError("syncrelay never logged event=started:"
                                     "\n%s" % self.logtext()[-3000:])
            time.sleep(0.02)

    def ctl(self, *args, timeout=60):
        """Runs syncrelayctl against this relay; returns CompletedProcess."""
        return subprocess.run([SYNCRELAYCTL, "-C", self.conf] + list(args),
                              capture_output=True, text=True,
                              timeout=timeout)

    def status(self, store=None):
        """syncrelayctl status --json, parsed."""
        r = self.ctl("status", *([store] if store else []), "--json")
        if r.returncode != 0:
            raise AssertionError("status failed: %s" % r.stderr)
        return json.loads(r.stdout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        return self.proc.returncode

    def logtext(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, needle, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.logtext():
                return
            time.sleep(0.05)
        raise AssertionError("log never said %r:\n%s" % (needle,
                                                         self.logtext()))


class Client:
    """A raw csync client: send bytes, read CRLF lines."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def banner(self):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith("* OK"):
                return lines

    def cmd(self, data):
        self.send(data)
        return self.line()

    def closed(self, timeout=5.0):
        """True once the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def check(cond, msg=""):
    if not cond:
        raise AssertionError(msg)


def eq(got, want):
    if got != want:
        raise AssertionError("got %r, want %r" % (got, want))


def sasldb(path, user, password, realm="relay-test"):
    """Adds user@realm with password to the sasldb at path."""
    r = subprocess.run(["saslpasswd2", "-p", "-c", "-f", path, "-u", realm,
                        user], input=password + "\n", text=True,
                       capture_output=True, timeout=30)
    eq(r.returncode, 0)


def plain(user, password):
    """The base64 of a SASL PLAIN initial response."""
    import base64
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            password.encode()).decode()


def sasl_relay(users, conf="", mechs="PLAIN", start=True):
    """A syncrelay whose masters log in from a sasldb of its own holding
    users {name: password} (realm relay-test), offering mechs (None: what
    the library has); conf (stores, replicas, ...) follows the login
    settings.  Started unless start is False."""
    relay = Relay()
    relay.sasldb = os.path.join(relay.dir, "sasldb2")
    for user, password in users.items():
        sasldb(relay.sasldb, user, password)
    relay.write_conf("allowplaintext: yes\n"
                     "sasl_sasldb_path: %s\n" % relay.sasldb +
                     ("sasl_mech_list: %s\n" % mechs if mechs else "") + conf)
    return relay.start() if start else relay


def authed_client(port, user, password):
    """A Client on port, past the banner, logged in with PLAIN."""
    c = Client(port)
    c.banner()
    eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain(user, password)),
       "OK Success (no protection)")
    return c


def relay_lsn(relay, store="s1"):
    """The newest LSN in a store's journal, read offline."""
    r = subprocess.run([os.path.join(BUILDDIR, "syncrelay-journal"),
                        "summary", os.path.join(relay.dir, "data", store,
                                                "journal")],
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"LSN \d+\.\.(\d+)", r.stdout)
    return int(m.group(1)) if m else 0


def read_reply(c):
    """Lines up to and including the final OK/NO/BAD line."""
    lines = []
    while True:
        line = c.line()
        lines.append(line)
        if not line.startswith("* "):
            return lines
