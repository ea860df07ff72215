"""The services tests/servers/aws_service.py emulates: one module each, all
registered in MODULES below; the shared core (HTTP, SigV4 with botocore,
credentials, resources, fault rules, the control API) is aws/core.py.

Writing a service module (aws/NAME.py):

    '''NAME: the protocol and operations served, the targets, the fields
    of its received entries, its resources and fault shapes.'''
    from .core import ApiError, Response, Service, apply_faults

    def put(ctx):                        # one function per operation
        ctx.operation = "Put"            # for stats, the log and fault rules
        ... validate ctx.body, ctx.path, ctx.query, ctx.header(...);
        ... raise ApiError(status, code, message) for what AWS refuses
        ctx.target = "..."               # what fault rules and /__received match
        rule = apply_faults(ctx, batch=True)   # after validation, before storing;
        failing = rule.failing(n) if rule else set()  # a partial rule (batch calls)
        e = ctx.base_entry()             # service, operation, target, key, region...
        e.update({...})
        ctx.state.store("NAME", ctx.target, [e])   # seen by GET /__received
        return Response(200, {...}, "application/json",
                        {"x-amzn-RequestId": ctx.request_id})

    class Name(Service):
        name = "NAME"                    # /__received?service=, fault rules, stats
        signing_name = "..."             # the SigV4 scope's service
        resource_kinds = {"NAME": set}   # --resources {"NAME": ["a", "*"]}, read
                                         # under ctx.state.lock from
                                         # ctx.state.resources["NAME"]
        def match(self, ctx):            # claims a request by path or header;
            return ctx.header("X-Amz-Target", "").startswith("...")
        def operation(self, ctx):        # the operation's name before handle()
            return ...
        def handle(self, ctx):
            return put(ctx)
        model = "name"                   # botocore model(s) validating each
                                         # request before handle() (model.py;
                                         # the input in ctx.params)
        # as needed: error(ctx, err, headers) (the protocol's error shape;
        # core has query_error and query_xml for Query APIs), throttle(spec)
        # and error500(spec) (the ApiError fault rules answer; the defaults
        # are OpenSearch's), resources(), add_resources(res, obj) and
        # describe_resources(res) (other resource shapes), aliases,
        # by_scope, query_codes, match_last(ctx), iam_prefix,
        # access_resource(ctx) and deny_body(text) (deny rules),
        # check_scope(ctx) (a credential scope the service refuses),
        # control(ctx) (answers the module's own /__NAME control paths,
        # None for the others). Query APIs derive from QueryService
        # (namespace, throttle_fault, error500_fault).

    SERVICES = [Name()]

then add the module to MODULES (requests are offered to match() in this
order; a request no match() claims goes to the service its credential
scope's signing name names) and a test to tests/servers/test_aws_service.py.
Signature checks, model validation, fault rules (throttle, error500, slow,
reset, status, mangle, partial, deny), the log and /__stats come with the
core.
"""

from . import (elasticache, es, eventbridge, firehose, forward, iam, iot, lambda_, lambda_ctl,
               sns, sts)

MODULES = (firehose, sns, lambda_ctl, lambda_, iot, es, elasticache, eventbridge, iam, sts,
           forward)
SERVICES = [svc for m in MODULES for svc in m.SERVICES]
