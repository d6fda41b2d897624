"""pixelbridge: operate a PixelBridge stack from the terminal.

  pixelbridge status [--route R] [--status S]     per route the build live now; builds, newest first
  pixelbridge show BUILD                           one build: facts, objection, manifest, timeline
  pixelbridge watch BUILD                          follow a build until it ends (or waits to be released)
  pixelbridge release BUILD                        release a held build
  pixelbridge retry BUILD                          re-drive a failed/rejected build from its last good stage
  pixelbridge rollback ROUTE [--upload-id U]       re-distribute an earlier upload (default: the previous one)
  pixelbridge send PATH.tar.gz [--build-id ...]    push a local build exactly as BuildPixel does
  pixelbridge doctor                               check outputs, secrets and Streampixel -> bridge webhooks

The stack is found by CloudFormation (--stack, default "pixelbridge") or given with --url/--token
(and --upload-token for send), or PIXELBRIDGE_URL / PIXELBRIDGE_TOKEN / PIXELBRIDGE_UPLOAD_TOKEN
(`make serve` prints them). Options go before or after the subcommand. --json prints
machine-readable output, errors included ({"error", "message"}).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import requests

from pixelbridge.settings import FUNCTION_URL_MAX_RAW_BODY
from pixelbridge_cli.client import (
    PLACEHOLDER,
    REQUIRED_OUTPUTS,
    SECRET_FIELDS,
    CliError,
    OperatorClient,
    Target,
    answer,
    held_for_release,
    read_build_file,
    resolve_target,
    unreachable,
)

TERMINAL = {"live", "rejected", "failed", "skipped", "superseded"}
Printer = Callable[[str], None]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is JSON too when --json is on the command line."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if Parser.json_errors:
            print(json.dumps({"error": "usage", "message": f"{message} (see `{self.prog} --help`)"}))
            raise SystemExit(2)
        super().error(message)


def global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The connection options; on subcommands without defaults, so either position works."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    env = os.environ.get
    parser.add_argument(
        "--stack",
        default=default(env("PIXELBRIDGE_STACK", "pixelbridge")),
        help="CloudFormation stack name to read outputs and secrets from (default: pixelbridge)",
    )
    parser.add_argument(
        "--region", default=default(None), help="AWS region of the stack (default: your AWS configuration)"
    )
    parser.add_argument(
        "--url",
        default=default(env("PIXELBRIDGE_URL")),
        help="operator API base URL, the OperatorApiUrl output (env PIXELBRIDGE_URL); skips the stack lookup",
    )
    parser.add_argument(
        "--token",
        default=default(env("PIXELBRIDGE_TOKEN")),
        help="operator token, the OperatorSecret's operatorToken (env PIXELBRIDGE_TOKEN)",
    )
    parser.add_argument(
        "--upload-token",
        default=default(env("PIXELBRIDGE_UPLOAD_TOKEN")),
        help="BuildPixel upload token for send, the BuildPixelSecret's uploadAuthToken "
        "(env PIXELBRIDGE_UPLOAD_TOKEN)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help='machine-readable output; errors too, as {"error", "message"}',
    )


def parser() -> argparse.ArgumentParser:
    root = Parser(
        prog="pixelbridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    global_options(root, defaults=True)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        global_options(sub, defaults=False)
        return sub

    status = command("status", "per route the build live now, then builds newest first")
    status.add_argument("--route", help="only this route's builds")
    status.add_argument("--status", help="only builds in this status (e.g. failed, live, approved)")
    status.add_argument("--limit", type=int, default=20, help="how many builds to list (1-100, default 20)")
    show = command("show", "one build: status, objection, conversion manifest and timeline")
    show.add_argument("build", help="the build id (BuildPixel's buildId)")
    watch = command("watch", "follow a build's timeline until it ends or waits for an operator's release")
    watch.add_argument("build", help="the build id (BuildPixel's buildId)")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between reads (default 2)")
    watch.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    command("release", "release a build held at approved (route policy hold)").add_argument(
        "build", help="the held build's id"
    )
    command("retry", "re-drive a failed or rejected build from its last good stage").add_argument(
        "build", help="the failed or rejected build's id"
    )
    rollback = command(
        "rollback", "re-distribute an earlier upload of a route (default: the previous live one)"
    )
    rollback.add_argument("route", help="the route id (see `pixelbridge status`)")
    rollback.add_argument(
        "--upload-id", help="the Streampixel uploadId to bring back (default: previous live)"
    )
    send = command("send", "push a local .tar.gz build exactly as BuildPixel's custom deploy does")
    send.add_argument("path", type=Path, help="the build archive (.tar.gz of the packaged Win64 build)")
    send.add_argument("--build-id", help="build id to use (default: cli-<random>)")
    send.add_argument("--project-id", help="BuildPixel project id in the metadata (routes match on it)")
    send.add_argument("--branch", help="branch in the metadata (routes match on it)")
    send.add_argument("--build-type", help="buildType in the metadata, e.g. Shipping or Development")
    command("doctor", "check stack outputs, filled secrets and Streampixel -> bridge webhooks")
    return root


def main(argv: list[str] | None = None, out: Printer = print) -> int:
    Parser.json_errors = "--json" in (sys.argv[1:] if argv is None else argv)
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
        if args.json:
            out(json.dumps({"error": error.error, "message": str(error)}))
        else:
            print(f"pixelbridge: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pixelbridge: interrupted", file=sys.stderr)
        return 130


# -- status --------------------------------------------------------------------------------------


def live_now(builds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per route, the build made live most recently (a rollback makes an older build live again)."""
    current: dict[str, dict[str, Any]] = {}
    for build in builds:
        since = build.get("liveSince")
        if not (since and build.get("uploadId") and build.get("route")):
            continue
        held = current.get(build["route"])
        if held is None or str(since) > str(held["liveSince"]):
            current[build["route"]] = build
    return current


