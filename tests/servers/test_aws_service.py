#!/usr/bin/python3
"""Tests of tests/servers/aws_service.py with botocore itself as the client.
Every service module of tests/servers/aws is reached (ServiceTable).

Starts the server on a loopback port and drives every emulated operation
through botocore clients (several regions, a base key and a role key with a
session token from another account), plus requests signed by botocore and
sent by hand where a client would refuse to send them (wrong Content-Type,
no X-Amz-Target, OpenSearch _bulk, expired X-Amz-Date). The validation
against botocore's models (aws/model.py) is also tested directly (Model),
and DynamoDB / Kinesis through --forward to dynalite and kinesalite
(tests/node). Run with /usr/bin/python3 (Debian's python3-botocore).
Prints "N passed, N failed".
"""

import base64
import datetime
import hashlib
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile
from unittest import mock
from urllib.parse import quote

import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "aws_service.py")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import aws  # noqa: E402  (the service table the server serves)
import harness  # noqa: E402  (dynalite and kinesalite for --forward)
from aws import model  # noqa: E402

BASE = {"accessKeyId": "AKIDFANOUTBASE", "secretAccessKey": "base-secret/+="}
ROLE = {"accessKeyId": "ASIAFANOUTROLE", "secretAccessKey": "role-secret",
        "sessionToken": "FwoGZXIvYXdzEroleToken==", "accountId": "222222222222"}
EXPIRED = {"accessKeyId": "ASIAFANOUTOLD", "secretAccessKey": "old-secret",
           "sessionToken": "old-token", "expiration": "2001-01-01T00:00:00Z"}
LATE = {"accessKeyId": "AKIDFANOUTLATE", "secretAccessKey": "late-secret"}

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
TOPIC_W2 = "arn:aws:sns:us-west-2:222222222222:events"
FIFO = "arn:aws:sns:us-east-1:123456789012:orders.fifo"
FIFO_CBD = "arn:aws:sns:us-east-1:123456789012:dedup.fifo"
RESOURCES = {
    "firehose": ["stream-a", "stream-b"],
    "sns": [TOPIC, TOPIC_W2, FIFO, {"arn": FIFO_CBD, "contentBasedDeduplication": True}],
    "lambda": ["fn", "fn:live", "arn:aws:lambda:eu-west-1:222222222222:function:other"],
}

SRV = {}


def setUpModule():
    SRV["dir"] = tempfile.TemporaryDirectory()
    d = SRV["dir"].name
    creds = os.path.join(d, "credentials.json")
    with open(creds, "w") as f:
        json.dump([BASE, ROLE, EXPIRED], f)
    res = os.path.join(d, "resources.json")
    with open(res, "w") as f:
        json.dump(RESOURCES, f)
    SRV["creds"] = creds
    SRV["log"] = os.path.join(d, "requests.jsonl")
    SRV["dynalite"] = harness.Dynalite()
    SRV["kinesalite"] = harness.Kinesalite()
    SRV["proc"] = subprocess.Popen(
        [sys.executable, SERVER, "--port", "0", "--credentials", creds, "--resources", res,
         "--log", SRV["log"], "--parent-pid", str(os.getpid()), "--max-lifetime", "300",
         "--forward", "dynamodb=" + SRV["dynalite"].url,
         "--forward", "kinesis=" + SRV["kinesalite"].url],
        stdout=subprocess.PIPE)
    SRV["port"] = int(SRV["proc"].stdout.readline())
    SRV["url"] = "http://127.0.0.1:%d" % SRV["port"]


def tearDownModule():
    for c in CLIENTS.values():
        c.close()
    SRV["proc"].terminate()
    SRV["proc"].wait(10)
    SRV["proc"].stdout.close()
    SRV["dynalite"].stop()
    SRV["kinesalite"].stop()
    SRV["dir"].cleanup()


# ---- helpers ----

def ctl(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    out = r.read()
    conn.close()
    if r.status != 200:
        raise AssertionError("%s %s: %d %s" % (method, path, r.status, out))
    return json.loads(out)


def received(service, target=None, minimum=0, timeout_ms=0):
    from urllib.parse import urlencode
    q = {"service": service}
    if target is not None:
        q["target"] = target
    if minimum:
        q.update({"min": minimum, "timeout_ms": timeout_ms})
    return ctl("GET", "/__received?" + urlencode(q))


def faults(*rules):
    return ctl("POST", "/__faults", list(rules))


CLIENTS = {}


def client(service, region="us-east-1", cred=BASE, secret=None):
    """A botocore client (kept for reuse) with retries off."""
    key = (service, region, cred["accessKeyId"], secret or cred["secretAccessKey"],
           cred.get("sessionToken"))
    if key not in CLIENTS:
        session = botocore.session.get_session()
        CLIENTS[key] = session.create_client(
            service, region_name=region, endpoint_url=SRV["url"],
            aws_access_key_id=cred["accessKeyId"],
            aws_secret_access_key=secret or cred["secretAccessKey"],
            aws_session_token=cred.get("sessionToken"),
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5,
                          read_timeout=10))
    return CLIENTS[key]


def signed(method, path, signing_name, region="us-east-1", body=b"", headers=None, cred=BASE,
           when=None, sign_token=True):
    """Sign with botocore's SigV4Auth and send with http.client; returns
    (status, headers dict (lower-case names), body bytes)."""
    host = "127.0.0.1:%d" % SRV["port"]
    req = AWSRequest(method=method, url="http://%s%s" % (host, path), data=body,
                     headers=dict(headers or {}))
    creds = Credentials(cred["accessKeyId"], cred["secretAccessKey"],
                        cred.get("sessionToken") if sign_token else None)
    if when is None:
        SigV4Auth(creds, signing_name, region).add_auth(req)
    else:
        # as botocore's own tests do: fix the clock botocore.auth reads
        with mock.patch.object(botocore.auth.datetime, "datetime",
                               mock.Mock(wraps=datetime.datetime)) as dt:
            dt.utcnow.return_value = when
            SigV4Auth(creds, signing_name, region).add_auth(req)
    send_headers = dict(req.headers.items())
    if not sign_token and cred.get("sessionToken"):
        send_headers["X-Amz-Security-Token"] = cred["sessionToken"]
    conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=10)
    conn.request(method, path, body=body, headers=send_headers)
    r = conn.getresponse()
    out = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, out


def bulk(lines, path="/_bulk", region="us-east-1", cred=BASE, ctype="application/x-ndjson",
         raw=None):
    body = raw if raw is not None else "".join(
        (json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines).encode()
    status, headers, out = signed("POST", path, "es", region, body,
                                  {"Content-Type": ctype} if ctype else {}, cred)
    return status, json.loads(out) if out else None


def error_of(exc):
    return (exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"],
            exc.response["Error"].get("Message", ""))


class Base(unittest.TestCase):
    def setUp(self):
        ctl("POST", "/__reset")

    def assertClientError(self, fn, status, code, message_part=""):
        with self.assertRaises(ClientError) as cm:
            fn()
        got = error_of(cm.exception)
        self.assertEqual(got[:2], (status, code), got)
        self.assertIn(message_part, got[2])
        return cm.exception


# ---- Firehose ----

class Firehose(Base):
    def test_put_record_batch_regions_and_received(self):
        for region, cred in (("us-east-1", BASE), ("eu-west-1", ROLE)):
            fh = client("firehose", region, cred)
            r = fh.put_record_batch(DeliveryStreamName="stream-a",
                                    Records=[{"Data": b"one\n"}, {"Data": b"\x00\xff"},
                                             {"Data": b""}])
            self.assertEqual(r["FailedPutCount"], 0)
            self.assertFalse(r["Encrypted"])
            self.assertEqual(len(r["RequestResponses"]), 3)
            self.assertTrue(all("RecordId" in x for x in r["RequestResponses"]))
        got = received("firehose", "stream-a")
        self.assertEqual(len(got), 6)
        self.assertEqual([g["dataBase64"] for g in got[:3]],
                         [base64.b64encode(x).decode() for x in (b"one\n", b"\x00\xff", b"")])
        self.assertEqual(got[0]["data"], "one\n")
        self.assertIsNone(got[1]["data"])
        self.assertEqual((got[0]["accessKeyId"], got[0]["region"]), (BASE["accessKeyId"],
                                                                     "us-east-1"))
        self.assertEqual((got[3]["accessKeyId"], got[3]["region"], got[3]["accountId"]),
                         (ROLE["accessKeyId"], "eu-west-1", "222222222222"))
        self.assertEqual(got[0]["recordId"], got[0]["recordId"].strip())
        self.assertEqual(received("firehose", "stream-b"), [])

    def test_put_record(self):
        r = client("firehose").put_record(DeliveryStreamName="stream-b", Record={"Data": b"x"})
        self.assertIn("RecordId", r)
        self.assertEqual(received("firehose", "stream-b")[0]["data"], "x")

    def test_unknown_stream(self):
        fh = client("firehose")
        self.assertClientError(lambda: fh.put_record_batch(
            DeliveryStreamName="nope", Records=[{"Data": b"x"}]), 400,
            "ResourceNotFoundException", "Firehose nope under account 123456789012 not found.")

    def test_limits(self):
        fh = client("firehose")
        self.assertClientError(lambda: fh.put_record_batch(
            DeliveryStreamName="stream-a", Records=[{"Data": b"x"}] * 501), 400,
            "ValidationException", "less than or equal to 500")
        fh.put_record_batch(DeliveryStreamName="stream-a", Records=[{"Data": b"x"}] * 500)
        self.assertClientError(lambda: fh.put_record(
            DeliveryStreamName="stream-a", Record={"Data": b"x" * 1024001}), 400,
            "ValidationException", "records.1.member.data" if False else "record.data")
        fh.put_record(DeliveryStreamName="stream-a", Record={"Data": b"x" * 1024000})
        self.assertClientError(lambda: fh.put_record_batch(
            DeliveryStreamName="stream-a", Records=[{"Data": b"y" * 1024000}] * 5), 400,
            "InvalidArgumentException", "4 MiB")
        self.assertEqual(len(received("firehose", "stream-a")), 501)

    def test_shape_checks(self):
        body = json.dumps({"DeliveryStreamName": "stream-a", "Records": [{"Data": "eA=="}]})
        st, h, out = signed("POST", "/", "firehose", body=body.encode(),
                            headers={"Content-Type": "application/x-amz-json-1.1"})
        self.assertEqual((st, json.loads(out)["__type"]), (400, "UnknownOperationException"))
        st, h, out = signed("POST", "/", "firehose", body=body.encode(),
                            headers={"Content-Type": "application/json",
                                     "X-Amz-Target": "Firehose_20150804.PutRecordBatch"})
        self.assertEqual((st, json.loads(out)["__type"]), (400, "SerializationException"))
        st, h, out = signed("POST", "/", "firehose", body=b'{"Records": [{"Data": "eA=="}]}',
                            headers={"Content-Type": "application/x-amz-json-1.1",
                                     "X-Amz-Target": "Firehose_20150804.PutRecordBatch"})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(out)["__type"], "ValidationException")
        # botocore's events model refused it before the module
        self.assertIn('Missing required parameter in input: "DeliveryStreamName"',
                      json.loads(out)["message"])

    def test_partial_every_second(self):
        faults({"service": "firehose", "target": "stream-a", "kind": "partial", "every": 2})
        r = client("firehose").put_record_batch(
            DeliveryStreamName="stream-a", Records=[{"Data": b"r%d" % i} for i in range(5)])
        self.assertEqual(r["FailedPutCount"], 2)
        codes = [x.get("ErrorCode") for x in r["RequestResponses"]]
        self.assertEqual(codes, [None, "ServiceUnavailableException", None,
                                 "ServiceUnavailableException", None])
        self.assertEqual(r["RequestResponses"][1]["ErrorMessage"], "Slow down.")
        self.assertEqual([g["data"] for g in received("firehose", "stream-a")],
                         ["r0", "r2", "r4"])
        # count 1: the next batch is whole
        r = client("firehose").put_record_batch(DeliveryStreamName="stream-a",
                                                Records=[{"Data": b"a"}, {"Data": b"b"}])
        self.assertEqual(r["FailedPutCount"], 0)

    def test_partial_indexes_and_code(self):
        faults({"service": "firehose", "kind": "partial", "indexes": [0], "count": -1,
                "code": "InternalFailure", "message": "Internal service failure."})
        for _ in range(2):
            r = client("firehose").put_record_batch(
                DeliveryStreamName="stream-b", Records=[{"Data": b"a"}, {"Data": b"b"}])
            self.assertEqual(r["RequestResponses"][0]["ErrorCode"], "InternalFailure")
            self.assertIn("RecordId", r["RequestResponses"][1])
        self.assertEqual(ctl("GET", "/__stats")["faults_by_kind"]["partial"], 2)

    def test_throttle_and_error500(self):
        faults({"service": "firehose", "kind": "throttle"},
               {"service": "firehose", "kind": "error500"})
        fh = client("firehose")
        call = lambda: fh.put_record(DeliveryStreamName="stream-a", Record={"Data": b"x"})
        self.assertClientError(call, 500, "ServiceUnavailableException", "Slow down.")
        self.assertClientError(call, 500, "InternalFailure")
        call()
        stats = ctl("GET", "/__stats")
        self.assertEqual(stats["faults_fired"], 2)
        self.assertEqual(stats["faults_by_service"]["firehose"], 2)
        self.assertEqual(len(received("firehose")), 1)


# ---- SNS ----

