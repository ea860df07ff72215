#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<name>/)
from the test data of the tree and a few hand-written answers. Run from
the repository root; the files are committed, so this is only needed to
change them. Seeds stay small (a few KB each): the fuzzer grows them."""
import base64
import copy
import json
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def load(*p):
    with open(os.path.join(DATA, *p), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


for t in ("jscan", "event", "kpl", "ddb", "mapping", "sigv4", "aws_error", "credentials",
          "aws_config", "http", "http1", "helpers"):
    shutil.rmtree(os.path.join(OUT, t), ignore_errors=True)

kinesis = json.loads(load("events", "kinesis.json"))
ddb = json.loads(load("events", "dynamodb.json"))
kplev = json.loads(load("events", "kpl-aggregated.json"))
aggs = {a["name"]: a["dataB64"] for a in json.loads(load("kpl", "agg-fixture.json"))["aggregates"]}

# ---- events: one of each kind, a mixed one, an SNS-wrapped one ----------
def event(records):
    return {"Records": records}

write("event", "kinesis", compact(event(kinesis["Records"][:2])))
write("event", "dynamodb", compact(event(ddb["Records"][:2])))
write("event", "dynamodb-remove", compact(event(ddb["Records"][-1:])))
small_kpl = [r for r in kplev["Records"] if len(r["kinesis"]["data"]) < 1300][:3]
write("event", "kpl", compact(event(small_kpl)))
mixed = [kinesis["Records"][0], ddb["Records"][0], small_kpl[0]]
mixed[1] = copy.deepcopy(mixed[1])
write("event", "mixed-sources", compact(event(mixed)))
inner = compact(event(kinesis["Records"][:1])).decode()
write("event", "sns-wrapped", compact(event([{
    "EventSource": "aws:sns", "EventVersion": "1.0",
    "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:1",
    "Sns": {"Type": "Notification", "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": inner}},
    {"EventSource": "aws:sns", "Sns": {"MessageId": "m-2",
     "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "plain text"}}])))
write("event", "bad-records", compact(event([1, {}, {"eventSource": "aws:kinesis"},
    {"eventSource": "aws:kinesis", "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s",
     "kinesis": {"sequenceNumber": "1", "partitionKey": "k", "data": "not base64!"}}])))

# ---- jscan: assorted JSON --------------------------------------------------
write("jscan", "kinesis-record", compact(kinesis["Records"][0]))
write("jscan", "escapes", '{"a\\u0062":"x\\n\\t\\"\\\\\\/\\ud83d\\ude00\\u00e9","k":[1,-2.5e+3,0,true,false,null,{}]}')
write("jscan", "nested", "[[[[{\"a\":[[[]]]}]]]]")
write("jscan", "numbers", "[0,-0,1.0,1e5,1E-5,-12.34e+56,123456789012345678901234567890]")
write("jscan", "utf8", '{"\u00e9t\u00e9":"\u043a\u043b\u044e\u0447 \U0001f511"}'.encode())
write("jscan", "dup-keys", '{"a":1,"a":2,"Records":[]}')

# ---- KPL: first byte 1 = the blob as is, 0 = protobuf (digest added) ------
for name in ("single-record", "single-record-with-hash-key", "explicit-hash-keys",
             "empty-data", "mixed-keys", "longest-key"):
    blob = base64.b64decode(aggs[name])
    write("kpl", name, b"\x01" + blob)
    write("kpl", name + "-pb", b"\x00" + blob[4:-16])
write("kpl", "truncated", b"\x01" + base64.b64decode(aggs["single-record"])[:18])

# ---- DynamoDB images and keys ---------------------------------------------
for i, r in enumerate(ddb["Records"][:4]):
    d = r["dynamodb"]
    if "NewImage" in d:
        write("ddb", "image-%d" % i, compact(d["NewImage"]))
    write("ddb", "keys-%d" % i, compact(d["Keys"]))
write("ddb", "all-types", compact({
    "s": {"S": "x"}, "n": {"N": "-1.5E+10"}, "b": {"B": "AAD/"}, "t": {"BOOL": True},
    "z": {"NULL": True}, "m": {"M": {"in": {"L": [{"N": "1"}, {"S": "a"}]}}},
    "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.50"]}, "bs": {"BS": ["AA==", "AQ=="]},
    "big": {"N": "99999999999999999999999999999999999999"}}))
write("ddb", "bad-type", compact({"x": {"X": "1"}, "n": {"N": "1e999"}}))
# ddb_diff reads each image and Keys with the shape of a variant of it kept
# (its values plain, its BOOLs swapped): values near what that reading
# refuses, strings ending around 16-byte boundaries
write("ddb", "seen-values", compact({
    "pk": {"S": "0123456789abcde"}, "sk": {"N": "1234567890123456"}, "t": {"BOOL": False},
    "e": {"S": ""}, "q": {"S": "x\"},\"b\":{\"S\":\""}, "z": {"N": "007"},
    "l": {"L": [{"S": "0123456789abcdef"}, {"BOOL": True}, {"NULL": True}, {"N": "-0.5"}]},
    "m": {"M": {"a": {"S": "\u00e9"}, "b": {"N": "1e5"}}}}))
write("ddb", "seen-keys", compact({"pk": {"S": "user#0001"}, "sk": {"N": "-12.5"},
                                   "b": {"B": "AAD/AA=="}}))

# ---- events whose DynamoDB records share a shape (read piece by piece) ------
def shaped(seq, arn, src, name, key, val, num, flag):
    img = {"pk": {"S": val}, "n": {"N": num}, "b": {"BOOL": flag}}
    return {"eventSource": src, "eventName": name, "eventSourceARN": arn,
            "dynamodb": {"Keys": {"pk": {"S": key}}, "NewImage": img,
                         "OldImage": copy.deepcopy(img), "SequenceNumber": str(seq)}}

t1 = "arn:aws:dynamodb:us-east-1:1:table/t1/stream/x"
t2 = "arn:aws:dynamodb:eu-west-1:2:table/t2/stream/y"
write("event", "dynamodb-shapes", compact(event([
    shaped(1, t1, "aws:dynamodb", "MODIFY", "a", "a", "12", True),
    shaped(2, t2, "aws:dynamodb", "INSERT", "b", "0123456789abcdef", "-0.5", False),
    shaped(3, t1, "aws:dynamodb", "REMOVE", "c\"}", "x\"},\"n\"", "007", True),
    shaped(4, t1, "aws:dynamodb", "MODIFY", "\u00e9", "caf\u00e9", "1e5", False),
    shaped(5, t2, "aws:kinesis", "MODIFY", "e", "e", "12", True),
    shaped(6, t1, "aws:dynamodbx", "insert", "f", "f", "12", True),
    shaped(7, t1, "aws:dynamodb", "MODIFY", "g", "g", "12", True)])))

# ---- mapping files -----------------------------------------------------------
with open(os.path.join(ROOT, "examples", "mappings.json"), "rb") as f:
    write("mapping", "examples", f.read())
arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
write("mapping", "full", compact([{
    "sourceArn": arn, "id": "to-sqs", "type": "sqs",
    "destination": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "active": True,
    "role": "arn:aws:iam::123456789012:role/fanout", "externalId": "ext-id_1",
    "region": "eu-west-1", "collapse": "concat-b64", "parallel": False,
    "convertDDB": True, "deaggregate": True, "batchSize": 10, "extra": {"a": [1]}}]))
write("mapping", "invalid", compact([
    {"sourceArn": arn, "id": "a", "type": "file", "destination": "-", "active": "true"},
    {"sourceArn": arn, "id": "a", "type": "../x", "destination": "-", "active": True},
    {"sourceArn": "x", "id": "b", "type": "file", "destination": "-", "active": True,
     "collapse": "zip", "region": 5},
    {"sourceArn": arn, "id": "c", "type": "file", "destination": "-", "active": True,
     "externalId": "e"}, 7, []]))
write("mapping", "duplicates", compact([
    {"sourceArn": arn, "id": "a", "type": "file", "destination": "-", "active": True},
    {"sourceArn": arn, "id": "a", "type": "file", "destination": "x", "active": False}]))

# ---- SigV4: a flags byte, then a request as in AWS's test suite -------------
suite = os.path.join(DATA, "aws-sigv4-test-suite")
cases = ["get-vanilla-query-order-key-case", "get-header-value-multiline",
         "get-header-key-duplicate", "get-utf8", "get-space-normalized",
         "get-slash-dot-slash-unnormalized", "post-x-www-form-urlencoded-parameters",
         "get-vanilla-query-unreserved", "post-sts-header-after", "get-relative-relative-normalized"]
for i, c in enumerate(cases):
    with open(os.path.join(suite, c, "request.txt"), "rb") as f:
        req = f.read()
    flags = i & 7
    write("sigv4", c, bytes([flags]) + req)
write("sigv4", "region-service", b"\x0b" + b"eu-central-1/kinesis\nPOST /a/../b//c?x=1&y=%20&z HTTP/1.1\n"
      b"Host:kinesis.eu-central-1.amazonaws.com\nX-Amz-Target:Kinesis_20131202.PutRecords\n"
      b"Content-Type:application/x-amz-json-1.1\n\n{\"Records\":[]}")

# ---- service error answers: protocol byte, code size, message size, body -----
def err(proto, body, header=None, code=64, msg=200):
    b = bytes([proto | (4 if header is not None else 0), code, msg])
    if header is not None:
        b += header.encode() + b"\n"
    return b + body.encode()

write("aws_error", "json", err(0, '{"__type":"com.amazonaws.kinesis#ProvisionedThroughputExceededException","message":"Rate exceeded for shard shardId-000000000001"}'))
write("aws_error", "json-code-url", err(0, '{"__type":"ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/","Message":"1 validation error"}'))
write("aws_error", "rest-json", err(0, '{"message":"Function not found"}', "ResourceNotFoundException:http://internal.amazon.com/,Other"))
write("aws_error", "query", err(1, '<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist &amp; &#233;&#x4e2d; <![CDATA[<raw>]]></Message></Error><RequestId>42d59b56</RequestId></ErrorResponse>'))
write("aws_error", "ec2", err(1, '<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad</Message></Error></Errors><RequestID>x</RequestID></Response>'))
write("aws_error", "s3", err(2, '<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message><Resource>/mybucket/myfoto.jpg</Resource></Error>'))
write("aws_error", "opensearch", err(2, '{"error":{"root_cause":[],"type":"index_not_found_exception","reason":"no such index [x]"},"status":404}'))
write("aws_error", "opensearch-text", err(2, '{"error":"Incorrect HTTP method for uri","status":405}'))
write("aws_error", "html", err(0, '<html><head><title>502 Bad Gateway</title></head><body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body></html>'))
write("aws_error", "plain-text", err(3, 'Service Unavailable \xe2\x80\xa6 try again', None, 8, 3))

# ---- credentials: STS replies and errors, container answers ---------------
write("credentials", "sts-assume-role", '''<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
  <SourceIdentity>Alice</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==</SessionToken>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>''')
write("credentials", "sts-prefixed", '<sts:AssumeRoleResponse xmlns:sts="x"><sts:AssumeRoleResult><sts:Credentials a="1>2"><sts:AccessKeyId>ASIA1</sts:AccessKeyId><sts:SecretAccessKey><![CDATA[s&cret]]></sts:SecretAccessKey><sts:SessionToken>t&amp;k&#x41;&#65;</sts:SessionToken><sts:Expiration>2026-12-03T20:00:00.123+01:00</sts:Expiration></sts:Credentials></sts:AssumeRoleResult></sts:AssumeRoleResponse>')
write("credentials", "sts-error", '''<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/AKIDEXAMPLE12345 is not authorized to perform: sts:AssumeRole with key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY</Message>
  </Error>
  <RequestId>2c2f0e7c-d1ac-4a9f-8fc1-0e6a2c9d6d5f</RequestId>
</ErrorResponse>''')
write("credentials", "container", compact({"AccessKeyId": "ASIA2", "SecretAccessKey": "secret",
    "Token": "token", "Expiration": "2026-12-03T20:00:00Z", "RoleArn": "arn:aws:iam::1:role/r"}))
write("credentials", "container-eks", compact({"AccessKeyId": "ASIA3", "SecretAccessKey": "s",
    "Token": "t", "AccountId": "123456789012", "Expiration": "2026-12-03T20:00:00.5-05:30"}))
write("credentials", "iso8601", "2026-12-03T20:00:00.123456Z")
write("credentials", "url-http", "http://127.0.0.1:8080/v2/credentials?id=1")
write("credentials", "url-ipv6", "http://[fd00:ec2::23]/v1/credentials")
write("credentials", "url-https", "https://agent.example.com:443/creds")

# ---- shared config files: selector byte, then the file ------------------------
config = """# comment
[default]
region = us-east-1
aws_access_key_id = AKIDDEFAULT ; a comment
aws_secret_access_key=secret#not-a-comment

