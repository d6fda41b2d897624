"""Streampixel credentials from ``StreampixelSecret``: ``{userId, apiKey}`` plus optional named accounts."""

from __future__ import annotations

from pixelbridge.adapters.secrets import MissingSecretValue, SecretReader
from pixelbridge.adapters.streampixel import StreampixelCredentials


def credentials_for(reader: SecretReader, secret_id: str, account: str) -> StreampixelCredentials:
    document = reader.json(secret_id)
    entry = document if account == "default" else (document.get("accounts") or {}).get(account)
    if not isinstance(entry, dict):
        raise MissingSecretValue(f"Streampixel account '{account}' is not in the Streampixel secret")
    user_id, api_key = entry.get("userId"), entry.get("apiKey")
    if not isinstance(user_id, str) or not isinstance(api_key, str) or "REPLACE_ME" in (user_id, api_key):
        raise MissingSecretValue(
            f"Streampixel account '{account}' has no userId/apiKey; fill the Streampixel secret"
        )
    return StreampixelCredentials(user_id=user_id, api_key=api_key)
