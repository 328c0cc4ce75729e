#!/usr/bin/env python3
"""Checks `mwl dump` against DCMTK's dcmdump, and its error handling.

  dump_dcmtk.py compare MWL     DCMTK's worklist examples (wlistdb/*.dump and
                                wlistqry*/*.dump from the dcmtk package's
                                documentation) plus a data set made here with
                                binary VRs and Latin-1 text are turned into files
                                by dump2dcm in several transfer syntaxes; dcmdump
                                and `mwl dump` must agree on every element: tag,
                                nesting, VR, value, length and VM.
  dump_dcmtk.py malformed MWL   truncated files must give exit 1 and one line on
                                stderr; usage errors exit 2. Needs no DCMTK.

Exit 0 pass, 1 fail, 77 skipped (DCMTK or its examples not installed).
Everything is written in a temporary directory that is removed afterwards.
"""

import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77

# Text VRs whose bytes depend on the Specific Character Set (PS3.5 §6.1.2.3).
CHARSET_VRS = {"SH", "LO", "UC", "ST", "LT", "UT", "PN"}
# VRs where '\' is an ordinary character, not a value delimiter.
TEXT_VRS = {"LT", "ST", "UT", "UR"}
FLOAT_VRS = {"FL", "OF"}
DOUBLE_VRS = {"FD", "OD"}

LINE = re.compile(
    r"^(?P<indent> *)\((?P<group>[0-9a-fA-F]{4}),(?P<element>[0-9a-fA-F]{4})\) "
    r"(?P<vr>\S\S) (?P<value>.*?) *#\s*(?P<length>u/l|\d+|\?), (?P<vm>\d+)(?: (?P<keyword>.*))?$"
)
COUNT = re.compile(r"#=(\d+)\)$")


class Mismatch(Exception):
    pass


def parse_dump(text, source):
    """Parses dcmdump-style output into {"meta": [...], "dataset": [...]}.

    Each record is a dict with path, tag, vr, value, length, vm. The path
    names the position in the tree, e.g. "(0040,0100)[0]/(0008,0060)", so
    two dumps match element by element whatever their layout. Delimitation
    items are dropped: they are an artefact of the encoding, and nesting is
    already in the paths.
    """
    sections = {"meta": [], "dataset": []}
    current = None
    stack = {}  # depth -> path of the element or item at that depth
    items = {}  # sequence path -> items seen
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# Dicom-Meta-Information-Header"):
            current, stack, items = sections["meta"], {}, {}
            continue
        if line.startswith("# Dicom-Data-Set"):
            current, stack, items = sections["dataset"], {}, {}
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m or current is None:
            raise Mismatch(f"{source}: line {number} not understood: {line!r}")
        indent = len(m.group("indent"))
        if indent % 2:
            raise Mismatch(f"{source}: line {number}: odd indentation")
        depth = indent // 2
        tag = f"({m.group('group').lower()},{m.group('element').lower()})"
        if tag in ("(fffe,e00d)", "(fffe,e0dd)"):
            continue
        parent = stack.get(depth - 1, "") if depth > 0 else ""
        if depth > 0 and (depth - 1) not in stack:
            raise Mismatch(f"{source}: line {number}: nested without a parent")
        if tag == "(fffe,e000)":
            index = items.get(parent, 0)
            items[parent] = index + 1
            path = f"{parent}[{index}]"
        else:
            path = f"{parent}/{tag}" if parent else tag
        stack[depth] = path
        for deeper in [d for d in stack if d > depth]:
            del stack[deeper]
        current.append(
            {
                "path": path,
                "tag": tag,
                "vr": m.group("vr"),
                "value": m.group("value"),
                "length": m.group("length"),
                "vm": int(m.group("vm")),
            }
        )
    return sections


def split_values(vr, value):
    """The displayed value as a list of values, padding removed."""
    if value in ("(no value available)", "[]"):
        return []
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1]
        if vr in TEXT_VRS:
            return [inner.rstrip(" ")]
        # Padding is trailing; a space before a '\' is the previous value's.
        return [v.rstrip(" ") for v in inner.split("\\")]
    return value.split("\\")


def same_number(vr, a, b):
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    if vr in FLOAT_VRS:
        return struct.pack("<f", x) == struct.pack("<f", y)
    # Both should print a double that reads back exactly; allow for a
    # printer that keeps fewer digits.
    return x == y or abs(x - y) <= 1e-15 * max(abs(x), abs(y))


