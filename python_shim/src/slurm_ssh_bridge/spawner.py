"""``BridgeSlurmSpawner``: batchspawner's ``SlurmSpawner`` running slurm-ssh-bridge.

:class:`BridgeSpawnerMixin` is the bridge's part alone, to put in front of
any ``SlurmSpawner`` subclass (``class X(BridgeSpawnerMixin, SomeSpawner)``);
:class:`BridgeSlurmSpawner` is that mixin on ``SlurmSpawner`` itself, and
:mod:`slurm_ssh_bridge.brics` puts it on bricsauthenticator's
``BricsSlurmSpawner``.

Use it with ``c.JupyterHub.spawner_class = "slurm-ssh-bridge"`` (the
``jupyterhub.spawners`` entry point) or
``"slurm_ssh_bridge.spawner.BridgeSlurmSpawner"``. Every ``SlurmSpawner``
setting (``req_*``, ``batch_script``, poll intervals, ``start_timeout``)
keeps its meaning; only the commands and ``state_unknown_re`` change, and
they derive from ``bridge_path``, ``bridge_config`` and ``bridge_mode``.

This module imports batchspawner (>= 1.3). The values it uses live in
:mod:`slurm_ssh_bridge.commands`, which does not.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import time

from batchspawner import BatchSpawnerBase, SlurmSpawner
from batchspawner.batchspawner import format_template
from traitlets import Float, Unicode, default, validate, TraitError
from traitlets.config import LoggingConfigurable

from . import commands, slurm_details

try:  # batchspawner >= 1.2
    from batchspawner import JobStatus
except ImportError:  # pragma: no cover - very old batchspawner
    from batchspawner.batchspawner import JobStatus

__all__ = ["BridgeSpawnerMixin", "BridgeSlurmSpawner"]

_WARNED = set()


def with_logname(env):
    """Adds ``LOGNAME`` (= ``USER``) to a submit environment.

    batchspawner exports to the job exactly the names of ``get_env()``
    (``req_keepvars``, the batch script's ``--export=``); its ``user_env``
    has ``USER``, ``HOME`` and ``SHELL`` but not ``LOGNAME``, so the job
    would have none. The value the job gets is the login host's: the bridge
    never forwards these names and sets all four from the user's passwd
    entry there before sudo.
    """
    if "USER" in env:
        env["LOGNAME"] = env["USER"]
    return env


class BridgeSpawnerMixin(LoggingConfigurable):
    """The bridge's part of a spawner: put it first among the bases of any
    batchspawner ``SlurmSpawner`` subclass.

    ``class MySpawner(BridgeSpawnerMixin, SomeSlurmSpawner)`` makes
    ``SomeSlurmSpawner``'s submit, query and cancel go through
    slurm-ssh-bridge: it provides the defaults of ``exec_prefix``,
    ``batch_submit_cmd``, ``batch_query_cmd``, ``batch_cancel_cmd`` and
    ``state_unknown_re`` (winning over ``SlurmSpawner``'s because the mixin
    comes first in the MRO), refuses an unsafe ``req_username`` before
    anything runs, keeps the hub's own secrets out of query and cancel
    (``run_command``), keeps polling when the bridge executable is missing,
    and logs once when configuration replaced one of its commands.

    What account the job runs as and where (``req_username``,
    ``req_homedir``, ``user_env``, options forms) stays the other class's:
    the mixin defines none of them, so ``BricsSlurmSpawner``'s project
    account and home directory, for example, are kept. Only a non-empty
    ``remote_homedir`` replaces the job's home directory (``{homedir}``)
    and ``HOME``.

    Configure it as ``c.BridgeSpawnerMixin.*`` (every composition) or under
    the composed class's own name.
    """

    bridge_path = Unicode(
        commands.DEFAULT_BRIDGE_PATH,
        help="""Path of the slurm-ssh-bridge executable on the hub host.

        A bare name is looked up on the PATH of the shell batchspawner runs
        (the hub's PATH; for submit the PATH in ``Spawner.env_keep``).
        An absolute path is safest. Must not contain braces.
        """,
    ).tag(config=True)

    bridge_config = Unicode(
        None,
        allow_none=True,
        help="""Path of the bridge's TOML configuration file, passed as ``--config``.

        ``None`` (default): the hub's ``$SLURM_SSH_BRIDGE_CONFIG`` when set
        (resolved once, then passed explicitly), else the bridge's default
        ``/etc/slurm-ssh-bridge/config.toml``.
        """,
    ).tag(config=True)

    bridge_mode = Unicode(
        None,
        allow_none=True,
        help="""The bridge's ``--mode``: ``auto``, ``daemon`` or ``direct``.

        ``None`` (default): use ``[client] mode`` from the bridge's config
        (``auto``: the daemon when it is running, else a direct connection).
        """,
    ).tag(config=True)

    remote_homedir = Unicode(
        "",
        help="""Home directory of the user on the Slurm side, e.g. ``/home/{username}``.

        Empty (default): the spawner's own ``req_homedir`` (for
        ``BridgeSlurmSpawner``, batchspawner's: the home directory from the
        hub host's passwd database; for ``BricsSlurmSpawner``,
        ``/home/<project>/<account>``). Set it when the hub's container does
        not know the site's users, or the site's homes follow another rule;
        it then provides the batch script's ``{homedir}`` (its ``--chdir``
        and ``--output``) and ``HOME``.
        ``{username}`` is the account the job runs as (``req_username``,
        which a subclass may set to something other than the hub user's
        name), substituted each time a job is submitted.
        """,
    ).tag(config=True)

    explain_interval = Float(
        5.0,
        help="""Seconds between two ``explain`` calls for a pending job of this
        spawner when the query answer carries no Slurm details (per-user
        status mode), so the spawn page can still say why and until when it
        waits.

        5 s: batchspawner polls every ``startup_poll_interval`` (0.5 s) and
        the page refreshes every second, while Slurm re-plans a pending
        job's reason and start time on its scheduling cycles (tens of
        seconds); one ``scontrol`` per 5 s per waiting user costs the login
        host a tenth of the queries already made, and the message is at
        most 5 s old. 0 disables it.
        """,
    ).tag(config=True)

    @validate("bridge_path")
    def _validate_bridge_path(self, proposal):
        try:
            commands.bridge_exec_prefix(proposal["value"])
        except (TypeError, ValueError) as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @validate("bridge_config")
    def _validate_bridge_config(self, proposal):
        if proposal["value"] is not None:
            try:
                commands.bridge_exec_prefix(commands.DEFAULT_BRIDGE_PATH, proposal["value"])
            except (TypeError, ValueError) as exc:
                raise TraitError(str(exc)) from None
        return proposal["value"]

    @validate("bridge_mode")
    def _validate_bridge_mode(self, proposal):
        value = proposal["value"]
        if value is not None and value not in commands.BRIDGE_MODES:
            raise TraitError(
                "bridge_mode %r is not one of %s" % (value, ", ".join(commands.BRIDGE_MODES))
            )
        return value

    def _bridge_defaults(self):
        return commands.spawner_trait_defaults(
            self.bridge_path, self.bridge_config, self.bridge_mode
        )

    @default("exec_prefix")
    def _default_exec_prefix(self):
        return self._bridge_defaults()["exec_prefix"]

    @default("batch_submit_cmd")
    def _default_batch_submit_cmd(self):
        return commands.SUBMIT_CMD

    @default("batch_query_cmd")
    def _default_batch_query_cmd(self):
        return commands.QUERY_CMD

    @default("batch_cancel_cmd")
    def _default_batch_cancel_cmd(self):
        return commands.CANCEL_CMD

    @default("state_unknown_re")
    def _default_state_unknown_re(self):
        return commands.STATE_UNKNOWN_RE

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        mro = cls.mro()
        if BatchSpawnerBase in mro and mro.index(BatchSpawnerBase) < mro.index(BridgeSpawnerMixin):
            # Behind batchspawner in the MRO, batchspawner's defaults and
            # run_command win and the bridge is silently bypassed.
            raise TypeError(
                "%s: BridgeSpawnerMixin must come before the batchspawner spawner among "
                "the bases, e.g. class %s(BridgeSpawnerMixin, SlurmSpawner)"
                % (cls.__name__, cls.__name__)
            )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._warn_about_overrides()
        # What Slurm said about the pending job (a query's "slurm" object or
        # explain's "job" object), kept beside batchspawner's job_status.
        self.slurm_details = None
        self._explained_at = None  # monotonic time of the last explain
        self._submitted = None  # (job id, batch script) of the last submit
        self._query_cmd = None  # the text query batchspawner is running now
        self._kept_explanation = None  # explain's last answer for the pending job
        self._last_script = None

    def _warn_about_overrides(self):
        """Log when configuration replaced the bridge commands or regexes.

        ``c.SlurmSpawner.*`` settings left from an ssh/sudo setup apply to
        this subclass too and would silently bypass the bridge.
        """
        messages = []
        expected = self._bridge_defaults()
        for name in ("exec_prefix", "batch_submit_cmd", "batch_query_cmd", "batch_cancel_cmd"):
            value = getattr(self, name)
            if value != expected[name]:
                messages.append(
                    "%s.%s is configured as %r instead of the bridge's %r; remove old "
                    "c.SlurmSpawner.%s settings unless this is intended"
                    % (type(self).__name__, name, value, expected[name], name)
                )
        missing = commands.uncovered_unknown_codes(self.state_unknown_re)
        if missing:
            messages.append(
                "state_unknown_re %r does not match the bridge's failure lines for %s: "
                "a transient SSH failure would end running sessions"
                % (self.state_unknown_re, ", ".join(missing))
            )
        for message in messages:
            # One spawner per user is created: say it once per process.
            if message not in _WARNED:
                _WARNED.add(message)
                self.log.warning(message)

    def get_req_subvars(self):
        # Refuse before anything runs: the name is substituted unquoted into
        # a /bin/sh command line.
        commands.check_username(self.req_username)
        subvars = super().get_req_subvars()
        if self.remote_homedir:
            # Follow req_username even when it changed after req_homedir
            # was first computed (a subclass picking a project account).
            subvars["homedir"] = commands.remote_homedir(self.remote_homedir, subvars["username"])
        return subvars

    def user_env(self, env):
        """The other class's ``USER``, ``HOME``, ``SHELL``; ``HOME`` from
        ``remote_homedir`` when that is set."""
        env = super().user_env(env)
        if self.remote_homedir:
            env["HOME"] = commands.remote_homedir(self.remote_homedir, self.req_username)
        return with_logname(env)

    async def run_command(self, cmd, input=None, env=None):
        # Query and cancel run with env=None (the hub's environment): keep
        # the hub's own JUPYTERHUB_* / JPY_* (e.g. JUPYTERHUB_CRYPT_KEY) out
        # of the bridge's environment forwarding.
        if env is None:
            env = commands.scrub_hub_environment(os.environ)
        if cmd is not None and cmd == self._query_cmd:
            return await self._run_query_with_details(cmd, env)
        return await super().run_command(cmd, input=input, env=env)

    def _bridge_cmd(self, subcommand, job_id=None):
        """The bridge command line for ``subcommand`` (e.g. "--json explain
        {job_id}") about this spawner's job (or ``job_id``), from the same
        exec_prefix batchspawner uses; None when configuration replaced the
        bridge's prefix (then the shim does not assume the bridge answers)."""
        if self.exec_prefix != self._bridge_defaults()["exec_prefix"]:
            return None
        subvars = self.get_req_subvars()
        subvars["job_id"] = job_id or self.job_id
        return " ".join((format_template(self.exec_prefix, **subvars), format_template(subcommand, **subvars)))

    async def _run_bridge(self, cmd, env):
        """(exit status, stdout, stderr) of one bridge call; the spawner's
        own subprocess like batchspawner's run_command, without raising."""
        proc = await asyncio.create_subprocess_shell(
            cmd, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await proc.communicate()
        except BaseException:
            proc.kill()
            raise
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def _run_query_with_details(self, cmd, env):
        """The query as ``--json``: returns or raises exactly what batchspawner's
        run_command gives for the text query (slurm_details.query_text), and
        keeps the answer's Slurm details aside.

        The CLI rather than the daemon client (client.py): it keeps
        bridge_mode's daemon/direct fallback and the configured exec_prefix,
        at the same cost as batchspawner's own call (one short process)."""
        json_cmd = cmd
        if self.batch_query_cmd == commands.QUERY_CMD:
            json_cmd = self._bridge_cmd("--json " + self.batch_query_cmd) or cmd
        returncode, out, err = await self._run_bridge(json_cmd, env)
        try:
            response = json.loads(out) if json_cmd != cmd else None
        except ValueError:
            response = None
        text, failed = slurm_details.query_text(response, returncode, out, err)
        details = response.get("slurm") if isinstance(response, dict) else None
        self.slurm_details = details if isinstance(details, dict) else None
        if failed:
            self.log.error("Subprocess returned exitcode %s" % returncode)
            self.log.error(text)
            raise RuntimeError(text)
        return text

    async def explain_job(self, job_id=None):
        """explain's "job" object for this spawner's job (or ``job_id``), or
        None when the bridge cannot say (not_found, Slurm unreachable, a
        non-bridge exec_prefix): callers then keep batchspawner's words."""
        job_id = job_id or self.job_id
        if not job_id:
            return None
        cmd = self._bridge_cmd("--json explain {job_id}", job_id)
        if cmd is None:
            return None
        returncode, out, err = await self._run_bridge(cmd, commands.scrub_hub_environment(os.environ))
        for line in err.splitlines():
            self.log.info("explain %s: %s", job_id, line)
        try:
            response = json.loads(out)
        except ValueError:
            return None
        if not isinstance(response, dict) or not response.get("ok") or not isinstance(response.get("job"), dict):
            if isinstance(response, dict) and isinstance(response.get("error"), dict):
                self.log.info("explain %s: %s", job_id, response["error"].get("message"))
            return None
        return response["job"]

    async def submit_batch_script(self):
        job_id = await super().submit_batch_script()
        # batchspawner clears job_id before it raises "job gone": remember it
        # (and the script, for its --output) to explain the end.
        self._submitted = (job_id, self._last_script) if job_id else None
        return job_id

    async def _get_batch_script(self, **subvars):
        self._last_script = await super()._get_batch_script(**subvars)
        return self._last_script

    async def start(self):
        try:
            return await super().start()
        except RuntimeError as exc:
            if not slurm_details.is_batchspawner_gone_message(str(exc)) or not self._submitted:
                raise
            job_id, script = self._submitted
            job = await self.explain_job(job_id)
            if job is None:
                raise
            log = slurm_details.output_path(script or "", job_id, self.req_username)
            message = slurm_details.ended_message(job_id, job, log)
            if message is None:
                raise
            self.log.warning("Job %s ended before its server started: %s", job_id, message)
            raise RuntimeError(message) from exc

    async def progress(self):
        async for event in super().progress():
            if self.state_ispending():
                better = slurm_details.pending_message(self.slurm_details)
                if better:
                    event = dict(event, message=better)
            yield event

    async def query_job_status(self):
        if self.job_id:
            problem = commands.bridge_missing_status(self.bridge_path, os.environ.get("PATH"))
            if problem is not None:
                # /bin/sh's "not found" would read as "job gone" and end the
                # session while the job runs on; keep polling instead.
                self.log.error(problem)
                self.job_status = problem
                return JobStatus.UNKNOWN
        self._query_cmd = self._bridge_cmd(self.batch_query_cmd) if self.job_id else None
        try:
            status = await super().query_job_status()
        finally:
            self._query_cmd = None
        if status is JobStatus.PENDING and self.slurm_details is None and self.explain_interval > 0:
            await self._explain_pending()
        elif status is not JobStatus.PENDING and status is not JobStatus.UNKNOWN:
            self._kept_explanation = None
        return status

    async def _explain_pending(self):
        """Per-user mode: the query carries no Slurm details, so ask explain
        (at most once per explain_interval) and keep its answer until the
        next one."""
        now = time.monotonic()
        if self._explained_at is not None and now - self._explained_at < self.explain_interval:
            self.slurm_details = self._kept_explanation
            return
        self._explained_at = now
        job = await self.explain_job()
        self._kept_explanation = job if job and job.get("state") == "PENDING" else None
        self.slurm_details = self._kept_explanation


class BridgeSlurmSpawner(BridgeSpawnerMixin, SlurmSpawner):
    """A ``SlurmSpawner`` whose submit, query and cancel go through slurm-ssh-bridge.

    The bridge runs on the hub host as the hub's user, connects to the Slurm
    login host over SSH (or hands the request to its daemon) and runs
    ``sudo -n -u <user> slurmspawner_{sbatch,squeue,scancel}`` there. The
    notebook's environment (``JUPYTERHUB_*``, ``JPY_API_TOKEN``) travels in
    the bridge's environment forwarding, never on a command line; the batch
    script's ``--export={{keepvars}}`` then hands it to the job.

    Besides :class:`BridgeSpawnerMixin`, it replaces batchspawner's
    ``req_homedir`` and ``user_env``, which fail when the hub host's passwd
    database does not know the user.
    """

    @default("req_homedir")
    def _default_req_homedir(self):
        account = self.req_username
        if self.remote_homedir:
            return commands.remote_homedir(self.remote_homedir, account)
        try:
            return pwd.getpwnam(account).pw_dir
        except KeyError:
            raise RuntimeError(
                "user %r has no passwd entry on the hub host, so batchspawner cannot "
                "derive the job's home directory; set "
                "c.BridgeSlurmSpawner.remote_homedir (e.g. '/home/{username}')" % account
            ) from None

    def user_env(self, env):
        """``USER``, ``HOME``, ``SHELL`` for the submit environment.

        Like batchspawner's, but does not fail when the hub host's passwd
        database does not know the user (a hub in a container).
        """
        name = self.req_username  # the account the job runs as
        env["USER"] = name
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = None
        if self.remote_homedir:
            env["HOME"] = commands.remote_homedir(self.remote_homedir, name)
        elif entry is not None and entry.pw_dir:
            env["HOME"] = entry.pw_dir
        if entry is not None and entry.pw_shell:
            env["SHELL"] = entry.pw_shell
        return with_logname(env)
