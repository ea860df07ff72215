"""The shared core of tests/servers/aws_service.py: the HTTP server, SigV4
verification with botocore, the credential and resource store, fault rules
(mangle included), the control API (/__received, /__faults, ...) and the
Service base class each module of this package derives from. What a
service module holds is described in aws/__init__.py."""

import base64
import binascii
import datetime
import hashlib
import hmac
import itertools
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import serve  # noqa: E402  (tests/servers/serve.py)

from . import model  # noqa: E402

FAULT_KINDS = ("throttle", "error500", "partial", "slow", "reset", "status", "mangle", "deny")
MANGLE_OPS = ("set", "delete", "dup", "swap", "replace", "truncate", "cut", "pad",
              "status", "body")
SKEW_SECONDS = 15 * 60
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)

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
    params = model.decoded_query(query)
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
        service = ALIASES.get(service, service)
        if service not in SERVICES and service not in ("*", "any"):
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
        self.resources = {}
        for svc in SERVICES.values():
            self.resources.update(svc.resources())
        if args.resources:
            with open(args.resources) as f:
                self.add_resources(json.load(f))
        self.seq = 0
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.reset()

    def reset(self):
        with self.lock:
            self.received = {}        # (service, target) -> [entries]
            self.rules = []
            self.data = {}            # what services keep until the next reset
            self.shared = {}          # what modules share ("iam_roles": {arn: time})
            self.stats = {"requests": 0, "by_service": {}, "auth_failures": 0,
                          "auth_failures_by_kind": {}, "faults_fired": 0,
                          "faults_by_kind": {k: 0 for k in FAULT_KINDS},
                          "faults_by_service": {}, "deliveries": 0, "model_errors": []}
            self.cond.notify_all()

    def add_resources(self, obj):
        if not isinstance(obj, dict):
            raise ValueError("resources: an object is expected")
        with self.lock:
            for svc in SERVICES.values():
                svc.add_resources(self.resources, obj)

    def describe_resources(self):
        out = {}
        with self.lock:
            for svc in SERVICES.values():
                out.update(svc.describe_resources(self.resources))
        return out

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

    def count_model_error(self, service, operation, errors):
        with self.lock:
            self.stats["model_errors"].append({"service": service, "operation": operation,
                                               "errors": list(errors)})

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
        self.state = STATE
        self.fault = None
        self.mangle = None  # the mangle rule this request took
        self.params = None  # the input the service's model validated (model.Checked)
        self.model_errors = None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def qparam(self, name):
        for k, v in self.query:
            if k == name:
                return v
        return None

    def json_header(self, name, error):
        """The header `name` decoded (base64, then JSON), None when absent;
        raises ApiError `error` when it is not base64-encoded JSON."""
        value = self.header(name)
        if not value:
            return None
        try:
            return json.loads(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise error

    def media_type(self):
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    def base_entry(self):
        return {"service": self.service, "operation": self.operation, "target": self.target,
                "accessKeyId": self.akid, "region": self.region, "accountId": self.account,
                "requestId": self.request_id, "time": time.time()}


# --------------------------------------------------------------------------
# services: the base class and the error shapes the protocols share


AUTH_CODES = {
    # kind: (JSON / REST-JSON code, Query code)
    "missing": ("MissingAuthenticationTokenException", "MissingAuthenticationToken"),
    "incomplete": ("IncompleteSignatureException", "IncompleteSignature"),
    "mismatch": ("InvalidSignatureException", "SignatureDoesNotMatch"),
    "expired_signature": ("InvalidSignatureException", "SignatureDoesNotMatch"),
    "unknown_key": ("UnrecognizedClientException", "InvalidClientTokenId"),
    "expired_token": ("ExpiredTokenException", "ExpiredToken"),
}


def es_error_body(status, etype, reason, caused_by=None):
    err = {"type": etype, "reason": reason}
    root = {"root_cause": [dict(err)]}
    root.update(err)
    if caused_by:
        root["caused_by"] = caused_by
    return {"error": root, "status": status}


def es_error(status, etype, reason, caused_by=None):
    return ApiError(status, etype, reason, body=es_error_body(status, etype, reason, caused_by))


def query_xml(namespace, action, inner, rid):
    """A Query API answer: <ActionResponse><ActionResult>inner</...>."""
    return ('<%sResponse xmlns="%s">\n  <%sResult>\n%s  </%sResult>\n'
            '  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
            '</%sResponse>\n' % (action, namespace, action, inner, action, rid, action))


def query_error(namespace, err, rid, headers, sender):
    """A Query API error answer (sender: Type Sender, else Receiver)."""
    xml = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n'
           '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
           '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
           % (namespace, "Sender" if sender else "Receiver", escape(err.code),
              escape(err.message or ""), rid))
    return Response(err.status, xml, "text/xml", headers)


