#!/usr/bin/env python3
"""`mwl find` against real servers and scripted peers, on 127.0.0.1 with
ports chosen at run time.

  find_mwl.py dcmtk MWL        wlmscpfs serving DCMTK's example worklist:
                               for each of DCMTK's example queries
                               (wlistqry*.dump) `mwl find --query` gets the
                               same responses as `findscu -W` (same SPS, same
                               attribute values, compared element by element
                               through dcmdump); the plain options and -k
                               paths match the equivalent findscu keys;
                               --dump prints what `mwl dump` prints for the
                               --out-dir files; --limit 1 ends in FE00.
  find_mwl.py serve MWL        the same comparison against `mwl serve` (the
                               example items imported into a fresh store),
                               and --limit 1 on a query with thousands of
                               matches: FE00 reported, exit 1.
  find_mwl.py json_dcmtk MWL   --json parses (jq) and gives names stored in
  find_mwl.py json_serve MWL   Latin-1, UTF-8 and ISO 2022 Japanese as the
                               right UTF-8, served by wlmscpfs / mwl serve;
                               the table shows them too; non-ASCII matching.
  find_mwl.py exit MWL         exit statuses: 2 for bad command lines, 3 for
                               a closed port, a rejected association and a
                               peer without MWL FIND, 1 for failure statuses
                               from a scripted peer (one line each).
  find_mwl.py man MWL          tools/mwl/mwl.1 documents every long option
                               each command's --help shows, documents no
                               option --help does not know, and groff reads
                               it without warnings.

Exit 0 pass, 1 fail, 77 skipped (DCMTK, its examples or jq not installed).
Every process this script starts is killed by PID when it ends, however it
ends; every wait is bounded.
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from harness import SKIP, STARTED, Failure, check, kill_started, on_signal, need, free_port, wait_listening  # noqa: E402


def run(argv, timeout=60, cwd=None):
    start = time.monotonic()
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), \
        time.monotonic() - start


def one_line(stderr, what):
    lines = [line for line in stderr.splitlines() if line.strip()]
    check(len(lines) == 1, f"{what}: expected one line on stderr, got {lines!r}")
    return lines[0]


def start_wlmscpfs(tmp, db, *extra):
    """wlmscpfs on a fresh port; retried if another process took the port
    between our probe and its bind."""
    log_path = os.path.join(tmp, "wlmscpfs.log")
    for _ in range(3):
        port = free_port()
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(["wlmscpfs", "--single-process", *extra, "-dfp", db, str(port)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        STARTED.append(proc)
        if wait_listening(port, proc):
            return proc, port
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    raise Failure(f"wlmscpfs did not start (see {log_path})")


def start_mwl_serve(mwl, tmp, db, name, *extra):
    """`mwl serve` on a port the kernel picks (--port 0), read back from
    --port-file."""
    port_file = os.path.join(tmp, f"{name}.port")
    log_path = os.path.join(tmp, f"{name}.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([mwl, "serve", "--db", db, "--port", "0", "--port-file", port_file, "--aet", "OFFIS",
                                 "--bind", "127.0.0.1", *extra],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    STARTED.append(proc)
    end = time.monotonic() + 15
    while time.monotonic() < end and proc.poll() is None:
        try:
            with open(port_file) as f:
                text = f.read().strip()
            if text:
                port = int(text)
                if wait_listening(port, proc):
                    return proc, port
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    with open(log_path, errors="replace") as f:
        log = f.read()[-2000:]
    raise Failure(f"mwl serve did not start: exit {proc.poll()}, log:\n{log}")


def doc_files(pattern):
    """DCMTK's documentation examples (Debian: /usr/share/doc/dcmtk/examples)."""
    paths = []
    try:
        out = subprocess.run(["dpkg", "-L", "dcmtk"], capture_output=True, timeout=30).stdout.decode()
        paths = [p for p in out.splitlines() if re.search(pattern, p)]
    except (OSError, subprocess.TimeoutExpired):
        pass
    if not paths:
        for root in ("/usr/share/doc", "/usr/local/share/doc"):
            for p in glob.glob(os.path.join(root, "dcmtk*", "examples", "**", "*.dump"), recursive=True):
                if re.search(pattern, p):
                    paths.append(p)
    return sorted(p for p in paths if os.path.isfile(p))


def dump2dcm(src, dst):
    code, _, err, _ = run(["dump2dcm", "-q", src, dst])
    check(code == 0, f"dump2dcm {src}: {err}")


def example_worklist(tmp):
    """DIR/OFFIS/*.wl from DCMTK's examples, as wlmscpfs expects them."""
    dumps = doc_files(r"/wlistdb/OFFIS/[^/]+\.dump$")
    if not dumps:
        print("skipped: DCMTK's example worklist (wlistdb/OFFIS/*.dump) not found")
        sys.exit(SKIP)
    ae_dir = os.path.join(tmp, "db", "OFFIS")
    os.makedirs(ae_dir)
    for dump in dumps:
        dump2dcm(dump, os.path.join(ae_dir, os.path.basename(dump)[:-5] + ".wl"))
    open(os.path.join(ae_dir, "lockfile"), "w").close()
    return os.path.join(tmp, "db")


