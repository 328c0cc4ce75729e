#!/usr/bin/env python3
"""C-ECHO associations per second over TLS: `mwl serve --tls-port` against
DCMTK's storescp +tls, in the same run.

  bench/tls_echo_bench.py [--mwl build/mwl] [--seconds 3] [--clients 1,4]

Makes a CA, a server and a client certificate (RSA 2048, the openssl
command), starts `mwl serve --tls-port` (requiring the client certificate)
and DCMTK's storescp +tls (which requires it by default; it answers C-ECHO,
and wlmscpfs has no TLS), both on free ports of 127.0.0.1 with Nagle's
algorithm off (DCMTK: TCP_NODELAY in the environment). Then, for each client
count, measures complete associations per second: TCP connect, TLS
handshake, A-ASSOCIATE-RQ/AC, one C-ECHO, A-RELEASE-RQ/RP, close. Twice:
with full handshakes, and with each client offering the session the server
gave it last (resumption: TLS 1.3 tickets or TLS 1.2 session IDs), reporting
how many handshakes the server resumed. The client is the same Python ssl
loop for both servers (one process per client). Prints associations/s and
the ratio mwl/storescp. Not a test; every process is stopped by PID.
"""
import argparse
import multiprocessing
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import echo_bench as eb

HOST = eb.HOST


def make_certs(d):
    def run(cmd):
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
         d + "/ca.crt", "-days", "2", "-subj", "/CN=bench CA"])
    for n in ("server", "client"):
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s/%s.key" % (d, n), "-out",
             "%s/%s.csr" % (d, n), "-subj", "/CN=bench " + n])
        run(["openssl", "x509", "-req", "-in", "%s/%s.csr" % (d, n), "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key",
             "-CAcreateserial", "-out", "%s/%s.crt" % (d, n), "-days", "2"])


def context(d):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(d + "/ca.crt")
    ctx.load_cert_chain(d + "/client.crt", d + "/client.key")
    return ctx


def one_association(port, ctx, session):
    """(ok, the session to offer next, whether this one was resumed)"""
    raw = socket.create_connection((HOST, port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with ctx.wrap_socket(raw, session=session) as s:
        s.sendall(eb.RQ)
        if eb.recv_pdu(s)[0] != 2:
            return False, None, False
        s.sendall(eb.ECHO)
        if eb.recv_pdu(s)[0] != 4:
            return False, None, False
        s.sendall(eb.RELEASE)
        ok = eb.recv_pdu(s)[0] == 6
        return ok, s.session, s.session_reused


def client(port, d, resume, start_at, stop_at, out):
    ctx = context(d)
    ok = bad = reused = 0
    session = None
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        try:
            good, sess, was = one_association(port, ctx, session if resume else None)
            ok += good
            bad += not good
            reused += was
            session = sess
        except (OSError, EOFError, ssl.SSLError):
            bad += 1
    out.put((ok, bad, reused))


def measure(port, d, clients, seconds, resume):
    ctx = context(d)
    for _ in range(10):
        one_association(port, ctx, None)
    q = multiprocessing.Queue()
    start = time.time() + 0.3
    stop = start + seconds
    procs = [multiprocessing.Process(target=client, args=(port, d, resume, start, stop, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(10)
    ok = sum(r[0] for r in results)
    return ok / seconds, sum(r[1] for r in results), sum(r[2] for r in results), ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--mwl", default=os.path.join(here, "..", "build", "mwl"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", default="1,4")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    storescp = shutil.which("storescp")
    if not shutil.which("openssl"):
        sys.exit("needs the openssl command")
    d = tempfile.mkdtemp(prefix="mwl-tlsbench-")
    procs = []
    try:
        make_certs(d)
        servers = []
        port = eb.free_port()
        p = subprocess.Popen([args.mwl, "serve", "--port", "0", "--bind", HOST, "--tls-port", str(port), "--tls-cert",
                              d + "/server.crt", "--tls-key", d + "/server.key", "--tls-ca", d + "/ca.crt",
                              "--tls-verify-peer", "--log-level", "error", "--db", d + "/mwl.db"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        servers.append(("mwl serve", port, p))
        if storescp:
            port = eb.free_port()
            p = subprocess.Popen([storescp, "+tls", d + "/server.key", d + "/server.crt", "+cf", d + "/ca.crt",
                                  "-od", d, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=dict(os.environ, TCP_NODELAY="1"))
            procs.append(p)
            servers.append(("storescp +tls", port, p))
        else:
            print("storescp (DCMTK) not installed: measuring mwl only")
        for name, port, p in servers:
            if not eb.wait_listening(port, p):
                sys.exit("%s did not start" % name)
        rates = {}
        for resume in (False, True):
            for n in counts:
                for name, port, _ in servers:
                    rate, bad, reused, total = measure(port, d, n, args.seconds, resume)
                    rates[(name, n, resume)] = rate
                    print("%-14s %d client%s %-20s %8.1f associations/s  (%d failed, %d of %d resumed)" %
                          (name, n, "" if n == 1 else "s", "resuming sessions" if resume else "full handshakes",
                           rate, bad, reused, total))
        if storescp:
            for resume in (False, True):
                for n in counts:
                    a, b = rates[("mwl serve", n, resume)], rates[("storescp +tls", n, resume)]
                    print("ratio mwl/storescp, %d client%s, %s: %.2f" % (n, "" if n == 1 else "s",
                                                                       "resuming" if resume else "full", a / b if b
                                                                       else float("inf")))
    finally:
        for p in procs:
            eb.stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
