"""Request validation against botocore's own service models (Debian's
python3-botocore, botocore/data/<service>/<latest api version>/service-2.json).

check_request(models, method, raw_target, headers, body) identifies the
operation the way the service's protocol names it, rebuilds the input
parameters from what was received, and checks them; it returns a Checked
(model, operation, params) or raises ModelError. A Service declaring
`model = "iam"` (or a tuple of model names: the first that knows the
operation validates) has every signed request checked by core before its
handle() runs.

  query      Action and Version (form body and URL query) name an operation
             of the model's apiVersion; `A.member.N`, `A.entry.N.key/value`,
             `A.B` (nested structures) un-flattened, scalars converted
             (integer, long, double, boolean "true"/"false", blob base64,
             timestamp left as text for botocore to parse); a key that maps
             to no member is an error.
  json       POST /, X-Amz-Target <targetPrefix>.<Operation>, Content-Type
             application/x-amz-json-<jsonVersion>; the body is the input.
  rest-json  method + requestUri (labels {Name}, {Name+}; query literals of
             the requestUri required) matched against the model's operations,
             most specific first; uri labels, querystring members (repeated
             keys for lists; a querystring map takes the other keys; a key no
             member takes is an error), header members, the JSON body (or the
             payload member: a structure from JSON, a blob or string raw).

The input is then checked with botocore.validate.ParamValidator (unknown
members, missing required ones, wrong types, min lengths and values) plus
enums where the model lists them (ENUM_ADDITIONS: values newer than the
models). The report is botocore's
("Parameter validation failed:\\n...")."""

import base64
import binascii
import json
import re
import threading
from urllib.parse import parse_qsl, unquote, unquote_to_bytes

import botocore.loaders
from botocore.exceptions import ParamValidationError
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

MISSING = object()

# Enum values the services took after this botocore's models were written
# (Debian's python3-botocore 1.29): (model, shape) -> values also accepted.
ENUM_ADDITIONS = {
    ("lambda", "Runtime"): {"provided.al2023", "python3.10", "python3.11", "python3.12",
                            "python3.13", "java17", "java21", "nodejs20.x", "nodejs22.x",
                            "ruby3.2", "ruby3.3", "dotnet8"},
}


class ModelError(Exception):
    """A request its model refuses: status, code (the protocol's),
    message (botocore's report), operation (None when none was found),
    errors (one line each)."""

    def __init__(self, status, code, operation, errors, model=None):
        self.status = status
        self.code = code
        self.operation = operation
        self.errors = list(errors)
        self.model = model
        self.message = str(ParamValidationError(report="\n".join(self.errors)))
        super().__init__(self.message)


class Checked:
    def __init__(self, model, operation, params):
        self.model = model          # botocore service name
        self.operation = operation  # operation name as the model spells it
        self.params = params        # the rebuilt input


_lock = threading.Lock()
_loader = None
_models = {}


def load(name):
    """The ServiceModel of botocore service `name` (latest api version) and
    its routing tables, cached."""
    global _loader
    with _lock:
        m = _models.get(name)
        if m is None:
            if _loader is None:
                _loader = botocore.loaders.create_loader()
            sm = ServiceModel(_loader.load_service_model(name, "service-2"), service_name=name)
            m = _models[name] = _Model(sm)
        return m


def validation_code(protocol):
    return "ValidationError" if protocol in ("query", "ec2") else "ValidationException"


def unknown_operation_code(protocol):
    return "InvalidAction" if protocol in ("query", "ec2") else "UnknownOperationException"


class _Model:
    def __init__(self, sm):
        self.sm = sm
        self.name = sm.service_name
        self.protocol = sm.metadata["protocol"]
        self.routes = []
        if self.protocol in ("rest-json", "rest-xml"):
            for op_name in sm.operation_names:
                op = sm.operation_model(op_name)
                self.routes.append(_Route(op))
            self.routes.sort(key=lambda r: r.rank)

    def fail(self, operation, errors, code=None):
        raise ModelError(400, code or validation_code(self.protocol), operation, errors,
                         self.name)

    def unknown(self, errors, code=None):
        raise ModelError(400, code or unknown_operation_code(self.protocol), None, errors,
                         self.name)


