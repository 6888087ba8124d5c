#!/usr/bin/env python3
"""test_ingest.py -- a master's session into syncrelay: SASL login that
selects the store, and the recorded sessions of a real Cyrus master
replayed byte for byte, every reply compared with what the real 3.6.1
replica answered in the recording.
"""
import os
import re
import signal
import subprocess

from harness import (SRCDIR, Client, authed_client, check, eq, plain,
                     read_reply, relay_lsn, run, sasl_relay, sasldb, test)

TRACES = os.path.join(SRCDIR, "tests/fixtures/traces")
# The recordings log in as repl / replpw (AUTHENTICATE PLAIN AHJlcGwA...).
STORE_CONF = ("store.lab.identity: repl\n"
              "store.lab.replica.r1: 127.0.0.1:1\n"
              "store.other.identity: other\n"
              "store.other.replica.r1: 127.0.0.1:2\n")


def relay_with_users(extra=""):
    return sasl_relay({"repl": "replpw", "stranger": "pw",
                       "other": "otherpw"}, STORE_CONF + extra)


@test
def login_selects_the_store():
    relay = relay_with_users()
    try:
        c = Client(relay.port)
        banner = c.banner()
        eq(banner[0], "* SASL PLAIN")
        eq(c.cmd("GET USER tracy\r\n"), "NO Please authenticate first")
        eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "wrong")),
           "NO authentication failure")
        eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("stranger", "pw")),
           "NO authentication failure (no store is configured for this "
           "identity)")
        eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "replpw")),
           "OK Success (no protection)")
        eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "replpw")),
           "BAD Already authenticated")
        # Several master sessions of one store, as a real sync_server
        # serves them (issue 13); another store is independent.
        d = Client(relay.port)
        d.banner()
        e = authed_client(relay.port, "other", "otherpw")
        eq(d.cmd("AUTHENTICATE PLAIN\r\n"), "+ ")
        eq(d.cmd("*\r\n"), "BAD Client canceled authentication")
        # The initial response may also come after a "+ " challenge.
        eq(d.cmd("AUTHENTICATE PLAIN\r\n"), "+ ")
        eq(d.cmd(plain("repl", "replpw") + "\r\n"),
           "OK Success (no protection)")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        eq(d.cmd("NOOP\r\n"), "OK Noop completed")
        relay.wait_log("event=concurrent_session sessions=2")
        c.close()
        relay.wait_log("event=disconnect store=lab")
        eq(d.cmd("NOOP\r\n"), "OK Noop completed")
        e.close()
        log = relay.logtext()
        check("event=login user=repl store=lab" in log, log)
        check("event=auth_refused user=stranger" in log, log)
    finally:
        relay.stop()




def recorded(name):
    with open(os.path.join(TRACES, name, "conn1.c2s"), "rb") as f:
        c2s = f.read()
    with open(os.path.join(TRACES, name, "conn1.s2c"), "rb") as f:
        s2c = f.read().decode("utf-8", "replace").split("\r\n")
    # Skip the banner up to "* OK".
    while not s2c[0].startswith("* OK"):
        s2c.pop(0)
    s2c.pop(0)
    return c2s, s2c


def split_commands(c2s):
    """Cut a command stream into commands (a body literal stays inside)."""
    out, i = [], 0
    while i < len(c2s):
        j = c2s.index(b"\r\n", i) + 2
        line = c2s[i:j]
        while True:
            m = re.search(rb"%\{\S+ [0-9a-f]{40} (\d+)\}\r\n$", line)
            if not m:
                break
            n = int(m.group(1))
            body_end = j + n
            j = c2s.index(b"\r\n", body_end) + 2
            line = c2s[i:j]
        out.append(line)
        i = j
    return out


@test
def recorded_sessions_get_the_real_replicas_replies():
    relay = relay_with_users()
    compared = 0
    try:
        for name in ["a-oneshot-new-user", "a2-oneshot-new-user-nocompress",
                     "b0-setup-folders", "b-rolling-stepwise"]:
            c2s, s2c = recorded(name)
            c = Client(relay.port)
            c.banner()
            replies = s2c
            for cmd in split_commands(c2s):
                want = []
                while True:
                    l = replies.pop(0)
                    want.append(l)
                    if not l.startswith("* "):
                        break
                verb = cmd.split(b" ", 1)[0].strip()
                c.send(cmd)
                got = read_reply(c)
                if verb in (b"COMPRESS",):
                    continue        # not offered by the relay
                if verb == b"EXIT":
                    eq(got, want)
                    break
                if got != want:
                    raise AssertionError(
                        "%s: %s\n  relay:   %r\n  replica: %r" %
                        (name, cmd[:120], got, want))
                compared += 1
            c.close()
            relay.wait_log("event=disconnect store=lab commands=")
        check(compared > 30, compared)
        print("# %d replies identical to the real replica's" % compared)
    finally:
        relay.stop()


