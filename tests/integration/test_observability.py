"""Logs and metrics: Lambda's JSON log format (AWS_LAMBDA_LOG_FORMAT,
AWS_LAMBDA_LOG_LEVEL, requestId), text lines otherwise, and the metrics in
CloudWatch Embedded Metric Format on stdout, checked with the validator in
emf.py. Through `fanout invoke` and through the Lambda Runtime API loop
against tests/servers/runtime_emulator.py. Run by meson with
/usr/bin/python3."""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emf  # noqa: E402
from harness import BUILD, FANOUT, run_bootstrap, sample_event  # noqa: E402

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
DDB_ARN = ("arn:aws:dynamodb:us-east-1:123456789012:table/example-table/stream/"
           "2026-01-01T00:00:00.000")
PLUGIN_PATH = os.path.join(BUILD, "plugins", "file") + ":" + os.path.join(BUILD, "tests",
                                                                         "plugins")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z (ERROR|WARN |INFO |DEBUG) ")
LEVELS = ["ERROR", "WARN", "INFO", "DEBUG"]
AGE_S = 60  # how old the records of the events below are


def event(datas, age_s=AGE_S):
    """A Kinesis event; record i arrived age_s - i seconds ago."""
    now = time.time()
    return {"Records": [{
        "eventSource": "aws:kinesis", "eventSourceARN": ARN, "awsRegion": "us-east-1",
        "kinesis": {"partitionKey": "k%d" % i, "sequenceNumber": str(100 + i),
                    "data": base64.b64encode(d).decode(),
                    "approximateArrivalTimestamp": round(now - age_s + i, 3)}}
        for i, d in enumerate(datas)]}


def mappings(d, arn=ARN, flaky=True):
    m = [{"sourceArn": arn, "id": "out", "type": "file",
          "destination": os.path.join(d, "out.jsonl"), "active": True}]
    if flaky:
        m.append({"sourceArn": arn, "id": "flaky", "type": "flaky",
                  "destination": os.path.join(d, "flaky.log"), "active": True})
    return m


def json_lines(test, text):
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            test.fail("not a JSON line: %r" % line)
        test.assertIsInstance(obj, dict, line)
        test.assertRegex(obj.get("timestamp", ""), TIMESTAMP, line)
        test.assertIn(obj.get("level"), LEVELS, line)
        test.assertIsInstance(obj.get("message"), str, line)
        out.append(obj)
    return out


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def env(self, extra=None):
        e = dict(os.environ)
        for k in ("FANOUT_CONFIG", "FANOUT_LOG_FORMAT", "FANOUT_LOG_LEVEL", "FANOUT_METRICS",
                  "FANOUT_METRICS_NAMESPACE", "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL",
                  "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API"):
            e.pop(k, None)
        e.update({"FANOUT_PLUGIN_PATH": PLUGIN_PATH, "FANOUT_RETRY_BASE_MS": "1",
                  "FANOUT_RETRY_CAP_MS": "2"})
        e.update(extra or {})
        return e

    def emf_docs(self, stdout):
        docs, errs = emf.parse_lines(stdout)
        self.assertEqual(errs, [], stdout[:4000])
        return docs

    def by_target(self, docs):
        targets = {d["TargetId"]: d for d in docs if "TargetId" in d}
        invocations = [d for d in docs if "TargetId" not in d]
        self.assertEqual(len(invocations), 1, docs)
        return targets, invocations[0]

    def check_age(self, value, age_s):
        self.assertGreaterEqual(value, age_s * 1000 - 50)
        self.assertLess(value, (age_s + 60) * 1000)


