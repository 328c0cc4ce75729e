#!/usr/bin/env python3
"""`mwl ls` lines its table up by display width.

  ls_table.py MWL

Fills a database with `mwl demo` (names in ASCII, Latin-1, Greek,
Cyrillic, Vietnamese and Japanese), lists it as a table and as JSON, and
checks that in every row the description -- the last column -- starts at
the same display column as in the header, counting East Asian wide
characters as 2 columns and combining marks as 0 (what a terminal does),
and that the Japanese name is there.
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata


def width(text):
    w = 0
    for ch in text:
        if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(argv)}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
        sys.exit(1)
    return p.stdout.decode("utf-8")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-ls-") as tmp:
        db = os.path.join(tmp, "demo.db")
        run([mwl, "demo", "--db", db, "--count", "40", "--days", "1", "--seed", "7"])
        table = run([mwl, "ls", "--db", db, "--date", "all"]).splitlines()
        rows = json.loads(run([mwl, "ls", "--db", db, "--date", "all", "--json"]))
    header, lines = table[0], table[1:]
    start = width(header) - width("DESCRIPTION")
    failures = []
    if len(lines) != len(rows) or not rows:
        failures.append(f"{len(lines)} table rows, {len(rows)} JSON objects")
    for line, row in zip(lines, rows):
        got = width(line) - width(row["description"])
        if got != start or not line.endswith(row["description"]):
            failures.append(f"description at column {got}, not {start}: {line!r}")
    if not any(any(unicodedata.east_asian_width(c) == "W" for c in row["patientName"]) for row in rows):
        failures.append("no name in a wide script among the rows: the test shows nothing")
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"{len(lines)} rows line up at column {start}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