class Sns(Base):
    def test_publish(self):
        sns = client("sns")
        r = sns.publish(TopicArn=TOPIC, Message="héllo", Subject="Greeting",
                        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"},
                                           "n": {"DataType": "Number", "StringValue": "12.5"},
                                           "b": {"DataType": "Binary", "BinaryValue": b"\x01"}})
        self.assertEqual(len(r["MessageId"]), 36)
        got = received("sns", TOPIC)
        self.assertEqual(len(got), 1)
        g = got[0]
        self.assertEqual((g["message"], g["subject"], g["messageId"]),
                         ("héllo", "Greeting", r["MessageId"]))
        self.assertEqual(g["messageAttributes"]["b"], {"DataType": "Binary", "BinaryValue": "AQ=="})
        self.assertEqual(g["messageAttributes"]["n"]["StringValue"], "12.5")
        self.assertEqual(g["accessKeyId"], BASE["accessKeyId"])

    def test_publish_other_region_role(self):
        sns = client("sns", "us-west-2", ROLE)
        sns.publish(TopicArn=TOPIC_W2, Message="m")
        g = received("sns", TOPIC_W2)[0]
        self.assertEqual((g["accessKeyId"], g["region"]), (ROLE["accessKeyId"], "us-west-2"))
        # a topic of another region than the signature's
        self.assertClientError(lambda: sns.publish(TopicArn=TOPIC, Message="m"), 400,
                               "InvalidParameter", "TopicArn")

    def test_publish_errors(self):
        sns = client("sns")
        self.assertClientError(lambda: sns.publish(TopicArn=TOPIC + "x", Message="m"), 404,
                               "NotFound", "Topic does not exist")
        self.assertClientError(lambda: sns.publish(TopicArn="arn:aws:sns:bad", Message="m"), 400,
                               "InvalidParameter", "Invalid parameter: TopicArn")
        self.assertClientError(lambda: sns.publish(TopicArn=TOPIC, Message="x" * 262145), 400,
                               "InvalidParameter", "Message too long")
        sns.publish(TopicArn=TOPIC, Message="x" * 262144)
        self.assertClientError(lambda: sns.publish(TopicArn=TOPIC, Message=""), 400,
                               "InvalidParameter", "Empty message")
        self.assertClientError(lambda: sns.publish(
            TopicArn=TOPIC, Message="m", MessageAttributes={"a": {"DataType": "Bogus",
                                                                  "StringValue": "v"}}), 400,
            "ParameterValueInvalid")
        self.assertClientError(lambda: sns.publish(TopicArn=FIFO, Message="m"), 400,
                               "InvalidParameter", "MessageGroupId")
        self.assertClientError(lambda: sns.publish(TopicArn=FIFO, Message="m",
                                                   MessageGroupId="g"), 400,
                               "InvalidParameter", "ContentBasedDeduplication")
        self.assertEqual(len(received("sns")), 1)

    def test_fifo(self):
        sns = client("sns")
        r1 = sns.publish(TopicArn=FIFO, Message="a", MessageGroupId="g",
                         MessageDeduplicationId="d1")
        r2 = sns.publish(TopicArn=FIFO_CBD, Message="b", MessageGroupId="g")
        self.assertTrue(r1["SequenceNumber"].isdigit())
        self.assertGreater(int(r2["SequenceNumber"]), int(r1["SequenceNumber"]))
        g = received("sns", FIFO)[0]
        self.assertEqual((g["messageGroupId"], g["messageDeduplicationId"]), ("g", "d1"))

    def test_publish_batch(self):
        sns = client("sns")
        entries = [{"Id": "e-%d" % i, "Message": "m%d" % i,
                    "MessageAttributes": {"i": {"DataType": "Number", "StringValue": str(i)}}}
                   for i in range(10)]
        r = sns.publish_batch(TopicArn=TOPIC, PublishBatchRequestEntries=entries)
        self.assertEqual([x["Id"] for x in r["Successful"]], [e["Id"] for e in entries])
        self.assertEqual(r["Failed"], [])
        got = received("sns", TOPIC)
        self.assertEqual([g["message"] for g in got], ["m%d" % i for i in range(10)])
        self.assertEqual(got[3]["batchEntryId"], "e-3")
        self.assertEqual(got[3]["messageId"], r["Successful"][3]["MessageId"])

    def test_publish_batch_errors(self):
        sns = client("sns")
        pb = lambda entries, arn=TOPIC: sns.publish_batch(TopicArn=arn,
                                                          PublishBatchRequestEntries=entries)
        self.assertClientError(lambda: pb([{"Id": str(i), "Message": "m"} for i in range(11)]),
                               400, "TooManyEntriesInBatchRequest")
        self.assertClientError(lambda: pb([{"Id": "a", "Message": "m"}] * 2), 400,
                               "BatchEntryIdsNotDistinct")
        self.assertClientError(lambda: pb([{"Id": "a b", "Message": "m"}]), 400,
                               "InvalidBatchEntryId")
        self.assertClientError(lambda: pb([{"Id": "x" * 81, "Message": "m"}]), 400,
                               "InvalidBatchEntryId")
        self.assertClientError(lambda: pb([{"Id": "a", "Message": "x" * 131072},
                                           {"Id": "b", "Message": "x" * 131073}]), 400,
                               "BatchRequestTooLong")
        self.assertClientError(lambda: pb([{"Id": "a", "Message": "m"}], TOPIC + "zz"), 404,
                               "NotFound")
        r = pb([{"Id": "ok", "Message": "m"}, {"Id": "fifo-less", "Message": ""}])
        self.assertEqual([x["Id"] for x in r["Successful"]], ["ok"])
        self.assertEqual(r["Failed"][0]["Code"], "InvalidParameter")
        self.assertTrue(r["Failed"][0]["SenderFault"])
        self.assertEqual(len(received("sns")), 1)

    def test_publish_batch_partial(self):
        faults({"service": "sns", "target": TOPIC, "kind": "partial", "indexes": [1, 2]})
        r = client("sns").publish_batch(
            TopicArn=TOPIC, PublishBatchRequestEntries=[{"Id": c, "Message": c} for c in "abcd"])
        self.assertEqual([x["Id"] for x in r["Successful"]], ["a", "d"])
        self.assertEqual([(x["Id"], x["Code"], x["SenderFault"]) for x in r["Failed"]],
                         [("b", "InternalError", False), ("c", "InternalError", False)])
        self.assertEqual([g["message"] for g in received("sns", TOPIC)], ["a", "d"])

    def test_throttle_error500_and_shape(self):
        faults({"service": "sns", "operation": "Publish", "kind": "throttle"},
               {"service": "sns", "kind": "error500"})
        sns = client("sns")
        self.assertClientError(lambda: sns.publish(TopicArn=TOPIC, Message="m"), 400,
                               "ThrottlingException", "Rate exceeded")
        self.assertClientError(lambda: sns.publish(TopicArn=TOPIC, Message="m"), 500,
                               "InternalError")
        body = b"Action=Publish&Version=2010-03-31&TopicArn=" + TOPIC.encode() + b"&Message=m"
        st, h, out = signed("POST", "/", "sns", body=body,
                            headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>MissingAction</Code>", out)
        st, h, out = signed("POST", "/", "sns", body=body.replace(b"2010-03-31", b"2011-01-01"),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidAction</Code>", out)
        st, h, out = signed("POST", "/", "sns", body=body,
                            headers={"Content-Type":
                                     "application/x-www-form-urlencoded; charset=utf-8"})
        self.assertEqual(st, 200)
        self.assertIn(b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">', out)
        self.assertIn(b"<ResponseMetadata>", out)


# ---- Lambda ----

class Lambda(Base):
    def test_invocation_types(self):
        lam = client("lambda")
        r = lam.invoke(FunctionName="fn", InvocationType="Event", Payload=b'{"a": 1}')
        self.assertEqual(r["StatusCode"], 202)
        self.assertEqual(r["Payload"].read(), b"")
        r = lam.invoke(FunctionName="fn", Payload=b'{"b": 2}')
        self.assertEqual((r["StatusCode"], r["Payload"].read()), (200, b'{"b": 2}'))
        self.assertEqual(r["ExecutedVersion"], "$LATEST")
        r = lam.invoke(FunctionName="fn", InvocationType="DryRun", Payload=b"{}")
        self.assertEqual(r["StatusCode"], 204)
        got = received("lambda", "fn")
        self.assertEqual([(g["invocationType"], g["payload"]) for g in got],
                         [("Event", {"a": 1}), ("RequestResponse", {"b": 2})])

    def test_name_forms(self):
        lam = client("lambda", "eu-west-1", ROLE)
        for ref, qual in (("fn", None), ("222222222222:function:fn", None),
                          ("arn:aws:lambda:eu-west-1:222222222222:function:fn:live", "live"),
                          ("fn:$LATEST", "$LATEST"), ("other", None)):
            lam.invoke(FunctionName=ref, InvocationType="Event", Payload=b"{}")
        lam.invoke(FunctionName="fn", Qualifier="live", InvocationType="Event", Payload=b"{}")
        got = received("lambda", "fn")
        self.assertEqual([g["qualifier"] for g in got], [None, None, "live", "$LATEST", "live"])
        self.assertEqual(got[2]["functionArn"],
                         "arn:aws:lambda:eu-west-1:222222222222:function:fn")
        self.assertTrue(all(g["accessKeyId"] == ROLE["accessKeyId"] and
                            g["region"] == "eu-west-1" for g in got))
        self.assertEqual(len(received("lambda", "other")), 1)

    def test_errors(self):
        lam = client("lambda")
        ev = dict(InvocationType="Event", Payload=b"{}")
        self.assertClientError(lambda: lam.invoke(FunctionName="missing", **ev), 404,
                               "ResourceNotFoundException",
                               "Function not found: arn:aws:lambda:us-east-1:123456789012:"
                               "function:missing")
        self.assertClientError(lambda: lam.invoke(FunctionName="fn:nosuchalias", **ev), 404,
                               "ResourceNotFoundException")
        self.assertClientError(lambda: lam.invoke(
            FunctionName="arn:aws:lambda:eu-west-1:123456789012:function:fn", **ev), 404,
            "ResourceNotFoundException", "not reachable in this region")
        self.assertClientError(lambda: lam.invoke(FunctionName="fn:live", Qualifier="other",
                                                  **ev), 400, "InvalidParameterValueException")
        self.assertClientError(lambda: lam.invoke(FunctionName="fn", InvocationType="Event",
                                                  Payload=b"not json"), 400,
                               "InvalidRequestContentException")
        big = b'"' + b"x" * (1048576 - 2) + b'"'
        lam.invoke(FunctionName="fn", InvocationType="Event", Payload=big)
        self.assertClientError(lambda: lam.invoke(FunctionName="fn", InvocationType="Event",
                                                  Payload=big + b" "), 413,
                               "RequestEntityTooLargeException",
                               "1048577 byte payload is too large for the Event invocation type")
        self.assertEqual(len(received("lambda")), 1)

    def test_faults(self):
        faults({"service": "lambda", "target": "fn", "kind": "throttle"},
               {"service": "lambda", "kind": "error500"})
        lam = client("lambda")
        e = self.assertClientError(lambda: lam.invoke(FunctionName="fn", InvocationType="Event",
                                                      Payload=b"{}"), 429,
                                   "TooManyRequestsException", "Rate Exceeded.")
        self.assertEqual(e.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"],
                         "TooManyRequestsException")
        self.assertEqual(e.response["Reason"], "CallerRateLimitExceeded")
        self.assertClientError(lambda: lam.invoke(FunctionName="fn", InvocationType="Event",
                                                  Payload=b"{}"), 500, "ServiceException")


# ---- Lambda's control plane (lambda_ctl) ----

ROLE_ARN = "arn:aws:iam::123456789012:role/fanoutRole"
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/input"
DDB_STREAM = ("arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/"
              "2026-01-01T00:00:00.000")


def zip_of(name, text):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, text)
    return buf.getvalue()


def code_sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def lambda_options(**opts):
    return ctl("POST", "/__lambda", opts)


def unchecked_lambda():
    """A Lambda client that sends what botocore's own checks would refuse."""
    if "lambda-unchecked" not in CLIENTS:
        CLIENTS["lambda-unchecked"] = botocore.session.get_session().create_client(
            "lambda", region_name="us-east-1", endpoint_url=SRV["url"],
            aws_access_key_id=BASE["accessKeyId"], aws_secret_access_key=BASE["secretAccessKey"],
            config=Config(retries={"total_max_attempts": 1}, parameter_validation=False))
    return CLIENTS["lambda-unchecked"]


class LambdaControl(Base):
    def create(self, name="fanout", c=None, **extra):
        args = {"FunctionName": name, "Runtime": "provided.al2023", "Role": ROLE_ARN,
                "Handler": "bootstrap", "Code": {"ZipFile": zip_of("bootstrap", name)}}
        args.update(extra)
        return (c or client("lambda")).create_function(**args)

    def states(self, name, n):
        c = client("lambda")
        return [(lambda x: (x["State"], x["LastUpdateStatus"]))(
            c.get_function_configuration(FunctionName=name)) for _ in range(n)]

    def test_function_create_get_update_delete(self):
        c = client("lambda")
        code = zip_of("bootstrap", "v1")
        layer = c.publish_layer_version(LayerName="fanout-plugins",
                                        Content={"ZipFile": zip_of("lib/a.so", "a")})
        fn = self.create(Code={"ZipFile": code}, MemorySize=256, Timeout=30,
                         Architectures=["arm64"], Layers=[layer["LayerVersionArn"]],
                         Environment={"Variables": {"FANOUT_TABLE": "fanoutTargets"}},
                         Tags={"fanout:function": "fanout"},
                         VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"],
                                    "SecurityGroupIds": ["sg-0123456789abcdef0"]})
        self.assertEqual(fn["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(fn["FunctionArn"], "arn:aws:lambda:us-east-1:123456789012:function:fanout")
        self.assertEqual((fn["State"], fn["StateReasonCode"], fn["LastUpdateStatus"]),
                         ("Pending", "Creating", "InProgress"))
        self.assertEqual((fn["CodeSha256"], fn["CodeSize"]), (code_sha(code), len(code)))
        self.assertEqual(fn["Layers"], [{"Arn": layer["LayerVersionArn"],
                                         "CodeSize": layer["Content"]["CodeSize"]}])
        self.assertEqual(fn["VpcConfig"]["SubnetIds"], ["subnet-0123456789abcdef0"])
        self.assertTrue(fn["VpcConfig"]["VpcId"].startswith("vpc-"))
        self.assertClientError(lambda: self.create(), 409, "ResourceConflictException",
                               "Function already exist: fanout")
        # one Get sees Pending (pendingPolls 1), the next Active
        got = c.get_function(FunctionName="fanout")
        self.assertEqual(got["Configuration"]["State"], "Pending")
        self.assertEqual(got["Tags"], {"fanout:function": "fanout"})
        self.assertEqual(got["Code"]["RepositoryType"], "S3")
        self.assertEqual(self.states("fanout", 1), [("Active", "Successful")])
        conf = c.get_function_configuration(FunctionName=fn["FunctionArn"])
        self.assertNotIn("StateReasonCode", conf)
        self.assertEqual((conf["MemorySize"], conf["Timeout"], conf["Architectures"]),
                         (256, 30, ["arm64"]))
        # an update: InProgress for one Get, a second update meanwhile is refused
        code2 = zip_of("bootstrap", "v2")
        up = c.update_function_code(FunctionName="fanout", ZipFile=code2)
        self.assertEqual((up["LastUpdateStatus"], up["CodeSha256"]), ("InProgress",
                                                                      code_sha(code2)))
        self.assertNotIn("LastUpdateStatusReasonCode", up)
        self.assertClientError(
            lambda: c.update_function_configuration(FunctionName="fanout", MemorySize=512),
            409, "ResourceConflictException", "The operation cannot be performed at this time. "
            "An update is in progress for resource: " + fn["FunctionArn"])
        self.assertEqual(self.states("fanout", 2), [("Active", "InProgress"),
                                                     ("Active", "Successful")])
        up = c.update_function_configuration(
            FunctionName="fanout", MemorySize=512,
            Environment={"Variables": {"FANOUT_TABLE": "t", "FANOUT_REPORT_BATCH_ITEM_FAILURES":
                                       "true"}},
            VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
        self.assertEqual(up["LastUpdateStatus"], "InProgress")
        self.assertEqual(self.states("fanout", 2)[1], ("Active", "Successful"))
        conf = c.get_function_configuration(FunctionName="fanout")
        self.assertEqual((conf["MemorySize"], conf["CodeSha256"], conf["Timeout"]),
                         (512, code_sha(code2), 30))
        self.assertEqual(conf["Environment"]["Variables"]["FANOUT_REPORT_BATCH_ITEM_FAILURES"],
                         "true")
        self.assertEqual(conf["VpcConfig"], {"SubnetIds": [], "SecurityGroupIds": [],
                                             "VpcId": ""})
        c.tag_resource(Resource=fn["FunctionArn"], Tags={"k": "v"})
        self.assertEqual(c.list_tags(Resource=fn["FunctionArn"])["Tags"],
                         {"fanout:function": "fanout", "k": "v"})
        self.assertEqual(c.delete_function(FunctionName="fanout")["ResponseMetadata"]
                         ["HTTPStatusCode"], 204)
        self.assertClientError(lambda: c.get_function(FunctionName="fanout"), 404,
                               "ResourceNotFoundException", "Function not found: "
                               "arn:aws:lambda:us-east-1:123456789012:function:fanout")
        # what was sent: the zip as its digest and size
        got = received("lambda_ctl", "fanout")
        ops = [e["operation"] for e in got]
        self.assertEqual(ops[0], "CreateFunction")
        self.assertIn("UpdateFunctionCode", ops)
        create = got[0]["params"]
        self.assertEqual(create["Code"]["ZipFile"], {"sha256": hashlib.sha256(code).hexdigest(),
                                                     "codeSha256": code_sha(code),
                                                     "size": len(code)})
        self.assertEqual(create["Role"], ROLE_ARN)
        refused = [e for e in got if e["operation"] == "UpdateFunctionConfiguration"]
        self.assertEqual([e["status"] for e in refused], [409, 200])

    def test_update_while_pending_and_polls_option(self):
        lambda_options(pendingPolls=3, updatePolls=0)
        self.create("slow")
        self.assertClientError(
            lambda: client("lambda").update_function_code(FunctionName="slow",
                                                          ZipFile=zip_of("b", "x")),
            409, "ResourceConflictException", "The operation cannot be performed at this time. "
            "The function is currently in the following state: Pending")
        self.assertEqual(self.states("slow", 4), [("Pending", "InProgress")] * 3 +
                         [("Active", "Successful")])
        up = client("lambda").update_function_code(FunctionName="slow", ZipFile=zip_of("b", "y"))
        self.assertEqual(up["LastUpdateStatus"], "Successful")
        lambda_options(pendingPolls=0)
        self.assertEqual(self.create("quick")["State"], "Active")

    def test_failed_create_and_update(self):
        opts = lambda_options(failCreate={"function": "broken", "reason": "bad zip",
                                          "reasonCode": "InvalidZipFileException"},
                              failUpdate="flaky")
        self.assertEqual(set(opts["options"]["failCreate"]), {"broken"})
        self.create("broken")
        c = client("lambda")
        c.get_function_configuration(FunctionName="broken")
        conf = c.get_function_configuration(FunctionName="broken")
        self.assertEqual((conf["State"], conf["StateReasonCode"], conf["StateReason"],
                          conf["LastUpdateStatus"]),
                         ("Failed", "InvalidZipFileException", "bad zip", "Failed"))
        self.create("flaky")
        self.states("flaky", 2)
        c.update_function_configuration(FunctionName="flaky", Timeout=60)
        self.assertEqual(self.states("flaky", 2), [("Active", "InProgress"),
                                                    ("Active", "Failed")])
        conf = c.get_function_configuration(FunctionName="flaky")
        self.assertIn("flaky", conf["LastUpdateStatusReason"])
        self.assertEqual(conf["LastUpdateStatusReasonCode"], "InvalidConfiguration")

    def test_create_validation(self):
        c = client("lambda")
        bad = [({"Runtime": "cobol"}, 400, "ValidationException", "value: cobol, valid values"),
               ({"Role": "arn:aws:iam::123:role/x"}, 400, "ValidationException", "'role'"),
               ({"MemorySize": 100}, 400, "ValidationException", "valid min value: 128"),
               ({"MemorySize": 10241}, 400, "ValidationException", "less than or equal to 10240"),
               ({"Timeout": 901}, 400, "InvalidParameterValueException", "900"),
               ({"Architectures": ["sparc"]}, 400, "ValidationException", "x86_64, arm64"),
               ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, 400,
                "InvalidParameterValueException", "Reserved keys used in this request: "
                "AWS_REGION"),
               ({"Environment": {"Variables": {"BIG": "x" * 4096}}}, 400,
                "InvalidParameterValueException", "exceeded the 4KB limit"),
               ({"Environment": {"Variables": {"1X": "x"}}}, 400, "ValidationException",
                "[a-zA-Z]([a-zA-Z0-9_])+"),
               ({"Layers": ["arn:aws:lambda:us-east-1:123456789012:layer:none:1"]}, 400,
                "InvalidParameterValueException", "Layer version "
                "arn:aws:lambda:us-east-1:123456789012:layer:none:1 does not exist."),
               ({"Layers": ["arn:aws:lambda:us-east-1:123456789012:layer:l:%d" % i
                            for i in range(6)]}, 400, "InvalidParameterValueException",
                "more than 5 layers"),
               ({"Code": {"ZipFile": b"not a zip"}}, 400, "InvalidParameterValueException",
                "Could not unzip uploaded file"),
               ({"Code": {"S3Bucket": "bucket"}}, 400, "InvalidParameterValueException",
                "S3Key"),
               ({"Handler": ""}, 400, "InvalidParameterValueException", "Handler is required"),
               ({"VpcConfig": {"SubnetIds": ["net-1"], "SecurityGroupIds": ["sg-12345678"]}},
                400, "InvalidParameterValueException", "net-1"),
               ({"FunctionName": "arn:aws:lambda:us-east-1:999999999999:function:x"}, 404,
                "ResourceNotFoundException", "999999999999")]
        for extra, status, code, part in bad:
            with self.subTest(extra=list(extra)):
                self.assertClientError(lambda: self.create("v", unchecked_lambda(), **extra),
                                       status, code, part)
        self.assertNotIn(201, [e["status"] for e in received("lambda_ctl")])
        self.assertClientError(lambda: c.get_function_configuration(FunctionName="v"), 404,
                               "ResourceNotFoundException")
        # a ZipFile that is not base64 (botocore always encodes: sent by hand)
        status, headers, body = signed("POST", "/2015-03-31/functions", "lambda", body=json.dumps(
            {"FunctionName": "raw", "Runtime": "provided.al2023", "Role": ROLE_ARN,
             "Handler": "bootstrap", "Code": {"ZipFile": "not base64!"}}).encode())
        # (refused by botocore's model before the module sees it)
        self.assertEqual((status, headers["x-amzn-errortype"]), (400, "ValidationException"))
        answer = json.loads(body)
        self.assertIn("Code.ZipFile: not base64", answer.get("Message", answer.get("message")))
        # S3 code is taken (its digest is that of its location)
        fn = self.create("s3", Code={"S3Bucket": "bucket", "S3Key": "k.zip"})
        self.assertEqual(fn["CodeSha256"], code_sha(b"s3://bucket/k.zip"))

    def test_role_not_yet_assumable(self):
        young = "arn:aws:iam::123456789012:role/young"
        lambda_options(roleDelayMs=60000, roles={young: None, ROLE_ARN: time.time() - 120})
        self.assertClientError(lambda: self.create("r1", Role=young), 400,
                               "InvalidParameterValueException",
                               "The role defined for the function cannot be assumed by Lambda.")
        self.create("r1")  # created two minutes ago: assumable
        self.states("r1", 2)
        self.assertClientError(
            lambda: client("lambda").update_function_configuration(FunctionName="r1", Role=young),
            400, "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.")
        # unknown roles pass unless strictRoles
        self.create("r2", Role="arn:aws:iam::123456789012:role/elsewhere")
        lambda_options(strictRoles=True)
        self.assertClientError(
            lambda: self.create("r3", Role="arn:aws:iam::123456789012:role/elsewhere"), 400,
            "InvalidParameterValueException", "cannot be assumed by Lambda")
        lambda_options(roleDelayMs=0)
        self.create("r3", Role=young)

    def test_mapping_needs_a_role_that_reads_the_stream(self):
        """A role the IAM module holds must allow <service>:GetRecords on the
        stream (inline policies older than policyDelayMs) before Lambda
        creates the mapping; roles it does not hold are not checked."""
        iam = client("iam")
        role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        self.create("reads", Role=role)
        self.states("reads", 2)
        c = unchecked_lambda()
        args = {"FunctionName": "reads", "EventSourceArn": STREAM, "StartingPosition": "LATEST"}
        denied = ("Cannot access stream %s. Please ensure the role can perform the GetRecords, "
                  "GetShardIterator, DescribeStream, and ListStreams Actions on your stream."
                  % STREAM)
        self.assertClientError(lambda: c.create_event_source_mapping(**args), 400,
                               "InvalidParameterValueException", denied)

        def put(resource, action="kinesis:GetRecords"):
            iam.put_role_policy(RoleName="reader", PolicyName="fanout", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": [action], "Resource": [resource]}]}))
        put(STREAM.replace("input", "other"))      # another stream
        self.assertClientError(lambda: c.create_event_source_mapping(**args), 400,
                               "InvalidParameterValueException", denied)
        put(STREAM, action="kinesis:PutRecords")    # another action
        self.assertClientError(lambda: c.create_event_source_mapping(**args), 400,
                               "InvalidParameterValueException", denied)
        lambda_options(policyDelayMs=60000)
        put(STREAM)                                 # right, but not propagated yet
        self.assertClientError(lambda: c.create_event_source_mapping(**args), 400,
                               "InvalidParameterValueException", denied)
        lambda_options(policyDelayMs=0)
        self.assertEqual(c.create_event_source_mapping(**args)["EventSourceArn"], STREAM)
        # a wildcard resource and action read a DynamoDB stream too
        put("arn:aws:dynamodb:us-east-1:123456789012:table/*", action="dynamodb:Get*")
        c.create_event_source_mapping(FunctionName="reads", EventSourceArn=DDB_STREAM,
                                      StartingPosition="LATEST")

    def test_layers_and_pagination(self):
        c = client("lambda")
        zips = [zip_of("lib/p.so", str(i)) for i in range(3)]
        for i, z in enumerate(zips):
            v = c.publish_layer_version(LayerName="plugins", Content={"ZipFile": z},
                                        Description="fanout plugins all sha256:%d" % i,
                                        CompatibleRuntimes=["provided.al2023"],
                                        CompatibleArchitectures=["x86_64"],
                                        LicenseInfo="Apache-2.0")
            self.assertEqual(v["ResponseMetadata"]["HTTPStatusCode"], 201)
            self.assertEqual((v["Version"], v["Content"]["CodeSha256"], v["LayerVersionArn"]),
                             (i + 1, code_sha(z),
                              "arn:aws:lambda:us-east-1:123456789012:layer:plugins:%d" % (i + 1)))
        self.assertEqual(v["LayerArn"], "arn:aws:lambda:us-east-1:123456789012:layer:plugins")
        page = c.list_layer_versions(LayerName="plugins", MaxItems=2)
        self.assertEqual([x["Version"] for x in page["LayerVersions"]], [3, 2])
        rest = c.list_layer_versions(LayerName="plugins", MaxItems=2, Marker=page["NextMarker"])
        self.assertEqual([x["Version"] for x in rest["LayerVersions"]], [1])
        self.assertNotIn("NextMarker", rest)
        self.assertClientError(lambda: c.list_layer_versions(LayerName="plugins", Marker="zz"),
                               400, "InvalidParameterValueException", "Marker")
        got = c.get_layer_version(LayerName="plugins", VersionNumber=2)
        self.assertEqual((got["Description"], got["LicenseInfo"], got["CompatibleRuntimes"]),
                         ("fanout plugins all sha256:1", "Apache-2.0", ["provided.al2023"]))
        self.assertEqual(c.get_layer_version_by_arn(Arn=got["LayerVersionArn"])["Version"], 2)
        for _ in range(2):  # idempotent
            r = c.delete_layer_version(LayerName="plugins", VersionNumber=2)
            self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertClientError(lambda: c.get_layer_version(LayerName="plugins", VersionNumber=2),
                               404, "ResourceNotFoundException",
                               "The resource you requested does not exist.")
        self.assertEqual(c.publish_layer_version(LayerName="plugins", Content={
            "ZipFile": zips[0]})["Version"], 4)
        # pageSize: every List page is that small; botocore's paginator follows NextMarker
        lambda_options(pageSize=1)
        pages = list(c.get_paginator("list_layer_versions").paginate(LayerName="plugins"))
        self.assertEqual([[x["Version"] for x in p["LayerVersions"]] for p in pages],
                         [[4], [3], [1]])
        c.publish_layer_version(LayerName="other", Content={"ZipFile": zips[1]},
                                CompatibleRuntimes=["python3.12"])
        layers = [la for p in c.get_paginator("list_layers").paginate() for la in p["Layers"]]
        self.assertEqual([(la["LayerName"], la["LatestMatchingVersion"]["Version"])
                          for la in layers], [("other", 1), ("plugins", 4)])
        only = c.list_layers(CompatibleRuntime="provided.al2023")["Layers"]
        self.assertEqual([(la["LayerName"], la["LatestMatchingVersion"]["Version"])
                          for la in only], [("plugins", 3)])
        self.create("uses", Layers=["arn:aws:lambda:us-east-1:123456789012:layer:plugins:3"])
        self.assertClientError(lambda: self.create(
            "gone", Layers=["arn:aws:lambda:us-east-1:123456789012:layer:plugins:2"]), 400,
            "InvalidParameterValueException", "layer:plugins:2 does not exist")

    def test_event_source_mappings_through_their_states(self):
        c = client("lambda")
        self.create("fanout")
        self.assertClientError(lambda: c.create_event_source_mapping(
            FunctionName="nofn", EventSourceArn=STREAM, StartingPosition="LATEST"), 404,
            "ResourceNotFoundException", "function:nofn")
        m = c.create_event_source_mapping(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:fanout",
            EventSourceArn=STREAM, StartingPosition="TRIM_HORIZON", BatchSize=500,
            ParallelizationFactor=4, MaximumRetryAttempts=3, BisectBatchOnFunctionError=True,
            FunctionResponseTypes=["ReportBatchItemFailures"])
        self.assertEqual(m["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual((m["State"], m["BatchSize"], m["ParallelizationFactor"],
                          m["FunctionArn"]),
                         ("Creating", 500, 4,
                          "arn:aws:lambda:us-east-1:123456789012:function:fanout"))
        u = m["UUID"]
        e = self.assertClientError(lambda: c.create_event_source_mapping(
            FunctionName="fanout", EventSourceArn=STREAM, StartingPosition="LATEST"), 409,
            "ResourceConflictException")
        self.assertEqual(error_of(e)[2], "The event source arn (\" %s \") and function "
                         "(\" fanout \") provided mapping already exists. Please update or "
                         "delete the existing mapping with UUID %s" % (STREAM, u))

        def esm_states(n):
            return [c.get_event_source_mapping(UUID=u)["State"] for _ in range(n)]

        self.assertEqual(esm_states(2), ["Creating", "Enabled"])
        up = c.update_event_source_mapping(UUID=u, Enabled=False)
        self.assertEqual((up["State"], up["StartingPosition"]), ("Disabling", "TRIM_HORIZON"))
        self.assertClientError(lambda: c.update_event_source_mapping(UUID=u, BatchSize=10), 400,
                               "ResourceInUseException", u)
        self.assertEqual(esm_states(2), ["Disabling", "Disabled"])
        up = c.update_event_source_mapping(UUID=u, Enabled=True, BatchSize=10,
                                           FunctionResponseTypes=[])
        self.assertEqual(up["State"], "Enabling")
        self.assertEqual(esm_states(2), ["Enabling", "Enabled"])
        got = c.get_event_source_mapping(UUID=u)
        self.assertEqual((got["BatchSize"], got["FunctionResponseTypes"]), (10, []))
        self.assertEqual(c.update_event_source_mapping(UUID=u, BatchSize=20)["State"],
                         "Updating")
        self.assertEqual(esm_states(2), ["Updating", "Enabled"])
        d = c.delete_event_source_mapping(UUID=u)
        self.assertEqual((d["ResponseMetadata"]["HTTPStatusCode"], d["State"]), (202, "Deleting"))
        self.assertEqual(esm_states(1), ["Deleting"])
        self.assertClientError(lambda: c.get_event_source_mapping(UUID=u), 404,
                               "ResourceNotFoundException")
        self.assertEqual(c.list_event_source_mappings(FunctionName="fanout")
                         ["EventSourceMappings"], [])
        # esmPolls 0: settled at once
        lambda_options(esmPolls=0)
        m = c.create_event_source_mapping(FunctionName="fanout", EventSourceArn=DDB_STREAM,
                                          StartingPosition="LATEST", Enabled=False)
        self.assertEqual(c.get_event_source_mapping(UUID=m["UUID"])["State"], "Disabled")
        got = received("lambda_ctl", m["UUID"])
        self.assertEqual(got[0]["params"]["EventSourceArn"], DDB_STREAM)

    def test_event_source_mapping_validation(self):
        c = unchecked_lambda()
        self.create("fanout")
        bad = [({"StartingPosition": None}, "InvalidParameterValueException", "StartingPosition"),
               ({"BatchSize": 10001}, "ValidationException", "less than or equal to 10000"),
               ({"ParallelizationFactor": 11}, "ValidationException", "parallelizationFactor"),
               ({"MaximumRetryAttempts": -2}, "ValidationException", "valid min value: -1"),
               ({"FunctionResponseTypes": ["Other"]}, "ValidationException",
                "valid values: ReportBatchItemFailures"),
               ({"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q"},
                "InvalidParameterValueException", "Kinesis streams"),
               ({"EventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t"},
                "InvalidParameterValueException", "DynamoDB streams"),
               ({"EventSourceArn": DDB_STREAM, "StartingPosition": "AT_TIMESTAMP",
                 "StartingPositionTimestamp": 1}, "InvalidParameterValueException", "Kinesis")]
        for extra, code, part in bad:
            args = {"FunctionName": "fanout", "EventSourceArn": STREAM,
                    "StartingPosition": "LATEST"}
            args.update(extra)
            args = {k: v for k, v in args.items() if v is not None}
            with self.subTest(extra=extra):
                self.assertClientError(lambda: c.create_event_source_mapping(**args), 400, code,
                                       part)
        self.assertClientError(lambda: c.get_event_source_mapping(UUID="nope"), 404,
                               "ResourceNotFoundException")

    def test_list_event_source_mappings_pages_and_filters(self):
        c = client("lambda")
        self.create("a")
        self.create("b")
        lambda_options(esmPolls=0, pageSize=2)
        made = []
        for fn, stream in (("a", "s1"), ("a", "s2"), ("b", "s1"), ("a", "s3")):
            made.append(c.create_event_source_mapping(
                FunctionName=fn, EventSourceArn=STREAM + "-" + stream,
                StartingPosition="LATEST")["UUID"])
        first = c.list_event_source_mappings()
        self.assertEqual(len(first["EventSourceMappings"]), 2)
        self.assertIn("NextMarker", first)
        pages = list(c.get_paginator("list_event_source_mappings").paginate(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:a"))
        self.assertEqual([[m["UUID"] for m in p["EventSourceMappings"]] for p in pages],
                         [made[0:2], [made[3]]])
        by_source = c.list_event_source_mappings(EventSourceArn=STREAM + "-s1")
        self.assertEqual([m["UUID"] for m in by_source["EventSourceMappings"]],
                         [made[0], made[2]])
        both = c.list_event_source_mappings(FunctionName="b", EventSourceArn=STREAM + "-s1")
        self.assertEqual([m["UUID"] for m in both["EventSourceMappings"]], [made[2]])
        self.create("c")
        pages = list(c.get_paginator("list_functions").paginate())
        self.assertEqual([[f["FunctionName"] for f in p["Functions"]] for p in pages],
                         [["a", "b"], ["c"]])

    def test_faults_errors_and_routing(self):
        c = client("lambda")
        self.create("fanout")
        faults({"service": "lambda_ctl", "operation": "GetFunctionConfiguration",
                "kind": "throttle"},
               {"service": "lambda_ctl", "operation": "ListLayers", "kind": "error500"})
        self.assertClientError(lambda: c.get_function_configuration(FunctionName="fanout"),
                               429, "TooManyRequestsException")
        self.assertClientError(lambda: c.list_layers(), 500, "ServiceException")
        status, headers, body = signed("GET", "/2015-03-31/functions/nope/configuration",
                                       "lambda")
        self.assertEqual((status, headers["x-amzn-errortype"]),
                         (404, "ResourceNotFoundException"))
        self.assertEqual(json.loads(body), {"Type": "User", "Message": "Function not found: "
                                            "arn:aws:lambda:us-east-1:123456789012:function:nope"})
        # GET /functions/F: this store's function, else the resources' one (lambda_.py)
        self.assertEqual(c.get_function(FunctionName="fanout")["Configuration"]["Handler"],
                         "bootstrap")
        self.assertEqual(c.get_function(FunctionName="fn")["Configuration"]["FunctionName"], "fn")
        stats = ctl("GET", "/__stats")["by_service"]
        self.assertEqual(stats["lambda"]["GetFunction"]["count"], 1)
        self.assertEqual(stats["lambda_ctl"]["GetFunction"]["count"], 1)

    def test_access_resource_and_control(self):
        svc = aws.lambda_ctl.SERVICES[0]
        self.assertEqual(svc.model, "lambda")

        class FakeCtx:
            region, account, query = "us-east-1", "123456789012", []

            def __init__(self, method, path, body=b""):
                self.method, self.path, self.body = method, path, body

            def qparam(self, name):
                return None

        base = "arn:aws:lambda:us-east-1:123456789012:"
        for method, path, body, want in (
                ("POST", "/2015-03-31/functions", b'{"FunctionName": "f"}', "function:f"),
                ("PUT", "/2015-03-31/functions/f/code", b"", "function:f"),
                ("GET", "/2015-03-31/functions/" + quote(base + "function:f", safe=""), b"",
                 "function:f"),
                ("POST", "/2018-10-31/layers/p/versions", b"", "layer:p"),
                ("DELETE", "/2018-10-31/layers/p/versions/3", b"", "layer:p:3"),
                ("PUT", "/2015-03-31/event-source-mappings/u-1", b"", "event-source-mapping:u-1"),
                ("POST", "/2015-03-31/event-source-mappings/", b"", "event-source-mapping:*")):
            with self.subTest(path=path):
                self.assertEqual(svc.access_resource(FakeCtx(method, path, body)), base + want)
        self.assertEqual(lambda_options(pendingPolls=2)["options"]["pendingPolls"], 2)
        conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=10)
        conn.request("POST", "/__lambda", body=json.dumps({"pendingPoll": 1}))
        r = conn.getresponse()
        self.assertEqual(r.status, 400)
        self.assertIn("unknown option(s) pendingPoll", json.loads(r.read())["message"])
        conn.close()
        ctl("POST", "/__reset")
        self.assertEqual(ctl("GET", "/__lambda")["options"]["pendingPolls"], 1)


# ---- IoT Data Plane ----

class Iot(Base):
    def test_publish(self):
        iot = client("iot-data", "ap-southeast-2", ROLE)
        iot.publish(topic="fleet/truck 1/gps", qos=1, retain=True, payload=b'{"lat": 1}')
        iot.publish(topic="plain", payload=b"\x00bin")
        g = received("iot", "fleet/truck 1/gps")
        self.assertEqual(len(g), 1)
        self.assertEqual((g[0]["qos"], g[0]["retain"], g[0]["payload"]), (1, True, '{"lat": 1}'))
        self.assertEqual((g[0]["accessKeyId"], g[0]["region"]),
                         (ROLE["accessKeyId"], "ap-southeast-2"))
        p = received("iot", "plain")[0]
        self.assertEqual((p["qos"], p["retain"], p["payloadBase64"]),
                         (0, False, base64.b64encode(b"\x00bin").decode()))
        st, h, out = signed("POST", "/topics/raw%2Fslash?qos=0", "iotdata", body=b"x")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(out)["message"], "OK")

    def test_query_canonicalised_like_aws(self):
        # signed over the canonical query (names and values encoded, sorted),
        # sent unsorted with a raw '/': AWS decodes and re-encodes what it
        # receives, and so does the server
        host = "127.0.0.1:%d" % SRV["port"]
        params = [("qos", "1"), ("contentType", "application/json"), ("retain", "false")]
        req = AWSRequest(method="POST", url="http://%s/topics/q" % host, data=b"{}",
                         params=params)
        SigV4Auth(Credentials(BASE["accessKeyId"], BASE["secretAccessKey"]), "iotdata",
                  "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=5)
        conn.request("POST", "/topics/q?retain=false&contentType=application/json&qos=1",
                     body=b"{}", headers=dict(req.headers.items()))
        r = conn.getresponse()
        self.assertEqual(r.status, 200, r.read())
        conn.close()
        self.assertEqual(received("iot", "q")[0]["contentType"], "application/json")

    def test_errors_and_faults(self):
        iot = client("iot-data")
        self.assertClientError(lambda: iot.publish(topic="t", qos=2, payload=b"x"), 400,
                               "InvalidRequestException", "qos")
        iot.publish(topic="t", payload=b"x" * 131072)
        self.assertClientError(lambda: iot.publish(topic="t", payload=b"x" * 131073), 413,
                               "RequestEntityTooLargeException")
        self.assertClientError(lambda: iot.publish(topic="a/#", payload=b"x"), 400,
                               "InvalidRequestException")
        faults({"service": "iot", "kind": "throttle"}, {"service": "iot", "kind": "error500"})
        self.assertClientError(lambda: iot.publish(topic="t", payload=b"x"), 429,
                               "ThrottlingException")
        self.assertClientError(lambda: iot.publish(topic="t", payload=b"x"), 500,
                               "InternalFailureException")
        self.assertEqual(len(received("iot", "t")), 1)


# ---- OpenSearch ----

class OpenSearch(Base):
    def test_bulk_paths_and_items(self):
        st, r = bulk([{"index": {"_index": "logs", "_id": "1"}}, {"a": 1},
                      {"create": {"_index": "logs"}}, {"b": 2},
                      {"index": {"_index": "logs", "_id": "1"}}, {"a": 3}])
        self.assertEqual(st, 200)
        self.assertFalse(r["errors"])
        items = [next(iter(i.items())) for i in r["items"]]
        self.assertEqual([(a, i["status"], i["result"]) for a, i in items],
                         [("index", 201, "created"), ("create", 201, "created"),
                          ("index", 200, "updated")])
        self.assertTrue(items[1][1]["_id"])
        self.assertIsInstance(r["took"], int)
        st, r = bulk([{"index": {}}, {"c": 3}], path="/metrics/_bulk", region="eu-central-1",
                     cred=ROLE, ctype="application/json; charset=UTF-8")
        self.assertEqual((st, r["items"][0]["index"]["_index"]), (200, "metrics"))
        st, r = bulk([{"index": {"_id": "x"}}, {"d": 4}], path="/old/_doc/_bulk")
        self.assertEqual(st, 200)
        got = received("opensearch", "logs")
        self.assertEqual([g["source"] for g in got], [{"a": 1}, {"b": 2}, {"a": 3}])
        m = received("opensearch", "metrics")[0]
        self.assertEqual((m["accessKeyId"], m["region"]), (ROLE["accessKeyId"], "eu-central-1"))
        self.assertEqual(len(received("opensearch")), 5)

    def test_item_errors(self):
        st, r = bulk([{"index": {"_index": "logs", "_id": "ok"}}, {"a": 1},
                      {"index": {"_index": "logs", "_id": "bad"}}, "this is not json",
                      {"create": {"_index": "logs", "_id": "ok"}}, {"a": 2},
                      {"index": {"_index": "Upper"}}, {"a": 3}])
        self.assertEqual(st, 200)
        self.assertTrue(r["errors"])
        st_types = [(i[k]["status"], i[k].get("error", {}).get("type"))
                    for i in r["items"] for k in i]
        self.assertEqual(st_types, [(201, None), (400, "mapper_parsing_exception"),
                                    (409, "version_conflict_engine_exception"),
                                    (400, "invalid_index_name_exception")])
        self.assertEqual(len(received("opensearch", "logs")), 1)

    def test_request_errors(self):
        st, r = bulk([{"index": {"_index": "logs", "_id": "i" * 513}}, {"a": 1}])
        self.assertEqual((st, r["error"]["type"]), (400, "action_request_validation_exception"))
        self.assertIn("is too long, must be no longer than 512 bytes but was: 513",
                      r["error"]["reason"])
        st, r = bulk([{"index": {"_index": "logs", "_id": "i" * 512}}, {"a": 1}])
        self.assertEqual(st, 200)
        st, r = bulk(None, raw=b'{"index":{"_index":"logs"}}\n{"a":1}')
        self.assertEqual((st, r["error"]["type"]), (400, "illegal_argument_exception"))
        st, r = bulk([{"index": {}}, {"a": 1}])
        self.assertEqual(st, 400)
        self.assertIn("index is missing", r["error"]["reason"])
        st, r = bulk([{"index": {"_index": "x"}}, {"a": 1}], ctype="text/plain")
        self.assertEqual(st, 406)
        self.assertEqual(len(received("opensearch")), 1)

    def test_info(self):
        st, h, out = signed("GET", "/", "es")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(out)["version"]["distribution"], "opensearch")

    def test_faults(self):
        faults({"service": "opensearch", "kind": "partial", "every": 2, "target": "logs"},
               {"service": "opensearch", "kind": "throttle", "skip": 1},
               {"service": "opensearch", "kind": "error500", "count": 1})
        lines = []
        for n in range(4):
            lines += [{"index": {"_id": str(n)}}, {"n": n}]
        st, r = bulk(lines, path="/logs/_bulk")
        self.assertEqual(st, 200)
        self.assertTrue(r["errors"])
        self.assertEqual([i["index"]["status"] for i in r["items"]], [201, 429, 201, 429])
        self.assertEqual(r["items"][1]["index"]["error"]["type"], "rejected_execution_exception")
        self.assertEqual([g["id"] for g in received("opensearch", "logs")], ["0", "2"])
        # the throttle rule lets one through (skip 1), error500 takes the next
        st, r = bulk(lines, path="/other/_bulk")
        self.assertEqual(st, 500)
        st, r = bulk(lines, path="/other/_bulk")
        self.assertEqual((st, r["error"]["type"], r["status"]),
                         (429, "rejected_execution_exception", 429))
        st, r = bulk(lines, path="/other/_bulk")
        self.assertEqual(st, 200)
        # /_bulk with every item in "logs" is matched by the rule's target too
        faults({"service": "opensearch", "kind": "partial", "indexes": [0], "target": "logs"})
        st, r = bulk([{"index": {"_index": "logs", "_id": "z"}}, {"n": 9}])
        self.assertEqual(r["items"][0]["index"]["status"], 429)


# ---- EventBridge ----

def event(n, **extra):
    e = {"Source": "com.example", "DetailType": "Thing", "Detail": json.dumps({"n": n})}
    e.update(extra)
    return e


def put_events_raw(body, ctype="application/x-amz-json-1.1", target="AWSEvents.PutEvents"):
    """(status, JSON answer) of a PutEvents signed and sent by hand."""
    st, _, out = signed("POST", "/", "events", body=body,
                        headers={"Content-Type": ctype, "X-Amz-Target": target})
    return st, json.loads(out)


class EventBridge(Base):
    def test_put_events_regions_and_received(self):
        for region, cred in (("us-east-1", BASE), ("eu-west-1", ROLE)):
            r = client("events", region, cred).put_events(
                Entries=[event(0), event(1, EventBusName="orders")])
            self.assertEqual(r["FailedEntryCount"], 0)
            self.assertEqual(len(r["Entries"]), 2)
            self.assertTrue(all(x["EventId"] for x in r["Entries"]))
        got = received("eventbridge")
        self.assertEqual([(g["bus"], g["detail"], g["region"], g["accessKeyId"]) for g in got],
                         [("default", {"n": 0}, "us-east-1", BASE["accessKeyId"]),
                          ("orders", {"n": 1}, "us-east-1", BASE["accessKeyId"]),
                          ("default", {"n": 0}, "eu-west-1", ROLE["accessKeyId"]),
                          ("orders", {"n": 1}, "eu-west-1", ROLE["accessKeyId"])])
        self.assertEqual((got[0]["source"], got[0]["detailType"], got[3]["accountId"]),
                         ("com.example", "Thing", "222222222222"))
        self.assertEqual(len(received("events", "orders")), 2)

    def test_entry_errors(self):
        r = client("events").put_events(Entries=[
            event(0), event(1, Detail="[1, 2]"), event(2, Detail="{"), event(3),
            event(4, Detail=json.dumps({"x": "y" * 262144}))])
        self.assertEqual(r["FailedEntryCount"], 3)
        self.assertEqual([x.get("ErrorCode") for x in r["Entries"]],
                         [None, "MalformedDetail", "MalformedDetail", None, "InvalidArgument"])
        self.assertEqual([g["index"] for g in received("eventbridge")], [0, 3])
        # required fields: botocore refuses to send them, so by hand
        body = json.dumps({"Entries": [{"Source": "s", "Detail": "{}"}, event(5)]})
        st, out = put_events_raw(body.encode())
        self.assertEqual((st, out["FailedEntryCount"], out["Entries"][0]["ErrorCode"]),
                         (200, 1, "InvalidArgument"))

    def test_request_limits_and_shape(self):
        ev = client("events")
        self.assertClientError(lambda: ev.put_events(Entries=[event(i) for i in range(11)]),
                               400, "ValidationException", "1 to 10")
        big = json.dumps({"x": "y" * 200000})
        self.assertClientError(lambda: ev.put_events(Entries=[event(i, Detail=big)
                                                              for i in range(6)]),
                               400, "ValidationException", "over the limit")
        one = json.dumps({"Entries": [event(0)]}).encode()
        # ListRules passes botocore's model; this endpoint does not serve it
        for st, out in (put_events_raw(b"{}", target="AWSEvents.ListRules"),
                        put_events_raw(one, ctype="application/json")):
            self.assertEqual((st, out["__type"]), (400, "UnknownOperationException"))
        # {"Entries": {}}: refused by botocore's events model (a list is expected)
        for body, code in ((b'{"Entries": []}', "ValidationException"),
                           (b"not json", "SerializationException"),
                           (b'{"Entries": {}}', "ValidationException")):
            st, out = put_events_raw(body)
            self.assertEqual((st, out["__type"]), (400, code), body)
        self.assertEqual(received("eventbridge"), [])

    def test_faults(self):
        faults({"service": "events", "kind": "partial", "indexes": [0, 2], "target": "bus"},
               {"service": "eventbridge", "kind": "throttle"},
               {"service": "eventbridge", "kind": "error500"})
        ev = client("events")
        r = ev.put_events(Entries=[event(i, EventBusName="bus") for i in range(3)])
        self.assertEqual(r["FailedEntryCount"], 2)
        self.assertEqual([x.get("ErrorCode") for x in r["Entries"]],
                         ["InternalFailure", None, "InternalFailure"])
        self.assertEqual(r["Entries"][0]["ErrorMessage"], "Internal service error")
        self.assertEqual([g["detail"]["n"] for g in received("eventbridge", "bus")], [1])
        self.assertClientError(lambda: ev.put_events(Entries=[event(0)]), 400,
                               "ThrottlingException", "Rate exceeded")
        self.assertClientError(lambda: ev.put_events(Entries=[event(0)]), 500,
                               "InternalException")
        self.assertEqual(ev.put_events(Entries=[event(0)])["FailedEntryCount"], 0)
        self.assertEqual(ctl("GET", "/__stats")["faults_by_service"]["eventbridge"], 3)


# ---- control-plane lookups (fanout register) ----

ES_HOST = "search-logs-abc123.us-east-1.es.amazonaws.com"
VPC_HOST = "vpc-private-abc123.us-east-1.es.amazonaws.com"
IOT_HOST = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
CONTROL_RESOURCES = {
    "sns": ["arn:aws:sns:us-east-1:123456789012:page-%03d" % i for i in range(120)],
    "es": {"logs": ES_HOST, "private": {"vpc": VPC_HOST}},
    "memcached": {"sessions": "sessions.cfg.use1.cache.amazonaws.com:11211"},
    "redis": {"cache": "cache.ng.0001.use1.cache.amazonaws.com:6379"},
    "iotEndpoint": IOT_HOST}


class ControlPlane(Base):
    def setUp(self):
        super().setUp()
        res = ctl("POST", "/__resources", CONTROL_RESOURCES)
        self.assertEqual(res["iotEndpoint"], IOT_HOST)
        self.assertEqual(res["redis"], CONTROL_RESOURCES["redis"])
        self.assertIn("stream-a", res["firehose"])

    def test_sns_list_topics_pages(self):
        pages = list(client("sns").get_paginator("list_topics").paginate())
        self.assertGreaterEqual(len(pages), 2)
        self.assertEqual(len(pages[0]["Topics"]), 100)
        arns = [t["TopicArn"] for p in pages for t in p["Topics"]]
        self.assertEqual(arns, sorted(arns))
        self.assertIn(TOPIC, arns)
        self.assertIn("arn:aws:sns:us-east-1:123456789012:page-119", arns)
        self.assertClientError(lambda: client("sns").list_topics(NextToken="x"), 400,
                               "InvalidParameter")

    def test_firehose_describe(self):
        d = client("firehose").describe_delivery_stream(DeliveryStreamName="stream-a")
        d = d["DeliveryStreamDescription"]
        self.assertEqual((d["DeliveryStreamName"], d["DeliveryStreamStatus"]),
                         ("stream-a", "ACTIVE"))
        self.assertEqual(d["DeliveryStreamARN"],
                         "arn:aws:firehose:us-east-1:123456789012:deliverystream/stream-a")
        self.assertClientError(lambda: client("firehose").describe_delivery_stream(
            DeliveryStreamName="nope"), 400, "ResourceNotFoundException")

    def test_lambda_get_function(self):
        c = client("lambda")
        self.assertEqual(c.get_function(FunctionName="fn")["Configuration"]["FunctionArn"],
                         "arn:aws:lambda:us-east-1:123456789012:function:fn")
        self.assertEqual(c.get_function(FunctionName="fn:live")["Configuration"]["FunctionName"],
                         "fn")
        self.assertClientError(lambda: c.get_function(FunctionName="fn:gone"), 404,
                               "ResourceNotFoundException")

    def test_iot_describe_endpoint(self):
        c = client("iot")
        self.assertEqual(c.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"],
                         IOT_HOST)
        self.assertEqual(c.describe_endpoint(endpointType="iot:Data")["endpointAddress"],
                         IOT_HOST.replace("-ats.", ".", 1))
        self.assertClientError(lambda: c.describe_endpoint(endpointType="iot:Jobs"), 400,
                               "InvalidRequestException")

    def test_es_and_opensearch_describe_domain(self):
        st = client("es").describe_elasticsearch_domain(DomainName="logs")["DomainStatus"]
        self.assertEqual((st["DomainName"], st["Endpoint"]), ("logs", ES_HOST))
        st = client("opensearch").describe_domain(DomainName="private")["DomainStatus"]
        self.assertEqual(st["Endpoints"], {"vpc": VPC_HOST})
        self.assertClientError(lambda: client("opensearch").describe_domain(DomainName="nope"),
                               409, "ResourceNotFoundException")
        stats = ctl("GET", "/__stats")["by_service"]["es_control"]
        self.assertEqual(set(stats), {"DescribeElasticsearchDomain", "DescribeDomain"})

    def test_elasticache(self):
        c = client("elasticache")
        cl = c.describe_cache_clusters(CacheClusterId="sessions")["CacheClusters"][0]
        self.assertEqual(cl["ConfigurationEndpoint"],
                         {"Address": "sessions.cfg.use1.cache.amazonaws.com", "Port": 11211})
        g = c.describe_replication_groups(ReplicationGroupId="cache")["ReplicationGroups"][0]
        self.assertEqual(g["NodeGroups"][0]["PrimaryEndpoint"]["Port"], 6379)
        self.assertClientError(lambda: c.describe_cache_clusters(CacheClusterId="nope"), 404,
                               "CacheClusterNotFound")
        self.assertClientError(lambda: c.describe_replication_groups(ReplicationGroupId="nope"),
                               404, "ReplicationGroupNotFoundFault")
        # a Query API: signature failures carry the Query codes
        bad = client("elasticache", secret="not-the-secret")
        self.assertClientError(lambda: bad.describe_cache_clusters(CacheClusterId="sessions"),
                               403, "SignatureDoesNotMatch")

    def test_faults_on_lookups(self):
        faults({"service": "elasticache", "kind": "status", "status": 503,
                "contentType": "text/xml", "body": "<ErrorResponse><Error><Type>Receiver</Type>"
                "<Code>Busy</Code><Message>busy</Message></Error></ErrorResponse>"},
               {"service": "lambda", "operation": "GetFunction", "kind": "error500"})
        self.assertClientError(lambda: client("elasticache").describe_cache_clusters(
            CacheClusterId="sessions"), 503, "Busy")
        self.assertClientError(lambda: client("lambda").get_function(FunctionName="fn"), 500,
                               "ServiceException")


# ---- request validation against botocore's models (aws/model.py) ----

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
     "Action": "sts:AssumeRole"}]})
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
IAM_CREATE = ("Action=CreateRole&Version=2010-05-08&RoleName=fanoutRole&Path=%2F"
              "&AssumeRolePolicyDocument=" + quote(TRUST, safe="") +
              "&Tags.member.1.Key=fanout%3Afunction&Tags.member.1.Value=fanout"
              "&MaxSessionDuration=3600")
