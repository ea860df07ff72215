"""Integration tests of the sns plugin: the real `fanout invoke` against
tests/servers/aws_service.py (SNS Query API, every request's signature
checked with botocore, faults on demand), read back through its
/__received and /__stats; the cross-account role through
tests/servers/sts_server.py, which registers the keys it issues with
aws_service.

Run by meson with /usr/bin/python3 (standard library + python3-botocore)."""

import base64
import hashlib
import json
import os
import re
import sys
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ACCOUNT = harness.ACCOUNT
ROLE_ACCOUNT = "210987654321"
STS_EXTERNAL_ID = "fanout+ext:id/=,.@-1"  # sts_server.py's default for ext-... roles
HEX64 = re.compile(r"^[0-9a-f]{64}$")
LIMIT = 262144


def topic(name, region="us-east-1", account=ACCOUNT):
    return "arn:aws:sns:%s:%s:%s" % (region, account, name)


def records(n, fmt='{"n":%d}'):
    return [("k%d" % i, (fmt % i).encode()) for i in range(n)]


class FakeSns(harness.InProcessServer):
    """A loopback endpoint answering SNS calls with the XML it is given:
    answers[n] for the n-th call, then a plain success. Records each
    request's form."""

    def __init__(self, answers):
        from urllib.parse import parse_qsl
        fake = self
        self.requests = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
                n = len(fake.requests)
                fake.requests.append({"form": form,
                                      "contentType": self.headers.get("Content-Type")})
                if n < len(answers):
                    xml = answers[n]
                elif form.get("Action") == "Publish":
                    xml = ("<PublishResponse><PublishResult><MessageId>m</MessageId>"
                           "</PublishResult></PublishResponse>")
                else:
                    ids = [v for k, v in form.items() if k.endswith(".Id")]
                    xml = ("<PublishBatchResponse><PublishBatchResult><Successful>" +
                           "".join("<member><Id>%s</Id><MessageId>m%s</MessageId></member>"
                                   % (i, i) for i in ids) +
                           "</Successful><Failed/></PublishBatchResult></PublishBatchResponse>")
                data = xml.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.serve(Handler, poll_interval=0.05)

    def messages(self, n):
        f = self.requests[n]["form"]
        if f["Action"] == "Publish":
            return [f["Message"]]
        out, i = [], 1
        while "PublishBatchRequestEntries.member.%d.Id" % i in f:
            out.append(f["PublishBatchRequestEntries.member.%d.Message" % i])
            i += 1
        return out


class SnsPlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = harness.TempDir()
        cls.fifo = topic("orders.fifo")
        cls.srv = harness.AwsService(cls.dir.path, resources={"sns": [
            topic("t"), topic("a"), topic("b"), topic("c"), topic("big"),
            topic("west", region="eu-west-1"), topic("x", account=ROLE_ACCOUNT),
            {"arn": cls.fifo, "contentBasedDeduplication": False}]})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.dir.cleanup()

    def setUp(self):
        self.srv.reset()
        self.tmp = harness.TempDir()
        self.env = harness.aws_env(SNS=self.srv.url)
        self.env["FANOUT_LOG_LEVEL"] = "debug"

    def tearDown(self):
        self.tmp.cleanup()

    # ---- helpers ----

    def invoke(self, mappings, event, env=None):
        e = dict(self.env)
        if env:
            e.update(env)
        r, failed = harness.invoke(self.tmp.path, mappings, event, e)
        return r, failed, r.stderr.decode(errors="replace")

    def received(self, arn, n=0, timeout_ms=2000):
        return self.srv.received("sns", arn, n, timeout_ms if n else 0)

    def ops(self):
        """{operation: count} of SNS requests the service answered."""
        by = self.srv.stats()["by_service"].get("sns", {})
        return {op: v["count"] for op, v in by.items()}

    def validate(self, mappings):
        return harness.validate(self.tmp.path, mappings, self.env)

    # ---- delivery and the batch API ----

    def test_collapse_none_publish_batch_in_3_calls(self):
        recs = records(25)
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        got = self.received(topic("t"), 25)
        self.assertEqual(sorted(e["message"] for e in got), sorted(d.decode() for _, d in recs))
        self.assertEqual({e["operation"] for e in got}, {"PublishBatch"})
        sizes = {}
        for e in got:
            sizes[e["requestId"]] = sizes.get(e["requestId"], 0) + 1
            self.assertEqual((e["region"], e["accessKeyId"]), ("us-east-1", harness.ACCESS_KEY))
            self.assertIsNone(e["messageGroupId"])
        self.assertEqual(sorted(sizes.values()), [5, 10, 10])
        self.assertEqual(self.ops(), {"PublishBatch": 3})
        self.assertEqual(len(re.findall(r"PublishBatch to \S+: 10 messages", err)), 2, err)

    def test_one_message_goes_with_publish(self):
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none")],
                                     harness.kinesis_event([("k", "h\u00e9llo & <xml>".encode())]))
        self.assertEqual(r.returncode, 0, err)
        got = self.received(topic("t"), 1)
        self.assertEqual([(e["operation"], e["message"]) for e in got],
                         [("Publish", "h\u00e9llo & <xml>")])

    def test_collapse_modes(self):
        recs = [("a", b'{"id":1}'), ("b", "caf\u00e9 ".encode()), ("c", b"\x00\xff bin")]
        r, failed, err = self.invoke(
            [harness.mapping("json", "sns", topic("a")),  # the default
             harness.mapping("concat", "sns", topic("b"), collapse="concat"),
             harness.mapping("b64", "sns", topic("c"), collapse="concat-b64")],
            harness.kinesis_event(recs))
        # concat cannot carry the binary record: the other two can
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001", "1002"])
        self.assertRegex(err, r"\[concat\] record not delivered.*failed: InvalidParameter: "
                              r"message of 20 bytes is not text SNS accepts: "
                              r"invalid UTF-8 \(byte 0xFF\) at byte 15.*concat-b64")
        doc = json.loads(self.received(topic("a"), 1)[0]["message"])
        self.assertEqual(doc["Records"][:2], [{"id": 1}, "caf\u00e9 "])
        self.assertEqual(base64.b64decode(doc["Records"][2]), b"\x00\xff bin")
        self.assertEqual(base64.b64decode(self.received(topic("c"), 1)[0]["message"]),
                         b'{"id":1}caf\xc3\xa9 \x00\xff bin')
        self.assertEqual(self.received(topic("b")), [])
        r, failed, err = self.invoke(
            [harness.mapping("concat", "sns", topic("b"), collapse="concat")],
            harness.kinesis_event(recs[:2]))
        self.assertEqual(r.returncode, 0, err)
        self.assertEqual([e["message"] for e in self.received(topic("b"), 1)],
                         ['{"id":1}caf\u00e9 '])
        self.assertEqual(self.ops(), {"Publish": 3})

    def test_binary_base64_option_and_empty_message(self):
        recs = [("a", b"text"), ("b", b"\xff\xfe\x00"), ("c", b"")]
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none",
                                                      binaryBase64=True)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1002"])
        self.assertRegex(err, r"sequence number 1002: failed: InvalidParameter: empty message")
        got = {e["message"]: e["messageAttributes"] for e in self.received(topic("t"), 2)}
        self.assertEqual(got, {"text": {}, base64.b64encode(b"\xff\xfe\x00").decode(): {
            "fanout-encoding": {"DataType": "String", "StringValue": "base64"}}})

    # ---- FIFO ----

    def test_fifo_topic_group_and_deduplication_ids(self):
        weird = "key with space \u00e9"
        keys = ["u1", "u2", "u1", weird, "u1"]
        recs = [(k, ("%s#%d" % (k, i)).encode()) for i, k in enumerate(keys)]
        m = harness.mapping("fifo", "sns", self.fifo, collapse="none", parallel=False)
        r, failed, err = self.invoke([m], harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        got = self.received(self.fifo, 5)
        weird_group = hashlib.sha256(weird.encode()).hexdigest()
        self.assertEqual([e["message"] for e in got], [d.decode() for _, d in recs])
        self.assertEqual([e["messageGroupId"] for e in got],
                         [weird_group if k == weird else k for k in keys])
        ids = [e["messageDeduplicationId"] for e in got]
        for i in ids:
            self.assertRegex(i, HEX64)
        self.assertEqual(len(set(ids)), 5)
        self.assertTrue(all(e["sequenceNumber"] for e in got))
        # the same records again: the same deduplication ids (SNS drops
        # them as duplicates; this endpoint records them)
        r, failed, err = self.invoke([m], harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        again = self.received(self.fifo, 10)[5:]
        self.assertEqual([e["messageDeduplicationId"] for e in again], ids)
        # JSON collapse: one message, the first record's key as group
        r, failed, err = self.invoke([harness.mapping("fifo-json", "sns", self.fifo)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        last = self.received(self.fifo, 11)[10]
        self.assertEqual(last["messageGroupId"], "u1")
        self.assertNotIn(last["messageDeduplicationId"], ids)

    # ---- failures ----

    def test_partial_failure_resends_only_failed_entries(self):
        self.srv.faults({"service": "sns", "kind": "partial", "indexes": [1, 3], "count": 1})
        recs = records(6)
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        got = self.received(topic("t"), 6)
        self.assertEqual(sorted(e["message"] for e in got), sorted(d.decode() for _, d in recs))
        by_req = {}
        for e in got:
            by_req.setdefault(e["requestId"], []).append(e["message"])
        self.assertEqual(sorted(by_req.values(), key=len),
                         [['{"n":1}', '{"n":3}'],
                          ['{"n":0}', '{"n":2}', '{"n":4}', '{"n":5}']])
        self.assertEqual(self.ops(), {"PublishBatch": 2})
        self.assertRegex(err, r"message 1 \(attempt 1\): retry: InternalError: PublishBatch "
                              r"entry 1 failed \(service fault\)")

    def test_sender_fault_entries_fail_for_good(self):
        self.srv.faults({"service": "sns", "kind": "partial", "indexes": [2], "count": 1,
                         "senderFault": True, "code": "InvalidParameter",
                         "message": "Invalid parameter: injected"})
        self.srv.faults({"service": "sns", "kind": "partial", "indexes": [0], "count": 1,
                         "code": "Throttled", "message": "Rate exceeded"})
        recs = records(4)
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1002"])
        self.assertRegex(err, r"sequence number 1002: failed: InvalidParameter: PublishBatch "
                              r"entry 2 failed \(sender fault\): Invalid parameter: injected "
                              r"\(1 attempt\)")
        self.assertEqual(sorted(e["message"] for e in self.received(topic("t"), 3)),
                         ['{"n":0}', '{"n":1}', '{"n":3}'])

    def test_partial_failure_of_a_fifo_batch(self):
        # the first call fails entry 1 (throttled): it alone is resent, with
        # Publish, after the others went
        self.srv.faults({"service": "sns", "kind": "partial", "indexes": [1], "count": 1,
                         "code": "Throttled"})
        recs = [("g", b"1"), ("g", b"2"), ("h", b"3")]
        r, failed, err = self.invoke([harness.mapping("f", "sns", self.fifo, collapse="none",
                                                      parallel=False)],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, err)
        got = self.received(self.fifo, 3)
        self.assertEqual(sorted(e["message"] for e in got), ["1", "2", "3"])
        self.assertEqual([e["operation"] for e in got], ["PublishBatch", "PublishBatch",
                                                         "Publish"])
        self.assertIn("throttled: Throttled", err)

    def test_throttling_and_500s_are_retried(self):
        self.srv.faults([{"service": "sns", "kind": "throttle", "count": 2},
                         {"service": "sns", "kind": "error500", "count": 2},
                         {"service": "sns", "kind": "reset", "count": 1}])
        recs = records(3)
        # five faults, then the answer: six attempts, all the engine's
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none")],
                                     harness.kinesis_event(recs),
                                     env={"FANOUT_RETRY_ATTEMPTS": "6"})
        self.assertEqual(r.returncode, 0, err)
        self.assertEqual(sorted(e["message"] for e in self.received(topic("t"), 3)),
                         sorted(d.decode() for _, d in recs))
        stats = self.srv.stats()
        self.assertEqual(stats["faults_by_kind"]["throttle"], 2)
        self.assertEqual(stats["faults_by_kind"]["error500"], 2)
        self.assertEqual(stats["faults_by_kind"]["reset"], 1)

    def test_persistent_throttling_and_500s_reported(self):
        env = {"FANOUT_AWS_MAX_ATTEMPTS": "2", "FANOUT_RETRY_ATTEMPTS": "2"}
        for kind, word, code in (("throttle", "throttled", "ThrottlingException"),
                                 ("error500", "retryable failure", "InternalError")):
            self.srv.reset()
            self.srv.faults({"service": "sns", "kind": kind, "count": -1})
            r, failed, err = self.invoke(
                [harness.mapping("m", "sns", topic("t"), collapse="none")],
                harness.kinesis_event(records(2)), env=env)
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(sorted(failed), ["1000", "1001"])
            self.assertRegex(err, r"sequence number 1000: %s: %s: PublishBatch: " % (word, code))
            # FANOUT_RETRY_ATTEMPTS: the engine alone retries record sends
            self.assertEqual(self.srv.stats()["faults_by_kind"][kind], 2)
            self.assertEqual(self.received(topic("t")), [])

    def test_timeout_is_retried(self):
        self.srv.faults({"service": "sns", "kind": "slow", "delay_ms": 1500, "count": 1})
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("t"), collapse="none")],
                                     harness.kinesis_event(records(2)),
                                     env={"FANOUT_AWS_TIMEOUT_MS": "400"})
        self.assertEqual(r.returncode, 0, err)
        self.assertIn("Timeout", err)
        # the slow answer still arrives at the service: at least once
        got = self.received(topic("t"), 4, timeout_ms=3000)
        self.assertEqual(sorted(set(e["message"] for e in got)), ['{"n":0}', '{"n":1}'])

    def test_answers_read_tolerantly_and_unacknowledged_entries_resent(self):
        answers = [
            # members in any order, attributes and white space, entities in
            # the message, an entry not mentioned at all (2)
            '<?xml version="1.0"?>\n<PublishBatchResponse xmlns="%s">\n'
            '<PublishBatchResult>\n  <Failed>\n    <member>\n      <Id>1</Id>\n'
            '      <Code>InternalError</Code>\n      <Message>try &lt;again&gt; &amp; '
            'again</Message>\n      <SenderFault>false</SenderFault>\n    </member>\n'
            '  </Failed>\n  <Successful >\n    <member ><MessageId>m0</MessageId>'
            '<Id>0</Id></member>\n  </Successful>\n</PublishBatchResult>\n'
            '<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\n'
            '</PublishBatchResponse>' % "http://sns.amazonaws.com/doc/2010-03-31/",
            # HTTP 200 without a MessageId is not a delivery
            "<PublishBatchResponse><PublishBatchResult><Successful><member><Id>0</Id>"
            "</member><member><Id>1</Id><MessageId>m1</MessageId></member></Successful>"
            "<Failed/></PublishBatchResult></PublishBatchResponse>",
        ]
        fake = FakeSns(answers)
        try:
            arn = topic("t")
            r, failed, err = self.invoke([harness.mapping("m", "sns", arn, collapse="none")],
                                         harness.kinesis_event(records(3)),
                                         env={"AWS_ENDPOINT_URL_SNS": fake.url})
            self.assertEqual(r.returncode, 0, err)
            self.assertEqual([fake.messages(i) for i in range(len(fake.requests))],
                             [['{"n":0}', '{"n":1}', '{"n":2}'], ['{"n":1}', '{"n":2}'],
                              ['{"n":1}']])
            self.assertIn("try <again> & again", err)
            self.assertIn("no MessageId", err)
            self.assertIn("neither in Successful nor in Failed", err)
            form = fake.requests[0]["form"]
            self.assertEqual((form["Action"], form["Version"], form["TopicArn"]),
                             ("PublishBatch", "2010-03-31", arn))
            self.assertEqual([form["PublishBatchRequestEntries.member.%d.Id" % i]
                              for i in (1, 2, 3)], ["0", "1", "2"])
            self.assertEqual(fake.requests[2]["form"]["Action"], "Publish")
            self.assertTrue(fake.requests[0]["contentType"].startswith(
                "application/x-www-form-urlencoded"))
        finally:
            fake.stop()

    # ---- limits ----

    def test_doubtful_answers_are_not_deliveries(self):
        """aws_service publishes, then spoils its answer: an answer that
        contradicts itself or answers another action makes every entry of
        the batch resent; an entry it leaves out is resent alone; a single
        Publish needs a complete PublishResponse with a MessageId."""
        both = ("<Failed>\n<member><Id>1</Id><Code>InternalError</Code><Message>m</Message>"
                "<SenderFault>false</SenderFault></member>")
        spoilers = {
            "unknown Id": ([{"op": "replace", "pattern": "<Id>2</Id>", "repl": "<Id>7</Id>"}],
                           "not sent", 3),
            "Id twice": ([{"op": "replace", "pattern": "<Id>2</Id>", "repl": "<Id>1</Id>"}],
                         "named twice", 3),
            "successful and failed": ([{"op": "replace", "pattern": "<Failed>", "repl": both}],
                                      "named twice", 3),
            "PublishResponse to PublishBatch": (
                [{"op": "replace", "pattern": "PublishBatch(Response|Result)",
                  "repl": "Publish\\1"}], "no complete <PublishBatchResponse>", 3),
            "truncated": ([{"op": "truncate"}], "no complete", 3),
            "two answers in one": ([{"op": "replace", "pattern": "(?s)^(.*)$",
                                     "repl": "\\1\\1"}], "no complete", 3),
            "empty": ([{"op": "body", "body": ""}], "empty body", 3),
            "HTTP 201": ([{"op": "status", "status": 201}], "HTTP 201", 3),
            "an entry left out": ([{"op": "replace", "pattern": "(?s)<member>\\s*<Id>2</Id>.*?"
                                    "</member>", "repl": ""}],
                                  "neither in Successful nor in Failed", 1),
        }
        arn = topic("c")
        for name, (ops, why, resent) in spoilers.items():
            with self.subTest(name):
                self.srv.reset()
                self.srv.faults({"service": "sns", "kind": "mangle", "ops": ops})
                r, failed, err = self.invoke(
                    [harness.mapping("m", "sns", arn, collapse="none")],
                    harness.kinesis_event(records(3)))
                self.assertEqual(r.returncode, 0, err)
                got = sorted(e["message"] for e in self.received(arn, 3 + resent))
                want = ['{"n":0}', '{"n":1}', '{"n":2}']
                self.assertEqual(got, sorted(want + want[3 - resent:]), name)
                self.assertIn(why, err)
        # a single Publish: no MessageId, or a PublishBatchResponse
        for name, ops in {
                "no MessageId": [{"op": "replace", "pattern": "<MessageId>[^<]*</MessageId>",
                                  "repl": ""}],
                "PublishBatchResponse to Publish": [
                    {"op": "replace", "pattern": "Publish(Response|Result)",
                     "repl": "PublishBatch\\1"}]}.items():
            with self.subTest(name):
                self.srv.reset()
                self.srv.faults({"service": "sns", "kind": "mangle", "ops": ops})
                r, failed, err = self.invoke(
                    [harness.mapping("m", "sns", arn, collapse="none")],
                    harness.kinesis_event(records(1)))
                self.assertEqual(r.returncode, 0, err)
                self.assertEqual([e["message"] for e in self.received(arn, 2)],
                                 ['{"n":0}'] * 2)
                self.assertIn("Publish answered with", err)
        # forever: reported failed, not delivered
        self.srv.reset()
        self.srv.faults({"service": "sns", "kind": "mangle", "count": -1, "op": "truncate"})
        r, failed, err = self.invoke([harness.mapping("m", "sns", arn, collapse="none")],
                                     harness.kinesis_event(records(3)),
                                     env={"FANOUT_RETRY_ATTEMPTS": "2"})
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(len(failed), 3)

    def test_oversize_record_rejected_with_size_and_limit(self):
        recs = [("a", b"x" * (LIMIT + 1)), ("b", b"y" * LIMIT), ("c", b"small")]
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("big"),
                                                      collapse="none")],
                                     harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 1, err[-2000:])
        self.assertEqual(failed, ["1000"])
        self.assertRegex(err, r"sequence number 1000: record of 262145 bytes is larger than "
                              r"the destination's limit of 262144 bytes per message")
        got = self.received(topic("big"), 2)
        self.assertEqual(sorted(len(e["message"]) for e in got), [5, LIMIT])
        # 262,144 bytes in all per PublishBatch: the two went in two calls
        self.assertEqual(self.ops(), {"Publish": 2})
        # JSON collapse counts the envelope
        r, failed, err = self.invoke([harness.mapping("j", "sns", topic("big"))],
                                     harness.kinesis_event([("c", b"z" * (LIMIT - 5))]))
        self.assertEqual(r.returncode, 1)
        self.assertRegex(err, r"record of 262139 bytes is 262155 bytes in a JSON message, "
                              r"larger than the destination's limit of 262144 bytes")

    def test_max_message_bytes_option(self):
        # a topic raised to 1 MiB: the engine lets 300,000 bytes through;
        # this endpoint keeps SNS's 256 KB, so its refusal is reported
        rec = [("a", b"x" * 300000)]
        m = harness.mapping("m", "sns", topic("big"), collapse="none", maxMessageBytes=1048576)
        r, failed, err = self.invoke([m], harness.kinesis_event(rec))
        self.assertEqual(r.returncode, 1, err[-2000:])
        self.assertRegex(err, r"sequence number 1000: failed: InvalidParameter: Publish: "
                              r"Invalid parameter: Message too long")
        code, out = self.validate([harness.mapping("m", "sns", topic("big"),
                                                   maxMessageBytes=1048577)])
        self.assertEqual(code, 2, out)
        self.assertIn("maxMessageBytes", out)
        # a lower limit is kept too
        m = harness.mapping("m", "sns", topic("big"), collapse="none", maxMessageBytes=1000)
        r, failed, err = self.invoke([m], harness.kinesis_event([("a", b"x" * 1001)]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("limit of 1000 bytes", err)

    # ---- destinations and regions ----

    def test_nonexistent_topic_reported(self):
        r, failed, err = self.invoke([harness.mapping("m", "sns", topic("nope"),
                                                      collapse="none")],
                                     harness.kinesis_event(records(2)))
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        self.assertRegex(err, r"failed: NotFound: PublishBatch: Topic does not exist")
        self.assertEqual(self.ops(), {"PublishBatch": 1})

    def test_wrong_destinations_rejected(self):
        bad = {
            "sqs-url": ("https://sqs.us-east-1.amazonaws.com/123456789012/q",
                        "is a URL (an SQS queue?"),
            "sqs-arn": ("arn:aws:sqs:us-east-1:123456789012:q", "is an SQS queue ARN"),
            "text": ("not a url", "is not an SNS topic ARN"),
            "account": ("arn:aws:sns:us-east-1:123:t", "the account must be 12 digits"),
            "bad-region": ("arn:aws:sns:mars:123456789012:t", "is not a region"),
            "name": ("arn:aws:sns:us-east-1:123456789012:bad name", "the topic name must be"),
            "long": ("arn:aws:sns:us-east-1:123456789012:" + "t" * 257,
                     "the topic name must be"),
            "empty-name": ("arn:aws:sns:us-east-1:123456789012:", "the topic name must be"),
            "sub": ("arn:aws:sns:us-east-1:123456789012:t:1c2d", "the topic name must be"),
        }
        mappings = [harness.mapping(k, "sns", d) for k, (d, _) in bad.items()]
        mappings.append(harness.mapping("conflict", "sns", topic("t", region="eu-west-1"),
                                        region="us-east-1"))
        code, out = self.validate(mappings)
        self.assertEqual(code, 2, out)
        for k, (d, why) in bad.items():
            line = [x for x in out.splitlines() if '"%s"' % k in x]
            self.assertEqual(len(line), 1, "%s: %s" % (k, out))
            self.assertIn(why, line[0])
            self.assertIn("expected e.g. arn:aws:sns:us-east-1:123456789012:my-topic", line[0])
        self.assertRegex(out, r'"conflict".*region "us-east-1" conflicts with the topic\'s '
                              r'region "eu-west-1"')
        good = [topic("t"), topic("t.fifo"), "arn:aws-cn:sns:cn-north-1:123456789012:t",
                "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t-1_2", topic("t" * 251 + ".fifo")]
        code, out = self.validate([harness.mapping("g%d" % i, "sns", d)
                                   for i, d in enumerate(good)] +
                                  [harness.mapping("same", "sns", topic("t"),
                                                   region="us-east-1")])
        self.assertEqual(code, 0, out)

    def test_cross_region_topic_signed_for_its_region(self):
        west = topic("west", region="eu-west-1")
        r, failed, err = self.invoke([harness.mapping("w", "sns", west, collapse="none"),
                                      harness.mapping("w2", "sns", west, region="eu-west-1")],
                                     harness.kinesis_event(records(2)))
        self.assertEqual(r.returncode, 0, err)
        got = self.received(west, 3)
        self.assertEqual(len(got), 3)
        self.assertEqual({e["region"] for e in got}, {"eu-west-1"})

    def test_cross_account_role_with_external_id(self):
        sts = harness.StsServer(register_with=[self.srv.url])
        try:
            arn = topic("x", account=ROLE_ACCOUNT)
            role = "arn:aws:iam::%s:role/ext-fanout-publisher" % ROLE_ACCOUNT
            env = {"AWS_ENDPOINT_URL_STS": sts.url}
            r, failed, err = self.invoke(
                [harness.mapping("x", "sns", arn, collapse="none", role=role,
                                 externalId=STS_EXTERNAL_ID)],
                harness.kinesis_event(records(3)), env=env)
            self.assertEqual(r.returncode, 0, err)
            self.assertEqual(len(sts.issued), 1)
            got = self.received(arn, 3)
            self.assertEqual({(e["accessKeyId"], e["accountId"]) for e in got},
                             {(sts.issued[0], ROLE_ACCOUNT)})
            with urllib.request.urlopen(sts.url + "/stats", timeout=10) as resp:
                stats = json.loads(resp.read())
            self.assertEqual(stats["roles"][role]["last"]["ExternalId"], STS_EXTERNAL_ID)
            # a wrong external id: AssumeRole is denied, nothing is sent
            r, failed, err = self.invoke(
                [harness.mapping("x", "sns", arn, collapse="none", role=role,
                                 externalId="wrong-id")],
                harness.kinesis_event(records(2)), env=env)
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(sorted(failed), ["1000", "1001"])
            self.assertIn("AccessDenied", err)
            self.assertEqual(len(self.received(arn)), 3)
        finally:
            sts.stop()


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed - len(result.skipped), failed))
    sys.exit(1 if failed else 0)
