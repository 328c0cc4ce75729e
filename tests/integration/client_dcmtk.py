#!/usr/bin/env python3
"""The mwl client (SCU) against real peers: DCMTK servers and misbehaving
Python listeners, all on 127.0.0.1 with ports chosen at run time.

  client_dcmtk.py echo_dcmtk MWL     `mwl echo` against wlmscpfs and storescp:
                                     success, --repeat, --aet/--aec variations,
                                     a called AE title wlmscpfs does not know
                                     (rejected, exit 3), a refusing server.
  client_dcmtk.py echo_refused MWL   a closed port: exit 3 quickly, one line.
  client_dcmtk.py echo_stall MWL     a listener that accepts and never answers,
                                     and one that answers the association and
                                     then never the C-ECHO: exit 3 within
                                     --timeout, one line.
  client_dcmtk.py echo_status MWL    a peer answering C-ECHO with a failure
                                     status: exit 1, one line per failure.
  client_dcmtk.py find_dcmtk PROBE   C-FIND through the client API (PROBE is
                                     client_dcmtk_test) against wlmscpfs serving
                                     DCMTK's example worklist, compared with
                                     what `findscu -W` gets for the same query,
                                     in each transfer syntax.
  client_dcmtk.py find_cancel PROBE  cancel after the first response: final
                                     status FE00, the server survives.

Exit 0 pass, 1 fail, 77 skipped (DCMTK or its examples not installed).
Servers are started by this script and killed by PID when it ends, however
it ends; every wait is bounded.
"""

import glob
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from harness import SKIP, STARTED, Failure, check, kill_started, on_signal, need, free_port, wait_listening  # noqa: E402


