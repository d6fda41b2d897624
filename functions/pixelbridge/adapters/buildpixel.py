"""BuildPixel over HTTP: the download API (``GET /builds/:id/download``) and the signed artifact URL.

Signed URLs and the API token are capabilities: no exception raised here carries a URL, a query
string or a header, and ``requests`` exceptions (whose text includes the full URL) are replaced by
our own with ``from None``. Only the host is ever named.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import requests

from pixelbridge.adapters.url_guard import Resolver, UrlPolicy, UrlRefused, guarded_get, system_resolver
from pixelbridge.domain.secrets import host_of
from pixelbridge.ports import (
    ArtifactResponse,
    ArtifactUrlExpired,
    ArtifactUrlRefused,
    BuildPixelError,
    BuildPixelRateLimited,
    BuildPixelRefused,
    BuildPixelUnavailable,
    DownloadInfo,
)

__all__ = [
    "ArtifactResponse",
    "ArtifactUrlExpired",
    "ArtifactUrlRefused",
    "BuildPixelClient",
    "BuildPixelError",
    "BuildPixelRateLimited",
    "BuildPixelRefused",
    "BuildPixelUnavailable",
    "DownloadInfo",
]

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
DEFAULT_RETRY_AFTER = 30.0
MAX_API_ATTEMPTS = 4  # for 5xx and network errors of the small download-API call
STREAM_CHUNK = 1024 * 1024


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); a default when absent or unreadable."""
    if not value:
        return DEFAULT_RETRY_AFTER
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return max(0.0, moment - (time.time() if now is None else now))


def error_fields(response: requests.Response) -> tuple[str, str]:
    """(code, message) from BuildPixel's ``{error, message, requestId}``, trimmed."""
    try:
        document = response.json()
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    code = str(document.get("error") or f"http_{response.status_code}")[:64]
    message = str(document.get("message") or response.reason or "")[:200]
    request_id = document.get("requestId")
    return code, f"{message} (requestId {str(request_id)[:64]})" if request_id else message


