#!/usr/bin/env python3
"""test_differential.py -- the same scripted csync sessions against a real
Debian 3.6.1 sync_server and against syncrelay: every reply must be the
same, apart from the banner (server name, version, mechanisms).

The script covers GET and APPLY, successes and refusals.  It leaves out
what the relay deliberately does not emulate (a replica's own modseq
bumps after APPLY ANNOTATION and quota modseq increments, design.md 1)
and what crashes a real sync_server (sync-protocol.md 11a).
"""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import authed_client, eq, run, test
from relaytest import CyrusPath

MSG1 = (b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: one\r\n"
        b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: "
        b"<1@example.com>\r\n\r\nHello\r\n")
MSG2 = (b"From: carol@example.com\r\nTo: bob@example.com\r\nSubject: two\r\n"
        b"Date: Tue, 14 Nov 2023 22:15:50 +0000\r\nMessage-ID: "
        b"<2@example.com>\r\n\r\nWorld\r\n")
G1 = hashlib.sha1(MSG1).hexdigest()
G2 = hashlib.sha1(MSG2).hexdigest()
ACL = '"bob\tlrswipkxtecdan\t"'


def record(uid, modseq, lu, flags, idate, guid, annots=""):
    return ("%%(UID %d MODSEQ %d LAST_UPDATED %d FLAGS (%s) INTERNALDATE %d "
            "SIZE 137 GUID %s%s)" % (uid, modseq, lu, flags, idate, guid,
                                     annots))


SAVEDATE = (" ANNOTATIONS (%%(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID "
            "\"\" MODSEQ 0 VALUE %d) %%(ENTRY /vendor/cmu/cyrus-imapd/"
            "createdmodseq USERID \"\" MODSEQ 0 VALUE %d))")


def mailbox(name, uid, records, extra="", last_uid=3, hms=7,
            crc="SYNC_CRC 0 "):
    return ("APPLY MAILBOX %%(UNIQUEID %s MBOXNAME %s %sLAST_UID %d "
            "HIGHESTMODSEQ %d RECENTUID 0 RECENTTIME 0 LAST_APPENDDATE "
            "1700000300 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 UIDVALIDITY "
            "1700000000 PARTITION default ACL %s OPTIONS P CREATEDMODSEQ 1 "
            "FOLDERMODSEQ 1 %sRECORD (%s))\r\n" % (uid, name, crc, last_uid,
                                                  hms, ACL, extra,
                                                  " ".join(records)))


R1 = record(1, 4, 1700000100, "\\Seen Work", 1700000000, G1,
            SAVEDATE % (1700000000, 3))
R2 = record(2, 6, 1700000200, "", 1700000150, G2,
            SAVEDATE % (1700000150, 5))
R3 = record(3, 7, 1700000300, "\\Deleted \\Expunged", 1700000250, G1)


