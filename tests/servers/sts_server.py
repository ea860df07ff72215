#!/usr/bin/python3
"""A loopback test STS and container-credentials endpoint for the credentials tests.

It listens on 127.0.0.1 and prints the port it bound on the first line of
stdout (flushed), then serves:

  POST /                 STS Query API: Action=AssumeRole (Version 2011-06-15).
                         Every request's SigV4 signature is checked with
                         botocore (the request is rebuilt from the method, URL,
                         signed headers and body, and re-signed with
                         botocore.auth.SigV4Auth at the request's X-Amz-Date
                         with the secret the server knows for the key id);
                         a difference is answered 403 SignatureDoesNotMatch,
                         with the canonical request in the message as AWS
                         does (so it contains the security token when one was
                         signed: the client must scrub it). RoleArn,
                         RoleSessionName, ExternalId and DurationSeconds are
                         checked as STS does (400 ValidationError).
  GET  <container-path>  container credentials (ECS / EKS Pod Identity
                         shape), checking the Authorization header against
                         --container-token when one is given (401 otherwise).
  POST /service          a minimal signed "service": verifies the signature
                         like STS (service and region taken from the
                         credential scope), answers 400 ExpiredTokenException
                         (JSON 1.x shape) when the key is one this server
                         issued and it has expired, 403
                         UnrecognizedClientException for an unknown key, 403
                         InvalidSignatureException for a bad signature, else
                         200 {"ok": true, "accessKeyId": ...}.
  GET  /stats            JSON counters, for the tests (see State.stats), and
                         "issued_keys": every key issued, in order, as
                         {"accessKeyId", "source"} (source "container" or
                         "assume-role:ARN").
  POST /                 Action=AssumeRoleWithWebIdentity: unsigned (an
                         Authorization header is refused, as a sign that the
                         client signed what must not be); WebIdentityToken
                         must equal --web-token (else 400
                         InvalidIdentityToken); RoleArn, RoleSessionName and
                         DurationSeconds checked as for AssumeRole. Counted
                         under roles[ARN] with last.Action set.
  POST /control          JSON {"role": ARN, "mode": "throttle"|"500"|"deny"|
                         "ok", "count": N}: the next N AssumeRole requests
                         for ROLE get that answer ("ok" clears).

Keys the server accepts as signers: the --base-key pairs, and every key it
has issued (AssumeRole and container credentials), so issued credentials can
sign later requests. Each issue gets a new, unique key id, secret and token.

With --register-with URL, every key AssumeRole issues is POSTed to
URL/__credentials (tests/servers/aws_service.py's JSON: accessKeyId,
secretAccessKey, sessionToken, accountId (the account of the role ARN),
expiration) before the AssumeRole answer goes out, as IAM makes the
credentials valid everywhere; a registration that fails is answered 500
InternalError (the key is not handed out).

Roles behave by the name after "role/" (the last path segment):
  deny...           always 403 AccessDenied
  throttleN-...     the first N requests for this ARN: 400 Throttling
  failN-...         the first N requests for this ARN: 500 InternalError
  slow-...          answered after --slow-ms
  ext-...           needs ExternalId equal to --external-id (else 403
                    AccessDenied, as STS answers)
  anything else     credentials

Options:
  --base-key AKID:SECRET[:TOKEN]  a signer (repeatable)
  --lifetime-seconds N            issued credentials expire after N s
  --service-expires-after S       /service answers ExpiredTokenException for
                                  keys issued more than S s ago (clock skew)
                                  (default: DurationSeconds for AssumeRole,
                                  3600 for container credentials)
  --external-id VALUE             what ext-... roles require
  --container-path PATH           default /container/credentials
  --container-token TOKEN         the Authorization value required there
  --slow-ms N                     delay of slow-... roles (default 500)
  --container-fail-first N        answer the first N container requests 500
  --max-lifetime S                exit after S seconds whatever happens
  --parent-pid PID                exit when PID is no longer our parent
  --register-with URL             register AssumeRole keys there (repeatable)
  --web-token TOKEN               what AssumeRoleWithWebIdentity accepts
"""

import datetime
import json
import os
import re
import secrets
import string
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
# Quotes as entities too, so the client's entity decoding is exercised.
QUOTES = {"'": "&apos;", '"': "&#34;"}
# Groups: the account, the role name (the last path segment).
ROLE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,"
    r"\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$")


