"""HTTP client for the Streampixel build API (upload-file, distribute-file, test-webhook).

Contract: docs/ARCHITECTURE.md, Outside APIs. Every write endpoint takes the ``apiKey`` in the JSON body,
so the request body is a secret: this module never logs, and every text that can end up in an
exception message (server echoes, transport errors) is scrubbed of the apiKey and the fileUrl
(a capability URL) first. Callers record outcomes; the client itself stays silent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError

from pixelbridge.domain.errors import RateLimited, StreampixelError, Transient
from pixelbridge.ports import DistributeResult, StreampixelCredentials, TestWebhookResult, UploadResult

__all__ = [
    "DistributeResult",
    "StreampixelClient",
    "StreampixelCredentials",
    "TestWebhookResult",
    "UploadResult",
]

DEFAULT_API_URL = "https://api.streampixel.io/pixelStripeApi"

UPLOAD_PATH = "/projects/upload-file"
DISTRIBUTE_PATH = "/projects/distribute-file"
TEST_WEBHOOK_PATH = "/projects/test-webhook"

_CONFIGURATION_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)
_MAX_ECHO_CHARS = 300  # server text quoted in exception messages is trimmed to this
_REDACTED = "[REDACTED]"


class StreampixelClient:
    """Thin, strict client for the Streampixel write API.

    Errors map to domain errors: 429 → ``RateLimited``; 5xx, timeouts and connection failures →
    ``Transient`` (``ambiguous`` tells whether the request may have been processed); any other
    non-2xx → ``StreampixelError``. Redirects are not followed, so the body (with the apiKey) is
    only ever sent to ``base_url``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout

    def upload_file(
        self, creds: StreampixelCredentials, project_id: str, file_url: str, *, auto_release: bool
    ) -> UploadResult:
        """Queue a build zip for processing (POST /projects/upload-file)."""
        body = self._auth_body(creds, project_id) | {"fileUrl": file_url, "autoRelease": auto_release}
        payload = self._post(UPLOAD_PATH, body, secrets=_Secrets(creds.api_key, file_url))
        upload_id = _str_field(payload, "uploadId")
        return UploadResult(upload_id=upload_id or None, message=_message_of(payload))

    def distribute_file(
        self, creds: StreampixelCredentials, project_id: str, upload_id: str
    ) -> DistributeResult:
        """Release a processed build to the project's streaming servers (POST /projects/distribute-file)."""
        body = self._auth_body(creds, project_id) | {"uploadId": upload_id}
        payload = self._post(DISTRIBUTE_PATH, body, secrets=_Secrets(creds.api_key))
        # Two documented shapes: {"message"} (newer) and {"success","uploadId","region","message"} (older).
        return DistributeResult(message=_message_of(payload), region=_str_field(payload, "region") or None)

    def test_webhook(self, creds: StreampixelCredentials, project_id: str) -> TestWebhookResult:
        """Ask Streampixel to POST a ``webhook.test`` event to the project's saved webhook URL."""
        payload = self._post(
            TEST_WEBHOOK_PATH, self._auth_body(creds, project_id), secrets=_Secrets(creds.api_key)
        )
        if not isinstance(payload, dict):
            return TestWebhookResult(success=False, status_code=0, message=_message_of(payload))
        status_code = payload.get("statusCode")
        if not isinstance(status_code, int) or isinstance(status_code, bool):
            status_code = 0
        return TestWebhookResult(
            success=payload.get("success") is True, status_code=status_code, message=_message_of(payload)
        )

    # -- transport -------------------------------------------------------------------------------

    @staticmethod
    def _auth_body(creds: StreampixelCredentials, project_id: str) -> dict[str, Any]:
        return {"apiKey": creds.api_key, "userId": creds.user_id, "projectId": project_id}

    def _post(self, path: str, body: dict[str, Any], *, secrets: _Secrets) -> Any:
        """POST JSON and return the parsed 2xx body (a str for non-JSON bodies), or raise a domain error."""
        try:
            response = self._session.post(
                self._base_url + path, json=body, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            _raise_transport_error(exc, path, secrets)
        if 200 <= response.status_code < 300:
            return _scrub_payload(_parse_body(response), secrets)
        _raise_http_error(response, path, secrets)


@dataclass(frozen=True)
class _Secrets:
    """Values that must never appear in an exception message."""

    api_key: str
    file_url: str | None = None

    def scrub(self, text: str) -> str:
        if self.api_key:
            text = text.replace(self.api_key, _REDACTED)
        if self.file_url:
            # Replace the URL (and any echo of its path or query alone) with its host only.
            parts = urlsplit(self.file_url)
            text = text.replace(self.file_url, f"{parts.scheme}://{parts.netloc}/{_REDACTED}")
            for piece in (parts.query, parts.path):
                if len(piece) > 1:
                    text = text.replace(piece, _REDACTED)
        return text


def _raise_transport_error(exc: requests.RequestException, path: str, secrets: _Secrets) -> NoReturn:
    detail = secrets.scrub(f"{type(exc).__name__}: {exc}")[:_MAX_ECHO_CHARS]
    if isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and _failed_before_sending(exc)
    ):
        message, ambiguous = f"Could not reach Streampixel for {path} ({detail})", False
    elif isinstance(exc, requests.Timeout):
        message, ambiguous = f"Streampixel did not answer {path} in time ({detail})", True
    elif isinstance(exc, _CONFIGURATION_ERRORS):
        raise ValueError(f"Bad Streampixel request for {path} ({detail})") from None  # retrying cannot help
    else:
        # Reset or aborted response, body decoding failure...: the request may have been processed.
        message, ambiguous = f"Connection to Streampixel broke during {path} ({detail})", True
    # "from None": the requests exception holds the prepared request, whose body carries the apiKey.
    raise Transient(message, ambiguous=ambiguous) from None


