"""A validator of CloudWatch Embedded Metric Format documents, after the
specification's required fields and limits
(docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html): the root node, the
_aws metadata object, MetricDirective, DimensionSet, MetricDefinition and
the target members. `validate(doc)` returns the list of what is wrong."""

import json
import math
import re

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
    "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
    "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}
NAMESPACE = re.compile(r"^[A-Za-z0-9._\-/#: ]{1,255}$")
MAX_METRICS = 100      # MetricDefinitions per directive
MAX_DIMENSIONS = 30    # dimension keys per DimensionSet
MAX_VALUES = 100       # values of one metric member (an array)
MAX_DOCUMENT = 1 << 20  # a CloudWatch Logs event


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate(doc):
    errs = []
    if not isinstance(doc, dict):
        return ["the root node is not an object"]
    aws = doc.get("_aws")
    if not isinstance(aws, dict):
        return ['no "_aws" object at the root']
    ts = aws.get("Timestamp")
    if not isinstance(ts, int) or isinstance(ts, bool):
        errs.append("_aws.Timestamp is not an integer: %r" % (ts,))
    elif not 10**12 <= ts < 10**14:
        errs.append("_aws.Timestamp %d is not in ms since the epoch" % ts)
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return errs + ["_aws.CloudWatchMetrics is not a non-empty array"]
    for di, d in enumerate(directives):
        where = "CloudWatchMetrics[%d]" % di
        if not isinstance(d, dict):
            errs.append(where + " is not an object")
            continue
        extra = set(d) - {"Namespace", "Dimensions", "Metrics"}
        if extra:
            errs.append("%s has members the specification does not define: %s"
                        % (where, sorted(extra)))
        ns = d.get("Namespace")
        if not isinstance(ns, str) or not NAMESPACE.match(ns) or ns.startswith("AWS/"):
            errs.append("%s.Namespace is not a valid namespace: %r" % (where, ns))
        dims = d.get("Dimensions")
        if not isinstance(dims, list):
            errs.append(where + ".Dimensions is not an array")
            dims = []
        dim_names = set()
        for si, ds in enumerate(dims):
            if not isinstance(ds, list):
                errs.append("%s.Dimensions[%d] is not an array" % (where, si))
                continue
            if len(ds) > MAX_DIMENSIONS:
                errs.append("%s.Dimensions[%d] has %d keys (at most %d)"
                            % (where, si, len(ds), MAX_DIMENSIONS))
            for k in ds:
                if not isinstance(k, str) or not 1 <= len(k) <= 255:
                    errs.append("%s: dimension key %r is not a string of 1 to 255" % (where, k))
                    continue
                dim_names.add(k)
                v = doc.get(k)
                if not isinstance(v, str):
                    errs.append("%s: dimension %s has no string member at the root: %r"
                                % (where, k, v))
                elif not 1 <= len(v) <= 1024 or not v.strip():
                    errs.append("%s: dimension %s's value %r is empty or too long"
                                % (where, k, v))
        metrics = d.get("Metrics")
        if not isinstance(metrics, list):
            errs.append(where + ".Metrics is not an array")
            continue
        if len(metrics) > MAX_METRICS:
            errs.append("%s has %d metrics (at most %d)" % (where, len(metrics), MAX_METRICS))
        seen = set()
        for mi, m in enumerate(metrics):
            mw = "%s.Metrics[%d]" % (where, mi)
            if not isinstance(m, dict):
                errs.append(mw + " is not an object")
                continue
            extra = set(m) - {"Name", "Unit", "StorageResolution"}
            if extra:
                errs.append("%s has undefined members %s" % (mw, sorted(extra)))
            name = m.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 255:
                errs.append("%s.Name is not a string of 1 to 255: %r" % (mw, name))
                continue
            if name in seen:
                errs.append("%s: metric %s defined twice" % (mw, name))
            seen.add(name)
            if name in dim_names:
                errs.append("%s: %s is both a metric and a dimension" % (mw, name))
            if "Unit" in m and m["Unit"] not in UNITS:
                errs.append("%s.Unit %r is not a CloudWatch unit" % (mw, m["Unit"]))
            if "StorageResolution" in m and m["StorageResolution"] not in (1, 60):
                errs.append("%s.StorageResolution is not 1 or 60" % mw)
            v = doc.get(name)
            if isinstance(v, list):
                if not v or len(v) > MAX_VALUES or not all(_number(x) for x in v):
                    errs.append("%s: member %s is not an array of 1 to %d numbers"
                                % (mw, name, MAX_VALUES))
            elif not _number(v):
                errs.append("%s: metric %s has no numeric member at the root: %r"
                            % (mw, name, v))
    return errs


def parse_lines(text):
    """Every line of `text` as an EMF document: (documents, errors)."""
    docs, errs = [], []
    for i, line in enumerate(text.splitlines()):
        if len(line.encode()) > MAX_DOCUMENT:
            errs.append("line %d: larger than a log event" % (i + 1))
        try:
            doc = json.loads(line)
        except ValueError as e:
            errs.append("line %d: not JSON: %s: %r" % (i + 1, e, line[:200]))
            continue
        errs += ["line %d: %s" % (i + 1, e) for e in validate(doc)]
        docs.append(doc)
    return docs, errs
