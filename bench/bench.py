#!/usr/bin/python3
"""fanout benchmark: records/s, MB/s of event JSON, peak RSS, cold start.

Two views: the whole process per event (a cold Lambda start, or a local
run), and one invocation in a warm process (`fanout invoke --repeat`, what
a Lambda container serves after its first event).

Generates a Kinesis event of N records of S bytes (random JSON payloads of
that size, base64 in the event as Lambda sends them), runs
`fanout invoke` with the `file` plugin writing to /dev/null, and reports
the median of several runs. The whole process is measured: start, plugin
load, reading and parsing the event, decoding, batching and writing.

    bench/bench.py [--build build] [--runs 5] [--sizes 10000x100,10000x1024]
"""
import argparse
import base64
import json
import os
import random
import resource
import statistics
import subprocess
import tempfile
import time

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/bench"


def make_event(n, size, seed=1):
    rnd = random.Random(seed)
    records = []
    for i in range(n):
        pad = size - len('{"i":%d,"p":""}' % i)
        payload = '{"i":%d,"p":"%s"}' % (i, "".join(
            rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(max(pad, 0))))
        seq = "4959033827149025660855969253836157109592157598913%07d" % i
        records.append({
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "pk-%d" % (i % 500),
                        "sequenceNumber": seq,
                        "data": base64.b64encode(payload.encode()).decode(),
                        "approximateArrivalTimestamp": 1545084650.987},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": "shardId-000000000006:" + seq, "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion": "us-east-1", "eventSourceARN": ARN})
    return json.dumps({"Records": records}).encode()


def run_once(fanout, env, cfg, event_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([fanout, "invoke", "--quiet", "--config", cfg, "--event", event_path],
                       env=env, capture_output=True)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit("fanout failed: " + r.stderr.decode())
    # ru_maxrss of the children is the largest any child reached (KiB)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_maxrss, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def run_warm(fanout, env, cfg, event_path, repeat):
    """Median time of one invocation in a warm process (--repeat)."""
    r = subprocess.run([fanout, "invoke", "--quiet", "--repeat", str(repeat), "--config", cfg,
                        "--event", event_path], env=env, capture_output=True)
    if r.returncode != 0:
        raise SystemExit("fanout failed: " + r.stderr.decode())
    times = [float(line.split()[2]) for line in r.stderr.decode().splitlines()
             if line.startswith("run ")]
    return statistics.median(times[1:] if len(times) > 1 else times) / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="10000x100,10000x1024")
    ap.add_argument("--collapse", default="none")
    args = ap.parse_args()
    fanout = os.path.join(args.build, "engine", "fanout")
    env = dict(os.environ, FANOUT_PLUGIN_PATH=os.path.join(args.build, "plugins", "file"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "mappings.json")
        with open(cfg, "w") as f:
            json.dump([{"sourceArn": ARN, "id": "bench", "type": "file",
                        "destination": "/dev/null", "active": True,
                        "collapse": args.collapse}], f)
        empty = os.path.join(tmp, "empty.json")
        with open(empty, "w") as f:
            f.write('{"Records":[]}')
        cold = statistics.median(run_once(fanout, env, cfg, empty)[0] for _ in range(args.runs))
        print("cold start (process start to exit, empty event): %.1f ms" % (cold * 1000))
        print("%-12s %10s %12s %10s %12s %10s %14s %10s" % (
            "records x B", "event MB", "records/s", "MB/s", "CPU s", "peak RSS",
            "warm records/s", "warm MB/s"))
        for spec in args.sizes.split(","):
            n, size = (int(x) for x in spec.split("x"))
            event = make_event(n, size)
            path = os.path.join(tmp, "event.json")
            with open(path, "wb") as f:
                f.write(event)
            runs = [run_once(fanout, env, cfg, path) for _ in range(args.runs)]
            t = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            rss = max(r[1] for r in runs)
            mb = len(event) / 1e6
            warm = run_warm(fanout, env, cfg, path, 10)
            print("%-12s %10.2f %12.0f %10.1f %12.3f %7.1f MB %14.0f %10.1f" % (
                spec, mb, n / t, mb / t, cpu, rss / 1024, n / warm, mb / warm))


if __name__ == "__main__":
    main()
