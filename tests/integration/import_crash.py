#!/usr/bin/env python3
"""kill -9 during a large import leaves a database that opens, passes
PRAGMA integrity_check, and holds exactly the files whose import committed.

`mwl import --verbose` prints "imported PATH" for each file only after the
batch holding it has committed. So after a kill at a random moment:
  - every printed file is in the database (committed means kept), and
  - the database holds nothing but whole committed batches: at most one
    batch more than was printed (committed, killed before printing), and
    every stored row comes from a file that was given.
Then the same import run to completion converges to every file once.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

mwl = sys.argv[1]
N = int(os.environ.get("MWL_CRASH_FILES", "6000"))
BATCH = 100


def run(*args, **kw):
    return subprocess.run([mwl, *args], check=True, capture_output=True, text=True, **kw)


def db_sources(path):
    con = sqlite3.connect(path)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = con.execute("SELECT source FROM sps").fetchall()
        keys = con.execute("SELECT count(DISTINCT natural_key) FROM sps").fetchone()[0]
    finally:
        con.close()
    return ok, [r[0] for r in rows], keys


def main():
    work = tempfile.mkdtemp(prefix="mwl_crash_")
    try:
        src_db = os.path.join(work, "src.db")
        files = os.path.join(work, "files")
        run("demo", "--db", src_db, "--count", str(N), "--days", "30")
        run("export", "--db", src_db, "--date", "all", "--out-dir", files)
        all_files = {os.path.join(files, f) for f in os.listdir(files)}
        assert len(all_files) == N, len(all_files)

        db = os.path.join(work, "crash.db")
        killed_ok = False
        for attempt, wait_lines in enumerate((BATCH * 3, BATCH, 1)):
            for f in os.listdir(work):
                if f.startswith("crash.db"):
                    os.unlink(os.path.join(work, f))
            out_path = os.path.join(work, "out%d.txt" % attempt)
            with open(out_path, "w") as out:
                p = subprocess.Popen([mwl, "import", "--db", db, "--verbose", "--batch", str(BATCH), files],
                                     stdout=out, stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and p.poll() is None:
                    with open(out_path) as f:
                        if sum(1 for line in f if line.startswith("imported ")) >= wait_lines:
                            break
                    time.sleep(0.002)
                finished = p.poll() is not None
                if not finished:
                    p.send_signal(signal.SIGKILL)
                p.wait(timeout=30)
            if not finished:
                killed_ok = True
                break
        if not killed_ok:
            print("SKIP: import always finished before it could be killed")
            return 77

        with open(out_path) as f:
            printed = {line.split(" ", 1)[1].rstrip("\n") for line in f if line.startswith("imported ")}
        ok, sources, distinct = db_sources(db)
        stored = set(sources)
        print("killed after %d files printed; database holds %d rows" % (len(printed), len(sources)))
        assert ok == "ok", "integrity_check: %s" % ok
        assert len(sources) == len(stored) == distinct, "a file was stored twice"
        missing = printed - stored
        assert not missing, "printed as imported but not in the database: %s" % sorted(missing)[:3]
        extra = stored - printed
        assert stored <= all_files, "rows from unknown sources"
        assert len(extra) <= BATCH, "%d rows beyond the printed files (more than one batch)" % len(extra)

        # mwl itself can read it, and finishing the import converges.
        run("ls", "--db", db, "--date", "all", "--limit", "5")
        res = run("import", "--db", db, "--batch", str(BATCH), files)
        ok, sources, distinct = db_sources(db)
        assert ok == "ok" and len(sources) == N and set(sources) == all_files, res.stdout
        print("re-import converged to %d rows: %s" % (len(sources), res.stdout.strip()))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