def normalize_vr(vr):
    # dcmdump writes "??" for an implicit-VR element it cannot name; the
    # standard (and mwl) call that UN.
    return "UN" if vr == "??" else vr


def compare(ours, theirs, theirs_utf8, label):
    """Raises Mismatch listing every difference between two parsed dumps."""
    problems = []
    for section in ("meta", "dataset"):
        a = {r["path"]: r for r in ours[section]}
        b = {r["path"]: r for r in theirs[section]}
        u = {r["path"]: r for r in theirs_utf8[section]} if theirs_utf8 else {}
        order_a = [r["path"] for r in ours[section]]
        order_b = [r["path"] for r in theirs[section]]
        for path in order_b:
            if path not in a:
                problems.append(f"{section} {path}: missing from mwl dump")
        for path in order_a:
            if path not in b:
                problems.append(f"{section} {path}: not in dcmdump output")
        if not problems and order_a != order_b:
            problems.append(f"{section}: elements in a different order")
        for path in order_b:
            if path not in a:
                continue
            x, y = a[path], b[path]
            vr = normalize_vr(y["vr"])
            if normalize_vr(x["vr"]) != vr:
                problems.append(f"{section} {path}: VR {x['vr']} vs dcmdump {y['vr']}")
                continue
            if x["vm"] != y["vm"]:
                problems.append(f"{section} {path}: VM {x['vm']} vs dcmdump {y['vm']}")
            # dcmdump says "u/l" for undefined lengths, which mwl does not keep.
            if y["length"] != "u/l" and x["length"] != y["length"]:
                problems.append(f"{section} {path}: length {x['length']} vs dcmdump {y['length']}")
            if vr in ("SQ", "na"):
                cx, cy = COUNT.search(x["value"]), COUNT.search(y["value"])
                if not cx or not cy or cx.group(1) != cy.group(1):
                    problems.append(f"{section} {path}: {x['value']!r} vs dcmdump {y['value']!r}")
                continue
            want = y["value"]
            # Text in other character sets: compare with dcmdump +U8, which
            # converts to UTF-8 as mwl does (lengths stay those of the file).
            # (0008,0005) itself is taken from the plain run: +U8 rewrites it.
            if vr in CHARSET_VRS and path in u:
                want = u[path]["value"]
            elif vr in CHARSET_VRS and not all(32 <= ord(c) < 127 for c in want):
                # No UTF-8 reference for this value (DCMTK's +U8 fails on
                # some ISO 2022 sets); CHARSET_CASES check those directly.
                continue
            va, vb = split_values(vr, x["value"]), split_values(vr, want)
            if vr in FLOAT_VRS or vr in DOUBLE_VRS:
                equal = len(va) == len(vb) and all(same_number(vr, p, q) for p, q in zip(va, vb))
            else:
                equal = va == vb
            if not equal:
                problems.append(f"{section} {path}: value {x['value']!r} vs dcmdump {want!r}")
    if problems:
        raise Mismatch(f"{label}:\n  " + "\n  ".join(problems))


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def decode(data):
    return data.decode("utf-8", errors="replace")


# ---- finding DCMTK's examples -----------------------------------------------


def find_examples():
    """Paths of the worklist example .dump files shipped with DCMTK.

    Asks the package manager where the dcmtk package put them (Debian:
    /usr/share/doc/dcmtk/examples/...), then looks under the share/doc
    folders of the prefix dcmdump is installed in, for source installs.
    MWL_DCMTK_EXAMPLES (a folder) overrides both.
    """
    found = []
    override = os.environ.get("MWL_DCMTK_EXAMPLES")
    roots = [override] if override else []
    if not override and shutil.which("dpkg"):
        r = run(["dpkg", "-L", "dcmtk"])
        if r.returncode == 0:
            for line in decode(r.stdout).splitlines():
                if re.search(r"/(wlistdb|wlistqry)[^/]*/.*\.dump(\.gz)?$", line) and os.path.isfile(line):
                    found.append(line)
    if not found and not override:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("dcmdump"))))
        for sub in ("share/doc", "share/dcmtk", "share/doc/dcmtk"):
            base = os.path.join(prefix, sub)
            if os.path.isdir(base):
                roots.append(base)
    for root in roots:
        for folder, _, files in os.walk(root):
            if not re.search(r"(wlistdb|wlistqry)", folder):
                continue
            for name in files:
                if re.search(r"\.dump(\.gz)?$", name):
                    found.append(os.path.join(folder, name))
    return sorted(set(found))


