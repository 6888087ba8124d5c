#!/usr/bin/env python3
"""test_cyrus_ingest.py -- a real Debian Cyrus 3.6.1 master replicates into
syncrelay: one-shot sync of a full user, the same sync again applying
nothing, and rolling replication, with no SYNCERROR or IOERROR on the
master and the relay's shadow matching what IMAP shows on the master.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import (Client, authed_client, check, eq, plain, read_reply,
                     run, test)
from relaytest import CyrusPath, populate, relay_lsn, stop_paths

env = {}


def setup():
    # Its replica's address is never answered: ingest alone.
    path = CyrusPath("syncrelay-cyrus-", nreplicas=0, relay=[("r1", 1)])
    env.update(root=path.root, syslog=path.log, relay=path.relay,
               master=path.master)
    return path.log, path.relay, path.master


def relay_get(relay, line):
    """A GET as the master would send it, on a session of our own."""
    c = authed_client(relay.port, "repl", cyrus.REPL_PASSWORD)
    c.send(line + "\r\n")
    lines = read_reply(c)
    c.cmd("EXIT\r\n")
    c.close()
    return lines


def shadow_state(relay, user):
    """The relay's shadow, read from its database (WAL allows readers):
    {internal name: (uidvalidity, last_uid, {uid: (flags, modseq, size)})}
    for the live records."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" %
                         os.path.join(relay.dir, "data/s1/shadow.db"),
                         uri=True, timeout=10)
    try:
        out = {}
        for uid_, name, uv, last in db.execute(
                "SELECT uniqueid, name, uidvalidity, last_uid FROM mailbox "
                "WHERE owner = ? AND mbtype IS NULL", (user,)):
            recs = {}
            for uid, flags, modseq, size, guid in db.execute(
                    "SELECT uid, flags, modseq, size, guid FROM record "
                    "WHERE uniqueid = ? AND expunged = 0", (uid_,)):
                recs[uid] = (sorted(f for f in flags.split() if f),
                             modseq, size, guid)
            if name.split("!")[-1].startswith("DELETED."):
                continue        # delayed deletes are not visible in IMAP
            out[name] = (uv, last, recs)
        return out
    finally:
        db.close()


