#!/usr/bin/env python3
"""test_metrics.py -- the Prometheus metrics over HTTP.

Every scrape is read with a strict parser of the text exposition format
0.0.4 (below): each sample line is name{labels} value, each family has
HELP and TYPE before its samples and its samples together, no series
twice, histogram buckets cumulative and ending in +Inf == _count.  The
values are then checked against what the test did: records and bytes
sent by a master, the journal's head LSN, fsyncs, refused commands by
error name, and a replica that cannot be reached.
"""
import hashlib
import math
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from harness import (SYNCRELAY, Relay, authed_client, check, eq, free_port,
                     relay_lsn, run, sasl_relay, test)

# ---- a strict parser of the text format ------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_value(text):
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise AssertionError("bad value %r" % text)
    return float(text)


def parse_labels(text, pos):
    """Parses {a="x",b="y"} at text[pos] == '{'; returns (dict, end)."""
    labels = {}
    pos += 1
    if text[pos] == "}":
        return labels, pos + 1
    while True:
        m = re.compile(LABEL).match(text, pos)
        if not m:
            raise AssertionError("bad label name at %r" % text[pos:])
        name = m.group(0)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise AssertionError("expected =\" at %r" % text[pos:])
        pos += 2
        value = []
        while True:
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1]
                if nxt not in '\\"n':
                    raise AssertionError("bad escape \\%s" % nxt)
                value.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise AssertionError("newline in a label value")
            else:
                value.append(c)
                pos += 1
        if name in labels:
            raise AssertionError("label %s twice" % name)
        labels[name] = "".join(value)
        if text[pos] == ",":
            pos += 1
            continue
        if text[pos] == "}":
            return labels, pos + 1
        raise AssertionError("expected , or } at %r" % text[pos:])


def family_of(sample, types):
    """The family a sample name belongs to (histogram suffixes)."""
    if sample in types:
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample[:-len(suffix)]
        if sample.endswith(suffix) and types.get(base) == "histogram":
            return base
    raise AssertionError("sample %s has no TYPE" % sample)


def parse(text):
    """Returns {family: {"type", "help", "samples": [(name, labels,
    value)]}}, or raises AssertionError on anything not strictly in the
    format."""
    check(text.endswith("\n"), "the exposition must end with a newline")
    fams, types, seen_series, closed = {}, {}, set(), set()
    current = None
    for line in text[:-1].split("\n"):
        m = re.fullmatch(r"# (HELP|TYPE) (%s) (.*)" % NAME, line)
        if m:
            kind, name, rest = m.groups()
            fam = fams.setdefault(name, {"type": None, "help": None,
                                         "samples": []})
            if name in closed or fam["samples"]:
                raise AssertionError("%s for %s after its samples" %
                                     (kind, name))
            key = kind.lower()
            if fam[key] is not None:
                raise AssertionError("%s %s twice" % (kind, name))
            if kind == "TYPE":
                check(rest in TYPES, "bad type %r" % rest)
                types[name] = rest
            else:
                check("\\" not in rest.replace("\\\\", "").replace(
                    "\\n", ""), "bad escape in HELP %r" % rest)
            fam[key] = rest
            if current is not None and current != name:
                closed.add(current)
            current = name
            continue
        if line.startswith("#") or line == "":
            raise AssertionError("unexpected line %r" % line)
        m = re.compile(NAME).match(line)
        check(m is not None, "bad sample line %r" % line)
        name, pos = m.group(0), m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos)
        check(line[pos:pos + 1] == " ", "no space before value: %r" % line)
        rest = line[pos + 1:]
        check(" " not in rest, "timestamps are not expected: %r" % line)
        value = parse_value(rest)
        fam_name = family_of(name, types)
        fam = fams[fam_name]
        check(fam["help"] is not None and fam["type"] is not None,
              "%s lacks HELP or TYPE" % fam_name)
        check(fam_name not in closed, "samples of %s are not together" %
              fam_name)
        if current != fam_name:
            if current is not None:
                closed.add(current)
            current = fam_name
        series = (name, tuple(sorted(labels.items())))
        check(series not in seen_series, "series twice: %r" % line)
        seen_series.add(series)
        fam["samples"].append((name, labels, value))
    for name, fam in fams.items():
        check(fam["help"] is not None and fam["type"] is not None,
              "%s lacks HELP or TYPE" % name)
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
        if fam["type"] == "counter":
            check(name.endswith("_total"), "counter %s not _total" % name)
            for s in fam["samples"]:
                check(s[2] >= 0, "negative counter %r" % (s,))
    return fams


