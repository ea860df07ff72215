"""Integration tests of the `kinesis` destination plugin (PutRecords).

The real `fanout invoke` against kinesalite (npm), read back with botocore
(GetShardIterator / GetRecords), and against a small PutRecords fake in this
file for what kinesalite cannot do: partial failures on demand, answers of
the wrong length, throttling, 500s and timeouts, and recording each
request's signing region, access key and body (kinesalite checks no
signature and knows no StreamARN). STS is tests/servers/sts_server.py.
Run by meson with /usr/bin/python3.
"""

import base64
import hashlib
import json
import os
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SRC = harness.KINESIS_SOURCE
MiB = 1024 * 1024


# --------------------------------------------------------------------------
# A PutRecords fake


class FakeKinesis(harness.InProcessServer):
    """PutRecords on loopback. Each request takes the next plan of
    `plans` (then answers normally): {"status": 400/500, "code": ...} fails
    the whole request; {"fail": {index: code}} fails those entries;
    {"short": True} answers one entry too few; {"sleep": s} answers late;
    {"mangle": fn} writes as usual, then answers fn(200, answer): a status
    and a JSON value or raw bytes.
    Every request is recorded: region and service of the credential scope,
    access key, security token, target, stream, records."""

    def __init__(self):
        self.lock = threading.Lock()
        self.plans = []
        self.requests = []
        self.written = []  # (stream, key, data) in arrival order
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = fake.handle(self.headers, body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

        self.serve(Handler)

    def reset(self, plans=()):
        with self.lock:
            self.plans = list(plans)
            self.requests = []
            self.written = []

    def handle(self, headers, body):
        auth = headers.get("Authorization", "")
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") \
            if "Credential=" in auth else [""] * 5
        req = json.loads(body)
        rec = {"target": headers.get("X-Amz-Target"),
               "contentType": headers.get("Content-Type"),
               "accessKeyId": scope[0], "region": scope[2], "service": scope[3],
               "token": headers.get("X-Amz-Security-Token"),
               "streamName": req.get("StreamName"), "streamArn": req.get("StreamARN"),
               "records": [{"key": r["PartitionKey"], "data": base64.b64decode(r["Data"]),
                            "ehk": r.get("ExplicitHashKey")} for r in req["Records"]]}
        with self.lock:
            self.requests.append(rec)
            plan = self.plans.pop(0) if self.plans else {}
        if plan.get("sleep"):
            time.sleep(plan["sleep"])
            return 500, {"__type": "InternalFailure", "message": "too late"}
        if plan.get("status"):
            return plan["status"], {"__type": plan["code"], "message": "injected " + plan["code"]}
        fail = {int(k): v for k, v in plan.get("fail", {}).items()}
        out = []
        stream = rec["streamArn"] or rec["streamName"]
        for i, r in enumerate(rec["records"]):
            if i in fail:
                out.append({"ErrorCode": fail[i], "ErrorMessage": "injected " + fail[i]})
            else:
                with self.lock:
                    self.written.append((stream, r["key"], r["data"]))
                    n = len(self.written)
                out.append({"SequenceNumber": "4959%040d" % n,
                            "ShardId": "shardId-000000000000"})
        if plan.get("short"):
            out = out[:-1]
        answer = {"FailedRecordCount": len(fail), "Records": out}
        if plan.get("mangle"):  # (status, answer) -> (status, answer or raw bytes)
            return plan["mangle"](200, answer)
        return 200, answer


# --------------------------------------------------------------------------
# helpers


def read_stream(client, name):
    """Every record of a kinesalite stream: {shard: [(key, data, seq)]}."""
    out = {}
    for shard in client.list_shards(StreamName=name)["Shards"]:
        it = client.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got = []
        while it:
            r = client.get_records(ShardIterator=it, Limit=10000)
            got += [(x["PartitionKey"], x["Data"], x["SequenceNumber"]) for x in r["Records"]]
            if not r["Records"]:
                break
            it = r.get("NextShardIterator")
        out[shard["ShardId"]] = (shard, got)
    return out


def all_records(client, name):
    return [rec for _, (_, recs) in sorted(read_stream(client, name).items()) for rec in recs]


def hash_of_key(key):
    return int(hashlib.md5(key.encode()).hexdigest(), 16)


def event_records(name):
    with open(harness.sample_event(name), encoding="utf-8") as f:
        return json.load(f)["Records"]


def _varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _field(num, payload):
    """A length-delimited protobuf field."""
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def kpl_aggregate(keys, hash_keys, records):
    """A KPL aggregated record: keys and hash_keys are the tables (bytes),
    records (key index, hash key index or None, data)."""
    body = b"".join(_field(1, k) for k in keys) + b"".join(_field(2, h) for h in hash_keys)
    for ki, hi, data in records:
        rec = _varint(1 << 3) + _varint(ki)
        if hi is not None:
            rec += _varint(2 << 3) + _varint(hi)
        body += _field(3, rec + _field(3, data))
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def kinesis_mapping(id_, dest, **extra):
    return harness.mapping(id_, "kinesis", dest, **extra)


class KinesisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kinesalite = harness.Kinesalite()
        cls.client = harness.botocore_client("kinesis", cls.kinesalite.url)
        cls.fake = FakeKinesis()
        cls.streams = 0

    @classmethod
    def tearDownClass(cls):
        cls.kinesalite.stop()
        cls.fake.stop()

    def setUp(self):
        self.tmp = harness.TempDir()
        self.fake.reset()

    def tearDown(self):
        self.tmp.cleanup()

    def stream(self, shards=1):
        KinesisTest.streams += 1
        name = "t%d-%s" % (self.streams, self._testMethodName[5:30])
        self.client.create_stream(StreamName=name, ShardCount=shards)
        for _ in range(100):
            if self.client.describe_stream_summary(StreamName=name)[
                    "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                break
            time.sleep(0.05)
        return name

    def invoke(self, mappings, event, endpoint=None, **env):
        e = harness.aws_env(KINESIS=endpoint or self.kinesalite.url)
        e.update(env)
        return harness.invoke(self.tmp.path, mappings, event, env=e)

    def validate(self, mappings):
        return harness.validate(self.tmp.path, mappings, harness.aws_env())

    # ---- delivery against kinesalite ----

    def test_sample_event_delivered_with_keys(self):
        name = self.stream(shards=2)
        src = event_records("kinesis.json")
        arn = src[0]["eventSourceARN"]
        r, failed = self.invoke([kinesis_mapping("k", name, source=arn)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(failed, [])
        got = sorted((k, d) for k, d, _ in all_records(self.client, name))
        want = sorted((x["kinesis"]["partitionKey"], base64.b64decode(x["kinesis"]["data"]))
                      for x in src)
        self.assertEqual(got, want)

    def test_kpl_deaggregated_with_explicit_hash_keys(self):
        """User records of the KPL sample, each with its own partition key;
        those with an explicit hash key land on the shard whose range holds
        it, the others on their key's MD5; the corrupt aggregate fails."""
        name = self.stream(shards=4)
        src = event_records("kpl-aggregated.json")
        arn = src[0]["eventSourceARN"]
        lines = os.path.join(self.tmp.path, "users.jsonl")
        r, failed = self.invoke(
            [kinesis_mapping("k", name, source=arn, deaggregate=True),
             harness.mapping("f", "file", lines, source=arn, deaggregate=True)],
            harness.sample_event("kpl-aggregated.json"))
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        expected, corrupt = [], None
        with open(harness.sample_event("kpl-aggregated.expected.jsonl")) as f:
            for line in f:
                obj = json.loads(line)
                if "corrupt" in obj:
                    corrupt = obj["corrupt"]
                else:
                    expected.append((obj["key"], base64.b64decode(obj["dataB64"])))
        self.assertEqual(failed, [corrupt])
        with open(lines) as f:
            users = [json.loads(x) for x in f]
        ehk = {}
        for u in users:
            if u.get("explicitHashKey"):
                data = (u["data"].encode() if "data" in u
                        else base64.b64decode(u["dataBase64"]))
                ehk[(u["key"], data)] = int(u["explicitHashKey"])
        self.assertTrue(ehk, "the KPL sample should carry explicit hash keys")
        got = []
        placed = 0
        for shard, recs in read_stream(self.client, name).values():
            lo = int(shard["HashKeyRange"]["StartingHashKey"])
            hi = int(shard["HashKeyRange"]["EndingHashKey"])
            for key, data, _ in recs:
                got.append((key, data))
                h = ehk.get((key, data), hash_of_key(key))
                placed += (key, data) in ehk
                self.assertTrue(lo <= h <= hi, (key, data, shard["ShardId"]))
        self.assertEqual(sorted(got), sorted(expected))
        self.assertGreaterEqual(placed, len(ehk))

    def test_collapse_modes(self):
        recs = [("a", b'{"n":1}'), ("b", b"text"), ("c", b"\xff\x00")]
        want = {"JSON": json.dumps({"Records": [{"n": 1}, "text", "/wA="]},
                                   separators=(",", ":")).encode(),
                "concat": b'{"n":1}text\xff\x00',
                "concat-b64": base64.b64encode(b'{"n":1}text\xff\x00')}
        streams = {mode: self.stream() for mode in ("none", "JSON", "concat", "concat-b64")}
        maps = [kinesis_mapping("c-" + m, s, collapse=m) for m, s in streams.items()]
        r, failed = self.invoke(maps, harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([(k, d) for k, d, _ in all_records(self.client, streams["none"])],
                         recs)
        for mode in ("JSON", "concat", "concat-b64"):
            got = all_records(self.client, streams[mode])
            self.assertEqual(len(got), 1, mode)
            self.assertEqual(got[0][0], "a", mode)  # the first record's key
            if mode == "JSON":
                self.assertEqual(json.loads(got[0][1]), json.loads(want[mode]))
            else:
                self.assertEqual(got[0][1], want[mode], mode)

    def test_parallel_false_keeps_order_across_calls(self):
        """1,200 records over 10 keys, parallel false: 3 calls (500 + 500 +
        200), one at a time; each key's records arrive in source order."""
        name = self.stream(shards=3)
        recs = [("key-%d" % (i % 10), b"%05d" % i) for i in range(1200)]
        r, failed = self.invoke([kinesis_mapping("o", name, parallel=False)],
                                harness.kinesis_event(recs), FANOUT_LOG_LEVEL="debug")
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        calls = [line.split(": ", 2)[1] for line in err.splitlines()
                 if "PutRecords to %s:" % name in line and "(attempt" in line]
        self.assertEqual([c.split(" messages")[0] for c in calls], ["500", "500", "200"])
        got = all_records(self.client, name)
        self.assertEqual(len(got), 1200)
        self.assertEqual(sorted(d for _, d, _ in got), sorted(d for _, d in recs))
        by_key = {}
        for key, data, _ in got:
            by_key.setdefault(key, []).append(int(data))
        for key, datas in by_key.items():
            self.assertEqual(datas, sorted(datas), key)

    def test_record_over_the_stream_limit(self):
        """1 MiB counts key + data. A record of 1 MiB + 1 with its key is
        refused with its size and the limit; with maxRecordSizeInKiB raised
        it goes (kinesalite itself takes data up to 1 MiB, key excluded, so
        the record is sized between the two limits)."""
        name = self.stream()
        data = b"x" * (MiB - 2)
        ev = harness.kinesis_event([("big", data), ("small", b"ok")])
        r, failed = self.invoke([kinesis_mapping("k", name)], ev)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertIn("record of 1048577 bytes (data 1048574 + partition key 3)", err)
        self.assertIn("limit of 1048576 bytes", err)
        self.assertEqual([(k, d) for k, d, _ in all_records(self.client, name)],
                         [("small", b"ok")])
        name2 = self.stream()
        r, failed = self.invoke([kinesis_mapping("k", name2, maxRecordSizeInKiB=1025)], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = all_records(self.client, name2)
        self.assertEqual([(k, len(d)) for k, d, _ in got], [("big", MiB - 2), ("small", 2)])
        self.assertEqual(got[0][1], data)

    def test_missing_stream_fails_each_record(self):
        recs = [("a", b"1"), ("b", b"2")]
        r, failed = self.invoke([kinesis_mapping("k", "no-such-stream")],
                                harness.kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        lines = [x for x in err.splitlines() if "record not delivered" in x]
        self.assertEqual(len(lines), 2, err)
        for line in lines:
            self.assertIn("failed: ResourceNotFoundException", line)
            self.assertIn("no-such-stream", line)
            self.assertIn("(1 attempt)", line)  # permanent: not retried

    def test_long_partition_keys(self):
        """Over 256 characters (a character beyond U+FFFF counts two, as
        Kinesis counts): sent as sha256:<hex>, the same key always the
        same; with hashLongPartitionKeys false the record fails."""
        name = self.stream()
        k256 = "\U0001F511" * 128  # 256 UTF-16 units: kept
        k257 = "k" + "\U0001F511" * 128
        long_key = "x" * 300
        recs = [(k256, b"a"), (k257, b"b"), (long_key, b"c"), (long_key, b"d")]
        r, failed = self.invoke([kinesis_mapping("k", name)], harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = [(k, d) for k, d, _ in all_records(self.client, name)]
        h = lambda k: "sha256:" + hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
        self.assertEqual(got, [(k256, b"a"), (h(k257), b"b"), (h(long_key), b"c"),
                               (h(long_key), b"d")])
        r, failed = self.invoke([kinesis_mapping("k", name, hashLongPartitionKeys=False)],
                                harness.kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1001", "1002", "1003"])
        self.assertIn("InvalidPartitionKey", err)
        self.assertIn("the partition key has 257 characters, more than the 256", err)

    # ---- validation ----

    def test_wrong_destinations_refused_by_validate(self):
        bad = {
            "bad name!": "is not a Kinesis stream name",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q": "a URL is not a stream",
            "arn:aws:sqs:us-east-1:123456789012:q": "an ARN of service \"sqs\"",
            "arn:aws:kinesis:us-east-1:12345:stream/s": "is not a Kinesis stream ARN",
            "arn:aws:kinesis:us-east-1:123456789012:table/s": "is not a Kinesis stream ARN",
            "x" * 129: "is not a Kinesis stream name",
        }
        for dest, why in bad.items():
            code, out = self.validate([kinesis_mapping("m", dest)])
            self.assertEqual(code, 2, out)
            self.assertIn('mapping "m": field "destination"', out)
            self.assertIn(why, out)
            self.assertIn("expected e.g. my-stream or arn:aws:kinesis:", out)
        code, out = self.validate([kinesis_mapping(
            "m", "arn:aws:kinesis:eu-west-1:123456789012:stream/s", region="us-west-2")])
        self.assertEqual(code, 2, out)
        self.assertIn("the stream ARN is in region eu-west-1 but the mapping's \"region\" "
                      "is us-west-2", out)
        code, out = self.validate([kinesis_mapping("m", "s", maxRecordSizeInKiB=512)])
        self.assertEqual(code, 2, out)
        self.assertIn("accepts 1024 to 10240", out)
        good = [kinesis_mapping("a", "my.stream_1-x"),
                kinesis_mapping("b", "arn:aws:kinesis:eu-west-1:123456789012:stream/s"),
                kinesis_mapping("c", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s",
                                region="cn-north-1"),
                kinesis_mapping("d", "s", maxRecordSizeInKiB=10240, collapse="JSON")]
        code, out = self.validate(good)
        self.assertEqual(code, 0, out)

    # ---- against the fake: partial failures, errors, region, role ----

    def test_partial_failure_resends_only_failed_records(self):
        self.fake.reset([{"fail": {1: "ProvisionedThroughputExceededException",
                                   3: "InternalFailure"}}])
        recs = [("k%d" % i, b"r%d" % i) for i in range(5)]
        r, failed = self.invoke([kinesis_mapping("k", "s")], harness.kinesis_event(recs),
                                endpoint=self.fake.url)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        reqs = self.fake.requests
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[0]["target"], "Kinesis_20131202.PutRecords")
        self.assertEqual(reqs[0]["contentType"], "application/x-amz-json-1.1")
        self.assertEqual(reqs[0]["service"], "kinesis")
        self.assertEqual(reqs[0]["streamName"], "s")
        self.assertIsNone(reqs[0]["streamArn"])
        self.assertEqual([x["data"] for x in reqs[1]["records"]], [b"r1", b"r3"])
        self.assertEqual([x["key"] for x in reqs[1]["records"]], ["k1", "k3"])
        self.assertEqual(sorted(d for _, _, d in self.fake.written), sorted(d for _, d in recs))
        self.assertIn("2 of 5 messages to kinesis s: throttled", err)

    def test_entry_errors_classified(self):
        """Throttled entries retried until the attempts run out and then
        reported THROTTLED with the code; an unknown entry code is
        permanent; the rest is delivered once."""
        ptee = {"fail": {0: "ProvisionedThroughputExceededException",
                         2: "SomethingPermanentException"}}
        self.fake.reset([ptee, {"fail": {0: "ProvisionedThroughputExceededException"}}])
        recs = [("a", b"1"), ("b", b"2"), ("c", b"3")]
        r, failed = self.invoke([kinesis_mapping("k", "s")], harness.kinesis_event(recs),
                                endpoint=self.fake.url, FANOUT_RETRY_ATTEMPTS="2")
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1002"])
        self.assertIn("sequence number 1000: throttled: ProvisionedThroughputExceededException"
                      ": injected ProvisionedThroughputExceededException (gave up after 2 attempts)", err)
        self.assertIn("sequence number 1002: failed: SomethingPermanentException", err)
        self.assertEqual([d for _, _, d in self.fake.written], [b"2"])
        self.assertEqual(len(self.fake.requests), 2)

    def test_answer_of_wrong_length_retries_all(self):
        self.fake.reset([{"short": True}])
        recs = [("a", b"1"), ("b", b"2"), ("c", b"3")]
        r, failed = self.invoke([kinesis_mapping("k", "s")], harness.kinesis_event(recs),
                                endpoint=self.fake.url)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        self.assertIn("3 records sent, answer has 2 entries in \"Records\"", err)
        self.assertEqual(len(self.fake.requests), 2)
        self.assertEqual([x["data"] for x in self.fake.requests[1]["records"]],
                         [b"1", b"2", b"3"])

    def test_doubtful_answers_retry_every_record(self):
        """The records are written, then the answer contradicts itself or is
        not PutRecords' own: none is taken as written, all are sent again."""
        def setk(key, value):
            def f(st, a):
                a[key] = value
                return st, a
            return f

        def entry(i, value):
            def f(st, a):
                a["Records"][i] = value
                return st, a
            return f

        thr = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "x"}
        spoilers = {
            "count > 0, no failed entry": (setk("FailedRecordCount", 1),
                                           '"FailedRecordCount" 1 but 0 failed'),
            "count 0, a failed entry": (entry(1, thr), '"FailedRecordCount" 0 but 1 failed'),
            "count missing": (lambda st, a: (st, {"Records": a["Records"]}),
                              'no "FailedRecordCount"'),
            "count a string": (setk("FailedRecordCount", "0"), 'non-count "FailedRecordCount"'),
            "entry with neither": (entry(1, {"ShardId": "shardId-000000000000"}),
                                   "neither SequenceNumber nor ErrorCode"),
            "entry with both": (entry(1, dict(thr, SequenceNumber="1")), "both"),
            "one entry more": (lambda st, a: (st, dict(a, Records=a["Records"] * 2)),
                               '6 entries in "Records"'),
            "not JSON": (lambda st, a: (st, b"<html>OK</html>"), "not JSON"),
            "truncated": (lambda st, a: (st, json.dumps(a).encode()[:40]), "not JSON"),
            "empty": (lambda st, a: (st, b""), "empty body"),
            "HTTP 201": (lambda st, a: (201, a), "HTTP 201"),
        }
        recs = [("a", b"1"), ("b", b"2"), ("c", b"3")]
        for name, (fn, why) in spoilers.items():
            with self.subTest(name):
                self.fake.reset([{"mangle": fn}])
                r, failed = self.invoke([kinesis_mapping("k", "s")],
                                        harness.kinesis_event(recs), endpoint=self.fake.url)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 0, err)
                self.assertIn(why, err)
                self.assertEqual(len(self.fake.requests), 2)
                self.assertEqual([x["data"] for x in self.fake.requests[1]["records"]],
                                 [b"1", b"2", b"3"])
        self.fake.reset([{"mangle": setk("FailedRecordCount", 2)}] * 10)
        r, failed = self.invoke([kinesis_mapping("k", "s")], harness.kinesis_event(recs),
                                endpoint=self.fake.url, FANOUT_RETRY_ATTEMPTS="2")
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(sorted(failed), ["1000", "1001", "1002"])

    def test_throttling_500_and_timeout_retried(self):
        self.fake.reset([{"status": 400, "code": "ProvisionedThroughputExceededException"},
                         {"status": 500, "code": "InternalFailure"},
                         {"sleep": 1.5}])
        recs = [("a", b"1"), ("b", b"2")]
        r, failed = self.invoke([kinesis_mapping("k", "s")], harness.kinesis_event(recs),
                                endpoint=self.fake.url, FANOUT_AWS_TIMEOUT_MS="500")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(len(self.fake.requests), 4)
        self.assertEqual(sorted(d for _, _, d in self.fake.written), [b"1", b"2"])
        # still throttled when every attempt is spent: reported THROTTLED
        self.fake.reset([{"status": 400, "code": "ProvisionedThroughputExceededException"}] * 4)
        r, failed = self.invoke([kinesis_mapping("k", "s")], harness.kinesis_event(recs[:1]),
                                endpoint=self.fake.url, FANOUT_AWS_MAX_ATTEMPTS="2",
                                FANOUT_RETRY_ATTEMPTS="2")
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("throttled: ProvisionedThroughputExceededException", err)
        # FANOUT_RETRY_ATTEMPTS: the engine alone retries record sends
        self.assertEqual(len(self.fake.requests), 2)

    def test_parallel_false_warns_when_partial_failure_reorders(self):
        self.fake.reset([{"fail": {0: "InternalFailure"}}])
        recs = [("same", b"first"), ("same", b"second"), ("other", b"x")]
        r, failed = self.invoke([kinesis_mapping("k", "s", parallel=False)],
                                harness.kinesis_event(recs), endpoint=self.fake.url)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        self.assertIn('a record of partition key "same" failed (InternalFailure) after a '
                      "later record of that key was written", err)
        self.assertEqual([d for _, _, d in self.fake.written], [b"second", b"x", b"first"])

    def test_kpl_odd_keys(self):
        """A KPL user record whose partition key is not UTF-8 goes with the
        key's hash; one whose explicit hash key is out of range fails alone;
        a valid explicit hash key is passed on (collapse none only)."""
        bad_key = b"\xff\xfekey"
        blob = kpl_aggregate([b"ok", bad_key], [b"12345", b"4" * 39],
                             [(0, 0, b"with-ehk"), (1, None, b"bad-key"), (0, 1, b"bad-ehk")])
        ev = harness.kinesis_event([("agg", blob)])
        r, failed = self.invoke([kinesis_mapping("k", "s", deaggregate=True)], ev,
                                endpoint=self.fake.url)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertIn("sub-sequence 2: failed: InvalidExplicitHashKey", err)
        sent = self.fake.requests[0]["records"]
        self.assertEqual(sent, [
            {"key": "ok", "data": b"with-ehk", "ehk": "12345"},
            {"key": "sha256:" + hashlib.sha256(bad_key).hexdigest(), "data": b"bad-key",
             "ehk": None}])
        self.fake.reset()
        r, failed = self.invoke([kinesis_mapping("k", "s", deaggregate=True, collapse="JSON")],
                                ev, endpoint=self.fake.url)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([(x["key"], x["ehk"]) for x in self.fake.requests[0]["records"]],
                         [("ok", None)])

    def test_region_from_mapping_and_from_arn(self):
        arn = "arn:aws:kinesis:eu-west-1:210987654321:stream/other"
        maps = [kinesis_mapping("by-name", "s", region="ap-southeast-2"),
                kinesis_mapping("by-arn", arn),
                kinesis_mapping("arn-and-region", arn.replace("other", "third"),
                                region="eu-west-1"),
                kinesis_mapping("default", "plain")]
        r, failed = self.invoke(maps, harness.kinesis_event([("a", b"1")]),
                                endpoint=self.fake.url)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        seen = {(x["streamName"], x["streamArn"]): x["region"] for x in self.fake.requests}
        self.assertEqual(seen, {("s", None): "ap-southeast-2",
                                (None, arn): "eu-west-1",
                                (None, arn.replace("other", "third")): "eu-west-1",
                                ("plain", None): harness.REGION})

    def test_cross_account_role(self):
        role = "arn:aws:iam::210987654321:role/ext-fanout-writer"
        sts = harness.StsServer(extra_args=["--external-id", "fanout-ext-1"])
        try:
            arn = "arn:aws:kinesis:us-east-1:210987654321:stream/shared"
            maps = [kinesis_mapping("x", arn, role=role, externalId="fanout-ext-1")]
            r, failed = self.invoke(maps, harness.kinesis_event([("a", b"1"), ("b", b"2")]),
                                    endpoint=self.fake.url, AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            req = self.fake.requests[0]
            self.assertTrue(req["accessKeyId"].startswith("ASIA"), req["accessKeyId"])
            self.assertNotEqual(req["accessKeyId"], harness.ACCESS_KEY)
            self.assertTrue(req["token"])
            self.assertEqual(req["streamArn"], arn)
            import urllib.request
            with urllib.request.urlopen(sts.url + "/stats", timeout=10) as f:
                stats = json.load(f)
            self.assertEqual(stats["roles"][role]["issued"], 1)
            self.assertEqual(stats["roles"][role]["last"]["ExternalId"], "fanout-ext-1")
            # a wrong external id: AccessDenied from STS, every record fails
            self.fake.reset()
            maps = [kinesis_mapping("x", arn, role=role, externalId="wrong-id")]
            r, failed = self.invoke(maps, harness.kinesis_event([("a", b"1")]),
                                    endpoint=self.fake.url, AWS_ENDPOINT_URL_STS=sts.url)
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 1, err)
            self.assertIn("CredentialsError", err)
            self.assertIn("AccessDenied", err)
            self.assertEqual(self.fake.requests, [])
        finally:
            sts.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
