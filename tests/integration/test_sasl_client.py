#!/usr/bin/env python3
"""test_sasl_client.py -- the relay's SASL client (protocol/saslcli.c),
as its links will use it: logging in to a real Debian 3.6.1 sync_server
and to syncrelay itself, with the mechanism the library picks and with
each mechanism forced, and refused with a wrong password."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cyrus
from harness import BUILDDIR, check, eq, run, test
from relaytest import CyrusPath

LOGIN = os.path.join(BUILDDIR, "tests/unit/csync_login")


def login(port, user, password, mechs=None):
    argv = [LOGIN, str(port), user, password] + ([mechs] if mechs else [])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@test
def logs_in_to_a_real_sync_server_and_to_the_relay():
    # A replica offering what Debian's libsasl2 has (sasldb secrets), and
    # a relay offering all its library has, its replica a dead port.
    path = CyrusPath("syncrelay-sasl-", users=(), master=False,
                     replica_conf={"sasl_mech_list": "PLAIN LOGIN "
                                   "SCRAM-SHA-256 DIGEST-MD5 CRAM-MD5"},
                     relay=[("r1", 1)], password="pw", mechs=None)
    try:
        replica, relay = path.replica, path.relay
        r = login(replica.sync_port, "repl", cyrus.REPL_PASSWORD)
        eq(r.returncode, 0)
        check(r.stdout.startswith("OK "), r.stdout + r.stderr)
        print("# the library chose %s" % r.stdout.split()[1])
        for mech in ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"):
            r = login(replica.sync_port, "repl", cyrus.REPL_PASSWORD, mech)
            eq((r.returncode, r.stdout.strip()), (0, "OK " + mech))
        r = login(replica.sync_port, "repl", "wrong", "PLAIN")
        eq(r.returncode, 1)
        check("NO" in r.stderr, r.stderr)
        # And the relay's own server side.
        for mech in ("PLAIN", "SCRAM-SHA-256"):
            r = login(relay.port, "repl", "pw", mech)
            eq((r.returncode, r.stdout.strip()), (0, "OK " + mech))
    finally:
        path.stop()


if __name__ == "__main__":
    run("test_sasl_client")
