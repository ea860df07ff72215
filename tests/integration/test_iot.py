"""Integration tests of the `iot` destination plugin (IoT Data Plane Publish).

`fanout invoke` runs against tests/servers/aws_service.py, which checks
every request's SigV4 signature (signing name iotdata) with botocore,
validates Publish as AWS IoT does (topic, qos, retain, 128 KB payloads) and
records each published message. STS is tests/servers/sts_server.py, which
registers the keys it issues with aws_service. Run by meson with
/usr/bin/python3.
"""

import base64
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HOST = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
PAYLOAD_MAX = 131072
OTHER_ACCOUNT = "210987654321"
EXTERNAL_ID = "fanout+ext:id/=,.@-1"   # what sts_server.py's ext-... roles want


def data_of(msg):
    return base64.b64decode(msg["payloadBase64"])


class IotPlugin(harness.AwsServiceCase):
    ENDPOINTS = ("IOT_DATA_PLANE",)

    def env(self, endpoint=True, **extra):
        if endpoint:
            return super().env(**extra)
        e = harness.aws_env()
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def invoke(self, mappings, event, endpoint=True, **env):
        return harness.invoke(self.tmp.path, mappings, event,
                              env=self.env(endpoint, **env))

    def received(self, topic, n=0, timeout_ms=3000):
        return self.aws.received("iot", topic, n, timeout_ms)

    # ---- collapse modes, qos, retain ----

    def test_every_collapse_mode(self):
        datas = [b'{"t":21.5}', b"plain text", b"\xff\x00\x01", b'[1,2]']
        ev = harness.kinesis_event([("k%d" % i, d) for i, d in enumerate(datas)])
        for mode in ("JSON", "none", "concat", "concat-b64", None):
            topic = "collapse/%s" % (mode or "default")
            m = harness.mapping("i", "iot", HOST + "#" + topic)
            if mode:
                m["collapse"] = mode
            r, failed = self.invoke([m], ev)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            got = self.received(topic, 1)
            if mode in ("JSON", None):    # JSON is the default
                self.assertEqual(len(got), 1)
                self.assertEqual(json.loads(data_of(got[0])),
                                 {"Records": [{"t": 21.5}, "plain text",
                                              base64.b64encode(datas[2]).decode(), [1, 2]]})
            elif mode == "none":
                got = self.received(topic, 4)
                self.assertEqual(sorted(data_of(g) for g in got), sorted(datas))
            elif mode == "concat":
                self.assertEqual([data_of(g) for g in got], [b"".join(datas)])
            else:
                self.assertEqual([data_of(g) for g in got],
                                 [base64.b64encode(b"".join(datas))])
            for g in got:
                self.assertEqual((g["qos"], g["retain"], g["region"]), (0, False, "us-east-1"))
                self.assertEqual(g["accessKeyId"], harness.ACCESS_KEY)

    def test_qos_and_retain(self):
        ev = harness.kinesis_event([("k", b'{"a":1}')])
        for qos, retain in ((0, False), (1, False), (1, True), (0, True)):
            topic = "q/%d/%s" % (qos, retain)
            m = harness.mapping("i", "iot", HOST + "#" + topic, qos=qos, retain=retain)
            r, _ = self.invoke([m], ev)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            got = self.received(topic, 1)
            self.assertEqual([(g["qos"], g["retain"]) for g in got], [(qos, retain)])

    def test_topics_with_slashes_and_non_ascii(self):
        ev = harness.kinesis_event([("k", b'{"v":1}')])
        topics = ["sensors/temp\u00e9rature/\u00fc nit",
                  "\u043a\u043b\u044e\u0447/\u6e29\u5ea6/%41",
                  "/leading/slash//empty/level",
                  "a/./b/../c",
                  "$aws/things/dev-1/shadow/update",
                  "$aws/rules/my_rule/1/2/3/4/5/6/7",
                  "plus-free?&=;,'\"@!~*()"]
        for topic in topics:
            r, _ = self.invoke([harness.mapping("i", "iot", HOST + "#" + topic)], ev)
            self.assertEqual(r.returncode, 0, topic + ": " + r.stderr.decode())
            got = self.received(topic, 1)
            self.assertEqual([g["topic"] for g in got], [topic])
            self.assertEqual(json.loads(data_of(got[0])), {"Records": [{"v": 1}]})

    # ---- sizes ----

    def test_oversize_reported_with_size_and_limit(self):
        ev = harness.kinesis_event([("a", b"x" * PAYLOAD_MAX), ("b", b"y" * (PAYLOAD_MAX + 1)),
                                    ("c", b"small")])
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#big",
                                                 collapse="none")], ev)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1001"])
        self.assertRegex(r.stderr.decode(), r"sequence number 1001: record of 131073 bytes "
                                            r"is larger than the destination's limit of "
                                            r"131072 bytes")
        got = self.received("big", 2)
        self.assertEqual(sorted(len(data_of(g)) for g in got), [5, PAYLOAD_MAX])
        # JSON collapse: the envelope counts; the records are spread over
        # messages of at most 128 KB
        self.aws.reset()
        recs = [("k%d" % i, json.dumps({"i": i, "p": "z" * 5000}).encode()) for i in range(60)]
        ev = harness.kinesis_event(recs)
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#jsonbig")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = self.received("jsonbig", 3)
        self.assertEqual(len(got), 3)
        self.assertTrue(all(len(data_of(g)) <= PAYLOAD_MAX for g in got))
        seen = sorted(x["i"] for g in got for x in json.loads(data_of(g))["Records"])
        self.assertEqual(seen, list(range(60)))

    # ---- failures ----

    def test_throttling(self):
        ev = harness.kinesis_event([("k", b"a"), ("k", b"b")])
        self.aws.faults({"service": "iot", "kind": "throttle", "count": 2})
        r, _ = self.invoke([harness.mapping("i", "iot", HOST + "#thr", collapse="none")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(sorted(data_of(g) for g in self.received("thr", 2)), [b"a", b"b"])
        self.aws.reset()
        self.aws.faults({"service": "iot", "kind": "throttle", "count": -1})
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#thr")], ev,
                                FANOUT_AWS_MAX_ATTEMPTS=2, FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(sorted(failed), ["1000", "1001"])
        self.assertIn("throttled: ThrottlingException", r.stderr.decode())
        self.assertEqual(self.received("thr"), [])

    def test_only_200_is_a_publish(self):
        """aws_service publishes, then answers another 2xx than the 200
        Publish documents: published again; reported failed when it never
        changes."""
        ev = harness.kinesis_event([("k", b"a"), ("k", b"b")])
        for status in (201, 202, 204, 299):
            with self.subTest(status):
                self.aws.reset()
                self.aws.faults({"service": "iot", "kind": "mangle", "count": 2, "ops": [
                    {"op": "status", "status": status}, {"op": "body", "body": ""}]})
                r, _ = self.invoke([harness.mapping("i", "iot", HOST + "#odd",
                                                    collapse="none")], ev)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 0, err)
                self.assertEqual(sorted(data_of(g) for g in self.received("odd", 4)),
                                 [b"a", b"a", b"b", b"b"])
                self.assertIn("HTTP %d where Publish answers 200" % status, err)
        self.aws.reset()
        self.aws.faults({"service": "iot", "kind": "mangle", "count": -1, "op": "status",
                         "status": 202})
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#odd")], ev,
                                FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(sorted(failed), ["1000", "1001"])

    def test_500s(self):
        ev = harness.kinesis_event([("k", b"a")])
        self.aws.faults({"service": "iot", "kind": "error500", "count": 1})
        r, _ = self.invoke([harness.mapping("i", "iot", HOST + "#err")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(len(self.received("err", 1)), 1)
        self.aws.reset()
        self.aws.faults({"service": "iot", "kind": "error500", "count": -1})
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#err")], ev,
                                FANOUT_AWS_MAX_ATTEMPTS=2, FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual((r.returncode, failed), (1, ["1000"]))
        self.assertIn("retryable failure: InternalFailureException", r.stderr.decode())

    def test_timeouts(self):
        ev = harness.kinesis_event([("k", b"a")])
        self.aws.faults({"service": "iot", "kind": "slow", "delay_ms": 800, "count": -1})
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#slow")], ev,
                                FANOUT_AWS_TIMEOUT_MS=200, FANOUT_AWS_MAX_ATTEMPTS=1,
                                FANOUT_RETRY_ATTEMPTS=2)
        self.assertEqual((r.returncode, failed), (1, ["1000"]))
        self.assertIn("Timeout", r.stderr.decode())

    def test_partial_failure_resends_only_the_failed(self):
        # 8 messages in one call; the 3rd request to arrive is refused for
        # good, the 5th throttled once: the rest are not sent twice
        ev = harness.kinesis_event([("k%d" % i, b"m%d" % i) for i in range(8)])
        self.aws.faults([{"service": "iot", "kind": "status", "status": 400, "skip": 2,
                          "count": 1, "headers": {"x-amzn-ErrorType":
                                                  "InvalidRequestException"},
                          "body": {"message": "bad"}},
                         {"service": "iot", "kind": "throttle", "skip": 4, "count": 1}])
        r, failed = self.invoke([harness.mapping("i", "iot", HOST + "#part",
                                                 collapse="none")], ev)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(failed), 1)
        self.assertIn("failed: InvalidRequestException", r.stderr.decode())
        got = sorted(data_of(g) for g in self.received("part", 7))
        want = sorted(b"m%d" % i for i in range(8) if "%d" % (1000 + i) not in failed)
        self.assertEqual(got, want)

    def test_parallel_false_keeps_order(self):
        ev = harness.kinesis_event([("k%d" % i, b"o%d" % i) for i in range(6)])
        # the 2nd publish is answered 500 once: the 3rd waits for its retry
        self.aws.faults({"service": "iot", "kind": "status", "status": 503, "skip": 1,
                         "count": 1, "headers": {"x-amzn-ErrorType":
                                                 "ServiceUnavailableException"},
                         "body": {"message": "try later"}})
        r, _ = self.invoke([harness.mapping("i", "iot", HOST + "#ordered", collapse="none",
                                            parallel=False)], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = [data_of(g) for g in self.received("ordered", 6)]
        self.assertEqual(got, [b"o%d" % i for i in range(6)])

    # ---- destinations ----

    def test_wrong_destinations_refused(self):
        cases = [
            ("no-hash-here", "has no '#'"),
            (HOST + "#a/+/b", "wildcard '+'"),
            (HOST + "#a/#", "wildcard '#'"),
            (HOST + "#", "topic after '#' is empty"),
            ("#topic", "endpoint before '#' is empty"),
            ("ftp://example.com#t", "not http:// or https://"),
            ("https://host/path#t", "is not a host name"),
            ("http://127.0.0.1:99999#t", "no valid port"),
            ("my host#t", "is not a host name"),
            (HOST + "#" + "t" * 257, "257 bytes, more than AWS IoT's 256"),
            (HOST + "#a/b/c/d/e/f/g/h/i", "8 '/', more than"),
        ]
        maps = [harness.mapping("m%d" % i, "iot", d) for i, (d, _) in enumerate(cases)]
        maps.append(harness.mapping("conflict", "iot", HOST + "#t", region="eu-west-1"))
        maps.append(harness.mapping("qos", "iot", HOST + "#t", qos=2))
        maps.append(harness.mapping("ok", "iot", HOST + "#t", region="us-east-1"))
        maps.append(harness.mapping("ok2", "iot", "http://127.0.0.1:1234/#t",
                                    region="eu-west-1"))
        rc, out = harness.validate(self.tmp.path, maps)
        self.assertEqual(rc, 2)
        for i, (_, why) in enumerate(cases):
            self.assertRegex(out, r'mapping "m%d"( \(#\d+\))?: field "destination": [^\n]*%s'
                             % (i, re.escape(why)))
        self.assertIn("expected e.g. %s#sensors/room-1" % HOST, out)
        self.assertRegex(out, r'"conflict".*region us-east-1 but the mapping\'s "region" is '
                              r'"eu-west-1"')
        self.assertRegex(out, r'"qos": field "qos": 2 is out of range')
        self.assertNotIn('mapping "ok"', out)
        self.assertNotIn('mapping "ok2"', out)

    def test_url_endpoint_and_regions(self):
        ev = harness.kinesis_event([("k", b'{"r":1}')])
        # a URL endpoint (no AWS_ENDPOINT_URL_IOT_DATA_PLANE) with the
        # mapping's region
        r, _ = self.invoke([harness.mapping("i", "iot", self.aws.url + "#url/topic",
                                            region="ap-south-1")], ev, endpoint=False)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([g["region"] for g in self.received("url/topic", 1)], ["ap-south-1"])
        # ... or AWS_REGION
        r, _ = self.invoke([harness.mapping("i", "iot", self.aws.url + "/#url/env")], ev,
                           endpoint=False, AWS_REGION="sa-east-1")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([g["region"] for g in self.received("url/env", 1)], ["sa-east-1"])
        # ... and with neither, the target cannot be opened: reported
        e = self.env(False)
        del e["AWS_REGION"]
        r, failed = harness.invoke(self.tmp.path, [harness.mapping(
            "i", "iot", self.aws.url + "#url/none")], ev, env=e)
        self.assertEqual((r.returncode, failed), (1, ["1000"]))
        self.assertIn("NoRegion: the endpoint names no region", r.stderr.decode())
        # cross-region: the host's region signs, whatever AWS_REGION says
        r, _ = self.invoke([harness.mapping(
            "i", "iot", "abc-ats.iot.eu-central-1.amazonaws.com#x/region")], ev)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([g["region"] for g in self.received("x/region", 1)], ["eu-central-1"])

    def test_cross_account_role(self):
        sts = harness.StsServer(register_with=[self.aws.url])
        try:
            role = "arn:aws:iam::%s:role/ext-iot-publisher" % OTHER_ACCOUNT
            ev = harness.kinesis_event([("k", b'{"n":1}')])
            m = harness.mapping("i", "iot", HOST + "#xacct", role=role,
                                externalId=EXTERNAL_ID)
            r, _ = self.invoke([m], ev, AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            got = self.received("xacct", 1)
            self.assertEqual([(g["accessKeyId"], g["accountId"]) for g in got],
                             [(sts.issued[0], OTHER_ACCOUNT)])
            m["externalId"] = "wrong-id"
            self.aws.reset()
            r, failed = self.invoke([m], ev, AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual((r.returncode, failed), (1, ["1000"]))
            self.assertIn("AccessDenied", r.stderr.decode())
            self.assertEqual(self.received("xacct"), [])
        finally:
            sts.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