def example_queries(tmp):
    dumps = doc_files(r"/wlistqry/[^/]+\.dump$")
    if not dumps:
        print("skipped: DCMTK's example queries (wlistqry/*.dump) not found")
        sys.exit(SKIP)
    qdir = os.path.join(tmp, "queries")
    os.makedirs(qdir)
    queries = []
    for dump in dumps:
        out = os.path.join(qdir, os.path.basename(dump)[:-5] + ".dcm")
        dump2dcm(dump, out)
        queries.append(out)
    return queries


# ---------------------------------------------------------------------------
# Responses as comparable records

# dcmdump's element line: the value ends where "# length, VM" starts (a
# "#=N" inside the value, as in "(Sequence with ... #=1)", is not it).
DUMP_LINE = re.compile(r"^(?P<indent> *)\((?P<tag>[0-9a-f]{4},[0-9a-f]{4})\) (?P<vr>\w\w) (?P<value>.*?) +"
                       r"# *(?:\d+|u/l|\?), \d+")
COUNT = re.compile(r"#=(\d+)\)")


def canonical(path):
    """One response file through dcmdump: a tuple of (depth, tag, VR,
    value) for every element and item, the data set only. Sequence and
    item lines keep only their count (DCMTK writes undefined lengths, mwl
    explicit ones); delimiters are left out for the same reason."""
    code, out, err, _ = run(["dcmdump", "-q", "+L", "-Un", path])
    check(code == 0 and not err.strip(), f"dcmdump {path}: exit {code}, {err.strip()}")
    records, in_data = [], False
    for line in out.splitlines():
        if line.startswith("# Dicom-Data-Set"):
            in_data = True
            continue
        m = DUMP_LINE.match(line)
        if not in_data or not m:
            continue
        tag, vr, value = m["tag"], m["vr"], m["value"]
        if tag in ("fffe,e00d", "fffe,e0dd"):
            continue
        if vr in ("SQ", "na"):
            c = COUNT.search(value)
            value = f"#={c.group(1)}" if c else value
        records.append((len(m["indent"]) // 2, tag, vr, value))
    return tuple(records)


def identity(records):
    """What names a response for people: Accession Number and SPS ID."""
    acc = next((v for d, t, _, v in records if d == 0 and t == "0008,0050"), "?")
    sps = next((v for d, t, _, v in records if d == 2 and t == "0040,0009"), "?")
    return f"accession {acc} / SPS {sps}"


def response_files(folder):
    return sorted(glob.glob(os.path.join(folder, "rsp*.dcm")))


def findscu(tmp, port, label, query=None, keys=()):
    out_dir = os.path.join(tmp, f"findscu-{label}")
    os.makedirs(out_dir)
    argv = ["findscu", "-W", "-X", "-aec", "OFFIS", "-to", "20"]
    for k in keys:
        argv += ["-k", k]
    argv += ["127.0.0.1", str(port)] + ([query] if query else [])
    code, _, err, _ = run(argv, cwd=out_dir)
    check(code == 0, f"findscu {label}: exit {code}: {err.strip()}")
    return [canonical(f) for f in response_files(out_dir)]


def mwl_find(mwl, tmp, port, label, *args):
    out_dir = os.path.join(tmp, f"mwl-{label}")
    argv = [mwl, "find", "--aec", "OFFIS", "--timeout", "20", "--out-dir", out_dir, *args, "127.0.0.1", str(port)]
    code, out, err, _ = run(argv)
    check(code == 0, f"mwl find {label}: exit {code}: {err.strip()}")
    check(err == "", f"mwl find {label}: unexpected stderr {err!r}")
    files = response_files(out_dir) if os.path.isdir(out_dir) else []
    return [canonical(f) for f in files], out, out_dir


def same_responses(label, ours, theirs):
    """Same multiset of responses; on a difference, name the SPS."""
    check(len(ours) == len(theirs), f"{label}: mwl find got {len(ours)} responses, findscu {len(theirs)}")
    mine, other = sorted(ours), sorted(theirs)
    if mine == other:
        return
    by_id = {identity(r): r for r in other}
    for r in mine:
        if r in other:
            continue
        twin = by_id.get(identity(r))
        if twin is None:
            raise Failure(f"{label}: mwl find got {identity(r)}, which findscu did not")
        diff = sorted(set(r) ^ set(twin))
        raise Failure(f"{label}: {identity(r)} differs: {diff[:6]}")
    raise Failure(f"{label}: responses differ")


def self_check(sample):
    """The comparison must see a changed value, a missing element and a
    missing response."""
    changed = [tuple((d, t, v, x + "X") if i == len(r) - 1 else (d, t, v, x) for i, (d, t, v, x) in enumerate(r))
               for r in sample]
    for name, other in (("value", changed), ("element", [r[:-1] for r in sample]), ("response", sample[1:])):
        try:
            same_responses("self-check", sample, other)
        except Failure:
            continue
        raise Failure(f"self-check: a missing/changed {name} went unnoticed")


# Plain options and -k paths, each with the findscu keys meaning the same.
OPTION_CASES = [
    (["--keys-only", "--modality", "MR", "-k", "PatientName", "-k", "ScheduledProcedureStepSequence.ScheduledProcedureStepID"],
     ["PatientName", "ScheduledProcedureStepSequence[0].Modality=MR",
      "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID"]),
    (["--keys-only", "--station", "AA32", "-k", "0010,0010", "-k", "(0008,0050)"],
     ["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=AA32", "PatientName", "AccessionNumber"]),
    (["--keys-only", "--patient-name", "MOZART*", "--accession", "", "-k", "PatientID"],
     ["PatientName=MOZART*", "AccessionNumber", "PatientID"]),
    (["--keys-only", "--date", "19960101-19961231", "-k",
      "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime", "-k", "PatientName"],
     ["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=19960101-19961231",
      "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime", "PatientName"]),
    (["--keys-only", "--patient-id", "HF", "-k", "ScheduledProcedureStepSequence.Modality=CT", "-k", "StudyInstanceUID"],
     ["PatientID=HF", "ScheduledProcedureStepSequence[0].Modality=CT", "StudyInstanceUID"]),
]


def compare_with_findscu(mwl, tmp, port, label):
    """Every example query, then the option cases; returns the number of
    responses compared."""
    total, nonempty, sample = 0, 0, None
    for query in example_queries(os.path.join(tmp, label)):
        name = f"{label}-{os.path.basename(query)[:-4]}"
        theirs = findscu(tmp, port, name, query=query)
        ours, _, _ = mwl_find(mwl, tmp, port, name, "--query", query)
        same_responses(name, ours, theirs)
        total += len(ours)
        nonempty += bool(ours)
        if len(ours) >= 2 and sample is None:
            sample = ours
    check(nonempty >= 5, f"{label}: only {nonempty} example queries matched anything")
    check(sample is not None, f"{label}: no query with two responses to self-check")
    self_check(sample)
    for n, (ours_args, their_keys) in enumerate(OPTION_CASES):
        name = f"{label}-options{n}"
        theirs = findscu(tmp, port, name, keys=their_keys)
        ours, _, _ = mwl_find(mwl, tmp, port, name, *ours_args)
        same_responses(f"{name} ({' '.join(ours_args)})", ours, theirs)
        check(ours, f"{name}: nothing matched, the case proves nothing")
        total += len(ours)
    return total


def check_dump_matches_files(mwl, tmp, port, label, query):
    """--dump prints each response as `mwl dump` prints its --out-dir file."""
    _, out, out_dir = mwl_find(mwl, tmp, port, label, "--query", query, "--dump")
    blocks = re.split(r"^# Response \d+ \(status 0xFF0[01]\)\n# Used TransferSyntax: .*\n", out, flags=re.M)[1:]
    files = response_files(out_dir)
    check(len(blocks) == len(files) and files, f"{label}: {len(blocks)} dumped, {len(files)} files")
    for block, path in zip(blocks, files):
        code, dumped, err, _ = run([mwl, "dump", "--no-meta", path])
        check(code == 0, f"mwl dump {path}: {err}")
        body = dumped.split("# Used TransferSyntax: Explicit VR Little Endian\n", 1)[1]
        check(block.strip("\n") == body.strip("\n"), f"{label}: --dump and mwl dump differ for {path}")


def check_limit(mwl, port, what):
    code, out, err, _ = run([mwl, "find", "--aec", "OFFIS", "--timeout", "20", "--date", "all", "--limit", "1",
                             "127.0.0.1", str(port)])
    line = one_line(err, f"{what} --limit 1")
    check(code == 1, f"{what} --limit 1: exit {code}, expected 1 ({line})")
    check("status 0xFE00" in line and "Cancel" in line, f"{what} --limit 1: {line}")
    rows = [r for r in out.splitlines()[1:] if re.match(r"^\d{4}-\d\d-\d\d ", r)]
    check(len(rows) == 1, f"{what} --limit 1: {len(rows)} rows shown:\n{out}")


def test_dcmtk(mwl):
    need("wlmscpfs", "findscu", "dump2dcm", "dcmdump")
    with tempfile.TemporaryDirectory(prefix="mwl-find-") as tmp:
        db = example_worklist(tmp)
        _, port = start_wlmscpfs(tmp, db)
        total = compare_with_findscu(mwl, tmp, port, "wlmscpfs")
        queries = example_queries(os.path.join(tmp, "dumpcheck"))
        check_dump_matches_files(mwl, tmp, port, "dump", next(q for q in queries if q.endswith("wlistqry1.dcm")))
        # wlmscpfs checks for C-CANCEL between responses; one second before
        # each makes sure ours arrives while matches remain.
        _, slow_port = start_wlmscpfs(tmp, db, "--sleep-during", "1")
        check_limit(mwl, slow_port, "wlmscpfs")
        print(f"{total} responses compared with findscu")


def test_serve(mwl):
    need("findscu", "dump2dcm", "dcmdump")
    with tempfile.TemporaryDirectory(prefix="mwl-find-") as tmp:
        worklist = example_worklist(tmp)
        store = os.path.join(tmp, "offis.db")
        code, _, err, _ = run([mwl, "import", "--db", store, os.path.join(worklist, "OFFIS")])
        check(code == 0, f"mwl import: {err}")
        _, port = start_mwl_serve(mwl, tmp, store, "serve")
        total = compare_with_findscu(mwl, tmp, port, "serve")
        # Thousands of matches with the default keys: far more than fit in
        # the socket buffers, so the C-CANCEL arrives while matches remain.
        big = os.path.join(tmp, "big.db")
        code, _, err, _ = run([mwl, "demo", "--db", big, "--count", "3000", "--days", "1"], timeout=120)
        check(code == 0, f"mwl demo: {err}")
        _, big_port = start_mwl_serve(mwl, tmp, big, "big")
        check_limit(mwl, big_port, "mwl serve")
        print(f"{total} responses compared with findscu")


# ---------------------------------------------------------------------------
# Names in three character sets, through --json

# (Specific Character Set, patient name, physician name, patient ID) as
# Python text; each is written in its character set below.
CHARSET_ITEMS = [
    ("ISO_IR 100", "Müller^Jürgen", "Gaëlle^Ñúñez", "LAT1"),
    ("ISO_IR 192", "Wang^XiaoDong=王^小東=", "Ωμέγα^Δέλτα", "UTF8"),
    ("\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう", "Suzuki^Hanako=鈴木^花子=すずき^はなこ", "JIS"),
]


def encode_pn(charset, text):
    """A PN value in the item's character set. For ISO 2022 IR 87 every
    run of kanji/kana is wrapped in ESC $ B ... ESC ( B, and the escapes
    restart at each '^' and '=' (PS3.5 6.1.2.5.3, Example H.3-1)."""
    if charset == "ISO_IR 100":
        return text.encode("latin-1")
    if charset == "ISO_IR 192":
        return text.encode("utf-8")
    out = b""
    for part in re.split(r"([=^])", text):
        if part in ("=", "^") or part.isascii():
            out += part.encode("ascii")
        else:
            out += part.encode("iso2022_jp")  # ESC $ B ... ESC ( B
    return out


def charset_item_dump(n, charset, name, physician, pid, date):
    return b"".join([
        b"(0008,0005) CS [" + charset.encode() + b"]\n",
        b"(0008,0050) SH [ACC%d]\n" % n,
        b"(0010,0010) PN [" + encode_pn(charset, name) + b"]\n",
        b"(0010,0020) LO [" + pid.encode() + b"]\n",
        b"(0010,0030) DA [19700101]\n",
        b"(0010,0040) CS [O]\n",
        b"(0020,000d) UI [1.2.826.0.1.3680043.2.1125.99.%d]\n" % n,
        b"(0032,1060) LO [Exam %d]\n" % n,
        b"(0040,0100) SQ\n(fffe,e000) -\n",
        b"(0008,0060) CS [CT]\n",
        b"(0040,0001) AE [CT01]\n",
        b"(0040,0002) DA [" + date.encode() + b"]\n",
        b"(0040,0003) TM [0800%02d]\n" % n,
        b"(0040,0006) PN [" + encode_pn(charset, physician) + b"]\n",
        b"(0040,0007) LO [Step %d]\n" % n,
        b"(0040,0009) SH [SPS%d]\n" % n,
        b"(fffe,e00d) -\n(fffe,e0dd) -\n",
        b"(0040,1001) SH [RP%d]\n" % n,
    ])


def charset_worklist(tmp):
    ae_dir = os.path.join(tmp, "cs", "OFFIS")
    os.makedirs(ae_dir)
    today = time.strftime("%Y%m%d")
    for n, (charset, name, physician, pid) in enumerate(CHARSET_ITEMS):
        dump = os.path.join(tmp, f"cs{n}.dump")
        with open(dump, "wb") as f:
            f.write(charset_item_dump(n, charset, name, physician, pid, today))
        dump2dcm(dump, os.path.join(ae_dir, f"cs{n}.wl"))
    open(os.path.join(ae_dir, "lockfile"), "w").close()
    return os.path.join(tmp, "cs")


def jq(text, program):
    p = subprocess.run(["jq", "-c", program], input=text.encode("utf-8"), capture_output=True, timeout=30)
    check(p.returncode == 0, f"jq {program!r} rejects the output: {p.stderr.decode().strip()}\n{text[:500]}")
    return json.loads(p.stdout.decode("utf-8"))


def groups(pn):
    names = ("Alphabetic", "Ideographic", "Phonetic")
    return {k: v for k, v in zip(names, pn.split("=")) if v}


def check_json_names(mwl, port, label, source_charset, *extra):
    argv = [mwl, "find", "--aec", "OFFIS", "--timeout", "20", "--date", "all", "--json", *extra, "127.0.0.1", str(port)]
    code, out, err, _ = run(argv)
    check(code == 0, f"{label}: exit {code}: {err.strip()}")
    check(jq(out, "length") == len(CHARSET_ITEMS), f"{label}: {jq(out, 'length')} responses")
    got = jq(out, 'map({id: .["00100020"].Value[0], name: .["00100010"].Value[0], '
                  'phys: .["00400100"].Value[0]["00400006"].Value[0], scs: .["00080005"].Value})')
    by_id = {g["id"]: g for g in got}
    for charset, name, physician, pid in CHARSET_ITEMS:
        g = by_id.get(pid)
        check(g is not None, f"{label}: no response for {pid}: {got}")
        check(g["name"] == groups(name), f"{label} {charset}: patient name {g['name']}, want {groups(name)}")
        check(g["phys"] == groups(physician), f"{label} {charset}: physician {g['phys']}, want {groups(physician)}")
        # PS3.18 F.2.2 note 3: (0008,0005) stays what the response said
        # (wlmscpfs sends the item's own; mwl serve may re-encode).
        values = [v for v in (g["scs"] or []) if v]
        check(values, f"{label}: no (0008,0005) with {charset} names")
        if source_charset:
            check(charset.strip("\\") in values, f"{label}: (0008,0005) {g['scs']} for {charset}")
    return out


def check_table_names(mwl, port, label):
    code, out, err, _ = run([mwl, "find", "--aec", "OFFIS", "--timeout", "20", "--date", "all", "127.0.0.1", str(port)])
    check(code == 0, f"{label} table: exit {code}: {err.strip()}")
    for shown in ("Müller, Jürgen", "Wang, XiaoDong = 王, 小東", "Yamada, Tarou = 山田, 太郎"):
        check(shown in out, f"{label} table: {shown!r} not in\n{out}")


def check_matching(mwl, port, label, extra, pattern, want_id):
    code, out, err, _ = run([mwl, "find", "--aec", "OFFIS", "--timeout", "20", "--date", "all", "--json", *extra,
                             "--patient-name", pattern, "127.0.0.1", str(port)])
    check(code == 0, f"{label} --patient-name {pattern}: exit {code}: {err.strip()}")
    ids = jq(out, 'map(.["00100020"].Value[0])')
    check(ids == [want_id], f"{label} --patient-name {pattern}: got {ids}, want [{want_id}]")


def test_json_dcmtk(mwl):
    need("wlmscpfs", "dump2dcm", "jq")
    with tempfile.TemporaryDirectory(prefix="mwl-json-") as tmp:
        db = charset_worklist(tmp)
        # -csk: return each item's own (0008,0005); by default wlmscpfs
        # sends none, leaving every name outside ASCII undecodable.
        _, port = start_wlmscpfs(tmp, db, "-csk")
        check_json_names(mwl, port, "wlmscpfs", True)
        check_table_names(mwl, port, "wlmscpfs")
        # wlmscpfs compares bytes: the query must be in the item's set
        # (said the findscu way here; json_serve uses --charset).
        check_matching(mwl, port, "wlmscpfs", ["-k", "SpecificCharacterSet=ISO_IR 100"], "Müller*", "LAT1")


def test_json_serve(mwl):
    need("dump2dcm", "jq")
    with tempfile.TemporaryDirectory(prefix="mwl-json-") as tmp:
        worklist = charset_worklist(tmp)
        store = os.path.join(tmp, "cs.db")
        code, _, err, _ = run([mwl, "import", "--db", store, os.path.join(worklist, "OFFIS")])
        check(code == 0, f"mwl import: {err}")
        _, port = start_mwl_serve(mwl, tmp, store, "serve")
        check_json_names(mwl, port, "mwl serve", False)
        check_table_names(mwl, port, "mwl serve")
        # mwl serve matches in UTF-8 whatever each side's character set.
        check_matching(mwl, port, "mwl serve", [], "Müller*", "LAT1")
        check_matching(mwl, port, "mwl serve", ["--charset", "ISO_IR 100"], "M?ller^J*", "LAT1")
        # (wlmscpfs answers this one with A900: it refuses escapes in a PN key.)
        check_matching(mwl, port, "mwl serve", ["--charset", "\\ISO 2022 IR 87"], "Yamada^Tarou=山田*", "JIS")
        # mwl demo's names (ASCII, Latin-1, UTF-8) come out as UTF-8 too:
        # compared with what `mwl ls --json` reads from the store.
        demo = os.path.join(tmp, "demo.db")
        code, _, err, _ = run([mwl, "demo", "--db", demo, "--count", "40", "--days", "1"])
        check(code == 0, f"mwl demo: {err}")
        code, listed, err, _ = run([mwl, "ls", "--db", demo, "--date", "all", "--json"])
        check(code == 0, f"mwl ls: {err}")
        want = sorted(jq(listed, "map(.patientName)"))
        _, demo_port = start_mwl_serve(mwl, tmp, demo, "demo")
        code, out, err, _ = run([mwl, "find", "--aec", "OFFIS", "--date", "all", "--json", "127.0.0.1", str(demo_port)])
        check(code == 0, f"demo find: {err}")
        # The whole name back from its component groups, as ls shows it.
        got = sorted(jq(out, 'map(.["00100010"].Value[0] | [.Alphabetic // "", .Ideographic // "", '
                             '.Phonetic // ""] | join("=") | sub("=+$"; ""))'))
        check(got == want, f"demo names differ:\n{got}\n{want}")
        check(any(not n.isascii() for n in got), "demo: no name outside ASCII")
        # The Japanese patient in its three component groups (PS3.5 6.2.1.2):
        # romaji alphabetic, kanji ideographic, kana phonetic -- and no kanji
        # or kana in any alphabetic group (issue 10).
        names = jq(out, 'map(.["00100010"].Value[0])')
        check(groups("Yamada^Tarou=山田^太郎=やまだ^たろう") in names, f"demo: no Yamada^Tarou in {names}")
        cjk = [n for n in names if any(0x3040 <= ord(ch) <= 0x9FFF for ch in n.get("Alphabetic", ""))]
        check(not cjk, f"demo: kanji or kana in the alphabetic group: {cjk}")


# ---------------------------------------------------------------------------
# Exit statuses against scripted peers

MWL_FIND = b"1.2.840.10008.5.1.4.31"


class Peer:
    """A TCP peer that accepts one connection at a time and runs
    `behaviour` on it, in a thread."""

    def __init__(self, behaviour):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.2)
                try:
                    self.behaviour(self, conn)
                except OSError:
                    pass

    def read_pdu(self, conn, seconds=10):
        buf, end = b"", time.monotonic() + seconds
        while time.monotonic() < end and not self.stop.is_set():
            if len(buf) >= 6 and len(buf) >= 6 + int.from_bytes(buf[2:6], "big"):
                n = 6 + int.from_bytes(buf[2:6], "big")
                return buf[0], buf[:n]
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return None
            buf += chunk
        return None

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def contexts(rq):
    """(presentation context ID, abstract syntax) of each item of an
    A-ASSOCIATE-RQ (PS3.8 9.3.2)."""
    out, pos = [], 74
    while pos + 4 <= len(rq):
        kind, length = rq[pos], int.from_bytes(rq[pos + 2:pos + 4], "big")
        body = rq[pos + 4:pos + 4 + length]
        if kind == 0x20:
            sub, abstract = 4, b""
            while sub + 4 <= len(body):
                sl = int.from_bytes(body[sub + 2:sub + 4], "big")
                if body[sub] == 0x30:
                    abstract = body[sub + 4:sub + 4 + sl]
                sub += 4 + sl
            out.append((body[0], abstract))
        pos += 4 + length
    return out


def send_ac(conn, rq, accept_find=True):
    """A-ASSOCIATE-AC accepting every context in Implicit VR LE, or (with
    accept_find False) rejecting MWL FIND as an unsupported abstract syntax."""
    app = b"1.2.840.10008.3.1.1.1"
    ts = b"1.2.840.10008.1.2"
    items = b"\x10\x00" + len(app).to_bytes(2, "big") + app
    for ctx, abstract in contexts(rq):
        result = 3 if (abstract == MWL_FIND and not accept_find) else 0
        body = bytes([ctx, 0, result, 0]) + b"\x40\x00" + len(ts).to_bytes(2, "big") + ts
        items += b"\x21\x00" + len(body).to_bytes(2, "big") + body
    uid = b"1.2.3.4"
    user = b"\x51\x00\x00\x04" + (16384).to_bytes(4, "big") + b"\x52\x00" + len(uid).to_bytes(2, "big") + uid
    items += b"\x50\x00" + len(user).to_bytes(2, "big") + user
    body = b"\x00\x01\x00\x00" + rq[10:74] + items
    conn.sendall(b"\x02\x00" + len(body).to_bytes(4, "big") + body)


def element(el, value):
    return struct.pack("<HHI", 0, el, len(value)) + value


def find_failure(status, comment=None, offending=None):
    """A peer answering every C-FIND-RQ (once its identifier is complete)
    with `status`, and A-RELEASE-RQ with A-RELEASE-RP."""

    def behaviour(peer, conn):
        pdu = peer.read_pdu(conn)
        if pdu is None or pdu[0] != 1:
            return
        send_ac(conn, pdu[1])
        command, message_id, ctx = b"", None, 0
        while True:
            pdu = peer.read_pdu(conn)
            if pdu is None:
                return
            if pdu[0] == 5:
                conn.sendall(b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00")
                continue
            if pdu[0] != 4:
                return
            data, pos = pdu[1], 6
            while pos + 6 <= len(data):
                length = int.from_bytes(data[pos:pos + 4], "big")
                ctx, control = data[pos + 4], data[pos + 5]
                fragment = data[pos + 6:pos + 4 + length]
                pos += 4 + length
                if control & 1:
                    command += fragment
                    mark = command.find(b"\x00\x00\x10\x01\x02\x00\x00\x00")  # (0000,0110) US
                    if mark >= 0:
                        message_id = command[mark + 8:mark + 10]
                elif control & 2 and message_id is not None:  # last identifier fragment
                    rest = (element(0x0002, MWL_FIND) + element(0x0100, struct.pack("<H", 0x8020)) +
                            element(0x0120, message_id) + element(0x0800, struct.pack("<H", 0x0101)) +
                            element(0x0900, struct.pack("<H", status)))
                    if offending:
                        rest += element(0x0901, struct.pack("<HH", *offending))
                    if comment:
                        text = comment.encode() + (b" " if len(comment) % 2 else b"")
                        rest += element(0x0902, text)
                    cmd = element(0x0000, struct.pack("<I", len(rest))) + rest
                    pdv = (2 + len(cmd)).to_bytes(4, "big") + bytes([ctx, 3]) + cmd
                    conn.sendall(b"\x04\x00" + len(pdv).to_bytes(4, "big") + pdv)
                    command, message_id = b"", None

    return behaviour


def reject(peer, conn):
    """A-ASSOCIATE-RJ: rejected-permanent, service user, called AE title
    not recognized (PS3.8 Table 9-21: 1/1/7)."""
    if peer.read_pdu(conn) is not None:
        conn.sendall(b"\x03\x00\x00\x00\x00\x04\x00\x01\x01\x07")


def no_find(peer, conn):
    pdu = peer.read_pdu(conn)
    if pdu is None or pdu[0] != 1:
        return
    send_ac(conn, pdu[1], accept_find=False)
    while True:
        pdu = peer.read_pdu(conn)
        if pdu is None:
            return
        if pdu[0] == 5:
            conn.sendall(b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00")


def with_peer(behaviour, argv_tail, mwl):
    peer = Peer(behaviour)
    try:
        return run([mwl, "find", "--timeout", "5", *argv_tail, "127.0.0.1", str(peer.port)])
    finally:
        peer.close()


def test_exit(mwl):
    with tempfile.TemporaryDirectory(prefix="mwl-find-exit-") as tmp:
        junk = os.path.join(tmp, "junk.dcm")
        with open(junk, "wb") as f:
            f.write(b"\x08\x00\x05\x00CS\xff\xff" + b"x" * 7)  # a length past the end
        usage = [
            [],
            ["127.0.0.1"],
            ["127.0.0.1", "70000"],
            ["--bogus", "127.0.0.1", "104"],
            ["-k", "NoSuchKeyword=1", "127.0.0.1", "104"],
            ["-k", "PatientName.PatientID=1", "127.0.0.1", "104"],
            ["-k", "ScheduledProcedureStepSequence=CT", "127.0.0.1", "104"],
            ["-k", "(0009,1001)=x", "127.0.0.1", "104"],
            ["--date", "2024-13-45", "127.0.0.1", "104"],
            ["--time", "25", "127.0.0.1", "104"],
            ["--limit", "0", "127.0.0.1", "104"],
            ["--timeout", "0", "127.0.0.1", "104"],
            ["--charset", "ISO_IR 999", "127.0.0.1", "104"],
            ["--charset", "ISO_IR 100", "--patient-name", "山田", "127.0.0.1", "104"],
            ["--aec", "A\\B", "127.0.0.1", "104"],
            ["--json", "--dump", "127.0.0.1", "104"],
            ["--query", os.path.join(tmp, "missing.dcm"), "127.0.0.1", "104"],
            ["--query", junk, "127.0.0.1", "104"],
            ["--station"],
        ]
        for args in usage:
            # A usage error never connects (an attempt on 127.0.0.1:104 would
            # end in exit 3, not 2); the time bound is loose so that a loaded
            # machine cannot fail it.
            code, out, err, elapsed = run([mwl, "find", *args], timeout=120)
            check(code == 2, f"mwl find {args}: exit {code}, expected 2 ({err.strip()})")
            one_line(err, f"mwl find {args}")
            check(elapsed < 30, f"mwl find {args}: took {elapsed:.1f} s (no network expected)")
        code, out, _, _ = run([mwl, "find", "--help"])
        check(code == 0 and "default return keys:" in out and "ScheduledProcedureStepSequence.Modality" in out,
              "--help")

        port = free_port()  # nobody listens on it now
        # A refusal is immediate: well within a long --timeout, on any load.
        code, out, err, elapsed = run([mwl, "find", "--timeout", "60", "127.0.0.1", str(port)], timeout=120)
        check(code == 3, f"closed port: exit {code}")
        check(elapsed < 30, f"closed port took {elapsed:.1f} s: waited for the 60 s timeout?")
        line = one_line(err, "closed port")
        check("cannot connect" in line and "refused" in line.lower(), line)

        code, _, err, _ = with_peer(reject, [], mwl)
        check(code == 3, f"rejected association: exit {code}")
        line = one_line(err, "rejected association")
        check("rejected" in line and "called AE title not recognized" in line, line)

        code, _, err, _ = with_peer(no_find, [], mwl)
        check(code == 3, f"no MWL FIND context: exit {code}")
        line = one_line(err, "no MWL FIND context")
        check("does not accept Modality Worklist FIND" in line, line)

        code, out, err, _ = with_peer(find_failure(0xA700, comment="database offline"), [], mwl)
        check(code == 1, f"A700: exit {code}, expected 1 ({err.strip()})")
        line = one_line(err, "A700")
        check("0xA700" in line and "Out of resources" in line and '"database offline"' in line, line)
        check("no matching" not in out, f"A700: a failure shown as an empty result: {out!r}")

        code, out, err, _ = with_peer(find_failure(0xC123, offending=(0x0040, 0x0100)), ["--json"], mwl)
        check(code == 1, f"C123: exit {code}")
        line = one_line(err, "C123")
        check("0xC123" in line and "Unable to process" in line and "(0040,0100)" in line, line)
        check(jq(out, "length") == 0 if shutil.which("jq") else json.loads(out) == [], f"C123 --json: {out!r}")

        code, out, err, _ = with_peer(find_failure(0x0000), [], mwl)
        check(code == 0 and err == "" and "no matching" in out, f"empty success: exit {code}, {err!r}, {out!r}")


# ---------------------------------------------------------------------------
# The man page against every command's --help

COMMANDS = ("serve", "find", "echo", "import", "ls", "export", "rm", "expire", "explain", "demo", "dump", "hl7send")
LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def man_sections(text):
    """{command: section text} from the '.SS mwl X[, mwl Y]' sections, with
    roff's escaped dashes made plain."""
    text = text.replace("\\-", "-")
    sections = {}
    parts = re.split(r"^\.SS (.*)$", text, flags=re.M)
    for title, body in zip(parts[1::2], parts[2::2]):
        body = re.split(r"^\.SH ", body, flags=re.M)[0]
        for name in re.findall(r"mwl (\w+)", title):
            sections[name] = (title, body)
    return sections


def test_man(mwl):
    page = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "mwl", "mwl.1")
    with open(page, encoding="utf-8") as f:
        text = f.read()
    sections = man_sections(text)
    helps = {}
    for cmd in COMMANDS:
        code, out, err, _ = run([mwl, cmd, "--help"])
        check(code == 0, f"mwl {cmd} --help: exit {code} {err}")
        helps[cmd] = set(LONG_OPTION.findall(out)) - {"--help"}
        check(cmd in sections, f"mwl.1 has no section for mwl {cmd}")
        documented = set(LONG_OPTION.findall(sections[cmd][1]))
        missing = sorted(helps[cmd] - documented)
        check(not missing, f"mwl.1 does not document mwl {cmd} {', '.join(missing)}")
    # And nothing documented as an option (a .TP tag) that no --help knows.
    for title, body in {v[0]: v[1] for v in sections.values()}.items():
        known = set().union(*(helps[c] for c in re.findall(r"mwl (\w+)", title)))
        tags = re.findall(r"^\.TP\n\.B[IR]? (--[a-z][a-z0-9-]*)", body, flags=re.M)
        stale = sorted(set(tags) - known - {"--help"})
        check(not stale, f"mwl.1 section '{title}' documents {', '.join(stale)}, which --help does not show")
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True, timeout=30)
        check(p.returncode == 0 and not p.stderr.strip(), f"groff warns about mwl.1: {p.stderr.decode()}")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tests = {"dcmtk": test_dcmtk, "serve": test_serve, "json_dcmtk": test_json_dcmtk, "json_serve": test_json_serve,
             "exit": test_exit, "man": test_man}
    if len(sys.argv) != 3 or sys.argv[1] not in tests:
        print(__doc__, file=sys.stderr)
        return 2
    mode, mwl = sys.argv[1], os.path.abspath(sys.argv[2])
    try:
        tests[mode](mwl)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        kill_started()
    print(f"{mode}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
