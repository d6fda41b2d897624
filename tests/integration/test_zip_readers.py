"""The produced zip is accepted, reading every byte, by five independent readers (two of them streaming)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import (
    Member,
    build_targz,
    convert_to_zip_file,
    directory,
    file,
    has_zip64_end_record,
)

JAVA_READER = """
import java.io.*;
import java.util.zip.*;

public class ZipStreamCheck {
    public static void main(String[] args) throws IOException {
        long entries = 0, bytes = 0;
        byte[] buffer = new byte[1 << 16];
        try (ZipInputStream zip = new ZipInputStream(new BufferedInputStream(System.in))) {
            ZipEntry entry;
            while ((entry = zip.getNextEntry()) != null) {
                int n;
                while ((n = zip.read(buffer)) > 0) bytes += n;
                entries++;
            }
        }
        System.out.println(entries + " " + bytes);
    }
}
"""


def require_tool(tool: str, debian_package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (Debian package: {debian_package})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _members(variant: str) -> list[Member]:
    rng = random.Random(3)
    members = [
        directory("Windows"),
        file("Windows/Game.exe", b"MZ" + b"\x90" * 50_000),  # DEFLATED
        file("Windows/Game/Content/Paks/Game.pak", rng.randbytes(3_000_000)),  # STORED
        file("Windows/Game/Content/Movies/intro.bk2", b""),  # empty STORED
        file("Windows/Données/café.txt", "unicode ☕\n".encode() * 100),
        directory("Windows/Saved"),
        file("Windows/Engine/zero.ini", b"", mtime=0),
    ]
    if variant == "zip64-entries":  # more than 65,535 entries: ZIP64 end of central directory
        members += [file(f"Windows/many/{index}.txt", b"%d" % index) for index in range(66_000)]
    return members


@pytest.fixture(scope="module", params=["basic", "zip64-entries"])
def produced(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int, int]:
    """(zip path, number of entries, total uncompressed bytes)."""
    members = _members(request.param)
    zip_path = tmp_path_factory.mktemp(request.param) / "Game.zip"
    manifest: Any = convert_to_zip_file(build_targz(members), zip_path)
    # The only run of the >65,535-entries conversion in the suite: its manifest is checked here too.
    assert manifest.files == sum(1 for member in members if member.kind == "file")
    assert manifest.zip64 == (len(members) > 0xFFFF) == has_zip64_end_record(zip_path)
    return zip_path, len(members), sum(len(m.data) for m in members)


def test_python_zipfile_reads_every_byte(produced: tuple[Path, int, int]) -> None:
    zip_path, entries, total = produced
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert len(infos) == entries and sum(len(archive.read(info)) for info in infos) == total
        assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}


def test_info_zip_unzip_tests_the_archive(produced: tuple[Path, int, int]) -> None:
    unzip = require_tool("unzip", "unzip")
    zip_path, _, _ = produced
    result = subprocess.run([unzip, "-tqq", str(zip_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_7z_tests_the_archive(produced: tuple[Path, int, int]) -> None:
    seven_zip = require_tool("7z", "p7zip-full")
    zip_path, entries, _ = produced
    result = subprocess.run([seven_zip, "t", str(zip_path)], capture_output=True, text=True)
    assert result.returncode == 0 and "Everything is Ok" in result.stdout, result.stdout + result.stderr
    assert f"Files: {entries - 2}" in result.stdout  # 7z counts directories separately


def test_bsdtar_streams_it_from_stdin(produced: tuple[Path, int, int]) -> None:
    bsdtar = require_tool("bsdtar", "libarchive-tools")
    zip_path, _, total = produced
    with open(zip_path, "rb") as stdin:
        result = subprocess.run([bsdtar, "-xOf", "-"], stdin=stdin, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout) == total


def test_java_zip_input_stream_reads_it_from_stdin(produced: tuple[Path, int, int], tmp_path: Path) -> None:
    java = require_tool("java", "openjdk-17-jdk-headless")
    zip_path, entries, total = produced
    source = tmp_path / "ZipStreamCheck.java"
    source.write_text(JAVA_READER)
    with open(zip_path, "rb") as stdin:
        result = subprocess.run([java, str(source)], stdin=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr  # e.g. "only DEFLATED entries can have EXT descriptor"
    assert result.stdout.split() == [str(entries), str(total)]
