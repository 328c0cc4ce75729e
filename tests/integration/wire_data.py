#!/usr/bin/env python3
"""What peers send is data, never control (issue 11, "Security"), on
127.0.0.1 with ports chosen at run time.

  wire_data.py log MWL    `mwl serve`: calling AE titles with ESC and CR LF
                          and a called AE title with an OSC sequence (refused,
                          1/1/3 and 1/1/7, and logged escaped),
                          C-FIND values with CR LF ESC (refused by the query
                          parser), C1 CSI and a right-to-left override (UTF-8,
                          accepted): the log shows them escaped (\\x1b,
                          \\x0d\\x0a, \\u009b, \\u202e), every log line is one
                          well-formed line starting with a time stamp, and
                          names in UTF-8 stay readable.
  wire_data.py find MWL   `mwl find --out-dir` against a scripted server whose
                          responses carry SOP Instance UIDs and values such as
                          "../../x" and absolute paths: only DIR/rspNNNN.dcm
                          files are written, nothing outside DIR; an error
                          comment with ESC and CR LF is shown escaped on one
                          stderr line.

Exit 0 pass, 1 fail. Every process started here is killed by PID when the
script ends, however it ends; every wait is bounded.
"""
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

import find_mwl  # noqa: E402  (the scripted peer)
import server_test  # noqa: E402  (mwl serve and raw PDUs)
from harness import Failure, check, kill_started, on_signal

LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z mwl\[\d+\] (error|warn|info|debug|trace): ")


def el(group, elem, value):
    """An Implicit VR LE element, padded to even length."""
    if len(value) % 2:
        value += b"\0" if elem == 0x0018 else b" "
    return struct.pack("<HHI", group, elem, len(value)) + value


