"""In-memory fakes of the ports (``pixelbridge.ports``), for fast use-case tests without moto.

They follow the same rules as the real adapters where a use case can tell the difference:
conditional status moves (forward only, nothing leaves a terminal status), one timeline entry per
write, ``None`` when a condition fails. They satisfy the protocols structurally: no ``type: ignore``.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from pixelbridge.domain.fetch_attempts import FETCH_LEASE_FIELD
from pixelbridge.domain.inbox import push_key
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.statuses import BuildStatus, allowed_sources, is_terminal
from pixelbridge.domain.timeline import iso, timeline_entry, utc_now
from pixelbridge.ports import BuildPage, HandoffLocation

Entry = tuple[str, str, "str | None", "dict[str, Any] | None"]


class InMemoryBuilds:
    """``BuildsPort`` over a dict. Records handed out are copies, as a database read would be."""

    def __init__(self, *records: BuildRecord, clock: Callable[[], datetime] = utc_now) -> None:
        self.records: dict[str, BuildRecord] = {
            record["buildId"]: copy.deepcopy(record) for record in records
        }
        self._clock = clock

    def now_iso(self) -> str:
        return iso(self._clock())

    def create(self, record: BuildRecord, *, event: str, detail: str = "") -> bool:
        if record["buildId"] in self.records:
            return False
        now = self._clock()
        self.records[record["buildId"]] = {
            **copy.deepcopy(record),
            "receivedAt": record.get("receivedAt", iso(now)),
            "updatedAt": iso(now),
            "timeline": [timeline_entry(now, event, detail, status=record["status"])],
        }
        return True

    def get(self, build_id: str) -> BuildRecord | None:
        record = self.records.get(build_id)
        return copy.deepcopy(record) if record is not None else None

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
        sources = {str(status) for status in allowed_sources(to)} | ({str(to)} if allow_same else set())
        return self._update(
            build_id,
            {**(fields or {}), "status": str(to)},
            entry=(event, detail, str(to), data),
            allowed=lambda record: record["status"] in sources,
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
        return self._update(build_id, fields or {}, entry=(event, detail, None, data))

    def set_fields(
        self, build_id: str, fields: dict[str, Any], *, only_if_status_in: set[BuildStatus] | None = None
    ) -> BuildRecord | None:
        statuses = {str(status) for status in only_if_status_in or ()}
        return self._update(
            build_id, fields, entry=None, allowed=lambda record: not statuses or record["status"] in statuses
        )

    def remove_fields(self, build_id: str, names: list[str]) -> None:
        for name in names:
            self.records[build_id].pop(name, None)

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

        def free(record: BuildRecord) -> bool:
            held = record.get(FETCH_LEASE_FIELD)
            return record["status"] == BuildStatus.RECEIVED and (
                not held or held["holder"] == holder or held["expiresAt"] <= iso(now)
            )

        return self._update(
            build_id,
            {**(fields or {}), **({} if release else {FETCH_LEASE_FIELD: lease})},
            entry=None,
            allowed=free,
            remove=[FETCH_LEASE_FIELD] if release else (),
        )

    def clear_wait_token(self, build_id: str, token: str) -> bool:
        record = self.records.get(build_id)
        if record is None or record.get("waitToken") != token:
            return False
        record.pop("waitToken")
        record.pop("waitingFor", None)
        return True

    def mark_stuck(self, build_id: str, reason: str) -> BuildRecord | None:
        return self._update(
            build_id,
            {"stuck": True, "stuckAt": self.now_iso(), "stuckReason": reason},
            entry=("stuck", reason, None, None),
            allowed=lambda record: not record.get("stuck") and not is_terminal(record["status"]),
        )

    def open_builds(self, *, updated_before: str, limit: int = 200) -> list[BuildRecord]:
        open_ones = [
            record
            for record in self.records.values()
            if not is_terminal(record["status"]) and record.get("updatedAt", "") < updated_before
        ]
        return copy.deepcopy(sorted(open_ones, key=lambda record: record.get("updatedAt", ""))[:limit])

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
        return self._update(
            build_id,
            {**(fields or {}), "status": str(to)},
            entry=(event, f"{expected} -> {to}: {reason}", str(to), None),
            allowed=lambda record: record["status"] == str(expected),
            remove=remove,
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
        allowed_statuses = {str(status) for status in statuses}

        def free(record: BuildRecord) -> bool:
            current = record.get("redistribution")
            return record["status"] in allowed_statuses and (
                current is None or current.get("requestedAt", "") < stale_before
            )

        return self._update(
            build_id,
            {"redistribution": redistribution},
            entry=(event, detail, None, None),
            allowed=free,
            remove=remove,
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
        matching = [
            record
            for record in self.records.values()
            if (route is None or record.get("route") == route)
            and (status is None or record["status"] == status)
            and (since is None or record.get("receivedAt", "") >= since)
        ]
        newest_first = sorted(matching, key=lambda record: record.get("receivedAt", ""), reverse=True)
        start = int(cursor or 0)
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        return BuildPage(copy.deepcopy(page), str(start + limit) if more else None)

    def all_builds_for_route(self, route_id: str) -> list[BuildRecord]:
        return self.list_builds(route=route_id, limit=len(self.records) or 1).records

    def find_by_upload_id(self, upload_id: str) -> BuildRecord | None:
        return self._first(lambda record: record.get("uploadId") == upload_id)

    def find_by_handoff_token(self, token: str) -> BuildRecord | None:
        return self._first(lambda record: record.get("handoffToken") == token)

    def builds_for_route(
        self, route_id: str, *, newest_first: bool = True, limit: int = 25
    ) -> list[BuildRecord]:
        ordered = sorted(
            (record for record in self.records.values() if record.get("route") == route_id),
            key=lambda record: record.get("receivedAt", ""),
            reverse=newest_first,
        )
        return copy.deepcopy(ordered[:limit])

    def _first(self, matches: Callable[[BuildRecord], bool]) -> BuildRecord | None:
        return next((copy.deepcopy(record) for record in self.records.values() if matches(record)), None)

    def _update(
        self,
        build_id: str,
        fields: dict[str, Any],
        *,
        entry: Entry | None,
        allowed: Callable[[BuildRecord], bool] = lambda record: True,
        remove: Sequence[str] = (),
    ) -> BuildRecord | None:
        record = self.records.get(build_id)
        if record is None or not allowed(record):
            return None
        now = self._clock()
        record.update(copy.deepcopy(fields), updatedAt=iso(now))
        for name in remove:
            record.pop(name, None)
        if entry is not None:
            event, detail, status, data = entry
            record.setdefault("timeline", []).append(
                timeline_entry(now, event, detail, status=status, data=data)
            )
        return copy.deepcopy(record)


class RecordingWorkflow:
    """``WorkflowPort``: records starts and task-token answers; ``alive`` says whether tokens still wait."""

    def __init__(self, *, execution: dict[str, str] | None = None, alive: bool = True) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.answers: list[tuple[str, str, Any]] = []
        self._execution = execution
        self._alive = alive

    @property
    def configured(self) -> bool:
        return True

    def start(self, execution_name: str, payload: dict[str, Any]) -> bool:
        if any(name == execution_name for name, _ in self.started):
            return False
        self.started.append((execution_name, payload))
        return True

    def execution(self, execution_name: str) -> dict[str, str] | None:
        return self._execution

    def resume(self, token: str, output: dict[str, Any]) -> bool:
        self.answers.append(("success", token, output))
        return self._alive

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.answers.append(("failure", token, (error, cause)))
        return self._alive


class RecordingHandoff:
    """``HandoffPort``: hands out predictable locations and records deletions."""

    def __init__(self, base_url: str = "https://downloads.example.test") -> None:
        self.base_url = base_url
        self.deleted: list[str] = []

    def new_location(self, build_id: str) -> HandoffLocation:
        token = f"{build_id:t<32}"[:64]
        return HandoffLocation(token=token, key=f"dl/{token}/{build_id}.zip")

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def delete(self, key: str) -> None:
        self.deleted.append(key)


class MemoryInbox:
    """``InboxPort`` over a dict; ``fail_next`` makes the next store raise (storage outage)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.fail_next = False

    def put_push_body(self, build_id: str, body: bytes, content_type: str) -> str:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("S3 is unavailable")
        key = push_key(build_id)
        self.objects[key] = (body, content_type)
        return key

    def open(self, key: str) -> tuple[Any, int, str]:
        body, content_type = self.objects[key]
        return io.BytesIO(body), len(body), content_type
