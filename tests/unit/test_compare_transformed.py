"""scripts/compare_transformed.py follows resources into a nested stack and still finds every change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scripts import compare_transformed as compare

Template = dict[str, Any]

ALARM: Template = {
    "Type": "AWS::CloudWatch::Alarm",
    "Condition": "HasTopic",
    "Properties": {
        "AlarmActions": [{"Ref": "Topic"}],
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}],
        "AlarmDescription": {"Fn::Sub": "${Queue.QueueName} in ${AWS::Region} (${Topic})"},
    },
}
BASE: Template = {
    "Parameters": {"TopicWanted": {"Type": "String", "Default": "yes"}},
    "Conditions": {"HasTopic": {"Fn::Equals": [{"Ref": "TopicWanted"}, "yes"]}},
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "QueueAlarm": ALARM,
    },
}
# The same alarm in a nested stack, written with the nested template's own parameters.
NESTED: Template = {
    "Parameters": {n: {"Type": "String"} for n in ("TopicArn", "QueueName", "TopicWanted")},
    "Conditions": {"HasTopic": {"Fn::Equals": [{"Ref": "TopicWanted"}, "yes"]}},
    "Resources": {
        "QueueAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Condition": "HasTopic",
            "Properties": {
                "AlarmActions": [{"Ref": "TopicArn"}],
                "Dimensions": [{"Name": "QueueName", "Value": {"Ref": "QueueName"}}],
                "AlarmDescription": {"Fn::Sub": "${QueueName} in ${AWS::Region} (${TopicArn})"},
            },
        }
    },
}
CURRENT: Template = {
    "Parameters": BASE["Parameters"],
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Watch": {
            "Type": "AWS::CloudFormation::Stack",
            "Properties": {
                "TemplateURL": "watch.yaml",
                "Parameters": {
                    "TopicArn": {"Ref": "Topic"},
                    "QueueName": {"Fn::GetAtt": ["Queue", "QueueName"]},
                    "TopicWanted": {"Ref": "TopicWanted"},
                },
            },
        },
    },
}


def deployed(template: Template, nested: Template | None = None) -> compare.Deployed:
    files = {"watch.yaml": nested if nested is not None else NESTED}
    return compare.deployed(copy.deepcopy(template), lambda path: copy.deepcopy(files[path]))


def test_a_resource_moved_into_a_nested_stack_compares_equal() -> None:
    base, current = deployed(BASE), deployed(CURRENT)
    assert current.resources["QueueAlarm"] == base.resources["QueueAlarm"]
    assert compare.differences(base.resources, current.resources) == {"Watch": "added"}
    assert compare.moved(base, current) == {"QueueAlarm": "(root) -> Watch"}
    assert compare.condition_differences(base, current) == {}


def test_a_changed_nested_resource_is_a_difference() -> None:
    nested = copy.deepcopy(NESTED)
    nested["Resources"]["QueueAlarm"]["Properties"]["AlarmActions"] = []
    found = compare.differences(deployed(BASE).resources, deployed(CURRENT, nested).resources)
    assert found == {"QueueAlarm": "changed: AlarmActions", "Watch": "added"}


def test_a_changed_condition_of_a_moved_resource_is_a_difference() -> None:
    nested = copy.deepcopy(NESTED)
    nested["Conditions"]["HasTopic"] = {"Fn::Equals": [{"Ref": "TopicWanted"}, "no"]}
    base, current = deployed(BASE), deployed(CURRENT, nested)
    assert compare.condition_differences(base, current) == {"Condition HasTopic": "changed"}


def test_a_parameter_passed_the_wrong_resource_is_a_difference() -> None:
    current = copy.deepcopy(CURRENT)
    current["Resources"]["Watch"]["Properties"]["Parameters"]["QueueName"] = {"Ref": "Queue"}
    found = compare.differences(deployed(BASE).resources, deployed(current).resources)
    assert found["QueueAlarm"] == "changed: AlarmDescription, Dimensions"


def test_the_nested_stacks_own_stack_name_is_refused() -> None:
    nested = copy.deepcopy(NESTED)
    nested["Resources"]["QueueAlarm"]["Properties"]["AlarmName"] = {"Fn::Sub": "${AWS::StackName}-dlq"}
    with pytest.raises(ValueError, match="AWS::StackName"):
        deployed(CURRENT, nested)