def total_size_of(response: requests.Response, start: int) -> int | None:
    """The artifact's full size from Content-Range (206) or Content-Length (200), if announced."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + (start if response.status_code == 206 else 0)
    return None


def range_start_of(response: requests.Response) -> int:
    """Where a 206 body starts (``Content-Range: bytes <start>-<end>/<total>``)."""
    content_range = response.headers.get("Content-Range", "")
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        raise BuildPixelUnavailable("a 206 answer without a readable Content-Range") from None


class BuildPixelClient:
    def __init__(
        self,
        api_url: str,
        api_token: Callable[[], str],
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_rate_limit_wait: float = 300.0,
        backoff_base: float = 1.0,
        artifact_urls: UrlPolicy | None = None,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._artifact_urls = artifact_urls or UrlPolicy.from_environment()
        self._resolve = resolve
        self._api_token = api_token
        self._session = session or requests.Session()
        self._sleep = sleep
        self._max_rate_limit_wait = max_rate_limit_wait
        self._backoff_base = backoff_base
        self.waits: list[float] = []  # every sleep taken, for logs and tests

    # -- download API ------------------------------------------------------------------------------
    def download_info(self, build_id: str) -> DownloadInfo:
        """A fresh signed URL (+ size and MD5) for ``build_id``; honours 429 Retry-After within a bound."""
        waited = 0.0
        failures = 0
        while True:
            try:
                response = self._get_download_info(build_id)
            except BuildPixelUnavailable:
                failures += 1
                if failures >= MAX_API_ATTEMPTS:
                    raise
                self._wait(self._backoff_base * 2 ** (failures - 1))
                continue
            if response.status_code == 429:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                if waited + delay > self._max_rate_limit_wait:
                    raise BuildPixelRateLimited(
                        f"BuildPixel kept answering 429 ({waited:.0f} s waited, Retry-After {delay:.0f} s)"
                    )
                waited += delay
                self._wait(delay)
                continue
            return self._download_info_from(response)

    def _get_download_info(self, build_id: str) -> requests.Response:
        url = f"{self._api_url}/builds/{quote(build_id, safe='')}/download"
        try:
            response = self._session.get(
                url,
                headers={"Authorization": f"Bearer {self._api_token()}", "Accept": "application/json"},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise BuildPixelUnavailable(
                f"{type(exc).__name__} calling the BuildPixel API at {host_of(url)}"
            ) from None
        if response.status_code >= 500:
            raise BuildPixelUnavailable(f"the BuildPixel API answered {response.status_code}")
        return response

    @staticmethod
    def _download_info_from(response: requests.Response) -> DownloadInfo:
        if response.status_code != 200:
            code, message = error_fields(response)
            raise BuildPixelRefused(response.status_code, code, message)
        try:
            document = response.json()
            url = str(document["url"])
        except (ValueError, KeyError, TypeError):
            raise BuildPixelRefused(200, "invalid_response", "the download API answer has no url") from None
        size = document.get("sizeBytes")
        checksum = document.get("checksumMd5")
        return DownloadInfo(
            url=url,
            expires_at=document.get("expiresAt"),
            size_bytes=int(size) if isinstance(size, int | float) and size >= 0 else None,
            checksum_md5=str(checksum).lower() if checksum else None,
        )

    # -- the artifact ------------------------------------------------------------------------------
    def open_artifact(
        self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
    ) -> ArtifactResponse:
        """Stream the artifact from byte ``start`` (to ``stop``, exclusive, if given) with a Range; a
        server may answer 200 (the whole body) or a longer range instead: the caller reads what it needs.
        ``read_timeout`` lowers the socket timeouts (connect and each read) below their defaults: a
        caller near its deadline does not leave a thread blocked for a full minute."""
        bound = READ_TIMEOUT if read_timeout is None else max(0.001, read_timeout)
        last = "" if stop is None else str(stop - 1)
        headers = {"Range": f"bytes={start}-{last}"} if start or stop is not None else {}
        try:
            response = guarded_get(
                self._session,
                url,
                self._artifact_urls,
                resolve=self._resolve,
                headers=headers,
                stream=True,
                timeout=(min(CONNECT_TIMEOUT, bound), min(READ_TIMEOUT, bound)),
            )
        except UrlRefused as refused:
            raise ArtifactUrlRefused(f"artifact URL refused: {refused}") from None
        except requests.RequestException as exc:
            raise BuildPixelUnavailable(f"{type(exc).__name__} connecting to {host_of(url)}") from None
        if response.status_code in (401, 403, 404, 410):
            response.close()
            raise ArtifactUrlExpired(f"the artifact URL was refused ({response.status_code})")
        if response.status_code >= 500 or response.status_code == 429:
            response.close()
            raise BuildPixelUnavailable(f"the artifact host answered {response.status_code}")
        if response.status_code not in (200, 206):
            response.close()
            raise BuildPixelRefused(response.status_code, "unexpected_status", "artifact download refused")
        body_start = range_start_of(response) if response.status_code == 206 else 0
        return ArtifactResponse(
            start=body_start,
            total_size=total_size_of(response, body_start),
            chunks=self._chunks(response, url),
            close=response.close,
        )

    @staticmethod
    def _chunks(response: requests.Response, url: str) -> Iterator[bytes]:
        try:
            yield from response.iter_content(chunk_size=STREAM_CHUNK)
        except (requests.RequestException, OSError) as exc:
            raise BuildPixelUnavailable(
                f"{type(exc).__name__} while downloading from {host_of(url)}"
            ) from None
        finally:
            response.close()

    def _wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._sleep(seconds)


def session_with_pool() -> requests.Session:
    """A plain session (no automatic retries: the use case decides, and resumes by Range)."""
    session = requests.Session()
    session.headers["User-Agent"] = "PixelBridge/1 (+fetch)"
    return session
