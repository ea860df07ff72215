#!/usr/bin/python3
"""Checks deploy/template.yaml (the SAM template) against the CloudFormation
resource specification of the npm package @aws-cdk/cfnspec (pinned in
tests/node/package-lock.json; spec/specification.json, which also holds the
AWS::Serverless::* types), so that the template cannot drift from what the
resource types accept:

  - every resource type exists; every property name exists for its type,
    recursively into property types (Type / ItemType / PrimitiveType, and
    the SAM spec's Types / PrimitiveTypes / Inclusive*); every Required
    property is present; values have a plausible shape (a string where a
    String is expected, a list where a List, a number where an Integer;
    intrinsics accepted, both branches of an Fn::If checked, a Ref to a list
    parameter only where a list goes);
  - each Ref / Fn::Sub names a parameter, resource or pseudo parameter, each
    Fn::GetAtt a resource and an attribute of its type (for AWS::Serverless::*
    types, the attributes of the resource SAM generates under the same
    logical id); each condition used is defined and each one defined is
    used; every parameter is used; parameter defaults satisfy their own
    AllowedValues / AllowedPattern / MinValue / MaxValue;
  - IAM policy documents: statements with known keys, an Effect, unique Sids;
  - fanout's own rules: CodeUri / ContentUri name dist/ packages of the
    default Architecture, and for every combination of SourceArn (empty or
    not) and ReportBatchItemFailures, FANOUT_REPORT_BATCH_ITEM_FAILURES is
    "true" exactly when an event source mapping exists with
    FunctionResponseTypes [ReportBatchItemFailures].

  check_template.py [TEMPLATE]     check (default: deploy/template.yaml)
  check_template.py --self-test    the checker against broken templates
  check_template.py --contract [NAME=VALUE ...]
                                   print deploy_contract() as JSON

The specification: $FANOUT_CFNSPEC, else
tests/node/node_modules/@aws-cdk/cfnspec/spec/specification.json
(scripts/setup.sh --test installs it). deploy_contract() is what
`fanout deploy` must agree with (see its docstring).
"""

import copy
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("FANOUT_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
TEMPLATE = os.path.join(SOURCE_DIR, "deploy", "template.yaml")
SPEC = os.environ.get("FANOUT_CFNSPEC") or os.path.join(
    SOURCE_DIR, "tests", "node", "node_modules", "@aws-cdk", "cfnspec", "spec",
    "specification.json")

PSEUDO = {"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
          "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}
TOP_KEYS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules",
            "Mappings", "Conditions", "Transform", "Resources", "Outputs"}
RESOURCE_KEYS = {"Type", "Properties", "Condition", "DependsOn", "Metadata", "DeletionPolicy",
                 "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy"}
PARAMETER_KEYS = {"Type", "Default", "Description", "AllowedValues", "AllowedPattern",
                  "ConstraintDescription", "MinLength", "MaxLength", "MinValue", "MaxValue",
                  "NoEcho"}
PARAMETER_TYPES = {"String", "Number", "List<Number>", "CommaDelimitedList"}
LIST_PARAMETER = re.compile(r"^(CommaDelimitedList|List<.*>)$")
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                  "Resource", "NotResource", "Condition"}
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# The resource SAM generates under the same logical id (its attributes are
# the ones Fn::GetAtt reaches).
SAM_GENERATES = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
    "AWS::Serverless::SimpleTable": "AWS::DynamoDB::Table",
    "AWS::Serverless::Api": "AWS::ApiGateway::RestApi",
    "AWS::Serverless::HttpApi": "AWS::ApiGatewayV2::Api",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
    "AWS::Serverless::Application": "AWS::CloudFormation::Stack",
}
# Intrinsics that give a list / a scalar (for the shape checks).
LIST_FUNCTIONS = {"Fn::Split", "Fn::GetAZs", "Fn::Cidr"}
SCALAR_FUNCTIONS = {"Fn::Join", "Fn::Sub", "Fn::Base64", "Fn::ImportValue"}


# ---- YAML with CloudFormation's short forms (!Ref, !GetAtt, !If, ...) ----

class CfnLoader(yaml.SafeLoader):
    pass


def _short_form(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _short_form)


def load_template(path_or_text):
    """The template as plain data, short forms turned into their long forms."""
    if "\n" in path_or_text:
        return yaml.load(path_or_text, Loader=CfnLoader)
    with open(path_or_text, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)


