"""Fault injection end to end: at-least-once delivery, every record accounted.

At least 100,000 user records (release build; FANOUT_FAULT_RECORDS to
change, 20,000 by default in a sanitizer build) in Kinesis events (plain
records), Kinesis events of KPL aggregates (made by the AWS library,
aws-kinesis-agg, through tests/servers/kpl_aggregate.js) and DynamoDB
Streams events, each fanned out by `fanout invoke` to six targets at once:
Kinesis (kinesalite), SQS (local-aws-sqs), SNS and Firehose
(tests/servers/aws_service.py), Redis (redis-server) and Memcached
(memcached). Between fanout and every server sits tests/servers/fault_proxy.py,
seeded, injecting throttling, 5xx, resets, stalls past the timeouts,
answers dropped after the request was applied, partial batch failures,
incomplete and self-contradicting answers, and for the caches wrong,
error, garbage, truncated, huge and extra replies; aws_service.py adds
partial failures of SNS PublishBatch and Firehose PutRecordBatch. The Redis
and the Memcached servers are each killed (SIGKILL) and restarted during
invocations: before each kill the proxy stops forwarding and the server's
content is read back (a snapshot), so what it held counts as delivered.

Like Lambda, an event whose invocation reported failures is run again from
its first failed record (ReportBatchItemFailures; a crash or a missing
answer: the whole batch), up to a bound of rounds; the last rounds run
without faults. Then every target is read back: Kinesis GetRecords over all
shards, SQS ReceiveMessage until empty, SNS and Firehose as aws_service.py
recorded them, Redis and Memcached by key (plus the snapshots).

Accounting, per (target, user record): found on the server (delivered;
found more than once: duplicates, allowed), or its source record was
reported failed (batchItemFailures) by every invocation that carried it.
A record that some invocation acknowledged (not in its batchItemFailures)
but that is missing from a target is LOST. A record must also be on every
target by the end of the invocation that first acknowledged it, or its
acknowledgement was false even if a later retry of the batch (from an
earlier failed record) delivered it: Kinesis gets a marker record in each
shard after each invocation, aws_service's delivery count is noted, and the
caches are read right away (SQS is checked at the end only). The test fails
on a single lost or falsely acknowledged record, on a record never
acknowledged within the bound, on a crashed or hung fanout, and prints the
counts, with the injected faults that touched each lost record.

FANOUT_FAULT_SEED sets the seed (printed); FANOUT_FAULT_RECORDS the number
of user records. Run by meson with /usr/bin/python3.
"""

import base64
import collections
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NODE = harness.NODE
SERVERS = harness.SERVERS
TOPIC = "arn:aws:sns:us-east-1:123456789012:fault-topic"
FIREHOSE = "fault-firehose"
STREAM = "fault-out"
QUEUE = "fault-queue"
SOURCES = {
    "kin": "arn:aws:kinesis:us-east-1:123456789012:stream/fault-plain",
    "kpl": "arn:aws:kinesis:us-east-1:123456789012:stream/fault-kpl",
    "ddb": "arn:aws:dynamodb:us-east-1:123456789012:table/fault/stream/2026-01-01T00:00:00.000",
}
PREFIX = {"kin": "k", "kpl": "a", "ddb": "d"}
TARGETS = ("kinesis", "sqs", "sns", "firehose", "redis", "memcached")
# FANOUT_FAULT_TARGETS=redis,memcached: only those (to debug one target)
TARGETS = tuple(t for t in os.environ.get("FANOUT_FAULT_TARGETS", ",".join(TARGETS)).split(",")
                if t in TARGETS)
ID_RE = re.compile(rb'"id"\s*:\s*"([kad]\d+x\d+)"')

# FANOUT_FAULT_HTTP_KINDS / FANOUT_FAULT_CACHE_KINDS narrow the kinds (to
# tell which one loses records); see tests/servers/fault_proxy.py
HTTP_KINDS = os.environ.get(
    "FANOUT_FAULT_HTTP_KINDS",
    "throttle,error5xx,reset,stall,drop_answer,stall_answer,partial,incomplete,contradict")
CACHE_KINDS = os.environ.get(
    "FANOUT_FAULT_CACHE_KINDS", "wrong,error,garbage,truncate,stall,huge,reset,drop_reply,extra")

REDIS_TIMEOUT_MS = 500
MEMCACHED_TIMEOUT_MS = 250
AWS_TIMEOUT_MS = 1000
ROUNDS = 7          # the first run and up to 6 retries of each event
CLEAN_ROUNDS = 2    # the last rounds run without faults
INVOKE_TIMEOUT = 90
# Past this many seconds the faults stop (the retries run clean), and past
# it plus a minute no more rounds start: the test stays bounded even when
# fanout is slow or stuck. FANOUT_FAULT_BUDGET_S.
BUDGET_S = float(os.environ.get("FANOUT_FAULT_BUDGET_S", "170"))