LAMBDA_CREATE = {"FunctionName": "fanout", "Runtime": "provided.al2023", "Handler": "bootstrap",
                 "Role": "arn:aws:iam::123456789012:role/fanoutRole",
                 "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},
                 "Architectures": ["arm64"], "MemorySize": 128, "Timeout": 30,
                 "Layers": ["arn:aws:lambda:us-east-1:123456789012:layer:fanout-plugins:3"],
                 "Environment": {"Variables": {"FANOUT_TABLE": "fanoutTargets"}},
                 "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
                 "Tags": {"fanout:function": "fanout"}}
DDB_CREATE = {"TableName": "fanoutTargets", "BillingMode": "PAY_PER_REQUEST",
              "AttributeDefinitions": [{"AttributeName": "sourceArn", "AttributeType": "S"},
                                       {"AttributeName": "id", "AttributeType": "S"}],
              "KeySchema": [{"AttributeName": "sourceArn", "KeyType": "HASH"},
                            {"AttributeName": "id", "KeyType": "RANGE"}],
              "Tags": [{"Key": "fanout:function", "Value": "fanout"}]}


def jsonreq(target, body, version="1.0"):
    return ("POST", "/", {"X-Amz-Target": target,
                          "Content-Type": "application/x-amz-json-" + version},
            json.dumps(body).encode())


