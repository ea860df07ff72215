"""End to end: one Kinesis event and one DynamoDB Streams event fanned out
to all seven AWS destinations at once (Kinesis on kinesalite, SQS on
local-aws-sqs, SNS, Firehose, Lambda, IoT and OpenSearch on the
botocore-verified endpoint), every record checked where it landed.
Run by meson with /usr/bin/python3."""

import base64
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TOPIC = "arn:aws:sns:us-east-1:123456789012:fanout-e2e"


class AllSeven(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir()
        cls.kinesis = harness.Kinesalite()
        cls.sqs = harness.SqsServer()
        cls.aws = harness.AwsService(cls.tmp.path, resources={
            "firehose": ["e2e-firehose"], "sns": [TOPIC], "lambda": ["e2e-fn"]})
        cls.kc = harness.botocore_client("kinesis", cls.kinesis.url)
        cls.kc.create_stream(StreamName="e2e-out", ShardCount=1)
        cls.qc = harness.botocore_client("sqs", cls.sqs.url)
        cls.queue = cls.qc.create_queue(QueueName="e2e-queue")["QueueUrl"]

    @classmethod
    def tearDownClass(cls):
        for s in (cls.kinesis, cls.sqs, cls.aws):
            s.stop()
        cls.tmp.cleanup()

    def mappings(self, source, **common):
        aws = self.aws.url
        return [
            harness.mapping("kinesis", "kinesis", "e2e-out", source, **common),
            harness.mapping("sqs", "sqs", self.queue, source, collapse="none", **common),
            harness.mapping("sns", "sns", TOPIC, source, collapse="none", **common),
            harness.mapping("firehose", "firehose", "e2e-firehose", source, **common),
            harness.mapping("lambda", "lambda", "e2e-fn", source, **common),
            harness.mapping("iot", "iot", aws + "#e2e/topic", source, collapse="none",
                            **common),
            harness.mapping("es", "es", aws + "#e2e-index", source, **common),
        ]

    def env(self):
        aws = self.aws.url
        return harness.aws_env(KINESIS=self.kinesis.url, SQS=self.sqs.url, SNS=aws,
                               FIREHOSE=aws, LAMBDA=aws, IOT_DATA_PLANE=aws, ES=aws)

    def read_kinesis(self):
        shard = self.kc.describe_stream(StreamName="e2e-out")["StreamDescription"]["Shards"][0]
        it = self.kc.get_shard_iterator(StreamName="e2e-out", ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out = []
        for _ in range(10):
            r = self.kc.get_records(ShardIterator=it, Limit=1000)
            out += r["Records"]
            it = r["NextShardIterator"]
            if not r["Records"]:
                break
        return out

    def read_sqs(self):
        out = []
        for _ in range(10):
            r = self.qc.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                        WaitTimeSeconds=0)
            msgs = r.get("Messages", [])
            if not msgs:
                break
            out += msgs
            self.qc.delete_message_batch(QueueUrl=self.queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        return out

    def test_kinesis_then_dynamodb_event(self):
        # --- the Kinesis sample: 5 records, to all seven
        with open(harness.sample_event("kinesis.json")) as f:
            kev = json.load(f)
        src = kev["Records"][0]["eventSourceARN"]
        datas = [base64.b64decode(r["kinesis"]["data"]) for r in kev["Records"]]
        r, failed = harness.invoke(self.tmp.path, self.mappings(src),
                                   harness.sample_event("kinesis.json"), env=self.env())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(failed, [])
        for target in ("kinesis", "sqs", "sns", "firehose", "lambda", "iot", "es"):
            self.assertIn("[%s]" % target, log)
            self.assertRegex(log, r"\[%s\] %s .*: 5 records, .* 5 delivered, 0 failed"
                             % (target, target))

        self.assertEqual(sorted(x["Data"] for x in self.read_kinesis()), sorted(datas))
        self.assertEqual(sorted(m["Body"].encode() for m in self.read_sqs()), sorted(datas))
        sns = self.aws.received("sns", TOPIC, 5)
        self.assertEqual(sorted(e["message"].encode() for e in sns), sorted(datas))
        fh = self.aws.received("firehose", "e2e-firehose", 5)
        self.assertEqual(sorted(base64.b64decode(e["dataBase64"]) for e in fh), sorted(datas))
        lam = self.aws.received("lambda", "e2e-fn", 1)
        seqs = [rec["kinesis"]["sequenceNumber"] for inv in lam
                for rec in inv["payload"]["Records"]]
        self.assertEqual(sorted(seqs), sorted(r["kinesis"]["sequenceNumber"]
                                              for r in kev["Records"]))
        iot = self.aws.received("iot", "e2e/topic", 5)
        self.assertEqual(sorted(base64.b64decode(e["payloadBase64"]) for e in iot),
                         sorted(datas))
        es = self.aws.received("opensearch", "e2e-index", 5)
        self.assertEqual(len(es), 5)
        self.assertEqual(sorted(e["source"]["id"] for e in es), [0, 1, 2, 3, 4])

        # --- the DynamoDB sample: 6 records, plain JSON, to all seven
        self.aws.reset()
        with open(harness.sample_event("dynamodb.json")) as f:
            dev = json.load(f)
        dsrc = dev["Records"][0]["eventSourceARN"]
        r, failed = harness.invoke(self.tmp.path, self.mappings(dsrc, convertDDB=True),
                                   harness.sample_event("dynamodb.json"), env=self.env())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(failed, [])
        n = len(dev["Records"])
        for target in ("kinesis", "sqs", "sns", "firehose", "lambda", "iot", "es"):
            self.assertRegex(log, r"\[%s\] %s .*: %d records, .* %d delivered, 0 failed"
                             % (target, target, n, n))
        kin = self.read_kinesis()[5:]
        self.assertEqual(len(kin), n)
        self.assertEqual(kin[0]["PartitionKey"], "h1002-0|0")
        self.assertIn(b'"big":12345678901234567890123456789.5', kin[0]["Data"])
        bodies = [json.loads(m["Body"]) for m in self.read_sqs()]
        self.assertEqual(len(bodies), n)
        self.assertEqual(len(self.aws.received("sns", TOPIC, n)), n)
        self.assertEqual(len(self.aws.received("firehose", "e2e-firehose", n)), n)
        lam = self.aws.received("lambda", "e2e-fn", 1)
        self.assertEqual(sum(len(inv["payload"]["Records"]) for inv in lam), n)
        self.assertEqual(lam[0]["payload"]["Records"][0]["eventSource"], "aws:dynamodb")
        self.assertEqual(len(self.aws.received("iot", "e2e/topic", n)), n)
        es = self.aws.received("opensearch", "e2e-index", n)
        self.assertEqual(len(es), n)

    def test_spoiled_answers_everywhere_at_once(self):
        """Every aws_service destination stores the records, then answers
        with a spoiled answer once (a count that lies, an Id twice, a 200
        to an Event invocation, a 202 to Publish, an errors flag that
        lies): nothing is taken as delivered on those answers, everything is
        sent again, and every record lands (at least once) with no failure."""
        self.aws.reset()
        self.aws.faults([
            {"service": "firehose", "kind": "mangle", "op": "set", "path": "FailedPutCount",
             "value": 1},
            {"service": "sns", "kind": "mangle", "op": "replace", "pattern": "<Id>1</Id>",
             "repl": "<Id>0</Id>"},
            {"service": "lambda", "kind": "mangle", "op": "status", "status": 200},
            {"service": "iot", "kind": "mangle", "op": "status", "status": 202, "count": 5},
            {"service": "opensearch", "kind": "mangle", "op": "set", "path": "errors",
             "value": True}])
        with open(harness.sample_event("kinesis.json")) as f:
            kev = json.load(f)
        src = kev["Records"][0]["eventSourceARN"]
        datas = [base64.b64decode(r["kinesis"]["data"]) for r in kev["Records"]]
        ms = [m for m in self.mappings(src) if m["id"] not in ("kinesis", "sqs")]
        r, failed = harness.invoke(self.tmp.path, ms, harness.sample_event("kinesis.json"),
                                   env=self.env())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(failed, [])
        for target in ("sns", "firehose", "lambda", "iot", "es"):
            self.assertRegex(log, r"\[%s\] %s .*: 5 records, .* 5 delivered, 0 failed"
                             % (target, target))
        self.assertEqual(self.aws.stats()["faults_fired"], 9)
        twice = sorted(datas * 2)
        sns = self.aws.received("sns", TOPIC, 10)
        self.assertEqual(sorted(e["message"].encode() for e in sns), twice)
        fh = self.aws.received("firehose", "e2e-firehose", 10)
        self.assertEqual(sorted(base64.b64decode(e["dataBase64"]) for e in fh), twice)
        self.assertEqual(len(self.aws.received("lambda", "e2e-fn", 2)), 2)
        iot = self.aws.received("iot", "e2e/topic", 10)
        self.assertEqual(sorted(base64.b64decode(e["payloadBase64"]) for e in iot), twice)
        es = self.aws.received("opensearch", "e2e-index", 10)
        self.assertEqual(len(es), 10)
        self.assertEqual(len({e["id"] for e in es}), 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
