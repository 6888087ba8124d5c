"""audittest.py -- what test_audit.py and test_seed.py share: waiting
for a condition, syncrelayctl audit and its exit status, one replica's
status, a shared mailbox made on the master and read back over IMAP, a
replica destroyed and re-created empty, and the checks that a replica
refilled by the relay shows exactly what the master shows."""
import shutil
import time

import cyrus
from harness import check, eq
from relaytest import identical, populate, sync_user, wait_caught_up

# Small journal segments, retention at once: the early bodies go soon.
SMALL = ("journal_segment_bytes: 64K\n"
         "retention_interval: 1s\n"
         "retention_min_age: 0\n")


def until(cond, what, timeout=60.0):
    """cond()'s first true value within timeout seconds, else fails."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("never: " + what)


def past_retention(path, users):
    """Each user populated and sent 8 messages of 30 KB through the
    relay, until retention (SMALL) dropped all but the newest journal
    segment: the first messages' bodies are no longer in the journal."""
    relay, master = path.relay, path.master
    for u in users:
        populate(master, u, 6, big={2})
        for i in range(8):
            master.deliver(u, cyrus.make_message(300 + i, 30000))
        sync_user(master, u)
    wait_caught_up(relay)
    until(lambda: relay.status()["stores"][0]["journal_segments"] == 1,
          "retention dropped all but the newest segment", 60)


def rc(r, want, more=""):
    """r (a finished syncrelayctl) exited want."""
    check(r.returncode == want, "exit %d, want %d\n%s%s\n%s" % (
        r.returncode, want, r.stdout, r.stderr, more))


def audit(relay, *args):
    """syncrelayctl audit s1 args (finished)."""
    return relay.ctl("audit", "s1", *args, timeout=200)


def link(relay, name):
    """Replica name's entry in the status of store s1."""
    for r in relay.status()["stores"][0]["replicas"]:
        if r["name"] == name:
            return r
    raise AssertionError("no replica %s" % name)


def make_mailbox(inst, name, n, first=5, size=500):
    """A mailbox no user owns, made over IMAP on inst by its admin (all
    rights to admin), with n messages numbered from first."""
    c = inst.imap()
    try:
        eq(c.create(name)[0], "OK")
        eq(c.setacl(name, "admin", "lrswipkxtecda")[0], "OK")
        for i in range(n):
            eq(c.append(name, None, None,
                        cyrus.make_message(first + i, size))[0], "OK")
    finally:
        c.logout()


def make_shared(master, relay, n=3):
    """A mailbox no user owns (an admin's folder shared/x, under the
    intermediate shared Cyrus makes) with n messages, replicated through
    the relay (sync_client -m); returns its IMAP name."""
    name = "shared%sx" % master.separator()
    make_mailbox(master, name, n)
    parent = name.split(master.separator())[0]
    rcode, out, err = master.sync_client(["-m", parent, name], timeout=120)
    check(rcode == 0, "sync_client -m %s: %r\n%s%s" % (name, rcode, out,
                                                        err))
    r = relay.ctl("wait", "s1", "--timeout", "90", timeout=120)
    rc(r, 0, relay.logtext()[-3000:])
    return name


def shared_state(inst, name):
    """What a user (alice, whom its ACL lets read) sees of the shared
    mailbox over IMAP (None: none)."""
    return inst.state("alice")["mailboxes"].get("Shared Folders%s%s" % (
        inst.separator(), name))


def recreate_empty(path, users):
    """path's first replica's disk replaced: its Cyrus destroyed and
    re-created empty on the same ports (started); returns it."""
    old = path.replica
    old.stop()
    shutil.rmtree(old.dir)
    new = cyrus.CyrusInstance(
        path.root, old.name, imap_port=old.imap_port,
        lmtp_port=old.lmtp_port, sync_port=old.sync_port,
        sieve_port=old.sieve_port, syslog=path.log, users=users)
    path.replicas[0] = new
    new.start()
    return new


def refilled(relay, master, new, users, shared, since, reason):
    """Right after wait said caught up (no converging): new shows what
    the master shows, for users and the shared mailbox, and the relay's
    log since then has the check (its reason) and no failed link."""
    for u in users:
        eq(new.state(u), master.state(u))
    eq(shared_state(new, shared), shared_state(master, shared))
    identical(master, new, users)
    text = relay.logtext()[since:]
    check(reason in text and "event=check_start" in text and
          "event=check_done result=ok" in text, text[-4000:])
    check("event=link_failed" not in text, text[-3000:])
    rc(audit(relay), 0)
