#!/usr/bin/python3
"""Check our SigV4 signer against botocore's.

Requests of our plugins' shapes (Kinesis, Firehose, SQS, SNS, Lambda, IoT
Data, OpenSearch, DynamoDB, STS), in several regions, with and without a
session token, are signed by our C code (the sigv4_sign tool) and by
botocore.auth.SigV4Auth at the same instant; the Authorization headers must be
equal.

Usage: sigv4_botocore.py [path/to/sigv4_sign]
(default: $FANOUT_SIGV4_SIGN, then $FANOUT_BUILD_DIR/tests/sigv4_sign).
Run it with Debian's /usr/bin/python3, which has python3-botocore.

botocore takes the signing time from datetime.datetime.utcnow() inside
SigV4Auth.add_auth (1.29; newer releases call datetime.datetime.now(tz)), and
replaces any X-Amz-Date header the request has, so the time cannot be given
through the request: we patch the `datetime` module that botocore.auth sees.
"""

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import types
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]

CREDENTIALS = [
    # (access key id, secret, session token or None)
    ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
    (
        "ASIAFANOUTTESTKEY01",
        "k3y+With/Slashes+And+Plus0123456789abcdEF",
        # as long and as mixed as real STS tokens
        "IQoJb3JpZ2luX2VjEFAaCXVzLWVhc3QtMSJHMEUCIQD/" + "x7+Yz/0AbC=" * 80 + "==",
    ),
]


def _host(prefix, region):
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{prefix}.{region}.{suffix}"


def _partition(region):
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _json_body(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def plugin_requests(region):
    """(name, service, method, path, query, headers, body, content_sha256)."""
    part = _partition(region)
    out = []

    host = _host("kinesis", region)
    body = _json_body(
        {
            "StreamName": "orders",
            "Records": [
                {"Data": base64.b64encode(b"hello").decode(), "PartitionKey": "pk-1"},
                {"Data": base64.b64encode(bytes(range(256))).decode(), "PartitionKey": "pk-2"},
            ],
        }
    )
    out.append(("kinesis-putrecords", "kinesis", "POST", "/", None, [
        ("Host", host),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "Kinesis_20131202.PutRecords"),
        ("Content-Length", str(len(body))),
    ], body, False))

    host = _host("firehose", region)
    body = _json_body(
        {
            "DeliveryStreamName": "to-s3",
            "Records": [{"Data": base64.b64encode(b'{"a":1}\n').decode()}] * 3,
        }
    )
    out.append(("firehose-putrecordbatch", "firehose", "POST", "/", None, [
        ("Host", host),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "Firehose_20150804.PutRecordBatch"),
        ("User-Agent", "fanout/0.1.0"),
    ], body, False))

    host = _host("sqs", region)
    body = _json_body(
        {
            "QueueUrl": f"https://{host}/123456789012/jobs",
            "Entries": [
                {"Id": "r-0", "MessageBody": "caf\u00e9 \u2603"},
                {"Id": "r-1", "MessageBody": "two"},
            ],
        }
    )
    out.append(("sqs-sendmessagebatch", "sqs", "POST", "/", None, [
        ("Host", host),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "AmazonSQS.SendMessageBatch"),
        ("Content-Length", str(len(body))),
    ], body, False))

    host = _host("sns", region)
    body = (
        "Action=Publish&Version=2010-03-31"
        f"&TopicArn=arn%3A{part}%3Asns%3A{region}%3A123456789012%3Aevents"
        "&Message=%7B%22id%22%3A1%2C%22v%22%3A%22a%20b%22%7D"
        "&MessageAttributes.entry.1.Name=kind"
        "&MessageAttributes.entry.1.Value.DataType=String"
        "&MessageAttributes.entry.1.Value.StringValue=order"
    ).encode()
    out.append(("sns-publish", "sns", "POST", "/", None, [
        ("Host", host),
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ], body, False))

    host = _host("lambda", region)
    body = _json_body({"Records": [{"eventID": "1", "data": "x"}]})
    out.append(("lambda-invoke", "lambda", "POST",
                "/2015-03-31/functions/my%3Afunc/invocations", None, [
                    ("Host", host),
                    ("Content-Type", "application/json"),
                    ("X-Amz-Invocation-Type", "Event"),
                ], body, False))

    host = _host("abcdefghijklm-ats.iot", region)
    body = bytes([0, 1, 2, 0xFF, 0xFE]) + b"binary payload \x80\x81"
    out.append(("iot-publish", "iotdata", "POST", "/topics/a%2Fb", "qos=1", [
        ("Host", host),
        ("Content-Type", "application/octet-stream"),
    ], body, False))

    host = _host("search-logs-abc123", region).replace(f".{region}.", f".{region}.es.")
    body = (
        b'{"index":{"_index":"index","_id":"1"}}\n{"msg":"one"}\n'
        b'{"index":{"_index":"index","_id":"2"}}\n{"msg":"two"}\n'
    )
    out.append(("opensearch-bulk", "es", "POST", "/index/_bulk", None, [
        ("Host", host),
        ("Content-Type", "application/x-ndjson"),
    ], body, True))

    host = _host("dynamodb", region)
    body = _json_body(
        {
            "TableName": "dedup",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "order#1"}},
        }
    )
    out.append(("dynamodb-query", "dynamodb", "POST", "/", None, [
        ("Host", host),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "DynamoDB_20120810.Query"),
    ], body, False))

    host = _host("sts", region)
    body = (
        "Action=AssumeRole&Version=2011-06-15"
        f"&RoleArn=arn%3A{part}%3Aiam%3A%3A123456789012%3Arole%2Ffanout-writer"
        "&RoleSessionName=fanout-1&DurationSeconds=900&ExternalId=ext%2Fid%3D42"
    ).encode()
    out.append(("sts-assumerole", "sts", "POST", "/", None, [
        ("Host", host),
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ], body, False))
    return out


