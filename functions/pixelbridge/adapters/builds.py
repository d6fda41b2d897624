"""Build records in DynamoDB (``BuildsTable``).

Every status change is one conditional UpdateItem: the build moves only forward (see
``domain.statuses``), the timeline entry is appended in the same write, so no update is lost and
no build moves backwards even when S3, Step Functions and webhooks race.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from pixelbridge.domain.statuses import BuildStatus, allowed_sources
from pixelbridge.domain.timeline import Clock, iso, timeline_entry, utc_now

BuildRecord = dict[str, Any]

UPLOAD_ID_INDEX = "uploadId-index"
HANDOFF_TOKEN_INDEX = "handoffToken-index"  # noqa: S105 - an index name, not a secret
ROUTE_INDEX = "route-index"


def to_dynamo(value: Any) -> Any:
    """DynamoDB has no float type: store floats as Decimal, recursively."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimals back to int/float so records serialise as plain JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class BuildRepository:
    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = utc_now) -> None:
        self._table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)
        self._clock = clock

    def now_iso(self) -> str:
        return iso(self._clock())

    def create(self, record: BuildRecord, *, event: str, detail: str = "") -> bool:
        """Create the record if no build with this id exists yet; False when it already does."""
        now = self._clock()
        item = {
            **record,
            "receivedAt": record.get("receivedAt", iso(now)),
            "updatedAt": iso(now),
            "timeline": [timeline_entry(now, event, detail, status=record["status"])],
        }
        try:
            self._table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(buildId)")
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def get(self, build_id: str) -> BuildRecord | None:
        item = self._table.get_item(Key={"buildId": build_id}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def transition(
        self,
        build_id: str,
        to: BuildStatus,
        *,
        event: str,
        detail: str = "",
        fields: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        allow_same: bool = False,
    ) -> BuildRecord | None:
        """Move the build forward to ``to``; None when its current status does not allow it."""
        sources = set(allowed_sources(to))
        if allow_same:
            sources.add(to)
        values = {f":from{i}": str(status) for i, status in enumerate(sorted(sources))}
        condition = f"#status IN ({', '.join(values)})"
        return self._update(
            build_id,
            {**(fields or {}), "status": str(to)},
            entry=(event, detail, str(to), data),
            condition=condition,
            condition_values=values,
        )

    def record_event(
        self,
        build_id: str,
        event: str,
        detail: str = "",
        *,
        fields: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> BuildRecord | None:
        """Append a timeline entry (and set fields) without changing the status."""
        return self._update(build_id, fields or {}, entry=(event, detail, None, data))

    def set_fields(
        self, build_id: str, fields: dict[str, Any], *, only_if_status_in: set[BuildStatus] | None = None
    ) -> BuildRecord | None:
        values: dict[str, str] = {}
        condition = None
        if only_if_status_in:
            values = {f":from{i}": str(status) for i, status in enumerate(sorted(only_if_status_in))}
            condition = f"#status IN ({', '.join(values)})"
        return self._update(build_id, fields, entry=None, condition=condition, condition_values=values)

    def remove_fields(self, build_id: str, names: list[str]) -> None:
        self._table.update_item(
            Key={"buildId": build_id},
            UpdateExpression="REMOVE " + ", ".join(f"#r{i}" for i in range(len(names))),
            ExpressionAttributeNames={f"#r{i}": name for i, name in enumerate(names)},
            ConditionExpression="attribute_exists(buildId)",
        )

    def clear_wait_token(self, build_id: str, token: str) -> bool:
        """Forget the parked task token if it is still ``token``; True for the one caller that did."""
        try:
            self._table.update_item(
                Key={"buildId": build_id},
                UpdateExpression="REMOVE waitToken, waitingFor",
                ConditionExpression="waitToken = :token",
                ExpressionAttributeValues={":token": token},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def find_by_upload_id(self, upload_id: str) -> BuildRecord | None:
        return self._first_in_index(UPLOAD_ID_INDEX, "uploadId", upload_id)

    def find_by_handoff_token(self, token: str) -> BuildRecord | None:
        return self._first_in_index(HANDOFF_TOKEN_INDEX, "handoffToken", token)

    def builds_for_route(
        self, route_id: str, *, newest_first: bool = True, limit: int = 25
    ) -> list[BuildRecord]:
        response = self._table.query(
            IndexName=ROUTE_INDEX,
            KeyConditionExpression=Key("route").eq(route_id),
            ScanIndexForward=not newest_first,
            Limit=limit,
        )
        return [from_dynamo(item) for item in response.get("Items", [])]

    def _first_in_index(self, index: str, attribute: str, value: str) -> BuildRecord | None:
        response = self._table.query(
            IndexName=index, KeyConditionExpression=Key(attribute).eq(value), Limit=1
        )
        items = response.get("Items", [])
        if not items:
            return None
        # GSIs may project only keys: read the full, consistent record.
        return self.get(str(items[0]["buildId"]))

    def _update(
        self,
        build_id: str,
        fields: dict[str, Any],
        *,
        entry: tuple[str, str, str | None, dict[str, Any] | None] | None,
        condition: str | None = None,
        condition_values: dict[str, str] | None = None,
    ) -> BuildRecord | None:
        now = self._clock()
        names = {"#status": "status", "#updatedAt": "updatedAt"}
        values: dict[str, Any] = {":now": iso(now), **(condition_values or {})}
        assignments = ["#updatedAt = :now"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_dynamo(value)
            assignments.append(f"#f{i} = :f{i}")
        if entry is not None:
            event, detail, status, data = entry
            names["#timeline"] = "timeline"
            values[":entry"] = to_dynamo([timeline_entry(now, event, detail, status=status, data=data)])
            values[":empty"] = []
            assignments.append("#timeline = list_append(if_not_exists(#timeline, :empty), :entry)")
        full_condition = "attribute_exists(buildId)" + (f" AND {condition}" if condition else "")
        if "#status" not in full_condition:
            names.pop("#status")
        try:
            response = self._table.update_item(
                Key={"buildId": build_id},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=full_condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        return from_dynamo(response["Attributes"])
