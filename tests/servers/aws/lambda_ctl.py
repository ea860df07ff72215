"""Lambda control plane ("lambda_ctl"): REST-JSON 2015-03-31, the shapes of
the Lambda API reference (members as in botocore's lambda model), kept in
memory until POST /__reset. Signing name lambda; the data plane (Invoke) and
the resources-based GetFunction stay in lambda_.py.

Operations (method, path):
  Functions  CreateFunction (POST /2015-03-31/functions, 201), ListFunctions
             (GET /2015-03-31/functions/), GetFunction (GET .../functions/F),
             GetFunctionConfiguration (GET .../F/configuration),
             UpdateFunctionCode (PUT .../F/code), UpdateFunctionConfiguration
             (PUT .../F/configuration), DeleteFunction (DELETE .../F, 204);
             ListTags, TagResource, UntagResource (/2017-03-31/tags/ARN).
  Layers     PublishLayerVersion (POST /2018-10-31/layers/L/versions, 201),
             ListLayerVersions (GET .../L/versions, newest first),
             GetLayerVersion, DeleteLayerVersion (GET, DELETE
             .../L/versions/N; delete is idempotent, 204), ListLayers (GET
             /2018-10-31/layers), GetLayerVersionByArn (?find=LayerVersion).
  Mappings   CreateEventSourceMapping (POST /2015-03-31/event-source-mappings/,
             202), ListEventSourceMappings (GET, filters FunctionName and
             EventSourceArn), GetEventSourceMapping, UpdateEventSourceMapping
             (PUT, 202), DeleteEventSourceMapping (DELETE, 202) on .../UUID.
GET /2015-03-31/functions/F is this module's when F is in its store or not
among the "lambda" resources; lambda_.py answers it otherwise.

Checks. CreateFunction: Runtime a known runtime id; PackageType Zip only,
Code.ZipFile (base64 of a zip: starts with "PK", <= 50 MB) or Code.S3Bucket +
S3Key; Handler; Role arn:PARTITION:iam::ACCOUNT:role/NAME; MemorySize
128..10240; Timeout 1..900; Architectures [x86_64] or [arm64]; Environment
names [a-zA-Z][a-zA-Z0-9_]+, not reserved (AWS_REGION, ...), <= 4 KB as JSON;
Layers <= 5, each a layer version of this server; VpcConfig subnet-... and
sg-... ids; 409 ResourceConflictException when the function exists.
UpdateFunctionConfiguration checks the members it is given the same way.
Roles: when state.shared["iam_roles"] (role ARN -> creation time, kept by
the IAM module) holds the role and it is younger than roleDelayMs, or
strictRoles is on and the role is unknown, CreateFunction and
UpdateFunctionConfiguration answer 400 InvalidParameterValueException "The
role defined for the function cannot be assumed by Lambda.".
CodeSha256 is base64(sha256(zip)) (for S3 code: of "s3://bucket/key[?v]").

States, advanced only by GetFunction / GetFunctionConfiguration of the
function: a new function is State Pending (StateReasonCode Creating,
LastUpdateStatus InProgress) for pendingPolls Get calls, then Active
(LastUpdateStatus Successful). UpdateFunctionCode / Configuration set
LastUpdateStatus InProgress (no reason code) for updatePolls Get calls, then
Successful. An update while Pending or InProgress: 409
ResourceConflictException ("The operation cannot be performed at this time.
An update is in progress for resource: ARN" / "... The function is
currently in the following state: Pending"). failCreate: the function ends
State Failed (StateReason, StateReasonCode, LastUpdateStatus Failed);
failUpdate: its updates end LastUpdateStatus Failed (LastUpdateStatusReason,
LastUpdateStatusReasonCode). Mappings: State Creating, then Enabled or
Disabled after esmPolls GetEventSourceMapping calls; an update answers
Enabling / Disabling (Enabled changed) or Updating, settled the same way;
delete answers Deleting and the mapping is gone (404) after esmPolls Gets.
Update or delete of a mapping in a transitional state: 400
ResourceInUseException. DeleteFunction leaves the function's mappings. One mapping per (function, source): a second one is
409 ResourceConflictException (AWS's text, naming the first one's UUID).
Sources: Kinesis streams arn:P:kinesis:R:A:stream/S and DynamoDB streams
arn:P:dynamodb:R:A:table/T/stream/LABEL, StartingPosition required
(AT_TIMESTAMP with StartingPositionTimestamp, Kinesis only).

Control (no signature): POST /__lambda {"pendingPolls": N, "updatePolls": N,
"esmPolls": N, "roleDelayMs": N, "strictRoles": bool, "failCreate": F,
"failUpdate": F, "pageSize": N, "repeatMarker": bool, "roles": {ARN: T}}
sets options (F: a function name, a list of them, or {"function",
"reasonCode", "reason"} objects; null clears; pageSize > 0 caps every List
page so clients must follow NextMarker; repeatMarker true makes a List page
asked for with a Marker answer that same Marker as its NextMarker, a real
marker that never ends the listing; roles adds roles created at epoch
seconds T (null: now) to state.shared["iam_roles"], for tests without the
IAM module); it and GET
/__lambda answer {"options", "functions", "layers", "eventSourceMappings"}.
Defaults (again after POST /__reset): polls 1, roleDelayMs 0, strictRoles
false, pageSize 0, repeatMarker false.

Received entries (service lambda_ctl; target the function name, layer name
or mapping UUID; every call that passed validation and the fault rules):
operation, params (the request's members: the path's and the query's under
their model names, then the body's, Code.ZipFile / Content.ZipFile replaced
by {"sha256": hex, "codeSha256": base64, "size": bytes}), status.
Errors: {"Type": "User", "Message"} with x-amzn-ErrorType:
ResourceNotFoundException 404 ("Function not found: ARN", "The resource you
requested does not exist."), InvalidParameterValueException 400,
ValidationException 400 (model constraints), ResourceConflictException 409,
ResourceInUseException 400; faults as lambda_.py (throttle 429
TooManyRequestsException, error500 500 ServiceException). access_resource()
names the function, layer (version) or event-source-mapping ARN a call acts
on."""

import base64
import binascii
import datetime
import fnmatch
import hashlib
import json
import re
import threading
import time
import uuid
from urllib.parse import unquote

from .core import ApiError, Response, apply_faults, parse_authorization, validation_message
from .lambda_ import (LAMBDA_FULL_ARN_RE, LAMBDA_NAME_RE, LAMBDA_PARTIAL_ARN_RE, Lambda,
                      lambda_error, lambda_exists)

LOCK = threading.RLock()
KEY = "lambda_ctl"
DEFAULTS = {"pendingPolls": 1, "updatePolls": 1, "esmPolls": 1, "roleDelayMs": 0,
            "policyDelayMs": 0,
            "strictRoles": False, "failCreate": {}, "failUpdate": {}, "pageSize": 0,
            "repeatMarker": False}
RUNTIMES = (
    "nodejs", "nodejs4.3", "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x",
    "nodejs14.x", "nodejs16.x", "nodejs18.x", "nodejs20.x", "nodejs22.x", "java8",
    "java8.al2", "java11", "java17", "java21", "python2.7", "python3.6", "python3.7",
    "python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
    "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1", "dotnet6", "dotnet8",
    "nodejs4.3-edge", "go1.x", "ruby2.5", "ruby2.7", "ruby3.2", "ruby3.3", "provided",
    "provided.al2", "provided.al2023")
