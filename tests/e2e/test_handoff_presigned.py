"""Presigned handoff on the local stack: the URL Streampixel gets outlives the converter's session.

A presigned URL is signed with the calling function's session credentials and dies with that session.
The stack's IAM proxy refuses calls and presigned GETs signed with an ended session (``expire_session``),
so a URL stored at conversion time fails here exactly as it would on AWS once Lambda's credentials
rotate; the upload task signs a fresh one at each upload-file call instead.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import requests

from pixelbridge.domain.handoff import token_from_url
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import events_of, push


def upload_file_urls(stack: EmbeddedStack) -> list[str]:
    """The fileUrl of each upload Streampixel took, from the events it sent back (first one per upload)."""
    urls: dict[str, str] = {}
    for webhook in stack.simulator.webhooks:
        if webhook.upload_id and webhook.upload_id not in urls:
            urls[webhook.upload_id] = str(webhook.payload["fileUrl"])
    return list(urls.values())


def signing_key(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Credential"][0].split("/")[0]


def test_retry_upload_after_the_converters_session_ended_gives_streampixel_a_url_that_downloads(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto", handoff_mode="presigned")
    stack.simulator.reject_next_upload("Download failed", at_event="build.downloading")
    assert push(stack, "presign-1").status_code == 202
    rejected = stack.wait_for_terminal("presign-1", timeout=60)
    assert rejected["status"] == "rejected"
    assert "zipUrl" not in rejected  # the record keeps the key and its token, never a signed URL
    converter_key = stack.environments()["ConvertFunction"]["AWS_ACCESS_KEY_ID"]

    stack.expire_session("ConvertFunction")  # Lambda rotated the converter's credentials
    answer = requests.post(
        f"{stack.operator_url}/builds/presign-1/retry",
        headers={"Authorization": stack.operator_authorization},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["action"] == "retry:upload"

    record = stack.wait_for_terminal("presign-1", timeout=60)
    assert record["status"] == "live", record.get("error") or record.get("objection")
    first, second = upload_file_urls(stack)
    release_key = stack.environments()["ReleaseFunction"]["AWS_ACCESS_KEY_ID"]
    # Signed by the function that called upload-file, at that call, not by the converter.
    assert signing_key(first) == signing_key(second) == release_key != converter_key
    assert "X-Amz-Signature=" in second and "X-Amz-Expires=10800" in second
    # The token is in the key: Streampixel's events for the fresh URL matched the build.
    assert token_from_url(second) == record["handoffToken"]
    assert record["uploadId"] == stack.simulator.live_upload(record["release"]["streampixelProjectId"])
    assert "handoff zip deleted" in events_of(record)  # the download was seen; the zip went after it
    assert "zipUrl" not in record
    view = requests.get(
        f"{stack.operator_url}/builds/presign-1",
        headers={"Authorization": stack.operator_authorization},
        timeout=30,
    )
    assert view.status_code == 200 and view.json()["status"] == "live"
    assert record["handoffToken"] not in view.text and "X-Amz-" not in view.text  # no capability shown
