#!/usr/bin/env bash
# Proves that KPL aggregates made by the real AWS library decode: regenerates
# the fixture with aws-kinesis-agg (tests/node/gen-kpl.js) into a temporary
# directory, runs test_kpl on it, then checks that the committed copy
# (tests/data/kpl/agg-fixture.json, used when node is absent) is current.
#
# Usage: tests/kpl_node.sh PATH/TO/test_kpl
# Needs node, and `npm ci` run once in tests/node.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
node_dir=$here/node
committed=$here/data/kpl/agg-fixture.json

die() {
    echo "kpl_node: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || { echo "usage: $0 PATH/TO/test_kpl" >&2; exit 2; }
test_kpl=$1
[[ -x $test_kpl ]] || die "$test_kpl is not an executable (build test_kpl first)"
command -v node >/dev/null || die "node is not installed (Debian package: nodejs)"

agg_pkg=$node_dir/node_modules/aws-kinesis-agg/package.json
[[ -f $agg_pkg ]] ||
    die "aws-kinesis-agg is not installed in $node_dir/node_modules: run 'npm ci' in $node_dir"
pinned=$(node -p 'require(process.argv[1]).dependencies["aws-kinesis-agg"]' "$node_dir/package.json")
installed=$(node -p 'require(process.argv[1]).version' "$agg_pkg")
[[ $installed == "$pinned" ]] ||
    die "aws-kinesis-agg $installed is installed but $pinned is pinned: run 'npm ci' in $node_dir"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fixture=$tmp/agg-fixture.json
node "$node_dir/gen-kpl.js" "$fixture"
echo "kpl_node: fixture regenerated with aws-kinesis-agg $installed"

export FANOUT_TESTDATA=${FANOUT_TESTDATA:-$here/data}
FANOUT_KPL_FIXTURE=$fixture "$test_kpl"

if ! cmp -s "$fixture" "$committed"; then
    die "$committed is not what aws-kinesis-agg $installed makes now; refresh it with:" \
        "node tests/node/gen-kpl.js tests/data/kpl/agg-fixture.json"
fi
echo "kpl_node: committed fixture is current"
