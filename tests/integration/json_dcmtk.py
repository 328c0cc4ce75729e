#!/usr/bin/env python3
"""DICOM JSON round trip over DCMTK's worklist examples.

  json_dcmtk.py JSON_DECODE_TEST

Converts DCMTK's example worklists and queries (wlistdb/*.dump,
wlistqry*/*.dump, found as dump_dcmtk.py finds them), dump_dcmtk.py's
synthetic data set (every binary VR, Latin-1, nested and empty items) and
its names in six character sets to Part 10 files with dump2dcm, then runs
json_decode_test over them: each file is encoded to DICOM JSON
(dicom/json.c), decoded back (dicom/json_decode.c) in both character set
modes and compared element by element. Exit 77 (skipped) without DCMTK or
its examples.
"""
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dump_dcmtk  # noqa: E402

SKIP = 77


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tester = os.path.abspath(argv[1])
    dump2dcm = shutil.which("dump2dcm")
    if not dump2dcm:
        print("skipped: DCMTK (dump2dcm) is not installed")
        return SKIP
    examples = dump_dcmtk.find_examples()
    if not any("wlistdb" in e for e in examples):
        print("skipped: DCMTK's worklist examples (wlistdb/*.dump) were not found")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="mwl-json-") as tmp:
        dumps = []
        for path in examples:
            name = os.path.basename(os.path.dirname(path)) + "-" + re.sub(r"\.dump(\.gz)?$", "", os.path.basename(path))
            target = os.path.join(tmp, name + ".dump")
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as src, open(target, "wb") as dst:
                dst.write(src.read())
            dumps.append(target)
        synthetic = os.path.join(tmp, "synthetic.dump")
        with open(synthetic, "wb") as f:
            f.write(dump_dcmtk.SYNTHETIC.encode("latin-1"))
        dumps.append(synthetic)
        for name, charset, text, encode in dump_dcmtk.CHARSET_CASES:
            path = os.path.join(tmp, f"charset-{name}.dump")
            with open(path, "wb") as f:
                f.write(dump_dcmtk.charset_dump(charset, text, encode))
            dumps.append(path)

        files, skipped = [], []
        for dump in dumps:
            out = dump[: -len(".dump")] + ".dcm"
            r = subprocess.run([dump2dcm, "-q", dump, out], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if r.returncode != 0 or not os.path.exists(out):
                # Some query examples are not valid for dump2dcm (as in dump_dcmtk.py).
                skipped.append(os.path.basename(dump))
                continue
            files.append(out)
        if not any("wlistdb" in f or "OFFIS" in f for f in files):
            print("FAIL: dump2dcm converted none of the worklist examples")
            return 1
        r = subprocess.run([tester, *files], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sys.stdout.write(r.stdout.decode("utf-8", "replace").replace(tmp + "/", ""))
        if skipped:
            print(f"not converted by dump2dcm, not compared: {', '.join(skipped)}")
        return 0 if r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
