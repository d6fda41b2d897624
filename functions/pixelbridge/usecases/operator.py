"""The operator API: list and inspect builds, release held builds, retry, roll back, check the wiring.

Statuses (docs/ARCHITECTURE.md, Build record: every transition is conditional, no backwards moves):

* **release** (``hold`` build at ``approved``): an ordinary forward run, approved → distributing → live,
  in execution ``<buildId>-release-1`` at stage ``distribute``. One release per build (a failed one
  is re-driven with retry).
* **retry** (``failed``/``rejected`` only): the single audited exception to "terminal is final".
  ``BuildRepository.reopen`` moves the build back to the status of its last good stage, conditional
  on the terminal status the operator saw, with an ``operator retry`` timeline entry; then it runs
  forward again in ``<buildId>-retry-<n>``:

  - Streampixel approved the upload and distribution failed → ``approved``, stage ``distribute``;
  - the converted zip is still in the handoff bucket → ``converted``, stage ``upload`` (a new upload:
    a rejected uploadId can never be distributed; the old one is kept in ``previousUploadIds``);
  - otherwise, the inbox artifact is still there → ``stored`` and ConvertFunction re-converts it
    (async invoke: a conversion can take 15 minutes; this API answers in seconds);
  - otherwise, a pull (e.g. its download was stopped on every attempt) → ``received`` and
    FetchFunction downloads it again through BuildPixel's download API (async invoke).

  Anything else (live, superseded, skipped, still running, nothing left to re-drive) is a Conflict.
* **rollback**: re-distributes an earlier upload of the route through the same slot queue without
  moving any status (see ``usecases.redistribute``): a ``live`` build stays ``live``; the timeline
  and ``liveSince`` say which upload the route streams now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pixelbridge.domain.competition import competitors
from pixelbridge.domain.errors import Conflict, Invalid, NotFound, PixelBridgeError
from pixelbridge.domain.records import BuildRecord, release_policy
from pixelbridge.domain.release_runs import release_input
from pixelbridge.domain.routes import Route
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import Clock, iso, parse_iso, utc_now
from pixelbridge.ports import (
    BuildsPort,
    ConvertStarter,
    CredentialsFor,
    FetchStarter,
    InvalidCursor,
    ObjectExists,
    StreampixelPort,
    WorkflowPort,
)
from pixelbridge.usecases.build_views import operator_view, uploader_view
from pixelbridge.usecases.redistribute import RedistributionRefused, Redistributor, live_history, live_since

MAX_PAGE = 100
RETRYABLE = frozenset({BuildStatus.FAILED, BuildStatus.REJECTED})
# Fields of the failed attempt that the next attempt must not read as its own facts.
_ATTEMPT_FACTS = (
    "error",
    "objection",
    "rejectedAt",
    "waitToken",
    "waitingFor",
    "rateLimitedCount",
    "transientAttempts",
    "callInFlight",  # an interrupted call of the failed attempt, and how often calls were interrupted
    "interruptedCalls",
    "distributeOutcomeUnknownAt",
    "distributeRequestedAt",
    "distributionStartedAt",
    "liveApprovedAt",
    "lastStreampixelEvent",
    "releaseRequestedAt",  # a retried held build can be released again
    "releaseExecution",
)
_UPLOAD_FACTS = ("uploadId", "uploadedAt", "approvedAt")
# A URL stored by earlier versions: in presigned mode it was signed by a session long gone. Nothing reads
# it now (the upload task makes the URL per call from zipKey); a retry drops it.
_STORED_URL = ("zipUrl",)
_CONVERSION_FACTS = ("zipKey", "handoffToken", "manifest", "zipDeletedAt", "convertAttempts", *_STORED_URL)
SUMMARY_FIELDS = (
    "buildId",
    "status",
    "route",
    "source",
    "receivedAt",
    "updatedAt",
    "uploadId",
    "liveSince",
    "error",
    "objection",
)


def not_found(what: str) -> NotFound:
    return NotFound("not_found", f"{what} does not exist")


def conflict(message: str) -> Conflict:
    return Conflict("conflict", message)


def rollback_target(raw: bytes) -> str | None:
    """The ``uploadId`` of an optional ``{"uploadId": "..."}`` rollback body (None: the previous live one)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("invalid_request", 'the body must be JSON: {"uploadId": "..."}') from exc
    upload_id = document.get("uploadId") if isinstance(document, dict) else None
    if upload_id is not None and (not isinstance(upload_id, str) or not 0 < len(upload_id) <= 128):
        raise Invalid("invalid_request", "uploadId must be a non-empty string")
    return upload_id


def summary(record: BuildRecord) -> dict[str, Any]:
    view = {key: record[key] for key in SUMMARY_FIELDS if key in record}
    metadata = record.get("metadata") or {}
    view["project"] = metadata.get("projectId")
    view["branch"] = metadata.get("branch")
    return view