def extra_requests():
    """Shapes beyond the plugins: canonicalisation corners both must agree on."""
    host = "example.amazonaws.com"
    return [
        ("get-query-sorted", "service", "GET", "/", "b=2&a=%2F&a=1&c=", [("Host", host)], b"",
         False),
        ("duplicate-and-spaces", "service", "POST", "/", None, [
            ("Host", host),
            ("My-Header", "  a   b  "),
            ("my-header", "c"),
            ("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"),
        ], b"{}", False),
        ("dot-segments", "service", "GET", "/a/./b/../c//d/", None, [("Host", host)], b"", False),
        ("encoded-utf8-path", "service", "GET", "/caf%C3%A9/x%20y", "k=v", [("Host", host)],
         b"", False),
        ("empty-body-post", "service", "POST", "/", None, [("Host", host)], b"", True),
    ]


class _FixedDatetime(datetime.datetime):
    fixed = None  # an aware UTC datetime

    @classmethod
    def utcnow(cls):
        return cls.fixed.replace(tzinfo=None)

    @classmethod
    def now(cls, tz=None):
        if tz is None:
            raise AssertionError("botocore asked for local time")
        return cls.fixed.astimezone(tz)


def _datetime_module_at(when):
    shim = types.ModuleType("datetime")
    shim.__dict__.update(datetime.__dict__)
    _FixedDatetime.fixed = when
    shim.datetime = _FixedDatetime
    return shim


def botocore_sign(case, creds, region, when):
    name, service, method, path, query, headers, body, _ = case
    url = "https://" + dict(headers)["Host"] + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, data=body)
    for k, v in headers:
        req.headers[k] = v  # HTTPHeaders appends: duplicates stay, in order
    if case[7]:
        # we add X-Amz-Content-Sha256; botocore signs it as a request header
        req.headers["X-Amz-Content-Sha256"] = hashlib.sha256(body).hexdigest()
    with mock.patch.object(botocore.auth, "datetime", _datetime_module_at(when)):
        botocore.auth.SigV4Auth(Credentials(*creds), service, region).add_auth(req)
    return req.headers


def find_tool():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("FANOUT_SIGV4_SIGN"):
        return os.environ["FANOUT_SIGV4_SIGN"]
    build = os.environ.get("FANOUT_BUILD_DIR", "build")
    return os.path.join(build, "tests", "sigv4_sign")


def main():
    tool = find_tool()
    base = datetime.datetime(2026, 3, 1, 12, 34, 56, tzinfo=datetime.timezone.utc)
    jobs = []  # (label, case, creds, region, when)
    n = 0
    for region in REGIONS:
        for case in plugin_requests(region):
            for creds in CREDENTIALS:
                # spread the times over days, years and a year end
                when = base + datetime.timedelta(seconds=n * 86400 * 7 + n * 3607)
                if n % 17 == 5:
                    when = datetime.datetime(2026, 12, 31, 23, 59, 59,
                                             tzinfo=datetime.timezone.utc)
                token = "token" if creds[2] else "no-token"
                jobs.append((f"{case[0]}/{region}/{token}", case, creds, region, when))
                n += 1
    for case in extra_requests():
        for creds in CREDENTIALS:
            token = "token" if creds[2] else "no-token"
            jobs.append((f"{case[0]}/us-west-2/{token}", case, creds, "us-west-2", base))

    requests = []
    for _, case, creds, region, when in jobs:
        _, service, method, path, query, headers, body, sha_header = case
        requests.append({
            "method": method,
            "path": path,
            "query": query,
            "headers": [list(h) for h in headers],
            "body_base64": base64.b64encode(body).decode(),
            "region": region,
            "service": service,
            "time": int(when.timestamp()),
            "normalize_path": True,
            "content_sha256_header": sha_header,
            "access_key_id": creds[0],
            "secret_access_key": creds[1],
            "session_token": creds[2],
        })
    proc = subprocess.run([tool], input=json.dumps(requests).encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        print(f"0 passed, {len(jobs)} failed (sigv4_sign exited {proc.returncode})")
        return 1
    ours = json.loads(proc.stdout)
    if len(ours) != len(jobs):
        print(f"0 passed, {len(jobs)} failed (sigv4_sign returned {len(ours)} results)")
        return 1

    passed = failed = 0
    for (label, case, creds, region, when), mine in zip(jobs, ours):
        theirs = botocore_sign(case, creds, region, when)
        problems = []
        if "error" in mine:
            problems.append("our signer: " + mine["error"])
        else:
            for h in ("X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256",
                      "Authorization"):
                if mine.get(h) != theirs.get(h):
                    problems.append(f"{h}\n    ours:     {mine.get(h)}\n"
                                    f"    botocore: {theirs.get(h)}")
        if problems:
            failed += 1
            print(f"FAIL {label}: " + "\n  ".join(problems))
        else:
            passed += 1

    # The comparison must be able to fail: a wrong secret has to differ.
    case = plugin_requests("us-east-1")[0]
    good = botocore_sign(case, CREDENTIALS[0], "us-east-1", base)["Authorization"]
    bad = botocore_sign(case, (CREDENTIALS[0][0], "wrong", None), "us-east-1",
                        base)["Authorization"]
    if good == bad or f"/{base:%Y%m%d}/us-east-1/kinesis/" not in good:
        failed += 1
        print("FAIL self-check: the botocore comparison cannot tell signatures apart")
    else:
        passed += 1

    print(f"botocore {botocore.__version__}, {len(jobs)} requests")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
