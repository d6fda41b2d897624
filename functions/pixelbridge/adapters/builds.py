"""Build records in DynamoDB (``BuildsTable``).

Every status change is one conditional UpdateItem: the build moves only forward (see
``domain.statuses``), the timeline entry is appended in the same write, so no update is lost and
no build moves backwards even when S3, Step Functions and webhooks race.

Records stay far below DynamoDB's 400 KB whatever outside parties send: strings in fields are cut
at ``MAX_FIELD_STRING_CHARS``, timeline entries are bounded, and a timeline that grew past its
budget is summarised (``domain.timeline.compact_timeline``) by one more conditional write.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pixelbridge.adapters.build_queries import OPEN_ATTRIBUTE, OPEN_VALUE, RECORD_KIND, BuildQueries
from pixelbridge.adapters.dynamo_items import from_dynamo, to_dynamo
from pixelbridge.adapters.item_size import ensure_fits
from pixelbridge.domain.fetch_attempts import FETCH_LEASE_FIELD
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.statuses import BuildStatus, allowed_sources, is_terminal
from pixelbridge.domain.timeline import (
    Clock,
    bounded,
    compact_timeline,
    iso,
    needs_compaction,
    timeline_entry,
    utc_now,
)
from pixelbridge.ports import BuildPage, InvalidCursor

__all__ = ["BuildPage", "BuildRecord", "BuildRepository", "InvalidCursor", "from_dynamo", "to_dynamo"]


# Longer than any URL or reason PixelBridge writes itself (a presigned zip URL is ~1.5 KB).
MAX_FIELD_STRING_CHARS = 8192


def _bounded_strings(value: Any) -> Any:
    if isinstance(value, str):
        return bounded(value, MAX_FIELD_STRING_CHARS)
    if isinstance(value, dict):
        return {key: _bounded_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_bounded_strings(item) for item in value]
    return value


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class BuildRepository(BuildQueries):
    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = utc_now) -> None:
        self._table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)
        self._clock = clock

    def now_iso(self) -> str:
        return iso(self._clock())

    def create(self, record: BuildRecord, *, event: str, detail: str = "") -> bool:
        """Create the record if no build with this id exists yet; False when it already does."""
        now = self._clock()
        item = {
            **_bounded_strings(record),
            "kind": RECORD_KIND,
            "receivedAt": record.get("receivedAt", iso(now)),
            "updatedAt": iso(now),
            "timeline": [timeline_entry(now, event, detail, status=record["status"])],
        }
        if not is_terminal(record["status"]):
            item[OPEN_ATTRIBUTE] = OPEN_VALUE
        ensure_fits(item, what=f"build {record.get('buildId')}")
        try:
            self._table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(buildId)")
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

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
        # A build set to a terminal status leaves the reconciler's work list (the sparse open-index).
        ended = "status" in fields and is_terminal(str(fields["status"]))
        return self._update(
            build_id,
            fields,
            entry=None,
            condition=condition,
            condition_values=values,
            remove=[OPEN_ATTRIBUTE] if ended else None,
        )

    def remove_fields(self, build_id: str, names: list[str]) -> None:
        self._table.update_item(
            Key={"buildId": build_id},
            UpdateExpression="REMOVE " + ", ".join(f"#r{i}" for i in range(len(names))),
            ExpressionAttributeNames={f"#r{i}": name for i, name in enumerate(names)},
            ConditionExpression="attribute_exists(buildId)",
        )

    def hold_fetch_lease(
        self,
        build_id: str,
        holder: str,
        *,
        seconds: float,
        fields: dict[str, Any] | None = None,
        release: bool = False,
    ) -> BuildRecord | None:
        now = self._clock()
        lease = {"holder": holder, "expiresAt": iso(now + timedelta(seconds=seconds))}
        return self._update(
            build_id,
            {**(fields or {}), **({} if release else {FETCH_LEASE_FIELD: lease})},
            entry=None,
            condition="#status = :received AND (attribute_not_exists(#lease) OR #lease.#holder = :holder"
            " OR #lease.#expiresAt <= :now)",
            condition_values={":received": str(BuildStatus.RECEIVED), ":holder": holder},
            condition_names={"#lease": FETCH_LEASE_FIELD, "#holder": "holder", "#expiresAt": "expiresAt"},
            remove=[FETCH_LEASE_FIELD] if release else None,
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

    def reopen(
        self,
        build_id: str,
        *,
        expected: BuildStatus,
        to: BuildStatus,
        reason: str,
        fields: dict[str, Any] | None = None,
        remove: Sequence[str] = (),
        event: str = "operator retry",
    ) -> BuildRecord | None:
        """The one way out of a terminal status: an operator re-drives a failed or rejected build, or a
        signed pull takes over a push registration.

        Audited: the timeline gets an ``event`` entry naming both statuses and the reason.
        Conditional on the status the operator saw (``expected``), so it happens once; None otherwise.
        """
        if not is_terminal(expected) or is_terminal(to):
            raise ValueError(f"reopen moves a terminal build back into progress, not {expected} -> {to}")
        return self._update(
            build_id,
            {**(fields or {}), "status": str(to), OPEN_ATTRIBUTE: OPEN_VALUE},
            entry=(event, f"{expected} -> {to}: {reason}", str(to), None),
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

    def _update(
        self,
        build_id: str,
        fields: dict[str, Any],
        *,
        entry: tuple[str, str, str | None, dict[str, Any] | None] | None,
        condition: str | None = None,
        condition_values: dict[str, str] | None = None,
        condition_names: dict[str, str] | None = None,
        remove: list[str] | None = None,
    ) -> BuildRecord | None:
        now = self._clock()
        names = {"#status": "status", "#updatedAt": "updatedAt", **(condition_names or {})}
        values: dict[str, Any] = {":now": iso(now), **(condition_values or {})}
        assignments = ["#updatedAt = :now"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_dynamo(_bounded_strings(value))
            assignments.append(f"#f{i} = :f{i}")
        if entry is not None:
            event, detail, status, data = entry
            names["#timeline"] = "timeline"
            values[":entry"] = to_dynamo([timeline_entry(now, event, detail, status=status, data=data)])
            values[":empty"] = []
            assignments.append("#timeline = list_append(if_not_exists(#timeline, :empty), :entry)")
        removals = [f"#rm{i}" for i in range(len(remove or []))]
        names.update({f"#rm{i}": name for i, name in enumerate(remove or [])})
        # What this write adds; the guard on the whole item is on create (updates append small facts).
        ensure_fits({**fields, "timeline": values.get(":entry", [])}, what=f"update of build {build_id}")
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
        if needs_compaction(record.get("timeline") or []):
            record = self._compact_timeline(record)
        return record

    def _compact_timeline(self, record: BuildRecord) -> BuildRecord:
        """Replace the timeline by its summary, unless another writer appended meanwhile (then it
        stays as it is: the next write summarises it)."""
        timeline = record["timeline"]
        compacted = compact_timeline(timeline)
        try:
            self._table.update_item(
                Key={"buildId": record["buildId"]},
                UpdateExpression="SET #timeline = :compacted",
                ConditionExpression="size(#timeline) = :length",
                ExpressionAttributeNames={"#timeline": "timeline"},
                ExpressionAttributeValues={":compacted": to_dynamo(compacted), ":length": len(timeline)},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return record
            raise
        return {**record, "timeline": compacted}
