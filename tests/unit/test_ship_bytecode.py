"""``make build`` ships bytecode that survives ``sam package``'s 1980 zip dates (scripts/ship_bytecode.py)."""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
from pathlib import Path

from scripts.ship_bytecode import main

HASH_BASED_UNCHECKED = 0b01  # PEP 552 flags: bit 0 hash-based, bit 1 check_source


def test_shipped_bytecode_is_unchecked_so_1980_dated_sources_do_not_invalidate_it(tmp_path: Path) -> None:
    package = tmp_path / "IngestFunction" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("VALUE = 42\n")

    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    # One process: the unit tier refuses sockets, and a process pool talks to its workers through one.
    assert main([str(tmp_path), "--python-version", running, "--workers", "1"]) == 0

    compiled = Path(importlib.util.cache_from_source(str(package / "mod.py")))
    flags = struct.unpack("<I", compiled.read_bytes()[4:8])[0]
    assert flags == HASH_BASED_UNCHECKED
    # What a cold start sees after sam package: sources dated 1980-01-01. The shipped bytecode is used
    # as is (a changed source proves it: timestamp-checked .pyc would be recompiled from the source).
    (package / "mod.py").write_text("VALUE = 43\n")
    os.utime(package / "mod.py", (315532800, 315532800))
    spec = importlib.util.spec_from_file_location("shipped_mod", package / "mod.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VALUE == 42


def test_another_python_version_is_refused(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--python-version", "2.7"]) == 2


def test_a_missing_build_directory_is_refused(tmp_path: Path) -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert main([str(tmp_path / "nothing"), "--python-version", running]) == 2
