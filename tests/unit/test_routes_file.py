"""Routes ship as a file in the function package: loaded, defaulted, checked before deploy, and explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixelbridge.domain.routes import (
    PACKAGE_ROOT,
    RoutesConfigError,
    check,
    load_routes,
    load_routes_file,
    routes_path,
)
from pixelbridge_local.template import REPO_ROOT

EXAMPLE = REPO_ROOT / "routes.example.json"


def test_no_routes_file_means_the_one_default_route(tmp_path: Path) -> None:
    (route,) = load_routes_file(tmp_path / "routes.json", default_project_id="sp", default_policy="hold")
    assert (route.id, route.streampixel_project_id, route.policy) == ("default", "sp", "hold")


def test_the_routes_file_is_found_relative_to_the_package_root(tmp_path: Path) -> None:
    assert routes_path("routes.json") == PACKAGE_ROOT / "routes.json"
    assert (PACKAGE_ROOT / "pixelbridge" / "__init__.py").is_file()
    assert routes_path(str(tmp_path / "r.json")) == tmp_path / "r.json"  # absolute: as given


def test_the_example_has_50_routes_that_no_parameter_or_environment_could_hold() -> None:
    routes = load_routes_file(EXAMPLE, default_project_id=None, default_policy="auto")
    assert len(routes) == 50
    compact = json.dumps(json.loads(EXAMPLE.read_text(encoding="utf-8")), separators=(",", ":"))
    assert len(compact.encode()) > 4096  # CloudFormation parameter value / Lambda environment limits


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            '[{"id":"ok","streampixelProjectId":"x"},{"id":"win","streampixelProjectId":"y","platform":"Win64"}]',
            "route 1 ('win'): platform: Extra inputs are not permitted",
        ),
        ('[{"id":"a","streampixelProjectId":"x","policy":"yolo"}]', "route 0 ('a'): policy:"),
        ('[{"id":"a"}]', "route 0 ('a'): streampixelProjectId: Field required"),
        (
            '[{"id":"a","streampixelProjectId":"x"},{"id":"a","streampixelProjectId":"y"}]',
            "duplicate route ids: a",
        ),
        ('{"id":"a"}', "routes must be a JSON list"),
        ("not json", "routes are not valid JSON"),
    ],
)
def test_a_bad_route_is_named_with_the_reason(routes: str, message: str) -> None:
    with pytest.raises(RoutesConfigError) as raised:
        load_routes(routes, default_project_id="sp", default_policy="auto")
    assert message in str(raised.value)


def test_check_command_passes_the_example_and_fails_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(["check", str(EXAMPLE)]) == 0
    assert "50 routes OK" in capsys.readouterr().out
    bad = tmp_path / "routes.json"
    bad.write_text('[{"id":"a","streampixelProjectId":"x","platform":"Win64"}]', encoding="utf-8")
    assert check(["check", str(bad)]) == 1
    assert "route 0 ('a'): platform" in capsys.readouterr().err
    assert check(["check", str(tmp_path / "missing.json")]) == 1
