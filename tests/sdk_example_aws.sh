#!/usr/bin/env bash
# The second SDK example, sdk/examples/eventbridge (an AWS destination on
# fanout_batch_send): built out of tree with its Makefile and nothing but
# pkg-config (fanout-sdk, the uninstalled .pc meson writes, and jansson),
# loaded by `fanout plugins --json`, then sent events through `fanout invoke`
# to tests/servers/events_service.py, a loopback PutEvents endpoint that
# checks every signature with botocore. One entry the endpoint fails
# (InternalFailure) is retried, then reported; a message that is not a JSON
# object is refused.
#
# Environment (set by tests/meson.build): FANOUT_BUILD_DIR, FANOUT_SOURCE_DIR.
set -euo pipefail

fail() {
    echo "sdk-example-aws: $*" >&2
    exit 1
}

: "${FANOUT_BUILD_DIR:?FANOUT_BUILD_DIR is not set (run through meson test)}"
src=${FANOUT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
export FANOUT_SOURCE_DIR="$src"
example="$src/sdk/examples/eventbridge"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fanout-sdk-example-aws.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export PKG_CONFIG_PATH="$FANOUT_BUILD_DIR/meson-uninstalled"
pkg-config --exists fanout-sdk || fail "no fanout-sdk.pc under $PKG_CONFIG_PATH"
# Libs: must reach libfanout-sdk (fanout_batch_send) for an out-of-tree link.
make -s -C "$tmp" -f "$example/Makefile" \
    CFLAGS="-O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes" ||
    fail "the example did not build (pkg-config --libs fanout-sdk: $(pkg-config --libs fanout-sdk))"
[[ -f "$tmp/eventbridge.so" ]] || fail "the Makefile made no eventbridge.so"
exports=$(nm -D --defined-only "$tmp/eventbridge.so" | awk '{print $3}')
[[ "$exports" == fanout_plugin_v1 ]] ||
    fail "eventbridge.so exports more than fanout_plugin_v1: $(echo $exports)"

exec /usr/bin/python3 - "$tmp" <<'PY'
import json, os, subprocess, sys, urllib.request

tmp = sys.argv[1]
src = os.environ["FANOUT_SOURCE_DIR"]
sys.path.insert(0, os.path.join(src, "tests", "integration"))
import harness  # noqa: E402


def die(msg):
    sys.exit("sdk-example-aws: " + msg)


def plugins():
    r = harness.run_fanout(["plugins", "--json"], env={"FANOUT_PLUGIN_PATH": tmp})
    eb = [p for p in json.loads(r.stdout) if p.get("type") == "eventbridge"]
    if len(eb) != 1 or eb[0].get("ok") is not True:
        die("fanout plugins --json: eventbridge not loaded: %s" % r.stdout.decode())


plugins()
creds = os.path.join(tmp, "creds.json")
with open(creds, "w") as f:
    json.dump([{"accessKeyId": harness.ACCESS_KEY, "secretAccessKey": harness.SECRET_KEY}], f)
srv = subprocess.Popen([sys.executable, os.path.join(src, "tests", "servers",
                                                     "events_service.py"),
                        "--credentials", creds, "--parent-pid", str(os.getpid())],
                       stdout=subprocess.PIPE)
try:
    url = "http://127.0.0.1:%d" % int(srv.stdout.readline())

    def get(path):
        with urllib.request.urlopen(url + path, timeout=10) as r:
            return json.loads(r.read())

    # 12 JSON objects (two requests: 10 + 2), one that the endpoint fails,
    # one that is not an object
    recs = [("k%d" % i, json.dumps({"n": i}).encode()) for i in range(12)]
    recs += [("kf", b'{"fanoutFail": true}'), ("kx", b"[1, 2]")]
    m = harness.mapping("eb", "eventbridge", "orders-bus", eventSource="com.example.fanout",
                        detailType="Order Placed", collapse="none")
    env = harness.aws_env(EVENTBRIDGE=url)
    env.update({"FANOUT_LOG_LEVEL": "debug", "FANOUT_PLUGIN_PATH": tmp})
    r, failed = harness.invoke(tmp, [m], harness.kinesis_event(recs), env=env)
    err = r.stderr.decode()
    got = get("/__received")
    stats = get("/__stats")
    problems = []
    if sorted(failed) != ["1012", "1013"]:
        problems.append("batchItemFailures %r, expected 1012 and 1013" % failed)
    if stats["authFailures"]:
        problems.append("%d requests failed their signature check" % stats["authFailures"])
    if stats["failedEntries"] < 2:
        problems.append("the failed entry was not retried (%r)" % stats)
    if sorted(e["detail"]["n"] for e in got) != list(range(12)):
        problems.append("events received: %r" % [e["detail"] for e in got])
    for e in got:
        want = ("orders-bus", "com.example.fanout", "Order Placed", "us-east-1",
                harness.ACCESS_KEY)
        have = (e["bus"], e["source"], e["detailType"], e["region"], e["accessKeyId"])
        if have != want:
            problems.append("event %r, expected %r" % (have, want))
            break
    for want in ("PutEvents to orders-bus: 10 messages", "PutEvents to orders-bus: 3 messages",
                 "InternalFailure", "MalformedDetail"):
        if want not in err:
            problems.append("the log does not say %r" % want)
    if problems:
        die("; ".join(problems) + "\n--- fanout stderr:\n" + err)
    print("sdk-example-aws: eventbridge.so built out of tree, loaded, %d events delivered "
          "and signed, the failed entry retried (%d failures) and reported"
          % (len(got), stats["failedEntries"]))
finally:
    srv.kill()
    srv.wait()
PY
