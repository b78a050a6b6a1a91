"""JupyterHub configuration for the real-authentication environments
(dev_realauth, dev_realauth_zenithclient, prod).

BricsAuthenticator (package bricsauthenticator) authenticates each request
from the JWT in its headers (put there by the Zenith tunnel's OIDC login);
oidcServer, bricsPlatform and jwtAudience come from the deploy ConfigMap.
Servers are spawned by BricsSlurmSpawner through slurm-ssh-bridge
(slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner): its options form lists the
user's projects from the JWT, the job runs as the chosen project's
<USER>.<PROJECT> account. The bridge and batch settings are in
ssb_common_config.py; the environment's jupyterhub_config.py says where the
login host keeps home directories (remote_homedir).
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

try:
    from slurm_ssh_bridge.brics import BridgeBricsSlurmSpawner, CompatBricsAuthenticator  # noqa: E402
except ImportError as exc:
    # batchspawner or python_shim missing (an offline image): keep the
    # stand-in ssb_common_config.py chose, which explains the reason.
    print(f"ssb_realauth_config: WARNING: BridgeBricsSlurmSpawner unavailable: {exc}", flush=True)
    c.JupyterHub.authenticator_class = "brics"
else:
    c.JupyterHub.spawner_class = BridgeBricsSlurmSpawner
    # BricsAuthenticator itself, except that its login handler's JWKS client
    # also works with Debian 12's PyJWT 2.6 (upstream's fails every login
    # with HTTP 500 there: its PyJWKClient has no headers=).
    c.JupyterHub.authenticator_class = CompatBricsAuthenticator

c.BricsAuthenticator.oidc_server = deploy_value("OIDC_SERVER")
c.BricsAuthenticator.brics_platform = deploy_value("BRICS_PLATFORM")
c.BricsAuthenticator.jwt_audience = deploy_value("JWT_AUDIENCE")
c.Authenticator.allow_all = True
