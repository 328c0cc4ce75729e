#!/usr/bin/env python3
"""Checks that ELF files were built with the hardening flags of
cmake/Hardening.cmake, by reading the files themselves (no binutils).

  check_hardening.py [--skip=REASON] [--probe CC] FILE...

For each FILE:
  - PIE: an executable (one with a PT_INTERP) is ET_DYN; a shared library
    is ET_DYN anyway;
  - full RELRO: a PT_GNU_RELRO segment, and immediate binding in the
    dynamic section (DT_BIND_NOW, DF_BIND_NOW in DT_FLAGS or DF_1_NOW in
    DT_FLAGS_1);
  - a non-executable stack: a PT_GNU_STACK segment without PF_X (without
    the segment the kernel may map the stack executable);
  - stack protector: the dynamic symbol __stack_chk_fail is referenced;
  - FORTIFY: at least one __*_chk function is referenced
    (__memcpy_chk, __snprintf_chk, __vsnprintf_chk, ...).

--skip=REASON prints REASON and exits 77 (CTest's skip code): CMake passes
it for builds that are not hardened (sanitizer, fuzz and Debug builds).
--probe CC first proves the checks can fail: it compiles a small program
with CC without the flags (-fno-stack-protector -U_FORTIFY_SOURCE -no-pie
-z norelro -z lazy -z execstack) and expects every check to fail on it.

Exit 0 when every file passes, 1 with one line per problem otherwise.
"""
import os
import struct
import subprocess
import sys
import tempfile

PT_DYNAMIC, PT_INTERP = 2, 3
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
PF_X = 1
ET_EXEC, ET_DYN = 2, 3
DT_NULL, DT_BIND_NOW, DT_FLAGS, DT_FLAGS_1 = 0, 24, 30, 0x6FFFFFFB
DF_BIND_NOW, DF_1_NOW = 0x8, 0x1
SHT_DYNSYM = 11
SHN_UNDEF = 0


