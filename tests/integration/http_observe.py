#!/usr/bin/env python3
"""The HTTP listener's observability endpoints (issue 13): /queries,
/metrics beyond the plain counters, /explain, /openapi.json.

  http_observe.py MWL DOCS_OPENAPI_JSON

Fills a database with `mwl demo`, starts `mwl serve --http-port 0
--http-port-file ... --query-log-size 50`, and runs C-FINDs with `mwl find`
from two calling AE titles (CT01: three, one of them matching nothing;
MR01: two) and, when DCMTK's findscu is installed, one more from DCMTK1.

- GET /queries: every C-FIND, newest first (ids descending, the last one
  sent first), with its calling and called AE, the matches `mwl find
  --json` got, status 0000, a duration, the keys text and the identifier as
  DICOM JSON; ?calling=MR01 gives MR01's only; ?limit=1 the newest only; a
  bad limit is 400.
- GET /metrics: every line a comment or `name{labels} value`; the
  mwl_cfind_total{status,calling_aet} samples equal what each AE sent;
  the latency histogram's buckets never decrease, +Inf equals _count, and
  _count equals the C-FINDs sent; associations by outcome, refusals by
  reason and mwl_items_stored (the demo's count) are there.
- GET /explain: a stored step against keys built from its own values
  matches; with another station it does not and names that key alone;
  ?query=ID explains a logged C-FIND (the one that matched nothing: the
  step fails on its modality); POST /explain with {query: {keys}} and with
  a DICOM JSON identifier says the same; an unknown accession is 404, no
  item selector 400, an unknown keyword 400, a body that is not the
  envelope 400.
- GET /openapi.json equals docs/openapi.json byte for byte, is JSON, and
  lists every endpoint of the HTTP listener.
- One ORM^O01 through the HL7 feed (--hl7-port) is counted as
  mwl_hl7_messages_total{type="ORM^O01",ack=...} 1.
- GET /status: the C-FIND and association counts; before any HL7 message
  hl7.last_message and last_error are null; after the good ORM (AA) and one
  without PID-3 (AE), both sent with `mwl hl7send`, last_message is the bad
  one and last_error names it with its error text, each with a UTC time,
  sender CLASSICRIS|RADIOLOGY, type ORM^O01 and its MSH-10.
Exit 0 pass, 1 fail.
"""
import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import harness
from harness import Failure, check

HOST = "127.0.0.1"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*")*)?\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
STATION = "ScheduledProcedureStepSequence>ScheduledStationAETitle"
PATHS = ["/healthz", "/metrics", "/openapi.json", "/queries", "/status", "/explain", "/mwlitems", "/mwlitems/count",
         "/mwlitems/{StudyInstanceUID}/{SPSID}", "/mwlitems/{StudyInstanceUID}/{SPSID}/status/{STATUS}"]


def run(argv, expect=0):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, stdin=subprocess.DEVNULL)
    out, err = p.stdout.decode(), p.stderr.decode(errors="replace")
    check(p.returncode == expect, f"{' '.join(argv)}: exit {p.returncode}, wanted {expect}:\n{out}{err}")
    return out


def http(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url, want=200, method="GET", body=None):
    status, data = http(url, method, body)
    check(status == want, f"{method} {url}: {status}, wanted {want}: {data[:300]!r}")
    try:
        return json.loads(data)
    except ValueError:
        raise Failure(f"{method} {url}: not JSON: {data[:300]!r}")


def parse_metrics(text):
    """[(name, {labels}, value)]; every line must be a comment or a sample."""
    out = []
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"not a Prometheus sample line: {line!r}")
        labels = dict(LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(line.rsplit(" ", 1)[1])))
    return out