[profile dev]
region=eu-west-1
services = dev-services
s3 =
  endpoint_url = http://localhost:4566
  addressing_style = path
role_arn = arn:aws:iam::123456789012:role/r
source_profile = default

[services dev-services]
kinesis =
  endpoint_url = http://127.0.0.1:4567
sqs =
    endpoint_url=https://sqs.local
[profile   prod  ]
aws_session_token = abc
  continued line
\tand another
"""
credentials = """[default]
aws_access_key_id=AKID
aws_secret_access_key = S
[dev]
aws_access_key_id = AKIDDEV
aws_session_token =
[profile dev]
aws_access_key_id = nope
"""
write("aws_config", "config-region", bytes([0 | (0 << 1) | (3 << 4)]) + config.encode())
write("aws_config", "config-services", bytes([0 | (1 << 1) | (7 << 4)]) + config.encode())
write("aws_config", "config-sub", bytes([0 | (1 << 1) | (8 << 4)]) + config.encode())
write("aws_config", "config-continued", bytes([0 | (2 << 1) | (2 << 4)]) + config.encode())
write("aws_config", "credentials", bytes([1 | (1 << 1) | (0 << 4)]) + credentials.encode())
write("aws_config", "url", bytes([0]) + b"https://kinesis.us-east-1.amazonaws.com:443/base/path\n[default]\nregion=x\n")
write("aws_config", "url-ipv6", bytes([1]) + b"http://[::1]:4566\n")

# ---- HTTP answers as libcurl gives them: HEAD flag byte, headers, body -------
write("http", "kinesis-ok", b'\x00HTTP/1.1 200 OK\r\nx-amzn-RequestId: f0f1\r\nx-amz-id-2: abc==\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 98\r\nDate: Thu, 03 Dec 2026 19:00:00 GMT\r\n\r\n{"FailedRecordCount":0,"Records":[{"SequenceNumber":"4959","ShardId":"shardId-000000000000"}]}')
write("http", "continue-then-error", b'\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nx-amzn-ErrorType: ValidationException:http://internal.amazon.com/\r\nContent-Length: 40\r\n\r\n{"message":"1 validation error detected"}')
write("http", "folded", b'\x00HTTP/1.1 503 Slow Down\r\nRetry-After: 1\r\nX-Long: part one\r\n  part two\r\n\tpart three \r\n\r\n<Error><Code>SlowDown</Code></Error>')
write("http", "head-big", b'\x01HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n')
write("http", "too-big", b'\x00HTTP/1.1 200 OK\r\ncontent-length:   67108865\r\n\r\nxx')
write("http", "odd-lines", b'\x00HTTP/2 200\r\n: empty name\r\nno colon here\r\nName   :   spaced value   \r\nA:\r\n\r\n')
# http1: flags (bit 0 HEAD, bit 1 EOF after, bit 2 the close untrusted: TLS
# without close_notify), a split seed, then the bytes
write("http1", "sqs-ok", b'\x00\x07HTTP/1.1 200 OK\r\nx-amzn-RequestId: f0f1\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 27\r\n\r\n{"Successful":[],"Failed":[]}')
write("http1", "chunked-trailers", b'\x00\x31HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n')
write("http1", "continue-then-400", b'\x00\x02HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}')
write("http1", "http10-to-close", b'\x02\x09HTTP/1.0 200 OK\r\nX-A: 1\r\n folded\r\n\r\nbody until the end')
write("http1", "head-204-304", b'\x01\x44HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n')
write("http1", "extra-reply", b'\x00\x05HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx')
write("http1", "short-body", b'\x02\x00HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\nabc')
write("http1", "tls-cut-to-close", b'\x06\x0bHTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody cut by a FIN')
write("http1", "tls-cut-chunked", b'\x06\x03HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly')

# ---- plugin helpers: any bytes (record data) -----------------------------------
write("helpers", "arn", "arn:aws:kinesis:us-east-1:123456789012:stream/s")
write("helpers", "arn-empty-parts", "arn:aws:s3:::bucket/key:with:colons")
write("helpers", "json-escapes", b'quote " backslash \\ \n\t\x01\x7f')
write("helpers", "utf8", "\u00e9\u20ac\U0001f511".encode())
write("helpers", "bad-utf8", b"\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82")
write("helpers", "binary", bytes(range(0, 256, 7)))
