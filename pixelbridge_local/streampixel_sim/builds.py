"""The checks Streampixel runs on an uploaded build, and the webhook envelope it sends about it."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

import requests

from pixelbridge_local.streampixel_sim.contract import (
    DOWNLOAD_TIMEOUT,
    EVENT_STATUS,
    OBJECTION_CORRUPT_ZIP,
    OBJECTION_DOWNLOAD_FAILED,
    OBJECTION_MISSING_EXE,
    BuildRejected,
)


def envelope(
    event: str, project_id: str, upload_id: str | None, file_url: str | None, objection: str | None
) -> dict[str, Any]:
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event": event,
        "projectId": project_id,
        "uploadId": upload_id,
        "fileUrl": file_url,
        "status": EVENT_STATUS[event],
        "objection": objection,
        "timestamp": timestamp,
    }


def download(file_url: str, into: IO[bytes]) -> None:
    """Stream the zip into ``into`` (GET, no auth); any failure rejects the build.

    Direct downloads only, as Streampixel documents: a redirect or an HTML page is a failure.
    """
    try:
        with requests.get(file_url, stream=True, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False) as response:
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if response.status_code != 200 or content_type == "text/html":
                raise BuildRejected(OBJECTION_DOWNLOAD_FAILED)
            for chunk in response.iter_content(chunk_size=1 << 20):
                into.write(chunk)
    except requests.RequestException:
        raise BuildRejected(OBJECTION_DOWNLOAD_FAILED) from None
    into.seek(0)


def check_build_archive(archive: IO[bytes]) -> None:
    """Reject unless it is a readable zip (every entry CRC-checked) with a Windows executable on top."""
    try:
        with zipfile.ZipFile(archive) as zip_file:
            first_bad_entry = zip_file.testzip()
            names = zip_file.namelist()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError):
        raise BuildRejected(OBJECTION_CORRUPT_ZIP) from None
    if first_bad_entry is not None:
        raise BuildRejected(OBJECTION_CORRUPT_ZIP)
    if not has_top_level_executable(names):
        raise BuildRejected(OBJECTION_MISSING_EXE)


def has_top_level_executable(names: Iterable[str]) -> bool:
    """An ``.exe`` at the root, or directly inside the single top-level folder (``Windows/Game.exe``)."""
    paths = [name.replace("\\", "/").lstrip("/") for name in names]
    files = [path for path in paths if path and not path.endswith("/")]
    if any("/" not in path and path.lower().endswith(".exe") for path in files):
        return True
    top_levels = {path.split("/", 1)[0] for path in paths if path}
    return len(top_levels) == 1 and any(
        path.count("/") == 1 and path.lower().endswith(".exe") for path in files
    )
