"""The build record: one item per build in BuildsTable, read through these accessors.

The record stays a JSON-like mapping (DynamoDB item <-> dict) because the timeline, metadata and
release facts are written by several functions with conditional updates; the accessors below are
the one place that knows where each fact lives and what its default is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

BuildRecord = dict[str, Any]

ReleasePolicy = Literal["auto", "manual", "hold"]
DEFAULT_POLICY: ReleasePolicy = "auto"
DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class ReleaseTerms:
    """How a build is released, copied from its route when the build was registered (field ``release``).

    ``never_dark``: if a release fails after distribution started, the route's previous live upload
    is distributed again. Records written before the flag existed default to it for manual routes.
    """

    project_id: str | None
    policy: str
    account: str
    never_dark: bool


def release_terms(record: BuildRecord) -> ReleaseTerms:
    release = record.get("release") or {}
    policy = str(release.get("policy", DEFAULT_POLICY))
    return ReleaseTerms(
        project_id=release.get("streampixelProjectId"),
        policy=policy,
        account=str(release.get("account", DEFAULT_ACCOUNT)),
        never_dark=bool(release.get("neverDark", policy == "manual")),
    )


def release_policy(record: BuildRecord) -> str:
    """``auto`` (Streampixel releases), ``manual`` (PixelBridge distributes) or ``hold`` (an operator)."""
    return release_terms(record).policy