def start_server(argv_for_port, log_path):
    """Starts a server on a fresh port; retries if another process took the
    port between our probe and its bind."""
    for _ in range(3):
        port = free_port()
        log = open(log_path, "ab")
        proc = subprocess.Popen(argv_for_port(port), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        STARTED.append(proc)
        if wait_listening(port, proc):
            return proc, port
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    raise Failure(f"server {argv_for_port(0)[0]} did not start (see {log_path})")


def run(argv, timeout=60):
    start = time.monotonic()
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1"), time.monotonic() - start


def one_line(stderr, what):
    lines = [line for line in stderr.splitlines() if line.strip()]
    check(len(lines) == 1, f"{what}: expected one line on stderr, got {lines!r}")
    return lines[0]


def example_dumps():
    """DCMTK's example worklist (Debian: /usr/share/doc/dcmtk/examples)."""
    paths = []
    try:
        out = subprocess.run(["dpkg", "-L", "dcmtk"], capture_output=True, timeout=30).stdout.decode()
        paths = [p for p in out.splitlines() if re.search(r"/wlistdb/OFFIS/[^/]+\.dump$", p)]
    except (OSError, subprocess.TimeoutExpired):
        pass
    if not paths:
        paths = glob.glob("/usr/share/doc/dcmtk*/examples/wlistdb/OFFIS/*.dump") + \
            glob.glob("/usr/local/share/doc/dcmtk*/examples/wlistdb/OFFIS/*.dump")
    paths = sorted(p for p in paths if os.path.isfile(p))
    if not paths:
        print("skipped: DCMTK's example worklist (wlistdb/OFFIS/*.dump) not found")
        sys.exit(SKIP)
    return paths


def make_worklist(tmp):
    """DIR/OFFIS/*.wl from the examples, as wlmscpfs expects."""
    ae_dir = os.path.join(tmp, "db", "OFFIS")
    os.makedirs(ae_dir)
    for dump in example_dumps():
        out = os.path.join(ae_dir, os.path.basename(dump)[:-5] + ".wl")
        code, _, err, _ = run(["dump2dcm", "-q", dump, out])
        check(code == 0, f"dump2dcm {dump}: {err}")
    open(os.path.join(ae_dir, "lockfile"), "w").close()
    return os.path.join(tmp, "db")


def start_wlmscpfs(tmp, db, *extra):
    return start_server(lambda port: ["wlmscpfs", "--single-process", *extra, "-dfp", db, str(port)],
                        os.path.join(tmp, "wlmscpfs.log"))


# ---------------------------------------------------------------------------
# mwl echo


def expect_echo_ok(mwl, port, *opts, repeat=1):
    argv = [mwl, "echo", "--timeout", "10", *opts, "127.0.0.1", str(port)]
    if repeat > 1:
        argv[2:2] = ["--repeat", str(repeat)]
    code, out, err, _ = run(argv)
    check(code == 0, f"{' '.join(argv)}: exit {code}, stderr {err!r}")
    check(err == "", f"{' '.join(argv)}: unexpected stderr {err!r}")
    check("association accepted" in out, f"no acceptance line in {out!r}")
    echoes = re.findall(r"^C-ECHO (\d+) \(Message ID (\d+)\): status 0x0000 Success, round trip \d+ ms$", out,
                        re.M)
    check([int(n) for n, _ in echoes] == list(range(1, repeat + 1)), f"echo lines in {out!r}")
    check([int(i) for _, i in echoes] == list(range(1, repeat + 1)), f"Message IDs in {out!r}")
    check("association released" in out, f"no release line in {out!r}")


def test_echo_dcmtk(mwl):
    need("wlmscpfs", "storescp", "dump2dcm")
    with tempfile.TemporaryDirectory(prefix="mwl-echo-") as tmp:
        db = os.path.join(tmp, "db")
        os.makedirs(os.path.join(db, "OFFIS"))
        open(os.path.join(db, "OFFIS", "lockfile"), "w").close()
        _, port = start_wlmscpfs(tmp, db)
        expect_echo_ok(mwl, port, "--aec", "OFFIS")
        expect_echo_ok(mwl, port, "--aec=OFFIS", "--aet", "MODALITY_7", repeat=3)
        # wlmscpfs knows only the AE titles that are folders of its database.
        code, out, err, _ = run([mwl, "echo", "--aec", "NOSUCHAE", "127.0.0.1", str(port)])
        check(code == 3, f"unknown called AE: exit {code}")
        line = one_line(err, "unknown called AE")
        check("rejected (permanent)" in line and "called AE title not recognized" in line, line)

        _, port = start_server(lambda p: ["storescp", "--aetitle", "STORE1", str(p)],
                               os.path.join(tmp, "storescp.log"))
        expect_echo_ok(mwl, port)  # storescp answers any called AE title
        expect_echo_ok(mwl, port, "--aec", "STORE1", "--aet", "ECHOER", repeat=2)

        _, port = start_server(lambda p: ["storescp", "--refuse", str(p)], os.path.join(tmp, "refuse.log"))
        code, _, err, _ = run([mwl, "echo", "--timeout", "5", "127.0.0.1", str(port)])
        check(code == 3, f"refusing storescp: exit {code}")
        line = one_line(err, "refusing storescp")
        check("association rejected" in line and "[1/1/1]" in line, line)

        # Usage errors are exit 2 and never touch the network.
        for argv in ([mwl, "echo"], [mwl, "echo", "--timeout", "0", "h", "1"], [mwl, "echo", "h", "70000"],
                     [mwl, "echo", "--aec", "A\\B", "127.0.0.1", str(port)], [mwl, "echo", "--bogus", "h", "1"]):
            code, _, err, _ = run(argv)
            check(code == 2, f"{argv}: exit {code}, expected 2")
            check(err.strip() != "", f"{argv}: no explanation")


def test_echo_refused(mwl):
    port = free_port()  # nobody listens on it now
    # A refusal is immediate: with a 60 s timeout, ending well within it
    # shows the client did not wait for the timeout (on any machine load).
    code, out, err, elapsed = run([mwl, "echo", "--timeout", "60", "127.0.0.1", str(port)], timeout=120)
    check(code == 3, f"closed port: exit {code}")
    check(elapsed < 30, f"closed port took {elapsed:.1f} s: waited for the 60 s timeout?")
    line = one_line(err, "closed port")
    check("cannot connect" in line and "refused" in line.lower(), line)
    check(out == "", f"closed port: stdout {out!r}")


class Listener:
    """A TCP peer that accepts and then does what `behaviour` says."""

    def __init__(self, behaviour):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.received = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.2)
                self.behaviour(self, conn)

    def read_pdu(self, conn, seconds=10):
        """One whole PDU (type, bytes), or None when the peer is gone."""
        buf = b""
        end = time.monotonic() + seconds
        need = 6
        while time.monotonic() < end and not self.stop.is_set():
            if len(buf) >= 6:
                need = 6 + int.from_bytes(buf[2:6], "big")
            if len(buf) >= need:
                return buf[0], buf[:need]
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
            self.received += chunk
        return None

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def silent(listener, conn):
    """Reads whatever comes, answers nothing, until the client leaves."""
    while not listener.stop.is_set():
        if listener.read_pdu(conn, seconds=30) is None:
            return


