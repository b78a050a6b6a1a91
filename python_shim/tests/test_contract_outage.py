"""Contract: an SSH outage during a running job never makes the job look gone.

Brings up a private sandbox (``tests/sandbox/sandbox.sh``, as root) so that
its sshd can be stopped without disturbing other tests, starts a job through
the shim's BridgeSlurmSpawner on the real batchspawner, stops the login host's sshd,
polls, starts sshd again and polls on. Checked for the direct path and, when
the bridge has a working ``serve``, through the daemon.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from slurm_ssh_bridge import commands
from spawner_driver import JobStatus, SpawnerDriver
from conftest import REPO_DIR, Sandbox, _read_sandbox_env, running_daemon

pytestmark = [pytest.mark.bridge, pytest.mark.sandbox]


def _sandbox_script(sandbox: Sandbox) -> str:
    script = sandbox.env.get("SANDBOX_SH") or str(REPO_DIR / "tests" / "sandbox" / "sandbox.sh")
    if not os.access(script, os.X_OK):
        pytest.skip("no sandbox.sh to bring up a private sandbox (%s)" % script)
    return script


@pytest.fixture(scope="module")
def private_sandbox(sandbox):
    """A sandbox of our own (its sshd is stopped and started by the test)."""
    if os.geteuid() != 0:
        pytest.skip("bringing up a private sandbox needs root")
    script = _sandbox_script(sandbox)
    parent = Path(tempfile.mkdtemp(prefix="ssb-shim-sb-"))
    os.chmod(parent, 0o755)  # the sandbox's users must traverse it
    root = parent / "sb"
    up = subprocess.run([script, "up", str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        timeout=180)
    try:
        if up.returncode != 0:
            pytest.fail("sandbox.sh up failed:\n" + up.stdout.decode(errors="replace"))
        env = _read_sandbox_env(root / "sandbox.env")
        yield script, Sandbox(dir=root, env=env, config=str(root / "bridge.toml"),
                              user=env.get("SANDBOX_USER", "alice.proj1"),
                              user2=env.get("SANDBOX_USER2", "bob.proj1"),
                              outsider=env.get("SANDBOX_OUTSIDER", "mallory.other"))
    finally:
        subprocess.run([script, "down", str(root), "--purge"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=180)
        shutil.rmtree(parent, ignore_errors=True)


def _sshd(script, sandbox, action):
    proc = subprocess.run([script, action, "sshd", str(sandbox.dir)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")


def _outage(script, sandbox, bridge_bin, config, mode, shared_tmp):
    spawner = SpawnerDriver(
        bridge_path=bridge_bin, bridge_config=config, bridge_mode=mode, username=sandbox.user,
        api_token="test-token-" + secrets.token_hex(8),
        homedir=str(shared_tmp), req={"partition": sandbox.env.get("SLURM_PARTITION", "")},
    )

    async def main():
        await spawner.submit("sleep 300")
        try:
            assert await spawner.wait_for(JobStatus.RUNNING, 90) is JobStatus.RUNNING, spawner.job_status
            host = spawner.host()
            _sshd(script, sandbox, "stop")
            try:
                for _ in range(3):  # every poll during the outage
                    assert await spawner.query() is JobStatus.UNKNOWN, spawner.job_status
                    code = commands.parse_bridge_failure(spawner.job_status)[0]
                    assert code in ("transport", "timeout", "daemon_unavailable"), spawner.job_status
            finally:
                _sshd(script, sandbox, "start")
            # Back: the same job, still running, on the same node.
            assert await spawner.wait_for(JobStatus.RUNNING, 60, interval=1) is JobStatus.RUNNING, \
                spawner.job_status
            assert spawner.host() == host
        finally:
            try:
                await spawner.cancel()
            finally:
                await spawner.wait_for(JobStatus.NOTFOUND, 60)

    asyncio.run(asyncio.wait_for(main(), 300))


def test_sshd_outage_direct(private_sandbox, bridge_bin, shared_tmp):
    script, sandbox = private_sandbox
    _outage(script, sandbox, bridge_bin, sandbox.config, "direct", shared_tmp)


def test_sshd_outage_through_daemon(private_sandbox, bridge_bin, shared_tmp):
    script, sandbox = private_sandbox
    with running_daemon(bridge_bin, sandbox.config, sandbox.dir / "shim-serve.log"):
        _outage(script, sandbox, bridge_bin, sandbox.config, "daemon", shared_tmp)
