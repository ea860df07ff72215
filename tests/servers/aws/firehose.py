"""Firehose: JSON 1.1, POST /, X-Amz-Target Firehose_20150804.PutRecordBatch
or .PutRecord (Content-Type application/x-amz-json-1.1), and
.DescribeDeliveryStream (ResourceNotFoundException when unknown) for
`fanout register`. Targets: the stream name. Received entries: data (UTF-8
or null), dataBase64, recordId, index. Resources: {"firehose": ["stream",
"*"]}. Faults: throttle 500 ServiceUnavailableException "Slow down.",
error500 500 InternalFailure, partial fails PutRecordBatch entries with
ServiceUnavailableException "Slow down."."""

import base64
import binascii
import json
import re
import secrets

from .core import (ApiError, Response, Service, apply_faults, b64, text_or_none,
                   validation_message)

FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_RECORD = 1024000
FIREHOSE_MAX_REQUEST = 4 * 1024 * 1024
FIREHOSE_STREAM_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
JSON11 = "application/x-amz-json-1.1"


def firehose_exists(ctx, name):
    with ctx.state.lock:
        streams = ctx.state.resources["firehose"]
        return "*" in streams or name in streams


def put_records(ctx):
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
    if not firehose_exists(ctx, name):
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
    ctx.state.store("firehose", name, stored)
    headers = {"x-amzn-RequestId": ctx.request_id}
    if op == "PutRecord":
        return Response(200, {"RecordId": responses[0]["RecordId"], "Encrypted": False},
                        "application/x-amz-json-1.1", headers)
    return Response(200, {"FailedPutCount": len(failing), "Encrypted": False,
                          "RequestResponses": responses}, "application/x-amz-json-1.1", headers)


def firehose_describe(ctx, req):
    name = req.get("DeliveryStreamName")
    ctx.target = name
    if not isinstance(name, str) or not FIREHOSE_STREAM_RE.match(name):
        raise ApiError(400, "ValidationException", "1 validation error detected: Value '%s' at "
                       "'deliveryStreamName' failed to satisfy constraint" % (name,))
    apply_faults(ctx)
    if not firehose_exists(ctx, name):
        raise ApiError(400, "ResourceNotFoundException", "Firehose %s under account %s not "
                       "found." % (name, ctx.account))
    arn = "arn:aws:firehose:%s:%s:deliverystream/%s" % (ctx.region, ctx.account, name)
    return Response(200, {"DeliveryStreamDescription": {
        "DeliveryStreamName": name, "DeliveryStreamARN": arn,
        "DeliveryStreamStatus": "ACTIVE", "DeliveryStreamType": "DirectPut",
        "VersionId": "1", "Destinations": [], "HasMoreDestinations": False}},
        "application/x-amz-json-1.1")


class Firehose(Service):
    name = signing_name = "firehose"
    model = "firehose"
    resource_kinds = {"firehose": set}

    def match(self, ctx):
        return (ctx.header("X-Amz-Target") or "").startswith("Firehose_")

    def operation(self, ctx):
        return (ctx.header("X-Amz-Target") or "").partition(".")[2] or None

    def handle(self, ctx):
        return put_records(ctx)

    def error(self, ctx, err, headers):
        body = {"__type": err.code}
        if err.message is not None:
            body["message"] = err.message
        body.update(err.extra)
        return Response(err.status, body, JSON11, headers)

    def throttle(self, s):
        return ApiError(s.get("status", 500), s.get("code", "ServiceUnavailableException"),
                        s.get("message", "Slow down."), sender=False)

    def error500(self, s):
        return ApiError(s.get("status", 500), s.get("code", "InternalFailure"),
                        s.get("message", "Internal service failure."), sender=False)


SERVICES = [Firehose()]
