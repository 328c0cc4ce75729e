#!/usr/bin/env python3
"""HTTPS for `mwl serve --http-port` (issue 13): --http-tls-cert and
--http-tls-key, checked with curl and Python's ssl module (clients nobody
here wrote) against certificates this test makes with the openssl CLI.

  http_tls.py MWL

1. A server with --http-tls-cert/--http-tls-key and a tokens file on
   127.0.0.1: `curl --cacert ca.crt https://127.0.0.1:PORT/healthz` is 200
   "ok"; a Python client trusting only the CA gets /metrics 200 with the
   read token and 401 without, over TLS 1.2 or 1.3 with an AEAD suite; a
   client pinned to TLS 1.2 gets an ECDHE AEAD suite. Refused at the
   handshake: TLS 1.1 (curl and Python), TLS 1.2 offering only RSA key
   exchange (no forward secrecy) or only CBC suites. Plain HTTP to the
   HTTPS port gets no HTTP answer and the connection is closed within
   15 s. A client that does not trust the CA fails. SIGHUP logs that the
   certificate waits for a restart and HTTPS still answers; DICOM (mwl echo)
   too; SIGTERM exits 0.
2. Start-up refusals, exit 2 with a message naming the key: a certificate
   path that does not exist (http-tls-cert), a certificate without a key
   (http-tls-cert), a key file that is no PEM (http-tls-key), a key that
   does not belong to the certificate (both named), and HTTPS on a
   non-loopback --http-bind without --http-tokens-file (http-tokens-file).
Exit 0 pass, 1 fail, 77 skipped (openssl or curl missing).
"""
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

import harness
import http_api
from harness import check

HOST = http_api.HOST
READ_TOKEN = http_api.READ_TOKEN


