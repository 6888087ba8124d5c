"""cyrus.py -- real Cyrus IMAP (Debian 3.6.1) instances for integration tests.

Everything runs on 127.0.0.1, from private temporary directories, with the
Python standard library only.  See shared/docs/real-cyrus.md for the facts
this relies on.

Syslog capture
--------------
Cyrus logs only through syslog(3), and glibc's syslog(3) always writes to
the datagram socket /dev/log (the path is compiled in).  Syslog runs a
private ``rsyslogd -n`` with its own config, pid file and work directory;
its imuxsock input listens on ``<dir>/log.sock`` (never on /dev/log) and
everything (``*.*``) goes to ``<dir>/syslog.log``.

To get Cyrus's messages there without touching the machine's /dev/log,
every Cyrus process (``master`` and all its children, ``sync_client``,
``ctl_cyrusdb`` ...) is started through ``Syslog.wrap(argv)``: a tiny
Python launcher that enters a private mount namespace (unshare(2) with
CLONE_NEWNS, we run as root), bind-mounts a prepared directory over /dev
(the real null, zero, urandom, tty, pts, shm ... bound in, plus ``log``, a
symlink to the private socket) and then execs the command, keeping its pid.
So concurrent test runs each have their own syslog and cannot steal each
other's messages; the global /dev/log is never created or changed (on
these machines there is none: no syslog daemon runs).  ``start()`` checks
the path end to end by logging through syslog(3) from a wrapped process.

Should mount namespaces not work, start() falls back to creating /dev/log
as a symlink to the private socket when no /dev/log exists (removed again
by stop()), and finally to leaving /dev/log alone ("system" mode: Cyrus's
messages then go wherever the machine's syslog puts them).  ``mode`` says
which one is in use.

Instances
---------
CyrusInstance(root, name, ...) builds <root>/<name>/ (owned cyrus:mail),
imapd.conf, cyrus.conf (absolute paths, -C on every cmd) and a sasldb with
``admin``, ``repl`` (both in ``admins``) and any users.  master is started
as root with ``-d``; Cyrus drops to user cyrus by itself.  Every service is
on its own TCP port chosen with free_port(); ``master_bind_errors_fatal``
is on so an unbindable port makes master exit instead of idling.

Naming: Cyrus 3.6's compiled-in defaults are ``unixhierarchysep: yes`` and
``altnamespace: yes`` (Debian's /etc/imapd.conf turns both off, but these
instances don't read it).  So as admin, bob's INBOX is ``user/bob`` and his
folder Foo ``user/bob/Foo``; seen as bob (admin proxying with authzid bob)
they are ``INBOX`` and ``Foo``.  ``mailbox_name()`` asks the server for the
separator, so ``extra={"unixhierarchysep": "no"}`` gives ``user.bob``.

Processes: ``master -d`` daemonizes, so master is not our child; pid 1 on
these machines reaps orphans only now and then, so a stopped master may sit
as a zombie for a while -- liveness checks here treat zombies as gone.
pids() finds an instance's processes by the CYRUS_TEST_INSTANCE=<dir>
environment marker / the -C path and master's process tree; stop() and
kill() use it to leave nothing behind.
"""
import hashlib
import os
import pwd
import grp
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import imaplib
import base64

imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))

import cyrusroots
from harness import free_port

CYRUS_BIN = "/usr/lib/cyrus/bin"
RSYSLOGD = "/usr/sbin/rsyslogd"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"

ADMIN_PASSWORD = "admin-secret"
REPL_PASSWORD = "repl-secret"
USER_PASSWORD = "user-secret"

ERROR_PATTERNS = ("SYNCERROR", "IOERROR")

# ---------------------------------------------------------------------------
# small process helpers


def _cyrus_ids():
    return pwd.getpwnam("cyrus").pw_uid, grp.getgrnam("mail").gr_gid


def _chown_tree(path, ids=None):
    uid, gid = ids or _cyrus_ids()
    for top, dirs, files in os.walk(path):
        os.chown(top, uid, gid)
        for f in files:
            os.lchown(os.path.join(top, f), uid, gid)


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X", "")


