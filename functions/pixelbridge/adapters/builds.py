"""Build records in DynamoDB (``BuildsTable``).

Every status change is one conditional UpdateItem: the build moves only forward (see
``domain.statuses``), the timeline entry is appended in the same write, so no update is lost and
no build moves backwards even when S3, Step Functions and webhooks race.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.statuses import BuildStatus, allowed_sources, is_terminal
from pixelbridge.domain.timeline import Clock, iso, timeline_entry, utc_now
from pixelbridge.ports import BuildPage, InvalidCursor

__all__ = ["BuildPage", "BuildRecord", "BuildRepository", "InvalidCursor"]


UPLOAD_ID_INDEX = "uploadId-index"
HANDOFF_TOKEN_INDEX = "handoffToken-index"  # noqa: S105 - an index name, not a secret
ROUTE_INDEX = "route-index"
# Sparse index of non-terminal builds (the reconciler's work list): OPEN_ATTRIBUTE is set while a
# build is open and removed by the write that makes it terminal, so the index never grows with history.
OPEN_INDEX = "open-index"
OPEN_ATTRIBUTE = "openShard"
OPEN_VALUE = "open"
RECENT_INDEX = "recent-index"
# Every build record carries this constant, the partition of RECENT_INDEX (all builds, newest first).
RECORD_KIND = "build"
MAX_LIST_QUERIES = 10


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(from_dynamo(key), separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, allowed_keys: set[str]) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("the 'next' cursor is not valid") from exc
    if (
        not isinstance(key, dict)
        or set(key) != allowed_keys
        or not all(isinstance(value, str) and value for value in key.values())
    ):
        raise InvalidCursor("the 'next' cursor does not belong to this listing")
    return key


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
            "kind": RECORD_KIND,
            "receivedAt": record.get("receivedAt", iso(now)),
            "updatedAt": iso(now),
            "timeline": [timeline_entry(now, event, detail, status=record["status"])],
        }
        if not is_terminal(record["status"]):
            item[OPEN_ATTRIBUTE] = OPEN_VALUE
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
            remove=[OPEN_ATTRIBUTE] if is_terminal(to) else None,
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

    def mark_stuck(self, build_id: str, reason: str) -> BuildRecord | None:
        """Flag a non-terminal build as stuck, once (None if it is terminal or already flagged)."""
        terminal = sorted(str(status) for status in BuildStatus if is_terminal(status))
        values = {f":term{i}": status for i, status in enumerate(terminal)}
        return self._update(
            build_id,
            {"stuck": True, "stuckAt": self.now_iso(), "stuckReason": reason},
            entry=("stuck", reason, None, None),
            condition=f"attribute_not_exists(stuck) AND NOT (#status IN ({', '.join(values)}))",
            condition_values=values,
        )

    def open_builds(self, *, updated_before: str, limit: int = 200) -> list[BuildRecord]:
        """Non-terminal builds not updated since ``updated_before`` (oldest first, at most ``limit``)."""
        items: list[BuildRecord] = []
        kwargs: dict[str, Any] = {
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": Key(OPEN_ATTRIBUTE).eq(OPEN_VALUE)
            & Key("updatedAt").lt(updated_before),
        }
        while len(items) < limit:
            response = self._table.query(**kwargs, Limit=limit - len(items))
            items.extend(from_dynamo(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items

    def reopen(
        self,
        build_id: str,
        *,
        expected: BuildStatus,
        to: BuildStatus,
        reason: str,
        fields: dict[str, Any] | None = None,
        remove: Sequence[str] = (),
    ) -> BuildRecord | None:
        """The one way out of a terminal status: an operator re-drives a failed or rejected build.

        Audited: the timeline gets an ``operator retry`` entry naming both statuses and the reason.
        Conditional on the status the operator saw (``expected``), so it happens once; None otherwise.
        """
        if not is_terminal(expected) or is_terminal(to):
            raise ValueError(f"reopen moves a terminal build back into progress, not {expected} -> {to}")
        return self._update(
            build_id,
            {**(fields or {}), "status": str(to), OPEN_ATTRIBUTE: OPEN_VALUE},
            entry=("operator retry", f"{expected} -> {to}: {reason}", str(to), None),
            condition="#status = :expected",
            condition_values={":expected": str(expected)},
            remove=list(remove),
        )

    def begin_redistribution(
        self,
        build_id: str,
        redistribution: dict[str, Any],
        *,
        statuses: Collection[BuildStatus],
        stale_before: str,
        event: str,
        detail: str,
        remove: Sequence[str] = (),
    ) -> BuildRecord | None:
        """Mark the build as being re-distributed (rollback / never dark); its status does not move.

        One at a time per build: None when the build is not in ``statuses`` or another
        re-distribution, requested after ``stale_before``, is still marked on it.
        """
        values = {f":from{i}": str(status) for i, status in enumerate(sorted(statuses))}
        condition = (
            f"#status IN ({', '.join(values)}) AND "
            "(attribute_not_exists(redistribution) OR redistribution.requestedAt < :stale)"
        )
        return self._update(
            build_id,
            {"redistribution": redistribution},
            entry=(event, detail, None, None),
            condition=condition,
            condition_values={**values, ":stale": stale_before},
            remove=list(remove),
        )

    def list_builds(
        self,
        *,
        route: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> BuildPage:
        """Builds newest first (by ``receivedAt``), one route's or all; ``cursor`` continues a page.

        A status filter reads on until the page is full (at most ``MAX_LIST_QUERIES`` queries), and
        the cursor then points after the last build returned, so no match is skipped or repeated.
        """
        index, partition = (ROUTE_INDEX, "route") if route else (RECENT_INDEX, "kind")
        condition: Any = Key(partition).eq(route or RECORD_KIND)
        if since:
            condition = condition & Key("receivedAt").gte(since)
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
        }
        start = _decode_cursor(cursor, {"buildId", partition, "receivedAt"}) if cursor else None
        found: list[BuildRecord] = []
        for _ in range(MAX_LIST_QUERIES):
            if start:
                query["ExclusiveStartKey"] = start
            response = self._query_page(query, limit=limit - len(found) if not status else limit)
            for item in response.get("Items", []):
                if status is None or item.get("status") == status:
                    found.append(from_dynamo(item))
                if len(found) == limit:
                    last = {
                        "buildId": item["buildId"],
                        partition: item[partition],
                        "receivedAt": item["receivedAt"],
                    }
                    return BuildPage(found, _encode_cursor(last))
            start = response.get("LastEvaluatedKey")
            if not start:
                return BuildPage(found, None)
        return BuildPage(found, _encode_cursor(start))

    def _query_page(self, query: dict[str, Any], *, limit: int) -> dict[str, Any]:
        try:
            return dict(self._table.query(**query, Limit=limit))
        except ClientError as error:
            if (
                "ExclusiveStartKey" in query
                and error.response.get("Error", {}).get("Code") == "ValidationException"
            ):
                raise InvalidCursor("the 'next' cursor does not belong to this listing") from error
            raise

    def all_builds_for_route(self, route_id: str) -> list[BuildRecord]:
        """Every build of a route (paginated), newest first."""
        records: list[BuildRecord] = []
        cursor: str | None = None
        while True:
            page = self.list_builds(route=route_id, limit=100, cursor=cursor)
            records.extend(page.records)
            if page.cursor is None:
                return records
            cursor = page.cursor

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
        remove: list[str] | None = None,
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
        removals = [f"#rm{i}" for i in range(len(remove or []))]
        names.update({f"#rm{i}": name for i, name in enumerate(remove or [])})
        full_condition = "attribute_exists(buildId)" + (f" AND {condition}" if condition else "")
        if "#status" not in full_condition:
            names.pop("#status")
        try:
            response = self._table.update_item(
                Key={"buildId": build_id},
                UpdateExpression="SET "
                + ", ".join(assignments)
                + (" REMOVE " + ", ".join(removals) if removals else ""),
                ConditionExpression=full_condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        record: BuildRecord = from_dynamo(response["Attributes"])
        return record