def note(build: dict[str, Any], current: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(status to show, what to know) for one build of the list."""
    status = str(build["status"])
    if build.get("liveSince") and build.get("uploadId"):
        serving = current.get(build.get("route", ""))
        if serving is not None and serving["buildId"] == build["buildId"]:
            return "LIVE NOW", f"since {build['liveSince']}, upload {build['uploadId']}"
        replaced_by = serving["buildId"] if serving else "?"
        return f"{status} (earlier)", f"was live since {build['liveSince']}; now {replaced_by}"
    if build.get("objection"):
        return status, f"Streampixel: {build['objection']}"
    if build.get("error"):
        return status, str(build["error"])
    return status, ""


def cmd_status(args: argparse.Namespace, target: Target, out: Printer) -> int:
    params = {"route": args.route, "status": args.status, "limit": args.limit}
    page = OperatorClient(target).get("/builds", params)
    builds = page.get("builds", [])
    current = live_now(builds)
    if args.json:
        for build in builds:
            build["liveNow"] = current.get(build.get("route", ""), {}).get("buildId") == build["buildId"]
        page["liveNow"] = {route: build["buildId"] for route, build in current.items()}
        out(json.dumps(page))
        return 0
    if current:
        out(f"{'ROUTE':<14} {'LIVE NOW':<28} SINCE")
        for route, build in sorted(current.items()):
            out(f"{route:<14} {build['buildId']:<28} {build['liveSince']}")
        out("")
    out(f"{'BUILD':<28} {'STATUS':<17} {'ROUTE':<14} {'RECEIVED':<25} NOTE")
    for build in builds:
        shown, what = note(build, current)
        out(
            f"{build['buildId']:<28} {shown:<17} {build.get('route') or '-':<14} "
            f"{build.get('receivedAt', ''):<25} {what}".rstrip()
        )
    if page.get("next"):
        out("(more: narrow with --route/--status or raise --limit)")
    if args.route or args.status:
        out("(filtered: LIVE NOW is computed from the builds listed)")
    return 0


# -- one build -----------------------------------------------------------------------------------


def format_entry(entry: dict[str, Any]) -> str:
    status = f"[{entry['status']}]" if entry.get("status") else ""
    return f"{entry.get('at', ''):<25} {entry['event']:<24} {status:<15} {entry.get('detail', '')}".rstrip()


def cmd_show(args: argparse.Namespace, target: Target, out: Printer) -> int:
    record = OperatorClient(target).get(f"/builds/{args.build}")
    if args.json:
        out(json.dumps(record))
        return 0
    metadata = record.get("metadata") or {}
    facts = [
        ("build", record.get("buildId")),
        ("status", record.get("status")),
        ("route", record.get("route")),
        ("arrived by", record.get("source")),
        ("received", record.get("receivedAt")),
        ("live since", record.get("liveSince")),
        ("upload", record.get("uploadId")),
        ("project", metadata.get("projectId")),
        ("branch", metadata.get("branch")),
        ("error", record.get("error")),
        ("objection", record.get("objection")),
    ]
    for name, value in facts:
        if value:
            out(f"{name + ':':<12} {value}")
    manifest = record.get("manifest") or {}
    if manifest:
        out(
            "manifest:    "
            + ", ".join(f"{key} {value}" for key, value in manifest.items() if key != "notes" and value)
        )
    out("timeline:")
    for entry in record.get("timeline", []):
        out(f"  {format_entry(entry)}")
    if held_for_release(record):
        out(f"held: release it with `pixelbridge release {record['buildId']}`")
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
        if held_for_release(record):
            command = f"pixelbridge release {args.build}"
            if args.json:
                out(
                    json.dumps(
                        {"buildId": args.build, "status": record["status"], "held": True, "next": command}
                    )
                )
            else:
                out(f"{args.build} is APPROVED and held for an operator: run `{command}`")
            return 0
        if record["status"] in TERMINAL and not record.get("redistribution"):
            if not args.json:
                out(f"{args.build} is {record['status'].upper()}")
            return 0 if record["status"] == "live" else 2
        if time.monotonic() > deadline:
            raise CliError(
                f"{args.build} is still {record['status']} after {args.timeout:.0f} s: "
                "watch again, or raise --timeout",
                "timeout",
            )
        time.sleep(args.interval)


# -- actions -------------------------------------------------------------------------------------


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
    from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata

    if not target.upload_url or not target.upload_token:
        raise CliError(
            "send needs the upload URL and token: use --stack, or --url with --upload-token",
            "no_upload_token",
        )
    artifact = read_build_file(args.path)
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
    body, content_type = encode_custom_deploy(sample_metadata(build_id, **overrides), artifact)
    if len(body) > FUNCTION_URL_MAX_RAW_BODY:
        raise CliError(
            f"{args.path} makes a {len(body) / 1e6:.1f} MB push, more than one Function URL request "
            f"carries (~{FUNCTION_URL_MAX_RAW_BODY / 2**20:.1f} MiB): ship it by BuildPixel's "
            "build.complete webhook + pull path (README, Configure BuildPixel)",
            "too_big_to_push",
        )
    try:
        response = requests.post(
            target.upload_url,
            data=body,
            timeout=120,
            headers={"Content-Type": content_type, "Authorization": f"Bearer {target.upload_token}"},
        )
    except requests.RequestException as exc:
        raise unreachable(target.upload_url, exc) from None
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
    "show": cmd_show,
    "watch": cmd_watch,
    "release": cmd_release,
    "retry": cmd_retry,
    "rollback": cmd_rollback,
    "send": cmd_send,
    "doctor": cmd_doctor,
}


if __name__ == "__main__":
    sys.exit(main())