class _Route:
    """One rest operation's method and requestUri as a regex."""

    def __init__(self, op):
        self.op = op
        self.method = op.http.get("method", "POST")
        uri = op.http["requestUri"]
        path, _, literal = uri.partition("?")
        self.literals = parse_qsl(literal, keep_blank_values=True)
        self.labels = []
        rx, literal_chars, pos = "", 0, 0
        for m in re.finditer(r"\{([A-Za-z0-9_]+)(\+?)\}", path):
            rx += re.escape(path[pos:m.start()])
            literal_chars += m.start() - pos
            self.labels.append(m.group(1))
            rx += "(.+)" if m.group(2) else "([^/]+)"
            pos = m.end()
        rx += re.escape(path[pos:])
        literal_chars += len(path) - pos
        if path.endswith("/") and len(path) > 1:
            rx += "?"   # "/x/" also takes "/x"
        self.rx = re.compile(rx + r"\Z")
        greedy = "+}" in path
        self.rank = (-len(self.literals), -literal_chars, greedy, len(self.labels))

    def match(self, method, path, query):
        if method != self.method:
            return None
        m = self.rx.match(path)
        if not m:
            return None
        for k, v in self.literals:
            if not any(qk == k and (v == "" or qv == v) for qk, qv in query):
                return None
        return {self.labels[i]: unquote(g) for i, g in enumerate(m.groups())}


def _lower_headers(headers):
    out = {}
    for k, v in headers.items():
        out.setdefault(k.lower(), v)
    return out


def decoded_query(raw):
    """The query's parameters percent-decoded ('+' stays '+'), empty
    segments skipped; None when a part is not UTF-8."""
    out = []
    for seg in raw.split("&"):
        if not seg:
            continue
        k, _, v = seg.partition("=")
        try:
            out.append((unquote_to_bytes(k).decode("utf-8"), unquote_to_bytes(v).decode("utf-8")))
        except UnicodeDecodeError:
            return None
    return out


def _query_pairs(raw, errors):
    out = decoded_query(raw)
    if out is None:
        errors.append("The query string is not UTF-8 percent-encoding")
        return []
    return out


def _scalar(shape, text, name, errors):
    """A query/uri/header string as the shape's type; left as text when it
    does not convert (ParamValidator then reports the type)."""
    t = shape.type_name
    if t in ("integer", "long"):
        return int(text) if re.fullmatch(r"-?\d+", text) else text
    if t in ("double", "float"):
        try:
            return float(text)
        except ValueError:
            return text
    if t == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if t == "blob":
        return _blob(text, name, errors)
    return text


def _blob(text, name, errors):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        errors.append("Invalid value for parameter %s: not base64: %r" % (name, text[:40]))
        return text


def _sname(shape, default):
    return shape.serialization.get("name", default)


def _join(prefix, name):
    return "%s.%s" % (prefix, name) if prefix else name


def _indexes(form, prefix):
    rx = re.compile(re.escape(prefix) + r"\.(\d+)(?:\.|\Z)")
    return sorted({int(m.group(1)) for k in form for m in [rx.match(k)] if m})


def _query_value(shape, prefix, form, used, errors, name):
    t = shape.type_name
    if t == "structure":
        out = {}
        for mname, mshape in shape.members.items():
            v = _query_value(mshape, _join(prefix, _sname(mshape, mname)), form, used, errors,
                             _join(name, mname))
            if v is not MISSING:
                out[mname] = v
        return out if out or not prefix else MISSING
    if t in ("list", "map") and form.get(prefix) == "":
        used.add(prefix)
        return [] if t == "list" else {}
    if t == "list":
        if shape.serialization.get("flattened"):
            lp = prefix
            if shape.member.serialization.get("name"):
                lp = ".".join(prefix.split(".")[:-1] + [_sname(shape.member, "")])
        else:
            lp = "%s.%s" % (prefix, _sname(shape.member, "member"))
        idx = _indexes(form, lp)
        if not idx:
            return MISSING
        if idx != list(range(1, len(idx) + 1)):
            errors.append("Invalid list %s: the indexes of %s.N must run 1..n without gaps "
                          "(got %s)" % (name, lp, idx))
        return [_query_value(shape.member, "%s.%d" % (lp, i), form, used, errors,
                             "%s[%d]" % (name, i - 1)) for i in idx]
    if t == "map":
        mp = prefix if shape.serialization.get("flattened") else prefix + ".entry"
        idx = _indexes(form, mp)
        if not idx:
            return MISSING
        out = {}
        ks, vs = _sname(shape.key, "key"), _sname(shape.value, "value")
        for i in idx:
            kk = "%s.%d.%s" % (mp, i, ks)
            if kk not in form:
                errors.append("Invalid map %s: entry %d has no %s" % (name, i, kk))
                continue
            used.add(kk)
            v = _query_value(shape.value, "%s.%d.%s" % (mp, i, vs), form, used, errors,
                             "%s.%s" % (name, form[kk]))
            out[form[kk]] = None if v is MISSING else v
        return out
    if prefix not in form:
        return MISSING
    used.add(prefix)
    return _scalar(shape, form[prefix], name, errors)


