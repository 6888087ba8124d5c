#!/usr/bin/env python3
"""test_package.py -- the Debian package, built and installed as an
operator would, replicates a real Cyrus master into a real replica.

The test builds the package with dpkg-buildpackage from a copy of the
source tree (files git knows of, so the checkout stays clean), runs
lintian on it (no errors allowed), and installs it with
"apt-get install ./syncrelay_*.deb" into a clean Debian 12 root: every
dependency must resolve from Debian's archive.  In that root it checks
the files the package promises (binaries, conffile, user, data directory,
unit), that "syncrelay -n" accepts the shipped configuration,
and then runs the installed daemon, as the unit runs it (its ExecStartPre
and ExecStart lines, as its User), between a real Cyrus 3.6.1 master and
replica on the host (cyrus.py); loopback is shared by the chroot.  A user
synced by the master must show the same on the replica, and bash
completes syncrelayctl's commands, stores and replicas.

The clean root: "debootstrap --variant=minbase bookworm" once, cached
outside the checkout in /var/cache/syncrelay-test/roots/bookworm-YYYYMM
(SYNCRELAY_TEST_CACHE moves it; a new month makes a fresh one), with the
apt lists fetched.  Each run mounts an overlay over it (a copy if overlay
cannot be mounted), so the cached root is never changed, and keeps the
.debs apt downloads in the cache too: a second run fetches nothing.  A
root that cannot be built fails the test, saying why.  Ports the test
chooses are below 32768.
"""
import glob
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import SRCDIR, check, eq, run, sasldb, test
from relaytest import converge, sync_user

CACHE = os.environ.get("SYNCRELAY_TEST_CACHE", "/var/cache/syncrelay-test")
MIRROR = os.environ.get("SYNCRELAY_DEBIAN_MIRROR",
                        "http://deb.debian.org/debian")
SUITE = "bookworm"
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")


def sh(argv, timeout=600, **kw):
    """Runs argv; returns CompletedProcess with text output."""
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, env=ENV, **kw)


def must(argv, what, timeout=600, **kw):
    r = sh(argv, timeout=timeout, **kw)
    check(r.returncode == 0, "%s failed (rc=%d): %s\n%s%s" % (
        what, r.returncode, " ".join(argv), r.stdout[-3000:],
        r.stderr[-3000:]))
    return r


