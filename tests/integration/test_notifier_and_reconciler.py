"""NotifierFunction and ReconcilerFunction against moto, with tables created from template.yaml.

Stream records come from moto's real BuildsTable stream (NEW_AND_OLD_IMAGES); what the notifier
publishes is read back from SQS queues subscribed to the topic and targeted by an EventBridge rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from pixelbridge import wiring
from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.workflow import Workflow
from pixelbridge.domain.reconciliation import StuckThresholds
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import utc_now
from pixelbridge.handlers import notifier
from pixelbridge.usecases.reconcile import ReconcileBuilds
from pixelbridge_local.gateway import FakeLambdaContext
from tests.support.aws import MotoAccount, moto_account

# botocore sends DescribeStream to an account endpoint moto does not route; the classic one works.
STREAMS_ENDPOINT = "https://streams.dynamodb.us-east-1.amazonaws.com"


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MotoAccount, dict[str, str]]]:
    with moto_account(monkeypatch) as acct:
        sns, sqs, events = acct.client("sns"), acct.client("sqs"), acct.client("events")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        topic_q, topic_q_arn = queue(sqs, "operator")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=topic_q_arn)
        events_q, events_q_arn = queue(sqs, "events")
        events.put_rule(Name="builds", EventPattern=json.dumps({"source": ["pixelbridge"]}))
        events.put_targets(Rule="builds", Targets=[{"Id": "q", "Arn": events_q_arn}])
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", topic)
        wiring.reset()
        yield acct, {"operator": topic_q, "events": events_q}


def stream_event(acct: MotoAccount) -> dict[str, Any]:
    """Every record of the BuildsTable stream so far, shaped like Lambda's DynamoDB event."""
    table = acct.client("dynamodb").describe_table(TableName=acct.names["BuildsTable"])["Table"]
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=STREAMS_ENDPOINT)
    arn = table["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    for record in records:
        record["dynamodb"].pop("ApproximateCreationDateTime", None)
    return {"Records": [{**r, "eventSourceARN": arn} for r in records]}


def test_stream_records_become_events_and_operator_messages(
    account: tuple[MotoAccount, dict[str, str]],
) -> None:
    acct, queues = account
    builds = wiring.builds()
    builds.create({"buildId": "n-1", "status": "received", "route": "r1", "source": "push"}, event="received")
    builds.transition("n-1", BuildStatus.STORED, event="stored")
    builds.record_event("n-1", "note", "not a status change")
    builds.transition(
        "n-1",
        BuildStatus.REJECTED,
        event="build.rejected",
        fields={"objection": "Missing executable", "zipUrl": "https://cdn.example/dl/secret/Game.zip"},
    )

    result = notifier.handler(stream_event(acct), FakeLambdaContext("NotifierFunction"))

    assert result == {"batchItemFailures": []}
    sqs = acct.client("sqs")
    events = drain(sqs, queues["events"])
    assert [(e["detail"]["from"], e["detail"]["to"]) for e in events] == [
        (None, "received"),
        ("received", "stored"),
        ("stored", "rejected"),
    ]
    assert events[-1]["detail-type"] == "Build Status Changed"
    assert events[-1]["detail"]["reason"] == "Missing executable"
    (message,) = drain(sqs, queues["operator"])
    assert message["Subject"] == "PixelBridge: build n-1 is rejected"
    assert "Objection: Missing executable" in message["Message"]
    assert "cdn.example" not in json.dumps(events) + json.dumps(message)
    assert "openShard" not in (builds.get("n-1") or {})  # terminal: left the open index


class RecordingSfn:
    """Step Functions calls the reconciler makes (moto cannot hold a real parked task here)."""

    def __init__(self) -> None:
        self.failures: list[dict[str, str]] = []

    def send_task_failure(self, **kwargs: str) -> None:
        self.failures.append(kwargs)

    def describe_execution(self, executionArn: str) -> dict[str, str]:
        return {"status": "RUNNING"}


def test_reconciler_finds_stuck_builds_through_the_open_index(
    account: tuple[MotoAccount, dict[str, str]],
) -> None:
    acct, _ = account
    now = utc_now()
    past = BuildRepository(acct.names["BuildsTable"], clock=lambda: now - timedelta(hours=3))
    past.create({"buildId": "old-1", "status": "received", "route": "r"}, event="received")
    past.transition("old-1", BuildStatus.PROCESSING, event="uploaded")
    past.set_fields("old-1", {"waitToken": "token-1", "waitingFor": "approval"})
    past.record_event("old-1", "waiting", "waiting for Streampixel: approval")
    past.create({"buildId": "done-1", "status": "received", "route": "r"}, event="received")
    past.transition("done-1", BuildStatus.LIVE, event="live")
    fresh = BuildRepository(acct.names["BuildsTable"], clock=lambda: now)
    fresh.create({"buildId": "new-1", "status": "received", "route": "r"}, event="received")

    sfn = RecordingSfn()
    workflow = Workflow("arn:aws:states:us-east-1:123456789012:stateMachine:release", sfn=sfn)
    thresholds = StuckThresholds(
        ingest_seconds=3600, convert_seconds=1200, queue_seconds=3600, release_seconds=3600
    )
    report = ReconcileBuilds(builds=fresh, workflow=workflow, thresholds=thresholds, clock=lambda: now)()

    assert report.checked == 1  # new-1 is too recent for the index query, done-1 is not open
    assert report.actions == [{"buildId": "old-1", "action": "failed token"}]
    ((failure),) = sfn.failures
    assert failure["taskToken"] == "token-1" and failure["error"] == "Stuck"
    record = fresh.get("old-1")
    assert record is not None
    assert record["stuck"] is True and "waitToken" not in record
    assert record["status"] == "processing"  # the workflow records failed once the task fails


def test_sample_events_run_through_the_handlers(account: tuple[MotoAccount, dict[str, str]]) -> None:
    acct, queues = account
    from pixelbridge.handlers import reconciler
    from pixelbridge_local.template import REPO_ROOT

    sample = json.loads((REPO_ROOT / "events" / "notifier-build-rejected.json").read_text())
    assert notifier.handler(sample, FakeLambdaContext("NotifierFunction")) == {"batchItemFailures": []}
    (message,) = drain(acct.client("sqs"), queues["operator"])
    assert "Objection: Build contains unsupported file formats." in message["Message"]

    schedule = json.loads((REPO_ROOT / "events" / "reconciler-schedule.json").read_text())
    assert reconciler.handler(schedule, FakeLambdaContext("ReconcilerFunction")) == {
        "checked": 0,
        "actions": [],
        "errors": [],
    }