def load_spec(path=SPEC):
    if not os.path.exists(path):
        raise SystemExit("check_template: no CloudFormation specification at %s: install "
                         "tests/node's packages (scripts/setup.sh --test, or npm ci in "
                         "tests/node) or set FANOUT_CFNSPEC" % path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def intrinsic(value):
    """The intrinsic's name when value is one ({"Ref": ...}, {"Fn::If": ...}), else None."""
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
            return key
    return None


def no_value(value):
    return value == {"Ref": "AWS::NoValue"}


# ---- the checker ----

class Checker:
    def __init__(self, template, spec, template_path=None):
        self.t = template if isinstance(template, dict) else {}
        self.spec = spec
        self.path = template_path
        self.errors = []
        self.params = self.t.get("Parameters") or {}
        self.resources = self.t.get("Resources") or {}
        self.conditions = self.t.get("Conditions") or {}
        self.used_params = set()
        self.used_conditions = set()

    def error(self, where, message):
        self.errors.append("%s: %s" % (where, message))

    # -- specification lookups --
    def property_type(self, rtype, name, where):
        spec = self.spec["PropertyTypes"]
        for key in (rtype + "." + name, name):
            if key in spec:
                return spec[key]
        self.error(where, "the specification has no property type %s for %s" % (name, rtype))
        return None

    def attributes(self, rtype):
        rt = self.spec["ResourceTypes"].get(SAM_GENERATES.get(rtype, rtype), {})
        return set((rt.get("Attributes") or {}).keys())

    # -- shapes --
    def shapes(self, pdef):
        """A property definition as alternatives: ("prim", P), ("type", T),
        ("list", item shapes), ("map", item shapes)."""
        out = []
        if "PrimitiveType" in pdef:
            out.append(("prim", pdef["PrimitiveType"]))
        out += [("prim", p) for p in pdef.get("PrimitiveTypes", [])]
        out += [("type", t) for t in pdef.get("Types", [])]
        t = pdef.get("Type")
        if t in ("List", "Map"):
            items = []
            if "PrimitiveItemType" in pdef:
                items.append(("prim", pdef["PrimitiveItemType"]))
            if "ItemType" in pdef:
                items.append(("type", pdef["ItemType"]))
            items += [("prim", p) for p in pdef.get("PrimitiveItemTypes", [])]
            items += [("type", i) for i in pdef.get("ItemTypes", [])]
            out.append(("list" if t == "List" else "map", items))
        elif t:
            out.append(("type", t))
        # SAM: a list whose items may be of several kinds (Policies)
        inclusive = [("prim", p) for p in pdef.get("InclusivePrimitiveItemTypes", [])]
        inclusive += [("type", i) for i in pdef.get("InclusiveItemTypes", [])]
        if inclusive:
            out.append(("list", inclusive))
        return out

    def intrinsic_kind(self, value):
        """"list", "scalar" or None (unknown) for what an intrinsic gives."""
        name = intrinsic(value)
        if name == "Ref":
            target = value["Ref"]
            if target in self.params:
                ptype = str(self.params[target].get("Type", ""))
                return "list" if LIST_PARAMETER.match(ptype) else "scalar"
            if target in self.resources:
                return "scalar"
            return None
        if name in LIST_FUNCTIONS:
            return "list"
        if name in SCALAR_FUNCTIONS:
            return "scalar"
        return None

    def check_value(self, value, pdef, rtype, where):
        name = intrinsic(value)
        if name == "Fn::If":
            args = value["Fn::If"]
            if isinstance(args, list) and len(args) == 3:
                for branch in args[1:]:
                    if not no_value(branch):
                        self.check_value(branch, pdef, rtype, where)
            return
        alternatives = self.shapes(pdef)
        if not alternatives:
            return
        best = None
        for shape in alternatives:
            saved = self.errors
            self.errors = []
            self.check_shape(value, shape, rtype, where)
            found, self.errors = self.errors, saved
            if not found:
                return
            if best is None or len(found) < len(best):
                best = found
        self.errors += best

    def check_shape(self, value, shape, rtype, where):
        kind, what = shape
        name = intrinsic(value)
        if name:
            got = self.intrinsic_kind(value)
            want = "list" if kind == "list" else "scalar" if kind == "prim" else None
            if got and want and got != want:
                self.error(where, "%s gives a %s where a %s is expected" % (
                    name, got, "List" if want == "list" else what))
            return
        if kind == "prim":
            if not self.primitive_ok(value, what):
                self.error(where, "%r is not of type %s" % (value, what))
        elif kind in ("list", "map"):
            if kind == "list" and not isinstance(value, list):
                self.error(where, "%r is not a List" % (value,))
                return
            if kind == "map" and not isinstance(value, dict):
                self.error(where, "%r is not a Map" % (value,))
                return
            items = enumerate(value) if kind == "list" else value.items()
            for key, item in items:
                if what and not no_value(item):
                    self.check_value(item, self.item_def(what), rtype, "%s[%s]" % (where, key))
        else:
            ptype = self.property_type(rtype, what, where)
            if ptype is None:
                return
            if not isinstance(value, dict):
                self.error(where, "%r is not a %s (an object)" % (value, what))
                return
            self.check_properties(value, ptype.get("Properties") or {}, rtype, what, where)

    @staticmethod
    def item_def(items):
        d = {"PrimitiveTypes": [w for k, w in items if k == "prim"],
             "Types": [w for k, w in items if k == "type"]}
        return d

    @staticmethod
    def primitive_ok(value, primitive):
        if primitive == "String":
            return isinstance(value, (str, int, float)) and not isinstance(value, bool)
        if primitive in ("Integer", "Long"):
            if isinstance(value, bool):
                return False
            return isinstance(value, int) or (
                isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value) is not None)
        if primitive == "Double":
            if isinstance(value, bool):
                return False
            if isinstance(value, (int, float)):
                return True
            return isinstance(value, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value)
        if primitive == "Boolean":
            return isinstance(value, bool) or value in ("true", "false")
        if primitive == "Json":
            return isinstance(value, (dict, list, str))
        if primitive == "Timestamp":
            return isinstance(value, str)
        return True

    def check_properties(self, props, defs, rtype, typename, where):
        if intrinsic(props):
            return
        for key, value in props.items():
            if key not in defs:
                self.error("%s.%s" % (where, key), "%s has no property %s (known: %s)" % (
                    typename, key, ", ".join(sorted(defs))))
            elif not no_value(value):
                self.check_value(value, defs[key], rtype, "%s.%s" % (where, key))
        for key, d in sorted(defs.items()):
            if d.get("Required") and key not in props:
                self.error(where, "%s needs property %s" % (typename, key))

    # -- references --
    def note_ref(self, target, where, in_conditions=False):
        if target in self.params:
            self.used_params.add(target)
        elif target in PSEUDO:
            pass
        elif target in self.resources and not in_conditions:
            pass
        elif target in self.resources:
            self.error(where, "a condition cannot Ref resource %s" % target)
        else:
            self.error(where, "Ref %s: no parameter, resource or pseudo parameter has this name"
                       % target)

    def note_getatt(self, target, where):
        if not (isinstance(target, list) and len(target) == 2 and
                all(isinstance(x, str) for x in target)):
            self.error(where, "Fn::GetAtt needs [resource, attribute], not %r" % (target,))
            return
        res, attr = target
        if res not in self.resources:
            self.error(where, "Fn::GetAtt %s.%s: no resource %s" % (res, attr, res))
            return
        rtype = self.resources[res].get("Type", "")
        if attr not in self.attributes(rtype):
            self.error(where, "Fn::GetAtt %s.%s: %s has no attribute %s (known: %s)" % (
                res, attr, rtype, attr, ", ".join(sorted(self.attributes(rtype))) or "none"))

    def note_condition(self, name, where):
        if not isinstance(name, str) or name not in self.conditions:
            self.error(where, "condition %r is not defined in Conditions" % (name,))
        else:
            self.used_conditions.add(name)

    def walk(self, node, where, in_conditions=False):
        name = intrinsic(node)
        if name == "Ref":
            self.note_ref(node["Ref"], where, in_conditions)
            return
        if name == "Fn::GetAtt":
            self.note_getatt(node["Fn::GetAtt"], where)
            return
        if name == "Condition" and in_conditions:
            self.note_condition(node["Condition"], where)
            return
        if name == "Fn::If":
            args = node["Fn::If"]
            if not (isinstance(args, list) and len(args) == 3):
                self.error(where, "Fn::If needs [condition, then, else]")
            else:
                self.note_condition(args[0], where)
                self.walk(args[1:], where, in_conditions)
            return
        if name == "Fn::Sub":
            args = node["Fn::Sub"]
            text, names = (args, {}) if isinstance(args, str) else (args[0], args[1])
            for var in re.findall(r"\$\{([^!}][^}]*)\}", text):
                var = var.strip()
                if var in names:
                    continue
                if "." in var and not var.startswith("AWS::"):
                    self.note_getatt(var.split(".", 1), where)
                else:
                    self.note_ref(var, where, in_conditions)
            self.walk(names, where, in_conditions)
            return
        if isinstance(node, dict):
            for key, value in node.items():
                self.walk(value, "%s.%s" % (where, key), in_conditions)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.walk(value, "%s[%d]" % (where, i), in_conditions)

    # -- sections --
    def check_parameters(self):
        for name, p in self.params.items():
            where = "Parameters.%s" % name
            if not isinstance(p, dict):
                self.error(where, "not an object")
                continue
            for key in p:
                if key not in PARAMETER_KEYS:
                    self.error(where, "unknown parameter attribute %s" % key)
            ptype = p.get("Type")
            if ptype not in PARAMETER_TYPES and not str(ptype).startswith("AWS::") and \
                    not str(ptype).startswith("List<AWS::"):
                self.error(where, "unknown parameter Type %r" % (ptype,))
            if "Default" not in p:
                continue
            default = p["Default"]
            values = [str(default)] if not LIST_PARAMETER.match(str(ptype)) else \
                str(default).split(",")
            for v in values:
                if "AllowedValues" in p and v not in [str(a) for a in p["AllowedValues"]]:
                    self.error(where, "Default %r is not in AllowedValues" % v)
                if "AllowedPattern" in p and \
                        re.fullmatch(p["AllowedPattern"], v) is None:
                    self.error(where, "Default %r does not match AllowedPattern" % v)
                if ptype == "Number":
                    try:
                        n = float(v)
                    except ValueError:
                        self.error(where, "Default %r is not a Number" % v)
                        continue
                    if "MinValue" in p and n < float(p["MinValue"]):
                        self.error(where, "Default %s is below MinValue" % v)
                    if "MaxValue" in p and n > float(p["MaxValue"]):
                        self.error(where, "Default %s is above MaxValue" % v)

    def check_policy(self, doc, where):
        if intrinsic(doc) or not isinstance(doc, dict):
            return
        statements = doc.get("Statement")
        if statements is None:
            self.error(where, "policy document without Statement")
            return
        if isinstance(statements, dict):
            statements = [statements]
        sids = set()
        for i, st in enumerate(statements if isinstance(statements, list) else []):
            branches = [st]
            if intrinsic(st) == "Fn::If" and len(st["Fn::If"]) == 3:
                branches = [b for b in st["Fn::If"][1:] if not no_value(b)]
            for st in branches:
                w = "%s.Statement[%d]" % (where, i)
                if not isinstance(st, dict) or intrinsic(st):
                    continue
                for key in st:
                    if key not in STATEMENT_KEYS:
                        self.error(w, "unknown statement key %s" % key)
                if st.get("Effect") not in ("Allow", "Deny"):
                    self.error(w, "Effect must be Allow or Deny, not %r" % (st.get("Effect"),))
                if "Action" not in st and "NotAction" not in st:
                    self.error(w, "statement without Action")
                if "Sid" in st:
                    if st["Sid"] in sids:
                        self.error(w, "Sid %s twice in one policy" % st["Sid"])
                    sids.add(st["Sid"])

    def check_resources(self):
        rtypes = self.spec["ResourceTypes"]
        transforms = self.t.get("Transform") or []
        if isinstance(transforms, str):
            transforms = [transforms]
        if not self.resources:
            self.error("Resources", "no resources")
        for name, r in self.resources.items():
            where = "Resources.%s" % name
            if not isinstance(r, dict):
                self.error(where, "not an object")
                continue
            for key in r:
                if key not in RESOURCE_KEYS:
                    self.error(where, "unknown resource attribute %s" % key)
            rtype = r.get("Type")
            if rtype not in rtypes:
                self.error(where, "unknown resource type %r" % (rtype,))
                continue
            rt = rtypes[rtype]
            if rt.get("RequiredTransform") and rt["RequiredTransform"] not in transforms:
                self.error(where, "%s needs Transform %s" % (rtype, rt["RequiredTransform"]))
            if "Condition" in r:
                self.note_condition(r["Condition"], where + ".Condition")
            depends = r.get("DependsOn", [])
            for d in [depends] if isinstance(depends, str) else depends:
                if d not in self.resources:
                    self.error(where + ".DependsOn", "no resource %s" % d)
            props = r.get("Properties") or {}
            self.check_properties(props, rt.get("Properties") or {}, rtype, rtype,
                                  where + ".Properties")
            self.walk(props, where + ".Properties")
            for key in ("AssumeRolePolicyDocument", "PolicyDocument"):
                if key in props:
                    self.check_policy(props[key], "%s.Properties.%s" % (where, key))
            for i, pol in enumerate(props.get("Policies") or []):
                if isinstance(pol, dict) and "PolicyDocument" in pol:
                    self.check_policy(pol["PolicyDocument"],
                                      "%s.Properties.Policies[%d].PolicyDocument" % (where, i))

    def check(self):
        if not isinstance(self.t, dict) or not self.t:
            self.error("template", "not a YAML mapping")
            return self.errors
        for key in self.t:
            if key not in TOP_KEYS:
                self.error("template", "unknown section %s" % key)
        names = {}
        for section in ("Parameters", "Resources"):
            for name in self.t.get(section) or {}:
                if name in names:
                    self.error("%s.%s" % (section, name), "logical id also in %s" % names[name])
                names[name] = section
        self.check_parameters()
        for name, c in self.conditions.items():
            self.walk(c, "Conditions.%s" % name, in_conditions=True)
        for name, rule in (self.t.get("Rules") or {}).items():
            self.walk(rule, "Rules.%s" % name, in_conditions=True)
        self.check_resources()
        for name, o in (self.t.get("Outputs") or {}).items():
            where = "Outputs.%s" % name
            if not isinstance(o, dict) or "Value" not in o:
                self.error(where, "an output needs a Value")
                continue
            if "Condition" in o:
                self.note_condition(o["Condition"], where + ".Condition")
            self.walk(o, where)
        for name in self.params:
            if name not in self.used_params:
                self.error("Parameters.%s" % name, "parameter is never used")
        for name in self.conditions:
            if name not in self.used_conditions:
                self.error("Conditions.%s" % name, "condition is never used")
        return self.errors


