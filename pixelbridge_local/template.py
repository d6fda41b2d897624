"""template.yaml as the single source of truth for test fixtures.

Tests create their moto tables, buckets and secrets from the template's own properties and build each
function's environment exactly as the template sets it, so tests cannot drift from the stack.

    names = {**create_tables(ddb), **create_buckets(s3), **create_secrets(sm, {...})}
    env = function_environment("ConvertFunction", names | {"ReleaseStateMachine": sm_arn})
    settings = Settings.from_env(env)

Only plain CloudFormation/YAML is needed here (no aws-sam-translator): short tags (!Ref, !Sub, ...) are
turned into their long form ({"Ref": ...}, {"Fn::Sub": ...}) by the loader below.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import secrets
import string
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Pseudo parameters as moto sees them (moto's default account id).
PSEUDO_PARAMETERS: dict[str, str] = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "pixelbridge",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/pixelbridge/"
    "6f1c9a40-3b9e-11ef-9f5e-0a1b2c3d4e5f",
    "AWS::URLSuffix": "amazonaws.com",
}


class Unresolved(KeyError):
    """A reference to a resource whose physical name/ARN was not given."""


# --------------------------------------------------------------------------------------------- loading


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form intrinsic functions."""


def _constructor_for(tag: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        return _construct(tag, node, loader)

    return construct


def _construct(tag: str, node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise TypeError(f"unexpected YAML node for !{tag}")
    if tag == "Ref":
        return {"Ref": value}
    if tag == "Condition":
        return {"Condition": value}
    if tag == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{tag}": value}


for _tag in (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "Cidr",
    "ImportValue",
    "GetAZs",
    "Transform",
    "ToJsonString",
    "Length",
):
    _CfnLoader.add_constructor(f"!{_tag}", _constructor_for(_tag))


def load_template_file(path: Path | str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@lru_cache(maxsize=1)
def _cached_template() -> dict[str, Any]:
    return load_template_file(TEMPLATE_PATH)


def load_template() -> dict[str, Any]:
    """The parsed template (a deep copy: callers may mutate it)."""
    return copy.deepcopy(_cached_template())


def nested_template(logical_id: str) -> dict[str, Any]:
    """The parsed template of a nested stack (``AWS::CloudFormation::Stack``) whose TemplateURL is a
    file of this repository, e.g. ``nested_template("Operations")`` for operations.yaml."""
    resource = _cached_template()["Resources"][logical_id]
    if resource["Type"] != "AWS::CloudFormation::Stack":
        raise ValueError(f"{logical_id} is a {resource['Type']}, not AWS::CloudFormation::Stack")
    return copy.deepcopy(_cached_nested_template(resource["Properties"]["TemplateURL"]))


@lru_cache(maxsize=4)
def _cached_nested_template(path: str) -> dict[str, Any]:
    return load_template_file(REPO_ROOT / path)


def resources(type_: str | None = None) -> dict[str, dict[str, Any]]:
    """Resources of the template, optionally only those of one type."""
    res = _cached_template()["Resources"]
    return {k: copy.deepcopy(v) for k, v in res.items() if type_ is None or v["Type"] == type_}


def resource_properties(logical_id: str) -> dict[str, Any]:
    return copy.deepcopy(_cached_template()["Resources"][logical_id].get("Properties", {}))


def parameter_defaults() -> dict[str, str]:
    """Every parameter's Default as the string CloudFormation would substitute."""
    return {
        name: _to_str(spec["Default"])
        for name, spec in _cached_template().get("Parameters", {}).items()
        if "Default" in spec
    }


def function_properties(logical_id: str) -> dict[str, Any]:
    """A function's properties merged over Globals.Function (maps merged, Environment.Variables too)."""
    template = _cached_template()
    resource = template["Resources"][logical_id]
    if resource["Type"] != "AWS::Serverless::Function":
        raise ValueError(f"{logical_id} is a {resource['Type']}, not AWS::Serverless::Function")
    merged = copy.deepcopy(template.get("Globals", {}).get("Function", {}))
    for key, value in copy.deepcopy(resource.get("Properties", {})).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not _is_intrinsic(value):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and (
            next(iter(value)) == "Ref"
            or next(iter(value)).startswith("Fn::")
            or next(iter(value)) == "Condition"
        )
    )


# ------------------------------------------------------------------------------------------ resolving

_NO_VALUE = object()


class _Resolver:
    def __init__(
        self,
        names: Mapping[str, str],
        parameters: Mapping[str, str] | None,
        template: Mapping[str, Any] | None = None,
    ) -> None:
        template = _cached_template() if template is None else template
        self.template = template
        self.names = dict(names)
        defaults = {
            name: _to_str(spec["Default"])
            for name, spec in template.get("Parameters", {}).items()
            if "Default" in spec
        }
        self.parameters = {**defaults, **{k: _to_str(v) for k, v in (parameters or {}).items()}}
        self.conditions = template.get("Conditions", {})

    # Ref / GetAtt ---------------------------------------------------------------------------
    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.names:
            return self.names[name]
        raise Unresolved(f"no physical name given for !Ref {name}")

    def get_att(self, resource: str, attribute: str) -> str:
        key = f"{resource}.{attribute}"
        if key in self.names:
            return self.names[key]
        if resource not in self.names:
            raise Unresolved(f"no physical name given for !GetAtt {key}")
        physical = self.names[resource]
        type_ = self.template["Resources"].get(resource, {}).get("Type", "")
        if attribute == "Arn" and not physical.startswith("arn:"):
            region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
            if type_ == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{physical}"
            if type_ == "AWS::DynamoDB::Table":
                return f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
            if type_ in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                return f"arn:aws:lambda:{region}:{account}:function:{physical}"
            if type_ == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{region}:{account}:{physical}"
        return physical

    # Conditions -------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    # Everything -------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(resource, attribute)
        if key == "Fn::If":
            cond, if_true, if_false = arg
            return self.resolve(if_true if self.condition(cond) else if_false)
        if key == "Fn::Equals":
            left, right = (_to_str(self.resolve(a)) for a in arg)
            return left == right
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(_to_str(v) for v in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = arg
            return _to_str(self.resolve(text)).split(separator)
        if key == "Fn::FindInMap":
            mapping, top, second = (_to_str(self.resolve(a)) for a in arg)
            return self.template["Mappings"][mapping][top][second]
        if key == "Fn::Sub":
            return self.sub(arg)
        return {key: self.resolve(arg)}

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: _to_str(self.resolve(v)) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return local[name]
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return _to_str(self.get_att(resource, attribute))
            return _to_str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def resolve(
    value: Any,
    names: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
    template: Mapping[str, Any] | None = None,
) -> Any:
    """Resolve intrinsics in `value`: resources from `names`, parameters from their Default (or
    `parameters` overrides), pseudo parameters from PSEUDO_PARAMETERS. Conditions, mappings and
    defaults come from `template` (default: template.yaml; e.g. a nested_template())."""
    return _Resolver(names, parameters, template).resolve(value)


def function_environment(
    logical_id: str,
    names: Mapping[str, str],
    *,
    parameters: Mapping[str, str] | None = None,
    strict: bool = True,
) -> dict[str, str]:
    """The environment the template gives `logical_id` (Globals + function Variables merged).

    `names` maps logical IDs to physical values: table/bucket names, secret ARNs (what !Ref returns),
    plus whatever else the function references (ReleaseStateMachine -> its ARN, FetchFunction -> its
    name, HandoffDistribution.DomainName -> a domain). A "Resource.Attribute" key overrides !GetAtt.
    Parameters resolve to their Default unless overridden in `parameters`.
    strict=False drops variables that reference resources missing from `names` instead of raising.
    """
    env_spec = function_properties(logical_id).get("Environment", {}).get("Variables", {})
    parameters = dict(parameters or {})
    routes_json = parameters.pop(LOCAL_ROUTES_PARAMETER, None)
    resolver = _Resolver(names, parameters)
    env: dict[str, str] = {}
    for key, value in env_spec.items():
        try:
            resolved = resolver.resolve(value)
        except Unresolved:
            if strict:
                raise
            continue
        if resolved is _NO_VALUE:
            continue
        env[key] = _to_str(resolved)
    if routes_json and ROUTES_DEFAULT_VARIABLE in env_spec:
        env["ROUTES_FILE"] = str(local_routes_file(routes_json))
    return env


# Routes ship in the function package (functions/routes.json). Locally, a "Routes" entry in
# `parameters` stands in for that file: its JSON is written to a file given to the function that
# reads routes (the one whose template environment carries the routes' defaults) as ROUTES_FILE.
LOCAL_ROUTES_PARAMETER = "Routes"
ROUTES_DEFAULT_VARIABLE = "DEFAULT_RELEASE_POLICY"


def local_routes_file(routes_json: str) -> Path:
    """A file holding ``routes_json`` (named by its content, so equal routes share one file)."""
    digest = hashlib.sha256(routes_json.encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"pixelbridge-routes-{digest}.json"
    if not path.is_file():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(routes_json, encoding="utf-8")
        partial.replace(path)
    return path


def state_machine_definition(
    names: Mapping[str, str],
    logical_id: str = "ReleaseStateMachine",
    *,
    parameters: Mapping[str, str] | None = None,
) -> str:
    """The state machine's ASL text with DefinitionSubstitutions applied (e.g. ReleaseFunctionArn).

    Substitutes only ${Name} for names in DefinitionSubstitutions; "$$.Task.Token" and other
    JSONPath text are left alone (string.Template.safe_substitute would corrupt "$$").
    """
    props = resource_properties(logical_id)
    text = (REPO_ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
    subs = {
        k: _to_str(v) for k, v in resolve(props.get("DefinitionSubstitutions", {}), names, parameters).items()
    }
    return re.sub(r"\$\{(\w+)\}", lambda m: subs.get(m.group(1), m.group(0)), text)


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------- moto fixtures (boto3)


def physical_name(logical_id: str, prefix: str = "pixelbridge-test") -> str:
    """Deterministic, S3-safe physical name for a logical ID."""
    return f"{prefix}-{logical_id}".lower()


def create_tables(dynamodb_client: Any, *, prefix: str = "pixelbridge-test") -> dict[str, str]:
    """Create every AWS::DynamoDB::Table of the template; returns {logical_id: table_name}."""
    created: dict[str, str] = {}
    for logical_id, resource in resources("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        name = physical_name(logical_id, prefix)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    k: v
                    for k, v in gsi.items()
                    if k in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
                }
                for gsi in props["GlobalSecondaryIndexes"]
            ]
        stream = props.get("StreamSpecification")
        if stream:
            view = stream["StreamViewType"]
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        dynamodb_client.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        created[logical_id] = name
    return created


def create_buckets(s3_client: Any, *, prefix: str = "pixelbridge-test") -> dict[str, str]:
    """Create every AWS::S3::Bucket of the template (with its lifecycle rules); {logical_id: bucket}."""
    created: dict[str, str] = {}
    region = s3_client.meta.region_name
    for logical_id, resource in resources("AWS::S3::Bucket").items():
        props = resource.get("Properties", {})
        name = physical_name(logical_id, prefix)
        kwargs: dict[str, Any] = {"Bucket": name}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3_client.create_bucket(**kwargs)
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if rules:
            s3_client.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        created[logical_id] = name
    return created


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation lifecycle rule -> S3 API shape."""
    out: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return out


def default_secret_value(logical_id: str) -> dict[str, Any]:
    """What the secret holds right after deploy: SecretString, or the template plus a generated key."""
    props = resource_properties(logical_id)
    if "SecretString" in props:
        return json.loads(props["SecretString"])
    gen = props.get("GenerateSecretString", {})
    value = json.loads(gen.get("SecretStringTemplate", "{}"))
    if "GenerateStringKey" in gen:
        alphabet = string.ascii_letters + string.digits
        value[gen["GenerateStringKey"]] = "".join(
            secrets.choice(alphabet) for _ in range(int(gen.get("PasswordLength", 32)))
        )
    return value


def create_secrets(
    secretsmanager_client: Any,
    values: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    prefix: str = "pixelbridge-test",
) -> dict[str, str]:
    """Create every AWS::SecretsManager::Secret of the template; returns {logical_id: secret ARN}.

    Each secret holds its deploy-time value (default_secret_value) with `values[logical_id]` keys
    merged over it, e.g. {"StreampixelSecret": {"userId": "u1", "apiKey": "k"}}.
    """
    values = values or {}
    unknown = set(values) - set(resources("AWS::SecretsManager::Secret"))
    if unknown:
        raise KeyError(f"not secrets of template.yaml: {sorted(unknown)}")
    created: dict[str, str] = {}
    for logical_id in resources("AWS::SecretsManager::Secret"):
        value = {**default_secret_value(logical_id), **dict(values.get(logical_id, {}))}
        response = secretsmanager_client.create_secret(
            Name=f"{prefix}/{logical_id}", SecretString=json.dumps(value)
        )
        created[logical_id] = response["ARN"]
    return created
