"""STS GetCallerIdentity (the account and partition `fanout deploy` builds
ARNs with): Query, POST / form body, Version 2011-06-15, validated against
botocore's sts model, XML answer (xmlns https://sts.amazonaws.com/doc/2011-06-15/)
with Account (the signing key's), Arn arn:aws:iam::<account>:user/fanout-test
and UserId (AIDA + a digest of the key id). Signing name sts, any region.
Other STS operations (AssumeRole: tests/servers/sts_server.py) are answered
400 InvalidAction. Targets: the account. Received entries: the base fields.
Faults: throttle 400 Throttling "Rate exceeded", error500 500 InternalFailure
(Receiver), deny."""

import hashlib

from .core import ApiError, QueryService, Response, apply_faults, query_xml

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
USER = "fanout-test"


def caller_identity(ctx):
    ctx.target = ctx.account
    apply_faults(ctx)
    uid = "AIDA" + hashlib.sha256(ctx.akid.encode()).hexdigest()[:17].upper()
    inner = ("    <Arn>arn:aws:iam::%s:user/%s</Arn>\n    <UserId>%s</UserId>\n"
             "    <Account>%s</Account>\n" % (ctx.account, USER, uid, ctx.account))
    ctx.state.store("sts", ctx.account, [ctx.base_entry()])
    return Response(200, query_xml(STS_NS, "GetCallerIdentity", inner, ctx.request_id),
                    "text/xml", {"x-amzn-RequestId": ctx.request_id})


class Sts(QueryService):
    name = signing_name = "sts"
    model = "sts"
    namespace = STS_NS

    def handle(self, ctx):
        if ctx.operation != "GetCallerIdentity":
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version "
                           "2011-06-15 (only GetCallerIdentity is served here)" % ctx.operation)
        return caller_identity(ctx)


SERVICES = [Sts()]
