#!/usr/bin/env python3
"""`mwl serve` against a Node.js worklist client, dcmjs-dimse 0.3.3 (issue 10).

  dcmjs_interop.py MWL

dcmjs-dimse's stock worklist query, CFindRequest.createWorklistFindRequest,
sends Pregnancy Status (0010,21C0) as the US value 0 where it means "no
value" (it cannot send a zero-length US in that request). 0 is outside the
attribute's Enumerated Values; mwl ignores such a value for matching (FF01)
instead of matching nothing. This test:

  1. installs dcmjs-dimse with `npm ci` in tests/node when its node_modules
     is missing or stale (no stdin, bounded, one install at a time);
  2. fills a demo database (`mwl demo`) and starts `mwl serve` on a port of
     127.0.0.1 the kernel picks;
  3. runs tests/integration/dcmjs_worklist.js: one association, a C-ECHO and
     the stock worklist query; it also saves the identifier it sent;
  4. sends that very identifier with `mwl find --query FILE --keys-only`;
  5. checks: C-ECHO success, every Pending status FF00/FF01, final 0000, the
     association released, one response per Scheduled Procedure Step in the
     database (`mwl ls`), and the same steps and values (patient, names,
     accession, station, date, time, modality, SPS ID) for both clients.

Exit 0 pass, 1 fail, 77 skipped (only when `node` is not installed: npm
missing, or `npm ci` failing, is a failure). Every process started here is
killed by PID on the way out; every wait is bounded.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (STARTED, SKIP, Failure, check, die_with_parent, ensure_node_modules, kill_started,  # noqa: E402
                     on_signal, wait_listening)

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(os.path.dirname(HERE), "node")
CLIENT = os.path.join(HERE, "dcmjs_worklist.js")
AET = "MWL"


def run(argv, timeout=120, cwd=None, env=None):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def start_serve(mwl, tmp, db):
    port_file = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "serve.log"), "wb")
    proc = subprocess.Popen([mwl, "serve", "--port", "0", "--bind", "127.0.0.1", "--port-file", port_file,
                             "--aet", AET, "--db", db, "--log-level", "info"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    STARTED.append(proc)
    end = time.monotonic() + 15
    port = None
    while time.monotonic() < end and proc.poll() is None and port is None:
        try:
            with open(port_file) as f:
                text = f.read().strip()
            port = int(text) if text else None
        except (OSError, ValueError):
            pass
        if port is None:
            time.sleep(0.05)
    check(port is not None and wait_listening(port, proc), "mwl serve did not start: " + serve_log(tmp))
    return proc, port


def serve_log(tmp):
    try:
        with open(os.path.join(tmp, "serve.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]
    except OSError:
        return ""


def pn_text(groups):
    """A DICOM JSON / dcmjs PN value ([{Alphabetic, Ideographic, Phonetic}]) as one string."""
    if not groups:
        return ""
    g = groups[0] if isinstance(groups, list) else groups
    if isinstance(g, str):
        return g
    return "=".join([g.get("Alphabetic", ""), g.get("Ideographic", ""), g.get("Phonetic", "")]).rstrip("=")


def dcmjs_step(item):
    sps = (item.get("ScheduledProcedureStepSequence") or [{}])[0]
    return (item.get("PatientID"), pn_text(item.get("PatientName")), item.get("AccessionNumber"),
            sps.get("ScheduledProcedureStepID"), sps.get("ScheduledStationAETitle"),
            sps.get("ScheduledProcedureStepStartDate"), sps.get("ScheduledProcedureStepStartTime"),
            sps.get("Modality"))


def json_value(obj, tag):
    values = (obj.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def find_step(item):
    sps = json_value(item, "00400100") or {}
    return (json_value(item, "00100020"), pn_text((item.get("00100010") or {}).get("Value")),
            json_value(item, "00080050"), json_value(sps, "00400009"), json_value(sps, "00400001"),
            json_value(sps, "00400002"), json_value(sps, "00400003"), json_value(sps, "00080060"))


def test(mwl):
    if shutil.which("node") is None:
        print("skipped: node (Node.js) not installed")
        return SKIP
    ensure_node_modules(NODE_DIR)
    with tempfile.TemporaryDirectory(prefix="mwl-dcmjs-") as tmp:
        db = os.path.join(tmp, "demo.db")
        code, _, err = run([mwl, "demo", "--db", db, "--count", "40", "--days", "2"])
        check(code == 0, "mwl demo: exit %d: %s" % (code, err))
        code, out, err = run([mwl, "ls", "--db", db, "--date", "all", "--json"])
        check(code == 0, "mwl ls: exit %d: %s" % (code, err))
        steps = len(json.loads(out))
        check(steps > 0, "the demo database is empty")

        proc, port = start_serve(mwl, tmp, db)
        query = os.path.join(tmp, "dcmjs-query.dcm")
        try:
            code, out, err = run(["node", CLIENT, "127.0.0.1", str(port), AET, query], timeout=120)
        except subprocess.TimeoutExpired:
            raise Failure("dcmjs_worklist.js: no end within 120 s\n" + serve_log(tmp))
        check(code == 0, "dcmjs_worklist.js: exit %d: %s\n%s" % (code, err.strip(), serve_log(tmp)))
        got = json.loads(out)
        check(got["echo"] == 0, "dcmjs C-ECHO status %s" % got["echo"])
        check("associationAccepted" in got["events"] and "associationReleased" in got["events"],
              "dcmjs association: %s" % got["events"])
        check(got["final"] == 0, "dcmjs C-FIND final status %s\n%s" % (got["final"], serve_log(tmp)))
        check(all(s in (0xFF00, 0xFF01) for s in got["pending"]), "Pending statuses %s" % set(got["pending"]))
        check(len(got["items"]) == len(got["pending"]), "Pending responses without a data set")
        # The request holds keys outside the model (Institution Name, Study ID, ...) and Pregnancy
        # Status 0: FF01 says some optional key was not used for matching (K.4.1.3).
        check(set(got["pending"]) == {0xFF01}, "Pending statuses %s, expected FF01" % set(got["pending"]))
        dcmjs = sorted(dcmjs_step(i) for i in got["items"])
        check(len(dcmjs) == steps, "dcmjs-dimse got %d responses, the database has %d steps\n%s"
              % (len(dcmjs), steps, serve_log(tmp)))

        # The same identifier, byte for byte, from mwl's own client.
        code, out, err = run([mwl, "find", "--query", query, "--keys-only", "--json", "--aec", AET, "--timeout", "30",
                              "127.0.0.1", str(port)])
        check(code == 0, "mwl find --query: exit %d: %s" % (code, err.strip()))
        mine = sorted(find_step(i) for i in json.loads(out))
        check(mine == dcmjs, "dcmjs-dimse and mwl find differ:\n%s\n%s" % (dcmjs[:5], mine[:5]))
        check(any(not s[1].isascii() for s in dcmjs), "no name outside ASCII came through dcmjs-dimse")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            raise Failure("mwl serve did not stop within 30 s of SIGTERM")
        check(rc == 0, "mwl serve exit %s\n%s" % (rc, serve_log(tmp)))
        late = "; after the release: %s" % got["late_errors"] if got.get("late_errors") else ""
        print("dcmjs-dimse 0.3.3: C-ECHO 0000, stock worklist query: %d responses (FF01), final 0000, "
              "same as mwl find%s" % (len(dcmjs), late))
    return 0


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return test(os.path.abspath(sys.argv[1]))
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        kill_started()


if __name__ == "__main__":
    sys.exit(main())
