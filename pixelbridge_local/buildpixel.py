"""What BuildPixel sends: the custom-deploy multipart request, built with requests-toolbelt."""

from __future__ import annotations

import json
from typing import Any

from requests_toolbelt.multipart.encoder import MultipartEncoder


def encode_custom_deploy(
    metadata: dict[str, Any], artifact: bytes, *, boundary: str | None = None
) -> tuple[bytes, str]:
    """(body, content type) exactly as BuildPixel's custom deploy: metadata JSON first, then the tarball."""
    encoder = MultipartEncoder(
        fields=[
            ("metadata", ("", json.dumps(metadata), "application/json")),
            ("artifact", (f"{metadata.get('buildId', 'build')}.tar.gz", artifact, "application/gzip")),
        ],
        boundary=boundary,
    )
    return encoder.to_string(), encoder.content_type


def sample_metadata(build_id: str, **overrides: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "buildId": build_id,
        "projectId": "665a2b3c4d5e6f7a8b9c0e10",
        "platform": "Win64",
        "buildType": "Development",
        "ueVersion": "5.4",
        "branch": "main",
        "commit": "a1b2c3d4e5f6",
    }
    metadata.update(overrides)
    return metadata
