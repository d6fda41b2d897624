"""``make demo``: push a build exactly as BuildPixel does and follow it to ``live`` on the local stack.

Usage: python -m local.demo [PATH.tar.gz] [--policy auto|manual|hold] [--slot-seconds N]
       python -m local.demo --pull [--size-mb 60]   (real-size build: signed webhook + artifact pull)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import requests

from local.buildpixel import encode_custom_deploy, sample_metadata
from local.sample_build import big_ue_like_targz, ue_like_targz
from local.stack import LocalStack, StackOptions


def print_progress(record: dict[str, Any], printed: int, started: float) -> int:
    """Print the timeline entries not printed yet; returns how many are printed now."""
    timeline = record.get("timeline", [])
    for entry in timeline[printed:]:
        status = f"[{entry['status']}]" if entry.get("status") else ""
        print(
            f"  {time.monotonic() - started:6.1f}s  {entry['event']:<24} {status:<15} "
            f"{entry.get('detail', '')}"
        )
    return len(timeline)


def follow(stack: LocalStack, build_id: str, timeout: float) -> dict[str, Any]:
    from pixelbridge.domain.statuses import is_terminal

    started = time.monotonic()
    printed = 0
    while time.monotonic() - started < timeout:
        record = stack.build(build_id)
        if record:
            printed = print_progress(record, printed, started)
            if is_terminal(record["status"]):
                return record
        time.sleep(0.25)
    raise SystemExit(f"build {build_id} did not finish within {timeout:.0f} s")


def follow_to_the_end(stack: LocalStack, build_id: str, timeout: float) -> dict[str, Any]:
    record = follow(stack, build_id, timeout)
    outcome = "" if record["status"] == "live" else f" ({record.get('error') or record.get('objection')})"
    print(f"\nBuild {build_id} is {record['status'].upper()}{outcome}")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("artifact", nargs="?", type=Path, help="your own UE Win64 build as .tar.gz")
    parser.add_argument("--policy", choices=["auto", "manual", "hold"], default="manual")
    parser.add_argument("--slot-seconds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--pull", action="store_true", help="BuildPixel webhook + artifact pull path")
    parser.add_argument("--size-mb", type=int, default=60, help="size of the generated pull artifact")
    args = parser.parse_args(argv)
    if args.pull:
        return pull_demo(args)

    artifact = args.artifact.read_bytes() if args.artifact else ue_like_targz()
    build_id = f"demo{int(time.time())}"
    options = StackOptions(slot_seconds=args.slot_seconds, release_policy=args.policy)
    print(
        f"Starting the local stack (moto, Streampixel simulator, slot {args.slot_seconds} s, "
        f"policy {args.policy})..."
    )
    with LocalStack(options) as stack:
        body, content_type = encode_custom_deploy(sample_metadata(build_id), artifact)
        print(f"BuildPixel → POST {stack.upload_url}  ({len(body)} bytes multipart, build {build_id})")
        response = requests.post(
            stack.upload_url,
            data=body,
            timeout=30,
            headers={"Content-Type": content_type, "Authorization": stack.upload_authorization},
        )
        print(f"  answered {response.status_code} {response.json()}")
        if response.status_code >= 300:
            return 1
        record = follow_to_the_end(stack, build_id, args.timeout)
        calls = ", ".join(f"{call.endpoint}→{call.http_status}" for call in stack.simulator.calls)
        print(f"Streampixel simulator saw: {calls}")
        return 0 if record["status"] in {"live", "approved"} else 1


def pull_demo(args: argparse.Namespace) -> int:
    """BuildPixel sends ``build.complete`` (signed); PixelBridge pulls the artifact and ships it."""
    build_id = f"pull{int(time.time())}"
    if args.artifact:
        artifact = args.artifact.read_bytes()
    else:
        print(f"Generating a {args.size_mb} MB UE-like build (bigger than a Function URL accepts)...")
        artifact = big_ue_like_targz(pak_bytes=args.size_mb * 1024 * 1024)
    options = StackOptions(slot_seconds=args.slot_seconds, release_policy=args.policy)
    print(f"Starting the local stack (moto, BuildPixel + Streampixel simulators, policy {args.policy})...")
    with LocalStack(options) as stack:
        stack.buildpixel.add_artifact(build_id, artifact, **sample_metadata(build_id))
        print(
            f"BuildPixel → POST {stack.buildpixel_webhook_url}  (signed build.complete, "
            f"artifact {len(artifact) / 1e6:.1f} MB, build {build_id})"
        )
        started = time.monotonic()
        response = stack.buildpixel.send_build_complete(build_id)
        print(f"  answered {response.status_code} {response.json()} in {time.monotonic() - started:.2f} s")
        if response.status_code >= 300:
            return 1
        record = follow_to_the_end(stack, build_id, args.timeout)
        downloads = stack.buildpixel.requests_to("/artifacts/")
        print(
            f"BuildPixel simulator served {sum(r.body_bytes for r in downloads) / 1e6:.1f} MB "
            f"in {len(downloads)} request(s)"
        )
        calls = ", ".join(f"{call.endpoint}→{call.http_status}" for call in stack.simulator.calls)
        print(f"Streampixel simulator saw: {calls}")
        return 0 if record["status"] in {"live", "approved"} else 1


if __name__ == "__main__":
    sys.exit(main())
