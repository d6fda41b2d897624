"""Routes: which BuildPixel builds go to which Streampixel project, and how they are released."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pixelbridge.domain.errors import Unavailable
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


class RoutesConfigError(Unavailable):
    """The routes file is not valid JSON, not a list of routes, or a route is invalid (answered 503)."""

    def __init__(self, problem: str) -> None:
        super().__init__("routes_invalid", f"the deployed routes file is invalid: {problem}")


_ROUTE_LIST = TypeAdapter(list[Route])
# Routes ship with the function package (functions/routes.json -> /var/task/routes.json), not in the
# environment (4 KB per function) or a template parameter (4,096 bytes): 50 routes are ~9 KB.
DEFAULT_ROUTES_FILE = "routes.json"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def routes_path(routes_file: str) -> Path:
    """``routes_file`` relative to the function package root (an absolute path is used as is)."""
    return PACKAGE_ROOT / routes_file


def load_routes_file(
    path: Path, *, default_project_id: str | None, default_policy: ReleasePolicy
) -> list[Route]:
    """The routes in ``path``, or the one default route when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutesConfigError(f"routes file {path.name} cannot be read ({type(exc).__name__})") from exc
    return load_routes(text, default_project_id=default_project_id, default_policy=default_policy)


def load_routes(
    routes_json: str, *, default_project_id: str | None, default_policy: ReleasePolicy
) -> list[Route]:
    """Routes from JSON text, or the one default route when the text is empty.

    The default sends every BuildPixel project to one Streampixel project, which is what a studio
    with one game expects without writing any JSON.
    """
    if not routes_json.strip():
        if not default_project_id:
            raise RoutesConfigError("no routes file and no default Streampixel project id")
        return [
            Route.model_validate(
                {"id": "default", "streampixelProjectId": default_project_id, "policy": default_policy}
            )
        ]
    try:
        document = json.loads(routes_json)
    except json.JSONDecodeError as exc:
        raise RoutesConfigError(f"routes are not valid JSON: {exc}") from exc
    if not isinstance(document, list):
        raise RoutesConfigError("routes must be a JSON list of route objects")
    try:
        routes = _ROUTE_LIST.validate_python(document)
    except ValidationError as exc:
        raise RoutesConfigError(_describe_invalid_route(document, exc)) from exc
    ids = [route.id for route in routes]
    duplicates = sorted({route_id for route_id in ids if ids.count(route_id) > 1})
    if duplicates:
        raise RoutesConfigError(f"duplicate route ids: {', '.join(duplicates)}")
    if not routes:
        raise RoutesConfigError("routes are an empty list")
    return routes


def _describe_invalid_route(document: list[Any], error: ValidationError) -> str:
    """``route 3 ("win-main"): platform: Extra inputs are not permitted`` for the first bad route."""
    first = error.errors()[0]
    index, *field = first["loc"]
    raw = document[int(index)] if isinstance(index, int) and index < len(document) else None
    name = f" ({str(raw.get('id'))[:64]!r})" if isinstance(raw, dict) and "id" in raw else ""
    where = ".".join(str(part) for part in field) or "route"
    return f"route {index}{name}: {where}: {first['msg']}"


def check(argv: list[str] | None = None) -> int:
    """``python -m pixelbridge.domain.routes check FILE``: validate a routes file before deploying."""
    parser = argparse.ArgumentParser(prog="python -m pixelbridge.domain.routes")
    parser.add_argument("command", choices=["check"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 1
    try:
        routes = load_routes_file(args.file, default_project_id=None, default_policy="auto")
    except RoutesConfigError as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 1
    print(f"{args.file}: {len(routes)} routes OK")
    return 0


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


if __name__ == "__main__":
    sys.exit(check())
