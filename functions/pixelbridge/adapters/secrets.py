"""Secrets Manager JSON secrets through Powertools parameters (cached, so a warm function reads once)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from pixelbridge.domain.errors import MissingSecretValue

__all__ = ["MissingSecretValue", "SecretReader", "buildpixel_upload_authorization"]

SECRET_CACHE_SECONDS = 300


class SecretReader:
    def __init__(self, provider: SecretsProvider | None = None) -> None:
        self._provider = provider or SecretsProvider()

    def json(self, secret_id: str) -> dict[str, Any]:
        value = self._provider.get(secret_id, transform="json", max_age=SECRET_CACHE_SECONDS)
        if not isinstance(value, dict):
            raise ValueError("secret is not a JSON object")  # never include the value
        return value

    def field(self, secret_id: str, name: str) -> str:
        value = self.json(secret_id).get(name)
        if not isinstance(value, str) or not value or value == "REPLACE_ME":
            raise MissingSecretValue(f"secret field '{name}' is not set; fill it in Secrets Manager")
        return value


def buildpixel_upload_authorization(reader: SecretReader, secret_id: str) -> str:
    """The exact Authorization header BuildPixel must send: ``Bearer <uploadAuthToken>``."""
    return f"Bearer {reader.field(secret_id, 'uploadAuthToken')}"
