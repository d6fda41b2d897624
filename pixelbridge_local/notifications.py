"""NotifierFunction on the local stack: the BuildsTable stream polled like Lambda's event source.

moto keeps DynamoDB stream records (``dynamodbstreams.get_records``) but runs no event source
mappings, so one thread polls the table's shard and invokes NotifierFunction (its sandbox) with the
same event shape Lambda sends. What the notifier publishes is captured through the real services:
the SNS topic has an SQS subscription and an EventBridge rule (source ``pixelbridge``) targets
another queue, so ``operator_messages()`` and ``events()`` show exactly what users would receive.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]  # the function's answer; raises when the invocation failed


class LocalNotifications:
    def __init__(self, client: Callable[[str], Any], names: dict[str, str], prefix: str) -> None:
        self._client = client
        self._names = names
        self._prefix = prefix
        self._messages: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.batch_failures: list[str] = []

    # -- resources -------------------------------------------------------------------------------
    def create(self) -> dict[str, str]:
        """The NotificationTopic and the capture queues; returns names for the template resolver."""
        sns, sqs, events = self._client("sns"), self._client("sqs"), self._client("events")
        topic_arn = sns.create_topic(Name=f"{self._prefix}-notifications")["TopicArn"]
        self._topic_queue, topic_queue_arn = self._queue(sqs, "operator-messages")
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=topic_queue_arn)
        self._events_queue, events_queue_arn = self._queue(sqs, "build-events")
        events.put_rule(
            Name=f"{self._prefix}-build-events", EventPattern=json.dumps({"source": ["pixelbridge"]})
        )
        events.put_targets(
            Rule=f"{self._prefix}-build-events", Targets=[{"Id": "capture", "Arn": events_queue_arn}]
        )
        return {"NotificationTopic": topic_arn}

    def _queue(self, sqs: Any, name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=f"{self._prefix}-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    # -- the stream → NotifierFunction -------------------------------------------------------------
    def start(self, invoke: Invoke, stopping: threading.Event) -> None:
        streams = self._client("dynamodbstreams")
        table = self._client("dynamodb").describe_table(TableName=self._names["BuildsTable"])["Table"]
        stream_arn = table["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        thread = threading.Thread(
            target=self._poll,
            args=(streams, stream_arn, iterator, invoke, stopping),
            daemon=True,
            name="stream",
        )
        thread.start()

    def _poll(
        self, streams: Any, stream_arn: str, iterator: str, invoke: Invoke, stopping: threading.Event
    ) -> None:
        while not stopping.is_set():
            try:
                response = streams.get_records(ShardIterator=iterator, Limit=25)
            except Exception:  # the server is stopping
                return
            iterator = response.get("NextShardIterator") or iterator
            records = response.get("Records", [])
            if not records:
                time.sleep(0.1)
                continue
            event = {"Records": [{**record, "eventSourceARN": stream_arn} for record in records]}
            for record in event["Records"]:
                record["dynamodb"].pop(
                    "ApproximateCreationDateTime", None
                )  # a datetime; Lambda sends a number
            try:
                result = invoke(event) or {}
            except Exception as exc:  # Lambda would retry (bisect) and finally park the batch in the DLQ
                print(f"NotifierFunction raised {type(exc).__name__}: {exc}")
                continue
            self.batch_failures += [item["itemIdentifier"] for item in result.get("batchItemFailures", [])]

    # -- what was published ------------------------------------------------------------------------
    def operator_messages(self) -> list[dict[str, Any]]:
        """SNS messages so far: ``{"subject", "message", "attributes"}``."""
        for body in self._drain(self._topic_queue):
            attributes = {k: v.get("Value") for k, v in (body.get("MessageAttributes") or {}).items()}
            self._messages.append(
                {"subject": body.get("Subject"), "message": body.get("Message"), "attributes": attributes}
            )
        return list(self._messages)

    def events(self) -> list[dict[str, Any]]:
        """EventBridge events so far (the full envelope: source, detail-type, detail)."""
        self._events.extend(self._drain(self._events_queue))
        return list(self._events)

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        sqs = self._client("sqs")
        bodies: list[dict[str, Any]] = []
        with self._lock:
            while True:
                messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    return bodies
                for message in messages:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    bodies.append(json.loads(message["Body"]))
