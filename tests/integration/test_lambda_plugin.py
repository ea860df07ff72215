"""Integration tests of the `lambda` destination plugin (asynchronous Invoke).

`fanout invoke` runs against tests/servers/aws_service.py, which checks
every request's SigV4 signature with botocore, validates Invoke as Lambda
does (function name forms, Qualifier, 1 MB Event payloads, existing
functions and aliases) and records what each invocation carried. STS is
tests/servers/sts_server.py, which registers the keys it issues with
aws_service so the assumed role's requests are accepted.
(tests/integration/test_lambda.py is the fanout binary as a Lambda runtime,
not this plugin.) Run by meson with /usr/bin/python3.
"""

import base64
import json
import os
import re
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LIMIT = 1048576          # the asynchronous invocation payload limit
ENVELOPE = len('{"Records":[]}')
OTHER_ACCOUNT = "210987654321"
EXTERNAL_ID = "fanout+ext:id/=,.@-1"   # what sts_server.py's ext-... roles want


def load_records(name):
    with open(harness.sample_event(name), encoding="utf-8") as f:
        return json.load(f)["Records"]


def elements(text):
    """The elements of an event {"Records":[...]} as (parsed, exact text)."""
    dec = json.JSONDecoder()
    head = '{"Records":['
    assert text.startswith(head) and text.endswith("]}"), text[:40]
    i, out = len(head), []
    while text[i] != "]":
        obj, end = dec.raw_decode(text, i)
        out.append((obj, text[i:end]))
        i = end + (1 if text[end] == "," else 0)
    return out