# ---- a small evaluator: the template as CloudFormation would resolve it ----

_GONE = object()  # AWS::NoValue


class Evaluator:
    """Resolves a template for given parameter values (defaults otherwise):
    parameters, pseudo parameters, conditions, Fn::If/Equals/Not/And/Or/Join/
    Split/Select/Sub. A Ref to a resource gives its name where the type's Ref
    is a name (table, role, function) and that name is known, else
    "<Ref Name>"; Fn::GetAtt Name.Arn of those three the ARN AWS gives them,
    any other "<GetAtt Name.Attr>"."""

    REF_NAME = {"AWS::DynamoDB::Table": "TableName", "AWS::IAM::Role": "RoleName",
                "AWS::Serverless::Function": "FunctionName"}
    ARN = {"AWS::DynamoDB::Table": "arn:{P}:dynamodb:{R}:{A}:table/{name}",
           "AWS::IAM::Role": "arn:{P}:iam::{A}:role{path}{name}",
           "AWS::Serverless::Function": "arn:{P}:lambda:{R}:{A}:function:{name}"}

    def __init__(self, template, parameters=None, pseudo=None):
        self.t = template
        self.values = {}
        for name, p in (template.get("Parameters") or {}).items():
            v = str((parameters or {}).get(name, p.get("Default", "")))
            if LIST_PARAMETER.match(str(p.get("Type", ""))):
                v = v.split(",")
            elif p.get("Type") == "Number":
                v = int(v) if re.fullmatch(r"-?[0-9]+", v) else float(v)
            self.values[name] = v
        unknown = set(parameters or {}) - set(self.values)
        if unknown:
            raise ValueError("no such parameter: %s" % ", ".join(sorted(unknown)))
        self.pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1",
                       "AWS::AccountId": "123456789012", "AWS::StackName": "fanout",
                       "AWS::URLSuffix": "amazonaws.com"}
        self.pseudo.update(pseudo or {})
        self.conds = {}

    def condition(self, name):
        if name not in self.conds:
            self.conds[name] = bool(self.eval(self.t["Conditions"][name]))
        return self.conds[name]

    def ref(self, target):
        if target == "AWS::NoValue":
            return _GONE
        if target in self.values:
            return self.values[target]
        if target in self.pseudo:
            return self.pseudo[target]
        r = self.t["Resources"][target]
        prop = self.REF_NAME.get(r["Type"])
        if prop and prop in (r.get("Properties") or {}):
            return self.eval(r["Properties"][prop])
        return "<Ref %s>" % target

    def getatt(self, arg):
        res, attr = arg
        r = self.t["Resources"][res]
        name = self.ref(res)
        if attr != "Arn" or r["Type"] not in self.ARN or name.startswith("<"):
            return "<GetAtt %s.%s>" % (res, attr)
        path = self.eval((r.get("Properties") or {}).get("Path", "/"))
        return self.ARN[r["Type"]].format(P=self.pseudo["AWS::Partition"],
                                          R=self.pseudo["AWS::Region"],
                                          A=self.pseudo["AWS::AccountId"], path=path, name=name)

    def sub(self, text, names):
        def one(m):
            var = m.group(1).strip()
            if var.startswith("!"):
                return "${" + var[1:] + "}"
            if var in names:
                return str(names[var])
            if "." in var and not var.startswith("AWS::"):
                return str(self.getatt(var.split(".", 1)))
            return str(self.ref(var))
        return re.sub(r"\$\{([^}]*)\}", one, text)

    def eval(self, node):
        name = intrinsic(node)
        if name is None:
            if isinstance(node, dict):
                out = {k: self.eval(v) for k, v in node.items()}
                return {k: v for k, v in out.items() if v is not _GONE}
            if isinstance(node, list):
                return [v for v in (self.eval(x) for x in node) if v is not _GONE]
            return node
        arg = node[name]
        if name == "Ref":
            return self.ref(arg)
        if name == "Condition":
            return self.condition(arg)
        if name == "Fn::If":
            return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
        if name == "Fn::Equals":
            a, b = (self.eval(x) for x in arg)
            return str(a) == str(b)
        if name == "Fn::Not":
            return not self.eval(arg[0])
        if name == "Fn::And":
            return all(self.eval(x) for x in arg)
        if name == "Fn::Or":
            return any(self.eval(x) for x in arg)
        if name == "Fn::Join":
            return arg[0].join(str(x) for x in self.eval(arg[1]))
        if name == "Fn::Split":
            return str(self.eval(arg[1])).split(arg[0])
        if name == "Fn::Select":
            return self.eval(arg[1])[int(self.eval(arg[0]))]
        if name == "Fn::Sub":
            if isinstance(arg, str):
                return self.sub(arg, {})
            return self.sub(arg[0], {k: self.eval(v) for k, v in arg[1].items()})
        if name == "Fn::GetAtt":
            return self.getatt(arg)
        raise ValueError("cannot evaluate %s" % name)

    def resources(self):
        """{logical id: (Type, resolved Properties)} of the resources created."""
        out = {}
        for name, r in self.t["Resources"].items():
            if "Condition" in r and not self.condition(r["Condition"]):
                continue
            out[name] = (r["Type"], self.eval(r.get("Properties") or {}))
        return out


