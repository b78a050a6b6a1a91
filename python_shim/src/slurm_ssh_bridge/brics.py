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

:class:`CompatBricsAuthenticator` is ``BricsAuthenticator`` whose login
handler also works with Debian 12's PyJWT 2.6 (bricsauthenticator declares
``PyJWT >= 2.9``): upstream's handler builds
``jwt.PyJWKClient(jwks_uri, headers=...)``, and PyJWT 2.6 has no ``headers``
argument, so every login fails with HTTP 500 (``TypeError``). With a newer
PyJWT it behaves exactly like ``BricsAuthenticator``.
"""

from __future__ import annotations

import inspect
import urllib.request

try:
    import jwt
    from bricsauthenticator.auth import BricsAuthenticator
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

__all__ = ["BridgeBricsSlurmSpawner", "CompatBricsAuthenticator", "jwks_client_factory"]


class BridgeBricsSlurmSpawner(BridgeSpawnerMixin, BricsSlurmSpawner):
    """``BricsSlurmSpawner`` whose submit, query and cancel go through slurm-ssh-bridge.

    Configure the bridge part as ``c.BridgeBricsSlurmSpawner.bridge_path``,
    ``bridge_config``, ``bridge_mode`` (or ``c.BridgeSpawnerMixin.*``) and
    the rest as for ``BricsSlurmSpawner`` / ``SlurmSpawner``.
    """


def jwks_client_factory(jwks_uri: str) -> "jwt.PyJWKClient":
    """The JWKS client ``BricsLoginHandler`` makes (User-Agent ``PyJWT/<version>``),
    for PyJWT versions with ``PyJWKClient(headers=...)`` and without it (2.6)."""
    headers = {"User-Agent": "PyJWT/%s" % jwt.__version__}
    if "headers" in inspect.signature(jwt.PyJWKClient.__init__).parameters:
        return jwt.PyJWKClient(jwks_uri, headers=headers)
    # PyJWT 2.6 passes its uri straight to urllib.request.urlopen, which
    # takes a Request (URL + headers) as well as a string.
    return jwt.PyJWKClient(urllib.request.Request(jwks_uri, headers=headers))


class CompatBricsAuthenticator(BricsAuthenticator):
    """``BricsAuthenticator`` whose ``/login`` handler gets :func:`jwks_client_factory`.

    Configure it like ``BricsAuthenticator`` (``c.BricsAuthenticator.*``
    applies: it is a subclass).
    """

    def get_handlers(self, app):
        handlers = []
        for handler in super().get_handlers(app):
            if len(handler) == 3 and isinstance(handler[2], dict):
                handler = (handler[0], handler[1], dict(handler[2], jwks_client_factory=jwks_client_factory))
            handlers.append(handler)
        return handlers
