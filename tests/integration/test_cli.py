"""Integration tests of the management commands: register, list, update,
activate, deactivate, unregister (engine/cli/cli.c).

The real fanout binary against dynalite (the mapping table, created here
with botocore: hash key sourceArn, range key id) and kinesalite (streams for
--source resolution), both from npm, started by harness on loopback.

dynalite 4 accepts StreamSpecification in CreateTable but has no streams:
DescribeTable never returns LatestStreamArn. So fanout's DynamoDB requests
go through DynamoShim below, a loopback proxy to dynalite that adds a
stream to the DescribeTable answer of the tables a test names (the fields
and shape of the DynamoDB API reference), and records each request's
operation, body, access key and signing region, which also lets the tests
count the pages of a Scan or Query. Run by meson with /usr/bin/python3.
"""

import http.client
import json
import os
import re
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

K_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/source"
K_ARN2 = "arn:aws:kinesis:us-east-1:123456789012:stream/other"
USERS_STREAM = ("arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/"
                "2026-01-01T00:00:00.000")
COMMANDS = ["register", "list", "update", "activate", "deactivate", "unregister"]


class DynamoShim(harness.InProcessServer):
    """A proxy to dynalite: requests are forwarded as they are; the
    DescribeTable answer of a table in `streams` gets StreamSpecification,
    LatestStreamArn and LatestStreamLabel (`disabled` ones a stream with
    StreamEnabled false). Every request is recorded."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.streams = {}
        self.disabled = set()
        self.requests = []
        self.rewrite = {}  # op -> f(answer JSON) -> the answer sent instead
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, headers, data = shim.forward(self.headers, body)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.serve(Handler)

    def forward(self, headers, body):
        target = headers.get("X-Amz-Target", "")
        auth = headers.get("Authorization", "")
        m = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/", auth)
        op = target.split(".")[-1]
        with self.lock:
            self.requests.append({"op": op, "body": json.loads(body or b"{}"),
                                  "access_key": m.group(1) if m else None,
                                  "region": m.group(2) if m else None,
                                  "service": m.group(3) if m else None})
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        conn.request("POST", "/", body=body, headers=fwd)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() in ("content-type", "x-amzn-requestid", "x-amz-crc32")]
        conn.close()
        if op == "DescribeTable" and resp.status == 200:
            answer = json.loads(data)
            name = answer["Table"]["TableName"]
            if name in self.streams:
                arn = self.streams[name]
                answer["Table"]["StreamSpecification"] = {
                    "StreamEnabled": name not in self.disabled,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"}
                answer["Table"]["LatestStreamArn"] = arn
                answer["Table"]["LatestStreamLabel"] = arn.rsplit("/", 1)[1]
                data = json.dumps(answer).encode()
                out = [(k, v) for k, v in out if k.lower() != "x-amz-crc32"]
        if op in self.rewrite and resp.status == 200:
            data = json.dumps(self.rewrite[op](json.loads(data))).encode()
            out = [(k, v) for k, v in out if k.lower() != "x-amz-crc32"]
        return resp.status, out, data

    def ops(self, op=None):
        with self.lock:
            return [r for r in self.requests if op is None or r["op"] == op]

    def reset(self):
        with self.lock:
            self.requests = []
            self.rewrite = {}


class CliTest(unittest.TestCase):
    table_count = 0

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir()
        cls.dynalite = harness.Dynalite()
        cls.kinesalite = harness.Kinesalite()
        cls.shim = DynamoShim(cls.dynalite.port)
        cls.ddb = harness.botocore_client("dynamodb", cls.dynalite.url)
        cls.kin = harness.botocore_client("kinesis", cls.kinesalite.url)
        cls.kin.create_stream(StreamName="orders", ShardCount=1)
        cls.wait(lambda: cls.kin.describe_stream_summary(StreamName="orders")
                 ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")
        cls.orders_arn = cls.kin.describe_stream_summary(
            StreamName="orders")["StreamDescriptionSummary"]["StreamARN"]
        # source tables for --source ... --source-type dynamodb
        for name in ("users", "plain", "paused"):
            cls.create_table(name, mapping_table=False)
        cls.shim.streams["users"] = USERS_STREAM
        cls.shim.streams["paused"] = USERS_STREAM.replace("users", "paused")
        cls.shim.disabled.add("paused")

    @classmethod
    def tearDownClass(cls):
        cls.ddb.close()
        cls.kin.close()
        cls.shim.stop()
        cls.kinesalite.stop()
        cls.dynalite.stop()
        cls.tmp.cleanup()

    @staticmethod
    def wait(pred, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in %.0f s" % timeout)

    @classmethod
    def create_table(cls, name, mapping_table=True):
        keys = ("sourceArn", "id") if mapping_table else ("pk", "sk")
        cls.ddb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": keys[0], "AttributeType": "S"},
                                  {"AttributeName": keys[1], "AttributeType": "S"}],
            KeySchema=[{"AttributeName": keys[0], "KeyType": "HASH"},
                       {"AttributeName": keys[1], "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")
        cls.wait(lambda: cls.ddb.describe_table(TableName=name)["Table"]["TableStatus"]
                 == "ACTIVE")
        return name

    def setUp(self):
        CliTest.table_count += 1
        self.table = self.create_table("cli%03dTargets" % CliTest.table_count)
        self.shim.reset()

    # ---- helpers ----

    def env(self, **extra):
        e = harness.aws_env(DYNAMODB=self.shim.url, KINESIS=self.kinesalite.url)
        e.update(extra)
        return e

    def fanout(self, *args, env=None, table=True):
        argv = list(args) + (["--table", self.table] if table else [])
        return harness.run_fanout(argv, env=self.env() if env is None else env)

    def ok(self, *args, **kw):
        r = self.fanout(*args, **kw)
        self.assertEqual(r.returncode, 0, "%s\nstdout: %s\nstderr: %s"
                         % (args, r.stdout.decode(), r.stderr.decode()))
        return r

    def fails(self, status, *args, **kw):
        r = self.fanout(*args, **kw)
        self.assertEqual(r.returncode, status, "%s\nstdout: %s\nstderr: %s"
                         % (args, r.stdout.decode(), r.stderr.decode()))
        return r.stderr.decode()

    def register(self, id_, dest=None, source=K_ARN, type_="file", *extra):
        dest = dest or os.path.join(self.tmp.path, id_ + ".jsonl")
        return self.ok("register", type_, "--source-arn", source, "--id", id_,
                       "--destination", dest, *extra)

    def item(self, id_, source=K_ARN):
        return self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                 Key={"sourceArn": {"S": source},
                                      "id": {"S": id_}}).get("Item")

    def items(self):
        return self.ddb.scan(TableName=self.table, ConsistentRead=True)["Items"]

    def list_json(self, *args, env=None):
        r = self.ok("list", "--json", *args, env=env)
        return json.loads(r.stdout)

    # ---- help and usage ----

    def test_help_of_every_command(self):
        for cmd in COMMANDS:
            for flag in ("--help", "-h"):
                r = self.fanout(cmd, flag, table=False)
                out = r.stdout.decode()
                self.assertEqual(r.returncode, 0, cmd)
                self.assertTrue(out.startswith("usage: fanout " + cmd), out)
                self.assertIn("Examples:\n  fanout " + cmd, out)
                self.assertIn("--table NAME", out)
                self.assertIn("--endpoint-url URL", out)
                self.assertEqual(r.stderr, b"")
                for line in out.splitlines():
                    self.assertLessEqual(len(line), 80, line)
        # help wins over other problems on the line
        r = self.fanout("register", "--bogus", "--help", table=False)
        self.assertEqual(r.returncode, 0)

    def test_unknown_flag(self):
        for cmd in COMMANDS:
            err = self.fails(2, cmd, "--bogus", "x")
            self.assertIn("fanout %s: unknown option --bogus" % cmd, err)
            self.assertIn("usage: fanout " + cmd, err)
        # exact names only: no abbreviations of long flags
        self.assertIn("unknown option --dest", self.fails(2, "register", "file", "--dest", "x"))
        self.assertIn('unknown option "-x"', self.fails(2, "list", "-x"))
        self.assertEqual(self.shim.ops(), [])

    def test_flag_of_another_command(self):
        err = self.fails(2, "activate", "--source-arn", K_ARN, "--id", "a",
                         "--destination", "x")
        self.assertIn("--destination is not an option of activate", err)
        self.assertIn("--json is not an option of register",
                      self.fails(2, "register", "file", "--json"))
        self.assertIn("--id is not an option of list", self.fails(2, "list", "--id", "a"))

    def test_missing_value(self):
        err = self.fails(2, "register", "file", "--source-arn", K_ARN, "--id")
        self.assertIn("--id needs a value (ID)", err)
        err = self.fails(2, "register", "file", "--id", "--destination", "x")
        self.assertIn("--id needs a value (ID), got the option --destination", err)
        self.assertIn("--table needs a value", self.fails(2, "list", "--table", table=False))
        self.assertIn("--active needs a value (true|false)",
                      self.fails(2, "update", "--source-arn", K_ARN, "--id", "a", "--active"))
        self.assertEqual(self.shim.ops(), [])

    def test_bad_values(self):
        base = ["register", "file", "--source-arn", K_ARN, "--id", "a", "--destination", "x"]
        self.assertIn('--active expects true or false, got "yes"',
                      self.fails(2, *base, "--active", "yes"))
        self.assertIn('--parallel expects true or false, got "1"',
                      self.fails(2, *base, "--parallel=1"))
        self.assertIn("--active is given twice",
                      self.fails(2, *base, "--active", "true", "--active", "false"))
        self.assertIn("--json takes no value", self.fails(2, "list", "--json=yes"))
        self.assertIn('unexpected argument "extra"', self.fails(2, *base, "extra"))
        self.assertIn('unexpected argument "file"',
                      self.fails(2, "list", "file"))
        self.assertIn('--source-type expects kinesis or dynamodb, got "sqs"',
                      self.fails(2, "list", "--source", "x", "--source-type", "sqs"))
        self.assertEqual(self.items(), [])

    def test_required_flags(self):
        self.assertIn("the plugin type is required",
                      self.fails(2, "register", "--source-arn", K_ARN, "--id", "a",
                                 "--destination", "x"))
        self.assertIn("--destination DEST is required",
                      self.fails(2, "register", "file", "--source-arn", K_ARN, "--id", "a"))
        self.assertIn("--id ID is required",
                      self.fails(2, "register", "file", "--source-arn", K_ARN,
                                 "--destination", "x"))
        self.assertIn("the source is required",
                      self.fails(2, "register", "file", "--id", "a", "--destination", "x"))
        for cmd in ("activate", "deactivate", "unregister"):
            self.assertIn("--id ID is required", self.fails(2, cmd, "--source-arn", K_ARN))
            self.assertIn("the source is required", self.fails(2, cmd, "--id", "a"))
        self.assertIn("nothing to change",
                      self.fails(2, "update", "--source-arn", K_ARN, "--id", "a"))
        self.assertIn("--source orders needs --source-type",
                      self.fails(2, "list", "--source", "orders"))
        self.assertIn("--source-type goes with --source",
                      self.fails(2, "list", "--source-type", "kinesis"))
        self.assertIn("give the source once",
                      self.fails(2, "list", "--source", "orders", "--source-type", "kinesis",
                                 "--source-arn", K_ARN))
        self.assertIn("is not a Kinesis stream ARN",
                      self.fails(2, "list", "--source-type", "kinesis",
                                 "--source-arn", USERS_STREAM))
        self.assertEqual(self.shim.ops(), [])

    # ---- register ----

    def test_register(self):
        dest = os.path.join(self.tmp.path, "out.jsonl")
        r = self.register("to-file", dest)
        self.assertIn('registered mapping "to-file" (file) for %s in table "%s" (inactive)'
                      % (K_ARN, self.table), r.stdout.decode())
        self.assertEqual(self.item("to-file"), {
            "sourceArn": {"S": K_ARN}, "id": {"S": "to-file"}, "type": {"S": "file"},
            "destination": {"S": dest}, "active": {"BOOL": False},
            # aws-lambda-fanout's register wrote collapse none by default
            "collapse": {"S": "none"}})
        put = self.shim.ops("PutItem")
        self.assertEqual(len(put), 1)
        self.assertEqual(put[0]["body"]["ConditionExpression"], "attribute_not_exists(id)")
        self.assertEqual(put[0]["body"]["TableName"], self.table)

    def test_register_every_option(self):
        self.ok("register", "notinstalled", "--source-arn", K_ARN, "--id", "full",
                "--destination", "somewhere", "--active", "true",
                "--destination-role-arn", "arn:aws:iam::210987654321:role/writer",
                "--external-id", "ext-123", "--destination-region", "eu-west-1",
                "--collapse", "concat-b64", "--parallel", "false", "--convert-ddb=true",
                "--deaggregate", "true")
        self.assertEqual(self.item("full"), {
            "sourceArn": {"S": K_ARN}, "id": {"S": "full"}, "type": {"S": "notinstalled"},
            "destination": {"S": "somewhere"}, "active": {"BOOL": True},
            "role": {"S": "arn:aws:iam::210987654321:role/writer"},
            "externalId": {"S": "ext-123"}, "region": {"S": "eu-west-1"},
            "collapse": {"S": "concat-b64"}, "parallel": {"BOOL": False},
            "convertDDB": {"BOOL": True}, "deaggregate": {"BOOL": True}})

    def test_register_setting_the_original_ignored_warns(self):
        r = self.ok("register", "redis", "--source-arn", K_ARN, "--id", "cache",
                    "--destination", "127.0.0.1:6379", "--collapse", "JSON",
                    "--destination-region", "eu-west-1")
        self.assertIn('fanout register: warning: mapping "cache" (#0): field "collapse" '
                      '("JSON"), field "region" ("eu-west-1"): ignored for type "redis"',
                      r.stderr.decode())
        # stored as given: the original reads the same item
        self.assertEqual(self.item("cache")["collapse"], {"S": "JSON"})
        self.assertEqual(self.item("cache")["region"], {"S": "eu-west-1"})

    def test_register_empty_option_is_left_out(self):
        self.register("e", None, K_ARN, "file", "--destination-region", "",
                      "--collapse", "")
        self.assertNotIn("region", self.item("e"))
        self.assertNotIn("collapse", self.item("e"))

    def test_register_duplicate(self):
        self.register("dup", "/tmp/one")
        err = self.fails(1, "register", "file", "--source-arn", K_ARN, "--id", "dup",
                         "--destination", "/tmp/two", "--active", "true")
        self.assertIn('mapping "dup" already exists for %s in table "%s"' % (K_ARN, self.table),
                      err)
        self.assertIn("fanout update", err)
        self.assertEqual(self.item("dup")["destination"], {"S": "/tmp/one"})
        # the same id under another source is another mapping
        self.register("dup", "/tmp/three", K_ARN2)
        self.assertEqual(len(self.items()), 2)

    def test_register_invalid_for_installed_plugin(self):
        # the file plugin's own validator: no role, no region
        err = self.fails(2, "register", "file", "--source-arn", K_ARN, "--id", "bad",
                         "--destination", "/tmp/x",
                         "--destination-role-arn", "arn:aws:iam::123456789012:role/r")
        self.assertIn('mapping "bad": field "destination": a file target has no AWS role or '
                      'region; remove "role"', err)
        err = self.fails(2, "register", "file", "--source-arn", K_ARN, "--id", "bad",
                         "--destination", "/tmp/x", "--destination-region", "eu-west-1")
        self.assertIn('remove "region"', err)
        self.assertEqual(self.items(), [])
        self.assertEqual(self.shim.ops("PutItem"), [])

    def test_register_invalid_schema(self):
        cases = [
            (["--collapse", "bogus"], 'field "collapse": expected one of none, JSON'),
            (["--destination-region", "nowhere"], 'field "region": expected an AWS region'),
            (["--destination-role-arn", "not-an-arn"], 'field "role": expected an IAM role'),
            (["--external-id", "abc"], 'field "externalId": set without "role"'),
        ]
        for extra, message in cases:
            err = self.fails(2, "register", "notinstalled", "--source-arn", K_ARN, "--id",
                             "bad", "--destination", "d", *extra)
            self.assertIn(message, err)
            self.assertIn("nothing was written", err)
        err = self.fails(2, "register", "../evil", "--source-arn", K_ARN, "--id", "bad",
                         "--destination", "d")
        self.assertIn('field "type": "../evil" is not a plugin name', err)
        err = self.fails(2, "register", "file", "--source-arn", "stream/x", "--id", "bad",
                         "--destination", "d")
        self.assertIn('field "sourceArn"', err)
        err = self.fails(2, "register", "file", "--source-arn",
                         "arn:aws:dynamodb:us-east-1:123456789012:table/users", "--id", "bad",
                         "--destination", "d")
        self.assertIn("is a DynamoDB table, not its stream", err)
        self.assertEqual(self.items(), [])

    def test_register_plugin_not_installed_warns(self):
        r = self.ok("register", "notinstalled", "--source-arn", K_ARN, "--id", "w",
                    "--destination", "anything")
        err = r.stderr.decode()
        self.assertIn('warning: plugin "notinstalled" not found', err)
        self.assertIn("checked against the mapping schema only", err)
        self.assertIsNotNone(self.item("w"))

    # ---- sources ----

    def test_source_kinesis(self):
        self.ok("register", "file", "--source", "orders", "--source-type", "kinesis",
                "--id", "k", "--destination", "/tmp/k")
        self.assertEqual(self.item("k", self.orders_arn)["sourceArn"], {"S": self.orders_arn})
        r = self.ok("activate", "--source", "orders", "--source-type", "kinesis", "--id", "k")
        self.assertIn(self.orders_arn, r.stdout.decode())
        self.assertEqual(self.item("k", self.orders_arn)["active"], {"BOOL": True})

    def test_source_kinesis_unknown(self):
        err = self.fails(1, "register", "file", "--source", "nosuch", "--source-type",
                         "kinesis", "--id", "k", "--destination", "/tmp/k")
        self.assertIn('there is no Kinesis stream "nosuch"', err)
        self.assertEqual(self.items(), [])

    def test_source_dynamodb(self):
        self.ok("register", "file", "--source", "users", "--source-type", "dynamodb",
                "--id", "d", "--destination", "/tmp/d", "--convert-ddb", "true")
        self.assertEqual(self.item("d", USERS_STREAM)["convertDDB"], {"BOOL": True})
        describe = self.shim.ops("DescribeTable")
        self.assertEqual([r["body"] for r in describe], [{"TableName": "users"}])
        got = self.list_json("--source", "users", "--source-type", "dynamodb")
        self.assertEqual([m["id"] for m in got], ["d"])

    def test_source_dynamodb_without_stream(self):
        err = self.fails(1, "register", "file", "--source", "plain", "--source-type",
                         "dynamodb", "--id", "d", "--destination", "/tmp/d")
        self.assertIn('the DynamoDB table "plain" has no stream', err)
        self.assertIn("--source-arn", err)
        err = self.fails(1, "list", "--source", "paused", "--source-type", "dynamodb")
        self.assertIn('the DynamoDB table "paused" has a disabled stream', err)
        err = self.fails(1, "unregister", "--source", "nosuchtable", "--source-type",
                         "dynamodb", "--id", "d")
        self.assertIn('there is no DynamoDB table "nosuchtable"', err)
        self.assertEqual(self.items(), [])

    def test_source_arn_with_matching_type(self):
        # the seed's scripts pass --source-type along with --source-arn
        self.ok("register", "file", "--source-type", "kinesis", "--source-arn", K_ARN,
                "--id", "s", "--destination", "/tmp/s")
        self.assertIsNotNone(self.item("s"))

    # ---- update, activate, deactivate, unregister ----

    def test_update(self):
        self.register("u", "/tmp/u1", K_ARN, "file", "--collapse", "none",
                      "--destination-region", "")
        r = self.ok("update", "--source-arn", K_ARN, "--id", "u", "--destination", "/tmp/u2",
                    "--parallel", "false", "--active", "true")
        self.assertIn('updated mapping "u"', r.stdout.decode())
        self.assertEqual(self.item("u"), {
            "sourceArn": {"S": K_ARN}, "id": {"S": "u"}, "type": {"S": "file"},
            "destination": {"S": "/tmp/u2"}, "active": {"BOOL": True},
            "collapse": {"S": "none"}, "parallel": {"BOOL": False}})
        put = self.shim.ops("PutItem")[-1]["body"]
        self.assertEqual(put["ConditionExpression"], "attribute_exists(id)")
        self.assertTrue(self.shim.ops("GetItem")[-1]["body"]["ConsistentRead"])
        # an empty value removes an option
        self.ok("update", "--source-arn", K_ARN, "--id", "u", "--collapse", "")
        self.assertNotIn("collapse", self.item("u"))

    def test_update_keeps_plugin_options(self):
        self.ddb.put_item(TableName=self.table, Item={
            "sourceArn": {"S": K_ARN}, "id": {"S": "opt"}, "type": {"S": "notinstalled"},
            "destination": {"S": "d"}, "active": {"BOOL": False},
            "ttlSeconds": {"N": "30"}, "tag": {"S": "x"}})
        self.ok("update", "--source-arn", K_ARN, "--id", "opt", "--active", "true")
        item = self.item("opt")
        self.assertEqual(item["ttlSeconds"], {"N": "30"})
        self.assertEqual(item["tag"], {"S": "x"})
        self.assertEqual(item["active"], {"BOOL": True})

    def test_update_missing(self):
        err = self.fails(1, "update", "--source-arn", K_ARN, "--id", "ghost", "--active",
                         "true")
        self.assertIn('there is no mapping "ghost" for %s in table "%s"' % (K_ARN, self.table),
                      err)
        self.assertEqual(self.items(), [])

    def test_update_refuses_an_answer_for_another_item(self):
        """GetItem answered with another key's item (an answer to another
        request): update would have changed that item and written it back
        (attribute_exists(id) holds for it). Nothing is written."""
        self.register("u", "/tmp/u")
        self.register("w", "/tmp/w", K_ARN2)
        other = self.item("w", K_ARN2)
        puts = len(self.shim.ops("PutItem"))
        self.shim.rewrite["GetItem"] = lambda answer: {"Item": other}
        err = self.fails(1, "update", "--source-arn", K_ARN, "--id", "u", "--destination",
                         "/tmp/changed")
        self.assertIn('fanout update: DynamoDB GetItem of mapping "u" for %s in table "%s" '
                      'answered with the item of sourceArn "%s", id "w": not the one asked '
                      'for, so nothing is written' % (K_ARN, self.table, K_ARN2), err)
        self.assertEqual(len(self.shim.ops("PutItem")), puts)
        self.assertEqual(self.item("w", K_ARN2), other)
        self.assertEqual(self.item("u")["destination"], {"S": "/tmp/u"})

    def test_update_invalid_result(self):
        self.register("v", "/tmp/v")
        err = self.fails(2, "update", "--source-arn", K_ARN, "--id", "v",
                         "--destination-role-arn", "arn:aws:iam::123456789012:role/r")
        self.assertIn('a file target has no AWS role or region; remove "role"', err)
        err = self.fails(2, "update", "--source-arn", K_ARN, "--id", "v", "--destination", "")
        self.assertIn('field "destination": must not be empty', err)
        self.assertEqual(self.item("v")["destination"], {"S": "/tmp/v"})
        self.assertNotIn("role", self.item("v"))
        self.assertEqual(len(self.shim.ops("PutItem")), 1)

    def test_update_repairs_a_wrongly_typed_item(self):
        self.ddb.put_item(TableName=self.table, Item={
            "sourceArn": {"S": K_ARN}, "id": {"S": "typed"}, "type": {"S": "file"},
            "destination": {"S": "/tmp/t"}, "active": {"S": "true"}})
        self.ok("update", "--source-arn", K_ARN, "--id", "typed", "--active", "true")
        self.assertEqual(self.item("typed")["active"], {"BOOL": True})

    # ---- filter, onFailure, wholeRecord ----

    def test_register_filter_on_failure_whole_record(self):
        dest = os.path.join(self.tmp.path, "filtered.jsonl")
        failed = os.path.join(self.tmp.path, "failed.jsonl")
        self.register("flt", dest, K_ARN, "file", "--active", "true",
                      "--filter", '{"data": {"type": ["order"]}, "partitionKey": '
                      '[{"prefix": "eu-"}]}',
                      "--on-failure=" + json.dumps({"type": "file", "destination": failed}))
        item = self.item("flt")
        # the table's form: strings holding the JSON (compact, keys sorted)
        self.assertEqual(item["filter"], {
            "S": '{"data":{"type":["order"]},"partitionKey":[{"prefix":"eu-"}]}'})
        self.assertEqual(item["onFailure"], {
            "S": '{"destination":"%s","type":"file"}' % failed})
        self.assertNotIn("wholeRecord", item)
        # whole records: a DynamoDB stream's mapping only
        self.register("whole", "/tmp/w", USERS_STREAM, "file", "--whole-record", "true")
        self.assertEqual(self.item("whole", USERS_STREAM)["wholeRecord"], {"BOOL": True})
        err = self.fails(2, "register", "file", "--source-arn", K_ARN, "--id", "w2",
                         "--destination", "/tmp/w", "--whole-record", "true")
        self.assertIn('mapping "w2" (#0): field "wholeRecord": only for DynamoDB Streams '
                      'sources', err)
        self.assertIn("nothing was written", err)
        # list: the table keeps its six columns, the fields among the options
        out = self.ok("list").stdout.decode()
        self.assertEqual(out.splitlines()[0].split(), ["ID", "TYPE", "ACTIVE", "DESTINATION",
                                                       "SOURCE", "OPTIONS"])
        row = [line.split() for line in out.splitlines() if line.startswith("flt ")][0]
        self.assertEqual(row[:5], ["flt", "file", "true", dest, K_ARN])
        self.assertEqual(row[5:], [
            "collapse=none",
            'onFailure={"destination":"%s","type":"file"}' % failed,
            'filter={"data":{"type":["order"]},"partitionKey":[{"prefix":"eu-"}]}'])
        row = [line.split() for line in out.splitlines() if line.startswith("whole ")][0]
        self.assertEqual(row[5:], ["collapse=none", "wholeRecord=true"])
        # list --json: the objects, a mapping file's form, that the engine runs
        got = {m["id"]: m for m in self.list_json()}
        self.assertEqual(got["flt"]["filter"], {"data": {"type": ["order"]},
                                                "partitionKey": [{"prefix": "eu-"}]})
        self.assertEqual(got["flt"]["onFailure"], {"type": "file", "destination": failed})
        self.assertIs(got["whole"]["wholeRecord"], True)
        event = harness.kinesis_event([("eu-1", b'{"type":"order"}'),
                                       ("us-1", b'{"type":"order"}'),
                                       ("eu-2", b'{"type":"refund"}'),
                                       ("eu-3", b"not json")], arn=K_ARN)
        inv, _ = harness.invoke(self.tmp.path, [got["flt"]], event)
        self.assertEqual(inv.returncode, 0, inv.stderr.decode())
        with open(dest) as f:
            self.assertEqual([json.loads(line)["key"] for line in f], ["eu-1"])

    def test_register_refuses_a_bad_filter_or_on_failure(self):
        cases = [
            (["--filter", '{"data": {"amount": [{"numeric": [">", "5"]}]}}'],
             'mapping "bad" (#0): field "filter": data.amount[0]: "numeric" expects a '
             'number at position 1, got a string'),
            (["--filter", '{"data": {"type": "order"}}'],
             'field "filter": data.type: expected an array of values to match'),
            (["--filter", '{"a": ["x"], "a": ["y"]}'],
             'field "filter": a: appears more than once'),
            (["--filter", '{"data": '],
             'field "filter": the string is not an event pattern in JSON'),
            (["--filter", "[1]"],
             'field "filter": the pattern: expected a pattern object, got an array'),
            (["--on-failure", '{"type": "file"}'],
             'field "onFailure": field "destination"'),
            (["--on-failure", '{"type": "file", "destination": "/tmp/f", "collapse": "JSON"}'],
             'field "onFailure": field "collapse": not accepted in an on-failure '
             'destination'),
            # the on-failure destination's own plugin checks it too
            (["--on-failure", json.dumps({"type": "file", "destination": "/tmp/f",
                                          "role": "arn:aws:iam::123456789012:role/r"})],
             'mapping "bad": field "onFailure": field "destination": a file target has no '
             'AWS role or region; remove "role"'),
        ]
        for extra, message in cases:
            err = self.fails(2, "register", "file", "--source-arn", K_ARN, "--id", "bad",
                             "--destination", "/tmp/bad", *extra)
            self.assertIn(message, err, extra)
        self.assertEqual(self.items(), [])
        self.assertEqual(self.shim.ops("PutItem"), [])

    def test_update_filter_on_failure_whole_record(self):
        self.register("uf", "/tmp/uf", K_ARN, "file", "--filter", '{"eventName": ["x"]}')
        self.ok("update", "--source-arn", K_ARN, "--id", "uf", "--filter",
                '{"partitionKey": ["a", "b"]}', "--on-failure",
                '{"type": "file", "destination": "/tmp/uf-failed"}')
        item = self.item("uf")
        self.assertEqual(item["filter"], {"S": '{"partitionKey":["a","b"]}'})
        self.assertEqual(item["onFailure"],
                         {"S": '{"destination":"/tmp/uf-failed","type":"file"}'})
        # other flags keep them
        self.ok("update", "--source-arn", K_ARN, "--id", "uf", "--active", "true")
        self.assertEqual(self.item("uf")["filter"], item["filter"])
        self.assertEqual(self.item("uf")["onFailure"], item["onFailure"])
        # a bad one is refused and the item stays as it was
        err = self.fails(2, "update", "--source-arn", K_ARN, "--id", "uf", "--filter",
                         '{"partitionKey": [{"prefix": 5}]}')
        self.assertIn('mapping "uf" (#0): field "filter": partitionKey[0]', err)
        self.assertEqual(self.item("uf")["filter"], item["filter"])
        # an empty value removes them
        self.ok("update", "--source-arn", K_ARN, "--id", "uf", "--filter", "",
                "--on-failure", "")
        self.assertNotIn("filter", self.item("uf"))
        self.assertNotIn("onFailure", self.item("uf"))
        self.assertEqual(self.item("uf")["active"], {"BOOL": True})
        # whole records on and off, on a DynamoDB stream's mapping
        self.register("uw", "/tmp/uw", USERS_STREAM)
        self.ok("update", "--source-arn", USERS_STREAM, "--id", "uw", "--whole-record",
                "true")
        self.assertEqual(self.item("uw", USERS_STREAM)["wholeRecord"], {"BOOL": True})
        self.ok("update", "--source-arn", USERS_STREAM, "--id", "uw", "--whole-record",
                "false")
        self.assertEqual(self.item("uw", USERS_STREAM)["wholeRecord"], {"BOOL": False})
        err = self.fails(2, "update", "--source-arn", K_ARN, "--id", "uf",
                         "--whole-record", "true")
        self.assertIn('field "wholeRecord": only for DynamoDB Streams sources', err)
        err = self.fails(2, "update", "--source-arn", K_ARN, "--id", "uf",
                         "--whole-record", "yes")
        self.assertIn('--whole-record expects true or false, got "yes"', err)

    def test_activate_deactivate(self):
        self.register("a")
        self.assertEqual(self.item("a")["active"], {"BOOL": False})
        r = self.ok("activate", "--source-arn", K_ARN, "--id", "a")
        self.assertIn('mapping "a" for %s is now active' % K_ARN, r.stdout.decode())
        self.assertEqual(self.item("a")["active"], {"BOOL": True})
        body = self.shim.ops("UpdateItem")[-1]["body"]
        self.assertEqual(body["ConditionExpression"], "attribute_exists(id)")
        self.ok("deactivate", "--source-arn", K_ARN, "--id", "a")
        self.assertEqual(self.item("a")["active"], {"BOOL": False})
        self.assertEqual(len(self.items()), 1)

    def test_activate_deactivate_missing(self):
        for cmd in ("activate", "deactivate"):
            err = self.fails(1, cmd, "--source-arn", K_ARN, "--id", "ghost")
            self.assertIn('there is no mapping "ghost"', err)
        self.assertEqual(self.items(), [])  # no item made by UpdateItem

    def test_unregister(self):
        self.register("gone")
        self.register("stays")
        r = self.ok("unregister", "--source-arn", K_ARN, "--id", "gone")
        self.assertIn('unregistered mapping "gone"', r.stdout.decode())
        self.assertIsNone(self.item("gone"))
        self.assertIsNotNone(self.item("stays"))
        err = self.fails(1, "unregister", "--source-arn", K_ARN, "--id", "gone")
        self.assertIn('there is no mapping "gone"', err)

    # ---- list ----

    def test_list_table(self):
        self.register("b-file", "/tmp/b", K_ARN, "file", "--active", "true", "--parallel",
                      "false", "--collapse", "concat")
        self.register("a-file", "/tmp/a", K_ARN)
        self.register("z-other", "/tmp/z", K_ARN2)
        r = self.ok("list")
        lines = r.stdout.decode().splitlines()
        self.assertEqual(lines[0].split(), ["ID", "TYPE", "ACTIVE", "DESTINATION", "SOURCE",
                                            "OPTIONS"])
        self.assertEqual(lines[1].split(), ["z-other", "file", "false", "/tmp/z", K_ARN2,
                                            "collapse=none"])
        self.assertEqual(lines[2].split(), ["a-file", "file", "false", "/tmp/a", K_ARN,
                                            "collapse=none"])
        self.assertEqual(lines[3].split(), ["b-file", "file", "true", "/tmp/b", K_ARN,
                                            "collapse=concat", "parallel=false"])
        # columns line up
        self.assertEqual(len({line.index(" file ") for line in lines[1:4]}), 1)
        self.assertEqual(lines[5], '3 mappings (1 active) in table "%s"' % self.table)
        self.assertEqual(r.stderr, b"")
        self.assertEqual(len(self.shim.ops("Scan")), 1)

    def test_list_empty(self):
        r = self.ok("list")
        self.assertEqual(r.stdout.decode(), '0 mappings (0 active) in table "%s"\n'
                         % self.table)
        self.assertEqual(self.list_json(), [])

    def test_list_filtered_by_source(self):
        self.register("one", "/tmp/1", K_ARN)
        self.register("two", "/tmp/2", K_ARN2)
        got = self.list_json("--source-arn", K_ARN2)
        self.assertEqual([m["id"] for m in got], ["two"])
        q = self.shim.ops("Query")
        self.assertEqual(len(q), 1)
        self.assertEqual(q[0]["body"]["KeyConditionExpression"], "sourceArn = :source")
        self.assertEqual(q[0]["body"]["ExpressionAttributeValues"],
                         {":source": {"S": K_ARN2}})
        self.assertEqual(self.shim.ops("Scan"), [])
        r = self.ok("list", "--source-arn", K_ARN)
        self.assertIn('1 mapping (0 active) in table "%s" for %s' % (self.table, K_ARN),
                      r.stdout.decode())

    def test_list_json_is_a_mapping_file(self):
        self.register("j1", os.path.join(self.tmp.path, "j1.jsonl"), K_ARN, "file",
                      "--active", "true", "--parallel", "false")
        self.register("j2", os.path.join(self.tmp.path, "j2.jsonl"), K_ARN2, "file",
                      "--collapse", "none")
        r = self.ok("list", "--json")
        got = json.loads(r.stdout)
        self.assertEqual(got, [
            {"sourceArn": K_ARN2, "id": "j2", "type": "file",
             "destination": os.path.join(self.tmp.path, "j2.jsonl"), "active": False,
             "collapse": "none"},
            {"sourceArn": K_ARN, "id": "j1", "type": "file",
             "destination": os.path.join(self.tmp.path, "j1.jsonl"), "active": True,
             "collapse": "none", "parallel": False},
        ])
        # the schema's field order, as in the README's table
        self.assertEqual(list(got[1]), ["sourceArn", "id", "type", "destination", "active",
                                        "collapse", "parallel"])
        path = os.path.join(self.tmp.path, "listed-%s.json" % self.table)
        with open(path, "wb") as f:
            f.write(r.stdout)
        v = harness.run_fanout(["validate", "--config", path])
        self.assertEqual(v.returncode, 0, v.stdout.decode() + v.stderr.decode())
        self.assertIn("2 mappings, 2 valid, 0 invalid", v.stdout.decode())
        # and the engine runs with it
        event = harness.kinesis_event([("pk", b'{"n":1}')], arn=K_ARN)
        inv, failed = harness.invoke(self.tmp.path, got, event)
        self.assertEqual(inv.returncode, 0, inv.stderr.decode())
        with open(os.path.join(self.tmp.path, "j1.jsonl")) as f:
            self.assertEqual(json.loads(f.readline())["data"], '{"n":1}')

    def test_list_pagination(self):
        with_source = {K_ARN: 10, K_ARN2: 15}
        for source, n in with_source.items():
            for i in range(n):
                self.ddb.put_item(TableName=self.table, Item={
                    "sourceArn": {"S": source}, "id": {"S": "m%02d" % i},
                    "type": {"S": "file"}, "destination": {"S": "/tmp/m%d" % i},
                    "active": {"BOOL": i % 2 == 0}})
        env = self.env(FANOUT_DDB_PAGE_LIMIT="4")
        got = self.list_json(env=env)
        self.assertEqual(len(got), 25)
        self.assertEqual([(m["sourceArn"], m["id"]) for m in got],
                         sorted((m["sourceArn"], m["id"]) for m in got))
        scans = self.shim.ops("Scan")
        self.assertEqual(len(scans), 7)  # 6 full pages of 4, then 1
        self.assertTrue(all(s["body"]["Limit"] == 4 for s in scans))
        self.assertNotIn("ExclusiveStartKey", scans[0]["body"])
        self.assertTrue(all("ExclusiveStartKey" in s["body"] for s in scans[1:]))
        self.shim.reset()
        got = self.list_json("--source-arn", K_ARN, env=env)
        self.assertEqual([m["id"] for m in got], ["m%02d" % i for i in range(10)])
        self.assertEqual(len(self.shim.ops("Query")), 3)
        r = self.ok("list", env=env)
        self.assertIn("25 mappings (13 active)", r.stdout.decode())
        self.assertIn("expected items per page from 1 to 100000",
                      self.fails(2, "list", env=self.env(FANOUT_DDB_PAGE_LIMIT="0")))

    def test_list_invalid_item(self):
        self.register("good")
        self.ddb.put_item(TableName=self.table, Item={
            "sourceArn": {"S": K_ARN}, "id": {"S": "bad"}, "type": {"S": "file"},
            "destination": {"S": "/tmp/bad"}, "active": {"S": "true"}})
        r = self.ok("list")
        out, err = r.stdout.decode(), r.stderr.decode()
        self.assertRegex(out, r"\nbad +file +INVALID +/tmp/bad ")
        self.assertIn("2 mappings (0 active, some invalid)", out)
        self.assertIn('invalid: mapping "bad" (#0): field "active": expected a boolean', err)
        got = self.list_json()
        self.assertEqual(got[0]["id"], "bad")
        self.assertEqual(got[0]["active"], "true")  # as stored, for validate to report

    def test_list_says_what_invoke_does(self):
        """Items as aws-lambda-fanout's CLI writes them (put-item with BOOL
        and S attributes): list runs the checks invoke runs, the plugin's
        too, and says what invoke does with each one."""
        role = "arn:aws:iam::123456789012:role/fanout"

        def put(id_, type_, dest, active=True, **attrs):
            item = {"sourceArn": {"S": K_ARN}, "id": {"S": id_}, "type": {"S": type_},
                    "destination": {"S": dest}, "active": {"BOOL": active},
                    "collapse": {"S": "none"}}
            for k, v in attrs.items():
                item[k] = {"BOOL": v} if isinstance(v, bool) else {"S": v}
            self.ddb.put_item(TableName=self.table, Item=item)
        put("a-nl", "file", "/tmp/a-nl", appendNewlines=True, parallel=True)
        put("b-lam", "lambda", "arn:aws:lambda:us-east-1:123456789012:function:f",
            collapse="JSON")
        put("c-red", "redis", "127.0.0.1:6379", role=role, externalId="ext-1",
            region="eu-west-1")
        put("d-dest", "flaky", "relative/path")
        put("e-off", "flaky", "relative/path", active=False)
        put("f-gone", "absent", "x")
        r = self.ok("list")
        out, err = r.stdout.decode(), r.stderr.decode()
        rows = {line.split()[0]: line.split() for line in out.splitlines()[1:7]}
        self.assertEqual(rows["a-nl"][2], "true")
        self.assertIn("appendNewlines=true", rows["a-nl"])
        self.assertEqual(rows["b-lam"][2], "true")
        self.assertEqual(rows["c-red"][2], "true")
        self.assertEqual(rows["d-dest"][2], "INVALID")
        self.assertEqual(rows["e-off"][2], "INVALID")
        self.assertEqual(rows["f-gone"][2], "true")
        self.assertIn("6 mappings (4 active, some invalid)", out)
        lines = err.splitlines()
        self.assertEqual(len(lines), 5, err)
        self.assertIn('fanout list: warning: mapping "b-lam" (#', err)
        self.assertIn('field "collapse" ("JSON"): ignored for type "lambda", as '
                      'aws-lambda-fanout ignored it', err)
        self.assertIn('field "role" ("%s"), field "externalId" ("ext-1"), field "region" '
                      '("eu-west-1"): ignored for type "redis"' % role, err)
        self.assertRegex(err, r'invalid: mapping "d-dest": field "destination": expected an '
                         r'absolute path.*invoke reports every record of its source failed')
        self.assertRegex(err, r'invalid: mapping "e-off": .*inactive, so invoke does not use')
        self.assertRegex(err, r'warning: mapping "f-gone": not checked by its plugin: plugin '
                         r'"absent" is not installed here \(plugin "absent" not found')
        self.assertNotIn("a-nl", err)
        # the same verdicts from validate, on the same items listed as a file
        path = os.path.join(self.tmp.path, "listed-%s.json" % self.table)
        with open(path, "wb") as f:
            f.write(self.ok("list", "--json").stdout)
        v = harness.run_fanout(["validate", "--config", path])
        vout = v.stdout.decode()
        self.assertEqual(v.returncode, 2, vout)
        self.assertIn("6 mappings, 3 valid, 3 invalid", vout)
        self.assertEqual(vout.count("warning: "), 2, vout)
        self.assertIn('plugin "absent" not found', vout)

    # ---- table, region, profile, endpoint ----

    def test_table_from_function_and_environment(self):
        self.create_table("clifnTargets")
        self.ok("register", "file", "--function", "clifn", "--source-arn", K_ARN, "--id", "f",
                "--destination", "/tmp/f", table=False)
        self.assertEqual(self.shim.ops("PutItem")[-1]["body"]["TableName"], "clifnTargets")
        got = self.list_json(env=self.env(FANOUT_TABLE="clifnTargets"))
        self.assertEqual(got, [])  # --table of this test wins over FANOUT_TABLE
        r = self.fanout("list", "--json", table=False, env=self.env(FANOUT_TABLE="clifnTargets"))
        self.assertEqual([m["id"] for m in json.loads(r.stdout)], ["f"])
        r = self.fanout("list", "--json", table=False,
                        env=self.env(AWS_LAMBDA_FUNCTION_NAME="clifn"))
        self.assertEqual([m["id"] for m in json.loads(r.stdout)], ["f"])
        # nothing names the table: aws-lambda-fanout's default function
        err = self.fails(1, "list", table=False)
        self.assertIn("no function name provided, using default name 'fanout'", err)
        self.assertIn('the table "fanoutTargets" does not exist', err)
        # the table wins over the function, as in aws-lambda-fanout
        self.assertEqual(self.list_json("--function", "clifn"), [])
        self.assertIn("give the table once",
                      self.fails(2, "list", "--table-arn",
                                 "arn:aws:dynamodb:us-east-1:123456789012:table/t"))
        self.assertIn('"x" is not a DynamoDB table name',
                      self.fails(2, "list", "--table", "x", table=False))

    def test_missing_table(self):
        err = self.fails(1, "list", "--table", "noSuchTable", table=False)
        self.assertIn('the table "noSuchTable" does not exist', err)
        self.assertIn("ResourceNotFoundException", err)
        err = self.fails(1, "register", "file", "--source-arn", K_ARN, "--id", "x",
                         "--destination", "/tmp/x", "--function", "nosuch", table=False)
        self.assertIn('the table "nosuchTargets" does not exist', err)

    def test_region(self):
        self.ok("list", "--region", "eu-west-1")
        self.assertEqual(self.shim.ops("Scan")[-1]["region"], "eu-west-1")
        self.ok("list")
        self.assertEqual(self.shim.ops("Scan")[-1]["region"], harness.REGION)

    def test_endpoint_url(self):
        env = self.env()
        del env["AWS_ENDPOINT_URL_DYNAMODB"]
        self.ok("list", "--endpoint-url", self.shim.url, env=env)
        # the flag wins over the environment's endpoint for the service
        dead = "http://127.0.0.1:%d" % harness.free_port()
        env = self.env(AWS_ENDPOINT_URL_DYNAMODB=dead, FANOUT_AWS_MAX_ATTEMPTS="1")
        self.ok("list", "--endpoint-url", self.shim.url, env=env)
        self.assertEqual(len(self.shim.ops("Scan")), 2)
        err = self.fails(1, "list", env=env)
        self.assertIn("DynamoDB Scan failed", err)
        self.assertIn("--endpoint-url expects http(s)://",
                      self.fails(2, "list", "--endpoint-url", "localhost:8000"))

    def test_profile(self):
        creds = os.path.join(self.tmp.path, "credentials")
        with open(creds, "w") as f:
            f.write("[cli]\naws_access_key_id = AKIDCLIPROFILE000001\n"
                    "aws_secret_access_key = profile-secret\n")
        config = os.path.join(self.tmp.path, "config")
        with open(config, "w") as f:
            f.write("[profile cli]\nregion = ap-southeast-2\n")
        env = self.env(AWS_SHARED_CREDENTIALS_FILE=creds, AWS_CONFIG_FILE=config)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
            del env[k]
        self.ok("list", "--profile", "cli", env=env)
        scan = self.shim.ops("Scan")[-1]
        self.assertEqual(scan["access_key"], "AKIDCLIPROFILE000001")
        self.assertEqual(scan["region"], "ap-southeast-2")
        # no such profile: no credentials, nothing sent
        self.shim.reset()
        r = self.fanout("list", "--profile", "nobody", env=env)
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        self.assertEqual(self.shim.ops(), [])

    def test_exit_status_when_service_unreachable(self):
        dead = "http://127.0.0.1:%d" % harness.free_port()
        env = self.env(AWS_ENDPOINT_URL_DYNAMODB=dead, FANOUT_AWS_MAX_ATTEMPTS="1")
        for args in (["list"], ["activate", "--source-arn", K_ARN, "--id", "a"],
                     ["unregister", "--source-arn", K_ARN, "--id", "a"],
                     ["update", "--source-arn", K_ARN, "--id", "a", "--active", "true"],
                     ["register", "file", "--source-arn", K_ARN, "--id", "a",
                      "--destination", "/tmp/a"]):
            r = self.fanout(*args, env=env)
            self.assertEqual(r.returncode, 1, "%s: %s" % (args, r.stderr.decode()))
            self.assertIn("failed", r.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
