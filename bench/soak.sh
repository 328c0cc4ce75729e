#!/bin/sh
# Soak (issue 11): minutes of mixed plain and TLS traffic, stalling peers and
# sequential associations against one `mwl serve`, and whether it leaks.
# Run by hand:
#
#   bench/soak.sh [soak options] [-- mwl serve options]
#
#   soak options   passed to build/bench/soak (see its --help): --duration S
#                  (default 300), --clients N (64), --stallers N (8),
#                  --sequential N (100000), --warmup S (10), ...
#   serve options  appended to the server's flags below, e.g. -- --workers 2
#
# Makes, in a temporary folder, a CA, a server and a client certificate
# (openssl, RSA 2048) and a database of 10,000 `mwl demo` items (~300 a day
# over 34 days around today, 8 stations: a station's day is ~37 items).
# Starts `mwl serve` with a plain and a TLS listener (client certificates
# required), room for every client (--max-associations 256, --max-pending
# 128, --max-peer-connections 512: everything comes from 127.0.0.1), and
# short timers so the stallers are closed within seconds (associate, idle
# and ACSE timeouts 2 s). Then runs soak with the server's PID; its exit
# status is this script's, 1 also when the server then does not exit 0 on
# SIGTERM. The server and soak are killed by PID on every way out (also on
# SIGINT/SIGTERM); the server's log is kept as $SOAK_LOG (default
# build/soak-serve.log), and a summary of its lines is printed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
mwl=$build/mwl
soak=$build/bench/soak
[ -x "$mwl" ] && [ -x "$soak" ] || { echo "build first: cmake --build build -j2" >&2; exit 2; }
command -v openssl >/dev/null || { echo "soak.sh: openssl is needed for the certificates" >&2; exit 2; }

duration=300
args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    --duration) duration=$2; shift 2 ;;
    --help|-h) "$soak" --help; exit 0 ;;
    --*) args="$args $1 $2"; shift 2 ;;
    *) echo "soak.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
# what is left in "$@" goes to mwl serve

work=$(mktemp -d)
log=${SOAK_LOG:-$build/soak-serve.log}
srv_pid="" soak_pid=""
cleanup() {
  [ -n "$soak_pid" ] && kill "$soak_pid" 2>/dev/null
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

# Certificates: a CA, and a server and a client certificate it signs.
ossl() { openssl "$@" >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.crt" -days 2 -subj "/CN=mwl soak CA"
for who in server client; do
  ossl req -newkey rsa:2048 -nodes -keyout "$work/$who.key" -out "$work/$who.csr" -subj "/CN=mwl soak $who"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/$who.ext"
  ossl x509 -req -in "$work/$who.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/$who.crt" -days 2 -extfile "$work/$who.ext"
done

db=$work/soak.db
"$mwl" demo --db "$db" --count 10000 --days 34 --start "$(date -d '-17 days' +%Y%m%d)" >/dev/null

"$mwl" serve --db "$db" --bind 127.0.0.1 --port 0 --port-file "$work/port" \
  --tls-port 0 --tls-port-file "$work/tlsport" --tls-cert "$work/server.crt" --tls-key "$work/server.key" \
  --tls-ca "$work/ca.crt" --tls-verify-peer \
  --max-associations 256 --max-pending 128 --max-peer-connections 512 \
  --associate-timeout 2 --idle-timeout 2 --acse-timeout 2 --log-level warn "$@" 2>"$log" &
srv_pid=$!
for _ in $(seq 100); do
  [ -s "$work/port" ] && [ -s "$work/tlsport" ] && break
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done
[ -s "$work/port" ] && [ -s "$work/tlsport" ] || { echo "mwl serve did not start:" >&2; cat "$log" >&2; exit 1; }
port=$(cat "$work/port") tlsport=$(cat "$work/tlsport")
echo "mwl serve pid $srv_pid, port $port, TLS port $tlsport; log $log"

# Bounded: the run plus half an hour for the sequential associations and
# the pauses (soak waits for them; 100,000 take a few minutes).
# In the background so that a signal to this script is handled at once.
status=0
# shellcheck disable=SC2086
timeout -k 5 $((${duration%.*} + 1800)) "$soak" --port "$port" --tls-port "$tlsport" \
  --ca "$work/ca.crt" --cert "$work/client.crt" --key "$work/client.key" \
  --server-pid "$srv_pid" --duration "$duration" $args &
soak_pid=$!
wait "$soak_pid" || status=$?
soak_pid=""

# Stop the server as an operator would (SIGTERM) and wait for it (at most
# 20 s), so that its exit status and anything it writes on the way out (a
# LeakSanitizer report in a sanitized build) are part of the result.
echo
if kill -0 "$srv_pid" 2>/dev/null; then
  kill "$srv_pid"
  for _ in $(seq 200); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
  srv_status=0
  if kill -0 "$srv_pid" 2>/dev/null; then
    echo "mwl serve did not exit within 20 s of SIGTERM" >&2
    srv_status=timeout status=1
  else
    wait "$srv_pid" || srv_status=$?
  fi
  srv_pid=""
  echo "mwl serve exit status after SIGTERM: $srv_status"
  [ "$srv_status" = 0 ] || status=1
else
  echo "mwl serve is gone" >&2
  status=1
fi
echo "server log: $(grep -c . "$log" || true) lines, $(grep -ci 'error' "$log" || true) with 'error'"
# The kinds of lines, without peers and numbers, most frequent first.
sed -E 's/^[^]]*\] //; s/[0-9]+/N/g' "$log" | sort | uniq -c | sort -rn | head -n 12
exit "$status"