def low_free_port():
    """A free TCP port on 127.0.0.1 below 32768 (outside the kernel's
    ephemeral range, which the helpers' free_port() draws from)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port below 32768")


# ---- the package ------------------------------------------------------------

def source_files(src):
    """The tree's files as git sees them (tracked and new, not ignored),
    or, outside a git checkout, everything but build directories."""
    r = sh(["git", "-C", src, "ls-files", "-z", "-co", "--exclude-standard"])
    if r.returncode == 0:
        return [f for f in r.stdout.split("\0")
                if f and os.path.lexists(os.path.join(src, f))]
    files = []
    for d, dirs, names in os.walk(src):
        rel = os.path.relpath(d, src)
        dirs[:] = [x for x in dirs if not x.startswith(("build", ".git"))]
        files += [os.path.normpath(os.path.join(rel, n)) for n in names]
    return files


def build_package(work):
    """dpkg-buildpackage -us -uc -b in a copy of SRCDIR; returns the .deb
    and .changes paths."""
    tree = os.path.join(work, "syncrelay")
    for f in source_files(SRCDIR):
        dst = os.path.join(tree, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(SRCDIR, f), dst, follow_symlinks=False)
    must(["dpkg-buildpackage", "-us", "-uc", "-b"], "the package build",
         timeout=900, cwd=tree)
    debs = glob.glob(os.path.join(work, "syncrelay_*.deb"))
    changes = glob.glob(os.path.join(work, "syncrelay_*.changes"))
    check(len(debs) == 1 and len(changes) == 1, os.listdir(work))
    return debs[0], changes[0]


# ---- the clean Debian 12 root -----------------------------------------------

def clean_root():
    """The cached minbase root, built now if missing."""
    roots = os.path.join(CACHE, "roots")
    root = os.path.join(roots, "%s-%s" % (SUITE, time.strftime("%Y%m")))
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    os.makedirs(roots, exist_ok=True)
    tmp = "%s.tmp-%d" % (root, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    check(shutil.which("debootstrap"),
          "debootstrap is not installed (scripts/deps installs it)")
    r = sh(["debootstrap", "--variant=minbase", SUITE, tmp, MIRROR],
           timeout=1200)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssertionError(
            "cannot build a clean %s root with debootstrap from %s "
            "(rc=%d); its last words:\n%s%s" % (
                SUITE, MIRROR, r.returncode, r.stdout[-2000:],
                r.stderr[-2000:]))
    security = MIRROR.replace("/debian", "/debian-security") \
        if MIRROR.endswith("/debian") else MIRROR
    with open(os.path.join(tmp, "etc/apt/sources.list"), "w") as f:
        f.write("deb %s %s main\n" % (MIRROR, SUITE))
        f.write("deb %s %s-updates main\n" % (MIRROR, SUITE))
        if security != MIRROR:
            f.write("deb %s %s-security main\n" % (security, SUITE))
    shutil.copy("/etc/resolv.conf", os.path.join(tmp, "etc/resolv.conf"))
    r = sh(["chroot", tmp, "apt-get", "update"], timeout=600)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssertionError("apt-get update in the new root failed:\n%s%s"
                             % (r.stdout[-2000:], r.stderr[-2000:]))
    open(os.path.join(tmp, ".complete"), "w").close()
    os.rename(tmp, root)
    # Older months' roots are of no more use.
    for old in glob.glob(os.path.join(roots, SUITE + "-*")):
        if old != root and ".tmp-" not in old:
            shutil.rmtree(old, ignore_errors=True)
    return root


class Chroot:
    """A writable view of the cached root (overlay, or a copy), with /proc
    and /dev bind-mounted and apt's archive cache kept in CACHE."""

    def __init__(self, base, work):
        self.work = work
        self.root = os.path.join(work, "root")
        self.mounts = []
        os.makedirs(self.root)
        upper, wdir = os.path.join(work, "upper"), os.path.join(work, "ovl")
        os.makedirs(upper)
        os.makedirs(wdir)
        r = sh(["mount", "-t", "overlay", "overlay", "-o",
                "lowerdir=%s,upperdir=%s,workdir=%s" % (base, upper, wdir),
                self.root])
        if r.returncode == 0:
            self.mounts.append(self.root)
        else:
            must(["cp", "-a", base + "/.", self.root], "copying the root")
        archives = os.path.join(CACHE, "apt-archives")
        os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
        try:
            for src, dst in (("/proc", "proc"), ("/dev", "dev"),
                             (archives, "var/cache/apt/archives")):
                dst = os.path.join(self.root, dst)
                must(["mount", "--bind", src, dst], "bind-mounting " + src)
                self.mounts.append(dst)
        except BaseException:
            self.close()
            raise

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def run(self, argv, what, timeout=600, user=None, ok=True):
        pre = ["chroot"]
        if user:
            pre.append("--userspec=%s" % user)
        r = sh(pre + [self.root] + argv, timeout=timeout)
        if ok:
            check(r.returncode == 0, "%s failed (rc=%d): %s\n%s%s" % (
                what, r.returncode, " ".join(argv), r.stdout[-3000:],
                r.stderr[-3000:]))
        return r

    def ids(self, name):
        """uid:gid of a user of the root."""
        with open(self.path("/etc/passwd")) as f:
            for line in f:
                p = line.split(":")
                if p[0] == name:
                    return int(p[2]), int(p[3])
        raise AssertionError("the root has no user %s" % name)

    def close(self):
        for m in reversed(self.mounts):
            sh(["umount", "-l", m])
        self.mounts = []


def unit_lines(text, key):
    return [line.split("=", 1)[1].split() for line in text.splitlines()
            if line.startswith(key + "=")]


# ---- the test ---------------------------------------------------------------

