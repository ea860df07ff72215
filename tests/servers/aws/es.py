"""OpenSearch / Elasticsearch: the data plane (service "opensearch",
signing name es; aliases es, elasticsearch), POST|PUT /_bulk,
/{index}/_bulk, /{index}/{type}/_bulk (NDJSON) and GET / (cluster info,
flavoured by --search-flavor); and the domain lookups of `fanout register`
(service "es_control", signing name es, told apart by path), GET
/2015-01-01/es/domain/{name} and /2021-01-01/opensearch/domain/{name}.
Targets: the index (the one every item of a /_bulk names, if they agree);
the domain. Received entries: index, action, id, source, version, result,
position, routing. Indexes always exist; documents are kept until /__reset.
Resources: {"es": {"domain": "endpoint host" | {"vpc": "host"}}}. Faults:
throttle 429 rejected_execution_exception (es_rejected_execution_exception
with --search-flavor elasticsearch; "type" overrides), error500 500
{"error": {"type": "exception"}}, partial fails _bulk items with 429
rejected_execution_exception ("status", "type", "message" override).
The domain lookups are validated against botocore's es and opensearch
models; the data plane is not (model off): _bulk and GET / are
OpenSearch's own REST API, which no botocore model describes."""

import base64
import json
import re
import secrets
import time
from urllib.parse import unquote

from .core import ApiError, Response, Service, apply_faults, es_error

OPENSEARCH_MAX_ID = 512
ES_JSON = "application/json; charset=UTF-8"


INVALID_INDEX_CHARS = set('\\/*?"<>| ,#:')


def index_name_problem(name):
    if name != name.lower():
        return "must be lowercase"
    if name.startswith(("_", "-", "+")):
        return "must not start with '_', '-', or '+'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if any(c in INVALID_INDEX_CHARS for c in name):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    if len(name.encode("utf-8")) > 255:
        return "index name is too long"
    return None


def auto_id():
    return base64.urlsafe_b64encode(secrets.token_bytes(15)).decode("ascii")


def source_problem(line):
    """None if LINE is a JSON object, else the caused_by of the item error."""
    text = line.strip()
    if not text:
        return {"type": "not_x_content_exception",
                "reason": "Compressor detection can only be called on some xcontent bytes or "
                          "compressed xcontent bytes"}
    if text[:1] not in (b"{", b"["):
        return {"type": "not_x_content_exception",
                "reason": "Compressor detection can only be called on some xcontent bytes or "
                          "compressed xcontent bytes"}
    try:
        doc = json.loads(text)
    except ValueError as e:
        return {"type": "json_parse_exception", "reason": str(e)}
    if not isinstance(doc, dict):
        return {"type": "json_parse_exception", "reason": "the document is not a JSON object"}
    return None


