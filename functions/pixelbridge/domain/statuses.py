"""Build statuses and the rule that a build only ever moves forward."""

from __future__ import annotations

from enum import StrEnum


class BuildStatus(StrEnum):
    RECEIVED = "received"
    STORED = "stored"
    CONVERTING = "converting"
    CONVERTED = "converted"
    QUEUED = "queued"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    APPROVED = "approved"
    DISTRIBUTING = "distributing"
    LIVE = "live"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"


PROGRESS_ORDER: tuple[BuildStatus, ...] = (
    BuildStatus.RECEIVED,
    BuildStatus.STORED,
    BuildStatus.CONVERTING,
    BuildStatus.CONVERTED,
    BuildStatus.QUEUED,
    BuildStatus.UPLOADING,
    BuildStatus.PROCESSING,
    BuildStatus.APPROVED,
    BuildStatus.DISTRIBUTING,
)

TERMINAL: frozenset[BuildStatus] = frozenset(
    {BuildStatus.LIVE, BuildStatus.REJECTED, BuildStatus.FAILED, BuildStatus.SKIPPED, BuildStatus.SUPERSEDED}
)


def is_terminal(status: BuildStatus | str) -> bool:
    return BuildStatus(status) in TERMINAL


def allowed_sources(target: BuildStatus | str) -> frozenset[BuildStatus]:
    """The statuses a build may be in when it moves to ``target``.

    Progress statuses move strictly forward; a terminal status can be reached from any
    non-terminal one; nothing leaves a terminal status.
    """
    target = BuildStatus(target)
    if target in TERMINAL:
        return frozenset(PROGRESS_ORDER)
    return frozenset(PROGRESS_ORDER[: PROGRESS_ORDER.index(target)])
