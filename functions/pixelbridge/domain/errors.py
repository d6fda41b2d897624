"""Domain errors.

The class name of an error raised inside a Step Functions Lambda task becomes the state machine's
error name (``errorType``), so these names are part of the workflow contract
(``statemachine/release.asl.json`` retries and catches them by name).
"""

from __future__ import annotations


class PixelBridgeError(Exception):
    """Base class: every error PixelBridge raises on purpose."""


class RateLimited(PixelBridgeError):
    """Streampixel answered 429: take a new slot and try again, never give up on the build."""


class Transient(PixelBridgeError):
    """A 5xx, timeout or connection error: worth retrying.

    ``ambiguous`` is true when the request may have reached Streampixel (timeout after sending,
    5xx), so a retry of a non-idempotent call needs a recorded decision first.
    """

    def __init__(self, message: str, *, ambiguous: bool = True) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class StreampixelError(PixelBridgeError):
    """Streampixel refused the request for good (400/401/403/404/415...): the build fails with this reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Streampixel answered {status}: {message}")
        self.status = status
        self.message = message


class ArchiveRejected(PixelBridgeError):
    """The build archive is unsafe, corrupt, too large or not a Windows package."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Superseded(PixelBridgeError):
    """A newer build for the same route exists; this one must not reach Streampixel."""


class MissingSecretValue(PixelBridgeError, RuntimeError):
    """A secret the user must fill is still empty or a placeholder (PixelBridge is not configured yet)."""


class TransitionRejected(PixelBridgeError):
    """A status change would move a build backwards or out of a terminal state."""


# -- refusals: a request or command the rules turn down -----------------------------------------------
# Use cases raise these; each edge maps them to its own protocol (handlers/http_errors.py for HTTP).


class Rejected(PixelBridgeError):
    """A refusal with a stable machine-readable ``code`` and a human ``message`` (never a secret)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invalid(Rejected):
    """The input is malformed or breaks a rule about its shape."""


class Unauthorized(Rejected):
    """The caller did not prove who it is."""


class NotFound(Rejected):
    """The thing asked for does not exist (or must not be revealed)."""


class Conflict(Rejected):
    """The request is valid but the build's current state does not allow it."""


class TooLarge(Rejected):
    """The input is larger than PixelBridge accepts."""


class UnsupportedFormat(Rejected):
    """The input is not in a format PixelBridge reads at all (e.g. not multipart)."""


class Unavailable(Rejected):
    """A dependency failed; the same request may succeed later."""
