"""The shim's real ``BridgeSlurmSpawner``, driven the way JupyterHub drives it.

The spawner under test is the product's ``BridgeSlurmSpawner`` on top of the
REAL batchspawner (installed into the test venv by tests/python/run.sh with
scripts/install-support-packages.sh). batchspawner's own code templates the
commands and the batch script, runs them (``/bin/sh -c``, ``get_env()``, the
script on stdin), parses the job id and classifies the status. The tests
add three things and nothing else:

- the job body: ``submit(body)`` runs ``body`` in the job instead of
  ``batchspawner-singleuser jupyterhub-singleuser ...`` (the test subclass's
  ``cmd_formatted_for_batch``), and ``req_srun`` is empty so a shell body
  runs as written;
- a record of every command batchspawner runs (``Ran``: command, environment,
  stdin, exit status, stdout, stderr), copied by a spy around
  ``asyncio.create_subprocess_shell``, which batchspawner's ``run_command``
  calls: the real subprocess runs, the spy only looks;
- ``answer(...)`` for pure unit tests (composition, classification): a fixed
  reply in place of the subprocess (a test double, named as such), so
  batchspawner's parsing and regular expressions run on chosen text.

A bound (``command_timeout``) on every command, which batchspawner does not
have, keeps a hung command from hanging the test run.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Dict, List, Mapping, Optional

try:
    import batchspawner
    from batchspawner import JobStatus
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "the real batchspawner is not importable by %s: run the python_shim tests through "
        "tests/python/run.sh, which installs it into a venv with "
        "scripts/install-support-packages.sh (%s)" % (__file__, exc)
    ) from exc

from jupyterhub.objects import Hub
from traitlets.config import Config

from slurm_ssh_bridge.spawner import BridgeSlurmSpawner

__all__ = ["JobStatus", "Ran", "SpawnerDriver", "batchspawner"]


@dataclass
class Ran:
    """One command batchspawner ran (for assertions)."""

    cmd: str
    env: Optional[Dict[str, str]]
    stdin: Optional[str]
    returncode: Optional[int]
    stdout: str
    stderr: str


_RECORD: contextvars.ContextVar = contextvars.ContextVar("ssb_test_record", default=None)
_real_create_subprocess_shell = asyncio.create_subprocess_shell


async def _recording_create_subprocess_shell(cmd, *args, **kwargs):
    proc = await _real_create_subprocess_shell(cmd, *args, **kwargs)
    record = _RECORD.get()
    if record is not None:
        communicate = proc.communicate

        async def recorded_communicate(input=None):
            out, err = await communicate(input)
            record.append(Ran(cmd, kwargs.get("env"), input.decode() if input is not None else None,
                              proc.returncode, out.decode().strip(), err.decode().strip()))
            return out, err

        proc.communicate = recorded_communicate
    return proc


# Only commands run inside SpawnerDriver (the context variable is set) are
# recorded; every other caller gets the unchanged function's result.
asyncio.create_subprocess_shell = _recording_create_subprocess_shell


class _TestSpawner(BridgeSlurmSpawner):
    """BridgeSlurmSpawner with the test's job body, record and bound."""

    def cmd_formatted_for_batch(self):
        if self._ssb_body is not None:
            return self._ssb_body
        return super().cmd_formatted_for_batch()

    async def run_command(self, cmd, input=None, env=None):
        if self._ssb_answer is not None:  # unit tests: a fixed reply instead of the subprocess
            returncode, text = self._ssb_answer
            self._ssb_ran.append(Ran(cmd, env, input, returncode, text if returncode == 0 else "",
                                     "" if returncode == 0 else text))
            if returncode != 0:
                raise RuntimeError(text)  # what batchspawner's run_command raises
            return text
        token = _RECORD.set(self._ssb_ran)
        try:
            return await asyncio.wait_for(super().run_command(cmd, input=input, env=env),
                                          self._ssb_timeout)
        except asyncio.TimeoutError:
            raise AssertionError("command did not finish in %ss: %s" % (self._ssb_timeout, cmd)) from None
        finally:
            _RECORD.reset(token)


class SpawnerDriver:
    """One user's ``BridgeSlurmSpawner``, plus what the tests look at."""

    def __init__(self, bridge_path: str, bridge_config: Optional[str] = None, bridge_mode: Optional[str] = None,
                 username: str = "alice.proj1", homedir: Optional[str] = None,
                 req: Optional[Mapping[str, str]] = None, api_token: Optional[str] = None,
                 command_timeout: float = 120.0):
        config = Config()
        traits = config.BridgeSlurmSpawner
        traits.bridge_path = bridge_path
        if bridge_config is not None:
            traits.bridge_config = bridge_config
        if bridge_mode is not None:
            traits.bridge_mode = bridge_mode
        traits.req_srun = ""
        user = SimpleNamespace(name=username, escaped_name=username, url="/user/%s/" % username,
                               server=None)
        self.spawner = _TestSpawner(
            config=config, user=user, hub=Hub(),
            api_token=api_token or "test-token-" + secrets.token_hex(16),
            oauth_client_id="jupyterhub-user-%s" % username,
        )
        # req_homedir is not configurable in batchspawner: set on the instance.
        if homedir is not None:
            self.spawner.req_homedir = homedir
        for name, value in (req or {}).items():
            setattr(self.spawner, "req_" + name, value)
        self.spawner._ssb_body = None
        self.spawner._ssb_answer = None
        self.spawner._ssb_ran = []
        self.spawner._ssb_timeout = command_timeout

    # -- what the tests read ------------------------------------------------

    @property
    def ran(self) -> List[Ran]:
        return self.spawner._ssb_ran

    @property
    def username(self) -> str:
        return self.spawner.req_username

    @property
    def env(self) -> Dict[str, str]:
        """``get_env()``: the environment batchspawner submits with."""
        return self.spawner.get_env()

    @property
    def job_id(self) -> str:
        return self.spawner.job_id

    @job_id.setter
    def job_id(self, value: str) -> None:
        self.spawner.job_id = value

    @property
    def job_status(self) -> str:
        return self.spawner.job_status

    def host(self) -> Optional[str]:
        return self.spawner.state_gethost()

    def answer(self, text: str, returncode: int = 0) -> None:
        """Reply ``text`` (stdout, or stderr when ``returncode`` != 0) to every
        later command instead of running it (unit tests only)."""
        self.spawner._ssb_answer = (returncode, text)

    # -- batchspawner's operations ------------------------------------------

    async def submit(self, body: str) -> str:
        """``submit_batch_script()`` with ``body`` as the job's command; the job id
        ("" when batchspawner could not parse one; raises RuntimeError with the
        stderr when the command failed, as batchspawner does)."""
        self.spawner._ssb_body = body
        return await self.spawner.submit_batch_script()

    async def query(self) -> JobStatus:
        return await self.spawner.query_job_status()

    async def cancel(self) -> None:
        await self.spawner.cancel_batch_job()

    async def wait_for(self, wanted: JobStatus, timeout: float, interval: float = 0.5) -> JobStatus:
        """Poll until ``wanted`` (bounded); returns the last status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        status = await self.query()
        while status is not wanted and loop.time() < deadline:
            await asyncio.sleep(interval)
            status = await self.query()
        return status

    def submitted_job_ids(self) -> List[str]:
        """Job ids of every successful submit so far (for cleanup)."""
        ids = set()
        for r in self.ran:
            if r.cmd.endswith(" submit") and r.returncode == 0 and r.stdout:
                ids.add(r.stdout.splitlines()[-1].split(";")[0])
        return sorted(ids)
