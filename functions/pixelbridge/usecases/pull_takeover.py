"""A signed pull is not blocked by a push registration whose metadata differs (buildId squatting).

The upload token only proves "may push"; a signed ``build.complete`` speaks for BuildPixel itself. When
it names a build id that a push registered with different identifying metadata, and Streampixel has
not been given that push, the push is stopped and the pull takes the record over, on the timeline.
FetchFunction still fetches only what BuildPixel's download API confirms (or the build fails).
"""

from __future__ import annotations

from pixelbridge.domain.metadata import BuildMetadata
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.routes import Route, decide_route
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import BuildsPort
from pixelbridge.usecases.intake import Registration, route_fields, skip_registered

# The fields BuildPixel's push and webhook both carry, which name the build it is.
IDENTITY = ("projectId", "platform", "buildType", "branch", "commit")
# A build may still be stopped while Streampixel has not been asked to take it.
NOT_YET_UPLOADED = frozenset(
    {
        BuildStatus.RECEIVED,
        BuildStatus.STORED,
        BuildStatus.CONVERTING,
        BuildStatus.CONVERTED,
        BuildStatus.QUEUED,
    }
)
ENDED_BEFORE_UPLOAD = frozenset({BuildStatus.SKIPPED, BuildStatus.FAILED, BuildStatus.SUPERSEDED})
# What the push registration learnt about its own artifact: none of it describes the pulled one.
PUSH_FACTS = (
    "route",
    "release",
    "error",
    "reason",
    "artifactKey",
    "artifactBytes",
    "convertAttempts",
    "zipKey",
    "zipUrl",
    "handoffToken",
    "manifest",
    "zipDeletedAt",
    "fetchRequestedAt",
    "waitToken",
    "waitingFor",
    "stuck",
    "stuckAt",
    "stuckReason",
)


def identity_differences(record: BuildRecord, metadata: BuildMetadata) -> list[str]:
    """The identifying fields the signed metadata states and the push registration does not match."""
    pushed = record.get("metadata") or {}
    signed = metadata.to_record()
    return [name for name in IDENTITY if signed.get(name) is not None and pushed.get(name) != signed[name]]


class PullTakeover:
    def __init__(self, *, builds: BuildsPort, routes: list[Route]) -> None:
        self._builds = builds
        self._routes = routes

    def __call__(self, record: BuildRecord, metadata: BuildMetadata) -> Registration | None:
        """The pull's registration of ``record``, or None when the existing registration stands."""
        if record.get("source") != "push" or "pull" in record.get("sources", []):
            return None
        differences = identity_differences(record, metadata)
        if not differences:
            return None
        build_id = metadata.build_id
        detail = f"a signed BuildPixel build.complete differs from the push in {', '.join(differences)}"
        status = BuildStatus(record["status"])
        if record.get("uploadId") or status not in NOT_YET_UPLOADED | ENDED_BEFORE_UPLOAD:
            self._builds.record_event(
                build_id, "pull not taken over", f"{detail}; Streampixel already has the pushed build"
            )
            return None
        if status in NOT_YET_UPLOADED:
            stopped = self._builds.set_fields(
                build_id,
                {"status": str(BuildStatus.SUPERSEDED), "error": f"stopped: {detail}"},
                only_if_status_in=set(NOT_YET_UPLOADED),
            )
            if stopped is None:
                self._builds.record_event(build_id, "pull not taken over", f"{detail}; the push moved on")
                return None
            self._builds.record_event(build_id, "push stopped", detail)
            status = BuildStatus.SUPERSEDED
        return self._take_over(record, metadata, status, detail)

    def _take_over(
        self, record: BuildRecord, metadata: BuildMetadata, status: BuildStatus, detail: str
    ) -> Registration | None:
        build_id = metadata.build_id
        decision = decide_route(metadata, self._routes)
        fields = {
            "source": "pull",
            "sources": [*record.get("sources", ["push"]), "pull"],
            "metadata": metadata.to_record(),
            "route": decision.route.id if decision.route else "-",
            **(route_fields(decision.route) if decision.route else {}),
        }
        if record.get("zipKey"):  # a release execution may exist under the first name: take the next one
            fields["retryCount"] = int(record.get("retryCount", 0)) + 1
        taken = self._builds.reopen(
            build_id,
            expected=status,
            to=BuildStatus.RECEIVED,
            reason=detail,
            fields=fields,
            remove=[name for name in PUSH_FACTS if name in record and name not in fields],
            event="pull took over",
        )
        if taken is None:
            return None
        if not decision.skip_reason:
            return Registration(taken, created=True)
        return skip_registered(self._builds, taken, decision.skip_reason)
