#!/usr/bin/env bash
# Set up a Debian machine for fanout and build it.
#
#   scripts/setup.sh           build dependencies, build, install to /usr/local
#   scripts/setup.sh --package also what scripts/package.sh needs: zip,
#                              patchelf, and for arm64 Debian's cross compiler
#                              and the :arm64 libraries (multiarch: adds the
#                              arm64 architecture to dpkg), qemu-user-static
#   scripts/setup.sh --test    also what the tests need (valgrind, Node.js and
#                              the npm packages of tests/node, python3-botocore,
#                              redis, memcached, clang-format, and clang with
#                              its libFuzzer runtime for scripts/fuzz.sh), and
#                              all of --package (tests/package/check.sh)
#
# Installs only what is missing; run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
want_package=0
[ "${1:-}" = "--test" ] && want_tests=1 && want_package=1
[ "${1:-}" = "--package" ] && want_package=1

build_pkgs=(gcc libc6-dev pkg-config meson ninja-build protobuf-c-compiler
    libprotobuf-c-dev libjansson-dev libcurl4-openssl-dev libssl-dev
    libhiredis-dev libmemcached-dev check)
test_pkgs=(valgrind python3 python3-botocore python3-yaml nodejs npm redis-server memcached openssl
    clang-format clang libclang-rt-dev dpkg-dev)

# libmemcached-dev:arm64 and libsasl2-dev:arm64 are not co-installable with
# their amd64 twins (installing them removes those): scripts/package.sh
# unpacks their .debs in its own directory instead.
package_pkgs=(zip patchelf unzip)
if [ "$want_package" = 1 ] && [ "$(dpkg --print-architecture)" = amd64 ]; then
    package_pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
        libjansson-dev:arm64 libprotobuf-c-dev:arm64 libcurl4-openssl-dev:arm64
        libssl-dev:arm64 libhiredis-dev:arm64 libhashkit-dev:arm64 libmemcached11:arm64
        libmemcachedutil2:arm64 libsasl2-2:arm64)
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        echo "setup: adding the arm64 architecture to dpkg (multiarch, for the arm64 packages)"
        $sudo dpkg --add-architecture arm64
    fi
fi

pkgs=("${build_pkgs[@]}")
[ "$want_tests" = 1 ] && pkgs+=("${test_pkgs[@]}")
[ "$want_package" = 1 ] && pkgs+=("${package_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
# node and npm may come from elsewhere than Debian's packages: keep those.
if command -v node >/dev/null && command -v npm >/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do
        [ "$p" = nodejs ] || [ "$p" = npm ] || filtered+=("$p")
    done
    missing=("${filtered[@]}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --no-remove \
        "${missing[@]}" >/dev/null
fi

if [ "$want_tests" = 1 ]; then
    # npm packages the tests use, pinned by tests/node/package-lock.json
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

[ "$want_package" = 1 ] && [ "$want_tests" = 0 ] && exit 0

[ -d build ] || meson setup build --prefix=/usr/local >/dev/null
ninja -C build | tail -3
if [ "$want_tests" = 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo meson install -C build --quiet >/dev/null
    echo "setup: installed $(command -v fanout) and its plugins"
fi
