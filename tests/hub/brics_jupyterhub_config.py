# JupyterHub configuration of the hub.brics test (tests/hub/test_brics.py):
# the hub tests' own configuration (jupyterhub_config.py: private loopback
# ports, db, job output dir, the bridge "direct" path) with the reference
# deployment's authentication and spawner instead:
#
#   - bricsauthenticator's real BricsAuthenticator (as
#     slurm_ssh_bridge.brics.CompatBricsAuthenticator, which only hands its
#     login handler a JWKS client that Debian's PyJWT 2.6 can make): its
#     /hub/login handler takes the JWT from the X-Auth-Id-Token header and
#     checks it against the OIDC issuer at $SSB_HUB_SETTINGS' "oidc_server"
#     (a loopback test double, tests/hub/brics_oidc.py);
#   - slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner: BricsSlurmSpawner's
#     project form and <USER>.<PROJECT> account, through the bridge.
#
# Extra settings: oidc_server, brics_platform, jwt_audience.
import json
import os

c = get_config()  # noqa: F821 (provided by JupyterHub)
load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyterhub_config.py"))  # noqa: F821

with open(os.environ["SSB_HUB_SETTINGS"]) as f:
    S = json.load(f)

c.JupyterHub.authenticator_class = "slurm_ssh_bridge.brics.CompatBricsAuthenticator"
c.BricsAuthenticator.oidc_server = S["oidc_server"]
c.BricsAuthenticator.brics_platform = S["brics_platform"]
c.BricsAuthenticator.jwt_audience = S["jwt_audience"]
# BricsSlurmSpawner reads the projects from auth_state (needs
# $JUPYTERHUB_CRYPT_KEY in the hub's environment).
c.Authenticator.enable_auth_state = True

c.JupyterHub.spawner_class = "slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner"
c.BridgeSpawnerMixin.bridge_path = S["bridge"]
c.BridgeSpawnerMixin.bridge_config = S["bridge_config"]
c.BridgeSpawnerMixin.bridge_mode = "direct"
# The sandbox creates its accounts with /home/<account>, not BricsSlurmSpawner's
# /home/<PROJECT>/<account>.
c.BridgeSpawnerMixin.remote_homedir = "/home/{username}"
# The sandbox's partition is its default one; BricsSlurmSpawner's form leaves
# the partition empty (batchspawner then writes no --partition).
