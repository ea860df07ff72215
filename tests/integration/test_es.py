"""Integration tests of the es plugin (OpenSearch / Elasticsearch _bulk).

`fanout invoke` runs against tests/servers/aws_service.py on loopback, which
checks every request's SigV4 signature with botocore, answers _bulk the way
OpenSearch does (per-item statuses, 200 with "errors": true) and injects
faults on demand; what it stored is read back from /__received and its
request log. Cross-account runs through tests/servers/sts_server.py, which
registers the keys it issues with the search service, so those keys'
signatures are checked too. Run by meson with /usr/bin/python3.
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

KINESIS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/example-stream"
DDB_ARN = ("arn:aws:dynamodb:us-east-1:123456789012:table/example-table/stream/"
           "2026-01-01T00:00:00.000")
OTHER_ACCOUNT = "210987654321"
EXTERNAL_ID = "fanout+ext:id/=,.@-1"  # what sts_server.py's ext-... roles require


def sample(name):
    with open(harness.sample_event(name), encoding="utf-8") as f:
        return json.load(f)


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def default_id(arn, key, seq, sub=0):
    """The plugin's default document id, which must never change."""
    return "%s-%d-%016x" % (seq, sub, fnv1a64(arn.encode() + b"\0" + key.encode()))


def kinesis(records, arn=KINESIS_ARN):
    """records: (partition key, bytes); sequence numbers 1000, 1001..."""
    return harness.kinesis_event(records, arn=arn)