class Model(unittest.TestCase):
    """model.check_request on hand-made requests, without a server."""

    def ok(self, models, method, target, headers, body):
        return model.check_request(models, method, target, headers, body)

    def refused(self, models, method, target, headers, body, code, *parts):
        with self.assertRaises(model.ModelError) as cm:
            model.check_request(models, method, target, headers, body)
        e = cm.exception
        self.assertEqual((e.status, e.code), (400, code), e.errors)
        self.assertTrue(e.message.startswith("Parameter validation failed:\n"), e.message)
        for p in parts:
            self.assertIn(p, e.message)
        return e

    def test_iam_query(self):
        c = self.ok("iam", "POST", "/", FORM, IAM_CREATE.encode())
        self.assertEqual((c.model, c.operation), ("iam", "CreateRole"))
        self.assertEqual(c.params, {"RoleName": "fanoutRole", "Path": "/",
                                    "AssumeRolePolicyDocument": TRUST,
                                    "Tags": [{"Key": "fanout:function", "Value": "fanout"}],
                                    "MaxSessionDuration": 3600})
        # the parameters may also come in the URL's query
        c = self.ok("iam", "POST", "/?Action=GetRole&Version=2010-05-08&RoleName=r", {}, b"")
        self.assertEqual((c.operation, c.params), ("GetRole", {"RoleName": "r"}))
        bad = (("&RoleNam=x", 'Unknown parameter in query: "RoleNam"'),
               ("&Tags.member.1.Color=red", '"Tags.member.1.Color" maps to no member'),
               ("&MaxSessionDuration=1h", "Invalid type for parameter MaxSessionDuration, "
                "value: 1h"),
               ("&Tags.member.3.Key=a&Tags.member.3.Value=b", "must run 1..n without gaps"))
        for extra, part in bad:
            self.refused("iam", "POST", "/", FORM, (IAM_CREATE + extra).encode(),
                         "ValidationError", part)
        self.refused("iam", "POST", "/", FORM, IAM_CREATE.replace("RoleName=fanoutRole&", "")
                     .encode(), "ValidationError",
                     'Missing required parameter in input: "RoleName"')
        self.refused("iam", "POST", "/", FORM, b"Action=ListPolicies&Version=2010-05-08"
                     b"&Scope=Mine", "ValidationError", "Invalid value for parameter Scope, "
                     "value: Mine, valid values: All, AWS, Local")
        self.refused("iam", "POST", "/", FORM, b"Action=ListRoles&Version=2010-05-08"
                     b"&MaxItems=0", "ValidationError", "valid min value: 1")
        self.refused("iam", "POST", "/", FORM, b"Action=DeleteRole&Version=2010-05-08"
                     b"&RoleName=", "ValidationError", "valid min length: 1")
        e = self.refused("iam", "POST", "/", FORM, IAM_CREATE.replace(
            "2010-05-08", "2011-06-15").encode(), "InvalidAction",
            "Version 2011-06-15 is not iam's API version 2010-05-08")
        self.assertEqual(e.operation, "CreateRole")
        e = self.refused("iam", "POST", "/", FORM, b"Action=CreateUserGroup&Version=2010-05-08",
                         "InvalidAction", "Could not find operation CreateUserGroup")
        self.assertIsNone(e.operation)
        self.refused("iam", "POST", "/", {"Content-Type": "application/json"},
                     IAM_CREATE.encode(), "MissingAction")

    def test_query_maps_and_booleans(self):
        body = ("Action=Publish&Version=2010-03-31&TopicArn=" + quote(TOPIC, safe="") +
                "&Message=m&MessageAttributes.entry.1.Name=k"
                "&MessageAttributes.entry.1.Value.DataType=String"
                "&MessageAttributes.entry.1.Value.StringValue=v")
        c = self.ok("sns", "POST", "/", FORM, body.encode())
        self.assertEqual(c.params["MessageAttributes"],
                         {"k": {"DataType": "String", "StringValue": "v"}})
        c = self.ok("iam", "POST", "/", FORM, b"Action=UpdateAccountPasswordPolicy"
                    b"&Version=2010-05-08&RequireSymbols=true&MinimumPasswordLength=8")
        self.assertEqual(c.params, {"RequireSymbols": True, "MinimumPasswordLength": 8})
        self.refused("iam", "POST", "/", FORM, b"Action=UpdateAccountPasswordPolicy"
                     b"&Version=2010-05-08&RequireSymbols=yes", "ValidationError",
                     "Invalid type for parameter RequireSymbols, value: yes")

    def test_lambda_rest_json(self):
        c = self.ok("lambda", "POST", "/2015-03-31/functions", {},
                    json.dumps(LAMBDA_CREATE).encode())
        self.assertEqual((c.operation, c.params), ("CreateFunction", LAMBDA_CREATE))
        c = self.ok("lambda", "GET", "/2015-03-31/event-source-mappings/?FunctionName=x", {},
                    b"")
        self.assertEqual((c.operation, c.params), ("ListEventSourceMappings",
                                                   {"FunctionName": "x"}))
        c = self.ok("lambda", "PUT", "/2015-03-31/functions/f%3Aa/configuration", {},
                    b'{"Timeout": 60, "Environment": {"Variables": {"A": "1"}}}')
        self.assertEqual((c.operation, c.params), ("UpdateFunctionConfiguration", {
            "FunctionName": "f:a", "Timeout": 60, "Environment": {"Variables": {"A": "1"}}}))
        # the most specific route wins; literals in the requestUri must be there
        c = self.ok("lambda", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=arn%3Ax", {},
                    b"")
        self.assertEqual((c.operation, c.params), ("GetLayerVersionByArn", {"Arn": "arn:x"}))
        c = self.ok("lambda", "GET", "/2018-10-31/layers?MaxItems=5", {}, b"")
        self.assertEqual((c.operation, c.params), ("ListLayers", {"MaxItems": 5}))
        c = self.ok("lambda", "GET", "/2018-10-31/layers/fanout-plugins/versions/3", {}, b"")
        self.assertEqual(c.params, {"LayerName": "fanout-plugins", "VersionNumber": 3})
        c = self.ok("lambda", "POST", "/2015-03-31/functions/fn/invocations",
                    {"X-Amz-Invocation-Type": "Event"}, b"{}")
        self.assertEqual(c.params, {"FunctionName": "fn", "InvocationType": "Event",
                                    "Payload": b"{}"})
        fn = "/2015-03-31/functions"
        for body, part in (
                (dict(LAMBDA_CREATE, Memory=128), 'Unknown parameter in body: "Memory"'),
                ({k: v for k, v in LAMBDA_CREATE.items() if k != "Role"},
                 'Missing required parameter in input: "Role"'),
                (dict(LAMBDA_CREATE, Timeout="30"), "Invalid type for parameter Timeout, "
                 "value: 30, type: <class 'str'>"),
                (dict(LAMBDA_CREATE, Architectures=["sparc"]),
                 "Invalid value for parameter Architectures[0], value: sparc, valid values: "
                 "x86_64, arm64"),
                (dict(LAMBDA_CREATE, Code={"ZipFile": "not base64!"}),
                 "Code.ZipFile: not base64"),
                (dict(LAMBDA_CREATE, MemorySize=64), "valid min value: 128")):
            self.refused("lambda", "POST", fn, {}, json.dumps(body).encode(),
                         "ValidationException", part)
        self.refused("lambda", "GET", "/2015-03-31/event-source-mappings/?Function=x", {},
                     b"", "ValidationException", 'Unknown query parameter "Function"')
        self.refused("lambda", "PUT", "/2015-03-31/functions/f/configuration", {},
                     b'{"FunctionName": "f"}', "ValidationException",
                     'Unknown parameter in body: "FunctionName"')
        self.refused("lambda", "PUT", "/2015-03-31/functions/f/configuration", {},
                     b'{"Timeout": ', "SerializationException", "The body is not JSON")
        e = self.refused("lambda", "PATCH", "/2015-03-31/functions/f", {}, b"",
                         "UnknownOperationException", "No operation of lambda")
        self.assertIsNone(e.operation)

    def test_dynamodb_and_kinesis_json(self):
        c = self.ok("dynamodb", *jsonreq("DynamoDB_20120810.CreateTable", DDB_CREATE))
        self.assertEqual((c.operation, c.params), ("CreateTable", DDB_CREATE))
        self.ok("kinesis", *jsonreq("Kinesis_20131202.PutRecords", {
            "StreamName": "in", "Records": [{"Data": "eA==", "PartitionKey": "k"}]}, "1.1"))
        self.refused("dynamodb", *jsonreq("DynamoDB_20120810.CreateTable",
                                          dict(DDB_CREATE, BillingMode="ON_DEMAND")),
                     "ValidationException", "Invalid value for parameter BillingMode, value: "
                     "ON_DEMAND, valid values: PROVISIONED, PAY_PER_REQUEST")
        self.refused("dynamodb", *jsonreq("DynamoDB_20120810.CreateTable",
                                          {k: v for k, v in DDB_CREATE.items()
                                           if k != "KeySchema"}),
                     "ValidationException", 'Missing required parameter in input: "KeySchema"')
        self.refused("dynamodb", *jsonreq("DynamoDB_20120810.DescribeTable", {"Table": "t"}),
                     "ValidationException", 'Unknown parameter in input: "Table"')
        self.refused("kinesis", *jsonreq("Kinesis_20131202.PutRecord", {
            "StreamName": "in", "Data": "eA==", "PartitionKey": 7}, "1.1"),
            "ValidationException", "Invalid type for parameter PartitionKey, value: 7")
        self.refused("kinesis", *jsonreq("Kinesis_20131202.DescribeStreamSummary",
                                         {"StreamName": ""}, "1.1"),
                     "ValidationException", "valid min length: 1")
        self.refused("kinesis", *jsonreq("Kinesis_20130101.ListStreams", {}, "1.1"),
                     "UnknownOperationException", "names no operation of kinesis")
        # a second model is tried when the first knows no such operation
        c = self.ok(("es", "opensearch"), "GET", "/2021-01-01/opensearch/domain/logs", {}, b"")
        self.assertEqual((c.model, c.operation), ("opensearch", "DescribeDomain"))