def form_action(ctx):
    """The Action of a Query API form body, or None."""
    m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", ctx.body or b"")
    return m.group(1).decode() if m else None


def query_form(ctx):
    """The Query API parameters: the URL's, then the form body's."""
    form = dict(ctx.query)
    form.update(parse_qsl(ctx.body.decode("utf-8", "replace"), keep_blank_values=True))
    return form


class Service:
    """One emulated service; see aws/__init__.py. The defaults are the
    REST-JSON shapes (errors named by x-amzn-ErrorType) and, for fault
    rules, the OpenSearch ones."""

    name = None             # in /__received, fault rules, stats and the log
    signing_name = None     # the credential scope's service
    aliases = ()            # other names /__received and fault rules take
    by_scope = True         # claimed by its signing name when no match() does
    query_codes = False     # signature failures answered with the Query codes
    error_content_type = "application/json"  # of errors with a ready body
    # resource key -> set (a list of names, "*" = any) or dict (name ->
    # endpoint): what the default resources methods keep
    resource_kinds = {}

    model = None            # botocore model name(s) validating each request (model.py)
    iam_prefix = None       # the IAM action prefix (deny rules); default signing_name
    deny_status = 403       # of the answer to a deny rule

    def match(self, ctx):
        """True when the request is this service's by its path or headers."""
        return False

    def match_last(self, ctx):
        """Asked when neither match() nor the signing name told."""
        return False

    def operation(self, ctx):
        """The operation's name for logs and stats before handle() runs."""
        return None

    def handle(self, ctx):
        """The answer (a Response) to a signed request; raises ApiError."""
        raise NotImplementedError

    def error(self, ctx, err, headers):
        """The answer carrying ApiError `err` (headers: to send)."""
        headers["x-amzn-ErrorType"] = err.code
        body = dict(err.extra) if err.extra else {"message": err.message}
        return Response(err.status, body, "application/json", headers)

    def throttle(self, spec):
        """The ApiError a throttle fault rule answers with."""
        flavor = spec.get("type") or STATE.args.rejected_type
        reason = spec.get("message", "rejected execution of coordinating operation "
                          "[coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, "
                          "coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0]")
        return es_error(spec.get("status", 429), flavor, reason)

    def error500(self, spec):
        """The ApiError an error500 fault rule answers with."""
        return es_error(spec.get("status", 500), spec.get("type", "exception"),
                        spec.get("message", "injected internal error"))

    def access_resource(self, ctx):
        """The resource a deny rule's message names (ctx.params: the input)."""
        return "*"

    def deny_body(self, text):
        """The JSON body of an AccessDeniedException (JSON / REST-JSON)."""
        return {"Message": text}

    def check_scope(self, ctx):
        """Called once the signature is good (ctx.region set); raises ApiError
        for a credential scope the service refuses."""

    def resources(self):
        """{key: empty value} of the resources this service keeps."""
        return {k: kind() for k, kind in self.resource_kinds.items()}

    def add_resources(self, res, obj):
        """Take this service's keys of `obj` (--resources, POST /__resources)
        into `res` (the lock is held)."""
        for k, kind in self.resource_kinds.items():
            if kind is set:
                res[k].update(str(name) for name in obj.get(k, []))
            else:
                res[k].update((str(name), v) for name, v in (obj.get(k) or {}).items())

    def describe_resources(self, res):
        """This service's part of GET /__resources (the lock is held)."""
        return {k: sorted(res[k]) if kind is set else dict(res[k])
                for k, kind in self.resource_kinds.items()}


