#!/usr/bin/env python3
"""Marks the function and variable declarations of public headers MWL_API.

libmwl is built with hidden visibility: only what a public header declares
with MWL_API (base/status.h) is exported from libmwl.so. This script adds
the marker where it is missing, so a new public function cannot be
forgotten; scripts/check_exports.py (a CTest test) checks the result.

    scripts/mark_api.py [--check] MODULE...

Public headers are every src/MODULE/*.h except *_int.h and test helpers.
A declaration is a top-level statement that starts in column 0 and names
an mwl_ function (or is an `extern` variable); static inline functions,
typedefs and macros are left alone. --check prints what is missing and
exits 1 instead of editing.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_START = ("typedef", "static", "struct", "enum", "union", "#", "}", "{", "/", "*", " ", "\t", "MWL_API",
              "extern \"C\"")


def public_headers(module):
    d = os.path.join(ROOT, "src", module)
    for name in sorted(os.listdir(d)):
        if name.endswith(".h") and not name.endswith("_int.h") and "test" not in name:
            yield os.path.join(d, name)


def statements(lines):
    """(first line index, text) of each top-level statement starting at column 0."""
    i = 0
    depth = 0
    in_comment = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if in_comment:
            if "*/" in line:
                in_comment = False
            i += 1
            continue
        if stripped.startswith("/*") and "*/" not in stripped:
            in_comment = True
            i += 1
            continue
        if depth == 0 and line and not line.startswith(SKIP_START) and not stripped.startswith("//"):
            start = i
            text = line
            while not re.search(r"[;{]\s*(/\*.*\*/)?\s*$", text) and i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i]
            yield start, text
        depth += line.count("{") - line.count("}")
        i += 1


def wants_marker(text):
    if text.rstrip().endswith("{"):
        return False  # a definition (not in public headers, but be safe)
    if text.startswith("extern ") and "(" not in text:
        return True
    return re.search(r"\bmwl_[a-z0-9_]+\s*\(", text) is not None


def main(argv):
    check = "--check" in argv
    modules = [a for a in argv if not a.startswith("--")]
    missing = 0
    for module in modules:
        for path in public_headers(module):
            lines = open(path, encoding="utf-8").read().split("\n")
            edits = []
            for start, text in statements(lines):
                if wants_marker(text):
                    edits.append(start)
            if not edits:
                continue
            missing += len(edits)
            rel = os.path.relpath(path, ROOT)
            if check:
                for e in edits:
                    print("%s:%d: public declaration without MWL_API: %s" % (rel, e + 1, lines[e].strip()))
                continue
            for e in edits:
                lines[e] = "MWL_API " + lines[e]
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
            print("%s: %d marked" % (rel, len(edits)))
    return 1 if (check and missing) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
