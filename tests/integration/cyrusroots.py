"""cyrusroots.py -- where the Cyrus of each version the tests run comes
from: 3.6 is the host's Debian 12 Cyrus (3.6.1); 3.10 and 3.12 are
Debian trixie's (3.10.2) and sid's (3.12.4), each in a root built with

    debootstrap --variant=minbase --include=cyrus-imapd,cyrus-replication,
        cyrus-clients,sasl2-bin,libsasl2-modules,msmtp-mta SUITE DIR

(msmtp-mta because cyrus-common wants a mail transport agent) and run
with chroot(2) by cyrus.py's launcher.  Roots are cached outside the
checkout, in $SYNCRELAY_TEST_CACHE (default /var/cache/syncrelay-test)
/roots/cyrus-SUITE-VERSION, VERSION being the cyrus-imapd package's, so
a second run builds nothing; SYNCRELAY_DEBIAN_MIRROR names another
mirror.  A root is built once, into a temporary directory renamed into
place when complete, under a lock (two test programs at once build it
once).  A root that cannot be built, or whose Cyrus is not of the
line asked for (3.12.5 will do for "3.12" the day sid moves on; 3.14
will not), raises RootError saying why: a test failure, never a skip.  The cached root is never written to by the tests except for the
empty directories the launcher mounts the instances' directories on.
"""
import fcntl
import glob
import os
import shutil
import subprocess
import time

CACHE = os.environ.get("SYNCRELAY_TEST_CACHE", "/var/cache/syncrelay-test")
MIRROR = os.environ.get("SYNCRELAY_DEBIAN_MIRROR",
                        "http://deb.debian.org/debian")
PACKAGES = ("cyrus-imapd,cyrus-replication,cyrus-clients,sasl2-bin,"
            "libsasl2-modules,msmtp-mta")

# version the tests name -> (Debian suite or None for the host, the
# cyrus-imapd version docs/compatibility.md reports tested)
VERSIONS = {
    "3.6": (None, "3.6.1"),
    "3.10": ("trixie", "3.10.2"),
    "3.12": ("sid", "3.12.4"),
}
ALL = ("3.6", "3.10", "3.12")


class RootError(RuntimeError):
    pass


def _pkg_version(root):
    """The cyrus-imapd package version installed in root ("" if none)."""
    status = os.path.join(root, "var/lib/dpkg/status")
    try:
        with open(status, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    for para in text.split("\n\n"):
        if "\nPackage: cyrus-imapd\n" in "\n" + para + "\n" and \
                "Status: install ok installed" in para:
            for line in para.splitlines():
                if line.startswith("Version: "):
                    return line[len("Version: "):].strip()
    return ""


def upstream(pkgver):
    """3.12.4 of 3.12.4-1 (or of 1:3.12.4-1+b2)."""
    return pkgver.split(":", 1)[-1].split("-", 1)[0]


def _cached(suite):
    roots = sorted(glob.glob(os.path.join(CACHE, "roots",
                                          "cyrus-%s-*" % suite)))
    return [r for r in roots if os.path.exists(os.path.join(r, ".complete"))]


def root(version):
    """The root to chroot into for version ("3.10", "3.12"), built now if
    there is none cached; None for the host's Cyrus ("3.6")."""
    if version not in VERSIONS:
        raise RootError("no Cyrus %r: the tests know %s" % (
            version, ", ".join(ALL)))
    suite, want = VERSIONS[version]
    if suite is None:
        return None
    roots = os.path.join(CACHE, "roots")
    os.makedirs(roots, exist_ok=True)
    with open(os.path.join(roots, ".cyrus-%s.lock" % suite), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = _cached(suite)
        if not have:
            have = [_build(suite, roots)]
    path = have[-1]
    got = upstream(_pkg_version(path))
    if not got.startswith(version + "."):
        raise RootError(
            "the cached %s root %s holds cyrus-imapd %s, not %s.x (%s "
            "tested; Debian %s moved on?): update cyrusroots.VERSIONS, or "
            "remove the root" % (suite, path, got or "(none)", version,
                                 want, suite))
    return path


def _build(suite, roots):
    if not shutil.which("debootstrap"):
        raise RootError("cannot build the Cyrus root for Debian %s: "
                        "debootstrap is not installed (scripts/deps "
                        "installs it)" % suite)
    tmp = os.path.join(roots, "tmp-cyrus-%s-%d" % (suite, os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.time()
    argv = ["debootstrap", "--variant=minbase", "--include=" + PACKAGES,
            suite, tmp, MIRROR]
    r = subprocess.run(argv, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=1800)
    if r.returncode != 0:
        out = r.stdout.decode("utf-8", "replace")[-3000:]
        log = os.path.join(tmp, "debootstrap/debootstrap.log")
        try:
            with open(log, errors="replace") as f:
                out += "\n" + f.read()[-3000:]
        except OSError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
        raise RootError("cannot build the Cyrus root for Debian %s: %s "
                        "exited %d (is %s reachable?):\n%s" % (
                            suite, " ".join(argv), r.returncode, MIRROR,
                            out))
    pkgver = _pkg_version(tmp)
    if not pkgver or not os.path.exists(
            os.path.join(tmp, "usr/lib/cyrus/bin/master")):
        shutil.rmtree(tmp, ignore_errors=True)
        raise RootError("debootstrap built a %s root without Cyrus "
                        "(cyrus-imapd not installed)" % suite)
    # What the tests never need, to keep the cache small.
    shutil.rmtree(os.path.join(tmp, "var/cache/apt/archives"),
                  ignore_errors=True)
    os.makedirs(os.path.join(tmp, "var/cache/apt/archives/partial"),
                exist_ok=True)
    with open(os.path.join(tmp, ".complete"), "w") as f:
        f.write("%s %s built in %.0f s\n" % (suite, pkgver,
                                             time.time() - started))
    final = os.path.join(roots, "cyrus-%s-%s" % (suite, pkgver.replace(
        ":", "_")))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return final


def ids(rootdir):
    """(uid, gid) of user cyrus and group mail in rootdir (None: the
    host's), as Cyrus running there will see them."""
    if rootdir is None:
        import grp
        import pwd
        return pwd.getpwnam("cyrus").pw_uid, grp.getgrnam("mail").gr_gid
    uid = gid = None
    with open(os.path.join(rootdir, "etc/passwd")) as f:
        for line in f:
            p = line.split(":")
            if p[0] == "cyrus":
                uid = int(p[2])
    with open(os.path.join(rootdir, "etc/group")) as f:
        for line in f:
            p = line.split(":")
            if p[0] == "mail":
                gid = int(p[2])
    if uid is None or gid is None:
        raise RootError("%s has no user cyrus or group mail" % rootdir)
    return uid, gid


def versions_from_env(default):
    """CYRUS_VERSIONS="3.6,3.12" (or "all") overrides default."""
    v = os.environ.get("CYRUS_VERSIONS", "")
    if not v:
        return tuple(default)
    if v == "all":
        return ALL
    return tuple(x.strip() for x in v.split(",") if x.strip())
