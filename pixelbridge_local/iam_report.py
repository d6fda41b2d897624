"""What each function's code actually used of its IAM policy, across every local stack of a run.

``EmbeddedStack.stop()`` records its authorizer's usage here; the e2e and hardening suites write the table
at the end of the session (``bench/out/iam-usage.md``): for every function (and the state machine),
the actions its code called with their resources, next to the actions its policy grants, unused grants
marked.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pixelbridge_local.iam import is_allowed

_lock = threading.Lock()
_used: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
_denied: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
_grants: dict[str, list[dict[str, Any]]] = {}
REPORT_PATH = Path(__file__).resolve().parents[1] / "bench" / "out" / "iam-usage.md"


def record(
    owner: str,
    statements: list[dict[str, Any]],
    used: Counter[tuple[str, str]],
    denied: list[tuple[str, str]],
) -> None:
    with _lock:
        _grants.setdefault(owner, statements)
        _used[owner].update(used)
        _denied[owner].update(denied)


def table() -> str:
    with _lock:
        owners = sorted(_grants)
        lines = ["# IAM: actions used across the run vs actions granted", ""]
        for owner in owners:
            lines += [f"## {owner}", "", "| action used | calls | resources | e.g. |", "|---|---|---|---|"]
            by_action: dict[str, Counter[str]] = defaultdict(Counter)
            for (action, resource), count in _used[owner].items():
                by_action[action][resource] += count
            for (action, resource), count in _denied[owner].items():
                by_action[f"{action} (DENIED)"][resource] += count
            for action, resources in sorted(by_action.items()):
                example = next(iter(resources))
                lines.append(f"| {action} | {sum(resources.values())} | {len(resources)} | {example} |")
            lines += ["", "| granted action | resource | used |", "|---|---|---|"]
            for statement in _grants[owner]:
                actions = statement.get("Action", [])
                resources = statement.get("Resource", [])
                for action in actions if isinstance(actions, list) else [actions]:
                    used = any(
                        is_allowed([{**statement, "Action": action}], called, resource)
                        for called, resource in _used[owner]
                    )
                    shown = resources if isinstance(resources, str) else ", ".join(resources)
                    lines.append(f"| {action} | {shown} | {'yes' if used else 'no'} |")
            lines.append("")
        return "\n".join(lines)


def write(path: Path = REPORT_PATH) -> Path | None:
    """Write the table if any stack ran; returns where."""
    with _lock:
        if not _grants:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table(), encoding="utf-8")
    return path
