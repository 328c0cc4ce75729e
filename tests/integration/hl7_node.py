#!/usr/bin/env python3
"""`mwl serve`'s HL7 listener against an independent MLLP client from npm,
node-hl7-client 3.2.0 (issue 12).

  hl7_node.py MWL

1. installs tests/node's packages with `npm ci` when node_modules is
   missing or stale (harness.ensure_node_modules: bounded, one install at
   a time);
2. starts `mwl serve` with a temporary database, the DICOM and HL7 ports
   picked by the kernel on 127.0.0.1 (--port-file, --hl7-port-file);
3. runs tests/integration/hl7_client.js: on one connection the library
   sends hl7_messages/node_omi_nw.hl7 as it parses and writes it again, then
   an OMI^O23 built with its own builder (its MSH: version 2.7, MSH-7 now;
   a '|' it escapes as \\F\\ in OBR-44.2, a non-ASCII name);
4. checks both acknowledgements: MSA-1 AA, MSA-2 the order's MSH-10;
5. reads the worklist with `mwl find --json`: exactly these two SPS, each
   with the patient (non-ASCII name decoded), issuer, accession, requested
   procedure ID and description (the escape resolved), Study UID, priority,
   modality, station AE, start date/time, SPS description and ID, status
   SCHEDULED;
6. SIGTERM: the server exits 0.

Exit 0 pass, 1 fail, 77 skipped (only when `node` is not installed, or is
older than the package's engines field: npm missing, or `npm ci` failing,
is a failure). Every process started here is killed by PID on the way out;
every wait is bounded; only 127.0.0.1.
"""
import json
import os
import re
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
CLIENT = os.path.join(HERE, "hl7_client.js")
MESSAGE = os.path.join(HERE, "hl7_messages", "node_omi_nw.hl7")
HOST = "127.0.0.1"

EXPECTED = {
    "SPSNODE1": {"PatientName": "NODE^NÖRA", "PatientID": "NODEP1", "IssuerOfPatientID": "HOSP",
                 "PatientBirthDate": "19880808", "PatientSex": "F", "ReferringPhysicianName": "HOUSE^GREGORY^^DR",
                 "AccessionNumber": "ACCNODE1", "RequestedProcedureID": "RPNODE1",
                 "StudyInstanceUID": "1.2.826.0.1.3680043.9.7777.902.1",
                 "RequestedProcedureDescription": "US abdomen", "RequestedProcedurePriority": "STAT",
                 "Modality": "US", "ScheduledStationAETitle": "US01", "ScheduledProcedureStepStartDate": "20270322",
                 "ScheduledProcedureStepStartTime": "110000",
                 "ScheduledProcedureStepDescription": "Abdomen standard",
                 "ScheduledProcedureStepStatus": "SCHEDULED"},
    "SPSNODE2": {"PatientName": "BÜILT^NODE", "PatientID": "NODEP2", "IssuerOfPatientID": "HOSP",
                 "PatientBirthDate": "19900101", "PatientSex": "M", "AccessionNumber": "ACCNODE2",
                 "RequestedProcedureID": "RPNODE2", "StudyInstanceUID": "1.2.826.0.1.3680043.9.7777.902.2",
                 "RequestedProcedureDescription": "US neck | thyroid", "Modality": "US",
                 "ScheduledStationAETitle": "US02", "ScheduledProcedureStepStartDate": "20270323",
                 "ScheduledProcedureStepStartTime": "120000", "ScheduledProcedureStepStatus": "SCHEDULED"},
}
TAGS = {
    "PatientName": "00100010", "PatientID": "00100020", "IssuerOfPatientID": "00100021",
    "PatientBirthDate": "00100030", "PatientSex": "00100040", "ReferringPhysicianName": "00080090",
    "AccessionNumber": "00080050", "RequestedProcedureID": "00401001", "StudyInstanceUID": "0020000D",
    "RequestedProcedureDescription": "00321060", "RequestedProcedurePriority": "00401003",
}
SPS_TAGS = {
    "Modality": "00080060", "ScheduledStationAETitle": "00400001", "ScheduledProcedureStepStartDate": "00400002",
    "ScheduledProcedureStepStartTime": "00400003", "ScheduledProcedureStepDescription": "00400007",
    "ScheduledProcedureStepID": "00400009", "ScheduledProcedureStepStatus": "00400020",
}


