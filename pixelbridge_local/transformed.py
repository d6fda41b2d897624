"""template.yaml after the SAM transform, resolved for the embedded stack.

The SAM translator (aws-sam-translator, in-process) turns every ``AWS::Serverless::Function`` into an
``AWS::Lambda::Function`` (Globals merged) plus its ``AWS::IAM::Role`` with the expanded policy
templates, and the state machine into ``AWS::StepFunctions::StateMachine`` plus its role. This module
reads what the local stack needs from that result: each function's environment, handler, timeout and
memory, its role's policy statements, and the async invoke configuration, all with references resolved
to the local resources' physical names.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pixelbridge_local import template as cfn

STACK_NAME = "pixelbridge-local"

# AWS managed policies SAM attaches by ARN; their statements as AWS publishes them (only what the
# roles of this template reference: basic execution for logs, the DynamoDB stream poller's, X-Ray write).
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}


@lru_cache(maxsize=1)
def _transformed() -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    source = cfn.load_template()
    # The translator accepts only S3 locations for code and definitions (what `sam package` makes).
    source.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for resource in source["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://placeholder-bucket/code.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = "s3://placeholder-bucket/definition.asl.json"
    # The template names policies by SAM policy template or ARN only: no managed-policy lookup.
    session = boto3.session.Session(region_name=cfn.PSEUDO_PARAMETERS["AWS::Region"])
    translator = Translator({}, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(source, parameter_values={}, get_managed_policy_map=dict)
    return result


def transformed_template() -> dict[str, Any]:
    """The SAM-transformed template (a deep copy: callers may mutate it)."""
    return copy.deepcopy(_transformed())


class _Resolver(cfn._Resolver):
    """The template resolver over the transformed template, with the local stack's name."""

    def __init__(
        self, document: dict[str, Any], names: Mapping[str, str], parameters: Mapping[str, str] | None
    ) -> None:
        super().__init__(names, parameters)
        self.template = document
        self.conditions = document.get("Conditions", {})

    def ref(self, name: str) -> Any:
        if name == "AWS::StackName":
            return STACK_NAME
        return super().ref(name)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    role_logical_id: str
    maximum_retry_attempts: int  # async invocations (EventInvokeConfig; Lambda's default is 2)
    on_failure_arn: str | None  # EventInvokeConfig OnFailure destination


@dataclass(frozen=True)
class RoleSpec:
    logical_id: str
    trust_policy: dict[str, Any]
    statements: list[dict[str, Any]]


class ResolvedTemplate:
    """The transformed template with references resolved to the local stack's resources."""

    def __init__(self, names: Mapping[str, str], parameters: Mapping[str, str]) -> None:
        self.document = transformed_template()
        self._resolver = _Resolver(self.document, names, parameters)

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.document["Resources"].items() if v["Type"] == type_}

    def role_ids(self) -> list[str]:
        return sorted(self.resources("AWS::IAM::Role"))

    def function(self, logical_id: str) -> FunctionSpec:
        properties = self.document["Resources"][logical_id]["Properties"]
        variables = properties.get("Environment", {}).get("Variables", {})
        environment = {key: cfn._to_str(value) for key, value in self._resolver.resolve(variables).items()}
        retries, on_failure = 2, None
        for resource in self.resources("AWS::Lambda::EventInvokeConfig").values():
            config = resource["Properties"]
            if config["FunctionName"] == {"Ref": logical_id}:
                retries = int(config.get("MaximumRetryAttempts", 2))
                destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                on_failure = str(self._resolver.resolve(destination)) if destination else None
        role = properties["Role"]["Fn::GetAtt"]
        return FunctionSpec(
            logical_id=logical_id,
            handler=str(properties["Handler"]),
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(self._resolver.resolve(properties.get("MemorySize", 128))),
            environment=environment,
            role_logical_id=role[0] if isinstance(role, list) else str(role).split(".")[0],
            maximum_retry_attempts=retries,
            on_failure_arn=on_failure,
        )

    def role(self, logical_id: str) -> RoleSpec:
        properties = self.document["Resources"][logical_id]["Properties"]
        statements: list[dict[str, Any]] = []
        for arn in properties.get("ManagedPolicyArns", []):
            resolved = str(self._resolver.resolve(arn))
            if resolved not in MANAGED_POLICIES:
                raise KeyError(f"{logical_id}: managed policy {resolved} has no local copy")
            statements += copy.deepcopy(MANAGED_POLICIES[resolved])
        for policy in properties.get("Policies", []):
            document = self._resolver.resolve(policy["PolicyDocument"])
            found = document["Statement"]
            statements += found if isinstance(found, list) else [found]
        return RoleSpec(logical_id, properties["AssumeRolePolicyDocument"], statements)

    def state_machine_role_id(self, logical_id: str = "ReleaseStateMachine") -> str:
        role = self.document["Resources"][logical_id]["Properties"]["RoleArn"]["Fn::GetAtt"]
        return str(role[0] if isinstance(role, list) else str(role).split(".")[0])
