"""The pure helpers behind the spawn page's Slurm messages (slurm_details)."""

from __future__ import annotations

import datetime

from slurm_ssh_bridge import slurm_details as sd

NOW = datetime.datetime(2026, 12, 2, 9, 0, 0)


def test_query_text_is_what_the_text_command_gave():
    # exit 0: the wrapper's stdout, stripped (batchspawner's run_command)
    ok = {"ok": True, "stdout": "RUNNING node1\n", "stderr": "", "exit_status": 0}
    assert sd.query_text(ok, 0, "{...}", "") == ("RUNNING node1", False)
    # the wrapper failed: text mode passes its stderr through
    gone = {"ok": False, "exit_status": 1, "stdout": "", "stderr": "slurm_load_jobs error: Invalid job id specified\n",
            "error": {"code": "remote_failed", "message": "query for user a exited with status 1: ..."}}
    assert sd.query_text(gone, 1, "{...}", "") == ("slurm_load_jobs error: Invalid job id specified", True)
    # a bridge failure: the one failure line, newlines flattened
    down = {"ok": False, "error": {"code": "transport", "message": "cannot connect\nto h"}}
    assert sd.query_text(down, 255, "{...}", "") == ("slurm-ssh-bridge: transport: cannot connect to h", True)
    # the CLI's own stderr comes first, as in text mode
    assert sd.query_text(down, 255, "", "warn: x\n")[0] == "warn: x\nslurm-ssh-bridge: transport: cannot connect to h"
    # not JSON at all (sh: not found): stdout / stderr as they are
    assert sd.query_text(None, 127, "", "sh: 1: x: not found\n") == ("sh: 1: x: not found", True)
    assert sd.query_text(None, 0, "RUNNING n\n", "") == ("RUNNING n", False)


def test_pending_message():
    slurm = {"state": "PENDING", "node": None, "reason": "Resources", "expected_start": "2026-12-02T10:32:00"}
    assert sd.pending_message(slurm, NOW) == "Pending in queue (Resources), expected start 10:32"
    tomorrow = dict(slurm, expected_start="2026-12-03T01:05:00")
    assert sd.pending_message(tomorrow, NOW) == "Pending in queue (Resources), expected start 2026-12-03 01:05"
    assert sd.pending_message(dict(slurm, expected_start=None), NOW) == "Pending in queue (Resources)"
    assert sd.pending_message(dict(slurm, reason=None), NOW) == "Pending in queue, expected start 10:32"
    # nothing beyond "pending", or junk: batchspawner's own words stay
    assert sd.pending_message(dict(slurm, reason=None, expected_start=None), NOW) is None
    assert sd.pending_message(dict(slurm, reason=None, expected_start="Unknown"), NOW) is None
    assert sd.pending_message(None, NOW) is None


def test_ended_message():
    job = {"state": "FAILED", "exit_code": 1, "signal": None, "reason": "NonZeroExitCode",
           "stdout": "/home/alice/jupyterhub_slurmspawner_42.log", "expected_start": None, "source": "scontrol"}
    assert sd.ended_message("42", job) == (
        "Your server's Slurm job 42 ended before the server started: FAILED exit 1 (NonZeroExitCode). "
        "Its log: /home/alice/jupyterhub_slurmspawner_42.log")
    oom = {"state": "OUT_OF_MEMORY", "exit_code": None, "signal": 9, "reason": None, "stdout": None,
           "expected_start": None, "source": "sacct"}
    assert sd.ended_message("7", oom, "/h/out-7.log") == (
        "Your server's Slurm job 7 ended before the server started: OUT_OF_MEMORY signal 9. Its log: /h/out-7.log")
    assert sd.ended_message("7", oom) == "Your server's Slurm job 7 ended before the server started: OUT_OF_MEMORY signal 9."
    # a job that is still alive did not end: no explanation
    assert sd.ended_message("7", dict(oom, state="RUNNING")) is None
    assert sd.ended_message("7", {}) is None


def test_output_path_expands_like_slurm():
    script = "#!/bin/bash\n#SBATCH --job-name=spawner-jupyterhub\n#SBATCH --output=/home/a/jh_%j_%u_%x_%%.log\n"
    assert sd.output_path(script, "42", "alice.proj1") == "/home/a/jh_42_alice.proj1_spawner-jupyterhub_%.log"
    assert sd.output_path("#SBATCH -o /o/%8j.out\n", "42;clusterA", "a") == "/o/00000042.out"
    assert sd.output_path("#SBATCH --output /o/%A.out\n", "5", "a") == "/o/5.out"
    # unknown patterns, %x without a job name, no --output: no guess
    assert sd.output_path("#SBATCH --output=/o/%N.out\n", "5", "a") is None
    assert sd.output_path("#SBATCH --output=/o/%x.out\n", "5", "a") is None
    assert sd.output_path("#!/bin/bash\nsleep 1\n", "5", "a") is None
    assert sd.output_path("#SBATCH --output=/o/%", "5", "a") is None


def test_batchspawner_messages_are_recognised():
    # The exact messages of the real batchspawner's start(), read from its
    # source: a new batchspawner that words them differently fails here.
    import ast
    import inspect
    import textwrap

    from batchspawner import BatchSpawnerBase

    tree = ast.parse(textwrap.dedent(inspect.getsource(BatchSpawnerBase.start)))
    raised = {node.exc.args[0].value for node in ast.walk(tree)
              if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args
              and isinstance(node.exc.args[0], ast.Constant)}
    gone = {m for m in raised if "died" in m or "disappeared" in m}
    assert gone == set(sd.BATCHSPAWNER_GONE_MESSAGES)
    assert all(sd.is_batchspawner_gone_message(m) for m in gone)
    assert not sd.is_batchspawner_gone_message("Jupyter batch job submission failure (no jobid in output)")