def send_ac(listener, conn):
    """Reads the A-ASSOCIATE-RQ and accepts context 1 (Verification) in
    Implicit VR LE. False if no RQ came."""
    pdu = listener.read_pdu(conn)
    if pdu is None or pdu[0] != 1:
        return False
    rq = pdu[1]
    app = b"1.2.840.10008.3.1.1.1"
    ts = b"1.2.840.10008.1.2"
    items = b"\x10\x00" + len(app).to_bytes(2, "big") + app
    ctx_body = b"\x01\x00\x00\x00" + b"\x40\x00" + len(ts).to_bytes(2, "big") + ts
    items += b"\x21\x00" + len(ctx_body).to_bytes(2, "big") + ctx_body
    uid = b"1.2.3.4"
    user = b"\x51\x00\x00\x04" + (16384).to_bytes(4, "big") + b"\x52\x00" + len(uid).to_bytes(2, "big") + uid
    items += b"\x50\x00" + len(user).to_bytes(2, "big") + user
    body = b"\x00\x01\x00\x00" + rq[10:74] + items
    conn.sendall(b"\x02\x00" + len(body).to_bytes(4, "big") + body)
    return True


def accept_then_silent(listener, conn):
    """Accepts the association, then never answers the C-ECHO."""
    if send_ac(listener, conn):
        silent(listener, conn)


def accept_then_fail_echo(listener, conn):
    """Accepts, answers each C-ECHO-RQ with status 0110H (Processing
    failure), and the A-RELEASE-RQ with A-RELEASE-RP."""
    if not send_ac(listener, conn):
        return
    while True:
        pdu = listener.read_pdu(conn)
        if pdu is None:
            return
        if pdu[0] == 5:
            conn.sendall(b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00")
            continue
        mark = pdu[1].find(b"\x00\x00\x10\x01\x02\x00\x00\x00")  # (0000,0110) US, length 2
        if pdu[0] != 4 or mark < 0:
            return
        message_id = pdu[1][mark + 8:mark + 10]

        def elem(element, value):
            return struct.pack("<HHI", 0, element, len(value)) + value

        rest = (elem(0x0002, b"1.2.840.10008.1.1\x00") + elem(0x0100, struct.pack("<H", 0x8030)) +
                elem(0x0120, message_id) + elem(0x0800, struct.pack("<H", 0x0101)) +
                elem(0x0900, struct.pack("<H", 0x0110)))
        command = elem(0x0000, struct.pack("<I", len(rest))) + rest
        pdv = (2 + len(command)).to_bytes(4, "big") + b"\x01\x03" + command
        conn.sendall(b"\x04\x00" + len(pdv).to_bytes(4, "big") + pdv)


def test_echo_status(mwl):
    listener = Listener(accept_then_fail_echo)
    try:
        code, out, err, _ = run([mwl, "echo", "--timeout", "5", "--repeat", "2", "127.0.0.1", str(listener.port)])
    finally:
        listener.close()
    check(code == 1, f"failure status: exit {code}, expected 1")
    check(len(re.findall(r"status 0x0110 Failure: ", out)) == 2, f"failure status: {out!r}")
    check("association released" in out, f"failure status: not released: {out!r}")
    lines = [line for line in err.splitlines() if line.strip()]
    check(len(lines) == 2 and all("C-ECHO" in line and "0x0110" in line for line in lines),
          f"failure status: one line per failed C-ECHO expected, got {lines!r}")


def test_echo_stall(mwl):
    # What this proves: the timeout fires (the peer never answers; it only
    # hangs up after 30 s of silence), not before its time (elapsed >= 1 s),
    # and the client does not hang (well before the peer's 30 s). The upper
    # bound is loose on purpose: a loaded machine may start the process or
    # schedule it late, which says nothing about the client.
    for behaviour, awaited in ((silent, "A-ASSOCIATE-AC"), (accept_then_silent, "C-ECHO-RSP")):
        listener = Listener(behaviour)
        try:
            code, out, err, elapsed = run([mwl, "echo", "--timeout", "1", "127.0.0.1", str(listener.port)],
                                          timeout=60)
        finally:
            listener.close()
        what = f"stalling peer ({behaviour.__name__})"
        check(code == 3, f"{what}: exit {code}")
        check(1.0 <= elapsed < 20, f"{what}: took {elapsed:.2f} s with --timeout 1")
        line = one_line(err, what)
        check(f"no {awaited}" in line and "within 1000 ms" in line, line)
        # The client gave up with an A-ABORT (PS3.8 9.3.8), after its request.
        check(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00" in listener.received,
              f"{what}: no A-ABORT received: {listener.received[-20:]!r}")
        if behaviour is accept_then_silent:
            check("association accepted" in out, f"{what}: {out!r}")


# ---------------------------------------------------------------------------
# C-FIND through the client API, compared with findscu

# The probe's query, as findscu keys (same keys, same matching value).
QUERY_KEYS = ["AccessionNumber", "PatientName", "PatientID", "PatientBirthDate", "RequestedProcedureID"] + [
    f"ScheduledProcedureStepSequence[0].{k}" for k in
    ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
     "ScheduledProcedureStepID", "ScheduledProcedureStepDescription")]

