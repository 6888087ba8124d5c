#!/usr/bin/env python3
"""test_fanout_tls.py -- the relay's links to replicas over TLS, with real
Cyrus at both ends.  A throwaway CA and a server certificate for 127.0.0.1
(subjectAltName IP) are made with the openssl tool at test time; two
Debian Cyrus 3.6.1 replicas serve them (tls_server_cert/tls_server_key,
so their sync_server offers STARTTLS).  A real master replicates into
syncrelay, which replays to r1 with replica_tls: starttls and the right
CA, and to r2 with a CA that did not sign the replica's certificate.

r1 must end up showing exactly what the master shows; r2 must get
nothing, the relay must log event=tls_failed with the verification error
and keep retrying (and running).  A relay pointed with STARTTLS at a
sync_server that does not offer it stops that link with a reason naming
the replica; one set to implicit TLS against a clear-text sync_server
fails the handshake and retries.  Cyrus 3.6.1's sync_server cannot serve
TLS from the first byte (it has no -s option, unlike imapd), so implicit
TLS is only tested for failing cleanly here.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import check, eq, run, test
from relaytest import (CyrusPath, converge, direct_applies, populate,
                       stop_paths)

env = {}
USERS = ("alice",)


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "openssl %s:\n%s%s" % (" ".join(args),
                                                     r.stdout, r.stderr))


def make_ca(d, name):
    """A self-signed CA (EC P-256) as d/name.pem and d/name.key."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", os.path.join(d, name + ".key"),
            "-out", os.path.join(d, name + ".pem"), "-days", "2",
            "-subj", "/CN=syncrelay test %s" % name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return os.path.join(d, name + ".pem")


def make_certs(d):
    """ca.pem, and server.pem/server.key for 127.0.0.1 signed by it;
    wrong-ca.pem, a CA that signed nothing here."""
    os.makedirs(d)
    ca = make_ca(d, "ca")
    wrong = make_ca(d, "wrong-ca")
    key, csr = os.path.join(d, "server.key"), os.path.join(d, "server.csr")
    cert, ext = os.path.join(d, "server.pem"), os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = IP:127.0.0.1\n"
                "basicConstraints = CA:FALSE\n"
                "keyUsage = digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
            os.path.join(d, "ca.key"), "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", ext)
    # The replicas' sync_servers run as cyrus and read the key.
    uid, gid = cyrus._cyrus_ids()
    for f in (cert, key):
        os.chown(f, uid, gid)
        os.chmod(f, 0o600)
    os.chmod(d, 0o755)
    return ca, wrong, cert, key


def setup():
    root = tempfile.mkdtemp(prefix="syncrelay-fanout-tls-")
    os.chmod(root, 0o755)
    try:
        ca, wrong, cert, key = env["certs"] = make_certs(
            os.path.join(root, "tls"))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    path = CyrusPath(
        None, root=root, nreplicas=2, users=USERS,
        replica_conf={"tls_server_cert": cert, "tls_server_key": key},
        extra="replica_tls: starttls\n"
              "replica_tls_ca_file: %s\n"
              "store.s1.replica.r2.tls_ca_file: %s\n" % (ca, wrong))
    env.update(syslog=path.log, relay=path.relay, master=path.master,
               replica=path.replicas[0], replica2=path.replicas[1],
               path=path)
    return path.log, path.relay, path.master, path.replica, path.replicas[1]