def check_histogram(name, samples):
    groups = {}
    for sample, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None,
                                     "count": None})
        if sample == name + "_bucket":
            check("le" in labels, "bucket without le")
            g["buckets"].append((parse_value(labels["le"]), value))
        elif sample == name + "_sum":
            g["sum"] = value
        elif sample == name + "_count":
            g["count"] = value
        else:
            raise AssertionError("bad histogram sample %s" % sample)
    for rest, g in groups.items():
        b = g["buckets"]
        check(b and g["sum"] is not None and g["count"] is not None,
              "histogram %s%r incomplete" % (name, rest))
        les = [le for le, _ in b]
        eq(les, sorted(les))
        check(len(set(les)) == len(les), "a bucket twice")
        check(les[-1] == math.inf, "no +Inf bucket")
        counts = [n for _, n in b]
        check(all(x <= y for x, y in zip(counts, counts[1:])),
              "buckets not cumulative: %r" % counts)
        eq(counts[-1], g["count"])


def value(fams, family, sample=None, **labels):
    """The value of the one sample of family with these labels."""
    found = [v for n, l, v in fams[family]["samples"]
             if n == (sample or family) and l == labels]
    check(len(found) == 1, "%s%r: %d samples" % (family, labels,
                                                  len(found)))
    return found[0]


# ---- helpers ----------------------------------------------------------------

