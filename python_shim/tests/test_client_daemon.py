"""The asyncio client against the real daemon (``slurm-ssh-bridge serve``) and real Slurm.

Needs ``SSB_BRIDGE`` and ``SSB_SANDBOX_DIR``. The daemon is started here with
a copy of the sandbox's ``bridge.toml`` whose ``[daemon] socket`` is private
to this test module. While the bridge has no working ``serve`` (it exits
with a usage error), these tests are skipped, not failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from slurm_ssh_bridge import errors
from slurm_ssh_bridge.client import BridgeClient, socket_path_from_config
from slurm_ssh_bridge.service import bridge_service
from spawner_driver import JobStatus, SpawnerDriver
from conftest import running_daemon, socket_answers, write_derived_config

pytestmark = [pytest.mark.bridge, pytest.mark.sandbox]

START_TIMEOUT = 20.0
HELD_SCRIPT = "#!/bin/bash\n#SBATCH --hold\n#SBATCH --output=/dev/null\nsleep 300\n"


def run(coro, timeout=180):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def daemon(bridge_bin, sandbox):
    workdir = Path(tempfile.mkdtemp(prefix="ssb-shim-d-"))  # short path: sun_path is 108 bytes
    try:
        config = write_derived_config(sandbox.config, workdir / "bridge.toml",
                                      {"daemon": {"socket": str(workdir / "bridge.sock")}})
        with running_daemon(bridge_bin, config, workdir / "serve.log", START_TIMEOUT) as (proc, sock):
            yield {"config": config, "socket": sock, "proc": proc, "log": workdir / "serve.log"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_status(daemon):
    async def main():
        async with await BridgeClient.connect(config=daemon["config"], timeout=30) as client:
            status = await client.status()
            assert isinstance(status, dict) and status
            json.dumps(status)
    run(main())


def test_submit_query_cancel(daemon, sandbox):
    async def main():
        async with await BridgeClient.connect(daemon["socket"], timeout=90) as client:
            # The environment batchspawner submits with (BridgeSlurmSpawner.get_env()).
            env = SpawnerDriver(bridge_path="slurm-ssh-bridge", username=sandbox.user,
                                api_token="test-token-daemon").env
            job = await client.submit(sandbox.user, HELD_SCRIPT, env=env)
            try:
                assert job.op == "submit" and job.job_id and job.job_id.split(";")[0].isdigit()
                assert job.exit_status == 0
                assert job.path == "daemon"
                state = await client.query(sandbox.user, job.job_id)
                assert state.state == "PENDING", state
                assert state.stdout.startswith("PENDING")
            finally:
                await client.cancel(sandbox.user, job.job_id)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    state = await client.query(sandbox.user, job.job_id)
                except errors.RemoteFailedError:
                    break
                if state.state not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
                    break
                await asyncio.sleep(0.5)
            else:
                pytest.fail("job %s still listed after cancel" % job.job_id)
    run(main())


def test_concurrent_requests_on_one_connection(daemon, sandbox):
    async def main():
        async with await BridgeClient.connect(daemon["socket"], timeout=90) as client:
            a = await client.submit(sandbox.user, HELD_SCRIPT)
            b = await client.submit(sandbox.user2, HELD_SCRIPT)
            try:
                calls = []
                for i in range(12):
                    calls.append(client.query(sandbox.user, a.job_id))
                    calls.append(client.query(sandbox.user2, b.job_id))
                    if i % 4 == 0:
                        calls.append(client.status())
                results = await asyncio.gather(*calls)
                for result in results:
                    if isinstance(result, dict):
                        continue  # status
                    assert (result.user, result.job_id) in ((sandbox.user, a.job_id), (sandbox.user2, b.job_id))
                    assert result.state == "PENDING"
            finally:
                await asyncio.gather(client.cancel(sandbox.user, a.job_id), client.cancel(sandbox.user2, b.job_id))
    run(main())


def test_errors_are_typed(daemon, sandbox):
    async def main():
        async with await BridgeClient.connect(daemon["socket"], timeout=60) as client:
            with pytest.raises(errors.InvalidUserError):
                await client.query("-rf", "1")
            with pytest.raises(errors.InvalidJobIdError):
                await client.query(sandbox.user, "1; rm -rf /")
            with pytest.raises(errors.BadRequestError):
                await client.request("explode", user=sandbox.user)
            try:
                result = await client.query(sandbox.user, "4000000000")
            except errors.RemoteFailedError as exc:
                assert exc.exit_status not in (None, 0)
                assert exc.stderr
            else:
                assert result.state is None
            # The connection survives refused requests.
            assert isinstance(await client.status(), dict)
    run(main())


def test_integer_ids_are_echoed(daemon):
    async def main():
        reader, writer = await asyncio.open_unix_connection(daemon["socket"])
        try:
            writer.write(b'{"v":1,"id":7,"op":"status"}\n')
            await writer.drain()
            response = json.loads(await asyncio.wait_for(reader.readline(), 30))
            assert response["v"] == 1 and response["id"] == 7 and response["ok"] is True
        finally:
            writer.close()
    run(main())


def test_spawner_through_the_daemon(daemon, bridge_bin, sandbox, shared_tmp):
    spawner = SpawnerDriver(bridge_path=bridge_bin, bridge_config=daemon["config"], bridge_mode="daemon",
                            username=sandbox.user, homedir=str(shared_tmp), req={"options": "--hold"})

    async def main():
        await spawner.submit("sleep 300")
        try:
            assert await spawner.query() is JobStatus.PENDING
        finally:
            await spawner.cancel()
        assert await spawner.wait_for(JobStatus.NOTFOUND, 60) is JobStatus.NOTFOUND
    run(main())


def test_bridge_service_command_runs_the_daemon(daemon, bridge_bin, sandbox):
    """The command bridge_service() gives JupyterHub starts a working daemon
    (with the environment a managed service gets) and stops on SIGTERM."""
    workdir = Path(tempfile.mkdtemp(prefix="ssb-shim-svc-"))
    try:
        config = write_derived_config(sandbox.config, workdir / "bridge.toml",
                                      {"daemon": {"socket": str(workdir / "bridge.sock")}})
        spec = bridge_service(bridge_path=bridge_bin, config=config)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env.update(spec["environment"])
        env.update(JUPYTERHUB_SERVICE_NAME=spec["name"], JUPYTERHUB_API_TOKEN="service-token",
                   JUPYTERHUB_API_URL="http://127.0.0.1:8081/hub/api")
        with open(workdir / "serve.log", "wb") as log:
            proc = subprocess.Popen(spec["command"], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            sock = socket_path_from_config(config)
            deadline = time.monotonic() + START_TIMEOUT
            while not (os.path.exists(sock) and socket_answers(sock)):
                assert proc.poll() is None, (workdir / "serve.log").read_text(errors="replace")
                assert time.monotonic() < deadline, "daemon socket never appeared"
                time.sleep(0.1)

            async def main():
                async with await BridgeClient.connect(sock, timeout=30) as client:
                    return await client.status()
            assert isinstance(run(main()), dict)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # what JupyterHub sends when it stops a service
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                    pytest.fail("the daemon did not exit within 15 s of SIGTERM")
        assert "service-token" not in (workdir / "serve.log").read_text(errors="replace")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
