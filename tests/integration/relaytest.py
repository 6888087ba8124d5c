"""relaytest.py -- helpers shared by the integration tests that run real
Cyrus against syncrelay (a module of its own so that importing it does not
register anyone's tests)."""
import os
import re
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
import zlib

import cyrus
from harness import TcpProxy, check, sasl_relay
from harness import relay_lsn  # noqa: F401 (for the tests)

__import__("imaplib").Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


def populate(master, user, n, big):
    master.create_user(user)
    m = master.imap(user)
    try:
        for folder in ("Sent", "Work", "Work/2026"):
            cyrus.imap_ok(*m.create(folder))
        cyrus.imap_ok(*m.subscribe("Work"))
        cyrus.imap_ok(*m._simple_command("SETMETADATA", "Work",
                                         '(/shared/comment "project files")'))
    finally:
        m.logout()
    for i in range(n):
        size = 1500 + (i * 397) % 8000
        if i in big:
            size = 1_200_000 + i
        master.deliver(user, cyrus.make_message(i, size))
    for i in range(10):
        master.append(user, "Work", cyrus.make_message(1000 + i, 3000),
                      flags=r"(\Seen)")
    m = master.imap(user)
    try:
        m.select("INBOX")
        cyrus.imap_ok(*m.uid("STORE", "1:10", "+FLAGS", r"(\Flagged)"))
        cyrus.imap_ok(*m.uid("STORE", "5:20", "+FLAGS", r"(\Seen $Label1)"))
        cyrus.imap_ok(*m.uid("STORE", "3", "+FLAGS", r"(\Deleted)"))
        cyrus.imap_ok(*m.expunge())
    finally:
        m.logout()
    a = master.imap()
    try:
        cyrus.imap_ok(*a.setquota(master.mailbox_name(user),
                                  "(STORAGE 500000)"))
    finally:
        a.logout()


def imap_steps(inst, user, *steps):
    """Logs in to inst's IMAP as user and runs steps, each (method name,
    args) of imaplib.IMAP4, every one required to say OK."""
    m = inst.imap(user)
    try:
        for name, args in steps:
            cyrus.imap_ok(*getattr(m, name)(*args))
    finally:
        m.logout()


def master_facing_relay(replicas, extra="", password=cyrus.REPL_PASSWORD,
                        mechs="PLAIN"):
    """A started syncrelay with one store, s1, that a Cyrus master logs in
    to as repl with password (offering mechs, None for all the library
    has, from a sasldb of the relay's own), replaying to replicas
    [(name, port), ...] on 127.0.0.1 as repl (cyrus.REPL_PASSWORD); extra
    is appended to its config."""
    return sasl_relay({"repl": password},
                      "replica_authname: repl\n"
                      "replica_password: %s\n"
                      "store.s1.identity: repl\n" % cyrus.REPL_PASSWORD +
                      "".join("store.s1.replica.%s: 127.0.0.1:%d\n" % r
                              for r in replicas) + extra, mechs)


def cursor_lsn(relay, name, store="s1"):
    """A replica's cursor as the relay last stored it: of the file's two
    32-byte slots ("SRCU", pad, seq, lsn, flags, crc) the newer one."""
    path = os.path.join(relay.dir, "data", store, "cursors",
                        "%s.cursor" % name)
    with open(path, "rb") as f:
        data = f.read()
    best = (-1, 0)
    for off in (0, 32):
        slot = data[off:off + 32]
        if len(slot) == 32 and slot[:4] == b"SRCU":
            seq, lsn = struct.unpack_from("<QQ", slot, 8)
            best = max(best, (seq, lsn))
    return best[1]


def converge(master, replica, users, timeout=90.0):
    """Waits until the replica shows what the master shows for users."""
    deadline = time.time() + timeout
    want = {u: master.state(u) for u in users}
    got = None
    while time.time() < deadline:
        try:
            got = {u: replica.state(u) for u in users}
        except AssertionError:
            # A folder renamed or deleted between LIST and STATUS.
            time.sleep(0.5)
            continue
        if got == want:
            return want
        time.sleep(0.5)
    check(got is not None, "the replica's state could not be read")
    for u in users:
        if got[u] != want[u]:
            raise AssertionError("replica never matched the master for %s:\n"
                                 "master:  %r\nreplica: %r"
                                 % (u, want[u], got[u]))
    return want


