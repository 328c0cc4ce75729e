#!/usr/bin/env python3
"""Generate src/worklist/keys_gen.c from data/worklist/keys.tsv (STYLE.md §9).

keys.tsv lists the Modality Worklist keys of PS3.4 Annex K Table K.6-1 (and
K.6-1a), one row per key, nested keys included, with columns

  tag       8 hex digits
  keyword   PS3.6 keyword (checked against data/dict/elements.tsv)
  vr        the key's VR (checked against the dictionary)
  parent    path of the enclosing sequence keys, "/"-separated tags, "-" at top level
  matching  comma list of the matching types this SCP supports for the key:
            single, wildcard, range, uid_list, sequence, universal (universal
            only), none (not a matching key: the "-" rows of Table K.6-1)
  return    return key type: 1, 1C, 2, 2C, 3, or "-" (never returned)
  key       matching key type: R, O, or "-"
  flags     comma list: expand (one C-FIND response per item of this
            sequence), pair:TAG (combined date-time range matching with the TM
            key TAG in the same item, C.2.2.2.5.4), always (returned whenever
            the stored item has it, requested or not), noempty (never returned
            zero length), charset (Specific Character Set), ignore (accepted
            in an identifier, never matched nor returned), enum:V1|V2|...
            (the attribute's Enumerated Values in PS3.3, CS or US only: a
            query value outside them is not matched on, see query.c)
  notes     free text

Called by scripts/gen_tables.py (generate(ROOT) returns {path: text}); it can
also be run alone. The layout of the C table is breadth first: the top-level
keys sorted by tag, then the children of each sequence key, contiguous and
sorted by tag, so a key's children are mwl_wlkeys[first_child ..
first_child + child_count).
"""
import os
import sys

SOURCE = "data/worklist/keys.tsv"
OUTPUT = "src/worklist/keys_gen.c"

MATCHING = {
    "single": "MWL_MATCH_SINGLE",
    "wildcard": "MWL_MATCH_WILDCARD",
    "range": "MWL_MATCH_RANGE",
    "uid_list": "MWL_MATCH_UID_LIST",
    "sequence": "MWL_MATCH_SEQUENCE",
    "universal": "MWL_MATCH_UNIVERSAL",
}
RETURN = {"1": "MWL_RETURN_1", "1C": "MWL_RETURN_1C", "2": "MWL_RETURN_2", "2C": "MWL_RETURN_2C",
          "3": "MWL_RETURN_3", "-": "MWL_RETURN_NEVER"}
KEY = {"R": "MWL_WLKEY_R", "O": "MWL_WLKEY_O", "-": "MWL_WLKEY_NONE"}
FLAGS = {"expand": "MWL_WLKEY_EXPAND", "always": "MWL_WLKEY_ALWAYS", "noempty": "MWL_WLKEY_NOEMPTY",
         "charset": "MWL_WLKEY_CHARSET", "ignore": "MWL_WLKEY_IGNORE"}
# PS3.4 C.2.2.2.4: the VRs on which wild card matching is defined.
WILDCARD_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
RANGE_VRS = {"DA", "TM", "DT"}  # C.2.2.2.5


class TableError(Exception):
    pass


def read_rows(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not lines[0].startswith("# DICOM PS3.4"):
        raise TableError("%s: first line must name the PS3.4 edition" % rel)
    header = lines[1].split("\t")
    want = ["tag", "keyword", "vr", "parent", "matching", "return", "key", "flags", "notes"]
    if header != want:
        raise TableError("%s: header must be %s" % (rel, "\t".join(want)))
    rows = []
    for n, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) > len(header):
            raise TableError("%s:%d: too many columns" % (rel, n))
        cells += [""] * (len(header) - len(cells))
        row = dict(zip(header, cells))
        row["line"] = n
        rows.append(row)
    return lines[0].lstrip("# ").strip(), rows


