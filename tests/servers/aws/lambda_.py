"""Lambda: REST-JSON, POST /2015-03-31/functions/{FunctionName}/invocations
[?Qualifier=], X-Amz-Invocation-Type Event (202) | RequestResponse (200,
echoes the payload) | DryRun (204); GET /2015-03-31/functions/{name}
(GetFunction, 404 when unknown; for `fanout register`). Targets: the
function name. Received entries: function, functionArn, functionRef,
qualifier, invocationType, payload (parsed), payloadText, clientContext,
logType. Resources: {"lambda": ["name", "name:alias",
"arn:aws:lambda:REGION:ACCOUNT:function:name", "*"]}: a bare name exists in
every region and account and takes no qualifier, $LATEST or a version
number; aliases must be listed. Faults: throttle 429
TooManyRequestsException (Retry-After, Reason CallerRateLimitExceeded),
error500 500 ServiceException."""

import json
import re
from urllib.parse import unquote

from .core import ApiError, Response, Service, apply_faults, b64, text_or_none

LAMBDA_EVENT_MAX = 1048576
LAMBDA_SYNC_MAX = 6291456
LAMBDA_NAME_PATTERN = (r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?"
                       r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?")
LAMBDA_FULL_ARN_RE = re.compile(
    r"^arn:(aws[a-zA-Z-]*):lambda:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):function:"
    r"([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
LAMBDA_PARTIAL_ARN_RE = re.compile(
    r"^(\d{12}):function:([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
LAMBDA_NAME_RE = re.compile(r"^([a-zA-Z0-9_.-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")


def lambda_exists(ctx, region, account, name, qualifier):
    arn = "arn:aws:lambda:%s:%s:function:%s" % (region, account, name)
    with ctx.state.lock:
        fns = ctx.state.resources["lambda"]
        if "*" in fns:
            return True
        if qualifier is None or qualifier == "$LATEST" or qualifier.isdigit():
            return name in fns or arn in fns
        return ("%s:%s" % (name, qualifier)) in fns or ("%s:%s" % (arn, qualifier)) in fns


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
    if not lambda_exists(ctx, region, account, name, qual):
        raise lambda_error(404, "ResourceNotFoundException", "Function not found: %s%s"
                           % (function_arn, (":" + qual) if qual else ""))
    payload = None
    if ctx.body.strip():
        try:
            payload = json.loads(ctx.body)
        except ValueError as e:
            raise lambda_error(400, "InvalidRequestContentException",
                               "Could not parse request body into json: %s" % e, member="message")
    cc_decoded = ctx.json_header(
        "X-Amz-Client-Context",
        lambda_error(400, "InvalidRequestContentException",
                     "Client context must be a valid Base64-encoded JSON object.",
                     member="message"))
    apply_faults(ctx)
    headers = {"x-amzn-RequestId": ctx.request_id}
    if itype == "DryRun":
        return Response(204, b"", "application/json", headers)
    e = ctx.base_entry()
    e.update({"function": name, "functionArn": function_arn, "functionRef": ref,
              "qualifier": qual, "invocationType": itype, "payload": payload,
              "payloadText": text_or_none(ctx.body), "clientContext": cc_decoded,
              "logType": ctx.header("X-Amz-Log-Type")})
    ctx.state.store("lambda", name, [e])
    if itype == "Event":
        return Response(202, b"", "application/json", headers)
    headers["X-Amz-Executed-Version"] = qual if (qual and qual.isdigit()) else "$LATEST"
    if ctx.header("X-Amz-Log-Type") == "Tail":
        headers["X-Amz-Log-Result"] = b64(("START RequestId: %s\nEND RequestId: %s\n"
                                           % (ctx.request_id, ctx.request_id)).encode())
    return Response(200, ctx.body or b"null", "application/json", headers)


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
    if region != ctx.region or not lambda_exists(ctx, region, account, name, qual):
        raise lambda_error(404, "ResourceNotFoundException", "Function not found: %s" % arn)
    return Response(200, {"Configuration": {"FunctionName": name, "FunctionArn": arn,
                                            "Runtime": "provided.al2023", "State": "Active"},
                          "Code": {"RepositoryType": "S3"}})


class Lambda(Service):
    name = signing_name = "lambda"
    model = "lambda"
    resource_kinds = {"lambda": set}

    def match(self, ctx):
        return ctx.path.startswith("/2015-03-31/functions/")

    def operation(self, ctx):
        return "GetFunction" if ctx.method == "GET" else "Invoke"

    def handle(self, ctx):
        return lambda_invoke(ctx)

    def throttle(self, s):
        return ApiError(s.get("status", 429), s.get("code", "TooManyRequestsException"),
                        s.get("message", "Rate Exceeded."),
                        extra={"Type": "User", "message": s.get("message", "Rate Exceeded."),
                               "Reason": s.get("reason", "CallerRateLimitExceeded")},
                        headers={"Retry-After": str(s.get("retryAfter", 1))})

    def error500(self, s):
        msg = s.get("message", "An internal error occurred.")
        return ApiError(s.get("status", 500), s.get("code", "ServiceException"), msg,
                        extra={"Type": "Service", "Message": msg})


SERVICES = [Lambda()]
