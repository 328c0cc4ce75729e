#!/usr/bin/env python3
"""kill -9 of `mwl serve` while HL7 orders stream in: every order the server
acknowledged with AA is in the worklist afterwards, exactly once.

    hl7_crash.py MWL [--rounds N] [--connections N] [--seed S]

The HL7 feed (issue 12) sends MSA-1 AA only once the order's change is
committed durably. That is what this checks, from the outside:

  - a sender (raw MLLP over TCP, this script) streams distinct ORM^O01 NW
    orders (own accession, SPS ID, Study UID and MSH-10 each) over several
    connections, each connection send -> wait for the ACK -> next;
  - in each round the server runs for a random 0.2-1.5 s of that traffic
    (counted from the round's first AA) and is then killed with SIGKILL (by PID), and restarted on the same
    database with new ports;
  - an order whose ACK was cut off by the kill is resent on the next
    connection with the same MSH-10, as interface engines do: it must not
    become a second item whether or not its first copy was committed (the
    script reads the database between kill and restart and prints how many
    of these orders were already committed: the resends that test that);
  - after the last round a final server takes a few more orders, and the
    worklist is read twice: by C-FIND through that server (`mwl find`,
    every item's Accession Number) and, after it stopped, from the
    database file (sqlite3: PRAGMA integrity_check, rows per accession).

Passes when every AA order is present once in both, no order got anything
but AA, and orders were acknowledged in every round (a round without any
would check nothing). Orders sent but never acknowledged may or may not be
present. Prints the counts: sent, AA, resent, present, lost (must be 0).

Exit 0 pass, 1 fail, 77 skipped (this mwl has no HL7 listener). Every wait
is bounded; every process started here is killed by PID on the way out.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import harness
from harness import check

HOST = "127.0.0.1"
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
ACK_TIMEOUT = 15.0  # one ACK on a loaded 2-CPU machine doing fsyncs


def order_message(n, start):
    """ORM^O01 (2.3.1) creating one SPS: item number n, unique everywhere."""
    acc, sps, rp = "ACC%07d" % n, "SPS%07d" % n, "RP%07d" % n
    uid = "2.25.%d" % uuid.uuid4().int
    ts = "^^^" + start  # TQ: component 4 = start date/time
    obr = [""] * 28
    obr[0], obr[1], obr[2], obr[3] = "OBR", "1", "PL%07d" % n, "FL%07d" % n
    obr[4] = "CTCHEST^CT chest^L"
    obr[18], obr[19], obr[20], obr[24], obr[27] = acc, rp, sps, "CT", ts
    segs = [
        "MSH|^~\\&|RIS|RADDEPT|MWL|MWLSRV|%s||ORM^O01|C%07d|P|2.3.1" % (time.strftime("%Y%m%d%H%M%S"), n),
        "PID|||PAT%07d^^^HOSP||CRASH^TEST^%d||19700101|M" % (n, n),
        "PV1||O|RAD^CT1^^HOSP",
        "ORC|NW|PL%07d|FL%07d||SC||%s" % (n, n, ts),
        "|".join(obr),
        "ZDS|%s^RIS^Application^DICOM" % uid,
    ]
    return ("\r".join(segs) + "\r").encode("ascii"), "C%07d" % n, acc


def read_ack(sock, deadline):
    """The payload of the next MLLP frame, or None if the peer closed."""
    buf = b""
    while True:
        start = buf.find(VT)
        if start >= 0:
            end = buf.find(FS, start)
            if end >= 0:
                return buf[start + 1:end]
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no ACK within %.0f s" % ACK_TIMEOUT)
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk


def msa(payload):
    for seg in payload.replace(b"\n", b"\r").split(CR):
        if seg.startswith(b"MSA"):
            f = seg.decode("utf-8", "replace").split(seg[3:4].decode())
            return (f[1] if len(f) > 1 else ""), (f[2] if len(f) > 2 else ""), (f[3] if len(f) > 3 else "")
    return "", "", ""


class Feed:
    """What the senders share: the current server's HL7 port (None while it
    is down), a generation number that changes with every start, and what
    was sent and acknowledged."""

    def __init__(self):
        self.lock = threading.Condition()
        self.port = None
        self.generation = 0
        self.stop = False
        self.next_n = 0
        self.sent = set()        # accession numbers sent at least once
        self.acked = {}          # accession -> generation whose server sent AA
        self.resent = 0
        self.inflight = {}       # sender -> accession sent and not yet answered
        self.bad = []            # (accession, MSA-1, text): anything but AA
        self.errors = []         # sender failures that are not the kill

    def take_number(self):
        with self.lock:
            self.next_n += 1
            return self.next_n

    def wait_server(self, seen_generation):
        """(port, generation) of a server newer than the one that failed,
        or None at the stop; bounded by the caller's overall deadline."""
        with self.lock:
            while not self.stop and (self.port is None or self.generation == seen_generation):
                self.lock.wait(0.2)
            return None if self.stop else (self.port, self.generation)


