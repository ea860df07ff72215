"""IoT: the data plane (service "iot", signing name iotdata; aliases iotdata,
iot-data), REST-JSON POST /topics/{topic}?qos=0|1[&retain=true|false], 200;
and DescribeEndpoint for `fanout register` (service "iot_control", signing
name execute-api), GET /endpoint?endpointType=iot:Data-ATS|iot:Data.
Targets: the topic (decoded); the endpoint type. Received entries: topic,
qos, retain, payload, payloadBase64, contentType, responseTopic,
messageExpiry, userProperties, payloadFormatIndicator, correlationData.
Topics always exist. Resources: {"iotEndpoint":
"xxxx-ats.iot.REGION.amazonaws.com"}. Faults (iot): throttle 429
ThrottlingException, error500 500 InternalFailureException."""

import uuid
from urllib.parse import unquote

from .core import ApiError, Response, Service, apply_faults, b64, text_or_none

IOT_MAX_PAYLOAD = 131072


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
    user_props_decoded = ctx.json_header(
        "x-amz-mqtt5-user-properties",
        ApiError(400, "InvalidRequestException",
                 "x-amz-mqtt5-user-properties must be base64-encoded JSON"))
    apply_faults(ctx)
    e = ctx.base_entry()
    e.update({"topic": topic, "qos": qos, "retain": retain, "payloadBase64": b64(ctx.body),
              "payload": text_or_none(ctx.body), "contentType": ctx.qparam("contentType"),
              "responseTopic": ctx.qparam("responseTopic"), "messageExpiry": expiry,
              "userProperties": user_props_decoded,
              "payloadFormatIndicator": ctx.header("x-amz-mqtt5-payload-format-indicator"),
              "correlationData": ctx.header("x-amz-mqtt5-correlation-data")})
    ctx.state.store("iot", topic, [e])
    return Response(200, {"message": "OK", "traceId": str(uuid.uuid4())}, "application/json",
                    {"x-amzn-RequestId": ctx.request_id})


def iot_describe_endpoint(ctx):
    ctx.operation = "DescribeEndpoint"
    if ctx.method != "GET":
        raise ApiError(405, "MethodNotAllowedException", "DescribeEndpoint is GET /endpoint")
    etype = ctx.qparam("endpointType")
    ctx.target = etype
    apply_faults(ctx)
    with ctx.state.lock:
        host = ctx.state.resources["iotEndpoint"] or ("a1b2c3d4e5f6g7-ats.iot.%s.amazonaws.com"
                                                  % ctx.region)
    if etype in (None, "iot:Data"):
        host = host.replace("-ats.", ".", 1)
    elif etype != "iot:Data-ATS":
        raise ApiError(400, "InvalidRequestException",
                       "Endpoint type %s is not served here" % etype)
    return Response(200, {"endpointAddress": host})


class Iot(Service):
    name = "iot"
    signing_name = "iotdata"
    model = "iot-data"
    iam_prefix = "iot"
    aliases = ("iotdata", "iot-data")

    def match(self, ctx):
        return ctx.path.startswith("/topics/")

    def operation(self, ctx):
        return "Publish"

    def handle(self, ctx):
        return iot_publish(ctx)

    def throttle(self, s):
        return ApiError(s.get("status", 429), s.get("code", "ThrottlingException"),
                        s.get("message", "Rate exceeded"))

    def error500(self, s):
        return ApiError(s.get("status", 500), s.get("code", "InternalFailureException"),
                        s.get("message", "Internal failure"))


class IotControl(Service):
    name = "iot_control"
    signing_name = "execute-api"
    model = "iot"
    iam_prefix = "iot"

    def match(self, ctx):
        return ctx.path == "/endpoint"

    def operation(self, ctx):
        return "DescribeEndpoint"

    def handle(self, ctx):
        return iot_describe_endpoint(ctx)

    def resources(self):
        return {"iotEndpoint": None}

    def add_resources(self, res, obj):
        if obj.get("iotEndpoint"):
            res["iotEndpoint"] = str(obj["iotEndpoint"])

    def describe_resources(self, res):
        return {"iotEndpoint": res["iotEndpoint"]}


SERVICES = [Iot(), IotControl()]
