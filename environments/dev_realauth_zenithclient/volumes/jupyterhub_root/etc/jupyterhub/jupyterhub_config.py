"""JupyterHub configuration of the dev_realauth_zenithclient environment: BricsAuthenticator (JWT).

The authenticator set-up is shared by the environments of the same kind
(ssb_realauth_config.py), spawning through slurm-ssh-bridge by all of them
(ssb_common_config.py); both come from environments/common/volumes.
Servers: BricsSlurmSpawner through the bridge (BridgeBricsSlurmSpawner), the
job in /home/<USER>.<PROJECT> as the in-pod Slurm container creates it.
"""
c = get_config()  # noqa: F821  (provided by JupyterHub)
load_subconfig("/etc/jupyterhub/ssb_realauth_config.py")  # noqa: F821
