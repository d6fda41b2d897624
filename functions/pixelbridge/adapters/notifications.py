"""Where status changes go: EventBridge (for users' own rules) and the SNS operator topic."""

from __future__ import annotations

import json
from typing import Any

import boto3


class EventBus:
    def __init__(self, bus_name: str, *, events: Any = None) -> None:
        self.bus_name = bus_name or "default"
        self._events = events or boto3.client("events")

    def put(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.bus_name,
                    "Resources": resources,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            # PutEvents reports per-entry failures in a 200 answer: raise so the record is retried.
            entry = response["Entries"][0]
            raise RuntimeError(f"PutEvents failed: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}")


class OperatorTopic:
    def __init__(self, topic_arn: str, *, sns: Any = None) -> None:
        self.topic_arn = topic_arn
        self._sns = sns or boto3.client("sns")

    @property
    def configured(self) -> bool:
        return bool(self.topic_arn)

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> None:
        self._sns.publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=message,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
