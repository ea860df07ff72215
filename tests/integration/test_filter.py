"""Per-target filters end to end: `fanout invoke` fans a mixed event out to
`file` targets with different event patterns (mapping field "filter"), and
`fanout validate` names a bad pattern by its path. Run by meson with
/usr/bin/python3 (standard library only)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_invoke as ti  # noqa: E402  (its helpers; its tests run on their own)


def order(kind, amount, region):
    return json.dumps({"type": kind, "amount": amount, "region": region}).encode()


# (partition key, data): 12 records, 3 not JSON
MIXED = [
    ("c-1", order("order", 20, "eu-west-1")),
    ("c-2", order("order", 150, "us-east-1")),
    ("vip-1", order("refund", 500, "us-west-2")),
    ("c-3", b"ping"),
    ("c-4", order("order", 99.5, "eu-central-1")),
    ("vip-2", b"not json either"),
    ("c-5", order("order", 1e2, "ap-south-1")),
    ("c-6", order("refund", 5, "eu-west-1")),
    ("c-7", b"\xff\x00binary"),
    ("c-8", json.dumps({"type": ["order", "gift"], "amount": [1, 300]}).encode()),
    ("vip-3", order("order", 0, "eu-north-1")),
    ("c-9", json.dumps({"kind": "order"}).encode()),
]

PATTERNS = {
    # the Lambda documentation's shape: {"data": {"order": {"type": ["buy"]}}}
    "orders": {"data": {"type": ["order"]}},
    # numbers by value (1e2 is 100), arrays match when one element does
    "big": {"data": {"amount": [{"numeric": [">=", 100]}]}},
    # $or across the partition key and the data; a record whose data is
    # not JSON never matches a pattern naming data, vip or not
    "vip-or-eu": {"$or": [{"partitionKey": [{"prefix": "vip-"}]},
                          {"data": {"region": [{"prefix": "eu-"}]}}]},
}
EXPECTED = {
    "orders": ["c-1", "c-2", "c-4", "c-5", "c-8", "vip-3"],
    "big": ["c-2", "vip-1", "c-5", "c-8"],
    "vip-or-eu": ["c-1", "vip-1", "c-4", "c-6", "vip-3"],
}


class Filters(ti.Base):
    def test_mixed_event_to_three_filtered_targets(self):
        maps = [ti.mapping(name, "file", name + ".jsonl", filter=p)
                for name, p in PATTERNS.items()]
        # the table's form: a string holding the pattern, in a file too
        maps[2]["filter"] = json.dumps(maps[2]["filter"])
        r = self.invoke(maps, ti.kinesis_event(MIXED))
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(self.response(), [])  # filtered records are handled
        for name, keys in EXPECTED.items():
            got = [x["key"] for x in self.lines(name + ".jsonl")]
            self.assertEqual(got, keys, name)
            self.assertIn("[%s] file %s.jsonl: %d records, %d messages, %d calls, "
                          "%d delivered, 0 failed, 0 on failure, %d filtered"
                          % (name, name, len(MIXED), len(keys), 1, len(keys),
                             len(MIXED) - len(keys)), log)

    def test_deaggregated_user_records_filtered_one_by_one(self):
        # each KPL user record is matched with its own partition key
        r = self.invoke([ti.mapping("pk", "file", "pk.jsonl", deaggregate=True,
                                    filter={"partitionKey": [{"prefix": "pk-"}]}),
                         ti.mapping("all", "file", "all.jsonl", deaggregate=True)],
                        os.path.join(ti.DATA, "events", "kpl-aggregated.json"))
        self.assertEqual(r.returncode, 1, r.stderr.decode())  # the corrupt aggregate
        every = [x["key"] for x in self.lines("all.jsonl")]
        got = [x["key"] for x in self.lines("pk.jsonl")]
        self.assertEqual(got, [k for k in every if k.startswith("pk-")])
        self.assertTrue(0 < len(got) < len(every))

    def test_dynamodb_stream_record_patterns(self):
        ddb = ti.DDB_ARN
        src = ti.event_records("dynamodb.json")
        event = {"Records": [dict(r, eventSourceARN=ddb) for r in src]}
        maps = [
            ti.mapping("inserts", "file", "inserts.jsonl", source=ddb, convertDDB=True,
                       filter={"eventName": ["INSERT"]}),
            # DynamoDB JSON as received, whatever convertDDB does
            ti.mapping("keys", "file", "keys.jsonl", source=ddb, convertDDB=True,
                       filter={"dynamodb": {"Keys": {"range": {"N": ["1", "4"]}}}}),
            ti.mapping("not-removed", "file", "kept.jsonl", source=ddb,
                       filter={"eventName": [{"anything-but": "REMOVE"}]}),
        ]
        r = self.invoke(maps, event)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        names = [x["eventName"] for x in src]
        self.assertEqual([x["action"] for x in self.lines("inserts.jsonl")],
                         ["INSERT"] * names.count("INSERT"))
        self.assertEqual([x["key"] for x in self.lines("keys.jsonl")],
                         ["h1002-1|1", "h1002-4|4"])
        self.assertEqual(len(self.lines("kept.jsonl")),
                         len(names) - names.count("REMOVE"))

    def test_filtered_records_never_reach_the_on_failure_destination(self):
        # flaky refuses "fatal:" bodies; the filter keeps the "keep-" keys
        dlq = self.path("dlq.jsonl")
        r = self.invoke([ti.mapping("f", "flaky", self.path("flaky.log"),
                                    filter={"partitionKey": [{"prefix": "keep-"}]},
                                    onFailure={"type": "file", "destination": dlq})],
                        ti.kinesis_event([("keep-1", b"fatal:1"), ("drop-1", b"fatal:2"),
                                          ("keep-2", b"fine")]))
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(self.response(), [])
        docs = [json.loads(x["data"]) for x in self.lines("dlq.jsonl")]
        self.assertEqual(len(docs), 1, docs)
        self.assertIn("keep-1", json.dumps(docs[0]))
        self.assertNotIn("drop-1", json.dumps(docs[0]))
        self.assertIn("3 records, 2 messages, 1 calls, 1 delivered, 0 failed, "
                      "1 on failure, 1 filtered", log)

    def test_numbers_beyond_a_double_are_still_json(self):
        # 1e400 is JSON (RFC 8259 sets no range) though no double holds
        # it: a record whose data or members hold such a number was
        # dropped as "not JSON" by a pattern naming data, and made the whole
        # invocation fail as "out of memory" (a batch retried for ever)
        # when the pattern named another member.
        event = ti.kinesis_event([("a", b'{"type":"order","n":1e400}'),
                                  ("b", b'{"type":"order","n":-1e400}'),
                                  ("c", b'{"type":"order","n":1e-400}'),
                                  ("d", b'{"type":"refund","n":1e400}')])
        text = json.dumps(event).replace('"partitionKey": "a"',
                                         '"extra": 1e400, "partitionKey": "a"')
        maps = [ti.mapping("orders", "file", "orders.jsonl",
                           filter={"data": {"type": ["order"]}}),
                ti.mapping("big", "file", "big.jsonl",
                           filter={"data": {"n": [{"numeric": [">", 5e9]}]}}),
                ti.mapping("small", "file", "small.jsonl",
                           filter={"data": {"n": [{"numeric": ["<", 1]}]}}),
                ti.mapping("pk", "file", "pk.jsonl",
                           filter={"partitionKey": ["a", "c"]})]
        r = self.invoke(maps, None, stdin_text=text)
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(self.response(), [])
        keys = {n: [x["key"] for x in self.lines(n + ".jsonl")]
                for n in ("orders", "big", "small", "pk")}
        self.assertEqual(keys, {"orders": ["a", "b", "c"], "big": ["a", "d"],
                                "small": ["b", "c"], "pk": ["a", "c"]}, log)

    def test_dynamodb_record_with_a_number_beyond_a_double(self):
        # the record's own JSON is the view: it made the invocation fail as
        # "out of memory"
        ddb = ti.DDB_ARN
        src = ti.event_records("dynamodb.json")[0]
        text = json.dumps({"Records": [dict(src, eventSourceARN=ddb)]}).replace(
            '"SizeBytes": ', '"Odd": [1e400], "SizeBytes": ', 1)
        self.assertIn("1e400", text)
        r = self.invoke([ti.mapping("ev", "file", "ev.jsonl", source=ddb,
                                    filter={"eventName": [src["eventName"]]}),
                         ti.mapping("odd", "file", "odd.jsonl", source=ddb,
                                    filter={"dynamodb": {"Odd": [{"numeric": [">", 0]}]}})],
                        None, stdin_text=text)
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertEqual(len(self.lines("ev.jsonl")), 1, log)
        self.assertEqual(len(self.lines("odd.jsonl")), 1, log)

    def test_bad_pattern_named_by_validate_and_invoke(self):
        bad = ti.mapping("bad", "file", "bad.jsonl",
                         filter={"data": {"temperature": [{"numeric": [">", "5"]}]}})
        cfg = self.path("m.json")
        with open(cfg, "w") as f:
            json.dump([bad, ti.mapping("ok", "file", "ok.jsonl")], f)
        r = self.run_fanout(["validate", "--config", cfg])
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 2, out)
        self.assertIn('mapping "bad" (#0): field "filter": data.temperature[0]: '
                      '"numeric" expects a number at position 1, got a string', out)
        # an invalid mapping fails its source's records; the others still go
        r = self.invoke([bad, ti.mapping("ok", "file", "ok.jsonl")],
                        ti.kinesis_event([("a", b"{}")]))
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(len(self.lines("ok.jsonl")), 1)
        self.assertIn('field "filter": data.temperature[0]', r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
