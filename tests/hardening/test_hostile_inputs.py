"""Hostile input corpus through the real handlers (moto): push → ConvertFunction → build record.

Every input is generated here (no committed binaries) and has one asserted outcome:
* the push is refused with a clear 4xx ``{"error", "message"}`` and nothing is stored, or
* the push is accepted and the build ends ``failed`` with a specific reason (no zip published, no
  release started, no multipart upload left behind), or
* the build is accepted with a sanitised result (normalised names, ignored extras) and converts.
No input may crash a handler (an unhandled exception) or leave a build in a non-terminal state.

Member-level rules are unit-tested in ``tests/unit/convert``; this corpus proves the same inputs reach
the build record correctly through the push path, including the S3 hop and the multipart re-parse.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from tests.hardening.conftest import Figures
from tests.hardening.hostile_archives import (
    SPARSE_MAP_ENTRIES,
    deep_name_archive,
    named_archive,
    pax_sparse_10_archive,
)
from tests.support.archives import Member, build_tar, build_targz, directory, file, gzip_bytes
from tests.support.aws import MotoAccount, add_release_stub, moto_account

EXE = file("Windows/Game.exe", b"MZ" + b"\x00" * 64)
TERMINAL = {"failed", "skipped", "rejected", "superseded", "live"}
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def account() -> Iterator[MotoAccount]:
    """One moto account for the whole corpus (each case uses its own build id): setup is ~2 s."""
    # A 64 MiB expansion cap keeps the gzip-bomb case fast; every other limit is the template default.
    with pytest.MonkeyPatch.context() as monkeypatch, moto_account(monkeypatch) as moto:
        monkeypatch.setenv("CONVERT_MAX_TOTAL_BYTES", str(64 * MiB))
        add_release_stub(moto, monkeypatch)
        yield moto


def call_ingest(body: bytes, headers: dict[str, str], path: str = "/builds/upload") -> tuple[int, Any]:
    from pixelbridge.handlers import ingest

    response = ingest.handler(
        function_url_event("POST", path, body=body, headers=headers), FakeLambdaContext("IngestFunction")
    )
    return response["statusCode"], json.loads(response["body"])


def record(build_id: str) -> dict[str, Any] | None:
    from pixelbridge import wiring

    return wiring.builds().get(build_id)


def convert_key(account: MotoAccount, key: str) -> dict[str, Any]:
    from pixelbridge.handlers import convert

    bucket = account.names["ArtifactBucket"]
    event = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "etag": "e1"}},
    }
    result: dict[str, Any] = convert.handler(event, FakeLambdaContext("ConvertFunction"))
    return result


def executions(account: MotoAccount, build_id: str) -> list[str]:
    arn = account.names["ReleaseStateMachine"]
    listed = account.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    return [e["name"] for e in listed if e["name"] == build_id]


def case_id(case: str) -> str:
    """A valid, unique build id per corpus case."""
    return "c" + hashlib.sha256(case.encode()).hexdigest()[:16]


# -- multipart bodies ---------------------------------------------------------------------------------

BOUNDARY = "hb0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
GOOD_ARTIFACT = build_targz([EXE])


def part(
    name: str, content: bytes, *, filename: str | None = None, extra: str = "", ctype: str = ""
) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    content_type = ctype or ("application/json" if name == "metadata" else "application/gzip")
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}Content-Type: {content_type}\r\n\r\n"
    )
    return head.encode("utf-8") + content + b"\r\n"


def meta(build_id: str = "{ID}", **overrides: Any) -> bytes:
    return json.dumps(sample_metadata(build_id, **overrides)).encode()


CLOSE = f"--{BOUNDARY}--\r\n".encode()
ART = part("artifact", GOOD_ARTIFACT, filename="b.tar.gz")


def meta_with(raw_member: str) -> bytes:
    """Valid metadata plus one raw JSON member (for values ``json.dumps`` would not write)."""
    return meta()[:-1] + b", " + raw_member.encode() + b"}"


def metadata_push(metadata: bytes) -> bytes:
    return part("metadata", metadata) + ART + CLOSE


@dataclass(frozen=True)
class Refused:
    status: int
    error: str


INVALID_METADATA = Refused(400, "invalid_metadata")


# Outcome: Refused (4xx, nothing stored), a str (accepted; the conversion fails with that reason), or None
# (accepted, sanitised, converts). "{ID}" in a body is replaced by the case's build id.
MULTIPART_CASES: dict[str, tuple[bytes, str, Refused | str | None]] = {
    # issue 13 item 6: metadata is bounded before it is stored (these crashed the handler: 502)
    "metadata with a 420 KB extra field": (
        metadata_push(meta(notes="x" * 420_000)),
        CONTENT_TYPE,
        INVALID_METADATA,
    ),
    "metadata just over 16 KB": (metadata_push(meta(notes="x" * 16_384)), CONTENT_TYPE, INVALID_METADATA),
    "metadata NaN": (metadata_push(meta_with('"score": NaN')), CONTENT_TYPE, INVALID_METADATA),
    "metadata Infinity": (metadata_push(meta_with('"score": -Infinity')), CONTENT_TYPE, INVALID_METADATA),
    "metadata 1e400": (metadata_push(meta_with('"score": 1e400')), CONTENT_TYPE, INVALID_METADATA),
    "metadata 1e200 (beyond DynamoDB)": (
        metadata_push(meta_with('"score": 1e200')),
        CONTENT_TYPE,
        INVALID_METADATA,
    ),
    "metadata 5000-digit integer": (
        metadata_push(meta_with('"score": ' + "9" * 5000)),
        CONTENT_TYPE,
        INVALID_METADATA,
    ),
    "metadata nested 40 deep": (
        metadata_push(meta_with('"deep": ' + "[" * 40 + "]" * 40)),
        CONTENT_TYPE,
        INVALID_METADATA,
    ),
    "metadata nested 100000 deep": (
        metadata_push(meta_with('"deep": ' + "[" * 100_000 + "]" * 100_000)),
        CONTENT_TYPE,
        INVALID_METADATA,
    ),
    "missing metadata part": (ART + CLOSE, CONTENT_TYPE, Refused(400, "missing_metadata")),
    "missing artifact part": (
        part("metadata", meta()) + CLOSE,
        CONTENT_TYPE,
        Refused(400, "missing_artifact"),
    ),
    "duplicate metadata": (
        part("metadata", meta()) + part("metadata", meta()) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "duplicate_part"),
    ),
    "duplicate artifact": (
        part("metadata", meta()) + ART + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "duplicate_part"),
    ),
    "no closing boundary (truncated upload)": (
        part("metadata", meta()) + ART,
        CONTENT_TYPE,
        Refused(400, "malformed_multipart"),
    ),
    "artifact cut off mid-stream": (
        part("metadata", meta()) + part("artifact", GOOD_ARTIFACT[:40]),
        CONTENT_TYPE,
        Refused(400, "malformed_multipart"),
    ),
    "boundary line inside the artifact": (
        part("metadata", meta())
        + part("artifact", GOOD_ARTIFACT[:30] + f"\r\n--{BOUNDARY}\r\n".encode())
        + CLOSE,
        CONTENT_TYPE,
        "truncated or corrupt",  # the decoder ends the artifact at the boundary: a truncated gzip,
    ),
    "LF-only line endings": (
        (part("metadata", meta()) + ART + CLOSE).replace(b"\r\n", b"\n"),
        CONTENT_TYPE,
        Refused(400, "malformed_multipart"),
    ),
    "body with another boundary": (
        (part("metadata", meta()) + ART + CLOSE).replace(BOUNDARY.encode(), b"other"),
        CONTENT_TYPE,
        Refused(400, "malformed_multipart"),
    ),
    "metadata not JSON": (
        part("metadata", b"{not json") + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata JSON nested 100k deep": (
        part("metadata", b"[" * 100_000 + b"]" * 100_000) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata UTF-16": (
        part("metadata", json.dumps(sample_metadata("{ID}")).encode("utf-16")) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata Latin-1 bytes": (
        part("metadata", '{"buildId":"h\xe9","projectId":"p","platform":"Win64"}'.encode("latin-1"))
        + ART
        + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata buildId is a number": (
        part("metadata", json.dumps({**sample_metadata("x"), "buildId": 12}).encode()) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata platform is a list": (
        part("metadata", meta(platform=["Win64"])) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata branch 100k chars": (
        part("metadata", meta(branch="b" * 100_000)) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata buildId path traversal": (
        part("metadata", meta("../../etc")) + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "metadata is null": (
        part("metadata", b"null") + ART + CLOSE,
        CONTENT_TYPE,
        Refused(400, "invalid_metadata"),
    ),
    "artifact is a zip": (
        part("metadata", meta()) + part("artifact", b"PK\x03\x04" + b"\x00" * 100) + CLOSE,
        CONTENT_TYPE,
        Refused(400, "artifact_not_gzip"),
    ),
    "artifact is empty": (
        part("metadata", meta()) + part("artifact", b"") + CLOSE,
        CONTENT_TYPE,
        Refused(400, "artifact_not_gzip"),
    ),
    "content type is JSON": (
        part("metadata", meta()) + ART + CLOSE,
        "application/json",
        Refused(415, "unsupported_media_type"),
    ),
    "no boundary parameter": (
        part("metadata", meta()) + ART + CLOSE,
        "multipart/form-data",
        Refused(415, "unsupported_media_type"),
    ),
    "empty body": (b"", CONTENT_TYPE, Refused(400, "malformed_multipart")),
    "binary garbage": (bytes(range(256)) * 64, CONTENT_TYPE, Refused(400, "malformed_multipart")),
    # Accepted, sanitised: a wrong charset parameter is ignored, an oversized part header is ignored,
    # a part without a name is skipped. Each is still one build, converted normally.
    "charset parameter on the content type": (
        part("metadata", meta()) + ART + CLOSE,
        CONTENT_TYPE + "; charset=utf-16",
        None,
    ),
    "256 KiB part header": (
        part("metadata", meta(), extra="X-Pad: " + "a" * 256 * 1024 + "\r\n") + ART + CLOSE,
        CONTENT_TYPE,
        None,
    ),
    "unnamed extra part": (
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello\r\n".encode()
        + part("metadata", meta())
        + ART
        + CLOSE,
        CONTENT_TYPE,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(MULTIPART_CASES))
def test_hostile_multipart_bodies(account: MotoAccount, figures: Figures, case: str) -> None:
    template, content_type, refused = MULTIPART_CASES[case]
    build_id = case_id(case)
    body = template.replace(b"{ID}", build_id.encode())
    figures.add("inputs tried: multipart bodies")
    status, answer = call_ingest(
        body, {"Content-Type": content_type, "Authorization": account.upload_authorization}
    )
    if isinstance(refused, Refused):
        assert (status, answer.get("error")) == (refused.status, refused.error), answer
        assert set(answer) == {"error", "message"} and answer["message"]
        assert account.s3_keys("ArtifactBucket", f"inbox/push/{build_id}") == []
        assert record(build_id) is None
        return
    assert (status, answer["buildId"]) == (202, build_id), answer
    key = f"inbox/push/{build_id}.multipart"
    assert account.s3_keys("ArtifactBucket", key) == [key]
    result = convert_key(account, key)["results"][0]["result"]
    built = record(build_id)
    assert built is not None
    if isinstance(refused, str):
        assert (result, built["status"]) == ("failed", "failed") and refused in built["error"]
    else:
        assert (result, built["status"]) == ("converted", "converted"), built.get("error")


def test_metadata_strings_are_truncated_where_stored(account: MotoAccount) -> None:
    build_id = case_id("metadata long string")
    body = part("metadata", meta(build_id, notes="n" * 5000, nested={"deep": ["d" * 3000]})) + ART + CLOSE
    status, answer = call_ingest(
        body, {"Content-Type": CONTENT_TYPE, "Authorization": account.upload_authorization}
    )
    assert status == 202, answer
    built = record(build_id)
    assert built is not None
    stored = built["metadata"]
    assert stored["notes"] == "n" * 1023 + "…"
    assert stored["nested"] == {"deep": ["d" * 1023 + "…"]}
    assert stored["buildId"] == build_id


def test_push_errors_never_echo_the_authorization_or_the_metadata(account: MotoAccount) -> None:
    secret_like = "sk_live_" + "9" * 40
    body = part("metadata", meta("leak-check", branch=secret_like * 10)) + ART + CLOSE
    status, answer = call_ingest(
        body, {"Content-Type": CONTENT_TYPE, "Authorization": account.upload_authorization}
    )
    assert status == 400 and secret_like not in json.dumps(answer)
    status, answer = call_ingest(
        body, {"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {secret_like}"}
    )
    assert status == 401 and secret_like not in json.dumps(answer)
    assert account.secrets["BuildPixelSecret"]["uploadAuthToken"] not in json.dumps(answer)


# -- archives through push + ConvertFunction -----------------------------------------------------------


def raw_tar_header(name: bytes, *, size: int = 0, typeflag: bytes = b"0", prefix: bytes = b"") -> bytes:
    """A ustar header with arbitrary name bytes (tarfile cannot write undecodable names)."""
    header = bytearray(512)
    header[0:100] = name[:100].ljust(100, b"\x00")
    header[100:108] = b"0000644\x00"
    header[108:116] = b"0000000\x00"
    header[116:124] = b"0000000\x00"
    header[124:136] = f"{size:011o}\x00".encode()
    header[136:148] = b"14544000000\x00"
    header[156:157] = typeflag
    header[257:265] = b"ustar\x0000"
    header[345:500] = prefix[:155].ljust(155, b"\x00")
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\x00 ".encode()
    return bytes(header)


def raw_tar(entries: list[tuple[bytes, bytes]]) -> bytes:
    out = io.BytesIO()
    for name, data in entries:
        out.write(raw_tar_header(name, size=len(data)))
        out.write(data + b"\x00" * (-len(data) % 512))
    out.write(b"\x00" * 1024)
    return out.getvalue()


def tar_with(
    members: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        exe = tarfile.TarInfo("Windows/Game.exe")
        exe.size = 2
        tar.addfile(exe, io.BytesIO(b"MZ"))
        for item in members:
            info, data = item if isinstance(item, tuple) else (item, b"")
            info.size = len(data) if info.type in tarfile.REGULAR_TYPES else 0
            tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def info(name: str, **fields: Any) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(member, key, value)
    return member


def gnu_sparse_targz() -> bytes:
    """An old-GNU sparse member ('S'): 4 KiB of data at offset 1 MiB of a 1 MiB + 4 KiB file."""
    header = bytearray(raw_tar_header(b"Windows/sparse.bin", size=4096, typeflag=b"S"))
    header[257:265] = b"ustar  \x00"  # old GNU magic
    header[345:500] = b"\x00" * 155
    header[386:398] = f"{MiB:011o}\x00".encode()  # sparse[0].offset
    header[398:410] = f"{4096:011o}\x00".encode()  # sparse[0].numbytes
    header[483:495] = f"{MiB + 4096:011o}\x00".encode()  # realsize
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\x00 ".encode()
    exe = raw_tar_header(b"Windows/Game.exe", size=2) + b"MZ" + b"\x00" * 510
    return gzip_bytes(exe + bytes(header) + b"s" * 4096 + b"\x00" * 1024)


def gzip_bomb() -> bytes:
    """128 MiB of zeros in one member, compressed to ~130 KB (expansion cap in this module: 64 MiB)."""
    exe = raw_tar_header(b"Windows/Game.exe", size=2) + b"MZ" + b"\x00" * 510
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunks = [compressor.compress(exe)]
    for index in range(4):  # four 32 MiB members: each under the cap, together over it
        chunks.append(compressor.compress(raw_tar_header(f"Windows/zero{index}.bin".encode(), size=32 * MiB)))
        zeros = bytes(MiB)
        chunks.extend(compressor.compress(zeros) for _ in range(32))
    chunks.append(compressor.compress(b"\x00" * 1024))
    chunks.append(compressor.flush())
    return b"".join(chunks)


LONG = "Windows/" + "/".join(["deep" * 20] * 3) + "/file.txt"  # 259: > 255 needs PAX / GNU, <= MAX_PATH


@dataclass(frozen=True)
class ArchiveCase:
    artifact: Callable[[], bytes]
    reason: str | None  # None: converts; else the build fails and its error contains this text
    zip_names: tuple[str, ...] = ()  # for converting cases: names that must be in the zip


ARCHIVE_CASES: dict[str, ArchiveCase] = {
    "zip-slip ../": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/../../evil.dll", b"x")]), "escapes the package"
    ),
    "zip-slip absolute": ArchiveCase(
        lambda: build_targz([EXE, file("/etc/cron.d/x", b"x")]), "absolute path"
    ),
    "zip-slip drive letter C:\\": ArchiveCase(
        lambda: build_targz([EXE, file("C:\\Windows\\evil.dll", b"x")]), "absolute path"
    ),
    "zip-slip backslash ..\\": ArchiveCase(
        lambda: build_targz([EXE, file("Windows\\..\\..\\evil", b"x")]), "escapes the package"
    ),
    "UNC path": ArchiveCase(lambda: build_targz([EXE, file("\\\\server\\share\\x", b"x")]), "absolute path"),
    "symlink escape": ArchiveCase(
        lambda: build_targz([EXE, Member("Windows/up", kind="symlink", link_target="../../..")]),
        "symbolic link",
    ),
    "symlink then write through it": ArchiveCase(
        lambda: build_targz(
            [EXE, Member("Windows/etc", kind="symlink", link_target="/etc"), file("Windows/etc/passwd", b"x")]
        ),
        "symbolic link",
    ),
    "hardlink escape": ArchiveCase(
        lambda: build_targz([EXE, Member("Windows/h", kind="hardlink", link_target="/etc/shadow")]),
        "hard link",
    ),
    "character device": ArchiveCase(
        lambda: build_targz([EXE, Member("Windows/null", kind="chardev")]), "device"
    ),
    "block device": ArchiveCase(lambda: build_targz([EXE, Member("Windows/sda", kind="blockdev")]), "device"),
    "FIFO": ArchiveCase(lambda: build_targz([EXE, Member("Windows/pipe", kind="fifo")]), "FIFO"),
    "unknown member type": ArchiveCase(
        lambda: gzip_bytes(
            raw_tar([(b"Windows/Game.exe", b"MZ")])[:-1024]
            + raw_tar_header(b"Windows/x", typeflag=b"Z")
            + b"\x00" * 1024
        ),
        "unsupported tar type",
    ),
    "GNU sparse member": ArchiveCase(gnu_sparse_targz, "sparse"),
    "GNU sparse 1.0 map of 40 M entries (156 KB)": ArchiveCase(
        lambda: pax_sparse_10_archive(SPARSE_MAP_ENTRIES), "sparse"
    ),
    "PAX name of 60 KiB, 30 Ki levels deep": ArchiveCase(
        lambda: deep_name_archive(60 * 1024), "longer than 260"
    ),
    "path over 260 characters": ArchiveCase(
        lambda: named_archive("Windows/" + "/".join(["deep" * 20] * 4) + "/file.txt"), "longer than 260"
    ),
    "reserved name COM0": ArchiveCase(lambda: named_archive("Windows/COM0.log"), "reserved Windows name"),
    "reserved name LPT superscript one": ArchiveCase(
        lambda: named_archive("Windows/lpt\u00b9"), "reserved Windows name"
    ),
    "reserved name conout$.txt": ArchiveCase(
        lambda: named_archive("Windows/conout$.txt"), "reserved Windows name"
    ),
    "fullwidth dot dot backslash": ArchiveCase(
        lambda: named_archive("Windows/\uff0e\uff0e\uff3cevil.dll"), "may read as a separator"
    ),
    "division slash": ArchiveCase(lambda: named_archive("Windows/a\u2215b"), "may read as a separator"),
    "yen sign": ArchiveCase(lambda: named_archive("Windows/a\u00a5b"), "may read as a separator"),
    "right-to-left override": ArchiveCase(
        lambda: named_archive("Windows/gnp.\u202eexe"), "invisible or control character"
    ),
    "zero-width space": ArchiveCase(
        lambda: named_archive("Windows/Ga\u200bme.exe"), "invisible or control character"
    ),
    "dotless i collides with I": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/f\u0131le.txt", b"a"), file("Windows/FILE.txt", b"b")]),
        "duplicate",
    ),
    "PAX long name": ArchiveCase(lambda: gzip_bytes(tar_with([(info(LONG), b"long")])), None, (LONG,)),
    "GNU long name": ArchiveCase(
        lambda: gzip_bytes(tar_with([(info(LONG), b"long")], tarfile.GNU_FORMAT)), None, (LONG,)
    ),
    "PAX long name with ..": ArchiveCase(
        lambda: gzip_bytes(tar_with([(info("Windows/" + "a" * 200 + "/../../../x"), b"x")])),
        "escapes the package",
    ),
    "PAX path record overrides a safe ustar name": ArchiveCase(
        lambda: gzip_bytes(
            tar_with([(info("Windows/safe.txt", pax_headers={"path": "../escape.txt"}), b"x")])
        ),
        "escapes the package",
    ),
    "oversized PAX header (2 MiB)": ArchiveCase(
        lambda: gzip_bytes(tar_with([(info("Windows/a.txt", pax_headers={"comment": "c" * 2 * MiB}), b"x")])),
        "oversized tar metadata header",
    ),
    "UTF-8 non-ASCII names": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/Données/日本語.txt", b"x")]),
        None,
        ("Windows/Données/日本語.txt",),
    ),
    "Latin-1 bytes in a ustar name": ArchiveCase(
        lambda: gzip_bytes(raw_tar([(b"Windows/Game.exe", b"MZ"), (b"Windows/caf\xe9.txt", b"x")])),
        "not valid UTF-8",  # was an unhandled UnicodeEncodeError in zipfile (fixed in archive_rules)
    ),
    "NUL inside a PAX name": ArchiveCase(
        lambda: gzip_bytes(tar_with([(info("Windows/a\x00b.txt"), b"x")])),
        None,  # sanitised: tarfile ends a name at its NUL, as every tar reader does
        ("Windows/a",),
    ),
    "case-insensitive duplicates": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/Data.pak", b"a"), file("Windows/DATA.PAK", b"b")]),
        "duplicate",
    ),
    "Unicode case fold duplicates (ß/SS)": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/straße.txt", b"a"), file("Windows/STRASSE.txt", b"b")]),
        "duplicate",
    ),
    "Windows-invalid character": ArchiveCase(
        lambda: build_targz([EXE, file('Windows/a"b.txt', b"x")]), "character Windows"
    ),
    "Windows reserved name": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/aux.log", b"x")]), "reserved Windows name"
    ),
    "COM1 with trailing space": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/COM1 .txt", b"x")]), "reserved Windows name"
    ),
    "trailing dot": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/readme.", b"x")]), "ending in a dot or space"
    ),
    "trailing space directory": ArchiveCase(
        lambda: build_targz([EXE, directory("Windows/Saved ")]), "ending in a dot or space"
    ),
    "leading ./ and // (normalised)": ArchiveCase(
        lambda: build_targz([file("./Windows//Game.exe", b"MZ"), file("./Windows/./a.txt", b"a")]),
        None,
        ("Windows/Game.exe", "Windows/a.txt"),
    ),
    "no executable": ArchiveCase(
        lambda: build_targz([file("Windows/readme.txt", b"x")]), "no Windows executable"
    ),
    "gzip bomb (128 MiB of zeros)": ArchiveCase(gzip_bomb, "beyond the 0.1 GiB limit"),
    "member claims 1 TiB": ArchiveCase(
        lambda: gzip_bytes(
            raw_tar([(b"Windows/Game.exe", b"MZ")])[:-1024] + raw_tar_header(b"Windows/big", size=2**40)
        ),
        "beyond the 0.1 GiB limit",
    ),
    "truncated gzip": ArchiveCase(
        lambda: build_targz([EXE, file("Windows/a.bin", bytes(range(256)) * 400)])[:-200],
        "truncated or corrupt",
    ),
    "gzip cut after the header": ArchiveCase(lambda: build_targz([EXE])[:12], "truncated or corrupt"),
    "corrupt deflate data": ArchiveCase(
        lambda: (lambda d: d[:40] + bytes(b ^ 0x55 for b in d[40:80]) + d[80:])(
            build_targz([EXE, file("Windows/a", b"a" * 5000)])
        ),
        "truncated or corrupt",
    ),
    "gzip trailing garbage": ArchiveCase(lambda: build_targz([EXE]) + b"GARBAGE", "truncated or corrupt"),
    "tar trailing garbage": ArchiveCase(
        lambda: gzip_bytes(build_tar([EXE]) + b"junk" * 100), "unexpected data after the end"
    ),
    "concatenated gzip members": ArchiveCase(
        lambda: (lambda t: gzip_bytes(t[:700]) + gzip_bytes(t[700:]))(
            build_tar([EXE, file("Windows/a.txt", b"a" * 3000)])
        ),
        None,
        ("Windows/Game.exe", "Windows/a.txt"),
    ),
    "tar without end blocks": ArchiveCase(
        lambda: gzip_bytes(build_tar([EXE])[:1024]), "truncated or corrupt"
    ),
    "gzip of a non-tar": ArchiveCase(
        lambda: gzip_bytes(b"this is not a tar file" * 100), "truncated or corrupt"
    ),
}


@pytest.mark.parametrize("case", sorted(ARCHIVE_CASES))
def test_hostile_archives_end_in_a_recorded_outcome(
    account: MotoAccount, figures: Figures, case: str
) -> None:
    spec = ARCHIVE_CASES[case]
    build_id = case_id(case)
    figures.add("inputs tried: archives")
    body, content_type = encode_custom_deploy(sample_metadata(build_id), spec.artifact())
    status, answer = call_ingest(
        body, {"Content-Type": content_type, "Authorization": account.upload_authorization}
    )
    assert status == 202, answer

    outcome = convert_key(account, f"inbox/push/{build_id}.multipart")["results"][0]["result"]
    built = record(build_id)
    assert built is not None
    handoff = [key for key in account.s3_keys("HandoffBucket") if key.endswith(f"/{build_id}.zip")]
    uploads = account.client("s3").list_multipart_uploads(Bucket=account.names["HandoffBucket"])
    assert uploads.get("Uploads", []) == []
    if spec.reason is not None:
        assert (outcome, built["status"]) == ("failed", "failed"), built.get("error")
        assert spec.reason.lower() in built["error"].lower(), built["error"]
        assert handoff == [] and "zipUrl" not in built and executions(account, build_id) == []
        return
    assert (outcome, built["status"]) == ("converted", "converted"), built.get("error")
    assert executions(account, build_id) == [build_id]
    import zipfile

    data = (
        account.client("s3").get_object(Bucket=account.names["HandoffBucket"], Key=handoff[0])["Body"].read()
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
    for name in spec.zip_names:
        assert name in names
    for name in names:  # whatever was accepted is a safe, relative, Windows-extractable name
        assert not name.startswith(("/", "\\")) and ".." not in name.split("/") and "\\" not in name
