"""The deployment commands end to end (deploy, hook, pause, resume, unhook,
destroy) against loopback endpoints: tests/servers/aws_service.py serves
IAM, STS and Lambda's control plane, checks every request's SigV4 signature
with botocore and every request's parameters against botocore's service
models, and forwards DynamoDB and Kinesis requests (checked the same way)
to dynalite and kinesalite. Each test ends by asserting that no request
failed its signature or model check. The SAM template's contract
(tests/deploy/check_template.py) is compared with what deploy sent, so the
two cannot drift apart. Run by meson with /usr/bin/python3."""

import json
import os
import sys
import unittest
import urllib.request
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.TESTS, "deploy"))
import check_template  # noqa: E402

ACCOUNT = harness.ACCOUNT
# kinesalite's streams are in account 000000000000
STREAM = "arn:aws:kinesis:us-east-1:000000000000:stream/input"
STREAM2 = "arn:aws:kinesis:us-east-1:000000000000:stream/second"
DDB_STREAM = ("arn:aws:dynamodb:us-east-1:%s:table/orders/stream/2026-01-01T00:00:00.000"
              % ACCOUNT)
ROLE_ARN = "arn:aws:iam::%s:role/fanoutRole" % ACCOUNT
FUNCTION_ARN = "arn:aws:lambda:us-east-1:%s:function:fanout" % ACCOUNT
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/%s/orders" % ACCOUNT
QUEUE_ARN = "arn:aws:sqs:us-east-1:%s:orders" % ACCOUNT
TOPIC_ARN = "arn:aws:sns:us-east-1:%s:audit" % ACCOUNT
ENV = "FANOUT_REPORT_BATCH_ITEM_FAILURES"


def ours(arn):
    """An emulator's ARN (account 000000000000) as pairs() reads it."""
    return arn.replace(":000000000000:", ":%s:" % ACCOUNT)


def pairs(statements, key_actions="Action", key_resources="Resource"):
    """{(action, resource)} of policy statements. dynalite and kinesalite
    name every table and stream in account 000000000000: read as ours."""
    out = set()
    for st in statements:
        actions = st[key_actions]
        resources = st[key_resources]
        for a in [actions] if isinstance(actions, str) else actions:
            for r in [resources] if isinstance(resources, str) else resources:
                out.add((a, ours(r)))
    return out