def _one(resources, rtype):
    found = [props for t, props in resources.values() if t == rtype]
    if len(found) != 1:
        raise ValueError("the template has %d resources of type %s, not 1" % (len(found), rtype))
    return found[0]


def deploy_contract(template=TEMPLATE, parameters=None):
    """What `fanout deploy` / `fanout hook` must agree with, from the template
    resolved for `parameters` (template parameter name -> value, e.g.
    {"FunctionName": "fanout", "SourceArn": "arn:aws:kinesis:...",
    "ReportBatchItemFailures": "true"}; defaults otherwise; partition "aws",
    region "us-east-1", account "123456789012"). Returns:

    {"table": {"name": "fanoutTargets", "billing_mode": "PAY_PER_REQUEST",
               "key_schema": [{"AttributeName": "sourceArn", "KeyType": "HASH"},
                              {"AttributeName": "id", "KeyType": "RANGE"}],
               "attribute_definitions": [{"AttributeName": "sourceArn",
                                          "AttributeType": "S"}, ...],
               "tags": {"fanout:function": "fanout"}},
     "role": {"name": "fanoutRole", "path": "/",
              "trust_policy": {... the AssumeRolePolicyDocument ...},
              "trust_principal": "lambda.amazonaws.com",
              "tags": {"fanout:function": "fanout"},
              "policy_name": "fanout",
              "statements": [{"Sid": "Logs", "Actions": ["logs:CreateLogGroup", ...],
                              "Resources": ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fanout", ...]},
                             {"Sid": "Table", ...}, ...],   # in template order;
              # Resources: ARNs resolved ("<GetAtt X.Y>" for what
              # cannot be known before deployment); the template's target statements are one per service
              # ("TargetsSns", "TargetsSqs", ... "TargetsRoles") where deploy
              # may merge them into one "Targets"
              "managed_policies": [] or ["arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]},
     "layer": {"name": "fanout-plugins", "compatible_runtimes": ["provided.al2023"],
               "license": "Apache-2.0"},
     "function": {"name": "fanout", "runtime": "provided.al2023", "handler": "bootstrap",
                  "architectures": ["x86_64"], "memory_size": 128, "timeout": 30,
                  "environment": {"FANOUT_TABLE": "fanoutTargets",
                                  "FANOUT_REPORT_BATCH_ITEM_FAILURES": "false"},
                  "environment_names": ["FANOUT_REPORT_BATCH_ITEM_FAILURES", "FANOUT_TABLE"],
                  "vpc_config": None or {"SubnetIds": [...], "SecurityGroupIds": [...]},
                  "tags": {"fanout:function": "fanout"}},
     "event_source": None (SourceArn empty) or
                     {"event_source_arn": "...", "starting_position": "LATEST",
                      "batch_size": 100, "enabled": True,
                      "function_response_types": [] or ["ReportBatchItemFailures"]}}
    """
    t = load_template(template) if isinstance(template, str) else template
    res = Evaluator(t, parameters).resources()
    table = _one(res, "AWS::DynamoDB::Table")
    role = _one(res, "AWS::IAM::Role")
    layer = _one(res, "AWS::Serverless::LayerVersion")
    fn = _one(res, "AWS::Serverless::Function")
    esms = [p for ty, p in res.values() if ty == "AWS::Lambda::EventSourceMapping"]

    def as_list(v):
        return v if isinstance(v, list) else [v]

    def tags(v):
        return v if isinstance(v, dict) else {x["Key"]: x["Value"] for x in v or []}

    (policy,) = [p for p in role.get("Policies", []) if p["PolicyName"] == "fanout"]
    trust = role["AssumeRolePolicyDocument"]
    env = (fn.get("Environment") or {}).get("Variables") or {}
    esm = esms[0] if esms else None
    return {
        "table": {"name": table.get("TableName"), "billing_mode": table.get("BillingMode"),
                  "key_schema": table["KeySchema"],
                  "attribute_definitions": table["AttributeDefinitions"],
                  "tags": tags(table.get("Tags"))},
        "role": {"name": role.get("RoleName"), "path": role.get("Path"),
                 "trust_policy": trust,
                 "trust_principal": as_list(trust["Statement"])[0]["Principal"]["Service"],
                 "tags": tags(role.get("Tags")),
                 "policy_name": policy["PolicyName"],
                 "statements": [{"Sid": s.get("Sid"), "Actions": as_list(s["Action"]),
                                 "Resources": as_list(s["Resource"])}
                                for s in as_list(policy["PolicyDocument"]["Statement"])],
                 "managed_policies": role.get("ManagedPolicyArns", [])},
        "layer": {"name": layer.get("LayerName"),
                  "compatible_runtimes": layer.get("CompatibleRuntimes"),
                  "license": layer.get("LicenseInfo")},
        "function": {"name": fn.get("FunctionName"), "runtime": fn.get("Runtime"),
                     "handler": fn.get("Handler"), "architectures": fn.get("Architectures"),
                     "memory_size": fn.get("MemorySize"), "timeout": fn.get("Timeout"),
                     "environment": env, "environment_names": sorted(env),
                     "vpc_config": fn.get("VpcConfig"), "tags": tags(fn.get("Tags"))},
        "event_source": None if esm is None else {
            "event_source_arn": esm.get("EventSourceArn"),
            "starting_position": esm.get("StartingPosition"),
            "batch_size": esm.get("BatchSize"), "enabled": esm.get("Enabled", True),
            "function_response_types": esm.get("FunctionResponseTypes", [])},
    }


