"""DynamoDB and Kinesis through a validating forward: with
`--forward dynamodb=http://127.0.0.1:P --forward kinesis=http://127.0.0.1:Q`
a request whose credential scope names dynamodb / kinesis (JSON 1.0 / 1.1,
X-Amz-Target DynamoDB_20120810.* / Kinesis_20131202.*) has its signature
checked and its parameters validated against botocore's dynamodb / kinesis
model, then goes byte for byte (method, path and query, every header but
Host, the body) to the emulator (dynalite, kinesalite), whose answer
(status, headers, body) is returned as is. Without --forward for it the
service answers 503 ServiceUnavailable. Targets: TableName, StreamName or
StreamARN (else none). Received entries: params (the validated input) and
status (the emulator's). Errors (validation, faults) in the JSON protocol's
shape: {"__type": ..., "message": ...}, DynamoDB's types prefixed
com.amazonaws.dynamodb.v20120810#. Faults: throttle 400
ThrottlingException (DynamoDB) / LimitExceededException (Kinesis), error500
500 InternalFailure, deny 400 AccessDeniedException (as these services
answer it; resource: the table or stream ARN when the input names one)."""

import http.client
from urllib.parse import urlsplit

from . import core
from .core import ApiError, Response, Service, apply_faults, fault_error

HOP = {"host", "content-length", "transfer-encoding", "connection", "expect"}
ANSWER_SKIP = {"content-length", "content-type", "transfer-encoding", "connection", "date",
               "server"}


class Forwarded(Service):
    type_prefix = ""
    deny_status = 400

    def __init__(self, name, model, target_prefix, throttle_code, arn_kind):
        self.name = self.signing_name = name
        self.model = model
        self.target_prefix = target_prefix
        self.throttle_code = throttle_code
        self.arn_kind = arn_kind

    def operation(self, ctx):
        prefix, _, op = (ctx.header("X-Amz-Target") or "").partition(".")
        return op if prefix == self.target_prefix else None

    def handle(self, ctx):
        url = core.STATE.args.forward_map.get(self.name)
        if not url:
            raise ApiError(503, "ServiceUnavailable", "%s is served here only with --forward "
                           "%s=URL (an emulator)" % (self.name, self.name))
        p = ctx.params or {}
        ctx.target = p.get("TableName") or p.get("StreamName") or p.get("StreamARN")
        apply_faults(ctx)
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        try:
            conn.putrequest(ctx.method, ctx.raw_target, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", u.netloc)
            for k, v in ctx.headers.items():
                if k.lower() not in HOP:
                    conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(ctx.body)))
            conn.endheaders(ctx.body)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            raise ApiError(502, "InternalFailure", "forwarding to %s failed: %s" % (url, e))
        finally:
            conn.close()
        e = ctx.base_entry()
        e.update({"params": p, "status": r.status})
        ctx.state.store(self.name, ctx.target, [e])
        headers = {k: v for k, v in r.getheaders() if k.lower() not in ANSWER_SKIP}
        return Response(r.status, data, r.getheader("Content-Type", "application/json"),
                        headers)

    def error(self, ctx, err, headers):
        body = dict(err.extra) if err.extra else {"__type": self.type_prefix + err.code,
                                                  "message": err.message}
        return Response(err.status, body, "application/x-amz-json-1.0", headers)

    def deny_body(self, text):
        return {"__type": self.type_prefix + "AccessDeniedException", "message": text}

    def access_resource(self, ctx):
        p = ctx.params or {}
        if p.get("StreamARN"):
            return p["StreamARN"]
        name = p.get("TableName") or p.get("StreamName")
        if not name:
            return "*"
        if name.startswith("arn:"):
            return name
        return "arn:aws:%s:%s:%s:%s/%s" % (self.name, ctx.region, ctx.account, self.arn_kind,
                                           name)

    def throttle(self, s):
        return fault_error(s, (400, self.throttle_code, "Rate exceeded"))

    def error500(self, s):
        return fault_error(s, (500, "InternalFailure", "An internal error occurred."))


class DynamoDB(Forwarded):
    type_prefix = "com.amazonaws.dynamodb.v20120810#"


SERVICES = [DynamoDB("dynamodb", "dynamodb", "DynamoDB_20120810", "ThrottlingException",
                     "table"),
            Forwarded("kinesis", "kinesis", "Kinesis_20131202", "LimitExceededException",
                      "stream")]
