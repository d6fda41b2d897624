"""Compare the SAM-transformed resources of template.yaml at a git revision with the working copy.

A template refactoring (moving checkov skips out, generating repeated stanzas, moving resources into
a nested stack) must not change what CloudFormation deploys. This prints every resource added,
removed or changed, ignoring Metadata (checkov skips live there and deploy nothing), and exits 1 when
a difference is not in --expect.

Nested stacks whose template is a file of the repository (``TemplateURL: operations.yaml``) are
flattened into the comparison: each of their resources is compared, after replacing the nested
template's parameters by what the parent passes, with the resource of the same logical id at the
other revision. A resource that only moved between stacks is listed as moved, not as a difference;
the AWS::CloudFormation::Stack resource itself is a difference to name. The conditions the nested
resources use are compared the same way.

Usage: .venv/bin/python scripts/compare_transformed.py BASE_REV [--expect LogicalId ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python scripts/compare_transformed.py`

from scripts.sam_transform import local_nested_stacks, parse_template, transform_template

REPO_ROOT = Path(__file__).resolve().parents[1]
ROOT_STACK = "(root)"
# Pseudo parameters whose value a nested stack does not share with its parent.
STACK_PSEUDO_PARAMETERS = ("AWS::StackName", "AWS::StackId")


@dataclass
class Deployed:
    """What one revision deploys: every resource (nested ones included) and the stack holding it."""

    resources: dict[str, Any] = field(default_factory=dict)
    stack_of: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)


def _sub_name(value: Any) -> str:
    """How a parameter value the parent passes is written inside a Fn::Sub string."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(value["Ref"])
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return ".".join(value["Fn::GetAtt"])
    raise ValueError(f"cannot inline {json.dumps(value)} into a Fn::Sub string")


def substitute(value: Any, passed: dict[str, Any]) -> Any:
    """``value`` from a nested template with its parameters replaced by what the parent passes."""
    if isinstance(value, list):
        return [substitute(v, passed) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in passed:
        return copy.deepcopy(passed[value["Ref"]])
    if set(value) == {"Fn::Sub"}:
        arg = value["Fn::Sub"]
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in passed and name not in variables:
                return "${" + _sub_name(passed[name]) + "}"
            return match.group(0)

        text = re.sub(r"\$\{([^!}][^}]*)\}", replace, text)
        return {"Fn::Sub": text if isinstance(arg, str) else [text, substitute(variables, passed)]}
    return {k: substitute(v, passed) for k, v in value.items()}


def _without_metadata(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        logical_id: {k: v for k, v in r.items() if k != "Metadata"} for logical_id, r in resources.items()
    }


def deployed(template: dict[str, Any], read: Callable[[str], dict[str, Any]]) -> Deployed:
    """Transformed resources of ``template`` plus those of its local nested stacks (``read`` loads a
    nested template by its repository path)."""
    transformed = transform_template(copy.deepcopy(template))
    result = Deployed(
        resources=_without_metadata(transformed["Resources"]),
        conditions=dict(transformed.get("Conditions", {})),
    )
    result.stack_of = dict.fromkeys(result.resources, ROOT_STACK)
    for stack_id, path in local_nested_stacks(transformed).items():
        nested = read(path)
        text = json.dumps(nested.get("Resources", {}))
        for pseudo in STACK_PSEUDO_PARAMETERS:
            if pseudo in text:
                raise ValueError(f"{path} uses {pseudo}: its value differs from the parent stack's")
        passed = transformed["Resources"][stack_id]["Properties"].get("Parameters", {})
        for logical_id, resource in _without_metadata(nested.get("Resources", {})).items():
            if logical_id in result.resources:
                raise ValueError(f"{logical_id} is in {path} and in {result.stack_of[logical_id]}")
            result.resources[logical_id] = substitute(resource, passed)
            result.stack_of[logical_id] = stack_id
        for name, condition in nested.get("Conditions", {}).items():
            result.conditions.setdefault(name, substitute(condition, passed))
    return result


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


def condition_differences(base: Deployed, current: Deployed) -> dict[str, str]:
    """Conditions used by resources that moved between stacks, where their definitions differ."""
    used = {
        r["Condition"]
        for logical_id, r in current.resources.items()
        if "Condition" in r and base.stack_of.get(logical_id, ROOT_STACK) != current.stack_of[logical_id]
    }
    return {
        f"Condition {name}": "changed"
        for name in sorted(used)
        if base.conditions.get(name) != current.conditions.get(name)
    }


def moved(base: Deployed, current: Deployed) -> dict[str, str]:
    return {
        logical_id: f"{base.stack_of[logical_id]} -> {current.stack_of[logical_id]}"
        for logical_id in sorted(set(base.resources) & set(current.resources))
        if base.stack_of[logical_id] != current.stack_of[logical_id]
    }


def _git_show(revision: str, path: str) -> str:
    return subprocess.run(  # noqa: S603 - git (from PATH) with a revision the developer passed
        ["git", "show", f"{revision}:{path}"],  # noqa: S607
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="git revision of the template to compare against")
    parser.add_argument("--expect", nargs="*", default=[], help="logical ids that are meant to differ")
    args = parser.parse_args(argv)

    def read_base(path: str) -> dict[str, Any]:
        parsed: dict[str, Any] = yaml_parse(_git_show(args.base, path))
        return parsed

    base = deployed(read_base("template.yaml"), read_base)
    current = deployed(parse_template(REPO_ROOT / "template.yaml"), lambda p: parse_template(REPO_ROOT / p))
    found = differences(base.resources, current.resources) | condition_differences(base, current)
    for logical_id, where in moved(base, current).items():
        print(f"moved, equal: {logical_id} ({where})")
    for logical_id, what in found.items():
        marker = "expected" if logical_id in args.expect else "UNEXPECTED"
        print(f"{marker}: {logical_id} {what}")
    nested = sum(1 for stack in current.stack_of.values() if stack != ROOT_STACK)
    print(
        f"{len(current.resources)} resources now ({nested} in nested stacks), "
        f"{len(base.resources)} at {args.base}; {len(found)} differ"
    )
    return 1 if set(found) - set(args.expect) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
