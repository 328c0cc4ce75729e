#!/usr/bin/env python3
"""C-ECHO association throughput: `mwl serve` against DCMTK's wlmscpfs.

  bench/echo_bench.py [--mwl build/mwl] [--seconds 3] [--clients 1,4]

Starts both servers on free ports of 127.0.0.1 (wlmscpfs with an empty
worklist folder holding one empty AE folder: as it comes, and with the
environment variable TCP_NODELAY set, which makes DCMTK disable Nagle's
algorithm, in its default fork-per-association mode and with
--single-process), then measures complete
associations per second: connect, A-ASSOCIATE-RQ/AC, one C-ECHO,
A-RELEASE-RQ/RP, close. The client is the same raw-PDU Python loop for every
server (one process per client, so the clients run in parallel), so its
cost is identical on both sides; each measurement runs for --seconds after
a short warm-up. Prints associations/s for each server and client count and
the ratio mwl/wlmscpfs. Not a test: nothing fails on slow numbers. Every
process started here is stopped by PID on exit.
"""

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"


def item(kind, data):
    return struct.pack(">BBH", kind, 0, len(data)) + data


def assoc_rq(called="ANY-SCP", calling="BENCH"):
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    sub = item(0x30, VERIFICATION.encode()) + item(0x40, ELE.encode()) + item(0x40, ILE.encode())
    body += item(0x20, bytes([1, 0, 0, 0]) + sub)
    body += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.826.0.1.3680043.2.1"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def echo_pdu(message_id=1):
    def element(e, v):
        return struct.pack("<HHI", 0, e, len(v)) + v

    uid = VERIFICATION.encode() + b"\0"
    fields = element(2, uid) + element(0x100, struct.pack("<H", 0x30)) + element(
        0x110, struct.pack("<H", message_id)) + element(0x800, struct.pack("<H", 0x0101))
    cmd = element(0, struct.pack("<I", len(fields))) + fields
    pdv = struct.pack(">IBB", len(cmd) + 2, 1, 3) + cmd
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


RQ = assoc_rq()
ECHO = echo_pdu()
RELEASE = bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0])


def recv_pdu(sock):
    header = b""
    while len(header) < 6:
        chunk = sock.recv(6 - len(header))
        if not chunk:
            raise EOFError()
        header += chunk
    length = struct.unpack(">I", header[2:6])[0]
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise EOFError()
        body += chunk
    return header[0], body


def one_association(port):
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(RQ)
        if recv_pdu(s)[0] != 2:
            return False
        s.sendall(ECHO)
        if recv_pdu(s)[0] != 4:
            return False
        s.sendall(RELEASE)
        return recv_pdu(s)[0] == 6


def client(port, start_at, stop_at, out):
    ok = bad = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        try:
            if one_association(port):
                ok += 1
            else:
                bad += 1
        except (OSError, EOFError):
            bad += 1
    out.put((ok, bad))


def measure(port, clients, seconds):
    # Warm-up: a few associations so both servers have paged everything in.
    for _ in range(20):
        one_association(port)
    q = multiprocessing.Queue()
    start = time.time() + 0.3
    stop = start + seconds
    procs = [multiprocessing.Process(target=client, args=(port, start, stop, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(10)
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    return ok / seconds, bad


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--mwl", default=os.path.join(here, "..", "build", "mwl"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", default="1,4")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    wlm = shutil.which("wlmscpfs")
    if not os.path.exists(args.mwl):
        sys.exit("no mwl binary at %s (build first, or pass --mwl)" % args.mwl)

    tmp = tempfile.mkdtemp(prefix="mwl-bench-")
    os.makedirs(os.path.join(tmp, "wl", "ANY-SCP"))
    procs = []
    try:
        servers = []
        port = free_port()
        p = subprocess.Popen([args.mwl, "serve", "--port", str(port), "--bind", HOST, "--log-level", "error",
                              "--max-associations", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        servers.append(("mwl serve", port, p))
        if wlm:
            # DCMTK leaves Nagle's algorithm on unless the environment has
            # TCP_NODELAY; then each small PDU written in two pieces waits
            # for the peer's delayed ACK (~40 ms). Measured both ways.
            variants = (("wlmscpfs", [], {}), ("wlmscpfs NODELAY", [], {"TCP_NODELAY": "1"}),
                        ("wlmscpfs -s NODELAY", ["--single-process"], {"TCP_NODELAY": "1"}))
            for name, extra, env in variants:
                port = free_port()
                p = subprocess.Popen([wlm, "-q"] + extra + ["-dfp", os.path.join(tmp, "wl"), str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, **env))
                procs.append(p)
                servers.append((name, port, p))
        else:
            print("wlmscpfs (DCMTK) not installed: measuring mwl only")
        for name, port, p in servers:
            if not wait_listening(port, p):
                sys.exit("%s did not start" % name)

        rates = {}
        for name, port, _ in servers:
            for n in counts:
                rate, bad = measure(port, n, args.seconds)
                rates[(name, n)] = rate
                print("%-20s %d client%s: %8.0f associations/s%s" % (name, n, "" if n == 1 else "s", rate,
                                                                     " (%d failed)" % bad if bad else ""),
                      flush=True)
        if wlm:
            for n in counts:
                mine = rates[("mwl serve", n)]
                parts = []
                for name, _, _ in servers[1:]:
                    base = rates.get((name, n))
                    parts.append("%.1f vs %s" % (mine / base if base else 0, name))
                print("ratio mwl/wlmscpfs, %d client%s: %s" % (n, "" if n == 1 else "s", "; ".join(parts)))
        print("machine: %d CPUs; client: %s, one process per client" % (os.cpu_count() or 0, sys.version.split()[0]))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
