"""Optional Slack/Discord webhooks: EventBridge posts NotifierFunction's events there, with no code.

The chat resources live in the nested stack operations.yaml (logical id Operations); template.yaml
takes the webhook parameters and passes them on.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from pixelbridge.domain.notifications import EVENT_DETAIL_TYPE, EVENT_SOURCE, StatusChange
from pixelbridge_local.template import nested_template, resolve, resource_properties
from scripts import deploy_readiness as readiness
from scripts.sam_transform import parse_template, transform_template

CHAT = (
    "ChatConnection",
    "SlackDestination",
    "DiscordDestination",
    "ChatDeliveryRole",
    "ChatNotificationsRule",
)
SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
DISCORD = "https://discord.com/api/webhooks/123/abc"


WEBHOOK_PARAMETERS = ("SlackWebhookUrl", "DiscordWebhookUrl")


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    source = parse_template(readiness.REPO_ROOT / "template.yaml")
    return transform_template(copy.deepcopy(source))


@pytest.fixture(scope="module")
def operations() -> dict[str, Any]:
    return nested_template("Operations")


def condition(name: str, **stack_parameters: str) -> bool:
    """A condition of operations.yaml when the main stack is deployed with `stack_parameters`."""
    passed = resource_properties("Operations")["Parameters"]
    nested_parameters = {p: resolve(passed[p], {}, stack_parameters) for p in WEBHOOK_PARAMETERS}
    return bool(resolve({"Condition": name}, {}, nested_parameters, template=nested_template("Operations")))


def test_chat_resources_exist_only_when_a_webhook_is_given(
    transformed: dict[str, Any], operations: dict[str, Any]
) -> None:
    assert not set(CHAT) & set(transformed["Resources"])  # all in the nested stack
    resources = operations["Resources"]
    conditions = {logical_id: resources[logical_id]["Condition"] for logical_id in CHAT}
    assert conditions["SlackDestination"] == "HasSlackWebhook"
    assert conditions["DiscordDestination"] == "HasDiscordWebhook"
    assert not any(condition(name) for name in set(conditions.values()))  # defaults: nothing is created
    assert condition("HasSlackWebhook", SlackWebhookUrl=SLACK) and condition(
        "HasChatWebhook", SlackWebhookUrl=SLACK
    )
    assert not condition("HasDiscordWebhook", SlackWebhookUrl=SLACK)
    assert condition("HasChatWebhook", DiscordWebhookUrl=DISCORD)


def test_webhook_parameters_are_secret_and_checked(
    transformed: dict[str, Any], operations: dict[str, Any]
) -> None:
    for name, good in (("SlackWebhookUrl", SLACK), ("DiscordWebhookUrl", DISCORD)):
        spec = transformed["Parameters"][name]
        assert spec["NoEcho"] is True and spec["Default"] == ""
        assert re.fullmatch(spec["AllowedPattern"], good) and re.fullmatch(spec["AllowedPattern"], "")
        assert not re.fullmatch(spec["AllowedPattern"], "http://hooks.slack.com.evil.test/x")
        # Passed on unchanged, and secret in the nested stack too.
        assert transformed["Resources"]["Operations"]["Properties"]["Parameters"][name] == {"Ref": name}
        assert operations["Parameters"][name]["NoEcho"] is True


def test_the_rule_matches_the_notifiers_events(operations: dict[str, Any]) -> None:
    rule = operations["Resources"]["ChatNotificationsRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == [EVENT_SOURCE]
    assert pattern["detail-type"] == [EVENT_DETAIL_TYPE]
    assert set(pattern["detail"]["to"]) == {"live", "failed", "rejected"}


@pytest.mark.parametrize(("target_id", "key"), [("slack", "text"), ("discord", "content")])
def test_the_input_transformer_renders_a_chat_message(
    operations: dict[str, Any], target_id: str, key: str
) -> None:
    targets = operations["Resources"]["ChatNotificationsRule"]["Properties"]["Targets"]
    (target,) = [t["Fn::If"][1] for t in targets if t["Fn::If"][1]["Id"] == target_id]
    transformer = target["InputTransformer"]
    change = StatusChange(
        build_id="b-42",
        route="main",
        from_status="approved",
        to_status="rejected",
        reason='Streampixel said "missing exe"',
        stuck=False,
    )
    detail = change.event_detail()
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        field = path.removeprefix("$.detail.")
        assert field in detail, path  # every path exists in the events NotifierFunction sends
        values[name] = json.dumps(detail[field])[1:-1]  # EventBridge escapes strings placed in quotes
    body = re.sub(r"<(\w+)>", lambda m: values[m.group(1)], transformer["InputTemplate"])
    message = json.loads(body)[key]
    assert message == 'PixelBridge: build b-42 (route main) is rejected: Streampixel said "missing exe"'
