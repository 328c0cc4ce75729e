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
   15 s. A client that does not trust the CA fails. Reload: the files
   are replaced by a renewed certificate (another key, another subject)
   and SIGHUP puts it in place: new connections get it, a TLS connection
   kept alive from before still answers. A SIGHUP with the same files
   installs nothing. A key that does not belong to the certificate
   refuses the whole reload before anything changed (a token added and a
   calling-aet-allow rule that would refuse mwl echo, in the same reload,
   take no effect; the renewed certificate stays); mended, the
   reload goes through. DICOM (mwl echo) answers throughout; SIGTERM
   exits 0.
2. Start-up refusals, exit 2 with a message naming the key: a certificate
   path that does not exist (http-tls-cert), a certificate without a key
   (http-tls-cert), a key file that is no PEM (http-tls-key), a key that
   does not belong to the certificate (both named), and HTTPS on a
   non-loopback --http-bind without --http-tokens-file (http-tokens-file).
Exit 0 pass, 1 fail, 77 skipped (openssl or curl missing).
"""
import os
import shutil
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


def server_cert(ca, path, cn):
    """A server certificate for 127.0.0.1/localhost signed by the CA."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", path + ".key", "-out", path + ".csr", "-subj",
            "/CN=" + cn)
    with open(path + ".ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", path + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", path + ".crt", "-days", "2", "-extfile", path + ".ext")


def make_certs(d):
    """A CA, two server certificates signed by it (the second a renewal),
    and an unrelated key; paths without suffix."""
    ca, srv, renewed = os.path.join(d, "ca"), os.path.join(d, "server"), os.path.join(d, "renewed")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out", ca + ".crt", "-days",
            "2", "-subj", "/CN=mwl http test ca")
    server_cert(ca, srv, "mwl http test server")
    server_cert(ca, renewed, "mwl http test server renewed")
    other = os.path.join(d, "other.key")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other)
    return ca, srv, renewed, other


def peer_cn(port, ctx):
    """The common name of the certificate the server presents."""
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
    return subject.get("commonName")


def keep_alive_get(s, path):
    """One request on an open TLS connection that stays open: the status."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        check(chunk != b"", "the kept-alive TLS connection was closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = s.recv(4096)
        check(chunk != b"", "the kept-alive TLS connection was closed in the middle of an answer")
        body += chunk
    return int(head.split(b" ", 2)[1])


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


def wait_log(server, text, what):
    end = time.monotonic() + 10
    while time.monotonic() < end and text not in server.log():
        time.sleep(0.05)
    check(text in server.log(), f"{what}: no log line {text!r}")


def serving(mwl, tmp, ca, srv, renewed, other):
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write(f"{READ_TOKEN} read\n")
    # The files the server reads: replaced in place by the reload test.
    live = os.path.join(tmp, "live")
    shutil.copyfile(srv + ".crt", live + ".crt")
    shutil.copyfile(srv + ".key", live + ".key")
    # A config file the reload reads too (empty: the flags say it all).
    conf = os.path.join(tmp, "serve.conf")
    open(conf, "w").close()
    server = http_api.Server(mwl, tmp, "https", "--config", conf, "--http-tls-cert", live + ".crt",
                             "--http-tls-key", live + ".key", "--http-tokens-file", tokens)
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

        # Reload: a renewed certificate under the same paths.
        check(peer_cn(port, ctx) == "mwl http test server", "the first certificate is not served")
        with socket.create_connection((HOST, port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOST) as kept:
                check(keep_alive_get(kept, "/healthz") == 200, "kept-alive connection before the reload")
                shutil.copyfile(renewed + ".crt", live + ".crt")
                shutil.copyfile(renewed + ".key", live + ".key")
                server.proc.send_signal(signal.SIGHUP)
                wait_log(server, "reload: HTTPS certificate", "renewal")
                check("mwl http test server renewed" in server.log(), "the log does not name the new subject")
                check(peer_cn(port, ctx) == "mwl http test server renewed", "the renewed certificate is not served")
                check(keep_alive_get(kept, "/healthz") == 200, "kept-alive connection after the reload")
        status, _, body = http_api.curl(url + "/healthz", "--cacert", ca + ".crt")
        check(status == 200 and body.strip() == b"ok", f"curl after the renewal: {status} {body!r}")
        http_api.echo(mwl, server)
        # SIGHUP with the same certificate: nothing new is installed.
        server.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while time.monotonic() < end and server.log().count("reload done") < 2:
            time.sleep(0.05)
        check(server.log().count("reload done") == 2, "the second reload did not finish")
        check(server.log().count("reload: HTTPS certificate") == 1, "an unchanged certificate was installed again")
        # A key that does not belong: the whole reload is refused before
        # anything changed -- a token added to the tokens file in the same
        # reload does not work -- and the renewed certificate stays.
        new_token = "n3w-t0ken-0123456789abcdef"
        with open(tokens, "a") as f:
            f.write(f"{new_token} read\n")
        with open(conf, "w") as f:  # would refuse mwl echo's calling AE title
            f.write("calling-aet-allow = NOBODY\n")
        shutil.copyfile(other, live + ".key")
        server.proc.send_signal(signal.SIGHUP)
        wait_log(server, "does not belong to the certificate", "mismatched key")
        check("reload refused" in server.log(), "a mismatched key was not a refused reload")
        check(peer_cn(port, ctx) == "mwl http test server renewed", "a refused reload changed the certificate")
        status, _, _, _ = https_get(port, "/metrics", ctx, new_token)
        check(status == 401, f"a token from a refused reload works: {status}")
        http_api.echo(mwl, server)  # the server's own keys did not change either
        # The key mended: the reload goes through, the new token works.
        open(conf, "w").close()
        shutil.copyfile(renewed + ".key", live + ".key")
        server.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while time.monotonic() < end and server.log().count("reload done") < 3:
            time.sleep(0.05)
        status, _, _, _ = https_get(port, "/metrics", ctx, new_token)
        check(status == 200, f"the new token after the mended reload: {status}")
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
        ca, srv, renewed, other = make_certs(tmp)
        start_up_refusals(mwl, tmp, srv, other)
        serving(mwl, tmp, ca, srv, renewed, other)
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