def fetch(relay, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" %
                                 (relay.metrics_port, path), method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers, r.read().decode("utf-8")


def scrape(relay):
    status, headers, body = fetch(relay)
    eq(status, 200)
    eq(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
    return parse(body)


def relay_with_store(closed_port):
    return sasl_relay({"repl": "replpw"},
                      "store.lab.identity: repl\n"
                      "store.lab.replica.r1: 127.0.0.1:%d\n" % closed_port)


def wait_for(relay, predicate, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        fams = scrape(relay)
        if predicate(fams) or time.time() > deadline:
            return fams
        time.sleep(0.1)


STATES = {"down", "connecting", "login", "catching_up", "streaming",
          "repairing", "failed", "paused"}


# ---- tests ------------------------------------------------------------------

@test
def the_parser_is_strict():
    good = ("# HELP a_total A.\n# TYPE a_total counter\n"
            "a_total{store=\"x\\\"y\\\\z\\n\"} 3\n"
            "# HELP h H.\n# TYPE h histogram\n"
            "h_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 0.5\nh_count 2\n")
    fams = parse(good)
    eq(fams["a_total"]["samples"][0][1], {"store": 'x"y\\z\n'})
    bad = [
        good.replace("# HELP a_total A.\n", ""),           # no HELP
        good.replace("# TYPE h histogram\n", ""),          # no TYPE
        good.replace("} 3", "}3"),                          # no space
        good.replace("} 3", "} 3 1234"),                    # timestamp
        good.replace("} 3", "} three"),                     # value
        good.replace('le="0.1"} 1', 'le="0.1"} 3'),         # not cumulative
        good.replace("h_count 2", "h_count 3"),             # +Inf != count
        good.replace('h_bucket{le="+Inf"} 2\n', ""),        # no +Inf
        good.replace("x\\\"y", "x\\qy"),                   # bad escape
        good.replace("a_total{", "a_total{1a=\"\","),           # bad label
        good + "a_total{store=\"o\"} 1\n",                 # not together
        good[:-1],                                          # no final NL
    ]
    for i, text in enumerate(bad):
        try:
            parse(text)
        except (AssertionError, IndexError, KeyError):
            continue
        raise AssertionError("bad exposition %d was accepted:\n%s" %
                             (i, text))


@test
def scrape_counts_what_the_master_sent():
    closed = free_port()        # nothing listens there: the replica is down
    relay = relay_with_store(closed)
    try:
        relay.wait_log("event=metrics_listening address=127.0.0.1:%d" %
                       relay.metrics_port)
        before = scrape(relay)
        eq(value(before, "syncrelay_up"), 1)
        eq(value(before, "syncrelay_store_ingested_records_total",
                 store="lab"), 0)
        eq(value(before, "syncrelay_store_master_connected", store="lab"), 0)
        check(value(before, "syncrelay_start_time_seconds") > 1e9)
        c = authed_client(relay.port, "repl", "replpw")
        sent_records = sent_bytes = 0
        for i in range(7):
            cmd = "APPLY SUB %%(USERID u%d MBOXNAME user.u%d.x)" % (i, i)
            eq(c.cmd(cmd + "\r\n"), "OK success")
            sent_records += 1
            sent_bytes += len(cmd)      # journaled as sent, without CRLF
        body = b"From: eve@example.org\r\nSubject: m\r\n\r\n" + b"x" * 5000
        guid = hashlib.sha1(body).hexdigest()
        c.send(b"APPLY MESSAGE (%%{default %s %d}\r\n" %
               (guid.encode(), len(body)) + body + b")\r\n")
        eq(c.line(), "OK success")
        sent_records += 1
        sent_bytes += len(body)
        # Refused commands, counted by the error name of the reply.
        eq(c.cmd("APPLY FROB %(X 1)\r\n"),
           "NO IMAP_PROTOCOL_ERROR Protocol error")
        eq(c.cmd("APPLY MAILBOX (1 2)\r\n"), "NO IMAP_PROTOCOL_BAD_PARAMETERS")
        eq(c.cmd("FROB\r\n"), "BAD IMAP_PROTOCOL_ERROR Unrecognized command")
        eq(c.cmd("COMPRESS DEFLATE\r\n"), "NO Compression is not enabled")
        eq(c.cmd("NOOP\r\n"), "OK Noop completed")

        after = scrape(relay)
        lab = {"store": "lab"}
        eq(value(after, "syncrelay_store_ingested_records_total", **lab),
           sent_records)
        eq(value(after, "syncrelay_store_ingested_bytes_total", **lab),
           sent_bytes)
        head = relay_lsn(relay, "lab")
        eq(head, sent_records)
        eq(value(after, "syncrelay_store_head_lsn", **lab), head)
        eq(value(after, "syncrelay_store_first_lsn", **lab), 1)
        eq(value(after, "syncrelay_store_master_connected", **lab), 1)
        check(value(after, "syncrelay_store_master_last_command_timestamp_"
                    "seconds", **lab) >=
              value(after, "syncrelay_start_time_seconds"))
        check(value(after, "syncrelay_store_journal_bytes", **lab) > 0)
        check(value(after, "syncrelay_store_journal_segments", **lab) >= 1)
        # Each OK waited for its own group commit.
        fs = "syncrelay_journal_fsync_duration_seconds"
        n = value(after, fs, fs + "_count", **lab)
        check(n >= sent_records, "fsyncs %r" % n)
        eq(value(after, fs, fs + "_bucket", le="+Inf", **lab), n)
        check(value(after, fs, fs + "_sum", **lab) > 0)
        errs = {l["code"]: v for name, l, v in
                after["syncrelay_store_errors_total"]["samples"]
                if l["store"] == "lab"}
        eq(errs, {"IMAP_PROTOCOL_ERROR": 2,
                  "IMAP_PROTOCOL_BAD_PARAMETERS": 1, "NO": 1})

        # The replica's port is closed: down, lagging by the whole journal.
        rep = {"store": "lab", "replica": "r1"}
        fams = wait_for(relay, lambda f: value(
            f, "syncrelay_replica_state", state="down", **rep) == 1)
        states = {l["state"]: v for name, l, v in
                  fams["syncrelay_replica_state"]["samples"]
                  if l["replica"] == "r1"}
        eq(set(states), STATES)
        eq(states["down"], 1)
        eq(sum(states.values()), 1)
        eq(value(fams, "syncrelay_replica_lag_records", **rep), head)
        eq(value(fams, "syncrelay_replica_cursor_lsn", **rep), 0)
        eq(value(fams, "syncrelay_replica_replayed_records_total", **rep), 0)

        c.close()
        fams = wait_for(relay, lambda f: value(
            f, "syncrelay_store_master_connected", store="lab") == 0)
        eq(value(fams, "syncrelay_store_master_connected", store="lab"), 0)
    finally:
        eq(relay.stop(), 0)


@test
def only_get_of_metrics_is_served():
    relay = Relay().start()
    try:
        relay.wait_log("event=metrics_listening")
        for path, method, code in [("/", "GET", 404),
                                   ("/metrics/x", "GET", 404),
                                   ("/metrics", "POST", 405),
                                   ("/metrics", "DELETE", 405)]:
            try:
                fetch(relay, path, method)
                raise AssertionError("%s %s answered 200" % (method, path))
            except urllib.error.HTTPError as e:
                eq(e.code, code)
        status, headers, body = fetch(relay, "/metrics", "HEAD")
        eq(status, 200)
        eq(body, "")
        # No stores: the families are there, with no samples.
        fams = scrape(relay)
        eq(fams["syncrelay_store_head_lsn"]["samples"], [])
        # Many scrapes over one keep-alive connection and several at once.
        import http.client
        conns = [http.client.HTTPConnection("127.0.0.1", relay.metrics_port,
                                            timeout=10) for _ in range(4)]
        for _ in range(5):
            for h in conns:
                h.request("GET", "/metrics")
            for h in conns:
                r = h.getresponse()
                eq(r.status, 200)
                parse(r.read().decode())
        for h in conns:
            h.close()
    finally:
        eq(relay.stop(), 0)


@test
def empty_metrics_listen_serves_none():
    relay = Relay("metrics_listen:\n").start()
    try:
        relay.wait_log("event=started")
        check("metrics_listening" not in relay.logtext(), relay.logtext())
    finally:
        eq(relay.stop(), 0)


@test
def busy_metrics_port_stops_the_daemon():
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        relay = Relay("metrics_listen: 127.0.0.1:%d\n" %
                      busy.getsockname()[1])
        r = subprocess.run([SYNCRELAY, "-C", relay.conf, "-f"],
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 1)
        check("event=metrics_listen_failed" in r.stderr and
              "Address already in use" in r.stderr, r.stderr)
    finally:
        busy.close()


# ---- metrics_auth_file: basic authentication -------------------------------

def htpasswd(path, user, password, create=False, scheme="-B"):
    """Adds user to an htpasswd file as apache2-utils' htpasswd does."""
    subprocess.run(["htpasswd", scheme, "-b"] + (["-c"] if create else []) +
                   [path, user, password], check=True, capture_output=True,
                   timeout=30)


def get_auth(relay, user=None, password=None, path="/metrics",
             headers=None):
    """GET with basic auth (or none); returns (status, headers, body)."""
    import base64
    import http.client
    h = http.client.HTTPConnection("127.0.0.1", relay.metrics_port,
                                   timeout=10)
    hdrs = dict(headers or {})
    if user is not None:
        token = base64.b64encode(("%s:%s" % (user, password)).encode())
        hdrs["Authorization"] = "Basic " + token.decode()
    try:
        h.request("GET", path, headers=hdrs)
        r = h.getresponse()
        return r.status, r.headers, r.read().decode("utf-8")
    finally:
        h.close()


def check_refused(relay, *args, **kw):
    status, headers, body = get_auth(relay, *args, **kw)
    eq(status, 401)
    eq(headers["WWW-Authenticate"], 'Basic realm="syncrelay metrics"')
    check("syncrelay_" not in body, body)


@test
def metrics_auth_file_asks_who_is_reading():
    relay = Relay()
    users = os.path.join(relay.dir, "metrics.htpasswd")
    htpasswd(users, "prometheus", "sc4pe-me", create=True)
    htpasswd(users, "grafana", "other pw")
    check(open(users).read().startswith("prometheus:$2y$"), "not bcrypt")
    relay.write_conf("metrics_auth_file: %s\n" % users)
    r = subprocess.run([SYNCRELAY, "-C", relay.conf, "-n"],
                       capture_output=True, text=True, timeout=30)
    eq(r.returncode, 0)
    relay.start()
    try:
        relay.wait_log("event=metrics_listening")
        check_refused(relay)                                # no credentials
        check_refused(relay, "prometheus", "wrong")         # wrong password
        check_refused(relay, "prometheus", "")
        check_refused(relay, "nobody", "sc4pe-me")          # unknown user
        check_refused(relay, "grafana", "sc4pe-me")         # another's pw
        check_refused(relay, path="/")                      # any URL
        status, headers, body = get_auth(relay, "prometheus", "sc4pe-me")
        eq(status, 200)
        parse(body)
        status, _, body = get_auth(relay, "grafana", "other pw")
        eq(status, 200)
        status, _, _ = get_auth(relay, "prometheus", "sc4pe-me", path="/")
        eq(status, 404)
        # As Prometheus scrapes (basic_auth in its scrape_config): its
        # Accept and timeout headers, one keep-alive connection, over and
        # over; the remembered password answers the later ones.
        import base64
        import http.client
        h = http.client.HTTPConnection("127.0.0.1", relay.metrics_port,
                                       timeout=10)
        prom = {
            "Authorization": "Basic " + base64.b64encode(
                b"prometheus:sc4pe-me").decode(),
            "Accept": "application/openmetrics-text;version=1.0.0,"
                      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "User-Agent": "Prometheus/2.42.0",
            "X-Prometheus-Scrape-Timeout-Seconds": "10",
        }
        for _ in range(5):
            h.request("GET", "/metrics", headers=prom)
            r = h.getresponse()
            eq(r.status, 200)
            eq(r.headers["Content-Type"],
               "text/plain; version=0.0.4; charset=utf-8")
            fams = parse(r.read().decode())
            check("syncrelay_store_head_lsn" in fams, str(fams.keys()))
        h.close()
        check_refused(relay, "prometheus", "sc4pe-mE")
    finally:
        eq(relay.stop(), 0)


@test
def metrics_auth_file_is_read_again_on_sighup():
    import signal
    relay = Relay()
    users = os.path.join(relay.dir, "metrics.htpasswd")
    htpasswd(users, "prometheus", "first", create=True)
    relay.write_conf("metrics_auth_file: %s\n" % users)
    relay.start()
    try:
        relay.wait_log("event=metrics_listening")
        eq(get_auth(relay, "prometheus", "first")[0], 200)
        htpasswd(users, "prometheus", "second", create=True)
        relay.signal(signal.SIGHUP)
        relay.wait_log("event=reloaded")
        check_refused(relay, "prometheus", "first")
        eq(get_auth(relay, "prometheus", "second")[0], 200)
        # A file the relay cannot use (htpasswd's MD5 default) is refused
        # on reload, loudly, and the users read before stay.
        htpasswd(users, "prometheus", "third", create=True, scheme="-m")
        relay.signal(signal.SIGHUP)
        relay.wait_log("option=metrics_auth_file")
        check("cannot check" in relay.logtext(), relay.logtext())
        eq(get_auth(relay, "prometheus", "second")[0], 200)
        check_refused(relay, "prometheus", "third")
        # Emptied in the config: no authentication any more.
        relay.write_conf("")
        relay.signal(signal.SIGHUP)
        deadline = time.time() + 10
        while fetch_status(relay) != 200 and time.time() < deadline:
            time.sleep(0.1)
        eq(fetch_status(relay), 200)
    finally:
        eq(relay.stop(), 0)


def fetch_status(relay):
    try:
        return fetch(relay)[0]
    except urllib.error.HTTPError as e:
        return e.code


@test
def an_unusable_metrics_auth_file_is_refused_at_start():
    relay = Relay()
    users = os.path.join(relay.dir, "metrics.htpasswd")
    htpasswd(users, "prometheus", "pw", create=True, scheme="-m")
    for path, say in [(users, "cannot check"),
                      (users + ".missing", "No such file")]:
        relay.write_conf("metrics_auth_file: %s\n" % path)
        r = subprocess.run([SYNCRELAY, "-C", relay.conf, "-n"],
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 1)
        check(say in r.stderr, r.stderr)
        r = subprocess.run([SYNCRELAY, "-C", relay.conf, "-f"],
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 1)
        check("event=metrics_auth_failed" in r.stderr and say in r.stderr,
              r.stderr)


if __name__ == "__main__":
    run("test_metrics.py")
