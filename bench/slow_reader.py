#!/usr/bin/env python3
"""Slow reader vs. WAL checkpoints (issue 10). Run by hand:

  bench/slow_reader.py [--build DIR] [--items N] [--matches M] [--seconds S]
                       [--every S] [--read-bytes B] [--read-every S]
                       [--write-rate R] [--db FILE] [-- mwl serve options]

Makes a database of N `mwl demo` items (default 100,000, about 300 a day
around today; a fresh one in a temporary folder unless --db names one),
picks the SPS start date range whose items number about M (default 30,000),
and starts `mwl serve` on it. Then:

  - a raw-socket client (SO_RCVBUF 4096, PDUs built here) associates, sends
    one C-FIND for that date range and reads its responses B bytes (200)
    every S seconds (2);
  - load_bench's writer (build/bench/load_bench --interactive 0 --scanners 0)
    adds R items/s (default 100) to the database, so the WAL has something
    to grow with;
  - every --every seconds (5) for --seconds (60), this script runs
    PRAGMA wal_checkpoint(TRUNCATE) from Python's sqlite3 (busy timeout 1 s)
    and records its row (busy, log frames, checkpointed frames), and the
    -wal file's size before and after.

Prints a table over time, then one checkpoint after the slow client has gone,
and a JSON summary line. A server that holds a read transaction open for the
slow client makes every checkpoint report busy=1 and the WAL grow; one that
does not lets it succeed (0, 0, 0) and keeps the WAL near zero. The
"association" column says whether the server still holds the slow
association (its side of the TCP connection, from /proc/net/tcp): mwl serve
closes a connection whose peer takes none of its pending output for
--write-timeout (30 s by default), and a client reading 200 bytes every 2 s
through a small receive window can look exactly like that to the server.
Pass `-- --write-timeout 600` to keep it for the whole run. Every process
started here is killed by PID on every way out; every wait is bounded.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

MWL_FIND = "1.2.840.10008.5.1.4.31"
ILE = "1.2.840.10008.1.2"
STARTED = []


def kill_started():
    for proc in STARTED:
        if proc.poll() is None:
            try:
                proc.kill()  # by PID
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def on_signal(signo, _frame):
    kill_started()
    sys.exit(128 + signo)


# ---- PDUs (PS3.8 9.3) and the identifier (Implicit VR Little Endian) ------

def item(kind, data):
    return struct.pack(">BBH", kind, 0, len(data)) + data


def assoc_rq(called="MWL", calling="SLOWREADER", max_pdu=16384):
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    body += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, MWL_FIND.encode()) + item(0x40, ILE.encode()))
    body += item(0x50, item(0x51, struct.pack(">I", max_pdu)) + item(0x52, b"1.2.826.0.1.3680043.2.1"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def el(group, elem, value, pad=b" "):
    if len(value) % 2:
        value += pad
    return struct.pack("<HHI", group, elem, len(value)) + value


def uid(text):
    return text.encode() + (b"\0" if len(text) % 2 else b"")


def command_set(fields):
    body = b"".join(struct.pack("<HHI", 0, e, len(v)) + v for e, v in fields)
    return struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", len(body)) + body


def find_rq(message_id):
    return command_set([(0x0002, uid(MWL_FIND)), (0x0100, struct.pack("<H", 0x0020)),
                        (0x0110, struct.pack("<H", message_id)), (0x0700, struct.pack("<H", 0)),
                        (0x0800, struct.pack("<H", 0x0102))])


def identifier(date_range):
    sps = (el(0x0008, 0x0060, b"") + el(0x0040, 0x0001, b"") + el(0x0040, 0x0002, date_range.encode())
           + el(0x0040, 0x0003, b"") + el(0x0040, 0x0006, b"") + el(0x0040, 0x0007, b"")
           + el(0x0040, 0x0009, b""))
    seq_item = struct.pack("<HHI", 0xFFFE, 0xE000, len(sps)) + sps
    return (el(0x0008, 0x0050, b"") + el(0x0010, 0x0010, b"") + el(0x0010, 0x0020, b"")
            + el(0x0010, 0x0030, b"") + el(0x0010, 0x0040, b"") + el(0x0020, 0x000D, b"", b"\0")
            + el(0x0032, 0x1060, b"") + struct.pack("<HHI", 0x0040, 0x0100, len(seq_item)) + seq_item
            + el(0x0040, 0x1001, b""))


def p_data(control, data):
    pdv = struct.pack(">IBB", len(data) + 2, 1, control) + data
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


ABORT = bytes([7, 0, 0, 0, 0, 4, 0, 0, 0, 0])


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def tcp_sides(server_port, client_port):
    """What the kernel says about the connection (Linux /proc/net/tcp):
    (server side state, its send queue bytes, client side receive queue
    bytes). The server side is the truth about whether the server still
    holds the association: once it closes (FIN_WAIT1/2, or gone) the client
    only sees that after reading what is already queued to it."""
    server, tx, rx = "gone", 0, 0
    try:
        lines = []
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):  # the listener may be dual-stack
            if os.path.exists(name):
                with open(name) as f:
                    lines += f.readlines()[1:]
        for line in lines:
            parts = line.split()
            local, remote = int(parts[1].split(":")[1], 16), int(parts[2].split(":")[1], 16)
            tx_q, rx_q = (int(x, 16) for x in parts[4].split(":"))
            if local == server_port and remote == client_port:
                server, tx = TCP_STATES.get(int(parts[3], 16), parts[3]), tx_q
            elif local == client_port and remote == server_port:
                rx = rx_q
    except (OSError, ValueError, IndexError):
        return "?", 0, 0
    return server, tx, rx


def recv_pdu(sock, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    need = 6
    while len(buf) < need:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no PDU")
        sock.settimeout(left)
        chunk = sock.recv(need - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
        if len(buf) == 6 and need == 6:
            need = 6 + struct.unpack(">I", buf[2:6])[0]
    return buf[0], buf[6:]


class SlowClient(threading.Thread):
    """Associates, sends the C-FIND, then reads `chunk` bytes every `every`
    seconds until stopped; counts bytes and response command sets."""

    def __init__(self, port, date_range, chunk, every, rcvbuf):
        super().__init__(daemon=True)
        self.port, self.date_range, self.chunk, self.every, self.rcvbuf = port, date_range, chunk, every, rcvbuf
        self.bytes = 0
        self.responses = 0  # command PDVs received (Pending responses, and the final one)
        self.final_status = None
        self.closed = None  # why the connection ended, if it did
        self.error = None
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.sock = None
        self.local_port = 0
        self._buf = b""
        self._cmd = b""

    def _parse(self):
        while len(self._buf) >= 6:
            kind = self._buf[0]
            length = struct.unpack(">I", self._buf[2:6])[0]
            if len(self._buf) < 6 + length:
                return
            body = self._buf[6:6 + length]
            self._buf = self._buf[6 + length:]
            if kind != 4:
                self.closed = "PDU type %d from the server" % kind
                continue
            pos = 0
            while pos + 6 <= len(body):
                plen = struct.unpack(">I", body[pos:pos + 4])[0]
                control = body[pos + 5]
                if control & 1:
                    self._cmd += body[pos + 6:pos + 4 + plen]
                    if control & 2:
                        self.responses += 1
                        status = self._status(self._cmd)
                        if status is not None and status not in (0xFF00, 0xFF01):
                            self.final_status = status
                        self._cmd = b""
                pos += 4 + plen

    @staticmethod
    def _status(cmd):
        pos = 0
        while pos + 8 <= len(cmd):
            g, e, n = struct.unpack("<HHI", cmd[pos:pos + 8])
            if g == 0 and e == 0x0900:
                return struct.unpack("<H", cmd[pos + 8:pos + 10])[0]
            pos += 8 + n
        return None

    def run(self):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock = s
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)  # before connect: the window
            s.settimeout(10)
            s.connect(("127.0.0.1", self.port))
            self.local_port = s.getsockname()[1]
            s.sendall(assoc_rq())
            kind, body = recv_pdu(s, 10)
            if kind != 2:
                raise ConnectionError("association not accepted (PDU type %d)" % kind)
            s.sendall(p_data(0x03, find_rq(1)) + p_data(0x02, identifier(self.date_range)))
        except Exception as e:  # noqa: BLE001 - reported, not raised
            self.error = "setup: %s" % e
            self.ready.set()
            return
        self.ready.set()
        while not self.stop.is_set() and self.closed is None and self.final_status is None:
            try:
                s.settimeout(0.5)
                data = s.recv(self.chunk)
                if not data:
                    self.closed = "closed by the server"
                    break
                self.bytes += len(data)
                self._buf += data
                self._parse()
            except socket.timeout:
                pass
            except OSError as e:
                self.closed = "error: %s" % e
                break
            self.stop.wait(self.every)

    def abort(self):
        if self.sock:
            try:
                self.sock.settimeout(1)
                self.sock.sendall(ABORT)
            except OSError:
                pass
            self.sock.close()


# ---- the database ------------------------------------------------------------

def pick_range(db, target):
    """The first run of SPS start dates holding at least `target` SPS:
    (lo, hi, count)."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    rows = c.execute("SELECT start_date, count(*) FROM sps GROUP BY start_date ORDER BY start_date").fetchall()
    c.close()
    total, lo = 0, None
    for date, n in rows:
        lo = lo or date
        total += n
        if total >= target:
            return lo, date, total
    return lo, rows[-1][0], total