DUMP_LINE = re.compile(r"^(?P<indent> *)\((?P<tag>[0-9a-f]{4},[0-9a-f]{4})\) (?P<vr>\w\w) (?P<value>.*?)\s+#")
TOP = {"0010,0020": 0, "0008,0050": 1, "0010,0010": 2}
SPS = {"0008,0060": 3, "0040,0002": 4, "0040,0009": 5}


def dcmdump_record(path):
    """(PatientID, AccessionNumber, PatientName, Modality, SPS start date,
    SPS ID) of one findscu response file."""
    code, out, err, _ = run(["dcmdump", "-q", path])
    check(code == 0, f"dcmdump {path}: {err}")
    rec = [""] * 6
    in_sps = False
    for line in out.splitlines():
        m = DUMP_LINE.match(line)
        if not m:
            continue
        depth = len(m["indent"]) // 2
        tag = m["tag"]
        value = m["value"]
        value = value[1:-1] if value.startswith("[") and value.endswith("]") else ""
        if depth == 0:
            in_sps = tag == "0040,0100"
            if tag in TOP:
                rec[TOP[tag]] = value.strip()
        elif depth == 2 and in_sps and tag in SPS and rec[SPS[tag]] == "":  # element, item, sequence
            rec[SPS[tag]] = value.strip()
    return tuple(rec)


def findscu_records(tmp, port, modality, tag):
    out_dir = os.path.join(tmp, f"findscu-{tag}")
    os.makedirs(out_dir)
    keys = []
    for k in QUERY_KEYS:
        keys += ["-k", k]
    keys += ["-k", f"ScheduledProcedureStepSequence[0].Modality={modality}"]
    p = subprocess.run(["findscu", "-W", "-X", "-aec", "OFFIS", "-to", "20", *keys, "127.0.0.1", str(port)],
                       cwd=out_dir, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, f"findscu: {p.stderr.decode('latin-1')}")
    files = sorted(glob.glob(os.path.join(out_dir, "rsp*.dcm")))
    return [dcmdump_record(f) for f in files]