class Server:
    def __init__(self, mwl, tmp, db):
        self.port_file = os.path.join(tmp, "dicom.port")
        self.http_port_file = os.path.join(tmp, "http.port")
        self.hl7_port_file = os.path.join(tmp, "hl7.port")
        self.err_path = os.path.join(tmp, "serve.err")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([mwl, "serve", "--db", db, "--port", "0", "--port-file", self.port_file,
                                          "--bind", HOST, "--http-port", "0", "--http-port-file",
                                          self.http_port_file, "--query-log-size", "50", "--hl7-port", "0",
                                          "--hl7-port-file", self.hl7_port_file],
                                         stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=harness.die_with_parent)
        harness.STARTED.append(self.proc)
        end = time.monotonic() + 15
        while time.monotonic() < end and self.proc.poll() is None and not (
                os.path.exists(self.port_file) and os.path.exists(self.http_port_file)):
            time.sleep(0.05)
        while time.monotonic() < end and self.proc.poll() is None and not os.path.exists(self.hl7_port_file):
            time.sleep(0.05)
        check(os.path.exists(self.hl7_port_file), f"no port file (exit {self.proc.poll()}): {self.log()}")
        time.sleep(0.05)
        with open(self.hl7_port_file) as f:
            self.hl7_port = int(f.read())
        with open(self.port_file) as f:
            self.port = int(f.read())
        with open(self.http_port_file) as f:
            self.url = f"http://{HOST}:{int(f.read())}"

    def log(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        check(rc == 0, f"serve exit {rc} after SIGTERM: {self.log()[-2000:]}")


def find(mwl, srv, aet, *query):
    out = run([mwl, "find", "--aet", aet, "--json", *query, HOST, str(srv.port)])
    return len(json.loads(out))


def findscu(tmp, srv, modality):
    """One C-FIND from DCMTK; the number of responses it wrote."""
    out_dir = os.path.join(tmp, "findscu")
    os.makedirs(out_dir)
    p = subprocess.run(["findscu", "-W", "-X", "-aet", "DCMTK1", "-aec", "MWL", "-to", "20",
                        "-k", "AccessionNumber", "-k", "PatientID",
                        "-k", f"ScheduledProcedureStepSequence[0].Modality={modality}", HOST, str(srv.port)],
                       cwd=out_dir, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, f"findscu: {p.stderr.decode('latin-1')}")
    return len([f for f in os.listdir(out_dir) if f.startswith("rsp")])


def check_queries(srv, sent):
    """`sent`: [(calling AE, matches)] in the order sent."""
    recs = get_json(srv.url + "/queries")
    check(len(recs) == len(sent), f"/queries has {len(recs)} records, {len(sent)} C-FINDs were sent")
    ids = [r["id"] for r in recs]
    check(ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), f"/queries ids not newest first: {ids}")
    for r, (aet, matches) in zip(recs, reversed(sent)):
        check(r["callingAet"] == aet, f"record {r['id']}: calling {r['callingAet']}, wanted {aet}")
        check(r["matches"] == matches, f"record {r['id']} ({aet}): {r['matches']} matches, wanted {matches}")
        check(r["status"] == "0000" and r["statusText"], f"record {r['id']}: status {r['status']}")
        check(r["calledAet"] and r["peer"].startswith(HOST + ":"), f"record {r['id']}: {r}")
        check(isinstance(r["durationMs"], int) and r["durationMs"] >= 0, f"duration {r['durationMs']}")
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["time"]), f"time {r['time']}")
        check(isinstance(r["identifier"], dict) and "00400100" in r["identifier"],
              f"record {r['id']}: identifier {r['identifier']!r:.200}")
        check(isinstance(r["keys"], str), f"keys {r['keys']!r}")
    mr = get_json(srv.url + "/queries?calling=MR01")
    want = [m for a, m in reversed(sent) if a == "MR01"]
    check([r["matches"] for r in mr] == want and all(r["callingAet"] == "MR01" for r in mr),
          f"/queries?calling=MR01: {[(r['callingAet'], r['matches']) for r in mr]}, wanted {want}")
    one = get_json(srv.url + "/queries?limit=1")
    check(len(one) == 1 and one[0]["id"] == ids[0], f"/queries?limit=1: {[r['id'] for r in one]}")
    get_json(srv.url + "/queries?limit=x", 400)
    return recs


