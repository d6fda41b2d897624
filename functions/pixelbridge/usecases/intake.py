"""What the push and the pull path share: one registration per build, one answer shape, one JSON reader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pixelbridge.domain.errors import Invalid
from pixelbridge.domain.metadata import BuildMetadata
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.routes import Route, decide_route
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import BuildsPort


@dataclass(frozen=True)
class Receipt:
    """What an ingest answers the sender.

    ``taken_in`` is true when this delivery registered the build (or restarted its stalled fetch), so
    work on it starts now; false when it only reports what PixelBridge already knew or ignores it.
    """

    body: dict[str, Any]
    taken_in: bool


def describe_validation_error(error: ValidationError) -> str:
    """A short human sentence naming the bad fields (never the values: they may be huge or hostile)."""
    problems = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item["loc"]) or "metadata"
        problems.append(f"{location}: {item['msg']}")
    return "; ".join(problems)


def parse_json_object(raw: bytes, *, error: str, what: str) -> dict[str, Any]:
    """A JSON object from request bytes, or Invalid with ``error`` naming ``what`` was wrong."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, > 4300-digit integers; deep nesting
        raise Invalid(error, f"{what} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise Invalid(error, f"{what} must be a JSON object")
    return document


def parse_metadata(raw: bytes) -> BuildMetadata:
    document = parse_json_object(raw, error="invalid_metadata", what="the 'metadata' part")
    try:
        return BuildMetadata.model_validate(document)
    except ValidationError as exc:
        raise Invalid("invalid_metadata", f"invalid metadata: {describe_validation_error(exc)}") from exc


def route_fields(route: Route) -> dict[str, Any]:
    return {
        "route": route.id,
        "release": {
            "streampixelProjectId": route.streampixel_project_id,
            "policy": route.policy,
            "account": route.account,
            "neverDark": route.keeps_live,
        },
    }


@dataclass(frozen=True)
class Registration:
    record: BuildRecord
    created: bool
    skip_reason: str | None = None


def register_build(
    builds: BuildsPort, metadata: BuildMetadata, routes: list[Route], *, source: str, detail: str
) -> Registration:
    """Create the build record once, whichever way (push or pull) the build arrives first.

    A build that already exists is not registered again (one build, one deploy); the repeat
    arrival is recorded on its timeline instead. Unrouted and non-Windows builds end ``skipped``.
    """
    build_id = metadata.build_id
    decision = decide_route(metadata, routes)
    record: BuildRecord = {
        "buildId": build_id,
        "status": str(BuildStatus.RECEIVED),
        "source": source,
        "sources": [source],
        "metadata": metadata.to_record(),
        "route": decision.route.id if decision.route else "-",
    }
    if decision.route:
        record.update(route_fields(decision.route))
    if not builds.create(record, event="received", detail=detail):
        existing = builds.record_event(
            build_id, f"{source} arrival", f"already known; not deployed again ({detail})"
        )
        return Registration(existing or builds.get(build_id) or record, created=False)
    if decision.skip_reason:
        return skip_registered(builds, record, decision.skip_reason)
    return Registration(record, created=True)


def skip_registered(builds: BuildsPort, record: BuildRecord, reason: str) -> Registration:
    """A new build that will not be deployed (unrouted, not Windows) ends ``skipped`` with the reason."""
    skipped = builds.transition(
        record["buildId"], BuildStatus.SKIPPED, event="skipped", detail=reason, fields={"error": reason}
    )
    return Registration(skipped or record, created=True, skip_reason=reason)
