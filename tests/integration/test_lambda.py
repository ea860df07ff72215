"""The fanout binary as a Lambda custom runtime (`bootstrap`): the Runtime
API loop against tests/servers/runtime_emulator.py, the engine and the file plugin
behind it. Run by meson with /usr/bin/python3."""

import base64
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, run_bootstrap  # noqa: E402

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"


def event(*datas):
    return {"Records": [{
        "eventSource": "aws:kinesis", "eventSourceARN": ARN, "awsRegion": "us-east-1",
        "kinesis": {"partitionKey": "k%d" % i, "sequenceNumber": str(100 + i),
                    "data": base64.b64encode(d).decode()}} for i, d in enumerate(datas)]}


class Lambda(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_runtime(self, events, env=None, config=True):
        cfg = os.path.join(self.dir, "mappings.json")
        with open(cfg, "w") as f:
            json.dump([{"sourceArn": ARN, "id": "out", "type": "file",
                        "destination": os.path.join(self.dir, "out.jsonl"),
                        "active": True},
                       {"sourceArn": ARN, "id": "flaky", "type": "flaky",
                        "destination": os.path.join(self.dir, "flaky.log"),
                        "active": True}], f)
        e = dict(os.environ)
        e.update({"FANOUT_PLUGIN_PATH": os.path.join(BUILD, "plugins", "file") + ":" +
                  os.path.join(BUILD, "tests", "plugins"),
                  "FANOUT_RETRY_BASE_MS": "1", "FANOUT_RETRY_CAP_MS": "2"})
        if config:
            e["FANOUT_CONFIG"] = cfg
        else:
            e.pop("FANOUT_CONFIG", None)
        if env:
            e.update(env)
        return run_bootstrap(self.dir, events, e)

    def test_invocations_answered(self):
        r, posts = self.run_runtime([
            {"event": event(b"a", b"b")},
            {"event": event(b"fatal:c", b"d")},
            {"event": "this is not json"},
        ])
        log = r.stderr.decode()
        self.assertEqual([p["kind"] for p in posts], ["response", "error", "error"], log)
        self.assertEqual(json.loads(posts[0]["body"]), {"batchItemFailures": []})
        self.assertEqual(posts[1]["headers"]["lambda-runtime-function-error-type"],
                         "Fanout.DeliveryFailed")
        self.assertIn("1 of 2 records", json.loads(posts[1]["body"])["errorMessage"])
        self.assertEqual(posts[2]["headers"]["lambda-runtime-function-error-type"],
                         "Fanout.InvalidEvent")
        with open(os.path.join(self.dir, "out.jsonl")) as f:
            self.assertEqual(len(f.readlines()), 4)
        # text lines under Lambda unless AWS_LAMBDA_LOG_FORMAT=JSON (Lambda's
        # default, Text; the JSON format is tested in test_observability.py)
        for line in log.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z (ERROR|WARN |INFO |DEBUG) ")

    def test_instances_reused_across_invocations(self):
        r, posts = self.run_runtime([{"event": event(b"a")}, {"event": event(b"b")},
                                     {"event": event(b"c")}],
                                    env={"FANOUT_LOG_LEVEL": "debug"})
        log = r.stderr.decode()
        self.assertEqual([p["kind"] for p in posts], ["response"] * 3, log)
        self.assertEqual(log.count("opened file instance"), 1, log)
        # an instance left unused past the idle time is closed, then reopened
        r, posts = self.run_runtime([{"event": event(b"a")}, {"event": event(b"b")}],
                                    env={"FANOUT_LOG_LEVEL": "debug",
                                         "FANOUT_INSTANCE_IDLE_SECONDS": "0"})
        log = r.stderr.decode()
        self.assertEqual([p["kind"] for p in posts], ["response"] * 2, log)
        self.assertGreaterEqual(log.count("opened file instance"), 2, log)
        self.assertIn("closing the file instance", log)

    def test_partial_batch_response(self):
        r, posts = self.run_runtime([{"event": event(b"a", b"fatal:b", b"c")}],
                                    env={"FANOUT_REPORT_BATCH_ITEM_FAILURES": "true"})
        self.assertEqual([p["kind"] for p in posts], ["response"], r.stderr.decode())
        self.assertEqual(json.loads(posts[0]["body"]),
                         {"batchItemFailures": [{"itemIdentifier": "101"}]})

    def test_partial_batch_response_not_for_sns(self):
        # SNS invokes the function asynchronously: any answer is success
        # there, so a failed SNS message (or a record of an event unwrapped
        # from one) must fail the invocation even with
        # FANOUT_REPORT_BATCH_ITEM_FAILURES=true, else it is lost.
        topic = "arn:aws:sns:us-east-1:123456789012:t"
        cfg = os.path.join(self.dir, "sns.json")
        with open(cfg, "w") as f:
            json.dump([{"sourceArn": src, "id": "flaky", "type": "flaky",
                        "destination": os.path.join(self.dir, "flaky.log"),
                        "active": True} for src in (topic, ARN)], f)

        def sns(message):
            return {"Records": [{
                "EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": topic + ":0b1c", "Sns": {
                    "Type": "Notification", "MessageId": "m-1", "TopicArn": topic,
                    "Message": message}}]}
        r, posts = self.run_runtime([{"event": sns("fatal:x")},
                                     {"event": sns(json.dumps(event(b"fatal:y")))},
                                     {"event": event(b"fatal:z")}],
                                    env={"FANOUT_REPORT_BATCH_ITEM_FAILURES": "true",
                                         "FANOUT_CONFIG": cfg})
        log = r.stderr.decode()
        self.assertEqual([p["kind"] for p in posts], ["error", "error", "response"], log)
        for p in posts[:2]:
            self.assertEqual(p["headers"]["lambda-runtime-function-error-type"],
                             "Fanout.DeliveryFailed", log)
            self.assertIn("SNS", json.loads(p["body"])["errorMessage"], log)
        self.assertEqual(json.loads(posts[2]["body"]),
                         {"batchItemFailures": [{"itemIdentifier": "100"}]})

    def test_init_error_without_config(self):
        r, posts = self.run_runtime([{"event": event(b"a")}], config=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual([p["kind"] for p in posts], ["init_error"])
        self.assertIn("FANOUT_CONFIG", json.loads(posts[0]["body"])["errorMessage"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
