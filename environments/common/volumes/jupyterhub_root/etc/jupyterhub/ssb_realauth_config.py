"""JupyterHub configuration for the real-authentication environments
(dev_realauth, dev_realauth_zenithclient, prod).

BricsAuthenticator (package bricsauthenticator) authenticates each request
from the JWT in its headers (put there by the Zenith tunnel's OIDC login);
oidcServer, bricsPlatform and jwtAudience come from the deploy ConfigMap.
Spawning (through slurm-ssh-bridge) and the rest are in ssb_common_config.py.
"""
c = get_config()  # noqa: F821  (provided by JupyterHub)
load_subconfig("/etc/jupyterhub/ssb_common_config.py")  # noqa: F821

import sys  # noqa: E402

sys.path.insert(0, "/etc/jupyterhub")
from ssb_helpers import deploy_value  # noqa: E402

try:
    import bricsauthenticator  # noqa: F401
except ImportError as exc:
    raise RuntimeError(
        "bricsauthenticator is not installed in this JupyterHub image (an offline "
        "build cannot install it); rebuild online, or put a clone in "
        "containers/jupyterhub/_dev_build_data/bricsauthenticator"
    ) from exc

c.JupyterHub.authenticator_class = "brics"
c.BricsAuthenticator.oidc_server = deploy_value("OIDC_SERVER")
c.BricsAuthenticator.brics_platform = deploy_value("BRICS_PLATFORM")
c.BricsAuthenticator.jwt_audience = deploy_value("JWT_AUDIENCE")
c.Authenticator.allow_all = True