def fault_error(spec, default, sender=True):
    """The ApiError a throttle / error500 rule answers: `default` (status,
    code, message) with the rule's "status", "code", "message" overriding."""
    status, code, message = default
    return ApiError(spec.get("status", status), spec.get("code", code),
                    spec.get("message", message), sender=sender)


class QueryService(Service):
    """A Query API service: Action in a form body, XML answers and errors
    in `namespace`, the Query codes for signature failures."""

    namespace = None
    query_codes = True
    throttle_fault = (400, "Throttling", "Rate exceeded")
    error500_fault = (500, "InternalFailure", "An internal error occurred.")

    def operation(self, ctx):
        return form_action(ctx)

    def error(self, ctx, err, headers):
        return query_error(self.namespace, err, ctx.request_id, headers, err.sender)

    def throttle(self, s):
        return fault_error(s, self.throttle_fault)

    def error500(self, s):
        return fault_error(s, self.error500_fault, sender=False)


def render_error(svc, ctx, err):
    headers = dict(err.headers)
    headers["x-amzn-RequestId"] = ctx.request_id
    if err.body is not None:
        return Response(err.status, err.body, svc.error_content_type, headers)
    return svc.error(ctx, err, headers)


def auth_error(svc, failure):
    json_code, query_code = AUTH_CODES[failure.kind]
    return ApiError(403, query_code if svc.query_codes else json_code, failure.message)


def deny_error(svc, ctx, spec):
    """The access-denied ApiError of a deny rule: AWS's message naming the
    caller, the IAM action (prefix:Operation) and the resource (the rule's
    "resource", else svc.access_resource(ctx)); "message" overrides."""
    action = "%s:%s" % (svc.iam_prefix or svc.signing_name, ctx.operation)
    text = spec.get("message") or (
        "User: arn:aws:iam::%s:user/fanout-test is not authorized to perform: %s on "
        "resource: %s because no identity-based policy allows the %s action"
        % (ctx.account, action, spec.get("resource") or svc.access_resource(ctx), action))
    if svc.query_codes:
        return ApiError(svc.deny_status, "AccessDenied", text)
    return ApiError(svc.deny_status, "AccessDeniedException", text, extra=svc.deny_body(text))


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
    if rule.kind == "throttle":
        raise SERVICES[ctx.service].throttle(rule.spec)
    if rule.kind == "error500":
        raise SERVICES[ctx.service].error500(rule.spec)
    if rule.kind == "deny":
        raise deny_error(SERVICES[ctx.service], ctx, rule.spec)
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
# HTTP plumbing


STATE = None
SERVICES = {}   # name -> Service, in the order requests are matched
ALIASES = {}    # other name -> name


def identify_service(ctx):
    """The service a request is for: the first whose match() says so, else
    the one the credential scope's signing name names, else the first whose
    match_last() says so."""
    for svc in SERVICES.values():
        if svc.match(ctx):
            return svc
    parts = parse_authorization(ctx.header("Authorization"))
    if parts and "Credential" in parts:
        scope = parts["Credential"].split("/")
        if len(scope) == 5:
            for svc in SERVICES.values():
                if svc.by_scope and svc.signing_name == scope[3]:
                    return svc
    for svc in SERVICES.values():
        if svc.match_last(ctx):
            return svc
    return None


