"""Unit tests for the Streampixel HTTP client (HTTP mocked with ``responses``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from pixelbridge.adapters.streampixel import (
    DEFAULT_API_URL,
    DistributeResult,
    StreampixelClient,
    StreampixelCredentials,
    TestWebhookResult,
    UploadResult,
)
from pixelbridge.domain.errors import RateLimited, StreampixelError, Transient

BASE = "https://sp.example.test/pixelStripeApi"
UPLOAD_URL = f"{BASE}/projects/upload-file"
DISTRIBUTE_URL = f"{BASE}/projects/distribute-file"
TEST_WEBHOOK_URL = f"{BASE}/projects/test-webhook"

API_KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
USER_ID = "663d1f2e3a4b5c6d7e8f9012"
PROJECT_ID = "67944b8a3f323be4b89a2272"
UPLOAD_ID = "665a2b3c4d5e6f7a8b9c0e1f"
FILE_URL = "https://builds.example.test/b/7c1e0f9a-capability-token/Game.zip"
CREDS = StreampixelCredentials(user_id=USER_ID, api_key=API_KEY)
TIMEOUT = (1.5, 12.0)


@pytest.fixture
def client() -> StreampixelClient:
    return StreampixelClient(BASE, timeout=TIMEOUT)


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def sent_body(mocked: Any, index: int = 0) -> dict[str, Any]:
    body = mocked.calls[index].request.body
    return dict(json.loads(body))


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), str(exc.args)):
        assert API_KEY not in text
        assert "capability-token" not in text


# -- request shape ---------------------------------------------------------------------------------


def test_default_base_url_is_the_documented_one() -> None:
    assert DEFAULT_API_URL == "https://api.streampixel.io/pixelStripeApi"


def test_upload_sends_exact_json_body_and_parses_upload_id(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(
        UPLOAD_URL,
        json={"message": "Build queued for processing", "uploadId": UPLOAD_ID},
        match=[matchers.header_matcher({"Content-Type": "application/json"})],
    )
    result = client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=False)

    assert result == UploadResult(upload_id=UPLOAD_ID, message="Build queued for processing")
    assert sent_body(mocked) == {
        "apiKey": API_KEY,
        "userId": USER_ID,
        "projectId": PROJECT_ID,
        "fileUrl": FILE_URL,
        "autoRelease": False,
    }


def test_api_key_is_never_sent_in_a_header(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, json={"uploadId": UPLOAD_ID})
    client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    headers = mocked.calls[0].request.headers
    assert "Authorization" not in headers
    assert all(API_KEY not in str(value) for value in headers.values())
    assert API_KEY not in mocked.calls[0].request.url
    assert sent_body(mocked)["autoRelease"] is True


def test_distribute_sends_exact_json_body(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, json={"message": "Distribution triggered"})
    client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert sent_body(mocked) == {
        "apiKey": API_KEY,
        "userId": USER_ID,
        "projectId": PROJECT_ID,
        "uploadId": UPLOAD_ID,
    }


def test_test_webhook_sends_exact_json_body(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(
        TEST_WEBHOOK_URL, json={"success": True, "message": "Test webhook delivered", "statusCode": 200}
    )
    result = client.test_webhook(CREDS, PROJECT_ID)
    assert result == TestWebhookResult(success=True, status_code=200, message="Test webhook delivered")
    assert sent_body(mocked) == {"apiKey": API_KEY, "userId": USER_ID, "projectId": PROJECT_ID}


@pytest.mark.parametrize("call", ["upload", "distribute", "test_webhook"])
def test_every_call_passes_the_timeout_and_does_not_follow_redirects(call: str) -> None:
    session = requests.Session()
    seen: list[dict[str, Any]] = []
    original_send = session.send

    def spy_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        seen.append(kwargs)
        return original_send(request, **kwargs)

    session.send = spy_send  # type: ignore[method-assign]
    client = StreampixelClient(BASE, session=session, timeout=TIMEOUT)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(UPLOAD_URL, json={"uploadId": UPLOAD_ID})
        rsps.post(DISTRIBUTE_URL, json={"message": "Distribution triggered"})
        rsps.post(TEST_WEBHOOK_URL, json={"success": True, "statusCode": 200, "message": "ok"})
        calls: dict[str, Callable[[], object]] = {
            "upload": lambda: client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True),
            "distribute": lambda: client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID),
            "test_webhook": lambda: client.test_webhook(CREDS, PROJECT_ID),
        }
        calls[call]()
    assert seen[0]["timeout"] == TIMEOUT
    assert seen[0]["allow_redirects"] is False


def test_trailing_slash_in_base_url_is_tolerated(mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, json={"message": "Distribution triggered"})
    StreampixelClient(BASE + "/").distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert mocked.calls[0].request.url == DISTRIBUTE_URL


# -- success parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_upload_accepts_any_2xx(client: StreampixelClient, mocked: Any, status: int) -> None:
    body = "" if status == 204 else json.dumps({"message": "New build accepted", "uploadId": UPLOAD_ID})
    mocked.post(UPLOAD_URL, body=body, status=status, content_type="application/json")
    result = client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert result.upload_id == (None if status == 204 else UPLOAD_ID)


def test_upload_without_upload_id_gives_none(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, json={"message": "Build queued for processing"})
    assert client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True) == UploadResult(
        upload_id=None, message="Build queued for processing"
    )


@pytest.mark.parametrize("bad_id", [None, "", 12345, ["x"]])
def test_upload_with_unusable_upload_id_gives_none(
    client: StreampixelClient, mocked: Any, bad_id: Any
) -> None:
    mocked.post(UPLOAD_URL, json={"message": "queued", "uploadId": bad_id})
    assert client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True).upload_id is None


def test_upload_with_non_json_2xx_body_is_tolerated(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, body="  OK\n queued  ", status=200, content_type="text/plain")
    assert client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True) == UploadResult(
        upload_id=None, message="OK queued"
    )


def test_upload_with_json_array_body_is_tolerated(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, json=[1, 2])
    assert client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True) == UploadResult(None, "")


def test_distribute_newer_shape(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, json={"message": "Distribution triggered"})
    assert client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID) == DistributeResult(
        message="Distribution triggered", region=None
    )


def test_distribute_older_shape_with_region(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(
        DISTRIBUTE_URL,
        json={
            "success": True,
            "uploadId": UPLOAD_ID,
            "region": "us-east-1",
            "message": "File distribution triggered successfully",
        },
    )
    assert client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID) == DistributeResult(
        message="File distribution triggered successfully", region="us-east-1"
    )


def test_distribute_non_json_body_is_tolerated(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, body="<html>ok</html>", content_type="text/html")
    assert client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID) == DistributeResult("<html>ok</html>", None)


def test_test_webhook_reports_unreachable_receiver(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(TEST_WEBHOOK_URL, json={"success": False, "message": "Could not connect", "statusCode": 0})
    assert client.test_webhook(CREDS, PROJECT_ID) == TestWebhookResult(False, 0, "Could not connect")


def test_test_webhook_with_odd_fields_is_defensive(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(TEST_WEBHOOK_URL, json={"success": "yes", "statusCode": "200"})
    assert client.test_webhook(CREDS, PROJECT_ID) == TestWebhookResult(False, 0, "")


def test_test_webhook_404_when_no_url_configured(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(TEST_WEBHOOK_URL, json={"message": "No webhook URL configured"}, status=404)
    with pytest.raises(StreampixelError) as caught:
        client.test_webhook(CREDS, PROJECT_ID)
    assert (caught.value.status, caught.value.message) == (404, "No webhook URL configured")


# -- error mapping ---------------------------------------------------------------------------------


def test_429_maps_to_rate_limited(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, json={"message": "Rate limit exceeded. Try again in 2 minutes."}, status=429)
    with pytest.raises(RateLimited, match=r"Rate limit exceeded\. Try again in 2 minutes\."):
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)


def test_429_on_distribute_maps_to_rate_limited(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, body="Too Many Requests", status=429)
    with pytest.raises(RateLimited, match="Too Many Requests"):
        client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_maps_to_ambiguous_transient(client: StreampixelClient, mocked: Any, status: int) -> None:
    mocked.post(UPLOAD_URL, json={"message": "Internal server error"}, status=status)
    with pytest.raises(Transient) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.ambiguous is True
    assert str(status) in str(caught.value) and "Internal server error" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Missing required field: fileUrl"),
        (401, "Unauthorized: Invalid API Key"),
        (401, "Invalid User"),
        (403, "Forbidden: project does not belong to this user"),
        (404, "Project not found"),
        (415, "Unsupported Media Type"),
    ],
)
def test_other_4xx_map_to_streampixel_error_with_body_message(
    client: StreampixelClient, mocked: Any, status: int, message: str
) -> None:
    mocked.post(UPLOAD_URL, json={"message": message}, status=status)
    with pytest.raises(StreampixelError) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert (caught.value.status, caught.value.message) == (status, message)


def test_distribute_404_file_not_found(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, json={"message": "File not found in project"}, status=404)
    with pytest.raises(StreampixelError) as caught:
        client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert (caught.value.status, caught.value.message) == (404, "File not found in project")


def test_non_json_error_body_falls_back_to_trimmed_text(client: StreampixelClient, mocked: Any) -> None:
    html = "<html>\n  <body>" + "Bad   Request " * 100 + "</body></html>"
    mocked.post(UPLOAD_URL, body=html, status=400, content_type="text/html")
    with pytest.raises(StreampixelError) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.message.startswith("<html> <body>Bad Request Bad Request")
    assert len(caught.value.message) <= 300


def test_empty_error_body_falls_back_to_reason(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, body="", status=403)
    with pytest.raises(StreampixelError) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.status == 403 and caught.value.message == "Forbidden"


def test_json_error_without_message_falls_back_to_text(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, json={"error": "nope"}, status=400)
    with pytest.raises(StreampixelError) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.message == "Bad Request"


def test_redirect_is_not_followed_and_is_a_permanent_error(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, status=307, headers={"Location": "https://elsewhere.example/steal"})
    with pytest.raises(StreampixelError) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.status == 307
    assert len(mocked.calls) == 1  # the apiKey body went nowhere else


def test_read_timeout_maps_to_ambiguous_transient(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, body=requests.ReadTimeout("Read timed out. (read timeout=12.0)"))
    with pytest.raises(Transient) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.ambiguous is True
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_connect_timeout_maps_to_unambiguous_transient(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, body=requests.ConnectTimeout("Connection timed out"))
    with pytest.raises(Transient) as caught:
        client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert caught.value.ambiguous is False


def test_connection_refused_before_sending_is_unambiguous(client: StreampixelClient, mocked: Any) -> None:
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    wrapped = requests.ConnectionError(MaxRetryError(None, "/projects/upload-file", refused))  # type: ignore[arg-type]
    mocked.post(UPLOAD_URL, body=wrapped)
    with pytest.raises(Transient) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.ambiguous is False


def test_connection_dropped_after_sending_is_ambiguous(client: StreampixelClient, mocked: Any) -> None:
    aborted = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104)))
    mocked.post(UPLOAD_URL, body=aborted)
    with pytest.raises(Transient) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert caught.value.ambiguous is True


def test_invalid_base_url_is_a_configuration_error_not_transient() -> None:
    with pytest.raises(ValueError) as caught:
        StreampixelClient("not-a-url").upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert not isinstance(caught.value, Transient)
    assert_no_secret(caught.value)


# -- secrets ---------------------------------------------------------------------------------------


def test_credentials_repr_hides_api_key() -> None:
    assert API_KEY not in repr(CREDS) and API_KEY not in str(CREDS)
    assert USER_ID in repr(CREDS)


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_server_echo_of_api_key_and_file_url_is_scrubbed(
    client: StreampixelClient, mocked: Any, status: int
) -> None:
    echo = (
        f"Bad request {{'apiKey': '{API_KEY}', 'fileUrl': '{FILE_URL}'}}"
        " path=/b/7c1e0f9a-capability-token/Game.zip"
    )
    mocked.post(UPLOAD_URL, json={"message": echo}, status=status)
    with pytest.raises((StreampixelError, RateLimited, Transient)) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert_no_secret(caught.value)
    assert "https://builds.example.test/" in str(caught.value)  # the host alone is still useful
    if isinstance(caught.value, StreampixelError):
        assert API_KEY not in caught.value.message


def test_non_json_error_echo_is_scrubbed(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(DISTRIBUTE_URL, body=f"invalid key {API_KEY}", status=401, content_type="text/plain")
    with pytest.raises(StreampixelError) as caught:
        client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert_no_secret(caught.value)
    assert caught.value.message == "invalid key [REDACTED]"


def test_success_message_echo_is_scrubbed(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, json={"message": f"queued {FILE_URL} for {API_KEY}", "uploadId": UPLOAD_ID})
    result = client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert API_KEY not in repr(result) and "capability-token" not in repr(result)


def test_transport_error_text_is_scrubbed(client: StreampixelClient, mocked: Any) -> None:
    mocked.post(UPLOAD_URL, body=requests.ReadTimeout(f"timed out sending apiKey={API_KEY} url={FILE_URL}"))
    with pytest.raises(Transient) as caught:
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert_no_secret(caught.value)


def test_client_does_not_log(
    client: StreampixelClient, mocked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    mocked.post(UPLOAD_URL, json={"message": "x"}, status=400)
    with pytest.raises(StreampixelError):
        client.upload_file(CREDS, PROJECT_ID, FILE_URL, auto_release=True)
    assert all(API_KEY not in record.getMessage() for record in caplog.records)
    assert all("capability-token" not in record.getMessage() for record in caplog.records)


@settings(max_examples=60, deadline=None)
@given(
    status=st.integers(min_value=400, max_value=599),
    prefix=st.text(max_size=40),
    suffix=st.text(max_size=40),
)
def test_api_key_never_leaks_whatever_the_error_body(status: int, prefix: str, suffix: str) -> None:
    client = StreampixelClient(BASE)
    with responses.RequestsMock() as rsps:
        rsps.post(DISTRIBUTE_URL, json={"message": prefix + API_KEY + suffix}, status=status)
        with pytest.raises((StreampixelError, RateLimited, Transient)) as caught:
            client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value)
