"""A small generated UE-like Windows package (.tar.gz) for the demo and the events/ samples."""

from __future__ import annotations

import io
import os
import random
import tarfile
import time


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def ue_like_targz(
    *, game: str = "MyGame", pak_bytes: int = 64 * 1024, seed: int = 7, top: str = "Windows"
) -> bytes:
    """A gzip tarball shaped like a packaged UE Win64 build: exe, .pak content, engine files, manifest."""
    rng = random.Random(seed)
    now = time.time()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        _add(tar, f"{top}/{game}.exe", b"MZ" + os.urandom(2046), now)
        _add(tar, f"{top}/Manifest_NonUFSFiles_Win64.txt", f"{game}.exe\t0\n".encode(), now)
        _add(tar, f"{top}/{game}/Binaries/Win64/{game}-Win64-Shipping.exe", b"MZ" + os.urandom(4094), now)
        _add(tar, f"{top}/{game}/Content/Paks/{game}-Windows.pak", rng.randbytes(pak_bytes), now)
        _add(
            tar,
            f"{top}/Engine/Config/BaseGame.ini",
            b"[/Script/Engine.GameSession]\nMaxPlayers=16\n" * 20,
            now,
        )
    return buffer.getvalue()
