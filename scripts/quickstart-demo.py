#!/usr/bin/env python3
"""quickstart-demo.py -- syncrelay doing its job on loopback.

Starts a real Debian Cyrus replica, syncrelay (in the background, data in
/tmp/syncrelay-quickstart) replaying into it, and a real Cyrus master whose
sync_client points at syncrelay; creates a user with a few folders and
messages; replicates them one-shot, then rolling while more mail arrives;
shows what the relay journaled, what its shadow answers, and that the
replica ends up showing what the master shows.  Run by scripts/quickstart
after the build.

    quickstart-demo.py [--cyrus VERSION] [--master VERSION]
                       [--replica VERSION]

VERSION is 3.6 (Debian 12's Cyrus 3.6.1, the host's, the default), 3.10
(Debian trixie's 3.10.2) or 3.12 (Debian sid's 3.12.4); the last two run
from a Debian root built with debootstrap on first use (about a minute)
and cached in /var/cache/syncrelay-test (tests/integration/cyrusroots.py).
--cyrus sets both sides, --master and --replica one each.
"""
import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, "build")
sys.path.insert(0, os.path.join(TOP, "tests/integration"))
os.environ.setdefault("BUILDDIR", BUILD)
os.environ.setdefault("SRCDIR", TOP)

import cyrus  # noqa: E402
import cyrusroots  # noqa: E402
from harness import Client, free_port, wait_port  # noqa: E402

RUN = "/tmp/syncrelay-quickstart"


def say(text):
    print("==> " + text, flush=True)