class Validator(unittest.TestCase):
    """The validator itself finds what it is meant to find."""

    GOOD = {"_aws": {"Timestamp": 1765000000000, "CloudWatchMetrics": [{
        "Namespace": "FanOut", "Dimensions": [["TargetId"]],
        "Metrics": [{"Name": "Delivered", "Unit": "Count"}]}]},
        "TargetId": "a", "Delivered": 3}

    def bad(self, change):
        doc = json.loads(json.dumps(self.GOOD))
        change(doc)
        return emf.validate(doc)

    def test_catches(self):
        self.assertEqual(emf.validate(self.GOOD), [])
        d = self.GOOD["_aws"]["CloudWatchMetrics"]
        cases = {
            "no _aws": lambda x: x.pop("_aws"),
            "seconds": lambda x: x["_aws"].update(Timestamp=1765000000),
            "float ts": lambda x: x["_aws"].update(Timestamp=1765000000000.5),
            "no value": lambda x: x.pop("Delivered"),
            "string value": lambda x: x.update(Delivered="3"),
            "bool value": lambda x: x.update(Delivered=True),
            "no dim": lambda x: x.pop("TargetId"),
            "number dim": lambda x: x.update(TargetId=1),
            "empty dim": lambda x: x.update(TargetId=""),
            "AWS/ namespace": lambda x: x["_aws"]["CloudWatchMetrics"][0].update(
                Namespace="AWS/Lambda"),
            "bad namespace": lambda x: x["_aws"]["CloudWatchMetrics"][0].update(
                Namespace="a\u00e9"),
            "bad unit": lambda x: x["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(
                Unit="Things"),
            "31 dims": lambda x: x["_aws"]["CloudWatchMetrics"][0].update(
                Dimensions=[["TargetId"] * 31]),
            "101 metrics": lambda x: x["_aws"]["CloudWatchMetrics"][0].update(
                Metrics=[{"Name": "M%d" % i} for i in range(101)]),
            "extra member": lambda x: x["_aws"]["CloudWatchMetrics"][0].update(Extra=1),
        }
        self.assertTrue(d)
        for name, change in cases.items():
            with self.subTest(name):
                self.assertNotEqual(self.bad(change), [])


