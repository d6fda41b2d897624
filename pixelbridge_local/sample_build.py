"""A small generated UE-like Windows package (.tar.gz) for the demo and the events/ samples."""

from __future__ import annotations

import gzip
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


# A fixed build time (tar mtimes and the gzip header) keeps generated samples identical run to run.
BUILD_TIME = 1_763_800_000


def ue_like_targz(
    *, game: str = "MyGame", pak_bytes: int = 64 * 1024, seed: int = 7, top: str = "Windows"
) -> bytes:
    """A gzip tarball shaped like a packaged UE Win64 build: exe, .pak content, engine files, manifest."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=BUILD_TIME) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as tar,
    ):
        _add(tar, f"{top}/{game}.exe", b"MZ" + rng.randbytes(2046), BUILD_TIME)
        _add(tar, f"{top}/Manifest_NonUFSFiles_Win64.txt", f"{game}.exe\t0\n".encode(), BUILD_TIME)
        _add(
            tar,
            f"{top}/{game}/Binaries/Win64/{game}-Win64-Shipping.exe",
            b"MZ" + rng.randbytes(4094),
            BUILD_TIME,
        )
        _add(tar, f"{top}/{game}/Content/Paks/{game}-Windows.pak", rng.randbytes(pak_bytes), BUILD_TIME)
        _add(
            tar,
            f"{top}/Engine/Config/BaseGame.ini",
            b"[/Script/Engine.GameSession]\nMaxPlayers=16\n" * 20,
            BUILD_TIME,
        )
    return buffer.getvalue()


class _RepeatingBlock(io.RawIOBase):
    """``size`` bytes made of one random 1 MiB block repeated: cheap to make, yet gzip cannot shrink
    it (deflate only looks 32 KiB back), so the tarball really is as big as asked."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__()
        self._block = random.Random(seed).randbytes(1024 * 1024)
        self._left = size
        self._at = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        out = bytearray()
        while len(out) < wanted:
            take = min(wanted - len(out), len(self._block) - self._at)
            out += self._block[self._at : self._at + take]
            self._at = (self._at + take) % len(self._block)
        self._left -= wanted
        return bytes(out)


def write_big_ue_like_targz(
    target: io.BufferedIOBase | io.BytesIO, *, pak_bytes: int, game: str = "MyGame", seed: int = 11
) -> None:
    """Stream a UE-like Win64 tarball with a ``pak_bytes`` .pak into ``target`` (gzip level 1)."""
    now = time.time()
    with tarfile.open(fileobj=target, mode="w:gz", compresslevel=1) as tar:
        _add(tar, f"Windows/{game}.exe", b"MZ" + os.urandom(2046), now)
        _add(tar, f"Windows/{game}/Binaries/Win64/{game}-Win64-Shipping.exe", b"MZ" + os.urandom(4094), now)
        info = tarfile.TarInfo(f"Windows/{game}/Content/Paks/{game}-Windows.pak")
        info.size, info.mtime, info.mode = pak_bytes, int(now), 0o644
        tar.addfile(info, _RepeatingBlock(pak_bytes, seed))


def big_ue_like_targz(*, pak_bytes: int, game: str = "MyGame", seed: int = 11) -> bytes:
    """A real-size build (bigger than a Function URL accepts) for the pull demo and tests."""
    buffer = io.BytesIO()
    write_big_ue_like_targz(buffer, pak_bytes=pak_bytes, game=game, seed=seed)
    return buffer.getvalue()