def safe_text(data, what):
    """One line per '\\n', no other control character, no C1 control and no
    bidirectional override, well-formed UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Failure(f"{what}: not UTF-8 ({e}): {data!r}")
    bad = [ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F or
           ord(ch) in (0x2028, 0x2029) or 0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069]
    check(not bad, f"{what}: control characters {bad!r} in {text!r}")
    return text


# ---------------------------------------------------------------------------
# mwl serve: the log

def find(sock, message_id, identifier):
    """Sends a C-FIND and returns its final status."""
    sock.sendall(server_test.p_data(1, 3, server_test.find_rq(message_id)) + server_test.p_data(1, 2, identifier))
    while True:
        kind, body = server_test.recv_pdu(sock, timeout=20)
        check(kind == 4, f"C-FIND {message_id}: PDU type {kind}")
        status = server_test.command_status(body)
        if status is not None and status not in (0xFF00, 0xFF01):
            return status


def test_log(mwl):
    with tempfile.TemporaryDirectory(prefix="mwl-wire-log-") as tmp:
        db = os.path.join(tmp, "wl.db")
        r = subprocess.run([mwl, "demo", "--db", db, "--count", "20"], capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 0, f"mwl demo: {r.stderr!r}")
        srv = server_test.Server(mwl, tmp, "--db", db)
        try:
            # AE titles with control characters are refused (PS3.5 AE), and
            # the log line saying so shows them as data.
            for called, calling, want in (("MWL", "\x1b[31mEVIL", (1, 1, 3)), ("MWL", "A\r\nB", (1, 1, 3)),
                                          ("MWL\x1b]0;X\x07", "PYSCU", (1, 1, 7))):
                s, kind, body = server_test.associate(srv.port, called=called, calling=calling)
                with s:
                    got = tuple(body[1:4]) if kind == 3 else None
                    check(got == want, f"called {called!r} calling {calling!r}: PDU {kind} {got}, want RJ {want}")
            s, kind, _ = server_test.associate(srv.port, contexts=[(1, server_test.MWL_FIND, [server_test.ILE])],
                                               calling="EVIL")
            check(kind == 2, f"association with calling AE EVIL: PDU type {kind}")
            with s:
                # CR LF and ESC are not in Patient ID's repertoire: refused,
                # and the refusal is logged without them.
                status = find(s, 1, el(0x0010, 0x0020, b"ID\r\n\x1b[2J"))
                check(status & 0xF000 in (0xA000, 0xC000), f"CR LF ESC in Patient ID: status {status:04X}")
                # In UTF-8 a C1 CSI (U+009B) and a right-to-left override
                # (U+202E) are valid text: the query runs, and its summary
                # in the log carries them escaped.
                status = find(s, 2, el(0x0008, 0x0005, b"ISO_IR 192") +
                              el(0x0010, 0x0010, "EVIL\u009b31m\u202eX*".encode()))
                check(status == 0, f"C1 and RLO in a name: status {status:04X}")
                # A name in kanji stays readable.
                status = find(s, 3, el(0x0008, 0x0005, b"ISO_IR 192") + el(0x0010, 0x0010, "山田*".encode()))
                check(status == 0, f"kanji name: status {status:04X}")
                s.sendall(server_test.RELEASE_RQ)
                server_test.recv_pdu(s)
        finally:
            rc, _ = srv.stop()
        check(rc == 0, f"server exit {rc}")
        with open(srv.log_path, "rb") as f:
            data = f.read()
        text = safe_text(data, "server log")
        for line in data.split(b"\n")[:-1]:
            check(LINE.match(line), f"a log line that is not one of the server's: {line!r}")
        for want in ("assoc 127.0.0.1:", "calling AE title '\\x1b[31mEVIL' is not an AE title",
                     "calling AE title 'A\\x0d\\x0aB' is not an AE title",
                     "called AE title 'MWL\\x1b]0;X\\x07' is not an AE title",
                     " EVIL -> MWL: refused: (0010,0020)", "\\u009b31m\\u202ex*", "name=山田*"):
            check(want in text, f"the log has no {want!r}:\n{text}")


# ---------------------------------------------------------------------------
# mwl find: file names and the error comment

MALICIOUS = [
    # (SOP Instance UID, Accession Number, Patient ID, Patient's Name)
    (b"../../uid-escaped", b"../acc-escaped", b"/PLACEHOLDER/abs-escaped", b"a\x1b[2J\r\nb"),
    (b"/PLACEHOLDER/uid-abs", b"..", b"x/../../../y", "\u202eevil".encode()),
    (b"rsp0001.dcm", b"..\\..\\win", b".", b""),
]


def response_peer(identifiers, final_status, comment=None):
    """A scripted SCP: every C-FIND-RQ is answered with one Pending response
    per identifier, then `final_status` (with `comment`)."""

    def rsp(message_id, status, with_data, text=None):
        rest = (find_mwl.element(0x0002, find_mwl.MWL_FIND) + find_mwl.element(0x0100, struct.pack("<H", 0x8020)) +
                find_mwl.element(0x0120, message_id) +
                find_mwl.element(0x0800, struct.pack("<H", 0x0000 if with_data else 0x0101)) +
                find_mwl.element(0x0900, struct.pack("<H", status)))
        if text is not None:
            rest += find_mwl.element(0x0902, text + (b" " if len(text) % 2 else b""))
        cmd = find_mwl.element(0x0000, struct.pack("<I", len(rest))) + rest
        return cmd

    def pdata(ctx, control, data):
        pdv = (2 + len(data)).to_bytes(4, "big") + bytes([ctx, control]) + data
        return b"\x04\x00" + len(pdv).to_bytes(4, "big") + pdv

    def behaviour(peer, conn):
        pdu = peer.read_pdu(conn)
        if pdu is None or pdu[0] != 1:
            return
        find_mwl.send_ac(conn, pdu[1])
        command, message_id = b"", None
        while True:
            pdu = peer.read_pdu(conn)
            if pdu is None:
                return
            if pdu[0] == 5:
                conn.sendall(b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00")
                continue
            if pdu[0] != 4:
                return
            data, pos = pdu[1], 6
            while pos + 6 <= len(data):
                length = int.from_bytes(data[pos:pos + 4], "big")
                ctx, control = data[pos + 4], data[pos + 5]
                fragment = data[pos + 6:pos + 4 + length]
                pos += 4 + length
                if control & 1:
                    command += fragment
                    mark = command.find(b"\x00\x00\x10\x01\x02\x00\x00\x00")  # (0000,0110) US
                    if mark >= 0:
                        message_id = command[mark + 8:mark + 10]
                elif control & 2 and message_id is not None:
                    for ident in identifiers:
                        conn.sendall(pdata(ctx, 3, rsp(message_id, 0xFF00, True)) + pdata(ctx, 2, ident))
                    conn.sendall(pdata(ctx, 3, rsp(message_id, final_status, False, comment)))
                    command, message_id = b"", None

    return behaviour


def tree(root):
    out = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(folder, name), root))
    return out


def test_find(mwl):
    with tempfile.TemporaryDirectory(prefix="mwl-wire-find-") as tmp:
        work = os.path.join(tmp, "a", "b", "work")  # "../.." from here stays inside tmp
        os.makedirs(work)
        out_dir = os.path.join(work, "out")
        identifiers = []
        for uid, acc, pid, name in MALICIOUS:
            uid, pid = (v.replace(b"/PLACEHOLDER", tmp.encode()) for v in (uid, pid))
            identifiers.append(el(0x0008, 0x0018, uid) + el(0x0008, 0x0050, acc) + el(0x0010, 0x0010, name) +
                               el(0x0010, 0x0020, pid))
        before = tree(tmp)
        peer = find_mwl.Peer(response_peer(identifiers, 0x0000))
        try:
            code, out, err, _ = find_mwl.run([mwl, "find", "--timeout", "10", "--out-dir", "out", "127.0.0.1",
                                              str(peer.port)], cwd=work)
        finally:
            peer.close()
        check(code == 0, f"mwl find: exit {code}: {err}")
        written = sorted(os.listdir(out_dir))
        check(written == ["rsp0001.dcm", "rsp0002.dcm", "rsp0003.dcm"], f"--out-dir files: {written}")
        new = tree(tmp) - before - {os.path.relpath(out_dir, tmp)}
        new -= {os.path.relpath(os.path.join(out_dir, f), tmp) for f in written}
        check(not new, f"files written outside --out-dir: {sorted(new)}")
        escaped = [p for p in tree(tmp) if "escaped" in p or "uid-abs" in p or p.endswith("win") or "/y" in p]
        check(not escaped, f"a response value named a file: {escaped}")
        safe_text(out.encode(), "mwl find table")
        # The files hold what the server sent (they are data, not names).
        with open(os.path.join(out_dir, "rsp0001.dcm"), "rb") as f:
            check(b"../../uid-escaped" in f.read(), "rsp0001.dcm does not hold the first response")

        # An error comment with ESC and CR LF: one stderr line, escaped.
        comment = b"x\x1b[2J\r\nmwl find: forged\xc2\x9b"
        peer = find_mwl.Peer(response_peer([], 0xA700, comment))
        try:
            code, out, err, _ = find_mwl.run([mwl, "find", "--timeout", "10", "127.0.0.1", str(peer.port)])
        finally:
            peer.close()
        check(code == 1, f"A700: exit {code}: {err}")
        line = find_mwl.one_line(err, "A700 with a hostile comment")
        safe_text(err.encode(), "mwl find stderr")
        check('"x\\x1b[2J\\x0d\\x0amwl find: forged\\u009b"' in line, f"the comment is not shown escaped: {line}")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tests = {"log": test_log, "find": test_find}
    if len(sys.argv) != 3 or sys.argv[1] not in tests:
        print(__doc__, file=sys.stderr)
        return 2
    mode, mwl = sys.argv[1], os.path.abspath(sys.argv[2])
    t0 = time.monotonic()
    try:
        tests[mode](mwl)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        kill_started()
        server_test.kill_children()
    print(f"{mode}: ok ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