def sender(feed, start, deadline):
    """One MLLP connection at a time: send an order, wait for its ACK, next.
    A connection the kill breaks is replaced once the next server is up,
    and the order in flight is resent there with the same MSH-10."""
    pending = None  # (message, control ID, accession) not yet acknowledged
    me = threading.get_ident()
    failed_generation = -1
    while time.monotonic() < deadline:
        got = feed.wait_server(failed_generation)
        if got is None:
            return
        port, generation = got
        try:
            sock = socket.create_connection((HOST, port), timeout=5)
        except OSError:
            failed_generation = generation  # killed before we got in
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while time.monotonic() < deadline:
                with feed.lock:
                    if feed.stop:
                        return
                if pending is None:
                    pending = order_message(feed.take_number(), start)
                else:
                    with feed.lock:
                        feed.resent += 1
                msg, control, acc = pending
                with feed.lock:
                    feed.sent.add(acc)
                    feed.inflight[me] = acc
                sock.sendall(VT + msg + FS + CR)
                payload = read_ack(sock, time.monotonic() + ACK_TIMEOUT)
                if payload is None:
                    raise ConnectionResetError("closed by the server")
                code, ref, text = msa(payload)
                with feed.lock:
                    if code == "AA" and ref == control:
                        feed.acked[acc] = generation
                    else:
                        feed.bad.append((acc, code, ref, text))
                    feed.inflight.pop(me, None)
                pending = None
        except socket.timeout as e:
            # a live server that does not answer is a failure, not the kill
            with feed.lock:
                if feed.port is not None and feed.generation == generation:
                    feed.errors.append("connection to generation %d: %s" % (generation, e))
                    feed.stop = True
                    feed.lock.notify_all()
            failed_generation = generation
        except OSError:
            failed_generation = generation
        finally:
            sock.close()


class Server:
    extra = []  # flags this mwl has that keep the listeners on 127.0.0.1

    def __init__(self, mwl, work, db, generation):
        self.port_file = os.path.join(work, "port%d" % generation)
        self.hl7_file = os.path.join(work, "hl7port%d" % generation)
        self.log_path = os.path.join(work, "serve%d.log" % generation)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [mwl, "serve", "--db", db, "--bind", HOST, "--port", "0", "--port-file", self.port_file,
             "--hl7-port", "0", "--hl7-port-file", self.hl7_file, "--hl7-station", "CT CT01",
             "--log-level", "warn"] + Server.extra,
            stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=harness.die_with_parent)
        harness.STARTED.append(self.proc)
        self.port = self.hl7_port = None

    def wait_ready(self, seconds=15.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                with open(self.port_file) as f:
                    p = f.read().strip()
                with open(self.hl7_file) as f:
                    h = f.read().strip()
                if p.isdigit() and h.isdigit():
                    self.port, self.hl7_port = int(p), int(h)
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def tail(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-15:])

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)  # by PID
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None
        finally:
            self.log.close()


def find_accessions(mwl, port):
    """Every item's Accession Number, by C-FIND through the server."""
    r = subprocess.run([mwl, "find", "--keys-only", "-k", "AccessionNumber",
                        "-k", "ScheduledProcedureStepSequence.ScheduledProcedureStepID",
                        "--json", "--timeout", "60", HOST, str(port)],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "mwl find failed (%d): %s" % (r.returncode, r.stderr.strip()[-500:]))
    out = []
    for item in json.loads(r.stdout):
        v = item.get("00080050", {}).get("Value", [""])
        out.append(v[0] if v else "")
    return out


def committed(db, accessions):
    """Which of `accessions` the database holds (read-only, between a kill
    and the restart)."""
    if not accessions:
        return set()
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        q = "SELECT accession FROM sps WHERE accession IN (%s)" % ",".join("?" * len(accessions))
        return {r[0] for r in con.execute(q, list(accessions))}
    finally:
        con.close()


