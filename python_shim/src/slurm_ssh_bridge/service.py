"""The bridge daemon as a JupyterHub managed service.

::

    from slurm_ssh_bridge.service import bridge_service
    c.JupyterHub.services = [
        bridge_service(bridge_path="/usr/local/bin/slurm-ssh-bridge",
                       config="/etc/slurm-ssh-bridge/config.toml"),
    ]

JupyterHub then starts ``slurm-ssh-bridge --config FILE serve`` with the hub,
restarts it when it exits, and stops it with the hub, so the hub and the
daemon share one process tree (one container). The daemon does not use the
Hub API and has no URL: JupyterHub still issues the managed service a token
(it always does), which the daemon ignores and never forwards.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .commands import DEFAULT_BRIDGE_PATH

__all__ = [
    "bridge_service",
    "orphan_sweep_service",
    "orphan_sweep_role",
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_SWEEP_SERVICE_NAME",
    "SWEEP_SCOPES",
]

DEFAULT_SERVICE_NAME = "slurm-ssh-bridge"
DEFAULT_SWEEP_SERVICE_NAME = "slurm-ssh-bridge-sweep"

#: What the orphan sweep's token needs on JupyterHub 3: list the users
#: (``list:users``, which includes their names), see their servers
#: (``read:servers``) and the servers' spawner state, where batchspawner
#: keeps the job id (``admin:server_state``).
SWEEP_SCOPES = ("list:users", "read:servers", "admin:server_state")

# The keys of a JupyterHub (>= 3) service specification this function
# produces; all are `Service` traits tagged input=True.
_SERVICE_KEYS = ("name", "command", "environment", "cwd", "user", "display", "info")


def bridge_service(
    name: str = DEFAULT_SERVICE_NAME,
    bridge_path: str = DEFAULT_BRIDGE_PATH,
    config: Optional[str] = None,
    *,
    environment: Optional[Mapping[str, str]] = None,
    extra_args: Sequence[str] = (),
    user: Optional[str] = None,
    cwd: Optional[str] = None,
) -> Dict[str, Any]:
    """A ``c.JupyterHub.services`` entry that runs ``slurm-ssh-bridge serve``.

    Arguments:

    - ``name``: the service name shown in the hub's logs and admin API.
    - ``bridge_path``: the bridge executable (absolute path recommended; a
      bare name is looked up on the hub's ``PATH``).
    - ``config``: the bridge's configuration file, passed as ``--config``;
      ``None`` lets the bridge use ``$SLURM_SSH_BRIDGE_CONFIG`` from
      ``environment`` or its default ``/etc/slurm-ssh-bridge/config.toml``.
      Use the same file as ``BridgeSlurmSpawner.bridge_config`` so the
      spawner's client finds the daemon's socket.
    - ``environment``: extra environment variables for the daemon (JupyterHub
      passes the hub's ``Spawner.env_keep`` variables such as ``PATH`` and
      ``LANG`` plus its own ``JUPYTERHUB_*`` service variables, which the
      daemon does not forward).
    - ``extra_args``: further global options placed before ``serve``.
    - ``user``: a system user JupyterHub switches to before starting the
      daemon (default: the hub's own user, who also runs the spawner's
      client and must be able to open the socket).
    - ``cwd``: the daemon's working directory.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("service name must be a non-empty string")
    if not isinstance(bridge_path, str) or not bridge_path:
        raise ValueError("bridge_path must be a non-empty string")
    if isinstance(extra_args, str):
        raise TypeError("extra_args must be a sequence of strings, not a string")
    command = [bridge_path]
    if config is not None:
        if not isinstance(config, str) or not config:
            raise ValueError("config must be a non-empty path or None")
        command += ["--config", config]
    command += [str(arg) for arg in extra_args]
    command.append("serve")

    spec: Dict[str, Any] = {
        "name": name,
        "command": command,
        "environment": dict(environment or {}),
        # No URL: nothing to list on the hub's home page.
        "display": False,
        "info": {"description": "slurm-ssh-bridge daemon (pooled SSH to the Slurm login host)"},
    }
    if user is not None:
        spec["user"] = user
    if cwd is not None:
        spec["cwd"] = cwd
    assert set(spec) <= set(_SERVICE_KEYS)
    return spec


def orphan_sweep_service(
    name: str = DEFAULT_SWEEP_SERVICE_NAME,
    bridge_path: str = DEFAULT_BRIDGE_PATH,
    config: Optional[str] = None,
    *,
    mode: str = "off",
    grace_s: float = 600.0,
    interval_s: float = 60.0,
    max_cancels: int = 5,
    tag: Optional[str] = None,
    status_file: Optional[str] = None,
    python: Optional[str] = None,
    environment: Optional[Mapping[str, str]] = None,
    user: Optional[str] = None,
) -> Dict[str, Any]:
    """A ``c.JupyterHub.services`` entry that runs the orphan sweep.

    The sweep (:mod:`slurm_ssh_bridge.sweep`) compares the jobs carrying the
    bridge's ``submit.tag`` in Slurm with the job ids in the hub's spawner
    state, reports the ones the hub no longer tracks and, with
    ``mode="cancel"``, cancels those untracked for longer than ``grace_s``
    (at most ``max_cancels`` per sweep, one sweep every ``interval_s``).
    ``mode`` is ``"off"`` (the default: the service does nothing),
    ``"report"`` or ``"cancel"``. ``config``: the bridge config the spawner
    uses (same tag, same daemon). ``tag``: when given, a bridge answering for
    another tag makes the sweep conclude nothing. ``status_file``: a JSON file
    the sweep rewrites after each sweep (figures for admins). Its token needs
    the scopes of :func:`orphan_sweep_role` (add that to
    ``c.JupyterHub.load_roles``). The token reaches the process by
    environment only (JupyterHub's ``JUPYTERHUB_API_TOKEN``), never argv.
    """
    # Validate now, at the hub's start, rather than in a restart loop.
    from .sweep import SweepSettings

    SweepSettings(mode=mode, grace_s=float(grace_s), interval_s=float(interval_s),
                  max_cancels=max_cancels, tag=tag).check()
    if not isinstance(name, str) or not name:
        raise ValueError("service name must be a non-empty string")
    if not isinstance(bridge_path, str) or not bridge_path:
        raise ValueError("bridge_path must be a non-empty string")
    command: List[str] = [python or sys.executable, "-m", "slurm_ssh_bridge.sweep", "--bridge", bridge_path]
    if config is not None:
        if not isinstance(config, str) or not config:
            raise ValueError("config must be a non-empty path or None")
        command += ["--config", config]
    command += ["--mode", mode, "--grace", "%g" % grace_s, "--interval", "%g" % interval_s,
                "--max-cancels", str(max_cancels)]
    if tag is not None:
        command += ["--tag", tag]
    if status_file is not None:
        command += ["--status-file", status_file]
    spec: Dict[str, Any] = {
        "name": name,
        "command": command,
        "environment": dict(environment or {}),
        "display": False,
        "info": {"description": "slurm-ssh-bridge orphan sweep (mode %s)" % mode},
    }
    if user is not None:
        spec["user"] = user
    assert set(spec) <= set(_SERVICE_KEYS)
    return spec


def orphan_sweep_role(service: str = DEFAULT_SWEEP_SERVICE_NAME,
                      role: str = "slurm-ssh-bridge-sweep") -> Dict[str, Any]:
    """The ``c.JupyterHub.load_roles`` entry that gives the sweep its scopes."""
    return {"name": role, "description": "read users' servers and spawner state (orphan sweep)",
            "scopes": list(SWEEP_SCOPES), "services": [service]}
