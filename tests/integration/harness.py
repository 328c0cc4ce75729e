"""Helpers shared by the integration test scripts: start/kill processes by
PID, pick ports, wait for listeners, checks and the CTest skip code.
Scripts run as `python3 tests/integration/X.py`, so `import harness` finds
this file beside them."""
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time

SKIP = 77  # CTest SKIP_RETURN_CODE
STARTED = []  # Popen objects the running script started


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def kill_started():
    for proc in STARTED:
        if proc.poll() is None:
            try:
                proc.kill()  # by PID, never by name
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def on_signal(signo, _frame):
    kill_started()
    sys.exit(128 + signo)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test script dies (e.g. a
    CTest timeout), so no server outlives its test (Linux)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def need(*tools):
    for tool in tools:
        if shutil.which(tool) is None:
            print(f"skipped: {tool} not installed")
            sys.exit(SKIP)


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(port, proc, seconds=10.0, host="127.0.0.1"):
    """True once `port` accepts connections; False if `proc` exits or time runs out."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
