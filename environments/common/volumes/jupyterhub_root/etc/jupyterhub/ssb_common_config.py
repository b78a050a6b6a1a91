"""Settings shared by the five environments' jupyterhub_config.py.

Each environment's jupyterhub_config.py runs this file with
``load_subconfig("/etc/jupyterhub/ssb_common_config.py")`` and then sets what
is its own (the authenticator, the Slurm login host). Values come from the
deploy ConfigMap through DEPLOY_CONFIG_* environment variables (see
docs/ENVIRONMENTS.md for every key).
"""
import os
import sys

sys.path.insert(0, "/etc/jupyterhub")
from ssb_helpers import deploy_value  # noqa: E402

c = get_config()  # noqa: F821  (provided by JupyterHub)

# --- where things live (the jupyterhub_root volume) -------------------------
SRV_DIR = os.environ.get("JUPYTERHUB_SRV_DIR", "/srv/jupyterhub")
c.JupyterHub.db_url = f"sqlite:///{SRV_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{SRV_DIR}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.pid_file = f"{SRV_DIR}/jupyterhub-proxy.pid"

c.Application.log_level = deploy_value("LOG_LEVEL", "INFO")

# --- network -------------------------------------------------------------------
BASE_URL = deploy_value("BASE_URL", "/")
# Public proxy on all of the pod's interfaces (published by hostPort, or
# reached by the Zenith client on 127.0.0.1).
c.JupyterHub.bind_url = deploy_value("HUB_BIND_URL", "http://:8000").rstrip("/") + BASE_URL
# The Hub API: notebook servers in the pod's own Slurm container reach it on
# the pod's loopback; external clusters need it on a published address.
# With hubConnectUrl set (external cluster) the default is all of the pod's
# interfaces, so that the published port 8081 reaches it.
_api_default = "http://:8081" if os.environ.get("DEPLOY_CONFIG_HUB_CONNECT_URL") else "http://127.0.0.1:8081"
c.JupyterHub.hub_bind_url = deploy_value("HUB_API_BIND_URL", _api_default)
c.ConfigurableHTTPProxy.api_url = deploy_value("PROXY_API_URL", "http://127.0.0.1:8001")
if os.environ.get("DEPLOY_CONFIG_HUB_CONNECT_URL"):
    c.Spawner.hub_connect_url = deploy_value("HUB_CONNECT_URL")

# --- restarts -------------------------------------------------------------------
# Users' servers are Slurm jobs: keep them (and the proxy's routes) when the
# hub stops, so that the hub can be restarted or upgraded under running
# sessions; its state is in the jupyterhub_root volume.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.cleanup_proxy = True

# --- spawning through slurm-ssh-bridge ---------------------------------------
BRIDGE = "/usr/local/bin/slurm-ssh-bridge"
BRIDGE_CONFIG = "/etc/slurm-ssh-bridge/config.toml"

try:
    import batchspawner  # noqa: F401  (registers batchspawner's API handler)
    from slurm_ssh_bridge.spawner import BridgeSlurmSpawner
except ImportError as exc:  # offline images have no batchspawner
    from jupyterhub.spawner import Spawner

    _REASON = f"{exc}"

    class UnavailableSpawner(Spawner):
        """Stands in when batchspawner or python_shim is not installed (an
        offline image build): the hub runs, spawning fails with the reason."""

        async def start(self):
            raise RuntimeError(
                "notebook servers cannot be started: this JupyterHub image lacks "
                f"batchspawner/python_shim ({_REASON}); rebuild it online or put a "
                "batchspawner clone in containers/jupyterhub/_dev_build_data/"
            )

        async def poll(self):
            return 0

        async def stop(self, now=False):
            return None

    c.JupyterHub.spawner_class = UnavailableSpawner
    print(f"ssb_common_config: WARNING: spawning disabled: {_REASON}", flush=True)