def iam_raw(body, region="us-east-1"):
    st, h, out = signed("POST", "/", "iam", region, body.encode(), FORM)
    return st, out.decode()


class Iam(Base):
    def test_role_lifecycle(self):
        iam = client("iam")
        r = iam.create_role(RoleName="fanoutRole", Path="/", AssumeRolePolicyDocument=TRUST,
                            Description="fanout", Tags=[{"Key": "fanout:function",
                                                         "Value": "fanout"}])["Role"]
        self.assertEqual(r["Arn"], "arn:aws:iam::123456789012:role/fanoutRole")
        self.assertRegex(r["RoleId"], r"^AROA[A-Z0-9]{17}$")
        self.assertEqual(r["AssumeRolePolicyDocument"], json.loads(TRUST))
        g = iam.get_role(RoleName="fanoutRole")["Role"]
        self.assertEqual((g["RoleId"], g["Tags"], g["MaxSessionDuration"], g["RoleLastUsed"]),
                         (r["RoleId"], [{"Key": "fanout:function", "Value": "fanout"}],
                          3600, {}))
        other = client("iam", cred=ROLE).create_role(
            RoleName="fanoutRole", Path="/svc/", AssumeRolePolicyDocument=TRUST)["Role"]
        self.assertEqual(other["Arn"], "arn:aws:iam::222222222222:role/svc/fanoutRole")
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "Table", "Effect": "Allow", "Action": ["dynamodb:Query"],
             "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/fanoutTargets"}]}
        iam.put_role_policy(RoleName="fanoutRole", PolicyName="fanout",
                            PolicyDocument=json.dumps(policy, indent=2))
        self.assertEqual(iam.get_role_policy(RoleName="fanoutRole", PolicyName="fanout")
                         ["PolicyDocument"], policy)
        st, out = iam_raw("Action=GetRolePolicy&Version=2010-05-08&RoleName=fanoutRole"
                          "&PolicyName=fanout")
        self.assertIn("<PolicyDocument>%7B%0A%20%20%22Version%22", out)
        self.assertIn('xmlns="https://iam.amazonaws.com/doc/2010-05-08/"', out)
        self.assertEqual(iam.list_role_policies(RoleName="fanoutRole")["PolicyNames"],
                         ["fanout"])
        vpc = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        iam.attach_role_policy(RoleName="fanoutRole", PolicyArn=vpc)
        self.assertEqual(iam.list_attached_role_policies(RoleName="fanoutRole")
                         ["AttachedPolicies"],
                         [{"PolicyName": "AWSLambdaVPCAccessExecutionRole", "PolicyArn": vpc}])
        iam.tag_role(RoleName="fanoutRole", Tags=[{"Key": "team", "Value": "data"}])
        iam.untag_role(RoleName="fanoutRole", TagKeys=["fanout:function"])
        self.assertEqual(iam.list_role_tags(RoleName="fanoutRole")["Tags"],
                         [{"Key": "team", "Value": "data"}])
        new_trust = json.loads(TRUST)
        new_trust["Statement"][0]["Principal"]["Service"] = "edgelambda.amazonaws.com"
        iam.update_assume_role_policy(RoleName="fanoutRole",
                                      PolicyDocument=json.dumps(new_trust))
        self.assertEqual(iam.get_role(RoleName="fanoutRole")["Role"]
                         ["AssumeRolePolicyDocument"], new_trust)
        self.assertClientError(lambda: iam.delete_role(RoleName="fanoutRole"), 409,
                               "DeleteConflict", "must delete policies first")
        iam.delete_role_policy(RoleName="fanoutRole", PolicyName="fanout")
        self.assertClientError(lambda: iam.delete_role(RoleName="fanoutRole"), 409,
                               "DeleteConflict", "must detach all policies first")
        iam.detach_role_policy(RoleName="fanoutRole", PolicyArn=vpc)
        iam.delete_role(RoleName="fanoutRole")
        self.assertClientError(lambda: iam.get_role(RoleName="fanoutRole"), 404,
                               "NoSuchEntity", "The role with name fanoutRole cannot be found.")
        # received entries carry the parameters, documents parsed
        got = received("iam")
        ops = [e["operation"] for e in got]
        self.assertEqual(ops[:3], ["CreateRole", "GetRole", "CreateRole"])
        self.assertEqual(got[0]["AssumeRolePolicyDocument"], json.loads(TRUST))
        self.assertEqual(got[0]["Tags"], [{"Key": "fanout:function", "Value": "fanout"}])
        put = [e for e in got if e["operation"] == "PutRolePolicy"][0]
        self.assertEqual((put["PolicyDocument"], put["PolicyName"], put["target"]),
                         (policy, "fanout", "fanoutRole"))
        self.assertEqual(ops[-2:], ["DetachRolePolicy", "DeleteRole"])
        self.assertEqual(ctl("GET", "/__stats")["model_errors"], [])

    def test_errors(self):
        iam = client("iam")
        iam.create_role(RoleName="r1", AssumeRolePolicyDocument=TRUST)
        self.assertClientError(lambda: iam.create_role(
            RoleName="R1", AssumeRolePolicyDocument=TRUST), 409, "EntityAlreadyExists",
            "Role with name R1 already exists.")
        for doc, part in (("{not json", "invalid Json"), ('{"Version": "2012-10-17"}',
                                                           "has no Statement"),
                          ("[1]", "invalid Json")):
            self.assertClientError(lambda: iam.create_role(
                RoleName="r2", AssumeRolePolicyDocument=doc), 400, "MalformedPolicyDocument",
                part)
            self.assertClientError(lambda: iam.put_role_policy(
                RoleName="r1", PolicyName="p", PolicyDocument=doc), 400,
                "MalformedPolicyDocument", part)
        stmt = {"Effect": "Allow", "Action": "sns:Publish",
                "Resource": "arn:aws:sns:us-east-1:123456789012:" + "t" * 60}
        big = {"Version": "2012-10-17", "Statement": [stmt] * 100}
        self.assertClientError(lambda: iam.put_role_policy(
            RoleName="r1", PolicyName="p", PolicyDocument=json.dumps(big)), 409,
            "LimitExceeded", "Maximum policy size of 10240 bytes exceeded for role r1")
        # whitespace does not count
        fits = {"Version": "2012-10-17", "Statement": [stmt] * 60}
        iam.put_role_policy(RoleName="r1", PolicyName="p",
                            PolicyDocument=json.dumps(fits, indent=8))
        self.assertClientError(lambda: iam.get_role_policy(RoleName="r1", PolicyName="q"),
                               404, "NoSuchEntity", "The role policy with name q cannot be "
                               "found.")
        self.assertClientError(lambda: iam.attach_role_policy(
            RoleName="r1", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"), 404,
            "NoSuchEntity", "does not exist or is not attachable")
        self.assertClientError(lambda: iam.detach_role_policy(
            RoleName="r1", PolicyArn="arn:aws:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole"), 404, "NoSuchEntity")
        self.assertClientError(lambda: iam.put_role_policy(
            RoleName="nope", PolicyName="p", PolicyDocument=TRUST), 404, "NoSuchEntity")
        self.assertClientError(lambda: iam.create_role(
            RoleName="bad name", AssumeRolePolicyDocument=TRUST), 400, "ValidationError",
            "roleName")
        self.assertClientError(lambda: iam.create_role(
            RoleName="r3", Path="nopath", AssumeRolePolicyDocument=TRUST), 400,
            "ValidationError", "path is invalid")
        # IAM is global: signed for us-east-1 only
        self.assertClientError(lambda: client("iam", "eu-west-1").get_role(RoleName="r1"),
                               403, "SignatureDoesNotMatch", "not 'eu-west-1'")
        # hand-made requests botocore would not send
        st, out = iam_raw("Action=GetRole&Version=2010-05-08&RoleName=r1&Color=red")
        self.assertEqual(st, 400)
        self.assertIn("<Code>ValidationError</Code>", out)
        self.assertIn('Unknown parameter in query: "Color"', out)
        st, out = iam_raw("Action=GetRole&Version=2009-01-01&RoleName=r1")
        self.assertEqual(st, 400)
        self.assertIn("<Code>InvalidAction</Code>", out)
        st, out = iam_raw("Action=CreateRole&Version=2010-05-08&RoleName=r4"
                          "&AssumeRolePolicyDocument=x&MaxSessionDuration=long")
        self.assertEqual(st, 400)
        errs = ctl("GET", "/__stats")["model_errors"]
        self.assertEqual([(e["service"], e["operation"]) for e in errs],
                         [("iam", "GetRole"), ("iam", "GetRole"), ("iam", "CreateRole")])
        self.assertIn("Invalid type for parameter MaxSessionDuration", errs[2]["errors"][0])
        with open(SRV["log"]) as f:
            last = [json.loads(line) for line in f][-1]
        self.assertEqual((last["status"], last["operation"]), (400, "CreateRole"))
        self.assertEqual(last["model_errors"], errs[2]["errors"])

    def test_faults(self):
        faults({"service": "iam", "operation": "CreateRole", "kind": "throttle"},
               {"service": "iam", "kind": "error500"})
        iam = client("iam")
        self.assertClientError(lambda: iam.create_role(
            RoleName="r", AssumeRolePolicyDocument=TRUST), 400, "Throttling")
        e = self.assertClientError(lambda: iam.create_role(
            RoleName="r", AssumeRolePolicyDocument=TRUST), 500, "ServiceFailure")
        self.assertEqual(e.response["Error"]["Type"], "Receiver")
        iam.create_role(RoleName="r", AssumeRolePolicyDocument=TRUST)


class IamSharedRoles(unittest.TestCase):
    """state.shared["iam_roles"] (read by the Lambda module), in process."""

    def test_roles_created_and_deleted(self):
        import argparse
        from aws import core
        saved = core.STATE, dict(core.SERVICES)
        core.SERVICES.update((svc.name, svc) for svc in aws.SERVICES)
        core.STATE = state = core.State(argparse.Namespace(credentials=None, resources=None,
                                                           log=None))
        try:
            class Ctx(core.Ctx):
                # core.Ctx's base_entry() without an HTTP handler
                def __init__(self, operation, params):
                    self.service, self.operation, self.params = "iam", operation, params
                    self.state, self.account, self.request_id = state, "123456789012", "r"
                    self.akid, self.region, self.target, self.fault = "AK", "us-east-1", None, None
            t0 = time.time()
            svc = aws.SERVICES[[s.name for s in aws.SERVICES].index("iam")]
            svc.handle(Ctx("CreateRole", {"RoleName": "fanoutRole", "Path": "/x/",
                                          "AssumeRolePolicyDocument": TRUST}))
            arn = "arn:aws:iam::123456789012:role/x/fanoutRole"
            self.assertEqual(list(state.shared["iam_roles"]), [arn])
            self.assertTrue(t0 <= state.shared["iam_roles"][arn] <= time.time())
            svc.handle(Ctx("DeleteRole", {"RoleName": "fanoutRole"}))
            self.assertEqual(state.shared["iam_roles"], {})
        finally:
            core.STATE = saved[0]
            core.SERVICES.clear()
            core.SERVICES.update(saved[1])


class Sts(Base):
    def test_caller_identity(self):
        for cred, account in ((BASE, "123456789012"), (ROLE, "222222222222")):
            r = client("sts", "eu-west-1", cred).get_caller_identity()
            self.assertEqual((r["Account"], r["Arn"]),
                             (account, "arn:aws:iam::%s:user/fanout-test" % account))
            self.assertRegex(r["UserId"], r"^AIDA[0-9A-F]{17}$")
        st, h, out = signed("POST", "/", "sts", body=b"Action=GetCallerIdentity"
                            b"&Version=2011-06-15&Account=1", headers=FORM)
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>ValidationError</Code>", out)
        self.assertIn(b'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"', out)
        self.assertClientError(lambda: client("sts").get_session_token(), 400, "InvalidAction",
                               "only GetCallerIdentity")
        self.assertEqual(len(received("sts")), 2)


class Deny(Base):
    def test_query_services(self):
        faults({"service": "iam", "kind": "deny", "operation": "CreateRole"},
               {"service": "sts", "kind": "deny"},
               {"service": "sns", "kind": "deny", "target": TOPIC, "resource": "arn:x"})
        iam = client("iam")
        e = self.assertClientError(lambda: iam.create_role(
            RoleName="fanoutRole", Path="/svc/", AssumeRolePolicyDocument=TRUST), 403,
            "AccessDenied")
        self.assertEqual(e.response["Error"]["Message"],
                         "User: arn:aws:iam::123456789012:user/fanout-test is not authorized "
                         "to perform: iam:CreateRole on resource: arn:aws:iam::123456789012:"
                         "role/svc/fanoutRole because no identity-based policy allows the "
                         "iam:CreateRole action")
        self.assertEqual(e.response["Error"]["Type"], "Sender")
        iam.create_role(RoleName="fanoutRole", AssumeRolePolicyDocument=TRUST)
        self.assertClientError(lambda: client("sts", cred=ROLE).get_caller_identity(), 403,
                               "AccessDenied", "arn:aws:iam::222222222222:user/fanout-test is "
                               "not authorized to perform: sts:GetCallerIdentity on resource: *")
        self.assertClientError(lambda: client("sns").publish(TopicArn=TOPIC, Message="m"),
                               403, "AccessDenied", "sns:Publish on resource: arn:x because")
        self.assertEqual([e["operation"] for e in received("iam")], ["CreateRole"])
        self.assertEqual(received("sns"), [])
        self.assertEqual(ctl("GET", "/__stats")["faults_by_kind"]["deny"], 3)

    def test_json_services(self):
        faults({"service": "lambda", "kind": "deny", "message": "nope"},
               {"service": "dynamodb", "kind": "deny", "operation": "DescribeTable"},
               {"service": "kinesis", "kind": "deny"})
        st, h, out = signed("POST", "/2015-03-31/functions/fn/invocations", "lambda",
                            body=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
        self.assertEqual((st, h["x-amzn-errortype"], json.loads(out)),
                         (403, "AccessDeniedException", {"Message": "nope"}))
        st, h, out = signed("POST", "/", "dynamodb", body=b'{"TableName": "fanoutTargets"}',
                            headers={"X-Amz-Target": "DynamoDB_20120810.DescribeTable",
                                     "Content-Type": "application/x-amz-json-1.0"})
        self.assertEqual((st, json.loads(out)), (400, {
            "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
            "message": "User: arn:aws:iam::123456789012:user/fanout-test is not authorized to "
                       "perform: dynamodb:DescribeTable on resource: arn:aws:dynamodb:us-east-1:"
                       "123456789012:table/fanoutTargets because no identity-based policy "
                       "allows the dynamodb:DescribeTable action"}))
        self.assertClientError(lambda: client("kinesis").describe_stream_summary(
            StreamName="in"), 400, "AccessDeniedException",
            "kinesis:DescribeStreamSummary on resource: arn:aws:kinesis:us-east-1:"
            "123456789012:stream/in because")


class Forward(Base):
    """--forward: validated, then dynalite / kinesalite answer."""

    def test_dynamodb(self):
        ddb = client("dynamodb")
        name = "fwd%d" % int(time.time() * 1000)
        d = ddb.create_table(**dict(DDB_CREATE, TableName=name))["TableDescription"]
        self.assertEqual(d["TableName"], name)
        self.assertEqual(ddb.describe_table(TableName=name)["Table"]["KeySchema"],
                         DDB_CREATE["KeySchema"])
        ddb.put_item(TableName=name, Item={"sourceArn": {"S": "a"}, "id": {"S": "1"}})
        self.assertEqual(ddb.get_item(TableName=name, Key={"sourceArn": {"S": "a"},
                                                           "id": {"S": "1"}})["Item"]["id"],
                         {"S": "1"})
        # the emulator's own errors come back as they are
        self.assertClientError(lambda: ddb.describe_table(TableName="missing-table"), 400,
                               "ResourceNotFoundException")
        # refused here: never reaches dynalite
        st, h, out = signed("POST", "/", "dynamodb", body=json.dumps(
            dict(DDB_CREATE, TableName=name + "x", BillingMode="ON_DEMAND")).encode(),
            headers={"X-Amz-Target": "DynamoDB_20120810.CreateTable",
                     "Content-Type": "application/x-amz-json-1.0"})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(out)["__type"],
                         "com.amazonaws.dynamodb.v20120810#ValidationException")
        direct = harness.botocore_client("dynamodb", SRV["dynalite"].url)
        self.assertNotIn(name + "x", direct.list_tables()["TableNames"])
        direct.close()
        self.assertClientError(lambda: client("dynamodb", secret="wrong").list_tables(), 403,
                               "InvalidSignatureException")
        got = received("dynamodb", name)
        self.assertEqual([(e["operation"], e["status"]) for e in got],
                         [("CreateTable", 200), ("DescribeTable", 200), ("PutItem", 200),
                          ("GetItem", 200)])
        self.assertEqual(got[0]["params"]["BillingMode"], "PAY_PER_REQUEST")

    def test_kinesis(self):
        k = client("kinesis")
        name = "fwd%d" % int(time.time() * 1000)
        k.create_stream(StreamName=name, ShardCount=1)
        for _ in range(50):
            if k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                    "StreamStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
        r = k.put_records(StreamName=name, Records=[{"Data": b"one", "PartitionKey": "a"}])
        self.assertEqual(r["FailedRecordCount"], 0)
        shard = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        it = k.get_shard_iterator(StreamName=name, ShardId=shard,
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        self.assertEqual([x["Data"] for x in k.get_records(ShardIterator=it)["Records"]],
                         [b"one"])
        st, h, out = signed("POST", "/", "kinesis", body=json.dumps(
            {"StreamName": name, "Records": [{"Data": "eA==", "Key": "a"}]}).encode(),
            headers={"X-Amz-Target": "Kinesis_20131202.PutRecords",
                     "Content-Type": "application/x-amz-json-1.1"})
        self.assertEqual(st, 400)
        body = json.loads(out)
        self.assertEqual(body["__type"], "ValidationException")
        self.assertIn('Unknown parameter in Records[0]: "Key"', body["message"])
        self.assertIn('Missing required parameter in Records[0]: "PartitionKey"',
                      body["message"])
        self.assertEqual(ctl("GET", "/__stats")["model_errors"][0]["operation"], "PutRecords")


# ---- the service table: every module is reached ----

def _one_call(name):
    """One request to the service `name`, answered 2xx."""
    if name == "firehose":
        client("firehose").put_record(DeliveryStreamName="stream-a", Record={"Data": b"x"})
    elif name == "sns":
        client("sns").publish(TopicArn=TOPIC, Message="m")
    elif name == "lambda":
        client("lambda").invoke(FunctionName="fn", InvocationType="Event", Payload=b"{}")
    elif name == "lambda_ctl":
        client("lambda").list_layers()
    elif name == "iot":
        client("iot-data").publish(topic="t/table", payload=b"p")
    elif name == "iot_control":
        client("iot").describe_endpoint(endpointType="iot:Data-ATS")
    elif name == "opensearch":
        status, _ = bulk([{"index": {"_index": "table"}}, {"a": 1}])
        assert status == 200, status
    elif name == "es_control":
        client("es").describe_elasticsearch_domain(DomainName="logs")
    elif name == "elasticache":
        client("elasticache").describe_cache_clusters(CacheClusterId="sessions")
    elif name == "eventbridge":
        client("events").put_events(Entries=[event(0)])
    elif name == "iam":
        client("iam").create_role(RoleName="table-role", AssumeRolePolicyDocument=TRUST)
    elif name == "sts":
        client("sts").get_caller_identity()
    elif name == "dynamodb":
        client("dynamodb").list_tables()
    elif name == "kinesis":
        client("kinesis").list_streams()
    else:
        raise AssertionError("no call for the service %r: add one here" % name)


class ServiceTable(Base):
    def test_every_service_module_is_reached(self):
        ctl("POST", "/__resources", CONTROL_RESOURCES)
        names = [svc.name for svc in aws.SERVICES]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual({m.__name__.rsplit(".", 1)[1] for m in aws.MODULES},
                         {"firehose", "sns", "lambda_", "lambda_ctl", "iot", "es",
                          "elasticache", "eventbridge", "iam", "sts", "forward"})
        for name in names:
            _one_call(name)
        by_service = ctl("GET", "/__stats")["by_service"]
        for svc in aws.SERVICES:
            statuses = {st for op in by_service.get(svc.name, {}).values()
                        for st in op["status"]}
            self.assertTrue(statuses and all(st.startswith("2") for st in statuses),
                            (svc.name, by_service.get(svc.name)))
        # the data planes stored what they were sent; aliases name them too
        for service, alias in (("firehose", None), ("sns", None), ("lambda", None),
                               ("iot", "iotdata"), ("opensearch", "es"),
                               ("eventbridge", "events"), ("iam", None), ("sts", None),
                               ("dynamodb", None), ("kinesis", None)):
            self.assertEqual(len(received(service)), 1, service)
            if alias:
                self.assertEqual(len(received(alias)), 1, alias)

    def test_unknown_service_names_refused(self):
        conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=10)
        conn.request("GET", "/__received?service=s3")
        r = conn.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["message"]),
                         (400, "unknown service 's3'"))
        conn.request("POST", "/__faults", body=json.dumps({"service": "s3", "kind": "throttle"}))
        r = conn.getresponse()
        self.assertEqual(r.status, 400)
        self.assertIn("unknown service", json.loads(r.read())["message"])
        conn.close()