def check_metrics(srv, sent, items):
    status, body = http(srv.url + "/metrics")
    check(status == 200, f"/metrics: {status}")
    samples = parse_metrics(body.decode())
    by_aet = {}
    for name, labels, value in samples:
        if name == "mwl_cfind_total":
            check(set(labels) == {"status", "calling_aet"}, f"mwl_cfind_total labels {labels}")
            check(labels["status"] == "0000", f"mwl_cfind_total status {labels}")
            by_aet[labels["calling_aet"]] = by_aet.get(labels["calling_aet"], 0) + value
    want = {}
    for aet, _ in sent:
        want[aet] = want.get(aet, 0) + 1
    check(by_aet == want, f"mwl_cfind_total by calling AE {by_aet}, wanted {want}")
    buckets = [(labels["le"], value) for name, labels, value in samples if name == "mwl_cfind_duration_seconds_bucket"]
    check(len(buckets) > 2 and buckets[-1][0] == "+Inf", f"histogram buckets {buckets}")
    bounds = [float(le) for le, _ in buckets[:-1]]
    check(bounds == sorted(bounds), f"bucket bounds out of order: {bounds}")
    counts = [v for _, v in buckets]
    check(counts == sorted(counts), f"histogram buckets decrease: {counts}")
    single = {name: value for name, labels, value in samples if not labels}
    check(single.get("mwl_cfind_duration_seconds_count") == counts[-1] == len(sent),
          f"+Inf {counts[-1]}, _count {single.get('mwl_cfind_duration_seconds_count')}, sent {len(sent)}")
    check("mwl_cfind_duration_seconds_sum" in single, "no mwl_cfind_duration_seconds_sum")
    outcomes = {l["outcome"]: v for n, l, v in samples if n == "mwl_association_outcomes_total"}
    check(outcomes.get("accepted") == len(sent) and outcomes.get("rejected") == 0, f"outcomes {outcomes}")
    reasons = {l["reason"] for n, l, v in samples if n == "mwl_associations_refused_total"}
    check(reasons == {"busy", "calling_aet", "called_aet", "other"}, f"refusal reasons {reasons}")
    check(single.get("mwl_items_stored") == items, f"mwl_items_stored {single.get('mwl_items_stored')}, "
                                                   f"wanted {items}")


def check_with_curl(srv):
    """The same endpoints through curl, a client nobody here wrote, as a
    Prometheus scraper or an admin's script would call them."""
    p = subprocess.run(["curl", "-s", "-S", "--max-time", "30", "-D", "-", srv.url + "/metrics"],
                       capture_output=True, timeout=60)
    check(p.returncode == 0, f"curl /metrics: exit {p.returncode} {p.stderr!r}")
    head, _, body = p.stdout.decode().partition("\r\n\r\n")
    check(head.startswith("HTTP/1.1 200") and "text/plain; version=0.0.4" in head, f"curl /metrics: {head!r}")
    _, urllib_body = http(srv.url + "/metrics")
    totals = [s for s in parse_metrics(body) if s[0] == "mwl_cfind_total"]
    check(totals and totals == [s for s in parse_metrics(urllib_body.decode()) if s[0] == "mwl_cfind_total"],
          f"curl's mwl_cfind_total samples differ from urllib's: {totals}")
    p = subprocess.run(["curl", "-s", "-S", "--fail", "--max-time", "30", srv.url + "/status"], capture_output=True,
                       timeout=60)
    check(p.returncode == 0, f"curl /status: exit {p.returncode} {p.stderr!r}")
    check("cfind_total" in json.loads(p.stdout), f"curl /status: {p.stdout[:200]!r}")


