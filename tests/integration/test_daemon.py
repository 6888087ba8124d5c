#!/usr/bin/env python3
"""test_daemon.py -- the syncrelay daemon as a process: options, config
checking, the csync listener before authentication, signals, limits.
"""
import os
import re
import signal
import subprocess
import time

from harness import (SYNCRELAY, SRCDIR, Client, Relay, check, eq, free_port,
                     run, test)


def relay_cmd(*args):
    return subprocess.run([SYNCRELAY] + list(args), capture_output=True,
                          text=True, timeout=30)


@test
def check_config_ok_and_errors():
    r = relay_cmd("-C", os.path.join(SRCDIR, "conf/syncrelay.conf.sample"),
                  "-n")
    eq(r.returncode, 0)
    check("OK, 0 stores" in r.stdout, r.stdout)
    # The capabilities a master is offered: what every replica takes.
    eq(r.stdout.splitlines()[1],
       "offers masters: SASL SIEVE-MAILBOX, what every replica takes "
       "(Cyrus 3.6, 3.10, 3.12); not REPLICATION-ARCHIVE")
    relay = Relay("compress: yes\n")
    r = relay_cmd("-C", relay.conf, "-n")
    check("offers masters: SASL COMPRESS DEFLATE SIEVE-MAILBOX," in
          r.stdout, r.stdout)
    relay = Relay("store.s1.identity: a\nstore.s1.replica.r1: h:1\n"
                  "store.s2.identity: a\nstore.s2.replica.r1: h:2\n")
    r = relay_cmd("-C", relay.conf, "-n")
    eq(r.returncode, 1)
    check(re.search(r"syncrelay\.conf:8: stores s1 and s2 share the "
                    r"identity \"a\"", r.stderr), r.stderr)
    r = relay_cmd("-C", "/nonexistent.conf", "-n")
    eq(r.returncode, 1)
    check("No such file" in r.stderr, r.stderr)


@test
def print_defaults():
    r = relay_cmd("-D")
    eq(r.returncode, 0)
    check("#listen: 127.0.0.1:2005\n" in r.stdout, r.stdout)
    check("#sync_timeout: 30m\n" in r.stdout, r.stdout)


@test
def banner_and_connection_commands():
    relay = Relay().start()
    try:
        c = Client(relay.port)
        banner = c.banner()
        eq(len(banner), 3)
        check(re.fullmatch(r"\* SASL [A-Z0-9 -]+", banner[0]), banner)
        # Without TLS, password mechanisms need allowplaintext: yes;
        # ANONYMOUS is never offered.
        check(" PLAIN" not in banner[0] and "ANONYMOUS" not in banner[0],
              banner)
        eq(banner[1], "* SIEVE-MAILBOX")
        check(re.fullmatch(r"\* OK relay-test syncrelay sync server \S+",
                           banner[2]), banner)
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        eq(c.cmd("noop\r\n"), "OK Noop completed")
        eq(c.cmd("NOOP now\r\n"), "BAD Unexpected extra arguments to Noop")
        eq(c.cmd("RESTART\r\n"), "OK Restarting")
        eq(c.cmd("EXIT x\r\n"), "BAD Unexpected extra arguments to Exit")
        eq(c.cmd("EXIT\r\n"), "OK Finished")
        check(c.closed(), "EXIT must close the connection")
    finally:
        relay.stop()


@test
def unauthenticated_commands_are_refused():
    # Replies as a real 3.6.1 sync_server's before login (test_hostile.py
    # compares them); failed logins still pause, if shortly here.
    relay = Relay("failedloginpause: 1s\n").start()
    try:
        c = Client(relay.port)
        c.banner()
        eq(c.cmd("GET USER alice\r\n"), "NO Please authenticate first")
        eq(c.cmd("APPLY RESERVE %(PARTITION default GUID ())\r\n"),
           "NO Please authenticate first")
        eq(c.cmd("RESTORE MAILBOX %(A b)\r\n"), "NO Please authenticate first")
        eq(c.cmd("ARGH\r\n"), "NO Please authenticate first")
        eq(c.cmd("GET %x broken\r\n"), "NO Please authenticate first")
        # Before login a line ends at its LF: "b)" is a line of its own.
        eq(c.cmd("GET USER (a\r\nb)\r\n"), "NO Please authenticate first")
        eq(c.line(), "BAD IMAP_PROTOCOL_ERROR Unrecognized command")
        eq(c.cmd("FROB\r\n"), "BAD IMAP_PROTOCOL_ERROR Unrecognized command")
        eq(c.cmd("\r\n"), "BAD Null command")
        eq(c.cmd("AUTHENTICATE\r\n"),
           "BAD Missing required argument to Authenticate")
        # PLAIN without TLS and without allowplaintext: SASL's refusal.
        eq(c.cmd("AUTHENTICATE PLAIN AHJlcGwAcmVwbHB3\r\n"),
           "NO encryption needed to use mechanism")
        eq(c.cmd("AUTHENTICATE FOO\r\n"), "NO no mechanism available")
        eq(c.cmd("AUTHENTICATE PL(AIN\r\n"), "BAD Invalid mechanism")
        eq(c.cmd("AUTHENTICATE PLAIN = x\r\n"),
           "BAD Unexpected extra arguments to Authenticate")
        eq(c.cmd("COMPRESS DEFLATE\r\n"), "NO Compression is not enabled")
        # A literal inside an unknown command is data, never commands.
        eq(c.cmd("FROB {6+}\r\nNOOP\r\n\r\n"),
           "BAD IMAP_PROTOCOL_ERROR Unrecognized command")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        # A file literal before login is not read: what follows its
        # line is taken as commands, as a sync_server takes it.
        eq(c.cmd("APPLY MESSAGE (%{default "
                 "85ad4a82f0ac38cf6696948ca6d8e98d10b5337e 6}\r\nNOOP\r\n)\r\n"),
           "NO Please authenticate first")
        eq(c.line(), "OK Noop completed")
        eq(c.line(), "BAD Null command")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        c.close()
        log = relay.logtext()
        check(re.search(r"event=refused cmd=GET reason=unauthenticated", log),
              log)
        check(re.search(r"event=refused cmd=FROB reason=unknown_command", log),
              log)
        check(re.search(r"event=auth_failed reason=\"no mechanism", log),
              log)
    finally:
        relay.stop()