def _wait_gone(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(_pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(_pid_alive(p) for p in pids)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _proc_read(pid, what):
    try:
        with open("/proc/%d/%s" % (pid, what), "rb") as f:
            return f.read()
    except OSError:
        return b""


def _port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _accepts(port):
    """Something listens on port (a TCP self-connect doesn't count)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), 0.5)
    except OSError:
        return False
    try:
        return s.getsockname() != s.getpeername()
    finally:
        s.close()


class _StartError(RuntimeError):
    pass


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


# The launcher Syslog.wrap() puts in front of a command: argv[1] is the
# prepared /dev replacement, argv[2:] the command.  Private mount namespace,
# real devices bound into the replacement, replacement bound over /dev, exec.
_NSEXEC = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def mount(src, dst, flags):
    if libc.mount(src.encode() if src else None, dst.encode(), None,
                  ctypes.c_ulong(flags), None) != 0:
        e = ctypes.get_errno()
        sys.exit("nsexec: mount %s on %s: %s" % (src, dst, os.strerror(e)))
if libc.unshare(0x00020000) != 0:
    sys.exit("nsexec: unshare: %s" % os.strerror(ctypes.get_errno()))
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
mount(None, "/", MS_REC | MS_PRIVATE)
dev = sys.argv[1]
for n in sorted(os.listdir(dev)):
    p = os.path.join(dev, n)
    if not os.path.islink(p) and os.path.exists("/dev/" + n):
        mount("/dev/" + n, p, MS_BIND | MS_REC)
mount(dev, "/dev", MS_BIND | MS_REC)
argv = sys.argv[2:]
if argv[0] == "--chroot":
    # --chroot ROOT DIR... --: /dev, /proc and each DIR (the instance's
    # and the syslog's, at the same paths) bound into ROOT, then chroot.
    root, end = argv[1], argv.index("--")
    for src in ["/dev", "/proc"] + argv[2:end]:
        dst = root + src
        os.makedirs(dst, exist_ok=True)
        mount(src, dst, MS_BIND | MS_REC)
    os.chroot(root)
    os.chdir("/")
    argv = argv[end + 1:]
os.execvp(argv[0], argv)
"""

_DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty", "ptmx",
              "console")
_DEV_DIRS = ("pts", "shm", "mqueue")
_DEV_LINKS = ("fd", "stdin", "stdout", "stderr", "core")


class Syslog:
    """A private rsyslogd; Cyrus processes started through wrap() log to it."""

    def __init__(self, root=None):
        self.own_dir = root is None
        self.dir = root or tempfile.mkdtemp(prefix="cyrus-syslog-")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "log.sock")
        self.logpath = os.path.join(self.dir, "syslog.log")
        self.conf = os.path.join(self.dir, "rsyslog.conf")
        self.pidfile = os.path.join(self.dir, "rsyslogd.pid")
        self.workdir = os.path.join(self.dir, "work")
        self.devdir = os.path.join(self.dir, "dev")
        self.outpath = os.path.join(self.dir, "rsyslogd.out")
        self.proc = None
        self.mode = None
        self._devlog_link = False

    # -- lifecycle

    def _write_conf(self):
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write('global(workDirectory="%s" maxMessageSize="64k")\n'
                    % self.workdir)
            f.write('module(load="imuxsock" SysSock.Use="off")\n')
            f.write('input(type="imuxsock" Socket="%s" CreatePath="on" '
                    'RateLimit.Interval="0")\n' % self.sock)
            f.write('template(name="t" type="list") {\n'
                    ' property(name="timegenerated" dateFormat="rfc3339")\n'
                    ' constant(value=" ")\n'
                    ' property(name="syslogfacility-text")\n'
                    ' constant(value=".")\n'
                    ' property(name="syslogseverity-text")\n'
                    ' constant(value=" ")\n'
                    ' property(name="syslogtag")\n'
                    ' property(name="msg" spifno1stsp="on")\n'
                    ' property(name="msg" droplastlf="on")\n'
                    ' constant(value="\\n")\n'
                    '}\n')
            f.write('*.* action(type="omfile" file="%s" template="t")\n'
                    % self.logpath)

    def _make_devdir(self):
        os.makedirs(self.devdir, exist_ok=True)
        os.chmod(self.devdir, 0o755)
        for n in _DEV_NODES:
            if os.path.exists("/dev/" + n) and not os.path.isdir("/dev/" + n):
                open(os.path.join(self.devdir, n), "a").close()
        for n in _DEV_DIRS:
            if os.path.isdir("/dev/" + n) and not os.path.islink("/dev/" + n):
                os.makedirs(os.path.join(self.devdir, n), exist_ok=True)
        for n in _DEV_LINKS:
            if os.path.islink("/dev/" + n):
                os.symlink(os.readlink("/dev/" + n),
                           os.path.join(self.devdir, n))
        os.symlink(self.sock, os.path.join(self.devdir, "log"))

    def start(self, timeout=10.0):
        self._write_conf()
        for p in (self.sock, self.pidfile):
            if os.path.lexists(p):
                os.unlink(p)
        self.out = open(self.outpath, "ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", self.conf, "-i", self.pidfile],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out)
        deadline = time.time() + timeout
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("rsyslogd did not start: %s"
                                   % self._read(self.outpath))
            time.sleep(0.02)
        self.flush(timeout)
        self._make_devdir()
        self.mode = "namespace"
        if self._probe():
            return self
        if not os.path.lexists("/dev/log"):
            os.symlink(self.sock, "/dev/log")
            self._devlog_link = True
            self.mode = "devlog"
            if self._probe():
                return self
            self._unlink_devlog()
        self.mode = "system"
        return self

    def _probe(self):
        """Log through syslog(3) from a wrapped process; True if it got here."""
        token = "syslog-probe-%d-%f" % (os.getpid(), time.time())
        code = ("import syslog; syslog.openlog('cyrus-py-probe'); "
                "syslog.syslog(syslog.LOG_NOTICE, %r)" % token)
        try:
            subprocess.run(self.wrap([sys.executable, "-c", code]),
                           timeout=10, capture_output=True)
        except subprocess.TimeoutExpired:
            return False
        try:
            self.wait_for(token, timeout=3)
            return True
        except AssertionError:
            return False

    def wrap(self, argv, chroot=None, binds=()):
        """argv, prefixed so that the command's /dev/log is this syslog;
        with chroot, run in that root, with /dev, /proc, binds and this
        syslog's directory bound into it at the same paths."""
        if chroot:
            if self.mode != "namespace":
                raise RuntimeError("Cyrus in a root (%s) needs the private "
                                   "mount namespace; syslog mode is %s"
                                   % (chroot, self.mode))
            dirs = []
            for d in list(binds) + [self.dir]:
                d = os.path.abspath(d)
                # All of /tmp, so nothing is left behind in the root.
                if d.startswith("/tmp/"):
                    d = "/tmp"
                if not any(d == x or d.startswith(x + "/") for x in dirs):
                    dirs = [x for x in dirs if not x.startswith(d + "/")]
                    dirs.append(d)
            return [sys.executable, "-c", _NSEXEC, self.devdir,
                    "--chroot", chroot] + dirs + ["--"] + list(argv)
        if self.mode == "namespace":
            return [sys.executable, "-c", _NSEXEC, self.devdir] + list(argv)
        return list(argv)

    def _unlink_devlog(self):
        if self._devlog_link:
            try:
                if os.readlink("/dev/log") == self.sock:
                    os.unlink("/dev/log")
            except OSError:
                pass
            self._devlog_link = False

    def stop(self, timeout=10.0):
        self._unlink_devlog()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.out.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        """stop(), and remove the directory if Syslog made it."""
        try:
            self.stop()
        finally:
            if self.own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- reading

    @staticmethod
    def _read(path, since=0):
        try:
            with open(path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """Current end of the log, for text(since=...) later."""
        try:
            return os.path.getsize(self.logpath)
        except FileNotFoundError:
            return 0

    def text(self, since=0):
        return self._read(self.logpath, since)

    def lines(self, since=0, tag=None):
        """Log lines; with tag, only those whose syslog tag starts with it
        (an instance's syslog_prefix, e.g. "master/" or "replica/")."""
        out = []
        for line in self.text(since).splitlines():
            if tag is not None:
                parts = line.split(" ", 3)
                if len(parts) < 3 or not parts[2].startswith(tag):
                    continue
            out.append(line)
        return out

    def errors(self, since=0, patterns=ERROR_PATTERNS, tag=None):
        return [l for l in self.lines(since, tag)
                if any(p in l for p in patterns)]

    def severe(self, since=0, tag=None):
        """Lines at severity err or worse (e.g. a failed sync login, which
        is no SYNCERROR)."""
        bad = ("err", "crit", "alert", "emerg")
        out = []
        for line in self.lines(since, tag):
            parts = line.split(" ", 2)
            if len(parts) > 1 and parts[1].rsplit(".", 1)[-1] in bad:
                out.append(line)
        return out

    def send(self, message, tag="cyrus-py"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(("<13>%s: %s" % (tag, message)).encode(), self.sock)
        finally:
            s.close()

    def flush(self, timeout=10.0):
        """Wait until everything logged before this call is in the file
        (as far as datagram ordering goes): log a marker and wait for it."""
        token = "flush-%d-%f" % (os.getpid(), time.time())
        self.send(token)
        self.wait_for(token, timeout=timeout)

    def wait_for(self, needle, since=0, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            text = self.text(since)
            if needle in text:
                return text
            if time.time() > deadline:
                raise AssertionError("syslog never said %r" % needle)
            time.sleep(0.02)


# ---------------------------------------------------------------------------
# Cyrus instances


def replication_conf(port, host="127.0.0.1", authname="repl",
                     password=REPL_PASSWORD):
    """imapd.conf settings for a master that replicates to host:port."""
    return {
        "sync_host": host,
        "sync_port": str(port),
        "sync_try_imap": "0",
        "sync_authname": authname,
        "sync_password": password,
        "sync_repeat_interval": "1s",
    }


class CyrusInstance:
    """One self-contained Cyrus: <root>/<name>/, its own ports and sasldb."""

    def __init__(self, root, name, servername=None, imap_port=None,
                 lmtp_port=None, sync_port=None, sieve_port=None,
                 extra=None, users=(), syslog=None, version=None):
        self.root = root
        self.name = name
        # "3.6" (the host's Debian 12 Cyrus), "3.10" or "3.12" (a
        # cached Debian root, see cyrusroots.py).
        self.version = version or "3.6"
        self.chroot = cyrusroots.root(self.version)
        self.ids = cyrusroots.ids(self.chroot)
        if self.chroot and syslog is None:
            raise RuntimeError("a Cyrus %s instance needs a Syslog (its "
                               "launcher runs it in the root)" % version)
        self.dir = os.path.join(root, name)
        self.servername = servername or "%s.test" % name
        self._auto_ports = [svc for svc, p in (
            ("imap", imap_port), ("lmtp", lmtp_port), ("sync", sync_port),
            ("sieve", sieve_port)) if not p]
        self.imap_port = imap_port or free_port()
        self.lmtp_port = lmtp_port or free_port()
        self.sync_port = sync_port or free_port()
        self.sieve_port = sieve_port or free_port()
        self.syslog = syslog
        self.syslog_prefix = name
        self.configdirectory = os.path.join(self.dir, "conf")
        self.imapd_conf = os.path.join(self.dir, "imapd.conf")
        self.cyrus_conf = os.path.join(self.dir, "cyrus.conf")
        self.pidfile = os.path.join(self.dir, "master.pid")
        self.sasldb = os.path.join(self.dir, "sasldb2")
        self.shutdown_file = os.path.join(self.configdirectory, "sync",
                                          "shutdown")
        self.master_pid = None
        self.rolling = None
        self._sep = None
        self.settings = self._settings(extra or {})
        self._setup()
        self.add_user("admin", ADMIN_PASSWORD)
        self.add_user("repl", REPL_PASSWORD)
        for u in users:
            self.add_user(u)

    # -- files

    def _settings(self, extra):
        d = self.dir
        s = {
            "configdirectory": self.configdirectory,
            "defaultpartition": "default",
            "partition-default": os.path.join(d, "spool"),
            "sievedir": os.path.join(d, "sieve"),
            "proc_path": os.path.join(d, "proc"),
            "mboxname_lockpath": os.path.join(d, "lock"),
            "lmtpsocket": os.path.join(d, "socket", "lmtp"),
            "idlesocket": os.path.join(d, "socket", "idle"),
            "notifysocket": os.path.join(d, "socket", "notify"),
            "ptloader_sock": os.path.join(d, "socket", "ptsock"),
            "servername": self.servername,
            "syslog_prefix": self.syslog_prefix,
            "admins": "admin repl",
            "allowplaintext": "yes",
            "sasl_pwcheck_method": "auxprop",
            "sasl_auxprop_plugin": "sasldb",
            "sasl_sasldb_path": self.sasldb,
            "sasl_mech_list": "PLAIN LOGIN",
            "sync_log": "1",
            "sync_shutdown_file": self.shutdown_file,
            "master_bind_errors_fatal": "yes",
        }
        s.update({k: str(v) for k, v in extra.items()})
        return s

    def _setup(self):
        for sub in ("conf", "conf/db", "conf/socket", "conf/sync",
                    "conf/log", "conf/msg", "conf/quota", "conf/user",
                    "spool", "sieve", "socket", "proc", "lock"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.chmod(self.root, os.stat(self.root).st_mode | 0o755)
        self.write_conf()
        _chown_tree(self.dir, self.ids)

    def write_conf(self):
        with open(self.imapd_conf, "w") as f:
            for k, v in self.settings.items():
                f.write("%s: %s\n" % (k, v))
        b, c = CYRUS_BIN, self.imapd_conf

        def svc(name, cmd, port):
            return ('  %s cmd="%s/%s -C %s" listen="127.0.0.1:%d" '
                    'prefork=0\n' % (name, b, cmd, c, port))

        with open(self.cyrus_conf, "w") as f:
            f.write("START {\n")
            f.write('  recover cmd="%s/ctl_cyrusdb -C %s -r"\n' % (b, c))
            f.write("}\nSERVICES {\n")
            f.write(svc("imap", "imapd", self.imap_port))
            f.write(svc("lmtp", "lmtpd -a", self.lmtp_port))
            f.write(svc("sync", "sync_server", self.sync_port))
            f.write(svc("sieve", "timsieved", self.sieve_port))
            f.write("}\nDAEMON {\n")
            f.write('  idled cmd="%s/idled -C %s"\n' % (b, c))
            f.write("}\nEVENTS {\n")
            f.write('  checkpoint cmd="%s/ctl_cyrusdb -C %s -c" period=30\n'
                    % (b, c))
            f.write("}\n")

    def add_user(self, user, password=USER_PASSWORD):
        """A sasldb entry user@servername (for direct logins)."""
        # The host's saslpasswd2 for every version: the sasldb format
        # (Berkeley DB) is the same in Debian 12, trixie and sid, and
        # sid's saslpasswd2 logs an auth.err line for each new entry.
        subprocess.run([SASLPASSWD2, "-f", self.sasldb, "-u",
                        self.servername, "-c", "-p", user],
                       input=password.encode(), check=True,
                       capture_output=True)
        uid, gid = self.ids
        os.chown(self.sasldb, uid, gid)
        os.chmod(self.sasldb, 0o640)

    @property
    def ports(self):
        return {"imap": self.imap_port, "lmtp": self.lmtp_port,
                "sync": self.sync_port, "sieve": self.sieve_port}

    def _cmd(self, argv):
        if self.chroot:
            return self.syslog.wrap(argv, self.chroot, [self.root])
        return self.syslog.wrap(argv) if self.syslog else list(argv)

    def _env(self):
        env = dict(os.environ)
        env["CYRUS_TEST_INSTANCE"] = self.dir
        return env

    # -- lifecycle

    def start(self, timeout=20.0, attempts=3):
        """Start master (-d) and wait until every service port accepts.
        If a port chosen by free_port() was taken meanwhile (master exits:
        master_bind_errors_fatal), pick new ones and try again."""
        for attempt in range(attempts):
            last = attempt == attempts - 1
            busy = [p for p in self.ports.values() if not _port_free(p)]
            if busy:
                if last or not self._retry_ports(busy):
                    raise RuntimeError("%s: ports %r already in use"
                                       % (self.name, busy))
                continue
            try:
                return self._start_once(timeout)
            except _StartError as e:
                if last or not self._retry_ports(list(self.ports.values())):
                    raise
                print("%s: %s; retrying with new ports" % (self.name, e),
                      file=sys.stderr)

    def _retry_ports(self, ports):
        """Replace the auto-chosen ones of ports; False if none was."""
        changed = False
        for svc in self._auto_ports:
            if getattr(self, svc + "_port") in ports:
                setattr(self, svc + "_port", free_port())
                changed = True
        if changed:
            self.write_conf()
            _chown_tree(self.dir, self.ids)
        return changed

    def _start_once(self, timeout):
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        mark = self.syslog.mark() if self.syslog else 0
        r = subprocess.run(self._cmd([
            os.path.join(CYRUS_BIN, "master"), "-C", self.imapd_conf,
            "-M", self.cyrus_conf, "-p", self.pidfile, "-d"]),
            env=self._env(), capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("%s: master exited %d: %s %s" % (
                self.name, r.returncode, r.stdout, r.stderr))
        deadline = time.time() + timeout
        while self.master_pid is None:
            try:
                with open(self.pidfile) as f:
                    self.master_pid = int(f.read().split()[0])
            except (FileNotFoundError, ValueError, IndexError):
                if time.time() > deadline:
                    self.kill()
                    raise _StartError("no master pid file")
                time.sleep(0.02)
        for port in self.ports.values():
            while not _accepts(port):
                if not _pid_alive(self.master_pid) or time.time() > deadline:
                    if self.syslog:
                        self.syslog.flush()
                    log = "\n".join(self.syslog.lines(mark, self.name + "/")) \
                        if self.syslog else ""
                    self.kill()
                    raise _StartError("port %d never accepted\n%s"
                                      % (port, log))
                time.sleep(0.02)
        return self

    def pids(self):
        """Live processes of this instance: master and everything that
        carries the instance's environment marker or its imapd.conf path
        (master's children keep both), plus master's descendants."""
        marker = ("CYRUS_TEST_INSTANCE=%s" % self.dir).encode()
        conf = self.imapd_conf.encode()
        found = set()
        children = {}
        for pid in _all_pids():
            if pid == os.getpid():
                continue
            stat = _proc_read(pid, "stat").decode("ascii", "replace")
            if stat:
                try:
                    ppid = int(stat[stat.rfind(")") + 2:].split()[1])
                    children.setdefault(ppid, []).append(pid)
                except (ValueError, IndexError):
                    pass
            env = _proc_read(pid, "environ").split(b"\0")
            args = _proc_read(pid, "cmdline").split(b"\0")
            if marker in env or conf in args:
                found.add(pid)
        if self.master_pid:
            todo = [self.master_pid]
            while todo:
                p = todo.pop()
                found.add(p)
                todo.extend(children.get(p, []))
        return sorted(p for p in found if _pid_alive(p))

    def stop(self, timeout=10.0):
        """SIGTERM master, wait, then make sure nothing of it is left."""
        self.stop_rolling()
        pids = self.pids()
        if self.master_pid and _pid_alive(self.master_pid):
            _kill(self.master_pid, signal.SIGTERM)
            _wait_gone([self.master_pid], timeout)
        pids = sorted(set(pids) | set(self.pids()))
        if not _wait_gone(pids, 2.0):
            for p in pids:
                _kill(p, signal.SIGTERM)
            if not _wait_gone(pids, timeout):
                for p in pids:
                    _kill(p, signal.SIGKILL)
                _wait_gone(pids, 5.0)
        self.master_pid = None

    def kill(self):
        """SIGKILL master and every process of the instance (a crash)."""
        if self.rolling and self.rolling.poll() is None:
            self.rolling.kill()
            self.rolling.wait()
        pids = self.pids()
        for p in pids:
            _kill(p, signal.SIGKILL)
        _wait_gone(pids, 5.0)
        self.master_pid = None

    def running(self):
        return bool(self.master_pid) and _pid_alive(self.master_pid)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- mail in

    def deliver(self, user, message, folder=None,
                sender="sender@example.org"):
        """Deliver bytes over LMTP (lmtpd -a, pre-authorised).  With folder,
        to user+folder -- which lands in the folder only if it grants 'p'
        to anyone (else Cyrus silently uses INBOX); append() has no such
        condition."""
        rcpt = user if folder is None else "%s+%s" % (user, folder)
        lmtp = smtplib.LMTP("127.0.0.1", self.lmtp_port)
        try:
            refused = lmtp.sendmail(sender, [rcpt], message)
            if refused:
                raise AssertionError("LMTP refused %r" % refused)
        finally:
            try:
                lmtp.quit()
            except smtplib.SMTPException:
                pass

    # -- IMAP

    def append(self, user, folder, message, flags=None, date=None):
        """APPEND message to user's folder (as seen by user: "INBOX",
        "Sent" ...); flags like "(\\Seen)", date an imaplib date or None."""
        m = self.imap(user)
        try:
            _check(*m.append(_quote(folder), flags, date, message))
        finally:
            m.logout()

    def imap(self, user=None, timeout=30):
        """IMAP4 logged in as admin (SASL PLAIN); with user, as that user
        (authzid = user: admins may proxy)."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=timeout)
        auth = "%s\0admin\0%s" % (user or "", ADMIN_PASSWORD)
        try:
            m.authenticate("PLAIN", lambda _: auth.encode())
        except Exception:
            m.shutdown()
            raise
        return m

    def server_version(self):
        """The Cyrus version the IMAP greeting names ("3.12.4")."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        try:
            g = re.search(rb"Cyrus IMAP (\d+\.\d+\.\d+)", m.welcome)
        finally:
            m.shutdown()
        return g.group(1).decode() if g else None

    def separator(self):
        if self._sep is None:
            m = self.imap()
            try:
                typ, data = m.list('""', '""')
                _check(typ, data)
                self._sep = _parse_list(data)[0][1]
            finally:
                m.logout()
        return self._sep

    def mailbox_name(self, user, folder=None):
        """The admin's IMAP name of user's INBOX (or a folder of it)."""
        sep = self.separator()
        name = "user" + sep + user
        return name if folder is None else name + sep + folder

    def create_user(self, user, password=USER_PASSWORD):
        """Create user's INBOX as admin; returns its admin IMAP name."""
        self.add_user(user, password)
        name = self.mailbox_name(user)
        m = self.imap()
        try:
            _check(*m.create(_quote(name)))
        finally:
            m.logout()
        return name

    # -- replication

    def sync_client(self, args, timeout=60):
        """Run sync_client -C <imapd.conf> ARGS; (returncode, out, err).
        returncode is None when it was killed after timeout seconds."""
        argv = self._cmd([os.path.join(CYRUS_BIN, "sync_client"),
                          "-C", self.imapd_conf] + list(args))
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self._env())
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            rc = None
        return (rc, out.decode("utf-8", "replace"),
                err.decode("utf-8", "replace"))

    def start_rolling(self, args=()):
        """sync_client -R (rolling, foreground) in the background."""
        if self.rolling and self.rolling.poll() is None:
            raise RuntimeError("rolling sync_client already running")
        if os.path.exists(self.shutdown_file):
            os.unlink(self.shutdown_file)
        self.rolling_log = os.path.join(self.dir, "rolling.out")
        out = open(self.rolling_log, "ab")
        argv = self._cmd([os.path.join(CYRUS_BIN, "sync_client"),
                          "-C", self.imapd_conf, "-R"] + list(args))
        try:
            self.rolling = subprocess.Popen(argv, stdout=out, stderr=out,
                                            stdin=subprocess.DEVNULL,
                                            env=self._env())
        finally:
            out.close()
        return self.rolling

    def stop_rolling(self, timeout=15.0):
        """Ask the rolling sync_client to stop (shutdown file); kill it if
        it hasn't after timeout.  Returns its exit status (None if none)."""
        p = self.rolling
        if p is None:
            return None
        if p.poll() is None:
            with open(self.shutdown_file, "w"):
                pass
            os.chown(self.shutdown_file, *self.ids)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if os.path.exists(self.shutdown_file):
            os.unlink(self.shutdown_file)
        self.rolling = None
        return p.returncode

    # -- comparison snapshot

    def state(self, user):
        """What user sees, read without changing anything: plain dicts,
        equal on two instances iff they hold the same mail for user:
        mailboxes with their messages and mailbox metadata,
        subscriptions, and sieve scripts (ManageSieve)."""
        m = self.imap(user)
        try:
            st = _state(m)
            typ, data = m.status("INBOX", "(MAILBOXID)")
            mid = re.search(rb"MAILBOXID \((\w+)\)", data[0]).group(1)
        finally:
            m.logout()
        # ManageSieve would create the #sieve mailbox of a user who has
        # none (a change to replicate): look only where scripts exist,
        # under sievedir/uuid/<c>/<c>/<the INBOX's mailbox id>.
        mid = mid.decode()
        udir = os.path.join(self.settings["sievedir"], "uuid", mid[0],
                            mid[1], mid)
        st["sieve"] = self.sieve_scripts(user) if os.path.isdir(udir) \
            else {}
        return st

    def _sieve(self, user):
        """A ManageSieve session as admin for user: (socket, response)."""
        sk = socket.create_connection(("127.0.0.1", self.sieve_port), 10)
        f = sk.makefile("rb")

        def response():
            lines = []
            while True:
                line = f.readline()
                if not line:
                    raise AssertionError("sieve connection closed")
                m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
                if m:
                    line += f.read(int(m.group(1)))
                lines.append(line)
                if line[:2] in (b"OK", b"NO", b"BY"):
                    if not line.startswith(b"OK"):
                        raise AssertionError("sieve: %r" % lines)
                    return lines

        response()
        auth = base64.b64encode(user.encode() + b"\0admin\0" +
                                ADMIN_PASSWORD.encode())
        sk.sendall(b'AUTHENTICATE "PLAIN" "%s"\r\n' % auth)
        response()
        return sk, response

    def put_sieve(self, user, name, script):
        """PUTSCRIPT and SETACTIVE over ManageSieve (RFC 5804)."""
        sk, response = self._sieve(user)
        try:
            sk.sendall(b'PUTSCRIPT "%s" {%d+}\r\n' % (name.encode(),
                                                       len(script)) +
                       script + b"\r\n")
            response()
            sk.sendall(b'SETACTIVE "%s"\r\n' % name.encode())
            response()
            sk.sendall(b"LOGOUT\r\n")
        finally:
            sk.close()

    def sieve_scripts(self, user):
        """{name: (active, sha1 of the script)} over ManageSieve."""
        sk, response = self._sieve(user)
        out = {}
        try:
            sk.sendall(b"LISTSCRIPTS\r\n")
            for line in response()[:-1]:
                m = re.match(rb'"([^"]*)"( ACTIVE)?', line)
                if m:
                    out[m.group(1).decode()] = [bool(m.group(2)), None]
            for name in out:
                sk.sendall(b'GETSCRIPT "%s"\r\n' % name.encode())
                body = b"".join(response()[:-1])
                out[name][1] = hashlib.sha1(body).hexdigest()
            sk.sendall(b"LOGOUT\r\n")
        finally:
            sk.close()
        return {k: tuple(v) for k, v in out.items()}


# ---------------------------------------------------------------------------
# IMAP parsing


def _check(typ, data):
    if typ != "OK":
        raise AssertionError("IMAP %s %r" % (typ, data))
    return data


imap_ok = _check  # imap_ok(*m.store(...)): raise unless OK, return data


def _quote(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


_ATOM = re.compile(rb'\s*([^\s()"{}]+)')
_QUOTED = re.compile(rb'\s*"((?:[^"\\]|\\.)*)"')


def _parse_list(data):
    """LIST/LSUB responses -> [(flags, delimiter, name)]."""
    out = []
    i = 0
    while i < len(data):
        item = data[i]
        i += 1
        if item is None:
            continue
        if isinstance(item, tuple):
            head, name = item[0], item[1].decode("utf-8", "replace")
            if i < len(data) and isinstance(data[i], bytes) \
                    and not data[i].strip():
                i += 1
            line = head[:head.rfind(b"{")]
        else:
            line, name = item, None
        m = re.match(rb'\s*\(([^)]*)\)\s*(NIL|"(?:[^"\\]|\\.)")\s*', line)
        if not m:
            raise AssertionError("bad LIST line %r" % item)
        flags = tuple(sorted(m.group(1).decode().split()))
        delim = None if m.group(2) == b"NIL" else \
            m.group(2)[1:-1].replace(b"\\", b"").decode()
        if name is None:
            rest = line[m.end():]
            q = _QUOTED.match(rest)
            if q:
                name = re.sub(rb"\\(.)", rb"\1", q.group(1)).decode(
                    "utf-8", "replace")
            else:
                name = rest.strip().decode("utf-8", "replace")
        out.append((flags, delim, name))
    return out


def _status_items(data):
    for item in data:
        if isinstance(item, tuple):
            item = item[0] + b" " + b" ".join(
                x for x in item[1:] if isinstance(x, bytes))
        if item is None:
            continue
        start = item.rfind(b"(")
        toks = item[start + 1:item.rfind(b")")].split()
        return {toks[k].decode().upper(): int(toks[k + 1])
                for k in range(0, len(toks) - 1, 2)}
    return {}


def _fetch_records(data):
    """FETCH responses -> [(meta bytes without the body, body or None)]."""
    recs = []
    cur = None
    for item in data:
        if isinstance(item, tuple):
            if cur is not None:
                recs.append(cur)
            head = item[0]
            cur = [head[:head.rfind(b"{")], item[1]]
        elif isinstance(item, bytes):
            if cur is not None and not re.match(rb"\d+ \(", item):
                cur[0] += item
                recs.append(cur)
                cur = None
            else:
                if cur is not None:
                    recs.append(cur)
                    cur = None
                recs.append([item, None])
    if cur is not None:
        recs.append(cur)
    return recs


def _fetch_meta(meta):
    d = {}
    m = re.search(rb"\bUID (\d+)", meta)
    d["uid"] = int(m.group(1)) if m else None
    m = re.search(rb"\bFLAGS \(([^)]*)\)", meta)
    if m:
        d["flags"] = sorted(f for f in m.group(1).decode().split()
                            if f.lower() != "\\recent")
    m = re.search(rb"\bRFC822\.SIZE (\d+)", meta)
    if m:
        d["size"] = int(m.group(1))
    m = re.search(rb'\bINTERNALDATE "([^"]*)"', meta)
    if m:
        d["internaldate"] = m.group(1).decode()
    m = re.search(rb"\bMODSEQ \((\d+)\)", meta)
    if m:
        d["modseq"] = int(m.group(1))
    return d


def _metadata(m, name):
    """The mailbox's /shared and /private comment entries, as the server
    prints them."""
    typ, data = m._simple_command("GETMETADATA", _quote(name),
                                  "(/shared/comment /private/comment)")
    _check(typ, data)
    out = []
    for item in m.untagged_responses.pop("METADATA", []):
        if isinstance(item, tuple):
            item = b"".join(x for x in item if isinstance(x, bytes))
        if item:
            out.append(item.decode("utf-8", "replace"))
    return sorted(out)


def _state(m):
    condstore = "CONDSTORE" in m.capabilities
    mailboxes = {}
    for flags, delim, name in _parse_list(_check(*m.list('""', '"*"'))):
        box = {"list_flags": [f for f in flags
                              if f.lower() not in ("\\haschildren",
                                                   "\\hasnochildren")],
               "delimiter": delim}
        mailboxes[name] = box
        if any(f.lower() in ("\\noselect", "\\nonexistent") for f in flags):
            continue
        items = "MESSAGES UIDVALIDITY UIDNEXT"
        if condstore:
            items += " HIGHESTMODSEQ"
        st = _status_items(_check(*m.status(_quote(name), "(%s)" % items)))
        box.update({k.lower(): v for k, v in st.items()})
        box["metadata"] = _metadata(m, name)
        _check(*m.select(_quote(name), readonly=True))
        msgs = {}
        if st.get("MESSAGES"):
            what = "UID FLAGS RFC822.SIZE INTERNALDATE"
            if condstore:
                what += " MODSEQ"
            typ, data = m.uid("FETCH", "1:*", "(%s BODY.PEEK[])" % what)
            for meta, body in _fetch_records(_check(typ, data)):
                rec = _fetch_meta(meta)
                if rec["uid"] is None:
                    continue
                if body is not None:
                    rec["sha1"] = hashlib.sha1(body).hexdigest()
                msgs[rec.pop("uid")] = rec
        box["messages"] = msgs
    lsub = sorted(name for _, _, name in
                  _parse_list(_check(*m.lsub('""', '"*"'))))
    return {"mailboxes": mailboxes, "lsub": lsub}


# ---------------------------------------------------------------------------
# mail

_WORDS = ("replication relay mailbox message folder sync journal replica "
          "master protocol record flag modseq uid cyrus network latency "
          "batch commit apply shadow segment cursor retention the a of and "
          "to in is for on with that this it be as at by from").split()


def make_message(i, size=2048, to="alice@example.org",
                 sender="bob@example.org"):
    """A deterministic RFC 5322 text message number i, about size bytes,
    CRLF line ends."""
    day = 1 + i % 28
    hdr = ("Return-Path: <%s>\r\n"
           "Received: from client%d.example.org (client%d.example.org "
           "[192.0.2.%d])\r\n\tby mx.example.org with ESMTP id M%06d;\r\n"
           "\tMon, %d Jan 2024 10:%02d:%02d +0000\r\n"
           "From: Bob Example <%s>\r\n"
           "To: Alice Example <%s>\r\n"
           "Subject: Test message %d\r\n"
           "Date: Mon, %d Jan 2024 10:%02d:%02d +0000\r\n"
           "Message-ID: <msg-%d@example.org>\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n"
           "Content-Transfer-Encoding: 7bit\r\n"
           "\r\n") % (sender, i % 250, i % 250, 1 + i % 250, i, day,
                      (i // 60) % 60, i % 60, sender, to, i, day,
                      (i // 60) % 60, i % 60, i)
    body = []
    length = len(hdr)
    n = 0
    seed = i * 2654435761 + 1
    while length < size:
        words = []
        while sum(len(w) + 1 for w in words) < 66:
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            words.append(_WORDS[(seed >> 8) % len(_WORDS)])
        n += 1
        line = ("%d: " % n) + " ".join(words)
        if line.startswith("."):
            line = " " + line
        body.append(line + "\r\n")
        length += len(line) + 2
    return (hdr + "".join(body)).encode("ascii")