def script():
    """(command bytes, label) in order."""
    msg = (b"APPLY MESSAGE (%%{default %s 137}\r\n" % G1.encode() + MSG1 +
           b" %%{default %s 137}\r\n" % G2.encode() + MSG2 + b")\r\n")
    s = [
        "APPLY CAPABILITIES (SIEVE-MAILBOX)\r\n",
        "GET USER bob\r\n",
        "GET MAILBOXES (user.bob user.none)\r\n",
        "APPLY RESERVE %%(PARTITION default MBOXNAME (user.bob) GUID "
        "(%s %s))\r\n" % (G1, G2),
        msg,
        "APPLY RESERVE %%(PARTITION default MBOXNAME (user.bob) GUID "
        "(%s %s %s))\r\n" % (G1, "0" * 39 + "1", G2),
        mailbox("user.bob", "bobbox1", [R1, R2, R3],
                crc="SYNC_CRC 3627443907 SYNC_CRC_ANNOT 3808183431 "),
        "GET MAILBOXES (user.bob user.none)\r\n",
        "GET FULLMAILBOX user.bob\r\n",
        "GET USER bob\r\n",
        # The master thinks we are elsewhere: changed since last sync.
        mailbox("user.bob", "bobbox1", [R1], extra="SINCE_MODSEQ 5 ",
                hms=8),
        # A mailbox name claimed with another uniqueid.
        mailbox("user.bob", "otherbox", [R1]),
        # Wrong CRCs: refused after the change is made.
        mailbox("user.bob.Work", "workbox1", [R1],
                crc="SYNC_CRC 1 SYNC_CRC_ANNOT 2 ", last_uid=1, hms=4),
        "GET FULLMAILBOX user.bob.Work\r\n",
        "APPLY RENAME %(OLDMBOXNAME user.bob.Work NEWMBOXNAME user.bob.Play "
        "PARTITION default UIDVALIDITY 1700000000)\r\n",
        "GET MAILBOXES (user.bob.Work user.bob.Play)\r\n",
        "APPLY RENAME %(OLDMBOXNAME user.bob.Nope NEWMBOXNAME user.bob.X "
        "PARTITION default)\r\n",
        "APPLY EXPUNGE %(MBOXNAME user.bob UNIQUEID bobbox1 UID (2))\r\n",
        "GET FULLMAILBOX user.bob\r\n",
        "APPLY EXPUNGE %(MBOXNAME user.bob UNIQUEID wrongid UID (1))\r\n",
        "APPLY SEEN %(USERID bob UNIQUEID bobbox1 LASTREAD 1700000400 "
        "LASTUID 2 LASTCHANGE 1700000400 SEENUIDS 1:2)\r\n",
        "APPLY SUB %(USERID bob MBOXNAME user.bob.Play)\r\n",
        "APPLY SUB %(USERID bob MBOXNAME user.bob)\r\n",
        "APPLY UNSUB %(USERID bob MBOXNAME user.bob)\r\n",
        "GET META bob\r\n",
        "APPLY QUOTA %(ROOT user.bob LIMIT 1000 STORAGE 1000 MESSAGE 50 "
        "MODSEQ 3)\r\n",
        "APPLY UNQUOTA user.nobody\r\n",
        "GET FULLMAILBOX user.none\r\n",
        "APPLY UNMAILBOX user.bob.Play\r\n",
        "GET MAILBOXES (user.bob.Play)\r\n",
        "APPLY SEEN %(USERID bob)\r\n",
        "APPLY MAILBOX %(UNIQUEID x MBOXNAME user.bob.y)\r\n",
        "GET BOGUS x\r\n",
        "APPLY BOGUS %(A b)\r\n",
        "GET MAILBOXES (unclosed\r\n)\r\n",
        "APPLY MAILBOX %(UNIQUEID bobbox1\r\n) junk\r\n",
        "FROB\r\n",
        "\r\n",
        "NOOP\r\n",
        "NOOP extra\r\n",
        "RESTART\r\n",
        "GET USER bob\r\n",
        "EXIT\r\n",
    ]
    return [x.encode() if isinstance(x, str) else x for x in s]


def session(port, user, password, cmds):
    c = authed_client(port, user, password)
    replies = []
    for cmd in cmds:
        c.send(cmd)
        lines = []
        while True:
            try:
                line = c.line()
            except EOFError:
                lines.append("<connection closed>")
                break
            lines.append(line)
            if not line.startswith("* "):
                break
        replies.append(lines)
        if lines[-1] == "<connection closed>":
            break
    c.close()
    return replies


@test
def same_replies_as_a_real_sync_server():
    # The relay's replica is a port where nothing listens: ingest alone.
    path = CyrusPath("syncrelay-diff-", users=(), relay=[("r1", 1)],
                     master=False)
    try:
        replica, relay = path.replica, path.relay
        cmds = script()
        want = session(replica.sync_port, "repl", cyrus.REPL_PASSWORD, cmds)
        got = session(relay.port, "repl", cyrus.REPL_PASSWORD, cmds)
        differ = []
        for cmd, w, g in zip(cmds, want, got):
            if w != g:
                differ.append("%s\n  replica: %r\n  relay:   %r" %
                              (cmd[:100], w, g))
        eq(len(got), len(want))
        if differ:
            raise AssertionError("%d of %d replies differ:\n%s" %
                                 (len(differ), len(cmds),
                                  "\n".join(differ)))
        print("# %d scripted commands, every reply the same" % len(cmds))
    finally:
        path.stop()


if __name__ == "__main__":
    run("test_differential")
