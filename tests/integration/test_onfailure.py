"""On-failure destinations end to end: a Kinesis target whose server
(FakeKinesis of test_kinesis.py) refuses some records, permanently or by
throttling until the attempts run out, plus a record the Kinesis plugin
refuses itself (a partition key over Kinesis' 256 characters); its
"onFailure" is an SQS queue of local-aws-sqs (tests/servers/sqs_server.js).
The queue must receive exactly the records the target could not take, one
JSON document each, checked field by field, and the invocation must report
none of them failed. When the queue fails too (it does not exist), those
records are reported failed, with both reasons in the log. The same
mapping from a DynamoDB table (dynalite), where "onFailure" is a string
holding the JSON. Run by meson with /usr/bin/python3 (standard library +
python3-botocore)."""

import base64
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_kinesis import FakeKinesis  # noqa: E402

SRC = harness.KINESIS_SOURCE
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LONG_KEY = "k" * 300  # Kinesis takes 1 to 256 characters (hashLongPartitionKeys false)


class OnFailure(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kinesis = FakeKinesis()
        cls.sqs = harness.SqsServer()
        cls.client = harness.botocore_client("sqs", cls.sqs.url)
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sqs.stop()
        cls.kinesis.stop()

    def setUp(self):
        self.tmp = harness.TempDir()
        self.env = harness.aws_env(SQS=self.sqs.url, KINESIS=self.kinesis.url)
        self.env["FANOUT_RETRY_ATTEMPTS"] = "2"
        OnFailure.counter += 1
        self.queue = self.client.create_queue(
            QueueName="dlq-%d" % self.counter)["QueueUrl"]

    def tearDown(self):
        self.tmp.cleanup()

    def receive_all(self, url):
        out = []
        while True:
            got = self.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            out += got
            self.client.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(got)])

    def mapping(self, queue):
        return harness.mapping("to-kinesis", "kinesis", "out", hashLongPartitionKeys=False,
                               onFailure={"type": "sqs", "destination": queue})

    def event(self):
        # 1000 delivered; 1001 refused for good; 1002 throttled on both
        # attempts; 1003 (binary) refused for good; 1004 refused by the
        # plugin (key too long), not sent; 1005 delivered
        return harness.kinesis_event([("a", b"first"), ("b", b'{"n": 2}'),
                                      ("c", b"third"), ("d", b"\xff\x00\xfe"),
                                      (LONG_KEY, b"long key"), ("f", b"last")])

    def plan_failures(self):
        # the first request carries 1000-1003 and 1005; the retry 1002
        self.kinesis.reset([{"fail": {1: "SomethingPermanentException",
                                      2: "ProvisionedThroughputExceededException",
                                      3: "SomethingPermanentException"}},
                            {"fail": {0: "ProvisionedThroughputExceededException"}}])

    def check_documents(self, log, target="to-kinesis"):
        msgs = self.receive_all(self.queue)
        docs = {}
        for m in msgs:
            doc = json.loads(m["Body"])
            self.assertNotIn(doc["sequenceNumber"], docs)
            docs[doc["sequenceNumber"]] = doc
        self.assertEqual(sorted(docs), ["1001", "1002", "1003", "1004"], log)
        for seq, doc in docs.items():
            self.assertEqual(doc["targetId"], target)
            self.assertEqual(doc["targetType"], "kinesis")
            self.assertEqual(doc["destination"], "out")
            self.assertEqual(doc["sourceArn"], SRC)
            self.assertIsNone(doc["subSequenceNumber"])
            self.assertRegex(doc["timestamp"], TIMESTAMP)
            self.assertLess(abs(time.mktime(time.strptime(doc["timestamp"][:19],
                                                          "%Y-%m-%dT%H:%M:%S"))
                                - time.mktime(time.gmtime())), 300)
        d = docs["1001"]
        self.assertEqual(d["reason"], "failed: SomethingPermanentException: injected "
                                      "SomethingPermanentException (1 attempt)")
        self.assertEqual((d["attempts"], d["partitionKey"], d["data"]), (1, "b", '{"n": 2}'))
        self.assertNotIn("dataEncoding", d)
        d = docs["1002"]
        self.assertEqual(d["reason"], "throttled: ProvisionedThroughputExceededException: "
                                      "injected ProvisionedThroughputExceededException (gave "
                                      "up after 2 attempts)")
        self.assertEqual((d["attempts"], d["partitionKey"], d["data"]), (2, "c", "third"))
        d = docs["1003"]
        self.assertEqual(d["attempts"], 1)
        self.assertEqual(d["dataEncoding"], "base64")
        self.assertEqual(base64.b64decode(d["data"]), b"\xff\x00\xfe")
        d = docs["1004"]
        self.assertEqual((d["attempts"], d["partitionKey"], d["data"]), (1, LONG_KEY, "long key"))
        self.assertIn("InvalidPartitionKey", d["reason"])
        self.assertIn("more than the 256", d["reason"])
        self.assertEqual(len(d), 11)
        self.assertEqual(len(docs["1003"]), 12)

    def test_refused_records_reach_the_queue(self):
        self.plan_failures()
        r, failed = harness.invoke(self.tmp.path, [self.mapping(self.queue)], self.event(),
                                   env=self.env)
        log = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(failed, [])
        self.assertEqual(sorted(d for _, _, d in self.kinesis.written), [b"first", b"last"])
        self.check_documents(log)
        self.assertIn("[to-kinesis] kinesis out: 6 records, 6 messages, 2 calls, 2 delivered, "
                      "0 failed, 4 on failure", log)
        self.assertRegex(log, r"WARN  \[to-kinesis\] record not delivered to kinesis out, "
                              r"handed to its on-failure destination sqs \S+dlq-\d+: source "
                              r"\S+, sequence number 1001: failed: SomethingPermanentException")

    def test_queue_fails_too(self):
        self.plan_failures()
        missing = self.queue + "-missing"
        r, failed = harness.invoke(self.tmp.path, [self.mapping(missing)], self.event(),
                                   env=self.env)
        log = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 1, log)
        self.assertEqual(failed, ["1001", "1002", "1003", "1004"], log)
        self.assertEqual(sorted(d for _, _, d in self.kinesis.written), [b"first", b"last"])
        self.assertEqual(self.receive_all(self.queue), [])
        self.assertIn("sequence number 1001: failed: SomethingPermanentException: injected "
                      "SomethingPermanentException (1 attempt); its on-failure destination "
                      "sqs %s did not take it either: failed: " % missing, log)
        self.assertIn("QueueDoesNotExist", log)
        self.assertIn("2 delivered, 4 failed, 0 on failure", log)

    def test_invalid_on_failure_refused(self):
        m = harness.mapping("to-kinesis", "kinesis", "out",
                            onFailure={"type": "sqs", "destination": "not a queue"})
        code, out = harness.validate(self.tmp.path, [m], env=self.env)
        self.assertNotEqual(code, 0, out)
        self.assertIn('mapping "to-kinesis": field "onFailure": field "destination": ', out)
        # and it is never used: the records fail on that target, none sent
        r, failed = harness.invoke(self.tmp.path, [m], self.event(), env=self.env)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(failed), 6)
        self.assertEqual(self.kinesis.requests, [])

    def test_table_form(self):
        ddb = harness.Dynalite()
        try:
            client = harness.botocore_client("dynamodb", ddb.url)
            client.create_table(
                TableName="fanout-mappings",
                AttributeDefinitions=[{"AttributeName": "sourceArn", "AttributeType": "S"},
                                      {"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "sourceArn", "KeyType": "HASH"},
                           {"AttributeName": "id", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST")
            end = time.time() + 20
            while client.describe_table(TableName="fanout-mappings")["Table"][
                    "TableStatus"] != "ACTIVE":
                self.assertLess(time.time(), end)
                time.sleep(0.02)
            on_failure = json.dumps({"type": "sqs", "destination": self.queue})
            client.put_item(TableName="fanout-mappings", Item={
                "sourceArn": {"S": SRC}, "id": {"S": "from-table"}, "type": {"S": "kinesis"},
                "destination": {"S": "out"}, "active": {"BOOL": True},
                "hashLongPartitionKeys": {"BOOL": False},
                "onFailure": {"S": on_failure}})
            client.close()
            self.plan_failures()
            env = dict(self.env, AWS_ENDPOINT_URL_DYNAMODB=ddb.url,
                       FANOUT_TABLE="fanout-mappings")
            r = harness.run_fanout(["invoke", "--event", "-"], env=env,
                                   stdin=json.dumps(self.event()).encode())
            log = r.stderr.decode(errors="replace")
            self.assertEqual(r.returncode, 0, log)
            self.check_documents(log, target="from-table")
        finally:
            ddb.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
