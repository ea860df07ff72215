"""SNS: Query, POST / form body, Action=Publish | PublishBatch | ListTopics
(100 a page, NextToken; for `fanout register`), Version=2010-03-31, XML
answers (xmlns sns 2010-03-31). Claimed by its signing name, or as the
form-encoded request nothing else claims. Targets: the topic ARN. Received
entries: message, subject, messageAttributes, messageGroupId,
messageDeduplicationId, messageStructure, messageId, sequenceNumber,
batchEntryId, index. Resources: {"sns": ["arn:aws:sns:REGION:ACCOUNT:topic",
{"arn": "....fifo", "contentBasedDeduplication": true}, "*"]}. Faults:
throttle 400 ThrottlingException "Rate exceeded", error500 500 InternalError
(Receiver), partial fails PublishBatch entries InternalError with
SenderFault false ("senderFault" overrides)."""

import base64
import binascii
import json
import re
import threading
import uuid
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from .core import ApiError, QueryService, Response, apply_faults, query_xml

SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
SNS_MAX_BYTES = 262144
SNS_LIST_PAGE = 100
SNS_TOPIC_ARN_RE = re.compile(
    r"^arn:(aws[a-zA-Z-]*):sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$")
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

_sequence_lock = threading.Lock()
_sequence = [10000000000000000000]  # FIFO sequence numbers, never reset


def next_sequence():
    with _sequence_lock:
        _sequence[0] += 1
        return str(_sequence[0])


def sns_topic(ctx, arn):
    with ctx.state.lock:
        topics = ctx.state.resources["sns"]
        t = topics.get(arn)
        if t is None and "*" in topics:
            t = {"contentBasedDeduplication": False}
        return t


def sns_xml(tag, result_inner, rid):
    return query_xml(SNS_NS, tag, result_inner, rid)


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


def serve_query(ctx):
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
        topic = sns_topic(ctx, arn)
        if topic is None:
            raise ApiError(404, "NotFound", "Topic does not exist")
        rec = sns_check_message(form, "", arn, topic)
        apply_faults(ctx)
        mid = str(uuid.uuid4())
        seq = next_sequence() if arn.endswith(".fifo") else None
        e = ctx.base_entry()
        e.update(rec)
        e.update({"messageId": mid, "sequenceNumber": seq})
        ctx.state.store("sns", arn, [e])
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
    topic = sns_topic(ctx, arn)
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
        seq = next_sequence() if arn.endswith(".fifo") else None
        ok_xml.append((eid, mid, seq))
        e = ctx.base_entry()
        e.update(rec)
        e.update({"messageId": mid, "sequenceNumber": seq, "batchEntryId": eid, "index": idx})
        stored.append(e)
    ctx.state.store("sns", arn, stored)
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


def sns_list_topics(ctx, form):
    apply_faults(ctx)
    with ctx.state.lock:
        arns = sorted(a for a in ctx.state.resources["sns"] if a != "*")
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


class Sns(QueryService):
    name = signing_name = "sns"
    model = "sns"
    namespace = SNS_NS
    throttle_fault = (400, "ThrottlingException", "Rate exceeded")
    error500_fault = (500, "InternalError", "Internal Error")

    def match_last(self, ctx):
        return ctx.media_type() == "application/x-www-form-urlencoded"

    def handle(self, ctx):
        return serve_query(ctx)

    def resources(self):
        return {"sns": {}}

    def add_resources(self, res, obj):
        for t in obj.get("sns", []):
            if isinstance(t, dict):
                arn = t.get("arn") or t.get("TopicArn")
                cbd = bool(t.get("contentBasedDeduplication") or
                           t.get("ContentBasedDeduplication"))
            else:
                arn, cbd = str(t), False
            if arn != "*" and not SNS_TOPIC_ARN_RE.match(arn or ""):
                raise ValueError("resources: bad SNS topic ARN %r" % arn)
            res["sns"][arn] = {"contentBasedDeduplication": cbd}

    def describe_resources(self, res):
        return {"sns": [dict({"arn": a}, **v) for a, v in sorted(res["sns"].items())]}


SERVICES = [Sns()]