def probe(probe_bin, port, *opts):
    code, out, err, _ = run([probe_bin, "--aec", "OFFIS", "--timeout-ms", "20000", *opts, "127.0.0.1", str(port)])
    check(code == 0, f"probe {opts}: exit {code}, {err}")
    items, final, ts = [], None, None
    for line in out.splitlines():
        fields = line.split("\t")
        if fields[0] == "item":
            check(fields[2] in ("0xFF00", "0xFF01"), f"pending status {fields[2]}")
            check(int(fields[1]) == len(items), f"response index {fields[1]}")
            items.append(tuple(f.strip() for f in fields[3:9]))
        elif fields[0] == "final":
            final = fields
        elif fields[0] == "ts":
            ts = fields[1]
    check(final is not None, f"probe {opts}: no final line in {out!r}")
    return items, final, ts


def test_find_dcmtk(probe_bin):
    need("wlmscpfs", "findscu", "dump2dcm", "dcmdump")
    with tempfile.TemporaryDirectory(prefix="mwl-find-") as tmp:
        db = make_worklist(tmp)
        # +xd lets wlmscpfs accept Deflated as well as the uncompressed syntaxes.
        _, port = start_wlmscpfs(tmp, db, "+xd")
        cases = [("", None, "Explicit VR Little Endian"), ("MR", None, "Explicit VR Little Endian"),
                 ("CT", "implicit", "Implicit VR Little Endian"), ("", "big", "Explicit VR Big Endian"),
                 ("CT", "deflated", "Deflated Explicit VR Little Endian"), ("XA", None, "Explicit VR Little Endian")]
        for n, (modality, ts, ts_name) in enumerate(cases):
            expected = findscu_records(tmp, port, modality, n)
            opts = ["--modality", modality] + (["--ts", ts] if ts else [])
            got, final, used_ts = probe(probe_bin, port, *opts)
            what = f"query modality={modality or '*'} ts={ts or 'default'}"
            check(final[1] == "0x0000", f"{what}: final status {final[1]}")
            check(int(final[2]) == len(got), f"{what}: pending count {final[2]} vs {len(got)} lines")
            check(used_ts == ts_name, f"{what}: negotiated {used_ts}")
            check(len(got) == len(expected), f"{what}: {len(got)} responses, findscu got {len(expected)}")
            check(sorted(got) == sorted(expected), f"{what}: responses differ:\n{sorted(got)}\n{sorted(expected)}")
            if modality == "":
                check(len(got) >= 5, f"{what}: only {len(got)} items in DCMTK's examples?")
            elif modality != "XA":
                check(len(got) >= 1 and all(r[3] == modality for r in got), f"{what}: {got}")
            else:
                check(len(got) == 0, f"{what}: no XA item expected")


def test_find_cancel(probe_bin):
    need("wlmscpfs", "dump2dcm", "echoscu")
    with tempfile.TemporaryDirectory(prefix="mwl-cancel-") as tmp:
        db = make_worklist(tmp)
        # One second before each response, so the C-CANCEL arrives while
        # matches remain (wlmscpfs checks for it between responses).
        proc, port = start_wlmscpfs(tmp, db, "--sleep-during", "1")
        got, final, _ = probe(probe_bin, port, "--cancel-after", "1")
        check(final[1] == "0xFE00", f"cancel: final status {final[1]}, expected 0xFE00 (Cancel)")
        check(len(got) == 1 and final[2] == "1", f"cancel: {len(got)} delivered, pending {final[2]}")
        check(final[4] == "1", "cancel: C-CANCEL not sent")
        check(int(final[3]) <= 2, f"cancel: {final[3]} responses after the cancel")
        check(proc.poll() is None, "wlmscpfs died")
        code, _, err, _ = run(["echoscu", "-aec", "OFFIS", "-to", "10", "127.0.0.1", str(port)])
        check(code == 0, f"wlmscpfs unusable after the cancel: {err}")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, binary = sys.argv[1], sys.argv[2]
    tests = {"echo_dcmtk": test_echo_dcmtk, "echo_refused": test_echo_refused, "echo_stall": test_echo_stall,
             "echo_status": test_echo_status,
             "find_dcmtk": test_find_dcmtk, "find_cancel": test_find_cancel}
    if mode not in tests:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    try:
        tests[mode](binary)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        kill_started()
    print(f"{mode}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