def check_explain(srv, step, logged_id):
    base = srv.url + "/explain?accession=" + step["accession"]
    keys = ("&ScheduledProcedureStepSequence.Modality=" + step["modality"] + "&PatientID=" + step["patientId"])
    ok = get_json(base + keys + "&ScheduledProcedureStepSequence.ScheduledStationAETitle=" + step["station"])
    check(ok["matched"] is True and len(ok["steps"]) == 1 and ok["steps"][0]["failing"] == [],
          f"matching explain: {json.dumps(ok)[:400]}")
    check(ok["steps"][0]["spsId"] == step["spsId"], f"explained step {ok['steps'][0]['spsId']}")
    other = step["station"] + "X"
    no = get_json(base + keys + "&ScheduledProcedureStepSequence.ScheduledStationAETitle=" + other)
    s = no["steps"][0]
    check(no["matched"] is False and s["failing"] == [STATION], f"non-matching explain: failing {s['failing']}")
    line = [k for k in s["keys"] if k["path"] == STATION][0]
    check(line["query"] == other and line["value"] == step["station"] and line["result"] == "no match",
          f"station key {line}")

    # The logged C-FIND that matched nothing asked for another modality.
    logged = get_json(srv.url + f"/explain?accession={step['accession']}&query={logged_id}")
    check(logged["query"] == logged_id and logged["matched"] is False
          and logged["steps"][0]["failing"] == ["ScheduledProcedureStepSequence>Modality"],
          f"explain of logged query {logged_id}: {json.dumps(logged)[:400]}")
    get_json(srv.url + f"/explain?accession={step['accession']}&query=999999", 404)

    body = {"query": {"keys": {"ScheduledProcedureStepSequence.ScheduledStationAETitle": other,
                               "PatientID": step["patientId"]}},
            "item": {"sps_id": step["spsId"]}}
    post = get_json(srv.url + "/explain", 200, "POST", json.dumps(body).encode())
    check(post["matched"] is False and post["steps"][0]["failing"] == [STATION], f"POST keys: {post}")
    body = {"query": {"00100020": {"vr": "LO", "Value": [step["patientId"]]}}, "item": {"accession": step["accession"]}}
    post = get_json(srv.url + "/explain", 200, "POST", json.dumps(body).encode())
    check(post["matched"] is True, f"POST DICOM JSON: {post}")
    body = {"query": {"00100020": {"vr": "LO", "Value": [step["patientId"] + "X"]}}, "item": {"accession": step["accession"]}}
    post = get_json(srv.url + "/explain", 200, "POST", json.dumps(body).encode())
    check(post["steps"][0]["failing"] == ["PatientID"], f"POST DICOM JSON non-match: {post['steps'][0]['failing']}")

    # POST /explain from curl.
    p = subprocess.run(["curl", "-s", "-S", "--fail", "--max-time", "30", "-X", "POST", "-H",
                        "Content-Type: application/json", "--data-binary", json.dumps(body), srv.url + "/explain"],
                       capture_output=True, timeout=60)
    check(p.returncode == 0 and json.loads(p.stdout)["steps"][0]["failing"] == ["PatientID"],
          f"curl POST /explain: exit {p.returncode} {p.stdout[:200]!r}")

    get_json(srv.url + "/explain?accession=NO-SUCH-ACCESSION&PatientID=1", 404)
    get_json(srv.url + "/explain?PatientID=1", 400)
    err = get_json(base + "&NoSuchKeyword=1", 400)
    check("NoSuchKeyword" in err["error"], f"unknown keyword error {err}")
    get_json(srv.url + "/explain", 400, "POST", b'{"query": [1, 2]')
    get_json(srv.url + "/explain", 400, "POST", b'{"item": {"accession": "A"}}')


def check_openapi(srv, path):
    status, served = http(srv.url + "/openapi.json")
    check(status == 200, f"/openapi.json: {status}")
    with open(path, "rb") as f:
        check(served == f.read(), "/openapi.json differs from docs/openapi.json")
    doc = json.loads(served)
    check(doc.get("openapi", "").startswith("3.0"), f"openapi version {doc.get('openapi')}")
    missing = [p for p in PATHS if p not in doc.get("paths", {})]
    check(not missing, f"/openapi.json lacks {missing}")
    check("post" in doc["paths"]["/explain"] and "get" in doc["paths"]["/explain"], "/explain GET and POST")
    p = subprocess.run(["curl", "-s", "-S", "--fail", "--max-time", "30", srv.url + "/openapi.json"],
                       capture_output=True, timeout=60)
    check(p.returncode == 0 and p.stdout == served, f"curl /openapi.json: exit {p.returncode}")
    # The page's files carry an ETag; curl asking with it gets 304.
    p = subprocess.run(["curl", "-s", "-S", "--max-time", "30", "-D", "-", "-o", "/dev/null", srv.url + "/app.js"],
                       capture_output=True, timeout=60)
    etag = [l.split(":", 1)[1].strip() for l in p.stdout.decode().splitlines() if l.lower().startswith("etag:")]
    check(p.returncode == 0 and etag, f"curl /app.js: no ETag: {p.stdout[:300]!r}")
    p = subprocess.run(["curl", "-s", "-S", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                        "If-None-Match: " + etag[0], srv.url + "/app.js"], capture_output=True, timeout=60)
    check(p.stdout == b"304", f"curl If-None-Match: {p.stdout!r}")