# A data set with what the worklist examples lack: every binary VR, signed
# values, multi-valued strings with inner spaces, leading spaces, an empty
# value, nested and empty items, and Latin-1 text (ISO_IR 100).
SYNTHETIC = (
    "(0008,0005) CS [ISO_IR 100]\n"
    "(0008,0020) DA []\n"
    "(0008,1199) SQ\n"
    "(fffe,e000) -\n"
    "(0008,1150) UI [1.2.840.10008.5.1.4.31]\n"
    "(0040,a730) SQ\n"
    "(fffe,e000) -\n"
    "(0040,a160) UT [s\u00f8me t\u00e9xt]\n"
    "(fffe,e00d) -\n"
    "(fffe,e0dd) -\n"
    "(fffe,e00d) -\n"
    "(fffe,e000) -\n"
    "(fffe,e00d) -\n"
    "(fffe,e0dd) -\n"
    "(0009,0010) LO [PRIVATE CREATOR]\n"
    "(0032,1064) SQ\n"
    "(fffe,e0dd) -\n"
    "(0009,1001) OB 01\\02\\ff\n"
    "(0010,0010) PN [M\u00fcller^Ren\u00e9=MULLER^RENE]\n"
    "(0010,0020) LO [\u00c5ngstr\u00f6m \\ID2]\n"
    "(0010,21b0) LT [a\\b]\n"
    "(0018,0015) CS [  HEAD  ]\n"
    "(0018,1310) US 1\\2\\3\\4\n"
    "(0018,6020) SL -2147483648\n"
    "(0018,602c) FD 0.1\n"
    "(0018,9074) DT [20240101120000-0500]\n"
    "(0020,0013) IS [42]\n"
    "(0020,0032) DS [-1.5\\2.25\\3]\n"
    "(0020,9165) AT (0010,0020)\\(0040,0100)\n"
    "(0020,9241) FL 0.1\n"
    "(0028,0010) US 512\n"
    "(0028,1201) OW 0102\\a0b0\n"
    "(0028,9503) SS -5\\7\n"
    "(0040,0400) LT [  lead and trail  ]\n"
    "(0040,a132) UL 4294967295\\0\n"
    "(0066,0016) OF 0.5\\-2.25\n"
    "(0066,0022) OD 0.1\\1e300\n"
    "(0066,0040) OL 1\\4294967295\n"
    "(0072,0082) SV -9000000000000000000\n"
    "(0072,0083) UV 18000000000000000000\n"
)


def iso2022(escape, codec):
    """Encodes each run of non-ASCII text behind `escape` (PS3.5 §6.1.2.5:
    designate the set again after every delimiter, where the state resets)."""

    def encode(text):
        out, run = b"", ""
        for ch in text + "\0":
            if ord(ch) >= 128:
                run += ch
                continue
            if run:
                out += escape + run.encode(codec)
                run = ""
            if ch != "\0":
                out += ch.encode("ascii")
        return out

    return encode


def jis_x0208(text):
    # Python's iso2022_jp writes ESC $ B ... ESC ( B around each run, which is
    # what PS3.5 Annex H shows for ISO 2022 IR 87.
    out = b""
    for part in re.split(r"([\^=])", text):
        out += part.encode("iso2022_jp")
    return out


def half_width_then_jis(text):
    # ISO 2022 IR 13 puts JIS X 0201 katakana in G1 (Shift_JIS single bytes).
    out = b""
    for part in re.split(r"([\^=])", text):
        if part and all(0xFF61 <= ord(c) <= 0xFF9F for c in part):
            out += part.encode("shift_jis")
        else:
            out += part.encode("iso2022_jp")
    return out


