"""BuildPixel webhook signatures: sha256=<hex HMAC-SHA256(raw body, secret)>, constant-time compare."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pixelbridge.domain.signatures import sign, signature_valid

SECRET = "whsec_0123456789abcdef"
BODY = b'{"type":"build.complete","data":{"build":{"id":"b1"}}}'


def reference_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_sign_matches_the_documented_scheme() -> None:
    assert sign(BODY, SECRET) == reference_signature(BODY, SECRET)


def test_good_signature_verifies() -> None:
    assert signature_valid(BODY, reference_signature(BODY, SECRET), SECRET)


def test_uppercase_hex_and_surrounding_spaces_verify() -> None:
    digest = reference_signature(BODY, SECRET).removeprefix("sha256=")
    assert signature_valid(BODY, f"  sha256={digest.upper()} ", SECRET)


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha256=00"])
def test_missing_or_empty_signature_fails(header: str | None) -> None:
    assert not signature_valid(BODY, header, SECRET)


def test_wrong_secret_fails() -> None:
    assert not signature_valid(BODY, reference_signature(BODY, "another-secret"), SECRET)


def test_tampered_body_fails() -> None:
    signature = reference_signature(BODY, SECRET)
    assert not signature_valid(BODY.replace(b"b1", b"b2"), signature, SECRET)
    assert not signature_valid(BODY + b" ", signature, SECRET)  # re-serialised JSON is another body


@pytest.mark.parametrize("prefix", ["sha1=", "SHA256=", "", "sha512=", "v1,"])
def test_wrong_prefix_fails(prefix: str) -> None:
    digest = reference_signature(BODY, SECRET).removeprefix("sha256=")
    assert not signature_valid(BODY, prefix + digest, SECRET)


def test_empty_secret_never_verifies() -> None:
    assert not signature_valid(BODY, reference_signature(BODY, ""), "")


def test_non_ascii_header_fails_instead_of_raising() -> None:
    assert not signature_valid(BODY, "sha256=é" * 8, SECRET)
