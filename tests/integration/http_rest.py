#!/usr/bin/env python3
"""The REST worklist API of `mwl serve` (issue 13, docs/http.md), with
Python's urllib and with curl.

  http_rest.py MWL

1. Differential: `mwl demo --count 200` data; for each query vector
   (station, modality, date and time ranges, name wildcards, status, UID
   list, keys by tag and nested path), GET /mwlitems gives the same SPS set
   (accession + SPS ID) with the same key values as `mwl find --json`
   (C-FIND) with the same keys; /mwlitems/count agrees; limit/offset page
   through the same list; includefield=all returns more keys.
2. Writes: POST creates (201 + Location) and replaces (200); GET returns
   what was posted (PN with three groups, a Latin-1 name as UTF-8,
   sequences, empty type 2 values), modulo SpecificCharacterSet; PUT
   creates/replaces and fills the path's UIDs, 400 when the body
   contradicts the path; status change 200/400/404; DELETE 204/404; the
   new step is found by C-FIND too; every write is an audit record.
3. Errors: 400 with a JSON body naming the attribute for a bad key, a bad
   value, malformed JSON, wrong VR, bad UTF-8, huge numbers, deep nesting,
   an item missing a required key; 415; 413 (declared and streamed);
   404; 405 with Allow; never a 500.
4. Tokens: 401 without, 403 for a read token on writes, 201 with write.
5. 409: one step (Study UID + SPS ID) stored into two per-AE worklists
   (`mwl import --per-called-aet` of the same raw data set in folders CT1
   and CT2): GET, PUT, DELETE and the status change of
   /mwlitems/{study}/{sps} are 409 with a JSON error body, and change
   nothing (/mwlitems/count still finds both copies).
Exit 0 pass, 1 fail, 77 skipped (curl missing).
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import Failure, check

HOST = "127.0.0.1"
SPS = "ScheduledProcedureStepSequence."
READ_TOKEN = "r3ad-t0ken-0123456789abcdef"
WRITE_TOKEN = "wr1te-t0ken-0123456789abcdef"
START = "20260302"


class Server:
    def __init__(self, mwl, tmp, name, db, *extra):
        self.port_file = os.path.join(tmp, name + ".port")
        self.http_port_file = os.path.join(tmp, name + ".http")
        self.err_path = os.path.join(tmp, name + ".err")
        self.audit = os.path.join(tmp, name + ".audit")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([mwl, "serve", "--db", db, "--port", "0", "--port-file", self.port_file,
                                          "--bind", HOST, "--http-port", "0", "--http-port-file",
                                          self.http_port_file, "--audit-log", self.audit, *extra],
                                         stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=harness.die_with_parent)
        harness.STARTED.append(self.proc)
        end = time.monotonic() + 15
        while time.monotonic() < end and self.proc.poll() is None and not os.path.exists(self.http_port_file):
            time.sleep(0.05)
        check(os.path.exists(self.http_port_file), f"{name}: no port file: {self.log()}")
        time.sleep(0.1)
        with open(self.port_file) as f:
            self.port = int(f.read())
        with open(self.http_port_file) as f:
            self.http_port = int(f.read())
        self.url = f"http://{HOST}:{self.http_port}"

    def log(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        check(rc == 0, f"serve exit {rc} after SIGTERM: {self.log()[-2000:]}")


def http(url, method="GET", body=None, token=None, ctype="application/dicom+json"):
    """(status, headers, body bytes) with urllib; HTTP errors are answers too."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data)
    if data is not None and ctype:
        req.add_header("Content-Type", ctype)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def curl(url, *args):
    """(status, headers text, body) with curl."""
    p = subprocess.run(["curl", "-s", "-S", "--max-time", "30", "-D", "-", "-o", "/dev/stderr", *args, url],
                       capture_output=True, timeout=60)
    check(p.returncode == 0, f"curl {url}: exit {p.returncode}: {p.stderr!r}")
    head = p.stdout.decode("latin-1")
    return int(head.split(" ", 2)[1]), head, p.stderr


def error_body(body, status, attribute=None):
    try:
        obj = json.loads(body)
    except ValueError:
        raise Failure(f"{status} body is not JSON: {body!r}")
    check(obj.get("status") == status and isinstance(obj.get("error"), str), f"{status} body {obj}")
    if attribute is not None:
        check(obj.get("attribute") == attribute, f"{status}: attribute {obj.get('attribute')!r}, "
              f"wanted {attribute!r}: {obj}")
    return obj