# Person names in the character sets of PS3.5 Annexes H-K and single-byte
# sets, with the text they must decode to. DCMTK's dcmdump +U8 converts some
# of them; the expected text checks all of them, DCMTK or not.
CHARSET_CASES = [
    ("latin1", "ISO_IR 100", "Buc^J\u00e9r\u00f4me", lambda t: t.encode("latin-1")),
    ("cyrillic", "ISO_IR 144", "\u041b\u044e\u043a\u0441\u0435\u043c\u0431\u0443\u0440\u0433", lambda t: t.encode("iso8859_5")),
    ("greek", "ISO_IR 126", "\u0394\u03b9\u03bf\u03bd\u03c5\u03c3\u03b9\u03bf\u03c2", lambda t: t.encode("iso8859_7")),
    ("hebrew", "ISO_IR 138", "\u05e9\u05e8\u05d5\u05df^\u05d3\u05d1\u05d5\u05e8\u05d4", lambda t: t.encode("iso8859_8")),
    ("thai", "ISO_IR 166", "\u0e2a\u0e21\u0e0a\u0e32\u0e22^\u0e43\u0e08\u0e14\u0e35", lambda t: t.encode("tis_620")),
    ("utf8", "ISO_IR 192", "Wang^XiaoDong=\u738b^\u5c0f\u6771=", lambda t: t.encode("utf-8")),
    ("gb18030", "GB18030", "Wang^XiaoDong=\u738b^\u5c0f\u4e1c=", lambda t: t.encode("gb18030")),
    ("korean", "\\ISO 2022 IR 149", "Hong^Gildong=\u6d2a^\u5409\u6d1e=\ud64d^\uae38\ub3d9",
     iso2022(b"\x1b$)C", "euc_kr")),
    ("chinese-2022", "\\ISO 2022 IR 58", "Zhang^XiaoDong=\u5f20^\u5c0f\u4e1c=", iso2022(b"\x1b$)A", "gb2312")),
    ("japanese", "\\ISO 2022 IR 87", "Yamada^Tarou=\u5c71\u7530^\u592a\u90ce=\u3084\u307e\u3060^\u305f\u308d\u3046", jis_x0208),
    ("japanese-katakana", "ISO 2022 IR 13\\ISO 2022 IR 87",
     "\uff94\uff8f\uff80\uff9e^\uff80\uff9b\uff73=\u5c71\u7530^\u592a\u90ce=\u3084\u307e\u3060^\u305f\u308d\u3046",
     half_width_then_jis),
]
CHARSET_VARIANTS = ("explicit", "implicit-undefined")


def charset_dump(charset, text, encode):
    # The name again in a nested item, which inherits (0008,0005).
    value = encode(text)
    return (
        b"(0008,0005) CS [" + charset.encode() + b"]\n"
        + b"(0010,0010) PN [" + value + b"]\n"
        + b"(0040,0100) SQ\n(fffe,e000) -\n(0040,0006) PN [" + value + b"]\n(fffe,e00d) -\n(fffe,e0dd) -\n"
    )


# dump2dcm options for each encoding compared; raw data sets (no meta
# header) exercise the transfer syntax guess in mwl_part10_decode.
VARIANTS = [
    ("explicit", ["+te"]),
    ("implicit", ["+ti"]),
    ("big-endian", ["+tb"]),
    ("deflated", ["+td"]),
    ("undefined-lengths", ["+te", "-e"]),
    ("implicit-undefined", ["+ti", "-e"]),
    ("raw-implicit", ["-F", "+ti"]),
    ("raw-explicit", ["-F", "+te"]),
    ("group-lengths", ["+te", "+g"]),
]
# mwl_ds_decode drops group length elements (gggg,0000) outside groups 0000
# and 0002 by design (codec.h: retired, and stale after any edit), so in the
# +g variant they are removed from dcmdump's side, and sequence and item
# lengths, which count them in the file, are not compared.
GROUP_LENGTH_VARIANTS = ("group-lengths",)


def is_dropped_group_length(record):
    return record["tag"].endswith(",0000)") and not record["tag"].startswith("(0002,")


def drop_group_lengths(parsed):
    """Removes the group lengths mwl drops, and takes them out of the
    element count dcmdump shows for the items holding them."""
    if parsed is None:
        return None
    result = {}
    for section, records in parsed.items():
        dropped = {}
        for r in records:
            if is_dropped_group_length(r):
                parent = r["path"].rsplit("/", 1)[0] if "/" in r["path"] else ""
                dropped[parent] = dropped.get(parent, 0) + 1
        kept = []
        for r in records:
            if is_dropped_group_length(r):
                continue
            if r["vr"] == "na" and r["path"] in dropped:
                n = int(COUNT.search(r["value"]).group(1)) - dropped[r["path"]]
                r = dict(r, value=COUNT.sub(f"#={n})", r["value"]))
            kept.append(r)
        result[section] = kept
    return result


