"""template.yaml through the SAM transform: what each sandbox gets (environment, role, async config)."""

from __future__ import annotations

from pixelbridge_local.iam import is_allowed
from pixelbridge_local.transformed import ResolvedTemplate

NAMES = {
    "BuildsTable": "t-builds",
    "SlotsTable": "t-slots",
    "IdempotencyTable": "t-idem",
    "ArtifactBucket": "t-artifacts",
    "HandoffBucket": "t-handoff",
    "BuildPixelSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bp",
    "StreampixelSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sp",
    "StreampixelWebhookSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook",
    "OperatorSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:op",
    "ReleaseStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:pixelbridge-local-release",
    "ReleaseStateMachine.Name": "pixelbridge-local-release",
    "NotificationTopic": "arn:aws:sns:us-east-1:123456789012:topic",
    "NotificationKey.Arn": "arn:aws:kms:us-east-1:123456789012:key/k",
    "ConvertDeadLetterQueue": "http://q/dlq",
    "ConvertDeadLetterQueue.Arn": "arn:aws:sqs:us-east-1:123456789012:dlq",
    "NotifierDeadLetterQueue": "http://q/ndlq",
    "NotifierDeadLetterQueue.Arn": "arn:aws:sqs:us-east-1:123456789012:ndlq",
    **{name: name for name in ("IngestFunction", "ConvertFunction", "FetchFunction", "ReleaseFunction")},
    "ReleaseFunction.Arn": "arn:aws:lambda:us-east-1:123456789012:function:ReleaseFunction",
}


def resolved() -> ResolvedTemplate:
    return ResolvedTemplate(
        NAMES, {"HandoffMode": "presigned", "StreampixelProjectId": "67944b8a3f323be4b89a2272"}
    )


def test_each_function_gets_globals_plus_only_its_own_variables() -> None:
    template = resolved()
    ingest, release = template.function("IngestFunction"), template.function("ReleaseFunction")
    assert ingest.environment["BUILDS_TABLE"] == "t-builds"  # Globals, resolved
    assert ingest.environment["FETCH_FUNCTION_NAME"] == "FetchFunction"  # its own
    assert "FETCH_FUNCTION_NAME" not in release.environment
    assert "NOTIFICATION_TOPIC_ARN" in template.function("NotifierFunction").environment
    assert "NOTIFICATION_TOPIC_ARN" not in ingest.environment
    assert ingest.handler == "pixelbridge.handlers.ingest.handler"
    assert (ingest.timeout_seconds, ingest.memory_mb) == (30, 1024)


def test_async_invoke_configuration_comes_from_event_invoke_config() -> None:
    template = resolved()
    convert = template.function("ConvertFunction")
    assert (convert.maximum_retry_attempts, convert.on_failure_arn) == (
        1,
        NAMES["ConvertDeadLetterQueue.Arn"],
    )
    assert template.function("ReconcilerFunction").maximum_retry_attempts == 0
    assert template.function("IngestFunction").maximum_retry_attempts == 2  # Lambda's default


def test_roles_hold_the_resolved_policy_templates() -> None:
    template = resolved()
    convert = template.role(template.function("ConvertFunction").role_logical_id)
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t-builds"
    assert is_allowed(convert.statements, "dynamodb:UpdateItem", table)
    assert not is_allowed(convert.statements, "dynamodb:UpdateItem", table.replace("builds", "slots"))
    assert is_allowed(convert.statements, "s3:PutObject", "arn:aws:s3:::t-handoff/dl/x/b.zip")
    assert not is_allowed(convert.statements, "s3:PutObject", "arn:aws:s3:::t-artifacts/inbox/x")
    machine = template.role(template.state_machine_role_id())
    assert is_allowed(machine.statements, "lambda:InvokeFunction", NAMES["ReleaseFunction.Arn"])
    assert not is_allowed(
        machine.statements, "lambda:InvokeFunction", NAMES["ReleaseFunction.Arn"][:-15] + "Fetch"
    )
