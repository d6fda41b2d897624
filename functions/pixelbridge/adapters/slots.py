"""Per-userId slot reservations in DynamoDB (``SlotsTable``), one atomic update per attempt.

DynamoDB has no ``max()`` in update expressions, so the reservation is two conditional updates at
most: "the slot is free now" (``next <= not_before``) or else "take the next one"
(``ADD next :slot``, returning the old value). ``next`` only ever grows, so when the first
condition fails the second always holds, and concurrent callers never share a slot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

MILLIS = 1000


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * MILLIS)


def _from_millis(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / MILLIS, tz=UTC)


class SlotBook:
    def __init__(self, table_name: str, *, dynamodb: Any = None) -> None:
        self._table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)

    def reserve(self, user_id: str, not_before: datetime, spacing_seconds: float) -> datetime:
        """The start of a slot for ``user_id`` no earlier than ``not_before``."""
        step = int(spacing_seconds * MILLIS)
        start = _millis(not_before)
        try:
            self._table.update_item(
                Key={"userId": user_id},
                UpdateExpression=(
                    "SET nextFreeMs = :next, reservedCount = if_not_exists(reservedCount, :zero) + :one"
                ),
                ConditionExpression="attribute_not_exists(nextFreeMs) OR nextFreeMs <= :start",
                ExpressionAttributeValues={":next": start + step, ":start": start, ":zero": 0, ":one": 1},
            )
            return _from_millis(start)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        response = self._table.update_item(
            Key={"userId": user_id},
            UpdateExpression="ADD nextFreeMs :step, reservedCount :one",
            ExpressionAttributeValues={":step": step, ":one": 1},
            ReturnValues="UPDATED_OLD",
        )
        return _from_millis(response["Attributes"]["nextFreeMs"])

    def claim_call(self, user_id: str, now: datetime, spacing_seconds: float) -> datetime | None:
        """Atomically claim the right to call Streampixel now for ``user_id``.

        Succeeds (None) when the previous call started or ended at least ``spacing`` ago; otherwise
        returns when it may start. The claim and the check are one conditional write, so two
        executions can never both call inside one window.
        """
        now_ms = _millis(now)
        try:
            self._table.update_item(
                Key={"userId": user_id},
                UpdateExpression="SET lastCallMs = :now",
                ConditionExpression="attribute_not_exists(lastCallMs) OR lastCallMs <= :threshold",
                ExpressionAttributeValues={
                    ":now": now_ms,
                    ":threshold": now_ms - int(spacing_seconds * MILLIS),
                },
            )
            return None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        last = self.last_call(user_id)
        return None if last is None else _from_millis(_millis(last) + int(spacing_seconds * MILLIS))

    def call_ended(self, user_id: str, at: datetime) -> None:
        """Move the window to the end of the call: Streampixel may have counted it that late."""
        try:
            self._table.update_item(
                Key={"userId": user_id},
                UpdateExpression="SET lastCallMs = :at",
                ConditionExpression="attribute_not_exists(lastCallMs) OR lastCallMs < :at",
                ExpressionAttributeValues={":at": _millis(at)},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def last_call(self, user_id: str) -> datetime | None:
        item = self._table.get_item(Key={"userId": user_id}, ConsistentRead=True).get("Item")
        return _from_millis(item["lastCallMs"]) if item and "lastCallMs" in item else None
