"""``BridgeBricsSlurmSpawner``: bricsauthenticator's ``BricsSlurmSpawner`` running slurm-ssh-bridge.

``BricsSlurmSpawner`` (package bricsauthenticator) shows a project-selection
options form built from the ``auth_state`` that ``BricsAuthenticator`` stores
(one entry per project: ``{"<PROJECT>.<PORTAL>": {"name": ..., "username":
"<USER>.<PROJECT>"}}``) and runs the job as the chosen project's account.
This class is :class:`~slurm_ssh_bridge.spawner.BridgeSpawnerMixin` in front
of it: the commands go through the bridge, while the account
(``req_username``), the home directory (``req_homedir``:
``/home/<PROJECT>/<USER>.<PROJECT>``), ``user_env``, the form and the saved
state stay ``BricsSlurmSpawner``'s. Set ``remote_homedir`` (e.g.
``/home/{username}``) when the login host's homes follow another rule.

Use it with ``c.JupyterHub.spawner_class =
"slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner"`` (or the entry point
``slurm-ssh-bridge-brics``). Importing this module needs bricsauthenticator
and batchspawner.
"""

from __future__ import annotations

try:
    from bricsauthenticator.spawner import BricsSlurmSpawner
except ImportError as exc:  # pragma: no cover - exercised by test_brics.py
    raise ImportError(
        "slurm_ssh_bridge.brics needs the bricsauthenticator package (BricsSlurmSpawner), "
        "which is not importable here (%s); install it into the hub's Python environment "
        "(scripts/install-support-packages.sh --venv VENV bricsauthenticator, or pip), "
        "or use slurm_ssh_bridge.spawner.BridgeSlurmSpawner" % (exc,),
        name=__name__,
    ) from exc

from .spawner import BridgeSpawnerMixin

__all__ = ["BridgeBricsSlurmSpawner"]


class BridgeBricsSlurmSpawner(BridgeSpawnerMixin, BricsSlurmSpawner):
    """``BricsSlurmSpawner`` whose submit, query and cancel go through slurm-ssh-bridge.

    Configure the bridge part as ``c.BridgeBricsSlurmSpawner.bridge_path``,
    ``bridge_config``, ``bridge_mode`` (or ``c.BridgeSpawnerMixin.*``) and
    the rest as for ``BricsSlurmSpawner`` / ``SlurmSpawner``.
    """
