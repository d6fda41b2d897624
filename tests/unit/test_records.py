"""The release facts of a build record, read in one place (domain.records)."""

from __future__ import annotations

from pixelbridge.domain.records import ReleaseTerms, release_policy, release_terms


def test_records_without_release_facts_read_the_defaults() -> None:
    assert release_terms({"buildId": "b"}) == ReleaseTerms(
        project_id=None, policy="auto", account="default", never_dark=False
    )
    assert release_policy({"buildId": "b", "release": None}) == "auto"


def test_never_dark_defaults_to_on_for_manual_routes_and_an_explicit_flag_wins() -> None:
    assert release_terms({"release": {"policy": "manual"}}).never_dark is True
    assert release_terms({"release": {"policy": "manual", "neverDark": False}}).never_dark is False
    assert release_terms({"release": {"policy": "hold", "neverDark": True}}).never_dark is True


def test_the_release_facts_are_read_from_the_record() -> None:
    record = {"release": {"streampixelProjectId": "sp-1", "policy": "hold", "account": "studio-b"}}
    assert release_terms(record) == ReleaseTerms(
        project_id="sp-1", policy="hold", account="studio-b", never_dark=False
    )
