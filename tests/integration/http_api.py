#!/usr/bin/env python3
"""The HTTP listener of `mwl serve` (issue 13, first part), with Python's
urllib and with curl (an HTTP client nobody here wrote).

  http_api.py MWL

1. A server with --http-port 0 --http-port-file on 127.0.0.1 and no tokens:
   GET /healthz is 200 "ok" (urllib and curl); after one `mwl echo`,
   GET /metrics is text/plain version 0.0.4 whose every line is a comment
   (# HELP / # TYPE) or a sample `name{labels} value`, with
   mwl_echo_total 1, mwl_associations_total 1 and the other counters the
   server keeps; an unknown path is 404 with a JSON body; POST and DELETE
   on /metrics are 405 with `Allow: GET, HEAD` and a JSON body; HEAD
   /metrics is 200 without a body; a malformed request line
   ("GET /metrics HTTP/9.9 extra") gets 400; a request line without a URI,
   one of 64 KiB, binary junk, a bad header line and a connection that
   sends half a request and goes get a 4xx or a close, never a 500 or a
   crash, and the server still answers HTTP and
   DICOM (mwl echo) afterwards; SIGTERM stops it with exit 0.
2. A non-loopback --http-bind without --http-tokens-file: exit 2 with a
   message naming http-tokens-file.
3. A server with --http-tokens-file (a read token and a write token): no
   Authorization header and a wrong token are 401 with WWW-Authenticate
   Bearer (urllib and curl), the read token gets 200 /metrics, the write
   token too; /healthz needs no token; an unknown path without a token is
   401 (nothing can be probed), with the token 404; a tokens file with a
   short token refuses to start (exit 2).
Exit 0 pass, 1 fail, 77 skipped (curl missing).
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import harness
from harness import Failure, check

HOST = "127.0.0.1"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$')
READ_TOKEN = "r3ad-t0ken-0123456789abcdef"
WRITE_TOKEN = "wr1te-t0ken-0123456789abcdef"


class Server:
    def __init__(self, mwl, tmp, name, *extra):
        self.port_file = os.path.join(tmp, name + ".port")
        self.http_port_file = os.path.join(tmp, name + ".http")
        self.err_path = os.path.join(tmp, name + ".err")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--port", "0",
                                          "--port-file", self.port_file, "--bind", HOST, "--http-port", "0",
                                          "--http-port-file", self.http_port_file, "--log-level", "debug", *extra],
                                         stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=harness.die_with_parent)
        harness.STARTED.append(self.proc)
        end = time.monotonic() + 15
        while time.monotonic() < end and self.proc.poll() is None and not os.path.exists(self.port_file):
            time.sleep(0.05)
        check(os.path.exists(self.port_file), f"{name}: no port file (exit {self.proc.poll()}): {self.log()}")
        with open(self.port_file) as f:
            self.port = int(f.read())
        with open(self.http_port_file) as f:
            self.http_port = int(f.read())
        self.url = f"http://{HOST}:{self.http_port}"

    def log(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        check(rc == 0, f"serve exit {rc} after SIGTERM: {self.log()[-2000:]}")


def get(url, method="GET", token=None):
    """(status, headers, body) with urllib; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def curl(url, *args):
    """(status, headers text, body) with curl."""
    p = subprocess.run(["curl", "-s", "-S", "--max-time", "10", "-D", "-", "-o", "/dev/stderr", *args, url],
                       capture_output=True, timeout=30)
    check(p.returncode == 0, f"curl {url}: exit {p.returncode}: {p.stderr!r}")
    head = p.stdout.decode("latin-1")
    status = int(head.split(" ", 2)[1])
    return status, head, p.stderr


def echo(mwl, srv):
    p = subprocess.run([mwl, "echo", HOST, str(srv.port)], capture_output=True, timeout=60)
    check(p.returncode == 0, f"mwl echo: exit {p.returncode}: {p.stderr!r}")


def json_error(body, status):
    try:
        obj = json.loads(body)
    except ValueError:
        raise Failure(f"{status} body is not JSON: {body!r}")
    check(obj.get("status") == status and isinstance(obj.get("error"), str), f"{status} body {obj}")


