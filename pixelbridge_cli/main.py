"""pixelbridge: operate a PixelBridge stack from the terminal.

  pixelbridge status [--route R] [--status S]     builds, newest first
  pixelbridge watch BUILD                          follow a build's timeline until it ends
  pixelbridge release BUILD                        release a held build
  pixelbridge retry BUILD                          re-drive a failed/rejected build from its last good stage
  pixelbridge rollback ROUTE [--upload-id U]       re-distribute an earlier upload (default: the previous one)
  pixelbridge send PATH.tar.gz [--build-id ...]    push a local build exactly as BuildPixel does
  pixelbridge doctor                               check outputs, secrets and Streampixel -> bridge webhooks

The stack is found by CloudFormation (--stack, default "pixelbridge") or given with --url/--token
(and --upload-token for send). --json prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from pixelbridge_cli.client import (
    PLACEHOLDER,
    REQUIRED_OUTPUTS,
    SECRET_FIELDS,
    CliError,
    OperatorClient,
    Target,
    answer,
    resolve_target,
)

TERMINAL = {"live", "rejected", "failed", "skipped", "superseded"}
Printer = Callable[[str], None]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="pixelbridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--stack", default="pixelbridge", help="CloudFormation stack name")
    root.add_argument("--region", default=None)
    root.add_argument("--url", help="operator API base URL (instead of the stack output)")
    root.add_argument("--token", help="operator token (instead of reading OperatorSecret)")
    root.add_argument("--upload-token", help="BuildPixel upload token, for send")
    root.add_argument("--json", action="store_true", help="machine-readable output")
    commands = root.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="list builds")
    status.add_argument("--route")
    status.add_argument("--status")
    status.add_argument("--limit", type=int, default=20)
    watch = commands.add_parser("watch", help="follow a build until it ends")
    watch.add_argument("build")
    watch.add_argument("--interval", type=float, default=2.0)
    watch.add_argument("--timeout", type=float, default=3600.0)
    for name in ("release", "retry"):
        commands.add_parser(name, help=f"{name} a build").add_argument("build")
    rollback = commands.add_parser("rollback", help="re-distribute an earlier upload of a route")
    rollback.add_argument("route")
    rollback.add_argument("--upload-id")
    send = commands.add_parser("send", help="push a .tar.gz build as BuildPixel does")
    send.add_argument("path", type=Path)
    send.add_argument("--build-id")
    send.add_argument("--project-id")
    send.add_argument("--branch")
    send.add_argument("--build-type")
    commands.add_parser("doctor", help="check the stack")
    return root


def main(argv: list[str] | None = None, out: Printer = print) -> int:
    args = parser().parse_args(argv)
    try:
        target = resolve_target(
            stack=args.stack,
            region=args.region,
            url=args.url,
            token=args.token,
            upload_token=args.upload_token,
        )
        return COMMANDS[args.command](args, target, out)
    except CliError as error:
        print(f"pixelbridge: {error}", file=sys.stderr)
        return 1


# -- commands ------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, target: Target, out: Printer) -> int:
    params = {"route": args.route, "status": args.status, "limit": args.limit}
    page = OperatorClient(target).get("/builds", params)
    if args.json:
        out(json.dumps(page))
        return 0
    out(f"{'BUILD':<28} {'STATUS':<13} {'ROUTE':<12} {'RECEIVED':<25} DETAIL")
    for build in page["builds"]:
        detail = build.get("error") or build.get("objection") or build.get("uploadId") or ""
        out(
            f"{build['buildId']:<28} {build['status']:<13} {build.get('route', ''):<12} "
            f"{build.get('receivedAt', ''):<25} {detail}"
        )
    if page.get("next"):
        out("(more: narrow with --route/--status or raise --limit)")
    return 0


def cmd_watch(args: argparse.Namespace, target: Target, out: Printer) -> int:
    client = OperatorClient(target)
    printed = 0
    deadline = time.monotonic() + args.timeout
    while True:
        record = client.get(f"/builds/{args.build}")
        for entry in record.get("timeline", [])[printed:]:
            out(json.dumps(entry) if args.json else format_entry(entry))
        printed = len(record.get("timeline", []))
        if record["status"] in TERMINAL and not record.get("redistribution"):
            if not args.json:
                out(f"{args.build} is {record['status'].upper()}")
            return 0 if record["status"] == "live" else 2
        if time.monotonic() > deadline:
            raise CliError(f"{args.build} is still {record['status']} after {args.timeout:.0f} s")
        time.sleep(args.interval)


def format_entry(entry: dict[str, Any]) -> str:
    status = f"[{entry['status']}]" if entry.get("status") else ""
    return f"{entry.get('at', ''):<25} {entry['event']:<24} {status:<15} {entry.get('detail', '')}"


def cmd_release(args: argparse.Namespace, target: Target, out: Printer) -> int:
    return show(OperatorClient(target).post(f"/builds/{args.build}/release"), args, out)


def cmd_retry(args: argparse.Namespace, target: Target, out: Printer) -> int:
    return show(OperatorClient(target).post(f"/builds/{args.build}/retry"), args, out)


def cmd_rollback(args: argparse.Namespace, target: Target, out: Printer) -> int:
    body = {"uploadId": args.upload_id} if args.upload_id else None
    return show(OperatorClient(target).post(f"/routes/{args.route}/rollback", body), args, out)


def show(result: dict[str, Any], args: argparse.Namespace, out: Printer) -> int:
    if args.json:
        out(json.dumps(result))
    else:
        out(", ".join(f"{key}: {value}" for key, value in result.items()))
    return 0


def cmd_send(args: argparse.Namespace, target: Target, out: Printer) -> int:
    from local.buildpixel import encode_custom_deploy, sample_metadata

    if not target.upload_url or not target.upload_token:
        raise CliError("send needs the upload URL and token: use --stack, or --url with --upload-token")
    overrides = {
        key: value
        for key, value in {
            "projectId": args.project_id,
            "branch": args.branch,
            "buildType": args.build_type,
        }.items()
        if value
    }
    build_id = args.build_id or f"cli-{uuid.uuid4().hex[:12]}"
    body, content_type = encode_custom_deploy(sample_metadata(build_id, **overrides), args.path.read_bytes())
    try:
        response = requests.post(
            target.upload_url,
            data=body,
            timeout=120,
            headers={"Content-Type": content_type, "Authorization": f"Bearer {target.upload_token}"},
        )
    except requests.RequestException as exc:
        raise CliError(f"cannot reach {target.upload_url} ({type(exc).__name__})") from None
    return show(answer(response), args, out)


def cmd_doctor(args: argparse.Namespace, target: Target, out: Printer) -> int:
    checks: list[dict[str, Any]] = []
    if target.outputs:
        missing = [name for name in REQUIRED_OUTPUTS if not target.outputs.get(name)]
        checks.append(
            {"check": "stack outputs", "ok": not missing, "detail": f"missing: {missing}" if missing else ""}
        )
        for output, fields in SECRET_FIELDS.items():
            values = target.secrets.get(output, {})
            unfilled = [name for name in fields if not values.get(name) or values.get(name) == PLACEHOLDER]
            checks.append(
                {
                    "check": f"secret {output.removesuffix('Arn')}",
                    "ok": not unfilled,
                    "detail": f"fill: {', '.join(unfilled)}" if unfilled else "",
                }
            )
    else:
        checks.append(
            {"check": "stack outputs and secrets", "ok": True, "detail": "skipped (--url/--token given)"}
        )
    try:
        result = OperatorClient(target).post("/doctor/test-webhook")
        for item in result.get("results", []):
            checks.append(
                {
                    "check": f"Streampixel -> bridge webhook ({item['route']})",
                    "ok": bool(item.get("success")),
                    "detail": f"{item.get('statusCode')} {item.get('message', '')}".strip(),
                }
            )
    except CliError as error:
        checks.append({"check": "operator API", "ok": False, "detail": str(error)})
    healthy = all(check["ok"] for check in checks)
    if args.json:
        out(json.dumps({"ok": healthy, "checks": checks}))
    else:
        for check in checks:
            out(f"{'OK  ' if check['ok'] else 'FAIL'} {check['check']}  {check['detail']}".rstrip())
    return 0 if healthy else 1


COMMANDS: dict[str, Callable[[argparse.Namespace, Target, Printer], int]] = {
    "status": cmd_status,
    "watch": cmd_watch,
    "release": cmd_release,
    "retry": cmd_retry,
    "rollback": cmd_rollback,
    "send": cmd_send,
    "doctor": cmd_doctor,
}


if __name__ == "__main__":
    sys.exit(main())
