from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from pixelbridge.convert.pipeline import (
    ConversionLimits,
    ConversionManifest,
    convert_tar_to_zip,
    convert_targz_to_zip,
)
from pixelbridge.convert.sinks import CountingNullSink, LocalFileSink
from pixelbridge.domain.errors import ArchiveRejected
from tests.support.archives import (
    Member,
    build_tar,
    build_targz,
    convert_to_zip_file,
    directory,
    file,
    gzip_bytes,
    make_ue_like_targz,
    zip_header_problems,
)

EXE = file("Windows/Game.exe", b"MZ" + bytes(100))


def convert(
    members: list[Member], tmp_path: Path, limits: ConversionLimits | None = None
) -> tuple[Path, ConversionManifest]:
    zip_path = tmp_path / "out.zip"
    manifest = convert_to_zip_file(build_targz(members), zip_path, limits)
    assert isinstance(manifest, ConversionManifest)
    return zip_path, manifest


def zip_contents(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rejection(members: list[Member], tmp_path: Path, limits: ConversionLimits | None = None) -> str:
    with pytest.raises(ArchiveRejected) as caught:
        convert(members, tmp_path, limits)
    assert not (tmp_path / "out.zip").exists(), "a rejected conversion must not leave a zip behind"
    return caught.value.reason


def test_every_file_and_directory_round_trips_byte_for_byte(tmp_path: Path) -> None:
    deep = "/".join(f"level{i}" for i in range(30)) + "/deep.txt"  # 246 chars: within MAX_PATH
    members = [
        directory("Windows"),
        EXE,
        file("Windows/empty.ini", b""),
        file("Windows/Game/Content/Paks/Game-Windows.pak", bytes(range(256)) * 5000),
        file("Windows/readme.txt", b"hello " * 10_000),
        directory("Windows/Saved"),
        file(f"Windows/{deep}", b"deep"),
    ]
    zip_path, manifest = convert(members, tmp_path)

    contents = zip_contents(zip_path)
    expected = {m.name + ("/" if m.kind == "dir" else ""): m.data for m in members}
    assert contents == expected
    assert (manifest.files, manifest.directories) == (5, 2)
    assert manifest.executable == "Windows/Game.exe"
    assert manifest.bytes_uncompressed == sum(len(m.data) for m in members)
    assert manifest.bytes_out == zip_path.stat().st_size
    assert manifest.bytes_in > 0 and not manifest.zip64


def test_no_entry_uses_a_data_descriptor_and_local_headers_carry_real_values(tmp_path: Path) -> None:
    members = [
        EXE,
        file("Windows/a.pak", b"\x01" * 300_000),
        file("Windows/b.txt", b"text" * 50_000),
        file("Windows/empty.txt"),
        directory("Windows/dir"),
    ]
    zip_path, _ = convert(members, tmp_path)
    assert zip_header_problems(zip_path) == []


def test_compression_policy_stores_compressed_types_and_deflates_the_rest(tmp_path: Path) -> None:
    members = [
        EXE,
        file("Windows/a.PAK", b"p" * 1000),
        file("Windows/movie.bk2", b"m" * 1000),
        file("Windows/b.ini", b"i" * 1000),
        file("Windows/empty.ini"),
    ]
    zip_path, _ = convert(members, tmp_path)
    with zipfile.ZipFile(zip_path) as archive:
        methods = {info.filename: info.compress_type for info in archive.infolist()}
    assert methods == {
        "Windows/Game.exe": zipfile.ZIP_DEFLATED,
        "Windows/a.PAK": zipfile.ZIP_STORED,
        "Windows/movie.bk2": zipfile.ZIP_STORED,
        "Windows/b.ini": zipfile.ZIP_DEFLATED,
        "Windows/empty.ini": zipfile.ZIP_STORED,
    }


def test_unicode_names_get_the_utf8_flag(tmp_path: Path) -> None:
    members = [EXE, file("Windows/Données/café ☕.txt", b"x"), file("Windows/plain.txt", b"y")]
    zip_path, _ = convert(members, tmp_path)
    with zipfile.ZipFile(zip_path) as archive:
        flags = {info.filename: info.flag_bits & 0x800 for info in archive.infolist()}
    assert flags == {"Windows/Game.exe": 0, "Windows/Données/café ☕.txt": 0x800, "Windows/plain.txt": 0}


def test_timestamps_are_clamped_to_the_dos_range(tmp_path: Path) -> None:
    members = [
        file("Game.exe", b"x", mtime=0),
        file("future.txt", b"y", mtime=2**36),
        file("normal.txt", b"z", mtime=1_700_000_000),
    ]
    zip_path, manifest = convert(members, tmp_path)
    with zipfile.ZipFile(zip_path) as archive:
        stamps = {info.filename: info.date_time for info in archive.infolist()}
    assert stamps["Game.exe"] == (1980, 1, 1, 0, 0, 0)
    assert stamps["future.txt"] == (2107, 12, 31, 23, 59, 58)
    assert stamps["normal.txt"] == (2023, 11, 14, 22, 13, 20)
    assert manifest.notes == ["1 entries dated before 1980 were dated 1980-01-01"]


def test_leading_dot_slash_and_root_entry_are_normalised(tmp_path: Path) -> None:
    members = [directory("."), directory("./Windows"), file("./Windows/Game.exe", b"MZ")]
    zip_path, manifest = convert(members, tmp_path)
    assert zip_contents(zip_path) == {"Windows/": b"", "Windows/Game.exe": b"MZ"}
    assert manifest.executable == "Windows/Game.exe"


def test_gnu_long_names_and_pax_long_names_are_read(tmp_path: Path) -> None:
    long_name = "Windows/" + "x" * 150 + "/" + "y" * 90 + ".txt"  # 253 chars: no ustar split, within MAX_PATH
    for tar_format in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        zip_path = tmp_path / f"{tar_format}.zip"
        convert_to_zip_file(build_targz([EXE, file(long_name, b"long")], tar_format=tar_format), zip_path)
        assert zip_contents(zip_path)[long_name] == b"long"


def test_ue_like_package_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "build.tar.gz"
    total = make_ue_like_targz(source, pak_bytes=3 * 1024 * 1024, small_files=150)
    zip_path = tmp_path / "build.zip"
    with open(source, "rb") as handle:
        manifest = convert_to_zip_file(handle, zip_path)
    assert isinstance(manifest, ConversionManifest)
    with tarfile.open(source) as tar, zipfile.ZipFile(zip_path) as archive:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                assert archive.read(member.name) == extracted.read(), member.name
    assert manifest.bytes_uncompressed == total and manifest.executable == "Windows/MyGame.exe"
    assert zip_header_problems(zip_path) == []


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([EXE, file("/etc/passwd", b"x")], "member '/etc/passwd' has an absolute path"),
        ([EXE, file("C:\\evil.txt", b"x")], "member 'C:\\\\evil.txt' has an absolute path"),
        ([EXE, file("C:/evil.txt", b"x")], "member 'C:/evil.txt' has an absolute path"),
        ([EXE, file("a/../../x", b"x")], "member 'a/../../x' escapes the package"),
        ([EXE, file("..\\..\\x", b"x")], "member '..\\\\..\\\\x' escapes the package"),
        ([EXE, file("Windows\\x.txt", b"x")], "member 'Windows\\\\x.txt' contains a backslash"),
        (
            [EXE, Member("Windows/link", kind="symlink", link_target="/etc/passwd")],
            "member 'Windows/link' is a symbolic link",
        ),
        (
            [EXE, Member("Windows/hard", kind="hardlink", link_target="Windows/Game.exe")],
            "member 'Windows/hard' is a hard link",
        ),
        ([EXE, Member("Windows/fifo", kind="fifo")], "member 'Windows/fifo' is a device or FIFO"),
        ([EXE, Member("Windows/tty", kind="chardev")], "member 'Windows/tty' is a device or FIFO"),
        ([EXE, Member("Windows/sda", kind="blockdev")], "member 'Windows/sda' is a device or FIFO"),
        ([EXE, file("Windows/CON", b"x")], "member 'Windows/CON' uses the reserved Windows name 'CON'"),
        (
            [EXE, file("Windows/nul.txt", b"x")],
            "member 'Windows/nul.txt' uses the reserved Windows name 'nul.txt'",
        ),
        (
            [EXE, file("Windows/Lpt9/a", b"x")],
            "member 'Windows/Lpt9/a' uses the reserved Windows name 'Lpt9'",
        ),
        (
            [EXE, file("Windows/a?.txt", b"x")],
            "member 'Windows/a?.txt' has a character Windows does not allow",
        ),
        ([EXE, file("Windows/a:b", b"x")], "member 'Windows/a:b' has a character Windows does not allow"),
        (
            [EXE, file("Windows/bell\x07", b"x")],
            "member 'Windows/bell\\x07' has a character Windows does not allow",
        ),
        ([EXE, file("Windows/dot./a", b"x")], "member 'Windows/dot./a' has a name ending in a dot or space"),
        ([EXE, file("Windows/space ", b"x")], "member 'Windows/space ' has a name ending in a dot or space"),
        (
            [EXE, file("Windows/Readme.txt", b"x"), file("Windows/README.TXT", b"y")],
            "member 'Windows/README.TXT' is a duplicate (names are case-insensitive)",
        ),
        (
            [EXE, file("Windows/a.txt", b"x"), file("Windows/a.txt", b"y")],
            "member 'Windows/a.txt' is a duplicate (names are case-insensitive)",
        ),
        (
            [EXE, file("Windows/Data", b"x"), file("Windows/data/a.txt", b"y")],
            "member 'Windows/data/a.txt' uses a file as a directory",
        ),
        (
            [EXE, file("Windows/Data/a.txt", b"x"), file("Windows/DATA", b"y")],
            "file 'Windows/DATA' collides with a directory of the same name",
        ),
        (
            [EXE, file("Windows/x", b"x"), directory("Windows/X")],
            "directory 'Windows/X' collides with a file of the same name",
        ),
        ([file("Windows/readme.txt", b"x")], "no Windows executable at package root"),
        ([file("Windows/Binaries/Game.exe", b"x")], "no Windows executable at package root"),
        ([file("A/Game.exe", b"x"), file("B/other.txt", b"x")], "no Windows executable at package root"),
    ],
)
def test_hostile_or_unextractable_members_are_rejected(
    members: list[Member], reason: str, tmp_path: Path
) -> None:
    assert rejection(members, tmp_path) == reason


