#!/bin/sh
# The HL7 order feed of `mwl serve` (issue 12): durable orders per second,
# send-to-AA and send-to-visible-in-C-FIND latency. Run by hand:
#
#   bench/hl7_bench.sh [N] [--slow-sync-us U] [hl7_bench options] [-- mwl serve options]
#
#   N                  orders per run (default 5000)
#   --slow-sync-us U   model a slower disk: the server (and the floor
#                      measurement) sleep U microseconds before every
#                      fsync/fdatasync (build/bench/libslow_sync.so, preloaded)
#   hl7_bench options  passed to both runs: --poll-us U, --sample-gap-ms G,
#                      ... (see build/bench/hl7_bench --help)
#   serve options      appended to the server's flags, e.g. -- --workers 2
#
# Two runs, each on a fresh database with its own `mwl serve` (port 0, the
# feed's default durable commits): N orders over 1 MLLP connection, then
# over 4 (each connection: send, wait for AA, next). A C-FIND watcher on
# the DICOM port times sampled orders until they are visible. The databases
# go to $BENCH_DATA (default build/bench-data), on purpose not /tmp: what
# a durable commit costs depends on the disk, and /tmp is often tmpfs,
# where fsync costs nothing. Before the runs the script measures the cost
# floor on that disk: single-row SQLite commits in WAL mode with
# synchronous=FULL, one after another, as a server without group commit
# would make one per order. Prints the issue's goals next to the measured
# values. The servers are killed by PID on every way out.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
mwl=$build/mwl
hb=$build/bench/hl7_bench
data=${BENCH_DATA:-$build/bench-data}
[ -x "$mwl" ] && [ -x "$hb" ] || { echo "build first: cmake --build build -j2 --target mwl hl7_bench" >&2; exit 2; }
"$mwl" serve --help 2>&1 | grep -q -- --hl7-port || { echo "hl7_bench.sh: this mwl serve has no --hl7-port" >&2; exit 2; }
hl7_bind=""
"$mwl" serve --help 2>&1 | grep -q -- --hl7-bind && hl7_bind="--hl7-bind 127.0.0.1"

N=5000
case "${1:-}" in [0-9]*) N=$1; shift ;; esac
common=""
slow_us=0
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    --slow-sync-us) slow_us=$2; shift 2 ;;
    --*) common="$common $1 $2"; shift 2 ;;
    *) echo "hl7_bench.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
# what is left in "$@" goes to mwl serve
if [ "$slow_us" != 0 ]; then
  preload=$build/bench/libslow_sync.so
  [ -f "$preload" ] || { echo "build first: cmake --build build --target slow_sync" >&2; exit 2; }
  echo "modelling a slower disk: +$slow_us us before every fsync/fdatasync"
  # For every process from here on (the floor's and the server's syncs;
  # the others do not sync). Exported rather than put before the server's
  # command, which keeps the server's PID the one the script kills.
  LD_PRELOAD=$preload MWL_SLOW_SYNC_US=$slow_us
  export LD_PRELOAD MWL_SLOW_SYNC_US
fi