@test
def test_starttls_link_replicates_and_a_wrong_ca_does_not():
    log, relay, master, replica, replica2 = setup()
    mark = log.mark()
    populate(master, "alice", 40, big={5})
    rc, out, err = master.sync_client(["-u", "alice"], timeout=180)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    relay.wait_log("replica=r1 event=tls_up mode=starttls", timeout=30)
    relay.wait_log("replica=r1 event=link_up", timeout=30)
    st = converge(master, replica, ["alice"])["alice"]
    check(len(st["mailboxes"]) == 4, st["mailboxes"].keys())
    check(sum(len(b.get("messages", {})) for b in
              st["mailboxes"].values()) >= 40, "messages missing")
    # The master itself finds nothing left to send to r1.
    eq(direct_applies(master, replica, "alice"), [])

    # r2's certificate does not verify against the CA r2 was given: the
    # link retries with its backoff and never logs in.
    text = relay.logtext()
    check("replica=r2 event=tls_failed addr=127.0.0.1:%d error=\"TLS "
          "handshake failed: certificate verification failed: unable to "
          "get local issuer certificate\"" % replica2.sync_port in text,
          text)
    deadline = time.time() + 30
    while relay.logtext().count("replica=r2 event=tls_failed") < 2 and \
            time.time() < deadline:
        time.sleep(0.2)
    text = relay.logtext()
    check(text.count("replica=r2 event=tls_failed") >= 2, text)
    check("replica=r2 event=link_down reason=\"TLS handshake failed\" "
          "retry_in=" in text, text)
    for bad in ("replica=r2 event=link_up", "replica=r2 event=tls_up",
                "event=link_failed", "AddressSanitizer", "runtime error"):
        check(bad not in text, text)
    check(relay.proc.poll() is None, "the relay exited")
    # Nothing reached r2: no mailbox of alice's exists there.
    a = replica2.imap()
    try:
        typ, data = a.list('""', '"*"')
    finally:
        a.logout()
    eq(typ, "OK")
    check(not any(d and b"alice" in d for d in data), data)

    # A change made now still travels to r1 (TLS stays up for streaming).
    master.deliver("alice", cyrus.make_message(900, 4000))
    rc, out, err = master.sync_client(["-u", "alice"], timeout=120)
    check(rc == 0, "sync_client rc=%r\n%s%s" % (rc, out, err))
    converge(master, replica, ["alice"])
    log.flush()
    check(not log.errors(mark), log.errors(mark))
    env["mark"] = log.mark()


@test
def test_no_starttls_offered_and_implicit_against_clear_text():
    """A second relay (no master needed: links connect at start) whose r3
    is the master's own sync_server, which has no certificate, so offers
    no STARTTLS; and r4, the TLS replica's sync_server, but set to
    implicit TLS, which that sync_server does not speak."""
    master, replica = env["master"], env["replica"]
    relay2 = env["path"].start_relay(
        [("r3", master.sync_port), ("r4", replica.sync_port)],
        "replica_tls: starttls\n"
        "replica_tls_ca_file: %s\n"
        "store.s1.replica.r4.tls: implicit\n" % env["certs"][0])
    relay2.wait_log("replica=r3 event=link_failed", timeout=30)
    relay2.wait_log("replica=r4 event=tls_failed", timeout=30)
    text = relay2.logtext()
    check("reason=\"replica r3 (127.0.0.1:%d) does not offer STARTTLS"
          % master.sync_port in text, text)
    check("replica=r4 event=link_down reason=\"TLS handshake failed\""
          in text, text)
    check("replica=r4 event=link_up" not in text, text)
    check(relay2.proc.poll() is None, "the relay exited")
    eq(relay2.stop(), 0)
    text = relay2.logtext()
    check("LeakSanitizer" not in text and "AddressSanitizer" not in text,
          text)
    # The replica read the ClientHello as commands, and said so.
    log = env["syslog"]
    log.flush()
    check(all("received bad command" in e for e in log.errors(env["mark"])),
          log.errors(env["mark"]))
    env["mark"] = log.mark()


@test
def test_relay_stops_cleanly_with_tls_links():
    """SIGTERM with a TLS link up and one retrying: EXIT goes through TLS,
    everything is freed (ASan builds check leaks at exit)."""
    relay = env["relay"]
    eq(relay.stop(), 0)
    env["relay"] = None
    text = relay.logtext()
    check("LeakSanitizer" not in text and "AddressSanitizer" not in text,
          text)
    log = env["syslog"]
    log.flush()
    check(not log.errors(env["mark"]), log.errors(env["mark"]))


if __name__ == "__main__":
    run("test_fanout_tls", stop_paths)
