"""The shim tells the user what Slurm knows, on the real batchspawner.

Real parts only: the built bridge (``SSB_BRIDGE``), the sandbox login host
(``SSB_SANDBOX_DIR``: sshd, sudo, the upstream wrappers, Slurm) and
batchspawner's own ``start()``, ``query_job_status()`` and ``progress()``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from batchspawner import BatchSpawnerBase
from slurm_ssh_bridge import commands, slurm_details
from spawner_driver import JobStatus, SpawnerDriver
from conftest import write_derived_config

pytestmark = [pytest.mark.bridge, pytest.mark.sandbox]


def run(coro, timeout=180):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def make_spawner(bridge_bin, sandbox, shared_tmp):
    made = []

    def make(config=None, **req):
        req.setdefault("partition", sandbox.env.get("SLURM_PARTITION", ""))
        spawner = SpawnerDriver(bridge_path=bridge_bin, bridge_config=config or sandbox.config,
                                username=sandbox.user, homedir=str(shared_tmp), req=req, command_timeout=120)
        made.append(spawner)
        return spawner

    yield make
    for spawner in made:
        for job_id in spawner.submitted_job_ids() + [s[0] for s in [spawner.spawner._submitted] if s]:
            subprocess.run(["scancel", job_id], env=dict(SLURM_CONF=sandbox.env["SLURM_CONF"]),
                           capture_output=True, timeout=30)


async def text_status(spawner):
    """What batchspawner's own run_command makes of the text query."""
    s = spawner.spawner
    cmd = s._bridge_cmd(commands.QUERY_CMD)
    try:
        return await BatchSpawnerBase.run_command(s, cmd, env=commands.scrub_hub_environment(os.environ))
    except RuntimeError as exc:
        return exc.args[0]


def test_job_status_is_exactly_batchspawners_text(make_spawner, sandbox, tmp_path, refused_port):
    spawner = make_spawner(options="--hold")

    async def main():
        job_id = await spawner.submit("sleep 60")
        assert job_id.isdigit()
        cases = [("held job", job_id, None), ("unknown job", "4000000000", None)]
        broken = write_derived_config(sandbox.config, tmp_path / "refused.toml",
                                      {"ssh": {"port": refused_port, "connect_timeout_s": 3}})
        cases.append(("login host down", job_id, broken))
        for what, jid, config in cases:
            if config:
                spawner.spawner.bridge_config = config
                spawner.spawner.exec_prefix = commands.bridge_exec_prefix(spawner.spawner.bridge_path, config)
            spawner.job_id = jid
            status = await spawner.query()
            assert "--json query" in spawner.ran[-1].cmd, what  # the details query ran
            assert spawner.job_status == await text_status(spawner), what
            assert status is {"held job": JobStatus.PENDING, "unknown job": JobStatus.NOTFOUND,
                              "login host down": JobStatus.UNKNOWN}[what], (what, spawner.job_status)

    run(main())


def test_pending_progress_names_slurms_reason_at_a_bounded_rate(make_spawner):
    spawner = make_spawner(options="--hold")
    s = spawner.spawner
    calls = []
    real_explain = s.explain_job

    async def counted(job_id=None):
        calls.append(job_id)
        return await real_explain(job_id)

    s.explain_job = counted

    async def main():
        await spawner.submit("sleep 60")
        assert await spawner.query() is JobStatus.PENDING
        assert s.slurm_details["reason"] == "JobHeldUser"
        events = s.progress()
        first = await events.__anext__()
        assert first["message"] == "Pending in queue (JobHeldUser)"
        await events.aclose()
        for _ in range(4):  # batchspawner's 0.5 s startup polls
            assert await spawner.query() is JobStatus.PENDING
        assert len(calls) == 1, "explain ran more than once within explain_interval"
        assert s.slurm_details["reason"] == "JobHeldUser"  # kept between explains
        s.explain_interval = 0.2
        await asyncio.sleep(0.3)
        await spawner.query()
        assert len(calls) == 2

    run(main())


def test_job_that_fails_at_once_is_explained_with_exit_code_and_log(make_spawner, shared_tmp, sandbox):
    spawner = make_spawner()
    s = spawner.spawner
    s._ssb_body = "exit 3"
    s.startup_poll_interval = 0.5

    async def main():
        with pytest.raises(RuntimeError) as raised:
            await s.start()
        return str(raised.value)

    message = run(main())
    job_id = s._submitted[0]
    assert message == (
        "Your server's Slurm job %s ended before the server started: FAILED exit 3 (NonZeroExitCode). "
        "Its log: %s/jupyterhub_slurmspawner_%s.log" % (job_id, shared_tmp, job_id))
    assert s.job_id == ""  # batchspawner cleared it, as before
    # nothing of it is left in Slurm's queue
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING", "-o", "%T"],
                         env=dict(SLURM_CONF=sandbox.env["SLURM_CONF"]), capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == ""


def test_without_an_explanation_batchspawners_message_stays(make_spawner, sandbox, tmp_path):
    blind = write_derived_config(sandbox.config, tmp_path / "blind.toml",
                                 {"remote": {"scontrol": "/nonexistent/scontrol", "sacct": "/nonexistent/sacct"}})
    spawner = make_spawner(config=blind)
    s = spawner.spawner
    s._ssb_body = "exit 3"

    async def main():
        with pytest.raises(RuntimeError) as raised:
            await s.start()
        return str(raised.value)

    # Which of batchspawner's two messages depends on whether a poll saw the
    # job RUNNING before it ended (a race): either is batchspawner's own.
    assert run(main()) in slurm_details.BATCHSPAWNER_GONE_MESSAGES
    assert run(s.explain_job(s._submitted[0])) is None


def test_job_that_dies_after_it_started_running_is_explained(make_spawner, shared_tmp):
    # RUNNING first, then gone before the server reported its port:
    # batchspawner's start() notices in its port-wait loop (poll()) and the
    # shim replaces its "started but died" message with Slurm's account.
    spawner = make_spawner()
    s = spawner.spawner
    s._ssb_body = "sleep 4; exit 1"
    seen = []
    real_query = s.query_job_status

    async def recording_query():
        status = await real_query()
        seen.append(status)
        return status

    s.query_job_status = recording_query

    async def main():
        with pytest.raises(RuntimeError) as raised:
            await s.start()
        return str(raised.value)

    message = run(main())
    job_id = s._submitted[0]
    assert JobStatus.RUNNING in seen, seen
    assert message == (
        "Your server's Slurm job %s ended before the server started: FAILED exit 1 (NonZeroExitCode). "
        "Its log: %s/jupyterhub_slurmspawner_%s.log" % (job_id, shared_tmp, job_id))