ARCHITECTURES = ("x86_64", "arm64")
RESERVED_ENV = ("_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION",
                "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API",
                "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")
ROLE_RE = re.compile(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
ENV_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]+$")
LAYER_NAME_RE = re.compile(r"^(?:arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:)?"
                           r"([a-zA-Z0-9_-]+)$")
LAYER_VERSION_ARN_RE = re.compile(r"^arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):layer:"
                                  r"([a-zA-Z0-9_-]+):([0-9]+)$")
KINESIS_RE = re.compile(r"^arn:(aws[a-zA-Z-]*):kinesis:([a-z0-9-]+):(\d{12}):stream/"
                        r"[a-zA-Z0-9_.-]{1,128}$")
DDB_STREAM_RE = re.compile(r"^arn:(aws[a-zA-Z-]*):dynamodb:([a-z0-9-]+):(\d{12}):table/"
                           r"[a-zA-Z0-9_.-]{3,255}/stream/[^/]+$")
ZIP_MAX = 50 * 1024 * 1024
ENV_MAX = 4096
ROLE_MESSAGE = "The role defined for the function cannot be assumed by Lambda."
TRANSITIONAL = ("Creating", "Enabling", "Disabling", "Updating", "Deleting")


# ---------------------------------------------------------------- helpers

def partition(region):
    if (region or "").startswith("cn-"):
        return "aws-cn"
    if (region or "").startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def arn(ctx, rest):
    return "arn:%s:lambda:%s:%s:%s" % (partition(ctx.region), ctx.region, ctx.account, rest)


def not_found(message="The resource you requested does not exist."):
    return lambda_error(404, "ResourceNotFoundException", message)


def invalid(message):
    return lambda_error(400, "InvalidParameterValueException", message)


def conflict(message):
    return lambda_error(409, "ResourceConflictException", message)


def model_error(value, member, constraint):
    msg = validation_message(["Value '%s' at '%s' failed to satisfy constraint: %s"
                              % (value, member, constraint)])
    return ApiError(400, "ValidationException", msg, extra={"message": msg})


def check_range(body, name, member, low, high):
    v = body.get(name)
    if v is None:
        return
    if not isinstance(v, int) or isinstance(v, bool):
        raise model_error(v, member, "Member must be an integer")
    if v < low:
        raise model_error(v, member, "Member must have value greater than or equal to %d" % low)
    if high is not None and v > high:
        raise model_error(v, member, "Member must have value less than or equal to %d" % high)


def lambda_time(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def store(ctx):
    st = ctx.state.data.get(KEY)
    if st is None:
        st = ctx.state.data.setdefault(KEY, {
            "options": json.loads(json.dumps(DEFAULTS)), "functions": {}, "layers": {},
            "esms": {}, "seq": 0})
    return st


def json_body(ctx):
    if not ctx.body.strip():
        return {}
    try:
        body = json.loads(ctx.body)
    except ValueError as e:
        raise lambda_error(400, "InvalidRequestContentException",
                           "Could not parse request body into json: %s" % e)
    if not isinstance(body, dict):
        raise lambda_error(400, "InvalidRequestContentException",
                           "The request body must be a JSON object")
    return body


def decode_zip(value, member):
    """(bytes, digest info) of a base64 ZipFile member."""
    if not isinstance(value, str):
        raise invalid("%s must be a base64-encoded zip file" % member)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Could not unzip uploaded file. Please check your file, then try to upload "
                      "again. (%s is not valid base64)" % member)
    if len(data) > ZIP_MAX:
        raise lambda_error(413, "RequestEntityTooLargeException",
                           "Zipped file size (%d bytes) is larger than the %d bytes %s allows"
                           % (len(data), ZIP_MAX, member))
    if not data.startswith(b"PK"):
        raise invalid("Could not unzip uploaded file. Please check your file, then try to upload "
                      "again. (%s does not start with a zip signature \"PK\")" % member)
    return data


def code_of(code, member):
    """{sha256, codeSha256, size, data or s3} of a FunctionCode /
    LayerVersionContentInput."""
    if not isinstance(code, dict):
        raise invalid("%s is required: ZipFile or S3Bucket and S3Key" % member)
    if code.get("ZipFile") is not None:
        data = decode_zip(code["ZipFile"], member + ".ZipFile")
        digest = hashlib.sha256(data).digest()
        return {"sha256": digest.hex(), "codeSha256": base64.b64encode(digest).decode(),
                "size": len(data)}
    if code.get("S3Bucket") and code.get("S3Key"):
        ref = "s3://%s/%s" % (code["S3Bucket"], code["S3Key"])
        if code.get("S3ObjectVersion"):
            ref += "?versionId=" + code["S3ObjectVersion"]
        digest = hashlib.sha256(ref.encode()).digest()
        return {"sha256": digest.hex(), "codeSha256": base64.b64encode(digest).decode(),
                "size": 0, "s3": ref}
    if code.get("ImageUri"):
        raise invalid("%s.ImageUri: this test server serves PackageType Zip only" % member)
    raise invalid("%s needs ZipFile (base64 of a zip) or both S3Bucket and S3Key" % member)


def logged_params(ctx, body, path_params):
    """The request's members for the received entry, zips summarised."""
    out = dict(path_params)
    for k, v in ctx.query:
        out.setdefault(k, v)
    for k, v in body.items():
        if k in ("Code", "Content") and isinstance(v, dict) and v.get("ZipFile") is not None:
            v = dict(v)
            try:
                data = base64.b64decode(v["ZipFile"])
                digest = hashlib.sha256(data).digest()
                v["ZipFile"] = {"sha256": digest.hex(),
                                "codeSha256": base64.b64encode(digest).decode(),
                                "size": len(data)}
            except (binascii.Error, ValueError, TypeError):
                v["ZipFile"] = {"invalid": True}
        out[k] = v
    return out


def accept(ctx, body, **path_params):
    """Consult the fault rules; the call is then recorded (see handle())."""
    apply_faults(ctx)
    ctx.ctl_params = logged_params(ctx, body, path_params)


