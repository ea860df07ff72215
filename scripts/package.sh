#!/usr/bin/env bash
# Build the Lambda packages (provided.al2023) of fanout:
#
#   scripts/package.sh [--arch x86_64|arm64] [BUILD_DIR]
#
# A release build in BUILD_DIR (default build-package-<arch>; arm64 is
# cross-compiled with Debian's gcc-aarch64-linux-gnu and :arm64 libraries,
# see scripts/setup.sh --package), then in dist/ (or $FANOUT_DIST_DIR):
#
#   fanout-function-<arch>.zip       bootstrap (the engine) at the root, and
#                                    under lib/ the libraries it needs that
#                                    the image lacks (/var/task/lib)
#   fanout-plugins-<arch>.zip        layer: fanout/plugins/<type>.so for every
#                                    plugin, lib/ what they need (/opt/lib)
#   fanout-plugin-<type>-<arch>.zip  layer: that plugin and only its libraries
#   SHA256SUMS                       of every fanout-*.zip in dist/
#
# "What the image lacks" is every library not named in
# scripts/package/al2023-provides.txt: those are copied from this machine
# (Debian 12), never glibc, libstdc++ or libgcc_s. Our own objects get a
# RUNPATH to their lib/ ($ORIGIN-relative) and bundled libraries $ORIGIN, so
# they also load when LD_LIBRARY_PATH is not Lambda's. The zips are
# deterministic: sorted entries, fixed times (SOURCE_DATE_EPOCH, default
# 2000-01-01), modes 0755 / 0644, no extra fields.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

arch=$(uname -m)
[ "$arch" = aarch64 ] && arch=arm64
build=""
while [ $# -gt 0 ]; do
    case "$1" in
    --arch)
        arch=${2:?--arch needs x86_64 or arm64}
        shift 2
        ;;
    --arch=*)
        arch=${1#--arch=}
        shift
        ;;
    -h | --help)
        sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "package: unknown option $1" >&2
        exit 2
        ;;
    *)
        build=$1
        shift
        ;;
    esac
done
case "$arch" in
x86_64) triplet=x86_64-linux-gnu ;;
arm64) triplet=aarch64-linux-gnu ;;
*)
    echo "package: --arch is x86_64 or arm64, not $arch" >&2
    exit 2
    ;;
esac
build=${build:-build-package-$arch}
dist=${FANOUT_DIST_DIR:-$src/dist}
provides=$src/scripts/package/al2023-provides.txt
host=$(uname -m)
cross=0
[ "$triplet" = "$host-linux-gnu" ] || cross=1

fail() {
    echo "package: $*" >&2
    exit 1
}
for tool in zip readelf patchelf; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup.sh --package)"
done
strip="strip"
[ "$cross" = 1 ] && strip=$triplet-strip

# ---- the build -------------------------------------------------------------
setup_args=(--buildtype=release -Dtests=false -Dwerror=true)
if [ "$cross" = 1 ]; then
    [ "$arch" = arm64 ] || fail "cross-compiling is for arm64 only"
    command -v "$triplet-gcc" >/dev/null ||
        fail "$triplet-gcc is missing (scripts/setup.sh --package)"
    # libmemcached-dev:arm64 and libsasl2-dev:arm64 cannot be installed next
    # to their amd64 twins (libsasl2-dev is not Multi-Arch: same), so their
    # .pc files and .so links come from the .debs, unpacked here; the headers
    # are the same files as the installed amd64 ones (/usr/include), and the
    # runtime libraries (libmemcached11:arm64, libsasl2-2:arm64) are installed.
    deps=$(realpath -m "$build").deps
    if [ ! -f "$deps/cross.ini" ]; then
        rm -rf "$deps"
        mkdir -p "$deps/debs" "$deps/lib/pkgconfig"
        for p in libmemcached-dev libsasl2-dev; do
            if [ -f "/usr/lib/$triplet/pkgconfig/${p%-dev}.pc" ]; then
                continue
            fi
            (cd "$deps/debs" && apt-get download "$p:arm64" >/dev/null 2>&1) ||
                fail "apt-get download $p:arm64 failed"
            dpkg-deb -x "$deps/debs/${p}_"*_arm64.deb "$deps/x"
        done
        if [ -d "$deps/x" ]; then
            for pc in "$deps/x/usr/lib/$triplet/pkgconfig/"*.pc; do
                sed -e "s|^libdir=.*|libdir=$deps/lib|" \
                    -e "s|-L/usr/lib/$triplet|-L$deps/lib|" "$pc" >"$deps/lib/pkgconfig/${pc##*/}"
            done
            for l in "$deps/x/usr/lib/$triplet/"*.so; do
                real=$(readlink "$l")
                [ -e "/usr/lib/$triplet/$real" ] ||
                    fail "/usr/lib/$triplet/$real is missing (install the :arm64 runtime library)"
                ln -sf "/usr/lib/$triplet/$real" "$deps/lib/${l##*/}"
            done
        fi
        cat >"$deps/cross.ini" <<EOF
[properties]
pkg_config_libdir = ['$deps/lib/pkgconfig', '/usr/lib/$triplet/pkgconfig', '/usr/share/pkgconfig']
EOF
    fi
    setup_args+=(--cross-file "$src/scripts/package/aarch64-linux-gnu.ini"
        --cross-file "$deps/cross.ini")
fi
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "${setup_args[@]}" >"$build.setup.log" 2>&1 ||
        {
            tail -20 "$build.setup.log" >&2
            fail "meson setup $build failed (log: $build.setup.log)"
        }
    rm -f "$build.setup.log"