def direct_applies(master, replica, user):
    """Runs a one-shot sync_client -u user from the master straight to the
    replica (a channel of its own) with protocol telemetry (-v -v), and
    returns the APPLY commands it had to send: none if the replica already
    holds exactly what the master has."""
    ch = "direct%d" % replica.sync_port
    master.settings.update({
        ch + "_sync_host": "127.0.0.1",
        ch + "_sync_port": str(replica.sync_port),
        ch + "_sync_authname": "repl",
        ch + "_sync_password": cyrus.REPL_PASSWORD,
        ch + "_sync_try_imap": "0"})
    master.write_conf()
    rc, out, err = master.sync_client(["-n", ch, "-v", "-v", "-u", user],
                                      timeout=120)
    check(rc == 0, "direct sync_client rc=%r\n%s%s" % (rc, out, err))
    check(">GET USER %s" % user in out + err, out + err)
    return [line for line in (out + err).splitlines()
            if re.match(r">\d+>APPLY ", line)]


def identical(master, replica, users, timeout=120):
    """The replica ends up showing exactly what the master shows, with
    no message twice in a mailbox, and a direct sync_client from the
    master finds nothing to send: nothing lost, nothing repeated."""
    state = converge(master, replica, users, timeout=timeout)
    for u in users:
        for name, box in state[u]["mailboxes"].items():
            hashes = [m["sha1"] for m in box.get("messages", {}).values()]
            check(len(hashes) == len(set(hashes)),
                  "%s %s holds a message twice" % (u, name))
        check(direct_applies(master, replica, u) == [],
              "a direct sync_client still had to send to the replica "
              "for %s" % u)
    return state


def no_errors(log, mark, relay):
    log.flush()
    check(not log.errors(mark), log.errors(mark))
    check("event=link_failed" not in relay.logtext(), relay.logtext())


_paths = []


class CyrusPath:
    """Real Cyrus replicas (r1, r2, ...), a syncrelay (store s1) replaying
    to them and a real Cyrus master replicating into it: the setup the
    real-Cyrus tests and benchmarks share, under one temporary root with
    one syslog.  relay=False leaves the relay out (then the master, if
    wanted, replicates straight into the first replica); relay=[(name,
    port), ...] points it elsewhere than at the replicas; master=False
    leaves the master to start_master().  replica_conf is extra imapd.conf
    for the replicas, relay_kw goes to master_facing_relay().  versions
    names each replica's Cyrus ("3.6", "3.10", "3.12": cyrusroots.py),
    master_version the master's; both default to the host's 3.6.  stop()
    tears down whatever was started, so a test can call it from finally:
    and stop_paths() again at exit."""

    def __init__(self, prefix, nreplicas=1, extra="", users=("alice",),
                 relay=True, master=True, replica_conf=None, names=None,
                 root=None, versions=None, master_version=None,
                 **relay_kw):
        self.root = root or tempfile.mkdtemp(prefix=prefix)
        self.master_version = master_version
        self.master = self.relay = self.log = None
        self.replicas, self.relays = [], []
        _paths.append(self)
        try:
            self.log = cyrus.Syslog(os.path.join(self.root, "syslog")).start()
            for i in range(nreplicas):
                name = (names[i] if names else
                        "replica" if i == 0 else "replica%d" % (i + 1))
                self.add_replica(cyrus.CyrusInstance(
                    self.root, name, syslog=self.log, users=users,
                    extra=replica_conf,
                    version=versions[i] if versions else None))
            if relay:
                self.relay = self.start_relay(
                    None if relay is True else relay, extra, **relay_kw)
            if master:
                self.start_master()
        except BaseException:
            self.stop()
            raise

    @property
    def replica(self):
        return self.replicas[0]

    def add_replica(self, inst):
        """Starts inst (of this root and syslog) as one of the replicas."""
        self.replicas.append(inst)
        inst.start()
        return inst

    def start_relay(self, replicas=None, extra="", **kw):
        """A master-facing relay (one more, stopped with the rest) replaying
        to replicas [(name, port), ...], by default to r1, r2, ..."""
        if replicas is None:
            replicas = [("r%d" % (i + 1), r.sync_port)
                        for i, r in enumerate(self.replicas)]
        relay = master_facing_relay(replicas, extra, **kw)
        self.relays.append(relay)
        return relay

    def start_master(self, extra=None):
        """The master, replicating by default into the relay (or, without
        one, the first replica); extra replaces that imapd.conf."""
        if extra is None:
            extra = cyrus.replication_conf(
                self.relay.port if self.relay else self.replica.sync_port)
        self.master = cyrus.CyrusInstance(self.root, "master",
                                          syslog=self.log, extra=extra,
                                          version=self.master_version)
        self.master.start()
        return self.master

    def stop(self):
        for inst in [self.master] + self.replicas:
            if inst:
                inst.stop_rolling()
                inst.stop()
        self.master, self.replicas = None, []
        for relay in self.relays + [self.relay]:
            if relay:
                relay.stop()
        self.relay, self.relays = None, []
        if self.log:
            self.log.stop()
            self.log = None
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        if self in _paths:
            _paths.remove(self)


