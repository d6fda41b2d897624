"""Deploy-readiness: what CloudFormation or the services would refuse at deploy time, that cfn-lint misses.

Runs on the SAM-transformed template (what CloudFormation really receives) and the state machine's ASL:

- a state machine that logs has a role that may create the log delivery (else CREATE_FAILED);
- every function's MemorySize default is within a new account's 3008 MB quota;
- every function's environment stays within Lambda's 4 KB, rendered with worst-case values
  (longest stack name, partition, region, every parameter at its longest allowed value);
- no hard-coded ``aws`` partition (the template and the ASL);
- every name we set stays within its type's limit for a 128-character stack name;
- every parameter default fits CloudFormation's 4,096 bytes per parameter value;
- Lambda never filters application logs above INFO (EMF metric lines have no level: Lambda calls them INFO);
- every nested stack of the repository (``TemplateURL: operations.yaml``) exists, gets exactly the
  parameters it declares (all those without a default), keeps a secret parameter (NoEcho) secret, and
  passes the partition, name-length and parameter-default checks itself.

Usage: .venv/bin/python scripts/deploy_readiness.py [template.yaml]   (exit 1 on findings)
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python scripts/deploy_readiness.py`

from scripts.sam_transform import local_nested_stacks, parse_template, transform_template

REPO_ROOT = Path(__file__).resolve().parents[1]

NEW_ACCOUNT_MEMORY_MB = 3008
ENVIRONMENT_LIMIT_BYTES = 4096
PARAMETER_VALUE_LIMIT_BYTES = 4096
MAX_STACK_NAME = 128
UNBOUNDED_PARAMETER_BYTES = PARAMETER_VALUE_LIMIT_BYTES  # a String without MaxLength/AllowedValues

LOG_DELIVERY_ACTIONS = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
# Lambda gives a JSON line without a "level" key the level INFO: any filter above INFO drops EMF metrics.
LEVELS_THAT_KEEP_METRICS = frozenset({"TRACE", "DEBUG", "INFO"})

# Name properties CloudFormation passes through as given, with each type's length limit.
NAME_LIMITS: dict[str, tuple[tuple[str, ...], int]] = {
    "AWS::CloudFront::OriginAccessControl": (("OriginAccessControlConfig", "Name"), 64),
    "AWS::StepFunctions::StateMachine": (("StateMachineName",), 80),
    "AWS::Logs::LogGroup": (("LogGroupName",), 512),
    "AWS::SQS::Queue": (("QueueName",), 80),
    "AWS::SNS::Topic": (("TopicName",), 256),
    "AWS::CloudWatch::Alarm": (("AlarmName",), 255),
    "AWS::CloudWatch::Dashboard": (("DashboardName",), 255),
    "AWS::IAM::Role": (("RoleName",), 64),
    "AWS::Events::Rule": (("Name",), 64),
    "AWS::Events::Connection": (("Name",), 64),
    "AWS::Events::ApiDestination": (("Name",), 64),
    "AWS::Lambda::Function": (("FunctionName",), 64),
    "AWS::DynamoDB::Table": (("TableName",), 255),
    "AWS::S3::Bucket": (("BucketName",), 63),
    "AWS::SecretsManager::Secret": (("Name",), 512),
}

_PARTITION, _REGION, _ACCOUNT = "aws-us-gov", "ap-southeast-5", "123456789012"
_STACK_NAME = "s" * MAX_STACK_NAME
_UUID = "6f1c9a40-3b9e-11ef-9f5e-0a1b2c3d4e5f"
WORST_PSEUDO: dict[str, str] = {
    "AWS::Partition": _PARTITION,
    "AWS::Region": _REGION,
    "AWS::AccountId": _ACCOUNT,
    "AWS::StackName": _STACK_NAME,
    "AWS::StackId": f"arn:{_PARTITION}:cloudformation:{_REGION}:{_ACCOUNT}:stack/{_STACK_NAME}/{_UUID}",
    "AWS::URLSuffix": "amazonaws.com.cn",
    "AWS::NoValue": "",
}


def _arn(service: str, resource: str) -> str:
    return f"arn:{_PARTITION}:{service}:{_REGION}:{_ACCOUNT}:{resource}"


# What !Ref returns for a resource CloudFormation names itself, at its longest.
WORST_REF: dict[str, str] = {
    "AWS::DynamoDB::Table": "t" * 255,
    "AWS::S3::Bucket": "b" * 63,
    "AWS::SecretsManager::Secret": _arn("secretsmanager", "secret:" + "n" * 128 + "-AbCdEf"),
    "AWS::Lambda::Function": "f" * 64,
    "AWS::StepFunctions::StateMachine": _arn("states", "stateMachine:" + "m" * 80),
    "AWS::SNS::Topic": _arn("sns", "t" * 256),
    "AWS::SQS::Queue": f"https://sqs.{_REGION}.amazonaws.com/{_ACCOUNT}/" + "q" * 80,
    "AWS::Logs::LogGroup": "l" * 512,
    "AWS::KMS::Key": _UUID,
}
WORST_GET_ATT: dict[str, str] = {
    "DomainName": "d" + "1" * 13 + ".cloudfront.net",
    "RegionalDomainName": "b" * 63 + f".s3.{_REGION}.amazonaws.com",
    "QueueName": "q" * 80,
    "Name": "n" * 80,
    "FunctionUrl": "https://" + "u" * 32 + f".lambda-url.{_REGION}.on.aws/",
    "StreamArn": _arn("dynamodb", "table/" + "t" * 255 + "/stream/2026-11-29T00:00:00.000"),
}


class WorstCase:
    """Renders intrinsics as the longest string CloudFormation could substitute."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})

    def parameter(self, name: str) -> str:
        spec = self.parameters[name]
        if "AllowedValues" in spec:
            return max((str(v) for v in spec["AllowedValues"]), key=len)
        if spec.get("Type") == "Number":
            bound = max(abs(int(spec.get("MaxValue", 0))), abs(int(spec.get("MinValue", 0))))
            return "9" * max(len(str(bound)), 1) if "MaxValue" in spec else "9" * 20
        if "MaxLength" in spec:
            return "p" * int(spec["MaxLength"])
        return "p" * UNBOUNDED_PARAMETER_BYTES

    def ref(self, name: str) -> str:
        if name in WORST_PSEUDO:
            return WORST_PSEUDO[name]
        if name in self.parameters:
            return self.parameter(name)
        type_ = self.resources.get(name, {}).get("Type", "")
        if type_ == "AWS::StepFunctions::StateMachine":
            named = self.resources[name].get("Properties", {}).get("StateMachineName")
            if named is not None:
                return _arn("states", "stateMachine:" + str(self.render(named)))
        return WORST_REF.get(type_, "r" * 256)

    def get_att(self, resource: str, attribute: str) -> str:
        if attribute in WORST_GET_ATT:
            return WORST_GET_ATT[attribute]
        if attribute == "Arn":
            ref = self.ref(resource)
            return ref if ref.startswith("arn:") else _arn("service", "x/" + ref)
        return "a" * 256

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.render(v) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            return value if not isinstance(value, dict) else {k: self.render(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(resource, attribute)
        if key == "Fn::If":
            return max((_text(self.render(branch)) for branch in arg[1:]), key=len)
        if key == "Fn::Join":
            return str(arg[0]).join(_text(v) for v in self.render(arg[1]))
        if key == "Fn::Split":
            return _text(self.render(arg[1])).split(str(arg[0]))
        if key == "Fn::Select":
            return self.render(arg[1])[int(arg[0])]
        if key == "Fn::FindInMap":
            mapping = self.template["Mappings"][arg[0]]
            return max((str(entry[arg[2]]) for entry in mapping.values()), key=len)
        if key == "Fn::Sub":
            return self.sub(arg)
        return {key: self.render(arg)}

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {name: _text(self.render(v)) for name, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return local[name]
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement.get("Action", [])
    return set(action if isinstance(action, list) else [action])


# ---------------------------------------------------------------------------------------- checks


def check_state_machine_logging(template: dict[str, Any], asl: str) -> list[str]:
    findings = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties", {})
        if not props.get("LoggingConfiguration", {}).get("Destinations"):
            continue
        role_id = props.get("RoleArn", {}).get("Fn::GetAtt", [None])[0]
        role = template["Resources"].get(role_id or "", {})
        granted: set[str] = set()
        for policy in role.get("Properties", {}).get("Policies", []):
            for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                if statement.get("Effect") == "Allow" and statement.get("Resource") in ("*", ["*"]):
                    granted |= _actions(statement)
        missing = sorted(LOG_DELIVERY_ACTIONS - granted)
        if missing:
            findings.append(
                f'{logical_id}: logs to CloudWatch but its role lacks {", ".join(missing)} on "*"'
            )
    return findings


def check_memory(template: dict[str, Any], asl: str) -> list[str]:
    findings = []
    parameters = template.get("Parameters", {})
    for logical_id, function in _functions(template).items():
        memory = function["Properties"].get("MemorySize", 128)
        if isinstance(memory, dict) and "Ref" in memory:
            memory = parameters[memory["Ref"]].get("Default", 0)
        if int(memory) > NEW_ACCOUNT_MEMORY_MB:
            findings.append(
                f"{logical_id}: MemorySize {memory} MB by default exceeds a new account's "
                f"{NEW_ACCOUNT_MEMORY_MB} MB quota"
            )
    return findings


def environment_sizes(template: dict[str, Any]) -> dict[str, int]:
    """Each function's worst-case environment size in bytes (JSON of the variables)."""
    worst = WorstCase(template)
    sizes = {}
    for logical_id, function in _functions(template).items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        rendered = {name: _text(worst.render(value)) for name, value in variables.items()}
        sizes[logical_id] = len(json.dumps(rendered, separators=(",", ":")).encode("utf-8"))
    return sizes


def check_environment_size(template: dict[str, Any], asl: str) -> list[str]:
    return [
        f"{logical_id}: environment can reach {size} bytes (Lambda allows {ENVIRONMENT_LIMIT_BYTES})"
        for logical_id, size in environment_sizes(template).items()
        if size > ENVIRONMENT_LIMIT_BYTES
    ]


def check_partition(template: dict[str, Any], asl: str) -> list[str]:
    findings = []
    scanned = copy.deepcopy(template)
    for resource in scanned["Resources"].values():
        # The real SAM transform renders the managed policies it adds in the stack's own partition.
        if resource["Type"] == "AWS::IAM::Role":
            resource.get("Properties", {}).pop("ManagedPolicyArns", None)
    for match in sorted(set(re.findall(r"arn:aws:[A-Za-z0-9-]*", json.dumps(scanned)))):
        findings.append(f"template hard-codes the aws partition: {match}... (use ${{AWS::Partition}})")
    for match in sorted(set(re.findall(r"arn:aws:[A-Za-z0-9-]*", asl))):
        findings.append(f"state machine definition hard-codes the aws partition: {match}...")
    return findings


def name_lengths(template: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Worst-case length and limit of every name we set, by logical id."""
    worst = WorstCase(template)
    lengths = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in NAME_LIMITS:
            continue
        path, limit = NAME_LIMITS[resource["Type"]]
        value: Any = resource.get("Properties", {})
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            lengths[logical_id] = (len(_text(worst.render(value))), limit)
    return lengths


def check_name_lengths(template: dict[str, Any], asl: str) -> list[str]:
    return [
        f"{logical_id}: name can reach {length} characters for a {MAX_STACK_NAME}-character stack "
        f"name (limit {limit})"
        for logical_id, (length, limit) in name_lengths(template).items()
        if length > limit
    ]


def check_parameter_defaults(template: dict[str, Any], asl: str) -> list[str]:
    return [
        f"parameter {name}: default is {len(str(spec['Default']).encode())} bytes "
        f"(CloudFormation allows {PARAMETER_VALUE_LIMIT_BYTES})"
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec and len(str(spec["Default"]).encode()) > PARAMETER_VALUE_LIMIT_BYTES
    ]


def check_log_levels(template: dict[str, Any], asl: str) -> list[str]:
    findings = []
    mappings = template.get("Mappings", {})
    for logical_id, function in _functions(template).items():
        config = function["Properties"].get("LoggingConfig", {})
        if config.get("LogFormat") != "JSON" or "ApplicationLogLevel" not in config:
            continue
        level = config["ApplicationLogLevel"]
        if isinstance(level, dict) and "Fn::FindInMap" in level:
            name, _, attribute = level["Fn::FindInMap"]
            possible = {str(entry[attribute]) for entry in mappings[name].values()}
        else:
            possible = {str(level)}
        dropped = sorted(possible - LEVELS_THAT_KEEP_METRICS)
        if dropped:
            findings.append(
                f"{logical_id}: ApplicationLogLevel can be {', '.join(dropped)}: Lambda would drop the "
                "EMF metric lines (no level = INFO)"
            )
    return findings


CHECKS: tuple[Callable[[dict[str, Any], str], list[str]], ...] = (
    check_state_machine_logging,
    check_memory,
    check_environment_size,
    check_partition,
    check_name_lengths,
    check_parameter_defaults,
    check_log_levels,
)


# Checks that apply to a nested (plain CloudFormation) template as they do to the parent.
NESTED_CHECKS: tuple[Callable[[dict[str, Any], str], list[str]], ...] = (
    check_partition,
    check_name_lengths,
    check_parameter_defaults,
)


def nested_templates(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The parsed template of every local nested stack, by the stack's logical id (an empty template
    when the file is missing: check_nested_stacks reports it)."""
    nested = {}
    for logical_id, path in local_nested_stacks(template).items():
        file = REPO_ROOT / path
        nested[logical_id] = parse_template(file) if file.is_file() else {}
    return nested


def check_nested_stacks(template: dict[str, Any], nested: dict[str, dict[str, Any]]) -> list[str]:
    """The parent passes each nested stack what it declares, and no secret in the clear."""
    findings = []
    parameters = template.get("Parameters", {})
    for stack_id, path in local_nested_stacks(template).items():
        child = nested.get(stack_id) or {}
        if not child:
            findings.append(f"{stack_id}: nested template {path} does not exist")
            continue
        declared = child.get("Parameters", {})
        passed = template["Resources"][stack_id]["Properties"].get("Parameters", {})
        for name in sorted(set(passed) - set(declared)):
            findings.append(f"{stack_id}: passes {name}, which {path} does not declare")
        for name in sorted(set(declared) - set(passed)):
            if "Default" not in declared[name]:
                findings.append(f"{stack_id}: {path} needs {name}, which the stack does not pass")
        for name, value in passed.items():
            source = value.get("Ref") if isinstance(value, dict) else None
            if parameters.get(source, {}).get("NoEcho") and not declared.get(name, {}).get("NoEcho"):
                findings.append(f"{stack_id}: secret {source} reaches {path} as {name} without NoEcho")
        for check in NESTED_CHECKS:
            findings.extend(f"{path}: {finding}" for finding in check(child, ""))
    return findings


def state_machine_definitions(source: dict[str, Any]) -> str:
    """The ASL files the (untransformed) template points at, concatenated."""
    texts = []
    for resource in source["Resources"].values():
        uri = resource.get("Properties", {}).get("DefinitionUri")
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            texts.append((REPO_ROOT / uri).read_text(encoding="utf-8"))
    return "\n".join(texts)


def findings_for(transformed: dict[str, Any], asl: str) -> list[str]:
    return [finding for check in CHECKS for finding in check(transformed, asl)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="What CloudFormation or the services would refuse that cfn-lint does not see."
    )
    parser.add_argument("template", nargs="?", type=Path, default=REPO_ROOT / "template.yaml")
    source = parse_template(parser.parse_args(argv).template)
    asl = state_machine_definitions(source)
    transformed = transform_template(copy.deepcopy(source))
    nested = nested_templates(transformed)
    findings = findings_for(transformed, asl) + check_nested_stacks(transformed, nested)
    for finding in findings:
        print(f"NOT DEPLOYABLE: {finding}")
    sizes = environment_sizes(transformed)
    for function, size in sorted(sizes.items()):
        print(f"worst-case environment: {size:5d} of 4096 bytes  {function}")
    print(f"{len(CHECKS) + 1} deploy-readiness checks, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
