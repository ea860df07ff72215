#!/usr/bin/env bash
# Build and run the libFuzzer targets (tests/fuzz/fuzz_<name>.c) under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]
#
# Every target (or only those named) runs for SECONDS (default 60) on a copy
# of its seed corpus (tests/fuzz/corpus/<name>/; the tree is not modified),
# with its dictionary when tests/fuzz/dict/<name>.dict exists. libFuzzer
# first runs every seed, so the seed corpora are also a regression suite;
# SECONDS = 0 runs the seeds only. A target passes when it found nothing
# (no crash, sanitizer report, failed check, leak, per-input timeout or
# memory blow-up). A finding is kept in build-fuzz/findings/<name>/ and its
# path and the command that reproduces it are printed. The last line is
# "N passed, N failed"; the exit status is non-zero when a target failed.
#
# Environment:
#   FANOUT_FUZZ_BUILD    build directory (default build-fuzz)
#   FANOUT_FUZZ_CC       the compiler (default clang; libFuzzer is clang's)
#   FANOUT_FUZZ_JOBS     targets run at once (default 2)
#   FANOUT_FUZZ_TIMEOUT  seconds one input may take (default 10)
#   FANOUT_FUZZ_RSS_MB   memory limit of a target, in MB (default 2048)
#   FANOUT_FUZZ_OPTIONS  more meson options for a new build directory, e.g.
#                        -Dsimd=false (with its own FANOUT_FUZZ_BUILD): the
#                        portable paths arm64 takes
#
# The build (meson, in its own directory): CC=clang, -Dfuzz=true,
# -Dtests=false, -Db_sanitize=address,undefined, -Db_lundef=false,
# debugoptimized. Warnings stay errors there too.
set -uo pipefail
cd "$(dirname "$0")/.."

# One block, read whole before it runs: editing or checking out this file
# while it runs does not change what runs.
{

secs=${1:-60}
[ $# -gt 0 ] && shift
case "$secs" in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS] [NAME...]" >&2
    exit 2
    ;;
esac
build=${FANOUT_FUZZ_BUILD:-build-fuzz}
cc=${FANOUT_FUZZ_CC:-clang}
jobs=${FANOUT_FUZZ_JOBS:-2}
timeout=${FANOUT_FUZZ_TIMEOUT:-10}
rss=${FANOUT_FUZZ_RSS_MB:-2048}
read -r -a options <<<"${FANOUT_FUZZ_OPTIONS:-}"

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in tests/fuzz/fuzz_*.c; do
        n=${f#tests/fuzz/fuzz_}
        names+=("${n%.c}")
    done
fi
for n in "${names[@]}"; do
    if [ ! -f "tests/fuzz/fuzz_$n.c" ]; then
        echo "fuzz: no target $n (tests/fuzz/fuzz_$n.c)" >&2
        exit 2
    fi
done

all_failed() { # the build is unusable: every target fails
    echo
    echo "0 passed, ${#names[@]} failed"
    exit 1
}

if ! command -v "$cc" >/dev/null; then
    echo "fuzz: $cc not found (Debian: apt-get install clang libclang-rt-dev)"
    all_failed
fi
mkdir -p "$build"
if [ ! -f "$build/build.ninja" ]; then
    if ! CC=$cc meson setup "$build" -Dfuzz=true -Dtests=false \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized "${options[@]}" >"$build/fuzz-setup.log" 2>&1; then
        tail -20 "$build/fuzz-setup.log"
        echo "fuzz: meson setup failed"
        all_failed
    fi
fi
targets=()
for n in "${names[@]}"; do
    targets+=("tests/fuzz/fuzz_$n")
done
if ! ninja -C "$build" -j"$jobs" "${targets[@]}" >"$build/fuzz-build.log" 2>&1; then
    grep -a -E -A5 'error|FAILED' "$build/fuzz-build.log" | head -40
    echo "fuzz: build failed (whole log: $build/fuzz-build.log)"
    all_failed
fi

logs="$build/fuzz-logs"
mkdir -p "$logs"
# this run's verdicts (another run may share the build directory)
results=$(mktemp -d "$build/fuzz-results.XXXXXX")
trap 'rm -rf "$results"' EXIT

run_one() { # run_one NAME: fuzz one target, its verdict in $results/NAME
    local name=$1
    local exe="$build/tests/fuzz/fuzz_$name"
    local work="$build/fuzz-work/$name"
    local findings="$build/findings/$name"
    local log="$logs/$name.log"
    rm -rf "$work"
    mkdir -p "$work/corpus" "$findings"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        cp -p "tests/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null
    fi
    touch "$work/start"
    local args=(-timeout="$timeout" -rss_limit_mb="$rss" -malloc_limit_mb="$rss"
        -print_final_stats=1 -artifact_prefix="$findings/")
    if [ "$secs" = 0 ]; then
        args+=(-runs=0)
    else
        args+=(-max_total_time="$secs")
    fi
    [ -f "tests/fuzz/dict/$name.dict" ] && args+=(-dict="tests/fuzz/dict/$name.dict")
    local rc=0
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:print_summary=1 \
        ASAN_OPTIONS=detect_leaks=1:print_summary=1 \
        "$exe" "${args[@]}" "$work/corpus" >"$log" 2>&1 || rc=$?

    local runs rate cov corpus
    runs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -1 | grep -oE '[0-9]+$')
    rate=$(grep -a '^stat::average_exec_per_sec:' "$log" | tail -1 | grep -oE '[0-9]+$')
    cov=$(grep -aoE ' cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    corpus=$(find "$work/corpus" -type f | wc -l)
    local msg
    if [ "$rc" = 0 ]; then
        msg="fuzz $name: passed (${runs:-?} inputs, ${rate:-?}/s, coverage ${cov:-?}, corpus $corpus)"
        echo pass >"$results/$name"
    else
        msg="fuzz $name: FAILED (exit $rc after ${runs:-?} inputs; log $log)"
        local what
        what=$(grep -a -m3 -E '^==[0-9]+==ERROR|fuzz check failed|runtime error|^SUMMARY|ERROR: libFuzzer' "$log")
        [ -n "$what" ] && msg+=$'\n'"$(sed 's/^/    /' <<<"$what")"
        local found=0 f
        for f in $(find "$findings" -type f -newer "$work/start" | sort); do
            found=1
            msg+=$'\n'"    finding: $f"
            msg+=$'\n'"    reproduce: $exe $f"
        done
        [ "$found" = 0 ] && msg+=$'\n'"    (no input saved: see the log)"
        echo fail >"$results/$name"
    fi
    echo "$msg"
}

echo "== fuzzing ${#names[@]} targets, ${secs} s each, $jobs at a time (ASan + UBSan)"
running=0
for n in "${names[@]}"; do
    run_one "$n" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

passed=0
failed=0
for n in "${names[@]}"; do
    if [ "$(cat "$results/$n" 2>/dev/null)" = pass ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
exit
}
