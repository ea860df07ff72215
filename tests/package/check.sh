#!/usr/bin/env bash
# The Lambda package checks, run by scripts/test.sh (each line counts as a
# test):
#
#   tests/package/check.sh [ARCH...]     (default: $FANOUT_PACKAGE_ARCHS, or
#                                         "x86_64 arm64"; arm64 alone on arm64)
#
# For each architecture:
#   package      scripts/package.sh --arch ARCH (release build in
#                build-package-ARCH, zips in build-package-check/dist-ARCH)
#   hello layer  the SDK example built out of tree with pkg-config (as a third
#                party would, cross-compiled for arm64) into a layer zip of its
#                own: fanout/plugins/hello.so
#   elf          tests/package/elf_check.py on every zip and the hello layer:
#                glibc <= 2.34, every needed library bundled or provided
#   lambda run   tests/package/lambda_run.py: function + all-plugins layer +
#                hello layer in a chroot made of the image's libraries, serving
#                invocations to file, redis, memcached and hello targets
#                (arm64: under qemu-aarch64-static)
#   lambda run, one layer per plugin
#                the same with the file, redis and memcached layers only
#
# lambda_run.py needs root; as another user it is skipped (exit 77), which
# counts as a failure when CI is set. Prints "N passed, N failed" last.
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
provides=$src/scripts/package/al2023-provides.txt

# arm64 is cross-compiled on x86_64; an arm64 machine builds only arm64.
default_archs="x86_64 arm64"
[ "$(uname -m)" = aarch64 ] && default_archs=arm64
archs=("$@")
[ "${#archs[@]}" -gt 0 ] || read -r -a archs <<<"${FANOUT_PACKAGE_ARCHS:-$default_archs}"

passed=0
failed=0
skipped=0
result() { # result NAME SECONDS STATUS
    case "$3" in
    0)
        echo "package-check: PASS $1 (${2}s)"
        passed=$((passed + 1))
        ;;
    77)
        if [ -n "${CI:-}" ]; then
            echo "package-check: FAIL $1: skipped (not root), which CI does not allow"
            failed=$((failed + 1))
        else
            echo "package-check: SKIP $1 (not root)"
            skipped=$((skipped + 1))
        fi
        ;;
    *)
        echo "package-check: FAIL $1 (${2}s)"
        failed=$((failed + 1))
        ;;
    esac
}
step() { # step NAME COMMAND...
    local name=$1 t0=$SECONDS rc
    shift
    "$@"
    rc=$?
    result "$name" $((SECONDS - t0)) "$rc"
    return "$rc"
}

hello_layer() { # hello_layer ARCH BUILD ZIP
    local arch=$1 build=$2 zip=$3 cc=cc tmp rc=0
    [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ] && cc=aarch64-linux-gnu-gcc
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/fanout-hello-layer.XXXXXX")
    (
        set -e
        export PKG_CONFIG_PATH=$src/$build/meson-uninstalled
        make -s -C "$tmp" -f "$src/sdk/examples/hello/Makefile" CC="$cc" \
            CFLAGS="-O2 -Wall -Wextra -Werror"
        mkdir -p "$tmp/layer/fanout/plugins"
        install -m 0755 "$tmp/hello.so" "$tmp/layer/fanout/plugins/hello.so"
        rm -f "$zip"
        cd "$tmp/layer" && zip -q -X "$zip" fanout/plugins/hello.so
    ) || rc=1
    rm -rf "$tmp"
    return "$rc"
}

for arch in "${archs[@]}"; do
    build=build-package-$arch
    dist=$src/build-package-check/dist-$arch
    if ! step "package $arch" env FANOUT_DIST_DIR="$dist" scripts/package.sh --arch "$arch" "$build"; then
        continue
    fi
    hello=$dist/fanout-layer-hello-$arch.zip
    step "hello layer $arch" hello_layer "$arch" "$build" "$hello" || hello=""
    step "elf $arch" tests/package/elf_check.py --arch "$arch" --provides "$provides" \
        "$dist"/fanout-*-"$arch".zip
    step "lambda run $arch" tests/package/lambda_run.py --arch "$arch" --provides "$provides" \
        --function "$dist/fanout-function-$arch.zip" --layer "$dist/fanout-plugins-$arch.zip" \
        ${hello:+--layer "$hello" --hello}
    step "lambda run $arch, one layer per plugin" tests/package/lambda_run.py --arch "$arch" \
        --provides "$provides" --function "$dist/fanout-function-$arch.zip" \
        --layer "$dist/fanout-plugin-file-$arch.zip" --layer "$dist/fanout-plugin-redis-$arch.zip" \
        --layer "$dist/fanout-plugin-memcached-$arch.zip"
done

echo "$passed passed, $failed failed${skipped:+, $skipped skipped}" | sed 's/, 0 skipped$//'
[ "$failed" = 0 ]
