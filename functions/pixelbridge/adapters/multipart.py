"""BuildPixel's custom-deploy multipart body: a ``metadata`` JSON part and an ``artifact`` part.

requests-toolbelt's decoder does the parsing; this module only finds the two parts by name and
turns every way a body can be malformed into one error with a stable code.
"""

from __future__ import annotations

from email.message import Message

from requests_toolbelt.multipart.decoder import (
    ImproperBodyPartContentException,
    MultipartDecoder,
    NonMultipartContentTypeException,
)

from pixelbridge.ports import BuildUpload, MultipartError, NotMultipart

__all__ = ["BuildUpload", "MultipartError", "NotMultipart", "parse_build_upload"]

GZIP_MAGIC = b"\x1f\x8b"


def require_multipart_boundary(content_type: str | None) -> str:
    """The boundary of a ``multipart/form-data`` content type, or NotMultipart."""
    if not content_type:
        raise NotMultipart(
            "unsupported_media_type", "Content-Type must be multipart/form-data with a boundary"
        )
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise NotMultipart(
            "unsupported_media_type", "Content-Type must be multipart/form-data with a boundary"
        )
    return boundary


def _part_name_and_filename(disposition: str) -> tuple[str | None, str | None]:
    message = Message()
    message["content-disposition"] = disposition
    name = message.get_param("name", header="content-disposition")
    filename = message.get_param("filename", header="content-disposition")
    return (name if isinstance(name, str) else None, filename if isinstance(filename, str) else None)


def parse_build_upload(body: bytes, content_type: str | None) -> BuildUpload:
    """Split a custom-deploy body into its parts; the artifact must look like gzip."""
    boundary = require_multipart_boundary(content_type)
    # Without the close delimiter the body was cut off in transit: the artifact may be truncated too.
    if b"--" + boundary.encode("utf-8", "replace") + b"--" not in body:
        raise MultipartError(
            "malformed_multipart", "the multipart body has no closing boundary (truncated upload?)"
        )
    try:
        decoder = MultipartDecoder(body, content_type or "")
    except (
        ImproperBodyPartContentException,
        NonMultipartContentTypeException,
        ValueError,
        IndexError,
    ) as exc:
        raise MultipartError("malformed_multipart", f"the multipart body cannot be parsed: {exc}") from exc
    parts: dict[str, tuple[bytes, str | None]] = {}
    for part in decoder.parts:
        raw_disposition = part.headers.get(b"Content-Disposition", b"")
        name, filename = _part_name_and_filename(raw_disposition.decode("utf-8", "replace"))
        if name is None:
            continue
        if name in parts:
            raise MultipartError("duplicate_part", f"the multipart body has more than one '{name}' part")
        parts[name] = (part.content, filename)
    if "metadata" not in parts:
        raise MultipartError("missing_metadata", "the multipart body has no 'metadata' part")
    if "artifact" not in parts:
        raise MultipartError("missing_artifact", "the multipart body has no 'artifact' part")
    artifact, filename = parts["artifact"]
    if not artifact.startswith(GZIP_MAGIC):
        raise MultipartError("artifact_not_gzip", "the 'artifact' part is not a gzip file (.tar.gz expected)")
    return BuildUpload(metadata_json=parts["metadata"][0], artifact=artifact, artifact_filename=filename)
