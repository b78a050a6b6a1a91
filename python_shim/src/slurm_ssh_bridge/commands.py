"""The command lines and regular expressions that make batchspawner run the bridge.

This module is the pure half of the shim: it imports neither batchspawner nor
JupyterHub, so the values ``BridgeSlurmSpawner`` uses as trait defaults can be
computed, inspected and tested anywhere.

How batchspawner (1.3) uses the values built here (see ``docs/CONTRACTS.md``
and design section 3.1):

* it joins ``exec_prefix`` and ``batch_*_cmd`` with a space after formatting
  each with ``str.format`` (or Jinja when the text contains ``{{`` or ``{%``)
  using ``username``, ``job_id`` and the other ``req_*`` values;
* it runs the result with ``/bin/sh -c``; for submit with
  ``env=spawner.get_env()`` and the job script on stdin, for query and
  cancel with the hub's own environment;
* a non-zero exit of a query makes the stripped stderr the job status,
  which is then matched against ``state_*_re``.

The bridge takes the notebook's environment (``JUPYTERHUB_*``,
``JPY_API_TOKEN``) from its own process environment and forwards it to the
wrapper itself, so nothing here puts environment values on a command line.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

BRIDGE_NAME = "slurm-ssh-bridge"

#: ``bridge_path`` default: the bridge found on the hub's ``PATH``.
DEFAULT_BRIDGE_PATH = "slurm-ssh-bridge"

#: Where the bridge reads its configuration when given no ``--config``
#: and no ``$SLURM_SSH_BRIDGE_CONFIG``.
DEFAULT_CONFIG_PATH = "/etc/slurm-ssh-bridge/config.toml"

#: The environment variable the bridge reads its config path from.
CONFIG_ENV_VAR = "SLURM_SSH_BRIDGE_CONFIG"

#: Values of the bridge's ``--mode`` option.
BRIDGE_MODES = ("auto", "daemon", "direct")

#: Every stable error code of the bridge (docs/CONTRACTS.md).
ERROR_CODES = (
    "usage",
    "config",
    "invalid_user",
    "invalid_job_id",
    "invalid_env",
    "script_too_large",
    "bad_request",
    "transport",
    "timeout",
    "host_key",
    "auth",
    "daemon_unavailable",
    "overloaded",
    "submit_unknown",
    "remote_failed",
    "not_found",
    "shutting_down",
    "internal",
)

#: The codes that mean "the job's state is unknown, keep polling".
STATE_UNKNOWN_CODES = (
    "transport",
    "timeout",
    "host_key",
    "auth",
    "daemon_unavailable",
    "overloaded",
    "shutting_down",
    "config",
    "internal",
)

# batchspawner 1.3 SlurmSpawner's parsing of `squeue -h -j ID -o '%T %B'`.
SLURM_STATE_PENDING_RE = r"^(?:PENDING|CONFIGURING)"
SLURM_STATE_RUNNING_RE = r"^(?:RUNNING|COMPLETING)"
SLURM_STATE_EXECHOST_RE = r"\s+((?:[\w_-]+\.?)+)$"
#: Slurm's "could not answer about this job" text. batchspawner's default
#: lists two messages; every ``slurm_load_jobs error`` except "Invalid job id
#: specified" (the job is really gone) says the controller could not answer
#: (munge down: "Protocol authentication error", timeouts, ...), so a session
#: must not end on it.
SLURM_STATE_UNKNOWN_RE = r"^slurm_load_jobs error: (?!Invalid job id specified)"

#: Matches the bridge's own failure line for the "state unknown" codes.
BRIDGE_STATE_UNKNOWN_RE = r"^slurm-ssh-bridge: (?:%s):" % "|".join(STATE_UNKNOWN_CODES)

#: The shim's ``state_unknown_re``: Slurm's own "controller not answering"
#: text or a bridge failure that says nothing about the job.
STATE_UNKNOWN_RE = SLURM_STATE_UNKNOWN_RE + "|" + BRIDGE_STATE_UNKNOWN_RE

#: One failure line of the bridge: ``slurm-ssh-bridge: <code>: <message>``.
BRIDGE_FAILURE_LINE_RE = re.compile(r"^slurm-ssh-bridge: ([a-z_]+): ?(.*)$")

#: ``batch_submit_cmd``: the job script arrives on stdin.
SUBMIT_CMD = "submit"
#: ``batch_query_cmd``: prints what ``slurmspawner_squeue`` printed.
QUERY_CMD = "query {job_id}"
#: ``batch_cancel_cmd``: prints what ``slurmspawner_scancel`` printed.
CANCEL_CMD = "cancel {job_id}"

#: Names of the hub's own environment that must not reach the bridge when
#: batchspawner runs a query or cancel with the hub's environment
#: (``JUPYTERHUB_CRYPT_KEY`` and friends would match the bridge's
#: ``JUPYTERHUB_*`` forwarding pattern).
HUB_PRIVATE_ENV_PATTERNS = ("JUPYTERHUB_*", "JPY_*")

_USERNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")


def _check_template_safe(what: str, value: str) -> None:
    """Refuse values that batchspawner's template formatting would mangle.

    ``{`` / ``}`` would be read by ``str.format`` as placeholders, and a
    ``{{`` or ``{%`` would switch batchspawner to Jinja for the whole line.
    """
    if not isinstance(value, str):
        raise TypeError("%s must be a string, not %r" % (what, type(value).__name__))
    if value == "":
        raise ValueError("%s must not be empty" % what)
    for ch in "{}":
        if ch in value:
            raise ValueError(
                "%s %r contains %r: batchspawner formats exec_prefix as a template, "
                "so braces cannot be passed through; use a path without braces"
                % (what, value, ch)
            )
    if "\0" in value or "\n" in value:
        raise ValueError("%s %r contains a NUL or newline character" % (what, value))


def resolve_bridge_config(
    bridge_config: Optional[str], environ: Optional[Mapping[str, str]] = None
) -> Optional[str]:
    """The config path the shim passes with ``--config`` (``None``: none).

    An explicit ``bridge_config`` wins. Otherwise ``$SLURM_SSH_BRIDGE_CONFIG``
    of the hub process is resolved *now* and passed explicitly: batchspawner
    runs submit with ``spawner.get_env()`` (which does not carry that
    variable unless it is in ``Spawner.env_keep``) but query and cancel with
    the hub's environment (which does), so leaving it to the bridge would let
    submit and query read different files.
    """
    if bridge_config:
        return bridge_config
    environ = os.environ if environ is None else environ
    value = environ.get(CONFIG_ENV_VAR)
    return value or None


def bridge_exec_prefix(
    bridge_path: str = DEFAULT_BRIDGE_PATH,
    bridge_config: Optional[str] = None,
    bridge_mode: Optional[str] = None,
) -> str:
    """``exec_prefix`` that runs the bridge as the spawning user.

    >>> bridge_exec_prefix("/usr/local/bin/slurm-ssh-bridge", "/etc/ssb/config.toml")
    '/usr/local/bin/slurm-ssh-bridge --config /etc/ssb/config.toml --user {username}'

    ``{username}`` is left for batchspawner to fill. Paths are shell-quoted.
    """
    _check_template_safe("bridge_path", bridge_path)
    parts: List[str] = [shlex.quote(bridge_path)]
    if bridge_config is not None:
        _check_template_safe("bridge_config", bridge_config)
        parts += ["--config", shlex.quote(bridge_config)]
    if bridge_mode is not None:
        if bridge_mode not in BRIDGE_MODES:
            raise ValueError(
                "bridge_mode %r is not one of %s" % (bridge_mode, ", ".join(BRIDGE_MODES))
            )
        parts += ["--mode", bridge_mode]
    parts += ["--user", "{username}"]
    return " ".join(parts)


def spawner_trait_defaults(
    bridge_path: str = DEFAULT_BRIDGE_PATH,
    bridge_config: Optional[str] = None,
    bridge_mode: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """All trait values ``BridgeSlurmSpawner`` derives from its bridge traits.

    Keys are batchspawner trait names: ``exec_prefix``, ``batch_submit_cmd``,
    ``batch_query_cmd``, ``batch_cancel_cmd``, ``state_pending_re``,
    ``state_running_re``, ``state_exechost_re``, ``state_unknown_re``.
    """
    config = resolve_bridge_config(bridge_config, environ)
    return {
        "exec_prefix": bridge_exec_prefix(bridge_path, config, bridge_mode),
        "batch_submit_cmd": SUBMIT_CMD,
        "batch_query_cmd": QUERY_CMD,
        "batch_cancel_cmd": CANCEL_CMD,
        "state_pending_re": SLURM_STATE_PENDING_RE,
        "state_running_re": SLURM_STATE_RUNNING_RE,
        "state_exechost_re": SLURM_STATE_EXECHOST_RE,
        "state_unknown_re": STATE_UNKNOWN_RE,
    }


def parse_bridge_failure(text: str) -> Optional[Tuple[str, str]]:
    """``(code, message)`` when ``text`` starts with a bridge failure line."""
    if not text:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = BRIDGE_FAILURE_LINE_RE.match(first)
    if not match:
        return None
    return match.group(1), match.group(2)


def is_state_unknown(job_status: str, regex: str = STATE_UNKNOWN_RE) -> bool:
    """Whether batchspawner would read ``job_status`` as "unknown, keep polling"."""
    return bool(job_status) and re.search(regex, job_status) is not None


def uncovered_unknown_codes(regex: str) -> List[str]:
    """The state-unknown codes whose failure line ``regex`` does not match.

    Empty for the shim's default; used to warn when a site overrides
    ``state_unknown_re`` with something that would end sessions on a
    transient SSH failure.
    """
    missing = []
    for code in STATE_UNKNOWN_CODES:
        line = "slurm-ssh-bridge: %s: example message" % code
        if not regex or re.search(regex, line) is None:
            missing.append(code)
    return missing


def check_username(username: str) -> None:
    """Refuse user names the bridge would refuse or the shell would misread.

    The bridge accepts ASCII letters, digits, ``.``, ``_`` and ``-``, not
    starting with ``-`` or ``.``, at most 64 characters. Such names are also
    safe to substitute unquoted into the ``/bin/sh -c`` command line
    batchspawner builds (``--user {username}``).
    """
    if not isinstance(username, str) or not _USERNAME_RE.match(username):
        raise ValueError(
            "user name %r cannot be passed to slurm-ssh-bridge: only ASCII letters, "
            "digits, '.', '_' and '-' are allowed, not starting with '-' or '.', "
            "at most 64 characters" % (username,)
        )


def scrub_hub_environment(
    environ: Mapping[str, str], patterns: Iterable[str] = HUB_PRIVATE_ENV_PATTERNS
) -> Dict[str, str]:
    """A copy of the hub's environment without ``JUPYTERHUB_*`` / ``JPY_*``.

    batchspawner runs query and cancel with the hub's own environment. The
    hub's ``JUPYTERHUB_*`` variables (``JUPYTERHUB_CRYPT_KEY`` among them)
    belong to the hub, not to a user's job, and must never be offered to the
    bridge's environment forwarding.
    """
    patterns = tuple(patterns)
    return {
        name: value
        for name, value in environ.items()
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


def find_bridge(bridge_path: str, path: Optional[str] = None) -> Optional[str]:
    """Where ``/bin/sh`` would find ``bridge_path`` with ``PATH=path``."""
    return shutil.which(bridge_path, path=path)


def bridge_missing_status(bridge_path: str, path: Optional[str] = None) -> Optional[str]:
    """A state-unknown status line when the bridge executable is missing.

    ``None`` when the bridge is found. Otherwise a line in the bridge's own
    failure format (code ``internal``) that ``STATE_UNKNOWN_RE`` matches, so
    a missing or half-installed binary keeps jobs polled instead of making
    ``/bin/sh``'s "not found" look like a vanished job.
    """
    if find_bridge(bridge_path, path) is not None:
        return None
    return (
        "slurm-ssh-bridge: internal: bridge executable %r not found or not executable "
        "(PATH=%s); job state unknown" % (bridge_path, path if path is not None else "")
    )


def remote_homedir(template: str, username: str) -> str:
    """Render ``remote_homedir`` (e.g. ``/home/{username}``) for ``username``."""
    return template.replace("{username}", username)
