#!/usr/bin/env python3
"""The soak benchmark (bench/soak.c, issue 11), short: ~20 s instead of minutes.

    soak_short.py MWL SOAK [--sanitized]

Makes a CA, a server and a client certificate (openssl) and a database of
3,000 `mwl demo` items (~300 a day, as bench/soak.sh's), starts `mwl serve`
with a plain and a TLS listener (client certificates required) and short
timers (associate, idle and ACSE timeouts 2 s), and runs the soak binary
against it: 16 mixed clients (8 over TLS: C-ECHO, C-FIND, C-FIND with
C-CANCEL, release or abort), 4 stallers (silent, half an A-ASSOCIATE-RQ, an
A-ASSOCIATE-RQ and nothing after it; plain and TLS) and 2,000 sequential
associations. Passes when:

  - soak reports no failure of any kind and exits 0;
  - the server's open fds after the run equal those before it (sockets
    and files, not the worklist database's: its connection pool may grow);
  - its RSS grew by less than the bound (25 %; 50 % sanitized: ASan keeps
    its own caches, so the server runs without its quarantine there, as
    server_test.py's bad-peers mode does, and LeakSanitizer checks for
    leaks when the server exits);
  - every kind of operation happened, every sequential association was
    made, and most TLS associations resumed a session (the clients share
    one mwl_tls);
  - the server exits 0 on SIGTERM.

Exit 0 pass, 1 fail, 77 skipped (no openssl). Every process is killed by
PID on the way out; every wait is bounded.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import server_test as st  # Server, the process helpers, failures
import tls_interop as ti  # TlsServer


def make_certs(d):
    """A CA, and a server and a client certificate it signs (RSA 2048)."""
    def run(*cmd):
        rc, out = ti.run(["openssl"] + list(cmd))
        if rc != 0:
            raise RuntimeError("openssl %s: %s" % (cmd[0], out))
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", os.path.join(d, "ca.key"), "-out",
        os.path.join(d, "ca.crt"), "-days", "2", "-subj", "/CN=mwl soak CA")
    for who in ("server", "client"):
        p = os.path.join(d, who)
        with open(p + ".ext", "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p + ".key", "-out", p + ".csr", "-subj",
            "/CN=mwl soak " + who)
        run("x509", "-req", "-in", p + ".csr", "-CA", os.path.join(d, "ca.crt"), "-CAkey", os.path.join(d, "ca.key"),
            "-CAcreateserial", "-out", p + ".crt", "-days", "2", "-extfile", p + ".ext")
    return {k: os.path.join(d, k) for k in ("ca", "server", "client")}


def soak_run(mwl, soak, tmp, sanitized):
    certs = make_certs(tmp)
    db = os.path.join(tmp, "soak.db")
    start = time.strftime("%Y%m%d", time.localtime(time.time() - 5 * 86400))
    rc, out = ti.run([mwl, "demo", "--db", db, "--count", "3000", "--days", "10", "--start", start])
    if rc != 0:
        st.fail("mwl demo: " + out)
        return
    env = None
    if sanitized:
        # ASan's quarantine keeps freed blocks (256 MiB by default), so RSS
        # would grow with every association until it is full; without it
        # the RSS check means what it means in a normal build.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0:"
                               "thread_local_quarantine_size_kb=0").lstrip(":")
    srv = ti.TlsServer(mwl, tmp, certs, "--db", db, "--max-associations", "128", "--max-pending", "64",
                       "--max-peer-connections", "256", "--associate-timeout", "2", "--idle-timeout", "2",
                       "--acse-timeout", "2", "--log-level", "warn", name="soak", env=env)
    sequential = 2000
    bound = 50 if sanitized else 25
    cmd = [soak, "--port", str(srv.port), "--tls-port", str(srv.tls_port), "--ca", certs["ca"] + ".crt", "--cert",
           certs["client"] + ".crt", "--key", certs["client"] + ".key", "--server-pid", str(srv.pid),
           "--clients", "16", "--stallers", "4", "--sequential", str(sequential), "--duration", "20", "--warmup",
           "5", "--settle", "15", "--stall-limit", "20" if sanitized else "10", "--max-rss-growth", str(bound),
           "--progress", "10"]
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=st._die_with_parent)
        st.children.append(proc)
        try:
            out, _ = proc.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            st.fail("soak did not finish within 150 s:\n" + out.decode("utf-8", "replace")[-3000:])
            return
        text = out.decode("utf-8", "replace")
        st.note(text.rstrip())
        st.note("soak: exit %d after %.1f s" % (proc.returncode, time.monotonic() - t0))
        try:
            res = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            st.fail("no JSON line from soak")
            return
        if proc.returncode != 0 or not res["pass"]:
            st.fail("soak failed (exit %d)" % proc.returncode)
        bad = {k: v for k, v in res["failure"].items() if v}
        if res["failures"] or bad:
            st.fail("failures: %s" % bad)
        if res["fds"]["start"] < 0 or res["fds"]["end"] != res["fds"]["start"]:
            st.fail("server fds %d before, %d after" % (res["fds"]["start"], res["fds"]["end"]))
        if res["rss_kb"]["growth_pct"] >= bound:
            st.fail("server RSS %d -> %d KiB (%+.1f %%, bound %d %%)" % (
                res["rss_kb"]["start"], res["rss_kb"]["end"], res["rss_kb"]["growth_pct"], bound))
        ops = res["ops"]
        for kind in ("assoc_plain", "assoc_tls", "echo", "find", "cancel", "release", "abort", "stall_close"):
            if ops[kind]["count"] == 0:
                st.fail("no %s operation in the run" % kind)
        if res["sequential"]["done"] != sequential:
            st.fail("%d of %d sequential associations" % (res["sequential"]["done"], sequential))
        if ops["assoc_tls"]["count"] and res["tls_resumed"] * 2 < ops["assoc_tls"]["count"]:
            st.fail("only %d of %d TLS associations resumed a session" % (res["tls_resumed"],
                                                                         ops["assoc_tls"]["count"]))
    finally:
        rc, _ = srv.stop()
        with open(srv.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        if rc != 0:
            st.fail("server exit status %s after SIGTERM (LeakSanitizer?)\n%s" % (rc, log[-3000:]))
        errors = [line for line in log.splitlines() if "error" in line.lower()]
        if errors:
            st.fail("the server logged errors:\n" + "\n".join(errors[:20]))


def main():
    if len(sys.argv) < 3:
        print("usage: soak_short.py MWL SOAK [--sanitized]")
        return 2
    mwl, soak = sys.argv[1], sys.argv[2]
    sanitized = "--sanitized" in sys.argv[3:]
    if shutil.which("openssl") is None:
        print("SKIP: openssl not installed")
        return st.SKIP
    tmp = tempfile.mkdtemp(prefix="mwl-soak-")
    t0 = time.monotonic()
    try:
        soak_run(mwl, soak, tmp, sanitized)
    except Exception as e:
        import traceback
        traceback.print_exc()
        st.fail("%s: %s" % (type(e).__name__, e))
    finally:
        st.kill_children()
        shutil.rmtree(tmp, ignore_errors=True)
    st.note("soak_short: %.1f s" % (time.monotonic() - t0))
    if st.failures:
        print("soak_short: FAILED (%d problems)" % len(st.failures))
        return 1
    print("soak_short: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
