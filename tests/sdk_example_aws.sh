#!/usr/bin/env bash
# The second SDK example, sdk/examples/eventbridge (an AWS destination on
# fanout_batch_send): built out of tree with its Makefile and nothing but
# pkg-config (fanout-sdk, the uninstalled .pc meson writes, and jansson),
# loaded by `fanout plugins --json`, then sent events through `fanout invoke`
# to tests/servers/aws_service.py (its eventbridge module: PutEvents, every
# signature checked with botocore). A fault rule ("partial", index 0 of every
# request) fails the first entry of each request with InternalFailure: the
# first message of each of the two batches is retried, then reported. A
# message that is not a JSON object is refused.
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
# In a sanitizer build libfanout-sdk.a is instrumented: so must the plugin be.
san=""
if nm "$FANOUT_BUILD_DIR/sdk/libfanout-sdk.a" 2>/dev/null | grep __asan_init >/dev/null; then
    san="-fsanitize=address,undefined"
fi
make -s -C "$tmp" -f "$example/Makefile" LDFLAGS="$san" \
    CFLAGS="-O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes $san" ||
    fail "the example did not build (pkg-config --libs fanout-sdk: $(pkg-config --libs fanout-sdk))"
[[ -f "$tmp/eventbridge.so" ]] || fail "the Makefile made no eventbridge.so"
exports=$(nm -D --defined-only "$tmp/eventbridge.so" | awk '{print $3}' | grep -v "^__odr_asan\." || true)
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
srv = subprocess.Popen([sys.executable, os.path.join(src, "tests", "servers", "aws_service.py"),
                        "--credentials", creds, "--parent-pid", str(os.getpid()),
                        "--max-lifetime", "300"],
                       stdout=subprocess.PIPE)
try:
    url = "http://127.0.0.1:%d" % int(srv.stdout.readline())

    def ctl(path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url + path, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    # entry 0 of every PutEvents fails (InternalFailure), retries included;
    # batches of 10 messages, sent together, each retried on its own: the
    # first message of each batch fails every time
    ctl("/__faults", {"service": "eventbridge", "kind": "partial", "indexes": [0],
                      "count": -1})
    # 14 JSON objects (two requests: 10 + 4) of which two fail, then one
    # that is not an object
    objs = [json.dumps({"n": i}).encode() for i in range(12)]
    objs = [b'{"fails": 1}'] + objs[:9] + [b'{"fails": 2}'] + objs[9:]
    recs = [("k%d" % i, o) for i, o in enumerate(objs)] + [("kx", b"[1, 2]")]
    m = harness.mapping("eb", "eventbridge", "orders-bus", eventSource="com.example.fanout",
                        detailType="Order Placed", collapse="none")
    env = harness.aws_env(EVENTBRIDGE=url)
    env.update({"FANOUT_LOG_LEVEL": "debug", "FANOUT_PLUGIN_PATH": tmp})
    r, failed = harness.invoke(tmp, [m], harness.kinesis_event(recs), env=env)
    err = r.stderr.decode()
    got = ctl("/__received?service=eventbridge")
    stats = ctl("/__stats")
    calls = stats["by_service"].get("eventbridge", {}).get("PutEvents", {}).get("count", 0)
    problems = []
    if sorted(failed) != ["1000", "1010", "1014"]:
        problems.append("batchItemFailures %r, expected 1000, 1010 and 1014" % failed)
    if stats["auth_failures"]:
        problems.append("%d requests failed their signature check" % stats["auth_failures"])
    if calls < 4 or stats["faults_by_kind"]["partial"] != calls:
        problems.append("the failed entries were not retried (%d PutEvents, %d with a "
                        "failed entry)" % (calls, stats["faults_by_kind"]["partial"]))
    if sorted(e["detail"].get("n", -1) for e in got) != list(range(12)):
        problems.append("events received: %r" % [e["detail"] for e in got])
    for e in got:
        want = ("orders-bus", "com.example.fanout", "Order Placed", "us-east-1",
                harness.ACCESS_KEY)
        have = (e["bus"], e["source"], e["detailType"], e["region"], e["accessKeyId"])
        if have != want:
            problems.append("event %r, expected %r" % (have, want))
            break
    for want in ("PutEvents to orders-bus: 10 messages", "PutEvents to orders-bus: 4 messages",
                 "InternalFailure", "MalformedDetail"):
        if want not in err:
            problems.append("the log does not say %r" % want)
    if problems:
        die("; ".join(problems) + "\n--- fanout stderr:\n" + err)
    print("sdk-example-aws: eventbridge.so built out of tree, loaded, %d events delivered "
          "and signed, the failed entries retried (%d PutEvents) and reported"
          % (len(got), calls))
finally:
    srv.kill()
    srv.wait()
PY
