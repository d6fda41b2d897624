"""Property: any safe tree round-trips to a zip with the same files, bytes and directories."""

from __future__ import annotations

import io
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelbridge.convert.pipeline import convert_targz_to_zip
from tests.support.archives import Member, build_targz, directory, file

SAFE_COMPONENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-é☕", min_size=1, max_size=12)
PATHS = st.lists(SAFE_COMPONENT, min_size=1, max_size=4).map(lambda parts: "Windows/" + "/".join(parts))


class MemorySink(io.BytesIO):
    def hold_from(self, offset: int) -> None:
        """BytesIO keeps every byte patchable."""

    def release_hold(self) -> None:
        """Nothing to release."""


@st.composite
def safe_trees(draw: st.DrawFn) -> list[Member]:
    paths = draw(st.lists(PATHS, max_size=25, unique_by=str.casefold))
    members: list[Member] = [file("Windows/Game.exe", b"MZ")]
    taken = {"windows/game.exe"}
    for path in paths:
        key = path.casefold()
        # A path can't be a file and a directory prefix at once (Windows) -- keep the tree consistent.
        if key in taken or any(k.startswith(key + "/") or key.startswith(k + "/") for k in taken):
            continue
        taken.add(key)
        if draw(st.booleans()):
            members.append(file(path, draw(st.binary(max_size=3000)), mtime=draw(st.integers(0, 2**33))))
        else:
            members.append(directory(path))
    return members


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(safe_trees())
def test_safe_trees_round_trip(members: list[Member]) -> None:
    sink = MemorySink()
    manifest = convert_targz_to_zip(io.BytesIO(build_targz(members)), sink)
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as archive:
        assert archive.testzip() is None
        contents = {info.filename: archive.read(info) for info in archive.infolist()}
        assert all(info.flag_bits & 0x08 == 0 for info in archive.infolist())
    assert contents == {m.name + ("/" if m.kind == "dir" else ""): m.data for m in members}
    assert manifest.files + manifest.directories == len(members)