# ---- signatures ----

class Signatures(Base):
    def test_wrong_secret_every_service(self):
        bad = dict(cred=BASE, secret="not-the-secret")
        self.assertClientError(lambda: client("firehose", **bad).put_record(
            DeliveryStreamName="stream-a", Record={"Data": b"x"}), 403,
            "InvalidSignatureException", "The request signature we calculated does not match")
        e = self.assertClientError(lambda: client("sns", **bad).publish(
            TopicArn=TOPIC, Message="m"), 403, "SignatureDoesNotMatch",
            "The Canonical String for this request should have been")
        self.assertEqual(e.response["Error"]["Type"], "Sender")
        self.assertClientError(lambda: client("lambda", **bad).invoke(
            FunctionName="fn", InvocationType="Event", Payload=b"{}"), 403,
            "InvalidSignatureException")
        self.assertClientError(lambda: client("iot-data", **bad).publish(
            topic="t", payload=b"x"), 403, "InvalidSignatureException")
        st, h, out = signed("POST", "/_bulk", "es", body=b'{"index":{"_index":"a"}}\n{}\n',
                            headers={"Content-Type": "application/x-ndjson"},
                            cred=dict(BASE, secretAccessKey="wrong"))
        self.assertEqual(st, 403)
        self.assertTrue(json.loads(out)["message"].startswith(
            "The request signature we calculated does not match"))
        for svc in ("firehose", "sns", "lambda", "iot", "opensearch"):
            self.assertEqual(received(svc), [])
        self.assertEqual(ctl("GET", "/__stats")["auth_failures_by_kind"]["mismatch"], 5)

    def test_unknown_key_token_and_expiry(self):
        stranger = {"accessKeyId": "AKIDSTRANGER", "secretAccessKey": "x"}
        self.assertClientError(lambda: client("firehose", cred=stranger).put_record(
            DeliveryStreamName="stream-a", Record={"Data": b"x"}), 403,
            "UnrecognizedClientException")
        self.assertClientError(lambda: client("sns", cred=stranger).publish(
            TopicArn=TOPIC, Message="m"), 403, "InvalidClientTokenId")
        wrong_token = dict(ROLE, sessionToken="another-token")
        self.assertClientError(lambda: client("lambda", cred=wrong_token).invoke(
            FunctionName="fn", InvocationType="Event", Payload=b"{}"), 403,
            "UnrecognizedClientException")
        no_token = {k: v for k, v in ROLE.items() if k != "sessionToken"}
        self.assertClientError(lambda: client("sns", cred=no_token).publish(
            TopicArn=TOPIC, Message="m"), 403, "InvalidClientTokenId")
        self.assertClientError(lambda: client("firehose", cred=EXPIRED).put_record(
            DeliveryStreamName="stream-a", Record={"Data": b"x"}), 403, "ExpiredTokenException")
        utcnow = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        old = utcnow - datetime.timedelta(minutes=16)
        body = b"Action=Publish&Version=2010-03-31&TopicArn=%s&Message=m" % TOPIC.encode()
        st, h, out = signed("POST", "/", "sns", body=body, when=old,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 403)
        self.assertIn(b"Signature expired", out)
        recent = utcnow - datetime.timedelta(minutes=10)
        st, h, out = signed("POST", "/", "sns", body=body, when=recent,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, out)
        st, h, out = signed("POST", "/topics/t", "iot", body=b"x")   # wrong signing name
        self.assertEqual((st, h["x-amzn-errortype"]), (403, "InvalidSignatureException"))
        self.assertIn("iotdata", json.loads(out)["message"])
        st, h, out = signed("POST", "/topics/t", "iotdata", body=b"x", cred=ROLE,
                            sign_token=False)
        self.assertEqual(st, 403)
        conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=5)
        conn.request("POST", "/2015-03-31/functions/fn/invocations", body=b"{}")
        r = conn.getresponse()
        self.assertEqual((r.status, r.getheader("x-amzn-ErrorType")),
                         (403, "MissingAuthenticationTokenException"))
        r.read()
        conn.close()

    def test_tampered_body_and_signed_user_agent(self):
        class SignsEverything(SigV4Auth):
            """botocore leaves User-Agent unsigned; AWS verifies it when a client signs it."""
            def headers_to_sign(self, request):
                h = super().headers_to_sign(request)
                h["user-agent"] = request.headers["User-Agent"]
                return h

        host = "127.0.0.1:%d" % SRV["port"]
        body = b'{"DeliveryStreamName":"stream-a","Record":{"Data":"eA=="}}'
        for signer in (SigV4Auth, SignsEverything):
            req = AWSRequest(method="POST", url="http://%s/" % host, data=body, headers={
                "Content-Type": "application/x-amz-json-1.1", "User-Agent": "fanout/1",
                "X-Amz-Target": "Firehose_20150804.PutRecord"})
            signer(Credentials(BASE["accessKeyId"], BASE["secretAccessKey"]), "firehose",
                   "us-east-1").add_auth(req)
            self.assertEqual(signer is SignsEverything,
                             "user-agent" in req.headers["Authorization"])
            for payload, want in ((body.replace(b"eA==", b"eQ=="), 403), (body, 200)):
                conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=5)
                conn.request("POST", "/", body=payload, headers=dict(req.headers.items()))
                r = conn.getresponse()
                r.read()
                conn.close()
                self.assertEqual(r.status, want)
        self.assertEqual(len(received("firehose")), 2)

    def test_expect_100_continue_and_chunked(self):
        payload = b'"' + b"z" * 200000 + b'"'
        host = "127.0.0.1:%d" % SRV["port"]
        path = "/2015-03-31/functions/fn/invocations"
        req = AWSRequest(method="POST", url="http://%s%s" % (host, path), data=payload,
                         headers={"X-Amz-Invocation-Type": "Event"})
        SigV4Auth(Credentials(BASE["accessKeyId"], BASE["secretAccessKey"]), "lambda",
                  "us-east-1").add_auth(req)
        head = "".join("%s: %s\r\n" % kv for kv in req.headers.items())
        with socket.create_connection(("127.0.0.1", SRV["port"]), timeout=5) as s:
            s.sendall(("POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n"
                       "Expect: 100-continue\r\n\r\n" % (path, host, head, len(payload)))
                      .encode())
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 100"))
            s.sendall(payload)
            self.assertTrue(s.recv(1000).startswith(b"HTTP/1.1 202"))
            chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
            s.sendall(("POST %s HTTP/1.1\r\nHost: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n"
                       % (path, host, head)).encode() + chunked)
            self.assertTrue(s.recv(1000).startswith(b"HTTP/1.1 202"))
        self.assertEqual(len(received("lambda", "fn")), 2)

    def test_credentials_added_at_run_time(self):
        fh = client("firehose", cred=LATE)
        call = lambda: fh.put_record(DeliveryStreamName="stream-a", Record={"Data": b"x"})
        self.assertClientError(call, 403, "UnrecognizedClientException")
        ctl("POST", "/__credentials", [LATE])
        call()
        self.assertEqual(received("firehose")[0]["accessKeyId"], LATE["accessKeyId"])


