from __future__ import annotations

import pytest
from pydantic import ValidationError

from pixelbridge.domain.metadata import BuildMetadata
from pixelbridge.domain.routes import Route, RoutesConfigError, decide_route, load_routes
from pixelbridge.domain.secrets import secrets_equal
from pixelbridge.domain.statuses import BuildStatus, allowed_sources, is_terminal


def metadata(**overrides: object) -> BuildMetadata:
    document: dict[str, object] = {
        "buildId": "b1",
        "projectId": "p1",
        "platform": "Win64",
        "buildType": "Shipping",
        "branch": "main",
    }
    document.update(overrides)
    return BuildMetadata.model_validate(document)


class TestMetadata:
    def test_unknown_fields_are_kept(self) -> None:
        record = metadata(changelist=1234, streamPath="//depot/main").to_record()
        assert record["changelist"] == 1234
        assert record["streamPath"] == "//depot/main"
        assert record["buildId"] == "b1"

    @pytest.mark.parametrize("missing", ["buildId", "projectId", "platform"])
    def test_required_fields(self, missing: str) -> None:
        document = {"buildId": "b1", "projectId": "p1", "platform": "Win64"}
        del document[missing]
        with pytest.raises(ValidationError) as info:
            BuildMetadata.model_validate(document)
        assert info.value.errors()[0]["loc"] == (missing,)

    @pytest.mark.parametrize("build_id", ["../x", "a/b", "", "x" * 65, "a b", "-lead"])
    def test_build_id_must_be_safe_for_keys_and_execution_names(self, build_id: str) -> None:
        with pytest.raises(ValidationError):
            metadata(buildId=build_id)

    def test_wrong_types_are_rejected(self) -> None:
        with pytest.raises(ValidationError):
            metadata(branch=["main"])


class TestRoutes:
    def test_default_route_takes_every_windows_build(self) -> None:
        routes = load_routes("", default_project_id="sp1", default_policy="manual")
        decision = decide_route(metadata(projectId="anything"), routes)
        assert decision.route is not None
        assert decision.route.streampixel_project_id == "sp1"
        assert decision.route.policy == "manual"

    def test_non_windows_builds_are_skipped_with_reason(self) -> None:
        routes = load_routes("", default_project_id="sp1", default_policy="auto")
        decision = decide_route(metadata(platform="Linux"), routes)
        assert decision.skipped
        assert "Linux" in (decision.skip_reason or "")
        assert "Win64" in (decision.skip_reason or "")

    def test_first_matching_route_wins_and_unmatched_is_skipped(self) -> None:
        routes = load_routes(
            '[{"id":"release","buildpixelProjectId":"p1","branch":"release","streampixelProjectId":"sp-r"},'
            ' {"id":"main","buildpixelProjectId":"p1","streampixelProjectId":"sp-m","policy":"hold"}]',
            default_project_id="",
            default_policy="auto",
        )
        assert decide_route(metadata(branch="release"), routes).route == routes[0]
        assert decide_route(metadata(branch="feature"), routes).route == routes[1]
        unmatched = decide_route(metadata(projectId="p2"), routes)
        assert unmatched.skipped
        assert "p2" in (unmatched.skip_reason or "")

    def test_build_type_filter(self) -> None:
        route = Route.model_validate({"id": "ship", "buildType": "Shipping", "streampixelProjectId": "sp"})
        assert route.matches(metadata(buildType="Shipping"))
        assert not route.matches(metadata(buildType="Development"))

    @pytest.mark.parametrize(
        "routes_json",
        [
            "not json",
            "{}",
            "[]",
            '[{"id":"a"}]',
            '[{"id":"a","streampixelProjectId":"x","policy":"yolo"}]',
            '[{"id":"a","streampixelProjectId":"x"},{"id":"a","streampixelProjectId":"y"}]',
        ],
    )
    def test_invalid_routes_are_refused(self, routes_json: str) -> None:
        with pytest.raises(RoutesConfigError):
            load_routes(routes_json, default_project_id="sp", default_policy="auto")

    def test_no_routes_and_no_default_project_is_a_config_error(self) -> None:
        with pytest.raises(RoutesConfigError):
            load_routes("  ", default_project_id="", default_policy="auto")


class TestSecrets:
    def test_equal_and_unequal(self) -> None:
        assert secrets_equal("Bearer abc", "Bearer abc")
        assert not secrets_equal("Bearer abd", "Bearer abc")
        assert not secrets_equal("Bearer abc ", "Bearer abc")
        assert not secrets_equal(None, "Bearer abc")

    def test_an_empty_expected_secret_never_matches(self) -> None:
        assert not secrets_equal("", "")

    def test_non_ascii_input_is_compared_not_crashed(self) -> None:
        assert not secrets_equal("Bearer é", "Bearer e")


class TestStatuses:
    def test_progress_only_moves_forward(self) -> None:
        assert BuildStatus.RECEIVED in allowed_sources(BuildStatus.STORED)
        assert BuildStatus.CONVERTED not in allowed_sources(BuildStatus.STORED)
        assert BuildStatus.STORED not in allowed_sources(BuildStatus.STORED)

    def test_terminal_statuses_are_final(self) -> None:
        for terminal in ("live", "rejected", "failed", "skipped", "superseded"):
            assert is_terminal(terminal)
            assert BuildStatus(terminal) not in allowed_sources(BuildStatus.FAILED)
        assert BuildStatus.DISTRIBUTING in allowed_sources(BuildStatus.LIVE)
