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


def _node_versions(node_dir):
    """{package: (locked version, installed version or None)} for every
    direct dependency in node_dir's package-lock.json."""
    import json
    import os
    with open(os.path.join(node_dir, "package-lock.json")) as f:
        lock = json.load(f)
    out = {}
    for name in lock["packages"][""].get("dependencies", {}):
        want = lock["packages"]["node_modules/" + name]["version"]
        try:
            with open(os.path.join(node_dir, "node_modules", name, "package.json")) as f:
                have = json.load(f).get("version")
        except (OSError, ValueError):
            have = None
        out[name] = (want, have)
    return out


def ensure_node_modules(node_dir):
    """`npm ci` in node_dir (tests/node) unless every dependency of its
    package-lock.json is installed at the locked version. A lock file
    (outside the source tree) keeps two test runs (dcmjs_interop and
    hl7_node, or a normal and an ASan build) from installing over each
    other; both check all dependencies, so neither installs while the
    other runs with a complete node_modules."""
    import fcntl
    import hashlib
    import os
    import tempfile

    def missing():
        return {n: v for n, v in _node_versions(node_dir).items() if v[0] != v[1]}

    if not missing():
        return
    npm = shutil.which("npm")
    check(npm is not None, "npm is not installed (scripts/deps.sh --test installs nodejs and npm)")
    key = hashlib.sha1(node_dir.encode()).hexdigest()[:12]
    with open(os.path.join(tempfile.gettempdir(), "mwl-npm-ci-%s.lock" % key), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not missing():
            return
        env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
                   npm_config_audit="false")
        t0 = time.monotonic()
        try:
            p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], capture_output=True,
                               timeout=600, stdin=subprocess.DEVNULL, cwd=node_dir, env=env)
        except subprocess.TimeoutExpired:
            raise Failure("npm ci in %s: no end within 600 s" % node_dir)
        check(p.returncode == 0, "npm ci in %s: exit %d\n%s%s" % (node_dir, p.returncode,
                                                                  p.stdout.decode(errors="replace")[-2000:],
                                                                  p.stderr.decode(errors="replace")[-2000:]))
        left = missing()
        check(not left, "npm ci did not install %s" % ", ".join("%s %s" % (n, v[0]) for n, v in left.items()))
        print("npm ci: %s installed in %.1f s" % (", ".join("%s %s" % (n, v[0]) for n, v in
                                                           _node_versions(node_dir).items()),
                                                 time.monotonic() - t0))