def test_very_long_names_are_shortened_in_the_reason(tmp_path: Path) -> None:
    reason = rejection([EXE, file("Windows/" + "a" * 200 + "/b?", b"x")], tmp_path)
    assert len(reason) < 200 and "…" in reason and reason.endswith("has a character Windows does not allow")


def test_executable_at_the_root_or_under_the_single_top_folder_is_found(tmp_path: Path) -> None:
    _, manifest = convert([file("Game.exe", b"MZ"), file("Engine/x.txt", b"1")], tmp_path)
    assert manifest.executable == "Game.exe"


def test_not_a_gzip_file_is_rejected(tmp_path: Path) -> None:
    for data in (b"", b"P", b"PK\x03\x04 a zip", build_tar([EXE])):
        with pytest.raises(ArchiveRejected, match=r"^not a gzip file$"):
            convert_targz_to_zip(io.BytesIO(data), CountingNullSink())


@pytest.mark.parametrize("cut", [20, 0.5, -9, -4])
def test_truncated_gzip_is_rejected(cut: float) -> None:
    targz = build_targz([EXE, file("Windows/data.bin", bytes(range(256)) * 4000)])
    end = int(len(targz) * cut) if isinstance(cut, float) else cut
    with pytest.raises(ArchiveRejected, match=r"^archive is truncated or corrupt$"):
        convert_targz_to_zip(io.BytesIO(targz[:end]), CountingNullSink())


