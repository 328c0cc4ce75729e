#!/usr/bin/env python3
"""Integration tests of `mwl serve` over TCP on 127.0.0.1 (dynamic ports).

  server_test.py MODE MWL [--sanitized]

MODE:
  interop    DCMTK echoscu against the server: each transfer syntax proposal
             echoscu can make, max PDU 4096/16384/65536/131072, 128 contexts.
  bad-peers  raw-socket peers that misbehave (truncated/unknown/oversized PDUs,
             P-DATA before association, absurd item lengths, silence, half a
             PDU, abort mid-message); each must be answered with A-ABORT or a
             close within its timeout and be followed by a good C-ECHO; the
             server's fd count must come back to where it was, and its RSS
             must not grow with the number of associations (many rounds).
  load       1000 sequential associations, then 32 concurrent clients (raw
             PDU clients in threads, and 32 echoscu processes at once).
  limits     --max-associations (A-ASSOCIATE-RJ 2,3,2 and an orderly close),
             --strict-called-aet (reason 7), --calling-aet-allow (reason 3),
             transfer syntax choice for single proposals.
  sigterm    SIGTERM: prompt exit 0 when idle; an in-flight association may
             finish within shutdown-grace, one that does not is aborted.
  cli        config file + flag overrides, errors with line numbers, --help,
             a port that is already in use.
  allow      --allow AE[@ADDR[/N]] rules with --calling-aet-allow: AC for an
             allowed AE from an allowed address, A-ASSOCIATE-RJ (1,1,3) for
             a known AE from another address and for an unknown AE, each with
             its log line; echoscu -aet accepted/refused; several allow lines
             in a config file, flags replacing them, a bad rule's line
             number; IPv6 (::1) and a dual-stack listener's IPv4 peers
             (skipped when the machine has no IPv6).

Exit 0 pass, 1 fail, 77 skipped (a DCMTK tool the mode needs is missing).
Every process started here is killed by PID on the way out, also on failure.
--sanitized: the RSS check runs the server without ASan's quarantine (which
holds freed memory) and with a looser bound; leaks are then caught by
LeakSanitizer at the server's exit (exit status).

Wall-clock bounds allow for a loaded 2-core CI machine (SLACK): they tell
"closed by its timer" from "never closed", and "did not wait for the grace
period" from "waited for it" by making the waits long, not by asserting
that something took less than a second.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
HOST = "127.0.0.1"
# Allowance, in seconds, for a loaded machine on top of a timeout that is
# being checked (doubled for sanitized builds).
SLACK = 4.0

VERIFICATION = "1.2.840.10008.1.1"
MWL_FIND = "1.2.840.10008.5.1.4.31"
ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"
EBE = "1.2.840.10008.1.2.2"
DEFL = "1.2.840.10008.1.2.1.99"

failures = []
children = []  # every Popen started, killed at exit


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def note(msg):
    print(msg, flush=True)


# ---- processes ---------------------------------------------------------------

def _die_with_parent():
    # Linux: the server gets SIGKILL if this script dies (a CTest timeout),
    # so no server outlives its test. Elsewhere the finally/atexit paths do.
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def kill_children():
    for p in children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass


class Server:
    """`mwl serve` on a dynamic port of 127.0.0.1, stderr to a log file."""

    def __init__(self, mwl, tmp, *args, name="srv", env=None):
        self.tmp = tmp
        self.port_file = os.path.join(tmp, name + ".port")
        self.log_path = os.path.join(tmp, name + ".log")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        cmd = [mwl, "serve", "--port", "0", "--bind", HOST, "--port-file", self.port_file] + list(args)
        # A database of its own unless the test names one: tests run in
        # parallel in one folder, and two servers creating the default
        # mwl.db there at once race for it.
        if not any(a == "--db" or str(a).startswith("--db=") for a in args):
            cmd += ["--db", os.path.join(tmp, name + ".db")]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                                     preexec_fn=_die_with_parent, env=env)
        children.append(self.proc)
        deadline = time.monotonic() + 15
        self.port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        if self.port is None:
            self.kill()
            raise RuntimeError("server did not start: " + self.log_text()[-2000:])

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=15):
        """SIGTERM; returns (exit status, seconds taken)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, time.monotonic() - t0
        self.log.close()
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---- PDUs ------------------------------------------------------------------------

def item(kind, data):
    return struct.pack(">BBH", kind, 0, len(data)) + data


def assoc_rq(contexts, called="MWL", calling="PYSCU", max_pdu=16384):
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    for cid, abstract, syntaxes in contexts:
        sub = item(0x30, abstract.encode()) + b"".join(item(0x40, ts.encode()) for ts in syntaxes)
        body += item(0x20, bytes([cid, 0, 0, 0]) + sub)
    body += item(0x50, item(0x51, struct.pack(">I", max_pdu)) + item(0x52, b"1.2.826.0.1.3680043.2.1"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


ECHO_CONTEXTS = [(1, VERIFICATION, [ILE, ELE])]


def element(tag_elem, value):
    return struct.pack("<HHI", 0, tag_elem, len(value)) + value


def uid_value(text):
    raw = text.encode()
    return raw + (b"\0" if len(raw) % 2 else b"")


def command_set(fields):
    body = b"".join(element(e, v) for e, v in fields)
    return element(0x0000, struct.pack("<I", len(body))) + body


def echo_rq(message_id):
    return command_set([(0x0002, uid_value(VERIFICATION)), (0x0100, struct.pack("<H", 0x0030)),
                        (0x0110, struct.pack("<H", message_id)), (0x0800, struct.pack("<H", 0x0101))])


def p_data(context_id, control, data):
    pdv = struct.pack(">IBB", len(data) + 2, context_id, control) + data
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


RELEASE_RQ = bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0])
ABORT = bytes([7, 0, 0, 0, 0, 4, 0, 0, 0, 0])


class Closed(Exception):
    pass


def recv_exact(sock, n, deadline):
    out = b""
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(left)
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise Closed()
        out += chunk
    return out


def recv_pdu(sock, timeout=5.0):
    """(type, body); raises Closed on EOF, TimeoutError, ConnectionResetError."""
    deadline = time.monotonic() + timeout
    header = recv_exact(sock, 6, deadline)
    kind, _, length = struct.unpack(">BBI", header)
    return kind, recv_exact(sock, length, deadline)