def hl7send(mwl, srv, name):
    msg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hl7_messages", name)
    p = subprocess.run([mwl, "hl7send", "--host", HOST, "--port", str(srv.hl7_port), "--timeout", "20", msg],
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    check(b"MSA|" in p.stdout, f"hl7send {name}: exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
    return p.stdout


def check_status_before_hl7(srv, sent):
    st = get_json(srv.url + "/status")
    check(st["cfind_total"] == len(sent) and st["associations_total"] == len(sent)
          and isinstance(st["associations_active"], int), f"/status counters {st}, {len(sent)} C-FINDs sent")
    h = st["hl7"]
    check(h is not None and h["messages"] == 0 and h["last_message"] is None and h["last_error"] is None,
          f"/status hl7 before any message: {h}")


def check_event(ev, control_id, ack, what):
    check(ev is not None, f"/status {what}: null")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["time"] or ""), f"{what} time {ev['time']!r}")
    age = time.time() - calendar.timegm(time.strptime(ev["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    check(-5 < age < 300, f"{what} time {ev['time']} is not now (UTC)")
    check(ev["sender"] == "CLASSICRIS|RADIOLOGY" and ev["type"] == "ORM^O01" and ev["control_id"] == control_id
          and ev["ack"] == ack, f"/status {what}: {ev}")


def check_hl7(mwl, srv):
    """One ORM^O01 through the HL7 feed: counted under its type, whatever the ACK."""
    out = hl7send(mwl, srv, "classic_orm_nw.hl7")
    check(b"MSA|AA|CLS00001" in out, f"classic_orm_nw.hl7 not accepted: {out!r}")
    status, body = http(srv.url + "/metrics")
    samples = parse_metrics(body.decode())
    by_type = {}
    for name, labels, value in samples:
        if name == "mwl_hl7_messages_total":
            check(set(labels) == {"type", "ack"} and labels["ack"] in ("AA", "AE", "AR"), f"labels {labels}")
            by_type[labels["type"]] = by_type.get(labels["type"], 0) + value
    check(by_type == {"ORM^O01": 1}, f"mwl_hl7_messages_total by type {by_type}")
    h = get_json(srv.url + "/status")["hl7"]
    check(h["messages"] == 1 and h["aa"] == 1 and h["last_error"] is None, f"/status after one AA: {h}")
    check_event(h["last_message"], "CLS00001", "AA", "last_message")
    check(h["last_message"]["summary"], f"last_message without a summary: {h['last_message']}")

    out = hl7send(mwl, srv, "err_missing_pid3.hl7")
    check(b"MSA|AE|ERR00001" in out, f"err_missing_pid3.hl7 not answered AE: {out!r}")
    h = get_json(srv.url + "/status")["hl7"]
    check(h["messages"] == 2 and h["aa"] == 1 and h["ae"] == 1 and h["ar"] == 0, f"/status counters {h}")
    check_event(h["last_message"], "ERR00001", "AE", "last_message")
    check_event(h["last_error"], "ERR00001", "AE", "last_error")
    check("PID" in h["last_error"]["error"], f"last_error text does not name PID: {h['last_error']}")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-observe-") as tmp:
        db = os.path.join(tmp, "wl.db")
        run([mwl, "demo", "--db", db, "--count", "30", "--start", "20261201", "--seed", "11"])
        steps = json.loads(run([mwl, "ls", "--db", db, "--date", "all", "--json"]))
        check(len(steps) == 30, f"demo stored {len(steps)} steps")
        step = steps[0]
        modalities = {s["modality"] for s in steps}
        absent = next((m for m in ("XA", "PT", "NM", "US", "OT") if m not in modalities), None)
        check(absent is not None, "the demo uses every modality; pick another")

        srv = Server(mwl, tmp, db)
        sent = []
        sent.append(("CT01", find(mwl, srv, "CT01", "--date", "all", "--modality", step["modality"])))
        sent.append(("MR01", find(mwl, srv, "MR01", "--date", "all")))
        sent.append(("CT01", find(mwl, srv, "CT01", "--date", "all", "--modality", absent)))
        check(sent[-1][1] == 0, f"modality {absent} matched {sent[-1][1]}")
        sent.append(("MR01", find(mwl, srv, "MR01", "--date", step["date"], "--station", step["station"])))
        sent.append(("CT01", find(mwl, srv, "CT01", "--date", "all", "--patient-id", step["patientId"])))
        check(sent[0][1] >= 1 and sent[1][1] == 30 and sent[3][1] >= 1 and sent[4][1] >= 1, f"matches {sent}")
        if shutil.which("findscu"):
            sent.append(("DCMTK1", findscu(tmp, srv, step["modality"])))
        else:
            print("http_observe: findscu not installed; C-FINDs from mwl find only")
        recs = check_queries(srv, sent)
        logged_id = [r["id"] for r in recs if r["matches"] == 0][0]
        check_metrics(srv, sent, len(steps))
        check_with_curl(srv)
        check_explain(srv, step, logged_id)
        check_openapi(srv, argv[2])
        check_status_before_hl7(srv, sent)
        check_hl7(mwl, srv)
        srv.stop()
    print("http_observe: ok")
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
