"""IAM (roles, for `fanout deploy`): Query, POST / form body, Version
2010-05-08, XML answers (xmlns https://iam.amazonaws.com/doc/2010-05-08/,
ResponseMetadata/RequestId), every request validated against botocore's
iam model. Signing name iam; the credential scope's region must be
us-east-1 (IAM is global), else 403 SignatureDoesNotMatch. Operations:
CreateRole, GetRole (Tags, RoleLastUsed), DeleteRole (409 DeleteConflict
while inline or attached policies remain), UpdateAssumeRolePolicy, TagRole,
UntagRole, ListRoleTags, PutRolePolicy, GetRolePolicy (PolicyDocument
URL-encoded, as IAM returns it), DeleteRolePolicy, ListRolePolicies,
AttachRolePolicy (AWS managed policies AWSLambdaVPCAccessExecutionRole and
AWSLambdaBasicExecutionRole under arn:<partition>:iam::aws:policy/service-role/),
DetachRolePolicy, ListAttachedRolePolicies. Policy documents must be JSON
objects with Version and Statement (else 400 MalformedPolicyDocument); an
inline policy is at most 10240 characters once whitespace is removed, a
trust policy 2048 (else 409 LimitExceeded). Errors: 404 NoSuchEntity, 409
EntityAlreadyExists, 400 ValidationError, with IAM's messages.

Roles are per account (the signing key's), named case-insensitively, ARN
arn:aws:iam::<account>:role<path><name>, RoleId AROA + 17 random characters;
kept until /__reset. Every live role's ARN is in
state.shared["iam_roles"] (ARN -> creation time.time()) and
state.shared["iam_role_objects"] (ARN -> the role: "inline" policies by name,
"inline_put" their times) for the Lambda
module. Targets: the role name (as created). Received entries (successful calls): the
operation's parameters as botocore names them (RoleName, PolicyName,
PolicyArn, Path, Description, MaxSessionDuration, Tags [{Key, Value}],
TagKeys, Marker, MaxItems), the policy documents (AssumeRolePolicyDocument,
PolicyDocument) parsed as JSON. Faults: throttle 400 Throttling "Rate
exceeded", error500 500 ServiceFailure (Receiver), deny (resource: the
role's ARN)."""

import datetime
import json
import re
import secrets
import string
import time
from urllib.parse import quote
from xml.sax.saxutils import escape

from .core import ApiError, QueryService, Response, apply_faults, query_xml

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
PATH_RE = re.compile(r"^/([\x21-\x7e]*/)?$")
POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
INLINE_MAX = 10240
TRUST_MAX = 2048
MANAGED = ("service-role/AWSLambdaVPCAccessExecutionRole",
           "service-role/AWSLambdaBasicExecutionRole")
MANAGED_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):iam::aws:policy/(.+)$")


def iam_error(status, code, message):
    return ApiError(status, code, message)


def no_role(name):
    return iam_error(404, "NoSuchEntity", "The role with name %s cannot be found." % name)


def roles_of(ctx):
    """{lower-case name: role} of the caller's account (state lock held)."""
    return ctx.state.data.setdefault("iam_roles", {}).setdefault(ctx.account, {})


def role_arn(ctx, path, name):
    return "arn:aws:iam::%s:role%s%s" % (ctx.account, path, name)


