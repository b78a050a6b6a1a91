"""A stand-in for batchspawner 1.3's SlurmSpawner command handling.

Written from the contract in design section 3.1 / docs/CONTRACTS.md, not from
batchspawner's code. It does what batchspawner does with the trait values the
shim produces, and nothing more:

- templates: ``str.format`` with the ``req_*`` values (``username``,
  ``keepvars``, ``homedir``, ...) plus ``job_id``; Jinja instead when the
  text contains ``{{`` or ``{%``;
- the command is ``render(exec_prefix) + " " + render(batch_*_cmd)``, run by
  ``/bin/sh -c`` (asyncio's shell subprocess);
- submit: ``env = spawner.get_env()``, the rendered batch script on stdin;
  query and cancel: the hub's own environment (``env=None``), which
  ``BridgeSlurmSpawner.run_command`` scrubs of the hub's ``JUPYTERHUB_*`` /
  ``JPY_*`` (emulated here because it is part of what the shim ships);
- stdout is stripped; a non-zero exit raises with the stripped stderr, which
  for a query becomes the job status;
- submit output: last line, text before ``;``, must be an integer;
- query status: running, then pending, then unknown, else NOTFOUND, with the
  ``state_*_re`` regexes applied by ``re.search``; the host is the first
  group of ``state_exechost_re``.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from slurm_ssh_bridge import commands


class JobStatus(enum.Enum):
    NOTFOUND = 0
    RUNNING = 1
    PENDING = 2
    UNKNOWN = 3


class CommandFailed(RuntimeError):
    """Non-zero exit: ``args[0]`` is the stripped stderr (as batchspawner)."""

    def __init__(self, stderr: str, returncode: int, stdout: str):
        super().__init__(stderr)
        self.returncode = returncode
        self.stdout = stdout


def render(template: str, **subvars) -> str:
    if "{{" in template or "{%" in template:
        import jinja2  # as batchspawner: Jinja only for such templates

        return jinja2.Template(template).render(**subvars)
    return template.format(**subvars)


@dataclass
class Ran:
    """One command the emulated spawner ran (for assertions)."""

    cmd: str
    env: Optional[Dict[str, str]]
    stdin: Optional[str]
    returncode: int
    stdout: str
    stderr: str


# A SlurmSpawner-style batch script (Jinja, like batchspawner's default),
# with a body the tests choose.
BATCH_SCRIPT = """#!/bin/bash
#SBATCH --output={{homedir}}/slurmspawner-%j.log
#SBATCH --job-name=spawner-jupyterhub
#SBATCH --chdir={{homedir}}
#SBATCH --export={{keepvars}}
{% if partition %}#SBATCH --partition={{partition}}
{% endif %}{% if runtime %}#SBATCH --time={{runtime}}
{% endif %}{% if options %}#SBATCH {{options}}
{% endif %}
set -euo pipefail
{{prologue}}
{{cmd}}
{{epilogue}}
"""


def spawner_like_env(username: str, api_token: str, hub_url: str = "http://127.0.0.1:8081") -> Dict[str, str]:
    """What JupyterHub 3's ``Spawner.get_env()`` plus SlurmSpawner's user env gives."""
    env: Dict[str, str] = {}
    for name in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    scopes = '["access:servers!server=%s/", "access:servers!user=%s"]' % (username, username)
    env.update(
        {
            "JUPYTERHUB_API_TOKEN": api_token,
            "JPY_API_TOKEN": api_token,
            "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-%s" % username,
            "JUPYTERHUB_HOST": "",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/%s/oauth_callback" % username,
            "JUPYTERHUB_OAUTH_SCOPES": scopes,
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes,
            "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
            "JUPYTERHUB_USER": username,
            "JUPYTERHUB_SERVER_NAME": "",
            "JUPYTERHUB_API_URL": hub_url + "/hub/api",
            "JUPYTERHUB_ACTIVITY_URL": hub_url + "/hub/api/users/%s/activity" % username,
            "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/%s/" % username,
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/%s/" % username,
            "USER": username,
            "HOME": "/home/%s" % username,
            "SHELL": "/bin/bash",
        }
    )
    return env


@dataclass
class EmulatedSlurmSpawner:
    traits: Mapping[str, str]  # exec_prefix, batch_*_cmd, state_*_re
    username: str
    env: Dict[str, str]  # spawner.get_env()
    homedir: str
    batch_script: str = BATCH_SCRIPT
    req: Dict[str, str] = field(default_factory=dict)  # other req_* values
    job_id: str = ""
    job_status: str = ""
    ran: List[Ran] = field(default_factory=list)
    command_timeout: float = 120.0

    # -- batchspawner's plumbing ------------------------------------------

    def subvars(self) -> Dict[str, str]:
        values = {
            "username": self.username,
            "homedir": self.homedir,
            "keepvars": ",".join(self.env.keys()),
            "partition": "",
            "runtime": "",
            "options": "",
            "prologue": "",
            "epilogue": "",
            "queue": "",
            "memory": "",
            "nprocs": "",
            "account": "",
        }
        values.update(self.req)
        return values

    def compose(self, trait: str, **extra: str) -> str:
        subvars = self.subvars()
        subvars.update(extra)
        return " ".join(
            (render(self.traits["exec_prefix"], **subvars), render(self.traits[trait], **subvars))
        )

    async def run_command(self, cmd: str, input: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> str:
        if env is None:  # BridgeSlurmSpawner.run_command
            env = commands.scrub_hub_environment(os.environ)
        proc = await asyncio.create_subprocess_shell(
            cmd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input else None), self.command_timeout
            )
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("command did not finish in %ss: %s" % (self.command_timeout, cmd))
        stdout, stderr = out.decode().strip(), err.decode().strip()
        self.ran.append(Ran(cmd, env, input, proc.returncode, stdout, stderr))
        if proc.returncode != 0:
            raise CommandFailed(stderr, proc.returncode, stdout)
        return stdout

    # -- SlurmSpawner -----------------------------------------------------

    @staticmethod
    def parse_job_id(output: str) -> str:
        last = output.splitlines()[-1]
        job_id = last.split(";")[0]
        int(job_id)
        return job_id

    def script(self, cmd: str) -> str:
        subvars = self.subvars()
        subvars["cmd"] = cmd
        return render(self.batch_script, **subvars)

    async def submit(self, cmd: str) -> str:
        """Returns the job id; raises CommandFailed / ValueError like batchspawner."""
        out = await self.run_command(self.compose("batch_submit_cmd"), input=self.script(cmd), env=self.env)
        self.job_id = self.parse_job_id(out)
        return self.job_id

    async def query(self) -> JobStatus:
        if not self.job_id:
            self.job_status = ""
            return JobStatus.NOTFOUND
        cmd = self.compose("batch_query_cmd", job_id=self.job_id)
        try:
            self.job_status = await self.run_command(cmd)
        except CommandFailed as exc:
            self.job_status = exc.args[0]
        return self.classify()

    def classify(self) -> JobStatus:
        status = self.job_status
        if status and re.search(self.traits["state_running_re"], status):
            return JobStatus.RUNNING
        if status and re.search(self.traits["state_pending_re"], status):
            return JobStatus.PENDING
        unknown = self.traits.get("state_unknown_re")
        if unknown and status and re.search(unknown, status):
            return JobStatus.UNKNOWN
        return JobStatus.NOTFOUND

    def host(self) -> Optional[str]:
        match = re.search(self.traits["state_exechost_re"], self.job_status)
        return match.groups()[0] if match else None

    async def cancel(self) -> str:
        return await self.run_command(self.compose("batch_cancel_cmd", job_id=self.job_id))

    async def wait_for(self, wanted: JobStatus, timeout: float, interval: float = 0.5) -> JobStatus:
        """Poll until ``wanted`` (bounded); returns the last status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        status = await self.query()
        while status is not wanted and loop.time() < deadline:
            await asyncio.sleep(interval)
            status = await self.query()
        return status
