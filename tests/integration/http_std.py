#!/usr/bin/env python3
"""The standard Modality Scheduled Procedure Step search (PS3.18 ch. 14,
docs/http.md) of `mwl serve`, clause by clause, on `mwl demo --count 200`
data:

  http_std.py MWL

- match: keyword and tag forms (hex in either case) give the same results;
  nested attributes; a UID list with commas; an empty value is a return
  key; a repeated non-UID attribute is 400; an unknown parameter name is
  ignored; results equal `mwl find --json` (C-FIND) for station, date and
  modality queries (as http_rest.py's differential test).
- includefield: comma list, repeated, all; all with others is 400.
- fuzzymatching, emptyvaluematching, multiplevaluematching=true: processed
  literally with each Warning text exactly; malformed values 400.
- paging: offset/limit slices; the server's maximum cutting the list adds
  "There are N additional results that can be requested"; 204 past the end.
- 204 with no body on no match; 400 for limit=abc, offset=-1.
- media types: DICOM JSON (default, application/json, */*, accept=);
  application/dicom+xml and multipart/related; type="application/dicom+xml"
  as multipart parts, each a well-formed NativeDicomModel whose values
  equal the JSON's; multipart/related; type="application/dicom+json";
  406 for text/plain; 405 with Allow for POST.
- the same through curl (JSON, multipart XML, 204).
- /aets/{aet}/rs/mwlitems and /count answer as /mwlitems.
Exit 0 pass, 1 fail.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import harness
from harness import Failure, check
from http_rest import SPS, START, VECTORS, Server, curl, hidden_count, mwl_find, sps_key, strip_charset

PATH = "/modality-scheduled-procedure-steps"
NS = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
NUMBER_VRS = {"IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"}


def get(srv, params, accept=None, path=PATH, method="GET"):
    """(status, headers, body) of a request with `params` (dict or list of pairs)."""
    query = urllib.parse.urlencode(params)
    req = urllib.request.Request(srv.url + path + ("?" + query if query else ""), method=method)
    if accept is not None:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def warnings(headers):
    return headers.get_all("Warning") or []


def search(srv, params, accept=None):
    """The JSON results ([] on 204), checking the status and type."""
    st, hd, body = get(srv, params, accept)
    if st == 204:
        check(body == b"", f"204 with a body: {body[:100]!r}")
        return []
    check(st == 200, f"{params}: {st} {body[:300]!r}")
    check(hd["Content-Type"] == "application/dicom+json", f"content type {hd['Content-Type']}")
    return json.loads(body)


def keys(results):
    return [sps_key(o) for o in results]


def multipart(headers, body):
    """The parts' (content type, payload) of a multipart/related body."""
    ctype = headers["Content-Type"]
    check(ctype.startswith("multipart/related"), f"not multipart: {ctype}")
    params = dict(p.strip().split("=", 1) for p in ctype.split(";")[1:])
    boundary = params["boundary"].strip('"').encode()
    chunks = body.split(b"--" + boundary)
    check(chunks[0] == b"" and chunks[-1] == b"--\r\n", f"multipart framing: {chunks[0][:50]!r} {chunks[-1]!r}")
    parts = []
    for chunk in chunks[1:-1]:
        check(chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n"), f"part framing {chunk[:60]!r}")
        head, payload = chunk[2:-2].split(b"\r\n\r\n", 1)
        part_type = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-type:")]
        check(len(part_type) == 1, f"part without Content-Type: {head!r}")
        parts.append((part_type[0], payload))
    return params["type"].strip('"'), parts


def xml_dataset(elem):
    """A Native DICOM Model data set as the DICOM JSON Model (values as text)."""
    out = {}
    for attr in elem:
        check(attr.tag == NS + "DicomAttribute", f"unexpected element {attr.tag}")
        vr = attr.get("vr")
        entry = {"vr": vr}
        values = []
        for child in attr:
            if child.tag == NS + "Item":
                values.append(xml_dataset(child))
            elif child.tag == NS + "PersonName":
                pn = {}
                for group in child:
                    comps = [group.findtext(NS + c) or "" for c in
                             ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")]
                    pn[group.tag[len(NS):]] = "^".join(comps).rstrip("^")
                values.append(pn)
            elif child.tag == NS + "Value":
                values.append(child.text if child.text else None)
            elif child.tag == NS + "InlineBinary":
                entry["InlineBinary"] = child.text
            # Value numbers run from 1 in order.
            if child.get("number") is not None:
                check(child.get("number") == str(len(values)), f"{attr.get('tag')}: number {child.get('number')}")
        if values:
            entry["Value"] = values
        out[attr.get("tag")] = entry
    return out


def normal(ds):
    """A DICOM JSON data set with numbers as floats and PN groups without trailing '^'."""
    out = {}
    for tag, e in ds.items():
        e = dict(e)
        if "Value" in e:
            if e["vr"] == "SQ":
                e["Value"] = [normal(i) for i in e["Value"]]
            elif e["vr"] in NUMBER_VRS:
                e["Value"] = [None if v is None else float(v) for v in e["Value"]]
            elif e["vr"] == "PN":
                e["Value"] = [None if v is None else {g: s.rstrip("^") for g, s in v.items()} for v in e["Value"]]
        out[tag] = e
    return out


def check_warning(hd, text, srv):
    want = f"299 {srv.url}: {text}"
    check(want in warnings(hd), f"Warning {want!r} not in {warnings(hd)}")


def matching(srv, mwl):
    everything = search(srv, {"limit": "10000"})
    total = len(everything)
    check(total == 200 - hidden_count(mwl, srv), f"all: {total}")
    # Results equal C-FIND's for station, date and modality queries.
    nonempty = 0
    for q in VECTORS[:4] + VECTORS[6:11]:
        rest = search(srv, dict(q, limit="10000"))
        dimse = mwl_find(mwl, srv, q)
        check(sorted(keys(rest)) == sorted(keys(dimse)), f"{q}: {len(rest)} results, C-FIND {len(dimse)}")
        by_key = {sps_key(o): strip_charset(o) for o in dimse}
        for o in rest:
            check(strip_charset(o) == by_key[sps_key(o)], f"{q}: values differ for {sps_key(o)}")
        nonempty += 1 if rest else 0
    check(nonempty >= 6, f"only {nonempty} vectors matched: weak test")
    # Keyword and tag forms, hex in either case, nested with '.'.
    by_kw = search(srv, {SPS + "Modality": "CT", "limit": "10000"})
    check(by_kw and keys(by_kw) == keys(search(srv, {"00400100.00080060": "CT", "limit": "10000"})), "tag form")
    check(all(o["00400100"]["Value"][0]["00080060"]["Value"] == ["CT"] for o in by_kw), "nested match")
    uid = everything[0]["0020000D"]["Value"][0]
    a = search(srv, {"StudyInstanceUID": uid})
    check(a and keys(a) == keys(search(srv, {"0020000d": uid})) == keys(search(srv, {"0020000D": uid})),
          "hex in either case")
    # A UID list with commas = the identifier's backslash list (as /mwlitems takes it).
    uid2 = next(o["0020000D"]["Value"][0] for o in everything if o["0020000D"]["Value"][0] != uid)
    both = search(srv, {"StudyInstanceUID": uid + "," + uid2})
    st, _, body = get(srv, {"StudyInstanceUID": uid + "\\" + uid2, "limit": "10000"}, path="/mwlitems")
    check(st == 200 and keys(both) == keys(json.loads(body)), "comma UID list = backslash list")
    check({o["0020000D"]["Value"][0] for o in both} == {uid, uid2}, f"UID list: {len(both)} results")
    # A repeated UID attribute joins the lists; any other is 400.
    check(keys(search(srv, [("StudyInstanceUID", uid), ("StudyInstanceUID", uid2)])) == keys(both), "repeated UID")
    st, _, body = get(srv, [("PatientName", "A*"), ("PatientName", "B*")])
    check(st == 400 and json.loads(body)["attribute"] == "PatientName", f"repeated PatientName: {st} {body!r}")
    # An empty value is a return key.
    one = search(srv, {"ConfidentialityConstraintOnPatientDataDescription": "", "limit": "1"})
    check("00403001" in one[0] and "00403001" not in everything[0], f"empty value as return key: {sorted(one[0])}")
    # Unknown parameter names are ignored; malformed values of known ones are 400.
    check(keys(search(srv, {"foo": "bar", "NoSuchKeyword": "x", "limit": "10000"})) == keys(everything),
          "unknown names ignored")
    for params in ({"limit": "abc"}, {"offset": "-1"}, {"limit": ""}, {"fuzzymatching": "maybe"},
                   {"emptyvaluematching": "1"}, {SPS + "ScheduledProcedureStepStartDate": "20261399"}):
        st, _, body = get(srv, params)
        check(st == 400 and json.loads(body)["status"] == 400, f"{params}: {st} {body[:200]!r}")
    return everything


def includefield(srv, everything):
    base = set(everything[0])
    listed = search(srv, {"limit": "1", "includefield": "ConfidentialityConstraintOnPatientDataDescription,00101040"})
    check({"00403001", "00101040"} <= set(listed[0]), f"includefield list: {sorted(listed[0])}")
    repeated = search(srv, [("limit", "1"), ("includefield", "ConfidentialityConstraintOnPatientDataDescription"),
                            ("includefield", "00101040")])
    check(set(repeated[0]) == set(listed[0]), "includefield repeated = comma list")
    full = search(srv, {"limit": "1", "includefield": "all"})
    check(base < set(full[0]) and "00400011" in full[0]["00400100"]["Value"][0], f"all: {sorted(full[0])}")
    st, _, _ = get(srv, {"includefield": "all,PatientID"})
    check(st == 400, f"all combined with others: {st}")


def flags(srv):
    texts = {
        "fuzzymatching": "The fuzzymatching parameter is not supported. Only literal matching has been performed.",
        "emptyvaluematching": "The emptyvaluematching parameter is not supported. Empty Value Matching has not "
                              "been performed.",
        "multiplevaluematching": "The multiplevaluematching parameter is not supported. Multiple Value Matching "
                                 "has not been performed.",
    }
    literal = keys(search(srv, {"PatientName": "M*", "limit": "10000"}))
    for name, text in texts.items():
        st, hd, body = get(srv, {name: "true", "PatientName": "M*", "limit": "10000"})
        check(st == 200 and keys(json.loads(body)) == literal, f"{name}=true: {st}, literal results")
        check(warnings(hd) == [f"299 {srv.url}: {text}"], f"{name}: {warnings(hd)}")
        st, hd, _ = get(srv, {name: "false", "limit": "1"})
        check(st == 200 and warnings(hd) == [], f"{name}=false: {st} {warnings(hd)}")
    st, hd, _ = get(srv, dict({n: "true" for n in texts}, limit="1"))
    for text in texts.values():
        check_warning(hd, text, srv)


def paging(srv, everything):
    total = len(everything)
    check(total > 100, f"only {total} steps: cannot test the server's maximum")
    st, hd, body = get(srv, {})
    page = json.loads(body)
    check(st == 200 and keys(page) == keys(everything[:100]), f"default page: {st} {len(page)}")
    check(warnings(hd) == [f"299 {srv.url}: There are {total - 100} additional results that can be requested"],
          f"additional results: {warnings(hd)}")
    st, hd, body = get(srv, {"offset": "30"})
    check(keys(json.loads(body)) == keys(everything[30:130]), "offset with the default page")
    check(warnings(hd) == [f"299 {srv.url}: There are {total - 130} additional results that can be requested"],
          f"additional results after offset: {warnings(hd)}")
    # The client asked for fewer: no warning.
    st, hd, body = get(srv, {"limit": "7", "offset": "5"})
    check(st == 200 and keys(json.loads(body)) == keys(everything[5:12]) and warnings(hd) == [],
          f"limit/offset slice: {warnings(hd)}")
    # Above the maximum (10000) it is cut to it: all here, nothing more to tell.
    st, hd, body = get(srv, {"limit": "20000"})
    check(st == 200 and len(json.loads(body)) == total and warnings(hd) == [], f"limit 20000: {warnings(hd)}")
    # Idempotent: the same request gives the same ordered list.
    check(keys(search(srv, {"limit": "10000"})) == keys(everything), "stable order")
    st, _, body = get(srv, {"offset": "100000"})
    check(st == 204 and body == b"", f"offset past the end: {st}")
    st, hd, body = get(srv, {"PatientID": "no-such-patient"})
    check(st == 204 and body == b"" and hd.get("Content-Type") is None, f"no match: {st} {body!r}")


def media(srv):
    params = {SPS + "Modality": "MR", "limit": "5"}
    want = search(srv, params)
    check(len(want) == 5, f"{len(want)} MR steps")
    for accept in ("application/json", "*/*", "application/dicom+json; q=0.9, text/html", "text/plain, */*;q=0.1",
                   "application/dicom+xml;q=0, application/dicom+json", "*/*;q=0.0001",
                   "application/dicom+json;q=abc", "application/dicom+json;q=nan",
                   "application/dicom+xml;level=1;q=0, application/dicom+json"):
        check(search(srv, params, accept) == want, f"Accept {accept!r}")
    check(search(srv, dict(params, accept="application/dicom+json"), "text/plain") == want,
          "accept= takes the place of the header")
    for accept in ("application/dicom+xml", 'multipart/related; type="application/dicom+xml"',
                   "text/plain;q=0.9, multipart/related;type=application/dicom+xml"):
        st, hd, body = get(srv, params, accept)
        check(st == 200, f"{accept}: {st} {body[:200]!r}")
        whole, parts = multipart(hd, body)
        check(whole == "application/dicom+xml" and len(parts) == len(want), f"{accept}: {whole} {len(parts)} parts")
        for (ptype, payload), obj in zip(parts, want):
            check(ptype.startswith("application/dicom+xml"), f"part type {ptype}")
            root = ET.fromstring(payload)
            check(root.tag == NS + "NativeDicomModel", f"root {root.tag}")
            got = normal(xml_dataset(root))
            check(got == normal(obj), f"XML values differ from the JSON's:\nXML  {got}\nJSON {normal(obj)}")
    st, hd, body = get(srv, dict(params, accept='multipart/related; type="application/dicom+json"'))
    whole, parts = multipart(hd, body)
    check(st == 200 and whole == "application/dicom+json" and len(parts) == len(want), f"multipart JSON {st}")
    check([json.loads(p)[0] for _, p in parts] == want, "multipart JSON parts = the JSON array")
    for accept in ("text/plain", "application/dicom", "application/dicom+json;q=0",
                   "application/dicom+json;x;q=0.000"):
        st, _, body = get(srv, params, accept)
        check(st == 406 and json.loads(body)["status"] == 406, f"Accept {accept!r}: {st}")
    st, hd, _ = get(srv, {}, method="POST")
    check(st == 405 and "GET" in hd.get("Allow", ""), f"POST: {st} {hd.get('Allow')}")


def with_curl(srv):
    """The standard search from curl, a client nobody here wrote: the same
    answer as urllib's, the multipart XML form, and 204 for no match."""
    params = {SPS + "Modality": "MR", "limit": "5"}
    want = search(srv, params)
    url = srv.url + PATH + "?" + urllib.parse.urlencode(params)
    st, head, body = curl(url, "-H", "Accept: application/dicom+json")
    check(st == 200 and json.loads(body) == want, f"curl JSON search: {st}")
    st, head, body = curl(url, "-H", 'Accept: multipart/related; type="application/dicom+xml"')
    check(st == 200 and "multipart/related" in head.lower() and body.count(b"NativeDicomModel") >= 2 * len(want),
          f"curl multipart XML search: {st} {head!r}")
    st, _, body = curl(srv.url + PATH + "?PatientID=NO-SUCH-PATIENT")
    check(st == 204 and not body, f"curl, no match: {st} {body[:100]!r}")


def aliases(srv):
    q = {SPS + "ScheduledStationAETitle": "CT01", "limit": "10000"}
    st, _, a = get(srv, q, path="/mwlitems")
    st2, _, b = get(srv, q, path="/aets/MWL_SCP/rs/mwlitems")
    check(st == st2 == 200 and json.loads(a) == json.loads(b) and json.loads(a), "/aets/{aet}/rs/mwlitems")
    st, _, a = get(srv, {SPS + "Modality": "CT"}, path="/mwlitems/count")
    st2, _, b = get(srv, {SPS + "Modality": "CT"}, path="/aets/ANY/rs/mwlitems/count")
    check(st == st2 == 200 and json.loads(a) == json.loads(b), f"/aets/{{aet}}/rs/mwlitems/count: {a!r} {b!r}")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-std-") as tmp:
        db = os.path.join(tmp, "demo.db")
        p = subprocess.run([mwl, "demo", "--db", db, "--count", "200", "--days", "7", "--start", START, "--seed",
                            "13"], capture_output=True, timeout=120)
        check(p.returncode == 0, f"mwl demo: {p.stderr!r}")
        srv = Server(mwl, tmp, "std", db)
        everything = matching(srv, mwl)
        includefield(srv, everything)
        flags(srv)
        paging(srv, everything)
        media(srv)
        with_curl(srv)
        aliases(srv)
        srv.stop()
    print("http_std: ok")
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