def parse_policy(text, what):
    """The policy document `text` as JSON; MalformedPolicyDocument unless it
    is an object with Version and Statement."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise iam_error(400, "MalformedPolicyDocument", "This policy contains invalid Json")
    if not isinstance(doc, dict):
        raise iam_error(400, "MalformedPolicyDocument", "This policy contains invalid Json")
    missing = [k for k in ("Version", "Statement") if k not in doc]
    if missing:
        raise iam_error(400, "MalformedPolicyDocument",
                        "Syntax errors in policy: the %s has no %s"
                        % (what, " and no ".join(missing)))
    if doc["Version"] not in ("2012-10-17", "2008-10-17"):
        raise iam_error(400, "MalformedPolicyDocument",
                        "The policy failed legacy parsing: Version %r is not 2012-10-17 or "
                        "2008-10-17" % (doc["Version"],))
    if not isinstance(doc["Statement"], (list, dict)) or not doc["Statement"]:
        raise iam_error(400, "MalformedPolicyDocument",
                        "Syntax errors in policy: Statement must be a non-empty list or object")
    return doc


def squeezed_len(text):
    return len(re.sub(r"\s+", "", text))


def check_role_name(name):
    if not ROLE_NAME_RE.match(name):
        raise iam_error(400, "ValidationError",
                        "1 validation error detected: Value '%s' at 'roleName' failed to "
                        "satisfy constraint: Member must satisfy regular expression pattern: "
                        "[\\w+=,.@-]+ and have length less than or equal to 64" % name)


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def tags_xml(tags, indent):
    pad = " " * indent
    return "".join("%s<member>\n%s  <Key>%s</Key>\n%s  <Value>%s</Value>\n%s</member>\n"
                   % (pad, pad, escape(k), pad, escape(v), pad) for k, v in tags.items())


def role_xml(role, last_used=False):
    out = ("    <Role>\n      <Path>%s</Path>\n      <RoleName>%s</RoleName>\n"
           "      <RoleId>%s</RoleId>\n      <Arn>%s</Arn>\n      <CreateDate>%s</CreateDate>\n"
           "      <AssumeRolePolicyDocument>%s</AssumeRolePolicyDocument>\n"
           % (escape(role["path"]), escape(role["name"]), role["id"], escape(role["arn"]),
              iso(role["created"]), escape(quote(role["trust"], safe=""))))
    if role["description"] is not None:
        out += "      <Description>%s</Description>\n" % escape(role["description"])
    out += "      <MaxSessionDuration>%d</MaxSessionDuration>\n" % role["maxSession"]
    if role["tags"]:
        out += "      <Tags>\n%s      </Tags>\n" % tags_xml(role["tags"], 8)
    if last_used:
        out += "      <RoleLastUsed/>\n"
    return out + "    </Role>\n"


def answer(ctx, action, inner=None):
    """IAM's answer: a Result element holding `inner`, or none (inner None)."""
    rid = ctx.request_id
    if inner is None:
        xml = ('<%sResponse xmlns="%s">\n  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n'
               '  </ResponseMetadata>\n</%sResponse>\n' % (action, IAM_NS, rid, action))
    else:
        xml = query_xml(IAM_NS, action, inner, rid)
    return Response(200, xml, "text/xml", {"x-amzn-RequestId": rid})


def page(ctx, items, render, list_tag):
    """Marker / MaxItems paging of `items` (rendered by `render`)."""
    p = ctx.params
    start = 0
    if p.get("Marker") is not None:
        if not p["Marker"].isdigit() or int(p["Marker"]) > len(items):
            raise iam_error(400, "ValidationError", "Invalid Marker: %s" % p["Marker"])
        start = int(p["Marker"])
    n = p.get("MaxItems") or 100
    chunk = items[start:start + n]
    inner = "    <%s>\n%s    </%s>\n" % (list_tag, "".join(render(x) for x in chunk), list_tag)
    more = start + n < len(items)
    inner += "    <IsTruncated>%s</IsTruncated>\n" % ("true" if more else "false")
    if more:
        inner += "    <Marker>%d</Marker>\n" % (start + n)
    return inner


def record(ctx, role_name):
    """A received entry carrying the parameters (documents parsed)."""
    e = ctx.base_entry()
    for k, v in ctx.params.items():
        if k in ("AssumeRolePolicyDocument", "PolicyDocument"):
            v = json.loads(v)
        e[k] = v
    ctx.state.store("iam", role_name, [e])


def find_role(ctx, name):
    """The role `name` (state lock held), NoSuchEntity when absent."""
    role = roles_of(ctx).get(name.lower())
    if role is None:
        raise no_role(name)
    return role


