"""Cold-start hygiene: no handler imports the X-Ray SDK (Lambda's active tracing replaces it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HANDLERS = sorted(
    f"pixelbridge.handlers.{path.stem}"
    for path in (Path(__file__).resolve().parents[2] / "functions" / "pixelbridge" / "handlers").glob("*.py")
    if path.stem != "__init__"
)


def test_no_handler_imports_the_xray_sdk() -> None:
    probe = f"import sys, {', '.join(HANDLERS)}; print(sorted(m for m in sys.modules if 'xray' in m))"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert len(HANDLERS) >= 7
    assert child.stdout.strip() == "[]"