class FixedTimeSigV4(SigV4Auth):
    """botocore's SigV4Auth, signing at a given X-Amz-Date instead of now.

    add_auth() as in botocore, with the timestamp taken from the request
    rather than the clock; every stage is botocore's own."""

    def __init__(self, credentials, service_name, region_name, amz_date):
        super().__init__(credentials, service_name, region_name)
        self._amz_date = amz_date
        self.canonical = ""

    def add_auth(self, request):
        request.context["timestamp"] = self._amz_date
        self._modify_request_before_signing(request)
        self.canonical = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, self.canonical)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


def iso8601(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def random_text(n, alphabet=string.ascii_letters + string.digits + "+/"):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.signers = {}  # key id -> {"secret", "token", "expires" (0: never), "source"}
        for spec in args.base_key or []:
            parts = spec.split(":", 2)
            if len(parts) < 2:
                raise SystemExit("--base-key wants AKID:SECRET[:TOKEN]")
            self.signers[parts[0]] = {"secret": parts[1],
                                      "token": parts[2] if len(parts) > 2 else None,
                                      "expires": 0, "source": "base"}
        self.control = {}  # role ARN -> [mode, remaining]
        self.counters = {}  # role ARN -> how many requests seen (for throttleN / failN)
        self.roles = {}
        self.sts = {"requests": 0, "signature_failures": 0, "validation_errors": 0}
        self.container = {"requests": 0, "issued": 0, "unauthorized": 0}
        self.service = {"requests": 0, "ok": 0, "expired": 0, "bad_signature": 0,
                        "unknown_key": 0}
        self.issued_keys = []  # {"accessKeyId", "source"}, in the order issued

    def issue(self, source, lifetime):
        with self.lock:
            while True:
                akid = "ASIA" + random_text(16, string.ascii_uppercase + string.digits)
                if akid not in self.signers:
                    break
            creds = {"secret": random_text(40), "token": "FwoGZXIvYXdzE" + random_text(300),
                     "expires": int(time.time()) + lifetime, "source": source,
                     "issued": time.time()}
            self.signers[akid] = creds
            self.issued_keys.append({"accessKeyId": akid, "source": source})
        return akid, creds

    def role_stats(self, arn):
        return self.roles.setdefault(arn, {"requests": 0, "issued": 0, "throttled": 0,
                                           "failed": 0, "denied": 0, "last": None})

    def stats(self):
        with self.lock:
            return {"roles": self.roles, "sts": self.sts, "container": self.container,
                    "service": self.service, "issued_keys": list(self.issued_keys)}

    def register(self, akid, creds, account):
        """POST the key to every --register-with URL's /__credentials.
        Returns None, or what went wrong."""
        entry = json.dumps([{"accessKeyId": akid, "secretAccessKey": creds["secret"],
                             "sessionToken": creds["token"], "accountId": account,
                             "expiration": iso8601(creds["expires"])}]).encode()
        for url in self.args.register_with or []:
            req = urllib.request.Request(url.rstrip("/") + "/__credentials", data=entry,
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
            except OSError as e:
                return "registering %s with %s failed: %s" % (akid, url, e)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fanout-test-sts"
    # Headers and body go out in separate writes: without TCP_NODELAY a
    # kept-alive client waits for the delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("sts_server: " + (fmt % args) + "\n")

    # ---- plumbing ----

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, body, ctype, extra=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, obj, extra=None):
        self._send(status, json.dumps(obj), "application/x-amz-json-1.1", extra)

    def _sts_error(self, status, code, message, kind="Sender"):
        xml = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n'
               '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
               '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
               % (STS_NS, kind, escape(code), escape(message, QUOTES), uuid.uuid4()))
        self._send(status, xml, "text/xml")

    def _verify(self, body):
        """Check the SigV4 signature of this request with botocore.

        Returns (None, key id, signer, service, region) when it is good (service
        and region from the credential scope), else
        (reason, key id, signer, canonical request botocore computed, None).
        reason: "missing", "unknown_key", "mismatch"."""
        auth = self.headers.get("Authorization") or ""
        m = AUTH_RE.match(auth.strip())
        amz_date = self.headers.get("X-Amz-Date")
        if not m or not amz_date:
            return ("missing", None, None, "", None)
        akid, date, region, service, signed, _sig = m.groups()
        with self.server.state.lock:
            signer = self.server.state.signers.get(akid)
        if signer is None:
            return ("unknown_key", akid, None, "", None)
        names = signed.split(";")
        headers = {}
        for name in names:
            values = self.headers.get_all(name)
            if values is None:
                return ("mismatch", akid, signer, "(signed header %s missing)" % name, None)
            headers[name] = ",".join(values)
        host = self.headers.get("Host") or "127.0.0.1"
        request = AWSRequest(method=self.command, url="http://%s%s" % (host, self.path),
                             data=body, headers=headers)
        auth_obj = FixedTimeSigV4(Credentials(akid, signer["secret"], signer["token"]),
                                  service, region, amz_date)
        auth_obj.add_auth(request)
        expected = request.headers["Authorization"]
        if date != amz_date[:8] or self._auth_parts(expected) != self._auth_parts(auth):
            return ("mismatch", akid, signer, auth_obj.canonical, None)
        return (None, akid, signer, service, region)

    @staticmethod
    def _auth_parts(value):
        head, _, rest = value.strip().partition(" ")
        return [head] + [p.strip() for p in rest.split(",")]

    # ---- routes ----

    def do_GET(self):
        state = self.server.state
        path = self.path.split("?", 1)[0]
        if path == "/stats":
            self._send(200, json.dumps(state.stats()), "application/json")
        elif path == state.args.container_path:
            self._container()
        else:
            self._send(404, '{"message":"not found"}', "application/json")

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        body = self._body()
        if path == "/control":
            self._control(body)
        elif path == "/service":
            self._service(body)
        elif path == "/":
            self._sts(body)
        else:
            self._send(404, '{"message":"not found"}', "application/json")

    def _control(self, body):
        state = self.server.state
        try:
            req = json.loads(body)
            arn, mode, count = req["role"], req["mode"], int(req.get("count", 1))
        except (ValueError, KeyError, TypeError) as e:
            self._send(400, json.dumps({"message": str(e)}), "application/json")
            return
        with state.lock:
            if mode == "ok":
                state.control.pop(arn, None)
            else:
                state.control[arn] = [mode, count]
        self._send(200, '{"ok":true}', "application/json")

    def _container(self):
        state = self.server.state
        args = state.args
        with state.lock:
            state.container["requests"] += 1
            n = state.container["requests"]
        if n <= args.container_fail_first:
            self._send(500, '{"code":"InternalError","message":"agent busy"}',
                       "application/json")
            return
        if args.container_token and self.headers.get("Authorization") != args.container_token:
            with state.lock:
                state.container["unauthorized"] += 1
            self._send(401, '{"code":"Unauthorized","message":"bad authorization token"}',
                       "application/json")
            return
        akid, creds = state.issue("container", args.lifetime_seconds or 3600)
        with state.lock:
            state.container["issued"] += 1
        self._send(200, json.dumps({"AccessKeyId": akid, "SecretAccessKey": creds["secret"],
                                    "Token": creds["token"],
                                    "Expiration": iso8601(creds["expires"]),
                                    "RoleArn": "arn:aws:iam::123456789012:role/task"}),
                   "application/json")

    def _service(self, body):
        state = self.server.state
        with state.lock:
            state.service["requests"] += 1
        auth = self.headers.get("Authorization") or ""
        m = AUTH_RE.match(auth.strip())
        with state.lock:
            signer = state.signers.get(m.group(1)) if m else None
        revoke = state.args.service_expires_after
        if signer and ((signer["expires"] and time.time() >= signer["expires"]) or
                       (revoke and signer.get("issued") and
                        time.time() >= signer["issued"] + revoke)):
            with state.lock:
                state.service["expired"] += 1
            self._json(400, {"__type": "ExpiredTokenException",
                             "message": "The security token included in the request is expired"},
                       {"x-amzn-ErrorType": "ExpiredTokenException"})
            return
        reason, akid, _signer, _canonical, _ = self._verify(body)
        if reason in ("missing", "unknown_key"):
            with state.lock:
                state.service["unknown_key"] += 1
            self._json(403, {"__type": "UnrecognizedClientException",
                             "message": "The security token included in the request is invalid."})
            return
        if reason == "mismatch":
            with state.lock:
                state.service["bad_signature"] += 1
            self._json(403, {"__type": "InvalidSignatureException",
                             "message": "The request signature we calculated does not match "
                                        "the signature you provided."})
            return
        with state.lock:
            state.service["ok"] += 1
        self._json(200, {"ok": True, "accessKeyId": akid})

    def _web_identity(self, body):
        state = self.server.state
        args = state.args
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if self.headers.get("Authorization") or self.headers.get("X-Amz-Security-Token"):
            self._validation("AssumeRoleWithWebIdentity must not be signed")
            return
        arn = params.get("RoleArn", "")
        m = ROLE_ARN_RE.match(arn)
        session = params.get("RoleSessionName", "")
        if not m or not SESSION_NAME_RE.match(session) or params.get("Version") != "2011-06-15":
            self._validation("bad RoleArn, RoleSessionName or Version")
            return
        try:
            duration = int(params.get("DurationSeconds", "3600"))
        except ValueError:
            duration = -1
        if not 900 <= duration <= 43200:
            self._validation("bad DurationSeconds")
            return
        with state.lock:
            rs = state.role_stats(arn)
            rs["requests"] += 1
            rs["last"] = {"Action": "AssumeRoleWithWebIdentity", "RoleSessionName": session,
                          "DurationSeconds": duration, "signer": None}
        if not args.web_token or params.get("WebIdentityToken") != args.web_token:
            with state.lock:
                rs["denied"] += 1
            self._sts_error(400, "InvalidIdentityToken",
                            "The web identity token that was passed could not be validated "
                            "by AWS: " + params.get("WebIdentityToken", "")[:40])
            return
        akid_new, creds = state.issue("web-identity:" + arn, args.lifetime_seconds or duration)
        with state.lock:
            rs["issued"] += 1
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="%s">\n'
               '  <AssumeRoleWithWebIdentityResult>\n'
               '    <SubjectFromWebIdentityToken>system:serviceaccount:x</SubjectFromWebIdentityToken>\n'
               '    <Credentials>\n'
               '      <SessionToken>%s</SessionToken>\n'
               '      <SecretAccessKey>%s</SecretAccessKey>\n'
               '      <Expiration>%s</Expiration>\n'
               '      <AccessKeyId>%s</AccessKeyId>\n'
               '    </Credentials>\n'
               '  </AssumeRoleWithWebIdentityResult>\n'
               '</AssumeRoleWithWebIdentityResponse>\n'
               % (STS_NS, escape(creds["token"]), escape(creds["secret"]),
                  iso8601(creds["expires"]), akid_new))
        self._send(200, xml, "text/xml")

    def _sts(self, body):
        state = self.server.state
        args = state.args
        with state.lock:
            state.sts["requests"] += 1
        if b"Action=AssumeRoleWithWebIdentity" in body:
            self._web_identity(body)
            return
        reason, akid, signer, canonical, region = self._verify(body)
        if reason is None and canonical != "sts":
            with state.lock:
                state.sts["signature_failures"] += 1
            self._sts_error(403, "SignatureDoesNotMatch",
                            "Credential should be scoped to correct service: 'sts'. ")
            return
        if reason == "missing":
            self._sts_error(403, "MissingAuthenticationToken",
                            "Request is missing Authentication Token")
            return
        if reason == "unknown_key":
            self._sts_error(403, "InvalidClientTokenId",
                            "The security token included in the request is invalid.")
            return
        if signer["expires"] and time.time() >= signer["expires"]:
            self._sts_error(400, "ExpiredToken",
                            "The security token included in the request is expired")
            return
        if reason == "mismatch":
            with state.lock:
                state.sts["signature_failures"] += 1
            self._sts_error(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the "
                            "signature you provided. Check your AWS Secret Access Key and "
                            "signing method. Consult the service documentation for details."
                            "\n\nThe Canonical String for this request should have been\n'"
                            + canonical + "'\n")
            return

        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            self._validation("Content-Type must be application/x-www-form-urlencoded")
            return
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=True)
        except (ValueError, UnicodeDecodeError) as e:
            self._validation("malformed body: %s" % e)
            return
        params = {}
        for k, v in pairs:
            if k in params:
                self._validation("parameter %s given twice" % k)
                return
            params[k] = v
        if params.get("Action") != "AssumeRole":
            self._sts_error(400, "InvalidAction",
                            "Could not find operation %s" % params.get("Action"))
            return
        if params.get("Version") != "2011-06-15":
            self._validation("bad Version %r" % params.get("Version"))
            return
        arn = params.get("RoleArn", "")
        m = ROLE_ARN_RE.match(arn)
        if not m:
            self._validation("1 validation error detected: Value '%s' at 'roleArn' failed "
                             "to satisfy constraint" % arn)
            return
        account, role_name = m.group(1), m.group(2)
        session = params.get("RoleSessionName", "")
        if not SESSION_NAME_RE.match(session):
            self._validation("Value '%s' at 'roleSessionName' failed to satisfy constraint"
                             % session)
            return
        external_id = params.get("ExternalId")
        if external_id is not None and not EXTERNAL_ID_RE.match(external_id):
            self._validation("Value at 'externalId' failed to satisfy constraint")
            return
        try:
            duration = int(params.get("DurationSeconds", "3600"))
        except ValueError:
            duration = -1
        if not 900 <= duration <= 43200:
            self._validation("Value '%s' at 'durationSeconds' failed to satisfy constraint: "
                             "Member must have value between 900 and 43200"
                             % params.get("DurationSeconds"))
            return

        with state.lock:
            rs = state.role_stats(arn)
            rs["requests"] += 1
            rs["last"] = {"RoleSessionName": session, "ExternalId": external_id,
                          "DurationSeconds": duration, "signer": signer["source"],
                          "SigningRegion": region,
                          "ContentType": self.headers.get("Content-Type")}
            n = state.counters.get(arn, 0) + 1
            state.counters[arn] = n
            mode = None
            ctl = state.control.get(arn)
            if ctl and ctl[1] > 0:
                ctl[1] -= 1
                mode = ctl[0]
        if mode is None:
            mt = re.match(r"^throttle(\d+)-", role_name)
            mf = re.match(r"^fail(\d+)-", role_name)
            if role_name.startswith("deny"):
                mode = "deny"
            elif mt and n <= int(mt.group(1)):
                mode = "throttle"
            elif mf and n <= int(mf.group(1)):
                mode = "500"
        if role_name.startswith("slow-"):
            time.sleep(args.slow_ms / 1000.0)
        denied_msg = ("User: arn:aws:iam::123456789012:user/fanout-test is not authorized "
                      "to perform: sts:AssumeRole on resource: %s" % arn)
        if mode == "throttle":
            with state.lock:
                rs["throttled"] += 1
            self._sts_error(400, "Throttling", "Rate exceeded")
            return
        if mode == "500":
            with state.lock:
                rs["failed"] += 1
            self._sts_error(500, "InternalError", "An internal error occurred", "Receiver")
            return
        if mode == "deny" or (role_name.startswith("ext-") and external_id != args.external_id):
            with state.lock:
                rs["denied"] += 1
            self._sts_error(403, "AccessDenied", denied_msg)
            return

        akid_new, creds = state.issue("assume-role:" + arn, args.lifetime_seconds or duration)
        failure = state.register(akid_new, creds, account)
        if failure:
            sys.stderr.write("sts_server: %s\n" % failure)
            with state.lock:
                rs["failed"] += 1
            self._sts_error(500, "InternalError", failure, "Receiver")
            return
        with state.lock:
            rs["issued"] += 1
        # Credentials last and Expiration first, with a decoy element of the
        # same local name elsewhere, so the client's scanner is exercised.
        xml = ('<AssumeRoleResponse xmlns="%s">\n'
               '  <AssumeRoleResult>\n'
               '    <AssumedRoleUser>\n'
               '      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:%s</AssumedRoleId>\n'
               '      <Arn>arn:aws:sts::123456789012:assumed-role/%s/%s</Arn>\n'
               '    </AssumedRoleUser>\n'
               '    <PackedPolicySize>6</PackedPolicySize>\n'
               '    <Credentials>\n'
               '      <Expiration>%s</Expiration>\n'
               '      <AccessKeyId>%s</AccessKeyId>\n'
               '      <SecretAccessKey>%s</SecretAccessKey>\n'
               '      <SessionToken>%s</SessionToken>\n'
               '    </Credentials>\n'
               '  </AssumeRoleResult>\n'
               '  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
               '</AssumeRoleResponse>\n'
               % (STS_NS, escape(session), escape(role_name), escape(session),
                  iso8601(creds["expires"]), akid_new, escape(creds["secret"]),
                  escape(creds["token"]), uuid.uuid4()))
        self._send(200, xml, "text/xml")

    def _validation(self, message):
        with self.server.state.lock:
            self.server.state.sts["validation_errors"] += 1
        self._sts_error(400, "ValidationError", message)


def main():
    ap = serve.arguments(__doc__)
    ap.add_argument("--base-key", action="append")
    ap.add_argument("--lifetime-seconds", type=int, default=0)
    # /service treats issued keys as expired this many seconds after issue,
    # whatever their Expiration said: credentials that expire under a client
    # that still believes them valid (clock skew, revoked sessions).
    ap.add_argument("--service-expires-after", type=float, default=0)
    ap.add_argument("--external-id", default="fanout+ext:id/=,.@-1")
    ap.add_argument("--container-path", default="/container/credentials")
    ap.add_argument("--container-token", default="")
    ap.add_argument("--slow-ms", type=int, default=500)
    ap.add_argument("--container-fail-first", type=int, default=0)
    ap.add_argument("--register-with", action="append", metavar="URL")
    ap.add_argument("--web-token", default="")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    server = serve.Server(("127.0.0.1", args.port), Handler)
    server.state = State(args)
    serve.run(server, args, "sts_server")


if __name__ == "__main__":
    main()