def sanitizer_build():
    try:
        with open(os.path.join(harness.BUILD, "meson-info", "intro-buildoptions.json")) as f:
            for opt in json.load(f):
                if opt.get("name") == "b_sanitize":
                    return opt.get("value") not in ("none", "", None)
    except (OSError, ValueError):
        pass
    return False


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def ids_in(data):
    return [m.decode() for m in ID_RE.findall(data)]


# ---- servers -------------------------------------------------------------------

class Proxy:
    """tests/servers/fault_proxy.py in front of one server."""

    def __init__(self, protocol, upstream_port, seed, rate, kinds, stall_ms, service="",
                 extra_rate=0.0):
        argv = [harness.PYTHON, os.path.join(SERVERS, "fault_proxy.py"),
                "--protocol", protocol, "--upstream", "127.0.0.1:%d" % upstream_port,
                "--seed", str(seed), "--rate", str(rate), "--kinds", kinds,
                "--stall-ms", str(stall_ms), "--service", service,
                "--extra-rate", str(extra_rate),
                "--parent-pid", str(os.getpid()), "--max-lifetime", "900"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2:
            self.stop()
            raise RuntimeError("fault_proxy did not print its ports")
        self.port, self.admin = int(line[0]), int(line[1])
        self.name = service or protocol

    def _call(self, method, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin, path),
                                     method=method,
                                     data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def stats(self):
        return self._call("GET", "/stats")

    def configure(self, **cfg):
        return self._call("POST", "/config", cfg)

    def pause(self):
        return self._call("POST", "/pause", {})

    def resume(self, drop=False):
        return self._call("POST", "/resume?drop=1" if drop else "/resume", {})

    def stop(self):
        harness.stop_process(self.proc)
        self.proc.stdout.close()


class CacheServer:
    """redis-server or memcached on a fixed loopback port; kill() and
    start() again on the same port."""

    def __init__(self, kind, tmpdir):
        self.kind = kind
        self.tmpdir = tmpdir
        self.port = harness.free_port()
        self.proc = None
        self.start()

    def argv(self):
        if self.kind == "redis":
            return ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                    "--save", "", "--appendonly", "no", "--dir", self.tmpdir,
                    "--logfile", os.path.join(self.tmpdir, "redis.log"), "--daemonize", "no"]
        a = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "1024",
             "-c", "4096"]
        if os.geteuid() == 0:
            a += ["-u", "root"]
        return a

    def start(self):
        end = time.time() + 10
        while True:
            self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            try:
                harness.wait_port(self.port, timeout=5, proc=self.proc)
                return
            except RuntimeError:
                if time.time() > end:
                    raise
                time.sleep(0.2)  # the port may linger a moment after a kill

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc:
            harness.stop_process(self.proc, timeout=10)

    # -- reading back, straight from the server (not through the proxy)

    def read(self, keys):
        """{key: value bytes} for the keys the server holds."""
        out = {}
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        f = s.makefile("rb")
        try:
            keys = list(keys)
            step = 500
            for i in range(0, len(keys), step):
                chunk = keys[i:i + step]
                if self.kind == "redis":
                    parts = [b"MGET"] + [k.encode() for k in chunk]
                    cmd = b"*%d\r\n" % len(parts) + b"".join(
                        b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
                    s.sendall(cmd)
                    head = f.readline()
                    assert head.startswith(b"*"), head
                    for k in chunk:
                        h = f.readline()
                        n = int(h[1:])
                        if n >= 0:
                            out[k] = f.read(n + 2)[:-2]
                else:
                    s.sendall(b"get " + b" ".join(k.encode() for k in chunk) + b"\r\n")
                    while True:
                        line = f.readline()
                        if line == b"END\r\n":
                            break
                        toks = line.split()
                        assert toks and toks[0] == b"VALUE", line
                        out[toks[1].decode()] = f.read(int(toks[3]) + 2)[:-2]
        finally:
            f.close()
            s.close()
        return out


# ---- events --------------------------------------------------------------------

class Workload:
    """The events and, for each source record, the user records it carries."""

    def __init__(self, rng, total, tmpdir):
        self.events = []      # {"source", "records": [raw dict], "users": [[id, ...]]}
        self.owner = {}       # user id -> (event index, raw index)
        seq = [10 ** 20]
        shares = {"kin": int(total * 0.45), "kpl": int(total * 0.35)}
        shares["ddb"] = total - shares["kin"] - shares["kpl"]
        plans = []
        for src, n in shares.items():
            while n > 0:
                if src == "kpl":
                    size = min(n, rng.randint(3000, 9000))
                elif src == "kin":
                    size = min(n, rng.randint(3000, 9000))
                else:
                    size = min(n, rng.randint(1000, 5000))
                plans.append((src, size))
                n -= size
        rng.shuffle(plans)
        kpl_groups = []
        for ev_i, (src, size) in enumerate(plans):
            ids = ["%s%02dx%06d" % (PREFIX[src], ev_i, i) for i in range(size)]
            ev = {"source": src, "records": [], "users": []}
            if src == "kpl":
                i = 0
                groups = []
                while i < size:
                    g = min(size - i, rng.randint(10, 80))
                    groups.append(ids[i:i + g])
                    i += g
                ev["users"] = groups
                kpl_groups.append((ev_i, groups))
            else:
                ev["users"] = [[x] for x in ids]
            self.events.append(ev)
        # user data
        self.data = {}
        for ev in self.events:
            for group in ev["users"]:
                for uid in group:
                    pad = base64.b64encode(rng.randbytes(rng.randint(30, 165))).decode()
                    self.data[uid] = {"id": uid, "n": rng.randint(0, 10 ** 9), "pad": pad}
        # KPL aggregates from the AWS library, one node run for all
        flat = []
        for _, groups in kpl_groups:
            for g in groups:
                flat.append([{"pk": uid, "data": base64.b64encode(
                    json.dumps(self.data[uid], separators=(",", ":")).encode()).decode()}
                    for uid in g])
        blobs = []
        if flat:
            r = subprocess.run([NODE, os.path.join(SERVERS, "kpl_aggregate.js")],
                               input=json.dumps(flat).encode(), capture_output=True,
                               timeout=120)
            if r.returncode != 0:
                raise RuntimeError("kpl_aggregate.js: %s" % r.stderr.decode()[-2000:])
            blobs = json.loads(r.stdout)
        blob_it = iter(blobs)
        for ev_i, ev in enumerate(self.events):
            src = ev["source"]
            arn = SOURCES[src]
            for raw_i, group in enumerate(ev["users"]):
                seq[0] += rng.randint(1, 1000)
                sn = str(seq[0])
                for uid in group:
                    self.owner[uid] = (ev_i, raw_i)
                if src == "ddb":
                    uid = group[0]
                    d = self.data[uid]
                    image = {"pk": {"S": uid}, "id": {"S": uid}, "n": {"N": str(d["n"])},
                             "pad": {"S": d["pad"]}}
                    ev["records"].append({
                        "eventID": "e%s" % sn, "eventName": "INSERT", "eventVersion": "1.1",
                        "eventSource": "aws:dynamodb", "awsRegion": harness.REGION,
                        "eventSourceARN": arn,
                        "dynamodb": {"ApproximateCreationDateTime": 1479499740,
                                     "Keys": {"pk": {"S": uid}}, "NewImage": image,
                                     "SequenceNumber": sn, "SizeBytes": 100,
                                     "StreamViewType": "NEW_IMAGE"}})
                    continue
                if src == "kpl":
                    data_b64, pk = next(blob_it), group[0]
                else:
                    pk = group[0]
                    data_b64 = base64.b64encode(json.dumps(
                        self.data[pk], separators=(",", ":")).encode()).decode()
                ev["records"].append({
                    "eventSource": "aws:kinesis", "eventSourceARN": arn,
                    "awsRegion": harness.REGION,
                    "eventID": "shardId-000000000000:" + sn,
                    "eventName": "aws:kinesis:record", "eventVersion": "1.0",
                    "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": pk,
                                "sequenceNumber": sn, "data": data_b64,
                                "approximateArrivalTimestamp": 1545084650.987}})
        self.seqs = [[self.seq_of(r) for r in ev["records"]] for ev in self.events]
        for i, ev in enumerate(self.events):
            size = len(json.dumps({"Records": ev["records"]}))
            if size > 6291456 or len(ev["records"]) > 10000:
                raise RuntimeError("event %d: %d records, %d bytes: more than Lambda passes"
                                   % (i, len(ev["records"]), size))

    @staticmethod
    def seq_of(raw):
        if "kinesis" in raw:
            return raw["kinesis"]["sequenceNumber"]
        return raw["dynamodb"]["SequenceNumber"]

    def user_count(self):
        return len(self.owner)