# ---- fanout's own rules ----

def check_fanout(template, template_path):
    """Rules the spec cannot express: the packages match the default
    Architecture; the function answers batchItemFailures exactly when its
    event source mapping expects them."""
    errors = []
    params = template.get("Parameters") or {}
    arch = (params.get("Architecture") or {}).get("Default")
    base = os.path.dirname(os.path.abspath(template_path)) if template_path else SOURCE_DIR
    dist = os.path.join(SOURCE_DIR, "dist")
    for name, r in (template.get("Resources") or {}).items():
        props = r.get("Properties") or {}
        for key, kind in (("CodeUri", "function"), ("ContentUri", "plugins")):
            if key not in props:
                continue
            uri = props[key]
            want = os.path.join(dist, "fanout-%s-%s.zip" % (kind, arch))
            if not isinstance(uri, str) or \
                    os.path.normpath(os.path.join(base, uri)) != os.path.normpath(want):
                errors.append("Resources.%s.Properties.%s: %r is not %s, the package "
                              "scripts/package.sh --arch %s writes (relative to the "
                              "template)" % (name, key, uri, os.path.relpath(want, base), arch))
    for source in ("", "arn:aws:kinesis:us-east-1:123456789012:stream/in"):
        for report in ("true", "false"):
            given = {"SourceArn": source, "ReportBatchItemFailures": report}
            try:
                c = deploy_contract(template, given)
            except (ValueError, KeyError, TypeError, IndexError) as e:
                errors.append("with %s: the template does not resolve: %s" % (given, e))
                continue
            env = c["function"]["environment"].get("FANOUT_REPORT_BATCH_ITEM_FAILURES")
            esm = c["event_source"]
            expects = esm is not None and \
                "ReportBatchItemFailures" in esm["function_response_types"]
            if env != ("true" if expects else "false"):
                errors.append("with %s: FANOUT_REPORT_BATCH_ITEM_FAILURES is %r but the "
                              "event source mapping %s" % (given, env, "expects batchItem"
                              "Failures" if expects else "does not expect batchItemFailures"
                              if esm else "does not exist"))
            if (esm is None) != (source == ""):
                errors.append("with %s: an event source mapping %s" % (
                    given, "exists" if esm else "is missing"))
    return errors