def search(srv, params):
    st, hd, body = http(srv.url + "/mwlitems?" + urllib.parse.urlencode(params))
    check(st == 200, f"search {params}: {st} {body[:300]!r}")
    check(hd["Content-Type"].startswith("application/dicom+json"), f"content type {hd['Content-Type']}")
    return json.loads(body)


def val(obj, tag):
    e = obj.get(tag) or {}
    v = e.get("Value")
    return v[0] if v else None


def sps_key(obj):
    sps = (val(obj, "00400100") or {})
    return (val(obj, "00080050"), val(sps, "00400009"))


def strip_charset(obj):
    return {k: v for k, v in obj.items() if k != "00080005"}


# (REST parameters, mwl find -k keys): the same keys both ways.
VECTORS = [
    {SPS + "ScheduledStationAETitle": "CT01"},
    {SPS + "Modality": "MR", SPS + "ScheduledProcedureStepStartDate": "20260302-20260304"},
    {"00400100.00080060": "US"},
    {"PatientName": "M*"},
    {"PatientName": "*er*"},
    {"PatientName": "?a*"},
    {SPS + "ScheduledProcedureStepStartDate": "20260305"},
    {SPS + "ScheduledProcedureStepStartDate": "20260303", SPS + "ScheduledProcedureStepStartTime": "0800-1200"},
    {SPS + "ScheduledProcedureStepStatus": "SCHEDULED", SPS + "ScheduledStationAETitle": "MR*"},
    {SPS + "ScheduledStationAETitle": "CT01\\CT02", SPS + "Modality": "CT"},
    {"PatientSex": "F", SPS + "Modality": "CT"},
    {"AccessionNumber": "*1*"},
    {},
]


def mwl_find(mwl, srv, keys):
    args = [mwl, "find", "--json", "--date", "all"]
    for k, v in keys.items():
        args += ["-k", f"{k}={v}"]
    p = subprocess.run(args + [HOST, str(srv.port)], capture_output=True, timeout=120)
    check(p.returncode in (0, 1), f"mwl find {keys}: exit {p.returncode}: {p.stderr!r}")
    return json.loads(p.stdout or b"[]")


def differential(mwl, tmp):
    db = os.path.join(tmp, "demo.db")
    p = subprocess.run([mwl, "demo", "--db", db, "--count", "200", "--days", "7", "--start", START, "--seed", "13"],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, f"mwl demo: {p.stderr!r}")
    srv = Server(mwl, tmp, "demo", db)
    nonempty = 0
    for keys in VECTORS:
        rest = search(srv, dict(keys, limit="10000"))
        dimse = mwl_find(mwl, srv, keys)
        rk = sorted(sps_key(o) for o in rest)
        dk = sorted(sps_key(o) for o in dimse)
        check(rk == dk, f"{keys}: REST {len(rk)} steps, C-FIND {len(dk)}: only REST {set(rk) - set(dk)}, "
              f"only C-FIND {set(dk) - set(rk)}")
        by_key = {sps_key(o): strip_charset(o) for o in dimse}
        for o in rest:
            check(strip_charset(o) == by_key[sps_key(o)], f"{keys}: values differ for {sps_key(o)}:\n"
                  f"REST   {strip_charset(o)}\nC-FIND {by_key[sps_key(o)]}")
        st, _, body = http(srv.url + "/mwlitems/count?" + urllib.parse.urlencode(keys))
        check(st == 200 and json.loads(body) == {"count": len(rk)}, f"count {keys}: {st} {body!r} != {len(rk)}")
        nonempty += 1 if rk else 0
    check(nonempty >= 8, f"only {nonempty} of {len(VECTORS)} vectors matched anything: weak test")
    # Paging: default limit 100, offset/limit slices of the same order.
    everything = search(srv, {"limit": "10000"})
    check(len(everything) == 200 - hidden_count(mwl, srv), f"all: {len(everything)}")
    check(len(search(srv, {})) == min(100, len(everything)), "default limit is 100")
    page = search(srv, {"limit": "7", "offset": "5"})
    check([sps_key(o) for o in page] == [sps_key(o) for o in everything[5:12]], "offset/limit slice")
    check(search(srv, {"offset": "100000"}) == [], "offset past the end: []")
    check(search(srv, {"PatientID": "no-such-patient"}) == [], "no match: 200 []")
    full = search(srv, {"limit": "3", "includefield": "all"})
    check(set(everything[0]) < set(full[0]) and "00403001" in full[0], f"includefield=all: {sorted(full[0])}")
    check("00400100" in full[0] and "00400011" in full[0]["00400100"]["Value"][0],
          f"includefield=all lacks SPS Location: {full[0]}")
    # Return type 2 keys outside the defaults come back (empty) when asked for.
    one = search(srv, {"limit": "1", "includefield": "ConfidentialityConstraintOnPatientDataDescription"})
    check("00403001" in one[0], f"includefield keys: {sorted(one[0])}")
    # Bad queries: 400 naming the attribute, never 500.
    for params, attribute in [({"NoSuchKeyword": "x"}, "NoSuchKeyword"),
                              ({SPS + "ScheduledProcedureStepStartDate": "20261399"}, None),
                              ({"StudyInstanceUID": "1.2.*"}, "StudyInstanceUID"),
                              ({"limit": "0"}, None), ({"limit": "10001"}, None), ({"offset": "-1"}, None),
                              ({"fuzzymatching": "true"}, None), ({"includefield": "Nope"}, None)]:
        st, _, body = http(srv.url + "/mwlitems?" + urllib.parse.urlencode(params))
        check(st == 400, f"{str(params)[:200]}: {st} {body[:200]!r}")
        error_body(body, 400, attribute)
    st, _, body = http(srv.url + "/mwlitems?fuzzymatching=false&limit=1")
    check(st == 200, f"fuzzymatching=false: {st}")
    st, head, _ = curl(srv.url + "/mwlitems/count?" + urllib.parse.urlencode({SPS + "Modality": "CT"}))
    check(st == 200 and "application/json" in head, f"curl count: {st} {head}")
    srv.stop()


