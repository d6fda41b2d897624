"""``python -m pixelbridge_local.streampixel_sim --account USER:KEY --project PROJECT:USER``."""

from __future__ import annotations

import argparse
import threading

from pixelbridge_local.streampixel_sim.simulator import StreampixelSimulator


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        left, sep, right = value.partition(":")
        if not sep or not left or not right:
            raise SystemExit(f"--{what} expects A:B, got {value!r}")
        pairs[left] = right
    return pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a local Streampixel simulator.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--account", action="append", default=[], help="USER_ID:API_KEY (repeatable)")
    parser.add_argument("--project", action="append", default=[], help="PROJECT_ID:USER_ID (repeatable)")
    parser.add_argument("--webhook", action="append", default=[], help="PROJECT_ID=URL (repeatable)")
    parser.add_argument("--window", type=float, default=120.0, help="rate-limit window in seconds")
    parser.add_argument("--stage-delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    simulator = StreampixelSimulator(
        accounts=_pairs(args.account, "account"),
        projects=_pairs(args.project, "project"),
        window_seconds=args.window,
        stage_delay=args.stage_delay,
        port=args.port,
    )
    for item in args.webhook:
        project_id, _, url = item.partition("=")
        simulator.set_webhook_url(project_id, url)
    print(f"Streampixel simulator on {simulator.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
