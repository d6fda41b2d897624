"""Who may call: API keys, users and the projects they own, and the per-user write window (429)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pixelbridge_local.streampixel_sim.api_requests import optional_str
from pixelbridge_local.streampixel_sim.contract import RATE_LIMIT_MESSAGE, ApiError


class Accounts:
    def __init__(self, accounts: dict[str, str], projects: dict[str, str]) -> None:
        self._user_by_key = {api_key: user_id for user_id, api_key in accounts.items()}
        self._project_owner = dict(projects)

    def check_access(self, body: dict[str, Any], *, extra_required: Iterable[str]) -> tuple[str, str]:
        """Required fields (400), key (401), user (401), project (404) and ownership (403), in that order."""
        for name in ("apiKey", "userId", "projectId", *extra_required):
            if not optional_str(body, name):
                raise ApiError(400, f"Missing required field: {name}")
        key_owner = self._user_by_key.get(body["apiKey"])
        if key_owner is None:
            raise ApiError(401, "Unauthorized: Invalid API Key")
        if key_owner != body["userId"]:
            raise ApiError(401, "Invalid User")
        project_owner = self._project_owner.get(body["projectId"])
        if project_owner is None:
            raise ApiError(404, "Project not found")
        if project_owner != key_owner:
            raise ApiError(403, "Forbidden: project does not belong to this user")
        return key_owner, body["projectId"]


class WriteWindow:
    """One write call (upload-file or distribute-file) per ``seconds`` per user; 0 turns it off."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last_write: dict[str, float] = {}

    def take(self, user_id: str, now: float) -> None:
        last = self._last_write.get(user_id)
        if self.seconds > 0 and last is not None and now - last < self.seconds:
            raise ApiError(429, RATE_LIMIT_MESSAGE)  # a refused call does not move the window
        self._last_write[user_id] = now