class Elf:
    """The parts of an ELF file the checks read."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF":
            raise ValueError("not an ELF file")
        self.is64 = d[4] == 2
        self.end = "<" if d[5] == 1 else ">"
        e = self.end
        if self.is64:
            (self.type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize,
             shnum, _) = struct.unpack_from(e + "HHIQQQIHHHHHH", d, 16)
        else:
            (self.type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize,
             shnum, _) = struct.unpack_from(e + "HHIIIIIHHHHHH", d, 16)
        self.segments = []  # (type, flags, offset, filesz)
        for i in range(phnum):
            off = phoff + i * phentsize
            if self.is64:
                p_type, p_flags, p_offset, _, _, p_filesz = struct.unpack_from(e + "IIQQQQ", d, off)
            else:
                p_type, p_offset, _, _, p_filesz, _, p_flags = struct.unpack_from(e + "IIIIIII", d, off)
            self.segments.append((p_type, p_flags, p_offset, p_filesz))
        self.sections = []  # (type, offset, size, link, entsize)
        for i in range(shnum):
            off = shoff + i * shentsize
            if self.is64:
                _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from(
                    e + "IIQQQQIIQQ", d, off)
            else:
                _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = struct.unpack_from(
                    e + "IIIIIIIIII", d, off)
            self.sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))

    def segment(self, kind):
        return next((s for s in self.segments if s[0] == kind), None)

    def dynamic(self):
        """{tag: value} of the dynamic section (the last value per tag)."""
        seg = self.segment(PT_DYNAMIC)
        out = {}
        if not seg:
            return out
        fmt, size = (self.end + "qQ", 16) if self.is64 else (self.end + "iI", 8)
        for off in range(seg[2], seg[2] + seg[3] - size + 1, size):
            tag, val = struct.unpack_from(fmt, self.data, off)
            if tag == DT_NULL:
                break
            out[tag] = val
        return out

    def undefined_dynamic_symbols(self):
        """Names of the symbols the file takes from other objects."""
        names = set()
        for sh_type, offset, size, link, entsize in self.sections:
            if sh_type != SHT_DYNSYM or not entsize:
                continue
            stroff = self.sections[link][1]
            for off in range(offset, offset + size, entsize):
                if self.is64:
                    st_name, _, _, st_shndx = struct.unpack_from(self.end + "IBBH", self.data, off)
                else:
                    st_name, _, _, _, _, st_shndx = struct.unpack_from(self.end + "IIIBBH", self.data, off)
                if st_shndx != SHN_UNDEF or not st_name:
                    continue
                end = self.data.index(b"\0", stroff + st_name)
                names.add(self.data[stroff + st_name:end].decode("ascii", "replace").split("@")[0])
        return names


def check(path):
    """{check: (passed, detail)} for one file."""
    try:
        elf = Elf(path)
    except (OSError, ValueError, struct.error) as e:
        return {"elf": (False, str(e))}
    out = {}
    interp = elf.segment(PT_INTERP) is not None
    kind = "executable" if interp else ("shared object" if elf.type == ET_DYN else "ET %d" % elf.type)
    if elf.type == ET_DYN:
        out["pie"] = (True, "ET_DYN %s" % kind)
    else:
        out["pie"] = (False, "ET_EXEC: not position-independent" if elf.type == ET_EXEC else "type %d" % elf.type)
    out["relro"] = (elf.segment(PT_GNU_RELRO) is not None, "PT_GNU_RELRO")
    dyn = elf.dynamic()
    now = (DT_BIND_NOW in dyn or dyn.get(DT_FLAGS, 0) & DF_BIND_NOW or dyn.get(DT_FLAGS_1, 0) & DF_1_NOW)
    out["bind-now"] = (bool(now), "DT_FLAGS 0x%x, DT_FLAGS_1 0x%x" % (dyn.get(DT_FLAGS, 0), dyn.get(DT_FLAGS_1, 0)))
    stack = elf.segment(PT_GNU_STACK)
    if stack is None:
        out["nx-stack"] = (False, "no PT_GNU_STACK (the stack may be executable)")
    else:
        out["nx-stack"] = (not stack[1] & PF_X, "PT_GNU_STACK flags 0x%x" % stack[1])
    syms = elf.undefined_dynamic_symbols()
    out["stack-protector"] = ("__stack_chk_fail" in syms, "__stack_chk_fail")
    chk = sorted(s for s in syms if s.startswith("__") and s.endswith("_chk") and s != "__stack_chk_fail")
    out["fortify"] = (bool(chk), ", ".join(chk) if chk else "no __*_chk function referenced")
    return out


def probe(cc):
    """Compiles a program without the flags; every check must fail on it.
    Returns problems (empty when the checks are proven able to fail)."""
    src = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%s", argv[0]);
    char copy[64];
    memcpy(copy, argv[0], strlen(buf) + 1);
    return argc > 1 ? copy[0] : buf[0];
}
"""
    problems = []
    with tempfile.TemporaryDirectory(prefix="mwl-harden-probe-") as tmp:
        c = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(c, "w") as f:
            f.write(src)
        argv = [cc, "-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0", "-fno-stack-protector", "-fno-pie", "-no-pie",
                "-Wl,-z,norelro", "-Wl,-z,lazy", "-Wl,-z,execstack", c, "-o", exe]
        p = subprocess.run(argv, capture_output=True, timeout=120)
        if p.returncode != 0:
            return ["probe: %s failed: %s" % (" ".join(argv), p.stderr.decode(errors="replace").strip())]
        for name, (ok, detail) in check(exe).items():
            if ok:
                problems.append("probe: the %s check passes on a program built without the flags (%s)"
                                % (name, detail))
    return problems


def main(args):
    skip = [a[len("--skip="):] for a in args if a.startswith("--skip=")]
    if skip:
        print("skipped: " + skip[0])
        return 77
    problems = []
    files = []
    i = 0
    while i < len(args):
        if args[i] == "--probe" and i + 1 < len(args):
            problems += probe(args[i + 1])
            i += 2
            continue
        if args[i]:  # CMake may pass empty arguments
            files.append(args[i])
        i += 1
    if not files:
        print(__doc__)
        return 2
    for path in files:
        for name, (ok, detail) in check(path).items():
            print("%-4s %-40s %-16s %s" % ("ok" if ok else "FAIL", os.path.basename(path), name, detail))
            if not ok:
                problems.append("%s: %s check failed (%s)" % (path, name, detail))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