# ---- faults that act on the connection, keep-alive, control ----

class Connection(Base):
    def test_slow(self):
        faults({"service": "sns", "kind": "slow", "delay_ms": 300})
        sns = client("sns")
        t0 = time.monotonic()
        sns.publish(TopicArn=TOPIC, Message="m")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        t0 = time.monotonic()
        sns.publish(TopicArn=TOPIC, Message="m")
        self.assertLess(time.monotonic() - t0, 0.3)
        self.assertEqual(ctl("GET", "/__stats")["faults_by_kind"]["slow"], 1)

    def test_reset_close_and_rst(self):
        faults({"service": "iot", "kind": "reset"}, {"service": "iot", "kind": "reset",
                                                     "mode": "rst"})
        iot = client("iot-data")
        for _ in range(2):
            with self.assertRaises((ConnectionClosedError, EndpointConnectionError)):
                iot.publish(topic="t", payload=b"x")
        iot.publish(topic="t", payload=b"x")
        self.assertEqual(len(received("iot", "t")), 1)
        self.assertEqual(ctl("GET", "/__stats")["faults_by_kind"]["reset"], 2)

    def test_status(self):
        faults({"service": "firehose", "kind": "status", "status": 503,
                "body": {"__type": "ServiceUnavailableException", "message": "busy"},
                "contentType": "application/x-amz-json-1.1"})
        self.assertClientError(lambda: client("firehose").put_record(
            DeliveryStreamName="stream-a", Record={"Data": b"x"}), 503,
            "ServiceUnavailableException", "busy")

    def test_mangle(self):
        """mangle stores the records, then spoils the answer."""
        faults({"service": "firehose", "kind": "mangle", "ops": [
            {"op": "set", "path": "FailedPutCount", "value": 1},
            {"op": "delete", "path": "RequestResponses.-1"},
            {"op": "dup", "path": "RequestResponses.0"},
            {"op": "swap", "path": "RequestResponses", "i": 0, "j": 1}]})
        body = json.dumps({"DeliveryStreamName": "stream-a", "Records": [
            {"Data": "YQ=="}, {"Data": "Yg=="}]}).encode()
        status, _, out = signed("POST", "/", "firehose", body=body, headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "Firehose_20150804.PutRecordBatch"})
        got = json.loads(out)
        self.assertEqual((status, got["FailedPutCount"], len(got["RequestResponses"])),
                         (200, 1, 2))
        self.assertEqual(got["RequestResponses"][0], got["RequestResponses"][1])
        self.assertEqual([g["data"] for g in received("firehose", "stream-a")], ["a", "b"])
        faults({"service": "sns", "kind": "mangle", "ops": [
            {"op": "replace", "pattern": "<MessageId>[^<]*</MessageId>", "repl": ""},
            {"op": "status", "status": 201}]},
               {"service": "sns", "kind": "mangle", "op": "truncate", "keep": 20})
        body = ("Action=Publish&Version=2010-03-31&Message=hi&TopicArn="
                + quote(TOPIC, safe="")).encode()
        status, _, out = signed("POST", "/", "sns", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 201)
        self.assertIn(b"<PublishResponse", out)
        self.assertNotIn(b"MessageId", out)
        status, _, out = signed("POST", "/", "sns", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, len(out)), (200, 20))
        faults({"service": "sns", "kind": "mangle", "op": "cut", "keep": 10})
        with self.assertRaises(http.client.IncompleteRead):
            signed("POST", "/", "sns", body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded"})
        with self.assertRaises(Exception):
            faults({"service": "sns", "kind": "mangle", "op": "nonsense"})

    def test_fault_listing_and_forever(self):
        ids = faults({"service": "lambda", "kind": "throttle", "count": -1})["ids"]
        lam = client("lambda")
        for _ in range(3):
            self.assertClientError(lambda: lam.invoke(FunctionName="fn", InvocationType="Event",
                                                      Payload=b"{}"), 429,
                                   "TooManyRequestsException")
        rules = ctl("GET", "/__faults")
        self.assertEqual([(r["id"], r["fired"], r["remaining"]) for r in rules],
                         [(ids[0], 3, -1)])
        ctl("DELETE", "/__faults")
        lam.invoke(FunctionName="fn", InvocationType="Event", Payload=b"{}")

    def test_keep_alive_and_content_length(self):
        conn = http.client.HTTPConnection("127.0.0.1", SRV["port"], timeout=5)
        host = "127.0.0.1:%d" % SRV["port"]
        for n in range(3):
            req = AWSRequest(method="POST", url="http://%s/topics/ka" % host, data=b"%d" % n)
            SigV4Auth(Credentials(BASE["accessKeyId"], BASE["secretAccessKey"]), "iotdata",
                      "us-east-1").add_auth(req)
            conn.request("POST", "/topics/ka", body=b"%d" % n, headers=dict(req.headers.items()))
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(int(r.getheader("Content-Length")), len(r.read()))
            sock = conn.sock
        self.assertIs(conn.sock, sock)   # one connection for all three
        conn.close()
        self.assertEqual([g["payload"] for g in received("iot", "ka")], ["0", "1", "2"])

    def test_received_waits(self):
        import threading
        t = threading.Timer(0.2, lambda: client("iot-data").publish(topic="later", payload=b"1"))
        t.start()
        t0 = time.monotonic()
        got = received("iot", "later", minimum=1, timeout_ms=5000)
        t.join()
        self.assertEqual(len(got), 1)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertEqual(received("iot", "never", minimum=1, timeout_ms=100), [])

    def test_reset_forgets(self):
        client("iot-data").publish(topic="t", payload=b"x")
        faults({"service": "iot", "kind": "throttle"})
        ctl("POST", "/__reset")
        self.assertEqual(received("iot"), [])
        self.assertEqual(ctl("GET", "/__faults"), [])
        self.assertEqual(ctl("GET", "/__stats")["requests"], 0)

    def test_log_lines(self):
        client("iot-data").publish(topic="logged", payload=b"x")
        with open(SRV["log"]) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        last = [x for x in lines if x["target"] == "logged"][-1]
        self.assertEqual((last["service"], last["operation"], last["status"]),
                         ("iot", "Publish", 200))
        self.assertGreaterEqual(last["latency_ms"], 0)


class Lifetime(unittest.TestCase):
    def start(self, *extra):
        p = subprocess.Popen([sys.executable, SERVER, "--port", "0", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        port = int(p.stdout.readline())
        p.stdout.close()
        self.assertGreater(port, 0)
        return p

    def test_parent_pid(self):
        parent = subprocess.Popen(["sleep", "30"])
        p = self.start("--parent-pid", str(parent.pid))
        time.sleep(0.3)
        self.assertIsNone(p.poll())
        parent.kill()
        parent.wait()
        self.assertEqual(p.wait(5), 0)

    def test_max_lifetime(self):
        p = self.start("--max-lifetime", "0.5")
        self.assertNotEqual(p.wait(5), None)

    def test_forward_flag(self):
        for bad in ("sns=http://127.0.0.1:1", "dynamodb", "kinesis=https://x"):
            r = subprocess.run([sys.executable, SERVER, "--port", "0", "--forward", bad],
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn(b"--forward %s: SERVICE=http://HOST:PORT expected, SERVICE one of "
                          b"dynamodb, kinesis" % bad.encode(), r.stderr)
        # without --forward for it, DynamoDB is validated, then answered 503
        p = subprocess.Popen([sys.executable, SERVER, "--port", "0", "--credentials",
                              SRV["creds"], "--max-lifetime", "30"], stdout=subprocess.PIPE)
        try:
            port = int(p.stdout.readline())
            ddb = botocore.session.get_session().create_client(
                "dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:%d" % port,
                aws_access_key_id=BASE["accessKeyId"],
                aws_secret_access_key=BASE["secretAccessKey"],
                config=Config(retries={"total_max_attempts": 1}))
            with self.assertRaises(ClientError) as cm:
                ddb.list_tables()
            self.assertEqual(error_of(cm.exception)[:2], (503, "ServiceUnavailable"))
            self.assertIn("--forward dynamodb=URL", error_of(cm.exception)[2])
            ddb.close()
        finally:
            p.terminate()
            p.wait(10)
            p.stdout.close()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
