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

from typing import Any, Dict, Mapping, Optional, Sequence

from .commands import DEFAULT_BRIDGE_PATH

__all__ = ["bridge_service", "DEFAULT_SERVICE_NAME"]

DEFAULT_SERVICE_NAME = "slurm-ssh-bridge"

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