def hidden_count(mwl, srv):
    """Steps hide-statuses keeps from a query without a status key."""
    shown = {sps_key(o) for o in mwl_find(mwl, srv, {})}
    every = set()
    for status in ("SCHEDULED", "ARRIVED", "READY", "STARTED", "COMPLETED", "DISCONTINUED", "CANCELED"):
        every |= {sps_key(o) for o in mwl_find(mwl, srv, {SPS + "ScheduledProcedureStepStatus": status})}
    return len(every - shown) + (200 - len(every | shown))


STUDY = "1.2.826.0.1.3680043.10.543.77"


def item(study=STUDY, sps_id="SPS77", name=None, pid="PID-77"):
    obj = {
        "00080050": {"vr": "SH", "Value": ["ACC-77"]},
        "00080090": {"vr": "PN"},
        "00100010": {"vr": "PN", "Value": [name or {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎",
                                                     "Phonetic": "やまだ^たろう"}]},
        "00100020": {"vr": "LO", "Value": [pid]},
        "00100030": {"vr": "DA"},
        "00100040": {"vr": "CS", "Value": ["M"]},
        "00321060": {"vr": "LO", "Value": ["CT head"]},
        "00401001": {"vr": "SH", "Value": ["RP77"]},
        "00400100": {"vr": "SQ", "Value": [{
            "00080060": {"vr": "CS", "Value": ["CT"]},
            "00400001": {"vr": "AE", "Value": ["CT09"]},
            "00400002": {"vr": "DA", "Value": ["20260310"]},
            "00400003": {"vr": "TM", "Value": ["101500"]},
            "00400006": {"vr": "PN"},
            "00400007": {"vr": "LO", "Value": ["Head without contrast"]},
            "00400008": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["P1"]},
                                                "00080102": {"vr": "SH", "Value": ["99LOCAL"]},
                                                "00080104": {"vr": "LO", "Value": ["Head"]}}]},
            "00400009": {"vr": "SH", "Value": [sps_id]},
            "00400020": {"vr": "CS", "Value": ["SCHEDULED"]}}]},
    }
    if study:
        obj["0020000D"] = {"vr": "UI", "Value": [study]}
    return obj