class Server(serve.Server):
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
            body = serve.read_body(self)
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
                   "time": time.time(), "model_errors": ctx.model_errors})
        if reset:
            self._reset(reset)
        else:
            try:
                self._write(resp)
            except OSError:
                self.close_connection = True

    def _serve(self, ctx):
        svc = identify_service(ctx)
        if svc is None:
            return Response(404, {"message": "no emulated service matches %s %s"
                                  % (ctx.method, ctx.path)})
        ctx.service = svc.name
        ctx.operation = svc.operation(ctx)
        try:
            akid, region, entry = verify_signature(STATE.creds, ctx.method, ctx.raw_target,
                                                   ctx.headers, ctx.body, svc.signing_name)
        except AuthFailure as f:
            STATE.count_auth_failure(f.kind)
            return render_error(svc, ctx, auth_error(svc, f))
        ctx.akid, ctx.region = akid, region
        ctx.account = entry["account"] or STATE.args.account_id
        try:
            svc.check_scope(ctx)
            if svc.model:
                validate(svc, ctx)
            resp = svc.handle(ctx)
            if ctx.mangle is not None and resp is not None and 200 <= resp.status < 300:
                resp = mangle_response(ctx.mangle.spec, resp)
            return resp
        except ApiError as e:
            return render_error(svc, ctx, e)
        except ResponseReady as r:
            r.response.headers.setdefault("x-amzn-RequestId", ctx.request_id)
            return r.response


def validate(svc, ctx):
    """The request checked against the service's botocore model(s); a
    refused one is counted in /__stats model_errors, logged, and answered
    400 in the service's shape (ApiError)."""
    try:
        checked = model.check_request(svc.model, ctx.method, ctx.raw_target, ctx.headers,
                                      ctx.body)
    except model.ModelError as e:
        ctx.operation = e.operation or ctx.operation
        ctx.model_errors = e.errors
        STATE.count_model_error(svc.name, e.operation, e.errors)
        sys.stderr.write("aws_service: %s %s refused by botocore's %s model: %s\n"
                         % (svc.name, e.operation or "(no operation)", e.model,
                            "; ".join(e.errors)))
        raise ApiError(e.status, e.code, e.message)
    ctx.params = checked.params
    ctx.operation = ctx.operation or checked.operation


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
            service = ALIASES.get(service, service)
            if service not in SERVICES:
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
    for svc in SERVICES.values():  # a service's own control paths (its control(ctx))
        own = getattr(svc, "control", None)
        resp = own(ctx) if own else None
        if resp is not None:
            return resp
    return Response(404, {"message": "unknown control path %s %s" % (method, path)})


def main(services, doc):
    """The command line of aws_service.py serving `services` (Service
    instances, matched in this order)."""
    global STATE
    for svc in services:
        SERVICES[svc.name] = svc
        ALIASES.update((a, svc.name) for a in svc.aliases)
    ap = serve.arguments(doc)
    ap.add_argument("--credentials", help="JSON list of accepted signers")
    ap.add_argument("--resources", help="JSON object of existing streams, topics, functions")
    ap.add_argument("--account-id", default="123456789012",
                    help="account of signers whose entry names none")
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--search-flavor", choices=("opensearch", "elasticsearch"),
                    default="opensearch")
    ap.add_argument("--forward", action="append", default=[], metavar="SERVICE=URL",
                    help="validate, then forward SERVICE's requests to URL (an emulator)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.forward_map = {}
    for f in args.forward:
        name, sep, url = f.partition("=")
        if not sep or not url.startswith("http://") or not hasattr(
                SERVICES.get(name), "target_prefix"):
            ap.error("--forward %s: SERVICE=http://HOST:PORT expected, SERVICE one of %s"
                     % (f, ", ".join(n for n, s in SERVICES.items()
                                     if hasattr(s, "target_prefix"))))
        args.forward_map[name] = url
    args.rejected_type = ("rejected_execution_exception" if args.search_flavor == "opensearch"
                          else "es_rejected_execution_exception")
    STATE = State(args)
    server = Server(("127.0.0.1", args.port), Handler)
    serve.run(server, args, "aws_service", serve.process_gone, 0)
