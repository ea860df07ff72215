"""EventBridge: JSON 1.1, POST /, X-Amz-Target AWSEvents.PutEvents
(Content-Type application/x-amz-json-1.1; service "eventbridge", signing
name events, alias events), for sdk/examples/eventbridge. Checked as the
service does: 1 to 10 entries (ValidationException), 1 MiB per request;
per entry Source, DetailType and Detail required (InvalidArgument), Detail
a JSON object (MalformedDetail), 256 KiB per entry (InvalidArgument). The
answer is {"FailedEntryCount", "Entries": [{"EventId"} | {"ErrorCode",
"ErrorMessage"}]}, one per entry, in order. Targets: the bus of the first
entry (EventBusName, default "default"). Received entries (stored under
their own bus): bus, source, detailType, detail (parsed), eventId, index.
Buses always exist. Faults: throttle 400 ThrottlingException "Rate
exceeded", error500 500 InternalException, partial fails PutEvents entries
with InternalFailure "Internal service error"."""

import json
import uuid

from .core import ApiError, Response, Service, apply_faults

EVENTS_MAX_ENTRIES = 10
EVENTS_MAX_ENTRY = 262144
EVENTS_MAX_REQUEST = 1048576
JSON11 = "application/x-amz-json-1.1"
FIELDS = ("Source", "DetailType", "Detail")


def entry_error(e):
    """(fields' size, parsed Detail, None) for a valid entry, else
    (size, None, (code, message))."""
    fields = [e.get(k) if isinstance(e, dict) else None for k in FIELDS]
    if not all(isinstance(f, str) and f for f in fields):
        return 0, None, ("InvalidArgument", "Source, DetailType and Detail are required")
    size = sum(len(f.encode()) for f in fields)
    try:
        detail = json.loads(fields[2])
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        return size, None, ("MalformedDetail", "Detail is malformed.")
    if size > EVENTS_MAX_ENTRY:
        return size, None, ("InvalidArgument", "Entry too large")
    return size, detail, None


def put_events(ctx):
    ctx.operation = "PutEvents"
    if ctx.header("X-Amz-Target") != "AWSEvents.PutEvents" or ctx.media_type() != JSON11:
        raise ApiError(400, "UnknownOperationException", "PutEvents (JSON 1.1) only")
    try:
        entries = json.loads(ctx.body)["Entries"]
        assert isinstance(entries, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ApiError(400, "SerializationException", "bad request body")
    if not 1 <= len(entries) <= EVENTS_MAX_ENTRIES:
        raise ApiError(400, "ValidationException",
                       "Entries must hold 1 to %d entries" % EVENTS_MAX_ENTRIES)
    checked = [entry_error(e) for e in entries]
    if sum(size for size, _, _ in checked) > EVENTS_MAX_REQUEST:
        raise ApiError(400, "ValidationException",
                       "Total size of the entries in the request is over the limit.")
    buses = [str(e.get("EventBusName") or "default") if isinstance(e, dict) else "default"
             for e in entries]
    ctx.target = buses[0]
    rule = apply_faults(ctx, batch=True)
    failing = rule.failing(len(entries)) if rule else set()
    out, stored = [], {}
    for i, (e, (_, detail, err)) in enumerate(zip(entries, checked)):
        if err is None and i in failing:
            err = (rule.spec.get("code", "InternalFailure"),
                   rule.spec.get("message", "Internal service error"))
        if err is not None:
            out.append({"ErrorCode": err[0], "ErrorMessage": err[1]})
            continue
        event_id = str(uuid.uuid4())
        out.append({"EventId": event_id})
        s = ctx.base_entry()
        s.update({"target": buses[i], "bus": buses[i], "source": e["Source"],
                  "detailType": e["DetailType"], "detail": detail, "eventId": event_id,
                  "index": i})
        stored.setdefault(buses[i], []).append(s)
    for bus, lst in stored.items():
        ctx.state.store("eventbridge", bus, lst)
    failed = sum(1 for o in out if "ErrorCode" in o)
    return Response(200, {"FailedEntryCount": failed, "Entries": out}, JSON11,
                    {"x-amzn-RequestId": ctx.request_id})


class EventBridge(Service):
    name = "eventbridge"
    signing_name = "events"
    model = "events"
    aliases = ("events",)

    def match(self, ctx):
        return (ctx.header("X-Amz-Target") or "").startswith("AWSEvents.")

    def operation(self, ctx):
        return (ctx.header("X-Amz-Target") or "").partition(".")[2] or None

    def handle(self, ctx):
        return put_events(ctx)

    def error(self, ctx, err, headers):
        return Response(err.status, {"__type": err.code, "message": err.message}, JSON11,
                        headers)

    def throttle(self, s):
        return ApiError(s.get("status", 400), s.get("code", "ThrottlingException"),
                        s.get("message", "Rate exceeded"))

    def error500(self, s):
        return ApiError(s.get("status", 500), s.get("code", "InternalException"),
                        s.get("message", "Internal service error."), sender=False)


SERVICES = [EventBridge()]
