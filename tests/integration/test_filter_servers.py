"""Per-target filters end to end against the test servers (issue 15's first
test): one mixed Kinesis event (JSON records of several types, records
that are not JSON, one KPL aggregate of three user records) fanned out by
`fanout invoke` to three targets with different event patterns: a Kinesis
stream of kinesalite, an SQS queue of local-aws-sqs and a redis-server.
Each server must hold exactly the records its pattern keeps (read back
with botocore and a RESP client), the invocation must report none failed,
and each target's log line and EMF document count the records it filtered.
Then the same mappings written with `fanout register --filter` into a
DynamoDB table (dynalite), where the patterns are strings holding the JSON,
and run from there. Run by meson with /usr/bin/python3 (standard library +
python3-botocore)."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_kinesis import all_records, kpl_aggregate  # noqa: E402
from test_redis import RedisServer, Resp  # noqa: E402

SRC = harness.KINESIS_SOURCE


def doc(**fields):
    return json.dumps(fields, separators=(",", ":")).encode()


# (partition key, data) of the user records of one KPL aggregate
KPL = [
    ("k-o-3", doc(type="order", amount=500, region="ap-south-1")),
    ("k-u-2", doc(type="user", name="bo")),
    ("k-r-2", doc(type="refund", amount=5, region="eu-west-1")),
]
# the event's records; "agg" is the aggregate
EVENT = [
    ("o-1", doc(type="order", amount=120, region="eu-west-1")),
    ("o-2", doc(type="order", amount=30, region="us-east-1")),
    ("r-1", doc(type="refund", amount=200, region="eu-central-1")),
    ("u-1", doc(type="user", name="ann")),
    ("x-1", b"plain text, not JSON"),
    ("x-2", b"\xff\xfe\x00binary"),
    ("agg", kpl_aggregate([k.encode() for k, _ in KPL], [],
                          [(i, None, d) for i, (_, d) in enumerate(KPL)])),
]
RECORDS = dict(EVENT[:-1] + KPL)  # what the targets see, deaggregated

PATTERNS = {
    "orders": {"data": {"type": ["order"]}},
    "big": {"data": {"amount": [{"numeric": [">=", 100]}]}},
    # metadata only: records whose data is not JSON match too (a pattern
    # naming data never matches them, as in Lambda's event filtering)
    "cache": {"partitionKey": [{"prefix": "x-"}, {"prefix": "u-"}, {"suffix": "-2"}]},
}
KEPT = {
    "orders": ["o-1", "o-2", "k-o-3"],
    "big": ["o-1", "r-1", "k-o-3"],
    "cache": ["o-2", "u-1", "x-1", "x-2", "k-u-2", "k-r-2"],
}


class FilteredFanOut(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = harness.TempDir()
        cls.kinesalite = harness.Kinesalite()
        cls.sqs = harness.SqsServer()
        cls.redis = RedisServer(cls.tmpdir.path)
        cls.dynalite = harness.Dynalite()
        cls.kin = harness.botocore_client("kinesis", cls.kinesalite.url)
        cls.sqs_client = harness.botocore_client("sqs", cls.sqs.url)
        cls.ddb = harness.botocore_client("dynamodb", cls.dynalite.url)
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        for c in (cls.kin, cls.sqs_client, cls.ddb):
            c.close()
        cls.redis.stop()
        cls.sqs.stop()
        cls.kinesalite.stop()
        cls.dynalite.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        FilteredFanOut.counter += 1
        n = self.counter
        self.tmp = harness.TempDir()
        self.stream = "orders-%d" % n
        self.kin.create_stream(StreamName=self.stream, ShardCount=1)
        end = time.time() + 20
        while self.kin.describe_stream_summary(StreamName=self.stream)[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            self.assertLess(time.time(), end, "stream not ACTIVE")
            time.sleep(0.05)
        self.queue = self.sqs_client.create_queue(QueueName="big-%d" % n)["QueueUrl"]
        self.db = n  # a redis database of its own per test
        self.env = harness.aws_env(KINESIS=self.kinesalite.url, SQS=self.sqs.url,
                                   DYNAMODB=self.dynalite.url)
        self.env["FANOUT_METRICS"] = "emf"

    def tearDown(self):
        self.tmp.cleanup()

    def mappings(self):
        dest = "127.0.0.1:%d" % self.redis.port
        return [
            harness.mapping("orders", "kinesis", self.stream, deaggregate=True,
                            filter=PATTERNS["orders"]),
            harness.mapping("big", "sqs", self.queue, collapse="none", deaggregate=True,
                            filter=PATTERNS["big"]),
            harness.mapping("cache", "redis", dest, deaggregate=True, database=self.db,
                            filter=PATTERNS["cache"]),
        ]

    def receive_all(self, expect):
        out, end = [], time.time() + 5
        while time.time() < end:
            got = self.sqs_client.receive_message(QueueUrl=self.queue,
                                                  MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=0).get("Messages", [])
            if got:
                out += got
                self.sqs_client.delete_message_batch(QueueUrl=self.queue, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(got)])
            elif len(out) >= expect:
                break
            else:
                time.sleep(0.05)
        return out

    def check_servers_and_counts(self, r, failed):
        log = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(failed, [], log)
        # the Kinesis stream: the orders, keys and data as sent, in order
        got = [(k, d) for k, d, _ in all_records(self.kin, self.stream)]
        self.assertEqual(got, [(k, RECORDS[k]) for k in KEPT["orders"]])
        # the queue: the big amounts, one message each
        bodies = sorted(m["Body"] for m in self.receive_all(len(KEPT["big"])))
        self.assertEqual(bodies, sorted(RECORDS[k].decode() for k in KEPT["big"]))
        # redis: exactly the kept keys, binary data intact
        c = Resp(self.redis.port)
        try:
            c.cmd("SELECT", self.db)
            self.assertEqual(sorted(k.decode() for k in c.cmd("KEYS", "*")),
                             sorted(KEPT["cache"]))
            for k in KEPT["cache"]:
                self.assertEqual(c.get(k), RECORDS[k], k)
        finally:
            c.close()
        # the counts: each target saw every record and filtered the others
        total = len(RECORDS)
        for name, keys in KEPT.items():
            self.assertRegex(log, r"\[%s\] [a-z]+ .*: %d records, .* %d delivered, 0 failed, "
                             r"0 on failure, %d filtered" % (name, total, len(keys),
                                                             total - len(keys)))
        docs = {}
        for line in r.stdout.decode().splitlines():
            d = json.loads(line)
            if "TargetId" in d:
                docs[d["TargetId"]] = d
        self.assertEqual(sorted(docs), sorted(KEPT))
        for name, keys in KEPT.items():
            d = docs[name]
            self.assertEqual((d["RecordsIn"], d["Delivered"], d["Failed"], d["Filtered"]),
                             (total, len(keys), 0, total - len(keys)), name)
            names = [m["Name"] for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            self.assertIn("Filtered", names)
            self.assertNotIn("OnFailure", names)

    def test_mixed_event_from_a_mapping_file(self):
        r, failed = harness.invoke(self.tmp.path, self.mappings(),
                                   harness.kinesis_event(EVENT), env=self.env)
        self.check_servers_and_counts(r, failed)

    def test_mixed_event_from_mappings_registered_with_the_cli(self):
        table = "filters%dTargets" % self.counter
        self.ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "sourceArn", "AttributeType": "S"},
                                  {"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "sourceArn", "KeyType": "HASH"},
                       {"AttributeName": "id", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")
        for m in self.mappings():
            argv = ["register", m["type"], "--table", table, "--source-arn", SRC, "--id",
                    m["id"], "--destination", m["destination"], "--active", "true",
                    "--deaggregate", "true", "--filter", json.dumps(m["filter"])]
            if m["type"] == "sqs":
                argv += ["--collapse", "none"]
            reg = harness.run_fanout(argv, env=self.env)
            self.assertEqual(reg.returncode, 0, reg.stderr.decode())
            item = self.ddb.get_item(TableName=table, Key={"sourceArn": {"S": SRC},
                                                           "id": {"S": m["id"]}})["Item"]
            self.assertEqual(json.loads(item["filter"]["S"]), m["filter"])
            if m["type"] == "redis":
                # a plugin option has no flag: added as the table holds it
                self.ddb.update_item(TableName=table, Key={"sourceArn": {"S": SRC},
                                                           "id": {"S": m["id"]}},
                                     UpdateExpression="SET #d = :d",
                                     ExpressionAttributeNames={"#d": "database"},
                                     ExpressionAttributeValues={":d": {"N": str(self.db)}})
        env = dict(self.env, FANOUT_TABLE=table)
        event = os.path.join(self.tmp.path, "event.json")
        with open(event, "w") as f:
            json.dump(harness.kinesis_event(EVENT), f)
        resp = os.path.join(self.tmp.path, "response.json")
        r = harness.run_fanout(["invoke", "--event", event, "--response", resp], env=env)
        with open(resp) as f:
            failed = [x["itemIdentifier"] for x in json.load(f)["batchItemFailures"]]
        self.check_servers_and_counts(r, failed)


if __name__ == "__main__":
    unittest.main()
