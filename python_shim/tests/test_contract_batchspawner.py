"""Contract test: the shim's trait values, run exactly as batchspawner 1.3 runs them.

Real parts only: the built bridge (``SSB_BRIDGE``) and a sandbox login host
with sshd, sudo, the real slurmspawner wrappers and Slurm (``SSB_SANDBOX_DIR``).
The spawner side is the shim's ``BridgeSlurmSpawner`` on the real
batchspawner (``spawner_driver.SpawnerDriver``): batchspawner itself
templates, runs (``/bin/sh -c``, environment, script on stdin) and parses.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from slurm_ssh_bridge import commands
from spawner_driver import JobStatus, SpawnerDriver
from conftest import write_derived_config

pytestmark = [pytest.mark.bridge, pytest.mark.sandbox]

RUN_TIMEOUT = 90  # seconds a job may take to start on the sandbox
GONE_TIMEOUT = 60  # seconds a cancelled job may take to leave squeue


def run(coro, timeout=240):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def make_spawner(bridge_bin, sandbox, shared_tmp):
    made = []

    def make(config=None, mode=None, user=None, **req):
        token = "test-token-" + secrets.token_hex(16)
        req.setdefault("partition", sandbox.env.get("SLURM_PARTITION", ""))
        spawner = SpawnerDriver(
            bridge_path=bridge_bin,
            bridge_config=config or sandbox.config,
            bridge_mode=mode,
            username=user or sandbox.user,
            homedir=str(shared_tmp),
            req=req,
            api_token=token,
            command_timeout=120,
        )
        made.append(spawner)
        return spawner

    yield make

    async def cleanup():
        for spawner in made:
            for job_id in spawner.submitted_job_ids():
                spawner.job_id = job_id
                try:
                    await spawner.cancel()
                except RuntimeError:  # batchspawner: the command failed
                    pass

    asyncio.run(cleanup())


def first_line(text):
    return text.splitlines()[0] if text else ""


# ------------------------------------------------------------ the job's life


def test_submit_pending_cancel_gone(make_spawner):
    spawner = make_spawner(options="--hold")  # held: PENDING until cancelled

    async def main():
        job_id = await spawner.submit("sleep 300")
        assert re.fullmatch(r"[1-9][0-9]*", job_id)
        submit = spawner.ran[-1]
        # batchspawner's view of the submit: env = get_env(), script on stdin,
        # and nothing of the environment on the command line.
        assert submit.env["JUPYTERHUB_API_TOKEN"] in submit.env.values()
        assert submit.env["JUPYTERHUB_API_TOKEN"] not in submit.cmd
        assert "#SBATCH --export=" in submit.stdin
        assert submit.cmd.endswith(" --user %s submit" % spawner.username)

        assert await spawner.query() is JobStatus.PENDING
        assert spawner.job_status.startswith("PENDING")

        # Several users' polls at once (one bridge process each).
        statuses = await asyncio.gather(*(spawner.query() for _ in range(6)))
        assert set(statuses) == {JobStatus.PENDING}

        await spawner.cancel()
        cancel = spawner.ran[-1]
        assert cancel.cmd.endswith(" cancel %s" % job_id), cancel.cmd
        assert (cancel.returncode, cancel.stdout, cancel.stderr) == (0, "", ""), cancel
        assert await spawner.wait_for(JobStatus.NOTFOUND, GONE_TIMEOUT) is JobStatus.NOTFOUND

    run(main())


def test_running_with_host_and_environment(make_spawner, sandbox, shared_tmp):
    spawner = make_spawner()
    body = (
        'printf "token=%s\\n" "$(printf %s "${JUPYTERHUB_API_TOKEN-unset}" | sha256sum | cut -c1-64)"; '
        'printf "jpy=%s\\n" "$(printf %s "${JPY_API_TOKEN-unset}" | sha256sum | cut -c1-64)"; '
        'printf "scopes=%s\\n" "${JUPYTERHUB_OAUTH_SCOPES-unset}"; '
        'printf "user=%s\\n" "$(id -un)"; '
        "sleep 300"
    )

    async def main():
        job_id = await spawner.submit(body)
        status = await spawner.wait_for(JobStatus.RUNNING, RUN_TIMEOUT)
        assert status is JobStatus.RUNNING, "job %s never ran: %r" % (job_id, spawner.job_status)
        assert re.match(r"^RUNNING \S+$", spawner.job_status), spawner.job_status
        host = spawner.host()
        assert host, spawner.job_status
        if sandbox.nodes:
            assert host in sandbox.nodes

        # The notebook's environment reached the job through the bridge's
        # forwarding, sudo and `--export={{keepvars}}`.
        # batchspawner's SlurmSpawner batch script: --output={{homedir}}/jupyterhub_slurmspawner_%j.log
        log = Path(shared_tmp) / ("jupyterhub_slurmspawner_%s.log" % job_id)
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and "user=" not in text:
            await asyncio.sleep(0.5)
            text = log.read_text() if log.exists() else ""
        assert "user=" in text, "job output %s never appeared" % log
        digest = hashlib.sha256(spawner.env["JUPYTERHUB_API_TOKEN"].encode()).hexdigest()
        assert "token=%s" % digest in text, text
        assert "jpy=%s" % digest in text, text
        assert "scopes=%s" % spawner.env["JUPYTERHUB_OAUTH_SCOPES"] in text, text
        assert "user=%s" % spawner.username in text, text

        await spawner.cancel()
        assert await spawner.wait_for(JobStatus.NOTFOUND, GONE_TIMEOUT) is JobStatus.NOTFOUND

    run(main())


def test_job_that_never_existed_is_gone(make_spawner):
    spawner = make_spawner()
    spawner.job_id = "4000000000"

    async def main():
        assert await spawner.query() is JobStatus.NOTFOUND
        assert not spawner.job_status.startswith("slurm-ssh-bridge:"), spawner.job_status

    run(main())


def test_submit_output_parses_like_sbatch_parsable(make_spawner):
    spawner = make_spawner(options="--hold")

    async def main():
        await spawner.submit("true")
        out = spawner.ran[-1].stdout
        # Exactly what `sbatch --parsable` printed: "ID" or "ID;CLUSTER".
        assert re.fullmatch(r"[0-9]+(;[A-Za-z0-9_-]+)?", out.splitlines()[-1]), out
        await spawner.cancel()

    run(main())


# ------------------------------------------------------------ failures must read as UNKNOWN


def _assert_unknown(spawner, codes):
    async def main():
        spawner.job_id = "12345"
        t0 = time.monotonic()
        status = await spawner.query()
        return status, time.monotonic() - t0

    status, elapsed = run(main())
    ran = spawner.ran[-1]
    assert ran.returncode == 255, (ran.returncode, ran.stderr)
    assert status is JobStatus.UNKNOWN, spawner.job_status
    failure = commands.parse_bridge_failure(spawner.job_status)
    assert failure is not None and failure[0] in codes, spawner.job_status
    return elapsed


def test_transport_failure_is_unknown(make_spawner, sandbox, tmp_path, refused_port):
    config = write_derived_config(sandbox.config, tmp_path / "bridge.toml",
                                  {"ssh": {"host": "127.0.0.1", "port": refused_port, "connect_timeout_s": 3}})
    spawner = make_spawner(config=config, mode="direct")
    _assert_unknown(spawner, {"transport"})

    # A submit that cannot reach the login host fails the spawn cleanly
    # (batchspawner raises with the bridge's line) and creates no job.
    async def submit():
        with pytest.raises(RuntimeError) as info:  # batchspawner's run_command: stderr
            await spawner.submit("sleep 1")
        return info.value

    failure = run(submit())
    assert spawner.ran[-1].returncode == 255, spawner.ran[-1]
    assert first_line(failure.args[0]).startswith("slurm-ssh-bridge: transport: ")
    assert spawner.env["JUPYTERHUB_API_TOKEN"] not in failure.args[0]


def test_silent_server_times_out_as_unknown(make_spawner, sandbox, tmp_path, silent_port):
    config = write_derived_config(
        sandbox.config, tmp_path / "bridge.toml",
        {"ssh": {"host": "127.0.0.1", "port": silent_port, "connect_timeout_s": 2, "command_timeout_s": 4}},
    )
    spawner = make_spawner(config=config, mode="direct")
    elapsed = _assert_unknown(spawner, {"timeout", "transport"})
    assert elapsed < 60


def test_wrong_host_key_is_unknown(make_spawner, sandbox, tmp_path):
    wrong = sandbox.env.get("KNOWN_HOSTS_WRONG")
    if not wrong or not Path(wrong).is_file():
        pytest.skip("the sandbox provides no KNOWN_HOSTS_WRONG file")
    config = write_derived_config(sandbox.config, tmp_path / "bridge.toml", {"ssh": {"known_hosts": wrong}})
    _assert_unknown(make_spawner(config=config, mode="direct"), {"host_key"})


def test_daemon_gone_is_unknown(make_spawner, sandbox, tmp_path, bridge_bin):
    helptext = subprocess.run([bridge_bin, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30).stdout.decode()
    if not re.search(r"^\s+serve\b", helptext, re.M):
        pytest.skip("the bridge has no `serve` subcommand yet, so --mode daemon cannot be tested")
    config = write_derived_config(sandbox.config, tmp_path / "bridge.toml",
                                  {"daemon": {"socket": str(tmp_path / "no-daemon.sock")}})
    _assert_unknown(make_spawner(config=config, mode="daemon"), {"daemon_unavailable"})


def test_hub_secrets_are_not_offered_on_query(make_spawner, monkeypatch):
    # batchspawner runs queries with the hub's environment; the shim removes
    # the hub's own JUPYTERHUB_* before the bridge sees it.
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "hub-crypt-key-" + secrets.token_hex(8))
    spawner = make_spawner()
    spawner.job_id = "4000000000"
    run(spawner.query())
    assert "JUPYTERHUB_CRYPT_KEY" not in spawner.ran[-1].env
