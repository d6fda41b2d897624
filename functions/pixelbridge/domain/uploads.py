"""A multipart upload that outlives one invocation: what a continued download needs to carry on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UploadState:
    """Its key, upload id, part size and the ETags of parts 1..n (n = ``len(etags)``), in order."""

    key: str
    upload_id: str
    part_size: int
    etags: tuple[str, ...]
