#!/usr/bin/env bash
# The SDK example, built the way a third party builds a plugin: out of tree,
# with only its Makefile and the fanout-sdk pkg-config file (the uninstalled
# one meson writes), then loaded by the real engine through
# `fanout plugins --json`.
#
# Environment (set by tests/meson.build): FANOUT_BUILD_DIR, FANOUT_SOURCE_DIR.
set -euo pipefail

fail() {
    echo "sdk-example: $*" >&2
    exit 1
}

: "${FANOUT_BUILD_DIR:?FANOUT_BUILD_DIR is not set (run through meson test)}"
src=${FANOUT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
export FANOUT_SOURCE_DIR="$src"
example="$src/sdk/examples/hello"
fanout="$FANOUT_BUILD_DIR/engine/fanout"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fanout-sdk-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export PKG_CONFIG_PATH="$FANOUT_BUILD_DIR/meson-uninstalled"
pkg-config --exists fanout-sdk ||
    fail "no fanout-sdk.pc under $PKG_CONFIG_PATH"
cflags=$(pkg-config --cflags fanout-sdk)
printf '#include <fanout/plugin.h>\n' | ${CC:-cc} $cflags -E -x c - >/dev/null 2>&1 ||
    fail "pkg-config --cflags fanout-sdk gives '$cflags', which does not reach" \
        "<fanout/plugin.h> (see sdk/meson.build)"

# Warnings are errors here too: the example is what plugin authors copy.
make -s -C "$tmp" -f "$example/Makefile" \
    CFLAGS="-O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes" ||
    fail "the example did not build"
[[ -f "$tmp/hello.so" ]] || fail "the Makefile made no hello.so"

# Hidden visibility: the descriptor is the one symbol it exports.
exports=$(nm -D --defined-only "$tmp/hello.so" | awk '{print $3}')
[[ "$exports" == fanout_plugin_v1 ]] ||
    fail "hello.so exports more than fanout_plugin_v1: $(echo $exports)"

[[ -x "$fanout" ]] || fail "$fanout is not built"
out=$(FANOUT_PLUGIN_PATH="$tmp" "$fanout" plugins --json) ||
    fail "fanout plugins --json failed: $out"

/usr/bin/python3 - "$tmp/hello.so" "$out" <<'PY'
import json, os, sys

path, out = sys.argv[1], sys.argv[2]
try:
    plugins = json.loads(out)
except ValueError as e:
    sys.exit("sdk-example: fanout plugins --json printed no JSON (%s):\n%s" % (e, out))
if not isinstance(plugins, list):
    sys.exit("sdk-example: expected a JSON array, got:\n" + out)
hello = [p for p in plugins if isinstance(p, dict) and p.get("type") == "hello"]
if len(hello) != 1:
    sys.exit("sdk-example: expected one hello entry, got %d:\n%s" % (len(hello), out))
h = hello[0]
problems = []
if h.get("ok") is not True:
    problems.append("not loaded: %s" % h.get("error"))
if os.path.realpath(h.get("path", "")) != os.path.realpath(path):
    problems.append("path %r, expected %r" % (h.get("path"), path))
if h.get("ok") is True:
    import re
    hdr = open(os.path.join(os.environ["FANOUT_SOURCE_DIR"], "sdk", "include", "fanout",
                            "plugin.h")).read()
    want = "%s.%s" % (re.search(r"#define FANOUT_ABI_MAJOR (\d+)", hdr).group(1),
                      re.search(r"#define FANOUT_ABI_MINOR (\d+)", hdr).group(1))
    if h.get("abi") != want:
        problems.append("abi %r, expected %r (the SDK header's)" % (h.get("abi"), want))
    if h.get("version") != "1.0.0":
        problems.append("version %r, expected '1.0.0'" % h.get("version"))
    if not h.get("description"):
        problems.append("no description")
if problems:
    sys.exit("sdk-example: hello: " + "; ".join(problems) + "\n" + json.dumps(h))
print("sdk-example: hello.so built out of tree and loaded: " + json.dumps(h))
PY