class Invoke(Base):
    def invoke(self, ev, args=(), env=None, maps=None):
        cfg = os.path.join(self.dir, "mappings.json")
        with open(cfg, "w") as f:
            json.dump(maps if maps is not None else mappings(self.dir), f)
        return subprocess.run([FANOUT, "invoke", "--config", cfg, "--event", "-"] + list(args),
                              input=json.dumps(ev).encode(), capture_output=True,
                              env=self.env(env), cwd=self.dir, timeout=120)

    def test_kinesis_two_targets_one_failing(self):
        r = self.invoke(event([b"a", b"retry:1:b", b"fatal:c"]), ["--metrics"],
                        {"FANOUT_LOG_FORMAT": "text"})
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        docs = self.emf_docs(r.stdout.decode())
        self.assertEqual(len(docs), 3, docs)
        targets, inv = self.by_target(docs)
        for d in docs:
            self.assertEqual(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "FanOut")
            self.assertAlmostEqual(d["_aws"]["Timestamp"] / 1000, time.time(), delta=60)
            self.assertNotIn("requestId", d)  # none outside Lambda
        out, flaky = targets["out"], targets["flaky"]
        self.assertEqual(out["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                         [["TargetId", "TargetType"]])
        self.assertEqual((out["TargetType"], out["RecordsIn"], out["Delivered"],
                          out["Failed"], out["Retried"]), ("file", 3, 3, 0, 0))
        self.assertGreaterEqual(out["Requests"], 1)
        self.assertEqual((flaky["TargetType"], flaky["RecordsIn"], flaky["Delivered"],
                          flaky["Failed"], flaky["Retried"]), ("flaky", 3, 2, 1, 1))
        self.assertGreaterEqual(flaky["Requests"], 2)  # the retry is a call
        self.assertEqual(flaky["SourceArn"], ARN)
        for d in (out, flaky, inv):
            self.check_age(d["BatchAge"], AGE_S)
            self.assertGreaterEqual(d["Duration"], 0)
        self.assertEqual((inv["Records"], inv["FailedRecords"], inv["Targets"]), (3, 1, 2))
        self.assertEqual(inv["_aws"]["CloudWatchMetrics"][0]["Dimensions"], [[]])
        # the logs are untouched by the metrics: text lines on stderr
        for line in err.splitlines():
            self.assertRegex(line, TEXT_LINE)
        self.assertIn("retrying", err)

    def test_dynamodb_event(self):
        with open(sample_event("dynamodb.json")) as f:
            ev = json.load(f)
        created = time.time() - 3600
        for i, rec in enumerate(ev["Records"]):
            rec["dynamodb"]["ApproximateCreationDateTime"] = int(created) + i
        r = self.invoke(ev, env={"FANOUT_METRICS": "emf", "FANOUT_METRICS_NAMESPACE": "My/App"},
                        maps=mappings(self.dir, DDB_ARN, flaky=False))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = self.emf_docs(r.stdout.decode())
        targets, inv = self.by_target(docs)
        n = len(ev["Records"])
        self.assertEqual((targets["out"]["RecordsIn"], targets["out"]["Delivered"]), (n, n))
        self.assertEqual((inv["Records"], inv["FailedRecords"]), (n, 0))
        for d in docs:
            self.assertEqual(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "My/App")
            self.check_age(d["BatchAge"], 3600)

    def test_no_arrival_time_no_batch_age(self):
        ev = event([b"a"])
        del ev["Records"][0]["kinesis"]["approximateArrivalTimestamp"]
        r = self.invoke(ev, ["--metrics"], maps=mappings(self.dir, flaky=False))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        for d in self.emf_docs(r.stdout.decode()):
            self.assertNotIn("BatchAge", d)
            names = [m["Name"] for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            self.assertNotIn("BatchAge", names)

    def test_off_by_default_and_bad_settings(self):
        r = self.invoke(event([b"a"]))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"")
        for env in ({"FANOUT_METRICS_NAMESPACE": "AWS/Lambda"},
                    {"FANOUT_METRICS_NAMESPACE": "x" * 256},
                    {"FANOUT_METRICS": "maybe"}):
            with self.subTest(env=env):
                r = self.invoke(event([b"a"]), ["--metrics"], env)
                self.assertEqual(r.returncode, 2, r.stderr.decode())
                self.assertEqual(r.stdout, b"")

    def test_log_formats(self):
        ev = event([b"a", b"fatal:b"])
        # piped, nothing set: text (not JSON, as before, for a person's pipe)
        r = self.invoke(ev)
        self.assertEqual(r.returncode, 1)
        for line in r.stderr.decode().splitlines():
            self.assertRegex(line, TEXT_LINE)
        # Lambda's JSON format; its level filter wins over FANOUT_LOG_LEVEL
        r = self.invoke(ev, env={"AWS_LAMBDA_LOG_FORMAT": "JSON",
                                 "AWS_LAMBDA_LOG_LEVEL": "ERROR",
                                 "FANOUT_LOG_LEVEL": "debug"})
        objs = json_lines(self, r.stderr.decode())
        self.assertTrue(objs)
        self.assertEqual({o["level"] for o in objs}, {"ERROR"})
        self.assertIn("flaky", {o.get("scope") for o in objs})
        self.assertFalse(any("requestId" in o for o in objs))
        # FANOUT_LOG_LEVEL when Lambda's is unset; --verbose keeps the format
        r = self.invoke(ev, ["--verbose"], {"FANOUT_LOG_FORMAT": "json"})
        objs = json_lines(self, r.stderr.decode())
        self.assertIn("DEBUG", {o["level"] for o in objs})
        r = self.invoke(ev, ["--quiet"], {"FANOUT_LOG_FORMAT": "text",
                                          "AWS_LAMBDA_LOG_FORMAT": "JSON"})
        lines = r.stderr.decode().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^\S+ (ERROR|WARN ) ")
        # FATAL: fanout writes no fatal lines, so nothing passes
        r = self.invoke(ev, env={"AWS_LAMBDA_LOG_FORMAT": "JSON",
                                 "AWS_LAMBDA_LOG_LEVEL": "FATAL"})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, b"")


class Runtime(Base):
    def run_runtime(self, events, env=None):
        cfg = os.path.join(self.dir, "mappings.json")
        with open(cfg, "w") as f:
            json.dump(mappings(self.dir), f)
        e = self.env({"FANOUT_CONFIG": cfg})
        e.update(env or {})
        return run_bootstrap(self.dir, events, e)

    EVENTS = [{"requestId": "req-1", "event": event([b"a", b"retry:1:b"])},
              {"requestId": "req-2", "event": event([b"fatal:c", b"d"])}]

    def test_json_logs_and_metrics(self):
        r, posts = self.run_runtime(self.EVENTS, {
            "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
            "AWS_LAMBDA_FUNCTION_NAME": "fanout-test"})
        err = r.stderr.decode()
        self.assertEqual([p["kind"] for p in posts], ["response", "error"], err)
        objs = json_lines(self, err)
        self.assertIn("DEBUG", {o["level"] for o in objs})
        # the invocation's lines carry its request id; the others none
        summary = [o for o in objs if o.get("scope") == "flaky" and "delivered" in
                   o["message"] and "records" in o["message"]]
        self.assertEqual([o.get("requestId") for o in summary], ["req-1", "req-2"], err)
        retry = [o for o in objs if "retrying" in o["message"]]
        self.assertEqual([(o["level"], o.get("requestId")) for o in retry],
                         [("WARN", "req-1")], err)
        failed = [o for o in objs if "record not delivered" in o["message"]]
        self.assertEqual([(o["level"], o.get("requestId")) for o in failed],
                         [("ERROR", "req-2")], err)
        loaded = [o for o in objs if o.get("scope") == "loader"]
        self.assertTrue(loaded, err)
        # the plugins are loaded during the first invocation
        self.assertEqual({o.get("requestId") for o in loaded}, {"req-1"}, err)
        # metrics: on by default under Lambda, one set of documents per
        # invocation, each with its request id
        docs = self.emf_docs(r.stdout.decode())
        self.assertEqual(len(docs), 6, docs)
        for rid, chunk in (("req-1", docs[:3]), ("req-2", docs[3:])):
            self.assertEqual({d["requestId"] for d in chunk}, {rid})
            targets, inv = self.by_target(chunk)
            self.assertEqual(set(targets), {"out", "flaky"})
            self.assertEqual(inv["FunctionName"], "fanout-test")
            self.assertEqual(inv["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                             [["FunctionName"]])
            self.check_age(inv["BatchAge"], AGE_S)
        t1, _ = self.by_target(docs[:3])
        t2, inv2 = self.by_target(docs[3:])
        self.assertEqual((t1["flaky"]["Delivered"], t1["flaky"]["Retried"]), (2, 1))
        self.assertEqual((t2["flaky"]["Delivered"], t2["flaky"]["Failed"]), (1, 1))
        self.assertEqual(inv2["FailedRecords"], 1)

    def test_level_filter_and_metrics_off(self):
        r, posts = self.run_runtime(self.EVENTS, {
            "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN",
            "FANOUT_METRICS": "off"})
        self.assertEqual([p["kind"] for p in posts], ["response", "error"])
        objs = json_lines(self, r.stderr.decode())
        self.assertEqual({o["level"] for o in objs}, {"WARN", "ERROR"})
        self.assertEqual(r.stdout, b"")

    def test_text_by_default(self):
        r, posts = self.run_runtime(self.EVENTS[:1])
        self.assertEqual([p["kind"] for p in posts], ["response"])
        lines = r.stderr.decode().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, TEXT_LINE)
        self.assertEqual(len(self.emf_docs(r.stdout.decode())), 3)

    def test_bad_namespace_is_an_init_error(self):
        r, posts = self.run_runtime(self.EVENTS[:1], {"FANOUT_METRICS_NAMESPACE": "AWS/X"})
        self.assertEqual([p["kind"] for p in posts], ["init_error"], r.stderr.decode())
        self.assertIn("FANOUT_METRICS_NAMESPACE", json.loads(posts[0]["body"])["errorMessage"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
