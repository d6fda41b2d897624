"""Reading build records from a running local stack in tests."""

from __future__ import annotations

from typing import Any

from pixelbridge_local.stack import EmbeddedStack


def known(stack: EmbeddedStack, build_id: str) -> dict[str, Any]:
    """The build's record; the test fails here, by name, if PixelBridge does not know the build."""
    record = stack.build(build_id)
    assert record is not None, f"no build {build_id}"
    return record