def wal_size(db):
    try:
        return os.path.getsize(db + "-wal")
    except OSError:
        return 0


def checkpoint(db):
    """(busy, log, checkpointed) of PRAGMA wal_checkpoint(TRUNCATE), and ms."""
    t0 = time.monotonic()
    try:
        c = sqlite3.connect(db, timeout=1.0)
        row = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        c.close()
    except sqlite3.Error as e:
        row = ("error: %s" % e,)
    return tuple(row), (time.monotonic() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--matches", type=int, default=30000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--read-bytes", type=int, default=200)
    ap.add_argument("--read-every", type=float, default=2)
    ap.add_argument("--rcvbuf", type=int, default=4096)
    ap.add_argument("--write-rate", type=float, default=100)
    ap.add_argument("--db")
    ap.add_argument("serve_args", nargs="*", help="after --: mwl serve options")
    args = ap.parse_args()
    mwl = os.path.join(args.build, "mwl")
    lb = os.path.join(args.build, "bench", "load_bench")
    for tool in (mwl, lb):
        if not os.access(tool, os.X_OK):
            sys.exit("build first: %s is missing" % tool)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    work = tempfile.mkdtemp(prefix="slow_reader.")
    try:
        return run(args, mwl, lb, work)
    finally:
        kill_started()
        shutil.rmtree(work, ignore_errors=True)


