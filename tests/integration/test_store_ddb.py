"""The DynamoDB mapping store end to end: targets registered as items of a
dynalite table (written with botocore, as the seed design's tools did),
`fanout invoke` with no --config reading them, and the fanout binary as a
Lambda bootstrap (tests/servers/runtime_emulator.py) seeing a deactivated target
stop after the refresh interval. Run by meson with /usr/bin/python3."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SOURCE = harness.KINESIS_SOURCE
OTHER = "arn:aws:kinesis:us-east-1:123456789012:stream/other"


def item(source, id_, destination, active=True, type_="file", **extra):
    """A mapping item as the seed design stored it: strings S, booleans
    BOOL."""
    it = {"sourceArn": {"S": source}, "id": {"S": id_}, "type": {"S": type_},
          "destination": {"S": destination}, "active": {"BOOL": active}}
    it.update(extra)
    return it


class DynamoDBStore(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir()
        self.dir = self.tmp.path
        self.ddb = harness.Dynalite()
        self.client = harness.botocore_client("dynamodb", self.ddb.url)

    def tearDown(self):
        self.client.close()
        self.ddb.stop()
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def create_table(self, name):
        self.client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "sourceArn", "AttributeType": "S"},
                                  {"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "sourceArn", "KeyType": "HASH"},
                       {"AttributeName": "id", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")
        end = time.time() + 20
        while self.client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
            self.assertLess(time.time(), end, "table %s never became ACTIVE" % name)
            time.sleep(0.02)

    def put(self, table, *items):
        for it in items:
            self.client.put_item(TableName=table, Item=it)

    def lines(self, name):
        p = self.path(name)
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def datas(self, name):
        return [r["data"] for r in self.lines(name)]

    def test_invoke_reads_the_targets_from_the_table(self):
        self.create_table("fanout-mappings")
        self.put("fanout-mappings",
                 item(SOURCE, "to-a", self.path("a.jsonl")),
                 item(SOURCE, "to-b", self.path("b.jsonl"), collapse={"S": "none"}),
                 item(SOURCE, "off", self.path("off.jsonl"), active=False),
                 item(OTHER, "elsewhere", self.path("other.jsonl")),
                 # the seed design stored booleans as BOOL: a string is refused
                 # and named; the other targets still work, but the records
                 # do not count as delivered (issue 9: one rule for invalid
                 # mappings, in both stores)
                 dict(item(SOURCE, "stringly", self.path("s.jsonl")),
                      active={"S": "true"}),
                 # invalid but inactive: changes nothing
                 item(SOURCE, "off-bad", self.path("x.jsonl"), active=False,
                      collapse={"S": "gzip"}))
        env = harness.aws_env(DYNAMODB=self.ddb.url)
        env["FANOUT_TABLE"] = "fanout-mappings"
        event = harness.kinesis_event([("k1", b"first"), ("k2", b"second")])
        r = harness.run_fanout(["invoke", "--event", "-"], env=env,
                               stdin=json.dumps(event).encode())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 1, log)
        self.assertEqual(self.datas("a.jsonl"), ["first", "second"], log)
        self.assertEqual(self.datas("b.jsonl"), ["first", "second"], log)
        self.assertEqual(self.lines("off.jsonl"), [])
        self.assertEqual(self.lines("other.jsonl"), [])
        self.assertEqual(self.lines("s.jsonl"), [])
        self.assertIn('mapping "stringly"', log)
        self.assertIn('field "active": expected a boolean (DynamoDB BOOL', log)
        self.assertIn('got S "true"', log)
        self.assertIn("[stringly] target failed, 2 records of source %s not delivered "
                      "(sequence numbers 1000 to 1001): invalid mapping:" % SOURCE, log)
        self.assertNotIn("[off-bad] target failed", log)
        self.assertIn("2 records, 3 targets, 2 records failed", log)
        # the opt-out: skipped, loudly
        env["FANOUT_SKIP_INVALID_MAPPINGS"] = "true"
        r = harness.run_fanout(["invoke", "--event", "-"], env=env,
                               stdin=json.dumps(event).encode())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 0, log)
        self.assertIn("WARN  [mappings] FANOUT_SKIP_INVALID_MAPPINGS=true", log)
        self.assertIn('invalid mapping "stringly" of %s SKIPPED' % SOURCE, log)
        self.assertEqual(self.datas("a.jsonl"), ["first", "second"] * 2, log)

    def test_filter_held_as_a_string_in_the_table(self):
        self.create_table("fanout-mappings")
        pattern = {"data": {"type": ["order"]}}
        self.put("fanout-mappings",
                 item(SOURCE, "orders", self.path("orders.jsonl"),
                      filter={"S": json.dumps(pattern)}),
                 item(SOURCE, "all", self.path("all.jsonl")),
                 # a map is not the table's form: named, its source's records fail
                 item(SOURCE, "as-map", self.path("m.jsonl"),
                      filter={"M": {"data": {"M": {"type": {"L": [{"S": "order"}]}}}}}))
        env = harness.aws_env(DYNAMODB=self.ddb.url)
        env["FANOUT_TABLE"] = "fanout-mappings"
        event = harness.kinesis_event([("k1", b'{"type":"order"}'), ("k2", b"text"),
                                       ("k3", b'{"type":"refund"}')])
        r = harness.run_fanout(["invoke", "--event", "-"], env=env,
                               stdin=json.dumps(event).encode())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 1, log)
        self.assertEqual(self.datas("orders.jsonl"), ['{"type":"order"}'], log)
        self.assertEqual(len(self.lines("all.jsonl")), 3, log)
        self.assertEqual(self.lines("m.jsonl"), [])
        self.assertIn("[orders] file %s: 3 records, 1 messages, 1 calls, 1 delivered, "
                      "0 failed, 0 on failure, 2 filtered" % self.path("orders.jsonl"), log)
        self.assertRegex(log, r'mapping "as-map" \(#\d\): field "filter": expected a '
                              r'string \(DynamoDB S\), got M')

    def test_missing_table_fails_the_records_and_says_why(self):
        env = harness.aws_env(DYNAMODB=self.ddb.url)
        env["FANOUT_TABLE"] = "no-such-table"
        event = harness.kinesis_event([("k1", b"first")])
        r = harness.run_fanout(["invoke", "--event", "-"], env=env,
                               stdin=json.dumps(event).encode())
        log = r.stderr.decode()
        self.assertEqual(r.returncode, 1, log)
        self.assertIn("table no-such-table", log)
        self.assertIn("ResourceNotFoundException", log)

    def run_bootstrap(self, events, env, while_running):
        """The fanout binary as a Lambda bootstrap, serving `events` from
        the runtime emulator; `while_running(api_lines)` is called while it
        runs. Returns (CompletedProcess-like, posted results)."""
        evfile, out = self.path("events.json"), self.path("api.jsonl")
        with open(evfile, "w") as f:
            json.dump(events, f)
        emu = harness.runtime_emulator(evfile, out, max_lifetime=120)
        proc = None
        try:
            port = emu.stdout.readline().decode().strip()
            e = dict(os.environ)
            for k in list(e):
                if k.startswith("AWS_") or k in ("FANOUT_CONFIG", "FANOUT_TABLE"):
                    del e[k]
            # Never the real EC2 instance metadata service (the chain's last step).
            e["AWS_EC2_METADATA_DISABLED"] = "true"
            e.update(env)
            e.update({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:" + port,
                      "FANOUT_PLUGIN_PATH": harness.plugin_path(),
                      "FANOUT_RETRY_BASE_MS": "1", "FANOUT_RETRY_CAP_MS": "2"})
            proc = subprocess.Popen([harness.FANOUT], env=e, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)

            def api_lines():
                if not os.path.exists(out):
                    return []
                with open(out) as f:
                    return [json.loads(line) for line in f if line.endswith("\n")]

            while_running(api_lines)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
            emu.kill()
            emu.wait()
            emu.stdout.close()
        posts = [c for c in api_lines() if c["kind"] in ("response", "error", "init_error")]
        return stderr.decode(), posts

    def test_lambda_loop_with_more_than_8_targets(self):
        """Issue 9: 9 or more targets crashed the Lambda loop (nothing was
        posted). 12 targets, two invocations, every record everywhere."""
        self.create_table("fanout-testTargets")
        n = 12
        self.put("fanout-testTargets",
                 *[item(SOURCE, "t%02d" % i, self.path("out-%d.jsonl" % i)) for i in range(n)])
        env = harness.aws_env(DYNAMODB=self.ddb.url)
        env.update({"AWS_LAMBDA_FUNCTION_NAME": "fanout-test"})
        events = [{"event": harness.kinesis_event([("k%d" % j, b"e%d-%d" % (e, j))
                                                   for j in range(3)])}
                  for e in range(2)]
        log, posts = self.run_bootstrap(events, env, lambda api_lines: None)
        self.assertEqual([p["kind"] for p in posts], ["response"] * 2, log)
        for p in posts:
            self.assertEqual(json.loads(p["body"]), {"batchItemFailures": []}, log)
        want = ["e%d-%d" % (e, j) for e in range(2) for j in range(3)]
        for i in range(n):
            self.assertEqual(self.datas("out-%d.jsonl" % i), want, log[-2000:])
        self.assertEqual(log.count("3 records, 3 messages, 1 calls, 3 delivered, 0 failed"),
                         2 * n, log[-2000:])

    def test_deactivated_target_stops_after_the_refresh_interval(self):
        # the default table of a Lambda function: <function name>Targets
        self.create_table("fanout-testTargets")
        self.put("fanout-testTargets",
                 item(SOURCE, "to-a", self.path("a.jsonl")),
                 item(SOURCE, "to-b", self.path("b.jsonl")),
                 # paces the invocations: "sleep:MS:" records take MS ms
                 item(SOURCE, "pacer", self.path("pacer.log"), type_="flaky"))
        env = harness.aws_env(DYNAMODB=self.ddb.url)
        env.update({"AWS_LAMBDA_FUNCTION_NAME": "fanout-test",
                    "FANOUT_MAPPING_REFRESH_SECONDS": "1"})
        events = [
            # 1: read from the table, both targets active
            {"event": harness.kinesis_event([("k", b"one")])},
            # 2: from the cache; while it sleeps, "to-b" is deactivated
            {"event": harness.kinesis_event([("k", b"sleep:2500:pause")])},
            # 3: more than the refresh interval later: read again, "to-b" off
            {"event": harness.kinesis_event([("k", b"three")])},
        ]
        state = {}

        def deactivate_after_first(api_lines):
            end = time.time() + 30
            while not any(c["kind"] == "response" for c in api_lines()):
                self.assertLess(time.time(), end, "no answer to the first invocation")
                time.sleep(0.02)
            state["at"] = time.monotonic()
            self.client.update_item(
                TableName="fanout-testTargets",
                Key={"sourceArn": {"S": SOURCE}, "id": {"S": "to-b"}},
                UpdateExpression="SET active = :f",
                ExpressionAttributeValues={":f": {"BOOL": False}})
            state["done"] = time.monotonic()

        log, posts = self.run_bootstrap(events, env, deactivate_after_first)
        self.assertEqual([p["kind"] for p in posts], ["response"] * 3, log)
        for p in posts:
            self.assertEqual(json.loads(p["body"]), {"batchItemFailures": []}, log)
        # the update landed while the second invocation was still sleeping
        self.assertLess(state["done"] - state["at"], 2.0)
        self.assertEqual(self.datas("a.jsonl"), ["one", "sleep:2500:pause", "three"], log)
        self.assertEqual(self.datas("b.jsonl"), ["one", "sleep:2500:pause"], log)
        self.assertNotIn("cannot refresh", log)



class ScriptedDynamoDB:
    """A DynamoDB endpoint that answers every Query or Scan with
    `answer(body)` (the request's JSON -> the reply's), as a server that
    misbehaves may: for what dynalite never does."""

    def __init__(self, answer):
        import http.server
        import threading
        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                out = json.dumps(answer(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class DynamoDBAnswers(unittest.TestCase):
    """Query answers that look like success but cannot be this query's:
    none of their items may become a target of the source asked for."""

    def setUp(self):
        self.tmp = harness.TempDir()
        self.dir = self.tmp.path

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def invoke(self, answer):
        ddb = ScriptedDynamoDB(answer)
        try:
            env = harness.aws_env(DYNAMODB=ddb.url)
            env["FANOUT_TABLE"] = "fanout-mappings"
            event = harness.kinesis_event([("k1", b"first")])
            r = harness.run_fanout(["invoke", "--event", "-", "--timeout", "20"], env=env,
                                   stdin=json.dumps(event).encode())
        finally:
            ddb.stop()
        return r, r.stderr.decode(), ddb.requests

    def written(self, name):
        p = self.path(name)
        return open(p, encoding="utf-8").read().count("\n") if os.path.exists(p) else 0

    def test_query_answer_holding_another_sources_item(self):
        """The answer to the Query for SOURCE holds an item of OTHER (an
        answer to another request, a broken proxy or emulator): its target
        must not get SOURCE's records, and the read is not trusted."""
        r, log, reqs = self.invoke(lambda body: {
            "Count": 2, "ScannedCount": 2,
            "Items": [item(SOURCE, "mine", self.path("mine.jsonl")),
                      item(OTHER, "theirs", self.path("theirs.jsonl"))]})
        self.assertEqual(reqs[0]["ExpressionAttributeValues"], {":s": {"S": SOURCE}})
        self.assertEqual(self.written("theirs.jsonl"), 0, log)
        self.assertEqual(r.returncode, 1, log)
        self.assertIn("cannot read the mappings of %s" % SOURCE, log)
        self.assertIn('DynamoDB Query: the answer holds an item of sourceArn "%s" (id '
                      '"theirs"), not of the sourceArn asked for' % OTHER, log)
        self.assertIn("1 records failed", log)

    def test_query_answer_holding_one_item_twice(self):
        """A table holds one item per key: the same key twice in one read
        (a page served twice) would deliver every record twice."""
        pages = {None: [item(SOURCE, "a", self.path("a.jsonl")),
                        item(SOURCE, "b", self.path("b.jsonl"))],
                 "b": [item(SOURCE, "a", self.path("a.jsonl"))]}

        def answer(body):
            start = body.get("ExclusiveStartKey", {}).get("id", {}).get("S")
            out = {"Items": pages[start], "Count": len(pages[start])}
            if start is None:
                out["LastEvaluatedKey"] = {"sourceArn": {"S": SOURCE}, "id": {"S": "b"}}
            return out
        r, log, reqs = self.invoke(answer)
        self.assertEqual(len(reqs), 2, log)
        self.assertLessEqual(self.written("a.jsonl"), 1, log)
        self.assertEqual(r.returncode, 1, log)
        self.assertIn('DynamoDB Query: the answer holds the item of sourceArn "%s", id '
                      '"a" twice (a table holds one item per key)' % SOURCE, log)

    def test_query_pages_in_a_cycle(self):
        """LastEvaluatedKey b, then c, then b again: the pages would go
        round until the deadline (without one, `fanout list`, for ever),
        each adding items. Seen before: the read fails, named."""
        def answer(body):
            start = body.get("ExclusiveStartKey", {}).get("id", {}).get("S")
            nxt = "c" if start == "b" else "b"
            n = len(reqs_seen)
            reqs_seen.append(start)
            return {"Items": [item(SOURCE, "x%d" % n, self.path("x.jsonl"))], "Count": 1,
                    "LastEvaluatedKey": {"sourceArn": {"S": SOURCE}, "id": {"S": nxt}}}
        reqs_seen = []
        t0 = time.monotonic()
        r, log, reqs = self.invoke(answer)
        self.assertLess(time.monotonic() - t0, 10, log)
        self.assertEqual(len(reqs), 3, log)
        self.assertEqual(self.written("x.jsonl"), 0, log)
        self.assertEqual(r.returncode, 1, log)
        self.assertIn('DynamoDB Query: it returned the '
                      'LastEvaluatedKey {"id":{"S":"b"},"sourceArn":{"S":"%s"}} a second '
                      'time (its pages go round in a cycle)' % SOURCE, log)

if __name__ == "__main__":
    unittest.main(verbosity=2)
