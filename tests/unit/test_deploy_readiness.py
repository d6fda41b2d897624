"""scripts/deploy_readiness.py passes on template.yaml and catches each defect it exists for.

Every check gets a broken copy of the SAM-transformed template (or of the ASL) and must name it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from scripts import deploy_readiness as readiness
from scripts.sam_transform import parse_template, transform_template

Template = dict[str, Any]


@pytest.fixture(scope="module")
def source() -> Template:
    return parse_template(readiness.REPO_ROOT / "template.yaml")


@pytest.fixture(scope="module")
def transformed(source: Template) -> Template:
    return transform_template(copy.deepcopy(source))


@pytest.fixture(scope="module")
def asl(source: Template) -> str:
    return readiness.state_machine_definitions(source)


@pytest.fixture
def broken(transformed: Template) -> Template:
    return copy.deepcopy(transformed)


def findings(template: Template, asl: str, check: Callable[[Template, str], list[str]]) -> list[str]:
    return check(template, asl)


def test_template_yaml_is_deploy_ready(transformed: Template, asl: str) -> None:
    assert readiness.findings_for(transformed, asl) == []


def test_state_machine_role_without_log_delivery_is_found(broken: Template, asl: str) -> None:
    role = broken["Resources"]["ReleaseStateMachineRole"]["Properties"]
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "logs:CreateLogDelivery" in statement["Action"]:
                statement["Action"].remove("logs:CreateLogDelivery")
    found = findings(broken, asl, readiness.check_state_machine_logging)
    assert found == [
        'ReleaseStateMachine: logs to CloudWatch but its role lacks logs:CreateLogDelivery on "*"'
    ]


def test_memory_above_new_account_quota_is_found(broken: Template, asl: str) -> None:
    broken["Parameters"]["ConvertMemorySize"]["Default"] = 4096
    broken["Resources"]["ReleaseFunction"]["Properties"]["MemorySize"] = 3009
    found = findings(broken, asl, readiness.check_memory)
    assert len(found) == 3
    assert found[0].startswith("FetchFunction: MemorySize 4096 MB")  # it converts too: same parameter
    assert found[1].startswith("ConvertFunction: MemorySize 4096 MB")
    assert found[2].startswith("ReleaseFunction: MemorySize 3009 MB")


def test_routes_in_the_environment_are_found(broken: Template, asl: str) -> None:
    """The defect this project shipped: an unbounded Routes parameter copied into every function."""
    broken["Parameters"]["Routes"] = {"Type": "String", "Default": ""}
    for function in ("IngestFunction", "ReleaseFunction"):
        variables = broken["Resources"][function]["Properties"]["Environment"]["Variables"]
        variables["ROUTES_JSON"] = {"Ref": "Routes"}
    found = findings(broken, asl, readiness.check_environment_size)
    assert [line.split(":")[0] for line in found] == ["IngestFunction", "ReleaseFunction"]


def test_environment_sizes_are_measured_at_worst_case(transformed: Template) -> None:
    sizes = readiness.environment_sizes(transformed)
    # A 128-character stack name and the longest region make every name long: far above the
    # size the same environment has for a stack called "pixelbridge".
    assert all(1500 < size <= readiness.ENVIRONMENT_LIMIT_BYTES for size in sizes.values()), sizes


def test_hard_coded_partition_is_found_in_template_and_asl(broken: Template, asl: str) -> None:
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}
    broken["Resources"]["IngestFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append(statement)
    found = findings(
        broken, asl.replace("arn:${Partition}:states", "arn:aws:states"), readiness.check_partition
    )
    assert found == [
        "template hard-codes the aws partition: arn:aws:s3... (use ${AWS::Partition})",
        "state machine definition hard-codes the aws partition: arn:aws:states...",
    ]


def test_sam_managed_policy_arns_are_not_partition_findings(transformed: Template, asl: str) -> None:
    roles = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert any("arn:aws:iam::aws:policy" in json.dumps(r) for r in roles)  # offline transform: us-east-1
    assert readiness.check_partition(transformed, asl) == []


@pytest.mark.parametrize(
    ("logical_id", "path", "name"),
    [
        ("HandoffOriginAccessControl", ("OriginAccessControlConfig", "Name"), "${AWS::StackName}-handoff"),
        ("ReleaseStateMachine", ("StateMachineName",), "${AWS::StackName}-release"),
        ("ConvertDeadLetterQueue", ("QueueName",), "${AWS::StackName}-convert-dlq"),
        ("ReleaseStateMachineLogGroup", ("LogGroupName",), "${AWS::StackName}/" + "release-logs" * 35),
    ],
)
def test_names_too_long_for_the_longest_stack_name_are_found(
    broken: Template, asl: str, logical_id: str, path: tuple[str, ...], name: str
) -> None:
    target = broken["Resources"][logical_id]["Properties"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = {"Fn::Sub": name}
    found = findings(broken, asl, readiness.check_name_lengths)
    assert len(found) == 1 and found[0].startswith(f"{logical_id}: name can reach")


def test_names_we_set_are_within_limits(transformed: Template) -> None:
    lengths = readiness.name_lengths(transformed)
    assert {"HandoffOriginAccessControl", "ReleaseStateMachine", "ReleaseStateMachineLogGroup"} <= set(
        lengths
    )
    assert all(length <= limit for length, limit in lengths.values()), lengths


def test_parameter_default_over_4096_bytes_is_found(broken: Template, asl: str) -> None:
    broken["Parameters"]["Routes"] = {"Type": "String", "Default": json.dumps([{"id": "r"}] * 500)}
    found = findings(broken, asl, readiness.check_parameter_defaults)
    assert len(found) == 1 and found[0].startswith("parameter Routes: default is")


def test_log_filter_above_info_is_found(broken: Template, asl: str) -> None:
    broken["Mappings"]["LambdaLogLevel"]["WARNING"]["Level"] = "WARN"
    found = findings(broken, asl, readiness.check_log_levels)
    assert len(found) == 7  # every function uses the mapping
    assert "ApplicationLogLevel can be WARN" in found[0]


def test_main_exits_non_zero_on_findings(tmp_path: Any, source: Template) -> None:
    broken_source = copy.deepcopy(source)
    broken_source["Parameters"]["ConvertMemorySize"]["Default"] = 10240
    path = tmp_path / "template.json"
    path.write_text(json.dumps(broken_source), encoding="utf-8")
    assert readiness.main([str(path)]) == 1
    assert readiness.main([str(readiness.REPO_ROOT / "template.yaml")]) == 0


# ------------------------------------------------------------------------- nested stacks


@pytest.fixture
def nested(transformed: Template) -> dict[str, Template]:
    return readiness.nested_templates(transformed)


def test_the_operations_stack_gets_what_it_declares(
    transformed: Template, nested: dict[str, Template]
) -> None:
    assert set(nested) == {"Operations"} and nested["Operations"]["Resources"]
    assert readiness.check_nested_stacks(transformed, nested) == []


def test_a_parameter_not_passed_or_not_declared_is_found(
    broken: Template, nested: dict[str, Template]
) -> None:
    passed = broken["Resources"]["Operations"]["Properties"]["Parameters"]
    del passed["NotificationTopic"]
    passed["Unknown"] = {"Ref": "LogLevel"}
    assert readiness.check_nested_stacks(broken, nested) == [
        "Operations: passes Unknown, which operations.yaml does not declare",
        "Operations: operations.yaml needs NotificationTopic, which the stack does not pass",
    ]


def test_a_secret_parameter_passed_without_noecho_is_found(
    transformed: Template, nested: dict[str, Template]
) -> None:
    del nested["Operations"]["Parameters"]["SlackWebhookUrl"]["NoEcho"]
    assert readiness.check_nested_stacks(transformed, nested) == [
        "Operations: secret SlackWebhookUrl reaches operations.yaml as SlackWebhookUrl without NoEcho"
    ]


def test_a_missing_nested_template_is_found(broken: Template) -> None:
    broken["Resources"]["Operations"]["Properties"]["TemplateURL"] = "missing.yaml"
    assert readiness.check_nested_stacks(broken, readiness.nested_templates(broken)) == [
        "Operations: nested template missing.yaml does not exist"
    ]


def test_the_nested_template_gets_the_name_length_and_partition_checks(
    transformed: Template, nested: dict[str, Template]
) -> None:
    alarm = nested["Operations"]["Resources"]["BuildsFailedAlarm"]["Properties"]
    alarm["AlarmName"] = {"Fn::Sub": "${AWS::StackName}-" + "builds-failed" * 10}
    alarm["AlarmActions"] = ["arn:aws:sns:us-east-1:123456789012:topic"]
    assert readiness.check_nested_stacks(transformed, nested) == [
        "operations.yaml: template hard-codes the aws partition: arn:aws:sns... (use ${AWS::Partition})",
        "operations.yaml: BuildsFailedAlarm: name can reach 259 characters for a 128-character stack "
        "name (limit 255)",
    ]
