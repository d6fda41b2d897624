"""Which builds of a route compete with each other: the newest build of a route wins."""

from __future__ import annotations

from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.statuses import BuildStatus, is_terminal

# Builds that no longer compete for a route: a failed newer build must not supersede a good older one.
NOT_COMPETING = {BuildStatus.FAILED, BuildStatus.SKIPPED, BuildStatus.REJECTED, BuildStatus.SUPERSEDED}


def competitors(record: BuildRecord, route_builds: list[BuildRecord], *, newer: bool) -> list[BuildRecord]:
    """The builds of the same route that arrived after ``record`` (``newer``) or before it and are
    still in progress; builds that failed, were skipped, rejected or superseded never compete."""
    mine = str(record.get("receivedAt", ""))
    others = []
    for other in route_builds:
        if other["buildId"] == record["buildId"] or BuildStatus(other["status"]) in NOT_COMPETING:
            continue
        arrived = str(other.get("receivedAt", ""))
        if newer and arrived > mine:
            others.append(other)
        if not newer and arrived < mine and not is_terminal(other["status"]):
            others.append(other)
    return others