mkdir -p "$data"
work=$(mktemp -d "$data/hl7.XXXXXX")
srv_pid="" hb_pid=""
stop_server() {
  if [ -n "$srv_pid" ]; then
    kill "$srv_pid" 2>/dev/null || true
    # bounded wait: SIGKILL after 10 s
    for _ in $(seq 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=""
  fi
}
cleanup() {
  [ -n "$hb_pid" ] && kill "$hb_pid" 2>/dev/null
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fs=$(df -PT "$work" 2>/dev/null | awk 'NR == 2 { print $2 }')
echo "databases in $work (file system: $fs)"

# The floor: what one durable commit costs here (SQLite WAL, synchronous
# FULL: one fsync of the WAL per commit), 300 commits after 20 unmeasured.
floor=$(python3 - "$work/floor.db" <<'EOF'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=FULL")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
for i in range(20):
    c.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
n, t0 = 300, time.perf_counter()
for i in range(n):
    c.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
ms = (time.perf_counter() - t0) * 1000 / n
print("%.3f %.0f" % (ms, 1000 / ms))
EOF
)
rm -f "$work"/floor.db*
echo "SQLite durable commit floor on this disk: ${floor% *} ms per commit, ${floor#* } commits/s one after another"

run() {
  conns=$1; shift
  db=$work/hl7-c$conns.db
  # shellcheck disable=SC2086
  "$mwl" serve --db "$db" --bind 127.0.0.1 --port 0 --port-file "$work/port$conns" \
    --hl7-port 0 --hl7-port-file "$work/hl7port$conns" --hl7-station "CT CT01" $hl7_bind --log-level warn "$@" \
    2>"$work/serve$conns.log" &
  srv_pid=$!
  for _ in $(seq 150); do
    [ -s "$work/port$conns" ] && [ -s "$work/hl7port$conns" ] && break
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$work/port$conns" ] && [ -s "$work/hl7port$conns" ] ||
    { echo "mwl serve did not start:" >&2; cat "$work/serve$conns.log" >&2; exit 1; }
  echo
  echo "== $N orders over $conns connection(s): mwl serve pid $srv_pid, flags: ${*:-(defaults)}"
  # In the background so that a signal to this script is handled at once;
  # bounded: a stuck run ends after ten minutes.
  # shellcheck disable=SC2086
  timeout -k 5 600 "$hb" --hl7-port "$(cat "$work/hl7port$conns")" --port "$(cat "$work/port$conns")" \
    --orders "$N" --connections "$conns" --tag "C$conns" $common >"$work/c$conns.out" 2>&1 &
  hb_pid=$!
  wait "$hb_pid" || echo "hl7_bench exited with status $?"
  hb_pid=""
  cat "$work/c$conns.out"
  tail -n 1 "$work/c$conns.out" >"$work/c$conns.json"
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$srv_pid/status" 2>/dev/null || echo 0)
  echo "mwl serve peak RSS $((rss / 1024)) MiB"
  stop_server
  if [ -s "$work/serve$conns.log" ]; then
    echo "server log (last lines):"
    tail -n 5 "$work/serve$conns.log"
  fi
}
run 1 "$@"
run 4 "$@"

echo
python3 - "$work/c1.json" "$work/c4.json" "$N" "$floor" "$fs" <<'EOF'
import json, sys
try:
    a, b = (json.load(open(p)) for p in sys.argv[1:3])
except (OSError, ValueError) as e:
    sys.exit("no results to compare: %s" % e)
n, (floor_ms, floor_rate), fs = sys.argv[3], sys.argv[4].split(), sys.argv[5]

def verdict(value, goal, higher_better):
    if goal is None:
        return ""
    ok = value >= goal if higher_better else value <= goal
    return "met" if ok else "MISSED by %.0f %%" % (abs(value - goal) / goal * 100)

rows = [
    ("orders/s, 1 connection", "-", a["orders_per_s"], None, True, "%.0f"),
    ("orders/s, 4 connections", ">= 1000", b["orders_per_s"], 1000.0, True, "%.0f"),
    ("send->AA p50 ms, 1 conn", "-", a["ack"]["p50_ms"], None, False, "%.2f"),
    ("send->AA p99 ms, 1 conn", "<= 20", a["ack"]["p99_ms"], 20.0, False, "%.2f"),
    ("send->AA p50 ms, 4 conn", "-", b["ack"]["p50_ms"], None, False, "%.2f"),
    ("send->AA p99 ms, 4 conn", "<= 20", b["ack"]["p99_ms"], 20.0, False, "%.2f"),
    ("send->C-FIND p99 ms, 1 conn", "<= 25", a["visible"]["p99_ms"], 25.0, False, "%.2f"),
    ("send->C-FIND p99 ms, 4 conn", "<= 25", b["visible"]["p99_ms"], 25.0, False, "%.2f"),
]
print("%s orders per run; durable commit floor %s ms (%s commits/s one at a time) on %s" % (n, floor_ms, floor_rate, fs))
print("%-30s %-9s %-10s %s" % ("", "goal", "measured", ""))
for name, goal_s, v, goal, hb, fmt in rows:
    print("%-30s %-9s %-10s %s" % (name, goal_s, fmt % v, verdict(v, goal, hb)))
print("visibility samples: %d (1 conn), %d (4 conn); C-FIND poll every %d us"
      % (a["visible"]["count"], b["visible"]["count"], a["visible"]["poll_us"]))
bad = [r for r in (a, b) if r["status"] != 0 or r["not_aa"] or r["visible"]["missing"]]
if bad:
    print("ERRORS in %d run(s): see above" % len(bad))
    sys.exit(1)
EOF
