"""No bearer URL in FetchFunction's async payloads (kept 14 days in the dead-letter queue when an
invocation fails), and socket timeouts bounded by what the caller can still wait."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from pixelbridge.adapters.buildpixel import CONNECT_TIMEOUT, READ_TIMEOUT, BuildPixelClient
from pixelbridge.adapters.fetch_starter import LambdaFetchStarter
from pixelbridge.adapters.url_guard import UrlPolicy
from pixelbridge.handlers.models.fetch import FetchRequest


class RecordingLambda:
    def __init__(self) -> None:
        self.invokes: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> dict[str, Any]:
        self.invokes.append(request)
        return {"StatusCode": 202}


def test_the_fetch_starter_sends_the_build_id_only() -> None:
    client = RecordingLambda()
    LambdaFetchStarter("FetchFunction", lambda_client=client).start("b-1")
    (request,) = client.invokes
    assert request["InvocationType"] == "Event"
    assert json.loads(request["Payload"]) == {"buildId": "b-1"}


def test_an_old_payload_with_a_url_is_read_as_the_build_id_alone() -> None:
    request = FetchRequest.model_validate({"buildId": "b-1", "artifactUrl": "https://x.test/a?sig=s"})
    assert request.model_dump() == {"build_id": "b-1"}


class RecordingSession:
    def __init__(self) -> None:
        self.timeouts: list[Any] = []

    def get(self, url: str, **options: Any) -> requests.Response:
        self.timeouts.append(options["timeout"])
        response = requests.Response()
        response.status_code = 206
        response.headers = CaseInsensitiveDict({"Content-Range": "bytes 0-3/4"})
        response.raw = io.BytesIO(b"data")
        return response


@pytest.mark.parametrize(
    ("read_timeout", "expected"),
    [(None, (CONNECT_TIMEOUT, READ_TIMEOUT)), (500.0, (CONNECT_TIMEOUT, READ_TIMEOUT)), (4.0, (4.0, 4.0))],
)
def test_the_artifact_request_s_socket_timeouts_shrink_to_the_read_timeout_asked(
    read_timeout: float | None, expected: tuple[float, float]
) -> None:
    session = RecordingSession()
    client = BuildPixelClient(
        "http://127.0.0.1:9",
        lambda: "token",
        session=session,  # type: ignore[arg-type]
        artifact_urls=UrlPolicy(allowed_hosts=frozenset(), allow_loopback_http=True),
        resolve=lambda host, port: ["127.0.0.1"],
    )
    response = client.open_artifact(
        "http://127.0.0.1:9/artifacts/b-1?sig=s", start=0, stop=4, read_timeout=read_timeout
    )
    assert b"".join(response.chunks) == b"data"
    assert session.timeouts == [expected]
