"""An asyncio client for the slurm-ssh-bridge daemon (protocol version 1).

The daemon (``slurm-ssh-bridge serve``) listens on a Unix socket and speaks
newline-delimited JSON: one request object per line, one response line per
request, matched by ``id`` and possibly out of order. One
:class:`BridgeClient` holds one connection and may have any number of
requests in flight on it at once::

    import asyncio
    from slurm_ssh_bridge.client import BridgeClient

    async def main():
        async with await BridgeClient.connect(config="/etc/slurm-ssh-bridge/config.toml") as bridge:
            print(await bridge.status())
            job = await bridge.submit("alice.proj1", "#!/bin/bash\\nsleep 60\\n")
            print(job.job_id)
            print((await bridge.query("alice.proj1", job.job_id)).state)
            await bridge.cancel("alice.proj1", job.job_id)

    asyncio.run(main())

Failures raise the :mod:`slurm_ssh_bridge.errors` class for the response's
error code (``RemoteFailedError`` carries ``exit_status``/``stdout``/``stderr``).
A submit whose outcome this client cannot know (the connection dropped or the
client's own timeout expired after the request was sent) raises
``SubmitUnknownError``; submits are never re-sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import pwd
import secrets
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from .commands import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH
from .errors import (
    AuthError,
    BridgeError,
    BridgeTimeoutError,
    DaemonUnavailableError,
    ProtocolError,
    SubmitUnknownError,
    error_from_response,
)

__all__ = [
    "PROTOCOL_VERSION",
    "DEFAULT_SOCKET_PATH",
    "BridgeClient",
    "Result",
    "daemon_uid_from_config",
    "socket_path_from_config",
]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1

#: ``[daemon] socket`` default of the bridge's configuration.
DEFAULT_SOCKET_PATH = "/run/slurm-ssh-bridge/bridge.sock"

#: Longest response line accepted (a query's stdout/stderr are bounded by the
#: bridge, but a submit's wrapper output can be long).
DEFAULT_LINE_LIMIT = 16 * 1024 * 1024

#: Seconds a request may take before the client gives up on it by default.
DEFAULT_TIMEOUT = 180.0


def _load_config(config: Optional[str]) -> "tuple[str, Dict[str, Any]]":
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise RuntimeError(
                "reading the bridge's TOML configuration needs Python >= 3.11 (tomllib) "
                "or the tomli package; pass socket_path= instead"
            ) from None
    path = config or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH
    with open(path, "rb") as fh:
        return path, tomllib.load(fh)


def socket_path_from_config(config: Optional[str] = None) -> str:
    """The daemon socket path named by a bridge configuration file.

    ``config`` defaults like the bridge's own: ``$SLURM_SSH_BRIDGE_CONFIG``,
    else ``/etc/slurm-ssh-bridge/config.toml``. A file without
    ``[daemon] socket`` gives the default socket path.
    """
    path, data = _load_config(config)
    daemon = data.get("daemon", {})
    socket_path = daemon.get("socket", DEFAULT_SOCKET_PATH) if isinstance(daemon, dict) else None
    if not isinstance(socket_path, str) or not socket_path:
        raise ValueError("%s: [daemon] socket must be a non-empty string" % path)
    return socket_path


def daemon_uid_from_config(config: Optional[str] = None) -> Optional[str]:
    """``[client] daemon_uid`` of a bridge configuration file, or None when unset or empty."""
    path, data = _load_config(config)
    client = data.get("client", {})
    value = client.get("daemon_uid", "") if isinstance(client, dict) else ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("%s: [client] daemon_uid must be an account name or number" % path)
    return str(value) if str(value) else None


def _expected_uids(daemon_uid: Optional[str]) -> "set[int]":
    """The uids a daemon may run as: ``daemon_uid`` (a name or a number), else root or our own."""
    if daemon_uid is None or daemon_uid == "":
        return {0, os.geteuid()}
    text = str(daemon_uid)
    if text.isdigit():
        return {int(text)}
    try:
        return {pwd.getpwnam(text).pw_uid}
    except KeyError:
        raise ValueError(
            "client.daemon_uid %r names no account on this host; set it to the account the daemon "
            "runs as (a name or a uid)" % text[:64]
        ) from None


def check_daemon_peer(sock: socket.socket, socket_path: str, allowed: "set[int]") -> None:
    """Refuse a listener that is not the expected account, before anything is sent.

    The same rule as the CLI's (``client.daemon_uid``): whoever can create the
    socket path must not receive requests (and their environment) nor answer
    "job gone" for a running job. The kernel's SO_PEERCRED says who called
    listen() on the socket; a mismatch raises ``AuthError``, which callers read
    as "state unknown", never as an answer.
    """
    ucred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", ucred)
    if uid not in allowed:
        raise AuthError(
            "the daemon socket %s is served by uid %d (pid %d), not by %s; nothing was sent. "
            "If that account is the real daemon, set client.daemon_uid (daemon_uid=) to it; "
            "otherwise remove the impostor"
            % (socket_path, uid, pid, " or ".join("uid %d" % u for u in sorted(allowed)))
        )


@dataclass
class Result:
    """A successful response (``"ok": true``) of submit, query or cancel."""

    op: str
    user: Optional[str] = None
    job_id: Optional[str] = None
    state: Optional[str] = None
    host: Optional[str] = None
    exit_status: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    elapsed_ms: Optional[int] = None
    path: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> "Result":
        def text(name: str) -> str:
            value = response.get(name)
            return value if isinstance(value, str) else ""

        job_id = response.get("job_id")
        return cls(
            op=str(response.get("op", "")),
            user=response.get("user"),
            job_id=str(job_id) if job_id is not None else None,
            state=response.get("state"),
            host=response.get("host"),
            exit_status=response.get("exit_status"),
            stdout=text("stdout"),
            stderr=text("stderr"),
            elapsed_ms=response.get("elapsed_ms"),
            path=response.get("path"),
            raw=dict(response),
        )


class BridgeClient:
    """One connection to the daemon; safe for concurrent requests.

    Create it with :meth:`connect` (or construct it and ``await
    client.open()``); close it with :meth:`close` or ``async with``.
    """

    def __init__(
        self,
        socket_path: str,
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        line_limit: int = DEFAULT_LINE_LIMIT,
        daemon_uid: Optional[str] = None,
    ):
        self.socket_path = socket_path
        self.daemon_uid = daemon_uid
        self.timeout = timeout
        self._line_limit = line_limit
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._reader_task: Optional[asyncio.Task] = None
        self._write_lock = asyncio.Lock()
        self._pending: Dict[str, "asyncio.Future[Dict[str, Any]]"] = {}
        self._ids = itertools.count(1)
        self._id_prefix = "py-%s" % secrets.token_hex(4)
        self._failure: Optional[BridgeError] = None
        self._closed = False

    # -- connection ------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        socket_path: Optional[str] = None,
        *,
        config: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        connect_timeout: float = 10.0,
        line_limit: int = DEFAULT_LINE_LIMIT,
        daemon_uid: Optional[str] = None,
    ) -> "BridgeClient":
        """Connect to ``socket_path`` (or the socket named by ``config``).

        The daemon must run as ``daemon_uid`` (an account name or uid; else
        the config's ``[client] daemon_uid`` when ``config`` is read; else
        root or this process's own uid), checked before anything is sent.
        """
        if socket_path is None:
            socket_path = socket_path_from_config(config)
            if daemon_uid is None:
                daemon_uid = daemon_uid_from_config(config)
        client = cls(socket_path, timeout=timeout, line_limit=line_limit, daemon_uid=daemon_uid)
        await client.open(connect_timeout=connect_timeout)
        return client

    async def open(self, *, connect_timeout: float = 10.0) -> None:
        if self._writer is not None:
            raise RuntimeError("BridgeClient is already open")
        allowed = _expected_uids(self.daemon_uid)  # a bad name fails before any connection
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path, limit=self._line_limit),
                connect_timeout,
            )
        except asyncio.TimeoutError:
            raise DaemonUnavailableError(
                "connecting to the daemon socket %s timed out after %gs"
                % (self.socket_path, connect_timeout)
            ) from None
        except OSError as exc:
            raise DaemonUnavailableError(
                "cannot connect to the daemon socket %s: %s"
                % (self.socket_path, exc.strerror or exc)
            ) from None
        try:
            check_daemon_peer(self._writer.get_extra_info("socket"), self.socket_path, allowed)
        except BaseException:
            self._writer.close()
            self._reader = self._writer = None
            raise
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())

    @property
    def closed(self) -> bool:
        return self._closed or self._failure is not None

    async def close(self) -> None:
        """Close the connection; requests still in flight fail."""
        if self._closed:
            return
        self._closed = True
        self._fail_all(DaemonUnavailableError("the client closed the connection"))
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):
                pass

    async def __aenter__(self) -> "BridgeClient":
        if self._writer is None:
            await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # -- reading ---------------------------------------------------------

    def _fail_all(self, error: BridgeError) -> None:
        if self._failure is None:
            self._failure = error
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    self._fail_all(
                        ProtocolError(
                            "the daemon sent a line longer than %d bytes" % self._line_limit
                        )
                    )
                    return
                except OSError as exc:
                    self._fail_all(
                        DaemonUnavailableError("reading from the daemon failed: %s" % exc)
                    )
                    return
                if not line:
                    self._fail_all(DaemonUnavailableError("the daemon closed the connection"))
                    return
                if not line.endswith(b"\n"):
                    self._fail_all(
                        DaemonUnavailableError(
                            "the daemon closed the connection in the middle of a response"
                        )
                    )
                    return
                if not line.strip():
                    continue
                self._dispatch(line)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave requests hanging
            self._fail_all(ProtocolError("client read loop failed: %r" % (exc,)))

    def _dispatch(self, line: bytes) -> None:
        try:
            response = json.loads(line)
        except ValueError:
            self._fail_all(ProtocolError("the daemon sent a line that is not JSON"))
            return
        if not isinstance(response, dict):
            self._fail_all(ProtocolError("the daemon sent a JSON value that is not an object"))
            return
        rid = response.get("id")
        key = rid if isinstance(rid, str) else None
        future = self._pending.pop(key, None) if key is not None else None
        if future is None:
            log.warning(
                "slurm-ssh-bridge daemon sent a response for no pending request "
                "(id=%r, error=%r)",
                rid,
                (response.get("error") or {}).get("code")
                if isinstance(response.get("error"), dict)
                else None,
            )
            return
        if not future.done():
            future.set_result(response)

    # -- requests --------------------------------------------------------

    def _next_id(self) -> str:
        return "%s-%d" % (self._id_prefix, next(self._ids))

    async def _send(self, request: Dict[str, Any], timeout: Optional[float]) -> Dict[str, Any]:
        if self._writer is None:
            raise RuntimeError("BridgeClient is not open; use BridgeClient.connect()")
        if self._failure is not None:
            raise type(self._failure)(
                self._failure.message, code=self._failure.code
            )
        op = request["op"]
        rid = request["id"]
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[Dict[str, Any]]" = loop.create_future()
        self._pending[rid] = future
        data = (json.dumps(request, separators=(",", ":")) + "\n").encode("utf-8")
        sent = False
        try:
            async with self._write_lock:
                try:
                    self._writer.write(data)
                    await self._writer.drain()
                except (OSError, RuntimeError) as exc:
                    raise DaemonUnavailableError(
                        "writing to the daemon socket %s failed: %s" % (self.socket_path, exc)
                    ) from None
            sent = True
            try:
                response = await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                if op == "submit":
                    raise SubmitUnknownError(
                        "no response to submit within %gs; the job may or may not have "
                        "been created, and the submit is not re-sent" % timeout
                    ) from None
                raise BridgeTimeoutError(
                    "no response from the daemon within %gs" % timeout
                ) from None
        except DaemonUnavailableError as exc:
            if sent and op == "submit":
                raise SubmitUnknownError(
                    "the connection to the daemon was lost after the submit was sent "
                    "(%s); the job may or may not have been created" % exc.message
                ) from None
            raise
        finally:
            self._pending.pop(rid, None)
        return self._check(response)

    @staticmethod
    def _check(response: Dict[str, Any]) -> Dict[str, Any]:
        version = response.get("v")
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                "the daemon answered with protocol version %r, this client speaks %d"
                % (version, PROTOCOL_VERSION),
                response=response,
            )
        ok = response.get("ok")
        if ok is True:
            return response
        if ok is False:
            raise error_from_response(response)
        raise ProtocolError("response has no boolean 'ok'", response=response)

    async def request(
        self, op: str, *, timeout: Optional[float] = ..., **fields: Any
    ) -> Dict[str, Any]:
        """Send one request and return its response object (``ok`` true).

        ``fields`` are the request's other members (``user``, ``job_id``,
        ``script``, ``env``); ``v`` and ``id`` are added here. Raises the
        error class of the response's code when ``ok`` is false.
        """
        if timeout is ...:
            timeout = self.timeout
        request: Dict[str, Any] = {"v": PROTOCOL_VERSION, "id": self._next_id(), "op": op}
        for name, value in fields.items():
            if value is not None:
                request[name] = value
        return await self._send(request, timeout)

    async def submit(
        self,
        user: str,
        script: str,
        env: Optional[Mapping[str, str]] = None,
        *,
        timeout: Optional[float] = ...,
    ) -> Result:
        """Submit ``script`` as ``user``; ``Result.job_id`` is the Slurm job id.

        ``env`` is offered for forwarding; the daemon keeps only the names its
        ``[env] forward`` patterns allow.
        """
        response = await self.request(
            "submit",
            timeout=timeout,
            user=user,
            script=script,
            env=dict(env) if env is not None else None,
        )
        return Result.from_response(response)

    async def query(self, user: str, job_id: str, *, timeout: Optional[float] = ...) -> Result:
        """The job's state (``Result.state``, ``Result.host``) and raw output."""
        response = await self.request("query", timeout=timeout, user=user, job_id=str(job_id))
        return Result.from_response(response)

    async def cancel(self, user: str, job_id: str, *, timeout: Optional[float] = ...) -> Result:
        """Cancel the job."""
        response = await self.request("cancel", timeout=timeout, user=user, job_id=str(job_id))
        return Result.from_response(response)

    async def status(self, *, timeout: Optional[float] = ...) -> Dict[str, Any]:
        """The daemon's health object (the response's ``status`` member)."""
        response = await self.request("status", timeout=timeout)
        status = response.get("status")
        if not isinstance(status, dict):
            raise ProtocolError("status response has no 'status' object", response=response)
        return status
