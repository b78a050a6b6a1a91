"""The bridge's stable error codes as Python exceptions.

Every failed response of the daemon (and every ``--json`` failure of the CLI)
carries ``{"error": {"code": ..., "message": ...}}``; :func:`error_from_response`
turns it into the matching exception class below. Messages come from the
bridge, which never puts secrets in them; this module never adds request
contents (scripts, environment values) to a message.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Mapping, Optional, Type

from .commands import STATE_UNKNOWN_CODES

__all__ = [
    "BridgeError",
    "ProtocolError",
    "UsageError",
    "ConfigError",
    "InvalidRequestError",
    "InvalidUserError",
    "InvalidJobIdError",
    "InvalidEnvError",
    "ScriptTooLargeError",
    "BadRequestError",
    "TransportError",
    "BridgeTimeoutError",
    "HostKeyError",
    "AuthError",
    "DaemonUnavailableError",
    "OverloadedError",
    "SubmitUnknownError",
    "RemoteFailedError",
    "NotFoundError",
    "ShuttingDownError",
    "InternalError",
    "error_class_for_code",
    "error_from_response",
]


class BridgeError(Exception):
    """A request the bridge could not carry out.

    Attributes: ``code`` (the stable error code, or ``None`` for failures
    found by this client itself), ``message`` (the bridge's text) and
    ``response`` (the whole response object, when there was one).
    """

    code: Optional[str] = None

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        response: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.response: Dict[str, Any] = dict(response) if response else {}

    @property
    def state_unknown(self) -> bool:
        """True when the job's state is unknown (batchspawner keeps polling)."""
        return self.code in STATE_UNKNOWN_CODES

    def __str__(self) -> str:
        if self.code:
            return "%s: %s" % (self.code, self.message)
        return self.message


class ProtocolError(BridgeError):
    """The peer broke the protocol (bad JSON, wrong version, missing fields)."""


class UsageError(BridgeError):
    code = "usage"


class ConfigError(BridgeError):
    code = "config"


class InvalidRequestError(BridgeError):
    """The request was refused before anything ran (not retryable)."""


class InvalidUserError(InvalidRequestError):
    code = "invalid_user"


class InvalidJobIdError(InvalidRequestError):
    code = "invalid_job_id"


class InvalidEnvError(InvalidRequestError):
    code = "invalid_env"


class ScriptTooLargeError(InvalidRequestError):
    code = "script_too_large"


class BadRequestError(InvalidRequestError):
    code = "bad_request"


class TransportError(BridgeError):
    """The login host could not be reached or the connection broke."""

    code = "transport"


class BridgeTimeoutError(TransportError, builtins.TimeoutError):
    """No result in time (the bridge's ``timeout`` code, or the client's own wait)."""

    code = "timeout"


class HostKeyError(BridgeError):
    """The login host's key is not in the configured known_hosts file (or differs)."""

    code = "host_key"


class AuthError(BridgeError):
    """The login host refused the bridge's public key."""

    code = "auth"


class DaemonUnavailableError(BridgeError):
    """The daemon's socket could not be reached, or the connection to it closed."""

    code = "daemon_unavailable"


class OverloadedError(BridgeError):
    code = "overloaded"


class SubmitUnknownError(BridgeError):
    """The submit may or may not have created a job; it is never re-sent."""

    code = "submit_unknown"


class RemoteFailedError(BridgeError):
    """The wrapper ran on the login host and exited non-zero."""

    code = "remote_failed"

    @property
    def exit_status(self) -> Optional[int]:
        return self.response.get("exit_status")

    @property
    def stdout(self) -> str:
        return self.response.get("stdout", "") or ""

    @property
    def stderr(self) -> str:
        return self.response.get("stderr", "") or ""


class NotFoundError(BridgeError):
    """explain: Slurm knows no such job of this user (never existed, forgotten, or another user's)."""

    code = "not_found"


class ShuttingDownError(BridgeError):
    code = "shutting_down"


class InternalError(BridgeError):
    code = "internal"


_BY_CODE: Dict[str, Type[BridgeError]] = {
    cls.code: cls
    for cls in (
        UsageError,
        ConfigError,
        InvalidUserError,
        InvalidJobIdError,
        InvalidEnvError,
        ScriptTooLargeError,
        BadRequestError,
        TransportError,
        BridgeTimeoutError,
        HostKeyError,
        AuthError,
        DaemonUnavailableError,
        OverloadedError,
        SubmitUnknownError,
        RemoteFailedError,
        NotFoundError,
        ShuttingDownError,
        InternalError,
    )
}


def error_class_for_code(code: Optional[str]) -> Type[BridgeError]:
    """The exception class for a stable error code (``BridgeError`` if unknown)."""
    return _BY_CODE.get(code or "", BridgeError)


def error_from_response(response: Mapping[str, Any]) -> BridgeError:
    """The exception for a response with ``"ok": false``."""
    error = response.get("error")
    if not isinstance(error, Mapping):
        return ProtocolError(
            "response has ok=false but no error object", response=response
        )
    code = error.get("code")
    message = error.get("message")
    if not isinstance(message, str):
        message = "(no message)"
    cls = error_class_for_code(code if isinstance(code, str) else None)
    return cls(message, code=code if isinstance(code, str) else None, response=response)
