#!/usr/bin/env python3
"""mwl's web page in a real browser (issue 13): headless Chromium driven by
playwright-core (tests/integration/web_ui.js), checked from the DICOM side
with DCMTK's findscu.

  web_ui.py MWL SCREENSHOT.png

1. installs tests/node's packages with `npm ci` when node_modules is
   missing or stale (harness.ensure_node_modules);
2. starts `mwl serve` on a new database, DICOM and HTTP ports picked by the
   kernel on 127.0.0.1 (--port-file, --http-port-file), with a tokens file
   (one write token): the page and its files load without a token
   (text/html, text/javascript, text/css, Cache-Control, ETag), the API
   answers 401 without one;
3. `web_ui.js create`: the page asks for the token (its dialog), refuses an
   empty form and a two-valued Patient ID in the browser (nothing sent),
   shows a 400 answer's message next to the field its "attribute" names
   (that one answer made up by the driver: the browser already refuses
   what the server would), and creates two items through the form (Study Instance UID left empty:
   the page makes a 2.25 UID) for today on station CT01: Yamada^Tarou=
   山田^太郎=やまだ^たろう and Müller^Hans; both rows show the names
   readably;
4. findscu -W (query written with dump2dcm, responses read with dcmdump +U8,
   hl7_feed.py's Finder) for CT01 and today returns both SPS with the names,
   Study UIDs (the page's), IDs, modality, start time and status SCHEDULED;
5. the server runs the HL7 feed too (--hl7-port 0): one ORM^O01 fixture
   (hl7_messages/classic_orm_nw.hl7, MSH-10 CLS00001) sent with `mwl
   hl7send` is answered AA, and the page's status panel shows it as the
   feed's last message (its MSH-10 and "(AA)");
   `web_ui.js cancel` cancels Müller's SPS with its button in the page: the
   row leaves the list, Yamada's stays; the recent queries panel lists
   findscu's query (calling AE FINDSCU, keys CT01 and the date), and its
   Explain button against Yamada's row says match; a full-page screenshot
   goes to SCREENSHOT.png;
6. findscu no longer returns Müller's SPS by default, does return it with
   status CANCELED when asked for that status, and still returns Yamada's;
7. SIGTERM: the server exits 0.

Exit 0 pass, 1 fail, 77 skipped: only when node, Chromium (/usr/bin/chromium
or $MWL_CHROMIUM) or DCMTK is missing and the CI variable is unset; in CI a
missing tool is a failure. Every process started here is killed by PID (the
browser with node's process group, whose id is node's PID) on the way out;
every wait is bounded; only 127.0.0.1.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import (SKIP, STARTED, Failure, check, die_with_parent, ensure_node_modules,  # noqa: E402
                     kill_started, on_signal, wait_listening)
from hl7_feed import Finder, by_sps  # noqa: E402

NODE_DIR = os.path.join(os.path.dirname(HERE), "node")
DRIVER = os.path.join(HERE, "web_ui.js")
HOST = "127.0.0.1"
TOKEN = "web-ui-wr1te-t0ken-0123456789"
CHROMIUM = os.environ.get("MWL_CHROMIUM", "/usr/bin/chromium")
NODE_GROUPS = []  # node's process group ids (its PID), killed on the way out


def note(msg):
    print(msg, flush=True)


def missing_tools():
    gone = [t for t in ("node", "findscu", "dump2dcm", "dcmdump") if shutil.which(t) is None]
    if not os.access(CHROMIUM, os.X_OK):
        gone.append(CHROMIUM)
    return gone


def read_port(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class Server:
    def __init__(self, mwl, tmp):
        self.tmp = tmp
        self.log_path = os.path.join(tmp, "serve.log")
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("%s write\n" % TOKEN)
        pf, hf = os.path.join(tmp, "port"), os.path.join(tmp, "http-port")
        h7 = os.path.join(tmp, "hl7-port")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [mwl, "serve", "--db", os.path.join(tmp, "wl.db"), "--bind", HOST, "--port", "0", "--port-file", pf,
                 "--http-port", "0", "--http-port-file", hf, "--http-tokens-file", tokens,
                 "--hl7-port", "0", "--hl7-port-file", h7, "--log-level", "info"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        STARTED.append(self.proc)
        end = time.monotonic() + 20
        self.port = self.http_port = self.hl7_port = None
        while time.monotonic() < end and self.proc.poll() is None:
            self.port, self.http_port, self.hl7_port = read_port(pf), read_port(hf), read_port(h7)
            if self.port and self.http_port and self.hl7_port:
                break
            time.sleep(0.05)
        check(self.port and self.http_port and self.hl7_port and wait_listening(self.port, self.proc)
              and wait_listening(self.http_port, self.proc) and wait_listening(self.hl7_port, self.proc),
              "mwl serve did not start (exit %s):\n%s" % (self.proc.poll(), self.log()))
        self.url = "http://%s:%d/" % (HOST, self.http_port)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise Failure("mwl serve did not stop within 30 s of SIGTERM")


def http_get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def check_assets(srv):
    for path, ctype in (("", "text/html"), ("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = http_get(srv.url + path)
        check(status == 200, "GET /%s without a token: %d" % (path, status))
        check((headers.get("Content-Type") or "").startswith(ctype + "; charset=utf-8"),
              "GET /%s: Content-Type %r" % (path, headers.get("Content-Type")))
        check(headers.get("Cache-Control") == "no-cache" and headers.get("ETag"),
              "GET /%s: Cache-Control %r, ETag %r" % (path, headers.get("Cache-Control"), headers.get("ETag")))
        check(len(body) > 500, "GET /%s: %d bytes" % (path, len(body)))
    status, _, _ = http_get(srv.url + "mwlitems")
    check(status == 401, "GET /mwlitems without a token: %d, expected 401" % status)
    note("page files served without a token (HTML, JS, CSS, no-cache + ETag); the API needs one")


def driver(*args, timeout=240):
    """Runs web_ui.js in its own process group, so that a timeout kills node
    and the browser it started together; returns its JSON."""
    proc = subprocess.Popen(["node", DRIVER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
    NODE_GROUPS.append(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate(timeout=10)
        raise Failure("web_ui.js %s: no end within %d s" % (args[0], timeout))
    finally:
        kill_group(proc.pid)  # a browser left behind by a node that failed
        NODE_GROUPS.remove(proc.pid)
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    check(proc.returncode == 0, "web_ui.js %s: exit %d\n%s" % (args[0], proc.returncode, err.strip()[-3000:]))
    return json.loads(out)


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)  # the group of node's PID: node and its Chromium
    except (ProcessLookupError, PermissionError):
        pass


def on_term(signo, frame):
    for pgid in NODE_GROUPS:
        kill_group(pgid)
    on_signal(signo, frame)


def expect(have, want, what):
    check(have == want, "%s: %r, expected %r" % (what, have, want))


def test(mwl, screenshot):
    gone = missing_tools()
    if gone:
        if not os.environ.get("CI"):
            note("skipped: not installed: " + ", ".join(gone))
            return SKIP
        raise Failure("CI: not installed: %s (scripts/deps.sh --test installs them)" % ", ".join(gone))
    ensure_node_modules(NODE_DIR)
    today = time.strftime("%Y-%m-%d")
    da = today.replace("-", "")
    with tempfile.TemporaryDirectory(prefix="mwl-webui-") as tmp:
        srv = Server(mwl, tmp)
        note("mwl serve: DICOM port %d, HTTP %s" % (srv.port, srv.url))
        try:
            check_assets(srv)
            made = driver("create", srv.url, TOKEN, today)
            pages = {i["sps"]: i for i in made["items"]}
            note("page: created %s through the form" % ", ".join(sorted(pages)))

            finder = Finder(tmp)
            found = by_sps(finder.query(srv.port, **{"SPS.ScheduledStationAETitle": "CT01", "SPS.StartDate": da}))
            check(set(found) == {"WEBSPS1", "WEBSPS2"}, "findscu for CT01 on %s: SPS %s" % (da, sorted(found)))
            for sps, name, time_ in (("WEBSPS1", "Yamada^Tarou=山田^太郎=やまだ^たろう", "093000"),
                                     ("WEBSPS2", "Müller^Hans", "101500")):
                r = found[sps]
                expect(r["PatientName"], name, sps + " PatientName")
                expect(r["StudyInstanceUID"], pages[sps]["study"], sps + " StudyInstanceUID")
                expect(r["SPS.Modality"], "CT", sps + " Modality")
                expect(r["SPS.StartDate"], da, sps + " start date")
                expect((r["SPS.StartTime"] or "")[:6], time_, sps + " start time")
                expect(r["SPS.Status"], "SCHEDULED", sps + " status")
            expect(found["WEBSPS1"]["PatientID"], "WEBP1", "WEBSPS1 PatientID")
            expect(found["WEBSPS1"]["AccessionNumber"], "WEBACC1", "WEBSPS1 AccessionNumber")
            expect(found["WEBSPS1"]["RequestedProcedureID"], "WEBRP1", "WEBSPS1 RequestedProcedureID")
            note("findscu: both SPS as entered (names in UTF-8, the page's 2.25 Study UIDs), SCHEDULED")

            # An order through the HL7 feed, for the status panel's line.
            fixture = os.path.join(HERE, "hl7_messages", "classic_orm_nw.hl7")
            p = subprocess.run([mwl, "hl7send", "--host", HOST, "--port", str(srv.hl7_port), "--timeout", "20",
                                fixture], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            check(b"MSA|AA|CLS00001" in p.stdout, "hl7send %s: exit %d: %r %r" % (fixture, p.returncode, p.stdout,
                                                                                    p.stderr))
            done = driver("cancel", srv.url, TOKEN, today, "WEBSPS2", screenshot, "CLS00001")
            expect(sorted(r["sps"] for r in done["rows"]), ["WEBSPS1"], "rows in the page after the cancel")
            note("page: WEBSPS2 canceled with its button; the list keeps WEBSPS1; the status panel shows "
                 "the HL7 feed's last message: %s" % done["hl7"])

            after = by_sps(finder.query(srv.port, **{"SPS.ScheduledStationAETitle": "CT01", "SPS.StartDate": da}))
            expect(sorted(after), ["WEBSPS1"], "findscu after the cancel")
            canceled = by_sps(finder.query(srv.port, **{"SPS.StartDate": da, "SPS.Status": "CANCELED"}))
            expect(sorted(canceled), ["WEBSPS2"], "findscu for status CANCELED")
            note("findscu: WEBSPS2 gone from the default query, returned as CANCELED when asked")

            with open(screenshot, "rb") as f:
                head = f.read(8)
            check(head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(screenshot) > 10000,
                  "%s is not a PNG of the page" % screenshot)
            rc = srv.stop()
            check(rc == 0, "mwl serve exit %s after SIGTERM\n%s" % (rc, srv.log()))
        except Failure as e:
            raise Failure("%s\nserver log:\n%s" % (e, srv.log()))
    note("screenshot: %s" % screenshot)
    return 0


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        return test(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        for pgid in NODE_GROUPS:
            kill_group(pgid)
        kill_started()


if __name__ == "__main__":
    sys.exit(main())
