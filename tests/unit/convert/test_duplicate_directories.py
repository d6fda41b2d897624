from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

from pixelbridge.convert.pipeline import ConversionManifest
from tests.support.archives import build_targz, convert_to_zip_file, directory, file


def test_a_directory_listed_twice_is_written_once_with_a_note(tmp_path: Path) -> None:
    targz = build_targz(
        [
            directory("Windows"),
            file("Windows/Game.exe", b"MZ"),
            directory("Windows"),
            directory("Windows/Saved"),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zipfile warns "Duplicate name" if a name is written twice
        manifest = convert_to_zip_file(targz, tmp_path / "out.zip")
    assert isinstance(manifest, ConversionManifest)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert sorted(archive.namelist()) == ["Windows/", "Windows/Game.exe", "Windows/Saved/"]
    assert manifest.directories == 2
    assert any("duplicate directory" in note for note in manifest.notes)
