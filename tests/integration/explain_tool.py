#!/usr/bin/env python3
"""`mwl explain`: why a stored worklist item does (not) match a query.

  explain_tool.py MWL

Fills a database with `mwl demo`, takes one stored step (from `mwl ls
--json`) and asks about it: a query built from its own values matches
(exit 0, "verdict: match"); the same query with another station does not
(exit 1), and the station's line says so with both values and the reason,
and the verdict line names that key alone; --json parses and says the
same; a name without its accents, upper case, gets the hint that
pn-accent-insensitive would match, and matches with that option; usage
errors exit 2, a step that is not stored exits 1.
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata

import harness
from harness import Failure, check

STATION = "ScheduledProcedureStepSequence>ScheduledStationAETitle"


def run(argv, expect):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode(errors="replace")
    check(p.returncode == expect, f"{' '.join(argv)}: exit {p.returncode}, wanted {expect}:\n{out}{err}")
    return out


def unaccented(s):
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def main(argv):
    mwl = argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "wl.db")
        run([mwl, "demo", "--db", db, "--count", "20", "--start", "20261201", "--seed", "7"], 0)
        steps = json.loads(run([mwl, "ls", "--db", db, "--date", "all", "--json"], 0))
        check(len(steps) == 20, f"demo stored {len(steps)} steps")
        s = steps[0]
        base = [mwl, "explain", "--db", db, "--sps-id", s["spsId"]]
        query = ["--date", s["date"], "--modality", s["modality"], "-k", "PatientID=" + s["patientId"]]

        out = run(base + query + ["--station", s["station"]], 0)
        check(out.rstrip().endswith("verdict: match"), f"matching query:\n{out}")
        check("NO MATCH" not in out, f"matching query shows a failing key:\n{out}")

        other = s["station"] + "X"
        out = run(base + query + ["--station", other], 1)
        lines = [l for l in out.splitlines() if l.lstrip().startswith("NO MATCH") and STATION in l]
        check(len(lines) == 1, f"no failing station line:\n{out}")
        check(f"Scheduled Station AE Title: query `{other}`, item `{s['station']}`" in lines[0]
              and "single value matching is exact" in lines[0], f"station line: {lines[0]}")
        verdict = out.rstrip().splitlines()[-1]
        check(verdict == f"verdict: no match; failing: {STATION}", f"verdict line: {verdict}")

        doc = json.loads(run(base + query + ["--station", other, "--json"], 1))
        check(doc["matched"] is False and len(doc["steps"]) == 1, f"--json: {doc}")
        step = doc["steps"][0]
        check(step["spsId"] == s["spsId"] and step["failing"] == [STATION], f"--json step: {step}")
        key = [k for k in step["keys"] if k["path"] == STATION]
        check(len(key) == 1 and key[0]["result"] == "no match" and key[0]["query"] == other
              and key[0]["value"] == s["station"] and key[0]["kind"] == "single value", f"--json key: {key}")
        doc = json.loads(run(base + query + ["--station", s["station"], "--json"], 0))
        check(doc["matched"] is True and doc["steps"][0]["failing"] == [], f"--json match: {doc}")

        # A name with accents asked for without them: the hint comes from
        # running the comparison again with the other name options.
        accented = [t for t in steps if t["patientName"] != unaccented(t["patientName"])]
        check(accented, "the demo data has no name with accents")
        t = accented[0]
        pattern = unaccented(t["patientName"]).split("^")[0].upper() + "*"
        by_sps = [mwl, "explain", "--db", db, "--sps-id", t["spsId"], "--patient-name", pattern]
        out = run(by_sps, 1)
        check("matches only with pn-accent-insensitive" in out, f"no accent hint:\n{out}")
        run(by_sps + ["--pn-accent-insensitive"], 0)

        # Selecting by accession: every step of it; --query from a file
        # that does not exist is a usage error, as in mwl find.
        run([mwl, "explain", "--db", db, "--accession", s["accession"]], 0)
        run([mwl, "explain", "--db", db, "--sps-id", "NO-SUCH-SPS"], 1)
        run([mwl, "explain", "--db", db, "--station", "CT1"], 2)
        run([mwl, "explain", "--db", db, "--sps-id", s["spsId"], "--bogus"], 2)
        run([mwl, "explain", "--db", db, "--sps-id", s["spsId"], "--query", os.path.join(tmp, "none.dcm")], 2)
        help_text = run([mwl, "explain", "--help"], 0)
        check("--pn-accent-insensitive" in help_text, "--help lacks the options")
    print("explain_tool: ok")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Failure as e:
        print("FAIL:", e)
        sys.exit(1)
    finally:
        harness.kill_started()
