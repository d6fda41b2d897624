"""Re-distribute an earlier upload of a route: operator rollbacks and "never dark" both use this.

Statuses never move backwards, so a re-distribution does not change the status of the build that
owns the upload (a ``live`` build stays ``live``). Instead:

* the build gets a ``redistribution`` marker (kind, execution, reason) and a timeline entry;
  the release execution (stage ``distribute``) sees the marker and skips the "a newer build
  exists" check that would otherwise stop an older build;
* the workflow's ``finish`` records the outcome on the timeline, clears the marker and, when the
  upload is live again, sets ``liveSince``;
* the route's current live build is derived, not stored: the route build with the greatest
  ``liveSince`` (or ``liveAt`` for builds that went live once). One source of truth, no
  route item that could disagree with the builds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.release_runs import release_input
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import Clock, iso, utc_now
from pixelbridge.ports import BuildsPort, WorkflowPort

# Streampixel distributes uploads it has processed: archived (approved) or live ones.
REDISTRIBUTABLE = frozenset({BuildStatus.LIVE, BuildStatus.APPROVED})
# Facts of an earlier distribution that the new one must not be mistaken for.
STALE_DISTRIBUTION_FACTS = (
    "distributeRequestedAt",
    "distributionStartedAt",
    "liveApprovedAt",
    "rejectedAt",
    "waitToken",
    "waitingFor",
    "rateLimitedCount",
    "transientAttempts",
)
# A marker older than this belongs to an execution that ended without clearing it (stopped by hand).
MARKER_STALE_AFTER = timedelta(hours=7)


class RedistributionRefused(Exception):
    """The upload cannot be re-distributed now (wrong status, or one already running)."""


@dataclass(frozen=True)
class Redistribution:
    build_id: str
    upload_id: str
    execution: str


def live_since(record: BuildRecord) -> str:
    return str(record.get("liveSince") or record.get("liveAt") or "")


def live_history(records: Iterable[BuildRecord]) -> list[BuildRecord]:
    """The route's builds that have been live, most recently live first."""
    was_live = [r for r in records if r.get("uploadId") and live_since(r)]
    return sorted(was_live, key=live_since, reverse=True)


def execution_name(build_id: str, kind: str, moment: str) -> str:
    """``<buildId>-<kind>-<timestamp>``: Step Functions names allow [A-Za-z0-9-_] only."""
    stamp = "".join(ch for ch in moment if ch.isalnum())
    return f"{build_id}-{kind}-{stamp}"  # the workflow adapter bounds it to 80 characters, uniquely


class Redistributor:
    def __init__(self, *, builds: BuildsPort, workflow: WorkflowPort, clock: Clock = utc_now) -> None:
        self._builds = builds
        self._workflow = workflow
        self._clock = clock

    def current_live(self, route: str, *, excluding: str | None = None) -> BuildRecord | None:
        """The build whose upload was most recently made live on ``route`` (optionally not ``excluding``)."""
        history = [
            r for r in live_history(self._builds.all_builds_for_route(route)) if r["buildId"] != excluding
        ]
        return history[0] if history else None

    def previous_live(self, route: str) -> BuildRecord | None:
        """The live build before the current one: the default rollback target."""
        history = live_history(self._builds.all_builds_for_route(route))
        return history[1] if len(history) > 1 else None

    def start(self, target: BuildRecord, *, kind: str, reason: str) -> Redistribution:
        """Mark ``target`` and start a release execution at stage ``distribute`` for its uploadId."""
        build_id = str(target["buildId"])
        upload_id = str(target.get("uploadId") or "")
        if not upload_id:
            raise RedistributionRefused(f"build {build_id} has no Streampixel uploadId")
        now = self._clock()
        name = execution_name(build_id, kind, iso(now))
        marker = {
            "kind": kind,
            "execution": name,
            "uploadId": upload_id,
            "reason": reason,
            "requestedAt": iso(now),
        }
        marked = self._builds.begin_redistribution(
            build_id,
            marker,
            statuses=REDISTRIBUTABLE,
            stale_before=iso(now - MARKER_STALE_AFTER),
            event=f"{kind} requested",
            detail=f"re-distributing uploadId {upload_id}: {reason}",
            remove=STALE_DISTRIBUTION_FACTS,
        )
        if marked is None:
            raise RedistributionRefused(
                f"build {build_id} is not live or approved, or a re-distribution of it is already running"
            )
        try:
            self._workflow.start(name, release_input(build_id, "distribute"))
        except Exception:
            # Without an execution nobody would clear the marker: clear it now, then fail loudly.
            self._builds.remove_fields(build_id, ["redistribution"])
            raise
        return Redistribution(build_id=build_id, upload_id=upload_id, execution=name)