def db_accessions(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = [r[0] for r in con.execute("SELECT accession FROM sps")]
    finally:
        con.close()
    return ok, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mwl")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, harness.on_signal)
    signal.signal(signal.SIGINT, harness.on_signal)

    h = subprocess.run([a.mwl, "serve", "--help"], capture_output=True, text=True, timeout=30)
    if "--hl7-port" not in h.stdout + h.stderr:
        print("skipped: this mwl serve has no --hl7-port (HL7 feed not built in)")
        return harness.SKIP
    if "--hl7-bind" in h.stdout + h.stderr:
        Server.extra = ["--hl7-bind", HOST]

    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("seed %d (--seed to repeat the kill times), %d rounds, %d connections" % (seed, a.rounds, a.connections))
    work = tempfile.mkdtemp(prefix="mwl_hl7crash_")
    db = os.path.join(work, "feed.db")
    feed = Feed()
    start = time.strftime("%Y%m%d", time.localtime(time.time() + 86400)) + "0830"
    deadline = time.monotonic() + 200  # the whole run; CTest allows 300 s
    threads = [threading.Thread(target=sender, args=(feed, start, deadline), daemon=True)
               for _ in range(a.connections)]
    srv = None
    try:
        for t in threads:
            t.start()
        per_round = []
        cut_total = cut_committed = 0
        for rnd in range(a.rounds + 1):
            final = rnd == a.rounds
            srv = Server(a.mwl, work, db, rnd + 1)
            check(srv.wait_ready(), "server %d did not start:\n%s" % (rnd + 1, srv.tail()))
            before = len(feed.acked)
            with feed.lock:
                feed.port, feed.generation = srv.hl7_port, rnd + 1
                feed.lock.notify_all()
            # The random moment counts from the round's first AA: a server
            # slow to start on a loaded machine must not make a round
            # that checks nothing.
            end = time.monotonic() + 30
            while len(feed.acked) == before and time.monotonic() < end and srv.proc.poll() is None:
                with feed.lock:
                    if feed.errors:
                        break
                time.sleep(0.005)
            run_for = 1.0 if final else rng.uniform(0.2, 1.5)
            time.sleep(run_for)
            with feed.lock:
                check(not feed.errors, "sender: %s" % feed.errors)
            if not final:
                check(srv.proc.poll() is None, "server %d died by itself:\n%s" % (rnd + 1, srv.tail()))
                with feed.lock:
                    feed.port = None  # the senders wait for the next one
                srv.kill9()
                srv = None
                # The orders whose ACK the kill cut off: those already
                # committed are resent all the same, which is the case the
                # "once" check is about (the server must answer, not apply).
                with feed.lock:
                    cut = set(feed.inflight.values())
                done = committed(db, cut)
                cut_total += len(cut)
                cut_committed += len(done)
            else:
                # stop the senders first so no order is in flight at the end
                with feed.lock:
                    feed.stop = True
                    feed.lock.notify_all()
                for t in threads:
                    t.join(timeout=ACK_TIMEOUT + 5)
                check(not any(t.is_alive() for t in threads), "a sender did not stop")
            acked_now = len(feed.acked) - before
            per_round.append((run_for, acked_now))
            print("round %d: %s after %.2f s, %d orders acknowledged (AA) in it"
                  % (rnd + 1, "stopped" if final else "kill -9", run_for, acked_now))

        with feed.lock:
            sent, acked, bad, resent = set(feed.sent), dict(feed.acked), list(feed.bad), feed.resent
        print("in flight at a kill: %d orders (sent, no ACK read yet), %d of them already committed"
              % (cut_total, cut_committed))
        check(not bad, "%d orders answered with other than AA, e.g. %s" % (len(bad), bad[:3]))
        check(all(n > 0 for _, n in per_round),
              "a round without any AA checks nothing: %s" % per_round)

        # Through the running (final) server, as a modality sees it.
        found = find_accessions(a.mwl, srv.port)
        rc = srv.stop()
        srv = None
        check(rc == 0, "the final server exited %s on SIGTERM" % rc)
        ok, rows = db_accessions(db)
        check(ok == "ok", "integrity_check: %s" % ok)

        def tally(values):
            counts = {}
            for v in values:
                counts[v] = counts.get(v, 0) + 1
            return counts

        by_find, by_db = tally(found), tally(rows)
        lost = sorted(acc for acc in acked if acc not in by_db)
        lost_find = sorted(acc for acc in acked if acc not in by_find)
        twice = sorted(acc for acc in sent if by_db.get(acc, 0) > 1 or by_find.get(acc, 0) > 1)
        unknown = sorted(set(by_db) - sent)
        unacked_present = sum(1 for acc in sent - set(acked) if acc in by_db)
        print("sent %d distinct orders (%d resent after a kill), acknowledged AA %d, present %d (C-FIND %d), "
              "sent but not acknowledged %d of which present %d, lost %d, duplicated %d"
              % (len(sent), resent, len(acked), len(by_db), len(found), len(sent) - len(acked),
                 unacked_present, len(lost), len(twice)))
        check(not lost, "%d acknowledged orders missing from the database, e.g. %s (acknowledged by servers %s)"
              % (len(lost), lost[:5], sorted({acked[x] for x in lost})))
        check(not lost_find, "%d acknowledged orders missing from C-FIND, e.g. %s" % (len(lost_find), lost_find[:5]))
        check(not twice, "%d orders stored more than once, e.g. %s" % (len(twice), twice[:5]))
        check(not unknown, "items nobody sent: %s" % unknown[:5])
        check(len(found) == len(rows), "C-FIND found %d items, the database holds %d" % (len(found), len(rows)))
        print("PASS")
        return 0
    except harness.Failure as e:
        print("FAIL: %s" % e)
        if srv is not None:
            print("server log tail:\n" + srv.tail())
        return 1
    finally:
        with feed.lock:
            feed.stop = True
            feed.lock.notify_all()
        harness.kill_started()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