def check_file(path, spec):
    template = load_template(path)
    errors = Checker(template, spec, path).check()
    if not errors:  # the evaluator needs a template whose references hold
        errors += check_fanout(template, path)
    return errors


# ---- self-test: broken copies of the template, and small inline ones ----

def _mutations():
    """(what, change(template) -> None, a fragment the error must contain)"""
    def res(t, name):
        return t["Resources"][name]["Properties"]

    def rename(d, old, new):
        d[new] = d.pop(old)

    return [
        ("misspelled property", lambda t: rename(res(t, "Function"), "CodeUri", "CodeUrl"),
         "has no property CodeUrl"),
        ("misspelled nested property", lambda t: rename(
            res(t, "Function")["VpcConfig"]["Fn::If"][1], "SubnetIds", "SubnetId"),
         "has no property SubnetId"),
        ("missing required property", lambda t: res(t, "Table").pop("KeySchema"),
         "needs property KeySchema"),
        ("missing required nested property",
         lambda t: res(t, "Table")["KeySchema"][1].pop("KeyType"), "needs property KeyType"),
        ("undefined Ref", lambda t: res(t, "Function").update(MemorySize={"Ref": "Memory"}),
         "Ref Memory: no parameter"),
        ("undefined Ref in Fn::Sub",
         lambda t: res(t, "Role").update(RoleName={"Fn::Sub": "${Function}${Nope}Role"}),
         "Ref Nope"),
        ("unknown GetAtt attribute",
         lambda t: res(t, "Function").update(Role={"Fn::GetAtt": ["Role", "Name"]}),
         "has no attribute Name"),
        ("undefined condition", lambda t: t["Resources"]["EventSource"].update(
            Condition="HasStream"), "condition 'HasStream' is not defined"),
        ("unused parameter", lambda t: t["Parameters"].update(Unused={"Type": "String"}),
         "Parameters.Unused: parameter is never used"),
        ("unknown resource type", lambda t: t["Resources"]["Table"].update(
            Type="AWS::DynamoDB::Tabel"), "unknown resource type"),
        ("string where an Integer goes", lambda t: res(t, "Function").update(MemorySize="big"),
         "'big' is not of type Integer"),
        ("scalar where a List goes", lambda t: res(t, "Function").update(
            Layers={"Ref": "PluginLayer"}), "gives a scalar where a List is expected"),
        ("list parameter where a String goes", lambda t: res(t, "EventSource").update(
            EventSourceArn={"Ref": "SubnetIds"}), "gives a list where a String"),
        ("object where a List goes", lambda t: res(t, "Table").update(
            KeySchema={"AttributeName": "id", "KeyType": "HASH"}), "is not a List"),
        ("bad Fn::If branch", lambda t: res(t, "Function").update(
            Environment={"Variables": {"FANOUT_REPORT_BATCH_ITEM_FAILURES": {
                "Fn::If": ["ReportFailures", True, "false"]}}}), "True is not of type String"),
        ("default outside AllowedValues", lambda t: t["Parameters"]["Architecture"].update(
            Default="arm"), "Default 'arm' is not in AllowedValues"),
        ("default outside AllowedPattern", lambda t: t["Parameters"]["FunctionName"].update(
            Default="fan out"), "Default 'fan out' does not match AllowedPattern"),
        ("duplicate Sid", lambda t: res(t, "Role")["Policies"][0]["PolicyDocument"][
            "Statement"][1].update(Sid="Logs"), "Sid Logs twice"),
        ("package of another architecture", lambda t: res(t, "Function").update(
            CodeUri="../dist/fanout-function-arm64.zip"), "is not ../dist/fanout-function-x86_64"),
        ("batch item failures without the environment", lambda t: res(t, "Function")[
            "Environment"]["Variables"].update(FANOUT_REPORT_BATCH_ITEM_FAILURES="false"),
         "FANOUT_REPORT_BATCH_ITEM_FAILURES is 'false' but the event source mapping expects"),
    ]