# ---- the test ------------------------------------------------------------------

FAIL_RE = re.compile(r"\[([^\]]+)\] record not delivered to (\S+) .*?sequence number (\S+)"
                     r"(?: sub-sequence (\d+))?: (.*)$")


class FaultInjection(unittest.TestCase):
    def setUp(self):
        self.t0 = time.monotonic()
        seed_env = os.environ.get("FANOUT_FAULT_SEED")
        self.seed = int(seed_env) if seed_env else random.SystemRandom().randrange(1, 2 ** 31)
        default_n = 20000 if sanitizer_build() else 100000
        self.total = int(os.environ.get("FANOUT_FAULT_RECORDS", default_n))
        print("fault injection: seed %d (FANOUT_FAULT_SEED=%d to repeat), %d user records"
              % (self.seed, self.seed, self.total), flush=True)
        self.rng = random.Random(self.seed)
        self.tmp = tempfile.TemporaryDirectory()
        self.servers = []
        self.proxies = {}

        # meson ends a test that runs out of time with SIGTERM: stop the
        # servers then (redis-server, memcached and kinesalite do not watch
        # for their parent)
        def on_term(signum, frame):
            try:
                self.tearDown()
            finally:
                os._exit(1)
        signal.signal(signal.SIGTERM, on_term)
        d = self.tmp.name
        self.kinesis = harness.Kinesalite()
        self.servers.append(self.kinesis)
        self.sqs = harness.SqsServer(max_lifetime=900)
        self.servers.append(self.sqs)
        self.aws = harness.AwsService(d, resources={"firehose": [FIREHOSE], "sns": [TOPIC]})
        self.servers.append(self.aws)
        self.redis = CacheServer("redis", d)
        self.servers.append(self.redis)
        self.memcached = CacheServer("memcached", d)
        self.servers.append(self.memcached)
        kc = harness.botocore_client("kinesis", self.kinesis.url)
        kc.create_stream(StreamName=STREAM, ShardCount=2)
        for _ in range(100):
            if kc.describe_stream(StreamName=STREAM)["StreamDescription"][
                    "StreamStatus"] == "ACTIVE":
                break
            time.sleep(0.05)
        self.kc = kc
        self.shards = kc.list_shards(StreamName=STREAM)["Shards"]
        self.aws_marks = []
        qc = harness.botocore_client("sqs", self.sqs.url)
        self.queue = qc.create_queue(QueueName=QUEUE)["QueueUrl"]
        qc.close()
        r = self.rng
        # Rates per request (HTTP) or storage command (caches), chosen for a
        # few dozen faults per target in a run of 100,000 records (the
        # number of requests differs by target: batches of 500, 10, 1000...)
        scale = 100000.0 / max(self.total, 1)
        stall = AWS_TIMEOUT_MS + 400
        self.proxies = {
            "kinesis": Proxy("http", self.kinesis.port, r.randrange(2 ** 31),
                             min(0.3, 0.08 * scale), HTTP_KINDS, stall, service="kinesis"),
            "sqs": Proxy("http", self.sqs.port, r.randrange(2 ** 31), min(0.3, 0.2 * scale),
                         HTTP_KINDS, stall, service="sqs"),
            "sns": Proxy("http", self.aws.port, r.randrange(2 ** 31), min(0.3, 0.006 * scale),
                         HTTP_KINDS, stall, service="sns"),
            "firehose": Proxy("http", self.aws.port, r.randrange(2 ** 31),
                              min(0.3, 0.1 * scale), HTTP_KINDS, stall, service="firehose"),
            "redis": Proxy("redis", self.redis.port, r.randrange(2 ** 31),
                           min(0.05, 0.0003 * scale), CACHE_KINDS, REDIS_TIMEOUT_MS + 400,
                           extra_rate=0.3),
            "memcached": Proxy("memcached", self.memcached.port, r.randrange(2 ** 31),
                               min(0.05, 0.0004 * scale), CACHE_KINDS,
                               MEMCACHED_TIMEOUT_MS + 300),
        }
        # aws_service's own partial batch failures (entries really not stored)
        rules = []
        for svc, target in (("sns", TOPIC), ("firehose", FIREHOSE)):
            for _ in range(6):
                rules.append({"service": svc, "kind": "partial", "target": target,
                              "skip": r.randint(0, 60), "count": r.randint(1, 4),
                              "indexes": sorted(r.sample(range(10), r.randint(1, 3)))})
        self.aws.faults(rules)
        self.aws_rules = len(rules)

    def tearDown(self):
        for p in getattr(self, "proxies", {}).values():
            p.stop()
        for s in self.servers:
            s.stop()
        self.tmp.cleanup()

    # ---- fanout

    def mappings(self):
        p = self.proxies
        out = []
        # SQS: JSON everywhere (local-aws-sqs reads back slowly, message by
        # message); SNS: one message per record for KPL and DynamoDB
        # message); Kinesis: one record per record for DynamoDB only
        # (kinesalite spends about 1 ms of CPU per record stored or read)
        coll = {"kin": ("JSON", "JSON", "JSON"), "kpl": ("JSON", "none", "JSON"),
                "ddb": ("JSON", "none", "none")}
        for src, arn in SOURCES.items():
            extra = {"deaggregate": True} if src == "kpl" else {}
            if src == "ddb":
                extra = {"convertDDB": True}
            sqs_c, sns_c, kin_c = coll[src]
            out += [
                harness.mapping(src + "-kinesis", "kinesis", STREAM, arn, collapse=kin_c,
                                **extra),
                harness.mapping(src + "-sqs", "sqs", self.queue, arn, collapse=sqs_c, **extra),
                harness.mapping(src + "-sns", "sns", TOPIC, arn, collapse=sns_c, **extra),
                harness.mapping(src + "-firehose", "firehose", FIREHOSE, arn,
                                collapse="none", **extra),
                harness.mapping(src + "-redis", "redis", "127.0.0.1:%d" % p["redis"].port,
                                arn, collapse="none", timeoutMs=REDIS_TIMEOUT_MS, **extra),
                harness.mapping(src + "-memcached", "memcached",
                                "127.0.0.1:%d" % p["memcached"].port, arn, collapse="none",
                                autoDiscovery=False, timeoutMs=MEMCACHED_TIMEOUT_MS, **extra),
            ]
        return [m for m in out if m["type"] in TARGETS]

    def env(self):
        p = self.proxies
        url = "http://127.0.0.1:%d"
        e = harness.aws_env(KINESIS=url % p["kinesis"].port, SQS=url % p["sqs"].port,
                            SNS=url % p["sns"].port, FIREHOSE=url % p["firehose"].port)
        e["FANOUT_AWS_TIMEOUT_MS"] = str(AWS_TIMEOUT_MS)
        return e

    def run_event(self, path, cfg, resp):
        if os.path.exists(resp):
            os.unlink(resp)
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("AWS_") or k in ("FANOUT_CONFIG", "FANOUT_TABLE"):
                del e[k]
        # Never the real EC2 instance metadata service (the chain's last step).
        e["AWS_EC2_METADATA_DISABLED"] = "true"
        e.update({"FANOUT_PLUGIN_PATH": harness.plugin_path(), "FANOUT_LOG_FORMAT": "text"})
        e.update(self.env())
        t = time.monotonic()
        try:
            r = subprocess.run([harness.FANOUT, "invoke", "--config", cfg, "--event", path,
                                "--response", resp], capture_output=True, env=e,
                               timeout=INVOKE_TIMEOUT)
            rc, log = r.returncode, r.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired as x:
            rc, log = "hang", (x.stderr or b"").decode("utf-8", "replace")
        failed = None
        if rc in (0, 1) and os.path.exists(resp):
            with open(resp) as f:
                failed = {x["itemIdentifier"] for x in json.load(f)["batchItemFailures"]}
        return rc, failed, log, time.monotonic() - t

    # ---- cache kills

    def kill_cache(self, name, delay, expected_keys):
        time.sleep(delay)
        server = self.redis if name == "redis" else self.memcached
        proxy = self.proxies[name]
        proxy.pause()
        time.sleep(0.05)
        snap = server.read(expected_keys)
        self.snapshots[name].update(snap)
        server.kill()
        server.start()
        proxy.resume(drop=True)
        self.kills.append((name, len(snap)))

    # ---- reading back

    def read_kinesis(self, seen, first):
        """seen[id] += 1 per delivery; first[id] = the invocation by whose end
        it was first stored (the markers written after each invocation
        split every shard into invocations)."""
        shards = self.kc.list_shards(StreamName=STREAM)["Shards"]
        n = 0
        for sh in shards:
            it = self.kc.get_shard_iterator(StreamName=STREAM, ShardId=sh["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            epoch = 0
            for _ in range(10000):
                r = self.kc.get_records(ShardIterator=it, Limit=10000)
                for rec in r["Records"]:
                    if rec["Data"].startswith(b'{"marker":'):
                        epoch = json.loads(rec["Data"])["marker"] + 1
                        continue
                    n += 1
                    for uid in ids_in(rec["Data"]):
                        seen[uid] += 1
                        first[uid] = min(first.get(uid, epoch), epoch)
                it = r.get("NextShardIterator")
                if not r["Records"] or not it:
                    break
        return n

    def mark_invocation(self, inv):
        """After invocation inv: a marker record in each Kinesis shard (straight
        to kinesalite), and aws_service's delivery count."""
        for sh in self.shards:
            self.kc.put_record(StreamName=STREAM, Data=json.dumps({"marker": inv}).encode(),
                               PartitionKey="marker",
                               ExplicitHashKey=sh["HashKeyRange"]["StartingHashKey"])
        self.aws_marks.append(self.aws.stats()["deliveries"])

    def read_sqs(self, seen):
        conn = http.client.HTTPConnection("127.0.0.1", self.sqs.port, timeout=30)
        body = json.dumps({"QueueUrl": self.queue, "MaxNumberOfMessages": 10,
                           "VisibilityTimeout": 43200, "WaitTimeSeconds": 0})

        def call(target, body):
            headers = {"Content-Type": "application/x-amz-json-1.0",
                       "X-Amz-Target": "AmazonSQS." + target,
                       "Authorization": "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/"
                                        "sqs/aws4_request, SignedHeaders=host, Signature=00"
                                        % harness.ACCESS_KEY}
            conn.request("POST", "/", body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            self.assertEqual(r.status, 200, data[:500])
            return json.loads(data) if data.strip() else {}

        n, empty = 0, 0
        while empty < 3:
            msgs = call("ReceiveMessage", body).get("Messages") or []
            if not msgs:
                empty += 1
                continue
            empty = 0
            for m in msgs:
                n += 1
                for uid in ids_in(m["Body"].encode()):
                    seen[uid] += 1
            # deleted, so that the queue the emulator scans shrinks
            call("DeleteMessageBatch", json.dumps({"QueueUrl": self.queue, "Entries": [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(msgs)]}))
        conn.close()
        return n

    def read_aws(self, service, target, field, seen, first):
        import bisect
        entries = self.aws.received(service, target, 0, 0)
        for e in entries:
            data = base64.b64decode(e[field]) if field == "dataBase64" else e[field].encode()
            # stored by the end of the first invocation whose mark reaches seq
            epoch = bisect.bisect_left(self.aws_marks, e["seq"])
            for uid in ids_in(data):
                seen[uid] += 1
                first.setdefault(uid, epoch)
        return len(entries)

    # ---- the run

    def test_every_record_accounted(self):
        wl = Workload(self.rng, self.total, self.tmp.name)
        n_users = wl.user_count()
        self.assertGreaterEqual(n_users, self.total)
        cfg = os.path.join(self.tmp.name, "mappings.json")
        with open(cfg, "w") as f:
            json.dump(self.mappings(), f)
        print("workload: %d events (%s), %d source records, %d user records; built in %.1f s"
              % (len(wl.events), ", ".join("%s %d" % (s, sum(1 for e in wl.events
                                                             if e["source"] == s))
                                           for s in SOURCES),
                 sum(len(e["records"]) for e in wl.events), n_users,
                 time.monotonic() - self.t0), flush=True)

        self.snapshots = {"redis": {}, "memcached": {}}
        self.kills = []
        # two kills of each cache, during chosen events of the first round
        kill_plan = collections.defaultdict(list)
        for name in ("redis", "memcached", "redis", "memcached"):
            kill_plan[self.rng.randrange(len(wl.events))].append(
                (name, self.rng.uniform(0.2, 1.5)))

        acked = set()           # (event, raw index) some invocation acknowledged
        acked_at = {}           # (event, raw index) -> the first invocation that did
        early = collections.defaultdict(list)  # target -> acknowledged, not there yet
        pending = {i: 0 for i in range(len(wl.events))}  # event -> first raw index to run
        stats = collections.Counter()
        crashes, hangs, inconsistent = [], [], []
        reported = collections.Counter()       # target -> failure reports in logs
        reasons = collections.Counter()
        resp = os.path.join(self.tmp.name, "response.json")
        evpath = os.path.join(self.tmp.name, "event.json")
        seen_keys = []
        faults_on = True

        for rnd in range(ROUNDS):
            if not pending:
                break
            elapsed = time.monotonic() - self.t0
            if rnd > 0 and elapsed > BUDGET_S + 60:
                print("round %d not started: %.0f s spent (budget %.0f s)"
                      % (rnd, elapsed, BUDGET_S), flush=True)
                break
            if faults_on and (rnd == ROUNDS - CLEAN_ROUNDS or (rnd > 0 and elapsed > BUDGET_S)):
                faults_on = False
                for p in self.proxies.values():
                    p.configure(rate=0.0)
                self.aws._json("DELETE", "/__faults")
                print("round %d and later: no faults" % rnd, flush=True)
            t_round = time.monotonic()
            next_pending = {}
            for ev_i in sorted(pending):
                start = pending[ev_i]
                ev = wl.events[ev_i]
                recs = ev["records"][start:]
                with open(evpath, "w") as f:
                    json.dump({"Records": recs}, f)
                if rnd == 0:
                    for group in ev["users"]:
                        seen_keys.extend(group)
                killer = None
                if rnd == 0 and ev_i in kill_plan:
                    def kills(plan=kill_plan[ev_i], keys=list(seen_keys)):
                        for name, delay in plan:
                            self.kill_cache(name, delay, keys)
                    killer = threading.Thread(target=kills)
                    killer.start()
                rc, failed, log, took = self.run_event(evpath, cfg, resp)
                if killer:
                    killer.join()
                inv = stats["invocations"]
                stats["invocations"] += 1
                self.mark_invocation(inv)
                stats["records sent"] += len(recs)
                for line in log.splitlines():
                    m = FAIL_RE.search(line)
                    if m:
                        reported[m.group(1).split("-", 1)[1]] += 1
                        reasons[re.sub(r"[0-9]+", "N", m.group(5))[:90]] += 1
                seqs = wl.seqs[ev_i][start:]
                if failed is None:
                    (hangs if rc == "hang" else crashes).append(
                        (ev_i, rnd, rc, "\n".join([x for x in log.splitlines()
                                                    if " INFO " not in x][-12:])))
                    next_pending[ev_i] = start
                    continue
                if rc == 0 and failed:
                    inconsistent.append((ev_i, rnd, "exit 0 with %d failures" % len(failed)))
                if rc == 1 and not failed:
                    inconsistent.append((ev_i, rnd, "exit 1 without failures"))
                unknown = failed - set(seqs)
                if unknown:
                    inconsistent.append((ev_i, rnd, "unknown identifiers %s"
                                         % sorted(unknown)[:3]))
                first = None
                new_acks = []
                for k, sn in enumerate(seqs):
                    if sn in failed:
                        stats["source records reported failed"] += 1
                        if first is None:
                            first = start + k
                    else:
                        if (ev_i, start + k) not in acked:
                            acked_at[(ev_i, start + k)] = inv
                            new_acks.extend(ev["users"][start + k])
                        acked.add((ev_i, start + k))
                if first is not None:
                    next_pending[ev_i] = first
                # the caches, right away: every record just acknowledged must
                # be there (or in the snapshot taken before a kill)
                for name, server in (("redis", self.redis), ("memcached", self.memcached)):
                    if name in TARGETS and new_acks:
                        held = server.read(new_acks)
                        snap = self.snapshots[name]
                        early[name].extend(u for u in new_acks
                                           if u not in held and u not in snap)
            pending = next_pending
            print("round %d: %d events left to retry, %.1f s (total %.1f s)"
                  % (rnd, len(pending), time.monotonic() - t_round,
                     time.monotonic() - self.t0), flush=True)

        # ---- read back
        t_read = time.monotonic()
        seen = {t: collections.Counter() for t in TARGETS}
        msgs = {}
        first_seen = {t: {} for t in TARGETS}
        if "kinesis" in TARGETS:
            msgs["kinesis"] = self.read_kinesis(seen["kinesis"], first_seen["kinesis"])
        if "sqs" in TARGETS:
            msgs["sqs"] = self.read_sqs(seen["sqs"])
        if "sns" in TARGETS:
            msgs["sns"] = self.read_aws("sns", TOPIC, "message", seen["sns"],
                                        first_seen["sns"])
        if "firehose" in TARGETS:
            msgs["firehose"] = self.read_aws("firehose", FIREHOSE, "dataBase64",
                                             seen["firehose"], first_seen["firehose"])
        corrupt = collections.Counter()
        for name, server in (("redis", self.redis), ("memcached", self.memcached)):
            if name not in TARGETS:
                continue
            now = server.read(list(wl.owner))
            msgs[name] = len(now)
            for snap in (self.snapshots[name], now):
                for key, value in snap.items():
                    got = ids_in(value)
                    if got != [key]:
                        corrupt[name] += 1
                        continue
                    seen[name][key] = 1
        read_s = time.monotonic() - t_read

        # ---- accounting
        proxy_stats = {n: p.stats() for n, p in self.proxies.items()}
        aws_stats = self.aws.stats()
        all_ids = list(wl.owner)
        acked_ids = {u for u in all_ids if wl.owner[u] in acked}
        never_acked = len(all_ids) - len(acked_ids)
        lost = {}
        foreign = {}
        print("\n==== fault injection: seed %d ====" % self.seed)
        print("records: %d user records in %d source records, %d events; %d invocations, "
              "%d source records sent in all (retries included)"
              % (n_users, sum(len(e["records"]) for e in wl.events), len(wl.events),
                 stats["invocations"], stats["records sent"]))
        print("faults injected by kind:")
        for n, s in proxy_stats.items():
            print("  %-9s %6d units, %s" % (n, s["units"], json.dumps(s["faults"],
                                                                      sort_keys=True)))
        print("  aws_service partial (SNS, Firehose): %s"
              % json.dumps(aws_stats.get("faults_by_kind", {})))
        print("  cache servers killed and restarted: %s"
              % ", ".join("%s (%d keys held)" % k for k in self.kills))
        print("per target: delivered (unique) / duplicates / missing / LOST / "
              "failure reports in logs / messages read back; then, if any, the records "
              "acknowledged by an invocation before they were on the target (there later "
              "only because a retry of the batch sent them again)")
        for t in TARGETS:
            c = seen[t]
            dup = sum(v - 1 for v in c.values() if v > 1)
            missing = [u for u in all_ids if u not in c]
            lost[t] = [u for u in missing if u in acked_ids]
            if t in ("kinesis", "sns", "firehose"):
                fs = first_seen[t]
                early[t] = [u for u in all_ids if u in fs and wl.owner[u] in acked_at
                            and fs[u] > acked_at[wl.owner[u]]]
            foreign[t] = [u for u in c if u not in wl.owner]
            by_src = collections.Counter()
            for u, v in c.items():
                if v > 1:
                    by_src[u[0]] += v - 1
            print("  %-9s %7d / %6d / %6d / %6d / %6d / %7d%s%s"
                  % (t, len(c) - len(foreign[t]), dup, len(missing), len(lost[t]),
                     reported[t], msgs[t],
                     ("  (%d corrupt values)" % corrupt[t]) if corrupt[t] else "",
                     ("  (duplicates by source k/a/d: %d/%d/%d)"
                      % (by_src["k"], by_src["a"], by_src["d"])) if dup else ""))
            if early[t]:
                print("  %-9s ACKNOWLEDGED BEFORE DELIVERED: %d (first 5: %s)%s"
                      % (t, len(early[t]), early[t][:5],
                         " (read right after the invocation; the lost ones included)"
                         if t in ("redis", "memcached") else ""))
        print("retries: %d invocations re-ran part of an event (from its first failed record), "
              "%d source records sent again" % (stats["invocations"] - len(wl.events),
                                                stats["records sent"] - sum(
                                                    len(e["records"]) for e in wl.events)))
        print("source records reported failed (all rounds): %d; never acknowledged after %d "
              "rounds: %d user records" % (stats["source records reported failed"], ROUNDS,
                                            never_acked))
        print("crashes: %d, hangs: %d, inconsistent answers: %d; read back in %.1f s; "
              "total %.1f s" % (len(crashes), len(hangs), len(inconsistent), read_s,
                                time.monotonic() - self.t0))
        import resource
        cpu = {"fanout (all invocations)": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
               + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime}
        for name, proc in (("kinesalite", self.kinesis.proc), ("sqs", self.sqs.proc),
                           ("aws_service", self.aws.proc), ("redis", self.redis.proc),
                           ("memcached", self.memcached.proc)):
            cpu[name] = cpu_seconds(proc.pid)
        for name, p in self.proxies.items():
            cpu["proxy " + name] = cpu_seconds(p.proc.pid)
        print("CPU seconds: %s" % ", ".join("%s %.1f" % kv for kv in cpu.items()))
        if reasons:
            print("failure reasons (most frequent):")
            for why, n in reasons.most_common(12):
                print("  %6d  %s" % (n, why))
        # which injected faults touched the lost records
        for t in TARGETS:
            if early[t]:
                by_key = collections.defaultdict(list)
                for kind, key in proxy_stats[t]["events"]:
                    if kind not in by_key[key]:
                        by_key[key].append(kind)
                kinds = collections.Counter(",".join(by_key.get(u, ["no proxy fault"]))
                                            for u in early[t])
                print("  %s: acknowledged before delivered, by the proxy faults that "
                      "touched them: %s" % (t, dict(kinds)))
            if lost[t]:
                by_key = collections.defaultdict(list)
                for kind, key in proxy_stats[t]["events"]:
                    if kind not in by_key[key]:
                        by_key[key].append(kind)
                kinds = collections.Counter(",".join(by_key.get(u, ["no proxy fault"]))
                                            for u in lost[t])
                print("  %s: lost records by the proxy faults that touched them: %s"
                      % (t, dict(kinds)))
        for t in TARGETS:
            if lost[t]:
                print("  LOST on %s (first 10): %s" % (t, lost[t][:10]))
        for ev_i, rnd, rc, tail in crashes[:5]:
            print("  crash: event %d round %d rc %s:\n%s" % (ev_i, rnd, rc, tail))
        for ev_i, rnd, rc, tail in hangs[:3]:
            print("  hang: event %d round %d:\n%s" % (ev_i, rnd, tail))
        for x in inconsistent[:10]:
            print("  inconsistent: event %d round %d: %s" % x)
        total_lost = sum(len(v) for v in lost.values())
        print("LOST: %d" % total_lost, flush=True)

        problems = []
        if total_lost:
            problems.append("%d records acknowledged but missing: %s" % (
                total_lost, {t: len(v) for t, v in lost.items() if v}))
        n_early = sum(len(v) for v in early.values())
        if n_early:
            problems.append("%d records acknowledged before they were delivered: %s" % (
                n_early, {t: len(v) for t, v in early.items() if v}))
        if never_acked:
            problems.append("%d user records never acknowledged after %d rounds"
                            % (never_acked, ROUNDS))
        if crashes:
            problems.append("fanout crashed %d times (rc %s)"
                            % (len(crashes), sorted({str(c[2]) for c in crashes})))
        if hangs:
            problems.append("fanout hung %d times" % len(hangs))
        if inconsistent:
            problems.append("%d inconsistent answers" % len(inconsistent))
        # the test must have tested something: faults on every target, both
        # caches killed (kinds that did not fire this time are only named)
        fired = collections.Counter()
        for n, st in proxy_stats.items():
            for k, v in st["faults"].items():
                fired[k.split(":")[0]] += v
            if n in TARGETS and not st["faults"]:
                problems.append("no fault was injected on %s" % n)
        idle = [k for k in (HTTP_KINDS + "," + CACHE_KINDS).split(",") if k and not fired[k]]
        if idle:
            print("fault kinds that did not fire with this seed: %s" % ", ".join(idle))
        killed = {k[0] for k in self.kills}
        for name in ("redis", "memcached"):
            if name in TARGETS and name not in killed:
                problems.append("%s was not killed" % name)
        if any(foreign.values()) or any(corrupt.values()):
            problems.append("records read back that were never sent or were corrupt")
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