def without_container_lengths(parsed):
    for records in parsed.values():
        for r in records:
            if r["vr"] in ("SQ", "na"):
                r["length"] = "u/l"
    return parsed


def self_check(mwl_parsed, dcmdump_parsed, utf8_parsed):
    """The comparison must notice a changed value, VR, tag or nesting: make
    each change to a copy of a dump that matched and expect a Mismatch."""
    import copy

    records = [r for r in mwl_parsed["dataset"] if r["vr"] not in ("SQ", "na") and r["value"].startswith("[")]
    nested = [r for r in mwl_parsed["dataset"] if "[" in r["path"] and r["vr"] not in ("SQ", "na")]
    if not records or not nested:
        raise Mismatch("self-check: the first example has no string value or no sequence")
    mutations = []

    def value(p):
        r = next(x for x in p["dataset"] if x["path"] == records[0]["path"])
        r["value"] = r["value"][:-1] + "X]"

    def vr(p):
        r = next(x for x in p["dataset"] if x["path"] == records[0]["path"])
        r["vr"] = "UN" if r["vr"] != "UN" else "OB"

    def missing(p):
        p["dataset"] = [x for x in p["dataset"] if x["path"] != records[-1]["path"]]

    def moved(p):
        r = next(x for x in p["dataset"] if x["path"] == nested[0]["path"])
        r["path"] = r["tag"]

    def length(p):
        r = next(x for x in p["dataset"] if x["path"] == records[0]["path"])
        r["length"] = str(int(r["length"]) + 2)

    mutations = [("value", value), ("vr", vr), ("missing tag", missing), ("nesting", moved), ("length", length)]
    for name, mutate in mutations:
        changed = copy.deepcopy(mwl_parsed)
        mutate(changed)
        try:
            compare(changed, dcmdump_parsed, utf8_parsed, "self-check")
        except Mismatch:
            continue
        raise Mismatch(f"self-check: a changed {name} went unnoticed")


