"""JupyterHub configuration of the prod environment: BricsAuthenticator (JWT).

The authenticator set-up is shared by the environments of the same kind
(ssb_realauth_config.py), spawning through slurm-ssh-bridge by all of them
(ssb_common_config.py); both come from environments/common/volumes.
"""
c = get_config()  # noqa: F821  (provided by JupyterHub)
load_subconfig("/etc/jupyterhub/ssb_realauth_config.py")  # noqa: F821

# The site's login host keeps each <USER>.<PROJECT> account's home under its
# project: BricsSlurmSpawner's own /home/<PROJECT>/<USER>.<PROJECT> is the job's
# working directory (the in-pod dev environments use /home/{username}).
c.BridgeSpawnerMixin.remote_homedir = ""