fi
bt=$(/usr/bin/python3 -c 'import json, sys
print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"][0])' \
    "$build/meson-info/intro-buildoptions.json" 2>/dev/null || true)
[ "$bt" = release ] || fail "$build is a $bt build, not release: give another BUILD_DIR"
ninja -C "$build" >"$build.ninja.log" 2>&1 || {
    grep -E "error|warning" "$build.ninja.log" | head -20 >&2
    fail "the build failed (log: $build.ninja.log)"
}
rm -f "$build.ninja.log"

# ---- what goes in ----------------------------------------------------------
declare -A provided=()
while read -r a b _; do
    case "$a" in
    '' | '#'* | max) ;;
    *) provided[$a]=$b ;;
    esac
done <"$provides"

needed() { # needed FILE: its DT_NEEDED entries, and the libraries it loads
    # at run time (libcurl for the bootstrap), named by its .note.dlopen
    # ELF note (freedesktop dlopen metadata: a JSON array with "soname" lists)
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
    readelf -p .note.dlopen "$1" 2>/dev/null | grep -o '"soname":\[[^]]*\]' |
        grep -o '"[^"]*"' | grep -v '"soname"' | tr -d '"' || true
}
find_lib() { # find_lib SONAME: this machine's copy, for the target arch
    local d
    for d in "/usr/lib/$triplet" "/lib/$triplet"; do
        [ -e "$d/$1" ] && {
            echo "$d/$1"
            return 0
        }
    done
    return 1
}
closure() { # closure FILE...: sets libs to the sonames they need (transitively) that the image lacks
    local -A seen=()
    local queue=("$@") f n p
    libs=()
    while [ "${#queue[@]}" -gt 0 ]; do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        for n in $(needed "$f"); do
            [ -n "${provided[$n]:-}" ] && continue
            [ -n "${seen[$n]:-}" ] && continue
            seen[$n]=1
            p=$(find_lib "$n") || fail "$n (needed by ${f##*/}) is neither provided nor found here"
            libs+=("$n")
            queue+=("$p")
        done
    done
    [ "${#libs[@]}" -eq 0 ] || mapfile -t libs < <(printf '%s\n' "${libs[@]}" | LC_ALL=C sort)
}

plugins=()
for so in "$build"/plugins/*/*.so; do
    plugins+=("$so")
done
[ "${#plugins[@]}" -gt 0 ] || fail "no plugin under $build/plugins"

stage=$(mktemp -d "${TMPDIR:-/tmp}/fanout-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT

put_own() { # put_own FILE DEST RUNPATH: strip, set RUNPATH
    install -m 0755 "$1" "$2"
    "$strip" --strip-unneeded "$2"
    patchelf --set-rpath "$3" "$2"
}
put_libs() { # put_libs DIR SONAME...: bundled libraries, under their sonames
    local n
    mkdir -p "$1"
    for n in "${@:2}"; do
        install -m 0755 "$(readlink -f "$(find_lib "$n")")" "$1/$n"
        patchelf --set-rpath '$ORIGIN' "$1/$n"
    done
}
epoch=${SOURCE_DATE_EPOCH:-946684800}
make_zip() { # make_zip DIR ZIP: deterministic zip of DIR's contents (ZIP absolute)
    find "$1" -exec touch -h -d "@$epoch" {} +
    find "$1" -type d -exec chmod 0755 {} +
    rm -f "$2"
    (cd "$1" && find . -mindepth 1 ! -type d -printf '%P\n' | LC_ALL=C sort |
        TZ=UTC zip -q -X -D -@ "$2")
}

mkdir -p "$dist"
dist=$(realpath "$dist")
rm -f "$dist"/fanout-*-"$arch".zip

# The function: bootstrap and its libraries (/var/task/lib is on Lambda's
# LD_LIBRARY_PATH, before /opt/lib), so it runs with any set of layers.
fn=$stage/function
mkdir -p "$fn"
put_own "$build/engine/fanout" "$fn/bootstrap" '$ORIGIN/lib'
closure "$fn/bootstrap"
[ "${#libs[@]}" -eq 0 ] || put_libs "$fn/lib" "${libs[@]}"
make_zip "$fn" "$dist/fanout-function-$arch.zip"
echo "package: fanout-function-$arch.zip: bootstrap${libs[*]:+, lib/: ${libs[*]}}"

# Every plugin in one layer, and one layer per plugin.
all=$stage/plugins
mkdir -p "$all/fanout/plugins"
for so in "${plugins[@]}"; do
    type=$(basename "$so" .so)
    put_own "$so" "$all/fanout/plugins/$type.so" '$ORIGIN/../../lib'
    one=$stage/plugin-$type
    mkdir -p "$one/fanout/plugins"
    cp -p "$all/fanout/plugins/$type.so" "$one/fanout/plugins/"
    closure "$one/fanout/plugins/$type.so"
    [ "${#libs[@]}" -eq 0 ] || put_libs "$one/lib" "${libs[@]}"
    make_zip "$one" "$dist/fanout-plugin-$type-$arch.zip"
done
closure "$all"/fanout/plugins/*.so
[ "${#libs[@]}" -eq 0 ] || put_libs "$all/lib" "${libs[@]}"
make_zip "$all" "$dist/fanout-plugins-$arch.zip"
echo "package: fanout-plugins-$arch.zip: ${#plugins[@]} plugins, lib/: ${libs[*]}"

(cd "$dist" && LC_ALL=C sha256sum fanout-*.zip >SHA256SUMS)
echo "package: $(cd "$dist" && du -b fanout-*-"$arch".zip | awk '{printf "%s %d B; ", $2, $1}')"