else:

    class ProjectBridgeSpawner(BridgeSlurmSpawner):
        """BridgeSlurmSpawner that runs each server as the <USER>.<PROJECT>
        account the user picks among the projects in their auth_state."""

        def _projects(self):
            return getattr(self, "_ssb_projects", {}) or {}

        def options_from_form(self, formdata):
            return {"project": (formdata.get("project") or [""])[0]}

        async def start(self):
            projects = self._projects()
            if not projects:
                raise RuntimeError(f"user {self.user.name} has no project with access to this service")
            key = self.user_options.get("project") or sorted(projects)[0]
            if key not in projects:
                raise RuntimeError(f"unknown project {key!r}")
            self.req_username = projects[key]["username"]
            return await super().start()

        # The account is part of the server's state: a restarted hub polls
        # and cancels the job as the account that submitted it, not as the
        # hub user (found by tests/pods: after a hub restart, stopping the
        # server ran `scancel` as "alice" and left alice.proj1's job running).
        def get_state(self):
            state = super().get_state()
            if self.job_id:
                state["account"] = self.req_username
            return state

        def load_state(self, state):
            super().load_state(state)
            if state.get("account"):
                self.req_username = state["account"]

    def project_options_form(spawner):
        """A project picker when the user has more than one project."""
        projects = spawner._projects()
        if len(projects) <= 1:
            return ""
        options = "".join(
            f'<option value="{key}">{value.get("name", key)} ({value["username"]})</option>'
            for key, value in sorted(projects.items())
        )
        return f'<label for="project">Project</label><select name="project" class="form-control">{options}</select>'

    # The dummy-authentication environments spawn with ProjectBridgeSpawner
    # (its form field is "project"); ssb_realauth_config.py replaces it with
    # slurm_ssh_bridge.brics.BridgeBricsSlurmSpawner. The settings below are
    # made on classes both have (BridgeSpawnerMixin, SlurmSpawner, Spawner),
    # so they apply to either.
    c.JupyterHub.spawner_class = ProjectBridgeSpawner
    c.ProjectBridgeSpawner.auth_state_hook = lambda spawner, auth_state: setattr(
        spawner, "_ssb_projects", dict(auth_state or {})
    )
    c.ProjectBridgeSpawner.options_form = project_options_form
    c.BridgeSpawnerMixin.bridge_path = BRIDGE
    c.BridgeSpawnerMixin.bridge_config = BRIDGE_CONFIG
    # In-pod Slurm creates each <USER>.<PROJECT> account with /home/<account>.
    c.BridgeSpawnerMixin.remote_homedir = "/home/{username}"
    c.SlurmSpawner.req_options = "--nodes=1"
    c.SlurmSpawner.startup_poll_interval = 2.0
    c.SlurmSpawner.poll_interval = 60
    c.Spawner.start_timeout = 420
    c.Spawner.http_timeout = 300
    c.Spawner.env_keep = []
    c.Spawner.environment = {
        "JUPYTERHUB_BRICS_CONDA_PREFIX_DIR": deploy_value("CONDA_PREFIX_DIR", "/opt/jupyter/miniforge3"),
        "JUPYTERHUB_BRICS_JUPYTER_DATA_DIR": deploy_value("JUPYTER_DATA_DIR", "/opt/jupyter/jupyter_data"),
    }
    # Use the conda environment when the login host has one, else whatever
    # jupyterhub-singleuser is on the job's PATH.
    c.SlurmSpawner.req_prologue = (
        'if [ -f "${JUPYTERHUB_BRICS_CONDA_PREFIX_DIR}/bin/activate" ]; then '
        'source "${JUPYTERHUB_BRICS_CONDA_PREFIX_DIR}/bin/activate" jupyter-user-env; fi; '
        'export JUPYTER_PATH="${JUPYTERHUB_BRICS_JUPYTER_DATA_DIR}${JUPYTER_PATH:+:${JUPYTER_PATH}}"'
    )
    c.SlurmSpawner.req_srun = "srun --export=ALL"

c.Authenticator.enable_auth_state = True

# The bridge daemon: normally run by the container's entrypoint (it then
# survives hub restarts); SSB_BRIDGE_DAEMON=hub-service makes it a service
# managed by the hub instead.
if os.environ.get("SSB_BRIDGE_DAEMON") == "hub-service":
    from slurm_ssh_bridge.service import bridge_service

    c.JupyterHub.services = [bridge_service(bridge_path=BRIDGE, config=BRIDGE_CONFIG)]
