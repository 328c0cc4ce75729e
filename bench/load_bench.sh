#!/bin/sh
# Interactive worklist queries under mixed load (issue 10). Run by hand:
#
#   bench/load_bench.sh [N] [load_bench options] [-- mwl serve options]
#
#   N                 items in the database (default 1000000)
#   load_bench options, passed to both runs: --duration S (default 20),
#                     --warmup S (default 3), --interactive Q, --query KIND,
#                     --station AE, ... (see build/bench/load_bench --help);
#                     --scanners S and --write-rate R (defaults 4 and 100)
#                     apply to run (b) only
#   serve options     e.g. -- --workers 2 --find-batch 32
#
# Makes a database of N `mwl demo` items (about 300 a day around today over
# 8 stations) in $BENCH_DATA (default build/bench-data), or reuses one that
# holds exactly N demo items and some for today; rows a previous run's
# writer added are deleted first. Starts `mwl serve` on it (port 0), then
# runs load_bench twice against it:
#   (a) interactive only: Q associations repeating the station/today query;
#   (b) the same, plus S associations repeating the unindexed scan
#       PatientName=*ZZZ* and a writer adding R items/s to the database;
# and prints both side by side, with the server's RSS at the end. The server
# is killed by PID on every way out.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
mwl=$build/mwl
lb=$build/bench/load_bench
data=${BENCH_DATA:-$build/bench-data}
[ -x "$mwl" ] && [ -x "$lb" ] || { echo "build first: cmake --build build -j2" >&2; exit 2; }

N=1000000
case "${1:-}" in [0-9]*) N=$1; shift ;; esac
duration=20 warmup=3 scanners=4 rate=100
common=""
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --scanners) scanners=$2; shift 2 ;;
    --write-rate) rate=$2; shift 2 ;;
    --*) common="$common $1 $2"; shift 2 ;;
    *) echo "load_bench.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
# what is left in "$@" goes to mwl serve

mkdir -p "$data"
db=$data/load-$N.db
work=$(mktemp -d)
srv_pid="" lb_pid=""
cleanup() {
  [ -n "$lb_pid" ] && kill "$lb_pid" 2>/dev/null
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
today=$(date +%Y%m%d)

# Demo items stored and items for today: "demo_count today_count".
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
  echo "reusing $db ($N demo items, ${state#* } today)"
  # the writer's items from earlier runs go (their SPS rows cascade)
  python3 - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
c.execute("PRAGMA foreign_keys = ON")
n = c.execute("DELETE FROM sps WHERE source = 'load_bench'").rowcount
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
if n:
    print("  removed %d items a previous run's writer added" % n)
EOF
else
  rm -f "$db" "$db-wal" "$db-shm"
  days=$(( N / 300 )); [ "$days" -lt 30 ] && days=30
  start=$(date -d "-$(( days / 2 )) days" +%Y%m%d)
  echo "generating $N items over $days days from $start into $db ..."
  t0=$(ms)
  "$mwl" demo --db "$db" --count "$N" --days "$days" --start "$start" >/dev/null
  t1=$(ms)
  echo "  mwl demo: $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s = $(( N * 1000 / (t1 - t0 + 1) )) items/s"
fi

"$mwl" serve --db "$db" --port 0 --port-file "$work/port" --aet MWL --log-level warn "$@" 2>"$work/serve.log" &
srv_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
[ -s "$work/port" ] || { echo "mwl serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
port=$(cat "$work/port")
echo "mwl serve pid $srv_pid port $port, flags: ${*:-(defaults)}"

# Bounded: the run's own length plus ten minutes for the operations still
# running at its end (load_bench waits for them: a scan of 1M rows under
# load, or a query queued behind scans, can take a minute).
limit=$(awk -v d="$duration" -v w="$warmup" 'BEGIN { printf "%d", d + w + 600 }')
run() {
  name=$1; shift
  echo
  echo "== ($name)"
  # In the background so that a signal to this script is handled at once
  # (a shell runs traps only between commands, and `wait` is one).
  # shellcheck disable=SC2086
  timeout -k 5 "$limit" "$lb" --port "$port" --db "$db" --items "$N" --duration "$duration" --warmup "$warmup" \
    $common "$@" >"$work/$name.out" 2>&1 &
  lb_pid=$!
  wait "$lb_pid" || echo "load_bench exited with status $?"
  lb_pid=""
  cat "$work/$name.out"
  tail -n 1 "$work/$name.out" >"$work/$name.json"
}
run a --scanners 0 --write-rate 0
run b --scanners "$scanners" --write-rate "$rate"

rss=$(awk '/VmRSS/ {print $2}' "/proc/$srv_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$srv_pid/status")

echo
python3 - "$work/a.json" "$work/b.json" "$N" "$scanners" "$rate" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
n, s, r = sys.argv[3:6]
print("N = %s items, %d interactive associations (%s query), %.0f s measured"
      % (format(int(n), ","), a["interactive"]["threads"], a["interactive"]["query"], a["duration_s"]))
rows = [
    ("", "(a) interactive only", "(b) + %s scans + writer %s/s" % (s, r)),
    ("interactive p50 ms", "%.3f" % a["interactive"]["latency"]["p50_ms"], "%.3f" % b["interactive"]["latency"]["p50_ms"]),
    ("interactive p99 ms", "%.3f" % a["interactive"]["latency"]["p99_ms"], "%.3f" % b["interactive"]["latency"]["p99_ms"]),
    ("interactive p99.9 ms", "%.3f" % a["interactive"]["latency"]["p999_ms"], "%.3f" % b["interactive"]["latency"]["p999_ms"]),
    ("interactive max ms", "%.3f" % a["interactive"]["latency"]["max_ms"], "%.3f" % b["interactive"]["latency"]["max_ms"]),
    ("interactive queries/s", "%.1f" % a["interactive"]["qps"], "%.1f" % b["interactive"]["qps"]),
    ("matches per query", "%.1f" % a["interactive"]["matches_per_query"], "%.1f" % b["interactive"]["matches_per_query"]),
    ("queries ended late", str(a["interactive"]["ended_after_window"]), str(b["interactive"]["ended_after_window"])),
    ("scans", "-", "%d (p50 %.0f ms)" % (b["scan"]["duration"]["count"], b["scan"]["duration"]["p50_ms"])),
    ("writer items/s", "-", "%.1f (txn p99 %.1f ms)" % (b["writer"]["rate"], b["writer"]["txn"]["p99_ms"])),
    ("errors", str(a["errors"] + a["failed_associations"]), str(b["errors"] + b["failed_associations"])),
]
for k, x, y in rows:
    print("%-22s %-22s %s" % (k, x, y))
EOF
echo "mwl serve RSS at the end: $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
