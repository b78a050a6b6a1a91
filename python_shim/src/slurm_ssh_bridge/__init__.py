"""JupyterHub integration for slurm-ssh-bridge.

Modules:

- :mod:`slurm_ssh_bridge.commands` -- the pure part: the command lines and
  regular expressions that make batchspawner's ``SlurmSpawner`` run the
  bridge (no batchspawner import, usable anywhere).
- :mod:`slurm_ssh_bridge.spawner` -- ``BridgeSlurmSpawner``, the
  ``batchspawner.SlurmSpawner`` preset (imports batchspawner).
- :mod:`slurm_ssh_bridge.brics` -- ``BridgeBricsSlurmSpawner``, the mixin on
  bricsauthenticator's ``BricsSlurmSpawner`` (imports bricsauthenticator).
- :mod:`slurm_ssh_bridge.service` -- ``bridge_service()``, the
  ``c.JupyterHub.services`` entry that runs the bridge daemon with the hub.
- :mod:`slurm_ssh_bridge.client` -- an asyncio client for the daemon's
  newline-delimited JSON protocol.
- :mod:`slurm_ssh_bridge.errors` -- the bridge's stable error codes and the
  exceptions the client raises for them.

Importing this package does not import batchspawner or JupyterHub.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