def parse_metrics(text):
    """{name or name{labels}: value}; every line must be a comment or a sample."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"not a Prometheus sample line: {line!r}")
        out[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def raw(port, data, wait=5.0):
    """Sends bytes on a fresh connection; what comes back until close/timeout."""
    got = b""
    with socket.create_connection((HOST, port), timeout=wait) as s:
        try:
            # the server may answer and close before it has read it all
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
        except OSError:
            pass
    return got


def open_server(mwl, tmp):
    srv = Server(mwl, tmp, "open")
    try:
        for status, body in (get(srv.url + "/healthz")[0::2], curl(srv.url + "/healthz")[0::2]):
            check(status == 200 and body == b"ok\n", f"/healthz: {status} {body!r}")
        echo(mwl, srv)
        status, headers, body = get(srv.url + "/metrics")
        check(status == 200, f"/metrics: {status}")
        check(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"])
        m = parse_metrics(body.decode())
        for name, want in (("mwl_echo_total", 1), ("mwl_associations_total", 1),
                           ("mwl_cfind_matches_total", 0), ("mwl_cfind_cancels_total", 0),
                           ("mwl_associations_active", 0)):
            check(m.get(name) == want, f"{name} = {m.get(name)}, wanted {want}")
        # mwl_cfind_total is labelled by status and calling AE: no C-FIND, no sample.
        cfinds = sum(v for k, v in m.items() if k.startswith("mwl_cfind_total"))
        check(cfinds == 0, f"mwl_cfind_total samples sum to {cfinds}, wanted 0")
        status, head, body = curl(srv.url + "/metrics")
        check(status == 200 and parse_metrics(body.decode()).get("mwl_echo_total") == 1, f"curl /metrics {status}")

        status, _, body = get(srv.url + "/no/such/thing")
        check(status == 404, f"unknown path: {status}")
        json_error(body, 404)
        status, head, body = curl(srv.url + "/nope")
        check(status == 404 and "application/json" in head, f"curl 404: {status} {head}")
        json_error(body, 404)
        for method in ("POST", "DELETE"):
            status, headers, body = get(srv.url + "/metrics", method=method)
            check(status == 405 and headers["Allow"] == "GET, HEAD", f"{method} /metrics: {status} {headers}")
            json_error(body, 405)
        status, head, body = curl(srv.url + "/metrics", "-X", "PUT")
        check(status == 405 and re.search(r"(?im)^Allow: GET, HEAD\r?$", head), f"curl PUT: {status} {head}")
        status, _, body = get(srv.url + "/metrics", method="HEAD")
        check(status == 200 and body == b"", f"HEAD /metrics: {status} {body[:40]!r}")

        # Bad input: a request line libmicrohttpd can split but not accept
        # is 400; one it cannot split at all (no URI) is closed without an
        # answer (the library decides); never a 500, never a crash.
        got = raw(srv.http_port, b"GET /metrics HTTP/9.9 extra\r\n\r\n")
        check(got.startswith(b"HTTP/1.1 400 "), f"malformed request line: {got[:80]!r}")
        for data in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /metrics HTTP/9.9 extra\r\n\r\n",
                     b"GET " + b"/" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\xff\r\n\r\n",
                     b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"):
            got = raw(srv.http_port, data)
            check(got == b"" or re.match(rb"HTTP/1\.[01] (400|413|414|431|505) ", got),
                  f"{data[:30]!r}...: answered {got[:80]!r}")
            check(not got.startswith(b"HTTP/1.1 500") and srv.proc.poll() is None, f"{data[:30]!r}: server died")
        with socket.create_connection((HOST, srv.http_port), timeout=5) as s:
            s.sendall(b"GET /metr")  # and gone
        check(get(srv.url + "/healthz")[0] == 200, "/healthz after bad requests")
        echo(mwl, srv)
        m = parse_metrics(get(srv.url + "/metrics")[2].decode())
        check(m.get("mwl_echo_total") == 2, f"mwl_echo_total {m.get('mwl_echo_total')} after the second echo")
    finally:
        srv.stop()


def peer_limit(mwl, tmp):
    """max-peer-connections also bounds HTTP connections from one address:
    over it a new connection is closed unanswered, counted and logged; when
    one ends there is room again."""
    srv = Server(mwl, tmp, "peers", "--max-peer-connections", "2")
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection((HOST, srv.http_port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            check(s.recv(4096).startswith(b"HTTP/1.1 200 "), "a kept-alive connection within the limit")
            held.append(s)
        got = raw(srv.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        check(got == b"", f"a third connection from the address was answered: {got[:60]!r}")
        end = time.monotonic() + 10  # the socket is closed before the line is logged
        while time.monotonic() < end and "max-peer-connections (2) reached" not in srv.log():
            time.sleep(0.05)
        check("max-peer-connections (2) reached" in srv.log(), "no log line for the refused connection")
        held.pop().close()
        status = None
        end = time.monotonic() + 10
        while time.monotonic() < end and status != 200:
            try:
                status = get(srv.url + "/healthz")[0]
            except OSError:
                time.sleep(0.1)
        check(status == 200, f"no room after a connection ended: {status}")
        for s in held:
            s.close()
        held = []
        body = None
        end = time.monotonic() + 10
        while time.monotonic() < end and body is None:
            try:  # the connection just used may not be gone yet
                body = get(srv.url + "/metrics")[2]
            except OSError:
                time.sleep(0.1)
        check(body is not None, "/metrics after the limit")
        m = parse_metrics(body.decode())
        check(m.get("mwl_http_connections_refused_total", 0) >= 1,
              f"mwl_http_connections_refused_total {m.get('mwl_http_connections_refused_total')}")
        check(m.get("mwl_http_connections_total", 0) >= 3,
              f"mwl_http_connections_total {m.get('mwl_http_connections_total')}")
    finally:
        for s in held:
            s.close()
        srv.stop()


def refused_bind(mwl, tmp):
    p = subprocess.run([mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--port", "0", "--bind", HOST,
                        "--http-port", "0", "--http-bind", "*"], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 2 and "http-tokens-file" in err, f"--http-bind * without tokens: exit {p.returncode} {err}")


def token_server(mwl, tmp):
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write("# role per token\n%s read\n\n%s write\n" % (READ_TOKEN, WRITE_TOKEN))
    srv = Server(mwl, tmp, "tokens", "--http-tokens-file", tokens)
    try:
        for token in (None, "wrong-token-0123456789abcdef", READ_TOKEN + "x", READ_TOKEN[:-1], ""):
            status, headers, body = get(srv.url + "/metrics", token=token)
            check(status == 401 and headers["WWW-Authenticate"].startswith("Bearer"),
                  f"/metrics with token {token!r}: {status}")
            json_error(body, 401)
        status, head, _ = curl(srv.url + "/metrics")
        check(status == 401, f"curl /metrics without a token: {status}")
        status, head, _ = curl(srv.url + "/metrics", "-H", "Authorization: Bearer nope-nope-nope-nope")
        check(status == 401, f"curl /metrics with a bad token: {status}")
        status, head, body = curl(srv.url + "/metrics", "-H", "Authorization: Bearer " + READ_TOKEN)
        check(status == 200 and "mwl_echo_total" in parse_metrics(body.decode()), f"curl read token: {status}")
        for token in (READ_TOKEN, WRITE_TOKEN):
            status, _, body = get(srv.url + "/metrics", token=token)
            check(status == 200 and "mwl_associations_total" in parse_metrics(body.decode()), f"token: {status}")
        check(get(srv.url + "/healthz")[0] == 200, "/healthz needs no token")
        check(get(srv.url + "/nope")[0] == 401, "unknown path without a token is not 401")
        check(get(srv.url + "/nope", token=READ_TOKEN)[0] == 404, "unknown path with a token is not 404")
        echo(mwl, srv)
        check("401" in srv.log(), "no log line for the 401s")
        check(READ_TOKEN not in srv.log(), "a token in the log")
    finally:
        srv.stop()
    with open(tokens, "w") as f:
        f.write("short read\n")
    p = subprocess.run([mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--port", "0", "--bind", HOST,
                        "--http-port", "0", "--http-tokens-file", tokens], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 2 and "line 1" in err and "short" not in err, f"short token: exit {p.returncode} {err}")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    harness.need("curl")
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-http-") as tmp:
        open_server(mwl, tmp)
        peer_limit(mwl, tmp)
        refused_bind(mwl, tmp)
        token_server(mwl, tmp)
    print("http_api: ok")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, harness.on_signal)
    try:
        sys.exit(main(sys.argv))
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        harness.kill_started()