def cmd_compare(mwl):
    dump2dcm, dcmdump = shutil.which("dump2dcm"), shutil.which("dcmdump")
    if not dump2dcm or not dcmdump:
        print("skipped: DCMTK (dump2dcm, dcmdump) is not installed")
        return SKIP
    examples = find_examples()
    if not any("wlistdb" in e for e in examples):
        print("skipped: DCMTK's worklist examples (wlistdb/*.dump) were not found")
        return SKIP

    failures, compared, notes = [], 0, []
    checked_self = False
    with tempfile.TemporaryDirectory(prefix="mwl-dump-") as tmp:
        sources = []
        for path in examples:
            name = os.path.basename(os.path.dirname(path)) + "-" + re.sub(r"\.dump(\.gz)?$", "", os.path.basename(path))
            target = os.path.join(tmp, name + ".dump")
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as src, open(target, "wb") as dst:
                dst.write(src.read())
            sources.append((name, target, "wlistdb" in path))
        synthetic = os.path.join(tmp, "synthetic.dump")
        with open(synthetic, "wb") as f:
            f.write(SYNTHETIC.encode("latin-1"))
        sources.append(("synthetic", synthetic, False))
        expected = {}
        for name, charset, text, encode in CHARSET_CASES:
            path = os.path.join(tmp, f"charset-{name}.dump")
            with open(path, "wb") as f:
                f.write(charset_dump(charset, text, encode))
            sources.append((f"charset-{name}", path, False))
            expected[f"charset-{name}"] = {"(0010,0010)": text, "(0040,0100)[0]/(0040,0006)": text}

        for name, dump, is_worklist in sources:
            for variant, options in VARIANTS:
                if name in expected and variant not in CHARSET_VARIANTS:
                    continue
                label = f"{name} ({variant})"
                out = os.path.join(tmp, f"{name}.{variant}.dcm")
                r = run([dump2dcm, "-q", *options, dump, out])
                if r.returncode != 0 or not os.path.exists(out):
                    # Some query examples are not valid dumps for dump2dcm;
                    # that is DCMTK's business, not a difference to report.
                    notes.append(f"{label}: dump2dcm failed, not compared")
                    continue
                plain = run([dcmdump, "-q", "+L", "-Un", out])
                if plain.returncode != 0:
                    notes.append(f"{label}: dcmdump cannot read it, not compared")
                    continue
                utf8 = run([dcmdump, "-q", "+L", "-Un", "+U8", out])
                ours = run([mwl, "dump", out])
                if ours.returncode != 0:
                    failures.append(f"{label}: mwl dump exited {ours.returncode}: {decode(ours.stderr).strip()}")
                    continue
                try:
                    theirs = parse_dump(decode(plain.stdout), "dcmdump")
                    theirs_utf8 = parse_dump(decode(utf8.stdout), "dcmdump +U8") if utf8.returncode == 0 else None
                    mine = parse_dump(decode(ours.stdout), "mwl dump")
                    if not theirs["dataset"]:
                        raise Mismatch(f"{label}: dcmdump printed no elements")
                    if variant in GROUP_LENGTH_VARIANTS:
                        if not any(is_dropped_group_length(r) for r in theirs["dataset"]):
                            raise Mismatch(f"{label}: dump2dcm +g wrote no group length")
                        theirs = without_container_lengths(drop_group_lengths(theirs))
                        theirs_utf8 = drop_group_lengths(theirs_utf8)
                    for path, text in expected.get(name, {}).items():
                        got = next((r["value"] for r in mine["dataset"] if r["path"] == path), None)
                        if got != f"[{text}]":
                            raise Mismatch(f"{label}: {path} is {got!r}, want [{text}]")
                    compare(mine, theirs, theirs_utf8, label)
                    if not checked_self and is_worklist:
                        self_check(mine, theirs, theirs_utf8)
                        checked_self = True
                    compared += 1
                except Mismatch as e:
                    failures.append(str(e))

    for n in notes:
        print("note:", n)
    for f in failures:
        print("FAIL:", f)
    print(f"{compared} files compared, {len(failures)} failed, {len(notes)} not compared")
    if failures:
        return 1
    if compared == 0:
        print("FAIL: nothing was compared")
        return 1
    if not checked_self:
        print("FAIL: the comparison was not checked against deliberate differences")
        return 1
    return 0


# ---- malformed input and usage --------------------------------------------


def element_explicit(group, element, vr, value):
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    head = struct.pack("<HH2s", group, element, vr.encode())
    if vr in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def part10_file():
    """A small Part 10 file in Explicit VR Little Endian, built by hand so
    this test needs no DCMTK."""
    ts = b"1.2.840.10008.1.2.1"
    meta = (
        element_explicit(0x0002, 0x0001, "OB", b"\0\1")
        + element_explicit(0x0002, 0x0002, "UI", b"1.2.840.10008.5.1.4.31")
        + element_explicit(0x0002, 0x0003, "UI", b"1.2.3.4")
        + element_explicit(0x0002, 0x0010, "UI", ts)
    )
    meta = element_explicit(0x0002, 0x0000, "UL", struct.pack("<I", len(meta))) + meta
    body = (
        element_explicit(0x0008, 0x0005, "CS", b"ISO_IR 100")
        + element_explicit(0x0010, 0x0010, "PN", b"Doe^John^^Dr")
        + element_explicit(0x0010, 0x0020, "LO", b"PID-12345")
    )
    return b"\0" * 128 + b"DICM" + meta + body, 132 + len(meta)