def writes(mwl, tmp):
    db = os.path.join(tmp, "rw.db")
    srv = Server(mwl, tmp, "rw", db, "--http-max-body", "65536")
    base = srv.url + "/mwlitems"
    path = f"/mwlitems/{STUDY}/SPS77"
    posted = item()
    st, hd, body = http(base, "POST", posted)
    check(st == 201 and hd["Location"] == path, f"POST: {st} {hd.get('Location')} {body[:300]!r}")
    check(strip_charset(json.loads(body)) == posted, f"POST answer differs: {json.loads(body)}")
    st, _, body = http(srv.url + path)
    got = json.loads(body)
    check(st == 200 and strip_charset(got) == posted, f"GET after POST: {st}\n{got}\n!=\n{posted}")
    check(val(got, "00080005") == "ISO_IR 192", f"charset added: {got.get('00080005')}")
    st, _, body = http(base, "POST", posted, ctype="application/json")
    check(st == 200, f"POST again (replace): {st} {body[:200]!r}")
    # A Latin-1 name, sent as JSON (UTF-8), PUT to a new address with the
    # UIDs left to the path.
    latin = item(study=None, sps_id="x", name={"Alphabetic": "Müller^Jürgen"}, pid="PID-78")
    del latin["00400100"]["Value"][0]["00400009"]
    study2 = STUDY + ".2"
    st, hd, body = http(f"{base}/{study2}/SPS78", "PUT", latin)
    check(st == 201, f"PUT new: {st} {body[:300]!r}")
    got = json.loads(body)
    check(val(got, "0020000D") == study2 and val(val(got, "00400100"), "00400009") == "SPS78", f"PUT fill: {got}")
    check(val(got, "00100010") == {"Alphabetic": "Müller^Jürgen"}, f"Latin-1 name: {val(got, '00100010')}")
    st, _, body = http(f"{base}/{study2}/SPS78", "PUT", got)
    check(st == 200, f"PUT replace: {st} {body[:200]!r}")
    # The same reads and writes from curl: GET one, HEAD, PUT, and the
    # dcm4chee-style alias.
    st, head, body = curl(f"{base}/{study2}/SPS78")
    check(st == 200 and "application/dicom+json" in head and strip_charset(json.loads(body)) == strip_charset(got),
          f"curl GET one: {st} {head}")
    st, head, _ = curl(f"{base}/{study2}/SPS78", "-I")  # curl -I writes the headers as its output
    check(st == 200 and "application/dicom+json" in head, f"curl HEAD: {st} {head}")
    put_file = os.path.join(tmp, "put.json")
    with open(put_file, "w") as f:
        json.dump(got, f)
    st, _, _ = curl(f"{base}/{study2}/SPS78", "-X", "PUT", "-H", "Content-Type: application/dicom+json",
                    "--data-binary", "@" + put_file)
    check(st == 200, f"curl PUT replace: {st}")
    st, _, body = curl(srv.url + "/aets/ANYAE/rs/mwlitems?PatientID=PID-78")
    check(st == 200 and [val(o, "00100020") for o in json.loads(body)] == ["PID-78"], f"curl alias: {st} {body[:200]!r}")
    st, _, body = http(f"{base}/{study2}/OTHER", "PUT", got)
    check(st == 400, f"PUT contradicting SPS ID: {st}")
    error_body(body, 400, "ScheduledProcedureStepID")
    st, _, body = http(f"{base}/9.9.9/SPS78", "PUT", got)
    check(st == 400, f"PUT contradicting study: {st}")
    error_body(body, 400, "StudyInstanceUID")
    # C-FIND sees what REST wrote.
    found = mwl_find(mwl, srv, {"PatientID": "PID-78"})
    check(len(found) == 1 and val(found[0], "00100010") == {"Alphabetic": "Müller^Jürgen"}, f"C-FIND: {found}")
    # Status.
    st, _, body = http(srv.url + path + "/status/STARTED", "POST")
    check(st == 200 and val(val(json.loads(body), "00400100"), "00400020") == "STARTED", f"status: {st} {body!r}")
    st, _, body = http(srv.url + path + "/status/FINISHED", "POST")
    check(st == 400, f"status FINISHED: {st}")
    error_body(body, 400, "ScheduledProcedureStepStatus")
    st, _, body = http(f"{base}/9.9.9/SPS1/status/STARTED", "POST")
    check(st == 404, f"status of nothing: {st}")
    error_body(body, 404)
    # Body errors: 400 naming what is wrong, never 500.
    bad_bodies = [
        (b"{not json", None), (b"", None), (b"[]", None), (b"42", None),
        (json.dumps({"00100010": {"vr": "XX", "Value": ["a"]}}).encode(), "PatientName"),
        (json.dumps({"00100020": {"vr": "LO", "Value": [12]}}).encode(), "PatientID"),
        (b'{"00100020": {"vr": "LO", "Value": ["\xff\xfe"]}}', None),
        (json.dumps({"00281050": {"vr": "DS", "Value": [1e308 * 10 if False else 1e300]}}).encode(), None),
        (b'{"00100040": {"vr": "US", "Value": [99999999999999999999999999]}}', None),
        (("{\"00400100\": {\"vr\": \"SQ\", \"Value\": [" * 40 + "{}" + "]}}" * 40).encode(), None),
        (json.dumps({k: v for k, v in item().items() if k != "00100020"}).encode(), None),
        (json.dumps(item(study=None)).encode(), "StudyInstanceUID"),
    ]
    for data, attribute in bad_bodies:
        st, _, body = http(base, "POST", data)
        check(st == 400, f"bad body {data[:80]!r}: {st} {body[:200]!r}")
        error_body(body, 400, attribute)
    st, _, body = http(base, "POST", posted, ctype="text/plain")
    check(st == 415, f"text/plain body: {st}")
    # 413: declared too large, and streamed (chunked, no length) too large.
    st, _, body = http(base, "POST", b"{" + b" " * 70000 + b"}")
    check(st == 413, f"big body: {st}")
    error_body(body, 413)
    big = os.path.join(tmp, "big.json")
    with open(big, "wb") as f:
        f.write(b"{" + b" " * 200000 + b"}")
    st, _, _ = curl(base, "-X", "POST", "-H", "Content-Type: application/dicom+json", "-H",
                    "Transfer-Encoding: chunked", "--data-binary", "@" + big)
    check(st == 413, f"chunked big body: {st}")
    # 404, 405.
    st, _, body = http(f"{base}/9.9.9/NOPE")
    check(st == 404, f"GET absent: {st}")
    st, hd, body = http(base, "DELETE")
    check(st == 405 and "POST" in hd["Allow"] and "GET" in hd["Allow"], f"DELETE /mwlitems: {st} {hd['Allow']}")
    st, hd, _ = http(srv.url + path, "PATCH", b"{}")
    check(st == 405 and set(hd["Allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}, f"PATCH: {hd['Allow']}")
    st, _, _ = http(srv.url + "/mwlitemsx")
    check(st == 404, "unknown path")
    # DELETE.
    st, head, _ = curl(srv.url + path, "-X", "DELETE")
    check(st == 204, f"DELETE: {st}")
    st, _, _ = http(srv.url + path, "DELETE")
    check(st == 404, f"DELETE again: {st}")
    check("HTTP/1.1 500" not in srv.log() and srv.proc.poll() is None, "server alive, no 500")
    srv.stop()
    with open(srv.audit) as f:
        records = [json.loads(line) for line in f if '"http-write"' in line]
    results = [(r["method"], r["status"], r["result"]) for r in records]
    for want in [("POST", 201, "created"), ("POST", 200, "replaced"), ("PUT", 201, "created"),
                 ("POST", 200, "status STARTED"), ("DELETE", 204, "deleted"), ("DELETE", 404, "refused")]:
        check(want in results, f"audit lacks {want}: {results}")
    check(all(r["token_role"] == "none" and r["peer"].startswith("127.0.0.1:") for r in records), "audit fields")
    check(any(r["patient_id"] == "PID-77" and r["result"] == "created" for r in records), "audit patient")


def tokens(mwl, tmp):
    path = os.path.join(tmp, "tokens")
    with open(path, "w") as f:
        f.write(f"{READ_TOKEN} read\n{WRITE_TOKEN} write\n")
    srv = Server(mwl, tmp, "tok", os.path.join(tmp, "tok.db"), "--http-tokens-file", path)
    base = srv.url + "/mwlitems"
    st, _, _ = http(base)
    check(st == 401, f"no token: {st}")
    st, _, _ = http(base, token=READ_TOKEN)
    check(st == 200, f"read token GET: {st}")
    st, _, body = http(base, "POST", item(), token=READ_TOKEN)
    check(st == 403, f"read token POST: {st}")
    error_body(body, 403)
    st, _, _ = http(f"{base}/{STUDY}/SPS77", "DELETE", token=READ_TOKEN)
    check(st == 403, f"read token DELETE: {st}")
    # An SPS ID that could not be part of the item's address is refused.
    st, _, body = http(base, "POST", item(sps_id="S/1"), token=WRITE_TOKEN)
    check(st == 400, f"SPS ID with '/': {st}")
    error_body(body, 400, "ScheduledProcedureStepID")
    st, _, _ = http(base, "POST", item(), token="wrong-token-0123456789")
    check(st == 401, f"bad token POST: {st}")
    st, _, _ = curl(base, "-X", "POST", "-H", "Authorization: Bearer " + WRITE_TOKEN, "-H",
                    "Content-Type: application/dicom+json", "--data-binary", json.dumps(item()))
    check(st == 201, f"write token POST (curl): {st}")
    srv.stop()
    with open(srv.audit) as f:
        recs = [json.loads(line) for line in f if '"http-write"' in line]
    # Refused attempts are audited too (a read token, a bad one), the
    # reads are not.
    roles = [r["token_role"] for r in recs]
    check(roles == ["read", "read", "write", "no valid token", "write"], f"audit roles: {roles}")
    check([r["status"] for r in recs] == [403, 403, 400, 401, 201], f"audit statuses: {[r['status'] for r in recs]}")
    check(all(r["result"].startswith("refused") for r in recs[:4]), f"audit results: {[r['result'] for r in recs]}")


def element(group, elem, vr, value):
    """One Explicit VR Little Endian element, the value padded to even length
    (UI with NUL, text with a space), SQ with an undefined length."""
    if vr == "SQ":
        body = b"".join(struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + item + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
                        for item in value)
        return (struct.pack("<HH2sHI", group, elem, b"SQ", 0, 0xFFFFFFFF) + body
                + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    data = value.encode("ascii")
    if len(data) % 2:
        data += b"\0" if vr == "UI" else b" "
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(data)) + data


def raw_item(study, sps_id):
    """A worklist item as a raw data set (no preamble, no meta header: what
    mwl import reads like a DCMTK .wl file), in tag order."""
    step = b"".join([element(0x0008, 0x0060, "CS", "CT"), element(0x0040, 0x0001, "AE", "CT09"),
                     element(0x0040, 0x0002, "DA", "20260310"), element(0x0040, 0x0003, "TM", "101500"),
                     element(0x0040, 0x0007, "LO", "Head without contrast"),
                     element(0x0040, 0x0009, "SH", sps_id), element(0x0040, 0x0020, "CS", "SCHEDULED")])
    return b"".join([element(0x0008, 0x0050, "SH", "ACC-409"), element(0x0010, 0x0010, "PN", "Twice^Stored"),
                     element(0x0010, 0x0020, "LO", "PID-409"), element(0x0020, 0x000D, "UI", study),
                     element(0x0032, 0x1060, "LO", "CT head"), element(0x0040, 0x0100, "SQ", [step]),
                     element(0x0040, 0x1001, "SH", "RP409")])


def conflict(mwl, tmp):
    """The natural key (Study UID + SPS ID) names two stored steps: the same
    step imported into the worklists of called AE titles CT1 and CT2. The
    REST API cannot tell which one a path means, so it answers 409."""
    db = os.path.join(tmp, "dup.db")
    study, sps_id = STUDY + ".409", "SPS409"
    tree = os.path.join(tmp, "wlmscpfs")
    for aet in ("CT1", "CT2"):
        os.makedirs(os.path.join(tree, aet))
        with open(os.path.join(tree, aet, "item.wl"), "wb") as f:
            f.write(raw_item(study, sps_id))
    p = subprocess.run([mwl, "import", "--db", db, "--per-called-aet", tree], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    check(p.returncode == 0, f"mwl import --per-called-aet: exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
    srv = Server(mwl, tmp, "dup", db, "--per-called-aet")
    path = f"{srv.url}/mwlitems/{study}/{sps_id}"
    st, _, body = http(srv.url + "/mwlitems/count?" + urllib.parse.urlencode({"AccessionNumber": "ACC-409"}))
    check(st == 200 and json.loads(body).get("count") == 2, f"count of the two copies: {st} {body!r}")
    put = item(study=study, sps_id=sps_id)
    for method, url, body in (("GET", path, None), ("PUT", path, put), ("DELETE", path, None),
                              ("POST", path + "/status/STARTED", None)):
        st, hd, body = http(url, method, body)
        check(st == 409, f"{method} {url} with two stored copies: {st}, wanted 409: {body[:300]!r}")
        check(hd["Content-Type"].startswith("application/json"), f"409 content type {hd['Content-Type']}")
        err = error_body(body, 409)
        check("several" in err["error"], f"409 error text {err}")
    st, _, body = http(srv.url + "/mwlitems/count?" + urllib.parse.urlencode({"AccessionNumber": "ACC-409"}))
    check(st == 200 and json.loads(body).get("count") == 2, f"a 409 changed the store: {st} {body!r}")
    srv.stop()


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    harness.need("curl")
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-rest-") as tmp:
        differential(mwl, tmp)
        writes(mwl, tmp)
        tokens(mwl, tmp)
        conflict(mwl, tmp)
    print("http_rest: ok")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, harness.on_signal)
    try:
        sys.exit(main(sys.argv))
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        harness.kill_started()