@test
def the_package_installs_and_replicates():
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="syncrelay-pkg-")
    chroot = log = master = replica = daemon = root = None
    try:
        deb, changes = build_package(os.path.join(work, "build"))
        t_build = time.time()
        r = sh(["lintian", "--no-tag-display-limit", changes], timeout=300)
        errors = [line for line in r.stdout.splitlines()
                  if line.startswith("E:")]
        check(not errors, "lintian errors:\n" + r.stdout)
        print("lintian: %s" % (r.stdout.strip().replace("\n", "; ") or
                               "clean"))

        base = clean_root()
        t_root = time.time()
        chroot = Chroot(base, os.path.join(work, "chroot"))
        shutil.copy(deb, chroot.path("/tmp"))
        chroot.run(["sh", "-c", "cd /tmp && apt-get install -y "
                    "--no-install-suggests ./syncrelay_*.deb"],
                   "apt-get install ./syncrelay_*.deb")
        t_install = time.time()

        # What the package promises.
        for p in ("/usr/sbin/syncrelay", "/usr/bin/syncrelayctl",
                  "/usr/bin/syncrelay-journal",
                  "/usr/share/man/man8/syncrelay.8.gz",
                  "/usr/share/man/man8/syncrelayctl.8.gz",
                  "/usr/share/man/man5/syncrelay.conf.5.gz",
                  "/usr/share/man/man1/syncrelay-journal.1.gz",
                  "/lib/systemd/system/syncrelay.service",
                  "/usr/share/bash-completion/completions/syncrelayctl"):
            check(os.path.exists(chroot.path(p)), "not installed: " + p)
        conffiles = chroot.run(["dpkg-query", "-W", "-f=${Conffiles}",
                                "syncrelay"], "dpkg-query").stdout
        check("/etc/syncrelay/syncrelay.conf" in conffiles, conffiles)
        uid, gid = chroot.ids("syncrelay")
        check(uid < 1000, "syncrelay is not a system user: uid %d" % uid)
        st = os.stat(chroot.path("/var/lib/syncrelay"))
        eq((st.st_uid, st.st_gid, st.st_mode & 0o777), (uid, gid, 0o750))
        r = chroot.run(["syncrelay", "-n"], "syncrelay -n (the default "
                       "configuration path)")
        eq(r.stdout.splitlines()[0],
           "/etc/syncrelay/syncrelay.conf: OK, 0 stores, 0 replicas")
        r = chroot.run(["syncrelayctl", "--help"], "syncrelayctl --help")
        check("journal" in r.stdout + r.stderr, r.stdout + r.stderr)

        # A real Cyrus replica and master on the host, the installed
        # relay between them, configured as an operator would: stores
        # added to the shipped file, a sasldb of its own.
        # (A directory of its own: Cyrus's user must reach it.)
        root = tempfile.mkdtemp(prefix="syncrelay-pkg-cyrus-")
        log = cyrus.Syslog(os.path.join(root, "syslog")).start()
        replica = cyrus.CyrusInstance(root, "replica", syslog=log,
                                      users=("alice",))
        replica.start()
        port, metrics_port = low_free_port(), low_free_port()
        db = chroot.path("/etc/syncrelay/sasldb2")
        sasldb(db, "repl", cyrus.REPL_PASSWORD, "relay-test")
        os.chown(db, 0, gid)
        os.chmod(db, 0o640)
        with open(chroot.path("/etc/syncrelay/syncrelay.conf"), "a") as f:
            f.write("\nservername: relay-test\n"
                    "listen: 127.0.0.1:%d\n"
                    "metrics_listen: 127.0.0.1:%d\n"
                    "allowplaintext: yes\n"
                    "sasl_sasldb_path: /etc/syncrelay/sasldb2\n"
                    "sasl_mech_list: PLAIN\n"
                    "replica_authname: repl\n"
                    "replica_password: %s\n"
                    "store.s1.identity: repl\n"
                    "store.s1.replica.r1: 127.0.0.1:%d\n" % (
                        port, metrics_port, cyrus.REPL_PASSWORD,
                        replica.sync_port))
        # The unit's lines, run as its User (what systemd would do; the
        # runtime directory is what its RuntimeDirectory= makes).
        with open(chroot.path("/lib/systemd/system/syncrelay.service")) as f:
            unit = f.read()
        check("User=syncrelay" in unit, unit)
        os.makedirs(chroot.path("/run/syncrelay"), exist_ok=True)
        os.chown(chroot.path("/run/syncrelay"), uid, gid)
        for pre in unit_lines(unit, "ExecStartPre"):
            r = chroot.run(pre, "ExecStartPre", user="%d:%d" % (uid, gid))
            check("OK, 1 stores, 1 replicas" in r.stdout, r.stdout)
        start = unit_lines(unit, "ExecStart")[0]
        check(os.path.exists(chroot.path(start[0])), start)
        daemon = subprocess.Popen(
            ["chroot", "--userspec=%d:%d" % (uid, gid), chroot.root] +
            start + ["-f"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=ENV)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                check(daemon.poll() is None and time.time() < deadline,
                      "the installed syncrelay did not start: %s" % (
                          daemon.stdout.read().decode()
                          if daemon.poll() is not None else "timeout"))
                time.sleep(0.2)

        master = cyrus.CyrusInstance(root, "master", syslog=log,
                                     extra=cyrus.replication_conf(port))
        master.start()
        master.create_user("alice")
        for i in range(12):
            master.deliver("alice", cyrus.make_message(i, 1500 + 900 * i))
        m = master.imap("alice")
        try:
            cyrus.imap_ok(*m.create("Work"))
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "2:5", "+FLAGS", r"(\Flagged)"))
            cyrus.imap_ok(*m.uid("STORE", "7", "+FLAGS", r"(\Deleted)"))
            cyrus.imap_ok(*m.expunge())
        finally:
            m.logout()
        master.append("alice", "Work", cyrus.make_message(100, 3000),
                      flags=r"(\Seen)")
        sync_user(master)
        r = chroot.run(["syncrelayctl", "wait", "s1", "--timeout", "90"],
                       "syncrelayctl wait (installed)", timeout=150)
        converge(master, replica, ["alice"])
        r = chroot.run(["syncrelayctl", "status", "s1"], "status")
        check("r1" in r.stdout and "streaming" in r.stdout, r.stdout)
        r = chroot.run(["syncrelayctl", "journal", "s1", "--all"],
                       "syncrelayctl journal", user="%d:%d" % (uid, gid))
        check("APPLY MAILBOX user.alice: " in r.stdout, r.stdout)
        check("---- cursor r1 = " in r.stdout, r.stdout)
        # Bash completion as an operator gets it (bash-completion
        # installed beside): commands, then stores and replicas from the
        # configuration.
        chroot.run(["apt-get", "install", "-y", "bash-completion"],
                   "apt-get install bash-completion")
        script = r"""
source /usr/share/bash-completion/bash_completion
t() {
	COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
	_completion_loader syncrelayctl
	fn=$(complete -p syncrelayctl | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
	"$fn" syncrelayctl "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
	echo "${COMPREPLY[*]}"
}
t syncrelayctl jo
t syncrelayctl pause ""
t syncrelayctl pause s1 ""
t syncrelayctl journal s1 --a
"""
        r = chroot.run(["bash", "-c", script], "bash completion")
        eq(r.stdout.splitlines(), ["journal", "s1", "r1", "--all"])
        print("syncrelayctl journal s1 --all (installed):\n" +
              "\n".join(r.stdout.splitlines()[:40]))
        print("package %.0f s, lintian+root %.0f s, install %.0f s, "
              "replication %.0f s" % (t_build - t0, t_root - t_build,
                                      t_install - t_root,
                                      time.time() - t_install))
    except BaseException:
        if log:
            log.flush()
            print("Cyrus's log:\n" + log.text()[-4000:])
        if daemon:
            daemon.terminate()
            print("the relay's output:\n" +
                  daemon.communicate(timeout=30)[0].decode()[-4000:])
        raise
    finally:
        if master:
            master.stop()
        if replica:
            replica.stop()
        if log:
            log.stop()
        if daemon and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        if chroot:
            chroot.close()
        shutil.rmtree(work, ignore_errors=True)
        if root:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run("test_package.py")
