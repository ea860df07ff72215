"""Integration tests of the `firehose` destination plugin (PutRecordBatch).

The real `fanout invoke` against tests/servers/aws_service.py (every
request's SigV4 signature checked with botocore; what was accepted read back
from /__received; partial failures, throttling, 500s, slow answers and
resets injected with /__faults), and tests/servers/sts_server.py for
cross-account roles (registering the keys it issues with aws_service). Run by meson with /usr/bin/python3.
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

STREAMS = ["fh", "fh-none", "fh-json", "fh-concat", "fh-b64", "fh-nl", "fh-big", "fh-nlbig",
           "fh-part", "fh-err", "fh-slow", "fh-order", "fh-region", "fh-cross", "fh-doubt"]
OTHER_ACCOUNT = "210987654321"


def firehose_mapping(id_, dest, **extra):
    return harness.mapping(id_, "firehose", dest, **extra)


def event_records(name):
    with open(harness.sample_event(name), encoding="utf-8") as f:
        return json.load(f)["Records"]


class FirehoseTest(harness.AwsServiceCase):
    RESOURCES = {"firehose": STREAMS}
    ENDPOINTS = ("FIREHOSE",)

    def received(self, stream, n=0):
        return self.aws.received("firehose", stream, min_count=n, timeout_ms=2000 if n else 0)

    def datas(self, stream):
        return [base64.b64decode(e["dataBase64"]) for e in self.received(stream)]

    def requests(self):
        return self.aws.stats()["by_service"].get("firehose", {}).get("PutRecordBatch", {})

    def validate(self, mappings):
        return harness.validate(self.tmp.path, mappings, harness.aws_env())

    # ---- delivery ----

    def test_sample_event_and_kpl_delivered(self):
        src = event_records("kinesis.json")
        arn = src[0]["eventSourceARN"]
        r, failed = self.invoke([firehose_mapping("f", "fh", source=arn)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = self.received("fh")
        self.assertEqual([base64.b64decode(e["dataBase64"]) for e in got],
                         [base64.b64decode(x["kinesis"]["data"]) for x in src])
        self.assertEqual({e["operation"] for e in got}, {"PutRecordBatch"})
        self.assertEqual({e["region"] for e in got}, {harness.REGION})
        self.assertEqual(len({e["requestId"] for e in got}), 1)
        # KPL user records, deaggregated: each one a Firehose record
        self.aws.reset()
        expected = []
        with open(harness.sample_event("kpl-aggregated.expected.jsonl")) as f:
            for line in f:
                obj = json.loads(line)
                if "corrupt" not in obj:
                    expected.append(base64.b64decode(obj["dataB64"]))
        r, failed = self.invoke([firehose_mapping("f", "fh", source=arn, deaggregate=True)],
                                harness.sample_event("kpl-aggregated.json"))
        self.assertEqual(r.returncode, 1, r.stderr.decode())  # the corrupt aggregate
        self.assertEqual(len(failed), 1)
        self.assertEqual(self.datas("fh"), expected)

    def test_collapse_modes_and_newline(self):
        recs = [("a", b'{"n":1}'), ("b", b"text"), ("c", b"\xff\x00")]
        maps = [firehose_mapping("none", "fh-none"),
                firehose_mapping("json", "fh-json", collapse="JSON"),
                firehose_mapping("concat", "fh-concat", collapse="concat"),
                firehose_mapping("b64", "fh-b64", collapse="concat-b64"),
                firehose_mapping("nl", "fh-nl", collapse="JSON", appendNewline=True)]
        r, failed = self.invoke(maps, harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.datas("fh-none"), [d for _, d in recs])
        json_body = b'{"Records":[{"n":1},"text","/wA="]}'
        self.assertEqual(self.datas("fh-json"), [json_body])
        self.assertEqual(self.datas("fh-concat"), [b'{"n":1}text\xff\x00'])
        self.assertEqual(self.datas("fh-b64"), [base64.b64encode(b'{"n":1}text\xff\x00')])
        self.assertEqual(self.datas("fh-nl"), [json_body + b"\n"])
        # newline-delimited records of every length modulo 3 (base64 tails)
        self.aws.reset()
        recs = [("k", b"x" * n) for n in range(7)]
        r, failed = self.invoke([firehose_mapping("nl", "fh-nl", appendNewline=True)],
                                harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(b"".join(self.datas("fh-nl")),
                         b"".join(d + b"\n" for _, d in recs))

    def test_record_and_request_limits(self):
        """1,000 KiB per record (before base64) with its size and the limit;
        the request is kept within 4 MiB after base64: four records of
        1,000,000 bytes go in two calls (3 + 1), though their raw total is
        under 4 MiB."""
        big = b"y" * 1024000
        recs = [("a", big), ("b", big + b"!"), ("c", b"small")]
        r, failed = self.invoke([firehose_mapping("f", "fh-big")], harness.kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1001"])
        self.assertIn("record of 1024001 bytes is larger than the destination's limit of "
                      "1024000 bytes", err)
        self.assertEqual([len(d) for d in self.datas("fh-big")], [1024000, 5])
        # with appendNewline the newline counts
        self.aws.reset()
        recs = [("a", big[:-1]), ("b", big)]
        r, failed = self.invoke([firehose_mapping("f", "fh-nlbig", appendNewline=True)],
                                harness.kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(failed, ["1001"])
        self.assertIn("limit of 1023999 bytes", err)
        self.assertEqual(self.datas("fh-nlbig"), [big[:-1] + b"\n"])
        # four records of 1,000,000 bytes: two requests
        self.aws.reset()
        recs = [("k%d" % i, bytes([65 + i]) * 1000000) for i in range(4)]
        r, failed = self.invoke([firehose_mapping("f", "fh-big")], harness.kinesis_event(recs),
                                FANOUT_LOG_LEVEL="debug")
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        got = self.received("fh-big")
        self.assertEqual(sorted(base64.b64decode(e["dataBase64"]) for e in got),
                         [d for _, d in recs])
        per_request = {}
        for e in got:
            per_request[e["requestId"]] = per_request.get(e["requestId"], 0) + 1
        self.assertEqual(sorted(per_request.values()), [1, 3])
        sizes = [int(m) for m in re.findall(r"PutRecordBatch to fh-big: \d+ messages?, (\d+) "
                                            r"bytes", err)]
        self.assertEqual(len(sizes), 2)
        self.assertTrue(all(s <= 4 * 1024 * 1024 for s in sizes), sizes)
        self.assertGreater(max(sizes), 3 * 1024 * 1024)

    def test_missing_stream_fails_each_record(self):
        r, failed = self.invoke([firehose_mapping("f", "no-such-stream")],
                                harness.kinesis_event([("a", b"1"), ("b", b"2")]))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        lines = [x for x in err.splitlines() if "record not delivered" in x]
        self.assertEqual(len(lines), 2, err)
        for line in lines:
            self.assertIn("failed: ResourceNotFoundException", line)
            self.assertIn("(1 attempt)", line)

    # ---- failures ----

    def test_partial_failure_resends_only_failed_records(self):
        self.aws.faults({"service": "firehose", "kind": "partial", "indexes": [1, 3]})
        recs = [("k", b"r%d" % i) for i in range(5)]
        r, failed = self.invoke([firehose_mapping("f", "fh-part")], harness.kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        got = self.received("fh-part")
        self.assertEqual([base64.b64decode(e["dataBase64"]) for e in got],
                         [b"r0", b"r2", b"r4", b"r1", b"r3"])
        self.assertEqual(len({e["requestId"] for e in got}), 2)
        self.assertIn("2 of 5 messages to firehose fh-part: throttled", err)
        self.assertEqual(self.requests()["count"], 2)

    def test_entry_error_codes(self):
        """InternalFailure entries are retried; an unknown entry code is
        permanent; ServiceUnavailableException entries that never pass are
        reported as throttled once the attempts are spent."""
        self.aws.faults([{"service": "firehose", "kind": "partial", "indexes": [0],
                          "code": "InternalFailure", "message": "oops"},
                         {"service": "firehose", "kind": "partial", "indexes": [0],
                          "code": "SomethingPermanent", "message": "no"}])
        recs = [("a", b"1"), ("b", b"2")]
        r, failed = self.invoke([firehose_mapping("f", "fh-err")], harness.kinesis_event(recs))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(failed, ["1000"])
        self.assertIn("sequence number 1000: failed: SomethingPermanent: no (2 attempts)", err)
        self.assertEqual(self.datas("fh-err"), [b"2"])
        self.aws.reset()
        self.aws.faults({"service": "firehose", "kind": "partial", "indexes": [0],
                         "count": -1})
        r, failed = self.invoke([firehose_mapping("f", "fh-err")], harness.kinesis_event(recs),
                                FANOUT_RETRY_ATTEMPTS="3")
        err = r.stderr.decode()
        self.assertEqual(failed, ["1000"])
        self.assertIn("sequence number 1000: throttled: ServiceUnavailableException: "
                      "Slow down. (gave up after 3 attempts)", err)
        self.assertEqual(self.datas("fh-err"), [b"2"])

    def test_throttling_500_reset_and_timeout(self):
        recs = [("a", b"1"), ("b", b"2")]
        self.aws.faults([{"service": "firehose", "kind": "throttle", "count": 2},
                         {"service": "firehose", "kind": "error500", "count": 1},
                         {"service": "firehose", "kind": "reset", "count": 1}])
        r, failed = self.invoke([firehose_mapping("f", "fh-slow")], harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.datas("fh-slow"), [b"1", b"2"])
        self.assertEqual(self.aws.stats()["faults_fired"], 4)
        # an answer slower than the attempt's time limit: sent again (the
        # slow request is accepted too, late: at least once)
        self.aws.reset()
        self.aws.faults({"service": "firehose", "kind": "slow", "delay_ms": 1500})
        r, failed = self.invoke([firehose_mapping("f", "fh-slow")], harness.kinesis_event(recs),
                                FANOUT_AWS_TIMEOUT_MS="400")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = self.received("fh-slow", n=4)
        self.assertEqual(sorted(set(base64.b64decode(e["dataBase64"]) for e in got)),
                         [b"1", b"2"])
        self.assertEqual(self.requests()["count"], 2)
        # throttled for good: reported as throttled with Firehose's code
        self.aws.reset()
        self.aws.faults({"service": "firehose", "kind": "throttle", "count": -1})
        r, failed = self.invoke([firehose_mapping("f", "fh-slow")], harness.kinesis_event(recs),
                                FANOUT_AWS_MAX_ATTEMPTS="2", FANOUT_RETRY_ATTEMPTS="2")
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        self.assertIn("throttled: ServiceUnavailableException", err)
        self.assertEqual(self.datas("fh-slow"), [])

    def test_doubtful_answers_are_not_deliveries(self):
        """An answer that contradicts itself or is not the documented one:
        the records were stored by the service, but the answer does not say
        so, so every record is sent again (count 1), or reported failed when
        no answer can be believed (forever)."""
        recs = [("k", b"r%d" % i) for i in range(3)]
        spoilers = {
            "count says one failed": {"op": "set", "path": "FailedPutCount", "value": 1},
            "count missing": {"op": "delete", "path": "FailedPutCount"},
            "count a string": {"op": "set", "path": "FailedPutCount", "value": "0"},
            "entry with neither": {"op": "set", "path": "RequestResponses.1", "value": {}},
            "entry with both": {"op": "set", "path": "RequestResponses.1.ErrorCode",
                                "value": "InternalFailure"},
            "one entry short": {"op": "delete", "path": "RequestResponses.-1"},
            "one entry more": {"op": "dup", "path": "RequestResponses.0"},
            "truncated": {"op": "truncate"},
            "not JSON": {"op": "body", "body": "<html>OK</html>"},
            "empty": {"op": "body", "body": ""},
            "HTTP 201": {"op": "status", "status": 201},
            # 204 carries no body (a body there would be read as the next answer)
            "HTTP 204": [{"op": "status", "status": 204}, {"op": "body", "body": ""}],
        }
        for name, op in spoilers.items():
            with self.subTest(name):
                self.aws.reset()
                self.aws.faults({"service": "firehose", "kind": "mangle",
                                 "ops": op if isinstance(op, list) else [op]})
                r, failed = self.invoke([firehose_mapping("f", "fh-doubt")],
                                        harness.kinesis_event(recs))
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 0, err)
                self.assertEqual(self.datas("fh-doubt"), [b"r0", b"r1", b"r2"] * 2, name)
                self.assertIn("3 records sent, answer has", err)
        # a body shorter than its Content-Length (the connection closed
        # half-way): a transport error, retried by the AWS layer
        self.aws.reset()
        self.aws.faults({"service": "firehose", "kind": "mangle", "op": "cut"})
        r, failed = self.invoke([firehose_mapping("f", "fh-doubt")], harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.datas("fh-doubt"), [b"r0", b"r1", b"r2"] * 2)
        self.assertEqual(self.requests()["count"], 2)
        # an answer over the AWS layer's 64 MiB bound (valid JSON padded
        # with spaces): refused, not read to the end, and retried
        self.aws.reset()
        self.aws.faults({"service": "firehose", "kind": "mangle", "op": "pad",
                         "bytes": 65 << 20})
        r, failed = self.invoke([firehose_mapping("f", "fh-doubt")], harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.datas("fh-doubt"), [b"r0", b"r1", b"r2"] * 2)
        self.assertEqual(self.requests()["count"], 2)
        self.aws.reset()
        self.aws.faults({"service": "firehose", "kind": "mangle", "count": -1,
                         "op": "set", "path": "FailedPutCount", "value": 2})
        r, failed = self.invoke([firehose_mapping("f", "fh-doubt")], harness.kinesis_event(recs),
                                FANOUT_RETRY_ATTEMPTS="2")
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(sorted(failed), ["1000", "1001", "1002"])
        self.assertIn("\"FailedPutCount\" 2 but 0 failed entries", err)

    def test_parallel_false_in_order(self):
        recs = [("k", b"%04d" % i) for i in range(1200)]
        r, failed = self.invoke([firehose_mapping("f", "fh-order", parallel=False)],
                                harness.kinesis_event(recs))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = self.received("fh-order")
        self.assertEqual([base64.b64decode(e["dataBase64"]) for e in got],
                         [d for _, d in recs])
        self.assertEqual(len({e["requestId"] for e in got}), 3)

    # ---- destinations, regions, accounts ----

    def test_wrong_destinations_refused_by_validate(self):
        bad = {
            "bad name!": "is not a Firehose stream name",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q": "a URL is not a stream",
            "arn:aws:kinesis:us-east-1:123456789012:stream/s": "an ARN of service \"kinesis\"",
            "arn:aws:firehose:us-east-1:123456789012:stream/s": "is not a Firehose stream ARN",
            "x" * 65: "is not a Firehose stream name",
        }
        for dest, why in bad.items():
            code, out = self.validate([firehose_mapping("m", dest)])
            self.assertEqual(code, 2, out)
            self.assertIn('mapping "m": field "destination"', out)
            self.assertIn(why, out)
            self.assertIn("expected e.g. my-stream or arn:aws:firehose:", out)
        code, out = self.validate([firehose_mapping(
            "m", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s",
            region="us-west-2")])
        self.assertEqual(code, 2, out)
        self.assertIn("is in region eu-west-1 but the mapping's \"region\" is us-west-2", out)
        code, out = self.validate([firehose_mapping("m", "s", appendNewline="yes")])
        self.assertEqual(code, 2, out)
        self.assertIn('field "appendNewline": expected a boolean', out)
        good = [firehose_mapping("a", "my.stream_1-x"),
                firehose_mapping("b", "arn:aws:firehose:eu-west-1:123456789012:"
                                      "deliverystream/s", region="eu-west-1"),
                firehose_mapping("c", "s", appendNewline=True, collapse="concat")]
        code, out = self.validate(good)
        self.assertEqual(code, 0, out)

    def test_region_from_mapping_and_from_arn(self):
        arn = "arn:aws:firehose:eu-west-1:%s:deliverystream/fh-region" % harness.ACCOUNT
        maps = [firehose_mapping("by-arn", arn),
                firehose_mapping("by-region", "fh-region", region="ap-southeast-2")]
        r, failed = self.invoke(maps, harness.kinesis_event([("a", b"1")]))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = self.received("fh-region")
        self.assertEqual(sorted(e["region"] for e in got), ["ap-southeast-2", "eu-west-1"])

    def test_cross_account_role(self):
        role = "arn:aws:iam::%s:role/ext-firehose-writer" % OTHER_ACCOUNT
        sts = harness.StsServer(register_with=[self.aws.url],
                                extra_args=["--external-id", "fh-ext-1"])
        try:
            arn = "arn:aws:firehose:us-east-1:%s:deliverystream/fh-cross" % OTHER_ACCOUNT
            r, failed = self.invoke(
                [firehose_mapping("x", arn, role=role, externalId="fh-ext-1")],
                harness.kinesis_event([("a", b"1"), ("b", b"2")]),
                AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            got = self.received("fh-cross")
            self.assertEqual(len(got), 2)
            self.assertEqual(len(sts.issued), 1)
            self.assertEqual({e["accessKeyId"] for e in got}, set(sts.issued))
            self.assertEqual({e["accountId"] for e in got}, {OTHER_ACCOUNT})
            with urllib.request.urlopen(sts.url + "/stats", timeout=10) as f:
                stats = json.load(f)
            self.assertEqual(stats["roles"][role]["last"]["ExternalId"], "fh-ext-1")
            self.assertEqual(self.aws.stats()["auth_failures"], 0)
        finally:
            sts.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