def wait_close(sock, timeout):
    """Seconds until the server closes (EOF or reset); None on timeout.
    PDUs arriving first (an A-ABORT) are returned in a list."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    pdus = []
    buf = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0, pdus, True
        if not chunk:
            return time.monotonic() - t0, pdus, False
        buf += chunk
        while len(buf) >= 6:
            length = struct.unpack(">I", buf[2:6])[0]
            if len(buf) < 6 + length:
                break
            pdus.append(buf[0])
            buf = buf[6 + length:]
    return None, pdus, False


def parse_ac(body):
    """{context id: (result, transfer syntax)} from an A-ASSOCIATE-AC body."""
    out = {}
    pos = 68
    while pos + 4 <= len(body):
        kind, _, length = struct.unpack(">BBH", body[pos:pos + 4])
        data = body[pos + 4:pos + 4 + length]
        if kind == 0x21:
            cid, result = data[0], data[2]
            ts = ""
            sub = 4
            while sub + 4 <= len(data):
                skind, _, slen = struct.unpack(">BBH", data[sub:sub + 4])
                if skind == 0x40:
                    ts = data[sub + 4:sub + 4 + slen].decode().rstrip("\0 ")
                sub += 4 + slen
            out[cid] = (result, ts)
        pos += 4 + length
    return out


def command_status(body):
    """The Status (0000,0900) of the first command PDV of a P-DATA body."""
    pos = 0
    data = b""
    while pos + 6 <= len(body):
        length = struct.unpack(">I", body[pos:pos + 4])[0]
        control = body[pos + 5]
        if control & 1:
            data += body[pos + 6:pos + 4 + length]
        pos += 4 + length
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack("<HHI", data[pos:pos + 8])
        if group == 0 and elem == 0x0900:
            return struct.unpack("<H", data[pos + 8:pos + 10])[0]
        pos += 8 + length
    return None


def connect(port, timeout=5.0, host=HOST):
    return socket.create_connection((host, port), timeout=timeout)


def associate(port, contexts=ECHO_CONTEXTS, called="MWL", calling="PYSCU", max_pdu=16384, host=HOST):
    """Returns (socket, pdu type, body)."""
    s = connect(port, host=host)
    s.sendall(assoc_rq(contexts, called, calling, max_pdu))
    kind, body = recv_pdu(s)
    return s, kind, body


def raw_echo(port, count=1, calling="PYSCU"):
    """One association with `count` C-ECHOs and a release; True on success."""
    try:
        s, kind, body = associate(port, calling=calling)
        with s:
            if kind != 2:
                return False
            for i in range(count):
                s.sendall(p_data(1, 3, echo_rq(i + 1)))
                kind, body = recv_pdu(s)
                if kind != 4 or command_status(body) != 0:
                    return False
            s.sendall(RELEASE_RQ)
            kind, _ = recv_pdu(s)
            return kind == 6
    except (OSError, Closed, TimeoutError):
        return False


def echoscu_path():
    return shutil.which("echoscu")


def echoscu(port, *args, timeout=30, host=HOST):
    cmd = [echoscu_path(), "-ta", "10", "-td", "10"] + list(args) + [host, str(port)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         preexec_fn=_die_with_parent)
    children.append(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return -1, out.decode("utf-8", "replace")
    return p.returncode, out.decode("utf-8", "replace")


def good_echo(port):
    """A fresh C-ECHO the way a real peer does it: echoscu when installed."""
    if echoscu_path():
        rc, out = echoscu(port)
        return rc == 0
    return raw_echo(port)


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# ---- modes ----------------------------------------------------------------------------

def mode_interop(mwl, tmp, sanitized):
    if not echoscu_path():
        print("SKIP: echoscu (DCMTK) not installed")
        return SKIP
    helptext = subprocess.run([echoscu_path(), "--help"], capture_output=True, text=True).stdout
    if re.search(r"^\s+-xe\b", helptext, re.M):
        # Newer DCMTK: explicit proposal options.
        proposals = [([], None), (["-xi"], "ImplicitLE"), (["-xe"], "ExplicitLE"), (["-xb"], "ExplicitBE")]
    else:
        # DCMTK 3.6.7 echoscu proposes the first n of Implicit LE, Explicit
        # LE, Explicit BE, ... with -pts n (default 1): our preference must
        # pick Explicit LE whenever it is offered.
        proposals = [([], "ImplicitLE"), (["-pts", "2"], "ExplicitLE"), (["-pts", "3"], "ExplicitLE"),
                     (["-pts", "38"], "ExplicitLE")]
    srv = Server(mwl, tmp, "--log-level", "info")
    try:
        runs = 0
        for opts, want_ts in proposals:
            for pdu in (4096, 16384, 65536, 131072):
                rc, out = echoscu(srv.port, "-v", "-pdu", str(pdu), *opts)
                runs += 1
                if rc != 0 or "Received Echo Response (Success)" not in out:
                    fail("echoscu %s -pdu %d: rc %d\n%s" % (" ".join(opts), pdu, rc, out))
                    continue
                # The server logs the peer's max PDU and the chosen syntax.
                want = "max PDU 65536/%d, contexts 1:Verification/%s" % (pdu, want_ts or "")
                if not wait_for(lambda: want in srv.log_text(), 5):
                    fail("echoscu %s -pdu %d: log lacks '%s'" % (" ".join(opts), pdu, want))
        rc, out = echoscu(srv.port, "-ppc", "128", "-pts", "38")
        runs += 1
        if rc != 0:
            fail("echoscu with 128 contexts x 38 syntaxes: rc %d\n%s" % (rc, out))
        rc, out = echoscu(srv.port, "--repeat", "20")
        runs += 1
        if rc != 0:
            fail("echoscu --repeat 20: rc %d" % rc)
        rc, out = echoscu(srv.port, "--abort")
        runs += 1
        if rc != 0:
            fail("echoscu --abort: rc %d" % rc)
        note("interop: %d echoscu runs" % runs)
    finally:
        rc, took = srv.stop()
        if rc != 0:
            fail("server exit status %s after SIGTERM\n%s" % (rc, srv.log_text()[-3000:]))
    return 0


def valid_rq():
    return assoc_rq(ECHO_CONTEXTS)


def absurd_item_rq():
    rq = bytearray(valid_rq())
    # The first presentation context item (20H) follows the 10H item.
    pos = 6 + 68 + 4 + len(b"1.2.840.10008.3.1.1.1")
    assert rq[pos] == 0x20
    rq[pos + 2:pos + 4] = b"\xff\xff"
    return bytes(rq)


def bad_peer_cases(acse, idle):
    """(name, action(sock) -> None, expect_abort, timeout the close must meet,
    whether the close waits for a timer (False: answered at once))."""
    rq = valid_rq()

    def send(data, then_close=False):
        def act(s):
            s.sendall(data)
            if then_close:
                s.shutdown(socket.SHUT_WR)
        return act

    def established(then):
        def act(s):
            s.sendall(rq)
            kind, _ = recv_pdu(s)
            if kind != 2:
                raise RuntimeError("not associated: PDU %d" % kind)
            then(s)
        return act

    quick = 1.0  # answered at once: allow for a loaded machine
    return [
        ("truncated RQ then close", send(rq[:20], then_close=True), False, quick, False),
        ("unknown PDU type 09H", send(b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00"), True, quick, False),
        ("RQ length beyond the data", send(rq[:6] + b"\x00" * 10, False), False, acse, True),
        ("RQ length beyond the data, declared bigger", send(b"\x01\x00\x00\x00\x10\x00" + rq[6:]), False, acse,
         True),
        ("0-length RQ", send(b"\x01\x00\x00\x00\x00\x00"), True, quick, False),
        ("4 GiB declared RQ", send(b"\x01\x00\xff\xff\xff\xff"), True, quick, False),
        ("4 GiB declared P-DATA after AC", established(lambda s: s.sendall(b"\x04\x00\xff\xff\xff\xff")), True,
         quick, False),
        ("0-length P-DATA after AC", established(lambda s: s.sendall(b"\x04\x00\x00\x00\x00\x00")), True, quick,
         False),
        ("P-DATA before association", send(p_data(1, 3, echo_rq(1))), True, quick, False),
        ("absurd item length in RQ", send(absurd_item_rq()), True, quick, False),
        ("connect and send nothing", lambda s: None, False, acse, True),
        ("half a PDU header, stall", send(rq[:3]), False, acse, True),
        ("half a P-DATA after AC, stall", established(lambda s: s.sendall(p_data(1, 3, echo_rq(1))[:20])), True,
         idle, True),
        ("abort mid-message", established(lambda s: s.sendall(p_data(1, 1, echo_rq(1)[:40]) + ABORT)), False,
         quick, False),
        ("close mid-message", established(lambda s: (s.sendall(p_data(1, 1, echo_rq(1)[:40])),
                                                      s.shutdown(socket.SHUT_WR))), False, quick, False),
    ]


def run_bad_peers(srv, acse, idle, slack, report):
    for name, action, expect_abort, limit, _ in bad_peer_cases(acse, idle):
        try:
            s = connect(srv.port)
        except OSError as e:
            fail("%s: connect: %s" % (name, e))
            continue
        with s:
            t0 = time.monotonic()
            try:
                action(s)
            except (OSError, Closed, RuntimeError, TimeoutError) as e:
                fail("%s: %s" % (name, e))
                continue
            took, pdus, reset = wait_close(s, limit + slack + 5)
            total = time.monotonic() - t0
        if took is None:
            fail("%s: not closed within %.1f s" % (name, limit + slack + 5))
        elif total > limit + slack:
            fail("%s: closed after %.2f s, limit %.2f s" % (name, total, limit + slack))
        if expect_abort and 7 not in pdus:
            fail("%s: expected an A-ABORT, got PDUs %s (reset %s)" % (name, pdus, reset))
        if report:
            note("  %-44s closed after %5.3f s%s" % (name, total, " (A-ABORT first)" if 7 in pdus else ""))
        if not good_echo(srv.port):
            fail("%s: the next C-ECHO failed" % name)


def churn(srv, cases, echoes):
    """One round of associations that end at once: each of `cases` (bad
    peers answered at once) and `echoes` C-ECHO associations. Returns the
    number of connections made."""
    made = 0
    for name, action, _, _, _ in cases:
        try:
            with connect(srv.port) as s:
                action(s)
                if wait_close(s, 10 + SLACK)[0] is None:
                    fail("churn: %s: not closed" % name)
        except (OSError, Closed, RuntimeError, TimeoutError) as e:
            fail("churn: %s: %s" % (name, e))
        made += 1
    for _ in range(echoes):
        if not raw_echo(srv.port):
            fail("churn: a C-ECHO association failed")
        made += 1
    return made


def mode_bad_peers(mwl, tmp, sanitized):
    acse, idle = 1.0, 1.0
    slack = SLACK * (2 if sanitized else 1)
    env = None
    if sanitized:
        # ASan's quarantine keeps freed blocks (256 MiB by default), so RSS
        # would grow with every association until it is full. Without it
        # the RSS check below means the same as in a normal build;
        # LeakSanitizer still runs at exit.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0:"
                               "thread_local_quarantine_size_kb=0").lstrip(":")
    srv = Server(mwl, tmp, "--acse-timeout", str(acse), "--idle-timeout", str(idle), "--log-level", "info", env=env)
    try:
        # Warm-up round: allocator pools and lazily created state settle.
        run_bad_peers(srv, acse, idle, slack, report=False)
        for _ in range(20):
            raw_echo(srv.port)
        wait_for(lambda: "assoc" in srv.log_text(), 1)
        time.sleep(0.2)
        fds0 = srv.fds()
        note("bad peers (acse-timeout %.1f s, idle-timeout %.1f s):" % (acse, idle))
        run_bad_peers(srv, acse, idle, slack, report=True)
        for _ in range(20):
            raw_echo(srv.port)
        settled = wait_for(lambda: srv.fds() <= fds0, 5 + slack)
        fds1 = srv.fds()
        note("  fds %d -> %d" % (fds0, fds1))
        if not settled or fds1 != fds0:
            fail("fd count %d -> %d" % (fds0, fds1))

        # No unbounded growth. One round says little about memory: glibc
        # keeps freed pages and the first rounds fill allocator caches, so
        # a small absolute bound on one round is noise on a busy machine.
        # Instead: many rounds of associations that end at once, RSS after
        # each, and the growth per connection over the later rounds (once
        # caches have settled) bounded far below what keeping anything per
        # association would cost (a session's input buffer alone is 16 KiB
        # or more): a leak grows RSS with every round, a settled heap does
        # not. fds must come back after every round.
        quick = [c for c in bad_peer_cases(acse, idle) if not c[4]]
        rounds, echoes = 8, 40
        samples = []
        made = 0
        for r in range(rounds):
            made += churn(srv, quick, echoes)
            if not wait_for(lambda: srv.fds() <= fds0, 5 + slack):
                fail("round %d: fd count %d, was %d" % (r + 1, srv.fds(), fds0))
            samples.append((made, srv.rss_kb()))
        (m0, r0), (m1, r1) = samples[rounds // 2 - 1], samples[-1]
        per_conn = max(0, r1 - r0) * 1024.0 / (m1 - m0)
        bound = 2048 if sanitized else 1024  # bytes per connection
        note("  RSS over %d connections in %d rounds: %s KiB; %d KiB -> %d KiB over the last %d "
             "connections = %.0f bytes each (bound %d)" % (made, rounds, [rss for _, rss in samples], r0, r1,
                                                          m1 - m0, per_conn, bound))
        if per_conn > bound:
            fail("RSS grows with the number of associations: %.0f bytes per connection over the last %d "
                 "(bound %d): %s" % (per_conn, m1 - m0, bound, samples))
    finally:
        rc, took = srv.stop()
        if rc != 0:
            fail("server exit status %s after SIGTERM (LeakSanitizer?)\n%s" % (rc, srv.log_text()[-3000:]))
    return 0


def mode_load(mwl, tmp, sanitized):
    srv = Server(mwl, tmp, "--max-associations", "64", "--log-level", "warn")
    try:
        for _ in range(10):
            raw_echo(srv.port)
        time.sleep(0.1)
        fds0, rss0 = srv.fds(), srv.rss_kb()
        t0 = time.monotonic()
        bad = sum(0 if raw_echo(srv.port) else 1 for _ in range(1000))
        seq = time.monotonic() - t0
        note("load: 1000 sequential associations (C-ECHO + release) in %.2f s, %d failed" % (seq, bad))
        if bad:
            fail("%d of 1000 sequential associations failed" % bad)

        results = []
        lock = threading.Lock()
        start = threading.Barrier(32)

        def client(n):
            start.wait()
            ok = sum(1 if raw_echo(srv.port, count=2, calling="LOAD%02d" % n) else 0 for _ in range(20))
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        conc = time.monotonic() - t0
        done = sum(results)
        note("load: 32 concurrent raw clients x 20 associations: %d/640 ok in %.2f s" % (done, conc))
        if done != 640:
            fail("concurrent raw clients: %d of 640 associations ok" % done)

        if echoscu_path():
            t0 = time.monotonic()
            procs = []
            for i in range(32):
                p = subprocess.Popen([echoscu_path(), "-ta", "20", "-aet", "ECHO%02d" % i, HOST, str(srv.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
                children.append(p)
                procs.append(p)
            codes = []
            for p in procs:
                try:
                    codes.append(p.wait(60))
                except subprocess.TimeoutExpired:
                    p.kill()
                    codes.append(-1)
            ok = codes.count(0)
            note("load: 32 echoscu processes at once: %d/32 ok in %.2f s" % (ok, time.monotonic() - t0))
            if ok != 32:
                fail("echoscu x32: exit codes %s" % codes)
        settled = wait_for(lambda: srv.fds() <= fds0, 5)
        fds1, rss1 = srv.fds(), srv.rss_kb()
        note("load: fds %d -> %d, RSS %d KiB -> %d KiB" % (fds0, fds1, rss0, rss1))
        if not settled:
            fail("fd count %d -> %d after load" % (fds0, fds1))
        if "error" in srv.log_text():
            fail("errors logged under load:\n" + srv.log_text()[-3000:])
    finally:
        rc, took = srv.stop()
        if rc != 0:
            fail("server exit status %s after SIGTERM\n%s" % (rc, srv.log_text()[-3000:]))
    return 0


def expect_rj(port, result, source, reason, what, **kw):
    try:
        s, kind, body = associate(port, **kw)
    except (OSError, Closed, TimeoutError) as e:
        fail("%s: %s" % (what, e))
        return
    with s:
        got = tuple(body[1:4]) if kind == 3 else None
        if kind != 3 or got != (result, source, reason):
            fail("%s: PDU %d %s, want A-ASSOCIATE-RJ %s" % (what, kind, got, (result, source, reason)))
            return
        # The RJ is followed by an orderly close, not a reset.
        took, pdus, reset = wait_close(s, 5)
        if took is None or reset:
            fail("%s: after the RJ: closed %s, reset %s" % (what, took, reset))


def mode_limits(mwl, tmp, sanitized):
    srv = Server(mwl, tmp, "--max-associations", "2", name="max")
    try:
        held = []
        for i in range(2):
            s, kind, _ = associate(srv.port, calling="HOLD%d" % i)
            held.append(s)
            if kind != 2:
                fail("association %d of 2: PDU %d" % (i + 1, kind))
        expect_rj(srv.port, 2, 3, 2, "third association with --max-associations 2")
        if echoscu_path():
            rc, out = echoscu(srv.port, "-v")
            if rc == 0 or "Rejected" not in out:
                fail("echoscu over the limit: rc %d\n%s" % (rc, out))
        for s in held:
            s.sendall(RELEASE_RQ)
            recv_pdu(s)
            s.close()
        if not wait_for(lambda: raw_echo(srv.port), 5):
            fail("no association possible after the held ones were released")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    srv = Server(mwl, tmp, "--aet", "WORKLIST", "--strict-called-aet", name="strict")
    try:
        expect_rj(srv.port, 1, 1, 7, "strict called AE", called="OTHER")
        s, kind, _ = associate(srv.port, called="WORKLIST")
        s.close()
        if kind != 2:
            fail("strict called AE, right title: PDU %d" % kind)
        if echoscu_path():
            rc, out = echoscu(srv.port, "-aec", "WRONG")
            if rc == 0:
                fail("echoscu -aec WRONG was accepted")
            rc, out = echoscu(srv.port, "-aec", "WORKLIST")
            if rc != 0:
                fail("echoscu -aec WORKLIST: rc %d\n%s" % (rc, out))
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    # Seventy TCP connections that never send an A-ASSOCIATE-RQ, from the
    # modality's own address, must not lock it out (they used to hold every
    # slot for acse-timeout, renewable forever): each new connection over
    # max-pending / max-peer-connections closes the oldest idle one.
    srv = Server(mwl, tmp, "--associate-timeout", "60", "--acse-timeout", "60", name="lockout")
    idle = []
    try:
        for i in range(70):
            idle.append(connect(srv.port))
        t0 = time.monotonic()
        ok = good_echo(srv.port)
        note("limits: C-ECHO with 70 idle connections open: %s in %.2f s" % (ok, time.monotonic() - t0))
        if not ok:
            fail("70 idle connections locked a C-ECHO out")
        closed = sum(1 for s in idle[:30] if wait_close(s, 5)[0] is not None)
        if closed != 30:
            fail("the oldest idle connections were not closed: %d of 30" % closed)
        if "max-pending" not in srv.log_text() and "max-peer-connections" not in srv.log_text():
            fail("no log line says why idle connections were closed")
        # A peer asking for a Maximum Length of 8 bytes is refused (1,1,1)
        # instead of getting every response cut into thousands of PDUs.
        s, kind, body = associate(srv.port, max_pdu=8)
        s.close()
        if kind != 3 or body[1:4] != bytes([1, 1, 1]):
            fail("Maximum Length 8: PDU %d %s" % (kind, body[:4].hex()))
    finally:
        for s in idle:
            s.close()
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    srv = Server(mwl, tmp, "--calling-aet-allow", "CT1, MR 2", name="allow")
    try:
        expect_rj(srv.port, 1, 1, 3, "calling AE not in the allow-list", calling="PYSCU")
        if not raw_echo(srv.port, calling="MR 2"):
            fail("allow-listed calling AE 'MR 2' refused")
        if echoscu_path():
            rc, out = echoscu(srv.port, "-aet", "CT1")
            if rc != 0:
                fail("echoscu -aet CT1: rc %d\n%s" % (rc, out))
        # Single transfer syntax proposals: the one offered is taken.
        for ts, name in ((ILE, "ILE"), (ELE, "ELE"), (EBE, "EBE"), (DEFL, "Deflated")):
            s, kind, body = associate(srv.port, contexts=[(1, VERIFICATION, [ts])], calling="CT1")
            with s:
                got = parse_ac(body).get(1) if kind == 2 else None
                if got != (0, ts):
                    fail("proposal %s only: %s" % (name, got))
                    continue
                s.sendall(p_data(1, 3, echo_rq(1)))
                kind, body = recv_pdu(s)
                if kind != 4 or command_status(body) != 0:
                    fail("C-ECHO on a %s context failed" % name)
                s.sendall(ABORT)
        s, kind, body = associate(srv.port, contexts=[(1, VERIFICATION, [EBE, ILE, DEFL, ELE])], calling="CT1")
        s.close()
        if parse_ac(body).get(1) != (0, ELE):
            fail("our preference (Explicit LE first) was not applied: %s" % parse_ac(body))
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    return 0


def mode_sigterm(mwl, tmp, sanitized):
    slack = SLACK * (2 if sanitized else 1)
    # Idle server: exit 0 at once, not after the (long) grace period.
    grace = 60.0
    srv = Server(mwl, tmp, "--shutdown-grace", str(grace), name="idle")
    rc, took = srv.stop(timeout=grace + 15)
    note("sigterm: idle server exited %s in %.3f s (grace %.0f s)" % (rc, took, grace))
    if rc != 0 or took > grace / 2:
        fail("idle server: exit %s after %.2f s (grace %.0f s)" % (rc, took, grace))

    # In flight, finishing within the grace period: the server exits once
    # the association is over, not when the grace period ends.
    grace = 60.0
    srv = Server(mwl, tmp, "--shutdown-grace", str(grace), name="inflight")
    try:
        s, kind, _ = associate(srv.port)
        if kind != 2:
            fail("in-flight association not accepted")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        # Stops accepting: a new connection is refused once the listener
        # has closed.
        refused = wait_for(lambda: _refused(srv.port), 2)
        if not refused:
            fail("still accepting connections after SIGTERM")
        s.sendall(p_data(1, 3, echo_rq(5)))
        kind, body = recv_pdu(s)
        if kind != 4 or command_status(body) != 0:
            fail("in-flight C-ECHO after SIGTERM failed")
        s.sendall(RELEASE_RQ)
        kind, _ = recv_pdu(s)
        if kind != 6:
            fail("in-flight release after SIGTERM: PDU %d" % kind)
        s.close()
        closed = time.monotonic()
        rc = srv.proc.wait(grace + 15)
        took = time.monotonic() - t0
        after_close = time.monotonic() - closed
        note("sigterm: in-flight association finished, server exited %s %.3f s after the signal, %.3f s "
             "after the association closed" % (rc, took, after_close))
        if rc != 0 or after_close > grace / 2:
            fail("in-flight: exit %s %.2f s after the association closed (grace %.0f s)" % (rc, after_close, grace))
    finally:
        srv.kill()

    # In flight and idle past the grace period: A-ABORT, then exit 0.
    grace = 1.0
    srv = Server(mwl, tmp, "--shutdown-grace", str(grace), name="stuck")
    try:
        s, kind, _ = associate(srv.port)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        took, pdus, reset = wait_close(s, grace + slack + 5)
        s.close()
        rc = srv.proc.wait(grace + slack + 5)
        total = time.monotonic() - t0
        note("sigterm: idle association aborted after %.3f s (PDUs %s), server exited %s after %.3f s"
             % (took or -1, pdus, rc, total))
        if 7 not in pdus:
            fail("no A-ABORT at the end of the grace period: %s" % pdus)
        if took is None or took < grace * 0.9:
            fail("aborted before the grace period ended: %s" % took)
        if rc != 0 or total > grace + slack:
            fail("stuck association: exit %s after %.2f s" % (rc, total))
    finally:
        srv.kill()
    return 0


def _refused(port):
    try:
        s = socket.create_connection((HOST, port), timeout=1)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def mode_cli(mwl, tmp, sanitized):
    conf = os.path.join(tmp, "mwl.conf")
    with open(conf, "w") as f:
        f.write("# test configuration\n"
                "aet = FILEAET\n"
                "strict-called-aet = true\n"
                "\n"
                "max-associations = 4\n"
                "idle-timeout = 2.5\n")
    # Flags override the file: --aet wins, strict stays on.
    srv = Server(mwl, tmp, "--config", conf, "--aet", "FLAGAET", name="conf")
    try:
        expect_rj(srv.port, 1, 1, 7, "file's title after a flag override", called="FILEAET")
        s, kind, _ = associate(srv.port, called="FLAGAET")
        s.close()
        if kind != 2:
            fail("flag's title refused: PDU %d" % kind)
        log = srv.log_text()
        if "AE title FLAGAET" not in log or "max 4 associations" not in log:
            fail("config not applied: " + log[:500])
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    def run(*args):
        p = subprocess.run([mwl, "serve"] + list(args), capture_output=True, text=True, timeout=30,
                           preexec_fn=_die_with_parent)
        return p.returncode, p.stdout, p.stderr

    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("# bad\nport = 0\n\nmax-associations = 5000\n")
    rc, out, err = run("--config", bad)
    if rc != 2 or "line 4:" not in err or "max-associations" not in err:
        fail("bad config file: rc %d, stderr %r" % (rc, err))
    with open(bad, "w") as f:
        f.write("port = 0\nport = 1\n")
    rc, out, err = run("--config", bad)
    if rc != 2 or "line 2:" not in err:
        fail("duplicate key: rc %d, stderr %r" % (rc, err))
    rc, out, err = run("--config", os.path.join(tmp, "missing.conf"))
    if rc != 2:
        fail("missing config file: rc %d" % rc)
    for args, why in ((["--bogus", "1"], "unknown option"), (["--port", "70000"], "out of range"),
                      (["--aet"], "needs a value"), (["stray"], "unexpected argument"),
                      (["--acse-timeout=abc"], "seconds")):
        rc, out, err = run(*args)
        if rc != 2 or why not in err:
            fail("mwl serve %s: rc %d, stderr %r" % (" ".join(args), rc, err))
    rc, out, err = run("--help")
    keys = ["port", "bind", "aet", "strict-called-aet", "calling-aet-allow", "allow", "max-associations", "max-pdu",
            "acse-timeout", "idle-timeout", "write-timeout", "shutdown-grace", "workers", "find-batch",
            "log-level", "port-file", "db", "config"]
    missing = [k for k in keys if "--" + k not in out]
    if rc != 0 or missing:
        fail("--help: rc %d, missing %s" % (rc, missing))

    # A port in use: exit 3 with a message.
    srv = Server(mwl, tmp, name="first")
    try:
        rc, out, err = run("--port", str(srv.port), "--bind", HOST)
        if rc != 3 or not err:
            fail("port in use: rc %d, stderr %r" % (rc, err))
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    return 0


def accepted(port, what, **kw):
    """An association that must be accepted: AC, then an A-RELEASE."""
    try:
        s, kind, _ = associate(port, **kw)
    except (OSError, Closed, TimeoutError) as e:
        fail("%s: %s" % (what, e))
        return
    with s:
        if kind != 2:
            fail("%s: PDU %d, want A-ASSOCIATE-AC" % (what, kind))
            return
        s.sendall(RELEASE_RQ)
        recv_pdu(s)


def log_has(srv, text, what):
    if not wait_for(lambda: text in srv.log_text(), 5):
        fail("%s: the log lacks %r\n%s" % (what, text, srv.log_text()[-2000:]))


def ipv6_loopback():
    """True when ::1 can be bound here (containers often have no IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def mode_allow(mwl, tmp, sanitized):
    srv = Server(mwl, tmp, "--allow", "CT1@10.0.0.0/8", "--allow", " MR1 @ 127.0.0.0/8 ", "--allow",
                 "*@192.0.2.0/24", "--allow", "US1@::1", "--calling-aet-allow", "LEGACY", name="rules")
    try:
        log_has(srv, "access: 1 calling-aet-allow titles, 4 allow rules", "startup")
        accepted(srv.port, "allowed AE from an allowed address", calling="MR1")
        accepted(srv.port, "calling-aet-allow beside the rules", calling="LEGACY")
        expect_rj(srv.port, 1, 1, 3, "allowed AE from another address", calling="CT1")
        log_has(srv, "rejected (1,1,3): calling AE title 'CT1' from 127.0.0.1: allowed only from 10.0.0.0/8, "
                "192.0.2.0/24", "known AE, wrong address")
        expect_rj(srv.port, 1, 1, 3, "IPv6-only AE over IPv4", calling="US1")
        log_has(srv, "'US1' from 127.0.0.1: allowed only from 192.0.2.0/24, ::1", "IPv6-only AE over IPv4")
        expect_rj(srv.port, 1, 1, 3, "unknown AE", calling="NOBODY")
        log_has(srv, "rejected (1,1,3): calling AE title 'NOBODY' from 127.0.0.1: no rule for this AE title",
                "unknown AE")
        if echoscu_path():
            for aet, ok in (("MR1", True), ("LEGACY", True), ("CT1", False), ("NOBODY", False)):
                rc, out = echoscu(srv.port, "-aet", aet)
                if (rc == 0) != ok:
                    fail("echoscu -aet %s: rc %d, want %s\n%s" % (aet, rc, "success" if ok else "refusal", out))
                if not ok and "Rejected" not in out:
                    fail("echoscu -aet %s: no rejection reported\n%s" % (aet, out))
        else:
            note("allow: echoscu not installed, raw PDUs only")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    # calling-aet-allow alone still works as before.
    srv = Server(mwl, tmp, "--calling-aet-allow", "LEGACY", name="titles")
    try:
        accepted(srv.port, "calling-aet-allow alone", calling="LEGACY")
        expect_rj(srv.port, 1, 1, 3, "calling-aet-allow alone, other AE", calling="OTHER")
        log_has(srv, "'OTHER' from 127.0.0.1: no rule for this AE title", "calling-aet-allow alone")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    # Several allow lines in a file; a flag replaces them (the file's other
    # keys stay).
    conf = os.path.join(tmp, "allow.conf")
    with open(conf, "w") as f:
        f.write("# who may ask for the worklist\n"
                "allow = CT1@127.0.0.1\n"
                "calling-aet-allow = LEGACY\n"
                "allow = MR1@10.0.0.0/8\n"
                "  allow = \"US 1@127.0.0.0/8\"\n")
    srv = Server(mwl, tmp, "--config", conf, name="file")
    try:
        log_has(srv, "access: 1 calling-aet-allow titles, 3 allow rules", "config file")
        accepted(srv.port, "file rule 1", calling="CT1")
        accepted(srv.port, "file rule 3", calling="US 1")
        expect_rj(srv.port, 1, 1, 3, "file rule 2 from elsewhere", calling="MR1")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    srv = Server(mwl, tmp, "--config", conf, "--allow", "MR1", name="flags")
    try:
        log_has(srv, "access: 1 calling-aet-allow titles, 1 allow rules", "flags replace the file's rules")
        accepted(srv.port, "flag rule", calling="MR1")
        accepted(srv.port, "file's calling-aet-allow kept", calling="LEGACY")
        expect_rj(srv.port, 1, 1, 3, "file's rule dropped by the flag", calling="CT1")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)

    def run(*args):
        p = subprocess.run([mwl, "serve"] + list(args), capture_output=True, text=True, timeout=30,
                           preexec_fn=_die_with_parent)
        return p.returncode, p.stderr

    bad = os.path.join(tmp, "bad-allow.conf")
    with open(bad, "w") as f:
        f.write("port = 0\nallow = CT1\n\nallow = CT2@10.1.2.3/8\n")
    rc, err = run("--config", bad)
    if rc != 2 or "line 4: allow:" not in err or "10.0.0.0/8" not in err:
        fail("bad allow rule in a file: rc %d, stderr %r" % (rc, err))
    for value, why in (("CT2@10.0.0.0/33", "prefix /33 is over /32"), ("CT2@pacs.example", "not an IPv4 or IPv6"),
                       ("", "empty value"), ("@10.0.0.1", "no AE title")):
        rc, err = run("--allow", value)
        if rc != 2 or why not in err:
            fail("--allow %r: rc %d, stderr %r" % (value, rc, err))

    if not ipv6_loopback():
        note("allow: no IPv6 loopback here, IPv6 part skipped")
        return 0
    srv = Server(mwl, tmp, "--bind", "::1", "--allow", "CT1@::1", "--allow", "MR1@2001:db8::/32", name="v6")
    try:
        accepted(srv.port, "IPv6 rule over IPv6", calling="CT1", host="::1")
        expect_rj(srv.port, 1, 1, 3, "IPv6 AE from another IPv6 address", calling="MR1", host="::1")
        log_has(srv, "'MR1' from [::1]: allowed only from 2001:db8::/32", "IPv6 refusal")
        # DCMTK 3.6.7's echoscu has no IPv6; our own client does.
        for aet, want in (("CT1", 0), ("MR1", 3)):
            p = subprocess.run([mwl, "echo", "--aet", aet, "--aec", "MWL", "::1", str(srv.port)],
                               capture_output=True, text=True, timeout=30, preexec_fn=_die_with_parent)
            if p.returncode != want:
                fail("mwl echo --aet %s ::1: exit %d, want %d\n%s" % (aet, p.returncode, want, p.stderr))
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    # A dual-stack listener (all addresses) sees IPv4 peers as
    # ::ffff:127.0.0.1: IPv4 rules still apply to them.
    srv = Server(mwl, tmp, "--bind", "*", "--allow", "CT1@127.0.0.0/8", "--allow", "MR1@::1", name="dual")
    try:
        accepted(srv.port, "IPv4 rule, IPv4 peer on a dual-stack listener", calling="CT1")
        accepted(srv.port, "IPv6 rule, IPv6 peer on a dual-stack listener", calling="MR1", host="::1")
        expect_rj(srv.port, 1, 1, 3, "IPv6 rule, IPv4 peer", calling="MR1")
        expect_rj(srv.port, 1, 1, 3, "IPv4 rule, IPv6 peer", calling="CT1", host="::1")
        log_has(srv, "'CT1' from [::1]: allowed only from 127.0.0.0/8", "dual stack")
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    return 0


