#!/bin/sh
# REST search vs C-FIND for the station/today query (issue 13). Run by hand:
#
#   (wrk is installed by scripts/deps.sh --bench when missing)
#   bench/rest_bench.sh [N] [--duration S] [--warmup S] [--connections C]
#                       [--station AE] [--date YYYYMMDD] [-- mwl serve options]
#
#   N              items in the database (default 1000000)
#   --duration S   measured seconds per run (default 15)
#   --warmup S     unmeasured seconds before each run (default 3)
#   --connections  concurrent clients: HTTP connections / DICOM associations (8)
#   --wrk-threads  wrk's threads (default 2, one per CPU of the reference machine)
#   --station AE   the station every client asks for (default CT01)
#   --date D       the day asked for (default today)
#
# Makes (or reuses) the same database as bench/load_bench.sh: N `mwl demo`
# items, about 300 a day around today over 8 stations, in
# $BENCH_DATA/load-N.db (default build/bench-data). Starts one `mwl serve` on
# it with a DICOM port and an HTTP port (both port 0, loopback, no tokens)
# and then, one after the other against that server:
#   (1) REST  GET /mwlitems?ScheduledProcedureStepSequence.ScheduledStationAETitle=AE
#             &ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=D
#             with wrk: C connections, one request at a time on each (no
#             pipelining; wrk reconnects when the server closes a connection);
#   (2) REST  the same query on the standard /modality-scheduled-procedure-steps;
#   (3) REST  GET /healthz, the same way: what HTTP alone costs (no search);
#   (4) C-FIND the same query with build/bench/load_bench: C threads, each with
#             its own open association (--scanners 0 --write-rate 0).
# For each: requests/s, p50, p99, errors (non-2xx / failed C-FINDs), and the
# CPU time the server and the client used per request (from /proc). Prints a
# table with the issue's goal and the ratio REST / C-FIND. Everything started
# is killed by PID on every way out; every run is bounded by `timeout`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
mwl=$build/mwl
lb=$build/bench/load_bench
data=${BENCH_DATA:-$build/bench-data}
[ -x "$mwl" ] && [ -x "$lb" ] || { echo "build first: cmake --build build -j2" >&2; exit 2; }
# wrk comes from the project's dependency script (Debian's wrk 4.1).
command -v wrk >/dev/null || sh "$(dirname "$0")/../scripts/deps.sh" --bench
command -v wrk >/dev/null || { echo "needs wrk (scripts/deps.sh --bench)" >&2; exit 2; }

N=1000000
case "${1:-}" in [0-9]*) N=$1; shift ;; esac
duration=15 warmup=3 conns=8 wrk_threads=2 station=CT01 today=$(date +%Y%m%d)
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --wrk-threads) wrk_threads=$2; shift 2 ;;
    --station) station=$2; shift 2 ;;
    --date) today=$2; shift 2 ;;
    *) echo "rest_bench.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
# what is left in "$@" goes to mwl serve

