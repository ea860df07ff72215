#!/usr/bin/python3
"""fanout benchmark on events shaped as Lambda delivers them.

Events (generated, seeded; every Kinesis record has Lambda's full envelope:
eventID, eventSourceARN, invokeIdentityArn, approximateArrivalTimestamp...):

  empty      {"Records":[]}
  k8000x100  8,000 Kinesis records of 100 B payloads (about 5.7 MB, near
             Lambda's 6 MB payload cap)
  k10000x200 10,000 Kinesis records of 200 B (about 8.5 MB)
  ddb        DynamoDB Streams records (INSERT/MODIFY/REMOVE with Keys,
             NewImage, OldImage of S, N, M, L, BOOL attributes), delivered
             with convertDDB
  kpl        Kinesis records each holding a KPL aggregate (made by
             aws-kinesis-agg through tests/servers/kpl_aggregate.js),
             delivered with deaggregate

For each event, with one `file` target writing to /dev/null:
  cold    the whole process (start, plugin load, read, parse, decode, batch,
          write, exit): CPU (user + sys of the child) and wall, medians
  warm    one invocation in a warm process (`fanout invoke --repeat N`, the
          median of runs 2..N): ms, records/s, MB/s of event JSON
  RSS     the child's peak RSS (ru_maxrss from wait4), the largest of the runs

--e2e adds one 10,000 x 200 B event delivered to Kinesis (kinesalite), SQS
(local-aws-sqs) and Redis (redis-server) at once on loopback: the fanout
process's CPU, wall and peak RSS, and the requests each server received
against the fewest the services' limits allow; `--e2e-only kinesis` (or
any comma-separated subset of kinesis,sqs,redis) delivers to those alone;
`--latency-ms 20` holds every Kinesis and SQS answer 20 ms (in a proxy, each
connection on its own), as services across a network do: the wall time then
shows how many calls were kept in flight. `--session-token 1000` signs every
request with a session token of that many characters, as under Lambda (whose
role credentials always carry one, about 1 KB): each request then signs and
sends it (the emulators do not check it). `--instructions` adds one run
under callgrind and reports the fanout process's instructions: unlike CPU
time, a count this machine's noise does not move (valgrind has no SHA-NI,
so hashing weighs more in it than on the CPU).

    bench/bench.py [--build build-release] [--runs 5] [--repeat 30]
                   [--events empty,k8000x100,...] [--e2e] [--markdown]
                   [--e2e-only kinesis,sqs,redis] [--latency-ms MS] [--perf FILE]
                   [--session-token CHARS] [--instructions] [--keep-servers]

A script, not a test: nothing fails on a time.
"""
import argparse
import base64
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/bench"
DDB_ARN = ("arn:aws:dynamodb:us-east-1:123456789012:table/bench/stream/"
           "2026-01-01T00:00:00.000")
ROLE = "arn:aws:iam::123456789012:role/lambda-kinesis-role"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
EVENTS = ("empty", "k8000x100", "k10000x200", "ddb", "kpl")
TARGETS = ("kinesis", "sqs", "redis")


def _payload(rnd, i, size):
    pad = size - len('{"id":"%d","p":""}' % i)
    return ('{"id":"%d","p":"%s"}' % (i, "".join(rnd.choice(ALPHABET)
                                                for _ in range(max(pad, 0))))).encode()


def _kinesis_record(i, data, pk, arn=ARN):
    seq = "4959033827149025660855969253836157109592157598913%07d" % i
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": pk,
                        "sequenceNumber": seq,
                        "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": 1545084650.987 + i / 1000.0},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": "shardId-000000000006:" + seq, "eventName": "aws:kinesis:record",
            "invokeIdentityArn": ROLE, "awsRegion": "us-east-1", "eventSourceARN": arn}


def kinesis_event(n, size, seed=1):
    """n records of `size` bytes of JSON payload each."""
    rnd = random.Random(seed)
    return {"Records": [_kinesis_record(i, _payload(rnd, i, size), "pk-%d" % (i % 500))
                        for i in range(n)]}