def run(argv, timeout=120, cwd=None):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def node_too_old():
    """The reason node cannot run the locked node-hl7-client (its engines
    field, '>=X.Y.Z'), or None."""
    with open(os.path.join(NODE_DIR, "package-lock.json")) as f:
        lock = json.load(f)
    need = (lock["packages"]["node_modules/node-hl7-client"].get("engines") or {}).get("node", "")
    m = re.match(r"^>=\s*(\d+)\.(\d+)\.(\d+)$", need)
    if not m:
        return None
    code, out, _ = run(["node", "--version"], timeout=30)
    h = re.match(r"^v(\d+)\.(\d+)\.(\d+)", out.strip())
    check(code == 0 and h, "node --version: exit %d, %r" % (code, out))
    have = tuple(int(x) for x in h.groups())
    want = tuple(int(x) for x in m.groups())
    return None if have >= want else "node %s is older than node-hl7-client's engines %s" % (out.strip(), need)


def read_port(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def start_serve(mwl, tmp):
    pf, hf = os.path.join(tmp, "port"), os.path.join(tmp, "hl7port")
    log = open(os.path.join(tmp, "serve.log"), "wb")
    proc = subprocess.Popen([mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--bind", HOST, "--port", "0",
                             "--port-file", pf, "--hl7-bind", HOST, "--hl7-port", "0", "--hl7-port-file", hf,
                             "--log-level", "info"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    log.close()
    STARTED.append(proc)
    end = time.monotonic() + 20
    port = hl7 = None
    while time.monotonic() < end and proc.poll() is None:
        port, hl7 = read_port(pf), read_port(hf)
        if port and hl7:
            break
        time.sleep(0.05)
    check(port and hl7 and wait_listening(port, proc) and wait_listening(hl7, proc),
          "mwl serve did not start (exit %s): %s" % (proc.poll(), serve_log(tmp)))
    return proc, port, hl7


def serve_log(tmp):
    try:
        with open(os.path.join(tmp, "serve.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]
    except OSError:
        return ""


def value(obj, tag):
    v = (obj.get(tag) or {}).get("Value") or []
    if not v:
        return ""
    v = v[0]
    if isinstance(v, dict):  # PN
        return v.get("Alphabetic", "")
    return v


def control_id(text):
    first = text.replace("\n", "\r").split("\r")[0].split("|")
    return first[9] if len(first) > 9 else ""


def test(mwl):
    if shutil.which("node") is None:
        print("skipped: node (Node.js) not installed")
        return SKIP
    ensure_node_modules(NODE_DIR)
    old = node_too_old()
    if old:
        print("skipped: " + old)
        return SKIP
    problems = []
    with tempfile.TemporaryDirectory(prefix="mwl-hl7node-") as tmp:
        proc, port, hl7 = start_serve(mwl, tmp)
        try:
            code, out, err = run(["node", CLIENT, HOST, str(hl7), MESSAGE], timeout=120)
        except subprocess.TimeoutExpired:
            raise Failure("hl7_client.js: no end within 120 s\n" + serve_log(tmp))
        check(out.strip(), "hl7_client.js: exit %d, no output: %s" % (code, err.strip()))
        got = json.loads(out)
        check(code == 0, "hl7_client.js: exit %d: %s %s\n%s" % (code, got.get("errors"), err.strip(), serve_log(tmp)))
        check(len(got["sent"]) == 2 and len(got["acks"]) == 2, "node-hl7-client: %d sent, %d ACKs: %s"
              % (len(got["sent"]), len(got["acks"]), got))
        for sent, ack in zip(got["sent"], got["acks"]):
            want = control_id(sent)
            check((ack["msa1"], ack["msa2"]) == ("AA", want), "node-hl7-client got MSA %s/%s for %s, expected AA/%s:"
                  "\n%s\nserver log:\n%s" % (ack["msa1"], ack["msa2"], want, want, ack["text"], serve_log(tmp)))
        code, out, err = run([mwl, "find", "--json", "--date", "all", "--timeout", "30", HOST, str(port)])
        check(code == 0, "mwl find: exit %d: %s" % (code, err.strip()))
        items = {}
        for item in json.loads(out):
            sps = ((item.get("00400100") or {}).get("Value") or [{}])[0]
            sid = value(sps, "00400009")
            check(sid not in items, "two responses for SPS %s" % sid)
            items[sid] = (item, sps)
        check(set(items) == set(EXPECTED), "the worklist holds SPS %s, expected %s" % (sorted(items), sorted(EXPECTED)))
        for sid, want in EXPECTED.items():
            item, sps = items[sid]
            for key, v in want.items():
                have = value(sps, SPS_TAGS[key]) if key in SPS_TAGS else value(item, TAGS[key])
                if have != v:
                    problems.append("%s: %s = %r, expected %r" % (sid, key, have, v))
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            raise Failure("mwl serve did not stop within 30 s of SIGTERM")
        if rc != 0:
            problems.append("mwl serve exit %s after SIGTERM\n%s" % (rc, serve_log(tmp)))
    check(not problems, "%d mismatch(es):\n  %s" % (len(problems), "\n  ".join(problems)))
    print("node-hl7-client 3.2.0: two orders on one connection acknowledged AA; both SPS mapped as sent")
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