def read_dictionary(root):
    entries = {}
    with open(os.path.join(root, "data/dict/elements.tsv"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    header = lines[1].split("\t")
    for line in lines[2:]:
        if line.strip():
            e = dict(zip(header, line.split("\t")))
            entries[e["tag"].upper()] = e
    return entries


def check_enum(where, vr, values, matching):
    """enum: lists Enumerated Values (PS3.3) of a CS or US matching key."""
    if vr not in ("CS", "US"):
        raise TableError("%s: enum: is for CS and US keys only" % where)
    if "single" not in matching:
        raise TableError("%s: enum: on a key without single value matching" % where)
    if len(set(values)) != len(values) or not all(values):
        raise TableError("%s: enum: values must be distinct and non-empty" % where)
    for v in values:
        if vr == "US":
            if not v.isdigit() or int(v) > 65535:
                raise TableError("%s: enum: %r is not a US value" % (where, v))
        elif len(v) > 16 or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ " for c in v):
            raise TableError("%s: enum: %r is not a CS value (PS3.5 6.2)" % (where, v))


def validate(rows, dictionary):
    by_path = {}
    for r in rows:
        where = "keys.tsv:%d" % r["line"]
        tag = r["tag"].upper()
        if len(tag) != 8 or any(c not in "0123456789ABCDEF" for c in tag):
            raise TableError("%s: bad tag %r" % (where, r["tag"]))
        r["tag"] = tag
        d = dictionary.get(tag)
        if d is None:
            raise TableError("%s: (%s,%s) is not in the dictionary" % (where, tag[:4], tag[4:]))
        if d["keyword"] != r["keyword"]:
            raise TableError("%s: keyword %s, dictionary says %s" % (where, r["keyword"], d["keyword"]))
        if r["vr"] not in [v.strip() for v in d["vr"].split(" or ")]:
            raise TableError("%s: VR %s, dictionary says %s" % (where, r["vr"], d["vr"]))
        parent = "" if r["parent"] == "-" else r["parent"].upper()
        r["parent"] = parent
        r["path"] = parent + "/" + tag if parent else tag
        if r["path"] in by_path:
            raise TableError("%s: duplicate key %s" % (where, r["path"]))
        by_path[r["path"]] = r
        matching = [m for m in r["matching"].split(",") if m]
        vr = r["vr"]
        if matching == ["none"]:
            matching = []
        for m in matching:
            if m not in MATCHING:
                raise TableError("%s: unknown matching type %r" % (where, m))
            if m == "wildcard" and vr not in WILDCARD_VRS:
                raise TableError("%s: wild card matching is not defined for %s (C.2.2.2.4)" % (where, vr))
            if m == "range" and vr not in RANGE_VRS:
                raise TableError("%s: range matching is only defined for DA, TM, DT (C.2.2.2.5)" % where)
            if m == "uid_list" and vr != "UI":
                raise TableError("%s: list of UID matching is only defined for UI (C.2.2.2.2)" % where)
            if m == "sequence" and vr != "SQ":
                raise TableError("%s: sequence matching needs VR SQ" % where)
            if m == "single" and vr == "SQ":
                raise TableError("%s: a sequence key has no single value matching" % where)
        if "universal" in matching and len(matching) > 1:
            raise TableError("%s: 'universal' means universal matching only" % where)
        r["matching_list"] = matching
        if r["return"] not in RETURN:
            raise TableError("%s: bad return type %r" % (where, r["return"]))
        if r["key"] not in KEY:
            raise TableError("%s: bad matching key type %r" % (where, r["key"]))
        if (r["key"] == "-") != (not matching):
            raise TableError("%s: key type '-' exactly when matching is 'none'" % where)
        flags, pair, enum = [], None, None
        for f in [f for f in r["flags"].split(",") if f]:
            if f.startswith("pair:"):
                pair = f[5:].upper()
            elif f.startswith("enum:"):
                enum = f[5:].split("|")
                check_enum(where, vr, enum, matching)
            elif f in FLAGS:
                flags.append(f)
            else:
                raise TableError("%s: unknown flag %r" % (where, f))
        r["flag_list"], r["pair"], r["enum"] = flags, pair, enum
    for r in rows:
        where = "keys.tsv:%d" % r["line"]
        if r["parent"]:
            p = by_path.get(r["parent"])
            if p is None or p["vr"] != "SQ":
                raise TableError("%s: parent %s is not a sequence key of the table" % (where, r["parent"]))
            if r["matching_list"] and "sequence" not in p["matching_list"]:
                raise TableError("%s: a matching key inside a sequence without sequence matching" % where)
        if "expand" in r["flag_list"] and (r["parent"] or r["vr"] != "SQ"):
            raise TableError("%s: only a top-level sequence key can be expanded" % where)
        if r["pair"]:
            sib = by_path.get((r["parent"] + "/" if r["parent"] else "") + r["pair"])
            if r["vr"] != "DA" or sib is None or sib["vr"] != "TM":
                raise TableError("%s: pair: links a DA key to a TM key in the same item" % where)
            if "range" not in r["matching_list"] or "range" not in sib["matching_list"]:
                raise TableError("%s: paired keys must support range matching" % where)
    if sum(1 for r in rows if "expand" in r["flag_list"]) > 1:
        raise TableError("keys.tsv: at most one expanded sequence")
    paths = [r["path"] for r in rows]
    if paths != sorted(paths):
        raise TableError("keys.tsv: rows must be sorted by parent path and tag")
    return by_path


def layout(rows):
    """Breadth-first order: each parent's children contiguous and sorted by tag."""
    children = {}
    for r in rows:
        children.setdefault(r["parent"], []).append(r)
    for lst in children.values():
        lst.sort(key=lambda r: r["tag"])
    order = list(children.get("", []))
    i = 0
    while i < len(order):
        order.extend(children.get(order[i]["path"], []))
        i += 1
    index = {r["path"]: n for n, r in enumerate(order)}
    for r in order:
        kids = children.get(r["path"], [])
        r["first_child"] = index[kids[0]["path"]] if kids else 0
        r["child_count"] = len(kids)
        r["parent_index"] = index[r["parent"]] if r["parent"] else -1
        r["pair_index"] = -1
        if r["pair"]:
            r["pair_index"] = index[(r["parent"] + "/" if r["parent"] else "") + r["pair"]]
    return order, len(children.get("", []))


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrap_comment(text, width=106):
    """A C comment of lines at most 110 columns wide (.clang-format)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = (line + " " + word) if line else word
    lines.append(line)
    out = ["/* " + lines[0]] + [" * " + l for l in lines[1:]]
    out[-1] += " */"
    return out


def path_label(r, by_path):
    parts = []
    p = r["path"].split("/")
    for n in range(1, len(p) + 1):
        parts.append(by_path["/".join(p[:n])]["keyword"])
    return ">".join(parts)


def render(edition, order, top_count, by_path):
    out = ["/* Generated by scripts/gen_tables.py from %s -- do not edit." % SOURCE,
           " * Run `python3 scripts/gen_tables.py` after changing the data. */"]
    out += wrap_comment("Edition: " + edition)
    out += ["",
           '#include "worklist/worklist_int.h"',
           "",
           "/* Breadth first: top-level keys sorted by tag, then each sequence key's",
           " * children, contiguous and sorted by tag (mwl_wlkey_find does a binary",
           " * search over a parent's range). One row per line: clang-format keeps out. */",
           "/* clang-format off */",
           "const mwl_wlkey mwl_wlkeys[] = {"]
    for n, r in enumerate(order):
        matching = " | ".join(MATCHING[m] for m in r["matching_list"]) or "0"
        flags = " | ".join(FLAGS[f] for f in r["flag_list"]) or "0"
        out.append("    /* %3d %s */" % (n, path_label(r, by_path)))
        enum = c_str("\\".join(r["enum"])) if r["enum"] else "NULL"
        out.append("    {0x%su, MWL_VR_%s, %s, %s, %s, %s, %d, %d, %d, %d, %s, %s}," % (
            r["tag"], r["vr"], KEY[r["key"]], RETURN[r["return"]], matching, flags, r["parent_index"],
            r["first_child"], r["child_count"], r["pair_index"], c_str(r["keyword"]), enum))
    out.append("};")
    out.append("/* clang-format on */")
    out.append("const size_t mwl_wlkey_count = %d;" % len(order))
    out.append("const size_t mwl_wlkey_top_count = %d;" % top_count)
    return "\n".join(out) + "\n"


def generate(root):
    edition, rows = read_rows(root, SOURCE)
    by_path = validate(rows, read_dictionary(root))
    order, top_count = layout(rows)
    if len(order) > 32000:
        raise TableError("keys.tsv: too many rows for int16_t indices")
    return {OUTPUT: render(edition, order, top_count, by_path)}


if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        files = generate(here)
    except TableError as e:
        sys.exit(str(e))
    for rel, text in files.items():
        with open(os.path.join(here, rel), "w", encoding="utf-8") as f:
            f.write(text)
        print("wrote", rel)