mkdir -p "$data"
db=$data/load-$N.db
work=$(mktemp -d)
srv_pid="" cl_pid=""
cleanup() {
  [ -n "$cl_pid" ] && kill "$cl_pid" 2>/dev/null
  if [ -n "$srv_pid" ]; then
    kill "$srv_pid" 2>/dev/null || true
    # bounded wait: SIGKILL after 10 s
    for _ in $(seq 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms() { date +%s%3N; }

# Demo items stored and items for the day: "demo_count day_count".
db_state() {
  python3 - "$1" "$today" <<'EOF'
import sqlite3, sys
try:
    c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
    n = c.execute("SELECT count(*) FROM sps WHERE source = 'demo'").fetchone()[0]
    t = c.execute("SELECT count(*) FROM sps WHERE start_date = ?", (sys.argv[2],)).fetchone()[0]
    print(n, t)
except sqlite3.Error:
    print(0, 0)
EOF
}

state=$(db_state "$db")
if [ -f "$db" ] && [ "${state% *}" = "$N" ] && [ "${state#* }" -gt 0 ]; then
  echo "reusing $db ($N demo items, ${state#* } on $today)"
  # load_bench.sh's writer may have left items (never on the day asked for)
  python3 - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
c.execute("PRAGMA foreign_keys = ON")
n = c.execute("DELETE FROM sps WHERE source = 'load_bench'").rowcount
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
if n:
    print("  removed %d items a load_bench writer added" % n)
EOF
else
  rm -f "$db" "$db-wal" "$db-shm"
  days=$(( N / 300 )); [ "$days" -lt 30 ] && days=30
  start=$(date -d "-$(( days / 2 )) days" +%Y%m%d)
  echo "generating $N items over $days days from $start into $db ..."
  t0=$(ms)
  timeout 3600 "$mwl" demo --db "$db" --count "$N" --days "$days" --start "$start" >/dev/null
  t1=$(ms)
  echo "  mwl demo: $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s = $(( N * 1000 / (t1 - t0 + 1) )) items/s"
fi

"$mwl" serve --db "$db" --port 0 --port-file "$work/port" --aet MWL \
  --http-port 0 --http-port-file "$work/http-port" --log-level warn "$@" 2>"$work/serve.log" &
srv_pid=$!
for _ in $(seq 100); do
  [ -s "$work/port" ] && [ -s "$work/http-port" ] && break
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done
[ -s "$work/port" ] && [ -s "$work/http-port" ] || { echo "mwl serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
port=$(cat "$work/port") hport=$(cat "$work/http-port")
echo "mwl serve pid $srv_pid, DICOM port $port, HTTP port $hport, flags: ${*:-(defaults)}"

q="ScheduledProcedureStepSequence.ScheduledStationAETitle=$station&ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=$today"
url_rs="http://127.0.0.1:$hport/mwlitems?$q"
url_std="http://127.0.0.1:$hport/modality-scheduled-procedure-steps?$q"

# One request each, to check the answer and count its items and bytes, on
# an HTTP/1.1 connection that asks for nothing (urllib would send
# "Connection: close" itself); "close" in the last column means the server
# ends the connection after each answer.
python3 - "$hport" "/mwlitems?$q" "/modality-scheduled-procedure-steps?$q" >"$work/check" <<'EOF'
import http.client, json, sys
for path in sys.argv[2:]:
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    print(r.status, len(json.loads(body)) if body else 0, len(body), r.getheader("Connection") or "-")
    c.close()
EOF
read -r st_rs items_rs bytes_rs conn_rs <"$work/check"
echo "REST answer: HTTP $st_rs, $items_rs items, $bytes_rs bytes (/mwlitems), Connection: $conn_rs"
[ "$st_rs" = 200 ] && [ "$items_rs" -gt 0 ] || { echo "the query found nothing: no benchmark" >&2; exit 1; }

# CPU seconds (user + system) a process has used so far.
# (Its threads' included, also those that have ended: the HTTP server has a
# thread per connection.)
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# ... of the command `timeout` runs (its child)
ccpu() {
  k=$(cut -d' ' -f1 "/proc/$1/task/$1/children" 2>/dev/null)
  [ -n "$k" ] && cpu "$k" || echo 0
}
limit=$(( duration + warmup + 120 ))

# wrk: warm-up run (discarded), then the measured one; bench/wrk_report.lua
# prints its summary as one JSON line.
rest() {
  name=$1 url=$2
  echo
  echo "== REST $name: wrk -t $wrk_threads -c $conns, ${warmup} s warm-up + ${duration} s"
  timeout -k 5 "$limit" wrk -t "$wrk_threads" -c "$conns" -d "${warmup}s" "$url" >/dev/null 2>&1 &
  cl_pid=$!; wait "$cl_pid" || true; cl_pid=""
  s0=$(cpu "$srv_pid")
  timeout -k 5 "$limit" wrk -t "$wrk_threads" -c "$conns" -d "${duration}s" --latency -s "$here/wrk_report.lua" \
    "$url" >"$work/$name.out" 2>&1 &
  cl_pid=$! c1=0
  sleep 0.2; c0=$(ccpu "$cl_pid")
  # the client's CPU just before it exits (sampled every 0.5 s)
  while kill -0 "$cl_pid" 2>/dev/null; do c=$(ccpu "$cl_pid"); [ "$c" != 0 ] && c1=$c; sleep 0.5; done
  wait "$cl_pid" || echo "wrk exited with status $?"
  cl_pid=""
  s1=$(cpu "$srv_pid")
  echo "$s0 $s1 ${c0:-0} ${c1:-0}" >"$work/$name.cpu"
  grep -v '^WRK_JSON' "$work/$name.out"
  sed -n 's/^WRK_JSON //p' "$work/$name.out" >"$work/$name.json"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
rest rs "$url_rs"
rest std "$url_std"
# the HTTP floor: the same load on /healthz (no search, a 2-byte answer)
rest healthz "http://127.0.0.1:$hport/healthz"

echo
echo "== C-FIND: load_bench --interactive $conns --station $station --date $today, ${warmup} s warm-up + ${duration} s"
s0=$(cpu "$srv_pid")
timeout -k 5 "$limit" "$lb" --port "$port" --db "$db" --items "$N" --interactive "$conns" \
  --scanners 0 --write-rate 0 --station "$station" --date "$today" \
  --duration "$duration" --warmup "$warmup" >"$work/dimse.out" 2>&1 &
cl_pid=$! c1=0
while kill -0 "$cl_pid" 2>/dev/null; do c=$(ccpu "$cl_pid"); [ "$c" != 0 ] && c1=$c; sleep 0.5; done
wait "$cl_pid" || echo "load_bench exited with status $?"
cl_pid=""
s1=$(cpu "$srv_pid")
# load_bench's CPU includes its warm-up: scaled to the measured window below
echo "$s0 $s1 0 ${c1:-0}" >"$work/dimse.cpu"
tail -n 1 "$work/dimse.out" >"$work/dimse.json"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

rss=$(awk '/VmHWM/ {print $2}' "/proc/$srv_pid/status")
echo
python3 - "$work" "$N" "$conns" "$duration" "$warmup" "$items_rs" "$bytes_rs" "$rss" "$conn_rs" <<'EOF'
import json, sys
w, n, conns, dur, warm, items, nbytes, rss, conn = sys.argv[1:]
dur, warm = float(dur), float(warm)
def cpu(name):
    return [float(x) for x in open("%s/%s.cpu" % (w, name)).read().split()]
res = {}
for name in ("rs", "std"):
    j = json.load(open("%s/%s.json" % (w, name)))
    s0, s1, c0, c1 = cpu(name)
    total = j["requests"]
    errs = j["non2xx"] + j["connect_err"] + j["read_err"] + j["write_err"] + j["timeout_err"]
    res[name] = dict(rps=total / (j["duration_us"] / 1e6), p50=j["p50_us"] / 1e3, p99=j["p99_us"] / 1e3,
                     mx=j["max_us"] / 1e3, errors=errs,
                     srv=(s1 - s0) * 1e3 / max(total, 1), cli=(c1 - c0) * 1e3 / max(total, 1),
                     extra="%.1f MB/s" % (j["bytes"] / (j["duration_us"] / 1e6) / 1e6))
d = json.load(open("%s/dimse.json" % w))
i = d["interactive"]
s0, s1, _, c1 = cpu("dimse")
total = i["latency"]["count"]
ran = total / i["qps"] * (dur + warm) / dur if i["qps"] else 1  # warm-up + window, in s
res["dimse"] = dict(rps=i["qps"], p50=i["latency"]["p50_ms"], p99=i["latency"]["p99_ms"],
                    mx=i["latency"]["max_ms"], errors=d["errors"] + d["failed_associations"],
                    srv=(s1 - s0) * 1e3 / max(i["qps"] * (dur + warm), 1),
                    cli=c1 * 1e3 / max(i["qps"] * (dur + warm), 1),
                    extra="%.1f matches/query" % i["matches_per_query"])
print("N = %s items, %s concurrent clients, %.0f s measured each; the query returns %s items (%s bytes of JSON)"
      % (format(int(n), ","), conns, dur, items, format(int(nbytes), ",")))
cols = [("REST /mwlitems", "rs"), ("REST /modality-sps", "std"), ("C-FIND", "dimse")]
print("%-26s %-10s" % ("", "goal") + "".join("%-20s" % c for c, _ in cols) + "REST/C-FIND")
def row(label, goal, key, fmt):
    r = "".join("%-20s" % (fmt % res[k][key]) for _, k in cols)
    print("%-26s %-10s%s%.2f" % (label, goal, r, res["rs"][key] / res["dimse"][key] if res["dimse"][key] else float("nan")))
row("searches/s", ">= 5000", "rps", "%.0f")
row("p50 ms", "", "p50", "%.2f")
row("p99 ms", "<= 10", "p99", "%.2f")
row("max ms", "", "mx", "%.1f")
row("server CPU ms/search", "", "srv", "%.3f")
row("client CPU ms/search", "", "cli", "%.3f")
print("%-26s %-10s" % ("errors (non-2xx/failed)", "0") + "".join("%-20s" % res[k]["errors"] for _, k in cols))
print("%-26s %-10s" % ("", "") + "".join("%-20s" % res[k]["extra"] for _, k in cols))
ok = res["rs"]["rps"] >= 5000 and res["rs"]["p99"] <= 10
print("goal (REST /mwlitems >= 5000/s and p99 <= 10 ms): %s" % ("met" if ok else "MISSED"))
print("mwl serve peak RSS %d MiB" % (int(rss) // 1024))
h = json.load(open("%s/healthz.json" % w))
print("HTTP floor, GET /healthz under the same load: %.0f requests/s, p50 %.2f ms, p99 %.2f ms"
      % (h["requests"] / (h["duration_us"] / 1e6), h["p50_us"] / 1e3, h["p99_us"] / 1e3))
if conn.lower() == "close":
    print("note: the server answered 'Connection: close', so every REST request was a new TCP connection")
EOF
