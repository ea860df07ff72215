#!/usr/bin/python3
"""Loopback test endpoint for SNS, Firehose, Lambda, IoT Data Plane and OpenSearch.

One HTTP/1.1 server on 127.0.0.1 (threaded, keep-alive, TCP_NODELAY,
Content-Length on every answer, Expect: 100-continue and chunked bodies
taken) answering the data-plane calls of fanout's destination plugins with
the shapes of the services' API references:

  Firehose   JSON 1.1, POST /, X-Amz-Target Firehose_20150804.PutRecordBatch
             or .PutRecord, Content-Type application/x-amz-json-1.1
  SNS        Query, POST / form body, Action=Publish | PublishBatch,
             Version=2010-03-31, XML answers (xmlns sns 2010-03-31)
  Lambda     REST-JSON, POST /2015-03-31/functions/{FunctionName}/invocations
             [?Qualifier=], X-Amz-Invocation-Type Event (202) |
             RequestResponse (200, echoes the payload) | DryRun (204)
  IoT        REST-JSON, POST /topics/{topic}?qos=0|1[&retain=true|false], 200
  OpenSearch POST|PUT /_bulk, /{index}/_bulk, /{index}/{type}/_bulk (NDJSON),
             GET / (cluster info)

and the control-plane lookups `fanout register` makes for short names (as
aws-lambda-fanout's CLI did), each signed like the rest:
  SNS        Action=ListTopics (100 a page, NextToken) over the "sns" resources
  Firehose   .DescribeDeliveryStream (ResourceNotFoundException when unknown)
  Lambda     GET /2015-03-31/functions/{name} (GetFunction; 404 when unknown)
  IoT        GET /endpoint?endpointType=iot:Data-ATS|iot:Data (signing name
             execute-api; service "iot_control")
  ES         GET /2015-01-01/es/domain/{name} and /2021-01-01/opensearch/
             domain/{name} (service "es_control", signing name es)
  (fault rules apply to these too: service names as above, "operation" the
  call's name)
  ElastiCache Query, Version=2015-02-02, DescribeCacheClusters (memcached:
             ConfigurationEndpoint) and DescribeReplicationGroups (redis:
             PrimaryEndpoint); CacheClusterNotFound / ReplicationGroupNotFoundFault

Signatures. Every service request must carry a SigV4 signature that
botocore reproduces: the request is rebuilt from what was received (method,
http://<Host as received><path as received>, the query's parameters decoded
so botocore encodes and sorts them as AWS canonicalises a query, the headers
named in SignedHeaders, the body) and signed by botocore.auth.SigV4Auth at
the request's X-Amz-Date with the secret this server knows for the key id;
the Authorization values must agree. The credential scope names the region
(recorded) and the signing name, which must be the service's: sns,
firehose, lambda, iotdata, es. X-Amz-Date more than 15 minutes off, an
unknown key, an X-Amz-Security-Token other than the key's (or one sent for
a key without one, or none for a key with one), an expired key and a bad
signature are answered 403 in the service's error shape:
  kind                 Firehose/Lambda/IoT (JSON, x-amzn-ErrorType)  SNS (XML)
  bad signature/skew   InvalidSignatureException          SignatureDoesNotMatch
  unknown key, token   UnrecognizedClientException        InvalidClientTokenId
  expired key          ExpiredTokenException              ExpiredToken
  no Authorization     MissingAuthenticationTokenException MissingAuthenticationToken
  malformed, no date   IncompleteSignatureException       IncompleteSignature
OpenSearch answers 403 {"message": ...}. A mismatch message carries the
canonical request and string to sign botocore computed, as AWS does.

Control and inspection (no signature), JSON:
  GET    /__health
  GET    /__received?service=S[&target=T][&min=N&timeout_ms=MS]
         accepted entries in arrival order (waits up to timeout_ms for >= min).
         Targets: Firehose stream, SNS topic ARN, Lambda function name, IoT
         topic (decoded), OpenSearch index. Every entry has service,
         operation, target, accessKeyId, region, accountId, requestId, time,
         seq, and: Firehose data (UTF-8 or null), dataBase64, recordId, index;
         SNS message, subject, messageAttributes, messageGroupId,
         messageDeduplicationId, messageStructure, messageId, sequenceNumber,
         batchEntryId, index; Lambda function, functionArn, functionRef,
         qualifier, invocationType, payload (parsed), payloadText,
         clientContext; IoT topic, qos, retain, payload, payloadBase64,
         contentType, userProperties; OpenSearch index, action, id, source,
         version, result, position.
  POST   /__reset        forget entries, fault rules, stats, OpenSearch docs
  POST   /__faults       add rules (an object, a list or {"rules": [...]})
  GET    /__faults       the rules with fired / remaining counts
  DELETE /__faults       drop every rule
  GET    /__stats        requests per service and operation and status,
                         auth failures by kind, faults fired (total, by kind,
                         by service), deliveries, rules
  POST   /__resources    add resources; GET /__resources
  POST   /__credentials  add signers (same JSON as --credentials)

Resources (--resources FILE, POST /__resources); lists, "*" = any:
  {"firehose": ["stream"],
   "sns": ["arn:aws:sns:REGION:ACCOUNT:topic",
           {"arn": "arn:aws:sns:REGION:ACCOUNT:t.fifo",
            "contentBasedDeduplication": true}],
   "lambda": ["name", "name:alias", "arn:aws:lambda:REGION:ACCOUNT:function:name"],
   "es": {"domain": "endpoint host" | {"vpc": "host"}},
   "memcached": {"cluster-id": "host:port"}, "redis": {"group-id": "host:port"},
   "iotEndpoint": "xxxx-ats.iot.REGION.amazonaws.com"}
A bare Lambda name exists in every region and account and takes no
qualifier, $LATEST or a version number; aliases must be listed. IoT topics
and OpenSearch indexes always exist.

Credentials (--credentials FILE, re-read when the file changes;
POST /__credentials): [{"accessKeyId", "secretAccessKey", "sessionToken"?,
"accountId"?, "expiration"? (ISO 8601 or epoch s)}] (AccessKeyId,
SecretAccessKey, SessionToken/Token, Expiration as AWS spells them also).

Fault rules: {"service", "kind", "target"? (default any), "operation"?,
"count"? (default 1; -1 forever), "skip"? (let N matching requests through
first), ...}. Each request takes the first live matching rule (in the order
added) plus every matching slow rule; partial rules match batch calls only.
Rules are consulted once the signature is good and the request passed
validation (a request that fails validation takes no rule).
  throttle  Firehose 500 ServiceUnavailableException "Slow down."; SNS 400
            ThrottlingException "Rate exceeded"; Lambda 429
            TooManyRequestsException (Retry-After, Reason
            CallerRateLimitExceeded); IoT 429 ThrottlingException;
            OpenSearch 429 rejected_execution_exception
            (es_rejected_execution_exception with --search-flavor
            elasticsearch). "status", "code", "message" (and "type" for
            OpenSearch) override.
  error500  Firehose 500 InternalFailure; SNS 500 InternalError (Receiver);
            Lambda 500 ServiceException; IoT 500 InternalFailureException;
            OpenSearch 500 {"error": {"type": "exception"}}; same overrides.
  partial   "every": N fails entries N, 2N, ... (1-based) or "indexes":
            [0-based, ...]: Firehose PutRecordBatch entries
            ServiceUnavailableException "Slow down."; SNS PublishBatch Failed
            entries InternalError with SenderFault false; OpenSearch _bulk
            items 429 rejected_execution_exception. "code", "message",
            "senderFault" (SNS), "status" and "type" (OpenSearch) override.
            The target of /_bulk is the index when every item names the same.
  slow      wait "delay_ms", then answer as usual
  reset     close the connection without an answer: "mode" "close" (FIN,
            default) or "rst" (RST)
  status    answer "status" with "body" (string or JSON), "headers",
            "contentType"
  mangle    serve the request as usual (the records are stored), then
            change its 2xx answer into one that misbehaves: "ops", a list
            of {"op": ...} applied in order (or the rule itself is one op):
              set      "path" (dots; list indexes, -1 the last) to "value"
              delete   the key or element at "path"
              dup      insert a copy of the element at "path" after it
              swap     elements "i" and "j" of the list at "path"
              replace  regex "pattern" by "repl" in the body text ("count"
                       0: all), for XML answers
              truncate keep the first "keep" bytes (default half)
              cut      announce the whole body (Content-Length), send the
                       first "keep" bytes (default half), close
              pad      append "bytes" spaces (JSON stays valid)
              status   answer "status" instead (body kept), "headers" added
              body     answer "body" (string or JSON) instead
            JSON ops need a JSON body; the answer says what it was mangled
            into only by being wrong.

Options: --port (0: any free port; the port is the first line on stdout),
--credentials FILE, --resources FILE, --account-id (of keys whose entry
names none, default 123456789012), --parent-pid PID (exit when it is gone),
--max-lifetime S, --log FILE (one JSON line per request: service,
operation, target, status (0: connection reset), latency_ms, accessKeyId,
region, fault, ...), --search-flavor opensearch|elasticsearch, --verbose.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, unquote_to_bytes
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGNING_NAMES = {"sns": "sns", "firehose": "firehose", "lambda": "lambda",
                 "iot": "iotdata", "opensearch": "es", "iot_control": "execute-api",
                 "es_control": "es", "elasticache": "elasticache"}
# es_control (the domain API) shares the signing name es: told apart by path
SERVICE_BY_SIGNING_NAME = {v: k for k, v in SIGNING_NAMES.items() if k != "es_control"}
SERVICE_ALIASES = {"iotdata": "iot", "iot-data": "iot", "es": "opensearch",
                   "elasticsearch": "opensearch"}
FAULT_KINDS = ("throttle", "error500", "partial", "slow", "reset", "status", "mangle")
MANGLE_OPS = ("set", "delete", "dup", "swap", "replace", "truncate", "cut", "pad",
              "status", "body")

SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
SNS_MAX_BYTES = 262144
FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_RECORD = 1024000
FIREHOSE_MAX_REQUEST = 4 * 1024 * 1024
LAMBDA_EVENT_MAX = 1048576
LAMBDA_SYNC_MAX = 6291456
IOT_MAX_PAYLOAD = 131072
OPENSEARCH_MAX_ID = 512
SKEW_SECONDS = 15 * 60

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
SNS_TOPIC_ARN_RE = re.compile(
    r"^arn:(aws[a-zA-Z-]*):sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$")
LAMBDA_NAME_PATTERN = (r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?"
                       r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?")
LAMBDA_FULL_ARN_RE = re.compile(
    r"^arn:(aws[a-zA-Z-]*):lambda:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):function:"
    r"([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
LAMBDA_PARTIAL_ARN_RE = re.compile(
    r"^(\d{12}):function:([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
LAMBDA_NAME_RE = re.compile(r"^([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
FIREHOSE_STREAM_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def request_id():
    return str(uuid.uuid4())


def b64(data):
    return base64.b64encode(data).decode("ascii")


def text_or_none(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --------------------------------------------------------------------------
# errors and responses


class ApiError(Exception):
    """A service error; rendered by the service's protocol."""

    def __init__(self, status, code, message, sender=True, extra=None, headers=None,
                 body=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.sender = sender
        self.extra = extra or {}       # more members for JSON bodies
        self.headers = headers or {}
        self.body = body               # a ready body (dict or bytes) overriding the shape


class ResetConnection(Exception):
    def __init__(self, mode):
        super().__init__(mode)
        self.mode = mode


class Response:
    def __init__(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode("utf-8")
        self.status = status
        self.body = bytes(body)
        self.content_type = content_type
        self.headers = dict(headers or {})


def validation_message(errors):
    n = len(errors)
    return "%d validation error%s detected: %s" % (n, "" if n == 1 else "s", "; ".join(errors))


# --------------------------------------------------------------------------
# SigV4 verification with botocore


class FixedTimeSigV4(SigV4Auth):
    """botocore's SigV4Auth signing at the request's X-Amz-Date.

    add_auth() is botocore's own sequence with the timestamp taken from the
    request instead of datetime.datetime.utcnow() (which is what botocore
    1.29's SigV4Auth.add_auth reads). headers_to_sign() keeps every header
    the client listed in SignedHeaders: botocore's signer leaves out
    user-agent, expect and x-amzn-trace-id when it signs, but AWS verifies
    whatever SignedHeaders names, and so do we. Every other stage (canonical
    request, string to sign, key derivation) is botocore's."""

    def __init__(self, credentials, service_name, region_name, amz_date):
        super().__init__(credentials, service_name, region_name)
        self._amz_date = amz_date
        self.canonical = ""
        self.string_to_sign_value = ""

    def headers_to_sign(self, request):
        headers = super().headers_to_sign(request)
        for name, value in request.headers.items():
            if name.lower() not in headers and name.lower() != "authorization":
                headers[name.lower()] = value
        return headers

    def add_auth(self, request):
        request.context["timestamp"] = self._amz_date
        self._modify_request_before_signing(request)
        self.canonical = self.canonical_request(request)
        self.string_to_sign_value = self.string_to_sign(request, self.canonical)
        signature = self.signature(self.string_to_sign_value, request)
        self._inject_signature_to_request(request, signature)


class AuthFailure(Exception):
    """kind: missing, incomplete, mismatch, expired_signature, unknown_key,
    expired_token, wrong_service."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def parse_authorization(value):
    m = AUTH_RE.match((value or "").strip())
    if not m:
        return None
    parts = {}
    for item in m.group(1).split(","):
        k, sep, v = item.strip().partition("=")
        if sep:
            parts[k.strip()] = v.strip()
    return parts


class CredentialStore:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.mtime = None
        self.from_file = {}
        self.added = {}
        self._reload(force=True)

    @staticmethod
    def parse(obj):
        if isinstance(obj, dict) and "credentials" in obj:
            obj = obj["credentials"]
        if isinstance(obj, dict):
            obj = [obj]
        if not isinstance(obj, list):
            raise ValueError("credentials: a list of objects is expected")
        out = {}
        for c in obj:
            if not isinstance(c, dict):
                raise ValueError("credentials: each entry must be an object")
            akid = c.get("accessKeyId") or c.get("AccessKeyId")
            secret = c.get("secretAccessKey") or c.get("SecretAccessKey")
            if not akid or not secret:
                raise ValueError("credentials: accessKeyId and secretAccessKey are required")
            token = c.get("sessionToken") or c.get("SessionToken") or c.get("Token")
            exp = c.get("expiration") or c.get("Expiration")
            expires = None
            if isinstance(exp, (int, float)):
                expires = float(exp)
            elif isinstance(exp, str) and exp:
                expires = datetime.datetime.fromisoformat(
                    exp.replace("Z", "+00:00")).timestamp()
            out[akid] = {"secret": secret, "token": token or None, "expires": expires,
                         "account": str(c.get("accountId") or c.get("AccountId") or "")}
        return out

    def _reload(self, force=False):
        if not self.path:
            return
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if not force and mtime == self.mtime:
            return
        try:
            with open(self.path) as f:
                data = self.parse(json.load(f))
        except (OSError, ValueError) as e:
            if force:
                raise SystemExit("aws_service: --credentials %s: %s" % (self.path, e))
            return  # half-written file: keep the previous set, try again later
        self.from_file = data
        self.mtime = mtime

    def add(self, obj):
        data = self.parse(obj)
        with self.lock:
            self.added.update(data)
        return list(data)

    def lookup(self, akid):
        with self.lock:
            self._reload()
            return self.added.get(akid) or self.from_file.get(akid)


def parse_amz_date(value):
    try:
        return datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def decoded_query(raw):
    """The query's parameters percent-decoded ('+' stays '+'), empty
    segments skipped; None when a part is not UTF-8."""
    out = []
    for seg in raw.split("&"):
        if not seg:
            continue
        k, _, v = seg.partition("=")
        try:
            out.append((unquote_to_bytes(k).decode("utf-8"), unquote_to_bytes(v).decode("utf-8")))
        except UnicodeDecodeError:
            return None
    return out


def verify_signature(creds, method, raw_target, headers, body, expected_signing_name):
    """Returns (access key id, region, credential entry) or raises AuthFailure."""
    auth_value = headers.get("Authorization")
    if not auth_value:
        raise AuthFailure("missing", "Missing Authentication Token")
    parts = parse_authorization(auth_value)
    if parts is None or not {"Credential", "SignedHeaders", "Signature"} <= set(parts):
        raise AuthFailure("incomplete",
                          "Authorization header requires 'Credential', 'SignedHeaders' and "
                          "'Signature' parameters (AWS4-HMAC-SHA256). Authorization=%s"
                          % auth_value.split(" ", 1)[0])
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthFailure("incomplete",
                          "Credential should be scoped to a valid region, not '%s'. "
                          % "/".join(scope[2:3]))
    akid, scope_date, region, scope_service, _ = scope
    if scope_service != expected_signing_name:
        raise AuthFailure("mismatch", "Credential should be scoped to correct service: '%s'. "
                          % expected_signing_name)
    amz_date_value = headers.get("X-Amz-Date")
    if not amz_date_value:
        raise AuthFailure("incomplete",
                          "Authorization header requires existence of either a 'X-Amz-Date' "
                          "or a 'Date' header. Authorization=AWS4-HMAC-SHA256")
    amz_date = parse_amz_date(amz_date_value)
    if amz_date is None:
        raise AuthFailure("incomplete", "X-Amz-Date '%s' is not of the form YYYYMMDDTHHMMSSZ"
                          % amz_date_value)
    now = now_utc()
    fmt = "%Y%m%dT%H%M%SZ"
    if amz_date < now - datetime.timedelta(seconds=SKEW_SECONDS):
        raise AuthFailure("expired_signature",
                          "Signature expired: %s is now earlier than %s (%s - 15 min.)"
                          % (amz_date_value,
                             (now - datetime.timedelta(seconds=SKEW_SECONDS)).strftime(fmt),
                             now.strftime(fmt)))
    if amz_date > now + datetime.timedelta(seconds=SKEW_SECONDS):
        raise AuthFailure("expired_signature",
                          "Signature not yet current: %s is still later than %s (%s + 15 min.)"
                          % (amz_date_value,
                             (now + datetime.timedelta(seconds=SKEW_SECONDS)).strftime(fmt),
                             now.strftime(fmt)))
    if scope_date != amz_date_value[:8]:
        raise AuthFailure("mismatch",
                          "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                          "version of date from HTTP: '%s' != '%s', from '%s'."
                          % (scope_date, amz_date_value[:8], amz_date_value))
    entry = creds.lookup(akid)
    if entry is None:
        raise AuthFailure("unknown_key", "The security token included in the request is invalid.")
    token = headers.get("X-Amz-Security-Token")
    if (entry["token"] or None) != (token or None):
        raise AuthFailure("unknown_key", "The security token included in the request is invalid.")
    if entry["expires"] is not None and time.time() >= entry["expires"]:
        raise AuthFailure("expired_token", "The security token included in the request is expired")
    signed_names = [n for n in parts["SignedHeaders"].split(";") if n]
    if "host" not in signed_names:
        raise AuthFailure("mismatch", "'Host' must be a signed header (SignedHeaders=%s)"
                          % parts["SignedHeaders"])
    if token and "x-amz-security-token" not in signed_names:
        raise AuthFailure("mismatch", "X-Amz-Security-Token is sent but not signed "
                          "(AWS SDK signers sign it)")
    content_sha = headers.get("X-Amz-Content-SHA256")
    if content_sha and content_sha != "UNSIGNED-PAYLOAD" and \
            content_sha != hashlib.sha256(body).hexdigest():
        raise AuthFailure("mismatch", "The provided 'x-amz-content-sha256' header does not "
                          "match what was computed.")
    signed = {}
    for name in signed_names:
        values = headers.get_all(name)
        if values is None:
            raise AuthFailure("mismatch", "SignedHeaders names '%s', which the request does not "
                              "carry" % name)
        signed[name] = values
    # The path goes in as received (botocore normalises it and encodes it
    # once more, as AWS does for every service but S3). The query goes in
    # as decoded parameters, so botocore encodes each name and value with
    # the unreserved set and sorts them, as AWS canonicalises what it
    # receives; botocore's other path (a query left in the URL) would take
    # the bytes as they came.
    path, _, query = raw_target.partition("?")
    params = decoded_query(query)
    url = "http://%s%s" % (headers.get("Host"), path if params is not None else raw_target)
    request = AWSRequest(method=method, url=url, data=body, params=params or {})
    for name, values in signed.items():
        for v in values:
            request.headers[name] = v
    signer = FixedTimeSigV4(Credentials(akid, entry["secret"], entry["token"]),
                            scope_service, region, amz_date_value)
    signer.add_auth(request)
    expected = parse_authorization(request.headers["Authorization"])
    ok = (expected["Credential"] == parts["Credential"]
          and expected["SignedHeaders"] == parts["SignedHeaders"]
          and hmac.compare_digest(expected["Signature"], parts["Signature"]))
    if not ok:
        raise AuthFailure(
            "mismatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should have "
            "been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n"
            % (signer.canonical, signer.string_to_sign_value))
    return akid, region, entry


# --------------------------------------------------------------------------
# state


class FaultRule:
    _ids = itertools.count(1)

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault rule must be an object")
        service = str(spec.get("service", "")).lower()
        service = SERVICE_ALIASES.get(service, service)
        if service not in SIGNING_NAMES and service not in ("*", "any"):
            raise ValueError("fault rule: unknown service %r" % spec.get("service"))
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError("fault rule: kind must be one of %s" % ", ".join(FAULT_KINDS))
        self.service = None if service in ("*", "any") else service
        self.target = spec.get("target")
        if self.target in ("*", ""):
            self.target = None
        self.operation = spec.get("operation")
        self.kind = kind
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        self.spec = spec
        self.fired = 0
        if kind == "partial" and not (spec.get("every") or spec.get("indexes") is not None):
            raise ValueError("fault rule: partial needs 'every' or 'indexes'")
        if kind == "status" and not isinstance(spec.get("status"), int):
            raise ValueError("fault rule: status needs an integer 'status'")
        if kind == "mangle":
            ops = spec.get("ops", [spec])
            if not isinstance(ops, list) or not ops or not all(
                    isinstance(o, dict) and o.get("op") in MANGLE_OPS for o in ops):
                raise ValueError("fault rule: mangle needs 'op' or 'ops' of %s"
                                 % ", ".join(MANGLE_OPS))
        self.id = next(FaultRule._ids)

    def live(self):
        return self.count != 0

    def matches(self, service, operation, target):
        if not self.live():
            return False
        if self.service and self.service != service:
            return False
        if self.operation and self.operation != operation:
            return False
        if self.target is not None and self.target != target:
            return False
        return True

    def fire(self):
        """Called under the state lock when the rule matched; True if it applies."""
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.count > 0:
            self.count -= 1
        self.fired += 1
        return True

    def failing(self, n):
        """The 0-based entry indexes a partial rule fails out of n."""
        every = self.spec.get("every")
        if every:
            every = int(every)
            return {i for i in range(n) if (i + 1) % every == 0}
        return {int(i) for i in self.spec.get("indexes") or [] if 0 <= int(i) < n}

    def describe(self):
        d = dict(self.spec)
        d.update({"id": self.id, "fired": self.fired, "remaining": self.count,
                  "skip_left": self.skip})
        return d


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.creds = CredentialStore(args.credentials)
        self.resources = {"firehose": set(), "sns": {}, "lambda": set(), "es": {},
                          "memcached": {}, "redis": {}, "iotEndpoint": None}
        if args.resources:
            with open(args.resources) as f:
                self.add_resources(json.load(f))
        self.seq = 0
        self.sns_sequence = 10000000000000000000
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.reset()

    def reset(self):
        with self.lock:
            self.received = {}        # (service, target) -> [entries]
            self.rules = []
            self.docs = {}            # OpenSearch index -> {id: {"source", "version"}}
            self.stats = {"requests": 0, "by_service": {}, "auth_failures": 0,
                          "auth_failures_by_kind": {}, "faults_fired": 0,
                          "faults_by_kind": {k: 0 for k in FAULT_KINDS},
                          "faults_by_service": {}, "deliveries": 0}
            self.cond.notify_all()

    def add_resources(self, obj):
        if not isinstance(obj, dict):
            raise ValueError("resources: an object is expected")
        with self.lock:
            for name in obj.get("firehose", []):
                self.resources["firehose"].add(str(name))
            for t in obj.get("sns", []):
                if isinstance(t, dict):
                    arn = t.get("arn") or t.get("TopicArn")
                    cbd = bool(t.get("contentBasedDeduplication") or
                               t.get("ContentBasedDeduplication"))
                else:
                    arn, cbd = str(t), False
                if arn != "*" and not SNS_TOPIC_ARN_RE.match(arn or ""):
                    raise ValueError("resources: bad SNS topic ARN %r" % arn)
                self.resources["sns"][arn] = {"contentBasedDeduplication": cbd}
            for fn in obj.get("lambda", []):
                self.resources["lambda"].add(str(fn))
            # control-plane lookups: domain -> endpoint, cluster / group id
            # -> "host:port", the account's IoT host (DescribeEndpoint)
            for kind in ("es", "memcached", "redis"):
                for k, v in (obj.get(kind) or {}).items():
                    self.resources[kind][str(k)] = v
            if obj.get("iotEndpoint"):
                self.resources["iotEndpoint"] = str(obj["iotEndpoint"])

    def describe_resources(self):
        with self.lock:
            return {"firehose": sorted(self.resources["firehose"]),
                    "sns": [dict({"arn": a}, **v)
                            for a, v in sorted(self.resources["sns"].items())],
                    "lambda": sorted(self.resources["lambda"]),
                    "es": dict(self.resources["es"]),
                    "memcached": dict(self.resources["memcached"]),
                    "redis": dict(self.resources["redis"]),
                    "iotEndpoint": self.resources["iotEndpoint"]}

    def firehose_exists(self, name):
        with self.lock:
            return "*" in self.resources["firehose"] or name in self.resources["firehose"]

    def sns_topic(self, arn):
        with self.lock:
            t = self.resources["sns"].get(arn)
            if t is None and "*" in self.resources["sns"]:
                t = {"contentBasedDeduplication": False}
            return t

    def lambda_exists(self, region, account, name, qualifier):
        arn = "arn:aws:lambda:%s:%s:function:%s" % (region, account, name)
        with self.lock:
            fns = self.resources["lambda"]
            if "*" in fns:
                return True
            if qualifier is None or qualifier == "$LATEST" or qualifier.isdigit():
                return name in fns or arn in fns
            return ("%s:%s" % (name, qualifier)) in fns or ("%s:%s" % (arn, qualifier)) in fns

    def add_rules(self, specs):
        if isinstance(specs, dict) and "rules" in specs:
            specs = specs["rules"]
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list):
            raise ValueError("fault rules: an object or a list is expected")
        rules = [FaultRule(s) for s in specs]
        with self.lock:
            self.rules.extend(rules)
        return [r.id for r in rules]

    def take_faults(self, service, operation, target, batch):
        """Returns (slow rules, the first other matching rule or None).
        partial rules only match batch calls."""
        slow, other = [], None
        with self.lock:
            for r in self.rules:
                if not r.matches(service, operation, target):
                    continue
                if r.kind == "partial" and not batch:
                    continue
                if r.kind == "slow":
                    if r.fire():
                        slow.append(r)
                        self._count_fault(r, service)
                elif other is None:
                    if r.fire():
                        other = r
                        self._count_fault(r, service)
        return slow, other

    def _count_fault(self, rule, service):
        self.stats["faults_fired"] += 1
        self.stats["faults_by_kind"][rule.kind] += 1
        by_service = self.stats["faults_by_service"]
        by_service[service] = by_service.get(service, 0) + 1

    def store(self, service, target, entries):
        with self.lock:
            lst = self.received.setdefault((service, target), [])
            for e in entries:
                self.seq += 1
                e["seq"] = self.seq
                lst.append(e)
            self.stats["deliveries"] += len(entries)
            self.cond.notify_all()

    def query_received(self, service, target, minimum, timeout):
        deadline = time.monotonic() + timeout

        def collect():
            out = []
            for (svc, tgt), lst in self.received.items():
                if service and svc != service:
                    continue
                if target is not None and tgt != target:
                    continue
                out.extend(lst)
            out.sort(key=lambda e: e["seq"])
            return out

        with self.lock:
            out = collect()
            while len(out) < minimum:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
                out = collect()
            return [dict(e) for e in out]

    def next_sns_sequence(self):
        with self.lock:
            self.sns_sequence += 1
            return str(self.sns_sequence)

    def count_request(self, service, operation, status):
        with self.lock:
            self.stats["requests"] += 1
            svc = self.stats["by_service"].setdefault(service or "unknown", {})
            op = svc.setdefault(operation or "unknown", {"count": 0, "status": {}})
            op["count"] += 1
            op["status"][str(status)] = op["status"].get(str(status), 0) + 1

    def count_auth_failure(self, kind):
        with self.lock:
            self.stats["auth_failures"] += 1
            k = self.stats["auth_failures_by_kind"]
            k[kind] = k.get(kind, 0) + 1

    def snapshot_stats(self):
        with self.lock:
            s = json.loads(json.dumps(self.stats))
            s["rules"] = [r.describe() for r in self.rules]
            return s

    def log(self, record):
        if not self.log_file:
            return
        line = json.dumps(record, sort_keys=True)
        with self.log_lock:
            self.log_file.write(line + "\n")


# --------------------------------------------------------------------------
# request context


class Ctx:
    def __init__(self, handler, body):
        self.handler = handler
        self.method = handler.command
        self.raw_target = handler.path
        path, _, query = handler.path.partition("?")
        self.path = path
        self.query_raw = query
        self.query = parse_qsl(query, keep_blank_values=True)
        self.headers = handler.headers
        self.body = body
        self.service = None
        self.operation = None
        self.target = None
        self.akid = None
        self.region = None
        self.account = None
        self.request_id = request_id()
        self.fault = None
        self.mangle = None  # the mangle rule this request took

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def qparam(self, name):
        for k, v in self.query:
            if k == name:
                return v
        return None

    def media_type(self):
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    def base_entry(self):
        return {"service": self.service, "operation": self.operation, "target": self.target,
                "accessKeyId": self.akid, "region": self.region, "accountId": self.account,
                "requestId": self.request_id, "time": time.time()}


# --------------------------------------------------------------------------
# protocols: error rendering


AUTH_CODES = {
    # kind: (JSON / REST-JSON code, Query code)
    "missing": ("MissingAuthenticationTokenException", "MissingAuthenticationToken"),
    "incomplete": ("IncompleteSignatureException", "IncompleteSignature"),
    "mismatch": ("InvalidSignatureException", "SignatureDoesNotMatch"),
    "expired_signature": ("InvalidSignatureException", "SignatureDoesNotMatch"),
    "unknown_key": ("UnrecognizedClientException", "InvalidClientTokenId"),
    "expired_token": ("ExpiredTokenException", "ExpiredToken"),
}


def render_error(service, ctx, err):
    rid = ctx.request_id
    headers = dict(err.headers)
    headers["x-amzn-RequestId"] = rid
    if err.body is not None:
        ctype = "application/json; charset=UTF-8" if service == "opensearch" else "application/json"
        return Response(err.status, err.body, ctype, headers)
    if service == "sns":
        xml = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n'
               '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
               '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
               % (SNS_NS, "Sender" if err.sender else "Receiver", escape(err.code),
                  escape(err.message or ""), rid))
        return Response(err.status, xml, "text/xml", headers)
    if service == "firehose":
        body = {"__type": err.code}
        if err.message is not None:
            body["message"] = err.message
        body.update(err.extra)
        return Response(err.status, body, "application/x-amz-json-1.1", headers)
    if service == "elasticache":
        xml = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>Sender</Type>\n'
               '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
               '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
               % (ELASTICACHE_NS, escape(err.code), escape(err.message or ""), rid))
        return Response(err.status, xml, "text/xml", headers)
    if service in ("lambda", "iot", "iot_control", "es_control"):
        headers["x-amzn-ErrorType"] = err.code
        body = dict(err.extra) if err.extra else {"message": err.message}
        return Response(err.status, body, "application/json", headers)
    if service == "opensearch":
        return Response(err.status, {"message": err.message}, "application/json; charset=UTF-8",
                        headers)
    headers["x-amzn-ErrorType"] = err.code
    return Response(err.status, {"message": err.message, "code": err.code}, "application/json",
                    headers)


def auth_error(service, failure):
    json_code, query_code = AUTH_CODES[failure.kind]
    if service in ("sns", "elasticache"):
        return ApiError(403, query_code, failure.message)
    if service == "opensearch":
        return ApiError(403, json_code, failure.message)
    return ApiError(403, json_code, failure.message)


def es_error_body(status, etype, reason, caused_by=None):
    err = {"type": etype, "reason": reason}
    root = {"root_cause": [dict(err)]}
    root.update(err)
    if caused_by:
        root["caused_by"] = caused_by
    return {"error": root, "status": status}


def es_error(status, etype, reason, caused_by=None):
    return ApiError(status, etype, reason, body=es_error_body(status, etype, reason, caused_by))


def fault_error(service, rule):
    """The error a throttle / error500 rule answers with."""
    s = rule.spec
    if rule.kind == "throttle":
        if service == "firehose":
            e = ApiError(s.get("status", 500), s.get("code", "ServiceUnavailableException"),
                         s.get("message", "Slow down."), sender=False)
        elif service == "sns":
            e = ApiError(s.get("status", 400), s.get("code", "ThrottlingException"),
                         s.get("message", "Rate exceeded"))
        elif service == "lambda":
            e = ApiError(s.get("status", 429), s.get("code", "TooManyRequestsException"),
                         s.get("message", "Rate Exceeded."),
                         extra={"Type": "User", "message": s.get("message", "Rate Exceeded."),
                                "Reason": s.get("reason", "CallerRateLimitExceeded")},
                         headers={"Retry-After": str(s.get("retryAfter", 1))})
        elif service == "iot":
            e = ApiError(s.get("status", 429), s.get("code", "ThrottlingException"),
                         s.get("message", "Rate exceeded"))
        else:
            flavor = s.get("type") or STATE.args.rejected_type
            reason = s.get("message", "rejected execution of coordinating operation "
                           "[coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, "
                           "coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0]")
            e = es_error(s.get("status", 429), flavor, reason)
        return e
    # error500
    if service == "firehose":
        return ApiError(s.get("status", 500), s.get("code", "InternalFailure"),
                        s.get("message", "Internal service failure."), sender=False)
    if service == "sns":
        return ApiError(s.get("status", 500), s.get("code", "InternalError"),
                        s.get("message", "Internal Error"), sender=False)
    if service == "lambda":
        msg = s.get("message", "An internal error occurred.")
        return ApiError(s.get("status", 500), s.get("code", "ServiceException"), msg,
                        extra={"Type": "Service", "Message": msg})
    if service == "iot":
        return ApiError(s.get("status", 500), s.get("code", "InternalFailureException"),
                        s.get("message", "Internal failure"))
    return es_error(s.get("status", 500), s.get("type", "exception"),
                    s.get("message", "injected internal error"))


def apply_faults(ctx, batch=False):
    """Consult the fault rules for this (parsed) request. Returns the
    partial rule to apply to the entries, if any."""
    slow, rule = STATE.take_faults(ctx.service, ctx.operation, ctx.target, batch)
    for r in slow:
        time.sleep(max(0, float(r.spec.get("delay_ms", 0))) / 1000.0)
    if slow and not rule:
        ctx.fault = "slow"
    if rule is None:
        return None
    ctx.fault = rule.kind
    if rule.kind == "reset":
        raise ResetConnection(rule.spec.get("mode", "close"))
    if rule.kind == "status":
        s = rule.spec
        body = s.get("body", "")
        ctype = s.get("contentType") or ("application/json" if not isinstance(body, str)
                                         else "text/plain")
        raise ResponseReady(Response(s["status"], body, ctype, s.get("headers")))
    if rule.kind in ("throttle", "error500"):
        raise fault_error(ctx.service, rule)
    if rule.kind == "partial":
        return rule
    if rule.kind == "mangle":
        ctx.mangle = rule
    return None


def _json_walk(doc, path):
    """The container holding the last step of `path` and that step."""
    steps = [int(p) if re.fullmatch(r"-?\d+", p) else p for p in str(path).split(".")]
    node = doc
    for st in steps[:-1]:
        node = node[st]
    return node, steps[-1]


def mangle_response(spec, resp):
    """The answer `resp` changed by the ops of a mangle rule."""
    for o in spec.get("ops", [spec]):
        op = o["op"]
        if op == "status":
            resp.status = int(o["status"])
            resp.headers.update(o.get("headers") or {})
        elif op == "body":
            b = o.get("body", "")
            resp.body = (b.encode() if isinstance(b, str) else json.dumps(b).encode())
        elif op == "truncate":
            keep = o.get("keep")
            resp.body = resp.body[:int(keep) if keep is not None else len(resp.body) // 2]
        elif op == "pad":
            resp.body += b" " * int(o.get("bytes", 0))
        elif op == "cut":
            keep = o.get("keep")
            resp.cut = int(keep) if keep is not None else len(resp.body) // 2
        elif op == "replace":
            text = resp.body.decode("utf-8")
            resp.body = re.sub(o["pattern"], o.get("repl", ""), text,
                               count=int(o.get("count", 0))).encode("utf-8")
        else:
            doc = json.loads(resp.body)
            node, key = _json_walk(doc, o.get("path", ""))
            if op == "set":
                node[key] = o.get("value")
            elif op == "delete":
                del node[key]
            elif op == "dup":
                lst, i = node, key
                lst.insert(i + 1 if i >= 0 else len(lst) + i + 1, json.loads(json.dumps(lst[i])))
            elif op == "swap":
                lst = node[key]
                i, j = int(o["i"]), int(o["j"])
                lst[i], lst[j] = lst[j], lst[i]
            resp.body = json.dumps(doc).encode("utf-8")
    return resp


class ResponseReady(Exception):
    def __init__(self, response):
        super().__init__("response")
        self.response = response


# --------------------------------------------------------------------------
# Firehose


def firehose(ctx):
    target = ctx.header("X-Amz-Target")
    if not target:
        ctx.operation = None
        raise ApiError(400, "UnknownOperationException", "Missing X-Amz-Target header")
    prefix, _, op = target.partition(".")
    ctx.operation = op or target
    if prefix != "Firehose_20150804" or op not in ("PutRecord", "PutRecordBatch",
                                                   "DescribeDeliveryStream"):
        raise ApiError(400, "UnknownOperationException",
                       "Operation %s is not served here (PutRecord, PutRecordBatch)" % target)
    if ctx.method != "POST" or ctx.path != "/":
        raise ApiError(400, "UnknownOperationException", "JSON 1.1 calls are POST /")
    if ctx.media_type() != "application/x-amz-json-1.1":
        raise ApiError(400, "SerializationException",
                       "Unsupported Content-Type '%s': Firehose takes application/x-amz-json-1.1"
                       % (ctx.header("Content-Type") or ""))
    try:
        req = json.loads(ctx.body or b"{}")
    except ValueError as e:
        raise ApiError(400, "SerializationException", "The request body is not JSON: %s" % e)
    if not isinstance(req, dict):
        raise ApiError(400, "SerializationException", "The request body must be a JSON object")
    if op == "DescribeDeliveryStream":
        return firehose_describe(ctx, req)
    errors = []
    name = req.get("DeliveryStreamName")
    if name is None:
        errors.append("Value null at 'deliveryStreamName' failed to satisfy constraint: "
                      "Member must not be null")
    elif not isinstance(name, str):
        raise ApiError(400, "SerializationException", "DeliveryStreamName must be a string")
    elif not FIREHOSE_STREAM_RE.match(name):
        errors.append("Value '%s' at 'deliveryStreamName' failed to satisfy constraint: Member "
                      "must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length "
                      "between 1 and 64" % name)
    ctx.target = name if isinstance(name, str) else None
    if op == "PutRecord":
        rec = req.get("Record")
        if rec is None:
            errors.append("Value null at 'record' failed to satisfy constraint: "
                          "Member must not be null")
            records = []
        else:
            records = [rec]
        field = "record"
    else:
        records = req.get("Records")
        field = "records"
        if records is None:
            errors.append("Value null at 'records' failed to satisfy constraint: "
                          "Member must not be null")
            records = []
        elif not isinstance(records, list):
            raise ApiError(400, "SerializationException", "Records must be a list")
        elif len(records) < 1:
            errors.append("Value '[]' at 'records' failed to satisfy constraint: "
                          "Member must have length greater than or equal to 1")
        elif len(records) > FIREHOSE_MAX_RECORDS:
            errors.append("Value '[...%d records]' at 'records' failed to satisfy constraint: "
                          "Member must have length less than or equal to %d"
                          % (len(records), FIREHOSE_MAX_RECORDS))
    datas = []
    for i, rec in enumerate(records):
        where = field + (".%d.member" % (i + 1) if op == "PutRecordBatch" else "")
        if not isinstance(rec, dict):
            raise ApiError(400, "SerializationException", "%s must be an object" % where)
        data = rec.get("Data")
        if data is None:
            errors.append("Value null at '%s.data' failed to satisfy constraint: "
                          "Member must not be null" % where)
            datas.append(b"")
            continue
        if not isinstance(data, str):
            raise ApiError(400, "SerializationException", "%s.data must be a base64 string" % where)
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "SerializationException",
                           "Base64 encoded data at '%s.data' is not valid base64" % where)
        if len(raw) > FIREHOSE_MAX_RECORD:
            errors.append("Value 'java.nio.HeapByteBuffer[pos=0 lim=%d cap=%d]' at '%s.data' "
                          "failed to satisfy constraint: Member must have length less than or "
                          "equal to %d" % (len(raw), len(raw), where, FIREHOSE_MAX_RECORD))
        datas.append(raw)
    if errors:
        raise ApiError(400, "ValidationException", validation_message(errors))
    total = sum(len(d) for d in datas)
    if total > FIREHOSE_MAX_REQUEST:
        raise ApiError(400, "InvalidArgumentException",
                       "Records size exceeds 4 MiB limit: %d bytes" % total)
    if not STATE.firehose_exists(name):
        raise ApiError(400, "ResourceNotFoundException",
                       "Firehose %s under account %s not found." % (name, ctx.account))
    rule = apply_faults(ctx, batch=(op == "PutRecordBatch"))
    failing = rule.failing(len(datas)) if rule else set()
    responses, stored = [], []
    for i, raw in enumerate(datas):
        if i in failing:
            responses.append({"ErrorCode": rule.spec.get("code", "ServiceUnavailableException"),
                              "ErrorMessage": rule.spec.get("message", "Slow down.")})
            continue
        rid = secrets.token_hex(32) + secrets.token_urlsafe(96)
        responses.append({"RecordId": rid})
        e = ctx.base_entry()
        e.update({"recordId": rid, "index": i, "dataBase64": b64(raw), "data": text_or_none(raw)})
        stored.append(e)
    STATE.store("firehose", name, stored)
    headers = {"x-amzn-RequestId": ctx.request_id}
    if op == "PutRecord":
        return Response(200, {"RecordId": responses[0]["RecordId"], "Encrypted": False},
                        "application/x-amz-json-1.1", headers)
    return Response(200, {"FailedPutCount": len(failing), "Encrypted": False,
                          "RequestResponses": responses}, "application/x-amz-json-1.1", headers)


# --------------------------------------------------------------------------
# SNS


def sns_xml(tag, result_inner, rid):
    return ('<%sResponse xmlns="%s">\n  <%sResult>\n%s  </%sResult>\n'
            '  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
            '</%sResponse>\n' % (tag, SNS_NS, tag, result_inner, tag, rid, tag))


def sns_attributes(form, prefix):
    """MessageAttributes.entry.N.{Name,Value.DataType,Value.StringValue,Value.BinaryValue}."""
    attrs = {}
    size = 0
    n = 1
    while True:
        base = "%sMessageAttributes.entry.%d." % (prefix, n)
        if base + "Name" not in form and base + "Value.DataType" not in form:
            break
        name = form.get(base + "Name", "")
        dtype = form.get(base + "Value.DataType")
        sval = form.get(base + "Value.StringValue")
        bval = form.get(base + "Value.BinaryValue")
        if not name:
            raise ApiError(400, "InvalidParameter",
                           "Invalid parameter: MessageAttributes Reason: a message attribute "
                           "has no name")
        if not dtype:
            raise ApiError(400, "ParameterValueInvalid",
                           "The message attribute '%s' must contain non-empty message attribute "
                           "type." % name)
        base_type = dtype.split(".", 1)[0]
        if base_type not in ("String", "Number", "Binary"):
            raise ApiError(400, "ParameterValueInvalid",
                           "The message attribute '%s' has an invalid message attribute type, "
                           "the set of supported type prefixes is Binary, Number, and String."
                           % name)
        value = {"DataType": dtype}
        if base_type == "Binary":
            if not bval:
                raise ApiError(400, "ParameterValueInvalid",
                               "The message attribute '%s' must contain non-empty message "
                               "attribute value for message attribute type '%s'." % (name, dtype))
            try:
                raw = base64.b64decode(bval, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "ParameterValueInvalid",
                               "The message attribute '%s' has an invalid binary value" % name)
            value["BinaryValue"] = bval
            size += len(raw)
        else:
            if sval is None or sval == "":
                raise ApiError(400, "ParameterValueInvalid",
                               "The message attribute '%s' must contain non-empty message "
                               "attribute value for message attribute type '%s'." % (name, dtype))
            if base_type == "Number":
                try:
                    float(sval)
                except ValueError:
                    raise ApiError(400, "ParameterValueInvalid",
                                   "The message attribute '%s' with type 'Number' must contain a "
                                   "numeric value" % name)
            if dtype == "String.Array":
                try:
                    if not isinstance(json.loads(sval), list):
                        raise ValueError
                except ValueError:
                    raise ApiError(400, "ParameterValueInvalid",
                                   "The message attribute '%s' with type 'String.Array' must be "
                                   "a JSON array" % name)
            value["StringValue"] = sval
            size += len(sval.encode("utf-8"))
        size += len(name.encode("utf-8")) + len(dtype.encode("utf-8"))
        attrs[name] = value
        n += 1
    return attrs, size


def sns_check_message(form, prefix, topic_arn, topic):
    """Validates one message (Publish or a batch entry); returns its record."""
    message = form.get(prefix + "Message")
    if message is None:
        raise ApiError(400, "ValidationError", "1 validation error detected: Value null at "
                       "'message' failed to satisfy constraint: Member must not be null")
    if message == "":
        raise ApiError(400, "InvalidParameter", "Invalid parameter: Empty message")
    attrs, attr_size = sns_attributes(form, prefix)
    size = len(message.encode("utf-8")) + attr_size
    if size > SNS_MAX_BYTES:
        raise ApiError(400, "InvalidParameter", "Invalid parameter: Message too long")
    subject = form.get(prefix + "Subject")
    if subject is not None:
        if (subject == "" or len(subject) > 100 or
                any(not (32 <= ord(c) < 127) for c in subject) or subject[0] == " "):
            raise ApiError(400, "InvalidParameter", "Invalid parameter: Subject")
    structure = form.get(prefix + "MessageStructure")
    if structure is not None:
        if structure != "json":
            raise ApiError(400, "InvalidParameter", "Invalid parameter: MessageStructure")
        try:
            parsed = json.loads(message)
        except ValueError:
            raise ApiError(400, "InvalidParameter",
                           "Invalid parameter: Message Structure - JSON message body failed to "
                           "parse")
        if not isinstance(parsed, dict) or "default" not in parsed:
            raise ApiError(400, "InvalidParameter",
                           "Invalid parameter: Message Structure - No default entry in JSON "
                           "message body")
    group = form.get(prefix + "MessageGroupId")
    dedup = form.get(prefix + "MessageDeduplicationId")
    fifo = topic_arn.endswith(".fifo")
    if fifo:
        if not group:
            raise ApiError(400, "InvalidParameter", "Invalid parameter: The MessageGroupId "
                           "parameter is required for FIFO topics")
        if not dedup and not (topic or {}).get("contentBasedDeduplication"):
            raise ApiError(400, "InvalidParameter", "Invalid parameter: The topic should either "
                           "have ContentBasedDeduplication enabled or MessageDeduplicationId "
                           "provided explicitly")
    for label, v in (("MessageGroupId", group), ("MessageDeduplicationId", dedup)):
        if v is not None and (len(v) > 128 or not re.match(
                r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+$", v)):
            raise ApiError(400, "InvalidParameter", "Invalid parameter: %s" % label)
    return {"message": message, "subject": subject, "messageStructure": structure,
            "messageAttributes": attrs, "messageGroupId": group,
            "messageDeduplicationId": dedup}


def sns_topic_checks(ctx, arn):
    m = SNS_TOPIC_ARN_RE.match(arn)
    if not m:
        raise ApiError(400, "InvalidParameter", "Invalid parameter: TopicArn")
    if m.group(2) != ctx.region:
        raise ApiError(400, "InvalidParameter", "Invalid parameter: TopicArn Reason: the topic "
                       "is in %s and the request is signed for %s" % (m.group(2), ctx.region))


def sns(ctx):
    if ctx.method != "POST" or ctx.path != "/":
        raise ApiError(400, "InvalidAction", "Query API calls are POST /")
    if ctx.media_type() != "application/x-www-form-urlencoded":
        raise ApiError(400, "MissingAction",
                       "Missing Action: the body must be application/x-www-form-urlencoded "
                       "(got '%s')" % (ctx.header("Content-Type") or ""))
    try:
        pairs = parse_qsl(ctx.body.decode("utf-8"), keep_blank_values=True,
                          encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "MalformedQueryString", "The form body is not valid UTF-8 "
                       "percent-encoding")
    form = dict(ctx.query)
    form.update(pairs)
    action = form.get("Action")
    ctx.operation = action
    if not action:
        raise ApiError(400, "MissingAction", "Missing Action")
    version = form.get("Version")
    if action not in ("Publish", "PublishBatch", "ListTopics") or version != "2010-03-31":
        raise ApiError(400, "InvalidAction", "Could not find operation %s for version %s"
                       % (action, version or "NO_VERSION_SPECIFIED"))
    rid = ctx.request_id
    headers = {"x-amzn-RequestId": rid}
    if action == "ListTopics":
        return sns_list_topics(ctx, form)
    if action == "Publish":
        arn = form.get("TopicArn") or form.get("TargetArn")
        ctx.target = arn
        if not arn:
            if form.get("PhoneNumber"):
                raise ApiError(400, "InvalidParameter", "Invalid parameter: PhoneNumber "
                               "Reason: SMS is not served here")
            raise ApiError(400, "InvalidParameter", "Invalid parameter: TopicArn or TargetArn "
                           "Reason: no value for required parameter")
        if form.get("Message") is None:
            raise ApiError(400, "ValidationError", "1 validation error detected: Value null at "
                           "'message' failed to satisfy constraint: Member must not be null")
        sns_topic_checks(ctx, arn)
        topic = STATE.sns_topic(arn)
        if topic is None:
            raise ApiError(404, "NotFound", "Topic does not exist")
        rec = sns_check_message(form, "", arn, topic)
        apply_faults(ctx)
        mid = str(uuid.uuid4())
        seq = STATE.next_sns_sequence() if arn.endswith(".fifo") else None
        e = ctx.base_entry()
        e.update(rec)
        e.update({"messageId": mid, "sequenceNumber": seq})
        STATE.store("sns", arn, [e])
        inner = "    <MessageId>%s</MessageId>\n" % mid
        if seq:
            inner += "    <SequenceNumber>%s</SequenceNumber>\n" % seq
        return Response(200, sns_xml("Publish", inner, rid), "text/xml", headers)

    # PublishBatch
    arn = form.get("TopicArn")
    ctx.target = arn
    if not arn:
        raise ApiError(400, "ValidationError", "1 validation error detected: Value null at "
                       "'topicArn' failed to satisfy constraint: Member must not be null")
    indexes = set()
    pat = re.compile(r"^PublishBatchRequestEntries\.member\.(\d+)\.")
    for k in form:
        m = pat.match(k)
        if m:
            indexes.add(int(m.group(1)))
    n = 0
    while (n + 1) in indexes:
        n += 1
    if n == 0:
        raise ApiError(400, "EmptyBatchRequest", "The batch request doesn't contain any entries.")
    if n > 10:
        raise ApiError(400, "TooManyEntriesInBatchRequest",
                       "The batch request contains more entries than permissible.")
    prefixes = ["PublishBatchRequestEntries.member.%d." % (i + 1) for i in range(n)]
    ids = [form.get(p + "Id") for p in prefixes]
    for i in ids:
        if i is None or not BATCH_ID_RE.match(i):
            raise ApiError(400, "InvalidBatchEntryId", "The Id of a batch entry in a batch "
                           "request doesn't abide by the specification.")
    if len(set(ids)) != len(ids):
        raise ApiError(400, "BatchEntryIdsNotDistinct",
                       "Two or more batch entries in the request have the same Id.")
    total = 0
    for p in prefixes:
        total += len((form.get(p + "Message") or "").encode("utf-8"))
        k = 1
        while ("%sMessageAttributes.entry.%d.Name" % (p, k)) in form:
            b = "%sMessageAttributes.entry.%d." % (p, k)
            for f in ("Name", "Value.DataType", "Value.StringValue"):
                total += len((form.get(b + f) or "").encode("utf-8"))
            total += len(form.get(b + "Value.BinaryValue") or "") * 3 // 4
            k += 1
    if total > SNS_MAX_BYTES:
        raise ApiError(400, "BatchRequestTooLong", "The length of all the batch messages put "
                       "together is more than the limit.")
    sns_topic_checks(ctx, arn)
    topic = STATE.sns_topic(arn)
    if topic is None:
        raise ApiError(404, "NotFound", "Topic does not exist")
    checked = []
    for idx, p in enumerate(prefixes):
        try:
            checked.append((idx, sns_check_message(form, p, arn, topic), None))
        except ApiError as e:
            checked.append((idx, None, e))
    rule = apply_faults(ctx, batch=True)
    failing = rule.failing(n) if rule else set()
    ok_xml, failed_xml, stored = [], [], []
    for idx, rec, err in checked:
        eid = ids[idx]
        if err is not None:
            failed_xml.append((eid, err.code, err.message, True))
            continue
        if idx in failing:
            sender = rule.spec.get("senderFault", False)
            failed_xml.append((eid, rule.spec.get("code", "InternalError"),
                               rule.spec.get("message", "Internal Error"), bool(sender)))
            continue
        mid = str(uuid.uuid4())
        seq = STATE.next_sns_sequence() if arn.endswith(".fifo") else None
        ok_xml.append((eid, mid, seq))
        e = ctx.base_entry()
        e.update(rec)
        e.update({"messageId": mid, "sequenceNumber": seq, "batchEntryId": eid, "index": idx})
        stored.append(e)
    STATE.store("sns", arn, stored)
    inner = "    <Successful>\n"
    for eid, mid, seq in ok_xml:
        inner += ("      <member>\n        <Id>%s</Id>\n        <MessageId>%s</MessageId>\n"
                  % (escape(eid), mid))
        if seq:
            inner += "        <SequenceNumber>%s</SequenceNumber>\n" % seq
        inner += "      </member>\n"
    inner += "    </Successful>\n    <Failed>\n"
    for eid, code, msg, sender in failed_xml:
        inner += ("      <member>\n        <Id>%s</Id>\n        <Code>%s</Code>\n"
                  "        <Message>%s</Message>\n        <SenderFault>%s</SenderFault>\n"
                  "      </member>\n" % (escape(eid), escape(code), escape(msg or ""),
                                         "true" if sender else "false"))
    inner += "    </Failed>\n"
    return Response(200, sns_xml("PublishBatch", inner, rid), "text/xml", headers)


# --------------------------------------------------------------------------
# Lambda


def lambda_error(status, code, message, member="Message"):
    return ApiError(status, code, message, extra={"Type": "User", member: message})


def lambda_invoke(ctx):
    if ctx.method == "GET" and re.match(r"^/2015-03-31/functions/[^/]+$", ctx.path):
        return lambda_get_function(ctx)
    m = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", ctx.path)
    ctx.operation = "Invoke"
    if not m or ctx.method != "POST":
        ctx.operation = None
        raise ApiError(404, "UnknownOperationException",
                       "Only POST /2015-03-31/functions/{FunctionName}/invocations is served")
    ref = unquote(m.group(1))
    if len(ref) > 170 or not re.fullmatch(LAMBDA_NAME_PATTERN, ref):
        raise ApiError(400, "ValidationException", "1 validation error detected: Value '%s' at "
                       "'functionName' failed to satisfy constraint: Member must satisfy regular "
                       "expression pattern: %s" % (ref, LAMBDA_NAME_PATTERN),
                       extra={"message": "1 validation error detected: Value '%s' at "
                              "'functionName' failed to satisfy constraint: Member must satisfy "
                              "regular expression pattern: %s" % (ref, LAMBDA_NAME_PATTERN)})
    region, account, qual = ctx.region, ctx.account, None
    fm = LAMBDA_FULL_ARN_RE.match(ref)
    pm = LAMBDA_PARTIAL_ARN_RE.match(ref)
    nm = LAMBDA_NAME_RE.match(ref)
    if fm:
        arn_region, account, name, qual = fm.group(2), fm.group(3), fm.group(4), fm.group(5)
        if arn_region != ctx.region:
            raise lambda_error(404, "ResourceNotFoundException",
                               "Functions from '%s' are not reachable in this region ('%s')"
                               % (arn_region, ctx.region))
    elif pm:
        account, name, qual = pm.group(1), pm.group(2), pm.group(3)
    elif nm:
        name, qual = nm.group(1), nm.group(2)
    else:
        raise lambda_error(400, "InvalidParameterValueException",
                           "The function name form '%s' is not supported" % ref)
    if len(name) > 64:
        raise lambda_error(400, "InvalidParameterValueException",
                           "Function name '%s' is longer than 64 characters" % name)
    q_param = ctx.qparam("Qualifier")
    if q_param is not None:
        if not re.fullmatch(r"[a-zA-Z0-9$_-]{1,128}", q_param):
            raise ApiError(400, "ValidationException", "1 validation error detected: Value '%s' "
                           "at 'qualifier' failed to satisfy constraint: Member must satisfy "
                           "regular expression pattern: (|[a-zA-Z0-9$_-]+)" % q_param,
                           extra={"message": "Value '%s' at 'qualifier' failed to satisfy "
                                  "constraint" % q_param})
        if qual is not None and qual != q_param:
            raise lambda_error(400, "InvalidParameterValueException",
                               "The derived qualifier from the function name does not match the "
                               "specified qualifier.")
        qual = q_param
    function_arn = "arn:aws:lambda:%s:%s:function:%s" % (region, account, name)
    ctx.target = name
    itype = ctx.header("X-Amz-Invocation-Type") or "RequestResponse"
    if itype not in ("Event", "RequestResponse", "DryRun"):
        raise ApiError(400, "ValidationException", "1 validation error detected: Value '%s' at "
                       "'invocationType' failed to satisfy constraint: Member must satisfy enum "
                       "value set: [Event, RequestResponse, DryRun]" % itype,
                       extra={"message": "Value '%s' at 'invocationType' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [Event, "
                              "RequestResponse, DryRun]" % itype})
    size = len(ctx.body)
    if itype == "Event" and size > LAMBDA_EVENT_MAX:
        raise lambda_error(413, "RequestEntityTooLargeException",
                           "%d byte payload is too large for the Event invocation type (limit "
                           "%d bytes)" % (size, LAMBDA_EVENT_MAX), member="message")
    if size > LAMBDA_SYNC_MAX:
        raise lambda_error(413, "RequestEntityTooLargeException",
                           "Request must be smaller than %d bytes for the InvokeFunction "
                           "operation" % LAMBDA_SYNC_MAX, member="message")
    if not STATE.lambda_exists(region, account, name, qual):
        raise lambda_error(404, "ResourceNotFoundException", "Function not found: %s%s"
                           % (function_arn, (":" + qual) if qual else ""))
    payload = None
    if ctx.body.strip():
        try:
            payload = json.loads(ctx.body)
        except ValueError as e:
            raise lambda_error(400, "InvalidRequestContentException",
                               "Could not parse request body into json: %s" % e, member="message")
    client_context = ctx.header("X-Amz-Client-Context")
    cc_decoded = None
    if client_context:
        try:
            cc_decoded = json.loads(base64.b64decode(client_context, validate=True))
        except (binascii.Error, ValueError):
            raise lambda_error(400, "InvalidRequestContentException",
                               "Client context must be a valid Base64-encoded JSON object.",
                               member="message")
    apply_faults(ctx)
    headers = {"x-amzn-RequestId": ctx.request_id}
    if itype == "DryRun":
        return Response(204, b"", "application/json", headers)
    e = ctx.base_entry()
    e.update({"function": name, "functionArn": function_arn, "functionRef": ref,
              "qualifier": qual, "invocationType": itype, "payload": payload,
              "payloadText": text_or_none(ctx.body), "clientContext": cc_decoded,
              "logType": ctx.header("X-Amz-Log-Type")})
    STATE.store("lambda", name, [e])
    if itype == "Event":
        return Response(202, b"", "application/json", headers)
    headers["X-Amz-Executed-Version"] = qual if (qual and qual.isdigit()) else "$LATEST"
    if ctx.header("X-Amz-Log-Type") == "Tail":
        headers["X-Amz-Log-Result"] = b64(("START RequestId: %s\nEND RequestId: %s\n"
                                           % (ctx.request_id, ctx.request_id)).encode())
    return Response(200, ctx.body or b"null", "application/json", headers)


# --------------------------------------------------------------------------
# IoT Data Plane


def iot_publish(ctx):
    ctx.operation = "Publish"
    if not ctx.path.startswith("/topics/") or ctx.method != "POST":
        ctx.operation = None
        raise ApiError(405, "MethodNotAllowedException",
                       "The specified combination of HTTP verb and URI is not supported.")
    topic = unquote(ctx.path[len("/topics/"):])
    ctx.target = topic
    if not topic:
        raise ApiError(400, "InvalidRequestException", "Topic is required")
    if len(topic.encode("utf-8")) > 256:
        raise ApiError(400, "InvalidRequestException", "Topic is longer than 256 bytes")
    if "#" in topic or "+" in topic:
        raise ApiError(400, "InvalidRequestException",
                       "Topic must not contain the wildcards '#' or '+'")
    if topic.count("/") > 7 and not topic.startswith("$aws/"):
        raise ApiError(400, "InvalidRequestException",
                       "Topic has more than 7 forward slashes")
    qos_raw = ctx.qparam("qos")
    qos = 0
    if qos_raw is not None:
        if qos_raw not in ("0", "1"):
            raise ApiError(400, "InvalidRequestException",
                           "qos must be 0 or 1, got '%s'" % qos_raw)
        qos = int(qos_raw)
    retain_raw = ctx.qparam("retain")
    retain = False
    if retain_raw is not None:
        if retain_raw not in ("true", "false"):
            raise ApiError(400, "InvalidRequestException",
                           "retain must be true or false, got '%s'" % retain_raw)
        retain = retain_raw == "true"
    expiry = ctx.qparam("messageExpiry")
    if expiry is not None and not expiry.isdigit():
        raise ApiError(400, "InvalidRequestException", "messageExpiry must be a number")
    if len(ctx.body) > IOT_MAX_PAYLOAD:
        raise ApiError(413, "RequestEntityTooLargeException",
                       "Payload exceeds the maximum size allowed (%d bytes > %d)"
                       % (len(ctx.body), IOT_MAX_PAYLOAD))
    user_props = ctx.header("x-amz-mqtt5-user-properties")
    user_props_decoded = None
    if user_props:
        try:
            user_props_decoded = json.loads(base64.b64decode(user_props, validate=True))
        except (binascii.Error, ValueError):
            raise ApiError(400, "InvalidRequestException",
                           "x-amz-mqtt5-user-properties must be base64-encoded JSON")
    apply_faults(ctx)
    e = ctx.base_entry()
    e.update({"topic": topic, "qos": qos, "retain": retain, "payloadBase64": b64(ctx.body),
              "payload": text_or_none(ctx.body), "contentType": ctx.qparam("contentType"),
              "responseTopic": ctx.qparam("responseTopic"), "messageExpiry": expiry,
              "userProperties": user_props_decoded,
              "payloadFormatIndicator": ctx.header("x-amz-mqtt5-payload-format-indicator"),
              "correlationData": ctx.header("x-amz-mqtt5-correlation-data")})
    STATE.store("iot", topic, [e])
    return Response(200, {"message": "OK", "traceId": str(uuid.uuid4())}, "application/json",
                    {"x-amzn-RequestId": ctx.request_id})


# --------------------------------------------------------------------------
# OpenSearch / Elasticsearch _bulk


INVALID_INDEX_CHARS = set('\\/*?"<>| ,#:')


def index_name_problem(name):
    if name != name.lower():
        return "must be lowercase"
    if name.startswith(("_", "-", "+")):
        return "must not start with '_', '-', or '+'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if any(c in INVALID_INDEX_CHARS for c in name):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    if len(name.encode("utf-8")) > 255:
        return "index name is too long"
    return None


def auto_id():
    return base64.urlsafe_b64encode(secrets.token_bytes(15)).decode("ascii")


def source_problem(line):
    """None if LINE is a JSON object, else the caused_by of the item error."""
    text = line.strip()
    if not text:
        return {"type": "not_x_content_exception",
                "reason": "Compressor detection can only be called on some xcontent bytes or "
                          "compressed xcontent bytes"}
    if text[:1] not in (b"{", b"["):
        return {"type": "not_x_content_exception",
                "reason": "Compressor detection can only be called on some xcontent bytes or "
                          "compressed xcontent bytes"}
    try:
        doc = json.loads(text)
    except ValueError as e:
        return {"type": "json_parse_exception", "reason": str(e)}
    if not isinstance(doc, dict):
        return {"type": "json_parse_exception", "reason": "the document is not a JSON object"}
    return None


def opensearch_bulk(ctx):
    parts = [p for p in ctx.path.split("/") if p]
    ctx.operation = "Bulk"
    if ctx.method == "GET" and not parts:
        ctx.operation = "Info"
        apply_faults(ctx)
        flavor = STATE.args.search_flavor
        info = {"name": "fanout-test", "cluster_name": "123456789012:fanout",
                "cluster_uuid": "fanout-test-cluster",
                "version": ({"distribution": "opensearch", "number": "2.13.0"}
                            if flavor == "opensearch" else {"number": "7.10.2"}),
                "tagline": ("The OpenSearch Project: https://opensearch.org/"
                            if flavor == "opensearch" else "You Know, for Search")}
        return Response(200, info, "application/json; charset=UTF-8",
                        {"x-amzn-RequestId": ctx.request_id})
    if not parts or parts[-1] != "_bulk" or len(parts) > 3:
        ctx.operation = None
        raise es_error(400, "illegal_argument_exception",
                       "no handler found for uri [%s] and method [%s]" % (ctx.path, ctx.method))
    if ctx.method not in ("POST", "PUT"):
        raise es_error(405, "illegal_argument_exception",
                       "Incorrect HTTP method for uri [%s] and method [%s], allowed: [POST, PUT]"
                       % (ctx.path, ctx.method))
    default_index = unquote(parts[0]) if len(parts) >= 2 else None
    ctx.target = default_index
    mtype = ctx.media_type()
    if not mtype:
        raise ApiError(406, "content_type", "Content-Type header is missing",
                       body={"error": "Content-Type header is missing", "status": 406})
    if mtype not in ("application/x-ndjson", "application/json"):
        raise ApiError(406, "content_type", "unsupported",
                       body={"error": "Content-Type header [%s] is not supported"
                             % ctx.header("Content-Type"), "status": 406})
    body = ctx.body
    if not body.strip():
        raise es_error(400, "action_request_validation_exception",
                       "Validation Failed: 1: no requests added;")
    if not body.endswith(b"\n"):
        raise es_error(400, "illegal_argument_exception",
                       "The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")[:-1]
    ops = []
    validation = []
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        if not line.strip():
            continue
        try:
            action_obj = json.loads(line)
        except ValueError as e:
            raise es_error(400, "json_parse_exception" if line.strip()[:1] == b"{"
                           else "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected START_OBJECT but "
                           "found [%s]" % (lineno, str(e)))
        if not isinstance(action_obj, dict) or len(action_obj) != 1:
            raise es_error(400, "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected START_OBJECT or "
                           "END_OBJECT but found [VALUE_STRING]" % lineno)
        action, meta = next(iter(action_obj.items()))
        if action not in ("index", "create", "update", "delete"):
            raise es_error(400, "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected field [create], "
                           "[delete], [index] or [update] but found [%s]" % (lineno, action))
        if not isinstance(meta, dict):
            raise es_error(400, "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected START_OBJECT but "
                           "found [%s]" % (lineno, type(meta).__name__))
        index = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        if doc_id is not None:
            doc_id = str(doc_id)
        source = None
        if action != "delete":
            if i >= len(lines):
                raise es_error(400, "illegal_argument_exception",
                               "The bulk request must be terminated by a newline [\\n]")
            source = lines[i]
            i += 1
        if index is None:
            validation.append("index is missing")
        if doc_id is not None and len(doc_id.encode("utf-8")) > OPENSEARCH_MAX_ID:
            validation.append("id [%s] is too long, must be no longer than %d bytes but was: %d"
                              % (doc_id, OPENSEARCH_MAX_ID, len(doc_id.encode("utf-8"))))
        if action in ("update", "delete") and doc_id is None:
            validation.append("id is missing")
        ops.append((action, index, doc_id, source, meta))
    if not ops:
        raise es_error(400, "action_request_validation_exception",
                       "Validation Failed: 1: no requests added;")
    if validation:
        raise es_error(400, "action_request_validation_exception",
                       "Validation Failed: " + "".join("%d: %s;" % (n + 1, v)
                                                       for n, v in enumerate(validation)))
    if default_index is None:
        # /_bulk: the target fault rules match is the index when all items share one
        indexes = {op[1] for op in ops}
        if len(indexes) == 1:
            ctx.target = indexes.pop()
    t0 = time.monotonic()
    rule = apply_faults(ctx, batch=True)
    failing = rule.failing(len(ops)) if rule else set()
    rejected = (rule.spec.get("type") if rule else None) or STATE.args.rejected_type
    items, stored = [], []
    errors = False
    with STATE.lock:
        for n, (action, index, doc_id, source, meta) in enumerate(ops):
            item = {"_index": index}
            problem = index_name_problem(index)
            if n in failing:
                status = int(rule.spec.get("status", 429))
                item.update({"_id": doc_id, "status": status,
                             "error": {"type": rejected,
                                       "reason": rule.spec.get(
                                           "message", "rejected execution of primary operation "
                                           "[shard_detail=[%s][0][P], shard_coordinating_and_"
                                           "primary_bytes=0, shard_operation_bytes=0, "
                                           "shard_max_coordinating_and_primary_bytes=0]" % index)}})
                errors = True
                items.append({action: item})
                continue
            if problem:
                item.update({"_id": doc_id, "status": 400,
                             "error": {"type": "invalid_index_name_exception",
                                       "reason": "Invalid index name [%s], %s" % (index, problem),
                                       "index": index, "index_uuid": "_na_"}})
                errors = True
                items.append({action: item})
                continue
            docs = STATE.docs.setdefault(index, {})
            if action in ("index", "create"):
                if doc_id is None:
                    doc_id = auto_id()
                item["_id"] = doc_id
                bad = source_problem(source)
                if bad:
                    item.update({"status": 400, "error": {
                        "type": "mapper_parsing_exception", "reason": "failed to parse",
                        "caused_by": bad}})
                    errors = True
                    items.append({action: item})
                    continue
                current = docs.get(doc_id)
                if action == "create" and current is not None:
                    item.update({"status": 409, "error": {
                        "type": "version_conflict_engine_exception",
                        "reason": "[%s]: version conflict, document already exists (current "
                                  "version [%d])" % (doc_id, current["version"]),
                        "index": index, "shard": "0", "index_uuid": "fanout"}})
                    errors = True
                    items.append({action: item})
                    continue
                version = (current["version"] + 1) if current else 1
                doc = json.loads(source)
                docs[doc_id] = {"source": doc, "version": version}
                result, status = ("updated", 200) if current else ("created", 201)
            elif action == "update":
                item["_id"] = doc_id
                bad = source_problem(source)
                upd = None if bad else json.loads(source)
                if bad or not ("doc" in upd or "script" in upd):
                    item.update({"status": 400, "error": {
                        "type": "action_request_validation_exception" if not bad
                        else "x_content_parse_exception",
                        "reason": "Validation Failed: 1: script or doc is missing;" if not bad
                        else "failed to parse update request",
                        **({"caused_by": bad} if bad else {})}})
                    errors = True
                    items.append({action: item})
                    continue
                current = docs.get(doc_id)
                if current is None and not (upd.get("doc_as_upsert") or "upsert" in upd):
                    item.update({"status": 404, "error": {
                        "type": "document_missing_exception",
                        "reason": "[%s]: document missing" % doc_id,
                        "index": index, "shard": "0", "index_uuid": "fanout"}})
                    errors = True
                    items.append({action: item})
                    continue
                if current is None:
                    doc = upd.get("upsert") if "upsert" in upd else upd.get("doc", {})
                    version, result, status = 1, "created", 201
                else:
                    doc = dict(current["source"])
                    if isinstance(upd.get("doc"), dict):
                        doc.update(upd["doc"])
                    version, result, status = current["version"] + 1, "updated", 200
                docs[doc_id] = {"source": doc, "version": version}
            else:  # delete
                item["_id"] = doc_id
                current = docs.pop(doc_id, None)
                if current is None:
                    version, result, status, doc = 1, "not_found", 404, None
                else:
                    version, result, status, doc = current["version"] + 1, "deleted", 200, None
            item.update({"_version": version, "result": result,
                         "_shards": {"total": 2, "successful": 1, "failed": 0},
                         "_seq_no": version - 1, "_primary_term": 1, "status": status})
            items.append({action: item})
            e = ctx.base_entry()
            e.update({"target": index, "index": index, "action": action, "id": item["_id"],
                      "source": doc if action != "delete" else None, "version": version,
                      "result": result, "position": n, "routing": meta.get("routing")})
            stored.append(e)
    by_index = {}
    for e in stored:
        by_index.setdefault(e["index"], []).append(e)
    for index, entries in by_index.items():
        STATE.store("opensearch", index, entries)
    took = int((time.monotonic() - t0) * 1000)
    return Response(200, {"took": took, "errors": errors, "items": items},
                    "application/json; charset=UTF-8", {"x-amzn-RequestId": ctx.request_id})


# --------------------------------------------------------------------------
# control-plane lookups (fanout register resolving short names, as the
# original aws-lambda-fanout CLI did with the aws command)

ELASTICACHE_NS = "http://elasticache.amazonaws.com/doc/2015-02-02/"


def firehose_describe(ctx, req):
    name = req.get("DeliveryStreamName")
    ctx.target = name
    if not isinstance(name, str) or not FIREHOSE_STREAM_RE.match(name):
        raise ApiError(400, "ValidationException", "1 validation error detected: Value '%s' at "
                       "'deliveryStreamName' failed to satisfy constraint" % (name,))
    apply_faults(ctx)
    if not STATE.firehose_exists(name):
        raise ApiError(400, "ResourceNotFoundException", "Firehose %s under account %s not "
                       "found." % (name, ctx.account))
    arn = "arn:aws:firehose:%s:%s:deliverystream/%s" % (ctx.region, ctx.account, name)
    return Response(200, {"DeliveryStreamDescription": {
        "DeliveryStreamName": name, "DeliveryStreamARN": arn,
        "DeliveryStreamStatus": "ACTIVE", "DeliveryStreamType": "DirectPut",
        "VersionId": "1", "Destinations": [], "HasMoreDestinations": False}},
        "application/x-amz-json-1.1")


SNS_LIST_PAGE = 100


def sns_list_topics(ctx, form):
    apply_faults(ctx)
    with STATE.lock:
        arns = sorted(a for a in STATE.resources["sns"] if a != "*")
    token = form.get("NextToken")
    start = 0
    if token:
        if not token.isdigit() or int(token) > len(arns):
            raise ApiError(400, "InvalidParameter", "Invalid parameter: NextToken")
        start = int(token)
    page = arns[start:start + SNS_LIST_PAGE]
    inner = "    <Topics>\n%s    </Topics>\n" % "".join(
        "      <member>\n        <TopicArn>%s</TopicArn>\n      </member>\n" % escape(a)
        for a in page)
    if start + SNS_LIST_PAGE < len(arns):
        inner += "    <NextToken>%d</NextToken>\n" % (start + SNS_LIST_PAGE)
    return Response(200, sns_xml("ListTopics", inner, ctx.request_id), "text/xml",
                    {"x-amzn-RequestId": ctx.request_id})


def lambda_get_function(ctx):
    ref = unquote(ctx.path.rsplit("/", 1)[1])
    ctx.operation = "GetFunction"
    ctx.target = ref
    region, account, name, qual = ctx.region, ctx.account, ref, ctx.qparam("Qualifier")
    fm = LAMBDA_FULL_ARN_RE.match(ref)
    if fm:
        region, account, name = fm.group(2), fm.group(3), fm.group(4)
        qual = fm.group(5) or qual
    elif LAMBDA_NAME_RE.match(ref):
        nm = LAMBDA_NAME_RE.match(ref)
        name, qual = nm.group(1), nm.group(2) or qual
    else:
        raise lambda_error(400, "ValidationException", "1 validation error detected: Value "
                           "'%s' at 'functionName' failed to satisfy constraint" % ref)
    arn = "arn:aws:lambda:%s:%s:function:%s" % (region, account, name)
    apply_faults(ctx)
    if region != ctx.region or not STATE.lambda_exists(region, account, name, qual):
        raise lambda_error(404, "ResourceNotFoundException", "Function not found: %s" % arn)
    return Response(200, {"Configuration": {"FunctionName": name, "FunctionArn": arn,
                                            "Runtime": "provided.al2023", "State": "Active"},
                          "Code": {"RepositoryType": "S3"}})


def iot_describe_endpoint(ctx):
    ctx.operation = "DescribeEndpoint"
    if ctx.method != "GET":
        raise ApiError(405, "MethodNotAllowedException", "DescribeEndpoint is GET /endpoint")
    etype = ctx.qparam("endpointType")
    ctx.target = etype
    apply_faults(ctx)
    with STATE.lock:
        host = STATE.resources["iotEndpoint"] or ("a1b2c3d4e5f6g7-ats.iot.%s.amazonaws.com"
                                                  % ctx.region)
    if etype in (None, "iot:Data"):
        host = host.replace("-ats.", ".", 1)
    elif etype != "iot:Data-ATS":
        raise ApiError(400, "InvalidRequestException",
                       "Endpoint type %s is not served here" % etype)
    return Response(200, {"endpointAddress": host})


def es_describe_domain(ctx):
    m = re.match(r"^/(2015-01-01/es|2021-01-01/opensearch)/domain/([^/]+)$", ctx.path)
    ctx.operation = ("DescribeElasticsearchDomain" if m and m.group(1).startswith("2015")
                     else "DescribeDomain")
    if not m or ctx.method != "GET":
        raise ApiError(400, "ValidationException", "GET /2015-01-01/es/domain/{DomainName}")
    name = unquote(m.group(2))
    ctx.target = name
    apply_faults(ctx)
    with STATE.lock:
        endpoint = STATE.resources["es"].get(name)
    if endpoint is None:
        raise ApiError(409, "ResourceNotFoundException", "Domain not found: %s" % name)
    status = {"DomainName": name, "DomainId": "%s/%s" % (ctx.account, name),
              "ARN": "arn:aws:es:%s:%s:domain/%s" % (ctx.region, ctx.account, name),
              "Created": True, "Deleted": False, "Processing": False}
    if isinstance(endpoint, dict):  # {"vpc": host}: a domain in a VPC
        status["Endpoints"] = endpoint
    else:
        status["Endpoint"] = endpoint
    key = "DomainStatus"
    return Response(200, {key: status})


def elasticache(ctx):
    if ctx.method != "POST" or ctx.path != "/":
        raise ApiError(400, "InvalidAction", "Query API calls are POST /")
    form = dict(ctx.query)
    form.update(parse_qsl(ctx.body.decode("utf-8", "replace"), keep_blank_values=True))
    action = form.get("Action")
    ctx.operation = action
    if form.get("Version") != "2015-02-02" or action not in (
            "DescribeCacheClusters", "DescribeReplicationGroups"):
        raise ApiError(400, "InvalidAction", "Could not find operation %s for version %s"
                       % (action, form.get("Version")))
    rid = ctx.request_id
    if action == "DescribeCacheClusters":
        cid = form.get("CacheClusterId")
        ctx.target = cid
        apply_faults(ctx)
        with STATE.lock:
            ep = STATE.resources["memcached"].get(cid)
        if ep is None:
            raise ApiError(404, "CacheClusterNotFound", "CacheCluster not found: %s" % cid)
        host, _, port = ep.rpartition(":")
        inner = ("    <CacheClusters>\n      <CacheCluster>\n"
                 "        <CacheClusterId>%s</CacheClusterId>\n"
                 "        <Engine>memcached</Engine>\n"
                 "        <CacheClusterStatus>available</CacheClusterStatus>\n"
                 "        <ConfigurationEndpoint>\n          <Address>%s</Address>\n"
                 "          <Port>%s</Port>\n        </ConfigurationEndpoint>\n"
                 "      </CacheCluster>\n    </CacheClusters>\n"
                 % (escape(cid), escape(host), escape(port)))
    else:
        gid = form.get("ReplicationGroupId")
        ctx.target = gid
        apply_faults(ctx)
        with STATE.lock:
            ep = STATE.resources["redis"].get(gid)
        if ep is None:
            raise ApiError(404, "ReplicationGroupNotFoundFault",
                           "ReplicationGroup %s not found." % gid)
        host, _, port = ep.rpartition(":")
        inner = ("    <ReplicationGroups>\n      <ReplicationGroup>\n"
                 "        <ReplicationGroupId>%s</ReplicationGroupId>\n"
                 "        <Status>available</Status>\n        <NodeGroups>\n"
                 "          <NodeGroup>\n            <NodeGroupId>0001</NodeGroupId>\n"
                 "            <PrimaryEndpoint>\n              <Address>%s</Address>\n"
                 "              <Port>%s</Port>\n            </PrimaryEndpoint>\n"
                 "          </NodeGroup>\n        </NodeGroups>\n"
                 "      </ReplicationGroup>\n    </ReplicationGroups>\n"
                 % (escape(gid), escape(host), escape(port)))
    xml = ('<%sResponse xmlns="%s">\n  <%sResult>\n%s  </%sResult>\n'
           '  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
           '</%sResponse>\n' % (action, ELASTICACHE_NS, action, inner, action, rid, action))
    return Response(200, xml, "text/xml", {"x-amzn-RequestId": rid})


def guess_operation(ctx, service):
    """The operation name for logs and stats before the request is parsed."""
    if service == "firehose":
        return (ctx.header("X-Amz-Target") or "").partition(".")[2] or None
    if service == "sns":
        m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", ctx.body or b"")
        return m.group(1).decode() if m else None
    if service == "elasticache":
        m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", ctx.body or b"")
        return m.group(1).decode() if m else None
    if service == "lambda" and ctx.method == "GET":
        return "GetFunction"
    return {"lambda": "Invoke", "iot": "Publish", "opensearch": "Bulk",
            "iot_control": "DescribeEndpoint"}.get(service)


HANDLERS = {"firehose": firehose, "sns": sns, "lambda": lambda_invoke, "iot": iot_publish,
            "opensearch": opensearch_bulk, "iot_control": iot_describe_endpoint,
            "es_control": es_describe_domain, "elasticache": elasticache}


def identify_service(ctx):
    target = ctx.header("X-Amz-Target") or ""
    if target.startswith("Firehose_"):
        return "firehose"
    if ctx.path.startswith("/2015-03-31/functions/"):
        return "lambda"
    if ctx.path.startswith("/topics/"):
        return "iot"
    if ctx.path == "/endpoint":
        return "iot_control"
    if ctx.path.startswith(("/2015-01-01/es/domain/", "/2021-01-01/opensearch/domain/")):
        return "es_control"
    if ctx.path == "/_bulk" or ctx.path.endswith("/_bulk"):
        return "opensearch"
    parts = parse_authorization(ctx.header("Authorization"))
    if parts and "Credential" in parts:
        scope = parts["Credential"].split("/")
        if len(scope) == 5 and scope[3] in SERVICE_BY_SIGNING_NAME:
            return SERVICE_BY_SIGNING_NAME[scope[3]]
    if ctx.media_type() == "application/x-www-form-urlencoded":
        return "sns"
    return None


# --------------------------------------------------------------------------
# HTTP plumbing


STATE = None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fanout-test-aws"

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if STATE.args.verbose:
            sys.stderr.write("aws_service: " + (fmt % args) + "\n")

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _write(self, resp):
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        cut = getattr(resp, "cut", None)
        if cut is not None:
            # announce the whole body, send part of it, hang up
            self.wfile.write(resp.body[:cut])
            self.wfile.flush()
            self._reset("close")
            return
        if self.command != "HEAD" and resp.body:
            self.wfile.write(resp.body)

    def _reset(self, mode):
        self.close_connection = True
        try:
            if mode == "rst":
                # linger 0: the descriptor's close (when rfile and wfile are
                # closed in finish()) sends RST; no FIN from shutdown first.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def _dispatch(self):
        t0 = time.monotonic()
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        ctx = Ctx(self, body)
        if ctx.path.startswith("/__"):
            try:
                resp = control(ctx)
            except (ValueError, KeyError, TypeError) as e:
                resp = Response(400, {"message": str(e)})
            self._write(resp)
            return
        reset = None
        try:
            resp = self._serve(ctx)
        except ResetConnection as r:
            reset, resp = r.mode, None
        except Exception as e:  # a bug here must still answer
            import traceback
            traceback.print_exc()
            resp = Response(500, {"message": "aws_service internal error: %r" % (e,)})
        status = resp.status if resp is not None else 0
        # counted and logged before the answer leaves, so a client that reads
        # /__stats or the log right after its answer sees its request
        # (latency: until the answer was ready)
        STATE.count_request(ctx.service, ctx.operation, status)
        STATE.log({"service": ctx.service, "operation": ctx.operation, "target": ctx.target,
                   "status": status, "latency_ms": round((time.monotonic() - t0) * 1000, 3),
                   "accessKeyId": ctx.akid, "region": ctx.region, "fault": ctx.fault,
                   "method": ctx.method, "path": ctx.path, "requestId": ctx.request_id,
                   "time": time.time()})
        if reset:
            self._reset(reset)
        else:
            try:
                self._write(resp)
            except OSError:
                self.close_connection = True

    def _serve(self, ctx):
        service = identify_service(ctx)
        ctx.service = service
        ctx.operation = guess_operation(ctx, service)
        if service is None:
            return Response(404, {"message": "no emulated service matches %s %s"
                                  % (ctx.method, ctx.path)})
        try:
            akid, region, entry = verify_signature(STATE.creds, ctx.method, ctx.raw_target,
                                                   ctx.headers, ctx.body, SIGNING_NAMES[service])
        except AuthFailure as f:
            STATE.count_auth_failure(f.kind)
            return render_error(service, ctx, auth_error(service, f))
        ctx.akid, ctx.region = akid, region
        ctx.account = entry["account"] or STATE.args.account_id
        try:
            resp = HANDLERS[service](ctx)
            if ctx.mangle is not None and resp is not None and 200 <= resp.status < 300:
                resp = mangle_response(ctx.mangle.spec, resp)
            return resp
        except ApiError as e:
            return render_error(service, ctx, e)
        except ResponseReady as r:
            r.response.headers.setdefault("x-amzn-RequestId", ctx.request_id)
            return r.response


def control(ctx):
    path, method = ctx.path, ctx.method
    body = ctx.body

    def load():
        return json.loads(body or b"null")

    if path == "/__health":
        return Response(200, {"ok": True, "pid": os.getpid()})
    if path == "/__received" and method == "GET":
        service = ctx.qparam("service")
        if service:
            service = SERVICE_ALIASES.get(service, service)
            if service not in SIGNING_NAMES:
                raise ValueError("unknown service %r" % service)
        target = ctx.qparam("target")
        minimum = int(ctx.qparam("min") or 0)
        timeout = float(ctx.qparam("timeout_ms") or 0) / 1000.0
        return Response(200, STATE.query_received(service, target, minimum, timeout))
    if path == "/__reset" and method == "POST":
        STATE.reset()
        return Response(200, {"ok": True})
    if path == "/__faults":
        if method == "POST":
            return Response(200, {"ids": STATE.add_rules(load())})
        if method == "DELETE":
            with STATE.lock:
                STATE.rules = []
            return Response(200, {"ok": True})
        with STATE.lock:
            return Response(200, [r.describe() for r in STATE.rules])
    if path == "/__faults/clear" and method == "POST":
        with STATE.lock:
            STATE.rules = []
        return Response(200, {"ok": True})
    if path == "/__stats":
        return Response(200, STATE.snapshot_stats())
    if path == "/__resources":
        if method == "POST":
            STATE.add_resources(load())
        return Response(200, STATE.describe_resources())
    if path == "/__credentials" and method == "POST":
        return Response(200, {"added": STATE.creds.add(load())})
    return Response(404, {"message": "unknown control path %s %s" % (method, path)})


def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return False


def watchdog(args):
    start = time.monotonic()
    while True:
        time.sleep(0.2)
        if args.parent_pid and process_gone(args.parent_pid):
            os._exit(0)
        if args.max_lifetime and time.monotonic() - start > args.max_lifetime:
            sys.stderr.write("aws_service: --max-lifetime reached\n")
            os._exit(3)


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--credentials", help="JSON list of accepted signers")
    ap.add_argument("--resources", help="JSON object of existing streams, topics, functions")
    ap.add_argument("--account-id", default="123456789012",
                    help="account of signers whose entry names none")
    ap.add_argument("--parent-pid", type=int, default=0)
    ap.add_argument("--max-lifetime", type=float, default=0)
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--search-flavor", choices=("opensearch", "elasticsearch"),
                    default="opensearch")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.rejected_type = ("rejected_execution_exception" if args.search_flavor == "opensearch"
                          else "es_rejected_execution_exception")
    STATE = State(args)
    server = Server(("127.0.0.1", args.port), Handler)
    if args.parent_pid or args.max_lifetime:
        threading.Thread(target=watchdog, args=(args,), daemon=True).start()
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
