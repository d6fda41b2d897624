"""`make help` lists every target of the Makefile, each with what it does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_make_help_lists_every_target_with_a_description() -> None:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    targets = re.findall(r"^([a-z][a-z0-9-]*):", (REPO / "Makefile").read_text(), flags=re.M)
    listed = subprocess.run(
        ["make", "-s", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    described = dict(re.findall(r"^  make (\S+) +(\S.*)$", listed, flags=re.M))
    assert len(targets) >= 15
    assert sorted(described) == sorted(targets)
