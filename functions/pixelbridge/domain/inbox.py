"""Where builds land in the artifact bucket before conversion: ``inbox/push/`` and ``inbox/pull/``."""

from __future__ import annotations

PUSH_PREFIX = "inbox/push/"
PULL_PREFIX = "inbox/pull/"
MULTIPART_TYPE_METADATA = "multipart-content-type"


def push_key(build_id: str) -> str:
    return f"{PUSH_PREFIX}{build_id}.multipart"


def pull_key(build_id: str) -> str:
    return f"{PULL_PREFIX}{build_id}.tar.gz"


def build_id_from_key(key: str) -> tuple[str, str] | None:
    """(build id, source) for an inbox key, None for anything else in the bucket."""
    for prefix, suffix, source in ((PUSH_PREFIX, ".multipart", "push"), (PULL_PREFIX, ".tar.gz", "pull")):
        if key.startswith(prefix) and key.endswith(suffix):
            build_id = key[len(prefix) : -len(suffix)]
            if build_id and "/" not in build_id:
                return build_id, source
    return None
