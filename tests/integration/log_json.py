#!/usr/bin/env python3
"""`mwl serve --log-format json`: every line of standard error is one JSON
object with the fields of the text log.

  log_json.py MWL

Starts `mwl serve --log-format json --log-level debug` (temporary database,
port picked by the kernel on 127.0.0.1), runs `mwl echo` against it, with
a calling AE title holding a quote and braces, so the escaping is
exercised, stops it with SIGTERM, then checks that every line
of its standard error parses as a JSON object with exactly "time" (UTC,
ISO 8601 with milliseconds and Z), "pid" (the server's), "level" (one of
the log levels) and "msg" (a string); that the association's lines are
there with the calling AE title intact; and that the same run with
--log-format text writes no JSON. Exit 0 pass, 1 fail.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import harness
from harness import Failure, check

LEVELS = {"error", "warn", "info", "debug", "trace"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CALLING = 'Q"{B}'  # a quote and braces (AE titles allow them): the JSON sink must escape


def serve_and_echo(mwl, tmp, fmt):
    """Runs a server with --log-format fmt, one C-ECHO; (pid, stderr text)."""
    port_file = os.path.join(tmp, fmt + ".port")
    err_path = os.path.join(tmp, fmt + ".err")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--port", "0", "--port-file",
                                 port_file, "--bind", "127.0.0.1", "--log-format", fmt, "--log-level", "debug"],
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                preexec_fn=harness.die_with_parent)
    harness.STARTED.append(proc)
    end = time.monotonic() + 15
    while time.monotonic() < end and proc.poll() is None and not os.path.exists(port_file):
        time.sleep(0.05)
    check(os.path.exists(port_file), f"{fmt}: no port file (exit {proc.poll()})")
    with open(port_file) as f:
        port = f.read().strip()
    p = subprocess.run([mwl, "echo", "--aet", CALLING, "127.0.0.1", port], capture_output=True, timeout=60)
    check(p.returncode == 0, f"{fmt}: mwl echo exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    # the association's end line comes after the echo returns
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=15)
    check(rc == 0, f"{fmt}: serve exit {rc} after SIGTERM")
    with open(err_path, "rb") as f:
        return proc.pid, f.read().decode("utf-8")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    mwl = os.path.abspath(argv[1])
    with tempfile.TemporaryDirectory(prefix="mwl-logjson-") as tmp:
        pid, text = serve_and_echo(mwl, tmp, "json")
        lines = text.splitlines()
        check(len(lines) >= 4, f"only {len(lines)} log lines: {text!r}")
        check(text.endswith("\n"), "the last line is not terminated")
        msgs = []
        for n, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise Failure(f"line {n} is not JSON ({e}): {line!r}")
            check(isinstance(obj, dict), f"line {n} is not an object: {line!r}")
            check(sorted(obj) == ["level", "msg", "pid", "time"], f"line {n}: fields {sorted(obj)}")
            check(isinstance(obj["time"], str) and TIME.match(obj["time"]), f"line {n}: time {obj['time']!r}")
            check(obj["pid"] == pid, f"line {n}: pid {obj['pid']!r}, the server is {pid}")
            check(obj["level"] in LEVELS, f"line {n}: level {obj['level']!r}")
            check(isinstance(obj["msg"], str) and obj["msg"], f"line {n}: msg {obj['msg']!r}")
            msgs.append(obj["msg"])
        # The text log's content, escaped once by mwl_log (a lone backslash
        # stays itself) and once more by JSON, which json.loads undoes.
        check(any(CALLING in m and "accepted" in m for m in msgs),
              f"no 'accepted' line naming calling AE {CALLING!r}: {msgs}")
        check(any(m == "stopped" for m in msgs), f"no 'stopped' line: {msgs}")

        _, text = serve_and_echo(mwl, tmp, "text")
        for line in text.splitlines():
            check(not line.startswith("{"), f"--log-format text wrote {line!r}")
            check(re.match(r"^\S+Z mwl\[\d+\] (error|warn|info|debug|trace): ", line), f"text line {line!r}")
    print("log_json: ok")
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
