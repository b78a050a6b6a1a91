"""JupyterHub configuration of the dev_dummyauth environment: mocked authentication (DummyBricsAuthenticator).

The authenticator set-up is shared by the environments of the same kind
(ssb_dummyauth_config.py), spawning through slurm-ssh-bridge by all of them
(ssb_common_config.py); both come from environments/common/volumes.
"""
c = get_config()  # noqa: F821  (provided by JupyterHub)
load_subconfig("/etc/jupyterhub/ssb_dummyauth_config.py")  # noqa: F821
