"""Routes: which BuildPixel builds go to which Streampixel project, and how they are released."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pixelbridge.domain.metadata import BuildMetadata

WINDOWS_PLATFORM = "Win64"
ANY = "*"

ReleasePolicy = Literal["auto", "manual", "hold"]


class Route(BaseModel):
    """Maps BuildPixel (project, branch, build type) to a Streampixel project and a release policy.

    ``auto``: upload with autoRelease=true, Streampixel releases it.
    ``manual``: upload with autoRelease=false, PixelBridge distributes it after approval.
    ``hold``: upload with autoRelease=false and stop at ``approved`` until an operator releases it.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    buildpixel_project_id: str = Field(default=ANY, alias="buildpixelProjectId", min_length=1)
    branch: str = Field(default=ANY, min_length=1)
    build_type: str = Field(default=ANY, alias="buildType", min_length=1)
    streampixel_project_id: str = Field(alias="streampixelProjectId", min_length=1)
    policy: ReleasePolicy = "auto"
    # Which credentials in the Streampixel secret to use ("default" = the top-level userId/apiKey).
    account: str = Field(default="default", min_length=1)
    # "Never dark": if a new release is rejected after distribution started, re-distribute the
    # route's previous live build. None = the default for the policy (on for manual routes only).
    never_dark: bool | None = Field(default=None, alias="neverDark")

    @property
    def keeps_live(self) -> bool:
        return self.policy == "manual" if self.never_dark is None else self.never_dark

    def matches(self, metadata: BuildMetadata) -> bool:
        return (
            _field_matches(self.buildpixel_project_id, metadata.project_id)
            and _field_matches(self.branch, metadata.branch)
            and _field_matches(self.build_type, metadata.build_type)
        )


def _field_matches(pattern: str, value: str | None) -> bool:
    return pattern in (ANY, value)


class RoutesConfigError(ValueError):
    """The Routes parameter is not valid JSON or not a list of routes."""


_ROUTE_LIST = TypeAdapter(list[Route])


def load_routes(routes_json: str, *, default_project_id: str, default_policy: ReleasePolicy) -> list[Route]:
    """Routes from the template's ``Routes`` parameter, or the one default route when it is empty.

    The default sends every BuildPixel project to one Streampixel project, which is what a studio
    with one game expects without writing any JSON.
    """
    if not routes_json.strip():
        if not default_project_id:
            raise RoutesConfigError("no Routes configured and no default Streampixel project id")
        return [
            Route.model_validate(
                {"id": "default", "streampixelProjectId": default_project_id, "policy": default_policy}
            )
        ]
    try:
        routes = _ROUTE_LIST.validate_python(json.loads(routes_json))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise RoutesConfigError(f"Routes parameter is invalid: {exc}") from exc
    ids = [route.id for route in routes]
    if len(set(ids)) != len(ids):
        raise RoutesConfigError("Routes parameter has duplicate route ids")
    if not routes:
        raise RoutesConfigError("Routes parameter is an empty list")
    return routes


@dataclass(frozen=True)
class RouteDecision:
    route: Route | None
    skip_reason: str | None

    @property
    def skipped(self) -> bool:
        return self.route is None


def decide_route(metadata: BuildMetadata, routes: list[Route]) -> RouteDecision:
    """The first matching route, or why the build is skipped (not Windows, or nothing matches)."""
    if metadata.platform != WINDOWS_PLATFORM:
        return RouteDecision(
            None,
            f"platform {metadata.platform!r} is not {WINDOWS_PLATFORM}; "
            "Streampixel hosts Windows builds only",
        )
    for route in routes:
        if route.matches(metadata):
            return RouteDecision(route, None)
    return RouteDecision(
        None,
        f"no route matches project {metadata.project_id!r}, branch {metadata.branch!r}, "
        f"build type {metadata.build_type!r}",
    )
