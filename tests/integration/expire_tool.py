#!/usr/bin/env python3
"""`mwl expire` and the expiry of `mwl serve`.

  expire_tool.py MWL

Fills a database with `mwl demo` (items from five days ago to four days
ahead), then: usage errors exit 2 and a database that cannot be opened
exits 1; --days N removes exactly the steps dated before today - N (local
date) and says so; --statuses-after-hours H removes the steps finished
more than H hours ago and no others; --statuses alone removes the rest of
those statuses. Statuses and their times are set in the index columns
directly (the HL7 feed that sets them is not built yet): the store expires
by those columns. Last, `mwl serve --expire-after-days 1` logs one
'expire:' line at start with the count, and a serve without expire keys
logs none.
"""
import datetime
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import harness
from harness import Failure, check


def run(argv, expect=0):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    check(p.returncode == expect, f"{' '.join(argv)}: exit {p.returncode}, wanted {expect}: {out.strip()}")
    return out


def rows(db, where="1", args=()):
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT count(*) FROM sps WHERE {where}", args).fetchone()[0]
    finally:
        con.close()


def execute(db, sql, args=()):
    con = sqlite3.connect(db)
    try:
        con.execute(sql, args)
        con.commit()
    finally:
        con.close()


def serve_log(mwl, tmp, db, name, *extra):
    """Starts `mwl serve`, waits for its port file, stops it; its log."""
    port_file = os.path.join(tmp, f"{name}.port")
    log_path = os.path.join(tmp, f"{name}.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([mwl, "serve", "--db", db, "--port", "0", "--port-file", port_file, "--bind",
                                 "127.0.0.1", *extra], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    harness.STARTED.append(proc)
    end = time.monotonic() + 15
    while time.monotonic() < end and proc.poll() is None and not os.path.exists(port_file):
        time.sleep(0.05)
    # the first run is at start, on its own thread: give it a moment
    text = ""
    while time.monotonic() < end and proc.poll() is None:
        with open(log_path, errors="replace") as f:
            text = f.read()
        if "expire:" in text or not extra:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    with open(log_path, errors="replace") as f:
        return f.read()


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    mwl = os.path.abspath(argv[1])
    today = datetime.date.today()
    start = (today - datetime.timedelta(days=5)).strftime("%Y%m%d")
    with tempfile.TemporaryDirectory(prefix="mwl-expire-") as tmp:
        db = os.path.join(tmp, "wl.db")
        run([mwl, "demo", "--db", db, "--count", "60", "--days", "10", "--start", start, "--seed", "3"])
        total = rows(db)
        check(total == 60, f"{total} rows after demo")

        # usage errors: 2; a database that cannot be opened: 1
        run([mwl, "expire", "--db", db], expect=2)
        run([mwl, "expire", "--db", db, "--days", "abc"], expect=2)
        run([mwl, "expire", "--db", db, "--days", "-1"], expect=2)
        run([mwl, "expire", "--db", db, "--statuses", "completed"], expect=2)
        run([mwl, "expire", "--db", db, "--bogus"], expect=2)
        run([mwl, "expire", "--db", db, "--days", "1", "extra"], expect=2)
        run([mwl, "expire", "--db", os.path.join(tmp, "no", "such", "x.db"), "--days", "1"], expect=1)
        check("usage: mwl expire" in run([mwl, "expire", "--help"]), "--help")
        check(rows(db) == total, "a refused command removed something")

        # by date: before today - 2 days
        before = (today - datetime.timedelta(days=2)).strftime("%Y%m%d")
        old = rows(db, "start_date <> '' AND start_date < ?", (before,))
        check(old > 0, "demo data has no steps before " + before)
        out = run([mwl, "expire", "--db", db, "--days", "2"])
        check(f"{old} scheduled procedure step{'s' if old != 1 else ''} scheduled before {before} removed" in out,
              f"--days 2 output: {out!r} (expected {old} before {before})")
        check(rows(db) == total - old, f"{rows(db)} rows left, expected {total - old}")
        check(rows(db, "start_date <> '' AND start_date < ?", (before,)) == 0, "old steps left")

        # by status and its age
        now_ms = int(time.time() * 1000)
        ids = [r[0] for r in sqlite3.connect(db).execute("SELECT id FROM sps ORDER BY id LIMIT 5")]
        for i, sps_id in enumerate(ids):
            status, age_h = ("COMPLETED", 3) if i < 3 else ("CANCELED", 0)
            execute(db, "UPDATE sps SET sps_status = ?, status_changed_at = ? WHERE id = ?",
                    (status, now_ms - age_h * 3600000, sps_id))
        left = rows(db)
        out = run([mwl, "expire", "--db", db, "--statuses-after-hours", "2"])
        check("3 scheduled procedure steps with status COMPLETED,DISCONTINUED,CANCELED since before" in out,
              f"--statuses-after-hours 2 output: {out!r}")
        check(rows(db) == left - 3, "finished steps not removed")
        out = run([mwl, "expire", "--db", db, "--statuses", "CANCELED"])
        check("2 scheduled procedure steps with status CANCELED removed" in out, f"--statuses output: {out!r}")
        check(rows(db) == left - 5 and rows(db, "sps_status <> 'SCHEDULED'") == 0, "statuses left")

        # mwl serve: one line at start with the counts; none when off
        db2 = os.path.join(tmp, "serve.db")
        run([mwl, "demo", "--db", db2, "--count", "30", "--days", "6", "--start", start, "--seed", "4"])
        before = (today - datetime.timedelta(days=1)).strftime("%Y%m%d")
        old = rows(db2, "start_date <> '' AND start_date < ?", (before,))
        log = serve_log(mwl, tmp, db2, "on", "--expire-after-days", "1")
        lines = [l for l in log.splitlines() if "expire:" in l]
        check(len(lines) == 1, f"serve with expiry logged {len(lines)} expire lines:\n{log}")
        check(f"expire: removed {old} steps scheduled before {before}" in lines[0], f"serve logged {lines}")
        check(rows(db2, "start_date <> '' AND start_date < ?", (before,)) == 0, "serve did not expire")
        log = serve_log(mwl, tmp, db2, "off")
        check("expire:" not in log, f"serve without expiry logged:\n{log}")
    print("expire_tool: ok")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Failure as e:
        print("FAIL:", e)
        sys.exit(1)
    finally:
        harness.kill_started()