def test_corrupt_gzip_data_is_rejected() -> None:
    targz = bytearray(build_targz([EXE, file("Windows/data.bin", bytes(range(256)) * 4000)]))
    targz[len(targz) // 2] ^= 0xFF
    with pytest.raises(ArchiveRejected, match=r"^archive is truncated or corrupt$"):
        convert_targz_to_zip(io.BytesIO(bytes(targz)), CountingNullSink())


def test_tar_truncated_inside_a_member_or_before_its_end_block_is_rejected() -> None:
    tar = build_tar([EXE, file("Windows/data.bin", b"d" * 5000)])
    for end in (1500, 512 * 3 + 100, len(tar) - 1024 * 9):  # in a header, in data, after data w/o end block
        with pytest.raises(ArchiveRejected, match=r"^archive is truncated or corrupt$"):
            convert_targz_to_zip(io.BytesIO(gzip_bytes(tar[:end])), CountingNullSink())


def test_garbage_after_the_tar_end_is_rejected() -> None:
    tar = build_tar([EXE])
    with pytest.raises(ArchiveRejected, match=r"^archive has unexpected data after the end of the tar$"):
        convert_targz_to_zip(io.BytesIO(gzip_bytes(tar + b"\x00" * 1024 + b"garbage")), CountingNullSink())


def test_garbage_instead_of_a_tar_header_is_rejected() -> None:
    tar = build_tar([EXE])
    with pytest.raises(ArchiveRejected, match=r"^archive is truncated or corrupt$"):
        convert_targz_to_zip(io.BytesIO(gzip_bytes(tar[:1024] + b"x" * 512 + tar[1024:])), CountingNullSink())


def test_gzip_trailing_garbage_is_rejected_but_zero_padding_is_fine() -> None:
    targz = build_targz([EXE])
    convert_targz_to_zip(io.BytesIO(targz + b"\x00" * 100), CountingNullSink())
    with pytest.raises(ArchiveRejected, match=r"^archive is truncated or corrupt$"):
        convert_targz_to_zip(io.BytesIO(targz + b"trailing garbage"), CountingNullSink())


def test_concatenated_gzip_members_are_one_stream() -> None:
    tar = build_tar([EXE, file("Windows/a.txt", b"a" * 10_000)])
    manifest = convert_targz_to_zip(
        io.BytesIO(gzip_bytes(tar[:2000]) + gzip_bytes(tar[2000:])), CountingNullSink()
    )
    assert manifest.files == 2


def test_entry_cap_rejects_before_writing_more() -> None:
    members = [EXE] + [file(f"Windows/{index}.txt", b"x") for index in range(20)]
    with pytest.raises(ArchiveRejected, match=r"^archive has more than 10 entries$"):
        convert_targz_to_zip(
            io.BytesIO(build_targz(members)), CountingNullSink(), ConversionLimits(max_entries=10)
        )


class _CountingReader(io.RawIOBase):
    def __init__(self, inner: io.RawIOBase | io.BufferedIOBase) -> None:
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        data = self.inner.read(-1 if size is None else size)
        self.count += len(data)
        return data


def _zero_bomb_tar(member_sizes: list[int]) -> io.BufferedIOBase:
    """A tar of zero-filled members, generated on the fly (nothing big is held in memory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        tar.addfile(tarfile.TarInfo("Game.exe"))
        for index, size in enumerate(member_sizes):
            info = tarfile.TarInfo(f"bomb{index}.bin")
            info.size = size
            tar.addfile(info, _Zeros(size))
    out.seek(0)
    return out


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int | None = -1, /) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


def test_gzip_bomb_stops_at_the_cap_before_expanding_the_rest() -> None:
    """1 GB of zeros (~1 MB gzip) against a 100 MB cap: the header sum trips the cap, nothing big is read."""
    gz = io.BytesIO()
    from isal import igzip

    with (
        igzip.GzipFile(fileobj=gz, mode="wb", compresslevel=1) as writer,
        tarfile.open(fileobj=writer, mode="w|") as tar,
    ):
        tar.addfile(tarfile.TarInfo("Game.exe"))
        for index in range(20):
            info = tarfile.TarInfo(f"bomb{index}.bin")
            info.size = 50_000_000
            tar.addfile(info, _Zeros(info.size))
    assert len(gz.getvalue()) < 10_000_000
    sink = CountingNullSink()
    with pytest.raises(ArchiveRejected, match=r"^archive expands beyond the 0\.1 GiB limit$"):
        convert_targz_to_zip(io.BytesIO(gz.getvalue()), sink, ConversionLimits(max_total_bytes=100_000_000))
    assert sink.size < 110_000_000  # only the members under the cap were written


@pytest.mark.slow
def test_bomb_member_is_not_read_once_its_header_exceeds_the_cap() -> None:
    tar = _CountingReader(_zero_bomb_tar([30_000_000, 1_000_000_000]))
    with pytest.raises(ArchiveRejected, match=r"^archive expands beyond"):
        convert_tar_to_zip(tar, CountingNullSink(), ConversionLimits(max_total_bytes=100_000_000))
    assert tar.count < 40_000_000  # the first member and a few buffers, never the 1 GB member


def test_source_errors_propagate_unchanged() -> None:
    class BrokenSource(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = False

        def read(self, size: int | None = -1, /) -> bytes:
            if self.sent:
                raise ConnectionResetError("network went away")
            self.sent = True
            return build_targz([EXE, file("Windows/a", bytes(100_000))])[:200]

    with pytest.raises(ConnectionResetError, match="network went away"):
        convert_targz_to_zip(BrokenSource(), CountingNullSink())


def test_rejection_writes_no_central_directory(tmp_path: Path) -> None:
    sink = LocalFileSink(tmp_path / "partial.zip")
    with pytest.raises(ArchiveRejected):
        convert_targz_to_zip(io.BytesIO(build_targz([file("Windows/readme.txt", b"x" * 1000)])), sink)
    sink.flush()
    data = (tmp_path / "partial.zip").read_bytes()
    assert data.startswith(b"PK\x03\x04") and b"PK\x05\x06" not in data and b"PK\x01\x02" not in data
