#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build (make fuzz) for a set time and
# prints one line per target. Usage:
#
#   scripts/fuzz_run.sh [TARGET...]        (default: every BUILD_FUZZ/fuzz/fuzz_*)
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60; the acceptance run uses 600)
#   FUZZ_JOBS     targets run at once (default 2)
#   BUILD_FUZZ    the fuzz build folder (default build-fuzz)
#   FUZZ_ARGS     more libFuzzer flags for every target (e.g. -only_ascii=1)
#
# Each target runs with -max_total_time, a -max_len of its own (below), the
# committed corpus fuzz/corpus/<target> as a seed folder it never writes to,
# and a scratch corpus BUILD_FUZZ/corpus/<target> that keeps what it finds
# from one run to the next. ASan+UBSan come with the fuzz build. Logs are in
# BUILD_FUZZ/fuzz-logs/<target>.log.
#
# Output, one line per target as it finishes:
#   fuzz_pdu        ok    runs 1843021  cov 412 ft 1290  new 87  60s
#   fuzz_ul         FAIL  runs 20117  cov 1003 ft 3410  new 12  4s  crash fuzz/corpus/fuzz_ul/crash-<sha256>  log ...
# A crash, leak, timeout or out-of-memory input is copied into
# fuzz/corpus/<target>/crash-<sha256 of the input>, so that once the bug is
# fixed the corpus replay (ctest -L fuzz) keeps it fixed. Exit status: 0
# when no target failed, 1 otherwise, 2 on a usage error.
set -u

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
build=${BUILD_FUZZ:-build-fuzz}
extra=${FUZZ_ARGS:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2

case $seconds in '' | *[!0-9]*) echo "fuzz_run: FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac
case $jobs in '' | *[!0-9]* | 0) echo "fuzz_run: FUZZ_JOBS must be a number >= 1" >&2; exit 2 ;; esac

# Largest input libFuzzer makes, per target: room for what the parser reads
# (an A-ASSOCIATE-RQ with many contexts, a worklist file with a few SPS)
# without spending the time on huge inputs.
max_len_of() {
    case $1 in
    fuzz_charset) echo 1024 ;;
    fuzz_config | fuzz_query | fuzz_allow | fuzz_rest) echo 4096 ;;
    fuzz_mllp) echo 4096 ;;
    fuzz_pdu | fuzz_ul | fuzz_dimse | fuzz_hl7 | fuzz_hl7_map) echo 8192 ;;
    fuzz_dataset | fuzz_part10 | fuzz_import | fuzz_json) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

targets=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t=$(basename "$t")
        if [ ! -x "$build/fuzz/$t" ]; then
            echo "fuzz_run: no fuzzer $build/fuzz/$t (run make fuzz-build first)" >&2
            exit 2
        fi
        targets+=("$t")
    done
else
    for f in "$build"/fuzz/fuzz_*; do
        [ -f "$f" ] && [ -x "$f" ] && targets+=("$(basename "$f")")
    done
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz_run: no fuzzers in $build/fuzz (run make fuzz-build first)" >&2
    exit 2
fi

logs=$build/fuzz-logs
mkdir -p "$logs"

# Runs one target and writes its result line to $logs/<target>.result.
run_one() {
    local t=$1
    local log=$logs/$t.log res=$logs/$t.result
    local scratch=$build/corpus/$t artifacts=$build/fuzz-artifacts/$t/
    local seeds=fuzz/corpus/$t
    mkdir -p "$scratch" "$artifacts"
    rm -f "$artifacts"/*
    local dirs=("$scratch")
    [ -d "$seeds" ] && dirs+=("$seeds")
    local start end rc
    start=$(date +%s)
    # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$build/fuzz/$t" -max_total_time="$seconds" -max_len="$(max_len_of "$t")" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts" $extra "${dirs[@]}" >"$log" 2>&1
    rc=$?
    end=$(date +%s)

    local runs cov ft new
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]*' | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -E '^#[0-9]+' "$log" | grep -o 'ft: [0-9]*' | tail -n 1 | cut -d' ' -f2)
    local line
    line=$(printf '%-14s %%s  runs %s  cov %s ft %s  new %s  %ss' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" \
        "${new:-?}" "$((end - start))")

    # Every input libFuzzer kept as a finding becomes a corpus file.
    local found=() a kind sha dest
    for a in "$artifacts"*; do
        [ -f "$a" ] || continue
        kind=$(basename "$a")
        kind=${kind%%-*}
        case $kind in crash | leak | timeout | oom) ;; *) continue ;; esac
        sha=$(sha256sum "$a" | cut -c1-64)
        dest=fuzz/corpus/$t/crash-$sha
        mkdir -p "fuzz/corpus/$t"
        cp "$a" "$dest"
        found+=("$kind $dest")
    done
    if [ ${#found[@]} -gt 0 ]; then
        # shellcheck disable=SC2059  # the format was built above
        printf "$line  %s  log %s\n" FAIL "$(IFS=,; echo "${found[*]}")" "$log" >"$res"
    elif [ $rc -ne 0 ]; then
        # shellcheck disable=SC2059
        printf "$line  exit %s, no input saved  log %s\n" FAIL "$rc" "$log" >"$res"
    else
        # shellcheck disable=SC2059
        printf "$line\n" "ok  " >"$res"
    fi
    cat "$res"
}

echo "fuzz_run: ${#targets[@]} targets, ${seconds}s each, $jobs at a time (logs in $logs)"
running=0
for t in "${targets[@]}"; do
    rm -f "$logs/$t.result"
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait

failed=0
for t in "${targets[@]}"; do
    if [ ! -f "$logs/$t.result" ] || grep -q ' FAIL ' "$logs/$t.result"; then
        failed=$((failed + 1))
    fi
done
echo "fuzz_run: ${#targets[@]} targets, $failed failed"
[ "$failed" -eq 0 ]
