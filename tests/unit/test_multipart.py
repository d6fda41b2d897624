from __future__ import annotations

import gzip

import pytest

from pixelbridge.adapters.multipart import (
    MultipartError,
    NotMultipart,
    parse_build_upload,
    require_multipart_boundary,
)
from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata

ARTIFACT = gzip.compress(b"tar bytes")


def test_parses_buildpixel_body() -> None:
    body, content_type = encode_custom_deploy(sample_metadata("b1"), ARTIFACT)
    upload = parse_build_upload(body, content_type)
    assert upload.artifact == ARTIFACT
    assert b'"buildId": "b1"' in upload.metadata_json
    assert upload.artifact_filename == "b1.tar.gz"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "multipart/form-data",
        "multipart/mixed; boundary=x",
        "text/plain; boundary=x",
    ],
)
def test_not_multipart_form_data_with_boundary(content_type: str | None) -> None:
    with pytest.raises(NotMultipart):
        require_multipart_boundary(content_type)


def test_quoted_boundary_is_accepted() -> None:
    assert require_multipart_boundary('multipart/form-data; boundary="a b"') == "a b"


def raw_body(parts: list[tuple[str, str, bytes]], boundary: str = "XyZ", close: bool = True) -> bytes:
    chunks = []
    for disposition, content_type, content in parts:
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(chunks) + (f"--{boundary}--\r\n".encode() if close else b"")


META = ('form-data; name="metadata"', "application/json", b'{"buildId":"b1"}')
ART = ('form-data; name="artifact"; filename="b1.tar.gz"', "application/gzip", ARTIFACT)


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ([ART], "missing_metadata"),
        ([META], "missing_artifact"),
        ([META, ART, META], "duplicate_part"),
        ([META, ('form-data; name="artifact"', "application/gzip", b"PK\x03\x04 zip")], "artifact_not_gzip"),
        ([META, ('form-data; name="artifact"', "application/gzip", b"")], "artifact_not_gzip"),
    ],
)
def test_bad_parts(parts: list[tuple[str, str, bytes]], code: str) -> None:
    with pytest.raises(MultipartError) as info:
        parse_build_upload(raw_body(parts), "multipart/form-data; boundary=XyZ")
    assert info.value.code == code


def test_body_with_another_boundary_has_no_parts() -> None:
    with pytest.raises(MultipartError) as info:
        parse_build_upload(raw_body([META, ART], boundary="other"), "multipart/form-data; boundary=XyZ")
    assert info.value.code in {"malformed_multipart", "missing_metadata"}


def test_garbage_body_is_a_clear_error() -> None:
    with pytest.raises(MultipartError):
        parse_build_upload(b"\x00\x01garbage", "multipart/form-data; boundary=XyZ")