def _from_json(shape, value, name, errors):
    """A JSON wire value as botocore input (member names for serialized
    names, blobs checked as base64)."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict) and not shape.is_document_type:
        wire = {_sname(ms, mn): mn for mn, ms in shape.members.items()}
        out = {}
        for k, v in value.items():
            mn = wire.get(k)
            if mn is None:
                out[k] = v   # ParamValidator reports it as unknown
            else:
                out[mn] = _from_json(shape.members[mn], v, _join(name, mn), errors)
        return out
    if t == "list" and isinstance(value, list):
        return [_from_json(shape.member, v, "%s[%d]" % (name, i), errors)
                for i, v in enumerate(value)]
    if t == "map" and isinstance(value, dict):
        return {k: _from_json(shape.value, v, "%s.%s" % (name, k), errors)
                for k, v in value.items()}
    if t == "blob" and isinstance(value, str):
        _blob(value, name, errors)
    if t == "timestamp" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class _NotJson(Exception):
    pass


def _json_body(body):
    """The body's JSON object ({} when empty); _NotJson otherwise."""
    if not body or not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _NotJson("The body is not JSON: %s" % e)
    if not isinstance(doc, dict):
        raise _NotJson("The body must be a JSON object")
    return doc


def _enum_errors(model, value, shape, name, errors):
    t = shape.type_name
    if (t == "string" and shape.enum and isinstance(value, str) and value not in shape.enum
            and value not in ENUM_ADDITIONS.get((model, shape.name), ())):
        errors.append("Invalid value for parameter %s, value: %s, valid values: %s"
                      % (name or "input", value, ", ".join(shape.enum)))
    elif t == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                _enum_errors(model, v, shape.members[k], _join(name, k), errors)
    elif t == "list" and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _enum_errors(model, v, shape.member, "%s[%d]" % (name, i), errors)
    elif t == "map" and isinstance(value, dict):
        for k, v in value.items():
            _enum_errors(model, k, shape.key, "%s (key: %s)" % (name, k), errors)
            _enum_errors(model, v, shape.value, "%s.%s" % (name, k), errors)


def _identify_query(model, method, query, headers, body):
    errors = []
    form = dict(_query_pairs(query, errors))
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if body:
        if ctype != "application/x-www-form-urlencoded":
            model.unknown(["A Query API body must be application/x-www-form-urlencoded, "
                           "not %r" % ctype], "MissingAction")
        try:
            form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                  errors="strict"))
        except (UnicodeDecodeError, ValueError):
            errors.append("The form body is not UTF-8 percent-encoding")
    action, version = form.get("Action"), form.get("Version")
    api = model.sm.api_version
    if not action or action not in model.sm.operation_names:
        model.unknown(["Could not find operation %s for version %s (model %s)"
                       % (action or "(no Action)", version or "NO_VERSION_SPECIFIED",
                          model.name)])
    op = model.sm.operation_model(action)
    if version != api:
        model.fail(action, ["Version %s is not %s's API version %s"
                            % (version or "(none)", model.name, api)], "InvalidAction")
    return op, form, errors


def _params_query(op, form, errors):
    used = {"Action", "Version"}
    params = {}
    if op.input_shape is not None:
        params = _query_value(op.input_shape, "", form, used, errors, "")
    for k in form:
        if k not in used:
            errors.append('Unknown parameter in query: "%s" maps to no member of %s'
                          % (k, op.input_shape.name if op.input_shape else op.name + " (no input)"))
    return params


def _identify_json(model, method, path, headers):
    """The operation X-Amz-Target names (the Content-Type is left to the
    service: AWS's answers to a wrong one differ by service)."""
    target = headers.get("x-amz-target", "")
    prefix, _, name = target.rpartition(".")
    want = model.sm.metadata.get("targetPrefix")
    if prefix != want or name not in model.sm.operation_names:
        model.unknown(["X-Amz-Target %r names no operation of %s (%s.<Operation>)"
                       % (target, model.name, want)])
    op = model.sm.operation_model(name)
    errors = []
    if method != "POST" or path != "/":
        errors.append("%s is called with POST /, not %s %s" % (name, method, path))
    return op, errors


def _identify_rest(model, method, path, query):
    for r in model.routes:
        labels = r.match(method, path, query)
        if labels is not None:
            return r, labels
    model.unknown(["No operation of %s (API version %s) takes %s %s"
                   % (model.name, model.sm.api_version, method, path)])


