"""Compare the SAM-transformed resources of template.yaml at a git revision with the working copy.

A template refactoring (moving checkov skips out, generating repeated stanzas) must not change what
CloudFormation deploys. This prints every resource added, removed or changed, ignoring Metadata
(checkov skips live there and deploy nothing), and exits 1 when a difference is not in --expect.

Usage: .venv/bin/python scripts/compare_transformed.py BASE_REV [--expect LogicalId ...]
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sam_transform import parse_template, transform_template

REPO_ROOT = Path(__file__).resolve().parents[1]


def deployed_resources(template: dict[str, Any]) -> dict[str, Any]:
    """Transformed resources without Metadata (what CloudFormation creates)."""
    resources = transform_template(copy.deepcopy(template))["Resources"]
    return {
        logical_id: {k: v for k, v in r.items() if k != "Metadata"} for logical_id, r in resources.items()
    }


def differences(base: dict[str, Any], current: dict[str, Any]) -> dict[str, str]:
    found = {}
    for logical_id in sorted(set(base) | set(current)):
        if logical_id not in current:
            found[logical_id] = "removed"
        elif logical_id not in base:
            found[logical_id] = "added"
        elif base[logical_id] != current[logical_id]:
            changed = sorted(
                key
                for key in set(base[logical_id].get("Properties", {}))
                | set(current[logical_id].get("Properties", {}))
                if base[logical_id].get("Properties", {}).get(key)
                != current[logical_id].get("Properties", {}).get(key)
            )
            found[logical_id] = "changed: " + (", ".join(changed) or "attributes")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="git revision of the template to compare against")
    parser.add_argument("--expect", nargs="*", default=[], help="logical ids that are meant to differ")
    args = parser.parse_args(argv)
    show = ["git", "show", f"{args.base}:template.yaml"]
    text = subprocess.run(  # noqa: S603 - git (from PATH) with a revision the developer passed
        show,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    base = deployed_resources(yaml_parse(text))
    current = deployed_resources(parse_template(REPO_ROOT / "template.yaml"))
    found = differences(base, current)
    for logical_id, what in found.items():
        marker = "expected" if logical_id in args.expect else "UNEXPECTED"
        print(f"{marker}: {logical_id} {what}")
    print(f"{len(current)} resources now, {len(base)} at {args.base}; {len(found)} differ")
    return 1 if set(found) - set(args.expect) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
