# JupyterHub configuration of the hub tests (tests/hub). Everything private to
# one run comes from the JSON file named by $SSB_HUB_SETTINGS (written by
# notebook_test.py, mode 0600: it holds the test password):
#
#   workdir, public_port, hub_port, proxy_api_port, users, password,
#   path: "daemon" | "direct" | "stock-ssh",
#   bridge, bridge_config, venv, job_log_dir,
#   ssh_port, client_key, known_hosts, wrappers_dir   (the sandbox's)
#   spawner_bridge  (optional: the spawner's bridge_path instead of bridge;
#                    orphan_sweep_test.py's reply-losing wrapper)
#   sweep           (optional, path "daemon": {mode, grace_s, interval_s,
#                    status_file, tag}: the orphan sweep as a managed service)
#
# "daemon" and "direct" use BridgeSlurmSpawner (python_shim); "daemon" also
# runs the bridge daemon as a hub-managed service and lets the spawner use
# it (bridge_mode "auto", what a site sets). "stock-ssh" is batchspawner's
# own SlurmSpawner with a fresh `ssh ... sudo -u {username}` prefix and the
# wrappers, as the reference deployment configures it.
import json
import os

from batchspawner import SlurmSpawner

c = get_config()  # noqa: F821 (provided by JupyterHub)

with open(os.environ["SSB_HUB_SETTINGS"]) as f:
    S = json.load(f)

# --- the hub itself: loopback only, its own db, cookie secret and proxy
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = S["public_port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = S["hub_port"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % S["proxy_api_port"]
c.ConfigurableHTTPProxy.pid_file = os.path.join(S["workdir"], "proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(S["workdir"], "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(S["workdir"], "cookie_secret")
c.JupyterHub.pid_file = os.path.join(S["workdir"], "jupyterhub.pid")
# Servers are Slurm jobs: they outlive the hub process (a restart must not
# cancel them).
c.JupyterHub.cleanup_servers = False
c.JupyterHub.log_level = "DEBUG" if os.environ.get("SSB_HUB_DEBUG") else "INFO"

# --- users log in through the login form with a password
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = S["password"]
c.Authenticator.allowed_users = set(S["users"])

# --- the job: the default SlurmSpawner batch script, its output in the test's
# log dir instead of the user's home (several runs may share a home)
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 60
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/tree"
c.BatchSpawnerBase.batchspawner_singleuser_cmd = os.path.join(S["venv"], "bin", "batchspawner-singleuser")
c.BatchSpawnerBase.startup_poll_interval = 0.5
c.SlurmSpawner.batch_script = SlurmSpawner.batch_script.default_value.replace(
    "--output={{homedir}}/jupyterhub_slurmspawner_%j.log",
    "--output=" + os.path.join(S["job_log_dir"], "job-%j.log"),
)
# TEST-ONLY: the sandbox's nodes are named node1..N but are all this machine
# (NodeAddr=127.0.0.1); the names do not resolve, so the notebook's address is
# the node's address rather than its name.
c.SlurmSpawner.state_exechost_exp = "127.0.0.1"

path = S["path"]
if path in ("daemon", "direct"):
    c.JupyterHub.spawner_class = "slurm_ssh_bridge.spawner.BridgeSlurmSpawner"
    c.BridgeSlurmSpawner.bridge_path = S.get("spawner_bridge") or S["bridge"]
    c.BridgeSlurmSpawner.bridge_config = S["bridge_config"]
    if path == "daemon":
        from slurm_ssh_bridge.service import bridge_service

        c.BridgeSlurmSpawner.bridge_mode = "auto"
        c.JupyterHub.services = [bridge_service(bridge_path=S["bridge"], config=S["bridge_config"])]
        if S.get("sweep"):
            from slurm_ssh_bridge.service import orphan_sweep_role, orphan_sweep_service

            sw = S["sweep"]
            c.JupyterHub.services.append(orphan_sweep_service(
                bridge_path=S["bridge"], config=S["bridge_config"], mode=sw["mode"], grace_s=sw["grace_s"],
                interval_s=sw["interval_s"], tag=sw.get("tag"), status_file=sw["status_file"]))
            c.JupyterHub.load_roles = [orphan_sweep_role()]
    else:
        c.BridgeSlurmSpawner.bridge_mode = "direct"
elif path == "stock-ssh":
    # The reference deployment's form: one fresh ssh per command, sudo to the
    # user, the wrappers; the job's variables travel on the remote command
    # line (KEY='value' arguments, kept by sudoers' env_keep), the job id in
    # SLURMSPAWNER_JOB_ID.
    c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
    c.SlurmSpawner.exec_prefix = (
        "ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
        "-o UserKnownHostsFile={kh} -o GlobalKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=yes -p {port} jupyterspawner@127.0.0.1 "
        "sudo -u {{username}}"
    ).format(key=S["client_key"], kh=S["known_hosts"], port=S["ssh_port"])
    wrappers = S["wrappers_dir"]
    c.SlurmSpawner.batch_submit_cmd = (
        "{% for var in keepvars.split(',') %}"
        "{% if var.startswith('JUPYTERHUB_') or var in ('JPY_API_TOKEN', 'USER', 'HOME', 'SHELL') %}"
        "\"{{var}}='${{var}}'\" {% endif %}{% endfor %}" + wrappers + "/slurmspawner_sbatch"
    )
    c.SlurmSpawner.batch_query_cmd = "SLURMSPAWNER_JOB_ID={job_id} " + wrappers + "/slurmspawner_squeue"
    c.SlurmSpawner.batch_cancel_cmd = "SLURMSPAWNER_JOB_ID={job_id} " + wrappers + "/slurmspawner_scancel"
else:
    raise ValueError("SSB_HUB_SETTINGS: unknown path %r" % path)