def ddb_event(changes, arn=DDB_ARN):
    """changes: (eventName, key string, new image as DynamoDB JSON or None)."""
    out = []
    for i, (name, key, image) in enumerate(changes):
        d = {"ApproximateCreationDateTime": 1479499740, "Keys": {"pk": {"S": key}},
             "SequenceNumber": str(500 + i), "SizeBytes": 26,
             "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if image is not None:
            d["NewImage"] = image
        out.append({"eventID": "e%d" % i, "eventName": name, "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                    "eventSourceARN": arn, "dynamodb": d})
    return {"Records": out}


class SearchService(harness.AwsService):
    """harness.AwsService with a request log (method, path, status, fault)."""

    def __init__(self, tmpdir, log):
        creds = os.path.join(tmpdir, "aws-credentials.json")
        with open(creds, "w") as f:
            json.dump([{"accessKeyId": harness.ACCESS_KEY,
                        "secretAccessKey": harness.SECRET_KEY}], f)
        argv = [harness.PYTHON, os.path.join(harness.TESTS, "servers", "aws_service.py"),
                "--port", "0", "--credentials", creds, "--log", log,
                "--parent-pid", str(os.getpid()), "--max-lifetime", "600"]
        harness.Server.__init__(self, argv, port_from_stdout=True)
        self.log_path = log


class EsPlugin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir()
        cls.es = SearchService(cls.tmp.path, os.path.join(cls.tmp.path, "requests.log"))

    @classmethod
    def tearDownClass(cls):
        cls.es.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.es.reset()
        open(self.es.log_path, "w").close()
        self.work = harness.TempDir()

    def tearDown(self):
        self.work.cleanup()

    # ---- helpers ----

    def dest(self, index):
        return self.es.url + "#" + index

    def run_es(self, mappings, event, **env):
        e = harness.aws_env()
        e.update(env)
        return harness.invoke(self.work.path, mappings, event, env=e)

    def docs(self, index, count, timeout_ms=5000):
        return self.es.received("opensearch", index, count, timeout_ms)

    def requests(self):
        with open(self.es.log_path) as f:
            return [json.loads(x) for x in f if x.strip()]

    def bulk_requests(self):
        return [r for r in self.requests() if r.get("operation") == "Bulk"]

    # ---- the main job: sample events ----

    def test_kinesis_sample_one_document_per_record(self):
        event = sample("kinesis.json")
        r, failed = self.run_es([harness.mapping("k", "es", self.dest("kin"),
                                                 source=KINESIS_ARN)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(failed, [])
        docs = self.docs("kin", 5)
        self.assertEqual(len(docs), 5)
        for rec, doc in zip(event["Records"], docs):
            k = rec["kinesis"]
            self.assertEqual(doc["action"], "index")
            self.assertEqual(doc["source"], json.loads(base64.b64decode(k["data"])))
            self.assertEqual(doc["id"], default_id(KINESIS_ARN, k["partitionKey"],
                                                   k["sequenceNumber"]))
            self.assertEqual(doc["region"], "us-east-1")
            self.assertEqual(doc["accessKeyId"], harness.ACCESS_KEY)
        bulk = self.bulk_requests()
        self.assertEqual([(b["method"], b["path"], b["status"]) for b in bulk],
                         [("POST", "/kin/_bulk", 200)])

    def test_same_event_twice_same_ids_no_duplicates(self):
        m = [harness.mapping("k", "es", self.dest("idem"), source=KINESIS_ARN)]
        for run in (1, 2):
            r, _ = self.run_es(m, harness.sample_event("kinesis.json"))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = self.docs("idem", 10)
        self.assertEqual(len(docs), 10)
        first, second = docs[:5], docs[5:]
        self.assertEqual([d["id"] for d in first], [d["id"] for d in second])
        self.assertEqual(len({d["id"] for d in docs}), 5)
        self.assertEqual({d["result"] for d in first}, {"created"})
        self.assertEqual({(d["result"], d["version"]) for d in second}, {("updated", 2)})

    def test_dynamodb_sample_convert_ddb(self):
        event = sample("dynamodb.json")
        r, failed = self.run_es(
            [harness.mapping("plain", "es", self.dest("ddb-plain"), source=DDB_ARN,
                             convertDDB=True),
             harness.mapping("raw", "es", self.dest("ddb-raw"), source=DDB_ARN)],
            harness.sample_event("dynamodb.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        plain = self.docs("ddb-plain", 6)
        raw = self.docs("ddb-raw", 6)
        self.assertEqual(len(plain), 6)
        self.assertEqual(len(raw), 6)
        first = plain[0]["source"]
        self.assertEqual(first["hash"], "h1002-0")
        self.assertEqual(first["range"], 0)
        self.assertEqual(first["tags"], ["a", "b"])
        self.assertIs(first["ok"], True)
        self.assertIsNone(first["nothing"])
        self.assertAlmostEqual(first["big"], 12345678901234567890123456789.5)
        # without convertDDB the DynamoDB JSON is the document
        self.assertEqual(raw[0]["source"]["hash"], {"S": "h1002-0"})
        for rec, doc in zip(event["Records"], plain):
            seq = rec["dynamodb"]["SequenceNumber"]
            keys = rec["dynamodb"]["Keys"]
            key = "%s|%s" % (keys["hash"]["S"], keys["range"]["N"])
            self.assertEqual(doc["id"], default_id(DDB_ARN, key, seq))
            if rec["eventName"] == "REMOVE":  # no NewImage: an empty document
                self.assertEqual(doc["source"], {})

    def test_dynamodb_key_ids_mirror_the_table(self):
        image = {"pk": {"S": "user-1"}, "name": {"S": "Ann"}, "n": {"N": "1"}}
        image2 = {"pk": {"S": "user-1"}, "name": {"S": "Ann B"}, "n": {"N": "2"}}
        event = ddb_event([("INSERT", "user-1", image), ("MODIFY", "user-1", image2),
                           ("INSERT", "user-2", {"pk": {"S": "user-2"}}),
                           ("REMOVE", "user-2", None), ("REMOVE", "user-3", None)])
        r, failed = self.run_es([harness.mapping("m", "es", self.dest("mirror"),
                                                 source=DDB_ARN, convertDDB=True,
                                                 documentId="key")], event)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = self.docs("mirror", 5)
        self.assertEqual([(d["action"], d["id"], d["result"]) for d in docs],
                         [("index", "user-1", "created"), ("index", "user-1", "updated"),
                          ("index", "user-2", "created"), ("delete", "user-2", "deleted"),
                          ("delete", "user-3", "not_found")])
        self.assertEqual(docs[1]["source"], {"pk": "user-1", "name": "Ann B", "n": 2})

    def test_kpl_user_records_have_their_own_ids(self):
        expected = []
        with open(harness.sample_event("kpl-aggregated.expected.jsonl"), encoding="utf-8") as f:
            for line in f:
                obj = json.loads(line)
                if "corrupt" not in obj:
                    expected.append(obj)
        r, failed = self.run_es([harness.mapping("kpl", "es", self.dest("kpl"),
                                                 source=KINESIS_ARN, deaggregate=True)],
                                harness.sample_event("kpl-aggregated.json"))
        self.assertEqual(r.returncode, 1)  # the sample's corrupt aggregate
        self.assertEqual(len(failed), 1)
        docs = self.docs("kpl", len(expected))
        self.assertEqual(len(docs), len(expected))
        seen = set()
        for want, doc in zip(expected, docs):
            seq, sub, digest = re.match(r"^(\d+)-(\d+)-([0-9a-f]{16})$", doc["id"]).groups()
            self.assertEqual(doc["id"], default_id(KINESIS_ARN, want["key"], seq, int(sub)))
            seen.add((seq, sub))
            data = base64.b64decode(want["dataB64"])
            try:
                body = json.loads(data)
            except ValueError:
                body = None
            if isinstance(body, dict):
                self.assertEqual(doc["source"], body)
        self.assertEqual(len(seen), len(expected))
        self.assertGreater(len({s for s, _ in seen}), 1)
        self.assertGreater(max(int(u) for _, u in seen), 0)

    # ---- documents that are not JSON objects ----

    def test_data_that_is_not_a_json_object(self):
        records = [("a", b"plain text\nwith a newline \"quoted\""),
                   ("b", b"[1, 2]"),
                   ("c", b"42"),
                   ("d", b"\xff\x00\x01binary"),
                   ("e", b'{\n  "pretty": true,\n  "n": [1,\r\n 2]\n}\n'),
                   ("f", b'{"bad utf8": "\xc3\x28"}'),
                   ("g", b'{"a": 1} {"b": 2}')]
        r, failed = self.run_es([harness.mapping("w", "es", self.dest("wrapped"),
                                                 source=KINESIS_ARN)], kinesis(records))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        got = [d["source"] for d in self.docs("wrapped", len(records))]
        self.assertEqual(got, [
            {"data": "plain text\nwith a newline \"quoted\""},
            {"data": "[1, 2]"},
            {"data": "42"},
            {"dataBase64": base64.b64encode(b"\xff\x00\x01binary").decode()},
            {"pretty": True, "n": [1, 2]},
            {"dataBase64": base64.b64encode(b'{"bad utf8": "\xc3\x28"}').decode()},
            {"data": '{"a": 1} {"b": 2}'}])
        # nonJson "refuse": those records fail for good, the objects go through
        self.es.reset()
        open(self.es.log_path, "w").close()
        r, failed = self.run_es([harness.mapping("w", "es", self.dest("strict"),
                                                 source=KINESIS_ARN, nonJson="refuse")],
                                kinesis(records))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(sorted(failed), ["1000", "1001", "1002", "1003", "1005", "1006"])
        self.assertIn("NotJsonObject", r.stderr.decode())
        self.assertEqual([d["source"] for d in self.docs("strict", 1)],
                         [{"pretty": True, "n": [1, 2]}])
        self.assertEqual(len(self.bulk_requests()), 1)

    # ---- ids ----

    def test_id_field_and_no_id(self):
        records = [("p", json.dumps({"id": i, "v": i}).encode()) for i in range(3)]
        records.append(("p", b'{"name": "no id here"}'))
        records.append(("p", json.dumps({"id": "caf\u00e9 \"x\"", "v": 9}).encode()))
        r, failed = self.run_es([harness.mapping("f", "es", self.dest("byfield"),
                                                 source=KINESIS_ARN, idField="id")],
                                kinesis(records))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1003"])
        self.assertIn("MissingDocumentId", r.stderr.decode())
        self.assertEqual([d["id"] for d in self.docs("byfield", 4)],
                         ["0", "1", "2", "caf\u00e9 \"x\""])
        self.es.reset()
        r, failed = self.run_es([harness.mapping("n", "es", self.dest("noid"),
                                                 source=KINESIS_ARN, documentId="none")],
                                kinesis(records))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        ids = [d["id"] for d in self.docs("noid", 5)]
        self.assertEqual(len(set(ids)), 5)  # the service's own ids

    # ---- partial failures, throttling, errors, timeouts ----

    def test_partial_item_failures_only_failed_resent(self):
        self.es.faults({"service": "opensearch", "kind": "partial", "indexes": [1, 3],
                        "count": 1})
        r, failed = self.run_es([harness.mapping("k", "es", self.dest("partial"),
                                                 source=KINESIS_ARN)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = self.docs("partial", 5)
        self.assertEqual(len(docs), 5)
        self.assertEqual(len({d["id"] for d in docs}), 5)
        self.assertEqual({d["result"] for d in docs}, {"created"})
        seqs = [json.loads(base64.b64decode(x["kinesis"]["data"]))["id"]
                for x in sample("kinesis.json")["Records"]]
        self.assertEqual([d["source"]["id"] for d in docs],
                         [seqs[0], seqs[2], seqs[4], seqs[1], seqs[3]])
        self.assertEqual(len(self.bulk_requests()), 2)

    def test_partial_item_errors_by_status(self):
        records = [("p", json.dumps({"v": i}).encode()) for i in range(3)]
        m = [harness.mapping("k", "es", self.dest("items"), source=KINESIS_ARN)]
        # a 503 item is resent, alone
        self.es.faults({"service": "opensearch", "kind": "partial", "indexes": [0],
                        "status": 503, "type": "unavailable_shards_exception",
                        "message": "primary shard is not active", "count": 1})
        r, failed = self.run_es(m, kinesis(records))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([d["source"]["v"] for d in self.docs("items", 3)], [1, 2, 0])
        self.assertEqual(len(self.bulk_requests()), 2)
        # a 400 item (mapper_parsing_exception) fails for good, not resent,
        # reported without what the service quoted from the document
        self.es.reset()
        open(self.es.log_path, "w").close()
        self.es.faults({"service": "opensearch", "kind": "partial", "indexes": [1],
                        "status": 400, "type": "mapper_parsing_exception",
                        "message": "failed to parse field [v] of type [long]. Preview of "
                                   "field's value: 'secret'", "count": 1})
        r, failed = self.run_es(m, kinesis(records))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1001"])
        err = r.stderr.decode()
        self.assertIn("mapper_parsing_exception", err)
        self.assertIn("failed to parse field [v] of type [long]", err)
        self.assertNotIn("secret", err)
        self.assertEqual(len(self.bulk_requests()), 1)
        self.assertEqual([d["source"]["v"] for d in self.docs("items", 2)], [0, 2])

    def test_throttled_request_retried_then_given_up(self):
        self.es.faults({"service": "opensearch", "kind": "throttle", "count": 2})
        m = [harness.mapping("k", "es", self.dest("thr"), source=KINESIS_ARN)]
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(len(self.docs("thr", 5)), 5)
        self.assertEqual([b["status"] for b in self.bulk_requests()], [429, 429, 200])
        # throttled for good: every record reported, none stored
        self.es.reset()
        open(self.es.log_path, "w").close()
        self.es.faults({"service": "opensearch", "kind": "throttle", "count": -1})
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                FANOUT_AWS_MAX_ATTEMPTS="2", FANOUT_RETRY_ATTEMPTS="2")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(failed), 5)
        self.assertIn("rejected_execution_exception", r.stderr.decode())
        # FANOUT_RETRY_ATTEMPTS: the engine alone retries record sends
        self.assertEqual(len(self.bulk_requests()), 2)
        self.assertEqual(self.docs("thr", 0, 0), [])

    def test_server_errors_bad_answers_and_timeouts_are_resent(self):
        m = [harness.mapping("k", "es", self.dest("err"), source=KINESIS_ARN)]
        self.es.faults([{"service": "opensearch", "kind": "error500", "count": 1},
                        {"service": "opensearch", "kind": "status", "status": 200,
                         "body": {"took": 1, "errors": False, "items": []}, "count": 1},
                        {"service": "opensearch", "kind": "status", "status": 200,
                         "body": "<html>proxy</html>", "count": 1}])
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(len(self.docs("err", 5)), 5)
        self.assertEqual([b["status"] for b in self.bulk_requests()], [500, 200, 200, 200])
        self.assertIn("has 0 items for the 5 actions", r.stderr.decode())
        # a request that times out is resent; the slow one still lands, but
        # with the same ids it updates instead of duplicating
        self.es.reset()
        self.es.faults({"service": "opensearch", "kind": "slow", "delay_ms": 1500,
                        "count": 1})
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                FANOUT_AWS_TIMEOUT_MS="400")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = self.docs("err", 10, 5000)
        self.assertEqual(len(docs), 10)
        self.assertEqual(len({d["id"] for d in docs}), 5)

    def test_doubtful_bulk_answers_resend_everything(self):
        """aws_service stores the documents, then spoils its _bulk answer;
        an answer that contradicts itself or does not match the actions sent
        (count, order, action, _id, status) is believed in no part: all five
        documents are sent again (same ids: updated, not duplicated); and
        reported failed when no answer can be believed."""
        m = [harness.mapping("k", "es", self.dest("doubt"), source=KINESIS_ARN)]
        spoilers = {
            "errors true, no failed item": [{"op": "set", "path": "errors", "value": True}],
            "errors false, a failed item": [
                {"op": "set", "path": "items.1.index.status", "value": 400},
                {"op": "set", "path": "items.1.index.error",
                 "value": {"type": "mapper_parsing_exception", "reason": "r"}}],
            "errors missing": [{"op": "delete", "path": "errors"}],
            "an item short": [{"op": "delete", "path": "items.-1"}],
            "an item more": [{"op": "dup", "path": "items.0"}],
            "items out of order": [{"op": "swap", "path": "items", "i": 0, "j": 1}],
            "another _id": [{"op": "set", "path": "items.2.index._id", "value": "x"}],
            "no status": [{"op": "delete", "path": "items.0.index.status"}],
            "status 202": [{"op": "set", "path": "items.0.index.status", "value": 202}],
            "another action": [{"op": "replace", "pattern": '"index":', "repl": '"create":',
                                "count": 1}],
            "truncated": [{"op": "truncate"}],
            "HTTP 201": [{"op": "status", "status": 201}],
        }
        for name, ops in spoilers.items():
            with self.subTest(name):
                self.es.reset()
                open(self.es.log_path, "w").close()
                self.es.faults({"service": "opensearch", "kind": "mangle", "ops": ops})
                r, failed = self.run_es(m, harness.sample_event("kinesis.json"))
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 0, err)
                docs = self.docs("doubt", 10)
                self.assertEqual(len(docs), 10, name)
                self.assertEqual(len({d["id"] for d in docs}), 5)
                self.assertEqual(len(self.bulk_requests()), 2)
                self.assertIn("so all 5 are resent", err)
        self.es.reset()
        self.es.faults({"service": "opensearch", "kind": "mangle", "count": -1,
                        "op": "set", "path": "errors", "value": True})
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                FANOUT_RETRY_ATTEMPTS="2")
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(len(failed), 5)

    def test_request_too_large_is_reported_with_its_size(self):
        self.es.faults({"service": "opensearch", "kind": "status", "status": 413,
                        "body": {"Message": "Request size exceeded 10485760 bytes"},
                        "count": 1})
        r, failed = self.run_es([harness.mapping("k", "es", self.dest("big"),
                                                 source=KINESIS_ARN)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(failed), 5)
        err = r.stderr.decode()
        self.assertIn("RequestEntityTooLarge", err)
        self.assertRegex(err, r"_bulk request of \d+ bytes \(5 documents\)")
        self.assertIn("maxBulkBytes (now 5242880)", err)
        self.assertEqual(len(self.bulk_requests()), 1)  # not resent

    # ---- batching limits ----

    def test_bulk_size_and_action_limits(self):
        records = [("p%d" % i, json.dumps({"i": i, "pad": "x" * 300}).encode())
                   for i in range(7)]
        records.append(("big", json.dumps({"pad": "y" * 3000}).encode()))
        m = [harness.mapping("s", "es", self.dest("small"), source=KINESIS_ARN,
                             maxBulkBytes=1024),
             harness.mapping("a", "es", self.dest("few"), source=KINESIS_ARN,
                             maxBulkActions=3)]
        r, failed = self.run_es(m, kinesis(records), FANOUT_MAX_PARALLEL="1")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(failed, ["1007"])  # too big for maxBulkBytes 1024
        self.assertRegex(r.stderr.decode(), r"record of \d+ bytes is larger than the "
                                            r"destination's limit of \d+ bytes")
        small = self.docs("small", 7)
        self.assertEqual(sorted(d["source"]["i"] for d in small), list(range(7)))
        per_request = {}
        for d in small:
            per_request.setdefault(d["requestId"], []).append(d)
        self.assertGreater(len(per_request), 2)
        self.assertTrue(all(len(v) <= 2 for v in per_request.values()))
        few = self.docs("few", 8)
        counts = {}
        for d in few:
            counts[d["requestId"]] = counts.get(d["requestId"], 0) + 1
        self.assertEqual(sorted(counts.values()), [2, 3, 3])

    def test_same_key_changes_land_in_order(self):
        records = [("k1", json.dumps({"v": v}).encode()) for v in (1, 2, 3)]
        # one call: v1 throttled, v2 and v3 indexed; v2 and v3 are resent
        # after v1 so that v3 stays the document
        self.es.faults({"service": "opensearch", "kind": "partial", "indexes": [0],
                        "count": 1})
        m = [harness.mapping("o", "es", self.dest("order"), source=KINESIS_ARN,
                             documentId="key")]
        r, failed = self.run_es(m, kinesis(records))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = self.docs("order", 5)
        self.assertEqual([d["source"]["v"] for d in docs], [2, 3, 1, 2, 3])
        self.assertEqual({d["id"] for d in docs}, {"k1"})
        # parallel false with one document per call: calls go one by one,
        # a failed one retried before the next
        self.es.reset()
        self.es.faults({"service": "opensearch", "kind": "partial", "indexes": [0],
                        "count": 1})
        m = [harness.mapping("o", "es", self.dest("order"), source=KINESIS_ARN,
                             documentId="key", parallel=False, maxBulkActions=1)]
        r, failed = self.run_es(m, kinesis(records))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([d["source"]["v"] for d in self.docs("order", 3)], [1, 2, 3])

    # ---- destinations ----

    def test_wrong_destinations_and_options_rejected(self):
        cases = {
            "no-index": ("search-x.us-east-1.es.amazonaws.com", "no '#'"),
            "bad-index": ("search-x.us-east-1.es.amazonaws.com#Bad Index",
                          "must be lowercase"),
            "comma": ("search-x.us-east-1.es.amazonaws.com#a,b", "must not contain ','"),
            "space": ("search-x.us-east-1.es.amazonaws.com#a b", "must not contain ' '"),
            "leading": ("search-x.us-east-1.es.amazonaws.com#_idx",
                        "must not start with '_', '-' or '+'"),
            "dots": ("search-x.us-east-1.es.amazonaws.com#..", "must not be"),
            "long": ("h#" + "a" * 256, "256 bytes; the limit is 255"),
            "no-endpoint": ("#idx", "endpoint is missing"),
            "empty-index": ("search-x.us-east-1.es.amazonaws.com#", "index name is missing"),
            "bad-type": ("h#idx/_x", "must not start with '_'"),
            "scheme": ("ftp://h#idx", "scheme must be http or https"),
            "port": ("http://h:99999#idx", "optionally with :port"),
        }
        maps = [harness.mapping(k, "es", v[0], source=KINESIS_ARN)
                for k, v in cases.items()]
        maps += [harness.mapping("opt-id", "es", "h#idx", source=KINESIS_ARN,
                                 documentId="uuid"),
                 harness.mapping("opt-both", "es", "h#idx", source=KINESIS_ARN,
                                 documentId="key", idField="id"),
                 harness.mapping("opt-sign", "es", "h#idx", source=KINESIS_ARN,
                                 signingName="s3"),
                 harness.mapping("opt-size", "es", "h#idx", source=KINESIS_ARN,
                                 maxBulkBytes=200 * 1024 * 1024),
                 harness.mapping("collapse", "es", "h#idx", source=KINESIS_ARN,
                                 collapse="JSON"),
                 harness.mapping("good", "es", "search-x.us-east-1.es.amazonaws.com#ok/doc",
                                 source=KINESIS_ARN)]
        cfg = os.path.join(self.work.path, "bad.json")
        with open(cfg, "w") as f:
            json.dump(maps, f)
        r = harness.run_fanout(["validate", "--config", cfg])
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 2, out + r.stderr.decode())
        lines = {re.match(r'invalid: mapping "([^"]+)"', x).group(1): x
                 for x in out.splitlines() if x.startswith("invalid: mapping")}
        for name, (_, why) in cases.items():
            self.assertIn(why, lines.get(name, ""), name)
            self.assertIn("expected e.g. search-mydomain-abc123", lines[name])
        self.assertIn('expected "sequence", "key" or "none"', lines["opt-id"])
        self.assertIn("keep one", lines["opt-both"])
        self.assertIn('expected "es" or "aoss"', lines["opt-sign"])
        self.assertIn("maxBulkBytes", lines["opt-size"])
        self.assertNotIn("collapse", lines)  # ignored, as aws-lambda-fanout did, with a warning
        self.assertRegex(out, r'warning: mapping "collapse"[^\n]*ignored for type "es", as '
                              r'aws-lambda-fanout ignored it')
        self.assertNotIn("good", lines)
        self.assertIn("%d mappings, 2 valid" % len(maps), out)
        # the other mappings keep working when one is invalid
        r, failed = self.run_es([harness.mapping("bad", "es", "nowhere", source=KINESIS_ARN),
                                 harness.mapping("ok", "es", self.dest("fine"),
                                                 source=KINESIS_ARN)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(len(self.docs("fine", 5)), 5)
        self.assertIn("no '#' in the destination", r.stderr.decode())

    def test_index_doctype_form(self):
        r, failed = self.run_es([harness.mapping("t", "es", self.dest("logs/event"),
                                                 source=KINESIS_ARN),
                                 harness.mapping("u", "es", self.dest("caf\u00e9.v1~x"),
                                                 source=KINESIS_ARN)],
                                harness.sample_event("kinesis.json"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(len(self.docs("logs", 5)), 5)
        self.assertEqual(len(self.docs("caf\u00e9.v1~x", 5)), 5)
        self.assertEqual(sorted(b["path"] for b in self.bulk_requests()),
                         ["/caf%C3%A9.v1~x/_bulk", "/logs/event/_bulk"])

    def test_cross_region(self):
        m = [harness.mapping("host", "es", "search-d-abc.eu-west-1.es.amazonaws.com#reg1",
                             source=KINESIS_ARN),
             harness.mapping("set", "es", self.dest("reg2"), source=KINESIS_ARN,
                             region="ap-southeast-2"),
             harness.mapping("both", "es", "search-d-abc.eu-west-1.es.amazonaws.com#reg3",
                             source=KINESIS_ARN, region="us-west-2")]
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"), AWS_ENDPOINT_URL_ES=self.es.url)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual({d["region"] for d in self.docs("reg1", 5)}, {"eu-west-1"})
        self.assertEqual({d["region"] for d in self.docs("reg2", 5)}, {"ap-southeast-2"})
        self.assertEqual({d["region"] for d in self.docs("reg3", 5)}, {"us-west-2"})

    def test_url_endpoint_without_region_is_reported(self):
        m = [harness.mapping("u", "es", self.dest("noregion"), source=KINESIS_ARN)]
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"), AWS_REGION="")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(failed), 5)
        self.assertIn("set the mapping's \"region\" (or AWS_REGION)", r.stderr.decode())
        self.assertEqual(self.bulk_requests(), [])

    def test_serverless_host_signs_as_aoss(self):
        # the test service verifies signatures for "es" only, so an aoss
        # signature is refused there: that shows which name was used
        m = [harness.mapping("a", "es", "abc123.us-east-2.aoss.amazonaws.com#vec",
                             source=KINESIS_ARN)]
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                AWS_ENDPOINT_URL_ES=self.es.url)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Credential should be scoped to correct service: 'es'",
                      r.stderr.decode())
        m[0]["signingName"] = "es"
        r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                AWS_ENDPOINT_URL_ES=self.es.url)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual({d["region"] for d in self.docs("vec", 5)}, {"us-east-2"})

    def test_cross_account_role(self):
        sts = harness.StsServer(register_with=[self.es.url])
        try:
            role = "arn:aws:iam::%s:role/ext-search-writer" % OTHER_ACCOUNT
            m = [harness.mapping("x", "es", self.dest("xacct"), source=KINESIS_ARN,
                                 role=role, externalId=EXTERNAL_ID)]
            r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                    AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            docs = self.docs("xacct", 5)
            self.assertEqual(len(sts.issued), 1)
            self.assertEqual({d["accessKeyId"] for d in docs}, {sts.issued[0]})
            self.assertEqual({d["accountId"] for d in docs}, {OTHER_ACCOUNT})
            with urllib.request.urlopen(sts.url + "/stats", timeout=10) as f:
                self.assertEqual(json.load(f)["roles"][role]["issued"], 1)
            # the wrong external id: refused by STS, every record reported
            m[0]["externalId"] = "not-the-one"
            m[0]["id"] = "y"
            r, failed = self.run_es(m, harness.sample_event("kinesis.json"),
                                    AWS_ENDPOINT_URL_STS=sts.url)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(failed), 5)
            self.assertIn("AccessDenied", r.stderr.decode())
        finally:
            sts.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