def _failed_before_sending(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so Streampixel cannot have seen the request.

    requests wraps connect-phase failures (DNS, refused, TLS handshake, proxy) in a urllib3
    ``MaxRetryError``; failures after the request went out arrive as a bare ``ProtocolError``/OSError.
    """
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError, Urllib3SSLError, Urllib3ProxyError))


def _raise_http_error(response: requests.Response, path: str, secrets: _Secrets) -> NoReturn:
    status = response.status_code
    message = secrets.scrub(_error_message(response))
    if status == 429:
        raise RateLimited(message)
    if status >= 500:
        raise Transient(f"Streampixel answered {status} for {path}: {message}", ambiguous=True)
    if 300 <= status < 400:
        message = f"unexpected redirect from {path}"  # never follow: the body carries the apiKey
    raise StreampixelError(status, message)


def _parse_body(response: requests.Response) -> Any:
    """JSON if it parses, otherwise the trimmed text: success bodies vary by endpoint and revision."""
    text = response.text
    try:
        return json.loads(text)
    except ValueError:
        return _trim(text)


def _scrub_payload(payload: Any, secrets: _Secrets) -> Any:
    """Scrub top-level strings of a success body: its message may be logged by the caller."""
    if isinstance(payload, str):
        return secrets.scrub(payload)
    if isinstance(payload, dict):
        return {
            key: secrets.scrub(value) if isinstance(value, str) else value for key, value in payload.items()
        }
    return payload


def _error_message(response: requests.Response) -> str:
    """The ``{"message"}`` of an error body; falls back to the trimmed text or the reason phrase."""
    payload = _parse_body(response)
    message = _str_field(payload, "message") if isinstance(payload, dict) else None
    if message:
        return _trim(message)
    if isinstance(payload, str) and payload:
        return payload
    return response.reason or f"HTTP {response.status_code}"


def _message_of(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    return _str_field(payload, "message") or ""


def _str_field(payload: Any, key: str) -> str | None:
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def _trim(text: str) -> str:
    return " ".join(text.split())[:_MAX_ECHO_CHARS]