def stop_paths():
    """Stops every CyrusPath still running: run()'s teardown."""
    for path in list(_paths):
        path.stop()


def sync_user(master, user="alice", ok=True):
    """A one-shot sync_client -u user; must succeed unless ok is False.
    Returns (rc, output)."""
    rc, out, err = master.sync_client(["-u", user], timeout=180)
    if ok:
        check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    return rc, out + err


def wait_caught_up(relay, *args, timeout=90, store="s1"):
    """syncrelayctl wait STORE [args] --timeout; must exit 0."""
    r = relay.ctl("wait", store, *args, "--timeout", str(timeout),
                  timeout=timeout + 30)
    check(r.returncode == 0, "wait %s rc=%d\n%s%s\n%s" % (
        store, r.returncode, r.stdout, r.stderr, relay.logtext()[-3000:]))
    return r


class WireTap(TcpProxy):
    """A TCP proxy on 127.0.0.1 in front of a replica's sync_server that
    keeps what the relay's link sends it, inflated after COMPRESS
    DEFLATE: the commands as they crossed the wire, to check what a link
    asked a replica to delete or rename."""

    def __init__(self, target_port):
        self.sent = []
        TcpProxy.__init__(self, target_port)

    def handle(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.target), 10)
        except OSError:
            c.close()
            return
        state = {"asked": False, "on": False, "inflate": None,
                 "text": b"", "down": b""}
        with self.lock:
            self.sent.append(state)
        try:
            while not self.stopping:
                r, _, _ = select.select([c, u], [], [], 0.5)
                for sk in r:
                    data = sk.recv(65536)
                    if not data:
                        return
                    if sk is c:
                        self._up(state, data)
                        u.sendall(data)
                    else:
                        self._down(state, data)
                        c.sendall(data)
        finally:
            c.close()
            u.close()

    def _up(self, state, data):
        if state["on"]:
            state["text"] += state["inflate"].decompress(data)
            return
        state["text"] += data
        if state["text"].rstrip().endswith(b"COMPRESS DEFLATE"):
            state["asked"] = True

    def _down(self, state, data):
        if state["asked"] and not state["on"]:
            state["down"] += data
            if re.search(rb"(^|\r\n)OK[^\r\n]*\r\n", state["down"]):
                state["on"] = True
                state["inflate"] = zlib.decompressobj(-15)
            elif re.search(rb"(^|\r\n)(NO|BAD)[^\r\n]*\r\n",
                           state["down"]):
                state["asked"] = False

    def text(self):
        """Everything sent so far, over every connection, as text."""
        with self.lock:
            done = [st["text"] for st in self.sent]
        return b"".join(done).decode("utf-8", "replace")

    def destructive(self):
        """The (verb, argument text) of every APPLY UNMAILBOX, UNUSER,
        RENAME and UNSUB the link sent, in order."""
        return re.findall(r"APPLY (UNMAILBOX|UNUSER|RENAME|UNSUB) ([^\r\n]*)",
                          self.text())

    def stop(self):
        self.stopping = True
        self.lsock.close()