INLINE = [
    # (template, fragments the errors must contain; [] = must pass)
    ("""
Transform: AWS::Serverless-2016-10-31
Parameters:
  Name: {Type: String, Default: t}
Conditions:
  Named: !Not [!Equals [!Ref Name, ""]]
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Condition: Named
    Properties:
      TableName: !Sub "${Name}Targets"
      KeySchema: [{AttributeName: k, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: k, AttributeType: S}]
      BillingMode: PAY_PER_REQUEST
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      InlineCode: x
      Environment: {Variables: {TABLE: !Ref T}}
Outputs:
  Arn: {Value: !GetAtt F.Arn}
  Stream: {Value: !GetAtt T.StreamArn}
""", []),
    ("""
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: provided.al2023, Handlr: bootstrap}
""", ["has no property Handlr", "needs Transform AWS::Serverless-2016-10-31"]),
    ("""
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      Policies: [{PolicyName: p}]
""", ["AWS::IAM::Role needs property AssumeRolePolicyDocument",
      "Policy needs property PolicyDocument"]),
    ("""
Parameters:
  Unused: {Type: String}
Conditions:
  Lonely: !Equals [a, b]
Resources:
  T:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Ref Missing
      DelaySeconds: !If [Nowhere, 1, 2]
Outputs:
  X: {Value: !GetAtt Q.Arn}
""", ["Ref Missing", "condition 'Nowhere' is not defined", "no resource Q",
      "Parameters.Unused: parameter is never used", "Conditions.Lonely: condition is never used"]),
    ("""
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Permit, Actions: sts:AssumeRole}]
""", ["Effect must be Allow or Deny", "unknown statement key Actions",
      "statement without Action"]),
]


