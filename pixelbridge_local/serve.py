"""``make serve``: keep the whole local stack running and print how to use it, until Ctrl-C.

Usage: python -m pixelbridge_local.serve [--policy auto|manual|hold] [--slot-seconds N]

Everything listens on 127.0.0.1 only. The tokens printed here are generated for this run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from pixelbridge_local.stack import EmbeddedStack, StackOptions

Printer = Callable[[str], None]


def connection_lines(stack: EmbeddedStack) -> list[str]:
    """What a person needs to use the running stack (the local equivalents of the stack outputs)."""
    operator = stack.operator_url
    return [
        "",
        "PixelBridge local stack is running (Ctrl-C stops it).",
        "",
        f"  Status page          {operator}/status   (paste the operator token)",
        f"  Operator API         {operator}",
        f"  Operator token       {stack.operator_token}",
        f"  Upload URL (push)    {stack.upload_url}",
        f"  Upload header        Authorization: {stack.upload_authorization}",
        f"  BuildPixel webhook   {stack.buildpixel_webhook_url}",
        f"  Webhook secret       {stack.buildpixel_signing_secret}   (X-BuildPixel-Signature HMAC key)",
        f"  Streampixel webhook  {stack.streampixel_webhook_url}",
        "",
        "Use the pixelbridge CLI against it (another terminal):",
        f"  export PIXELBRIDGE_URL={operator}",
        f"  export PIXELBRIDGE_TOKEN={stack.operator_token}",
        f"  export PIXELBRIDGE_UPLOAD_TOKEN={stack.upload_token}",
        "  .venv/bin/pixelbridge send MyGame.tar.gz     # or any .tar.gz; no file? see `make demo`",
        "  .venv/bin/pixelbridge status",
        "",
    ]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pixelbridge_local.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--policy",
        choices=["auto", "manual", "hold"],
        default="auto",
        help="release policy of the default route (hold: builds wait at approved for `release`)",
    )
    parser.add_argument(
        "--slot-seconds",
        type=int,
        default=2,
        help="spacing of Streampixel write calls (deployed default 120; short here to see builds go live)",
    )
    return parser.parse_args(argv)


def serve(
    options: StackOptions,
    stop: threading.Event,
    out: Printer = print,
    ready: Callable[[EmbeddedStack], None] | None = None,
) -> int:
    """Run the stack until ``stop`` is set; ``ready`` is called with the running stack."""
    policy = options.release_policy
    out(f"Starting the local stack (moto, BuildPixel + Streampixel simulators, policy {policy})...")
    with EmbeddedStack(options) as stack:
        for line in connection_lines(stack):
            out(line)
        if ready is not None:
            ready(stack)
        stop.wait()
        out("Stopping the local stack...")
    out("Stopped.")
    return 0


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C (SIGINT) or a service manager's SIGTERM sets ``stop``: the stack then stops cleanly."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stop = threading.Event()
    try:
        stop_on_signals(stop)
        return serve(StackOptions(slot_seconds=args.slot_seconds, release_policy=args.policy), stop)
    except KeyboardInterrupt:  # before the handlers were installed: nothing was started yet
        print("\nStopped.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