def opensearch_bulk(ctx):
    parts = [p for p in ctx.path.split("/") if p]
    ctx.operation = "Bulk"
    if ctx.method == "GET" and not parts:
        ctx.operation = "Info"
        apply_faults(ctx)
        flavor = ctx.state.args.search_flavor
        info = {"name": "fanout-test", "cluster_name": "123456789012:fanout",
                "cluster_uuid": "fanout-test-cluster",
                "version": ({"distribution": "opensearch", "number": "2.13.0"}
                            if flavor == "opensearch" else {"number": "7.10.2"}),
                "tagline": ("The OpenSearch Project: https://opensearch.org/"
                            if flavor == "opensearch" else "You Know, for Search")}
        return Response(200, info, "application/json; charset=UTF-8",
                        {"x-amzn-RequestId": ctx.request_id})
    if not parts or parts[-1] != "_bulk" or len(parts) > 3:
        ctx.operation = None
        raise es_error(400, "illegal_argument_exception",
                       "no handler found for uri [%s] and method [%s]" % (ctx.path, ctx.method))
    if ctx.method not in ("POST", "PUT"):
        raise es_error(405, "illegal_argument_exception",
                       "Incorrect HTTP method for uri [%s] and method [%s], allowed: [POST, PUT]"
                       % (ctx.path, ctx.method))
    default_index = unquote(parts[0]) if len(parts) >= 2 else None
    ctx.target = default_index
    mtype = ctx.media_type()
    if not mtype:
        raise ApiError(406, "content_type", "Content-Type header is missing",
                       body={"error": "Content-Type header is missing", "status": 406})
    if mtype not in ("application/x-ndjson", "application/json"):
        raise ApiError(406, "content_type", "unsupported",
                       body={"error": "Content-Type header [%s] is not supported"
                             % ctx.header("Content-Type"), "status": 406})
    body = ctx.body
    if not body.strip():
        raise es_error(400, "action_request_validation_exception",
                       "Validation Failed: 1: no requests added;")
    if not body.endswith(b"\n"):
        raise es_error(400, "illegal_argument_exception",
                       "The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")[:-1]
    ops = []
    validation = []
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        i += 1
        if not line.strip():
            continue
        try:
            action_obj = json.loads(line)
        except ValueError as e:
            raise es_error(400, "json_parse_exception" if line.strip()[:1] == b"{"
                           else "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected START_OBJECT but "
                           "found [%s]" % (lineno, str(e)))
        if not isinstance(action_obj, dict) or len(action_obj) != 1:
            raise es_error(400, "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected START_OBJECT or "
                           "END_OBJECT but found [VALUE_STRING]" % lineno)
        action, meta = next(iter(action_obj.items()))
        if action not in ("index", "create", "update", "delete"):
            raise es_error(400, "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected field [create], "
                           "[delete], [index] or [update] but found [%s]" % (lineno, action))
        if not isinstance(meta, dict):
            raise es_error(400, "illegal_argument_exception",
                           "Malformed action/metadata line [%d], expected START_OBJECT but "
                           "found [%s]" % (lineno, type(meta).__name__))
        index = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        if doc_id is not None:
            doc_id = str(doc_id)
        source = None
        if action != "delete":
            if i >= len(lines):
                raise es_error(400, "illegal_argument_exception",
                               "The bulk request must be terminated by a newline [\\n]")
            source = lines[i]
            i += 1
        if index is None:
            validation.append("index is missing")
        if doc_id is not None and len(doc_id.encode("utf-8")) > OPENSEARCH_MAX_ID:
            validation.append("id [%s] is too long, must be no longer than %d bytes but was: %d"
                              % (doc_id, OPENSEARCH_MAX_ID, len(doc_id.encode("utf-8"))))
        if action in ("update", "delete") and doc_id is None:
            validation.append("id is missing")
        ops.append((action, index, doc_id, source, meta))
    if not ops:
        raise es_error(400, "action_request_validation_exception",
                       "Validation Failed: 1: no requests added;")
    if validation:
        raise es_error(400, "action_request_validation_exception",
                       "Validation Failed: " + "".join("%d: %s;" % (n + 1, v)
                                                       for n, v in enumerate(validation)))
    if default_index is None:
        # /_bulk: the target fault rules match is the index when all items share one
        indexes = {op[1] for op in ops}
        if len(indexes) == 1:
            ctx.target = indexes.pop()
    t0 = time.monotonic()
    rule = apply_faults(ctx, batch=True)
    failing = rule.failing(len(ops)) if rule else set()
    rejected = (rule.spec.get("type") if rule else None) or ctx.state.args.rejected_type
    items, stored = [], []
    errors = False
    with ctx.state.lock:
        for n, (action, index, doc_id, source, meta) in enumerate(ops):
            item = {"_index": index}
            problem = index_name_problem(index)
            if n in failing:
                status = int(rule.spec.get("status", 429))
                item.update({"_id": doc_id, "status": status,
                             "error": {"type": rejected,
                                       "reason": rule.spec.get(
                                           "message", "rejected execution of primary operation "
                                           "[shard_detail=[%s][0][P], shard_coordinating_and_"
                                           "primary_bytes=0, shard_operation_bytes=0, "
                                           "shard_max_coordinating_and_primary_bytes=0]" % index)}})
                errors = True
                items.append({action: item})
                continue
            if problem:
                item.update({"_id": doc_id, "status": 400,
                             "error": {"type": "invalid_index_name_exception",
                                       "reason": "Invalid index name [%s], %s" % (index, problem),
                                       "index": index, "index_uuid": "_na_"}})
                errors = True
                items.append({action: item})
                continue
            docs = ctx.state.data.setdefault("docs", {}).setdefault(index, {})
            if action in ("index", "create"):
                if doc_id is None:
                    doc_id = auto_id()
                item["_id"] = doc_id
                bad = source_problem(source)
                if bad:
                    item.update({"status": 400, "error": {
                        "type": "mapper_parsing_exception", "reason": "failed to parse",
                        "caused_by": bad}})
                    errors = True
                    items.append({action: item})
                    continue
                current = docs.get(doc_id)
                if action == "create" and current is not None:
                    item.update({"status": 409, "error": {
                        "type": "version_conflict_engine_exception",
                        "reason": "[%s]: version conflict, document already exists (current "
                                  "version [%d])" % (doc_id, current["version"]),
                        "index": index, "shard": "0", "index_uuid": "fanout"}})
                    errors = True
                    items.append({action: item})
                    continue
                version = (current["version"] + 1) if current else 1
                doc = json.loads(source)
                docs[doc_id] = {"source": doc, "version": version}
                result, status = ("updated", 200) if current else ("created", 201)
            elif action == "update":
                item["_id"] = doc_id
                bad = source_problem(source)
                upd = None if bad else json.loads(source)
                if bad or not ("doc" in upd or "script" in upd):
                    item.update({"status": 400, "error": {
                        "type": "action_request_validation_exception" if not bad
                        else "x_content_parse_exception",
                        "reason": "Validation Failed: 1: script or doc is missing;" if not bad
                        else "failed to parse update request",
                        **({"caused_by": bad} if bad else {})}})
                    errors = True
                    items.append({action: item})
                    continue
                current = docs.get(doc_id)
                if current is None and not (upd.get("doc_as_upsert") or "upsert" in upd):
                    item.update({"status": 404, "error": {
                        "type": "document_missing_exception",
                        "reason": "[%s]: document missing" % doc_id,
                        "index": index, "shard": "0", "index_uuid": "fanout"}})
                    errors = True
                    items.append({action: item})
                    continue
                if current is None:
                    doc = upd.get("upsert") if "upsert" in upd else upd.get("doc", {})
                    version, result, status = 1, "created", 201
                else:
                    doc = dict(current["source"])
                    if isinstance(upd.get("doc"), dict):
                        doc.update(upd["doc"])
                    version, result, status = current["version"] + 1, "updated", 200
                docs[doc_id] = {"source": doc, "version": version}
            else:  # delete
                item["_id"] = doc_id
                current = docs.pop(doc_id, None)
                if current is None:
                    version, result, status, doc = 1, "not_found", 404, None
                else:
                    version, result, status, doc = current["version"] + 1, "deleted", 200, None
            item.update({"_version": version, "result": result,
                         "_shards": {"total": 2, "successful": 1, "failed": 0},
                         "_seq_no": version - 1, "_primary_term": 1, "status": status})
            items.append({action: item})
            e = ctx.base_entry()
            e.update({"target": index, "index": index, "action": action, "id": item["_id"],
                      "source": doc if action != "delete" else None, "version": version,
                      "result": result, "position": n, "routing": meta.get("routing")})
            stored.append(e)
    by_index = {}
    for e in stored:
        by_index.setdefault(e["index"], []).append(e)
    for index, entries in by_index.items():
        ctx.state.store("opensearch", index, entries)
    took = int((time.monotonic() - t0) * 1000)
    return Response(200, {"took": took, "errors": errors, "items": items},
                    "application/json; charset=UTF-8", {"x-amzn-RequestId": ctx.request_id})