@test
def durable_across_restart():
    relay = relay_with_users()
    try:
        c2s, s2c = recorded("a-oneshot-new-user")
        c = Client(relay.port)
        c.banner()
        for cmd in split_commands(c2s):
            c.send(cmd)
            read_reply(c)
        relay.signal(signal.SIGKILL)
        relay.proc.wait(10)
        relay.start()
        c = Client(relay.port)
        c.banner()
        c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "replpw"))
        c.send("GET MAILBOXES (user.tracy)\r\n")
        got = read_reply(c)
        eq(len(got), 2)
        check("MBOXNAME user.tracy" in got[0] and "LAST_UID 3" in got[0], got)
        eq(got[1], "OK success")
    finally:
        relay.stop()


MAILBOX = ("APPLY MAILBOX %%(UNIQUEID bad1 MBOXNAME user.eve SYNC_CRC 0 "
           "LAST_UID 1 HIGHESTMODSEQ 3 RECENTUID 0 RECENTTIME 0 "
           "LAST_APPENDDATE 0 POP3_LAST_LOGIN 0 UIDVALIDITY 77 PARTITION "
           "default ACL \"eve\tlrswipkxtecdan\t\" OPTIONS P RECORD (%%(UID 1 "
           "MODSEQ 3 LAST_UPDATED 1 FLAGS () INTERNALDATE 1 SIZE %d GUID "
           "%s)))\r\n")


@test
def bad_input_is_refused_and_nothing_is_kept():
    import hashlib
    relay = relay_with_users()
    try:
        c = authed_client(relay.port, "repl", "replpw")
        body = b"From: eve@example.org\r\nSubject: x\r\n\r\nhello\r\n"
        guid = hashlib.sha1(body).hexdigest()
        wrong = hashlib.sha1(b"something else").hexdigest()
        lsn = relay_lsn(relay, "lab")
        # A body whose bytes do not match its GUID.
        c.send(b"APPLY MESSAGE (%%{default %s %d}\r\n" % (wrong.encode(),
                                                         len(body)) +
               body + b")\r\n")
        eq(c.line(), "NO IMAP_PROTOCOL_ERROR a message body did not match "
           "its GUID")
        # A record whose body was never uploaded: NO, never a crash.
        c.send(MAILBOX % (len(body), guid))
        eq(c.line(), "NO IMAP_PROTOCOL_ERROR Protocol error")
        c.send("GET MAILBOXES (user.eve)\r\n")
        eq(c.line(), "OK success")          # nothing was created
        eq(relay_lsn(relay, "lab"), lsn)    # nothing was journaled
        # An oversize literal, nesting too deep, junk: BAD, and the
        # session goes on.
        c.send(b"APPLY SIEVE %(USERID eve FILENAME x.script CONTENT {200000+}"
               b"\r\n" + b"x" * 200000 + b")\r\n")
        eq(c.line(), "BAD IMAP_PROTOCOL_ERROR Failed to parse APPLY line")
        c.send("GET MAILBOXES " + "(" * 40 + ")" * 40 + "\r\n")
        eq(c.line(), "BAD IMAP_PROTOCOL_ERROR Failed to parse GET line")
        c.send("APPLY FROB %(X 1)\r\n")
        eq(c.line(), "NO IMAP_PROTOCOL_ERROR Protocol error")
        c.send("APPLY MAILBOX (1 2)\r\n")
        eq(c.line(), "NO IMAP_PROTOCOL_BAD_PARAMETERS")
        eq(relay_lsn(relay, "lab"), lsn)
        # Now upload it properly: the same APPLY MAILBOX is accepted,
        # from any partition name the master uses.
        c.send(b"APPLY MESSAGE (%%{p2 %s %d}\r\n" % (guid.encode(),
                                                    len(body)) + body +
               b")\r\n")
        eq(c.line(), "OK success")
        c.send(MAILBOX % (len(body), guid))
        eq(c.line(), "OK success")
        check(relay_lsn(relay, "lab") == lsn + 2, relay_lsn(relay, "lab"))
        c.send(b"APPLY RESERVE %%(PARTITION default MBOXNAME (user.eve) GUID "
               b"(%s %s))\r\n" % (guid.encode(), wrong.encode()))
        eq(c.line(), "* MISSING (%s)" % wrong)
        eq(c.line(), "OK success")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        # Commands that finish at once, pipelined: one reply each.
        c.send("APPLY MESSAGE ()\r\nNOOP\r\nAPPLY MESSAGE ()\r\nNOOP\r\n")
        eq([c.line() for _ in range(4)], ["OK success", "OK Noop completed",
                                          "OK success", "OK Noop completed"])
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        log = relay.logtext()
        check("event=body_refused" in log and "does not match" in log, log)
        check("never uploaded" in log, log)
        check("Literal" in log or "literal of 200000 bytes" in log, log)
    finally:
        relay.stop()