def find_rq(message_id):
    return command_set([(0x0002, uid_value(MWL_FIND)), (0x0100, struct.pack("<H", 0x0020)),
                        (0x0110, struct.pack("<H", message_id)), (0x0700, struct.pack("<H", 0)),
                        (0x0800, struct.pack("<H", 0x0102))])


def all_items_identifier():
    """Implicit VR LE, matching every item: universal patient keys and the
    SPS sequence as one empty item (every SPS key returned, K.2.2.1.2)."""
    def el(group, elem, value):
        return struct.pack("<HHI", group, elem, len(value)) + value
    seq = struct.pack("<HHI", 0xFFFE, 0xE000, 0)
    keys = [(0x0008, 0x0050), (0x0010, 0x0010), (0x0010, 0x0020), (0x0010, 0x0030), (0x0010, 0x0040),
            (0x0020, 0x000D), (0x0032, 0x1060), (0x0040, 0x1001)]
    return b"".join(el(g, e, b"") for g, e in keys) + el(0x0040, 0x0100, seq)


def mode_finds(mwl, tmp, sanitized):
    """C-FINDs whose SCUs stop reading: they hold no worker, no store
    connection and no read transaction. Sixteen such readers on a server
    with 2 + 1 workers leave at most 3 store connections open (counted as
    the server's open files), and meanwhile a WAL checkpoint succeeds and a
    short query is answered."""
    import sqlite3
    db = os.path.join(tmp, "finds.db")
    r = subprocess.run([mwl, "demo", "--db", db, "--count", "10000", "--days", "3"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        fail("mwl demo: %s" % r.stderr.decode(errors="replace"))
        return 1
    srv = Server(mwl, tmp, "--db", db, "--workers", "2", "--background-workers", "1", "--write-timeout", "600",
                 "--idle-timeout", "600", name="finds")
    readers = []
    try:
        fds0 = srv.fds()
        for i in range(16):
            # A small receive window from the start (set before connecting),
            # so ~6 MB of responses cannot all fit in socket buffers.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect((HOST, srv.port))
            s.sendall(assoc_rq([(1, MWL_FIND, [ILE])], calling="SLOW%02d" % i))
            kind, _ = recv_pdu(s)
            if kind != 2:
                fail("reader %d: PDU %d" % (i, kind))
                s.close()
                continue
            s.sendall(p_data(1, 3, find_rq(1)) + p_data(1, 2, all_items_identifier()))
            s.recv(200)  # the first bytes only: then it stops reading
            readers.append(s)
        time.sleep(1.5)  # the finds fill their sockets and wait for the readers
        extra = srv.fds() - fds0 - len(readers)
        note("finds: %d stalled readers; server fds beyond their sockets: %d" % (len(readers), extra))
        # SQLite keeps 2 files per read connection (db, WAL; the shm is
        # mapped): 3 connections at most for 2 + 1 workers, plus slack.
        if extra > 3 * 2 + 2:
            fail("%d extra open files with %d stalled C-FINDs: store connections follow the readers, not the "
                 "workers" % (extra, len(readers)))
        # The WAL can be checkpointed to the end while they wait.
        w = subprocess.run([mwl, "demo", "--db", db, "--count", "200", "--start", "20300101"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        if w.returncode != 0:
            fail("writer: %s" % w.stderr.decode(errors="replace"))
        con = sqlite3.connect(db, timeout=10)
        busy, log, done = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        con.close()
        wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
        note("finds: checkpoint (busy %d, log %d, checkpointed %d), WAL %d bytes" % (busy, log, done, wal))
        if busy != 0 or wal != 0:
            fail("checkpoint blocked by stalled C-FINDs: busy %d, WAL %d bytes" % (busy, wal))
        if not good_echo(srv.port):
            fail("no C-ECHO while readers stall")
    finally:
        for s in readers:
            try:
                s.sendall(ABORT)
            except OSError:
                pass
            s.close()
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    return 0


def mode_audit(mwl, tmp, sanitized):
    """--audit-log: one JSON line per association (accepted or refused and
    why), per connection closed before one, and per C-FIND (its matches and
    the Patient IDs it returned); values from the wire stay strings."""
    import json
    if not shutil.which("findscu"):
        print("SKIP: findscu (DCMTK) not installed")
        return SKIP
    db = os.path.join(tmp, "audit.db")
    r = subprocess.run([mwl, "demo", "--db", db, "--count", "60"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        fail("mwl demo: %s" % r.stderr.decode(errors="replace"))
        return 1
    audit = os.path.join(tmp, "audit.jsonl")
    srv = Server(mwl, tmp, "--db", db, "--audit-log", audit, "--calling-aet-allow", "FINDSCU,PYSCU,A\"B}{",
                 name="audit")
    try:
        out = subprocess.run([shutil.which("findscu"), "-W", "-aec", "MWL", "-aet", "FINDSCU", "-to", "10", "-k",
                              "ScheduledProcedureStepSequence[0].Modality=CT", "-k", "PatientID", HOST,
                              str(srv.port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60).stdout.decode(errors="replace")
        want_ids = sorted(set(re.findall(r"\(0010,0020\) LO \[([^\]]*)\]", out)))
        # The same matches asked without Patient ID: the record still names
        # the patients whose orders were shown.
        out2 = subprocess.run([shutil.which("findscu"), "-W", "-aec", "MWL", "-aet", "FINDSCU", "-to", "10", "-k",
                               "ScheduledProcedureStepSequence[0].Modality=CT", "-k", "PatientName", HOST,
                               str(srv.port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60).stdout.decode(errors="replace")
        if "(0010,0020)" in out2 or out2.count("(Pending)") != out.count("(Pending)"):
            fail("findscu without PatientID: unexpected answer\n" + out2[-1500:])
        # A query whose name holds a right-to-left override and a C1 CSI
        # (valid UTF-8): the record must show them escaped.
        def el(group, elem, value):
            if len(value) % 2:
                value += b" "
            return struct.pack("<HHI", group, elem, len(value)) + value
        s, kind, _ = associate(srv.port, contexts=[(1, MWL_FIND, [ILE])], calling="FINDSCU")
        with s:
            if kind != 2:
                fail("raw C-FIND association: PDU %d" % kind)
            else:
                s.sendall(p_data(1, 3, find_rq(9)) + p_data(1, 2, el(0x0008, 0x0005, b"ISO_IR 192") +
                                                         el(0x0010, 0x0010, "AB\u202eCD\u009b31m*".encode())))
                for _ in range(1000):
                    kind, body = recv_pdu(s, timeout=20)
                    st = command_status(body) if kind == 4 else None
                    if kind != 4 or (st is not None and st not in (0xFF00, 0xFF01)):
                        break
                s.sendall(RELEASE_RQ)
                recv_pdu(s)
        expect_rj(srv.port, 1, 1, 3, "calling AE not allowed", calling="INTRUDER")
        s, kind, _ = associate(srv.port, calling='A"B}{')  # JSON's own characters in an AE title
        s.close()
        with connect(srv.port) as s2:  # a connection that never asks
            s2.sendall(b"\x01\x00")
        wait_for(lambda: open(audit).read().count("\n") >= 9, 10)
    finally:
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    records = []
    with open(audit) as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except ValueError as e:
                fail("audit line %d is not JSON (%s): %r" % (n, e, line))
    finds = [r for r in records if r.get("event") == "c-find"]
    assoc = [r for r in records if r.get("event") == "association"]
    conns = [r for r in records if r.get("event") == "connection"]
    note("audit: %d records (%d associations, %d C-FIND, %d connections)" % (len(records), len(assoc), len(finds),
                                                                            len(conns)))
    for r in records:
        for key in ("time", "event", "peer", "calling_ae", "called_ae", "transport", "tls_subject"):
            if key not in r:
                fail("audit record without %s: %s" % (key, r))
    if not finds or finds[0]["calling_ae"] != "FINDSCU" or finds[0]["status"] != "0000":
        fail("no C-FIND record for findscu: %s" % finds)
    elif sorted(finds[0]["patient_ids"]) != want_ids or finds[0]["matches"] < len(want_ids) or not want_ids:
        fail("C-FIND record lists %s (%d matches), findscu saw %s" % (finds[0]["patient_ids"],
                                                                     finds[0]["matches"], want_ids))
    if len(finds) < 3 or sorted(finds[1]["patient_ids"]) != want_ids:
        fail("the C-FIND without Patient ID lists %s, want %s" % (finds[1:2] and finds[1]["patient_ids"], want_ids))
    raw = open(audit, encoding="utf-8").read()
    # (the query summary shows names folded to lower case)
    if "\u202e" in raw or "\u009b" in raw or "ab\\u202ecd\\u009b31m*" not in raw.lower():
        fail("bidi and C1 controls are not escaped in the audit log")
    if not any(r.get("query", "").lower().find("ab\u202ecd\u009b31m*") >= 0 for r in finds):
        fail("the escaped query does not read back as the name sent: %s" % finds)
    # A link planted where the audit log goes is refused, not followed.
    victim = os.path.join(tmp, "victim.txt")
    with open(victim, "w") as f:
        f.write("untouched\n")
    link = os.path.join(tmp, "planted.jsonl")
    os.symlink(victim, link)
    r = subprocess.run([mwl, "serve", "--port", "0", "--bind", HOST, "--db", db, "--audit-log", link],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    if r.returncode == 0 or b"symbolic link" not in r.stderr or open(victim).read() != "untouched\n":
        fail("an audit log path that is a symbolic link: exit %d, %r" % (r.returncode, r.stderr[-300:]))
    if not any(r["calling_ae"] == "INTRUDER" and r["result"] == "refused" and "(1,1,3" in r.get("reason", "")
               for r in assoc):
        fail("the refused association is not in the audit log: %s" % assoc)
    if not any(r["calling_ae"] == 'A"B}{' and r["result"] == "accepted" for r in assoc):
        fail("an AE title with JSON characters did not survive as a string: %s" % assoc)
    if not conns:
        fail("the connection that never asked is not in the audit log")
    return 0


def mode_reload(mwl, tmp, sanitized):
    """SIGHUP reads the configuration again: a new allow-list and log level
    apply to new associations while one opened before keeps working; a bad
    file is refused and the running configuration stays; the audit log is
    reopened after a rotation."""
    conf = os.path.join(tmp, "reload.conf")
    audit = os.path.join(tmp, "audit.jsonl")

    def write_conf(text):
        with open(conf + ".tmp", "w") as f:
            f.write(text)
        os.rename(conf + ".tmp", conf)

    write_conf("calling-aet-allow = OLD\nlog-level = info\naudit-log = %s\n" % audit)
    srv = Server(mwl, tmp, "--config", conf, name="reload")
    held = None
    try:
        held, kind, _ = associate(srv.port, calling="OLD")
        if kind != 2:
            fail("OLD before the reload: PDU %d" % kind)
        expect_rj(srv.port, 1, 1, 3, "NEW before the reload", calling="NEW")
        # The new rules bind titles to addresses: NEW from here, FAR only
        # from a range this peer is not in.
        write_conf("allow = NEW@127.0.0.1\nallow = FAR@10.0.0.0/8\nlog-level = debug\naudit-log = %s\n" % audit)
        os.rename(audit, audit + ".1")  # a rotation
        srv.proc.send_signal(signal.SIGHUP)
        if not wait_for(lambda: "reload done" in srv.log_text(), 10):
            fail("no 'reload done' in the log:\n" + srv.log_text()[-1500:])
        expect_rj(srv.port, 1, 1, 3, "OLD after the reload", calling="OLD")
        if not raw_echo(srv.port, calling="NEW"):
            fail("NEW refused after the reload")
        expect_rj(srv.port, 1, 1, 3, "FAR from 127.0.0.1 after the reload", calling="FAR")
        # The association opened before goes on as it was.
        held.sendall(p_data(1, 3, echo_rq(7)))
        kind, body = recv_pdu(held)
        if kind != 4 or command_status(body) != 0:
            fail("the association opened before the reload stopped working")
        held.sendall(RELEASE_RQ)
        recv_pdu(held)
        if "debug:" not in srv.log_text().split("reload done")[-1]:
            fail("log-level debug did not take effect")
        if not os.path.exists(audit) or "NEW" not in open(audit).read():
            fail("the audit log was not reopened at its path after the rotation")
        # A bad configuration is refused; the running one stays.
        write_conf("calling-aet-allow = BAD\nmax-peer-connections = 0\n")
        srv.proc.send_signal(signal.SIGHUP)
        if not wait_for(lambda: "reload refused" in srv.log_text(), 10):
            fail("a bad configuration was not refused:\n" + srv.log_text()[-1500:])
        if not raw_echo(srv.port, calling="NEW"):
            fail("NEW refused after a refused reload")
        expect_rj(srv.port, 1, 1, 3, "BAD after a refused reload", calling="BAD")
        note("reload: allow-list, log level and audit log switched; a bad file refused")
    finally:
        if held:
            held.close()
        rc, _ = srv.stop()
        if rc != 0:
            fail("server exit %s" % rc)
    return 0


MODES = {
    "interop": mode_interop,
    "bad-peers": mode_bad_peers,
    "load": mode_load,
    "limits": mode_limits,
    "sigterm": mode_sigterm,
    "cli": mode_cli,
    "allow": mode_allow,
    "finds": mode_finds,
    "audit": mode_audit,
    "reload": mode_reload,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        print(__doc__)
        return 2
    mode, mwl = sys.argv[1], sys.argv[2]
    sanitized = "--sanitized" in sys.argv[3:]
    if not sys.platform.startswith("linux"):
        print("SKIP: needs /proc (Linux)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="mwl-server-")
    t0 = time.monotonic()
    try:
        rc = MODES[mode](mwl, tmp, sanitized)
    except Exception as e:  # a crash in the test itself is a failure too
        import traceback
        traceback.print_exc()
        fail("%s: %s" % (type(e).__name__, e))
        rc = 1
    finally:
        kill_children()
        shutil.rmtree(tmp, ignore_errors=True)
    if rc == SKIP:
        return SKIP
    note("%s: %.1f s" % (mode, time.monotonic() - t0))
    if failures:
        print("server_test %s: FAILED (%d problems)" % (mode, len(failures)))
        return 1
    print("server_test %s: ok" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
