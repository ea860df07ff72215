"""aws-lambda-fanout's command lines against fanout's CLI (engine/cli/cli.c,
engine/cli/cli_resolve.c): the commands of the original's README, unchanged,
with its short names resolved by the same service calls, checked by the
items written to the table and the lookups the servers saw.

Servers on loopback: dynalite (the table), kinesalite (sources, and the
Kinesis destination's DescribeStream), local-aws-sqs (GetQueueUrl), and
tests/servers/aws_service.py for SNS ListTopics, Firehose
DescribeDeliveryStream, Lambda GetFunction, IoT DescribeEndpoint, the
Elasticsearch domain API and ElastiCache, every request's SigV4 checked.
Run by meson with /usr/bin/python3.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ACCOUNT = harness.ACCOUNT
TOPIC = "arn:aws:sns:us-east-1:%s:alerts" % ACCOUNT
ES_HOST = "search-logs-abc123def.us-east-1.es.amazonaws.com"
VPC_HOST = "vpc-private-abc123def.us-east-1.es.amazonaws.com"
IOT_HOST = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
MEMCACHED = "sessions.abc123.cfg.use1.cache.amazonaws.com:11211"
REDIS = "cache.abc123.ng.0001.use1.cache.amazonaws.com:6379"


class CompatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.TempDir()
        cls.dynalite = harness.Dynalite()
        cls.kinesalite = harness.Kinesalite()
        cls.sqs = harness.SqsServer()
        # 150 topics before the one looked up: ListTopics takes two pages
        topics = ["arn:aws:sns:us-east-1:%s:aaa-filler-%03d" % (ACCOUNT, i) for i in range(150)]
        cls.aws = harness.AwsService(cls.tmp.path, resources={
            "firehose": ["deliveryStream"],
            "sns": topics + [TOPIC, "arn:aws:sns:us-east-1:%s:alerts-old" % ACCOUNT,
                            "arn:aws:sns:us-east-1:%s:aa-xalerts" % ACCOUNT],
            "lambda": ["targetFunction"],
            "es": {"logs": ES_HOST, "private": {"vpc": VPC_HOST}},
            "memcached": {"sessions": MEMCACHED},
            "redis": {"cache": REDIS},
            "iotEndpoint": IOT_HOST})
        cls.ddb = harness.botocore_client("dynamodb", cls.dynalite.url)
        kin = harness.botocore_client("kinesis", cls.kinesalite.url)
        for name in ("inputStream", "targetStream"):
            kin.create_stream(StreamName=name, ShardCount=1)
        cls.input_arn = None
        for _ in range(400):
            d = kin.describe_stream_summary(StreamName="inputStream")
            s = kin.describe_stream_summary(StreamName="targetStream")
            if (d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" and
                    s["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"):
                cls.input_arn = d["StreamDescriptionSummary"]["StreamARN"]
                break
            harness.time.sleep(0.05)
        kin.close()
        assert cls.input_arn, "kinesalite streams did not become ACTIVE"
        sqs = harness.botocore_client("sqs", cls.sqs.url)
        cls.queue_url = sqs.create_queue(QueueName="targetQueue")["QueueUrl"]
        sqs.close()

    @classmethod
    def tearDownClass(cls):
        cls.ddb.close()
        for s in (cls.aws, cls.sqs, cls.kinesalite, cls.dynalite):
            s.stop()
        cls.tmp.cleanup()

    table_count = 0

    def setUp(self):
        # the original's default table for --function fanout, fresh per test
        CompatTest.table_count += 1
        self.function = "fanout%02d" % CompatTest.table_count
        self.table = self.function + "Targets"
        self.ddb.create_table(
            TableName=self.table,
            AttributeDefinitions=[{"AttributeName": "sourceArn", "AttributeType": "S"},
                                  {"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "sourceArn", "KeyType": "HASH"},
                       {"AttributeName": "id", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")
        for _ in range(400):
            if self.ddb.describe_table(TableName=self.table)["Table"]["TableStatus"] == "ACTIVE":
                break
            harness.time.sleep(0.05)
        self.aws.reset()

    def env(self, **extra):
        e = harness.aws_env(DYNAMODB=self.dynalite.url, KINESIS=self.kinesalite.url,
                            SQS=self.sqs.url, SNS=self.aws.url, FIREHOSE=self.aws.url,
                            LAMBDA=self.aws.url, IOT=self.aws.url, ES=self.aws.url,
                            ELASTICACHE=self.aws.url)
        e["FANOUT_AWS_MAX_ATTEMPTS"] = "2"
        e.update(extra)
        return e

    def run_cli(self, *args, env=None):
        return harness.run_fanout(list(args), env=env or self.env())

    def ok(self, *args, env=None):
        r = self.run_cli(*args, env=env)
        self.assertEqual(r.returncode, 0, "%s\nstdout: %s\nstderr: %s"
                         % (args, r.stdout.decode(), r.stderr.decode()))
        return r

    def fails(self, status, *args, env=None):
        r = self.run_cli(*args, env=env)
        self.assertEqual(r.returncode, status, "%s\nstdout: %s\nstderr: %s"
                         % (args, r.stdout.decode(), r.stderr.decode()))
        return r.stderr.decode()

    def register(self, type_, dest, id_, *extra, env=None):
        """The README's register line: --function, --source-type, --source."""
        return self.ok("register", type_, "--function", self.function, "--source-type",
                       "kinesis", "--source", "inputStream", "--id", id_, "--destination",
                       dest, *extra, env=env)

    def item(self, id_):
        got = self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                Key={"sourceArn": {"S": self.input_arn}, "id": {"S": id_}})
        return got.get("Item")

    def items(self):
        return self.ddb.scan(TableName=self.table, ConsistentRead=True)["Items"]

    def lookups(self, service):
        """Operation -> count of the requests the aws_service saw for `service`."""
        by = self.aws.stats()["by_service"].get(service, {})
        return {op: v["count"] for op, v in by.items()}

    def expect(self, id_, type_, destination):
        self.assertEqual(self.item(id_), {
            "sourceArn": {"S": self.input_arn}, "id": {"S": id_}, "type": {"S": type_},
            "destination": {"S": destination}, "active": {"BOOL": False},
            "collapse": {"S": "none"}})

    # ---- the README's command lines ----

    def test_readme_register_lambda(self):
        # ./fanout register lambda --function fanout --source-type kinesis
        #   --source inputStream --id target1 --destination targetFunction
        self.register("lambda", "targetFunction", "target1")
        self.expect("target1", "lambda", "targetFunction")
        self.assertEqual(self.lookups("lambda"), {"GetFunction": 1})

    def test_readme_list_update_activate_deactivate_unregister(self):
        self.register("lambda", "targetFunction", "target1")
        src = ["--function", self.function, "--source-type", "kinesis", "--source",
               "inputStream"]
        r = self.ok("list", *src)
        self.assertIn("target1", r.stdout.decode())
        self.ok("update", *src, "--id", "target1", "--parallel", "false")
        self.assertEqual(self.item("target1")["parallel"], {"BOOL": False})
        self.ok("activate", *src, "--id", "target1")
        self.assertEqual(self.item("target1")["active"], {"BOOL": True})
        self.ok("deactivate", *src, "--id", "target1")
        self.assertEqual(self.item("target1")["active"], {"BOOL": False})
        self.ok("unregister", *src, "--id", "target1")
        self.assertEqual(self.items(), [])

    # ---- each type's short name ----

    def test_sqs_queue_name_to_url(self):
        self.register("sqs", "targetQueue", "q")
        self.expect("q", "sqs", self.queue_url)

    def test_sqs_queue_url_of_another_queue_refused(self):
        """A GetQueueUrl answer naming another queue (an answer to another
        request, a caching proxy) is not stored: the target would send to
        that queue."""
        other = self.queue_url.rsplit("/", 1)[0] + "/otherQueue"
        for url in (other, other + "/targetQueue?x", self.queue_url + "x",
                    "targetQueue", self.queue_url.split("://")[1]):
            self.sqs.answer_queue_url(url)
            try:
                err = self.fails(1, "register", "sqs", "--function", self.function,
                                 "--source-arn", self.input_arn, "--id", "q",
                                 "--destination", "targetQueue")
            finally:
                self.sqs.answer_queue_url(None)
            self.assertIn("SQS GetQueueUrl", err)
            self.assertIn("not the URL of queue \"targetQueue\"", err)
            self.assertEqual(self.items(), [], url)

    def test_sns_topic_name_to_arn_over_pages(self):
        self.register("sns", "alerts", "t")
        self.expect("t", "sns", TOPIC)
        # 152 topics, 100 a page: the name is on the second
        self.assertEqual(self.lookups("sns"), {"ListTopics": 2})

    def test_kinesis_stream_name_checked(self):
        self.register("kinesis", "targetStream", "k")
        self.expect("k", "kinesis", "targetStream")

    def test_firehose_name_checked(self):
        self.register("firehose", "deliveryStream", "f")
        self.expect("f", "firehose", "deliveryStream")
        self.assertEqual(self.lookups("firehose"), {"DescribeDeliveryStream": 1})

    def test_es_domain_and_index(self):
        self.register("es", "logs", "e", "--index", "orders/doc")
        self.expect("e", "es", ES_HOST + "#orders/doc")
        self.assertEqual(self.lookups("es_control"), {"DescribeElasticsearchDomain": 1})
        # a domain in a VPC: its Endpoints.vpc
        self.register("es", "private", "v", "--index", "idx")
        self.expect("v", "es", VPC_HOST + "#idx")
        err = self.fails(2, "register", "es", "--function", self.function, "--source-arn",
                         self.input_arn, "--id", "x", "--destination", "logs")
        self.assertIn("give --index INDEX too", err)

    def test_iot_topic_to_ats_endpoint(self):
        self.register("iot", "sensors/out", "i")
        self.expect("i", "iot", IOT_HOST + "#sensors/out")
        self.assertEqual(self.lookups("iot_control"), {"DescribeEndpoint": 1})

    def test_memcached_and_redis_ids_to_endpoints(self):
        self.register("memcached", "sessions", "m")
        self.expect("m", "memcached", MEMCACHED)
        self.register("redis", "cache", "r")
        self.expect("r", "redis", REDIS)
        self.assertEqual(self.lookups("elasticache"),
                         {"DescribeCacheClusters": 1, "DescribeReplicationGroups": 1})
        # a Redis group id asked as a Memcached cluster: no such cluster
        err = self.fails(2, "register", "memcached", "--function", self.function,
                         "--source-arn", self.input_arn, "--id", "x", "--destination", "cache")
        self.assertIn('no Amazon ElastiCache Memcached cluster "cache"', err)
        self.assertIn("CacheClusterNotFound", err)

    # ---- names that do not exist ----

    def test_unknown_names(self):
        cases = [
            ("sqs", "noQueue", "SQS GetQueueUrl", "Amazon SQS queue"),
            ("sns", "noTopic", "SNS ListTopics", "Amazon SNS topic"),
            ("kinesis", "noStream", "Kinesis DescribeStream", "Amazon Kinesis stream"),
            ("firehose", "noDelivery", "Firehose DescribeDeliveryStream",
             "Amazon Data Firehose delivery stream"),
            ("lambda", "noFunction", "Lambda GetFunction", "AWS Lambda function"),
            ("es", "nodomain", "DescribeElasticsearchDomain", "domain"),
            ("redis", "nogroup", "DescribeReplicationGroups", "replication group"),
        ]
        for type_, name, op, what in cases:
            extra = ["--index", "i"] if type_ == "es" else []
            err = self.fails(2, "register", type_, "--function", self.function,
                             "--source-arn", self.input_arn, "--id", "x", "--destination",
                             name, *extra)
            self.assertIn("fanout register: %s: there is no" % type_, err)
            self.assertIn('"%s"' % name, err)
            self.assertIn(what, err)
            self.assertIn(op, err)
        self.assertEqual(self.items(), [])

    def test_lookup_unreachable_is_status_1(self):
        dead = "http://127.0.0.1:%d" % harness.free_port()
        err = self.fails(1, "register", "lambda", "--function", self.function,
                         "--source-arn", self.input_arn, "--id", "x", "--destination", "fn",
                         env=self.env(AWS_ENDPOINT_URL_LAMBDA=dead))
        self.assertIn("looking up the AWS Lambda function \"fn\" failed", err)
        self.assertEqual(self.items(), [])

    # ---- lookup answers that do not say what was asked ----

    def test_throttled_lookup_is_retried(self):
        self.aws.faults([{"service": "lambda", "operation": "GetFunction", "kind": "throttle",
                          "count": 1}])
        self.register("lambda", "targetFunction", "thr")
        self.assertEqual(self.lookups("lambda"), {"GetFunction": 2})
        self.assertEqual(self.item("thr")["destination"], {"S": "targetFunction"})

    def test_answers_without_the_value_are_errors(self):
        reg = ["register", "--function", self.function, "--source-arn", self.input_arn,
               "--id", "bad"]
        cases = [
            ({"service": "lambda", "operation": "GetFunction", "kind": "mangle",
              "op": "delete", "path": "Configuration.FunctionArn"},
             ["lambda", "--destination", "targetFunction"],
             "no Configuration.FunctionArn"),
            ({"service": "iot_control", "kind": "mangle", "op": "delete",
              "path": "endpointAddress"},
             ["iot", "--destination", "a/b"], "no endpointAddress"),
            ({"service": "firehose", "operation": "DescribeDeliveryStream", "kind": "mangle",
              "op": "set", "path": "DeliveryStreamDescription", "value": "x"},
             ["firehose", "--destination", "deliveryStream"], "no DeliveryStreamDescription"),
            ({"service": "elasticache", "kind": "mangle", "op": "replace",
              "pattern": "<Port>6379</Port>", "repl": "<Port>63x9</Port>"},
             ["redis", "--destination", "cache"], "no node group PrimaryEndpoint"),
            ({"service": "elasticache", "kind": "mangle", "op": "truncate", "keep": 200},
             ["memcached", "--destination", "sessions"], "no ConfigurationEndpoint"),
            ({"service": "sns", "operation": "ListTopics", "kind": "status", "status": 200,
              "body": "<html>not SNS</html>", "contentType": "text/html"},
             ["sns", "--destination", "alerts"], "no ListTopicsResult"),
            ({"service": "es_control", "kind": "mangle", "op": "body", "body": "[]"},
             ["es", "--destination", "logs", "--index", "i"], "not a JSON object"),
            # a page that hands back the token it was given: stop, not loop
            ({"service": "sns", "operation": "ListTopics", "kind": "mangle", "count": -1,
              "ops": [{"op": "replace", "pattern": "</Topics>",
                       "repl": "</Topics><NextToken>100</NextToken>"}]},
             ["sns", "--destination", "nosuchtopic"], "the same NextToken twice"),
        ]
        for rule, args, message in cases:
            self.aws.reset()
            self.aws.faults([rule])
            err = self.fails(1, *(reg[:1] + args[:1] + reg[1:] + args[1:]))
            self.assertIn(message, err, rule)
        self.assertEqual(self.items(), [])

    # ---- full forms: no lookup ----

    def test_full_forms_are_not_looked_up(self):
        forms = [
            ("sqs", self.queue_url, self.queue_url),
            ("sns", TOPIC, TOPIC),
            ("kinesis", "arn:aws:kinesis:us-east-1:%s:stream/targetStream" % ACCOUNT,
             "targetStream"),
            ("firehose", "arn:aws:firehose:us-east-1:%s:deliverystream/d" % ACCOUNT, "d"),
            ("lambda", "arn:aws:lambda:us-east-1:%s:function:fn" % ACCOUNT, "fn"),
            ("es", ES_HOST + "#idx", ES_HOST + "#idx"),
            ("iot", IOT_HOST + "#a/b", IOT_HOST + "#a/b"),
            ("memcached", MEMCACHED, MEMCACHED),
            ("redis", REDIS, REDIS),
        ]
        for i, (type_, dest, stored) in enumerate(forms):
            self.register(type_, dest, "full%d" % i)
            self.expect("full%d" % i, type_, stored)
        self.assertEqual(self.aws.stats()["by_service"], {})

    def test_arn_of_another_region_needs_destination_region(self):
        arn = "arn:aws:kinesis:eu-west-1:%s:stream/far" % ACCOUNT
        err = self.fails(2, "register", "kinesis", "--function", self.function,
                         "--source-arn", self.input_arn, "--id", "far", "--destination", arn)
        self.assertIn("add --destination-region eu-west-1", err)
        self.register("kinesis", arn, "far", "--destination-region", "eu-west-1")
        self.assertEqual(self.item("far")["destination"], {"S": "far"})
        self.assertEqual(self.item("far")["region"], {"S": "eu-west-1"})

    def test_names_with_a_role_are_not_looked_up(self):
        role = "arn:aws:iam::210987654321:role/writer"
        self.register("kinesis", "remoteStream", "rk", "--destination-role-arn", role)
        self.assertEqual(self.item("rk")["destination"], {"S": "remoteStream"})
        err = self.fails(2, "register", "sqs", "--function", self.function, "--source-arn",
                         self.input_arn, "--id", "rq", "--destination", "targetQueue",
                         "--destination-role-arn", role)
        self.assertIn("give the full form (the queue URL)", err)
        self.assertEqual(self.aws.stats()["by_service"], {})

    def test_lookup_goes_to_the_destination_region(self):
        self.register("lambda", "targetFunction", "rl", "--destination-region", "us-west-2")
        # the server knows a bare name in every region; the signature says where
        log = self.aws.stats()["by_service"]["lambda"]["GetFunction"]
        self.assertEqual(log["count"], 1)
        self.assertEqual(self.item("rl")["region"], {"S": "us-west-2"})

    def test_update_destination_by_name(self):
        self.register("sqs", self.queue_url, "u")
        self.ok("update", "--function", self.function, "--source-arn", self.input_arn, "--id",
                "u", "--destination", "targetQueue")
        self.assertEqual(self.item("u")["destination"], {"S": self.queue_url})
        err = self.fails(2, "update", "--function", self.function, "--source-arn",
                         self.input_arn, "--id", "u", "--destination", "noQueue")
        self.assertIn('there is no Amazon SQS queue "noQueue"', err)
        self.assertEqual(self.item("u")["destination"], {"S": self.queue_url})

    # ---- the original's flags ----

    def test_default_function(self):
        self.ddb.create_table(
            TableName="fanoutTargets",
            AttributeDefinitions=[{"AttributeName": "sourceArn", "AttributeType": "S"},
                                  {"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "sourceArn", "KeyType": "HASH"},
                       {"AttributeName": "id", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST") if "fanoutTargets" not in \
            self.ddb.list_tables()["TableNames"] else None
        r = self.run_cli("register", "kinesis", "--source-type", "kinesis", "--source",
                         "inputStream", "--id", "dflt", "--destination", "targetStream")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("using default name 'fanout'", r.stderr.decode())
        got = self.ddb.get_item(TableName="fanoutTargets", Key={
            "sourceArn": {"S": self.input_arn}, "id": {"S": "dflt"}}).get("Item")
        self.assertEqual(got["destination"], {"S": "targetStream"})
        self.ok("unregister", "--source-arn", self.input_arn, "--id", "dflt")

    def test_function_arn_and_table_arn(self):
        fn_arn = "arn:aws:lambda:us-east-1:%s:function:%s" % (ACCOUNT, self.function)
        self.ok("register", "kinesis", "--function-arn", fn_arn, "--source-arn",
                self.input_arn, "--id", "fa", "--destination", "targetStream")
        self.assertIsNotNone(self.item("fa"))
        table_arn = "arn:aws:dynamodb:us-east-1:%s:table/%s" % (ACCOUNT, self.table)
        self.ok("activate", "--table-arn", table_arn, "--source-arn", self.input_arn,
                "--id", "fa")
        self.assertEqual(self.item("fa")["active"], {"BOOL": True})
        # the table wins over the function, as in the original
        self.ok("deactivate", "--function", "nosuch", "--table", self.table,
                "--source-arn", self.input_arn, "--id", "fa")
        self.assertEqual(self.item("fa")["active"], {"BOOL": False})
        self.assertIn("is not a Lambda function ARN",
                      self.fails(2, "list", "--function-arn", "arn:aws:sqs:x"))
        self.assertIn("is not a DynamoDB table ARN",
                      self.fails(2, "list", "--table-arn", "fanoutTargets"))
        self.assertIn("give the table once",
                      self.fails(2, "list", "--table", "a", "--table-arn", table_arn))

    def test_append_newlines_index_debug(self):
        # appendNewlines is written as the original wrote it; checked here
        # against the mapping schema only (no plugins on the path), the
        # engine's support being another change
        empty = os.path.join(self.tmp.path, "no-plugins")
        os.makedirs(empty, exist_ok=True)
        env = self.env(FANOUT_PLUGIN_PATH=empty)
        r = self.register("firehose", "deliveryStream", "nl", "--append-newlines", "true",
                          "--debug", env=env)
        self.assertEqual(self.item("nl")["appendNewlines"], {"BOOL": True})
        self.assertIn('firehose "deliveryStream" is deliveryStream '
                      '(Firehose DescribeDeliveryStream)', r.stderr.decode())
        self.ok("update", "--function", self.function, "--source-arn", self.input_arn,
                "--id", "nl", "--append-newlines", "false", env=env)
        self.assertEqual(self.item("nl")["appendNewlines"], {"BOOL": False})
        self.assertIn('--append-newlines expects true or false',
                      self.fails(2, "register", "sqs", "--function", self.function,
                                 "--source-arn", self.input_arn, "--id", "x",
                                 "--destination", "q", "--append-newlines", "yes"))
        self.assertIn("--index is only for es destinations",
                      self.fails(2, "register", "sqs", "--function", self.function,
                                 "--source-arn", self.input_arn, "--id", "x",
                                 "--destination", "q", "--index", "i"))

    def test_no_verify_ssl(self):
        # a TLS endpoint with a self-signed certificate: refused, unless
        # --no-verify-ssl (with its warning)
        cert = os.path.join(self.tmp.path, "self.pem")
        key = os.path.join(self.tmp.path, "self.key")
        import subprocess
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        import ssl
        import threading
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        upstream = self.aws.port

        class Proxy(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
                conn.request("GET", self.path, headers={k: v for k, v in self.headers.items()
                                                        if k.lower() != "connection"})
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            # the signature covers the Host header: the proxy keeps it
            env = self.env(AWS_ENDPOINT_URL_LAMBDA="https://127.0.0.1:%d"
                           % srv.server_address[1])
            err = self.fails(1, "register", "lambda", "--function", self.function,
                             "--source-arn", self.input_arn, "--id", "tls",
                             "--destination", "targetFunction", env=env)
            self.assertIn("failed", err)
            self.assertEqual(self.lookups("lambda"), {})
            r = self.ok("register", "lambda", "--function", self.function, "--source-arn",
                        self.input_arn, "--id", "tls", "--destination", "targetFunction",
                        "--no-verify-ssl", env=env)
            self.assertIn("warning: --no-verify-ssl", r.stderr.decode())
            self.assertEqual(self.lookups("lambda"), {"GetFunction": 1})
            self.assertEqual(self.item("tls")["destination"], {"S": "targetFunction"})
            # trusted through FANOUT_CA_BUNDLE, loaded once into the store
            # every connection shares (aws/tls_store.c)
            env.update(FANOUT_CA_BUNDLE=cert, FANOUT_LOG_LEVEL="debug")
            r = self.ok("register", "lambda", "--function", self.function, "--source-arn",
                        self.input_arn, "--id", "tls2", "--destination", "targetFunction",
                        env=env)
            self.assertEqual(r.stderr.decode().count(
                "CA store loaded once for all connections: 1 certificates from " + cert), 1,
                r.stderr.decode())
            self.assertEqual(self.lookups("lambda"), {"GetFunction": 2})
        finally:
            srv.shutdown()
            srv.server_close()

    def test_validate_takes_the_table_flags(self):
        self.register("kinesis", "targetStream", "vk")
        env = self.env()
        r = self.run_cli("validate", "--function", self.function, env=env)
        self.assertIn("1 mappings", r.stdout.decode(), r.stderr.decode())
        r2 = self.run_cli("validate", "--table", self.table, env=env)
        self.assertEqual(r2.stdout, r.stdout)
        self.assertEqual(r2.returncode, r.returncode)
        r3 = self.run_cli("validate", "--table-arn", "arn:aws:dynamodb:us-east-1:%s:table/%s"
                          % (ACCOUNT, self.table), env=env)
        self.assertEqual(r3.stdout, r.stdout)
        r4 = self.run_cli("validate", "--function-arn", "arn:aws:lambda:us-east-1:%s:function:%s"
                          % (ACCOUNT, self.function), env=env)
        self.assertEqual(r4.stdout, r.stdout)
        self.assertIn("not both", self.fails(2, "validate", "--config", "/dev/null",
                                             "--table", self.table))


if __name__ == "__main__":
    unittest.main(verbosity=2)