def self_test(spec):
    failures = []
    base = load_template(TEMPLATE)
    errors = check_file(TEMPLATE, spec)
    if errors:
        failures.append("the real template fails: %s" % errors)
    for what, change, fragment in _mutations():
        t = copy.deepcopy(base)
        change(t)
        errors = Checker(t, spec, TEMPLATE).check()
        if not errors:
            errors = check_fanout(t, TEMPLATE)
        if not any(fragment in e for e in errors):
            failures.append("%s: no error containing %r (got %s)" % (what, fragment, errors))
        else:
            print("ok: %s refused" % what)
    for i, (text, fragments) in enumerate(INLINE):
        errors = Checker(load_template(text), spec).check()
        if not fragments and errors:
            failures.append("inline template %d should pass: %s" % (i, errors))
        for fragment in fragments:
            if not any(fragment in e for e in errors):
                failures.append("inline template %d: no error containing %r (got %s)"
                                % (i, fragment, errors))
        if fragments and all(any(f in e for e in errors) for f in fragments):
            print("ok: inline template %d refused (%d errors)" % (i, len(errors)))
        elif not fragments and not errors:
            print("ok: inline template %d passes" % i)
    # the contract resolves as deploy's defaults say
    c = deploy_contract(TEMPLATE)
    expect = [(c["table"]["name"], "fanoutTargets"), (c["role"]["name"], "fanoutRole"),
              (c["function"]["memory_size"], 128), (c["function"]["timeout"], 30),
              (c["function"]["environment"]["FANOUT_TABLE"], "fanoutTargets"),
              (c["event_source"], None), (c["role"]["managed_policies"], []),
              ([s["Sid"] for s in c["role"]["statements"]], ["Logs", "Table"])]
    c = deploy_contract(TEMPLATE, {"FunctionName": "fx", "SubnetIds": "subnet-1",
                                   "SecurityGroupIds": "sg-1", "SqsQueueArns":
                                   "arn:aws:sqs:us-east-1:123456789012:q1,"
                                   "arn:aws:sqs:us-east-1:123456789012:q2",
                                   "EsDomainArns": "arn:aws:es:us-east-1:123456789012:domain/d"})
    sts = {s["Sid"]: s for s in c["role"]["statements"]}
    expect += [(c["table"]["name"], "fxTargets"),
               (c["function"]["vpc_config"], {"SubnetIds": ["subnet-1"],
                                              "SecurityGroupIds": ["sg-1"]}),
               (c["role"]["managed_policies"], ["arn:aws:iam::aws:policy/service-role/"
                                                "AWSLambdaVPCAccessExecutionRole"]),
               (sts["TargetsSqs"]["Resources"], ["arn:aws:sqs:us-east-1:123456789012:q1",
                                                 "arn:aws:sqs:us-east-1:123456789012:q2"]),
               (sts["TargetsEs"]["Resources"], ["arn:aws:es:us-east-1:123456789012:domain/d/*"]),
               (sts["Table"]["Resources"], ["arn:aws:dynamodb:us-east-1:123456789012:table/"
                                            "fxTargets"]),
               (sts["Logs"]["Resources"][1],
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fx:*")]
    for got, want in expect:
        if got != want:
            failures.append("deploy_contract: %r, expected %r" % (got, want))
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


def main(argv):
    if argv and argv[0] == "--contract":
        params = dict(a.split("=", 1) for a in argv[1:])
        print(json.dumps(deploy_contract(TEMPLATE, params), indent=2, sort_keys=True))
        return 0
    spec = load_spec()
    if argv and argv[0] == "--self-test":
        return self_test(spec)
    path = argv[0] if argv else TEMPLATE
    errors = check_file(path, spec)
    for e in errors:
        print("%s: %s" % (os.path.relpath(path), e))
    if errors:
        return 1
    c = deploy_contract(path)
    print("%s: %d resources checked against the CloudFormation specification %s; "
          "function %s (%s, %s), table %s" % (
              os.path.relpath(path), len(load_template(path)["Resources"]),
              spec.get("ResourceSpecificationVersion"), c["function"]["name"],
              c["function"]["runtime"], c["function"]["handler"], c["table"]["name"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