def es_describe_domain(ctx):
    m = re.match(r"^/(2015-01-01/es|2021-01-01/opensearch)/domain/([^/]+)$", ctx.path)
    ctx.operation = ("DescribeElasticsearchDomain" if m and m.group(1).startswith("2015")
                     else "DescribeDomain")
    if not m or ctx.method != "GET":
        raise ApiError(400, "ValidationException", "GET /2015-01-01/es/domain/{DomainName}")
    name = unquote(m.group(2))
    ctx.target = name
    apply_faults(ctx)
    with ctx.state.lock:
        endpoint = ctx.state.resources["es"].get(name)
    if endpoint is None:
        raise ApiError(409, "ResourceNotFoundException", "Domain not found: %s" % name)
    status = {"DomainName": name, "DomainId": "%s/%s" % (ctx.account, name),
              "ARN": "arn:aws:es:%s:%s:domain/%s" % (ctx.region, ctx.account, name),
              "Created": True, "Deleted": False, "Processing": False}
    if isinstance(endpoint, dict):  # {"vpc": host}: a domain in a VPC
        status["Endpoints"] = endpoint
    else:
        status["Endpoint"] = endpoint
    key = "DomainStatus"
    return Response(200, {key: status})


class OpenSearch(Service):
    name = "opensearch"
    signing_name = "es"
    aliases = ("es", "elasticsearch")
    error_content_type = ES_JSON

    def match(self, ctx):
        return ctx.path == "/_bulk" or ctx.path.endswith("/_bulk")

    def operation(self, ctx):
        return "Bulk"

    def handle(self, ctx):
        return opensearch_bulk(ctx)

    def error(self, ctx, err, headers):
        return Response(err.status, {"message": err.message}, ES_JSON, headers)


class EsControl(Service):
    name = "es_control"
    signing_name = "es"
    model = ("es", "opensearch")
    by_scope = False   # the scope's "es" is the data plane's
    resource_kinds = {"es": dict}

    def match(self, ctx):
        return ctx.path.startswith(("/2015-01-01/es/domain/", "/2021-01-01/opensearch/domain/"))

    def handle(self, ctx):
        return es_describe_domain(ctx)


# es_control's paths are matched before the data plane's /_bulk
SERVICES = [EsControl(), OpenSearch()]