def paginate(ctx, items, default, limit, member):
    """(page, next marker): items are (position, value) in page order."""
    raw = ctx.qparam("MaxItems")
    size = default
    if raw is not None:
        try:
            size = int(raw)
        except ValueError:
            raise model_error(raw, "maxItems", "Member must be an integer")
        if size < 1 or size > limit:
            raise model_error(raw, "maxItems", "Member must have value between 1 and %d" % limit)
    cap = int(store(ctx)["options"].get("pageSize") or 0)
    if cap > 0:
        size = min(size, cap)
    marker = ctx.qparam("Marker")
    start = 0
    if marker:
        try:
            m = json.loads(base64.b64decode(marker, validate=True))
            after, op = m["after"], m["op"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise invalid("Marker %r is not a marker this server gave (%s)" % (marker, member))
        if op != ctx.operation:
            raise invalid("Marker %r was given by %s, not %s" % (marker, op, ctx.operation))
        start = len([1 for pos, _ in items if pos <= after])
    page = items[start:start + size]
    nxt = None
    if start + size < len(items):
        nxt = base64.b64encode(json.dumps({"after": page[-1][0], "op": ctx.operation})
                               .encode()).decode()
    if marker and store(ctx)["options"].get("repeatMarker"):
        nxt = marker    # the page it was given, again: a client must not loop
    return [v for _, v in page], nxt


# ---------------------------------------------------------------- functions

def parse_function_ref(ctx, ref, what="functionName"):
    """(name, qualifier) of a function name / ARN / partial ARN of this
    region and account; 404 when it names another region or account."""
    fm = LAMBDA_FULL_ARN_RE.match(ref)
    pm = LAMBDA_PARTIAL_ARN_RE.match(ref)
    nm = LAMBDA_NAME_RE.match(ref)
    if fm:
        region, account, name, qual = fm.group(2), fm.group(3), fm.group(4), fm.group(5)
    elif pm:
        region, account, name, qual = ctx.region, pm.group(1), pm.group(2), pm.group(3)
    elif nm:
        region, account, name, qual = ctx.region, ctx.account, nm.group(1), nm.group(2)
    else:
        raise model_error(ref, what, "Member must satisfy regular expression pattern: "
                          "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
                          "(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?")
    if len(name) > 64:
        raise model_error(name, what, "Member must have length less than or equal to 64")
    if region != ctx.region or account != ctx.account:
        raise not_found("Function not found: arn:%s:lambda:%s:%s:function:%s"
                        % (partition(region), region, account, name))
    return name, qual


def body_function(ctx, body):
    """(FunctionName, name, qualifier) of a body's FunctionName, the call's
    target."""
    ref = body.get("FunctionName")
    if not isinstance(ref, str) or not ref:
        raise model_error(ref, "functionName", "Member must not be null")
    name, qual = parse_function_ref(ctx, ref)
    ctx.target = name
    return ref, name, qual


def function_arn(ctx, name):
    return arn(ctx, "function:" + name)


def find_function(ctx, name, qual=None):
    """The stored function (LOCK held) or 404."""
    if qual is None:
        qual = ctx.qparam("Qualifier")
    fn = store(ctx)["functions"].get((ctx.region, ctx.account, name))
    if fn is None or (qual not in (None, "", "$LATEST")):
        raise not_found("Function not found: %s%s" % (function_arn(ctx, name),
                                                      (":" + qual) if qual else ""))
    return fn


def role_created(value):
    """A creation time kept by the IAM module as epoch seconds."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    value = float(value)
    return value / 1000.0 if value > 1e11 else value


def check_role(ctx, role):
    opts = store(ctx)["options"]
    roles = getattr(ctx.state, "shared", {}).get("iam_roles") or {}
    with ctx.state.lock:
        created = roles.get(role)
    if created is None:
        if opts.get("strictRoles"):
            raise invalid(ROLE_MESSAGE)
        return
    if time.time() - role_created(created) < float(opts.get("roleDelayMs") or 0) / 1000.0:
        raise invalid(ROLE_MESSAGE)


STREAM_ACCESS_MESSAGE = ("Cannot access stream %s. Please ensure the role can perform the "
                         "GetRecords, GetShardIterator, DescribeStream, and ListStreams "
                         "Actions on your stream.")


def policy_allows(doc, action, resource):
    """Whether an IAM policy document (JSON text) has an Allow statement
    for `action` on `resource` (wildcards * and ? in both, as IAM matches;
    Deny statements and conditions are not modelled)."""
    try:
        statements = json.loads(doc).get("Statement", [])
    except (ValueError, AttributeError):
        return False
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        resources = st.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in actions) and \
                any(fnmatch.fnmatchcase(resource, str(r)) for r in resources):
            return True
    return False


def check_stream_access(ctx, fn_config, source):
    """CreateEventSourceMapping: Lambda checks that the function's role can
    read the stream. Modelled when the role is one the IAM module holds:
    one of its inline policies, put at least policyDelayMs ago (IAM's
    propagation), must allow <service>:GetRecords on the stream."""
    role_arn = fn_config.get("Role")
    roles = getattr(ctx.state, "shared", {}).get("iam_role_objects") or {}
    with ctx.state.lock:
        role = roles.get(role_arn)
        if role is None:
            return
        delay = float(store(ctx)["options"].get("policyDelayMs") or 0) / 1000.0
        now = time.time()
        docs = [d for n, d in role["inline"].items()
                if now - role.get("inline_put", {}).get(n, 0) >= delay]
    service = "kinesis" if KINESIS_RE.match(source) else "dynamodb"
    if not any(policy_allows(d, service + ":GetRecords", source) for d in docs):
        raise invalid(STREAM_ACCESS_MESSAGE % source)


def validate_config(ctx, body, creating):
    """The FunctionConfiguration members CreateFunction and
    UpdateFunctionConfiguration share; returns the layer ARNs to check."""
    runtime = body.get("Runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise invalid("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy "
                      "enum value set: [%s] or be a valid ARN" % (runtime, ", ".join(RUNTIMES)))
    if "Role" in body or creating:
        role = body.get("Role")
        if not isinstance(role, str) or not ROLE_RE.match(role):
            raise model_error(role, "role", "Member must satisfy regular expression pattern: "
                              "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+")
    handler = body.get("Handler")
    if handler is not None and (not isinstance(handler, str) or not re.fullmatch(r"[^\s]+",
                                                                                 handler)
                                or len(handler) > 128):
        raise model_error(handler, "handler", "Member must satisfy regular expression pattern: "
                          "[^\\s]+ and have length less than or equal to 128")
    check_range(body, "MemorySize", "memorySize", 128, 10240)
    check_range(body, "Timeout", "timeout", 1, None)
    if isinstance(body.get("Timeout"), int) and body["Timeout"] > 900:
        raise invalid("Timeout %d is more than the 900 seconds a function may run"
                      % body["Timeout"])
    desc = body.get("Description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 256):
        raise model_error(desc, "description", "Member must have length less than or equal "
                          "to 256")
    env = body.get("Environment")
    if env is not None:
        variables = (env or {}).get("Variables") or {}
        if not isinstance(variables, dict):
            raise invalid("Environment.Variables must be a map of names to strings")
        bad = [k for k in variables if not ENV_NAME_RE.match(k)]
        if bad:
            raise model_error(bad[0], "environment.variables", "Map keys must satisfy "
                              "constraint: [Member must satisfy regular expression pattern: "
                              "[a-zA-Z]([a-zA-Z0-9_])+]")
        reserved = [k for k in variables if k in RESERVED_ENV]
        if reserved:
            raise invalid("Lambda was unable to configure your environment variables because "
                          "the environment variables you have provided contains reserved keys "
                          "that are currently not supported for modification. Reserved keys "
                          "used in this request: %s" % ", ".join(reserved))
        if not all(isinstance(v, str) for v in variables.values()):
            raise invalid("Environment.Variables values must be strings")
        measured = json.dumps(variables, separators=(",", ":"))
        if len(measured.encode()) > ENV_MAX:
            raise invalid("Lambda was unable to configure your environment variables because "
                          "the environment variables you have provided exceeded the 4KB limit. "
                          "String measured: %s" % measured)
    layers = body.get("Layers")
    if layers is not None:
        if not isinstance(layers, list):
            raise invalid("Layers must be a list of layer version ARNs")
        if len(layers) > 5:
            raise invalid("Cannot reference more than 5 layers (%d given)." % len(layers))
        for la in layers:
            if not isinstance(la, str) or not LAYER_VERSION_ARN_RE.match(la):
                raise model_error(la, "layers", "Member must satisfy regular expression pattern:"
                                  " arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:"
                                  "[a-zA-Z0-9-_]+:[0-9]+")
    vpc = body.get("VpcConfig")
    if vpc is not None:
        subnets = vpc.get("SubnetIds") or []
        groups = vpc.get("SecurityGroupIds") or []
        if len(subnets) > 16 or len(groups) > 5:
            raise model_error(subnets if len(subnets) > 16 else groups, "vpcConfig",
                              "at most 16 SubnetIds and 5 SecurityGroupIds")
        for s in subnets:
            if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", str(s)):
                raise invalid("Error occurred while DescribeSubnets. EC2 Error Code: "
                              "InvalidSubnetID.NotFound. EC2 Error Message: The subnet ID '%s' "
                              "does not exist" % s)
        for g in groups:
            if not re.fullmatch(r"sg-[0-9a-f]{8,17}", str(g)):
                raise invalid("Error occurred while DescribeSecurityGroups. EC2 Error Code: "
                              "InvalidGroup.NotFound. EC2 Error Message: The security group "
                              "'%s' does not exist" % g)
        if subnets and not groups:
            raise invalid("VpcConfig: SecurityGroupIds are required with SubnetIds")
    return layers or []


def layer_refs(ctx, layers):
    """[{Arn, CodeSize}] of layer version ARNs, each one of this server's
    (LOCK held)."""
    out = []
    for la in layers:
        m = LAYER_VERSION_ARN_RE.match(la)
        layer = store(ctx)["layers"].get((m.group(2), m.group(3), m.group(4)))
        version = layer["versions"].get(int(m.group(5))) if layer else None
        if version is None:
            raise invalid("Layer version %s does not exist." % la)
        out.append({"Arn": la, "CodeSize": version["code"]["size"]})
    return out


def apply_config(fn, body):
    c = fn["config"]
    for k in ("Runtime", "Role", "Handler", "Description", "Timeout", "MemorySize"):
        if k in body:
            c[k] = body[k]
    if "Environment" in body:
        variables = dict(((body["Environment"] or {}).get("Variables")) or {})
        c["Environment"] = {"Variables": variables} if variables else None
    if "VpcConfig" in body:
        v = body["VpcConfig"] or {}
        subnets, groups = list(v.get("SubnetIds") or []), list(v.get("SecurityGroupIds") or [])
        vpc_id = ("vpc-" + hashlib.sha256(",".join(sorted(subnets)).encode()).hexdigest()[:17]
                  if subnets else "")
        c["VpcConfig"] = {"SubnetIds": subnets, "SecurityGroupIds": groups, "VpcId": vpc_id}
    for k in ("TracingConfig", "DeadLetterConfig", "KMSKeyArn", "EphemeralStorage"):
        if k in body:
            c[k] = body[k]


def configuration(fn):
    c = fn["config"]
    out = {"FunctionName": fn["name"], "FunctionArn": fn["arn"]}
    for k in ("Runtime", "Role", "Handler"):
        if c.get(k) is not None:
            out[k] = c[k]
    out.update({"CodeSize": fn["code"]["size"], "Description": c.get("Description") or "",
                "Timeout": c.get("Timeout", 3), "MemorySize": c.get("MemorySize", 128),
                "LastModified": lambda_time(fn["modified"]), "CodeSha256": fn["code"]["codeSha256"],
                "Version": "$LATEST", "RevisionId": fn["revision"],
                "TracingConfig": c.get("TracingConfig") or {"Mode": "PassThrough"},
                "PackageType": "Zip", "Architectures": c["Architectures"],
                "EphemeralStorage": c.get("EphemeralStorage") or {"Size": 512}})
    for k in ("Environment", "VpcConfig", "DeadLetterConfig", "KMSKeyArn"):
        if c.get(k) is not None:
            out[k] = c[k]
    if c.get("Layers"):
        out["Layers"] = c["Layers"]
    out["State"] = fn["state"]
    if fn.get("state_reason"):
        out["StateReason"], out["StateReasonCode"] = fn["state_reason"]
    out["LastUpdateStatus"] = fn["update"]
    if fn.get("update_reason"):
        out["LastUpdateStatusReason"], out["LastUpdateStatusReasonCode"] = fn["update_reason"]
    return out


def failure_of(opts, key, name, default_code, default_reason):
    spec = opts.get(key, {}).get(name)
    if spec is None:
        return None
    return (spec.get("reason") or default_reason, spec.get("reasonCode") or default_code)


def settle(fn):
    """One Get call on the function: a transitional state advances."""
    if fn["state"] != "Pending" and fn["update"] != "InProgress":
        return
    if fn["polls"] > 0:
        fn["polls"] -= 1
        return
    fail = fn.pop("fail", None)
    if fn["state"] == "Pending":
        if fail:
            fn["state"], fn["update"] = "Failed", "Failed"
            fn["state_reason"] = fn["update_reason"] = fail
        else:
            fn["state"], fn["update"] = "Active", "Successful"
            fn["state_reason"] = fn["update_reason"] = None
    elif fail:
        fn["update"], fn["update_reason"] = "Failed", fail
    else:
        fn["update"], fn["update_reason"] = "Successful", None


def check_architectures(archs):
    if archs is not None and (not isinstance(archs, list) or len(archs) != 1
                              or archs[0] not in ARCHITECTURES):
        raise model_error(archs, "architectures", "Member must have length 1 and satisfy enum "
                          "value set: [x86_64, arm64]")


def function_to_update(ctx, name, qual, body):
    """The stored function an Update* call names (LOCK held), its RevisionId
    checked."""
    fn = find_function(ctx, name, qual)
    rev = body.get("RevisionId")
    if rev and rev != fn["revision"]:
        raise lambda_error(412, "PreconditionFailedException",
                           "The Revision Id provided does not match the latest Revision Id. "
                           "Call the GetFunction/GetAlias API to retrieve the latest "
                           "Revision Id")
    return fn


def start_update(ctx, fn):
    """An Update* call: 409 while busy, else LastUpdateStatus InProgress."""
    if fn["state"] == "Pending":
        raise conflict("The operation cannot be performed at this time. The function is "
                       "currently in the following state: Pending")
    if fn["update"] == "InProgress":
        raise conflict("The operation cannot be performed at this time. An update is in "
                       "progress for resource: %s" % fn["arn"])
    opts = store(ctx)["options"]
    fn["update"], fn["update_reason"] = "InProgress", None
    fn["polls"] = int(opts["updatePolls"])
    fn["fail"] = failure_of(opts, "failUpdate", fn["name"], "InvalidConfiguration",
                            "failUpdate: the test server was told to fail updates of %s"
                            % fn["name"])
    fn["modified"] = time.time()
    fn["revision"] = str(uuid.uuid4())
    settle_now(fn)


def settle_now(fn):
    if fn["polls"] <= 0:
        settle(fn)


def create_function(ctx, m):
    body = json_body(ctx)
    ref, name, qual = body_function(ctx, body)
    if qual:
        raise invalid("CreateFunction takes an unqualified function name, not %s" % ref)
    ptype = body.get("PackageType") or "Zip"
    if ptype != "Zip":
        raise invalid("PackageType %s: this test server serves PackageType Zip only" % ptype)
    if not body.get("Runtime"):
        raise invalid("Runtime is required for .zip file archive functions (PackageType Zip)")
    if not body.get("Handler"):
        raise invalid("Handler is required for .zip file archive functions (PackageType Zip)")
    code = code_of(body.get("Code"), "Code")
    archs = body.get("Architectures") or ["x86_64"]
    check_architectures(archs)
    layers = validate_config(ctx, body, True)
    tags = body.get("Tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise invalid("Tags must be a map of strings")
    accept(ctx, body)
    with LOCK:
        st = store(ctx)
        key = (ctx.region, ctx.account, name)
        if key in st["functions"]:
            raise conflict("Function already exist: %s" % name)
        check_role(ctx, body["Role"])
        refs = layer_refs(ctx, layers)
        opts = st["options"]
        fn = {"name": name, "arn": function_arn(ctx, name), "code": code, "tags": dict(tags),
              "config": {"Architectures": list(archs), "Layers": refs},
              "modified": time.time(), "revision": str(uuid.uuid4()), "state": "Pending",
              "state_reason": ("The function is being created.", "Creating"),
              "update": "InProgress",
              "update_reason": ("The function is being created.", "Creating"),
              "polls": int(opts["pendingPolls"]),
              "fail": failure_of(opts, "failCreate", name, "InternalError",
                                 "failCreate: the test server was told to fail the creation "
                                 "of %s" % name)}
        apply_config(fn, body)
        settle_now(fn)
        st["functions"][key] = fn
        return Response(201, configuration(fn), "application/json",
                        {"x-amzn-RequestId": ctx.request_id})


def function_call(ctx, m):
    """The function a /functions/F... call names: (name, qualifier)."""
    name, qual = parse_function_ref(ctx, unquote(m.group(1)))
    ctx.target = name
    return name, qual


def get_function(ctx, m):
    name, qual = function_call(ctx, m)
    accept(ctx, {}, FunctionName=name)
    with LOCK:
        fn = find_function(ctx, name, qual)
        settle(fn)
        region = ctx.region
        loc = ("https://awslambda-%s-tasks.s3.%s.amazonaws.com/snapshots/%s/%s-%s"
               "?X-Amz-Security-Token=test&X-Amz-Expires=600"
               % (region, region, ctx.account, name, fn["revision"]))
        out = {"Configuration": configuration(fn),
               "Code": {"RepositoryType": "S3", "Location": loc}}
        if fn["tags"]:
            out["Tags"] = dict(fn["tags"])
        return Response(200, out)


def get_function_configuration(ctx, m):
    name, qual = function_call(ctx, m)
    accept(ctx, {}, FunctionName=name)
    with LOCK:
        fn = find_function(ctx, name, qual)
        settle(fn)
        return Response(200, configuration(fn))


def update_function_code(ctx, m):
    name, qual = function_call(ctx, m)
    body = json_body(ctx)
    code = code_of(body, "ZipFile")
    archs = body.get("Architectures")
    check_architectures(archs)
    accept(ctx, body, FunctionName=name)
    with LOCK:
        fn = function_to_update(ctx, name, qual, body)
        if body.get("DryRun"):
            return Response(200, configuration(fn))
        start_update(ctx, fn)
        fn["code"] = code
        if archs:
            fn["config"]["Architectures"] = list(archs)
        return Response(200, configuration(fn))


def update_function_configuration(ctx, m):
    name, qual = function_call(ctx, m)
    body = json_body(ctx)
    layers = validate_config(ctx, body, False)
    accept(ctx, body, FunctionName=name)
    with LOCK:
        fn = function_to_update(ctx, name, qual, body)
        if "Role" in body:
            check_role(ctx, body["Role"])
        refs = layer_refs(ctx, layers) if "Layers" in body else None
        start_update(ctx, fn)
        apply_config(fn, body)
        if refs is not None:
            fn["config"]["Layers"] = refs
        return Response(200, configuration(fn))


def delete_function(ctx, m):
    name, qual = function_call(ctx, m)
    accept(ctx, {}, FunctionName=name)
    with LOCK:
        find_function(ctx, name, qual)
        del store(ctx)["functions"][(ctx.region, ctx.account, name)]
    return Response(204, b"", "application/json", {"x-amzn-RequestId": ctx.request_id})


def list_functions(ctx, m):
    accept(ctx, {})
    with LOCK:
        fns = sorted((f for (r, a, _), f in store(ctx)["functions"].items()
                      if (r, a) == (ctx.region, ctx.account)), key=lambda f: f["name"])
        page, nxt = paginate(ctx, [(f["name"], configuration(f)) for f in fns], 50, 10000,
                             "ListFunctions")
    out = {"Functions": page}
    if nxt:
        out["NextMarker"] = nxt
    return Response(200, out)


def tagged_function(ctx, m):
    res = unquote(m.group(1))
    fm = LAMBDA_FULL_ARN_RE.match(res)
    if not fm or fm.group(5):
        raise invalid("Tags are kept on unqualified function ARNs; %s is not one" % res)
    ctx.target = fm.group(4)
    return res, fm


def list_tags(ctx, m):
    res, fm = tagged_function(ctx, m)
    accept(ctx, {}, Resource=res)
    with LOCK:
        fn = find_function(ctx, *parse_function_ref(ctx, res))
        return Response(200, {"Tags": dict(fn["tags"])})


def tag_resource(ctx, m):
    res, fm = tagged_function(ctx, m)
    body = json_body(ctx)
    tags = body.get("Tags")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise invalid("Tags must be a map of strings")
    accept(ctx, body, Resource=res)
    with LOCK:
        fn = find_function(ctx, *parse_function_ref(ctx, res))
        fn["tags"].update(tags)
    return Response(204, b"", "application/json", {"x-amzn-RequestId": ctx.request_id})


def untag_resource(ctx, m):
    res, fm = tagged_function(ctx, m)
    keys = [v for k, v in ctx.query if k == "tagKeys"]
    accept(ctx, {}, Resource=res)
    with LOCK:
        fn = find_function(ctx, *parse_function_ref(ctx, res))
        for k in keys:
            fn["tags"].pop(k, None)
    return Response(204, b"", "application/json", {"x-amzn-RequestId": ctx.request_id})


# ---------------------------------------------------------------- layers

def layer_name(ctx, raw):
    ref = unquote(raw)
    m = LAYER_NAME_RE.match(ref)
    if not m or len(ref) > 140:
        raise model_error(ref, "layerName", "Member must satisfy regular expression pattern: "
                          "(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:"
                          "[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+")
    if m.group(1) and (m.group(1), m.group(2)) != (ctx.region, ctx.account):
        raise not_found()
    ctx.target = m.group(3)
    return m.group(3)


def layer_version_out(ctx, name, v, full):
    out = {"LayerVersionArn": arn(ctx, "layer:%s:%d" % (name, v["version"])),
           "Version": v["version"], "Description": v["description"],
           "CreatedDate": lambda_time(v["created"])}
    for k in ("CompatibleRuntimes", "CompatibleArchitectures"):
        if v[k]:
            out[k] = list(v[k])
    if v["license"] is not None:
        out["LicenseInfo"] = v["license"]
    if full:
        out["LayerArn"] = arn(ctx, "layer:" + name)
        out["Content"] = {
            "Location": "https://awslambda-%s-layers.s3.%s.amazonaws.com/snapshots/%s/%s-%s"
                        % (ctx.region, ctx.region, ctx.account, name, v["uuid"]),
            "CodeSha256": v["code"]["codeSha256"], "CodeSize": v["code"]["size"]}
    return out


def publish_layer_version(ctx, m):
    name = layer_name(ctx, m.group(1))
    body = json_body(ctx)
    code = code_of(body.get("Content"), "Content")
    runtimes = body.get("CompatibleRuntimes") or []
    if not isinstance(runtimes, list) or len(runtimes) > 15:
        raise model_error(runtimes, "compatibleRuntimes", "Member must have length less than "
                          "or equal to 15")
    for r in runtimes:
        if r not in RUNTIMES:
            raise invalid("CompatibleRuntimes: %r is not a runtime id (%s)"
                          % (r, ", ".join(RUNTIMES)))
    archs = body.get("CompatibleArchitectures") or []
    if not isinstance(archs, list) or len(archs) > 2 or \
            any(a not in ARCHITECTURES for a in archs):
        raise model_error(archs, "compatibleArchitectures", "Member must have length less than "
                          "or equal to 2 and satisfy enum value set: [x86_64, arm64]")
    desc = body.get("Description") or ""
    if len(desc) > 256:
        raise model_error(desc, "description", "Member must have length less than or equal "
                          "to 256")
    lic = body.get("LicenseInfo")
    if lic is not None and len(lic) > 512:
        raise model_error(lic, "licenseInfo", "Member must have length less than or equal to 512")
    accept(ctx, body, LayerName=name)
    with LOCK:
        layer = store(ctx)["layers"].setdefault((ctx.region, ctx.account, name),
                                                {"next": 1, "versions": {}})
        v = {"version": layer["next"], "description": desc, "created": time.time(),
             "CompatibleRuntimes": list(runtimes), "CompatibleArchitectures": list(archs),
             "license": lic, "code": code, "uuid": str(uuid.uuid4())}
        layer["next"] += 1
        layer["versions"][v["version"]] = v
        return Response(201, layer_version_out(ctx, name, v, True), "application/json",
                        {"x-amzn-RequestId": ctx.request_id})


def find_layer_version(ctx, name, number):
    layer = store(ctx)["layers"].get((ctx.region, ctx.account, name))
    v = layer["versions"].get(number) if layer else None
    if v is None:
        raise not_found()
    return v


def get_layer_version(ctx, m):
    name = layer_name(ctx, m.group(1))
    accept(ctx, {}, LayerName=name, VersionNumber=int(m.group(2)))
    with LOCK:
        v = find_layer_version(ctx, name, int(m.group(2)))
        return Response(200, layer_version_out(ctx, name, v, True))


def get_layer_version_by_arn(ctx, m):
    ref = ctx.qparam("Arn") or ""
    lm = LAYER_VERSION_ARN_RE.match(ref)
    if not lm:
        raise model_error(ref, "arn", "Member must satisfy regular expression pattern: "
                          "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:"
                          "[0-9]+")
    ctx.target = lm.group(4)
    accept(ctx, {})
    if (lm.group(2), lm.group(3)) != (ctx.region, ctx.account):
        raise not_found()
    with LOCK:
        v = find_layer_version(ctx, lm.group(4), int(lm.group(5)))
        return Response(200, layer_version_out(ctx, lm.group(4), v, True))


def delete_layer_version(ctx, m):
    name = layer_name(ctx, m.group(1))
    accept(ctx, {}, LayerName=name, VersionNumber=int(m.group(2)))
    with LOCK:
        layer = store(ctx)["layers"].get((ctx.region, ctx.account, name))
        if layer:
            layer["versions"].pop(int(m.group(2)), None)
    return Response(204, b"", "application/json", {"x-amzn-RequestId": ctx.request_id})


def version_matches(ctx, v):
    rt, arch = ctx.qparam("CompatibleRuntime"), ctx.qparam("CompatibleArchitecture")
    return ((rt is None or rt in v["CompatibleRuntimes"])
            and (arch is None or arch in v["CompatibleArchitectures"]))


def list_layer_versions(ctx, m):
    name = layer_name(ctx, m.group(1))
    accept(ctx, {}, LayerName=name)
    with LOCK:
        layer = store(ctx)["layers"].get((ctx.region, ctx.account, name)) or {"versions": {}}
        items = [(-n, layer_version_out(ctx, name, v, False))
                 for n, v in sorted(layer["versions"].items(), reverse=True)
                 if version_matches(ctx, v)]
        page, nxt = paginate(ctx, items, 50, 50, "ListLayerVersions")
    out = {"LayerVersions": page}
    if nxt:
        out["NextMarker"] = nxt
    return Response(200, out)


def list_layers(ctx, m):
    accept(ctx, {})
    with LOCK:
        items = []
        for (r, a, name), layer in sorted(store(ctx)["layers"].items()):
            if (r, a) != (ctx.region, ctx.account):
                continue
            matching = [v for n, v in sorted(layer["versions"].items(), reverse=True)
                        if version_matches(ctx, v)]
            if matching:
                items.append((name, {"LayerName": name, "LayerArn": arn(ctx, "layer:" + name),
                                     "LatestMatchingVersion":
                                     layer_version_out(ctx, name, matching[0], False)}))
        page, nxt = paginate(ctx, items, 50, 50, "ListLayers")
    out = {"Layers": page}
    if nxt:
        out["NextMarker"] = nxt
    return Response(200, out)


# ---------------------------------------------------------------- event source mappings

ESM_RANGES = (("BatchSize", "batchSize", 1, 10000),
              ("ParallelizationFactor", "parallelizationFactor", 1, 10),
              ("MaximumRetryAttempts", "maximumRetryAttempts", -1, 10000),
              ("MaximumBatchingWindowInSeconds", "maximumBatchingWindowInSeconds", 0, 300),
              ("MaximumRecordAgeInSeconds", "maximumRecordAgeInSeconds", -1, 604800),
              ("TumblingWindowInSeconds", "tumblingWindowInSeconds", 0, 900))
ESM_SETTINGS = ("BatchSize", "ParallelizationFactor", "MaximumRetryAttempts",
                "MaximumBatchingWindowInSeconds", "MaximumRecordAgeInSeconds",
                "TumblingWindowInSeconds", "BisectBatchOnFunctionError",
                "FunctionResponseTypes", "DestinationConfig", "FilterCriteria")


def validate_esm_settings(body):
    for member, name, low, high in ESM_RANGES:
        check_range(body, member, name, low, high)
    frt = body.get("FunctionResponseTypes")
    if frt is not None and (not isinstance(frt, list)
                            or any(t != "ReportBatchItemFailures" for t in frt)):
        raise model_error(frt, "functionResponseTypes", "Member must satisfy enum value set: "
                          "[ReportBatchItemFailures]")
    for b in ("BisectBatchOnFunctionError", "Enabled"):
        if b in body and not isinstance(body[b], bool):
            raise model_error(body[b], b[0].lower() + b[1:], "Member must be a boolean")


def esm_arn(ctx, u):
    return arn(ctx, "event-source-mapping:" + u)


def esm_out(e):
    out = {"UUID": e["uuid"], "StartingPosition": e["StartingPosition"],
           "EventSourceArn": e["source"], "FunctionArn": e["function_arn"],
           "LastModified": e["modified"], "LastProcessingResult": "No records processed",
           "State": e["state"], "StateTransitionReason": "USER_INITIATED"}
    if e.get("StartingPositionTimestamp") is not None:
        out["StartingPositionTimestamp"] = e["StartingPositionTimestamp"]
    for k in ESM_SETTINGS:
        if e.get(k) is not None:
            out[k] = e[k]
    return out


def esm_function(ctx, ref):
    """(name, ARN) of the mapping's function, which must exist (LOCK held)."""
    name, qual = parse_function_ref(ctx, ref)
    find_function(ctx, name, qual or "")
    return name, function_arn(ctx, name)


def esm_settle(ctx, e):
    """One GetEventSourceMapping call: a transitional state advances.
    Returns False when the mapping is gone."""
    if e["state"] not in TRANSITIONAL:
        return True
    if e["polls"] > 0:
        e["polls"] -= 1
        return True
    if e["state"] == "Deleting":
        store(ctx)["esms"].pop(e["uuid"], None)
        return False
    e["state"] = "Enabled" if e["enabled"] else "Disabled"
    return True


def esm_start(ctx, e, state):
    e["state"], e["polls"] = state, int(store(ctx)["options"]["esmPolls"])
    e["modified"] = time.time()
    if e["polls"] <= 0:
        esm_settle(ctx, e)


def create_event_source_mapping(ctx, m):
    body = json_body(ctx)
    fref, fname, _ = body_function(ctx, body)
    source = body.get("EventSourceArn")
    if not isinstance(source, str) or not (KINESIS_RE.match(source)
                                           or DDB_STREAM_RE.match(source)):
        raise invalid("EventSourceArn %r: this test server maps Kinesis streams "
                      "(arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) and DynamoDB streams "
                      "(arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL)" % source)
    pos = body.get("StartingPosition")
    if pos is None:
        raise invalid("StartingPosition is required for Kinesis and DynamoDB Streams event "
                      "sources (LATEST, TRIM_HORIZON or AT_TIMESTAMP)")
    if pos not in ("LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"):
        raise model_error(pos, "startingPosition", "Member must satisfy enum value set: "
                          "[TRIM_HORIZON, LATEST, AT_TIMESTAMP]")
    if pos == "AT_TIMESTAMP" and (body.get("StartingPositionTimestamp") is None
                                  or not KINESIS_RE.match(source)):
        raise invalid("StartingPosition AT_TIMESTAMP needs StartingPositionTimestamp and a "
                      "Kinesis stream")
    validate_esm_settings(body)
    accept(ctx, body)
    with LOCK:
        fname, farn = esm_function(ctx, fref)
        fn_name, qual = parse_function_ref(ctx, fref)
        check_stream_access(ctx, find_function(ctx, fn_name, qual or "")["config"], source)
        st = store(ctx)
        for other in st["esms"].values():
            if other["function_arn"] == farn and other["source"] == source:
                raise conflict("The event source arn (\" %s \") and function (\" %s \") "
                               "provided mapping already exists. Please update or delete the "
                               "existing mapping with UUID %s" % (source, fname, other["uuid"]))
        st["seq"] += 1
        e = {"uuid": str(uuid.uuid4()), "seq": st["seq"], "region": ctx.region,
             "account": ctx.account, "function_arn": farn, "source": source,
             "StartingPosition": pos,
             "StartingPositionTimestamp": body.get("StartingPositionTimestamp"),
             "enabled": body.get("Enabled", True), "BatchSize": 100,
             "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
             "MaximumRecordAgeInSeconds": -1, "BisectBatchOnFunctionError": False,
             "MaximumRetryAttempts": -1, "TumblingWindowInSeconds": 0,
             "FunctionResponseTypes": [], "DestinationConfig": {"OnFailure": {}}}
        for k in ESM_SETTINGS:
            if body.get(k) is not None:
                e[k] = body[k]
        st["esms"][e["uuid"]] = e
        ctx.target = e["uuid"]
        esm_start(ctx, e, "Creating")
        out = esm_out(e)
        out["State"] = "Creating"
        return Response(202, out, "application/json", {"x-amzn-RequestId": ctx.request_id})


def find_esm(ctx, u):
    e = store(ctx)["esms"].get(u)
    if e is None or (e["region"], e["account"]) != (ctx.region, ctx.account):
        raise not_found()
    return e


def get_event_source_mapping(ctx, m):
    u = ctx.target = unquote(m.group(1))
    accept(ctx, {}, UUID=u)
    with LOCK:
        e = find_esm(ctx, u)
        if not esm_settle(ctx, e):
            raise not_found()
        return Response(200, esm_out(e))


def update_event_source_mapping(ctx, m):
    u = ctx.target = unquote(m.group(1))
    body = json_body(ctx)
    if "StartingPosition" in body:
        raise invalid("StartingPosition is not a member of UpdateEventSourceMapping: a "
                      "mapping's starting position cannot change")
    validate_esm_settings(body)
    accept(ctx, body, UUID=u)
    with LOCK:
        e = find_esm(ctx, u)
        if e["state"] in TRANSITIONAL:
            raise lambda_error(400, "ResourceInUseException",
                               "Cannot update the event source mapping %s because it is in use "
                               "(State %s)" % (u, e["state"]))
        if body.get("FunctionName"):
            e["function_arn"] = esm_function(ctx, body["FunctionName"])[1]
        for k in ESM_SETTINGS:
            if k in body:
                e[k] = body[k]
        state = "Updating"
        if "Enabled" in body and body["Enabled"] != e["enabled"]:
            e["enabled"] = body["Enabled"]
            state = "Enabling" if e["enabled"] else "Disabling"
        esm_start(ctx, e, state)
        out = esm_out(e)
        out["State"] = state
        return Response(202, out, "application/json", {"x-amzn-RequestId": ctx.request_id})


def delete_event_source_mapping(ctx, m):
    u = ctx.target = unquote(m.group(1))
    accept(ctx, {}, UUID=u)
    with LOCK:
        e = find_esm(ctx, u)
        if e["state"] in TRANSITIONAL and e["state"] != "Deleting":
            raise lambda_error(400, "ResourceInUseException",
                               "Cannot delete the event source mapping %s because it is in use "
                               "(State %s)" % (u, e["state"]))
        if e["state"] != "Deleting":
            esm_start(ctx, e, "Deleting")
        out = esm_out(e)
        out["State"] = "Deleting"
        return Response(202, out, "application/json", {"x-amzn-RequestId": ctx.request_id})


def list_event_source_mappings(ctx, m):
    fref, source = ctx.qparam("FunctionName"), ctx.qparam("EventSourceArn")
    farn = None
    if fref:
        farn = function_arn(ctx, parse_function_ref(ctx, fref)[0])
    accept(ctx, {})
    with LOCK:
        items = [(e["seq"], esm_out(e)) for e in sorted(store(ctx)["esms"].values(),
                                                        key=lambda x: x["seq"])
                 if (e["region"], e["account"]) == (ctx.region, ctx.account)
                 and (farn is None or e["function_arn"] == farn)
                 and (source is None or e["source"] == source)]
        page, nxt = paginate(ctx, items, 100, 10000, "ListEventSourceMappings")
    out = {"EventSourceMappings": page}
    if nxt:
        out["NextMarker"] = nxt
    return Response(200, out)


# ---------------------------------------------------------------- routing

# path -> {method: handler}; the operation is the handler's name in CamelCase
ROUTES = [(re.compile(path), handlers) for path, handlers in (
    (r"^/2015-03-31/functions/?$", {"POST": create_function, "GET": list_functions}),
    (r"^/2015-03-31/functions/([^/]+)$", {"GET": get_function, "DELETE": delete_function}),
    (r"^/2015-03-31/functions/([^/]+)/configuration$",
     {"GET": get_function_configuration, "PUT": update_function_configuration}),
    (r"^/2015-03-31/functions/([^/]+)/code$", {"PUT": update_function_code}),
    (r"^/2017-03-31/tags/(.+)$",
     {"GET": list_tags, "POST": tag_resource, "DELETE": untag_resource}),
    (r"^/2018-10-31/layers/?$", {"GET": list_layers}),
    (r"^/2018-10-31/layers/([^/]+)/versions$",
     {"POST": publish_layer_version, "GET": list_layer_versions}),
    (r"^/2018-10-31/layers/([^/]+)/versions/(\d+)$",
     {"GET": get_layer_version, "DELETE": delete_layer_version}),
    (r"^/2015-03-31/event-source-mappings/?$",
     {"POST": create_event_source_mapping, "GET": list_event_source_mappings}),
    (r"^/2015-03-31/event-source-mappings/([^/]+)$",
     {"GET": get_event_source_mapping, "PUT": update_event_source_mapping,
      "DELETE": delete_event_source_mapping}))]
PREFIXES = ("/2015-03-31/functions", "/2017-03-31/tags/", "/2018-10-31/layers",
            "/2015-03-31/event-source-mappings")
GET_FUNCTION_RE = re.compile(r"^/2015-03-31/functions/([^/]+)$")


def route(ctx):
    for rx, handlers in ROUTES:
        m = rx.match(ctx.path)
        fn = handlers.get(ctx.method) if m else None
        if fn is not None:
            if fn is list_layers and ctx.qparam("find") == "LayerVersion":
                fn = get_layer_version_by_arn
            return "".join(w.capitalize() for w in fn.__name__.split("_")), fn, m
    return None, None, None


def signer_scope(ctx):
    """(region, account) of the request's credential, or None."""
    parts = parse_authorization(ctx.header("Authorization")) or {}
    scope = parts.get("Credential", "").split("/")
    if len(scope) != 5:
        return None
    entry = ctx.state.creds.lookup(scope[0])
    if entry is None:
        return None
    return scope[2], entry["account"] or ctx.state.args.account_id


def resources_get_function(ctx):
    """True when GET /2015-03-31/functions/F is lambda_.py's: F is among
    the "lambda" resources and not in this module's store."""
    m = GET_FUNCTION_RE.match(ctx.path)
    scope = signer_scope(ctx)
    if ctx.method != "GET" or not m or scope is None:
        return False
    region, account = scope
    ref = unquote(m.group(1))
    fm, nm = LAMBDA_FULL_ARN_RE.match(ref), LAMBDA_NAME_RE.match(ref)
    if fm:
        region, account, name, qual = fm.group(2), fm.group(3), fm.group(4), fm.group(5)
    elif nm:
        name, qual = nm.group(1), nm.group(2)
    else:
        return False
    qual = qual or ctx.qparam("Qualifier")
    with LOCK:
        if (region, account, name) in store(ctx)["functions"]:
            return False
    return lambda_exists(ctx, region, account, name, qual)


def add_roles(ctx, roles):
    """The "roles" option: {role ARN: creation time (epoch seconds; null:
    now)} added to state.shared["iam_roles"], as the IAM module keeps them."""
    if not isinstance(roles, dict) or not all(ROLE_RE.match(str(k)) for k in roles):
        raise ValueError("/__lambda: roles must map role ARNs "
                         "(arn:aws:iam::ACCOUNT:role/NAME) to creation times")
    with ctx.state.lock:
        if getattr(ctx.state, "shared", None) is None:
            ctx.state.shared = {}
        known = ctx.state.shared.setdefault("iam_roles", {})
        for k, v in roles.items():
            known[k] = time.time() if v is None else role_created(v)


def normalise_failures(value, key):
    if value is None:
        return {}
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("%s: a function name, a list or an object is expected" % key)
    out = {}
    for v in value:
        if isinstance(v, str):
            v = {"function": v}
        if not isinstance(v, dict) or not isinstance(v.get("function"), str):
            raise ValueError("%s: each entry is a function name or an object with "
                             "\"function\"" % key)
        out[v["function"]] = {"reasonCode": v.get("reasonCode"), "reason": v.get("reason")}
    return out


class LambdaCtl(Lambda):
    name = "lambda_ctl"
    signing_name = "lambda"
    model = "lambda"
    resource_kinds = {}
    by_scope = True

    def match(self, ctx):
        if not ctx.path.startswith(PREFIXES) or ctx.path.endswith("/invocations"):
            return False
        return not resources_get_function(ctx)

    def operation(self, ctx):
        return route(ctx)[0]

    def handle(self, ctx):
        op, fn, m = route(ctx)
        ctx.operation = op
        if fn is None:
            raise ApiError(404, "UnknownOperationException", "Unknown operation %s %s"
                           % (ctx.method, ctx.path), extra={"Type": "User",
                                                            "Message": "Unknown operation"})
        ctx.ctl_params = None
        status = None
        try:
            resp = fn(ctx, m)
            resp.headers.setdefault("x-amzn-RequestId", ctx.request_id)
            status = resp.status
            return resp
        except ApiError as e:
            status = e.status
            raise
        finally:
            if ctx.ctl_params is not None and status is not None:
                e = ctx.base_entry()
                e.update({"params": ctx.ctl_params, "status": status})
                ctx.state.store(self.name, ctx.target, [e])

    def access_resource(self, ctx):
        """The ARN the call acts on (for "deny" faults)."""
        op, fn, m = route(ctx)
        if op is None:
            return "*"
        try:
            if op == "CreateFunction":
                ref = json.loads(ctx.body or b"{}").get("FunctionName") or ""
                return function_arn(ctx, parse_function_ref(ctx, ref)[0])
            if op in ("ListFunctions", "ListLayers"):
                return "*"
            if op in ("CreateEventSourceMapping", "ListEventSourceMappings"):
                return esm_arn(ctx, "*")
            if op == "GetLayerVersionByArn":
                return ctx.qparam("Arn") or "*"
            if op.endswith("Tags") or op.endswith("Resource"):
                return unquote(m.group(1))
            if "EventSourceMapping" in op:
                return esm_arn(ctx, unquote(m.group(1)))
            if "Layer" in op:
                name = LAYER_NAME_RE.match(unquote(m.group(1))).group(3)
                if m.lastindex and m.lastindex >= 2:
                    return arn(ctx, "layer:%s:%s" % (name, m.group(2)))
                return arn(ctx, "layer:" + name)
            return function_arn(ctx, parse_function_ref(ctx, unquote(m.group(1)))[0])
        except (ApiError, ValueError, AttributeError):
            return "*"

    def control(self, ctx):
        """POST/GET /__lambda: the options (see the module's docstring)."""
        if ctx.path != "/__lambda":
            return None
        with LOCK:
            st = store(ctx)
            if ctx.method == "POST":
                obj = json.loads(ctx.body or b"{}")
                if not isinstance(obj, dict):
                    raise ValueError("/__lambda: an object of options is expected")
                roles = obj.pop("roles", None)
                unknown = sorted(set(obj) - set(DEFAULTS))
                if unknown:
                    raise ValueError("/__lambda: unknown option(s) %s (known: %s)"
                                     % (", ".join(unknown), ", ".join(sorted(DEFAULTS))))
                new = dict(st["options"])
                for k, v in obj.items():
                    if k in ("failCreate", "failUpdate"):
                        new[k] = normalise_failures(v, k)
                    elif k in ("strictRoles", "repeatMarker"):
                        if not isinstance(v, bool):
                            raise ValueError("/__lambda: %s must be true or false" % k)
                        new[k] = v
                    else:
                        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                            raise ValueError("/__lambda: %s must be a number >= 0" % k)
                        new[k] = v
                if roles is not None:
                    add_roles(ctx, roles)
                st["options"] = new
            return Response(200, {
                "options": st["options"],
                "functions": sorted(n for (_, _, n) in st["functions"]),
                "layers": sorted(n for (_, _, n) in st["layers"]),
                "eventSourceMappings": [e["uuid"] for e in sorted(st["esms"].values(),
                                                                  key=lambda x: x["seq"])]})


SERVICES = [LambdaCtl()]
