"""Integration tests of the sqs plugin: the real `fanout invoke` against
local-aws-sqs (npm, served by tests/servers/sqs_server.js, which also
records every call it passes on), read back with botocore's SQS client;
partial failures, MD5 checks, 5xx, throttling and timeouts against a fake
SQS endpoint written here (local-aws-sqs cannot fail on demand); the
cross-account role through tests/servers/sts_server.py.

Run by meson with /usr/bin/python3 (standard library + python3-botocore)."""

import base64
import hashlib
import json
import os
import re
import sys
import threading
import time
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ACCOUNT = harness.ACCOUNT
MIB = 1048576
HEX64 = re.compile(r"^[0-9a-f]{64}$")
ROLE_ACCOUNT = "210987654321"
STS_EXTERNAL_ID = "fanout+ext:id/=,.@-1"  # sts_server.py's default for ext-... roles


class FakeSqs(harness.InProcessServer):
    """A fake SQS JSON endpoint on loopback that fails on demand.

    `plan(n, request)` decides the answer to the n-th call (0-based):
    returns None for the normal answer (every entry Successful with the
    right MD5), or a dict with any of: "status", "body" (dict or bytes),
    "fail" {entry Id: (code, sender_fault)}, "omit" [Ids], "bad_md5" [Ids],
    "delay" (seconds before answering), "mangle" fn(answer) -> answer (a
    JSON value or raw bytes) applied to the answer built."""

    def __init__(self, plan=None):
        self.plan = plan or (lambda n, req: None)
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                req = {"headers": {k.lower(): v for k, v in self.headers.items()},
                       "target": self.headers.get("X-Amz-Target"), "body": body}
                with fake.lock:
                    idx = len(fake.requests)
                    fake.requests.append(req)
                spec = fake.plan(idx, req) or {}
                if spec.get("delay"):
                    time.sleep(spec["delay"])
                status = spec.get("status", 200)
                if "body" in spec:
                    out = spec["body"]
                elif req["target"] == "AmazonSQS.SendMessage":
                    md5 = hashlib.md5(body["MessageBody"].encode()).hexdigest()
                    out = {"MessageId": "m-%d" % idx, "MD5OfMessageBody": md5}
                else:
                    out = {"Successful": [], "Failed": []}
                    for e in body["Entries"]:
                        eid = e["Id"]
                        if eid in spec.get("omit", ()):
                            continue
                        if eid in spec.get("fail", {}):
                            code, sender = spec["fail"][eid]
                            out["Failed"].append({"Id": eid, "SenderFault": sender,
                                                  "Code": code,
                                                  "Message": "injected " + code})
                            continue
                        md5 = hashlib.md5(e["MessageBody"].encode()).hexdigest()
                        if eid in spec.get("bad_md5", ()):
                            md5 = "0" * 32
                        out["Successful"].append({"Id": eid, "MessageId": "m-%d-%s" % (idx, eid),
                                                  "MD5OfMessageBody": md5})
                if spec.get("mangle"):
                    out = spec["mangle"](out)
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

        self.serve(Handler, poll_interval=0.05)

    def entries(self, idx):
        """The messages of request idx (SendMessageBatch entries or the
        SendMessage body itself)."""
        b = self.requests[idx]["body"]
        return b["Entries"] if "Entries" in b else [b]

    def bodies(self, idx):
        return [e["MessageBody"] for e in self.entries(idx)]


def records(n, fmt='{"n":%d}'):
    return [("k%d" % i, (fmt % i).encode()) for i in range(n)]


class SqsPlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sqs = harness.SqsServer()
        cls.client = harness.botocore_client("sqs", cls.sqs.url)
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sqs.stop()

    def setUp(self):
        self.tmp = harness.TempDir()
        self.env = harness.aws_env(SQS=self.sqs.url)
        self.env["FANOUT_LOG_LEVEL"] = "debug"

    def tearDown(self):
        self.tmp.cleanup()

    # ---- helpers ----

    def queue(self, prefix, fifo=False, **attrs):
        SqsPlugin.counter += 1
        name = "%s-%d%s" % (prefix, SqsPlugin.counter, ".fifo" if fifo else "")
        attributes = {k: str(v) for k, v in attrs.items()}
        if fifo:
            attributes["FifoQueue"] = "true"
        return self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def receive_all(self, url, expect=None, timeout=5.0):
        """Every message in the queue (deleted once read), in receive order."""
        out = []
        end = time.time() + timeout
        while time.time() < end:
            got = self.client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                AttributeNames=["All"]).get("Messages", [])
            if got:
                out += got
                self.client.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(got)])
                continue
            if expect is None or len(out) >= expect:
                break
            time.sleep(0.05)
        return out

    def invoke(self, mappings, event, env=None):
        e = dict(self.env)
        if env:
            e.update(env)
        r, failed = harness.invoke(self.tmp.path, mappings, event, e)
        return r, failed, r.stderr.decode(errors="replace")

    def validate(self, mappings):
        cfg = os.path.join(self.tmp.path, "validate.json")
        with open(cfg, "w") as f:
            json.dump(mappings, f)
        r = harness.run_fanout(["validate", "--config", cfg], env=self.env)
        return r.returncode, r.stdout.decode() + r.stderr.decode()

    # ---- delivery and the batch API ----

    def test_collapse_none_sends_25_records_in_3_batch_calls(self):
        q = self.queue("none")
        recs = records(25)
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        self.assertEqual(failed, [])
        msgs = self.receive_all(q, expect=25)
        self.assertEqual(sorted(m["Body"] for m in msgs), sorted(d.decode() for _, d in recs))
        calls = self.sqs.calls(queue_url=q)
        self.assertEqual([c["target"] for c in calls if c["target"].endswith("Batch")],
                         ["AmazonSQS.SendMessageBatch"] * 3)
        self.assertEqual(sorted(c["entries"] for c in calls
                                if c["target"] == "AmazonSQS.SendMessageBatch"), [5, 10, 10])
        for c in calls:
            self.assertEqual(c["contentType"], "application/x-amz-json-1.0")
            self.assertEqual((c["service"], c["region"]), ("sqs", "us-east-1"))
        self.assertEqual(len(re.findall(r"SendMessageBatch: 10 messages", err)), 2, err)
        self.assertEqual(len(re.findall(r"SendMessageBatch: 5 messages", err)), 1, err)

    def test_one_message_goes_with_send_message(self):
        q = self.queue("single")
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event([("k", b"just one")]))
        self.assertEqual(r.returncode, 0, err)
        self.assertEqual([m["Body"] for m in self.receive_all(q, 1)], ["just one"])
        self.assertEqual([c["target"] for c in self.sqs.calls(queue_url=q)
                          if c["target"].startswith("AmazonSQS.Send")],
                         ["AmazonSQS.SendMessage"])

    def test_collapse_json_is_the_default(self):
        q = self.queue("json")
        recs = [("a", b'{"id":1,"v":[1,2]}'), ("b", "plain text \u00e9".encode()),
                ("c", b"\x00\xff\xfe binary")]
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        msgs = self.receive_all(q, 1)
        self.assertEqual(len(msgs), 1)
        doc = json.loads(msgs[0]["Body"])
        self.assertEqual(doc["Records"][0], {"id": 1, "v": [1, 2]})
        self.assertEqual(doc["Records"][1], "plain text \u00e9")
        self.assertEqual(base64.b64decode(doc["Records"][2]), b"\x00\xff\xfe binary")

    def test_collapse_concat_and_concat_b64(self):
        qc, qb = self.queue("concat"), self.queue("concatb64")
        recs = [("a", b"one,"), ("b", b"two,"), ("c", b"\x01\x02\xff")]
        text_recs = recs[:2]
        r, failed, err = self.invoke(
            [harness.mapping("c", "sqs", qc, collapse="concat"),
             harness.mapping("b", "sqs", qb, collapse="concat-b64")],
            harness.kinesis_event(text_recs))
        self.assertEqual(r.returncode, 0, err)
        self.assertEqual([m["Body"] for m in self.receive_all(qc, 1)], ["one,two,"])
        self.assertEqual([m["Body"] for m in self.receive_all(qb, 1)],
                         [base64.b64encode(b"one,two,").decode()])
        # binary data: concat-b64 carries it, concat cannot
        r, failed, err = self.invoke(
            [harness.mapping("c", "sqs", qc, collapse="concat"),
             harness.mapping("b", "sqs", qb, collapse="concat-b64")],
            harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001", "1002"])
        self.assertEqual([base64.b64decode(m["Body"]) for m in self.receive_all(qb, 1)],
                         [b"one,two,\x01\x02\xff"])
        self.assertEqual(self.receive_all(qc, 0, timeout=0.2), [])
        self.assertIn("InvalidMessageContents", err)
        self.assertIn("concat-b64", err)

    def test_binary_refused_with_reason_or_sent_as_base64_by_option(self):
        q = self.queue("binary")
        recs = [("a", b"text"), ("b", b"bin\xff\x10"), ("c", b"ctl \x01 char"),
                ("d", "ok \ufffd".encode())]
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1001", "1002"])
        self.assertRegex(err, r"sequence number 1001: failed: InvalidMessageContents: .*"
                              r"invalid UTF-8 \(byte 0xFF\) at byte 3.*concat-b64")
        self.assertRegex(err, r"sequence number 1002: .*character U\+0001 at byte 4")
        self.assertEqual(sorted(m["Body"] for m in self.receive_all(q, 2)),
                         ["ok \ufffd", "text"])
        # with binaryBase64 the same records all go, marked when encoded
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none",
                                                      binaryBase64=True)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        got = {}
        for m in self.receive_all(q, 4):
            enc = m.get("MessageAttributes", {}).get("fanout-encoding", {})
            got[m["Body"]] = enc.get("StringValue")
        self.assertEqual(got, {"text": None, "ok \ufffd": None,
                               base64.b64encode(b"bin\xff\x10").decode(): "base64",
                               base64.b64encode(b"ctl \x01 char").decode(): "base64"})

    def test_base64_growth_splits_requests_or_is_reported(self):
        q = self.queue("grow")
        blob = bytes(range(256)) * 1800  # 460,800 bytes of binary
        recs = [("a", blob), ("b", blob[::-1]), ("c", b"\xff" * 800000)]
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none",
                                                      binaryBase64=True)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err[-3000:])
        self.assertEqual(failed, ["1002"])
        self.assertRegex(err, r"sequence number 1002: failed: MessageTooLong: message of "
                              r"800000 bytes is 1066695 bytes as base64 with its "
                              r"\"fanout-encoding\" attribute, larger than the limit of "
                              r"1048576 bytes")
        got = sorted(base64.b64decode(m["Body"]) for m in self.receive_all(q, 2))
        self.assertEqual(got, sorted([blob, blob[::-1]]))
        # the engine cut one call of two 460,800-byte messages; as base64
        # (614,400 + 27 attribute bytes each) they need two requests
        self.assertEqual([c["target"] for c in self.sqs.calls(queue_url=q)
                          if c["target"].startswith("AmazonSQS.Send")],
                         ["AmazonSQS.SendMessage"] * 2)

    def test_empty_record_refused(self):
        q = self.queue("empty")
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event([("a", b""), ("b", b"x")]))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertIn("empty message", err)
        self.assertEqual([m["Body"] for m in self.receive_all(q, 1)], ["x"])

    # ---- FIFO ----

    def test_fifo_group_ids_dedup_ids_and_order(self):
        q = self.queue("fifo", fifo=True)
        weird = "key with spaces \u00e9"
        keys = ["user-1", "user-2", "user-1", weird, "user-2", "user-1", weird,
                "user-3", "user-1", "user-2", "user-1", "user-3"]
        recs = [(k, ("%s#%d" % (k, i)).encode()) for i, k in enumerate(keys)]
        event = harness.kinesis_event(recs)
        mapping = harness.mapping("fifo", "sqs", q, collapse="none", parallel=False)
        r, failed, err = self.invoke([mapping], event)
        self.assertEqual(r.returncode, 0, err)
        # the same records again (a redelivered batch) carry the same
        # deduplication ids, so the queue drops them (local-aws-sqs checks
        # against the messages still in the queue, so read after both runs)
        r, failed, err = self.invoke([mapping], event)
        self.assertEqual(r.returncode, 0, err)
        msgs = self.receive_all(q, len(recs))
        self.assertEqual(len(msgs), len(recs))
        weird_group = hashlib.sha256(weird.encode()).hexdigest()
        by_group = {}
        dedup = set()
        for m in msgs:
            attrs = m["Attributes"]
            key = m["Body"].rsplit("#", 1)[0]
            self.assertEqual(attrs["MessageGroupId"], weird_group if key == weird else key)
            self.assertRegex(attrs["MessageDeduplicationId"], HEX64)
            dedup.add(attrs["MessageDeduplicationId"])
            by_group.setdefault(attrs["MessageGroupId"], []).append(m["Body"])
        self.assertEqual(len(dedup), len(recs))
        for group, bodies in by_group.items():
            want = [d.decode() for k, d in recs
                    if (weird_group if k == weird else k) == group]
            self.assertEqual(bodies, want, "order within group %s" % group)
        self.assertEqual(len([c for c in self.sqs.calls(queue_url=q)
                              if c["target"] == "AmazonSQS.SendMessageBatch"]), 4)
        # JSON collapse: one message, grouped by the first record's key
        r, failed, err = self.invoke([harness.mapping("fifo-json", "sqs", q)], event)
        self.assertEqual(r.returncode, 0, err)
        msgs = self.receive_all(q, 1)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["Attributes"]["MessageGroupId"], "user-1")
        self.assertNotIn(msgs[0]["Attributes"]["MessageDeduplicationId"], dedup)

    # ---- limits ----

    def test_oversize_record_rejected_with_size_and_limit(self):
        q = self.queue("big")
        recs = [("a", b"small"), ("b", b"x" * (MIB + 1)), ("c", b"y" * MIB)]
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err[-3000:])
        self.assertEqual(failed, ["1001"])
        self.assertRegex(err, r"sequence number 1001: record of 1048577 bytes is larger "
                              r"than the destination's limit of 1048576 bytes")
        bodies = sorted(len(m["Body"]) for m in self.receive_all(q, 2))
        self.assertEqual(bodies, [5, MIB])
        # JSON collapse counts the envelope
        r, failed, err = self.invoke([harness.mapping("j", "sqs", q)],
                                     harness.kinesis_event([("c", b"y" * (MIB - 5))]))
        self.assertEqual(r.returncode, 1)
        self.assertRegex(err, r"record of 1048571 bytes is 1048587 bytes in a JSON message, "
                              r"larger than the destination's limit of 1048576 bytes")

    def test_queue_maximum_message_size_option(self):
        q = self.queue("small", MaximumMessageSize=2048)
        recs = [("a", b"a" * 3000), ("b", b"b" * 100)]
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none",
                                                      maxMessageBytes=2048)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertIn("record of 3000 bytes is larger than the destination's limit of 2048",
                      err)
        self.assertEqual([len(m["Body"]) for m in self.receive_all(q, 1)], [100])
        # without the option the queue refuses: the service's error is kept
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertRegex(err, r"sequence number 1000: failed: .*shorter than 2048 bytes")
        # out of range
        code, out = self.validate([harness.mapping("m", "sqs", q, maxMessageBytes=MIB + 1)])
        self.assertEqual(code, 2, out)
        self.assertIn("maxMessageBytes", out)

    # ---- destinations ----

    def test_nonexistent_queue_reported(self):
        q = self.sqs.url + "/" + ACCOUNT + "/no-such-queue"
        r, failed, err = self.invoke([harness.mapping("m", "sqs", q, collapse="none")],
                                     harness.kinesis_event(records(3)))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001", "1002"])
        self.assertRegex(err, r"failed: QueueDoesNotExist: SendMessageBatch: The specified "
                              r"queue does not exist")
        # permanent: sent once, not retried
        self.assertEqual(len(self.sqs.calls(queue_url=q)), 1)

    def test_wrong_destinations_rejected(self):
        bad = {
            "sns-arn": ("arn:aws:sns:us-east-1:123456789012:topic", "SNS topic ARN"),
            "text": ("not a url", "is neither a queue URL"),
            "ftp": ("ftp://example.com/123456789012/q", "is neither a queue URL"),
            "no-name": ("https://sqs.us-east-1.amazonaws.com/123456789012/",
                        "the queue name must be"),
            "no-path": ("https://sqs.us-east-1.amazonaws.com", "the path must be"),
            "account": ("https://sqs.us-east-1.amazonaws.com/1234/q",
                        "the account must be 12 digits"),
            "name": ("arn:aws:sqs:us-east-1:123456789012:bad name", "the queue name must be"),
            "long": ("arn:aws:sqs:us-east-1:123456789012:" + "q" * 81,
                     "the queue name must be"),
            "query": ("https://sqs.us-east-1.amazonaws.com/123456789012/q?x=1",
                      "no user, query or fragment"),
            "arn-region": ("arn:aws:sqs:nowhere:123456789012:q", "is not a region"),
            "kinesis-arn": ("arn:aws:kinesis:us-east-1:123456789012:stream/s",
                            "is not an SQS queue ARN"),
            "no-region": ("https://queue.example.amazonaws.com/123456789012/q",
                          "no region in its host"),
        }
        mappings = [harness.mapping(k, "sqs", d) for k, (d, _) in bad.items()]
        mappings.append(harness.mapping("conflict", "sqs",
                                        "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
                                        region="us-east-1"))
        mappings.append(harness.mapping("conflict-arn", "sqs",
                                        "arn:aws:sqs:eu-west-1:123456789012:q",
                                        region="eu-west-2"))
        code, out = self.validate(mappings)
        self.assertEqual(code, 2, out)
        for k, (d, why) in bad.items():
            line = [x for x in out.splitlines() if '"%s"' % k in x]
            self.assertEqual(len(line), 1, "%s: %s" % (k, out))
            self.assertIn(why, line[0])
            self.assertIn("expected e.g. https://sqs.us-east-1.amazonaws.com/", line[0])
        self.assertRegex(out, r'"conflict".*region "us-east-1" conflicts with the queue\'s '
                              r'region "eu-west-1" \(from its URL\)')
        self.assertRegex(out, r'"conflict-arn".*region "eu-west-2" conflicts with the '
                              r'queue\'s region "eu-west-1" \(from its ARN\)')
        # the forms that are right
        good = ["https://sqs.us-east-1.amazonaws.com/123456789012/q",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo",
                "https://eu-west-1.queue.amazonaws.com/123456789012/q",
                "https://queue.amazonaws.com/123456789012/q",
                "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
                "https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/q",
                "https://vpce-0a1b2c3d-abcd.sqs.us-east-1.vpce.amazonaws.com/123456789012/q",
                "http://localhost:4566/000000000000/q",
                "http://127.0.0.1:9324/queue/q_1-2",
                "arn:aws:sqs:us-east-1:123456789012:q",
                "arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo",
                "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q"]
        code, out = self.validate([harness.mapping("g%d" % i, "sqs", d)
                                   for i, d in enumerate(good)] +
                                  [harness.mapping("same-region", "sqs", good[1],
                                                   region="eu-west-1")])
        self.assertEqual(code, 0, out)

    def test_arn_destination_and_regions_from_url_forms(self):
        names = ["arn", "eu", "legacy", "global", "emu"]
        qs = {n: self.queue(n) for n in names}
        name = {n: qs[n].rsplit("/", 1)[1] for n in names}
        dest = {
            "arn": "arn:aws:sqs:eu-north-1:%s:%s" % (ACCOUNT, name["arn"]),
            "eu": "https://sqs.eu-west-1.amazonaws.com/%s/%s" % (ACCOUNT, name["eu"]),
            "legacy": "https://ap-southeast-2.queue.amazonaws.com/%s/%s"
                      % (ACCOUNT, name["legacy"]),
            "global": "https://queue.amazonaws.com/%s/%s" % (ACCOUNT, name["global"]),
            "emu": qs["emu"],
        }
        want_region = {"arn": "eu-north-1", "eu": "eu-west-1", "legacy": "ap-southeast-2",
                       "global": "us-east-1", "emu": "sa-east-1"}
        # the function runs in eu-central-1: every target is another region
        mappings = [harness.mapping(n, "sqs", dest[n], collapse="none",
                                    **({"region": "sa-east-1"} if n == "emu" else {}))
                    for n in names]
        r, failed, err = self.invoke(mappings, harness.kinesis_event(records(2)),
                                     env={"AWS_REGION": "eu-central-1"})
        self.assertEqual(r.returncode, 0, err)
        for n in names:
            self.assertEqual(len(self.receive_all(qs[n], 2)), 2, n)
        calls = [c for c in self.sqs.calls("AmazonSQS.SendMessageBatch")
                 if c["queueUrl"] in dest.values() or c["queueUrl"] in qs.values()]
        seen = {}
        for c in calls:
            n = c["queueUrl"].rsplit("/", 1)[1].split("-")[0]
            seen[n] = (c["region"], c["queueUrl"])
        for n in names:
            self.assertEqual(seen[n][0], want_region[n], n)
        # an ARN becomes the endpoint's URL + /account/queue; a URL travels as given
        self.assertEqual(seen["arn"][1], "%s/%s/%s" % (self.sqs.url, ACCOUNT, name["arn"]))
        self.assertEqual(seen["eu"][1], dest["eu"])

    # ---- cross-account ----

    def test_cross_account_role_with_external_id(self):
        sts = harness.StsServer()
        try:
            q = self.queue("xacct")
            role = "arn:aws:iam::%s:role/ext-fanout-writer" % ROLE_ACCOUNT
            env = {"AWS_ENDPOINT_URL_STS": sts.url}
            r, failed, err = self.invoke(
                [harness.mapping("x", "sqs", q, collapse="none", role=role,
                                 externalId=STS_EXTERNAL_ID)],
                harness.kinesis_event(records(3)), env=env)
            self.assertEqual(r.returncode, 0, err)
            self.assertEqual(len(self.receive_all(q, 3)), 3)
            calls = self.sqs.calls("AmazonSQS.SendMessageBatch", q)
            self.assertEqual(len(calls), 1)
            self.assertTrue(calls[0]["accessKeyId"].startswith("ASIA"), calls[0])
            self.assertNotEqual(calls[0]["accessKeyId"], harness.ACCESS_KEY)
            self.assertTrue(calls[0]["securityToken"])
            with urllib.request.urlopen(sts.url + "/stats", timeout=10) as resp:
                stats = json.loads(resp.read())
            self.assertEqual(stats["roles"][role]["issued"], 1)
            self.assertEqual(stats["roles"][role]["last"]["ExternalId"], STS_EXTERNAL_ID)
            # a wrong external id: AssumeRole is denied, the records fail
            r, failed, err = self.invoke(
                [harness.mapping("x", "sqs", q, collapse="none", role=role,
                                 externalId="wrong-id")],
                harness.kinesis_event(records(2)), env=env)
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(sorted(failed), ["1000", "1001"])
            self.assertIn("AccessDenied", err)
            self.assertEqual(self.receive_all(q, 0, timeout=0.2), [])
        finally:
            sts.stop()

    # ---- failures, against the fake endpoint ----

    def fake_invoke(self, fake, recs, mapping_extra=None, env=None, queue="fake-q"):
        q = "%s/%s/%s" % (fake.url, ACCOUNT, queue)
        e = {"AWS_ENDPOINT_URL_SQS": fake.url}
        if env:
            e.update(env)
        m = harness.mapping("f", "sqs", q, collapse="none", **(mapping_extra or {}))
        return (q,) + self.invoke([m], harness.kinesis_event(recs), env=e)

    def test_partial_failure_resends_only_failed_entries(self):
        def plan(n, req):
            if n == 0:
                return {"fail": {"1": ("InternalError", False),
                                 "3": ("InvalidParameterValue", True),
                                 "4": ("RequestThrottled", False)}}
            return None
        fake = FakeSqs(plan)
        try:
            recs = records(6)
            q, r, failed, err = self.fake_invoke(fake, recs)
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(failed, ["1003"])
            self.assertRegex(err, r"sequence number 1003: failed: InvalidParameterValue: "
                                  r"SendMessageBatch entry 3 failed \(sender fault\)")
            self.assertEqual(len(fake.requests), 2, err)
            self.assertEqual(fake.bodies(0), [d.decode() for _, d in recs])
            self.assertEqual(fake.bodies(1), ['{"n":1}', '{"n":4}'])
            # the request's shape
            for req in fake.requests:
                h = req["headers"]
                self.assertEqual(req["target"], "AmazonSQS.SendMessageBatch")
                self.assertEqual(h["content-type"], "application/x-amz-json-1.0")
                self.assertIn("/us-east-1/sqs/aws4_request", h["authorization"])
                self.assertEqual(req["body"]["QueueUrl"], q)
                for e in req["body"]["Entries"]:
                    self.assertRegex(e["Id"], r"^[A-Za-z0-9_-]{1,80}$")
                    self.assertNotIn("MessageGroupId", e)
            self.assertIn("retrying", err)
        finally:
            fake.stop()

    def test_unanswered_entries_and_md5_mismatch_are_resent(self):
        fake = FakeSqs(lambda n, req: {"omit": ["2"], "bad_md5": ["0"]} if n == 0 else None)
        try:
            q, r, failed, err = self.fake_invoke(fake, records(4))
            self.assertEqual(r.returncode, 0, err)
            self.assertEqual(fake.bodies(1), ['{"n":0}', '{"n":2}'])
            self.assertIn("MD5Mismatch", err)
            self.assertIn("neither in Successful nor in Failed", err)
        finally:
            fake.stop()

    def test_doubtful_answers_resend_the_batch(self):
        """An answer that contradicts itself (an Id unknown, twice, or both
        successful and failed), is not a list, is not JSON or comes with
        another 2xx: every entry is resent. An entry left out or without a
        MessageId is resent alone; an MD5 of another body too."""
        def dup(a):
            a["Successful"][3] = dict(a["Successful"][2])
            return a

        def unknown(a):
            a["Successful"][3]["Id"] = "9"
            return a

        def both(a):
            a["Failed"] = [{"Id": "1", "SenderFault": False, "Code": "InternalError"}]
            return a

        def no_mid(a):
            del a["Successful"][1]["MessageId"]
            return a

        def swapped_md5(a):
            s = a["Successful"]
            s[0]["MD5OfMessageBody"], s[1]["MD5OfMessageBody"] = \
                s[1]["MD5OfMessageBody"], s[0]["MD5OfMessageBody"]
            return a

        spoilers = {
            "Id twice": (dup, {}, "named twice", [0, 1, 2, 3]),
            "unknown Id": (unknown, {}, "which was not sent", [0, 1, 2, 3]),
            "successful and failed": (both, {}, "named twice", [0, 1, 2, 3]),
            "Successful not a list": (lambda a: {"Successful": {"Id": "0"}}, {},
                                      "not a list", [0, 1, 2, 3]),
            "truncated": (lambda a: json.dumps(a).encode()[:50], {}, "not JSON",
                          [0, 1, 2, 3]),
            "empty": (lambda a: b"", {}, "empty body", [0, 1, 2, 3]),
            "HTTP 201": (lambda a: a, {"status": 201}, "HTTP 201", [0, 1, 2, 3]),
            "no MessageId": (no_mid, {}, "no MessageId", [1]),
            "MD5s of other bodies": (swapped_md5, {}, "MD5Mismatch", [0, 1]),
        }
        for name, (fn, extra, why, resent) in spoilers.items():
            with self.subTest(name):
                fake = FakeSqs(lambda n, req, fn=fn, extra=extra:
                               dict(extra, mangle=fn) if n == 0 else None)
                try:
                    q, r, failed, err = self.fake_invoke(fake, records(4))
                    self.assertEqual(r.returncode, 0, err)
                    self.assertIn(why, err)
                    self.assertEqual(len(fake.requests), 2)
                    self.assertEqual(fake.bodies(1), ['{"n":%d}' % i for i in resent])
                finally:
                    fake.stop()

    def test_sender_fault_is_permanent_throttling_is_not(self):
        fake = FakeSqs(lambda n, req: {"fail": {"0": ("KmsThrottled", True),
                                                "1": ("AccessDenied", True)}}
                       if n == 0 else None)
        try:
            q, r, failed, err = self.fake_invoke(fake, records(2))
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(failed, ["1001"])
            self.assertEqual(fake.bodies(1), ['{"n":0}'])
        finally:
            fake.stop()

    def test_5xx_throttling_and_timeouts_are_retried(self):
        answers = [
            {"status": 500, "body": {"__type": "com.amazonaws.sqs#InternalError",
                                     "message": "boom"}},
            {"status": 400, "body": {"__type": "com.amazonaws.sqs#RequestThrottled",
                                     "message": "slow down"}},
            # engine gives up on unknown codes at once: KmsThrottled is the
            # plugin's to call throttling
            {"status": 400, "body": {"__type": "com.amazonaws.sqs#KmsThrottled",
                                     "message": "kms slow down"}},
            {"delay": 1.5},
        ]
        fake = FakeSqs(lambda n, req: answers[n] if n < len(answers) else None)
        try:
            # four failed attempts, then the answer: five, all the engine's
            q, r, failed, err = self.fake_invoke(fake, records(3),
                                                 env={"FANOUT_AWS_TIMEOUT_MS": "400",
                                                      "FANOUT_RETRY_ATTEMPTS": "5"})
            self.assertEqual(r.returncode, 0, err)
            self.assertEqual(len(fake.requests), 5, err)
            for i in range(5):
                self.assertEqual(fake.bodies(i), ['{"n":0}', '{"n":1}', '{"n":2}'])
            self.assertIn("KmsThrottled", err)
        finally:
            fake.stop()

    def test_persistent_5xx_and_throttling_reported(self):
        for status, code, word in ((500, "InternalError", "retryable failure"),
                                   (400, "RequestThrottled", "throttled")):
            fake = FakeSqs(lambda n, req: {"status": status,
                                           "body": {"__type": "com.amazonaws.sqs#" + code,
                                                    "message": "no"}})
            try:
                q, r, failed, err = self.fake_invoke(
                    fake, records(2), env={"FANOUT_AWS_MAX_ATTEMPTS": "2",
                                           "FANOUT_RETRY_ATTEMPTS": "2"})
                self.assertEqual(r.returncode, 1, err)
                self.assertEqual(sorted(failed), ["1000", "1001"])
                self.assertRegex(err, r"sequence number 1000: %s: %s" % (word, code))
                # FANOUT_RETRY_ATTEMPTS: the engine alone retries record sends
                self.assertEqual(len(fake.requests), 2)
            finally:
                fake.stop()

    def test_fifo_entries_carry_group_and_dedup_ids_stable_across_retries(self):
        fake = FakeSqs(lambda n, req: {"fail": {"1": ("InternalError", False)}}
                       if n == 0 else None)
        try:
            recs = [("a", b"1"), ("b", b"2"), ("a", b"3")]
            q, r, failed, err = self.fake_invoke(fake, recs, queue="f.fifo")
            self.assertEqual(r.returncode, 0, err)
            first = fake.entries(0)
            again = fake.entries(1)
            self.assertEqual(fake.requests[1]["target"], "AmazonSQS.SendMessage")
            self.assertEqual([e["MessageGroupId"] for e in first], ["a", "b", "a"])
            self.assertEqual(len({e["MessageDeduplicationId"] for e in first}), 3)
            self.assertEqual([e["MessageBody"] for e in again], ["2"])
            self.assertEqual(again[0]["MessageDeduplicationId"],
                             first[1]["MessageDeduplicationId"])
            # another mapping id to the same queue gets other ids
            q2, r, failed, err = self.fake_invoke(fake, recs, queue="f.fifo",
                                                  mapping_extra={"id": "other"})
            self.assertEqual(r.returncode, 0, err)
            other = fake.entries(2)
            self.assertTrue(set(e["MessageDeduplicationId"] for e in other).isdisjoint(
                e["MessageDeduplicationId"] for e in first))
        finally:
            fake.stop()


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed - len(result.skipped), failed))
    sys.exit(1 if failed else 0)