@dataclass(frozen=True)
class RetryPlan:
    stage: str  # "distribute" | "upload" | "convert" | "fetch"
    to: BuildStatus
    remove: tuple[str, ...]
    why: str


class OperatorApi:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        workflow: WorkflowPort,
        routes: list[Route],
        object_exists: ObjectExists,
        artifact_bucket: str,
        handoff_bucket: str,
        convert_starter: ConvertStarter,
        fetch_starter: FetchStarter,
        streampixel: StreampixelPort,
        credentials: CredentialsFor,
        clock: Clock = utc_now,
    ) -> None:
        self._fetch = fetch_starter
        self._builds = builds
        self._workflow = workflow
        self._routes = {route.id: route for route in routes}
        self._exists = object_exists
        self._artifact_bucket = artifact_bucket
        self._handoff_bucket = handoff_bucket
        self._convert = convert_starter
        self._streampixel = streampixel
        self._credentials = credentials
        self._redistributor = Redistributor(builds=builds, workflow=workflow, clock=clock)

    # -- reading ---------------------------------------------------------------------------------
    def list_builds(
        self,
        *,
        route: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid("invalid_request", f"limit must be between 1 and {MAX_PAGE}")
        if status is not None and status not in {str(s) for s in BuildStatus}:
            raise Invalid("invalid_request", f"unknown status {status[:40]!r}")
        since_iso = None
        if since:
            try:
                since_iso = iso(parse_iso(since))
            except (ValueError, OverflowError) as exc:
                raise Invalid("invalid_request", "since must be an ISO-8601 time") from exc
        try:
            page = self._builds.list_builds(
                route=route or None, status=status, since=since_iso, limit=limit, cursor=cursor or None
            )
        except InvalidCursor as exc:
            raise Invalid("invalid_cursor", str(exc)) from exc
        return {"builds": [summary(record) for record in page.records], "next": page.cursor}

    def get_build(self, build_id: str) -> dict[str, Any]:
        return operator_view(self._record(build_id))

    def build_status(self, build_id: str) -> dict[str, Any]:
        """What BuildPixel's upload token may read (its ``statusUrl``): status, times, reasons."""
        return uploader_view(self._record(build_id))

    # -- release a held build --------------------------------------------------------------------
    def release(self, build_id: str) -> dict[str, Any]:
        record = self._record(build_id)
        policy = release_policy(record)
        if record["status"] != BuildStatus.APPROVED or policy != "hold":
            reason = f": {record['error']}" if record.get("error") else ""
            raise conflict(
                f"only an approved build of a hold route is released; this one is {record['status']}{reason}"
            )
        if record.get("releaseRequestedAt"):
            raise conflict("this build's release was already started")
        newer = self._newer_on_route(record)
        if newer:
            raise conflict(
                f"build {newer} is newer on route {record.get('route')}: releasing this one would be "
                "superseded at once; release the newer build or roll back instead"
            )
        # One name per attempt: Step Functions answers a concurrent duplicate start with the same execution.
        name = f"{build_id}-release-{int(record.get('retryCount', 0)) + 1}"
        marked = self._builds.set_fields(
            build_id,
            {"releaseRequestedAt": self._builds.now_iso(), "releaseExecution": name},
            only_if_status_in={BuildStatus.APPROVED},
        )
        if marked is None:
            raise conflict("the build changed; read it again")
        self._workflow.start(name, release_input(build_id, "distribute"))
        self._builds.record_event(build_id, "release requested", f"operator release (execution {name})")
        return {"buildId": build_id, "status": "approved", "action": "release", "execution": name}

    def _newer_on_route(self, record: BuildRecord) -> str | None:
        route = record.get("route")
        if not route or route == "-":
            return None
        newer = competitors(record, self._builds.builds_for_route(str(route), limit=25), newer=True)
        return str(newer[0]["buildId"]) if newer else None

    # -- retry -----------------------------------------------------------------------------------
    def retry(self, build_id: str) -> dict[str, Any]:
        record = self._record(build_id)
        status = BuildStatus(record["status"])
        if status not in RETRYABLE:
            raise conflict(f"build is {status}; only failed or rejected builds are retried")
        plan = self._retry_plan(record)
        retries = int(record.get("retryCount", 0)) + 1
        fields: dict[str, Any] = {"retryCount": retries}
        if "uploadId" in plan.remove and record.get("uploadId"):
            fields["previousUploadIds"] = [*record.get("previousUploadIds", []), record["uploadId"]]
        if plan.stage == "convert":
            fields["convertAttempts"] = 0
        if plan.stage == "fetch":  # a new window for the reconciler's stalled-download rule
            fields["fetchRequestedAt"] = self._builds.now_iso()
        reopened = self._builds.reopen(
            build_id,
            expected=status,
            to=plan.to,
            reason=plan.why,
            fields=fields,
            remove=[name for name in plan.remove if name not in fields],
        )
        if reopened is None:
            raise conflict("the build changed while retrying; read it again")
        execution = f"{build_id}-retry-{retries}"
        if plan.stage == "convert":
            self._convert.start(build_id, str(record["artifactKey"]), retries)
        elif plan.stage == "fetch":
            self._fetch.start(build_id)  # the download API signs a fresh URL
        else:
            self._workflow.start(execution, release_input(build_id, plan.stage))
        return {
            "buildId": build_id,
            "status": str(plan.to),
            "action": f"retry:{plan.stage}",
            "execution": execution,
        }

    def _retry_plan(self, record: BuildRecord) -> RetryPlan:
        approved = record.get("uploadId") and record.get("approvedAt") and not record.get("rejectedAt")
        if record["status"] == BuildStatus.FAILED and approved:
            return RetryPlan(
                "distribute",
                BuildStatus.APPROVED,
                _ATTEMPT_FACTS,
                "Streampixel has the build; distribute again",
            )
        zip_key = record.get("zipKey")
        if zip_key and not record.get("zipDeletedAt") and self._exists(self._handoff_bucket, str(zip_key)):
            return RetryPlan(
                "upload",
                BuildStatus.CONVERTED,
                _ATTEMPT_FACTS + _UPLOAD_FACTS + _STORED_URL,
                "the zip is still there; upload again",
            )
        artifact = record.get("artifactKey")
        if artifact and self._exists(self._artifact_bucket, str(artifact)):
            return RetryPlan(
                "convert",
                BuildStatus.STORED,
                _ATTEMPT_FACTS + _UPLOAD_FACTS + _CONVERSION_FACTS,
                "the artifact is still in the inbox; convert again",
            )
        if record.get("source") == "pull":
            return RetryPlan(
                "fetch",
                BuildStatus.RECEIVED,
                _ATTEMPT_FACTS + _UPLOAD_FACTS + _CONVERSION_FACTS + ("artifactKey", "artifactBytes"),
                "the artifact never reached the inbox (or is gone); download it again from BuildPixel",
            )
        raise conflict("neither the zip nor the artifact is left to re-drive from; push the build again")

    # -- rollback --------------------------------------------------------------------------------
    def rollback(self, route_id: str, upload_id: str | None) -> dict[str, Any]:
        if route_id not in self._routes:
            raise not_found(f"route {route_id[:64]!r}")
        builds = self._builds.all_builds_for_route(route_id)
        history = live_history(builds)
        current = history[0] if history else None
        if upload_id:
            target = next((b for b in builds if b.get("uploadId") == upload_id), None)
            if target is None:
                raise not_found(f"uploadId {upload_id[:64]!r} on route {route_id}")
        else:
            if len(history) < 2:
                raise conflict(f"route {route_id} has no earlier live build to roll back to")
            target = history[1]
        if (
            current is not None
            and current["buildId"] == target["buildId"]
            and not target.get("redistribution")
        ):
            raise conflict(f"build {target['buildId']} is already the live build of route {route_id}")
        reason = f"operator rollback of route {route_id}"
        if current is not None:
            reason += f" from build {current['buildId']} (uploadId {current.get('uploadId')})"
        try:
            started = self._redistributor.start(target, kind="rollback", reason=reason)
        except RedistributionRefused as refused:
            raise conflict(str(refused)) from refused
        if current is not None and current["buildId"] != target["buildId"]:
            self._builds.record_event(
                current["buildId"],
                "rollback requested",
                f"route {route_id} goes back to build {target['buildId']} (uploadId {started.upload_id})",
            )
        return {
            "route": route_id,
            "buildId": started.build_id,
            "uploadId": started.upload_id,
            "execution": started.execution,
            "from": current["buildId"] if current else None,
            "liveSince": live_since(target) or None,
        }

    # -- doctor ----------------------------------------------------------------------------------
    def test_webhooks(self) -> dict[str, Any]:
        """Streampixel's test-webhook for each route's project: does Streampixel reach the bridge?"""
        results = []
        seen: set[tuple[str, str]] = set()
        for route in self._routes.values():
            key = (route.account, route.streampixel_project_id)
            if key in seen:
                continue
            seen.add(key)
            results.append(self._test_webhook(route))
        return {"ok": all(result["success"] for result in results), "results": results}

    def _test_webhook(self, route: Route) -> dict[str, Any]:
        result: dict[str, Any] = {"route": route.id, "projectId": route.streampixel_project_id}
        try:
            answer = self._streampixel.test_webhook(
                self._credentials(route.account), route.streampixel_project_id
            )
        except PixelBridgeError as error:  # an unfilled secret included; messages never carry the apiKey
            return {**result, "success": False, "statusCode": 0, "message": str(error)}
        return {
            **result,
            "success": answer.success,
            "statusCode": answer.status_code,
            "message": answer.message,
        }

    # -- helpers ---------------------------------------------------------------------------------
    def _record(self, build_id: str) -> BuildRecord:
        record = self._builds.get(build_id)
        if record is None:
            raise not_found(f"build {build_id[:128]!r}")
        return record
