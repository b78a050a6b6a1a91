"""The client's own protocol handling, against a scripted peer on a real Unix socket.

The peer below is a test double of the daemon: it answers what the test
tells it to, in the order the test chooses, so id matching, out-of-order
responses, error mapping and connection loss can be checked exactly. The
same client is run against the real daemon in test_client_daemon.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile

import pytest

from slurm_ssh_bridge import errors
from slurm_ssh_bridge.client import BridgeClient, Result, socket_path_from_config


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class ScriptedDaemon:
    """Collects requests; the test decides when and how each is answered."""

    def __init__(self, path):
        self.path = path
        self.requests = asyncio.Queue()
        self.writers = []
        self.server = None

    async def __aenter__(self):
        self.server = await asyncio.start_unix_server(self._serve, path=self.path)
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        self.writers.append(writer)
        while True:
            line = await reader.readline()
            if not line:
                break
            await self.requests.put((json.loads(line), writer))

    async def next(self):
        return await asyncio.wait_for(self.requests.get(), 5)

    @staticmethod
    async def answer(writer, request, **fields):
        response = {"v": 1, "id": request["id"], "ok": True, "op": request.get("op")}
        response.update(fields)
        writer.write((json.dumps(response) + "\n").encode())
        await writer.drain()

    @staticmethod
    async def fail(writer, request, code, message, **fields):
        response = {"v": 1, "id": request["id"], "ok": False, "op": request.get("op"),
                    "error": {"code": code, "message": message}}
        response.update(fields)
        writer.write((json.dumps(response) + "\n").encode())
        await writer.drain()


@pytest.fixture
def sock_path():
    d = tempfile.mkdtemp(prefix="ssb-client-")
    try:
        yield os.path.join(d, "bridge.sock")
    finally:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def test_request_shape_and_result(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                task = asyncio.ensure_future(
                    client.submit("alice.proj1", "#!/bin/bash\ntrue\n", env={"JUPYTERHUB_API_TOKEN": "t0k"})
                )
                request, writer = await daemon.next()
                assert request["v"] == 1
                assert isinstance(request["id"], str) and request["id"]
                assert request["op"] == "submit"
                assert request["user"] == "alice.proj1"
                assert request["script"] == "#!/bin/bash\ntrue\n"
                assert request["env"] == {"JUPYTERHUB_API_TOKEN": "t0k"}
                await daemon.answer(writer, request, user="alice.proj1", job_id="42", exit_status=0,
                                    stdout="42\n", stderr="", elapsed_ms=12, path="daemon")
                result = await task
                assert isinstance(result, Result)
                assert (result.op, result.job_id, result.stdout, result.path) == ("submit", "42", "42\n", "daemon")

                task = asyncio.ensure_future(client.query("alice.proj1", 42))
                request, writer = await daemon.next()
                assert request["job_id"] == "42" and "script" not in request and "env" not in request
                await daemon.answer(writer, request, state="RUNNING", host="node1", stdout="RUNNING node1\n")
                result = await task
                assert (result.state, result.host) == ("RUNNING", "node1")

                task = asyncio.ensure_future(client.status())
                request, writer = await daemon.next()
                assert set(request) == {"v", "id", "op"}
                await daemon.answer(writer, request, status={"connections": 2})
                assert await task == {"connections": 2}
    run(main())


def test_concurrent_requests_answered_out_of_order(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                tasks = [asyncio.ensure_future(client.query("alice.proj1", str(100 + i))) for i in range(20)]
                received = [await daemon.next() for _ in range(20)]
                ids = [r["id"] for r, _ in received]
                assert len(set(ids)) == 20
                for request, writer in reversed(received):  # last asked, first answered
                    await daemon.answer(writer, request, job_id=request["job_id"],
                                        state="PENDING", stdout="PENDING n/a\n")
                results = await asyncio.gather(*tasks)
                assert [r.job_id for r in results] == [str(100 + i) for i in range(20)]
    run(main())


def test_unknown_id_is_ignored(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                task = asyncio.ensure_future(client.query("alice.proj1", "7"))
                request, writer = await daemon.next()
                await daemon.answer(writer, dict(request, id="somebody-else"), job_id="999")
                await daemon.answer(writer, request, job_id="7", state="RUNNING", host="n1")
                assert (await task).job_id == "7"
    run(main())


@pytest.mark.parametrize("code,cls", [
    ("transport", errors.TransportError),
    ("timeout", errors.BridgeTimeoutError),
    ("host_key", errors.HostKeyError),
    ("auth", errors.AuthError),
    ("daemon_unavailable", errors.DaemonUnavailableError),
    ("overloaded", errors.OverloadedError),
    ("submit_unknown", errors.SubmitUnknownError),
    ("shutting_down", errors.ShuttingDownError),
    ("internal", errors.InternalError),
    ("config", errors.ConfigError),
    ("invalid_user", errors.InvalidUserError),
    ("invalid_job_id", errors.InvalidJobIdError),
    ("invalid_env", errors.InvalidEnvError),
    ("script_too_large", errors.ScriptTooLargeError),
    ("bad_request", errors.BadRequestError),
    ("usage", errors.UsageError),
    ("something_new", errors.BridgeError),
])
def test_error_codes_map_to_exceptions(sock_path, code, cls):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                task = asyncio.ensure_future(client.query("alice.proj1", "1"))
                request, writer = await daemon.next()
                await daemon.fail(writer, request, code, "it failed")
                with pytest.raises(cls) as info:
                    await task
                assert type(info.value) is cls
                assert info.value.code == code
                assert info.value.message == "it failed"
                assert str(info.value) == "%s: it failed" % code
                assert info.value.state_unknown == (code in (
                    "transport", "timeout", "host_key", "auth", "daemon_unavailable",
                    "overloaded", "shutting_down", "config", "internal"))
    run(main())


def test_timeout_error_is_a_timeout_error():
    assert issubclass(errors.BridgeTimeoutError, TimeoutError)
    assert issubclass(errors.BridgeTimeoutError, errors.TransportError)


def test_remote_failed_carries_output(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                task = asyncio.ensure_future(client.query("alice.proj1", "5"))
                request, writer = await daemon.next()
                await daemon.fail(writer, request, "remote_failed", "slurmspawner_squeue exited with status 1",
                                  exit_status=1, stdout="",
                                  stderr="slurm_load_jobs error: Invalid job id specified\n")
                with pytest.raises(errors.RemoteFailedError) as info:
                    await task
                assert info.value.exit_status == 1
                assert info.value.stdout == ""
                assert info.value.stderr.startswith("slurm_load_jobs error: Invalid job id")
    run(main())


def test_wrong_version_is_a_protocol_error(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                task = asyncio.ensure_future(client.status())
                request, writer = await daemon.next()
                await daemon.answer(writer, request, v=2, status={})
                with pytest.raises(errors.ProtocolError, match="version"):
                    await task
    run(main())


def test_connection_loss_fails_pending_requests(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            client = await BridgeClient.connect(sock_path)
            query = asyncio.ensure_future(client.query("alice.proj1", "5"))
            submit = asyncio.ensure_future(client.submit("alice.proj1", "#!/bin/sh\n"))
            await daemon.next()
            await daemon.next()
            for w in daemon.writers:
                w.close()
            with pytest.raises(errors.DaemonUnavailableError):
                await query
            # The submit may have been carried out: never "unavailable", never retried.
            with pytest.raises(errors.SubmitUnknownError):
                await submit
            assert client.closed
            with pytest.raises(errors.DaemonUnavailableError):
                await client.status()
            await client.close()
    run(main())


def test_client_side_timeout(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path, timeout=0.3) as client:
                with pytest.raises(errors.BridgeTimeoutError):
                    await client.query("alice.proj1", "5")
                with pytest.raises(errors.SubmitUnknownError):
                    await client.submit("alice.proj1", "#!/bin/sh\n")
                # A late answer to a request given up on is dropped; the
                # connection keeps working.
                request, writer = await daemon.next()
                await daemon.answer(writer, request, job_id="5")
                task = asyncio.ensure_future(client.status(timeout=5))
                await daemon.next()  # the submit
                request, writer = await daemon.next()
                await daemon.answer(writer, request, status={"ok": 1})
                assert await task == {"ok": 1}
    run(main())


def test_garbage_line_fails_everything(sock_path):
    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path) as client:
                task = asyncio.ensure_future(client.status())
                _, writer = await daemon.next()
                writer.write(b"this is not json\n")
                await writer.drain()
                with pytest.raises(errors.ProtocolError):
                    await task
    run(main())


def test_no_daemon(sock_path):
    async def main():
        with pytest.raises(errors.DaemonUnavailableError, match="cannot connect"):
            await BridgeClient.connect(sock_path)
    run(main())


def test_socket_path_from_config(tmp_path, monkeypatch):
    cfg = tmp_path / "bridge.toml"
    cfg.write_text('[ssh]\nhost = "h"\n\n[daemon]\nsocket = "/run/x/bridge.sock"\n')
    assert socket_path_from_config(str(cfg)) == "/run/x/bridge.sock"
    monkeypatch.setenv("SLURM_SSH_BRIDGE_CONFIG", str(cfg))
    assert socket_path_from_config() == "/run/x/bridge.sock"
    cfg.write_text('[ssh]\nhost = "h"\n')
    assert socket_path_from_config(str(cfg)) == "/run/slurm-ssh-bridge/bridge.sock"


def test_errors_never_echo_request_contents(sock_path):
    secret = "very-secret-token-value"

    async def main():
        async with ScriptedDaemon(sock_path) as daemon:
            async with await BridgeClient.connect(sock_path, timeout=0.2) as client:
                with pytest.raises(errors.BridgeError) as info:
                    await client.submit("alice.proj1", "#!/bin/sh\necho %s\n" % secret,
                                        env={"JUPYTERHUB_API_TOKEN": secret})
                assert secret not in str(info.value) and secret not in repr(info.value)
    run(main())