def create_role(ctx, p):
    name = p["RoleName"]
    check_role_name(name)
    path = p.get("Path", "/")
    if not PATH_RE.match(path) or len(path) > 512:
        raise iam_error(400, "ValidationError",
                        "The specified value for path is invalid. It must begin and end with / "
                        "and contain only alphanumeric characters and/or / characters.")
    trust = p["AssumeRolePolicyDocument"]
    parse_policy(trust, "trust policy")
    if squeezed_len(trust) > TRUST_MAX:
        raise iam_error(409, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: %d"
                        % TRUST_MAX)
    msd = p.get("MaxSessionDuration", 3600)
    if not 3600 <= msd <= 43200:
        raise iam_error(400, "ValidationError",
                        "1 validation error detected: Value '%d' at 'maxSessionDuration' failed "
                        "to satisfy constraint: Member must have value %s" %
                        (msd, "greater than or equal to 3600" if msd < 3600 else
                         "less than or equal to 43200"))
    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
    if len(tags) > 50:
        raise iam_error(409, "LimitExceeded", "The number of tags has reached the maximum limit.")
    with ctx.state.lock:
        if name.lower() in roles_of(ctx):
            raise iam_error(409, "EntityAlreadyExists", "Role with name %s already exists." % name)
    apply_faults(ctx)
    now = time.time()
    role = {"name": name, "path": path, "arn": role_arn(ctx, path, name),
            "id": "AROA" + "".join(secrets.choice(string.ascii_uppercase + string.digits)
                                   for _ in range(17)),
            "created": now, "trust": trust, "description": p.get("Description"),
            "maxSession": msd, "tags": tags, "inline": {}, "attached": []}
    with ctx.state.lock:
        if name.lower() in roles_of(ctx):
            raise iam_error(409, "EntityAlreadyExists", "Role with name %s already exists." % name)
        roles_of(ctx)[name.lower()] = role
        ctx.state.shared.setdefault("iam_roles", {})[role["arn"]] = now
        ctx.state.shared.setdefault("iam_role_objects", {})[role["arn"]] = role
    record(ctx, name)
    return answer(ctx, "CreateRole", role_xml(role))


def with_role(ctx, p, change):
    """Looks the role up, applies the fault rules, then `change(role)` under
    the lock; records the call. Returns change's value."""
    name = p["RoleName"]
    with ctx.state.lock:
        ctx.target = find_role(ctx, name)["name"]   # as created
    apply_faults(ctx)
    with ctx.state.lock:
        out = change(find_role(ctx, name))
    record(ctx, ctx.target)
    return out


def delete_role(ctx, p):
    def change(role):
        if role["inline"]:
            raise iam_error(409, "DeleteConflict",
                            "Cannot delete entity, must delete policies first.")
        if role["attached"]:
            raise iam_error(409, "DeleteConflict",
                            "Cannot delete entity, must detach all policies first.")
        del roles_of(ctx)[role["name"].lower()]
        ctx.state.shared.setdefault("iam_roles", {}).pop(role["arn"], None)
        ctx.state.shared.setdefault("iam_role_objects", {}).pop(role["arn"], None)
    with_role(ctx, p, change)
    return answer(ctx, "DeleteRole")


def put_role_policy(ctx, p):
    name, doc = p["PolicyName"], p["PolicyDocument"]
    if not POLICY_NAME_RE.match(name):
        raise iam_error(400, "ValidationError",
                        "1 validation error detected: Value '%s' at 'policyName' failed to "
                        "satisfy constraint: Member must satisfy regular expression pattern: "
                        "[\\w+=,.@-]+" % name)
    parse_policy(doc, "policy")

    def change(role):
        others = sum(squeezed_len(d) for n, d in role["inline"].items() if n != name)
        if others + squeezed_len(doc) > INLINE_MAX:
            raise iam_error(409, "LimitExceeded",
                            "Maximum policy size of %d bytes exceeded for role %s"
                            % (INLINE_MAX, role["name"]))
        role["inline"][name] = doc
        role.setdefault("inline_put", {})[name] = time.time()
    with_role(ctx, p, change)
    return answer(ctx, "PutRolePolicy")


def get_role_policy(ctx, p):
    def change(role):
        doc = role["inline"].get(p["PolicyName"])
        if doc is None:
            raise iam_error(404, "NoSuchEntity", "The role policy with name %s cannot be found."
                            % p["PolicyName"])
        return ("    <PolicyName>%s</PolicyName>\n    <RoleName>%s</RoleName>\n"
                "    <PolicyDocument>%s</PolicyDocument>\n"
                % (escape(p["PolicyName"]), escape(role["name"]), escape(quote(doc, safe=""))))
    return answer(ctx, "GetRolePolicy", with_role(ctx, p, change))


def delete_role_policy(ctx, p):
    def change(role):
        if role["inline"].pop(p["PolicyName"], None) is None:
            raise iam_error(404, "NoSuchEntity", "The role policy with name %s cannot be found."
                            % p["PolicyName"])
    with_role(ctx, p, change)
    return answer(ctx, "DeleteRolePolicy")


def attach_role_policy(ctx, p):
    arn = p["PolicyArn"]
    m = MANAGED_ARN_RE.match(arn)
    if not m or m.group(2) not in MANAGED:
        raise iam_error(404, "NoSuchEntity", "Policy %s does not exist or is not attachable."
                        % arn)

    def change(role):
        if arn not in role["attached"]:
            role["attached"].append(arn)
    with_role(ctx, p, change)
    return answer(ctx, "AttachRolePolicy")


