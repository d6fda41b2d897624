"""Hostile webhook bodies and Hypothesis fuzzing of every parser that reads attacker-controlled bytes.

Properties (bounded by the ``ci`` Hypothesis profile; ``HYPOTHESIS_PROFILE=long`` for a soak):
* ``require_multipart_boundary`` / ``parse_build_upload`` raise nothing but ``MultipartError``;
* the BuildPixel webhook (signed, so the fuzz signs every body) and the Streampixel webhook handlers
  answer every body with a JSON response (2xx, or 4xx ``{"error", "message"}``), never an exception;
* the BuildPixel envelope parsers raise nothing but ``RequestRejected``;
* the tar→zip converter, fed arbitrary member names/types or mutated gzip bytes, either converts to a
  zip whose names are all safe and relative, or raises ``ArchiveRejected`` (never another error).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pixelbridge.adapters.multipart import MultipartError, parse_build_upload, require_multipart_boundary
from pixelbridge.convert.pipeline import ConversionLimits, convert_targz_to_zip
from pixelbridge.domain.errors import ArchiveRejected, Invalid
from pixelbridge.domain.signatures import sign
from pixelbridge.usecases.ingest_webhook import (
    BUILD_COMPLETE,
    metadata_from_event,
    parse_build_event,
    parse_envelope,
)
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from tests.hardening.conftest import Figures
from tests.support.archives import build_targz, file, gzip_bytes
from tests.support.aws import STREAMPIXEL_PROJECT, MotoAccount, moto_account

SIGNING_SECRET = "whsec_hardening_" + "7" * 24
TOKEN = "k" * 40
FILE_URL = f"https://downloads.example.test/dl/{TOKEN}/wb1.zip"
CREATED_AT_ISO = "2026-05-01T10:00:00.000Z"
CREATED_AT = datetime.fromisoformat(CREATED_AT_ISO.replace("Z", "+00:00")).timestamp()


class StartRecorder:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, build_id: str) -> None:
        self.started.append(build_id)


@pytest.fixture(scope="module")
def account() -> Iterator[MotoAccount]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        moto_account(monkeypatch) as moto,
        contextlib.ExitStack() as stack,
    ):
        from pixelbridge import wiring

        secret = {**moto.secrets["BuildPixelSecret"], "webhookSigningSecret": SIGNING_SECRET}
        moto.client("secretsmanager").put_secret_value(
            SecretId=moto.names["BuildPixelSecret"], SecretString=json.dumps(secret)
        )
        moto.secrets["BuildPixelSecret"] = secret
        wiring.reset()
        # Signed webhooks are judged against their createdAt: a fixed clock at the corpus' timestamp.
        stack.enter_context(
            wiring.override(wiring.Overrides(fetch_starter=StartRecorder(), clock=lambda: CREATED_AT))
        )
        wiring.builds().create(
            {
                "buildId": "wb1",
                "status": "processing",
                "route": "default",
                "release": {
                    "streampixelProjectId": STREAMPIXEL_PROJECT,
                    "policy": "auto",
                    "account": "default",
                },
                "zipKey": f"dl/{TOKEN}/wb1.zip",
                "handoffToken": TOKEN,
                "zipUrl": FILE_URL,
                "uploadId": "665a2b3c4d5e6f7a8b9c0e1f",
            },
            event="received",
        )
        yield moto


def call(
    handler_module: str, path: str, body: bytes, headers: dict[str, str], *, text: bool = False
) -> tuple[int, Any]:
    """One Function URL request through the real handler; any exception fails the test (a crash)."""
    from pixelbridge.handlers import ingest, streampixel_webhook

    handler = {"ingest": ingest.handler, "streampixel": streampixel_webhook.handler}[handler_module]
    event = function_url_event("POST", path, body=body, headers=headers)
    if text and body:
        with contextlib.suppress(
            UnicodeDecodeError
        ):  # Function URLs pass JSON bodies as text when they decode
            event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
    response = handler(event, FakeLambdaContext("IngestFunction"))
    answer = json.loads(response["body"])
    assert isinstance(answer, dict)
    if response["statusCode"] >= 400:
        assert set(answer) >= {"error", "message"}, answer
    return response["statusCode"], answer


def buildpixel(body: bytes, *, signed: bool = True, text: bool = False) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-BuildPixel-Signature"] = sign(body, SIGNING_SECRET)
    return call("ingest", "/webhooks/buildpixel", body, headers, text=text)


def streampixel(
    account: MotoAccount, body: bytes, *, secret: str | None = None, text: bool = True
) -> tuple[int, Any]:
    path_secret = secret if secret is not None else account.secrets["StreampixelWebhookSecret"]["pathSecret"]
    return call(
        "streampixel",
        f"/webhooks/streampixel/{path_secret}",
        body,
        {"Content-Type": "application/json"},
        text=text,
    )


def envelope(event_type: str = BUILD_COMPLETE, build_id: str = "wbp1", **build: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "createdAt": CREATED_AT_ISO,
        "organizationId": "664f00aa11bb22cc33dd44ee",
        "data": {
            "build": {
                "id": build_id,
                "status": "complete",
                "platform": "Win64",
                "artifactUrl": "https://x/y",
                **build,
            },
            "project": {"id": "665a2b3c4d5e6f7a8b9c0e10", "name": "Demo"},
        },
    }


# -- explicit corpus -----------------------------------------------------------------------------------

BUILDPIXEL_CASES: dict[str, tuple[bytes, int, str | None]] = {
    "not JSON": (b"<xml>nope</xml>", 400, "invalid_webhook"),
    "not UTF-8": (b"\xff\xfe\x00{", 400, "invalid_webhook"),
    "JSON array": (b"[1,2,3]", 400, "invalid_webhook"),
    "type is a number": (json.dumps({**envelope(), "type": 7}).encode(), 400, "invalid_webhook"),
    "data is a list": (json.dumps({**envelope(), "data": []}).encode(), 400, "invalid_webhook"),
    "build id is a number": (json.dumps(envelope(build_id=12)).encode(), 400, "invalid_webhook"),  # type: ignore[arg-type]
    "build id traversal": (json.dumps(envelope(build_id="../../x")).encode(), 400, "invalid_webhook"),
    "durationMs is text": (json.dumps(envelope(durationMs="long")).encode(), 400, "invalid_webhook"),
    "platform 10k chars": (json.dumps(envelope(platform="W" * 10_000)).encode(), 400, "invalid_webhook"),
    "nested 100k deep": (
        b'{"type":"build.complete","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        "invalid_webhook",
    ),
    "300 KiB body": (json.dumps({**envelope(), "pad": "x" * 300_000}).encode(), 413, "payload_too_large"),
    "unknown event type": (json.dumps(envelope("build.exploded")).encode(), 200, None),
    "event type 5 KiB": (json.dumps(envelope("t" * 5000)).encode(), 200, None),
    "build.failed for an unknown build": (json.dumps(envelope("build.failed", "nobody")).encode(), 200, None),
}


@pytest.mark.parametrize("case", sorted(BUILDPIXEL_CASES))
def test_hostile_buildpixel_webhook_bodies(account: MotoAccount, figures: Figures, case: str) -> None:
    body, status, error = BUILDPIXEL_CASES[case]
    figures.add("inputs tried: webhook bodies")
    answered, answer = buildpixel(body)
    assert answered == status, answer
    if error:
        assert answer["error"] == error
    else:
        assert answer.get("ignored") is True
    assert len(json.dumps(answer)) < 2000  # nothing huge echoed back


def test_unsigned_hostile_bodies_are_401_before_parsing(account: MotoAccount) -> None:
    for body in (b"[" * 100_000, b"\xff", json.dumps(envelope()).encode()):
        assert buildpixel(body, signed=False)[0] == 401


STREAMPIXEL_CASES: dict[str, tuple[bytes, int, str | None]] = {
    "not JSON": (b"definitely not json", 400, "invalid_json"),
    "not UTF-8": (b"\xff\xfe\xfa", 400, "invalid_json"),
    "JSON string": (b'"build.approved"', 400, "invalid_json"),
    "nested 30k deep": (b"[" * 30_000 + b"]" * 30_000, 400, "invalid_json"),
    "100 KiB body": (
        json.dumps({"event": "build.approved", "pad": "x" * 100_000}).encode(),
        413,
        "payload_too_large",
    ),
    "unknown event": (
        json.dumps({"event": "build.exploded", "uploadId": "665a2b3c4d5e6f7a8b9c0e1f"}).encode(),
        200,
        None,
    ),
    "event is an object": (json.dumps({"event": {"x": 1}, "uploadId": ["a"]}).encode(), 200, None),
    "uploadId is a list": (json.dumps({"event": "build.approved", "uploadId": [1, 2]}).encode(), 200, None),
    "forged: right uploadId, other project": (
        json.dumps(
            {"event": "build.rejected", "uploadId": "665a2b3c4d5e6f7a8b9c0e1f", "projectId": "f" * 24}
        ).encode(),
        200,
        None,
    ),
    "fileUrl of another token": (
        json.dumps({"event": "build.rejected", "fileUrl": FILE_URL.replace(TOKEN, "z" * 40)}).encode(),
        200,
        None,
    ),
    "webhook.test": (json.dumps({"event": "webhook.test"}).encode(), 200, None),
}


@pytest.mark.parametrize("case", sorted(STREAMPIXEL_CASES))
def test_hostile_streampixel_webhook_bodies(account: MotoAccount, figures: Figures, case: str) -> None:
    body, status, error = STREAMPIXEL_CASES[case]
    figures.add("inputs tried: webhook bodies")
    answered, answer = streampixel(account, body)
    assert answered == status, answer
    if error:
        assert answer["error"] == error
    else:
        assert answer == {"received": True, "matched": False}
    record = account_record("wb1")
    assert record["status"] == "processing"  # nothing above may move the known build


def test_streampixel_wrong_secret_is_404_whatever_the_body(account: MotoAccount) -> None:
    secret = account.secrets["StreampixelWebhookSecret"]["pathSecret"]
    for wrong in (
        "x",
        secret[:-1],
        secret + "x",
        secret.upper() if secret.upper() != secret else "Y" + secret,
    ):
        for body in (b"[" * 50_000, b"x" * 200_000, json.dumps({"event": "build.approved"}).encode()):
            status, answer = streampixel(account, body, secret=wrong)
            assert (status, answer["error"]) == (404, "not_found")
            assert secret not in json.dumps(answer)


def account_record(build_id: str) -> dict[str, Any]:
    from pixelbridge import wiring

    found = wiring.builds().get(build_id)
    assert found is not None
    return found


# -- fuzzing -------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
BOUNDARIES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=30)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(BOUNDARIES.filter(lambda b: '"' not in b and "\\" not in b))
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(["metadata", "artifact", "other", ""]) | st.text(max_size=10))
        headers = draw(
            st.lists(st.text(max_size=30).map(lambda h: h.replace("\r", "").replace("\n", "")), max_size=2)
        )
        content = draw(
            st.binary(max_size=200)
            | st.just(gzip_bytes(b"x"))
            | JSON.map(lambda value: json.dumps(value).encode())
            | st.just(f"\r\n--{boundary}\r\n".encode())
        )
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n' + "".join(
            h + "\r\n" for h in headers
        )
        parts.append(head.encode("utf-8", "surrogatepass") + b"\r\n" + content + b"\r\n")
    body = b"".join(parts) + draw(st.sampled_from([f"--{boundary}--\r\n".encode(), b"", b"--"]))
    if draw(st.booleans()):
        cut = draw(st.integers(0, max(len(body), 0)))
        body = body[:cut] + draw(st.binary(max_size=20)) + body[cut:]
    content_type = draw(
        st.sampled_from(
            [f"multipart/form-data; boundary={boundary}", f'multipart/form-data; boundary="{boundary}"']
        )
        | st.text(max_size=60)
    )
    return body, content_type


@given(content_type=st.none() | st.text(max_size=120))
def test_fuzz_require_multipart_boundary(content_type: str | None) -> None:
    try:
        boundary = require_multipart_boundary(content_type)
    except MultipartError as error:
        assert error.code == "unsupported_media_type"
    else:
        assert isinstance(boundary, str) and boundary


@example(body_and_type=(b"--a\r\n\r\n\r\n--a--", "multipart/form-data; boundary=a"))
@given(
    body_and_type=multipart_bodies()
    | st.tuples(st.binary(max_size=300), st.just("multipart/form-data; boundary=a"))
)
def test_fuzz_parse_build_upload(body_and_type: tuple[bytes, str]) -> None:
    FUZZ_COUNT["multipart"] += 1
    body, content_type = body_and_type
    try:
        upload = parse_build_upload(body, content_type)
    except MultipartError as error:
        assert error.code and error.message
    else:
        assert upload.artifact.startswith(b"\x1f\x8b")


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = envelope(
        draw(st.sampled_from([BUILD_COMPLETE, "build.failed", "build.superseded"]))
    )
    build = document["data"]["build"]
    for key in draw(
        st.lists(st.sampled_from(["id", "platform", "buildType", "branch", "durationMs", "artifactUrl"]))
    ):
        build[key] = draw(JSON)
    if draw(st.booleans()):
        document["data"]["project"] = draw(JSON)
    if draw(st.booleans()):
        document["data"] = draw(JSON)
    return document


@given(document=envelopes() | JSON)
def test_fuzz_buildpixel_envelope_parsers(document: Any) -> None:
    FUZZ_COUNT["buildpixel envelope"] += 1
    body = json.dumps(document).encode()
    try:
        parsed = parse_envelope(body)
        if parsed["type"] == BUILD_COMPLETE:
            metadata_from_event(parse_build_event(parsed))
    except Invalid as rejected:
        assert rejected.code == "invalid_webhook"


@given(document=envelopes() | JSON, text=st.booleans())
def test_fuzz_buildpixel_webhook_handler(account: MotoAccount, document: Any, text: bool) -> None:
    FUZZ_COUNT["buildpixel webhook handler"] += 1
    status, _ = buildpixel(json.dumps(document).encode(), text=text)
    assert status in {200, 202, 400, 401, 409}  # 401: no createdAt; 409: Hypothesis sent the same body again


@st.composite
def streampixel_events(draw: st.DrawFn) -> Any:
    fields = {
        "event": st.sampled_from(
            ["build.uploaded", "build.extracting", "build.approved", "build.rejected", "webhook.test"]
        )
        | JSON,
        # Never the build's uploadId: a known uploadId without a projectId is a legitimate match.
        "uploadId": st.sampled_from(["665a2b3c4d5e6f7a8b9c0e20", "nope"]) | JSON,
        "fileUrl": st.sampled_from([FILE_URL.replace(TOKEN, "q" * 40), "not a url"]) | JSON,
        "projectId": st.sampled_from(["f" * 24]) | JSON,  # never the build's project: nothing may match
        "status": JSON,
        "objection": JSON,
        "timestamp": JSON,
    }
    keys = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
    return {key: draw(fields[key]) for key in keys}


@given(document=streampixel_events() | JSON)
def test_fuzz_streampixel_webhook_handler(account: MotoAccount, document: Any) -> None:
    FUZZ_COUNT["streampixel webhook handler"] += 1
    status, answer = streampixel(account, json.dumps(document).encode())
    assert status in {200, 400}
    if status == 200:
        assert answer["matched"] is False  # unknown ids or a wrong projectId: a forged event never matches
    assert account_record("wb1")["status"] == "processing"


NAME_PARTS = st.sampled_from(
    ["..", ".", "", "Windows", "a", "CON", "nul.txt", "x.", "x ", "a:b", "C:", "\\", "é", "ß", "SS"]
)
NAMES = st.lists(NAME_PARTS | st.text(max_size=6), min_size=1, max_size=4).map("/".join)
KINDS = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, b"Z"]
)


class MemorySink(io.BytesIO):
    def hold_from(self, offset: int) -> None:
        """BytesIO keeps every byte patchable."""

    def release_hold(self) -> None:
        """Nothing to release."""


def assert_converts_safely_or_rejects(targz: bytes) -> None:
    sink = MemorySink()
    try:
        convert_targz_to_zip(io.BytesIO(targz), sink, ConversionLimits(max_total_bytes=8 * 1024 * 1024))
    except ArchiveRejected as rejected:
        assert rejected.reason
        return
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as archive:
        assert archive.testzip() is None
        for name in archive.namelist():
            parts = name.rstrip("/").split("/")
            assert not name.startswith("/") and ".." not in parts and "\\" not in name and ":" not in name


@st.composite
def hostile_tars(draw: st.DrawFn) -> bytes:
    out = io.BytesIO()
    with tarfile.open(
        fileobj=out, mode="w", format=draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
    ) as tar:
        for index in range(draw(st.integers(0, 6))):
            member = tarfile.TarInfo(draw(NAMES) if index else "Windows/Game.exe")
            member.type = draw(KINDS) if index else tarfile.REGTYPE
            member.linkname = draw(NAMES) if member.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            data = draw(st.binary(max_size=600)) if member.type == tarfile.REGTYPE else b""
            member.size = len(data)
            try:
                tar.addfile(member, io.BytesIO(data))
            except (ValueError, UnicodeError):  # tarfile refuses to *write* some names: not our input
                continue
    return gzip_bytes(out.getvalue())


@given(targz=hostile_tars())
def test_fuzz_converter_hostile_member_trees(targz: bytes) -> None:
    FUZZ_COUNT["converter trees"] += 1
    assert_converts_safely_or_rejects(targz)


SEED_ARCHIVE = build_targz([file("Windows/Game.exe", b"MZ" * 100), file("Windows/data.txt", b"hello " * 300)])


@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(SEED_ARCHIVE) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    cut=st.none() | st.integers(0, len(SEED_ARCHIVE)),
    tail=st.binary(max_size=16),
)
def test_fuzz_converter_mutated_gzip(edits: list[tuple[int, int]], cut: int | None, tail: bytes) -> None:
    FUZZ_COUNT["converter mutations"] += 1
    data = bytearray(SEED_ARCHIVE)
    for offset, value in edits:
        data[offset] = value
    assert_converts_safely_or_rejects(bytes(data[:cut]) + tail)


FUZZ_COUNT: dict[str, int] = {}
for _name in (
    "multipart",
    "buildpixel envelope",
    "buildpixel webhook handler",
    "streampixel webhook handler",
    "converter trees",
    "converter mutations",
):
    FUZZ_COUNT[_name] = 0


@pytest.fixture(scope="module", autouse=True)
def _report_fuzz_counts(figures: Figures) -> Iterator[None]:
    yield
    for name, count in FUZZ_COUNT.items():
        figures.add(f"inputs tried: fuzz {name}", count)
