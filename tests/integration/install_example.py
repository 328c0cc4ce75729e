#!/usr/bin/env python3
"""The installed libmwl, used the way modality software would use it.

  install_example.py --build BUILD --source SRC --cmake CMAKE --cc CC [--san-flags FLAGS]

1. `cmake --install BUILD --prefix TMP/prefix`, and the layout: static and
   shared library (with its soname links), headers under include/mwl/ with
   their module paths, lib*/pkgconfig/mwl.pc;
2. every installed header compiles on its own (-I<prefix>/include/mwl);
3. examples/ configured and built as a separate project against the
   installed tree through pkg-config (PKG_CONFIG_PATH), and the example
   linked once more against the static library with
   `pkg-config --static --libs` (Libs.private must be complete);
4. both binaries run against `mwl serve` (the installed one) on a port the
   kernel picks, serving a demo database with today's items: they list
   exactly the steps `mwl ls` finds for that station today.

Exit 0 pass, 1 fail, 77 skipped (no pkg-config). Processes this script
starts are killed by PID when it ends.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import SKIP, STARTED, Failure, check, kill_started, on_signal  # noqa: E402


def run(argv, env=None, timeout=180, cwd=None):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def must(argv, what, **kw):
    code, out, err = run(argv, **kw)
    check(code == 0, f"{what}: exit {code}\n{out[-2000:]}\n{err[-2000:]}")
    return out


def wait_port(port_file, proc, seconds=15.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        try:
            with open(port_file) as f:
                port = int(f.read().strip())
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return port
        except (OSError, ValueError):
            time.sleep(0.05)
    raise Failure(f"mwl serve did not start (exit {proc.poll()})")


def test(args, tmp):
    prefix = os.path.join(tmp, "prefix")
    must([args.cmake, "--install", args.build, "--prefix", prefix], "cmake --install")

    pcs = glob.glob(os.path.join(prefix, "lib*", "**", "pkgconfig", "mwl.pc"), recursive=True) + \
        glob.glob(os.path.join(prefix, "lib*", "pkgconfig", "mwl.pc"))
    check(pcs, "no lib*/pkgconfig/mwl.pc installed")
    pc_dir = os.path.dirname(pcs[0])
    libdir = os.path.dirname(pc_dir)
    static_lib = os.path.join(libdir, "libmwl.a")
    check(os.path.isfile(static_lib), "libmwl.a not installed")
    shared = os.path.join(libdir, "libmwl.so")
    check(os.path.islink(shared) and os.path.isfile(os.path.realpath(shared)), "libmwl.so link not installed")
    code, out, _ = run(["objdump", "-p", os.path.realpath(shared)]) if shutil.which("objdump") else (1, "", "")
    if code == 0:
        soname = re.search(r"SONAME\s+(\S+)", out)
        check(soname and os.path.exists(os.path.join(libdir, soname.group(1))),
              f"the soname link {soname.group(1) if soname else '?'} is missing")
    include = os.path.join(prefix, "include", "mwl")
    for rel in ("client/client.h", "base/status.h", "dicom/dataset.h", "dicom/charset.h", "dicom/json.h"):
        check(os.path.isfile(os.path.join(include, rel)), f"include/mwl/{rel} not installed")
    private = [h for h in glob.glob(os.path.join(include, "**", "*.h"), recursive=True)
               if h.endswith("_int.h") or "test" in os.path.basename(h)]
    check(not private, f"private headers installed: {private}")

    # Each public header stands alone against the installed tree.
    headers = sorted(os.path.relpath(h, include) for h in glob.glob(os.path.join(include, "**", "*.h"), recursive=True))
    for rel in headers:
        src = os.path.join(tmp, "one_header.c")
        with open(src, "w") as f:
            f.write(f'#include "{rel}"\n#include "{rel}"\nint mwl_installed_header_ok;\n')
        must([args.cc, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
              "-I", include, src], f"installed header {rel} on its own")

    env = dict(os.environ, PKG_CONFIG_PATH=pc_dir)
    flags = args.san_flags.split()
    example_build = os.path.join(tmp, "build-examples")
    configure = [args.cmake, "-S", os.path.join(args.source, "examples"), "-B", example_build,
                 f"-DCMAKE_C_COMPILER={args.cc}"]
    if flags:
        # An ASan libmwl needs an ASan program (the runtime must load first).
        configure += [f"-DCMAKE_C_FLAGS={' '.join(flags)}", f"-DCMAKE_EXE_LINKER_FLAGS={' '.join(flags)}"]
    must(configure, "configure examples/ against the installed libmwl", env=env)
    must([args.cmake, "--build", example_build], "build examples/", env=env)
    shared_example = os.path.join(example_build, "list_today")
    check(os.path.isfile(shared_example), "examples/ built no list_today")
    code, out, _ = run(["ldd", shared_example]) if shutil.which("ldd") else (1, "", "")
    if code == 0:
        check(os.path.realpath(libdir) in out or libdir in out, f"list_today does not use the installed libmwl:\n{out}")

    # The same program against libmwl.a and the private libraries mwl.pc lists.
    cflags = must(["pkg-config", "--cflags", "mwl"], "pkg-config --cflags", env=env).split()
    libs = must(["pkg-config", "--static", "--libs", "mwl"], "pkg-config --static --libs", env=env).split()
    libs = [static_lib if a == "-lmwl" else a for a in libs]
    static_example = os.path.join(tmp, "list_today_static")
    must([args.cc, "-std=c11", "-D_POSIX_C_SOURCE=200809L", *flags, *cflags,
          os.path.join(args.source, "examples", "list_today.c"), "-o", static_example, *libs, *flags],
         "link list_today against libmwl.a with pkg-config --static")

    # A server with today's demo items, and what the store says is due today.
    mwl = os.path.join(prefix, "bin", "mwl")
    db = os.path.join(tmp, "demo.db")
    must([mwl, "demo", "--db", db, "--count", "200", "--days", "1"], "mwl demo")
    station = "CT01"
    listed = json.loads(must([mwl, "ls", "--db", db, "--date", "today", "--station", station, "--json"], "mwl ls"))
    check(len(listed) > 0, f"the demo database has nothing for {station} today")
    port_file = os.path.join(tmp, "port")
    with open(os.path.join(tmp, "serve.log"), "wb") as log:
        proc = subprocess.Popen([mwl, "serve", "--db", db, "--port", "0", "--port-file", port_file,
                                 "--bind", "127.0.0.1", "--aet", "WORKLIST"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    STARTED.append(proc)
    port = wait_port(port_file, proc)
    want = sorted((item["accession"], item["patientId"]) for item in listed)
    for binary in (shared_example, static_example):
        out = must([binary, "127.0.0.1", str(port), station, "WORKLIST"], f"{os.path.basename(binary)}")
        rows = [line.split() for line in out.splitlines() if re.match(r"^\d\d:\d\d  ", line)]
        got = sorted((r[1], r[2]) for r in rows)
        check(rows, f"{os.path.basename(binary)} printed no rows:\n{out}")
        check(got == want, f"{os.path.basename(binary)} listed {got}, mwl ls {want}")
        check(re.search(rf"^{len(want)} scheduled for {station} today; final status 0x0000", out, re.M),
              f"{os.path.basename(binary)}: no success summary:\n{out}")
    print(f"installed {len(headers)} headers; the example listed {len(want)} steps for {station} (shared and static)")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--cmake", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--san-flags", default="")
    args = ap.parse_args()
    if shutil.which("pkg-config") is None:
        print("skipped: pkg-config not installed")
        return SKIP
    try:
        with tempfile.TemporaryDirectory(prefix="mwl-install-") as tmp:
            try:
                test(args, tmp)
            finally:
                kill_started()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("install_example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