def _params_rest(route, labels, query, headers, body, errors):
    op = route.op
    shape = op.input_shape
    params = {}
    if shape is None:
        if body and body.strip() not in (b"", b"{}"):
            errors.append("%s takes no body" % op.name)
        return params
    consumed = {k for k, _ in route.literals}
    qmap = None
    body_members = {}
    payload = shape.serialization.get("payload")
    for mn, ms in shape.members.items():
        loc = ms.serialization.get("location")
        wire = _sname(ms, mn)
        if loc == "uri":
            if wire in labels:
                params[mn] = _scalar(ms, labels[wire], mn, errors)
        elif loc == "querystring":
            if ms.type_name == "map":
                qmap = (mn, ms)
                continue
            values = [v for k, v in query if k == wire]
            if not values:
                continue
            consumed.add(wire)
            if ms.type_name == "list":
                params[mn] = [_scalar(ms.member, v, mn, errors) for v in values]
            else:
                if len(values) > 1:
                    errors.append("Query parameter %s given %d times" % (wire, len(values)))
                params[mn] = _scalar(ms, values[0], mn, errors)
        elif loc == "header":
            v = headers.get(wire.lower())
            if v is None:
                continue
            if ms.type_name == "list":
                params[mn] = [_scalar(ms.member, x.strip(), mn, errors) for x in v.split(",")]
            elif ms.type_name == "string" and ms.serialization.get("jsonvalue"):
                try:
                    params[mn] = json.loads(base64.b64decode(v, validate=True))
                except (binascii.Error, ValueError):
                    errors.append("Header %s must be base64-encoded JSON" % wire)
            else:
                params[mn] = _scalar(ms, v, mn, errors)
        elif loc == "headers":
            pre = wire.lower()
            got = {k[len(pre):]: v for k, v in headers.items() if k.startswith(pre)}
            if got:
                params[mn] = got
        elif loc is None:
            body_members[wire] = mn
    if qmap is not None:
        rest = {k: v for k, v in query if k not in consumed}
        if rest:
            params[qmap[0]] = rest
            consumed.update(rest)
    for k, _ in query:
        if k not in consumed:
            errors.append('Unknown query parameter "%s": no querystring member of %s takes it'
                          % (k, shape.name))
    if payload:
        ps = shape.members[payload]
        if ps.type_name == "structure":
            doc = _json_body(body)
            if doc:
                params[payload] = _from_json(ps, doc, payload, errors)
        elif body:
            params[payload] = body if ps.type_name == "blob" else body.decode("utf-8", "replace")
        return params
    doc = _json_body(body)
    if doc:
        for k, v in doc.items():
            mn = body_members.get(k)
            if mn is None:
                errors.append('Unknown parameter in body: "%s", must be one of: %s'
                              % (k, ", ".join(sorted(body_members)) or "(no body members)"))
                continue
            params[mn] = _from_json(shape.members[mn], v, mn, errors)
    return params


def _check_one(model, method, raw_target, headers, body):
    path, _, query = raw_target.partition("?")
    if model.protocol in ("query", "ec2"):
        op, form, errors = _identify_query(model, method, query, headers, body)
        if method != "POST" and body:
            errors.append("A Query API call with a body is a POST, not %s" % method)
        params = _params_query(op, form, errors)
    else:
        if model.protocol == "json":
            op, errors = _identify_json(model, method, path, headers)
        else:
            errors = []
            qpairs = _query_pairs(query, errors)
            route, labels = _identify_rest(model, method, path, qpairs)
            op = route.op
        try:
            if model.protocol != "json":
                params = _params_rest(route, labels, qpairs, headers, body, errors)
            elif op.input_shape is not None:
                params = _from_json(op.input_shape, _json_body(body), "", errors)
            else:
                params = {}
                if _json_body(body):
                    errors.append("%s takes no input" % op.name)
        except _NotJson as e:
            model.fail(op.name, [str(e)], "SerializationException")
    if op.input_shape is not None:
        report = ParamValidator().validate(params, op.input_shape)
        if report.has_errors():
            errors.extend(report.generate_report().split("\n"))
        _enum_errors(model.name, params, op.input_shape, "", errors)
    if errors:
        model.fail(op.name, errors)
    return Checked(model.name, op.name, params)


def check_request(models, method, raw_target, headers, body):
    """Validate one request against the botocore model(s) named by `models`
    (a name or a sequence of names). headers: any mapping (names in any
    case); body: bytes. Returns a Checked; raises ModelError."""
    if isinstance(models, str):
        models = (models,)
    hdrs = _lower_headers(headers)
    body = body or b""
    first = None
    for name in models:
        try:
            return _check_one(load(name), method, raw_target, hdrs, body)
        except ModelError as e:
            if e.operation is not None:
                raise
            first = first or e
    raise first