@test
def compress_deflate():
    import zlib
    relay = relay_with_users()
    try:
        c = authed_client(relay.port, "repl", "replpw")
        eq(c.cmd("COMPRESS DEFLATE\r\n"), "NO Compression is not enabled")
        relay.stop()
        with open(relay.conf, "a") as f:
            f.write("compress: yes\n")
        relay.start()
        c = Client(relay.port)
        banner = c.banner()
        check("* COMPRESS DEFLATE" in banner, banner)
        eq(c.cmd("COMPRESS\r\n"), "BAD Missing required argument to Compress")
        eq(c.cmd("COMPRESS LZMA\r\n"),
           "NO Unknown compression algorithm: LZMA")
        eq(c.cmd("COMPRESS DEFLATE\r\n"), "OK DEFLATE active")
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        decomp = zlib.decompressobj(-15)

        def zcmd(text):
            c.sock.sendall(comp.compress(text.encode()) +
                           comp.flush(zlib.Z_SYNC_FLUSH))
            out = b""
            while not out.endswith(b"\r\n"):
                out += decomp.decompress(c.sock.recv(65536))
            return out.decode()

        eq(zcmd("NOOP\r\n"), "OK Noop completed\r\n")
        eq(zcmd("AUTHENTICATE PLAIN %s\r\n" % plain("repl", "replpw")),
           "OK Success (no protection)\r\n")
        eq(zcmd("COMPRESS DEFLATE\r\n"),
           "NO Compression already active: DEFLATE\r\n")
        eq(zcmd("GET MAILBOXES (user.nobody)\r\n"), "OK success\r\n")
        check("event=compress_on" in relay.logtext())
    finally:
        relay.stop()


@test
def get_fetch_streams_the_body_back():
    import hashlib
    import random
    relay = relay_with_users()
    try:
        c = authed_client(relay.port, "repl", "replpw")
        rnd = random.Random(7)
        body = (b"From: f@example.org\r\nSubject: big\r\n\r\n" +
                bytes(rnd.getrandbits(8) for _ in range(3 * 1024 * 1024)))
        guid = hashlib.sha1(body).hexdigest()
        c.send(b"APPLY MESSAGE (%%{default %s %d}\r\n" % (guid.encode(),
                                                          len(body)) +
               body + b")\r\n")
        eq(c.line(), "OK success")
        c.send(MAILBOX.replace("bad1", "fbox").replace("user.eve", "user.fay")
               % (len(body), guid))
        eq(c.line(), "OK success")
        c.send("GET FETCH %%(MBOXNAME user.fay PARTITION default UNIQUEID fbox "
               "GUID %s UID 1)\r\n" % guid)
        eq(c.line(), "* MESSAGE %%{default %s %d}" % (guid, len(body)))
        while len(c.buf) < len(body) + 2:
            chunk = c.sock.recv(1 << 20)
            check(chunk, "connection closed during the body")
            c.buf += chunk
        got, c.buf = c.buf[:len(body)], c.buf[len(body):]
        check(got == body, "the body came back different")
        eq(c.line(), "")                 # the CRLF after the literal
        eq(c.line(), "OK success")
        # By uniqueid even when the name is wrong, as Cyrus does.
        c.send("GET FETCH %%(MBOXNAME user.wrong PARTITION default UNIQUEID "
               "fbox GUID %s UID 1)\r\n" % guid)
        check(c.line().startswith("* MESSAGE"))
        while len(c.buf) < len(body) + 2:
            c.buf += c.sock.recv(1 << 20)
        c.buf = c.buf[len(body):]
        eq(c.line(), "")
        eq(c.line(), "OK success")
        c.send("GET FETCH %%(MBOXNAME user.fay PARTITION default UNIQUEID fbox "
               "GUID %s UID 2)\r\n" % guid)
        eq(c.line(), "NO IMAP_MAILBOX_NONEXISTENT No Such Mailbox")
        c.send("GET FETCH %(MBOXNAME user.fay)\r\n")
        eq(c.line(), "NO IMAP_PROTOCOL_BAD_PARAMETERS")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
    finally:
        relay.stop()