@test
def oversize_input_is_refused_and_session_survives():
    relay = Relay("preauth_max_line_bytes: 1024\n").start()
    try:
        c = Client(relay.port)
        c.banner()
        eq(c.cmd("GET USER " + "x" * 5000 + "\r\n"),
           "NO Please authenticate first")
        eq(c.cmd("FROB " + "y" * 5000 + "\r\n"),
           "BAD IMAP_PROTOCOL_ERROR Unrecognized command")
        # As a sync_server answers a word it does not know, however long.
        eq(c.cmd("Z" * 200000 + "\r\n"),
           "BAD IMAP_PROTOCOL_ERROR Unrecognized command")
        eq(c.cmd("GET MAILBOXES ((((((((((((((((((((a))))))))))))))))))))\r\n"),
           "NO Please authenticate first")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        log = relay.logtext()
        check("event=bad_command" in log and "longer than" in log, log)
        # Before login a GET is refused by its word, never parsed: no
        # nesting error to log.
        check("nesting deeper than" not in log, log)
    finally:
        relay.stop()


@test
def max_connections_and_idle_timeout():
    # Before login the deadline is login_timeout (sync_timeout applies
    # after login: test_hostile.py).
    relay = Relay("max_connections: 2\nlogin_timeout: 3s\n").start()
    try:
        a, b = Client(relay.port), Client(relay.port)
        a.banner()
        b.banner()
        c = Client(relay.port)
        check(c.closed(), "a third connection must be refused")
        relay.wait_log("reason=\"too many connections (max_connections=2)\"")
        start = time.time()
        check(a.closed(10), "idle connection must time out")
        took = time.time() - start
        check(2 <= took <= 9, "idle timeout took %.1fs" % took)
        relay.wait_log("reason=\"no login within login_timeout (3s)\"")
    finally:
        relay.stop()


@test
def pidfile_and_single_instance():
    relay = Relay().start()
    try:
        relay.wait_log("event=started")
        with open(relay.pidfile) as f:
            eq(int(f.read()), relay.proc.pid)
        # A second daemon with the same pidfile refuses to start.
        other = Relay()
        other.write_conf("pidfile: %s\n" % relay.pidfile)
        with open(other.conf) as f:
            text = f.read()
        text = re.sub(r"^pidfile: .*\n", "", text, count=1, flags=re.M)
        with open(other.conf, "w") as f:
            f.write(text)
        r = relay_cmd("-C", other.conf, "-f")
        eq(r.returncode, 1)
        check("event=already_running" in r.stderr, r.stderr)
    finally:
        eq(relay.stop(), 0)
    check(not os.path.exists(relay.pidfile), "pidfile must be removed")


@test
def sighup_reloads_and_keeps_running_on_a_bad_file():
    relay = Relay("store.s1.identity: repl-s1\nstore.s1.replica.r1: h:1\n")
    relay.start()
    try:
        relay.wait_log("event=started")
        relay.write_conf("store.s1.identity: repl-s1\n"
                         "store.s1.replica.r1: h:1\n"
                         "store.s2.identity: repl-s2\n"
                         "store.s2.replica.r1: h:2\n"
                         "log_level: debug\n")
        relay.signal(signal.SIGHUP)
        relay.wait_log("event=reloaded")
        relay.wait_log("store=s2 event=store_added identity=repl-s2")
        c = Client(relay.port)
        c.banner()
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        relay.wait_log("cmd=NOOP")        # debug level is now on
        with open(relay.conf, "a") as f:
            f.write("bogus_option: 1\n")
        relay.signal(signal.SIGHUP)
        relay.wait_log("event=reload_failed")
        check("bogus_option" in relay.logtext())
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")
        check(relay.proc.poll() is None, "daemon must keep running")
    finally:
        relay.stop()


@test
def sigterm_says_bye_and_exits():
    relay = Relay().start()
    c = Client(relay.port)
    c.banner()
    relay.signal(signal.SIGTERM)
    eq(c.line(), "BYE shutting down")
    eq(relay.proc.wait(10), 0)
    relay.wait_log("event=stopped")


@test
def background_mode_and_bad_datadir():
    relay = Relay()
    r = relay_cmd("-C", relay.conf)         # daemonizes, parent exits 0
    eq(r.returncode, 0)
    from harness import wait_port
    wait_port(relay.port)
    with open(relay.pidfile) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):            # sanitizer builds exit slowly
        if not os.path.exists(relay.pidfile):
            break
        time.sleep(0.05)
    check(not os.path.exists(relay.pidfile), "daemon did not stop")
    bad = Relay()
    open(os.path.join(bad.dir, "data"), "w").close()   # a file, not a dir
    r = relay_cmd("-C", bad.conf, "-f")
    eq(r.returncode, 1)
    check("event=datadir_unusable" in r.stderr, r.stderr)


if __name__ == "__main__":
    run("test_daemon")
