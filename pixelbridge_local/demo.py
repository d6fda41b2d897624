"""``make demo``: push a build exactly as BuildPixel does and follow it to ``live`` on the local stack.

Usage: python -m pixelbridge_local.demo [PATH.tar.gz] [--policy auto|manual|hold] [--slot-seconds N] [--serve]
       python -m pixelbridge_local.demo --pull [--size-mb 60]   (real size: signed webhook + artifact pull)

A build too big for one push (a Function URL takes ~4.5 MiB) goes the pull path by itself. With
``--policy hold`` the build stops at ``approved`` and the demo says how to release it; ``--serve``
keeps the stack running afterwards (status page, operator API) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from pixelbridge.settings import FUNCTION_URL_MAX_RAW_BODY
from pixelbridge_cli.client import CliError, held_for_release, read_build_file
from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.sample_build import big_ue_like_targz, ue_like_targz
from pixelbridge_local.serve import connection_lines, stop_on_signals
from pixelbridge_local.stack import EmbeddedStack, StackOptions


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


def follow(stack: EmbeddedStack, build_id: str, timeout: float, started: float) -> tuple[dict[str, Any], int]:
    """Print the build's steps until it ends or waits for an operator; returns it and the lines printed."""
    from pixelbridge.domain.statuses import is_terminal

    printed = 0
    while time.monotonic() - started < timeout:
        record = stack.build(build_id)
        if record:
            printed = print_progress(record, printed, started)
            if is_terminal(record["status"]) or held_for_release(record):
                return record, printed
        time.sleep(0.25)
    raise CliError(f"build {build_id} did not finish within {timeout:.0f} s (raise --timeout)")


def report(stack: EmbeddedStack, record: dict[str, Any], *, serving: bool) -> None:
    build_id = record["buildId"]
    if held_for_release(record):
        print(
            f"\nBuild {build_id} is APPROVED and held for an operator (policy hold). Release it with\n"
            f"  .venv/bin/pixelbridge --url {stack.operator_url} --token {stack.operator_token} "
            f"release {build_id}\n"
            f"or with the Release button on {stack.operator_url}/status"
        )
        if not serving:
            print('The stack stops now: run `make demo ARGS="--policy hold --serve"` to release it yourself.')
        return
    outcome = "" if record["status"] == "live" else f" ({record.get('error') or record.get('objection')})"
    print(f"\nBuild {build_id} is {record['status'].upper()}{outcome}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pixelbridge_local.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("artifact", nargs="?", type=Path, help="your own UE Win64 build as .tar.gz")
    parser.add_argument(
        "--policy",
        choices=["auto", "manual", "hold"],
        default="manual",
        help="release policy of the route (hold: stop at approved until an operator releases)",
    )
    parser.add_argument("--slot-seconds", type=int, default=2, help="spacing of Streampixel write calls")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the build to end")
    parser.add_argument("--pull", action="store_true", help="BuildPixel webhook + artifact pull path")
    parser.add_argument("--size-mb", type=int, default=60, help="size of the generated pull artifact")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the stack running afterwards (status page, CLI) until Ctrl-C",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return run(args)
    except CliError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the `with EmbeddedStack` block has stopped the stack
        print("\nInterrupted; the local stack is stopped.", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    artifact = read_build_file(args.artifact) if args.artifact else None
    pull = args.pull
    if not pull and artifact is not None and len(artifact) > FUNCTION_URL_MAX_RAW_BODY:
        print(
            f"{args.artifact} is {len(artifact) / 1e6:.1f} MB: more than one push can carry (a Function "
            f"URL takes ~{FUNCTION_URL_MAX_RAW_BODY / 2**20:.1f} MiB), so BuildPixel's webhook + pull path "
            "is used."
        )
        pull = True
    options = StackOptions(slot_seconds=args.slot_seconds, release_policy=args.policy)
    if pull:
        build_id = f"pull{int(time.time())}"
        if artifact is None:
            print(f"Generating a {args.size_mb} MB UE-like build (bigger than a Function URL accepts)...")
            artifact = big_ue_like_targz(pak_bytes=args.size_mb * 1024 * 1024)
        print(
            f"Starting the local stack (moto, BuildPixel + Streampixel simulators, policy {args.policy})..."
        )
    else:
        build_id = f"demo{int(time.time())}"
        artifact = artifact if artifact is not None else ue_like_targz()
        print(
            f"Starting the local stack (moto, Streampixel simulator, slot {args.slot_seconds} s, "
            f"policy {args.policy})..."
        )
    with EmbeddedStack(options) as stack:
        started = time.monotonic()
        sent = send_pull(stack, build_id, artifact) if pull else send_push(stack, build_id, artifact)
        if not sent:
            return 1
        record, printed = follow(stack, build_id, args.timeout, started)
        if pull:
            downloads = stack.buildpixel.requests_to("/artifacts/")
            print(
                f"BuildPixel simulator served {sum(r.body_bytes for r in downloads) / 1e6:.1f} MB "
                f"in {len(downloads)} request(s)"
            )
        calls = ", ".join(f"{call.endpoint}→{call.http_status}" for call in stack.simulator.calls)
        print(f"Streampixel simulator saw: {calls}")
        report(stack, record, serving=args.serve)
        if args.serve:
            keep_serving(stack, build_id, printed, started)
        return 0 if record["status"] == "live" or held_for_release(record) else 1


def send_push(stack: EmbeddedStack, build_id: str, artifact: bytes) -> bool:
    body, content_type = encode_custom_deploy(sample_metadata(build_id), artifact)
    print(f"BuildPixel → POST {stack.upload_url}  ({len(body)} bytes multipart, build {build_id})")
    response = requests.post(
        stack.upload_url,
        data=body,
        timeout=30,
        headers={"Content-Type": content_type, "Authorization": stack.upload_authorization},
    )
    print(f"  answered {response.status_code} {response.json()}")
    return response.status_code < 300


def send_pull(stack: EmbeddedStack, build_id: str, artifact: bytes) -> bool:
    """BuildPixel sends ``build.complete`` (signed); PixelBridge pulls the artifact and ships it."""
    stack.buildpixel.add_artifact(build_id, artifact, **sample_metadata(build_id))
    print(
        f"BuildPixel → POST {stack.buildpixel_webhook_url}  (signed build.complete, "
        f"artifact {len(artifact) / 1e6:.1f} MB, build {build_id})"
    )
    response = stack.buildpixel.send_build_complete(build_id)
    print(f"  answered {response.status_code} {response.json()}")
    return response.status_code < 300


def keep_serving(stack: EmbeddedStack, build_id: str, printed: int, started: float) -> None:
    """Keep the stack up until Ctrl-C, still printing the build's new steps (e.g. after a release)."""
    stop = threading.Event()
    stop_on_signals(stop)
    for line in connection_lines(stack):
        print(line)
    while not stop.wait(0.5):
        record = stack.build(build_id)
        if record:
            printed = print_progress(record, printed, started)
    print("Stopping the local stack...")


if __name__ == "__main__":
    sys.exit(main())