def start_relay(replica_port):
    pidfile = os.path.join(RUN, "syncrelay.pid")
    if os.path.exists(pidfile):
        try:
            os.kill(int(open(pidfile).read()), 15)
            time.sleep(1)
        except (ProcessLookupError, ValueError):
            pass
    shutil.rmtree(RUN, ignore_errors=True)
    os.makedirs(RUN)
    port = free_port()
    metrics_port = free_port()
    db = os.path.join(RUN, "sasldb2")
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", db, "-u", "quickstart",
                    "repl"], input=cyrus.REPL_PASSWORD + "\n", text=True,
                   check=True)
    conf = os.path.join(RUN, "syncrelay.conf")
    with open(conf, "w") as f:
        f.write("servername: quickstart\n"
                "listen: 127.0.0.1:%d\n"
                "datadir: %s/data\n"
                "pidfile: %s\n"
                "control_socket: %s/control.sock\n"
                "metrics_listen: 127.0.0.1:%d\n"
                "allowplaintext: yes\n"
                "sasl_sasldb_path: %s\n"
                "sasl_mech_list: PLAIN\n"
                "# how the relay logs in to the replicas' sync_servers\n"
                "replica_authname: repl\n"
                "replica_password: %s\n"
                "# the store: a master slot and its replica slot\n"
                "store.s1.identity: repl\n"
                "store.s1.replica.r1: 127.0.0.1:%d\n" %
                (port, RUN, pidfile, RUN, metrics_port, db,
                 cyrus.REPL_PASSWORD, replica_port))
    subprocess.run([os.path.join(BUILD, "syncrelay"), "-C", conf, "-n"],
                   check=True)
    # In the foreground, detached, logging to a file we can show.
    with open(os.path.join(RUN, "syncrelay.log"), "ab") as logf:
        subprocess.Popen([os.path.join(BUILD, "syncrelay"), "-C", conf, "-f"],
                         stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    wait_port(port)
    for _ in range(50):
        if os.path.exists(pidfile):
            break
        time.sleep(0.1)
    return port, conf, pidfile, metrics_port


def ctl(conf, *args):
    r = subprocess.run([os.path.join(BUILD, "syncrelayctl"), "-C", conf] +
                       list(args), capture_output=True, text=True,
                       timeout=120)
    for line in (r.stdout + r.stderr).splitlines():
        print("    " + line)
    return r.returncode


def relay_get(port, line):
    c = Client(port)
    c.banner()
    auth = base64.b64encode(b"\0repl\0" + cyrus.REPL_PASSWORD.encode())
    c.cmd("AUTHENTICATE PLAIN %s\r\n" % auth.decode())
    c.send(line + "\r\n")
    out = []
    while True:
        l = c.line()
        out.append(l)
        if not l.startswith("* "):
            break
    c.cmd("EXIT\r\n")
    return out


def main():
    ap = argparse.ArgumentParser(description="syncrelay between a real "
                                 "Cyrus master and replica on loopback")
    ap.add_argument("--cyrus", choices=cyrusroots.ALL, default="3.6",
                    help="the Cyrus version of both sides (default 3.6)")
    ap.add_argument("--master", choices=cyrusroots.ALL,
                    help="the master's Cyrus version")
    ap.add_argument("--replica", choices=cyrusroots.ALL,
                    help="the replica's Cyrus version")
    args = ap.parse_args()
    mv, rv = args.master or args.cyrus, args.replica or args.cyrus
    for v in sorted({mv, rv}):
        if cyrusroots.VERSIONS[v][0]:
            say("Cyrus %s: a Debian %s root (built by debootstrap if not "
                "cached yet; about a minute)" % (cyrusroots.VERSIONS[v][1],
                                                 cyrusroots.VERSIONS[v][0]))
            print("    " + cyrusroots.root(v))
    say("starting syncrelay")
    replica_port = free_port()
    port, conf, pidfile, metrics_port = start_relay(replica_port)
    print("    syncrelay pid %s listening on 127.0.0.1:%d, config %s" %
          (open(pidfile).read().strip(), port, conf))
    root = os.path.join(RUN, "cyrus")
    log = cyrus.Syslog(os.path.join(root, "syslog")).start()
    master = replica = None
    try:
        say("starting a Cyrus %s replica (sync_server on 127.0.0.1:%d)"
            % (cyrusroots.VERSIONS[rv][1], replica_port))
        replica = cyrus.CyrusInstance(root, "replica", syslog=log,
                                      sync_port=replica_port,
                                      users=("alice",), version=rv)
        replica.start()
        say("starting a Cyrus %s master that replicates to syncrelay"
            % cyrusroots.VERSIONS[mv][1])
        master = cyrus.CyrusInstance(root, "master", syslog=log,
                                     extra=cyrus.replication_conf(port),
                                     version=mv)
        master.start()
        master.create_user("alice")
        m = master.imap("alice")
        for folder in ("Sent", "Work"):
            m.create(folder)
        m.logout()
        for i in range(20):
            master.deliver("alice", cyrus.make_message(i, 2000 + 300 * i))
        say("one-shot sync: sync_client -u alice")
        rc, out, err = master.sync_client(["-u", "alice"], timeout=120)
        print("    sync_client exit status %r" % rc)
        if rc != 0:
            print(err)
            return 1
        say("rolling replication: sync_client -R, while 5 more arrive")
        master.start_rolling()
        for i in range(5):
            master.deliver("alice", cyrus.make_message(100 + i, 3000))
        time.sleep(3)
        master.stop_rolling()
        say("what the relay journaled (syncrelay-journal summary)")
        subprocess.run([os.path.join(BUILD, "syncrelay-journal"), "summary",
                        os.path.join(RUN, "data/s1/journal")])
        say("what the relay answers the master (GET USER alice)")
        for line in relay_get(port, "GET USER alice"):
            print("    " + re.sub(r" (SYNC_CRC|RECENT|POP3|CREATED)\S* \d+",
                                  "", line)[:150])
        errors = log.errors() + log.severe()
        say("master syslog: %d SYNCERROR/IOERROR lines" % len(errors))
        for e in errors:
            print("    " + e)
        say("syncrelay's log (%s/syncrelay.log), the last lines" % RUN)
        with open(os.path.join(RUN, "syncrelay.log")) as f:
            for line in f.readlines()[-6:]:
                print("    " + line.rstrip()[:150])
        say("the replica, over IMAP, compared with the master")
        want = master.state("alice")
        got = None
        for _ in range(60):
            got = replica.state("alice")
            if got == want:
                break
            time.sleep(0.5)
        n = sum(len(b.get("messages", {})) for b in want["mailboxes"].values())
        print("    master: %d folders, %d messages; replica %s" %
              (len(want["mailboxes"]), n,
               "identical" if got == want else "DIFFERS: %r" % got))
        say("syncrelayctl wait s1 --timeout 60 (what a failover script "
            "runs)")
        waited = ctl(conf, "wait", "s1", "--timeout", "60")
        say("syncrelayctl status")
        ctl(conf, "status")
        say("a few of its Prometheus metrics (http://127.0.0.1:%d/metrics)"
            % metrics_port)
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                      metrics_port, timeout=10).read()
        for line in text.decode().splitlines():
            if re.match(r"syncrelay_(replica_lag|replica_state\S*"
                        r"streaming|store_head_lsn|replica_cursor)", line):
                print("    " + line)
        say("syncrelay keeps running (the Cyrus instances stop now, so its "
            "replica goes down).")
        print("    status:  %s -C %s status" %
              (os.path.join(BUILD, "syncrelayctl"), conf))
        print("    stop it: kill $(cat %s)" % pidfile)
        return 0 if not errors and got == want and waited == 0 else 1
    finally:
        if master:
            master.stop()
        if replica:
            replica.stop()
        log.stop()


if __name__ == "__main__":
    sys.exit(main())
