"""JupyterHub configuration for the mocked-authentication environments
(dev_dummyauth, dev_dummyauth_extslurm).

DummyBricsAuthenticator stands in for BricsAuthenticator: the login form's
password must equal dummyAuthPassword (deploy ConfigMap); the user name typed
in the form is ignored and the first <USER> of devUsers is logged in, with an
auth_state listing every <PROJECT> that devUsers gives that <USER>, shaped
like BricsAuthenticator's. Spawning (through slurm-ssh-bridge) and the rest
are in ssb_common_config.py.
"""
c = get_config()  # noqa: F821  (provided by JupyterHub)
load_subconfig("/etc/jupyterhub/ssb_common_config.py")  # noqa: F821

import sys  # noqa: E402

sys.path.insert(0, "/etc/jupyterhub")
from ssb_helpers import deploy_value, dev_unix_users, projects_of  # noqa: E402

from jupyterhub.auth import DummyAuthenticator  # noqa: E402

_unix_users = dev_unix_users()
if not _unix_users:
    raise RuntimeError("devUsers in the deploy-config ConfigMap is empty: nobody could log in")


class DummyBricsAuthenticator(DummyAuthenticator):
    """Checks the shared password, then logs in the first devUsers <USER>."""

    async def authenticate(self, handler, data):
        if await super().authenticate(handler, data) is None:
            return None
        short_name = _unix_users[0].partition(".")[0]
        return {
            "name": short_name,
            "auth_state": projects_of(short_name, _unix_users),
        }


c.JupyterHub.authenticator_class = DummyBricsAuthenticator
c.DummyAuthenticator.password = deploy_value("DUMMYAUTH_PASSWORD")
c.Authenticator.allow_all = True