class Deploy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = harness.TempDir()
        cls.ddb = harness.Dynalite()
        cls.kin = harness.Kinesalite()
        cls.aws = harness.AwsService(cls.tmpdir.path, extra_args=[
            "--forward", "dynamodb=" + cls.ddb.url, "--forward", "kinesis=" + cls.kin.url])
        kinesis = harness.botocore_client("kinesis", cls.kin.url)
        for name in ("input", "second"):
            kinesis.create_stream(StreamName=name, ShardCount=1)
        kinesis.close()

    @classmethod
    def tearDownClass(cls):
        cls.aws.stop()
        cls.kin.stop()
        cls.ddb.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        self.tmp = harness.TempDir()
        self.pkg = os.path.join(self.tmp.path, "dist")
        os.makedirs(self.pkg)
        self.package("v1", "plugins-v1")
        self.ddb_client = harness.botocore_client("dynamodb", self.ddb.url)

    def tearDown(self):
        # destroy what a test left, so the next one starts clean
        self.fanout("destroy", "--yes", "--delete-table")
        stats = self.aws.stats()
        self.aws.reset()
        self.ddb_client.close()
        self.tmp.cleanup()
        self.assertEqual(stats["model_errors"], [], "requests refused by botocore's models")
        self.assertEqual(stats["auth_failures"], 0, "requests with a bad signature")

    # ---- helpers ----

    def package(self, code, plugins, arch="x86_64"):
        """dist/ as scripts/package.sh writes it (contents made up)."""
        for name, files in ((("fanout-function-%s.zip" % arch), {"bootstrap": code}),
                            (("fanout-plugins-%s.zip" % arch),
                             {"fanout/plugins/sqs.so": plugins,
                              "fanout/plugins/redis.so": plugins})):
            with zipfile.ZipFile(os.path.join(self.pkg, name), "w") as z:
                for n, data in files.items():
                    info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
                    z.writestr(info, data)

    def env(self):
        url = self.aws.url
        return harness.aws_env(IAM=url, LAMBDA=url, STS=url, DYNAMODB=url, KINESIS=url)

    def fanout(self, *args, stdin=None):
        if args and args[0] == "deploy":
            args = args + ("--package-dir", self.pkg)
        r = harness.run_fanout(list(args), env=self.env(), stdin=stdin)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def ok(self, *args):
        rc, out, err = self.fanout(*args)
        self.assertEqual(rc, 0, "fanout %s: %s%s" % (" ".join(args), out, err))
        return out, err

    def lambda_options(self, **opts):
        req = urllib.request.Request(self.aws.url + "/__lambda", method="POST",
                                     data=json.dumps(opts).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()

    def calls(self, service, operation=None):
        """Requests the server accepted, in arrival order."""
        got = self.aws.received(service, None)
        got = sorted(got, key=lambda e: e["seq"])
        return [e for e in got if operation is None or e["operation"] == operation]

    def ops(self, *services):
        """The operations the services accepted (refusals left out), in order."""
        entries = []
        for s in services:
            entries += [e for e in self.calls(s) if e.get("status", 200) < 400]
        return [e["operation"] for e in sorted(entries, key=lambda e: e["seq"])]

    def lambda_params(self, operation):
        return [e["params"] for e in self.calls("lambda_ctl", operation)]

    def policy(self):
        puts = self.calls("iam", "PutRolePolicy")
        self.assertTrue(puts, "no PutRolePolicy")
        return puts[-1]["PolicyDocument"]

    def config(self):
        c = harness.botocore_client("lambda", self.aws.url)
        try:
            return c.get_function_configuration(FunctionName="fanout")
        finally:
            c.close()

    def mappings(self):
        c = harness.botocore_client("lambda", self.aws.url)
        try:
            return c.list_event_source_mappings(FunctionName="fanout")["EventSourceMappings"]
        finally:
            c.close()

    # ---- deploy ----

    def test_deploy_twice_then_change(self):
        out, err = self.ok("deploy", "--function", "fanout")
        for line in ("table fanoutTargets: created", "role fanoutRole: created",
                     "layer fanout-plugins: version 1 published", "function fanout: created",
                     FUNCTION_ARN):
            self.assertIn(line, out)
        # the order the spec gives: table, role and its policy, layer, function
        order = [o for o in self.ops("iam", "lambda_ctl")
                 if o in ("CreateRole", "PutRolePolicy", "PublishLayerVersion",
                          "CreateFunction")]
        self.assertEqual(order, ["CreateRole", "PutRolePolicy", "PublishLayerVersion",
                                 "CreateFunction"])
        table = self.ddb_client.describe_table(TableName="fanoutTargets")["Table"]
        self.assertEqual(table["KeySchema"], [{"AttributeName": "sourceArn", "KeyType": "HASH"},
                                              {"AttributeName": "id", "KeyType": "RANGE"}])
        self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        role = self.calls("iam", "CreateRole")[0]
        self.assertEqual(role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
                         {"Service": "lambda.amazonaws.com"})
        fn = self.lambda_params("CreateFunction")[0]
        self.assertEqual((fn["Runtime"], fn["Handler"], fn["Role"], fn["MemorySize"],
                          fn["Timeout"], fn["Architectures"]),
                         ("provided.al2023", "bootstrap", ROLE_ARN, 128, 30, ["x86_64"]))
        self.assertEqual(fn["Environment"]["Variables"]["FANOUT_TABLE"], "fanoutTargets")
        layer = self.lambda_params("PublishLayerVersion")[0]
        self.assertEqual(fn["Layers"], ["arn:aws:lambda:us-east-1:%s:layer:fanout-plugins:1"
                                        % ACCOUNT])
        self.assertEqual(layer["CompatibleRuntimes"], ["provided.al2023"])
        # the waiter polled until Active
        self.assertEqual(self.config()["State"], "Active")

        # the SAM template describes the same resources (no drift)
        contract = check_template.deploy_contract()
        self.assertEqual(contract["table"]["key_schema"], table["KeySchema"])
        self.assertEqual(contract["table"]["billing_mode"], "PAY_PER_REQUEST")
        self.assertEqual(contract["role"]["trust_policy"], role["AssumeRolePolicyDocument"])
        self.assertEqual(contract["role"]["name"], role["RoleName"])
        f = contract["function"]
        self.assertEqual((f["runtime"], f["handler"], f["memory_size"], f["timeout"],
                          f["architectures"]),
                         (fn["Runtime"], fn["Handler"], fn["MemorySize"], fn["Timeout"],
                          fn["Architectures"]))
        self.assertEqual(contract["layer"]["compatible_runtimes"], layer["CompatibleRuntimes"])
        self.assertEqual(contract["layer"]["name"], layer["LayerName"])
        self.assertEqual(pairs(contract["role"]["statements"], "Actions", "Resources"),
                         pairs(self.policy()["Statement"]))

        # second run: nothing is created, published or updated
        before = len(self.ops("iam", "lambda_ctl"))
        out, err = self.ok("deploy", "--function", "fanout")
        new_ops = self.ops("iam", "lambda_ctl")[before:]
        for op in new_ops:
            self.assertFalse(op.startswith(("Create", "Update", "Put", "Publish", "Attach",
                                            "Delete")), "second deploy sent %s" % op)
        for line in ("table fanoutTargets: unchanged", "role fanoutRole: unchanged",
                     "layer fanout-plugins: unchanged", "function fanout: unchanged"):
            self.assertIn(line, out)

        # new code and plugins, another memory size: a new layer version,
        # the code, then the configuration, each update waited for (the
        # server refuses an update while one is in progress)
        self.lambda_options(updatePolls=2)
        self.package("v2", "plugins-v2")
        out, err = self.ok("deploy", "--function", "fanout", "--memory", "256")
        self.assertEqual(len(self.lambda_params("PublishLayerVersion")), 2)
        self.assertEqual(len(self.lambda_params("UpdateFunctionCode")), 1)
        upd = self.lambda_params("UpdateFunctionConfiguration")
        self.assertEqual(len(upd), 1)
        self.assertEqual(upd[0]["MemorySize"], 256)
        self.assertEqual(upd[0]["Layers"], ["arn:aws:lambda:us-east-1:%s:layer:"
                                            "fanout-plugins:2" % ACCOUNT])
        self.assertNotIn("Timeout", upd[0])     # not given: kept
        cfg = self.config()
        self.assertEqual((cfg["MemorySize"], cfg["Timeout"], cfg["LastUpdateStatus"]),
                         (256, 30, "Successful"))
        self.assertIn("waiting for function fanout", err)

    def test_pending_then_active(self):
        self.lambda_options(pendingPolls=3)
        out, err = self.ok("deploy", "--function", "fanout")
        self.assertIn("State Pending", err)
        gets = self.calls("lambda_ctl", "GetFunctionConfiguration")
        self.assertGreaterEqual(len(gets), 4)
        self.assertEqual(self.config()["State"], "Active")

    def test_failed_creation_is_reported(self):
        self.lambda_options(failCreate={"function": "fanout", "reasonCode": "InvalidZipFileException",
                                        "reason": "bootstrap is not executable"})
        rc, out, err = self.fanout("deploy", "--function", "fanout")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("InvalidZipFileException", err)
        self.assertIn("bootstrap is not executable", err)

    def test_role_propagation_is_waited_for(self):
        self.lambda_options(roleDelayMs=1500)
        out, err = self.ok("deploy", "--function", "fanout")
        statuses = [e["status"] for e in self.calls("lambda_ctl", "CreateFunction")]
        self.assertIn(400, statuses)        # refused while the role was too new
        self.assertEqual(statuses[-1], 201)
        self.assertIn("cannot be assumed by Lambda", err)

    def test_vpc_and_exec_role_arn(self):
        rc, out, err = self.fanout("deploy", "--function", "fanout", "--subnet",
                                   "subnet-0123abcd,subnet-4567abcd")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--security-group", err)
        self.ok("deploy", "--function", "fanout", "--subnet", "subnet-0123abcd,subnet-4567abcd",
                "--security-group", "sg-0123abcd")
        fn = self.lambda_params("CreateFunction")[0]
        self.assertEqual(fn["VpcConfig"], {"SubnetIds": ["subnet-0123abcd", "subnet-4567abcd"],
                                           "SecurityGroupIds": ["sg-0123abcd"]})
        attached = self.calls("iam", "AttachRolePolicy")
        self.assertEqual([a["PolicyArn"] for a in attached],
                         ["arn:aws:iam::aws:policy/service-role/"
                          "AWSLambdaVPCAccessExecutionRole"])
        self.ok("destroy", "--function", "fanout", "--yes")
        self.aws.reset()
        # a role given by ARN is used as it is: never created, changed or deleted
        iam = harness.botocore_client("iam", self.aws.url)
        mine = iam.create_role(RoleName="mine", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
                "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        mark = len(self.ops("iam"))
        self.ok("deploy", "--function", "fanout", "--exec-role-arn", mine)
        self.assertEqual(self.lambda_params("CreateFunction")[0]["Role"], mine)
        self.assertNotIn("CreateRole", self.ops("iam")[mark:])
        self.assertEqual(self.calls("iam", "PutRolePolicy"), [])
        self.ok("destroy", "--function", "fanout", "--yes")
        self.assertEqual(self.calls("iam", "DeleteRole"), [])
        self.assertEqual(iam.get_role(RoleName="mine")["Role"]["Arn"], mine)
        iam.delete_role(RoleName="mine")
        iam.close()

    def test_plugin_layers_and_arm64(self):
        for t in ("sqs", "redis"):
            with zipfile.ZipFile(os.path.join(self.pkg, "fanout-plugin-%s-arm64.zip" % t),
                                 "w") as z:
                z.writestr("fanout/plugins/%s.so" % t, t)
        self.package("arm", "plugins-arm", arch="arm64")
        rc, out, err = self.fanout("deploy", "--function", "fanout", "--arch", "arm64",
                                   "--plugins", "sqs,redis,nosuch")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("nosuch", err)
        self.ok("deploy", "--function", "fanout", "--arch", "arm64", "--plugins", "sqs,redis")
        layers = self.lambda_params("PublishLayerVersion")
        self.assertEqual(sorted(l["LayerName"] for l in layers),
                         ["fanout-plugin-redis", "fanout-plugin-sqs"])
        for l in layers:
            self.assertEqual(l["CompatibleArchitectures"], ["arm64"])
        fn = self.lambda_params("CreateFunction")[0]
        self.assertEqual(fn["Architectures"], ["arm64"])
        self.assertEqual(len(fn["Layers"]), 2)
        # more layers than Lambda takes: refused before any call
        mark = len(self.ops("iam", "lambda_ctl"))
        rc, out, err = self.fanout("deploy", "--function", "fanout", "--plugins",
                                   "sqs,sns,kinesis,firehose,lambda,redis")
        self.assertEqual(rc, 2, out + err)
        self.assertEqual(self.ops("iam", "lambda_ctl")[mark:], [])

    def test_missing_package(self):
        os.unlink(os.path.join(self.pkg, "fanout-function-x86_64.zip"))
        rc, out, err = self.fanout("deploy", "--function", "fanout", "--arch", "x86_64")
        self.assertNotEqual(rc, 0)
        self.assertIn("scripts/package.sh --arch x86_64", err)
        self.assertEqual(self.ops("iam", "lambda_ctl"), [])

    # ---- hook, pause, resume, unhook ----

    def register(self, id_, type_, destination, source=STREAM):
        self.ok("register", type_, "--function", "fanout", "--source-arn", source, "--id", id_,
                "--destination", destination, "--active", "true")

    def test_hook_pause_resume_unhook(self):
        self.ok("deploy", "--function", "fanout")
        self.register("orders", "sqs", QUEUE_URL)
        self.register("audit", "sns", TOPIC_ARN)
        # Lambda checks the role reads the stream, and IAM takes a moment
        self.lambda_options(policyDelayMs=1000, esmPolls=2)
        out, err = self.ok("hook", "--function", "fanout", "--source-type", "kinesis",
                           "--source", "input", "--report-batch-item-failures",
                           "--batch-size", "500")
        self.assertIn("created event source mapping", out)
        creates = self.calls("lambda_ctl", "CreateEventSourceMapping")
        self.assertEqual([e["status"] for e in creates][-2:], [400, 202])
        esm = creates[-1]["params"]
        self.assertEqual((esm["EventSourceArn"], esm["FunctionResponseTypes"], esm["BatchSize"],
                          esm["StartingPosition"]),
                         (STREAM, ["ReportBatchItemFailures"], 500, "LATEST"))
        # the role could read the stream before the mapping was asked for;
        # the variable turned on only after the mapping expected it
        order = [o for o in self.ops("iam", "lambda_ctl")
                 if o in ("PutRolePolicy", "CreateEventSourceMapping",
                          "UpdateFunctionConfiguration")]
        self.assertEqual(order[-3:], ["PutRolePolicy", "CreateEventSourceMapping",
                                      "UpdateFunctionConfiguration"])
        self.assertEqual(self.config()["Environment"]["Variables"][ENV], "true")
        doc = self.policy()
        got = pairs(doc["Statement"])
        self.assertIn(("kinesis:GetRecords", ours(STREAM)), got)
        self.assertIn(("sqs:SendMessage", QUEUE_ARN), got)
        self.assertIn(("sns:Publish", TOPIC_ARN), got)
        # the template, given the same source and targets, grants the same
        contract = check_template.deploy_contract(parameters={
            "SourceType": "kinesis", "SourceArn": ours(STREAM), "ReportBatchItemFailures": "true",
            "SqsQueueArns": QUEUE_ARN, "SnsTopicArns": TOPIC_ARN})
        self.assertEqual(pairs(contract["role"]["statements"], "Actions", "Resources"), got)
        self.assertEqual(contract["event_source"]["function_response_types"],
                         esm["FunctionResponseTypes"])
        self.assertEqual(contract["function"]["environment"][ENV], "true")

        # hook again: an update of what changed only
        out, err = self.ok("hook", "--function", "fanout", "--source-arn", STREAM,
                           "--batch-size", "100")
        upd = self.lambda_params("UpdateEventSourceMapping")
        self.assertEqual(len(upd), 1)
        self.assertEqual({k: v for k, v in upd[0].items() if k != "UUID"}, {"BatchSize": 100})
        out, err = self.ok("hook", "--function", "fanout", "--source-arn", STREAM)
        self.assertIn("up to date", out)

        # pause and resume, each waited for
        out, err = self.ok("pause", "--function", "fanout", "--source-type", "kinesis",
                           "--source", "input")
        self.assertEqual([m["State"] for m in self.mappings()], ["Disabled"])
        out, err = self.ok("pause", "--function", "fanout", "--source-arn", STREAM)
        self.assertIn("already", out)
        self.ok("resume", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual([m["State"] for m in self.mappings()], ["Enabled"])

        # a second source without reports: the variable goes "false" first
        mark = len(self.ops("lambda_ctl"))
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM2)
        order = [o for o in self.ops("lambda_ctl")[mark:]
                 if o in ("CreateEventSourceMapping", "UpdateFunctionConfiguration")]
        self.assertEqual(order, ["UpdateFunctionConfiguration", "CreateEventSourceMapping"])
        self.assertEqual(self.config()["Environment"]["Variables"][ENV], "false")
        # ... and back to "true" once that mapping is gone
        mark = len(self.ops("lambda_ctl"))
        self.ok("unhook", "--function", "fanout", "--source-arn", STREAM2)
        order = [o for o in self.ops("lambda_ctl")[mark:]
                 if o in ("DeleteEventSourceMapping", "UpdateFunctionConfiguration")]
        self.assertEqual(order, ["DeleteEventSourceMapping", "UpdateFunctionConfiguration"])
        self.assertEqual(self.config()["Environment"]["Variables"][ENV], "true")
        self.assertNotIn(("kinesis:GetRecords", ours(STREAM2)), pairs(self.policy()["Statement"]))

        # unhook: gone, and the role no longer reads the stream
        self.ok("unhook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(self.mappings(), [])
        self.assertNotIn(("kinesis:GetRecords", ours(STREAM)), pairs(self.policy()["Statement"]))
        rc, out, err = self.fanout("unhook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertIn(STREAM, err)

    def test_hook_dynamodb_stream(self):
        self.ok("deploy", "--function", "fanout")
        self.ok("hook", "--function", "fanout", "--source-type", "dynamodb", "--source-arn",
                DDB_STREAM, "--starting-position", "TRIM_HORIZON")
        esm = self.lambda_params("CreateEventSourceMapping")[-1]
        self.assertEqual((esm["EventSourceArn"], esm["StartingPosition"]),
                         (DDB_STREAM, "TRIM_HORIZON"))
        self.assertIn(("dynamodb:GetRecords", DDB_STREAM), pairs(self.policy()["Statement"]))
        # a Kinesis ARN named as a DynamoDB source is refused before any call
        rc, out, err = self.fanout("hook", "--function", "fanout", "--source-type", "dynamodb",
                                   "--source-arn", STREAM)
        self.assertEqual(rc, 2, out + err)
        # a table without a stream: how to enable it
        self.ddb_client.create_table(
            TableName="plain", AttributeDefinitions=[{"AttributeName": "k",
                                                      "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST")
        rc, out, err = self.fanout("hook", "--function", "fanout", "--source-type", "dynamodb",
                                   "--source", "plain")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("StreamEnabled=true", err)

    # ---- denied calls ----

    def test_denied_calls_name_the_permission(self):
        self.aws.faults({"service": "iam", "kind": "deny", "operation": "CreateRole"})
        rc, out, err = self.fanout("deploy", "--function", "fanout")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("missing permission iam:CreateRole on %s" % ROLE_ARN, err)
        self.assertEqual(self.calls("lambda_ctl", "CreateFunction"), [])
        self.ok("deploy", "--function", "fanout")
        self.aws.faults({"service": "lambda_ctl", "kind": "deny",
                         "operation": "CreateEventSourceMapping"})
        rc, out, err = self.fanout("hook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("missing permission lambda:CreateEventSourceMapping", err)
        self.aws.faults({"service": "dynamodb", "kind": "deny", "operation": "Scan"})
        rc, out, err = self.fanout("deploy", "--function", "fanout")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("missing permission dynamodb:Scan", err)
        self.assertNotIn(harness.SECRET_KEY, out + err)

    # ---- servers that misbehave ----

    def test_throttles_and_errors_are_retried(self):
        self.aws.faults([{"service": "lambda_ctl", "kind": "throttle",
                          "operation": "CreateFunction"},
                         {"service": "lambda_ctl", "kind": "error500",
                          "operation": "PublishLayerVersion"},
                         {"service": "iam", "kind": "throttle", "operation": "CreateRole"}])
        self.ok("deploy", "--function", "fanout")
        self.assertEqual(self.config()["State"], "Active")

    def test_answers_that_prove_nothing(self):
        self.ok("deploy", "--function", "fanout")
        # a listing without its list is not "no mappings"
        self.aws.faults({"service": "lambda_ctl", "kind": "mangle", "count": -1,
                         "operation": "ListEventSourceMappings",
                         "ops": [{"op": "delete", "path": "EventSourceMappings"}]})
        rc, out, err = self.fanout("unhook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("no EventSourceMappings list", err)
        rc, out, err = self.fanout("hook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(self.calls("lambda_ctl", "CreateEventSourceMapping"), [])
        self.aws._json("DELETE", "/__faults")
        # a marker that never ends the listing: the first page's marker
        # is refused by the server on the next request; repeated by the
        # server itself, it is caught as a repeat. Either way, no loop.
        self.aws.faults({"service": "lambda_ctl", "kind": "mangle", "count": -1,
                         "operation": "ListEventSourceMappings",
                         "ops": [{"op": "set", "path": "NextMarker", "value": "again"}]})
        rc, out, err = self.fanout("pause", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("listing the event source mappings of fanout", err)
        self.aws._json("DELETE", "/__faults")

    def other_function_mapping(self, source):
        """Function "other" (not fanout's) with a mapping of `source`: the
        mapping as ListEventSourceMappings lists it."""
        c = harness.botocore_client("lambda", self.aws.url)
        try:
            with open(os.path.join(self.pkg, "fanout-function-x86_64.zip"), "rb") as f:
                c.create_function(FunctionName="other", Runtime="provided.al2023",
                                  Handler="bootstrap", Role=ROLE_ARN, Code={"ZipFile": f.read()})
            c.create_event_source_mapping(FunctionName="other", EventSourceArn=source,
                                          StartingPosition="LATEST")
            esm, = c.list_event_source_mappings(FunctionName="other")["EventSourceMappings"]
        finally:
            c.close()
        return {k: esm[k] for k in ("UUID", "FunctionArn", "EventSourceArn", "State")}

    def other_mapping_left(self, uuid):
        c = harness.botocore_client("lambda", self.aws.url)
        try:
            return c.get_event_source_mapping(UUID=uuid)["UUID"] == uuid
        finally:
            c.close()

    def test_a_mapping_of_another_function_is_not_touched(self):
        # ListEventSourceMappings?FunctionName=fanout answers another
        # function's mapping of the same stream (an answer to another
        # request, a proxy that drops the filter): unhook and destroy
        # must not delete it, and say whose it is
        self.ok("deploy", "--function", "fanout")
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM)
        other = self.other_function_mapping(STREAM)
        self.aws.faults({"service": "lambda_ctl", "kind": "mangle", "count": -1,
                         "operation": "ListEventSourceMappings",
                         "ops": [{"op": "set", "path": "EventSourceMappings",
                                  "value": [other]}]})
        expected = ("event source mapping %s of function %s, expected one of function fanout"
                    % (other["UUID"], other["FunctionArn"]))
        for args in (("unhook", "--function", "fanout", "--source-arn", STREAM),
                     ("pause", "--function", "fanout", "--source-arn", STREAM),
                     ("destroy", "--function", "fanout", "--yes")):
            rc, out, err = self.fanout(*args)
            self.assertEqual(rc, 1, out + err)
            self.assertIn(expected, err)
            self.assertTrue(self.other_mapping_left(other["UUID"]), args)
        self.assertEqual([o for o in self.ops("lambda_ctl") if o.startswith(("Delete", "Update"))
                          and o != "UpdateFunctionConfiguration"], [])
        self.assertEqual(self.config()["State"], "Active")
        # fanout's mapping of another source, in a listing asked for STREAM's
        self.aws._json("DELETE", "/__faults")
        stray = {"UUID": "0f0f0f0f-0000-4000-8000-000000000000", "FunctionArn": FUNCTION_ARN,
                 "EventSourceArn": STREAM2, "State": "Enabled"}
        self.aws.faults({"service": "lambda_ctl", "kind": "mangle", "count": -1,
                         "operation": "ListEventSourceMappings",
                         "ops": [{"op": "set", "path": "EventSourceMappings",
                                  "value": [stray]}]})
        rc, out, err = self.fanout("unhook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("event source mapping %s of source %s, expected one of source %s"
                      % (stray["UUID"], STREAM2, STREAM), err)
        self.aws._json("DELETE", "/__faults")
        out, err = self.ok("destroy", "--function", "fanout", "--yes")
        self.assertTrue(self.other_mapping_left(other["UUID"]))

    def test_unhook_a_mapping_still_changing(self):
        # a mapping still changing (paused by another tool a moment ago):
        # unhook waits for it to settle, then deletes that mapping, by its UUID
        self.ok("deploy", "--function", "fanout")
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM)
        uuid, = [m["UUID"] for m in self.mappings()]
        self.lambda_options(esmPolls=3)
        c = harness.botocore_client("lambda", self.aws.url)
        try:
            self.assertEqual(c.update_event_source_mapping(UUID=uuid, Enabled=False)["State"],
                             "Disabling")
        finally:
            c.close()
        out, err = self.ok("unhook", "--function", "fanout", "--source-arn", STREAM)
        self.assertIn("deleted event source mapping %s for %s" % (uuid, STREAM), out)
        self.assertEqual([e["params"]["UUID"] for e in
                          self.calls("lambda_ctl", "DeleteEventSourceMapping")], [uuid])
        self.assertEqual(self.mappings(), [])

    def test_a_mapping_read_answered_for_another_mapping(self):
        # unhook waits for fanout's changing mapping; GetEventSourceMapping
        # answers another function's mapping: unhook stops, named, and
        # deletes neither (before, it deleted the one the answer named)
        self.ok("deploy", "--function", "fanout")
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM)
        uuid, = [m["UUID"] for m in self.mappings()]
        other = self.other_function_mapping(STREAM)
        self.lambda_options(esmPolls=3)
        c = harness.botocore_client("lambda", self.aws.url)
        try:
            c.update_event_source_mapping(UUID=uuid, Enabled=False)
        finally:
            c.close()
        self.aws.faults({"service": "lambda_ctl", "kind": "mangle", "count": -1,
                         "operation": "GetEventSourceMapping",
                         "ops": [{"op": "set", "path": "UUID", "value": other["UUID"]}]})
        rc, out, err = self.fanout("unhook", "--function", "fanout", "--source-arn", STREAM)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("reading event source mapping %s: the answer is for event source mapping "
                      "\"%s\", expected %s" % (uuid, other["UUID"], uuid), err)
        self.assertEqual(self.calls("lambda_ctl", "DeleteEventSourceMapping"), [])
        self.aws._json("DELETE", "/__faults")
        self.assertTrue(self.other_mapping_left(other["UUID"]))
        self.assertEqual([m["UUID"] for m in self.mappings()], [uuid])

    def destroy_stops_at_a_repeat(self, operation, listing):
        """destroy with repeatMarker on: it fails at the second page of
        `operation`, naming the listing. The operations it sent."""
        mark = len(self.calls("lambda_ctl"))
        rc, out, err = self.fanout("destroy", "--function", "fanout", "--yes")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("fanout destroy: %s: the listing's NextMarker repeats; stopped"
                      % listing, err)
        sent = [e["operation"] for e in self.calls("lambda_ctl")[mark:]]
        self.assertEqual(sent.count(operation), 2, sent)
        return sent

    def test_a_repeated_marker_stops_the_listing(self):
        # a real marker that the service hands back again: destroy stops
        # with the listing named, at the second page
        self.ok("deploy", "--function", "fanout")
        self.package("v2", "plugins-v2")
        self.ok("deploy", "--function", "fanout")     # layer version 2
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM)
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM2)
        self.lambda_options(pageSize=1, repeatMarker=True)
        sent = self.destroy_stops_at_a_repeat("ListEventSourceMappings",
                                              "listing the event source mappings of fanout")
        self.assertEqual([o for o in sent if o.startswith("Delete")], [])
        # the mappings gone, the layer's versions are the listing that repeats
        self.lambda_options(repeatMarker=False)
        for source in (STREAM, STREAM2):
            self.ok("unhook", "--function", "fanout", "--source-arn", source)
        self.lambda_options(repeatMarker=True)
        self.destroy_stops_at_a_repeat("ListLayerVersions",
                                       "listing the versions of layer fanout-plugins")
        self.assertNotIn("DeleteRole", self.ops("iam"))
        # the service fixed, destroy ends what it began (the two pages'
        # versions were deleted before the repeat was seen)
        self.lambda_options(repeatMarker=False)
        out, err = self.ok("destroy", "--function", "fanout", "--yes")
        self.assertIn("layers fanout-plugin*: none", out)
        self.assertIn("role fanoutRole: deleted", out)

    def test_a_function_that_never_settles(self):
        self.lambda_options(pendingPolls=100000)
        env = self.env()
        env["FANOUT_DEPLOY_WAIT_SECONDS"] = "2"
        r = harness.run_fanout(["deploy", "--function", "fanout", "--package-dir", self.pkg],
                               env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn("State Pending", err)
        self.lambda_options(pendingPolls=0)

    # ---- destroy ----

    def test_destroy(self):
        self.ok("deploy", "--function", "fanout")
        self.ok("hook", "--function", "fanout", "--source-arn", STREAM)
        # no terminal and no --yes: refused, nothing deleted
        rc, out, err = self.fanout("destroy", "--function", "fanout", stdin=b"")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--yes", err)
        self.assertEqual(self.config()["State"], "Active")
        mark = len(self.ops("iam", "lambda_ctl"))
        out, err = self.ok("destroy", "--function", "fanout", "--yes")
        done = [o for o in self.ops("iam", "lambda_ctl")[mark:] if o.startswith("Delete")]
        # the mappings first, then the function, its layers, the role
        self.assertEqual(done[0], "DeleteEventSourceMapping")
        self.assertLess(done.index("DeleteFunction"), done.index("DeleteLayerVersion"))
        self.assertIn("DeleteRolePolicy", done)
        self.assertEqual(done[-1], "DeleteRole")
        self.assertEqual(self.mappings(), [])
        # the table is kept unless --delete-table
        self.assertEqual(self.ddb_client.describe_table(
            TableName="fanoutTargets")["Table"]["TableStatus"], "ACTIVE")
        self.ok("destroy", "--function", "fanout", "--yes")   # twice: nothing left, fine
        out, err = self.ok("destroy", "--function", "fanout", "--yes", "--delete-table")
        self.assertIn("table fanoutTargets: deleted", out, out + err)
        with self.assertRaises(Exception):
            self.ddb_client.describe_table(TableName="fanoutTargets")


if __name__ == "__main__":
    unittest.main(verbosity=2)
