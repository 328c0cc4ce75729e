#!/usr/bin/env python3
"""DICOM over TLS (PS3.15 Annex B) against peers nobody here wrote.

    tls_interop.py MODE MWL [--sanitized]

The test makes its own certificates with the openssl command: a CA, a server
and a client certificate it signs, and a "rogue" CA with a client
certificate of its own. Modes:

  interop    `mwl serve --tls-port 0 --tls-verify-peer`: DCMTK echoscu +tls
             and findscu +tls (client certificate) are served, the same
             matches as over plain TCP; a client without a certificate, or
             with the rogue one, is refused; plain DICOM sent to the TLS
             port fails and the server goes on serving; TLS 1.2 and 1.3 both
             work and sessions resume (Python's ssl as a third client);
             `mwl echo --tls` / `mwl find --tls` against it, and
             `mwl echo --tls` against DCMTK's storescp +tls (with and
             without the client certificate it requires), against a
             server whose CA it does not trust, and against one whose
             certificate names another host (refused unless
             --tls-no-name-check).
  bad-peers  every malformed-input case of server_test.py's bad-peers mode,
             repeated inside TLS: each gets an A-ABORT or a close on time
             and the server keeps serving (a C-ECHO over TLS after each).

Exit 0 pass, 1 fail, 77 skipped (openssl or DCMTK missing). Every process
is killed by PID on the way out; every wait is bounded.
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings

import server_test as st  # the raw-PDU helpers, Server, failures

HOST = st.HOST


def run(cmd, timeout=60, **kw):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, preexec_fn=st._die_with_parent, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def make_certs(d):
    """CA, server and client certificates (RSA 2048, as DCMTK's BCP 195
    profile expects), and a rogue CA's client certificate."""
    def req(name, cn, ca, ext=None):
        key, csr, crt = (os.path.join(d, name + s) for s in (".key", ".csr", ".crt"))
        rc, out = run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
                       "/CN=" + cn])
        if rc != 0:
            raise RuntimeError("openssl req: " + out)
        cmd = ["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, ca + ".crt"), "-CAkey",
               os.path.join(d, ca + ".key"), "-CAcreateserial", "-out", crt, "-days", "2"]
        if ext:
            extfile = os.path.join(d, name + ".ext")
            with open(extfile, "w") as f:
                f.write(ext)
            cmd += ["-extfile", extfile]
        rc, out = run(cmd)
        if rc != 0:
            raise RuntimeError("openssl x509: " + out)
    for ca in ("ca", "rogue"):
        rc, out = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                       os.path.join(d, ca + ".key"), "-out", os.path.join(d, ca + ".crt"), "-days", "2", "-subj",
                       "/CN=mwl test " + ca])
        if rc != 0:
            raise RuntimeError("openssl CA: " + out)
    req("server", "mwl test server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    req("client", "mwl test client", "ca")
    req("intruder", "mwl test intruder", "rogue")
    # Signed by the trusted CA, but for another host.
    req("misnamed", "elsewhere.invalid", "ca", "subjectAltName=DNS:elsewhere.invalid\n")
    # The right name, but only as the subject's CN (no subjectAltName).
    req("cnonly", "localhost", "ca")
    return {k: os.path.join(d, k) for k in ("ca", "server", "client", "intruder", "rogue", "misnamed", "cnonly")}


class TlsServer(st.Server):
    """`mwl serve` with a TLS listener; .port is the plain one, .tls_port the TLS one."""

    def __init__(self, mwl, tmp, certs, *args, name="tls", verify=True, env=None):
        self.tls_port_file = os.path.join(tmp, name + ".tlsport")
        extra = ["--tls-port", "0", "--tls-port-file", self.tls_port_file, "--tls-cert", certs["server"] + ".crt",
                 "--tls-key", certs["server"] + ".key", "--tls-ca", certs["ca"] + ".crt"]
        if verify:
            extra.append("--tls-verify-peer")
        super().__init__(mwl, tmp, *(extra + list(args)), name=name, env=env)
        self.tls_port = None
        deadline = time.monotonic() + 10
        while self.tls_port is None and time.monotonic() < deadline:
            try:
                with open(self.tls_port_file) as f:
                    text = f.read().strip()
                self.tls_port = int(text) if text else None
            except FileNotFoundError:
                time.sleep(0.02)
        if self.tls_port is None:
            raise RuntimeError("no TLS port: " + self.log_text()[-2000:])


def listening_on(port):
    """The local addresses (hex, as /proc/net/tcp{,6} shows them) of the
    sockets listening on `port`."""
    found = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    addr, hexport = fields[1].split(":")
                    if fields[3] == "0A" and int(hexport, 16) == port:
                        found.add(addr)
        except FileNotFoundError:
            pass
    return found


def client_context(certs, cert="client", version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs["ca"] + ".crt")
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(certs[cert] + ".crt", certs[cert] + ".key")
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_connect_fn(certs):
    ctx = client_context(certs)

    def connect(port, timeout=5.0):
        raw = socket.create_connection((HOST, port), timeout=timeout)
        return ctx.wrap_socket(raw)
    return connect


def echoscu_tls(port, certs, *extra, cert="client"):
    cmd = [shutil.which("echoscu"), "-aec", "MWL", "-to", "10", "-ta", "10"]
    if cert:
        cmd += ["+tls", certs[cert] + ".key", certs[cert] + ".crt"]
    else:
        cmd += ["+tla"]
    cmd += ["+cf", certs["ca"] + ".crt"] + list(extra) + [HOST, str(port)]
    return run(cmd)


def tls_echo(port, certs):
    rc, _ = echoscu_tls(port, certs)
    return rc == 0


def count_find(mwl, port, *extra):
    rc, out = run([mwl, "find", "--aec", "MWL", "--date", "all", "--modality", "CT"] + list(extra) +
                  [HOST, str(port)])
    if rc != 0:
        return -1, out
    for line in out.splitlines():
        if line.endswith(" responses") or line.endswith(" response"):
            return int(line.split()[0]), out
    return -1, out


def mode_interop(mwl, tmp, sanitized, certs):
    db = os.path.join(tmp, "tls.db")
    rc, out = run([mwl, "demo", "--db", db, "--count", "40"])
    if rc != 0:
        st.fail("mwl demo: " + out)
        return 1
    audit = os.path.join(tmp, "audit.jsonl")
    # tls-bind apart from bind: plain DICOM on 127.0.0.1 only, TLS on every
    # address (the tests still connect to 127.0.0.1 alone).
    srv = TlsServer(mwl, tmp, certs, "--db", db, "--log-level", "info", "--audit-log", audit, "--tls-bind", "*")
    try:
        plain, tls = listening_on(srv.port), listening_on(srv.tls_port)
        if plain != {"0100007F"}:
            st.fail("--bind 127.0.0.1: the plain port listens on %s" % sorted(plain))
        if not tls or any(a.strip("0") for a in tls):
            st.fail("--tls-bind *: the TLS port listens on %s, want the wildcard address" % sorted(tls))
        # DCMTK's clients with our client certificate.
        rc, out = echoscu_tls(srv.tls_port, certs, "-v")
        if rc != 0 or "Success" not in out:
            st.fail("echoscu +tls: rc %d\n%s" % (rc, out))
        want, out = count_find(mwl, srv.port)
        rc, out = run([shutil.which("findscu"), "-W", "-aec", "MWL", "-to", "10", "+tls", certs["client"] + ".key",
                       certs["client"] + ".crt", "+cf", certs["ca"] + ".crt", "-k",
                       "ScheduledProcedureStepSequence[0].Modality=CT", "-k", "PatientName", "-k", "PatientID",
                       HOST, str(srv.tls_port)])
        got = out.count("(Pending)")
        st.note("tls: findscu +tls: %d matches (plain mwl find: %d)" % (got, want))
        if rc != 0 or want <= 0 or got != want:
            st.fail("findscu +tls: rc %d, %d matches, want %d\n%s" % (rc, got, want, out[-1500:]))
        # Refusals: no client certificate, a certificate from another CA.
        rc, out = echoscu_tls(srv.tls_port, certs, cert=None)
        if rc == 0:
            st.fail("echoscu +tla without a client certificate was served")
        rc, out = echoscu_tls(srv.tls_port, certs, cert="intruder")
        if rc == 0:
            st.fail("echoscu with the rogue CA's certificate was served")
        log = srv.log_text()
        if "peer did not return a certificate" not in log or "certificate" not in log:
            st.fail("refusals not logged with the TLS reason:\n" + log[-1500:])
        # Plain DICOM on the TLS port: refused cleanly, server still serving.
        try:
            s = socket.create_connection((HOST, srv.tls_port), timeout=5)
            with s:
                s.sendall(st.assoc_rq(st.ECHO_CONTEXTS))
                took, pdus, reset = st.wait_close(s, 10)
                if took is None:
                    st.fail("plain A-ASSOCIATE-RQ on the TLS port: not closed")
                if 2 in pdus:
                    st.fail("plain A-ASSOCIATE-RQ on the TLS port was accepted")
        except OSError as e:
            st.fail("plain on the TLS port: %s" % e)
        if not tls_echo(srv.tls_port, certs):
            st.fail("no TLS C-ECHO after the plain attempt")
        if not st.raw_echo(srv.port):
            st.fail("the plain port stopped serving")
        # Python's ssl: each TLS version, and session resumption.
        for version, name in ((ssl.TLSVersion.TLSv1_2, "1.2"), (ssl.TLSVersion.TLSv1_3, "1.3")):
            ctx = client_context(certs, version=version)
            try:
                s1 = ctx.wrap_socket(socket.create_connection((HOST, srv.tls_port), timeout=5))
                s1.sendall(st.assoc_rq(st.ECHO_CONTEXTS))
                kind, _ = st.recv_pdu(s1)
                s1.sendall(st.RELEASE_RQ)
                st.recv_pdu(s1)
                session = s1.session
                s1.close()
                s2 = ctx.wrap_socket(socket.create_connection((HOST, srv.tls_port), timeout=5), session=session)
                s2.sendall(st.assoc_rq(st.ECHO_CONTEXTS))
                kind2, _ = st.recv_pdu(s2)
                reused = s2.session_reused
                s2.sendall(st.RELEASE_RQ)
                st.recv_pdu(s2)
                s2.close()
                st.note("tls: TLS %s: %s, resumed %s" % (name, "associated" if kind == 2 == kind2 else "refused",
                                                         reused))
                if kind != 2 or kind2 != 2:
                    st.fail("TLS %s: PDU %d / %d" % (name, kind, kind2))
                if not reused:
                    st.fail("TLS %s: the server did not resume the offered session" % name)
            except (OSError, ssl.SSLError, st.Closed, TimeoutError) as e:
                st.fail("TLS %s: %s" % (name, e))
        # TLS 1.1 is refused (BCP 195).
        try:
            ctx = client_context(certs)
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            s = ctx.wrap_socket(socket.create_connection((HOST, srv.tls_port), timeout=5))
            s.close()
            st.fail("a TLS 1.1 handshake succeeded")
        except (ssl.SSLError, OSError) as e:
            # Refused by the server (its alert, and its log line), not by a
            # local OpenSSL that would not offer TLS 1.1 at all.
            if "NO_PROTOCOLS_AVAILABLE" in str(e):
                st.note("tls: this Python's OpenSSL cannot offer TLS 1.1; its refusal is not tested here")
            elif not st.wait_for(lambda: "unsupported protocol" in srv.log_text(), 5):
                st.fail("TLS 1.1: the client failed (%s) but the server logged no 'unsupported protocol'" % e)
            else:
                st.note("tls: TLS 1.1 refused by the server (%s)" % e)
        # Our own client.
        tls_opts = ["--tls-ca", certs["ca"] + ".crt", "--tls-cert", certs["client"] + ".crt", "--tls-key",
                    certs["client"] + ".key"]
        rc, out = run([mwl, "echo", "--aec", "MWL"] + tls_opts + [HOST, str(srv.tls_port)])
        if rc != 0 or "TLS with CN=mwl test server" not in out:
            st.fail("mwl echo --tls: rc %d\n%s" % (rc, out))
        got, out = count_find(mwl, srv.tls_port, *tls_opts)
        if got != want:
            st.fail("mwl find --tls: %d matches, want %d\n%s" % (got, want, out[-1000:]))
        rc, out = run([mwl, "echo", "--aec", "MWL", "--tls", HOST, str(srv.tls_port)])
        if rc == 0 or "certificate verify failed" not in out:
            st.fail("mwl echo --tls trusted a certificate no CA it knows signed: rc %d\n%s" % (rc, out))
        rc, out = run([mwl, "echo", "--aec", "MWL", "--tls-ca", certs["ca"] + ".crt", HOST, str(srv.tls_port)])
        if rc == 0:
            st.fail("mwl echo --tls without a client certificate was served")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            st.fail("server exit %s" % rc)
    # The audit trail names the client certificate, and the refused ones.
    import json
    with open(audit) as f:
        records = [json.loads(line) for line in f]
    if not any(r["event"] == "association" and r["transport"] == "tls" and r["tls_subject"] == "CN=mwl test client"
               and r["result"] == "accepted" for r in records):
        st.fail("no audit record of a TLS association with the client's certificate subject")
    if not any(r["event"] == "connection" and r["transport"] == "tls" and "certificate" in r["reason"]
               for r in records):
        st.fail("no audit record of a refused client certificate")

    # mwl echo --tls against DCMTK's storescp +tls (which requires and
    # verifies a client certificate by default).
    with storescp_tls(tmp, certs, "server") as port:
        rc, out = run([mwl, "echo", "--aec", "STORESCP"] + tls_opts + [HOST, str(port)])
        st.note("tls: mwl echo --tls -> storescp +tls: rc %d" % rc)
        if rc != 0:
            st.fail("mwl echo --tls against storescp +tls: rc %d\n%s" % (rc, out))
        rc, out = run([mwl, "echo", "--aec", "STORESCP", "--tls-ca", certs["ca"] + ".crt", HOST, str(port)])
        if rc == 0:
            st.fail("storescp +tls served mwl echo without a client certificate")
    # A certificate from the trusted CA that names another host is refused
    # (RFC 6125), unless the name check is turned off.
    with storescp_tls(tmp, certs, "misnamed") as port:
        rc, out = run([mwl, "echo", "--aec", "STORESCP"] + tls_opts + [HOST, str(port)])
        st.note("tls: mwl echo --tls -> a certificate for another host: rc %d" % rc)
        if rc == 0 or "mismatch" not in out:
            st.fail("mwl echo --tls accepted a certificate that names another host: rc %d\n%s" % (rc, out))
        rc, out = run([mwl, "echo", "--aec", "STORESCP", "--tls-no-name-check"] + tls_opts + [HOST, str(port)])
        if rc != 0:
            st.fail("mwl echo --tls-no-name-check: rc %d\n%s" % (rc, out))
    # A name only in the CN does not count (RFC 6125 §6.4.4).
    with storescp_tls(tmp, certs, "cnonly") as port:
        rc, out = run([mwl, "echo", "--aec", "STORESCP"] + tls_opts + ["localhost", str(port)])
        st.note("tls: mwl echo --tls localhost -> a certificate with CN=localhost and no SAN: rc %d" % rc)
        if rc == 0 or "mismatch" not in out:
            st.fail("mwl echo --tls took a name from the CN: rc %d\n%s" % (rc, out))
    return 0


class storescp_tls:
    """DCMTK's storescp +tls on a free port with `cert`'s key pair, killed by
    PID on the way out; the context value is its port."""

    def __init__(self, tmp, certs, cert):
        self.tmp, self.certs, self.cert, self.proc = tmp, certs, cert, None

    def start(self):
        # storescp has no "port 0": a free port is picked and may be taken
        # before storescp binds it, so a storescp that exits is retried.
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        c = self.certs
        self.proc = subprocess.Popen([shutil.which("storescp"), "+tls", c[self.cert] + ".key",
                                      c[self.cert] + ".crt", "+cf", c["ca"] + ".crt", "-od", self.tmp, "-aet",
                                      "STORESCP", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     preexec_fn=st._die_with_parent)
        st.children.append(self.proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(5)
        return False

    def __enter__(self):
        for _ in range(3):
            if self.start():
                return self.port
        raise RuntimeError("storescp +tls (%s) never listened" % self.cert)

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait(5)
        return False


def mode_bad_peers(mwl, tmp, sanitized, certs):
    acse, idle = 1.0, 1.0
    slack = st.SLACK * (2 if sanitized else 1)
    srv = TlsServer(mwl, tmp, certs, "--acse-timeout", str(acse), "--idle-timeout", str(idle), "--log-level", "info")
    try:
        # The same cases, each inside TLS: connect() and the C-ECHO that
        # checks the server still serves both go through TLS.
        plain_connect, plain_good = st.connect, st.good_echo
        st.connect = tls_connect_fn(certs)
        st.good_echo = lambda port: tls_echo(port, certs)
        tls_srv = type("S", (), {"port": srv.tls_port})()
        try:
            st.note("bad peers over TLS (acse-timeout %.1f s, idle-timeout %.1f s):" % (acse, idle))
            st.run_bad_peers(tls_srv, acse, idle, slack, report=True)
        finally:
            st.connect, st.good_echo = plain_connect, plain_good
        # A peer that stalls in the handshake itself is dropped on time too.
        s = socket.create_connection((HOST, srv.tls_port), timeout=5)
        with s:
            s.sendall(b"\x16\x03\x01\x00\x80\x01")  # the start of a ClientHello, then nothing
            t0 = time.monotonic()
            took, _, _ = st.wait_close(s, acse + slack + 10)
            st.note("  %-44s closed after %5.3f s" % ("stalled TLS handshake", time.monotonic() - t0))
            if took is None or took > acse + slack:
                st.fail("stalled TLS handshake: closed after %s s (limit %.1f)" % (took, acse + slack))
        if not tls_echo(srv.tls_port, certs):
            st.fail("no TLS C-ECHO after the bad peers")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            st.fail("server exit %s" % rc)
    return 0


def mode_reload(mwl, tmp, sanitized, certs):
    """SIGHUP reads the TLS certificate and key again (renewed files): new
    connections get the new certificate, an association opened before goes
    on with its TLS session."""
    import signal
    srv = TlsServer(mwl, tmp, certs, "--log-level", "info")
    held = None
    try:
        ctx = client_context(certs)
        held = ctx.wrap_socket(socket.create_connection((HOST, srv.tls_port), timeout=5))
        held.sendall(st.assoc_rq(st.ECHO_CONTEXTS))
        if st.recv_pdu(held)[0] != 2:
            st.fail("association before the reload refused")
        before = ssl.DER_cert_to_PEM_cert(held.getpeercert(binary_form=True))
        # Renew the server's certificate in place (a new key, same CA).
        rc, out = run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", certs["server"] + ".key", "-out",
                       certs["server"] + ".csr", "-subj", "/CN=mwl test server renewed"])
        rc2, out2 = run(["openssl", "x509", "-req", "-in", certs["server"] + ".csr", "-CA", certs["ca"] + ".crt",
                         "-CAkey", certs["ca"] + ".key", "-CAcreateserial", "-out", certs["server"] + ".crt", "-days",
                         "2"])
        if rc or rc2:
            st.fail("renewing the certificate: " + out + out2)
        srv.proc.send_signal(signal.SIGHUP)
        if not st.wait_for(lambda: "reload done" in srv.log_text(), 10):
            st.fail("no 'reload done':\n" + srv.log_text()[-1500:])
        fresh = client_context(certs).wrap_socket(socket.create_connection((HOST, srv.tls_port), timeout=5))
        subject = dict(x[0] for x in fresh.getpeercert()["subject"]).get("commonName")
        fresh.close()
        st.note("tls reload: new connections see %r" % subject)
        if subject != "mwl test server renewed":
            st.fail("after the reload the server still shows %r" % subject)
        held.sendall(st.p_data(1, 3, st.echo_rq(9)))
        kind, body = st.recv_pdu(held)
        if kind != 4 or st.command_status(body) != 0:
            st.fail("the TLS association opened before the reload stopped working")
        if ssl.DER_cert_to_PEM_cert(held.getpeercert(binary_form=True)) != before:
            st.fail("the held association's certificate changed")
        held.sendall(st.RELEASE_RQ)
        st.recv_pdu(held)
        # A key that does not belong to the certificate: refused, the
        # running certificate stays.
        shutil.copy(certs["client"] + ".key", certs["server"] + ".key")
        srv.proc.send_signal(signal.SIGHUP)
        if not st.wait_for(lambda: "reload refused" in srv.log_text(), 10):
            st.fail("a mismatched key was not refused")
        if not tls_echo(srv.tls_port, certs):
            st.fail("no TLS C-ECHO after a refused reload")
    finally:
        if held:
            held.close()
        rc, _ = srv.stop()
        if rc != 0:
            st.fail("server exit %s" % rc)
    return 0


def hl7_order(n, today):
    """A 2.5.1 OMI^O23 with one IPC: accession ACC-TLS-n, modality CT."""
    return ("MSH|^~\\&|RIS|RAD|MWL|MWL|%s0800||OMI^O23^OMI_O23|TLS%d|P|2.5.1\r"
            "PID|||PTLS%d^^^HOSP||TLS^PATIENT%d||19800101|F\r"
            "ORC|NW|PL%d|FL%d||SC\r"
            "TQ1|1||||||%s0930\r"
            "OBR|1|PL%d|FL%d|CT1^CT head^L\r"
            "IPC|ACC-TLS-%d|RP%d|1.2.826.0.1.3680043.9.7777.%d|SPS%d|CT|P1^Head^L\r"
            % (today, n, n, n, n, n, today, n, n, n, n, n, n)).encode()


def mllp_exchange(sock, payload, timeout=10):
    """Sends one framed message, returns the ACK payload (bytes)."""
    sock.settimeout(timeout)
    sock.sendall(b"\x0b" + payload + b"\x1c\r")
    data = b""
    while b"\x1c" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the ACK; got %r" % data)
        data += chunk
    return data[data.index(b"\x0b") + 1:data.index(b"\x1c")]


def mode_hl7(mwl, tmp, sanitized, certs):
    """HL7 v2 over MLLP over TLS (hl7-tls): `mwl hl7send --tls` and Python's
    ssl module send orders and get AA, the orders are in the worklist; a
    client without a certificate (verification on) and plain MLLP on the
    TLS port get no ACK and the connection ends on time."""
    today = time.strftime("%Y%m%d")
    db = os.path.join(tmp, "hl7tls.db")
    hport_file = os.path.join(tmp, "hl7.port")
    srv = TlsServer(mwl, tmp, certs, "--db", db, "--hl7-port", "0", "--hl7-port-file", hport_file, "--hl7-tls",
                    "--hl7-station", "CT CT01", "--hl7-idle-timeout", "5", name="hl7tls")
    try:
        if not st.wait_for(lambda: os.path.exists(hport_file) and open(hport_file).read().strip(), 10):
            st.fail("no HL7 port file")
            return 0
        hport = int(open(hport_file).read().strip())
        msg = os.path.join(tmp, "order1.hl7")
        with open(msg, "wb") as f:
            f.write(hl7_order(1, today))
        tls_args = ["--tls-ca", certs["ca"] + ".crt", "--tls-cert", certs["client"] + ".crt", "--tls-key",
                    certs["client"] + ".key"]
        rc, out = run([mwl, "hl7send", "--port", str(hport), "--timeout", "20"] + tls_args + [msg])
        st.note("hl7 over TLS, mwl hl7send: exit %d, %s" % (rc, " / ".join(out.splitlines()[:2])))
        if rc != 0 or "MSA|AA|TLS1" not in out:
            st.fail("mwl hl7send --tls: exit %d\n%s\n%s" % (rc, out, srv.log_text()[-1500:]))
        ctx = client_context(certs)
        with ctx.wrap_socket(socket.create_connection((HOST, hport), timeout=10)) as s:
            ack = mllp_exchange(s, hl7_order(2, today))
        st.note("hl7 over TLS, Python ssl client: %r" % ack.split(b"\r")[1])
        if b"MSA|AA|TLS2" not in ack:
            st.fail("Python ssl MLLP client: %r" % ack)
        n, out = count_find(mwl, srv.port)
        if n != 2:
            st.fail("after two orders over TLS the worklist has %d CT items\n%s" % (n, out))
        # No client certificate while tls-verify-peer is on: no ACK.
        rc, out = run([mwl, "hl7send", "--port", str(hport), "--timeout", "10", "--tls-ca", certs["ca"] + ".crt",
                       msg])
        if rc != 3:
            st.fail("hl7send without a client certificate: exit %d (want 3)\n%s" % (rc, out))
        # Plain MLLP on the TLS port: not answered, closed within the
        # handshake / idle bounds.
        t0 = time.monotonic()
        with socket.create_connection((HOST, hport), timeout=15) as s:
            s.sendall(b"\x0b" + hl7_order(3, today) + b"\x1c\r")
            s.settimeout(15)
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        took = time.monotonic() - t0
        st.note("hl7 plain MLLP on the TLS port: closed after %.1f s, %d bytes back" % (took, len(got)))
        if b"MSA" in got or took > 12:
            st.fail("plain MLLP on the TLS port: %r after %.1f s" % (got[:200], took))
        n, out = count_find(mwl, srv.port)
        if n != 2:
            st.fail("refused senders changed the worklist: %d CT items" % n)
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            st.fail("server exit %s" % rc)
    return 0


MODES = {"interop": mode_interop, "bad-peers": mode_bad_peers, "reload": mode_reload, "hl7": mode_hl7}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        print("usage: tls_interop.py interop|bad-peers|reload|hl7 MWL [--sanitized]")
        return 2
    mode, mwl = sys.argv[1], sys.argv[2]
    sanitized = "--sanitized" in sys.argv[3:]
    for tool in ("openssl", "echoscu", "findscu", "storescp"):
        if shutil.which(tool) is None:
            print("SKIP: %s not installed" % tool)
            return st.SKIP
    tmp = tempfile.mkdtemp(prefix="mwl-tls-")
    t0 = time.monotonic()
    try:
        certs = make_certs(tmp)
        rc = MODES[mode](mwl, tmp, sanitized, certs)
    except Exception as e:
        import traceback
        traceback.print_exc()
        st.fail("%s: %s" % (type(e).__name__, e))
        rc = 1
    finally:
        st.kill_children()
        shutil.rmtree(tmp, ignore_errors=True)
    st.note("tls %s: %.1f s" % (mode, time.monotonic() - t0))
    if st.failures:
        print("tls_interop %s: FAILED (%d problems)" % (mode, len(st.failures)))
        return 1
    print("tls_interop %s: ok" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
