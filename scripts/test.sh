#!/usr/bin/env bash
# Set up everything the tests need, then run every test:
#   1. the default build's Check suites, integration tests and node tests;
#   2. the unit suites under valgrind (no leaks, no errors);
#   3. the unit suites in an AddressSanitizer + UndefinedBehaviorSanitizer build;
#      the unit suites and event tests in a -Dsimd=false build (the portable
#      paths arm64 takes, run on x86 too);
#   4. the C formatting check (clang-format);
#   5. every libFuzzer target for a short time (scripts/fuzz.sh, clang with
#      ASan + UBSan; FANOUT_FUZZ_SECONDS per target, default 10);
#   6. the Lambda packages (tests/package/check.sh: scripts/package.sh, the
#      ELF checks, the packages run in a chroot as Lambda would), for the
#      architectures in FANOUT_PACKAGE_ARCHS (default "x86_64 arm64"; arm64 is
#      cross-compiled and run under qemu-user).
# Servers a test needs are started by that test on loopback ports and stopped
# by it. Prints "N passed, N failed" last.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

passed=0
failed=0

# Warnings are errors here (not in the defaults users and packagers build with).
meson configure build -Dwerror=true
ninja -C build | tail -1

# The plugin loader refuses a plugin that others than root or this user could
# change, checking each directory up to / (README: "Who may change a
# plugin"). A checkout under a group- or world-writable directory (or made
# with umask 002) would make every plugin test fail for that reason alone:
# say so loudly and let the tests opt out, as a developer would.
insecure=""
d="$PWD/build/plugins"
while :; do
    if [ -e "$d" ]; then
        mode=$(stat -c '%a' "$d")
        owner=$(stat -c '%u' "$d")
        sticky=$(( 8#$mode & 8#1000 ))
        if [ "$owner" != 0 ] && [ "$owner" != "$(id -u)" ]; then
            insecure="$d is owned by uid $owner"
        elif [ -d "$d" ] && [ "$sticky" = 0 ] && (( 8#$mode & 8#022 )); then
            insecure="$d is writable by group or others (mode $mode)"
        fi
    fi
    [ "$d" = / ] && break
    d=$(dirname "$d")
done
if [ -n "$insecure" ]; then
    echo "test: WARNING: $insecure, so the loader would refuse every plugin built" \
        "here; the tests run with FANOUT_ALLOW_INSECURE_PLUGINS=1 (the loader's own" \
        "tests clear it)"
    export FANOUT_ALLOW_INSECURE_PLUGINS=1
fi
count() { # count <build dir> [<log>]: add up meson's test log (a setup's
          # run writes its own: testlog-<setup>.json)
    local log="$1/meson-logs/${2:-testlog.json}"
    [ -f "$log" ] || return 0
    local p f
    p=$(grep -c '"result": "OK"' "$log" || true)
    f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
    passed=$((passed + p))
    failed=$((failed + f))
}
run() { # run <label> <command...>: keep going, count failures
    echo "== $1"
    shift
    "$@" || true
}

run "tests (debugoptimized build)" meson test -C build --print-errorlogs
count build

run "unit tests under valgrind" meson test -C build --setup=valgrind --suite unit --print-errorlogs
count build testlog-valgrind.json

if [ ! -d build-san ]; then
    meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debug -Dwerror=true >/dev/null
fi
meson configure build-san -Dwerror=true
ninja -C build-san | tail -3
run "all tests under ASan + UBSan" meson test -C build-san --print-errorlogs
count build-san

# What users and packagers build: -O3 (release) and plain with Debian's
# hardening flags, warnings as errors, so an optimisation-only warning is
# caught here first.
for bt in release plain; do
    echo "== $bt build (-Dwerror=true)"
    dir=build-$bt
    if [ ! -d "$dir" ]; then
        if [ "$bt" = plain ]; then
            CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
                LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
                meson setup "$dir" --buildtype=plain -Dtests=false -Dwerror=true >/dev/null
        else
            meson setup "$dir" --buildtype=release -Dtests=false -Dwerror=true >/dev/null
        fi
    fi
    if ninja -C "$dir" >"/tmp/fanout-$bt.log" 2>&1; then
        passed=$((passed + 1))
    else
        grep -E "error|warning" "/tmp/fanout-$bt.log" | head -20
        failed=$((failed + 1))
    fi
done

# The portable paths (arm64's: no SSE2, SSSE3 or AVX2) run here too: a
# -Dsimd=false build (debugoptimized, warnings as errors), its unit suites
# and the integration tests that read events (invoke, and filter: its unit
# and integration tests share the name).
echo "== portable build (-Dsimd=false): unit suites, invoke, filter"
if [ ! -d build-portable ]; then
    meson setup build-portable -Dsimd=false -Dwerror=true >/dev/null
fi
meson configure build-portable -Dsimd=false -Dwerror=true
if ninja -C build-portable >/tmp/fanout-portable.log 2>&1; then
    # test names: those of the unit suite, and the integration tests by name
    portable_tests=$(meson test -C build-portable --list --suite unit 2>/dev/null |
        sed -n 's|^fanout:unit / ||p')
    # shellcheck disable=SC2086 # one word per test name
    run "tests (portable build)" meson test -C build-portable --print-errorlogs \
        $portable_tests invoke
    count build-portable
else
    grep -E "error|warning" /tmp/fanout-portable.log | head -20
    failed=$((failed + 1))
fi

echo "== formatting (clang-format)"
if clang-format --dry-run --Werror $(git ls-files '*.c' '*.h' | grep -v '^tests/fixtures/abi-1.0/') 2>/tmp/fanout-format.log; then
    passed=$((passed + 1))
else
    head -40 /tmp/fanout-format.log
    failed=$((failed + 1))
fi

# Each fuzz target counts as one test: it passes when it found nothing.
fuzz_log=$(mktemp)
scripts/fuzz.sh "${FANOUT_FUZZ_SECONDS:-10}" 2>&1 | tee "$fuzz_log" || true
if fuzz_counts=$(tail -1 "$fuzz_log" | grep -E '^[0-9]+ passed, [0-9]+ failed$'); then
    passed=$((passed + $(cut -d' ' -f1 <<<"$fuzz_counts")))
    failed=$((failed + $(cut -d' ' -f3 <<<"$fuzz_counts")))
else
    echo "fuzz: no result line"
    failed=$((failed + 1))
fi
rm -f "$fuzz_log"

# Each package check counts as one test.
echo "== Lambda packages"
pkg_log=$(mktemp)
tests/package/check.sh 2>&1 | tee "$pkg_log" || true
if pkg_counts=$(tail -1 "$pkg_log" | grep -E '^[0-9]+ passed, [0-9]+ failed'); then
    passed=$((passed + $(cut -d' ' -f1 <<<"$pkg_counts")))
    failed=$((failed + $(cut -d' ' -f3 <<<"$pkg_counts" | tr -d ,)))
else
    echo "package checks: no result line"
    failed=$((failed + 1))
fi
rm -f "$pkg_log"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