class LambdaPlugin(harness.AwsServiceCase):
    RESOURCES = {"lambda": [
        "fn", "fn:live", "ordered", "big", "flaky", "other-region",
        "arn:aws:lambda:eu-west-1:123456789012:function:remote",
        "arn:aws:lambda:eu-west-1:123456789012:function:remote:prod"]}
    ENDPOINTS = ("LAMBDA",)

    def received(self, name, n=0, timeout_ms=3000):
        return self.aws.received("lambda", name, n, timeout_ms)

    def assert_exactly_once(self, invocations, source_records):
        got = [e for inv in invocations for e in inv["payload"]["Records"]]
        key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
        self.assertEqual(sorted(map(key, got)), sorted(map(key, source_records)))

    # ---- the source event, as the stream delivered it ----

    def test_kinesis_sample_invokes_with_exactly_the_source_records(self):
        src = load_records("kinesis.json")
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn",
                                                 source=src[0]["eventSourceARN"])],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(failed, [])
        inv = self.received("fn", 1)
        self.assertEqual(len(inv), 1)
        self.assertEqual(inv[0]["payload"], {"Records": src})
        self.assertEqual(inv[0]["invocationType"], "Event")
        self.assertEqual(inv[0]["functionRef"], "fn")
        self.assertIsNone(inv[0]["qualifier"])
        self.assertEqual(inv[0]["region"], "us-east-1")
        self.assertEqual(inv[0]["accessKeyId"], harness.ACCESS_KEY)

    def test_dynamodb_sample_invokes_with_exactly_the_source_records(self):
        src = load_records("dynamodb.json")
        # convertDDB changes the decoded data, not the source event
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn", convertDDB=True,
                                                 source=src[0]["eventSourceARN"])],
                                harness.sample_event("dynamodb.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("fn", 1)
        self.assertEqual([i["payload"] for i in inv], [{"Records": src}])
        # the source record's own text: DynamoDB numbers stay the strings sent
        self.assertRegex(inv[0]["payloadText"], r'"N":\s*"12345678901234567890123456789\.5"')

    def test_kpl_aggregates_sent_once_each(self):
        src = load_records("kpl-aggregated.json")
        corrupt = None
        with open(harness.sample_event("kpl-aggregated.expected.jsonl"), encoding="utf-8") as f:
            for line in f:
                corrupt = json.loads(line).get("corrupt", corrupt)
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn", deaggregate=True,
                                                 source=src[0]["eventSourceARN"])],
                                harness.sample_event("kpl-aggregated.json"))
        # the aggregate whose digest does not match is reported, not sent
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(failed, [corrupt])
        inv = self.received("fn", 1)
        self.assertEqual(len(inv), 1)
        want = [x for x in src if x["kinesis"]["sequenceNumber"] != corrupt]
        self.assertEqual(inv[0]["payload"]["Records"], want)

    def test_records_payload_carries_the_decoded_records(self):
        expected = []
        with open(harness.sample_event("kpl-aggregated.expected.jsonl"), encoding="utf-8") as f:
            expected = [x for x in map(json.loads, f) if "corrupt" not in x]
        src = load_records("kpl-aggregated.json")
        r, _ = self.invoke([harness.mapping("l", "lambda", "fn", deaggregate=True,
                                            payload="records",
                                            source=src[0]["eventSourceARN"])],
                           harness.sample_event("kpl-aggregated.json"))
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        recs = self.received("fn", 1)[0]["payload"]["Records"]
        self.assertEqual(len(recs), len(expected))
        for want, got in zip(expected, recs):
            self.assertEqual(got["key"], want["key"])
            data = (got["data"].encode() if "data" in got
                    else base64.b64decode(got["dataBase64"]))
            self.assertEqual(data, base64.b64decode(want["dataB64"]))
            self.assertEqual(got["source"], src[0]["eventSourceARN"])
            self.assertIn("sequenceNumber", got)
        # binary data goes as base64
        ev = harness.kinesis_event([("k", b"\xff\xfe"), ("k2", b"plain")])
        r, _ = self.invoke([harness.mapping("l", "lambda", "fn", payload="records")], ev)
        recs = self.received("fn", 2)[1]["payload"]["Records"]
        self.assertEqual(recs[0]["dataBase64"], "//4=")
        self.assertEqual(recs[1]["data"], "plain")
        self.assertEqual(recs[1]["action"], "PUT")

    # ---- splitting at the payload limit ----

    def test_split_over_1mb_into_fewest_invocations(self):
        # 24 records of 200,000 bytes: ~267 KB each as source JSON, 3 per
        # 1 MB event (4 would be 1.07 MB), so 8 invocations
        recs = [("k%d" % i, bytes([65 + i % 26]) * 200000) for i in range(24)]
        ev = harness.kinesis_event(recs)
        r, failed = self.invoke([harness.mapping("l", "lambda", "big")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("big", 8)
        self.assertEqual(len(inv), 8)
        self.assert_exactly_once(inv, ev["Records"])
        sizes = [len(i["payloadText"].encode()) for i in inv]
        self.assertTrue(all(s <= LIMIT for s in sizes), sizes)
        # greedy in source order: no event could have taken the next record
        ordered = sorted(inv, key=lambda i: int(
            i["payload"]["Records"][0]["kinesis"]["sequenceNumber"]))
        for a, b in zip(ordered, ordered[1:]):
            first = elements(b["payloadText"])[0][1]
            self.assertGreater(len(a["payloadText"].encode()) + 1 + len(first.encode()),
                               LIMIT)
        # the records of one event are consecutive
        for i in ordered:
            seqs = [int(x["kinesis"]["sequenceNumber"]) for x in i["payload"]["Records"]]
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))

    def test_max_payload_bytes_option_and_many_small_records(self):
        recs = [("k%d" % i, json.dumps({"i": i, "pad": "x" * 300}).encode())
                for i in range(400)]
        ev = harness.kinesis_event(recs)
        r, _ = self.invoke([harness.mapping("l", "lambda", "fn", maxPayloadBytes=262144)], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        total = sum(len(json.dumps(x, separators=(",", ":"))) + 1 for x in ev["Records"])
        inv = self.received("fn", 1, 1000)
        self.assertGreaterEqual(len(inv), -(-total // 262144))
        self.assertTrue(all(len(i["payloadText"].encode()) <= 262144 for i in inv))
        self.assert_exactly_once(inv, ev["Records"])

    def test_record_over_the_limit_reported_with_size_and_limit(self):
        # 800,000 bytes of data: 1,066,668 bytes of base64 in the source
        # record, over 1 MB; the decoded data alone passed the engine's check
        ev = harness.kinesis_event([("a", b"small-1"), ("b", b"z" * 800000),
                                    ("c", b"small-2"), ("d", b"y" * (LIMIT + 10))])
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(sorted(failed), ["1001", "1003"])
        err = r.stderr.decode()
        self.assertRegex(err, r"sequence number 1001: failed: EventTooLarge: source record "
                              r"of 10\d{5} bytes makes an event of 10\d{5} bytes, larger "
                              r"than the limit of 1048576 bytes")
        self.assertRegex(err, r"sequence number 1003.*%d bytes.*1048562" % (LIMIT + 10))
        inv = self.received("fn", 1)
        self.assertEqual(len(inv), 1)
        self.assertEqual([x["kinesis"]["partitionKey"] for x in inv[0]["payload"]["Records"]],
                         ["a", "c"])

    # ---- failures ----

    def test_throttled_then_delivered_once(self):
        self.aws.faults({"service": "lambda", "kind": "throttle", "count": 2,
                         "retryAfter": 0})
        ev = harness.kinesis_event([("k", b'{"n":1}'), ("k", b'{"n":2}')])
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("fn", 1)
        self.assertEqual(len(inv), 1)
        self.assert_exactly_once(inv, ev["Records"])
        st = self.aws.stats()["by_service"]["lambda"]["Invoke"]["status"]
        self.assertEqual((st.get("429"), st.get("202")), (2, 1))

    def test_only_202_queues_an_event(self):
        """aws_service queues the event, then answers something other than
        the 202 an Event invocation gets: a 200 (a RequestResponse answer),
        another 2xx, or a 202 with X-Amz-Function-Error. None says the event
        was queued: invoked again; reported failed when it never changes."""
        ev = harness.kinesis_event([("k", b'{"n":1}'), ("k", b'{"n":2}')])
        spoilers = {
            "HTTP 200": [{"op": "status", "status": 200}],
            "HTTP 204": [{"op": "status", "status": 204}, {"op": "body", "body": ""}],
            "HTTP 201": [{"op": "status", "status": 201}],
            "202 with a function error": [
                {"op": "status", "status": 202,
                 "headers": {"X-Amz-Function-Error": "Unhandled"}}],
        }
        for name, ops in spoilers.items():
            with self.subTest(name):
                self.aws.reset()
                self.aws.faults({"service": "lambda", "kind": "mangle", "ops": ops})
                r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 0, err)
                inv = self.received("fn", 2)
                self.assertEqual(len(inv), 2, name)
                self.assert_exactly_once(inv[:1], ev["Records"])
                self.assert_exactly_once(inv[1:], ev["Records"])
                self.assertIn("which is answered 202 Accepted", err)
        self.aws.reset()
        self.aws.faults({"service": "lambda", "kind": "mangle", "count": -1,
                         "op": "status", "status": 200})
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev,
                                FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(sorted(failed), ["1000", "1001"])
        self.assertIn("UnexpectedResponse", r.stderr.decode())

    def test_throttled_for_good_reported_with_reason(self):
        self.aws.faults({"service": "lambda", "kind": "throttle", "count": -1,
                         "retryAfter": 0,
                         "reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
        ev = harness.kinesis_event([("k", b"a"), ("k", b"b")])
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev,
                                FANOUT_AWS_MAX_ATTEMPTS=2, FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        err = r.stderr.decode()
        self.assertIn("throttled: TooManyRequestsException", err)
        self.assertIn("ReservedFunctionConcurrentInvocationLimitExceeded", err)
        self.assertIn("(gave up after 2 attempts)", err)
        self.assertEqual(self.received("fn"), [])

    def test_500_retried_and_for_good(self):
        self.aws.faults({"service": "lambda", "kind": "error500", "count": 1})
        ev = harness.kinesis_event([("k", b"a")])
        r, _ = self.invoke([harness.mapping("l", "lambda", "fn")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(len(self.received("fn", 1)), 1)
        self.aws.reset()
        self.aws.faults({"service": "lambda", "kind": "error500", "count": -1})
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev,
                                FANOUT_AWS_MAX_ATTEMPTS=2, FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1000"])
        self.assertIn("retryable failure: ServiceException", r.stderr.decode())

    def test_timeouts_retried_then_reported(self):
        ev = harness.kinesis_event([("k", b"a")])
        self.aws.faults({"service": "lambda", "kind": "slow", "delay_ms": 1000, "count": 1})
        r, _ = self.invoke([harness.mapping("l", "lambda", "fn")], ev,
                           FANOUT_AWS_TIMEOUT_MS=300)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # at least once: the slow attempt may still land after the client gave up
        self.assertGreaterEqual(len(self.received("fn", 1)), 1)
        self.aws.reset()
        self.aws.faults({"service": "lambda", "kind": "slow", "delay_ms": 800, "count": -1})
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev,
                                FANOUT_AWS_TIMEOUT_MS=200, FANOUT_AWS_MAX_ATTEMPTS=1,
                                FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1000"])
        self.assertIn("Timeout", r.stderr.decode())

    def test_only_the_failed_invocation_is_resent(self):
        # 6 events of 3 records (~333 KB each); the first invocation to
        # arrive is answered 409 ResourceConflictException (retryable): only
        # its records go again
        recs = [("k%d" % i, b"r" * 250000) for i in range(18)]
        ev = harness.kinesis_event(recs)
        self.aws.faults({"service": "lambda", "kind": "status", "status": 409, "count": 1,
                         "headers": {"x-amzn-ErrorType": "ResourceConflictException"},
                         "body": {"Type": "User", "message": "function is being updated"}})
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("fn", 6)
        self.assertEqual(len(inv), 6)
        self.assert_exactly_once(inv, ev["Records"])
        self.assertIn("retryable failure", r.stderr.decode())

    def test_permanent_errors_not_retried(self):
        ev = harness.kinesis_event([("k", b"a")])
        # a function that does not exist
        r, failed = self.invoke([harness.mapping("l", "lambda", "missing-fn")], ev)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1000"])
        self.assertRegex(r.stderr.decode(), r"failed: ResourceNotFoundException: invoking "
                                            r"missing-fn: Function not found: .*\(1 attempt\)")
        # KMS errors come as 502 but need a person: permanent at the plugin
        self.aws.faults({"service": "lambda", "kind": "status", "status": 502, "count": -1,
                         "headers": {"x-amzn-ErrorType": "KMSAccessDeniedException"},
                         "body": {"Type": "User", "Message": "KMS access was denied"}})
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev,
                                FANOUT_AWS_MAX_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"failed: KMSAccessDeniedException: .*"
                                            r"\(1 attempt\)")
        self.aws.reset()
        # EC2 throttling at function start: throttled, retried
        self.aws.faults({"service": "lambda", "kind": "status", "status": 502, "count": 1,
                         "headers": {"x-amzn-ErrorType": "EC2ThrottledException"},
                         "body": {"Type": "User", "Message": "EC2 throttled"}})
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    # ---- destinations ----

    def test_wrong_destinations_refused(self):
        cases = [
            ("my function", "contains a space"),
            ("f" * 65, "is not a function name"),
            ("fn:bad.alias", "not an alias or a version"),
            ("arn:aws:sqs:us-east-1:123456789012:queue", "is not a function ARN"),
            ("arn:aws:sqs:us-east-1:123456789012:function:f", "not of a Lambda function"),
            ("arn:aws:lambda:us-east-1:12345:function:f", "is not 12 digits"),
            ("arn:aws:lambda:us-east-1:123456789012:layer:f", "not of a function"),
            ("arn:aws:lambda:useast:123456789012:function:f", "is not a region"),
            ("123456789012:function:", "empty ':'-separated part"),
            ("12345:function:f", "neither a name nor a partial ARN"),
            ("", "empty"),
        ]
        maps = [harness.mapping("m%d" % i, "lambda", d) for i, (d, _) in enumerate(cases)]
        maps.append(harness.mapping("conflict", "lambda",
                                    "arn:aws:lambda:us-east-1:123456789012:function:f",
                                    region="eu-west-1"))
        maps.append(harness.mapping("opt", "lambda", "fn", payload="xml"))
        maps.append(harness.mapping("collapse", "lambda", "fn", collapse="JSON"))
        maps.append(harness.mapping("ok", "lambda", "fn"))
        rc, out = harness.validate(self.tmp.path, maps)
        self.assertEqual(rc, 2)
        for i, (_, why) in enumerate(cases):
            self.assertRegex(out, r'mapping "m%d"( \(#\d+\))?: field "destination": [^\n]*%s'
                             % (i, re.escape(why)))
        self.assertIn("expected e.g. my-function", out)
        self.assertRegex(out, r'"conflict".*region us-east-1 but the mapping\'s "region" '
                              r'is "eu-west-1"')
        self.assertRegex(out, r'"opt".*option "payload": "xml"')
        # aws-lambda-fanout wrote collapse for every type and ignored it here
        self.assertRegex(out, r'warning: mapping "collapse"[^\n]*field "collapse" \("JSON"\): '
                              r'ignored for type "lambda", as aws-lambda-fanout ignored it')
        self.assertNotIn('mapping "ok"', out)

    def test_aliases_versions_and_arns(self):
        ev = harness.kinesis_event([("k", b'{"x":1}')])
        forms = [("fn:live", "fn", "live"),
                 ("fn:7", "fn", "7"),
                 ("fn:$LATEST", "fn", "$LATEST"),
                 ("123456789012:function:fn:live", "123456789012:function:fn", "live"),
                 ("arn:aws:lambda:us-east-1:123456789012:function:fn",
                  "arn:aws:lambda:us-east-1:123456789012:function:fn", None),
                 ("arn:aws:lambda:us-east-1:123456789012:function:fn:live",
                  "arn:aws:lambda:us-east-1:123456789012:function:fn", "live")]
        for dest, ref, qual in forms:
            self.aws.reset()
            r, _ = self.invoke([harness.mapping("l", "lambda", dest)], ev)
            self.assertEqual(r.returncode, 0, dest + ": " + r.stderr.decode())
            inv = self.received("fn", 1)
            self.assertEqual(len(inv), 1, dest)
            self.assertEqual((inv[0]["functionRef"], inv[0]["qualifier"]), (ref, qual), dest)
            self.assertEqual(inv[0]["functionArn"],
                             "arn:aws:lambda:us-east-1:123456789012:function:fn")
        # an alias that does not exist
        r, failed = self.invoke([harness.mapping("l", "lambda", "fn:nope")], ev)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ResourceNotFoundException", r.stderr.decode())

    def test_cross_region(self):
        ev = harness.kinesis_event([("k", b"a")])
        # the ARN's region signs and addresses the request
        r, _ = self.invoke([harness.mapping(
            "l", "lambda", "arn:aws:lambda:eu-west-1:123456789012:function:remote:prod")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("remote", 1)
        self.assertEqual((inv[0]["region"], inv[0]["qualifier"]), ("eu-west-1", "prod"))
        # a name with the mapping's region
        r, _ = self.invoke([harness.mapping("l", "lambda", "other-region",
                                            region="ap-southeast-2")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("other-region", 1)
        self.assertEqual(inv[0]["region"], "ap-southeast-2")
        self.assertEqual(inv[0]["functionArn"],
                         "arn:aws:lambda:ap-southeast-2:123456789012:function:other-region")

    def test_cross_account_role(self):
        sts = harness.StsServer(register_with=[self.aws.url])
        try:
            role = "arn:aws:iam::%s:role/ext-fanout-target" % OTHER_ACCOUNT
            ev = harness.kinesis_event([("k", b'{"n":1}'), ("k", b'{"n":2}')])
            m = harness.mapping("l", "lambda", "%s:function:fn" % OTHER_ACCOUNT, role=role,
                                externalId=EXTERNAL_ID)
            r, _ = self.invoke([m], ev, AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            inv = self.received("fn", 1)
            self.assertEqual(len(inv), 1)
            self.assertEqual(inv[0]["accessKeyId"], sts.issued[0])
            self.assertEqual(inv[0]["accountId"], OTHER_ACCOUNT)
            self.assertEqual(inv[0]["functionArn"],
                             "arn:aws:lambda:us-east-1:%s:function:fn" % OTHER_ACCOUNT)
            with urllib.request.urlopen(sts.url + "/stats", timeout=10) as f:
                last = json.load(f)["roles"][role]["last"]
            self.assertEqual(last["ExternalId"], EXTERNAL_ID)
            # a wrong external id: STS refuses, every record is reported
            self.aws.reset()
            m["externalId"] = "wrong-id"
            r, failed = self.invoke([m], ev, AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(sorted(failed), ["1000", "1001"])
            self.assertIn("AccessDenied", r.stderr.decode())
            self.assertEqual(self.received("fn"), [])
        finally:
            sts.stop()

    # ---- order ----

    def test_parallel_false_invokes_in_order(self):
        recs = [("k%d" % i, b"o" * 90000) for i in range(12)]   # 2 per 262,144
        ev = harness.kinesis_event(recs)
        # the first invocation is answered 409 once: nothing after it goes
        # before it is delivered
        self.aws.faults({"service": "lambda", "kind": "status", "status": 409, "count": 1,
                         "headers": {"x-amzn-ErrorType": "ResourceConflictException"},
                         "body": {"Type": "User", "message": "being updated"}})
        r, _ = self.invoke([harness.mapping("l", "lambda", "ordered", parallel=False,
                                            maxPayloadBytes=262144)], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        inv = self.received("ordered", 6)
        self.assertEqual(len(inv), 6)
        seqs = [x["kinesis"]["sequenceNumber"] for i in inv for x in i["payload"]["Records"]]
        self.assertEqual(seqs, [str(1000 + i) for i in range(12)])
        st = self.aws.stats()["by_service"]["lambda"]["Invoke"]["status"]
        self.assertEqual((st.get("409"), st.get("202")), (1, 6))


if __name__ == "__main__":
    unittest.main(verbosity=2)
