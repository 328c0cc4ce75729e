#!/bin/sh
# Worklist query benchmark: mwl serve against DCMTK's wlmscpfs on the same
# items, measured in the same run. Run by hand, never in CI:
#
#   bench/query_bench.sh [N] [--no-dcmtk]        (default N = 10000)
#
# Builds N realistic items with `mwl demo` (about 300 a day around today
# over 8 stations, so a station has a realistic day), serves them with
# `mwl serve` and (unless N > 20000 or --no-dcmtk) with wlmscpfs from the
# same items exported as .wl files, then times six queries. Each query's
# cost is its marginal cost on an open association: (t(2R) - t(R)) / R with
# find_bench repeating R C-FINDs, so process start-up and association set-up
# do not count. "floor" is what the client itself spends decoding one
# query's responses. Also prints import speed and the server's peak RSS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
mwl=$build/mwl
fb=$build/bench/find_bench
N=${1:-10000}
dcmtk=1
[ "${2:-}" = "--no-dcmtk" ] && dcmtk=0
[ "$N" -gt 20000 ] && dcmtk=0
command -v wlmscpfs >/dev/null 2>&1 || dcmtk=0
[ -x "$mwl" ] && [ -x "$fb" ] || { echo "build first: make build" >&2; exit 2; }

work=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

ms() { date +%s%3N; }
day_offset() { date -d "$1 days" +%Y%m%d; }

# A department schedules about 300 procedures a day over 8 stations: spread
# the N items over N/300 days (at least 30), half past and half future.
days=$(( N / 300 )); [ "$days" -lt 30 ] && days=30
start=$(day_offset -$(( days / 2 )))
today=$(date +%Y%m%d)
week_end=$(day_offset 6)
echo "generating $N items over $days days from $start ..."
t0=$(ms)
"$mwl" demo --db "$work/mwl.db" --count "$N" --days "$days" --start "$start" >/dev/null
t1=$(ms)
echo "  mwl demo (generate + store): $(( N * 1000 / (t1 - t0 + 1) )) items/s"

# Import speed: (up to 100000 of) the items as .wl files into a fresh
# database. wlmscpfs serves the same files.
sample=$N; [ "$sample" -gt 100000 ] && sample=100000
mkdir -p "$work/wl/MWL"
"$mwl" export --db "$work/mwl.db" --date all --limit "$sample" --out-dir "$work/wl/MWL" >/dev/null
t0=$(ms)
"$mwl" import --db "$work/import.db" "$work/wl/MWL" >/dev/null
t1=$(ms)
echo "  mwl import: $sample files in $(( t1 - t0 )) ms = $(( sample * 1000 / (t1 - t0 + 1) )) items/s"
rm -f "$work"/import.db*
touch "$work/wl/MWL/lockfile"

pick() { "$mwl" ls --db "$work/mwl.db" --date all --limit 1 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['$1'])"; }
pid=$(pick patientId)
acc=$(pick accession)

"$mwl" serve --db "$work/mwl.db" --port 0 --port-file "$work/mwl.port" --aet MWL --log-level warn 2>"$work/serve.log" &
mwl_pid=$!
pids="$pids $mwl_pid"
for _ in $(seq 100); do [ -s "$work/mwl.port" ] && break; sleep 0.1; done
mwl_port=$(cat "$work/mwl.port")

if [ $dcmtk = 1 ]; then
  wl_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  wlmscpfs -dfp "$work/wl" "$wl_port" >"$work/wlm.log" 2>&1 &
  pids="$pids $!"
  sleep 1
fi

# marginal PORT NAME ARGS...: prints "ms_per_query matches floor_ms"
marginal() {
  port=$1; shift
  one=$("$fb" 127.0.0.1 "$port" MWL 1 "$@") || { echo "FAIL"; return; }
  t=$(echo "$one" | sed 's/.*elapsed_ms=\([0-9.]*\).*/\1/')
  # R such that t(R) is about 1.5 s, between 1 and 2000
  R=$(awk -v t="$t" 'BEGIN { r = int(1500 / (t + 0.01)); if (r < 1) r = 1; if (r > 2000) r = 2000; print r }')
  a=$("$fb" 127.0.0.1 "$port" MWL "$R" "$@")
  b=$("$fb" 127.0.0.1 "$port" MWL $((2 * R)) "$@")
  ta=$(echo "$a" | sed 's/.*elapsed_ms=\([0-9.]*\).*/\1/')
  tb=$(echo "$b" | sed 's/.*elapsed_ms=\([0-9.]*\).*/\1/')
  m=$(echo "$a" | sed 's/.*matches=\([0-9]*\).*/\1/')
  f=$(echo "$a" | sed 's/.*decode_floor_ms=\([0-9.]*\).*/\1/')
  awk -v ta="$ta" -v tb="$tb" -v r="$R" -v m="$m" -v f="$f" 'BEGIN { printf "%.3f %d %.3f\n", (tb - ta) / r, m, f }'
}

printf "\nN = %s items; per-query marginal cost on an open association (ms)\n" "$N"
printf "%-34s %8s %10s %8s %12s %8s\n" query matches mwl floor wlmscpfs ratio
run() {
  name=$1; shift
  set -- $(marginal "$mwl_port" "$@") "$@"
  mt=$1 mm=$2 mf=$3; shift 3
  if [ $dcmtk = 1 ]; then
    set -- $(marginal "$wl_port" "$@")
    wt=$1
    printf "%-34s %8s %10s %8s %12s %8s\n" "$name" "$mm" "$mt" "$mf" "$wt" \
      "$(awk -v a="$wt" -v b="$mt" 'BEGIN { if (b > 0) printf "%.0fx", a / b; else print "-" }')"
  else
    printf "%-34s %8s %10s %8s %12s %8s\n" "$name" "$mm" "$mt" "$mf" - -
  fi
}
run "station CT01, today, CT" --station CT01 --date "$today" --modality CT
run "exact Patient ID" --patient-id "$pid"
run "exact Accession Number" --accession "$acc"
run "PatientName MUL*" --patient-name "MUL*"
run "one week, modality MR" --date "$today-$week_end" --modality MR
[ "$N" -le 20000 ] && run "universal (every item)"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$mwl_pid/status")
echo "mwl serve peak RSS: $((rss / 1024)) MiB"