@test
def sighup_adds_stores_and_identities():
    relay = relay_with_users()
    try:
        db = os.path.join(relay.dir, "sasldb2")
        sasldb(db, "late", "latepw")
        c = Client(relay.port)
        c.banner()
        eq(c.cmd("AUTHENTICATE PLAIN %s\r\n" % plain("late", "latepw")),
           "NO authentication failure (no store is configured for this "
           "identity)")
        with open(relay.conf, "a") as f:
            f.write("store.late.identity: late\n"
                    "store.late.replica.r1: 127.0.0.1:3\n")
        relay.signal(signal.SIGHUP)
        relay.wait_log("store=late event=opened identity=late")
        c = authed_client(relay.port, "late", "latepw")
        eq(c.cmd("APPLY SUB %(USERID x MBOXNAME user.x)\r\n"), "OK success")
        check(os.path.isdir(os.path.join(relay.dir, "data/late/journal")))
    finally:
        relay.stop()


@test
def full_disk_refuses_and_other_stores_go_on():
    """One store's data on a 2 MB tmpfs that fills up: its master gets a
    clear NO, everything it was told OK for is kept, and another store
    is served as before.  The free-space floor (512K of the 2 MB) stops
    the store before the disk does."""
    import hashlib
    relay = relay_with_users("disk_free_min_bytes: 512K\n"
                             "disk_free_min_percent: 0\n")
    mnt = os.path.join(relay.dir, "data/lab")
    mounted = False
    try:
        relay.stop()
        shutil_rm(mnt)
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                            mnt], capture_output=True, text=True)
        check(r.returncode == 0, "cannot mount a tmpfs: %s" % r.stderr)
        mounted = True
        relay.start()
        c = authed_client(relay.port, "repl", "replpw")
        acked = []
        refusal = None
        for i in range(40):
            body = (b"Subject: %d\r\n\r\n" % i) + os.urandom(100 * 1024)
            guid = hashlib.sha1(body).hexdigest()
            c.send(b"APPLY MESSAGE (%%{default %s %d}\r\n" % (
                guid.encode(), len(body)) + body + b")\r\n")
            line = c.line()
            if line != "OK success":
                refusal = line
                break
            acked.append(guid)
        check(refusal is not None, "the disk never filled up")
        eq(refusal, "NO Unknown error (the relay could not store a message: "
           "No space left on device)")
        # Further changes are refused too, clearly.
        eq(c.cmd("APPLY SUB %(USERID x MBOXNAME user.x)\r\n"),
           "NO Unknown error (the relay's disk is full: no space left "
           "for this store until space is freed)")
        check(len(acked) >= 5, "refused after %d bodies" % len(acked))
        # The other store is unaffected.
        e = authed_client(relay.port, "other", "otherpw")
        eq(e.cmd("APPLY SUB %(USERID y MBOXNAME user.y)\r\n"), "OK success")
        log = relay.logtext()
        check("store=lab event=disk_full" in log, log[-2000:])
        relay.stop()
        # Everything acknowledged is in the journal, intact.
        r = subprocess.run([os.path.join(os.environ.get("BUILDDIR", "."),
                                         "syncrelay-journal"), "dump",
                            os.path.join(mnt, "journal")],
                           capture_output=True, text=True, timeout=60)
        for g in acked:
            check(g in r.stdout, "acknowledged body %s is missing" % g)
    finally:
        relay.stop()
        if mounted:
            subprocess.run(["umount", mnt])


def shutil_rm(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    run("test_ingest")