def _image(rnd, i, version):
    name = "".join(rnd.choice(ALPHABET) for _ in range(12))
    return {
        "pk": {"S": "user#%06d" % i},
        "sk": {"N": str(1700000000 + i)},
        "name": {"S": name},
        "score": {"N": "%d.%02d" % (rnd.randrange(10000), rnd.randrange(100))},
        "active": {"BOOL": bool(version % 2)},
        "version": {"N": str(version)},
        "address": {"M": {"street": {"S": "%d %s street" % (rnd.randrange(999), name[:6])},
                          "zip": {"S": "%05d" % rnd.randrange(100000)},
                          "geo": {"L": [{"N": "48.%06d" % rnd.randrange(10 ** 6)},
                                        {"N": "2.%06d" % rnd.randrange(10 ** 6)}]}}},
        "tags": {"L": [{"S": t} for t in rnd.sample(["a", "b", "vip", "beta", "eu", "us"], 3)]},
        "deleted": {"NULL": True} if version > 5 else {"BOOL": False},
    }


def ddb_event(n, seed=1):
    """n DynamoDB Streams records (NEW_AND_OLD_IMAGES), a third of each kind."""
    rnd = random.Random(seed)
    records = []
    for i in range(n):
        kind = ("INSERT", "MODIFY", "REMOVE")[i % 3]
        keys = {"pk": {"S": "user#%06d" % i}, "sk": {"N": str(1700000000 + i)}}
        d = {"ApproximateCreationDateTime": 1767225600 + i // 100, "Keys": keys,
             "SequenceNumber": "%021d" % (111000000000000000000 + i),
             "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if kind != "REMOVE":
            d["NewImage"] = _image(rnd, i, 2 if kind == "MODIFY" else 1)
        if kind != "INSERT":
            d["OldImage"] = _image(rnd, i, 1)
        d["SizeBytes"] = len(json.dumps(d))
        records.append({"eventID": "%032x" % rnd.getrandbits(128), "eventName": kind,
                        "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                        "awsRegion": "us-east-1", "dynamodb": d, "eventSourceARN": DDB_ARN})
    return {"Records": records}


def kpl_event(aggregates, per_aggregate, size, seed=1):
    """`aggregates` Kinesis records, each a KPL aggregate of `per_aggregate`
    user records of `size` bytes, made by aws-kinesis-agg."""
    rnd = random.Random(seed)
    groups = [[{"pk": "pk-%d" % (j % 50),
                "data": base64.b64encode(_payload(rnd, a * per_aggregate + j, size)).decode()}
               for j in range(per_aggregate)] for a in range(aggregates)]
    script = os.path.join(SOURCE, "tests", "servers", "kpl_aggregate.js")
    r = subprocess.run(["node", script], input=json.dumps(groups).encode(),
                       capture_output=True, check=True)
    blobs = json.loads(r.stdout)
    return {"Records": [_kinesis_record(a, base64.b64decode(b), "pk-agg-%d" % a)
                        for a, b in enumerate(blobs)]}


def make_event(name):
    """(event bytes, records the targets receive, mapping options)."""
    if name == "empty":
        return b'{"Records":[]}', 0, {}
    if name.startswith("k") and "x" in name:
        n, size = (int(x) for x in name[1:].split("x"))
        return json.dumps(kinesis_event(n, size)).encode(), n, {}
    if name == "ddb":
        return json.dumps(ddb_event(6000)).encode(), 6000, {"convertDDB": True,
                                                             "sourceArn": DDB_ARN}
    if name == "kpl":
        return (json.dumps(kpl_event(200, 40, 100)).encode(), 8000, {"deaggregate": True})
    raise SystemExit("unknown event %r (known: %s, kNxS)" % (name, ", ".join(EVENTS)))


def run_child(argv, env):
    """(wall s, CPU s, peak RSS KiB, stderr) of one child process. Run
    under GNU time, whose -f %M is fanout's own peak RSS: a child's
    ru_maxrss counts the memory of the forked Python before exec too."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name] + argv, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)  # time's usage includes fanout's
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stderr.close()
        if p.returncode != 0:
            raise SystemExit("fanout failed (%d): %s" % (p.returncode, err.decode()[-2000:]))
        maxrss = int(rss.read().split()[-1])
    return wall, ru.ru_utime + ru.ru_stime, maxrss, err.decode()


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, Linux %s" % (model, os.cpu_count() or 0, platform.release())


def bench_event(fanout, env, tmp, name, runs, repeat):
    event, records, opts = make_event(name)
    path = os.path.join(tmp, name + ".json")
    with open(path, "wb") as f:
        f.write(event)
    cfg = os.path.join(tmp, name + ".mappings.json")
    m = {"sourceArn": ARN, "id": "bench", "type": "file", "destination": "/dev/null",
         "active": True, "collapse": "none"}
    m.update(opts)
    with open(cfg, "w") as f:
        json.dump([m], f)
    base = [fanout, "invoke", "--quiet", "--config", cfg, "--event", path]
    cold = [run_child(base, env) for _ in range(runs)]
    row = {"event": name, "bytes": len(event), "records": records,
           "cold_cpu": statistics.median(c[1] for c in cold),
           "cold_wall": statistics.median(c[0] for c in cold),
           "rss": max(c[2] for c in cold) / 1024.0, "warm": None}
    if records:
        _, _, wrss, err = run_child(base[:2] + ["--repeat", str(repeat)] + base[2:], env)
        times = [float(line.split()[2]) for line in err.splitlines() if line.startswith("run ")]
        warm = times[1:] if len(times) > 1 else times
        row["warm"] = statistics.median(warm) / 1000.0
        row["warm_best"] = min(warm) / 1000.0
        row["warm_rss"] = wrss / 1024.0
    return row


def _proxy(service, upstream_port, latency_ms):
    """A fault proxy at rate 0 in front of a service: it counts requests, and
    holds each answer latency_ms (e2e has put tests/integration on the path)."""
    import harness  # noqa: E402
    return subprocess.Popen(
        [harness.PYTHON, os.path.join(harness.SERVERS, "fault_proxy.py"), "--protocol", "http",
         "--service", service, "--upstream", "127.0.0.1:%d" % upstream_port, "--rate", "0",
         "--latency-ms", str(latency_ms)]
        + harness._guard(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def e2e(build, fanout, tmp, runs, perf=None, keep=False, only=TARGETS, latency_ms=0,
        token_chars=0, instructions=False):
    """One 10,000 x 200 B event to Kinesis, SQS and Redis at once (`only`:
    the targets among them to deliver to). `perf`: one more run under
    `perf record -g -o perf` (not measured); `keep`: print the command and
    its environment, then wait for Enter before the servers stop (to run
    fanout by hand against them)."""
    sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
    os.environ.setdefault("FANOUT_BUILD_DIR", build)
    os.environ.setdefault("FANOUT_SOURCE_DIR", SOURCE)
    import harness  # noqa: E402
    n, size = 10000, 200
    ev = kinesis_event(n, size)
    event = json.dumps(ev).encode()
    path = os.path.join(tmp, "e2e.json")
    with open(path, "wb") as f:
        f.write(event)
    payload_bytes = sum(len(base64.b64decode(r["kinesis"]["data"])) for r in ev["Records"])
    kin = harness.Kinesalite()
    sqs = harness.SqsServer()
    # requests counted on the way to kinesalite (fault proxy at rate 0); SQS
    # through one too when answers are to be held
    proxy = _proxy("kinesis", kin.port, latency_ms)
    sqs_proxy = _proxy("sqs", sqs.port, latency_ms) if latency_ms else None
    rport = harness.free_port()
    redis = subprocess.Popen(["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port",
                              str(rport), "--save", "", "--appendonly", "no", "--dir", tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port, admin = proxy.stdout.readline().decode().split()
        sqs_url = sqs.url
        if sqs_proxy:
            sqs_url = "http://127.0.0.1:%s" % sqs_proxy.stdout.readline().decode().split()[0]
        harness.wait_port(rport, proc=redis)
        kc = harness.botocore_client("kinesis", kin.url)
        kc.create_stream(StreamName="bench-out", ShardCount=4)
        qc = harness.botocore_client("sqs", sqs.url)
        queue = qc.create_queue(QueueName="bench-queue")["QueueUrl"]
        cfg = os.path.join(tmp, "e2e.mappings.json")
        with open(cfg, "w") as f:
            maps = {"kinesis": harness.mapping("kinesis", "kinesis", "bench-out", ARN),
                    "sqs": harness.mapping("sqs", "sqs", queue, ARN, collapse="none"),
                    "redis": harness.mapping("redis", "redis", "127.0.0.1:%d" % rport, ARN)}
            json.dump([maps[t] for t in TARGETS if t in only], f)
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        env.update(harness.aws_env(KINESIS="http://127.0.0.1:%s" % port, SQS=sqs_url))
        env.update({"AWS_EC2_METADATA_DISABLED": "true",
                    "FANOUT_PLUGIN_PATH": harness.plugin_path()})
        if token_chars:
            # base64-like, seeded: the shape of an STS session token
            rnd = random.Random(7)
            env["AWS_SESSION_TOKEN"] = base64.b64encode(
                bytes(rnd.randrange(256) for _ in range(token_chars)))[:token_chars].decode()
        out = []
        for _ in range(runs):
            before_k = _json("http://127.0.0.1:%s/stats" % admin)["units"]
            before_q = len(sqs.calls("AmazonSQS.SendMessageBatch"))
            before_r = _redis_calls(rport)
            wall, cpu, rss, _ = run_child([fanout, "invoke", "--quiet", "--config", cfg,
                                           "--event", path], env)
            out.append((wall, cpu, rss,
                        _json("http://127.0.0.1:%s/stats" % admin)["units"] - before_k,
                        len(sqs.calls("AmazonSQS.SendMessageBatch")) - before_q,
                        _redis_calls(rport) - before_r))
        argv = [fanout, "invoke", "--quiet", "--config", cfg, "--event", path]
        instr = None
        if instructions:
            p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                                "--"] + argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, check=True)
            for line in p.stderr.decode().splitlines():
                if "Collected :" in line:
                    instr = int(line.split(":")[-1].strip())
            if instr is None:
                raise SystemExit("callgrind printed no count: " + p.stderr.decode()[-500:])
        if perf:
            subprocess.run(["perf", "record", "-F", "5000", "--call-graph", "dwarf,16384", "-o", perf, "--"] + argv, env=env,
                           check=True, stdout=subprocess.DEVNULL)
        if keep:
            print("servers up; run:\n  env %s %s" % (
                " ".join("%s=%s" % (k, env[k]) for k in sorted(env)
                         if k.startswith(("AWS_", "FANOUT_")) and "SECRET" not in k
                         and "TOKEN" not in k),
                " ".join(argv)), file=sys.stderr)
            print("(secrets: as tests/integration/harness.py aws_env) Enter stops them",
                  file=sys.stderr)
            sys.stdin.readline()
    finally:
        for p in (proxy, sqs_proxy, redis):
            if p:
                harness.stop_process(p)
        proxy.stdout.close()
        if sqs_proxy:
            sqs_proxy.stdout.close()
        kin.stop()
        sqs.stop()
    # the fewest requests the limits allow: Kinesis PutRecords 500 records and
    # 10 MiB per request, SQS SendMessageBatch 10 entries and 1 MiB, one
    # record per message (collapse none); Redis: one MSET/SET per record
    # unless MSET (the redis plugin's default is pipelined SET)
    mib = 1024 * 1024
    kin_min = max(math.ceil(n / 500), math.ceil((payload_bytes + n * 6) / (10 * mib)))
    sqs_min = max(math.ceil(n / 10), math.ceil(payload_bytes / mib))
    return {"bytes": len(event), "records": n, "only": only, "latency_ms": latency_ms,
            "token_chars": token_chars, "instructions": instr,
            "cpu": statistics.median(o[1] for o in out),
            "wall": statistics.median(o[0] for o in out),
            "rss": max(o[2] for o in out) / 1024.0,
            "kinesis": (statistics.median(o[3] for o in out), kin_min),
            "sqs": (statistics.median(o[4] for o in out), sqs_min),
            "redis": (statistics.median(o[5] for o in out), n)}


def _json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _redis_calls(port):
    """Commands redis-server processed for SET and MSET (INFO commandstats)."""
    r = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"],
                       capture_output=True, check=True)
    total = 0
    for line in r.stdout.decode().splitlines():
        if line.startswith(("cmdstat_set:", "cmdstat_mset:")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def text_table(rows):
    print("%-11s %8s %8s %11s %11s %9s %9s %12s %8s %9s" % (
        "event", "MB", "records", "cold CPU", "cold wall", "warm ms", "best ms",
        "warm rec/s", "warm MB/s", "peak RSS"))
    for r in rows:
        mb = r["bytes"] / 1e6
        w = r["warm"]
        print("%-11s %8.2f %8d %8.1f ms %8.1f ms %9s %9s %12s %8s %6.1f MB" % (
            r["event"], mb, r["records"], r["cold_cpu"] * 1e3, r["cold_wall"] * 1e3,
            "%.2f" % (w * 1e3) if w else "-",
            "%.2f" % (r["warm_best"] * 1e3) if w else "-", "%.0f" % (r["records"] / w) if w else "-",
            "%.0f" % (mb / w) if w else "-", r["rss"]))


LABELS = {"empty": 'empty `{"Records":[]}`',
          "k8000x100": "Kinesis 8,000 × 100 B",
          "k10000x200": "Kinesis 10,000 × 200 B",
          "ddb": "DynamoDB Streams 6,000 records, `convertDDB`",
          "kpl": "KPL: 200 aggregates × 40 user records × 100 B, `deaggregate`"}


def markdown(rows, e2e_row, build, runs, repeat):
    print("Machine: %s; `%s` build; medians of %d processes, warm = median of "
          "runs 2..%d of `fanout invoke --repeat %d`; one `file` target writing to "
          "`/dev/null`, `collapse` none.\n" % (machine(), build, runs, repeat, repeat))
    print("| event | event JSON | cold process: CPU / wall | warm per invocation: median "
          "(best) | warm records/s (best) | warm MB/s (best) | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        mb = r["bytes"] / 1e6
        w = r["warm"]
        print("| %s | %s | %.1f ms / %.1f ms | %s | %s | %s | %.1f MB |" % (
            LABELS.get(r["event"], r["event"]),
            ("%.1f MB" % mb) if mb >= 0.1 else ("%d B" % r["bytes"]),
            r["cold_cpu"] * 1e3, r["cold_wall"] * 1e3,
            "%.2f ms (%.2f ms)" % (w * 1e3, r["warm_best"] * 1e3) if w else "–",
            "{:,.0f} ({:,.0f})".format(r["records"] / w, r["records"] / r["warm_best"])
            if w else "–",
            "%.0f (%.0f)" % (mb / w, mb / r["warm_best"]) if w else "–", r["rss"]))
    if e2e_row:
        e = e2e_row
        names = {"kinesis": "Kinesis (kinesalite)", "sqs": "SQS (local-aws-sqs, `collapse` none)",
                 "redis": "Redis (redis-server)"}
        print("\nEnd to end on loopback: one %.1f MB event of 10,000 × 200 B to %s%s:\n" % (
            e["bytes"] / 1e6, ", ".join(names[t] for t in e["only"]),
            (" at once" if len(e["only"]) > 1 else "") +
            (", every Kinesis and SQS answer held %d ms" % e["latency_ms"]
             if e["latency_ms"] else "") +
            (", signed with a %d-character session token" % e["token_chars"]
             if e["token_chars"] else "")))
        print("| fanout CPU | wall | peak RSS | Kinesis PutRecords (fewest) | "
              "SQS SendMessageBatch (fewest) | Redis SET/MSET commands (records) |")
        print("|---|---|---|---|---|---|")
        print("| %.0f ms | %.0f ms | %.1f MB | %d (%d) | %d (%d) | %d (%d) |" % (
            e["cpu"] * 1e3, e["wall"] * 1e3, e["rss"], e["kinesis"][0], e["kinesis"][1],
            e["sqs"][0], e["sqs"][1], e["redis"][0], e["redis"][1]))
        if e["instructions"]:
            print("\nInstructions of the fanout process (callgrind, one run): %.1f M" %
                  (e["instructions"] / 1e6))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--events", default=",".join(EVENTS))
    ap.add_argument("--e2e", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--e2e-only", metavar="TARGETS", default=",".join(TARGETS),
                    help="with --e2e: deliver only to these of %s (comma-separated)"
                    % ",".join(TARGETS))
    ap.add_argument("--latency-ms", type=int, default=0,
                    help="with --e2e: hold every Kinesis and SQS answer this long")
    ap.add_argument("--session-token", metavar="CHARS", type=int, default=0,
                    help="with --e2e: sign every request with a session token this long")
    ap.add_argument("--instructions", action="store_true",
                    help="with --e2e: one more run under callgrind, its instruction count")
    ap.add_argument("--perf", metavar="FILE",
                    help="with --e2e: one more run under perf record -g, written to FILE")
    ap.add_argument("--keep-servers", action="store_true",
                    help="with --e2e: keep the servers up until Enter, printing the command")
    args = ap.parse_args()
    only = tuple(t for t in args.e2e_only.split(",") if t)
    if not only or set(only) - set(TARGETS):
        ap.error("--e2e-only: expected a comma-separated subset of %s, got %r"
                 % (",".join(TARGETS), args.e2e_only))
    build = os.path.abspath(args.build)
    fanout = os.path.join(build, "engine", "fanout")
    env = dict(os.environ, FANOUT_PLUGIN_PATH=os.path.join(build, "plugins", "file"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_event(fanout, env, tmp, name, args.runs, args.repeat)
                for name in args.events.split(",") if name]
        e2e_row = e2e(build, fanout, tmp, args.runs, args.perf,
                      args.keep_servers, only, args.latency_ms,
                      args.session_token, args.instructions) if args.e2e else None
    if args.markdown:
        markdown(rows, e2e_row, os.path.basename(build), args.runs, args.repeat)
    else:
        text_table(rows)
        if e2e_row:
            e = e2e_row
            print("e2e 10000x200 to " + "+".join(e["only"]) +
                  (" (answers held %d ms)" % e["latency_ms"] if e["latency_ms"] else "") +
                  (" (session token %d chars)" % e["token_chars"] if e["token_chars"] else "") +
                  ": CPU %.0f ms, wall %.0f ms, peak RSS "
                  "%.1f MB; requests kinesis %d (fewest %d), sqs %d (fewest %d), redis "
                  "commands %d (records %d)" % (
                      e["cpu"] * 1e3, e["wall"] * 1e3, e["rss"], e["kinesis"][0],
                      e["kinesis"][1], e["sqs"][0], e["sqs"][1], e["redis"][0],
                      e["redis"][1]) +
                  ("; %.1f M instructions (callgrind)" % (e["instructions"] / 1e6)
                   if e["instructions"] else ""))


if __name__ == "__main__":
    main()