def cmd_malformed(mwl):
    failures = []
    error_line = re.compile(r"^mwl dump: .+: .+ at offset \d+( \(tag [0-9a-f]{4},[0-9a-f]{4}\))?$")
    data, body_at = part10_file()
    with tempfile.TemporaryDirectory(prefix="mwl-dump-") as tmp:
        good = os.path.join(tmp, "good.dcm")
        with open(good, "wb") as f:
            f.write(data)
        r = run([mwl, "dump", good])
        if r.returncode != 0 or "[Doe^John^^Dr]" not in decode(r.stdout) or r.stderr:
            failures.append(f"good file: exit {r.returncode}, stderr {decode(r.stderr)!r}")

        # Cut inside the meta header, inside an element header, inside a value.
        cuts = {
            "meta value": 132 + 8 + 2,
            "element header": body_at + 3,
            "value": body_at + 8 + 5,
            "last value": len(data) - 3,
        }
        for what, cut in cuts.items():
            bad = os.path.join(tmp, f"cut-{cut}.dcm")
            with open(bad, "wb") as f:
                f.write(data[:cut])
            r = run([mwl, "dump", bad])
            lines = decode(r.stderr).splitlines()
            if r.returncode != 1:
                failures.append(f"truncated in {what} ({cut} bytes): exit {r.returncode}, want 1")
            if len(lines) != 1 or not error_line.match(lines[0]) or bad not in lines[0]:
                failures.append(f"truncated in {what}: stderr {decode(r.stderr)!r}, want one error line")

        # Every prefix (STYLE.md §10): a clean dump or one clean error line,
        # never a crash. A prefix ending between elements is a valid, shorter
        # data set, so exit 0 is right for some.
        for cut in range(len(data)):
            bad = os.path.join(tmp, "prefix.dcm")
            with open(bad, "wb") as f:
                f.write(data[:cut])
            r = run([mwl, "dump", bad])
            lines = decode(r.stderr).splitlines()
            if r.returncode not in (0, 1) or (r.returncode == 1) != (len(lines) == 1) or len(lines) > 1:
                failures.append(f"prefix of {cut} bytes: exit {r.returncode}, stderr {decode(r.stderr)!r}")

        # A bad file among good ones: the others are still printed.
        bad = os.path.join(tmp, f"cut-{len(data) - 3}.dcm")
        r = run([mwl, "dump", good, bad, good])
        if r.returncode != 1 or decode(r.stdout).count("[Doe^John^^Dr]") != 2:
            failures.append(f"good+bad+good: exit {r.returncode}, stdout did not hold both good dumps")
        if len(decode(r.stderr).splitlines()) != 1:
            failures.append(f"good+bad+good: stderr {decode(r.stderr)!r}")

        # Text that is not valid in its character set, and an unknown set:
        # the dump is printed (bad bytes as &#xNN;), exit 1, one line.
        for what, charset, value in (
            ("invalid UTF-8", b"ISO_IR 192", b"Bad\xff\xfeName"),
            ("unknown charset", b"ISO_IR 999", b"Name"),
        ):
            body = element_explicit(0x0008, 0x0005, "CS", charset) + element_explicit(0x0010, 0x0010, "PN", value)
            path = os.path.join(tmp, f"charset-{charset[-3:].decode()}.dcm")
            with open(path, "wb") as f:
                f.write(body)  # a raw data set, no meta header
            r = run([mwl, "dump", path])
            lines = decode(r.stderr).splitlines()
            if r.returncode != 1 or len(lines) != 1 or "(0010,0010)" not in lines[0]:
                failures.append(f"{what}: exit {r.returncode}, stderr {decode(r.stderr)!r}")
            if "(0010,0010) PN [" not in decode(r.stdout):
                failures.append(f"{what}: the element was not printed")

        missing = os.path.join(tmp, "does-not-exist.dcm")
        r = run([mwl, "dump", missing])
        if r.returncode != 1 or len(decode(r.stderr).splitlines()) != 1:
            failures.append(f"missing file: exit {r.returncode}, stderr {decode(r.stderr)!r}")

        for args, want in (([], 2), (["--bogus", good], 2), (["--max-value"], 2), (["--help"], 0)):
            r = run([mwl, "dump", *args])
            if r.returncode != want:
                failures.append(f"mwl dump {' '.join(args)}: exit {r.returncode}, want {want}")

        r = run([mwl, "dump", "--max-value", "5", "--no-meta", good])
        out = decode(r.stdout)
        if r.returncode != 0 or "[Doe^..." not in out or "(0002," in out:
            failures.append(f"--max-value 5 --no-meta: exit {r.returncode}, output {out!r}")

    for f in failures:
        print("FAIL:", f)
    print(f"malformed-input checks: {len(failures)} failed")
    return 1 if failures else 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("compare", "malformed"):
        print(__doc__, file=sys.stderr)
        return 2
    mwl = os.path.abspath(argv[2])
    return cmd_compare(mwl) if argv[1] == "compare" else cmd_malformed(mwl)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
