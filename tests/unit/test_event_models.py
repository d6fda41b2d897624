"""The parser models of the non-HTTP functions' events (and the sample events in events/ pass them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import ValidationError, parse

from pixelbridge.handlers.models.convert import ConvertEventModel, ObjectRef, object_refs
from pixelbridge.handlers.models.fetch import FetchRequest
from pixelbridge.handlers.models.release import Await, Finish, ReleaseTaskEvent, ReserveSlot
from pixelbridge.handlers.models.schedule import ScheduledRun

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return document


def test_release_tasks_are_told_apart_by_action() -> None:
    task = parse(event=sample("release-reserve-slot.json"), model=ReleaseTaskEvent).root
    assert isinstance(task, ReserveSlot)
    waiting = {"action": "await", "buildId": "b1", "waitingFor": "approval", "token": "secret-token"}
    parsed = parse(event=waiting, model=ReleaseTaskEvent).root
    assert isinstance(parsed, Await) and "secret-token" not in repr(parsed)
    finish = parse(event=sample("release-finish-failed.json"), model=ReleaseTaskEvent).root
    assert isinstance(finish, Finish) and finish.outcome == "failed"


@pytest.mark.parametrize(
    "event", [{"action": "explode", "buildId": "b1"}, {"action": "await", "buildId": "b1"}, {"buildId": "b1"}]
)
def test_unknown_or_incomplete_release_tasks_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(event=event, model=ReleaseTaskEvent)


def test_fetch_requests_need_a_valid_build_id_and_drop_any_url_an_older_payload_carries() -> None:
    request = parse(event={"buildId": "b-1", "artifactUrl": "https://x/a?sig=s"}, model=FetchRequest)
    assert request.model_dump() == {"build_id": "b-1"}
    with pytest.raises(ValidationError):
        parse(event={"buildId": "../b-1", "artifactUrl": "https://x"}, model=FetchRequest)


def test_convert_events_of_every_shape_name_their_objects() -> None:
    eventbridge = parse(event=sample("convert-eventbridge-object-created.json"), model=ConvertEventModel).root
    notification = parse(event=sample("convert-s3-notification.json"), model=ConvertEventModel).root
    for event in (eventbridge, notification):
        (ref,) = object_refs(event, "artifacts")
        assert ref.key.startswith("inbox/") and ref.etag == "0123456789abcdef0123456789abcdef"
    retry = {
        "source": "pixelbridge.operator-retry",
        "buildId": "b1",
        "key": "inbox/push/b1.multipart",
        "retry": 2,
    }
    assert object_refs(parse(event=retry, model=ConvertEventModel).root, "artifacts") == [
        ObjectRef(bucket="artifacts", key="inbox/push/b1.multipart", etag="retry-2")
    ]


def test_the_schedule_event_is_checked() -> None:
    parse(event=sample("reconciler-schedule.json"), model=ScheduledRun)
    with pytest.raises(ValidationError):
        parse(event={"source": "someone", "detail-type": "Scheduled Event"}, model=ScheduledRun)
