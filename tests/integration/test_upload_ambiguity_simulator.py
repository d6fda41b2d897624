"""The simulator's ``answer_after_the_caller_is_gone`` knob over real loopback HTTP: the call is counted,
processed or not as asked, and answered never while its caller still waits."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from pixelbridge_local.streampixel_sim import StreampixelSimulator

USER, KEY = "663d1f2e3a4b5c6d7e8f9012", "key-a-0123456789abcdef"
PROJECT = "67944b8a3f323be4b89a2272"
BODY = {
    "apiKey": KEY,
    "userId": USER,
    "projectId": PROJECT,
    "fileUrl": "http://127.0.0.1:9/dl/build.zip",
    "autoRelease": False,
}


@pytest.fixture
def simulator() -> Iterator[StreampixelSimulator]:
    with StreampixelSimulator(
        accounts={USER: KEY}, projects={PROJECT: USER}, window_seconds=0, stage_delay=0.01
    ) as running:
        yield running


def upload_and_hang_up(simulator: StreampixelSimulator) -> None:
    """upload-file from a caller that stops waiting (as a process stopped by Lambda would)."""
    address = urlsplit(simulator.base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=0.5)
    connection.request(
        "POST",
        f"{address.path}/projects/upload-file",
        body=json.dumps(BODY),
        headers={"Content-Type": "application/json"},
    )
    arrived = time.monotonic() + 30
    while not simulator.calls and time.monotonic() < arrived:  # a bound on failure, not a timing
        time.sleep(0.05)
    with pytest.raises(socket.timeout):  # never answered while the caller waits
        connection.getresponse()
    connection.close()


@pytest.mark.parametrize("processed", [True, False], ids=["processed", "never-processed"])
def test_a_call_is_answered_only_after_its_caller_is_gone(
    simulator: StreampixelSimulator, processed: bool
) -> None:
    simulator.answer_after_the_caller_is_gone(processed=processed)
    upload_and_hang_up(simulator)
    (call,) = simulator.calls
    assert call.endpoint == "upload-file" and call.http_status == 0
    if processed:
        assert call.upload_id is not None and simulator.upload_state(call.upload_id) is not None
    else:
        assert call.upload_id is None
    # the knob is used up: the next call is answered at once
    answer = requests.post(f"{simulator.base_url}/projects/upload-file", json=BODY, timeout=10)
    assert answer.status_code == 200 and len(answer.json()["uploadId"]) == 24


def test_the_knob_waits_for_its_own_endpoint(simulator: StreampixelSimulator) -> None:
    simulator.answer_after_the_caller_is_gone(endpoint="distribute-file")
    answer = requests.post(f"{simulator.base_url}/projects/upload-file", json=BODY, timeout=10)
    assert answer.status_code == 200  # upload-file is not the endpoint the knob waits on