def detach_role_policy(ctx, p):
    def change(role):
        if p["PolicyArn"] not in role["attached"]:
            raise iam_error(404, "NoSuchEntity", "Policy %s was not found." % p["PolicyArn"])
        role["attached"].remove(p["PolicyArn"])
    with_role(ctx, p, change)
    return answer(ctx, "DetachRolePolicy")


def update_trust(ctx, p):
    doc = p["PolicyDocument"]
    parse_policy(doc, "trust policy")
    if squeezed_len(doc) > TRUST_MAX:
        raise iam_error(409, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: %d"
                        % TRUST_MAX)

    def change(role):
        role["trust"] = doc
    with_role(ctx, p, change)
    return answer(ctx, "UpdateAssumeRolePolicy")


def tag_role(ctx, p):
    def change(role):
        tags = dict(role["tags"])
        tags.update((t["Key"], t["Value"]) for t in p["Tags"])
        if len(tags) > 50:
            raise iam_error(409, "LimitExceeded",
                            "The number of tags has reached the maximum limit.")
        role["tags"] = tags
    with_role(ctx, p, change)
    return answer(ctx, "TagRole")


def untag_role(ctx, p):
    def change(role):
        for k in p["TagKeys"]:
            role["tags"].pop(k, None)
    with_role(ctx, p, change)
    return answer(ctx, "UntagRole")


def get_role(ctx, p):
    return answer(ctx, "GetRole", with_role(ctx, p, lambda role: role_xml(role, True)))


def list_role_tags(ctx, p):
    tags = with_role(ctx, p, lambda role: sorted(role["tags"].items()))
    return answer(ctx, "ListRoleTags", page(ctx, tags, lambda kv: tags_xml(dict([kv]), 6),
                                            "Tags"))


def list_role_policies(ctx, p):
    names = with_role(ctx, p, lambda role: sorted(role["inline"]))
    return answer(ctx, "ListRolePolicies", page(
        ctx, names, lambda n: "      <member>%s</member>\n" % escape(n), "PolicyNames"))


def list_attached(ctx, p):
    arns = with_role(ctx, p, lambda role: list(role["attached"]))
    return answer(ctx, "ListAttachedRolePolicies", page(
        ctx, arns, lambda a: ("      <member>\n        <PolicyName>%s</PolicyName>\n"
                              "        <PolicyArn>%s</PolicyArn>\n      </member>\n"
                              % (escape(a.rsplit("/", 1)[1]), escape(a))), "AttachedPolicies"))


OPERATIONS = {
    "CreateRole": create_role, "GetRole": get_role, "DeleteRole": delete_role,
    "UpdateAssumeRolePolicy": update_trust, "TagRole": tag_role, "UntagRole": untag_role,
    "ListRoleTags": list_role_tags, "PutRolePolicy": put_role_policy,
    "GetRolePolicy": get_role_policy, "DeleteRolePolicy": delete_role_policy,
    "ListRolePolicies": list_role_policies, "AttachRolePolicy": attach_role_policy,
    "DetachRolePolicy": detach_role_policy, "ListAttachedRolePolicies": list_attached,
}


class Iam(QueryService):
    name = signing_name = "iam"
    model = "iam"
    namespace = IAM_NS
    error500_fault = (500, "ServiceFailure", "Request processing has failed due to some "
                      "unknown error, exception or failure.")

    def check_scope(self, ctx):
        if ctx.region != "us-east-1":
            raise ApiError(403, "SignatureDoesNotMatch",
                           "Credential should be scoped to a valid region, not '%s'. "
                           % ctx.region)

    def handle(self, ctx):
        fn = OPERATIONS.get(ctx.operation)
        if fn is None:
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version "
                           "2010-05-08 (not served by this test endpoint)" % ctx.operation)
        ctx.target = ctx.params.get("RoleName")
        return fn(ctx, ctx.params)

    def access_resource(self, ctx):
        name = (ctx.params or {}).get("RoleName")
        if not name:
            return "*"
        with ctx.state.lock:
            role = roles_of(ctx).get(name.lower())
        path = role["path"] if role else (ctx.params.get("Path") or "/")
        return role_arn(ctx, path, role["name"] if role else name)


SERVICES = [Iam()]
