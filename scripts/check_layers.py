#!/usr/bin/env python3
"""Checks the module layering of src/ (STYLE.md §3, docs/architecture.md).

- Every `#include "mod/..."` in src/<module>/ names the module itself or a
  module its CMake library links directly (target_link_libraries of
  mwl_<module> in src/<module>/CMakeLists.txt): the CMake links are the
  layer diagram, and an include outside it is a layering error even when
  the link happens to work transitively. Everyone may use base (layer 0).
- The module graph has no cycle.
- The headers under src/ include each other without a cycle.

Exit 0 when all hold, 1 with one line per problem otherwise.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z0-9_]+)/([^"]+)"', re.M)


def modules():
    return sorted(d for d in os.listdir(SRC) if os.path.isfile(os.path.join(SRC, d, "CMakeLists.txt")))


def links(module):
    """Modules mwl_<module> links directly, from its CMakeLists.txt."""
    text = open(os.path.join(SRC, module, "CMakeLists.txt")).read()
    out = set()
    for m in re.finditer(r"target_link_libraries\(\s*mwl_%s\b([^)]*)\)" % re.escape(module), text):
        out.update(re.findall(r"\bmwl_([a-z0-9_]+)\b", m.group(1)))
    out.discard(module)
    return out


def sources(module):
    d = os.path.join(SRC, module)
    for name in sorted(os.listdir(d)):
        if name.endswith((".c", ".h")):
            yield os.path.join(d, name)


def find_cycle(graph):
    """A list of nodes forming a cycle, or None."""
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def main():
    problems = []
    mods = modules()
    edges = {m: links(m) for m in mods}
    header_graph = {}
    for m in mods:
        for path in sources(m):
            rel = os.path.relpath(path, SRC)
            is_test = path.endswith("_test.c") or path.endswith("_test_util.h")
            for inc_mod, inc_file in INCLUDE.findall(open(path, encoding="utf-8").read()):
                if inc_mod not in mods:
                    continue
                if inc_mod not in (m, "base") and inc_mod not in edges[m] and not is_test:
                    problems.append("%s includes %s/%s, but mwl_%s does not link mwl_%s" %
                                    (rel, inc_mod, inc_file, m, inc_mod))
                if rel.endswith(".h"):
                    header_graph.setdefault(rel, set()).add("%s/%s" % (inc_mod, inc_file))
    cycle = find_cycle(edges)
    if cycle:
        problems.append("module cycle: " + " -> ".join(cycle))
    cycle = find_cycle(header_graph)
    if cycle:
        problems.append("header include cycle: " + " -> ".join(cycle))
    for p in problems:
        print("check_layers: " + p)
    if not problems:
        print("check_layers: %d modules, %d headers: includes follow the links, no cycles" %
              (len(mods), len(header_graph)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