def shadow_extras(relay, user):
    """Subscriptions, quota, a mailbox annotation, the #sieve mailbox."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" %
                         os.path.join(relay.dir, "data/s1/shadow.db"),
                         uri=True, timeout=10)
    try:
        subs = sorted(r[0] for r in db.execute(
            "SELECT mboxname FROM sub WHERE userid = ?", (user,)))
        quota = db.execute("SELECT COUNT(*) FROM quota WHERE root = ?",
                           ("user." + user,)).fetchone()[0] > 0
        row = db.execute(
            "SELECT value FROM mbannot JOIN mailbox USING (uniqueid) WHERE "
            "name = ? AND entry = '/comment'",
            ("user.%s.Projects" % user,)).fetchone()
        sieve = db.execute(
            "SELECT COUNT(*) FROM mailbox WHERE name = ? AND mbtype LIKE "
            "'%f%'", ("user.%s.#sieve" % user,)).fetchone()[0] > 0
        scratch = db.execute("SELECT COUNT(*) FROM mailbox WHERE name = ?",
                             ("user.%s.Scratch" % user,)).fetchone()[0] > 0
        return {"subs": subs, "quota": quota,
                "comment": row[0].decode() if row else None,
                "sieve": sieve, "scratch": scratch}
    finally:
        db.close()


def wait_for(cond, seconds, show):
    deadline = time.time() + seconds
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out; now %r" % (show(),))
        time.sleep(0.5)


def check_shadow(relay, master, user):
    """Per mailbox and live UID, what the shadow holds is what IMAP shows
    on the master: UIDVALIDITY, UIDNEXT, flags, modseq, size and GUID."""
    st = master.state(user)
    sh = shadow_state(relay, user)
    want = {}
    for name, mb in st["mailboxes"].items():
        internal = "user." + user + ("" if name == "INBOX" else
                                     "." + name.replace("/", "."))
        # A message's GUID is the SHA-1 of its bytes.
        msgs = {uid: (sorted(m["flags"]), m["modseq"], m["size"], m["sha1"])
                for uid, m in mb["messages"].items()}
        want[internal] = (mb["uidvalidity"], mb["uidnext"] - 1, msgs)
    if sh != want:
        diff = [k for k in set(sh) | set(want) if sh.get(k) != want.get(k)]
        raise AssertionError("shadow differs from the master in %s:\n"
                             "  shadow: %r\n  master: %r" %
                             (diff, {k: sh.get(k) for k in diff},
                              {k: want.get(k) for k in diff}))


@test
def one_shot_user_sync_then_nothing_to_do():
    log, relay, master = setup()
    populate(master, "alice", 490, big={7, 60, 250, 480})
    mark = log.mark()
    t0 = time.time()
    rc, out, err = master.sync_client(["-v", "-u", "alice"], timeout=120)
    took = time.time() - t0
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    log.flush()
    errors = log.errors(mark) + log.severe(mark)
    check(not errors, "\n".join(errors))
    lsn = relay_lsn(relay)
    check(lsn > 500, "journal LSN %d" % lsn)
    print("# one-shot sync of 500 messages (four over 1 MB) in %.2f s, "
          "journal at LSN %d" % (took, lsn))
    check_shadow(relay, master, "alice")
    # The same sync again finds an up-to-date replica: nothing applied.
    mark = log.mark()
    rc, out, err = master.sync_client(["-v", "-u", "alice"], timeout=120)
    check(rc == 0, "second sync rc=%r\n%s%s" % (rc, out, err))
    eq(relay_lsn(relay), lsn)
    log.flush()
    check(not log.errors(mark), log.errors(mark))


@test
def rolling_replication():
    log, relay, master = env["syslog"], env["relay"], env["master"]
    mark = log.mark()
    lsn0 = relay_lsn(relay)
    master.start_rolling()
    try:
        for i in range(5):
            master.deliver("alice", cyrus.make_message(2000 + i, 2500))
        m = master.imap("alice")
        try:
            m.select("INBOX")
            cyrus.imap_ok(*m.uid("STORE", "4", "+FLAGS", r"(\Answered)"))
            cyrus.imap_ok(*m.uid("STORE", "5:6", "+FLAGS", r"(\Seen)"))
            cyrus.imap_ok(*m.uid("STORE", "8", "+FLAGS", r"(\Deleted)"))
            cyrus.imap_ok(*m.expunge())
            cyrus.imap_ok(*m.rename("Sent", "Archive"))
            cyrus.imap_ok(*m.create("Projects"))
            cyrus.imap_ok(*m.create("Scratch"))
            cyrus.imap_ok(*m.delete("Scratch"))
            cyrus.imap_ok(*m.subscribe("Projects"))
            cyrus.imap_ok(*m._simple_command(
                "SETMETADATA", "Projects",
                '(/shared/comment "current work")'))
        finally:
            m.logout()
        a = master.imap()
        try:
            cyrus.imap_ok(*a.setquota(master.mailbox_name("alice"),
                                      "(STORAGE 900000)"))
        finally:
            a.logout()
        master.put_sieve("alice", "vacation", b'require "fileinto";\r\n'
                  b'if header :contains "subject" "x" { fileinto "Work"; }'
                  b'\r\n')
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                check_shadow(relay, master, "alice")
                break
            except AssertionError:
                time.sleep(0.5)
        check_shadow(relay, master, "alice")
        check(relay_lsn(relay) > lsn0)
        wait_for(lambda: shadow_extras(relay, "alice") == {
            "subs": ["user.alice.Projects", "user.alice.Work"],
            "quota": True, "comment": "current work", "sieve": True,
            "scratch": False}, 30, lambda: shadow_extras(relay, "alice"))
    finally:
        rc = master.stop_rolling()
    log.flush()
    errors = log.errors(mark) + log.severe(mark)
    check(not errors, "\n".join(errors))


@test
def other_sync_modes():
    log, relay, master = env["syslog"], env["relay"], env["master"]
    master.create_user("bob")
    for i in range(3):
        master.deliver("bob", cyrus.make_message(3000 + i, 2000))
    mark = log.mark()
    rc, out, err = master.sync_client(["-A"], timeout=120)
    check(rc == 0, "sync_client -A rc=%r\n%s%s" % (rc, out, err))
    check_shadow(relay, master, "bob")
    check_shadow(relay, master, "alice")
    master.deliver("bob", cyrus.make_message(3010, 2000))
    rc, out, err = master.sync_client(["-m", master.mailbox_name("bob")],
                                      timeout=120)
    check(rc == 0, "sync_client -m rc=%r\n%s%s" % (rc, out, err))
    check_shadow(relay, master, "bob")
    rc, out, err = master.sync_client(["-s", "bob"], timeout=120)
    check(rc == 0, "sync_client -s rc=%r\n%s%s" % (rc, out, err))
    log.flush()
    errors = log.errors(mark) + log.severe(mark)
    check(not errors, "\n".join(errors))


def wait_converged(relay, master, user, seconds):
    deadline = time.time() + seconds
    while True:
        try:
            check_shadow(relay, master, user)
            return
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


@test
def crash_in_the_middle():
    """SIGKILL the relay during rolling replication; start it again and
    restart the master's rolling sync_client, as cyrus.conf's DAEMON
    section would; nothing the master was told OK for may be missing."""
    log, relay, master = env["syslog"], env["relay"], env["master"]
    master.start_rolling()
    try:
        for i in range(60):
            master.deliver("alice", cyrus.make_message(4000 + i, 3000))
            if i == 30:
                relay.signal(__import__("signal").SIGKILL)
                relay.proc.wait(10)
                relay.start()
            if master.rolling.poll() is not None:
                master.stop_rolling()
                master.start_rolling()
            time.sleep(0.02)
        if master.rolling.poll() is not None:
            master.stop_rolling()
            master.start_rolling()
        wait_converged(relay, master, "alice", 60)
    finally:
        master.stop_rolling()
    # Nothing left to do afterwards.
    lsn = relay_lsn(relay)
    rc, out, err = master.sync_client(["-u", "alice"], timeout=120)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    eq(relay_lsn(relay), lsn)


@test
def one_shot_sync_with_compression():
    """With compress: yes the relay offers COMPRESS DEFLATE, which a 3.6
    sync_client always takes; replication works the same."""
    log, relay, master = env["syslog"], env["relay"], env["master"]
    relay.stop()
    with open(relay.conf, "a") as f:
        f.write("compress: yes\n")
    relay.start()
    master.create_user("carol")
    for i in range(40):
        master.deliver("carol", cyrus.make_message(5000 + i, 5000 + 997 * i))
    mark = log.mark()
    rc, out, err = master.sync_client(["-u", "carol"], timeout=120)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    check("event=compress_on" in relay.logtext())
    check_shadow(relay, master, "carol")
    log.flush()
    check(not log.errors(mark), log.errors(mark))


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 (the CA is itself)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    os.chmod(cert, 0o644)
    return cert, key


@test
def tls_required():
    """With tls_required no authentication is offered before STARTTLS;
    a real sync_client then uses STARTTLS and replicates."""
    import ssl
    log, relay, master = env["syslog"], env["relay"], env["master"]
    cert, key = make_cert(env["root"])
    relay.stop()
    with open(relay.conf) as f:
        conf = f.read().replace("allowplaintext: yes\n",
                                "allowplaintext: no\n")
    with open(relay.conf, "w") as f:
        f.write(conf + "tls_server_cert: %s\ntls_server_key: %s\n"
                "tls_required: yes\n" % (cert, key))
    relay.start()
    c = Client(relay.port)
    banner = c.banner()
    check(not any(l.startswith("* SASL") for l in banner), banner)
    check("* STARTTLS" in banner, banner)
    auth = plain("repl", cyrus.REPL_PASSWORD)
    eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % auth),
       "NO TLS is required before authentication (use STARTTLS)")
    eq(c.cmd("STARTTLS x\r\n"), "BAD Unexpected extra arguments to Starttls")
    eq(c.cmd("STARTTLS\r\n"), "OK Begin TLS negotiation now")
    ctx = ssl.create_default_context(cafile=cert)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    banner = c.banner()
    eq(banner[0], "* SASL PLAIN")
    check("* STARTTLS" not in banner and "* COMPRESS DEFLATE" not in banner,
          banner)
    eq(c.cmd("STARTTLS\r\n"), "BAD Already did a successful Starttls")
    eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % auth),
       "OK Success (no protection)")
    eq(c.cmd("NOOP\r\n"), "OK Noop completed")
    c.cmd("EXIT\r\n")
    c.close()
    relay.wait_log("event=disconnect store=s1")
    # The real thing: the master trusts our certificate's CA.
    master.settings["tls_client_ca_file"] = cert
    master.write_conf()
    master.create_user("dave")
    for i in range(5):
        master.deliver("dave", cyrus.make_message(6000 + i, 3000))
    mark = log.mark()
    rc, out, err = master.sync_client(["-u", "dave"], timeout=120)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    check_shadow(relay, master, "dave")
    check("event=starttls" in relay.logtext())
    log.flush()
    check(not log.errors(mark), log.errors(mark))


if __name__ == "__main__":
    run("test_cyrus_ingest", stop_paths)