def run(args, mwl, lb, work):
    db = args.db or os.path.join(work, "mwl.db")
    if not args.db or not os.path.exists(db):
        days = max(30, args.items // 300)
        start = time.strftime("%Y%m%d", time.localtime(time.time() - days // 2 * 86400))
        t0 = time.monotonic()
        subprocess.run([mwl, "demo", "--db", db, "--count", str(args.items), "--days", str(days),
                        "--start", start], check=True, stdout=subprocess.DEVNULL, timeout=3600)
        print("mwl demo: %d items over %d days in %.1f s" % (args.items, days, time.monotonic() - t0))
    lo, hi, matches = pick_range(db, args.matches)
    date_range = "%s-%s" % (lo, hi)
    print("query: SPS Start Date %s -> %d matches (SQL count of the SPS in the range)" % (date_range, matches))
    row, _ = checkpoint(db)
    print("WAL before the start: %d bytes, checkpoint %s" % (wal_size(db), row))

    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "serve.log"), "w")
    srv = subprocess.Popen([mwl, "serve", "--db", db, "--port", "0", "--port-file", port_file,
                            "--log-level", "warn"] + args.serve_args, stdout=log, stderr=log)
    STARTED.append(srv)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and srv.poll() is None:
        if os.path.exists(port_file) and os.path.getsize(port_file):
            break
        time.sleep(0.05)
    if srv.poll() is not None or not os.path.exists(port_file):
        print("mwl serve did not start", file=sys.stderr)
        return 1
    port = int(open(port_file).read())
    print("mwl serve pid %d port %d, flags: %s" % (srv.pid, port, " ".join(args.serve_args) or "(defaults)"))

    client = SlowClient(port, date_range, args.read_bytes, args.read_every, args.rcvbuf)
    client.start()
    client.ready.wait(15)
    if client.error:
        print("slow client: %s" % client.error, file=sys.stderr)
        return 1
    writer = None
    if args.write_rate > 0:
        writer = subprocess.Popen([lb, "--db", db, "--interactive", "0", "--scanners", "0", "--warmup", "0",
                                   "--write-rate", str(args.write_rate), "--duration", str(args.seconds)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        STARTED.append(writer)
    print("slow client reads %d bytes every %.1f s (SO_RCVBUF %d); writer %s items/s\n"
          % (args.read_bytes, args.read_every, args.rcvbuf, args.write_rate))
    fmt = "%5s %11s %-24s %7s %11s %8s %6s %7s %6s  %s"
    print(fmt % ("t s", "WAL before", "checkpoint(busy,log,ckpt)", "ckpt ms", "WAL after", "read B", "rsps",
                 "srv-q B", "cli-q B", "association"))
    samples = []
    t_start = time.monotonic()
    k = 1
    while True:
        due = t_start + k * args.every
        if due > t_start + args.seconds + 1e-6:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        before = wal_size(db)
        row, ms = checkpoint(db)
        after = wal_size(db)
        server_state, tx, rx = tcp_sides(port, client.local_port)
        if client.final_status is not None:
            state = "final status %04X" % client.final_status
        elif server_state == "ESTABLISHED":
            state = "open"
        else:
            state = "server closed (%s)" % server_state
        if client.closed:
            state += "; client: " + client.closed
        s = {"t": round(time.monotonic() - t_start, 1), "wal_before": before, "checkpoint": list(row),
             "checkpoint_ms": round(ms, 1), "wal_after": after, "client_bytes": client.bytes,
             "responses": client.responses, "connection": state,
             "server_open": server_state == "ESTABLISHED" and client.final_status is None,
             "server_send_queue": tx, "client_receive_queue": rx}
        samples.append(s)
        print(fmt % ("%.0f" % s["t"], before, str(row), "%.0f" % ms, after, client.bytes, client.responses, tx,
                     rx, state), flush=True)
        k += 1
    writer_out = ""
    if writer:
        try:
            writer_out, _ = writer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer_out, _ = writer.communicate(timeout=5)
    client.stop.set()
    client.join(10)
    client.abort()
    time.sleep(0.5)
    before = wal_size(db)
    row, ms = checkpoint(db)
    after_gone = {"wal_before": before, "checkpoint": list(row), "checkpoint_ms": round(ms, 1),
                  "wal_after": wal_size(db)}
    print("\nafter the slow client aborted: WAL %d bytes, checkpoint %s in %.0f ms, WAL then %d bytes"
          % (before, row, ms, after_gone["wal_after"]))
    for line in writer_out.splitlines():
        if line.startswith("  items"):
            print("writer:%s" % line.strip()[5:])
    busy = sum(1 for s in samples if s["checkpoint"] and s["checkpoint"][0] == 1)
    held = [s for s in samples if s["server_open"]]
    held_busy = sum(1 for s in held if s["checkpoint"] and s["checkpoint"][0] == 1)
    print("while the server held the slow association (%d of %d samples): %d checkpoints busy, WAL up to %d bytes"
          % (len(held), len(samples), held_busy, max([s["wal_before"] for s in held] + [0])))
    if len(held) < len(samples):
        print("the server closed the slow association after about %.0f s (see the serve log lines below)"
              % next(s["t"] for s in samples if not s["server_open"]))
    print(json.dumps({"items": args.items, "date_range": date_range, "matches": matches,
                      "read_bytes": args.read_bytes, "read_every_s": args.read_every,
                      "write_rate": args.write_rate, "checkpoints": len(samples), "busy": busy,
                      "samples_held": len(held), "busy_held": held_busy,
                      "wal_max_held": max([s["wal_before"] for s in held] + [0]),
                      "wal_max": max([s["wal_before"] for s in samples] + [0]),
                      "client_bytes": client.bytes, "samples": samples, "after_client_gone": after_gone}))
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(15)
    except subprocess.TimeoutExpired:
        srv.kill()
    log.close()
    with open(os.path.join(work, "serve.log"), errors="replace") as f:
        lines = [l.rstrip() for l in f if "SLOWREADER" in l or "write-timeout" in l or "pending" in l]
    for l in lines[:10]:
        print("serve log: " + l)
    return 0


if __name__ == "__main__":
    sys.exit(main())
