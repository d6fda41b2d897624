"""The strict local stack: each function's own role, Lambda's lifecycle and limits, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from pixelbridge_local.sandbox import Fault
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import events_of, push, wait_until

MakeStack = Callable[..., EmbeddedStack]


def dead_letters(stack: EmbeddedStack, queue: str = "ConvertDeadLetterQueue") -> list[dict[str, Any]]:
    messages = stack.client("sqs").receive_message(
        QueueUrl=stack.names[queue], MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def history_errors(stack: EmbeddedStack, build_id: str) -> list[str]:
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{build_id}"
    events = stack.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [event["taskFailedEventDetails"]["error"] for event in events if "taskFailedEventDetails" in event]


@pytest.mark.parametrize("with_statement", [True, False], ids=["with-StartRelease", "without-StartRelease"])
def test_one_policy_statement_decides_whether_a_push_goes_live(
    make_stack: MakeStack, with_statement: bool
) -> None:
    left_out = {} if with_statement else {"ConvertFunction": ["StartRelease"]}
    stack = make_stack(slot_seconds=1, release_policy="auto", without_statements=left_out)
    assert push(stack, "iam-1").status_code == 202
    role = stack.role_names["ConvertFunction"]
    state_machine = stack.state_machine_arn
    if with_statement:
        assert stack.wait_for_terminal("iam-1", timeout=90)["status"] == "live"
        assert stack.authorizer.usage[role][("states:StartExecution", state_machine)] == 1
        assert stack.authorizer.denied == []
        return
    # Without it: AccessDenied on states:StartExecution; the conversion fails and Lambda retries it.
    wait_until(lambda: (role, "states:StartExecution", state_machine) in stack.authorizer.denied, timeout=90)
    wait_until(lambda: len(stack.pools["ConvertFunction"].invocations) >= 2, timeout=60)
    assert stack.pools["ConvertFunction"].invocations[0].outcome.failed
    assert "AccessDenied" in json.dumps(stack.pools["ConvertFunction"].invocations[0].outcome.error)
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=state_machine)["executions"]
    assert executions == []
    record = stack.build("iam-1")
    assert record is not None and record["status"] != "live"


def test_the_state_machine_role_must_allow_invoking_its_task_function(make_stack: MakeStack) -> None:
    stack = make_stack(
        slot_seconds=1,
        release_policy="auto",
        without_statements={"ReleaseStateMachine": ["lambda:InvokeFunction"]},
    )
    assert push(stack, "iam-sfn").status_code == 202

    def denied_task() -> bool:
        try:
            return "Lambda.AccessDeniedException" in history_errors(stack, "iam-sfn")
        except ClientError:  # the execution has not started yet
            return False

    assert wait_until(denied_task, timeout=90)
    assert (
        stack.role_names["ReleaseStateMachine"],
        "lambda:InvokeFunction",
        stack.names["ReleaseFunction.Arn"],
    ) in (stack.authorizer.denied)
    assert stack.pools["ReleaseFunction"].invocations == []  # refused before any sandbox ran
    record = stack.build("iam-sfn")
    assert record is not None and record["status"] != "live"


def test_a_release_task_that_times_out_is_killed_and_retried_as_lambda_unknown(make_stack: MakeStack) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto", timeouts={"ReleaseFunction": 2})
    stack.inject_fault("ReleaseFunction", Fault("block", when='"prepare"'))
    assert push(stack, "slow-task").status_code == 202
    record = stack.wait_for_terminal("slow-task", timeout=120)
    assert record["status"] == "live"
    assert history_errors(stack, "slow-task") == ["Lambda.Unknown"]  # then the ASL's Retry ran it again
    invocations = stack.pools["ReleaseFunction"].invocations
    assert [invocation.outcome.stopped for invocation in invocations].count(True) == 1
    assert stack.pools["ReleaseFunction"].cold_starts >= 2  # the killed sandbox was replaced


def test_async_conversions_are_retried_once_then_parked_in_the_dead_letter_queue(
    make_stack: MakeStack,
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.inject_fault("ConvertFunction", Fault("exit", when="crash-twice", times=2))
    assert push(stack, "crash-twice").status_code == 202
    parked = wait_until(lambda: dead_letters(stack), timeout=60)
    assert [record["requestContext"]["condition"] for record in parked] == ["RetriesExhausted"]
    assert "crash-twice" in json.dumps(parked[0]["requestPayload"])
    assert parked[0]["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert "converted" not in events_of(stack.build("crash-twice") or {"timeline": []})
    assert len(stack.pools["ConvertFunction"].invocations) == 2  # 1 + MaximumRetryAttempts


def test_payload_limits_are_checked_before_the_function_runs(make_stack: MakeStack) -> None:
    stack = make_stack(slot_seconds=1)
    ingest = stack.pools["IngestFunction"]
    # 4.8 MB of body is 6.4 MB of base64 in the event: over the 6,291,456-byte invoke payload.
    answer = requests.post(stack.upload_url, data=b"x" * 4_800_000, timeout=30)
    assert answer.status_code == 413 and ingest.invocations == []
    # Just under the limit the function runs (and refuses the unauthenticated push itself).
    assert requests.post(stack.upload_url, data=b"x" * 4_000_000, timeout=30).status_code == 401
    assert len(ingest.invocations) == 1
    lambda_client = stack.client("lambda")
    too_big = json.dumps({"pad": "x" * 1_048_576})
    with pytest.raises(ClientError) as caught:
        lambda_client.invoke(FunctionName="FetchFunction", InvocationType="Event", Payload=too_big)
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert stack.pools["FetchFunction"].invocations == []


def test_each_function_sees_only_its_own_environment(make_stack: MakeStack) -> None:
    stack = make_stack(slot_seconds=1)
    environments = {name: pool.environment for name, pool in stack.pools.items()}
    assert "NOTIFICATION_TOPIC_ARN" in environments["NotifierFunction"]
    assert "NOTIFICATION_TOPIC_ARN" not in environments["IngestFunction"]
    assert "FETCH_FUNCTION_NAME" not in environments["ConvertFunction"]
    assert "BUILDPIXEL_API_URL" in environments["FetchFunction"]
    assert "BUILDPIXEL_API_URL" not in environments["ReleaseFunction"]
    credentials = {environment["AWS_ACCESS_KEY_ID"] for environment in environments.values()}
    assert len(credentials) == len(environments)  # one role each


def test_retry_of_a_build_whose_artifact_expired_is_a_conflict(make_stack: MakeStack) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.reject_next_upload("Build is missing an executable", at_event="build.extracting")
    assert push(stack, "expired-1").status_code == 202
    rejected = stack.wait_for_terminal("expired-1", timeout=60)
    assert rejected["status"] == "rejected"
    # The lifecycle rules removed the handoff zip and the inbox artifact: nothing is left to re-drive.
    s3 = stack.client("s3")
    s3.delete_object(Bucket=stack.names["HandoffBucket"], Key=rejected["zipKey"])
    s3.delete_object(Bucket=stack.names["ArtifactBucket"], Key=rejected["artifactKey"])
    answer = requests.post(
        f"{stack.operator_url}/builds/expired-1/retry",
        headers={"Authorization": stack.operator_authorization},
        timeout=30,
    )
    assert answer.status_code == 409, answer.text
