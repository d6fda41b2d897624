"""Where the stack is and how to talk to it: CloudFormation outputs + Secrets Manager, or flags.

Tokens live in memory only: never printed, never in exception messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

PLACEHOLDER = "REPLACE_ME"
REQUIRED_OUTPUTS = ("UploadBuildUrl", "OperatorApiUrl", "OperatorSecretArn", "BuildPixelSecretArn")
# Secrets and the fields a person must fill (generated ones are checked too: they must not be empty).
SECRET_FIELDS = {
    "BuildPixelSecretArn": ("uploadAuthToken", "webhookSigningSecret", "apiToken"),
    "StreampixelSecretArn": ("userId", "apiKey"),
    "StreampixelWebhookSecretArn": ("pathSecret",),
    "OperatorSecretArn": ("operatorToken",),
}


class CliError(Exception):
    """A problem to report to the person at the terminal (exit code 1): a sentence saying what to do.

    ``error`` is a short machine-readable code (``--json`` prints ``{"error", "message"}``).
    """

    def __init__(self, message: str, error: str = "error") -> None:
        super().__init__(message)
        self.error = error


HELD_EVENT = "held for operator release"


def held_for_release(record: dict[str, Any]) -> bool:
    """A ``hold`` build Streampixel approved, waiting for an operator's ``release`` (not yet asked)."""
    events = [entry.get("event") for entry in record.get("timeline", [])]
    return (
        record.get("status") == "approved" and HELD_EVENT in events and not record.get("releaseRequestedAt")
    )


def read_build_file(path: Path) -> bytes:
    """The bytes of a local build archive, or a sentence saying what is wrong with the path."""
    if not path.exists():
        raise CliError(f"{path} does not exist: give the path of your build's .tar.gz file")
    if path.is_dir():
        raise CliError(
            f"{path} is a directory: give the build's .tar.gz file (e.g. tar czf Build.tar.gz -C {path} .)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path} ({exc.strerror or type(exc).__name__})") from None


@dataclass
class Target:
    api_url: str
    token: str = field(repr=False)
    upload_url: str = ""
    upload_token: str = field(default="", repr=False)
    outputs: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)


def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    import boto3

    described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    return {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}


def read_secret(arn: str, region: str | None) -> dict[str, Any]:
    import boto3

    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)
    document = json.loads(value["SecretString"])
    return document if isinstance(document, dict) else {}


def stack_lookup_error(stack: str, region: str | None, exc: Exception) -> CliError:
    """What went wrong reading the stack, as a sentence with what to do (never a bare class name)."""
    instead = "or pass --url and --token (the OperatorApiUrl output and the OperatorSecret's operatorToken)"
    if isinstance(exc, ModuleNotFoundError):
        return CliError(
            f"boto3 is not installed: run `pip install boto3` (or `pip install -e .`), {instead}", "no_boto3"
        )
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoRegionError):
        return CliError(
            f"no AWS region is set: pass --region (e.g. --region eu-west-1) or set AWS_REGION, {instead}",
            "no_region",
        )
    if isinstance(exc, NoCredentialsError):
        return CliError(
            "no AWS credentials found: run `aws configure` (or `aws sso login`, or set AWS_PROFILE), "
            + instead,
            "no_credentials",
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "ValidationError" and "does not exist" in message:
            return CliError(
                f"stack {stack!r} does not exist in region {region or 'of your AWS configuration'}: pass "
                f"--stack with the name you gave `sam deploy` and --region, {instead}",
                "stack_not_found",
            )
        if code in {"AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException"}:
            return CliError(
                f"AWS refused to describe stack {stack!r} ({code}): use credentials allowed "
                f"cloudformation:DescribeStacks and secretsmanager:GetSecretValue, {instead}",
                "access_denied",
            )
        return CliError(
            f"cannot read stack {stack!r}: AWS answered {code}: {message}; {instead}", "aws_error"
        )
    if isinstance(exc, BotoCoreError):
        return CliError(f"cannot read stack {stack!r}: {exc}; {instead}", "aws_error")
    return CliError(f"cannot read stack {stack!r} ({type(exc).__name__}: {exc}); {instead}", "aws_error")


def resolve_target(
    *, stack: str, region: str | None, url: str | None, token: str | None, upload_token: str | None
) -> Target:
    """Flags win; anything missing is read from the stack's outputs and secrets."""
    if url and token:
        base = url.rstrip("/")
        return Target(
            api_url=base, token=token, upload_url=f"{base}/builds/upload", upload_token=upload_token or ""
        )
    try:
        outputs = stack_outputs(stack, region)
    except Exception as exc:
        raise stack_lookup_error(stack, region, exc) from None
    secrets: dict[str, dict[str, Any]] = {}
    for output in SECRET_FIELDS:
        if outputs.get(output):
            try:
                secrets[output] = read_secret(outputs[output], region)
            except Exception:  # doctor reports it; commands that need it fail below
                secrets[output] = {}
    operator_token = token or str(secrets.get("OperatorSecretArn", {}).get("operatorToken", ""))
    if not operator_token:
        raise CliError(
            "no operator token: the OperatorSecret could not be read with these credentials; pass --token",
            "no_token",
        )
    return Target(
        api_url=(url or outputs.get("OperatorApiUrl", "")).rstrip("/"),
        token=operator_token,
        upload_url=outputs.get("UploadBuildUrl", ""),
        upload_token=upload_token or str(secrets.get("BuildPixelSecretArn", {}).get("uploadAuthToken", "")),
        outputs=outputs,
        secrets=secrets,
    )


class OperatorClient:
    def __init__(self, target: Target, *, timeout: float = 30.0) -> None:
        self._target = target
        self._timeout = timeout
        self._session = requests.Session()

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", path, body=body)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._session.request(
                method,
                self._target.api_url + path,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                headers={"Authorization": f"Bearer {self._target.token}"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise unreachable(self._target.api_url, exc) from None
        return answer(response)


def unreachable(url: str, exc: Exception) -> CliError:
    return CliError(
        f"cannot reach {url} ({type(exc).__name__}): check the URL (stack output OperatorApiUrl) "
        "and that the stack (or `make serve`) is running",
        "unreachable",
    )


WHAT_TO_DO = {
    401: "pass the operatorToken of the stack's OperatorSecret with --token (or use --stack)",
    404: "check the id with `pixelbridge status`",
    409: "read the build with `pixelbridge show BUILD` and try what its status allows",
    413: "too big for a push: use BuildPixel's webhook + pull path (README, Configure BuildPixel)",
    503: "fill the stack's secrets (run `pixelbridge doctor`)",
}


def answer(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = {"error": "not_json", "message": response.text[:200]}
    if response.status_code >= 400:
        error = payload if isinstance(payload, dict) else {"message": payload}
        code = str(error.get("error") or "http_error")
        message = str(error.get("message") or "no message")
        advice = WHAT_TO_DO.get(response.status_code)
        raise CliError(f"{message} ({response.status_code} {code})" + (f": {advice}" if advice else ""), code)
    return payload if isinstance(payload, dict) else {"value": payload}
