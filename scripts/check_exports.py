#!/usr/bin/env python3
"""Checks what libmwl.so exports against the public headers.

    scripts/check_exports.py LIBMWL_SO

- Every dynamic symbol libmwl.so defines is declared with MWL_API in a public
  header of the modules it is made of (cmake/Install.cmake's list): no
  internal function leaks out of the library.
- Every public declaration carries MWL_API (scripts/mark_api.py --check), so
  a new public function cannot be left out of the library by mistake.
- The functions the installed client example uses are exported.

Exit 0 when all hold, 1 otherwise; 77 (skipped) without nm.
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ["base", "dicom", "ul", "dimse", "net", "client", "worklist", "store"]
DECL = re.compile(r"^MWL_API\b[^;]*?\b(mwl_[A-Za-z0-9_]+)\s*(\(|;|\[)", re.M | re.S)


def declared():
    names = set()
    for m in MODULES:
        d = os.path.join(ROOT, "src", m)
        for f in os.listdir(d):
            if f.endswith(".h") and not f.endswith("_int.h") and "test" not in f:
                text = open(os.path.join(d, f), encoding="utf-8").read()
                for stmt in re.findall(r"^MWL_API\b.*?;", text, re.M | re.S):
                    found = re.findall(r"\b(mwl_[A-Za-z0-9_]+)\s*\(", stmt)
                    if found:
                        names.add(found[0])
                    else:
                        var = re.findall(r"\b(mwl_[A-Za-z0-9_]+)\s*(?:\[[^\]]*\])?\s*;", stmt)
                        names.update(var[-1:])
    return names


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    nm = shutil.which("nm")
    if not nm:
        print("check_exports: nm not found: skipped")
        return 77
    out = subprocess.check_output([nm, "-D", "--defined-only", sys.argv[1]]).decode()
    exported = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVWiu":
            exported.add(parts[2].split("@")[0])
    problems = []
    decl = declared()
    leaked = sorted(n for n in exported if n not in decl and not n.startswith(("_", "__")))
    for n in leaked:
        problems.append("exported but not a public MWL_API declaration: %s" % n)
    for n in ("mwl_scu_associate", "mwl_scu_find", "mwl_scu_release", "mwl_ds_new", "mwl_status_str"):
        if n not in exported:
            problems.append("public function not exported: %s" % n)
    mark = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mark_api.py"), "--check"] + MODULES,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if mark.returncode != 0:
        problems.append("public declarations without MWL_API:\n" + mark.stdout.decode())
    for p in problems:
        print("check_exports: " + p)
    if not problems:
        print("check_exports: %d symbols exported, all public MWL_API declarations (%d declared)" %
              (len(exported), len(decl)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
