"""Transform template.yaml with the SAM translator into plain CloudFormation JSON (offline).

Usage (any venv with aws-sam-translator: .venv, or the SAM CLI's .venv-sam):
    AWS_DEFAULT_REGION=us-east-1 .venv/bin/python scripts/sam_transform.py template.yaml out.json

Only the transformed template shows the real resource graph (generated roles, permissions,
Function URLs), which is what cfn-lint's E3004 cycle check, checkov's IAM checks and
scripts/deploy_readiness.py need.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_CODE = "s3://placeholder-bucket/code.zip"


class NoManagedPolicies:
    """The template uses SAM policy templates and ARNs only, so no IAM lookup is needed."""

    def load(self) -> dict[str, str]:
        return {}


def transform_template(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation the SAM transform makes of ``template`` (a parsed template.yaml)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The translator only accepts S3 locations for code and definitions (what `sam package` produces).
    globals_fn = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_fn:
        globals_fn["CodeUri"] = PLACEHOLDER_CODE
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = PLACEHOLDER_CODE
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["DefinitionUri"] = "s3://placeholder-bucket/definition.asl.json"
    result: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return result


def parse_template(path: Path | str) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(Path(path).read_text(encoding="utf-8"))
    return parsed


def local_nested_stacks(template: dict[str, Any]) -> dict[str, str]:
    """Nested stacks whose TemplateURL is a file of this repository (``sam package`` uploads it), by
    logical id: their path relative to the repository root."""
    return {
        logical_id: resource["Properties"]["TemplateURL"]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] == "AWS::CloudFormation::Stack"
        and isinstance(resource.get("Properties", {}).get("TemplateURL"), str)
        and not resource["Properties"]["TemplateURL"].startswith(("https://", "http://", "s3://"))
    }


def main(src: str, dst: str) -> None:
    result = transform_template(parse_template(src))
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    roles = sum(1 for r in result["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    print(f"transformed: {len(result['Resources'])} resources, {roles} IAM roles")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