def openssl(*args):
    p = subprocess.run(["openssl", *args], capture_output=True, timeout=60)
    check(p.returncode == 0, f"openssl {args[0]}: {p.stderr!r}")


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, and
    a second, unrelated key; paths without suffix."""
    ca, srv = os.path.join(d, "ca"), os.path.join(d, "server")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out", ca + ".crt", "-days",
            "2", "-subj", "/CN=mwl http test ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", srv + ".key", "-out", srv + ".csr", "-subj",
            "/CN=mwl http test server")
    with open(srv + ".ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", srv + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", srv + ".crt", "-days", "2", "-extfile", srv + ".ext")
    other = os.path.join(d, "other.key")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other)
    return ca, srv, other


def client_context(ca, **pin):
    ctx = ssl.create_default_context(cafile=ca + ".crt")
    for k, v in pin.items():
        setattr(ctx, k, v)
    return ctx


def https_get(port, path, ctx, token=None):
    """(status, body, TLS version, cipher name) over one TLS connection."""
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            req = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
            if token:
                req += f"Authorization: Bearer {token}\r\n"
            s.sendall((req + "\r\n").encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            version, cipher = s.version(), s.cipher()[0]
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body, version, cipher


def handshake_fails(port, ctx, what):
    try:
        https_get(port, "/healthz", ctx)
    except (ssl.SSLError, OSError):
        return
    raise harness.Failure(f"{what}: the handshake succeeded")


def plain_to_tls_port(port):
    """Plain HTTP on the HTTPS port: no HTTP answer, closed in bounded time."""
    start = time.monotonic()
    got = b""
    with socket.create_connection((HOST, port), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise harness.Failure("plain HTTP on the HTTPS port: still open after 20 s")
    took = time.monotonic() - start
    check(not got.startswith(b"HTTP/"), f"plain HTTP on the HTTPS port got an HTTP answer: {got[:80]!r}")
    check(took < 15, f"plain HTTP on the HTTPS port: closed after {took:.1f} s")


def serving(mwl, tmp, ca, srv):
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write(f"{READ_TOKEN} read\n")
    server = http_api.Server(mwl, tmp, "https", "--http-tls-cert", srv + ".crt", "--http-tls-key", srv + ".key",
                             "--http-tokens-file", tokens)
    port = server.http_port
    try:
        url = f"https://{HOST}:{port}"
        status, _, body = http_api.curl(url + "/healthz", "--cacert", ca + ".crt")
        check(status == 200 and body.strip() == b"ok", f"curl https /healthz: {status} {body!r}")

        ctx = client_context(ca)
        status, body, version, cipher = https_get(port, "/metrics", ctx, READ_TOKEN)
        check(status == 200 and b"mwl_associations_total" in body, f"/metrics with a token: {status}")
        check(version in ("TLSv1.2", "TLSv1.3"), f"version {version}")
        check("GCM" in cipher or "CHACHA20" in cipher, f"cipher {cipher} is not AEAD")
        status, _, _, _ = https_get(port, "/metrics", ctx)
        check(status == 401, f"/metrics without a token over TLS: {status}")
        # urllib as well: an ordinary HTTPS client, certificate and name checked.
        req = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + READ_TOKEN})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            check(r.status == 200, f"urllib /metrics: {r.status}")

        status, _, version, cipher = https_get(port, "/healthz",
                                               client_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2))
        check(status == 200 and version == "TLSv1.2", f"TLS 1.2: {status} {version}")
        check(cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher),
              f"TLS 1.2 suite {cipher}: want ECDHE with AEAD")

        # Refusals. TLS 1.1: curl, and Python with OpenSSL's own floor
        # lowered so that the server, not the client, is what says no.
        p = subprocess.run(["curl", "-s", "--max-time", "10", "--cacert", ca + ".crt", "--tlsv1.1", "--tls-max",
                            "1.1", url + "/healthz"], capture_output=True, timeout=30)
        check(p.returncode != 0 and p.stdout != b"ok", f"curl TLS 1.1: exit {p.returncode} {p.stdout!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = client_context(ca, minimum_version=ssl.TLSVersion.TLSv1_1,
                                 maximum_version=ssl.TLSVersion.TLSv1_1)
        old.set_ciphers("ALL:@SECLEVEL=0")
        handshake_fails(port, old, "TLS 1.1")
        rsa_kx = client_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2)
        rsa_kx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384")
        handshake_fails(port, rsa_kx, "TLS 1.2 with RSA key exchange only")
        cbc = client_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2)
        cbc.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256")
        handshake_fails(port, cbc, "TLS 1.2 with CBC suites only")
        handshake_fails(port, ssl.create_default_context(), "a client without the CA")

        plain_to_tls_port(port)
        check(server.proc.poll() is None, "the server died")

        server.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while time.monotonic() < end and "a new HTTP certificate needs a restart" not in server.log():
            time.sleep(0.05)
        check("a new HTTP certificate needs a restart" in server.log(), "no reload warning for http-tls-cert")
        status, _, body = http_api.curl(url + "/healthz", "--cacert", ca + ".crt")
        check(status == 200 and body.strip() == b"ok", f"after SIGHUP: {status} {body!r}")
        http_api.echo(mwl, server)
        check(READ_TOKEN not in server.log(), "a token in the log")
    finally:
        server.stop()


def refused(mwl, tmp, name, args, *words):
    p = subprocess.run([mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--port", "0", "--bind", HOST,
                        "--http-port", "0", *args], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 2 and all(w in err for w in words), f"{name}: exit {p.returncode}: {err}")


def start_up_refusals(mwl, tmp, srv, other):
    missing = os.path.join(tmp, "no-such.crt")
    refused(mwl, tmp, "missing certificate", ["--http-tls-cert", missing, "--http-tls-key", srv + ".key"],
            "http-tls-cert", missing)
    refused(mwl, tmp, "certificate without key", ["--http-tls-cert", srv + ".crt"], "http-tls-cert",
            "http-tls-key")
    junk = os.path.join(tmp, "junk.key")
    with open(junk, "w") as f:
        f.write("not a key\n")
    refused(mwl, tmp, "key not PEM", ["--http-tls-cert", srv + ".crt", "--http-tls-key", junk], "http-tls-key",
            "not a PEM file")
    refused(mwl, tmp, "key of another certificate", ["--http-tls-cert", srv + ".crt", "--http-tls-key", other],
            "http-tls-cert", "http-tls-key")
    refused(mwl, tmp, "beyond loopback without tokens",
            ["--http-tls-cert", srv + ".crt", "--http-tls-key", srv + ".key", "--http-bind", "*"],
            "http-tokens-file")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    harness.need("curl", "openssl")
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-https-") as tmp:
        ca, srv, other = make_certs(tmp)
        start_up_refusals(mwl, tmp, srv, other)
        serving(mwl, tmp, ca, srv)
    print("http_tls: ok")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, harness.on_signal)
    try:
        sys.exit(main(sys.argv))
    except harness.Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        harness.kill_started()
