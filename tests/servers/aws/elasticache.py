"""ElastiCache, for `fanout register`: Query, POST /, Version=2015-02-02,
DescribeCacheClusters (memcached: ConfigurationEndpoint) and
DescribeReplicationGroups (redis: PrimaryEndpoint); CacheClusterNotFound /
ReplicationGroupNotFoundFault. Claimed by its signing name. Targets: the
cluster or group id. Resources: {"memcached": {"cluster-id": "host:port"},
"redis": {"group-id": "host:port"}}."""

from xml.sax.saxutils import escape

from .core import (ApiError, Response, Service, apply_faults, form_action, query_error,
                   query_form, query_xml)

ELASTICACHE_NS = "http://elasticache.amazonaws.com/doc/2015-02-02/"


def elasticache(ctx):
    if ctx.method != "POST" or ctx.path != "/":
        raise ApiError(400, "InvalidAction", "Query API calls are POST /")
    form = query_form(ctx)
    action = form.get("Action")
    ctx.operation = action
    if form.get("Version") != "2015-02-02" or action not in (
            "DescribeCacheClusters", "DescribeReplicationGroups"):
        raise ApiError(400, "InvalidAction", "Could not find operation %s for version %s"
                       % (action, form.get("Version")))
    rid = ctx.request_id
    if action == "DescribeCacheClusters":
        cid = form.get("CacheClusterId")
        ctx.target = cid
        apply_faults(ctx)
        with ctx.state.lock:
            ep = ctx.state.resources["memcached"].get(cid)
        if ep is None:
            raise ApiError(404, "CacheClusterNotFound", "CacheCluster not found: %s" % cid)
        host, _, port = ep.rpartition(":")
        inner = ("    <CacheClusters>\n      <CacheCluster>\n"
                 "        <CacheClusterId>%s</CacheClusterId>\n"
                 "        <Engine>memcached</Engine>\n"
                 "        <CacheClusterStatus>available</CacheClusterStatus>\n"
                 "        <ConfigurationEndpoint>\n          <Address>%s</Address>\n"
                 "          <Port>%s</Port>\n        </ConfigurationEndpoint>\n"
                 "      </CacheCluster>\n    </CacheClusters>\n"
                 % (escape(cid), escape(host), escape(port)))
    else:
        gid = form.get("ReplicationGroupId")
        ctx.target = gid
        apply_faults(ctx)
        with ctx.state.lock:
            ep = ctx.state.resources["redis"].get(gid)
        if ep is None:
            raise ApiError(404, "ReplicationGroupNotFoundFault",
                           "ReplicationGroup %s not found." % gid)
        host, _, port = ep.rpartition(":")
        inner = ("    <ReplicationGroups>\n      <ReplicationGroup>\n"
                 "        <ReplicationGroupId>%s</ReplicationGroupId>\n"
                 "        <Status>available</Status>\n        <NodeGroups>\n"
                 "          <NodeGroup>\n            <NodeGroupId>0001</NodeGroupId>\n"
                 "            <PrimaryEndpoint>\n              <Address>%s</Address>\n"
                 "              <Port>%s</Port>\n            </PrimaryEndpoint>\n"
                 "          </NodeGroup>\n        </NodeGroups>\n"
                 "      </ReplicationGroup>\n    </ReplicationGroups>\n"
                 % (escape(gid), escape(host), escape(port)))
    return Response(200, query_xml(ELASTICACHE_NS, action, inner, rid), "text/xml",
                    {"x-amzn-RequestId": rid})


class ElastiCache(Service):
    name = signing_name = "elasticache"
    model = "elasticache"
    query_codes = True
    resource_kinds = {"memcached": dict, "redis": dict}

    def operation(self, ctx):
        return form_action(ctx)

    def handle(self, ctx):
        return elasticache(ctx)

    def error(self, ctx, err, headers):
        return query_error(ELASTICACHE_NS, err, ctx.request_id, headers, True)


SERVICES = [ElastiCache()]
